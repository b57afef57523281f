package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koobridge/koobridge/internal/store"
)

// Pay-per-use metering (store.Usage, store.UsageTx). A batch of records,
// keys or periods is one statement over arrays (unnest, = ANY), so a call
// costs one round trip whatever its size.

var (
	_ store.Usage   = (*Store)(nil)
	_ store.UsageTx = (*tx)(nil)
)

const usageRecordColumns = `id, idempotency_key, instance_id, value, time, period_start, carried, created_at`

func scanUsageRecord(row pgx.Row) (store.UsageRecord, error) {
	var (
		r                 store.UsageRecord
		t, start, created *time.Time
	)
	if err := row.Scan(&r.ID, &r.IdempotencyKey, &r.InstanceID, &r.Value, &t, &start, &r.Carried, &created); err != nil {
		return store.UsageRecord{}, err
	}
	r.Time = fromTS(t)
	r.PeriodStart = fromTS(start)
	r.CreatedAt = fromTS(created)
	return r, nil
}

const usagePeriodColumns = `id, instance_id, start, "end", total, records, state, metering_sn, push_id, code, message,
	created_at, updated_at`

func scanUsagePeriod(row pgx.Row) (store.UsagePeriod, error) {
	var (
		p                            store.UsagePeriod
		start, end, created, updated *time.Time
		state                        string
	)
	if err := row.Scan(&p.ID, &p.InstanceID, &start, &end, &p.Total, &p.Records, &state, &p.MeteringSN, &p.PushID,
		&p.Code, &p.Message, &created, &updated); err != nil {
		return store.UsagePeriod{}, err
	}
	p.Start = fromTS(start)
	p.End = fromTS(end)
	p.State = store.UsagePeriodState(state)
	p.CreatedAt = fromTS(created)
	p.UpdatedAt = fromTS(updated)
	return p, nil
}

const usagePushColumns = `id, api, parent_id, body, records, state, attempts, code, message, created_at, updated_at`

func scanUsagePush(row pgx.Row) (store.UsagePush, error) {
	var (
		p                store.UsagePush
		created, updated *time.Time
		state            string
	)
	if err := row.Scan(&p.ID, &p.API, &p.ParentID, &p.Body, &p.Records, &state, &p.Attempts, &p.Code, &p.Message,
		&created, &updated); err != nil {
		return store.UsagePush{}, err
	}
	p.State = store.UsagePushState(state)
	p.CreatedAt = fromTS(created)
	p.UpdatedAt = fromTS(updated)
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

func scanUsageAttempt(row pgx.Row) (store.UsagePushAttempt, error) {
	var (
		a   store.UsagePushAttempt
		at  *time.Time
		dur int64
	)
	if err := row.Scan(&a.PushID, &a.Attempt, &at, &dur, &a.HTTPStatus, &a.Code, &a.Message); err != nil {
		return store.UsagePushAttempt{}, err
	}
	a.At = fromTS(at)
	a.Duration = time.Duration(dur) * time.Microsecond
	return a, nil
}

const usageTotalColumns = `instance_id, total, records, last_time`

func scanUsageTotal(row pgx.Row) (store.UsageTotal, error) {
	var (
		t    store.UsageTotal
		last *time.Time
	)
	if err := row.Scan(&t.InstanceID, &t.Total, &t.Records, &last); err != nil {
		return store.UsageTotal{}, err
	}
	t.LastTime = fromTS(last)
	return t, nil
}

// txts makes every string of ss storable (txt).
func txts(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = txt(s)
	}
	return out
}

// msTime is a time as stored in a NOT NULL column: millisecond precision,
// UTC; the zero time stays the zero time, which reads back as zero.
func msTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Millisecond).UTC()
}

// UsagePush reads one push; store.ErrNotFound if absent.
func (s *Store) UsagePush(ctx context.Context, id int64) (_ store.UsagePush, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.UsagePush(ctx, id)
}

// UsagePush reads one push; store.ErrNotFound if absent. Inside a
// transaction the row stays locked until it ends, so two senders of one
// push (a lease that ran out) record their outcomes one after the other.
func (r reader) UsagePush(ctx context.Context, id int64) (store.UsagePush, error) {
	return one(ctx, r.q, "read usage push", `SELECT `+usagePushColumns+` FROM usage_pushes WHERE id = $1`+r.forUpdate(),
		scanUsagePush, id)
}

// UsagePeriodsOfPush lists the periods push id carries, by instance and
// start.
func (s *Store) UsagePeriodsOfPush(ctx context.Context, id int64) (_ []store.UsagePeriod, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.UsagePeriodsOfPush(ctx, id)
}

// UsagePeriodsOfPush lists the periods push id carries, by instance and
// start. The rows are not locked: the push's row is what serialises the
// transactions of a push.
func (r reader) UsagePeriodsOfPush(ctx context.Context, id int64) ([]store.UsagePeriod, error) {
	return queryAll(ctx, r.q, "list periods of usage push", `SELECT `+usagePeriodColumns+` FROM usage_periods
		WHERE push_id = $1 ORDER BY instance_id, start`, []any{id}, scanUsagePeriod)
}

// UsageRecordsByKey reads the records with the given idempotency keys;
// keys with no record are absent from the map.
func (s *Store) UsageRecordsByKey(ctx context.Context, keys []string) (_ map[string]store.UsageRecord, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.UsageRecordsByKey(ctx, keys)
}

// UsageRecordsByKey reads the records with the given idempotency keys, in
// one query; keys with no record are absent from the map. The rows are
// not locked: a record never changes but for being carried.
func (r reader) UsageRecordsByKey(ctx context.Context, keys []string) (map[string]store.UsageRecord, error) {
	out := make(map[string]store.UsageRecord, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	recs, err := queryAll(ctx, r.q, "read usage records by key", `SELECT `+usageRecordColumns+` FROM usage_records
		WHERE idempotency_key = ANY($1::text[])`, []any{txts(keys)}, scanUsageRecord)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		out[rec.IdempotencyKey] = rec
	}
	return out, nil
}

// UsagePeriod reads one period; store.ErrNotFound if absent.
func (s *Store) UsagePeriod(ctx context.Context, k store.UsagePeriodKey) (_ store.UsagePeriod, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.UsagePeriod(ctx, k)
}

// UsagePeriod reads one period; store.ErrNotFound if absent.
func (r reader) UsagePeriod(ctx context.Context, k store.UsagePeriodKey) (store.UsagePeriod, error) {
	return one(ctx, r.q, "read usage period", `SELECT `+usagePeriodColumns+` FROM usage_periods
		WHERE instance_id = $1 AND start = $2`, scanUsagePeriod, txt(k.InstanceID), msTime(k.Start))
}

// UsagePeriods lists the periods matching f, newest (highest ID) first.
func (s *Store) UsagePeriods(ctx context.Context, f store.UsagePeriodFilter) (_ []store.UsagePeriod, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var w filterSQL
	if f.InstanceID != "" {
		w.add(`instance_id = ?`, txt(f.InstanceID))
	}
	if f.State != "" {
		w.add(`state = ?`, txt(string(f.State)))
	}
	if f.PushID != 0 {
		w.add(`push_id = ?`, f.PushID)
	}
	if f.BeforeID > 0 {
		w.add(`id < ?`, f.BeforeID)
	}
	query, args := w.query(`SELECT `+usagePeriodColumns+` FROM usage_periods`, `id DESC`, f.Limit)
	return queryAll(ctx, s.q, "list usage periods", query, args, scanUsagePeriod)
}

// UsageRecords lists the records matching f, newest (highest ID) first.
func (s *Store) UsageRecords(ctx context.Context, f store.UsageRecordFilter) (_ []store.UsageRecord, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var w filterSQL
	if f.InstanceID != "" {
		w.add(`instance_id = ?`, txt(f.InstanceID))
	}
	if !f.PeriodStart.IsZero() {
		w.add(`period_start = ?`, msTime(f.PeriodStart))
	}
	if f.BeforeID > 0 {
		w.add(`id < ?`, f.BeforeID)
	}
	query, args := w.query(`SELECT `+usageRecordColumns+` FROM usage_records`, `id DESC`, f.Limit)
	return queryAll(ctx, s.q, "list usage records", query, args, scanUsageRecord)
}

// UsageTotals reads the totals of the given instances, in one query;
// instances without usage are absent from the map.
func (s *Store) UsageTotals(ctx context.Context, instanceIDs []string) (_ map[string]store.UsageTotal, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	out := make(map[string]store.UsageTotal, len(instanceIDs))
	if len(instanceIDs) == 0 {
		return out, nil
	}
	totals, err := queryAll(ctx, s.q, "read usage totals", `SELECT `+usageTotalColumns+` FROM usage_totals
		WHERE instance_id = ANY($1::text[])`, []any{txts(instanceIDs)}, scanUsageTotal)
	if err != nil {
		return nil, err
	}
	for _, t := range totals {
		out[t.InstanceID] = t
	}
	return out, nil
}

// UsagePushes lists the pushes matching f, newest (highest ID) first.
func (s *Store) UsagePushes(ctx context.Context, f store.UsagePushFilter) (_ []store.UsagePush, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var w filterSQL
	if f.State != "" {
		w.add(`state = ?`, txt(string(f.State)))
	}
	if f.BeforeID > 0 {
		w.add(`id < ?`, f.BeforeID)
	}
	query, args := w.query(`SELECT `+usagePushColumns+` FROM usage_pushes`, `id DESC`, f.Limit)
	return queryAll(ctx, s.q, "list usage pushes", query, args, scanUsagePush)
}

// UsagePushAttempts lists the attempts of push id, first first.
func (s *Store) UsagePushAttempts(ctx context.Context, id int64) (_ []store.UsagePushAttempt, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return queryAll(ctx, s.q, "list usage push attempts", `SELECT `+usageAttemptSelect+` FROM usage_push_attempts
		WHERE push_id = $1 ORDER BY attempt`, []any{id}, scanUsageAttempt)
}

// InsertUsagePushAttempt appends a (a zero At stored as now; an attempt
// number already recorded is replaced by a), and sets the push's Attempts
// to a.Attempt if that is more and its Code and Message to a's, in one
// statement: the attempt is inserted from the push's updated row, so an
// absent push inserts nothing and is store.ErrNotFound.
func (s *Store) InsertUsagePushAttempt(ctx context.Context, a store.UsagePushAttempt) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	now := time.Now()
	var id int64
	err = s.q.QueryRow(ctx, `WITH p AS (
			UPDATE usage_pushes SET attempts = GREATEST(attempts, $2), code = $6, message = $7, updated_at = $8
			WHERE id = $1 RETURNING id)
		INSERT INTO usage_push_attempts (`+usageAttemptColumns+`)
		SELECT id, $2, $3, $4, $9, $5, $6, $7 FROM p
		ON CONFLICT (push_id, attempt) DO UPDATE SET at = excluded.at, duration = excluded.duration, duration_us = excluded.duration_us,
			http_status = excluded.http_status, code = excluded.code, message = excluded.message
		RETURNING push_id`,
		a.PushID, a.Attempt, ts(or(a.At, now)), a.Duration.Milliseconds(), a.HTTPStatus, txt(a.Code), txt(a.Message),
		ts(now), a.Duration.Microseconds()).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: insert usage push attempt: push %d: %w", a.PushID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: insert usage push attempt: %w", mapErr(ctx, err))
	}
	return nil
}

// UsagePeriodCounts counts the periods of each state, of one instance or,
// with instanceID "", of all. Only the periods are read (their indexes),
// never the records.
func (s *Store) UsagePeriodCounts(ctx context.Context, instanceID string) (_ map[store.UsagePeriodState]int64, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	query, args := `SELECT state, count(*) FROM usage_periods GROUP BY state`, []any(nil)
	if instanceID != "" {
		query, args = `SELECT state, count(*) FROM usage_periods WHERE instance_id = $1 GROUP BY state`,
			[]any{txt(instanceID)}
	}
	type count struct {
		state string
		n     int64
	}
	rows, err := queryAll(ctx, s.q, "count usage periods", query, args, func(row pgx.Row) (count, error) {
		var c count
		err := row.Scan(&c.state, &c.n)
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
	var oldest *time.Time
	err = s.q.QueryRow(ctx, `SELECT LEAST(
			(SELECT "end" FROM usage_periods WHERE state = $1 ORDER BY "end" LIMIT 1),
			(SELECT "end" FROM usage_periods WHERE state = $2 ORDER BY "end" LIMIT 1))`,
		string(store.UsageOpen), string(store.UsagePushing)).Scan(&oldest)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: oldest unpushed usage: %w", mapErr(ctx, err))
	}
	if oldest == nil {
		return time.Time{}, false, nil
	}
	return oldest.UTC(), true, nil
}

// InsertUsageRecords inserts each record (ID ignored, zero CreatedAt
// stored as now) unless one with its IdempotencyKey exists, in one INSERT
// … SELECT FROM unnest(…) ON CONFLICT DO NOTHING whose RETURNING names the
// keys inserted. Rows go in key order (then call order), so concurrent
// batches lock shared keys in one order and do not deadlock; a key given
// twice in one call: the first occurrence is inserted, the later ones
// report false. A concurrent insert of a key waits for the transaction
// that inserted it, then does nothing.
func (t *tx) InsertUsageRecords(ctx context.Context, recs []store.UsageRecord) ([]bool, error) {
	out := make([]bool, len(recs))
	if len(recs) == 0 {
		return out, nil
	}
	var (
		now       = msTime(time.Now())
		first     = make(map[string]int, len(recs))
		keys      = make([]string, len(recs))
		instances = make([]string, len(recs))
		values    = make([]int64, len(recs))
		times     = make([]time.Time, len(recs))
		starts    = make([]time.Time, len(recs))
		carried   = make([]bool, len(recs))
		created   = make([]time.Time, len(recs))
	)
	for i, r := range recs {
		keys[i], instances[i], values[i] = txt(r.IdempotencyKey), txt(r.InstanceID), r.Value
		times[i], starts[i], carried[i] = msTime(r.Time), msTime(r.PeriodStart), r.Carried
		created[i] = msTime(or(r.CreatedAt, now))
	}
	for i := len(keys) - 1; i >= 0; i-- {
		first[keys[i]] = i
	}
	rows, err := t.tx.Query(ctx, `INSERT INTO usage_records (idempotency_key, instance_id, value, time, period_start,
			carried, created_at)
		SELECT k, i, v, t, p, c, ca
		FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::boolean[],
			$7::timestamptz[]) WITH ORDINALITY AS u(k, i, v, t, p, c, ca, ord)
		ORDER BY k COLLATE "C", ord
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING idempotency_key`,
		keys, instances, values, times, starts, carried, created)
	if err != nil {
		return nil, fmt.Errorf("postgres: insert usage records: %w", mapErr(ctx, err))
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("postgres: insert usage records: %w", mapErr(ctx, err))
		}
		if i, ok := first[k]; ok {
			out[i] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: insert usage records: %w", mapErr(ctx, err))
	}
	return out, nil
}

// CarryUsageRecords bills the records with the given idempotency keys in
// the period starting at start, marking them Carried, in one statement.
func (t *tx) CarryUsageRecords(ctx context.Context, keys []string, start time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := t.tx.Exec(ctx, `UPDATE usage_records SET period_start = $1, carried = true
		WHERE idempotency_key = ANY($2::text[])`, msTime(start), txts(keys)); err != nil {
		return fmt.Errorf("postgres: carry usage records: %w", mapErr(ctx, err))
	}
	return nil
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
	start      int64 // Unix milliseconds
}

// mergePeriods folds the entries of ps naming one period into one, in
// order of first appearance: at[i] is the index in merged of ps[i]. A
// period is created open or test only; an empty State is open. One
// upsert may not touch a row twice, hence the folding.
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
		p.InstanceID, p.Start = txt(p.InstanceID), msTime(p.Start)
		k := periodKey{p.InstanceID, p.Start.UnixMilli()}
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
// open or test, creating the period if absent, in one upsert (INSERT …
// SELECT FROM unnest(…) ON CONFLICT DO UPDATE … WHERE open or test) whose
// RETURNING names the periods added to: ok[i] is false, and nothing
// changes, for a period that exists sealed. Entries naming one period are
// added together. Rows go in key order, so concurrent batches lock shared
// periods in one order.
//
// The upsert locks each period's row. One that a sealer holds
// (DueUsagePeriods, then SetUsagePeriods) makes it wait for the sealer's
// commit; READ COMMITTED then checks the state of the row as the sealer
// left it, so a sum is either in the sealed total or refused, never both
// nor lost.
func (t *tx) AddUsages(ctx context.Context, ps []store.UsagePeriod) ([]bool, error) {
	merged, at, err := mergePeriods(ps)
	if err != nil {
		return nil, fmt.Errorf("postgres: add usage: %w", err)
	}
	ok := make([]bool, len(ps))
	if len(merged) == 0 {
		return ok, nil
	}
	var (
		idx    = make(map[periodKey]int, len(merged))
		ids    = make([]string, len(merged))
		starts = make([]time.Time, len(merged))
		ends   = make([]time.Time, len(merged))
		sums   = make([]int64, len(merged))
		counts = make([]int64, len(merged))
		states = make([]string, len(merged))
		sns    = make([]string, len(merged))
		added  = make([]bool, len(merged))
	)
	for j, p := range merged {
		idx[periodKey{p.InstanceID, p.Start.UnixMilli()}] = j
		ids[j], starts[j], ends[j] = p.InstanceID, p.Start, msTime(p.End)
		sums[j], counts[j], states[j], sns[j] = p.Total, p.Records, string(p.State), txt(p.MeteringSN)
	}
	rows, err := t.tx.Query(ctx, `INSERT INTO usage_periods AS p (instance_id, start, "end", total, records, state,
			metering_sn, created_at, updated_at)
		SELECT i, s, e, t, r, st, sn, $8, $8
		FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::text[],
			$7::text[]) AS u(i, s, e, t, r, st, sn)
		ORDER BY i COLLATE "C", s
		ON CONFLICT (instance_id, start) DO UPDATE SET total = p.total + excluded.total,
			records = p.records + excluded.records, updated_at = excluded.updated_at
		WHERE p.state IN ('open', 'test') AND p.total + excluded.total <= $9
		RETURNING instance_id, start`,
		ids, starts, ends, sums, counts, states, sns, msTime(time.Now()), store.MaxUsagePeriodTotal)
	if err != nil {
		return nil, fmt.Errorf("postgres: add usage: %w", mapErr(ctx, err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id    string
			start time.Time
		)
		if err := rows.Scan(&id, &start); err != nil {
			return nil, fmt.Errorf("postgres: add usage: %w", mapErr(ctx, err))
		}
		if j, ok := idx[periodKey{id, start.UnixMilli()}]; ok {
			added[j] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: add usage: %w", mapErr(ctx, err))
	}
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

// AddUsageTotals adds each entry's Total and Records to its instance's
// total, creating it if absent, and moves its LastTime to the entry's if
// later, in one upsert, in instance order. Entries of one instance are
// added together (one upsert may not touch a row twice).
func (t *tx) AddUsageTotals(ctx context.Context, totals []store.UsageTotal) error {
	idx := make(map[string]int, len(totals))
	var (
		ids          []string
		sums, counts []int64
		lasts        []*time.Time
	)
	for _, u := range totals {
		id := txt(u.InstanceID)
		var last *time.Time
		if !u.LastTime.IsZero() {
			l := msTime(u.LastTime)
			last = &l
		}
		j, seen := idx[id]
		if !seen {
			idx[id] = len(ids)
			ids, sums, counts, lasts = append(ids, id), append(sums, u.Total), append(counts, u.Records), append(lasts, last)
			continue
		}
		sums[j] += u.Total
		counts[j] += u.Records
		if last != nil && (lasts[j] == nil || last.After(*lasts[j])) {
			lasts[j] = last
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO usage_totals AS u (`+usageTotalColumns+`)
		SELECT i, t, r, l FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[]) AS x(i, t, r, l)
		ORDER BY i COLLATE "C"
		ON CONFLICT (instance_id) DO UPDATE SET total = u.total + excluded.total, records = u.records + excluded.records,
			last_time = GREATEST(u.last_time, excluded.last_time)`,
		ids, sums, counts, lasts); err != nil {
		return fmt.Errorf("postgres: add usage total: %w", mapErr(ctx, err))
	}
	return nil
}

// DueUsagePeriods lists at most limit (0 means 100; at most 1000) open
// periods with End <= before, oldest End (then ID) first, and locks them
// until the transaction ends. Rows another transaction holds are skipped
// (SKIP LOCKED): concurrent sealers get different periods, and a period
// taking usage at this moment is sealed by the next round.
func (t *tx) DueUsagePeriods(ctx context.Context, before time.Time, n int) ([]store.UsagePeriod, error) {
	return queryAll(ctx, t.tx, "list due usage periods", `SELECT `+usagePeriodColumns+` FROM usage_periods
		WHERE state = $1 AND "end" <= $2 ORDER BY "end", id LIMIT $3 FOR UPDATE SKIP LOCKED`,
		[]any{string(store.UsageOpen), msTime(before), limit(n)}, scanUsagePeriod)
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
	if err := t.tx.QueryRow(ctx, `INSERT INTO usage_pushes (api, parent_id, body, records, state, attempts,
			code, message, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		txt(p.API), p.ParentID, body, p.Records, txt(string(state)), p.Attempts, txt(p.Code), txt(p.Message),
		ts(or(p.CreatedAt, now)), ts(or(p.UpdatedAt, now))).Scan(&id); err != nil {
		return 0, fmt.Errorf("postgres: insert usage push: %w", mapErr(ctx, err))
	}
	return id, nil
}

// UpdateUsagePush writes State, Code and Message of push p.ID (UpdatedAt
// now); store.ErrNotFound if absent.
func (t *tx) UpdateUsagePush(ctx context.Context, p store.UsagePush) error {
	tag, err := t.tx.Exec(ctx, `UPDATE usage_pushes SET state = $1, code = $2, message = $3, updated_at = $4
		WHERE id = $5`, txt(string(p.State)), txt(p.Code), txt(p.Message), ts(time.Now()), p.ID)
	if err != nil {
		return fmt.Errorf("postgres: update usage push: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: update usage push %d: %w", p.ID, store.ErrNotFound)
	}
	return nil
}

// SetUsagePeriods sets State, PushID, Code and Message of the periods
// named by keys (UpdatedAt now), in one statement. Absent keys are
// ignored.
func (t *tx) SetUsagePeriods(ctx context.Context, keys []store.UsagePeriodKey, state store.UsagePeriodState,
	pushID int64, code, msg string) error {
	if len(keys) == 0 {
		return nil
	}
	ids := make([]string, len(keys))
	starts := make([]time.Time, len(keys))
	for i, k := range keys {
		ids[i], starts[i] = txt(k.InstanceID), msTime(k.Start)
	}
	if _, err := t.tx.Exec(ctx, `UPDATE usage_periods p SET state = $1, push_id = $2, code = $3, message = $4,
			updated_at = $5
		FROM unnest($6::text[], $7::timestamptz[]) AS k(instance_id, start)
		WHERE p.instance_id = k.instance_id AND p.start = k.start`,
		txt(string(state)), pushID, txt(code), txt(msg), ts(time.Now()), ids, starts); err != nil {
		return fmt.Errorf("postgres: set usage periods: %w", mapErr(ctx, err))
	}
	return nil
}
