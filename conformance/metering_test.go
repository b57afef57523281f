package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
	"github.com/koobridge/koobridge/store"
)

const testUsageToken = "conformance-usage-token-0123456789"

// meteringIDs are the metering profile's cases, in run order.
var meteringIDs = []string{
	"metering/purchase", "metering/report", "metering/repeat", "metering/conflict", "metering/before-start",
	"metering/future", "metering/precision", "metering/unknown-instance", "metering/no-token",
	"metering/pushed", "metering/once", "metering/totals", "metering/query",
}

// koobridge is a real koobridge server in-process (isv.Server on SQLite)
// with its usage API, pushing every 100 ms to openAPI.
type koobridge struct {
	target, usageURL string
}

func startKoobridge(t *testing.T, openAPI string) koobridge {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "koobridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := isv.New(isv.Config{
		Keys:        isv.Keys{Basic: []string{testKey}},
		DB:          db,
		DataKey:     bytes.Repeat([]byte{7}, isv.DataKeySize),
		OpenAPI:     isv.OpenAPI{URL: openAPI, AK: testAK, SK: testSK},
		Provisioner: provision.NewDemo(""),
		Usage:       isv.UsageConfig{Tokens: []string{testUsageToken}, PushInterval: 100 * time.Millisecond},
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("isv.New: %v", err)
	}
	mux := http.NewServeMux()
	for _, path := range srv.Paths() {
		mux.Handle(path, srv.Handler())
	}
	mux.Handle(isv.UsagePath, srv.UsageHandler())
	web := httptest.NewServer(mux)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		web.Close()
		stop()
		<-done
		_ = db.Close()
	})
	return koobridge{target: web.URL + isv.DefaultProducePath, usageURL: web.URL + isv.UsagePath}
}

// runMetering runs the metering profile against a koobridge server whose
// Open API calls go through openAPI(suite's Open API URL) and whose usage
// API is reached through usage(koobridge's usage API URL); nil means
// directly.
func runMetering(t *testing.T, openAPI func(string) string, usage func(string) string, wait time.Duration) *Report {
	t.Helper()
	ln := listen(t)
	suite := "http://" + ln.Addr().String()
	if openAPI != nil {
		suite = openAPI(suite)
	}
	k := startKoobridge(t, suite)
	usageURL := k.usageURL
	if usage != nil {
		usageURL = usage(usageURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{Target: k.target, Key: testKey, AK: testAK, SK: testSK, OpenAPI: ln, Profile: ProfileMetering,
		UsageURL: usageURL, UsageToken: testUsageToken, UsageWait: wait})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// The metering profile passes against koobridge itself.
func TestMeteringAgainstKoobridge(t *testing.T) {
	r := runMetering(t, nil, nil, time.Minute)
	if got, want := caseIDs(r), append(slices.Clone(meteringIDs), "edge/deadline"); !slices.Equal(got, want) {
		t.Fatalf("case IDs:\n got %q\nwant %q", got, want)
	}
	if !r.Passed() {
		t.Fatalf("koobridge failed the metering profile:%s", describe(r))
	}
	for _, c := range r.Cases {
		if c.Title == "" || c.Spec == "" {
			t.Errorf("%s: no title or spec", c.ID)
		}
	}
	if c, _ := r.Case("metering/pushed"); !strings.Contains(c.Note, "6 hours pushed") {
		t.Errorf("metering/pushed note %q, want the 6 hours (2 instances × 3) counted", c.Note)
	}
	if c, _ := r.Case("metering/report"); len(c.Exchanges) != 2 || c.Exchanges[0].Response == nil || c.Exchanges[0].Response.Status != http.StatusOK {
		t.Errorf("metering/report exchanges %+v, want the two batches answered 200", c.Exchanges)
	}
	var out bytes.Buffer
	if err := r.WriteTextVerbose(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), testUsageToken) {
		t.Error("the report shows the usage token")
	}
}

// A seller whose pushes go wrong fails the case for that fault, and only
// the cases it touches.
func TestMeteringFaultsNamed(t *testing.T) {
	tests := []struct {
		name    string
		openAPI func(t *testing.T) func(*http.Request, []byte) [][]byte // rewrites each usage push into the pushes sent on
		usage   func(t *testing.T) func(*http.Request, []byte) []byte   // rewrites the usage API's answer
		wait    time.Duration
		failed  []string
		message string
	}{
		{
			name: "each hour pushed again under another metering_sn, an hour apart",
			openAPI: func(t *testing.T) func(*http.Request, []byte) [][]byte {
				return func(r *http.Request, body []byte) [][]byte {
					return [][]byte{body, editRecords(t, body, func(rec map[string]any) {
						rec["metering_sn"] = "other-" + rec["metering_sn"].(string)[:20]
						begin, _ := protocol.ParseUsageTime(rec["begin_time"].(string))
						rec["end_time"] = protocol.FormatUsageTime(begin.Add(59 * time.Minute))
					})}
				}
			},
			failed:  []string{"metering/once", "metering/totals"},
			message: "was kept beside the hours with usage",
		},
		{
			name: "a retry under another metering_sn",
			openAPI: func(t *testing.T) func(*http.Request, []byte) [][]byte {
				return func(r *http.Request, body []byte) [][]byte {
					return [][]byte{body, editRecords(t, body, func(rec map[string]any) { rec["metering_sn"] = "retry-" + rec["metering_sn"].(string)[:20] })}
				}
			},
			failed:  []string{"metering/once"},
			message: "every push of a period must carry the same one",
		},
		{
			name: "values pushed off by 0.0001",
			openAPI: func(t *testing.T) func(*http.Request, []byte) [][]byte {
				return func(r *http.Request, body []byte) [][]byte {
					return [][]byte{editRecords(t, body, func(rec map[string]any) {
						u, _ := parseUnits(rec["usage_value"].(string))
						rec["usage_value"] = formatUnits(u + 1)
					})}
				}
			},
			failed:  []string{"metering/totals"},
			message: "billed",
		},
		{
			name: "pushes lost",
			openAPI: func(t *testing.T) func(*http.Request, []byte) [][]byte {
				return func(*http.Request, []byte) [][]byte { return nil }
			},
			wait:    2 * time.Second,
			failed:  []string{"metering/pushed", "metering/totals"},
			message: "not pushed within 2s of the report",
		},
		{
			name: "the usage API takes everything",
			usage: func(t *testing.T) func(*http.Request, []byte) []byte {
				return func(_ *http.Request, body []byte) []byte {
					return bytes.ReplaceAll(bytes.ReplaceAll(body, []byte(`"rejected"`), []byte(`"accepted"`)), []byte(`"duplicate"`), []byte(`"accepted"`))
				}
			},
			failed:  []string{"metering/repeat", "metering/conflict", "metering/before-start", "metering/future", "metering/precision", "metering/unknown-instance"},
			message: "want",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var openAPI, usage func(string) string
			if tt.openAPI != nil {
				openAPI = func(suite string) string { return pushProxy(t, suite, tt.openAPI(t)) }
			}
			if tt.usage != nil {
				usage = func(u string) string { return answerProxy(t, u, tt.usage(t)) }
			}
			wait := tt.wait
			if wait == 0 {
				wait = 20 * time.Second
			}
			r := runMetering(t, openAPI, usage, wait)
			var failed []string
			for _, c := range r.Failed() {
				failed = append(failed, c.ID)
			}
			if !slices.Equal(failed, tt.failed) {
				t.Fatalf("failed %q, want %q:%s", failed, tt.failed, describe(r))
			}
			c, _ := r.Case(tt.failed[0])
			if !slices.ContainsFunc(c.Failures, func(f Failure) bool { return strings.Contains(f.Message, tt.message) && f.Spec != "" }) {
				t.Errorf("%s failures %+v, want one saying %q", c.ID, c.Failures, tt.message)
			}
		})
	}
}

// pushProxy serves the Open API at a new URL, passing every request on to
// suite but each usage push through edit, which returns the pushes to
// send instead (re-signed with the test key), in order; the seller gets
// the first one's answer, or a 500 when there is none.
func pushProxy(t *testing.T, suite string, edit func(*http.Request, []byte) [][]byte) string {
	t.Helper()
	target, _ := url.Parse(suite)
	pass := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex // one push at a time: the edits are replayed in order
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mockapi.UsagePath {
			pass.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		pushes := edit(r, body)
		if len(pushes) == 0 {
			http.Error(w, `{"error_code":"MKT.0999","error_msg":"lost"}`, http.StatusInternalServerError)
			return
		}
		for i, b := range pushes {
			ts, nonce := protocol.FormatMillis(time.Now()), "proxy-nonce"
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, suite+mockapi.UsagePath, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("ts", ts)
			req.Header.Set("nonce", nonce)
			req.Header.Set("signature", sign.UsageSignature(testKey, ts, nonce, b))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if i == 0 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(resp.StatusCode)
				_, _ = w.Write(answer)
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// answerProxy serves the usage API at a new URL, passing requests on to
// u and rewriting the answers with edit.
func answerProxy(t *testing.T, u string, edit func(*http.Request, []byte) []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, u, r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(edit(r, body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// editRecords applies edit to every record of a usage push body and
// returns it with its keys in natural order.
func editRecords(t *testing.T, body []byte, edit func(rec map[string]any)) []byte {
	t.Helper()
	var push struct {
		Records []map[string]any `json:"usage_records"`
	}
	if err := json.Unmarshal(body, &push); err != nil {
		t.Errorf("a usage push that is not JSON: %v", err)
		return body
	}
	for _, rec := range push.Records {
		edit(rec)
	}
	out, err := json.Marshal(map[string]any{"usage_records": push.Records}) // maps marshal with sorted keys
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The metering profile's settings are checked before anything runs.
func TestMeteringConfig(t *testing.T) {
	base := Config{Target: "http://127.0.0.1:1/produce", Key: testKey, AK: testAK, SK: testSK, Profile: ProfileMetering,
		UsageURL: "http://127.0.0.1:1/api/v1/usage", UsageToken: testUsageToken}
	if err := base.Validate(); err != nil {
		t.Fatalf("a good metering config: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no usage URL", func(c *Config) { c.UsageURL = "" }, "usage API URL"},
		{"usage URL not http", func(c *Config) { c.UsageURL = "ftp://x/usage" }, `"ftp://x/usage" is not an http or https URL`},
		{"no token", func(c *Config) { c.UsageToken = "" }, "bearer token"},
		{"negative wait", func(c *Config) { c.UsageWait = -time.Second }, "UsageWait -1s is negative"},
	}
	for _, tt := range tests {
		c := base
		tt.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
	// Without the metering profile the usage settings are not needed, and
	// "all" does not include it.
	other := Config{Target: base.Target, Key: testKey, AK: testAK, SK: testSK, Profile: ProfileAll}
	if err := other.Validate(); err != nil {
		t.Errorf("profile all without usage settings: %v", err)
	}
	if names, _ := other.profileNames(); slices.ContainsFunc(names, func(p profileDef) bool { return p.name == ProfileMetering }) {
		t.Error("profile all includes metering")
	}
	if !slices.Contains(Profiles(), ProfileMetering) {
		t.Errorf("Profiles() = %v, want metering among them", Profiles())
	}
}

// Metering runs first, before profiles that move the emulated clock; the
// others keep their order.
func TestMeteringRunsFirst(t *testing.T) {
	c := Config{Profile: "period,order,metering"}
	names, err := c.profileNames()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range runOrder(names) {
		got = append(got, n.name)
	}
	if want := []string{ProfileMetering, ProfilePeriod, ProfileOrder}; !slices.Equal(got, want) {
		t.Errorf("run order %q, want %q", got, want)
	}
}
