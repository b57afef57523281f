package jobs

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestEvery: enqueue is called at each interval's start with that start,
// again within retry after a failure (for the same interval), and Every
// returns when ctx is done.
func TestEvery(t *testing.T) {
	for _, c := range []struct {
		name         string
		every, retry time.Duration
		fail         bool
	}{
		{"each interval", 30 * time.Millisecond, time.Hour, false},
		{"retried after a failure", time.Hour, 10 * time.Millisecond, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var mu sync.Mutex
			var starts []time.Time
			var failures int
			done := make(chan struct{})
			go func() {
				defer close(done)
				Every(ctx, c.every, c.retry, time.Now, func(_ context.Context, start time.Time) error {
					mu.Lock()
					defer mu.Unlock()
					starts = append(starts, start)
					if len(starts) == 4 {
						cancel()
					}
					if c.fail {
						return errors.New("store refused")
					}
					return nil
				}, func(time.Time, error) { mu.Lock(); failures++; mu.Unlock() })
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Every did not return after its context ended")
			}
			mu.Lock()
			defer mu.Unlock()
			for i, s := range starts {
				if !s.Equal(s.Truncate(c.every)) {
					t.Errorf("start %d %v is not an interval's start", i, s)
				}
				if i > 0 && c.fail && !s.Equal(starts[0]) {
					t.Errorf("retry %d for another interval %v, want %v", i, s, starts[0])
				}
				if i > 0 && !c.fail && !s.After(starts[i-1]) {
					t.Errorf("start %d %v not after %v", i, s, starts[i-1])
				}
			}
			if want := map[bool]int{true: 3, false: 0}[c.fail]; failures < want {
				t.Errorf("%d failures reported, want at least %d", failures, want)
			}
		})
	}
}
