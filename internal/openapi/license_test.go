package openapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// licenseAPI is a scripted license Open API on real HTTP. It checks every
// request's APIG signature as the gateway does (a bad one is answered 401
// APIGW.0301), keeps what it received, and otherwise answers the status
// and body the test set. The written paths are its own, not the client's
// constants, so a wrong path in the client shows.
type licenseAPI struct {
	srv *httptest.Server

	mu     sync.Mutex
	got    []received
	status int
	body   string
}

// received is one request as the server read it.
type received struct {
	method, path string
	header       http.Header
	body         []byte
	req          *http.Request // body already read; for VerifyAPIG again
}

func newLicenseAPI(t *testing.T) *licenseAPI {
	t.Helper()
	s := &licenseAPI{status: 200, body: `{"error_code":"92020000","error_msg":"success"}`}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// answer sets what the server answers signed requests from now on.
func (s *licenseAPI) answer(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *licenseAPI) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

func (s *licenseAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, received{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body, req: r})
	status, answer := s.status, s.body
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	if _, err := verify(r, body); err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error_code":"APIGW.0301","error_msg":"verify aksk signature fail"}`)
		return
	}
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

// verify checks r's APIG signature over body with the test key pair.
func verify(r *http.Request, body []byte) (string, error) {
	return sign.VerifyAPIG(r, body, func(ak string) (string, bool) { return testSK, ak == testAK }, time.Now(), 0)
}

// one returns the only request the server got, failing the test otherwise,
// after checking its method, path and signature.
func (s *licenseAPI) one(t *testing.T, path string) received {
	t.Helper()
	got := s.requests()
	if len(got) != 1 {
		t.Fatalf("server got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != http.MethodPost || r.path != path {
		t.Errorf("request %s %s, want POST %s", r.method, r.path, path)
	}
	if _, err := verify(r.req, r.body); err != nil {
		t.Errorf("signature: %v", err)
	}
	return r
}

// sentinels are every sentinel error of the package, to check that an
// error matches its own and no other.
var sentinels = []error{
	openapi.ErrLicenseInternal, openapi.ErrLicenseInvalidParam, openapi.ErrLicenseIllegalState,
	openapi.ErrLicenseNotReceived, openapi.ErrLicenseNotFound, openapi.ErrLicenseNotActivated,
	openapi.ErrLicenseInvalidInBatch, openapi.ErrRequestInvalid, openapi.ErrMethodNotSupported,
	openapi.ErrContentTypeNotSupported, openapi.ErrBodyNotReadable,
	openapi.ErrIllegalOperation, openapi.ErrInvalidParam, openapi.ErrInternal,
	openapi.ErrUploadResourceInvalid, openapi.ErrUploadApplicationInvalid, openapi.ErrUploadNoRemainingAmount,
	openapi.ErrUploadInner, openapi.ErrUploadInvalidFormat, openapi.ErrUploadApplicationDenied,
	openapi.ErrUploadPermissionDenied,
	openapi.ErrAuthentication, openapi.ErrNotAuthorized, openapi.ErrThrottled,
	openapi.ErrIncompleteAnswer,
}

// wantErr is what an error answer must be.
type wantErr struct {
	status    int
	code      string
	sentinel  error // the one sentinel it matches; nil for none
	retryable bool
}

// checkAnswerErr checks that err is an *Error with w's status and code,
// matches w.sentinel and no other sentinel, and is retryable exactly when
// w says so.
func checkAnswerErr(t *testing.T, err error, w wantErr) {
	t.Helper()
	if err == nil {
		t.Fatal("no error, want one")
	}
	var e *openapi.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *openapi.Error", err)
	}
	if e.HTTPStatus != w.status || e.Code != w.code {
		t.Errorf("Error = %+v, want status %d code %q", e, w.status, w.code)
	}
	for _, s := range sentinels {
		if got := errors.Is(err, s); got != (s == w.sentinel) {
			t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
		}
	}
	if got := openapi.Retryable(err); got != w.retryable {
		t.Errorf("Retryable(%v) = %v, want %v", err, got, w.retryable)
	}
	if strings.Contains(err.Error(), testSK) {
		t.Errorf("error %q contains the SK", err)
	}
}

// checkRefused checks that err refuses the call before anything was sent.
func checkRefused(t *testing.T, s *licenseAPI, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error, want a refusal")
	}
	var e *openapi.Error
	if errors.As(err, &e) || openapi.Retryable(err) {
		t.Errorf("refusal %v is an answer or retryable", err)
	}
	if !strings.Contains(err.Error(), field) {
		t.Errorf("refusal %q does not name %s", err, field)
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
}

func TestActivateLicense(t *testing.T) {
	const ok = `{"error_code":"92020000","error_msg":"success","data":{"license_code_info":"{\"status\":\"ALIVE\",\"expire_time\":\"20230726121646\",\"product_id\":\"12345\",\"amount\":2,\"order_id\":\"CS123\"}"}}`
	want := protocol.LicenseCodeInfo{Status: "ALIVE", ExpireTime: "20230726121646", ProductID: "12345", OrderID: "CS123", Amount: "2"}
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		name       string
		realEffect time.Time
		status     int
		answer     string
		wantBody   string
		want       protocol.LicenseCodeInfo
		err        *wantErr
		incomplete bool
	}{
		{name: "documented success", status: 200, answer: ok, wantBody: `{"license":"PL001"}`, want: want},
		{name: "real effect time sent in UTC", realEffect: time.Date(2026, 1, 2, 23, 35, 55, 0, shanghai), status: 200, answer: ok,
			wantBody: `{"license":"PL001","real_effect_time":"20260102153555"}`, want: want},
		{name: "info as an object, new fields and a numeric code", status: 200,
			answer:   `{"error_code":92020000,"error_msg":"success","request_id":"r1","data":{"license_code_info":{"status":"ALIVE","amount":"3","region":"cn"},"x":1}}`,
			wantBody: `{"license":"PL001"}`, want: protocol.LicenseCodeInfo{Status: "ALIVE", Amount: "3"}},
		{name: "already active", status: 400, answer: `{"error_code":"92020003","error_msg":"illegal state"}`,
			err: &wantErr{status: 400, code: "92020003", sentinel: openapi.ErrLicenseIllegalState}},
		{name: "not received", status: 400, answer: `{"error_code":"92020004","error_msg":"not received"}`,
			err: &wantErr{status: 400, code: "92020004", sentinel: openapi.ErrLicenseNotReceived}},
		{name: "invalid parameter with HTTP 200", status: 200, answer: `{"error_code":"92020002","error_msg":"invalid"}`,
			err: &wantErr{status: 200, code: "92020002", sentinel: openapi.ErrLicenseInvalidParam}},
		{name: "internal error with HTTP 200", status: 200, answer: `{"error_code":"92020001","error_msg":"busy"}`,
			err: &wantErr{status: 200, code: "92020001", sentinel: openapi.ErrLicenseInternal, retryable: true}},
		{name: "success code with HTTP 500", status: 500, answer: ok,
			err: &wantErr{status: 500, code: "92020000", retryable: true}},
		{name: "success code with HTTP 400", status: 400, answer: ok,
			err: &wantErr{status: 400, code: "92020000"}},
		{name: "another API's success code", status: 200, answer: `{"error_code":"CBC.0000","error_msg":"success"}`,
			err: &wantErr{status: 200, code: "CBC.0000"}},
		{name: "unknown code with HTTP 200", status: 200, answer: `{"error_code":"92029999","error_msg":"new"}`,
			err: &wantErr{status: 200, code: "92029999"}},
		{name: "HTML with HTTP 200", status: 200, answer: `<html>ok</html>`, err: &wantErr{status: 200}},
		{name: "HTML with HTTP 502", status: 502, answer: `<html>bad gateway</html>`, err: &wantErr{status: 502, retryable: true}},
		{name: "empty object", status: 200, answer: `{}`, err: &wantErr{status: 200}},
		{name: "truncated JSON", status: 200, answer: `{"error_code":"92020000","data":{`, err: &wantErr{status: 200}},
		{name: "success without data", status: 200, answer: `{"error_code":"92020000","error_msg":"success"}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer}},
		{name: "success with null data", status: 200, answer: `{"error_code":"92020000","error_msg":"success","data":null}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer}},
		{name: "success without license_code_info", status: 200, answer: `{"error_code":"92020000","error_msg":"success","data":{}}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer}},
		{name: "license_code_info not JSON", status: 200, answer: `{"error_code":"92020000","data":{"license_code_info":"ALIVE"}}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer}},
		{name: "data a list", status: 200, answer: `{"error_code":"92020000","data":[1]}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			s.answer(tt.status, tt.answer)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			info, err := c.ActivateLicense(context.Background(), "PL001", tt.realEffect)
			r := s.one(t, "/api/mkp-openapi-public/global/v1/license/activate")
			if tt.err != nil {
				checkAnswerErr(t, err, *tt.err)
				return
			}
			if err != nil {
				t.Fatalf("ActivateLicense: %v", err)
			}
			if string(r.body) != tt.wantBody {
				t.Errorf("body %s, want %s", r.body, tt.wantBody)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if info != tt.want {
				t.Errorf("info = %+v, want %+v", info, tt.want)
			}
		})
	}
}

func TestLicenseRefusedBeforeSending(t *testing.T) {
	long := strings.Repeat("P", 65)
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("PL%03d", i)
	}
	tests := []struct {
		name  string
		call  func(c *openapi.Client) error
		field string
	}{
		{"activate empty code", func(c *openapi.Client) error {
			_, err := c.ActivateLicense(context.Background(), " ", time.Time{})
			return err
		}, "license"},
		{"activate code too long", func(c *openapi.Client) error {
			_, err := c.ActivateLicense(context.Background(), long, time.Time{})
			return err
		}, "license"},
		{"activate code with NUL", func(c *openapi.Client) error {
			_, err := c.ActivateLicense(context.Background(), "PL\x00", time.Time{})
			return err
		}, "license"},
		{"activate code not UTF-8", func(c *openapi.Client) error {
			_, err := c.ActivateLicense(context.Background(), "PL\xff", time.Time{})
			return err
		}, "license"},
		{"activate real effect after year 9999", func(c *openapi.Client) error {
			_, err := c.ActivateLicense(context.Background(), "PL001", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
			return err
		}, "real_effect_time"},
		{"batch activate no codes", func(c *openapi.Client) error {
			return c.ActivateLicenses(context.Background(), nil, time.Time{})
		}, "license_list"},
		{"batch activate 101 codes", func(c *openapi.Client) error {
			return c.ActivateLicenses(context.Background(), many, time.Time{})
		}, "license_list"},
		{"batch activate a code twice", func(c *openapi.Client) error {
			return c.ActivateLicenses(context.Background(), []string{"PL1", "PL2", "PL1"}, time.Time{})
		}, "license_list[2]"},
		{"batch activate a control character", func(c *openapi.Client) error {
			return c.ActivateLicenses(context.Background(), []string{"PL1", "PL\n2"}, time.Time{})
		}, "license_list[1]"},
		{"query empty code", func(c *openapi.Client) error {
			_, err := c.QueryLicense(context.Background(), "")
			return err
		}, "license"},
		{"batch query an empty code", func(c *openapi.Client) error {
			_, err := c.QueryLicenses(context.Background(), []string{"PL1", ""})
			return err
		}, "license_list[1]"},
		{"batch query 101 codes", func(c *openapi.Client) error {
			_, err := c.QueryLicenses(context.Background(), many)
			return err
		}, "license_list"},
		{"usage without entries", func(c *openapi.Client) error {
			_, err := c.ReportSoftwareUsage(context.Background(), protocol.SoftwareUsageInfoRequest{})
			return err
		}, "usage_info"},
		{"usage item with both id and count", func(c *openapi.Client) error {
			n := 2
			_, err := c.ReportSoftwareUsage(context.Background(), protocol.SoftwareUsageInfoRequest{UsageInfo: []protocol.SoftwareUsageEntry{
				{License: "PL1", SoftwareUsageInfo: []protocol.SoftwareUsageItem{{ID: "u1", ActiveNum: &n}}}}})
			return err
		}, "software_usage_Info[0]"},
		{"usage id with NUL", func(c *openapi.Client) error {
			_, err := c.ReportSoftwareUsage(context.Background(), protocol.SoftwareUsageInfoRequest{UsageInfo: []protocol.SoftwareUsageEntry{
				{License: "PL1", SoftwareUsageInfo: []protocol.SoftwareUsageItem{{ID: "u\x001"}}}}})
			return err
		}, "usage_info[0].software_usage_Info[0].id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			checkRefused(t, s, tt.call(c), tt.field)
		})
	}
}

func TestActivateLicenses(t *testing.T) {
	tests := []struct {
		name       string
		codes      []string
		realEffect time.Time
		status     int
		answer     string
		wantBody   string
		err        *wantErr
	}{
		{name: "two codes", codes: []string{"PL001", "PL002"}, realEffect: time.Date(2026, 1, 2, 15, 35, 55, 0, time.UTC),
			status: 200, answer: `{"error_code":"92020000","error_msg":"success"}`,
			wantBody: `{"license_list":["PL001","PL002"],"real_effect_time":"20260102153555"}`},
		{name: "per-code data is ignored", codes: []string{"PL001"}, status: 200,
			answer:   `{"error_code":"92020000","error_msg":"success","data":[{"license":"PL001","result":"ok"}]}`,
			wantBody: `{"license_list":["PL001"]}`},
		{name: "an invalid code in the batch", codes: []string{"PL001", "BAD"}, status: 400,
			answer: `{"error_code":"92020020","error_msg":"invalid license code exists"}`,
			err:    &wantErr{status: 400, code: "92020020", sentinel: openapi.ErrLicenseInvalidInBatch}},
		{name: "internal error", codes: []string{"PL001"}, status: 500,
			answer: `{"error_code":"92020001","error_msg":"internal error"}`,
			err:    &wantErr{status: 500, code: "92020001", sentinel: openapi.ErrLicenseInternal, retryable: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			s.answer(tt.status, tt.answer)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			err := c.ActivateLicenses(context.Background(), tt.codes, tt.realEffect)
			r := s.one(t, "/api/mkp-openapi-public/global/v2/license/activate")
			if tt.err != nil {
				checkAnswerErr(t, err, *tt.err)
				return
			}
			if err != nil {
				t.Fatalf("ActivateLicenses: %v", err)
			}
			if string(r.body) != tt.wantBody {
				t.Errorf("body %s, want %s", r.body, tt.wantBody)
			}
		})
	}
}

func TestQueryLicense(t *testing.T) {
	tests := []struct {
		name   string
		status int
		answer string
		want   protocol.LicenseInfo
		err    *wantErr
	}{
		{name: "alive", status: 200,
			answer: `{"error_code":"92020000","error_msg":"success","data":{"license_code":"PL001","status":"ALIVE","activate_time":"20260101120000","expire_time":"20270101120000"}}`,
			want:   protocol.LicenseInfo{LicenseCode: "PL001", Status: "ALIVE", ActivateTime: "20260101120000", ExpireTime: "20270101120000"}},
		{name: "new fields kept", status: 200,
			answer: `{"error_code":"92020000","error_msg":"success","trace":"t","data":{"license_code":"PL001","status":"EXPIRED","activate_time":"20260101120000","amount":2}}`,
			want:   protocol.LicenseInfo{LicenseCode: "PL001", Status: "EXPIRED", ActivateTime: "20260101120000", Extra: map[string]json.RawMessage{"amount": json.RawMessage("2")}}},
		{name: "no license_code: the code asked for", status: 200,
			answer: `{"error_code":"92020000","data":{"status":"RELEASED"}}`,
			want:   protocol.LicenseInfo{LicenseCode: "PL001", Status: "RELEASED"}},
		{name: "not activated", status: 400, answer: `{"error_code":"92020011","error_msg":"not activated"}`,
			err: &wantErr{status: 400, code: "92020011", sentinel: openapi.ErrLicenseNotActivated}},
		{name: "not found with HTTP 200", status: 200, answer: `{"error_code":"92020005","error_msg":"no such code"}`,
			err: &wantErr{status: 200, code: "92020005", sentinel: openapi.ErrLicenseNotFound}},
		{name: "error code with data of another shape", status: 400, answer: `{"error_code":"92020005","error_msg":"no","data":""}`,
			err: &wantErr{status: 400, code: "92020005", sentinel: openapi.ErrLicenseNotFound}},
		{name: "success without data", status: 200, answer: `{"error_code":"92020000","error_msg":"success"}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer, retryable: true}},
		{name: "data without status", status: 200, answer: `{"error_code":"92020000","data":{"license_code":"PL001"}}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer, retryable: true}},
		{name: "data a string", status: 200, answer: `{"error_code":"92020000","data":"ALIVE"}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer, retryable: true}},
		{name: "another code's data", status: 200, answer: `{"error_code":"92020000","data":{"license_code":"PL999","status":"ALIVE"}}`,
			err: &wantErr{status: 200, code: "92020000"}},
		{name: "signature refused", status: 200, answer: "", // set below: a wrong SK
			err: &wantErr{status: 401, code: "APIGW.0301", sentinel: openapi.ErrAuthentication}},
		{name: "throttled", status: 429, answer: `{"error_code":"APIG.0308","error_msg":"throttled"}`,
			err: &wantErr{status: 429, code: "APIG.0308", sentinel: openapi.ErrThrottled, retryable: true}},
		{name: "not authorised", status: 403, answer: `{"error_code":"APIGW.0302","error_msg":"no"}`,
			err: &wantErr{status: 403, code: "APIGW.0302", sentinel: openapi.ErrNotAuthorized}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			s.answer(tt.status, tt.answer)
			cfg := openapi.Config{BaseURL: s.srv.URL}
			if tt.answer == "" {
				cfg.SK = "another-secret"
			}
			c := newClient(t, cfg)
			info, err := c.QueryLicense(context.Background(), "PL001")
			got := s.requests()
			if len(got) != 1 || got[0].path != "/api/mkp-openapi-public/global/v1/license/heartbeat" || string(got[0].body) != `{"license":"PL001"}` {
				t.Fatalf("requests = %+v", got)
			}
			if tt.err != nil {
				checkAnswerErr(t, err, *tt.err)
				if strings.Contains(err.Error(), "another-secret") {
					t.Errorf("error %q contains the SK", err)
				}
				return
			}
			if _, verr := verify(got[0].req, got[0].body); verr != nil {
				t.Errorf("signature: %v", verr)
			}
			if err != nil {
				t.Fatalf("QueryLicense: %v", err)
			}
			if !reflect.DeepEqual(info, tt.want) {
				t.Errorf("info = %+v, want %+v", info, tt.want)
			}
		})
	}
}

func TestQueryLicenses(t *testing.T) {
	a := protocol.LicenseInfo{LicenseCode: "PL001", Status: "ALIVE", ActivateTime: "20260101120000"}
	b := protocol.LicenseInfo{LicenseCode: "PL002", Status: "EXPIRED", ActivateTime: "20250101120000"}
	const ja = `{"license_code":"PL001","status":"ALIVE","activate_time":"20260101120000"}`
	const jb = `{"license_code":"PL002","status":"EXPIRED","activate_time":"20250101120000"}`
	tests := []struct {
		name   string
		codes  []string
		answer string
		want   []protocol.LicenseInfo
		err    *wantErr
	}{
		{name: "a list", codes: []string{"PL001", "PL002"}, answer: `[` + ja + `,` + jb + `]`, want: []protocol.LicenseInfo{a, b}},
		{name: "an object holding the list", codes: []string{"PL001", "PL002"},
			answer: `{"license_info_list":[` + jb + `,` + ja + `],"total":2}`, want: []protocol.LicenseInfo{b, a}},
		{name: "one object", codes: []string{"PL001", "PL002"}, answer: ja, want: []protocol.LicenseInfo{a}},
		{name: "one object without code for one code", codes: []string{"PL001"}, answer: `{"status":"ALIVE","activate_time":"20260101120000"}`,
			want: []protocol.LicenseInfo{a}},
		{name: "a string holding the list", codes: []string{"PL001", "PL002"},
			answer: jsonString(`[` + ja + `,` + jb + `]`), want: []protocol.LicenseInfo{a, b}},
		{name: "a code left out", codes: []string{"PL001", "PL002"}, answer: `[` + jb + `]`, want: []protocol.LicenseInfo{b}},
		{name: "an empty list", codes: []string{"PL001"}, answer: `[]`, want: []protocol.LicenseInfo{}},
		{name: "two lists", codes: []string{"PL001"}, answer: `{"ok":[` + ja + `],"failed":[]}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer, retryable: true}},
		{name: "no list", codes: []string{"PL001"}, answer: `{"total":1}`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer, retryable: true}},
		{name: "a number", codes: []string{"PL001"}, answer: `7`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer, retryable: true}},
		{name: "an entry without code among two", codes: []string{"PL001", "PL002"}, answer: `[{"status":"ALIVE"}]`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer, retryable: true}},
		{name: "an entry without status", codes: []string{"PL001", "PL002"}, answer: `[{"license_code":"PL002"}]`,
			err: &wantErr{status: 200, code: "92020000", sentinel: openapi.ErrIncompleteAnswer, retryable: true}},
		{name: "a code not asked for", codes: []string{"PL001"}, answer: `[` + ja + `,` + jb + `]`,
			err: &wantErr{status: 200, code: "92020000"}},
		{name: "a code twice", codes: []string{"PL001", "PL002"}, answer: `[` + ja + `,` + ja + `]`,
			err: &wantErr{status: 200, code: "92020000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			s.answer(200, `{"error_code":"92020000","error_msg":"success","data":`+tt.answer+`}`)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			infos, err := c.QueryLicenses(context.Background(), tt.codes)
			r := s.one(t, "/api/mkp-openapi-public/global/v2/license/heartbeat")
			wantBody, _ := json.Marshal(map[string][]string{"license_list": tt.codes})
			if string(r.body) != string(wantBody) {
				t.Errorf("body %s, want %s", r.body, wantBody)
			}
			if tt.err != nil {
				checkAnswerErr(t, err, *tt.err)
				return
			}
			if err != nil {
				t.Fatalf("QueryLicenses: %v", err)
			}
			if len(infos) != len(tt.want) || len(tt.want) > 0 && !reflect.DeepEqual(infos, tt.want) {
				t.Errorf("infos = %+v, want %+v", infos, tt.want)
			}
		})
	}
}

func TestQueryLicensesErrorCode(t *testing.T) {
	s := newLicenseAPI(t)
	s.answer(200, `{"error_code":"92020020","error_msg":"invalid license code exists","data":[]}`)
	c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
	_, err := c.QueryLicenses(context.Background(), []string{"PL001", "BAD"})
	checkAnswerErr(t, err, wantErr{status: 200, code: "92020020", sentinel: openapi.ErrLicenseInvalidInBatch})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestReportSoftwareUsage(t *testing.T) {
	three := 3
	req := protocol.SoftwareUsageInfoRequest{UsageInfo: []protocol.SoftwareUsageEntry{
		{License: "PL001", SoftwareUsageInfo: []protocol.SoftwareUsageItem{{ID: "device-1"}, {ActiveNum: &three}}},
		{License: "PL002", SoftwareUsageInfo: []protocol.SoftwareUsageItem{{ID: "用户"}}},
	}}
	const wantBody = `{"usage_info":[{"license":"PL001","software_usage_Info":[{"id":"device-1"},{"active_num":3}]},{"license":"PL002","software_usage_Info":[{"id":"用户"}]}]}`
	tests := []struct {
		name     string
		status   int
		answer   string
		wantCode string
		wantData map[string]string
		err      *wantErr
	}{
		{name: "accepted", status: 200, answer: `{"error_code":"92020000","error_msg":"success"}`, wantCode: "92020000"},
		{name: "accepted with failed entries", status: 200,
			answer:   `{"error_code":"92020000","error_msg":"success","data":{"check_fail_license_list":["PL002"]}}`,
			wantCode: "92020000", wantData: map[string]string{"check_fail_license_list": `["PL002"]`}},
		{name: "data a list", status: 200, answer: `{"error_code":"92020000","data":["PL002"]}`,
			wantCode: "92020000", wantData: map[string]string{"data": `["PL002"]`}},
		{name: "refused with its data", status: 400,
			answer:   `{"error_code":"92020002","error_msg":"invalid","data":{"check_fail_usage_info":[{"license":"PL002"}]}}`,
			wantCode: "92020002", wantData: map[string]string{"check_fail_usage_info": `[{"license":"PL002"}]`},
			err: &wantErr{status: 400, code: "92020002", sentinel: openapi.ErrLicenseInvalidParam}},
		{name: "body not readable", status: 400, answer: `{"error_code":"95000004","error_msg":"not readable"}`,
			wantCode: "95000004", err: &wantErr{status: 400, code: "95000004", sentinel: openapi.ErrBodyNotReadable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			s.answer(tt.status, tt.answer)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			resp, err := c.ReportSoftwareUsage(context.Background(), req)
			r := s.one(t, "/api/mkp-openapi-public/global/v2/license/software-usage-info")
			if string(r.body) != wantBody {
				t.Errorf("body %s, want %s", r.body, wantBody)
			}
			if tt.err != nil {
				checkAnswerErr(t, err, *tt.err)
			} else if err != nil {
				t.Fatalf("ReportSoftwareUsage: %v", err)
			}
			if string(resp.ErrorCode) != tt.wantCode {
				t.Errorf("error_code = %q, want %q", resp.ErrorCode, tt.wantCode)
			}
			if len(resp.Data) != len(tt.wantData) {
				t.Errorf("data = %v, want %v", resp.Data, tt.wantData)
			}
			for k, v := range tt.wantData {
				if string(resp.Data[k]) != v {
					t.Errorf("data[%s] = %s, want %s", k, resp.Data[k], v)
				}
			}
		})
	}
}

// TestLicenseErrorCodes checks every documented code of §A.8.4 and §C.7
// against its sentinel and retry class, each with the HTTP status of its
// table and with HTTP 200.
func TestLicenseErrorCodes(t *testing.T) {
	tests := []struct {
		code      string
		status    int
		sentinel  error
		retryable bool
		upload    bool
	}{
		{"92020001", 500, openapi.ErrLicenseInternal, true, false},
		{"92020001", 403, openapi.ErrLicenseInternal, true, false},
		{"92020002", 400, openapi.ErrLicenseInvalidParam, false, false},
		{"92020003", 400, openapi.ErrLicenseIllegalState, false, false},
		{"92020004", 400, openapi.ErrLicenseNotReceived, false, false},
		{"92020005", 400, openapi.ErrLicenseNotFound, false, false},
		{"92020011", 400, openapi.ErrLicenseNotActivated, false, false},
		{"92020020", 400, openapi.ErrLicenseInvalidInBatch, false, false},
		{"95000001", 400, openapi.ErrRequestInvalid, false, false},
		{"95000002", 405, openapi.ErrMethodNotSupported, false, false},
		{"95000003", 415, openapi.ErrContentTypeNotSupported, false, false},
		{"95000004", 400, openapi.ErrBodyNotReadable, false, false},
		{"CBC.0150", 403, openapi.ErrIllegalOperation, false, true},
		{"CBC.0101", 400, openapi.ErrInvalidParam, false, true},
		{"CBC.0999", 500, openapi.ErrInternal, true, true},
		{"MKT.0999", 500, openapi.ErrInternal, true, true},
		{"91381033", 200, openapi.ErrUploadResourceInvalid, false, true},
		{"91381034", 200, openapi.ErrUploadApplicationInvalid, false, true},
		{"91381035", 200, openapi.ErrUploadNoRemainingAmount, false, true},
		{"91381036", 200, openapi.ErrUploadInner, true, true},
		{"91381037", 200, openapi.ErrUploadInvalidFormat, false, true},
		{"91381038", 200, openapi.ErrUploadApplicationDenied, false, true},
		{"91380150", 200, openapi.ErrUploadPermissionDenied, false, true},
		{"APIGW.0303", 401, openapi.ErrAuthentication, false, true},
		{"APIGW.0101", 404, nil, false, false},
		{"91389999", 200, nil, false, true},
	}
	for _, tt := range tests {
		statuses := []int{tt.status}
		if tt.status != 200 {
			statuses = append(statuses, 200)
		}
		for _, status := range statuses {
			t.Run(tt.code+"/"+http.StatusText(status), func(t *testing.T) {
				s := newLicenseAPI(t)
				s.answer(status, `{"error_code":"`+tt.code+`","error_msg":"m"}`)
				c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
				var err error
				if tt.upload {
					err = c.UploadLicense(context.Background(), "EV1", openapi.LicenseUpload{Characters: "LIC"})
				} else {
					_, err = c.QueryLicense(context.Background(), "PL001")
				}
				// A 5xx is retryable whatever the code.
				checkAnswerErr(t, err, wantErr{status: status, code: tt.code, sentinel: tt.sentinel, retryable: tt.retryable || status >= 500})
			})
		}
	}
}

// upload is one license upload as the server parsed it.
type upload struct {
	fileReq         protocol.IsvUpdateFileReq
	fileReqType     string // Content-Type of the isvUpdateFileReq part
	fileName        string
	fileContent     []byte
	fileContentType string
	parts           []string // the part names in order
}

// parseUpload reads a multipart upload strictly: the documented parts
// only, each once, isvUpdateFileReq with no field the protocol lacks.
func parseUpload(t *testing.T, r received) upload {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q: %v", r.header.Get("Content-Type"), err)
	}
	var u upload
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("read part %s: %v", p.FormName(), err)
		}
		u.parts = append(u.parts, p.FormName())
		switch p.FormName() {
		case "isvUpdateFileReq":
			d := json.NewDecoder(bytes.NewReader(data))
			d.DisallowUnknownFields()
			if err := d.Decode(&u.fileReq); err != nil {
				t.Fatalf("isvUpdateFileReq %s: %v", data, err)
			}
			u.fileReqType = p.Header.Get("Content-Type")
		case "file":
			u.fileName, u.fileContent, u.fileContentType = p.FileName(), data, p.Header.Get("Content-Type")
		default:
			t.Errorf("unexpected part %q", p.FormName())
		}
	}
	return u
}

func TestUploadLicense(t *testing.T) {
	content := []byte("-----BEGIN LICENSE-----\nsecret-license-body\x00\xff\n-----END LICENSE-----\n")
	sum := sha256.Sum256(content)
	tests := []struct {
		name    string
		eventID string
		f       openapi.LicenseUpload
		answer  string
		want    upload
	}{
		{name: "characters", eventID: "EV-0001", f: openapi.LicenseUpload{Characters: "LIC-123\nline two 许可"},
			answer: `{"error_code":"CBC.0000","error_msg":"success"}`,
			want: upload{parts: []string{"isvUpdateFileReq"}, fileReqType: "application/json",
				fileReq: protocol.IsvUpdateFileReq{Type: "CHARACTERS", Characters: "LIC-123\nline two 许可"}}},
		{name: "file", eventID: "EV-0002", f: openapi.LicenseUpload{FileName: `lic "a".dat`, Content: content},
			answer: `{"error_code":"MKT.0000","error_msg":"success","extra_info":{}}`,
			want: upload{parts: []string{"isvUpdateFileReq", "file"}, fileReqType: "application/json",
				fileReq:  protocol.IsvUpdateFileReq{Type: "FILE", FileName: `lic "a".dat`, SHA256: hex.EncodeToString(sum[:])},
				fileName: `lic "a".dat`, fileContent: content, fileContentType: "application/octet-stream"}},
		{name: "event ID needing escapes", eventID: "EV+1?a#b%20", f: openapi.LicenseUpload{Characters: "LIC"},
			answer: `{"error_code":"CBC.0000"}`,
			want:   upload{parts: []string{"isvUpdateFileReq"}, fileReqType: "application/json", fileReq: protocol.IsvUpdateFileReq{Type: "CHARACTERS", Characters: "LIC"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			s.answer(200, tt.answer)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			if err := c.UploadLicense(context.Background(), tt.eventID, tt.f); err != nil {
				t.Fatalf("UploadLicense: %v", err)
			}
			r := s.one(t, "/api/mkp-openapi-public/global/v1/market-event/"+tt.eventID+"/file")
			got := parseUpload(t, r)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("upload = %+v\nwant %+v", got, tt.want)
			}

			// The signature covers the exact bytes: the body hash header is
			// the real one, a gateway hashing the body itself agrees, and one
			// changed byte breaks it.
			bodySum := sha256.Sum256(r.body)
			if h := r.header.Get(sign.APIGContentSHA256Header); h != hex.EncodeToString(bodySum[:]) {
				t.Errorf("%s = %q, want the body's SHA-256", sign.APIGContentSHA256Header, h)
			}
			r.req.Header.Del(sign.APIGContentSHA256Header)
			if _, err := verify(r.req, r.body); err != nil {
				t.Errorf("without %s: %v", sign.APIGContentSHA256Header, err)
			}
			changed := bytes.Clone(r.body)
			changed[len(changed)/2] ^= 1
			if _, err := verify(r.req, changed); !errors.Is(err, sign.ErrAPIGSignature) {
				t.Errorf("a changed body verified: %v", err)
			}
		})
	}
}

func TestUploadLicenseErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		answer string
		err    wantErr
	}{
		{name: "a license API success code", status: 200, answer: `{"error_code":"92020000","error_msg":"success"}`,
			err: wantErr{status: 200, code: "92020000"}},
		{name: "invalid format", status: 200, answer: `{"error_code":"91381037","error_msg":"invalid license format"}`,
			err: wantErr{status: 200, code: "91381037", sentinel: openapi.ErrUploadInvalidFormat}},
		{name: "success with HTTP 503", status: 503, answer: `{"error_code":"CBC.0000"}`,
			err: wantErr{status: 503, code: "CBC.0000", retryable: true}},
		{name: "no body", status: 200, answer: ``, err: wantErr{status: 200}},
		{name: "resultCode spelling", status: 400, answer: `{"resultCode":"CBC.0101","resultMsg":"bad"}`,
			err: wantErr{status: 400, code: "CBC.0101", sentinel: openapi.ErrInvalidParam}},
	}
	secret := []byte("secret-license-body")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			s.answer(tt.status, tt.answer)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			err := c.UploadLicense(context.Background(), "EV1", openapi.LicenseUpload{FileName: "a.lic", Content: secret})
			s.one(t, "/api/mkp-openapi-public/global/v1/market-event/EV1/file")
			checkAnswerErr(t, err, tt.err)
			if strings.Contains(err.Error(), string(secret)) {
				t.Errorf("error %q contains the license", err)
			}
		})
	}
}

func TestUploadLicenseRefused(t *testing.T) {
	const secret = "secret-license-characters"
	tests := []struct {
		name    string
		eventID string
		f       openapi.LicenseUpload
		field   string
	}{
		{"both characters and a file", "EV1", openapi.LicenseUpload{Characters: secret, FileName: "a", Content: []byte("x")}, "not both"},
		{"neither", "EV1", openapi.LicenseUpload{}, "needs characters or a file"},
		{"a file name without content", "EV1", openapi.LicenseUpload{FileName: "a.lic"}, "file"},
		{"content without a file name", "EV1", openapi.LicenseUpload{Content: []byte(secret)}, "file_name"},
		{"a file name with a slash", "EV1", openapi.LicenseUpload{FileName: "../a.lic", Content: []byte("x")}, "file_name"},
		{"a file name with a newline", "EV1", openapi.LicenseUpload{FileName: "a\n.lic", Content: []byte("x")}, "file_name"},
		{"characters too long", "EV1", openapi.LicenseUpload{Characters: strings.Repeat("许", 1025)}, "characters"},
		{"characters with NUL", "EV1", openapi.LicenseUpload{Characters: secret + "\x00"}, "characters"},
		{"characters not UTF-8", "EV1", openapi.LicenseUpload{Characters: secret + "\xff"}, "characters"},
		{"no event ID", "", openapi.LicenseUpload{Characters: secret}, "eventId"},
		{"event ID with a slash", "EV/1", openapi.LicenseUpload{Characters: secret}, "eventId"},
		{"event ID a dot segment", "..", openapi.LicenseUpload{Characters: secret}, "eventId"},
		{"event ID with a space", "EV 1", openapi.LicenseUpload{Characters: secret}, "eventId"},
		{"event ID too long", strings.Repeat("E", 65), openapi.LicenseUpload{Characters: secret}, "eventId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			err := c.UploadLicense(context.Background(), tt.eventID, tt.f)
			checkRefused(t, s, err, tt.field)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("refusal %q contains the license", err)
			}
		})
	}
}

// TestLicenseFallback checks the fallback host for the license calls: used
// when the base host cannot be reached (the multipart body is sent whole
// again), not when it answers.
func TestLicenseFallback(t *testing.T) {
	calls := []struct {
		name string
		path string
		call func(c *openapi.Client) error
	}{
		{"query", "/api/mkp-openapi-public/global/v1/license/heartbeat", func(c *openapi.Client) error {
			_, err := c.QueryLicense(context.Background(), "PL001")
			return err
		}},
		{"upload", "/api/mkp-openapi-public/global/v1/market-event/EV1/file", func(c *openapi.Client) error {
			return c.UploadLicense(context.Background(), "EV1", openapi.LicenseUpload{FileName: "a.lic", Content: []byte("LICENSE")})
		}},
	}
	for _, cl := range calls {
		t.Run(cl.name+"/unreachable base", func(t *testing.T) {
			fallback := newLicenseAPI(t)
			if cl.name == "upload" {
				fallback.answer(200, `{"error_code":"CBC.0000","error_msg":"success"}`)
			} else {
				fallback.answer(200, `{"error_code":"92020000","data":{"license_code":"PL001","status":"ALIVE"}}`)
			}
			c := newClient(t, openapi.Config{BaseURL: closedURL(t), FallbackURL: fallback.srv.URL})
			if err := cl.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			r := fallback.one(t, cl.path)
			if cl.name == "upload" {
				if u := parseUpload(t, r); string(u.fileContent) != "LICENSE" {
					t.Errorf("fallback got file %q", u.fileContent)
				}
			}
		})
		t.Run(cl.name+"/base answers 503", func(t *testing.T) {
			base, fallback := newLicenseAPI(t), newLicenseAPI(t)
			base.answer(503, `<html>unavailable</html>`)
			c := newClient(t, openapi.Config{BaseURL: base.srv.URL, FallbackURL: fallback.srv.URL})
			if err := cl.call(c); !openapi.Retryable(err) {
				t.Fatalf("error = %v, want a retryable one", err)
			}
			base.one(t, cl.path)
			if n := len(fallback.requests()); n != 0 {
				t.Errorf("fallback got %d requests, want 0", n)
			}
		})
	}
}

func TestLicenseUploadPath(t *testing.T) {
	if got, want := openapi.LicenseUploadPath("EV1"), "/api/mkp-openapi-public/global/v1/market-event/EV1/file"; got != want {
		t.Errorf("LicenseUploadPath = %q, want %q", got, want)
	}
}
