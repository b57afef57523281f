package legacylicense_test

import (
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// TestGetLicense: a purchase is answered with the license and the first
// businessId as instanceId; repeats (other businessIds, at the license
// path too) get the same; the same order with other values is refused.
func TestGetLicense(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		first := e.call(t, buy("CS-L1", "biz-1"), "000000")
		if first.instanceID != "biz-1" || !strings.HasPrefix(first.license, "KOOBRIDGE-DEMO-LICENSE kind=legacy order=CS-L1 ") {
			t.Fatalf("reply %s", first.body)
		}
		again := e.call(t, buy("CS-L1", "biz-2"), "000000")
		alias := e.get(t, "/license", buy("CS-L1", "biz-3"))
		if again.body != first.body || alias.body != first.body {
			t.Errorf("repeats %s / %s, first %s", again.body, alias.body, first.body)
		}
		reqs := e.real.of(provision.EventLicenseRequested)
		if len(reqs) != 1 {
			t.Fatalf("%d license.requested, want 1", len(reqs))
		}
		ev := reqs[0]
		o := ev.Order
		if ev.LicenseRequest.Kind != "legacy" || o == nil || o.OrderID != "CS-L1" || o.Buyer.CustomerID != "cust-1" ||
			o.Buyer.CustomerName != "ACME" || o.SKUCode != "sku-1" || o.PeriodNumber != 1 || o.ChargingMode != protocol.ChargingPeriod ||
			ev.LicenseRequest.Amount != 3 || !ev.LicenseRequest.ExpireTime.Equal(time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC)) {
			t.Errorf("event %+v order %+v", ev.LicenseRequest, o)
		}
		if r := e.call(t, with(buy("CS-L1", "biz-4"), "customerId", "cust-2"), "000002"); !strings.Contains(r.msg, "not a repeat") {
			t.Errorf("another customer: %q", r.msg)
		}
		// A debug purchase goes to the test provisioner.
		e.call(t, with(buy("CS-L2", "biz-9"), "testFlag", "1"), "000000")
		if n, m := len(e.test.of(provision.EventLicenseRequested)), len(e.real.of(provision.EventLicenseRequested)); n != 1 || m != 1 {
			t.Errorf("test provisioner %d, real %d license requests", n, m)
		}
		// The ledger keeps the calls (written after each reply), the
		// license masked.
		var calls []store.Call
		eventually(t, "5 calls in the ledger", func() bool {
			var err error
			calls, err = e.st.Calls(context.Background(), store.CallFilter{Activity: protocol.ActivityGetLicense, Limit: 100})
			return err == nil && len(calls) == 5
		})
		for _, c := range calls {
			if strings.Contains(c.Response, "DEMO-LICENSE") || c.InstanceID == "" && c.ResultCode == "000000" {
				t.Errorf("ledger row %+v", c)
			}
		}
	})
}

// TestGetLicenseWaits: a generator slower than the budget gets 000004
// with the instanceId; the retry gets the license; a failed generation is
// 000005 and a repeat starts it again.
func TestGetLicenseWaits(t *testing.T) {
	forEachDialect(t, options{budget: 300 * time.Millisecond}, func(t *testing.T, e *env) {
		gate := make(chan struct{})
		e.real.set("", gate)
		r := e.call(t, buy("CS-SLOW", "biz-s"), "000004")
		if r.instanceID != "biz-s" || r.license != "" {
			t.Errorf("reply %s", r.body)
		}
		e.call(t, buy("CS-SLOW", "biz-t"), "000004")
		close(gate)
		eventually(t, "the license generated", func() bool {
			g, err := e.st.LicenseGrant(context.Background(), store.GrantLegacy, "CS-SLOW")
			return err == nil && g.State == store.GrantGenerated
		})
		if r := e.call(t, buy("CS-SLOW", "biz-u"), "000000"); r.instanceID != "biz-s" || r.license == "" {
			t.Errorf("retry %s", r.body)
		}

		e.real.set("permanent", nil)
		r = e.call(t, buy("CS-FAIL", "biz-f"), "000005")
		if strings.Contains(r.msg, "internal.vendor") || r.instanceID != "biz-f" {
			t.Errorf("failure reply %s", r.body)
		}
		g, err := e.st.LicenseGrant(context.Background(), store.GrantLegacy, "CS-FAIL")
		if err != nil || g.State != store.GrantFailed || !strings.Contains(g.LastError, "no license") {
			t.Errorf("grant %+v, %v", g, err)
		}
		e.real.set("", nil)
		if r := e.call(t, buy("CS-FAIL", "biz-g"), "000000"); r.instanceID != "biz-f" || r.license == "" {
			t.Errorf("repeat after the fix %s", r.body)
		}
	})
}

// TestGetLicenseFile: a license file is answered as the base64 of its
// content.
func TestGetLicenseFile(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		e.real.set("file", nil)
		r := e.call(t, buy("CS-FILE", "biz-file"), "000000")
		got, err := base64.StdEncoding.DecodeString(r.license)
		if err != nil || string(got) != string(fileContent) {
			t.Errorf("license %q: %q, %v", r.license, got, err)
		}
	})
}

// TestConcurrentGetLicense: 20 concurrent first deliveries of one order
// make one license, answered alike.
func TestConcurrentGetLicense(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		bodies := make([]string, 20)
		var wg sync.WaitGroup
		for i := range bodies {
			wg.Go(func() { bodies[i] = e.get(t, "/produce", buy("CS-CONC", "biz-c")).body })
		}
		wg.Wait()
		for i, b := range bodies {
			if b != bodies[0] || !strings.Contains(b, `"000000"`) {
				t.Errorf("delivery %d %s, first %s", i, b, bodies[0])
			}
		}
		if n := len(e.real.of(provision.EventLicenseRequested)); n != 1 {
			t.Errorf("%d generations, want 1", n)
		}
	})
}

// settle waits until the vendor got n lifecycle events of instanceId and
// returns them.
func settle(t *testing.T, e *env, n int) []provision.Event {
	t.Helper()
	eventually(t, "lifecycle events", func() bool { return len(e.real.lifecycle()) >= n })
	time.Sleep(50 * time.Millisecond) // let a wrongly extra event show itself
	evs := e.real.lifecycle()
	if len(evs) != n {
		t.Fatalf("%d lifecycle events, want %d", len(evs), n)
	}
	return evs
}

// TestLifecycle: refreshLicense, expireLicense and releaseLicense move the
// license and tell the vendor once per change; unknown and released
// licenses get 000003; release succeeds forever.
func TestLifecycle(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		e.call(t, buy("CS-LC", "inst-lc"), "000000")
		refresh := map[string]string{"activity": "refreshLicense", "orderId": "CS-LC-R1", "instanceId": "inst-lc", "expireTime": "20281231235959"}
		expire := map[string]string{"activity": "expireLicense", "instanceId": "inst-lc", "orderId": "CS-LC"}
		release := map[string]string{"activity": "releaseLicense", "instanceId": "inst-lc", "orderId": "CS-LC"}

		e.call(t, refresh, "000000")
		e.call(t, refresh, "000000") // a repeat: no event
		evs := settle(t, e, 1)
		l := evs[0].License
		if evs[0].Type != provision.EventLicenseRenewed || l.InstanceID != "inst-lc" || l.Code != "" || l.Status != "active" ||
			!l.ExpireTime.Equal(time.Date(2028, 12, 31, 23, 59, 59, 0, time.UTC)) || l.OrderID != "CS-LC" || l.Scene != protocol.SceneRenewal {
			t.Errorf("renewed %+v", l)
		}
		e.call(t, expire, "000000")
		e.call(t, expire, "000000")
		evs = settle(t, e, 2)
		if l := evs[1].License; evs[1].Type != provision.EventLicenseFrozen || l.Status != "frozen" {
			t.Errorf("frozen %+v", l)
		}
		// A renewal into the future lifts the freeze.
		e.call(t, with(refresh, "orderId", "CS-LC-R2", "expireTime", "20291231235959"), "000000")
		evs = settle(t, e, 3)
		if l := evs[2].License; l.Status != "active" || l.ExpireTime.Year() != 2029 {
			t.Errorf("renewed after the freeze %+v", l)
		}
		e.call(t, release, "000000")
		e.call(t, release, "000000")
		evs = settle(t, e, 4)
		if evs[3].Type != provision.EventLicenseReleased || evs[3].License.Status != "released" {
			t.Errorf("released %+v", evs[3])
		}
		if r := e.call(t, with(refresh, "orderId", "CS-LC-R3"), "000003"); !strings.Contains(r.msg, "released") {
			t.Errorf("renewal of a released license: %q", r.msg)
		}
		e.call(t, expire, "000003")
		g, err := e.st.LicenseGrantByInstance(context.Background(), store.GrantLegacy, "inst-lc")
		if err != nil || g.Status != store.LicenseReleased || g.ExpireTime.Year() != 2029 {
			t.Errorf("grant %+v, %v", g, err)
		}
		// The purchase is still answered as it was.
		e.call(t, buy("CS-LC", "inst-other"), "000000")
		for _, p := range []map[string]string{refresh, expire, release} {
			if r := e.call(t, with(p, "instanceId", "no-such", "orderId", "CS-NONE"), "000003"); r.msg != "instance does not exist" {
				t.Errorf("%s of an unknown instance: %q", p["activity"], r.msg)
			}
		}
		settle(t, e, 4)
	})
}

// TestRefused: bad calls get their code and a message naming the problem,
// and change nothing.
func TestRefused(t *testing.T) {
	forEachDialect(t, options{window: 5 * time.Minute}, func(t *testing.T, e *env) {
		good := signedQuery(t, basicKey, buy("CS-BAD", "biz-bad"))
		tests := []struct {
			name, path, query string
			code, msg         string
		}{
			{"no authToken", "/produce", without(good, "authToken"), "000001", "authToken"},
			{"wrong key", "/produce", signedQuery(t, "another-key-0123456789", buy("CS-BAD", "biz-bad")).Encode(), "000001", ""},
			{"tampered", "/produce", strings.Replace(good.Encode(), "amount=3", "amount=4", 1), "000001", ""},
			{"stale timeStamp", "/produce", signedQuery(t, basicKey, with(buy("CS-BAD", "biz-bad"), "timeStamp", protocol.FormatTime17(time.Now().Add(-time.Hour)))).Encode(), "000001", "timeStamp"},
			{"parameter twice", "/produce", good.Encode() + "&orderId=CS-OTHER", "000002", "orderId"},
			{"no orderId", "/produce", signedQuery(t, basicKey, with(buy("CS-BAD", "biz-bad"), "orderId", "")).Encode(), "000002", "orderId"},
			{"no businessId", "/license", signedQuery(t, basicKey, with(buy("CS-BAD", "biz-bad"), "businessId", "")).Encode(), "000002", "businessId"},
			{"bad expireTime", "/produce", signedQuery(t, basicKey, with(buy("CS-BAD", "biz-bad"), "expireTime", "2027-12-31")).Encode(), "000002", "expireTime"},
			{"bad amount", "/produce", signedQuery(t, basicKey, with(buy("CS-BAD", "biz-bad"), "amount", "three")).Encode(), "000002", "amount"},
			{"orderId too long", "/produce", signedQuery(t, basicKey, with(buy("CS-BAD", "biz-bad"), "orderId", strings.Repeat("o", 65))).Encode(), "000002", "orderId"},
			{"NUL", "/produce", signedQuery(t, basicKey, with(buy("CS-BAD", "biz-bad"), "customerName", "a\x00b")).Encode(), "000002", ""},
			{"refresh without expireTime", "/produce", signedQuery(t, basicKey, map[string]string{"activity": "refreshLicense", "orderId": "o", "instanceId": "i"}).Encode(), "000002", "expireTime"},
			{"release without instanceId", "/license", signedQuery(t, basicKey, map[string]string{"activity": "releaseLicense", "orderId": "o"}).Encode(), "000002", "instanceId"},
			{"unknown activity", "/license", signedQuery(t, basicKey, map[string]string{"activity": "getLicenses"}).Encode(), "000002", "getLicenses"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.getRaw(t, tt.path, tt.query)
				if r.code != tt.code || !strings.Contains(r.msg, tt.msg) {
					t.Errorf("answered %s %q, want %s naming %q", r.code, r.msg, tt.code, tt.msg)
				}
			})
		}
		gs, err := e.st.LicenseGrants(context.Background(), store.LicenseGrantFilter{})
		if err != nil || len(gs) != 0 {
			t.Errorf("refused calls left grants %+v, %v", gs, err)
		}
		// SaaS V1 at the same path still answers its own activities.
		if r := e.get(t, "/produce", map[string]string{"activity": "queryInstance", "instanceId": "none"}); r.code != "000003" {
			t.Errorf("V1 queryInstance beside license 1.0: %s %q", r.code, r.msg)
		}
		e.call(t, buy("CS-BAD", "biz-bad"), "000000")
	})
}

// without returns q without name, encoded.
func without(q url.Values, name string) string {
	c := url.Values{}
	for k, v := range q {
		if k != name {
			c[k] = v
		}
	}
	return c.Encode()
}

// TestBusinessIDOfAnotherOrder: a getLicense whose businessId is already
// another order's instanceId is refused 000002 naming businessId and
// writes nothing, also when many race for it and for licenses stored
// before the rule; lifecycle calls with the purchase orderId find that
// order's license, and refuse an orderId answered as another instanceId.
func TestBusinessIDOfAnotherOrder(t *testing.T) {
	forEachDialect(t, options{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.call(t, buy("CS-A", "biz-same"), "000000")
		r := e.call(t, buy("CS-B", "biz-same"), "000002")
		if r.msg != "invalid parameter businessId: already the instanceId of another order's license; not applied" || r.instanceID != "" {
			t.Errorf("answered %s", r.body)
		}
		if _, err := e.st.LicenseGrant(ctx, store.GrantLegacy, "CS-B"); err == nil {
			t.Error("the refused call stored a grant")
		}
		if n := len(e.real.of(provision.EventLicenseRequested)); n != 1 {
			t.Errorf("the generator was asked %d times, want 1", n)
		}
		// KooGallery's retry brings another businessId.
		if b := e.call(t, buy("CS-B", "biz-b2"), "000000"); b.instanceID != "biz-b2" {
			t.Errorf("retry answered %s", b.body)
		}

		status := func(order string) store.LicenseStatus {
			t.Helper()
			g, err := e.st.LicenseGrant(ctx, store.GrantLegacy, order)
			if err != nil {
				t.Fatal(err)
			}
			return g.Status
		}
		release := func(instanceID, orderID string) map[string]string {
			return map[string]string{"activity": "releaseLicense", "instanceId": instanceID, "orderId": orderID}
		}
		if r := e.call(t, release("biz-same", "CS-B"), "000003"); !strings.Contains(r.msg, "another instanceId") {
			t.Errorf("release naming another order's instance: %q", r.msg)
		}
		e.call(t, map[string]string{"activity": "expireLicense", "instanceId": "biz-same", "orderId": "CS-B"}, "000003")
		if a, b := status("CS-A"), status("CS-B"); a != store.LicenseActive || b != store.LicenseActive {
			t.Fatalf("after the refused calls CS-A %s, CS-B %s", a, b)
		}
		e.call(t, release("biz-b2", "CS-B"), "000000")
		if a, b := status("CS-A"), status("CS-B"); a != store.LicenseActive || b != store.LicenseReleased {
			t.Errorf("release of CS-B: CS-A %s, CS-B %s", a, b)
		}
		// An orderId no getLicense named is tolerated: found by instanceId.
		e.call(t, release("biz-same", "CS-RENEWAL-9"), "000000")
		if a := status("CS-A"); a != store.LicenseReleased {
			t.Errorf("CS-A %s", a)
		}

		// Two orders answered one instanceId before the rule: the orderId
		// tells them apart, and a new order cannot take that instanceId.
		for _, order := range []string{"CS-OLD-1", "CS-OLD-2"} {
			err := e.st.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				_, _, err := tx.InsertLicenseGrant(ctx, store.LicenseGrant{Kind: store.GrantLegacy, Key: order, InstanceID: "biz-old",
					OrderID: order, ProductID: "OFFI-LIC-1", State: store.GrantGenerated})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		e.call(t, buy("CS-NEW", "biz-old"), "000002")
		e.call(t, release("biz-old", "CS-OLD-2"), "000000")
		if a, b := status("CS-OLD-1"), status("CS-OLD-2"); a != store.LicenseActive || b != store.LicenseReleased {
			t.Errorf("release of CS-OLD-2: CS-OLD-1 %s, CS-OLD-2 %s", a, b)
		}

		// Many orders racing for one businessId: one wins.
		const racers = 12
		codes := make([]string, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { codes[i] = e.get(t, "/produce", buy("CS-RACE-"+string(rune('a'+i)), "biz-race")).code })
		}
		wg.Wait()
		won := 0
		for _, c := range codes {
			switch c {
			case "000000":
				won++
			case "000002":
			default:
				t.Errorf("a racer answered %s", c)
			}
		}
		gs, err := e.st.LicenseGrants(ctx, store.LicenseGrantFilter{InstanceID: "biz-race", Limit: 100})
		if won != 1 || err != nil || len(gs) != 1 {
			t.Errorf("%d racers won, %d grants answered as biz-race (%v); want 1 and 1", won, len(gs), err)
		}
	})
}
