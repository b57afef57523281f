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
	called    atomic.Bool // CompleteIn succeeded in some transaction
	completed atomic.Bool // and the handler said that transaction committed
}

type heldKey struct{}

// CompleteIn marks the job of the handler that ctx was given done in tx,
// the transaction of the handler's last change, so that the change and
// the completion commit together instead of one after the other. When
// that transaction has committed the handler calls Completed; the runner
// then reports the job done without completing it again. A transaction
// rolled back after CompleteIn (the handler's function failed, or decided
// to change nothing) completes nothing, and without Completed the runner
// completes the job itself as usual. CompleteIn fails with ErrLeaseLost,
// and the transaction must roll back, when the worker no longer holds the
// job. Outside a handler run by a Runner it does nothing.
func CompleteIn(ctx context.Context, tx store.JobTx) error {
	h, _ := ctx.Value(heldKey{}).(*held)
	if h == nil {
		return nil
	}
	err := tx.CompleteJob(ctx, h.id, h.worker)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		// %v: the store's error must not match for the caller.
		return fmt.Errorf("%w: complete job %d: %v", ErrLeaseLost, h.id, err)
	}
	if err != nil {
		return fmt.Errorf("jobs: complete job %d: %w", h.id, err)
	}
	h.called.Store(true)
	return nil
}

// Completed tells the runner that the transaction in which the handler
// called CompleteIn has committed: the job is done. Call it only then;
// it does nothing when CompleteIn did not succeed, or outside a handler
// run by a Runner.
func Completed(ctx context.Context) {
	if h, _ := ctx.Value(heldKey{}).(*held); h != nil && h.called.Load() {
		h.completed.Store(true)
	}
}
