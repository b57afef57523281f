package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Suite rules of the license and online-license profiles.
const (
	RuleIdempotentLicense  = "idempotent-license"   // a license call delivered again (at once, re-triggered, late) is answered as the first
	RuleLicenseUnknownCode = "license-unknown-code" // a code first heard of is recorded: 000000, not 000003
	RuleLicenseKey         = "license-key"          // a license call signed with another key than the license key answers 000001
	RuleLicenseDebugApart  = "license-debug-apart"  // a debug call (testFlag 1) leaves the real code of the same name alone
	RuleLicenseUpload      = "license-upload"       // the license getLicenseAsync asked for is uploaded within the window, well formed, its sha256 matching
	RuleLicenseUploadOnce  = "license-upload-once"  // a repeated getLicenseAsync yields no second, different license
	RuleLicenseExpiry      = "license-expiry"       // a yearly/monthly getLicenseAsync without expireTime answers 000902
)

// Spec sections of the license cases (license-openapi.md Part A).
const (
	specLicenseRefresh = "license-openapi.md §A.3.1"
	specLicenseStatus  = "license-openapi.md §A.3.2"
	specLicenseRelease = "license-openapi.md §A.3.3"
	specLicenseAuth    = "license-openapi.md §A.6"
	specLicenseParam   = "license-openapi.md §A.3, §A.5 (000002)"
)

// licenseScenario is a case that plays an emulator scenario on the
// license-code subscription; its ID is "license/<scenario>".
type licenseScenario struct {
	scenario, title, spec string
}

// licenseScenarios are the license profile's lifecycle cases after
// license/renewal, in run order, on its subscription.
var licenseScenarios = []licenseScenario{
	{"unsubscribe-renewal", "a renewed period unsubscribed: refreshLicenseCode UNSUBSCRIBE_RENEWAL_PERIOD moves the expiry back", specLicenseRefresh},
	{"renewal-change", "renewal with a change of period: refreshLicenseCode RENEWAL with productId", specLicenseRefresh},
	{"expire", "expiry: updateLicenseCodeStatus FREEZE", specLicenseStatus},
	{"unfreeze", "renewal during the freeze: refreshLicenseCode RENEWAL, then updateLicenseCodeStatus UNFREEZE", specLicenseRefresh + ", §A.3.2"},
}

// deliveredTwice is what the license cases do to every call a scenario
// makes, said once for their titles.
const deliveredTwice = "each call delivered twice at once, then once more after the answer"

// licenseSub is the license-code subscription the license cases work on.
type licenseSub struct {
	id string
	ok bool // the purchase issued a code and the subscription is active
	// renewal is the first refreshLicenseCode (license/renewal), which
	// license/late-renewal-retry delivers again; nil when none was sent.
	renewal *emulator.Message
}

// license runs the license profile: the lifecycle of a license-code
// product (OFFI-EMU-LICENSE), a code first heard of, debug calls replayed,
// authentication, validation.
func (r *runner) license(ctx context.Context) error {
	p, ok := r.productByID(emulator.LicenseProductID)
	if !ok {
		return fmt.Errorf("conformance: the emulator has no license-code product %s", emulator.LicenseProductID)
	}
	ls := r.licenseRenewal(ctx, p)
	for _, sc := range licenseScenarios {
		if ctx.Err() != nil {
			return nil
		}
		r.licenseStep(ctx, ls, sc)
	}
	for _, step := range []func(context.Context){
		func(ctx context.Context) { r.licenseLateRetry(ctx, ls) },
		func(ctx context.Context) {
			r.licenseStep(ctx, ls, licenseScenario{"release", "release after the freeze: releaseLicenseCode", specLicenseRelease + ", §A.1"})
		},
		func(ctx context.Context) { r.licenseUnsubscribe(ctx, p) },
		r.licenseUnknownCode,
		func(ctx context.Context) { r.licenseDebug(ctx, p) },
		r.licenseDebugApart,
		r.licenseWrongKey,
		r.licenseStaleTimestamp,
		r.licenseReplayedNonce,
		r.licenseMissingLicense,
		r.licenseBadExpireTime,
		r.licenseUnknownStatus,
		r.licenseUnknownActivity,
		r.licenseDuplicateKey,
	} {
		if ctx.Err() != nil {
			return nil
		}
		step(ctx)
	}
	return nil
}

// productByID returns the catalogue's product with the ID.
func (r *runner) productByID(id string) (emulator.Product, bool) {
	ps := r.e.Products()
	i := slices.IndexFunc(ps, func(p emulator.Product) bool { return p.ID == id })
	if i < 0 {
		return emulator.Product{}, false
	}
	return ps[i], true
}

// licensePurchase buys a license product within case cr: KooGallery
// issues the code and tells the seller nothing (online license: the
// newInstance calls, each delivered twice at once). It returns the
// subscription and whether it is active (with a code, or an instance).
func (r *runner) licensePurchase(ctx context.Context, cr *caseRun, req emulator.PurchaseRequest) (emulator.Subscription, bool) {
	r.e.SetFaults(emulator.Faults{Duplicates: 1})
	run, err := r.e.Purchase(ctx, req)
	r.e.SetFaults(emulator.Faults{})
	clean := r.addRunWith(cr, run, err, r.licenseTr)
	if err != nil {
		return emulator.Subscription{}, false
	}
	sub, found := r.e.Subscription(run.SubscriptionID)
	what, got := "an instance", sub.InstanceID
	if sub.Protocol == emulator.ProtocolLicense {
		what, got = "a license code", sub.LicenseCode
	}
	usable := sub.Status == emulator.StatusActive && got != ""
	switch {
	case !found:
		cr.fail(RuleScenario, "the purchase left no subscription")
		return emulator.Subscription{}, false
	case clean && !usable:
		cr.fail(RuleScenario, "after the purchase the subscription is %s without %s, want active with one", sub.Status, what)
	}
	return sub, usable
}

// licenseRenewal buys the license-code product and renews the code: the
// seller first hears of the code in that renewal and must record it.
func (r *runner) licenseRenewal(ctx context.Context, p emulator.Product) licenseSub {
	cr := r.begin("license/renewal", "a code first heard of in a renewal: refreshLicenseCode RENEWAL of a code the seller never saw is recorded, 000000 ("+deliveredTwice+")", specLicenseRefresh+", §A.1, §A.4")
	defer r.end(cr)
	sub, ok := r.licensePurchase(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID})
	ls := licenseSub{id: sub.ID, ok: ok}
	if !ok {
		return ls
	}
	run, _ := r.playLicense(ctx, cr, sub.ID, "renewal", true)
	if len(run.Messages) > 0 {
		if m, found := r.e.Message(run.Messages[0]); found {
			ls.renewal = &m
		}
	}
	return ls
}

// licenseStep plays one scenario of the license-code subscription in a
// case of its own.
func (r *runner) licenseStep(ctx context.Context, ls licenseSub, sc licenseScenario) {
	cr := r.begin("license/"+sc.scenario, sc.title+" ("+deliveredTwice+")", sc.spec+", §A.4")
	defer r.end(cr)
	if !ls.ok {
		cr.fail(RuleNotRun, "not run: license/renewal did not leave an active license code to play %s on", sc.scenario)
		return
	}
	r.playLicense(ctx, cr, ls.id, sc.scenario, true)
}

// playLicense plays scenario on a license subscription within case cr,
// every call delivered twice at once (the emulator's duplicates, each
// with its own nonce); with again, each call is then delivered once more,
// as KooGallery re-triggers it, and must get the first answer. A scenario
// that starts from a frozen subscription is preceded by the freeze
// (expire) when the subscription is active. It returns the scenario's
// run and whether it succeeded.
func (r *runner) playLicense(ctx context.Context, cr *caseRun, subID, scenario string, again bool) (emulator.Run, bool) {
	sub, _ := r.e.Subscription(subID)
	if def, ok := r.scenarioFor(scenario, sub.Protocol); ok && !slices.Contains(def.From, sub.Status) &&
		sub.Status == emulator.StatusActive && slices.Contains(def.From, emulator.StatusFrozen) {
		r.playLicenseOnce(ctx, cr, subID, "expire", again)
		if s, _ := r.e.Subscription(subID); s.Status != emulator.StatusFrozen {
			return emulator.Run{}, false
		}
	}
	return r.playLicenseOnce(ctx, cr, subID, scenario, again)
}

func (r *runner) playLicenseOnce(ctx context.Context, cr *caseRun, subID, scenario string, again bool) (emulator.Run, bool) {
	r.e.SetFaults(emulator.Faults{Duplicates: 1})
	run, err := r.e.Play(ctx, subID, scenario)
	r.e.SetFaults(emulator.Faults{})
	done := r.addRunWith(cr, run, err, r.licenseTr)
	if err != nil || !again {
		return run, done
	}
	for _, id := range run.Messages {
		if m, ok := r.e.Message(id); ok {
			r.deliverAgain(ctx, cr, m, "delivered again (as KooGallery re-triggers a call)")
		}
	}
	return run, done
}

// scenarioFor returns the emulator's scenario called name that plays on
// products of protocol proto.
func (r *runner) scenarioFor(name, proto string) (emulator.Scenario, bool) {
	for _, s := range r.e.Scenarios() {
		if s.Name == name && s.Protocol == proto {
			return s, true
		}
	}
	return emulator.Scenario{}, false
}

// familyOf is the emulator family of a license message.
func familyOf(m emulator.Message) *emulator.Family {
	if m.Family == emulator.OnlineLicense.Name {
		return emulator.OnlineLicense
	}
	return emulator.LicenseCode
}

// deliverAgain sends the body of message m once more, as it was first
// sent (a fresh signature, timestamp and nonce): the answer must carry
// the first answer's resultCode, or one equivalent to it
// (emulator.Equivalent: getLicenseAsync answered 000004, then 000000 once
// the license is made, is still taken). Another code or body that passes
// is noted. Nothing is sent when the first delivery got no answer.
func (r *runner) deliverAgain(ctx context.Context, cr *caseRun, m emulator.Message, how string) {
	if len(m.Attempts) == 0 || m.Attempts[0].ResultCode == "" {
		return
	}
	first := m.Attempts[0]
	what := describeCall(m.Interface, m.Body)
	same := emulator.Equivalent(m.Interface, first.ResultCode)
	want := "the first answer"
	if len(same) > 1 {
		want = "an answer equivalent to the first (" + strings.Join(codeStrings(same), " or ") + ": taken)"
	}
	c := emulator.Call{Family: familyOf(m), Interface: m.Interface, Body: []byte(m.Body), Expect: same}
	tr := r.licenseCallTr(c, func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		if v.Rule != emulator.RuleResultCode {
			return Failure{}, false
		}
		return Failure{Rule: RuleIdempotentLicense, Spec: suiteSpec[RuleIdempotentLicense], Message: fmt.Sprintf(
			"the seller %s to %s %s, the first delivery %s: a call delivered again must get %s", answered(a.ResultCode), what, how, answered(first.ResultCode), want)}, true
	})
	a, sent := r.send(ctx, cr, c, tr)
	if !sent || a.Response == nil || first.Response == nil || !slices.Contains(same, a.ResultCode) {
		return
	}
	var note string
	switch {
	case a.ResultCode != first.ResultCode:
		note = fmt.Sprintf("%s %s %s, the first delivery %s (equivalent)", what, how, answered(a.ResultCode), answered(first.ResultCode))
	case a.Response.Body != first.Response.Body:
		note = fmt.Sprintf("%s %s got another body: first %s, then %s", what, how, cut(first.Response.Body, maxNoteBody), cut(a.Response.Body, maxNoteBody))
	}
	if note != "" {
		cr.c.Note = strings.TrimPrefix(cr.c.Note+"; "+note, "; ")
	}
}

// codeStrings spells resultCodes as text.
func codeStrings(codes []protocol.ResultCode) []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = string(c)
	}
	return out
}

// describeCall names a license call for a failure message: its activity
// and the code or instance it is about.
func describeCall(iface, body string) string {
	var b struct {
		License    string `json:"license"`
		InstanceID string `json:"instanceId"`
		EventID    string `json:"eventId"`
		Status     string `json:"status"`
		Scene      string `json:"scene"`
	}
	_ = json.Unmarshal([]byte(body), &b) // the suite's own body
	what := iface
	switch {
	case b.Scene != "":
		what += " " + b.Scene
	case b.Status != "":
		what += " " + b.Status
	}
	switch {
	case b.License != "":
		what += " of license code " + b.License
	case b.EventID != "":
		what += " of event " + b.EventID
	case b.InstanceID != "":
		what += " of instance " + b.InstanceID
	}
	return what
}

// licenseTr is the translation of every license message's violations:
// the answers to duplicate deliveries that differ (idempotent-license; a
// newInstance's, idempotent-new-instance), a license code answered
// 000003 (license-unknown-code), a Body-Sign made with the basic key.
func (r *runner) licenseTr(m emulator.Message) translate {
	var dup translate
	if m.Interface == protocol.ActivityNewInstance {
		dup = duplicatesAs(m, RuleIdempotentNewInstance, "newInstance")
	} else {
		dup = repeatsAs(m)
	}
	return r.licenseCallTr(emulator.Call{Family: familyOf(m), Interface: m.Interface}, dup, unknownCodeAs(m.Interface, m.Body))
}

// licenseCallTr chains translations for a call c: the first that takes
// a violation decides; a Body-Sign made with the basic key instead of the
// key of c's family is explained.
func (r *runner) licenseCallTr(c emulator.Call, trs ...translate) translate {
	return func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		for _, tr := range trs {
			if fl, ok := tr(a, v); ok {
				return fl, true
			}
		}
		return r.otherKeyBodySign(c, a, v)
	}
}

// repeatsAs turns the emulator's idempotent violation on the answers to
// the duplicate deliveries of message m into an idempotent-license
// failure that names the codes.
func repeatsAs(m emulator.Message) translate {
	var codes []string
	for _, x := range m.Attempts {
		if x.ResultCode != "" {
			codes = append(codes, string(x.ResultCode))
		}
	}
	return func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		if v.Rule != emulator.RuleIdempotent {
			return Failure{}, false
		}
		return Failure{Rule: RuleIdempotentLicense, Spec: suiteSpec[RuleIdempotentLicense], Message: fmt.Sprintf(
			"%d deliveries at once of %s answered %s: duplicate deliveries must get the same answer",
			len(m.Attempts), describeCall(m.Interface, m.Body), strings.Join(codes, ", "))}, true
	}
}

// unknownCodeAs turns a license-code call answered 000003 into a
// license-unknown-code failure; other violations stay as they are.
func unknownCodeAs(iface, body string) translate {
	return func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		if v.Rule != emulator.RuleResultCode || a.ResultCode != protocol.CodeInstanceNotFound || !isLicenseCodeCall(iface) {
			return Failure{}, false
		}
		return Failure{Rule: RuleLicenseUnknownCode, Spec: suiteSpec[RuleLicenseUnknownCode], Message: fmt.Sprintf(
			"the seller %s to %s: KooGallery issued the code, and a code first heard of must be recorded and the call answered 000000, not refused",
			answered(a.ResultCode), describeCall(iface, body))}, true
	}
}

// isLicenseCodeCall reports whether iface is one of the three
// license-code activities.
func isLicenseCodeCall(iface string) bool {
	switch iface {
	case protocol.ActivityRefreshLicenseCode, protocol.ActivityUpdateLicenseCodeStatus, protocol.ActivityReleaseLicenseCode:
		return true
	}
	return false
}

// otherKeyBodySign explains a body-sign failure of an answer to call c
// whose Body-Sign is made with the basic key instead of the key of c's
// family; other violations stay as they are.
func (r *runner) otherKeyBodySign(c emulator.Call, a emulator.Attempt, v emulator.Violation) (Failure, bool) {
	cfg := r.e.Config()
	want := emulator.KeyLicense
	if c.Family == emulator.OnlineLicense {
		want = cfg.OnlineLicenseKey
	}
	if v.Rule != emulator.RuleBodySign || a.Response == nil || a.Response.Truncated || cfg.KeyFor(want) == cfg.Key {
		return Failure{}, false
	}
	if sign.VerifyBodySign(cfg.Key, a.Response.Header[sign.BodySignHeader], []byte(a.Response.Body)) != nil {
		return Failure{}, false
	}
	return Failure{
		Rule:    string(v.Rule),
		Message: c.Interface + ": " + v.Message + ": it is made with the basic key; answers to license calls are signed with the key bound to the license interfaces (License授权码交付接口)",
		Spec:    v.Spec + ", " + specLicenseAuth,
	}, true
}

// licenseCall is a license-code call of the activity with the body's
// fields; expect empty means 000000.
func licenseCall(activity string, fields any, expect ...protocol.ResultCode) emulator.Call {
	return emulator.Call{Family: emulator.LicenseCode, Interface: activity, Body: mustMarshal(fields), Expect: expect}
}

// newCode returns a license code no seller has heard of, shaped like
// KooGallery's ("PL" and 14 upper-case characters).
func newCode() string { return "PL" + strings.ToUpper(emulator.NewNonce()[:14]) }

// newRenewalOrder returns a made-up renewal order and its line.
func newRenewalOrder() (string, string) {
	id := "CS" + strings.ToUpper(emulator.NewNonce()[:15])
	return id, id + "-000001"
}

// renewalOf is a refreshLicenseCode RENEWAL of code for a new order, a
// year from now.
func (r *runner) renewalOf(code string, expect ...protocol.ResultCode) emulator.Call {
	order, line := newRenewalOrder()
	return licenseCall(protocol.ActivityRefreshLicenseCode, protocol.RefreshLicenseCodeRequest{
		ActivityName: protocol.ActivityRefreshLicenseCode,
		ExpireTime:   protocol.FormatTime14(r.e.Now().UTC().AddDate(1, 0, 0)),
		License:      code,
		OrderID:      order,
		OrderLineID:  line,
		Scene:        protocol.SceneRenewal,
		TestFlag:     "0",
	}, expect...)
}

// releaseOf is a releaseLicenseCode of code.
func releaseOf(code string, expect ...protocol.ResultCode) emulator.Call {
	return licenseCall(protocol.ActivityReleaseLicenseCode, protocol.ReleaseLicenseCodeRequest{
		ActivityName: protocol.ActivityReleaseLicenseCode, License: code, TestFlag: "0",
	}, expect...)
}

// licenseLateRetry delivers license/renewal's refreshLicenseCode again
// after the later renewals, the unsubscribed period, the freeze and the
// unfreeze: KooGallery retries a call for two hours, so an old renewal
// may come after newer ones. It must be answered as the first was.
// Whether the retry moved the expiry back is the seller's own state, which
// no call of the production interface shows: the title claims only the
// answer.
func (r *runner) licenseLateRetry(ctx context.Context, ls licenseSub) {
	cr := r.begin("license/late-renewal-retry", "a late retry of the first renewal, after the later changes, is answered like the original (000000)", specLicenseRefresh+", §A.4")
	defer r.end(cr)
	if ls.renewal == nil || len(ls.renewal.Attempts) == 0 || ls.renewal.Attempts[0].ResultCode != protocol.CodeSuccess {
		cr.fail(RuleNotRun, "not run: license/renewal's refreshLicenseCode was not answered 000000")
		return
	}
	r.deliverAgain(ctx, cr, *ls.renewal, "delivered late (a retry of the first renewal, after newer ones)")
}

// licenseUnsubscribe buys a second code and releases it with its
// UNSUBSCRIBE order: the seller first hears of this code in the release.
func (r *runner) licenseUnsubscribe(ctx context.Context, p emulator.Product) {
	cr := r.begin("license/unsubscribe", "unsubscribe: releaseLicenseCode with the UNSUBSCRIBE order of a code the seller never saw ("+deliveredTwice+")", specLicenseRelease+", §A.4")
	defer r.end(cr)
	sub, ok := r.licensePurchase(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID})
	if !ok {
		return
	}
	r.playLicense(ctx, cr, sub.ID, "unsubscribe", true)
}

// licenseUnknownCode freezes one code and releases another that no
// seller has heard of: each is recorded and answered 000000.
func (r *runner) licenseUnknownCode(ctx context.Context) {
	cr := r.begin("license/unknown-code", "updateLicenseCodeStatus FREEZE and releaseLicenseCode of codes the seller never heard of are recorded, 000000 (not 000003)", suiteSpec[RuleLicenseUnknownCode])
	defer r.end(cr)
	calls := []emulator.Call{
		licenseCall(protocol.ActivityUpdateLicenseCodeStatus, protocol.UpdateLicenseCodeStatusRequest{
			ActivityName: protocol.ActivityUpdateLicenseCodeStatus, License: newCode(), Status: protocol.StatusFreeze, TestFlag: "0",
		}),
		releaseOf(newCode()),
	}
	for _, c := range calls {
		r.send(ctx, cr, c, r.licenseCallTr(c, unknownCodeAs(c.Interface, string(c.Body))))
	}
}

// licenseDebug buys the license-code product as a debug purchase
// (testFlag "1"; the emulator gives its renewal a fresh order, as for a
// real code) and renews it; the renewal is then replayed twice more, as
// the twice-daily dial tests replay a saved debug case.
func (r *runner) licenseDebug(ctx context.Context, p emulator.Product) {
	cr := r.begin("license/debug-renewal", "a debug renewal (testFlag 1, as the Seller Center debugger and the dial tests send) replayed: the same answer, 000000, every time", specLicenseRefresh+", §A.4, §A.7")
	defer r.end(cr)
	sub, ok := r.licensePurchase(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID, Test: true})
	if !ok {
		return
	}
	run, _ := r.playLicense(ctx, cr, sub.ID, "renewal", false)
	for _, id := range run.Messages {
		m, found := r.e.Message(id)
		if !found {
			continue
		}
		if !m.Test {
			cr.fail(RuleScenario, "internal: the debug renewal was sent without testFlag 1: %s", m.Body)
		}
		for _, when := range []string{"replayed (a dial test in the morning)", "replayed (a dial test in the afternoon)"} {
			r.deliverAgain(ctx, cr, m, when)
		}
	}
}

// licenseDebugApart releases a code no seller has heard of with a debug
// call (testFlag 1, as the debugger and the dial tests send), then renews
// the real code of the same name (testFlag 0): debug calls keep codes of
// their own, so the renewal must answer 000000, not find the code
// released.
func (r *runner) licenseDebugApart(ctx context.Context) {
	cr := r.begin("license/debug-apart", "debug codes kept apart: a debug releaseLicenseCode (testFlag 1) of a code, then a real refreshLicenseCode RENEWAL (testFlag 0) of the same code, answers 000000", suiteSpec[RuleLicenseDebugApart])
	defer r.end(cr)
	code := newCode()
	debug := licenseCall(protocol.ActivityReleaseLicenseCode, protocol.ReleaseLicenseCodeRequest{
		ActivityName: protocol.ActivityReleaseLicenseCode, License: code, TestFlag: "1",
	})
	if _, ok := r.send(ctx, cr, debug, r.licenseCallTr(debug, unknownCodeAs(debug.Interface, string(debug.Body)))); !ok {
		return
	}
	renewal := r.renewalOf(code)
	r.send(ctx, cr, renewal, r.licenseCallTr(renewal, unknownCodeAs(renewal.Interface, string(renewal.Body)),
		resultCodeAs(RuleLicenseDebugApart, func(got protocol.ResultCode) string {
			return fmt.Sprintf("the seller %s to a real (testFlag 0) refreshLicenseCode RENEWAL of license code %s after a debug (testFlag 1) releaseLicenseCode of the same code, want 000000: "+
				"debug calls (the Seller Center debugger, the twice-daily dial tests) must not touch a real code; keep the debug codes apart", answered(got), code)
		})))
}

// licenseTamper is one way of breaking a license call's authentication.
type licenseTamper struct {
	tamper      emulator.Tamper
	what, fault string
}

// licenseAuthTries sends, for each way given, a release of a code no
// seller has heard of, tampered so that it must answer 000001, then a
// correctly signed renewal of the same code, which must answer 000000:
// the refused release changed nothing. With nonce set, a good renewal
// signed with that nonce comes first and records the code.
func (r *runner) licenseAuthTries(ctx context.Context, cr *caseRun, rule string, nonce string, tries ...licenseTamper) {
	for _, try := range tries {
		code := newCode()
		if nonce != "" {
			c := r.renewalOf(code)
			c.Tamper.Nonce = nonce
			if _, ok := r.send(ctx, cr, c, r.licenseCallTr(c, unknownCodeAs(c.Interface, string(c.Body)))); !ok {
				return
			}
		}
		forged := releaseOf(code, authFailed...)
		forged.Tamper = try.tamper
		r.send(ctx, cr, forged, r.licenseCallTr(forged, func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
			if v.Rule != emulator.RuleResultCode {
				return Failure{}, false
			}
			msg := fmt.Sprintf("the seller %s to a releaseLicenseCode %s, want 000001 (authentication failed)", answered(a.ResultCode), try.what)
			if a.ResultCode == protocol.CodeSuccess {
				msg = fmt.Sprintf("the seller accepted a releaseLicenseCode %s: %s", try.what, try.fault)
			}
			return Failure{Rule: rule, Message: msg, Spec: suiteSpec[rule]}, true
		}))
		after := r.renewalOf(code)
		r.send(ctx, cr, after, r.licenseCallTr(after, unknownCodeAs(after.Interface, string(after.Body)),
			func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
				if v.Rule != emulator.RuleResultCode {
					return Failure{}, false
				}
				return Failure{Rule: rule, Spec: suiteSpec[rule], Message: fmt.Sprintf(
					"a correctly signed renewal of license code %s after the releaseLicenseCode %s %s, want 000000: a call that must be refused must change nothing (the code must not be released)",
					code, try.what, answered(a.ResultCode))}, true
			}))
	}
}

func (r *runner) licenseWrongKey(ctx context.Context) {
	cr := r.begin("license/wrong-key", "a releaseLicenseCode signed with a made-up key, or with the basic key, answers 000001 and changes nothing", suiteSpec[RuleLicenseKey])
	defer r.end(cr)
	cfg := r.e.Config()
	tries := []licenseTamper{{emulator.Tamper{Key: "conformance-made-up-key-" + emulator.NewNonce()}, "signed with a made-up key",
		"it does not check the signature of license calls"}}
	if cfg.KeyFor(emulator.KeyLicense) == cfg.Key {
		cr.c.Note = "the license key is the basic key (no license key configured): only a made-up key is tried; give the suite the key bound to License授权码交付接口 to check that the basic key is refused"
	} else {
		tries = append(tries, licenseTamper{emulator.Tamper{Key: cfg.Key}, "signed with the basic key",
			"it verifies license calls with the basic-interface key (基础接口); they are signed with the key bound to the license interfaces (License授权码交付接口)"})
	}
	r.licenseAuthTries(ctx, cr, RuleLicenseKey, "", tries...)
}

func (r *runner) licenseStaleTimestamp(ctx context.Context) {
	cr := r.begin("license/stale-timestamp", fmt.Sprintf("a correctly signed releaseLicenseCode with a timestamp %v old, or %v ahead, answers 000001 and changes nothing", staleBy, staleBy), specLicenseAuth+" (60 s window)")
	defer r.end(cr)
	r.licenseAuthTries(ctx, cr, RuleTimestamp, "",
		licenseTamper{emulator.Tamper{Skew: -staleBy}, fmt.Sprintf("whose timestamp was %v old", staleBy), "it does not check the 60 s timestamp window"},
		licenseTamper{emulator.Tamper{Skew: staleBy}, fmt.Sprintf("whose timestamp was %v ahead", staleBy), "it checks only that the timestamp is not too old; the 60 s window holds both ways"})
}

func (r *runner) licenseReplayedNonce(ctx context.Context) {
	cr := r.begin("license/replayed-nonce", "a correctly signed releaseLicenseCode reusing the nonce of an earlier license call answers 000001 and changes nothing", specLicenseAuth+" (nonce cache)")
	defer r.end(cr)
	nonce := emulator.NewNonce()
	r.licenseAuthTries(ctx, cr, RuleNonce, nonce,
		licenseTamper{emulator.Tamper{Nonce: nonce}, "that reused the nonce of an earlier call", "it does not remember nonces (no replay defence)"})
}

// licenseParamCase sends one malformed license call: it must answer
// 000002.
func (r *runner) licenseParamCase(ctx context.Context, id, title, what string, c emulator.Call) {
	cr := r.begin(id, title, specLicenseParam)
	defer r.end(cr)
	c.Expect = invalidParam
	r.send(ctx, cr, c, r.licenseCallTr(c, resultCodeAs(RuleValidation, func(got protocol.ResultCode) string {
		if got == protocol.CodeSuccess {
			return fmt.Sprintf("the seller answered 000000 to %s: it does not validate license calls, want 000002 (invalid parameter)", what)
		}
		return fmt.Sprintf("the seller %s to %s, want 000002 (invalid parameter)", answered(got), what)
	})))
}

// refreshFields is a good refreshLicenseCode as fields, for the
// validation cases to spoil.
func (r *runner) refreshFields() map[string]string {
	order, line := newRenewalOrder()
	return map[string]string{
		"activity": protocol.ActivityRefreshLicenseCode, "expireTime": protocol.FormatTime14(r.e.Now().UTC().AddDate(1, 0, 0)),
		"license": newCode(), "orderId": order, "orderLineId": line, "scene": protocol.SceneRenewal, "testFlag": "0",
	}
}

func (r *runner) licenseMissingLicense(ctx context.Context) {
	f := r.refreshFields()
	delete(f, "license")
	r.licenseParamCase(ctx, "license/missing-license", "refreshLicenseCode without license answers 000002",
		"a refreshLicenseCode without license", licenseCall(protocol.ActivityRefreshLicenseCode, f))
}

func (r *runner) licenseBadExpireTime(ctx context.Context) {
	f := r.refreshFields()
	f["expireTime"] = r.e.Now().UTC().AddDate(1, 0, 0).Format(time.DateTime)
	r.licenseParamCase(ctx, "license/bad-expire-time", "refreshLicenseCode whose expireTime is not yyyyMMddHHmmss answers 000002",
		fmt.Sprintf("a refreshLicenseCode with expireTime %q", f["expireTime"]), licenseCall(protocol.ActivityRefreshLicenseCode, f))
}

func (r *runner) licenseUnknownStatus(ctx context.Context) {
	const status = "PAUSE"
	r.licenseParamCase(ctx, "license/unknown-status", "updateLicenseCodeStatus with a status other than FREEZE or UNFREEZE answers 000002",
		fmt.Sprintf("an updateLicenseCodeStatus with status %q", status),
		licenseCall(protocol.ActivityUpdateLicenseCodeStatus, map[string]string{
			"activity": protocol.ActivityUpdateLicenseCodeStatus, "license": newCode(), "status": status, "testFlag": "0",
		}))
}

func (r *runner) licenseUnknownActivity(ctx context.Context) {
	const activity = "noSuchLicenseActivity"
	r.licenseParamCase(ctx, "license/unknown-activity", "a license call with an unknown activity answers 000002",
		fmt.Sprintf("a license call with the unknown activity %q", activity),
		licenseCall(activity, map[string]string{"activity": activity, "license": newCode(), "testFlag": "0"}))
}

func (r *runner) licenseDuplicateKey(ctx context.Context) {
	body := fmt.Sprintf(`{"activity":%q,"license":%q,"license":%q,"testFlag":"0"}`, protocol.ActivityReleaseLicenseCode, newCode(), newCode())
	r.licenseParamCase(ctx, "license/duplicate-key", "a releaseLicenseCode naming license twice (a duplicate JSON key) answers 000002: which code is meant is ambiguous",
		"a releaseLicenseCode whose body has the key license twice",
		emulator.Call{Family: emulator.LicenseCode, Interface: protocol.ActivityReleaseLicenseCode, Body: []byte(body)})
}
