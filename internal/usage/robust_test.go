package usage_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/internal/usage"
)

// TestPackageLinkLearntLate: an item whose usage was seen before its
// order's package instance existed pushes with relate_pkg_instance once
// the package is there (the cached facts without one are read again).
func TestPackageLinkLearntLate(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-item", onDemand, "P", "O1", now.Add(-2*time.Hour))
		e.ingest(t, rec("a", "i-item", "1", now.Add(-90*time.Minute)))
		// The package's newInstance arrives a little later: the item's
		// facts, cached without a package, are read again.
		e.buy(t, "i-pkg", pkg, "P", "O1", now.Add(-2*time.Hour))
		time.Sleep(2100 * time.Millisecond) // factsTTL, on the real clock
		e.ingest(t, rec("b", "i-item", "1", now.Add(-10*time.Minute)))
		e.clk.Advance(time.Hour)
		e.run(t)
		e.drain(t)
		pushes, err := e.st.UsagePushes(context.Background(), store.UsagePushFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range pushes {
			if strings.Contains(string(p.Body), `"i-item"`) {
				n++
				if !strings.Contains(string(p.Body), `"relate_pkg_instance":"i-pkg"`) {
					t.Errorf("push %d of the item lacks relate_pkg_instance i-pkg: %s", p.ID, p.Body)
				}
			}
		}
		if n == 0 {
			t.Error("no push of the item")
		}
	})
}

// an instance that starts in the last second of an hour: begin_time is
// not clamped (ceil(start) == end), so KooGallery sees a begin_time
// before the resource started (MKT.9002) and the period is rejected.
func TestStartInLastSecond(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		now := e.clk.Now()                                              // hh:30
		created := now.Truncate(time.Hour).Add(-400 * time.Millisecond) // (hh-1):59:59.600
		e.buy(t, "i-1", onDemand, "P", "O1", created)
		res := e.ingest(t, rec("early", "i-1", "1", created.Add(-time.Millisecond)),
			rec("a", "i-1", "1", created.Add(200*time.Millisecond)), rec("b", "i-1", "2", created.Add(400*time.Millisecond)))
		if res[0].Status != usage.Rejected || !strings.Contains(res[0].Error, "before the instance started") ||
			res[1].Status != usage.Accepted || res[2].Status != usage.Accepted {
			t.Fatalf("%+v", res)
		}
		e.clk.Advance(time.Hour) // b's period (the current one) closes
		e.drain(t)
		ps := e.periods(t, "i-1")
		if len(ps) != 2 {
			t.Fatalf("periods %+v, want the last second of one hour and the next", ps)
		}
		for _, p := range ps {
			if p.State != store.UsageAccepted {
				t.Errorf("period %v: %s %s %s", p.Start, p.State, p.Code, p.Message)
			}
		}
		// The first period's begin_time is the start's second.
		if b := e.billed("i-1"); len(b.Periods) != 2 || !b.Periods[0].Begin.Equal(created.Truncate(time.Second)) {
			t.Errorf("billed %+v, want the first begin at %v", b.Periods, created.Truncate(time.Second))
		}
	})
}

// TestRetryOfStoredRecordIsDuplicate: a retry of an accepted record near
// the 21-day edge is answered duplicate, not rejected as too old: it is
// stored and billed.
func TestRetryOfStoredRecordIsDuplicate(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-30*24*time.Hour))
		r := rec("k", "i-1", "1", now.Add(-usage.MaxAge+31*time.Minute))
		if res := e.ingest(t, r); res[0].Status != usage.Accepted {
			t.Fatalf("first: %+v", res[0])
		}
		e.clk.Advance(30 * time.Minute) // the vendor retries after a lost answer
		if res := e.ingest(t, r); res[0].Status != usage.Duplicate {
			t.Errorf("retry of a stored record: %+v, want duplicate", res[0])
		}
	})
}

// countingStore counts the transactions whose fn failed with a deadlock.
type countingStore struct {
	usage.Store
	deadlocks atomic.Int64
}

func (c *countingStore) Tx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	return c.Store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		err := fn(ctx, tx)
		if err != nil && strings.Contains(err.Error(), "deadlock") {
			c.deadlocks.Add(1)
		}
		return err
	})
}

// a batch with a record late for a pushed period (carried into the
// current period) locks the current period before an earlier open one,
// against the (instance, start) order every other batch keeps: PostgreSQL
// deadlocks (resolved by the Tx retry, after deadlock_timeout).
func TestCarryNoDeadlock(t *testing.T) {
	d := dbtest.Dialects[1]
	t.Run(d.Name, func(t *testing.T) {
		e := newEnv(t, d.Open(t), options{stopped: true})
		now := e.clk.Now() // hh:30
		h := now.Truncate(time.Hour)
		e.buy(t, "X", onDemand, "P", "O1", now.Add(-4*time.Hour))
		e.ingest(t, rec("seed", "X", "1", h.Add(-2*time.Hour+10*time.Minute)))
		e.run(t)
		e.drain(t)
		e.stop()
		cs := &countingStore{Store: e.st}
		cfg := e.cfg
		cfg.Store = cs
		svc, err := usage.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Make (X, hh-1) exist, open.
		if _, err := svc.Ingest(context.Background(), []usage.Input{rec("open", "X", "1", h.Add(-40*time.Minute))}); err != nil {
			t.Fatal(err)
		}
		const rounds = 15
		for i := range rounds {
			var wg sync.WaitGroup
			gate := make(chan struct{})
			k := func(s string) string { return s + "-" + string(rune('a'+i)) }
			wg.Go(func() {
				<-gate
				if _, err := svc.Ingest(context.Background(), []usage.Input{
					rec(k("A-late"), "X", "1", h.Add(-2*time.Hour+20*time.Minute)), // sealed: carried to (X, hh)
					rec(k("A-prev"), "X", "1", h.Add(-35*time.Minute)),             // (X, hh-1), open
				}); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				<-gate
				if _, err := svc.Ingest(context.Background(), []usage.Input{
					rec(k("B-prev"), "X", "1", h.Add(-30*time.Minute)), // (X, hh-1)
					rec(k("B-cur"), "X", "1", h.Add(10*time.Minute)),   // (X, hh)
				}); err != nil {
					t.Error(err)
				}
			})
			close(gate)
			wg.Wait()
		}
		if n := cs.deadlocks.Load(); n > 0 {
			t.Errorf("%d deadlocks in %d rounds of two concurrent batches", n, rounds)
		}
	})
}

// TestPendingPushDies: a push that cannot go out (no Open API credentials)
// retries until its periods are too old for KooGallery, then they are
// dead: nothing stays pushing for ever.
func TestPendingPushDies(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-3*time.Hour))
		e.ingest(t, rec("a", "i-1", "1", now.Add(-2*time.Hour)), rec("b", "i-1", "1", now.Add(-time.Hour)))
		cfg := e.cfg
		cfg.Pusher = nil
		e.rebuild(t, cfg)
		e.run(t)
		deadline := time.Now().Add(waitFor)
		for {
			c, err := e.st.UsagePeriodCounts(context.Background(), "i-1")
			if err != nil {
				t.Fatal(err)
			}
			if c[store.UsagePushing] == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("periods %v, want both pushing", c)
			}
			time.Sleep(20 * time.Millisecond)
		}
		e.clk.Advance(21 * 24 * time.Hour)
		e.drain(t)
		for _, p := range e.periods(t, "i-1") {
			if p.State != store.UsageDead || p.Code != "MKT.9004" {
				t.Errorf("period %v: %s %s", p.Start, p.State, p.Code)
			}
		}
		if b := e.billed("i-1"); len(b.Periods) != 0 {
			t.Errorf("billed %+v", b)
		}
	})
}

// TestNoSealJobWhileNothingIsDue: the schedule enqueues a seal job only
// when a period is due; a push waiting for an answer does not make one a
// minute.
func TestNoSealJobWhileNothingIsDue(t *testing.T) {
	forEachDialect(t, options{stopped: true}, func(t *testing.T, e *env) {
		now := e.clk.Now()
		e.buy(t, "i-1", onDemand, "P", "O1", now.Add(-2*time.Hour))
		e.ingest(t, rec("a", "i-1", "1", now.Add(-time.Hour)))
		cfg := e.cfg
		cfg.Pusher = nil // the push waits, retried
		e.rebuild(t, cfg)
		e.run(t)
		seals := func() int {
			js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: usage.KindSeal, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			return len(js)
		}
		deadline := time.Now().Add(waitFor)
		for {
			c, err := e.st.UsagePeriodCounts(context.Background(), "i-1")
			if err != nil {
				t.Fatal(err)
			}
			if c[store.UsagePushing] == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("periods %v, want one pushing", c)
			}
			time.Sleep(20 * time.Millisecond)
		}
		before := seals()
		for range 20 { // 20 push intervals of the tests' clock
			e.clk.Advance(time.Minute)
			time.Sleep(60 * time.Millisecond)
		}
		if after := seals(); after != before {
			t.Errorf("seal jobs went from %d to %d while nothing was due", before, after)
		}
	})
}
