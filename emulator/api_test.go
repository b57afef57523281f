package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const webTestKey = "WebTestKey-0123456789abcdef"

// webEnv is an emulator serving Handler over real HTTP, playing toward the
// in-memory test seller.
type webEnv struct {
	t      *testing.T
	e      *Emulator
	srv    *httptest.Server
	client *http.Client // does not follow redirects
}

func startWeb(t *testing.T) *webEnv {
	t.Helper()
	seller := httptest.NewServer(testseller.New(webTestKey, testseller.Faults{}))
	t.Cleanup(seller.Close)
	e, err := New(Config{Target: seller.URL, Key: webTestKey, AK: "web-ak", SK: "web-sk", NoRetry: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &webEnv{t: t, e: e, srv: srv, client: client}
}

// product returns the first catalogue product with the charging mode.
func (w *webEnv) product(mode string) Product {
	w.t.Helper()
	for _, p := range w.e.Products() {
		if p.ChargingMode == mode {
			return p
		}
	}
	w.t.Fatalf("no %s product in %+v", mode, w.e.Products())
	return Product{}
}

// do sends a request and returns the status and body; the body is JSON
// unless it is nil.
func (w *webEnv) do(method, path string, body any, header ...string) (int, []byte) {
	w.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			w.t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, w.srv.URL+path, r)
	if err != nil {
		w.t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp.StatusCode, raw
}

// call sends a JSON request, checks the status and decodes the answer
// into out (when not nil).
func (w *webEnv) call(method, path string, body any, want int, out any) {
	w.t.Helper()
	status, raw := w.do(method, path, body)
	if status != want {
		w.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, status, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			w.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

// buy purchases a product through the JSON API and returns the run.
func (w *webEnv) buy(p PurchaseRequest) Run {
	w.t.Helper()
	var run Run
	w.call("POST", "/api/emulator/purchases", p, http.StatusCreated, &run)
	if !run.OK || run.SubscriptionID == "" {
		w.t.Fatalf("purchase %+v: %+v", p, run)
	}
	return run
}

func TestWebAPIPurchaseAndRenewal(t *testing.T) {
	w := startWeb(t)
	prod := w.product(protocol.ChargingPeriod)
	run := w.buy(PurchaseRequest{ProductID: prod.ID})
	if run.Scenario != "purchase" || len(run.Messages) == 0 {
		t.Errorf("run = %+v, want scenario purchase with messages", run)
	}

	var sub Subscription
	w.call("GET", "/api/emulator/subscriptions/"+run.SubscriptionID, nil, http.StatusOK, &sub)
	if sub.Status != StatusActive || sub.InstanceID == "" || sub.ProductID != prod.ID || sub.ExpireTime.IsZero() {
		t.Fatalf("after purchase: %+v, want active with an instance and an expiry", sub)
	}
	var subs []Subscription
	w.call("GET", "/api/emulator/subscriptions", nil, http.StatusOK, &subs)
	if len(subs) != 1 || subs[0].ID != sub.ID {
		t.Errorf("subscriptions = %+v, want just %s", subs, sub.ID)
	}

	var renewal Run
	w.call("POST", "/api/emulator/subscriptions/"+sub.ID+"/play", map[string]string{"scenario": "renewal"}, http.StatusOK, &renewal)
	if !renewal.OK || renewal.Scenario != "renewal" || renewal.SubscriptionID != sub.ID {
		t.Fatalf("renewal run = %+v", renewal)
	}
	var after Subscription
	w.call("GET", "/api/emulator/subscriptions/"+sub.ID, nil, http.StatusOK, &after)
	if want := sub.ExpireTime.AddDate(0, prod.PeriodNumber, 0); prod.PeriodType == "month" && !after.ExpireTime.Equal(want) {
		t.Errorf("expiry after renewal = %v, want %v (one %s after %v)", after.ExpireTime, want, prod.PeriodType, sub.ExpireTime)
	}
	if !after.ExpireTime.After(sub.ExpireTime) || len(after.Orders) <= len(sub.Orders) {
		t.Errorf("after renewal: %+v, want a later expiry and a new order (before: %+v)", after, sub)
	}
}

func TestWebAPIMessages(t *testing.T) {
	w := startWeb(t)
	run := w.buy(PurchaseRequest{ProductID: w.product(protocol.ChargingPeriod).ID})

	var msgs []Message
	w.call("GET", "/api/emulator/messages?subscription="+run.SubscriptionID+"&interface=newInstance", nil, http.StatusOK, &msgs)
	if len(msgs) != 1 || msgs[0].Interface != protocol.ActivityNewInstance || msgs[0].Status != MessageSuccess {
		t.Fatalf("newInstance messages = %+v, want one success", msgs)
	}
	var none []Message
	w.call("GET", "/api/emulator/messages?subscription=NOPE", nil, http.StatusOK, &none)
	if none == nil || len(none) != 0 {
		t.Errorf("messages of an unknown subscription = %#v, want []", none)
	}
	var one []Message
	w.call("GET", "/api/emulator/messages?limit=1", nil, http.StatusOK, &one)
	if len(one) != 1 {
		t.Errorf("limit=1 gave %d messages", len(one))
	}

	var m Message
	w.call("GET", "/api/emulator/messages/"+msgs[0].ID, nil, http.StatusOK, &m)
	if len(m.Attempts) != 1 {
		t.Fatalf("attempts = %+v, want 1", m.Attempts)
	}
	a := m.Attempts[0]
	sub, _ := w.e.Subscription(run.SubscriptionID)
	if a.Request.Body == "" || a.Request.Body != m.Body || !strings.Contains(a.Request.Body, `"orderId":"`+sub.OrderID+`"`) {
		t.Errorf("request body = %q, want the message body %q with orderId %s", a.Request.Body, m.Body, sub.OrderID)
	}
	if a.Request.Method != http.MethodPost || !strings.Contains(a.Request.URL, "signature=") {
		t.Errorf("request = %s %s, want a signed POST", a.Request.Method, a.Request.URL)
	}
	if a.Response == nil || a.Response.Status != http.StatusOK || !strings.Contains(a.Response.Body, `"resultCode"`) {
		t.Fatalf("response = %+v, want 200 with a resultCode", a.Response)
	}
	if bs := a.Response.Header[sign.BodySignHeader]; sign.VerifyBodySign(webTestKey, bs, []byte(a.Response.Body)) != nil {
		t.Errorf("response Body-Sign %q does not match the recorded body %q", bs, a.Response.Body)
	}
}

func TestWebAPIRedrive(t *testing.T) {
	w := startWeb(t)
	run := w.buy(PurchaseRequest{ProductID: w.product(protocol.ChargingPeriod).ID})
	id := run.Messages[0]
	before, _ := w.e.Message(id)

	var m Message
	w.call("POST", "/api/emulator/messages/"+id+"/redrive", nil, http.StatusOK, &m)
	if len(m.Attempts) != len(before.Attempts)+1 {
		t.Fatalf("after re-drive: %d attempts, want %d", len(m.Attempts), len(before.Attempts)+1)
	}
	var again Message
	w.call("GET", "/api/emulator/messages/"+id, nil, http.StatusOK, &again)
	if len(again.Attempts) != len(m.Attempts) || again.Status != MessageSuccess {
		t.Errorf("message after re-drive = %d attempts, status %s; want %d, success", len(again.Attempts), again.Status, len(m.Attempts))
	}
}

func TestWebAPIFaults(t *testing.T) {
	w := startWeb(t)
	body := `{"openapiLatency":"2s","openapiStatus":503,"openapiCount":2,"duplicates":1,"clockSkew":-90000000000,` +
		`"licenseApiStatus":200,"licenseApiCode":"92020001","licenseApiLatency":"1s","licenseApiCount":3,"uploadFailures":2,"uploadFailureCode":"91381036","usageFailRate":0.3}`
	want := Faults{OpenAPILatency: 2 * time.Second, OpenAPIStatus: 503, OpenAPICount: 2, Duplicates: 1, ClockSkew: -90 * time.Second,
		LicenseAPIStatus: 200, LicenseAPICode: "92020001", LicenseAPILatency: time.Second, LicenseAPICount: 3, UploadFailures: 2, UploadFailureCode: "91381036",
		UsageFailRate: 0.3}
	status, raw := w.do("PUT", "/api/emulator/faults", body)
	if status != http.StatusOK {
		t.Fatalf("PUT faults: %d %s", status, raw)
	}
	if got := w.e.Faults(); got != want {
		t.Errorf("Faults() = %+v, want %+v", got, want)
	}
	const wantJSON = `{"openapiLatency":"2s","openapiStatus":503,"openapiTimeout":false,"openapiCount":2,"duplicates":1,"clockSkew":"-1m30s","oneaccessTokenLatency":"0s","oneaccessTokenFail":false,` +
		`"licenseApiStatus":200,"licenseApiCode":"92020001","licenseApiLatency":"1s","licenseApiCount":3,"uploadFailures":2,"uploadFailureCode":"91381036","usageFailRate":0.3}`
	if got := strings.TrimSpace(string(raw)); got != wantJSON {
		t.Errorf("PUT answer = %s, want %s", got, wantJSON)
	}
	if status, raw := w.do("GET", "/api/emulator/faults", nil); status != http.StatusOK || strings.TrimSpace(string(raw)) != wantJSON {
		t.Errorf("GET faults = %d %s, want %s", status, raw, wantJSON)
	}
	w.call("PUT", "/api/emulator/faults", map[string]any{"openapiTimeout": true}, http.StatusOK, nil)
	if got := w.e.Faults(); got != (Faults{OpenAPITimeout: true}) {
		t.Errorf("after a second PUT: %+v, want only the timeout (PUT replaces)", got)
	}
	w.call("PUT", "/api/emulator/faults", map[string]any{}, http.StatusOK, nil)
	if got := w.e.Faults(); got != (Faults{}) {
		t.Errorf("after PUT {}: %+v, want no faults", got)
	}
}

func TestWebAPIClock(t *testing.T) {
	w := startWeb(t)
	var before, after clockJSON
	w.call("GET", "/api/emulator/clock", nil, http.StatusOK, &before)
	if before.Now.IsZero() || before.TimeScale != w.e.Config().TimeScale || before.TimeScale <= 0 {
		t.Fatalf("clock = %+v, want a time and the configured scale %v", before, w.e.Config().TimeScale)
	}
	w.call("POST", "/api/emulator/clock/advance", map[string]string{"duration": "24h"}, http.StatusOK, &after)
	if d := after.Now.Sub(before.Now); d < 24*time.Hour {
		t.Errorf("clock moved %v, want at least 24h", d)
	}
	if now := w.e.Now(); now.Before(after.Now) {
		t.Errorf("Now() = %v, before the advanced clock %v", now, after.Now)
	}
}

func TestWebAPIProducts(t *testing.T) {
	w := startWeb(t)
	var prods []Product
	w.call("GET", "/api/emulator/products", nil, http.StatusOK, &prods)
	if len(prods) == 0 || len(prods) != len(w.e.Products()) {
		t.Fatalf("products = %+v, want the catalogue", prods)
	}
	p := Product{ID: "OFFI-WEB-TEST", SKU: "OFFI-WEB-TEST-SKU", Name: "Web test", ChargingMode: protocol.ChargingOneTime}
	var got Product
	w.call("POST", "/api/emulator/products", p, http.StatusCreated, &got)
	if got.ID != p.ID || got.ChargingMode != p.ChargingMode {
		t.Errorf("POST products = %+v, want %+v", got, p)
	}
	w.call("GET", "/api/emulator/products", nil, http.StatusOK, &prods)
	if len(prods) != len(w.e.Products()) || !containsProduct(prods, p.ID) {
		t.Errorf("products after POST = %+v, want %s among them", prods, p.ID)
	}
	var scenarios []Scenario
	w.call("GET", "/api/emulator/scenarios", nil, http.StatusOK, &scenarios)
	if !containsScenario(scenarios, "renewal") || !containsScenario(scenarios, "purchase") {
		t.Errorf("scenarios = %+v, want purchase and renewal", scenarios)
	}
}

func containsProduct(ps []Product, id string) bool {
	for _, p := range ps {
		if p.ID == id {
			return true
		}
	}
	return false
}

func containsScenario(ss []Scenario, name string) bool {
	for _, s := range ss {
		if s.Name == name {
			return true
		}
	}
	return false
}

func TestWebAPIErrors(t *testing.T) {
	w := startWeb(t)
	period := w.product(protocol.ChargingPeriod)
	oneTime := w.product(protocol.ChargingOneTime)
	sub := w.buy(PurchaseRequest{ProductID: period.ID}).SubscriptionID
	msg := w.e.Messages(MessageFilter{})[0].ID
	big := `{"productId":"` + strings.Repeat("x", maxBody) + `"}`

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // in the error message
	}{
		{"broken JSON", "POST", "/api/emulator/purchases", `{"productId":`, 400, "bad JSON"},
		{"empty body", "POST", "/api/emulator/purchases", ``, 400, "empty body"},
		{"unknown field", "POST", "/api/emulator/purchases", `{"productId":"` + period.ID + `","colour":"red"}`, 400, "unknown field"},
		{"two values", "POST", "/api/emulator/purchases", `{"productId":"` + period.ID + `"} {}`, 400, "more than one value"},
		{"body too large", "POST", "/api/emulator/purchases", big, 400, "larger than"},
		{"no product", "POST", "/api/emulator/purchases", `{}`, 400, "productId is required"},
		{"unknown product", "POST", "/api/emulator/purchases", `{"productId":"NOPE"}`, 404, `emulator: purchase: product "NOPE": not found`},
		{"trial without trial days", "POST", "/api/emulator/purchases", `{"productId":"` + oneTime.ID + `","trial":true}`, 400, "emulator: purchase: ONE_TIME products have no trial"},
		{"unknown subscription", "GET", "/api/emulator/subscriptions/NOPE", ``, 404, "no such subscription"},
		{"play unknown subscription", "POST", "/api/emulator/subscriptions/NOPE/play", `{"scenario":"renewal"}`, 404, `emulator: play: subscription "NOPE": not found`},
		{"play unknown scenario", "POST", "/api/emulator/subscriptions/" + sub + "/play", `{"scenario":"teleport"}`, 400, `emulator: play: unknown scenario "teleport"; known: purchase, trial,`},
		{"play no scenario", "POST", "/api/emulator/subscriptions/" + sub + "/play", `{}`, 400, "scenario is required"},
		{"play misfit scenario", "POST", "/api/emulator/subscriptions/" + sub + "/play", `{"scenario":"arrears-freeze"}`, 409, "emulator: play arrears-freeze on " + sub + ": refused: not for PERIOD subscriptions"},
		{"play a purchase scenario", "POST", "/api/emulator/subscriptions/" + sub + "/play", `{"scenario":"purchase"}`, 409, "emulator: play purchase on " + sub + ": refused: it starts a new purchase; use Purchase"},
		{"unknown message", "GET", "/api/emulator/messages/NOPE", ``, 404, "no such message"},
		{"redrive unknown message", "POST", "/api/emulator/messages/NOPE/redrive", ``, 404, `emulator: redrive: message "NOPE": not found`},
		{"bad message status", "GET", "/api/emulator/messages?status=lost", ``, 400, "unknown status"},
		{"bad limit", "GET", "/api/emulator/messages?limit=many", ``, 400, "limit"},
		{"bad duration string", "PUT", "/api/emulator/faults", `{"openapiLatency":"2 parsecs"}`, 400, "not a duration"},
		{"bad duration type", "PUT", "/api/emulator/faults", `{"clockSkew":true}`, 400, "not a duration"},
		{"negative latency", "PUT", "/api/emulator/faults", `{"openapiLatency":"-1s"}`, 400, "negative"},
		{"status not an error", "PUT", "/api/emulator/faults", `{"openapiStatus":200}`, 400, "openapiStatus"},
		{"too many duplicates", "PUT", "/api/emulator/faults", `{"duplicates":11}`, 400, "duplicates"},
		{"license status 302", "PUT", "/api/emulator/faults", `{"licenseApiStatus":302}`, 400, "licenseApiStatus"},
		{"license code without a status", "PUT", "/api/emulator/faults", `{"licenseApiCode":"92020001"}`, 400, "licenseApiCode needs licenseApiStatus"},
		{"license code with a space", "PUT", "/api/emulator/faults", `{"licenseApiStatus":500,"licenseApiCode":"9202 0001"}`, 400, "licenseApiCode"},
		{"license latency too long", "PUT", "/api/emulator/faults", `{"licenseApiLatency":"6m"}`, 400, "licenseApiLatency"},
		{"negative license count", "PUT", "/api/emulator/faults", `{"licenseApiStatus":500,"licenseApiCount":-1}`, 400, "licenseApiCount"},
		{"too many upload failures", "PUT", "/api/emulator/faults", `{"uploadFailures":1001}`, 400, "uploadFailures"},
		{"upload code without failures", "PUT", "/api/emulator/faults", `{"uploadFailureCode":"CBC.0999"}`, 400, "uploadFailureCode needs uploadFailures"},
		{"unknown fault", "PUT", "/api/emulator/faults", `{"latency":"2s"}`, 400, "unknown field"},
		{"advance backwards", "POST", "/api/emulator/clock/advance", `{"duration":"-1h"}`, 400, `duration must be positive, e.g. "24h"`},
		{"advance nonsense", "POST", "/api/emulator/clock/advance", `{"duration":"soon"}`, 400, "not a duration"},
		{"product without id", "POST", "/api/emulator/products", `{"chargingMode":"ONE_TIME"}`, 400, "required"},
		{"product of no charging mode", "POST", "/api/emulator/products", `{"id":"X","sku":"X","chargingMode":"BARTER"}`, 400, "charging mode"},
		{"unknown endpoint", "GET", "/api/emulator/teapots", ``, 404, "no such endpoint"},
		{"wrong method", "DELETE", "/api/emulator/faults", ``, 405, "not allowed"},
		{"wrong method on a path with a wildcard", "GET", "/api/emulator/subscriptions/" + sub + "/play", ``, 405, "not allowed"},
		{"wrong method, unknown path", "DELETE", "/api/emulator/teapots", ``, 404, "no such endpoint"},
		{"advance beyond the cap", "POST", "/api/emulator/clock/advance", `{"duration":"87661h"}`, 400, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, raw := w.do(tt.method, tt.path, tt.body)
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatalf("answer %s is not a JSON error: %v", raw, err)
			}
			if status != tt.status || !strings.Contains(e.Error, tt.want) {
				t.Errorf("%s %s: %d %q, want %d with %q", tt.method, tt.path, status, e.Error, tt.status, tt.want)
			}
		})
	}
	// None of the refused requests changed anything.
	if n := len(w.e.Subscriptions()); n != 1 {
		t.Errorf("%d subscriptions after refused requests, want 1", n)
	}
	if m, _ := w.e.Message(msg); len(m.Attempts) != 1 {
		t.Errorf("message %s has %d attempts, want 1", msg, len(m.Attempts))
	}
	if f := w.e.Faults(); f != (Faults{}) {
		t.Errorf("faults after refused PUTs: %+v, want none", f)
	}
}

func TestWebAPIOpenAPIPaths(t *testing.T) {
	w := startWeb(t)
	// An unsigned Query Order reaches the mocked Open API, which refuses it
	// as the APIG gateway does, even when it looks cross-site: sellers
	// call these paths server to server.
	for _, h := range [][]string{nil, {"Sec-Fetch-Site", "cross-site"}} {
		status, raw := w.do("GET", mockapi.QueryOrderPath+"?orderId=CS123", nil, h...)
		var e struct {
			Code string `json:"error_code"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || status != http.StatusUnauthorized || e.Code != "APIGW.0301" {
			t.Errorf("unsigned Query Order (headers %v): %d %s, want 401 APIGW.0301", h, status, raw)
		}
	}
	status, raw := w.do("POST", mockapi.OldUsagePath, `{}`, "Origin", "https://evil.example")
	if status == http.StatusForbidden || !strings.Contains(string(raw), "APIGW.0301") {
		t.Errorf("cross-origin old usage push: %d %s, want the Open API's own 401", status, raw)
	}

	var reqs []OpenAPIRequest
	w.call("GET", "/api/emulator/openapi-requests", nil, http.StatusOK, &reqs)
	if len(reqs) != 3 || reqs[0].Path != mockapi.QueryOrderPath || reqs[0].Status != http.StatusUnauthorized {
		t.Errorf("openapi-requests = %+v, want the 3 refused requests", reqs)
	}
	var usage []UsageRecord
	w.call("GET", "/api/emulator/usage/records", nil, http.StatusOK, &usage)
	if usage == nil || len(usage) != 0 {
		t.Errorf("usage records = %#v, want []", usage)
	}
	if status, raw := w.do("GET", "/api/emulator/usage", nil); status != http.StatusOK || strings.TrimSpace(string(raw)) != `{"instances":[]}` {
		t.Errorf("usage = %d %s, want {\"instances\":[]}", status, raw)
	}
}

// Finding 10: a known path with the wrong method answers 405 and lists
// the methods it takes.
func TestWebAPIMethodNotAllowed(t *testing.T) {
	w := startWeb(t)
	tests := []struct{ method, path, allow string }{
		{"DELETE", "/api/emulator/faults", "GET, HEAD, PUT"},
		{"GET", "/api/emulator/purchases", "POST"},
		{"PUT", "/api/emulator/messages/msg-000001/redrive", "POST"},
		{"POST", "/api/emulator/clock", "GET, HEAD"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, w.srv.URL+tt.path, nil)
		resp, err := w.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), tt.allow)
		}
	}
}
