package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/storetest"
)

// openFile opens a store on path and closes it when the test ends.
func openFile(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openFile(t, "sqlite:"+filepath.Join(t.TempDir(), "koobridge.db"))
	})
}

func TestDriverDSN(t *testing.T) {
	tests := []struct {
		in       string
		wantPath string
		wantBusy time.Duration
		wantErr  string
		wantKeys map[string]string
	}{
		{in: "sqlite:koobridge.db", wantPath: "koobridge.db", wantBusy: 5 * time.Second},
		{in: "sqlite:///var/lib/kb.db", wantPath: "/var/lib/kb.db", wantBusy: 5 * time.Second},
		{in: "sqlite://rel/kb.db", wantPath: "rel/kb.db", wantBusy: 5 * time.Second},
		{in: "/tmp/x.db", wantPath: "/tmp/x.db", wantBusy: 5 * time.Second},
		{in: "file:/tmp/x.db?cache=private", wantPath: "file:/tmp/x.db", wantBusy: 5 * time.Second,
			wantKeys: map[string]string{"cache": "private"}},
		{in: "sqlite:x.db?_busy_timeout=250&_synchronous=FULL", wantPath: "x.db", wantBusy: 250 * time.Millisecond,
			wantKeys: map[string]string{"_busy_timeout": "250", "_synchronous": "FULL"}},
		// The store's own requirements cannot be overridden.
		{in: "x.db?_txlock=deferred&_journal_mode=DELETE", wantPath: "x.db", wantBusy: 5 * time.Second,
			wantKeys: map[string]string{"_txlock": "immediate", "_journal_mode": "WAL"}},
		{in: ":memory:", wantErr: "in-memory"},
		{in: "sqlite::memory:", wantErr: "in-memory"},
		{in: "file:x.db?mode=memory", wantErr: "in-memory"},
		{in: "", wantErr: "empty"},
		{in: "sqlite:", wantErr: "empty"},
		{in: "x.db?_busy_timeout=soon", wantErr: "invalid _busy_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, busy, err := driverDSN(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("driverDSN(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("driverDSN(%q): %v", tc.in, err)
			}
			path, query, _ := strings.Cut(got, "?")
			if path != tc.wantPath || busy != tc.wantBusy {
				t.Errorf("driverDSN(%q) = path %q busy %v, want %q %v", tc.in, path, busy, tc.wantPath, tc.wantBusy)
			}
			keys := map[string]string{"_journal_mode": "WAL", "_txlock": "immediate", "_foreign_keys": "1"}
			for k, v := range tc.wantKeys {
				keys[k] = v
			}
			for k, v := range keys {
				if !strings.Contains("&"+query+"&", "&"+k+"="+v+"&") {
					t.Errorf("driverDSN(%q) = %q, want %s=%s", tc.in, got, k, v)
				}
			}
		})
	}
}

func TestOpenSettings(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "settings.db"))
	ctx := t.Context()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "5000",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
		"cache_size":   "-512",
	} {
		// Ask several pooled connections: every one must be configured.
		for range 3 {
			var got string
			if err := s.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", pragma, err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
			}
		}
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reopen.db")
	ctx := t.Context()
	s, err := Open(ctx, "sqlite://"+path)
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
		s := openFile(t, path)
		in, err := s.Instance(ctx, "i1")
		if err != nil || in.OrderID != "O1" {
			t.Fatalf("reopen %d: Instance = %+v, %v", i, in, err)
		}
		if err := s.RememberNonce(ctx, "n1", time.Now().Add(time.Hour)); !errors.Is(err, store.ErrReplayedNonce) {
			t.Fatalf("reopen %d: replayed nonce accepted after restart: %v", i, err)
		}
		var versions, applied int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).
			Scan(&versions, &applied); err != nil {
			t.Fatal(err)
		}
		if versions != schemaVersion || applied != schemaVersion {
			t.Errorf("reopen %d: goose_db_version has %d rows for %d versions, want %d and %d", i, versions, applied, schemaVersion, schemaVersion)
		}
		s.Close()
	}
}

// TestTimesAsMilliseconds pins the storage format other tools (and a
// future migration to PostgreSQL) rely on.
func TestTimesAsMilliseconds(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "times.db"))
	ctx := t.Context()
	created := time.Date(2026, 1, 2, 3, 4, 5, 678_901_234, time.FixedZone("CST", 8*3600))
	err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertInstance(ctx, store.Instance{ID: "i1", OrderID: "O", OrderLineID: "L", Status: store.StatusActive,
			CreatedAt: created, UpdatedAt: created})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var c, e int64
	if err := s.db.QueryRowContext(ctx, `SELECT created_at, expire_time FROM instances`).Scan(&c, &e); err != nil {
		t.Fatal(err)
	}
	if c != created.UnixMilli() || e != 0 {
		t.Errorf("stored created_at %d expire_time %d, want %d and 0", c, e, created.UnixMilli())
	}
	in, err := s.Instance(ctx, "i1")
	if err != nil {
		t.Fatal(err)
	}
	if want := created.Truncate(time.Millisecond); !in.CreatedAt.Equal(want) || in.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", in.CreatedAt, want)
	}
}

// TestTwoHandles opens the same file twice, as two koobridge processes
// would, and races them on the unique constraints and on plain writes.
func TestTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	var handles [2]*Store
	// Both open (and migrate) a fresh file at the same moment.
	errs := make([]error, 2)
	storetest.Race(2, func(i int) {
		var err error
		handles[i], err = Open(context.Background(), path)
		errs[i] = err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { handles[i].Close() })
	}

	storetest.RunShared(t, handles[0], handles[1])
}

// holdWriteLock takes SQLite's write lock on path from a connection of its
// own (another process, in effect) and returns a function that releases it.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_busy_timeout=5000&_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("BEGIN IMMEDIATE: %v", err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Errorf("ROLLBACK: %v", err)
		}
		conn.Close()
		db.Close()
	}
	t.Cleanup(release)
	return release
}

// TestBusy checks that a writer blocked past the busy timeout by another
// process gets store.ErrUnavailable, that reads go on meanwhile (WAL), and
// that writers succeed once the lock is released.
func TestBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	s := openFile(t, path+"?_busy_timeout=100")
	ctx := t.Context()
	if _, err := s.InsertCall(ctx, store.Call{Activity: "before"}); err != nil {
		t.Fatal(err)
	}

	release := holdWriteLock(t, path)
	writes := map[string]func() error{
		"InsertCall": func() error { _, err := s.InsertCall(ctx, store.Call{Activity: "blocked"}); return err },
		"RememberNonce": func() error {
			return s.RememberNonce(ctx, "blocked", time.Now().Add(time.Hour))
		},
		"ClaimJob": func() error {
			_, err := s.ClaimJob(ctx, "w", nil, time.Now(), time.Minute)
			return err
		},
		"Tx": func() error {
			return s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.InsertOperation(ctx, store.Operation{Key: "k", Activity: "a"})
				return err
			})
		},
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s while another process holds the write lock: %v, want ErrUnavailable", name, err)
		}
	}
	// Readers are not blocked by a writer in WAL mode.
	if calls, err := s.Calls(ctx, store.CallFilter{}); err != nil || len(calls) != 1 {
		t.Errorf("Calls while locked = %d calls, %v; want 1, nil", len(calls), err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping while locked: %v", err)
	}

	release()
	for name, write := range writes {
		if err := write(); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s after the lock was released: %v", name, err)
		}
	}
}

// TestBusyWaits checks that a writer waits for another process's short
// transaction instead of failing: the lock is released while the writer
// waits within its (default, 5 s) busy timeout.
func TestBusyWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wait.db")
	s := openFile(t, path)
	release := holdWriteLock(t, path)
	result := make(chan error, 1)
	go func() {
		result <- s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			_, _, err := tx.EnqueueJob(ctx, store.Job{Kind: "k"})
			return err
		})
	}()
	// Whether the writer has started waiting yet or not, it must succeed.
	time.Sleep(50 * time.Millisecond)
	release()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("Tx after the lock was released: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Tx still blocked 30 s after the lock was released")
	}
	jobs, err := s.Jobs(t.Context(), store.JobFilter{})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Jobs = %d, %v; want 1 job", len(jobs), err)
	}
}

func TestTxContextCanceled(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "cancel.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Tx with a canceled context: %v, want context.Canceled", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(t.Context(), ":memory:"); err == nil {
		t.Error("Open(:memory:) succeeded")
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")
	if _, err := Open(t.Context(), missing); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open in a missing directory: %v, want ErrUnavailable", err)
	}
}

// TestCacheSizeSetting checks that a DSN's own cache_size wins over the
// default, on every pooled connection.
func TestCacheSizeSetting(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "cache.db")+"?_pragma=cache_size(-4096)")
	for range 3 {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA cache_size").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != "-4096" {
			t.Errorf("PRAGMA cache_size = %s, want the DSN's -4096", got)
		}
	}
}
