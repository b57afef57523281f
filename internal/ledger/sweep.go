// Package ledger keeps the ledger of calls (package inbound writes it) to
// its retention: a periodic job deletes, in small batches, the answered
// calls older than one retention and the rejected calls older than
// another.
//
// Nothing koobridge does reads old ledger rows: the answer to a duplicate
// call comes from its stored operation (the operations table, keyed by the
// idempotency key), replays are caught by the nonces table, redelivery
// reads tenant events, and usage and licenses have tables of their own.
// The ledger is for people: the console's call pages, support questions
// about what KooGallery sent and was answered. MinRetention keeps at least
// a day of it, so that a retry series and the previous run of KooGallery's
// twice-daily replay of saved debug cases stay in view.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
)

// KindSweep is the job kind of the retention sweep.
const KindSweep = "ledger.sweep"

// MinRetention is the shortest retention allowed, for answered and
// rejected calls alike: a day, so that KooGallery's retries of a call (three
// hours at most) and the previous of its twice-daily replays of saved debug
// cases can still be read in the console.
const MinRetention = 24 * time.Hour

// BatchSize is how many calls one delete statement removes at most.
const BatchSize = 1000

// Interval is how often the sweep runs.
const Interval = time.Hour

// enqueueRetry is the wait before Run tries again to enqueue a sweep job
// the store refused.
const enqueueRetry = 10 * time.Second

// batchPause is the pause between two batches, in which the database's
// other writers (SQLite has one at a time) take their turn.
const batchPause = 20 * time.Millisecond

// Store is what the sweep needs of the database.
type Store interface {
	DeleteCalls(ctx context.Context, kind store.CallKind, before time.Time, limit int) (int64, error)
	store.Txer
}

// Config configures a Sweeper.
type Config struct {
	// Store is the database. Required.
	Store Store
	// Jobs runs the sweep job; register Jobs() before it starts. Required.
	Jobs *jobs.Runner
	// Answered is how long answered calls are kept; zero keeps them for
	// ever. Otherwise at least MinRetention.
	Answered time.Duration
	// Rejected is how long rejected calls are kept (see store.CallKind);
	// zero means as long as Answered. Otherwise at least MinRetention.
	Rejected time.Duration
	// Registerer receives koobridge_ledger_swept_total; nil leaves it
	// unregistered.
	Registerer prometheus.Registerer
	// Logger receives one info line per sweep; nil means slog.Default.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Sweeper deletes the ledger's calls older than their retention.
type Sweeper struct {
	store     Store
	jobs      *jobs.Runner
	retention map[store.CallKind]time.Duration
	batch     int
	pause     time.Duration
	swept     *prometheus.CounterVec
	log       *slog.Logger
	now       func() time.Time
}

// CheckRetention refuses a retention that is negative or positive but
// below MinRetention; name names the setting in the error.
func CheckRetention(name string, d time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%s %s is negative (0 keeps the calls for ever)", name, d)
	case d > 0 && d < MinRetention:
		return fmt.Errorf("%s %s is below the floor of %s: KooGallery's retries and its twice-daily replays of saved debug cases must stay in the ledger (0 keeps the calls for ever)", name, d, MinRetention)
	}
	return nil
}

// New checks cfg and returns a Sweeper.
func New(cfg Config) (*Sweeper, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("ledger: no store")
	case cfg.Jobs == nil:
		return nil, errors.New("ledger: no job runner")
	}
	if err := CheckRetention("ledger: answered-call retention", cfg.Answered); err != nil {
		return nil, err
	}
	if err := CheckRetention("ledger: rejected-call retention", cfg.Rejected); err != nil {
		return nil, err
	}
	if cfg.Rejected == 0 {
		cfg.Rejected = cfg.Answered
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sweeper{
		store: cfg.Store, jobs: cfg.Jobs,
		retention: map[store.CallKind]time.Duration{store.CallsAnswered: cfg.Answered, store.CallsRejected: cfg.Rejected},
		batch:     BatchSize, pause: batchPause,
		swept: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koobridge_ledger_swept_total",
			Help: "Calls the retention sweep deleted from the ledger, by kind (answered, rejected).",
		}, []string{"kind"}),
		log: cfg.Logger, now: cfg.Now,
	}
	for kind := range s.retention {
		s.swept.WithLabelValues(string(kind)) // exported as 0 from the start
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.swept); err != nil {
			return nil, fmt.Errorf("ledger: register metrics: %w", err)
		}
	}
	return s, nil
}

// Enabled reports whether any retention is set; when none is, Run does
// nothing.
func (s *Sweeper) Enabled() bool {
	return s.retention[store.CallsAnswered] > 0 || s.retention[store.CallsRejected] > 0
}

// Jobs returns the handler of the sweep job, to register with the runner
// before it starts.
func (s *Sweeper) Jobs() map[string]jobs.HandlerFunc {
	return map[string]jobs.HandlerFunc{KindSweep: s.handleSweep}
}

// Run enqueues the sweep job at the start of every Interval until ctx is
// done, when a retention is set. The job's unique key is the interval's
// start, so replicas running Run at once sweep once.
func (s *Sweeper) Run(ctx context.Context) {
	if !s.Enabled() {
		return
	}
	jobs.Every(ctx, Interval, enqueueRetry, s.now, s.enqueue, func(start time.Time, err error) {
		s.log.WarnContext(ctx, "ledger: enqueue the retention sweep", "interval", start, "err", err)
	})
}

// enqueue enqueues the sweep job of the interval starting at start.
func (s *Sweeper) enqueue(ctx context.Context, start time.Time) error {
	var inserted bool
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		_, inserted, err = tx.EnqueueJob(ctx, store.Job{
			Kind: KindSweep, UniqueKey: KindSweep + ":" + strconv.FormatInt(start.UnixMilli(), 10),
			Payload: []byte("{}"), MaxAttempts: 3, RunAt: s.now().UTC(),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: enqueue sweep: %w", err)
	}
	if inserted {
		s.jobs.Kick()
	}
	return nil
}

// handleSweep is the sweep job: Sweep with the job's deadline. A sweep
// cut short by that deadline (a large backlog, the first time a retention
// is set) has committed its batches and is done: the next hour's job goes
// on, rather than this one failing until it is dead.
func (s *Sweeper) handleSweep(ctx context.Context, _ store.Job) error {
	_, err := s.Sweep(ctx)
	if err != nil && ctx.Err() != nil {
		s.log.InfoContext(ctx, "ledger sweep stopped at its deadline; the next sweep goes on", "err", err)
		return nil
	}
	return err
}

// Sweep deletes, kind by kind, the calls older than their retention,
// BatchSize at a time and oldest first, until none is left; it pauses
// between batches so that other writers are not kept waiting. It returns
// how many calls of each kind it deleted, and logs them.
func (s *Sweeper) Sweep(ctx context.Context) (map[store.CallKind]int64, error) {
	now := s.now()
	deleted := map[store.CallKind]int64{}
	var sweepErr error
	for _, kind := range []store.CallKind{store.CallsRejected, store.CallsAnswered} {
		keep := s.retention[kind]
		if keep <= 0 {
			continue
		}
		n, err := s.sweepKind(ctx, kind, now.Add(-keep))
		deleted[kind] = n
		if err != nil {
			sweepErr = errors.Join(sweepErr, err)
		}
	}
	s.log.InfoContext(ctx, "ledger swept",
		"answered", deleted[store.CallsAnswered], "rejected", deleted[store.CallsRejected],
		"answered_retention", s.retention[store.CallsAnswered].String(),
		"rejected_retention", s.retention[store.CallsRejected].String())
	return deleted, sweepErr
}

// sweepKind deletes the calls of kind created before cutoff, batch by
// batch, and counts them.
func (s *Sweeper) sweepKind(ctx context.Context, kind store.CallKind, cutoff time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.store.DeleteCalls(ctx, kind, cutoff, s.batch)
		total += n
		s.swept.WithLabelValues(string(kind)).Add(float64(n))
		if err != nil {
			return total, fmt.Errorf("ledger: sweep %s calls before %s: %w", kind, cutoff.UTC().Format(time.RFC3339), err)
		}
		if n < int64(s.batch) {
			return total, nil
		}
		t := time.NewTimer(s.pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return total, fmt.Errorf("ledger: sweep %s calls: %w", kind, ctx.Err())
		case <-t.C:
		}
	}
}
