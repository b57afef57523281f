package deploy_test

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
)

// TestOlderBinaryStartsOnNewerSchema backs docs/operations.md's rollback
// section: a binary started on a database that a newer release migrated
// further (a migration version it does not know, with that migration's
// table) starts, answers /readyz, and leaves the newer migration in place,
// on SQLite and on PostgreSQL.
func TestOlderBinaryStartsOnNewerSchema(t *testing.T) {
	bin := builtBinary(t)
	tests := []struct {
		name   string
		driver string
		dsn    func(t *testing.T) (serve, open string)
		param  string // placeholder for the inserted version
	}{
		{name: "sqlite", driver: "sqlite", param: "?", dsn: func(t *testing.T) (string, string) {
			p := filepath.Join(t.TempDir(), "koobridge.db")
			return "sqlite:" + p, p
		}},
		{name: "postgres", driver: "pgx", param: "$1", dsn: func(t *testing.T) (string, string) {
			dsn := pgtest.Schema(t, pgtest.DSN(t))
			return dsn, dsn
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			serveDSN, openDSN := tc.dsn(t)
			run := func() *server {
				return startOnFreePort(t, func(port string) *exec.Cmd {
					cmd := exec.Command(bin, "serve", "--dev", "--db", serveDSN, "--listen", "127.0.0.1:"+port)
					cmd.Env = cleanEnv(nil)
					return cmd
				})
			}
			// This release migrates the new database, then stops.
			s := run()
			if code := s.stop(t, syscall.SIGTERM); code != 0 {
				t.Fatalf("first start exited %d", code)
			}

			// A newer release's migration, unknown to this binary.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db, err := sql.Open(tc.driver, openDSN)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			var current int64
			if err := db.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&current); err != nil || current < 1 {
				t.Fatalf("the first start left no migration version: %d, %v", current, err)
			}
			if v := docsSchemaVersion(t, bin); v != current {
				t.Errorf("docs/operations.md's command gives the binary version %d; its start migrated to %d", v, current)
			}
			newer := current + 1
			if _, err := db.ExecContext(ctx, `CREATE TABLE from_a_newer_release (id INTEGER PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (`+tc.param+`, true)`, newer); err != nil {
				t.Fatal(err)
			}

			s = run()
			if code, body := s.get(t, "/readyz"); code != 200 {
				t.Errorf("GET /readyz = %d %q on the newer schema, want 200", code, body)
			}
			if code := s.stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("exited %d on SIGTERM", code)
			}
			var got int64
			if err := db.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&got); err != nil || got != newer {
				t.Errorf("schema version after the older binary ran = %d, %v; want %d left in place", got, err, newer)
			}
			if strings.Contains(s.output(), `"level":"ERROR"`) {
				t.Errorf("the older binary logged errors:\n%s", s.output())
			}
		})
	}
}

// docsSchemaVersion runs docs/operations.md's command that reads the newest
// schema version a binary knows from the migration file names it embeds,
// with bin as the koobridge on the PATH, and returns that version.
func docsSchemaVersion(t testing.TB, bin string) int64 {
	t.Helper()
	cmd := exec.Command("sh", "-ec", docsBlock(t, "<!-- deploy/rollback_test.go runs this block -->"))
	cmd.Env = cleanEnv(nil)
	cmd.Env[0] = "PATH=" + filepath.Dir(bin) + ":/usr/bin:/bin"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docs/operations.md's schema version command: %v\n%s", err, out)
	}
	name := strings.TrimSpace(string(out))
	digits, _, ok := strings.Cut(name, "_")
	v, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil {
		t.Fatalf("docs/operations.md's schema version command printed %q, want NNNNN_name.sql", out)
	}
	return v
}

// TestDocsSchemaVersion: the command docs/operations.md gives for the
// newest schema version a binary knows names the highest migration file of
// both dialects, as the release notes must.
func TestDocsSchemaVersion(t *testing.T) {
	got := docsSchemaVersion(t, builtBinary(t))
	for _, dialect := range []string{"sqlite", "postgres"} {
		files, err := filepath.Glob(filepath.Join(repoRoot(t), "internal", "store", "migrations", dialect, "*.sql"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s migrations: %v, %d files", dialect, err, len(files))
		}
		var highest int64
		for _, f := range files {
			digits, _, _ := strings.Cut(filepath.Base(f), "_")
			v, err := strconv.ParseInt(digits, 10, 64)
			if err != nil {
				t.Fatalf("migration %s: %v", f, err)
			}
			highest = max(highest, v)
		}
		if got != highest {
			t.Errorf("the docs' command says %d; the highest %s migration is %d", got, dialect, highest)
		}
	}
}
