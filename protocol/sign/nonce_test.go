package sign

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is a clock tests can move; safe for concurrent use.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestMemoryNoncesReplayAndExpiry(t *testing.T) {
	ctx := t.Context()
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	m := NewMemoryNoncesWithClock(clock.Now)
	expires := clock.Now().Add(time.Minute)
	if err := m.Remember(ctx, "n1", expires); err != nil {
		t.Fatalf("first Remember: %v", err)
	}
	if err := m.Remember(ctx, "n1", expires); !errors.Is(err, ErrReplayedNonce) {
		t.Fatalf("second Remember: err = %v, want ErrReplayedNonce", err)
	}
	if err := m.Remember(ctx, "n2", expires); err != nil {
		t.Fatalf("other nonce: %v", err)
	}
	clock.Advance(time.Minute - time.Millisecond)
	if err := m.Remember(ctx, "n1", expires); !errors.Is(err, ErrReplayedNonce) {
		t.Fatalf("just before expiry: err = %v, want ErrReplayedNonce", err)
	}
	clock.Advance(time.Millisecond)
	if err := m.Remember(ctx, "n1", clock.Now().Add(time.Minute)); err != nil {
		t.Fatalf("at expiry: %v", err)
	}
	if err := m.Remember(ctx, "n1", clock.Now().Add(time.Minute)); !errors.Is(err, ErrReplayedNonce) {
		t.Fatalf("after re-recording: err = %v, want ErrReplayedNonce", err)
	}
}

func TestMemoryNoncesCanceledContext(t *testing.T) {
	m := NewMemoryNonces()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Remember(ctx, "n", time.Now().Add(time.Minute)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if err := m.Remember(t.Context(), "n", time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("a canceled call must not record the nonce: %v", err)
	}
}

func TestMemoryNoncesConcurrent(t *testing.T) {
	m := NewMemoryNonces()
	const n = 50
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			switch err := m.Remember(t.Context(), "same", time.Now().Add(time.Minute)); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrReplayedNonce):
				replayed.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != n-1 {
		t.Fatalf("successes = %d, replays = %d; want 1 and %d", ok.Load(), replayed.Load(), n-1)
	}
}

func TestMemoryNoncesBounded(t *testing.T) {
	clock := newTestClock(time.Unix(1_700_000_000, 0))
	m := NewMemoryNoncesWithClock(clock.Now)
	const live = 3000 // nonces alive at any moment: rate × lifetime
	const total = 100 * live
	peak := 0
	for i := range total {
		// One nonce per millisecond, each living `live` milliseconds.
		if err := m.Remember(t.Context(), fmt.Sprint(i), clock.Now().Add(live*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Millisecond)
		peak = max(peak, m.Len())
	}
	// About twice the live nonces plus one sweep interval, far below total.
	if limit := 2*live + sweepEvery + 1; peak > limit {
		t.Fatalf("peak size %d, want at most %d", peak, limit)
	}
	if peak < live {
		t.Fatalf("peak size %d is below the %d live nonces: live nonces were dropped", peak, live)
	}
}
