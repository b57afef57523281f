package emulator

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/koobridge/koobridge/protocol"
)

// MaxQuantity caps PurchaseRequest.Quantity.
const MaxQuantity = 10000

// Purchase places an order for p and plays the scenario that starts the
// purchase: "purchase" (newInstance, then queryInstance polling after
// 000004), "trial", or "order-notify" (orderNotify for the new order).
// Polling goes on in the background after Purchase returns, except with
// Config.NoRetry, when Purchase polls itself so that the Run tells the
// outcome (Outcome shows the run pending meanwhile). An unknown product
// is ErrNotFound; an unknown scenario, one that does not start a
// purchase, a purchase the product does not offer (a trial of a product
// without one) and Duplicates out of range are plain errors.
func (e *Emulator) Purchase(ctx context.Context, p PurchaseRequest) (Run, error) {
	name := cmp.Or(p.Scenario, "purchase")
	if p.Trial {
		if name != "purchase" && name != "trial" {
			return Run{}, fmt.Errorf("emulator: purchase: a trial is bought with scenario trial, not %s", name)
		}
		name = "trial"
	}
	if p.Duplicates < 0 || p.Duplicates > maxDuplicates {
		return Run{}, fmt.Errorf("emulator: purchase: duplicates %d: want 0 to %d", p.Duplicates, maxDuplicates)
	}
	if p.Quantity < 0 || p.Quantity > MaxQuantity {
		return Run{}, fmt.Errorf("emulator: purchase: quantity %d: want 1 to %d (0 means 1)", p.Quantity, MaxQuantity)
	}
	sc := anyScenario(name)
	switch {
	case sc == nil:
		return Run{}, fmt.Errorf("emulator: purchase: unknown scenario %q; purchases start with %s", name, strings.Join(purchaseScenarioNames(), ", "))
	case len(sc.from) > 0:
		return Run{}, fmt.Errorf("emulator: purchase: scenario %s plays on a subscription (use Play); purchases start with %s", name, strings.Join(purchaseScenarioNames(), ", "))
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Run{}, errClosed
	}
	prod, ok := e.productLocked(p.ProductID)
	if !ok {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: purchase: product %q: %w", p.ProductID, ErrNotFound)
	}
	if sc = findScenario(name, prod.Protocol); sc == nil {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: purchase: scenario %s is not played on %s products", name, protocolOf(prod.Protocol))
	}
	if sc.joint && !prod.Joint {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: purchase: scenario %s needs a joint-operation product; %s is not one", name, prod.ID)
	}
	if sc.needs != nil {
		if why := sc.needs(e.cfg); why != "" {
			e.mu.Unlock()
			return Run{}, fmt.Errorf("emulator: purchase: %s: %w: %s", name, ErrConflict, why)
		}
	}
	if !slices.Contains(sc.modes, prod.ChargingMode) {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: purchase: %s products have no %s", prod.ChargingMode, sc.name)
	}
	if p.Trial && prod.TrialDays <= 0 {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: purchase: product %q has no trial", p.ProductID)
	}
	var start time.Time
	if !p.OrderTime.IsZero() {
		if err := e.checkOrderTimeLocked(p.OrderTime, prod); err != nil {
			e.mu.Unlock()
			return Run{}, err
		}
		start = p.OrderTime.UTC().Truncate(time.Second)
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
		LinearValue:  max(p.Quantity, 1),
		Protocol:     prod.Protocol,
		Joint:        prod.Joint,
		// Busy until the run ends; with NoRetry also through the polling
		// Purchase does itself. Background polling runs without it.
		busy: true,
		dups: p.Duplicates,
	}
	if !start.IsZero() {
		e.setStartLocked(sub, start)
	}
	e.subs = append(e.subs, sub)
	e.subByID[sub.ID] = sub
	e.mu.Unlock()

	run, x, completed := e.run(ctx, sc, sub, 0, e.cfg.NoRetry, nil)
	if !completed || !e.cfg.NoRetry {
		return run, nil // run has cleared busy or passed it on
	}
	defer e.idle(sub)
	e.mu.Lock()
	provisioning := sub.Status == StatusProvisioning
	e.mu.Unlock()
	if !provisioning {
		return run, nil
	}
	// The run is pending until this polling ends (Outcome meanwhile).
	ids, err := e.pollNow(ctx, sub, x)
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := x.run
	for _, id := range ids {
		rs.addMessageLocked(id) // polls that answered 000004 share one message
	}
	why := ""
	if err != nil {
		why = err.Error()
	}
	rs.pollEndedLocked(why) // unless a poll already ended it
	return e.runViewLocked(rs), nil
}

// checkOrderTimeLocked refuses a PurchaseRequest.OrderTime after the
// emulated now or more than MaxOrderAge before it, and one for a license
// product.
func (e *Emulator) checkOrderTimeLocked(t time.Time, prod Product) error {
	now := e.orderTimeLocked(nil) // a new subscription's clock starts at the emulator's
	switch at := t.UTC().Truncate(time.Second); {
	case prod.Protocol == ProtocolLicense || prod.Protocol == ProtocolOnlineLicense:
		return fmt.Errorf("emulator: purchase: orderTime is for SaaS products; %s is a %s product", prod.ID, prod.Protocol)
	case at.After(now):
		return fmt.Errorf("emulator: purchase: orderTime %s is in the future (the emulated clock says %s)", at.Format(time.RFC3339), now.Format(time.RFC3339))
	case at.Before(now.Add(-MaxOrderAge)):
		return fmt.Errorf("emulator: purchase: orderTime %s is more than 60 days before the emulated clock's %s", at.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

// purchaseScenarioNames lists the scenarios that start a purchase.
func purchaseScenarioNames() []string {
	var names []string
	for _, table := range scenarioTables {
		for _, s := range table {
			if len(s.from) == 0 && !slices.Contains(names, s.name) {
				names = append(names, s.name)
			}
		}
	}
	return names
}

// idle clears sub's busy flag: its scenario run has ended.
func (e *Emulator) idle(sub *Subscription) {
	e.mu.Lock()
	sub.busy = false
	e.mu.Unlock()
}

// Play plays the named scenario on a subscription. It refuses (with an
// error wrapping ErrConflict) a scenario that starts a purchase or does
// not fit the subscription's protocol, charging mode, status or trial,
// one the configuration cannot serve (bind without the seller's RSA
// public key), and any scenario while another runs on the subscription
// or one of its messages is in flight or waiting for a retry; an unknown
// subscription is ErrNotFound. A call that fails is not an error but a
// Run with OK false.
func (e *Emulator) Play(ctx context.Context, subscriptionID, scenario string) (Run, error) {
	return e.PlayWith(ctx, subscriptionID, scenario, PlayOptions{})
}

// PlayOptions are the arguments some scenarios take.
type PlayOptions struct {
	// UserName is the user revoke-user revokes; empty means the first
	// authorised user. It must be an authorised user of the tenant.
	UserName string `json:"userName,omitempty"`
	// DeviceFingerprint is the deviceFingerprint request-license sends
	// (at most 1024 characters); empty means a made-up one in the
	// license-openapi.md §D.3 format.
	DeviceFingerprint string `json:"deviceFingerprint,omitempty"`
}

// PlayWith is Play with the scenario's arguments. Options a scenario
// does not take are refused (a plain error).
func (e *Emulator) PlayWith(ctx context.Context, subscriptionID, scenario string, opts PlayOptions) (Run, error) {
	sc := anyScenario(scenario)
	if sc == nil {
		return Run{}, fmt.Errorf("emulator: play: unknown scenario %q; known: %s", scenario, strings.Join(scenarioNames(), ", "))
	}
	if opts.UserName != "" && scenario != scenarioRevokeUser {
		return Run{}, fmt.Errorf("emulator: play %s: userName is taken by %s only", scenario, scenarioRevokeUser)
	}
	if opts.DeviceFingerprint != "" && scenario != scenarioRequestLicense {
		return Run{}, fmt.Errorf("emulator: play %s: deviceFingerprint is taken by %s only", scenario, scenarioRequestLicense)
	}
	if n := utf8.RuneCountInString(opts.DeviceFingerprint); n > maxFingerprint {
		return Run{}, fmt.Errorf("emulator: play %s: deviceFingerprint of %d characters: at most %d", scenario, n, maxFingerprint)
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Run{}, errClosed
	}
	sub, ok := e.subByID[subscriptionID]
	if !ok {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("emulator: play: subscription %q: %w", subscriptionID, ErrNotFound)
	}
	if s := findScenario(scenario, sub.Protocol); s != nil {
		sc = s
	}
	why := ""
	switch d := e.busyMessageLocked(sub.ID); {
	case sub.busy:
		why = "another scenario is running on it; try again when it ends"
	case d != nil:
		why = fmt.Sprintf("its message %s (%s) is %s; wait for it to end or let it fail", d.msg.ID, d.msg.Interface, d.msg.Status)
	default:
		why = sc.refusal(sub)
	}
	if why == "" && sc.needs != nil {
		why = sc.needs(e.cfg)
	}
	if why == "" && opts.UserName != "" {
		if t := e.tenantBySub[sub.ID]; t == nil || !t.authorized(opts.UserName) {
			e.mu.Unlock()
			return Run{}, fmt.Errorf("emulator: play %s on %s: user %q is not an authorised user of the subscription's tenant", scenario, subscriptionID, opts.UserName)
		}
	}
	if why == "" {
		sub.busy = true
		sub.playOpts = opts
	}
	e.mu.Unlock()
	if why != "" {
		return Run{}, fmt.Errorf("emulator: play %s on %s: %w: %s", scenario, subscriptionID, ErrConflict, why)
	}
	run, _, _ := e.run(ctx, sc, sub, 0, false, nil)
	return run, nil
}

// run plays sc's steps on sub from step from, one message each, and stops
// at the first step whose first attempt fails; that message's retries go
// on in the background and, if one succeeds, apply the step's change and
// play the steps after it. With Config.KeepGoing a step whose answer broke
// rules but was applied (keptLocked) does not stop the run: Run.OK is
// false and Run.Err names the first such step. The caller holds sub's
// busy flag; run passes it to such a continuation or clears it, in the
// same critical section that ends the run, so that a retry succeeding at
// once finds the subscription free. With syncPoll, a run that applied
// every step leaves busy set for the caller's polling (and the caller
// clears it). rs keeps the run for Outcome (nil: a new one); a
// continuation passes the one it continues. A run left waiting for
// retries or for the polling after 000004 is pending (Run.Pending) until
// they end. run returns the run as it stands, the last step's context
// and whether every step was applied.
func (e *Emulator) run(ctx context.Context, sc *scenario, sub *Subscription, from int, syncPoll bool, rs *runState) (r Run, x *stepCtx, completed bool) {
	e.mu.Lock()
	if rs == nil {
		rs = e.newRunLocked(sc, sub)
	}
	// Under way: pending until it ends.
	rs.ok, rs.err, rs.pending, rs.on, rs.pollBy = false, "", true, nil, time.Time{}
	e.mu.Unlock()
	// end ends the run with e.mu held: ok (unless a kept step broke
	// rules), or failed with why.
	kept := ""
	end := func(why string) Run {
		if why != "" {
			rs.endLocked(false, why)
		} else {
			rs.endLocked(kept == "", kept)
		}
		return e.runViewLocked(rs)
	}
	for i := from; i < len(sc.steps); i++ {
		st := sc.steps[i]
		e.mu.Lock()
		if e.closed {
			sub.busy = false
			r = end(errClosed.Error())
			e.mu.Unlock()
			return r, x, false
		}
		if st.skip != nil && st.skip(e, sub) {
			e.mu.Unlock()
			continue
		}
		if st.before != nil {
			if err := st.before(e, sub); err != nil {
				sub.busy = false
				r = end(fmt.Sprintf("step %d (%s): %v", i+1, st.iface, err))
				e.mu.Unlock()
				return r, x, false
			}
		}
		x = &stepCtx{scenario: sc.name, family: sc.familyFor(sub), syncPoll: syncPoll, run: rs}
		if sub.Test {
			x.testFlag = "1"
		}
		if st.order != nil {
			spec, mockID := st.order(e, sub)
			x.spec = spec
			var mockExpire time.Time
			at := e.orderAtLocked(sub)
			x.order, mockExpire = e.placeOrderLocked(sub, spec, mockID, at)
			if sub.StartTime.IsZero() {
				e.setStartLocked(sub, at) // the instance starts with the order that bought it
			}
			if sub.Test && !mockExpire.IsZero() && (spec.orderType == protocol.OrderTypeNew || spec.orderType == protocol.OrderTypeTrial) {
				// The debug order's canned period is the one the seller sees.
				x.spec.expire = mockExpire
			}
			if sub.OrderID == "" {
				sub.OrderID, sub.OrderLineID = x.order.id, x.order.line
			}
		}
		if st.local != nil {
			// A step of KooGallery's own: nothing is sent.
			err := st.local(e, sub, x)
			if err == nil {
				sub.gen++
			} else {
				sub.busy = false
				r = end(fmt.Sprintf("step %d (%s): %v", i+1, st.iface, err))
			}
			e.mu.Unlock()
			if err != nil {
				return r, x, false
			}
			continue
		}
		if st.wait != nil {
			e.mu.Unlock()
			if err := st.wait(ctx, e, sub); err != nil {
				e.mu.Lock()
				sub.busy = false
				r = end(fmt.Sprintf("step %d (%s): %v", i+1, st.iface, err))
				e.mu.Unlock()
				return r, x, false
			}
			continue
		}
		req := st.build(e, sub, x)
		d := e.stepDeliveryLocked(sc, i, sub, x, req)
		x.first = d.msg.FirstSentAt
		rs.addMessageLocked(d.msg.ID)
		e.mu.Unlock()

		a := e.attempt(ctx, d, x.first, !e.cfg.NoRetry)
		e.mu.Lock()
		stale := d.stale
		dropped := e.byID[d.msg.ID] != d
		// keep: KeepGoing applied the step despite the rules its answer
		// broke; the run goes on.
		keep := !a.OK() && !stale && !dropped && d.applied && e.keptLocked(a)
		handed, declined := false, ""
		if !a.OK() && !keep {
			// The retries or a re-drive play the rest if the step
			// succeeds later; if it already has, the rest starts now.
			// Nobody polls for this run any more: a later success
			// polls in the background.
			d.detached = true
			x.syncPoll = false
			if d.applied {
				handed, declined = e.continueLocked(d, true)
			}
		}
		if (!a.OK() && !keep || stale || dropped) && !handed {
			sub.busy = false
		}
		why := ""
		switch {
		case keep:
			if kept == "" {
				kept = fmt.Sprintf("step %d (%s): %s", i+1, st.iface, joinViolations(a.Violations))
			}
		case !a.OK():
			why = fmt.Sprintf("step %d (%s): %s", i+1, st.iface, joinViolations(a.Violations))
		case dropped:
			why = fmt.Sprintf("step %d (%s): the message was dropped from the full message log; its change was not applied", i+1, st.iface)
		case stale:
			why = fmt.Sprintf("step %d (%s): the subscription changed while the call was made; its change was not applied", i+1, st.iface)
		}
		if why == "" {
			e.mu.Unlock()
			continue
		}
		switch {
		case !a.OK() && d.applied && d.stale:
			// A retry succeeded meanwhile, stale: nothing was applied.
			rs.waitRetryLocked(d, why)
			rs.retryEndedLocked(d, d.msg.LastError)
		case !a.OK() && d.applied:
			// A retry or re-drive succeeded meanwhile: the run goes on
			// as after a late success (handed: the continuation ends it).
			rs.waitRetryLocked(d, why)
			rs.retrySucceededLocked(d, handed, declined)
		case !a.OK() && (d.msg.Status == MessageRetrying || d.msg.Status == MessageSending):
			// Its retries (or another attempt in flight) decide.
			rs.waitRetryLocked(d, why)
		default:
			rs.endLocked(false, why)
		}
		r = e.runViewLocked(rs)
		e.mu.Unlock()
		return r, x, false
	}
	e.mu.Lock()
	r = end("")
	if x != nil && x.polling {
		// The purchase ends with the polling its newInstance started,
		// in the background or, with syncPoll, by the caller.
		switch sub.Status {
		case StatusProvisioning:
			rs.waitPollLocked(e.pollDeadline(x))
		case StatusActive:
		default:
			rs.endLocked(false, "the subscription became "+sub.Status+" while it was provisioning")
		}
		r = e.runViewLocked(rs)
	}
	e.mu.Unlock()
	if !syncPoll {
		e.idle(sub)
	}
	return r, x, true
}

// stepDeliveryLocked makes the message of step i of sc.
func (e *Emulator) stepDeliveryLocked(sc *scenario, i int, sub *Subscription, x *stepCtx, req any) *delivery {
	st := sc.steps[i]
	first := marshal(req)
	var used atomic.Bool
	d := &delivery{
		fam:    x.family,
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
		sub: sub, gen: sub.gen, clock: sub, sc: sc, step: i, run: x.run,
	}
	if len(sc.from) == 0 && i == 0 {
		d.dups = sub.dups
	}
	if !e.cfg.NoRetry {
		d.policy = e.policyFor(x.family, st.iface)
	}
	d.msg.Interface = st.iface
	d.msg.Scenario = sc.name
	d.msg.SubscriptionID = sub.ID
	d.msg.OrderID = x.order.id
	d.msg.InstanceID = sub.InstanceID
	d.msg.Test = sub.Test
	// A step without a change still counts as one (the generation
	// moves), so that the step after it plays on.
	d.onSuccess = func(a Attempt) {
		if st.apply != nil {
			st.apply(e, sub, x, a)
		}
		if d.msg.InstanceID == "" {
			d.msg.InstanceID = sub.InstanceID
		}
	}
	if len(sc.from) == 0 {
		// The call that makes the purchase: when it fails for good, so
		// does the purchase.
		d.onFail = func() {
			if sub.Status == StatusPending {
				sub.Status = StatusFailed
			}
		}
	}
	e.addLocked(d, first)
	return d
}

// marshal encodes a request as KooGallery does: url.Values (V1) as a
// URL-encoded query, anything else as JSON; the protocol types always
// encode.
func marshal(req any) []byte {
	if q, ok := req.(url.Values); ok {
		return []byte(q.Encode())
	}
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
	if deadline := e.pollDeadline(x); next.After(deadline) {
		if sub.Status == StatusProvisioning {
			sub.Status = StatusFailed
		}
		x.run.pollEndedLocked(pollGaveUp(deadline).Error())
		return
	}
	e.afterLocked(next, sub, func(ctx context.Context) {
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
// on the scaled clock between polls. It returns the poll messages, in
// order, one ID per poll (polls that share a message repeat its ID).
func (e *Emulator) pollNow(ctx context.Context, sub *Subscription, x *stepCtx) ([]string, error) {
	var ids []string
	at := x.first // polls are counted from newInstance, as in the background
	deadline := e.pollDeadline(x)
	for {
		next := at.Add(e.cfg.PollInterval)
		if next.After(deadline) {
			e.mu.Lock()
			if sub.Status == StatusProvisioning {
				sub.Status = StatusFailed
			}
			e.mu.Unlock()
			return ids, pollGaveUp(deadline)
		}
		e.mu.Lock()
		wait := e.wallUntilLocked(next, sub)
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
		if id != "" {
			ids = append(ids, id)
		}
		if done {
			e.mu.Lock()
			status := sub.Status
			e.mu.Unlock()
			if status != StatusActive {
				return ids, fmt.Errorf("queryInstance polling: the subscription became %s", status)
			}
			return ids, nil
		}
		at = next
	}
}

// pollGaveUp says that the polling after 000004 ended at deadline without
// the answer it waits for.
func pollGaveUp(deadline time.Time) error {
	return fmt.Errorf("queryInstance polling: no answer 000000 with the instance's info and appInfo before %s, the end of newInstance's retry window", deadline.UTC().Format(time.RFC3339))
}

// poll sends one queryInstance for a provisioning subscription; 000004
// is an acceptable answer that means "not yet". done reports that the
// answer was 000000 with the instance and its appInfo in it (saas-v2.md
// §6.3): the subscription is active. Polls that follow a 000004 are
// attempts of the same message, so that three hours of polling make one
// message, not a thousand.
func (e *Emulator) poll(ctx context.Context, sub *Subscription, x *stepCtx, at time.Time) (done bool, msgID string) {
	e.mu.Lock()
	if sub.Status != StatusProvisioning {
		// Released or failed meanwhile: there is nothing left to poll.
		x.run.pollEndedLocked("")
		e.mu.Unlock()
		return true, ""
	}
	d := x.poll
	if d == nil || e.byID[d.msg.ID] != d || !lastProcessing(d) {
		d = e.pollDeliveryLocked(sub, x)
		x.poll = d
	}
	if !x.syncPoll {
		x.run.addMessageLocked(d.msg.ID) // Purchase adds its own polls
	}
	e.mu.Unlock()

	a := e.attempt(ctx, d, at, false)
	// checkPoll found the instance (and its appInfo) in the answer it parsed.
	info := a.appInfo
	e.mu.Lock()
	defer e.mu.Unlock()
	if !a.OK() && !e.keptLocked(a) || !a.polled {
		return false, d.msg.ID
	}
	if sub.Status == StatusProvisioning {
		sub.Status = StatusActive
		sub.AppInfo = info
	}
	x.run.pollEndedLocked("")
	return true, d.msg.ID
}

// pollDeliveryLocked makes a new poll message for sub.
func (e *Emulator) pollDeliveryLocked(sub *Subscription, x *stepCtx) *delivery {
	var body []byte
	if x.family == V1 {
		body = marshal(v1Query(protocol.ActivityQueryInstance, x, "instanceId", sub.InstanceID))
	} else {
		body = marshal(protocol.QueryInstanceRequest{
			ActivityName: protocol.ActivityQueryInstance,
			InstanceID:   sub.InstanceID,
			TestFlag:     x.testFlag,
		})
	}
	instanceID := sub.InstanceID
	appInfoOptional := x.family.appInfoOptional
	d := &delivery{
		fam:    x.family,
		expect: []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeProcessing},
		body:   func() []byte { return body },
		check:  func(a *Attempt) { checkPoll(a, instanceID, appInfoOptional) },
		poll:   true,
		clock:  sub,
	}
	d.msg.Interface = protocol.ActivityQueryInstance
	d.msg.Scenario = x.scenario
	d.msg.SubscriptionID = sub.ID
	d.msg.InstanceID = sub.InstanceID
	d.msg.Test = sub.Test
	e.addLocked(d, body)
	return d
}

// lastProcessing reports whether d's last attempt answered 000004 and
// broke no rule: the next poll joins its message.
func lastProcessing(d *delivery) bool {
	n := len(d.msg.Attempts)
	return n > 0 && d.msg.Status == MessageSuccess && d.msg.Attempts[n-1].ResultCode == protocol.CodeProcessing
}

// checkPoll reads a poll's answer 000000 once: the instance without its
// appInfo is a violation (KooGallery polls until success with appInfo,
// saas-v2.md §6.3) unless appInfoOptional (online license); with it, the
// appInfo is noted in a for poll, and a.polled says the instance was there.
func checkPoll(a *Attempt, instanceID string, appInfoOptional bool) {
	if a.ResultCode != protocol.CodeSuccess || a.Response == nil {
		return
	}
	r, ok := queryReply(a.Response.Body)
	if !ok {
		return
	}
	for _, in := range r.Info {
		switch {
		case in.InstanceID != instanceID:
		case in.AppInfo == nil && !appInfoOptional:
			a.Violations = append(a.Violations, Violation{Rule: RuleRequiredField, Message: "调测失败,接口响应缺少appInfo", Spec: "saas-v2.md §6.3"})
			a.appInfo, a.polled = nil, false
			return
		default:
			a.polled = true
			if a.appInfo == nil {
				a.appInfo = in.AppInfo
			}
		}
	}
}

func queryReply(body string) (protocol.QueryInstanceResponse, bool) {
	var r protocol.QueryInstanceResponse
	if json.Unmarshal([]byte(body), &r) != nil {
		return r, false
	}
	return r, true
}
