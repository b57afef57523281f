package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var licenseTests = []test{
	{"CodeInsertAndRead", testLicenseCodeInsertAndRead},
	{"CodeDefaults", testLicenseCodeDefaults},
	{"CodeDuplicate", testLicenseCodeDuplicate},
	{"CodeConcurrentInsert", testLicenseCodeConcurrentInsert},
	{"CodeUpdate", testLicenseCodeUpdate},
	{"CodeUpdateConflictAndNotFound", testLicenseCodeUpdateConflict},
	{"CodeList", testLicenseCodeList},
	{"Events", testLicenseEvents},
	{"EventOfUnknownCode", testLicenseEventUnknownCode},
	{"Devices", testLicenseDevices},
	{"DeviceConcurrentUpsert", testLicenseDeviceConcurrentUpsert},
	{"DeviceDelete", testLicenseDeviceDelete},
	{"DeviceConcurrentDelete", testLicenseDeviceConcurrentDelete},
	{"DeviceTouch", testLicenseDeviceTouch},
	{"DeviceConcurrentTouchAndDelete", testLicenseDeviceConcurrentTouchAndDelete},
	{"UnreportedDevices", testLicenseUnreportedDevices},
	{"GrantInsertAndRead", testLicenseGrantInsertAndRead},
	{"GrantDefaults", testLicenseGrantDefaults},
	{"GrantConcurrentInsert", testLicenseGrantConcurrentInsert},
	{"GrantUpdate", testLicenseGrantUpdate},
	{"GrantByInstance", testLicenseGrantByInstance},
	{"GrantList", testLicenseGrantList},
	{"Uploads", testLicenseUploads},
	{"Keys", testLicenseKeys},
	{"KeysConcurrent", testLicenseKeysConcurrent},
	{"ListLimits", testLicenseListLimits},
	{"Rollback", testLicenseRollback},
}

// fullCode has every field a caller sets at a distinct, non-zero value.
func fullCode(code string, test bool) store.LicenseCode {
	return store.LicenseCode{
		Code:            code,
		Test:            test,
		Status:          store.LicenseFrozen,
		ExpireTime:      at(30 * 24 * time.Hour),
		ExpireEstimated: true,
		OrderID:         "CS-" + code,
		OrderLineID:     "CS-" + code + "-000001",
		ProductID:       "OFFI-LICENSE",
		Amount:          3,
		ActivatedAt:     at(time.Minute),
		CheckedAt:       at(2 * time.Minute),
		RemoteStatus:    "ALIVE",
		ConfirmedAt:     at(3 * time.Minute),
		CreatedAt:       at(11 * time.Millisecond),
		UpdatedAt:       at(12 * time.Millisecond),
		Version:         0,
	}
}

func normCode(c store.LicenseCode) store.LicenseCode {
	c.ExpireTime = normTime(c.ExpireTime)
	c.ActivatedAt = normTime(c.ActivatedAt)
	c.CheckedAt = normTime(c.CheckedAt)
	c.ConfirmedAt = normTime(c.ConfirmedAt)
	c.CreatedAt = normTime(c.CreatedAt)
	c.UpdatedAt = normTime(c.UpdatedAt)
	return c
}

func checkCode(t *testing.T, what string, got, want store.LicenseCode) {
	t.Helper()
	if d := diff(normCode(got), normCode(want)); d != "" {
		t.Errorf("%s differs:%s", what, d)
	}
}

// insertCode inserts c in its own transaction and returns it as stored.
func insertCode(t *testing.T, s store.Store, c store.LicenseCode) store.LicenseCode {
	t.Helper()
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertLicenseCode(ctx, c)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("license code %s (test %t) not inserted", c.Code, c.Test)
		}
		return nil
	})
	got, err := s.LicenseCode(t.Context(), c.Code, c.Test)
	noErr(t, "LicenseCode", err)
	return got
}

func testLicenseCodeInsertAndRead(t *testing.T, s store.Store) {
	want := fullCode("LC-0001", false)
	want.Version = 7 // stored as given
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertLicenseCode(ctx, want)
		if err != nil || !ok {
			return fmt.Errorf("InsertLicenseCode = %v, %v; want true, nil", ok, err)
		}
		// A transaction reads its own writes.
		got, err := tx.LicenseCode(ctx, want.Code, want.Test)
		if err != nil {
			return fmt.Errorf("read in tx: %w", err)
		}
		checkCode(t, "LicenseCode in tx", got, want)
		return nil
	})
	got, err := s.LicenseCode(t.Context(), want.Code, want.Test)
	noErr(t, "LicenseCode", err)
	checkCode(t, "LicenseCode", got, want)

	for _, tc := range []struct {
		name string
		code string
		test bool
	}{
		{"the test twin of a real code", "LC-0001", true},
		{"another code", "LC-0002", false},
		{"a prefix", "LC-000", false},
	} {
		_, err := s.LicenseCode(t.Context(), tc.code, tc.test)
		wantErr(t, "LicenseCode of "+tc.name, err, store.ErrNotFound)
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.LicenseCode(ctx, "LC-0001", true)
		wantErr(t, "LicenseCode in tx of an absent code", err, store.ErrNotFound)
		return nil
	})
}

// testLicenseCodeDefaults: an empty Status is active, zero CreatedAt and
// UpdatedAt are now, and the other zero times stay zero (unknown).
func testLicenseCodeDefaults(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	got := insertCode(t, s, store.LicenseCode{Code: "LC-D"})
	after := time.Now().Add(time.Second)
	if got.Status != store.LicenseActive {
		t.Errorf("Status %q, want active for an empty status", got.Status)
	}
	if !got.ExpireTime.IsZero() || !got.ActivatedAt.IsZero() || !got.CheckedAt.IsZero() || !got.ConfirmedAt.IsZero() {
		t.Errorf("ExpireTime %v, ActivatedAt %v, CheckedAt %v, ConfirmedAt %v; want zero (unknown)",
			got.ExpireTime, got.ActivatedAt, got.CheckedAt, got.ConfirmedAt)
	}
	if got.Test || got.ExpireEstimated || got.OrderID != "" || got.Amount != 0 || got.RemoteStatus != "" || got.Version != 0 {
		t.Errorf("zero code stored as %+v", got)
	}
	for name, v := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt} {
		if v.Before(before) || v.After(after) {
			t.Errorf("%s = %v, want now (between %v and %v)", name, v, before, after)
		}
	}
}

func testLicenseCodeDuplicate(t *testing.T, s store.Store) {
	first := insertCode(t, s, fullCode("LC-DUP", false))
	dup := fullCode("LC-DUP", false)
	dup.Status = store.LicenseReleased
	dup.OrderID = "other"
	dup.Amount = 9
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertLicenseCode(ctx, dup)
		if err != nil {
			return err
		}
		if ok {
			t.Error("second InsertLicenseCode of one (code, test) reported inserted")
		}
		return nil
	})
	got, err := s.LicenseCode(t.Context(), "LC-DUP", false)
	noErr(t, "LicenseCode", err)
	checkCode(t, "code after a duplicate insert", got, first)

	// The same code as a test code is another code.
	twin := insertCode(t, s, fullCode("LC-DUP", true))
	if !twin.Test {
		t.Error("test twin stored as a real code")
	}
	all, err := s.LicenseCodes(t.Context(), store.LicenseCodeFilter{})
	noErr(t, "LicenseCodes", err)
	if len(all) != 2 {
		t.Errorf("%d codes stored, want 2", len(all))
	}
}

// testLicenseCodeConcurrentInsert is KooGallery's retry storm: 50
// production calls about one code at once record it once.
func testLicenseCodeConcurrentInsert(t *testing.T, s store.Store) {
	const n = 50
	var (
		inserted = make([]bool, n)
		errs     = make([]error, n)
	)
	Race(n, func(i int) {
		c := fullCode("LC-RACE", false)
		c.OrderID = fmt.Sprintf("goroutine-%02d", i)
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			ok, err := tx.InsertLicenseCode(ctx, c)
			inserted[i] = ok
			return err
		})
	})
	winner := -1
	for i := range n {
		noErr(t, fmt.Sprintf("goroutine %d", i), errs[i])
		if inserted[i] {
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both inserted one code", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine inserted the code")
	}
	got, err := s.LicenseCode(t.Context(), "LC-RACE", false)
	noErr(t, "LicenseCode", err)
	if want := fmt.Sprintf("goroutine-%02d", winner); got.OrderID != want {
		t.Errorf("stored code has OrderID %q, want the winner's %q", got.OrderID, want)
	}
	all, err := s.LicenseCodes(t.Context(), store.LicenseCodeFilter{})
	noErr(t, "LicenseCodes", err)
	if len(all) != 1 {
		t.Errorf("%d codes stored, want 1", len(all))
	}
}

func testLicenseCodeUpdate(t *testing.T, s store.Store) {
	stored := insertCode(t, s, fullCode("LC-UPD", false))
	upd := stored
	upd.Status = store.LicenseReleased
	upd.ExpireTime = at(60 * 24 * time.Hour)
	upd.ExpireEstimated = false
	upd.OrderID = "CS-RENEW"
	upd.OrderLineID = "CS-RENEW-000001"
	upd.ProductID = "OFFI-OTHER"
	upd.Amount = 5
	upd.ActivatedAt = at(3 * time.Minute)
	upd.CheckedAt = at(4 * time.Minute)
	upd.RemoteStatus = "RELEASED"
	upd.ConfirmedAt = at(5 * time.Minute)
	upd.UpdatedAt = at(time.Hour)
	upd.CreatedAt = at(time.Hour) // fixed at insert: ignored
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.UpdateLicenseCode(ctx, upd)
	})
	got, err := s.LicenseCode(t.Context(), "LC-UPD", false)
	noErr(t, "LicenseCode", err)
	want := upd
	want.CreatedAt = stored.CreatedAt
	want.Version = stored.Version + 1
	checkCode(t, "updated code", got, want)

	// Zero times are written as zero, but a zero UpdatedAt is now.
	clear := got
	clear.ExpireTime, clear.ActivatedAt, clear.CheckedAt, clear.ConfirmedAt, clear.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	clear.ExpireEstimated = true
	before := time.Now().Add(-time.Second)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.UpdateLicenseCode(ctx, clear)
	})
	got, err = s.LicenseCode(t.Context(), "LC-UPD", false)
	noErr(t, "LicenseCode", err)
	if !got.ExpireTime.IsZero() || !got.ActivatedAt.IsZero() || !got.CheckedAt.IsZero() || !got.ConfirmedAt.IsZero() {
		t.Errorf("times not cleared: %+v", got)
	}
	if !got.ExpireEstimated {
		t.Errorf("ExpireEstimated not set back: %+v", got)
	}
	if got.UpdatedAt.Before(before) || got.Version != stored.Version+2 {
		t.Errorf("UpdatedAt %v (want now), Version %d (want %d)", got.UpdatedAt, got.Version, stored.Version+2)
	}
	// The test twin is untouched by updates of the real code.
	twin := insertCode(t, s, fullCode("LC-UPD", true))
	checkCode(t, "test twin", twin, fullCode("LC-UPD", true))
}

func testLicenseCodeUpdateConflict(t *testing.T, s store.Store) {
	stored := insertCode(t, s, fullCode("LC-CONF", false))
	for _, tc := range []struct {
		name    string
		mutate  func(c *store.LicenseCode)
		wantErr error
	}{
		{"stale version", func(c *store.LicenseCode) { c.Version = stored.Version - 1 }, store.ErrConflict},
		{"future version", func(c *store.LicenseCode) { c.Version = stored.Version + 1 }, store.ErrConflict},
		{"absent code", func(c *store.LicenseCode) { c.Code = "LC-NONE" }, store.ErrNotFound},
		{"absent test twin", func(c *store.LicenseCode) { c.Test = true }, store.ErrNotFound},
	} {
		c := stored
		c.Status = store.LicenseReleased
		tc.mutate(&c)
		err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateLicenseCode(ctx, c)
		})
		wantErr(t, "UpdateLicenseCode with "+tc.name, err, tc.wantErr)
	}
	got, err := s.LicenseCode(t.Context(), "LC-CONF", false)
	noErr(t, "LicenseCode", err)
	checkCode(t, "code after refused updates", got, stored)

	// Two writers that read the same version: one wins, one conflicts.
	var wins, conflicts atomic.Int64
	Race(10, func(i int) {
		err := s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			c := stored
			c.RemoteStatus = strconv.Itoa(i)
			return tx.UpdateLicenseCode(ctx, c)
		})
		switch {
		case err == nil:
			wins.Add(1)
		case errors.Is(err, store.ErrConflict):
			conflicts.Add(1)
		default:
			t.Errorf("writer %d: %v", i, err)
		}
	})
	if wins.Load() != 1 || conflicts.Load() != 9 {
		t.Errorf("%d writers won and %d conflicted, want 1 and 9", wins.Load(), conflicts.Load())
	}
}

func testLicenseCodeList(t *testing.T, s store.Store) {
	yes, no := true, false
	type row struct {
		code   string
		test   bool
		status store.LicenseStatus
		order  string
	}
	for _, r := range []row{
		{"LC-E", false, store.LicenseActive, "O1"},
		{"LC-A", false, store.LicenseFrozen, "O1"},
		{"LC-C", true, store.LicenseActive, "O2"},
		{"LC-B", false, store.LicenseActive, "O2"},
		{"LC-D", false, store.LicenseReleased, "O1"},
		{"LC-B", true, store.LicenseActive, "O2"},
	} {
		c := fullCode(r.code, r.test)
		c.Status = r.status
		c.OrderID = r.order
		insertCode(t, s, c)
	}
	key := func(c store.LicenseCode) string { return c.Code + map[bool]string{true: "/test", false: ""}[c.Test] }
	for _, tc := range []struct {
		name string
		f    store.LicenseCodeFilter
		want []string
	}{
		{"all", store.LicenseCodeFilter{}, []string{"LC-A", "LC-B", "LC-B/test", "LC-C/test", "LC-D", "LC-E"}},
		{"active", store.LicenseCodeFilter{Status: store.LicenseActive}, []string{"LC-B", "LC-B/test", "LC-C/test", "LC-E"}},
		{"order O1", store.LicenseCodeFilter{OrderID: "O1"}, []string{"LC-A", "LC-D", "LC-E"}},
		{"test", store.LicenseCodeFilter{Test: &yes}, []string{"LC-B/test", "LC-C/test"}},
		{"real", store.LicenseCodeFilter{Test: &no}, []string{"LC-A", "LC-B", "LC-D", "LC-E"}},
		{"real active of O2", store.LicenseCodeFilter{Test: &no, Status: store.LicenseActive, OrderID: "O2"}, []string{"LC-B"}},
		{"after LC-B", store.LicenseCodeFilter{AfterCode: "LC-B"}, []string{"LC-C/test", "LC-D", "LC-E"}},
		{"limit", store.LicenseCodeFilter{Limit: 2}, []string{"LC-A", "LC-B"}},
		{"after, limit", store.LicenseCodeFilter{AfterCode: "LC-C", Limit: 1}, []string{"LC-D"}},
		{"after the last", store.LicenseCodeFilter{AfterCode: "LC-E"}, nil},
		{"no match", store.LicenseCodeFilter{OrderID: "O9"}, nil},
	} {
		got, err := s.LicenseCodes(t.Context(), tc.f)
		noErr(t, "LicenseCodes "+tc.name, err)
		var keys []string
		for _, c := range got {
			keys = append(keys, key(c))
		}
		if fmt.Sprint(keys) != fmt.Sprint(tc.want) {
			t.Errorf("LicenseCodes %s = %v, want %v", tc.name, keys, tc.want)
		}
	}
	got, err := s.LicenseCodes(t.Context(), store.LicenseCodeFilter{OrderID: "O1", Limit: 1})
	noErr(t, "LicenseCodes", err)
	want := fullCode("LC-A", false)
	want.OrderID = "O1"
	if len(got) != 1 {
		t.Fatalf("LicenseCodes: %d codes, want 1", len(got))
	}
	checkCode(t, "listed code", got[0], want)
}

func testLicenseEvents(t *testing.T, s store.Store) {
	insertCode(t, s, fullCode("LC-EV", false))
	insertCode(t, s, fullCode("LC-EV", true))
	type ev struct {
		kind string
		at   time.Duration
	}
	ids := map[string]int64{}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, e := range []ev{{"activated", 1}, {"frozen", 3}, {"checked", 2}, {"unfrozen", 3}, {"renewed", 4}} {
			id, err := tx.InsertLicenseEvent(ctx, store.LicenseEvent{ID: 999, Code: "LC-EV", Kind: e.kind, Source: "koogallery",
				Detail: `{"kind":"` + e.kind + `"}`, At: at(e.at * time.Second)})
			if err != nil {
				return err
			}
			ids[e.kind] = id
		}
		// The test twin has its own history.
		_, err := tx.InsertLicenseEvent(ctx, store.LicenseEvent{Code: "LC-EV", Test: true, Kind: "released", Source: "koogallery",
			At: at(10 * time.Second)})
		return err
	})
	if ids["frozen"] == 999 || ids["frozen"] <= 0 || ids["unfrozen"] <= ids["frozen"] {
		t.Errorf("event IDs %v: want store-assigned, increasing", ids)
	}
	for _, tc := range []struct {
		name  string
		limit int
		want  []string
	}{
		// Newest At first; of two at one instant, the later written.
		{"all", 0, []string{"renewed", "unfrozen", "frozen", "checked", "activated"}},
		{"limit 2", 2, []string{"renewed", "unfrozen"}},
		{"limit 1", 1, []string{"renewed"}},
	} {
		got, err := s.LicenseEvents(t.Context(), "LC-EV", false, tc.limit)
		noErr(t, "LicenseEvents "+tc.name, err)
		var kinds []string
		for _, e := range got {
			kinds = append(kinds, e.Kind)
		}
		if fmt.Sprint(kinds) != fmt.Sprint(tc.want) {
			t.Errorf("LicenseEvents %s = %v, want %v", tc.name, kinds, tc.want)
		}
	}
	got, err := s.LicenseEvents(t.Context(), "LC-EV", false, 1)
	noErr(t, "LicenseEvents", err)
	want := store.LicenseEvent{ID: ids["renewed"], Code: "LC-EV", Kind: "renewed", Source: "koogallery",
		Detail: `{"kind":"renewed"}`, At: at(4 * time.Second)}
	got[0].At = normTime(got[0].At)
	if d := diff(got[0], want); d != "" {
		t.Errorf("event:%s", d)
	}
	twin, err := s.LicenseEvents(t.Context(), "LC-EV", true, 0)
	noErr(t, "LicenseEvents of the test twin", err)
	if len(twin) != 1 || twin[0].Kind != "released" || !twin[0].Test {
		t.Errorf("LicenseEvents of the test twin = %+v, want its one released event", twin)
	}
	none, err := s.LicenseEvents(t.Context(), "LC-NONE", false, 0)
	noErr(t, "LicenseEvents of an absent code", err)
	if len(none) != 0 {
		t.Errorf("LicenseEvents of an absent code = %+v", none)
	}

	// A zero At is now.
	before := time.Now().Add(-time.Second)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.InsertLicenseEvent(ctx, store.LicenseEvent{Code: "LC-EV", Test: true, Kind: "device", Source: "client"})
		return err
	})
	twin, err = s.LicenseEvents(t.Context(), "LC-EV", true, 0)
	noErr(t, "LicenseEvents", err)
	if len(twin) != 2 || twin[0].Kind != "device" || twin[0].At.Before(before) || twin[0].At.After(time.Now().Add(time.Second)) {
		t.Errorf("event with a zero At: %+v, want it first, at now", twin)
	}
}

// testLicenseEventUnknownCode: history and devices belong to a recorded
// code.
func testLicenseEventUnknownCode(t *testing.T, s store.Store) {
	insertCode(t, s, fullCode("LC-K", false))
	for _, tc := range []struct {
		name string
		fn   func(ctx context.Context, tx store.Tx) error
	}{
		{"event of an absent code", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.InsertLicenseEvent(ctx, store.LicenseEvent{Code: "LC-NONE", Kind: "frozen"})
			return err
		}},
		{"event of the absent test twin", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.InsertLicenseEvent(ctx, store.LicenseEvent{Code: "LC-K", Test: true, Kind: "frozen"})
			return err
		}},
		{"device of an absent code", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "LC-NONE", Device: "d1"})
			return err
		}},
		{"device of the absent test twin", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "LC-K", Test: true, Device: "d1"})
			return err
		}},
	} {
		wantErr(t, tc.name, s.Tx(t.Context(), tc.fn), store.ErrNotFound)
	}
	devices, err := s.LicenseDevices(t.Context(), "LC-K", true)
	noErr(t, "LicenseDevices", err)
	events, err := s.LicenseEvents(t.Context(), "LC-K", true, 0)
	noErr(t, "LicenseEvents", err)
	if len(devices)+len(events) != 0 {
		t.Errorf("refused writes stored %d devices and %d events", len(devices), len(events))
	}
}

// upsertDevice upserts d in its own transaction and returns whether it
// inserted.
func upsertDevice(t *testing.T, s store.Store, d store.LicenseDevice) bool {
	t.Helper()
	var ok bool
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		ok, err = tx.UpsertLicenseDevice(ctx, d)
		return err
	})
	return ok
}

func normDevice(d store.LicenseDevice) store.LicenseDevice {
	d.FirstSeen = normTime(d.FirstSeen)
	d.LastSeen = normTime(d.LastSeen)
	d.ReportedAt = normTime(d.ReportedAt)
	return d
}

// checkDevices compares the devices of a code with want, in order.
func checkDevices(t *testing.T, s store.Store, code string, test bool, want []store.LicenseDevice) {
	t.Helper()
	got, err := s.LicenseDevices(t.Context(), code, test)
	noErr(t, "LicenseDevices", err)
	if len(got) != len(want) {
		t.Fatalf("LicenseDevices(%s, %t): %d devices %+v, want %d", code, test, len(got), got, len(want))
	}
	for i := range want {
		if d := diff(normDevice(got[i]), want[i]); d != "" {
			t.Errorf("LicenseDevices(%s, %t)[%d]:%s", code, test, i, d)
		}
	}
}

func testLicenseDevices(t *testing.T, s store.Store) {
	insertCode(t, s, fullCode("LC-DEV", false))
	insertCode(t, s, fullCode("LC-DEV", true))
	dev := func(device string, first, last time.Duration) store.LicenseDevice {
		return store.LicenseDevice{Code: "LC-DEV", Device: device, FirstSeen: at(first * time.Minute), LastSeen: at(last * time.Minute)}
	}
	for _, tc := range []struct {
		name string
		d    store.LicenseDevice
		want bool
	}{
		{"first device", dev("bb", 5, 5), true},
		{"older device", dev("cc", 1, 2), true},
		{"same first seen", dev("aa", 5, 6), true},
		{"seen again later", dev("bb", 9, 10), false},
		{"seen again earlier", dev("cc", 0, 1), false},
		{"seen again at once", dev("aa", 5, 6), false},
	} {
		if got := upsertDevice(t, s, tc.d); got != tc.want {
			t.Errorf("UpsertLicenseDevice %s: inserted %v, want %v", tc.name, got, tc.want)
		}
	}
	// FirstSeen is kept; LastSeen only moves forward; oldest FirstSeen
	// first, then by device.
	checkDevices(t, s, "LC-DEV", false, []store.LicenseDevice{
		{Code: "LC-DEV", Device: "cc", FirstSeen: at(1 * time.Minute), LastSeen: at(2 * time.Minute)},
		{Code: "LC-DEV", Device: "aa", FirstSeen: at(5 * time.Minute), LastSeen: at(6 * time.Minute)},
		{Code: "LC-DEV", Device: "bb", FirstSeen: at(5 * time.Minute), LastSeen: at(10 * time.Minute)},
	})
	checkDevices(t, s, "LC-DEV", true, nil)

	// The test twin's devices are its own; a zero FirstSeen and LastSeen
	// are now; ReportedAt is stored as given.
	before := time.Now().Add(-time.Second)
	if !upsertDevice(t, s, store.LicenseDevice{Code: "LC-DEV", Test: true, Device: "bb", ReportedAt: at(time.Hour)}) {
		t.Error("device of the test twin not inserted")
	}
	got, err := s.LicenseDevices(t.Context(), "LC-DEV", true)
	noErr(t, "LicenseDevices", err)
	after := time.Now().Add(time.Second)
	if len(got) != 1 || got[0].FirstSeen.Before(before) || got[0].LastSeen.After(after) || got[0].LastSeen.Before(before) ||
		!got[0].ReportedAt.Equal(at(time.Hour)) {
		t.Errorf("device with zero times = %+v, want FirstSeen and LastSeen now", got)
	}
	// A device read in the writing transaction.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.UpsertLicenseDevice(ctx, dev("dd", 20, 20)); err != nil {
			return err
		}
		got, err := tx.LicenseDevices(ctx, "LC-DEV", false)
		if err != nil {
			return err
		}
		if len(got) != 4 || got[3].Device != "dd" {
			t.Errorf("LicenseDevices in tx = %+v, want 4 with dd last", got)
		}
		return nil
	})
}

// testLicenseDeviceConcurrentUpsert: 50 checks of one device at once make
// one row, inserted once, whose LastSeen is the latest of them.
func testLicenseDeviceConcurrentUpsert(t *testing.T, s store.Store) {
	insertCode(t, s, fullCode("LC-DRACE", false))
	const n = 50
	var inserts atomic.Int64
	Race(n, func(i int) {
		err := s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			ok, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "LC-DRACE", Device: "d",
				FirstSeen: at(time.Duration(i) * time.Second), LastSeen: at(time.Duration(i) * time.Second)})
			if ok {
				inserts.Add(1)
			}
			return err
		})
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	})
	if inserts.Load() != 1 {
		t.Errorf("%d upserts inserted, want 1", inserts.Load())
	}
	got, err := s.LicenseDevices(t.Context(), "LC-DRACE", false)
	noErr(t, "LicenseDevices", err)
	if len(got) != 1 {
		t.Fatalf("%d devices, want 1", len(got))
	}
	if !got[0].LastSeen.Equal(at((n - 1) * time.Second)) {
		t.Errorf("LastSeen %v, want the latest %v", got[0].LastSeen, at((n-1)*time.Second))
	}
}

// deleteDevice deletes a device in its own transaction and returns whether
// it deleted.
func deleteDevice(t *testing.T, s store.Store, code string, test bool, device string) bool {
	t.Helper()
	var ok bool
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		ok, err = tx.DeleteLicenseDevice(ctx, code, test, device)
		return err
	})
	return ok
}

// testLicenseDeviceDelete: a delete removes exactly its device (not the
// test twin's of the same name, nor another code's), reports false when
// there is nothing to delete, and frees the seat: the device comes back as
// a new one.
func testLicenseDeviceDelete(t *testing.T, s store.Store) {
	for _, c := range []store.LicenseCode{fullCode("LC-DEL", false), fullCode("LC-DEL", true), fullCode("LC-OTHER", false)} {
		insertCode(t, s, c)
	}
	dev := func(code string, test bool, device string) store.LicenseDevice {
		return store.LicenseDevice{Code: code, Test: test, Device: device, FirstSeen: at(time.Minute), LastSeen: at(time.Minute)}
	}
	for _, d := range []store.LicenseDevice{dev("LC-DEL", false, "aa"), dev("LC-DEL", false, "bb"),
		dev("LC-DEL", true, "aa"), dev("LC-OTHER", false, "aa")} {
		upsertDevice(t, s, d)
	}
	for _, tc := range []struct {
		name   string
		code   string
		test   bool
		device string
		want   bool
	}{
		{"present", "LC-DEL", false, "aa", true},
		{"deleted already", "LC-DEL", false, "aa", false},
		{"absent device", "LC-DEL", false, "zz", false},
		{"absent code", "LC-NONE", false, "aa", false},
		{"absent test twin of a device", "LC-OTHER", true, "aa", false},
	} {
		if got := deleteDevice(t, s, tc.code, tc.test, tc.device); got != tc.want {
			t.Errorf("DeleteLicenseDevice %s: deleted %v, want %v", tc.name, got, tc.want)
		}
	}
	checkDevices(t, s, "LC-DEL", false, []store.LicenseDevice{dev("LC-DEL", false, "bb")})
	checkDevices(t, s, "LC-DEL", true, []store.LicenseDevice{dev("LC-DEL", true, "aa")})
	checkDevices(t, s, "LC-OTHER", false, []store.LicenseDevice{dev("LC-OTHER", false, "aa")})

	// A delete rolled back deletes nothing.
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if ok, err := tx.DeleteLicenseDevice(ctx, "LC-DEL", false, "bb"); !ok || err != nil {
			t.Errorf("DeleteLicenseDevice in the rolled-back transaction: %v, %v", ok, err)
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("the rolled-back transaction reported no error")
	}
	checkDevices(t, s, "LC-DEL", false, []store.LicenseDevice{dev("LC-DEL", false, "bb")})

	// A released seat is taken again by a new device row.
	if !upsertDevice(t, s, dev("LC-DEL", false, "aa")) {
		t.Error("the deleted device seen again was not inserted anew")
	}
}

// testLicenseDeviceConcurrentDelete: two deletes of one device at once:
// exactly one reports it deleted.
func testLicenseDeviceConcurrentDelete(t *testing.T, s store.Store) {
	insertCode(t, s, fullCode("LC-DDEL", false))
	for round := range 5 {
		upsertDevice(t, s, store.LicenseDevice{Code: "LC-DDEL", Device: "d"})
		var deletes atomic.Int64
		Race(2, func(i int) {
			err := s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
				ok, err := tx.DeleteLicenseDevice(ctx, "LC-DDEL", false, "d")
				if ok {
					deletes.Add(1)
				}
				return err
			})
			if err != nil {
				t.Errorf("round %d, goroutine %d: %v", round, i, err)
			}
		})
		if deletes.Load() != 1 {
			t.Errorf("round %d: %d of two concurrent deletes reported deleting, want 1", round, deletes.Load())
		}
		checkDevices(t, s, "LC-DDEL", false, nil)
	}
}

// touchDevice touches a device in its own transaction and returns whether
// it found it.
func touchDevice(t *testing.T, s store.Store, code string, test bool, device string, when time.Time) bool {
	t.Helper()
	var found bool
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		found, err = tx.TouchLicenseDevice(ctx, code, test, device, when)
		return err
	})
	return found
}

// testLicenseDeviceTouch: a touch moves only LastSeen, only forward, of
// exactly its device (not the test twin's, not another code's), finds a
// device that is there, and never inserts one: an absent or deleted device
// is reported absent and stays absent.
func testLicenseDeviceTouch(t *testing.T, s store.Store) {
	for _, c := range []store.LicenseCode{fullCode("LC-TCH", false), fullCode("LC-TCH", true), fullCode("LC-TOTHER", false)} {
		insertCode(t, s, c)
	}
	dev := func(code string, test bool, device string, last time.Duration) store.LicenseDevice {
		return store.LicenseDevice{Code: code, Test: test, Device: device, FirstSeen: at(time.Minute), LastSeen: at(last * time.Minute),
			ReportedAt: at(2 * time.Minute)}
	}
	for _, d := range []store.LicenseDevice{dev("LC-TCH", false, "aa", 5), dev("LC-TCH", true, "aa", 1), dev("LC-TOTHER", false, "aa", 1)} {
		upsertDevice(t, s, d)
	}
	for _, tc := range []struct {
		name   string
		code   string
		test   bool
		device string
		at     time.Duration
		want   bool
	}{
		{"seen later", "LC-TCH", false, "aa", 9, true},
		{"seen earlier", "LC-TCH", false, "aa", 3, true},
		{"seen at the same time", "LC-TCH", false, "aa", 9, true},
		{"absent device", "LC-TCH", false, "zz", 20, false},
		{"absent code", "LC-NONE", false, "aa", 20, false},
		{"absent device of the test twin", "LC-TCH", true, "zz", 20, false},
		{"a prefix of the device", "LC-TCH", false, "a", 20, false},
	} {
		if got := touchDevice(t, s, tc.code, tc.test, tc.device, at(tc.at*time.Minute)); got != tc.want {
			t.Errorf("TouchLicenseDevice %s: found %v, want %v", tc.name, got, tc.want)
		}
	}
	// LastSeen moved forward only, FirstSeen and ReportedAt kept, nothing
	// inserted, the twin and the other code untouched.
	checkDevices(t, s, "LC-TCH", false, []store.LicenseDevice{dev("LC-TCH", false, "aa", 9)})
	checkDevices(t, s, "LC-TCH", true, []store.LicenseDevice{dev("LC-TCH", true, "aa", 1)})
	checkDevices(t, s, "LC-TOTHER", false, []store.LicenseDevice{dev("LC-TOTHER", false, "aa", 1)})
	checkDevices(t, s, "LC-NONE", false, nil)

	// A zero time is now.
	before := time.Now().Add(-time.Second)
	if !touchDevice(t, s, "LC-TCH", true, "aa", time.Time{}) {
		t.Error("TouchLicenseDevice with a zero time: not found")
	}
	got, err := s.LicenseDevices(t.Context(), "LC-TCH", true)
	noErr(t, "LicenseDevices", err)
	if after := time.Now().Add(time.Second); len(got) != 1 || got[0].LastSeen.Before(before) || got[0].LastSeen.After(after) {
		t.Errorf("device touched with a zero time = %+v, want LastSeen now", got)
	}

	// A deleted device is not brought back.
	if !deleteDevice(t, s, "LC-TCH", false, "aa") {
		t.Fatal("DeleteLicenseDevice: not deleted")
	}
	if touchDevice(t, s, "LC-TCH", false, "aa", at(30*time.Minute)) {
		t.Error("TouchLicenseDevice of a deleted device: found")
	}
	checkDevices(t, s, "LC-TCH", false, nil)
}

// testLicenseDeviceConcurrentTouchAndDelete: a touch racing a delete of
// its device never leaves the device behind: whichever runs first, the
// device ends deleted, and a touch reporting it found ran before the
// delete.
func testLicenseDeviceConcurrentTouchAndDelete(t *testing.T, s store.Store) {
	insertCode(t, s, fullCode("LC-TDEL", false))
	for round := range 10 {
		upsertDevice(t, s, store.LicenseDevice{Code: "LC-TDEL", Device: "d", FirstSeen: at(time.Minute), LastSeen: at(time.Minute)})
		var deleted atomic.Bool
		Race(2, func(i int) {
			err := s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
				if i == 0 {
					ok, err := tx.DeleteLicenseDevice(ctx, "LC-TDEL", false, "d")
					deleted.Store(ok)
					return err
				}
				_, err := tx.TouchLicenseDevice(ctx, "LC-TDEL", false, "d", at(time.Duration(round+2)*time.Minute))
				return err
			})
			if err != nil {
				t.Errorf("round %d, goroutine %d: %v", round, i, err)
			}
		})
		if !deleted.Load() {
			t.Errorf("round %d: the delete did not find the device", round)
		}
		checkDevices(t, s, "LC-TDEL", false, nil)
	}
}

func testLicenseUnreportedDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, c := range []store.LicenseCode{fullCode("LC-R", false), fullCode("LC-A", false), fullCode("LC-R", true)} {
		insertCode(t, s, c)
	}
	for _, d := range []store.LicenseDevice{
		{Code: "LC-R", Device: "d1", LastSeen: at(1 * time.Minute)},                                   // never reported
		{Code: "LC-R", Device: "d2", LastSeen: at(2 * time.Minute), ReportedAt: at(5 * time.Minute)},  // reported since
		{Code: "LC-R", Device: "d3", LastSeen: at(10 * time.Minute), ReportedAt: at(5 * time.Minute)}, // seen after its report
		{Code: "LC-R", Device: "d4", LastSeen: at(5 * time.Minute), ReportedAt: at(5 * time.Minute)},  // reported as last seen
		{Code: "LC-A", Device: "d9", LastSeen: at(3 * time.Minute)},                                   // another code, before LC-R
		{Code: "LC-R", Test: true, Device: "d1", LastSeen: at(1 * time.Minute)},                       // a test code: never reported
	} {
		d.FirstSeen = at(0)
		upsertDevice(t, s, d)
	}
	key := func(d store.LicenseDevice) string { return d.Code + "/" + d.Device }
	unreported := func(limit int) []string {
		t.Helper()
		got, err := s.UnreportedLicenseDevices(ctx, limit)
		noErr(t, "UnreportedLicenseDevices", err)
		var keys []string
		for _, d := range got {
			if d.Test {
				t.Errorf("UnreportedLicenseDevices listed %s of a test code", key(d))
			}
			keys = append(keys, key(d))
		}
		return keys
	}
	for _, tc := range []struct {
		limit int
		want  []string
	}{
		{0, []string{"LC-A/d9", "LC-R/d1", "LC-R/d3"}},
		{2, []string{"LC-A/d9", "LC-R/d1"}},
	} {
		if got := unreported(tc.limit); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("UnreportedLicenseDevices(%d) = %v, want %v", tc.limit, got, tc.want)
		}
	}
	listed, err := s.UnreportedLicenseDevices(ctx, 0)
	noErr(t, "UnreportedLicenseDevices", err)
	want := store.LicenseDevice{Code: "LC-R", Device: "d3", FirstSeen: at(0), LastSeen: at(10 * time.Minute), ReportedAt: at(5 * time.Minute)}
	if d := diff(normDevice(listed[2]), want); d != "" {
		t.Errorf("listed device:%s", d)
	}

	// Reported at minute 6: d3, seen after, stays due. The test flag is
	// part of a device's key: a test device named like a real one is
	// another device. A device not stored is skipped.
	marks := append(listed, store.LicenseDevice{Code: "LC-R", Test: true, Device: "d1"},
		store.LicenseDevice{Code: "LC-NONE", Device: "d1"})
	noErr(t, "MarkLicenseDevicesReported", s.MarkLicenseDevicesReported(ctx, marks, at(6*time.Minute)))
	if got := unreported(0); fmt.Sprint(got) != fmt.Sprint([]string{"LC-R/d3"}) {
		t.Errorf("unreported after marking = %v, want [LC-R/d3]", got)
	}
	checkDevices(t, s, "LC-R", false, []store.LicenseDevice{
		{Code: "LC-R", Device: "d1", FirstSeen: at(0), LastSeen: at(1 * time.Minute), ReportedAt: at(6 * time.Minute)},
		{Code: "LC-R", Device: "d2", FirstSeen: at(0), LastSeen: at(2 * time.Minute), ReportedAt: at(5 * time.Minute)},
		{Code: "LC-R", Device: "d3", FirstSeen: at(0), LastSeen: at(10 * time.Minute), ReportedAt: at(5 * time.Minute)},
		{Code: "LC-R", Device: "d4", FirstSeen: at(0), LastSeen: at(5 * time.Minute), ReportedAt: at(5 * time.Minute)},
	})
	checkDevices(t, s, "LC-R", true, []store.LicenseDevice{
		{Code: "LC-R", Test: true, Device: "d1", FirstSeen: at(0), LastSeen: at(1 * time.Minute), ReportedAt: at(6 * time.Minute)},
	})

	// Seen again: due again. Nothing to mark is no error.
	upsertDevice(t, s, store.LicenseDevice{Code: "LC-R", Device: "d1", LastSeen: at(7 * time.Minute)})
	if got := unreported(0); fmt.Sprint(got) != fmt.Sprint([]string{"LC-R/d1", "LC-R/d3"}) {
		t.Errorf("unreported after d1 was seen again = %v, want [LC-R/d1 LC-R/d3]", got)
	}
	noErr(t, "MarkLicenseDevicesReported of none", s.MarkLicenseDevicesReported(ctx, nil, at(time.Hour)))
	noErr(t, "MarkLicenseDevicesReported", s.MarkLicenseDevicesReported(ctx, []store.LicenseDevice{
		{Code: "LC-R", Device: "d1"}, {Code: "LC-R", Device: "d3"}}, at(10*time.Minute)))
	if got := unreported(0); len(got) != 0 {
		t.Errorf("unreported after marking all = %v, want none", got)
	}
}

// fullGrant has every field a caller sets at a distinct, non-zero value.
func fullGrant(kind store.GrantKind, key string) store.LicenseGrant {
	return store.LicenseGrant{
		Kind:          kind,
		Key:           key,
		InstanceID:    "inst-" + key,
		EventID:       "ev-" + key,
		OrderID:       "CS-" + key,
		ProductID:     "OFFI-ONLINE",
		Test:          true,
		State:         store.GrantGenerated,
		Status:        store.LicenseFrozen,
		ExpireTime:    at(365 * 24 * time.Hour),
		Request:       `{"deviceHash":"ab12","name":"\u4e2d\u6587"}`,
		Type:          "FILE",
		FileName:      "license.lic",
		ContentSealed: "v1:sealed-" + key,
		SHA256:        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Attempts:      2,
		LastError:     "upload: 502",
		UploadedAt:    at(time.Hour),
		CreatedAt:     at(21 * time.Millisecond),
		UpdatedAt:     at(22 * time.Millisecond),
		Version:       0,
	}
}

func normGrant(g store.LicenseGrant) store.LicenseGrant {
	g.ExpireTime = normTime(g.ExpireTime)
	g.UploadedAt = normTime(g.UploadedAt)
	g.CreatedAt = normTime(g.CreatedAt)
	g.UpdatedAt = normTime(g.UpdatedAt)
	return g
}

func checkGrant(t *testing.T, what string, got, want store.LicenseGrant) {
	t.Helper()
	if d := diff(normGrant(got), normGrant(want)); d != "" {
		t.Errorf("%s differs:%s", what, d)
	}
}

// insertGrant inserts g in its own transaction and returns it as stored.
func insertGrant(t *testing.T, s store.Store, g store.LicenseGrant) store.LicenseGrant {
	t.Helper()
	var id int64
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var (
			ok  bool
			err error
		)
		id, ok, err = tx.InsertLicenseGrant(ctx, g)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("grant %s/%s not inserted", g.Kind, g.Key)
		}
		return nil
	})
	got, err := s.LicenseGrantByID(t.Context(), id)
	noErr(t, "LicenseGrantByID", err)
	return got
}

func testLicenseGrantInsertAndRead(t *testing.T, s store.Store) {
	want := fullGrant(store.GrantOnline, "g1")
	want.ID = 999999 // ignored: the store assigns IDs
	var id int64
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var (
			ok  bool
			err error
		)
		id, ok, err = tx.InsertLicenseGrant(ctx, want)
		if err != nil || !ok || id <= 0 || id == 999999 {
			return fmt.Errorf("InsertLicenseGrant = %d, %v, %v; want a new ID, true, nil", id, ok, err)
		}
		got, err := tx.LicenseGrant(ctx, store.GrantOnline, "g1")
		if err != nil {
			return fmt.Errorf("read in tx: %w", err)
		}
		w := want
		w.ID = id
		checkGrant(t, "LicenseGrant in tx", got, w)
		return nil
	})
	want.ID = id
	got, err := s.LicenseGrant(t.Context(), store.GrantOnline, "g1")
	noErr(t, "LicenseGrant", err)
	checkGrant(t, "LicenseGrant", got, want)
	got, err = s.LicenseGrantByID(t.Context(), id)
	noErr(t, "LicenseGrantByID", err)
	checkGrant(t, "LicenseGrantByID", got, want)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.LicenseGrantByID(ctx, id)
		if err != nil {
			return err
		}
		checkGrant(t, "LicenseGrantByID in tx", got, want)
		return nil
	})

	// A duplicate answers the stored grant's ID and changes nothing.
	dup := fullGrant(store.GrantOnline, "g1")
	dup.State = store.GrantFailed
	dup.ContentSealed = "v1:other"
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		dupID, ok, err := tx.InsertLicenseGrant(ctx, dup)
		if err != nil {
			return err
		}
		if ok || dupID != id {
			t.Errorf("duplicate InsertLicenseGrant = %d, %v; want %d, false", dupID, ok, id)
		}
		return nil
	})
	got, err = s.LicenseGrant(t.Context(), store.GrantOnline, "g1")
	noErr(t, "LicenseGrant", err)
	checkGrant(t, "grant after a duplicate insert", got, want)

	// The key is unique within its kind only.
	legacy := insertGrant(t, s, fullGrant(store.GrantLegacy, "g1"))
	if legacy.ID <= id {
		t.Errorf("second grant ID %d not after the first %d", legacy.ID, id)
	}
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"LicenseGrant of an absent key", func() error { _, err := s.LicenseGrant(t.Context(), store.GrantOnline, "g2"); return err }},
		{"LicenseGrant of an absent kind", func() error { _, err := s.LicenseGrant(t.Context(), "other", "g1"); return err }},
		{"LicenseGrantByID of an absent ID", func() error { _, err := s.LicenseGrantByID(t.Context(), legacy.ID+1); return err }},
	} {
		wantErr(t, tc.name, tc.fn(), store.ErrNotFound)
	}
}

// testLicenseGrantDefaults: an empty State is pending, an empty Status
// active, zero CreatedAt and UpdatedAt now; ExpireTime and UploadedAt
// stay zero.
func testLicenseGrantDefaults(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	got := insertGrant(t, s, store.LicenseGrant{Kind: store.GrantLegacy, Key: "ORDER-1"})
	after := time.Now().Add(time.Second)
	if got.State != store.GrantPending || got.Status != store.LicenseActive {
		t.Errorf("State %q, Status %q; want pending, active", got.State, got.Status)
	}
	if !got.ExpireTime.IsZero() || !got.UploadedAt.IsZero() {
		t.Errorf("ExpireTime %v, UploadedAt %v; want zero", got.ExpireTime, got.UploadedAt)
	}
	if got.Test || got.ContentSealed != "" || got.Attempts != 0 || got.Version != 0 {
		t.Errorf("zero grant stored as %+v", got)
	}
	for name, v := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt} {
		if v.Before(before) || v.After(after) {
			t.Errorf("%s = %v, want now (between %v and %v)", name, v, before, after)
		}
	}
}

// testLicenseGrantConcurrentInsert: 50 getLicenseAsync retries of one
// request at once make one grant, and every caller learns its ID.
func testLicenseGrantConcurrentInsert(t *testing.T, s store.Store) {
	const n = 50
	var (
		ids      = make([]int64, n)
		inserted = make([]bool, n)
		errs     = make([]error, n)
	)
	Race(n, func(i int) {
		g := fullGrant(store.GrantOnline, "race")
		g.LastError = fmt.Sprintf("goroutine-%02d", i)
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			var err error
			ids[i], inserted[i], err = tx.InsertLicenseGrant(ctx, g)
			return err
		})
	})
	winner := -1
	for i := range n {
		noErr(t, fmt.Sprintf("goroutine %d", i), errs[i])
		if inserted[i] {
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both inserted one grant", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine inserted the grant")
	}
	for i := range n {
		if ids[i] != ids[winner] {
			t.Errorf("goroutine %d got ID %d, the grant is %d", i, ids[i], ids[winner])
		}
	}
	got, err := s.LicenseGrantByID(t.Context(), ids[winner])
	noErr(t, "LicenseGrantByID", err)
	if want := fmt.Sprintf("goroutine-%02d", winner); got.LastError != want {
		t.Errorf("stored grant has LastError %q, want the winner's %q", got.LastError, want)
	}
	all, err := s.LicenseGrants(t.Context(), store.LicenseGrantFilter{})
	noErr(t, "LicenseGrants", err)
	if len(all) != 1 {
		t.Errorf("%d grants stored, want 1", len(all))
	}
}

func testLicenseGrantUpdate(t *testing.T, s store.Store) {
	stored := insertGrant(t, s, fullGrant(store.GrantOnline, "gu"))
	upd := stored
	upd.InstanceID = "inst-other"
	upd.EventID = "ev-other"
	upd.OrderID = "CS-other"
	upd.ProductID = "OFFI-other"
	upd.Test = false
	upd.State = store.GrantUploaded
	upd.Status = store.LicenseReleased
	upd.ExpireTime = at(2 * time.Hour)
	upd.Request = `{"other":true}`
	upd.Type = "CHARACTERS"
	upd.FileName = ""
	upd.ContentSealed = "v1:other"
	upd.SHA256 = "00"
	upd.Attempts = 3
	upd.LastError = ""
	upd.UploadedAt = at(3 * time.Hour)
	upd.UpdatedAt = at(4 * time.Hour)
	fixed := upd
	fixed.Kind, fixed.Key, fixed.CreatedAt = store.GrantLegacy, "other", at(5*time.Hour) // ignored
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.UpdateLicenseGrant(ctx, fixed)
	})
	got, err := s.LicenseGrantByID(t.Context(), stored.ID)
	noErr(t, "LicenseGrantByID", err)
	want := upd
	want.Version = stored.Version + 1
	checkGrant(t, "updated grant", got, want)

	for _, tc := range []struct {
		name    string
		mutate  func(g *store.LicenseGrant)
		wantErr error
	}{
		{"stale version", func(g *store.LicenseGrant) { g.Version = stored.Version }, store.ErrConflict},
		{"future version", func(g *store.LicenseGrant) { g.Version = want.Version + 1 }, store.ErrConflict},
		{"absent ID", func(g *store.LicenseGrant) { g.ID = stored.ID + 100 }, store.ErrNotFound},
	} {
		g := got
		g.State = store.GrantFailed
		tc.mutate(&g)
		err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateLicenseGrant(ctx, g)
		})
		wantErr(t, "UpdateLicenseGrant with "+tc.name, err, tc.wantErr)
	}
	got, err = s.LicenseGrantByID(t.Context(), stored.ID)
	noErr(t, "LicenseGrantByID", err)
	checkGrant(t, "grant after refused updates", got, want)
}

func testLicenseGrantByInstance(t *testing.T, s store.Store) {
	mk := func(kind store.GrantKind, key, instance string) store.LicenseGrant {
		g := fullGrant(kind, key)
		g.InstanceID = instance
		return insertGrant(t, s, g)
	}
	first := mk(store.GrantOnline, "k1", "I1")
	mk(store.GrantOnline, "k2", "I1")
	legacy := mk(store.GrantLegacy, "k3", "I1")
	other := mk(store.GrantOnline, "k4", "I2")
	mk(store.GrantOnline, "k5", "")
	for _, tc := range []struct {
		kind     store.GrantKind
		instance string
		want     int64
	}{
		{store.GrantOnline, "I1", first.ID},
		{store.GrantLegacy, "I1", legacy.ID},
		{store.GrantOnline, "I2", other.ID},
	} {
		got, err := s.LicenseGrantByInstance(t.Context(), tc.kind, tc.instance)
		noErr(t, "LicenseGrantByInstance", err)
		if got.ID != tc.want {
			t.Errorf("LicenseGrantByInstance(%s, %s) = grant %d, want %d", tc.kind, tc.instance, got.ID, tc.want)
		}
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		got, err := tx.LicenseGrantByInstance(ctx, store.GrantOnline, "I1")
		if err != nil {
			return err
		}
		checkGrant(t, "LicenseGrantByInstance in tx", got, first)
		return nil
	})
	for _, tc := range []struct {
		kind     store.GrantKind
		instance string
	}{
		{store.GrantLegacy, "I2"},
		{store.GrantOnline, "I3"},
		{store.GrantOnline, ""}, // no instance, though a grant has none
	} {
		_, err := s.LicenseGrantByInstance(t.Context(), tc.kind, tc.instance)
		wantErr(t, fmt.Sprintf("LicenseGrantByInstance(%s, %q)", tc.kind, tc.instance), err, store.ErrNotFound)
	}
}

func testLicenseGrantList(t *testing.T, s store.Store) {
	type row struct {
		kind     store.GrantKind
		state    store.GrantState
		instance string
	}
	rows := []row{
		{store.GrantOnline, store.GrantGenerated, "I1"}, // 0
		{store.GrantLegacy, store.GrantGenerated, "I1"}, // 1
		{store.GrantOnline, store.GrantUploaded, "I2"},  // 2
		{store.GrantOnline, store.GrantFailed, "I1"},    // 3
		{store.GrantLegacy, store.GrantPending, "I3"},   // 4
		{store.GrantOnline, store.GrantGenerated, "I3"}, // 5
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		g := fullGrant(r.kind, fmt.Sprintf("key-%d", i))
		g.State, g.InstanceID = r.state, r.instance
		ids[i] = insertGrant(t, s, g).ID
	}
	for _, tc := range []struct {
		name string
		f    store.LicenseGrantFilter
		want []int // indexes into rows, newest first
	}{
		{"all", store.LicenseGrantFilter{}, []int{5, 4, 3, 2, 1, 0}},
		{"online", store.LicenseGrantFilter{Kind: store.GrantOnline}, []int{5, 3, 2, 0}},
		{"generated", store.LicenseGrantFilter{State: store.GrantGenerated}, []int{5, 1, 0}},
		{"online generated", store.LicenseGrantFilter{Kind: store.GrantOnline, State: store.GrantGenerated}, []int{5, 0}},
		{"instance I1", store.LicenseGrantFilter{InstanceID: "I1"}, []int{3, 1, 0}},
		{"legacy of I1", store.LicenseGrantFilter{Kind: store.GrantLegacy, InstanceID: "I1"}, []int{1}},
		{"limit", store.LicenseGrantFilter{Limit: 2}, []int{5, 4}},
		{"before", store.LicenseGrantFilter{BeforeID: ids[3]}, []int{2, 1, 0}},
		{"online before, limit", store.LicenseGrantFilter{Kind: store.GrantOnline, BeforeID: ids[3], Limit: 1}, []int{2}},
		{"before the first", store.LicenseGrantFilter{BeforeID: ids[0]}, nil},
		{"no match", store.LicenseGrantFilter{State: store.GrantUploaded, Kind: store.GrantLegacy}, nil},
	} {
		got, err := s.LicenseGrants(t.Context(), tc.f)
		noErr(t, "LicenseGrants "+tc.name, err)
		var gotIDs, wantIDs []int64
		for _, g := range got {
			gotIDs = append(gotIDs, g.ID)
		}
		for _, i := range tc.want {
			wantIDs = append(wantIDs, ids[i])
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(wantIDs) {
			t.Errorf("LicenseGrants %s = %v, want %v", tc.name, gotIDs, wantIDs)
		}
	}

	// Paging through everything, two at a time, visits each grant once.
	var seen []int64
	for before := int64(0); ; {
		page, err := s.LicenseGrants(t.Context(), store.LicenseGrantFilter{BeforeID: before, Limit: 2})
		noErr(t, "LicenseGrants page", err)
		if len(page) == 0 {
			break
		}
		for _, g := range page {
			seen = append(seen, g.ID)
		}
		before = page[len(page)-1].ID
	}
	if want := []int64{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("paged through %v, want %v", seen, want)
	}
	listed, err := s.LicenseGrants(t.Context(), store.LicenseGrantFilter{Limit: 1})
	noErr(t, "LicenseGrants", err)
	want := fullGrant(store.GrantOnline, "key-5")
	want.ID, want.State, want.InstanceID = ids[5], store.GrantGenerated, "I3"
	checkGrant(t, "listed grant", listed[0], want)
}

func testLicenseUploads(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := insertGrant(t, s, fullGrant(store.GrantOnline, "up"))
	other := insertGrant(t, s, fullGrant(store.GrantOnline, "up2"))
	attempts := []store.LicenseUpload{
		{GrantID: g.ID, At: at(1 * time.Minute), Outcome: "retry", HTTPStatus: 0, Message: "connection refused"},
		{GrantID: g.ID, At: at(3 * time.Minute), Outcome: "accepted", HTTPStatus: 200},
		{GrantID: g.ID, At: at(2 * time.Minute), Outcome: "retry", HTTPStatus: 500, Code: "92020001", Message: "\u7cfb\u7edf\u9519\u8bef"},
		{GrantID: other.ID, At: at(1 * time.Minute), Outcome: "refused", HTTPStatus: 400, Code: "92020007"},
	}
	for i := range attempts {
		attempts[i].ID = 999 // ignored
		id, err := s.InsertLicenseUpload(ctx, attempts[i])
		noErr(t, "InsertLicenseUpload", err)
		if id <= 0 || id == 999 || (i > 0 && id <= attempts[i-1].ID) {
			t.Errorf("upload %d: ID %d, want a new, increasing one", i, id)
		}
		attempts[i].ID = id
	}
	got, err := s.LicenseUploads(ctx, g.ID)
	noErr(t, "LicenseUploads", err)
	want := []store.LicenseUpload{attempts[0], attempts[2], attempts[1]} // oldest first
	if len(got) != len(want) {
		t.Fatalf("LicenseUploads: %d attempts, want %d", len(got), len(want))
	}
	for i := range want {
		got[i].At = normTime(got[i].At)
		if d := diff(got[i], want[i]); d != "" {
			t.Errorf("LicenseUploads[%d]:%s", i, d)
		}
	}
	got, err = s.LicenseUploads(ctx, other.ID)
	noErr(t, "LicenseUploads", err)
	if len(got) != 1 || got[0].Outcome != "refused" {
		t.Errorf("LicenseUploads of the other grant = %+v", got)
	}
	got, err = s.LicenseUploads(ctx, other.ID+100)
	noErr(t, "LicenseUploads of an absent grant", err)
	if len(got) != 0 {
		t.Errorf("LicenseUploads of an absent grant = %+v", got)
	}

	// A zero At is now; an attempt of an absent grant is refused.
	before := time.Now().Add(-time.Second)
	_, err = s.InsertLicenseUpload(ctx, store.LicenseUpload{GrantID: other.ID, Outcome: "accepted"})
	noErr(t, "InsertLicenseUpload", err)
	got, err = s.LicenseUploads(ctx, other.ID)
	noErr(t, "LicenseUploads", err)
	if len(got) != 2 || got[1].At.Before(before) || got[1].At.After(time.Now().Add(time.Second)) {
		t.Errorf("attempt with a zero At: %+v, want it last, at now", got)
	}
	_, err = s.InsertLicenseUpload(ctx, store.LicenseUpload{GrantID: other.ID + 100, Outcome: "accepted"})
	wantErr(t, "InsertLicenseUpload of an absent grant", err, store.ErrNotFound)
}

func testLicenseKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys, err := s.LicenseKeys(ctx)
	noErr(t, "LicenseKeys of an empty store", err)
	if len(keys) != 0 {
		t.Fatalf("LicenseKeys of an empty store: %d keys, want 0", len(keys))
	}
	k1 := store.LicenseKey{Generation: 1, ID: "lk-1", Public: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", PrivateSealed: "v1:one", CreatedAt: at(time.Second)}
	k2 := store.LicenseKey{Generation: 2, ID: "lk-2", Public: "Ks9Zq3pBmDAq8Y7v_1cQ", PrivateSealed: "v1:two", CreatedAt: at(2 * time.Second)}
	for _, tc := range []struct {
		name string
		key  store.LicenseKey
		want bool
	}{
		{"first", k1, true},
		{"second", k2, true},
		{"same generation", store.LicenseKey{Generation: 2, ID: "lk-other", Public: "x", PrivateSealed: "v1:x"}, false},
		{"same kid", store.LicenseKey{Generation: 3, ID: "lk-1", Public: "x", PrivateSealed: "v1:x"}, false},
	} {
		ok, err := s.InsertLicenseKey(ctx, tc.key)
		noErr(t, "InsertLicenseKey "+tc.name, err)
		if ok != tc.want {
			t.Fatalf("InsertLicenseKey %s: inserted %v, want %v", tc.name, ok, tc.want)
		}
	}
	keys, err = s.LicenseKeys(ctx)
	noErr(t, "LicenseKeys", err)
	want := []store.LicenseKey{k2, k1}
	if len(keys) != len(want) {
		t.Fatalf("LicenseKeys: %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		keys[i].CreatedAt = normTime(keys[i].CreatedAt)
		if d := diff(keys[i], want[i]); d != "" {
			t.Errorf("LicenseKeys[%d]:%s", i, d)
		}
	}
	// A zero CreatedAt is now.
	before := time.Now().Add(-time.Second)
	ok, err := s.InsertLicenseKey(ctx, store.LicenseKey{Generation: 3, ID: "lk-3", Public: "p", PrivateSealed: "v1:three"})
	noErr(t, "InsertLicenseKey", err)
	keys, err = s.LicenseKeys(ctx)
	noErr(t, "LicenseKeys", err)
	if !ok || len(keys) != 3 || keys[0].Generation != 3 || keys[0].CreatedAt.Before(before) {
		t.Errorf("key with a zero CreatedAt: inserted %v, keys %+v; want generation 3 first, created now", ok, keys)
	}
}

// testLicenseKeysConcurrent: 50 replicas that start together and each
// create generation 1 make exactly one key.
func testLicenseKeysConcurrent(t *testing.T, s store.Store) {
	var wins atomic.Int64
	Race(50, func(i int) {
		ok, err := s.InsertLicenseKey(context.Background(), store.LicenseKey{
			Generation: 1, ID: "lk-" + strconv.Itoa(i), Public: "p" + strconv.Itoa(i), PrivateSealed: "v1:" + strconv.Itoa(i),
		})
		if err != nil {
			t.Errorf("InsertLicenseKey %d: %v", i, err)
		}
		if ok {
			wins.Add(1)
		}
	})
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d inserts won, want 1", n)
	}
	keys, err := s.LicenseKeys(t.Context())
	noErr(t, "LicenseKeys", err)
	if len(keys) != 1 || keys[0].ID != "lk-"+keys[0].PrivateSealed[len("v1:"):] {
		t.Fatalf("LicenseKeys = %+v, want one key, of one writer", keys)
	}
}

// testLicenseListLimits: every listing with a limit applies the default
// (100) and the cap (1000).
func testLicenseListLimits(t *testing.T, s store.Store) {
	const n = 1001
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range n {
			if _, err := tx.InsertLicenseCode(ctx, store.LicenseCode{Code: fmt.Sprintf("LL-%06d", i)}); err != nil {
				return err
			}
			if _, err := tx.InsertLicenseEvent(ctx, store.LicenseEvent{Code: "LL-000000", Kind: "checked", At: at(0)}); err != nil {
				return err
			}
			if _, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "LL-000000", Device: fmt.Sprintf("d%06d", i),
				FirstSeen: at(0), LastSeen: at(0)}); err != nil {
				return err
			}
			if _, _, err := tx.InsertLicenseGrant(ctx, store.LicenseGrant{Kind: store.GrantLegacy, Key: strconv.Itoa(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {5, 5}, {1000, 1000}, {5000, 1000}} {
		codes, err := s.LicenseCodes(t.Context(), store.LicenseCodeFilter{Limit: tc.limit})
		noErr(t, "LicenseCodes", err)
		events, err := s.LicenseEvents(t.Context(), "LL-000000", false, tc.limit)
		noErr(t, "LicenseEvents", err)
		devices, err := s.UnreportedLicenseDevices(t.Context(), tc.limit)
		noErr(t, "UnreportedLicenseDevices", err)
		grants, err := s.LicenseGrants(t.Context(), store.LicenseGrantFilter{Limit: tc.limit})
		noErr(t, "LicenseGrants", err)
		for what, got := range map[string]int{"codes": len(codes), "events": len(events), "devices": len(devices), "grants": len(grants)} {
			if got != tc.want {
				t.Errorf("limit %d: %d %s, want %d", tc.limit, got, what, tc.want)
			}
		}
	}
	all, err := s.LicenseDevices(t.Context(), "LL-000000", false)
	noErr(t, "LicenseDevices", err)
	if len(all) != n {
		t.Errorf("LicenseDevices: %d, want all %d (no limit)", len(all), n)
	}
}

// testLicenseRollback: a transaction that fails after license writes
// leaves nothing of them.
func testLicenseRollback(t *testing.T, s store.Store) {
	kept := insertCode(t, s, fullCode("LC-RB", false))
	keptGrant := insertGrant(t, s, fullGrant(store.GrantOnline, "rb"))
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if ok, err := tx.InsertLicenseCode(ctx, fullCode("LC-RB-NEW", false)); err != nil || !ok {
			return fmt.Errorf("InsertLicenseCode = %v, %v", ok, err)
		}
		upd := kept
		upd.Status = store.LicenseReleased
		if err := tx.UpdateLicenseCode(ctx, upd); err != nil {
			return err
		}
		if _, err := tx.InsertLicenseEvent(ctx, store.LicenseEvent{Code: "LC-RB", Kind: "released"}); err != nil {
			return err
		}
		if _, err := tx.UpsertLicenseDevice(ctx, store.LicenseDevice{Code: "LC-RB-NEW", Device: "d"}); err != nil {
			return err
		}
		if _, _, err := tx.InsertLicenseGrant(ctx, fullGrant(store.GrantOnline, "rb-new")); err != nil {
			return err
		}
		g := keptGrant
		g.State = store.GrantUploaded
		if err := tx.UpdateLicenseGrant(ctx, g); err != nil {
			return err
		}
		return errBoom
	})
	wantErr(t, "Tx", err, errBoom)
	got, err := s.LicenseCode(t.Context(), "LC-RB", false)
	noErr(t, "LicenseCode", err)
	checkCode(t, "code updated in a rolled-back transaction", got, kept)
	gotGrant, err := s.LicenseGrantByID(t.Context(), keptGrant.ID)
	noErr(t, "LicenseGrantByID", err)
	checkGrant(t, "grant updated in a rolled-back transaction", gotGrant, keptGrant)
	_, err = s.LicenseCode(t.Context(), "LC-RB-NEW", false)
	wantErr(t, "LicenseCode inserted in a rolled-back transaction", err, store.ErrNotFound)
	_, err = s.LicenseGrant(t.Context(), store.GrantOnline, "rb-new")
	wantErr(t, "LicenseGrant inserted in a rolled-back transaction", err, store.ErrNotFound)
	events, err := s.LicenseEvents(t.Context(), "LC-RB", false, 0)
	noErr(t, "LicenseEvents", err)
	devices, err := s.LicenseDevices(t.Context(), "LC-RB-NEW", false)
	noErr(t, "LicenseDevices", err)
	if len(events)+len(devices) != 0 {
		t.Errorf("rolled-back transaction left %d events and %d devices", len(events), len(devices))
	}
	// The keys are free again.
	insertCode(t, s, fullCode("LC-RB-NEW", false))
	insertGrant(t, s, fullGrant(store.GrantOnline, "rb-new"))
}
