package testseller

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// kitCall is one Kit request as a test sends it.
type kitCall struct {
	version int               // 1: authToken header; 2: x-sign, x-timestamp, x-nonce
	prefix  string            // the path before /produceAPI ("" is the root)
	key     string            // signs the call; "" is the Kit key
	form    string            // V2 x-sign form: "A" (default) or "B"
	skew    time.Duration     // added to x-timestamp
	nonce   string            // x-nonce; "" is a fresh one
	header  map[string]string // set after signing ("" deletes)
	method  string            // "" is POST
}

// kit sends fields (plus testFlag 0 and timeStamp) to operation op as c
// says; the answer must be Body-Signed with the Kit key.
func (e env) kit(c kitCall, op string, fields map[string]any) reply {
	e.t.Helper()
	b := map[string]any{"testFlag": 0, "timeStamp": protocol.FormatKitTime(time.Now())}
	for k, v := range fields {
		b[k] = v
	}
	body, err := json.Marshal(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.kitRaw(c, op, body)
}

// kitRaw sends body as c says.
func (e env) kitRaw(c kitCall, op string, body []byte) reply {
	e.t.Helper()
	key := c.key
	if key == "" {
		key = testKitKey
	}
	h := http.Header{}
	path := c.prefix + "/produceAPI/" + op
	if c.version == 1 {
		if token, err := sign.AuthTokenJSON(key, body); err == nil {
			h.Set("authToken", token)
		}
	} else {
		path = c.prefix + "/produceAPI/v2/" + op
		ts := millis(time.Now().Add(c.skew))
		nonce := c.nonce
		if nonce == "" {
			nonce = rand.Text()
		}
		sig := sign.KitSignature(key, nonce, ts, body)
		if c.form == "B" {
			sig = sign.KitSignatureHashed(key, nonce, ts, body)
		}
		h.Set("x-sign", sig)
		h.Set("x-timestamp", ts)
		h.Set("x-nonce", nonce)
	}
	for k, v := range c.header {
		if v == "" {
			h.Del(k)
		} else {
			h.Set(k, v)
		}
	}
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	return e.sendWith(method, e.srv.URL+path, body, h, testKitKey)
}

// kitFixture is a tenant's calls for one generation.
type kitFixture struct {
	v1     bool
	secret string // the clientSecret in clear
	cipher string // the clientSecret encrypted to the seller's key
}

func newKitFixture(t *testing.T, e env, v1 bool) kitFixture {
	t.Helper()
	secret := "client-secret-" + rand.Text()
	ct, err := sign.EncryptClientSecret(e.s.RSAPublicKey(), secret)
	if err != nil {
		t.Fatal(err)
	}
	return kitFixture{v1: v1, secret: secret, cipher: ct}
}

func (f kitFixture) tenant(flag int) map[string]any {
	return map[string]any{"instanceId": "inst-1", "orderId": "CS1", "tenantId": "t-1", "tenantCode": "acme",
		"name": "Acme", "domainName": "https://acme.idp.example.com", "flag": flag}
}

func (f kitFixture) app(flag int) map[string]any {
	return map[string]any{"instanceId": "inst-1", "tenantId": "t-1", "appId": "APP1", "clientId": "client-1",
		"clientSecret": f.cipher, "flag": flag}
}

// users is authSync with users named names (V1: userList as JSON text).
func (f kitFixture) users(flag int, org string, names ...string) map[string]any {
	list := make([]map[string]any, len(names))
	for i, n := range names {
		list[i] = map[string]any{"userName": n, "name": "User " + n, "orgCode": org, "role": "user", "enable": "true",
			"extension": map[string]any{"employeeType": "1"}}
	}
	var userList any = list
	if f.v1 {
		b, _ := json.Marshal(list)
		userList = string(b)
	}
	return map[string]any{"instanceId": "inst-1", "tenantId": "t-1", "appId": "APP1", "userList": userList,
		"currentSyncTime": "20240101000000000", "flag": flag}
}

func (f kitFixture) org(flag int, code, name, parent string) map[string]any {
	return map[string]any{"instanceId": "inst-1", "tenantId": "t-1", "orgCode": code, "orgName": name, "parentCode": parent, "flag": flag}
}

// tree is allOrgSync (V1: orgInfo as JSON text with name).
func (f kitFixture) tree(codes ...string) map[string]any {
	if f.v1 {
		list := make([]map[string]string, len(codes))
		for i, c := range codes {
			list[i] = map[string]string{"orgCode": c, "name": "Dept " + c}
		}
		b, _ := json.Marshal(list)
		return map[string]any{"instanceId": "inst-1", "tenantId": "t-1", "orgInfo": string(b)}
	}
	list := make([]map[string]string, len(codes))
	for i, c := range codes {
		list[i] = map[string]string{"orgCode": c, "orgName": "Dept " + c}
	}
	return map[string]any{"instanceId": "inst-1", "tenantId": "t-1", "orgInfoList": list}
}

// tenantOf returns a copy of the state of tenant id.
func (s *Seller) tenantOf(t *testing.T, id string) (tenant, bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	tn, ok := s.kit.tenants[id]
	if !ok {
		return tenant{}, false
	}
	return *tn, true
}

// TestKitFlow: the five Kit interfaces in both generations, at the root
// and under a production path: the tenant, its app (secret decrypted),
// users and departments follow every call, repeats and deletes of what is
// not there succeed, and every answer is Body-Signed with the Kit key.
func TestKitFlow(t *testing.T) {
	for _, gen := range []struct {
		name    string
		version int
		prefix  string
	}{
		{"v1 at the root", 1, ""},
		{"v1 under /produce", 1, "/produce"},
		{"v2 at the root", 2, ""},
		{"v2 under /produce", 2, "/produce"},
	} {
		t.Run(gen.name, func(t *testing.T) {
			e := start(t, Faults{})
			f := newKitFixture(t, e, gen.version == 1)
			c := kitCall{version: gen.version, prefix: gen.prefix}
			state := func() tenant {
				tn, ok := e.s.tenantOf(t, "t-1")
				if !ok {
					t.Fatal("tenant t-1 is not held")
				}
				return tn
			}
			steps := []struct {
				what  string
				op    string
				body  map[string]any
				check func() string
			}{
				{"tenant added", protocol.KitTenantSync, f.tenant(1), func() string {
					if tn := state(); tn.code != "acme" || tn.domain != "https://acme.idp.example.com" || tn.instanceID != "inst-1" {
						return fmt.Sprintf("tenant %+v", tn)
					}
					return ""
				}},
				{"tenant added again", protocol.KitTenantSync, f.tenant(1), nil},
				{"app added", protocol.KitApplicationSync, f.app(1), func() string {
					if a := state().apps["APP1"]; a.clientID != "client-1" || a.secret != f.secret {
						return "the app's secret is not the decrypted clientSecret"
					}
					return ""
				}},
				{"tree", protocol.KitAllOrgSync, f.tree("A", "B"), func() string {
					if o := state().orgs; len(o) != 2 || o["A"].name != "Dept A" {
						return fmt.Sprintf("orgs %+v", o)
					}
					return ""
				}},
				{"users added", protocol.KitAuthSync, f.users(1, "A", "ann", "bob"), func() string {
					if u := state().users; len(u) != 2 || !u[userKey{"APP1", "bob"}].enable || u[userKey{"APP1", "bob"}].orgCode != "A" {
						return fmt.Sprintf("users %+v", u)
					}
					return ""
				}},
				{"users added again", protocol.KitAuthSync, f.users(1, "A", "ann", "bob"), nil},
				{"user modified", protocol.KitAuthSync, f.users(2, "B", "bob"), func() string {
					if u := state().users[userKey{"APP1", "bob"}]; u.orgCode != "B" {
						return fmt.Sprintf("bob %+v", u)
					}
					return ""
				}},
				{"user revoked", protocol.KitAuthSync, f.users(3, "B", "bob"), func() string {
					if u := state().users[userKey{"APP1", "bob"}]; !u.revoked {
						return "bob is not revoked"
					}
					return ""
				}},
				{"user deleted", protocol.KitAuthSync, f.users(0, "B", "bob"), func() string {
					if _, ok := state().users[userKey{"APP1", "bob"}]; ok {
						return "bob is still held"
					}
					return ""
				}},
				{"unknown user deleted", protocol.KitAuthSync, f.users(0, "B", "nobody"), nil},
				{"department added", protocol.KitSingleOrgSync, f.org(1, "C", "Sales", "A"), func() string {
					if o := state().orgs["C"]; o.parentCode != "A" || o.name != "Sales" {
						return fmt.Sprintf("C %+v", o)
					}
					return ""
				}},
				{"department added again", protocol.KitSingleOrgSync, f.org(1, "C", "Sales", "A"), nil},
				{"department renamed", protocol.KitSingleOrgSync, f.org(2, "C", "Sales EU", "A"), func() string {
					if o := state().orgs["C"]; o.name != "Sales EU" {
						return fmt.Sprintf("C %+v", o)
					}
					return ""
				}},
				{"department deleted", protocol.KitSingleOrgSync, f.org(0, "C", "Sales EU", "A"), func() string {
					if _, ok := state().orgs["C"]; ok {
						return "C is still held"
					}
					return ""
				}},
				{"unknown department deleted", protocol.KitSingleOrgSync, f.org(0, "Z", "Nothing", ""), nil},
				{"app deleted", protocol.KitApplicationSync, f.app(0), func() string {
					if _, ok := state().apps["APP1"]; ok {
						return "APP1 is still held"
					}
					return ""
				}},
				{"tenant deleted", protocol.KitTenantSync, f.tenant(0), func() string {
					if _, ok := e.s.tenantOf(t, "t-1"); ok {
						return "t-1 is still held"
					}
					return ""
				}},
				{"unknown tenant deleted", protocol.KitTenantSync, f.tenant(0), nil},
			}
			for _, st := range steps {
				r := e.kit(c, st.op, st.body)
				checkWire(t, r)
				if r.code != protocol.CodeSuccess {
					t.Fatalf("%s: %s %q, want 000000", st.what, r.code, r.msg)
				}
				if strings.Contains(string(r.raw), f.secret) {
					t.Fatalf("%s: the answer holds the client secret", st.what)
				}
				if st.check != nil {
					if p := st.check(); p != "" {
						t.Fatalf("%s: %s", st.what, p)
					}
				}
			}
		})
	}
}

// TestKitTestAccount: tenantSync, applicationSync and allOrgSync with
// empty instanceId and orderId succeed (§B.7).
func TestKitTestAccount(t *testing.T) {
	e := start(t, Faults{})
	f := newKitFixture(t, e, false)
	for _, call := range []struct {
		op   string
		body map[string]any
	}{
		{protocol.KitTenantSync, f.tenant(1)}, {protocol.KitApplicationSync, f.app(1)}, {protocol.KitAllOrgSync, f.tree("A")},
	} {
		call.body["instanceId"] = ""
		if _, ok := call.body["orderId"]; ok {
			call.body["orderId"] = ""
		}
		r := e.kit(kitCall{version: 2}, call.op, call.body)
		checkWire(t, r)
		mustCode(t, r, protocol.CodeSuccess)
	}
	if tn, ok := e.s.tenantOf(t, "t-1"); !ok || tn.instanceID != "" || tn.apps["APP1"].secret != f.secret || len(tn.orgs) != 1 {
		t.Errorf("test tenant %+v, want held without an instance, with its app and one department", tn)
	}
}

// TestKitAuth: Kit calls that fail authentication answer 000001 and
// change nothing; both x-sign forms, either case, are accepted.
func TestKitAuth(t *testing.T) {
	tests := []struct {
		name string
		call kitCall
		code protocol.ResultCode
	}{
		{"v1 good", kitCall{version: 1}, protocol.CodeSuccess},
		{"v1 without authToken", kitCall{version: 1, header: map[string]string{"authToken": ""}}, protocol.CodeAuthFailed},
		{"v1 bad authToken", kitCall{version: 1, header: map[string]string{"authToken": "AAAA"}}, protocol.CodeAuthFailed},
		{"v1 signed with the basic key", kitCall{version: 1, key: testKey}, protocol.CodeAuthFailed},
		{"v1 stale timeStamp (no window)", kitCall{version: 1}, protocol.CodeSuccess},
		{"v2 form A", kitCall{version: 2}, protocol.CodeSuccess},
		{"v2 form B", kitCall{version: 2, form: "B"}, protocol.CodeSuccess},
		{"v2 signed with the basic key", kitCall{version: 2, key: testKey}, protocol.CodeAuthFailed},
		{"v2 bad x-sign", kitCall{version: 2, header: map[string]string{"x-sign": strings.Repeat("0", 64)}}, protocol.CodeAuthFailed},
		{"v2 without x-sign", kitCall{version: 2, header: map[string]string{"x-sign": ""}}, protocol.CodeAuthFailed},
		{"v2 without x-timestamp", kitCall{version: 2, header: map[string]string{"x-timestamp": ""}}, protocol.CodeAuthFailed},
		{"v2 without x-nonce", kitCall{version: 2, header: map[string]string{"x-nonce": ""}}, protocol.CodeAuthFailed},
		{"v2 x-timestamp 2 minutes old", kitCall{version: 2, skew: -2 * time.Minute}, protocol.CodeAuthFailed},
		{"v2 x-timestamp 2 minutes ahead", kitCall{version: 2, skew: 2 * time.Minute}, protocol.CodeAuthFailed},
		{"v2 x-timestamp 30 s old", kitCall{version: 2, skew: -30 * time.Second}, protocol.CodeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, Faults{})
			f := newKitFixture(t, e, tt.call.version == 1)
			body := f.tenant(1)
			if strings.Contains(tt.name, "stale timeStamp") {
				body["timeStamp"] = "20200101000000000"
			}
			r := e.kit(tt.call, protocol.KitTenantSync, body)
			checkWire(t, r)
			if r.code != tt.code {
				t.Errorf("answered %s %q, want %s", r.code, r.msg, tt.code)
			}
			if _, held := e.s.tenantOf(t, "t-1"); held != (tt.code == protocol.CodeSuccess) {
				t.Errorf("tenant held: %v after %s", held, r.code)
			}
		})
	}
	t.Run("v2 upper-case x-sign", func(t *testing.T) {
		e := start(t, Faults{})
		body := []byte(`{"instanceId":"i","tenantId":"t-1","orgInfoList":[],"testFlag":0,"timeStamp":"20240101000000000"}`)
		ts, nonce := millis(time.Now()), "nonce-upper"
		sig := strings.ToUpper(sign.KitSignature(testKitKey, nonce, ts, body))
		r := e.kitRaw(kitCall{version: 2, header: map[string]string{"x-sign": sig, "x-timestamp": ts, "x-nonce": nonce}}, protocol.KitAllOrgSync, body)
		mustCode(t, r, protocol.CodeSuccess)
	})
	t.Run("v2 replayed x-nonce", func(t *testing.T) {
		e := start(t, Faults{})
		f := newKitFixture(t, e, false)
		c := kitCall{version: 2, nonce: "replayed-nonce"}
		mustCode(t, e.kit(c, protocol.KitAllOrgSync, f.tree("A")), protocol.CodeSuccess)
		r := e.kit(c, protocol.KitAllOrgSync, f.tree("A", "B"))
		checkWire(t, r)
		mustCode(t, r, protocol.CodeAuthFailed)
		if tn, _ := e.s.tenantOf(t, "t-1"); len(tn.orgs) != 1 {
			t.Errorf("the replay changed the tree: %+v", tn.orgs)
		}
	})
}

// TestKitRefusals: malformed or unacceptable Kit calls get 000002 with a
// message naming the field, and change nothing.
func TestKitRefusals(t *testing.T) {
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprintf("user-%03d", i)
	}
	junk := make([]byte, 384)
	_, _ = rand.Read(junk)
	tests := []struct {
		name   string
		op     string
		call   kitCall
		body   func(f kitFixture) map[string]any
		field  string
		method string
	}{
		{"501 users", protocol.KitAuthSync, kitCall{version: 2}, func(f kitFixture) map[string]any { return f.users(1, "A", many...) }, "userList", ""},
		{"501 users, v1", protocol.KitAuthSync, kitCall{version: 1}, func(f kitFixture) map[string]any { return f.users(1, "A", many...) }, "userList", ""},
		{"undecryptable clientSecret", protocol.KitApplicationSync, kitCall{version: 2}, func(f kitFixture) map[string]any {
			b := f.app(1)
			b["clientSecret"] = base64.StdEncoding.EncodeToString(junk)
			return b
		}, "clientSecret", ""},
		{"clientSecret not base64", protocol.KitApplicationSync, kitCall{version: 1}, func(f kitFixture) map[string]any {
			b := f.app(1)
			b["clientSecret"] = "not base64 at all!"
			return b
		}, "clientSecret", ""},
		{"missing tenantId", protocol.KitTenantSync, kitCall{version: 2}, func(f kitFixture) map[string]any {
			b := f.tenant(1)
			delete(b, "tenantId")
			return b
		}, "tenantId", ""},
		{"flag 7", protocol.KitSingleOrgSync, kitCall{version: 2}, func(f kitFixture) map[string]any { return f.org(7, "A", "A", "") }, "flag", ""},
		{"missing flag", protocol.KitTenantSync, kitCall{version: 1}, func(f kitFixture) map[string]any {
			b := f.tenant(1)
			delete(b, "flag")
			return b
		}, "flag", ""},
		{"user without role", protocol.KitAuthSync, kitCall{version: 2}, func(f kitFixture) map[string]any {
			b := f.users(1, "A", "ann")
			b["userList"] = []map[string]any{{"userName": "ann", "name": "Ann", "orgCode": "A", "enable": "true"}}
			return b
		}, "role", ""},
		{"GET on a Kit path", protocol.KitTenantSync, kitCall{version: 2}, func(f kitFixture) map[string]any { return f.tenant(1) }, "POST", http.MethodGet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, Faults{})
			f := newKitFixture(t, e, tt.call.version == 1)
			tt.call.method = tt.method
			r := e.kit(tt.call, tt.op, tt.body(f))
			checkWire(t, r)
			if r.code != protocol.CodeInvalidParam || !strings.Contains(r.msg, tt.field) {
				t.Errorf("answered %s %q, want 000002 naming %q", r.code, r.msg, tt.field)
			}
			if tn, ok := e.s.tenantOf(t, "t-1"); ok {
				t.Errorf("a refused call made tenant t-1: %+v", tn)
			}
		})
	}
}
