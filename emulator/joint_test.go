package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/testseller"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

const (
	testKitKey = "EmulatorKitKey-fedcba9876543210"
	jointID    = "OFFI-EMU-JOINT"
	v1ID       = "OFFI-EMU-V1"
)

// testRSA is the seller's key pair of these tests: 2048 bits, the least
// sign accepts, to keep the tests quick.
var testRSA = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// kitReceived is one request as the seller got it.
type kitReceived struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// kitRecorder keeps every request before passing it on.
type kitRecorder struct {
	mu   sync.Mutex
	reqs []kitReceived
	next http.Handler
}

func (rc *kitRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	q, _ := url.ParseQuery(r.URL.RawQuery)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, kitReceived{Method: r.Method, Path: r.URL.Path, Query: q, Header: r.Header.Clone(), Body: body})
	rc.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	rc.next.ServeHTTP(w, r)
}

// since returns the requests kitReceived after the first n.
func (rc *kitRecorder) since(n int) []kitReceived {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs[n:])
}

func (rc *kitRecorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// startJoint runs a testseller with a Kit key and the test RSA key behind
// a kitRecorder, and an emulator that knows the seller's public key.
func startJoint(t *testing.T, adjust func(*Config)) (env, *kitRecorder) {
	t.Helper()
	s := testseller.NewWithKeys(testseller.Keys{Basic: testKey, Kit: testKitKey, RSA: testRSA()}, testseller.Faults{})
	rc := &kitRecorder{next: s}
	v := start(t, rc, func(c *Config) {
		c.KitKey = testKitKey
		c.SellerPublicKey = &testRSA().PublicKey
		if adjust != nil {
			adjust(c)
		}
	})
	return v, rc
}

// okRun fails the test unless run succeeded with n messages.
func okRun(t *testing.T, what string, run Run, n int) {
	t.Helper()
	if !run.OK || len(run.Messages) != n {
		t.Fatalf("%s: ok=%v, %d messages (want %d): %s", what, run.OK, len(run.Messages), n, run.Err)
	}
}

// verifyV1 checks a V1 GET as a seller does: the authToken over the
// URL-decoded query with the basic key (and not with the Kit key).
func verifyV1(t *testing.T, r kitReceived) {
	t.Helper()
	if r.Method != http.MethodGet || r.Path != "/produce" || len(r.Body) != 0 {
		t.Errorf("V1 call: %s %s with %d body bytes, want GET /produce without a body", r.Method, r.Path, len(r.Body))
	}
	if err := sign.VerifyAuthTokenQuery(testKey, r.Query); err != nil {
		t.Errorf("V1 %s: authToken does not verify with the basic key: %v", r.Query.Get("activity"), err)
	}
	if err := sign.VerifyAuthTokenQuery(testKitKey, r.Query); err == nil {
		t.Errorf("V1 %s: authToken verifies with the Kit key", r.Query.Get("activity"))
	}
	if _, err := protocol.ParseTime17(r.Query.Get("timeStamp")); err != nil {
		t.Errorf("V1 timeStamp %q: %v", r.Query.Get("timeStamp"), err)
	}
}

// verifyKit checks a Kit POST as a seller does, with the Kit key: the
// authToken header (V1) or x-sign in the given form (V2), the path at the
// root, and the body against the spec table.
func verifyKit(t *testing.T, r kitReceived, version int, form KitSignForm, base string) protocol.KitRequest {
	t.Helper()
	name, gotVersion, ok := protocol.KitOperation(r.Path)
	prefix := base + "/produceAPI/"
	if version == 2 {
		prefix += "v2/"
	}
	if r.Method != http.MethodPost || !ok || gotVersion != version || r.Path != prefix+name {
		t.Fatalf("Kit call %s %s: want POST %s<name>", r.Method, r.Path, prefix)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", name, ct)
	}
	if version == 1 {
		if err := sign.VerifyAuthTokenJSON(testKitKey, r.Header.Get("authToken"), r.Body); err != nil {
			t.Errorf("%s: authToken header does not verify with the Kit key: %v", name, err)
		}
		if r.Header.Get("x-sign") != "" {
			t.Errorf("%s: a V1 Kit call carries x-sign", name)
		}
	} else {
		ts, nonce := r.Header.Get("x-timestamp"), r.Header.Get("x-nonce")
		want := sign.KitSignature(testKitKey, nonce, ts, r.Body)
		if form == KitFormB {
			want = sign.KitSignatureHashed(testKitKey, nonce, ts, r.Body)
		}
		if got := r.Header.Get("x-sign"); got != want || nonce == "" {
			t.Errorf("%s: x-sign %q, want form %s %q (nonce %q)", name, got, form, want, nonce)
		}
		if _, err := protocol.ParseMillis(ts); err != nil {
			t.Errorf("%s: x-timestamp %q: %v", name, ts, err)
		}
	}
	req, err := protocol.DecodeKit(name, r.Body)
	if err != nil {
		t.Fatalf("%s: decode %s: %v", name, r.Body, err)
	}
	if err := req.Validate(); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	return req
}

// getTenant reads a tenant through the JSON API over HTTP.
func getTenant(t *testing.T, api *httptest.Server, id string) Tenant {
	t.Helper()
	resp, err := http.Get(api.URL + "/api/emulator/tenants/" + url.PathEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET tenants/%s: %d %s", id, resp.StatusCode, b)
	}
	var tn Tenant
	if err := json.NewDecoder(resp.Body).Decode(&tn); err != nil {
		t.Fatal(err)
	}
	return tn
}

// play plays a scenario through the JSON API over HTTP.
func apiPlay(t *testing.T, api *httptest.Server, subID string, body string) (int, Run, string) {
	t.Helper()
	resp, err := http.Post(api.URL+"/api/emulator/subscriptions/"+subID+"/play", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var run Run
	_ = json.Unmarshal(b, &run)
	return resp.StatusCode, run, string(b)
}

func TestV1Lifecycle(t *testing.T) {
	v, rc := startJoint(t, nil)
	cipher, err := sign.NewCredentialCipher(testKey, "1")
	if err != nil {
		t.Fatal(err)
	}
	n := rc.count()
	run, sub := v.purchase(PurchaseRequest{ProductID: v1ID})
	okRun(t, "purchase", run, 1)
	reqs := rc.since(n)
	if len(reqs) != 1 {
		t.Fatalf("%d requests for the purchase", len(reqs))
	}
	verifyV1(t, reqs[0])
	q := reqs[0].Query
	for name, want := range map[string]string{
		"activity": "newInstance", "orderId": sub.OrderID, "productId": v1ID, "skuCode": "SKU-EMU-V1-MONTH",
		"chargingMode": "1", "periodType": "month", "periodNumber": "1", "amount": "1", "customerName": "emulator-buyer",
		"expireTime": protocol.FormatTime14(sub.ExpireTime),
	} {
		if got := q.Get(name); got != want {
			t.Errorf("newInstance %s = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{"mobilePhone": v1BuyerMobile, "email": v1BuyerEmail} {
		if got, err := cipher.Decrypt(q.Get(name)); err != nil || got != want {
			t.Errorf("newInstance %s decrypts to %q (%v), want %q", name, got, err, want)
		}
	}
	if params, err := protocol.DecodeSaaSExtendParams(q.Get("saasExtendParams")); err != nil || !slices.Equal(params, v1ExtendParams) {
		t.Errorf("saasExtendParams = %v (%v), want %v", params, err, v1ExtendParams)
	}
	if sub.Status != StatusActive || sub.InstanceID == "" || sub.AppInfo == nil || sub.AppInfo.FrontEndURL == "" {
		t.Fatalf("after the V1 purchase: %+v", sub)
	}
	m, _ := v.e.Message(run.Messages[0])
	if m.Family != "v1" || m.Attempts[0].Request.Method != http.MethodGet {
		t.Errorf("message family %q, method %q", m.Family, m.Attempts[0].Request.Method)
	}
	shown := m.Attempts[0].Request.URL
	if strings.Contains(shown, url.QueryEscape(q.Get("authToken"))) || strings.Contains(shown, url.QueryEscape(q.Get("mobilePhone"))) ||
		!strings.Contains(shown, "authToken=[redacted]") || !strings.Contains(shown, "activity=newInstance") {
		t.Errorf("logged URL %s: want authToken and mobilePhone redacted, activity shown", shown)
	}

	tests := []struct {
		scenario string
		activity string
		status   string
		check    func(t *testing.T, before, after Subscription, q url.Values)
	}{
		{"renewal", protocol.ActivityRefreshInstance, StatusActive, func(t *testing.T, b, s Subscription, q url.Values) {
			if !s.ExpireTime.Equal(b.ExpireTime.AddDate(0, 1, 0)) || q.Get("expireTime") != protocol.FormatTime14(s.ExpireTime) ||
				q.Get("instanceId") != s.InstanceID || q.Get("orderId") == b.OrderID || q.Get("trialToFormal") != "" {
				t.Errorf("renewal sent %v; expiry %v → %v", q, b.ExpireTime, s.ExpireTime)
			}
		}},
		{"upgrade", protocol.ActivityUpgrade, StatusActive, func(t *testing.T, b, s Subscription, q url.Values) {
			if q.Get("amount") != "2" || q.Get("skuCode") != s.SKU || q.Get("productId") != v1ID || s.LinearValue != 2 {
				t.Errorf("upgrade sent %v; linear value %d", q, s.LinearValue)
			}
		}},
		{"query", protocol.ActivityQueryInstance, StatusActive, func(t *testing.T, b, s Subscription, q url.Values) {
			if q.Get("instanceId") != s.InstanceID {
				t.Errorf("query sent %v", q)
			}
		}},
		{"expire", protocol.ActivityExpireInstance, StatusFrozen, func(t *testing.T, b, s Subscription, q url.Values) {
			if q.Get("orderId") != s.OrderID || q.Get("instanceId") != s.InstanceID {
				t.Errorf("expire sent %v, want the original order %s", q, s.OrderID)
			}
		}},
		{"unfreeze", protocol.ActivityRefreshInstance, StatusActive, nil},
		{"unsubscribe", protocol.ActivityReleaseInstance, StatusReleased, func(t *testing.T, b, s Subscription, q url.Values) {
			if q.Get("instanceId") != s.InstanceID || q.Get("orderId") != s.Orders[len(s.Orders)-1] {
				t.Errorf("release sent %v", q)
			}
		}},
	}
	for _, tt := range tests {
		before, _ := v.e.Subscription(sub.ID)
		n := rc.count()
		run, after := v.play(sub.ID, tt.scenario)
		okRun(t, tt.scenario, run, 1)
		reqs := rc.since(n)
		if len(reqs) != 1 {
			t.Fatalf("%s: %d requests", tt.scenario, len(reqs))
		}
		verifyV1(t, reqs[0])
		if got := reqs[0].Query.Get("activity"); got != tt.activity {
			t.Errorf("%s: activity %q, want %q", tt.scenario, got, tt.activity)
		}
		if after.Status != tt.status {
			t.Errorf("%s: status %s, want %s", tt.scenario, after.Status, tt.status)
		}
		if tt.check != nil {
			tt.check(t, before, after, reqs[0].Query)
		}
	}
}

func TestV1ArrearsAndRetryPolicy(t *testing.T) {
	v, rc := startJoint(t, nil)
	if err := v.e.AddProduct(Product{ID: "V1-ONDEMAND", SKU: "SKU-V1-OD", ChargingMode: protocol.ChargingOnDemand, Protocol: ProtocolV1}); err != nil {
		t.Fatal(err)
	}
	run, sub := v.purchase(PurchaseRequest{ProductID: "V1-ONDEMAND", Test: true})
	okRun(t, "purchase", run, 1)
	for _, tt := range []struct{ scenario, status, sent string }{
		{"arrears-freeze", StatusFrozen, protocol.InstanceStatusFreeze},
		{"arrears-unfreeze", StatusActive, protocol.InstanceStatusNormal},
	} {
		n := rc.count()
		run, after := v.play(sub.ID, tt.scenario)
		okRun(t, tt.scenario, run, 1)
		r := rc.since(n)[0]
		verifyV1(t, r)
		if r.Query.Get("activity") != protocol.ActivityInstanceStatus || r.Query.Get("instanceStatus") != tt.sent || r.Query.Get("testFlag") != "1" || after.Status != tt.status {
			t.Errorf("%s: sent %v, status %s", tt.scenario, r.Query, after.Status)
		}
	}
	want := map[string]RetryPolicy{
		"newInstance":     {time.Hour, 3 * time.Hour},
		"upgrade":         {time.Hour, 3 * time.Hour},
		"refreshInstance": {10 * time.Minute, time.Hour},
		"expireInstance":  {10 * time.Minute, time.Hour},
		"releaseInstance": {time.Minute, time.Hour},
	}
	for iface, p := range want {
		if V1.Retry[iface] != p {
			t.Errorf("V1 retry of %s = %+v, want %+v", iface, V1.Retry[iface], p)
		}
	}
	if len(KitV1.Retry) != 0 || len(KitV2.Retry) != 0 {
		t.Error("Kit calls are retried")
	}
}

// TestV1NewInstanceRetried: a V1 newInstance that fails is retried hourly
// with a fresh businessId, and succeeds.
func TestV1NewInstanceRetried(t *testing.T) {
	s := testseller.New(testKey, testseller.Faults{})
	rc := &kitRecorder{next: &flaky{n: 1, next: s}}
	v := start(t, rc, func(c *Config) { c.TimeScale = 3600 * 100 })
	run, _ := v.purchase(PurchaseRequest{ProductID: v1ID})
	if run.OK {
		t.Fatal("the first attempt succeeded against a failing seller")
	}
	waitFor(t, "the retry", func() bool { s, _ := v.e.Subscription(run.SubscriptionID); return s.Status == StatusActive })
	reqs := rc.since(0)
	if len(reqs) != 2 || reqs[0].Query.Get("businessId") == reqs[1].Query.Get("businessId") || reqs[0].Query.Get("orderId") != reqs[1].Query.Get("orderId") {
		t.Fatalf("%d attempts; want 2 with one order and two businessIds", len(reqs))
	}
	for _, r := range reqs {
		verifyV1(t, r)
	}
	m, _ := v.e.Message(run.Messages[0])
	if len(m.Attempts) != 2 || m.Deadline.Sub(m.FirstSentAt) != 3*time.Hour || m.Status != MessageSuccess {
		t.Errorf("message: %d attempts, window %v, %s", len(m.Attempts), m.Deadline.Sub(m.FirstSentAt), m.Status)
	}
}

func TestKitScenarios(t *testing.T) {
	tests := []struct {
		name    string
		product string
		version int
		form    KitSignForm
		target  string // Config.KitTarget relative to the seller; "" the root
	}{
		{"v2 joint, form A", jointID, 2, KitFormA, ""},
		{"v2 joint, form B, under the production path", jointID, 2, KitFormB, "/produce"},
		{"v1 joint", v1ID, 1, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, rc := startJoint(t, func(c *Config) {
				c.KitSignForm = tt.form
				if tt.target != "" {
					c.KitTarget = strings.TrimSuffix(c.Target, "/produce") + tt.target
				}
			})
			api := httptest.NewServer(v.e.Handler())
			defer api.Close()
			form := orForm(tt.form, KitFormA)
			_, sub := v.purchase(PurchaseRequest{ProductID: tt.product})
			if sub.Status != StatusActive {
				t.Fatalf("purchase: %s", sub.Status)
			}

			// bind
			n := rc.count()
			code, run, raw := apiPlay(t, api, sub.ID, `{"scenario":"bind"}`)
			if code != http.StatusOK {
				t.Fatalf("bind: %d %s", code, raw)
			}
			okRun(t, "bind", run, 3)
			reqs := rc.since(n)
			var names []string
			for _, r := range reqs {
				req := verifyKit(t, r, tt.version, form, tt.target)
				names = append(names, req.Operation())
			}
			if want := []string{"tenantSync", "applicationSync", "allOrgSync"}; !slices.Equal(names, want) {
				t.Fatalf("bind sent %v, want %v", names, want)
			}
			sub, _ = v.e.Subscription(sub.ID)
			tn := getTenant(t, api, sub.TenantID)
			ts, _ := protocol.DecodeKit("tenantSync", reqs[0].Body)
			tsr := ts.(protocol.TenantSyncRequest)
			if tsr.Flag != 1 || tsr.TenantID != tn.TenantID || tsr.TenantCode != tn.TenantCode || tsr.DomainName != tn.DomainName ||
				tsr.InstanceID != sub.InstanceID || tsr.OrderID != sub.OrderID || tsr.TestFlag != 0 {
				t.Errorf("tenantSync %+v, tenant %+v", tsr, tn)
			}
			as, _ := protocol.DecodeKit("applicationSync", reqs[1].Body)
			asr := as.(protocol.ApplicationSyncRequest)
			secret, err := sign.DecryptClientSecret(testRSA(), asr.ClientSecret)
			v.e.mu.Lock()
			want := v.e.tenantBySub[sub.ID].secret
			v.e.mu.Unlock()
			if err != nil || secret != want || asr.ClientID != tn.ClientID || asr.Flag != 1 {
				t.Errorf("applicationSync: secret decrypts to %q (%v), want the tenant's; clientId %q, tenant %q", secret, err, asr.ClientID, tn.ClientID)
			}
			if bytes.Contains(reqs[1].Body, []byte(want)) {
				t.Error("the plain client secret went over the wire")
			}
			if tn.Status != TenantBound || len(tn.Apps) != 1 || tn.Apps[0].ClientID != tn.ClientID || len(tn.Orgs) != 4 || len(tn.Users) != 0 ||
				tn.Family != map[int]string{1: "kit-v1", 2: "kit-v2"}[tt.version] {
				t.Errorf("after bind: %+v", tn)
			}
			orgField := "orgInfoList"
			if tt.version == 1 {
				orgField = "orgInfo"
			}
			assertJSONKind(t, reqs[2].Body, orgField, map[int]byte{1: '"', 2: '['}[tt.version])

			// authorize-users
			n = rc.count()
			code, run, raw = apiPlay(t, api, sub.ID, `{"scenario":"authorize-users"}`)
			if code != http.StatusOK {
				t.Fatalf("authorize-users: %d %s", code, raw)
			}
			okRun(t, "authorize-users", run, 1)
			reqs = rc.since(n)
			au := verifyKit(t, reqs[0], tt.version, form, tt.target).(protocol.AuthSyncRequest)
			if len(reqs) != 1 || len(au.UserList) != 500 || au.Flag != 1 || au.AppID != tn.Apps[0].AppID {
				t.Fatalf("authorize-users: %d calls, %d users, flag %d", len(reqs), len(au.UserList), au.Flag)
			}
			assertJSONKind(t, reqs[0].Body, "userList", map[int]byte{1: '"', 2: '['}[tt.version])
			if !bytes.Contains(reqs[0].Body, []byte(`extension`)) {
				t.Error("no user with extension-nested fields")
			}
			u2 := au.UserList[1] // nested: extension
			if u2.EmployeeType != 1 || u2.WorkPlace != "Shenzhen" || au.UserList[3].Mobile == "" || au.UserList[3].Email == "" || au.UserList[99].Enabled() || !au.UserList[0].Enabled() {
				t.Errorf("users: %+v %+v %+v", u2, au.UserList[3], au.UserList[99])
			}
			tn = getTenant(t, api, sub.TenantID)
			authorized := 0
			for _, u := range tn.Users {
				if u.Authorized {
					authorized++
				}
			}
			if len(tn.Users) != 500 || authorized != 500 || tn.Users[0].UserName != "user001" || tn.Users[99].Enable {
				t.Errorf("after authorize-users: %d users, %d authorised", len(tn.Users), authorized)
			}

			// org-change
			n = rc.count()
			_, run, _ = apiPlay(t, api, sub.ID, `{"scenario":"org-change"}`)
			okRun(t, "org-change", run, 4)
			var steps []string
			for _, r := range rc.since(n) {
				o := verifyKit(t, r, tt.version, form, tt.target).(protocol.SingleOrgSyncRequest)
				steps = append(steps, strings.Join([]string{o.OrgCode, o.OrgName, o.ParentCode, string(rune('0' + o.Flag))}, "|"))
			}
			wantSteps := []string{
				"ORG-EMU-001|Department ORG-EMU-001|ORG-ROOT|1",
				"ORG-EMU-001|Department ORG-EMU-001 (renamed)|ORG-ROOT|2",
				"ORG-EMU-001|Department ORG-EMU-001 (renamed)|ORG-RD|2",
				"ORG-EMU-001|Department ORG-EMU-001 (renamed)|ORG-RD|0",
			}
			if !slices.Equal(steps, wantSteps) {
				t.Errorf("org-change sent\n%v\nwant\n%v", steps, wantSteps)
			}
			if tn = getTenant(t, api, sub.TenantID); len(tn.Orgs) != 4 {
				t.Errorf("after org-change: %d orgs, want the 4 of the tree", len(tn.Orgs))
			}

			// revoke-user, named and by default
			for _, rv := range []struct{ body, user string }{
				{`{"scenario":"revoke-user","userName":"user007"}`, "user007"},
				{`{"scenario":"revoke-user"}`, "user001"},
			} {
				n = rc.count()
				code, run, raw = apiPlay(t, api, sub.ID, rv.body)
				if code != http.StatusOK {
					t.Fatalf("%s: %d %s", rv.body, code, raw)
				}
				okRun(t, rv.body, run, 1)
				au = verifyKit(t, rc.since(n)[0], tt.version, form, tt.target).(protocol.AuthSyncRequest)
				wantFlag := protocol.FlexInt(3)
				if tt.version == 1 {
					wantFlag = 0
				}
				if len(au.UserList) != 1 || au.UserList[0].UserName != rv.user || au.Flag != wantFlag {
					t.Errorf("%s sent %d users (%v), flag %d", rv.body, len(au.UserList), au.UserList, au.Flag)
				}
				tn = getTenant(t, api, sub.TenantID)
				i := slices.IndexFunc(tn.Users, func(u TenantUser) bool { return u.UserName == rv.user })
				switch {
				case tt.version == 1 && i >= 0:
					t.Errorf("%s is still a user after a V1 revocation (a delete)", rv.user)
				case tt.version == 2 && (i < 0 || tn.Users[i].Authorized):
					t.Errorf("%s is not a revoked user after a V2 revocation", rv.user)
				}
			}
			if code, _, raw = apiPlay(t, api, sub.ID, `{"scenario":"revoke-user","userName":"user007"}`); code != http.StatusBadRequest || !strings.Contains(raw, "not an authorised user") {
				t.Errorf("revoking a revoked user: %d %s", code, raw)
			}
			if s, _ := v.e.Subscription(sub.ID); s.AuthorizedUsers != 498 {
				t.Errorf("authorised users %d, want 498", s.AuthorizedUsers)
			}

			// unbind
			n = rc.count()
			_, run, _ = apiPlay(t, api, sub.ID, `{"scenario":"unbind"}`)
			okRun(t, "unbind", run, 3)
			names = nil
			for _, r := range rc.since(n) {
				req := verifyKit(t, r, tt.version, form, tt.target)
				names = append(names, req.Operation())
				switch req := req.(type) {
				case protocol.AuthSyncRequest:
					// The users left: V2 keeps its revoked users, V1 deleted them.
					want := 500
					if tt.version == 1 {
						want = 498
					}
					if req.Flag != 0 || len(req.UserList) != want {
						t.Errorf("unbind authSync: flag %d, %d users, want %d", req.Flag, len(req.UserList), want)
					}
				case protocol.ApplicationSyncRequest:
					if req.Flag != 0 {
						t.Errorf("unbind applicationSync flag %d", req.Flag)
					}
				case protocol.TenantSyncRequest:
					if req.Flag != 0 {
						t.Errorf("unbind tenantSync flag %d", req.Flag)
					}
				}
			}
			if want := []string{"authSync", "applicationSync", "tenantSync"}; !slices.Equal(names, want) {
				t.Errorf("unbind sent %v, want %v", names, want)
			}
			tn = getTenant(t, api, sub.TenantID)
			if tn.Status != TenantUnbound || len(tn.Users)+len(tn.Apps)+len(tn.Orgs) != 0 {
				t.Errorf("after unbind: %+v", tn)
			}
			if code, _, raw = apiPlay(t, api, sub.ID, `{"scenario":"authorize-users"}`); code != http.StatusConflict || !strings.Contains(raw, "not bound") {
				t.Errorf("authorize-users after unbind: %d %s", code, raw)
			}
		})
	}
}

// orForm returns a unless it is empty, else b.
func orForm(a, b KitSignForm) KitSignForm {
	if a == "" {
		return b
	}
	return a
}

// assertJSONKind checks that field of a JSON object body starts with
// kind: '"' (JSON text in a string) or '[' (an array).
func assertJSONKind(t *testing.T, body []byte, field string, kind byte) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if raw := m[field]; len(raw) == 0 || raw[0] != kind {
		t.Errorf("%s is %.20s…, want it to start with %c", field, raw, kind)
	}
}

func TestBindNeedsPublicKey(t *testing.T) {
	v, rc := startJoint(t, func(c *Config) { c.SellerPublicKey = nil })
	_, sub := v.purchase(PurchaseRequest{ProductID: jointID})
	n := rc.count()
	_, err := v.e.Play(context.Background(), sub.ID, "bind")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "RSA public key is missing") || !strings.Contains(err.Error(), "--rsa-public-key-file") {
		t.Errorf("bind without the key: %v", err)
	}
	if _, err := v.e.Purchase(context.Background(), PurchaseRequest{ProductID: jointID, Scenario: "test-account"}); !errors.Is(err, ErrConflict) {
		t.Errorf("test-account without the key: %v", err)
	}
	if got := rc.count() - n; got != 0 {
		t.Errorf("%d calls sent", got)
	}
	if len(v.e.Tenants()) != 0 {
		t.Errorf("tenants made: %+v", v.e.Tenants())
	}
}

func TestKitScenarioRefusals(t *testing.T) {
	v, _ := startJoint(t, nil)
	_, plain := v.purchase(PurchaseRequest{ProductID: periodID})
	_, joint := v.purchase(PurchaseRequest{ProductID: jointID})
	tests := []struct {
		sub, scenario string
		opts          PlayOptions
		conflict      bool
		want          string
	}{
		{plain.ID, "bind", PlayOptions{}, true, "not a joint-operation product"},
		{joint.ID, "authorize-users", PlayOptions{}, true, "not bound"},
		{joint.ID, "revoke-user", PlayOptions{}, true, "not bound"},
		{joint.ID, "renewal", PlayOptions{UserName: "user001"}, false, "userName is taken by revoke-user only"},
		{joint.ID, "expireInstance", PlayOptions{}, false, "unknown scenario"},
	}
	for _, tt := range tests {
		_, err := v.e.PlayWith(context.Background(), tt.sub, tt.scenario, tt.opts)
		if err == nil || errors.Is(err, ErrConflict) != tt.conflict || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s on %s: %v, want conflict=%v containing %q", tt.scenario, tt.sub, err, tt.conflict, tt.want)
		}
	}
	if _, err := v.e.Purchase(context.Background(), PurchaseRequest{ProductID: periodID, Scenario: "test-account"}); err == nil || !strings.Contains(err.Error(), "joint-operation") {
		t.Errorf("test-account of a plain product: %v", err)
	}
	if _, err := v.e.Purchase(context.Background(), PurchaseRequest{ProductID: v1ID, Scenario: "order-notify"}); err == nil {
		t.Error("order-notify of a V1 product accepted")
	}
	api := httptest.NewServer(v.e.Handler())
	defer api.Close()
	resp, err := http.Get(api.URL + "/api/emulator/tenants/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown tenant: %d", resp.StatusCode)
	}
}

func TestTestAccount(t *testing.T) {
	for _, product := range []string{jointID, v1ID} {
		t.Run(product, func(t *testing.T) {
			v, rc := startJoint(t, nil)
			run, sub := v.purchase(PurchaseRequest{ProductID: product, Scenario: "test-account"})
			okRun(t, "test-account", run, 3)
			version := 2
			if product == v1ID {
				version = 1
			}
			for _, r := range rc.since(0) {
				var ids struct {
					InstanceID *string `json:"instanceId"`
					OrderID    *string `json:"orderId"`
				}
				verifyKit(t, r, version, KitFormA, "")
				if err := json.Unmarshal(r.Body, &ids); err != nil || ids.InstanceID == nil || *ids.InstanceID != "" || (ids.OrderID != nil && *ids.OrderID != "") {
					t.Errorf("%s: instanceId/orderId not sent empty: %s", r.Path, r.Body)
				}
			}
			if sub.Status != StatusTestAccount || sub.InstanceID != "" || sub.OrderID != "" || sub.TenantStatus != TenantBound {
				t.Errorf("subscription %+v", sub)
			}
			tns := v.e.Tenants()
			if len(tns) != 1 || !tns[0].TestAccount || tns[0].InstanceID != "" || tns[0].OrderID != "" || len(tns[0].Orgs) != 4 || len(tns[0].Apps) != 1 {
				t.Errorf("tenants %+v", tns)
			}
			n := rc.count()
			run, sub = v.play(sub.ID, "unbind")
			okRun(t, "unbind", run, 2) // no users: applicationSync and tenantSync
			if len(rc.since(n)) != 2 || sub.TenantStatus != TenantUnbound {
				t.Errorf("unbind of the test account: %d calls, tenant %s", len(rc.since(n)), sub.TenantStatus)
			}
		})
	}
}

// TestKitTamper sends tampered Kit and V1 calls and checks what the seller
// kitReceived and answered.
func TestKitTamper(t *testing.T) {
	// A fixed clock, so that the timestamps sent are known exactly; the
	// wall time, so that the seller's 60 s window accepts them.
	now := time.Now().Truncate(time.Millisecond)
	v, rc := startJoint(t, func(c *Config) { c.Now = func() time.Time { return now } })
	body := func(version int) []byte {
		return marshal(protocol.TenantSyncRequest{DomainName: "https://t.example.com", Flag: 1, Name: "T", TenantCode: "t",
			TenantID: "tamper-tenant", TestFlag: 1, TimeStamp: protocol.FormatKitTime(now)})
	}
	authFailed := []protocol.ResultCode{protocol.CodeAuthFailed}
	tests := []struct {
		name   string
		call   Call
		expect []protocol.ResultCode
		check  func(t *testing.T, r kitReceived)
	}{
		{"kit v2 good form B", Call{Family: KitV2, KitForm: KitFormB}, nil, func(t *testing.T, r kitReceived) {
			if r.Header.Get("x-sign") != sign.KitSignatureHashed(testKitKey, r.Header.Get("x-nonce"), r.Header.Get("x-timestamp"), r.Body) {
				t.Error("form B x-sign wrong")
			}
		}},
		{"kit v2 bad signature", Call{Family: KitV2, Tamper: Tamper{Signature: strings.Repeat("0", 64)}}, authFailed, func(t *testing.T, r kitReceived) {
			if r.Header.Get("x-sign") != strings.Repeat("0", 64) {
				t.Errorf("x-sign %q", r.Header.Get("x-sign"))
			}
		}},
		{"kit v2 wrong key", Call{Family: KitV2, Tamper: Tamper{Key: testKey}}, authFailed, func(t *testing.T, r kitReceived) {
			if r.Header.Get("x-sign") != sign.KitSignature(testKey, r.Header.Get("x-nonce"), r.Header.Get("x-timestamp"), r.Body) {
				t.Error("not signed with the given key")
			}
		}},
		{"kit v2 stale timestamp", Call{Family: KitV2, Tamper: Tamper{Skew: -5 * time.Minute}}, authFailed, func(t *testing.T, r kitReceived) {
			if want := protocol.FormatMillis(now.Add(-5 * time.Minute)); r.Header.Get("x-timestamp") != want {
				t.Errorf("x-timestamp %q, want %q", r.Header.Get("x-timestamp"), want)
			}
		}},
		{"kit v2 omitted nonce", Call{Family: KitV2, Tamper: Tamper{Omit: []string{"x-nonce"}}}, authFailed, func(t *testing.T, r kitReceived) {
			if _, ok := r.Header["X-Nonce"]; ok || r.Header.Get("x-sign") == "" {
				t.Errorf("headers %v", r.Header)
			}
		}},
		{"kit v1 bad authToken", Call{Family: KitV1, Tamper: Tamper{Signature: "bad"}}, authFailed, func(t *testing.T, r kitReceived) {
			if r.Header.Get("authToken") != "bad" {
				t.Errorf("authToken %q", r.Header.Get("authToken"))
			}
		}},
		{"kit v1 wrong key", Call{Family: KitV1, Tamper: Tamper{Key: testKey}}, authFailed, func(t *testing.T, r kitReceived) {
			if err := sign.VerifyAuthTokenJSON(testKey, r.Header.Get("authToken"), r.Body); err != nil {
				t.Errorf("not signed with the given key: %v", err)
			}
		}},
		{"kit v1 omitted authToken", Call{Family: KitV1, Tamper: Tamper{Omit: []string{"authToken"}}}, authFailed, func(t *testing.T, r kitReceived) {
			if _, ok := r.Header["Authtoken"]; ok {
				t.Error("authToken sent")
			}
		}},
		{"v1 bad authToken", Call{Family: V1, Interface: "queryInstance", Body: []byte("instanceId=x"), Tamper: Tamper{Signature: "bad"}}, authFailed, func(t *testing.T, r kitReceived) {
			if r.Query.Get("authToken") != "bad" || r.Query.Get("activity") != "queryInstance" {
				t.Errorf("query %v", r.Query)
			}
		}},
		{"v1 skew", Call{Family: V1, Interface: "queryInstance", Body: []byte("instanceId=x"), Tamper: Tamper{Skew: time.Hour}},
			[]protocol.ResultCode{protocol.CodeInstanceNotFound}, func(t *testing.T, r kitReceived) {
				if want := protocol.FormatTime17(now.Add(time.Hour)); r.Query.Get("timeStamp") != want {
					t.Errorf("timeStamp %q, want %q", r.Query.Get("timeStamp"), want)
				}
				verifyV1(t, r)
			}},
		{"v1 omitted timeStamp", Call{Family: V1, Interface: "queryInstance", Body: []byte("instanceId=x"), Tamper: Tamper{Omit: []string{"timeStamp"}}}, authFailed, func(t *testing.T, r kitReceived) {
			if r.Query.Has("timeStamp") || r.Query.Get("authToken") == "" {
				t.Errorf("query %v", r.Query)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.call
			if c.Interface == "" {
				c.Interface, c.Body = protocol.KitTenantSync, body(1)
			}
			c.Expect = cmpCodes(tt.expect, []protocol.ResultCode{protocol.CodeSuccess})
			n := rc.count()
			m, err := v.e.Send(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if m.Status != MessageSuccess || m.Family != c.Family.Name {
				t.Errorf("message %s (%s): %s", m.Status, m.Family, m.LastError)
			}
			reqs := rc.since(n)
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			tt.check(t, reqs[0])
		})
	}
	// A replayed nonce: the second call with the same nonce is refused.
	nonce := NewNonce()
	for i, want := range []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeAuthFailed} {
		m, _ := v.e.Send(context.Background(), Call{Family: KitV2, Interface: protocol.KitTenantSync, Body: body(2),
			Tamper: Tamper{Nonce: nonce}, Expect: []protocol.ResultCode{want}})
		if m.Status != MessageSuccess || m.Attempts[0].ResultCode != want {
			t.Errorf("nonce use %d: %s %s", i+1, m.Attempts[0].ResultCode, m.LastError)
		}
		if got := m.Attempts[0].Request.Header["X-Nonce"]; got != nonce {
			t.Errorf("x-nonce logged %q", got)
		}
		if got := m.Attempts[0].Request.Header["X-Sign"]; got != "[redacted]" {
			t.Errorf("x-sign logged %q", got)
		}
	}
}

func cmpCodes(a, b []protocol.ResultCode) []protocol.ResultCode {
	if len(a) == 0 {
		return b
	}
	return a
}

// TestWebJoint: the page offers Test account for joint products, lists
// the tenants and plays revoke-user with the user typed in.
func TestWebJoint(t *testing.T) {
	v, _ := startJoint(t, nil)
	srv := httptest.NewServer(v.e.Handler())
	defer srv.Close()
	w := &webEnv{t: t, e: v.e, srv: srv, client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	_, body := w.page("/")
	if !strings.Contains(body, `id="test-account-`+jointID+`"`) || !strings.Contains(body, `id="test-account-`+v1ID+`"`) ||
		strings.Contains(body, `id="test-account-`+periodID+`"`) || strings.Contains(body, `id="notify-`+v1ID+`"`) {
		t.Error("Test account buttons on the wrong products, or Notify order on the V1 product")
	}
	if status, loc := w.form("/purchase", url.Values{"product": {jointID}, "scenario": {"test-account"}}); status != http.StatusSeeOther || !strings.HasPrefix(w.flash(loc), "test-account ") {
		t.Fatalf("test-account form: %d %q", status, loc)
	}
	if status, _ := w.form("/purchase", url.Values{"product": {jointID}}); status != http.StatusSeeOther {
		t.Fatalf("purchase form: %d", status)
	}
	subs := v.e.Subscriptions()
	sub := subs[len(subs)-1]
	for _, sc := range []string{"bind", "authorize-users"} {
		if status, loc := w.form("/subscriptions/"+sub.ID+"/play", url.Values{"scenario": {sc}}); status != http.StatusSeeOther || !strings.HasPrefix(w.flash(loc), sc+" ") {
			t.Fatalf("%s form: %d %q", sc, status, loc)
		}
	}
	if status, _ := w.form("/subscriptions/"+sub.ID+"/play", url.Values{"scenario": {"revoke-user"}, "userName": {" user042 "}}); status != http.StatusSeeOther {
		t.Fatalf("revoke-user form: %d", status)
	}
	sub, _ = v.e.Subscription(sub.ID)
	tn, _ := v.e.Tenant(sub.TenantID)
	if tn.Users[41].UserName != "user042" || tn.Users[41].Authorized || sub.AuthorizedUsers != 499 {
		t.Errorf("after revoke-user from the page: %+v, %d authorised", tn.Users[41], sub.AuthorizedUsers)
	}
	_, body = w.page("/")
	row := rowHTML(body, `data-tenant-id="`+sub.TenantID+`"`)
	for _, want := range []string{`data-testid="tenant-status" class="status-bound">bound<`, `data-testid="tenant-users">500<`, "Platform (ORG-RD-PLATFORM under ORG-RD)", tn.ClientID} {
		if !strings.Contains(row, want) {
			t.Errorf("tenant row lacks %s: %s", want, row)
		}
	}
	if len(v.e.Tenants()) != 2 || !strings.Contains(body, "test account") {
		t.Errorf("tenants %d; the test account is not marked", len(v.e.Tenants()))
	}
}
