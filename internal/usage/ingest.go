package usage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// Input is one usage record the vendor's product reports.
type Input struct {
	// IdempotencyKey names the record: a repeat with the same key and
	// content is a duplicate, one with other content is refused. 1 to 128
	// printable ASCII characters.
	IdempotencyKey string
	// InstanceID is the pay-per-use instance (a package's item is its own
	// instance, as KooGallery has it).
	InstanceID string
	// Value is the usage, decimal text: more than 0, at most 4 decimals,
	// at most 99999999.9999.
	Value string
	// Time is when the usage happened.
	Time time.Time
	// Problem, when set, is why a decoder (the usage API) could not read
	// the record: it is answered rejected with it, and counted so.
	Problem string
}

// Record statuses.
const (
	Accepted  = "accepted"  // stored now
	Duplicate = "duplicate" // the same record was stored before: nothing added
	Rejected  = "rejected"  // not stored; Error says why
)

// Result is the answer for one record, in the order of the input.
type Result struct {
	IdempotencyKey string
	Status         string
	Error          string
}

// ErrBatch is a batch Ingest does not take as a whole (none or more than
// MaxBatch records).
var ErrBatch = errors.New("usage: batch")

// Bounds of a record's fields.
const (
	maxKeyLen      = 128
	maxInstanceLen = 64
	// maxValue is Double(12,4)'s largest value, in ten-thousandths.
	maxValue = 999_999_999_999
)

// item is one valid record on its way into the store.
type item struct {
	i   int // its index in the input
	rec store.UsageRecord
	f   facts
	end time.Time // of its period
}

// refusal rejects records found unbillable inside the transaction: the
// transaction is rolled back and run again without them.
type refusal struct{ problems map[string]string } // by idempotency key

func (r *refusal) Error() string {
	return fmt.Sprintf("usage: %d records cannot be billed", len(r.problems))
}

// Ingest stores the records that can be billed and answers each one. The
// records it accepts are durable, and summed in their periods, when it
// returns. An error (the database unavailable, a batch of none or more
// than MaxBatch records) means nothing of the batch was acknowledged: the
// caller sends it again, and the keys make that safe.
func (s *Service) Ingest(ctx context.Context, in []Input) ([]Result, error) {
	if len(in) == 0 || len(in) > MaxBatch {
		return nil, fmt.Errorf("%w: %d records: want 1 to %d", ErrBatch, len(in), MaxBatch)
	}
	now := s.now().UTC()
	results := make([]Result, len(in))
	// Records stored before are answered by their key before anything
	// else is judged: a retry of a stored record is a duplicate even when
	// it could no longer be taken (too old by now, the instance released
	// since), since it is billed.
	var keys []string
	for _, r := range in {
		if r.Problem == "" && checkKey(r.IdempotencyKey) == "" {
			keys = append(keys, r.IdempotencyKey)
		}
	}
	stored, err := s.store.UsageRecordsByKey(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("usage: read records by key: %w", err)
	}
	first := map[string]int{} // the first index of each key
	var items []item
	for i, r := range in {
		results[i].IdempotencyKey = r.IdempotencyKey
		if r.Problem != "" {
			results[i].Status, results[i].Error = Rejected, r.Problem
			continue
		}
		if p := checkKey(r.IdempotencyKey); p != "" {
			results[i].Status, results[i].Error = Rejected, "idempotencyKey: "+p
			continue
		}
		if j, ok := first[r.IdempotencyKey]; ok {
			if !sameInput(in[j], r) {
				results[i].Status, results[i].Error = Rejected, fmt.Sprintf("idempotencyKey: already used by record %d of this batch with other content", j)
			}
			continue // same content: answered like the first, below
		}
		first[r.IdempotencyKey] = i
		if old, ok := stored[r.IdempotencyKey]; ok {
			if sameStored(old, r) {
				results[i].Status = Duplicate
			} else {
				results[i].Status, results[i].Error = Rejected, otherContent
			}
			continue
		}
		it, problem, err := s.check(ctx, i, r, now)
		if err != nil {
			return nil, err
		}
		if problem != "" {
			results[i].Status, results[i].Error = Rejected, problem
			continue
		}
		items = append(items, it)
	}

	dup, refused, err := s.persist(ctx, items, now)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		k := it.rec.IdempotencyKey
		switch {
		case refused[k] != "":
			results[it.i].Status, results[it.i].Error = Rejected, refused[k]
		case dup[k]:
			results[it.i].Status = Duplicate
		default:
			results[it.i].Status = Accepted
		}
	}
	for i, r := range in {
		if results[i].Status != "" {
			continue
		}
		// A repeat inside the batch, with the first one's content.
		results[i] = results[first[r.IdempotencyKey]]
		if results[i].Status == Accepted {
			results[i].Status = Duplicate
		}
	}
	for _, r := range results {
		s.metrics.records.WithLabelValues(r.Status).Inc()
	}
	return results, nil
}

// otherContent is the rejection of a key used before for another record.
const otherContent = "idempotencyKey: already used for a record with other content"

// sameStored reports whether input r is the stored record old.
func sameStored(old store.UsageRecord, r Input) bool {
	v, err := parseValue(r.Value)
	return err == nil && old.InstanceID == r.InstanceID && old.Value == v &&
		old.Time.Equal(r.Time.UTC().Truncate(time.Millisecond))
}

// sameInput reports whether two inputs are the same record.
func sameInput(a, b Input) bool {
	if a.InstanceID != b.InstanceID || !a.Time.Truncate(time.Millisecond).Equal(b.Time.Truncate(time.Millisecond)) {
		return false
	}
	va, erra := parseValue(a.Value)
	vb, errb := parseValue(b.Value)
	if erra != nil || errb != nil {
		return a.Value == b.Value
	}
	return va == vb
}

// check validates record i and reads its instance: a problem is the
// record's rejection, an error the database failing.
func (s *Service) check(ctx context.Context, i int, r Input, now time.Time) (item, string, error) {
	if p := checkText(r.InstanceID, maxInstanceLen); p != "" {
		return item{}, "instanceId: " + p, nil
	}
	v, err := parseValue(r.Value)
	if err != nil {
		return item{}, "value: " + err.Error(), nil
	}
	if r.Time.IsZero() {
		return item{}, "time: missing", nil
	}
	t := r.Time.UTC().Truncate(time.Millisecond)
	if t.After(now.Add(maxFuture)) {
		return item{}, fmt.Sprintf("time: %s is in the future", t.Format(time.RFC3339)), nil
	}
	f, err := s.meta(ctx, r.InstanceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return item{}, fmt.Sprintf("instanceId: unknown instance %s", r.InstanceID), nil
	case err != nil:
		return item{}, "", fmt.Errorf("usage: read instance: %w", err)
	}
	if err := f.metered(); err != nil {
		return item{}, "instanceId: " + strings.TrimPrefix(err.Error(), errNotMetered.Error()+": "), nil
	}
	if t.Before(f.start) {
		return item{}, fmt.Sprintf("time: %s is before the instance started (%s)", t.Format(time.RFC3339), f.start.UTC().Format(time.RFC3339)), nil
	}
	if rel := f.inst.ReleasedAt; f.inst.Status == store.StatusReleased && !rel.IsZero() && !t.Before(rel) {
		return item{}, fmt.Sprintf("time: %s is after the instance was released (%s)", t.Format(time.RFC3339), rel.UTC().Format(time.RFC3339)), nil
	}
	start, end := s.period(f.inst.ProductID, t)
	if oldest := s.oldestAccepted(now); start.Before(oldest) {
		return item{}, fmt.Sprintf("time: %s is older than KooGallery accepts (its period begins %s; KooGallery takes 21 days)", t.Format(time.RFC3339), start.Format(time.RFC3339)), nil
	}
	return item{i: i, f: f, end: end, rec: store.UsageRecord{
		IdempotencyKey: r.IdempotencyKey, InstanceID: f.inst.ID, Value: v, Time: t, PeriodStart: start, CreatedAt: now,
	}}, "", nil
}

// oldestAccepted is the earliest period start a record may be billed in
// now: KooGallery must still take it when it is pushed, within a push
// interval and a minute.
func (s *Service) oldestAccepted(now time.Time) time.Time {
	return now.Add(-MaxAge + s.pushInterval + time.Minute)
}

// parseValue reads a record's value in ten-thousandths.
func parseValue(text string) (int64, error) {
	if strings.ContainsAny(text, "eE") {
		return 0, errors.New("write it without an exponent, at most 4 decimals")
	}
	if strings.TrimSpace(text) != text || text == "" {
		return 0, errors.New("not a number")
	}
	num := text
	if ip, frac, ok := strings.Cut(text, "."); ok && len(frac) > 4 && strings.Trim(frac, "0123456789") == "" {
		if strings.Trim(frac[4:], "0") != "" {
			return 0, fmt.Errorf("%s has more than 4 decimals", text)
		}
		num = ip + "." + frac[:4] // trailing zeros change nothing
	}
	d, err := protocol.ParseDecimal(num)
	if err != nil {
		return 0, fmt.Errorf("%s is not a decimal number with at most 4 decimals", text)
	}
	switch u := d.Units(); {
	case u <= 0:
		return 0, fmt.Errorf("%s: must be more than 0", text)
	case u > maxValue:
		return 0, fmt.Errorf("%s: more than 99999999.9999", text)
	default:
		return u, nil
	}
}

// checkKey checks an idempotency key: 1 to 128 printable ASCII
// characters.
func checkKey(k string) string {
	switch {
	case k == "":
		return "missing"
	case len(k) > maxKeyLen:
		return fmt.Sprintf("longer than %d characters", maxKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return "only printable ASCII characters without spaces"
		}
	}
	return ""
}

// checkText checks an identifier: present, at most max bytes, valid UTF-8
// without control characters.
func checkText(v string, max int) string {
	switch {
	case v == "":
		return "missing"
	case len(v) > max:
		return fmt.Sprintf("longer than %d characters", max)
	case !utf8.ValidString(v):
		return "not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "contains a control character"
		}
	}
	return ""
}

// group is the records of one batch billed in one period.
type group struct {
	f          facts
	start, end time.Time
	total, n   int64
	last       time.Time // the latest record's time
	keys       []string
	values     []int64 // of keys
}

// persist writes items in one transaction: the records, their periods'
// sums, the instances' totals. dup lists the keys stored before with the
// same content; refused the keys that could not be stored, with why.
func (s *Service) persist(ctx context.Context, items []item, now time.Time) (dup map[string]bool, refused map[string]string, err error) {
	refused = map[string]string{}
	// Sorted so that concurrent batches lock rows in one order.
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.rec.IdempotencyKey, b.rec.IdempotencyKey) })
	for range 3 {
		var todo []item
		for _, it := range items {
			if refused[it.rec.IdempotencyKey] == "" {
				todo = append(todo, it)
			}
		}
		if len(todo) == 0 {
			return map[string]bool{}, refused, nil
		}
		var more *refusal
		err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			var err error
			dup, err = s.write(ctx, tx, todo, now)
			return err
		})
		if errors.As(err, &more) {
			for k, p := range more.problems {
				refused[k] = p
			}
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("usage: store records: %w", err)
		}
		return dup, refused, nil
	}
	return nil, nil, errors.New("usage: store records: refusals did not settle")
}

// write is the transaction of persist.
func (s *Service) write(ctx context.Context, tx store.Tx, items []item, now time.Time) (map[string]bool, error) {
	recs := make([]store.UsageRecord, len(items))
	for i, it := range items {
		recs[i] = it.rec
	}
	inserted, err := tx.InsertUsageRecords(ctx, recs)
	if err != nil {
		return nil, err
	}
	dup := map[string]bool{}
	var again []string
	for i, ok := range inserted {
		if !ok {
			again = append(again, recs[i].IdempotencyKey)
		}
	}
	problems := map[string]string{}
	if len(again) > 0 {
		stored, err := tx.UsageRecordsByKey(ctx, again)
		if err != nil {
			return nil, err
		}
		for i, ok := range inserted {
			if ok {
				continue
			}
			r := recs[i]
			old, found := stored[r.IdempotencyKey]
			switch {
			case !found:
				return nil, fmt.Errorf("record %s: neither inserted nor found", r.IdempotencyKey)
			case old.InstanceID == r.InstanceID && old.Value == r.Value && old.Time.Equal(r.Time):
				dup[r.IdempotencyKey] = true
			default:
				problems[r.IdempotencyKey] = otherContent
			}
		}
	}
	if len(problems) > 0 {
		// Nothing to roll back for them (they were not inserted), but the
		// answer must say so: record them and go on with the rest.
		return nil, &refusal{problems}
	}

	groups := map[store.UsagePeriodKey]*group{}
	var order []store.UsagePeriodKey
	for i, it := range items {
		if !inserted[i] {
			continue
		}
		k := store.UsagePeriodKey{InstanceID: it.rec.InstanceID, Start: it.rec.PeriodStart}
		g := groups[k]
		if g == nil {
			g = &group{f: it.f, start: it.rec.PeriodStart, end: it.end}
			groups[k] = g
			order = append(order, k)
		}
		if g.total+it.rec.Value > store.MaxUsagePeriodTotal {
			problems[it.rec.IdempotencyKey] = overLimit
			continue
		}
		g.total += it.rec.Value
		g.n++
		if it.rec.Time.After(g.last) {
			g.last = it.rec.Time
		}
		g.keys = append(g.keys, it.rec.IdempotencyKey)
		g.values = append(g.values, it.rec.Value)
	}
	if len(problems) > 0 {
		return nil, &refusal{problems}
	}
	slices.SortFunc(order, func(a, b store.UsagePeriodKey) int {
		return cmp.Or(cmp.Compare(a.InstanceID, b.InstanceID), a.Start.Compare(b.Start))
	})
	rows := make([]store.UsagePeriod, len(order))
	for i, k := range order {
		g := groups[k]
		rows[i] = s.periodRow(g.f, g.start, g.end, g.total, g.n)
	}
	added, err := tx.AddUsages(ctx, rows)
	if err != nil {
		return nil, err
	}
	// Groups whose period was pushed already are billed in the instance's
	// current period.
	var carried []*group
	var carryRows []store.UsagePeriod
	for i, k := range order {
		if added[i] {
			continue
		}
		g := groups[k]
		if room, full, err := isFull(ctx, tx, k); err != nil {
			return nil, err
		} else if full {
			g.refuseBeyond(room, problems)
			continue
		}
		at := now
		if rel := g.f.inst.ReleasedAt; g.f.inst.Status == store.StatusReleased && !rel.IsZero() && rel.Before(at) {
			at = rel.Add(-time.Millisecond)
		}
		start, end := s.period(g.f.inst.ProductID, at)
		if !start.After(g.start) {
			for _, key := range g.keys {
				problems[key] = "time: its billing period was pushed to KooGallery already and the instance has no later period to bill it in"
			}
			continue
		}
		g.start, g.end = start, end
		carried = append(carried, g)
		carryRows = append(carryRows, s.periodRow(g.f, start, end, g.total, g.n))
	}
	if len(carryRows) > 0 {
		ok, err := tx.AddUsages(ctx, carryRows)
		if err != nil {
			return nil, err
		}
		for i, g := range carried {
			if !ok[i] {
				problem := "time: its billing period was pushed to KooGallery already, and so was the current one: try again in a minute"
				if room, full, err := isFull(ctx, tx, store.UsagePeriodKey{InstanceID: g.f.inst.ID, Start: g.start}); err != nil {
					return nil, err
				} else if full {
					g.refuseBeyond(room, problems)
					continue
				}
				for _, key := range g.keys {
					problems[key] = problem
				}
				continue
			}
			if err := tx.CarryUsageRecords(ctx, g.keys, g.start); err != nil {
				return nil, err
			}
		}
	}
	if len(problems) > 0 {
		return nil, &refusal{problems}
	}
	totals := map[string]*store.UsageTotal{}
	var ids []string
	for _, k := range order {
		g := groups[k]
		t := totals[k.InstanceID]
		if t == nil {
			t = &store.UsageTotal{InstanceID: k.InstanceID}
			totals[k.InstanceID] = t
			ids = append(ids, k.InstanceID)
		}
		t.Total += g.total
		t.Records += g.n
		if g.last.After(t.LastTime) {
			t.LastTime = g.last
		}
	}
	slices.Sort(ids)
	list := make([]store.UsageTotal, len(ids))
	for i, id := range ids {
		list[i] = *totals[id]
	}
	if err := tx.AddUsageTotals(ctx, list); err != nil {
		return nil, err
	}
	return dup, nil
}

// overLimit is the rejection of a record its period cannot take.
const overLimit = "value: its billing period would sum more than 99999999.9999, the most one usage record to KooGallery carries: report usage in a larger unit"

// isFull reports whether AddUsage refused period k for its limit, not
// because it is sealed (it is still open), and how much it can take.
func isFull(ctx context.Context, tx store.Tx, k store.UsagePeriodKey) (room int64, full bool, err error) {
	p, err := tx.UsagePeriod(ctx, k)
	if err != nil {
		return 0, false, fmt.Errorf("read period %s %v: %w", k.InstanceID, k.Start, err)
	}
	return store.MaxUsagePeriodTotal - p.Total, p.State == store.UsageOpen || p.State == store.UsageTest, nil
}

// refuseBeyond refuses the records of g that do not fit in room, taking
// them in key order, so the others go in when the batch is written again.
func (g *group) refuseBeyond(room int64, problems map[string]string) {
	for i, key := range g.keys {
		if g.values[i] > room {
			problems[key] = overLimit
			continue
		}
		room -= g.values[i]
	}
}

// periodRow is the period row AddUsage adds to.
func (s *Service) periodRow(f facts, start, end time.Time, total, n int64) store.UsagePeriod {
	state := store.UsageOpen
	if f.inst.Test {
		state = store.UsageTest
	}
	return store.UsagePeriod{
		InstanceID: f.inst.ID, Start: start, End: end, Total: total, Records: n,
		State: state, MeteringSN: MeteringSN(f.inst.ID, start),
	}
}
