package pgtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func query(t *testing.T, dsn, sql string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var s string
	err = conn.QueryRow(ctx, sql).Scan(&s)
	return s, err
}

func TestWithSearchPath(t *testing.T) {
	tests := []struct {
		dsn, want string
	}{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=kb_x&sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db?search_path=kb_x"},
		{"postgres://u@h/db?search_path=old", "postgres://u@h/db?search_path=kb_x"},
		{"host=h dbname=db ", "host=h dbname=db search_path=kb_x"},
	}
	for _, tt := range tests {
		got, err := WithSearchPath(tt.dsn, "kb_x")
		if err != nil || got != tt.want {
			t.Errorf("WithSearchPath(%q) = %q, %v; want %q", tt.dsn, got, err, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, dsn := range []string{"postgres://u:s3cret@h/db", "host=h password=s3cret dbname=db", "host=h password='s3cret' dbname=db"} {
		if got := redact(dsn); strings.Contains(got, "s3cret") {
			t.Errorf("redact(%q) = %q", dsn, got)
		}
	}
}

// TestSchema: each schema is selected by its DSN, isolated from the other,
// and gone after the test.
func TestSchema(t *testing.T) {
	base := DSN(t)
	var names []string
	t.Run("two schemas", func(t *testing.T) {
		a, b := Schema(t, base), Schema(t, base)
		for _, dsn := range []string{a, b} {
			name, err := query(t, dsn, "SELECT current_schema()")
			if err != nil || !strings.HasPrefix(name, "kbtest_") {
				t.Fatalf("current_schema = %q, %v", name, err)
			}
			names = append(names, name)
		}
		if names[0] == names[1] {
			t.Fatalf("both DSNs select %s", names[0])
		}
		execSQL(t, a, "CREATE TABLE marker (x text)")
		for _, tt := range []struct{ dsn, want string }{{a, "marker"}, {b, "-"}} {
			if got, err := query(t, tt.dsn, "SELECT coalesce(to_regclass('marker')::text, '-')"); err != nil || got != tt.want {
				t.Errorf("marker table seen as %q, %v; want %q", got, err, tt.want)
			}
		}
	})
	for _, name := range names {
		got, err := query(t, base, "SELECT count(*)::text FROM pg_namespace WHERE nspname = '"+name+"'")
		if err != nil || got != "0" {
			t.Errorf("schema %s after the test: count %q, %v", name, got, err)
		}
	}
}

// TestCluster: a private server answers, refuses connections while
// stopped, and keeps its data across a restart.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	c := StartCluster(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, c.Log())
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before restart')"); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	// The open session was cut off by the fast shutdown.
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a session survived Stop")
	}
	_ = conn.Close(ctx)
	if _, err := query(t, c.DSN(), "SELECT 'up'"); err == nil {
		t.Fatal("connected to a stopped server")
	}
	c.Start()
	if got, err := query(t, c.DSN(), "SELECT v FROM kept"); err != nil || got != "before restart" {
		t.Fatalf("after Start: %q, %v", got, err)
	}
	c.Restart()
	if got, err := query(t, c.DSN(), "SELECT v FROM kept"); err != nil || got != "before restart" {
		t.Fatalf("after Restart: %q, %v", got, err)
	}
	if !strings.Contains(c.Log(), "ready to accept connections") {
		t.Errorf("server log lacks the ready line:\n%s", c.Log())
	}
	var pgErr interface{ SQLState() string }
	_, err = query(t, c.DSN(), "SELECT v FROM missing_table")
	if !errors.As(err, &pgErr) || pgErr.SQLState() != "42P01" {
		t.Errorf("a missing table: %v", err)
	}
}
