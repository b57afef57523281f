// Package store opens koobridge's database. A vendor who embeds koobridge
// in a Go program of their own opens it here and hands the *DB to package
// isv; the koobridge command opens its database the same way.
//
// Two databases are supported, chosen by the data source name given to
// Open:
//
//   - PostgreSQL, for a postgres:// or postgresql:// URL
//     ("postgres://koobridge:secret@db.example:5432/koobridge?sslmode=require").
//     Several koobridge replicas may share one database.
//   - SQLite, for anything else: a file path ("/var/lib/koobridge/kb.db"),
//     "sqlite:path", "sqlite:///abs/path" or an SQLite URI ("file:kb.db?…").
//     One file; several processes on one machine may share it.
//
// Open creates the schema, or upgrades it to the one this version of
// koobridge needs, before it returns.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/postgres"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

// DB is an open koobridge database, to hand to isv.Config.DB. It is safe
// for concurrent use. It is an alias of a type internal to koobridge, so
// the documentation tools do not list its methods here; they are:
//
//	// Ping checks that the database answers (for a readiness probe).
//	func (d *DB) Ping(ctx context.Context) error
//	// Close closes the database; a second Close does nothing more.
//	func (d *DB) Close() error
//
// Nothing else of it is public: koobridge's own packages reach the tables
// behind it, whose interfaces may change from one version to the next.
type DB = store.DB

// DefaultOpTimeout is how long one database operation (a whole transaction
// included) may take unless WithOpTimeout says otherwise.
const DefaultOpTimeout = store.DefaultOpTimeout

// Option changes a setting of the database Open opens.
type Option func(*config)

// config collects the options of each dialect.
type config struct {
	sqlite   []sqlite.Option
	postgres []postgres.Option
}

// WithOpTimeout bounds every database operation — one statement, or a
// whole transaction — by d (default DefaultOpTimeout). An operation that
// gets no answer within d fails as unavailable, so KooGallery is answered
// "try again" instead of waiting on a database that stopped answering.
// Non-positive values are ignored. It applies to both databases.
func WithOpTimeout(d time.Duration) Option {
	return func(c *config) {
		c.sqlite = append(c.sqlite, sqlite.WithOpTimeout(d))
		c.postgres = append(c.postgres, postgres.WithOpTimeout(d))
	}
}

// WithMaxConns sets the most connections the PostgreSQL pool opens
// (default 10); pool_max_conns in the DSN wins over it. Values below 1 are
// ignored. SQLite ignores this option.
func WithMaxConns(n int) Option {
	return func(c *config) { c.postgres = append(c.postgres, postgres.WithMaxConns(n)) }
}

// WithMinConns sets how many connections the PostgreSQL pool keeps open
// even when idle (default 0); pool_min_conns in the DSN wins over it.
// Negative values are ignored, and Open fails if it exceeds the maximum.
// SQLite ignores this option.
func WithMinConns(n int) Option {
	return func(c *config) { c.postgres = append(c.postgres, postgres.WithMinConns(n)) }
}

// WithMaxConnLifetime sets how long a PostgreSQL connection is used before
// the pool replaces it (default 30 minutes); pool_max_conn_lifetime in the
// DSN wins over it. Non-positive values are ignored. SQLite ignores this
// option.
func WithMaxConnLifetime(d time.Duration) Option {
	return func(c *config) { c.postgres = append(c.postgres, postgres.WithMaxConnLifetime(d)) }
}

// Open opens the database named by dsn — PostgreSQL when IsPostgres(dsn),
// SQLite otherwise — and creates or upgrades its schema. A dsn that
// CheckDSN refuses is refused with the same error. An SQLite file is
// created if missing (its directory must exist). When the database cannot
// be reached, Open fails; its errors never contain a password.
//
// Close the DB when done with it.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	if err := CheckDSN(dsn); err != nil {
		return nil, err
	}
	var c config
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if IsPostgres(dsn) {
		s, err := postgres.Open(ctx, dsn, c.postgres...)
		if err != nil {
			return nil, err
		}
		return store.NewDB(s), nil
	}
	s, err := sqlite.Open(ctx, dsn, c.sqlite...)
	if err != nil {
		return nil, err
	}
	return store.NewDB(s), nil
}

// IsPostgres reports whether dsn names a PostgreSQL database: a URL that
// starts with postgres:// or postgresql://. Open opens every other dsn as
// SQLite.
func IsPostgres(dsn string) bool {
	return postgres.IsDSN(dsn)
}

// CheckDSN reports whether Open would accept dsn, without opening
// anything: a parsable PostgreSQL URL (pool_* parameters included), or an
// SQLite file. It refuses an empty dsn, in-memory SQLite (every pooled
// connection would see its own empty database), a URL of any other
// database and malformed parameters. Its errors never contain a password.
func CheckDSN(dsn string) error {
	switch {
	case dsn == "":
		return errors.New("store: no database given: want an SQLite path or a postgres:// URL")
	case IsPostgres(dsn):
		return postgres.CheckDSN(dsn)
	case strings.Contains(dsn, ":memory:"):
		return errors.New("store: in-memory SQLite is not supported; give a file path")
	case strings.Contains(dsn, "://") && !isSQLiteURL(dsn):
		return fmt.Errorf("store: unsupported database URL %q (want an SQLite path or sqlite: URL, or a postgres:// URL)", urlForMessage(dsn))
	}
	return sqlite.CheckDSN(dsn)
}

// isSQLiteURL reports whether dsn is one of the URL forms of an SQLite
// file.
func isSQLiteURL(dsn string) bool {
	return strings.HasPrefix(dsn, "sqlite://") || strings.HasPrefix(dsn, "file:")
}

// otherUserInfo finds the password of a URL of another scheme, for when
// the URL does not parse.
var otherUserInfo = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*):[^@/]*@`)

// RedactDSN returns dsn fit for logs and messages: a PostgreSQL URL or
// keyword/value string with its passwords replaced by "xxxxx". An SQLite
// path is returned unchanged. The password of a URL of another database
// (which Open refuses) is replaced too.
func RedactDSN(dsn string) string {
	switch {
	case IsPostgres(dsn):
		return postgres.RedactDSN(dsn)
	case !strings.Contains(dsn, "://") || isSQLiteURL(dsn):
		return dsn
	}
	if u, err := url.Parse(dsn); err == nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		return dsn
	}
	return otherUserInfo.ReplaceAllString(dsn, "$1:xxxxx@")
}

// urlForMessage shows a URL Open refuses by its scheme, host and path
// only: its user information and parameters may hold secrets.
func urlForMessage(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
