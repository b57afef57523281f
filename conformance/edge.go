package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
)

// concurrentRepeats is how many newInstance calls edge/concurrent-new-instance
// sends at once.
const concurrentRepeats = 5

// staleBy is how far from now the timestamps of edge/stale-timestamp and
// edge/future-timestamp are: twice the 60 s window (saas-v2.md §2.2), so
// a seller whose clock is off by less than a minute still passes.
const staleBy = 2 * time.Minute

// edgeSub is the purchase the edge cases work on.
type edgeSub struct {
	// mode is the charging mode of the product the edge cases use.
	mode            string
	ok              bool
	orderID, lineID string
	instanceID      string
	notRunBecauseOf string
}

// edge runs the edge cases once, on a purchase of product p.
func (r *runner) edge(ctx context.Context, p emulator.Product) {
	es := r.repeatNewInstance(ctx, p)
	es.mode = p.ChargingMode
	if ctx.Err() != nil {
		return
	}
	r.concurrentNewInstance(ctx, p)
	steps := []func(context.Context, edgeSub){
		r.releaseTwice,
		r.unknownInstance,
		r.wrongSignature,
		r.missingSignature,
		r.staleTimestamp,
		r.futureTimestamp,
		r.missingTimestamp,
		r.replayedNonce,
		r.missingNonce,
		r.unknownActivity,
		r.missingField,
		r.overlongField,
	}
	for _, step := range steps {
		if ctx.Err() != nil {
			return
		}
		step(ctx, es)
	}
	r.deadline()
}

// send makes one call within case cr, translating violations with tr.
func (r *runner) send(ctx context.Context, cr *caseRun, c emulator.Call, tr translate) (emulator.Attempt, bool) {
	m, err := r.e.Send(ctx, c)
	if err != nil {
		cr.fail(RuleNotRun, "%s: %v", c.Interface, err)
		return emulator.Attempt{}, false
	}
	cr.add(m, tr)
	if len(m.Attempts) == 0 {
		cr.fail(RuleNotRun, "%s: the call was not delivered", c.Interface)
		return emulator.Attempt{}, false
	}
	return m.Attempts[len(m.Attempts)-1], true
}

// resultCodeAs turns a wrong resultCode into a failure of a suite rule
// with a message that names the fault; other violations stay as they are.
func resultCodeAs(rule string, message func(got protocol.ResultCode) string) translate {
	return func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		if v.Rule != emulator.RuleResultCode {
			return Failure{}, false
		}
		return Failure{Rule: rule, Message: message(a.ResultCode), Spec: suiteSpec[rule]}, true
	}
}

// answered describes a resultCode for a failure message.
func answered(code protocol.ResultCode) string {
	if code == "" {
		return "answered without a resultCode"
	}
	return fmt.Sprintf("answered %s (%s)", code, code.Meaning())
}

func mustMarshal(v any) []byte {
	b, err := protocol.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("conformance: marshal %T: %v", v, err)) // plain structs and maps of strings
	}
	return b
}

func newInstanceCall(orderID, lineID string) emulator.Call {
	return emulator.Call{
		Interface: protocol.ActivityNewInstance,
		Body: mustMarshal(protocol.NewInstanceRequest{
			ActivityName: protocol.ActivityNewInstance,
			BusinessID:   uuid.NewString(),
			OrderID:      orderID,
			OrderLineID:  lineID,
		}),
	}
}

// orderLineOf reads the orderLineId message m's body names.
func orderLineOf(m emulator.Message) string {
	var b struct {
		OrderLineID string `json:"orderLineId"`
	}
	_ = json.Unmarshal([]byte(m.Body), &b) // the emulator's own body
	return b.OrderLineID
}

// instanceIDOf reads the instanceId of a newInstance answer.
func instanceIDOf(a emulator.Attempt) string {
	if a.Response == nil {
		return ""
	}
	var reply protocol.NewInstanceResponse
	if json.Unmarshal([]byte(a.Response.Body), &reply) != nil {
		return ""
	}
	return reply.InstanceID
}

// repeatNewInstance buys p, then repeats newInstance for the same order
// line with a fresh businessId: the seller must answer the same instanceId.
// The edge cases work on the purchase as soon as it got an instanceId,
// whatever other rules its answers broke (those stay reported here).
func (r *runner) repeatNewInstance(ctx context.Context, p emulator.Product) edgeSub {
	cr := r.begin("edge/repeat-new-instance", "newInstance repeated for the same order line (fresh businessId) returns the same instanceId", suiteSpec[RuleIdempotentNewInstance])
	defer r.end(cr)
	sub, _ := r.purchaseWith(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID}, nil)
	if sub.InstanceID == "" {
		return edgeSub{notRunBecauseOf: "the purchase the edge cases work on got no instanceId (see edge/repeat-new-instance)"}
	}
	es := edgeSub{ok: true, orderID: sub.OrderID, lineID: sub.OrderLineID, instanceID: sub.InstanceID}
	if a, sent := r.send(ctx, cr, newInstanceCall(es.orderID, es.lineID), nil); sent && a.Response != nil {
		if got := instanceIDOf(a); got != es.instanceID {
			cr.fail(RuleIdempotentNewInstance, "newInstance repeated for order line %s returned instanceId %q, the first call %q: the seller created a second instance for the same order line", es.lineID, got, es.instanceID)
		}
	}
	return es
}

// notRun fails a case that needs the edge purchase when there is none.
func (es edgeSub) notRun(cr *caseRun) bool {
	if es.ok {
		return false
	}
	cr.fail(RuleNotRun, "not run: %s", es.notRunBecauseOf)
	return true
}

// concurrentNewInstance buys p once more, its newInstance delivered
// concurrentRepeats times at once (each with its own nonce and
// businessId), as KooGallery's duplicate deliveries are. The answers are
// judged by the emulator's own idempotency check: they must carry the
// same resultCode and the same instanceId (saas-v2.md §6.1). A seller
// that answers one 000000 and the others 000004 fails, as does one that
// creates more than one instance.
func (r *runner) concurrentNewInstance(ctx context.Context, p emulator.Product) {
	cr := r.begin("edge/concurrent-new-instance", fmt.Sprintf("%d concurrent newInstance calls for one new order line get one resultCode and one instanceId", concurrentRepeats), suiteSpec[RuleIdempotentNewInstance])
	defer r.end(cr)
	r.purchaseWith(ctx, cr, emulator.PurchaseRequest{ProductID: p.ID, Duplicates: concurrentRepeats - 1}, func(m emulator.Message) translate {
		return duplicatesAs(m, RuleIdempotentNewInstance, "newInstance")
	})
}

// duplicatesAs turns the emulator's idempotent violations on the answers
// to concurrent deliveries of message m (one for differing resultCodes,
// then one for differing instanceIds) into failures of a suite rule that
// name the resultCodes, in the order of the calls, and the instanceIds;
// other violations stay as they are.
func duplicatesAs(m emulator.Message, rule, what string) translate {
	var codes, distinct, ids []string
	for _, x := range m.Attempts {
		if x.ResultCode == "" {
			continue // no answer: not compared
		}
		codes = append(codes, string(x.ResultCode))
		if !slices.Contains(distinct, string(x.ResultCode)) {
			distinct = append(distinct, string(x.ResultCode))
		}
		if id := instanceIDOf(x); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	line := orderLineOf(m)
	codesTold := false
	return func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		if v.Rule != emulator.RuleIdempotent {
			return Failure{}, false
		}
		msg := fmt.Sprintf("%d concurrent %s calls for order line %s returned %d instanceIds (%s): the seller created more than one instance for one order line", len(m.Attempts), what, line, len(ids), strings.Join(ids, ", "))
		if len(distinct) > 1 && !codesTold {
			codesTold = true
			msg = fmt.Sprintf("%d concurrent %s calls for order line %s answered %s: duplicate deliveries must get the same resultCode", len(m.Attempts), what, line, strings.Join(codes, ", "))
		}
		return Failure{Rule: rule, Message: msg, Spec: suiteSpec[rule]}, true
	}
}

func releaseCall(instanceID string, expect ...protocol.ResultCode) emulator.Call {
	return emulator.Call{
		Interface: protocol.ActivityReleaseInstance,
		Body:      mustMarshal(protocol.ReleaseInstanceRequest{ActivityName: protocol.ActivityReleaseInstance, InstanceID: instanceID}),
		Expect:    expect,
	}
}

// releaseTwice releases the edge instance twice: both must answer 000000.
func (r *runner) releaseTwice(ctx context.Context, es edgeSub) {
	cr := r.begin("edge/release-twice", "releaseInstance of an instance already released answers 000000", suiteSpec[RuleIdempotentRelease])
	defer r.end(cr)
	if es.notRun(cr) {
		return
	}
	if _, ok := r.send(ctx, cr, releaseCall(es.instanceID), nil); !ok {
		return
	}
	r.send(ctx, cr, releaseCall(es.instanceID), resultCodeAs(RuleIdempotentRelease, func(got protocol.ResultCode) string {
		return fmt.Sprintf("the seller %s to a second releaseInstance of %s, want 000000: releasing an already released instance must succeed", answered(got), es.instanceID)
	}))
}

// neverIssued is an instanceId no seller has issued.
func neverIssued() string { return "conformance-never-issued-" + emulator.NewNonce() }

// unknownInstance calls refreshInstance, updateInstanceStatus and
// releaseInstance for an instanceId never issued: each must answer 000003.
// A ONE_TIME product has no refreshInstance or updateInstanceStatus
// (saas-v2.md §1.3, N/A), so then only releaseInstance is called.
func (r *runner) unknownInstance(ctx context.Context, es edgeSub) {
	oneTime := es.mode == protocol.ChargingOneTime
	title := "refreshInstance, updateInstanceStatus and releaseInstance of a never-issued instanceId answer 000003"
	if oneTime {
		title = "releaseInstance of a never-issued instanceId answers 000003"
	}
	cr := r.begin("edge/unknown-instance", title, suiteSpec[RuleUnknownInstance])
	defer r.end(cr)
	id := neverIssued()
	orderID, lineID := edgeOrder(es)
	expect := []protocol.ResultCode{protocol.CodeInstanceNotFound}
	calls := []emulator.Call{
		{Interface: protocol.ActivityRefreshInstance, Expect: expect, Body: mustMarshal(protocol.RefreshInstanceRequest{
			ActivityName: protocol.ActivityRefreshInstance,
			ExpireTime:   protocol.FormatTime14(time.Now().UTC().AddDate(1, 0, 0)),
			InstanceID:   id,
			OrderID:      orderID,
			OrderLineID:  lineID,
			Scene:        protocol.SceneRenewal,
		})},
		{Interface: protocol.ActivityUpdateInstanceStatus, Expect: expect, Body: mustMarshal(protocol.UpdateInstanceStatusRequest{
			ActivityName: protocol.ActivityUpdateInstanceStatus,
			InstanceID:   id,
			Status:       protocol.StatusFreeze,
		})},
		releaseCall(id, expect...),
	}
	if oneTime {
		calls = calls[2:]
		cr.c.Note = "only releaseInstance: refreshInstance and updateInstanceStatus are N/A for ONE_TIME products (saas-v2.md §1.3)"
	}
	for _, c := range calls {
		r.send(ctx, cr, c, resultCodeAs(RuleUnknownInstance, func(got protocol.ResultCode) string {
			return fmt.Sprintf("the seller %s to %s of instanceId %s, which it never issued, want 000003 (instance does not exist)", answered(got), c.Interface, id)
		}))
	}
}

// authProbe is the harmless call the authentication cases tamper with: a
// queryInstance of the edge instance (or of one never issued).
func authProbe(es edgeSub, t emulator.Tamper, expect ...protocol.ResultCode) emulator.Call {
	id := es.instanceID
	if id == "" {
		id = neverIssued()
	}
	return emulator.Call{
		Interface: protocol.ActivityQueryInstance,
		Body:      mustMarshal(protocol.QueryInstanceRequest{ActivityName: protocol.ActivityQueryInstance, InstanceID: id}),
		Expect:    expect,
		Tamper:    t,
	}
}

// authFailed is what a tampered call must answer.
var authFailed = []protocol.ResultCode{protocol.CodeAuthFailed}

func (r *runner) wrongSignature(ctx context.Context, es edgeSub) {
	cr := r.begin("edge/wrong-signature", "a call with a wrong signature (64 zeros) answers 000001", suiteSpec[RuleSignature])
	defer r.end(cr)
	bad := strings.Repeat("0", 64)
	r.send(ctx, cr, authProbe(es, emulator.Tamper{Signature: bad}, authFailed...), resultCodeAs(RuleSignature, func(got protocol.ResultCode) string {
		if got == protocol.CodeSuccess {
			return "the seller accepted a call with a wrong signature: it does not check signatures"
		}
		return fmt.Sprintf("the seller %s to a call with a wrong signature, want 000001 (authentication failed)", answered(got))
	}))
}

// missingParam sends the probe without query parameter param: a seller
// that checks it only when it is there accepts the call.
func (r *runner) missingParam(ctx context.Context, es edgeSub, id, param, rule string) {
	cr := r.begin(id, fmt.Sprintf("a call without the %s query parameter answers 000001", param), suiteSpec[rule])
	defer r.end(cr)
	r.send(ctx, cr, authProbe(es, emulator.Tamper{Omit: []string{param}}, authFailed...), resultCodeAs(rule, func(got protocol.ResultCode) string {
		if got == protocol.CodeSuccess || got == protocol.CodeInstanceNotFound {
			return fmt.Sprintf("the seller accepted a call without a %s: it skips the check when the parameter is absent (saas-v2.md §2.2)", param)
		}
		return fmt.Sprintf("the seller %s to a call without a %s, want 000001 (authentication failed)", answered(got), param)
	}))
}

func (r *runner) missingSignature(ctx context.Context, es edgeSub) {
	r.missingParam(ctx, es, "edge/missing-signature", "signature", RuleSignature)
}

func (r *runner) missingTimestamp(ctx context.Context, es edgeSub) {
	r.missingParam(ctx, es, "edge/missing-timestamp", "timestamp", RuleTimestamp)
}

func (r *runner) missingNonce(ctx context.Context, es edgeSub) {
	r.missingParam(ctx, es, "edge/missing-nonce", "nonce", RuleNonce)
}

// skewedTimestamp sends a correctly signed probe whose timestamp is skew
// away from now, beyond the 60 s window.
func (r *runner) skewedTimestamp(ctx context.Context, es edgeSub, id string, skew time.Duration, what, fault string) {
	cr := r.begin(id, fmt.Sprintf("a correctly signed call with a timestamp %s answers 000001", what), suiteSpec[RuleTimestamp])
	defer r.end(cr)
	r.send(ctx, cr, authProbe(es, emulator.Tamper{Skew: skew}, authFailed...), resultCodeAs(RuleTimestamp, func(got protocol.ResultCode) string {
		if got == protocol.CodeSuccess || got == protocol.CodeInstanceNotFound {
			return fmt.Sprintf("the seller accepted a call whose timestamp was %s: %s (saas-v2.md §2.2)", what, fault)
		}
		return fmt.Sprintf("the seller %s to a call whose timestamp was %s, want 000001 (authentication failed)", answered(got), what)
	}))
}

func (r *runner) staleTimestamp(ctx context.Context, es edgeSub) {
	r.skewedTimestamp(ctx, es, "edge/stale-timestamp", -staleBy, fmt.Sprintf("%v old", staleBy),
		"it does not check the 60 s timestamp window")
}

func (r *runner) futureTimestamp(ctx context.Context, es edgeSub) {
	r.skewedTimestamp(ctx, es, "edge/future-timestamp", staleBy, fmt.Sprintf("%v ahead", staleBy),
		"it checks only that the timestamp is not too old; the 60 s window holds both ways (|now − timestamp|)")
}

func (r *runner) replayedNonce(ctx context.Context, es edgeSub) {
	cr := r.begin("edge/replayed-nonce", "a correctly signed call reusing the nonce of an earlier call answers 000001", suiteSpec[RuleNonce])
	defer r.end(cr)
	nonce := emulator.NewNonce()
	// The first call is good: whether the instance is still there does
	// not matter, only that the seller takes the call.
	first := authProbe(es, emulator.Tamper{Nonce: nonce}, protocol.CodeSuccess, protocol.CodeInstanceNotFound)
	if _, ok := r.send(ctx, cr, first, nil); !ok {
		return
	}
	r.send(ctx, cr, authProbe(es, emulator.Tamper{Nonce: nonce}, authFailed...), resultCodeAs(RuleNonce, func(got protocol.ResultCode) string {
		if got == protocol.CodeSuccess || got == protocol.CodeInstanceNotFound {
			return "the seller accepted a call that reused the nonce of an earlier call: it does not remember nonces (no replay defence)"
		}
		return fmt.Sprintf("the seller %s to a call that reused a nonce, want 000001 (authentication failed)", answered(got))
	}))
}

// invalidParam is what a malformed call must answer.
var invalidParam = []protocol.ResultCode{protocol.CodeInvalidParam}

// validationCase sends one malformed call that must answer 000002.
func (r *runner) validationCase(ctx context.Context, id, title, what string, c emulator.Call) {
	cr := r.begin(id, title, suiteSpec[RuleValidation])
	defer r.end(cr)
	c.Expect = invalidParam
	r.send(ctx, cr, c, resultCodeAs(RuleValidation, func(got protocol.ResultCode) string {
		if got == protocol.CodeSuccess {
			return fmt.Sprintf("the seller answered 000000 to %s: it does not validate requests, want 000002 (invalid parameter)", what)
		}
		return fmt.Sprintf("the seller %s to %s, want 000002 (invalid parameter)", answered(got), what)
	}))
}

func (r *runner) unknownActivity(ctx context.Context, es edgeSub) {
	const activity = "noSuchActivity"
	r.validationCase(ctx, "edge/unknown-activity", "a call with an unknown activity answers 000002",
		fmt.Sprintf("a call with the unknown activity %q", activity),
		emulator.Call{Interface: activity, Body: mustMarshal(map[string]string{"activity": activity, "instanceId": neverIssued()})})
}

// edgeOrder is the order line the validation cases name: the edge
// purchase's, or a made-up one.
func edgeOrder(es edgeSub) (string, string) {
	if es.ok {
		return es.orderID, es.lineID
	}
	id := "CS" + strings.ToUpper(emulator.NewNonce()[:15])
	return id, id + "-000001"
}

func (r *runner) missingField(ctx context.Context, es edgeSub) {
	_, lineID := edgeOrder(es)
	r.validationCase(ctx, "edge/missing-field", "newInstance without orderId answers 000002",
		"a newInstance without orderId",
		emulator.Call{Interface: protocol.ActivityNewInstance, Body: mustMarshal(map[string]string{
			"activity":    protocol.ActivityNewInstance,
			"businessId":  uuid.NewString(),
			"orderLineId": lineID,
		})})
}

func (r *runner) overlongField(ctx context.Context, es edgeSub) {
	orderID, _ := edgeOrder(es)
	line := orderID + "-"
	line += strings.Repeat("9", 65-len(line))
	c := newInstanceCall(orderID, line)
	r.validationCase(ctx, "edge/overlong-field", "newInstance with an orderLineId of 65 characters (at most 64) answers 000002",
		"a newInstance whose orderLineId has 65 characters", c)
}

// deadline reports the slowest answer of the whole run against the
// deadline.
func (r *runner) deadline() {
	cr := r.begin("edge/deadline", fmt.Sprintf("every answer of the run came within the deadline (%v); the slowest is reported", r.cfg.Deadline), "saas-v2.md §1.1 (timeout), §6.4")
	defer r.end(cr)
	var (
		slowest Exchange
		in      string
		late    int
		total   int
	)
	for _, c := range r.report.Cases {
		for _, x := range c.Exchanges {
			if x.Interface == usageAPIInterface {
				continue // the suite calling the seller's usage API: no KooGallery deadline
			}
			// A call that got no answer at all (the target unreachable)
			// says nothing about the deadline; one cut off by it does.
			cutOff := emulator.Attempt{Violations: x.Violations}.Has(emulator.RuleDeadline)
			if x.Response == nil && !cutOff {
				continue
			}
			total++
			if x.Duration >= slowest.Duration {
				slowest, in = x, c.ID
			}
			if cutOff || x.Duration > r.cfg.Deadline {
				late++
			}
		}
	}
	if total == 0 {
		cr.fail(RuleNotRun, "not run: no call got an answer (see the reachable failures of the other cases)")
		return
	}
	slowest.Violations = onlyRule(slowest.Violations, emulator.RuleDeadline)
	cr.c.Exchanges = []Exchange{slowest}
	cr.c.Note = fmt.Sprintf("slowest answer: %s in %s took %v (deadline %v)", slowest.Interface, in, slowest.Duration.Round(time.Millisecond), r.cfg.Deadline)
	if late > 0 {
		cr.c.Failures = append(cr.c.Failures, Failure{
			Rule:    string(emulator.RuleDeadline),
			Message: fmt.Sprintf("%d of %d calls got no complete answer within %v; the slowest, %s in %s, took %v", late, total, r.cfg.Deadline, slowest.Interface, in, slowest.Duration.Round(time.Millisecond)),
			Spec:    "saas-v2.md §1.1 (timeout), §6.4",
		})
	}
}

func onlyRule(vs []emulator.Violation, rule emulator.Rule) []emulator.Violation {
	var out []emulator.Violation
	for _, v := range vs {
		if v.Rule == rule {
			out = append(out, v)
		}
	}
	return out
}
