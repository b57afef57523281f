package emulator

import (
	"fmt"
	"slices"
	"time"

	"github.com/koobridge/koobridge/internal/durationtext"
	"github.com/koobridge/koobridge/protocol"
)

// maxRuns bounds the runs kept for Outcome; the oldest go first.
const maxRuns = 1000

// runState is one scenario run, kept after Purchase or Play returned so
// that a run that returned before its end state (Run.Pending) settles
// when what it waits for ends: the queryInstance polling after 000004,
// or the retries of a step whose first attempt failed, and the steps
// after it. Guarded by e.mu.
type runState struct {
	id       string
	scenario string
	sub      *Subscription
	messages []string
	ok       bool
	err      string
	// pending: the run waits for on (a message being retried) or, when
	// on is nil, for the polling of sub after 000004, until pollBy.
	pending bool
	on      *delivery
	pollBy  time.Time
}

// newRunLocked starts keeping a run of sc on sub.
func (e *Emulator) newRunLocked(sc *scenario, sub *Subscription) *runState {
	e.runSeq++
	rs := &runState{id: fmt.Sprintf("run-%06d", e.runSeq), scenario: sc.name, sub: sub, messages: []string{}}
	if e.runs == nil {
		e.runs = make(map[string]*runState)
	}
	e.runs[rs.id] = rs
	e.runOrder = append(e.runOrder, rs.id)
	if len(e.runOrder) > maxRuns {
		delete(e.runs, e.runOrder[0])
		e.runOrder = e.runOrder[1:]
	}
	return rs
}

// addMessageLocked records that rs sent message id, once.
func (rs *runState) addMessageLocked(id string) {
	if rs != nil && id != "" && !slices.Contains(rs.messages, id) {
		rs.messages = append(rs.messages, id)
	}
}

// waitRetryLocked: rs stopped at a step whose message d is being
// retried; a later success plays the rest, a final failure fails it.
func (rs *runState) waitRetryLocked(d *delivery, err string) {
	rs.ok, rs.err, rs.pending, rs.on = false, err, true, d
}

// waitPollLocked: every step of rs was applied, and sub is provisioning:
// the run ends with the polling, by deadline at the latest.
func (rs *runState) waitPollLocked(deadline time.Time) {
	if rs == nil {
		return
	}
	rs.pending, rs.on, rs.pollBy = true, nil, deadline
}

// endLocked ends rs: ok, or failed with err.
func (rs *runState) endLocked(ok bool, err string) {
	if rs == nil {
		return
	}
	rs.ok, rs.err, rs.pending, rs.on = ok, err, false, nil
}

// retryEndedLocked ends rs as failed if it waits for d, which ended
// without applying its step: it failed for good, or its success came
// too late (why).
func (rs *runState) retryEndedLocked(d *delivery, why string) {
	if rs != nil && rs.pending && rs.on == d {
		rs.endLocked(false, fmt.Sprintf("%s (%s) ended without its change: %s", d.msg.ID, d.msg.Interface, why))
	}
}

// retrySucceededLocked goes on with rs, if it waits for d, whose step
// has now been applied: the continuation (started) ends it; with no step
// left it succeeded, or waits for the polling after 000004, or failed
// with its subscription (the polling gave up at once: newInstance's
// success came at the very end of its window); otherwise the rest could
// not be played (declined says why, continueLocked).
func (rs *runState) retrySucceededLocked(d *delivery, started bool, declined string) {
	if rs == nil || !rs.pending || rs.on != d {
		return
	}
	newInstance := d.msg.Interface == protocol.ActivityNewInstance
	switch {
	case started:
		rs.on = nil
	case d.step+1 < len(d.sc.steps):
		rs.endLocked(false, fmt.Sprintf("%s (%s) succeeded on a retry, but %s", d.msg.ID, d.msg.Interface, declined))
	case newInstance && rs.sub.Status == StatusProvisioning:
		rs.err = ""                       // the failed attempt is overcome; the polling decides
		rs.waitPollLocked(d.msg.Deadline) // newInstance's window bounds the polling
	case newInstance && rs.sub.Status != StatusActive:
		rs.endLocked(false, fmt.Sprintf("%s (%s) succeeded on a retry, but the subscription became %s", d.msg.ID, d.msg.Interface, rs.sub.Status))
	default:
		rs.endLocked(true, "")
	}
}

// pollEndedLocked ends rs, if it waits for the polling of its
// subscription, by the subscription's status: active is success (unless
// a step kept with Config.KeepGoing broke rules: rs.err says which),
// anything else a failure, why (empty: the status says it). A run still
// waiting on the newInstance whose late success started the polling
// ends too: the polling can give up at once, when that success came at
// the very end of newInstance's window, before the run waits for it.
func (rs *runState) pollEndedLocked(why string) {
	if rs == nil || !rs.pending {
		return
	}
	switch d := rs.on; {
	case d == nil && !rs.pollBy.IsZero():
	case d != nil && d.applied && !d.stale && d.msg.Interface == protocol.ActivityNewInstance && d.step+1 == len(d.sc.steps):
		rs.err = ""
	default:
		return
	}
	if rs.sub.Status == StatusActive {
		rs.endLocked(rs.err == "", rs.err)
		return
	}
	if why == "" {
		why = "the subscription became " + rs.sub.Status + " while it was provisioning"
	}
	if rs.err != "" {
		why = rs.err + "; " + why
	}
	rs.endLocked(false, why)
}

// viewLocked is rs as a Run, as it stands now.
func (e *Emulator) runViewLocked(rs *runState) Run {
	r := Run{
		ID: rs.id, Scenario: rs.scenario, SubscriptionID: rs.sub.ID, Messages: slices.Clone(rs.messages),
		OK: rs.ok && !rs.pending, Pending: rs.pending, Err: rs.err, LicenseCode: rs.sub.LicenseCode,
	}
	switch {
	case !rs.pending:
	case rs.on == nil && rs.pollBy.IsZero():
		r.Waiting = fmt.Sprintf("%s is being played on %s", rs.scenario, rs.sub.ID)
	case rs.on != nil:
		m := rs.on.msg
		r.Waiting = fmt.Sprintf("message %s (%s) is %s: ", m.ID, m.Interface, m.Status)
		if !m.NextAttempt.IsZero() {
			r.Waiting += fmt.Sprintf("next attempt at %s, ", formatTime(m.NextAttempt))
		}
		r.Waiting += fmt.Sprintf("retried until %s (on %s's clock); if one succeeds, the rest of %s plays", formatTime(m.Deadline), rs.sub.ID, rs.scenario)
	default:
		r.Waiting = fmt.Sprintf("%s is provisioning (newInstance answered 000004): queryInstance is polled every %s of emulated time until it answers 000000 with the instance's appInfo, until %s (on %s's clock)",
			rs.sub.ID, durationtext.Format(e.cfg.PollInterval), formatTime(rs.pollBy), rs.sub.ID)
	}
	return r
}

// Outcome returns the run with the given ID (Run.ID) as it stands now: a
// run that was pending when Purchase or Play returned is ok or failed
// once what it waited for has ended, and lists the messages sent since
// (polls, retried steps, the steps after them). The last 1,000 runs are
// kept.
func (e *Emulator) Outcome(id string) (Run, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs, ok := e.runs[id]
	if !ok {
		return Run{}, false
	}
	return e.runViewLocked(rs), true
}
