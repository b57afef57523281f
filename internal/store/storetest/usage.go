package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var usageTests = []test{
	{"RecordsInsertAndRead", testUsageRecordsInsertAndRead},
	{"RecordsDuplicates", testUsageRecordsDuplicates},
	{"RecordsConcurrentInsert", testUsageRecordsConcurrentInsert},
	{"RecordsConcurrentBatches", testUsageRecordsConcurrentBatches},
	{"RecordsLargeBatch", testUsageRecordsLargeBatch},
	{"CarryRecords", testUsageCarryRecords},
	{"AddUsage", testUsageAddUsage},
	{"AddUsageRefusesSealed", testUsageAddUsageSealed},
	{"AddUsageRefusesOverLimit", testUsageAddUsageLimit},
	{"AddUsages", testUsageAddUsages},
	{"TestPeriods", testUsageTestPeriods},
	{"Totals", testUsageTotals},
	{"TotalsBatch", testUsageTotalsBatch},
	{"DuePeriods", testUsageDuePeriods},
	{"ConcurrentSealers", testUsageConcurrentSealers},
	{"ConcurrentAddAndSeal", testUsageConcurrentAddAndSeal},
	{"Pushes", testUsagePushes},
	{"PushAttempts", testUsagePushAttempts},
	{"SetPeriods", testUsageSetPeriods},
	{"Filters", testUsageFilters},
	{"ListLimits", testUsageListLimits},
	{"Counts", testUsageCounts},
	{"OldestUnpushed", testUsageOldestUnpushed},
	{"Rollback", testUsageRollback},
}

// hour is the start of the suite's billing hour h (h = 0 is base).
func hour(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }

// usageRec is a record of instance inst billed in hour h.
func usageRec(key, inst string, value int64, h int) store.UsageRecord {
	return store.UsageRecord{
		IdempotencyKey: key,
		InstanceID:     inst,
		Value:          value,
		Time:           hour(h).Add(15*time.Minute + 7*time.Millisecond),
		PeriodStart:    hour(h),
		CreatedAt:      hour(h).Add(16 * time.Minute),
	}
}

// usagePeriod is the hourly period h of inst carrying total.
func usagePeriod(inst string, h int, total, records int64) store.UsagePeriod {
	return store.UsagePeriod{
		InstanceID: inst,
		Start:      hour(h),
		End:        hour(h + 1),
		Total:      total,
		Records:    records,
		MeteringSN: fmt.Sprintf("sn-%s-%d", inst, h),
	}
}

func normUsageRecord(r store.UsageRecord) store.UsageRecord {
	r.Time = normTime(r.Time)
	r.PeriodStart = normTime(r.PeriodStart)
	r.CreatedAt = normTime(r.CreatedAt)
	return r
}

func checkUsageRecord(t *testing.T, what string, got, want store.UsageRecord) {
	t.Helper()
	want.ID = got.ID
	if got.ID <= 0 {
		t.Errorf("%s: ID %d, want one assigned", what, got.ID)
	}
	if d := diff(normUsageRecord(got), normUsageRecord(want)); d != "" {
		t.Errorf("%s differs:%s", what, d)
	}
}

// insertRecords inserts recs in one transaction and returns inserted.
func insertRecords(t *testing.T, s store.Store, recs ...store.UsageRecord) []bool {
	t.Helper()
	var got []bool
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.InsertUsageRecords(ctx, recs)
		return err
	})
	if len(got) != len(recs) {
		t.Fatalf("InsertUsageRecords: %d results for %d records", len(got), len(recs))
	}
	return got
}

// addUsage adds p in its own transaction and returns ok.
func addUsage(t *testing.T, s store.Store, p store.UsagePeriod) bool {
	t.Helper()
	var ok bool
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		ok, err = tx.AddUsage(ctx, p)
		return err
	})
	return ok
}

// readPeriod reads the period (inst, hour h) outside transactions.
func readPeriod(t *testing.T, s store.Store, inst string, h int) store.UsagePeriod {
	t.Helper()
	p, err := s.UsagePeriod(t.Context(), store.UsagePeriodKey{InstanceID: inst, Start: hour(h)})
	noErr(t, fmt.Sprintf("UsagePeriod %s hour %d", inst, h), err)
	return p
}

// setPeriods runs SetUsagePeriods in its own transaction.
func setPeriods(t *testing.T, s store.Store, keys []store.UsagePeriodKey, state store.UsagePeriodState, pushID int64, code, msg string) {
	t.Helper()
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.SetUsagePeriods(ctx, keys, state, pushID, code, msg)
	})
}

// insertPush inserts p in its own transaction and returns its ID.
func insertPush(t *testing.T, s store.Store, p store.UsagePush) int64 {
	t.Helper()
	var id int64
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		id, err = tx.InsertUsagePush(ctx, p)
		return err
	})
	return id
}

// between fails unless v lies in [from, to].
func between(t *testing.T, what string, v, from, to time.Time) {
	t.Helper()
	if v.Before(from) || v.After(to) {
		t.Errorf("%s = %v, want now (between %v and %v)", what, v, from, to)
	}
}

func testUsageRecordsInsertAndRead(t *testing.T, s store.Store) {
	recs := []store.UsageRecord{
		usageRec("k1", "inst-a", 15000, 0),
		usageRec("k2", "inst-a", 1, 0),
		usageRec("k3", "inst-b", 999999999999, 1),
	}
	recs[2].Carried = true
	recs[2].ID = 12345 // ignored
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.InsertUsageRecords(ctx, recs)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []bool{true, true, true}) {
			t.Errorf("InsertUsageRecords = %v, want all inserted", got)
		}
		// A transaction reads its own writes.
		byKey, err := tx.UsageRecordsByKey(ctx, []string{"k1", "k3", "absent"})
		if err != nil {
			return err
		}
		if len(byKey) != 2 {
			t.Errorf("UsageRecordsByKey in tx: %d records, want 2", len(byKey))
		}
		checkUsageRecord(t, "k1 in tx", byKey["k1"], recs[0])
		return nil
	})
	byKey, err := s.UsageRecordsByKey(t.Context(), []string{"k3", "k2", "k1", "k1", "absent"})
	noErr(t, "UsageRecordsByKey", err)
	if len(byKey) != 3 {
		t.Fatalf("UsageRecordsByKey: %d records, want 3: %v", len(byKey), byKey)
	}
	for i, k := range []string{"k1", "k2", "k3"} {
		checkUsageRecord(t, k, byKey[k], recs[i])
	}
	if byKey["k1"].ID >= byKey["k2"].ID || byKey["k1"].ID == byKey["k3"].ID || byKey["k3"].ID == 12345 {
		t.Errorf("IDs k1 %d, k2 %d, k3 %d: want distinct, assigned by the store, in order",
			byKey["k1"].ID, byKey["k2"].ID, byKey["k3"].ID)
	}
	none, err := s.UsageRecordsByKey(t.Context(), nil)
	noErr(t, "UsageRecordsByKey of no keys", err)
	if len(none) != 0 {
		t.Errorf("UsageRecordsByKey of no keys: %v", none)
	}

	// A zero CreatedAt is now.
	before := time.Now().Add(-time.Second)
	r := usageRec("k4", "inst-a", 5, 0)
	r.CreatedAt = time.Time{}
	insertRecords(t, s, r)
	byKey, err = s.UsageRecordsByKey(t.Context(), []string{"k4"})
	noErr(t, "UsageRecordsByKey", err)
	between(t, "CreatedAt of a record inserted without one", byKey["k4"].CreatedAt, before, time.Now().Add(time.Second))

	// An empty call inserts nothing and fails nothing.
	if got := insertRecords(t, s); len(got) != 0 {
		t.Errorf("InsertUsageRecords of nothing = %v", got)
	}
}

// testUsageRecordsDuplicates: a key already stored, or repeated inside
// one call, is inserted once; the first content stays.
func testUsageRecordsDuplicates(t *testing.T, s store.Store) {
	first := usageRec("dup", "inst-a", 100, 0)
	other := usageRec("dup", "inst-b", 200, 2)
	got := insertRecords(t, s, first, usageRec("x", "inst-a", 1, 0), other, other)
	if !slices.Equal(got, []bool{true, true, false, false}) {
		t.Errorf("a key repeated in one call: %v, want [true true false false]", got)
	}
	got = insertRecords(t, s, usageRec("y", "inst-a", 1, 0), other, first, usageRec("y", "inst-a", 1, 0))
	if !slices.Equal(got, []bool{true, false, false, false}) {
		t.Errorf("keys stored by an earlier call: %v, want [true false false false]", got)
	}
	byKey, err := s.UsageRecordsByKey(t.Context(), []string{"dup"})
	noErr(t, "UsageRecordsByKey", err)
	checkUsageRecord(t, "record after duplicates", byKey["dup"], first)
	all, err := s.UsageRecords(t.Context(), store.UsageRecordFilter{})
	noErr(t, "UsageRecords", err)
	if len(all) != 3 {
		t.Errorf("%d records stored, want 3 (dup, x, y)", len(all))
	}
}

// testUsageRecordsConcurrentInsert is a vendor's retry storm: 30
// transactions insert one key at once; exactly one inserts it, and its
// content is what is stored.
func testUsageRecordsConcurrentInsert(t *testing.T, s store.Store) {
	const n = 30
	var (
		inserted = make([]bool, n)
		errs     = make([]error, n)
	)
	Race(n, func(i int) {
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			got, err := tx.InsertUsageRecords(ctx, []store.UsageRecord{usageRec("race", "inst-a", int64(i+1), 0)})
			if err == nil {
				inserted[i] = got[0]
			}
			return err
		})
	})
	winner := -1
	for i := range n {
		noErr(t, fmt.Sprintf("insert %d", i), errs[i])
		if inserted[i] {
			if winner >= 0 {
				t.Errorf("inserts %d and %d both report inserted", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no insert reports inserted")
	}
	byKey, err := s.UsageRecordsByKey(t.Context(), []string{"race"})
	noErr(t, "UsageRecordsByKey", err)
	if byKey["race"].Value != int64(winner+1) {
		t.Errorf("stored value %d, want the winner's %d", byKey["race"].Value, winner+1)
	}
}

// testUsageRecordsConcurrentBatches: batches sharing keys in opposite
// orders all succeed, and each key is inserted by exactly one.
func testUsageRecordsConcurrentBatches(t *testing.T, s store.Store) {
	const n, keys = 8, 50
	var (
		errs  = make([]error, n)
		count = make([]atomic.Int32, keys)
	)
	Race(n, func(i int) {
		batch := make([]store.UsageRecord, keys)
		for j := range keys {
			k := j
			if i%2 == 1 {
				k = keys - 1 - j
			}
			batch[j] = usageRec(fmt.Sprintf("shared-%03d", k), "inst-a", int64(k+1), 0)
		}
		var got []bool
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			var err error
			got, err = tx.InsertUsageRecords(ctx, batch)
			return err
		})
		// Counted once Tx is done: only the attempt that committed counts.
		for j, ok := range got {
			if ok && errs[i] == nil {
				count[int(batch[j].Value-1)].Add(1)
			}
		}
	})
	for i := range n {
		noErr(t, fmt.Sprintf("batch %d", i), errs[i])
	}
	for k := range keys {
		if c := count[k].Load(); c != 1 {
			t.Errorf("key %d reported inserted %d times, want 1", k, c)
		}
	}
	all, err := s.UsageRecords(t.Context(), store.UsageRecordFilter{Limit: 1000})
	noErr(t, "UsageRecords", err)
	if len(all) != keys {
		t.Errorf("%d records stored, want %d", len(all), keys)
	}
}

// testUsageRecordsLargeBatch: more records and keys than one statement
// of the SQLite store carries.
func testUsageRecordsLargeBatch(t *testing.T, s store.Store) {
	const n = 2500
	recs := make([]store.UsageRecord, n)
	keys := make([]string, n)
	for i := range n {
		recs[i] = usageRec(fmt.Sprintf("big-%05d", i), fmt.Sprintf("inst-%02d", i%7), int64(i+1), i%3)
		keys[i] = recs[i].IdempotencyKey
	}
	recs[n-1].IdempotencyKey = recs[0].IdempotencyKey // a repeat in another chunk
	got := insertRecords(t, s, recs...)
	for i, ok := range got {
		if ok != (i != n-1) {
			t.Errorf("record %d: inserted %v", i, ok)
		}
	}
	byKey, err := s.UsageRecordsByKey(t.Context(), keys)
	noErr(t, "UsageRecordsByKey", err)
	if len(byKey) != n-1 {
		t.Errorf("UsageRecordsByKey of %d keys: %d records, want %d", n, len(byKey), n-1)
	}
	if byKey[keys[0]].Value != 1 {
		t.Errorf("repeated key holds value %d, want the first occurrence's 1", byKey[keys[0]].Value)
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CarryUsageRecords(ctx, keys, hour(5)); err != nil {
			return err
		}
		byKey, err := tx.UsageRecordsByKey(ctx, keys)
		if err != nil {
			return err
		}
		for k, r := range byKey {
			if !r.Carried || !r.PeriodStart.Equal(hour(5)) {
				t.Errorf("record %s after carrying all: Carried %v, PeriodStart %v", k, r.Carried, r.PeriodStart)
				break
			}
		}
		return nil
	})
}

func testUsageCarryRecords(t *testing.T, s store.Store) {
	a, b, c := usageRec("c1", "inst-a", 1, 0), usageRec("c2", "inst-a", 2, 0), usageRec("c3", "inst-a", 3, 0)
	insertRecords(t, s, a, b, c)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.CarryUsageRecords(ctx, []string{"c1", "c3", "absent"}, hour(3)); err != nil {
			return err
		}
		return tx.CarryUsageRecords(ctx, nil, hour(4))
	})
	byKey, err := s.UsageRecordsByKey(t.Context(), []string{"c1", "c2", "c3"})
	noErr(t, "UsageRecordsByKey", err)
	for _, want := range []store.UsageRecord{a, c} {
		want.PeriodStart, want.Carried = hour(3), true
		checkUsageRecord(t, "carried "+want.IdempotencyKey, byKey[want.IdempotencyKey], want)
	}
	checkUsageRecord(t, "c2, not carried", byKey["c2"], b)
	recs, err := s.UsageRecords(t.Context(), store.UsageRecordFilter{InstanceID: "inst-a", PeriodStart: hour(3)})
	noErr(t, "UsageRecords", err)
	if len(recs) != 2 || recs[0].IdempotencyKey != "c3" || recs[1].IdempotencyKey != "c1" {
		t.Errorf("records of the period carried into: %+v, want c3, c1", recs)
	}
}

// testUsageAddUsage: the first AddUsage creates the period, later ones
// add to it; End, MeteringSN and State stay the creator's.
func testUsageAddUsage(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	p := usagePeriod("inst-a", 0, 15000, 2)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AddUsage(ctx, p)
		if err != nil || !ok {
			return fmt.Errorf("AddUsage creating = %v, %v; want true", ok, err)
		}
		later := usagePeriod("inst-a", 0, 5, 1)
		later.End = hour(7)
		later.MeteringSN = "other"
		ok, err = tx.AddUsage(ctx, later)
		if err != nil || !ok {
			return fmt.Errorf("AddUsage adding = %v, %v; want true", ok, err)
		}
		return nil
	})
	if !addUsage(t, s, usagePeriod("inst-a", 0, 10000, 3)) {
		t.Error("AddUsage to an open period in another transaction refused")
	}
	after := time.Now().Add(time.Second)
	got := readPeriod(t, s, "inst-a", 0)
	if got.ID <= 0 || got.Total != 25005 || got.Records != 6 || got.State != store.UsageOpen ||
		!got.End.Equal(hour(1)) || got.MeteringSN != p.MeteringSN || got.PushID != 0 || got.Code != "" || got.Message != "" {
		t.Errorf("period after three adds = %+v, want total 25005, 6 records, open, the creator's end and sn", got)
	}
	between(t, "CreatedAt", got.CreatedAt, before, after)
	between(t, "UpdatedAt", got.UpdatedAt, got.CreatedAt, after)

	// Another instance, another hour: other periods.
	addUsage(t, s, usagePeriod("inst-b", 0, 1, 1))
	addUsage(t, s, usagePeriod("inst-a", 1, 2, 1))
	if p := readPeriod(t, s, "inst-b", 0); p.Total != 1 {
		t.Errorf("inst-b hour 0 total %d, want 1", p.Total)
	}
	if p := readPeriod(t, s, "inst-a", 1); p.Total != 2 {
		t.Errorf("inst-a hour 1 total %d, want 2", p.Total)
	}
	_, err := s.UsagePeriod(t.Context(), store.UsagePeriodKey{InstanceID: "inst-a", Start: hour(2)})
	wantErr(t, "UsagePeriod of an absent period", err, store.ErrNotFound)

	// A period is created open or test only.
	for _, state := range []store.UsagePeriodState{store.UsagePushing, store.UsageAccepted, "bogus"} {
		bad := usagePeriod("inst-c", 0, 1, 1)
		bad.State = state
		err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			_, err := tx.AddUsage(ctx, bad)
			return err
		})
		if err == nil {
			t.Errorf("AddUsage creating a period in state %q succeeded", state)
		}
	}
	_, err = s.UsagePeriod(t.Context(), store.UsagePeriodKey{InstanceID: "inst-c", Start: hour(0)})
	wantErr(t, "UsagePeriod after refused creations", err, store.ErrNotFound)
}

// testUsageAddUsageSealed: a sealed period, whatever its state, takes no
// more usage: ok false, nothing changes.
func testUsageAddUsageSealed(t *testing.T, s store.Store) {
	for i, state := range []store.UsagePeriodState{store.UsagePushing, store.UsageAccepted, store.UsageRejected, store.UsageDead} {
		inst := fmt.Sprintf("inst-%d", i)
		addUsage(t, s, usagePeriod(inst, 0, 7, 1))
		key := []store.UsagePeriodKey{{InstanceID: inst, Start: hour(0)}}
		setPeriods(t, s, key, state, 9, "MKT.0000", "ok")
		sealed := readPeriod(t, s, inst, 0)
		if addUsage(t, s, usagePeriod(inst, 0, 5, 1)) {
			t.Errorf("AddUsage to a %s period reported ok", state)
		}
		// Also as the second statement of a transaction that goes on.
		inTx(t, s, func(ctx context.Context, tx store.Tx) error {
			ok, err := tx.AddUsage(ctx, usagePeriod(inst, 0, 5, 1))
			if err != nil || ok {
				return fmt.Errorf("AddUsage to a %s period = %v, %v; want false, nil", state, ok, err)
			}
			ok, err = tx.AddUsage(ctx, usagePeriod(inst, 1, 5, 1))
			if err != nil || !ok {
				return fmt.Errorf("AddUsage to the next period = %v, %v; want true", ok, err)
			}
			return nil
		})
		got := readPeriod(t, s, inst, 0)
		if d := diff(got, sealed); d != "" {
			t.Errorf("%s period changed by AddUsage:%s", state, d)
		}
		if p := readPeriod(t, s, inst, 1); p.Total != 5 {
			t.Errorf("next period total %d, want 5", p.Total)
		}
	}
}

// testUsageAddUsages: one call adds to open and test periods, creates
// absent ones, refuses sealed ones, and folds entries of one period.
func testUsageAddUsages(t *testing.T, s store.Store) {
	addUsage(t, s, usagePeriod("inst-a", 0, 10, 1))
	addUsage(t, s, usagePeriod("inst-s", 0, 10, 1))
	setPeriods(t, s, []store.UsagePeriodKey{{InstanceID: "inst-s", Start: hour(0)}}, store.UsageAccepted, 1, "MKT.0000", "")
	sealed := readPeriod(t, s, "inst-s", 0)
	test := usagePeriod("inst-t", 0, 3, 1)
	test.State = store.UsageTest
	second := usagePeriod("inst-b", 0, 4, 2)
	second.End, second.MeteringSN, second.State = hour(9), "other", store.UsageTest // the first entry creates
	batch := []store.UsagePeriod{
		usagePeriod("inst-b", 0, 1, 1), // new
		usagePeriod("inst-a", 0, 5, 2), // open
		usagePeriod("inst-s", 0, 5, 2), // sealed
		test,                           // new, test
		second,                         // inst-b again
		usagePeriod("inst-s", 0, 1, 1), // sealed again
	}
	var ok []bool
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		ok, err = tx.AddUsages(ctx, batch)
		return err
	})
	if want := []bool{true, true, false, true, true, false}; !slices.Equal(ok, want) {
		t.Errorf("AddUsages = %v, want %v", ok, want)
	}
	for _, tc := range []struct {
		inst           string
		total, records int64
		state          store.UsagePeriodState
		end            time.Time
		sn             string
	}{
		{"inst-a", 15, 3, store.UsageOpen, hour(1), "sn-inst-a-0"},
		{"inst-b", 5, 3, store.UsageOpen, hour(1), "sn-inst-b-0"},
		{"inst-t", 3, 1, store.UsageTest, hour(1), "sn-inst-t-0"},
	} {
		p := readPeriod(t, s, tc.inst, 0)
		if p.Total != tc.total || p.Records != tc.records || p.State != tc.state || !p.End.Equal(tc.end) || p.MeteringSN != tc.sn {
			t.Errorf("period of %s = %+v; want total %d, %d records, %s, end %v, sn %s", tc.inst, p,
				tc.total, tc.records, tc.state, tc.end, tc.sn)
		}
	}
	if d := diff(readPeriod(t, s, "inst-s", 0), sealed); d != "" {
		t.Errorf("sealed period changed by AddUsages:%s", d)
	}

	// Nothing to add; a bad state refuses the whole call.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AddUsages(ctx, nil)
		if err != nil || len(ok) != 0 {
			return fmt.Errorf("AddUsages of nothing = %v, %v", ok, err)
		}
		return nil
	})
	bad := usagePeriod("inst-c", 0, 1, 1)
	bad.State = store.UsageDead
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.AddUsages(ctx, []store.UsagePeriod{usagePeriod("inst-a", 0, 1, 1), bad})
		return err
	})
	if err == nil {
		t.Error("AddUsages creating a dead period succeeded")
	}
	if p := readPeriod(t, s, "inst-a", 0); p.Total != 15 {
		t.Errorf("period total %d after a refused AddUsages, want 15", p.Total)
	}
}

// testUsageTestPeriods: a test period takes usage like an open one but is
// never due.
func testUsageTestPeriods(t *testing.T, s store.Store) {
	p := usagePeriod("inst-t", 0, 3, 1)
	p.State = store.UsageTest
	if !addUsage(t, s, p) || !addUsage(t, s, usagePeriod("inst-t", 0, 4, 1)) {
		t.Fatal("AddUsage to a test period refused")
	}
	got := readPeriod(t, s, "inst-t", 0)
	if got.State != store.UsageTest || got.Total != 7 || got.Records != 2 {
		t.Errorf("test period = %+v, want test, total 7, 2 records", got)
	}
	addUsage(t, s, usagePeriod("inst-o", 0, 1, 1))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		due, err := tx.DueUsagePeriods(ctx, hour(100), 0)
		if err != nil {
			return err
		}
		if len(due) != 1 || due[0].InstanceID != "inst-o" {
			t.Errorf("due periods %+v, want inst-o's only (test periods are never due)", due)
		}
		return nil
	})
}

func testUsageTotals(t *testing.T, s store.Store) {
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.AddUsageTotal(ctx, "inst-a", 100, 2, hour(1)); err != nil {
			return err
		}
		if err := tx.AddUsageTotal(ctx, "inst-a", 50, 1, hour(0)); err != nil { // an older record
			return err
		}
		return tx.AddUsageTotal(ctx, "inst-b", 7, 1, hour(0))
	})
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.AddUsageTotal(ctx, "inst-b", 3, 2, hour(2))
	})
	got, err := s.UsageTotals(t.Context(), []string{"inst-a", "inst-b", "absent"})
	noErr(t, "UsageTotals", err)
	want := map[string]store.UsageTotal{
		"inst-a": {InstanceID: "inst-a", Total: 150, Records: 3, LastTime: hour(1)},
		"inst-b": {InstanceID: "inst-b", Total: 10, Records: 3, LastTime: hour(2)},
	}
	if len(got) != len(want) {
		t.Errorf("UsageTotals: %d entries, want %d: %+v", len(got), len(want), got)
	}
	for id, w := range want {
		g := got[id]
		g.LastTime = normTime(g.LastTime)
		if d := diff(g, w); d != "" {
			t.Errorf("total of %s differs:%s", id, d)
		}
	}
	none, err := s.UsageTotals(t.Context(), nil)
	noErr(t, "UsageTotals of nothing", err)
	if len(none) != 0 {
		t.Errorf("UsageTotals of nothing = %v", none)
	}
}

func testUsageTotalsBatch(t *testing.T, s store.Store) {
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.AddUsageTotal(ctx, "inst-a", 1, 1, hour(5))
	})
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.AddUsageTotals(ctx, nil); err != nil {
			return err
		}
		return tx.AddUsageTotals(ctx, []store.UsageTotal{
			{InstanceID: "inst-b", Total: 2, Records: 1, LastTime: hour(1)},
			{InstanceID: "inst-a", Total: 10, Records: 2, LastTime: hour(3)}, // older than the stored one
			{InstanceID: "inst-b", Total: 3, Records: 2, LastTime: hour(2)},
			{InstanceID: "inst-b", Total: 4, Records: 1, LastTime: hour(0)},
			{InstanceID: "inst-c", Total: 5, Records: 1}, // no time
		})
	})
	got, err := s.UsageTotals(t.Context(), []string{"inst-a", "inst-b", "inst-c"})
	noErr(t, "UsageTotals", err)
	want := map[string]store.UsageTotal{
		"inst-a": {InstanceID: "inst-a", Total: 11, Records: 3, LastTime: hour(5)},
		"inst-b": {InstanceID: "inst-b", Total: 9, Records: 4, LastTime: hour(2)},
		"inst-c": {InstanceID: "inst-c", Total: 5, Records: 1},
	}
	for id, w := range want {
		g := got[id]
		g.LastTime = normTime(g.LastTime)
		if d := diff(g, w); d != "" {
			t.Errorf("total of %s differs:%s", id, d)
		}
	}
	// A time after none moves LastTime.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.AddUsageTotals(ctx, []store.UsageTotal{{InstanceID: "inst-c", Total: 1, Records: 1, LastTime: hour(4)}})
	})
	got, err = s.UsageTotals(t.Context(), []string{"inst-c"})
	noErr(t, "UsageTotals", err)
	if c := got["inst-c"]; c.Total != 6 || !c.LastTime.Equal(hour(4)) {
		t.Errorf("total of inst-c = %+v, want 6 with LastTime %v", c, hour(4))
	}
}

// dueKeys lists the keys of the due periods, as "inst@hour".
func dueKeys(t *testing.T, s store.Store, before time.Time, n int) []string {
	t.Helper()
	var out []string
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		due, err := tx.DueUsagePeriods(ctx, before, n)
		for _, p := range due {
			out = append(out, fmt.Sprintf("%s@%d", p.InstanceID, int(p.Start.Sub(base)/time.Hour)))
		}
		return err
	})
	return out
}

func testUsageDuePeriods(t *testing.T, s store.Store) {
	// Created out of End order: due order is End, then ID.
	for _, p := range []store.UsagePeriod{
		usagePeriod("inst-c", 2, 1, 1),
		usagePeriod("inst-b", 0, 1, 1),
		usagePeriod("inst-a", 0, 1, 1),
		usagePeriod("inst-a", 1, 1, 1),
		usagePeriod("inst-a", 5, 1, 1),
	} {
		addUsage(t, s, p)
	}
	daily := usagePeriod("inst-d", 0, 1, 1)
	daily.End = hour(24)
	addUsage(t, s, daily)
	setPeriods(t, s, []store.UsagePeriodKey{{InstanceID: "inst-a", Start: hour(1)}}, store.UsagePushing, 1, "", "")

	for _, tc := range []struct {
		name   string
		before time.Time
		n      int
		want   []string
	}{
		{"all due", hour(100), 0, []string{"inst-b@0", "inst-a@0", "inst-c@2", "inst-a@5", "inst-d@0"}},
		{"End equal to before is due", hour(3), 0, []string{"inst-b@0", "inst-a@0", "inst-c@2"}},
		{"End after before is not", hour(3).Add(-time.Millisecond), 0, []string{"inst-b@0", "inst-a@0"}},
		{"limit", hour(100), 3, []string{"inst-b@0", "inst-a@0", "inst-c@2"}},
		{"none yet", hour(1).Add(-time.Millisecond), 0, nil},
	} {
		if got := dueKeys(t, s, tc.before, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
	due := func() []store.UsagePeriod {
		var out []store.UsagePeriod
		inTx(t, s, func(ctx context.Context, tx store.Tx) error {
			var err error
			out, err = tx.DueUsagePeriods(ctx, hour(1), 1)
			return err
		})
		return out
	}()
	if len(due) != 1 {
		t.Fatalf("due periods %+v, want one", due)
	}
	if d := diff(due[0], readPeriod(t, s, "inst-b", 0)); d != "" {
		t.Errorf("due period differs from the stored one:%s", d)
	}
}

// testUsageConcurrentSealers: sealers racing over the due periods (in
// PostgreSQL past each other's locks, in SQLite one after another) seal
// every period exactly once.
func testUsageConcurrentSealers(t *testing.T, s store.Store) {
	const periods, sealers = 60, 6
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range periods {
			if _, err := tx.AddUsage(ctx, usagePeriod(fmt.Sprintf("inst-%02d", i%10), i/10, 1, 1)); err != nil {
				return err
			}
		}
		return nil
	})
	var (
		mu     sync.Mutex
		sealed = map[store.UsagePeriodKey]int64{} // period → push
		errs   = make([]error, sealers)
	)
	Race(sealers, func(i int) {
		for round := int64(1); ; round++ {
			var got []store.UsagePeriod
			push := int64(i)*1000 + round
			err := s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
				var err error
				got, err = tx.DueUsagePeriods(ctx, hour(100), 4)
				if err != nil {
					return err
				}
				keys := make([]store.UsagePeriodKey, len(got))
				for j, p := range got {
					keys[j] = p.Key()
				}
				return tx.SetUsagePeriods(ctx, keys, store.UsagePushing, push, "", "")
			})
			if err != nil {
				errs[i] = err
				return
			}
			if len(got) == 0 {
				return
			}
			mu.Lock()
			for _, p := range got {
				if prev, ok := sealed[p.Key()]; ok {
					t.Errorf("period %s@%v sealed by push %d and again by push %d", p.InstanceID, p.Start, prev, push)
				}
				sealed[p.Key()] = push
			}
			mu.Unlock()
		}
	})
	for i, err := range errs {
		noErr(t, fmt.Sprintf("sealer %d", i), err)
	}
	if len(sealed) != periods {
		t.Errorf("%d periods sealed, want %d", len(sealed), periods)
	}
	for k, push := range sealed {
		p, err := s.UsagePeriod(t.Context(), k)
		noErr(t, "UsagePeriod", err)
		if p.State != store.UsagePushing || p.PushID != push {
			t.Errorf("period %s@%v: %s in push %d, want pushing in push %d", k.InstanceID, k.Start, p.State, p.PushID, push)
		}
	}
}

// testUsageConcurrentAddAndSeal: usage added while a sealer seals the
// period is either in the sealed total, as the sealer read it, or refused
// (and then added to the next period): never both, never lost.
func testUsageConcurrentAddAndSeal(t *testing.T, s store.Store) {
	const adders, adds = 8, 25
	var (
		intoFirst, intoNext atomic.Int64
		started             = make(chan struct{}) // closed once a third of the adds is in, or all are done
		startOnce           sync.Once
		addErrs             = make([]error, adders)
		sealedTotal         int64
		sealErr             error
		wg                  sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Seal once some usage is in, while the rest keeps coming.
		<-started
		for sealedTotal == 0 && sealErr == nil {
			sealErr = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
				due, err := tx.DueUsagePeriods(ctx, hour(1), 10)
				if err != nil || len(due) == 0 {
					// PostgreSQL: an adder holds the row; try again.
					return err
				}
				if len(due) != 1 || due[0].InstanceID != "inst-a" || !due[0].Start.Equal(hour(0)) {
					return fmt.Errorf("due periods %+v, want inst-a's first hour only", due)
				}
				sealedTotal = due[0].Total
				return tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{due[0].Key()}, store.UsagePushing, 7, "", "")
			})
		}
	}()
	Race(adders, func(i int) {
		for range adds {
			var first bool
			err := s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
				ok, err := tx.AddUsage(ctx, usagePeriod("inst-a", 0, 1, 1))
				if err != nil {
					return err
				}
				first = ok
				if !ok {
					if ok, err := tx.AddUsage(ctx, usagePeriod("inst-a", 1, 1, 1)); err != nil || !ok {
						return fmt.Errorf("AddUsage to the next period = %v, %v", ok, err)
					}
				}
				return nil
			})
			if err != nil {
				addErrs[i] = err
				return
			}
			if first {
				if intoFirst.Add(1) == adders*adds/3 {
					startOnce.Do(func() { close(started) })
				}
			} else {
				intoNext.Add(1)
			}
		}
	})
	startOnce.Do(func() { close(started) })
	wg.Wait()
	t.Logf("%d adds in the sealed period, %d refused and added to the next", intoFirst.Load(), intoNext.Load())
	noErr(t, "sealer", sealErr)
	for i, err := range addErrs {
		noErr(t, fmt.Sprintf("adder %d", i), err)
	}
	first := readPeriod(t, s, "inst-a", 0)
	if first.State != store.UsagePushing || first.Total != sealedTotal || first.Records != sealedTotal {
		t.Errorf("sealed period: %s, total %d, %d records; want pushing with the total the sealer read, %d",
			first.State, first.Total, first.Records, sealedTotal)
	}
	if first.Total != intoFirst.Load() {
		t.Errorf("sealed period total %d, but %d adds to it reported ok", first.Total, intoFirst.Load())
	}
	var next int64
	if intoNext.Load() > 0 {
		next = readPeriod(t, s, "inst-a", 1).Total
	}
	if next != intoNext.Load() || first.Total+next != adders*adds {
		t.Errorf("sealed %d + next %d (%d refused adds); want every one of %d adds counted once",
			first.Total, next, intoNext.Load(), adders*adds)
	}
}

func testUsagePushes(t *testing.T, s store.Store) {
	full := store.UsagePush{
		API: store.UsageAPIOld, ParentID: 3, Body: []byte(`{"records":[]}`), Records: 2,
		State: store.UsagePushSplit, Attempts: 4, Code: "MKT.0100", Message: "bad",
		CreatedAt: at(time.Minute), UpdatedAt: at(2 * time.Minute),
	}
	var id int64
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		id, err = tx.InsertUsagePush(ctx, full)
		if err != nil {
			return err
		}
		got, err := tx.UsagePush(ctx, id)
		if err != nil {
			return fmt.Errorf("UsagePush in tx: %w", err)
		}
		full.ID = id
		if d := diff(normPush(got), normPush(full)); d != "" {
			t.Errorf("push read in its transaction differs:%s", d)
		}
		return nil
	})
	got, err := s.UsagePush(t.Context(), id)
	noErr(t, "UsagePush", err)
	if d := diff(normPush(got), normPush(full)); d != "" {
		t.Errorf("push differs:%s", d)
	}

	before := time.Now().Add(-time.Second)
	id2 := insertPush(t, s, store.UsagePush{API: store.UsageAPINew, Body: []byte("b"), Records: 1})
	after := time.Now().Add(time.Second)
	p, err := s.UsagePush(t.Context(), id2)
	noErr(t, "UsagePush", err)
	if id2 <= id || p.State != store.UsagePushPending || p.Attempts != 0 || p.ParentID != 0 || p.Code != "" {
		t.Errorf("push inserted with defaults = %+v (id %d after %d), want pending, no attempts", p, id2, id)
	}
	between(t, "CreatedAt", p.CreatedAt, before, after)
	between(t, "UpdatedAt", p.UpdatedAt, before, after)

	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.UpdateUsagePush(ctx, store.UsagePush{ID: id2, State: store.UsagePushDone, Code: "MKT.0000",
			Message: "success", API: "ignored", Records: 99, Attempts: 99})
	})
	upd, err := s.UsagePush(t.Context(), id2)
	noErr(t, "UsagePush", err)
	if upd.State != store.UsagePushDone || upd.Code != "MKT.0000" || upd.Message != "success" ||
		upd.API != store.UsageAPINew || upd.Records != 1 || upd.Attempts != 0 || string(upd.Body) != "b" ||
		!upd.CreatedAt.Equal(p.CreatedAt) || upd.UpdatedAt.Before(p.UpdatedAt) {
		t.Errorf("push after UpdateUsagePush = %+v; want state, code and message changed, the rest kept", upd)
	}

	_, err = s.UsagePush(t.Context(), id2+100)
	wantErr(t, "UsagePush of an absent push", err, store.ErrNotFound)
	err = s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.UpdateUsagePush(ctx, store.UsagePush{ID: id2 + 100, State: store.UsagePushDone})
	})
	wantErr(t, "UpdateUsagePush of an absent push", err, store.ErrNotFound)
}

func normPush(p store.UsagePush) store.UsagePush {
	p.CreatedAt = normTime(p.CreatedAt)
	p.UpdatedAt = normTime(p.UpdatedAt)
	return p
}

func testUsagePushAttempts(t *testing.T, s store.Store) {
	id := insertPush(t, s, store.UsagePush{API: store.UsageAPINew, Body: []byte("b"), Records: 1,
		CreatedAt: at(0), UpdatedAt: at(0)})
	attempts := []store.UsagePushAttempt{
		{PushID: id, Attempt: 1, At: at(time.Minute), Duration: 60 * time.Second, Message: "context deadline exceeded"},
		// Answered in less than a millisecond: kept to the microsecond.
		{PushID: id, Attempt: 2, At: at(2 * time.Minute), Duration: 420 * time.Microsecond, HTTPStatus: 500,
			Code: "MKT.0999", Message: "system error"},
	}
	for _, a := range attempts {
		noErr(t, "InsertUsagePushAttempt", s.InsertUsagePushAttempt(t.Context(), a))
	}
	got, err := s.UsagePushAttempts(t.Context(), id)
	noErr(t, "UsagePushAttempts", err)
	if len(got) != 2 {
		t.Fatalf("%d attempts, want 2", len(got))
	}
	for i := range got {
		got[i].At = normTime(got[i].At)
		if d := diff(got[i], attempts[i]); d != "" {
			t.Errorf("attempt %d differs:%s", i+1, d)
		}
	}
	p, err := s.UsagePush(t.Context(), id)
	noErr(t, "UsagePush", err)
	if p.Attempts != 2 || p.Code != "MKT.0999" || p.Message != "system error" || p.UpdatedAt.Equal(at(0)) {
		t.Errorf("push after two attempts = %+v; want Attempts 2, the last answer, UpdatedAt now", p)
	}

	// An older attempt reported late keeps Attempts; an attempt number
	// reported again is replaced; a zero At is now.
	before := time.Now().Add(-time.Second)
	noErr(t, "late attempt", s.InsertUsagePushAttempt(t.Context(), store.UsagePushAttempt{PushID: id, Attempt: 1,
		HTTPStatus: 200, Code: "MKT.0000", Message: "success"}))
	p, err = s.UsagePush(t.Context(), id)
	noErr(t, "UsagePush", err)
	if p.Attempts != 2 || p.Code != "MKT.0000" {
		t.Errorf("push after a late first attempt: Attempts %d, Code %q; want 2, MKT.0000", p.Attempts, p.Code)
	}
	got, err = s.UsagePushAttempts(t.Context(), id)
	noErr(t, "UsagePushAttempts", err)
	if len(got) != 2 || got[0].Code != "MKT.0000" || got[0].HTTPStatus != 200 || got[0].Duration != 0 {
		t.Errorf("attempts after attempt 1 again = %+v; want 2, the first replaced (its duration too)", got)
	} else {
		between(t, "At of an attempt without one", got[0].At, before, time.Now().Add(time.Second))
	}

	err = s.InsertUsagePushAttempt(t.Context(), store.UsagePushAttempt{PushID: id + 1, Attempt: 1, Code: "x"})
	wantErr(t, "InsertUsagePushAttempt of an absent push", err, store.ErrNotFound)
	none, err := s.UsagePushAttempts(t.Context(), id+1)
	noErr(t, "UsagePushAttempts of an absent push", err)
	if len(none) != 0 {
		t.Errorf("attempts of an absent push: %+v, want none", none)
	}
}

func testUsageSetPeriods(t *testing.T, s store.Store) {
	for _, p := range []store.UsagePeriod{
		usagePeriod("inst-b", 0, 1, 1), usagePeriod("inst-a", 1, 2, 1), usagePeriod("inst-a", 0, 3, 1),
		usagePeriod("inst-c", 0, 4, 1),
	} {
		addUsage(t, s, p)
	}
	old := readPeriod(t, s, "inst-a", 0)
	id := insertPush(t, s, store.UsagePush{API: store.UsageAPINew, Body: []byte("b"), Records: 3})
	keys := []store.UsagePeriodKey{
		{InstanceID: "inst-a", Start: hour(1)}, {InstanceID: "inst-b", Start: hour(0)},
		{InstanceID: "inst-a", Start: hour(0)}, {InstanceID: "absent", Start: hour(0)},
		{InstanceID: "inst-a", Start: hour(0)},
	}
	setPeriods(t, s, keys, store.UsagePushing, id, "", "")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ps, err := tx.UsagePeriodsOfPush(ctx, id)
		if err != nil {
			return err
		}
		if len(ps) != 3 {
			t.Errorf("periods of the push in tx: %d, want 3", len(ps))
		}
		return nil
	})
	ps, err := s.UsagePeriodsOfPush(t.Context(), id)
	noErr(t, "UsagePeriodsOfPush", err)
	var names []string
	for _, p := range ps {
		names = append(names, fmt.Sprintf("%s@%d:%s:%d", p.InstanceID, int(p.Start.Sub(base)/time.Hour), p.State, p.PushID))
	}
	want := []string{
		fmt.Sprintf("inst-a@0:pushing:%d", id), fmt.Sprintf("inst-a@1:pushing:%d", id), fmt.Sprintf("inst-b@0:pushing:%d", id),
	}
	if !slices.Equal(names, want) {
		t.Errorf("periods of the push %v, want %v (by instance and start)", names, want)
	}
	if p := readPeriod(t, s, "inst-c", 0); p.State != store.UsageOpen || p.PushID != 0 {
		t.Errorf("a period not named changed: %+v", p)
	}

	// Per-record answers.
	setPeriods(t, s, keys[2:3], store.UsageRejected, id, "MKT.9002", "begin_time before the instance started")
	got := readPeriod(t, s, "inst-a", 0)
	if got.State != store.UsageRejected || got.PushID != id || got.Code != "MKT.9002" ||
		got.Message != "begin_time before the instance started" || got.Total != old.Total ||
		got.MeteringSN != old.MeteringSN || got.UpdatedAt.Before(old.UpdatedAt) || !got.CreatedAt.Equal(old.CreatedAt) {
		t.Errorf("period after SetUsagePeriods = %+v; want rejected with the answer, the rest kept", got)
	}
	none, err := s.UsagePeriodsOfPush(t.Context(), id+1)
	noErr(t, "UsagePeriodsOfPush of another push", err)
	if len(none) != 0 {
		t.Errorf("periods of a push without any: %+v", none)
	}
	setPeriods(t, s, nil, store.UsageDead, 0, "", "")
}

func testUsageFilters(t *testing.T, s store.Store) {
	// Periods: ids 1..6 in creation order.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, p := range []store.UsagePeriod{
			usagePeriod("inst-a", 0, 1, 1), usagePeriod("inst-b", 0, 1, 1), usagePeriod("inst-a", 1, 1, 1),
			usagePeriod("inst-a", 2, 1, 1), usagePeriod("inst-b", 1, 1, 1), usagePeriod("inst-c", 0, 1, 1),
		} {
			if _, err := tx.AddUsage(ctx, p); err != nil {
				return err
			}
		}
		return tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{
			{InstanceID: "inst-a", Start: hour(0)}, {InstanceID: "inst-b", Start: hour(0)},
		}, store.UsagePushing, 42, "", "")
	})
	name := func(p store.UsagePeriod) string {
		return fmt.Sprintf("%s@%d", p.InstanceID, int(p.Start.Sub(base)/time.Hour))
	}
	all, err := s.UsagePeriods(t.Context(), store.UsagePeriodFilter{})
	noErr(t, "UsagePeriods", err)
	if len(all) != 6 {
		t.Fatalf("%d periods, want 6", len(all))
	}
	for _, tc := range []struct {
		name string
		f    store.UsagePeriodFilter
		want []string
	}{
		{"all, newest first", store.UsagePeriodFilter{}, []string{"inst-c@0", "inst-b@1", "inst-a@2", "inst-a@1", "inst-b@0", "inst-a@0"}},
		{"instance", store.UsagePeriodFilter{InstanceID: "inst-a"}, []string{"inst-a@2", "inst-a@1", "inst-a@0"}},
		{"state", store.UsagePeriodFilter{State: store.UsagePushing}, []string{"inst-b@0", "inst-a@0"}},
		{"push", store.UsagePeriodFilter{PushID: 42}, []string{"inst-b@0", "inst-a@0"}},
		{"instance and state", store.UsagePeriodFilter{InstanceID: "inst-a", State: store.UsageOpen}, []string{"inst-a@2", "inst-a@1"}},
		{"page 1", store.UsagePeriodFilter{Limit: 2}, []string{"inst-c@0", "inst-b@1"}},
		{"page 2", store.UsagePeriodFilter{Limit: 2, BeforeID: all[1].ID}, []string{"inst-a@2", "inst-a@1"}},
		{"page 3", store.UsagePeriodFilter{Limit: 2, BeforeID: all[3].ID}, []string{"inst-b@0", "inst-a@0"}},
		{"after the last page", store.UsagePeriodFilter{BeforeID: all[5].ID}, nil},
		{"no match", store.UsagePeriodFilter{InstanceID: "inst-c", State: store.UsageAccepted}, nil},
	} {
		got, err := s.UsagePeriods(t.Context(), tc.f)
		noErr(t, "UsagePeriods "+tc.name, err)
		var names []string
		for _, p := range got {
			names = append(names, name(p))
		}
		if !slices.Equal(names, tc.want) {
			t.Errorf("UsagePeriods %s: %v, want %v", tc.name, names, tc.want)
		}
	}

	// Records.
	insertRecords(t, s, usageRec("r1", "inst-a", 1, 0), usageRec("r2", "inst-b", 1, 0), usageRec("r3", "inst-a", 1, 1),
		usageRec("r4", "inst-a", 1, 0))
	recs, err := s.UsageRecords(t.Context(), store.UsageRecordFilter{})
	noErr(t, "UsageRecords", err)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	for _, tc := range []struct {
		name string
		f    store.UsageRecordFilter
		want []string
	}{
		{"all, newest first", store.UsageRecordFilter{}, []string{"r4", "r3", "r2", "r1"}},
		{"instance", store.UsageRecordFilter{InstanceID: "inst-a"}, []string{"r4", "r3", "r1"}},
		{"instance and period", store.UsageRecordFilter{InstanceID: "inst-a", PeriodStart: hour(0)}, []string{"r4", "r1"}},
		{"period of every instance", store.UsageRecordFilter{PeriodStart: hour(0)}, []string{"r4", "r2", "r1"}},
		{"page", store.UsageRecordFilter{InstanceID: "inst-a", BeforeID: recs[0].ID, Limit: 1}, []string{"r3"}},
		{"no match", store.UsageRecordFilter{InstanceID: "inst-b", PeriodStart: hour(1)}, nil},
	} {
		got, err := s.UsageRecords(t.Context(), tc.f)
		noErr(t, "UsageRecords "+tc.name, err)
		var keys []string
		for _, r := range got {
			keys = append(keys, r.IdempotencyKey)
		}
		if !slices.Equal(keys, tc.want) {
			t.Errorf("UsageRecords %s: %v, want %v", tc.name, keys, tc.want)
		}
	}

	// Pushes.
	var ids []int64
	for _, state := range []store.UsagePushState{store.UsagePushPending, store.UsagePushDone, store.UsagePushPending, store.UsagePushSplit} {
		ids = append(ids, insertPush(t, s, store.UsagePush{API: store.UsageAPINew, Body: []byte("b"), State: state}))
	}
	for _, tc := range []struct {
		name string
		f    store.UsagePushFilter
		want []int64
	}{
		{"all, newest first", store.UsagePushFilter{}, []int64{ids[3], ids[2], ids[1], ids[0]}},
		{"state", store.UsagePushFilter{State: store.UsagePushPending}, []int64{ids[2], ids[0]}},
		{"page", store.UsagePushFilter{BeforeID: ids[2], Limit: 1}, []int64{ids[1]}},
		{"state and page", store.UsagePushFilter{State: store.UsagePushPending, BeforeID: ids[2]}, []int64{ids[0]}},
		{"no match", store.UsagePushFilter{State: "other"}, nil},
	} {
		got, err := s.UsagePushes(t.Context(), tc.f)
		noErr(t, "UsagePushes "+tc.name, err)
		var gotIDs []int64
		for _, p := range got {
			gotIDs = append(gotIDs, p.ID)
		}
		if !slices.Equal(gotIDs, tc.want) {
			t.Errorf("UsagePushes %s: %v, want %v", tc.name, gotIDs, tc.want)
		}
	}
}

func testUsageListLimits(t *testing.T, s store.Store) {
	const n = 1001
	recs := make([]store.UsageRecord, n)
	for i := range n {
		recs[i] = usageRec(fmt.Sprintf("lim-%04d", i), "inst-a", 1, 0)
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.InsertUsageRecords(ctx, recs); err != nil {
			return err
		}
		for i := range n {
			if _, err := tx.AddUsage(ctx, usagePeriod("inst-a", i, 1, 1)); err != nil {
				return err
			}
			if _, err := tx.InsertUsagePush(ctx, store.UsagePush{API: store.UsageAPINew, Body: []byte("b")}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {5, 5}, {1000, 1000}, {5000, 1000}} {
		periods, err := s.UsagePeriods(t.Context(), store.UsagePeriodFilter{Limit: tc.limit})
		noErr(t, "UsagePeriods", err)
		records, err := s.UsageRecords(t.Context(), store.UsageRecordFilter{Limit: tc.limit})
		noErr(t, "UsageRecords", err)
		pushes, err := s.UsagePushes(t.Context(), store.UsagePushFilter{Limit: tc.limit})
		noErr(t, "UsagePushes", err)
		var due []store.UsagePeriod
		inTx(t, s, func(ctx context.Context, tx store.Tx) error {
			due, err = tx.DueUsagePeriods(ctx, hour(n+1), tc.limit)
			return err
		})
		for what, got := range map[string]int{"periods": len(periods), "records": len(records), "pushes": len(pushes),
			"due periods": len(due)} {
			if got != tc.want {
				t.Errorf("limit %d: %d %s, want %d", tc.limit, got, what, tc.want)
			}
		}
	}
}

func testUsageCounts(t *testing.T, s store.Store) {
	counts, err := s.UsagePeriodCounts(t.Context(), "")
	noErr(t, "UsagePeriodCounts of nothing", err)
	if len(counts) != 0 {
		t.Errorf("counts of an empty store: %v", counts)
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for h := range 5 {
			for _, inst := range []string{"inst-a", "inst-b"} {
				if _, err := tx.AddUsage(ctx, usagePeriod(inst, h, 1, 1)); err != nil {
					return err
				}
			}
		}
		tp := usagePeriod("inst-t", 0, 1, 1)
		tp.State = store.UsageTest
		if _, err := tx.AddUsage(ctx, tp); err != nil {
			return err
		}
		k := func(inst string, h int) store.UsagePeriodKey {
			return store.UsagePeriodKey{InstanceID: inst, Start: hour(h)}
		}
		if err := tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{k("inst-a", 0), k("inst-a", 1), k("inst-b", 0)},
			store.UsageAccepted, 1, "MKT.0000", ""); err != nil {
			return err
		}
		if err := tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{k("inst-a", 2)}, store.UsagePushing, 2, "", ""); err != nil {
			return err
		}
		return tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{k("inst-b", 1)}, store.UsageDead, 0, "", "")
	})
	for _, tc := range []struct {
		inst string
		want map[store.UsagePeriodState]int64
	}{
		{"", map[store.UsagePeriodState]int64{store.UsageOpen: 5, store.UsageAccepted: 3, store.UsagePushing: 1,
			store.UsageDead: 1, store.UsageTest: 1}},
		{"inst-a", map[store.UsagePeriodState]int64{store.UsageOpen: 2, store.UsageAccepted: 2, store.UsagePushing: 1}},
		{"inst-b", map[store.UsagePeriodState]int64{store.UsageOpen: 3, store.UsageAccepted: 1, store.UsageDead: 1}},
		{"absent", map[store.UsagePeriodState]int64{}},
	} {
		got, err := s.UsagePeriodCounts(t.Context(), tc.inst)
		noErr(t, "UsagePeriodCounts", err)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("UsagePeriodCounts(%q) = %v, want %v", tc.inst, got, tc.want)
		}
	}
}

func testUsageOldestUnpushed(t *testing.T, s store.Store) {
	check := func(what string, want time.Time) {
		t.Helper()
		end, ok, err := s.OldestUnpushedUsage(t.Context())
		noErr(t, "OldestUnpushedUsage", err)
		if ok != !want.IsZero() || !normTime(end).Equal(want) {
			t.Errorf("%s: OldestUnpushedUsage = %v, %v; want %v", what, end, ok, want)
		}
	}
	check("empty store", time.Time{})
	tp := usagePeriod("inst-t", 0, 1, 1)
	tp.State = store.UsageTest
	addUsage(t, s, tp)
	check("a test period only", time.Time{})
	addUsage(t, s, usagePeriod("inst-a", 5, 1, 1))
	check("one open period", hour(6))
	addUsage(t, s, usagePeriod("inst-b", 3, 1, 1))
	setPeriods(t, s, []store.UsagePeriodKey{{InstanceID: "inst-b", Start: hour(3)}}, store.UsagePushing, 1, "", "")
	check("an older pushing period", hour(4))
	addUsage(t, s, usagePeriod("inst-c", 1, 1, 1))
	setPeriods(t, s, []store.UsagePeriodKey{{InstanceID: "inst-c", Start: hour(1)}}, store.UsageAccepted, 1, "", "")
	addUsage(t, s, usagePeriod("inst-d", 0, 1, 1))
	setPeriods(t, s, []store.UsagePeriodKey{{InstanceID: "inst-d", Start: hour(0)}}, store.UsageDead, 0, "", "")
	check("older accepted and dead periods", hour(4))
	setPeriods(t, s, []store.UsagePeriodKey{{InstanceID: "inst-b", Start: hour(3)}}, store.UsageRejected, 1, "", "")
	check("the pushing period rejected", hour(6))
	setPeriods(t, s, []store.UsagePeriodKey{{InstanceID: "inst-a", Start: hour(5)}}, store.UsageAccepted, 1, "", "")
	check("everything answered", time.Time{})
}

// testUsageRollback: a transaction that fails after metering writes
// leaves nothing of them.
func testUsageRollback(t *testing.T, s store.Store) {
	addUsage(t, s, usagePeriod("inst-a", 0, 10, 1))
	kept := readPeriod(t, s, "inst-a", 0)
	pushID := insertPush(t, s, store.UsagePush{API: store.UsageAPINew, Body: []byte("b")})
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.InsertUsageRecords(ctx, []store.UsageRecord{usageRec("rb", "inst-a", 5, 0)}); err != nil {
			return err
		}
		if err := tx.CarryUsageRecords(ctx, []string{"rb"}, hour(1)); err != nil {
			return err
		}
		for _, p := range []store.UsagePeriod{usagePeriod("inst-a", 0, 5, 1), usagePeriod("inst-a", 1, 5, 1)} {
			if _, err := tx.AddUsage(ctx, p); err != nil {
				return err
			}
		}
		if err := tx.AddUsageTotal(ctx, "inst-a", 5, 1, hour(0)); err != nil {
			return err
		}
		if _, err := tx.InsertUsagePush(ctx, store.UsagePush{API: store.UsageAPINew, Body: []byte("b")}); err != nil {
			return err
		}
		if err := tx.UpdateUsagePush(ctx, store.UsagePush{ID: pushID, State: store.UsagePushDone}); err != nil {
			return err
		}
		if err := tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{kept.Key()}, store.UsagePushing, pushID, "", ""); err != nil {
			return err
		}
		return errBoom
	})
	wantErr(t, "Tx", err, errBoom)
	if d := diff(readPeriod(t, s, "inst-a", 0), kept); d != "" {
		t.Errorf("period changed by a rolled-back transaction:%s", d)
	}
	_, err = s.UsagePeriod(t.Context(), store.UsagePeriodKey{InstanceID: "inst-a", Start: hour(1)})
	wantErr(t, "UsagePeriod created in a rolled-back transaction", err, store.ErrNotFound)
	recs, err := s.UsageRecordsByKey(t.Context(), []string{"rb"})
	noErr(t, "UsageRecordsByKey", err)
	if len(recs) != 0 {
		t.Errorf("record inserted in a rolled-back transaction: %+v", recs)
	}
	totals, err := s.UsageTotals(t.Context(), []string{"inst-a"})
	noErr(t, "UsageTotals", err)
	if len(totals) != 0 {
		t.Errorf("total added in a rolled-back transaction: %+v", totals)
	}
	pushes, err := s.UsagePushes(t.Context(), store.UsagePushFilter{})
	noErr(t, "UsagePushes", err)
	if len(pushes) != 1 || pushes[0].State != store.UsagePushPending {
		t.Errorf("pushes after a rolled-back transaction: %+v, want the one pending push", pushes)
	}
	// The key is free: the next attempt inserts it.
	if got := insertRecords(t, s, usageRec("rb", "inst-a", 5, 0)); !got[0] {
		t.Error("key of a rolled-back insert not inserted again")
	}
}

// BenchUsage measures the ingestion transaction: 1000 new records
// (InsertUsageRecords) and their sums (AddUsages per period, AddUsageTotals
// per instance), in one Tx, with the records spread over 10 or over 1000
// instances; and, for comparison, with one AddUsage and AddUsageTotal per
// period.
func BenchUsage(b *testing.B, open func(b *testing.B) store.Store) {
	for _, tc := range []struct {
		name      string
		instances int
		batched   bool
	}{
		{"Ingest1000/instances=10", 10, true},
		{"Ingest1000/instances=1000", 1000, true},
		{"Ingest1000PerPeriod/instances=1000", 1000, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := open(b)
			const batch = 1000
			recs := make([]store.UsageRecord, batch)
			n := 0
			for b.Loop() {
				for i := range recs {
					n++
					recs[i] = usageRec(fmt.Sprintf("bench-%09d", n), fmt.Sprintf("inst-%04d", i%tc.instances), 12345, 0)
				}
				err := s.Tx(b.Context(), func(ctx context.Context, tx store.Tx) error {
					inserted, err := tx.InsertUsageRecords(ctx, recs)
					if err != nil {
						return err
					}
					sums := map[string]*store.UsageTotal{}
					var ids []string
					for i, ok := range inserted {
						if !ok {
							continue
						}
						id := recs[i].InstanceID
						u := sums[id]
						if u == nil {
							u = &store.UsageTotal{InstanceID: id}
							sums[id] = u
							ids = append(ids, id)
						}
						u.Total += recs[i].Value
						u.Records++
						u.LastTime = recs[i].Time
					}
					slices.Sort(ids)
					periods := make([]store.UsagePeriod, len(ids))
					totals := make([]store.UsageTotal, len(ids))
					for j, id := range ids {
						periods[j] = usagePeriod(id, 0, sums[id].Total, sums[id].Records)
						totals[j] = *sums[id]
					}
					if !tc.batched {
						for j := range ids {
							if ok, err := tx.AddUsage(ctx, periods[j]); err != nil || !ok {
								return fmt.Errorf("AddUsage = %v, %v", ok, err)
							}
							u := totals[j]
							if err := tx.AddUsageTotal(ctx, u.InstanceID, u.Total, u.Records, u.LastTime); err != nil {
								return err
							}
						}
						return nil
					}
					ok, err := tx.AddUsages(ctx, periods)
					if err != nil {
						return err
					}
					if slices.Contains(ok, false) {
						return fmt.Errorf("AddUsages = %v", ok)
					}
					return tx.AddUsageTotals(ctx, totals)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// testUsageAddUsageLimit: a period sums at most MaxUsagePeriodTotal; an
// add that would pass it is refused and changes nothing, inside a
// transaction too; the period takes more usage up to the limit.
func testUsageAddUsageLimit(t *testing.T, s store.Store) {
	addUsage(t, s, usagePeriod("inst-a", 0, store.MaxUsagePeriodTotal-10, 1))
	if addUsage(t, s, usagePeriod("inst-a", 0, 11, 1)) {
		t.Error("AddUsage past the limit reported ok")
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.AddUsages(ctx, []store.UsagePeriod{usagePeriod("inst-a", 0, 11, 1), usagePeriod("inst-b", 0, 11, 1)})
		if err != nil || len(ok) != 2 || ok[0] || !ok[1] {
			return fmt.Errorf("AddUsages past the limit and elsewhere = %v, %v; want [false true]", ok, err)
		}
		p, err := tx.UsagePeriod(ctx, store.UsagePeriodKey{InstanceID: "inst-a", Start: hour(0)})
		if err != nil || p.Total != store.MaxUsagePeriodTotal-10 || p.State != store.UsageOpen {
			return fmt.Errorf("UsagePeriod in the transaction = %+v, %v; want the total unchanged, open", p, err)
		}
		return nil
	})
	if !addUsage(t, s, usagePeriod("inst-a", 0, 10, 1)) {
		t.Error("AddUsage up to the limit refused")
	}
	if got := readPeriod(t, s, "inst-a", 0); got.Total != store.MaxUsagePeriodTotal || got.Records != 2 {
		t.Errorf("period = %+v, want the limit over 2 records", got)
	}
}
