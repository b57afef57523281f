package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// Pay-per-use metering (store.Usage, store.UsageTx). Batches of records,
// keys and periods go to SQLite as multi-row statements, in chunks that
// stay well under SQLite's limit of 32766 bound variables.

var (
	_ store.Usage   = (*Store)(nil)
	_ store.UsageTx = (*tx)(nil)
)

// usageChunk is how many rows (records, keys, periods) one statement
// carries: at most 9 variables a row, 9000 a statement.
const usageChunk = 1000

const usageRecordColumns = `id, idempotency_key, instance_id, value, time, period_start, carried, created_at`

func scanUsageRecord(sc scanner) (store.UsageRecord, error) {
	var (
		r                      store.UsageRecord
		t, start, carried, cre int64
	)
	if err := sc.Scan(&r.ID, &r.IdempotencyKey, &r.InstanceID, &r.Value, &t, &start, &carried, &cre); err != nil {
		return store.UsageRecord{}, err
	}
	r.Time = fromMS(t)
	r.PeriodStart = fromMS(start)
	r.Carried = carried != 0
	r.CreatedAt = fromMS(cre)
	return r, nil
}

const usagePeriodColumns = `id, instance_id, start, "end", total, records, state, metering_sn, push_id, code, message,
	created_at, updated_at`

func scanUsagePeriod(sc scanner) (store.UsagePeriod, error) {
	var (
		p                           store.UsagePeriod
		start, end, created, update int64
		state                       string
	)
	if err := sc.Scan(&p.ID, &p.InstanceID, &start, &end, &p.Total, &p.Records, &state, &p.MeteringSN, &p.PushID,
		&p.Code, &p.Message, &created, &update); err != nil {
		return store.UsagePeriod{}, err
	}
	p.Start = fromMS(start)
	p.End = fromMS(end)
	p.State = store.UsagePeriodState(state)
	p.CreatedAt = fromMS(created)
	p.UpdatedAt = fromMS(update)
	return p, nil
}

const usagePushColumns = `id, api, parent_id, body, records, state, attempts, code, message, created_at, updated_at`

func scanUsagePush(sc scanner) (store.UsagePush, error) {
	var (
		p               store.UsagePush
		created, update int64
		state           string
	)
	if err := sc.Scan(&p.ID, &p.API, &p.ParentID, &p.Body, &p.Records, &state, &p.Attempts, &p.Code, &p.Message,
		&created, &update); err != nil {
		return store.UsagePush{}, err
	}
	p.State = store.UsagePushState(state)
	p.CreatedAt = fromMS(created)
	p.UpdatedAt = fromMS(update)
	return p, nil
}

// usageAttemptColumns are the columns an attempt is written to: its
// duration in microseconds (duration_us), and in whole milliseconds
// (duration) for older binaries.
const usageAttemptColumns = `push_id, attempt, at, duration, duration_us, http_status, code, message`

// usageAttemptSelect reads an attempt, its duration in microseconds:
// duration_us where it agrees with duration, else the milliseconds (a row
// from before migration 7, or one an older binary wrote or rewrote).
const usageAttemptSelect = `push_id, attempt, at,
	CASE WHEN duration_us / 1000 = duration THEN duration_us ELSE duration * 1000 END, http_status, code, message`

func scanUsageAttempt(sc scanner) (store.UsagePushAttempt, error) {
	var (
		a       store.UsagePushAttempt
		at, dur int64
	)
	if err := sc.Scan(&a.PushID, &a.Attempt, &at, &dur, &a.HTTPStatus, &a.Code, &a.Message); err != nil {
		return store.UsagePushAttempt{}, err
	}
	a.At = fromMS(at)
	a.Duration = time.Duration(dur) * time.Microsecond
	return a, nil
}

const usageTotalColumns = `instance_id, total, records, last_time`

func scanUsageTotal(sc scanner) (store.UsageTotal, error) {
	var (
		t    store.UsageTotal
		last int64
	)
	if err := sc.Scan(&t.InstanceID, &t.Total, &t.Records, &last); err != nil {
		return store.UsageTotal{}, err
	}
	t.LastTime = fromMS(last)
	return t, nil
}

// marks returns n groups of the placeholder group g, comma-separated:
// marks(2, "(?, ?)") is "(?, ?), (?, ?)".
func marks(n int, g string) string {
	var b strings.Builder
	b.Grow(n * (len(g) + 2))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(g)
	}
	return b.String()
}

// maxPeriodTotal is store.MaxUsagePeriodTotal in SQL.
var maxPeriodTotal = strconv.FormatInt(store.MaxUsagePeriodTotal, 10)

// chunks calls fn with consecutive pieces of n items, each at most
// usageChunk long: fn(from, to) covers items[from:to].
func chunks(n int, fn func(from, to int) error) error {
	for from := 0; from < n; from += usageChunk {
		if err := fn(from, min(from+usageChunk, n)); err != nil {
			return err
		}
	}
	return nil
}

// UsagePush reads one push; store.ErrNotFound if absent.
func (s *Store) UsagePush(ctx context.Context, id int64) (_ store.UsagePush, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.UsagePush(ctx, id)
}

// UsagePush reads one push; store.ErrNotFound if absent.
func (r reader) UsagePush(ctx context.Context, id int64) (store.UsagePush, error) {
	return one(ctx, r.q, "read usage push", `SELECT `+usagePushColumns+` FROM usage_pushes WHERE id = ?`,
		scanUsagePush, id)
}

// UsagePeriodsOfPush lists the periods push id carries, by instance and
// start.
func (s *Store) UsagePeriodsOfPush(ctx context.Context, id int64) (_ []store.UsagePeriod, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.UsagePeriodsOfPush(ctx, id)
}

// UsagePeriodsOfPush lists the periods push id carries, by instance and
// start.
func (r reader) UsagePeriodsOfPush(ctx context.Context, id int64) ([]store.UsagePeriod, error) {
	return queryAll(ctx, r.q, "list periods of usage push", `SELECT `+usagePeriodColumns+` FROM usage_periods
		WHERE push_id = ? ORDER BY instance_id, start`, []any{id}, scanUsagePeriod)
}

// UsageRecordsByKey reads the records with the given idempotency keys;
// keys with no record are absent from the map.
func (s *Store) UsageRecordsByKey(ctx context.Context, keys []string) (_ map[string]store.UsageRecord, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.UsageRecordsByKey(ctx, keys)
}

// UsageRecordsByKey reads the records with the given idempotency keys;
// keys with no record are absent from the map. One query per 1000 keys.
func (r reader) UsageRecordsByKey(ctx context.Context, keys []string) (map[string]store.UsageRecord, error) {
	out := make(map[string]store.UsageRecord, len(keys))
	err := chunks(len(keys), func(from, to int) error {
		args := make([]any, 0, to-from)
		for _, k := range keys[from:to] {
			args = append(args, k)
		}
		recs, err := queryAll(ctx, r.q, "read usage records by key", `SELECT `+usageRecordColumns+`
			FROM usage_records WHERE idempotency_key IN (`+marks(to-from, "?")+`)`, args, scanUsageRecord)
		for _, rec := range recs {
			out[rec.IdempotencyKey] = rec
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UsagePeriod reads one period; store.ErrNotFound if absent.
func (s *Store) UsagePeriod(ctx context.Context, k store.UsagePeriodKey) (_ store.UsagePeriod, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.UsagePeriod(ctx, k)
}

// UsagePeriod reads one period; store.ErrNotFound if absent.
func (r reader) UsagePeriod(ctx context.Context, k store.UsagePeriodKey) (store.UsagePeriod, error) {
	return one(ctx, r.q, "read usage period", `SELECT `+usagePeriodColumns+` FROM usage_periods
		WHERE instance_id = ? AND start = ?`, scanUsagePeriod, k.InstanceID, ms(k.Start))
}

// UsagePeriods lists the periods matching f, newest (highest ID) first.
func (s *Store) UsagePeriods(ctx context.Context, f store.UsagePeriodFilter) (_ []store.UsagePeriod, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var (
		where []string
		args  []any
	)
	if f.InstanceID != "" {
		where = append(where, `instance_id = ?`)
		args = append(args, f.InstanceID)
	}
	if f.State != "" {
		where = append(where, `state = ?`)
		args = append(args, string(f.State))
	}
	if f.PushID != 0 {
		where = append(where, `push_id = ?`)
		args = append(args, f.PushID)
	}
	if f.BeforeID > 0 {
		where = append(where, `id < ?`)
		args = append(args, f.BeforeID)
	}
	query := `SELECT ` + usagePeriodColumns + ` FROM usage_periods`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(f.Limit))
	return queryAll(ctx, s.db, "list usage periods", query, args, scanUsagePeriod)
}

// UsageRecords lists the records matching f, newest (highest ID) first.
func (s *Store) UsageRecords(ctx context.Context, f store.UsageRecordFilter) (_ []store.UsageRecord, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var (
		where []string
		args  []any
	)
	if f.InstanceID != "" {
		where = append(where, `instance_id = ?`)
		args = append(args, f.InstanceID)
	}
	if !f.PeriodStart.IsZero() {
		where = append(where, `period_start = ?`)
		args = append(args, ms(f.PeriodStart))
	}
	if f.BeforeID > 0 {
		where = append(where, `id < ?`)
		args = append(args, f.BeforeID)
	}
	query := `SELECT ` + usageRecordColumns + ` FROM usage_records`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(f.Limit))
	return queryAll(ctx, s.db, "list usage records", query, args, scanUsageRecord)
}

// UsageTotals reads the totals of the given instances; instances without
// usage are absent from the map.
func (s *Store) UsageTotals(ctx context.Context, instanceIDs []string) (_ map[string]store.UsageTotal, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	out := make(map[string]store.UsageTotal, len(instanceIDs))
	err = chunks(len(instanceIDs), func(from, to int) error {
		args := make([]any, 0, to-from)
		for _, id := range instanceIDs[from:to] {
			args = append(args, id)
		}
		totals, err := queryAll(ctx, s.db, "read usage totals", `SELECT `+usageTotalColumns+` FROM usage_totals
			WHERE instance_id IN (`+marks(to-from, "?")+`)`, args, scanUsageTotal)
		for _, t := range totals {
			out[t.InstanceID] = t
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UsagePushes lists the pushes matching f, newest (highest ID) first.
func (s *Store) UsagePushes(ctx context.Context, f store.UsagePushFilter) (_ []store.UsagePush, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var (
		where []string
		args  []any
	)
	if f.State != "" {
		where = append(where, `state = ?`)
		args = append(args, string(f.State))
	}
	if f.BeforeID > 0 {
		where = append(where, `id < ?`)
		args = append(args, f.BeforeID)
	}
	query := `SELECT ` + usagePushColumns + ` FROM usage_pushes`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(f.Limit))
	return queryAll(ctx, s.db, "list usage pushes", query, args, scanUsagePush)
}

// UsagePushAttempts lists the attempts of push id, first first.
func (s *Store) UsagePushAttempts(ctx context.Context, id int64) (_ []store.UsagePushAttempt, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.db, "list usage push attempts", `SELECT `+usageAttemptSelect+` FROM usage_push_attempts
		WHERE push_id = ? ORDER BY attempt`, []any{id}, scanUsageAttempt)
}

// InsertUsagePushAttempt appends a (a zero At stored as now; an attempt
// number already recorded is replaced by a), and sets the push's Attempts
// to a.Attempt if that is more and its Code and Message to a's, in one
// transaction; store.ErrNotFound if the push is absent.
func (s *Store) InsertUsagePushAttempt(ctx context.Context, a store.UsagePushAttempt) error {
	return s.Tx(ctx, func(ctx context.Context, stx store.Tx) error {
		t := stx.(*tx)
		now := time.Now()
		res, err := t.tx.ExecContext(ctx, `UPDATE usage_pushes SET attempts = max(attempts, ?), code = ?, message = ?,
			updated_at = ? WHERE id = ?`, a.Attempt, a.Code, a.Message, ms(now), a.PushID)
		if err != nil {
			return fmt.Errorf("sqlite: insert usage push attempt: %w", mapErr(err))
		}
		if ok, err := inserted(res, "insert usage push attempt"); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("sqlite: insert usage push attempt: push %d: %w", a.PushID, store.ErrNotFound)
		}
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO usage_push_attempts (`+usageAttemptColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (push_id, attempt) DO UPDATE SET at = excluded.at, duration = excluded.duration, duration_us = excluded.duration_us,
				http_status = excluded.http_status, code = excluded.code, message = excluded.message`,
			a.PushID, a.Attempt, ms(or(a.At, now)), a.Duration.Milliseconds(), a.Duration.Microseconds(), a.HTTPStatus, a.Code, a.Message); err != nil {
			return fmt.Errorf("sqlite: insert usage push attempt: %w", mapErr(err))
		}
		return nil
	})
}

// UsagePeriodCounts counts the periods of each state, of one instance or,
// with instanceID "", of all. Only the periods are read (their indexes),
// never the records.
func (s *Store) UsagePeriodCounts(ctx context.Context, instanceID string) (_ map[store.UsagePeriodState]int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	query, args := `SELECT state, count(*) FROM usage_periods GROUP BY state`, []any(nil)
	if instanceID != "" {
		query, args = `SELECT state, count(*) FROM usage_periods WHERE instance_id = ? GROUP BY state`, []any{instanceID}
	}
	type count struct {
		state string
		n     int64
	}
	rows, err := queryAll(ctx, s.db, "count usage periods", query, args, func(sc scanner) (count, error) {
		var c count
		err := sc.Scan(&c.state, &c.n)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[store.UsagePeriodState]int64, len(rows))
	for _, c := range rows {
		out[store.UsagePeriodState(c.state)] = c.n
	}
	return out, nil
}

// OldestUnpushedUsage returns the End of the oldest period that is open
// or pushing; ok is false when there is none. Two probes of the index on
// (state, end), one per state.
func (s *Store) OldestUnpushedUsage(ctx context.Context) (_ time.Time, _ bool, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var oldest *int64
	err = s.db.QueryRowContext(ctx, `SELECT min(e) FROM (
			SELECT "end" AS e FROM (SELECT "end" FROM usage_periods WHERE state = ? ORDER BY "end" LIMIT 1)
			UNION ALL
			SELECT "end" FROM (SELECT "end" FROM usage_periods WHERE state = ? ORDER BY "end" LIMIT 1))`,
		string(store.UsageOpen), string(store.UsagePushing)).Scan(&oldest)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: oldest unpushed usage: %w", mapErr(err))
	}
	if oldest == nil {
		return time.Time{}, false, nil
	}
	return fromMS(*oldest), true, nil
}

// InsertUsageRecords inserts each record (ID ignored, zero CreatedAt
// stored as now) unless one with its IdempotencyKey exists, in multi-row
// INSERT … ON CONFLICT DO NOTHING statements whose RETURNING names the
// keys inserted. A key given twice in one call: the first occurrence is
// inserted (rows are inserted in order), the later ones report false.
// SQLite has one writer, so concurrent inserts of one key insert it once.
func (t *tx) InsertUsageRecords(ctx context.Context, recs []store.UsageRecord) ([]bool, error) {
	out := make([]bool, len(recs))
	first := make(map[string]int, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		first[recs[i].IdempotencyKey] = i
	}
	now := ms(time.Now())
	err := chunks(len(recs), func(from, to int) error {
		args := make([]any, 0, 7*(to-from))
		for _, r := range recs[from:to] {
			created := ms(r.CreatedAt)
			if created == 0 {
				created = now
			}
			args = append(args, r.IdempotencyKey, r.InstanceID, r.Value, ms(r.Time), ms(r.PeriodStart),
				boolInt(r.Carried), created)
		}
		rows, err := t.tx.QueryContext(ctx, `INSERT INTO usage_records (idempotency_key, instance_id, value, time,
			period_start, carried, created_at) VALUES `+marks(to-from, "(?, ?, ?, ?, ?, ?, ?)")+`
			ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key`, args...)
		if err != nil {
			return fmt.Errorf("sqlite: insert usage records: %w", mapErr(err))
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return fmt.Errorf("sqlite: insert usage records: %w", mapErr(err))
			}
			if i, ok := first[k]; ok {
				out[i] = true
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: insert usage records: %w", mapErr(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CarryUsageRecords bills the records with the given idempotency keys in
// the period starting at start, marking them Carried.
func (t *tx) CarryUsageRecords(ctx context.Context, keys []string, start time.Time) error {
	return chunks(len(keys), func(from, to int) error {
		args := make([]any, 0, 1+to-from)
		args = append(args, ms(start))
		for _, k := range keys[from:to] {
			args = append(args, k)
		}
		if _, err := t.tx.ExecContext(ctx, `UPDATE usage_records SET period_start = ?, carried = 1
			WHERE idempotency_key IN (`+marks(to-from, "?")+`)`, args...); err != nil {
			return fmt.Errorf("sqlite: carry usage records: %w", mapErr(err))
		}
		return nil
	})
}

// AddUsage adds p.Total and p.Records to the period (p.InstanceID,
// p.Start) if it is open or test, creating it (with p's End, MeteringSN
// and State, open when empty) if absent; ok is false, and nothing
// changes, when the period exists sealed. It is AddUsages of one.
func (t *tx) AddUsage(ctx context.Context, p store.UsagePeriod) (bool, error) {
	ok, err := t.AddUsages(ctx, []store.UsagePeriod{p})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

// periodKey is a period's key as stored.
type periodKey struct {
	instanceID string
	start      int64
}

// mergePeriods folds the entries of ps naming one period into one, in
// order of first appearance: at[i] is the index in merged of ps[i]. A
// period is created open or test only; an empty State is open.
func mergePeriods(ps []store.UsagePeriod) (merged []store.UsagePeriod, at []int, err error) {
	idx := make(map[periodKey]int, len(ps))
	at = make([]int, len(ps))
	for i, p := range ps {
		switch p.State {
		case "":
			p.State = store.UsageOpen
		case store.UsageOpen, store.UsageTest:
		default:
			return nil, nil, fmt.Errorf("state %q: a period takes usage only open or test", p.State)
		}
		k := periodKey{p.InstanceID, ms(p.Start)}
		j, seen := idx[k]
		if !seen {
			j = len(merged)
			idx[k] = j
			merged = append(merged, p)
		} else {
			merged[j].Total += p.Total
			merged[j].Records += p.Records
		}
		at[i] = j
	}
	return merged, at, nil
}

// AddUsages adds each entry's Total and Records to its period if that is
// open or test, creating the period if absent, in multi-row upserts
// (INSERT … ON CONFLICT DO UPDATE … WHERE open or test) whose RETURNING
// names the periods added to: ok[i] is false, and nothing changes, for a
// period that exists sealed. Entries naming one period are added
// together.
func (t *tx) AddUsages(ctx context.Context, ps []store.UsagePeriod) ([]bool, error) {
	merged, at, err := mergePeriods(ps)
	if err != nil {
		return nil, fmt.Errorf("sqlite: add usage: %w", err)
	}
	added := make([]bool, len(merged))
	idx := make(map[periodKey]int, len(merged))
	for j, p := range merged {
		idx[periodKey{p.InstanceID, ms(p.Start)}] = j
	}
	now := ms(time.Now())
	err = chunks(len(merged), func(from, to int) error {
		args := make([]any, 0, 9*(to-from))
		for _, p := range merged[from:to] {
			args = append(args, p.InstanceID, ms(p.Start), ms(p.End), p.Total, p.Records, string(p.State),
				p.MeteringSN, now, now)
		}
		rows, err := t.tx.QueryContext(ctx, `INSERT INTO usage_periods (instance_id, start, "end", total, records,
				state, metering_sn, created_at, updated_at)
			VALUES `+marks(to-from, "(?, ?, ?, ?, ?, ?, ?, ?, ?)")+`
			ON CONFLICT (instance_id, start) DO UPDATE SET total = total + excluded.total,
				records = records + excluded.records, updated_at = excluded.updated_at
			WHERE usage_periods.state IN ('open', 'test')
				AND usage_periods.total + excluded.total <= `+maxPeriodTotal+`
			RETURNING instance_id, start`, args...)
		if err != nil {
			return fmt.Errorf("sqlite: add usage: %w", mapErr(err))
		}
		defer rows.Close()
		for rows.Next() {
			var k periodKey
			if err := rows.Scan(&k.instanceID, &k.start); err != nil {
				return fmt.Errorf("sqlite: add usage: %w", mapErr(err))
			}
			if j, ok := idx[k]; ok {
				added[j] = true
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: add usage: %w", mapErr(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ok := make([]bool, len(ps))
	for i, j := range at {
		ok[i] = added[j]
	}
	return ok, nil
}

// AddUsageTotal adds total and records to the instance's total, creating
// it if absent, and moves its LastTime to last if later.
func (t *tx) AddUsageTotal(ctx context.Context, instanceID string, total, records int64, last time.Time) error {
	return t.AddUsageTotals(ctx, []store.UsageTotal{{InstanceID: instanceID, Total: total, Records: records, LastTime: last}})
}

// mergeTotals folds the entries of one instance into one, in order of
// first appearance.
func mergeTotals(totals []store.UsageTotal) []store.UsageTotal {
	idx := make(map[string]int, len(totals))
	var merged []store.UsageTotal
	for _, u := range totals {
		j, seen := idx[u.InstanceID]
		if !seen {
			idx[u.InstanceID] = len(merged)
			merged = append(merged, u)
			continue
		}
		merged[j].Total += u.Total
		merged[j].Records += u.Records
		if u.LastTime.After(merged[j].LastTime) {
			merged[j].LastTime = u.LastTime
		}
	}
	return merged
}

// AddUsageTotals adds each entry's Total and Records to its instance's
// total, creating it if absent, and moves its LastTime to the entry's if
// later, in multi-row upserts. Entries of one instance are added
// together.
func (t *tx) AddUsageTotals(ctx context.Context, totals []store.UsageTotal) error {
	merged := mergeTotals(totals)
	return chunks(len(merged), func(from, to int) error {
		args := make([]any, 0, 4*(to-from))
		for _, u := range merged[from:to] {
			args = append(args, u.InstanceID, u.Total, u.Records, ms(u.LastTime))
		}
		if _, err := t.tx.ExecContext(ctx, `INSERT INTO usage_totals (`+usageTotalColumns+`)
			VALUES `+marks(to-from, "(?, ?, ?, ?)")+`
			ON CONFLICT (instance_id) DO UPDATE SET total = total + excluded.total,
				records = records + excluded.records, last_time = max(last_time, excluded.last_time)`,
			args...); err != nil {
			return fmt.Errorf("sqlite: add usage total: %w", mapErr(err))
		}
		return nil
	})
}

// DueUsagePeriods lists at most limit (0 means 100; at most 1000) open
// periods with End <= before, oldest End (then ID) first. Transactions
// are exclusive in SQLite, so no other one seals them meanwhile.
func (t *tx) DueUsagePeriods(ctx context.Context, before time.Time, n int) ([]store.UsagePeriod, error) {
	return queryAll(ctx, t.tx, "list due usage periods", `SELECT `+usagePeriodColumns+` FROM usage_periods
		WHERE state = ? AND "end" <= ? ORDER BY "end", id LIMIT ?`,
		[]any{string(store.UsageOpen), ms(before), limit(n)}, scanUsagePeriod)
}

// InsertUsagePush inserts p (ID ignored; State pending when empty, zero
// CreatedAt and UpdatedAt now) and returns its ID.
func (t *tx) InsertUsagePush(ctx context.Context, p store.UsagePush) (int64, error) {
	now := time.Now()
	state := p.State
	if state == "" {
		state = store.UsagePushPending
	}
	body := p.Body
	if body == nil {
		body = []byte{}
	}
	var id int64
	if err := t.tx.QueryRowContext(ctx, `INSERT INTO usage_pushes (api, parent_id, body, records, state, attempts,
			code, message, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		p.API, p.ParentID, body, p.Records, string(state), p.Attempts, p.Code, p.Message,
		ms(or(p.CreatedAt, now)), ms(or(p.UpdatedAt, now))).Scan(&id); err != nil {
		return 0, fmt.Errorf("sqlite: insert usage push: %w", mapErr(err))
	}
	return id, nil
}

// UpdateUsagePush writes State, Code and Message of push p.ID (UpdatedAt
// now); store.ErrNotFound if absent.
func (t *tx) UpdateUsagePush(ctx context.Context, p store.UsagePush) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE usage_pushes SET state = ?, code = ?, message = ?, updated_at = ?
		WHERE id = ?`, string(p.State), p.Code, p.Message, ms(time.Now()), p.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update usage push: %w", mapErr(err))
	}
	if ok, err := inserted(res, "update usage push"); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("sqlite: update usage push %d: %w", p.ID, store.ErrNotFound)
	}
	return nil
}

// SetUsagePeriods sets State, PushID, Code and Message of the periods
// named by keys (UpdatedAt now), 1000 keys a statement, each found
// through the unique (instance_id, start) index. Absent keys are ignored.
func (t *tx) SetUsagePeriods(ctx context.Context, keys []store.UsagePeriodKey, state store.UsagePeriodState,
	pushID int64, code, msg string) error {
	now := ms(time.Now())
	return chunks(len(keys), func(from, to int) error {
		args := make([]any, 0, 5+2*(to-from))
		args = append(args, string(state), pushID, code, msg, now)
		for _, k := range keys[from:to] {
			args = append(args, k.InstanceID, ms(k.Start))
		}
		if _, err := t.tx.ExecContext(ctx, `UPDATE usage_periods SET state = ?, push_id = ?, code = ?, message = ?,
			updated_at = ? FROM (VALUES `+marks(to-from, "(?, ?)")+`) AS k
			WHERE usage_periods.instance_id = k.column1 AND usage_periods.start = k.column2`, args...); err != nil {
			return fmt.Errorf("sqlite: set usage periods: %w", mapErr(err))
		}
		return nil
	})
}
