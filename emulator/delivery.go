package emulator

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// maxMessages bounds the message log; older messages are forgotten.
const maxMessages = 10000

// Attempts kept per message: the first keepFirst and the last keepLast.
// A release retried every minute for an hour, with duplicates, would
// otherwise keep hundreds.
const (
	keepFirst = 10
	keepLast  = 40
)

// errReleased is the LastError of a retry cancelled by a release.
const errReleased = "subscription released"

// delivery is one message and what is needed to attempt it again.
type delivery struct {
	msg    Message
	fam    *Family
	expect []protocol.ResultCode
	tamper Tamper
	// body returns the body of one attempt; newInstance makes a fresh
	// businessId every time (saas-v2.md §3.1).
	body func() []byte
	// check, when set, reads an attempt that got an answer once more: it
	// adds violations of its own and may note what it found (a poll's
	// appInfo).
	check func(a *Attempt)
	// policy is the retry policy; the zero policy means one attempt.
	policy RetryPolicy
	// onSuccess applies the step's state change, once, after the first
	// successful attempt (first try, retry or redrive); e.mu is held.
	onSuccess func(a Attempt)
	// onFail runs, with e.mu held, when an attempt fails and no retry is
	// left.
	onFail func()
	// sub is the subscription a step changes, gen its generation when
	// the step was built: a success after another change is stale.
	sub *Subscription
	gen int
	// clock is the subscription whose clock the message's times and
	// retries run on (a poll's too, which changes none); nil: the
	// emulator's.
	clock *Subscription
	// sc and step locate the step in its scenario; detached is set once
	// the run has stopped at this step, so that a later success plays
	// the remaining steps.
	sc       *scenario
	step     int
	detached bool
	poll     bool // a queryInstance poll after 000004
	applied  bool // a success was handled (onSuccess ran unless stale)
	stale    bool // the success came after another change; nothing applied
	timer    *timerEntry
	// dups is how many extra copies of every attempt are sent besides
	// those the duplicates fault asks for (PurchaseRequest.Duplicates).
	dups int
	// inflight counts the attempts sent and not yet recorded: a retry
	// and a re-drive can overlap.
	inflight int
	// kitForm is the x-sign form of a KitV2 message; empty means
	// Config.KitSignForm.
	kitForm KitSignForm
	// run is the run the step belongs to; nil for a poll or Send.
	run *runState
}

// policyFor is the retry policy of iface: Config.Retry, else the family's.
func (e *Emulator) policyFor(f *Family, iface string) RetryPolicy {
	if p, ok := e.cfg.Retry[iface]; ok {
		return p
	}
	return f.Retry[iface]
}

// addLocked assigns d an ID, stamps it and adds it to the log, dropping
// the oldest messages beyond the log's capacity.
func (e *Emulator) addLocked(d *delivery, first []byte) {
	e.msgSeq++
	d.msg.ID = fmt.Sprintf("msg-%06d", e.msgSeq)
	d.msg.Family = d.fam.Name
	d.msg.Body = string(first)
	d.msg.Status = MessageSending
	d.msg.FirstSentAt = e.clockLocked(d.clock)
	if d.policy.Window > 0 {
		d.msg.Deadline = d.msg.FirstSentAt.Add(d.policy.Window)
	}
	e.log = append(e.log, d)
	e.byID[d.msg.ID] = d
	for len(e.log) > e.logCap {
		e.evictLocked()
	}
}

// evictLocked drops one message: the oldest finished one (success or
// failed, no attempt in flight), so that no live retry is lost. When no
// message is finished, the oldest is dropped after its failure path has
// run, so that its subscription does not wait forever; an attempt of it
// still in flight then changes nothing.
func (e *Emulator) evictLocked() {
	i := slices.IndexFunc(e.log, func(d *delivery) bool {
		return (d.msg.Status == MessageSuccess || d.msg.Status == MessageFailed) && d.inflight == 0
	})
	if i < 0 {
		i = 0
		e.failLocked(e.log[0], fmt.Sprintf("dropped from the message log (more than %d messages)", e.logCap))
	}
	delete(e.byID, e.log[i].msg.ID)
	e.log = slices.Delete(e.log, i, i+1)
}

// pendingLocked reports whether d has a retry scheduled.
func (e *Emulator) pendingLocked(d *delivery) bool {
	if d.timer == nil {
		return false
	}
	_, ok := e.timers[d.timer]
	return ok
}

// failLocked gives up on d: its retry is cancelled, it is failed with
// why, and its failure path runs if no success came before.
func (e *Emulator) failLocked(d *delivery, why string) {
	e.cancelLocked(d.timer)
	d.timer = nil
	if d.msg.Status == MessageSuccess {
		return
	}
	d.msg.Status = MessageFailed
	d.msg.NextAttempt = time.Time{}
	d.msg.LastError = why
	if d.onFail != nil && !d.applied {
		d.onFail()
	}
	d.run.retryEndedLocked(d, why)
}

// busyMessageLocked returns a message of subscription id that is in
// flight or waiting for a retry, polls aside, or nil.
func (e *Emulator) busyMessageLocked(id string) *delivery {
	for i := len(e.log) - 1; i >= 0; i-- {
		d := e.log[i]
		if d.msg.SubscriptionID == id && !d.poll && (d.msg.Status == MessageSending || d.msg.Status == MessageRetrying) {
			return d
		}
	}
	return nil
}

// recordLocked appends attempts to d, as stored (bodies cut), keeping
// the first keepFirst and the last keepLast.
func (d *delivery) recordLocked(atts []Attempt) {
	for _, a := range atts {
		d.msg.Attempts = append(d.msg.Attempts, a.stored())
	}
	if extra := len(d.msg.Attempts) - keepFirst - keepLast; extra > 0 {
		d.msg.Attempts = slices.Delete(d.msg.Attempts, keepFirst, keepFirst+extra)
		d.msg.DroppedAttempts += extra
	}
}

// attempt delivers d once at emulated time at (plus the duplicate copies
// the faults ask for), records the attempts and decides what comes next:
// success, a retry scheduled per the policy (when schedule is set), or
// failure. A failure while another attempt of d is in flight or a retry
// is scheduled leaves d retrying: the other decides. Nothing is recorded
// for a message dropped from the log meanwhile, nor for an attempt that
// Close cancelled. It returns the primary attempt, bodies whole.
func (e *Emulator) attempt(ctx context.Context, d *delivery, at time.Time, schedule bool) Attempt {
	e.mu.Lock()
	f := e.faults
	d.inflight++
	e.mu.Unlock()
	n := 1 + max(f.Duplicates, 0) + d.dups
	atts := make([]Attempt, n)
	var wg sync.WaitGroup
	for i := range n {
		c := Call{Interface: d.msg.Interface, Body: d.body(), Expect: d.expect, Tamper: d.tamper, KitForm: cmp.Or(d.kitForm, e.cfg.KitSignForm)}
		c.Tamper.Skew += f.ClockSkew
		wg.Go(func() {
			// The signature carries the wall clock, which the seller can
			// check; the log shows the emulated time.
			atts[i] = send(ctx, e.seller(d.fam), d.fam, c, e.cfg.Now())
			atts[i].At = at
		})
	}
	wg.Wait()
	if d.check != nil {
		for i := range atts {
			if atts[i].Response != nil {
				d.check(&atts[i])
			}
		}
	}
	if n > 1 {
		atts[0].Violations = append(atts[0].Violations, idempotence(d.msg.Interface, atts)...)
	}
	a := atts[0]

	e.mu.Lock()
	d.inflight--
	if e.byID[d.msg.ID] != d || e.closed && ctx.Err() != nil {
		e.mu.Unlock()
		return a
	}
	d.recordLocked(atts)
	var apply bool
	if a.OK() || e.keptLocked(a) {
		// Success, or (KeepGoing) an answer usable despite broken rules:
		// applied, but the message shows the rules broken.
		d.msg.Status = MessageSuccess
		if !a.OK() {
			d.msg.Status = MessageFailed
			d.msg.LastError = joinViolations(a.Violations)
		}
		d.msg.NextAttempt = time.Time{}
		e.cancelLocked(d.timer)
		d.timer = nil
		if !d.applied && d.onSuccess != nil {
			d.applied = true
			apply = true
		}
	} else {
		d.msg.LastError = joinViolations(a.Violations)
		next := at.Add(d.policy.Interval)
		pending := e.pendingLocked(d)
		released := d.sub != nil && d.sub.Status == StatusReleased
		switch {
		case released && !d.applied:
			// A release cancels what was pending; an attempt in flight
			// then must not schedule another.
			e.failLocked(d, errReleased)
		case schedule && d.policy.Interval > 0 && !next.After(d.msg.Deadline) && !e.closed:
			d.msg.Status = MessageRetrying
			d.msg.NextAttempt = next
			d.timer = e.afterLocked(next, d.clock, func(ctx context.Context) { e.attempt(ctx, d, next, true) })
		case pending || d.inflight > 0:
			// A re-drive failed while a retry is scheduled or in flight,
			// or the other way round: the other attempt decides.
			d.msg.Status = MessageRetrying
		default:
			d.msg.Status = MessageFailed
			d.msg.NextAttempt = time.Time{}
			if d.onFail != nil && !d.applied {
				d.onFail()
			}
			d.run.retryEndedLocked(d, d.msg.LastError)
		}
	}
	if apply {
		e.applyLocked(d, a)
	}
	id := d.msg.ID
	e.mu.Unlock()
	for _, x := range atts {
		e.cfg.Logger.Info("emulator: attempt",
			"interface", d.msg.Interface, "message", id, "resultCode", string(x.ResultCode),
			"violations", len(x.Violations), "duration", x.Duration)
	}
	return a
}

// applyLocked applies the change of d's step after its call succeeded,
// unless another change came first (then the success is stale and
// changes nothing). A release cancels the subscription's pending retries;
// a step the run stopped at plays the rest of its scenario.
func (e *Emulator) applyLocked(d *delivery, a Attempt) {
	sub := d.sub
	if sub == nil {
		d.onSuccess(a)
		return
	}
	if sub.gen != d.gen {
		d.stale = true
		d.msg.LastError = "the subscription changed after this message was first sent; its change was not applied"
		d.run.retryEndedLocked(d, d.msg.LastError)
		return
	}
	d.onSuccess(a)
	sub.gen++
	if sub.Status == StatusReleased {
		for _, o := range e.log {
			if o != d && o.msg.SubscriptionID == sub.ID && e.pendingLocked(o) {
				e.failLocked(o, errReleased)
			}
		}
	}
	if d.detached {
		started, declined := e.continueLocked(d, false)
		d.run.retrySucceededLocked(d, started, declined)
	}
}

// continueLocked plays, in the background, the steps of d's scenario
// after d's, once d's step has succeeded late (on a retry or re-drive).
// held says the caller already holds the subscription's busy flag, which
// passes to the continuation; otherwise the continuation takes it, and
// does not start when the subscription is busy. It reports whether the
// continuation started and, when there was a step left that it did not
// start, why not ("the rest of … was not played: …").
func (e *Emulator) continueLocked(d *delivery, held bool) (started bool, declined string) {
	next := d.step + 1
	if d.sc == nil || next >= len(d.sc.steps) {
		return false, ""
	}
	notPlayed := func(why string) string {
		return fmt.Sprintf("the rest of %s (%s) was not played: %s", d.sc.name, d.sc.steps[next].iface, why)
	}
	sub := d.sub
	switch {
	case d.stale:
		return false, notPlayed("the success was stale (the subscription changed after the message was first sent)")
	case e.closed:
		return false, notPlayed("the emulator was closed")
	case !held && sub.busy:
		d.msg.LastError = notPlayed("the subscription was busy")
		e.cfg.Logger.Warn("emulator: scenario not continued: subscription busy", "scenario", d.sc.name, "subscription", sub.ID, "message", d.msg.ID)
		return false, d.msg.LastError
	}
	if !held {
		sub.busy = true
	}
	sc, from, rs := d.sc, d.msg.ID, d.run
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		r, _, _ := e.run(e.ctx, sc, sub, next, false, rs)
		e.cfg.Logger.Info("emulator: scenario continued", "scenario", r.Scenario, "subscription", r.SubscriptionID,
			"after", from, "messages", strings.Join(r.Messages, ","), "ok", r.OK, "error", r.Err)
	}()
	return true, ""
}

// keptLocked reports whether, with Config.KeepGoing, an answer that broke
// rules is still usable: it arrived whole within the deadline, parsed,
// and carries an acceptable resultCode and the mandatory fields; only the
// rules on its form (Body-Sign, Content-Type, HTTP status, lengths, memo
// escaping) or on duplicates were broken.
func (e *Emulator) keptLocked(a Attempt) bool {
	if !e.cfg.KeepGoing || a.Response == nil || a.ResultCode == "" {
		return false
	}
	for _, v := range a.Violations {
		switch v.Rule {
		case RuleReachable, RuleDeadline, RuleJSON, RuleResultCode, RuleRequiredField:
			return false
		}
	}
	return true
}

// Equivalent returns the resultCodes that say what code says in an
// answer to iface: code itself, and for getLicenseAsync both 000000 and
// 000004 when code is one of them (either takes the application,
// license-openapi.md §C.6: a seller may answer 000004 while it generates
// the license and 000000 once it has). Duplicate deliveries of a call
// must get equivalent answers.
func Equivalent(iface string, code protocol.ResultCode) []protocol.ResultCode {
	if iface == protocol.ActivityGetLicenseAsync && (code == protocol.CodeSuccess || code == protocol.CodeProcessing) {
		return []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeProcessing}
	}
	return []protocol.ResultCode{code}
}

// idempotence compares the answers to duplicate deliveries: equivalent
// resultCodes and, for newInstance, the same instanceId (saas-v2.md
// §6.1). Copies that got no answer at all are not compared.
func idempotence(iface string, atts []Attempt) []Violation {
	var codes, ids []string
	var same []protocol.ResultCode // the codes equivalent to the first answer's
	split := false
	for _, a := range atts {
		if a.ResultCode == "" {
			continue
		}
		if same == nil {
			same = Equivalent(iface, a.ResultCode)
		} else if !slices.Contains(same, a.ResultCode) {
			split = true
		}
		if !slices.Contains(codes, string(a.ResultCode)) {
			codes = append(codes, string(a.ResultCode))
		}
		if iface == protocol.ActivityNewInstance && a.Response != nil {
			if id := instanceIDOf(a.Response.Body); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	var vs []Violation
	if split {
		vs = append(vs, violation(RuleIdempotent, "duplicate deliveries of %s got different resultCodes: %s", iface, strings.Join(codes, ", ")))
	}
	if len(ids) > 1 {
		vs = append(vs, violation(RuleIdempotent, "duplicate deliveries of newInstance for one order line got different instanceIds: %s", strings.Join(ids, ", ")))
	}
	return vs
}

// instanceIDOf reads instanceId from a newInstance answer.
func instanceIDOf(body string) string {
	var r struct {
		InstanceID protocol.FlexString `json:"instanceId"`
	}
	if json.Unmarshal([]byte(body), &r) != nil {
		return ""
	}
	return string(r.InstanceID)
}

func joinViolations(vs []Violation) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, "; ")
}

func (d *delivery) snapshot() Message {
	m := d.msg
	m.Attempts = slices.Clone(d.msg.Attempts)
	return m
}

// Send delivers one call once (faults apply, no retries) to its family's
// URL, signed with its family's key (V2 when Call.Family is nil), logs it
// as a message with no scenario and returns the message.
func (e *Emulator) Send(ctx context.Context, c Call) (Message, error) {
	if c.Interface == "" {
		return Message{}, fmt.Errorf("emulator: send: Interface is required")
	}
	f := c.Family
	if f == nil {
		f = V2
	}
	if f.Prepare == nil {
		return Message{}, fmt.Errorf("emulator: send: family %q has no Prepare", f.Name)
	}
	body := c.Body
	d := &delivery{
		fam:     f,
		expect:  c.Expect,
		tamper:  c.Tamper,
		body:    func() []byte { return body },
		kitForm: c.KitForm,
	}
	d.msg.Interface = c.Interface
	if f.TestFlag != nil {
		d.msg.Test = f.TestFlag(body)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Message{}, errClosed
	}
	e.addLocked(d, body)
	at := d.msg.FirstSentAt
	e.mu.Unlock()
	e.attempt(ctx, d, at, false)
	e.mu.Lock()
	defer e.mu.Unlock()
	return d.snapshot(), nil
}

// Messages lists the message log, newest first.
func (e *Emulator) Messages(f MessageFilter) []Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Message
	for i := len(e.log) - 1; i >= 0; i-- {
		d := e.log[i]
		switch {
		case f.SubscriptionID != "" && d.msg.SubscriptionID != f.SubscriptionID,
			f.Interface != "" && d.msg.Interface != f.Interface,
			f.Status != "" && d.msg.Status != f.Status:
			continue
		}
		out = append(out, d.snapshot())
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}

// Message returns one message.
func (e *Emulator) Message(id string) (Message, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.byID[id]
	if !ok {
		return Message{}, false
	}
	return d.snapshot(), true
}

// Redrive re-sends a message now ("重新启动") and returns it with the new
// attempt appended. A success turns a failed message into a successful one
// and applies the step's state change if no earlier attempt did and the
// subscription has not changed since (a stale change is skipped); a retry
// already scheduled is then cancelled, and the scenario's remaining steps
// are played in the background. A failure schedules nothing new. Redrive
// refuses (ErrConflict) a message whose subscription is busy with a
// scenario; an unknown message is ErrNotFound.
func (e *Emulator) Redrive(ctx context.Context, id string) (Message, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Message{}, errClosed
	}
	d, ok := e.byID[id]
	if !ok {
		e.mu.Unlock()
		return Message{}, fmt.Errorf("emulator: redrive: message %q: %w", id, ErrNotFound)
	}
	if d.sub != nil && d.sub.busy && !d.applied {
		e.mu.Unlock()
		return Message{}, fmt.Errorf("emulator: redrive %s: %w: subscription %s is busy with a scenario; try again when it ends", id, ErrConflict, d.sub.ID)
	}
	at := e.clockLocked(d.clock)
	e.mu.Unlock()
	e.attempt(ctx, d, at, false)
	e.mu.Lock()
	defer e.mu.Unlock()
	return d.snapshot(), nil
}

// seller is the target of family f's calls as send wants it: the
// family's URL and the key of its interface type.
func (e *Emulator) seller(f *Family) seller {
	return seller{
		client: e.cfg.HTTPClient, url: f.target(e.cfg), key: e.cfg.KeyFor(f.keyType(e.cfg)),
		deadline: e.cfg.Deadline, bodySignOptional: e.cfg.BodySignOptional,
	}
}
