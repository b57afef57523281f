package licenseapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/licenseapi"
	"github.com/koobridge/koobridge/internal/licensetoken"
	"github.com/koobridge/koobridge/internal/lockbuf"
	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/internal/openapi/openapitest"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// fingerprint is the device of the tests: distinctive, so a log line that
// holds it is found.
const fingerprint = "04:7C:16:5E:E3:5D|001B_444A_488B_5CEC.|BOARD-SECRET-7|BFEBFBFF00090672"

const (
	testAK, testSK = "AK-license-service", "SK-license-service-secret"
	grace          = 168 * time.Hour
	checkInterval  = 24 * time.Hour
)

// clock is the tests' clock, shared by the license service, its Open API
// client, KooGallery's imitation and the rate limits, so a test can move
// time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// events is the vendor's provisioner: it takes the license events.
type events struct{}

func (events) Provision(context.Context, provision.Event) (provision.Result, error) {
	return provision.Result{}, nil
}

// env is the license service on real HTTP in front of the real license
// domain on SQLite, which reaches KooGallery's Open API imitation over
// real HTTP with a real client, and real token keys.
type env struct {
	url   string
	st    store.Store
	svc   *license.Service
	calls *counted // the service's calls, as the handler made them
	api   *openapitest.Server
	clock *clock
	logs  *lockbuf.Buffer
}

func newEnv(t *testing.T, perCode, perAddress int) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := make([]byte, seal.KeySize)
	_, _ = rand.Read(key)
	sealer, err := seal.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, logs: &lockbuf.Buffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), "BOARD-SECRET-7") {
			t.Errorf("the device fingerprint was logged:\n%s", e.logs.String())
		}
	})

	e.api = openapitest.NewServer(t, testAK, testSK)
	e.api.SetClock(e.clock.Now)
	client, err := openapi.New(openapi.Config{BaseURL: e.api.URL(), AK: testAK, SK: testSK, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	runner := jobs.NewRunner(jobs.Config{Store: st, Workers: 1, Poll: 10 * time.Millisecond, Logger: logger, Now: e.clock.Now})
	e.svc, err = license.New(license.Config{Store: st, OpenAPI: client, Provisioner: events{}, Jobs: runner,
		Grace: grace, CheckInterval: checkInterval, Logger: logger, Now: e.clock.Now,
		DeviceKey: []byte("licenseapi-test-device-key-0123456789")})
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.RegisterAll(e.svc.Jobs()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	ring, err := licensetoken.New(licensetoken.Config{Store: st, Sealer: sealer, Retention: grace, Logger: logger, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.calls = &counted{Licenses: e.svc}
	h, err := licenseapi.New(licenseapi.Config{Licenses: e.calls, Tokens: ring,
		RatePerCode: perCode, RatePerAddress: perAddress, Logger: logger, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// counted passes the handler's calls on to the license domain, counting
// them.
type counted struct {
	licenseapi.Licenses
	mu sync.Mutex
	n  int
}

func (c *counted) count() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
}

func (c *counted) Activate(ctx context.Context, code, fp string) (license.Verdict, error) {
	c.count()
	return c.Licenses.Activate(ctx, code, fp)
}

func (c *counted) Check(ctx context.Context, code, fp string) (license.Verdict, error) {
	c.count()
	return c.Licenses.Check(ctx, code, fp)
}

func (c *counted) N() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// issue makes KooGallery issue code with amount seats, alive for a year.
func (e *env) issue(t *testing.T, code string, amount int, undelivered bool) mockapi.LicenseCode {
	t.Helper()
	c := mockapi.LicenseCode{Code: code, ProductID: "P-" + code, OrderID: "CS-" + code, Amount: amount,
		Expire: e.clock.Now().AddDate(1, 0, 0), Undelivered: undelivered}
	if err := e.api.IssueLicense(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// untouched fails the test when anything of a code reached the domain or
// KooGallery.
func (e *env) untouched(t *testing.T) {
	t.Helper()
	codes, err := e.st.LicenseCodes(context.Background(), store.LicenseCodeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 0 {
		t.Errorf("refused requests recorded codes: %+v", codes)
	}
	if a, q := e.api.LicenseActivations(), e.api.LicenseQueries(); len(a)+len(q) != 0 {
		t.Errorf("refused requests reached KooGallery: %+v %+v", a, q)
	}
}

// response is an answer as the tests compare it.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request over HTTP from client (nil: the default one).
func do(t *testing.T, client *http.Client, method, url, contentType string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (e *env) post(t *testing.T, path, body string) response {
	t.Helper()
	return do(t, nil, http.MethodPost, e.url+path, "application/json", []byte(body))
}

func body(code, fp string) string {
	b, _ := json.Marshal(map[string]string{"license": code, "deviceFingerprint": fp})
	return string(b)
}

// errorAnswer decodes an error answer.
func errorAnswer(t *testing.T, r response) (code, message string) {
	t.Helper()
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error answer %s: %v", r.body, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer Content-Type %q", ct)
	}
	return e.Error, e.Message
}

// keys fetches the JWK set with go-jose.
func (e *env) keys(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	r := do(t, nil, http.MethodGet, e.url+licenseapi.PathKeys, "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("keys: %d %s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("keys Cache-Control %q, want public, max-age=300", cc)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatalf("keys %s: %v", r.body, err)
	}
	return set
}

// verify checks token with go-jose against set and returns its claims.
func verify(t *testing.T, token string, set jose.JSONWebKeySet) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("token %q: %v", token, err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("token key %q not in the JWK set", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// verdictAnswer is an answer of activate or check as the tests compare
// it, the token verified and replaced by its claims.
type verdictAnswer struct {
	License    string `json:"license"`
	Status     string `json:"status"`
	Expires    string `json:"expires"`
	ValidUntil string `json:"validUntil"`
	Cached     bool   `json:"cached"`
	Token      string `json:"token"`
}

// verdict posts body to path, wants a 200, verifies the token with
// go-jose against the published keys and checks that its claims say
// what the answer says, for this fingerprint.
func (e *env) verdict(t *testing.T, path, code string) verdictAnswer {
	t.Helper()
	r := e.post(t, path, body(code, fingerprint))
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", path, code, r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var a verdictAnswer
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	if a.Expires == "" && strings.Contains(string(r.body), `"expires"`) {
		t.Errorf("an unknown expiry is written, not left out: %s", r.body)
	}
	claims := verify(t, a.Token, e.keys(t))
	if iat, ok := claims["iat"].(float64); !ok || int64(iat) != e.clock.Now().Unix() {
		t.Errorf("iat %v, want %d", claims["iat"], e.clock.Now().Unix())
	}
	delete(claims, "iat")
	want := map[string]any{"license": a.License, "fingerprint": fingerprint, "status": a.Status, "validUntil": a.ValidUntil}
	if a.Expires != "" {
		want["expires"] = a.Expires
	}
	if !reflect.DeepEqual(claims, want) {
		t.Errorf("claims %v, want %v", claims, want)
	}
	a.Token = ""
	return a
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// TestLifecycle: a code issued by KooGallery is activated and checked
// through the service, then frozen, unfrozen and released by the
// production interface, and checked while KooGallery cannot be reached:
// every answer is the domain's verdict with a token that go-jose verifies
// against the published keys and whose claims say the same.
func TestLifecycle(t *testing.T) {
	e := newEnv(t, 30, 120)
	ctx := context.Background()
	issued := e.issue(t, "PL-LIFE", 2, false)
	expires := rfc3339(issued.Expire)
	now := func() time.Time { return e.clock.Now() }
	var confirmed time.Time // when KooGallery last confirmed the code: its activation, then the UNFREEZE

	steps := []struct {
		name string
		do   func(t *testing.T)
		path string
		want func() verdictAnswer
	}{
		{"activate", nil, licenseapi.PathActivate,
			func() verdictAnswer {
				confirmed = now()
				return verdictAnswer{"PL-LIFE", "active", expires, rfc3339(now().Add(grace)), false, ""}
			}},
		{"activate again (a duplicate gets the same answer)", nil, licenseapi.PathActivate,
			func() verdictAnswer {
				return verdictAnswer{"PL-LIFE", "active", expires, rfc3339(now().Add(grace)), false, ""}
			}},
		{"check", nil, licenseapi.PathCheck,
			func() verdictAnswer {
				return verdictAnswer{"PL-LIFE", "active", expires, rfc3339(now().Add(grace)), false, ""}
			}},
		{"check after a freeze", func(t *testing.T) {
			if _, err := e.svc.SetStatus(ctx, protocol.UpdateLicenseCodeStatusRequest{License: "PL-LIFE", Status: protocol.StatusFreeze}); err != nil {
				t.Fatal(err)
			}
		}, licenseapi.PathCheck,
			func() verdictAnswer { return verdictAnswer{"PL-LIFE", "frozen", expires, rfc3339(now()), false, ""} }},
		{"check after an unfreeze", func(t *testing.T) {
			if _, err := e.svc.SetStatus(ctx, protocol.UpdateLicenseCodeStatusRequest{License: "PL-LIFE", Status: protocol.StatusUnfreeze}); err != nil {
				t.Fatal(err)
			}
			confirmed = now() // an UNFREEZE is KooGallery confirming the code
		}, licenseapi.PathCheck,
			func() verdictAnswer {
				return verdictAnswer{"PL-LIFE", "active", expires, rfc3339(now().Add(grace)), false, ""}
			}},
		{"check a day later while KooGallery is down: from the cache", func(t *testing.T) {
			e.clock.Add(checkInterval)
			e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusServiceUnavailable})
		}, licenseapi.PathCheck,
			// The cache is trusted for the grace after the last confirmation
			// and the check interval it was not due.
			func() verdictAnswer {
				return verdictAnswer{"PL-LIFE", "active", expires, rfc3339(confirmed.Add(checkInterval + grace)), true, ""}
			}},
		{"check after a release", func(t *testing.T) {
			e.api.SetLicenseFault(mockapi.Fault{})
			if _, err := e.svc.Release(ctx, protocol.ReleaseLicenseCodeRequest{License: "PL-LIFE"}); err != nil {
				t.Fatal(err)
			}
		}, licenseapi.PathCheck,
			func() verdictAnswer { return verdictAnswer{"PL-LIFE", "released", expires, rfc3339(now()), false, ""} }},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.do != nil {
				s.do(t)
			}
			e.clock.Add(time.Second)
			if got, want := e.verdict(t, s.path, "PL-LIFE"), s.want(); got != want {
				t.Errorf("answer\n got %+v\nwant %+v", got, want)
			}
		})
	}
	if all := e.api.LicenseActivations(); len(all) != 1 {
		t.Errorf("KooGallery got %d activations, want 1: %+v", len(all), all)
	}
}

// TestBadRequests: every kind of bad input is refused with the right
// status and a message naming the problem, and never reaches the license
// domain.
func TestBadRequests(t *testing.T) {
	e := newEnv(t, 1000, 1000)
	long := strings.Repeat("F", 5<<10+1)
	for _, tc := range []struct {
		name        string
		path        string
		contentType string
		body        string
		status      int
		message     string
	}{
		{"empty body", licenseapi.PathActivate, "application/json", ``, 400, "request body: invalid JSON at byte 0: empty body"},
		{"not JSON", licenseapi.PathActivate, "application/json", `license=PL1`, 400, "request body: not a JSON object"},
		{"array", licenseapi.PathCheck, "application/json", `[{"license":"PL1"}]`, 400, "request body: not a JSON object"},
		{"truncated", licenseapi.PathCheck, "application/json", `{"license":"PL1"`, 400, "request body: invalid JSON at byte 16: unexpected end of input"},
		{"two documents", licenseapi.PathCheck, "application/json", body("PL1", fingerprint) + `{}`, 400, "unexpected data after the value"},
		{"duplicate key", licenseapi.PathActivate, "application/json", `{"license":"PL1","license":"PL2","deviceFingerprint":"F"}`, 400, "invalid parameter license: duplicate key"},
		{"duplicate apart from case", licenseapi.PathActivate, "application/json", `{"license":"PL1","deviceFingerprint":"F","DeviceFingerprint":"G"}`, 400,
			"invalid parameter DeviceFingerprint: duplicate key (the same as deviceFingerprint apart from letter case)"},
		{"unknown field", licenseapi.PathActivate, "application/json", `{"license":"PL1","deviceFingerprint":"F","amount":"2"}`, 400,
			"invalid parameter amount: unknown field (the fields are license, deviceFingerprint)"},
		{"number", licenseapi.PathActivate, "application/json", `{"license":123,"deviceFingerprint":"F"}`, 400, "invalid parameter license: must be a string, not a number"},
		{"null", licenseapi.PathActivate, "application/json", `{"license":"PL1","deviceFingerprint":null}`, 400, "invalid parameter deviceFingerprint: must be a string, not null"},
		{"array field", licenseapi.PathCheck, "application/json", `{"license":["PL1"],"deviceFingerprint":"F"}`, 400, "invalid parameter license: must be a string, not an array"},
		{"NUL", licenseapi.PathActivate, "application/json", `{"license":"PL1","deviceFingerprint":"F\u0000"}`, 400, "invalid parameter deviceFingerprint: contains a NUL character (\\u0000)"},
		{"invalid UTF-8", licenseapi.PathActivate, "application/json", "{\"license\":\"PL1\",\"deviceFingerprint\":\"F\xc3\"}", 400, "invalid parameter deviceFingerprint: not valid UTF-8"},
		{"lone surrogate", licenseapi.PathActivate, "application/json", `{"license":"PL1","deviceFingerprint":"\udc00"}`, 400, "invalid parameter deviceFingerprint: contains a lone surrogate escape (\\udc00)"},
		{"license missing", licenseapi.PathActivate, "application/json", `{"deviceFingerprint":"F"}`, 400, "invalid parameter license: missing"},
		{"license empty", licenseapi.PathCheck, "application/json", body("", fingerprint), 400, "invalid parameter license: missing"},
		{"license too long", licenseapi.PathActivate, "application/json", body(strings.Repeat("P", 65), fingerprint), 400, "invalid parameter license: longer than 64 characters"},
		{"license with a space", licenseapi.PathActivate, "application/json", body("PL 1", fingerprint), 400, "invalid parameter license: may hold only printable ASCII characters without spaces"},
		{"license not ASCII", licenseapi.PathActivate, "application/json", body("PL１", fingerprint), 400, "invalid parameter license: may hold only printable ASCII characters without spaces"},
		{"fingerprint missing", licenseapi.PathActivate, "application/json", `{"license":"PL1"}`, 400, "invalid parameter deviceFingerprint: missing"},
		{"fingerprint too long", licenseapi.PathActivate, "application/json", body("PL1", long), 400, "invalid parameter deviceFingerprint: longer than 5120 bytes"},
		{"fingerprint with a line break", licenseapi.PathCheck, "application/json", body("PL1", "AA\n|||"), 400, "invalid parameter deviceFingerprint: contains a control character"},
		{"body too large", licenseapi.PathActivate, "application/json", `{"license":"PL1","deviceFingerprint":"` + strings.Repeat("F", 16<<10) + `"}`, 413, "the body is larger than 16384 bytes"},
		{"no content type", licenseapi.PathActivate, "", body("PL1", fingerprint), 415, "the body must be JSON, sent with Content-Type application/json (none was given)"},
		{"form content type", licenseapi.PathActivate, "application/x-www-form-urlencoded", body("PL1", fingerprint), 415, "the body must be JSON, sent with Content-Type application/json"},
		{"latin-1", licenseapi.PathCheck, "application/json; charset=iso-8859-1", body("PL1", fingerprint), 415, "the only parameter accepted is charset=utf-8"},
		{"query parameters", licenseapi.PathActivate + "?license=PL1", "application/json", body("PL1", fingerprint), 400, "the request takes no query parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, nil, http.MethodPost, e.url+tc.path, tc.contentType, []byte(tc.body))
			if r.status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tc.status)
			}
			code, msg := errorAnswer(t, r)
			if code != "invalid_request" || !strings.Contains(msg, tc.message) {
				t.Errorf("answer %s: %s, want invalid_request: …%s…", code, msg, tc.message)
			}
			if strings.Contains(msg, "BOARD-SECRET") {
				t.Errorf("the message shows the fingerprint: %s", msg)
			}
		})
	}
	e.untouched(t)
	// The same service takes a good request with charset=utf-8.
	e.issue(t, "PL1", 1, false)
	r := do(t, nil, http.MethodPost, e.url+licenseapi.PathActivate, "application/json; charset=UTF-8", []byte(body("PL1", fingerprint)))
	if r.status != http.StatusOK {
		t.Errorf("charset=UTF-8: %d %s", r.status, r.body)
	}
}

// TestErrorMapping: each refusal of the license domain gets its status,
// code and the category's fixed message naming the code (never the
// domain's text, which may carry KooGallery's), Retry-After where a retry
// may help, and the domain's text in the log.
func TestErrorMapping(t *testing.T) {
	e := newEnv(t, 1000, 1000)
	e.issue(t, "PL-ONE-SEAT", 1, false)
	e.issue(t, "PL-UNDELIVERED", 1, true)
	e.issue(t, "PL-DOWN", 1, false)
	if r := e.post(t, licenseapi.PathActivate, body("PL-ONE-SEAT", "ANOTHER-DEVICE|||")); r.status != http.StatusOK {
		t.Fatalf("activate PL-ONE-SEAT: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name       string
		before     func()
		path, code string
		status     int
		error      string
		message    string
		retryAfter string
	}{
		{"unknown to KooGallery", nil, licenseapi.PathActivate, "PL-NEVER-ISSUED", 404, "unknown_license",
			"KooGallery does not know license code PL-NEVER-ISSUED", ""},
		{"check before activation", nil, licenseapi.PathCheck, "PL-UNDELIVERED", 409, "not_activated",
			"license code PL-UNDELIVERED is not activated for this device: activate it first", ""},
		{"check on a device that did not activate", nil, licenseapi.PathCheck, "PL-ONE-SEAT", 409, "not_activated",
			"license code PL-ONE-SEAT is not activated for this device: activate it first", ""},
		{"not received by the buyer", nil, licenseapi.PathActivate, "PL-UNDELIVERED", 409, "refused",
			"KooGallery refused to activate license code PL-UNDELIVERED (the buyer may not have received it yet)", ""},
		{"every seat taken", nil, licenseapi.PathActivate, "PL-ONE-SEAT", 409, "no_seat",
			"every seat of license code PL-ONE-SEAT is taken by other devices", ""},
		{"KooGallery down", func() { e.api.SetLicenseFault(mockapi.Fault{Status: http.StatusBadGateway}) },
			licenseapi.PathActivate, "PL-DOWN", 503, "unavailable",
			"KooGallery cannot be reached to answer for license code PL-DOWN, and no answer recent enough is cached: try again later", "60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			r := e.post(t, tc.path, body(tc.code, fingerprint))
			if r.status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tc.status)
			}
			code, msg := errorAnswer(t, r)
			if code != tc.error || msg != tc.message {
				t.Errorf("answer %s: %q, want %s: %q", code, msg, tc.error, tc.message)
			}
			if got := r.header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if !strings.Contains(e.logs.String(), "license="+tc.code+" answer="+tc.error+" error=") &&
				!strings.Contains(e.logs.String(), "license="+tc.code+" error=") {
				t.Errorf("the log lacks the refusal's detail for %s:\n%s", tc.code, e.logs.String())
			}
		})
	}
}

// leakyLicenses fails as the license domain does when KooGallery's Open
// API or its gateway answered: each error wraps a category of package
// license with the upstream text and the Open API's address.
type leakyLicenses struct{ err error }

func (l leakyLicenses) Activate(context.Context, string, string) (license.Verdict, error) {
	return license.Verdict{}, l.err
}

func (l leakyLicenses) Check(context.Context, string, string) (license.Verdict, error) {
	return license.Verdict{}, l.err
}

// TestRefusalHidesUpstreamText: whatever KooGallery or its gateway said,
// and the Open API's address, reach the log, never the client: it gets
// the category's fixed message. An invalid request keeps the domain's
// text, which names the client's own input.
func TestRefusalHidesUpstreamText(t *testing.T) {
	const upstream = "openapi: POST https://marketplace.example.myhuaweicloud.com/v1/license/activate: " +
		"HTTP 502 <html>APIG.0101 gateway upstream timeout</html>"
	for _, tc := range []struct {
		name    string
		err     error
		status  int
		code    string
		message string
	}{
		{"unknown", fmt.Errorf("license: activate PL1: %w: %s", license.ErrUnknown, upstream), 404, "unknown_license",
			"KooGallery does not know license code PL1"},
		{"not activated", fmt.Errorf("license: check PL1: %w: KooGallery reports it as not activated; activate it again: %s",
			license.ErrNotActivated, upstream), 409, "not_activated", "license code PL1 is not activated for this device: activate it first"},
		{"refused", fmt.Errorf("license: activate PL1: %w: %s", license.ErrRefused, upstream), 409, "refused",
			"KooGallery refused to activate license code PL1 (the buyer may not have received it yet)"},
		{"no seat", fmt.Errorf("license: activate PL1: %w: all 3 seats are taken", license.ErrNoSeat), 409, "no_seat",
			"every seat of license code PL1 is taken by other devices"},
		{"unavailable", fmt.Errorf("license: check PL1: %w: %s", license.ErrUnavailable, upstream), 503, "unavailable",
			"KooGallery cannot be reached to answer for license code PL1, and no answer recent enough is cached: try again later"},
		{"invalid", fmt.Errorf("%w: deviceFingerprint is longer than 5120 bytes", license.ErrInvalid), 400, "invalid_request",
			"license: invalid request: deviceFingerprint is longer than 5120 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockbuf.Buffer{}
			h, err := licenseapi.New(licenseapi.Config{Licenses: leakyLicenses{tc.err}, Tokens: nopTokens{},
				RatePerCode: 10, RatePerAddress: 10, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			for _, path := range []string{licenseapi.PathActivate, licenseapi.PathCheck} {
				r := do(t, nil, http.MethodPost, srv.URL+path, "application/json", []byte(body("PL1", fingerprint)))
				if r.status != tc.status {
					t.Fatalf("%s: %d %s, want %d", path, r.status, r.body, tc.status)
				}
				code, msg := errorAnswer(t, r)
				if code != tc.code || msg != tc.message {
					t.Errorf("%s: %s %q, want %s %q", path, code, msg, tc.code, tc.message)
				}
				for _, leak := range []string{"https://", "myhuaweicloud", "APIG", "gateway", "502"} {
					if strings.Contains(string(r.body), leak) {
						t.Errorf("%s: the answer shows %q: %s", path, leak, r.body)
					}
				}
			}
			if !strings.Contains(logs.String(), strings.ReplaceAll(tc.err.Error(), `"`, `\"`)) {
				t.Errorf("the log lacks the detail %q:\n%s", tc.err, logs.String())
			}
		})
	}
}

// brokenLicenses fails as a license domain whose database broke does:
// with an error package license does not name.
type brokenLicenses struct{}

func (brokenLicenses) Activate(context.Context, string, string) (license.Verdict, error) {
	return license.Verdict{}, errors.New("license: activate PL1: sqlite: disk I/O error at /var/lib/koobridge/kb.db")
}

func (brokenLicenses) Check(context.Context, string, string) (license.Verdict, error) {
	return license.Verdict{}, fmt.Errorf("license: check PL1: %w", context.DeadlineExceeded)
}

// TestInternalErrors: an error the license domain does not name is a 500
// whose message shows nothing of it.
func TestInternalErrors(t *testing.T) {
	h, err := licenseapi.New(licenseapi.Config{Licenses: brokenLicenses{}, Tokens: failingTokens{},
		RatePerCode: 10, RatePerAddress: 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, path := range []string{licenseapi.PathActivate, licenseapi.PathCheck} {
		r := do(t, nil, http.MethodPost, srv.URL+path, "application/json", []byte(body("PL1", fingerprint)))
		if r.status != http.StatusInternalServerError {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		if code, msg := errorAnswer(t, r); code != "internal" || msg != "internal error: the license service could not answer" {
			t.Errorf("%s: %s %q", path, code, msg)
		}
	}
}

// TestMethodsAndRoutes: a wrong method gets 405 with Allow, an unknown
// route 404, both as JSON; HEAD of the keys has no body.
func TestMethodsAndRoutes(t *testing.T) {
	e := newEnv(t, 1000, 1000)
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, licenseapi.PathActivate, 405, "method_not_allowed", "POST"},
		{http.MethodPut, licenseapi.PathCheck, 405, "method_not_allowed", "POST"},
		{http.MethodPost, licenseapi.PathKeys, 405, "method_not_allowed", "GET, HEAD"},
		{http.MethodDelete, licenseapi.PathKeys, 405, "method_not_allowed", "GET, HEAD"},
		{http.MethodPost, "/api/v1/licenses/release", 404, "not_found", ""},
		{http.MethodPost, licenseapi.PathActivate + "/", 404, "not_found", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := do(t, nil, tc.method, e.url+tc.path, "application/json", []byte(body("PL1", fingerprint)))
			if r.status != tc.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tc.status)
			}
			if code, _ := errorAnswer(t, r); code != tc.code {
				t.Errorf("error %q, want %q", code, tc.code)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
	e.untouched(t)
	r := do(t, nil, http.MethodHead, e.url+licenseapi.PathKeys, "", nil)
	if r.status != http.StatusOK || len(r.body) != 0 || r.header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("HEAD keys: %d %q %v", r.status, r.body, r.header)
	}
}

// fromAddress is an HTTP client whose connections come from the loopback
// address ip, so that one test can be two clients.
func fromAddress(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestRateLimitPerCode: a code gets RatePerCode requests a minute,
// whatever the route and address; the next is refused 429 with the wait,
// without reaching the domain; another code is not affected; the bucket
// refills with time.
func TestRateLimitPerCode(t *testing.T) {
	e := newEnv(t, 3, 1000)
	e.issue(t, "PL1", 1, false)
	e.issue(t, "PL2", 1, false)
	a, b := fromAddress("127.0.0.1"), fromAddress("127.0.0.2")
	send := func(client *http.Client, path, code string) response {
		return do(t, client, http.MethodPost, e.url+path, "application/json", []byte(body(code, fingerprint)))
	}
	for i, r := range []response{send(a, licenseapi.PathActivate, "PL1"), send(b, licenseapi.PathCheck, "PL1"), send(a, licenseapi.PathCheck, "PL1")} {
		if r.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	r := send(b, licenseapi.PathCheck, "PL1")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("fourth request for PL1 in a minute: %d %s", r.status, r.body)
	}
	if code, msg := errorAnswer(t, r); code != "rate_limited" || !strings.Contains(msg, "more than 3 requests a minute for license PL1") {
		t.Errorf("answer %s: %s", code, msg)
	}
	if got := r.header.Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After %q, want 20 (a token every 60/3 s)", got)
	}
	if got := e.calls.N(); got != 3 {
		t.Errorf("%d calls reached the domain, want 3", got)
	}
	if r := send(a, licenseapi.PathActivate, "PL2"); r.status != http.StatusOK {
		t.Errorf("another code: %d %s", r.status, r.body)
	}
	e.clock.Add(19 * time.Second)
	if r := send(a, licenseapi.PathCheck, "PL1"); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Errorf("19 s later: %d, Retry-After %q; want 429 and 1", r.status, r.header.Get("Retry-After"))
	}
	e.clock.Add(time.Second)
	if r := send(a, licenseapi.PathCheck, "PL1"); r.status != http.StatusOK {
		t.Errorf("20 s later: %d %s", r.status, r.body)
	}
}

// TestRateLimitPerAddress: an address gets RatePerAddress requests a
// minute over all codes, bad requests included (they are counted before
// the body is read); another address is not affected.
func TestRateLimitPerAddress(t *testing.T) {
	e := newEnv(t, 1000, 4)
	for i := range 3 {
		e.issue(t, fmt.Sprintf("PL%d", i), 1, false)
	}
	e.issue(t, "PL9", 1, false)
	a, b := fromAddress("127.0.0.1"), fromAddress("127.0.0.2")
	for i := range 3 {
		if r := do(t, a, http.MethodPost, e.url+licenseapi.PathActivate, "application/json", []byte(body(fmt.Sprintf("PL%d", i), fingerprint))); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if r := do(t, a, http.MethodPost, e.url+licenseapi.PathCheck, "application/json", []byte(`{`)); r.status != http.StatusBadRequest {
		t.Fatalf("bad request: %d %s", r.status, r.body)
	}
	r := do(t, a, http.MethodPost, e.url+licenseapi.PathActivate, "application/json", []byte(body("PL9", fingerprint)))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("fifth request from one address: %d %s", r.status, r.body)
	}
	if code, msg := errorAnswer(t, r); code != "rate_limited" || !strings.Contains(msg, "more than 4 requests a minute from this address") {
		t.Errorf("answer %s: %s", code, msg)
	}
	if got := r.header.Get("Retry-After"); got != "15" {
		t.Errorf("Retry-After %q, want 15", got)
	}
	if r := do(t, b, http.MethodPost, e.url+licenseapi.PathActivate, "application/json", []byte(body("PL9", fingerprint))); r.status != http.StatusOK {
		t.Errorf("another address: %d %s", r.status, r.body)
	}
	if got := e.calls.N(); got != 4 {
		t.Errorf("%d calls reached the domain, want 4", got)
	}
	// The keys are not rate limited: a client fetches them after each answer.
	for range 6 {
		if r := do(t, a, http.MethodGet, e.url+licenseapi.PathKeys, "", nil); r.status != http.StatusOK {
			t.Fatalf("keys from a limited address: %d", r.status)
		}
	}
}

// TestNewRefusesIncompleteConfig: each required setting is checked.
func TestNewRefusesIncompleteConfig(t *testing.T) {
	var l licenseapi.Licenses = fixedLicenses{}
	var tok licenseapi.Tokens = nopTokens{}
	for _, tc := range []struct {
		name string
		cfg  licenseapi.Config
		want string
	}{
		{"no licenses", licenseapi.Config{Tokens: tok, RatePerCode: 1, RatePerAddress: 1}, "Licenses"},
		{"no tokens", licenseapi.Config{Licenses: l, RatePerCode: 1, RatePerAddress: 1}, "Tokens"},
		{"no code rate", licenseapi.Config{Licenses: l, Tokens: tok, RatePerAddress: 1}, "RatePerCode"},
		{"no address rate", licenseapi.Config{Licenses: l, Tokens: tok, RatePerCode: 1}, "RatePerAddress"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := licenseapi.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// fixedLicenses answers every code active, for the tests of what
// follows the license domain's answer.
type fixedLicenses struct{}

func (fixedLicenses) Activate(_ context.Context, code, fp string) (license.Verdict, error) {
	return license.Verdict{License: code, Fingerprint: fp, Status: "active", ValidUntil: time.Now().Add(time.Hour)}, nil
}

func (f fixedLicenses) Check(ctx context.Context, code, fp string) (license.Verdict, error) {
	return f.Activate(ctx, code, fp)
}

type nopTokens struct{}

func (nopTokens) Sign(context.Context, license.Verdict) (string, error) { return "", nil }
func (nopTokens) JWKS(context.Context) ([]byte, error)                  { return nil, nil }

// failingTokens cannot sign or read its keys, as when the database is down.
type failingTokens struct{}

func (failingTokens) Sign(context.Context, license.Verdict) (string, error) {
	return "", errors.New("licensetoken: read keys: postgres: connection refused")
}
func (failingTokens) JWKS(context.Context) ([]byte, error) {
	return nil, errors.New("licensetoken: read keys: postgres: connection refused")
}

// TestTokenFailures: a verdict that cannot be signed is a 500 (no answer
// without a token), keys that cannot be read a 503 with Retry-After;
// neither shows the cause.
func TestTokenFailures(t *testing.T) {
	h, err := licenseapi.New(licenseapi.Config{Licenses: fixedLicenses{}, Tokens: failingTokens{},
		RatePerCode: 10, RatePerAddress: 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		method, path     string
		status           int
		code, retryAfter string
	}{
		{http.MethodPost, licenseapi.PathActivate, 500, "internal", ""},
		{http.MethodGet, licenseapi.PathKeys, 503, "unavailable", "60"},
	} {
		r := do(t, nil, tc.method, srv.URL+tc.path, "application/json", []byte(body("PL1", fingerprint)))
		if r.status != tc.status {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, r.status, r.body)
		}
		code, msg := errorAnswer(t, r)
		if code != tc.code || r.header.Get("Retry-After") != tc.retryAfter || strings.Contains(msg, "postgres") {
			t.Errorf("%s %s: %s %q, Retry-After %q", tc.method, tc.path, code, msg, r.header.Get("Retry-After"))
		}
	}
}
