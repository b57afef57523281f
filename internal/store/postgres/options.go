package postgres

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/koobridge/koobridge/internal/store"
)

// Defaults of the pool, used unless an Option or the DSN sets them.
const (
	DefaultMaxConns        = 10
	DefaultMinConns        = 0
	DefaultMaxConnLifetime = 30 * time.Minute
	DefaultMaxConnIdleTime = 5 * time.Minute
	DefaultAcquireTimeout  = 5 * time.Second
	DefaultConnectTimeout  = 5 * time.Second
	// DefaultOpTimeout bounds every operation of the store (a whole Tx
	// included) unless WithOpTimeout says otherwise.
	DefaultOpTimeout = store.DefaultOpTimeout
)

// Option changes a setting of the store.
type Option func(*options)

type options struct {
	maxConns        int32
	minConns        int32
	maxConnLifetime time.Duration
	maxConnIdleTime time.Duration
	acquireTimeout  time.Duration
	opTimeout       time.Duration
	runtimeParams   map[string]string
}

// WithMaxConns sets the pool's maximum number of connections (default
// DefaultMaxConns); the DSN's pool_max_conns wins over it. Values below 1
// are ignored.
func WithMaxConns(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.maxConns = int32(min(n, 1<<20))
		}
	}
}

// WithMinConns sets how many connections the pool keeps open even when
// idle (default 0); the DSN's pool_min_conns wins over it. Negative values
// are ignored.
func WithMinConns(n int) Option {
	return func(o *options) {
		if n >= 0 {
			o.minConns = int32(min(n, 1<<20))
		}
	}
}

// WithMaxConnLifetime sets how long a connection is used before the pool
// replaces it (default DefaultMaxConnLifetime); the DSN's
// pool_max_conn_lifetime wins over it. Non-positive values are ignored.
func WithMaxConnLifetime(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.maxConnLifetime = d
		}
	}
}

// WithMaxConnIdleTime sets how long an idle connection is kept (default
// DefaultMaxConnIdleTime); the DSN's pool_max_conn_idle_time wins over it.
// Non-positive values are ignored.
func WithMaxConnIdleTime(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.maxConnIdleTime = d
		}
	}
}

// WithAcquireTimeout sets how long a statement waits for a free pooled
// connection before failing with store.ErrUnavailable (default
// DefaultAcquireTimeout). Non-positive values are ignored.
func WithAcquireTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.acquireTimeout = d
		}
	}
}

// WithOpTimeout bounds every operation of the store — one statement, a
// whole Tx with its function and its retries — by d (default
// DefaultOpTimeout): when d runs out before the caller's own deadline, the
// operation fails with an error wrapping store.ErrUnavailable. This is what
// turns a database that stops answering without closing the connection (a
// network that drops packets, a failover behind a virtual IP) into
// ErrUnavailable within seconds rather than when TCP gives up, minutes
// later. Non-positive values are ignored.
func WithOpTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.opTimeout = d
		}
	}
}

// WithSearchPath sets the search_path of every connection, so koobridge's
// tables live in the named schema (which must exist); it wins over a
// search_path in the DSN. Tests use it to give each test a schema.
func WithSearchPath(schema string) Option {
	return func(o *options) {
		if o.runtimeParams == nil {
			o.runtimeParams = map[string]string{}
		}
		o.runtimeParams["search_path"] = schema
	}
}

// poolConfig parses dsn and applies opts under the DSN's own pool
// settings. It returns the options too, for the settings that are the
// store's rather than the pool's (acquire and operation timeouts).
func poolConfig(dsn string, opts []Option) (*pgxpool.Config, options, error) {
	o := options{
		maxConns:        DefaultMaxConns,
		minConns:        DefaultMinConns,
		maxConnLifetime: DefaultMaxConnLifetime,
		maxConnIdleTime: DefaultMaxConnIdleTime,
		acquireTimeout:  DefaultAcquireTimeout,
		opTimeout:       DefaultOpTimeout,
	}
	for _, opt := range opts {
		opt(&o)
	}
	// pgx.ParseConfig keeps the pool_* parameters among the runtime
	// parameters, which tells which ones the DSN sets; pgxpool.ParseConfig
	// then consumes them.
	conn, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, o, parseError(err)
	}
	inDSN := conn.RuntimeParams
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, o, parseError(err)
	}
	if _, ok := inDSN["pool_max_conns"]; !ok {
		cfg.MaxConns = o.maxConns
	}
	if _, ok := inDSN["pool_min_conns"]; !ok {
		cfg.MinConns = o.minConns
	}
	if _, ok := inDSN["pool_max_conn_lifetime"]; !ok {
		cfg.MaxConnLifetime = o.maxConnLifetime
	}
	if _, ok := inDSN["pool_max_conn_idle_time"]; !ok {
		cfg.MaxConnIdleTime = o.maxConnIdleTime
	}
	if cfg.MinConns > cfg.MaxConns {
		return nil, o, fmt.Errorf("postgres: %d minimum connections exceed the maximum of %d", cfg.MinConns, cfg.MaxConns)
	}
	if _, ok := inDSN["connect_timeout"]; !ok && cfg.ConnConfig.ConnectTimeout == 0 {
		// Without a timeout a connection attempt to an unreachable host
		// hangs until the operating system gives up, minutes later.
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	for k, v := range o.runtimeParams {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "koobridge"
	}
	return cfg, o, nil
}

// CheckDSN reports whether dsn can be parsed, pool_* parameters
// included, without connecting. Its error does not contain the DSN.
func CheckDSN(dsn string) error {
	_, _, err := poolConfig(dsn, nil)
	return err
}

// parseError reports an unparsable DSN without the DSN, which may hold a
// password.
func parseError(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		if inner := pe.Unwrap(); inner != nil {
			return fmt.Errorf("postgres: invalid DSN: %s", RedactDSN(inner.Error()))
		}
		return errors.New("postgres: invalid DSN (not shown: it may hold a password)")
	}
	return fmt.Errorf("postgres: invalid DSN: %s", RedactDSN(err.Error()))
}

// IsDSN reports whether dsn names a PostgreSQL database: a postgres:// or
// postgresql:// URL.
func IsDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

var (
	kvPassword  = regexp.MustCompile(`(?i)\b((?:ssl)?password)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)
	urlUserInfo = regexp.MustCompile(`^(postgres(?:ql)?://[^:@/]*):[^@/]*@`)
)

// RedactDSN returns dsn with its passwords replaced by "xxxxx", for logs
// and error messages: the URL's user password and password or
// sslpassword parameters, in URL or keyword/value form.
func RedactDSN(dsn string) string {
	if IsDSN(dsn) {
		if u, err := url.Parse(dsn); err == nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
			q := u.Query()
			changed := false
			for _, k := range []string{"password", "sslpassword"} {
				if q.Has(k) {
					q.Set(k, "xxxxx")
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
		dsn = urlUserInfo.ReplaceAllString(dsn, "$1:xxxxx@")
	}
	return kvPassword.ReplaceAllString(dsn, "$1=xxxxx")
}
