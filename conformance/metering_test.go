package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator"
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
	"metering/pushed", "metering/on-time", "metering/not-early", "metering/retry", "metering/once", "metering/totals", "metering/query",
}

// koobridge is a real koobridge server in-process (isv.Server on SQLite)
// with its usage API, pushing every 100 ms to openAPI a second after a
// period ends.
type koobridge struct {
	target, usageURL string
}

// startKoobridge starts koobridge; a non-zero timeout replaces its Open
// API client's (10 s).
func startKoobridge(t *testing.T, openAPI string, timeout time.Duration) koobridge {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "koobridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	var client *http.Client
	if timeout > 0 {
		client = &http.Client{Timeout: timeout}
	}
	srv, err := isv.New(isv.Config{
		Keys:        isv.Keys{Basic: []string{testKey}},
		DB:          db,
		DataKey:     bytes.Repeat([]byte{7}, isv.DataKeySize),
		OpenAPI:     isv.OpenAPI{URL: openAPI, AK: testAK, SK: testSK, HTTPClient: client},
		Provisioner: provision.NewDemo(""),
		// Settle 1 s: run in the first minute of an hour, the default
		// minute would hold the last hour's push beyond the tests' wait.
		Usage:  isv.UsageConfig{Tokens: []string{testUsageToken}, PushInterval: 100 * time.Millisecond, Settle: time.Second},
		Logger: slog.New(slog.DiscardHandler),
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

// meteringRun says how to run the metering profile against koobridge.
type meteringRun struct {
	// openAPI takes the suite's Open API URL and returns the one
	// koobridge pushes to, usage koobridge's usage API URL and returns
	// the one the suite reports to; nil means directly.
	openAPI, usage func(string) string
	wait, quiet    time.Duration // Config.UsageWait, Config.UsageQuiet
	timeout        time.Duration // koobridge's Open API client timeout; zero: its own
}

// runMetering runs the metering profile against a koobridge server.
func runMetering(t *testing.T, m meteringRun) *Report {
	t.Helper()
	ln := listen(t)
	suite := "http://" + ln.Addr().String()
	if m.openAPI != nil {
		suite = m.openAPI(suite)
	}
	k := startKoobridge(t, suite, m.timeout)
	usageURL := k.usageURL
	if m.usage != nil {
		usageURL = m.usage(usageURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{Target: k.target, Key: testKey, AK: testAK, SK: testSK, OpenAPI: ln, Profile: ProfileMetering,
		UsageURL: usageURL, UsageToken: testUsageToken, UsageWait: m.wait, UsageQuiet: m.quiet})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return r
}

// The metering profile passes against koobridge itself.
func TestMeteringAgainstKoobridge(t *testing.T) {
	r := runMetering(t, meteringRun{wait: time.Minute})
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
	for id, want := range map[string]string{
		"metering/pushed":    "6 hours pushed", // 2 instances × 3
		"metering/on-time":   "6 hours kept, each within",
		"metering/not-early": "none before its period's end",
		"metering/retry":     "held unanswered, the seller gave up after",
		"metering/once":      "one metering_sn per hour",
	} {
		if c, _ := r.Case(id); !strings.Contains(c.Note, want) {
			t.Errorf("%s note %q, want %q", id, c.Note, want)
		}
	}
	// koobridge's Open API client gives up after 10 s.
	if c, _ := r.Case("metering/retry"); !gaveUpAfter(c.Note, 10*time.Second) {
		t.Errorf("metering/retry note %q, want the seller giving up after about 10s", c.Note)
	}
	// The held push was kept, and its retry ignored as a duplicate.
	if c, _ := r.Case("metering/once"); strings.Contains(c.Note, " 0 records received again") {
		t.Errorf("metering/once note %q: the held push's retry was not a duplicate", c.Note)
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
// the cases it touches. The suite holds the first push it keeps, so every
// seller here retries one push: koobridge gives up after 3 s here, and
// the pushes are judged after 5 s without one.
func TestMeteringFaultsNamed(t *testing.T) {
	tests := []struct {
		name    string
		openAPI func(t *testing.T) func(*http.Request, []byte) []proxyPush // rewrites each usage push into the pushes sent on
		usage   func(t *testing.T) func(*http.Request, []byte) []byte      // rewrites the usage API's answer
		wait    time.Duration
		failed  []string
		message string // in a failure of failed[0]
	}{
		{
			name: "each hour pushed again under another metering_sn, an hour apart",
			openAPI: func(t *testing.T) func(*http.Request, []byte) []proxyPush {
				return func(r *http.Request, body []byte) []proxyPush {
					return []proxyPush{{body: body}, {body: editRecords(t, body, func(rec map[string]any) {
						rec["metering_sn"] = "other-" + rec["metering_sn"].(string)[:20]
						begin, _ := protocol.ParseUsageTime(rec["begin_time"].(string))
						rec["end_time"] = protocol.FormatUsageTime(begin.Add(59 * time.Minute))
					})}}
				}
			},
			failed:  []string{"metering/once", "metering/totals"},
			message: "was kept beside the hours with usage",
		},
		{
			// The reviewer's seller: the old profile judged as soon as
			// every hour had a kept record, before the second pushes came.
			name: "each hour pushed again 3 s later under another metering_sn",
			openAPI: func(t *testing.T) func(*http.Request, []byte) []proxyPush {
				return func(r *http.Request, body []byte) []proxyPush {
					return []proxyPush{{body: body}, {after: 3 * time.Second, body: editRecords(t, body, func(rec map[string]any) {
						rec["metering_sn"] = "late-" + rec["metering_sn"].(string)[:20]
						begin, _ := protocol.ParseUsageTime(rec["begin_time"].(string))
						rec["end_time"] = protocol.FormatUsageTime(begin.Add(59 * time.Minute))
					})}}
				}
			},
			failed:  []string{"metering/once", "metering/totals"},
			message: "pushed under 2 metering_sn",
		},
		{
			name: "a second push of each period under another metering_sn",
			openAPI: func(t *testing.T) func(*http.Request, []byte) []proxyPush {
				return func(r *http.Request, body []byte) []proxyPush {
					return []proxyPush{{body: body}, {body: editRecords(t, body, func(rec map[string]any) { rec["metering_sn"] = "retry-" + rec["metering_sn"].(string)[:20] })}}
				}
			},
			failed:  []string{"metering/once"},
			message: "every push of a period, retries included, must carry the same one",
		},
		{
			// The AWS sample's bug: the held push's retry is ignored as a
			// duplicate period, so only the metering_sn gives it away.
			name: "a fresh metering_sn on every attempt",
			openAPI: func(t *testing.T) func(*http.Request, []byte) []proxyPush {
				attempt := 0
				return func(r *http.Request, body []byte) []proxyPush {
					attempt++
					return []proxyPush{{body: editRecords(t, body, func(rec map[string]any) {
						rec["metering_sn"] = fmt.Sprintf("attempt%d-%s", attempt, rec["metering_sn"].(string)[:30])
					})}}
				}
			},
			failed:  []string{"metering/once"},
			message: "every push of a period, retries included, must carry the same one",
		},
		{
			name: "the open hour pushed early",
			openAPI: func(t *testing.T) func(*http.Request, []byte) []proxyPush {
				return func(r *http.Request, body []byte) []proxyPush {
					return []proxyPush{{body: body}, {body: openHour(t, body)}}
				}
			},
			failed:  []string{"metering/not-early", "metering/once", "metering/totals"},
			message: "before its period ends",
		},
		{
			// The proxy answers success itself when the suite keeps a
			// push and does not answer: koobridge never learns it was
			// lost, and does not send it again.
			name: "a lost answer taken for success",
			openAPI: func(t *testing.T) func(*http.Request, []byte) []proxyPush {
				return func(r *http.Request, body []byte) []proxyPush {
					return []proxyPush{{body: body, patience: time.Second}}
				}
			},
			wait:    15 * time.Second,
			failed:  []string{"metering/retry"},
			message: "was not sent again within the wait",
		},
		{
			name: "values pushed off by 0.0001",
			openAPI: func(t *testing.T) func(*http.Request, []byte) []proxyPush {
				return func(r *http.Request, body []byte) []proxyPush {
					return []proxyPush{{body: editRecords(t, body, func(rec map[string]any) {
						u, _ := parseUnits(rec["usage_value"].(string))
						rec["usage_value"] = formatUnits(u + 1)
					})}}
				}
			},
			failed:  []string{"metering/totals"},
			message: "billed",
		},
		{
			name: "pushes lost",
			openAPI: func(t *testing.T) func(*http.Request, []byte) []proxyPush {
				return func(*http.Request, []byte) []proxyPush { return nil }
			},
			wait:    2 * time.Second,
			failed:  []string{"metering/pushed", "metering/retry", "metering/totals"},
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
			t.Parallel() // each waits on its pushes, mostly idle
			m := meteringRun{wait: tt.wait, quiet: 5 * time.Second, timeout: 3 * time.Second}
			if tt.openAPI != nil {
				m.openAPI = func(suite string) string { return pushProxy(t, suite, tt.openAPI(t)) }
			}
			if tt.usage != nil {
				m.usage = func(u string) string { return answerProxy(t, u, tt.usage(t)) }
			}
			if m.wait == 0 {
				m.wait = 45 * time.Second // far more than a held push, its retry and the quiet window take
			}
			r := runMetering(t, m)
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

// openHour returns a push of the hour open now (ending at least a minute
// from now) for each instance of body's records.
func openHour(t *testing.T, body []byte) []byte {
	t.Helper()
	begin := time.Now().UTC().Add(time.Minute).Truncate(time.Hour)
	seen := map[string]bool{}
	var out []map[string]any
	editRecords(t, body, func(rec map[string]any) {
		id := rec["instance_id"].(string)
		if seen[id] {
			return
		}
		seen[id] = true
		early := maps.Clone(rec)
		early["begin_time"] = protocol.FormatUsageTime(begin)
		early["end_time"] = protocol.FormatUsageTime(begin.Add(time.Hour))
		early["record_time"] = protocol.FormatUsageTime(time.Now())
		early["usage_value"] = "1"
		early["metering_sn"] = "early-" + rec["metering_sn"].(string)[:20]
		out = append(out, early)
	})
	b, err := json.Marshal(map[string]any{"usage_records": out})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proxyPush is a push a proxied seller sends in place of one of its own.
type proxyPush struct {
	body []byte
	// after, when set, sends the push that long after the seller's push
	// was handled, on its own: the seller does not see its answer.
	after time.Duration
	// patience, when set, bounds the wait for the suite's answer: after
	// it the seller is answered MKT.0000 as if the push had gone through.
	patience time.Duration
}

// pushProxy serves the Open API at a new URL, passing every request on to
// suite but each usage push through edit, which returns the pushes to
// send instead (re-signed with the test key), in order; the seller gets
// the first one's answer, or a 500 when there is none.
func pushProxy(t *testing.T, suite string, edit func(*http.Request, []byte) []proxyPush) string {
	t.Helper()
	target, _ := url.Parse(suite)
	pass := httputil.NewSingleHostReverseProxy(target)
	var (
		mu    sync.Mutex     // the edits run one at a time
		later sync.WaitGroup // the delayed pushes
	)
	send := func(ctx context.Context, b []byte) (int, []byte, error) {
		ts, nonce := protocol.FormatMillis(time.Now()), "proxy-nonce"
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, suite+mockapi.UsagePath, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("ts", ts)
		req.Header.Set("nonce", nonce)
		req.Header.Set("signature", sign.UsageSignature(testKey, ts, nonce, b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		answer, err := io.ReadAll(resp.Body)
		return resp.StatusCode, answer, err
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mockapi.UsagePath {
			pass.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		pushes := edit(r, body)
		mu.Unlock()
		status, answer := http.StatusInternalServerError, []byte(`{"error_code":"MKT.0999","error_msg":"lost"}`)
		answered := false
		for _, p := range pushes {
			if p.after > 0 {
				later.Add(1)
				go func() {
					defer later.Done()
					time.Sleep(p.after)
					ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
					defer cancel()
					_, _, _ = send(ctx, p.body)
				}()
				continue
			}
			ctx, cancel := r.Context(), context.CancelFunc(func() {})
			if p.patience > 0 {
				ctx, cancel = context.WithTimeout(ctx, p.patience)
			}
			s, a, err := send(ctx, p.body)
			cancel()
			switch {
			case answered:
			case err != nil && p.patience > 0 && r.Context().Err() == nil:
				status, answer, answered = http.StatusOK, []byte(`{"error_code":"MKT.0000","error_msg":"success"}`), true
			case err != nil:
				status, answer, answered = http.StatusBadGateway, []byte(err.Error()), true
			default:
				status, answer, answered = s, a, true
			}
			if err != nil {
				break // the seller's attempt failed: the rest of it is not sent
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(func() {
		later.Wait()
		srv.Close()
	})
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
		{"negative quiet window", func(c *Config) { c.UsageQuiet = -time.Second }, "UsageQuiet -1s is negative"},
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

// metering/on-time bounds each hour by the smaller of the wait and
// KooGallery's 15 minutes to its next collection, from its own report.
func TestMeteringOnTimeBound(t *testing.T) {
	reported := time.Date(2026, 5, 1, 10, 20, 0, 0, time.UTC)
	begin := time.Date(2026, 5, 1, 7, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		wait   time.Duration
		after  time.Duration // the kept record's arrival after the report
		failed string        // in the failure; "" for a pass
	}{
		{"soon", 5 * time.Minute, time.Minute, ""},
		{"at the wait", 5 * time.Minute, 5 * time.Minute, ""},
		{"after a short wait", 5 * time.Minute, 6 * time.Minute, "pushed 6m0s after its usage was reported, later than 5m0s"},
		{"within 15 min of a long wait", 20 * time.Minute, 14 * time.Minute, ""},
		{"after 15 min of a long wait", 20 * time.Minute, 16 * time.Minute, "pushed 16m0s after its usage was reported, later than 15m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := hourKey{"inst-1", begin.Unix()}
			f := &pushFacts{
				subs: []*meterSub{{instanceID: k.instance}}, want: map[hourKey]int64{k: 10000}, reported: map[hourKey]time.Time{k: reported},
				wait: tt.wait, billed: map[string]emulator.BilledInstance{k.instance: {InstanceID: k.instance, Periods: []emulator.BilledPeriod{
					{Begin: begin, End: begin.Add(time.Hour), Value: 10000, Received: reported.Add(tt.after)},
				}}},
			}
			cr := &caseRun{}
			f.judgeOnTime(cr)
			switch {
			case tt.failed == "" && len(cr.c.Failures) > 0:
				t.Errorf("failures %+v, want none", cr.c.Failures)
			case tt.failed == "" && !strings.Contains(cr.c.Note, "1 hours kept"):
				t.Errorf("note %q, want the hour counted", cr.c.Note)
			case tt.failed != "" && (len(cr.c.Failures) != 1 || !strings.Contains(cr.c.Failures[0].Message, tt.failed) || cr.c.Failures[0].Rule != RuleUsageOnTime):
				t.Errorf("failures %+v, want one %s saying %q", cr.c.Failures, RuleUsageOnTime, tt.failed)
			}
		})
	}
}

// gaveUpAfter reports whether a metering/retry note says the seller gave
// up on the held push within a second of d (its client's timeout).
func gaveUpAfter(note string, d time.Duration) bool {
	m := regexp.MustCompile(`gave up after ([0-9.]+m?s)`).FindStringSubmatch(note)
	if m == nil {
		return false
	}
	got, err := time.ParseDuration(m[1])
	return err == nil && got > d-time.Second && got < d+time.Second
}
