package ordernotify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/ordernotify"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

const testAK, testSK = "AK-ordernotify", "SK-ordernotify-secret"

// vendor is the vendor's product: it records order.notified events and
// fails as told.
type vendor struct {
	mu     sync.Mutex
	events []provision.Event
	fail   error // returned by every delivery when set
}

func (v *vendor) Provision(_ context.Context, ev provision.Event) (provision.Result, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.events = append(v.events, ev)
	return provision.Result{}, v.fail
}

func (v *vendor) first() provision.Event {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.events[0]
}

func (v *vendor) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.events)
}

// env is the family on a real SQLite store, the Open API imitation over
// HTTP and a running job runner.
type env struct {
	st     *sqlite.Store
	api    *openapitest.Server
	vendor *vendor
	family *inbound.Family
}

func newEnv(t *testing.T, v *vendor) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	api := openapitest.NewServer(t, testAK, testSK)
	client, err := openapi.New(openapi.Config{BaseURL: api.URL(), AK: testAK, SK: testSK})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runner := jobs.NewRunner(jobs.Config{Store: st, Poll: 10 * time.Millisecond, Logger: quiet,
		Backoff: func(int) time.Duration { return 5 * time.Millisecond }})
	svc, err := ordernotify.New(ordernotify.Config{Store: st, Orders: client, Provisioner: v, Jobs: runner, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	f := svc.Family("/produce")
	if err := runner.RegisterAll(f.Jobs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &env{st: st, api: api, vendor: v, family: f}
}

// notify decodes and serves an orderNotify body as the pipeline would.
func (e *env) notify(t *testing.T, body string) inbound.Outcome {
	t.Helper()
	req, err := e.family.Decode(&inbound.Call{Body: []byte(body)})
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if err := req.Validate(); err != nil {
		t.Fatalf("validate %s: %v", body, err)
	}
	out, err := e.family.Serve(context.Background(), req)
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	return out
}

func body(order, testFlag string) string {
	return `{"activity":"orderNotify","orderId":"` + order + `","orderLineId":"` + order + `-000001","testFlag":"` + testFlag + `"}`
}

func (e *env) addOrder(order string) {
	e.api.AddOrder(protocol.OrderInfo{
		OrderID: protocol.FlexString(order), OrderType: protocol.OrderTypeNew, CreateTime: "20261206100000",
		OrderLine: []protocol.OrderLine{{
			OrderLineID: protocol.FlexString(order + "-000001"), ChargingMode: protocol.ChargingOneTime,
			ProductInfo: protocol.ProductInfoList{{ProductID: "p-1", SKUCode: "sku-1", ProductName: "Seats"}},
		}},
		BuyerInfo: &protocol.BuyerInfo{CustomerID: "c-1", MobilePhone: "13987654321", Email: "alice@example.com"},
	})
}

// waitStatus polls the notification of order until it has status.
func (e *env) waitStatus(t *testing.T, order string, want store.OrderNotificationStatus) store.OrderNotification {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := e.st.OrderNotification(context.Background(), order, order+"-000001")
		if err == nil && n.Status == want {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("notification of %s: %+v, %v; want %s", order, n, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) job(t *testing.T) store.Job {
	t.Helper()
	js, err := e.st.Jobs(context.Background(), store.JobFilter{Kind: ordernotify.KindNotify})
	if err != nil || len(js) != 1 {
		t.Fatalf("order-notify jobs %+v, %v; want one", js, err)
	}
	return js[0]
}

func TestNotifyAnswersAtOnceAndDelivers(t *testing.T) {
	e := newEnv(t, &vendor{})
	e.addOrder("CS-ON-1")
	first := e.notify(t, body("CS-ON-1", "0"))
	if first.Code != protocol.CodeSuccess || first.Repeat || first.IdemKey != "orderNotify:CS-ON-1:CS-ON-1-000001" || first.Test {
		t.Fatalf("first: %+v", first)
	}
	n := e.waitStatus(t, "CS-ON-1", store.NotificationDelivered)
	if !strings.Contains(n.OrderJSON, `"139****4321"`) || strings.Contains(n.OrderJSON, "13987654321") || n.LastError != "" {
		t.Errorf("stored notification %+v", n)
	}
	ev := e.vendor.first()
	if ev.Type != provision.EventOrderNotified || ev.Order.ProductName != "Seats" || ev.Order.Buyer.MobilePhone != "13987654321" ||
		ev.Order.ChargingMode != protocol.ChargingOneTime || !ev.Order.CreateTime.Equal(time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("event %+v order %+v", ev, ev.Order)
	}
	again := e.notify(t, body("CS-ON-1", "0"))
	if !again.Repeat || string(again.Response.(json.RawMessage)) != string(first.Response.(json.RawMessage)) {
		t.Errorf("repeat %+v", again)
	}
	if other := e.notify(t, body("CS-ON-1", "1")); other.Code != protocol.CodeInvalidParam || other.Repeat {
		t.Errorf("the real order line notified as a debug one: %+v", other)
	}
	time.Sleep(50 * time.Millisecond)
	if n := e.vendor.count(); n != 1 {
		t.Errorf("the vendor got %d events, want 1", n)
	}
}

// TestQueryOrderOutage: while Query Order fails the notification stays
// pending with the reason, and is delivered once it answers.
func TestQueryOrderOutage(t *testing.T) {
	e := newEnv(t, &vendor{})
	e.addOrder("CS-ON-2")
	e.api.SetFault(mockapi.Fault{Status: http.StatusServiceUnavailable, Count: 3})
	if out := e.notify(t, body("CS-ON-2", "0")); out.Code != protocol.CodeSuccess {
		t.Fatalf("answer %s during an outage: the notification is taken before Query Order", out.Code)
	}
	e.waitStatus(t, "CS-ON-2", store.NotificationDelivered)
	if n := e.api.QueryOrderCalls(); n != 4 {
		t.Errorf("Query Order called %d times, want 4 (3 failed, then the answer)", n)
	}
	// The job completes just after the notification is recorded delivered.
	for deadline := time.Now().Add(10 * time.Second); e.job(t).State != store.JobDone && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if j := e.job(t); j.State != store.JobDone || j.Attempts != 4 || !strings.Contains(j.LastError, "waiting for order details") {
		t.Errorf("job %+v", j)
	}
}

// TestVendorRejects: a permanent error of the vendor fails the
// notification at once; the job is dead after one attempt.
func TestVendorRejects(t *testing.T) {
	e := newEnv(t, &vendor{fail: provision.Permanent(errors.New("we do not ship there"))})
	e.addOrder("CS-ON-3")
	e.notify(t, body("CS-ON-3", "0"))
	n := e.waitStatus(t, "CS-ON-3", store.NotificationFailed)
	if !strings.Contains(n.LastError, "we do not ship there") {
		t.Errorf("last error %q", n.LastError)
	}
	for deadline := time.Now().Add(10 * time.Second); e.job(t).State != store.JobDead && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	j := e.job(t)
	if j.State != store.JobDead || j.Attempts != 1 {
		t.Fatalf("job %+v, want dead after one attempt", j)
	}
	// An operator re-runs it (admin API: jobs/{id}/retry) while the vendor
	// is still unwell: pending again, not failed; then it recovers.
	e.vendor.mu.Lock()
	e.vendor.fail = errors.New("vendor busy")
	e.vendor.mu.Unlock()
	if err := e.st.ReviveJob(context.Background(), j.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	n = e.waitStatus(t, "CS-ON-3", store.NotificationPending)
	if !strings.Contains(n.LastError, "vendor busy") {
		t.Errorf("last error %q after the re-run", n.LastError)
	}
	e.vendor.mu.Lock()
	e.vendor.fail = nil
	e.vendor.mu.Unlock()
	e.waitStatus(t, "CS-ON-3", store.NotificationDelivered)
}

// TestVendorFailsEveryAttempt: a retryable error is retried; at the last
// attempt the notification is failed.
func TestVendorFailsEveryAttempt(t *testing.T) {
	v := &vendor{fail: errors.New("vendor busy")}
	e := newEnv(t, v)
	e.addOrder("CS-ON-4")
	e.notify(t, body("CS-ON-4", "0"))
	e.waitStatus(t, "CS-ON-4", store.NotificationFailed)
	if n := v.count(); n != jobs.DefaultMaxAttempts {
		t.Errorf("the vendor was tried %d times, want %d", n, jobs.DefaultMaxAttempts)
	}
}
