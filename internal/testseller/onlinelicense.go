package testseller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/koobridge/koobridge/protocol"
)

// appKey identifies a license application: the eventId and the device
// fingerprint together (license-openapi.md §C.6).
type appKey struct{ eventID, fingerprint string }

// application is a getLicenseAsync taken: what it was made with, its
// answer, which a repeat gets again, and the license made for it, which a
// repeat never changes.
type application struct {
	made    string // instanceId, effectiveTime, expireTime and testFlag
	reply   protocol.Response
	license []byte
}

// accepted is the answer to a getLicenseAsync taken: the license is
// uploaded afterwards (§C.7).
const accepted = "license application accepted; the license will be uploaded"

// onlineLicenseCall decodes, validates and carries out an online-license
// call: the instance activities as V2 has them, and getLicenseAsync.
func (s *Seller) onlineLicenseCall(r *http.Request, body []byte) any {
	req, err := protocol.DecodeV2(body)
	if err != nil {
		var fe *protocol.FieldError // unknown or missing activity
		if s.faults.SkipValidation && errors.As(err, &fe) {
			return protocol.NewResponse(protocol.CodeSuccess, "")
		}
		return protocol.ErrorResponse(err)
	}
	if _, ok := req.(protocol.OrderNotifyRequest); ok {
		return protocol.NewResponse(protocol.CodeInvalidParam, "activity orderNotify is not served at the license path")
	}
	if reply, ok := s.validate(req); !ok {
		return reply
	}
	if gl, ok := req.(protocol.GetLicenseAsyncRequest); ok {
		return s.getLicenseAsync(r.Context(), gl)
	}
	if reply, ok := s.instanceActivity(req); ok {
		return reply
	}
	return protocol.NewResponse(protocol.CodeInvalidParam, "activity "+req.Activity()+" is not served here")
}

// getLicenseAsync takes a license application: an unknown instance is
// 000003, a frozen or released one 000901, a yearly/monthly one without
// expireTime 000902 (the charging mode comes from Query Order). A taken
// application is answered 000004 and its license, made from the request
// alone, uploaded in the background. A repeat (the same eventId and
// fingerprint) gets the first answer and uploads nothing; one made with
// another instance, validity or testFlag is refused 000002.
func (s *Seller) getLicenseAsync(ctx context.Context, r protocol.GetLicenseAsyncRequest) protocol.Response {
	key := appKey{r.EventID, r.DeviceFingerprint}
	made := strings.Join([]string{r.InstanceID, r.EffectiveTime, r.ExpireTime, r.TestFlag}, "\x00")
	s.mu.Lock()
	app, repeat := s.lic.apps[key]
	in, found := s.instances[r.InstanceID]
	var line orderLine
	var frozen, gone bool
	if found {
		line, frozen, gone = in.line, in.frozen, in.released
	}
	mode, known := s.lic.modes[r.InstanceID]
	s.mu.Unlock()
	switch {
	case repeat:
		return s.repeatApplication(ctx, r, app, made)
	case !found && !s.faults.UnknownInstanceOK:
		return protocol.NewResponse(protocol.CodeInstanceNotFound, "instance does not exist")
	case gone:
		return protocol.NewResponse(protocol.CodeOutsideOrderValidity, "must apply within the order validity period: the instance is released")
	case frozen:
		return protocol.NewResponse(protocol.CodeOutsideOrderValidity, "must apply within the order validity period: the instance is frozen")
	case s.openAPI.base == "":
		return protocol.NewResponse(protocol.CodeInternal, "the seller has no Open API to upload the license to")
	}
	if found && r.ExpireTime == "" && !s.faults.OnlineLicenseNoExpiryCheck {
		if !known {
			var err error
			if mode, err = s.chargingMode(ctx, line); err != nil {
				return protocol.NewResponse(protocol.CodeInternal, "cannot learn the instance's charging mode: "+err.Error())
			}
			s.mu.Lock()
			s.lic.modes[r.InstanceID] = mode
			s.mu.Unlock()
		}
		if mode == protocol.ChargingPeriod {
			return protocol.NewResponse(protocol.CodeExpiryRequired, "a period license needs an expiry time: expireTime is missing")
		}
	}
	app = &application{made: made, reply: protocol.NewResponse(protocol.CodeProcessing, accepted), license: newLicense(r, "")}
	s.mu.Lock()
	if first, ok := s.lic.apps[key]; ok { // a concurrent duplicate came first
		s.mu.Unlock()
		return s.repeatApplication(ctx, r, first, made)
	}
	s.lic.apps[key] = app
	s.mu.Unlock()
	if !s.faults.OnlineLicenseNoUpload {
		go s.upload(context.WithoutCancel(ctx), r.EventID, app.license)
	}
	return app.reply
}

// repeatApplication answers a getLicenseAsync whose application was
// taken: the first answer, or 000002 when it was made with other values.
// OnlineLicenseRegenerates uploads another license first.
func (s *Seller) repeatApplication(ctx context.Context, r protocol.GetLicenseAsyncRequest, app *application, made string) protocol.Response {
	if app.made != made {
		return protocol.NewResponse(protocol.CodeInvalidParam, "this eventId and deviceFingerprint were applied for with another instanceId, validity or testFlag")
	}
	if s.faults.OnlineLicenseRegenerates {
		s.upload(ctx, r.EventID, newLicense(r, rand.Text()))
	}
	return app.reply
}

// newLicense is the license of an application: what it licenses, its
// validity and the device's hash (never the fingerprint itself), and the
// serial given (none for the real thing: the license depends on the
// request alone, so a repeat would get the same).
func newLicense(r protocol.GetLicenseAsyncRequest, serial string) []byte {
	device := "any"
	if r.DeviceFingerprint != "" {
		sum := sha256.Sum256([]byte(r.DeviceFingerprint))
		device = hex.EncodeToString(sum[:8])
	}
	until := r.ExpireTime
	if until == "" {
		until = "-"
	}
	lic := fmt.Sprintf("TESTSELLER LICENSE\ninstance=%s\nevent=%s\nfrom=%s\nuntil=%s\ndevice=%s\n", r.InstanceID, r.EventID, r.EffectiveTime, until, device)
	if serial != "" {
		lic += "serial=" + serial + "\n"
	}
	return []byte(lic)
}
