package instance_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/saasv2"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

const (
	testAK = "AKTEST0123456789"
	testSK = "sk-secret-0123456789"
	// waitFor bounds every poll; generous for a loaded 2-core machine.
	waitFor = 30 * time.Second
)

// counting wraps a real provisioner and records the events it was given
// and the results it returned.
type counting struct {
	p provision.Provisioner

	mu      sync.Mutex
	events  []provision.Event
	results []provision.Result
}

func (c *counting) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	res, err := c.p.Provision(ctx, ev)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	if err == nil {
		c.results = append(c.results, res)
	}
	return res, err
}

// count returns how many events of type typ were delivered successfully
// or not.
func (c *counting) count(typ provision.EventType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ev := range c.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// lastStatusEvent returns the type of the last instance.frozen or
// instance.unfrozen event delivered, or "".
func (c *counting) lastStatusEvent() provision.EventType {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0; i-- {
		if t := c.events[i].Type; t == provision.EventFrozen || t == provision.EventUnfrozen {
			return t
		}
	}
	return ""
}

// lastResult returns the last successful result.
func (c *counting) lastResult() provision.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.results) == 0 {
		return provision.Result{}
	}
	return c.results[len(c.results)-1]
}

// vendor is a real HTTP vendor product behind the webhook provisioner. Its
// behaviour is switched by the test.
type vendor struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu      sync.Mutex
	mode    string        // "ok", "reject" (400), "deny" (change.check refused), "fail" (500), "refuse" (000106)
	delay   time.Duration // before answering
	release chan struct{} // when set, answers wait for it to close
	got     map[provision.EventType]int
}

func newVendor(t *testing.T) *vendor {
	v := &vendor{t: t, secret: "vendor-secret", mode: "ok", got: map[provision.EventType]int{}}
	v.srv = httptest.NewServer(http.HandlerFunc(v.serve))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *vendor) set(mode string, delay time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mode, v.delay = mode, delay
}

func (v *vendor) received(typ provision.EventType) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.got[typ]
}

func (v *vendor) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := provision.VerifyWebhook(v.secret, r.Header.Get("Koobridge-Signature"), body, time.Now()); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev provision.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	v.mu.Lock()
	mode, delay, release := v.mode, v.delay, v.release
	v.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	v.mu.Lock()
	v.got[ev.Type]++
	v.mu.Unlock()
	switch mode {
	case "reject":
		http.Error(w, `{"error":"plan not sold here"}`, http.StatusBadRequest)
		return
	case "fail":
		http.Error(w, `{"error":"vendor down"}`, http.StatusInternalServerError)
		return
	case "refuse":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"resultCode":"000106","resultMsg":"sold out in this region"}`)
		return
	}
	res := provision.Result{Allowed: mode != "deny"}
	if mode == "deny" {
		res.Reason = "downgrade not supported"
	}
	if ev.Type == provision.EventCreated {
		res.AppInfo = &provision.AppInfo{
			FrontEndURL: "https://vendor.example/t/" + ev.Instance.ID,
			UserName:    "admin@vendor.example",
			Password:    "Pw-" + ev.Instance.ID[:8] + "!x",
			Memo:        "登录 with the admin account",
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

func (v *vendor) provisioner(t *testing.T) provision.Provisioner {
	wh, err := provision.NewWebhook(provision.WebhookConfig{URL: v.srv.URL, Secret: v.secret, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

// options of an env.
type options struct {
	path     string        // SQLite file; default a new one in t.TempDir()
	budget   time.Duration // default 5s
	lease    time.Duration // runner lease; default the runner's
	prov     provision.Provisioner
	cipher   *sign.CredentialCipher
	api      *openapitest.Server
	noRunner bool // do not start the runner's workers
	// runnerNow, when set, is the runner's clock (leases, due times).
	runnerNow func() time.Time
	// wrap, when set, wraps the store the Service and the runner use.
	wrap func(store.Store) store.Store
}

// env is one koobridge "process": a Service on a real SQLite file, a real
// Open API client against the openapitest server and a real jobs.Runner.
type env struct {
	t        *testing.T
	path     string
	st       store.Store
	api      *openapitest.Server
	prov     *counting
	testProv *counting
	runner   *jobs.Runner
	svc      *instance.Service
	v2       *inbound.Family // the SaaS V2 family on svc: what the tests call
	stop     context.CancelFunc
	stopped  chan struct{}
	cfg      instance.Config
}

var sealKey = func() []byte {
	k := make([]byte, seal.KeySize)
	for i := range k {
		k[i] = byte(i + 1)
	}
	return k
}()

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	ctx := context.Background()
	if o.path == "" {
		o.path = filepath.Join(t.TempDir(), "koobridge.db")
	}
	if o.budget == 0 {
		o.budget = 5 * time.Second
	}
	if o.api == nil {
		o.api = openapitest.NewServer(t, testAK, testSK)
	}
	if o.prov == nil {
		o.prov = provision.NewDemo("")
	}
	db, err := sqlite.Open(ctx, o.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var st store.Store = db
	if o.wrap != nil {
		st = o.wrap(db)
	}
	client, err := openapi.New(openapi.Config{BaseURL: o.api.URL(), AK: testAK, SK: testSK})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, path: o.path, st: st, api: o.api,
		prov:     &counting{p: o.prov},
		testProv: &counting{p: provision.NewDemo("https://test.example")},
	}
	e.runner = jobs.NewRunner(jobs.Config{
		Store:   st,
		Workers: 2,
		Lease:   o.lease,
		Poll:    20 * time.Millisecond,
		Backoff: func(int) time.Duration { return 30 * time.Millisecond },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:     o.runnerNow,
	})
	e.cfg = instance.Config{
		Store:           st,
		Orders:          client,
		Provisioner:     e.prov,
		TestProvisioner: e.testProv,
		Sealer:          sealer,
		Credentials:     o.cipher,
		BuyerCipher:     o.cipher,
		Budget:          o.budget,
		Jobs:            e.runner,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	svc, err := instance.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.runner.RegisterAll(svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.v2 = saasv2.Family(svc, "/produce")
	runCtx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	e.stopped = make(chan struct{})
	if o.noRunner {
		close(e.stopped)
	} else {
		go func() {
			defer close(e.stopped)
			_ = e.runner.Run(runCtx)
		}()
	}
	t.Cleanup(e.shutdown)
	return e
}

// shutdown stops the runner and waits for the background work.
func (e *env) shutdown() {
	e.stop()
	<-e.stopped
	e.svc.Wait()
}

// do runs req as the pipeline would after authentication: validation,
// then the SaaS V2 family on the env's Service.
func (e *env) do(req protocol.V2Request) inbound.Outcome {
	e.t.Helper()
	return doOn(e.t, e.v2, req)
}

// doOn runs req through family f, validating it first as the pipeline
// does.
func doOn(t *testing.T, f *inbound.Family, req protocol.V2Request) inbound.Outcome {
	t.Helper()
	if !slices.Contains(f.Activities, req.Activity()) {
		r := protocol.NewResponse(protocol.CodeInvalidParam, "activity "+req.Activity()+" is not served here")
		return inbound.Outcome{Response: r, Code: r.ResultCode, Msg: r.ResultMsg}
	}
	if err := req.Validate(); err != nil {
		r := protocol.ErrorResponse(err)
		return inbound.Outcome{Response: r, Code: r.ResultCode, Msg: r.ResultMsg}
	}
	out, err := f.Serve(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: %v", req.Activity(), err)
	}
	return out
}

func (e *env) instance(id string) store.Instance {
	e.t.Helper()
	inst, err := e.st.Instance(context.Background(), id)
	if err != nil {
		e.t.Fatalf("instance %s: %v", id, err)
	}
	return inst
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitStatus(id string, want store.InstanceStatus) store.Instance {
	e.t.Helper()
	var inst store.Instance
	eventually(e.t, "instance "+id+" "+string(want), func() bool {
		inst = e.instance(id)
		return inst.Status == want
	})
	return inst
}

// newReq is a newInstance request for order line 1 of order.
func newReq(order string) protocol.NewInstanceRequest {
	return protocol.NewInstanceRequest{
		ActivityName: protocol.ActivityNewInstance,
		BusinessID:   "biz-" + order,
		OrderID:      order,
		OrderLineID:  order + "-000001",
	}
}

func queryReq(ids string) protocol.QueryInstanceRequest {
	return protocol.QueryInstanceRequest{ActivityName: protocol.ActivityQueryInstance, InstanceID: ids}
}

// addOrder registers a real (non-debug) order with the Open API mock.
func addOrder(api *openapitest.Server, order, charging, sku string) {
	api.AddOrder(protocol.OrderInfo{
		OrderID:    protocol.FlexString(order),
		OrderType:  protocol.OrderTypeNew,
		CreateTime: "20260101000000",
		OrderLine: []protocol.OrderLine{{
			OrderLineID:  protocol.FlexString(order + "-000001"),
			ChargingMode: protocol.FlexString(charging),
			ExpireTime:   "20271231235959",
			PeriodType:   "year",
			PeriodNumber: "1",
			ProductInfo: protocol.ProductInfoList{{
				ProductID: "OFFI-PROD-1", SKUCode: protocol.FlexString(sku), LinearValue: "10", ProductName: "Seats",
			}},
		}},
		BuyerInfo: &protocol.BuyerInfo{
			CustomerID: "cust-1", CustomerName: "ACME", MobilePhone: "15905222222", Email: "alice@acme.example",
			UserName: "alice.wong", CustomerRealName: "Alice Wong",
		},
	})
}

// newActive creates an active instance of a fresh real order.
func (e *env) newActive(order string) string {
	e.t.Helper()
	addOrder(e.api, order, protocol.ChargingPeriod, "sku-basic")
	out := e.do(newReq(order))
	if out.Code != protocol.CodeSuccess && out.Code != protocol.CodeProcessing {
		e.t.Fatalf("newInstance %s: %s %s", order, out.Code, out.Msg)
	}
	e.waitStatus(out.InstanceID, store.StatusActive)
	return out.InstanceID
}

// serviceWith is a second Service, and the SaaS V2 family on it, on the env's
// store and runner whose jobs have maxAttempts attempts. The runner's
// handlers stay the env's Service.
func (e *env) serviceWith(t *testing.T, maxAttempts int) (*instance.Service, *inbound.Family) {
	t.Helper()
	cfg := e.cfg
	cfg.MaxAttempts = maxAttempts
	svc, err := instance.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Wait)
	return svc, saasv2.Family(svc, "/produce")
}
