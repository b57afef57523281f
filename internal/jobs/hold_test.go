package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
)

// commits is the real store with a count of the writes that commit on
// their own: transactions, claims and recorded outcomes.
type commits struct {
	store.Store
	txs, claims, completes, others atomic.Int32
}

func (c *commits) Tx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	c.txs.Add(1)
	return c.Store.Tx(ctx, fn)
}

func (c *commits) ClaimJob(ctx context.Context, worker string, kinds []string, now time.Time, lease time.Duration) (store.Job, error) {
	j, err := c.Store.ClaimJob(ctx, worker, kinds, now, lease)
	if err == nil {
		c.claims.Add(1)
	}
	return j, err
}

func (c *commits) ClaimJobByID(ctx context.Context, id int64, worker string, now time.Time, lease time.Duration) (store.Job, error) {
	c.claims.Add(1)
	return c.Store.ClaimJobByID(ctx, id, worker, now, lease)
}

func (c *commits) CompleteJob(ctx context.Context, id int64, worker string) error {
	c.completes.Add(1)
	return c.Store.CompleteJob(ctx, id, worker)
}

func (c *commits) RetryJob(ctx context.Context, id int64, worker string, runAt time.Time, lastErr string) error {
	c.others.Add(1)
	return c.Store.RetryJob(ctx, id, worker, runAt, lastErr)
}

func (c *commits) DeadJob(ctx context.Context, id int64, worker string, lastErr string) error {
	c.others.Add(1)
	return c.Store.DeadJob(ctx, id, worker, lastErr)
}

// holdAndEnqueue inserts job through a Hold of r in one transaction and
// returns the Hold and the job's ID.
func holdAndEnqueue(t *testing.T, r *jobs.Runner, st store.Store, job store.Job) (*jobs.Hold, int64) {
	t.Helper()
	h := r.Hold()
	t.Cleanup(h.Release)
	var id int64
	err := st.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		var (
			ok  bool
			err error
		)
		id, ok, err = h.Enqueue(ctx, tx, job)
		if err == nil && !ok {
			t.Errorf("Enqueue of %+v inserted nothing", job)
		}
		return err
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return h, id
}

// finish is a handler that completes its job in the transaction of its
// own change (a follow-up job), as a handler's last state change does.
func finish(follow string) jobs.HandlerFunc {
	return func(ctx context.Context, j store.Job) error {
		return jobs.Tx(ctx, jobStore(ctx), func(ctx context.Context, tx store.Tx) error {
			if err := change(ctx, tx, follow); err != nil {
				return err
			}
			return jobs.CompleteIn(ctx, tx)
		})
	}
}

// change is a handler's change in tx: a job of kind, due in an hour.
func change(ctx context.Context, tx store.Tx, kind string) error {
	_, _, err := tx.EnqueueJob(ctx, store.Job{Kind: kind, UniqueKey: kind, MaxAttempts: 3, RunAt: time.Now().Add(time.Hour)})
	return err
}

// rerun runs each transaction's function twice, as a store does when the
// database asks for a retry: the first run is rolled back.
type rerun struct{ store.Txer }

var errRollback = errors.New("test: roll the first run back")

func (r rerun) Tx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error {
	err := r.Txer.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return fmt.Errorf("first run: %v, want it rolled back", err)
	}
	return r.Txer.Tx(ctx, fn)
}

type storeKey struct{}

func withStore(ctx context.Context, st store.Store) context.Context {
	return context.WithValue(ctx, storeKey{}, st)
}

func jobStore(ctx context.Context) store.Store { return ctx.Value(storeKey{}).(store.Store) }

// TestHoldRunsWithoutClaimOrCompletion: a call inserts its job claimed in
// its own transaction and runs it; the handler completes it in its own
// last transaction. Two commits in all: no claim, no separate completion,
// and the outcome is still reported done, once.
func TestHoldRunsWithoutClaimOrCompletion(t *testing.T) {
	st := &commits{Store: openStore(t, "")}
	var out outcomes
	var runs atomic.Int32
	var r *jobs.Runner
	r = jobs.NewRunner(jobs.Config{
		Store: st, Logger: quiet, OnOutcome: out.add,
		Handlers: map[string]jobs.HandlerFunc{"own": func(ctx context.Context, j store.Job) error {
			runs.Add(1)
			if j.Attempts != 1 || j.LockedBy != r.WorkerID() {
				t.Errorf("handler got %+v, want attempt 1 held by the runner", j)
			}
			return finish("follow")(ctx, j)
		}},
	})
	// Due in an hour: only the Hold runs it (no worker runs anyway).
	h, id := holdAndEnqueue(t, r, st, store.Job{Kind: "own", MaxAttempts: 3, RunAt: time.Now().Add(time.Hour)})
	h.Run(withStore(context.Background(), st), id, time.Now().Add(deadline))
	r.Wait()

	j := waitState(t, st, id, store.JobDone)
	if j.Attempts != 1 || runs.Load() != 1 {
		t.Errorf("job %+v after %d runs, want done after 1 attempt", j, runs.Load())
	}
	// Wait has returned: Execute, and its report, are over.
	if got := out.get(); !slices.Equal(got, []string{"own:done"}) {
		t.Errorf("outcomes %v, want [own:done]", got)
	}
	if n, c, o := st.claims.Load(), st.completes.Load(), st.others.Load(); n != 0 || c != 0 || o != 0 {
		t.Errorf("%d claims, %d completions, %d other outcomes committed on their own; want none", n, c, o)
	}
	if n := st.txs.Load(); n != 2 {
		t.Errorf("%d transactions, want 2 (the call's insert, the handler's change with the completion)", n)
	}
	follow, err := st.Jobs(context.Background(), store.JobFilter{Kind: "follow"})
	if err != nil || len(follow) != 1 {
		t.Errorf("follow-up jobs %v, %v; want the one committed with the completion", follow, err)
	}
}

// TestHoldJobTakenOverAfterLease: the process that inserted its job
// claimed dies before running it. Nobody takes the job within its lease;
// after it, another runner's worker does, as it takes over any claimed
// job whose worker died.
func TestHoldJobTakenOverAfterLease(t *testing.T) {
	st := openStore(t, "")
	const lease = time.Minute
	dead := jobs.NewRunner(jobs.Config{Store: st, Logger: quiet, Lease: lease, WorkerID: "dead"})
	h, id := holdAndEnqueue(t, dead, st, store.Job{Kind: "own", MaxAttempts: 3})
	h.Release() // the process dies: the job is never run by it

	j, err := st.Job(context.Background(), id)
	if err != nil || j.State != store.JobRunning || j.LockedBy != "dead" || j.Attempts != 1 {
		t.Fatalf("job inserted claimed = %+v, %v; want running, held by dead, attempt 1", j, err)
	}
	if _, err := st.ClaimJob(context.Background(), "other", nil, time.Now(), lease); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ClaimJob within the lease: %v, want ErrNotFound", err)
	}

	// Another runner, whose clock is past the lease.
	var ran atomic.Int32
	other := jobs.NewRunner(jobs.Config{
		Store: st, Logger: quiet, Lease: lease, WorkerID: "other", Poll: 10 * time.Millisecond,
		Now: func() time.Time { return time.Now().Add(2 * lease) },
		Handlers: map[string]jobs.HandlerFunc{"own": func(ctx context.Context, j store.Job) error {
			ran.Add(1)
			return nil
		}},
	})
	start(t, other)
	j = waitState(t, st, id, store.JobDone)
	if j.Attempts != 2 || ran.Load() != 1 {
		t.Errorf("job %+v after %d runs, want done by the other runner at attempt 2", j, ran.Load())
	}
	// The dead process's worker, back to life, cannot finish it.
	if err := st.CompleteJob(context.Background(), id, "dead"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CompleteJob by the first holder: %v, want ErrConflict", err)
	}
}

// TestCompleteInLeaseLost: a handler whose job was taken over by another
// worker while it ran cannot complete it: its last transaction rolls back
// whole (the change made with the completion too), the runner records
// nothing and reports no outcome, and the job stays with the other worker.
func TestCompleteInLeaseLost(t *testing.T) {
	st := &commits{Store: openStore(t, "")}
	var out outcomes
	const lease = time.Minute
	started, proceed := make(chan struct{}), make(chan struct{})
	var handlerErr atomic.Value
	r := jobs.NewRunner(jobs.Config{
		Store: st, Logger: quiet, OnOutcome: out.add, Lease: lease,
		Handlers: map[string]jobs.HandlerFunc{"own": func(ctx context.Context, j store.Job) error {
			close(started)
			<-proceed
			err := finish("side")(ctx, j)
			handlerErr.Store(err)
			return err
		}},
	})
	h, id := holdAndEnqueue(t, r, st, store.Job{Kind: "own", MaxAttempts: 3})
	go h.Run(withStore(context.Background(), st), id, time.Now())
	<-started
	// The lease is presumed expired elsewhere: another worker takes over.
	if _, err := st.Store.ClaimJob(context.Background(), "w2", nil, time.Now().Add(2*lease), lease); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	close(proceed)
	r.Wait()

	err, _ := handlerErr.Load().(error)
	if !errors.Is(err, jobs.ErrLeaseLost) || errors.Is(err, store.ErrConflict) {
		t.Errorf("handler's error %v, want ErrLeaseLost (and not store.ErrConflict, which a version check would retry)", err)
	}
	j, jerr := st.Job(context.Background(), id)
	if jerr != nil || j.State != store.JobRunning || j.LockedBy != "w2" {
		t.Errorf("job %+v, %v; want still running for w2", j, jerr)
	}
	wantNothingRecorded(t, st, &out)
}

// wantNothingRecorded checks that a refused completion left nothing: the
// handler's side job rolled back with it, and the runner wrote no outcome
// and reported none.
func wantNothingRecorded(t *testing.T, st *commits, out *outcomes) {
	t.Helper()
	if side, err := st.Jobs(context.Background(), store.JobFilter{Kind: "side"}); err != nil || len(side) != 0 {
		t.Errorf("side jobs %v, %v; want none: the change rolls back with the refused completion", side, err)
	}
	if c, o := st.completes.Load(), st.others.Load(); c != 0 || o != 0 {
		t.Errorf("runner wrote %d completions, %d other outcomes; want none", c, o)
	}
	if got := out.get(); len(got) != 0 {
		t.Errorf("outcomes %v, want none", got)
	}
}

// TestCompleteInJobGone: a handler whose job no longer exists cannot
// complete it. CompleteIn answers ErrLeaseLost, never store.ErrNotFound,
// which a caller such as the instance package's mutate reads as its own
// row missing; the transaction rolls back and the runner records nothing.
func TestCompleteInJobGone(t *testing.T) {
	st := &commits{Store: openStore(t, "")}
	var out outcomes
	var handlerErr error
	r := jobs.NewRunner(jobs.Config{
		Store: st, Logger: quiet, OnOutcome: out.add,
		Handlers: map[string]jobs.HandlerFunc{"own": func(ctx context.Context, j store.Job) error {
			handlerErr = finish("side")(ctx, j)
			return handlerErr
		}},
	})
	// A job the store does not have, as if deleted while it ran.
	r.Execute(withStore(context.Background(), st), store.Job{ID: 4242, Kind: "own", State: store.JobRunning,
		Attempts: 1, MaxAttempts: 3, LockedBy: "w", LockedUntil: time.Now().Add(time.Minute)})

	if !errors.Is(handlerErr, jobs.ErrLeaseLost) || errors.Is(handlerErr, store.ErrNotFound) {
		t.Errorf("handler's error %v, want ErrLeaseLost (and not store.ErrNotFound, which reads as the instance missing)", handlerErr)
	}
	wantNothingRecorded(t, st, &out)
}

// TestCompleteInOnlyWhenCommitted: the runner skips its own completion
// only when the handler's completion committed: made in the transaction
// that committed, by the run of its function that committed.
func TestCompleteInOnlyWhenCommitted(t *testing.T) {
	errNoChange := errors.New("no change")
	cases := []struct {
		name string
		// handler is the job's handler; ctx carries the store.
		handler        jobs.HandlerFunc
		wantCompletion int32 // by the runner, afterwards
	}{
		{"committed with the change", finish("follow"), 0},
		{"rolled back after CompleteIn", func(ctx context.Context, j store.Job) error {
			// As mutate: the first try completes, then conflicts; the
			// second decides to change nothing. Nothing is committed.
			for _, then := range []error{store.ErrConflict, errNoChange} {
				err := jobs.Tx(ctx, jobStore(ctx), func(ctx context.Context, tx store.Tx) error {
					if then == errNoChange {
						return then
					}
					if err := jobs.CompleteIn(ctx, tx); err != nil {
						return err
					}
					return then
				})
				if !errors.Is(err, then) {
					return err
				}
			}
			return nil
		}, 1},
		{"retried without CompleteIn after a rollback", func(ctx context.Context, j store.Job) error {
			// As mutate: the first try completes, then conflicts; the
			// second commits its change without completing the job.
			for try := 0; ; try++ {
				err := jobs.Tx(ctx, jobStore(ctx), func(ctx context.Context, tx store.Tx) error {
					if err := change(ctx, tx, "side"); err != nil {
						return err
					}
					if try > 0 {
						return nil
					}
					if err := jobs.CompleteIn(ctx, tx); err != nil {
						return err
					}
					return store.ErrConflict
				})
				if try > 0 || !errors.Is(err, store.ErrConflict) {
					return err
				}
			}
		}, 1},
		{"rerun by the store without CompleteIn", func(ctx context.Context, j store.Job) error {
			run := 0
			return jobs.Tx(ctx, rerun{jobStore(ctx)}, func(ctx context.Context, tx store.Tx) error {
				run++
				if err := change(ctx, tx, "side"); err != nil || run > 1 {
					return err
				}
				return jobs.CompleteIn(ctx, tx)
			})
		}, 1},
		{"rerun by the store, completed in the run that commits", func(ctx context.Context, j store.Job) error {
			run := 0
			return jobs.Tx(ctx, rerun{jobStore(ctx)}, func(ctx context.Context, tx store.Tx) error {
				run++
				if err := change(ctx, tx, "side"); err != nil || run == 1 {
					return err
				}
				return jobs.CompleteIn(ctx, tx)
			})
		}, 0},
		{"completed, then another change", func(ctx context.Context, j store.Job) error {
			if err := finish("follow")(ctx, j); err != nil {
				return err
			}
			return jobs.Tx(ctx, jobStore(ctx), func(ctx context.Context, tx store.Tx) error {
				return change(ctx, tx, "side")
			})
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &commits{Store: openStore(t, "")}
			var out outcomes
			r := jobs.NewRunner(jobs.Config{Store: st, Logger: quiet, OnOutcome: out.add,
				Handlers: map[string]jobs.HandlerFunc{"own": c.handler}})
			id := enqueue(t, st, store.Job{Kind: "own", MaxAttempts: 3})[0]
			j, err := st.ClaimJob(context.Background(), "w", nil, time.Now(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			r.Execute(withStore(context.Background(), st), j)
			got, err := st.Job(context.Background(), id)
			if err != nil || got.State != store.JobDone || got.Attempts != 1 {
				t.Errorf("job %s at attempt %d, %v; want done at attempt 1", got.State, got.Attempts, err)
			}
			if n := st.completes.Load(); n != c.wantCompletion {
				t.Errorf("runner completed the job %d times, want %d", n, c.wantCompletion)
			}
			if got := out.get(); !slices.Equal(got, []string{"own:done"}) {
				t.Errorf("outcomes %v, want [own:done]", got)
			}
		})
	}
}

// TestCompleteInOutsideTx: CompleteIn in a transaction that jobs.Tx did
// not run cannot know whether its completion commits: it refuses, the
// transaction rolls back, and the job is dead-lettered with the reason
// rather than retried (the mistake would repeat on every attempt).
func TestCompleteInOutsideTx(t *testing.T) {
	st := &commits{Store: openStore(t, "")}
	var out outcomes
	var handlerErr error
	r := jobs.NewRunner(jobs.Config{Store: st, Logger: quiet, OnOutcome: out.add,
		Handlers: map[string]jobs.HandlerFunc{"own": func(ctx context.Context, j store.Job) error {
			handlerErr = jobStore(ctx).Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				if err := change(ctx, tx, "side"); err != nil {
					return err
				}
				return jobs.CompleteIn(ctx, tx)
			})
			return handlerErr
		}}})
	id := enqueue(t, st, store.Job{Kind: "own", MaxAttempts: 3})[0]
	j, err := st.ClaimJob(context.Background(), "w", nil, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r.Execute(withStore(context.Background(), st), j)

	if !jobs.IsPermanent(handlerErr) {
		t.Errorf("handler's error %v, want a permanent one", handlerErr)
	}
	if got, err := st.Job(context.Background(), id); err != nil || got.State != store.JobDead {
		t.Errorf("job %s, %v; want dead", got.State, err)
	}
	if side, err := st.Jobs(context.Background(), store.JobFilter{Kind: "side"}); err != nil || len(side) != 0 {
		t.Errorf("side jobs %v, %v; want none: the change rolls back with the refused completion", side, err)
	}
	if got := out.get(); !slices.Equal(got, []string{"own:dead"}) {
		t.Errorf("outcomes %v, want [own:dead]", got)
	}
}
