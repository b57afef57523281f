package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

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
	var id int64
	err = s.q.QueryRow(ctx, `INSERT INTO calls (request_id, interface, activity, idem_key, instance_id,
		order_id, order_line_id, tenant_id, test, remote, request, response, result_code, result_msg,
		http_status, latency_ms, latency_us, repeat, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		RETURNING id`,
		txt(c.RequestID), txt(c.Interface), txt(c.Activity), txt(c.IdemKey), txt(c.InstanceID),
		txt(c.OrderID), txt(c.OrderLineID), txt(c.TenantID), c.Test, txt(c.Remote), txt(c.Request), txt(c.Response), txt(c.ResultCode), txt(c.ResultMsg),
		c.HTTPStatus, c.Latency.Milliseconds(), c.Latency.Microseconds(), c.Repeat, ts(or(c.CreatedAt, time.Now()))).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("postgres: insert call: %w", mapErr(ctx, err))
	}
	return id, nil
}

// InsertCalls appends calls to the ledger in one statement, in order:
// the columns go as arrays and unnest makes them rows, so one prepared
// statement serves any number of calls. Zero CreatedAt values are set to
// now.
func (s *Store) InsertCalls(ctx context.Context, calls []store.Call) (err error) {
	if len(calls) == 0 {
		return nil
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	n := len(calls)
	var (
		texts    [13][]string // the text columns, in the order of the statement
		tests    = make([]bool, n)
		statuses = make([]int32, n)
		msVals   = make([]int64, n)
		usVals   = make([]int64, n)
		repeats  = make([]bool, n)
		created  = make([]time.Time, n)
	)
	for i := range texts {
		texts[i] = make([]string, n)
	}
	now := time.Now()
	for i, c := range calls {
		for j, v := range [13]string{c.RequestID, c.Interface, c.Activity, c.IdemKey, c.InstanceID,
			c.OrderID, c.OrderLineID, c.TenantID, c.Remote, c.Request, c.Response, c.ResultCode, c.ResultMsg} {
			texts[j][i] = txt(v)
		}
		tests[i], statuses[i], repeats[i] = c.Test, int32(c.HTTPStatus), c.Repeat
		msVals[i], usVals[i] = c.Latency.Milliseconds(), c.Latency.Microseconds()
		created[i] = or(c.CreatedAt, now).Truncate(time.Millisecond).UTC() // as ts stores it
	}
	_, err = s.q.Exec(ctx, `INSERT INTO calls (request_id, interface, activity, idem_key, instance_id,
		order_id, order_line_id, tenant_id, remote, request, response, result_code, result_msg,
		test, http_status, latency_ms, latency_us, repeat, created_at)
		SELECT request_id, interface, activity, idem_key, instance_id,
			order_id, order_line_id, tenant_id, remote, request, response, result_code, result_msg,
			test, http_status, latency_ms, latency_us, repeat, created_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
			$6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
			$14::boolean[], $15::integer[], $16::bigint[], $17::bigint[], $18::boolean[], $19::timestamptz[])
		WITH ORDINALITY AS c (request_id, interface, activity, idem_key, instance_id,
			order_id, order_line_id, tenant_id, remote, request, response, result_code, result_msg,
			test, http_status, latency_ms, latency_us, repeat, created_at, n)
		ORDER BY n`,
		texts[0], texts[1], texts[2], texts[3], texts[4], texts[5], texts[6], texts[7], texts[8], texts[9],
		texts[10], texts[11], texts[12], tests, statuses, msVals, usVals, repeats, created)
	if err != nil {
		return fmt.Errorf("postgres: insert calls: %w", mapErr(ctx, err))
	}
	return nil
}

// Calls lists calls matching f, newest (highest ID) first. Since is
// inclusive and Until exclusive.
func (s *Store) Calls(ctx context.Context, f store.CallFilter) (_ []store.Call, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	query, args := callsQuery(f)
	return queryAll(ctx, s.q, "list calls", query, args, scanCall)
}

// callListColumns are the columns scanCall reads, in its order.
const callListColumns = `id, request_id, interface, activity, idem_key, instance_id, order_id, order_line_id,
	tenant_id, test, remote, request, response, result_code, result_msg, http_status, ` + latencyUS + `, repeat, created_at`

// callsQuery is Calls' query and its arguments, as the SQLite store's.
//
// A filter by a result code other than store.SuccessCode also holds
// store.UnsuccessfulCallSQL, the condition of the partial index by result
// code (schema version 10), written out so that a generic plan may use it
// too; not with an instance, order or tenant, whose own index finds fewer
// calls.
//
// A time window (both bounds) takes its page's ids from
// calls_created_at_id (schema version 10) and sorts those alone, then
// reads the page's rows by id. The OFFSET 0 keeps the planner from
// walking the primary key backwards to the window instead, as it would
// for a LIMIT, expecting the window's calls spread over the whole ledger:
// a window of long ago then read every newer call (175 ms at a million
// calls for a day 45 days back, against 2 ms). The cost is the window's
// size either way, a window that ends now included.
func callsQuery(f store.CallFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Activity != "" {
		add(`activity = ?`, txt(f.Activity))
	}
	if f.InstanceID != "" {
		add(`instance_id = ?`, txt(f.InstanceID))
	}
	if f.OrderID != "" {
		add(`order_id = ?`, txt(f.OrderID))
	}
	if f.TenantID != "" {
		add(`tenant_id = ?`, txt(f.TenantID))
	}
	if f.ResultCode != "" {
		add(`result_code = ?`, txt(f.ResultCode))
		if f.ResultCode != store.SuccessCode && f.InstanceID == "" && f.OrderID == "" && f.TenantID == "" {
			where = append(where, store.UnsuccessfulCallSQL)
		}
	}
	if !f.Since.IsZero() {
		add(`created_at >= ?`, ts(f.Since))
	}
	if !f.Until.IsZero() {
		add(`created_at < ?`, ts(f.Until))
	}
	if f.BeforeID > 0 {
		add(`id < ?`, f.BeforeID)
	}
	cond := ``
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, ` AND `)
	}
	args = append(args, limit(f.Limit))
	lim := `$` + strconv.Itoa(len(args))
	if f.Since.IsZero() || f.Until.IsZero() {
		return `SELECT ` + callListColumns + ` FROM calls` + cond + ` ORDER BY id DESC LIMIT ` + lim, args
	}
	return `SELECT ` + callListColumns + ` FROM calls WHERE id IN
		(SELECT id FROM (SELECT id FROM calls` + cond + ` OFFSET 0) AS w ORDER BY id DESC LIMIT ` + lim + `)
		ORDER BY id DESC`, args
}

// scanCall reads one calls row, in the column order of Calls' query.
func scanCall(row pgx.Row) (store.Call, error) {
	var (
		c       store.Call
		lat     int64
		created *time.Time
	)
	if err := row.Scan(&c.ID, &c.RequestID, &c.Interface, &c.Activity, &c.IdemKey, &c.InstanceID,
		&c.OrderID, &c.OrderLineID, &c.TenantID, &c.Test, &c.Remote, &c.Request, &c.Response, &c.ResultCode,
		&c.ResultMsg, &c.HTTPStatus, &lat, &c.Repeat, &created); err != nil {
		return c, err
	}
	c.Latency = time.Duration(lat) * time.Microsecond
	c.CreatedAt = fromTS(created)
	return c, nil
}
