package openapi_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const (
	usageKey = "usage-key-bound-to-basic-interfaces-0123"
	// The paths are written here, not taken from the client's constants,
	// so that a wrong path in the client shows.
	newUsagePath = "/api/mkp-openapi-public/global/v1/isv/usage-data"
	oldUsagePath = "/rest/marketplace/v1/isv/usage-data"
)

// usageNow is the clock of the tests against the mock: the client and
// the mock read it, so the 21-day rule and the ts check are exact.
var usageNow = time.Date(2026, 12, 6, 10, 20, 0, 0, time.UTC)

// usageSentinels are the sentinels added for the usage push; with the
// package's others (sentinels) they are every sentinel of the package.
var usageSentinels = []error{
	openapi.ErrInputCheckFailed, openapi.ErrBodySignature, openapi.ErrParamError,
	openapi.ErrNoAuthority, openapi.ErrIllegalToken,
	openapi.ErrUsageInstanceNotFound, openapi.ErrUsageInvalid, openapi.ErrUsageTooMany, openapi.ErrUsageTooOld,
}

func allSentinels() []error {
	return append(append([]error(nil), sentinels...), usageSentinels...)
}

// record returns a new-push record of instance for the hour starting at
// begin.
func record(instance string, begin time.Time, value string) protocol.UsageRecord {
	return protocol.UsageRecord{
		BeginTime:  protocol.FormatUsageTime(begin),
		EndTime:    protocol.FormatUsageTime(begin.Add(time.Hour)),
		InstanceID: instance,
		MeteringSN: fmt.Sprintf("sn-%s-%d", instance, begin.Unix()),
		RecordTime: protocol.FormatUsageTime(begin.Add(time.Hour + 5*time.Minute)),
		UsageValue: value,
	}
}

// pushBody returns the JSON body of a new push of recs.
func pushBody(t *testing.T, recs ...protocol.UsageRecord) []byte {
	t.Helper()
	b, err := json.Marshal(protocol.UsagePushRequest{UsageRecords: recs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oldPushBody returns the JSON body of an old push of one record.
func oldPushBody(t *testing.T, instance, product string, begin time.Time, value string) []byte {
	t.Helper()
	b, err := json.Marshal(protocol.OldUsagePushRequest{UsageRecords: []protocol.OldUsageRecord{{
		BeginTime:  protocol.FormatUsageTime(begin),
		EndTime:    protocol.FormatUsageTime(begin.Add(time.Hour)),
		InstanceID: instance,
		ProductID:  product,
		RecordTime: protocol.FormatUsageTime(begin.Add(time.Hour + 5*time.Minute)),
		UsageValue: value,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newUsageMock starts the emulator's Open API on usageNow with the usage
// key set.
func newUsageMock(t *testing.T) *openapitest.Server {
	t.Helper()
	srv := openapitest.NewServer(t, testAK, testSK)
	srv.SetClock(func() time.Time { return usageNow })
	srv.SetUsageKey(usageKey)
	return srv
}

// usageClient returns a client of base on usageNow.
func usageClient(t *testing.T, base string) *openapi.Client {
	t.Helper()
	return newClient(t, openapi.Config{BaseURL: base, Now: func() time.Time { return usageNow }})
}

// wantUsageErr checks that err is an *Error with status and code, matches
// sentinel and no other sentinel (nil: none), and is retryable exactly when
// retryable says so; and that the result carries the same answer.
func wantUsageErr(t *testing.T, res openapi.UsagePushResult, err error, status int, code string, sentinel error, retryable bool) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error (result %+v), want %s", res, code)
	}
	var e *openapi.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *openapi.Error", err)
	}
	if e.HTTPStatus != status || e.Code != code {
		t.Errorf("Error = %+v, want status %d code %q", e, status, code)
	}
	for _, s := range allSentinels() {
		if got := errors.Is(err, s); got != (s == sentinel) {
			t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
		}
	}
	if got := openapi.Retryable(err); got != retryable {
		t.Errorf("Retryable(%v) = %v, want %v", err, got, retryable)
	}
	if res.HTTPStatus != status || res.Code != code {
		t.Errorf("result = %+v, want status %d code %q", res, status, code)
	}
	for _, secret := range []string{testSK, usageKey} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}

func TestPushUsageMock(t *testing.T) {
	begin := usageNow.Truncate(time.Hour).Add(-time.Hour)
	srv := newUsageMock(t)
	c := usageClient(t, srv.URL())
	body := pushBody(t, record("inst-1", begin, "1.5"), record("inst-2", begin, "3"))

	res, err := c.PushUsage(context.Background(), usageKey, body)
	if err != nil {
		t.Fatalf("PushUsage: %v", err)
	}
	if want := (openapi.UsagePushResult{HTTPStatus: 200, Code: "MKT.0000", Message: "success"}); !reflect.DeepEqual(res, want) {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	got := srv.UsageRecords()
	if len(got) != 2 || got[0].API != mockapi.UsageAPINew || got[0].InstanceID != "inst-1" || got[0].UsageValue != "1.5" ||
		got[1].InstanceID != "inst-2" || got[0].Duplicate || got[1].Duplicate {
		t.Fatalf("mock kept %+v", got)
	}

	// The same body again (a retry): fresh headers, accepted, and the
	// mock ignores the records as duplicates.
	if _, err := c.PushUsage(context.Background(), usageKey, body); err != nil {
		t.Fatalf("PushUsage again: %v", err)
	}
	if got := srv.UsageRecords(); len(got) != 4 || !got[2].Duplicate || !got[3].Duplicate {
		t.Errorf("after the retry the mock kept %+v, want the two records flagged duplicates", got)
	}
}

func TestPushUsageAPIG(t *testing.T) {
	begin := usageNow.Truncate(time.Hour).Add(-time.Hour)
	for _, require := range []bool{false, true} {
		t.Run(fmt.Sprintf("required=%v", require), func(t *testing.T) {
			srv := newUsageMock(t)
			srv.SetRequireAPIGOnUsage(require)
			body := pushBody(t, record("inst-1", begin, "2"))

			if _, err := usageClient(t, srv.URL()).PushUsage(context.Background(), usageKey, body); err != nil {
				t.Fatalf("PushUsage: %v", err)
			}
			// A wrong SK: the gateway checks the APIG signature the
			// client always sends.
			bad := newClient(t, openapi.Config{BaseURL: srv.URL(), SK: "another-secret-key-0123456789",
				Now: func() time.Time { return usageNow }})
			res, err := bad.PushUsage(context.Background(), usageKey, body)
			wantUsageErr(t, res, err, 401, "APIGW.0301", openapi.ErrAuthentication, false)
			if n := len(srv.UsageRecords()); n != 1 {
				t.Errorf("mock kept %d records, want 1", n)
			}
		})
	}
}

func TestPushUsageOldMock(t *testing.T) {
	begin := usageNow.Truncate(time.Hour).Add(-2 * time.Hour)
	srv := newUsageMock(t)
	body := oldPushBody(t, "inst-v1", "OFFI1", begin, "0.0001")

	res, err := usageClient(t, srv.URL()).PushUsageOld(context.Background(), body)
	if err != nil {
		t.Fatalf("PushUsageOld: %v", err)
	}
	if res.HTTPStatus != 200 || res.Code != "MKT.0000" || res.Rejected != nil {
		t.Errorf("result = %+v", res)
	}
	got := srv.UsageRecords()
	if len(got) != 1 || got[0].API != mockapi.UsageAPIOld || got[0].ProductID != "OFFI1" || got[0].UsageValue != "0.0001" {
		t.Fatalf("mock kept %+v", got)
	}

	bad := newClient(t, openapi.Config{BaseURL: srv.URL(), SK: "another-secret-key-0123456789",
		Now: func() time.Time { return usageNow }})
	res, err = bad.PushUsageOld(context.Background(), body)
	wantUsageErr(t, res, err, 401, "APIGW.0301", openapi.ErrAuthentication, false)
}

// TestPushUsageMockRefusals checks the answers the mock gives to pushes it
// refuses: each a final *Error with its sentinel, nothing kept.
func TestPushUsageMockRefusals(t *testing.T) {
	begin := usageNow.Truncate(time.Hour).Add(-time.Hour)
	many := make([]protocol.UsageRecord, 1001)
	for i := range many {
		many[i] = record(fmt.Sprintf("inst-%d", i), begin, "1")
	}
	tests := []struct {
		name     string
		key      string
		setup    func(*openapitest.Server)
		body     []byte
		status   int
		code     string
		sentinel error
	}{
		{name: "wrong key", key: "not-the-usage-key", body: pushBody(t, record("inst-1", begin, "1")),
			status: 400, code: "MKT.0102", sentinel: openapi.ErrBodySignature},
		{name: "no key at the mock", key: usageKey, setup: func(s *openapitest.Server) { s.SetUsageKey("") },
			body: pushBody(t, record("inst-1", begin, "1")), status: 400, code: "MKT.0102", sentinel: openapi.ErrBodySignature},
		{name: "unknown instance", key: usageKey,
			setup:  func(s *openapitest.Server) { s.SetInstanceCheck(func(id string) bool { return id != "gone" }) },
			body:   pushBody(t, record("inst-1", begin, "1"), record("gone", begin, "1")),
			status: 500, code: "MKT.9001", sentinel: openapi.ErrUsageInstanceNotFound},
		{name: "older than 21 days", key: usageKey, body: pushBody(t, record("inst-1", usageNow.Add(-22*24*time.Hour), "1")),
			status: 500, code: "MKT.9004", sentinel: openapi.ErrUsageTooOld},
		{name: "1001 records", key: usageKey, body: pushBody(t, many...),
			status: 500, code: "MKT.9003", sentinel: openapi.ErrUsageTooMany},
		{name: "zero value", key: usageKey, body: pushBody(t, record("inst-1", begin, "0")),
			status: 400, code: "MKT.0101", sentinel: openapi.ErrInvalidParam},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUsageMock(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			res, err := usageClient(t, srv.URL()).PushUsage(context.Background(), tt.key, tt.body)
			wantUsageErr(t, res, err, tt.status, tt.code, tt.sentinel, false)
			if res.Message == "" {
				t.Errorf("result without error_msg: %+v", res)
			}
			if n := len(srv.UsageRecords()); n != 0 {
				t.Errorf("mock kept %d records, want none", n)
			}
		})
	}
}

// TestPushUsageOutages checks that what waiting may cure is retryable.
func TestPushUsageOutages(t *testing.T) {
	begin := usageNow.Truncate(time.Hour).Add(-time.Hour)
	body := pushBody(t, record("inst-1", begin, "1"))
	t.Run("5xx", func(t *testing.T) {
		srv := newUsageMock(t)
		srv.SetFault(mockapi.Fault{Status: 503, Path: mockapi.UsagePath, Count: 1})
		c := usageClient(t, srv.URL())
		res, err := c.PushUsage(context.Background(), usageKey, body)
		wantUsageErr(t, res, err, 503, "MKT.0999", openapi.ErrInternal, true)
		// The fault was for one request: the retry goes through.
		if _, err := c.PushUsage(context.Background(), usageKey, body); err != nil {
			t.Fatalf("retry: %v", err)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		srv := newUsageMock(t)
		srv.SetFault(mockapi.Fault{Status: 429, Path: mockapi.OldUsagePath})
		res, err := usageClient(t, srv.URL()).PushUsageOld(context.Background(), oldPushBody(t, "i", "p", begin, "1"))
		wantUsageErr(t, res, err, 429, "APIG.0308", openapi.ErrThrottled, true)
	})
	transport := []struct {
		name  string
		fault mockapi.Fault
	}{
		{"dropped connection", mockapi.Fault{Drop: true, Path: mockapi.UsagePath}},
	}
	for _, tt := range transport {
		t.Run(tt.name, func(t *testing.T) {
			srv := newUsageMock(t)
			srv.SetFault(tt.fault)
			c := newClient(t, openapi.Config{BaseURL: srv.URL(), Now: func() time.Time { return usageNow },
				HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
			res, err := c.PushUsage(context.Background(), usageKey, body)
			checkTransportErr(t, res, err)
		})
	}
	t.Run("timeout", func(t *testing.T) {
		// A server that reads the push and never answers. (The mock's
		// Delay fault waits before reading the body, so it does not see
		// the client go away and would hold the test for the whole delay.)
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		c := newClient(t, openapi.Config{BaseURL: srv.URL, HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
		res, err := c.PushUsage(context.Background(), usageKey, body)
		checkTransportErr(t, res, err)
	})
	t.Run("unreachable", func(t *testing.T) {
		res, err := usageClient(t, closedURL(t)).PushUsage(context.Background(), usageKey, body)
		checkTransportErr(t, res, err)
	})
}

// checkTransportErr checks the error of a push that got no answer.
func checkTransportErr(t *testing.T, res openapi.UsagePushResult, err error) {
	t.Helper()
	var e *openapi.Error
	if !openapi.Retryable(err) || errors.As(err, &e) {
		t.Errorf("error = %v, want a retryable one without an answer", err)
	}
	if !reflect.DeepEqual(res, openapi.UsagePushResult{}) {
		t.Errorf("result = %+v, want the zero result", res)
	}
}

// TestPushUsageCodes checks every documented code, and odd answers, on a
// scripted server: the sentinel, whether it is retryable, the result.
func TestPushUsageCodes(t *testing.T) {
	tests := []struct {
		status    int
		answer    string
		code      string
		sentinel  error
		retryable bool
	}{
		{status: 500, code: "MKT.0999", sentinel: openapi.ErrInternal, retryable: true},
		{status: 500, code: "MKT.0100", sentinel: openapi.ErrInputCheckFailed},
		{status: 400, code: "MKT.0101", sentinel: openapi.ErrInvalidParam},
		{status: 400, code: "MKT.0102", sentinel: openapi.ErrBodySignature},
		{status: 400, code: "MKT.0199", sentinel: openapi.ErrParamError},
		{status: 401, code: "MKT.0150", sentinel: openapi.ErrIllegalOperation},
		{status: 401, code: "MKT.0151", sentinel: openapi.ErrNoAuthority},
		{status: 401, code: "MKT.0154", sentinel: openapi.ErrIllegalToken},
		{status: 500, code: "MKT.9001", sentinel: openapi.ErrUsageInstanceNotFound},
		{status: 500, code: "MKT.9002", sentinel: openapi.ErrUsageInvalid},
		{status: 500, code: "MKT.9003", sentinel: openapi.ErrUsageTooMany},
		{status: 500, code: "MKT.9004", sentinel: openapi.ErrUsageTooOld},
		// The pages leave most statuses blank: a code is final or not
		// whatever the status it comes with.
		{status: 200, code: "MKT.9002", sentinel: openapi.ErrUsageInvalid},
		{status: 200, code: "MKT.0999", sentinel: openapi.ErrInternal, retryable: true},
		{status: 429, code: "APIG.0308", sentinel: openapi.ErrThrottled, retryable: true},
		{status: 401, code: "APIGW.0303", sentinel: openapi.ErrAuthentication},
		{status: 403, code: "APIGW.0302", sentinel: openapi.ErrNotAuthorized},
		{status: 502, code: "MKT.7777", retryable: true},
		{status: 400, code: "MKT.7777"},
		{status: 200, code: "MKT.7777"},
		{status: 200, answer: `{"error_code":"CBC.0000","error_msg":"success"}`, code: "CBC.0000"},
		{status: 500, answer: `{"error_code":"MKT.0000","error_msg":"success"}`, code: "MKT.0000", retryable: true},
		{status: 503, answer: `<html>unavailable</html>`, retryable: true},
		{status: 404, answer: `<html>not found</html>`},
		{status: 200, answer: `{"error_msg":"no code"}`},
		{status: 200, answer: `[{"error_code":"MKT.0000"}]`},
	}
	for _, tt := range tests {
		answer := tt.answer
		if answer == "" {
			answer = fmt.Sprintf(`{"error_code":%q,"error_msg":"meaning of %s"}`, tt.code, tt.code)
		}
		t.Run(fmt.Sprintf("%d %s", tt.status, answer), func(t *testing.T) {
			for _, old := range []bool{false, true} {
				s := newLicenseAPI(t)
				s.answer(tt.status, answer)
				c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
				var (
					res  openapi.UsagePushResult
					err  error
					path = newUsagePath
				)
				if old {
					res, err = c.PushUsageOld(context.Background(), []byte(`{"usage_records":[]}`))
					path = oldUsagePath
				} else {
					res, err = c.PushUsage(context.Background(), usageKey, []byte(`{"usage_records":[]}`))
				}
				wantUsageErr(t, res, err, tt.status, tt.code, tt.sentinel, tt.retryable)
				if tt.answer == "" && res.Message != "meaning of "+tt.code {
					t.Errorf("result message %q", res.Message)
				}
				s.one(t, path)
			}
		})
	}
}

// TestPushUsageHeaders checks what goes on the wire: the body byte for
// byte, the three headers of the new push computed from the client's
// clock and a fresh nonce per push, none of them on the old push.
func TestPushUsageHeaders(t *testing.T) {
	s := newLicenseAPI(t)
	s.answer(200, `{"error_code":"MKT.0000","error_msg":"success"}`)
	now := time.Now().Truncate(time.Millisecond)
	c := newClient(t, openapi.Config{BaseURL: s.srv.URL, Now: func() time.Time { return now }})
	// Spacing and escapes the client must not touch.
	body := []byte(`{"usage_records": [{"begin_time":"20261206T090000Z","end_time":"20261206T100000Z","instance_id":"i\u00e9-1","metering_sn":"sn","record_time":"20261206T100500Z","usage_value":"1.50"}] }`)
	for range 2 {
		if _, err := c.PushUsage(context.Background(), usageKey, body); err != nil {
			t.Fatalf("PushUsage: %v", err)
		}
	}
	if _, err := c.PushUsageOld(context.Background(), body); err != nil {
		t.Fatalf("PushUsageOld: %v", err)
	}
	got := s.requests()
	if len(got) != 3 {
		t.Fatalf("server got %d requests, want 3", len(got))
	}
	nonces := map[string]bool{}
	for i, r := range got {
		if !bytes.Equal(r.body, body) {
			t.Errorf("request %d body %q, want %q", i, r.body, body)
		}
		if _, err := verify(r.req, r.body); err != nil {
			t.Errorf("request %d APIG signature: %v", i, err)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("request %d Content-Type %q", i, ct)
		}
		if i == 2 {
			if r.path != oldUsagePath {
				t.Errorf("old push path %s", r.path)
			}
			for _, h := range []string{"signature", "ts", "nonce"} {
				if v := r.header.Get(h); v != "" {
					t.Errorf("old push carries %s: %q", h, v)
				}
			}
			continue
		}
		if r.path != newUsagePath {
			t.Errorf("new push path %s", r.path)
		}
		ts, nonce, signature := r.header.Get("ts"), r.header.Get("nonce"), r.header.Get("signature")
		if ts != strconv.FormatInt(now.UnixMilli(), 10) {
			t.Errorf("ts %q, want %d", ts, now.UnixMilli())
		}
		if b, err := hex.DecodeString(nonce); err != nil || len(b) != 16 || strings.ToLower(nonce) != nonce {
			t.Errorf("nonce %q is not 32 lower-case hex digits", nonce)
		}
		if nonces[nonce] {
			t.Errorf("nonce %q used twice", nonce)
		}
		nonces[nonce] = true
		if err := sign.VerifyUsageSignature(usageKey, ts, nonce, signature, r.body); err != nil {
			t.Errorf("usage signature: %v", err)
		}
	}
}

// recordingTransport keeps the headers and host of every request it
// sends, over real HTTP.
type recordingTransport struct {
	mu    sync.Mutex
	hosts []string
	hdrs  []http.Header
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.hosts = append(rt.hosts, r.URL.Host)
	rt.hdrs = append(rt.hdrs, r.Header.Clone())
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestPushUsageFallback checks that the try on the fallback host carries
// a fresh ts, nonce and signature, which the mock accepts.
func TestPushUsageFallback(t *testing.T) {
	fallback := newUsageMock(t)
	var (
		mu    sync.Mutex
		clock = usageNow
	)
	// Every reading moves the clock on a second, so a reused ts shows.
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	rt := &recordingTransport{}
	base := closedURL(t)
	c := newClient(t, openapi.Config{BaseURL: base, FallbackURL: fallback.URL(), Now: now,
		HTTPClient: &http.Client{Transport: rt}})
	body := pushBody(t, record("inst-1", usageNow.Truncate(time.Hour).Add(-time.Hour), "4.25"))

	res, err := c.PushUsage(context.Background(), usageKey, body)
	if err != nil || res.Code != "MKT.0000" {
		t.Fatalf("PushUsage = %+v, %v", res, err)
	}
	if n := len(fallback.UsageRecords()); n != 1 {
		t.Errorf("fallback kept %d records, want 1", n)
	}
	if len(rt.hdrs) != 2 || "http://"+rt.hosts[0] != base || "http://"+rt.hosts[1] != fallback.URL() {
		t.Fatalf("tries to %v, want the base then the fallback", rt.hosts)
	}
	first, second := rt.hdrs[0], rt.hdrs[1]
	for _, h := range []string{"ts", "nonce", "signature"} {
		if first.Get(h) == "" || first.Get(h) == second.Get(h) {
			t.Errorf("header %s: %q on the base try, %q on the fallback try: want two fresh values", h, first.Get(h), second.Get(h))
		}
	}
	for i, h := range rt.hdrs {
		if err := sign.VerifyUsageSignature(usageKey, h.Get("ts"), h.Get("nonce"), h.Get("signature"), body); err != nil {
			t.Errorf("try %d: %v", i, err)
		}
	}
}

// TestPushUsageRejected checks the tolerant reading of per-record
// refusals, with success and with an error code.
func TestPushUsageRejected(t *testing.T) {
	tests := []struct {
		name   string
		status int
		answer string
		code   string
		want   []openapi.RejectedUsage
	}{
		{name: "top-level list with success", status: 200,
			answer: `{"error_code":"MKT.0000","error_msg":"success","failed_records":[{"metering_sn":"sn1","instance_id":"i1","begin_time":"20261206T090000Z","end_time":"20261206T100000Z","error_code":"MKT.9002","error_msg":"begin_time before the instance started","extra":{"a":1}}]}`,
			code:   "MKT.0000",
			want: []openapi.RejectedUsage{{MeteringSN: "sn1", InstanceID: "i1", BeginTime: "20261206T090000Z",
				EndTime: "20261206T100000Z", Code: "MKT.9002", Message: "begin_time before the instance started"}}},
		{name: "list inside data with an error code", status: 500,
			answer: `{"error_code":"MKT.9002","error_msg":"invalid usage entities","data":{"total":2,"error_list":[{"instance_id":"i2","code":9001,"reason":"no such instance"}]}}`,
			code:   "MKT.9002",
			want:   []openapi.RejectedUsage{{InstanceID: "i2", Code: "9001", Message: "no such instance"}}},
		{name: "data is the list", status: 200,
			answer: `{"error_code":"MKT.0000","data":[{"metering_sn":"sn3","msg":"duplicate"},{"metering_sn":"sn4","message":"m4","reason":"r4"}]}`,
			code:   "MKT.0000",
			want:   []openapi.RejectedUsage{{MeteringSN: "sn3", Message: "duplicate"}, {MeteringSN: "sn4", Message: "m4"}}},
		{name: "several lists in name order", status: 200,
			answer: `{"error_code":"MKT.0000","b_list":[{"metering_sn":"2"}],"a_list":[{"metering_sn":"1"}]}`,
			code:   "MKT.0000",
			want:   []openapi.RejectedUsage{{MeteringSN: "1"}, {MeteringSN: "2"}}},
		{name: "what is not a refusal", status: 200,
			answer: `{"error_code":"MKT.0000","usage_records":[{"metering_sn":"echo"}],"success_records":[{"metering_sn":"ok"}],"acceptedList":[{"instance_id":"ok"}],"ids":["x"],"others":[{"foo":1}],"nested":{"x":[{"metering_sn":"deep"}]},"mixed":[1,"s",null,{"metering_sn":"c","code":"X","error_msg":"m"}]}`,
			code:   "MKT.0000",
			want:   []openapi.RejectedUsage{{MeteringSN: "c", Code: "X", Message: "m"}}},
		{name: "odd types", status: 200,
			answer: `{"error_code":"MKT.0000","failed":[{"metering_sn":12345,"error_code":{"x":1},"error_msg":null}]}`,
			code:   "MKT.0000",
			want:   []openapi.RejectedUsage{{MeteringSN: "12345", Code: `{"x":1}`}}},
		{name: "none", status: 200, answer: `{"error_code":"MKT.0000","error_msg":"success","failed_records":[]}`, code: "MKT.0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			s.answer(tt.status, tt.answer)
			res, err := newClient(t, openapi.Config{BaseURL: s.srv.URL}).PushUsage(context.Background(), usageKey, []byte(`{"usage_records":[]}`))
			if (err == nil) != (tt.code == "MKT.0000") {
				t.Errorf("error = %v", err)
			}
			if res.HTTPStatus != tt.status || res.Code != tt.code {
				t.Errorf("result = %+v", res)
			}
			if !reflect.DeepEqual(res.Rejected, tt.want) {
				t.Errorf("Rejected = %+v, want %+v", res.Rejected, tt.want)
			}
		})
	}
}

// TestPushUsageRefusedBeforeSending checks what the client refuses
// itself: nothing is sent.
func TestPushUsageRefusedBeforeSending(t *testing.T) {
	tests := []struct {
		name string
		key  string
		body string
		old  bool
	}{
		{name: "no key", body: `{"usage_records":[]}`},
		{name: "empty body", key: usageKey},
		{name: "not JSON", key: usageKey, body: `{"usage_records":`},
		{name: "not an object", key: usageKey, body: `[]`},
		{name: "old: not JSON", body: "usage", old: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newLicenseAPI(t)
			c := newClient(t, openapi.Config{BaseURL: s.srv.URL})
			var (
				res openapi.UsagePushResult
				err error
			)
			if tt.old {
				res, err = c.PushUsageOld(context.Background(), []byte(tt.body))
			} else {
				res, err = c.PushUsage(context.Background(), tt.key, []byte(tt.body))
			}
			var e *openapi.Error
			if err == nil || errors.As(err, &e) || openapi.Retryable(err) {
				t.Errorf("error = %v, want a final refusal", err)
			}
			if !reflect.DeepEqual(res, openapi.UsagePushResult{}) {
				t.Errorf("result = %+v", res)
			}
			if n := len(s.requests()); n != 0 {
				t.Errorf("server got %d requests", n)
			}
		})
	}
}

// A usage push is sent with the key bound to the basic interfaces; a
// retryable failure is sent again later with the same body (the same
// metering_sn), which KooGallery de-duplicates.
func ExampleClient_PushUsage() {
	// The emulator's imitation of KooGallery stands in for it here.
	const ak, sk, key = "EXAMPLEAK", "example-secret-key", "example-usage-key"
	api := mockapi.NewHandler(ak, sk)
	api.SetUsageKey(key)
	srv := httptest.NewServer(api)
	defer srv.Close()

	c, err := openapi.New(openapi.Config{BaseURL: srv.URL, AK: ak, SK: sk})
	if err != nil {
		fmt.Println(err)
		return
	}
	begin := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	body, err := json.Marshal(protocol.UsagePushRequest{UsageRecords: []protocol.UsageRecord{{
		BeginTime:  protocol.FormatUsageTime(begin),
		EndTime:    protocol.FormatUsageTime(begin.Add(time.Hour)),
		InstanceID: "inst-1",
		MeteringSN: "3f1c0a9e5b7d2468ace013579bdf2468ace01357",
		RecordTime: protocol.FormatUsageTime(begin.Add(time.Hour)),
		UsageValue: "1.5",
	}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 2 {
		res, err := c.PushUsage(context.Background(), key, body)
		switch {
		case err == nil:
			fmt.Println("accepted:", res.Code, "refused records:", len(res.Rejected))
		case openapi.Retryable(err):
			fmt.Println("send the same body again later:", err)
		case errors.Is(err, openapi.ErrUsageTooOld):
			fmt.Println("too old, never billable:", err)
		default:
			fmt.Println("refused:", err)
		}
	}
	for _, r := range api.UsageRecords() {
		fmt.Println(r.InstanceID, r.UsageValue, "duplicate:", r.Duplicate)
	}
	// Output:
	// accepted: MKT.0000 refused records: 0
	// accepted: MKT.0000 refused records: 0
	// inst-1 1.5 duplicate: false
	// inst-1 1.5 duplicate: true
}
