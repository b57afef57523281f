// Package sqlite is the SQLite dialect of package store: one database type,
// Store, that implements every entity interface there (store.Store and, in
// transactions, store.Tx), on the pure-Go driver modernc.org/sqlite, so
// koobridge stays one static binary.
//
// The database runs in WAL mode (readers never block the writer) with
// synchronous=NORMAL, foreign keys on and a busy timeout (5 s by default).
// SQLite allows one writer at a time: every transaction starts with BEGIN
// IMMEDIATE (the driver's _txlock=immediate), so a second writer waits on
// the busy timeout at the start instead of failing with SQLITE_BUSY when it
// commits. The writes of this process queue for one writer goroutine,
// which runs those waiting at the same time in one transaction, each in a
// savepoint, and commits once (group commit: writer.go); none is answered
// before that commit. Writers in other processes sharing the file queue on
// the busy timeout. Statements are prepared once and kept (stmts.go).
// A writer that still cannot get the database gets an error wrapping
// store.ErrUnavailable, as do I/O failures.
//
// Every operation of the Store (a whole Tx included) is bounded by the
// operation timeout (WithOpTimeout, store.DefaultOpTimeout by default):
// when it runs out before the caller's deadline, the operation fails with
// an error wrapping store.ErrUnavailable.
//
// Storage conventions: times are INTEGER Unix milliseconds in UTC and come
// back as UTC time.Time values with millisecond precision; the zero time is
// stored as 0 (so the instant 1970-01-01T00:00:00Z reads back as the zero
// time). Durations are INTEGER milliseconds. The schema lives in package
// migrations and is migrated with goose when the store is opened.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/koobridge/koobridge/internal/store"
)

// maxOpenConns bounds the pool. WAL lets readers run in parallel with the
// one writer; more connections than this only add memory.
const maxOpenConns = 8

// txAttempts is how many times Tx runs fn when SQLite reports the database
// busy or locked.
const txAttempts = 4

// Store is an SQLite database holding koobridge's state. It implements
// store.Store and is safe for concurrent use by many goroutines; several
// processes may open the same file.
type Store struct {
	db *pool
	// queue feeds this process's writes to the writer goroutine, which
	// runs them in shared transactions (writer.go): SQLite allows one
	// writer, and queueing here is cheaper and fairer than every writer
	// polling in the busy handler.
	queue      chan *writeReq
	closed     chan struct{} // closed by Close: the writer stops
	writerDone chan struct{} // closed when the writer has stopped
	batches    atomic.Int64  // transactions the writer committed or rolled back
	// busy is the busy timeout; a write waits at most this long for the
	// writer, as it would for another process's lock.
	busy time.Duration
	// opTimeout bounds every operation (see bound).
	opTimeout time.Duration
	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the SQLite database named by dsn and
// migrates its schema to the latest version. dsn is "sqlite:path",
// "sqlite://path" ("sqlite:///abs/path"), "file:path?…" or a bare path, with
// optional driver parameters such as _busy_timeout (milliseconds).
// In-memory databases are not supported: every pooled connection would see
// its own empty database; tests use a temporary file.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := newOptions(opts)
	driverName, busy, err := driverDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", driverName)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	s := &Store{
		db:         &pool{DB: db, stmts: newStmtCache(db)},
		queue:      make(chan *writeReq, queueLen),
		closed:     make(chan struct{}),
		writerDone: make(chan struct{}),
		busy:       busy,
		opTimeout:  o.opTimeout,
	}
	if err := firstConnect(ctx, db, busy); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open database: %w", mapErr(err))
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// firstConnect opens the first connection, which switches a new file to
// WAL mode. Two processes doing that at once can get SQLITE_BUSY at once:
// SQLite does not wait in its busy handler where waiting could deadlock.
// The loser tries again, for at most the busy timeout.
func firstConnect(ctx context.Context, db *sql.DB, busy time.Duration) error {
	deadline := time.Now().Add(busy)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Tx runs fn in a transaction and commits if fn returns nil. Writes that
// wait for the writer at the same time share one transaction (group
// commit, see writer.go), each in its own savepoint; Tx returns after the
// commit. When SQLite reports the database busy or locked, or the shared
// transaction is lost, fn's part is rolled back and fn runs again, a few
// times, before Tx gives up with store.ErrUnavailable. A panic in fn rolls
// fn's part back and is re-raised.
//
// fn must write through tx only: a write through the Store itself would
// wait for the writer fn is running in, and fail with
// store.ErrUnavailable after the busy timeout. Reads through the Store see
// the last committed state; reads through tx also see what earlier writes
// of the same batch wrote, which commit with fn or not at all.
//
// The operation timeout bounds the whole of Tx, every attempt and fn
// included; fn gets a context with that deadline.
func (s *Store) Tx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.run(ctx, false, func(ctx context.Context, t *cachedTx) error {
		return fn(ctx, &tx{reader: reader{q: t}, tx: t})
	})
}

// run is write with retries: when SQLite reports the database busy or
// locked, or the batch was lost, fn runs again, up to txAttempts times.
// single marks fn as one statement (see writeReq).
func (s *Store) run(ctx context.Context, single bool, fn func(ctx context.Context, t *cachedTx) error) (err error) {
	for attempt := 1; attempt <= txAttempts; attempt++ {
		err = s.write(ctx, single, fn)
		if err == nil || !(isBusy(err) || errors.Is(err, errBatchAborted)) {
			return err
		}
		if ctx.Err() != nil {
			break
		}
		if attempt < txAttempts {
			t := time.NewTimer(time.Duration(attempt) * 10 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("sqlite: tx: %w", ctx.Err())
			case <-t.C:
			}
		}
	}
	if errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// exec runs one writing statement, in the writer's batch.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.run(ctx, true, func(ctx context.Context, t *cachedTx) error {
		var err error
		res, err = t.ExecContext(ctx, query, args...)
		return mapErr(err)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Ping checks that the database file can be read.
func (s *Store) Ping(ctx context.Context) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: ping: %w", mapErr(err))
	}
	return nil
}

// Close checkpoints the write-ahead log into the database file, so the
// file is complete on its own, and closes every connection. Calling Close
// again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		<-s.writerDone
		s.db.stmts.close()
		ctx, cancel := context.WithTimeout(context.Background(), s.busy)
		defer cancel()
		// Another process may still be using the file; then the
		// checkpoint is partial, which is harmless.
		_, cpErr := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", err)
			return
		}
		if cpErr != nil && !isBusy(cpErr) {
			s.closeErr = fmt.Errorf("sqlite: checkpoint: %w", mapErr(cpErr))
		}
	})
	return s.closeErr
}

// sqliteCode returns SQLite's primary result code for err, or 0.
func sqliteCode(err error) int {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code() & 0xff
	}
	return 0
}

// isBusy reports whether err says another connection holds a lock.
func isBusy(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// mapErr wraps failures to reach the database (busy or locked past the
// timeout, I/O errors, a full disk, a file that cannot be opened) with
// store.ErrUnavailable, and leaves other errors as they are.
func mapErr(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	switch sqliteCode(err) {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY:
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	if errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}
