package isv_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/lockbuf"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
	kstore "github.com/koobridge/koobridge/store"
)

const (
	testAK = "TESTAK0123456789"
	testSK = "TestSK-abcdefghijklmnopqrstuvwxyz0123"
	key1   = "TestAccessKey-0123456789abcdef"
	key2   = "SecondKey-rotation-fedcba9876543210"

	buyerPhone = "13987654321"
	buyerEmail = "buyer.person@example.com"
)

// countingProvisioner wraps a real provisioner and counts the events it
// receives by type.
type countingProvisioner struct {
	next provision.Provisioner

	mu     sync.Mutex
	counts map[provision.EventType]int
}

func (p *countingProvisioner) Provision(ctx context.Context, ev provision.Event) (provision.Result, error) {
	p.mu.Lock()
	if p.counts == nil {
		p.counts = map[provision.EventType]int{}
	}
	p.counts[ev.Type]++
	p.mu.Unlock()
	return p.next.Provision(ctx, ev)
}

func (p *countingProvisioner) count(t provision.EventType) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[t]
}

func (p *countingProvisioner) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

// testClock is the server's clock: real time, unless pinned so that a test
// can put a request timestamp at an exact distance from the server's now.
type testClock struct {
	mu     sync.Mutex
	pinned time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pinned.IsZero() {
		return c.pinned
	}
	return time.Now()
}

// pin stops the clock at now and returns the function that restarts it.
func (c *testClock) pin() (now time.Time, unpin func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinned = time.Now().Truncate(time.Millisecond) // timestamps carry milliseconds
	return c.pinned, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.pinned = time.Time{}
	}
}

// env is one server under test: a real SQLite file, the Open API mock,
// the demo provisioner behind a counter, and the handler on a real
// httptest.Server.
type env struct {
	st     store.Store
	orders *openapitest.Server
	prov   *countingProvisioner
	sealer *seal.Sealer
	reg    *prometheus.Registry
	srv    *isv.Server
	http   *httptest.Server
	url    string
	keys   []string
	logs   *lockbuf.Buffer
	clock  *testClock
	stop   func() error // cancels Run and waits for it (idempotent)
}

// newEnv starts an env; edit adjusts the Config before the server is built.
func newEnv(t *testing.T, edit ...func(*isv.Config)) *env {
	t.Helper()
	ctx := context.Background()
	db, err := kstore.Open(ctx, filepath.Join(t.TempDir(), "koobridge.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })

	orders := openapitest.NewServer(t, testAK, testSK)
	client, err := openapi.New(openapi.Config{BaseURL: orders.URL(), AK: testAK, SK: testSK})
	if err != nil {
		t.Fatalf("openapi client: %v", err)
	}
	dataKey, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := seal.ParseKey(dataKey)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewSealer(raw)
	if err != nil {
		t.Fatal(err)
	}
	prov := &countingProvisioner{next: provision.NewDemo("")}
	logs := &lockbuf.Buffer{}
	reg := prometheus.NewRegistry()
	clock := &testClock{}
	cfg := isv.Config{
		Now:             clock.Now,
		Keys:            isv.Keys{Basic: []string{key1}},
		DB:              db,
		DataKey:         raw,
		Orders:          client,
		Provisioner:     prov,
		TestProvisioner: prov,
		// Generous: the demo provisioner answers at once, but the test
		// machine may be loaded; tests accept 000004 too where it matters.
		Budget:     10 * time.Second,
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg,
	}
	for _, f := range edit {
		f(&cfg)
	}
	srv, err := isv.New(cfg)
	if err != nil {
		t.Fatalf("isv.New: %v", err)
	}
	st := store.Of(cfg.DB) // an edit may have replaced the database
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	var stopOnce sync.Once
	var runErr error
	stop := func() error {
		stopOnce.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(60 * time.Second):
				runErr = errors.New("Run did not return within 60 s of cancel")
			}
		})
		return runErr
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &env{
		stop: stop,
		st:   st, orders: orders, prov: prov, sealer: sealer, reg: reg, srv: srv,
		http: hs, url: hs.URL + "/produce", keys: cfg.Keys.Basic, logs: logs, clock: clock,
	}
}

// addOrder makes Query Order answer a PERIOD order with one line whose
// buyer has a phone number and an e-mail address.
func (e *env) addOrder(orderID, lineID, sku string) {
	e.orders.AddOrder(protocol.OrderInfo{
		OrderID:    protocol.FlexString(orderID),
		OrderType:  protocol.OrderTypeNew,
		CreateTime: protocol.FlexString(protocol.FormatTime14(time.Now())),
		OrderLine: []protocol.OrderLine{{
			OrderLineID:  protocol.FlexString(lineID),
			ChargingMode: protocol.ChargingPeriod,
			ExpireTime:   protocol.FlexString(protocol.FormatTime14(time.Now().AddDate(1, 0, 0))),
			PeriodType:   "year",
			PeriodNumber: "1",
			ProductInfo: protocol.ProductInfoList{{
				ProductID: "OFFI-TEST-1", SKUCode: protocol.FlexString(sku), LinearValue: "10", ProductName: "测试商品",
			}},
		}},
		BuyerInfo: &protocol.BuyerInfo{
			CustomerID:   "cust-001",
			CustomerName: "buyer_one",
			UserName:     "buyer_one",
			MobilePhone:  buyerPhone,
			Email:        buyerEmail,
		},
	})
}

// result is one reply as received.
type result struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r *result) code() string {
	s, _ := r.body["resultCode"].(string)
	return s
}

func (r *result) msg() string {
	s, _ := r.body["resultMsg"].(string)
	return s
}

// request describes one call; the zero value is a POST signed with key1
// now, with a fresh nonce.
type request struct {
	method  string
	key     string
	ts      time.Time
	nonce   string
	query   url.Values // used as is when set (no signing)
	path    string     // instead of /produce
	reqID   string
	noQuery bool
}

func randomNonce(t testing.TB) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// signedQuery returns the signature, timestamp and nonce parameters of body.
func signedQuery(key, nonce string, ts time.Time, body []byte) url.Values {
	stamp := strconv.FormatInt(ts.UnixMilli(), 10)
	return url.Values{
		"signature": {sign.V2Signature(key, nonce, stamp, body)},
		"timestamp": {stamp},
		"nonce":     {nonce},
	}
}

// do sends body as described by rq and returns the reply. It fails the test
// on transport errors and on a reply that is not JSON.
func (e *env) do(t testing.TB, body string, rq request) *result {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	if rq.key == "" {
		rq.key = e.keys[0]
	}
	if rq.ts.IsZero() {
		rq.ts = time.Now()
	}
	if rq.nonce == "" {
		rq.nonce = randomNonce(t)
	}
	q := rq.query
	if q == nil && !rq.noQuery {
		q = signedQuery(rq.key, rq.nonce, rq.ts, []byte(body))
	}
	u := e.url
	if rq.path != "" {
		u = e.http.URL + rq.path
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(rq.method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	req.Header.Set("Accept", "application/json")
	if rq.reqID != "" {
		req.Header.Set("X-Request-Id", rq.reqID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	r := &result{status: resp.StatusCode, header: resp.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("reply is not a JSON object: %v: %s", err, raw)
	}
	return r
}

// call sends a signed POST of body and checks the reply's form: HTTP 200,
// the content type, pure ASCII, and a Body-Sign made with signKey.
func (e *env) call(t testing.TB, body string, rq request) *result {
	t.Helper()
	r := e.do(t, body, rq)
	signKey := rq.key
	if signKey == "" {
		signKey = e.keys[0]
	}
	checkReply(t, r, http.StatusOK, signKey)
	return r
}

func checkReply(t testing.TB, r *result, status int, signKey string) {
	t.Helper()
	if r.status != status {
		t.Errorf("HTTP status %d, want %d (body %s)", r.status, status, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	for i, c := range r.raw {
		if c >= 0x80 {
			t.Errorf("reply byte %d is not ASCII: %s", i, r.raw)
			break
		}
	}
	if signKey != "" {
		if err := sign.VerifyBodySign(signKey, r.header.Get(sign.BodySignHeader), r.raw); err != nil {
			t.Errorf("Body-Sign does not verify with the expected key: %v (header %q)", err, r.header.Get(sign.BodySignHeader))
		}
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id in the reply")
	}
}

func wantCode(t testing.TB, r *result, code protocol.ResultCode) {
	t.Helper()
	if r.code() != string(code) {
		t.Fatalf("resultCode %s (%s), want %s; body %s", r.code(), r.msg(), code, r.raw)
	}
}

func newInstanceBody(orderID, lineID string) string {
	return `{"activity":"newInstance","businessId":"` + randomID() + `","orderId":"` + orderID + `","orderLineId":"` + lineID + `"}`
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// state is what a rejected call must not change.
type state struct {
	instances     int
	jobs          int
	notifications int
	queryOrders   int
	provisioned   int
}

func (e *env) state(t testing.TB) state {
	t.Helper()
	ctx := context.Background()
	insts, err := e.st.Instances(ctx, store.InstanceFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := e.st.Jobs(ctx, store.JobFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	notes, err := e.st.OrderNotifications(ctx, store.OrderNotificationFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return state{len(insts), len(jobs), len(notes), e.orders.QueryOrderCalls(), e.prov.total()}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// calls returns the ledger, oldest first, waiting until it holds at least n
// calls (the ledger is written after the reply).
func (e *env) calls(t testing.TB, n int) []store.Call {
	t.Helper()
	var calls []store.Call
	eventually(t, "ledger rows", func() bool {
		var err error
		calls, err = e.st.Calls(context.Background(), store.CallFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(calls) >= n
	})
	for i, j := 0, len(calls)-1; i < j; i, j = i+1, j-1 {
		calls[i], calls[j] = calls[j], calls[i]
	}
	return calls
}

// metric returns the value of the counter (or the sample count of the
// histogram) name with exactly the given labels, 0 when absent.
func (e *env) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// waitActive creates nothing: it polls queryInstance until the instance
// answers 000000.
func (e *env) waitActive(t testing.TB, id string) *result {
	t.Helper()
	var r *result
	eventually(t, "instance "+id+" active", func() bool {
		r = e.call(t, `{"activity":"queryInstance","instanceId":"`+id+`"}`, request{})
		return r.code() == string(protocol.CodeSuccess)
	})
	return r
}

func newPost(ctx context.Context, u, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	return req, nil
}

// sealKey returns a fresh data key.
func sealKey(t *testing.T) []byte {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := seal.ParseKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
