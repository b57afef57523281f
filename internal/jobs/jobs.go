// Package jobs runs the durable job queue: workers claim due jobs from the
// store, run the handler registered for their kind and record the outcome
// (done, retry later with backoff, or dead). The queue itself, with its
// exclusive claims and leases, lives in store.Store, so several Runners in
// one or many processes can share it.
//
// A handler runs with a deadline of its lease minus a safety margin, so
// it finishes before another worker may take the job over. Handlers must
// still be idempotent: a worker that dies after the handler's effect but
// before recording the outcome leaves the job to be run again.
//
// Fewer commits: a handler may complete its job in the transaction of its
// last change (CompleteIn, in a Tx) rather than in a commit of the
// runner's own after it, and a call that runs its own job within its
// budget may insert it already claimed (Runner.Hold) rather than commit a
// claim after the insert. Both keep the lease check: a worker that lost
// its job to another never completes it.
package jobs

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// HandlerFunc does the work of one job. A nil error completes the job; an
// error wrapped with Permanent kills it; any other error retries it later.
type HandlerFunc func(ctx context.Context, job store.Job) error

// ErrPermanent marks errors that retrying will not fix: the job is marked
// dead at once. A handler whose own errors carry another permanent marker
// (provision.ErrPermanent) translates it with Permanent.
var ErrPermanent = errors.New("jobs: permanent failure")

// Permanent wraps err so the job is not retried: errors.Is(err,
// ErrPermanent) holds and err stays reachable with errors.Is/As. Permanent
// of nil is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// IsPermanent reports whether err asks not to be retried.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// Defaults of Config.
const (
	DefaultWorkers     = 4
	DefaultLease       = 2 * time.Minute
	DefaultPoll        = time.Second
	DefaultMaxAttempts = 25 // for jobs stored with MaxAttempts <= 0
)

// Outcomes passed to Config.OnOutcome.
const (
	OutcomeDone  = "done"
	OutcomeRetry = "retry"
	OutcomeDead  = "dead"
)

// leaseMargin is taken off the lease for the handler's deadline, so the
// outcome is recorded while the lease still holds.
const leaseMargin = 5 * time.Second

// recordTimeout bounds writing an outcome; it is not tied to the caller's
// context so a shutdown does not lose the result of finished work.
const recordTimeout = 30 * time.Second

// maxErrorText bounds the error text kept in the job row.
const maxErrorText = 2000

// Config configures a Runner.
type Config struct {
	// Store holds the queue.
	Store store.Jobs
	// Handlers maps a Job.Kind to its handler; NewRunner copies it. More
	// kinds are added with Register before Run. Workers claim only the
	// kinds that have a handler.
	Handlers map[string]HandlerFunc
	// Workers is how many jobs run at once. Default DefaultWorkers.
	Workers int
	// Lease is how long a claimed job is reserved for its worker; the
	// handler's context has a deadline of Lease - 5s (Lease/2 for leases
	// of 10s or less). Default DefaultLease.
	Lease time.Duration
	// Poll is how often idle workers look for due jobs. Default
	// DefaultPoll.
	Poll time.Duration
	// Backoff returns the wait before the next try after a failed
	// attempt (1 for the first). Default DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// WorkerID names this Runner in job locks. Default hostname:pid:random.
	// Its workers lock jobs as WorkerID/1, WorkerID/2, …; jobs claimed
	// elsewhere with WorkerID itself can be handed to Execute.
	WorkerID string
	// Logger receives failures. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OnOutcome, when set, is called after each recorded outcome with the
	// job's kind and OutcomeDone, OutcomeRetry or OutcomeDead (metrics).
	// It is not called when the outcome could not be recorded (lease lost,
	// database unavailable); the job then runs again after its lease.
	OnOutcome func(kind, outcome string)
}

// DefaultBackoff waits 1s·2^(attempt-1), at most 10 minutes, with ±20%
// jitter so failed jobs do not come back in lockstep.
func DefaultBackoff(attempt int) time.Duration {
	const maxWait = 10 * time.Minute
	if attempt < 1 {
		attempt = 1
	}
	d := maxWait
	if attempt <= 20 { // 2^19 s is far above the cap
		d = min(time.Second<<(attempt-1), maxWait)
	}
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

// defaultWorkerID returns hostname:pid:random.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [4]byte
	_, _ = crand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// truncate shortens s to at most n bytes without splitting a UTF-8
// sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
