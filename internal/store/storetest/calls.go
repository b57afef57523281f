package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var callTests = []test{
	{"RoundTrip", testCallRoundTrip},
	{"InsertCalls", testInsertCalls},
	{"Filters", testCallFilters},
	{"Paging", testCallPaging},
	{"Limits", testCallLimits},
	{"LatencyPrecision", testCallLatencyPrecision},
	{"RetentionBatches", testDeleteCallsBatches},
	{"RetentionKindOnly", testDeleteCallsKindOnly},
	{"RetentionBadArgs", testDeleteCallsRefusesBadArgs},
}

func fullCall() store.Call {
	return store.Call{
		RequestID:   "req-1",
		Interface:   "v2",
		Activity:    "newInstance",
		IdemKey:     "newInstance:CS001:CS001-000001",
		InstanceID:  "inst-1",
		OrderID:     "CS001",
		OrderLineID: "CS001-000001",
		TenantID:    "tenant-1",
		Test:        true,
		Remote:      "192.0.2.10:40000",
		Request:     `{"activity":"newInstance","mobilePhone":"138****0000"}`,
		Response:    `{"resultCode":"000000","resultMsg":"\u6210\u529f"}`,
		ResultCode:  "000000",
		ResultMsg:   "success",
		HTTPStatus:  200,
		Latency:     1234567 * time.Microsecond,
		Repeat:      true,
		CreatedAt:   at(5 * time.Millisecond),
	}
}

func normCall(c store.Call) store.Call {
	c.CreatedAt = normTime(c.CreatedAt)
	return c
}

func testCallRoundTrip(t *testing.T, s store.Store) {
	want := fullCall()
	id, err := s.InsertCall(t.Context(), want)
	noErr(t, "InsertCall", err)
	if id <= 0 {
		t.Errorf("InsertCall returned ID %d, want > 0", id)
	}
	want.ID = id
	got, err := s.Calls(t.Context(), store.CallFilter{})
	noErr(t, "Calls", err)
	if len(got) != 1 {
		t.Fatalf("Calls returned %d calls, want 1", len(got))
	}
	if d := diff(normCall(got[0]), normCall(want)); d != "" {
		t.Errorf("call differs:%s", d)
	}

	// The zero call is a valid ledger row (every field optional).
	id2, err := s.InsertCall(t.Context(), store.Call{CreatedAt: at(time.Second)})
	noErr(t, "InsertCall of a bare call", err)
	if id2 <= id {
		t.Errorf("second call ID %d not after first %d", id2, id)
	}
}

// testInsertCalls: a batch of calls is stored in order, each as InsertCall
// stores it; 75 calls take several statements of different sizes.
func testInsertCalls(t *testing.T, s store.Store) {
	noErr(t, "InsertCalls of none", s.InsertCalls(t.Context(), nil))
	var want []store.Call
	for i := range 75 {
		c := fullCall()
		c.RequestID = fmt.Sprintf("req-%02d", i)
		c.Latency = time.Duration(i)*time.Millisecond + 7*time.Microsecond
		c.Test, c.Repeat = i%2 == 0, i%3 == 0
		c.CreatedAt = at(time.Duration(i) * time.Second)
		want = append(want, c)
	}
	before := time.Now().Add(-time.Second)
	want[74].CreatedAt = time.Time{} // set to now
	noErr(t, "InsertCalls", s.InsertCalls(t.Context(), want))
	got, err := s.Calls(t.Context(), store.CallFilter{Limit: 1000})
	noErr(t, "Calls", err)
	if len(got) != len(want) {
		t.Fatalf("Calls returned %d calls, want %d", len(got), len(want))
	}
	slices.Reverse(got) // newest first
	for i, g := range got {
		if i > 0 && g.ID <= got[i-1].ID {
			t.Errorf("call %d has ID %d, not after %d", i, g.ID, got[i-1].ID)
		}
		w := want[i]
		w.ID = g.ID
		if i == 74 {
			if g.CreatedAt.Before(before) || g.CreatedAt.After(time.Now().Add(time.Second)) {
				t.Errorf("zero CreatedAt stored as %v, want now", g.CreatedAt)
			}
			w.CreatedAt = g.CreatedAt
		}
		if d := diff(normCall(g), normCall(w)); d != "" {
			t.Errorf("call %d differs:%s", i, d)
		}
	}
}

// testCallLatencyPrecision: a latency is kept to the microsecond; most
// calls are answered in less than a millisecond.
func testCallLatencyPrecision(t *testing.T, s store.Store) {
	for _, lat := range []time.Duration{
		0,
		420 * time.Microsecond,
		999 * time.Microsecond,
		1500 * time.Microsecond,
		time.Minute + 7*time.Microsecond,
		1234 * time.Nanosecond, // below a microsecond: truncated
	} {
		t.Run(lat.String(), func(t *testing.T) {
			id, err := s.InsertCall(t.Context(), store.Call{Activity: "queryInstance", Latency: lat, CreatedAt: at(0)})
			noErr(t, "InsertCall", err)
			got, err := s.Calls(t.Context(), store.CallFilter{BeforeID: id + 1, Limit: 1})
			noErr(t, "Calls", err)
			if want := lat.Truncate(time.Microsecond); len(got) != 1 || got[0].ID != id || got[0].Latency != want {
				t.Errorf("calls = %+v, want call %d with latency %v", got, id, want)
			}
		})
	}
}

func testCallFilters(t *testing.T, s store.Store) {
	type row struct {
		activity, instance, order, tenant, code string
		at                                      time.Duration
	}
	rows := []row{
		{"newInstance", "i1", "O1", "", "000000", 0},
		{"queryInstance", "i1", "", "", "000000", time.Second},
		{"newInstance", "i2", "O2", "", "000004", 2 * time.Second},
		{"refreshInstance", "i1", "O3", "", "000003", 3 * time.Second},
		{"queryInstance", "i2", "", "", "000001", 4 * time.Second},
		{"tenantSync", "i1", "", "T1", "000000", 5 * time.Second},
		{"authSync", "", "", "T2", "000000", 6 * time.Second},
		{"authSync", "", "", "T1", "000004", 7 * time.Second},
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		c := fullCall()
		c.Activity, c.InstanceID, c.OrderID, c.TenantID, c.ResultCode, c.CreatedAt = r.activity, r.instance, r.order, r.tenant, r.code, at(r.at)
		id, err := s.InsertCall(t.Context(), c)
		noErr(t, "InsertCall", err)
		ids[i] = id
	}
	// pick lists ids of rows, newest first, as Calls returns them.
	pick := func(idx ...int) []int64 {
		var out []int64
		for i := len(idx) - 1; i >= 0; i-- {
			out = append(out, ids[idx[i]])
		}
		return out
	}
	tests := []struct {
		name string
		f    store.CallFilter
		want []int64
	}{
		{"all", store.CallFilter{}, pick(0, 1, 2, 3, 4, 5, 6, 7)},
		{"activity", store.CallFilter{Activity: "queryInstance"}, pick(1, 4)},
		{"instance", store.CallFilter{InstanceID: "i1"}, pick(0, 1, 3, 5)},
		{"order", store.CallFilter{OrderID: "O2"}, pick(2)},
		{"tenant", store.CallFilter{TenantID: "T1"}, pick(5, 7)},
		{"tenant and activity", store.CallFilter{TenantID: "T1", Activity: "authSync"}, pick(7)},
		{"tenant before", store.CallFilter{TenantID: "T1", BeforeID: ids[7]}, pick(5)},
		{"result code", store.CallFilter{ResultCode: "000000"}, pick(0, 1, 5, 6)},
		{"result code other than success", store.CallFilter{ResultCode: "000004"}, pick(2, 7)},
		{"result code before", store.CallFilter{ResultCode: "000004", BeforeID: ids[7]}, pick(2)},
		{"instance and result code", store.CallFilter{InstanceID: "i1", ResultCode: "000003"}, pick(3)},
		{"tenant and result code", store.CallFilter{TenantID: "T1", ResultCode: "000004"}, pick(7)},
		{"order and result code", store.CallFilter{OrderID: "O2", ResultCode: "000004"}, pick(2)},
		{"since (inclusive)", store.CallFilter{Since: at(5 * time.Second)}, pick(5, 6, 7)},
		{"until (exclusive)", store.CallFilter{Until: at(2 * time.Second)}, pick(0, 1)},
		{"since and until", store.CallFilter{Since: at(time.Second), Until: at(3 * time.Second)}, pick(1, 2)},
		{"since and until, limit", store.CallFilter{Since: at(0), Until: at(5 * time.Second), Limit: 2}, pick(3, 4)},
		{"since and until, before", store.CallFilter{Since: at(0), Until: at(5 * time.Second), BeforeID: ids[3]}, pick(0, 1, 2)},
		{"since, until and result code", store.CallFilter{Since: at(time.Second), Until: at(5 * time.Second), ResultCode: "000001"}, pick(4)},
		{"combined", store.CallFilter{InstanceID: "i2", Activity: "newInstance"}, pick(2)},
		{"none", store.CallFilter{Activity: "upgradeInstance"}, nil},
	}
	for _, tc := range tests {
		got, err := s.Calls(t.Context(), tc.f)
		noErr(t, tc.name, err)
		var gotIDs []int64
		for _, c := range got {
			gotIDs = append(gotIDs, c.ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got IDs %v, want %v", tc.name, gotIDs, tc.want)
		}
	}

	// A time window reads its page's rows by id, after choosing the ids:
	// they are whole, as the unfiltered list has them.
	all, err := s.Calls(t.Context(), store.CallFilter{})
	noErr(t, "Calls", err)
	window, err := s.Calls(t.Context(), store.CallFilter{Since: at(0), Until: at(time.Hour)})
	noErr(t, "Calls in a window", err)
	if len(window) != len(all) {
		t.Fatalf("a window enclosing all calls lists %d, want %d", len(window), len(all))
	}
	for i := range all {
		if d := diff(normCall(window[i]), normCall(all[i])); d != "" {
			t.Errorf("call %d in a window differs:%s", i, d)
		}
	}
}

func testCallPaging(t *testing.T, s store.Store) {
	var ids []int64
	for i := range 7 {
		c := fullCall()
		c.RequestID = fmt.Sprint(i)
		id, err := s.InsertCall(t.Context(), c)
		noErr(t, "InsertCall", err)
		ids = append(ids, id)
	}
	var seen []int64
	f := store.CallFilter{Limit: 3}
	for page := 0; ; page++ {
		got, err := s.Calls(t.Context(), f)
		noErr(t, "Calls", err)
		if len(got) == 0 {
			break
		}
		if len(got) > 3 {
			t.Fatalf("page %d has %d calls, limit 3", page, len(got))
		}
		for _, c := range got {
			seen = append(seen, c.ID)
		}
		f.BeforeID = got[len(got)-1].ID
		if page > 10 {
			t.Fatal("paging does not end")
		}
	}
	var want []int64
	for i := len(ids) - 1; i >= 0; i-- {
		want = append(want, ids[i])
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("paged through %v, want %v (newest first)", seen, want)
	}
}

func testCallLimits(t *testing.T, s store.Store) {
	if testing.Short() {
		t.Skip("inserts 1001 calls")
	}
	for i := range 1001 {
		if _, err := s.InsertCall(t.Context(), store.Call{Activity: "queryInstance", RequestID: fmt.Sprint(i)}); err != nil {
			t.Fatalf("InsertCall %d: %v", i, err)
		}
	}
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {5, 5}, {1000, 1000}, {5000, 1000}} {
		got, err := s.Calls(t.Context(), store.CallFilter{Limit: tc.limit})
		noErr(t, "Calls", err)
		if len(got) != tc.want {
			t.Errorf("Limit %d: got %d calls, want %d", tc.limit, len(got), tc.want)
		}
	}
}
