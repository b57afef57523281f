package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/koobridge/koobridge/bench/internal/fixture"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

// TestPreload loads a small database and reads it back through the store,
// as serve would: the instances bench/loadgen asks for must exist under
// the fixture's ids, with app info whose password opens with the data
// key, or every preloaded queryInstance would measure an error.
func TestPreload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	const seed, instances, calls = 9, 2000, 3000
	dsn := "sqlite:" + filepath.Join(dir, "p.db")
	if err := run(ctx, options{db: dsn, instances: instances, calls: calls, dataKey: key, seed: seed, migrate: true}); err != nil {
		t.Fatal(err)
	}
	raw, err := seal.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	for _, n := range []int{0, 1, 97, 98, 999, 1000, instances - 1} {
		id := fixture.InstanceID(seed, n)
		in, err := st.Instance(ctx, id)
		if err != nil {
			t.Fatalf("instance %d (%s): %v", n, id, err)
		}
		if string(in.Status) != fixture.Status(n) || in.OrderID != fixture.OrderID(seed, n) || in.OrderLineID != in.OrderID+"-000001" {
			t.Errorf("instance %d: status %q, order %q line %q; want %q, %q", n, in.Status, in.OrderID, in.OrderLineID, fixture.Status(n), fixture.OrderID(seed, n))
		}
		if !json.Valid([]byte(in.OrderJSON)) {
			t.Errorf("instance %d: order JSON %q", n, in.OrderJSON)
		}
		if in.Status == store.StatusFailed {
			if in.AppInfo.FrontEndURL != "" || in.AppInfo.PasswordSealed != "" {
				t.Errorf("failed instance %d has app info %+v", n, in.AppInfo)
			}
			continue
		}
		if in.AppInfo.FrontEndURL == "" || in.AppInfo.UserName == "" {
			t.Errorf("instance %d: app info %+v", n, in.AppInfo)
		}
		if p, err := sealer.Open(in.AppInfo.PasswordSealed); err != nil || p != password {
			t.Errorf("instance %d: password %q, %v; want %q", n, p, err, password)
		}
		op, err := st.Operation(ctx, instance.Key("newInstance", in.OrderID, in.OrderLineID))
		if err != nil || op.InstanceID != id || op.State != store.OperationDone {
			t.Errorf("instance %d: operation %+v, %v", n, op, err)
		}
	}
	if _, err := st.Instance(ctx, fixture.InstanceID(seed, instances)); err == nil {
		t.Errorf("instance %d exists; want %d instances", instances, instances)
	}

	all, err := st.Calls(ctx, store.CallFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1000 {
		t.Fatalf("%d calls listed, want 1000", len(all))
	}
	codes := map[string]int{}
	for _, c := range all {
		codes[c.ResultCode]++
		if !json.Valid([]byte(c.Request)) || !json.Valid([]byte(c.Response)) {
			t.Fatalf("call %d: request %q, response %q: not JSON", c.ID, c.Request, c.Response)
		}
	}
	if codes["000000"] != 950 || codes["000001"] != 30 || codes["000003"] != 20 {
		t.Errorf("result codes of 1000 calls: %v", codes)
	}
	byInstance, err := st.Calls(ctx, store.CallFilter{InstanceID: all[0].InstanceID})
	if err != nil || len(byInstance) == 0 {
		t.Errorf("calls of instance %q: %d, %v", all[0].InstanceID, len(byInstance), err)
	}
	jobs, err := st.Jobs(ctx, store.JobFilter{Kind: "provision", State: store.JobDead, Limit: 1000})
	if err != nil || len(jobs) != instances/1000 {
		t.Errorf("dead provision jobs: %d, %v; want %d", len(jobs), err, instances/1000)
	}

	// The schema is the store's: the indexes the load dropped are back.
	fresh := filepath.Join(dir, "fresh.db")
	fst, err := sqlite.Open(ctx, "sqlite:"+fresh)
	if err != nil {
		t.Fatal(err)
	}
	fst.Close()
	if got, want := schema(t, filepath.Join(dir, "p.db")), schema(t, fresh); !slices.Equal(got, want) {
		t.Errorf("schema after the load:\n%q\nwant the store's:\n%q", got, want)
	}
}

// TestPreloadRefusesFilled checks that a second load into the same file
// fails instead of mixing two fixtures.
func TestPreloadRefusesFilled(t *testing.T) {
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	o := options{db: "sqlite:" + filepath.Join(t.TempDir(), "p.db"), instances: 10, calls: 10, dataKey: key, seed: 1, migrate: true}
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), o); err == nil {
		t.Error("a second load into the same database succeeded")
	}
}

// schema is the definitions in path's sqlite_master, sorted.
func schema(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
