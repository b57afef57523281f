package storetest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var orderNotificationTests = []test{
	{"InsertAndRead", testNotificationInsertAndRead},
	{"Defaults", testNotificationDefaults},
	{"InsertDuplicate", testNotificationDuplicate},
	{"ConcurrentInsertSameOrderLine", testNotificationConcurrentInsert},
	{"Update", testNotificationUpdate},
	{"UpdateConflictAndNotFound", testNotificationUpdateConflict},
	{"ConcurrentReadModifyWrite", testNotificationReadModifyWrite},
	{"NotFound", testNotificationNotFound},
	{"Rollback", testNotificationRollback},
	{"List", testNotificationList},
	{"Paging", testNotificationPaging},
	{"ListLimits", testNotificationListLimits},
}

// fullNotification has every field the caller sets to a distinct,
// non-zero value (the ID is the store's).
func fullNotification(orderID, lineID string) store.OrderNotification {
	return store.OrderNotification{
		OrderID:     orderID,
		OrderLineID: lineID,
		Test:        true,
		Status:      store.NotificationDelivered,
		OrderJSON:   `{"orderId":"` + orderID + `","customerName":"\u4e2d\u6587","mobilePhone":"138****0000"}`,
		LastError:   "query order: 502",
		CreatedAt:   at(11 * time.Millisecond),
		UpdatedAt:   at(12 * time.Millisecond),
		Version:     0,
	}
}

func normNotification(n store.OrderNotification) store.OrderNotification {
	n.CreatedAt = normTime(n.CreatedAt)
	n.UpdatedAt = normTime(n.UpdatedAt)
	return n
}

// checkNotification compares got with want, the ID included unless want's
// is 0, in which case got's must be positive.
func checkNotification(t *testing.T, what string, got, want store.OrderNotification) {
	t.Helper()
	if want.ID == 0 {
		if got.ID <= 0 {
			t.Errorf("%s: ID %d, want one assigned by the store (> 0)", what, got.ID)
		}
		want.ID = got.ID
	}
	if d := diff(normNotification(got), normNotification(want)); d != "" {
		t.Errorf("%s differs:%s", what, d)
	}
}

// insertNotification inserts n in its own transaction and returns it as
// stored.
func insertNotification(t *testing.T, s store.Store, n store.OrderNotification) store.OrderNotification {
	t.Helper()
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertOrderNotification(ctx, n)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("notification of %s/%s not inserted", n.OrderID, n.OrderLineID)
		}
		return nil
	})
	got, err := s.OrderNotification(t.Context(), n.OrderID, n.OrderLineID)
	noErr(t, "OrderNotification", err)
	return got
}

func testNotificationInsertAndRead(t *testing.T, s store.Store) {
	want := fullNotification("CSN001", "CSN001-000001")
	want.ID = 999999 // ignored: the store assigns IDs
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertOrderNotification(ctx, want)
		if err != nil || !ok {
			return fmt.Errorf("InsertOrderNotification = %v, %v; want true, nil", ok, err)
		}
		// A transaction reads its own writes.
		got, err := tx.OrderNotification(ctx, want.OrderID, want.OrderLineID)
		if err != nil {
			return fmt.Errorf("read in tx: %w", err)
		}
		w := want
		w.ID = 0
		checkNotification(t, "OrderNotification in tx", got, w)
		if got.ID == 999999 {
			t.Errorf("the store kept the caller's ID %d", got.ID)
		}
		return nil
	})
	got, err := s.OrderNotification(t.Context(), want.OrderID, want.OrderLineID)
	noErr(t, "OrderNotification", err)
	w := want
	w.ID = 0
	checkNotification(t, "OrderNotification", got, w)

	listed, err := s.OrderNotifications(t.Context(), store.OrderNotificationFilter{})
	noErr(t, "OrderNotifications", err)
	if len(listed) != 1 {
		t.Fatalf("OrderNotifications listed %d, want 1", len(listed))
	}
	w.ID = got.ID
	checkNotification(t, "listed notification", listed[0], w)

	// A second one gets a larger ID.
	second := insertNotification(t, s, fullNotification("CSN001", "CSN001-000002"))
	if second.ID <= got.ID {
		t.Errorf("second notification ID %d not after the first %d", second.ID, got.ID)
	}
}

// testNotificationDefaults: zero times become now, an empty status
// pending, and a notification of a real (not test) order keeps Test false.
func testNotificationDefaults(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	got := insertNotification(t, s, store.OrderNotification{OrderID: "CSND", OrderLineID: "CSND-000001"})
	after := time.Now().Add(time.Second)
	if got.Status != store.NotificationPending {
		t.Errorf("Status %q, want pending for an empty status", got.Status)
	}
	if got.Test || got.OrderJSON != "" || got.LastError != "" || got.Version != 0 {
		t.Errorf("zero notification stored as %+v", got)
	}
	for name, v := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt} {
		if v.Before(before) || v.After(after) {
			t.Errorf("%s = %v, want now (between %v and %v)", name, v, before, after)
		}
	}
}

func testNotificationDuplicate(t *testing.T, s store.Store) {
	first := insertNotification(t, s, fullNotification("CSN002", "CSN002-000001"))
	dup := fullNotification("CSN002", "CSN002-000001")
	dup.Test = false
	dup.Status = store.NotificationFailed
	dup.OrderJSON = `{"second":true}`
	dup.LastError = "second"
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		ok, err := tx.InsertOrderNotification(ctx, dup)
		if err != nil {
			return err
		}
		if ok {
			t.Error("second InsertOrderNotification for the same order line reported inserted")
		}
		return nil
	})
	got, err := s.OrderNotification(t.Context(), "CSN002", "CSN002-000001")
	noErr(t, "OrderNotification", err)
	checkNotification(t, "notification after a duplicate insert", got, first)
	all, err := s.OrderNotifications(t.Context(), store.OrderNotificationFilter{})
	noErr(t, "OrderNotifications", err)
	if len(all) != 1 {
		t.Errorf("%d notifications stored, want 1", len(all))
	}

	// Another line of the same order, and the same line number of another
	// order, are other notifications.
	insertNotification(t, s, fullNotification("CSN002", "CSN002-000002"))
	insertNotification(t, s, fullNotification("CSN003", "CSN002-000001"))
}

// testNotificationConcurrentInsert is KooGallery's retry storm: 50
// orderNotify calls for one order line at once.
func testNotificationConcurrentInsert(t *testing.T, s store.Store) {
	const n = 50
	var (
		inserted = make([]bool, n)
		errs     = make([]error, n)
	)
	Race(n, func(i int) {
		in := fullNotification("CSNRACE", "CSNRACE-000001")
		in.LastError = fmt.Sprintf("goroutine %02d", i)
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			ok, err := tx.InsertOrderNotification(ctx, in)
			inserted[i] = ok
			return err
		})
	})
	winner := -1
	for i := range n {
		noErr(t, fmt.Sprintf("goroutine %d", i), errs[i])
		if inserted[i] {
			if winner >= 0 {
				t.Fatalf("goroutines %d and %d both inserted a notification of one order line", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no goroutine inserted the notification")
	}
	got, err := s.OrderNotification(t.Context(), "CSNRACE", "CSNRACE-000001")
	noErr(t, "OrderNotification", err)
	if want := fmt.Sprintf("goroutine %02d", winner); got.LastError != want {
		t.Errorf("stored notification is %q's, want the winner's %q", got.LastError, want)
	}
	all, err := s.OrderNotifications(t.Context(), store.OrderNotificationFilter{OrderID: "CSNRACE"})
	noErr(t, "OrderNotifications", err)
	if len(all) != 1 {
		t.Errorf("%d notifications of the order, want 1", len(all))
	}
}

func testNotificationUpdate(t *testing.T, s store.Store) {
	orig := fullNotification("CSN004", "CSN004-000001")
	orig.Status = store.NotificationPending
	orig.OrderJSON = ""
	stored := insertNotification(t, s, orig)

	upd := stored
	upd.Status = store.NotificationDelivered
	upd.OrderJSON = `{"orderId":"CSN004","v":2}`
	upd.LastError = ""
	upd.UpdatedAt = at(time.Minute + 3*time.Millisecond)
	// Fixed at insert: changes to them are not written.
	upd.Test = false
	upd.CreatedAt = at(time.Hour)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateOrderNotification(ctx, upd) })

	got, err := s.OrderNotification(t.Context(), orig.OrderID, orig.OrderLineID)
	noErr(t, "OrderNotification", err)
	want := stored
	want.Status, want.OrderJSON, want.LastError, want.UpdatedAt = upd.Status, upd.OrderJSON, upd.LastError, upd.UpdatedAt
	want.Version = stored.Version + 1
	checkNotification(t, "updated notification", got, want)

	// Read and update again in one transaction: the version moves on.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		cur, err := tx.OrderNotification(ctx, orig.OrderID, orig.OrderLineID)
		if err != nil {
			return err
		}
		cur.Status = store.NotificationFailed
		cur.LastError = "vendor webhook: 500"
		if err := tx.UpdateOrderNotification(ctx, cur); err != nil {
			return err
		}
		again, err := tx.OrderNotification(ctx, orig.OrderID, orig.OrderLineID)
		if err != nil {
			return err
		}
		if again.Version != cur.Version+1 || again.Status != store.NotificationFailed {
			t.Errorf("after second update: version %d status %s, want %d failed", again.Version, again.Status, cur.Version+1)
		}
		return nil
	})
	got, err = s.OrderNotification(t.Context(), orig.OrderID, orig.OrderLineID)
	noErr(t, "OrderNotification", err)
	if got.Version != 2 || got.LastError != "vendor webhook: 500" || got.ID != stored.ID || !got.CreatedAt.Equal(stored.CreatedAt) {
		t.Errorf("after two updates: %+v; want version 2, the new error, ID %d and CreatedAt %v kept", got, stored.ID, stored.CreatedAt)
	}
}

func testNotificationUpdateConflict(t *testing.T, s store.Store) {
	stored := insertNotification(t, s, fullNotification("CSN005", "CSN005-000001"))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpdateOrderNotification(ctx, stored) })

	stale := stored // still at version 0; the row is at 1
	stale.Status = store.NotificationFailed
	stale.LastError = "stale"
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.UpdateOrderNotification(ctx, stale) })
	wantErr(t, "UpdateOrderNotification with a stale version", err, store.ErrConflict)
	got, err := s.OrderNotification(t.Context(), stored.OrderID, stored.OrderLineID)
	noErr(t, "OrderNotification", err)
	if got.Status != stored.Status || got.LastError != stored.LastError || got.Version != 1 {
		t.Errorf("stale update changed the row: status %s error %q version %d", got.Status, got.LastError, got.Version)
	}

	absent := fullNotification("CSN006", "CSN006-000001")
	err = s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.UpdateOrderNotification(ctx, absent) })
	wantErr(t, "UpdateOrderNotification of an absent notification", err, store.ErrNotFound)
	_, err = s.OrderNotification(t.Context(), absent.OrderID, absent.OrderLineID)
	wantErr(t, "OrderNotification after updating an absent one", err, store.ErrNotFound)
}

// testNotificationReadModifyWrite: 20 transactions at once each read the
// notification and write it back with a counter incremented. None may
// conflict and no increment may be lost: a read in a transaction holds the
// row until the transaction ends.
func testNotificationReadModifyWrite(t *testing.T, s store.Store) {
	const n = 20
	n0 := fullNotification("CSNRMW", "CSNRMW-000001")
	n0.LastError = "0"
	insertNotification(t, s, n0)
	errs := make([]error, n)
	Race(n, func(i int) {
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			cur, err := tx.OrderNotification(ctx, n0.OrderID, n0.OrderLineID)
			if err != nil {
				return err
			}
			count, err := strconv.Atoi(cur.LastError)
			if err != nil {
				return err
			}
			cur.LastError = strconv.Itoa(count + 1)
			return tx.UpdateOrderNotification(ctx, cur)
		})
	})
	for i, err := range errs {
		noErr(t, fmt.Sprintf("transaction %d", i), err)
	}
	got, err := s.OrderNotification(t.Context(), n0.OrderID, n0.OrderLineID)
	noErr(t, "OrderNotification", err)
	if got.LastError != strconv.Itoa(n) || got.Version != n {
		t.Errorf("counter %s at version %d after %d increments, want %d and %d", got.LastError, got.Version, n, n, n)
	}
}

func testNotificationNotFound(t *testing.T, s store.Store) {
	insertNotification(t, s, fullNotification("CSN007", "CSN007-000001"))
	_, err := s.OrderNotification(t.Context(), "CSN007", "CSN007-000002")
	wantErr(t, "OrderNotification of another line", err, store.ErrNotFound)
	_, err = s.OrderNotification(t.Context(), "nope", "CSN007-000001")
	wantErr(t, "OrderNotification of another order", err, store.ErrNotFound)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.OrderNotification(ctx, "nope", "nope-000001")
		wantErr(t, "tx.OrderNotification", err, store.ErrNotFound)
		return nil
	})
	got, err := s.OrderNotifications(t.Context(), store.OrderNotificationFilter{OrderID: "nope"})
	noErr(t, "OrderNotifications", err)
	if len(got) != 0 {
		t.Errorf("OrderNotifications of an absent order listed %d", len(got))
	}
}

// testNotificationRollback: a transaction that fails leaves no
// notification and no change to one, and the order line stays free.
func testNotificationRollback(t *testing.T, s store.Store) {
	kept := insertNotification(t, s, fullNotification("CSNRB", "CSNRB-000001"))
	fresh := fullNotification("CSNRB", "CSNRB-000002")
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if ok, err := tx.InsertOrderNotification(ctx, fresh); err != nil || !ok {
			return fmt.Errorf("InsertOrderNotification = %v, %v", ok, err)
		}
		upd := kept
		upd.Status = store.NotificationFailed
		if err := tx.UpdateOrderNotification(ctx, upd); err != nil {
			return err
		}
		return errBoom
	})
	wantErr(t, "Tx", err, errBoom)
	_, err = s.OrderNotification(t.Context(), fresh.OrderID, fresh.OrderLineID)
	wantErr(t, "OrderNotification after rollback", err, store.ErrNotFound)
	got, err := s.OrderNotification(t.Context(), kept.OrderID, kept.OrderLineID)
	noErr(t, "OrderNotification", err)
	checkNotification(t, "notification updated in a rolled-back transaction", got, kept)
	all, err := s.OrderNotifications(t.Context(), store.OrderNotificationFilter{})
	noErr(t, "OrderNotifications", err)
	if len(all) != 1 {
		t.Errorf("%d notifications after rollback, want 1", len(all))
	}
	// The order line is still free.
	insertNotification(t, s, fresh)
}

func testNotificationList(t *testing.T, s store.Store) {
	type row struct {
		order  string
		status store.OrderNotificationStatus
	}
	rows := []row{
		{"O1", store.NotificationPending},
		{"O1", store.NotificationDelivered},
		{"O2", store.NotificationPending},
		{"O3", store.NotificationFailed},
		{"O3", store.NotificationPending},
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		n := fullNotification(r.order, fmt.Sprintf("%s-%06d", r.order, i))
		n.Status = r.status
		ids[i] = insertNotification(t, s, n).ID
	}
	// pick lists ids of rows, newest first, as OrderNotifications returns them.
	pick := func(idx ...int) []int64 {
		var out []int64
		for i := len(idx) - 1; i >= 0; i-- {
			out = append(out, ids[idx[i]])
		}
		return out
	}
	tests := []struct {
		name string
		f    store.OrderNotificationFilter
		want []int64
	}{
		{"all", store.OrderNotificationFilter{}, pick(0, 1, 2, 3, 4)},
		{"status", store.OrderNotificationFilter{Status: store.NotificationPending}, pick(0, 2, 4)},
		{"other status", store.OrderNotificationFilter{Status: store.NotificationFailed}, pick(3)},
		{"order", store.OrderNotificationFilter{OrderID: "O1"}, pick(0, 1)},
		{"before", store.OrderNotificationFilter{BeforeID: ids[3]}, pick(0, 1, 2)},
		{"limit", store.OrderNotificationFilter{Limit: 2}, pick(3, 4)},
		{"status and order", store.OrderNotificationFilter{Status: store.NotificationPending, OrderID: "O3"}, pick(4)},
		{"status and before", store.OrderNotificationFilter{Status: store.NotificationPending, BeforeID: ids[4]}, pick(0, 2)},
		{"none", store.OrderNotificationFilter{OrderID: "O9"}, nil},
	}
	for _, tc := range tests {
		got, err := s.OrderNotifications(t.Context(), tc.f)
		noErr(t, tc.name, err)
		var gotIDs []int64
		for _, n := range got {
			gotIDs = append(gotIDs, n.ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got IDs %v, want %v", tc.name, gotIDs, tc.want)
		}
	}
	// Listed rows are whole.
	got, err := s.OrderNotifications(t.Context(), store.OrderNotificationFilter{OrderID: "O2"})
	noErr(t, "OrderNotifications", err)
	if len(got) == 1 {
		want := fullNotification("O2", "O2-000002")
		want.ID, want.Status = ids[2], store.NotificationPending
		checkNotification(t, "listed notification", got[0], want)
	}
}

func testNotificationPaging(t *testing.T, s store.Store) {
	var ids []int64
	for i := range 7 {
		status := store.NotificationPending
		if i%3 == 0 {
			status = store.NotificationDelivered
		}
		n := fullNotification("CSNP", fmt.Sprintf("CSNP-%06d", i))
		n.Status = status
		ids = append(ids, insertNotification(t, s, n).ID)
	}
	page := func(f store.OrderNotificationFilter) []int64 {
		t.Helper()
		var seen []int64
		for p := 0; ; p++ {
			got, err := s.OrderNotifications(t.Context(), f)
			noErr(t, "OrderNotifications", err)
			if len(got) == 0 {
				return seen
			}
			if len(got) > f.Limit {
				t.Fatalf("page %d has %d notifications, limit %d", p, len(got), f.Limit)
			}
			for _, n := range got {
				seen = append(seen, n.ID)
			}
			f.BeforeID = got[len(got)-1].ID
			if p > 10 {
				t.Fatal("paging does not end")
			}
		}
	}
	var all, pending []int64
	for i := len(ids) - 1; i >= 0; i-- {
		all = append(all, ids[i])
		if i%3 != 0 {
			pending = append(pending, ids[i])
		}
	}
	if got := page(store.OrderNotificationFilter{Limit: 3}); fmt.Sprint(got) != fmt.Sprint(all) {
		t.Errorf("paged through %v, want %v (newest first)", got, all)
	}
	if got := page(store.OrderNotificationFilter{Status: store.NotificationPending, Limit: 2}); fmt.Sprint(got) != fmt.Sprint(pending) {
		t.Errorf("paged through pending %v, want %v (newest first)", got, pending)
	}
}

func testNotificationListLimits(t *testing.T, s store.Store) {
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range 1001 {
			if _, err := tx.InsertOrderNotification(ctx, store.OrderNotification{OrderID: "OL", OrderLineID: fmt.Sprintf("OL-%06d", i),
				Status: store.NotificationPending, CreatedAt: at(0), UpdatedAt: at(0)}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {5, 5}, {1000, 1000}, {5000, 1000}} {
		got, err := s.OrderNotifications(t.Context(), store.OrderNotificationFilter{Limit: tc.limit})
		noErr(t, "OrderNotifications", err)
		if len(got) != tc.want {
			t.Errorf("Limit %d: got %d notifications, want %d", tc.limit, len(got), tc.want)
		}
	}
}
