package emulator

import (
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

// delivery is one message and what is needed to attempt it again.
type delivery struct {
	msg    Message
	fam    *Family
	expect []protocol.ResultCode
	tamper Tamper
	// body returns the body of one attempt; newInstance makes a fresh
	// businessId every time (saas-v2.md §3.1).
	body func() []byte
	// policy is the retry policy; the zero policy means one attempt.
	policy RetryPolicy
	// onSuccess applies the step's state change, once, after the first
	// successful attempt (first try, retry or redrive); e.mu is held.
	onSuccess func(a Attempt)
	// onFail runs, with e.mu held, when an attempt fails and no retry is
	// left.
	onFail  func()
	applied bool
	timer   *timerEntry
}

// policyFor is the retry policy of iface: Config.Retry, else the family's.
func (e *Emulator) policyFor(f *Family, iface string) RetryPolicy {
	if p, ok := e.cfg.Retry[iface]; ok {
		return p
	}
	return f.Retry[iface]
}

// addLocked assigns d an ID, stamps it and adds it to the log, dropping
// the oldest message beyond maxMessages.
func (e *Emulator) addLocked(d *delivery, first []byte) {
	e.msgSeq++
	d.msg.ID = fmt.Sprintf("msg-%06d", e.msgSeq)
	d.msg.Family = d.fam.Name
	d.msg.Body = string(first)
	d.msg.Status = MessageSending
	d.msg.FirstSentAt = e.nowLocked()
	if d.policy.Window > 0 {
		d.msg.Deadline = d.msg.FirstSentAt.Add(d.policy.Window)
	}
	e.log = append(e.log, d)
	e.byID[d.msg.ID] = d
	if len(e.log) > maxMessages {
		old := e.log[0]
		e.cancelLocked(old.timer)
		delete(e.byID, old.msg.ID)
		e.log[0] = nil
		e.log = e.log[1:]
	}
}

// attempt delivers d once at emulated time at (plus the duplicate copies
// the faults ask for), records the attempts and decides what comes next:
// success, a retry scheduled per the policy (when schedule is set), or
// failure. It returns the primary attempt.
func (e *Emulator) attempt(ctx context.Context, d *delivery, at time.Time, schedule bool) Attempt {
	e.mu.Lock()
	f := e.faults
	e.mu.Unlock()
	n := 1 + max(f.Duplicates, 0)
	atts := make([]Attempt, n)
	var wg sync.WaitGroup
	for i := range n {
		c := Call{Interface: d.msg.Interface, Body: d.body(), Expect: d.expect, Tamper: d.tamper}
		c.Tamper.Skew += f.ClockSkew
		wg.Go(func() {
			// The signature carries the wall clock, which the seller can
			// check; the log shows the emulated time.
			atts[i] = send(ctx, e.cfg.HTTPClient, d.fam, e.cfg.Target, e.cfg.Key, c, e.cfg.Now(), e.cfg.Deadline)
			atts[i].At = at
		})
	}
	wg.Wait()
	if n > 1 {
		atts[0].Violations = append(atts[0].Violations, idempotence(d.msg.Interface, atts)...)
	}
	a := atts[0]

	e.mu.Lock()
	d.msg.Attempts = append(d.msg.Attempts, atts...)
	var apply bool
	if a.OK() {
		d.msg.Status = MessageSuccess
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
		_, pending := e.timers[d.timer]
		switch {
		case schedule && d.policy.Interval > 0 && !next.After(d.msg.Deadline) && !e.closed:
			d.msg.Status = MessageRetrying
			d.msg.NextAttempt = next
			d.timer = e.afterLocked(next, func(ctx context.Context) { e.attempt(ctx, d, next, true) })
		case pending: // a redrive failed while a retry is scheduled
			d.msg.Status = MessageRetrying
		default:
			d.msg.Status = MessageFailed
			d.msg.NextAttempt = time.Time{}
			if d.onFail != nil && !d.applied {
				d.onFail()
			}
		}
	}
	if apply {
		d.onSuccess(a)
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

// idempotence compares the answers to duplicate deliveries: the same
// resultCode and, for newInstance, the same instanceId (saas-v2.md §6.1).
// Copies that got no answer at all are not compared.
func idempotence(iface string, atts []Attempt) []Violation {
	var codes, ids []string
	for _, a := range atts {
		if a.ResultCode == "" {
			continue
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
	if len(codes) > 1 {
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

// Send delivers one call once (faults apply, no retries), logs it as a
// message with no scenario and returns the message.
func (e *Emulator) Send(ctx context.Context, c Call) (Message, error) {
	if c.Interface == "" {
		return Message{}, fmt.Errorf("emulator: send: Interface is required")
	}
	body := c.Body
	d := &delivery{
		fam:    V2,
		expect: c.Expect,
		tamper: c.Tamper,
		body:   func() []byte { return body },
	}
	d.msg.Interface = c.Interface
	d.msg.Test = strings.Contains(string(body), `"testFlag":"1"`)
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
// and applies the step's state change if no earlier attempt did; a retry
// already scheduled is then cancelled. A failure schedules nothing new.
func (e *Emulator) Redrive(ctx context.Context, id string) (Message, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Message{}, errClosed
	}
	d, ok := e.byID[id]
	if !ok {
		e.mu.Unlock()
		return Message{}, fmt.Errorf("emulator: redrive: no message %q", id)
	}
	at := e.nowLocked()
	e.mu.Unlock()
	e.attempt(ctx, d, at, false)
	e.mu.Lock()
	defer e.mu.Unlock()
	return d.snapshot(), nil
}
