package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/koobridge/koobridge/internal/store"
)

// ErrLeaseLost is CompleteIn's error when the handler's worker no longer
// holds its job: its lease expired and another worker took the job over,
// or the job is gone. It matches neither store.ErrConflict, so a caller
// that retries on conflicts (a version check) does not try again, nor
// store.ErrNotFound, so a caller that reads "not found" as its own row
// missing (an instance) is not misled: the transaction rolls back, the
// handler returns the error and the runner records nothing (the job
// belongs to the other worker, or to nobody).
var ErrLeaseLost = errors.New("jobs: lease lost")

// held is what Execute tells a handler's context about the job it runs.
type held struct {
	id        int64
	worker    string
	completed atomic.Bool // a Tx whose committed attempt completed the job
}

type heldKey struct{}

// attempt is one run of a Tx's function: whether CompleteIn completed
// the job in it. Only the run that committed counts.
type attempt struct {
	held      *held
	completed bool
}

type attemptKey struct{}

// Tx runs fn in one transaction of txer, as txer.Tx does, for a handler
// that may complete its job in it (CompleteIn, with the ctx Tx gives fn).
// When the transaction commits, and the run of fn that committed called
// CompleteIn, the job is done: the runner reports it so without completing
// it again. txer may run fn more than once (a retry the database asked
// for), and the handler may run Tx more than once (a version check that
// failed): a completion counts only when it was made in the run of fn that
// committed, never because an earlier run, rolled back, made one. Outside
// a handler run by a Runner, Tx is txer.Tx.
func Tx(ctx context.Context, txer store.Txer, fn func(ctx context.Context, tx store.Tx) error) error {
	h, _ := ctx.Value(heldKey{}).(*held)
	if h == nil {
		return txer.Tx(ctx, fn)
	}
	var last *attempt
	err := txer.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		last = &attempt{held: h}
		return fn(context.WithValue(ctx, attemptKey{}, last), tx)
	})
	if err == nil && last != nil && last.completed {
		h.completed.Store(true)
	}
	return err
}

// CompleteIn marks the job of the handler that ctx was given done in tx,
// the transaction of the handler's last change, so that the change and
// the completion commit together instead of one after the other. It must
// be called in a function run by Tx, with the ctx and tx Tx gave it: Tx
// alone knows whether the transaction, and this run of the function,
// committed. A transaction rolled back after CompleteIn (the function
// failed, or decided to change nothing) completes nothing, and the runner
// completes the job itself as usual. CompleteIn fails with ErrLeaseLost,
// and the transaction must roll back, when the worker no longer holds the
// job. Called outside a Tx it fails permanently (the job is dead-lettered,
// as the mistake would repeat on every attempt). Outside a handler run by
// a Runner it does nothing.
func CompleteIn(ctx context.Context, tx store.JobTx) error {
	h, _ := ctx.Value(heldKey{}).(*held)
	if h == nil {
		return nil
	}
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	if a == nil || a.held != h {
		return Permanent(fmt.Errorf("jobs: complete job %d: CompleteIn called outside jobs.Tx", h.id))
	}
	err := tx.CompleteJob(ctx, h.id, h.worker)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		// %v: the store's error must not match for the caller.
		return fmt.Errorf("%w: complete job %d: %v", ErrLeaseLost, h.id, err)
	}
	if err != nil {
		return fmt.Errorf("jobs: complete job %d: %w", h.id, err)
	}
	a.completed = true
	return nil
}
