package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/usage"
)

// hour is the start of the UTC hour n hours after t0 (12:00).
func hour(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }

// usageSeed is what seedUsage stored: period and push IDs by name.
type usageSeed struct {
	periods map[string]int64 // "U1@-2" …: instance U<n>, period start hour
	pushes  map[string]int64 // A, B, C1, C2, D
}

// usageBodies are the push bodies seedUsage stores, by push name: what
// the usage service would have built (their shape is its business; the
// console shows them as they are).
var usageBodies = map[string]string{
	"A":  `{"usage_records":[{"instance_id":"inst-U1","metering_sn":"` + usage.MeteringSN("inst-U1", hour(-2)) + `","usage_value":"1.5"},{"instance_id":"inst-U2","metering_sn":"` + usage.MeteringSN("inst-U2", hour(-2)) + `","usage_value":"12345.6789"}]}`,
	"B":  `{"usage_records":[{"instance_id":"inst-U1","usage_value":"0.0001"},{"instance_id":"inst-U2","usage_value":"0.0007"}]}`,
	"C1": `{"usage_records":[{"instance_id":"inst-U1","usage_value":"0.0001"}]}`,
	"C2": `{"usage_records":[{"instance_id":"inst-U2","usage_value":"0.0007"}]}`,
	"D":  `{"usage_records":[{"instance_id":"inst-U3","product_id":"P-V1","usage_value":"5"}]}`,
}

// seedUsage stores, through the store's methods, instances inst-U1 …
// inst-U5 (U3 a V1 product's, U4 a test instance, U5 without usage) and:
//   - records k1 … k10 (k4 carried from U1's period -1 into its period 0);
//   - periods, in this order: U3@-528 (dead, never pushed), U3@-3 (dead:
//     push D refused it MKT.9004), U1@-2 and U2@-2 (accepted by push A
//     after a timeout), U1@-1 (rejected MKT.0101 by C1, split from B with
//     C2), U2@-1 (pushing in C2, answered MKT.0999 once), U1@0 (open),
//     U4@0 (test);
//   - pushes D, A, B, C1, C2 with their attempts.
func seedUsage(t *testing.T, st store.Store) usageSeed {
	t.Helper()
	ctx := context.Background()
	s := usageSeed{periods: map[string]int64{}, pushes: map[string]int64{}}
	at := func(h, m int) time.Time { return hour(h).Add(time.Duration(m) * time.Minute) }
	type rec struct {
		key       string
		inst      int
		value     int64
		h, m      int
		carriedTo *int // the period it is billed in, when carried
	}
	zero := 0
	recs := []rec{
		{"k1", 1, 10000, -2, 10, nil}, {"k2", 1, 5000, -2, 20, nil}, {"k3", 1, 10000, 0, 5, nil},
		{"k4", 1, 20000, -1, 50, &zero}, {"k5", 1, 1, -1, 1, nil},
		{"k6", 2, 123456789, -2, 1, nil}, {"k7", 2, 7, -1, 2, nil},
		{"k8", 3, 20000, -528, 3, nil}, {"k9", 3, 50000, -3, 4, nil},
		{"k10", 4, 2500, 0, 1, nil},
	}
	type period struct {
		name  string
		state store.UsagePeriodState
		push  string
		code  string
		msg   string
	}
	periods := []period{
		{"U3@-528", store.UsageDead, "", "", "older than 21 days: never pushed"},
		{"U3@-3", store.UsageDead, "D", "MKT.9004", "usage older than 21 days"},
		{"U1@-2", store.UsageAccepted, "A", "MKT.0000", ""},
		{"U2@-2", store.UsageAccepted, "A", "MKT.0000", ""},
		{"U1@-1", store.UsageRejected, "C1", "MKT.0101", "usage_value is invalid"},
		{"U2@-1", store.UsagePushing, "C2", "", ""},
		{"U1@0", store.UsageOpen, "", "", ""},
		{"U4@0", store.UsageTest, "", "", ""},
	}
	key := func(name string) store.UsagePeriodKey {
		var inst, h int
		if _, err := fmt.Sscanf(name, "U%d@%d", &inst, &h); err != nil {
			t.Fatalf("period name %q: %v", name, err)
		}
		return store.UsagePeriodKey{InstanceID: fmt.Sprintf("inst-U%d", inst), Start: hour(h)}
	}
	err := st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		for i := 1; i <= 5; i++ {
			inst := store.Instance{
				ID: fmt.Sprintf("inst-U%d", i), OrderID: fmt.Sprintf("ORDER-U%d", i), OrderLineID: fmt.Sprintf("ORDER-U%d-000001", i),
				Test: i == 4, OrderState: store.OrderFetched, Status: store.StatusActive, ChargingMode: "ON_DEMAND",
				CreatedAt: hour(-600), UpdatedAt: hour(-600),
			}
			if _, err := tx.InsertInstance(ctx, inst); err != nil {
				return fmt.Errorf("insert instance %s: %w", inst.ID, err)
			}
		}
		// Periods first, in the order their IDs must come, then records.
		sums := map[string][2]int64{}
		for _, r := range recs {
			h := r.h
			if r.carriedTo != nil {
				h = *r.carriedTo
			}
			name := fmt.Sprintf("U%d@%d", r.inst, h)
			v := sums[name]
			sums[name] = [2]int64{v[0] + r.value, v[1] + 1}
		}
		for _, p := range periods {
			k := key(p.name)
			state := store.UsageOpen
			if p.state == store.UsageTest {
				state = store.UsageTest
			}
			ok, err := tx.AddUsage(ctx, store.UsagePeriod{
				InstanceID: k.InstanceID, Start: k.Start, End: k.Start.Add(time.Hour), Total: sums[p.name][0], Records: sums[p.name][1],
				State: state, MeteringSN: usage.MeteringSN(k.InstanceID, k.Start),
			})
			if err != nil || !ok {
				return fmt.Errorf("add usage %s: ok %v: %w", p.name, ok, err)
			}
		}
		var in []store.UsageRecord
		for _, r := range recs {
			in = append(in, store.UsageRecord{
				IdempotencyKey: r.key, InstanceID: fmt.Sprintf("inst-U%d", r.inst), Value: r.value, Time: at(r.h, r.m),
				PeriodStart: hour(r.h), CreatedAt: at(r.h, r.m).Add(30 * time.Second),
			})
		}
		inserted, err := tx.InsertUsageRecords(ctx, in)
		if err != nil {
			return fmt.Errorf("insert records: %w", err)
		}
		for i, ok := range inserted {
			if !ok {
				return fmt.Errorf("record %s not inserted", in[i].IdempotencyKey)
			}
		}
		if err := tx.CarryUsageRecords(ctx, []string{"k4"}, hour(0)); err != nil {
			return fmt.Errorf("carry k4: %w", err)
		}
		totals := map[int][3]int64{} // total, records, latest time (Unix)
		for _, r := range recs {
			v := totals[r.inst]
			last := v[2]
			if u := at(r.h, r.m).Unix(); u > last {
				last = u
			}
			totals[r.inst] = [3]int64{v[0] + r.value, v[1] + 1, last}
		}
		for inst, v := range totals {
			if err := tx.AddUsageTotal(ctx, fmt.Sprintf("inst-U%d", inst), v[0], v[1], time.Unix(v[2], 0).UTC()); err != nil {
				return fmt.Errorf("add total: %w", err)
			}
		}
		for _, p := range []struct {
			name, api, parent string
			records           int
			created           time.Time
		}{
			{"D", store.UsageAPIOld, "", 1, at(-2, 1)},
			{"A", store.UsageAPINew, "", 2, at(-1, 1)},
			{"B", store.UsageAPINew, "", 2, at(0, 1)},
			{"C1", store.UsageAPINew, "B", 1, at(0, 2)},
			{"C2", store.UsageAPINew, "B", 1, at(0, 2)},
		} {
			id, err := tx.InsertUsagePush(ctx, store.UsagePush{
				API: p.api, ParentID: s.pushes[p.parent], Body: []byte(usageBodies[p.name]), Records: p.records,
				CreatedAt: p.created, UpdatedAt: p.created,
			})
			if err != nil {
				return fmt.Errorf("insert push %s: %w", p.name, err)
			}
			s.pushes[p.name] = id
		}
		// B went out first with U1@-1 and U2@-1, then split.
		if err := tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{key("U1@-1"), key("U2@-1")}, store.UsagePushing, s.pushes["B"], "", ""); err != nil {
			return err
		}
		for _, p := range periods {
			if p.state == store.UsageOpen || p.state == store.UsageTest {
				continue
			}
			if err := tx.SetUsagePeriods(ctx, []store.UsagePeriodKey{key(p.name)}, p.state, s.pushes[p.push], p.code, p.msg); err != nil {
				return fmt.Errorf("set period %s: %w", p.name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed usage: %v", err)
	}
	for _, a := range []struct {
		push string
		a    store.UsagePushAttempt
	}{
		{"D", store.UsagePushAttempt{Attempt: 1, At: at(-2, 2), Duration: 310 * time.Millisecond, HTTPStatus: 200, Code: "MKT.9004", Message: "usage older than 21 days"}},
		{"A", store.UsagePushAttempt{Attempt: 1, At: at(-1, 2), Duration: 10 * time.Second, Message: `Post "https://mkt.example/api/mkp-openapi-public/global/v1/usage": context deadline exceeded`}},
		{"A", store.UsagePushAttempt{Attempt: 2, At: at(-1, 3), Duration: 120 * time.Millisecond, HTTPStatus: 200, Code: "MKT.0000", Message: "success"}},
		{"B", store.UsagePushAttempt{Attempt: 1, At: at(0, 1), Duration: 80 * time.Millisecond, HTTPStatus: 200, Code: "MKT.0101", Message: "invalid parameter"}},
		{"C1", store.UsagePushAttempt{Attempt: 1, At: at(0, 3), Duration: 70 * time.Millisecond, HTTPStatus: 200, Code: "MKT.0101", Message: "usage_value is invalid"}},
		{"C2", store.UsagePushAttempt{Attempt: 1, At: at(0, 3), Duration: 45 * time.Millisecond, HTTPStatus: 500, Code: "MKT.0999", Message: "system error"}},
	} {
		a.a.PushID = s.pushes[a.push]
		if err := st.InsertUsagePushAttempt(ctx, a.a); err != nil {
			t.Fatalf("insert attempt of %s: %v", a.push, err)
		}
	}
	for _, p := range []struct {
		name  string
		state store.UsagePushState
		code  string
		msg   string
	}{
		{"D", store.UsagePushDone, "MKT.9004", "usage older than 21 days"},
		{"A", store.UsagePushDone, "MKT.0000", "success"},
		{"B", store.UsagePushSplit, "MKT.0101", "invalid parameter"},
		{"C1", store.UsagePushDone, "MKT.0101", "usage_value is invalid"},
	} {
		err := st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.UpdateUsagePush(ctx, store.UsagePush{ID: s.pushes[p.name], State: p.state, Code: p.code, Message: p.msg})
		})
		if err != nil {
			t.Fatalf("update push %s: %v", p.name, err)
		}
	}
	for _, p := range periods {
		got, err := st.UsagePeriod(ctx, key(p.name))
		if err != nil {
			t.Fatalf("read period %s: %v", p.name, err)
		}
		s.periods[p.name] = got.ID
	}
	return s
}

// pushRetrier is a UsagePushes that records the pushes and periods it was
// asked for and answers with f and fr (nil fr: nil).
type pushRetrier struct {
	mu       sync.Mutex
	calls    []int64
	repushes []store.UsagePeriodKey
	f        func(id int64) error
	fr       func(k store.UsagePeriodKey) error
}

func (r *pushRetrier) Repush(_ context.Context, k store.UsagePeriodKey) error {
	r.mu.Lock()
	r.repushes = append(r.repushes, k)
	r.mu.Unlock()
	if r.fr == nil {
		return nil
	}
	return r.fr(k)
}

// repushed lists the periods Repush was asked for, as instance@RFC 3339
// start in UTC.
func (r *pushRetrier) repushed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, k := range r.repushes {
		out = append(out, k.InstanceID+"@"+k.Start.UTC().Format(time.RFC3339))
	}
	return out
}

func (r *pushRetrier) RetryPush(_ context.Context, id int64) error {
	r.mu.Lock()
	r.calls = append(r.calls, id)
	r.mu.Unlock()
	return r.f(id)
}

func (r *pushRetrier) called() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.calls...)
}

// forUsageDialects runs test once per dialect against the admin API over
// a store seeded by seedUsage.
func forUsageDialects(t *testing.T, test func(t *testing.T, f *fixture, s usageSeed)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			f := &fixture{st: d.open(t)}
			s := seedUsage(t, f.st)
			f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Token: token}))
			t.Cleanup(f.srv.Close)
			test(t, f, s)
		})
	}
}

// stripStamps checks that m's createdAt and updatedAt are RFC 3339 UTC
// times and removes them: the store stamps some with the wall clock.
func stripStamps(t *testing.T, m map[string]any) {
	t.Helper()
	for _, k := range []string{"createdAt", "updatedAt"} {
		v, _ := m[k].(string)
		if ts, err := time.Parse(time.RFC3339Nano, v); err != nil || ts.Location() != time.UTC || !strings.HasSuffix(v, "Z") {
			t.Errorf("%s %q: want an RFC 3339 UTC time", k, v)
		}
		delete(m, k)
	}
}

func TestUsageSummary(t *testing.T) { forUsageDialects(t, testUsageSummary) }

func testUsageSummary(t *testing.T, f *fixture, _ usageSeed) {
	code, body := f.raw(t, "/admin/api/usage")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"counts":            map[string]any{"open": 1.0, "pushing": 1.0, "accepted": 2.0, "rejected": 1.0, "dead": 2.0, "test": 1.0},
		"oldestUnpushedEnd": "2026-03-01T12:00:00Z", // U2@-1, pushing; U1@0 ends later
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("summary:\n got %s\nwant %s", g, w)
	}

	// An empty store: every count zero, no oldest period.
	empty := &fixture{st: dialects[0].open(t)}
	empty.srv = httptest.NewServer(NewAPI(APIConfig{Store: empty.st, Token: token}))
	defer empty.srv.Close()
	if code, body := empty.raw(t, "/admin/api/usage"); code != http.StatusOK || compact(t, json.RawMessage(body)) !=
		`{"counts":{"open":0,"pushing":0,"accepted":0,"rejected":0,"dead":0,"test":0}}` {
		t.Errorf("empty summary: %d %s", code, body)
	}
}

func TestUsagePeriods(t *testing.T) { forUsageDialects(t, testUsagePeriods) }

func testUsagePeriods(t *testing.T, f *fixture, s usageSeed) {
	name := map[int64]string{}
	for n, id := range s.periods {
		name[id] = n
	}
	id := func(n string) string { return fmt.Sprint(s.periods[n]) }
	tests := []struct {
		query, want, wantNext string
	}{
		{"", "U4@0 U1@0 U2@-1 U1@-1 U2@-2 U1@-2 U3@-3 U3@-528", ""},
		{"?state=dead", "U3@-3 U3@-528", ""},
		{"?state=open", "U1@0", ""},
		{"?state=test", "U4@0", ""},
		{"?instanceId=inst-U1", "U1@0 U1@-1 U1@-2", ""},
		{"?instanceId=inst-U1&state=accepted", "U1@-2", ""},
		{"?instanceId=inst-U5", "", ""},
		{"?pushId=" + fmt.Sprint(s.pushes["A"]), "U2@-2 U1@-2", ""},
		{"?pushId=" + fmt.Sprint(s.pushes["C2"]), "U2@-1", ""},
		{"?limit=3", "U4@0 U1@0 U2@-1", id("U2@-1")},
		{"?limit=3&before=" + id("U2@-1"), "U1@-1 U2@-2 U1@-2", id("U1@-2")},
		{"?limit=3&before=" + id("U1@-2"), "U3@-3 U3@-528", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var out struct {
				Periods []struct {
					ID int64 `json:"id"`
				} `json:"periods"`
				Next string `json:"next"`
			}
			if code := f.do(t, "GET", "/admin/api/usage/periods"+tt.query, &out); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			var got []string
			for _, p := range out.Periods {
				got = append(got, name[p.ID])
			}
			if strings.Join(got, " ") != tt.want || out.Next != tt.wantNext {
				t.Errorf("got %q next %q, want %q next %q", strings.Join(got, " "), out.Next, tt.want, tt.wantNext)
			}
		})
	}
	if code, body := f.raw(t, "/admin/api/usage/periods?instanceId=inst-U5"); code != http.StatusOK || !strings.Contains(body, `"periods": []`) {
		t.Errorf("empty page: %d %s", code, body)
	}

	// Every field of a rejected period and of a dead one never pushed.
	var out struct {
		Periods []map[string]any `json:"periods"`
	}
	if code := f.do(t, "GET", "/admin/api/usage/periods?state=rejected", &out); code != http.StatusOK || len(out.Periods) != 1 {
		t.Fatalf("rejected: %d %v", code, out.Periods)
	}
	got := out.Periods[0]
	stripStamps(t, got)
	want := map[string]any{
		"id": float64(s.periods["U1@-1"]), "instanceId": "inst-U1", "start": "2026-03-01T11:00:00Z", "end": "2026-03-01T12:00:00Z",
		"total": "0.0001", "records": 1.0, "state": "rejected", "meteringSn": usage.MeteringSN("inst-U1", hour(-1)),
		"pushId": float64(s.pushes["C1"]), "code": "MKT.0101", "message": "usage_value is invalid",
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("rejected period:\n got %s\nwant %s", g, w)
	}
	out.Periods = nil // a decode into a reused map would merge
	if code := f.do(t, "GET", "/admin/api/usage/periods?state=dead&limit=1&before="+id("U3@-3"), &out); code != http.StatusOK || len(out.Periods) != 1 {
		t.Fatalf("dead: %d %v", code, out.Periods)
	}
	got = out.Periods[0]
	stripStamps(t, got)
	want = map[string]any{
		"id": float64(s.periods["U3@-528"]), "instanceId": "inst-U3", "start": "2026-02-07T12:00:00Z", "end": "2026-02-07T13:00:00Z",
		"total": "2", "records": 1.0, "state": "dead", "meteringSn": usage.MeteringSN("inst-U3", hour(-528)),
		"message": "older than 21 days: never pushed",
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("dead period:\n got %s\nwant %s", g, w)
	}
	// Totals are decimal text: four decimals, none trailing.
	out.Periods = nil
	if code := f.do(t, "GET", "/admin/api/usage/periods?pushId="+fmt.Sprint(s.pushes["A"]), &out); code != http.StatusOK {
		t.Fatalf("push A: %d", code)
	}
	if len(out.Periods) != 2 || out.Periods[0]["total"] != "12345.6789" || out.Periods[1]["total"] != "1.5" {
		t.Errorf("push A's totals: %v", out.Periods)
	}

	for _, tt := range []struct{ query, want string }{
		{"?state=sealed", "state: want open, pushing, accepted, rejected, dead or test"},
		{"?state=open&state=dead", "state: given more than once"},
		{"?instanceId=a&instanceId=b", "instanceId: given more than once"},
		{"?instanceId=inst%00U1", "instanceId: invalid UTF-8 or control characters"},
		{"?instanceId=%FF", "instanceId: invalid UTF-8 or control characters"},
		{"?pushId=0", "pushId: want a positive id"},
		{"?pushId=x", "pushId: want a positive id"},
		{"?before=-3", "before: want a positive id"},
		{"?limit=0", "limit: want a number from 1 to 1000"},
		{"?limit=1001", "limit: want a number from 1 to 1000"},
	} {
		var e errorBody
		if code := f.do(t, "GET", "/admin/api/usage/periods"+tt.query, &e); code != http.StatusBadRequest || e.Error != tt.want {
			t.Errorf("GET usage/periods%s: %d %q, want 400 %q", tt.query, code, e.Error, tt.want)
		}
	}
}

func TestUsageInstance(t *testing.T) { forUsageDialects(t, testUsageInstance) }

func testUsageInstance(t *testing.T, f *fixture, s usageSeed) {
	var got map[string]any
	if code := f.do(t, "GET", "/admin/api/usage/instances/inst-U1", &got); code != http.StatusOK {
		t.Fatalf("inst-U1: %d %v", code, got)
	}
	var ids []string
	for _, p := range got["periods"].([]any) {
		m := p.(map[string]any)
		ids = append(ids, fmt.Sprintf("%v:%v:%v", m["id"], m["state"], m["total"]))
	}
	if want := fmt.Sprintf("%d:open:3 %d:rejected:0.0001 %d:accepted:1.5", s.periods["U1@0"], s.periods["U1@-1"], s.periods["U1@-2"]); strings.Join(ids, " ") != want {
		t.Errorf("inst-U1's periods %q, want %q", strings.Join(ids, " "), want)
	}
	delete(got, "periods")
	want := map[string]any{
		"instanceId": "inst-U1", "chargingMode": "ON_DEMAND", "test": false,
		"total": "4.5001", "records": 5.0, "lastTime": "2026-03-01T12:05:00Z",
		"counts": map[string]any{"open": 1.0, "pushing": 0.0, "accepted": 1.0, "rejected": 1.0, "dead": 0.0, "test": 0.0},
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("inst-U1:\n got %s\nwant %s", g, w)
	}

	var u2 map[string]any
	if code := f.do(t, "GET", "/admin/api/usage/instances/inst-U2", &u2); code != http.StatusOK || u2["total"] != "12345.6796" || u2["records"] != 2.0 {
		t.Errorf("inst-U2: %d total %v records %v, want 12345.6796 of 2", code, u2["total"], u2["records"])
	}
	var u4 map[string]any
	if code := f.do(t, "GET", "/admin/api/usage/instances/inst-U4", &u4); code != http.StatusOK || u4["test"] != true || u4["total"] != "0.25" ||
		mustJSON(t, u4["counts"]) != `{"accepted":0,"dead":0,"open":0,"pushing":0,"rejected":0,"test":1}` {
		t.Errorf("inst-U4: %d %v", code, u4)
	}
	// An instance without usage: a zero total, no periods.
	if code, body := f.raw(t, "/admin/api/usage/instances/inst-U5"); code != http.StatusOK || compact(t, json.RawMessage(body)) !=
		`{"instanceId":"inst-U5","chargingMode":"ON_DEMAND","test":false,"total":"0","records":0,"counts":{"open":0,"pushing":0,"accepted":0,"rejected":0,"dead":0,"test":0},"periods":[]}` {
		t.Errorf("inst-U5: %d %s", code, body)
	}

	// Its periods page and filter like the periods list.
	var page struct {
		Periods []struct {
			ID int64 `json:"id"`
		} `json:"periods"`
		Next string `json:"next"`
	}
	if code := f.do(t, "GET", "/admin/api/usage/instances/inst-U1?limit=2", &page); code != http.StatusOK || len(page.Periods) != 2 || page.Next != fmt.Sprint(s.periods["U1@-1"]) {
		t.Errorf("inst-U1 limit 2: %d %+v", code, page)
	}
	next := page.Next
	page.Periods, page.Next = nil, ""
	if code := f.do(t, "GET", "/admin/api/usage/instances/inst-U1?limit=2&before="+next, &page); code != http.StatusOK || len(page.Periods) != 1 ||
		page.Periods[0].ID != s.periods["U1@-2"] || page.Next != "" {
		t.Errorf("inst-U1's second page: %d %+v", code, page)
	}
	page.Periods, page.Next = nil, ""
	if code := f.do(t, "GET", "/admin/api/usage/instances/inst-U1?state=rejected", &page); code != http.StatusOK || len(page.Periods) != 1 || page.Periods[0].ID != s.periods["U1@-1"] {
		t.Errorf("inst-U1 rejected: %d %+v", code, page)
	}

	for _, tt := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/admin/api/usage/instances/nope", http.StatusNotFound, `instance "nope" not found`},
		{"/admin/api/usage/instances/inst-1", http.StatusNotFound, `instance "inst-1" not found`},
		{"/admin/api/usage/instances/inst%00U1", http.StatusBadRequest, "instance ID: invalid UTF-8 or control characters"},
		{"/admin/api/usage/instances/inst-U1?state=gone", http.StatusBadRequest, "state: want open, pushing, accepted, rejected, dead or test"},
		{"/admin/api/usage/instances/inst-U1?limit=x", http.StatusBadRequest, "limit: want a number from 1 to 1000"},
		{"/admin/api/usage/instances/inst-U1?before=1&before=2", http.StatusBadRequest, "before: given more than once"},
	} {
		var e errorBody
		if code := f.do(t, "GET", tt.path, &e); code != tt.status || e.Error != tt.msg {
			t.Errorf("GET %s: %d %q, want %d %q", tt.path, code, e.Error, tt.status, tt.msg)
		}
	}
}

func TestUsageRecords(t *testing.T) { forUsageDialects(t, testUsageRecords) }

func testUsageRecords(t *testing.T, f *fixture, _ usageSeed) {
	type page struct {
		Records []map[string]any `json:"records"`
		Next    string           `json:"next"`
	}
	keys := func(p page) string {
		var out []string
		for _, r := range p.Records {
			out = append(out, fmt.Sprint(r["idempotencyKey"]))
		}
		return strings.Join(out, " ")
	}
	tests := []struct {
		query, want string
		next        bool
	}{
		{"?instanceId=inst-U1", "k5 k4 k3 k2 k1", false},
		{"?instanceId=inst-U1&periodStart=2026-03-01T12:00:00Z", "k4 k3", false}, // k4 carried in
		{"?instanceId=inst-U1&periodStart=2026-03-01T11:00:00Z", "k5", false},
		{"?instanceId=inst-U1&periodStart=2026-03-01T10:00:00Z", "k2 k1", false},
		{"?instanceId=inst-U1&periodStart=2026-03-01T18:00:00%2B08:00", "k2 k1", false}, // the same instant
		{"?instanceId=inst-U1&periodStart=2026-03-01T09:00:00Z", "", false},
		{"?instanceId=inst-U2", "k7 k6", false},
		{"?instanceId=inst-U5", "", false},
		{"?instanceId=inst-U1&limit=2", "k5 k4", true},
	}
	for _, tt := range tests {
		var p page
		if code := f.do(t, "GET", "/admin/api/usage/records"+tt.query, &p); code != http.StatusOK {
			t.Fatalf("%s: %d", tt.query, code)
		}
		if keys(p) != tt.want || (p.Next != "") != tt.next {
			t.Errorf("%s: %q next %q, want %q (next %v)", tt.query, keys(p), p.Next, tt.want, tt.next)
		}
	}
	var p page
	if code := f.do(t, "GET", "/admin/api/usage/records?instanceId=inst-U1&limit=2", &p); code != http.StatusOK || p.Next == "" {
		t.Fatalf("page 1: %d %v", code, p)
	}
	next := p.Next
	p = page{}
	if code := f.do(t, "GET", "/admin/api/usage/records?instanceId=inst-U1&limit=2&before="+next, &p); code != http.StatusOK || keys(p) != "k3 k2" {
		t.Errorf("page 2: %d %q", code, keys(p))
	}
	next = p.Next
	p = page{}
	if code := f.do(t, "GET", "/admin/api/usage/records?instanceId=inst-U1&limit=2&before="+next, &p); code != http.StatusOK || keys(p) != "k1" || p.Next != "" {
		t.Errorf("page 3: %d %q next %q", code, keys(p), p.Next)
	}

	// Every field of the carried record.
	p = page{}
	if code := f.do(t, "GET", "/admin/api/usage/records?instanceId=inst-U1&periodStart=2026-03-01T12:00:00Z&limit=1", &p); code != http.StatusOK || len(p.Records) != 1 {
		t.Fatalf("k4: %d %v", code, p)
	}
	got := p.Records[0]
	if id, _ := got["id"].(float64); id <= 0 {
		t.Errorf("k4's id %v", got["id"])
	}
	delete(got, "id")
	want := map[string]any{
		"idempotencyKey": "k4", "instanceId": "inst-U1", "value": "2", "time": "2026-03-01T11:50:00Z",
		"periodStart": "2026-03-01T12:00:00Z", "carried": true, "createdAt": "2026-03-01T11:50:30Z",
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("k4:\n got %s\nwant %s", g, w)
	}
	p = page{}
	if code := f.do(t, "GET", "/admin/api/usage/records?instanceId=inst-U2&limit=1&before=1000000", &p); code != http.StatusOK ||
		p.Records[0]["value"] != "0.0007" || p.Records[0]["carried"] != false {
		t.Errorf("k7: %d %v", code, p.Records)
	}

	for _, tt := range []struct{ query, want string }{
		{"", "instanceId: required"},
		{"?periodStart=2026-03-01T12:00:00Z", "instanceId: required"},
		{"?instanceId=inst-U1&periodStart=yesterday", "periodStart: want an RFC 3339 time such as 2026-01-02T15:04:05Z"},
		{"?instanceId=inst-U1&periodStart=a&periodStart=b", "periodStart: given more than once"},
		{"?instanceId=inst-U1&before=0", "before: want a positive id"},
		{"?instanceId=inst-U1&limit=5000", "limit: want a number from 1 to 1000"},
		{"?instanceId=inst-U1&instanceId=inst-U2", "instanceId: given more than once"},
		{"?instanceId=%00", "instanceId: invalid UTF-8 or control characters"},
	} {
		var e errorBody
		if code := f.do(t, "GET", "/admin/api/usage/records"+tt.query, &e); code != http.StatusBadRequest || e.Error != tt.want {
			t.Errorf("GET usage/records%s: %d %q, want 400 %q", tt.query, code, e.Error, tt.want)
		}
	}
}

func TestUsagePushes(t *testing.T) { forUsageDialects(t, testUsagePushes) }

func testUsagePushes(t *testing.T, f *fixture, s usageSeed) {
	name := map[int64]string{}
	for n, id := range s.pushes {
		name[id] = n
	}
	id := func(n string) string { return fmt.Sprint(s.pushes[n]) }
	tests := []struct {
		query, want, wantNext string
	}{
		{"", "C2:pending C1:done B:split A:done D:done", ""},
		{"?state=pending", "C2:pending", ""},
		{"?state=split", "B:split", ""},
		{"?state=done", "C1:done A:done D:done", ""},
		{"?limit=2", "C2:pending C1:done", id("C1")},
		{"?limit=2&before=" + id("C1"), "B:split A:done", id("A")},
		{"?limit=2&before=" + id("A"), "D:done", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var out struct {
				Pushes []struct {
					ID    int64  `json:"id"`
					State string `json:"state"`
				} `json:"pushes"`
				Next string `json:"next"`
			}
			if code := f.do(t, "GET", "/admin/api/usage/pushes"+tt.query, &out); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			var got []string
			for _, p := range out.Pushes {
				got = append(got, name[p.ID]+":"+p.State)
			}
			if strings.Join(got, " ") != tt.want || out.Next != tt.wantNext {
				t.Errorf("got %q next %q, want %q next %q", strings.Join(got, " "), out.Next, tt.want, tt.wantNext)
			}
		})
	}
	// The list carries no bodies.
	code, body := f.raw(t, "/admin/api/usage/pushes")
	if code != http.StatusOK || strings.Contains(body, "usage_records") || strings.Contains(body, `"body"`) {
		t.Errorf("push list: %d, want no bodies\n%s", code, body)
	}
	var list struct {
		Pushes []map[string]any `json:"pushes"`
	}
	if code := f.do(t, "GET", "/admin/api/usage/pushes?state=pending", &list); code != http.StatusOK || len(list.Pushes) != 1 {
		t.Fatalf("pending: %d %v", code, list)
	}
	c2 := list.Pushes[0]
	stripStamps(t, c2)
	if g, w := mustJSON(t, c2), mustJSON(t, map[string]any{
		"id": float64(s.pushes["C2"]), "api": "new", "parentId": float64(s.pushes["B"]), "records": 1.0, "state": "pending",
		"attempts": 1.0, "code": "MKT.0999", "message": "system error",
	}); g != w {
		t.Errorf("C2 in the list:\n got %s\nwant %s", g, w)
	}

	// One push: its body as JSON, its periods, its attempts first first.
	var a map[string]any
	if code := f.do(t, "GET", "/admin/api/usage/pushes/"+id("A"), &a); code != http.StatusOK {
		t.Fatalf("A: %d", code)
	}
	if a["createdAt"] != "2026-03-01T11:01:00Z" {
		t.Errorf("A's createdAt %v", a["createdAt"])
	}
	stripStamps(t, a)
	for _, p := range a["periods"].([]any) {
		stripStamps(t, p.(map[string]any))
	}
	var body0 any
	if err := json.Unmarshal([]byte(usageBodies["A"]), &body0); err != nil {
		t.Fatal(err)
	}
	period := func(n, inst string, total string, records float64) map[string]any {
		h := -2
		return map[string]any{
			"id": float64(s.periods[n]), "instanceId": inst, "start": "2026-03-01T10:00:00Z", "end": "2026-03-01T11:00:00Z",
			"total": total, "records": records, "state": "accepted", "meteringSn": usage.MeteringSN(inst, hour(h)),
			"pushId": float64(s.pushes["A"]), "code": "MKT.0000",
		}
	}
	want := map[string]any{
		"id": float64(s.pushes["A"]), "api": "new", "records": 2.0, "state": "done", "attempts": 2.0, "code": "MKT.0000", "message": "success",
		"body":    body0,
		"periods": []any{period("U1@-2", "inst-U1", "1.5", 2), period("U2@-2", "inst-U2", "12345.6789", 1)},
		"sends": []any{
			map[string]any{"attempt": 1.0, "at": "2026-03-01T11:02:00Z", "durationMs": 10000.0, "httpStatus": 0.0,
				"message": `Post "https://mkt.example/api/mkp-openapi-public/global/v1/usage": context deadline exceeded`},
			map[string]any{"attempt": 2.0, "at": "2026-03-01T11:03:00Z", "durationMs": 120.0, "httpStatus": 200.0, "code": "MKT.0000", "message": "success"},
		},
	}
	if g, w := mustJSON(t, a), mustJSON(t, want); g != w {
		t.Errorf("A:\n got %s\nwant %s", g, w)
	}
	// The split push: its periods moved to its children, which name it.
	var b, c1 map[string]any
	if code := f.do(t, "GET", "/admin/api/usage/pushes/"+id("B"), &b); code != http.StatusOK || b["state"] != "split" || b["code"] != "MKT.0101" ||
		mustJSON(t, b["periods"]) != "[]" || len(b["sends"].([]any)) != 1 {
		t.Errorf("B: %d %v", code, b)
	}
	if code := f.do(t, "GET", "/admin/api/usage/pushes/"+id("C1"), &c1); code != http.StatusOK || c1["parentId"] != float64(s.pushes["B"]) ||
		len(c1["periods"].([]any)) != 1 || c1["periods"].([]any)[0].(map[string]any)["state"] != "rejected" {
		t.Errorf("C1: %d %v", code, c1)
	}
	var d map[string]any
	if code := f.do(t, "GET", "/admin/api/usage/pushes/"+id("D"), &d); code != http.StatusOK || d["api"] != "old" ||
		mustJSON(t, d["body"]) != `{"usage_records":[{"instance_id":"inst-U3","product_id":"P-V1","usage_value":"5"}]}` {
		t.Errorf("D: %d %v", code, d)
	}

	for _, p := range []string{"/admin/api/usage/pushes/999999", "/admin/api/usage/pushes/abc", "/admin/api/usage/pushes/0", "/admin/api/usage/pushes/-1"} {
		var e errorBody
		if code := f.do(t, "GET", p, &e); code != http.StatusNotFound || !strings.HasPrefix(e.Error, "usage push ") || !strings.HasSuffix(e.Error, " not found") {
			t.Errorf("GET %s: %d %q, want 404 usage push … not found", p, code, e.Error)
		}
	}
	for _, tt := range []struct{ query, want string }{
		{"?state=failed", "state: want pending, done or split"},
		{"?state=done&state=split", "state: given more than once"},
		{"?before=x", "before: want a positive id"},
		{"?limit=0", "limit: want a number from 1 to 1000"},
	} {
		var e errorBody
		if code := f.do(t, "GET", "/admin/api/usage/pushes"+tt.query, &e); code != http.StatusBadRequest || e.Error != tt.want {
			t.Errorf("GET usage/pushes%s: %d %q, want 400 %q", tt.query, code, e.Error, tt.want)
		}
	}
}

// TestRetryUsagePush: the retry goes through UsagePushes; its answers map
// to 202, 404, 409 and 500, the cause of a 500 stays in the log, an
// unknown push is 404 without asking, and each retry is audited.
func TestRetryUsagePush(t *testing.T) {
	f := &fixture{st: dialects[0].open(t)}
	s := seedUsage(t, f.st)
	c2, a := s.pushes["C2"], s.pushes["A"]
	var e errorBody

	f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Token: token}))
	if code := f.do(t, "POST", fmt.Sprintf("/admin/api/usage/pushes/%d/retry", c2), &e); code != http.StatusInternalServerError || e.Error != "usage push retry is not available" {
		t.Errorf("no retrier: %d %q", code, e.Error)
	}
	f.srv.Close()

	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	for _, tc := range []struct {
		name   string
		id     int64
		err    error
		status int
		msg    string
		asked  bool
	}{
		{"done", a, fmt.Errorf("usage: retry push %d: %w (done)", a, usage.ErrNotRetryable), http.StatusConflict,
			fmt.Sprintf("usage push %d is done: only a pending push can be retried", a), true},
		{"gone meanwhile", c2, fmt.Errorf("usage: retry push %d: %w", c2, store.ErrNotFound), http.StatusNotFound, fmt.Sprintf("usage push %d not found", c2), true},
		{"store failure", c2, errors.New("usage: retry push: database is locked at /var/lib/koobridge/k.db"), http.StatusInternalServerError,
			"internal error: retry usage push", true},
		{"unknown", 999999, nil, http.StatusNotFound, "usage push 999999 not found", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &pushRetrier{f: func(int64) error { return tc.err }}
			f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Usage: r, Token: token, Logger: logger}))
			defer f.srv.Close()
			if code := f.do(t, "POST", fmt.Sprintf("/admin/api/usage/pushes/%d/retry", tc.id), &e); code != tc.status || e.Error != tc.msg {
				t.Errorf("POST: %d %q, want %d %q", code, e.Error, tc.status, tc.msg)
			}
			if want := fmt.Sprint([]int64{tc.id}); tc.asked != (fmt.Sprint(r.called()) == want) {
				t.Errorf("retrier asked for %v, want asked %v", r.called(), tc.asked)
			}
		})
	}
	if !strings.Contains(logs.String(), "database is locked") {
		t.Errorf("the cause is not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "admin retried usage push") {
		t.Errorf("a failed retry is audited as done:\n%s", logs.String())
	}

	r := &pushRetrier{f: func(int64) error { return nil }}
	f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Usage: r, Token: token, Logger: logger}))
	defer f.srv.Close()
	var out map[string]any
	if code := f.do(t, "POST", fmt.Sprintf("/admin/api/usage/pushes/%d/retry", c2), &out); code != http.StatusAccepted {
		t.Fatalf("retry C2: %d %v", code, out)
	}
	if out["id"] != float64(c2) || out["state"] != "pending" || out["sends"] != nil || out["body"] != nil {
		t.Errorf("retry C2 answered %v, want C2 pending without body or attempts", out)
	}
	if fmt.Sprint(r.called()) != fmt.Sprint([]int64{c2}) {
		t.Errorf("retrier asked for %v", r.called())
	}
	if got := logs.String(); !strings.Contains(got, "admin retried usage push") || !strings.Contains(got, fmt.Sprintf("push_id=%d api=new", c2)) ||
		!strings.Contains(got, `via="admin api"`) {
		t.Errorf("no audit line for the retry:\n%s", got)
	}
	if code := f.do(t, "GET", fmt.Sprintf("/admin/api/usage/pushes/%d/retry", c2), &e); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Errorf("GET retry: %d", code)
	}
}

// TestRetryUsagePushService: with the real usage service, a retry of the
// pending push queues its send job to run now; a push that is done is a
// conflict and queues nothing.
func TestRetryUsagePushService(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			f := &fixture{st: d.open(t)}
			s := seedUsage(t, f.st)
			svc, err := usage.New(usage.Config{
				Store: f.st, Jobs: jobs.NewRunner(jobs.Config{Store: f.st}), Key: "basic-key",
				Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return retryAt },
			})
			if err != nil {
				t.Fatal(err)
			}
			f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Usage: svc, Token: token}))
			defer f.srv.Close()
			sendJobs := func(id int64) int {
				all, err := f.st.Jobs(context.Background(), store.JobFilter{Kind: usage.KindSend, Limit: maxLimit})
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, j := range all {
					var p struct {
						PushID int64 `json:"pushId"`
					}
					if json.Unmarshal(j.Payload, &p) == nil && p.PushID == id && j.State == store.JobAvailable && j.RunAt.Equal(retryAt) {
						n++
					}
				}
				return n
			}
			var e errorBody
			for _, n := range []string{"A", "B"} {
				state := map[string]string{"A": "done", "B": "split"}[n]
				want := fmt.Sprintf("usage push %d is %s: only a pending push can be retried", s.pushes[n], state)
				if code := f.do(t, "POST", fmt.Sprintf("/admin/api/usage/pushes/%d/retry", s.pushes[n]), &e); code != http.StatusConflict || e.Error != want {
					t.Errorf("retry %s: %d %q, want 409 %q", n, code, e.Error, want)
				}
				if got := sendJobs(s.pushes[n]); got != 0 {
					t.Errorf("a refused retry of %s queued %d send jobs", n, got)
				}
			}
			var out map[string]any
			if code := f.do(t, "POST", fmt.Sprintf("/admin/api/usage/pushes/%d/retry", s.pushes["C2"]), &out); code != http.StatusAccepted || out["state"] != "pending" {
				t.Fatalf("retry C2: %d %v", code, out)
			}
			if got := sendJobs(s.pushes["C2"]); got != 1 {
				t.Errorf("send jobs queued for C2 to run now: %d, want 1", got)
			}
		})
	}
}

// TestRepushUsagePeriod: pushing a period again goes through UsagePushes;
// its answers map to 202, 404, 409 and 500, the cause of a 500 stays in
// the log, an unknown period or a bad start is refused without asking,
// and each repush is audited.
func TestRepushUsagePeriod(t *testing.T) {
	f := &fixture{st: dialects[0].open(t)}
	s := seedUsage(t, f.st)
	const (
		rejected = "/admin/api/usage/instances/inst-U1/periods/2026-03-01T11:00:00Z/repush"
		accepted = "/admin/api/usage/instances/inst-U1/periods/2026-03-01T10:00:00Z/repush"
	)
	var e errorBody

	f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Token: token}))
	if code := f.do(t, "POST", rejected, &e); code != http.StatusInternalServerError || e.Error != "usage period repush is not available" {
		t.Errorf("no usage service: %d %q", code, e.Error)
	}
	f.srv.Close()

	logs := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	for _, tc := range []struct {
		name   string
		path   string
		err    error
		status int
		msg    string
		asked  string // the period asked for, "" for none
	}{
		{"accepted", accepted, fmt.Errorf("usage: push again: %w (accepted)", usage.ErrNotRejected), http.StatusConflict,
			`usage period of instance "inst-U1" starting 2026-03-01T10:00:00Z is accepted: only a rejected period can be pushed again`, "inst-U1@2026-03-01T10:00:00Z"},
		{"gone meanwhile", rejected, fmt.Errorf("usage: push again: %w", store.ErrNotFound), http.StatusNotFound,
			`usage period of instance "inst-U1" starting 2026-03-01T11:00:00Z not found`, "inst-U1@2026-03-01T11:00:00Z"},
		{"store failure", rejected, errors.New("usage: push again: database is locked at /var/lib/koobridge/k.db"), http.StatusInternalServerError,
			"internal error: push usage period again", "inst-U1@2026-03-01T11:00:00Z"},
		{"no such period", "/admin/api/usage/instances/inst-U1/periods/2026-03-01T09:00:00Z/repush", nil, http.StatusNotFound,
			`usage period of instance "inst-U1" starting 2026-03-01T09:00:00Z not found`, ""},
		{"no such instance", "/admin/api/usage/instances/nope/periods/2026-03-01T11:00:00Z/repush", nil, http.StatusNotFound,
			`usage period of instance "nope" starting 2026-03-01T11:00:00Z not found`, ""},
		{"start not a time", "/admin/api/usage/instances/inst-U1/periods/yesterday/repush", nil, http.StatusBadRequest,
			"start: want an RFC 3339 time such as 2026-01-02T15:04:05Z", ""},
		{"start without zone", "/admin/api/usage/instances/inst-U1/periods/2026-03-01T11:00:00/repush", nil, http.StatusBadRequest,
			"start: want an RFC 3339 time such as 2026-01-02T15:04:05Z", ""},
		{"start with a fraction", "/admin/api/usage/instances/inst-U1/periods/2026-03-01T11:00:00.0001Z/repush", nil, http.StatusBadRequest,
			"start: want the period's start to the second, as the periods list it", ""},
		{"instance with NUL", "/admin/api/usage/instances/inst%00U1/periods/2026-03-01T11:00:00Z/repush", nil, http.StatusBadRequest,
			"instance ID: invalid UTF-8 or control characters", ""},
		{"instance not UTF-8", "/admin/api/usage/instances/inst%FFU1/periods/2026-03-01T11:00:00Z/repush", nil, http.StatusBadRequest,
			"instance ID: invalid UTF-8 or control characters", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &pushRetrier{fr: func(store.UsagePeriodKey) error { return tc.err }}
			f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Usage: r, Token: token, Logger: logger}))
			defer f.srv.Close()
			if code := f.do(t, "POST", tc.path, &e); code != tc.status || e.Error != tc.msg {
				t.Errorf("POST: %d %q, want %d %q", code, e.Error, tc.status, tc.msg)
			}
			if got := strings.Join(r.repushed(), " "); got != tc.asked {
				t.Errorf("service asked for %q, want %q", got, tc.asked)
			}
			if len(r.called()) != 0 {
				t.Errorf("a repush retried pushes %v", r.called())
			}
		})
	}
	if !strings.Contains(logs.String(), "database is locked") {
		t.Errorf("the cause is not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "admin put rejected usage period back to open") {
		t.Errorf("a failed repush is audited as done:\n%s", logs.String())
	}

	// The start in another zone names the same period; the answer is the
	// period as the store has it afterwards.
	r := &pushRetrier{}
	f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Usage: r, Token: token, Logger: logger}))
	defer f.srv.Close()
	var out map[string]any
	if code := f.do(t, "POST", "/admin/api/usage/instances/inst-U1/periods/2026-03-01T19:00:00+08:00/repush", &out); code != http.StatusAccepted {
		t.Fatalf("repush U1@-1: %d %v", code, out)
	}
	if out["id"] != float64(s.periods["U1@-1"]) || out["instanceId"] != "inst-U1" || out["start"] != "2026-03-01T11:00:00Z" ||
		out["meteringSn"] != usage.MeteringSN("inst-U1", hour(-1)) {
		t.Errorf("repush answered %v, want period U1@-1", out)
	}
	if got := strings.Join(r.repushed(), " "); got != "inst-U1@2026-03-01T11:00:00Z" {
		t.Errorf("service asked for %q", got)
	}
	got := logs.String()
	if !strings.Contains(got, "admin put rejected usage period back to open") || !strings.Contains(got, fmt.Sprintf("period_id=%d instance_id=inst-U1", s.periods["U1@-1"])) ||
		!strings.Contains(got, "metering_sn="+usage.MeteringSN("inst-U1", hour(-1))) || !strings.Contains(got, "code=MKT.0101") || !strings.Contains(got, `via="admin api"`) {
		t.Errorf("no audit line for the repush:\n%s", got)
	}
	if code := f.do(t, "GET", rejected, &e); code != http.StatusMethodNotAllowed && code != http.StatusNotFound {
		t.Errorf("GET repush: %d", code)
	}
}

// TestRepushUsagePeriodService: with the real usage service, the rejected
// period goes back to open, with its metering_sn and without its push or
// KooGallery's answer; then, like the accepted, dead, pushing and test
// periods, it is a conflict naming its state and stays as it is.
func TestRepushUsagePeriodService(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			f := &fixture{st: d.open(t)}
			s := seedUsage(t, f.st)
			svc, err := usage.New(usage.Config{
				Store: f.st, Jobs: jobs.NewRunner(jobs.Config{Store: f.st}), Key: "basic-key",
				Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return retryAt },
			})
			if err != nil {
				t.Fatal(err)
			}
			f.srv = httptest.NewServer(NewAPI(APIConfig{Store: f.st, Usage: svc, Token: token}))
			defer f.srv.Close()
			path := func(inst string, h int) string {
				return "/admin/api/usage/instances/" + inst + "/periods/" + hour(h).Format(time.RFC3339) + "/repush"
			}
			state := func(inst string, h int) store.UsagePeriod {
				p, err := f.st.UsagePeriod(context.Background(), store.UsagePeriodKey{InstanceID: inst, Start: hour(h)})
				if err != nil {
					t.Fatal(err)
				}
				return p
			}

			var out map[string]any
			if code := f.do(t, "POST", path("inst-U1", -1), &out); code != http.StatusAccepted {
				t.Fatalf("repush U1@-1: %d %v", code, out)
			}
			stripStamps(t, out)
			want := map[string]any{
				"id": float64(s.periods["U1@-1"]), "instanceId": "inst-U1", "start": "2026-03-01T11:00:00Z", "end": "2026-03-01T12:00:00Z",
				"total": "0.0001", "records": 1.0, "state": "open", "meteringSn": usage.MeteringSN("inst-U1", hour(-1)),
			}
			if g, w := mustJSON(t, out), mustJSON(t, want); g != w {
				t.Errorf("repushed period:\n got %s\nwant %s", g, w)
			}
			if p := state("inst-U1", -1); p.State != store.UsageOpen || p.PushID != 0 || p.Code != "" || p.MeteringSN != usage.MeteringSN("inst-U1", hour(-1)) {
				t.Errorf("stored period after repush: %+v, want open without push or answer, same metering_sn", p)
			}
			var sum map[string]any
			if code := f.do(t, "GET", "/admin/api/usage", &sum); code != http.StatusOK ||
				mustJSON(t, sum["counts"]) != `{"accepted":2,"dead":2,"open":2,"pushing":1,"rejected":0,"test":1}` {
				t.Errorf("counts after repush: %d %v", code, sum["counts"])
			}

			var e errorBody
			for _, tc := range []struct {
				inst  string
				h     int
				state store.UsagePeriodState
			}{
				{"inst-U1", -1, store.UsageOpen}, {"inst-U1", -2, store.UsageAccepted}, {"inst-U3", -3, store.UsageDead},
				{"inst-U2", -1, store.UsagePushing}, {"inst-U4", 0, store.UsageTest},
			} {
				before := state(tc.inst, tc.h)
				msg := fmt.Sprintf("usage period of instance %q starting %s is %s: only a rejected period can be pushed again", tc.inst, hour(tc.h).Format(time.RFC3339), tc.state)
				if code := f.do(t, "POST", path(tc.inst, tc.h), &e); code != http.StatusConflict || e.Error != msg {
					t.Errorf("repush %s@%d: %d %q, want 409 %q", tc.inst, tc.h, code, e.Error, msg)
				}
				if after := state(tc.inst, tc.h); after.State != tc.state || after.PushID != before.PushID || after.Code != before.Code {
					t.Errorf("refused repush of %s@%d changed it: %+v, was %+v", tc.inst, tc.h, after, before)
				}
			}
			if code := f.do(t, "POST", path("inst-U5", -1), &e); code != http.StatusNotFound {
				t.Errorf("repush of a period that does not exist: %d %q", code, e.Error)
			}
		})
	}
}
