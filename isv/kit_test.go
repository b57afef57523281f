package isv_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/isv"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// kitKey is the key bound to the joint-operation sync interfaces in these
// tests; the basic key (key1) must not verify Kit calls.
const kitKey = "kit-key-0123456789abcdef"

// kitRSA is the seller's key pair of the app credential. The service does
// not check its size; 2048 bits keep the tests fast.
var kitRSA = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// kitEnv is a server with a Kit key, the RSA key and a recording
// provisioner.
func kitEnv(t *testing.T) (*env, *recordingProvisioner) {
	t.Helper()
	return v1Env(t, func(c *isv.Config) {
		c.Keys.Kit = []string{kitKey}
		c.RSAPrivateKey = kitRSA
	})
}

// kitRequest is one Kit call; the zero value of the options is a good
// call signed with kitKey now.
type kitRequest struct {
	gen    int    // 1: authToken header, 2: x-sign headers
	prefix string // "" (the root) or "/produce"
	op     string
	body   string

	key       string        // instead of kitKey
	skew      time.Duration // added to x-timestamp
	nonce     string        // instead of a fresh one
	hashed    bool          // x-sign form B
	omit      string        // header left out
	badSign   bool          // a signature that does not verify
	method    string        // instead of POST
	token     string        // a V1 authToken sent as is (for bodies it cannot be computed over)
	extraHead [2]string     // one more header
}

// kitTS is a Kit timeStamp (GMT+8, yyyyMMddHHmmssSSS) of now.
func kitTS() string {
	return strings.Replace(time.Now().In(time.FixedZone("UTC+8", 8*3600)).Format("20060102150405.000"), ".", "", 1)
}

func (e *env) kit(t testing.TB, kr kitRequest) *result {
	t.Helper()
	key := kr.key
	if key == "" {
		key = kitKey
	}
	path := kr.prefix + "/produceAPI/" + kr.op
	if kr.gen == 2 {
		path = kr.prefix + "/produceAPI/v2/" + kr.op
	}
	method := kr.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(kr.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch kr.gen {
	case 1:
		token := kr.token
		if token == "" {
			var err error
			if token, err = sign.AuthTokenJSON(key, []byte(kr.body)); err != nil {
				t.Fatalf("authToken of %s: %v", kr.body, err)
			}
		}
		if kr.badSign {
			token = "AAAA" + token[4:]
		}
		req.Header.Set("authToken", token)
	case 2:
		nonce := kr.nonce
		if nonce == "" {
			nonce = randomNonce(t)
		}
		stamp := strconv.FormatInt(time.Now().Add(kr.skew).UnixMilli(), 10)
		sig := sign.KitSignature(key, nonce, stamp, []byte(kr.body))
		if kr.hashed {
			sig = sign.KitSignatureHashed(key, nonce, stamp, []byte(kr.body))
		}
		if kr.badSign {
			sig = strings.Repeat("0", len(sig))
		}
		req.Header.Set("x-sign", sig)
		req.Header.Set("x-timestamp", stamp)
		req.Header.Set("x-nonce", nonce)
	}
	if kr.omit != "" {
		req.Header.Del(kr.omit)
	}
	if kr.extraHead[0] != "" {
		req.Header.Add(kr.extraHead[0], kr.extraHead[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &result{status: resp.StatusCode, header: resp.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: reply is not JSON: %s", method, path, raw)
	}
	return r
}

func kitBody(t testing.TB, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tenantBody(t testing.TB, flag int, name string) string {
	return kitBody(t, map[string]any{"instanceId": "inst-1", "orderId": "CS1", "tenantId": "t-0001", "tenantCode": "acme",
		"name": name, "domainName": "https://acme.example-idp.com", "flag": flag, "testFlag": 0, "timeStamp": kitTS()})
}

func appBody(t testing.TB, flag int, secret string) string {
	enc, err := sign.EncryptClientSecret(&kitRSA.PublicKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	return kitBody(t, map[string]any{"instanceId": "inst-1", "tenantId": "t-0001", "appId": "APP1", "clientId": "client-1",
		"clientSecret": enc, "flag": flag, "testFlag": 0, "timeStamp": kitTS()})
}

// usersJSON is a userList of n users; the first has a mobile number and an
// e-mail address, the second nests extension fields.
func usersJSON(t testing.TB, n int, org string) string {
	users := make([]map[string]any, n)
	for i := range users {
		users[i] = map[string]any{"userName": fmt.Sprintf("user%03d", i), "name": fmt.Sprintf("User %d", i),
			"orgCode": org, "role": "user", "enable": "true"}
	}
	users[0]["mobile"], users[0]["email"], users[0]["role"] = "13912345678", "first@example.com", "admin"
	if n > 1 {
		users[1]["extension"] = map[string]any{"employeeType": "2", "workPlace": "Shenzhen"}
	}
	b, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func authBody(t testing.TB, flag int, userList any) string {
	return kitBody(t, map[string]any{"instanceId": "inst-1", "tenantId": "t-0001", "appId": "APP1", "userList": userList,
		"currentSyncTime": kitTS(), "flag": flag, "testFlag": 0, "timeStamp": kitTS()})
}

func orgBody(t testing.TB, flag int, code, name, parent string) string {
	return kitBody(t, map[string]any{"instanceId": "inst-1", "tenantId": "t-0001", "orgCode": code, "orgName": name,
		"parentCode": parent, "flag": flag, "testFlag": 0, "timeStamp": kitTS()})
}

// kitEvents waits for n Kit events (types with a dot and no "instance."
// prefix) and returns their "seq:type".
func kitEvents(t testing.TB, rec *recordingProvisioner, n int) []string {
	t.Helper()
	var got []string
	eventually(t, fmt.Sprintf("%d Kit events", n), func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		got = got[:0]
		for _, ev := range rec.events {
			if ev.Seq > 0 {
				got = append(got, fmt.Sprintf("%d:%s", ev.Seq, ev.Type))
			}
		}
		return len(got) >= n
	})
	return got
}

// TestKitBind drives a whole enterprise binding over HTTP, alternating
// the two generations and the two places the Kit is served, and checks
// what the vendor heard, what is stored and what the ledger keeps.
func TestKitBind(t *testing.T) {
	e, rec := kitEnv(t)
	steps := []struct {
		name string
		kr   kitRequest
	}{
		{"tenantSync V1 at the root", kitRequest{gen: 1, op: "tenantSync", body: tenantBody(t, 1, "Acme")}},
		{"applicationSync V2 under /produce", kitRequest{gen: 2, prefix: "/produce", op: "applicationSync", body: appBody(t, 1, "client-secret-1")}},
		{"allOrgSync V1 (orgInfo text with name)", kitRequest{gen: 1, op: "allOrgSync", body: kitBody(t, map[string]any{
			"instanceId": "inst-1", "tenantId": "t-0001", "testFlag": 0, "timeStamp": kitTS(),
			"orgInfo": `[{"orgCode":"1","name":"HQ","parentCode":""},{"orgCode":"2","name":"R&D","parentCode":"1"}]`})}},
		{"authSync V1, 500 users as JSON text", kitRequest{gen: 1, op: "authSync", body: authBody(t, 1, usersJSON(t, 500, "2"))}},
		{"singleOrgSync V2, form B", kitRequest{gen: 2, op: "singleOrgSync", hashed: true, body: orgBody(t, 1, "3", "Go", "2")}},
		{"authSync V2 revoke, userList array", kitRequest{gen: 2, prefix: "/produce", op: "authSync",
			body: authBody(t, 3, []map[string]any{{"userName": "user001"}})}},
	}
	for _, s := range steps {
		r := e.kit(t, s.kr)
		checkReply(t, r, http.StatusOK, kitKey)
		if r.code() != "000000" {
			t.Fatalf("%s: %s %s", s.name, r.code(), r.msg())
		}
	}
	want := []string{"1:tenant.created", "2:app.created", "3:orgs.replaced", "4:users.authorized", "5:org.created", "6:users.revoked"}
	if got := kitEvents(t, rec, len(want)); !slices.Equal(got, want) {
		t.Fatalf("the vendor heard %v, want %v", got, want)
	}

	// A repeat of the authorisation answers the same and tells nothing.
	r := e.kit(t, kitRequest{gen: 2, op: "authSync", body: authBody(t, 1, usersJSON(t, 500, "2"))})
	checkReply(t, r, http.StatusOK, kitKey)
	wantCode(t, r, protocol.CodeSuccess)

	ctx := context.Background()
	users, err := e.st.TenantUsers(ctx, "t-0001")
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 500 {
		t.Fatalf("%d users stored, want 500", len(users))
	}
	// user001 was revoked and authorised again by the repeat of the add.
	if u := users[1]; u.UserName != "user001" || u.Revoked || u.EmployeeType != 2 || u.WorkPlace != "Shenzhen" {
		t.Errorf("user001 stored as %+v: want authorised again, extension fields read", u)
	}
	if got := kitEvents(t, rec, 7); got[6] != "7:users.authorized" {
		t.Errorf("authorising a revoked user again: %v", got)
	}

	// The ledger: each call with its family and tenant, personal data and
	// the secret masked.
	calls := e.calls(t, len(steps)+1)
	for _, c := range calls {
		if c.TenantID != "t-0001" || (c.Interface != "kit-v1" && c.Interface != "kit-v2") {
			t.Errorf("ledger row %s %s: tenant %q interface %q", c.Activity, c.ResultCode, c.TenantID, c.Interface)
		}
		for _, leak := range []string{"13912345678", "first@example.com", "client-secret-1"} {
			if strings.Contains(c.Request, leak) || strings.Contains(c.Response, leak) {
				t.Errorf("ledger row %s holds %q", c.Activity, leak)
			}
		}
	}
	if got, _ := e.st.Calls(ctx, store.CallFilter{TenantID: "t-0001", Limit: 100}); len(got) != len(calls) {
		t.Errorf("calls of the tenant: %d, want %d", len(got), len(calls))
	}
	if logs := e.logs.String(); strings.Contains(logs, "13912345678") || strings.Contains(logs, "client-secret-1") {
		t.Error("the log holds a mobile number or the client secret")
	}
}

// TestKitRefusals: every bad Kit call is refused with the right code, a
// message naming the problem, and a Body-Sign made with the Kit key; none
// writes anything.
func TestKitRefusals(t *testing.T) {
	e, _ := kitEnv(t)
	good := tenantBody(t, 1, "Acme")
	replayed := randomNonce(t)
	first := e.kit(t, kitRequest{gen: 2, op: "tenantSync", body: tenantBody(t, 1, "First"), nonce: replayed})
	wantCode(t, first, protocol.CodeSuccess)
	many := usersJSON(t, 501, "1")

	tests := []struct {
		name string
		kr   kitRequest
		code protocol.ResultCode
		msg  string
	}{
		{"V1 without authToken", kitRequest{gen: 1, op: "tenantSync", body: good, omit: "authToken"}, protocol.CodeAuthFailed, "missing header authToken"},
		{"V1 bad authToken", kitRequest{gen: 1, op: "tenantSync", body: good, badSign: true}, protocol.CodeAuthFailed, "signature mismatch"},
		{"V1 signed with the basic key", kitRequest{gen: 1, op: "tenantSync", body: good, key: key1}, protocol.CodeAuthFailed, "signature mismatch"},
		{"V1 authToken twice", kitRequest{gen: 1, op: "tenantSync", body: good, extraHead: [2]string{"authToken", "x"}}, protocol.CodeAuthFailed, "authToken"},
		{"V2 without x-sign", kitRequest{gen: 2, op: "tenantSync", body: good, omit: "x-sign"}, protocol.CodeAuthFailed, "x-sign"},
		{"V2 bad x-sign", kitRequest{gen: 2, op: "tenantSync", body: good, badSign: true}, protocol.CodeAuthFailed, "signature mismatch"},
		{"V2 signed with the basic key", kitRequest{gen: 2, op: "tenantSync", body: good, key: key1}, protocol.CodeAuthFailed, "signature mismatch"},
		{"V2 stale x-timestamp", kitRequest{gen: 2, op: "tenantSync", body: good, skew: -2 * time.Minute}, protocol.CodeAuthFailed, "stale timestamp"},
		{"V2 future x-timestamp", kitRequest{gen: 2, op: "tenantSync", body: good, skew: 2 * time.Minute}, protocol.CodeAuthFailed, "future"},
		{"V2 replayed x-nonce", kitRequest{gen: 2, op: "tenantSync", body: good, nonce: replayed}, protocol.CodeAuthFailed, "replayed nonce"},
		{"501 users", kitRequest{gen: 2, op: "authSync", body: authBody(t, 1, many)}, protocol.CodeInvalidParam, "userList"},
		{"secret not for our key", kitRequest{gen: 2, op: "applicationSync", body: strings.Replace(appBody(t, 1, "x"),
			`"clientSecret":"`, `"clientSecret":"QUJD`, 1)}, protocol.CodeInvalidParam, "clientSecret"},
		{"V1 duplicate key", kitRequest{gen: 1, op: "tenantSync", token: "dG9rZW4=", body: strings.Replace(good, `"flag":1`, `"flag":1,"flag":0`, 1)}, protocol.CodeInvalidParam, "flag"},
		{"V1 body not an object", kitRequest{gen: 1, op: "tenantSync", token: "dG9rZW4=", body: `[1]`}, protocol.CodeInvalidParam, ""},
		{"duplicate key", kitRequest{gen: 2, op: "tenantSync", body: strings.Replace(good, `"flag":1`, `"flag":1,"flag":0`, 1)}, protocol.CodeInvalidParam, "flag"},
		{"flag 5", kitRequest{gen: 1, op: "tenantSync", body: strings.Replace(good, `"flag":1`, `"flag":5`, 1)}, protocol.CodeInvalidParam, "flag"},
		{"tenantId missing", kitRequest{gen: 2, op: "tenantSync", body: strings.Replace(good, `"tenantId":"t-0001"`, `"tenantId":""`, 1)}, protocol.CodeInvalidParam, "tenantId"},
		{"department its own ancestor", kitRequest{gen: 2, op: "allOrgSync", body: kitBody(t, map[string]any{
			"tenantId": "t-0001", "testFlag": 0, "timeStamp": kitTS(),
			"orgInfoList": []map[string]string{{"orgCode": "a", "orgName": "A", "parentCode": "b"}, {"orgCode": "b", "orgName": "B", "parentCode": "a"}}})},
			protocol.CodeInvalidParam, "parentCode"},
		{"not JSON", kitRequest{gen: 2, op: "tenantSync", body: `{"tenantId":`}, protocol.CodeInvalidParam, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.kit(t, tt.kr)
			checkReply(t, r, http.StatusOK, kitKey)
			wantCode(t, r, tt.code)
			if !strings.Contains(r.msg(), tt.msg) {
				t.Errorf("message %q does not say %q", r.msg(), tt.msg)
			}
		})
	}
	// Refusals are labelled with the operation the path names, whatever
	// the body says.
	bogus := e.kit(t, kitRequest{gen: 2, op: "authSync", badSign: true, body: `{"activity":"newInstance"}`})
	wantCode(t, bogus, protocol.CodeAuthFailed)
	var labelled bool
	for _, c := range e.calls(t, len(tests)+2) {
		if c.Interface == "kit-v2" && c.ResultCode == "000001" && c.Activity == "newInstance" {
			t.Errorf("a Kit call labelled %s in the ledger", c.Activity)
		}
		labelled = labelled || (c.Interface == "kit-v2" && c.Activity == "authSync" && c.ResultCode == "000001")
	}
	if !labelled {
		t.Error("no refused authSync in the ledger")
	}
	ts, err := e.st.Tenant(context.Background(), "t-0001")
	if err != nil || ts.Name != "First" {
		t.Errorf("after the refusals the tenant is %+v, %v; want the first call's", ts, err)
	}
	if apps, _ := e.st.TenantApps(context.Background(), "t-0001"); len(apps) != 0 {
		t.Errorf("a refused applicationSync stored %d apps", len(apps))
	}
	if users, _ := e.st.TenantUsers(context.Background(), "t-0001"); len(users) != 0 {
		t.Errorf("a refused authSync stored %d users", len(users))
	}

	// The Kit paths belong to the Kit: GET gets 405, an unknown operation 404.
	r := e.kit(t, kitRequest{gen: 2, op: "tenantSync", body: good, method: http.MethodGet})
	checkReply(t, r, http.StatusMethodNotAllowed, kitKey)
	r = e.kit(t, kitRequest{gen: 2, op: "userSync", body: good})
	checkReply(t, r, http.StatusNotFound, key1)
}

// TestKitTestAccount: the seller's test account comes without an
// instance or an order, with testFlag 1, and its events go to the test
// provisioner marked as tests.
func TestKitTestAccount(t *testing.T) {
	e, rec := kitEnv(t)
	for _, kr := range []kitRequest{
		{gen: 2, op: "tenantSync", body: kitBody(t, map[string]any{"instanceId": "", "orderId": "", "tenantId": "t-test",
			"tenantCode": "isv-test", "name": "Test tenant", "domainName": "https://test.example-idp.com", "flag": 1, "testFlag": 1, "timeStamp": kitTS()})},
		{gen: 2, op: "applicationSync", body: strings.NewReplacer(`"instanceId":"inst-1"`, `"instanceId":""`, `"tenantId":"t-0001"`, `"tenantId":"t-test"`,
			`"testFlag":0`, `"testFlag":1`).Replace(appBody(t, 1, "s"))},
		{gen: 2, op: "allOrgSync", body: kitBody(t, map[string]any{"instanceId": "", "tenantId": "t-test", "testFlag": 1, "timeStamp": kitTS(),
			"orgInfoList": `[{"orgCode":"1","orgName":"HQ","parentCode":""}]`})},
		{gen: 2, op: "authSync", body: kitBody(t, map[string]any{"instanceId": "", "tenantId": "t-test", "appId": "APP1",
			"userList":        []map[string]any{{"userName": "isv-test", "name": "Test", "orgCode": "1", "role": "admin", "enable": true}},
			"currentSyncTime": kitTS(), "flag": 1, "testFlag": 1, "timeStamp": kitTS()})},
	} {
		r := e.kit(t, kr)
		checkReply(t, r, http.StatusOK, kitKey)
		wantCode(t, r, protocol.CodeSuccess)
	}
	got := kitEvents(t, rec, 4)
	if want := []string{"1:tenant.created", "2:app.created", "3:orgs.replaced", "4:users.authorized"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, ev := range rec.events {
		if ev.Seq > 0 && !ev.Test {
			t.Errorf("%s of the test account not marked as a test", ev.Type)
		}
	}
}

// TestKitSpecVectors checks the spec's Kit V1 vector against the server:
// the tenantSync body of saas-v1-joint-login.md §A.2 with its printed
// authToken is accepted with the spec's key (the V1 timeStamp is held to
// no window). The Kit V2 x-sign vector of saas-v2.md §2.5 carries a fixed
// x-timestamp, stale by now: protocol/sign tests it.
func TestKitSpecVectors(t *testing.T) {
	const specKey = "9fa6c870-8bb0-4e9b-b71e-4c223300156f"
	e, _ := v1Env(t, func(c *isv.Config) { c.Keys.Kit = []string{specKey}; c.RSAPrivateKey = kitRSA })
	body := `{"instanceId":"inst-0001","orderId":"CS1906666666ABCDE","tenantId":"tenant-0001","tenantCode":"acme","name":"Acme Ltd","domainName":"https://acme.example.com","flag":1,"testFlag":1,"timeStamp":"20220413093539534"}`
	req, err := http.NewRequest(http.MethodPost, e.http.URL+"/produceAPI/tenantSync", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("authToken", "5huRzM3l2BOGS4G4vF86rodGA/1errQz3NQU62E1inY=")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), `"resultCode":"000000"`) {
		t.Fatalf("the spec's tenantSync with its printed authToken: %s", raw)
	}
	if err := sign.VerifyBodySign(specKey, resp.Header.Get(sign.BodySignHeader), raw); err != nil {
		t.Errorf("Body-Sign: %v", err)
	}
	if got, err := e.st.Tenant(context.Background(), "tenant-0001"); err != nil || got.Name != "Acme Ltd" || !got.Test {
		t.Errorf("stored tenant %+v, %v", got, err)
	}
}

// TestKitPaths: the pipeline answers every Kit path, at the root and under
// the production path, and the production path's own route is untouched.
func TestKitPaths(t *testing.T) {
	e, _ := kitEnv(t)
	paths := e.srv.Paths()
	for _, op := range []string{"tenantSync", "applicationSync", "authSync", "singleOrgSync", "allOrgSync"} {
		for _, p := range []string{"/produceAPI/" + op, "/produceAPI/v2/" + op, "/produce/produceAPI/" + op, "/produce/produceAPI/v2/" + op} {
			if !slices.Contains(paths, p) {
				t.Errorf("%s not served (paths %v)", p, paths)
			}
		}
	}
	// A V2 basic call still reaches the production path.
	r := e.call(t, `{"activity":"queryInstance","instanceId":"none","testFlag":"1"}`, request{})
	wantCode(t, r, protocol.CodeInstanceNotFound)
}

// TestKitBodyCap: an authSync of 500 users with every field filled is
// larger than the basic interfaces' cap and is taken; a body beyond the
// Kit's own cap is refused, signed with the Kit key.
func TestKitBodyCap(t *testing.T) {
	e, _ := kitEnv(t)
	users := make([]map[string]any, 500)
	for i := range users {
		users[i] = map[string]any{"userName": fmt.Sprintf("user-with-a-long-login-name-%03d", i), "name": strings.Repeat("名", 40),
			"orgCode": "ORG-RESEARCH-AND-DEVELOPMENT-PLATFORM", "role": "user", "enable": "true", "position": strings.Repeat("p", 100),
			"employeeCode": "E-0000000000", "employeeType": "1", "workPlace": strings.Repeat("w", 100), "entryDate": "2024-3-1",
			"mobile": "13912345678", "email": fmt.Sprintf("user-%03d@a-rather-long-domain.example.com", i)}
	}
	list, err := json.Marshal(users)
	if err != nil {
		t.Fatal(err)
	}
	body := authBody(t, 1, string(list))
	if len(body) <= isv.DefaultMaxBodyBytes {
		t.Fatalf("test body of %d bytes does not exceed the basic cap", len(body))
	}
	r := e.kit(t, kitRequest{gen: 1, op: "authSync", body: body})
	checkReply(t, r, http.StatusOK, kitKey)
	wantCode(t, r, protocol.CodeSuccess)

	huge := authBody(t, 1, strings.Repeat(" ", 2<<20)+"[]")
	r = e.kit(t, kitRequest{gen: 2, op: "authSync", body: huge})
	checkReply(t, r, http.StatusOK, kitKey)
	wantCode(t, r, protocol.CodeInvalidParam)
	if !strings.Contains(r.msg(), "larger than 2097152 bytes") {
		t.Errorf("message %q", r.msg())
	}
	// The basic interfaces keep their cap.
	r = e.call(t, `{"activity":"queryInstance","instanceId":"`+strings.Repeat("x", isv.DefaultMaxBodyBytes)+`"}`, request{})
	wantCode(t, r, protocol.CodeInvalidParam)
}
