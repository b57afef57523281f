package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for goose
	"github.com/pressly/goose/v3"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/migrations"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
)

// schemaVersion is the number of the latest migration.
const schemaVersion = 10

// TestUpgradeFromVersion1: a database deployed with schema version 1 and
// holding data is upgraded on open; its rows read back with the new
// fields empty, and the new table works.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	dsn, schema := newSchema(t)
	v1dsn, err := pgtest.WithSearchPath(dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", v1dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v1, err := fs.ReadFile(migrations.Postgres, "postgres/00001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fstest.MapFS{"00001_init.sql": {Data: v1}},
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate to version 1: %v", err)
	}
	for _, stmt := range []string{
		`INSERT INTO instances (id, order_id, order_line_id, status, created_at, updated_at, version)
			VALUES ('old', 'O', 'O-1', 'active', now(), now(), 3)`,
		`INSERT INTO operations (key, activity, instance_id, state, result_code, response, created_at, updated_at)
			VALUES ('newInstance:O:O-1', 'newInstance', 'old', 'done', '000000', '\x7b7d', now(), now())`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	s := openStore(t, dsn, schema)
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
	if rows, versions := migratedVersions(t, s); rows != schemaVersion || versions != schemaVersion {
		t.Errorf("goose_db_version has %d rows for %d versions after the upgrade, want %d and %d", rows, versions, schemaVersion, schemaVersion)
	}
}

// migrator opens schema of the database at dsn apart from the store, with
// a goose provider of the embedded migrations, for tests that move the
// schema between versions. The connection closes when the test ends.
func migrator(t *testing.T, dsn, schema string) (*sql.DB, *goose.Provider) {
	t.Helper()
	sdsn, err := pgtest.WithSearchPath(dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", sdsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fsys, err := fs.Sub(migrations.Postgres, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return db, p
}

// TestDownAndUpVersion3: version 3 migrates down to version 2 — its
// tables and the ledger's tenant column gone, the ledger's rows kept — and
// up again.
func TestDownAndUpVersion3(t *testing.T) {
	ctx := t.Context()
	dsn, schema := newSchema(t)
	s := openStore(t, dsn, schema)
	if _, err := s.InsertCall(ctx, store.Call{Activity: "tenantSync", TenantID: "T1"}); err != nil {
		t.Fatal(err)
	}
	db, p := migrator(t, dsn, schema)
	if _, err := p.DownTo(ctx, 2); err != nil {
		t.Fatalf("migrate down to version 2: %v", err)
	}
	var tables, calls, columns int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = $1 AND table_name LIKE 'tenant%'`, schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'calls' AND column_name = 'tenant_id'`, schema).Scan(&columns); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM calls`).Scan(&calls); err != nil {
		t.Fatal(err)
	}
	if tables != 0 || columns != 0 || calls != 1 {
		t.Errorf("after migrating down: %d tenant tables, %d tenant_id columns of calls, %d calls; want 0, 0, 1", tables, columns, calls)
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
	dsn, schema := newSchema(t)
	s := openStore(t, dsn, schema)
	db, p := migrator(t, dsn, schema)
	if _, err := p.DownTo(ctx, 4); err != nil {
		t.Fatalf("migrate down to version 4: %v", err)
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = $1 AND table_name LIKE 'license%'`, schema).Scan(&tables); err != nil {
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
// lists' indexes gone, instances_status and calls_created_at back — and
// up again.
func TestDownAndUpVersion10(t *testing.T) {
	ctx := t.Context()
	dsn, schema := newSchema(t)
	openStore(t, dsn, schema)
	db, p := migrator(t, dsn, schema)
	indexes := func() string {
		t.Helper()
		var names string
		// Only valid indexes: a concurrent build cut short leaves an
		// invalid one.
		err := db.QueryRowContext(ctx, `SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '')
			FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
			JOIN pg_namespace n ON n.oid = t.relnamespace
			WHERE n.nspname = $1 AND t.relname IN ('instances', 'calls', 'jobs') AND i.indisvalid
				AND NOT i.indisprimary AND NOT i.indisunique`, schema).Scan(&names)
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	const v9 = "calls_activity calls_answered_created_at calls_created_at calls_instance_id calls_order_id " +
		"calls_rejected_created_at calls_tenant_id_id instances_status jobs_state_run_at"
	const v10 = "calls_activity calls_answered_created_at calls_created_at_id calls_instance_id calls_order_id " +
		"calls_rejected_created_at calls_result_code_id calls_tenant_id_id instances_status_id instances_test_id " +
		"jobs_kind_id jobs_state_id jobs_state_run_at"
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
	dsn, schema := newSchema(t)
	db, p := migrator(t, dsn, schema)
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
		`INSERT INTO calls (activity, latency_ms, created_at) VALUES ('queryInstance', 3, '2026-01-01T00:00:01Z')`,
		`INSERT INTO usage_pushes (api, body, state, created_at, updated_at)
			VALUES ('new', '\x7b7d', 'pending', '2026-01-01T00:00:01Z', '2026-01-01T00:00:01Z')`,
		`INSERT INTO usage_push_attempts (push_id, attempt, at, duration)
			SELECT id, 1, '2026-01-01T00:00:02Z', 1500 FROM usage_pushes`,
		`INSERT INTO jobs (kind, state, run_at, created_at, updated_at) VALUES
			('provision', 'done', '2026-01-01T00:00:09Z', '2026-01-01T00:00:01Z', '2026-01-01T00:00:05Z'),
			('provision', 'available', '2026-01-01T00:00:09Z', '2026-01-01T00:00:01Z', '2026-01-01T00:00:05Z'),
			('provision', 'running', '2026-01-01T00:00:09Z', '2026-01-01T00:00:01Z', '2026-01-01T00:00:04Z'),
			('notify', 'done', '2026-01-01T00:00:01Z', '2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z')`,
	)
	var pushID int64
	if err := db.QueryRowContext(ctx, `SELECT id FROM usage_pushes`).Scan(&pushID); err != nil {
		t.Fatal(err)
	}

	s := openStore(t, dsn, schema)
	calls, err := s.Calls(ctx, store.CallFilter{})
	if err != nil || len(calls) != 1 || calls[0].Latency != 3*time.Millisecond {
		t.Errorf("call of version 6 after the upgrade = %+v, %v; want latency 3ms", calls, err)
	}
	attempts, err := s.UsagePushAttempts(ctx, pushID)
	if err != nil || len(attempts) != 1 || attempts[0].Duration != 1500*time.Millisecond {
		t.Errorf("usage push attempt of version 6 after the upgrade = %+v, %v; want 1.5s", attempts, err)
	}
	jobs, err := s.Jobs(ctx, store.JobFilter{})
	if err != nil || len(jobs) != 4 {
		t.Fatalf("jobs after the upgrade = %+v, %v", jobs, err)
	}
	// Newest first: the done notify job, the running, the available and
	// the done provision jobs.
	for i, want := range []int{1, 4, 9, 5} {
		if j := jobs[i]; !j.RunAt.Equal(time.Date(2026, 1, 1, 0, 0, want, 0, time.UTC)) {
			t.Errorf("job %d (%s) after the upgrade: run_at %v, want second %d", j.ID, j.State, j.RunAt, want)
		}
	}

	// An older binary, rolled back to, writes milliseconds only.
	exec(
		`INSERT INTO calls (activity, latency_ms, created_at) VALUES ('releaseInstance', 5, '2026-01-01T00:00:03Z')`,
		`INSERT INTO usage_push_attempts (push_id, attempt, at, duration)
			SELECT id, 2, '2026-01-01T00:00:03Z', 7 FROM usage_pushes`,
	)
	calls, err = s.Calls(ctx, store.CallFilter{})
	if err != nil || len(calls) != 2 || calls[0].Latency != 5*time.Millisecond {
		t.Errorf("call an older binary wrote = %+v, %v; want latency 5ms", calls, err)
	}
	attempts, err = s.UsagePushAttempts(ctx, pushID)
	if err != nil || len(attempts) != 2 || attempts[1].Duration != 7*time.Millisecond {
		t.Errorf("usage push attempt an older binary wrote = %+v, %v; want 7ms", attempts, err)
	}
	// An attempt this binary wrote (both columns agree) reads to the
	// microsecond; once an older binary rewrites it (its upsert sets only
	// the milliseconds), the milliseconds win over the stale microseconds.
	exec(`INSERT INTO usage_push_attempts (push_id, attempt, at, duration, duration_us)
		SELECT id, 3, '2026-01-01T00:00:04Z', 2, 2500 FROM usage_pushes`)
	if attempts, err = s.UsagePushAttempts(ctx, pushID); err != nil || len(attempts) != 3 || attempts[2].Duration != 2500*time.Microsecond {
		t.Errorf("usage push attempt this binary wrote = %+v, %v; want 2.5ms", attempts, err)
	}
	exec(`UPDATE usage_push_attempts SET duration = 9 WHERE attempt = 3`)
	if attempts, err = s.UsagePushAttempts(ctx, pushID); err != nil || len(attempts) != 3 || attempts[2].Duration != 9*time.Millisecond {
		t.Errorf("usage push attempt an older binary rewrote = %+v, %v; want 9ms", attempts, err)
	}
	// And reads the milliseconds of what this one writes.
	id, err := s.InsertCall(ctx, store.Call{Activity: "queryInstance", Latency: 2500 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	var ms int64
	if err := db.QueryRowContext(ctx, `SELECT latency_ms FROM calls WHERE id = $1`, id).Scan(&ms); err != nil || ms != 2 {
		t.Errorf("latency_ms of a call of 2.5ms = %d, %v; want 2", ms, err)
	}
}
