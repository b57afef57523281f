package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/lockbuf"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

// deadline bounds every wait; generous so a loaded machine does not fail.
const deadline = 60 * time.Second

var quiet = slog.New(slog.DiscardHandler)

func openStore(t *testing.T, path string) store.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "db")
	}
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func enqueue(t *testing.T, st store.Store, jobs ...store.Job) []int64 {
	t.Helper()
	var ids []int64
	err := st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		ids = ids[:0] // Tx may run the function again
		for _, j := range jobs {
			id, _, err := tx.EnqueueJob(ctx, j)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return ids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t *testing.T, st store.Store, id int64, state store.JobState) store.Job {
	t.Helper()
	var j store.Job
	waitFor(t, fmt.Sprintf("job %d to be %s", id, state), func() bool {
		var err error
		j, err = st.Job(context.Background(), id)
		if err != nil {
			t.Fatalf("Job(%d): %v", id, err)
		}
		return j.State == state
	})
	return j
}

// start runs r until the test ends (or stop is called) and returns stop,
// which cancels Run and waits for it to return.
func start(t *testing.T, r *jobs.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// outcomes records OnOutcome calls.
type outcomes struct {
	mu   sync.Mutex
	list []string
}

func (o *outcomes) add(kind, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.list = append(o.list, kind+":"+outcome)
}

// wait waits until n outcomes are recorded (the store shows a job's
// state a moment before OnOutcome is called) and returns them sorted.
func (o *outcomes) wait(t *testing.T, n int) []string {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d outcomes", n), func() bool { return len(o.get()) >= n })
	// Workers report in their own order: a retry's report can come after
	// the next attempt's.
	got := o.get()
	slices.Sort(got)
	return got
}

func (o *outcomes) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.list)
}

func TestJobRunsOnce(t *testing.T) {
	st := openStore(t, "")
	var calls atomic.Int32
	var payload atomic.Value
	var out outcomes
	r := jobs.NewRunner(jobs.Config{
		Store: st,
		Handlers: map[string]jobs.HandlerFunc{"work": func(ctx context.Context, j store.Job) error {
			calls.Add(1)
			payload.Store(string(j.Payload))
			return nil
		}},
		Poll:      20 * time.Millisecond,
		Logger:    quiet,
		OnOutcome: out.add,
	})
	stop := start(t, r)
	id := enqueue(t, st, store.Job{Kind: "work", Payload: []byte(`{"a":1}`), MaxAttempts: 5})[0]
	r.Kick()
	j := waitState(t, st, id, store.JobDone)
	stop()
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	if j.Attempts != 1 || j.LockedBy != "" {
		t.Errorf("job = %+v, want 1 attempt and no lock", j)
	}
	if p, _ := payload.Load().(string); p != `{"a":1}` {
		t.Errorf("payload %q", p)
	}
	if got := out.get(); !slices.Equal(got, []string{"work:done"}) {
		t.Errorf("outcomes %v", got)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	st := openStore(t, "")
	var calls atomic.Int32
	var out outcomes
	var mu sync.Mutex
	var backoffs []int
	r := jobs.NewRunner(jobs.Config{
		Store: st,
		Handlers: map[string]jobs.HandlerFunc{"flaky": func(ctx context.Context, j store.Job) error {
			if calls.Add(1) < 3 {
				return fmt.Errorf("attempt %d failed", j.Attempts)
			}
			return nil
		}},
		Poll: 20 * time.Millisecond,
		Backoff: func(attempt int) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			backoffs = append(backoffs, attempt)
			return time.Millisecond
		},
		Logger:    quiet,
		OnOutcome: out.add,
	})
	start(t, r)
	id := enqueue(t, st, store.Job{Kind: "flaky", MaxAttempts: 5})[0]
	j := waitState(t, st, id, store.JobDone)
	if j.Attempts != 3 || calls.Load() != 3 {
		t.Errorf("attempts %d, calls %d, want 3 and 3", j.Attempts, calls.Load())
	}
	if j.LastError != "attempt 2 failed" {
		t.Errorf("LastError %q", j.LastError)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(backoffs, []int{1, 2}) {
		t.Errorf("Backoff called with %v, want [1 2]", backoffs)
	}
	if got := out.wait(t, 3); !slices.Equal(got, []string{"flaky:done", "flaky:retry", "flaky:retry"}) {
		t.Errorf("outcomes %v", got)
	}
}

func TestDeadAfterMaxAttempts(t *testing.T) {
	st := openStore(t, "")
	var calls atomic.Int32
	var out outcomes
	r := jobs.NewRunner(jobs.Config{
		Store: st,
		Handlers: map[string]jobs.HandlerFunc{"broken": func(ctx context.Context, j store.Job) error {
			calls.Add(1)
			return errors.New("vendor down")
		}},
		Poll:      20 * time.Millisecond,
		Backoff:   func(int) time.Duration { return time.Millisecond },
		Logger:    quiet,
		OnOutcome: out.add,
	})
	start(t, r)
	id := enqueue(t, st, store.Job{Kind: "broken", MaxAttempts: 3})[0]
	j := waitState(t, st, id, store.JobDead)
	if j.Attempts != 3 || calls.Load() != 3 || j.LastError != "vendor down" {
		t.Errorf("job %+v after %d calls", j, calls.Load())
	}
	if got := out.wait(t, 3); !slices.Equal(got, []string{"broken:dead", "broken:retry", "broken:retry"}) {
		t.Errorf("outcomes %v", got)
	}
}

func TestPermanentIsDeadAtOnce(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"jobs.Permanent", jobs.Permanent(errors.New("rejected"))},
		{"wrapped", fmt.Errorf("deliver: %w", jobs.Permanent(errors.New("rejected")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, "")
			var out outcomes
			r := jobs.NewRunner(jobs.Config{
				Store:     st,
				Handlers:  map[string]jobs.HandlerFunc{"p": func(context.Context, store.Job) error { return tt.err }},
				Poll:      20 * time.Millisecond,
				Backoff:   func(int) time.Duration { return time.Millisecond },
				Logger:    quiet,
				OnOutcome: out.add,
			})
			start(t, r)
			id := enqueue(t, st, store.Job{Kind: "p", MaxAttempts: 10})[0]
			j := waitState(t, st, id, store.JobDead)
			if j.Attempts != 1 || !strings.Contains(j.LastError, "rejected") {
				t.Errorf("job %+v", j)
			}
			if got := out.wait(t, 1); !slices.Equal(got, []string{"p:dead"}) {
				t.Errorf("outcomes %v", got)
			}
		})
	}
}

func TestPanicIsRecovered(t *testing.T) {
	st := openStore(t, "")
	var calls atomic.Int32
	r := jobs.NewRunner(jobs.Config{
		Store: st,
		Handlers: map[string]jobs.HandlerFunc{"panicky": func(context.Context, store.Job) error {
			if calls.Add(1) == 1 {
				panic("boom")
			}
			return nil
		}},
		Poll:    20 * time.Millisecond,
		Backoff: func(int) time.Duration { return time.Millisecond },
		Logger:  quiet,
	})
	start(t, r)
	id := enqueue(t, st, store.Job{Kind: "panicky", MaxAttempts: 5})[0]
	j := waitState(t, st, id, store.JobDone)
	if j.Attempts != 2 || !strings.Contains(j.LastError, "panicked: boom") {
		t.Errorf("job %+v", j)
	}
}

func TestTwoRunnersShareTheQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st1, st2 := openStore(t, path), openStore(t, path)
	const n = 200
	var mu sync.Mutex
	seen := make(map[int64]int)
	byRunner := make(map[string]int)
	handler := func(name string) jobs.HandlerFunc {
		return func(ctx context.Context, j store.Job) error {
			mu.Lock()
			defer mu.Unlock()
			seen[j.ID]++
			byRunner[name]++
			return nil
		}
	}
	for i, st := range []store.Store{st1, st2} {
		name := fmt.Sprintf("runner%d", i+1)
		start(t, jobs.NewRunner(jobs.Config{
			Store:    st,
			Handlers: map[string]jobs.HandlerFunc{"bulk": handler(name)},
			Workers:  4,
			Poll:     10 * time.Millisecond,
			WorkerID: name,
			Logger:   quiet,
		}))
	}
	batch := make([]store.Job, n)
	for i := range batch {
		batch[i] = store.Job{Kind: "bulk", Payload: fmt.Appendf(nil, `{"i":%d}`, i), MaxAttempts: 3}
	}
	ids := enqueue(t, st1, batch...)
	waitFor(t, "all jobs done", func() bool {
		done, err := st1.Jobs(context.Background(), store.JobFilter{State: store.JobDone, Limit: 1000})
		if err != nil {
			t.Fatalf("Jobs: %v", err)
		}
		return len(done) == n
	})
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != n {
		t.Errorf("%d distinct jobs handled, want %d", len(seen), n)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("job %d handled %d times", id, seen[id])
		}
	}
	t.Logf("jobs per runner: %v", byRunner)
}

func TestGracefulStopFinishesRunningJob(t *testing.T) {
	st := openStore(t, "")
	started := make(chan struct{})
	release := make(chan struct{})
	ctxErr := make(chan error, 1)
	r := jobs.NewRunner(jobs.Config{
		Store: st,
		Handlers: map[string]jobs.HandlerFunc{"slow": func(ctx context.Context, j store.Job) error {
			close(started)
			<-release
			ctxErr <- ctx.Err()
			return nil
		}},
		Poll:   20 * time.Millisecond,
		Logger: quiet,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	id := enqueue(t, st, store.Job{Kind: "slow", MaxAttempts: 3})[0]
	r.Kick()
	select {
	case <-started:
	case <-time.After(deadline):
		t.Fatal("handler did not start")
	}
	cancel()
	// The handler is blocked, so Run cannot have returned.
	select {
	case err := <-runDone:
		t.Fatalf("Run returned (%v) while a handler was running", err)
	default:
	}
	close(release)
	select {
	case err := <-runDone:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("Run did not return after the handler finished")
	}
	if err := <-ctxErr; err != nil {
		t.Errorf("handler context was cancelled by the shutdown: %v", err)
	}
	if j, err := st.Job(context.Background(), id); err != nil || j.State != store.JobDone {
		t.Errorf("job %+v, %v; want done", j, err)
	}
}

// claimWatch is the real store with a count of the claims that found
// nothing, to know when a worker has gone idle.
type claimWatch struct {
	store.Store
	empty atomic.Int32
}

func (c *claimWatch) ClaimJob(ctx context.Context, worker string, kinds []string, now time.Time, lease time.Duration) (store.Job, error) {
	j, err := c.Store.ClaimJob(ctx, worker, kinds, now, lease)
	if errors.Is(err, store.ErrNotFound) {
		c.empty.Add(1)
	}
	return j, err
}

func TestKickWakesIdleWorker(t *testing.T) {
	st := &claimWatch{Store: openStore(t, "")}
	r := jobs.NewRunner(jobs.Config{
		Store:    st,
		Handlers: map[string]jobs.HandlerFunc{"k": func(context.Context, store.Job) error { return nil }},
		Workers:  1,
		Poll:     time.Hour,
		Logger:   quiet,
	})
	start(t, r)
	waitFor(t, "the worker's first empty claim", func() bool { return st.empty.Load() >= 1 })
	id := enqueue(t, st, store.Job{Kind: "k", MaxAttempts: 3})[0]
	r.Kick()
	waitState(t, st, id, store.JobDone)
}

func TestOtherKindsAreLeftAlone(t *testing.T) {
	st := openStore(t, "")
	r := jobs.NewRunner(jobs.Config{
		Store:    st,
		Handlers: map[string]jobs.HandlerFunc{"mine": func(context.Context, store.Job) error { return nil }},
		Poll:     20 * time.Millisecond,
		Logger:   quiet,
	})
	ids := enqueue(t, st, store.Job{Kind: "theirs", MaxAttempts: 3}, store.Job{Kind: "mine", MaxAttempts: 3})
	start(t, r)
	waitState(t, st, ids[1], store.JobDone)
	j, err := st.Job(context.Background(), ids[0])
	if err != nil || j.State != store.JobAvailable || j.Attempts != 0 {
		t.Errorf("other kind's job %+v, %v; want untouched", j, err)
	}
}

func TestRegister(t *testing.T) {
	st := openStore(t, "")
	handlers := map[string]jobs.HandlerFunc{"given": func(context.Context, store.Job) error { return nil }}
	r := jobs.NewRunner(jobs.Config{Store: st, Handlers: handlers, Poll: 20 * time.Millisecond, Logger: quiet})
	// NewRunner copied the map: writing to it afterwards changes nothing.
	handlers["ignored"] = func(context.Context, store.Job) error { return nil }
	ok := func(context.Context, store.Job) error { return nil }
	if err := r.Register("late", ok); err != nil {
		t.Fatalf("Register before Run: %v", err)
	}
	for _, bad := range []struct {
		kind string
		h    jobs.HandlerFunc
	}{{"late", ok}, {"given", ok}, {"", ok}, {"nil", nil}} {
		if err := r.Register(bad.kind, bad.h); err == nil {
			t.Errorf("Register(%q, nil handler %v) succeeded, want an error", bad.kind, bad.h == nil)
		}
	}
	start(t, r)
	ids := enqueue(t, st, store.Job{Kind: "late", MaxAttempts: 3}, store.Job{Kind: "given", MaxAttempts: 3}, store.Job{Kind: "ignored", MaxAttempts: 3})
	waitState(t, st, ids[0], store.JobDone)
	waitState(t, st, ids[1], store.JobDone)
	if err := r.Register("after", ok); err == nil {
		t.Error("Register after Run succeeded, want an error")
	}
	// A kind without a handler is never claimed.
	time.Sleep(100 * time.Millisecond)
	if j, err := st.Job(context.Background(), ids[2]); err != nil || j.State != store.JobAvailable || j.Attempts != 0 {
		t.Errorf("job of the unregistered kind: %+v, %v; want available, untouched", j, err)
	}
}

func TestExecuteClaimedByID(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	var out outcomes
	var handlerDeadline time.Time
	var fail atomic.Bool
	r := jobs.NewRunner(jobs.Config{
		Store: st,
		Handlers: map[string]jobs.HandlerFunc{"provision": func(ctx context.Context, j store.Job) error {
			handlerDeadline, _ = ctx.Deadline()
			if fail.Load() {
				return errors.New("not yet")
			}
			return nil
		}},
		Lease:     time.Minute,
		Backoff:   func(int) time.Duration { return time.Hour },
		WorkerID:  "api-1",
		Logger:    quiet,
		OnOutcome: out.add,
	})
	ids := enqueue(t, st, store.Job{Kind: "provision", MaxAttempts: 5}, store.Job{Kind: "provision", MaxAttempts: 5})

	// Success: completed as the worker that claimed it.
	j, err := st.ClaimJobByID(ctx, ids[0], r.WorkerID(), time.Now(), time.Minute)
	if err != nil {
		t.Fatalf("ClaimJobByID: %v", err)
	}
	r.Execute(ctx, j)
	if got, _ := st.Job(ctx, ids[0]); got.State != store.JobDone {
		t.Errorf("job %+v, want done", got)
	}
	if handlerDeadline.IsZero() || !handlerDeadline.Before(j.LockedUntil) {
		t.Errorf("handler deadline %v, want one before the lease end %v", handlerDeadline, j.LockedUntil)
	}

	// Failure: back to available, an hour later.
	fail.Store(true)
	before := time.Now()
	j, err = st.ClaimJobByID(ctx, ids[1], r.WorkerID(), time.Now(), time.Minute)
	if err != nil {
		t.Fatalf("ClaimJobByID: %v", err)
	}
	r.Execute(ctx, j)
	got, _ := st.Job(ctx, ids[1])
	if got.State != store.JobAvailable || got.LastError != "not yet" || got.RunAt.Before(before.Add(59*time.Minute)) {
		t.Errorf("job %+v, want available in an hour with the error", got)
	}
	if o := out.get(); !slices.Equal(o, []string{"provision:done", "provision:retry"}) {
		t.Errorf("outcomes %v", o)
	}
}

func TestLostLeaseIsNotFatal(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	var logs lockbuf.Buffer
	var out outcomes
	r := jobs.NewRunner(jobs.Config{
		Store:     st,
		Handlers:  map[string]jobs.HandlerFunc{"x": func(context.Context, store.Job) error { return nil }},
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		OnOutcome: out.add,
	})
	id := enqueue(t, st, store.Job{Kind: "x", MaxAttempts: 5})[0]
	now := time.Now()
	first, err := st.ClaimJobByID(ctx, id, "A", now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Two minutes later A's lease has run out and B takes the job over.
	if _, err := st.ClaimJobByID(ctx, id, "B", now.Add(2*time.Minute), time.Minute); err != nil {
		t.Fatal(err)
	}
	r.Execute(ctx, first)
	j, _ := st.Job(ctx, id)
	if j.State != store.JobRunning || j.LockedBy != "B" {
		t.Errorf("job %+v, want still running for B", j)
	}
	if !strings.Contains(logs.String(), "lease lost") {
		t.Errorf("no lease-lost log in %q", logs.String())
	}
	if o := out.get(); len(o) != 0 {
		t.Errorf("outcomes %v, want none", o)
	}
}

func TestExecuteWithoutHandlerKillsJob(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	r := jobs.NewRunner(jobs.Config{Store: st, Logger: quiet})
	id := enqueue(t, st, store.Job{Kind: "nobody", MaxAttempts: 5})[0]
	j, err := st.ClaimJobByID(ctx, id, r.WorkerID(), time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r.Execute(ctx, j)
	if got, _ := st.Job(ctx, id); got.State != store.JobDead || !strings.Contains(got.LastError, "no handler") {
		t.Errorf("job %+v, want dead", got)
	}
}

func TestRunErrors(t *testing.T) {
	if err := jobs.NewRunner(jobs.Config{}).Run(context.Background()); err == nil {
		t.Error("Run without a store succeeded")
	}
	st := &claimWatch{Store: openStore(t, "")}
	r := jobs.NewRunner(jobs.Config{
		Store:    st,
		Handlers: map[string]jobs.HandlerFunc{"k": func(context.Context, store.Job) error { return nil }},
		Logger:   quiet,
	})
	start(t, r)
	waitFor(t, "the first Run's workers", func() bool { return st.empty.Load() >= 1 })
	if err := r.Run(context.Background()); err == nil {
		t.Error("a second Run of a running Runner succeeded")
	}
}

func TestDefaultBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		base    time.Duration
	}{
		{0, time.Second},
		{1, time.Second},
		{2, 2 * time.Second},
		{5, 16 * time.Second},
		{10, 512 * time.Second},
		{11, 10 * time.Minute},
		{25, 10 * time.Minute},
		{1000, 10 * time.Minute},
	}
	for _, tt := range tests {
		for range 50 {
			d := jobs.DefaultBackoff(tt.attempt)
			lo, hi := tt.base*8/10, tt.base*12/10
			if d < lo || d > hi {
				t.Fatalf("DefaultBackoff(%d) = %v, want within [%v, %v]", tt.attempt, d, lo, hi)
			}
		}
	}
}

func TestDefaultWorkerID(t *testing.T) {
	a := jobs.NewRunner(jobs.Config{}).WorkerID()
	b := jobs.NewRunner(jobs.Config{}).WorkerID()
	if a == b || strings.Count(a, ":") < 2 {
		t.Errorf("worker IDs %q and %q: want distinct host:pid:random", a, b)
	}
}
