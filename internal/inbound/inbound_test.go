package inbound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/sqlite"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const (
	basicKey   = "basic-key-0123456789"
	generalKey = "general-key-0123456789"
	kitKey     = "kit-key-0123456789"
)

// echo is a request of the test families: the activity and one field.
type echo struct {
	activity string
	value    string
}

func (e echo) Activity() string { return e.activity }

func (e echo) Validate() error {
	if e.value == "" {
		return &protocol.FieldError{Field: "value", Problem: "missing"}
	}
	return nil
}

// served records which family served which request.
type served struct {
	mu    sync.Mutex
	calls []string
}

func (s *served) add(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, v)
}

func (s *served) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// family is a test family: it decodes {"activity":…, "value":…} (from the
// query for GET) and answers 000000 with the value.
func family(name, method, path string, keys inbound.KeyType, scheme inbound.Scheme, rec *served, activities ...string) *inbound.Family {
	return &inbound.Family{
		Name: name, Method: method, Path: path, Keys: keys, Scheme: scheme, Activities: activities,
		Decode: func(c *inbound.Call) (inbound.Request, error) {
			if c.Method == http.MethodGet {
				return echo{activity: c.Query.Get("activity"), value: c.Query.Get("value")}, nil
			}
			var v struct {
				Activity string `json:"activity"`
				Value    string `json:"value"`
			}
			if err := json.Unmarshal(bytes.TrimPrefix(c.Body, []byte("\xef\xbb\xbf")), &v); err != nil {
				return nil, &protocol.DecodeError{What: "test body", Err: err}
			}
			return echo{activity: v.Activity, value: v.Value}, nil
		},
		Serve: func(_ context.Context, req inbound.Request) (inbound.Outcome, error) {
			e := req.(echo)
			rec.add(name + ":" + e.activity + ":" + e.value)
			if e.value == "boom" {
				return inbound.Outcome{}, errors.New("the service failed")
			}
			return inbound.Outcome{Response: protocol.NewResponse(protocol.CodeSuccess, e.value), Code: protocol.CodeSuccess, Msg: e.value, IdemKey: "k:" + e.value}, nil
		},
	}
}

// pipeline is a Server on a real SQLite store with four families: V2-like
// and order-like families sharing /produce (basic and general keys), a
// Kit-header family and a V1-token family.
type pipeline struct {
	st  *sqlite.Store
	srv *httptest.Server
	rec *served
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := &served{}
	s, err := inbound.New(inbound.Config{
		Families: []*inbound.Family{
			family("v2", http.MethodPost, "/produce", inbound.KeyBasic, inbound.URLSignature, rec, "newInstance", "queryInstance"),
			family("order", http.MethodPost, "/produce", inbound.KeyGeneral, inbound.URLSignature, rec, "orderNotify"),
			family("kit", http.MethodPost, "/produceAPI/v2/tenantSync", inbound.KeyKit, inbound.KitHeaders, rec, "tenantSync"),
			family("v1", http.MethodGet, "/produce", inbound.KeyBasic, inbound.V1Token, rec, "newInstance"),
		},
		Keys:   inbound.Keys{inbound.KeyBasic: {basicKey}, inbound.KeyGeneral: {generalKey}, inbound.KeyKit: {kitKey}},
		Store:  st,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{st: st, srv: httptest.NewServer(s), rec: rec}
	t.Cleanup(p.srv.Close)
	return p
}

// reply is an answer as received.
type reply struct {
	status int
	header http.Header
	body   []byte
	code   string
	msg    string
}

func (p *pipeline) do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r protocol.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b, code: string(r.ResultCode), msg: r.ResultMsg}
}

var nonceSeq int

// urlSigned is a POST to path signed in the URL with key; extra is added
// to the query as given (raw).
func (p *pipeline) urlSigned(t *testing.T, path, key, body, extra string) *http.Request {
	t.Helper()
	nonceSeq++
	nonce := "nonce-" + strconv.Itoa(nonceSeq) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	q := "signature=" + sign.V2Signature(key, nonce, ts, []byte(body)) + "&timestamp=" + ts + "&nonce=" + nonce + extra
	req, err := http.NewRequest(http.MethodPost, p.srv.URL+path+"?"+q, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// wantAnswer checks the status, resultCode and that Body-Sign verifies
// with key.
func wantAnswer(t *testing.T, r reply, status int, code, key string) {
	t.Helper()
	if r.status != status || r.code != code {
		t.Fatalf("answer %d %s %q, want %d %s", r.status, r.code, r.msg, status, code)
	}
	if err := sign.VerifyBodySign(key, r.header.Get(sign.BodySignHeader), r.body); err != nil {
		t.Errorf("Body-Sign does not verify with the expected key: %v", err)
	}
}

func TestActivityPicksTheFamilyAndItsKey(t *testing.T) {
	p := newPipeline(t)
	tests := []struct {
		name, key, body string
		code, signKey   string
		served          string // "" when nothing may be served
	}{
		{"v2 activity, basic key", basicKey, `{"activity":"newInstance","value":"a"}`, "000000", basicKey, "v2:newInstance:a"},
		{"order activity, general key", generalKey, `{"activity":"orderNotify","value":"b"}`, "000000", generalKey, "order:orderNotify:b"},
		{"order activity, basic key", basicKey, `{"activity":"orderNotify","value":"c"}`, "000001", generalKey, ""},
		{"v2 activity, general key", generalKey, `{"activity":"queryInstance","value":"d"}`, "000001", basicKey, ""},
		{"unknown activity, basic key", basicKey, `{"activity":"noSuch","value":"e"}`, "000002", basicKey, ""},
		{"unknown activity, general key", generalKey, `{"activity":"noSuch","value":"f"}`, "000001", basicKey, ""},
		{"not JSON", basicKey, `not json`, "000002", basicKey, ""},
		{"invalid", basicKey, `{"activity":"newInstance"}`, "000002", basicKey, ""},
		{"service error", basicKey, `{"activity":"newInstance","value":"boom"}`, "000005", basicKey, "v2:newInstance:boom"},
		{"order activity after a BOM", generalKey, "\xef\xbb\xbf" + `{"activity":"orderNotify","value":"g"}`, "000000", generalKey, "order:orderNotify:g"},
		{"order activity, body over the limit", generalKey, `{"activity":"orderNotify","value":"` + strings.Repeat("x", inbound.DefaultMaxBody) + `"}`, "000002", generalKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(p.rec.list())
			r := p.do(t, p.urlSigned(t, "/produce", tt.key, tt.body, ""))
			wantAnswer(t, r, http.StatusOK, tt.code, tt.signKey)
			got := p.rec.list()[before:]
			switch {
			case tt.served == "" && len(got) > 0:
				t.Errorf("served %v, want nothing", got)
			case tt.served != "" && (len(got) != 1 || got[0] != tt.served):
				t.Errorf("served %v, want %s", got, tt.served)
			}
		})
	}
}

func TestRepeatedQueryParameterRefusedBeforeAuthentication(t *testing.T) {
	p := newPipeline(t)
	// At a shared path the refusal is signed with the key of the family the
	// activity names.
	r := p.do(t, p.urlSigned(t, "/produce", generalKey, `{"activity":"orderNotify","value":"x"}`, "&nonce=again"))
	wantAnswer(t, r, http.StatusOK, "000002", generalKey)

	body := `{"activity":"newInstance","value":"x"}`
	for _, param := range []string{"signature", "timestamp", "nonce"} {
		t.Run(param, func(t *testing.T) {
			req := p.urlSigned(t, "/produce", basicKey, body, "&"+param+"=again")
			r := p.do(t, req)
			wantAnswer(t, r, http.StatusOK, "000002", basicKey)
			if !strings.Contains(r.msg, param) {
				t.Errorf("message %q does not name %s", r.msg, param)
			}
			// The refusal recorded nothing: the same signed call, without
			// the extra parameter, is accepted with its nonce.
			q := req.URL.Query()
			q.Del(param)
			first := req.URL.Query()[param][0]
			q.Set(param, first)
			clean, _ := http.NewRequest(http.MethodPost, p.srv.URL+"/produce?"+q.Encode(), strings.NewReader(body))
			wantAnswer(t, p.do(t, clean), http.StatusOK, "000000", basicKey)
		})
	}
}

func TestKitHeaders(t *testing.T) {
	p := newPipeline(t)
	body := `{"activity":"tenantSync","value":"t1"}`
	call := func(key, nonce string, extra http.Header) reply {
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		req, _ := http.NewRequest(http.MethodPost, p.srv.URL+"/produceAPI/v2/tenantSync", strings.NewReader(body))
		req.Header.Set("x-sign", sign.KitSignature(key, nonce, ts, []byte(body)))
		req.Header.Set("x-timestamp", ts)
		req.Header.Set("x-nonce", nonce)
		for k, v := range extra {
			req.Header[k] = append(req.Header[k], v...)
		}
		return p.do(t, req)
	}
	wantAnswer(t, call(kitKey, "kit-nonce-1", nil), http.StatusOK, "000000", kitKey)
	wantAnswer(t, call(kitKey, "kit-nonce-1", nil), http.StatusOK, "000001", kitKey) // replayed
	wantAnswer(t, call(basicKey, "kit-nonce-2", nil), http.StatusOK, "000001", kitKey)
	r := call(kitKey, "kit-nonce-3", http.Header{"X-Sign": {"0000"}})
	wantAnswer(t, r, http.StatusOK, "000001", kitKey)
	if !strings.Contains(r.msg, "x-sign given 2 times") {
		t.Errorf("repeated header: message %q", r.msg)
	}
	req, _ := http.NewRequest(http.MethodPost, p.srv.URL+"/produceAPI/v2/tenantSync", strings.NewReader(body))
	r = p.do(t, req)
	wantAnswer(t, r, http.StatusOK, "000001", kitKey)
	if !strings.Contains(r.msg, "missing header x-sign, x-timestamp, x-nonce") {
		t.Errorf("missing headers: message %q", r.msg)
	}
	if got := p.rec.list(); len(got) != 1 || got[0] != "kit:tenantSync:t1" {
		t.Errorf("served %v, want the first call only", got)
	}
}

func TestV1TokenOnGET(t *testing.T) {
	p := newPipeline(t)
	params := map[string]string{"activity": "newInstance", "value": "g1", "timeStamp": protocol.FormatTime17(time.Now().UTC())}
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	q.Set("authToken", sign.AuthToken(basicKey, params["timeStamp"], params))
	req, _ := http.NewRequest(http.MethodGet, p.srv.URL+"/produce?"+q.Encode(), nil)
	wantAnswer(t, p.do(t, req), http.StatusOK, "000000", basicKey)
	q.Set("value", "tampered")
	req, _ = http.NewRequest(http.MethodGet, p.srv.URL+"/produce?"+q.Encode(), nil)
	wantAnswer(t, p.do(t, req), http.StatusOK, "000001", basicKey)
	if got := p.rec.list(); len(got) != 1 || got[0] != "v1:newInstance:g1" {
		t.Errorf("served %v", got)
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	p := newPipeline(t)
	req, _ := http.NewRequest(http.MethodPost, p.srv.URL+"/elsewhere", strings.NewReader(`{}`))
	wantAnswer(t, p.do(t, req), http.StatusNotFound, "000002", basicKey)
	req, _ = http.NewRequest(http.MethodPut, p.srv.URL+"/produce", strings.NewReader(`{}`))
	r := p.do(t, req)
	wantAnswer(t, r, http.StatusMethodNotAllowed, "000002", basicKey)
	if got := r.header.Get("Allow"); got != "POST, GET" {
		t.Errorf("Allow %q", got)
	}
	req, _ = http.NewRequest(http.MethodGet, p.srv.URL+"/produceAPI/v2/tenantSync", nil)
	r = p.do(t, req)
	wantAnswer(t, r, http.StatusMethodNotAllowed, "000002", kitKey)
	if got := r.header.Get("Allow"); got != "POST" {
		t.Errorf("Allow %q", got)
	}
}

func TestLedgerNamesTheFamily(t *testing.T) {
	p := newPipeline(t)
	wantAnswer(t, p.do(t, p.urlSigned(t, "/produce", generalKey, `{"activity":"orderNotify","value":"L1"}`, "")), http.StatusOK, "000000", generalKey)
	wantAnswer(t, p.do(t, p.urlSigned(t, "/produce", basicKey, `{"activity":"queryInstance","value":"L2"}`, "")), http.StatusOK, "000000", basicKey)
	var calls []store.Call
	deadline := time.Now().Add(10 * time.Second)
	for len(calls) < 2 && time.Now().Before(deadline) {
		var err error
		if calls, err = p.st.Calls(context.Background(), store.CallFilter{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d ledger rows, want 2", len(calls))
	}
	got := map[string]string{}
	for _, c := range calls {
		got[c.Activity] = c.Interface + " " + c.IdemKey
	}
	if got["orderNotify"] != "order k:L1" || got["queryInstance"] != "v2 k:L2" {
		t.Errorf("ledger rows %v", got)
	}
}

func TestNewRejectsBadFamilies(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &served{}
	keys := inbound.Keys{inbound.KeyBasic: {basicKey}}
	tests := []struct {
		name     string
		families []*inbound.Family
		keys     inbound.Keys
	}{
		{"none", nil, keys},
		{"no key of its type", []*inbound.Family{family("a", http.MethodPost, "/p", inbound.KeyGeneral, inbound.URLSignature, rec, "x")}, keys},
		{"empty key", []*inbound.Family{family("a", http.MethodPost, "/p", inbound.KeyBasic, inbound.URLSignature, rec, "x")}, inbound.Keys{inbound.KeyBasic: {""}}},
		{"two families serve one activity on one route", []*inbound.Family{
			family("a", http.MethodPost, "/p", inbound.KeyBasic, inbound.URLSignature, rec, "x"),
			family("b", http.MethodPost, "/p", inbound.KeyBasic, inbound.URLSignature, rec, "x"),
		}, keys},
		{"same name twice", []*inbound.Family{
			family("a", http.MethodPost, "/p", inbound.KeyBasic, inbound.URLSignature, rec, "x"),
			family("a", http.MethodPost, "/q", inbound.KeyBasic, inbound.URLSignature, rec, "y"),
		}, keys},
		{"relative path", []*inbound.Family{family("a", http.MethodPost, "p", inbound.KeyBasic, inbound.URLSignature, rec, "x")}, keys},
		{"no scheme", []*inbound.Family{family("a", http.MethodPost, "/p", inbound.KeyBasic, 0, rec, "x")}, keys},
		{"PUT", []*inbound.Family{family("a", http.MethodPut, "/p", inbound.KeyBasic, inbound.URLSignature, rec, "x")}, keys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := inbound.New(inbound.Config{Families: tt.families, Keys: tt.keys, Store: st}); err == nil {
				t.Error("New accepted the configuration")
			}
		})
	}
}
