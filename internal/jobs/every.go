package jobs

import (
	"context"
	"time"
)

// Every calls enqueue at the start of each interval of length every on
// now's clock, with that start, until ctx is done: the schedule of a
// periodic job, whose unique key is the interval's start so that replicas
// running Every at once enqueue it once. After enqueue fails it is called
// again within retry (for the same interval while it lasts); onErr, when
// set, is told of each failure.
func Every(ctx context.Context, every, retry time.Duration, now func() time.Time,
	enqueue func(ctx context.Context, start time.Time) error, onErr func(start time.Time, err error)) {
	for {
		t0 := now()
		start := t0.Truncate(every)
		wait := start.Add(every).Sub(t0)
		if err := enqueue(ctx, start); err != nil && ctx.Err() == nil {
			if onErr != nil {
				onErr(start, err)
			}
			wait = min(wait, retry)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
