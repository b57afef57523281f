package emulator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// The known-answer vector of saas-v2.md §2.5.
const (
	vecKey       = "TestAccessKey-0123456789abcdef"
	vecNonce     = "50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
	vecTimestamp = 1680508066618
	vecBody      = `{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8","orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"1"}`
	vecSignature = "A64B1BFCE1A372DE15EF4377957528E7F7B0CE4944D4CAEA7B7363339DF27C82"
	vecReply     = `{"resultCode":"000000","resultMsg":"success","instanceId":"inst-001"}`
	vecBodySign  = `sign_type="HMAC-SHA256", signature="m170lIqQUVIcBE0YAhIubMAxxKwYV2PhJnGUTLTac0Q="`
)

// TestSendSignsLikeKooGallery checks the request against the spec vector:
// method, query parameters, content type and the exact body bytes.
func TestSendSignsLikeKooGallery(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Body-Sign", vecBodySign)
		_, _ = io.WriteString(w, vecReply)
	}))
	defer srv.Close()

	now := time.UnixMilli(vecTimestamp)
	c := Call{Interface: protocol.ActivityNewInstance, Body: []byte(vecBody), Tamper: Tamper{Nonce: vecNonce}}
	a := send(context.Background(), seller{client: srv.Client(), url: srv.URL + "/produce?tenant=a", key: vecKey, deadline: 5 * time.Second}, V2, c, now)

	if !a.OK() {
		t.Fatalf("violations: %v", a.Violations)
	}
	if a.ResultCode != protocol.CodeSuccess {
		t.Errorf("result code %q", a.ResultCode)
	}
	q := got.URL.Query()
	for name, want := range map[string]string{
		"signature": vecSignature, "timestamp": "1680508066618", "nonce": vecNonce, "tenant": "a",
	} {
		if q.Get(name) != want {
			t.Errorf("query %s = %q, want %q", name, q.Get(name), want)
		}
	}
	if got.Method != http.MethodPost || got.URL.Path != "/produce" {
		t.Errorf("request %s %s", got.Method, got.URL.Path)
	}
	if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
	if string(gotBody) != vecBody {
		t.Errorf("body %s", gotBody)
	}
	if a.Request.Body != vecBody || a.Response == nil || a.Response.Body != vecReply || a.Response.Status != 200 {
		t.Errorf("attempt record %+v", a)
	}
	// The recorded URL, shown on an unauthenticated page, hides the
	// signature and the target's own query values and keeps the rest.
	if strings.Contains(a.Request.URL, vecSignature) || !strings.Contains(a.Request.URL, "signature=[redacted]") ||
		!strings.Contains(a.Request.URL, "tenant=[redacted]") ||
		!strings.Contains(a.Request.URL, "timestamp=1680508066618") || !strings.Contains(a.Request.URL, "nonce="+vecNonce) ||
		!strings.HasPrefix(a.Request.URL, srv.URL+"/produce?") {
		t.Errorf("recorded URL %q, want the signature and tenant redacted and timestamp, nonce kept", a.Request.URL)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://isv.example/produce", "https://isv.example/produce"},
		{"https://isv.example/p?signature=abc&timestamp=1680508066618&nonce=n1", "https://isv.example/p?signature=[redacted]&timestamp=1680508066618&nonce=n1"},
		{"https://isv.example/p?token=s3cret&tenant=t1&nonce=n1", "https://isv.example/p?token=[redacted]&tenant=[redacted]&nonce=n1"},
		{"https://isv.example/p?flag&api_key=k", "https://isv.example/p?flag=[redacted]&api_key=[redacted]"},
		{"https://vendor:hunter2@isv.example/p?x=1", "https://vendor:xxxxx@isv.example/p?x=[redacted]"},
		{"https://vendor@isv.example/p", "https://vendor@isv.example/p"},
		{"http://isv.example/%zz", "[unparsable URL]"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The message log (served without authentication) hides a password and
// the query values of the target itself.
func TestMessageLogRedactsTarget(t *testing.T) {
	v := start(t, goodSeller(), func(c *Config) {
		c.Target = strings.Replace(c.Target, "http://", "http://vendor:hunter2@", 1) + "?token=t-secret"
	})
	run, _ := v.purchase(PurchaseRequest{ProductID: periodID})
	if !run.OK {
		t.Fatal(run.Err)
	}
	m, _ := v.e.Message(run.Messages[0])
	u := m.Attempts[0].Request.URL
	if strings.Contains(u, "hunter2") || strings.Contains(u, "t-secret") ||
		!strings.Contains(u, "vendor:xxxxx@") || !strings.Contains(u, "token=[redacted]") || !strings.Contains(u, "signature=[redacted]") {
		t.Errorf("recorded URL %q, want the password and token hidden", u)
	}
}

// Send tells a debug call by decoding its testFlag, however the JSON is
// spaced.
func TestSendTestFlag(t *testing.T) {
	v := start(t, goodSeller(), nil)
	for body, want := range map[string]bool{
		`{"activity":"queryInstance","instanceId":"x","testFlag":"1"}`:      true,
		`{"activity": "queryInstance", "instanceId": "x", "testFlag": "1"}`: true,
		`{"activity":"queryInstance","instanceId":"x","testFlag":"0"}`:      false,
		`{"activity":"queryInstance","instanceId":"x"}`:                     false,
		`not JSON "testFlag":"1"`:                                           false,
	} {
		m, err := v.e.Send(context.Background(), Call{Interface: protocol.ActivityQueryInstance, Body: []byte(body), Expect: []protocol.ResultCode{protocol.CodeInstanceNotFound, protocol.CodeInvalidParam}})
		if err != nil {
			t.Fatal(err)
		}
		if m.Test != want {
			t.Errorf("Send(%s): Test %v, want %v", body, m.Test, want)
		}
	}
}

// TestSendChecks runs the debugger's checks over answers that each break
// one rule (or none).
func TestSendChecks(t *testing.T) {
	okSign := func(w http.ResponseWriter, body string) {
		w.Header().Set("Body-Sign", vecBodySign)
		_, _ = io.WriteString(w, body)
	}
	tests := []struct {
		name    string
		iface   string
		expect  []protocol.ResultCode
		handler http.HandlerFunc
		want    []Rule // the rules broken, in order; nil means none
		code    protocol.ResultCode
		// optional makes a missing Body-Sign acceptable.
		optional bool
	}{
		{"correct", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			okSign(w, vecReply)
		}, nil, protocol.CodeSuccess, false},
		{"status 500", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Body-Sign", vecBodySign)
			w.WriteHeader(500)
			_, _ = io.WriteString(w, vecReply)
		}, []Rule{RuleHTTPStatus}, protocol.CodeSuccess, false},
		{"text/plain", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			okSign(w, vecReply)
		}, []Rule{RuleContentType}, protocol.CodeSuccess, false},
		{"not JSON", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "<html>")
		}, []Rule{RuleJSON}, "", false},
		{"no Body-Sign", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, vecReply)
		}, []Rule{RuleBodySign}, protocol.CodeSuccess, false},
		{"no Body-Sign, optional", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, vecReply)
		}, nil, protocol.CodeSuccess, true},
		{"wrong Body-Sign, optional", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			okSign(w, vecReply+" ")
		}, []Rule{RuleBodySign}, protocol.CodeSuccess, true},
		{"Body-Sign of other bytes", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			okSign(w, vecReply+" ")
		}, []Rule{RuleBodySign}, protocol.CodeSuccess, false},
		{"Body-Sign unquoted type", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Body-Sign", `sign_type="HMAC-SHA1", signature="m170lIqQUVIcBE0YAhIubMAxxKwYV2PhJnGUTLTac0Q="`)
			_, _ = io.WriteString(w, vecReply)
		}, []Rule{RuleBodySign}, protocol.CodeSuccess, false},
		{"wrong code", protocol.ActivityNewInstance, []protocol.ResultCode{protocol.CodeAuthFailed}, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			okSign(w, vecReply)
		}, []Rule{RuleResultCode}, protocol.CodeSuccess, false},
		{"no instanceId", protocol.ActivityNewInstance, nil, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			okSign(w, `{"resultCode":"000000"}`)
		}, []Rule{RuleBodySign, RuleRequiredField}, protocol.CodeSuccess, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := Call{Interface: tt.iface, Body: []byte(vecBody), Expect: tt.expect}
			a := send(context.Background(), seller{client: srv.Client(), url: srv.URL, key: vecKey, deadline: 5 * time.Second, bodySignOptional: tt.optional}, V2, c, time.Now())
			var rules []Rule
			for _, v := range a.Violations {
				rules = append(rules, v.Rule)
				if v.Spec == "" || v.Message == "" {
					t.Errorf("violation without spec or message: %+v", v)
				}
			}
			if strings.Join(ruleStrings(rules), ",") != strings.Join(ruleStrings(tt.want), ",") {
				t.Errorf("rules %v, want %v (%v)", rules, tt.want, a.Violations)
			}
			if a.ResultCode != tt.code {
				t.Errorf("code %q, want %q", a.ResultCode, tt.code)
			}
		})
	}
}

func ruleStrings(rs []Rule) []string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return s
}

// TestSendDeadlineAndUnreachable covers the two transport failures.
func TestSendDeadlineAndUnreachable(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	c := Call{Interface: protocol.ActivityQueryInstance, Body: []byte(`{}`)}
	a := send(context.Background(), seller{client: slow.Client(), url: slow.URL, key: vecKey, deadline: 50 * time.Millisecond}, V2, c, time.Now())
	if !a.Has(RuleDeadline) || len(a.Violations) != 1 {
		t.Errorf("slow seller: %v", a.Violations)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	a = send(context.Background(), seller{client: http.DefaultClient, url: url, key: vecKey, deadline: time.Second}, V2, c, time.Now())
	if !a.Has(RuleReachable) {
		t.Errorf("closed port: %v", a.Violations)
	}
	if strings.Contains(a.Violations[0].Message, "signature=") {
		t.Errorf("error text leaks the signed URL: %s", a.Violations[0].Message)
	}
}

// TestMemoEscape checks the \uXXXX rule on queryInstance answers.
func TestMemoEscape(t *testing.T) {
	raw := `{"resultCode":"000000","info":[{"instanceId":"i1","appInfo":{"frontEndUrl":"https://a","memo":"中文"}}]}`
	escaped := `{"resultCode":"000000","info":[{"instanceId":"i1","appInfo":{"frontEndUrl":"https://a","memo":"\u4e2d\u6587"}}]}`
	if vs := v2Fields(protocol.ActivityQueryInstance, protocol.CodeSuccess, []byte(raw)); len(vs) != 1 || vs[0].Rule != RuleMemoEscape {
		t.Errorf("raw memo: %v", vs)
	}
	if vs := v2Fields(protocol.ActivityQueryInstance, protocol.CodeSuccess, []byte(escaped)); len(vs) != 0 {
		t.Errorf("escaped memo: %v", vs)
	}
	long := `{"resultCode":"000000","info":[{"instanceId":"i1","appInfo":{"frontEndUrl":"https://` + strings.Repeat("a", 600) + `"}}]}`
	if vs := v2Fields(protocol.ActivityQueryInstance, protocol.CodeSuccess, []byte(long)); len(vs) != 1 || vs[0].Rule != RuleFieldLength {
		t.Errorf("long frontEndUrl: %v", vs)
	}
}

// TestPrepareV2Omit checks that Tamper.Omit leaves exactly the named query
// parameters out and keeps the others as an untampered call has them.
func TestPrepareV2Omit(t *testing.T) {
	now := time.UnixMilli(vecTimestamp)
	all := []string{"signature", "timestamp", "nonce"}
	tests := []struct {
		omit []string
		want []string // parameters present
	}{
		{nil, all},
		{[]string{"signature"}, []string{"timestamp", "nonce"}},
		{[]string{"timestamp"}, []string{"signature", "nonce"}},
		{[]string{"nonce"}, []string{"signature", "timestamp"}},
		{[]string{"signature", "nonce"}, []string{"timestamp"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.omit, "+"), func(t *testing.T) {
			c := Call{Interface: protocol.ActivityNewInstance, Body: []byte(vecBody), Tamper: Tamper{Nonce: vecNonce, Omit: tt.omit}}
			req, err := prepareV2(context.Background(), "http://seller.example/produce?tenant=a", vecKey, c, now)
			if err != nil {
				t.Fatal(err)
			}
			q := req.URL.Query()
			if q.Get("tenant") != "a" {
				t.Errorf("the target's own query parameter is gone: %q", req.URL.RawQuery)
			}
			wantValue := map[string]string{"signature": vecSignature, "timestamp": "1680508066618", "nonce": vecNonce}
			for _, name := range all {
				present := q.Has(name)
				want := strings.Contains(strings.Join(tt.want, ","), name)
				switch {
				case present != want:
					t.Errorf("parameter %s present=%v, want %v (query %q)", name, present, want, req.URL.RawQuery)
				case present && q.Get(name) != wantValue[name]:
					t.Errorf("parameter %s = %q, want %q", name, q.Get(name), wantValue[name])
				}
			}
		})
	}
}
