package deploy_test

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
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
