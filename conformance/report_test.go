package conformance

import (
	"bytes"
	"encoding/xml"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol/sign"
)

// handReport is a report with one failed and one passed case whose
// answers carry a Body-Sign header.
func handReport() *Report {
	const sig = "DtSuVeryLongSignatureValue0123456789abcdefABCDEF="
	x := Exchange{
		Interface: "queryInstance",
		Request:   emulator.HTTPRecord{Method: "POST", URL: "http://127.0.0.1:1/produce", Body: `{"activity":"queryInstance"}`},
		Response: &emulator.HTTPRecord{Status: 200, Body: `{"resultCode":"000000"}`, Header: map[string]string{
			"Content-Type":      "application/json",
			sign.BodySignHeader: `sign_type="HMAC-SHA256", signature="` + sig + `"`,
		}},
		Duration:   time.Millisecond,
		ResultCode: "000000",
		Violations: []emulator.Violation{{Rule: emulator.RuleResultCode, Message: "want 000001", Spec: "saas-v2.md §5"}},
	}
	return &Report{
		Target: "http://127.0.0.1:1/produce", Profile: ProfileAll, Deadline: DefaultDeadline, Started: time.Now(),
		Cases: []Case{
			{ID: "edge/wrong-signature", Title: "wrong signature", Spec: "§2.2", Duration: 2 * time.Second, Exchanges: []Exchange{x},
				Failures: []Failure{{Rule: RuleSignature, Message: "the seller accepted a call with a wrong signature", Spec: "saas-v2.md §2.2"}}},
			{ID: "period/purchase", Title: "purchase", Spec: "§3.1", Pass: true, Duration: time.Second, Exchanges: []Exchange{x}},
			{ID: "edge/deadline", Title: "deadline", Spec: "§1.1", Pass: true, Duration: 500 * time.Millisecond},
		},
	}
}

// TestReportBodySignShortened: the text and JUnit reports show the
// sign_type and the first four characters of the signature, never the
// whole value.
func TestReportBodySignShortened(t *testing.T) {
	r := handReport()
	var text, verbose, junit bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteTextVerbose(&verbose); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	const want = `Body-Sign: sign_type="HMAC-SHA256", signature="DtSu…"`
	for name, out := range map[string]string{"text": text.String(), "verbose": verbose.String(), "junit": html.UnescapeString(junit.String())} {
		if !strings.Contains(out, want) {
			t.Errorf("%s report lacks %q:\n%s", name, want, out)
		}
		if strings.Contains(out, "DtSuV") {
			t.Errorf("%s report shows more of the signature:\n%s", name, out)
		}
	}
}

func TestShownBodySign(t *testing.T) {
	tests := []struct{ in, want string }{
		{`sign_type="HMAC-SHA256", signature="abcdefgh"`, `sign_type="HMAC-SHA256", signature="abcd…"`},
		{`sign_type="HMAC-SHA256", signature="abc"`, `sign_type="HMAC-SHA256", signature="abc"`},
		{"(none)", "(none)"},
		{`signature="abcdefgh",sign_type=HMAC-SHA1`, `signature="abcd…", sign_type=HMAC-SHA1`},
		{"HMAC-SHA256 0123456789abcdefXYZ", `"HMAC-SHA256 0123…" (malformed: no signature)`},
	}
	for _, tt := range tests {
		if got := shownBodySign(tt.in); got != tt.want {
			t.Errorf("shownBodySign(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestJUnitExchangesOnce: a failed case's calls are in system-out only;
// the failure text lists the broken rules. Each suite's time is the sum
// of its cases.
func TestJUnitExchangesOnce(t *testing.T) {
	var junit bytes.Buffer
	if err := handReport().WriteJUnit(&junit); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Suites []struct {
			Name  string `xml:"name,attr"`
			Time  string `xml:"time,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
				SystemOut string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(junit.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(junit.String(), "#1 queryInstance"); n != 2 { // once per case with calls
		t.Errorf("the calls appear %d times, want 2 (one per case):\n%s", n, junit.String())
	}
	times := map[string]string{}
	for _, s := range out.Suites {
		times[s.Name] = s.Time
		for _, c := range s.Cases {
			if c.Name != "edge/wrong-signature" {
				continue
			}
			if c.Failure == nil || !strings.Contains(c.Failure.Text, "rule signature-check") || strings.Contains(c.Failure.Text, "queryInstance") {
				t.Errorf("failure text: %+v", c.Failure)
			}
			if !strings.Contains(c.SystemOut, "#1 queryInstance") {
				t.Errorf("system-out lacks the call: %q", c.SystemOut)
			}
		}
	}
	if times["edge"] != "2.500" || times["period"] != "1.000" {
		t.Errorf("suite times %v, want edge 2.500 and period 1.000", times)
	}
}

func TestCaseSuite(t *testing.T) {
	for id, want := range map[string]string{"period/purchase": "period", "edge/a/b": "edge", "plain": "plain"} {
		if got := (Case{ID: id}).suite(); got != want {
			t.Errorf("suite(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestValidate: Validate judges what Run would refuse, without an Open API
// listener.
func TestValidate(t *testing.T) {
	good := Config{Target: "http://127.0.0.1:1/produce", Key: testKey, AK: testAK, SK: testSK}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"target", func(c *Config) { c.Target = "ftp://x" }, "not an http or https URL"},
		{"key", func(c *Config) { c.Key = "" }, "Key is required"},
		{"SK", func(c *Config) { c.SK = "" }, "AK and SK are required"},
		{"profile", func(c *Config) { c.Profile = "yearly" }, "want one of " + strings.Join(Profiles(), ", ")},
		{"deadline", func(c *Config) { c.Deadline = -time.Second }, "negative"},
	}
	for _, tt := range tests {
		c := good
		tt.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if DefaultDeadline != emulator.DefaultDeadline {
		t.Errorf("DefaultDeadline %v, emulator's %v", DefaultDeadline, emulator.DefaultDeadline)
	}
}
