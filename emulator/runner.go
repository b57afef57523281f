package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// Purchase places an order for p and plays the purchase (or trial):
// newInstance, then queryInstance polling after 000004. Polling goes on in
// the background after Purchase returns, except with Config.NoRetry, when
// Purchase polls itself so that the Run tells the outcome.
func (e *Emulator) Purchase(ctx context.Context, p PurchaseRequest) (Run, error) {
	name := "purchase"
	if p.Trial {
		name = "trial"
	}
	sc := findScenario(name)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Run{}, errClosed
	}
	prod, ok := e.productLocked(p.ProductID)
	if !ok {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: purchase: no product %q", p.ProductID)
	}
	if !slices.Contains(sc.modes, prod.ChargingMode) {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: purchase: %s products have no %s", prod.ChargingMode, sc.name)
	}
	if p.Trial && prod.TrialDays <= 0 {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: purchase: product %q has no trial", p.ProductID)
	}
	e.subSeq++
	sub := &Subscription{
		ID:           fmt.Sprintf("sub-%06d", e.subSeq),
		ProductID:    prod.ID,
		SKU:          prod.SKU,
		ChargingMode: prod.ChargingMode,
		Status:       StatusPending,
		Trial:        p.Trial,
		Test:         p.Test,
		PeriodType:   prod.PeriodType,
		PeriodNumber: prod.PeriodNumber,
		LinearValue:  1,
	}
	e.subs = append(e.subs, sub)
	e.subByID[sub.ID] = sub
	e.mu.Unlock()

	run, x := e.run(ctx, sc, sub, e.cfg.NoRetry)
	e.mu.Lock()
	provisioning := sub.Status == StatusProvisioning
	e.mu.Unlock()
	if run.OK && e.cfg.NoRetry && provisioning {
		ids, err := e.pollNow(ctx, sub, x)
		run.Messages = append(run.Messages, ids...)
		if err != nil {
			run.OK = false
			run.Err = err.Error()
		}
	}
	return run, nil
}

// Play plays the named scenario on a subscription. It refuses (with an
// error) a scenario that starts a purchase or does not fit the
// subscription's charging mode, status or trial; a call that fails is
// not an error but a Run with OK false.
func (e *Emulator) Play(ctx context.Context, subscriptionID, scenario string) (Run, error) {
	sc := findScenario(scenario)
	if sc == nil {
		return Run{}, fmt.Errorf("emulator: play: no scenario %q", scenario)
	}
	if len(sc.from) == 0 {
		return Run{}, fmt.Errorf("emulator: play: %s starts a new purchase; use Purchase", scenario)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Run{}, errClosed
	}
	sub, ok := e.subByID[subscriptionID]
	if !ok {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: play: no subscription %q", subscriptionID)
	}
	why := ""
	switch {
	case !slices.Contains(sc.modes, sub.ChargingMode):
		why = fmt.Sprintf("not for %s subscriptions", sub.ChargingMode)
	case !slices.Contains(sc.from, sub.Status):
		why = fmt.Sprintf("the subscription is %s; it must be %v", sub.Status, sc.from)
	case sc.trial == trialOnly && !sub.Trial:
		why = "the subscription is not a trial"
	case sc.trial == formalOnly && sub.Trial:
		why = "the subscription is a trial; convert it first (trial-to-formal)"
	case sc.check != nil:
		why = sc.check(e, sub)
	}
	e.mu.Unlock()
	if why != "" {
		return Run{}, fmt.Errorf("emulator: play %s on %s: %s", scenario, subscriptionID, why)
	}
	run, _ := e.run(ctx, sc, sub, false)
	return run, nil
}

// run plays sc's steps on sub, one message each, and stops at the first
// step whose first attempt fails; that message's retries go on in the
// background and apply the step's change if one succeeds. It returns the
// last step's context.
func (e *Emulator) run(ctx context.Context, sc *scenario, sub *Subscription, syncPoll bool) (Run, *stepCtx) {
	r := Run{Scenario: sc.name, SubscriptionID: sub.ID, OK: true}
	var x *stepCtx
	for i, st := range sc.steps {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			r.OK, r.Err = false, errClosed.Error()
			return r, x
		}
		if st.before != nil {
			st.before(e, sub)
		}
		x = &stepCtx{scenario: sc.name, family: sc.family, syncPoll: syncPoll}
		if sub.Test {
			x.testFlag = "1"
		}
		if st.order != nil {
			spec, mockID := st.order(e, sub)
			x.spec = spec
			x.order = e.placeOrderLocked(sub, spec, mockID)
			if sub.Test && (spec.orderType == protocol.OrderTypeNew || spec.orderType == protocol.OrderTypeTrial) {
				// The debug order's canned period is the one the seller sees.
				if exp := mockOrderExpiry(mockID, e.orderTimeLocked()); !exp.IsZero() {
					x.spec.expire = exp
				}
			}
			if sub.OrderID == "" {
				sub.OrderID, sub.OrderLineID = x.order.id, x.order.line
			}
		}
		req := st.build(e, sub, x)
		d := e.stepDeliveryLocked(sc, st, sub, x, req)
		x.first = d.msg.FirstSentAt
		e.mu.Unlock()

		a := e.attempt(ctx, d, x.first, !e.cfg.NoRetry)
		r.Messages = append(r.Messages, d.msg.ID)
		if !a.OK() {
			r.OK = false
			r.Err = fmt.Sprintf("step %d (%s): %s", i+1, st.iface, joinViolations(a.Violations))
			break
		}
	}
	return r, x
}

// stepDeliveryLocked makes the message of one step.
func (e *Emulator) stepDeliveryLocked(sc *scenario, st step, sub *Subscription, x *stepCtx, req any) *delivery {
	first := marshal(req)
	var used atomic.Bool
	d := &delivery{
		fam:    sc.family,
		expect: st.expect,
		tamper: Tamper{},
		body: func() []byte {
			// The first attempt sends the logged body; later ones are
			// rebuilt when the step says so.
			if !used.Swap(true) || st.perAttempt == nil {
				return first
			}
			return marshal(st.perAttempt(req))
		},
	}
	if !e.cfg.NoRetry {
		d.policy = e.policyFor(sc.family, st.iface)
	}
	d.msg.Interface = st.iface
	d.msg.Scenario = sc.name
	d.msg.SubscriptionID = sub.ID
	d.msg.OrderID = x.order.id
	d.msg.InstanceID = sub.InstanceID
	d.msg.Test = sub.Test
	if st.apply != nil {
		d.onSuccess = func(a Attempt) {
			st.apply(e, sub, x, a)
			if d.msg.InstanceID == "" {
				d.msg.InstanceID = sub.InstanceID
			}
		}
	}
	if st.iface == protocol.ActivityNewInstance {
		d.onFail = func() { sub.Status = StatusFailed }
	}
	e.addLocked(d, first)
	return d
}

// marshal encodes a request as KooGallery does; the protocol types always
// encode.
func marshal(req any) []byte {
	b, err := protocol.Marshal(req)
	if err != nil {
		panic(fmt.Sprintf("emulator: encode %T: %v", req, err))
	}
	return b
}

// pollDeadline is when polling after 000004 gives up: the end of
// newInstance's retry window, counted from its first attempt.
func (e *Emulator) pollDeadline(x *stepCtx) time.Time {
	return x.first.Add(e.policyFor(x.family, protocol.ActivityNewInstance).Window)
}

// pollLaterLocked schedules the next queryInstance poll of sub, one
// PollInterval after prev, or fails the subscription when that is past
// the deadline.
func (e *Emulator) pollLaterLocked(sub *Subscription, x *stepCtx, prev time.Time) {
	next := prev.Add(e.cfg.PollInterval)
	if next.After(e.pollDeadline(x)) {
		sub.Status = StatusFailed
		return
	}
	e.afterLocked(next, func(ctx context.Context) {
		if done, _ := e.poll(ctx, sub, x, next); done {
			return
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if sub.Status == StatusProvisioning {
			e.pollLaterLocked(sub, x, next)
		}
	})
}

// pollNow polls sub until it is active or the deadline passes, waiting
// on the scaled clock between polls. It returns the poll messages.
func (e *Emulator) pollNow(ctx context.Context, sub *Subscription, x *stepCtx) ([]string, error) {
	var ids []string
	at := x.first // polls are counted from newInstance, as in the background
	deadline := e.pollDeadline(x)
	for {
		next := at.Add(e.cfg.PollInterval)
		if next.After(deadline) {
			e.mu.Lock()
			sub.Status = StatusFailed
			e.mu.Unlock()
			return ids, fmt.Errorf("queryInstance polling: no answer 000000 with the instance's info before %s, the end of newInstance's retry window", deadline.UTC().Format(time.RFC3339))
		}
		e.mu.Lock()
		wait := e.wallUntilLocked(next)
		e.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ids, fmt.Errorf("queryInstance polling: %w", ctx.Err())
		case <-e.ctx.Done():
			t.Stop()
			return ids, fmt.Errorf("queryInstance polling: %w", errClosed)
		}
		done, id := e.poll(ctx, sub, x, next)
		ids = append(ids, id)
		if done {
			return ids, nil
		}
		at = next
	}
}

// poll sends one queryInstance for a provisioning subscription; 000004
// is an acceptable answer that means "not yet". done reports that the
// answer was 000000 with the instance in it: the subscription is active.
func (e *Emulator) poll(ctx context.Context, sub *Subscription, x *stepCtx, at time.Time) (done bool, msgID string) {
	e.mu.Lock()
	req := protocol.QueryInstanceRequest{
		ActivityName: protocol.ActivityQueryInstance,
		InstanceID:   sub.InstanceID,
		TestFlag:     x.testFlag,
	}
	body := marshal(req)
	d := &delivery{
		fam:    x.family,
		expect: []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeProcessing},
		body:   func() []byte { return body },
	}
	d.msg.Interface = protocol.ActivityQueryInstance
	d.msg.Scenario = x.scenario
	d.msg.SubscriptionID = sub.ID
	d.msg.InstanceID = sub.InstanceID
	d.msg.Test = sub.Test
	e.addLocked(d, body)
	e.mu.Unlock()

	a := e.attempt(ctx, d, at, false)
	if !a.OK() || a.ResultCode != protocol.CodeSuccess || a.Response == nil {
		return false, d.msg.ID
	}
	r, ok := queryReply(a.Response.Body)
	if !ok {
		return false, d.msg.ID
	}
	for _, in := range r.Info {
		if in.InstanceID == req.InstanceID {
			e.mu.Lock()
			sub.Status = StatusActive
			sub.AppInfo = in.AppInfo
			e.mu.Unlock()
			return true, d.msg.ID
		}
	}
	return false, d.msg.ID
}

func queryReply(body string) (protocol.QueryInstanceResponse, bool) {
	var r protocol.QueryInstanceResponse
	if json.Unmarshal([]byte(body), &r) != nil {
		return r, false
	}
	return r, true
}
