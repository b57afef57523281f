package emulator

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// offsetClock is the wall clock moved forward by what the test adds:
// Kit calls stay signed with a time the seller accepts until it moves.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// oaWorld is an emulator serving its own HTTP (PublicURL set) with one
// joint subscription bound and its 500 users authorised, and a seller's
// view of the tenant: its domainName and decrypted client secret.
type oaWorld struct {
	t       *testing.T
	v       env
	rc      *kitRecorder
	clock   *offsetClock
	base    string // the emulator's URL
	sub     Subscription
	domain  string // domainName as tenantSync sent it
	tenant  Tenant
	client  string
	secret  string // decrypted from applicationSync, as the seller does
	browser *http.Client
}

// startOA binds a subscription of product and authorises its users;
// adjust edits the config.
func startOA(t *testing.T, product string, adjust func(*Config)) *oaWorld {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	clock := &offsetClock{}
	v, rc := startJoint(t, func(c *Config) {
		c.PublicURL = base + "/"
		c.Now = clock.Now
		if adjust != nil {
			adjust(c)
		}
	})
	srv.Config.Handler = v.e.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	w := &oaWorld{t: t, v: v, rc: rc, clock: clock, base: base}
	_, w.sub = v.purchase(PurchaseRequest{ProductID: product})
	n := rc.count()
	run, _ := v.play(w.sub.ID, "bind")
	okRun(t, "bind", run, 3)
	for _, r := range rc.since(n) {
		var body struct {
			DomainName   string `json:"domainName"`
			ClientID     string `json:"clientId"`
			ClientSecret string `json:"clientSecret"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("Kit body %s: %v", r.Body, err)
		}
		name, _, _ := protocol.KitOperation(r.Path)
		switch name {
		case protocol.KitTenantSync:
			w.domain = body.DomainName
		case protocol.KitApplicationSync:
			secret, err := sign.DecryptClientSecret(testRSA(), body.ClientSecret)
			if err != nil {
				t.Fatalf("decrypt clientSecret: %v", err)
			}
			w.client, w.secret = body.ClientID, secret
		}
	}
	run, w.sub = v.play(w.sub.ID, "authorize-users")
	okRun(t, "authorize-users", run, 1)
	tn, ok := v.e.Tenant(w.sub.TenantID)
	if !ok {
		t.Fatalf("no tenant %q", w.sub.TenantID)
	}
	w.tenant = tn
	w.browser = w.newBrowser()
	return w
}

// newBrowser is a client with a cookie jar that does not follow
// redirects, so that every 302 can be read.
func (w *oaWorld) newBrowser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// do sends r and returns the status, Location and body.
func do(t *testing.T, c *http.Client, r *http.Request) (int, string, string) {
	t.Helper()
	resp, err := c.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (w *oaWorld) get(c *http.Client, u string) (int, string, string) {
	w.t.Helper()
	r, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return do(w.t, c, r)
}

func (w *oaWorld) postForm(c *http.Client, u string, form url.Values, mod func(*http.Request)) (int, string, string) {
	w.t.Helper()
	r, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if mod != nil {
		mod(r)
	}
	return do(w.t, c, r)
}

var (
	formRE   = regexp.MustCompile(`<form id="login" method="post" action="([^"]*)">`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// signIn opens start (an entry of the identity center) in the browser,
// expects the login form, fills it in and returns the answer to the
// form's POST.
func (w *oaWorld) signIn(c *http.Client, start, user, pass string) (int, string, string) {
	w.t.Helper()
	status, loc, page := w.get(c, start)
	if status != http.StatusOK {
		w.t.Fatalf("GET %s: %d (Location %q), want the login form: %s", start, status, loc, page)
	}
	m := formRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `name="username"`) || !strings.Contains(page, `name="password"`) {
		w.t.Fatalf("GET %s: no login form with username and password:\n%s", start, page)
	}
	form := url.Values{"username": {user}, "password": {pass}}
	for _, h := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return w.postForm(c, w.base+html.UnescapeString(m[1]), form, nil)
}

func (w *oaWorld) authorizeURL(redirect, state string) string {
	q := url.Values{"client_id": {w.client}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"get_user_info"}}
	if state != "" {
		q.Set("state", state)
	}
	return w.domain + "/api/v1/oauth2/authorize?" + q.Encode()
}

// location parses a redirect, failing unless it goes to prefix.
func (w *oaWorld) location(loc, prefix string) url.Values {
	w.t.Helper()
	if !strings.HasPrefix(loc, prefix+"?") {
		w.t.Fatalf("redirect to %q, want %s?…", loc, prefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		w.t.Fatal(err)
	}
	return u.Query()
}

// tokenCall posts form to the token endpoint with the client's
// credentials in the form.
func (w *oaWorld) tokenCall(form url.Values) (int, string) {
	w.t.Helper()
	form.Set("client_id", w.client)
	form.Set("client_secret", w.secret)
	status, _, body := w.postForm(http.DefaultClient, w.domain+"/api/v1/oauth2/token", form, nil)
	return status, body
}

type tokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
}

// exchange trades code for tokens, failing unless it succeeds.
func (w *oaWorld) exchange(code, redirect string) tokenJSON {
	w.t.Helper()
	status, body := w.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}})
	return w.tokenOK(status, body)
}

func (w *oaWorld) tokenOK(status int, body string) tokenJSON {
	w.t.Helper()
	var tok tokenJSON
	if status != http.StatusOK {
		w.t.Fatalf("token: %d %s", status, body)
	}
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		w.t.Fatalf("token answer %s: %v", body, err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 7200 || tok.Scope != "get_user_info" {
		w.t.Fatalf("token answer %s", body)
	}
	return tok
}

func (w *oaWorld) userinfo(token string) (int, string) {
	w.t.Helper()
	r, err := http.NewRequest(http.MethodGet, w.domain+"/api/v1/oauth2/userinfo", nil)
	if err != nil {
		w.t.Fatal(err)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	r.Header.Set("Accept", "application/json")
	status, _, body := do(w.t, http.DefaultClient, r)
	return status, body
}

const (
	callback      = "https://app.example.com/oauth/callback"
	invalidCode   = `{"error":"invalid_grant","error_description":"Invalid authorization code"}`
	invalidRT     = `{"error":"invalid_grant","error_description":"Invalid refresh token"}`
	badClient     = `{"error":"invalid_client","error_description":"Bad client credentials"}`
	unauthorized  = `{"error":"unauthorized","error_description":"Full authentication is required to access this resource"}`
	tenantOAPaths = "/oneaccess/"
)

// TestOneAccessDomainName: with PublicURL, tenantSync's domainName is
// the emulator's own identity center for the tenant, shown by the JSON
// API and the page; without it, the made-up domain, and the path alone.
func TestOneAccessDomainName(t *testing.T) {
	w := startOA(t, jointID, nil)
	want := w.base + tenantOAPaths + w.tenant.TenantCode
	if w.domain != want || w.tenant.DomainName != want || w.tenant.OneAccessURL != want {
		t.Errorf("domainName sent %q, tenant %q / %q, want %q", w.domain, w.tenant.DomainName, w.tenant.OneAccessURL, want)
	}
	status, _, body := w.get(http.DefaultClient, w.base+"/api/emulator/tenants/"+w.tenant.TenantID)
	if status != http.StatusOK || !strings.Contains(body, `"oneAccessUrl":"`+want+`"`) {
		t.Errorf("JSON API tenant: %d %s", status, body)
	}
	status, _, body = w.get(http.DefaultClient, w.base+"/")
	if status != http.StatusOK || !strings.Contains(body, `<td data-testid="tenant-oneaccess">`+want+` <a href="`+want+`/api/v1/unified-login"`) {
		t.Errorf("dashboard: %d, no OneAccess cell for %s", status, want)
	}

	v, _ := startJoint(t, nil)
	_, sub := v.purchase(PurchaseRequest{ProductID: jointID})
	run, sub := v.play(sub.ID, "bind")
	okRun(t, "bind without PublicURL", run, 3)
	tn, _ := v.e.Tenant(sub.TenantID)
	if tn.DomainName != "https://"+tn.TenantCode+".idp.emulator.example.com" || tn.OneAccessURL != "/oneaccess/"+tn.TenantCode {
		t.Errorf("without PublicURL: domainName %q, oneAccessUrl %q", tn.DomainName, tn.OneAccessURL)
	}

	if _, err := New(Config{Target: "http://x/produce", Key: "k", AK: "a", SK: "s", PublicURL: "ftp://x"}); err == nil || !strings.Contains(err.Error(), "PublicURL") {
		t.Errorf("New with PublicURL ftp://x: %v", err)
	}
}

// TestOneAccessAuthorizationCode plays the whole web sign-in: the form,
// the code and state, the token exchange, user info, single-use codes,
// refresh, the session's single sign-on and logout.
func TestOneAccessAuthorizationCode(t *testing.T) {
	w := startOA(t, jointID, nil)
	status, loc, _ := w.signIn(w.browser, w.authorizeURL(callback, "st-1"), "user004", DefaultUserPassword)
	if status != http.StatusFound {
		t.Fatalf("sign-in: %d", status)
	}
	q := w.location(loc, callback)
	if q.Get("state") != "st-1" || q.Get("code") == "" || len(q) != 2 {
		t.Fatalf("callback query %v, want code and state st-1", q)
	}
	code := q.Get("code")
	tok := w.exchange(code, callback)

	status, body := w.userinfo(tok.AccessToken)
	var info map[string]string
	if err := json.Unmarshal([]byte(body), &info); status != http.StatusOK || err != nil {
		t.Fatalf("userinfo: %d %s", status, body)
	}
	id := info["id"]
	wantInfo := map[string]string{
		"id": id, "userId": id, "userName": "user004", "name": "Emulator User 004",
		"email": "user004@emulator.example.com", "mobile": "13900000004", "role": "user",
		"organizationCode": orgPlatform, "organizationName": "Platform",
		"projectName": w.tenant.Name, "tenant": w.tenant.TenantID,
	}
	if id == "" || len(info) != len(wantInfo) {
		t.Errorf("userinfo %s", body)
	}
	for k, v := range wantInfo {
		if info[k] != v {
			t.Errorf("userinfo %s = %q, want %q", k, info[k], v)
		}
	}

	// The code is single use.
	status, body = w.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}})
	if status != http.StatusBadRequest || body != invalidCode {
		t.Errorf("code used twice: %d %s", status, body)
	}

	// Refresh: a new access token, the refresh token again.
	status, body = w.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	tok2 := w.tokenOK(status, body)
	if tok2.AccessToken == tok.AccessToken || tok2.RefreshToken != tok.RefreshToken {
		t.Errorf("refresh: access %q (was %q), refresh %q (was %q)", tok2.AccessToken, tok.AccessToken, tok2.RefreshToken, tok.RefreshToken)
	}
	if status, _ := w.userinfo(tok2.AccessToken); status != http.StatusOK {
		t.Errorf("userinfo with the refreshed token: %d", status)
	}
	status, body = w.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.AccessToken}})
	if status != http.StatusBadRequest || body != invalidRT {
		t.Errorf("refresh with an access token: %d %s", status, body)
	}

	// The session signs the user in again without the form, new state.
	status, loc, _ = w.get(w.browser, w.authorizeURL(callback, "st-2"))
	if status != http.StatusFound {
		t.Fatalf("second authorize with the session: %d", status)
	}
	q = w.location(loc, callback)
	if q.Get("state") != "st-2" || q.Get("code") == "" || q.Get("code") == code {
		t.Errorf("second authorize: %v", q)
	}
	if status, body := w.userinfo(w.exchange(q.Get("code"), callback).AccessToken); status != http.StatusOK || !strings.Contains(body, `"userName":"user004"`) {
		t.Errorf("userinfo after single sign-on: %d %s", status, body)
	}

	// Logout ends the session: the form again.
	status, loc, _ = w.get(w.browser, w.domain+"/api/v1/logout?redirect_url="+url.QueryEscape("https://app.example.com/?bye=1"))
	if status != http.StatusFound || loc != "https://app.example.com/?bye=1" {
		t.Errorf("logout: %d to %q", status, loc)
	}
	if status, loc, _ := w.get(w.browser, w.authorizeURL(callback, "")); status != http.StatusOK {
		t.Errorf("authorize after logout: %d to %q, want the form", status, loc)
	}
	// Without state, none comes back.
	if _, loc, _ = w.signIn(w.newBrowser(), w.authorizeURL(callback, ""), "user001", DefaultUserPassword); len(w.location(loc, callback)) != 1 {
		t.Errorf("no state asked, redirect %q", loc)
	}
}

// TestOneAccessSession: the session cookie is the emulator's own name,
// scoped to the tenant's base path, HttpOnly and SameSite=Lax.
func TestOneAccessSession(t *testing.T) {
	w := startOA(t, jointID, nil)
	c := w.newBrowser()
	_, _, page := w.get(c, w.authorizeURL(callback, "s"))
	form := url.Values{"username": {"user001"}, "password": {DefaultUserPassword}}
	for _, h := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	r, err := http.NewRequest(http.MethodPost, w.domain+"/api/v1/oauth2/authorize", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var got *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "emu_oneaccess_session" {
			got = ck
		}
	}
	if resp.StatusCode != http.StatusFound || got == nil || got.Path != "/oneaccess/"+w.tenant.TenantCode ||
		!got.HttpOnly || got.SameSite != http.SameSiteLaxMode || got.Secure {
		t.Fatalf("sign-in: %d, cookie %+v", resp.StatusCode, got)
	}
	root, _ := url.Parse(w.base + "/")
	if cks := c.Jar.Cookies(root); len(cks) != 0 {
		t.Errorf("the session cookie reaches the emulator's page: %v", cks)
	}
}

// TestOneAccessAuthorizeRefusals: what the authorize endpoint and its
// form refuse, and how.
func TestOneAccessAuthorizeRefusals(t *testing.T) {
	w := startOA(t, jointID, nil)
	// Register the callback.
	if status, _, _ := w.signIn(w.newBrowser(), w.authorizeURL(callback, "x"), "user001", DefaultUserPassword); status != http.StatusFound {
		t.Fatalf("first sign-in: %d", status)
	}
	authz := func(mod func(q url.Values)) string {
		q := url.Values{"client_id": {w.client}, "redirect_uri": {callback}, "response_type": {"code"}, "state": {"s"}}
		mod(q)
		return w.domain + "/api/v1/oauth2/authorize?" + q.Encode()
	}
	tests := []struct {
		name   string
		url    string
		status int
		want   string // in the page, or the redirect
	}{
		{"unknown tenant", w.base + "/oneaccess/emunosuch/api/v1/oauth2/authorize?" + url.Values{"client_id": {w.client}, "redirect_uri": {callback}, "response_type": {"code"}}.Encode(), http.StatusNotFound, "no such tenant: &#34;emunosuch&#34;"},
		{"unknown client", authz(func(q url.Values) { q.Set("client_id", "nosuch") }), http.StatusBadRequest, "unknown client_id &#34;nosuch&#34;"},
		{"no client", authz(func(q url.Values) { q.Del("client_id") }), http.StatusBadRequest, "client_id is required"},
		{"no redirect_uri", authz(func(q url.Values) { q.Del("redirect_uri") }), http.StatusBadRequest, "redirect_uri is required"},
		{"redirect_uri not http", authz(func(q url.Values) { q.Set("redirect_uri", "javascript:alert(1)") }), http.StatusBadRequest, "is not an absolute http(s) URL"},
		{"another redirect_uri", authz(func(q url.Values) { q.Set("redirect_uri", "https://evil.example.com/cb") }), http.StatusBadRequest, "is not the one registered for this application"},
		{"response_type token", authz(func(q url.Values) { q.Set("response_type", "token") }), http.StatusFound, callback + "?error=unsupported_response_type&error_description=response_type+must+be+code&state=s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, loc, body := w.get(w.newBrowser(), tt.url)
			if status != tt.status {
				t.Fatalf("%d, want %d: %s", status, tt.status, body)
			}
			if tt.status == http.StatusFound {
				if loc != tt.want {
					t.Errorf("redirect %q, want %q", loc, tt.want)
				}
				return
			}
			if !strings.Contains(body, tt.want) || strings.Contains(body, `id="login"`) {
				t.Errorf("page lacks %q or shows the form:\n%s", tt.want, body)
			}
		})
	}

	// The form refuses a wrong password and an unknown user, with 401 and
	// the form again; the password never comes back.
	for _, c := range []struct{ user, pass string }{{"user001", "wrong-password"}, {"nobody", DefaultUserPassword}, {"", ""}} {
		status, loc, body := w.signIn(w.newBrowser(), w.authorizeURL(callback, "s"), c.user, c.pass)
		if status != http.StatusUnauthorized || loc != "" || !strings.Contains(body, "Wrong user name or password.") || !formRE.MatchString(body) {
			t.Errorf("%q/%q: %d to %q:\n%s", c.user, c.pass, status, loc, body)
		}
		if c.pass != "" && strings.Contains(body, c.pass) {
			t.Errorf("%q: the page shows the password typed", c.user)
		}
	}

	// A cross-site post of the form is refused.
	form := url.Values{"client_id": {w.client}, "redirect_uri": {callback}, "response_type": {"code"}, "username": {"user001"}, "password": {DefaultUserPassword}}
	status, loc, _ := w.postForm(w.newBrowser(), w.domain+"/api/v1/oauth2/authorize", form, func(r *http.Request) {
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	})
	if status != http.StatusForbidden || loc != "" {
		t.Errorf("cross-site sign-in: %d to %q", status, loc)
	}
}

// TestOneAccessTokenRefusals: the token endpoint's refusals, exactly.
func TestOneAccessTokenRefusals(t *testing.T) {
	w := startOA(t, jointID, nil)
	newCode := func() string {
		_, loc, _ := w.signIn(w.newBrowser(), w.authorizeURL(callback, "s"), "user002", DefaultUserPassword)
		return w.location(loc, callback).Get("code")
	}
	tests := []struct {
		name   string
		form   func() url.Values
		mod    func(*http.Request)
		before func()
		status int
		body   string
	}{
		{
			name: "wrong secret",
			form: func() url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {newCode()}, "redirect_uri": {callback}, "client_id": {w.client}, "client_secret": {w.secret + "x"}}
			},
			status: http.StatusUnauthorized, body: badClient,
		},
		{
			name: "another tenant's client",
			form: func() url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {newCode()}, "redirect_uri": {callback}, "client_id": {"nosuch"}, "client_secret": {w.secret}}
			},
			status: http.StatusUnauthorized, body: badClient,
		},
		{
			name: "no credentials",
			form: func() url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {newCode()}, "redirect_uri": {callback}}
			},
			status: http.StatusUnauthorized, body: badClient,
		},
		{
			name: "HTTP Basic",
			form: func() url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {newCode()}, "redirect_uri": {callback}}
			},
			mod:    func(r *http.Request) { r.SetBasicAuth(w.client, w.secret) },
			status: http.StatusOK,
		},
		{
			name: "HTTP Basic, wrong secret",
			form: func() url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {newCode()}, "redirect_uri": {callback}}
			},
			mod:    func(r *http.Request) { r.SetBasicAuth(w.client, "nope") },
			status: http.StatusUnauthorized, body: badClient,
		},
		{
			name: "unknown code",
			form: func() url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {"nosuch"}, "redirect_uri": {callback}}
			},
			status: http.StatusBadRequest, body: invalidCode,
		},
		{
			name: "expired code",
			form: func() url.Values {
				c := newCode()
				w.clock.add(5*time.Minute + time.Second)
				return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {callback}}
			},
			status: http.StatusBadRequest, body: invalidCode,
		},
		{
			name: "another redirect_uri",
			form: func() url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {newCode()}, "redirect_uri": {callback + "2"}}
			},
			status: http.StatusBadRequest, body: invalidCode,
		},
		{
			name:   "unknown refresh token",
			form:   func() url.Values { return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nosuch"}} },
			status: http.StatusBadRequest, body: invalidRT,
		},
		{
			name:   "no grant_type",
			form:   func() url.Values { return url.Values{"code": {"x"}} },
			status: http.StatusBadRequest, body: `{"error":"invalid_request","error_description":"grant_type is required"}`,
		},
		{
			name:   "password grant",
			form:   func() url.Values { return url.Values{"grant_type": {"password"}} },
			status: http.StatusBadRequest, body: `{"error":"unsupported_grant_type","error_description":"Unsupported grant type: password"}`,
		},
		{
			name:   "JSON body",
			form:   func() url.Values { return url.Values{"grant_type": {"authorization_code"}} },
			mod:    func(r *http.Request) { r.Header.Set("Content-Type", "application/json") },
			status: http.StatusBadRequest, body: `{"error":"invalid_request","error_description":"Content-Type must be application/x-www-form-urlencoded"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := tt.form()
			if tt.mod == nil && form.Get("client_id") == "" && tt.status != http.StatusUnauthorized {
				form.Set("client_id", w.client)
				form.Set("client_secret", w.secret)
			}
			status, _, body := w.postForm(http.DefaultClient, w.domain+"/api/v1/oauth2/token", form, tt.mod)
			if status != tt.status || (tt.body != "" && body != tt.body) {
				t.Errorf("%d %s, want %d %s", status, body, tt.status, tt.body)
			}
			if strings.Contains(body, w.secret) {
				t.Errorf("the answer carries the client secret")
			}
		})
	}
}

// TestOneAccessUserinfoRefusals: 401 with the documented body for no
// token, an unknown one and an expired one; expires_in follows
// Config.AccessTokenLifetime.
func TestOneAccessUserinfoRefusals(t *testing.T) {
	w := startOA(t, jointID, func(c *Config) { c.AccessTokenLifetime = time.Minute })
	_, loc, _ := w.signIn(w.browser, w.authorizeURL(callback, "s"), "user003", DefaultUserPassword)
	status, body := w.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {w.location(loc, callback).Get("code")}, "redirect_uri": {callback}})
	var tok tokenJSON
	if err := json.Unmarshal([]byte(body), &tok); status != http.StatusOK || err != nil || tok.ExpiresIn != 60 {
		t.Fatalf("token: %d %s", status, body)
	}
	if status, _ := w.userinfo(tok.AccessToken); status != http.StatusOK {
		t.Fatalf("userinfo before expiry: %d", status)
	}
	tests := []struct {
		name  string
		token string
		wait  time.Duration
	}{
		{"no token", "", 0},
		{"unknown token", "nosuch", 0},
		{"refresh token as access token", tok.RefreshToken, 0},
		{"expired token", tok.AccessToken, time.Minute},
	}
	for _, tt := range tests {
		w.clock.add(tt.wait)
		if status, body := w.userinfo(tt.token); status != http.StatusUnauthorized || body != unauthorized {
			t.Errorf("%s: %d %s", tt.name, status, body)
		}
	}
	// The refresh token outlives the access token.
	status, body = w.tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if err := json.Unmarshal([]byte(body), &tok); status != http.StatusOK || err != nil {
		t.Fatalf("refresh after expiry: %d %s", status, body)
	}
	if status, _ := w.userinfo(tok.AccessToken); status != http.StatusOK {
		t.Errorf("userinfo with the refreshed token: %d", status)
	}
}

// casResponse reads both CAS answers.
type casXMLResponse struct {
	XMLName xml.Name `xml:"http://www.yale.edu/tp/cas serviceResponse"`
	Success *struct {
		User       string `xml:"http://www.yale.edu/tp/cas user"`
		Attributes struct {
			AuthenticationDate string `xml:"http://www.yale.edu/tp/cas authenticationDate"`
			LongTerm           string `xml:"http://www.yale.edu/tp/cas longTermAuthenticationRequestTokenUsed"`
			IsFromNewLogin     string `xml:"http://www.yale.edu/tp/cas isFromNewLogin"`
			Role               string `xml:"http://www.yale.edu/tp/cas role"`
			OrganizationCode   string `xml:"http://www.yale.edu/tp/cas organizationCode"`
			Name               string `xml:"http://www.yale.edu/tp/cas name"`
			UserName           string `xml:"http://www.yale.edu/tp/cas userName"`
			Tenant             string `xml:"http://www.yale.edu/tp/cas tenant"`
		} `xml:"http://www.yale.edu/tp/cas attributes"`
	} `xml:"http://www.yale.edu/tp/cas authenticationSuccess"`
	Failure *struct {
		Code string `xml:"code,attr"`
		Text string `xml:",chardata"`
	} `xml:"http://www.yale.edu/tp/cas authenticationFailure"`
}

// TestOneAccessCAS: CAS login and p3/serviceValidate in XML (the
// default) and JSON, single-use tickets bound to their service.
func TestOneAccessCAS(t *testing.T) {
	w := startOA(t, jointID, nil)
	service := "https://app.example.com/cas/callback?tenant=" + w.tenant.TenantID
	login := w.domain + "/api/v1/cas/login?service=" + url.QueryEscape(service)
	ticket := func(c *http.Client, fresh bool) string {
		t.Helper()
		var status int
		var loc string
		if fresh {
			status, loc, _ = w.signIn(c, login, "user001", DefaultUserPassword)
		} else {
			status, loc, _ = w.get(c, login)
		}
		if status != http.StatusFound {
			t.Fatalf("CAS login: %d", status)
		}
		u, err := url.Parse(loc)
		if err != nil || !strings.HasPrefix(loc, "https://app.example.com/cas/callback?") || u.Query().Get("tenant") != w.tenant.TenantID {
			t.Fatalf("CAS login redirect %q", loc)
		}
		st := u.Query().Get("ticket")
		if !strings.HasPrefix(st, "ST-") {
			t.Fatalf("ticket %q", st)
		}
		return st
	}
	validate := func(st, svc, format string) (int, string, string) {
		q := url.Values{"service": {svc}, "ticket": {st}}
		if format != "" {
			q.Set("format", format)
		}
		r, _ := http.NewRequest(http.MethodGet, w.domain+"/api/v1/cas/p3/serviceValidate?"+q.Encode(), nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}

	// XML by default, from a fresh login.
	st := ticket(w.browser, true)
	status, ct, body := validate(st, service, "")
	var x casXMLResponse
	if err := xml.Unmarshal([]byte(body), &x); status != http.StatusOK || err != nil || !strings.HasPrefix(ct, "application/xml") || x.Success == nil {
		t.Fatalf("validate XML: %d %s %v\n%s", status, ct, err, body)
	}
	a := x.Success.Attributes
	if x.Success.User != "user001" || a.UserName != "user001" || a.Name != "Emulator User 001" || a.Role != "admin" ||
		a.OrganizationCode != orgRoot || a.Tenant != w.tenant.TenantID || a.IsFromNewLogin != "true" || a.LongTerm != "false" {
		t.Errorf("XML success: %s", body)
	}
	if _, err := time.Parse(time.RFC3339, a.AuthenticationDate); err != nil {
		t.Errorf("authenticationDate %q: %v", a.AuthenticationDate, err)
	}
	// Single use.
	status, _, body = validate(st, service, "XML")
	x = casXMLResponse{}
	if err := xml.Unmarshal([]byte(body), &x); status != http.StatusOK || err != nil || x.Failure == nil || x.Failure.Code != "INVALID_TICKET" || x.Success != nil {
		t.Errorf("ticket used twice: %d %s", status, body)
	}

	// JSON, from the session (not a new login).
	st = ticket(w.browser, false)
	status, ct, body = validate(st, service, "JSON")
	var j struct {
		ServiceResponse struct {
			Success *struct {
				User       string         `json:"user"`
				Attributes map[string]any `json:"attributes"`
			} `json:"authenticationSuccess"`
			Failure *struct {
				Code        string `json:"code"`
				Description string `json:"description"`
			} `json:"authenticationFailure"`
		} `json:"serviceResponse"`
	}
	if err := json.Unmarshal([]byte(body), &j); status != http.StatusOK || err != nil || !strings.HasPrefix(ct, "application/json") || j.ServiceResponse.Success == nil {
		t.Fatalf("validate JSON: %d %s\n%s", status, ct, body)
	}
	ja := j.ServiceResponse.Success.Attributes
	if j.ServiceResponse.Success.User != "user001" || ja["isFromNewLogin"] != false || ja["tenant"] != w.tenant.TenantID || ja["organizationCode"] != orgRoot || ja["role"] != "admin" {
		t.Errorf("JSON success: %s", body)
	}
	status, _, body = validate(st, service, "json")
	if status != http.StatusOK || body != `{"serviceResponse":{"authenticationFailure":{"code":"INVALID_TICKET","description":"Ticket `+st+` not recognized"}}}` {
		t.Errorf("JSON ticket used twice: %d %s", status, body)
	}

	// A ticket for another service, an expired one, a bad format.
	st = ticket(w.browser, false)
	if _, _, body = validate(st, "https://other.example.com/", "JSON"); !strings.Contains(body, `"code":"INVALID_SERVICE"`) {
		t.Errorf("another service: %s", body)
	}
	st = ticket(w.browser, false)
	w.clock.add(5*time.Minute + time.Second)
	if _, _, body = validate(st, service, "JSON"); !strings.Contains(body, `"code":"INVALID_TICKET"`) {
		t.Errorf("expired ticket: %s", body)
	}
	if _, _, body = validate("ST-x", service, "YAML"); !strings.Contains(body, `code="INVALID_REQUEST"`) {
		t.Errorf("format YAML: %s", body)
	}
	// The same service with another query (a seller's state) signs in.
	other := "https://app.example.com/cas/callback?tenant=" + w.tenant.TenantID + "&state=s2"
	status, loc, _ := w.get(w.newBrowser(), w.domain+"/api/v1/cas/login?service="+url.QueryEscape(other))
	if status != http.StatusOK && !strings.HasPrefix(loc, other) {
		t.Errorf("CAS login with the registered service and another query: %d %s", status, loc)
	}
	// Another service at login is refused once one is registered.
	status, _, body = w.get(w.newBrowser(), w.domain+"/api/v1/cas/login?service="+url.QueryEscape("https://evil.example.com/"))
	if status != http.StatusBadRequest || !strings.Contains(body, "is not the one registered") {
		t.Errorf("CAS login with another service: %d %s", status, body)
	}
}

// TestOneAccessUnifiedLogin: the unified-login entry sends the user to
// the app's callback with code and tenant and no state; the code works
// at the token endpoint.
func TestOneAccessUnifiedLogin(t *testing.T) {
	w := startOA(t, jointID, nil)
	// Before any callback is registered, redirect_uri is needed.
	if status, _, body := w.get(w.newBrowser(), w.domain+"/api/v1/unified-login"); status != http.StatusBadRequest || !strings.Contains(body, "redirect_uri is required") {
		t.Errorf("unified login without a callback: %d %s", status, body)
	}
	status, loc, _ := w.signIn(w.browser, w.domain+"/api/v1/unified-login?redirect_uri="+url.QueryEscape(callback), "user005", DefaultUserPassword)
	q := w.location(loc, callback)
	if status != http.StatusFound || q.Get("tenant") != w.tenant.TenantID || q.Get("code") == "" || q.Has("state") || len(q) != 2 {
		t.Fatalf("unified login: %d to %q", status, loc)
	}
	tok := w.exchange(q.Get("code"), callback)
	if status, body := w.userinfo(tok.AccessToken); status != http.StatusOK || !strings.Contains(body, `"userName":"user005"`) {
		t.Errorf("userinfo: %d %s", status, body)
	}
	// Signed in, with the registered callback: at once.
	status, loc, _ = w.get(w.browser, w.domain+"/api/v1/unified-login")
	if q := w.location(loc, callback); status != http.StatusFound || q.Get("tenant") != w.tenant.TenantID || q.Get("code") == "" {
		t.Errorf("unified login with the session: %d to %q", status, loc)
	}
}

// TestOneAccessRevokedUsers: users revoked (V2) or deleted (V1) still
// sign in at OneAccess, as at a real directory: refusing them is the
// seller's job.
func TestOneAccessRevokedUsers(t *testing.T) {
	for _, product := range []string{jointID, v1ID} {
		t.Run(product, func(t *testing.T) {
			w := startOA(t, product, nil)
			run, err := w.v.e.PlayWith(context.Background(), w.sub.ID, scenarioRevokeUser, PlayOptions{UserName: "user010"})
			if err != nil || !run.OK {
				t.Fatalf("revoke-user: %v %+v", err, run)
			}
			tn, _ := w.v.e.Tenant(w.sub.TenantID)
			for _, u := range tn.Users {
				if u.UserName == "user010" && u.Authorized {
					t.Fatalf("user010 still authorised")
				}
			}
			status, loc, _ := w.signIn(w.browser, w.authorizeURL(callback, "r"), "user010", DefaultUserPassword)
			if status != http.StatusFound {
				t.Fatalf("revoked user's sign-in: %d", status)
			}
			tok := w.exchange(w.location(loc, callback).Get("code"), callback)
			if status, body := w.userinfo(tok.AccessToken); status != http.StatusOK || !strings.Contains(body, `"userName":"user010"`) {
				t.Errorf("revoked user's userinfo: %d %s", status, body)
			}
		})
	}
}

// TestOneAccessUserPassword: Config.UserPassword replaces the default.
func TestOneAccessUserPassword(t *testing.T) {
	w := startOA(t, jointID, func(c *Config) { c.UserPassword = "s3cret-for-all" })
	if status, _, _ := w.signIn(w.newBrowser(), w.authorizeURL(callback, "p"), "user001", DefaultUserPassword); status != http.StatusUnauthorized {
		t.Errorf("default password: %d, want 401", status)
	}
	if status, _, _ := w.signIn(w.newBrowser(), w.authorizeURL(callback, "p"), "user001", "s3cret-for-all"); status != http.StatusFound {
		t.Errorf("configured password: %d, want 302", status)
	}
}

// TestOneAccessFaults: the failing token endpoint answers 500; the slow
// one outlasts a client's timeout; both are set through the JSON API.
func TestOneAccessFaults(t *testing.T) {
	w := startOA(t, jointID, nil)
	put := func(body string) (int, string) {
		r, _ := http.NewRequest(http.MethodPut, w.base+"/api/emulator/faults", strings.NewReader(body))
		status, _, b := do(t, http.DefaultClient, r)
		return status, b
	}
	if status, body := put(`{"oneaccessTokenFail":true}`); status != http.StatusOK || !strings.Contains(body, `"oneaccessTokenFail":true`) {
		t.Fatalf("PUT faults: %d %s", status, body)
	}
	_, loc, _ := w.signIn(w.browser, w.authorizeURL(callback, "f"), "user001", DefaultUserPassword)
	code := w.location(loc, callback).Get("code")
	status, body := w.tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}})
	if status != http.StatusInternalServerError || body != `{"error":"server_error","error_description":"Internal server error"}` {
		t.Errorf("failing token endpoint: %d %s", status, body)
	}
	// The failure came before the code was looked at: it still works.
	if status, body := put(`{"oneaccessTokenLatency":"1m"}`); status != http.StatusOK || !strings.Contains(body, `"oneaccessTokenLatency":"1m0s"`) {
		t.Fatalf("PUT faults: %d %s", status, body)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}, "client_id": {w.client}, "client_secret": {w.secret}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.domain+"/api/v1/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(r); err == nil {
		resp.Body.Close()
		t.Errorf("slow token endpoint answered %d", resp.StatusCode)
	}
	if status, _ := put(`{}`); status != http.StatusOK {
		t.Fatal("switch faults off")
	}
	w.exchange(code, callback)

	for _, bad := range []string{`{"oneaccessTokenLatency":"-1s"}`, `{"oneaccessTokenLatency":"6m"}`} {
		if status, body := put(bad); status != http.StatusBadRequest || !strings.Contains(body, "oneaccessTokenLatency") {
			t.Errorf("PUT %s: %d %s", bad, status, body)
		}
	}
}

// TestOneAccessLogout: logout without redirect_url says so; a bad
// redirect_url is refused; an unknown tenant is 404.
func TestOneAccessLogout(t *testing.T) {
	w := startOA(t, jointID, nil)
	tests := []struct {
		name   string
		url    string
		status int
		want   string
	}{
		{"no redirect_url", w.domain + "/api/v1/logout", http.StatusOK, "You are signed out."},
		{"bad redirect_url", w.domain + "/api/v1/logout?redirect_url=" + url.QueryEscape("//evil.example.com"), http.StatusBadRequest, "not an absolute http(s) URL"},
		{"unknown tenant", w.base + "/oneaccess/emunosuch/api/v1/logout?redirect_url=" + url.QueryEscape(callback), http.StatusNotFound, "no such tenant"},
	}
	for _, tt := range tests {
		if status, loc, body := w.get(w.newBrowser(), tt.url); status != tt.status || loc != "" || !strings.Contains(body, tt.want) {
			t.Errorf("%s: %d to %q: %s", tt.name, status, loc, body)
		}
	}
}
