package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/migrations"
)

// schemaVersion is the number of the latest migration.
const schemaVersion = 10

// migrator is a goose provider of the embedded migrations on db, for
// tests that move the schema between versions.
func migrator(t *testing.T, db *sql.DB) *goose.Provider {
	t.Helper()
	fsys, err := fs.Sub(migrations.SQLite, "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUpgradeFromVersion1: a database deployed with schema version 1 and
// holding data is upgraded on open; its rows read back with the new
// fields empty, and the new table works.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v1.db")
	driverName, _, err := driverDSN(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", driverName)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := fs.ReadFile(migrations.SQLite, "sqlite/00001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fstest.MapFS{"00001_init.sql": {Data: v1}},
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	for _, stmt := range []string{
		`INSERT INTO instances (id, order_id, order_line_id, status, created_at, updated_at, version)
			VALUES ('old', 'O', 'O-1', 'active', 1000, 2000, 3)`,
		`INSERT INTO operations (key, activity, instance_id, state, result_code, response, created_at, updated_at)
			VALUES ('newInstance:O:O-1', 'newInstance', 'old', 'done', '000000', X'7B7D', 1000, 2000)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	s := openFile(t, path)
	in, err := s.Instance(ctx, "old")
	if err != nil || in.OrderID != "O" || in.Version != 3 || in.FailCode != "" {
		t.Errorf("instance of version 1 after the upgrade = %+v, %v", in, err)
	}
	op, err := s.Operation(ctx, "newInstance:O:O-1")
	if err != nil || op.State != store.OperationDone || string(op.Response) != "{}" || op.Fingerprint != "" {
		t.Errorf("operation of version 1 after the upgrade = %+v, %v", op, err)
	}
	err = s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		in.FailCode = "000100"
		if err := tx.UpdateInstance(ctx, in); err != nil {
			return err
		}
		_, err := tx.InsertOrderNotification(ctx, store.OrderNotification{OrderID: "O", OrderLineID: "O-1"})
		return err
	})
	if err != nil {
		t.Fatalf("writes after the upgrade: %v", err)
	}
	if in, err := s.Instance(ctx, "old"); err != nil || in.FailCode != "000100" {
		t.Errorf("FailCode after the upgrade = %q, %v; want 000100", in.FailCode, err)
	}
	if _, err := s.OrderNotification(ctx, "O", "O-1"); err != nil {
		t.Errorf("OrderNotification after the upgrade: %v", err)
	}
	var version int64
	if err := s.db.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version != schemaVersion {
		t.Errorf("schema version %d after the upgrade, want %d", version, schemaVersion)
	}
}

// TestDownAndUpVersion3: version 3 migrates down to version 2 — its
// tables and the ledger's tenant column gone, the ledger's rows kept — and
// up again.
func TestDownAndUpVersion3(t *testing.T) {
	ctx := t.Context()
	s := openFile(t, filepath.Join(t.TempDir(), "down.db"))
	if _, err := s.InsertCall(ctx, store.Call{Activity: "tenantSync", TenantID: "T1"}); err != nil {
		t.Fatal(err)
	}
	p := migrator(t, s.db.DB)
	if _, err := p.DownTo(ctx, 2); err != nil {
		t.Fatalf("migrate down to version 2: %v", err)
	}
	var tables int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'tenant%'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d tenant tables after migrating down, want 0", tables)
	}
	var calls int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM calls`).Scan(&calls); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("%d calls after migrating down, want 1", calls)
	}
	if _, err := s.db.ExecContext(ctx, `SELECT tenant_id FROM calls`); err == nil {
		t.Error("calls.tenant_id still there after migrating down")
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	got, err := s.Calls(ctx, store.CallFilter{})
	if err != nil || len(got) != 1 || got[0].TenantID != "" || got[0].Activity != "tenantSync" {
		t.Errorf("calls after down and up = %+v, %v; want the one call, its tenant reset to \"\"", got, err)
	}
	err = s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.UpsertTenant(ctx, store.Tenant{ID: "T1"})
	})
	if err != nil {
		t.Errorf("UpsertTenant after down and up: %v", err)
	}
}

// TestDownAndUpVersion5: version 5 migrates down to version 4 — the
// license tables gone — and up again.
func TestDownAndUpVersion5(t *testing.T) {
	ctx := t.Context()
	s := openFile(t, filepath.Join(t.TempDir(), "down5.db"))
	p := migrator(t, s.db.DB)
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatalf("migrate down to version 4: %v", err)
	}
	var tables int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'license%'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d license tables after migrating down, want 0", tables)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertLicenseCode(ctx, store.LicenseCode{Code: "LC-1"})
		return err
	})
	if err != nil {
		t.Errorf("InsertLicenseCode after down and up: %v", err)
	}
}

// TestDownAndUpVersion10: version 10 migrates down to version 9 — the
// lists' indexes gone, instances_status back — and up again.
func TestDownAndUpVersion10(t *testing.T) {
	ctx := t.Context()
	s := openFile(t, filepath.Join(t.TempDir(), "down10.db"))
	p := migrator(t, s.db.DB)
	indexes := func() string {
		t.Helper()
		rows, err := s.db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'index'
			AND tbl_name IN ('instances', 'calls', 'jobs') AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		return strings.Join(names, " ")
	}
	const v9 = "calls_activity calls_answered_created_at calls_created_at calls_instance_id calls_order_id " +
		"calls_rejected_created_at calls_tenant_id_id instances_status jobs_state_run_at jobs_unique_key"
	const v10 = "calls_activity calls_answered_created_at calls_created_at calls_instance_id calls_order_id " +
		"calls_rejected_created_at calls_result_code_id calls_tenant_id_id instances_status_id instances_test_id " +
		"jobs_kind_id jobs_state_id jobs_state_run_at jobs_unique_key"
	if got := indexes(); got != v10 {
		t.Errorf("indexes at version 10: %s\nwant %s", got, v10)
	}
	if _, err := p.DownTo(ctx, 9); err != nil {
		t.Fatalf("migrate down to version 9: %v", err)
	}
	if got := indexes(); got != v9 {
		t.Errorf("indexes after migrating down: %s\nwant %s", got, v9)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	if got := indexes(); got != v10 {
		t.Errorf("indexes after down and up: %s\nwant %s", got, v10)
	}
}

// TestUpgradeToVersion8: rows of version 6 keep their durations, now read
// in microseconds (version 7), and a job that had been claimed before its
// run_at gets the time of its last change as run_at (version 8). Rows an
// older binary writes after the upgrade, with milliseconds only, read as
// before, and the store still writes milliseconds for such a binary.
func TestUpgradeToVersion8(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v6.db")
	driverName, _, err := driverDSN(path)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", driverName)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := migrator(t, db)
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatalf("migrate to version 6: %v", err)
	}
	exec := func(stmts ...string) {
		t.Helper()
		for _, stmt := range stmts {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	exec(
		`INSERT INTO calls (id, activity, latency_ms, created_at) VALUES (1, 'queryInstance', 3, 1000)`,
		`INSERT INTO usage_pushes (id, api, body, state, created_at, updated_at) VALUES (1, 'new', X'7B7D', 'pending', 1000, 1000)`,
		`INSERT INTO usage_push_attempts (push_id, attempt, at, duration) VALUES (1, 1, 2000, 1500)`,
		`INSERT INTO jobs (id, kind, state, run_at, created_at, updated_at) VALUES
			(1, 'provision', 'done', 9000, 1000, 5000),
			(2, 'provision', 'available', 9000, 1000, 5000),
			(3, 'provision', 'running', 9000, 1000, 4000),
			(4, 'notify', 'done', 1000, 1000, 2000)`,
	)

	s := openFile(t, path)
	calls, err := s.Calls(ctx, store.CallFilter{})
	if err != nil || len(calls) != 1 || calls[0].Latency != 3*time.Millisecond {
		t.Errorf("call of version 6 after the upgrade = %+v, %v; want latency 3ms", calls, err)
	}
	attempts, err := s.UsagePushAttempts(ctx, 1)
	if err != nil || len(attempts) != 1 || attempts[0].Duration != 1500*time.Millisecond {
		t.Errorf("usage push attempt of version 6 after the upgrade = %+v, %v; want 1.5s", attempts, err)
	}
	for id, want := range map[int64]int64{1: 5000, 2: 9000, 3: 4000, 4: 1000} {
		j, err := s.Job(ctx, id)
		if err != nil || j.RunAt.UnixMilli() != want {
			t.Errorf("job %d (%s) after the upgrade: run_at %d, %v; want %d", id, j.State, j.RunAt.UnixMilli(), err, want)
		}
	}

	// An older binary, rolled back to, writes milliseconds only.
	exec(
		`INSERT INTO calls (id, activity, latency_ms, created_at) VALUES (2, 'releaseInstance', 5, 3000)`,
		`INSERT INTO usage_push_attempts (push_id, attempt, at, duration) VALUES (1, 2, 3000, 7)`,
	)
	calls, err = s.Calls(ctx, store.CallFilter{})
	if err != nil || len(calls) != 2 || calls[0].Latency != 5*time.Millisecond {
		t.Errorf("call an older binary wrote = %+v, %v; want latency 5ms", calls, err)
	}
	attempts, err = s.UsagePushAttempts(ctx, 1)
	if err != nil || len(attempts) != 2 || attempts[1].Duration != 7*time.Millisecond {
		t.Errorf("usage push attempt an older binary wrote = %+v, %v; want 7ms", attempts, err)
	}
	// An attempt this binary wrote (both columns agree) reads to the
	// microsecond; once an older binary rewrites it (its upsert sets only
	// the milliseconds), the milliseconds win over the stale microseconds.
	exec(`INSERT INTO usage_push_attempts (push_id, attempt, at, duration, duration_us) VALUES (1, 3, 4000, 2, 2500)`)
	if attempts, err = s.UsagePushAttempts(ctx, 1); err != nil || len(attempts) != 3 || attempts[2].Duration != 2500*time.Microsecond {
		t.Errorf("usage push attempt this binary wrote = %+v, %v; want 2.5ms", attempts, err)
	}
	exec(`UPDATE usage_push_attempts SET duration = 9 WHERE push_id = 1 AND attempt = 3`)
	if attempts, err = s.UsagePushAttempts(ctx, 1); err != nil || len(attempts) != 3 || attempts[2].Duration != 9*time.Millisecond {
		t.Errorf("usage push attempt an older binary rewrote = %+v, %v; want 9ms", attempts, err)
	}
	// And reads the milliseconds of what this one writes.
	id, err := s.InsertCall(ctx, store.Call{Activity: "queryInstance", Latency: 2500 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	if err := db.QueryRowContext(ctx, `SELECT latency_ms FROM calls WHERE id = ?`, id).Scan(&ms); err != nil || ms != 2 {
		t.Errorf("latency_ms of a call of 2.5ms = %d, %v; want 2", ms, err)
	}
}
