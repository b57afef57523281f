package emulator

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/durationtext"
	"github.com/koobridge/koobridge/protocol"
)

// The catalogue's license products.
const (
	LicenseProductID       = "OFFI-EMU-LICENSE"       // license codes (license-openapi.md §A)
	OnlineLicenseProductID = "OFFI-EMU-ONLINELICENSE" // online license (§C)
)

// DefaultLicenseUploadWindow is how long (emulated) request-license waits
// for the seller's upload unless Config.LicenseUploadWindow says
// otherwise. KooGallery's own patience is not published.
const DefaultLicenseUploadWindow = time.Hour

// licenseRetry is KooGallery's retry of the three license-code calls
// (license-openapi.md §A.4): every 2 minutes, 60 times. "60 times" is
// read as 60 retries after the first attempt: 61 attempts over 2 hours.
var licenseRetry = RetryPolicy{Interval: 2 * time.Minute, Window: 120 * time.Minute}

// onlineLicenseRetry is the online-license retry (§C.1 and the Addenda):
// newInstance every 2 minutes for 2 hours, refreshInstance and
// updateInstanceStatus for 2 hours. Their interval, and the policies of
// releaseInstance and getLicenseAsync, are UNCONFIRMED: the emulator
// retries them all every 2 minutes for 2 hours.
var onlineLicenseRetry = RetryPolicy{Interval: 2 * time.Minute, Window: 2 * time.Hour}

// LicenseCode is the license-code family (license-openapi.md §A):
// refreshLicenseCode, updateLicenseCodeStatus and releaseLicenseCode
// POSTed as JSON to Config.LicenseTarget with the URL signature
// (signature, timestamp, nonce; §A.6) made with the key bound to the
// license interfaces (Config.KeyFor(KeyLicense)). Answers are resultCode
// and resultMsg (§A.2, §A.5; 000000 is success) with a Body-Sign made
// with the same key: UNCONFIRMED, §A and §C never mention a Body-Sign on
// license answers; the emulator asks for it as for every other interface
// type, and Config.BodySignOptional lets a missing one pass. Failed calls
// are retried every 2 minutes, 60 times after the first (§A.4).
var LicenseCode = &Family{
	Name:     "license",
	Key:      KeyLicense,
	Target:   func(cfg Config) string { return licenseTarget(cfg) },
	Prepare:  prepareV2,
	TestFlag: licenseTestFlag,
	Retry: map[string]RetryPolicy{
		protocol.ActivityRefreshLicenseCode:      licenseRetry,
		protocol.ActivityUpdateLicenseCodeStatus: licenseRetry,
		protocol.ActivityReleaseLicenseCode:      licenseRetry,
	},
	BodySign: true,
	codeSpec: func(string) string { return "license-openapi.md §A.5" },
}

// OnlineLicense is the online-license family (license-openapi.md §C): the
// SaaS V2 instance activities (newInstance, refreshInstance,
// updateInstanceStatus, releaseInstance, queryInstance) and
// getLicenseAsync, POSTed as JSON to Config.OnlineLicenseTarget with the
// URL signature made with the key of Config.OnlineLicenseKey (the license
// key unless set to KeyBasic), answers checked as V2's with a Body-Sign
// made with that key (UNCONFIRMED, as for LicenseCode). newInstance
// answering 000004 is polled with
// queryInstance, as in V2. Retries are onlineLicenseRetry's.
var OnlineLicense = &Family{
	Name:     "online-license",
	Key:      KeyLicense,
	KeyOf:    func(cfg Config) KeyType { return cmp.Or(cfg.OnlineLicenseKey, KeyLicense) },
	Target:   func(cfg Config) string { return cmp.Or(cfg.OnlineLicenseTarget, licenseTarget(cfg)) },
	Prepare:  prepareV2,
	TestFlag: v2TestFlag,
	Fields:   v2Fields,
	Retry: map[string]RetryPolicy{
		protocol.ActivityNewInstance:          onlineLicenseRetry,
		protocol.ActivityRefreshInstance:      onlineLicenseRetry,
		protocol.ActivityUpdateInstanceStatus: onlineLicenseRetry,
		protocol.ActivityReleaseInstance:      onlineLicenseRetry,
		protocol.ActivityGetLicenseAsync:      onlineLicenseRetry,
	},
	BodySign:        true,
	codeSpec:        onlineLicenseCodeSpec,
	appInfoOptional: true,
}

// onlineLicenseCodeSpec is where getLicenseAsync's resultCodes are listed
// (license-openapi.md §C.6); the instance activities' are V2's.
func onlineLicenseCodeSpec(iface string) string {
	if iface == protocol.ActivityGetLicenseAsync {
		return "license-openapi.md §C.6"
	}
	return ""
}

// licenseTarget is Config.LicenseTarget, or the origin of Target +
// "/license" (koobridge serve's default --license-path).
func licenseTarget(cfg Config) string {
	if cfg.LicenseTarget != "" {
		return cfg.LicenseTarget
	}
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return cfg.Target
	}
	return (&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: "/license"}).String()
}

// licenseTestFlag reads testFlag from a license-code body.
func licenseTestFlag(body []byte) bool {
	req, err := protocol.DecodeLicense(body)
	return err == nil && req.IsTest()
}

// Steps that send nothing, named as the scenario list shows them.
const (
	stepIssueLicense = "issue license code"
	stepAwaitUpload  = "await license upload"
)

// scenarioRequestLicense is the online-license scenario that asks for a
// license and waits for its upload; it takes a device fingerprint.
const scenarioRequestLicense = "request-license"

// maxFingerprint is getLicenseAsync's deviceFingerprint length (§C.6).
const maxFingerprint = 1024

// uploadPoll is how often, on the wall clock, request-license looks for
// the upload.
const uploadPoll = 10 * time.Millisecond

// licenseModes are the charging modes of license products.
var licenseModes = []string{protocol.ChargingPeriod, protocol.ChargingOneTime}

// licenseScenarios is the license-code table (license-openapi.md §A): a
// purchase issues a code and calls nothing; KooGallery then tells the
// seller of renewals, freezes and releases. Each call's step also moves
// the code in the mocked Open API, when KooGallery sends it: the query
// answers the new expiry and status whatever the seller answered.
var licenseScenarios = []*scenario{
	{
		name: "purchase", title: "Purchase: a license code is issued", spec: "license-openapi.md §A.1",
		family: LicenseCode, proto: ProtocolLicense, modes: licenseModes,
		steps: []step{issueLicenseStep()},
	},
	{
		name: "renewal", title: "Renewal of a license code", spec: "license-openapi.md §A.3.1",
		family: LicenseCode, proto: ProtocolLicense, modes: periodMode, from: []string{StatusActive},
		steps: []step{licenseRefreshStep(renewalStep(), protocol.SceneRenewal, false)},
	},
	{
		name: "unsubscribe-renewal", title: "Unsubscribe a renewed period of a license code", spec: "license-openapi.md §A.3.1",
		family: LicenseCode, proto: ProtocolLicense, modes: periodMode, from: []string{StatusActive}, check: renewedPeriod,
		steps: []step{licenseRefreshStep(unsubscribeRenewalStep(), protocol.SceneUnsubscribeRenewalPeriod, false)},
	},
	{
		name: "renewal-change", title: "Renewal with a change of period (productId)", spec: "license-openapi.md §A.3.1",
		family: LicenseCode, proto: ProtocolLicense, modes: periodMode, from: []string{StatusActive},
		steps: []step{licenseRefreshStep(changeStep(), protocol.SceneRenewal, true)},
	},
	{
		name: "expire", title: "Expiry: freeze the license code", spec: "license-openapi.md §A.3.2",
		family: LicenseCode, proto: ProtocolLicense, modes: periodMode, from: []string{StatusActive},
		steps: []step{withBefore(licenseStatusStep(protocol.StatusFreeze, StatusFrozen), advanceTo(func(sub *Subscription) time.Time { return sub.ExpireTime }))},
	},
	{
		name: "unfreeze", title: "Renewal during the freeze: unfreeze the license code", spec: "license-openapi.md §A.3.1, §A.3.2",
		family: LicenseCode, proto: ProtocolLicense, modes: periodMode, from: []string{StatusFrozen},
		steps: []step{licenseRefreshStep(renewalStep(), protocol.SceneRenewal, false), licenseStatusStep(protocol.StatusUnfreeze, StatusActive)},
	},
	{
		name: "release", title: "Release the license code after the freeze", spec: "license-openapi.md §A.3.3, §A.1",
		family: LicenseCode, proto: ProtocolLicense, modes: periodMode, from: []string{StatusFrozen},
		steps: []step{withBefore(licenseReleaseStep(false), advanceTo(func(sub *Subscription) time.Time { return sub.ExpireTime.Add(retention) }))},
	},
	{
		name: "unsubscribe", title: "Unsubscribe: release the license code", spec: "license-openapi.md §A.3.3",
		family: LicenseCode, proto: ProtocolLicense, modes: licenseModes, from: []string{StatusActive, StatusFrozen},
		steps: []step{licenseReleaseStep(true)},
	},
}

// onlineLicenseSpecs are the online-license counterparts of the V2
// scenarios, by name, with their sections.
var onlineLicenseSpecs = map[string]string{
	"purchase":            "license-openapi.md §C.2",
	"renewal":             "license-openapi.md §C.3",
	"unsubscribe-renewal": "license-openapi.md §C.3",
	"expire":              "license-openapi.md §C.4",
	"unfreeze":            "license-openapi.md §C.3, §C.4",
	"release":             "license-openapi.md §C.5",
	"unsubscribe":         "license-openapi.md §C.5",
	"query":               "license-openapi.md Addenda (queryInstance), saas-v2.md §3.2",
}

// onlineLicenseScenarios is the online-license table (license-openapi.md
// §C): the V2 instance scenarios through the OnlineLicense family, and
// request-license.
var onlineLicenseScenarios = onlineLicenseTable()

// onlineLicenseTable copies the V2 scenarios online license shares, on
// its family and charging modes, and adds request-license: getLicenseAsync
// (000000 or 000004), then a wait for the seller's upload of that
// eventId to the mocked Open API.
func onlineLicenseTable() []*scenario {
	var out []*scenario
	for _, v2 := range v2Scenarios {
		spec, ok := onlineLicenseSpecs[v2.name]
		if !ok {
			continue
		}
		s := *v2
		s.family, s.proto, s.spec = OnlineLicense, ProtocolOnlineLicense, spec
		s.title += " (online license)"
		s.modes = slices.DeleteFunc(slices.Clone(s.modes), func(m string) bool { return !slices.Contains(licenseModes, m) })
		out = append(out, &s)
	}
	return append(out, &scenario{
		name: scenarioRequestLicense, title: "Request a license and await its upload", spec: "license-openapi.md §C.6, §C.7",
		family: OnlineLicense, proto: ProtocolOnlineLicense, modes: licenseModes, from: []string{StatusActive},
		steps: []step{getLicenseStep(), awaitUploadStep()},
	})
}

// recast turns a V2 step into another family's: the same order and state
// change, another activity and body.
func recast(s step, iface string, build func(e *Emulator, sub *Subscription, x *stepCtx) any) step {
	s.iface, s.build, s.perAttempt = iface, build, nil
	return s
}

// setLicenseLocked moves sub's code in the mocked Open API (e.mu held; the
// handler does not call back).
func (e *Emulator) setLicenseLocked(sub *Subscription, fn func(c *mockapi.LicenseCode)) {
	e.openapi.UpdateLicense(sub.LicenseCode, fn)
}

// newLicenseCode returns a KooGallery-like license code: "PL" and 14
// random characters.
func newLicenseCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [14]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "PL" + string(b[:])
}

// issueLicenseStep places the NEW order and issues the code with the
// mocked Open API (ALIVE, not activated; amount the quantity bought): the
// subscription is active with its code. Nothing is sent to the seller,
// which hears of the code from its buyer.
func issueLicenseStep() step {
	return step{
		iface: stepIssueLicense,
		order: newOrder(protocol.OrderTypeNew),
		local: func(e *Emulator, sub *Subscription, x *stepCtx) error {
			code := newLicenseCode()
			err := e.openapi.IssueLicense(mockapi.LicenseCode{
				Code: code, ProductID: sub.ProductID, OrderID: x.order.id, Amount: sub.LinearValue,
				Expire: x.spec.expire, IssuedAt: e.orderTimeLocked(sub), ClockAhead: sub.ahead,
			})
			if err != nil {
				return err
			}
			sub.LicenseCode, sub.ExpireTime, sub.Status = code, x.spec.expire, StatusActive
			return nil
		},
	}
}

// licenseRefreshStep is refreshLicenseCode for the order and expiry of
// the V2 refresh step s, with productId when withProduct (the period type
// changes). A debug subscription's renewals and cut-backs get fresh
// orders like real ones, not the canned MOCK* order: that would repeat
// one orderId and orderLineId with a later expireTime at every renewal,
// which a seller keying renewals on the order line refuses as a conflict
// (and KooGallery would retry for 2 hours). License-code sellers never
// call Query Order, so the canned order's data serves nothing.
func licenseRefreshStep(s step, scene string, withProduct bool) step {
	order := s.order
	s.order = func(e *Emulator, sub *Subscription) (orderSpec, string) {
		spec, _ := order(e, sub)
		return spec, ""
	}
	return recast(s, protocol.ActivityRefreshLicenseCode, func(e *Emulator, sub *Subscription, x *stepCtx) any {
		e.setLicenseLocked(sub, func(c *mockapi.LicenseCode) { c.Expire = x.spec.expire })
		r := protocol.RefreshLicenseCodeRequest{
			ActivityName: protocol.ActivityRefreshLicenseCode,
			ExpireTime:   protocol.FormatTime14(x.spec.expire),
			License:      sub.LicenseCode,
			OrderID:      x.order.id,
			OrderLineID:  x.order.line,
			Scene:        scene,
			TestFlag:     x.testFlag,
		}
		if withProduct {
			r.ProductID = sub.ProductID
		}
		return r
	})
}

// licenseStatusStep is updateLicenseCodeStatus: FREEZE makes the code
// EXPIRED in the mocked Open API, UNFREEZE ALIVE again.
func licenseStatusStep(status, to string) step {
	return recast(statusStep(status, to), protocol.ActivityUpdateLicenseCodeStatus, func(e *Emulator, sub *Subscription, x *stepCtx) any {
		e.setLicenseLocked(sub, func(c *mockapi.LicenseCode) {
			c.Status = protocol.LicenseStatusAlive
			if status == protocol.StatusFreeze {
				c.Status = protocol.LicenseStatusExpired
			}
		})
		return protocol.UpdateLicenseCodeStatusRequest{
			ActivityName: protocol.ActivityUpdateLicenseCodeStatus,
			License:      sub.LicenseCode,
			Status:       status,
			TestFlag:     x.testFlag,
		}
	})
}

// licenseReleaseStep is releaseLicenseCode, with the UNSUBSCRIBE order's
// orderId and orderLineId when unsubscribe is set; the code is RELEASED in
// the mocked Open API.
func licenseReleaseStep(unsubscribe bool) step {
	return recast(releaseStep(unsubscribe), protocol.ActivityReleaseLicenseCode, func(e *Emulator, sub *Subscription, x *stepCtx) any {
		e.setLicenseLocked(sub, func(c *mockapi.LicenseCode) { c.Status = protocol.LicenseStatusReleased })
		return protocol.ReleaseLicenseCodeRequest{
			ActivityName: protocol.ActivityReleaseLicenseCode,
			License:      sub.LicenseCode,
			OrderID:      x.order.id,
			OrderLineID:  x.order.line,
			TestFlag:     x.testFlag,
		}
	})
}

// newEventID returns a license application's eventId: "EV" and 32 hex
// digits.
func newEventID() string { return "EV" + strings.ToUpper(NewNonce()) }

// newFingerprint returns a made-up device fingerprint in the
// license-openapi.md §D.3 format, ${mac}|${diskId}|${boardId}|${cpuId} in
// upper case, the board left empty as in the guide's example.
func newFingerprint() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	mac := make([]string, 6)
	for i := range mac {
		mac[i] = h[2*i : 2*i+2]
	}
	disk := h[12:16] + "_" + h[16:20] + "_" + h[20:24] + "_" + h[24:28] + "."
	return strings.Join(mac, ":") + "|" + disk + "||BFEBFBFF" + h[:4] + h[28:32]
}

// getLicenseStep is getLicenseAsync: a fresh eventId (the same on every
// retry, as KooGallery resends the same application), effectiveTime now
// and, for PERIOD, expireTime the subscription's expiry, both in the
// documented "2023-10-27 10:30:15 z" style, and the device fingerprint
// (PlayOptions.DeviceFingerprint, or a made-up one). The application is
// registered with the mocked Open API when the call is sent, so the
// seller may upload before it answers. 000000 and 000004 are success.
func getLicenseStep() step {
	return step{
		iface:  protocol.ActivityGetLicenseAsync,
		expect: []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeProcessing},
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			now := e.orderTimeLocked(sub)
			ev := newEventID()
			r := protocol.GetLicenseAsyncRequest{
				ActivityName:      protocol.ActivityGetLicenseAsync,
				DeviceFingerprint: cmp.Or(sub.playOpts.DeviceFingerprint, newFingerprint()),
				EffectiveTime:     protocol.FormatLicenseTime(now),
				EventID:           ev,
				InstanceID:        sub.InstanceID,
				TestFlag:          x.testFlag,
			}
			if sub.ChargingMode == protocol.ChargingPeriod && !sub.ExpireTime.IsZero() {
				r.ExpireTime = protocol.FormatLicenseTime(sub.ExpireTime)
			}
			// The ID is fresh and well formed: AddLicenseEvent accepts it.
			_ = e.openapi.AddLicenseEvent(mockapi.LicenseEvent{EventID: ev, InstanceID: sub.InstanceID, Test: sub.Test, RequestedAt: now})
			sub.LicenseEvents = append(sub.LicenseEvents, ev)
			return r
		},
	}
}

// awaitUploadStep waits, on the emulated clock, for the mocked Open API to
// accept an upload for the subscription's last eventId; none within
// Config.LicenseUploadWindow fails the step.
func awaitUploadStep() step {
	return step{
		iface: stepAwaitUpload,
		wait: func(ctx context.Context, e *Emulator, sub *Subscription) error {
			e.mu.Lock()
			var ev string
			if n := len(sub.LicenseEvents); n > 0 {
				ev = sub.LicenseEvents[n-1]
			}
			window := e.cfg.LicenseUploadWindow
			deadline := e.clockLocked(sub).Add(window)
			e.mu.Unlock()
			for {
				if got, ok := e.openapi.LicenseEvent(ev); ok && got.Uploaded {
					return nil
				}
				e.mu.Lock()
				left := deadline.Sub(e.clockLocked(sub))
				wait := min(e.wallUntilLocked(deadline, sub), uploadPoll)
				e.mu.Unlock()
				if left <= 0 {
					return fmt.Errorf("no license was uploaded for event %s within %s (emulated) of getLicenseAsync's success (license-openapi.md §C.7)", ev, durationtext.Format(window))
				}
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return fmt.Errorf("awaiting the upload for event %s: %w", ev, ctx.Err())
				case <-e.ctx.Done():
					t.Stop()
					return fmt.Errorf("awaiting the upload for event %s: %w", ev, errClosed)
				}
			}
		},
	}
}

// License is a license code as the mocked Open API holds it: its order,
// amount, expiry, status (as a query answers it now), and whether it was
// activated (已激活) and checked (已检测).
type License = mockapi.LicenseCode

// LicenseActivation, LicenseQuery, LicenseUsage, LicenseUpload and
// LicenseEvent are what the mocked license Open API recorded: every code
// named in an activate or query request with the error_code answered,
// every software-usage-info entry, every upload request that passed the
// gateway (failures, duplicates and faults included; the license content
// is kept for Go callers, up to mockapi.MaxUploadContent bytes, and never
// written in JSON), and every license application (getLicenseAsync) with
// whether its upload was accepted.
type (
	LicenseActivation = mockapi.LicenseActivation
	LicenseQuery      = mockapi.LicenseQuery
	LicenseUsage      = mockapi.LicenseUsage
	LicenseUpload     = mockapi.LicenseUpload
	LicenseEvent      = mockapi.LicenseEvent
)

// Licenses lists the license codes issued (purchases and test codes),
// oldest first.
func (e *Emulator) Licenses() []License { return e.openapi.Licenses() }

// License returns one license code.
func (e *Emulator) License(code string) (License, bool) { return e.openapi.License(code) }

// LicenseActivations lists the codes named in activate requests, oldest
// first (the last mockapi.MaxLicenseRecords).
func (e *Emulator) LicenseActivations() []LicenseActivation { return e.openapi.LicenseActivations() }

// LicenseQueries lists the codes named in query (heartbeat) requests.
func (e *Emulator) LicenseQueries() []LicenseQuery { return e.openapi.LicenseQueries() }

// LicenseUsage lists the software-usage-info entries received.
func (e *Emulator) LicenseUsage() []LicenseUsage { return e.openapi.LicenseUsage() }

// LicenseUploads lists the license uploads received.
func (e *Emulator) LicenseUploads() []LicenseUpload { return e.openapi.LicenseUploads() }

// LicenseEvents lists the license applications (getLicenseAsync) sent.
func (e *Emulator) LicenseEvents() []LicenseEvent { return e.openapi.LicenseEvents() }

// Test license codes (license-openapi.md §A.7).
const (
	// DefaultTestLicenseValidity is the validity of a test code created
	// without one.
	DefaultTestLicenseValidity = 30 * 24 * time.Hour
	// MaxTestLicenses caps the codes one TestLicenseRequest creates.
	MaxTestLicenses = 100
)

// TestLicenseRequest asks for test license codes, as the seller console's
// page does (license-openapi.md §A.7): codes without an order, with a
// validity the seller can edit, on which the activate and query calls can
// be debugged.
type TestLicenseRequest struct {
	// Count is how many codes, 1 to MaxTestLicenses; 0 means 1.
	Count int
	// ProductID is the product the codes answer in license_code_info;
	// empty means LicenseProductID.
	ProductID string
	// Amount is license_code_info's amount; 0 means 1.
	Amount int
	// Expire is when the codes expire (emulated time); zero means
	// DefaultTestLicenseValidity from now.
	Expire time.Time
	// Undelivered makes activation answer 92020004 (not yet received).
	Undelivered bool
}

// CreateTestLicenses issues test license codes and returns them.
func (e *Emulator) CreateTestLicenses(r TestLicenseRequest) ([]License, error) {
	switch {
	case r.Count < 0 || r.Count > MaxTestLicenses:
		return nil, fmt.Errorf("emulator: test license codes: count %d: want 1 to %d", r.Count, MaxTestLicenses)
	case r.Amount < 0 || r.Amount > MaxQuantity:
		return nil, fmt.Errorf("emulator: test license codes: amount %d: want 1 to %d", r.Amount, MaxQuantity)
	case len([]rune(r.ProductID)) > 64:
		return nil, fmt.Errorf("emulator: test license codes: productId longer than 64 characters")
	}
	now := e.Now().UTC().Truncate(time.Second)
	if r.Expire.IsZero() {
		r.Expire = now.Add(DefaultTestLicenseValidity)
	}
	out := make([]License, 0, max(r.Count, 1))
	for range max(r.Count, 1) {
		code := newLicenseCode()
		err := e.openapi.IssueLicense(mockapi.LicenseCode{
			Code: code, ProductID: cmp.Or(r.ProductID, LicenseProductID), OrderID: "TEST" + code, Amount: r.Amount,
			Expire: r.Expire.UTC().Truncate(time.Second), Test: true, Undelivered: r.Undelivered, IssuedAt: now,
		})
		if err != nil {
			return nil, err
		}
		c, _ := e.openapi.License(code)
		out = append(out, c)
	}
	return out, nil
}

// SetTestLicenseExpiry edits a test code's validity. An unknown code is
// ErrNotFound; a code that is not a test code is refused (ErrConflict).
func (e *Emulator) SetTestLicenseExpiry(code string, expire time.Time) (License, error) {
	if expire.IsZero() {
		return License{}, fmt.Errorf("emulator: test license code %s: the expiry is required", code)
	}
	test := false
	_, ok := e.openapi.UpdateLicense(code, func(c *mockapi.LicenseCode) {
		if test = c.Test; test {
			c.Expire = expire.UTC().Truncate(time.Second)
		}
	})
	switch {
	case !ok:
		return License{}, fmt.Errorf("emulator: test license code %q: %w", code, ErrNotFound)
	case !test:
		return License{}, fmt.Errorf("emulator: license code %s: %w: it is not a test code; its expiry follows its orders", code, ErrConflict)
	}
	c, _ := e.openapi.License(code)
	return c, nil
}
