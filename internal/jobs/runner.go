package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// Runner runs jobs from a store with a pool of workers.
type Runner struct {
	cfg      Config
	handlers map[string]HandlerFunc // fixed once Run has started
	kinds    []string               // the keys of handlers, sorted; set by Run
	kick     chan struct{}
	running  atomic.Bool

	mu      sync.Mutex
	started bool // Run has begun: no more Register

	// bg counts the jobs RunWithin runs for calls, which outlive them;
	// bgMu guards stopping: once Wait has begun no call starts one.
	bg       sync.WaitGroup
	bgMu     sync.Mutex
	stopping bool
}

// NewRunner returns a Runner for cfg with its defaults filled in.
// cfg.Store is required.
func NewRunner(cfg Config) *Runner {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = defaultWorkerID()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	handlers := make(map[string]HandlerFunc, len(cfg.Handlers))
	for k, h := range cfg.Handlers {
		if h != nil {
			handlers[k] = h
		}
	}
	cfg.Handlers = nil
	// One token: a Kick while no worker is idle is remembered, more are
	// redundant. A worker that claims a job passes the wake-up on.
	return &Runner{cfg: cfg, handlers: handlers, kick: make(chan struct{}, 1)}
}

// Register adds the handler of a job kind. Every kind is registered before
// Run starts (the families and domain services of the server register
// theirs when they are built); Register fails after that, for a kind that
// already has a handler, and for a nil handler or an empty kind.
func (r *Runner) Register(kind string, h HandlerFunc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.started:
		return fmt.Errorf("jobs: register %q: the runner has started", kind)
	case kind == "" || h == nil:
		return fmt.Errorf("jobs: register %q: empty kind or nil handler", kind)
	case r.handlers[kind] != nil:
		return fmt.Errorf("jobs: register %q: kind already registered", kind)
	}
	r.handlers[kind] = h
	return nil
}

// RegisterAll registers every handler of m (in sorted order of kind, so
// the first error is deterministic).
func (r *Runner) RegisterAll(m map[string]HandlerFunc) error {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		if err := r.Register(k, m[k]); err != nil {
			return err
		}
	}
	return nil
}

// Lease returns the lease the Runner claims jobs for (Config.Lease).
func (r *Runner) Lease() time.Duration { return r.cfg.Lease }

// Backoff returns the wait before the next try after failed attempt
// number attempt (Config.Backoff).
func (r *Runner) Backoff(attempt int) time.Duration { return r.cfg.Backoff(attempt) }

// WorkerID returns the Runner's worker ID (Config.WorkerID).
func (r *Runner) WorkerID() string { return r.cfg.WorkerID }

// Kick wakes an idle worker now, typically because a job was just
// enqueued; without it the job waits up to Poll. It never blocks.
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run starts the workers and blocks until ctx is done; then it stops
// claiming jobs and waits until every running handler has returned, and
// returns nil. It returns an error at once when the Runner has no Store or
// is already running.
//
// Shutdown is graceful: handlers run with a context that Run's ctx does
// not cancel (it keeps ctx's values), so a job in flight finishes, within
// its own lease-based deadline, and its outcome is recorded.
func (r *Runner) Run(ctx context.Context) error {
	if r.cfg.Store == nil {
		return errors.New("jobs: run: no store")
	}
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("jobs: run: already running")
	}
	defer r.running.Store(false)
	r.start()
	var wg sync.WaitGroup
	for i := 1; i <= r.cfg.Workers; i++ {
		worker := r.cfg.WorkerID + "/" + strconv.Itoa(i)
		wg.Go(func() { r.work(ctx, worker) })
	}
	wg.Wait()
	return nil
}

// work is one worker: claim a due job and execute it, or wait for a Kick
// or the next poll, until ctx is done.
func (r *Runner) work(ctx context.Context, worker string) {
	jobCtx := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		if kinds := r.kinds; len(kinds) > 0 {
			job, err := r.cfg.Store.ClaimJob(ctx, worker, kinds, r.cfg.Now(), r.cfg.Lease)
			switch {
			case err == nil:
				// More jobs may be due: let an idle worker look too.
				r.Kick()
				r.Execute(jobCtx, job)
				continue
			case errors.Is(err, store.ErrNotFound):
			case ctx.Err() != nil:
				return
			default:
				r.cfg.Logger.Warn("jobs: claim failed", "worker", worker, "err", err)
			}
		}
		r.idle(ctx)
	}
}

// idle waits for Poll, a Kick or the end of ctx.
func (r *Runner) idle(ctx context.Context) {
	t := time.NewTimer(r.cfg.Poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-r.kick:
	}
}

// start closes registration and lists the kinds the workers claim.
func (r *Runner) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return
	}
	r.started = true
	r.kinds = make([]string, 0, len(r.handlers))
	for k := range r.handlers {
		r.kinds = append(r.kinds, k)
	}
	slices.Sort(r.kinds)
}

// handler returns the handler of kind: read without a lock once Run has
// started, when the map no longer changes, and under the lock before
// (a call's Execute may come before Run).
func (r *Runner) handler(kind string) HandlerFunc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handlers[kind]
}

// Execute runs an already-claimed job through its handler and records the
// outcome in the store as the worker that holds the job (job.LockedBy, or
// WorkerID when empty): nil completes it; a Permanent error, a failure at
// the job's last attempt (Attempts >= MaxAttempts, DefaultMaxAttempts when
// the job has none) or a kind without a handler kills it; any other error
// or a panic in the handler retries it at now + Backoff(Attempts).
//
// The handler's context derives from ctx with a deadline before the lease
// ends (the lease minus 5s, or half of what remains of a short one).
// Recording does not depend on ctx being alive. Losing the lease (the
// store answers ErrConflict) is logged, not fatal.
//
// A handler that completed its job in its own last transaction
// (CompleteIn in a Tx that committed) is reported done without another
// write; one that lost its lease there (ErrLeaseLost) has nothing
// recorded.
func (r *Runner) Execute(ctx context.Context, job store.Job) {
	worker := job.LockedBy
	if worker == "" {
		worker = r.cfg.WorkerID
	}
	log := r.cfg.Logger.With("job", job.ID, "kind", job.Kind, "attempt", job.Attempts, "worker", worker)

	var err error
	hd := &held{id: job.ID, worker: worker}
	if h := r.handler(job.Kind); h == nil {
		err = Permanent(fmt.Errorf("jobs: no handler for kind %q", job.Kind))
	} else {
		hctx, cancel := context.WithTimeout(context.WithValue(ctx, heldKey{}, hd), r.handlerTimeout(job))
		err = r.call(hctx, h, job, log)
		cancel()
	}
	switch {
	case hd.completed.Load():
		// Committed with the handler's change: the job is done whatever
		// the handler did after that.
		if err != nil {
			log.Warn("jobs: handler failed after completing its job", "err", err)
		}
		r.outcome(job.Kind, OutcomeDone)
	case errors.Is(err, ErrLeaseLost):
		log.Warn("jobs: lease lost before the outcome was recorded", "outcome", OutcomeDone, "err", err)
	default:
		r.record(ctx, job, worker, err, log)
	}
}

// handlerTimeout is how long the handler of a just-claimed job may run:
// until its lease ends, less a margin to record the outcome.
func (r *Runner) handlerTimeout(job store.Job) time.Duration {
	remaining := r.cfg.Lease
	if !job.LockedUntil.IsZero() {
		remaining = job.LockedUntil.Sub(r.cfg.Now())
	}
	return remaining - min(leaseMargin, remaining/2)
}

// call runs h, turning a panic into an error.
func (r *Runner) call(ctx context.Context, h HandlerFunc, job store.Job, log *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("jobs: handler panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("jobs: handler panicked: %v", p)
		}
	}()
	return h(ctx, job)
}

// record stores the outcome of one attempt.
func (r *Runner) record(ctx context.Context, job store.Job, worker string, err error, log *slog.Logger) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	maxAttempts := job.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}

	var outcome string
	var rerr error
	switch {
	case err == nil:
		outcome = OutcomeDone
		rerr = r.cfg.Store.CompleteJob(rctx, job.ID, worker)
	case IsPermanent(err) || job.Attempts >= maxAttempts:
		outcome = OutcomeDead
		rerr = r.cfg.Store.DeadJob(rctx, job.ID, worker, truncate(err.Error(), maxErrorText))
	default:
		outcome = OutcomeRetry
		wait := r.cfg.Backoff(job.Attempts)
		rerr = r.cfg.Store.RetryJob(rctx, job.ID, worker, r.cfg.Now().Add(wait), truncate(err.Error(), maxErrorText))
		log = log.With("retry_in", wait)
	}
	if rerr != nil {
		if errors.Is(rerr, store.ErrConflict) {
			log.Warn("jobs: lease lost before the outcome was recorded", "outcome", outcome, "err", rerr)
		} else {
			log.Error("jobs: record outcome", "outcome", outcome, "err", rerr)
		}
		return
	}
	switch outcome {
	case OutcomeRetry:
		log.Warn("jobs: attempt failed, will retry", "err", err)
	case OutcomeDead:
		log.Error("jobs: job is dead", "err", err, "max_attempts", maxAttempts)
	}
	r.outcome(job.Kind, outcome)
}

// outcome reports a recorded outcome to Config.OnOutcome.
func (r *Runner) outcome(kind, outcome string) {
	if r.cfg.OnOutcome != nil {
		r.cfg.OnOutcome(kind, outcome)
	}
}
