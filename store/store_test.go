package store_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	istore "github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/postgres"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/store"
)

// open opens dsn and closes it when the test ends.
func open(t *testing.T, dsn string, opts ...store.Option) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", store.RedactDSN(dsn), err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// checkUsable checks that db answers and holds the current schema: the
// newest table is there and empty.
func checkUsable(t *testing.T, db *store.DB) {
	t.Helper()
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ns, err := istore.Of(db).OrderNotifications(t.Context(), istore.OrderNotificationFilter{})
	if err != nil || len(ns) != 0 {
		t.Fatalf("OrderNotifications on a new database = %d, %v; want an empty list", len(ns), err)
	}
}

func TestOpenSQLite(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct{ dsn, file string }{
		{filepath.Join(dir, "abs.db"), "abs.db"},
		{"rel.db", "rel.db"},
		{"sqlite:colon.db", "colon.db"},
		{"sqlite://" + filepath.Join(dir, "slashes.db"), "slashes.db"},
		{"file:uri.db?cache=private", "uri.db"},
		{"params.db?_busy_timeout=250", "params.db"},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			// The PostgreSQL pool options do not apply and are ignored.
			db := open(t, tc.dsn, store.WithMaxConns(3), store.WithMinConns(1), store.WithMaxConnLifetime(time.Hour),
				store.WithOpTimeout(time.Minute))
			if _, ok := istore.Of(db).(*sqlite.Store); !ok {
				t.Errorf("Open(%q) opened a %T, want SQLite", tc.dsn, istore.Of(db))
			}
			checkUsable(t, db)
			if _, err := os.Stat(filepath.Join(dir, tc.file)); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
}

func TestOpenPostgres(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		t.Run(scheme, func(t *testing.T) {
			_, rest, _ := strings.Cut(dsn, "://")
			db := open(t, scheme+rest, store.WithMaxConns(3), store.WithMinConns(1), store.WithMaxConnLifetime(time.Hour))
			pg, ok := istore.Of(db).(*postgres.Store)
			if !ok {
				t.Fatalf("Open(%s…) opened a %T, want PostgreSQL", scheme, istore.Of(db))
			}
			checkUsable(t, db)
			if got := pg.Stat().MaxConns(); got != 3 {
				t.Errorf("pool of at most %d connections, want 3 (WithMaxConns)", got)
			}
		})
	}
}

// TestOpenPostgresUnreachable: a PostgreSQL URL is never taken for an
// SQLite path, even when the server cannot be reached.
func TestOpenPostgresUnreachable(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused from now on
	for _, scheme := range []string{"postgres", "postgresql"} {
		_, err := store.Open(t.Context(), scheme+"://kb:s3cret@"+addr+"/kb?sslmode=disable")
		if !errors.Is(err, istore.ErrUnavailable) || !strings.Contains(err.Error(), "postgres") {
			t.Errorf("Open(%s://… unreachable): %v, want a PostgreSQL error wrapping ErrUnavailable", scheme, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Open of PostgreSQL URLs created %d files in the working directory", len(entries))
	}
}

// TestOpenRefused: what CheckDSN refuses, Open refuses, creating nothing.
func TestOpenRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, dsn := range []string{"", ":memory:", "sqlite::memory:", "file::memory:?cache=shared", "file:x.db?mode=memory",
		"mysql://u:hunter2@h/db", "postgres://u:hunter2@h/db?pool_max_conns=many", "x.db?_busy_timeout=soon", "sqlite:"} {
		db, err := store.Open(t.Context(), dsn)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if checkErr := store.CheckDSN(dsn); checkErr == nil || checkErr.Error() != err.Error() {
			t.Errorf("Open(%q) = %v, but CheckDSN = %v; want the same error", dsn, err, checkErr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused DSNs created %d files in the working directory", len(entries))
	}
}

func TestCheckDSN(t *testing.T) {
	tests := []struct {
		dsn     string
		wantErr string // "" when accepted
	}{
		{"/var/lib/koobridge/kb.db", ""},
		{"kb.db", ""},
		{"sqlite:kb.db", ""},
		{"sqlite:///var/lib/kb.db", ""},
		{"file:kb.db?cache=private", ""},
		{"kb.db?_busy_timeout=250", ""},
		{"postgres://kb:pw@db.example:5432/kb?sslmode=require", ""},
		{"postgresql://kb@db.example/kb?pool_max_conns=20", ""},
		{"", "no database"},
		{"   ", "empty database path"},
		{":memory:", "in-memory"},
		{"sqlite::memory:", "in-memory"},
		{"file::memory:?cache=shared", "in-memory"},
		{"file:kb.db?mode=memory", "in-memory"},
		{"sqlite:", "empty database path"},
		{"kb.db?_busy_timeout=soon", "_busy_timeout"},
		{"mysql://u:hunter2@h/db?password=hunter2", `unsupported database URL "mysql://h/db"`},
		{"http://h/kb.db", "unsupported database URL"},
		{"postgres://u:hunter2@h/db?pool_max_conns=many", "invalid DSN"},
		{"postgres://u:hunter2@[::1", "invalid DSN"},
		{"postgres://u@h/db?pool_min_conns=5&pool_max_conns=2", "exceed"},
	}
	for _, tc := range tests {
		err := store.CheckDSN(tc.dsn)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("CheckDSN(%q) = %v, want nil", tc.dsn, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("CheckDSN(%q) = %v, want an error containing %q", tc.dsn, err, tc.wantErr)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("CheckDSN(%q) shows the password: %v", tc.dsn, err)
		}
	}
}

func TestIsPostgres(t *testing.T) {
	for dsn, want := range map[string]bool{
		"postgres://u@h/db":   true,
		"postgresql://u@h/db": true,
		"host=h dbname=db":    false, // keyword/value strings are not taken for PostgreSQL
		"POSTGRES://u@h/db":   false,
		" postgres://u@h/db":  false,
		"postgres.db":         false,
		"sqlite:postgres.db":  false,
		"file:postgresql.db":  false,
		"":                    false,
	} {
		if got := store.IsPostgres(dsn); got != want {
			t.Errorf("IsPostgres(%q) = %v, want %v", dsn, got, want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=require", "postgres://u:xxxxx@h:5432/db?sslmode=require"},
		{"postgresql://u:secret@h/db", "postgresql://u:xxxxx@h/db"},
		{"postgres://u@h/db?password=secret", "postgres://u@h/db?password=xxxxx"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://u:secret@[::1", "postgres://u:xxxxx@[::1"},
		// SQLite paths are shown as they are, even when they look odd.
		{"/var/lib/koobridge/kb.db", "/var/lib/koobridge/kb.db"},
		{"sqlite:kb.db?_busy_timeout=250", "sqlite:kb.db?_busy_timeout=250"},
		{"sqlite:///srv/a:b@c.db", "sqlite:///srv/a:b@c.db"},
		{"file:/srv/kb.db?cache=private", "file:/srv/kb.db?cache=private"},
		{"/srv/user:password@host.db", "/srv/user:password@host.db"},
		// URLs of other databases lose their password too.
		{"mysql://u:secret@h/db", "mysql://u:xxxxx@h/db"},
		{"mysql://u:secret@[::1", "mysql://u:xxxxx@[::1"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := store.RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestWithOpTimeout: the operation timeout reaches the store of either
// database: a transaction that outlasts it fails as unavailable, and its
// function's context carries the deadline.
func TestWithOpTimeout(t *testing.T) {
	dsns := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "kb.db") },
		"postgres": func(t *testing.T) string { return pgtest.Schema(t, pgtest.DSN(t)) },
	}
	for name, dsn := range dsns {
		t.Run(name, func(t *testing.T) {
			const d = 250 * time.Millisecond
			db := open(t, dsn(t), store.WithOpTimeout(d))
			start := time.Now()
			var deadline time.Time
			err := istore.Of(db).Tx(t.Context(), func(ctx context.Context, tx istore.Tx) error {
				deadline, _ = ctx.Deadline()
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(30 * time.Second):
					return errors.New("the operation timeout never ended fn's context")
				}
			})
			if !errors.Is(err, istore.ErrUnavailable) {
				t.Errorf("Tx outlasting WithOpTimeout(%v): %v, want ErrUnavailable", d, err)
			}
			if deadline.IsZero() || deadline.Sub(start) > d+50*time.Millisecond {
				t.Errorf("fn's deadline %v after the start, want at most %v", deadline.Sub(start), d)
			}
		})
	}
}
