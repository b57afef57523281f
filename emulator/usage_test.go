package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// A purchase with an orderTime is placed then: the order's createTime,
// its ID, the subscription's start and a PERIOD expiry count from it;
// the time is read on the emulated clock.
func TestPurchaseOrderTime(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	now := v.e.Now().UTC().Truncate(time.Second)
	at := now.Add(-3*time.Hour + 500*time.Millisecond) // cut to the second
	want := at.Truncate(time.Second)

	_, sub := v.purchase(PurchaseRequest{ProductID: onDemandID, OrderTime: at})
	info := queryOrder(t, v.e, sub.OrderID)
	if !sub.StartTime.Equal(want) || string(info.CreateTime) != protocol.FormatTime14(want) ||
		!strings.HasPrefix(sub.OrderID, "CS"+want.Format("0601021504")) {
		t.Errorf("ON_DEMAND at %v: start %v, createTime %s, order %s", want, sub.StartTime, info.CreateTime, sub.OrderID)
	}

	tenDays := now.AddDate(0, 0, -10)
	_, sub = v.purchase(PurchaseRequest{ProductID: periodID, OrderTime: tenDays})
	if !sub.StartTime.Equal(tenDays) || !sub.ExpireTime.Equal(tenDays.AddDate(0, 1, 0)) {
		t.Errorf("PERIOD 10 days back: start %v, expiry %v, want %v and a month later", sub.StartTime, sub.ExpireTime, tenDays)
	}

	_, sub = v.purchase(PurchaseRequest{ProductID: onDemandID, Test: true, OrderTime: want})
	if info := queryOrder(t, v.e, sub.OrderID); sub.OrderID != mockapi.MockOnDemand || string(info.CreateTime) != protocol.FormatTime14(want) {
		t.Errorf("test purchase: order %s created %s, want %s at %s", sub.OrderID, info.CreateTime, mockapi.MockOnDemand, protocol.FormatTime14(want))
	}

	_, sub = v.purchase(PurchaseRequest{ProductID: onDemandID})
	if info := queryOrder(t, v.e, sub.OrderID); sub.StartTime.Before(now) || string(info.CreateTime) != protocol.FormatTime14(sub.StartTime) {
		t.Errorf("purchase without orderTime: start %v, createTime %s, want now (%v)", sub.StartTime, info.CreateTime, now)
	}
	if _, sub = v.play(sub.ID, "unsubscribe"); sub.ReleaseTime.Before(sub.StartTime) || sub.Status != StatusReleased {
		t.Errorf("after unsubscribe: %s, released %v", sub.Status, sub.ReleaseTime)
	}

	for _, tt := range []struct {
		name string
		p    PurchaseRequest
		err  string
	}{
		{"in the future", PurchaseRequest{ProductID: onDemandID, OrderTime: now.Add(time.Minute)}, "is in the future"},
		{"61 days back", PurchaseRequest{ProductID: onDemandID, OrderTime: now.AddDate(0, 0, -61)}, "more than 60 days before"},
		{"license product", PurchaseRequest{ProductID: LicenseProductID, OrderTime: want}, "orderTime is for SaaS products"},
	} {
		if _, err := v.e.Purchase(context.Background(), tt.p); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: Purchase err %v, want %q", tt.name, err, tt.err)
		}
	}

	// The emulated clock decides: a day ahead, a time two hours after
	// the wall clock's now is in the past.
	if err := v.e.Advance(24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	ahead := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	if _, sub = v.purchase(PurchaseRequest{ProductID: onDemandID, OrderTime: ahead}); !sub.StartTime.Equal(ahead) {
		t.Errorf("after a day's advance: start %v, want %v", sub.StartTime, ahead)
	}
}

// POST purchases reads orderTime as RFC 3339 and refuses anything else
// naming the field.
func TestWebAPIPurchaseOrderTime(t *testing.T) {
	w := startWeb(t)
	prod := w.product(protocol.ChargingOnDemand)
	at := w.e.Now().UTC().Truncate(time.Second).Add(-2 * time.Hour)
	tests := []struct {
		name   string
		body   string
		status int
		msg    string
	}{
		{"RFC 3339", `{"productId":"` + prod.ID + `","orderTime":"` + at.Format(time.RFC3339) + `"}`, http.StatusCreated, ""},
		{"with a zone offset", `{"productId":"` + prod.ID + `","orderTime":"` + at.In(time.FixedZone("", 8*3600)).Format(time.RFC3339) + `"}`, http.StatusCreated, ""},
		{"no zone", `{"productId":"` + prod.ID + `","orderTime":"2026-01-02T15:04:05"}`, http.StatusBadRequest, `2026-01-02T15:04:05\": want an RFC 3339 time`},
		{"a number", `{"productId":"` + prod.ID + `","orderTime":1767366245}`, http.StatusBadRequest, "orderTime"},
		{"in the future", `{"productId":"` + prod.ID + `","orderTime":"2999-01-01T00:00:00Z"}`, http.StatusBadRequest, "is in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw := w.do("POST", "/api/emulator/purchases", json.RawMessage(tt.body))
			if status != tt.status || !strings.Contains(string(raw), tt.msg) {
				t.Fatalf("POST purchases %s: %d %s, want %d with %q", tt.body, status, raw, tt.status, tt.msg)
			}
			if status != http.StatusCreated {
				return
			}
			var run Run
			if err := json.Unmarshal(raw, &run); err != nil {
				t.Fatal(err)
			}
			var sub map[string]any
			w.call("GET", "/api/emulator/subscriptions/"+run.SubscriptionID, nil, http.StatusOK, &sub)
			if sub["startTime"] != at.Format(time.RFC3339) {
				t.Errorf("startTime %v, want %s", sub["startTime"], at.Format(time.RFC3339))
			}
		})
	}
}

// usagePush sends a new usage push of recs signed with key to the
// handler at base and returns the HTTP status and error_code; 0 and "" when no answer came
// within d.
func usagePush(t *testing.T, base, key string, d time.Duration, recs ...protocol.UsageRecord) (int, string, string) {
	t.Helper()
	body, err := json.Marshal(protocol.UsagePushRequest{UsageRecords: recs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+mockapi.UsagePath, bytes.NewReader(body))
	ts, nonce := protocol.FormatMillis(time.Now()), NewNonce()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ts", ts)
	req.Header.Set("nonce", nonce)
	req.Header.Set("signature", sign.UsageSignature(key, ts, nonce, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, "", ""
		}
		t.Fatalf("usage push: %v", err)
	}
	defer resp.Body.Close()
	var r struct {
		Code string `json:"error_code"`
		Msg  string `json:"error_msg"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("usage push answer: %v", err)
	}
	return resp.StatusCode, r.Code, r.Msg
}

// hourRecord is a usage record of the hour from begin.
func hourRecord(instance, sn, value string, begin time.Time) protocol.UsageRecord {
	return protocol.UsageRecord{
		BeginTime: protocol.FormatUsageTime(begin), EndTime: protocol.FormatUsageTime(begin.Add(time.Hour)),
		InstanceID: instance, MeteringSN: sn, RecordTime: protocol.FormatUsageTime(begin.Add(time.Hour)), UsageValue: value,
	}
}

// The usage push knows the emulator's instances: their start (the
// order's createTime) and release bound the periods it takes, and what it
// took is billed per instance, on the JSON API and the web page.
func TestUsageAgainstInstances(t *testing.T) {
	w := startWeb(t)
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	run := w.buy(PurchaseRequest{ProductID: w.product(protocol.ChargingOnDemand).ID, OrderTime: start})
	sub, _ := w.e.Subscription(run.SubscriptionID)
	id := sub.InstanceID
	base := w.srv.URL
	const d = 5 * time.Second

	if _, code, msg := usagePush(t, base, webTestKey, d, hourRecord(id, "sn-early", "1", start.Add(-time.Hour))); code != protocol.MKTInvalidUsageEntities || !strings.Contains(msg, "before instance "+id+" started") {
		t.Errorf("usage before the start: %s %s, want MKT.9002", code, msg)
	}
	if _, code, msg := usagePush(t, base, webTestKey, d, hourRecord("never-issued", "sn-x", "1", start)); code != protocol.MKTInstanceNotFound {
		t.Errorf("usage of an unknown instance: %s %s, want MKT.9001", code, msg)
	}
	if _, code, msg := usagePush(t, base, webTestKey, d, hourRecord(id, "sn-1", "1.5", start), hourRecord(id, "sn-2", "0.0001", start.Add(time.Hour))); code != protocol.MKTSuccess {
		t.Fatalf("usage of two hours: %s %s", code, msg)
	}
	// A retry under another sn is ignored, first one wins.
	if _, code, msg := usagePush(t, base, webTestKey, d, hourRecord(id, "sn-1b", "9", start)); code != protocol.MKTSuccess {
		t.Fatalf("a repeated period: %s %s, want MKT.0000", code, msg)
	}

	if r, err := w.e.Play(context.Background(), sub.ID, "unsubscribe"); err != nil || !r.OK {
		t.Fatalf("unsubscribe: %+v %v", r, err)
	}
	sub, _ = w.e.Subscription(sub.ID)
	afterRelease := hourRecord(id, "sn-late", "1", sub.ReleaseTime.Truncate(time.Hour))
	if _, code, msg := usagePush(t, base, webTestKey, d, afterRelease); code != protocol.MKTInvalidUsageEntities || !strings.Contains(msg, "after instance "+id+" was released") {
		t.Errorf("usage after the release: %s %s, want MKT.9002", code, msg)
	}
	clamped := afterRelease
	clamped.MeteringSN, clamped.EndTime = "sn-3", protocol.FormatUsageTime(sub.ReleaseTime)
	if _, code, msg := usagePush(t, base, webTestKey, d, clamped); code != protocol.MKTSuccess {
		t.Errorf("usage ending at the release: %s %s, want MKT.0000", code, msg)
	}

	want := BilledInstance{InstanceID: id, Total: 25001, TotalText: "2.5001", Records: 3, Duplicates: 1}
	got, ok := w.e.BilledInstance(id)
	if !ok || got.Total != want.Total || got.TotalText != want.TotalText || got.Records != want.Records || got.Duplicates != want.Duplicates ||
		len(got.Periods) != 3 || got.Periods[0].MeteringSN != "sn-1" || got.Periods[0].ValueText != "1.5" || got.Periods[0].Duplicates != 1 ||
		!got.Periods[0].Begin.Equal(start) || !got.Periods[2].End.Equal(sub.ReleaseTime) {
		t.Errorf("billed %+v, want %+v with periods sn-1 (1 duplicate), sn-2, sn-3", got, want)
	}

	var u struct {
		Instances []BilledInstance `json:"instances"`
	}
	w.call("GET", "/api/emulator/usage", nil, http.StatusOK, &u)
	if len(u.Instances) != 1 || u.Instances[0].TotalText != "2.5001" || len(u.Instances[0].Periods) != 3 {
		t.Errorf("GET usage = %+v", u)
	}
	w.call("GET", "/api/emulator/usage?instance="+url.QueryEscape(id), nil, http.StatusOK, &u)
	if len(u.Instances) != 1 || u.Instances[0].InstanceID != id {
		t.Errorf("GET usage?instance= %+v", u)
	}
	w.call("GET", "/api/emulator/usage?instance=none", nil, http.StatusNotFound, nil)
	w.call("GET", "/api/emulator/usage?periods=maybe", nil, http.StatusBadRequest, nil)
	if status, raw := w.do("GET", "/api/emulator/usage?periods=false", nil); status != http.StatusOK ||
		strings.TrimSpace(string(raw)) != `{"instances":[{"instanceId":"`+id+`","totalUnits":25001,"total":"2.5001","records":3,"duplicates":1}]}` {
		t.Errorf("GET usage?periods=false = %d %s", status, raw)
	}
	var recs []UsageRecord
	w.call("GET", "/api/emulator/usage/records", nil, http.StatusOK, &recs)
	if len(recs) != 4 || !recs[2].Duplicate {
		t.Errorf("usage records %+v, want 4 with the third a duplicate", recs)
	}

	status, page := w.page("/usage")
	for _, want := range []string{`id="billed"`, `data-instance-id="` + id + `"`, `<td data-testid="billed-total">2.5001</td>`,
		`<td data-testid="billed-duplicates">1</td>`, `data-billed-periods="` + id + `"`, `<td data-testid="period-value">0.0001</td>`} {
		if status != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("/usage (%d) lacks %s", status, want)
		}
	}
}

// The usageFailRate fault: validated on the JSON API and the form, and
// wired to the usage pushes.
func TestUsageFailRateFault(t *testing.T) {
	w := startWeb(t)
	for _, body := range []string{`{"usageFailRate":1.5}`, `{"usageFailRate":-0.1}`, `{"usageFailRate":"0.3"}`} {
		if status, raw := w.do("PUT", "/api/emulator/faults", json.RawMessage(body)); status != http.StatusBadRequest || !strings.Contains(string(raw), "usageFailRate") {
			t.Errorf("PUT faults %s: %d %s, want 400 naming usageFailRate", body, status, raw)
		}
	}
	for _, v := range []string{"abc", "2", "NaN"} {
		if status, page := w.formPage("/faults", url.Values{"usageFailRate": {v}}); status != http.StatusBadRequest || !strings.Contains(page, "usageFailRate") {
			t.Errorf("form usageFailRate=%s: %d, want 400 naming usageFailRate", v, status)
		}
	}
	if got := w.e.Faults(); got != (Faults{}) {
		t.Fatalf("refused faults applied: %+v", got)
	}
	if status, _ := w.form("/faults", url.Values{"usageFailRate": {"1"}}); status != http.StatusSeeOther {
		t.Fatalf("form usageFailRate=1: %d", status)
	}
	if got := w.e.Faults(); got != (Faults{UsageFailRate: 1}) {
		t.Fatalf("faults after the form: %+v", got)
	}
	if _, page := w.page("/faults"); !strings.Contains(page, `id="usageFailRate" value="1"`) {
		t.Error("the faults page does not show the usage fail rate")
	}

	start := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	run := w.buy(PurchaseRequest{ProductID: w.product(protocol.ChargingOnDemand).ID, OrderTime: start})
	sub, _ := w.e.Subscription(run.SubscriptionID)
	status, code, _ := usagePush(t, w.srv.URL, webTestKey, 200*time.Millisecond, hourRecord(sub.InstanceID, "sn-1", "1", start))
	if status != 0 && (status != http.StatusInternalServerError || code != protocol.MKTInternalError) {
		t.Errorf("push with every push failing: %d %s", status, code)
	}
	waitFor(t, "the push in the request log", func() bool {
		for _, r := range w.e.OpenAPIRequests() {
			if r.Path == mockapi.UsagePath {
				return r.Fault == mockapi.FaultUsageError || r.Fault == mockapi.FaultUsageHold || r.Fault == mockapi.FaultUsageKeptHold
			}
		}
		return false
	})
}

// The mocked Open API alone (OpenAPIHandler) checks usage the same way.
func TestOpenAPIHandlerUsageStart(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: onDemandPkgID})
	srv := httptest.NewServer(v.e.OpenAPIHandler())
	defer srv.Close()
	// Bought now: the hour that began before is not its usage.
	if _, code, _ := usagePush(t, srv.URL, testKey, 5*time.Second, hourRecord(sub.InstanceID, "sn-1", "1", sub.StartTime.Add(-time.Hour))); code != protocol.MKTInvalidUsageEntities {
		t.Errorf("usage before a purchase made now: %s, want MKT.9002", code)
	}
}

// The usage push judges an instance's bounds on the wall clock, as the
// seller's pushes run, even when the emulated clock is months ahead (after
// a demo's lifecycles): an instance bought then takes usage from now on.
func TestUsageWithEmulatedClockAhead(t *testing.T) {
	w := startWeb(t)
	if err := w.e.Advance(90 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	run := w.buy(PurchaseRequest{ProductID: w.product(protocol.ChargingOnDemand).ID})
	sub, _ := w.e.Subscription(run.SubscriptionID)
	if sub.StartTime.Before(time.Now().Add(80 * 24 * time.Hour)) {
		t.Fatalf("start %v: want it on the emulated clock, months ahead", sub.StartTime)
	}
	begin := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	if _, code, msg := usagePush(t, w.srv.URL, webTestKey, 5*time.Second, hourRecord(sub.InstanceID, "sn-now", "1", begin)); code != protocol.MKTSuccess {
		t.Errorf("usage from now: %s %s, want MKT.0000", code, msg)
	}
	if _, code, msg := usagePush(t, w.srv.URL, webTestKey, 5*time.Second, hourRecord(sub.InstanceID, "sn-before", "1", begin.Add(-time.Hour))); code != protocol.MKTInvalidUsageEntities {
		t.Errorf("usage from an hour before the purchase: %s %s, want MKT.9002", code, msg)
	}
}

// An instance's start and release are taken to the wall clock when they
// happen: an Advance afterwards does not move them, so the last period,
// ending at the release, is still taken, and usage before the start is
// still refused.
func TestUsageBoundsAfterAdvance(t *testing.T) {
	w := startWeb(t)
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	run := w.buy(PurchaseRequest{ProductID: w.product(protocol.ChargingOnDemand).ID, OrderTime: start})
	sub, _ := w.e.Subscription(run.SubscriptionID)
	if sub.WallStartTime.After(start) || sub.WallStartTime.Before(start.Add(-time.Second)) {
		t.Fatalf("wall-clock start %v, want the orderTime %v (to the second, down)", sub.WallStartTime, start)
	}
	id, base := sub.InstanceID, w.srv.URL
	const d = 5 * time.Second
	// straddle is the hour around at.
	straddle := func(sn string, at time.Time) protocol.UsageRecord {
		return hourRecord(id, sn, "1", at.Add(-30*time.Minute))
	}
	if err := w.e.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, code, msg := usagePush(t, base, webTestKey, d, straddle("sn-early", start)); code != protocol.MKTInvalidUsageEntities || !strings.Contains(msg, "before instance "+id+" started") {
		t.Errorf("usage from half an hour before the start, after an hour's advance: %s %s, want MKT.9002", code, msg)
	}
	if _, code, msg := usagePush(t, base, webTestKey, d, hourRecord(id, "sn-1", "1", start)); code != protocol.MKTSuccess {
		t.Fatalf("the first hour: %s %s", code, msg)
	}

	before := time.Now().UTC().Truncate(time.Second)
	if r, err := w.e.Play(context.Background(), sub.ID, "unsubscribe"); err != nil || !r.OK {
		t.Fatalf("unsubscribe: %+v %v", r, err)
	}
	after := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	sub, _ = w.e.Subscription(sub.ID)
	rel := sub.WallReleaseTime
	if rel.Before(before) || rel.After(after) || !rel.Equal(rel.Truncate(time.Second)) {
		t.Fatalf("wall-clock release %v, want a whole second from %v to %v", rel, before, after)
	}
	if sub.ReleaseTime.Sub(rel) < 59*time.Minute {
		t.Fatalf("emulated release %v, want it an hour ahead of the wall clock's %v", sub.ReleaseTime, rel)
	}
	if err := w.e.Advance(time.Hour); err != nil {
		t.Fatal(err)
	}
	last := hourRecord(id, "sn-last", "2", rel.Add(-30*time.Minute))
	last.EndTime = protocol.FormatUsageTime(rel)
	if _, code, msg := usagePush(t, base, webTestKey, d, last); code != protocol.MKTSuccess {
		t.Errorf("the last period, ending at the wall-clock release, after two hours' advance: %s %s, want MKT.0000", code, msg)
	}
	late := last
	late.MeteringSN, late.BeginTime, late.EndTime = "sn-late", last.EndTime, protocol.FormatUsageTime(rel.Add(time.Second))
	if _, code, msg := usagePush(t, base, webTestKey, d, late); code != protocol.MKTInvalidUsageEntities || !strings.Contains(msg, "after instance "+id+" was released") {
		t.Errorf("usage a second past the release: %s %s, want MKT.9002", code, msg)
	}
	if _, code, msg := usagePush(t, base, webTestKey, d, straddle("sn-early-2", start)); code != protocol.MKTInvalidUsageEntities {
		t.Errorf("usage before the start, after two hours' advance: %s %s, want MKT.9002", code, msg)
	}
	if b, _ := w.e.BilledInstance(id); b.Records != 2 || b.TotalText != "3" {
		t.Errorf("billed %+v, want the first hour and the last period", b)
	}
}

// With the emulated clock running fast (a time scale of an hour per
// second), the bounds stay where they were on the wall clock while the
// emulated clock draws hours ahead.
func TestUsageBoundsWithTimeScale(t *testing.T) {
	clock := &offsetClock{}
	v, _ := startSeller(t, testseller.Faults{}, func(c *Config) { c.TimeScale = 3600; c.NoRetry = true; c.Now = clock.Now })
	_, sub := v.purchase(PurchaseRequest{ProductID: onDemandID})
	_, sub = v.play(sub.ID, "unsubscribe")
	if sub.Status != StatusReleased || sub.WallStartTime.IsZero() || sub.WallReleaseTime.Before(sub.WallStartTime) {
		t.Fatalf("after unsubscribe: %s, wall-clock start %v, release %v", sub.Status, sub.WallStartTime, sub.WallReleaseTime)
	}
	clock.add(2 * time.Second) // two emulated hours
	srv := httptest.NewServer(v.e.OpenAPIHandler())
	defer srv.Close()
	all := hourRecord(sub.InstanceID, "sn-all", "1", sub.WallStartTime)
	all.EndTime = protocol.FormatUsageTime(sub.WallReleaseTime)
	if _, code, msg := usagePush(t, srv.URL, testKey, 5*time.Second, all); code != protocol.MKTSuccess {
		t.Errorf("usage from the wall-clock start to the release, two emulated hours later: %s %s, want MKT.0000", code, msg)
	}
	early := all
	early.MeteringSN, early.BeginTime = "sn-early", protocol.FormatUsageTime(sub.WallStartTime.Add(-time.Second))
	if _, code, msg := usagePush(t, srv.URL, testKey, 5*time.Second, early); code != protocol.MKTInvalidUsageEntities {
		t.Errorf("usage from a second before the start: %s %s, want MKT.9002", code, msg)
	}
}

// GET usage lists each instance's latest periods, DefaultUsagePeriods
// unless ?periods= says, with periodsOmitted counting the rest; ?instance=
// has all of one instance's. The page shows the latest 24. Unknown and
// repeated query parameters are refused, naming them.
func TestUsageAPIPeriods(t *testing.T) {
	w := startWeb(t)
	const hours = 150
	start := time.Now().UTC().Truncate(time.Hour).Add(-(hours + 1) * time.Hour)
	run := w.buy(PurchaseRequest{ProductID: w.product(protocol.ChargingOnDemand).ID, OrderTime: start})
	sub, _ := w.e.Subscription(run.SubscriptionID)
	id := sub.InstanceID
	recs := make([]protocol.UsageRecord, hours)
	for i := range recs {
		recs[i] = hourRecord(id, fmt.Sprintf("sn-%03d", i), "1", start.Add(time.Duration(i)*time.Hour))
	}
	if _, code, msg := usagePush(t, w.srv.URL, webTestKey, 5*time.Second, recs...); code != protocol.MKTSuccess {
		t.Fatalf("push of %d hours: %s %s", hours, code, msg)
	}

	type answer struct {
		Instances []struct {
			InstanceID     string `json:"instanceId"`
			Records        int    `json:"records"`
			PeriodsOmitted int    `json:"periodsOmitted"`
			Periods        []struct {
				MeteringSN string `json:"meteringSn"`
			} `json:"periods"`
		} `json:"instances"`
	}
	tests := []struct {
		query       string
		listed      int // the latest ones, oldest first
		omitted     int
		periodsNull bool
	}{
		{"", DefaultUsagePeriods, hours - DefaultUsagePeriods, false},
		{"?periods=true", DefaultUsagePeriods, hours - DefaultUsagePeriods, false},
		{"?periods=3", 3, hours - 3, false},
		{"?periods=1000", hours, 0, false},
		{"?periods=0", 0, 0, true},
		{"?periods=false", 0, 0, true},
		{"?instance=" + url.QueryEscape(id), hours, 0, false},
		{"?instance=" + url.QueryEscape(id) + "&periods=2", 2, hours - 2, false},
		{"?periods=false&instance=" + url.QueryEscape(id), 0, 0, true},
	}
	for _, tt := range tests {
		var a answer
		w.call("GET", "/api/emulator/usage"+tt.query, nil, http.StatusOK, &a)
		if len(a.Instances) != 1 || a.Instances[0].Records != hours {
			t.Fatalf("GET usage%s: %+v, want the instance with %d records", tt.query, a, hours)
		}
		in := a.Instances[0]
		if len(in.Periods) != tt.listed || in.PeriodsOmitted != tt.omitted ||
			tt.listed > 0 && in.Periods[tt.listed-1].MeteringSN != fmt.Sprintf("sn-%03d", hours-1) ||
			tt.listed > 0 && in.Periods[0].MeteringSN != fmt.Sprintf("sn-%03d", hours-tt.listed) {
			t.Errorf("GET usage%s: %d periods listed, %d omitted, want the latest %d and %d omitted", tt.query, len(in.Periods), in.PeriodsOmitted, tt.listed, tt.omitted)
		}
	}

	for _, tt := range []struct{ query, msg string }{
		{"?period=5", `unknown query parameter \"period\"; the parameters are instance, periods`},
		{"?instance=" + url.QueryEscape(id) + "&instance=other", `query parameter \"instance\" given 2 times`},
		{"?periods=1&periods=2", `query parameter \"periods\" given 2 times`},
		{"?instance=", "instance: empty"},
		{"?periods=1001", `periods \"1001\": want how many`},
		{"?periods=-1", `periods \"-1\"`},
		{"?periods=%2B5", `periods \"+5\"`},
		{"?periods=maybe", `periods \"maybe\"`},
		{"?periods=%zz", "query: invalid URL escape"},
	} {
		if status, raw := w.do("GET", "/api/emulator/usage"+tt.query, nil); status != http.StatusBadRequest || !strings.Contains(string(raw), tt.msg) {
			t.Errorf("GET usage%s: %d %s, want 400 with %q", tt.query, status, raw, tt.msg)
		}
	}
	if status, raw := w.do("GET", "/api/emulator/usage/records?limit=5", nil); status != http.StatusBadRequest || !strings.Contains(string(raw), `unknown query parameter \"limit\"`) {
		t.Errorf("GET usage/records?limit=5: %d %s, want 400 naming limit", status, raw)
	}

	status, page := w.page("/usage")
	// The billed periods, before the log of the records received.
	_, periods, found := strings.Cut(page, "data-billed-periods")
	periods, _, _ = strings.Cut(periods, `id="usage"`)
	if status != http.StatusOK || !found || strings.Count(periods, `data-testid="billed-period"`) != usagePagePeriods ||
		!strings.Contains(page, fmt.Sprintf("%d older ones", hours-usagePagePeriods)) ||
		strings.Index(periods, fmt.Sprintf("sn-%03d", hours-1)) > strings.Index(periods, fmt.Sprintf("sn-%03d", hours-usagePagePeriods)) ||
		strings.Contains(periods, fmt.Sprintf("sn-%03d", hours-usagePagePeriods-1)) {
		t.Errorf("/usage (%d): want the latest %d periods, newest first, and %d older ones counted", status, usagePagePeriods, hours-usagePagePeriods)
	}
}

// Two orders placed in one minute whose random characters come out the
// same still get IDs of their own: a repeated ID would make two purchases
// one instance at the seller.
func TestOrderIDsUnique(t *testing.T) {
	saved := readRandom
	t.Cleanup(func() { readRandom = saved })
	var calls int
	readRandom = func(b []byte) (int, error) {
		calls++
		for i := range b {
			b[i] = byte(calls / 3) // the same bytes for the first two calls
		}
		return len(b), nil
	}
	w := startWeb(t)
	prod := w.product(protocol.ChargingOnDemand).ID
	a := w.buy(PurchaseRequest{ProductID: prod})
	b := w.buy(PurchaseRequest{ProductID: prod})
	sa, _ := w.e.Subscription(a.SubscriptionID)
	sb, _ := w.e.Subscription(b.SubscriptionID)
	if len(sa.Orders) == 0 || len(sb.Orders) == 0 || sa.Orders[0] == sb.Orders[0] {
		t.Fatalf("orders %v and %v: want two IDs", sa.Orders, sb.Orders)
	}
	if sa.InstanceID == sb.InstanceID {
		t.Errorf("one instance %s for two purchases", sa.InstanceID)
	}
}
