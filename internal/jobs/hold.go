package jobs

import (
	"context"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// Hold lets a call run a job it enqueues itself within its budget, as
// RunWithin does, without a claim of its own: Enqueue inserts the job in
// the call's transaction already claimed by the Runner (running, locked by
// WorkerID for the Lease, attempt 1), and Run executes it once that
// transaction has committed. Nothing else can see the job before the
// commit, and after it the lease keeps every other worker away, so the
// claim that RunWithin commits separately is not needed. Should the
// process die before the job finishes, any runner takes it over when the
// lease expires, as it takes over a claimed job whose worker died.
//
// A Hold counts as background work for Wait from Runner.Hold until Run or
// Release, so that a job inserted claimed is not left for its lease to
// expire by a shutdown that began in between: the caller defers Release.
// Once Wait has begun, Runner.Hold returns an inactive Hold: its Enqueue
// inserts the job available at job.RunAt, as EnqueueJob does, for the
// workers (after a restart), and Run does nothing. A Hold is used by one
// goroutine.
type Hold struct {
	r      *Runner
	active bool      // a background run is registered and not yet used
	job    store.Job // as the latest Enqueue inserted it claimed; zero otherwise
}

// Hold prepares a job for the caller to enqueue claimed by this Runner
// and run within its budget (see Hold).
func (r *Runner) Hold() *Hold {
	return &Hold{r: r, active: r.startBackground()}
}

// Enqueue inserts job in tx, claimed by the Runner when h is active (its
// RunAt is then ignored: the attempt begins now), else available at
// job.RunAt. It returns the job's ID and whether it was inserted (false
// when job.UniqueKey is taken: the ID is then the existing job's, which
// is not claimed). A transaction that is run again calls Enqueue again;
// Run runs what the latest call inserted.
func (h *Hold) Enqueue(ctx context.Context, tx store.JobTx, job store.Job) (int64, bool, error) {
	h.job = store.Job{}
	if !h.active {
		return tx.EnqueueJob(ctx, job)
	}
	j, inserted, err := tx.EnqueueClaimedJob(ctx, job, h.r.cfg.WorkerID, h.r.cfg.Now().UTC(), h.r.cfg.Lease)
	if err != nil {
		return 0, false, err
	}
	if inserted {
		h.job = j
	}
	return j.ID, inserted, nil
}

// Run executes job id in the background once the transaction of Enqueue
// has committed, and waits for it until deadline or the end of ctx, as
// RunWithin does. A job that Enqueue did not insert claimed (another ID:
// its unique key was taken) is claimed by ID first, as RunWithin claims
// it. Run does nothing when h is inactive, or after Run or Release.
func (h *Hold) Run(ctx context.Context, id int64, deadline time.Time) {
	if !h.active {
		return
	}
	h.active = false
	if h.job.ID == 0 || h.job.ID != id {
		h.r.runWithin(ctx, id, deadline)
		return
	}
	h.r.runHeld(ctx, h.job, deadline)
}

// Release ends h without running anything: for a call whose transaction
// failed or inserted no job of its own. Release after Run does nothing.
func (h *Hold) Release() {
	if h.active {
		h.active = false
		h.r.bg.Done()
	}
}
