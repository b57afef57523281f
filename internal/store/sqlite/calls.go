package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// latencyUS reads a call's latency in microseconds: latency_us where it
// agrees with latency_ms (this version wrote both), else latency_ms: a row
// from before migration 7, which left rows as they were, or one an older
// binary wrote after it.
const latencyUS = `CASE WHEN latency_us / 1000 = latency_ms THEN latency_us ELSE latency_ms * 1000 END`

// InsertCall appends c to the ledger and returns its ID. A zero CreatedAt
// is set to now; Latency is stored in microseconds, and in whole
// milliseconds for older binaries.
func (s *Store) InsertCall(ctx context.Context, c store.Call) (_ int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `INSERT INTO calls (request_id, interface, activity, idem_key, instance_id,
		order_id, order_line_id, tenant_id, test, remote, request, response, result_code, result_msg,
		http_status, latency_ms, latency_us, repeat, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.RequestID, c.Interface, c.Activity, c.IdemKey, c.InstanceID,
		c.OrderID, c.OrderLineID, c.TenantID, boolInt(c.Test), c.Remote, c.Request, c.Response, c.ResultCode, c.ResultMsg,
		c.HTTPStatus, c.Latency.Milliseconds(), c.Latency.Microseconds(), boolInt(c.Repeat), ms(or(c.CreatedAt, time.Now())))
	if err != nil {
		return 0, fmt.Errorf("sqlite: insert call: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("sqlite: insert call: %w", mapErr(err))
	}
	return id, nil
}

// callColumns are the columns InsertCall and InsertCalls write.
const callColumns = `request_id, interface, activity, idem_key, instance_id,
	order_id, order_line_id, tenant_id, test, remote, request, response, result_code, result_msg,
	http_status, latency_ms, latency_us, repeat, created_at`

// callRow is one row of VALUES for callColumns.
const callRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// maxCallRows is the most rows one INSERT of InsertCalls takes. Rows go in
// statements of 32, 16, 8, 4, 2 and 1 rows, so that the statement cache
// holds six texts, not one per count.
const maxCallRows = 32

// InsertCalls appends calls to the ledger in one transaction (in the
// writer's batch), in order; zero CreatedAt values are set to now.
func (s *Store) InsertCalls(ctx context.Context, calls []store.Call) (err error) {
	if len(calls) == 0 {
		return nil
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	now := time.Now()
	err = s.run(ctx, len(calls) <= maxCallRows && len(calls)&(len(calls)-1) == 0, func(ctx context.Context, t *cachedTx) error {
		for rest := calls; len(rest) > 0; {
			n := maxCallRows
			for n > len(rest) {
				n /= 2
			}
			args := make([]any, 0, 19*n)
			for _, c := range rest[:n] {
				args = append(args, c.RequestID, c.Interface, c.Activity, c.IdemKey, c.InstanceID,
					c.OrderID, c.OrderLineID, c.TenantID, boolInt(c.Test), c.Remote, c.Request, c.Response, c.ResultCode, c.ResultMsg,
					c.HTTPStatus, c.Latency.Milliseconds(), c.Latency.Microseconds(), boolInt(c.Repeat), ms(or(c.CreatedAt, now)))
			}
			if _, err := t.ExecContext(ctx, `INSERT INTO calls (`+callColumns+`) VALUES `+
				strings.Repeat(callRow+`, `, n-1)+callRow, args...); err != nil {
				return mapErr(err)
			}
			rest = rest[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: insert calls: %w", err)
	}
	return nil
}

// Calls lists calls matching f, newest (highest ID) first. Since is
// inclusive and Until exclusive.
func (s *Store) Calls(ctx context.Context, f store.CallFilter) (_ []store.Call, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	query, args := callsQuery(f)
	return queryAll(ctx, s.db, "list calls", query, args, scanCall)
}

// callListColumns are the columns scanCall reads, in its order.
const callListColumns = `id, request_id, interface, activity, idem_key, instance_id, order_id, order_line_id,
	tenant_id, test, remote, request, response, result_code, result_msg, http_status, ` + latencyUS + `, repeat, created_at`

// callsQuery is Calls' query and its arguments.
//
// A filter by a result code other than store.SuccessCode also holds
// store.UnsuccessfulCallSQL, so that SQLite may walk the partial index
// by result code (schema version 10) backwards; one by store.SuccessCode
// walks the primary key, most calls matching. With an instance, order or
// tenant, whose own index finds fewer calls, it holds no such term and
// SQLite, which has no statistics to tell, cannot take the code's index
// instead.
//
// A time window (both bounds) has no index in id order: calls_created_at
// finds the window's calls, which must then be sorted by id. The sort
// takes only their ids, read from that index, and the page's rows are
// read after, by id: sorting whole rows read every row of the window
// from the table (at a million calls, 300 ms for a window of 110,000
// calls, against 30 ms for their ids). The cost is still the window's
// size; ordering by time instead would change the paging (before is an
// id). With one bound SQLite walks the primary key, newest first.
func callsQuery(f store.CallFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Activity != "" {
		add(`activity = ?`, f.Activity)
	}
	if f.InstanceID != "" {
		add(`instance_id = ?`, f.InstanceID)
	}
	if f.OrderID != "" {
		add(`order_id = ?`, f.OrderID)
	}
	if f.TenantID != "" {
		add(`tenant_id = ?`, f.TenantID)
	}
	if f.ResultCode != "" {
		add(`result_code = ?`, f.ResultCode)
		if f.ResultCode != store.SuccessCode && f.InstanceID == "" && f.OrderID == "" && f.TenantID == "" {
			where = append(where, store.UnsuccessfulCallSQL)
		}
	}
	if !f.Since.IsZero() {
		add(`created_at >= ?`, ms(f.Since))
	}
	if !f.Until.IsZero() {
		add(`created_at < ?`, ms(f.Until))
	}
	if f.BeforeID > 0 {
		add(`id < ?`, f.BeforeID)
	}
	cond := ``
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, ` AND `)
	}
	args = append(args, limit(f.Limit))
	if f.Since.IsZero() || f.Until.IsZero() {
		return `SELECT ` + callListColumns + ` FROM calls` + cond + ` ORDER BY id DESC LIMIT ?`, args
	}
	return `SELECT ` + callListColumns + ` FROM calls WHERE id IN
		(SELECT id FROM calls` + cond + ` ORDER BY id DESC LIMIT ?) ORDER BY id DESC`, args
}

// scanCall reads one calls row, in the column order of Calls' query.
func scanCall(sc scanner) (store.Call, error) {
	var (
		c                          store.Call
		test, repeat, lat, created int64
	)
	if err := sc.Scan(&c.ID, &c.RequestID, &c.Interface, &c.Activity, &c.IdemKey, &c.InstanceID,
		&c.OrderID, &c.OrderLineID, &c.TenantID, &test, &c.Remote, &c.Request, &c.Response, &c.ResultCode,
		&c.ResultMsg, &c.HTTPStatus, &lat, &repeat, &created); err != nil {
		return c, err
	}
	c.Test = test != 0
	c.Repeat = repeat != 0
	c.Latency = time.Duration(lat) * time.Microsecond
	c.CreatedAt = fromMS(created)
	return c, nil
}
