package mockapi_test

import (
	"bytes"
	"fmt"
	"net/http"
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

// The record log keeps the last MaxUsageRecords records; a record that
// repeats only a forgotten one is not flagged, one that repeats a kept
// one still is.
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
		rec("inst-0", "sn-0", begin),                      // forgotten: kept as new
		rec("inst-x", "sn-5000", testNow.Add(-time.Hour)), // metering_sn still kept: duplicate
	)
	if got := signedNew(testUsageKey, testNow, again).do(t, srv); got.Code != protocol.MKTSuccess {
		t.Fatalf("push again: answer %d %s", got.Status, got.Raw)
	}
	got = srv.UsageRecords()
	last := got[len(got)-2:]
	if last[0].MeteringSN != "sn-0" || last[0].Duplicate || last[1].InstanceID != "inst-x" || !last[1].Duplicate {
		t.Errorf("records pushed again: %+v, want sn-0 new and inst-x a duplicate", last)
	}
}
