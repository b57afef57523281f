// Package postgres is the PostgreSQL dialect of package store: one
// database type, Store, that implements every entity interface there
// (store.Store and, in transactions, store.Tx), on pgx/v5 and its
// connection pool (pgxpool). Several koobridge replicas share one database
// through it.
//
// It has the semantics of package sqlite, method for method (the storetest
// suite runs unchanged against both). What differs is how concurrency is
// achieved:
//
//   - Store.Tx runs fn in a READ COMMITTED transaction. Reads of instances,
//     operations and order notifications inside it lock the row they
//     return (SELECT … FOR UPDATE), so a read-modify-write in one
//     transaction behaves as under SQLite's single writer: a concurrent
//     transaction on the same row waits for it instead of failing with
//     store.ErrConflict. Tx runs fn
//     again on a serialisation failure (40001), a deadlock (40P01) and a
//     lost connection before COMMIT was sent — never when the COMMIT
//     itself may have reached the server.
//   - ClaimJob is one UPDATE of the row picked by SELECT … FOR UPDATE SKIP
//     LOCKED, so workers of every replica claim different jobs without
//     waiting for each other.
//   - RememberNonce is one INSERT … ON CONFLICT DO UPDATE … WHERE expired.
//     Expiry is compared with this process's wall clock (time.Now), the
//     clock the signature window is checked against; DeleteExpiredNonces
//     uses the time it is given. The database clock is not used, so
//     replicas must keep their clocks synchronised (NTP), as the signature
//     window already requires.
//
// Failures to reach the database — connection refused or reset, no pooled
// connection free within the acquire timeout, SQLSTATE class 08, 57P01,
// 57P02, 57P03 (the server shutting down, crashed or starting up) and 53300
// (too many connections) — wrap store.ErrUnavailable: the server answers
// 000005 and KooGallery retries. The pool replaces broken connections by
// itself, so the store recovers without a restart once PostgreSQL is back.
//
// Every operation of the Store (a whole Tx included) is bounded by the
// operation timeout (WithOpTimeout, DefaultOpTimeout by default): a
// database that stops answering without closing the connection fails the
// operation with store.ErrUnavailable when it runs out, rather than when
// TCP gives up, minutes later.
//
// Storage conventions: times are timestamptz, NULL for the zero time, kept
// with millisecond precision (the precision of the SQLite store) and read
// back in UTC; durations are bigint milliseconds. The schema lives in
// package migrations and is migrated with goose when the store is opened,
// under a PostgreSQL advisory lock, so replicas starting together migrate
// once. Text that PostgreSQL cannot store (NUL bytes, invalid UTF-8) is
// stored with those bytes replaced by U+FFFD, where SQLite would keep them.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/koobridge/koobridge/internal/store"
)

// txAttempts is how many times Tx runs fn when PostgreSQL asks for a
// retry or the connection is lost before COMMIT.
const txAttempts = 5

// rollbackTimeout bounds a rollback, which runs even when the caller's
// context has ended; a connection that does not answer in time is closed.
const rollbackTimeout = 5 * time.Second

// Store is a PostgreSQL database holding koobridge's state. It implements
// store.Store and is safe for concurrent use by many goroutines and by
// many processes sharing the database.
type Store struct {
	pool *pgxpool.Pool
	// q runs statements outside transactions on pooled connections.
	q              querier
	acquireTimeout time.Duration
	// opTimeout bounds every operation (see bound).
	opTimeout time.Duration
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the PostgreSQL database named by dsn and migrates its
// schema to the latest version. dsn is a URL ("postgres://user@host:5432/db?
// sslmode=require", "postgresql://…") or a keyword/value string ("host=…
// dbname=…"), with pgx's parameters: pool_max_conns and the other pool_*
// settings, search_path to keep koobridge's tables in a schema of their own
// (the schema must exist), connect_timeout (default 5 s here). The DSN's
// pool_* parameters win over the Options, which set defaults.
//
// Open fails with an error wrapping store.ErrUnavailable when the database
// cannot be reached. Errors never contain the DSN's password.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, o, err := poolConfig(dsn, opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", mapErr(ctx, err))
	}
	s := &Store{
		pool:           pool,
		acquireTimeout: o.acquireTimeout,
		opTimeout:      o.opTimeout,
	}
	s.q = poolQuerier{s}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// acquire takes a connection from the pool, waiting at most the acquire
// timeout: a caller that cannot get one in that time is told the database
// is unavailable rather than queueing without end.
func (s *Store) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, s.acquireTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(actx)
	if err == nil {
		return conn, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("postgres: acquire connection: %w", ctx.Err())
	}
	if actx.Err() != nil {
		return nil, fmt.Errorf("postgres: acquire connection: %w: no connection within %s (%w)", store.ErrUnavailable, s.acquireTimeout, err)
	}
	return nil, fmt.Errorf("postgres: acquire connection: %w", mapErr(ctx, err))
}

// Tx runs fn in one READ COMMITTED transaction and commits if fn returns
// nil. It runs fn again, a few times, when PostgreSQL reports a
// serialisation failure or a deadlock, or when the connection was lost
// before COMMIT was sent (nothing can have been committed then); a lost
// connection during COMMIT is reported as store.ErrUnavailable without a
// retry, since the transaction may have committed. A panic in fn rolls the
// transaction back and is re-raised.
//
// fn must write through tx only. Reads through the Store see the last
// committed state.
//
// The operation timeout bounds the whole of Tx, every attempt and fn
// included; fn gets a context with that deadline.
func (s *Store) Tx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	for attempt := 1; attempt <= txAttempts; attempt++ {
		var retry bool
		retry, err = s.tryTx(ctx, fn)
		if err == nil || !retry {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("postgres: tx: %w", ctx.Err())
		}
		if attempt < txAttempts {
			t := time.NewTimer(time.Duration(attempt*attempt) * 10 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("postgres: tx: %w", ctx.Err())
			case <-t.C:
			}
		}
	}
	if errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// tryTx runs fn once and reports whether a failure may be retried.
func (s *Store) tryTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) (retry bool, err error) {
	conn, err := s.acquire(ctx)
	if err != nil {
		// No connection: the pool tried to connect already (or waited
		// the acquire timeout), so trying again at once would mostly
		// make the caller wait longer for the same answer.
		return false, err
	}
	defer conn.Release()
	pgTx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		err = mapErr(ctx, err)
		return isConnLoss(err) || isRetryable(err), fmt.Errorf("postgres: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			// The error of fn (or the panic) matters, not the rollback's.
			// A rollback on a lost connection fails and closes it; the
			// pool then discards it.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			_ = pgTx.Rollback(rctx)
			cancel()
		}
	}()
	if err := fn(ctx, &tx{reader: reader{q: pgTx, lock: true}, tx: pgTx}); err != nil {
		// fn's error may come from a statement: on a serialisation
		// failure, a deadlock or a lost connection the transaction did
		// not commit and can run again. fn's own errors are returned.
		return isRetryable(err) || (isConnLoss(err) && ctx.Err() == nil), err
	}
	if err := pgTx.Commit(ctx); err != nil {
		committed = true // Commit ends the transaction whatever happens.
		// A serialisation failure at COMMIT rolls back. A lost
		// connection is retried only when COMMIT was never sent.
		return isRetryable(err) || pgconn.SafeToRetry(err), fmt.Errorf("postgres: commit: %w", mapErr(ctx, err))
	}
	committed = true
	return false, nil
}

// Ping checks that the database answers a query on a pooled connection.
func (s *Store) Ping(ctx context.Context) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	conn, err := s.acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	defer conn.Release()
	var one int
	if err := conn.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("postgres: ping: %w", mapErr(ctx, err))
	}
	return nil
}

// Close closes every pooled connection, waiting for those in use to be
// released. Calling Close again does nothing and returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// Stat returns the pool's statistics (for metrics and tests).
func (s *Store) Stat() *pgxpool.Stat { return s.pool.Stat() }
