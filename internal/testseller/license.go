package testseller

import (
	"net/http"
	"path"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// licenseSegment is the last path segment of the license calls: koobridge
// serve's default --license-path is /license, and the emulator sends the
// license calls to the origin of its target + /license unless told
// otherwise.
const licenseSegment = "license"

// isLicensePath reports whether a POST to p is a license call.
func isLicensePath(p string) bool { return path.Base(p) == licenseSegment }

// licenseState is the seller's own record of license codes and license
// applications. Guarded by Seller.mu.
type licenseState struct {
	codes    map[codeKey]*licenseCode
	renewals map[renewalKey]renewal
	apps     map[appKey]*application
	modes    map[string]string // instanceId → charging mode, from Query Order
}

func newLicenseState() licenseState {
	return licenseState{
		codes:    make(map[codeKey]*licenseCode),
		renewals: make(map[renewalKey]renewal),
		apps:     make(map[appKey]*application),
		modes:    make(map[string]string),
	}
}

// codeKey identifies a license code; debug calls (testFlag 1) have codes
// of their own, so that the dial tests never touch a real one.
type codeKey struct {
	code string
	test bool
}

// licenseCode is a license code as the seller keeps it.
type licenseCode struct {
	expiry    time.Time // set absolutely by refreshLicenseCode; zero until then
	productID string
	frozen    bool
	released  bool
}

// renewalKey is refreshLicenseCode's idempotency key: the renewal order
// line and the code (license-openapi.md §A.4 names none; this is the
// sensible one it suggests, without expireTime, so that a different
// expireTime for one order line is refused rather than applied).
type renewalKey struct {
	test                 bool
	orderID, orderLineID string
	license              string
}

// renewal is a refreshLicenseCode applied: what it asked for and its
// answer, which a repeat gets again.
type renewal struct {
	asked string
	reply protocol.Response
}

// licenseAnswer answers one call at the license path: authenticated with
// the license key (the URL signature of license-openapi.md §A.6), then a
// license-code activity (refreshLicenseCode, updateLicenseCodeStatus,
// releaseLicenseCode) or an online-license one (the instance activities
// and getLicenseAsync). It returns the reply and the key its Body-Sign is
// made with.
func (s *Seller) licenseAnswer(w http.ResponseWriter, r *http.Request) (any, string) {
	replyKey := s.licenseKey
	if s.faults.LicenseBasicKeyBodySign {
		replyKey = s.key
	}
	if r.Method != http.MethodPost {
		return protocol.NewResponse(protocol.CodeInvalidParam, "method "+r.Method+" not allowed: license calls take POST"), replyKey
	}
	body, refused := readBody(w, r)
	if refused != nil {
		return *refused, replyKey
	}
	if !s.faults.SkipSignature {
		keys := []string{s.licenseKey}
		if s.faults.LicenseAnyKey {
			keys = append(keys, s.key)
		}
		q := r.URL.Query()
		if err := s.verify(keys, v2Forms, q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), body, time.Now(), lax{}); err != nil {
			return protocol.NewResponse(protocol.CodeAuthFailed, err.Error()), replyKey
		}
	}
	switch peekActivity(body) {
	case protocol.ActivityRefreshLicenseCode, protocol.ActivityUpdateLicenseCodeStatus, protocol.ActivityReleaseLicenseCode:
		return s.licenseCodeCall(body), replyKey
	}
	return s.onlineLicenseCall(r, body), replyKey
}

// licenseCodeCall decodes, validates and carries out a license-code call.
// A code first heard of is recorded, not refused: KooGallery issued it,
// and the buyer may not have activated it yet.
func (s *Seller) licenseCodeCall(body []byte) any {
	req, err := protocol.DecodeLicense(body)
	if err != nil {
		return protocol.ErrorResponse(err)
	}
	if err := req.Validate(); err != nil {
		if s.faults.SkipValidation {
			return protocol.NewResponse(protocol.CodeSuccess, successMsg)
		}
		return protocol.ErrorResponse(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch req := req.(type) {
	case protocol.RefreshLicenseCodeRequest:
		return s.refreshLicenseCode(req)
	case protocol.UpdateLicenseCodeStatusRequest:
		return s.updateLicenseCodeStatus(req)
	case protocol.ReleaseLicenseCodeRequest:
		return s.releaseLicenseCode(req)
	}
	return protocol.NewResponse(protocol.CodeInvalidParam, "activity "+req.Activity()+" is not served here")
}

// debug reports whether a call with testFlag test is kept apart as a
// debug call (not under LicenseDebugMixed).
func (s *Seller) debug(test bool) bool { return test && !s.faults.LicenseDebugMixed }

// code returns the license code, recorded now when it was never heard of
// (unless LicenseUnknownCodeRefused); ok is false when reply is the
// answer. Guarded by s.mu.
func (s *Seller) code(code string, test bool) (c *licenseCode, reply protocol.Response, ok bool) {
	k := codeKey{code, s.debug(test)}
	if c, ok := s.lic.codes[k]; ok {
		return c, protocol.Response{}, true
	}
	if s.faults.LicenseUnknownCodeRefused {
		return nil, protocol.NewResponse(protocol.CodeInstanceNotFound, "license code does not exist"), false
	}
	c = &licenseCode{}
	s.lic.codes[k] = c
	return c, protocol.Response{}, true
}

// released refuses a change of a released code.
func released(code string) protocol.Response {
	return protocol.NewResponse(protocol.CodeInvalidParam, "license code "+code+" was released")
}

// alreadyApplied is LicenseRepeatDiffers' answer to a call that changes
// nothing.
func alreadyApplied(what string) protocol.Response {
	return protocol.NewResponse(protocol.CodeInternal, what+" already applied")
}

// refreshLicenseCode sets the code's expiry to expireTime, never adding to
// it, once per renewal order line: a repeat, concurrent or late, gets the
// first answer and changes nothing, so an old renewal retried after a
// newer one never moves the expiry back. Guarded by s.mu.
func (s *Seller) refreshLicenseCode(r protocol.RefreshLicenseCodeRequest) protocol.Response {
	expiry, _ := r.Expiry() // checked by Validate
	key := renewalKey{s.debug(r.IsTest()), r.OrderID, r.OrderLineID, r.License}
	asked := r.Scene + "|" + expiry.UTC().Format(time.RFC3339) + "|" + r.ProductID
	if done, ok := s.lic.renewals[key]; ok && !s.faults.LicenseStaleRenewalRefused {
		switch {
		case done.asked != asked:
			return protocol.NewResponse(protocol.CodeInvalidParam, "this renewal order line was applied with another scene, expireTime or productId")
		case s.faults.LicenseRepeatDiffers:
			return alreadyApplied("renewal order line " + r.OrderLineID)
		}
		return done.reply
	}
	c, reply, ok := s.code(r.License, r.IsTest())
	switch {
	case !ok:
		return reply
	case c.released:
		return released(r.License)
	case s.faults.LicenseStaleRenewalRefused && r.Scene == protocol.SceneRenewal && expiry.Before(c.expiry):
		return protocol.NewResponse(protocol.CodeInvalidParam, "expireTime is before the code's expiry")
	}
	c.expiry = expiry
	if r.ProductID != "" {
		c.productID = r.ProductID
	}
	reply = protocol.NewResponse(protocol.CodeSuccess, successMsg)
	if !s.faults.LicenseStaleRenewalRefused {
		s.lic.renewals[key] = renewal{asked: asked, reply: reply}
	}
	return reply
}

// updateLicenseCodeStatus freezes or unfreezes a code; the state asked
// for already holding is success. Guarded by s.mu.
func (s *Seller) updateLicenseCodeStatus(r protocol.UpdateLicenseCodeStatusRequest) protocol.Response {
	c, reply, ok := s.code(r.License, r.IsTest())
	if !ok {
		return reply
	}
	if c.released {
		return released(r.License)
	}
	frozen := r.Status == protocol.StatusFreeze
	if c.frozen == frozen && s.faults.LicenseRepeatDiffers {
		return alreadyApplied(r.Status + " of license code " + r.License)
	}
	c.frozen = frozen
	return protocol.NewResponse(protocol.CodeSuccess, successMsg)
}

// releaseLicenseCode releases a code, idempotently: a released code
// answers 000000 again. Guarded by s.mu.
func (s *Seller) releaseLicenseCode(r protocol.ReleaseLicenseCodeRequest) protocol.Response {
	c, reply, ok := s.code(r.License, r.IsTest())
	if !ok {
		return reply
	}
	if c.released && s.faults.LicenseRepeatDiffers {
		return alreadyApplied("release of license code " + r.License)
	}
	c.released = true
	return protocol.NewResponse(protocol.CodeSuccess, successMsg)
}
