package storetest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var ssoTests = []test{
	{"Keys", testSSOKeys},
	{"KeysConcurrent", testSSOKeysConcurrent},
	{"RecordInsertAndRead", testSSORecordInsertAndRead},
	{"RecordUpdate", testSSORecordUpdate},
	{"RecordDeleteOnce", testSSORecordDeleteOnce},
	{"RecordExpired", testSSORecordExpired},
}

func testSSOKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys, err := s.SSOKeys(ctx)
	noErr(t, "SSOKeys of an empty store", err)
	if len(keys) != 0 {
		t.Fatalf("SSOKeys of an empty store: %d keys, want 0", len(keys))
	}
	k1 := store.SSOKey{Generation: 1, ID: "kid-1", Algorithm: "RS256", PrivateSealed: "v1:one", CreatedAt: at(time.Second)}
	k2 := store.SSOKey{Generation: 2, ID: "kid-2", Algorithm: "RS256", PrivateSealed: "v1:two", CreatedAt: at(2 * time.Second)}
	for _, tc := range []struct {
		name string
		key  store.SSOKey
		want bool
	}{
		{"first", k1, true},
		{"second", k2, true},
		{"same generation", store.SSOKey{Generation: 2, ID: "kid-other", Algorithm: "RS256", PrivateSealed: "v1:x"}, false},
		{"same kid", store.SSOKey{Generation: 3, ID: "kid-1", Algorithm: "RS256", PrivateSealed: "v1:x"}, false},
	} {
		ok, err := s.InsertSSOKey(ctx, tc.key)
		noErr(t, "InsertSSOKey "+tc.name, err)
		if ok != tc.want {
			t.Fatalf("InsertSSOKey %s: inserted %v, want %v", tc.name, ok, tc.want)
		}
	}
	keys, err = s.SSOKeys(ctx)
	noErr(t, "SSOKeys", err)
	want := []store.SSOKey{k2, k1}
	if len(keys) != len(want) {
		t.Fatalf("SSOKeys: %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		keys[i].CreatedAt = normTime(keys[i].CreatedAt)
		if d := diff(keys[i], want[i]); d != "" {
			t.Errorf("SSOKeys[%d]:%s", i, d)
		}
	}
}

// testSSOKeysConcurrent: replicas that start together and each create
// generation 1 make exactly one key.
func testSSOKeysConcurrent(t *testing.T, s store.Store) {
	var wins atomic.Int64
	Race(20, func(i int) {
		ok, err := s.InsertSSOKey(context.Background(), store.SSOKey{
			Generation: 1, ID: "kid-" + strconv.Itoa(i), Algorithm: "RS256", PrivateSealed: "v1:" + strconv.Itoa(i),
		})
		if err != nil {
			t.Errorf("InsertSSOKey %d: %v", i, err)
		}
		if ok {
			wins.Add(1)
		}
	})
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d inserts won, want 1", n)
	}
	keys, err := s.SSOKeys(t.Context())
	noErr(t, "SSOKeys", err)
	if len(keys) != 1 {
		t.Fatalf("SSOKeys: %d keys, want 1", len(keys))
	}
}

func fullRecord(kind, id, lookup string) store.SSORecord {
	return store.SSORecord{
		Kind:      kind,
		ID:        id,
		Lookup:    lookup,
		Data:      `{"tenant":"\u534e\u4e3a","id":"` + id + `"}`,
		ExpiresAt: at(time.Hour),
		CreatedAt: at(41 * time.Millisecond),
		UpdatedAt: at(42 * time.Millisecond),
	}
}

func normRecord(r store.SSORecord) store.SSORecord {
	r.ExpiresAt = normTime(r.ExpiresAt)
	r.CreatedAt = normTime(r.CreatedAt)
	r.UpdatedAt = normTime(r.UpdatedAt)
	return r
}

func testSSORecordInsertAndRead(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := fullRecord("authreq", "a1", "code-1")
	b := fullRecord("authreq", "b1", "")
	other := fullRecord("refresh", "a1", "code-1") // same id and lookup, another kind
	for _, tc := range []struct {
		name string
		rec  store.SSORecord
		want bool
	}{
		{"first", a, true},
		{"no lookup", b, true},
		{"another kind", other, true},
		{"same id", fullRecord("authreq", "a1", "code-2"), false},
		{"same lookup", fullRecord("authreq", "c1", "code-1"), false},
	} {
		ok, err := s.InsertSSORecord(ctx, tc.rec)
		noErr(t, "InsertSSORecord "+tc.name, err)
		if ok != tc.want {
			t.Fatalf("InsertSSORecord %s: inserted %v, want %v", tc.name, ok, tc.want)
		}
	}
	got, err := s.SSORecord(ctx, "authreq", "a1")
	noErr(t, "SSORecord", err)
	if d := diff(normRecord(got), a); d != "" {
		t.Errorf("SSORecord:%s", d)
	}
	got, err = s.SSORecordByLookup(ctx, "authreq", "code-1")
	noErr(t, "SSORecordByLookup", err)
	if d := diff(normRecord(got), a); d != "" {
		t.Errorf("SSORecordByLookup:%s", d)
	}
	got, err = s.SSORecordByLookup(ctx, "refresh", "code-1")
	noErr(t, "SSORecordByLookup of another kind", err)
	if d := diff(normRecord(got), other); d != "" {
		t.Errorf("SSORecordByLookup of another kind:%s", d)
	}
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"unknown id", func() error { _, err := s.SSORecord(ctx, "authreq", "zz"); return err }},
		{"unknown kind", func() error { _, err := s.SSORecord(ctx, "session", "a1"); return err }},
		{"unknown lookup", func() error { _, err := s.SSORecordByLookup(ctx, "authreq", "code-9"); return err }},
		{"empty lookup", func() error { _, err := s.SSORecordByLookup(ctx, "authreq", ""); return err }},
	} {
		wantErr(t, tc.name, tc.read(), store.ErrNotFound)
	}
}

func testSSORecordUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, r := range []store.SSORecord{fullRecord("authreq", "a1", ""), fullRecord("authreq", "b1", "code-b")} {
		if _, err := s.InsertSSORecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	upd := fullRecord("authreq", "a1", "code-a")
	upd.Data = `{"done":true}`
	upd.ExpiresAt = at(2 * time.Hour)
	upd.UpdatedAt = at(43 * time.Millisecond)
	noErr(t, "UpdateSSORecord", s.UpdateSSORecord(ctx, upd))
	got, err := s.SSORecordByLookup(ctx, "authreq", "code-a")
	noErr(t, "SSORecordByLookup after the update", err)
	want := upd
	want.Version = 1
	if d := diff(normRecord(got), want); d != "" {
		t.Errorf("after the update:%s", d)
	}
	for _, tc := range []struct {
		name string
		rec  store.SSORecord
		want error
	}{
		{"stale version", upd, store.ErrConflict},
		{"lookup of another record", func() store.SSORecord { r := want; r.Lookup = "code-b"; return r }(), store.ErrConflict},
		{"absent", fullRecord("authreq", "zz", ""), store.ErrNotFound},
	} {
		wantErr(t, "UpdateSSORecord "+tc.name, s.UpdateSSORecord(ctx, tc.rec), tc.want)
	}
	got, err = s.SSORecord(ctx, "authreq", "a1")
	noErr(t, "SSORecord after refused updates", err)
	if d := diff(normRecord(got), want); d != "" {
		t.Errorf("after refused updates:%s", d)
	}
}

// testSSORecordDeleteOnce: of concurrent deletes of one record (two token
// requests with one authorization code), exactly one sees it existed.
func testSSORecordDeleteOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, err := s.InsertSSORecord(ctx, fullRecord("authreq", "a1", "code-1")); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int64
	Race(20, func(i int) {
		ok, err := s.DeleteSSORecord(context.Background(), "authreq", "a1")
		if err != nil {
			t.Errorf("DeleteSSORecord %d: %v", i, err)
		}
		if ok {
			wins.Add(1)
		}
	})
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d deletes saw the record, want 1", n)
	}
	_, err := s.SSORecord(ctx, "authreq", "a1")
	wantErr(t, "SSORecord after the delete", err, store.ErrNotFound)
	ok, err := s.DeleteSSORecord(ctx, "authreq", "a1")
	noErr(t, "DeleteSSORecord again", err)
	if ok {
		t.Fatal("DeleteSSORecord again: existed true, want false")
	}
	// The lookup is free again.
	ok, err = s.InsertSSORecord(ctx, fullRecord("authreq", "a2", "code-1"))
	noErr(t, "InsertSSORecord with the freed lookup", err)
	if !ok {
		t.Fatal("InsertSSORecord with the freed lookup: not inserted")
	}
}

func testSSORecordExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, exp := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute} {
		r := fullRecord("session", "s"+strconv.Itoa(i), "")
		r.ExpiresAt = at(exp)
		if _, err := s.InsertSSORecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteExpiredSSORecords(ctx, at(2*time.Minute))
	noErr(t, "DeleteExpiredSSORecords", err)
	if n != 2 {
		t.Fatalf("DeleteExpiredSSORecords: %d deleted, want 2 (expiry at or before now)", n)
	}
	for _, tc := range []struct {
		id   string
		want error
	}{{"s0", store.ErrNotFound}, {"s1", store.ErrNotFound}, {"s2", nil}} {
		_, err := s.SSORecord(ctx, "session", tc.id)
		wantErr(t, "SSORecord "+tc.id, err, tc.want)
	}
}
