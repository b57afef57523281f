package isv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/usage"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
	kstore "github.com/koobridge/koobridge/store"
)

const usageToken = "usage-token-of-the-isv-tests-0123"

// usageEnv is an env whose Open API client (Query Order and the usage
// push) talks to api, an imitation that checks the new push's signature
// with key1; the usage API takes usageToken and pushes closed periods at
// once.
func usageEnv(t *testing.T) (*env, *openapitest.Server) {
	t.Helper()
	api := openapitest.NewServer(t, testAK, testSK)
	api.SetUsageKey(key1)
	api.SetRequireAPIGOnUsage(true)
	e := newEnv(t, func(c *isv.Config) {
		c.Orders = nil
		c.OpenAPI = isv.OpenAPI{URL: api.URL(), AK: testAK, SK: testSK}
		c.Usage = isv.UsageConfig{Tokens: []string{usageToken}, PushInterval: 50 * time.Millisecond, Settle: time.Millisecond}
	})
	return e, api
}

// orderLine is one line of a pay-per-use order.
type orderLine struct{ id, mode, product string }

// addPayPerUseOrder makes Query Order answer a NEW order placed at created
// with lines.
func addPayPerUseOrder(api *openapitest.Server, orderID string, created time.Time, lines ...orderLine) {
	o := protocol.OrderInfo{
		OrderID:    protocol.FlexString(orderID),
		OrderType:  protocol.OrderTypeNew,
		CreateTime: protocol.FlexString(protocol.FormatTime14(created)),
		BuyerInfo:  &protocol.BuyerInfo{CustomerID: "cust-ppu", CustomerName: "buyer_ppu", UserName: "buyer_ppu"},
	}
	for _, l := range lines {
		o.OrderLine = append(o.OrderLine, protocol.OrderLine{
			OrderLineID:  protocol.FlexString(l.id),
			ChargingMode: protocol.FlexString(l.mode),
			ProductInfo: protocol.ProductInfoList{{
				ProductID: protocol.FlexString(l.product), SKUCode: "sku-ppu", LinearValue: "1", ProductName: "API calls",
			}},
		})
	}
	api.AddOrder(o)
}

// buyLine plays KooGallery's newInstance of one order line and waits
// until the instance is active.
func (e *env) buyLine(t *testing.T, orderID, lineID string) string {
	t.Helper()
	id := acceptNew(t, e.call(t, newInstanceBody(orderID, lineID), request{}))
	e.waitActive(t, id)
	return id
}

// usageInfo is one usageInfo entry of a queryInstance reply.
type usageInfo struct {
	RelatedInstanceID string      `json:"relatedInstanceId"`
	UsageValue        json.Number `json:"usageValue"`
	StatisticalTime   string      `json:"statisticalTime"`
}

// queryUsage plays KooGallery's queryInstance of id and returns its
// usageInfo.
func (e *env) queryUsage(t *testing.T, id string) []usageInfo {
	t.Helper()
	r := e.call(t, `{"activity":"queryInstance","instanceId":"`+id+`"}`, request{})
	wantCode(t, r, protocol.CodeSuccess)
	var b struct {
		Info []struct {
			InstanceID string      `json:"instanceId"`
			UsageInfo  []usageInfo `json:"usageInfo"`
		} `json:"info"`
	}
	d := json.NewDecoder(bytes.NewReader(r.raw))
	d.UseNumber()
	if err := d.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if len(b.Info) != 1 || b.Info[0].InstanceID != id {
		t.Fatalf("queryInstance %s: %s", id, r.raw)
	}
	return b.Info[0].UsageInfo
}

// TestReportUsage: a pay-per-use instance and a package bought through the
// production interface get usage through ReportUsage; queryInstance then
// answers the cumulative values (per item for the package), and the
// closed period reaches KooGallery once, with its metering_sn and the
// package it belongs to.
func TestReportUsage(t *testing.T) {
	e, api := usageEnv(t)
	ctx := context.Background()
	now := time.Now().UTC()
	created := now.Add(-2 * time.Hour)
	addPayPerUseOrder(api, "CS-PPU-1", created, orderLine{"CS-PPU-1-000001", protocol.ChargingOnDemand, "OFFI-PPU"})
	addPayPerUseOrder(api, "CS-PKG-1", created,
		orderLine{"CS-PKG-1-000001", protocol.ChargingOnDemandPkg, "OFFI-PKG"},
		orderLine{"CS-PKG-1-000002", protocol.ChargingOnDemand, "OFFI-PKG-ITEM"})
	ppu := e.buyLine(t, "CS-PPU-1", "CS-PPU-1-000001")
	pkg := e.buyLine(t, "CS-PKG-1", "CS-PKG-1-000001")
	item := e.buyLine(t, "CS-PKG-1", "CS-PKG-1-000002")

	prevStart := now.Truncate(time.Hour).Add(-time.Hour)
	prev := prevStart.Add(30 * time.Minute) // in the last hour, which has closed
	cur := now.Add(-time.Second).Truncate(time.Millisecond)
	recs := []isv.UsageRecord{
		{IdempotencyKey: "u1", InstanceID: ppu, Value: "1.5", Time: prev},
		{IdempotencyKey: "u2", InstanceID: ppu, Value: "2.25", Time: cur},
		{IdempotencyKey: "u3", InstanceID: item, Value: "4", Time: prev},
		{IdempotencyKey: "u4", InstanceID: pkg, Value: "0.5", Time: prev},
		{IdempotencyKey: "u5", InstanceID: ppu, Value: "1.00001", Time: cur},
		{IdempotencyKey: "u6", InstanceID: "no-such-instance", Value: "1", Time: cur},
		{IdempotencyKey: "u7", InstanceID: ppu, Value: "1", Time: created.Add(-time.Minute)},
	}
	res, err := e.srv.ReportUsage(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	want := []isv.UsageResult{
		{IdempotencyKey: "u1", Status: isv.UsageAccepted},
		{IdempotencyKey: "u2", Status: isv.UsageAccepted},
		{IdempotencyKey: "u3", Status: isv.UsageAccepted},
		{IdempotencyKey: "u4", Status: isv.UsageAccepted},
		{IdempotencyKey: "u5", Status: isv.UsageRejected, Error: "value: 1.00001 has more than 4 decimals"},
		{IdempotencyKey: "u6", Status: isv.UsageRejected, Error: "instanceId: unknown instance no-such-instance"},
		{IdempotencyKey: "u7", Status: isv.UsageRejected},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results for %d records: %+v", len(res), len(recs), res)
	}
	for i, w := range want {
		if w.Error == "" && w.Status == isv.UsageRejected {
			w.Error = res[i].Error // checked below
		}
		if res[i] != w {
			t.Errorf("record %d: %+v, want %+v", i, res[i], w)
		}
	}
	if !strings.Contains(res[6].Error, "before the instance started") {
		t.Errorf("usage before the order was placed: %q", res[6].Error)
	}

	// Sent again, as after a lost answer: duplicates, nothing added.
	again, err := e.srv.ReportUsage(ctx, recs[:2])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.Status != isv.UsageDuplicate || r.IdempotencyKey != recs[i].IdempotencyKey {
			t.Errorf("again, record %d: %+v, want a duplicate", i, r)
		}
	}
	if _, err := e.srv.ReportUsage(ctx, nil); !errors.Is(err, isv.ErrUsageBatch) {
		t.Errorf("ReportUsage of no records: %v, want ErrUsageBatch", err)
	}
	if _, err := e.srv.ReportUsage(ctx, make([]isv.UsageRecord, 1001)); !errors.Is(err, isv.ErrUsageBatch) {
		t.Errorf("ReportUsage of 1001 records: %v, want ErrUsageBatch", err)
	}

	// queryInstance: the cumulative value, measured at the latest record.
	if got := e.queryUsage(t, ppu); len(got) != 1 || got[0].UsageValue != "3.75" || got[0].RelatedInstanceID != "" ||
		got[0].StatisticalTime != protocol.FormatTime17(cur) {
		t.Errorf("queryInstance %s: usageInfo %+v, want 3.75 at %s", ppu, got, protocol.FormatTime17(cur))
	}
	if got := e.queryUsage(t, item); len(got) != 1 || got[0].UsageValue != "4" {
		t.Errorf("queryInstance of the item: usageInfo %+v, want 4", got)
	}
	gotPkg := e.queryUsage(t, pkg)
	slices.SortFunc(gotPkg, func(a, b usageInfo) int { return strings.Compare(a.RelatedInstanceID, b.RelatedInstanceID) })
	wantPkg := []usageInfo{
		{RelatedInstanceID: "", UsageValue: "0.5", StatisticalTime: protocol.FormatTime17(prev)},
		{RelatedInstanceID: item, UsageValue: "4", StatisticalTime: protocol.FormatTime17(prev)},
	}
	if !slices.Equal(gotPkg, wantPkg) {
		t.Errorf("queryInstance of the package: usageInfo %+v, want %+v", gotPkg, wantPkg)
	}

	// The last hour has closed: its periods are pushed, each once, with
	// the metering_sn of (instance, period) and the package it belongs to.
	begin := protocol.FormatUsageTime(prevStart)
	type pushed struct{ value, sn, pkg string }
	wantPushed := map[string]pushed{
		ppu:  {"1.5", usage.MeteringSN(ppu, prevStart), ""},
		item: {"4", usage.MeteringSN(item, prevStart), pkg},
		pkg:  {"0.5", usage.MeteringSN(pkg, prevStart), pkg},
	}
	var got map[string][]mockapi.UsageRecord
	eventually(t, "the last hour's periods pushed", func() bool {
		got = map[string][]mockapi.UsageRecord{}
		for _, r := range api.UsageRecords() {
			if r.BeginTime == begin {
				got[r.InstanceID] = append(got[r.InstanceID], r)
			}
		}
		return len(got) == len(wantPushed)
	})
	for id, w := range wantPushed {
		rs := got[id]
		if len(rs) != 1 {
			t.Errorf("%s: %d records for the period, want 1: %+v", id, len(rs), rs)
			continue
		}
		r := rs[0]
		if r.API != mockapi.UsageAPINew || r.UsageValue != w.value || r.MeteringSN != w.sn || r.RelatedPkgInstance != w.pkg ||
			r.EndTime != protocol.FormatUsageTime(prevStart.Add(time.Hour)) || r.Duplicate {
			t.Errorf("%s: pushed %+v, want value %s, metering_sn %s, relate_pkg_instance %q, new API, the whole hour", id, r, w.value, w.sn, w.pkg)
		}
	}

	for status, n := range map[string]float64{"accepted": 4, "duplicate": 2, "rejected": 3} {
		if got := e.metric(t, "koobridge_usage_records_total", map[string]string{"status": status}); got != n {
			t.Errorf("koobridge_usage_records_total{status=%q} = %v, want %v", status, got, n)
		}
	}
	eventually(t, "the periods counted accepted", func() bool {
		return e.metric(t, "koobridge_usage_periods_total", map[string]string{"state": "accepted"}) == 3
	})
}

// TestUsageHandler: the usage API through a real Server, mounted at
// UsagePath in the vendor's own mux.
func TestUsageHandler(t *testing.T) {
	e, api := usageEnv(t)
	addPayPerUseOrder(api, "CS-PPU-H", time.Now().Add(-time.Hour), orderLine{"CS-PPU-H-000001", protocol.ChargingOnDemand, "OFFI-PPU"})
	id := e.buyLine(t, "CS-PPU-H", "CS-PPU-H-000001")
	mux := http.NewServeMux()
	mux.Handle(isv.UsagePath, e.srv.UsageHandler())
	web := httptest.NewServer(mux)
	defer web.Close()

	at := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	body := `{"records":[{"idempotencyKey":"h1","instanceId":"` + id + `","value":2.5,"time":"` + at + `"},` +
		`{"idempotencyKey":"h2","instanceId":"` + id + `","value":"1","time":"` + at + `"}]}`
	post := func(auth string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, web.URL+isv.UsagePath, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(raw)
	}
	if status, raw := post(""); status != http.StatusUnauthorized {
		t.Errorf("without the token: HTTP %d: %s", status, raw)
	}
	status, raw := post("Bearer " + usageToken)
	wantBody := `{"results":[{"idempotencyKey":"h1","status":"accepted"},` +
		`{"idempotencyKey":"h2","status":"rejected","error":"value: must be a number, not a string"}]}` + "\n"
	if status != http.StatusOK || raw != wantBody {
		t.Errorf("HTTP %d %s, want 200 %s", status, raw, wantBody)
	}
	if status, raw = post("Bearer " + usageToken); status != http.StatusOK || !strings.Contains(raw, `{"idempotencyKey":"h1","status":"duplicate"}`) {
		t.Errorf("again: HTTP %d %s, want h1 a duplicate", status, raw)
	}
	if got := e.queryUsage(t, id); len(got) != 1 || got[0].UsageValue != "2.5" {
		t.Errorf("queryInstance: usageInfo %+v, want 2.5", got)
	}
}

// TestUsageConfig: without tokens the usage API answers 404 while
// ReportUsage works; a short token is refused.
func TestUsageConfig(t *testing.T) {
	e := newEnv(t)
	web := httptest.NewServer(e.srv.UsageHandler())
	defer web.Close()
	req, err := http.NewRequest(http.MethodPost, web.URL+isv.UsagePath, strings.NewReader(`{"records":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer anything-at-all-1234")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("usage API without tokens: HTTP %d, want 404", resp.StatusCode)
	}
	res, err := e.srv.ReportUsage(context.Background(), []isv.UsageRecord{{IdempotencyKey: "c1", InstanceID: "nope", Value: "1", Time: time.Now()}})
	if err != nil || len(res) != 1 || res[0].Status != isv.UsageRejected {
		t.Errorf("ReportUsage without tokens: %+v, %v", res, err)
	}

	for _, c := range []struct {
		name string
		cfg  isv.UsageConfig
		want string
	}{
		{"short token", isv.UsageConfig{Tokens: []string{"short"}}, "usage token 1 is shorter than 16 characters"},
		{"negative interval", isv.UsageConfig{PushInterval: -time.Second}, "negative usage push interval"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := isv.Config{
				Keys: isv.Keys{Basic: []string{key1}}, DB: newDB(t), DataKey: sealKey(t),
				OpenAPI: isv.OpenAPI{AK: testAK, SK: testSK}, Provisioner: provision.NewDemo(""), Usage: c.cfg,
			}
			if _, err := isv.New(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("isv.New: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// newDB opens a fresh SQLite database for the test.
func newDB(t *testing.T) *kstore.DB {
	t.Helper()
	db, err := kstore.Open(context.Background(), filepath.Join(t.TempDir(), "koobridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
