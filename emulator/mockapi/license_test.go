package mockapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/protocol"
)

// The license codes every license test starts with (newLicenseServer).
const (
	codeIssued      = "PLTEST0000000001" // issued, ALIVE, expires testExpire
	codeActive      = "PLTEST0000000002" // activated
	codeUndelivered = "PLTEST0000000003" // the buyer has not received it
	codeReleased    = "PLTEST0000000004" // RELEASED, never activated
)

// testExpire is the expiry of the test codes.
var testExpire = testNow.AddDate(0, 1, 0)

// newLicenseServer returns a server on testNow with the test codes
// issued (codeActive activated through the API).
func newLicenseServer(t *testing.T) *openapitest.Server {
	t.Helper()
	srv := openapitest.NewServer(t, testAK, testSK)
	srv.SetClock(func() time.Time { return testNow })
	for _, c := range []mockapi.LicenseCode{
		{Code: codeIssued, ProductID: "OFFI-LIC", OrderID: "CS1", Amount: 3, Expire: testExpire},
		{Code: codeActive, ProductID: "OFFI-LIC", OrderID: "CS2", Expire: testExpire},
		{Code: codeUndelivered, ProductID: "OFFI-LIC", OrderID: "CS3", Expire: testExpire, Undelivered: true},
		{Code: codeReleased, ProductID: "OFFI-LIC", OrderID: "CS4", Expire: testExpire, Status: protocol.LicenseStatusReleased},
	} {
		if err := srv.IssueLicense(c); err != nil {
			t.Fatal(err)
		}
	}
	if got := licCall(mockapi.LicenseActivatePath, `{"license":"`+codeActive+`"}`).do(t, srv); got.Code != protocol.LicenseSuccess {
		t.Fatalf("activate %s: %s", codeActive, got.Raw)
	}
	return srv
}

// licCall is a signed JSON POST to path.
func licCall(path, body string) call {
	return call{method: http.MethodPost, path: path, body: []byte(body), apigSK: testSK}
}

// TestLicenseCodes: every error code of license-openapi.md §A.8.4 is
// reachable, with its HTTP status, before or after the gateway's checks.
func TestLicenseCodes(t *testing.T) {
	withCT := func(c call, ct string) call { c.headers = map[string]string{"Content-Type": ct}; return c }
	withMethod := func(c call, m string) call { c.method = m; return c }
	list := func(codes ...string) string {
		b, _ := json.Marshal(map[string]any{"license_list": codes})
		return string(b)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("PL%014d", i)
	}
	tests := []struct {
		name   string
		fault  *mockapi.Fault
		call   call
		status int
		code   string
		msg    string // substring of error_msg
	}{
		{name: "activate", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`","real_effect_time":"20260301120000"}`), status: 200, code: "92020000"},
		{name: "activate v2", call: licCall(mockapi.LicenseActivateV2Path, list(codeIssued)), status: 200, code: "92020000"},
		{name: "query", call: licCall(mockapi.LicenseQueryPath, `{"license":"`+codeActive+`","heartbeatInfo":{"thirdPartyAccount":"a1","ip":"10.0.0.1"}}`), status: 200, code: "92020000"},
		{name: "query v2", call: licCall(mockapi.LicenseQueryV2Path, list(codeActive)), status: 200, code: "92020000"},
		{name: "unsigned", call: call{method: http.MethodPost, path: mockapi.LicenseActivatePath, body: []byte(`{"license":"x"}`)}, status: 401, code: "APIGW.0301"},
		{name: "wrong SK", call: call{method: http.MethodPost, path: mockapi.LicenseQueryPath, body: []byte(`{"license":"x"}`), apigSK: "wrong"}, status: 401, code: "APIGW.0301"},
		{name: "internal error (fault, HTTP 503)", fault: &mockapi.Fault{Status: 503}, call: licCall(mockapi.LicenseQueryPath, `{"license":"`+codeActive+`"}`), status: 503, code: "92020001"},
		{name: "internal error with HTTP 200 (fault)", fault: &mockapi.Fault{Status: 200}, call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`"}`), status: 200, code: "92020001"},
		{name: "unauthorized (fault, HTTP 403)", fault: &mockapi.Fault{Status: 403}, call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`"}`), status: 403, code: "92020001", msg: "Unauthorized"},
		{name: "gateway (fault)", fault: &mockapi.Fault{Status: 502, Code: "APIGW.0201"}, call: licCall(mockapi.LicenseQueryPath, `{"license":"`+codeActive+`"}`), status: 502, code: "APIGW.0201"},
		{name: "throttled (fault)", fault: &mockapi.Fault{Status: 429}, call: licCall(mockapi.LicenseQueryPath, `{"license":"`+codeActive+`"}`), status: 429, code: "APIG.0308"},
		{name: "no license", call: licCall(mockapi.LicenseActivatePath, `{}`), status: 400, code: "92020002", msg: "license"},
		{name: "license of 65", call: licCall(mockapi.LicenseQueryPath, `{"license":"`+strings.Repeat("L", 65)+`"}`), status: 400, code: "92020002", msg: "license"},
		{name: "bad real_effect_time", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`","real_effect_time":"2026-03-01"}`), status: 400, code: "92020002", msg: "real_effect_time"},
		{name: "real_effect_time before the order", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`","real_effect_time":"20260301034500"}`), status: 400, code: "92020002", msg: "earlier than the order time"},
		{name: "real_effect_time 15 min before the order", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`","real_effect_time":"20260301114500"}`), status: 200, code: "92020000"},
		{name: "real_effect_time a UTC+8 local time", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`","real_effect_time":"20260301200000"}`), status: 400, code: "92020002", msg: "real_effect_time: 20260301200000 is later than now"},
		{name: "real_effect_time 16 min ahead", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`","real_effect_time":"20260301121600"}`), status: 400, code: "92020002", msg: "later than now"},
		{name: "real_effect_time 15 min ahead", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`","real_effect_time":"20260301121500"}`), status: 200, code: "92020000"},
		{name: "v2: real_effect_time a UTC+8 local time", call: licCall(mockapi.LicenseActivateV2Path, `{"license_list":["`+codeIssued+`"],"real_effect_time":"20260301200000"}`), status: 400, code: "92020002", msg: "later than now"},
		{name: "v2: empty list", call: licCall(mockapi.LicenseActivateV2Path, `{"license_list":[]}`), status: 400, code: "92020002", msg: "license_list"},
		{name: "v2: 101 codes", call: licCall(mockapi.LicenseActivateV2Path, list(many...)), status: 400, code: "92020002", msg: "more than 100"},
		{name: "v2: a code twice", call: licCall(mockapi.LicenseActivateV2Path, list(codeIssued, codeIssued)), status: 400, code: "92020002", msg: "appears twice"},
		{name: "v2 query: 101 codes", call: licCall(mockapi.LicenseQueryV2Path, list(many...)), status: 400, code: "92020002", msg: "more than 100"},
		{name: "already activated", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeActive+`"}`), status: 400, code: "92020003", msg: "already activated"},
		{name: "activate released", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeReleased+`"}`), status: 400, code: "92020003", msg: "RELEASED"},
		{name: "not received", call: licCall(mockapi.LicenseActivatePath, `{"license":"`+codeUndelivered+`"}`), status: 400, code: "92020004"},
		{name: "unknown code", call: licCall(mockapi.LicenseActivatePath, `{"license":"PLNOPE"}`), status: 400, code: "92020005", msg: "PLNOPE"},
		{name: "query unknown", call: licCall(mockapi.LicenseQueryPath, `{"license":"PLNOPE"}`), status: 400, code: "92020005"},
		{name: "query before activation", call: licCall(mockapi.LicenseQueryPath, `{"license":"`+codeIssued+`"}`), status: 400, code: "92020011"},
		{name: "v2 query before activation", call: licCall(mockapi.LicenseQueryV2Path, list(codeActive, codeIssued)), status: 400, code: "92020011", msg: codeIssued},
		{name: "v2: unknown in the batch", call: licCall(mockapi.LicenseActivateV2Path, list(codeIssued, "PLNOPE")), status: 400, code: "92020020", msg: "PLNOPE"},
		{name: "v2 query: unknown in the batch", call: licCall(mockapi.LicenseQueryV2Path, list(codeActive, "PLNOPE")), status: 400, code: "92020020", msg: "PLNOPE"},
		{name: "wrong JSON type", call: licCall(mockapi.LicenseActivatePath, `{"license":12}`), status: 400, code: "95000001", msg: "license"},
		{name: "GET", call: withMethod(licCall(mockapi.LicenseQueryPath, ``), http.MethodGet), status: 405, code: "95000002"},
		{name: "form body", call: withCT(licCall(mockapi.LicenseActivatePath, `license=x`), "application/x-www-form-urlencoded"), status: 415, code: "95000003"},
		{name: "not JSON", call: licCall(mockapi.LicenseActivatePath, `license`), status: 400, code: "95000004"},
		{name: "empty body", call: licCall(mockapi.LicenseActivatePath, ``), status: 400, code: "95000004"},
		{name: "data after the object", call: licCall(mockapi.LicenseActivatePath, `{"license":"x"}{}`), status: 400, code: "95000004"},
		{name: "an array", call: licCall(mockapi.SoftwareUsagePath, `[]`), status: 400, code: "95000004"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newLicenseServer(t)
			if tt.fault != nil {
				srv.SetLicenseFault(*tt.fault)
			}
			got := tt.call.do(t, srv)
			if got.Status != tt.status || got.Code != tt.code {
				t.Errorf("answer %d %s, want %d %s", got.Status, got.Raw, tt.status, tt.code)
			}
			if !strings.Contains(got.Msg, tt.msg) {
				t.Errorf("error_msg %q does not contain %q", got.Msg, tt.msg)
			}
			if info, ok := protocol.LookupOpenAPICode(got.Code); !ok || info.Meaning == "" {
				t.Errorf("code %s is not in the spec's tables", got.Code)
			}
			reqs := srv.Requests()
			if last := reqs[len(reqs)-1]; last.Code != tt.code || last.Status != tt.status {
				t.Errorf("request log %+v, want %d %s", last, tt.status, tt.code)
			}
		})
	}
}

// TestLicenseLifecycle walks one code through the state machine: issued
// (query 92020011), activated (license_code_info), queried (ALIVE,
// activate_time, expire_time; checked), activate again refused, expired by
// the clock, renewed, frozen (EXPIRED), released (RELEASED).
func TestLicenseLifecycle(t *testing.T) {
	srv := newLicenseServer(t)
	now := testNow
	srv.SetLicenseClock(func() time.Time { return now })
	query := func(want string) {
		t.Helper()
		got := licCall(mockapi.LicenseQueryPath, `{"license":"`+codeIssued+`"}`).do(t, srv)
		var r protocol.LicenseQueryResponse
		if err := json.Unmarshal([]byte(got.Raw), &r); err != nil || got.Code != protocol.LicenseSuccess || r.Data == nil {
			t.Fatalf("query: %d %s", got.Status, got.Raw)
		}
		if r.Data.LicenseCode != codeIssued || r.Data.Status != want || r.Data.ActivateTime != "20260301120000" {
			t.Errorf("query answered %+v, want %s activated 20260301120000", *r.Data, want)
		}
	}

	if got := licCall(mockapi.LicenseQueryPath, `{"license":"`+codeIssued+`"}`).do(t, srv); got.Code != protocol.LicenseNotActivated {
		t.Fatalf("query before activation: %s", got.Raw)
	}
	got := licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`","real_effect_time":"20260301120000"}`).do(t, srv)
	var act protocol.LicenseActivateResponse
	if err := json.Unmarshal([]byte(got.Raw), &act); err != nil || act.Data == nil {
		t.Fatalf("activate: %s", got.Raw)
	}
	info, err := act.Data.Info()
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.LicenseCodeInfo{Status: "ALIVE", ExpireTime: "20260401120000", ProductID: "OFFI-LIC", OrderID: "CS1", Amount: "3"}
	if info != want {
		t.Errorf("license_code_info %+v, want %+v", info, want)
	}
	if !strings.HasPrefix(string(act.Data.LicenseCodeInfo), `{`) {
		t.Errorf("license_code_info %q is not a JSON document in a string", act.Data.LicenseCodeInfo)
	}
	c, _ := srv.License(codeIssued)
	if !c.Activated || c.Checked || c.RealEffectTime != "20260301120000" || !c.ActivatedAt.Equal(testNow) {
		t.Errorf("after activation %+v, want activated, not checked", c)
	}
	query(protocol.LicenseStatusAlive)
	if c, _ = srv.License(codeIssued); !c.Checked || c.Queries != 1 {
		t.Errorf("after a query %+v, want checked once", c)
	}
	if got := licCall(mockapi.LicenseActivatePath, `{"license":"`+codeIssued+`"}`).do(t, srv); got.Code != protocol.LicenseIllegalState {
		t.Errorf("activate twice: %s", got.Raw)
	}

	now = testExpire.Add(time.Second)
	query(protocol.LicenseStatusExpired)
	srv.UpdateLicense(codeIssued, func(c *mockapi.LicenseCode) { c.Expire = testExpire.AddDate(0, 1, 0) })
	query(protocol.LicenseStatusAlive)
	srv.UpdateLicense(codeIssued, func(c *mockapi.LicenseCode) { c.Status = protocol.LicenseStatusExpired })
	query(protocol.LicenseStatusExpired)
	srv.UpdateLicense(codeIssued, func(c *mockapi.LicenseCode) { c.Status = protocol.LicenseStatusReleased })
	query(protocol.LicenseStatusReleased)

	var qs []string
	for _, q := range srv.LicenseQueries() {
		if q.License == codeIssued {
			qs = append(qs, q.Code+" "+q.Status)
		}
	}
	wantQ := []string{"92020011 ", "92020000 ALIVE", "92020000 EXPIRED", "92020000 ALIVE", "92020000 EXPIRED", "92020000 RELEASED"}
	if fmt.Sprint(qs) != fmt.Sprint(wantQ) {
		t.Errorf("queries recorded %q, want %q", qs, wantQ)
	}
	var as []string
	for _, a := range srv.LicenseActivations() {
		as = append(as, a.API+" "+a.License+" "+a.Code)
	}
	wantA := []string{"v1 " + codeActive + " 92020000", "v1 " + codeIssued + " 92020000", "v1 " + codeIssued + " 92020003"}
	if fmt.Sprint(as) != fmt.Sprint(wantA) {
		t.Errorf("activations recorded %q, want %q", as, wantA)
	}
}

// TestLicenseBatch: v2 activation is all or nothing, and the v2 query
// answers a LicenseInfo per code in order.
func TestLicenseBatch(t *testing.T) {
	srv := newLicenseServer(t)
	if err := srv.IssueLicense(mockapi.LicenseCode{Code: "PLB2", Expire: testExpire}); err != nil {
		t.Fatal(err)
	}
	got := licCall(mockapi.LicenseActivateV2Path, `{"license_list":["`+codeIssued+`","`+codeActive+`"]}`).do(t, srv)
	if got.Code != protocol.LicenseIllegalState || !strings.Contains(got.Msg, codeActive) {
		t.Fatalf("batch with an active code: %s", got.Raw)
	}
	if c, _ := srv.License(codeIssued); c.Activated {
		t.Fatal("a refused batch activated a code")
	}
	got = licCall(mockapi.LicenseActivateV2Path, `{"license_list":["`+codeIssued+`","PLB2"],"real_effect_time":"20260301120000"}`).do(t, srv)
	if got.Code != protocol.LicenseSuccess || got.Raw != `{"error_code":"92020000","error_msg":"success"}` {
		t.Fatalf("batch: %s", got.Raw)
	}
	got = licCall(mockapi.LicenseQueryV2Path, `{"license_list":["PLB2","`+codeIssued+`"]}`).do(t, srv)
	var r struct {
		Data []protocol.LicenseInfo `json:"data"`
	}
	if err := json.Unmarshal([]byte(got.Raw), &r); err != nil || got.Code != protocol.LicenseSuccess {
		t.Fatalf("v2 query: %s", got.Raw)
	}
	if len(r.Data) != 2 || r.Data[0].LicenseCode != "PLB2" || r.Data[1].LicenseCode != codeIssued || r.Data[1].Status != "ALIVE" || r.Data[1].ExpireTime != "20260401120000" {
		t.Errorf("v2 query data %+v", r.Data)
	}
	for _, code := range []string{codeIssued, "PLB2"} {
		if c, _ := srv.License(code); !c.Activated || !c.Checked {
			t.Errorf("%s: %+v, want activated and checked", code, c)
		}
	}
}

// TestSoftwareUsage records every entry and lists those of unknown or
// not activated codes in data.check_fail_license_list.
func TestSoftwareUsage(t *testing.T) {
	tests := []struct {
		name, body string
		code       string
		failed     []string
		recorded   int
	}{
		{name: "ids and a count", body: `{"usage_info":[{"license":"` + codeActive + `","software_usage_Info":[{"id":"u1"},{"id":"u2"}]},{"license":"` + codeActive + `","software_usage_Info":[{"active_num":3}]}]}`,
			code: "92020000", failed: []string{}, recorded: 2},
		{name: "unknown and inactive codes", body: `{"usage_info":[{"license":"PLNOPE","software_usage_Info":[{"id":"u1"}]},{"license":"` + codeIssued + `","software_usage_Info":[{"active_num":1}]},{"license":"` + codeActive + `","software_usage_Info":[{"active_num":1}]}]}`,
			code: "92020000", failed: []string{"PLNOPE", codeIssued}, recorded: 3},
		{name: "id and active_num in one item", body: `{"usage_info":[{"license":"` + codeActive + `","software_usage_Info":[{"id":"u1","active_num":1}]}]}`, code: "92020002"},
		{name: "negative count", body: `{"usage_info":[{"license":"` + codeActive + `","software_usage_Info":[{"active_num":-1}]}]}`, code: "92020002"},
		{name: "no entries", body: `{"usage_info":[]}`, code: "92020002"},
		{name: "count as text", body: `{"usage_info":[{"license":"` + codeActive + `","software_usage_Info":[{"active_num":"3"}]}]}`, code: "95000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newLicenseServer(t)
			got := licCall(mockapi.SoftwareUsagePath, tt.body).do(t, srv)
			if got.Code != tt.code {
				t.Fatalf("answer %d %s, want %s", got.Status, got.Raw, tt.code)
			}
			recs := srv.LicenseUsage()
			if len(recs) != tt.recorded {
				t.Fatalf("recorded %d entries, want %d", len(recs), tt.recorded)
			}
			if tt.code != protocol.LicenseSuccess {
				return
			}
			var r struct {
				Data struct {
					Failed []string `json:"check_fail_license_list"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(got.Raw), &r); err != nil || fmt.Sprint(r.Data.Failed) != fmt.Sprint(tt.failed) || r.Data.Failed == nil {
				t.Errorf("check_fail_license_list %v (%s), want %v", r.Data.Failed, got.Raw, tt.failed)
			}
			for _, rec := range recs {
				wantOK := rec.License == codeActive
				if rec.Accepted != wantOK || len(rec.Items) == 0 || !rec.At.Equal(testNow) {
					t.Errorf("record %+v, accepted want %v", rec, wantOK)
				}
			}
		})
	}
}

// TestLicenseFaultScope: the license fault counts only license requests
// and leaves Query Order alone.
func TestLicenseFaultScope(t *testing.T) {
	srv := newLicenseServer(t)
	srv.SetLicenseFault(mockapi.Fault{Status: 503, Count: 2})
	order := call{method: http.MethodGet, path: mockapi.QueryOrderPath + "?orderId=MOCKONDEMAND", apigSK: testSK}
	q := licCall(mockapi.LicenseQueryPath, `{"license":"`+codeActive+`"}`)
	for i, want := range []struct {
		c    call
		code string
	}{{order, "MKT.0000"}, {q, "92020001"}, {order, "MKT.0000"}, {q, "92020001"}, {q, "92020000"}} {
		if got := want.c.do(t, srv); got.Code != want.code {
			t.Errorf("request %d: %d %s, want %s", i, got.Status, got.Raw, want.code)
		}
	}
	srv.SetLicenseFault(mockapi.Fault{Status: 200, Code: protocol.LicenseInvalidParam})
	if got := q.do(t, srv); got.Status != 200 || got.Code != "92020002" || got.Msg != "invalid parameter" {
		t.Errorf("fault with a code: %d %s", got.Status, got.Raw)
	}
	srv.SetLicenseFault(mockapi.Fault{})
	srv.SetFault(mockapi.Fault{Status: 500})
	if got := q.do(t, srv); got.Status != 500 || got.Code != "92020001" {
		t.Errorf("a general fault on a license path: %d %s, want 500 92020001", got.Status, got.Raw)
	}
}

// TestIssueLicenseRefuses checks what IssueLicense and AddLicenseEvent
// accept.
func TestIssueLicenseRefuses(t *testing.T) {
	srv := openapitest.NewServer(t, testAK, testSK)
	for _, c := range []mockapi.LicenseCode{{}, {Code: strings.Repeat("x", 65)}, {Code: "PL1", Status: "FROZEN"}} {
		if err := srv.IssueLicense(c); err == nil {
			t.Errorf("IssueLicense(%+v) accepted", c)
		}
	}
	if err := srv.IssueLicense(mockapi.LicenseCode{Code: "PL1"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := srv.License("PL1"); c.Status != "ALIVE" || c.Amount != 1 || c.IssuedAt.IsZero() {
		t.Errorf("defaults: %+v", c)
	}
	for _, id := range []string{"", "a/b", strings.Repeat("e", 65)} {
		if err := srv.AddLicenseEvent(mockapi.LicenseEvent{EventID: id}); err == nil {
			t.Errorf("AddLicenseEvent(%q) accepted", id)
		}
	}
}
