package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// RunWithin claims job id for this process and runs it in the background,
// waiting for it until deadline or the end of ctx: a call that must
// answer within a time budget (newInstance, license 1.0 getLicense) runs
// its job's first attempt itself instead of waiting for a worker. The
// job's context is detached from ctx: an answer given at the deadline does
// not stop the work, which goes on under the job's lease (and, should this
// process die, is taken over by any runner when the lease expires). If
// another worker holds the job already, it only kicks the workers; once
// Wait has begun it does nothing, and the job stays queued.
func (r *Runner) RunWithin(ctx context.Context, id int64, deadline time.Time) {
	if !r.startBackground() {
		return
	}
	r.runWithin(ctx, id, deadline)
}

// runWithin is RunWithin once its background run is registered.
func (r *Runner) runWithin(ctx context.Context, id int64, deadline time.Time) {
	job, err := r.cfg.Store.ClaimJobByID(ctx, id, r.cfg.WorkerID, r.cfg.Now().UTC(), r.cfg.Lease)
	if err != nil {
		r.bg.Done()
		if !errors.Is(err, store.ErrNotFound) {
			r.cfg.Logger.WarnContext(ctx, "jobs: claim job", "job", id, "err", err)
		}
		r.Kick()
		return
	}
	r.runHeld(ctx, job, deadline)
}

// runHeld runs job, which this Runner holds, in the background under its
// registered background run, and waits for it until deadline or the end
// of ctx.
func (r *Runner) runHeld(ctx context.Context, job store.Job, deadline time.Time) {
	done := make(chan struct{})
	go func() {
		defer r.bg.Done()
		defer close(done)
		// Execute gives the handler a deadline before the lease ends.
		r.Execute(context.WithoutCancel(ctx), job)
	}()
	wait := time.Until(deadline)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// Wait stops RunWithin from starting more background runs and waits for
// those under way: the server calls it after its HTTP server has shut
// down, so that no call's work is cut off. It may be called more than
// once.
func (r *Runner) Wait() {
	r.bgMu.Lock()
	r.stopping = true
	r.bgMu.Unlock()
	r.bg.Wait()
}

// startBackground registers one background run, or reports false once
// Wait has begun.
func (r *Runner) startBackground() bool {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.stopping {
		return false
	}
	r.bg.Add(1)
	return true
}
