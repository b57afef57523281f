package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier is what a transaction and the pool (through poolQuerier) have in
// common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// poolQuerier runs each statement on a connection taken from the pool with
// the store's acquire timeout (pgxpool itself would wait for a free
// connection as long as the context allows).
type poolQuerier struct{ s *Store }

func (p poolQuerier) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	conn, err := p.s.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer conn.Release()
	return conn.Exec(ctx, sql, args...)
}

func (p poolQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	conn, err := p.s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		conn.Release()
		return nil, err
	}
	return &connRows{Rows: rows, conn: conn}, nil
}

func (p poolQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	conn, err := p.s.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return &connRow{row: conn.QueryRow(ctx, sql, args...), conn: conn}
}

// connRows releases its connection when the rows are closed.
type connRows struct {
	pgx.Rows
	conn *pgxpool.Conn
}

func (r *connRows) Close() {
	r.Rows.Close()
	if r.conn != nil {
		r.conn.Release()
		r.conn = nil
	}
}

// connRow releases its connection once scanned.
type connRow struct {
	row  pgx.Row
	conn *pgxpool.Conn
}

func (r *connRow) Scan(dest ...any) error {
	defer r.conn.Release()
	return r.row.Scan(dest...)
}

// errRow is a row whose query could not run.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// ts is how a time is stored: nil (NULL) for the zero time, otherwise the
// instant with millisecond precision, the precision every store keeps.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Truncate(time.Millisecond).UTC()
}

// fromTS reverses ts.
func fromTS(t *time.Time) time.Time {
	if t == nil || t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// or returns t, or now when t is zero (a time the caller left unset).
func or(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

// txt makes s storable as PostgreSQL text, which holds neither NUL bytes
// nor invalid UTF-8 (SQLite holds both): they become U+FFFD. Text that
// needs no change, nearly all of it, is returned as is.
func txt(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// limit applies the listing default (100) and cap (1000).
func limit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// queryAll runs a listing query on q and scans every row with scan.
func queryAll[T any](ctx context.Context, q querier, what, query string, args []any, scan func(pgx.Row) (T, error)) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, mapErr(ctx, err))
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", what, mapErr(ctx, err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, mapErr(ctx, err))
	}
	return out, nil
}
