package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var instanceTests = []test{
	{"InsertAndRead", testInstanceInsertAndRead},
	{"ByID", testInstancesByID},
	{"ZeroTimes", testInstanceZeroTimes},
	{"InsertConflict", testInstanceInsertConflict},
	{"Update", testInstanceUpdate},
	{"UpdateConflictAndNotFound", testInstanceUpdateConflict},
	{"NotFound", testInstanceNotFound},
	{"ConcurrentInsertSameOrderLine", testInstanceConcurrentInsert},
	{"List", testInstanceList},
	{"ListLimits", testInstanceListLimits},
	{"FailCode", testInstanceFailCode},
}

// fullInstance has every field set to a distinct, non-zero value.
func fullInstance(id, orderID, lineID string) store.Instance {
	return store.Instance{
		ID:           id,
		OrderID:      orderID,
		OrderLineID:  lineID,
		BusinessID:   "biz-" + id,
		Test:         true,
		OrderState:   store.OrderFetched,
		ProductID:    "OFFI123456",
		SKUCode:      "sku-basic",
		ChargingMode: "PERIOD",
		PeriodType:   "month",
		PeriodNumber: 3,
		LinearValue:  "10",
		CustomerID:   "cust-1",
		CustomerName: "Customer \u4e2d\u6587",
		ExpireTime:   at(90 * 24 * time.Hour),
		OrderJSON:    `{"orderId":"` + orderID + `","mobilePhone":"138****0000"}`,
		Status:       store.StatusActive,
		FrozenBy:     "expiry",
		AppInfo: store.AppInfo{
			FrontEndURL:    "https://app.example.com/" + id,
			AdminURL:       "https://admin.example.com/" + id,
			UserName:       "admin",
			PasswordSealed: "v1:c2VhbGVk",
			Memo:           "memo \u4e2d\u6587 \U0001F600",
		},
		UsageValue: "12.5",
		UsageTime:  at(time.Hour + 123*time.Millisecond),
		LastError:  "webhook: 502",
		FailCode:   "000101",
		CreatedAt:  at(1 * time.Millisecond),
		UpdatedAt:  at(2 * time.Millisecond),
		ReleasedAt: at(3 * time.Millisecond),
		Version:    0,
	}
}

// normInstance makes in comparable with reflect.DeepEqual.
func normInstance(in store.Instance) store.Instance {
	in.ExpireTime = normTime(in.ExpireTime)
	in.UsageTime = normTime(in.UsageTime)
	in.CreatedAt = normTime(in.CreatedAt)
	in.UpdatedAt = normTime(in.UpdatedAt)
	in.ReleasedAt = normTime(in.ReleasedAt)
	return in
}

func checkInstance(t *testing.T, what string, got, want store.Instance) {
	t.Helper()
	if d := diff(normInstance(got), normInstance(want)); d != "" {
		t.Errorf("%s differs:%s", what, d)
	}
}

func insertInstance(t *testing.T, s store.Store, in store.Instance) {
	t.Helper()
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertInstance(ctx, in)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("instance %s not inserted", in.ID)
		}
		return nil
	})
}

func testInstanceInsertAndRead(t *testing.T, s store.Store) {
	want := fullInstance("inst-1", "CS001", "CS001-000001")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertInstance(ctx, want)
		if err != nil || !ok {
			return fmt.Errorf("insert: InsertInstance = %v, %v; want true, nil", ok, err)
		}
		// A transaction reads its own writes.
		got, err := tx.Instance(ctx, want.ID)
		if err != nil {
			return fmt.Errorf("read in tx: %w", err)
		}
		checkInstance(t, "Instance in tx", got, want)
		return nil
	})
	got, err := s.Instance(t.Context(), want.ID)
	noErr(t, "Instance", err)
	checkInstance(t, "Instance", got, want)

	got, err = s.InstanceByOrderLine(t.Context(), want.OrderID, want.OrderLineID)
	noErr(t, "InstanceByOrderLine", err)
	checkInstance(t, "InstanceByOrderLine", got, want)
}

// testInstancesByID: one read returns each instance asked for once, whole,
// and leaves out ids with no instance (a queryInstance asks for up to 100).
func testInstancesByID(t *testing.T, s store.Store) {
	got, err := s.InstancesByID(t.Context(), nil)
	noErr(t, "InstancesByID of none", err)
	if len(got) != 0 {
		t.Errorf("InstancesByID of none = %d instances", len(got))
	}
	want := map[string]store.Instance{}
	var ids []string
	for i := range 120 {
		in := fullInstance(fmt.Sprintf("inst-%03d", i), "CS-BYID", fmt.Sprintf("CS-BYID-%06d", i))
		inTx(t, s, func(ctx context.Context, tx store.Tx) error {
			_, err := tx.InsertInstance(ctx, in)
			return err
		})
		if i%3 != 0 { // ask for two in three
			want[in.ID] = in
			ids = append(ids, in.ID)
		}
	}
	// Unknown ids, a repeated one, a quote and a NUL are left out or read
	// once, never an error.
	ids = append(ids, "inst-001", "missing", `in"st`, "a\x00b", "")
	got, err = s.InstancesByID(t.Context(), ids)
	noErr(t, "InstancesByID", err)
	if len(got) != len(want) {
		t.Fatalf("InstancesByID returned %d instances, want %d", len(got), len(want))
	}
	for _, g := range got {
		w, ok := want[g.ID]
		if !ok {
			t.Errorf("InstancesByID returned %s, not asked for or twice", g.ID)
			continue
		}
		checkInstance(t, "InstancesByID", g, w)
		delete(want, g.ID)
	}
}

func testInstanceZeroTimes(t *testing.T, s store.Store) {
	in := store.Instance{
		ID: "inst-z", OrderID: "CSZ", OrderLineID: "CSZ-000001",
		OrderState: store.OrderPending, Status: store.StatusProvisioning,
		CreatedAt: at(0), UpdatedAt: at(0),
	}
	insertInstance(t, s, in)
	got, err := s.Instance(t.Context(), in.ID)
	noErr(t, "Instance", err)
	checkInstance(t, "Instance", got, in)
	for name, v := range map[string]time.Time{"ExpireTime": got.ExpireTime, "UsageTime": got.UsageTime, "ReleasedAt": got.ReleasedAt} {
		if !v.IsZero() {
			t.Errorf("%s = %v, want the zero time", name, v)
		}
	}
}

func testInstanceInsertConflict(t *testing.T, s store.Store) {
	first := fullInstance("inst-a", "CS002", "CS002-000001")
	insertInstance(t, s, first)
	second := fullInstance("inst-b", "CS002", "CS002-000001")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertInstance(ctx, second)
		if err != nil {
			return err
		}
		if ok {
			t.Errorf("second InsertInstance for the same order line reported inserted")
		}
		return nil
	})
	got, err := s.InstanceByOrderLine(t.Context(), "CS002", "CS002-000001")
	noErr(t, "InstanceByOrderLine", err)
	if got.ID != first.ID {
		t.Errorf("order line has instance %q, want the first one %q", got.ID, first.ID)
	}
	_, err = s.Instance(t.Context(), second.ID)
	wantErr(t, "Instance of the rejected insert", err, store.ErrNotFound)

	// Another line of the same order is another instance.
	insertInstance(t, s, fullInstance("inst-c", "CS002", "CS002-000002"))
}

func testInstanceUpdate(t *testing.T, s store.Store) {
	orig := fullInstance("inst-u", "CS003", "CS003-000001")
	orig.Test = false
	insertInstance(t, s, orig)

	upd := orig
	upd.OrderState = store.OrderPending
	upd.ProductID = "OFFI999"
	upd.SKUCode = "sku-pro"
	upd.ChargingMode = "ON_DEMAND"
	upd.PeriodType = "year"
	upd.PeriodNumber = 1
	upd.LinearValue = "20"
	upd.CustomerID = "cust-2"
	upd.CustomerName = "Other"
	upd.ExpireTime = at(365 * 24 * time.Hour)
	upd.OrderJSON = `{"v":2}`
	upd.Status = store.StatusFrozen
	upd.FrozenBy = "status"
	upd.AppInfo = store.AppInfo{FrontEndURL: "https://new", AdminURL: "https://new/admin", UserName: "root", PasswordSealed: "v1:bmV3", Memo: "new"}
	upd.UsageValue = "99.75"
	upd.UsageTime = at(2 * time.Hour)
	upd.LastError = ""
	upd.FailCode = "000104"
	upd.UpdatedAt = at(time.Minute)
	upd.ReleasedAt = time.Time{}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateInstance(ctx, upd) })

	got, err := s.Instance(t.Context(), orig.ID)
	noErr(t, "Instance", err)
	want := upd
	want.Version = orig.Version + 1
	checkInstance(t, "updated instance", got, want)

	// A second update from the new version succeeds again, in the same
	// transaction as a read.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		cur, err := tx.Instance(ctx, orig.ID)
		if err != nil {
			return err
		}
		cur.Status = store.StatusReleased
		cur.ReleasedAt = at(time.Hour)
		if err := tx.UpdateInstance(ctx, cur); err != nil {
			return err
		}
		again, err := tx.Instance(ctx, orig.ID)
		if err != nil {
			return err
		}
		if again.Version != cur.Version+1 || again.Status != store.StatusReleased {
			t.Errorf("after second update: version %d status %s, want %d released", again.Version, again.Status, cur.Version+1)
		}
		return nil
	})
	got, err = s.Instance(t.Context(), orig.ID)
	noErr(t, "Instance", err)
	if got.Version != 2 || got.OrderID != orig.OrderID || got.OrderLineID != orig.OrderLineID || !got.CreatedAt.Equal(orig.CreatedAt) {
		t.Errorf("after two updates: version %d, order %s/%s, created %v; want 2, %s/%s, %v",
			got.Version, got.OrderID, got.OrderLineID, got.CreatedAt, orig.OrderID, orig.OrderLineID, orig.CreatedAt)
	}
}

func testInstanceUpdateConflict(t *testing.T, s store.Store) {
	in := fullInstance("inst-v", "CS004", "CS004-000001")
	insertInstance(t, s, in)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateInstance(ctx, in) })

	stale := in
	stale.Status = store.StatusFailed
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.UpdateInstance(ctx, stale) })
	wantErr(t, "UpdateInstance with a stale version", err, store.ErrConflict)

	got, err := s.Instance(t.Context(), in.ID)
	noErr(t, "Instance", err)
	if got.Status != in.Status || got.Version != 1 {
		t.Errorf("stale update changed the row: status %s version %d", got.Status, got.Version)
	}

	absent := fullInstance("no-such", "CS005", "CS005-000001")
	err = s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.UpdateInstance(ctx, absent) })
	wantErr(t, "UpdateInstance of an absent instance", err, store.ErrNotFound)
}

func testInstanceNotFound(t *testing.T, s store.Store) {
	_, err := s.Instance(t.Context(), "nope")
	wantErr(t, "Instance", err, store.ErrNotFound)
	_, err = s.InstanceByOrderLine(t.Context(), "nope", "nope-000001")
	wantErr(t, "InstanceByOrderLine", err, store.ErrNotFound)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Instance(ctx, "nope")
		wantErr(t, "tx.Instance", err, store.ErrNotFound)
		_, err = tx.InstanceByOrderLine(ctx, "nope", "nope-000001")
		wantErr(t, "tx.InstanceByOrderLine", err, store.ErrNotFound)
		return nil
	})
}

// testInstanceConcurrentInsert is KooGallery's retry storm: 50 calls for
// one order line at once, each proposing its own instance ID.
func testInstanceConcurrentInsert(t *testing.T, s store.Store) {
	const n = 50
	var (
		inserted = make([]bool, n)
		errs     = make([]error, n)
	)
	Race(n, func(i int) {
		in := fullInstance(fmt.Sprintf("race-%02d", i), "CSRACE", "CSRACE-000001")
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			ok, err := tx.InsertInstance(ctx, in)
			inserted[i] = ok
			return err
		})
	})
	winner := -1
	for i := range n {
		noErr(t, fmt.Sprintf("goroutine %d", i), errs[i])
		if inserted[i] {
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both inserted an instance for one order line", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine inserted the instance")
	}
	got, err := s.InstanceByOrderLine(t.Context(), "CSRACE", "CSRACE-000001")
	noErr(t, "InstanceByOrderLine", err)
	if want := fmt.Sprintf("race-%02d", winner); got.ID != want {
		t.Errorf("order line has instance %s, want the winner's %s", got.ID, want)
	}
	all, err := s.Instances(t.Context(), store.InstanceFilter{OrderID: "CSRACE"})
	noErr(t, "Instances", err)
	if len(all) != 1 {
		t.Errorf("%d instances for the order, want 1", len(all))
	}
}

func testInstanceList(t *testing.T, s store.Store) {
	type row struct {
		id, order string
		status    store.InstanceStatus
		test      bool
	}
	rows := []row{
		{"i-01", "O1", store.StatusActive, false},
		{"i-02", "O1", store.StatusFrozen, true},
		{"i-03", "O2", store.StatusActive, true},
		{"i-04", "O3", store.StatusReleased, false},
		{"i-05", "O3", store.StatusActive, false},
	}
	// Inserted out of order: listing is by ID, not by insertion.
	for _, i := range []int{3, 0, 4, 1, 2} {
		r := rows[i]
		in := fullInstance(r.id, r.order, r.order+"-"+r.id)
		in.Status, in.Test = r.status, r.test
		insertInstance(t, s, in)
	}
	yes, no := true, false
	tests := []struct {
		name string
		f    store.InstanceFilter
		want []string
	}{
		{"all", store.InstanceFilter{}, []string{"i-01", "i-02", "i-03", "i-04", "i-05"}},
		{"status", store.InstanceFilter{Status: store.StatusActive}, []string{"i-01", "i-03", "i-05"}},
		{"order", store.InstanceFilter{OrderID: "O3"}, []string{"i-04", "i-05"}},
		{"test", store.InstanceFilter{Test: &yes}, []string{"i-02", "i-03"}},
		{"not test", store.InstanceFilter{Test: &no}, []string{"i-01", "i-04", "i-05"}},
		{"after", store.InstanceFilter{AfterID: "i-03"}, []string{"i-04", "i-05"}},
		{"limit", store.InstanceFilter{Limit: 2}, []string{"i-01", "i-02"}},
		{"page 2", store.InstanceFilter{AfterID: "i-02", Limit: 2}, []string{"i-03", "i-04"}},
		{"combined", store.InstanceFilter{Status: store.StatusActive, Test: &no, AfterID: "i-01"}, []string{"i-05"}},
		{"status and test", store.InstanceFilter{Status: store.StatusActive, Test: &yes}, []string{"i-03"}},
		{"test after", store.InstanceFilter{Test: &yes, AfterID: "i-02"}, []string{"i-03"}},
		{"order and test", store.InstanceFilter{OrderID: "O1", Test: &yes}, []string{"i-02"}},
		{"order and status", store.InstanceFilter{OrderID: "O3", Status: store.StatusActive}, []string{"i-05"}},
		{"none", store.InstanceFilter{OrderID: "O9"}, nil},
	}
	for _, tc := range tests {
		got, err := s.Instances(t.Context(), tc.f)
		noErr(t, tc.name, err)
		var ids []string
		for _, in := range got {
			ids = append(ids, in.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids, tc.want)
		}
	}
	got, err := s.Instances(t.Context(), store.InstanceFilter{OrderID: "O2"})
	noErr(t, "Instances", err)
	if len(got) == 1 {
		want := fullInstance("i-03", "O2", "O2-i-03")
		want.Status, want.Test = store.StatusActive, true
		checkInstance(t, "listed instance", got[0], want)
	}
}

func testInstanceListLimits(t *testing.T, s store.Store) {
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range 105 {
			in := fullInstance(fmt.Sprintf("l-%03d", i), "OL", fmt.Sprintf("OL-%06d", i))
			if _, err := tx.InsertInstance(ctx, in); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.Instances(t.Context(), store.InstanceFilter{})
	noErr(t, "Instances", err)
	if len(got) != 100 {
		t.Errorf("default limit: got %d instances, want 100", len(got))
	}
	got, err = s.Instances(t.Context(), store.InstanceFilter{Limit: 1000000})
	noErr(t, "Instances", err)
	if len(got) != 105 {
		t.Errorf("large limit: got %d instances, want all 105", len(got))
	}
}

// testInstanceFailCode: the refusal code is written by InsertInstance and
// UpdateInstance (set, changed, cleared) and read by every read.
func testInstanceFailCode(t *testing.T, s store.Store) {
	in := store.Instance{ID: "inst-fc", OrderID: "CSFC", OrderLineID: "CSFC-000001",
		Status: store.StatusFailed, FailCode: "000102", CreatedAt: at(0), UpdatedAt: at(0)}
	insertInstance(t, s, in)
	check := func(what, want string) {
		t.Helper()
		got, err := s.Instance(t.Context(), in.ID)
		noErr(t, "Instance", err)
		byLine, err := s.InstanceByOrderLine(t.Context(), in.OrderID, in.OrderLineID)
		noErr(t, "InstanceByOrderLine", err)
		listed, err := s.Instances(t.Context(), store.InstanceFilter{OrderID: in.OrderID})
		noErr(t, "Instances", err)
		if len(listed) != 1 {
			t.Fatalf("%s: Instances listed %d, want 1", what, len(listed))
		}
		if got.FailCode != want || byLine.FailCode != want || listed[0].FailCode != want {
			t.Errorf("%s: FailCode %q (by id), %q (by order line), %q (listed); want %q",
				what, got.FailCode, byLine.FailCode, listed[0].FailCode, want)
		}
	}
	check("inserted", "000102")

	for i, code := range []string{"000107", ""} {
		inTx(t, s, func(ctx context.Context, tx store.Tx) error {
			cur, err := tx.Instance(ctx, in.ID)
			if err != nil {
				return err
			}
			if cur.Version != int64(i) {
				t.Errorf("version %d before update %d, want %d", cur.Version, i, i)
			}
			cur.FailCode = code
			return tx.UpdateInstance(ctx, cur)
		})
		check(fmt.Sprintf("after update to %q", code), code)
	}
}
