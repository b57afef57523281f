package usage_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/usage"
)

// refusingPusher answers MKT.0150 (illegal operation: the instance is not
// the seller's) to any push carrying instance bad, and MKT.0000 otherwise.
type refusingPusher struct {
	bad   string
	fixed atomic.Bool // refuse nobody any more
	calls atomic.Int64
}

func (p *refusingPusher) answer(body []byte) (openapi.UsagePushResult, error) {
	p.calls.Add(1)
	if !p.fixed.Load() && strings.Contains(string(body), `"`+p.bad+`"`) {
		return openapi.UsagePushResult{HTTPStatus: 401, Code: "MKT.0150", Message: "illegal operation"},
			&openapi.Error{HTTPStatus: 401, Code: "MKT.0150", Message: "illegal operation"}
	}
	return openapi.UsagePushResult{HTTPStatus: 200, Code: "MKT.0000"}, nil
}
func (p *refusingPusher) PushUsage(_ context.Context, _ string, body []byte) (openapi.UsagePushResult, error) {
	return p.answer(body)
}
func (p *refusingPusher) PushUsageOld(_ context.Context, body []byte) (openapi.UsagePushResult, error) {
	return p.answer(body)
}

// TestRefusedRecordDoesNotHoldItsPush: one record KooGallery refuses for
// good with a code that is not about koobridge's settings (MKT.0150 here)
// splits its push, so the other periods are accepted instead of waiting
// with it.
func TestRefusedRecordDoesNotHoldItsPush(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-good", onDemand, "P", "O1", now.Add(-2*time.Hour))
		e.buy(t, "i-bad", onDemand, "P", "O2", now.Add(-2*time.Hour))
		e.ingest(t, rec("g", "i-good", "1", now.Add(-time.Hour)), rec("b", "i-bad", "1", now.Add(-time.Hour)))

		p := &refusingPusher{bad: "i-bad"}
		cfg := e.cfg
		cfg.Pusher = p
		e.rebuild(t, cfg)
		e.run(t)
		deadline := time.Now().Add(15 * time.Second)
		accepted := func() bool {
			ps := e.periods(t, "i-good")
			return len(ps) == 1 && ps[0].State == store.UsageAccepted
		}
		for time.Now().Before(deadline) && p.calls.Load() < 30 && !accepted() {
			e.clk.Advance(time.Second)
			time.Sleep(20 * time.Millisecond)
		}
		for _, per := range e.periods(t, "i-good") {
			if per.State != store.UsageAccepted {
				t.Errorf("i-good period %v is %s after %d push attempts: held by i-bad's refusal", per.Start, per.State, p.calls.Load())
			}
		}
	})
}

// TestRepush: a period KooGallery rejected is pushed again once the
// operator asks, with the same metering_sn, and accepted; other states
// cannot be.
func TestRepush(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-bad", onDemand, "P", "O2", now.Add(-2*time.Hour))
		e.ingest(t, rec("b", "i-bad", "1", now.Add(-time.Hour)))
		cfg := e.cfg
		refuse := &refusingPusher{bad: "i-bad"}
		cfg.Pusher = refuse
		e.rebuild(t, cfg)
		e.run(t)
		e.drain(t)
		ps := e.periods(t, "i-bad")
		if len(ps) != 1 || ps[0].State != store.UsageRejected || ps[0].Code != "MKT.0150" {
			t.Fatalf("periods %+v, want one rejected MKT.0150", ps)
		}
		k := ps[0].Key()
		// The cause is fixed: KooGallery takes it now.
		refuse.fixed.Store(true)
		if err := e.svc.Repush(context.Background(), k); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		got, err := e.st.UsagePeriod(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.UsageAccepted || got.MeteringSN != ps[0].MeteringSN || got.Total != ps[0].Total {
			t.Errorf("after the repush: %+v", got)
		}
		if err := e.svc.Repush(context.Background(), k); !errors.Is(err, usage.ErrNotRejected) {
			t.Errorf("repush of an accepted period: %v", err)
		}
		if err := e.svc.Repush(context.Background(), store.UsagePeriodKey{InstanceID: "nope", Start: k.Start}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("repush of an unknown period: %v", err)
		}
	})
}
