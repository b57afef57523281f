package conformance

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Sellers with behaviours testseller lacks: small handlers in front of a
// correct testseller.

// notImplementing answers 000002 to the given activities, as a seller that
// does not implement them does (saas-v2.md §3.0), and forwards the rest to
// a correct testseller. With bodySign false those answers carry no
// Body-Sign.
func notImplementing(bodySign bool, activities ...string) http.Handler {
	next := testseller.New(testKey, testseller.Faults{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Activity string `json:"activity"`
		}
		if json.Unmarshal(body, &req) == nil && slices.Contains(activities, req.Activity) {
			reply := []byte(`{"resultCode":"000002","resultMsg":"activity ` + req.Activity + ` is not supported"}`)
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
			if bodySign {
				w.Header().Set(sign.BodySignHeader, sign.BodySign(testKey, reply))
			}
			_, _ = w.Write(reply)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// laxAuth forwards to a correct testseller, but first re-signs a call
// with a fresh timestamp and nonce when check says the lax seller it plays
// would not have looked: it accepts what the check lets through.
func laxAuth(accepts func(q map[string]string) bool) http.Handler {
	next := testseller.New(testKey, testseller.Faults{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		params := map[string]string{}
		for _, name := range []string{"signature", "timestamp", "nonce"} {
			if q.Has(name) {
				params[name] = q.Get(name)
			}
		}
		body, _ := io.ReadAll(r.Body)
		if accepts(params) {
			ts, nonce := protocol.FormatMillis(time.Now()), emulator.NewNonce()
			q.Set("timestamp", ts)
			q.Set("nonce", nonce)
			q.Set("signature", sign.V2Signature(testKey, nonce, ts, body))
			r.URL.RawQuery = q.Encode()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func missing(name string) func(map[string]string) bool {
	return func(q map[string]string) bool { _, ok := q[name]; return !ok }
}

// aheadOnly accepts any timestamp that is not too old: the one-sided
// window check.
func aheadOnly(q map[string]string) bool {
	t, err := sign.ParseTimestamp(q["timestamp"])
	return err == nil && t.After(time.Now().Add(time.Minute))
}

// TestLaxAuthNamed: a seller that skips a check when its parameter is
// absent, or checks the timestamp window one way only, fails exactly the
// case for that fault, with a message that names it.
func TestLaxAuthNamed(t *testing.T) {
	tests := []struct {
		name    string
		accepts func(map[string]string) bool
		id      string
		rule    string
		message string
	}{
		{"no signature", missing("signature"), "edge/missing-signature", RuleSignature,
			"the seller accepted a call without a signature: it skips the check when the parameter is absent (saas-v2.md §2.2)"},
		{"no timestamp", missing("timestamp"), "edge/missing-timestamp", RuleTimestamp,
			"the seller accepted a call without a timestamp: it skips the check when the parameter is absent"},
		{"no nonce", missing("nonce"), "edge/missing-nonce", RuleNonce,
			"the seller accepted a call without a nonce: it skips the check when the parameter is absent"},
		{"timestamp ahead", aheadOnly, "edge/future-timestamp", RuleTimestamp,
			"the seller accepted a call whose timestamp was 2m0s ahead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runHandler(t, laxAuth(tt.accepts), Config{Profile: ProfileOneTime})
			failed := r.Failed()
			if len(failed) != 1 || failed[0].ID != tt.id {
				t.Fatalf("want only %s to fail:%s", tt.id, describe(r))
			}
			c := failed[0]
			if len(c.Failures) != 1 || c.Failures[0].Rule != tt.rule || !strings.Contains(c.Failures[0].Message, tt.message) ||
				!strings.Contains(c.Failures[0].Spec, "saas-v2.md §2.2") {
				t.Errorf("%s failures %+v, want one of rule %s saying %q", tt.id, c.Failures, tt.rule, tt.message)
			}
		})
	}
}

// TestMissingAuthParamsSent checks what the new authentication cases send
// against a correct seller: each leaves its parameter out (or sends a
// timestamp ahead), and the seller's 000001 passes them.
func TestMissingAuthParamsSent(t *testing.T) {
	r := runAgainst(t, testseller.Faults{}, Config{Profile: ProfileOneTime})
	if !r.Passed() {
		t.Fatalf("a correct seller failed:%s", describe(r))
	}
	for id, param := range map[string]string{
		"edge/missing-signature": "signature", "edge/missing-timestamp": "timestamp", "edge/missing-nonce": "nonce",
	} {
		c, _ := r.Case(id)
		if len(c.Exchanges) != 1 || strings.Contains(c.Exchanges[0].Request.URL, param+"=") || c.Exchanges[0].ResultCode != protocol.CodeAuthFailed {
			t.Errorf("%s: exchanges %+v, want one call without %s answered 000001", id, c.Exchanges, param)
		}
	}
}

// TestOptionalNotImplemented: a seller that answers 000002 to the optional
// upgradeInstance and changeInstanceCheck is skipped on those cases, not
// failed, unless RequireOptional; an answer that breaks another rule too
// still fails.
func TestOptionalNotImplemented(t *testing.T) {
	optional := []string{protocol.ActivityUpgradeInstance, protocol.ActivityChangeInstanceCheck}
	ids := []string{"period/renewal-change", "period/upgrade"}

	t.Run("skipped", func(t *testing.T) {
		r := runHandler(t, notImplementing(true, optional...), Config{Profile: ProfilePeriod})
		if !r.Passed() {
			t.Fatalf("a seller without the optional interfaces failed:%s", describe(r))
		}
		var skipped []string
		for _, c := range r.Skipped() {
			skipped = append(skipped, c.ID)
			if c.Pass || len(c.Failures) != 0 || !strings.Contains(c.Note, "not implemented (optional, saas-v2.md §1.3)") {
				t.Errorf("%s: pass=%v failures=%+v note %q", c.ID, c.Pass, c.Failures, c.Note)
			}
		}
		if !slices.Equal(skipped, ids) {
			t.Fatalf("skipped %q, want %q", skipped, ids)
		}
		var text bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"SKIP  period/upgrade", "SKIP  period/renewal-change",
			"upgradeInstance: not implemented (optional, saas-v2.md §1.3)",
			"28 cases: 26 passed, 0 failed, 2 skipped\nPASS\n",
		} {
			if !strings.Contains(text.String(), want) {
				t.Errorf("text report lacks %q:\n%s", want, text.String())
			}
		}
		var junit bytes.Buffer
		if err := r.WriteJUnit(&junit); err != nil {
			t.Fatal(err)
		}
		doc := parseJUnit(t, junit.Bytes())
		if doc.Failures != 0 || doc.Skipped != 2 {
			t.Errorf("JUnit failures=%d skipped=%d, want 0 and 2", doc.Failures, doc.Skipped)
		}
		for _, c := range doc.cases() {
			want := slices.Contains(ids, c.Name)
			if got := c.Skipped != nil; got != want {
				t.Errorf("JUnit %s skipped=%v, want %v", c.Name, got, want)
			} else if got && !strings.Contains(c.Skipped.Message, "not implemented (optional, saas-v2.md §1.3)") {
				t.Errorf("JUnit %s skipped message %q", c.Name, c.Skipped.Message)
			}
		}
	})
	t.Run("required", func(t *testing.T) {
		r := runHandler(t, notImplementing(true, optional...), Config{Profile: ProfilePeriod, RequireOptional: true})
		var failed []string
		for _, c := range r.Failed() {
			failed = append(failed, c.ID)
			if !c.Has(string(emulator.RuleResultCode)) || !strings.Contains(c.Note, "not implemented") {
				t.Errorf("%s: failures %+v note %q", c.ID, c.Failures, c.Note)
			}
		}
		if !slices.Equal(failed, ids) || len(r.Skipped()) != 0 {
			t.Fatalf("failed %q, skipped %d; want %q failed, none skipped", failed, len(r.Skipped()), ids)
		}
	})
	t.Run("other violation", func(t *testing.T) {
		r := runHandler(t, notImplementing(false, optional...), Config{Profile: ProfilePeriod})
		var failed []string
		for _, c := range r.Failed() {
			failed = append(failed, c.ID)
			if !c.Has(string(emulator.RuleBodySign)) {
				t.Errorf("%s: failures %+v, want body-sign", c.ID, c.Failures)
			}
		}
		if !slices.Equal(failed, ids) || len(r.Skipped()) != 0 {
			t.Fatalf("failed %q, skipped %d; want %q failed, none skipped", failed, len(r.Skipped()), ids)
		}
	})
}

// TestUnknownInstanceOneTime: with only the onetime profile, where
// refreshInstance and updateInstanceStatus are N/A, edge/unknown-instance
// calls releaseInstance only, so a seller without those two passes.
func TestUnknownInstanceOneTime(t *testing.T) {
	h := notImplementing(true, protocol.ActivityRefreshInstance, protocol.ActivityUpdateInstanceStatus)
	r := runHandler(t, h, Config{Profile: ProfileOneTime})
	if !r.Passed() {
		t.Fatalf("a one-time seller without refreshInstance and updateInstanceStatus failed:%s", describe(r))
	}
	c, _ := r.Case("edge/unknown-instance")
	if len(c.Exchanges) != 1 || c.Exchanges[0].Interface != protocol.ActivityReleaseInstance || !strings.Contains(c.Note, "N/A") {
		t.Errorf("edge/unknown-instance: %d exchanges, note %q; want releaseInstance only and a note", len(c.Exchanges), c.Note)
	}

	r = runAgainst(t, testseller.Faults{}, Config{Profile: ProfileOnDemand})
	c, _ = r.Case("edge/unknown-instance")
	var got []string
	for _, x := range c.Exchanges {
		got = append(got, x.Interface)
	}
	want := []string{protocol.ActivityRefreshInstance, protocol.ActivityUpdateInstanceStatus, protocol.ActivityReleaseInstance}
	if !slices.Equal(got, want) {
		t.Errorf("ondemand edge/unknown-instance called %q, want %q", got, want)
	}
}

// TestDeadlineNothingAnswered: when no call gets an answer, edge/deadline
// says it did not run rather than passing.
func TestDeadlineNothingAnswered(t *testing.T) {
	hangUp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	r := runHandler(t, hangUp, Config{Profile: ProfileOneTime})
	c, _ := r.Case("edge/deadline")
	if c.Pass || !c.Has(RuleNotRun) {
		t.Fatalf("edge/deadline against a seller that never answers: pass=%v failures %+v; want not-run", c.Pass, c.Failures)
	}
	if c, _ := r.Case("onetime/purchase"); !c.Has(string(emulator.RuleReachable)) {
		t.Errorf("onetime/purchase failures %+v, want reachable", c.Failures)
	}
}

// TestVerboseAndSystemOut: passed cases show their calls with
// WriteTextVerbose and in JUnit's system-out, not in the plain text.
func TestVerboseAndSystemOut(t *testing.T) {
	r := runAgainst(t, testseller.Faults{}, Config{Profile: ProfileOneTime})
	var plain, verbose, junit bytes.Buffer
	if err := r.WriteText(&plain); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteTextVerbose(&verbose); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "sent:") {
		t.Errorf("the plain report shows calls of passed cases:\n%s", plain.String())
	}
	v := verbose.String()
	i := strings.Index(v, "PASS  onetime/purchase")
	j := strings.Index(v, "PASS  onetime/query")
	if i < 0 || j < i || !strings.Contains(v[i:j], "#1 newInstance: resultCode") || !strings.Contains(v[i:j], "sent:     POST http://") ||
		!strings.Contains(v[i:j], "received: HTTP 200") {
		t.Errorf("the verbose report does not show onetime/purchase's calls:\n%s", v)
	}
	for _, c := range parseJUnit(t, junit.Bytes()).cases() {
		if !strings.Contains(c.SystemOut, "sent:     POST http://") || !strings.Contains(c.SystemOut, "received: HTTP 200") {
			t.Errorf("JUnit %s system-out lacks its calls: %q", c.Name, c.SystemOut)
		}
	}
}

// TestTargetRedacted: a password and query values in the target never
// reach the report.
func TestTargetRedacted(t *testing.T) {
	const password, token = "pw-secret-0123", "tok-secret-4567"
	r := runHandler(t, testseller.New(testKey, testseller.Faults{}), Config{
		Profile: ProfileOneTime,
		Target:  "http://vendor:" + password + "@{host}/produce?tenant=" + token,
	})
	if !r.Passed() {
		t.Fatalf("a correct seller failed:%s", describe(r))
	}
	if want := "http://vendor:xxxxx@"; !strings.HasPrefix(r.Target, want) || !strings.HasSuffix(r.Target, "/produce?tenant=[redacted]") {
		t.Errorf("Report.Target %q, want %s…/produce?tenant=[redacted]", r.Target, want)
	}
	var text, verbose, junit bytes.Buffer
	for _, w := range []func(io.Writer) error{
		func(w io.Writer) error { return r.WriteText(&text) },
		func(w io.Writer) error { return r.WriteTextVerbose(&verbose) },
		func(w io.Writer) error { return r.WriteJUnit(&junit) },
	} {
		if err := w(nil); err != nil {
			t.Fatal(err)
		}
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"text": text.String(), "verbose text": verbose.String(), "JUnit": junit.String(), "JSON": string(js)} {
		if strings.Contains(out, password) || strings.Contains(out, token) {
			t.Errorf("the %s report contains the target's password or query value", name)
		}
	}
	if !strings.Contains(text.String(), "target http://vendor:xxxxx@") || !strings.Contains(junit.String(), "tenant=[redacted]") ||
		!strings.Contains(verbose.String(), "&tenant=[redacted]") {
		t.Errorf("the redacted target is not shown:\n%s\n%s", text.String(), junit.String())
	}
}

type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suites   []struct {
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []junitDocCase `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitDocCase struct {
	Name    string `xml:"name,attr"`
	Skipped *struct {
		Message string `xml:"message,attr"`
	} `xml:"skipped"`
	SystemOut string `xml:"system-out"`
}

func (d junitDoc) cases() []junitDocCase {
	var out []junitDocCase
	for _, s := range d.Suites {
		out = append(out, s.Cases...)
	}
	return out
}

func parseJUnit(t *testing.T, b []byte) junitDoc {
	t.Helper()
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, b)
	}
	return d
}
