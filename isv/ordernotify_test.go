package isv_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	istore "github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

const generalKey = "GeneralKey-order-notify-0123456789"

// recorder keeps the events a provisioner was given.
type recorder struct {
	next   provision.Provisioner
	mu     sync.Mutex
	events []provision.Event
}

func (r *recorder) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return r.next.Provision(ctx, ev)
}

func (r *recorder) of(typ provision.EventType) []provision.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []provision.Event
	for _, ev := range r.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func orderNotifyBody(order, line, testFlag string) string {
	return `{"activity":"orderNotify","orderId":"` + order + `","orderLineId":"` + line + `","testFlag":"` + testFlag + `"}`
}

// TestOrderNotify: an order notification is verified with the general
// key, answered at once and durably, then the order's details reach the
// vendor with the buyer's phone and e-mail in clear (decrypted), while
// koobridge keeps them masked.
func TestOrderNotify(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, func(c *isv.Config) {
		c.Keys.General = []string{generalKey}
		rec.next = c.Provisioner
		c.Provisioner, c.TestProvisioner = rec, rec
	})
	// Query Order may send the buyer's phone and e-mail encrypted with the
	// basic key (UNCONFIRMED): koobridge decrypts them for the vendor.
	cipher, err := sign.NewCredentialCipher(key1, sign.EncryptAES256)
	if err != nil {
		t.Fatal(err)
	}
	encPhone, _ := cipher.Encrypt(buyerPhone)
	e.orders.AddOrder(withBuyer("ORDER-N1", "ORDER-N1-000001", encPhone))

	body := orderNotifyBody("ORDER-N1", "ORDER-N1-000001", "0")
	first := e.call(t, body, request{key: generalKey})
	checkReply(t, first, http.StatusOK, generalKey)
	wantCode(t, first, protocol.CodeSuccess)
	// Signed with the basic key: refused, Body-Signed with the general key.
	r := e.do(t, body, request{key: key1})
	checkReply(t, r, http.StatusOK, generalKey)
	wantCode(t, r, protocol.CodeAuthFailed)

	eventually(t, "order.notified", func() bool { return len(rec.of(provision.EventOrderNotified)) == 1 })
	ev := rec.of(provision.EventOrderNotified)[0]
	o := ev.Order
	if ev.ID != "order.notified:ORDER-N1:ORDER-N1-000001" || ev.Test || o == nil {
		t.Fatalf("event %+v", ev)
	}
	if o.OrderID != "ORDER-N1" || o.OrderLineID != "ORDER-N1-000001" || o.SKUCode != "sku-n" || o.ChargingMode != protocol.ChargingPeriod ||
		o.PeriodType != "year" || o.PeriodNumber != 1 || o.Buyer.CustomerID != "cust-001" {
		t.Errorf("order %+v", o)
	}
	if o.Buyer.MobilePhone != buyerPhone || o.Buyer.Email != buyerEmail {
		t.Errorf("buyer phone %q e-mail %q, want them in clear for the vendor", o.Buyer.MobilePhone, o.Buyer.Email)
	}
	var n istore.OrderNotification
	eventually(t, "notification delivered", func() bool {
		n, err = e.st.OrderNotification(context.Background(), "ORDER-N1", "ORDER-N1-000001")
		return err == nil && n.Status == istore.NotificationDelivered
	})
	if strings.Contains(n.OrderJSON, buyerPhone) || strings.Contains(n.OrderJSON, encPhone) || strings.Contains(n.OrderJSON, buyerEmail) ||
		!strings.Contains(n.OrderJSON, "139****4321") || !strings.Contains(n.OrderJSON, "b***@example.com") {
		t.Errorf("stored order is not masked as it should be: %s", n.OrderJSON)
	}

	// A repeat gets the first answer byte for byte and delivers nothing new;
	// the same order line with another testFlag is not a repeat.
	again := e.call(t, body, request{key: generalKey})
	if string(again.raw) != string(first.raw) {
		t.Errorf("repeat answered %s, first %s", again.raw, first.raw)
	}
	r = e.call(t, orderNotifyBody("ORDER-N1", "ORDER-N1-000001", "1"), request{key: generalKey})
	wantCode(t, r, protocol.CodeInvalidParam)
	if !strings.Contains(r.msg(), "testFlag") {
		t.Errorf("other testFlag: %q", r.msg())
	}
	r = e.call(t, `{"activity":"orderNotify","orderId":"ORDER-N2","orderLineId":"ORDER-N2-000001"}`, request{key: generalKey})
	wantCode(t, r, protocol.CodeInvalidParam)
	if !strings.Contains(r.msg(), "testFlag: missing") {
		t.Errorf("missing testFlag: %q", r.msg())
	}
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.of(provision.EventOrderNotified)); got != 1 {
		t.Errorf("order.notified delivered %d times, want once", got)
	}
	for _, c := range e.calls(t, 5) {
		for _, secret := range []string{buyerPhone, buyerEmail, encPhone} {
			if strings.Contains(c.Request+c.Response, secret) {
				t.Errorf("ledger row holds buyer data: %+v", c)
			}
		}
		if c.Activity == protocol.ActivityOrderNotify && c.Interface != "order" {
			t.Errorf("ledger interface %q for orderNotify", c.Interface)
		}
	}
	for _, secret := range []string{buyerPhone, buyerEmail, generalKey} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// withBuyer is the order of e.addOrder with mobilePhone replaced.
func withBuyer(order, line, phone string) protocol.OrderInfo {
	info := protocol.OrderInfo{OrderID: protocol.FlexString(order), OrderType: protocol.OrderTypeNew, CreateTime: "20260101000000",
		OrderLine: []protocol.OrderLine{{
			OrderLineID: protocol.FlexString(line), ChargingMode: protocol.ChargingPeriod, PeriodType: "year", PeriodNumber: "1",
			ProductInfo: protocol.ProductInfoList{{ProductID: "OFFI-TEST-1", SKUCode: "sku-n", LinearValue: "10"}},
		}},
		BuyerInfo: &protocol.BuyerInfo{CustomerID: "cust-001", CustomerName: "buyer_one", MobilePhone: protocol.FlexString(phone), Email: buyerEmail},
	}
	return info
}

// TestOrderNotifyOwnPath: with its own path, order notification is served
// there only; the production path no longer serves it, nor the other path
// the V2 activities.
func TestOrderNotifyOwnPath(t *testing.T) {
	e := newEnv(t, func(c *isv.Config) {
		c.Keys.General = []string{generalKey}
		c.OrderNotifyPath = "/koogallery/orders"
	})
	// The production path and the notification path come first; the Kit
	// paths follow.
	if got := strings.Join(e.srv.Paths()[:3], " "); got != "/produce /koogallery/orders /produceAPI/tenantSync" {
		t.Fatalf("Paths %q", got)
	}
	// The test server serves the handler at every path, as a vendor may
	// mount it at "/".
	e.addOrder("ORDER-P1", "ORDER-P1-000001", "sku")
	body := orderNotifyBody("ORDER-P1", "ORDER-P1-000001", "0")
	wantCode(t, e.call(t, body, request{key: generalKey, path: "/koogallery/orders"}), protocol.CodeSuccess)
	r := e.call(t, body, request{key: key1})
	wantCode(t, r, protocol.CodeInvalidParam)
	if !strings.Contains(r.msg(), "not served here") {
		t.Errorf("orderNotify at the production path: %q", r.msg())
	}
	r = e.call(t, `{"activity":"queryInstance","instanceId":"x"}`, request{key: generalKey, path: "/koogallery/orders"})
	wantCode(t, r, protocol.CodeInvalidParam)
	r = e.do(t, `{"activity":"queryInstance","instanceId":"x"}`, request{key: generalKey, path: "/elsewhere"})
	if r.status != http.StatusNotFound {
		t.Errorf("unknown path: %d", r.status)
	}
}

// TestOrderNotifyIDsAndDebugOrders: ids are free text (two order lines
// whose ids joined with ":" look alike are two notifications), and on a
// MOCK* order testFlag "0" and "1" mean the same debug call.
func TestOrderNotifyIDsAndDebugOrders(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, func(c *isv.Config) {
		rec.next = c.Provisioner
		c.Provisioner, c.TestProvisioner = rec, rec
	})
	for _, o := range []struct{ order, line string }{{"CS:A", "B"}, {"CS", "A:B"}} {
		e.orders.AddOrder(protocol.OrderInfo{OrderID: protocol.FlexString(o.order), OrderType: protocol.OrderTypeNew,
			OrderLine: []protocol.OrderLine{{OrderLineID: protocol.FlexString(o.line), ChargingMode: protocol.ChargingPeriod}}})
		wantCode(t, e.call(t, orderNotifyBody(o.order, o.line, "0"), request{}), protocol.CodeSuccess)
	}
	eventually(t, "two order.notified events", func() bool { return len(rec.of(provision.EventOrderNotified)) == 2 })
	got := map[string]bool{}
	for _, ev := range rec.of(provision.EventOrderNotified) {
		got[ev.Order.OrderID+"|"+ev.Order.OrderLineID] = true
	}
	if !got["CS:A|B"] || !got["CS|A:B"] {
		t.Errorf("notified %v, want both order lines", got)
	}

	first := e.call(t, orderNotifyBody("MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001", "1"), request{})
	wantCode(t, first, protocol.CodeSuccess)
	again := e.call(t, orderNotifyBody("MOCKPERIODYEARNEW", "MOCKPERIODYEARNEW-000001", "0"), request{})
	if string(again.raw) != string(first.raw) {
		t.Errorf("MOCK order with testFlag 0 after 1: %s, first %s", again.raw, first.raw)
	}
	eventually(t, "the debug order delivered", func() bool { return len(rec.of(provision.EventOrderNotified)) == 3 })
	if ev := rec.of(provision.EventOrderNotified)[2]; !ev.Test {
		t.Errorf("the MOCK order's event is not marked test: %+v", ev)
	}
}
