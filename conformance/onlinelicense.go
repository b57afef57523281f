package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
)

// Spec sections of the online-license cases (license-openapi.md Part C).
const (
	specOnlineNew     = "license-openapi.md §C.2"
	specOnlineRefresh = "license-openapi.md §C.3"
	specOnlineStatus  = "license-openapi.md §C.4"
	specOnlineRelease = "license-openapi.md §C.5"
	specOnlineUpload  = "license-openapi.md §C.6, §C.7"
	specOnlineQuery   = "license-openapi.md Addenda (queryInstance), saas-v2.md §3.2"
)

// How long online-license/repeat-request looks for a second upload after
// the repeat: twice as long as the first upload took, within these
// bounds (wall clock).
const (
	minUploadSettle = time.Second
	maxUploadSettle = 10 * time.Second
)

// onlineSub is the online-license subscription the online-license cases
// work on, and what request-license found.
type onlineSub struct {
	id         string
	ok         bool // active with an instance
	instanceID string
	// apply is request-license's getLicenseAsync (nil when none was
	// sent), event its eventId; uploaded says a license was accepted for
	// it, with hex SHA-256 sha, after took (wall clock).
	apply    *emulator.Message
	event    string
	uploaded bool
	sha      string
	took     time.Duration
}

// onlineLicense runs the online-license profile on the online-license
// product (OFFI-EMU-ONLINELICENSE): the instance lifecycle, a license
// applied for and uploaded, a repeated application, and the refusals of
// getLicenseAsync.
func (r *runner) onlineLicense(ctx context.Context) error {
	p, ok := r.productByID(emulator.OnlineLicenseProductID)
	if !ok {
		return fmt.Errorf("conformance: the emulator has no online-license product %s", emulator.OnlineLicenseProductID)
	}
	ol := r.onlinePurchase(ctx, p)
	for _, step := range []func(context.Context, *onlineSub){
		r.onlineRepeatNewInstance,
		func(ctx context.Context, ol *onlineSub) {
			r.onlineStep(ctx, ol, "query", "queryInstance reports the instance", specOnlineQuery)
		},
		func(ctx context.Context, ol *onlineSub) {
			r.onlineStep(ctx, ol, "renewal", "renewal: refreshInstance RENEWAL with the new expiry", specOnlineRefresh)
		},
		func(ctx context.Context, ol *onlineSub) {
			r.onlineStep(ctx, ol, "unsubscribe-renewal", "a renewed period unsubscribed: refreshInstance UNSUBSCRIBE_RENEWAL_PERIOD", specOnlineRefresh)
		},
		r.onlineRequestLicense,
		r.onlineRepeatRequest,
		r.onlinePeriodWithoutExpiry,
		r.onlineUnknownInstance,
		func(ctx context.Context, ol *onlineSub) {
			r.onlineStep(ctx, ol, "expire", "expiry: updateInstanceStatus FREEZE", specOnlineStatus)
		},
		func(ctx context.Context, ol *onlineSub) {
			r.onlineStep(ctx, ol, "unfreeze", "renewal during the freeze: refreshInstance RENEWAL, updateInstanceStatus UNFREEZE", specOnlineRefresh+", §C.4")
		},
		func(ctx context.Context, ol *onlineSub) {
			r.onlineStep(ctx, ol, "release", "release after the expiry and the retention period: releaseInstance", specOnlineRelease)
		},
		func(ctx context.Context, _ *onlineSub) { r.onlineUnsubscribe(ctx, p) },
	} {
		if ctx.Err() != nil {
			return nil
		}
		step(ctx, ol)
	}
	return nil
}

// onlineID is the ID of an online-license case.
func onlineID(step string) string { return ProfileOnlineLicense + "/" + step }

// onlinePurchase buys the online-license product: newInstance (each
// delivery twice at once) answered 000000 or 000004 with an instanceId,
// queryInstance polled after 000004.
func (r *runner) onlinePurchase(ctx context.Context, p emulator.Product) *onlineSub {
	cr := r.begin(onlineID("purchase"), "purchase: newInstance for a new order answers 000000 or 000004 with an instanceId (delivered twice at once: one instanceId; queryInstance polled after 000004)", specOnlineNew+", saas-v2.md §6.1, §6.4")
	defer r.end(cr)
	sub, ok := r.licensePurchase(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID})
	return &onlineSub{id: sub.ID, ok: ok, instanceID: sub.InstanceID}
}

// notRun fails a case that needs the online-license instance when there
// is none.
func (ol *onlineSub) notRun(cr *caseRun) bool {
	if ol.ok {
		return false
	}
	cr.fail(RuleNotRun, "not run: online-license/purchase did not leave an active instance")
	return true
}

// onlineRepeatNewInstance repeats newInstance for the purchase's order
// line with a fresh businessId: the same instanceId must come back.
func (r *runner) onlineRepeatNewInstance(ctx context.Context, ol *onlineSub) {
	cr := r.begin(onlineID("repeat-new-instance"), "newInstance repeated for the same order line (fresh businessId) returns the same instanceId", specOnlineNew+" (idempotent on orderId + orderLineId)")
	defer r.end(cr)
	if ol.notRun(cr) {
		return
	}
	sub, _ := r.e.Subscription(ol.id)
	c := newInstanceCall(sub.OrderID, sub.OrderLineID)
	c.Family = emulator.OnlineLicense
	a, sent := r.send(ctx, cr, c, r.licenseCallTr(c))
	if sent && a.Response != nil {
		if got := instanceIDOf(a); got != ol.instanceID {
			cr.fail(RuleIdempotentNewInstance, "newInstance repeated for order line %s returned instanceId %q, the first call %q: the seller created a second instance for the same order line", sub.OrderLineID, got, ol.instanceID)
		}
	}
}

// onlineStep plays one scenario of the online-license subscription in a
// case of its own, each call delivered twice at once.
func (r *runner) onlineStep(ctx context.Context, ol *onlineSub, scenario, title, spec string) {
	cr := r.begin(onlineID(scenario), title+" (each call delivered twice at once)", spec)
	defer r.end(cr)
	if ol.notRun(cr) {
		return
	}
	if _, ok := r.playLicense(ctx, cr, ol.id, scenario, false); ok && scenario == "query" {
		r.checkQuery(cr, ol.id)
	}
}

// onlineRequestLicense plays request-license: getLicenseAsync (delivered
// twice at once) answered 000000 or 000004, then the seller's upload for
// its eventId accepted by the mocked Open API within the window, which
// checks the multipart body, the APIG signature and the sha256.
func (r *runner) onlineRequestLicense(ctx context.Context, ol *onlineSub) {
	cr := r.begin(onlineID("request-license"), "getLicenseAsync (delivered twice at once) answers 000000 or 000004, then the seller uploads the license for its eventId within the window: multipart, APIG-signed, its sha256 matching", specOnlineUpload)
	defer r.end(cr)
	if ol.notRun(cr) {
		return
	}
	start := time.Now()
	r.e.SetFaults(emulator.Faults{Duplicates: 1})
	run, err := r.e.Play(ctx, ol.id, "request-license")
	r.e.SetFaults(emulator.Faults{})
	ol.took = time.Since(start)
	before := len(cr.c.Failures)
	for _, id := range run.Messages {
		if m, ok := r.e.Message(id); ok {
			cr.add(m, r.licenseTr(m))
			if m.Interface == protocol.ActivityGetLicenseAsync {
				ol.apply = &m
			}
		}
	}
	if err != nil {
		cr.fail(RuleNotRun, "not run: %v", err)
		return
	}
	if sub, ok := r.e.Subscription(ol.id); ok && len(sub.LicenseEvents) > 0 {
		ol.event = sub.LicenseEvents[len(sub.LicenseEvents)-1]
	}
	ev, found := r.licenseEvent(ol.event)
	switch {
	case found && ev.Uploaded:
		ol.uploaded, ol.sha = true, ev.SHA256
		cr.c.Note = r.uploadNote(ol.event, ev)
	case ol.apply != nil && taken(*ol.apply):
		cr.fail(RuleLicenseUpload, "%s", r.uploadProblem(ol.event, ol.apply.Attempts[0].ResultCode))
	case !run.OK && len(cr.c.Failures) == before:
		cr.fail(RuleScenario, "scenario request-license: %s", run.Err)
	}
}

// taken reports whether getLicenseAsync message m was taken: its first
// answer arrived whole, 000000 or 000004, breaking no rule but on its
// form (the emulator then waits for the upload).
func taken(m emulator.Message) bool {
	if len(m.Attempts) == 0 {
		return false
	}
	a := m.Attempts[0]
	if a.Response == nil || (a.ResultCode != protocol.CodeSuccess && a.ResultCode != protocol.CodeProcessing) {
		return false
	}
	for _, v := range a.Violations {
		switch v.Rule {
		case emulator.RuleReachable, emulator.RuleDeadline, emulator.RuleJSON, emulator.RuleResultCode, emulator.RuleRequiredField:
			return false
		}
	}
	return true
}

// licenseEvent returns the mocked Open API's license application.
func (r *runner) licenseEvent(id string) (emulator.LicenseEvent, bool) {
	for _, ev := range r.e.LicenseEvents() {
		if ev.EventID == id {
			return ev, true
		}
	}
	return emulator.LicenseEvent{}, false
}

// uploadsFor lists the uploads for an event that passed the gateway.
func (r *runner) uploadsFor(event string) []emulator.LicenseUpload {
	var out []emulator.LicenseUpload
	for _, u := range r.e.LicenseUploads() {
		if u.EventID == event {
			out = append(out, u)
		}
	}
	return out
}

// uploadNote describes the accepted upload of an event and what came
// before it.
func (r *runner) uploadNote(event string, ev emulator.LicenseEvent) string {
	var refused []string
	note := fmt.Sprintf("license for event %s uploaded", event)
	for _, u := range r.uploadsFor(event) {
		switch {
		case u.Accepted:
			note = fmt.Sprintf("license for event %s uploaded as %s, %d bytes, sha256 %s", event, u.Type, u.Size, cut(u.SHA256, 12))
		case !u.Duplicate:
			refused = append(refused, u.Code)
		}
	}
	if len(refused) > 0 {
		note += fmt.Sprintf(" after %d refused attempts (%s)", len(refused), strings.Join(refused, ", "))
	}
	return note
}

// uploadProblem says why no license was accepted for event, whose
// getLicenseAsync was answered code: no upload came, or each was refused
// (by the gateway, or by the upload for what it carried).
func (r *runner) uploadProblem(event string, code protocol.ResultCode) string {
	window := r.e.Config().LicenseUploadWindow
	head := fmt.Sprintf("the seller %s to getLicenseAsync of event %s, but no license was accepted for it within %v (emulated)", answered(code), event, window)
	var why []string
	for _, u := range r.uploadsFor(event) {
		w := u.Code + " " + u.Message
		if u.Code == protocol.CBCInvalidParam && strings.Contains(u.Message, "sha256") {
			w = u.Code + " " + u.Message + " (the sha256 of isvUpdateFileReq must be the hex SHA-256 of the file uploaded)"
		}
		if !slices.Contains(why, w) {
			why = append(why, w)
		}
	}
	gateway := 0
	for _, q := range r.e.OpenAPIRequests() {
		if strings.Contains(q.Path, "/market-event/"+event+"/") && q.Status == 401 {
			gateway++
		}
	}
	switch {
	case len(why) > 0:
		return head + ": every upload was refused: " + strings.Join(why, "; ")
	case gateway > 0:
		return fmt.Sprintf("%s: %d uploads were refused by the API gateway (APIG signature: the AK/SK the seller signs with must be the suite's --ak/--sk)", head, gateway)
	}
	return head + ": no upload came (the seller's Open API URL must point at the suite's --openapi-listen; the upload is POST /api/mkp-openapi-public/global/v1/market-event/{eventId}/file, license-openapi.md §C.7)"
}

// onlineRepeatRequest delivers request-license's getLicenseAsync again
// (the same eventId and deviceFingerprint): it must be answered as the
// first, and no other license may be uploaded for the event, now or for
// the concurrent deliveries before. Another upload of the same license is
// allowed (and noted): KooGallery takes it as a success.
func (r *runner) onlineRepeatRequest(ctx context.Context, ol *onlineSub) {
	cr := r.begin(onlineID("repeat-request"), "getLicenseAsync delivered again (the same eventId and deviceFingerprint) is answered as the first and yields no second, different license", suiteSpec[RuleLicenseUploadOnce])
	defer r.end(cr)
	if !ol.uploaded || ol.apply == nil {
		cr.fail(RuleNotRun, "not run: online-license/request-license got no license uploaded")
		return
	}
	r.deliverAgain(ctx, cr, *ol.apply, "delivered again (KooGallery resends an application)")
	settle := min(max(2*ol.took, minUploadSettle), maxUploadSettle)
	t := time.NewTimer(settle)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return
	}
	var again int
	for _, u := range r.uploadsFor(ol.event) {
		switch {
		case u.Accepted, u.Fault, u.SHA256 == "":
		case u.SHA256 == ol.sha:
			again++
		default:
			cr.fail(RuleLicenseUploadOnce, "another license was uploaded for event %s (sha256 %s, %d bytes, answered %s) after the one accepted (sha256 %s): a repeated application (the same eventId and deviceFingerprint) must get the same license, not a new one",
				ol.event, cut(u.SHA256, 12), u.Size, u.Code, cut(ol.sha, 12))
		}
	}
	note := fmt.Sprintf("uploads for event %s watched for %v after the repeat", ol.event, settle.Round(time.Millisecond))
	if again > 0 {
		note += fmt.Sprintf("; the same license was uploaded %d more times (answered CBC.0000: allowed)", again)
	}
	cr.c.Note = strings.TrimPrefix(cr.c.Note+"; "+note, "; ")
}

// applyCall is a getLicenseAsync of instance for a fresh event, with a
// made-up device fingerprint, effective now and, when expire is not
// zero, until expire.
func (r *runner) applyCall(instanceID string, expire time.Time, expect ...protocol.ResultCode) emulator.Call {
	req := protocol.GetLicenseAsyncRequest{
		ActivityName:      protocol.ActivityGetLicenseAsync,
		DeviceFingerprint: madeUpFingerprint(),
		EffectiveTime:     protocol.FormatLicenseTime(r.e.Now()),
		EventID:           "EVCONF" + strings.ToUpper(emulator.NewNonce()),
		InstanceID:        instanceID,
		TestFlag:          "0",
	}
	if !expire.IsZero() {
		req.ExpireTime = protocol.FormatLicenseTime(expire)
	}
	return emulator.Call{Family: emulator.OnlineLicense, Interface: protocol.ActivityGetLicenseAsync, Body: mustMarshal(req), Expect: expect}
}

// madeUpFingerprint is a device fingerprint in the license-openapi.md
// §D.3 format, ${mac}|${diskId}|${boardId}|${cpuId}, the board empty as
// in the guide's example.
func madeUpFingerprint() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:2] + ":" + h[2:4] + ":" + h[4:6] + ":" + h[6:8] + ":" + h[8:10] + ":" + h[10:12] + "|" + h[12:20] + "||BFEBFBFF" + h[16:24]
}

// onlinePeriodWithoutExpiry applies for a license of the (monthly)
// instance without expireTime: the seller must answer 000902.
func (r *runner) onlinePeriodWithoutExpiry(ctx context.Context, ol *onlineSub) {
	cr := r.begin(onlineID("period-without-expiry"), "getLicenseAsync of the monthly instance without expireTime answers 000902 (a period license needs an expiry time)", suiteSpec[RuleLicenseExpiry])
	defer r.end(cr)
	if ol.notRun(cr) {
		return
	}
	c := r.applyCall(ol.instanceID, time.Time{}, protocol.CodeExpiryRequired)
	r.send(ctx, cr, c, r.licenseCallTr(c, resultCodeAs(RuleLicenseExpiry, func(got protocol.ResultCode) string {
		return fmt.Sprintf("the seller %s to a getLicenseAsync of the monthly instance %s without expireTime, want 000902: a period license needs an expiry time (the charging mode is the order's, from Query Order)", answered(got), ol.instanceID)
	})))
}

// onlineUnknownInstance applies for a license of, and releases, an
// instance never issued: 000003. For getLicenseAsync 000100, which the
// online-license guide's table lists as "no such instance resource", is
// taken too.
func (r *runner) onlineUnknownInstance(ctx context.Context, _ *onlineSub) {
	cr := r.begin(onlineID("unknown-instance"), "getLicenseAsync and releaseInstance of a never-issued instanceId answer 000003 (getLicenseAsync: or 000100)", suiteSpec[RuleUnknownInstance]+", license-openapi.md §C.6")
	defer r.end(cr)
	id := neverIssued()
	release := releaseCall(id, protocol.CodeInstanceNotFound)
	release.Family = emulator.OnlineLicense
	for _, c := range []emulator.Call{
		r.applyCall(id, r.e.Now().AddDate(0, 1, 0), protocol.CodeInstanceNotFound, protocol.CodeNoSuchInstanceResource),
		release,
	} {
		r.send(ctx, cr, c, r.licenseCallTr(c, resultCodeAs(RuleUnknownInstance, func(got protocol.ResultCode) string {
			return fmt.Sprintf("the seller %s to %s of instanceId %s, which it never issued, want 000003 (instance does not exist)", answered(got), c.Interface, id)
		})))
	}
}

// onlineUnsubscribe buys a second instance and unsubscribes it.
func (r *runner) onlineUnsubscribe(ctx context.Context, p emulator.Product) {
	cr := r.begin(onlineID("unsubscribe"), "unsubscribe: a second purchase, then releaseInstance with its UNSUBSCRIBE order (each call delivered twice at once)", specOnlineRelease+", "+specOnlineNew)
	defer r.end(cr)
	sub, ok := r.licensePurchase(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID})
	if !ok {
		return
	}
	r.playLicense(ctx, cr, sub.ID, "unsubscribe", false)
}
