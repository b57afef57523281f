package emulator

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
)

const (
	periodID      = "OFFI-EMU-PERIOD"
	oneTimeID     = "OFFI-EMU-ONETIME"
	onDemandID    = "OFFI-EMU-ONDEMAND"
	onDemandPkgID = "OFFI-EMU-ONDEMANDPKG"
)

// queryOrder asks the emulator's Open API, over real HTTP and signed with
// APIG AK/SK, for an order.
func queryOrder(t *testing.T, e *Emulator, orderID string) *protocol.OrderInfo {
	t.Helper()
	srv := httptest.NewServer(e.OpenAPIHandler())
	defer srv.Close()
	c, err := openapi.New(openapi.Config{BaseURL: srv.URL, AK: testAK, SK: testSK})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.QueryOrder(context.Background(), orderID, orderID+"-000001")
	if err != nil {
		t.Fatalf("QueryOrder(%s): %v", orderID, err)
	}
	return info
}

// body decodes a message body into a map.
func body(t *testing.T, m Message) map[string]any {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal([]byte(m.Body), &b); err != nil {
		t.Fatalf("message %s body %q: %v", m.ID, m.Body, err)
	}
	return b
}

func TestScenarios(t *testing.T) {
	type check func(t *testing.T, v env, before, after Subscription, msgs []Message)
	tests := []struct {
		name      string
		product   string
		trial     bool
		pre       []string
		scenario  string // "" checks the purchase itself
		order     string // type of the order the scenario places, "" none
		wantIface []string
		check     check
	}{
		{name: "purchase period", product: periodID, order: protocol.OrderTypeNew, wantIface: []string{"newInstance"},
			check: func(t *testing.T, v env, _, s Subscription, msgs []Message) {
				if d := s.ExpireTime.Sub(v.e.Now()); d < 27*24*time.Hour || d > 32*24*time.Hour {
					t.Errorf("expiry %v is %v away, want one month", s.ExpireTime, d)
				}
			}},
		{name: "purchase one-time", product: oneTimeID, order: protocol.OrderTypeNew, wantIface: []string{"newInstance"},
			check: func(t *testing.T, v env, _, s Subscription, _ []Message) {
				if !s.ExpireTime.IsZero() {
					t.Errorf("one-time expiry = %v, want none", s.ExpireTime)
				}
			}},
		{name: "purchase on-demand", product: onDemandID, order: protocol.OrderTypeNew, wantIface: []string{"newInstance"}},
		{name: "purchase on-demand package", product: onDemandPkgID, order: protocol.OrderTypeNew, wantIface: []string{"newInstance"}},
		{name: "trial", product: periodID, trial: true, order: protocol.OrderTypeTrial, wantIface: []string{"newInstance"},
			check: func(t *testing.T, v env, _, s Subscription, _ []Message) {
				if !s.Trial {
					t.Error("Trial = false")
				}
				if d := s.ExpireTime.Sub(v.e.Now()); d < 6*24*time.Hour || d > 7*24*time.Hour {
					t.Errorf("trial expiry %v away, want 7 days", d)
				}
			}},
		{name: "trial-to-formal", product: periodID, trial: true, scenario: "trial-to-formal", order: protocol.OrderTypeTrialToFormal,
			wantIface: []string{"refreshInstance"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.Trial {
					t.Error("still a trial")
				}
				if d := s.ExpireTime.Sub(v.e.Now()); d < 27*24*time.Hour {
					t.Errorf("expiry %v away, want a month", d)
				}
				if got := body(t, msgs[0])["scene"]; got != "TRIAL_TO_FORMAL" {
					t.Errorf("scene = %v", got)
				}
			}},
		{name: "renewal", product: periodID, scenario: "renewal", order: protocol.OrderTypeRenew, wantIface: []string{"refreshInstance"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if want := b.ExpireTime.AddDate(0, 1, 0); !s.ExpireTime.Equal(want) {
					t.Errorf("expiry %v, want %v", s.ExpireTime, want)
				}
				if got, want := body(t, msgs[0])["expireTime"], protocol.FormatTime14(s.ExpireTime); got != want {
					t.Errorf("expireTime sent %v, want %v", got, want)
				}
			}},
		{name: "unsubscribe-renewal", product: periodID, pre: []string{"renewal"}, scenario: "unsubscribe-renewal", order: protocol.OrderTypeUnsubscribe,
			wantIface: []string{"refreshInstance"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if want := b.ExpireTime.AddDate(0, -1, 0); !s.ExpireTime.Equal(want) {
					t.Errorf("expiry %v, want %v", s.ExpireTime, want)
				}
				if got := body(t, msgs[0])["scene"]; got != "UNSUBSCRIBE_RENEWAL_PERIOD" {
					t.Errorf("scene = %v", got)
				}
			}},
		{name: "renewal-change", product: periodID, scenario: "renewal-change", order: protocol.OrderTypeChange,
			wantIface: []string{"changeInstanceCheck", "refreshInstance"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.PeriodType != "year" || !s.ExpireTime.Equal(b.ExpireTime.AddDate(1, 0, 0)) {
					t.Errorf("after change: period %s, expiry %v; want year, %v", s.PeriodType, s.ExpireTime, b.ExpireTime.AddDate(1, 0, 0))
				}
				pi, _ := body(t, msgs[0])["productInfo"].(map[string]any)
				if pi["productId"] != periodID || pi["skuCode"] != s.SKU {
					t.Errorf("productInfo = %v, want product %s sku %s", pi, periodID, s.SKU)
				}
				rb := body(t, msgs[1])
				if rb["scene"] != "RENEWAL_CHANGE" || rb["productId"] != periodID {
					t.Errorf("refresh body = %v", rb)
				}
			}},
		{name: "expire", product: periodID, scenario: "expire", wantIface: []string{"updateInstanceStatus"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.Status != StatusFrozen {
					t.Errorf("status %s, want frozen", s.Status)
				}
				if s.Clock.Before(b.ExpireTime) || s.ClockAhead <= 0 {
					t.Errorf("the subscription's clock %v (ahead %v) before the expiry %v", s.Clock, s.ClockAhead, b.ExpireTime)
				}
				if !v.e.Now().Before(b.ExpireTime) {
					t.Errorf("the emulator's clock %v moved to the subscription's expiry %v", v.e.Now(), b.ExpireTime)
				}
				if got := body(t, msgs[0])["status"]; got != "FREEZE" {
					t.Errorf("status sent %v", got)
				}
			}},
		{name: "unfreeze", product: periodID, pre: []string{"expire"}, scenario: "unfreeze", order: protocol.OrderTypeRenew,
			wantIface: []string{"refreshInstance", "updateInstanceStatus"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.Status != StatusActive || !s.ExpireTime.Equal(b.ExpireTime.AddDate(0, 1, 0)) {
					t.Errorf("status %s expiry %v, want active and %v", s.Status, s.ExpireTime, b.ExpireTime.AddDate(0, 1, 0))
				}
				if body(t, msgs[0])["scene"] != "RENEWAL" || body(t, msgs[1])["status"] != "UNFREEZE" {
					t.Errorf("bodies %s / %s", msgs[0].Body, msgs[1].Body)
				}
			}},
		{name: "release", product: periodID, pre: []string{"expire"}, scenario: "release", wantIface: []string{"releaseInstance"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.Status != StatusReleased {
					t.Errorf("status %s", s.Status)
				}
				if s.Clock.Before(b.ExpireTime.Add(15*24*time.Hour)) || s.ReleaseTime.Before(b.ExpireTime.Add(15*24*time.Hour)) {
					t.Errorf("released at %v (clock %v), before the end of retention", s.ReleaseTime, s.Clock)
				}
				if _, ok := body(t, msgs[0])["orderId"]; ok {
					t.Errorf("release after retention carries an order: %s", msgs[0].Body)
				}
			}},
		{name: "unsubscribe", product: periodID, scenario: "unsubscribe", order: protocol.OrderTypeUnsubscribe, wantIface: []string{"releaseInstance"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				bb := body(t, msgs[0])
				if s.Status != StatusReleased || bb["orderId"] != s.Orders[len(s.Orders)-1] || bb["orderLineId"] == nil {
					t.Errorf("status %s, body %s", s.Status, msgs[0].Body)
				}
			}},
		{name: "unsubscribe on-demand", product: onDemandID, scenario: "unsubscribe", order: protocol.OrderTypeUnsubscribe, wantIface: []string{"releaseInstance"}},
		{name: "upgrade", product: periodID, scenario: "upgrade", order: protocol.OrderTypeChange, wantIface: []string{"upgradeInstance"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.LinearValue != b.LinearValue+1 {
					t.Errorf("linear value %d, want %d", s.LinearValue, b.LinearValue+1)
				}
				info := queryOrder(t, v.e, s.Orders[len(s.Orders)-1])
				if got := info.OrderLine[0].ProductInfo[0].LinearValue; string(got) != "2" {
					t.Errorf("order linearValue %q, want 2", got)
				}
			}},
		{name: "arrears-freeze", product: onDemandID, scenario: "arrears-freeze", wantIface: []string{"updateInstanceStatus"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.Status != StatusFrozen {
					t.Errorf("status %s", s.Status)
				}
			}},
		{name: "arrears-unfreeze", product: onDemandPkgID, pre: []string{"arrears-freeze"}, scenario: "arrears-unfreeze",
			wantIface: []string{"updateInstanceStatus"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.Status != StatusActive || body(t, msgs[0])["status"] != "UNFREEZE" {
					t.Errorf("status %s body %s", s.Status, msgs[0].Body)
				}
			}},
		{name: "query", product: periodID, scenario: "query", wantIface: []string{"queryInstance"},
			check: func(t *testing.T, v env, b, s Subscription, msgs []Message) {
				if s.AppInfo == nil || !strings.Contains(s.AppInfo.FrontEndURL, s.InstanceID) {
					t.Errorf("appInfo = %+v", s.AppInfo)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := startSeller(t, testseller.Faults{}, nil)
			run, sub := v.purchase(PurchaseRequest{ProductID: tt.product, Trial: tt.trial})
			if !run.OK || sub.Status != StatusActive || sub.InstanceID == "" {
				t.Fatalf("purchase: %+v, subscription %+v", run, sub)
			}
			for _, p := range tt.pre {
				if r, _ := v.play(sub.ID, p); !r.OK {
					t.Fatalf("%s: %s", p, r.Err)
				}
			}
			before, _ := v.e.Subscription(sub.ID)
			after := before
			if tt.scenario != "" {
				run, after = v.play(sub.ID, tt.scenario)
				if !run.OK {
					t.Fatalf("%s: %s", tt.scenario, run.Err)
				}
			}
			var msgs []Message
			for _, id := range run.Messages {
				m, ok := v.e.Message(id)
				if !ok || m.Status != MessageSuccess || len(m.Attempts) != 1 {
					t.Fatalf("message %s: %+v", id, m)
				}
				if m.SubscriptionID != sub.ID || m.Scenario != run.Scenario || m.InstanceID != sub.InstanceID {
					t.Errorf("message %s names %s/%s/%s", id, m.SubscriptionID, m.Scenario, m.InstanceID)
				}
				msgs = append(msgs, m)
			}
			if len(msgs) != len(tt.wantIface) {
				t.Fatalf("%d messages, want %v", len(msgs), tt.wantIface)
			}
			for i, m := range msgs {
				if m.Interface != tt.wantIface[i] {
					t.Errorf("message %d is %s, want %s", i, m.Interface, tt.wantIface[i])
				}
			}
			if tt.order != "" {
				if len(after.Orders) != len(before.Orders)+1 && tt.scenario != "" {
					t.Fatalf("orders %v → %v, want one more", before.Orders, after.Orders)
				}
				id := after.Orders[len(after.Orders)-1]
				if !strings.HasPrefix(id, "CS") || len(id) != 17 {
					t.Errorf("order ID %q, want CS + 15 characters", id)
				}
				info := queryOrder(t, v.e, id)
				line, ok := info.Line(id + "-000001")
				if string(info.OrderType) != tt.order || !ok || string(line.ChargingMode) != after.ChargingMode {
					t.Errorf("Query Order %s: type %s, line %+v; want %s", id, info.OrderType, line, tt.order)
				}
				if !after.ExpireTime.IsZero() && tt.order != protocol.OrderTypeUnsubscribe &&
					string(line.ExpireTime) != protocol.FormatTime14(after.ExpireTime) {
					t.Errorf("order expireTime %s, subscription expiry %s", line.ExpireTime, protocol.FormatTime14(after.ExpireTime))
				}
			}
			if tt.check != nil {
				tt.check(t, v, before, after, msgs)
			}
		})
	}
}

func TestTestPurchaseUsesMockOrders(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	run, sub := v.purchase(PurchaseRequest{ProductID: onDemandID, Test: true})
	if !run.OK || sub.OrderID != "MOCKONDEMAND" || sub.OrderLineID != "MOCKONDEMAND-000001" {
		t.Fatalf("run %+v, subscription %+v", run, sub)
	}
	m, _ := v.e.Message(run.Messages[0])
	if b := body(t, m); b["testFlag"] != "1" || !m.Test {
		t.Errorf("test purchase body %s, Test %v", m.Body, m.Test)
	}
	run, _ = v.play(sub.ID, "unsubscribe")
	if m, _ := v.e.Message(run.Messages[0]); body(t, m)["orderId"] != "MOCKMONTYUNSUBSCRIBE" {
		t.Errorf("test unsubscribe body %s", m.Body)
	}
}

func TestPlayRefuses(t *testing.T) {
	v, _ := startSeller(t, testseller.Faults{}, nil)
	_, period := v.purchase(PurchaseRequest{ProductID: periodID})
	_, oneTime := v.purchase(PurchaseRequest{ProductID: oneTimeID})
	tests := []struct{ sub, scenario string }{
		{oneTime.ID, "renewal"},         // wrong mode
		{period.ID, "unfreeze"},         // not frozen
		{period.ID, "trial-to-formal"},  // not a trial
		{period.ID, "arrears-freeze"},   // pay-per-use only
		{period.ID, "purchase"},         // starts a purchase
		{period.ID, "no-such-scenario"}, // unknown
		{"sub-404", "renewal"},          // unknown subscription
	}
	for _, tt := range tests {
		if _, err := v.e.Play(context.Background(), tt.sub, tt.scenario); err == nil {
			t.Errorf("Play(%s, %s) = nil error", tt.sub, tt.scenario)
		}
	}
	if _, err := v.e.Purchase(context.Background(), PurchaseRequest{ProductID: oneTimeID, Trial: true}); err == nil {
		t.Error("trial of a one-time product accepted")
	}
	if _, err := v.e.Purchase(context.Background(), PurchaseRequest{ProductID: "nope"}); err == nil {
		t.Error("unknown product accepted")
	}
	if n := len(v.e.Messages(MessageFilter{})); n != 2 {
		t.Errorf("%d messages after refusals, want the 2 purchases", n)
	}
}
