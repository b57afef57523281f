package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// The sample app of examples/sso-app, built once from its own module and
// run as a child process.
var (
	appBinOnce sync.Once
	appBinPath string
	appBinErr  error
)

func ssoAppBinary(t *testing.T) string {
	t.Helper()
	koobridgeBinary(t) // skips with -short; makes binDir, removed by TestMain
	appBinOnce.Do(func() {
		appBinPath = filepath.Join(binDir, "sso-app")
		cmd := exec.Command("go", "build", "-o", appBinPath, ".")
		cmd.Dir = filepath.Join("..", "..", "examples", "sso-app")
		if out, err := cmd.CombinedOutput(); err != nil {
			appBinErr = fmt.Errorf("go build examples/sso-app: %v\n%s", err, out)
		}
	})
	if appBinErr != nil {
		t.Fatal(appBinErr)
	}
	return appBinPath
}

// appProc is a running sample app.
type appProc struct {
	base string
	out  *lockedOutput
}

var appListeningRE = regexp.MustCompile(`sso-app listening on (http://\S+)/ `)

// startSSOApp runs the sample app on addr against issuer; the client
// secret goes in the environment, as its README advises.
func startSSOApp(t *testing.T, addr, issuer, clientID, secret string, extra ...string) *appProc {
	t.Helper()
	cmd := exec.Command(ssoAppBinary(t), append([]string{"-listen", addr, "-issuer", issuer, "-client-id", clientID}, extra...)...)
	cmd.Env = append(cleanEnv(), "SSO_CLIENT_SECRET="+secret)
	base, out := startProcess(t, "sso-app", cmd, appListeningRE)
	return &appProc{base: base, out: out}
}

// browser is a user agent with a cookie jar that follows every redirect
// and remembers where it landed.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// page is where a browser landed.
type page struct {
	status int
	url    *url.URL
	body   string
	hops   []string // every URL visited, the last one included
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	var hops []string
	b.c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 20 {
			return fmt.Errorf("more than 20 redirects: %v", hops)
		}
		hops = append(hops, r.URL.String())
		return nil
	}
	hops = append(hops, req.URL.String())
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v (hops %v)", req.Method, req.URL, err, hops)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(raw), hops: hops}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	loginFormRE = regexp.MustCompile(`<form id="login" method="post" action="([^"]*)">`)
	hiddenRE    = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// isLoginForm reports whether p is the emulated OneAccess's login form.
func (p page) isLoginForm() bool {
	return p.status == http.StatusOK && loginFormRE.MatchString(p.body)
}

// signIn fills in the OneAccess login form p shows and submits it.
func (b *browser) signIn(p page, user, password string) page {
	b.t.Helper()
	m := loginFormRE.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		b.t.Fatalf("want the OneAccess login form, got %d at %s (hops %v):\n%s", p.status, p.url, p.hops, p.body)
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	form := url.Values{"username": {user}, "password": {password}}
	for _, h := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Add(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	return b.post(action.String(), form)
}

// signedIn is what the sample app's home page says of who is signed in.
type signedIn struct {
	sub, name, tenant, role, org string
	refreshes                    int
	userinfo                     string
}

var appFieldRE = regexp.MustCompile(`<(?:dd|span) id="(sub|name|tenant|role|org|refreshes|userinfo)">([^<]*)<`)

// whoIsSignedIn reads the sample app's home page; ok is false when it
// shows no one.
func whoIsSignedIn(t *testing.T, p page) (signedIn, bool) {
	t.Helper()
	if !strings.Contains(p.body, `<h1 id="title">Signed in</h1>`) {
		return signedIn{}, false
	}
	var s signedIn
	for _, m := range appFieldRE.FindAllStringSubmatch(p.body, -1) {
		v := html.UnescapeString(m[2])
		switch m[1] {
		case "sub":
			s.sub = v
		case "name":
			s.name = v
		case "tenant":
			s.tenant = v
		case "role":
			s.role = v
		case "org":
			s.org = v
		case "refreshes":
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("refreshes %q", v)
			}
			s.refreshes = n
		case "userinfo":
			s.userinfo = v
		}
	}
	return s, true
}

// ssoWorld is the three processes of a single sign-on: the emulator
// playing KooGallery and the tenants' OneAccess, koobridge serve as the
// OpenID Connect provider, and the sample app.
type ssoWorld struct {
	srv    *serveProc
	em     *emulateProc
	app    *appProc
	secret string
	sub    string // the emulator's subscription of the joint-operation product
	tenant jointTenant
}

const (
	ssoClientID     = "sample-app"
	ssoUserPassword = "e2e-user-password-42"
)

// startSSOWorld starts the three processes, binds a joint-operation
// product to an enterprise and authorises its users. emuArgs and
// appArgs are added to the emulator's and the app's flags.
func startSSOWorld(t *testing.T, emuArgs, appArgs []string, serveArgs ...string) *ssoWorld {
	t.Helper()
	bin := koobridgeBinary(t)
	dir := t.TempDir()
	const key, kitKey = "sso-e2e-basic-key-0123456789", "sso-e2e-kit-key-9876543210"
	prefix := filepath.Join(dir, "app")
	if out, err := exec.Command(bin, "keygen", "rsa", "--out", prefix).CombinedOutput(); err != nil {
		t.Fatalf("keygen rsa: %v\n%s", err, out)
	}
	w := &ssoWorld{secret: "sso-e2e-client-secret-" + randomNonce(t)[:16]}
	serverAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	appAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	public, appURL := "http://"+serverAddr, "http://"+appAddr
	// The emulator is the server's Open API too (Query Order).
	w.em = startEmulate(t, append([]string{"--listen", "127.0.0.1:0", "--target", public + "/produce",
		"--key", key, "--kit-key", kitKey, "--ak", testAK, "--sk", testSK, "--rsa-public-key-file", prefix + ".pub.pem",
		"--user-password", ssoUserPassword}, emuArgs...)...)
	w.srv = startServe(t, "--db", filepath.Join(dir, "k.db"), "--key", key, "--kit-key", kitKey,
		"--rsa-private-key-file", prefix+".pem", "--ak", testAK, "--sk", testSK, "--data-key", newDataKey(t),
		"--openapi-url", w.em.base, "--listen", serverAddr, "--admin-token", adminToken,
		"--public-url", public, "--sso-client-id", ssoClientID, "--sso-client-secret", w.secret,
		"--sso-redirect-uri", appURL+"/callback", "--sso-post-logout-redirect-uri", appURL+"/",
		"--sso-initiate-login-uri", appURL+"/initiate-login")
	if len(serveArgs) > 0 {
		// serve again with the extra settings (the first one proved the
		// plain configuration starts).
		_ = w.srv.stop(t, os.Interrupt)
		w.srv = startServe(t, append([]string{"--db", filepath.Join(dir, "k.db"), "--key", key, "--kit-key", kitKey,
			"--rsa-private-key-file", prefix + ".pem", "--ak", testAK, "--sk", testSK, "--data-key", newDataKey(t),
			"--openapi-url", w.em.base, "--listen", serverAddr, "--admin-token", adminToken,
			"--public-url", public, "--sso-client-id", ssoClientID, "--sso-client-secret", w.secret,
			"--sso-redirect-uri", appURL + "/callback", "--sso-post-logout-redirect-uri", appURL + "/",
			"--sso-initiate-login-uri", appURL + "/initiate-login"}, serveArgs...)...)
	}
	if w.srv.base != public {
		t.Fatalf("serve listens on %s, want %s", w.srv.base, public)
	}
	w.app = startSSOApp(t, appAddr, public, ssoClientID, w.secret, appArgs...)
	if w.app.base != appURL {
		t.Fatalf("the sample app listens on %s, want %s", w.app.base, appURL)
	}

	var run struct {
		SubscriptionID string `json:"subscriptionId"`
		OK             bool   `json:"ok"`
		Err            string `json:"error"`
	}
	w.em.purchase(t, `{"productId":"OFFI-EMU-JOINT"}`, &run)
	if !run.OK {
		t.Fatalf("joint purchase: %s", run.Err)
	}
	sub := run.SubscriptionID
	w.sub = sub
	for _, scenario := range []string{"bind", "authorize-users"} {
		w.play(t, scenario, "")
	}
	var all []struct {
		TenantID       string `json:"tenantId"`
		SubscriptionID string `json:"subscriptionId"`
	}
	getJSON(t, w.em.base+"/api/emulator/tenants", "", &all)
	for _, x := range all {
		if x.SubscriptionID == sub {
			getJSON(t, w.em.base+"/api/emulator/tenants/"+x.TenantID, "", &w.tenant)
		}
	}
	if w.tenant.TenantID == "" || len(w.tenant.Users) < 2 {
		t.Fatalf("no tenant with users for %s: %+v", sub, all)
	}
	// The server heard the binding and the users.
	waitFor(t, "the tenant's users on the server", func() bool {
		var kept jointTenant
		getJSON(t, w.srv.base+"/admin/api/tenants/"+w.tenant.TenantID, adminToken, &kept)
		return len(kept.Users) == len(w.tenant.Users)
	})
	return w
}

// play plays scenario on the joint-operation subscription; extra adds
// fields to the request.
func (w *ssoWorld) play(t *testing.T, scenario, extra string) {
	t.Helper()
	var r struct {
		OK  bool   `json:"ok"`
		Err string `json:"error"`
	}
	w.em.post(t, "/api/emulator/subscriptions/"+w.sub+"/play", `{"scenario":"`+scenario+`"`+extra+`}`, &r)
	if !r.OK {
		t.Fatalf("%s: %s", scenario, r.Err)
	}
}

// put sends a JSON body to the emulator's API with PUT and decodes the
// answer.
func (p *emulateProc) put(t *testing.T, path, body string, into any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, p.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("PUT %s: %v: %s", path, err, raw)
	}
}

// authorisedOnServer reports whether the server keeps userName as
// authorised for the tenant.
func (w *ssoWorld) authorisedOnServer(t *testing.T, userName string) bool {
	t.Helper()
	var kept jointTenant
	getJSON(t, w.srv.base+"/admin/api/tenants/"+w.tenant.TenantID, adminToken, &kept)
	for _, u := range kept.Users {
		if u.UserName == userName {
			return u.Authorized
		}
	}
	return false
}

// user is the tenant's i-th user as the emulator sent it.
func (w *ssoWorld) user(t *testing.T, i int) jointUser {
	t.Helper()
	u := w.tenant.Users[i]
	if !u.Authorized || !u.Enable {
		t.Fatalf("user %d (%s) is not an authorised, enabled user", i, u.UserName)
	}
	return u
}

// signInAs runs the app-initiated sign-in for user through every redirect
// and returns the page it ends on.
func (w *ssoWorld) signInAs(t *testing.T, b *browser, userName string) page {
	t.Helper()
	form := b.get(w.app.base + "/login?tenant=" + url.QueryEscape(w.tenant.TenantID))
	if !strings.HasPrefix(form.url.String(), w.tenant.DomainName+"/") {
		t.Fatalf("the sign-in did not reach the tenant's OneAccess %s but %s (hops %v)", w.tenant.DomainName, form.url, form.hops)
	}
	return b.signIn(form, userName, ssoUserPassword)
}

// wantSignedIn checks that p is the app's home page showing u.
func (w *ssoWorld) wantSignedIn(t *testing.T, p page, u jointUser) signedIn {
	t.Helper()
	s, ok := whoIsSignedIn(t, p)
	if !ok || p.url.String() != w.app.base+"/" {
		t.Fatalf("not signed in: %d at %s (hops %v):\n%s", p.status, p.url, p.hops, p.body)
	}
	want := signedIn{sub: u.UserName + "@" + w.tenant.TenantCode, name: u.Name, tenant: w.tenant.TenantID, role: u.Role, org: u.OrgCode,
		refreshes: s.refreshes, userinfo: "ok"}
	if s != want {
		t.Errorf("signed in as\n %+v\nwant\n %+v", s, want)
	}
	return s
}

// TestSSOEndToEnd is issue 13's end-to-end sign-in over real HTTP between
// separate processes: "koobridge emulate" plays KooGallery and the
// tenant's OneAccess, "koobridge serve" is the OpenID Connect provider,
// and the sample app (examples/sso-app, built from its own module) signs
// in through it, with a cookie jar following every redirect.
func TestSSOEndToEnd(t *testing.T) {
	w := startSSOWorld(t, nil, nil)
	alice, bob, carol := w.user(t, 0), w.user(t, 1), w.user(t, 2)

	t.Run("sign in", func(t *testing.T) {
		b := newBrowser(t)
		w.wantSignedIn(t, w.signInAs(t, b, alice.UserName), alice)
		// Signed in, the home page stays so.
		w.wantSignedIn(t, b.get(w.app.base+"/"), alice)
	})

	t.Run("wrong password stays at OneAccess", func(t *testing.T) {
		b := newBrowser(t)
		form := b.get(w.app.base + "/login?tenant=" + url.QueryEscape(w.tenant.TenantID))
		p := b.signIn(form, alice.UserName, "not-the-password")
		if p.status != http.StatusUnauthorized || !loginFormRE.MatchString(p.body) || !strings.Contains(p.body, "Wrong user name or password.") {
			t.Errorf("a wrong password: %d at %s:\n%s", p.status, p.url, p.body)
		}
	})

	t.Run("revoked user refused", func(t *testing.T) {
		w.play(t, "revoke-user", `,"userName":"`+bob.UserName+`"`)
		waitFor(t, "the revocation on the server", func() bool { return !w.authorisedOnServer(t, bob.UserName) })
		b := newBrowser(t)
		p := w.signInAs(t, b, bob.UserName)
		if _, ok := whoIsSignedIn(t, p); ok {
			t.Fatalf("a revoked user signed in: %s", p.body)
		}
		// koobridge answers the app with an OpenID Connect error, and the
		// app says so.
		if p.status != http.StatusForbidden || p.url.Path != "/callback" || !strings.Contains(p.body, `<code id="error">access_denied</code>`) {
			t.Errorf("a revoked user: %d at %s (hops %v):\n%s", p.status, p.url, p.hops, p.body)
		}
	})

	t.Run("entry from the unified login page", func(t *testing.T) {
		b := newBrowser(t)
		entry := w.tenant.DomainName + "/api/v1/unified-login?redirect_uri=" + url.QueryEscape(w.srv.base+"/sso/callback")
		form := b.get(entry)
		p := b.signIn(form, carol.UserName, ssoUserPassword)
		w.wantSignedIn(t, p, carol)
		// It went through the app's initiate-login endpoint.
		through := false
		for _, h := range p.hops {
			through = through || strings.HasPrefix(h, w.app.base+"/initiate-login?")
		}
		if !through {
			t.Errorf("the entry did not pass the app's initiate_login_uri: %v", p.hops)
		}
	})

	t.Run("logout ends both sessions", func(t *testing.T) {
		b := newBrowser(t)
		w.wantSignedIn(t, w.signInAs(t, b, alice.UserName), alice)
		p := b.post(w.app.base+"/logout", nil)
		if p.status != http.StatusOK || p.url.String() != w.app.base+"/" || !strings.Contains(p.body, `<h1 id="title">Signed out</h1>`) {
			t.Fatalf("after logout: %d at %s (hops %v):\n%s", p.status, p.url, p.hops, p.body)
		}
		reachedIdP := false
		for _, h := range p.hops {
			reachedIdP = reachedIdP || strings.HasPrefix(h, w.tenant.DomainName+"/api/v1/logout?")
		}
		if !reachedIdP {
			t.Errorf("logout did not reach the tenant's OneAccess: %v", p.hops)
		}
		// A new sign-in shows OneAccess's form again: neither koobridge
		// nor OneAccess still knows the browser.
		form := b.get(w.app.base + "/login?tenant=" + url.QueryEscape(w.tenant.TenantID))
		if !form.isLoginForm() {
			t.Fatalf("after logout a sign-in did not ask for a password: %d at %s (hops %v)", form.status, form.url, form.hops)
		}
		w.wantSignedIn(t, b.signIn(form, alice.UserName, ssoUserPassword), alice)
	})

	// Nothing secret in any process's log.
	for name, log := range map[string]string{"serve": w.srv.output(), "emulate": w.em.out.String(), "sso-app": w.app.out.String()} {
		for _, secret := range []string{w.secret, ssoUserPassword} {
			if strings.Contains(log, secret) {
				t.Errorf("%s's log holds a secret", name)
			}
		}
	}
}

// TestSSORefresh: the sample app renews its tokens at koobridge, and
// koobridge renews the user's OneAccess tokens, which the emulator makes
// expire after a second (--access-token-lifetime), admitting the user
// again against the Kit data each time. The app renews on every page
// (-refresh-early beyond koobridge's one-hour access tokens). A refresh
// that OneAccess refuses, and one for a user authSync revoked since, ends
// the app's session.
func TestSSORefresh(t *testing.T) {
	w := startSSOWorld(t, []string{"--access-token-lifetime", "1s"}, []string{"-refresh-early", "2h"})
	alice, bob, carol := w.user(t, 3), w.user(t, 4), w.user(t, 5)
	oneAccessExpired := func() {
		// OneAccess's access token of the sign-in has expired (1 s).
		time.Sleep(1100 * time.Millisecond)
	}

	t.Run("renewed", func(t *testing.T) {
		b := newBrowser(t)
		first := w.wantSignedIn(t, w.signInAs(t, b, alice.UserName), alice)
		if first.refreshes != 1 {
			t.Errorf("renewed %d times on the first page, want 1", first.refreshes)
		}
		for want := 2; want <= 3; want++ {
			oneAccessExpired()
			s := w.wantSignedIn(t, b.get(w.app.base+"/"), alice)
			if s.refreshes != want {
				t.Errorf("renewed %d times, want %d", s.refreshes, want)
			}
		}
	})

	t.Run("OneAccess down", func(t *testing.T) {
		b := newBrowser(t)
		w.wantSignedIn(t, w.signInAs(t, b, bob.UserName), bob)
		var f map[string]any
		w.em.put(t, "/api/emulator/faults", `{"oneaccessTokenFail":true}`, &f)
		oneAccessExpired()
		// koobridge keeps the session on the Kit data while OneAccess's
		// token endpoint fails (500), and honours the app's refresh.
		w.wantSignedIn(t, b.get(w.app.base+"/"), bob)
		w.em.put(t, "/api/emulator/faults", `{}`, &f)
		oneAccessExpired()
		w.wantSignedIn(t, b.get(w.app.base+"/"), bob)
	})

	t.Run("revoked since", func(t *testing.T) {
		b := newBrowser(t)
		w.wantSignedIn(t, w.signInAs(t, b, carol.UserName), carol)
		w.play(t, "revoke-user", `,"userName":"`+carol.UserName+`"`)
		waitFor(t, "the revocation on the server", func() bool { return !w.authorisedOnServer(t, carol.UserName) })
		p := b.get(w.app.base + "/")
		if _, ok := whoIsSignedIn(t, p); ok || !strings.Contains(p.body, "Your session has ended: the provider refused to renew it (invalid_grant).") {
			t.Errorf("a revoked user's refresh: %d\n%s", p.status, p.body)
		}
		// And a new sign-in is refused.
		p = w.signInAs(t, newBrowser(t), carol.UserName)
		if _, ok := whoIsSignedIn(t, p); ok || p.status != http.StatusForbidden {
			t.Errorf("a revoked user signed in again: %d\n%s", p.status, p.body)
		}
	})
}

// TestEmulateAccessTokenLifetime: --access-token-lifetime reaches the
// emulator's OneAccess; under a second is refused (expires_in counts
// seconds).
func TestEmulateAccessTokenLifetime(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want time.Duration
		err  string
	}{
		{"default", nil, 7200 * time.Second, ""},
		{"set", []string{"--access-token-lifetime", "90s"}, 90 * time.Second, ""},
		{"one second", []string{"--access-token-lifetime", "1s"}, time.Second, ""},
		{"under a second", []string{"--access-token-lifetime", "500ms"}, 0, "--access-token-lifetime 500ms: want at least 1s"},
		{"zero", []string{"--access-token-lifetime", "0s"}, 0, "--access-token-lifetime 0s: want at least 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o emulateOptions
			cmd := &cobra.Command{Use: "emulate"}
			o.register(cmd)
			if err := cmd.Flags().Parse(append([]string{"--target", "http://x/produce", "--key", "k"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			cfg, err := emulateConfig(cmd, &o, func(string) string { return "" })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || cfg.AccessTokenLifetime != tc.want {
				t.Errorf("AccessTokenLifetime %v, %v; want %v", cfg.AccessTokenLifetime, err, tc.want)
			}
		})
	}
}

// TestSSOCASEndToEnd: the same sign-in with the tenant's OneAccess over
// CAS 3.0 (serve --sso-cas-tenant '*'): the emulator's CAS login form,
// the ticket validated by koobridge at p3/serviceValidate, a revoked user
// refused, and logout through OneAccess.
func TestSSOCASEndToEnd(t *testing.T) {
	w := startSSOWorld(t, nil, nil, "--sso-cas-tenant", "*")
	alice, bob := w.user(t, 0), w.user(t, 1)
	b := newBrowser(t)
	form := b.get(w.app.base + "/login?tenant=" + url.QueryEscape(w.tenant.TenantID))
	if !strings.HasPrefix(form.url.String(), w.tenant.DomainName+"/api/v1/cas/login?") {
		t.Fatalf("the sign-in did not reach the tenant's CAS login but %s (hops %v)", form.url, form.hops)
	}
	w.wantSignedIn(t, b.signIn(form, alice.UserName, ssoUserPassword), alice)
	// A second sign-in of the tenant, in another browser (another service
	// query: another state).
	w.wantSignedIn(t, w.signInCAS(t, newBrowser(t), alice.UserName), alice)

	w.play(t, "revoke-user", `,"userName":"`+bob.UserName+`"`)
	waitFor(t, "the revocation on the server", func() bool { return !w.authorisedOnServer(t, bob.UserName) })
	p := w.signInCAS(t, newBrowser(t), bob.UserName)
	if _, ok := whoIsSignedIn(t, p); ok || !strings.Contains(p.body, `<code id="error">access_denied</code>`) {
		t.Errorf("a revoked user over CAS: %d at %s:\n%s", p.status, p.url, p.body)
	}

	p = b.post(w.app.base+"/logout", nil)
	reachedIdP := false
	for _, h := range p.hops {
		reachedIdP = reachedIdP || strings.HasPrefix(h, w.tenant.DomainName+"/api/v1/logout?")
	}
	if !reachedIdP || !strings.Contains(p.body, `<h1 id="title">Signed out</h1>`) {
		t.Errorf("CAS logout: %d at %s (hops %v)", p.status, p.url, p.hops)
	}
}

// signInCAS signs userName in over CAS in browser b.
func (w *ssoWorld) signInCAS(t *testing.T, b *browser, userName string) page {
	t.Helper()
	form := b.get(w.app.base + "/login?tenant=" + url.QueryEscape(w.tenant.TenantID))
	if !form.isLoginForm() {
		t.Fatalf("no CAS login form: %d at %s (hops %v)", form.status, form.url, form.hops)
	}
	return b.signIn(form, userName, ssoUserPassword)
}
