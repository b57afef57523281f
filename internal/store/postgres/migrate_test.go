package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"
	"testing/fstest"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for goose
	"github.com/pressly/goose/v3"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/migrations"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
)

// schemaVersion is the number of the latest migration.
const schemaVersion = 6

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
	sdsn, err := pgtest.WithSearchPath(dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", sdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fsys, err := fs.Sub(migrations.Postgres, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
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
	sdsn, err := pgtest.WithSearchPath(dsn, schema)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", sdsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fsys, err := fs.Sub(migrations.Postgres, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
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
	err = s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertLicenseCode(ctx, store.LicenseCode{Code: "LC-1"})
		return err
	})
	if err != nil {
		t.Errorf("InsertLicenseCode after down and up: %v", err)
	}
}
