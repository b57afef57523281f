// Package pgtest gives tests a PostgreSQL database: a fresh schema on the
// shared development server, or a private server of their own that they
// may stop and restart.
//
// The shared server is named by the environment variable
// KOOBRIDGE_TEST_POSTGRES (default DefaultDSN). A test that needs it fails
// with a clear message when it cannot be reached, so a missing database is
// never mistaken for a passing run; set the variable to "off" to skip
// those tests instead.
//
//	dsn := pgtest.Schema(t, pgtest.DSN(t)) // a schema of its own, dropped afterwards
//	st, err := postgres.Open(ctx, dsn)
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable with the shared server's DSN.
const EnvVar = "KOOBRIDGE_TEST_POSTGRES"

// DefaultDSN is the shared server when EnvVar is unset: the development
// machines' and CI's PostgreSQL (trust auth, database test).
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// connectTimeout bounds every connection this package makes, so an
// unreachable server fails the test instead of hanging it.
const connectTimeout = 10 * time.Second

// DSN returns the shared server's DSN after checking that it answers. The
// test fails when it does not, or is skipped when EnvVar is "off".
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvVar)
	switch dsn {
	case "off":
		t.Skip(EnvVar + "=off: PostgreSQL tests are switched off")
	case "":
		dsn = DefaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
		_ = conn.Close(ctx)
	}
	if err != nil {
		t.Fatalf("PostgreSQL at %s is unreachable: %v\n"+
			"Start it (.ci/run does), point %s at another server, or set %s=off to skip the PostgreSQL tests.",
			redact(dsn), err, EnvVar, EnvVar)
	}
	return dsn
}

// Schema creates a fresh schema kbtest_<random> on the server of dsn and
// returns a DSN whose search_path selects it, so every table the test
// creates lands there and tests running in parallel never meet. The
// schema and everything in it are dropped when the test ends.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	name := "kbtest_" + randomHex(t, 8)
	execSQL(t, dsn, "CREATE SCHEMA "+name)
	t.Cleanup(func() {
		// The test's own connections are closed by now (cleanups run last
		// registered first), so nothing holds a lock on the schema.
		execSQL(t, dsn, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
	})
	out, err := WithSearchPath(dsn, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WithSearchPath returns dsn with its search_path set to schema. dsn is a
// postgres:// or postgresql:// URL, where search_path becomes a query
// parameter (pgx sends unknown parameters to the server as run-time
// settings), or a keyword=value string, which gets search_path=schema.
func WithSearchPath(dsn, schema string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return strings.TrimSpace(dsn) + " search_path=" + schema, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("pgtest: parse DSN %s: %w", redact(dsn), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// execSQL runs one statement on a connection of its own.
func execSQL(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(dsn), err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// passwordRE finds the password of a keyword=value DSN.
var passwordRE = regexp.MustCompile(`password=('[^']*'|\S*)`)

// redact hides the password of a DSN for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return passwordRE.ReplaceAllString(dsn, "password=xxxxx")
	}
	if u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
