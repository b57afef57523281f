package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/koobridge/koobridge/internal/store"
)

// Group commit. SQLite has one writer, so this process's writes queue for
// it anyway; instead of one transaction each, the writer goroutine runs the
// writes waiting in the queue in one transaction, each in a savepoint of
// its own, and commits once. Every write is answered only after that
// commit: answered still means committed. A write whose function fails is
// rolled back to its savepoint and leaves the others alone.
//
// Each function runs in the writer goroutine while its caller waits, so
// its context, its errors and its panics are the caller's as before; the
// only difference it can see is that its reads through the transaction
// also see the writes of earlier members of the batch, which commit with
// it or not at all.

const (
	// maxBatch bounds the writes of one transaction, and so how long the
	// first of them waits for the commit.
	maxBatch = 32
	// maxBatchTime stops a batch taking more members once its members
	// after the first have run this long.
	maxBatchTime = 2 * time.Millisecond
	// queueLen is how many writes may wait for the writer.
	queueLen = 256
)

// errBatchAborted is what a write whose own function succeeded learns when
// the transaction it shared was lost (another member's failure ended it,
// or the commit failed): nothing of it was committed, and it may run again.
var errBatchAborted = errors.New("sqlite: group commit failed; retrying")

// write states.
const (
	queued int32 = iota
	taken
	abandoned
)

// writeReq is one write waiting for, or in, a batch.
type writeReq struct {
	ctx context.Context
	fn  func(ctx context.Context, t *cachedTx) error
	// single marks fn as one statement: SQLite undoes a failed statement
	// by itself, so it needs no savepoint of its own.
	single bool
	state  atomic.Int32
	// Set by the writer goroutine before done is closed.
	err      error
	panicked bool
	panicVal any
	done     chan struct{}
}

// take marks r as run by the writer; false when its caller gave up.
func (r *writeReq) take() bool { return r.state.CompareAndSwap(queued, taken) }

// abandon marks r as given up by its caller; false when the writer has it.
func (r *writeReq) abandon() bool { return r.state.CompareAndSwap(queued, abandoned) }

// write runs fn in a transaction shared with other writes waiting at the
// same time (see the top of this file) and returns after the commit: nil
// when fn returned nil and the transaction committed, fn's own error (its
// part rolled back), or an error of the store. A panic in fn is re-raised
// here, with fn's part rolled back.
//
// A write waits for the writer at most the busy timeout, as it would for
// another process's lock, then fails with store.ErrUnavailable. Once the
// writer has begun fn, write waits for the commit whatever ctx does: the
// caller must know whether fn's writes stand.
func (s *Store) write(ctx context.Context, single bool, fn func(ctx context.Context, t *cachedTx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, single: single, done: make(chan struct{})}
	busy := time.NewTimer(s.busy)
	defer busy.Stop()
	select {
	case s.queue <- r:
	case <-ctx.Done():
		return fmt.Errorf("sqlite: wait for writer: %w", ctx.Err())
	case <-busy.C:
		return fmt.Errorf("sqlite: wait for writer: %w: database busy for %s", store.ErrUnavailable, s.busy)
	case <-s.closed:
		return fmt.Errorf("sqlite: write: %w: store closed", store.ErrUnavailable)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.abandon() {
			return fmt.Errorf("sqlite: wait for writer: %w", ctx.Err())
		}
		<-r.done
	case <-busy.C:
		if r.abandon() {
			return fmt.Errorf("sqlite: wait for writer: %w: database busy for %s", store.ErrUnavailable, s.busy)
		}
		<-r.done
	case <-s.closed:
		if r.abandon() {
			return fmt.Errorf("sqlite: write: %w: store closed", store.ErrUnavailable)
		}
		<-r.done
	}
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

// writer runs the queued writes in batches until the store closes.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		var first *writeReq
		select {
		case first = <-s.queue:
		case <-s.closed:
			s.drain()
			return
		}
		if !first.take() {
			continue
		}
		batch = append(batch[:0], first)
		s.runBatch(batch)
		clear(batch)
	}
}

// drain fails the writes still queued when the store closes.
func (s *Store) drain() {
	for {
		select {
		case r := <-s.queue:
			if r.take() {
				r.err = fmt.Errorf("sqlite: write: %w: store closed", store.ErrUnavailable)
				close(r.done)
			}
		default:
			return
		}
	}
}

// runBatch begins a transaction, runs batch[0] and then as many queued
// writes as arrive while the batch lasts, commits, and answers them all.
func (s *Store) runBatch(batch []*writeReq) {
	// BEGIN IMMEDIATE waits for another process's lock for at most the
	// busy timeout, or until the first member's context ends. Once begun,
	// the transaction must not end with that context (database/sql rolls
	// a transaction back when its context is cancelled): cancelling one
	// member must not roll back the others.
	txCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := context.AfterFunc(batch[0].ctx, cancel)
	sqlTx, err := s.db.BeginTx(txCtx, nil)
	if !stop() {
		// The first member's context ended while BEGIN waited.
		if err == nil {
			_ = sqlTx.Rollback()
		}
		err = batch[0].ctx.Err()
	}
	if err != nil {
		batch[0].err = fmt.Errorf("sqlite: begin: %w", mapErr(err))
		close(batch[0].done)
		return
	}
	t := &cachedTx{Tx: sqlTx, stmts: s.db.stmts}
	var loser *writeReq // the member whose failure lost the transaction
	if s.runMember(t, batch[0]) {
		loser = batch[0]
	}
	// Counted from here: the writes that queued while the first ran take
	// their turn in this batch however long it took.
	start := time.Now()
	for loser == nil && len(batch) < maxBatch && time.Since(start) < maxBatchTime {
		var r *writeReq
		select {
		case r = <-s.queue:
		default:
		}
		if r == nil {
			break
		}
		if !r.take() {
			continue
		}
		batch = append(batch, r)
		if s.runMember(t, r) {
			loser = r
		}
	}
	var cause error
	if loser != nil {
		_ = sqlTx.Rollback()
		cause = errBatchAborted
	} else if err := sqlTx.Commit(); err != nil {
		cause = fmt.Errorf("%w: commit: %w", errBatchAborted, mapErr(err))
	}
	s.batches.Add(1)
	for _, r := range batch {
		// When the transaction is lost every member runs again, whatever
		// its function said: that may have rested on another member's
		// writes, now undone. The member that lost it keeps its error.
		if cause != nil && r != loser && !r.panicked {
			r.err = cause
		}
		close(r.done)
	}
}

// runMember runs r's function in a savepoint of t. It reports whether the
// transaction is lost (SQLite rolled it back, or a savepoint cannot be
// set or undone): then no member of the batch is committed.
//
// A member whose context ended while it ran loses the transaction,
// whatever its function returned: the driver interrupts a statement
// when its context ends, SQLite then rolls back the whole transaction
// when the statement was writing, and the driver reports only the
// context's error. The members after it would otherwise run outside any
// transaction and commit on their own.
//
// A single statement runs without a savepoint: SQLite undoes a statement
// that fails on a constraint and leaves the transaction as it was, and an
// error of Go's (no rows to scan) touched nothing. Any other error of
// SQLite's may have ended the transaction (a full disk, an I/O error), so
// it counts as lost.
func (s *Store) runMember(t *cachedTx, r *writeReq) (lost bool) {
	if err := r.ctx.Err(); err != nil {
		r.err = fmt.Errorf("sqlite: write: %w", err)
		return false
	}
	bg := context.Background()
	if r.single {
		r.err = s.call(t, r)
		if r.ctx.Err() != nil {
			// Its statement may have been interrupted, or have run before the
			// context ended: either way the batch goes, and this write with
			// it, so it must not report success.
			if r.err == nil && !r.panicked {
				r.err = fmt.Errorf("sqlite: write: %w", r.ctx.Err())
			}
			return true
		}
		code := sqliteCode(r.err)
		return r.panicked || (code != 0 && code != sqlite3.SQLITE_CONSTRAINT)
	}
	if _, err := t.ExecContext(bg, `SAVEPOINT member`); err != nil {
		r.err = fmt.Errorf("sqlite: savepoint: %w", mapErr(err))
		return true
	}
	err := s.call(t, r)
	if r.ctx.Err() != nil {
		if err == nil {
			err = fmt.Errorf("sqlite: write: %w", r.ctx.Err())
		}
		r.err = err
		return true
	}
	if err == nil && !r.panicked {
		if _, err := t.ExecContext(bg, `RELEASE member`); err != nil {
			r.err = fmt.Errorf("sqlite: release savepoint: %w", mapErr(err))
			return true
		}
		return false
	}
	r.err = err
	if _, err := t.ExecContext(bg, `ROLLBACK TO member`); err != nil {
		return true
	}
	if _, err := t.ExecContext(bg, `RELEASE member`); err != nil {
		return true
	}
	return false
}

// call runs r's function, catching a panic for its caller.
func (s *Store) call(t *cachedTx, r *writeReq) (err error) {
	defer func() {
		if v := recover(); v != nil {
			r.panicked, r.panicVal = true, v
		}
	}()
	return r.fn(r.ctx, t)
}
