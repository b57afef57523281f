package mockapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/protocol"
)

// The saas-v2.md §2.5 usage-push vector (also in protocol/sign tests).
const (
	specKey       = "TestAccessKey-0123456789abcdef"
	specNonce     = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
	specTimestamp = "1680508066618"
	specUsageBody = `{"usage_records":[{"begin_time":"20240101T000000Z","end_time":"20240101T010000Z","instance_id":"inst-001","metering_sn":"sn-0001","record_time":"20240101T010500Z","usage_value":"1.5"}]}`
	specUsageSig  = "+2YsktCXbDxEKrfCH1FLNyOEgn6hSU9wwMmFh4Dk7IA="
)

func TestUsagePushKnownAnswer(t *testing.T) {
	specNow := time.UnixMilli(1680508066618).Add(time.Minute)
	tests := []struct {
		name, body, sig string
		code            string
		kept            int
	}{
		{name: "spec vector", body: specUsageBody, sig: specUsageSig, code: protocol.MKTSuccess, kept: 1},
		{name: "tampered body", body: strings.Replace(specUsageBody, `"1.5"`, `"2.5"`, 1), sig: specUsageSig, code: protocol.MKTInvalidBodySignature},
		{name: "tampered signature", body: specUsageBody, sig: "+2YtktCXbDxEKrfCH1FLNyOEgn6hSU9wwMmFh4Dk7IA=", code: protocol.MKTInvalidBodySignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openapitest.NewServer(t, testAK, testSK)
			srv.SetClock(func() time.Time { return specNow })
			srv.SetUsageKey(specKey)
			got := call{method: http.MethodPost, path: mockapi.UsagePath, body: []byte(tt.body),
				headers: map[string]string{"ts": specTimestamp, "nonce": specNonce, "signature": tt.sig}}.do(t, srv)
			if got.Code != tt.code {
				t.Fatalf("answer %d %s, want %s", got.Status, got.Raw, tt.code)
			}
			recs := srv.UsageRecords()
			if len(recs) != tt.kept {
				t.Fatalf("kept %d records, want %d", len(recs), tt.kept)
			}
			if tt.kept == 0 {
				if got.Status != http.StatusBadRequest {
					t.Errorf("status %d, want 400", got.Status)
				}
				return
			}
			want := mockapi.UsageRecord{Received: specNow, API: mockapi.UsageAPINew, InstanceID: "inst-001",
				MeteringSN: "sn-0001", BeginTime: "20240101T000000Z", EndTime: "20240101T010000Z",
				RecordTime: "20240101T010500Z", UsageValue: "1.5"}
			if recs[0] != want {
				t.Errorf("record %+v, want %+v", recs[0], want)
			}
			if got.Status != http.StatusOK || got.Raw != `{"error_code":"MKT.0000","error_msg":"success"}` {
				t.Errorf("answer %d %s", got.Status, got.Raw)
			}
		})
	}
}

func TestUsagePushRejects(t *testing.T) {
	fresh := testNow.Add(-2 * time.Hour)
	good := newBody(t, rec("inst-1", "sn-1", fresh))
	tooMany := make([]protocol.UsageRecord, 1001)
	tooManyOld := make([]protocol.OldUsageRecord, 1001)
	for i := range tooMany {
		tooMany[i] = rec("inst-1", "sn-"+strconv.Itoa(i), fresh)
		tooManyOld[i] = oldRec("inst-1", fresh)
	}
	noProduct := oldRec("inst-1", fresh)
	noProduct.ProductID = ""
	noSN := rec("inst-1", "", fresh)
	zero := rec("inst-1", "sn-1", fresh)
	zero.UsageValue = "0"
	huge := append([]byte(`{"usage_records":[]}`), bytes.Repeat([]byte(" "), 4<<20)...) // 4 MiB + 20 bytes
	withHeaders := func(c call, kv ...string) call {
		c.headers = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			c.headers[kv[i]] = kv[i+1]
		}
		return c
	}
	withAPIG := func(c call, sk string, at time.Time) call { c.apigSK, c.apigAt = sk, at; return c }

	tests := []struct {
		name        string
		noKey       bool // leave the usage key unset
		requireAPIG bool
		call        call
		status      int
		code        string
		msg         string // substring of error_msg
		kept        int
	}{
		{name: "new: success", call: signedNew(testUsageKey, testNow, good), status: 200, code: "MKT.0000", kept: 1},
		{name: "new: ts 4 minutes old", call: signedNew(testUsageKey, testNow.Add(-4*time.Minute), good), status: 200, code: "MKT.0000", kept: 1},
		{name: "new: no usage key set", noKey: true, call: signedNew("", testNow, good), status: 400, code: "MKT.0102", msg: "no usage key"},
		{name: "new: no signature headers", call: withHeaders(signedNew(testUsageKey, testNow, good)), status: 400, code: "MKT.0102", msg: "required"},
		{name: "new: no nonce", call: withHeaders(signedNew(testUsageKey, testNow, good), "ts", "1", "signature", "x"), status: 400, code: "MKT.0102"},
		{name: "new: wrong key", call: signedNew("another-key", testNow, good), status: 400, code: "MKT.0102", msg: "does not match"},
		{name: "new: stale ts", call: signedNew(testUsageKey, testNow.Add(-6*time.Minute), good), status: 400, code: "MKT.0102", msg: "stale ts"},
		{name: "new: ts not Unix milliseconds", call: signedNewTS(testUsageKey, "2026-03-01T12:00:00Z", good), status: 400, code: "MKT.0102", msg: "invalid body signature: ts is not Unix milliseconds"},
		{name: "new: body over 4 MiB", call: signedNew(testUsageKey, testNow, huge), status: 413, code: "APIGW.0201", msg: "Request entity too large"},
		{name: "old: body over 4 MiB", call: oldPush(testSK, huge), status: 413, code: "APIGW.0201", msg: "Request entity too large"},
		{name: "new: ts in the future", call: signedNew(testUsageKey, testNow.Add(6*time.Minute), good), status: 400, code: "MKT.0102", msg: "stale ts"},
		{name: "new: malformed JSON", call: signedNew(testUsageKey, testNow, []byte(`{"usage_records":[`)), status: 400, code: "MKT.0101", msg: "malformed"},
		{name: "new: data after JSON", call: signedNew(testUsageKey, testNow, append(good, "{}"...)), status: 400, code: "MKT.0101", msg: "malformed"},
		{name: "new: wrong JSON type", call: signedNew(testUsageKey, testNow, []byte(`{"usage_records":{}}`)), status: 400, code: "MKT.0101"},
		{name: "new: no records", call: signedNew(testUsageKey, testNow, []byte(`{"usage_records":[]}`)), status: 400, code: "MKT.0101", msg: "usage_records"},
		{name: "new: no metering_sn", call: signedNew(testUsageKey, testNow, newBody(t, noSN)), status: 400, code: "MKT.0101", msg: "usage_records[0].metering_sn"},
		{name: "new: zero usage", call: signedNew(testUsageKey, testNow, newBody(t, rec("inst-1", "sn-0", fresh), zero)), status: 400, code: "MKT.0101", msg: "usage_records[1].usage_value"},
		{name: "new: 1001 records", call: signedNew(testUsageKey, testNow, newBody(t, tooMany...)), status: 500, code: "MKT.9003"},
		{name: "new: unknown instance", call: signedNew(testUsageKey, testNow, newBody(t, rec("inst-1", "sn-1", fresh), rec("inst-gone", "sn-2", fresh))), status: 500, code: "MKT.9001", msg: "inst-gone"},
		{name: "new: begin 22 days old", call: signedNew(testUsageKey, testNow, newBody(t, rec("inst-1", "sn-1", testNow.AddDate(0, 0, -22)))), status: 500, code: "MKT.9004", msg: "usage_records[0].begin_time"},
		{name: "new: begin 20 days old", call: signedNew(testUsageKey, testNow, newBody(t, rec("inst-1", "sn-1", testNow.AddDate(0, 0, -20)))), status: 200, code: "MKT.0000", kept: 1},
		{name: "new: GET", call: func() call { c := signedNew(testUsageKey, testNow, nil); c.method = http.MethodGet; return c }(), status: 404, code: "APIGW.0101"},
		{name: "new: with APIG", call: withAPIG(signedNew(testUsageKey, testNow, good), testSK, testNow), status: 200, code: "MKT.0000", kept: 1},
		{name: "new: with APIG, wrong SK", call: withAPIG(signedNew(testUsageKey, testNow, good), "wrong", testNow), status: 401, code: "APIGW.0301"},
		{name: "new: with APIG, old date", call: withAPIG(signedNew(testUsageKey, testNow, good), testSK, testNow.Add(-time.Hour)), status: 401, code: "APIGW.0301"},
		{name: "new: APIG required, absent", requireAPIG: true, call: signedNew(testUsageKey, testNow, good), status: 401, code: "APIGW.0301"},
		{name: "new: APIG required, present", requireAPIG: true, call: withAPIG(signedNew(testUsageKey, testNow, good), testSK, testNow), status: 200, code: "MKT.0000", kept: 1},
		{name: "old: success", call: oldPush(testSK, oldBody(t, oldRec("inst-1", fresh))), status: 200, code: "MKT.0000", kept: 1},
		{name: "old: without APIG", call: oldPush("", oldBody(t, oldRec("inst-1", fresh))), status: 401, code: "APIGW.0301"},
		{name: "old: signature header instead of APIG", call: withHeaders(oldPush("", oldBody(t, oldRec("inst-1", fresh))), "ts", "1", "nonce", "n", "signature", "s"), status: 401, code: "APIGW.0301"},
		{name: "old: wrong SK", call: oldPush("wrong", oldBody(t, oldRec("inst-1", fresh))), status: 401, code: "APIGW.0301"},
		{name: "old: malformed JSON", call: oldPush(testSK, []byte(`usage`)), status: 400, code: "MKT.0101"},
		{name: "old: no product_id", call: oldPush(testSK, oldBody(t, noProduct)), status: 400, code: "MKT.0101", msg: "usage_records[0].product_id"},
		{name: "old: 1001 records", call: oldPush(testSK, oldBody(t, tooManyOld...)), status: 500, code: "MKT.9003"},
		{name: "old: unknown instance", call: oldPush(testSK, oldBody(t, oldRec("inst-gone", fresh))), status: 500, code: "MKT.9001"},
		{name: "old: begin 22 days old", call: oldPush(testSK, oldBody(t, oldRec("inst-1", testNow.AddDate(0, 0, -22)))), status: 500, code: "MKT.9004"},
		{name: "old: GET", call: call{method: http.MethodGet, path: mockapi.OldUsagePath, apigSK: testSK}, status: 404, code: "APIGW.0101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUsageServer(t)
			if tt.noKey {
				srv.SetUsageKey("")
			}
			srv.SetRequireAPIGOnUsage(tt.requireAPIG)
			srv.SetInstanceCheck(func(id string) bool { return id == "inst-1" })
			got := tt.call.do(t, srv)
			if got.Status != tt.status || got.Code != tt.code {
				t.Errorf("answer %d %s, want %d %s", got.Status, got.Raw, tt.status, tt.code)
			}
			if !strings.Contains(got.Msg, tt.msg) {
				t.Errorf("error_msg %q does not contain %q", got.Msg, tt.msg)
			}
			if n := len(srv.UsageRecords()); n != tt.kept {
				t.Errorf("kept %d records, want %d", n, tt.kept)
			}
		})
	}
}

func TestUsagePushNoInstanceCheck(t *testing.T) {
	srv := newUsageServer(t)
	got := signedNew(testUsageKey, testNow, newBody(t, rec("anything", "sn-1", testNow.Add(-time.Hour)))).do(t, srv)
	if got.Code != protocol.MKTSuccess {
		t.Fatalf("answer %d %s, want MKT.0000 with no instance check", got.Status, got.Raw)
	}
}

func TestUsagePushDuplicates(t *testing.T) {
	srv := newUsageServer(t)
	p1, p2, p3 := testNow.Add(-3*time.Hour), testNow.Add(-2*time.Hour), testNow.Add(-time.Hour)
	first := rec("inst-1", "sn-1", p1)
	first.UsageValue = "7"
	pushes := []call{
		signedNew(testUsageKey, testNow, newBody(t, first)),
		signedNew(testUsageKey, testNow, newBody(t,
			rec("inst-1", "sn-1", p2), // metering_sn kept before
			rec("inst-1", "sn-2", p1), // instance and period kept before
			rec("inst-2", "sn-3", p1), // same period, other instance: new
			rec("inst-1", "sn-4", p3), // new
			rec("inst-1", "sn-5", p3), // same period earlier in this push
		)),
		oldPush(testSK, oldBody(t, oldRec("inst-1", p3), oldRec("inst-1", p2))),
	}
	for i, c := range pushes {
		if got := c.do(t, srv); got.Status != http.StatusOK || got.Code != protocol.MKTSuccess {
			t.Fatalf("push %d: answer %d %s, want success", i, got.Status, got.Raw)
		}
	}
	want := []struct {
		api, sn, value string
		dup            bool
	}{
		{"new", "sn-1", "7", false},
		{"new", "sn-1", "1.5", true},
		{"new", "sn-2", "1.5", true},
		{"new", "sn-3", "1.5", false},
		{"new", "sn-4", "1.5", false},
		{"new", "sn-5", "1.5", true},
		{"old", "", "1.5", true},
		{"old", "", "1.5", false}, // (inst-1, p2) was only seen as a duplicate, so it was never kept
	}
	got := srv.UsageRecords()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.API != w.api || g.MeteringSN != w.sn || g.UsageValue != w.value || g.Duplicate != w.dup {
			t.Errorf("record %d = %+v, want %+v", i, g, w)
		}
	}
	if got[6].ProductID != "OFFI-1" {
		t.Errorf("old record lost product_id: %+v", got[6])
	}
}

// The record log keeps the last MaxUsageRecords records, but the
// duplicate keys and what was billed are never forgotten: a record that
// repeats a forgotten one is still a duplicate.
func TestUsageRecordsBounded(t *testing.T) {
	srv := newUsageServer(t)
	begin := testNow.Add(-2 * time.Hour)
	const perPush = 1000
	pushes := mockapi.MaxUsageRecords/perPush + 1
	for p := range pushes {
		recs := make([]protocol.UsageRecord, perPush)
		for i := range recs {
			n := p*perPush + i
			recs[i] = rec(fmt.Sprintf("inst-%d", n), fmt.Sprintf("sn-%d", n), begin)
		}
		if got := signedNew(testUsageKey, testNow, newBody(t, recs...)).do(t, srv); got.Code != protocol.MKTSuccess {
			t.Fatalf("push %d: answer %d %s", p, got.Status, got.Raw)
		}
	}
	got := srv.UsageRecords()
	if len(got) != mockapi.MaxUsageRecords || got[0].MeteringSN != fmt.Sprintf("sn-%d", perPush) ||
		got[len(got)-1].MeteringSN != fmt.Sprintf("sn-%d", pushes*perPush-1) {
		t.Fatalf("%d records from %s to %s, want the last %d", len(got), got[0].MeteringSN, got[len(got)-1].MeteringSN, mockapi.MaxUsageRecords)
	}
	again := newBody(t,
		rec("inst-0", "sn-0", begin),                      // forgotten by the log: still a duplicate
		rec("inst-x", "sn-5000", testNow.Add(-time.Hour)), // metering_sn of another instance: duplicate
		rec("inst-1", "sn-new", begin),                    // instance and period of a forgotten record: duplicate
	)
	if got := signedNew(testUsageKey, testNow, again).do(t, srv); got.Code != protocol.MKTSuccess {
		t.Fatalf("push again: answer %d %s", got.Status, got.Raw)
	}
	got = srv.UsageRecords()
	for _, r := range got[len(got)-3:] {
		if !r.Duplicate {
			t.Errorf("record pushed again %+v not flagged a duplicate", r)
		}
	}
	totals := srv.BilledTotals()
	if len(totals) != pushes*perPush+1 { // inst-x has duplicates only
		t.Fatalf("%d instances billed, want %d", len(totals), pushes*perPush+1)
	}
	for _, b := range totals {
		want := mockapi.BilledInstance{InstanceID: b.InstanceID, Total: 15000, Records: 1}
		switch b.InstanceID {
		case "inst-0", "inst-1", "inst-5000":
			want.Duplicates = 1
		case "inst-x":
			want = mockapi.BilledInstance{InstanceID: "inst-x", Duplicates: 1}
		}
		if b.InstanceID == "inst-5000" {
			want.Duplicates = 0 // the duplicate of its sn was inst-x's record
		}
		if !reflect.DeepEqual(b, want) {
			t.Errorf("billed %+v, want %+v", b, want)
		}
	}
	in, ok := srv.BilledInstance("inst-5000")
	if !ok || len(in.Periods) != 1 || in.Periods[0].Duplicates != 1 || in.Periods[0].MeteringSN != "sn-5000" {
		t.Errorf("inst-5000 billed %+v, want its one period with the duplicate of its metering_sn counted", in)
	}
}

// Billed sums the kept records exactly, per instance, and counts the
// duplicates per instance and per period; old and new pushes share the
// duplicate rule on instance and period.
func TestUsageBilled(t *testing.T) {
	srv := newUsageServer(t)
	h1, h2, h3 := testNow.Add(-3*time.Hour), testNow.Add(-2*time.Hour), testNow.Add(-time.Hour)
	with := func(r protocol.UsageRecord, value, pkg string) protocol.UsageRecord {
		r.UsageValue, r.RelatePkgInstance = value, pkg
		return r
	}
	old := oldRec("inst-b", h3)
	old.UsageValue = "2"
	pushes := []call{
		signedNew(testUsageKey, testNow, newBody(t,
			with(rec("inst-a", "sn-a1", h1), "0.0001", ""),
			with(rec("inst-a", "sn-a2", h2), "99999999.9999", "pkg-1"),
			with(rec("inst-b", "sn-b1", h1), "1.25", ""),
		)),
		signedNew(testUsageKey, testNow, newBody(t,
			with(rec("inst-a", "sn-a1", h1), "5", ""),      // a retry: the first value stays
			with(rec("inst-a", "sn-other", h2), "7", ""),   // same period, other sn: ignored
			with(rec("inst-a", "sn-a3", h3), "0.1000", ""), // new
		)),
		oldPush(testSK, oldBody(t, old, oldRec("inst-b", h1))), // new period; then a repeat of sn-b1's period
	}
	for i, c := range pushes {
		if got := c.do(t, srv); got.Code != protocol.MKTSuccess {
			t.Fatalf("push %d: answer %d %s", i, got.Status, got.Raw)
		}
	}
	got := srv.Billed()
	want := []mockapi.BilledInstance{
		{InstanceID: "inst-a", Total: 1 + 999999999999 + 1000, Records: 3, Duplicates: 2, Periods: []mockapi.BilledPeriod{
			{Begin: h1, End: h1.Add(time.Hour), MeteringSN: "sn-a1", Value: 1, Received: testNow, API: mockapi.UsageAPINew, Duplicates: 1},
			{Begin: h2, End: h2.Add(time.Hour), MeteringSN: "sn-a2", Value: 999999999999, Received: testNow, API: mockapi.UsageAPINew, RelatedPkgInstance: "pkg-1", Duplicates: 1},
			{Begin: h3, End: h3.Add(time.Hour), MeteringSN: "sn-a3", Value: 1000, Received: testNow, API: mockapi.UsageAPINew},
		}},
		{InstanceID: "inst-b", Total: 12500 + 20000, Records: 2, Duplicates: 1, Periods: []mockapi.BilledPeriod{
			{Begin: h1, End: h1.Add(time.Hour), MeteringSN: "sn-b1", Value: 12500, Received: testNow, API: mockapi.UsageAPINew, Duplicates: 1},
			{Begin: h3, End: h3.Add(time.Hour), Value: 20000, Received: testNow, API: mockapi.UsageAPIOld},
		}},
	}
	for i := range got {
		for j := range got[i].Periods {
			got[i].Periods[j].Received = got[i].Periods[j].Received.UTC()
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("billed\n%+v\nwant\n%+v", got, want)
	}
	if s := protocol.DecimalFromUnits(got[0].Total).String(); s != "100000000.1" {
		t.Errorf("inst-a total %s, want 100000000.1", s)
	}
	if _, ok := srv.BilledInstance("inst-none"); ok {
		t.Error("BilledInstance found an instance nothing was pushed for")
	}
}

// The instance lookup: unknown instances and packages MKT.9001, usage
// before the start or after the release MKT.9002 naming the record, and
// values beyond Double(12,4) MKT.0101.
func TestUsagePushInstanceBounds(t *testing.T) {
	start := testNow.Add(-5 * time.Hour)
	released := testNow.Add(-time.Hour)
	instances := map[string]mockapi.UsageInstance{
		"live":     {Start: start},
		"released": {Start: start, Released: released},
		"pkg":      {Start: start},
		"nostart":  {},
	}
	at := func(r protocol.UsageRecord, begin, end time.Time) protocol.UsageRecord {
		r.BeginTime, r.EndTime = protocol.FormatUsageTime(begin), protocol.FormatUsageTime(end)
		return r
	}
	pkg := func(r protocol.UsageRecord, p string) protocol.UsageRecord { r.RelatePkgInstance = p; return r }
	value := func(r protocol.UsageRecord, v string) protocol.UsageRecord { r.UsageValue = v; return r }
	ok := rec("live", "sn-ok", start)
	tests := []struct {
		name string
		recs []protocol.UsageRecord
		code string
		msg  string
	}{
		{"begin at the start", []protocol.UsageRecord{ok}, "MKT.0000", ""},
		{"begin a second before the start", []protocol.UsageRecord{ok, at(rec("live", "sn-2", start), start.Add(-time.Second), start.Add(time.Hour))}, "MKT.9002",
			"usage_records[1].begin_time " + protocol.FormatUsageTime(start.Add(-time.Second)) + " is before instance live started (" + protocol.FormatUsageTime(start) + ")"},
		{"hour containing the start", []protocol.UsageRecord{at(rec("live", "sn-2", start), start.Add(-30*time.Minute), start.Add(30*time.Minute))}, "MKT.9002", "usage_records[0].begin_time"},
		{"end at the release", []protocol.UsageRecord{at(rec("released", "sn-3", start), released.Add(-time.Hour), released)}, "MKT.0000", ""},
		{"end after the release", []protocol.UsageRecord{at(rec("released", "sn-3", start), released.Add(-30*time.Minute), released.Add(30*time.Minute))}, "MKT.9002",
			"usage_records[0].end_time " + protocol.FormatUsageTime(released.Add(30*time.Minute)) + " is after instance released was released (" + protocol.FormatUsageTime(released) + ")"},
		{"not released: any end", []protocol.UsageRecord{at(rec("live", "sn-4", start), testNow.Add(-time.Hour), testNow)}, "MKT.0000", ""},
		{"no start known", []protocol.UsageRecord{rec("nostart", "sn-5", testNow.AddDate(0, 0, -20))}, "MKT.0000", ""},
		{"unknown instance", []protocol.UsageRecord{ok, rec("gone", "sn-6", start)}, "MKT.9001", "usage_records[1].instance_id gone"},
		{"known package", []protocol.UsageRecord{pkg(ok, "pkg")}, "MKT.0000", ""},
		{"unknown package", []protocol.UsageRecord{pkg(ok, "pkg-gone")}, "MKT.9001", "usage_records[0].relate_pkg_instance pkg-gone"},
		{"largest value", []protocol.UsageRecord{value(ok, "99999999.9999")}, "MKT.0000", ""},
		{"value beyond Double(12,4)", []protocol.UsageRecord{ok, value(rec("live", "sn-7", start), "100000000")}, "MKT.0101", "usage_records[1].usage_value: more than 99999999.9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUsageServer(t)
			srv.SetInstanceLookup(func(id string) (mockapi.UsageInstance, bool) { in, ok := instances[id]; return in, ok })
			got := signedNew(testUsageKey, testNow, newBody(t, tt.recs...)).do(t, srv)
			if got.Code != tt.code || !strings.Contains(got.Msg, tt.msg) {
				t.Fatalf("answer %d %s, want %s with %q", got.Status, got.Raw, tt.code, tt.msg)
			}
			kept := 0
			if tt.code == protocol.MKTSuccess {
				kept = len(tt.recs)
			}
			if n := len(srv.UsageRecords()); n != kept {
				t.Errorf("kept %d records, want %d", n, kept)
			}
		})
	}
	// The old push is checked the same way.
	srv := newUsageServer(t)
	srv.SetInstanceLookup(func(id string) (mockapi.UsageInstance, bool) { in, ok := instances[id]; return in, ok })
	early := oldRec("live", start.Add(-time.Hour))
	if got := oldPush(testSK, oldBody(t, early)).do(t, srv); got.Code != protocol.MKTInvalidUsageEntities || !strings.Contains(got.Msg, "usage_records[0].begin_time") {
		t.Errorf("old push before the start: %d %s, want MKT.9002", got.Status, got.Raw)
	}
}

// With the fail rate at 1 every push fails one of the three ways, all
// three come up, and a record kept by a push whose answer was lost is
// billed once however often it is retried: every later push of it is a
// duplicate.
func TestUsageFailRate(t *testing.T) {
	srv := newUsageServer(t)
	srv.SetUsageFailRate(1)
	body := newBody(t, rec("inst-1", "sn-1", testNow.Add(-time.Hour)))
	const tries = 60 // all three kinds come up but with odds of 3·(2/3)^60
	failed := 0
	for range tries {
		status, code := pushWithin(t, srv, signedNew(testUsageKey, testNow, body), 50*time.Millisecond)
		switch {
		case status == 0: // held until the client gave up
		case status == http.StatusInternalServerError && code == protocol.MKTInternalError:
		default:
			t.Fatalf("push with the fail rate at 1 answered %d %s", status, code)
		}
		failed++
	}
	kinds := map[string]int{}
	// The log entry of a held push is written once the handler sees the
	// client gone.
	waitUntil(t, "the request log", func() bool {
		clear(kinds)
		for _, r := range srv.Requests() {
			kinds[r.Fault]++
		}
		return kinds[mockapi.FaultUsageError]+kinds[mockapi.FaultUsageHold]+kinds[mockapi.FaultUsageKeptHold] == tries
	})
	for _, k := range []string{mockapi.FaultUsageError, mockapi.FaultUsageHold, mockapi.FaultUsageKeptHold} {
		if kinds[k] == 0 {
			t.Errorf("no %s in %d pushes: %v", k, tries, kinds)
		}
	}
	for _, r := range srv.Requests() {
		if r.Fault != mockapi.FaultUsageError && r.Status != 0 {
			t.Errorf("a held push was answered: %+v", r)
		}
	}

	srv.SetUsageFailRate(0)
	if status, code := pushWithin(t, srv, signedNew(testUsageKey, testNow, body), 5*time.Second); status != http.StatusOK || code != protocol.MKTSuccess {
		t.Fatalf("push with the fail rate at 0: %d %s", status, code)
	}
	b, _ := srv.BilledInstance("inst-1")
	if b.Records != 1 || b.Total != 15000 || b.Duplicates != kinds[mockapi.FaultUsageKeptHold] {
		t.Errorf("billed %+v after %d kept-then-held pushes and one answered, want 1 record of 1.5 and %d duplicates",
			b, kinds[mockapi.FaultUsageKeptHold], kinds[mockapi.FaultUsageKeptHold])
	}
	if n := len(srv.UsageRecords()); n != kinds[mockapi.FaultUsageKeptHold]+1 {
		t.Errorf("%d records logged, want one per kept-then-held push and the answered one", n)
	}
}

// pushWithin sends c and gives up after d: status 0 when no answer came.
func pushWithin(t *testing.T, srv *openapitest.Server, c call, d time.Duration) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, c.method, srv.URL()+c.path, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			t.Fatalf("push: %v", err)
		}
		return 0, ""
	}
	defer resp.Body.Close()
	var r reply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("push answer: %v", err)
	}
	return resp.StatusCode, r.Code
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The push body is read strictly, new and old alike: no key twice (which
// encoding/json would resolve to the last), no field the push does not
// have at any level, keys in natural (ascending) order in every object
// (saas-v2.md §7.2), valid UTF-8 and no NUL; each refused with MKT.0101
// naming the field. Bodies marshalled from the protocol structs pass.
func TestUsagePushStrictBody(t *testing.T) {
	b := protocol.FormatUsageTime(testNow.Add(-2 * time.Hour))
	e := protocol.FormatUsageTime(testNow.Add(-time.Hour))
	// newRec and oldRec are a record's members in natural order.
	newRec := `"begin_time":"` + b + `","end_time":"` + e + `","instance_id":"inst-1","metering_sn":"sn-1","record_time":"` + e + `","usage_value":"1.5"`
	oldRec := `"begin_time":"` + b + `","end_time":"` + e + `","instance_id":"inst-1","product_id":"OFFI-1","record_time":"` + e + `","usage_value":"1.5"`
	body := func(members string) []byte { return []byte(`{"usage_records":[{` + members + `}]}`) }
	reversed := `"usage_value":"1.5","record_time":"` + e + `","metering_sn":"sn-1","instance_id":"inst-1","end_time":"` + e + `","begin_time":"` + b + `"`
	tests := []struct {
		name string
		call call
		code string
		msg  string
	}{
		{"new: natural order", signedNew(testUsageKey, testNow, body(newRec)), protocol.MKTSuccess, "success"},
		{"new: with relate_pkg_instance", signedNew(testUsageKey, testNow, body(strings.Replace(newRec, `,"usage_value"`, `,"relate_pkg_instance":"inst-1","usage_value"`, 1))), protocol.MKTSuccess, "success"},
		{"new: keys reversed", signedNew(testUsageKey, testNow, body(reversed)), protocol.MKTInvalidParam,
			`usage_records[0].record_time: key "record_time" after "usage_value": keys must be in natural (ascending) order`},
		{"new: two keys swapped", signedNew(testUsageKey, testNow, body(strings.Replace(newRec, `"begin_time":"`+b+`","end_time":"`+e+`"`, `"end_time":"`+e+`","begin_time":"`+b+`"`, 1))),
			protocol.MKTInvalidParam, `usage_records[0].begin_time: key "begin_time" after "end_time"`},
		{"new: a key twice", signedNew(testUsageKey, testNow, body(newRec+`,"usage_value":"9"`)), protocol.MKTInvalidParam, "usage_records[0].usage_value: duplicate key"},
		{"new: a key twice apart from case", signedNew(testUsageKey, testNow, body(strings.Replace(newRec, `"usage_value"`, `"Usage_Value":"9","usage_value"`, 1))),
			protocol.MKTInvalidParam, "usage_records[0].usage_value: duplicate key"},
		{"new: unknown record field", signedNew(testUsageKey, testNow, body(strings.Replace(newRec, `"end_time"`, `"comment":"x","end_time"`, 1))),
			protocol.MKTInvalidParam, "usage_records[0].comment: unknown field (the fields are begin_time, end_time, instance_id, metering_sn, record_time, relate_pkg_instance, usage_value)"},
		{"new: a field in other case", signedNew(testUsageKey, testNow, body(strings.Replace(newRec, `"usage_value"`, `"USAGE_VALUE"`, 1))),
			protocol.MKTInvalidParam, "usage_records[0].USAGE_VALUE: unknown field"},
		{"new: unknown top-level field", signedNew(testUsageKey, testNow, []byte(`{"usage_records":[{`+newRec+`}],"zone":"x"}`)), protocol.MKTInvalidParam, "zone: unknown field (the fields are usage_records)"},
		{"new: keys out of order in a nested object", signedNew(testUsageKey, testNow, body(strings.Replace(newRec, `"usage_value":"1.5"`, `"usage_value":{"b":1,"a":2}`, 1))),
			protocol.MKTInvalidParam, `usage_records[0].usage_value.a: key "a" after "b"`},
		{"new: NUL", signedNew(testUsageKey, testNow, body(strings.Replace(newRec, `inst-1`, `inst-1\u0000`, 1))), protocol.MKTInvalidParam, "usage_records[0].instance_id: contains a NUL"},
		{"new: invalid UTF-8", signedNew(testUsageKey, testNow, body(strings.Replace(newRec, `inst-1`, "inst-\xff", 1))), protocol.MKTInvalidParam, "usage_records[0].instance_id: not valid UTF-8"},
		{"old: natural order", oldPush(testSK, body(oldRec)), protocol.MKTSuccess, "success"},
		{"old: keys reversed", oldPush(testSK, body(`"usage_value":"1.5","record_time":"`+e+`","product_id":"OFFI-1","instance_id":"inst-1","end_time":"`+e+`","begin_time":"`+b+`"`)),
			protocol.MKTInvalidParam, `usage_records[0].record_time: key "record_time" after "usage_value"`},
		{"old: metering_sn is not a field", oldPush(testSK, body(strings.Replace(oldRec, `"product_id"`, `"metering_sn":"sn-1","product_id"`, 1))),
			protocol.MKTInvalidParam, "usage_records[0].metering_sn: unknown field (the fields are begin_time, end_time, instance_id, product_id, record_time, relate_pkg_instance, usage_value)"},
		{"old: a key twice", oldPush(testSK, body(strings.Replace(oldRec, `"instance_id":"inst-1"`, `"instance_id":"inst-1","instance_id":"inst-2"`, 1))), protocol.MKTInvalidParam, "usage_records[0].instance_id: duplicate key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUsageServer(t)
			got := tt.call.do(t, srv)
			if got.Code != tt.code || !strings.Contains(got.Msg, tt.msg) {
				t.Fatalf("answer %d %s, want %s with %q", got.Status, got.Raw, tt.code, tt.msg)
			}
			want, status := 0, http.StatusBadRequest
			if tt.code == protocol.MKTSuccess {
				want, status = 1, http.StatusOK
			}
			if got.Status != status || len(srv.UsageRecords()) != want {
				t.Errorf("status %d with %d records kept, want %d with %d", got.Status, len(srv.UsageRecords()), status, want)
			}
		})
	}
}
