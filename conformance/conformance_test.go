package conformance

import (
	"bytes"
	"context"
	"encoding/xml"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
)

const (
	testKey        = "conformance-test-key-0123456789"
	testGeneralKey = "conformance-general-key-9876543210"
	testKitKey     = "conformance-kit-key-1357924680"
	testAK         = "CONFORMANCEAK0123"
	testSK         = "conformance-sk-0123456789abcdef"
)

// closeRecorder is a listener that records whether it was closed.
type closeRecorder struct {
	net.Listener
	closed atomic.Bool
}

func (l *closeRecorder) Close() error {
	l.closed.Store(true)
	return l.Listener.Close()
}

func listen(t *testing.T) *closeRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return &closeRecorder{Listener: ln}
}

// runAgainst runs the suite against a testseller with faults f, a
// general and a Kit key of its own, and its RSA public key.
func runAgainst(t *testing.T, f testseller.Faults, cfg Config) *Report {
	t.Helper()
	cfg.GeneralKey, cfg.KitKey = testGeneralKey, testKitKey
	s := testseller.NewWithKeys(testseller.Keys{Basic: testKey, General: testGeneralKey, Kit: testKitKey}, f)
	if cfg.RSAPublicKey == nil {
		cfg.RSAPublicKey = s.RSAPublicKey()
	}
	return runHandler(t, s, cfg)
}

// runHandler runs the suite against seller h, served on /produce; a
// cfg.Target, cfg.OrderNotifyTarget or cfg.KitTarget, if set, names the
// seller's host:port as "{host}".
func runHandler(t *testing.T, h http.Handler, cfg Config) *Report {
	t.Helper()
	seller := httptest.NewServer(h)
	t.Cleanup(seller.Close)
	if cfg.Target == "" {
		cfg.Target = seller.URL + "/produce"
	}
	host := strings.TrimPrefix(seller.URL, "http://")
	cfg.Target = strings.ReplaceAll(cfg.Target, "{host}", host)
	cfg.OrderNotifyTarget = strings.ReplaceAll(cfg.OrderNotifyTarget, "{host}", host)
	cfg.KitTarget = strings.ReplaceAll(cfg.KitTarget, "{host}", host)
	cfg.Key, cfg.AK, cfg.SK = testKey, testAK, testSK
	ln := listen(t)
	cfg.OpenAPI = ln
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !ln.closed.Load() {
		t.Error("Run did not close the Open API listener")
	}
	return r
}

// wantIDs are the case IDs of profile "all", in run order.
var wantIDs = []string{
	"period/purchase", "period/query", "period/trial", "period/trial-to-formal", "period/renewal",
	"period/unsubscribe-renewal", "period/renewal-change", "period/upgrade", "period/expire",
	"period/unfreeze", "period/release", "period/unsubscribe", "period/debug-purchase",
	"onetime/purchase", "onetime/query", "onetime/release", "onetime/debug-purchase",
	"ondemand/purchase", "ondemand/query", "ondemand/arrears-freeze", "ondemand/arrears-unfreeze",
	"ondemand/release", "ondemand/debug-purchase",
	"ondemand-pkg/purchase", "ondemand-pkg/query", "ondemand-pkg/arrears-freeze",
	"ondemand-pkg/arrears-unfreeze", "ondemand-pkg/release", "ondemand-pkg/debug-purchase",
	"order/notify", "order/repeat", "order/concurrent", "order/missing-test-flag", "order/wrong-key",
	"order/missing-order-line",
	"edge/repeat-new-instance", "edge/concurrent-new-instance", "edge/release-twice",
	"edge/unknown-instance", "edge/wrong-signature", "edge/missing-signature", "edge/stale-timestamp",
	"edge/future-timestamp", "edge/missing-timestamp", "edge/replayed-nonce", "edge/missing-nonce",
	"edge/unknown-activity", "edge/missing-field", "edge/overlong-field", "edge/deadline",
}

func caseIDs(r *Report) []string {
	var ids []string
	for _, c := range r.Cases {
		ids = append(ids, c.ID)
	}
	return ids
}

// describe sums up the failed cases for a test failure message.
func describe(r *Report) string {
	var b strings.Builder
	for _, c := range r.Failed() {
		b.WriteString("\n" + c.ID + ":")
		for _, f := range c.Failures {
			b.WriteString("\n    " + f.Rule + ": " + f.Message)
		}
	}
	return b.String()
}

func TestCorrectSellerPasses(t *testing.T) {
	r := runAgainst(t, testseller.Faults{}, Config{Profile: ProfileAll})
	if got := caseIDs(r); !slices.Equal(got, wantIDs) {
		t.Fatalf("case IDs:\n got %q\nwant %q", got, wantIDs)
	}
	if !r.Passed() {
		t.Fatalf("a correct seller failed:%s", describe(r))
	}
	for _, c := range r.Cases {
		if c.Spec == "" || c.Title == "" {
			t.Errorf("%s: no title or spec section", c.ID)
		}
		if c.ID != "edge/deadline" && len(c.Exchanges) == 0 {
			t.Errorf("%s: passed without making a call", c.ID)
		}
	}
	if c, _ := r.Case("edge/deadline"); !strings.Contains(c.Note, "slowest answer") {
		t.Errorf("edge/deadline note %q does not report the slowest answer", c.Note)
	}
}

// TestAsyncSellerPasses: answering newInstance with 000004 and
// provisioning behind queryInstance is correct (saas-v2.md §6.4).
func TestAsyncSellerPasses(t *testing.T) {
	r := runAgainst(t, testseller.Faults{Async: true}, Config{Profile: ProfileAll})
	if !r.Passed() {
		t.Fatalf("an asynchronous seller failed:%s", describe(r))
	}
	c, _ := r.Case("period/purchase")
	polls := 0
	for _, x := range c.Exchanges {
		if x.Interface == "queryInstance" {
			polls++
		}
	}
	if polls < 2 {
		t.Errorf("period/purchase polled queryInstance %d times; the seller answers 000004 twice first", polls)
	}
}

func TestSingleProfile(t *testing.T) {
	r := runAgainst(t, testseller.Faults{}, Config{Profile: ProfileOneTime})
	want := []string{"onetime/purchase", "onetime/query", "onetime/release", "onetime/debug-purchase"}
	want = append(want, wantIDs[slices.Index(wantIDs, "edge/repeat-new-instance"):]...)
	if got := caseIDs(r); !slices.Equal(got, want) {
		t.Fatalf("case IDs:\n got %q\nwant %q", got, want)
	}
	if !r.Passed() {
		t.Fatalf("a correct seller failed:%s", describe(r))
	}
}

// TestFaultsNamed runs the suite against sellers with one fault each: the
// report fails exactly the cases that check that behaviour, with the rule
// that names it, and passes the rest.
func TestFaultsNamed(t *testing.T) {
	tests := []struct {
		name   string
		faults testseller.Faults
		want   map[string]string // failed case → rule it must name
	}{
		{"SkipSignature", testseller.Faults{SkipSignature: true}, map[string]string{
			"edge/wrong-signature":   RuleSignature,
			"edge/missing-signature": RuleSignature,
			"edge/stale-timestamp":   RuleTimestamp,
			"edge/future-timestamp":  RuleTimestamp,
			"edge/missing-timestamp": RuleTimestamp,
			"edge/replayed-nonce":    RuleNonce,
			"edge/missing-nonce":     RuleNonce,
			"order/wrong-key":        RuleGeneralKey,
		}},
		{"NewInstanceEveryCall", testseller.Faults{NewInstanceEveryCall: true}, map[string]string{
			"edge/repeat-new-instance":     RuleIdempotentNewInstance,
			"edge/concurrent-new-instance": RuleIdempotentNewInstance,
		}},
		{"ReleaseTwiceFails", testseller.Faults{ReleaseTwiceFails: true}, map[string]string{
			"edge/release-twice": RuleIdempotentRelease,
		}},
		{"UnknownInstanceOK", testseller.Faults{UnknownInstanceOK: true}, map[string]string{
			"edge/unknown-instance": RuleUnknownInstance,
		}},
		{"SkipValidation", testseller.Faults{SkipValidation: true}, map[string]string{
			"edge/unknown-activity":    RuleValidation,
			"edge/missing-field":       RuleValidation,
			"edge/overlong-field":      RuleValidation,
			"order/missing-test-flag":  RuleValidation,
			"order/missing-order-line": RuleValidation,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAgainst(t, tt.faults, Config{Profile: ProfileAll})
			if got := caseIDs(r); !slices.Equal(got, wantIDs) {
				t.Fatalf("case IDs: %q", got)
			}
			for _, c := range r.Cases {
				rule, want := tt.want[c.ID]
				switch {
				case want && c.Pass:
					t.Errorf("%s passed; want it to fail with rule %s", c.ID, rule)
				case want && !c.Has(rule):
					t.Errorf("%s failed without rule %s: %+v", c.ID, rule, c.Failures)
				case want && len(c.Failures) != len(onlyFailures(c, rule)):
					t.Errorf("%s failed with other rules besides %s: %+v", c.ID, rule, c.Failures)
				case !want && !c.Pass:
					t.Errorf("%s failed, but fault %s has nothing to do with it: %+v", c.ID, tt.name, c.Failures)
				}
			}
			if r.Passed() {
				t.Fatal("Passed() is true")
			}
		})
	}
}

func onlyFailures(c Case, rule string) []Failure {
	var out []Failure
	for _, f := range c.Failures {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// TestAuthFaultsNamedPlainly checks the wording vendors read.
func TestAuthFaultsNamedPlainly(t *testing.T) {
	r := runAgainst(t, testseller.Faults{SkipSignature: true}, Config{Profile: ProfilePeriod})
	want := map[string]string{
		"edge/wrong-signature": "the seller accepted a call with a wrong signature: it does not check signatures",
		"edge/stale-timestamp": "the seller accepted a call whose timestamp was 2m0s old",
		"edge/replayed-nonce":  "the seller accepted a call that reused the nonce of an earlier call",
	}
	for id, msg := range want {
		c, ok := r.Case(id)
		if !ok || len(c.Failures) == 0 {
			t.Fatalf("%s: no failure", id)
		}
		if f := c.Failures[0]; !strings.Contains(f.Message, msg) || !strings.Contains(f.Spec, "saas-v2.md §2.2") {
			t.Errorf("%s: failure %+v, want message with %q and spec saas-v2.md §2.2", id, f, msg)
		}
	}
}

// TestEveryAnswerFaults covers faults that spoil every answer: every case
// that made a call fails with the rule, and a case that made none (built
// on a purchase that got no instance) says it did not run.
func TestEveryAnswerFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults testseller.Faults
		cfg    Config
		rule   emulator.Rule
	}{
		{"NoBodySign", testseller.Faults{NoBodySign: true}, Config{Profile: ProfilePeriod}, emulator.RuleBodySign},
		{"WrongContentType", testseller.Faults{WrongContentType: true}, Config{Profile: ProfilePeriod}, emulator.RuleContentType},
		{"Slow", testseller.Faults{Slow: 2 * time.Second}, Config{Profile: ProfilePeriod, Deadline: 150 * time.Millisecond}, emulator.RuleDeadline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAgainst(t, tt.faults, tt.cfg)
			if r.Passed() {
				t.Fatal("Passed() is true")
			}
			for _, c := range r.Cases {
				switch {
				case c.ID == "edge/deadline" && tt.rule != emulator.RuleDeadline:
					if !c.Pass {
						t.Errorf("edge/deadline failed for fault %s: %+v", tt.name, c.Failures)
					}
				case c.Pass:
					t.Errorf("%s passed against a seller with %s", c.ID, tt.name)
				case len(c.Exchanges) > 0 && !c.Has(string(tt.rule)):
					t.Errorf("%s failed without rule %s: %+v", c.ID, tt.rule, c.Failures)
				case len(c.Exchanges) == 0 && !c.Has(RuleNotRun):
					t.Errorf("%s made no call and does not say it did not run: %+v", c.ID, c.Failures)
				}
			}
			for _, id := range []string{"period/purchase", "edge/wrong-signature", "edge/unknown-instance"} {
				if c, _ := r.Case(id); !c.Has(string(tt.rule)) {
					t.Errorf("%s: want rule %s, got %+v", id, tt.rule, c.Failures)
				}
			}
		})
	}
}

func TestBodySignOptional(t *testing.T) {
	r := runAgainst(t, testseller.Faults{NoBodySign: true}, Config{Profile: ProfileOnDemand, BodySignOptional: true})
	if !r.Passed() {
		t.Fatalf("with BodySignOptional a seller without Body-Sign failed:%s", describe(r))
	}
}

func TestReportOutputs(t *testing.T) {
	r := runAgainst(t, testseller.Faults{SkipSignature: true}, Config{Profile: ProfileAll})

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	for _, want := range []string{
		"FAIL  edge/wrong-signature",
		"PASS  period/purchase",
		"rule signature-check: the seller accepted a call with a wrong signature",
		"saas-v2.md §2.2",
		"sent:     POST http://", // what was sent
		`{"activity":"queryInstance","instanceId":"ts-`,
		`"resultCode":"000000"`, // what came back
		"Body-Sign: sign_type=", // the reply's Body-Sign
		"50 cases: 42 passed, 8 failed, 0 skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, testKey) || strings.Contains(out, testSK) {
		t.Error("the text report contains the key or the SK")
	}

	var junit bytes.Buffer
	if err := r.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(junit.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, junit.String())
	}
	if doc.Tests != len(wantIDs) || doc.Failures != 8 {
		t.Errorf("testsuites: tests=%d failures=%d, want %d and 8", doc.Tests, doc.Failures, len(wantIDs))
	}
	wantSuites := map[string][2]int{"period": {13, 0}, "onetime": {4, 0}, "ondemand": {6, 0}, "ondemand-pkg": {6, 0}, "order": {6, 1}, "edge": {15, 7}}
	if len(doc.Suites) != len(wantSuites) {
		t.Errorf("%d suites, want %d", len(doc.Suites), len(wantSuites))
	}
	for _, s := range doc.Suites {
		w, ok := wantSuites[s.Name]
		if !ok || s.Tests != w[0] || s.Failures != w[1] || len(s.Cases) != w[0] {
			t.Errorf("suite %s: tests=%d failures=%d cases=%d, want %v", s.Name, s.Tests, s.Failures, len(s.Cases), w)
		}
		for _, c := range s.Cases {
			if c.Name == "edge/wrong-signature" {
				if c.Failure == nil || !strings.Contains(c.Failure.Message, "signature-check") || !strings.Contains(c.Failure.Text, "saas-v2.md §2.2") {
					t.Errorf("edge/wrong-signature failure: %+v", c.Failure)
				}
			}
		}
	}
}

func TestRunConfigErrors(t *testing.T) {
	good := Config{Target: "http://127.0.0.1:1/produce", Key: "k", AK: "a", SK: "s"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"profile", func(c *Config) { c.Profile = "yearly" }, "profile"},
		{"no listener", func(c *Config) { c.OpenAPI = nil }, "OpenAPI"},
		{"negative deadline", func(c *Config) { c.Deadline = -time.Second }, "Deadline"},
		{"target", func(c *Config) { c.Target = "ftp://x" }, "Target"},
		{"key", func(c *Config) { c.Key = "" }, "Key"},
		{"sk", func(c *Config) { c.SK = "" }, "SK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			cfg := good
			cfg.OpenAPI = ln
			tt.edit(&cfg)
			r, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || r != nil {
				t.Fatalf("Run = %v, %v; want an error naming %s", r, err, tt.want)
			}
			if cfg.OpenAPI != nil && !ln.closed.Load() {
				t.Error("Run did not close the Open API listener after a config error")
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	seller := httptest.NewServer(testseller.New(testKey, testseller.Faults{}))
	defer seller.Close()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := Run(ctx, Config{Target: seller.URL, Key: testKey, AK: testAK, SK: testSK, OpenAPI: ln})
	if err == nil || r == nil {
		t.Fatalf("Run with a cancelled context = %v, %v; want the partial report and an error", r, err)
	}
	if r.Passed() || len(r.Cases) >= len(wantIDs) {
		t.Errorf("a cancelled run reports %d cases, passed=%v", len(r.Cases), r.Passed())
	}
}
