package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// admin connects to the test database for setting up and tearing down.
func admin(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("PostgreSQL at %s cannot be reached: %v\n"+
			"Start it (.ci/run does), point KOOBRIDGE_TEST_POSTGRES at a database, or set KOOBRIDGE_TEST_POSTGRES=off to skip these tests.",
			RedactDSN(dsn), err)
	}
	return conn
}

// newSchema creates an empty schema kbtest_<random> for one test and drops
// it, with everything in it, when the test ends. Tests, and test packages
// running in parallel, never share tables.
func newSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	dsn = pgtest.DSN(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema = "kbtest_" + hex.EncodeToString(b[:])
	conn := admin(t, dsn)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		conn := admin(t, dsn)
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return dsn, schema
}

// openStore opens a store on dsn in schema and closes it when the test
// ends (before the schema is dropped).
func openStore(t testing.TB, dsn, schema string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, append(opts, WithSearchPath(schema))...)
	if err != nil {
		t.Fatalf("Open in schema %s: %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
