package main

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store/postgres"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
)

// TestDBSettings covers --db with PostgreSQL, the pool flags and
// --job-lease: their defaults and every source.
func TestDBSettings(t *testing.T) {
	file := writeFile(t, "db.yaml", `
db: postgres://kb@db.example/kb?sslmode=require
db-max-conns: 20
db-min-conns: 2
db-conn-lifetime: 1h
job-lease: 30s
`)
	type want struct {
		db       string
		max, min int
		lifetime time.Duration
		lease    time.Duration
	}
	defaults := want{"sqlite:koobridge.db", 10, 0, 30 * time.Minute, 2 * time.Minute}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want want
	}{
		{"defaults", nil, nil, defaults},
		{"flags", []string{"--db", "postgresql://kb@db.example/kb", "--db-max-conns", "5", "--db-min-conns", "1",
			"--db-conn-lifetime", "10m", "--job-lease", "10s"}, nil,
			want{"postgresql://kb@db.example/kb", 5, 1, 10 * time.Minute, 10 * time.Second}},
		{"environment", nil, map[string]string{"KOOBRIDGE_DB": "postgres://kb@db.example/kb", "KOOBRIDGE_DB_MAX_CONNS": "7",
			"KOOBRIDGE_DB_MIN_CONNS": "3", "KOOBRIDGE_DB_CONN_LIFETIME": "2h", "KOOBRIDGE_JOB_LEASE": "5m"},
			want{"postgres://kb@db.example/kb", 7, 3, 2 * time.Hour, 5 * time.Minute}},
		{"file", []string{"--config", file}, nil,
			want{"postgres://kb@db.example/kb?sslmode=require", 20, 2, time.Hour, 30 * time.Second}},
		{"flag over environment over file", []string{"--config", file, "--db-max-conns", "3"},
			map[string]string{"KOOBRIDGE_DB_MAX_CONNS": "4", "KOOBRIDGE_DB_MIN_CONNS": "1"},
			want{"postgres://kb@db.example/kb?sslmode=require", 3, 1, time.Hour, 30 * time.Second}},
		{"keyword DSN in URL form with pool parameters", []string{"--db", "postgres://kb@h/kb?pool_max_conns=50"}, nil,
			want{"postgres://kb@h/kb?pool_max_conns=50", 10, 0, 30 * time.Minute, 2 * time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := resolveArgs(t, append(tc.args, base...), tc.env)
			if err != nil {
				t.Fatal(err)
			}
			o := c.opts
			got := want{o.db, o.dbMaxConns, o.dbMinConns, o.dbConnLifetime, o.jobLease}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDBValidation(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"max conns zero", []string{"--db-max-conns", "0"}, "--db-max-conns"},
		{"max conns huge", []string{"--db-max-conns", "5000"}, "--db-max-conns"},
		{"min conns negative", []string{"--db-min-conns", "-1"}, "--db-min-conns"},
		{"min over max", []string{"--db-max-conns", "2", "--db-min-conns", "3"}, "--db-min-conns"},
		{"short lifetime", []string{"--db-conn-lifetime", "10s"}, "--db-conn-lifetime"},
		{"short job lease", []string{"--job-lease", "9s"}, "--job-lease"},
		{"bad pool parameter", []string{"--db", "postgres://u:hunter2@h/db?pool_max_conns=many"}, "--db"},
		{"unparsable URL", []string{"--db", "postgres://u:hunter2@[::1"}, "--db"},
		{"other database", []string{"--db", "mysql://u:hunter2@h/db"}, "--db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolveArgs(t, append(tc.args, base...), nil)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestRedactDSNInLog(t *testing.T) {
	c, err := resolveArgs(t, append([]string{"--db", "postgres://kb:hunter2@db.example/kb"}, base...), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range c.redacted() {
		if s, ok := v.(string); ok && strings.Contains(s, "hunter2") {
			t.Errorf("configuration log shows the database password: %q", s)
		}
	}
}

// TestServePostgres runs "koobridge serve --db postgres://…" on a fresh
// schema: it migrates, answers /readyz from the database, stores a call's
// instance there, and never logs the database password.
func TestServePostgres(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	// Trust authentication ignores the password; it is there to be hidden.
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const password = "pg-pa55w0rd-hidden"
	u.User = url.UserPassword(u.User.Username(), password)
	withPassword := u.String()

	const key = "serve-postgres-key"
	p := startServe(t, "--listen", "127.0.0.1:0", "--db", withPassword, "--db-max-conns", "4", "--job-lease", "10s",
		"--key", key, "--data-key", testDataKey, "--dev")
	if code, body := httpGet(t, p.base+"/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	r := call(t, p.base, key, newInstanceBody("CSPG001"))
	if r.ResultCode != "000000" || r.InstanceID == "" {
		t.Fatalf("newInstance = %+v", r)
	}
	if again := call(t, p.base, key, newInstanceBody("CSPG001")); again.InstanceID != r.InstanceID {
		t.Errorf("repeated newInstance answered instance %q, want %q", again.InstanceID, r.InstanceID)
	}

	st, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	in, err := st.InstanceByOrderLine(context.Background(), "CSPG001", "CSPG001-000001")
	if err != nil || in.ID != r.InstanceID {
		t.Errorf("instance in PostgreSQL = %+v, %v; want %s", in, err, r.InstanceID)
	}
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
	if out := p.output(); strings.Contains(out, password) {
		t.Errorf("the log shows the database password:\n%s", out)
	} else if !strings.Contains(out, `"db_max_conns":4`) {
		t.Errorf("configuration line lacks the pool size:\n%s", out)
	}
}
