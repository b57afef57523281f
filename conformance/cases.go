package conformance

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
)

// scenarioCase describes the case that plays one emulator scenario.
type scenarioCase struct {
	title, spec string
}

// scenarioCases are the per-profile cases, by emulator scenario name; the
// case ID is "<profile>/<scenario>".
var scenarioCases = map[string]scenarioCase{
	"purchase":            {"purchase: newInstance for a new order (polling queryInstance after 000004)", "saas-v2.md §3.1, §6.3, §6.4"},
	"query":               {"queryInstance reports the instance and its app info", "saas-v2.md §3.2, §1.4"},
	"trial":               {"trial purchase: newInstance for a TRIAL order", "saas-v2.md §3.1, §6.8"},
	"trial-to-formal":     {"trial converted: refreshInstance TRIAL_TO_FORMAL", "saas-v2.md §3.3, §6.8"},
	"renewal":             {"renewal: refreshInstance RENEWAL with the new absolute expiry", "saas-v2.md §3.3"},
	"unsubscribe-renewal": {"renewal period unsubscribed: refreshInstance UNSUBSCRIBE_RENEWAL_PERIOD", "saas-v2.md §3.3"},
	"renewal-change":      {"renewal with change: changeInstanceCheck, then refreshInstance RENEWAL_CHANGE", "saas-v2.md §3.7, §3.3"},
	"upgrade":             {"upgrade: upgradeInstance for a CHANGE order", "saas-v2.md §3.6"},
	"expire":              {"expiry: updateInstanceStatus FREEZE", "saas-v2.md §3.4, §6.3"},
	"unfreeze":            {"renewal during the freeze: refreshInstance RENEWAL, updateInstanceStatus UNFREEZE", "saas-v2.md §3.3, §3.4"},
	"release":             {"release: releaseInstance (PERIOD: after expiry and the retention period; other modes: unsubscribed)", "saas-v2.md §3.5, §6.3"},
	"unsubscribe":         {"unsubscribe: a second purchase, then releaseInstance with its UNSUBSCRIBE order", "saas-v2.md §3.5, §6.3"},
	"arrears-freeze":      {"arrears: updateInstanceStatus FREEZE", "saas-v2.md §3.4, §6.3"},
	"arrears-unfreeze":    {"arrears settled: updateInstanceStatus UNFREEZE", "saas-v2.md §3.4, §6.3"},
}

// profileScenarios lists, per charging mode, the scenarios played on the
// profile's first purchase after "purchase" and "query". Trial and
// unsubscribe have their own subscriptions.
var profileScenarios = map[string][]string{
	protocol.ChargingPeriod:      {"trial", "trial-to-formal", "renewal", "unsubscribe-renewal", "renewal-change", "upgrade", "expire", "unfreeze", "release", "unsubscribe"},
	protocol.ChargingOneTime:     {"release"},
	protocol.ChargingOnDemand:    {"arrears-freeze", "arrears-unfreeze", "release"},
	protocol.ChargingOnDemandPkg: {"arrears-freeze", "arrears-unfreeze", "release"},
}

// profile runs every case of one charging-mode profile on product p.
func (r *runner) profile(ctx context.Context, name string, p emulator.Product) {
	id := func(s string) string { return name + "/" + s }
	sub, ok := r.purchaseCase(ctx, id("purchase"), scenarioCases["purchase"], emulator.PurchaseRequest{ProductID: p.ID})
	r.playCase(ctx, id("query"), "query", sub, ok, id("purchase"))
	var trial string
	trialOK := false
	for _, s := range profileScenarios[p.ChargingMode] {
		if ctx.Err() != nil {
			return
		}
		switch s {
		case "trial":
			trial, trialOK = r.purchaseCase(ctx, id(s), scenarioCases[s], emulator.PurchaseRequest{ProductID: p.ID, Trial: true})
		case "trial-to-formal":
			r.playCase(ctx, id(s), s, trial, trialOK, id("trial"))
		case "unsubscribe":
			r.unsubscribeCase(ctx, id(s), p)
		default:
			r.playCase(ctx, id(s), s, sub, ok, id("purchase"))
		}
	}
	r.debugPurchaseCase(ctx, id("debug-purchase"), p)
}

// purchaseCase buys p and checks that the purchase ends with an active
// instance. It returns the subscription and whether it is usable: active
// with an instance, whatever rules the answers broke besides.
func (r *runner) purchaseCase(ctx context.Context, id string, sc scenarioCase, req emulator.PurchaseRequest) (string, bool) {
	cr := r.begin(id, sc.title, sc.spec)
	defer r.end(cr)
	return r.purchase(ctx, cr, req)
}

// purchase places a purchase within case cr. It returns the subscription
// and whether it is usable: active with an instance. A purchase whose
// answers broke rules on their form only (no Body-Sign, a wrong
// Content-Type…) is usable (emulator.Config.KeepGoing applied it): the
// cases built on it run and report their own failures.
func (r *runner) purchase(ctx context.Context, cr *caseRun, req emulator.PurchaseRequest) (string, bool) {
	sub, ok := r.purchaseWith(ctx, cr, req, nil)
	return sub.ID, ok
}

// purchaseWith is purchase with the violations of each message passed
// through tr(message), when tr is not nil; it returns the subscription.
func (r *runner) purchaseWith(ctx context.Context, cr *caseRun, req emulator.PurchaseRequest, tr func(m emulator.Message) translate) (emulator.Subscription, bool) {
	run, err := r.e.Purchase(ctx, req)
	clean := r.addRunWith(cr, run, err, tr)
	if err != nil {
		return emulator.Subscription{}, false
	}
	sub, found := r.e.Subscription(run.SubscriptionID)
	usable := sub.Status == emulator.StatusActive && sub.InstanceID != ""
	switch {
	case !found:
		cr.fail(RuleScenario, "the purchase left no subscription")
		return emulator.Subscription{}, false
	case clean && !usable:
		cr.fail(RuleScenario, "after the purchase the subscription is %s with instanceId %q, want active with an instance", sub.Status, sub.InstanceID)
	}
	return sub, usable
}

// playCase plays scenario on subscription sub; usable false means the case
// it builds on (after) failed, and the case is not run.
func (r *runner) playCase(ctx context.Context, id, scenario, sub string, usable bool, after string) {
	sc := scenarioCases[scenario]
	cr := r.begin(id, sc.title, sc.spec)
	defer r.end(cr)
	if !usable {
		cr.fail(RuleNotRun, "not run: %s did not leave an active instance to play %s on", after, scenario)
		return
	}
	r.play(ctx, cr, sub, scenario)
	if ifaces := notImplemented(cr.c); len(ifaces) > 0 {
		r.optional(cr, ifaces)
	}
}

// optionalInterfaces are the interfaces a seller need not implement
// (saas-v2.md §1.3, "O"). One it does not implement answers 000002, as
// any unknown activity does (§3.0).
var optionalInterfaces = []string{protocol.ActivityUpgradeInstance, protocol.ActivityChangeInstanceCheck}

// notImplementedNote is what a skipped case says about the interface.
const notImplementedNote = "not implemented (optional, saas-v2.md §1.3)"

// notImplemented returns the optional interfaces case c found not
// implemented: every failure of the case is the result-code violation of
// an optional interface's answer 000002 that broke no other rule. It
// returns nil when the case failed for anything else.
func notImplemented(c Case) []string {
	var ifaces []string
	for _, x := range c.Exchanges {
		if len(x.Violations) == 0 {
			continue
		}
		if !slices.Contains(optionalInterfaces, x.Interface) || x.ResultCode != protocol.CodeInvalidParam ||
			len(x.Violations) != 1 || x.Violations[0].Rule != emulator.RuleResultCode {
			return nil
		}
		ifaces = append(ifaces, x.Interface)
	}
	if len(c.Failures) != len(ifaces) {
		return nil
	}
	for _, f := range c.Failures {
		if f.Rule != string(emulator.RuleResultCode) {
			return nil
		}
	}
	return dedupe(ifaces)
}

// optional skips case cr, whose optional interfaces are not implemented,
// or with Config.RequireOptional keeps it failed and says why.
func (r *runner) optional(cr *caseRun, ifaces []string) {
	note := strings.Join(ifaces, ", ") + ": " + notImplementedNote
	if r.cfg.RequireOptional {
		cr.c.Note = note + "; --require-optional makes it a failure"
		return
	}
	cr.c.Failures = nil
	cr.c.Skipped = true
	cr.c.Note = note
}

// play plays one scenario within case cr and applies the checks the
// scenario's answers get beyond the emulator's. A scenario that does not
// apply to the subscription's charging mode is replaced by its
// counterpart (a one-time or pay-per-use instance is released by
// unsubscribing it), and one that starts from a frozen instance is
// preceded by the freeze that mode has.
func (r *runner) play(ctx context.Context, cr *caseRun, subID, scenario string) bool {
	sub, _ := r.e.Subscription(subID)
	def, ok := r.scenario(scenario)
	if ok && !slices.Contains(def.Modes, sub.ChargingMode) {
		if alt, found := modeCounterpart[scenario]; found {
			scenario = alt
			def, ok = r.scenario(scenario)
		}
	}
	if ok && !slices.Contains(def.From, sub.Status) && sub.Status == emulator.StatusActive && slices.Contains(def.From, emulator.StatusFrozen) {
		freeze := "expire"
		if sub.ChargingMode != protocol.ChargingPeriod {
			freeze = "arrears-freeze"
		}
		run, err := r.e.Play(ctx, subID, freeze)
		r.addRun(cr, run, err)
		// A freeze that broke rules but was applied still lets the
		// scenario run; one that was not leaves nothing to play on.
		if s, _ := r.e.Subscription(subID); err != nil || s.Status != emulator.StatusFrozen {
			return false
		}
	}
	run, err := r.e.Play(ctx, subID, scenario)
	done := r.addRun(cr, run, err)
	if err == nil && scenario == "query" {
		r.checkQuery(cr, subID)
	}
	return done
}

// modeCounterpart names the scenario played instead of one that does not
// apply to a charging mode.
var modeCounterpart = map[string]string{"release": "unsubscribe"}

// scenario returns the emulator's description of a scenario.
func (r *runner) scenario(name string) (emulator.Scenario, bool) {
	for _, s := range r.e.Scenarios() {
		if s.Name == name {
			return s, true
		}
	}
	return emulator.Scenario{}, false
}

// checkQuery checks that the last queryInstance answer, if it was
// 000000, reports the subscription's instance: an empty 000000 leaves the
// buyer with nothing (saas-v2.md §6.4). Other rules the answer broke do
// not stop the check.
func (r *runner) checkQuery(cr *caseRun, subID string) {
	sub, _ := r.e.Subscription(subID)
	for i := len(cr.c.Exchanges) - 1; i >= 0; i-- {
		x := cr.c.Exchanges[i]
		if x.Interface != protocol.ActivityQueryInstance || x.Response == nil {
			continue
		}
		if x.ResultCode != protocol.CodeSuccess {
			return // the wrong code is the emulator's result-code failure
		}
		var reply protocol.QueryInstanceResponse
		if json.Unmarshal([]byte(x.Response.Body), &reply) != nil {
			return // the emulator has reported the broken body
		}
		if !slices.ContainsFunc(reply.Info, func(in protocol.InstanceInfo) bool { return in.InstanceID == sub.InstanceID }) {
			cr.fail(RuleQueryInfo, "queryInstance for %s answered %s without an info entry for that instance", sub.InstanceID, x.ResultCode)
		}
		return
	}
}

// unsubscribeCase buys a second subscription and unsubscribes it.
func (r *runner) unsubscribeCase(ctx context.Context, id string, p emulator.Product) {
	sc := scenarioCases["unsubscribe"]
	cr := r.begin(id, sc.title, sc.spec)
	defer r.end(cr)
	sub, ok := r.purchase(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID})
	if !ok {
		return
	}
	r.play(ctx, cr, sub, "unsubscribe")
}

// debugPurchaseCase buys p as a debug purchase (a MOCK* order, testFlag
// "1", as the Seller Center debugger and the dial test do) and queries it.
func (r *runner) debugPurchaseCase(ctx context.Context, id string, p emulator.Product) {
	cr := r.begin(id, "debug purchase: newInstance with testFlag 1 on a MOCK* order, then queryInstance", "saas-v2.md §6.5, §6.6, §3.1, §3.2")
	defer r.end(cr)
	sub, ok := r.purchase(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID, Test: true})
	if !ok {
		return
	}
	if s, _ := r.e.Subscription(sub); !strings.HasPrefix(s.OrderID, "MOCK") {
		cr.fail(RuleScenario, "internal: the debug purchase used order %q, not a MOCK* order", s.OrderID)
	}
	r.play(ctx, cr, sub, "query")
}
