package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var tenantTests = []test{
	{"UpsertAndRead", testTenantUpsertAndRead},
	{"Defaults", testTenantDefaults},
	{"Deleted", testTenantDeleted},
	{"NotFound", testTenantNotFound},
	{"List", testTenantList},
	{"ListLimits", testTenantListLimits},
	{"Apps", testTenantApps},
	{"Users", testTenantUsers},
	{"UsersMany", testTenantUsersMany},
	{"Orgs", testTenantOrgs},
	{"ReplaceOrgs", testTenantReplaceOrgs},
	{"Clear", testTenantClear},
	{"Rollback", testTenantRollback},
	{"LockTenant", testTenantLock},
	{"EventSeq", testTenantEventSeq},
	{"EventIdempotent", testTenantEventIdempotent},
	{"EventConcurrent", testTenantEventConcurrent},
	{"EventConcurrentDuplicates", testTenantEventConcurrentDuplicates},
	{"EventRollback", testTenantEventRollback},
	{"EventState", testTenantEventState},
	{"EventAttempts", testTenantEventAttempts},
	{"EventRedeliver", testTenantEventRedeliver},
	{"EventListLimits", testTenantEventListLimits},
	{"Lease", testTenantLease},
	{"LeaseConcurrent", testTenantLeaseConcurrent},
}

// fullTenant has every field the caller sets to a distinct, non-zero
// value (Version is the store's).
func fullTenant(id string) store.Tenant {
	return store.Tenant{
		ID:         id,
		Code:       "code-" + id,
		Name:       "\u534e\u4e3a\u4e91 " + id,
		DomainName: "https://" + id + ".idaas.example.com",
		InstanceID: "inst-" + id,
		OrderID:    "CS" + id,
		Test:       true,
		Status:     store.TenantActive,
		CreatedAt:  at(21 * time.Millisecond),
		UpdatedAt:  at(22 * time.Millisecond),
	}
}

func fullApp(tenantID, appID string) store.TenantApp {
	return store.TenantApp{
		TenantID:           tenantID,
		AppID:              appID,
		ClientID:           "client-" + appID,
		ClientSecretSealed: "sealed:" + appID,
		InstanceID:         "inst-" + tenantID,
		CreatedAt:          at(31 * time.Millisecond),
		UpdatedAt:          at(32 * time.Millisecond),
	}
}

func fullUser(tenantID, appID, userName string) store.TenantUser {
	return store.TenantUser{
		TenantID:     tenantID,
		AppID:        appID,
		UserName:     userName,
		Name:         "\u5f20\u4e09 " + userName,
		OrgCode:      "org-1",
		Role:         "admin",
		Enable:       true,
		Revoked:      true,
		Position:     "engineer",
		EmployeeCode: "E-" + userName,
		EmployeeType: 3,
		MobileSealed: "sealed-mobile:" + userName,
		EmailSealed:  "sealed-email:" + userName,
		WorkPlace:    "Shenzhen",
		EntryDate:    "2024-05-06",
		SyncTime:     "20260301120000123",
		CreatedAt:    at(41 * time.Millisecond),
		UpdatedAt:    at(42 * time.Millisecond),
	}
}

func fullOrg(tenantID, code, parent string) store.TenantOrg {
	return store.TenantOrg{
		TenantID:   tenantID,
		OrgCode:    code,
		Name:       "dept " + code,
		ParentCode: parent,
		CreatedAt:  at(51 * time.Millisecond),
		UpdatedAt:  at(52 * time.Millisecond),
	}
}

func fullEvent(tenantID, eventID string) store.TenantEvent {
	return store.TenantEvent{
		TenantID:      tenantID,
		EventID:       eventID,
		Type:          "tenant.user.upserted",
		PayloadSealed: "sealed-payload:" + eventID,
		State:         store.TenantEventPending,
		LastError:     "",
		CreatedAt:     at(61 * time.Millisecond),
		UpdatedAt:     at(62 * time.Millisecond),
	}
}

// norm returns v with its CreatedAt, UpdatedAt (and for tenants DeletedAt)
// normalised for comparison.
func normTenant(v store.Tenant) store.Tenant {
	v.CreatedAt, v.UpdatedAt, v.DeletedAt = normTime(v.CreatedAt), normTime(v.UpdatedAt), normTime(v.DeletedAt)
	return v
}

func normApp(v store.TenantApp) store.TenantApp {
	v.CreatedAt, v.UpdatedAt = normTime(v.CreatedAt), normTime(v.UpdatedAt)
	return v
}

func normUser(v store.TenantUser) store.TenantUser {
	v.CreatedAt, v.UpdatedAt = normTime(v.CreatedAt), normTime(v.UpdatedAt)
	return v
}

func normOrg(v store.TenantOrg) store.TenantOrg {
	v.CreatedAt, v.UpdatedAt = normTime(v.CreatedAt), normTime(v.UpdatedAt)
	return v
}

func normEvent(v store.TenantEvent) store.TenantEvent {
	v.CreatedAt, v.UpdatedAt = normTime(v.CreatedAt), normTime(v.UpdatedAt)
	return v
}

// sameList fails the test unless got and want have the same length and
// equal elements after norm.
func sameList[T any](t *testing.T, what string, got, want []T, norm func(T) T) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d:\n  got  %+v\n  want %+v", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		if d := diff(norm(got[i]), norm(want[i])); d != "" {
			t.Errorf("%s: row %d differs:%s", what, i, d)
		}
	}
}

// upsertTenant writes tn in its own transaction.
func upsertTenant(t *testing.T, s store.Store, tn store.Tenant) {
	t.Helper()
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpsertTenant(ctx, tn) })
}

// insertEvent inserts e in its own transaction and returns its ID and Seq;
// it fails the test unless e was inserted.
func insertEvent(t *testing.T, s store.Store, e store.TenantEvent) (id, seq int64) {
	t.Helper()
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		var ok bool
		var err error
		id, seq, ok, err = tx.InsertTenantEvent(ctx, e)
		if err == nil && !ok {
			err = fmt.Errorf("event %s not inserted", e.EventID)
		}
		return err
	})
	return id, seq
}

func testTenantUpsertAndRead(t *testing.T, s store.Store) {
	want := fullTenant("T001")
	want.Version = 7 // ignored: a new tenant is stored at version 0
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UpsertTenant(ctx, want); err != nil {
			return err
		}
		got, err := tx.Tenant(ctx, want.ID)
		if err != nil {
			return fmt.Errorf("read in tx: %w", err)
		}
		w := want
		w.Version = 0
		if d := diff(normTenant(got), normTenant(w)); d != "" {
			t.Errorf("Tenant in tx differs:%s", d)
		}
		return nil
	})
	want.Version = 0
	got, err := s.Tenant(t.Context(), want.ID)
	noErr(t, "Tenant", err)
	if d := diff(normTenant(got), normTenant(want)); d != "" {
		t.Errorf("Tenant differs:%s", d)
	}

	// Every upsert overwrites all fields but CreatedAt and bumps Version.
	for v := int64(1); v <= 2; v++ {
		upd := store.Tenant{
			ID: want.ID, Code: "code2", Name: "name" + strconv.FormatInt(v, 10), DomainName: "https://other.example.com",
			InstanceID: "", OrderID: "CS2", Test: false, Status: store.TenantActive,
			CreatedAt: at(time.Hour), UpdatedAt: at(time.Duration(v) * time.Hour), Version: 99,
		}
		upsertTenant(t, s, upd)
		got, err := s.Tenant(t.Context(), want.ID)
		noErr(t, "Tenant", err)
		upd.CreatedAt, upd.Version = want.CreatedAt, v
		if d := diff(normTenant(got), normTenant(upd)); d != "" {
			t.Errorf("Tenant after upsert %d differs:%s", v, d)
		}
	}
}

// testTenantDefaults: an empty status becomes active, zero times now.
func testTenantDefaults(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	upsertTenant(t, s, store.Tenant{ID: "T002"})
	after := time.Now().Add(time.Second)
	got, err := s.Tenant(t.Context(), "T002")
	noErr(t, "Tenant", err)
	if got.Status != store.TenantActive || got.Version != 0 || !got.DeletedAt.IsZero() {
		t.Errorf("bare tenant: status %q version %d deleted %v; want active, 0, zero", got.Status, got.Version, got.DeletedAt)
	}
	for name, tm := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt} {
		if tm.Before(before) || tm.After(after) {
			t.Errorf("%s = %v, want now (between %v and %v)", name, tm, before, after)
		}
	}
}

// testTenantDeleted: a deleted tenant is a readable tombstone, and comes
// back to life with a new upsert.
func testTenantDeleted(t *testing.T, s store.Store) {
	tn := fullTenant("T003")
	upsertTenant(t, s, tn)
	del := tn
	del.Status, del.DeletedAt, del.UpdatedAt = store.TenantDeleted, at(time.Hour), at(time.Hour)
	upsertTenant(t, s, del)
	got, err := s.Tenant(t.Context(), "T003")
	noErr(t, "Tenant of a deleted tenant", err)
	del.Version = 1
	if d := diff(normTenant(got), normTenant(del)); d != "" {
		t.Errorf("deleted tenant differs:%s", d)
	}
	listed, err := s.Tenants(t.Context(), store.TenantFilter{Status: store.TenantDeleted})
	noErr(t, "Tenants", err)
	if len(listed) != 1 || listed[0].ID != "T003" {
		t.Errorf("deleted tenants listed %+v, want T003", listed)
	}
	upsertTenant(t, s, tn)
	got, err = s.Tenant(t.Context(), "T003")
	noErr(t, "Tenant", err)
	if got.Status != store.TenantActive || !got.DeletedAt.IsZero() || got.Version != 2 {
		t.Errorf("tenant bound again: status %q deleted %v version %d; want active, zero, 2", got.Status, got.DeletedAt, got.Version)
	}
}

func testTenantNotFound(t *testing.T, s store.Store) {
	upsertTenant(t, s, fullTenant("T004"))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.UpsertTenantApp(ctx, fullApp("T004", "app1"))
	})
	id, _ := insertEvent(t, s, fullEvent("T004", "ev-1"))
	noErr(t, "SetTenantEventState", s.SetTenantEventState(t.Context(), id, store.TenantEventDelivered, "", at(time.Second)))

	ctx := t.Context()
	check := func(r store.TenantReader, where string) {
		_, err := r.Tenant(ctx, "T005")
		wantErr(t, where+"Tenant", err, store.ErrNotFound)
		_, err = r.TenantApp(ctx, "T004", "app2")
		wantErr(t, where+"TenantApp of another app", err, store.ErrNotFound)
		_, err = r.TenantApp(ctx, "T005", "app1")
		wantErr(t, where+"TenantApp of another tenant", err, store.ErrNotFound)
		_, err = r.TenantEvent(ctx, id+1000)
		wantErr(t, where+"TenantEvent", err, store.ErrNotFound)
		_, err = r.NextTenantEvent(ctx, "T004")
		wantErr(t, where+"NextTenantEvent with none pending", err, store.ErrNotFound)
		_, err = r.NextTenantEvent(ctx, "T005")
		wantErr(t, where+"NextTenantEvent of a tenant without events", err, store.ErrNotFound)
		for what, n := range map[string]func() (int, error){
			"TenantApps":  func() (int, error) { l, err := r.TenantApps(ctx, "T005"); return len(l), err },
			"TenantUsers": func() (int, error) { l, err := r.TenantUsers(ctx, "T004"); return len(l), err },
			"TenantOrgs":  func() (int, error) { l, err := r.TenantOrgs(ctx, "T004"); return len(l), err },
		} {
			got, err := n()
			noErr(t, where+what, err)
			if got != 0 {
				t.Errorf("%s%s listed %d, want 0", where, what, got)
			}
		}
	}
	check(s, "")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		check(tx, "tx.")
		return nil
	})
	wantErr(t, "SetTenantEventState of an absent event", s.SetTenantEventState(ctx, id+1000, store.TenantEventFailed, "x", at(0)), store.ErrNotFound)
	events, err := s.TenantEvents(ctx, "T005", 0)
	noErr(t, "TenantEvents", err)
	if len(events) != 0 {
		t.Errorf("TenantEvents of a tenant without events listed %d", len(events))
	}
}

func testTenantList(t *testing.T, s store.Store) {
	// Inserted out of order; "T-b" < "T-Z"? No: byte order puts 'Z' (0x5a)
	// before 'b' (0x62), whatever the database's collation.
	ids := []string{"T-b", "T-a", "T-Z", "T-c", "T-d"}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, id := range ids {
			tn := fullTenant(id)
			if i%2 == 1 {
				tn.Status, tn.DeletedAt = store.TenantDeleted, at(time.Minute)
			}
			if err := tx.UpsertTenant(ctx, tn); err != nil {
				return err
			}
		}
		return nil
	})
	tests := []struct {
		name string
		f    store.TenantFilter
		want []string
	}{
		{"all", store.TenantFilter{}, []string{"T-Z", "T-a", "T-b", "T-c", "T-d"}},
		{"active", store.TenantFilter{Status: store.TenantActive}, []string{"T-Z", "T-b", "T-d"}},
		{"deleted", store.TenantFilter{Status: store.TenantDeleted}, []string{"T-a", "T-c"}},
		{"after", store.TenantFilter{AfterID: "T-a"}, []string{"T-b", "T-c", "T-d"}},
		{"limit", store.TenantFilter{Limit: 2}, []string{"T-Z", "T-a"}},
		{"active after", store.TenantFilter{Status: store.TenantActive, AfterID: "T-Z"}, []string{"T-b", "T-d"}},
		{"none", store.TenantFilter{AfterID: "T-d"}, nil},
	}
	for _, tc := range tests {
		got, err := s.Tenants(t.Context(), tc.f)
		noErr(t, tc.name, err)
		var gotIDs []string
		for _, tn := range got {
			gotIDs = append(gotIDs, tn.ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, gotIDs, tc.want)
		}
	}
	// Paging visits each tenant once, in order.
	var seen []string
	f := store.TenantFilter{Limit: 2}
	for page := 0; ; page++ {
		got, err := s.Tenants(t.Context(), f)
		noErr(t, "Tenants", err)
		if len(got) == 0 {
			break
		}
		for _, tn := range got {
			seen = append(seen, tn.ID)
		}
		f.AfterID = got[len(got)-1].ID
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(tests[0].want) {
		t.Errorf("paged through %v, want %v", seen, tests[0].want)
	}
	// Listed rows are whole.
	got, err := s.Tenants(t.Context(), store.TenantFilter{AfterID: "T-c", Limit: 1})
	noErr(t, "Tenants", err)
	sameList(t, "listed tenant", got, []store.Tenant{fullTenant("T-d")}, normTenant)
}

func testTenantListLimits(t *testing.T, s store.Store) {
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range 1001 {
			if err := tx.UpsertTenant(ctx, store.Tenant{ID: fmt.Sprintf("T%06d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {5, 5}, {1000, 1000}, {5000, 1000}} {
		got, err := s.Tenants(t.Context(), store.TenantFilter{Limit: tc.limit})
		noErr(t, "Tenants", err)
		if len(got) != tc.want {
			t.Errorf("Limit %d: got %d tenants, want %d", tc.limit, len(got), tc.want)
		}
	}
}

func testTenantApps(t *testing.T, s store.Store) {
	a2, a1, other := fullApp("T010", "app-b"), fullApp("T010", "app-a"), fullApp("T011", "app-a")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, a := range []store.TenantApp{a2, a1, other} {
			if err := tx.UpsertTenantApp(ctx, a); err != nil {
				return err
			}
		}
		got, err := tx.TenantApp(ctx, "T010", "app-a")
		if err != nil {
			return err
		}
		if d := diff(normApp(got), normApp(a1)); d != "" {
			t.Errorf("TenantApp in tx differs:%s", d)
		}
		apps, err := tx.TenantApps(ctx, "T010")
		sameList(t, "tx.TenantApps", apps, []store.TenantApp{a1, a2}, normApp)
		return err
	})
	apps, err := s.TenantApps(t.Context(), "T010")
	noErr(t, "TenantApps", err)
	sameList(t, "TenantApps", apps, []store.TenantApp{a1, a2}, normApp)

	// An overwrite keeps CreatedAt.
	upd := store.TenantApp{TenantID: "T010", AppID: "app-a", ClientID: "client-new", ClientSecretSealed: "sealed:new",
		InstanceID: "", CreatedAt: at(time.Hour), UpdatedAt: at(2 * time.Hour)}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpsertTenantApp(ctx, upd) })
	got, err := s.TenantApp(t.Context(), "T010", "app-a")
	noErr(t, "TenantApp", err)
	upd.CreatedAt = a1.CreatedAt
	if d := diff(normApp(got), normApp(upd)); d != "" {
		t.Errorf("TenantApp after overwrite differs:%s", d)
	}

	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, tc := range []struct {
			tenant, app string
			want        bool
		}{{"T010", "app-a", true}, {"T010", "app-a", false}, {"T010", "app-c", false}, {"T012", "app-b", false}} {
			ok, err := tx.DeleteTenantApp(ctx, tc.tenant, tc.app)
			if err != nil {
				return err
			}
			if ok != tc.want {
				t.Errorf("DeleteTenantApp(%s, %s) = %v, want %v", tc.tenant, tc.app, ok, tc.want)
			}
		}
		return nil
	})
	apps, err = s.TenantApps(t.Context(), "T010")
	noErr(t, "TenantApps", err)
	sameList(t, "TenantApps after delete", apps, []store.TenantApp{a2}, normApp)
	apps, err = s.TenantApps(t.Context(), "T011")
	noErr(t, "TenantApps", err)
	sameList(t, "TenantApps of the other tenant", apps, []store.TenantApp{other}, normApp)
}

func testTenantUsers(t *testing.T, s store.Store) {
	u := func(app, name string) store.TenantUser { return fullUser("T020", app, name) }
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UpsertTenantUsers(ctx, nil); err != nil {
			return fmt.Errorf("UpsertTenantUsers of none: %w", err)
		}
		return tx.UpsertTenantUsers(ctx, []store.TenantUser{u("app2", "alice"), u("app1", "bob"), u("app1", "alice"),
			fullUser("T021", "app1", "alice")})
	})
	users, err := s.TenantUsers(t.Context(), "T020")
	noErr(t, "TenantUsers", err)
	sameList(t, "TenantUsers", users, []store.TenantUser{u("app1", "alice"), u("app1", "bob"), u("app2", "alice")}, normUser)

	// An overwrite keeps CreatedAt; within one call, the last of a key wins.
	bob := store.TenantUser{TenantID: "T020", AppID: "app1", UserName: "bob", Name: "Bob", Role: "user",
		CreatedAt: at(time.Hour), UpdatedAt: at(2 * time.Hour)}
	first := bob
	first.Name = "not this one"
	carol := u("app1", "carol")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UpsertTenantUsers(ctx, []store.TenantUser{first, carol, bob}); err != nil {
			return err
		}
		got, err := tx.TenantUsers(ctx, "T020")
		if err != nil {
			return err
		}
		if len(got) != 4 {
			t.Errorf("tx.TenantUsers listed %d, want 4", len(got))
		}
		return nil
	})
	bob.CreatedAt = u("app1", "bob").CreatedAt
	users, err = s.TenantUsers(t.Context(), "T020")
	noErr(t, "TenantUsers", err)
	sameList(t, "TenantUsers after overwrite", users,
		[]store.TenantUser{u("app1", "alice"), bob, carol, u("app2", "alice")}, normUser)

	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, tc := range []struct {
			app   string
			names []string
			want  int64
		}{
			{"app1", []string{"alice", "carol", "nobody"}, 2},
			{"app1", []string{"alice"}, 0},
			{"app1", nil, 0},
			{"app3", []string{"bob"}, 0},
		} {
			n, err := tx.DeleteTenantUsers(ctx, "T020", tc.app, tc.names)
			if err != nil {
				return err
			}
			if n != tc.want {
				t.Errorf("DeleteTenantUsers(%s, %v) = %d, want %d", tc.app, tc.names, n, tc.want)
			}
		}
		return nil
	})
	users, err = s.TenantUsers(t.Context(), "T020")
	noErr(t, "TenantUsers", err)
	sameList(t, "TenantUsers after delete", users, []store.TenantUser{bob, u("app2", "alice")}, normUser)
	users, err = s.TenantUsers(t.Context(), "T021")
	noErr(t, "TenantUsers", err)
	sameList(t, "TenantUsers of the other tenant", users, []store.TenantUser{fullUser("T021", "app1", "alice")}, normUser)
}

// testTenantUsersMany: an allOrgSync-sized authSync, 500 users in one
// call, then 500 overwritten and 250 deleted in one call each.
func testTenantUsersMany(t *testing.T, s store.Store) {
	const n = 500
	users := make([]store.TenantUser, n)
	names := make([]string, 0, n/2)
	for i := range n {
		users[i] = fullUser("T022", "app1", fmt.Sprintf("user%04d", i))
		if i%2 == 0 {
			names = append(names, users[i].UserName)
		}
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpsertTenantUsers(ctx, users) })
	got, err := s.TenantUsers(t.Context(), "T022")
	noErr(t, "TenantUsers", err)
	sameList(t, "500 users", got, users, normUser)

	for i := range users {
		users[i].Name = "renamed"
		users[i].UpdatedAt = at(time.Hour)
	}
	var deleted int64
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.UpsertTenantUsers(ctx, users); err != nil {
			return err
		}
		deleted, err = tx.DeleteTenantUsers(ctx, "T022", "app1", names)
		return err
	})
	if deleted != n/2 {
		t.Errorf("DeleteTenantUsers deleted %d, want %d", deleted, n/2)
	}
	var want []store.TenantUser
	for i := 1; i < n; i += 2 {
		want = append(want, users[i])
	}
	got, err = s.TenantUsers(t.Context(), "T022")
	noErr(t, "TenantUsers", err)
	sameList(t, "users renamed and half deleted", got, want, normUser)
}

func testTenantOrgs(t *testing.T, s store.Store) {
	root, child, other := fullOrg("T030", "d1", ""), fullOrg("T030", "d1-1", "d1"), fullOrg("T031", "d1", "")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, o := range []store.TenantOrg{child, root, other} {
			if err := tx.UpsertTenantOrg(ctx, o); err != nil {
				return err
			}
		}
		orgs, err := tx.TenantOrgs(ctx, "T030")
		sameList(t, "tx.TenantOrgs", orgs, []store.TenantOrg{root, child}, normOrg)
		return err
	})
	upd := store.TenantOrg{TenantID: "T030", OrgCode: "d1-1", Name: "moved", ParentCode: "", CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.UpsertTenantOrg(ctx, upd) })
	upd.CreatedAt = child.CreatedAt
	orgs, err := s.TenantOrgs(t.Context(), "T030")
	noErr(t, "TenantOrgs", err)
	sameList(t, "TenantOrgs after overwrite", orgs, []store.TenantOrg{root, upd}, normOrg)

	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, tc := range []struct {
			tenant, code string
			want         bool
		}{{"T030", "d1", true}, {"T030", "d1", false}, {"T032", "d1-1", false}} {
			ok, err := tx.DeleteTenantOrg(ctx, tc.tenant, tc.code)
			if err != nil {
				return err
			}
			if ok != tc.want {
				t.Errorf("DeleteTenantOrg(%s, %s) = %v, want %v", tc.tenant, tc.code, ok, tc.want)
			}
		}
		return nil
	})
	orgs, err = s.TenantOrgs(t.Context(), "T030")
	noErr(t, "TenantOrgs", err)
	sameList(t, "TenantOrgs after delete", orgs, []store.TenantOrg{upd}, normOrg)
	orgs, err = s.TenantOrgs(t.Context(), "T031")
	noErr(t, "TenantOrgs", err)
	sameList(t, "TenantOrgs of the other tenant", orgs, []store.TenantOrg{other}, normOrg)
}

// testTenantReplaceOrgs: the new tree replaces the old one whole (orgs
// stored under the tenant given, the last of a code winning); a failing
// transaction leaves the old tree; an empty tree empties it.
func testTenantReplaceOrgs(t *testing.T, s store.Store) {
	old := []store.TenantOrg{fullOrg("T040", "a", ""), fullOrg("T040", "b", "a"), fullOrg("T040", "c", "a")}
	neighbour := fullOrg("T041", "a", "")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.ReplaceTenantOrgs(ctx, "T040", old); err != nil {
			return err
		}
		return tx.UpsertTenantOrg(ctx, neighbour)
	})
	orgs, err := s.TenantOrgs(t.Context(), "T040")
	noErr(t, "TenantOrgs", err)
	sameList(t, "first tree", orgs, old, normOrg)

	// A failing transaction keeps the old tree.
	err = s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if err := tx.ReplaceTenantOrgs(ctx, "T040", []store.TenantOrg{fullOrg("T040", "x", "")}); err != nil {
			return err
		}
		orgs, err := tx.TenantOrgs(ctx, "T040")
		if err != nil {
			return err
		}
		if len(orgs) != 1 || orgs[0].OrgCode != "x" {
			t.Errorf("tree inside the transaction = %+v, want x alone", orgs)
		}
		return errBoom
	})
	wantErr(t, "Tx", err, errBoom)
	orgs, err = s.TenantOrgs(t.Context(), "T040")
	noErr(t, "TenantOrgs", err)
	sameList(t, "tree after a failed replace", orgs, old, normOrg)

	first := fullOrg("T040", "b", "")
	first.Name = "not this one"
	stray := fullOrg("T999", "d", "b") // stored under T040, the tenant given
	b := fullOrg("T040", "b", "")
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.ReplaceTenantOrgs(ctx, "T040", []store.TenantOrg{first, stray, b})
	})
	stray.TenantID = "T040"
	orgs, err = s.TenantOrgs(t.Context(), "T040")
	noErr(t, "TenantOrgs", err)
	sameList(t, "second tree", orgs, []store.TenantOrg{b, stray}, normOrg)
	orgs, err = s.TenantOrgs(t.Context(), "T999")
	noErr(t, "TenantOrgs", err)
	sameList(t, "tree of the stray org's tenant", orgs, nil, normOrg)

	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.ReplaceTenantOrgs(ctx, "T040", nil) })
	orgs, err = s.TenantOrgs(t.Context(), "T040")
	noErr(t, "TenantOrgs", err)
	sameList(t, "empty tree", orgs, nil, normOrg)
	orgs, err = s.TenantOrgs(t.Context(), "T041")
	noErr(t, "TenantOrgs", err)
	sameList(t, "neighbour's tree", orgs, []store.TenantOrg{neighbour}, normOrg)
}

// testTenantClear: ClearTenant removes apps, users and departments of one
// tenant; its row, its events and other tenants' data stay.
func testTenantClear(t *testing.T, s store.Store) {
	for _, id := range []string{"T050", "T051"} {
		inTx(t, s, func(ctx context.Context, tx store.Tx) error {
			if err := tx.UpsertTenant(ctx, fullTenant(id)); err != nil {
				return err
			}
			if err := tx.UpsertTenantApp(ctx, fullApp(id, "app1")); err != nil {
				return err
			}
			if err := tx.UpsertTenantUsers(ctx, []store.TenantUser{fullUser(id, "app1", "alice")}); err != nil {
				return err
			}
			return tx.UpsertTenantOrg(ctx, fullOrg(id, "d1", ""))
		})
		insertEvent(t, s, fullEvent(id, "ev-"+id))
	}
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.ClearTenant(ctx, "T050") })
	for _, tc := range []struct {
		id   string
		want int
	}{{"T050", 0}, {"T051", 1}} {
		apps, err := s.TenantApps(t.Context(), tc.id)
		noErr(t, "TenantApps", err)
		users, err := s.TenantUsers(t.Context(), tc.id)
		noErr(t, "TenantUsers", err)
		orgs, err := s.TenantOrgs(t.Context(), tc.id)
		noErr(t, "TenantOrgs", err)
		if len(apps) != tc.want || len(users) != tc.want || len(orgs) != tc.want {
			t.Errorf("tenant %s after clearing T050: %d apps, %d users, %d orgs; want %d each", tc.id, len(apps), len(users), len(orgs), tc.want)
		}
		if _, err := s.Tenant(t.Context(), tc.id); err != nil {
			t.Errorf("Tenant(%s) after clearing T050: %v", tc.id, err)
		}
		events, err := s.TenantEvents(t.Context(), tc.id, 0)
		noErr(t, "TenantEvents", err)
		if len(events) != 1 {
			t.Errorf("tenant %s has %d events after clearing T050, want 1", tc.id, len(events))
		}
	}
}

// testTenantRollback: a failing transaction leaves no trace of its Kit
// writes.
func testTenantRollback(t *testing.T, s store.Store) {
	tn := fullTenant("T060")
	upsertTenant(t, s, tn)
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		upd := tn
		upd.Name = "changed"
		if err := tx.UpsertTenant(ctx, upd); err != nil {
			return err
		}
		if err := tx.UpsertTenant(ctx, fullTenant("T061")); err != nil {
			return err
		}
		if err := tx.UpsertTenantApp(ctx, fullApp("T060", "app1")); err != nil {
			return err
		}
		if err := tx.UpsertTenantUsers(ctx, []store.TenantUser{fullUser("T060", "app1", "u")}); err != nil {
			return err
		}
		return errBoom
	})
	wantErr(t, "Tx", err, errBoom)
	got, err := s.Tenant(t.Context(), "T060")
	noErr(t, "Tenant", err)
	if d := diff(normTenant(got), normTenant(tn)); d != "" {
		t.Errorf("tenant changed by a rolled-back transaction:%s", d)
	}
	_, err = s.Tenant(t.Context(), "T061")
	wantErr(t, "Tenant inserted by a rolled-back transaction", err, store.ErrNotFound)
	_, err = s.TenantApp(t.Context(), "T060", "app1")
	wantErr(t, "TenantApp inserted by a rolled-back transaction", err, store.ErrNotFound)
	users, err := s.TenantUsers(t.Context(), "T060")
	noErr(t, "TenantUsers", err)
	if len(users) != 0 {
		t.Errorf("%d users after rollback, want 0", len(users))
	}
}

// testTenantLock: LockTenant may be taken again in the same transaction,
// uses up no Seq, and makes read-modify-writes of one tenant by 20
// concurrent transactions lose nothing.
func testTenantLock(t *testing.T, s store.Store) {
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for range 2 {
			if err := tx.LockTenant(ctx, "T070"); err != nil {
				return err
			}
		}
		return tx.UpsertTenant(ctx, store.Tenant{ID: "T070", Code: "0"})
	})
	if _, seq := insertEvent(t, s, fullEvent("T070", "ev-lock-0")); seq != 1 {
		t.Errorf("first event after LockTenant has Seq %d, want 1", seq)
	}
	const n = 20
	errs := make([]error, n)
	Race(n, func(i int) {
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			if err := tx.LockTenant(ctx, "T070"); err != nil {
				return err
			}
			tn, err := tx.Tenant(ctx, "T070")
			if err != nil {
				return err
			}
			count, err := strconv.Atoi(tn.Code)
			if err != nil {
				return err
			}
			tn.Code = strconv.Itoa(count + 1)
			return tx.UpsertTenant(ctx, tn)
		})
	})
	for i, err := range errs {
		noErr(t, fmt.Sprintf("transaction %d", i), err)
	}
	got, err := s.Tenant(t.Context(), "T070")
	noErr(t, "Tenant", err)
	if got.Code != strconv.Itoa(n) || got.Version != n {
		t.Errorf("counter %s at version %d after %d increments, want %d and %d", got.Code, got.Version, n, n, n)
	}
}

// testTenantEventSeq: Seq counts 1, 2, 3 per tenant, independently; the
// event reads back whole; listings and NextTenantEvent follow Seq.
func testTenantEventSeq(t *testing.T, s store.Store) {
	type ins struct {
		tenant, event string
		wantSeq       int64
	}
	steps := []ins{{"TA", "a1", 1}, {"TA", "a2", 2}, {"TB", "b1", 1}, {"TA", "a3", 3}, {"TB", "b2", 2}}
	ids := map[string]int64{}
	for _, st := range steps {
		id, seq := insertEvent(t, s, fullEvent(st.tenant, st.event))
		if seq != st.wantSeq {
			t.Errorf("event %s of %s got Seq %d, want %d", st.event, st.tenant, seq, st.wantSeq)
		}
		if id <= 0 {
			t.Errorf("event %s got ID %d, want > 0", st.event, id)
		}
		ids[st.event] = id
	}
	want := fullEvent("TA", "a2")
	want.ID, want.Seq = ids["a2"], 2
	got, err := s.TenantEvent(t.Context(), ids["a2"])
	noErr(t, "TenantEvent", err)
	if d := diff(normEvent(got), normEvent(want)); d != "" {
		t.Errorf("TenantEvent differs:%s", d)
	}

	// Several events in one transaction, with an empty State.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for i, wantSeq := range []int64{4, 5} {
			e := fullEvent("TA", fmt.Sprintf("a%d", 4+i))
			e.State, e.ID, e.Seq = "", 999, 999
			id, seq, ok, err := tx.InsertTenantEvent(ctx, e)
			if err != nil {
				return err
			}
			if !ok || seq != wantSeq {
				t.Errorf("InsertTenantEvent in one tx = %v seq %d, want true seq %d", ok, seq, wantSeq)
			}
			ids[e.EventID] = id
			got, err := tx.TenantEvent(ctx, id)
			if err != nil {
				return err
			}
			if got.State != store.TenantEventPending || got.Seq != wantSeq || got.ID != id {
				t.Errorf("event read in tx: state %q seq %d id %d; want pending, %d, %d", got.State, got.Seq, got.ID, wantSeq, id)
			}
		}
		return nil
	})

	events, err := s.TenantEvents(t.Context(), "TA", 0)
	noErr(t, "TenantEvents", err)
	var seqs []int64
	for _, e := range events {
		seqs = append(seqs, e.Seq)
	}
	if fmt.Sprint(seqs) != "[5 4 3 2 1]" {
		t.Errorf("TenantEvents seqs %v, want [5 4 3 2 1]", seqs)
	}
	if len(events) == 5 {
		if d := diff(normEvent(events[3]), normEvent(want)); d != "" {
			t.Errorf("listed event differs:%s", d)
		}
	}
	events, err = s.TenantEvents(t.Context(), "TB", 1)
	noErr(t, "TenantEvents", err)
	if len(events) != 1 || events[0].EventID != "b2" {
		t.Errorf("TenantEvents(TB, 1) = %+v, want b2 alone", events)
	}

	next, err := s.NextTenantEvent(t.Context(), "TA")
	noErr(t, "NextTenantEvent", err)
	if next.EventID != "a1" || next.Seq != 1 {
		t.Errorf("NextTenantEvent = %s seq %d, want a1 seq 1", next.EventID, next.Seq)
	}
	noErr(t, "SetTenantEventState", s.SetTenantEventState(t.Context(), ids["a1"], store.TenantEventDelivered, "", at(time.Minute)))
	noErr(t, "SetTenantEventState", s.SetTenantEventState(t.Context(), ids["a2"], store.TenantEventFailed, "refused", at(time.Minute)))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		next, err := tx.NextTenantEvent(ctx, "TA")
		if err != nil {
			return err
		}
		if next.EventID != "a3" {
			t.Errorf("tx.NextTenantEvent = %s, want a3 (a1 delivered, a2 failed)", next.EventID)
		}
		return nil
	})
}

// testTenantEventIdempotent: a second insert of one EventID returns the
// stored event and uses up no Seq, even for another tenant.
func testTenantEventIdempotent(t *testing.T, s store.Store) {
	id1, seq1 := insertEvent(t, s, fullEvent("TC", "dup"))
	for _, tenant := range []string{"TC", "TD"} {
		again := fullEvent(tenant, "dup")
		again.Type, again.PayloadSealed = "other", "other"
		inTx(t, s, func(ctx context.Context, tx store.Tx) error {
			id, seq, ok, err := tx.InsertTenantEvent(ctx, again)
			if err != nil {
				return err
			}
			if ok || id != id1 || seq != seq1 {
				t.Errorf("repeat by %s: InsertTenantEvent = %d, %d, %v; want %d, %d, false", tenant, id, seq, ok, id1, seq1)
			}
			return nil
		})
	}
	got, err := s.TenantEvent(t.Context(), id1)
	noErr(t, "TenantEvent", err)
	if got.Type != "tenant.user.upserted" || got.TenantID != "TC" {
		t.Errorf("stored event overwritten by a repeat: %+v", got)
	}
	if _, seq := insertEvent(t, s, fullEvent("TC", "next")); seq != 2 {
		t.Errorf("event after a repeat got Seq %d, want 2", seq)
	}
	if _, seq := insertEvent(t, s, fullEvent("TD", "first")); seq != 1 {
		t.Errorf("first event of TD got Seq %d, want 1", seq)
	}
	// Empty identifiers are refused, not stored.
	for _, e := range []store.TenantEvent{fullEvent("", "x"), fullEvent("TC", "")} {
		err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			_, _, _, err := tx.InsertTenantEvent(ctx, e)
			return err
		})
		if err == nil {
			t.Errorf("InsertTenantEvent of tenant %q event %q succeeded, want an error", e.TenantID, e.EventID)
		}
	}
}

// testTenantEventConcurrent: 30 transactions at once append to two
// tenants' outboxes: none fails, and each tenant's Seqs are 1…n.
func testTenantEventConcurrent(t *testing.T, s store.Store) {
	const n = 30
	var (
		errs = make([]error, n)
		seqs = make([]int64, n)
	)
	Race(n, func(i int) {
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			_, seq, ok, err := tx.InsertTenantEvent(ctx, fullEvent([]string{"TE", "TF"}[i%2], fmt.Sprintf("race-%02d", i)))
			if err == nil && !ok {
				err = errors.New("not inserted")
			}
			seqs[i] = seq
			return err
		})
	})
	seen := map[string]map[int64]int{"TE": {}, "TF": {}}
	for i := range n {
		noErr(t, fmt.Sprintf("goroutine %d", i), errs[i])
		tenant := []string{"TE", "TF"}[i%2]
		if j, dup := seen[tenant][seqs[i]]; dup {
			t.Errorf("goroutines %d and %d both got Seq %d of %s", j, i, seqs[i], tenant)
		}
		seen[tenant][seqs[i]] = i
	}
	for tenant, got := range seen {
		for seq := int64(1); seq <= n/2; seq++ {
			if _, ok := got[seq]; !ok {
				t.Errorf("%s: Seq %d not given; seqs %v", tenant, seq, got)
			}
		}
		events, err := s.TenantEvents(t.Context(), tenant, 0)
		noErr(t, "TenantEvents", err)
		if len(events) != n/2 || events[0].Seq != n/2 {
			t.Errorf("%s: %d events, highest Seq %v; want %d and %d", tenant, len(events), events, n/2, n/2)
		}
	}
}

// testTenantEventConcurrentDuplicates: 20 transactions at once insert one
// EventID: one inserts, all get its ID and Seq, and no Seq is lost.
func testTenantEventConcurrentDuplicates(t *testing.T, s store.Store) {
	insertEvent(t, s, fullEvent("TG", "before"))
	const n = 20
	var (
		errs     = make([]error, n)
		ids      = make([]int64, n)
		seqs     = make([]int64, n)
		inserted = make([]bool, n)
	)
	Race(n, func(i int) {
		errs[i] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			var err error
			ids[i], seqs[i], inserted[i], err = tx.InsertTenantEvent(ctx, fullEvent("TG", "storm"))
			return err
		})
	})
	winners := 0
	for i := range n {
		noErr(t, fmt.Sprintf("goroutine %d", i), errs[i])
		if inserted[i] {
			winners++
		}
		if ids[i] != ids[0] || seqs[i] != 2 {
			t.Errorf("goroutine %d got ID %d Seq %d, want %d and 2", i, ids[i], seqs[i], ids[0])
		}
	}
	if winners != 1 {
		t.Errorf("%d transactions inserted one EventID, want 1", winners)
	}
	if _, seq := insertEvent(t, s, fullEvent("TG", "after")); seq != 3 {
		t.Errorf("event after the storm got Seq %d, want 3", seq)
	}

	// Two late comers, of the same tenant and of another, start while the
	// first insert's transaction is still open: where the database lets
	// them run alongside (PostgreSQL), they look for the EventID before it
	// commits, and find it only when they insert.
	var (
		inserted1         = make(chan struct{})
		first             struct{ id, seq int64 }
		late              [2]struct{ id, seq int64 }
		lateOK            [2]bool
		firstErr, lateErr = error(nil), [2]error{}
	)
	Race(3, func(i int) {
		if i == 0 {
			firstErr = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
				var err error
				first.id, first.seq, _, err = tx.InsertTenantEvent(ctx, fullEvent("TG", "slow"))
				close(inserted1)
				// Long enough for the late comers to be waiting on this
				// transaction; the outcome is the same if they are not.
				time.Sleep(200 * time.Millisecond)
				return err
			})
			return
		}
		<-inserted1
		lateErr[i-1] = s.Tx(context.Background(), func(ctx context.Context, tx store.Tx) error {
			var err error
			late[i-1].id, late[i-1].seq, lateOK[i-1], err = tx.InsertTenantEvent(ctx, fullEvent([]string{"TG", "TG2"}[i-1], "slow"))
			return err
		})
	})
	noErr(t, "first insert", firstErr)
	for i := range late {
		noErr(t, fmt.Sprintf("late comer %d", i), lateErr[i])
		if lateOK[i] || late[i] != first {
			t.Errorf("late comer %d: InsertTenantEvent = %v, %v; want %v, false", i, late[i], lateOK[i], first)
		}
	}
	if first.seq != 4 {
		t.Errorf("slow event got Seq %d, want 4", first.seq)
	}
	if _, seq := insertEvent(t, s, fullEvent("TG", "after-slow")); seq != 5 {
		t.Errorf("event after the late comers got Seq %d, want 5", seq)
	}
	if _, seq := insertEvent(t, s, fullEvent("TG2", "own")); seq != 1 {
		t.Errorf("first event of TG2 got Seq %d, want 1 (the late comer's Seq given back)", seq)
	}
}

// testTenantEventRollback: an event of a failed transaction is not stored
// and its Seq is given again.
func testTenantEventRollback(t *testing.T, s store.Store) {
	insertEvent(t, s, fullEvent("TH", "one"))
	err := s.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, _, _, err := tx.InsertTenantEvent(ctx, fullEvent("TH", "lost")); err != nil {
			return err
		}
		return errBoom
	})
	wantErr(t, "Tx", err, errBoom)
	if _, seq := insertEvent(t, s, fullEvent("TH", "lost")); seq != 2 {
		t.Errorf("event after a rollback got Seq %d, want 2", seq)
	}
}

func testTenantEventState(t *testing.T, s store.Store) {
	id, _ := insertEvent(t, s, fullEvent("TI", "e1"))
	for _, tc := range []struct {
		state store.TenantEventState
		err   string
		now   time.Time
	}{
		{store.TenantEventPending, "vendor: 503", at(time.Minute)},
		{store.TenantEventFailed, "vendor refused: 400", at(2 * time.Minute)},
		{store.TenantEventDelivered, "", at(3 * time.Minute)},
	} {
		noErr(t, "SetTenantEventState", s.SetTenantEventState(t.Context(), id, tc.state, tc.err, tc.now))
		got, err := s.TenantEvent(t.Context(), id)
		noErr(t, "TenantEvent", err)
		want := fullEvent("TI", "e1")
		want.ID, want.Seq, want.State, want.LastError, want.UpdatedAt = id, 1, tc.state, tc.err, tc.now
		if d := diff(normEvent(got), normEvent(want)); d != "" {
			t.Errorf("after SetTenantEventState(%s):%s", tc.state, d)
		}
	}
	before := time.Now().Add(-time.Second)
	noErr(t, "SetTenantEventState", s.SetTenantEventState(t.Context(), id, store.TenantEventPending, "", time.Time{}))
	got, err := s.TenantEvent(t.Context(), id)
	noErr(t, "TenantEvent", err)
	if got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("UpdatedAt %v after a zero now, want the wall clock", got.UpdatedAt)
	}
}

// testTenantEventAttempts: each failed delivery counts; the event fails at
// maxAttempts, and a delivered event stays delivered whatever is counted.
func testTenantEventAttempts(t *testing.T, s store.Store) {
	id, _ := insertEvent(t, s, fullEvent("TK", "e1"))
	for i, want := range []store.TenantEventState{store.TenantEventPending, store.TenantEventPending, store.TenantEventFailed, store.TenantEventFailed} {
		got, err := s.FailTenantEventAttempt(t.Context(), id, fmt.Sprintf("vendor down %d", i+1), 3, at(time.Duration(i+1)*time.Minute))
		noErr(t, "FailTenantEventAttempt", err)
		if got.Attempts != i+1 || got.State != want || got.LastError != fmt.Sprintf("vendor down %d", i+1) || !got.UpdatedAt.Equal(at(time.Duration(i+1)*time.Minute)) {
			t.Errorf("attempt %d: %+v, want attempts %d, state %s", i+1, got, i+1, want)
		}
		if read, err := s.TenantEvent(t.Context(), id); err != nil || read.Attempts != i+1 || read.State != want {
			t.Errorf("attempt %d read back: %+v, %v", i+1, read, err)
		}
	}
	done, _ := insertEvent(t, s, fullEvent("TK", "e2"))
	noErr(t, "SetTenantEventState", s.SetTenantEventState(t.Context(), done, store.TenantEventDelivered, "", at(0)))
	if got, err := s.FailTenantEventAttempt(t.Context(), done, "late", 1, at(0)); err != nil || got.State != store.TenantEventDelivered {
		t.Errorf("a delivered event after a late failure: %+v, %v", got, err)
	}
	_, err := s.FailTenantEventAttempt(t.Context(), done+1000, "x", 3, at(0))
	wantErr(t, "FailTenantEventAttempt of an absent event", err, store.ErrNotFound)
}

// testTenantEventRedeliver: a failed event goes back to pending with its
// attempts and error cleared, in the transaction; a pending or delivered
// one is a conflict and stays as it is; an unknown Seq, or a Seq of
// another tenant, is not found; a rolled-back re-delivery changes nothing.
func testTenantEventRedeliver(t *testing.T, s store.Store) {
	ctx := t.Context()
	failed, _ := insertEvent(t, s, fullEvent("TR", "e1"))
	pending, _ := insertEvent(t, s, fullEvent("TR", "e2"))
	delivered, _ := insertEvent(t, s, fullEvent("TR", "e3"))
	insertEvent(t, s, fullEvent("TS", "other")) // Seq 1 of another tenant
	for range 3 {
		_, err := s.FailTenantEventAttempt(ctx, failed, "vendor down", 3, at(time.Minute))
		noErr(t, "FailTenantEventAttempt", err)
	}
	_, err := s.FailTenantEventAttempt(ctx, pending, "vendor down", 3, at(time.Minute))
	noErr(t, "FailTenantEventAttempt", err)
	noErr(t, "SetTenantEventState", s.SetTenantEventState(ctx, delivered, store.TenantEventDelivered, "", at(time.Minute)))

	// Rolled back: the event stays failed.
	rollback := errors.New("roll back")
	err = s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.RedeliverTenantEvent(ctx, "TR", 1, at(2*time.Minute)); err != nil {
			return err
		}
		return rollback
	})
	wantErr(t, "rolled-back RedeliverTenantEvent", err, rollback)
	if got, err := s.TenantEvent(ctx, failed); err != nil || got.State != store.TenantEventFailed || got.Attempts != 3 {
		t.Fatalf("after a rolled-back re-delivery: %+v, %v; want failed with 3 attempts", got, err)
	}

	var got store.TenantEvent
	inTx(t, s, func(ctx context.Context, tx store.Tx) (err error) {
		got, err = tx.RedeliverTenantEvent(ctx, "TR", 1, at(3*time.Minute))
		return err
	})
	want := fullEvent("TR", "e1")
	want.ID, want.Seq, want.State, want.Attempts, want.LastError, want.UpdatedAt = failed, 1, store.TenantEventPending, 0, "", at(3*time.Minute)
	if d := diff(normEvent(got), normEvent(want)); d != "" {
		t.Errorf("RedeliverTenantEvent returned:%s", d)
	}
	read, err := s.TenantEvent(ctx, failed)
	noErr(t, "TenantEvent", err)
	if d := diff(normEvent(read), normEvent(want)); d != "" {
		t.Errorf("re-delivered event read back:%s", d)
	}
	if next, err := s.NextTenantEvent(ctx, "TR"); err != nil || next.ID != failed {
		t.Errorf("NextTenantEvent after re-delivery: %+v, %v; want the re-delivered event %d", next, err, failed)
	}

	for _, tc := range []struct {
		name   string
		tenant string
		seq    int64
		want   error
		id     int64 // the event that must stay as it was, 0 for none
		state  store.TenantEventState
	}{
		{"again, now pending", "TR", 1, store.ErrConflict, failed, store.TenantEventPending},
		{"pending with an attempt", "TR", 2, store.ErrConflict, pending, store.TenantEventPending},
		{"delivered", "TR", 3, store.ErrConflict, delivered, store.TenantEventDelivered},
		{"unknown seq", "TR", 4, store.ErrNotFound, 0, ""},
		{"seq zero", "TR", 0, store.ErrNotFound, 0, ""},
		{"unknown tenant", "TX", 1, store.ErrNotFound, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before store.TenantEvent
			if tc.id != 0 {
				var err error
				before, err = s.TenantEvent(ctx, tc.id)
				noErr(t, "TenantEvent", err)
			}
			err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.RedeliverTenantEvent(ctx, tc.tenant, tc.seq, at(4*time.Minute))
				return err
			})
			wantErr(t, "RedeliverTenantEvent", err, tc.want)
			if tc.id == 0 {
				return
			}
			after, err := s.TenantEvent(ctx, tc.id)
			noErr(t, "TenantEvent", err)
			if after.State != tc.state {
				t.Errorf("state %s after a refused re-delivery, want %s", after.State, tc.state)
			}
			if d := diff(normEvent(after), normEvent(before)); d != "" {
				t.Errorf("a refused re-delivery changed the event:%s", d)
			}
		})
	}
	other, err := s.NextTenantEvent(ctx, "TS")
	noErr(t, "NextTenantEvent of TS", err)
	if other.State != store.TenantEventPending || other.Attempts != 0 || other.UpdatedAt.Equal(at(4*time.Minute)) {
		t.Errorf("another tenant's event Seq 1 touched: %+v", other)
	}
}

func testTenantEventListLimits(t *testing.T, s store.Store) {
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for i := range 1001 {
			if _, _, _, err := tx.InsertTenantEvent(ctx, store.TenantEvent{TenantID: "TJ", EventID: fmt.Sprintf("e%04d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {5, 5}, {1000, 1000}, {5000, 1000}} {
		got, err := s.TenantEvents(t.Context(), "TJ", tc.limit)
		noErr(t, "TenantEvents", err)
		if len(got) != tc.want {
			t.Errorf("limit %d: got %d events, want %d", tc.limit, len(got), tc.want)
		} else if got[0].Seq != 1001 || got[len(got)-1].Seq != int64(1001-tc.want+1) {
			t.Errorf("limit %d: Seqs %d…%d, want 1001…%d", tc.limit, got[0].Seq, got[len(got)-1].Seq, 1001-tc.want+1)
		}
	}
}

// testTenantLease: the lease is exclusive until it expires, re-entrant for
// its holder, released only by it, and works before and after the
// tenant's first event.
func testTenantLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	lease := func(tenant, worker string, now time.Time, want bool) {
		t.Helper()
		got, err := s.LeaseTenantEvents(ctx, tenant, worker, now, time.Minute)
		noErr(t, "LeaseTenantEvents", err)
		if got != want {
			t.Errorf("LeaseTenantEvents(%s, %s, base+%s) = %v, want %v", tenant, worker, now.Sub(base), got, want)
		}
	}
	// No stream row yet: the lease creates it.
	lease("TK", "w1", at(0), true)
	lease("TK", "w2", at(30*time.Second), false)
	lease("TK", "w1", at(50*time.Second), true) // re-entry extends it to base+110s
	lease("TK", "w2", at(time.Minute+time.Second), false)
	lease("TK", "w2", at(110*time.Second), false) // ends at base+110s: not before now
	lease("TK", "w2", at(110*time.Second+time.Millisecond), true)
	lease("TK", "w1", at(2*time.Minute), false)
	// Another tenant's outbox is another lease.
	lease("TL", "w1", at(2*time.Minute), true)

	// Releasing: a no-op by others, effective by the holder.
	noErr(t, "ReleaseTenantEvents", s.ReleaseTenantEvents(ctx, "TK", "w1"))
	lease("TK", "w3", at(2*time.Minute), false)
	noErr(t, "ReleaseTenantEvents", s.ReleaseTenantEvents(ctx, "TK", "w2"))
	lease("TK", "w3", at(2*time.Minute), true)
	noErr(t, "ReleaseTenantEvents of a tenant never leased", s.ReleaseTenantEvents(ctx, "TZ", "w1"))

	// The stream row of the lease and the Seqs live together.
	if _, seq := insertEvent(t, s, fullEvent("TK", "after-lease")); seq != 1 {
		t.Errorf("first event of a leased tenant got Seq %d, want 1", seq)
	}
	lease("TK", "w4", at(2*time.Minute), false)
	insertEvent(t, s, fullEvent("TM", "before-lease"))
	lease("TM", "w4", at(0), true)
	if _, seq := insertEvent(t, s, fullEvent("TM", "second")); seq != 2 {
		t.Errorf("second event of TM got Seq %d, want 2", seq)
	}
	if _, err := s.LeaseTenantEvents(ctx, "TK", "", at(time.Hour), time.Minute); err == nil {
		t.Error("LeaseTenantEvents for an empty worker succeeded, want an error")
	}
}

// testTenantLeaseConcurrent: 20 workers ask at once; one gets the lease.
func testTenantLeaseConcurrent(t *testing.T, s store.Store) {
	const n = 20
	var (
		got  = make([]bool, n)
		errs = make([]error, n)
	)
	Race(n, func(i int) {
		got[i], errs[i] = s.LeaseTenantEvents(context.Background(), "TN", fmt.Sprintf("w%02d", i), at(0), time.Minute)
	})
	holders := 0
	for i := range n {
		noErr(t, fmt.Sprintf("worker %d", i), errs[i])
		if got[i] {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("%d workers hold the lease, want 1", holders)
	}
}
