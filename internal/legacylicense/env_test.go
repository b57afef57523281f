package legacylicense_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/legacylicense"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/saasv1"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/dbtest"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

const (
	basicKey = "basic-key-0123456789abcdef"
	testAK   = "AKLEGACY0123456789"
	testSK   = "sk-legacy-secret-0123456789"
	// waitFor bounds every poll; generous for a loaded 2-core machine.
	waitFor = 30 * time.Second
)

var dialects = dbtest.Dialects

// generator is the vendor's product: the demo's answers unless told
// otherwise, every event recorded; gate, while set, holds license.requested.
type generator struct {
	mu     sync.Mutex
	mode   string // "" the demo, "file", "permanent"
	gate   chan struct{}
	events []provision.Event
}

// fileContent is the license file made in mode "file".
var fileContent = []byte("LIC\x00FILE\xfe\xff")

func (g *generator) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	g.mu.Lock()
	mode, gate := g.mode, g.gate
	g.mu.Unlock()
	if ev.Type == provision.EventLicenseRequested && gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return provision.Result{}, ctx.Err()
		}
	}
	g.mu.Lock()
	g.events = append(g.events, ev)
	g.mu.Unlock()
	if ev.Type == provision.EventLicenseRequested {
		switch mode {
		case "file":
			return provision.Result{License: &provision.LicenseFile{FileName: "a.lic", Content: fileContent}}, nil
		case "permanent":
			return provision.Result{}, provision.Permanent(errplain("no license for http://internal.vendor.example"))
		}
	}
	return provision.NewDemo("").Provision(ctx, ev)
}

type errplain string

func (e errplain) Error() string { return string(e) }

func (g *generator) set(mode string, gate chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mode, g.gate = mode, gate
}

func (g *generator) of(typ provision.EventType) []provision.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []provision.Event
	for _, ev := range g.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// lifecycle lists the license.renewed, frozen and released events in the
// order they were delivered (one job at a time each, so the order of the
// calls when each call waits for its event).
func (g *generator) lifecycle() []provision.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []provision.Event
	for _, ev := range g.events {
		switch ev.Type {
		case provision.EventLicenseRenewed, provision.EventLicenseFrozen, provision.EventLicenseReleased:
			out = append(out, ev)
		}
	}
	return out
}

// options of an env.
type options struct {
	budget time.Duration // default 10s
	window time.Duration // the timeStamp window
}

// env is the license 1.0 family, beside SaaS V1 at /produce and alone at
// /license, behind the real inbound pipeline on a real database, served
// over HTTP, with a running job runner.
type env struct {
	st   store.Store
	real *generator
	test *generator
	srv  *httptest.Server
}

// forEachDialect runs fn against a fresh env on each database.
func forEachDialect(t *testing.T, o options, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d.Name, func(t *testing.T) { fn(t, newEnv(t, d.Open(t), o)) })
	}
}

var sealKey = func() []byte {
	k := make([]byte, seal.KeySize)
	for i := range k {
		k[i] = byte(5 * (i + 1))
	}
	return k
}()

func newEnv(t *testing.T, st store.Store, o options) *env {
	t.Helper()
	t.Cleanup(func() { st.Close() })
	if o.budget == 0 {
		o.budget = 10 * time.Second
	}
	quiet := slog.New(slog.DiscardHandler)
	api := openapitest.NewServer(t, testAK, testSK)
	client, err := openapi.New(openapi.Config{BaseURL: api.URL(), AK: testAK, SK: testSK})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(sealKey)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, real: &generator{}, test: &generator{}}
	runner := jobs.NewRunner(jobs.Config{Store: st, Workers: 3, Poll: 10 * time.Millisecond, Logger: quiet,
		Backoff: func(int) time.Duration { return 5 * time.Millisecond }})
	grants, err := grant.New(grant.Config{
		DeviceKey: testDeviceKey, Store: st, Provisioner: e.real, TestProvisioner: e.test, Uploader: client, Sealer: sealer, Jobs: runner,
		Budget: o.budget, MaxAttempts: 3, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := legacylicense.New(legacylicense.Config{Grants: grants, TimestampWindow: o.window})
	if err != nil {
		t.Fatal(err)
	}
	instances, err := instance.New(instance.Config{
		Store: st, Orders: client, Provisioner: e.real, Sealer: sealer, Budget: o.budget, Jobs: runner, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	v1, err := saasv1.New(saasv1.Config{Instances: instances, Keys: []string{basicKey}})
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range []map[string]jobs.HandlerFunc{instances.Jobs(), grants.Jobs()} {
		if err := runner.RegisterAll(js); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; grants.Wait(); instances.Wait() })
	in, err := inbound.New(inbound.Config{
		Families: []*inbound.Family{v1.Family("/produce"), svc.Family("/produce", "/license")},
		Keys:     inbound.Keys{inbound.KeyBasic: {basicKey}},
		Store:    st,
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(in)
	t.Cleanup(e.srv.Close)
	return e
}

// reply is an answer as received.
type reply struct {
	status     int
	body       string
	code       string
	msg        string
	instanceID string
	license    string
}

// signedQuery is params with timeStamp (now unless given) and the
// authToken made with key.
func signedQuery(t *testing.T, key string, params map[string]string) url.Values {
	t.Helper()
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	if q.Get("timeStamp") == "" {
		q.Set("timeStamp", protocol.FormatTime17(time.Now()))
	}
	tok, err := sign.AuthTokenQuery(key, q)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("authToken", tok)
	return q
}

// getRaw sends a GET to path with the raw query and checks the reply's
// Body-Sign (the basic key's).
func (e *env) getRaw(t *testing.T, path, rawQuery string) reply {
	t.Helper()
	resp, err := http.Get(e.srv.URL + path + "?" + rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		protocol.Response
		InstanceID string `json:"instanceId"`
		License    string `json:"license"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	if err := sign.VerifyBodySign(basicKey, resp.Header.Get(sign.BodySignHeader), b); err != nil {
		t.Errorf("Body-Sign does not verify with the basic key: %v", err)
	}
	return reply{status: resp.StatusCode, body: string(b), code: string(r.ResultCode), msg: r.ResultMsg, instanceID: r.InstanceID, license: r.License}
}

// get signs params with the basic key and sends them to path.
func (e *env) get(t *testing.T, path string, params map[string]string) reply {
	t.Helper()
	return e.getRaw(t, path, signedQuery(t, basicKey, params).Encode())
}

// call sends params to /produce and wants code.
func (e *env) call(t *testing.T, params map[string]string, code string) reply {
	t.Helper()
	r := e.get(t, "/produce", params)
	if r.code != code || r.status != http.StatusOK {
		t.Fatalf("%v: answered %d %s %q, want %s", params, r.status, r.code, r.msg, code)
	}
	return r
}

// buy is a getLicense of order with businessId biz.
func buy(order, biz string) map[string]string {
	return map[string]string{
		"activity": "getLicense", "customerId": "cust-1", "customerName": "ACME", "businessId": biz, "orderId": order,
		"skuCode": "sku-1", "productId": "OFFI-LIC-1", "expireTime": "20271231235959", "periodType": "year",
		"periodNumber": "1", "amount": "3",
	}
}

// with returns a copy of params with the given changes ("" deletes).
func with(params map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range params {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testDeviceKey keys the device hashes in these tests.
var testDeviceKey = []byte("koobridge test device key, 32 bytes or more")
