package emulator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const testGeneralKey = "EmulatorGeneralKey-fedcba9876543210"

// orderSeller is a testseller with a general key of its own.
func orderSeller(f testseller.Faults) *testseller.Seller {
	return testseller.NewWithKeys(testseller.Keys{Basic: testKey, General: testGeneralKey}, f)
}

// withGeneralKey gives the emulator the general key of orderSeller.
func withGeneralKey(c *Config) { c.GeneralKey = testGeneralKey }

// recorder remembers the requests a handler got, then passes them on.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
	next http.Handler
}

type recorded struct {
	path  string
	query url.Values
	body  []byte
}

func (h *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.reqs = append(h.reqs, recorded{path: r.URL.Path, query: r.URL.Query(), body: body})
	h.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	h.next.ServeHTTP(w, r)
}

func (h *recorder) last(t *testing.T) recorded {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reqs) == 0 {
		t.Fatal("the seller got no request")
	}
	return h.reqs[len(h.reqs)-1]
}

// TestOrderNotifyScenario: order-notify places a NEW order the mocked
// Open API answers, and POSTs orderNotify to OrderNotifyTarget, signed
// with the general key; a 000000 answered with the general key's
// Body-Sign leaves the subscription notified.
func TestOrderNotifyScenario(t *testing.T) {
	for _, test := range []bool{false, true} {
		t.Run(map[bool]string{false: "real", true: "debug"}[test], func(t *testing.T) {
			seller := orderSeller(testseller.Faults{})
			rec := &recorder{next: seller}
			v := start(t, rec, func(c *Config) {
				withGeneralKey(c)
				c.OrderNotifyTarget = strings.TrimSuffix(c.Target, "/produce") + "/notify?tenant=t1"
			})
			run, sub := v.purchase(PurchaseRequest{ProductID: oneTimeID, Scenario: "order-notify", Test: test})
			if !run.OK || run.Scenario != "order-notify" || len(run.Messages) != 1 {
				t.Fatalf("run %+v", run)
			}
			if sub.Status != StatusNotified || sub.InstanceID != "" || sub.OrderID == "" || sub.OrderLineID != sub.OrderID+"-000001" {
				t.Errorf("subscription %+v, want notified with an order and no instance", sub)
			}
			if test != strings.HasPrefix(sub.OrderID, "MOCK") || sub.Test != test {
				t.Errorf("order %s for a test=%v purchase", sub.OrderID, test)
			}
			m, _ := v.e.Message(run.Messages[0])
			if m.Family != "order-notify" || m.Interface != "orderNotify" || m.Status != MessageSuccess || m.Test != test || m.OrderID != sub.OrderID {
				t.Errorf("message %+v", m)
			}
			got := rec.last(t)
			if got.path != "/notify" || got.query.Get("tenant") != "t1" {
				t.Errorf("orderNotify went to %s?%s, want /notify?tenant=t1", got.path, got.query.Encode())
			}
			want := sign.V2Signature(testGeneralKey, got.query.Get("nonce"), got.query.Get("timestamp"), got.body)
			if !strings.EqualFold(got.query.Get("signature"), want) {
				t.Error("orderNotify is not signed with the general key")
			}
			var b map[string]any
			if err := json.Unmarshal(got.body, &b); err != nil {
				t.Fatal(err)
			}
			flag := map[bool]string{false: "0", true: "1"}[test]
			if len(b) != 4 || b["activity"] != "orderNotify" || b["orderId"] != sub.OrderID || b["orderLineId"] != sub.OrderLineID || b["testFlag"] != flag {
				t.Errorf("body %s, want activity, orderId, orderLineId and testFlag %q", got.body, flag)
			}
			if seller.Notified() != 1 || seller.Instances() != 0 {
				t.Errorf("seller: %d notified, %d instances", seller.Notified(), seller.Instances())
			}
			info := queryOrder(t, v.e, sub.OrderID)
			if string(info.OrderType) != protocol.OrderTypeNew || info.BuyerInfo == nil || info.BuyerInfo.CustomerID == "" ||
				len(info.OrderLine) != 1 || string(info.OrderLine[0].ChargingMode) != protocol.ChargingOneTime {
				t.Errorf("Query Order %+v", info)
			}
		})
	}
}

// TestOrderNotifyDefaults: without a general key and an order-notification
// URL, orderNotify goes to Target signed with Key.
func TestOrderNotifyDefaults(t *testing.T) {
	seller := testseller.New(testKey, testseller.Faults{})
	rec := &recorder{next: seller}
	v := start(t, rec, nil)
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID, Scenario: "order-notify"})
	if !run.OK || sub.Status != StatusNotified || sub.ExpireTime.IsZero() {
		t.Fatalf("run %+v, subscription %+v", run, sub)
	}
	got := rec.last(t)
	if got.path != "/produce" {
		t.Errorf("orderNotify went to %s, want the Target's /produce", got.path)
	}
	if want := sign.V2Signature(testKey, got.query.Get("nonce"), got.query.Get("timestamp"), got.body); !strings.EqualFold(got.query.Get("signature"), want) {
		t.Error("orderNotify is not signed with Key")
	}
}

// TestOrderNotifyChecks: the answer's Body-Sign is checked with the
// general key; a seller signing with the basic key fails, and so does
// one that verifies orderNotify with the basic key.
func TestOrderNotifyChecks(t *testing.T) {
	t.Run("basic key Body-Sign", func(t *testing.T) {
		v := start(t, orderSeller(testseller.Faults{OrderNotifyBasicKeyBodySign: true}), func(c *Config) { withGeneralKey(c); c.NoRetry = true })
		run, sub := v.purchase(PurchaseRequest{ProductID: periodID, Scenario: "order-notify"})
		m, _ := v.e.Message(run.Messages[0])
		if run.OK || sub.Status != StatusFailed || len(m.Attempts) != 1 || !m.Attempts[0].Has(RuleBodySign) || m.Attempts[0].ResultCode != protocol.CodeSuccess {
			t.Errorf("run %+v, subscription %s, attempts %+v; want a body-sign failure", run, sub.Status, m.Attempts)
		}
	})
	t.Run("seller on the basic key", func(t *testing.T) {
		// The seller knows no general key: it verifies with the basic one.
		v := start(t, testseller.New(testKey, testseller.Faults{}), func(c *Config) { withGeneralKey(c); c.NoRetry = true })
		run, _ := v.purchase(PurchaseRequest{ProductID: periodID, Scenario: "order-notify"})
		m, _ := v.e.Message(run.Messages[0])
		if a := m.Attempts[0]; run.OK || a.ResultCode != protocol.CodeAuthFailed || !a.Has(RuleBodySign) {
			t.Errorf("attempt %+v, want 000001 and a body-sign failure", a)
		}
		// V2 calls still use the basic key.
		if run, _ := v.purchase(PurchaseRequest{ProductID: periodID}); !run.OK {
			t.Errorf("purchase: %s", run.Err)
		}
	})
}

// TestOrderNotifyRetries: a failed orderNotify is retried hourly for 3
// hours, then the subscription fails; a re-drive that succeeds then
// notifies it.
func TestOrderNotifyRetries(t *testing.T) {
	down := &flaky{n: 1 << 30, next: testseller.New(testKey, testseller.Faults{})}
	v := start(t, down, hourly)
	run, sub := v.purchase(PurchaseRequest{ProductID: onDemandID, Scenario: "order-notify"})
	if run.OK || sub.Status != StatusPending {
		t.Fatalf("run %+v, status %s", run, sub.Status)
	}
	id := run.Messages[0]
	waitFor(t, "the retries to end", func() bool { m, _ := v.e.Message(id); return m.Status == MessageFailed })
	m, _ := v.e.Message(id)
	if len(m.Attempts) != 4 || !m.Deadline.Equal(m.FirstSentAt.Add(3*time.Hour)) {
		t.Fatalf("%d attempts, deadline %v after the first; want 4 (0, 1h, 2h, 3h) in a 3-hour window", len(m.Attempts), m.Deadline.Sub(m.FirstSentAt))
	}
	for i, a := range m.Attempts {
		if want := m.FirstSentAt.Add(time.Duration(i) * time.Hour); !a.At.Equal(want) {
			t.Errorf("attempt %d at %v, want %v", i, a.At, want)
		}
	}
	if s, _ := v.e.Subscription(sub.ID); s.Status != StatusFailed {
		t.Errorf("subscription %s after the window, want failed", s.Status)
	}
	down.mu.Lock()
	down.n = 0
	down.mu.Unlock()
	m, err := v.e.Redrive(context.Background(), id)
	if err != nil || m.Status != MessageSuccess || len(m.Attempts) != 5 {
		t.Fatalf("redrive: %v, %s with %d attempts", err, m.Status, len(m.Attempts))
	}
	if s, _ := v.e.Subscription(sub.ID); s.Status != StatusNotified {
		t.Errorf("subscription %s after the re-drive, want notified", s.Status)
	}
}

// TestOrderNotifyFaults: the duplicates fault and PurchaseRequest.Duplicates
// deliver orderNotify several times at once and compare the answers; the
// clock-skew fault skews its timestamp.
func TestOrderNotifyFaults(t *testing.T) {
	for _, tt := range []struct {
		name    string
		faults  testseller.Faults
		fault   Faults
		request int
		broken  bool
	}{
		{"fault, correct seller", testseller.Faults{}, Faults{Duplicates: 2}, 0, false},
		{"fault, repeats differ", testseller.Faults{OrderNotifyRepeatDiffers: true}, Faults{Duplicates: 2}, 0, true},
		{"request, concurrent processing", testseller.Faults{ConcurrentProcessing: 200 * time.Millisecond}, Faults{}, 2, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := start(t, orderSeller(tt.faults), func(c *Config) { withGeneralKey(c); c.NoRetry = true })
			v.e.SetFaults(tt.fault)
			run, _ := v.purchase(PurchaseRequest{ProductID: periodID, Scenario: "order-notify", Duplicates: tt.request})
			m, _ := v.e.Message(run.Messages[0])
			if len(m.Attempts) != 3 {
				t.Fatalf("%d attempts, want 1 + 2 duplicates", len(m.Attempts))
			}
			for _, a := range m.Attempts {
				if !strings.Contains(a.Request.Body, `"orderNotify"`) {
					t.Errorf("copy sent %s", a.Request.Body)
				}
			}
			if got := m.Attempts[0].Has(RuleIdempotent); got != tt.broken || run.OK == tt.broken {
				t.Errorf("idempotent violation %v, run OK %v; broken seller %v", got, run.OK, tt.broken)
			}
		})
	}
	t.Run("clock skew", func(t *testing.T) {
		v := start(t, orderSeller(testseller.Faults{}), func(c *Config) { withGeneralKey(c); c.NoRetry = true })
		v.e.SetFaults(Faults{ClockSkew: -2 * time.Minute})
		run, _ := v.purchase(PurchaseRequest{ProductID: periodID, Scenario: "order-notify"})
		m, _ := v.e.Message(run.Messages[0])
		if run.OK || m.Attempts[0].ResultCode != protocol.CodeAuthFailed {
			t.Errorf("resultCode %s, want 000001", m.Attempts[0].ResultCode)
		}
	})
}

// TestSendFamily: a Call of the OrderNotify family goes to its URL, signed
// with the general key, and is checked against it; Tamper.Key signs with
// another key.
func TestSendFamily(t *testing.T) {
	rec := &recorder{next: orderSeller(testseller.Faults{})}
	v := start(t, rec, withGeneralKey)
	body := []byte(`{"activity":"orderNotify","orderId":"CSX","orderLineId":"CSX-000001","testFlag":"1"}`)
	m, err := v.e.Send(context.Background(), Call{Family: OrderNotify, Interface: protocol.ActivityOrderNotify, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if m.Family != "order-notify" || !m.Test || m.Status != MessageSuccess || m.Attempts[0].ResultCode != protocol.CodeSuccess {
		t.Errorf("message %+v", m)
	}
	for name, key := range map[string]string{"basic": testKey, "made-up": "made-up"} {
		m, err := v.e.Send(context.Background(), Call{Family: OrderNotify, Interface: protocol.ActivityOrderNotify, Body: body,
			Tamper: Tamper{Key: key}, Expect: []protocol.ResultCode{protocol.CodeAuthFailed}})
		if err != nil {
			t.Fatal(err)
		}
		got := rec.last(t)
		if want := sign.V2Signature(key, got.query.Get("nonce"), got.query.Get("timestamp"), got.body); !strings.EqualFold(got.query.Get("signature"), want) {
			t.Errorf("%s: not signed with Tamper.Key", name)
		}
		// The answer is signed with the general key, as checked.
		if !m.Attempts[0].OK() {
			t.Errorf("%s key: %+v", name, m.Attempts[0])
		}
	}
	// Without a family, Send is V2: orderNotify signed with the basic key fails.
	m, _ = v.e.Send(context.Background(), Call{Interface: protocol.ActivityOrderNotify, Body: body})
	if m.Family != "v2" || m.Attempts[0].ResultCode != protocol.CodeAuthFailed {
		t.Errorf("V2 send of orderNotify: %+v", m)
	}
}

// TestKeepGoing: with KeepGoing an answer that breaks only form rules is
// applied and the scenario plays on; without it the run stops.
func TestKeepGoing(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[keep], func(t *testing.T) {
			v, _ := startSeller(t, testseller.Faults{NoBodySign: true, Async: true}, func(c *Config) { c.NoRetry = true; c.KeepGoing = keep; c.TimeScale = 3600 })
			run, sub := v.purchase(PurchaseRequest{ProductID: periodID})
			if run.OK || !strings.Contains(run.Err, "body-sign") {
				t.Errorf("run %+v, want a body-sign failure", run)
			}
			m, _ := v.e.Message(run.Messages[0])
			if m.Status != MessageFailed || !strings.Contains(m.LastError, "body-sign") {
				t.Errorf("message %s %q, want failed with body-sign", m.Status, m.LastError)
			}
			if !keep {
				if sub.Status != StatusFailed || sub.InstanceID != "" || len(run.Messages) != 1 {
					t.Errorf("subscription %+v, %d messages; want failed, no instance, no polls", sub, len(run.Messages))
				}
				return
			}
			// newInstance 000004, then polls until 000000 with appInfo.
			if sub.Status != StatusActive || sub.InstanceID == "" || sub.AppInfo == nil || len(run.Messages) < 2 {
				t.Fatalf("subscription %+v, %d messages; want active with its app info after polling", sub, len(run.Messages))
			}
			// A scenario of two steps plays both, each breaking body-sign.
			v.play(sub.ID, "expire")
			run, sub = v.play(sub.ID, "unfreeze")
			if run.OK || len(run.Messages) != 2 || sub.Status != StatusActive || !strings.Contains(run.Err, "step 1 (refreshInstance)") {
				t.Errorf("unfreeze: run %+v, status %s; want both steps applied, the first failure named", run, sub.Status)
			}
			for _, id := range run.Messages {
				if m, _ := v.e.Message(id); m.Status != MessageFailed || !m.Attempts[0].Has(RuleBodySign) {
					t.Errorf("%s: %s %+v", m.Interface, m.Status, m.Attempts)
				}
			}
		})
	}
}

// TestOrderNotifyWeb: the JSON API lists order-notify and plays it as a
// purchase; the dashboard has a button for it.
func TestOrderNotifyWeb(t *testing.T) {
	w := startWeb(t)
	var scenarios []Scenario
	w.call("GET", "/api/emulator/scenarios", nil, http.StatusOK, &scenarios)
	found := false
	for _, s := range scenarios {
		if s.Name == "order-notify" {
			found = true
			if s.Family != "order-notify" || len(s.Modes) != 4 || len(s.From) != 0 || len(s.Steps) != 1 || s.Steps[0] != "orderNotify" {
				t.Errorf("scenario %+v", s)
			}
		}
	}
	if !found {
		t.Fatalf("scenarios %+v lack order-notify", scenarios)
	}
	prod := w.product(protocol.ChargingOnDemand)
	run := w.buy(PurchaseRequest{ProductID: prod.ID, Scenario: "order-notify"})
	if run.Scenario != "order-notify" {
		t.Errorf("run %+v", run)
	}
	var sub Subscription
	w.call("GET", "/api/emulator/subscriptions/"+run.SubscriptionID, nil, http.StatusOK, &sub)
	if sub.Status != StatusNotified {
		t.Errorf("subscription %+v, want notified", sub)
	}
	for _, bad := range []any{
		map[string]any{"productId": prod.ID, "scenario": "renewal"},
		map[string]any{"productId": prod.ID, "scenario": "nope"},
		map[string]any{"productId": prod.ID, "scenario": "order-notify", "trial": true},
		map[string]any{"productId": prod.ID, "duplicates": 11},
		map[string]any{"productId": prod.ID, "duplicates": -1},
	} {
		if status, body := w.do("POST", "/api/emulator/purchases", bad); status != http.StatusBadRequest {
			t.Errorf("purchase %v: %d %s, want 400", bad, status, body)
		}
	}

	_, page := w.page("/")
	if !strings.Contains(page, `id="notify-`+prod.ID+`"`) {
		t.Error("the dashboard has no order-notification button")
	}
	status, loc := w.form("/purchase", url.Values{"product": {prod.ID}, "scenario": {"order-notify"}})
	if status != http.StatusSeeOther {
		t.Fatalf("order-notification form: %d", status)
	}
	if msg := w.flash(loc); !strings.HasPrefix(msg, "order-notify sub-") || !strings.Contains(msg, "orderNotify 000000") || !strings.Contains(msg, "status notified") {
		t.Errorf("flash %q", msg)
	}
}

// TestPurchaseDuplicates: PurchaseRequest.Duplicates copies the purchase's
// newInstance, not the polls after 000004.
func TestPurchaseDuplicates(t *testing.T) {
	v, seller := startSeller(t, testseller.Faults{Async: true}, func(c *Config) { c.NoRetry = true; c.TimeScale = 3600 })
	run, sub := v.purchase(PurchaseRequest{ProductID: periodID, Duplicates: 3})
	if !run.OK || sub.Status != StatusActive || seller.Instances() != 1 {
		t.Fatalf("run %+v, status %s, %d instances", run, sub.Status, seller.Instances())
	}
	m, _ := v.e.Message(run.Messages[0])
	if len(m.Attempts) != 4 {
		t.Errorf("newInstance: %d attempts, want 1 + 3 copies", len(m.Attempts))
	}
	polls := 0
	for _, id := range run.Messages[1:] {
		m, _ := v.e.Message(id)
		if m.Interface != protocol.ActivityQueryInstance {
			t.Errorf("message %s is %s, want a poll", id, m.Interface)
		}
		polls += len(m.Attempts)
	}
	if polls != 3 {
		t.Errorf("%d poll attempts, want 3 (000004 twice, then 000000): polls are not copied", polls)
	}
	v2, _ := startSeller(t, testseller.Faults{NewInstanceEveryCall: true}, func(c *Config) { c.NoRetry = true })
	run, _ = v2.purchase(PurchaseRequest{ProductID: periodID, Duplicates: 1})
	if m, _ := v2.e.Message(run.Messages[0]); run.OK || len(m.Attempts) != 2 || !m.Attempts[0].Has(RuleIdempotent) {
		t.Errorf("run %+v, attempts %+v; want an idempotent failure", run, m.Attempts)
	}
}
