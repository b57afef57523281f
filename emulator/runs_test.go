package emulator

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
)

// startWebWith serves an emulator toward seller, as startWeb does with
// the default test seller and NoRetry; adjust edits the config.
func startWebWith(t *testing.T, seller http.Handler, adjust func(*Config)) *webEnv {
	t.Helper()
	s := httptest.NewServer(seller)
	t.Cleanup(s.Close)
	cfg := Config{Target: s.URL, Key: testKey, AK: "web-ak", SK: "web-sk"}
	if adjust != nil {
		adjust(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &webEnv{t: t, e: e, srv: srv, client: client}
}

// apiRun reads GET runs/{id}.
func (w *webEnv) apiRun(id string) Run {
	w.t.Helper()
	status, raw := w.do("GET", "/api/emulator/runs/"+id, nil)
	var r Run
	if err := json.Unmarshal(raw, &r); err != nil || status != http.StatusOK {
		w.t.Fatalf("GET runs/%s: %d %s (%v)", id, status, raw, err)
	}
	return r
}

// Issue 16: a purchase whose newInstance answered 000004 said "ok": true
// while the subscription stayed provisioning. It is pending, not ok, on
// the page and in the JSON API, and ok once the polling finds the
// instance.
func TestPendingPurchaseSettles(t *testing.T) {
	// At wall-clock speed the first poll is 10 s away: the run is pending
	// until Advance brings the polls due.
	w := startWebWith(t, testseller.New(testKey, testseller.Faults{Async: true}), nil)
	status, raw := w.do("POST", "/api/emulator/purchases", `{"productId":"`+periodID+`"}`)
	var run Run
	if err := json.Unmarshal(raw, &run); err != nil || status != http.StatusCreated {
		t.Fatalf("POST purchases: %d %s", status, raw)
	}
	var fields map[string]any
	_ = json.Unmarshal(raw, &fields)
	if fields["ok"] != false || fields["pending"] != true || run.ID == "" || !strings.Contains(run.Waiting, "queryInstance is polled every 10 s") {
		t.Errorf("purchase answered 000004: %s; want ok false, pending true and what it waits for", raw)
	}
	if got := w.apiRun(run.ID); got.OK || !got.Pending {
		t.Errorf("GET runs/%s before any poll: %+v; want pending", run.ID, got)
	}
	if err := w.e.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the polling to find the instance", func() bool { s, _ := w.e.Subscription(run.SubscriptionID); return s.Status == StatusActive })
	got := w.apiRun(run.ID)
	polls := w.e.Messages(MessageFilter{SubscriptionID: run.SubscriptionID, Interface: protocol.ActivityQueryInstance})
	if !got.OK || got.Pending || got.Waiting != "" || got.Err != "" || len(polls) != 1 || len(got.Messages) != 2 || got.Messages[1] != polls[0].ID {
		t.Errorf("the run once active: %+v; want ok with the newInstance and the poll message %v", got, polls)
	}
	if status, _ := w.do("GET", "/api/emulator/runs/run-999999", nil); status != http.StatusNotFound {
		t.Errorf("GET an unknown run: %d, want 404", status)
	}
}

// The same on the page: the flash says the purchase is pending and what
// for; shown again once the subscription is active, it says so.
func TestWebPendingPurchase(t *testing.T) {
	w := startWebWith(t, testseller.New(testKey, testseller.Faults{Async: true}), nil)
	status, loc := w.form("/purchase", url.Values{"product": {periodID}})
	if status != http.StatusSeeOther {
		t.Fatalf("purchase form: %d", status)
	}
	flash := w.flash(loc)
	sub := w.e.Subscriptions()[0]
	if !strings.Contains(flash, "newInstance 000004") || !strings.Contains(flash, "PENDING, not ok yet: waiting for "+sub.ID+" is provisioning") || strings.Contains(flash, "FAILED") {
		t.Errorf("flash while provisioning: %q", flash)
	}
	if err := w.e.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "active", func() bool { s, _ := w.e.Subscription(sub.ID); return s.Status == StatusActive })
	if flash := w.flash(loc); strings.Contains(flash, "PENDING") || !strings.Contains(flash, "queryInstance 000000 (attempt 3)") || !strings.Contains(flash, "status active") {
		t.Errorf("flash once active: %q", flash)
	}
}

// Only the run whose newInstance started the polling waits for it: a
// query played while the subscription is provisioning ends at once.
func TestQueryWhileProvisioningNotPending(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{Async: true}, nil)
	purchase, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if !purchase.Pending || sub.Status != StatusProvisioning {
		t.Fatalf("purchase answered 000004: %+v, status %s; want pending, provisioning", purchase, sub.Status)
	}
	// The async seller answers its first two queries 000004 (which the
	// query scenario does not accept), the third 000000.
	var query Run
	var after Subscription
	for range 3 {
		if query, after = v.play(sub.ID, "query"); query.OK {
			break
		}
	}
	if !query.OK || query.Pending || query.Waiting != "" || after.Status != StatusProvisioning {
		t.Errorf("query on a provisioning subscription: %+v, status %s; want it ok and ended, not pending", query, after.Status)
	}
	if r, _ := v.e.Outcome(purchase.ID); !r.Pending {
		t.Errorf("the purchase after the query: %+v; want still pending on its polling", r)
	}
}

// A purchase that never gets past 000004 within newInstance's window ends
// failed, saying so.
func TestPendingPurchaseFails(t *testing.T) {
	// newInstance's window (which bounds the polling) holds one poll; the
	// async seller answers the first two 000004.
	v, _ := startSeller(t, testseller.Faults{Async: true}, func(c *Config) {
		c.Retry = map[string]RetryPolicy{protocol.ActivityNewInstance: {Interval: time.Hour, Window: 15 * time.Second}}
	})
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
	if run.OK || !run.Pending {
		t.Fatalf("purchase answered 000004: %+v; want pending", run)
	}
	if err := v.e.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the polling to give up", func() bool { s, _ := v.e.Subscription(sub.ID); return s.Status == StatusFailed })
	got, _ := v.e.Outcome(run.ID)
	if got.OK || got.Pending || !strings.Contains(got.Err, "queryInstance polling: no answer 000000") {
		t.Errorf("the run after the polling gave up: %+v; want failed, saying why", got)
	}
}

// A step whose first attempt failed is retried: the run is pending (not
// merely failed) until a retry succeeds, then ok; or, when the retries
// run out, failed.
func TestPendingRetry(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fails int
		ok    bool
	}{
		{"a retry succeeds", 1, true},
		{"every retry fails", 100, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := intercept(goodSeller())
			s.failNext(protocol.ActivityNewInstance, tt.fails)
			v := start(t, s, nil)
			run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
			if run.OK || !run.Pending || !strings.Contains(run.Err, "step 1 (newInstance)") || !strings.Contains(run.Waiting, "(newInstance) is retrying: next attempt at ") {
				t.Fatalf("first attempt failed: %+v; want pending on the retries", run)
			}
			// The retries, hourly for 3 hours, all come due.
			if err := v.e.Advance(4 * time.Hour); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the retries to end", func() bool {
				s, _ := v.e.Subscription(sub.ID)
				return s.Status == StatusActive || s.Status == StatusFailed
			})
			got, _ := v.e.Outcome(run.ID)
			if got.Pending || got.OK != tt.ok || (!tt.ok && !strings.Contains(got.Err, "ended without its change")) {
				t.Errorf("after the retries: %+v; want ok %v", got, tt.ok)
			}
		})
	}
}
