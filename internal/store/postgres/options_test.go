package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/koobridge/koobridge/internal/store"
)

func TestPoolConfig(t *testing.T) {
	const base = "postgres://u@db.example:5432/kb?sslmode=disable"
	tests := []struct {
		name           string
		dsn            string
		opts           []Option
		maxConns       int32
		minConns       int32
		lifetime, idle time.Duration
		connectTimeout time.Duration
		searchPath     string
		opTimeout      time.Duration // 0: DefaultOpTimeout
		wantErr        string
	}{
		{name: "defaults", dsn: base, maxConns: DefaultMaxConns, minConns: 0,
			lifetime: DefaultMaxConnLifetime, idle: DefaultMaxConnIdleTime, connectTimeout: DefaultConnectTimeout},
		{name: "options", dsn: base,
			opts:     []Option{WithMaxConns(25), WithMinConns(3), WithMaxConnLifetime(time.Hour), WithMaxConnIdleTime(time.Minute)},
			maxConns: 25, minConns: 3, lifetime: time.Hour, idle: time.Minute, connectTimeout: DefaultConnectTimeout},
		{name: "DSN wins over options",
			dsn:      base + "&pool_max_conns=7&pool_min_conns=1&pool_max_conn_lifetime=10m&pool_max_conn_idle_time=20s&connect_timeout=2",
			opts:     []Option{WithMaxConns(25), WithMinConns(3), WithMaxConnLifetime(time.Hour), WithMaxConnIdleTime(time.Minute)},
			maxConns: 7, minConns: 1, lifetime: 10 * time.Minute, idle: 20 * time.Second, connectTimeout: 2 * time.Second},
		{name: "DSN sets some", dsn: base + "&pool_max_conns=3", opts: []Option{WithMaxConns(25), WithMinConns(2)},
			maxConns: 3, minConns: 2, lifetime: DefaultMaxConnLifetime, idle: DefaultMaxConnIdleTime, connectTimeout: DefaultConnectTimeout},
		{name: "keyword/value DSN", dsn: "host=db.example user=u dbname=kb pool_max_conns=4 search_path=kb",
			maxConns: 4, lifetime: DefaultMaxConnLifetime, idle: DefaultMaxConnIdleTime, connectTimeout: DefaultConnectTimeout, searchPath: "kb"},
		{name: "search path option wins", dsn: base + "&search_path=other", opts: []Option{WithSearchPath("mine")},
			maxConns: DefaultMaxConns, lifetime: DefaultMaxConnLifetime, idle: DefaultMaxConnIdleTime,
			connectTimeout: DefaultConnectTimeout, searchPath: "mine"},
		{name: "operation timeout", dsn: base, opts: []Option{WithOpTimeout(3 * time.Second)},
			maxConns: DefaultMaxConns, lifetime: DefaultMaxConnLifetime, idle: DefaultMaxConnIdleTime,
			connectTimeout: DefaultConnectTimeout, opTimeout: 3 * time.Second},
		{name: "invalid values ignored", dsn: base,
			opts:     []Option{WithMaxConns(0), WithMinConns(-1), WithMaxConnLifetime(-time.Second), WithOpTimeout(0), WithOpTimeout(-time.Second)},
			maxConns: DefaultMaxConns, lifetime: DefaultMaxConnLifetime, idle: DefaultMaxConnIdleTime, connectTimeout: DefaultConnectTimeout},
		{name: "min above max", dsn: base, opts: []Option{WithMaxConns(2), WithMinConns(5)}, wantErr: "exceed"},
		{name: "bad pool parameter", dsn: base + "&pool_max_conns=lots", wantErr: "invalid DSN"},
		{name: "unparsable", dsn: "postgres://u:pw@[::1", wantErr: "invalid DSN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, o, err := poolConfig(tc.dsn, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("poolConfig = %v; want error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "pw@") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("poolConfig: %v", err)
			}
			if cfg.MaxConns != tc.maxConns || cfg.MinConns != tc.minConns || cfg.MaxConnLifetime != tc.lifetime ||
				cfg.MaxConnIdleTime != tc.idle || cfg.ConnConfig.ConnectTimeout != tc.connectTimeout {
				t.Errorf("pool max %d min %d lifetime %v idle %v connect timeout %v; want %d %d %v %v %v",
					cfg.MaxConns, cfg.MinConns, cfg.MaxConnLifetime, cfg.MaxConnIdleTime, cfg.ConnConfig.ConnectTimeout,
					tc.maxConns, tc.minConns, tc.lifetime, tc.idle, tc.connectTimeout)
			}
			if got := cfg.ConnConfig.RuntimeParams["search_path"]; got != tc.searchPath {
				t.Errorf("search_path %q, want %q", got, tc.searchPath)
			}
			for k := range cfg.ConnConfig.RuntimeParams {
				if strings.HasPrefix(k, "pool_") {
					t.Errorf("pool parameter %s sent to the server", k)
				}
			}
			if o.acquireTimeout != DefaultAcquireTimeout {
				t.Errorf("acquire timeout %v, want %v", o.acquireTimeout, DefaultAcquireTimeout)
			}
			wantOp := tc.opTimeout
			if wantOp == 0 {
				wantOp = store.DefaultOpTimeout
			}
			if o.opTimeout != wantOp {
				t.Errorf("operation timeout %v, want %v", o.opTimeout, wantOp)
			}
		})
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=require", "postgres://u:xxxxx@h:5432/db?sslmode=require"},
		{"postgresql://u@h/db", "postgresql://u@h/db"},
		{"postgres://u@h/db?password=secret&sslmode=disable", "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgres://u:secret@h/db?sslpassword=keypw", "postgres://u:xxxxx@h/db?sslpassword=xxxxx"},
		{"host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password='se cret' dbname=db", "host=h password=xxxxx dbname=db"},
		{"postgres://u:secret@[::1", "postgres://u:xxxxx@[::1"},
	}
	for _, tc := range tests {
		if got := RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMapErr(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	tests := []struct {
		name        string
		ctx         context.Context
		err         error
		unavailable bool
		connLoss    bool
		retryable   bool
	}{
		{"connection failure class 08", live, pg("08006"), true, true, false},
		{"admin shutdown", live, pg("57P01"), true, true, false},
		{"crash shutdown", live, pg("57P02"), true, true, false},
		{"cannot connect now", live, pg("57P03"), true, true, false},
		{"too many connections", live, pg("53300"), true, true, false},
		{"disk full", live, pg("53100"), true, false, false},
		{"out of memory", live, pg("53200"), true, false, false},
		{"I/O error", live, pg("58030"), true, false, false},
		{"read-only server after a failover", live, pg("25006"), true, false, false},
		{"database dropped", live, pg("57P04"), true, false, false},
		{"serialization failure", live, pg("40001"), true, false, true},
		{"deadlock", live, pg("40P01"), true, false, true},
		{"unique violation", live, pg("23505"), false, false, false},
		{"syntax error", live, pg("42601"), false, false, false},
		{"connection refused", live, fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true, true, false},
		{"connection reset", live, fmt.Errorf("read: %w", syscall.ECONNRESET), true, true, false},
		{"unexpected EOF", live, io.ErrUnexpectedEOF, true, true, false},
		{"conn closed", live, fmt.Errorf("x: %w", pgconn.ErrConnClosed), true, true, false},
		{"caller canceled", canceled, context.Canceled, false, false, false},
		{"plain error", live, errors.New("boom"), false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mapErr(tc.ctx, tc.err)
			if errors.Is(got, store.ErrUnavailable) != tc.unavailable {
				t.Errorf("mapErr = %v; unavailable %v, want %v", got, !tc.unavailable, tc.unavailable)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("mapErr = %v lost the original error", got)
			}
			if isConnLoss(tc.err) != tc.connLoss || isRetryable(tc.err) != tc.retryable {
				t.Errorf("isConnLoss %v isRetryable %v, want %v %v", isConnLoss(tc.err), isRetryable(tc.err), tc.connLoss, tc.retryable)
			}
		})
	}
	if mapErr(live, nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}

func TestTxt(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"plain 中文 😀":       "plain 中文 😀",
		"a\x00b":           "a\uFFFDb",
		"bad \xff\xfe end": "bad \uFFFD end",
	} {
		if got := txt(in); got != want {
			t.Errorf("txt(%q) = %q, want %q", in, got, want)
		}
	}
}
