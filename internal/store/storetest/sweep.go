package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// ledgerCall is one call of the retention tests: its code, idempotency key
// and age, and whether the cases below expect it to be rejected.
type ledgerCall struct {
	name     string
	code     string
	idemKey  string
	created  time.Duration
	rejected bool
}

// ledgerCalls are answered and rejected calls on both sides of the cut-off
// at(time.Hour), inserted out of time order so that the oldest-first order
// cannot come from the IDs alone.
var ledgerCalls = []ledgerCall{
	{"read-old", "000003", "", 40 * time.Minute, false},
	{"auth-old-3", "000001", "", 30 * time.Minute, true},
	{"answered-new", "000000", "newInstance:O1:L1", 2 * time.Hour, false},
	{"auth-old-2", "000001", "", 20 * time.Minute, true},
	{"answered-old", "000000", "newInstance:O2:L2", 10 * time.Minute, false},
	// Refused by the service after its operation was stored: the stored
	// outcome answers its retries, so it is answered, not rejected.
	{"invalid-stored-old", "000002", "modifyInstance:O3:L3", 5 * time.Minute, false},
	// An internal error before the service saw it (the nonce store was
	// down): KooGallery retries it, and it is kept as answered.
	{"internal-old", "000005", "", 15 * time.Minute, false},
	{"invalid-old-1", "000002", "", 1 * time.Minute, true},
	{"auth-new", "000001", "", 90 * time.Minute, true},
	// Exactly at the cut-off: not older than it, so kept.
	{"invalid-at-cutoff", "000002", "", time.Hour, true},
}

// insertLedger inserts ledgerCalls and returns their IDs by name.
func insertLedger(t *testing.T, s store.Store) map[string]int64 {
	t.Helper()
	ids := map[string]int64{}
	for _, c := range ledgerCalls {
		id, err := s.InsertCall(t.Context(), store.Call{
			RequestID: c.name, Activity: "newInstance", IdemKey: c.idemKey, ResultCode: c.code,
			HTTPStatus: 200, CreatedAt: at(c.created),
		})
		noErr(t, "InsertCall "+c.name, err)
		ids[c.name] = id
		if got := (store.Call{ResultCode: c.code, IdemKey: c.idemKey}).Rejected(); got != c.rejected {
			t.Fatalf("Call{%s}.Rejected() = %v, want %v", c.name, got, c.rejected)
		}
	}
	return ids
}

// ledgerNames lists the request IDs of the calls left, sorted.
func ledgerNames(t *testing.T, s store.Store) []string {
	t.Helper()
	calls, err := s.Calls(t.Context(), store.CallFilter{Limit: 1000})
	noErr(t, "Calls", err)
	var names []string
	for _, c := range calls {
		names = append(names, c.RequestID)
	}
	slices.Sort(names)
	return names
}

// without returns the names of ledgerCalls but those in gone, sorted.
func without(gone ...string) []string {
	var names []string
	for _, c := range ledgerCalls {
		if !slices.Contains(gone, c.name) {
			names = append(names, c.name)
		}
	}
	slices.Sort(names)
	return names
}

// testDeleteCallsBatches deletes the rejected calls older than the
// cut-off in batches of two, oldest first, leaving the answered ones and
// the newer ones; then the answered ones, leaving the rejected ones.
func testDeleteCallsBatches(t *testing.T, s store.Store) {
	insertLedger(t, s)
	cutoff := at(time.Hour)
	steps := []struct {
		kind  store.CallKind
		limit int
		want  int64
		gone  []string
	}{
		// The two oldest rejected calls, not auth-old-3.
		{store.CallsRejected, 2, 2, []string{"invalid-old-1", "auth-old-2"}},
		{store.CallsRejected, 2, 1, []string{"invalid-old-1", "auth-old-2", "auth-old-3"}},
		{store.CallsRejected, 2, 0, []string{"invalid-old-1", "auth-old-2", "auth-old-3"}},
		// The three oldest answered ones: invalid-stored-old (5 min),
		// answered-old (10), internal-old (15); read-old (40) waits.
		{store.CallsAnswered, 3, 3, []string{"invalid-old-1", "auth-old-2", "auth-old-3",
			"invalid-stored-old", "answered-old", "internal-old"}},
		{store.CallsAnswered, 3, 1, []string{"invalid-old-1", "auth-old-2", "auth-old-3",
			"invalid-stored-old", "answered-old", "internal-old", "read-old"}},
		{store.CallsAnswered, 3, 0, []string{"invalid-old-1", "auth-old-2", "auth-old-3",
			"invalid-stored-old", "answered-old", "internal-old", "read-old"}},
	}
	for i, st := range steps {
		n, err := s.DeleteCalls(t.Context(), st.kind, cutoff, st.limit)
		noErr(t, "DeleteCalls", err)
		if n != st.want {
			t.Errorf("step %d: DeleteCalls(%s, limit %d) deleted %d, want %d", i, st.kind, st.limit, n, st.want)
		}
		if got, want := ledgerNames(t, s), without(st.gone...); !slices.Equal(got, want) {
			t.Fatalf("step %d: after DeleteCalls(%s) the ledger holds %v, want %v", i, st.kind, got, want)
		}
	}
}

// testDeleteCallsKindOnly deletes every answered call older than the
// cut-off at once and checks that no rejected call went with them.
func testDeleteCallsKindOnly(t *testing.T, s store.Store) {
	insertLedger(t, s)
	n, err := s.DeleteCalls(t.Context(), store.CallsAnswered, at(time.Hour), 1000)
	noErr(t, "DeleteCalls", err)
	if n != 4 {
		t.Errorf("DeleteCalls(answered) deleted %d, want 4", n)
	}
	want := without("invalid-stored-old", "answered-old", "internal-old", "read-old")
	if got := ledgerNames(t, s); !slices.Equal(got, want) {
		t.Errorf("after DeleteCalls(answered) the ledger holds %v, want %v", got, want)
	}
}

// testDeleteCallsRefusesBadArgs checks that an unknown kind or a
// non-positive limit deletes nothing and fails.
func testDeleteCallsRefusesBadArgs(t *testing.T, s store.Store) {
	insertLedger(t, s)
	for _, tc := range []struct {
		kind  store.CallKind
		limit int
	}{{"all", 10}, {"", 10}, {store.CallsRejected, 0}, {store.CallsAnswered, -1}} {
		if n, err := s.DeleteCalls(t.Context(), tc.kind, at(24*time.Hour), tc.limit); err == nil {
			t.Errorf("DeleteCalls(%q, limit %d) = %d, nil; want an error", tc.kind, tc.limit, n)
		}
	}
	if got := ledgerNames(t, s); len(got) != len(ledgerCalls) {
		t.Errorf("after refused deletes the ledger holds %d calls, want %d", len(got), len(ledgerCalls))
	}
}
