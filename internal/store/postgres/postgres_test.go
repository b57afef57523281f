package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		dsn, schema := newSchema(t)
		return openStore(t, dsn, schema)
	})
}

// migratedVersions counts goose's applied versions and their rows in
// schema: one row per version when every migration ran once.
func migratedVersions(t *testing.T, s *Store) (rows, versions int) {
	t.Helper()
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version_id)
		FROM goose_db_version WHERE version_id > 0`).Scan(&rows, &versions); err != nil {
		t.Fatalf("read goose_db_version: %v", err)
	}
	return rows, versions
}

func TestReopen(t *testing.T) {
	dsn, schema := newSchema(t)
	ctx := t.Context()
	s, err := Open(ctx, dsn, WithSearchPath(schema))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertInstance(ctx, store.Instance{ID: "i1", OrderID: "O1", OrderLineID: "O1-1", Status: store.StatusActive})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RememberNonce(ctx, "n1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// Open again, twice: migrations are applied once and kept.
	for i := range 2 {
		s := openStore(t, dsn, schema)
		in, err := s.Instance(ctx, "i1")
		if err != nil || in.OrderID != "O1" {
			t.Fatalf("reopen %d: Instance = %+v, %v", i, in, err)
		}
		if err := s.RememberNonce(ctx, "n1", time.Now().Add(time.Hour)); !errors.Is(err, store.ErrReplayedNonce) {
			t.Fatalf("reopen %d: replayed nonce accepted after restart: %v", i, err)
		}
		if rows, versions := migratedVersions(t, s); rows != schemaVersion || versions != schemaVersion {
			t.Errorf("reopen %d: goose_db_version has %d rows for %d versions, want %d and %d", i, rows, versions, schemaVersion, schemaVersion)
		}
		s.Close()
	}
}

// TestConcurrentOpen opens several pools on a fresh schema at once, as
// replicas starting together do: the schema is migrated exactly once and
// every pool works.
func TestConcurrentOpen(t *testing.T) {
	dsn, schema := newSchema(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	storetest.Race(n, func(i int) {
		stores[i], errs[i] = Open(context.Background(), dsn, WithSearchPath(schema), WithMaxConns(2))
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	for i, s := range stores {
		if _, err := s.InsertCall(t.Context(), store.Call{Activity: "open", RequestID: strconv.Itoa(i)}); err != nil {
			t.Errorf("InsertCall through pool %d: %v", i, err)
		}
	}
	if rows, versions := migratedVersions(t, stores[0]); rows != schemaVersion || versions != schemaVersion {
		t.Errorf("goose_db_version has %d rows for %d versions, want %d and %d", rows, versions, schemaVersion, schemaVersion)
	}
}

// TestTwoPools races two pools on one schema, as two replicas would: one
// order line, one nonce, read-modify-write increments of one row, and 20
// workers claiming 100 jobs.
func TestTwoPools(t *testing.T) {
	dsn, schema := newSchema(t)
	storetest.RunShared(t, openStore(t, dsn, schema, WithMaxConns(8)), openStore(t, dsn, schema, WithMaxConns(8)))
}

// TestDeadlockRetried makes two transactions lock two rows in opposite
// orders: PostgreSQL aborts one with a deadlock (40P01), Tx runs it again,
// and both succeed.
func TestDeadlockRetried(t *testing.T) {
	dsn, schema := newSchema(t)
	s := openStore(t, dsn, schema)
	ctx := t.Context()
	err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, id := range []string{"a", "b"} {
			if _, err := tx.InsertInstance(ctx, store.Instance{ID: id, OrderID: "D", OrderLineID: id, Status: store.StatusActive}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		bothLocked sync.WaitGroup
		runs       [2]atomic.Int32
		errs       [2]error
	)
	bothLocked.Add(2)
	order := [2][2]string{{"a", "b"}, {"b", "a"}}
	storetest.Race(2, func(i int) {
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			first := runs[i].Add(1) == 1
			for k, id := range order[i] {
				in, err := tx.Instance(ctx, id) // locks the row
				if err != nil {
					return err
				}
				if k == 0 && first {
					// Hold the first row until the other transaction
					// holds its first row too (bounded: if the other one
					// failed before locking, this one must not hang).
					bothLocked.Done()
					waited := make(chan struct{})
					go func() { bothLocked.Wait(); close(waited) }()
					select {
					case <-waited:
					case <-time.After(60 * time.Second):
						return errors.New("the other transaction never locked its first row")
					}
				}
				in.LastError = fmt.Sprintf("tx %d", i)
				if err := tx.UpdateInstance(ctx, in); err != nil {
					return err
				}
			}
			return nil
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if total := runs[0].Load() + runs[1].Load(); total < 3 {
		t.Errorf("transactions ran %d and %d times, want one of them retried after the deadlock", runs[0].Load(), runs[1].Load())
	}
	for _, id := range []string{"a", "b"} {
		in, err := s.Instance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if in.Version != 2 {
			t.Errorf("instance %s at version %d, want 2 (both transactions applied once)", id, in.Version)
		}
	}
}

// proxiedDSN returns dsn pointing at a proxy to its database instead.
func proxiedDSN(t *testing.T, dsn string) (string, *tcpProxy) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	host, port, _ := net.SplitHostPort(p.Addr())
	if IsDSN(dsn) {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.Host = p.Addr()
		return u.String(), p
	}
	return dsn + " host=" + host + " port=" + port, p
}

// TestOutage cuts the connection to PostgreSQL: every operation fails
// with store.ErrUnavailable, and once the database can be reached again
// the same store works without being reopened.
func TestOutage(t *testing.T) {
	dsn, schema := newSchema(t)
	pdsn, proxy := proxiedDSN(t, dsn)
	s := openStore(t, pdsn, schema, WithMaxConns(4), WithMinConns(2))
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping before the outage: %v", err)
	}

	proxy.cut(true)
	ops := map[string]func() error{
		"Ping": func() error { return s.Ping(ctx) },
		"InsertCall": func() error {
			_, err := s.InsertCall(ctx, store.Call{Activity: "during outage"})
			return err
		},
		"RememberNonce": func() error { return s.RememberNonce(ctx, "outage", time.Now().Add(time.Hour)) },
		"ClaimJob": func() error {
			_, err := s.ClaimJob(ctx, "w", nil, time.Now(), time.Minute)
			return err
		},
		"Instance": func() error { _, err := s.Instance(ctx, "x"); return err },
		"Calls":    func() error { _, err := s.Calls(ctx, store.CallFilter{}); return err },
		"Tx": func() error {
			return s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.InsertOperation(ctx, store.Operation{Key: "k", Activity: "a"})
				return err
			})
		},
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s during the outage: %v, want ErrUnavailable", name, err)
		}
	}

	proxy.restore()
	waitFor(t, "reachable again", func() bool { return s.Ping(ctx) == nil })
	for name, op := range ops {
		if err := op(); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s after the outage: %v", name, err)
		}
	}
	// Nothing written during the outage was half-written.
	if _, err := s.Operation(ctx, "k"); err != nil {
		t.Errorf("operation written after the outage: %v", err)
	}
	calls, err := s.Calls(ctx, store.CallFilter{})
	if err != nil || len(calls) != 1 {
		t.Errorf("Calls = %d, %v; want only the one inserted after the outage", len(calls), err)
	}
}

// TestTxRetriedAfterConnectionLoss breaks the connection in the middle of
// a transaction, before COMMIT: nothing was committed, so Tx runs fn again
// on a new connection, and the work is done exactly once.
func TestTxRetriedAfterConnectionLoss(t *testing.T) {
	dsn, schema := newSchema(t)
	pdsn, proxy := proxiedDSN(t, dsn)
	s := openStore(t, pdsn, schema)
	var runs atomic.Int32
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.InsertInstance(ctx, store.Instance{ID: "i1", OrderID: "L", OrderLineID: "L-1", Status: store.StatusProvisioning}); err != nil {
			return err
		}
		if runs.Add(1) == 1 {
			proxy.cut(false) // the connection breaks; new ones get through
		}
		_, _, err := tx.EnqueueJob(ctx, store.Job{Kind: "provision", UniqueKey: "provision:i1"})
		return err
	})
	if err != nil {
		t.Fatalf("Tx: %v", err)
	}
	if runs.Load() != 2 {
		t.Errorf("fn ran %d times, want 2 (once more after the connection broke)", runs.Load())
	}
	jobs, err := s.Jobs(t.Context(), store.JobFilter{})
	if err != nil || len(jobs) != 1 {
		t.Errorf("Jobs = %d, %v; want 1", len(jobs), err)
	}
	if _, err := s.Instance(t.Context(), "i1"); err != nil {
		t.Errorf("Instance: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	dsn := "postgres://koobridge:s3cret-pw@" + addr + "/test?sslmode=disable"
	_, err = Open(t.Context(), dsn)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of an unreachable database: %v, want ErrUnavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "s3cret-pw") {
		t.Errorf("error shows the password: %s", msg)
	}
}

func TestOpenMissingSchema(t *testing.T) {
	dsn := pgtest.DSN(t)
	admin(t, dsn).Close(context.Background()) // fail clearly when unreachable
	_, err := Open(t.Context(), dsn, WithSearchPath("kbtest_no_such_schema"))
	if err == nil || !strings.Contains(err.Error(), "create it") {
		t.Fatalf("Open with a missing schema: %v, want an error asking to create it", err)
	}
}

// TestAcquireTimeout holds the only pooled connection in a transaction: a
// statement that cannot get a connection within the acquire timeout is
// told the database is unavailable, and works once the connection is free.
func TestAcquireTimeout(t *testing.T) {
	dsn, schema := newSchema(t)
	s := openStore(t, dsn, schema, WithMaxConns(1), WithAcquireTimeout(200*time.Millisecond))
	ctx := t.Context()
	holding, release := make(chan struct{}), make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	_, err := s.InsertCall(ctx, store.Call{Activity: "starved"})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("InsertCall with no free connection: %v, want ErrUnavailable", err)
	}
	close(release)
	if err := <-txDone; err != nil {
		t.Fatalf("Tx: %v", err)
	}
	if _, err := s.InsertCall(ctx, store.Call{Activity: "fed"}); err != nil {
		t.Errorf("InsertCall once the connection is free: %v", err)
	}
}

func TestTxContextCanceled(t *testing.T) {
	dsn, schema := newSchema(t)
	s := openStore(t, dsn, schema)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Tx with a canceled context: %v, want context.Canceled", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Tx with a canceled context reports the database unavailable: %v", err)
	}
}

// TestStorageFormat pins the column formats operators read: timestamptz
// with NULL for the zero time, millisecond precision, and text PostgreSQL
// cannot hold replaced rather than refused.
func TestStorageFormat(t *testing.T) {
	dsn, schema := newSchema(t)
	s := openStore(t, dsn, schema)
	ctx := t.Context()
	created := time.Date(2026, 1, 2, 3, 4, 5, 678_901_234, time.FixedZone("CST", 8*3600))
	err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertInstance(ctx, store.Instance{ID: "i1", OrderID: "O", OrderLineID: "L", Status: store.StatusActive,
			CustomerName: "nul\x00byte and bad \xff utf-8", CreatedAt: created, UpdatedAt: created})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var (
		c      time.Time
		expire *time.Time
		typ    string
	)
	if err := s.pool.QueryRow(ctx, `SELECT created_at, expire_time, pg_typeof(created_at)::text FROM instances`).Scan(&c, &expire, &typ); err != nil {
		t.Fatal(err)
	}
	if !c.Equal(created.Truncate(time.Millisecond)) || expire != nil || typ != "timestamp with time zone" {
		t.Errorf("stored created_at %v (%s), expire_time %v; want %v as timestamptz and NULL", c, typ, expire, created.Truncate(time.Millisecond))
	}
	in, err := s.Instance(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	if want := created.Truncate(time.Millisecond); !in.CreatedAt.Equal(want) || in.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", in.CreatedAt, want)
	}
	if want := "nul\uFFFDbyte and bad \uFFFD utf-8"; in.CustomerName != want {
		t.Errorf("CustomerName = %q, want %q", in.CustomerName, want)
	}
	if _, err := s.InsertCall(ctx, store.Call{Request: "{\"a\":\"\x00\"}\xfe"}); err != nil {
		t.Errorf("InsertCall with a NUL byte and invalid UTF-8: %v", err)
	}
}
