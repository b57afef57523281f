package ssoapp

// These tests cover what the app decides without its provider: settings,
// and the requests it refuses before it talks to the provider. Signing in
// is tested against koobridge itself, with the app built from this module
// and run as a process (koobridge's cmd/koobridge/sso_e2e_test.go and
// e2e/sso_test.go).

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const (
	testIssuer = "http://127.0.0.1:1" // nothing listens: a test that reached the provider fails
	testBase   = "http://127.0.0.1:8070"
)

func TestNewRefuses(t *testing.T) {
	ok := Config{Issuer: testIssuer, ClientID: "app", ClientSecret: "s", BaseURL: testBase}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"issuer not http", func(c *Config) { c.Issuer = "ftp://x" }, "issuer"},
		{"issuer with a query", func(c *Config) { c.Issuer = testIssuer + "?a=1" }, "issuer"},
		{"issuer without host", func(c *Config) { c.Issuer = "http://" }, "issuer"},
		{"base URL with a trailing slash", func(c *Config) { c.BaseURL = testBase + "/" }, "base URL"},
		{"base URL with a fragment", func(c *Config) { c.BaseURL = testBase + "#x" }, "base URL"},
		{"no client id", func(c *Config) { c.ClientID = "" }, "client id is empty"},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, "client secret is empty"},
		{"bad tenant", func(c *Config) { c.Tenant = "a b" }, "tenant"},
		{"negative refresh", func(c *Config) { c.RefreshEarly = -time.Second }, "refresh early"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
	a, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if a.RedirectURI() != testBase+"/callback" || a.PostLogoutRedirectURI() != testBase+"/" || a.InitiateLoginURI() != testBase+"/initiate-login" {
		t.Errorf("URIs: %s %s %s", a.RedirectURI(), a.PostLogoutRedirectURI(), a.InitiateLoginURI())
	}
}

// TestRefusals: requests the app refuses before it asks the provider
// anything (its issuer is a closed port, so one that did would answer
// 502, not the status wanted).
func TestRefusals(t *testing.T) {
	a, err := New(Config{Issuer: testIssuer, ClientID: "app", ClientSecret: "s", BaseURL: testBase,
		HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		text                       string
	}{
		{"unknown page", "GET", "/admin", "", 404, "There is no such page here."},
		{"home by POST", "POST", "/", "", 405, "This page takes GET, HEAD."},
		{"login by POST", "POST", "/login?tenant=t", "", 405, "This page takes GET."},
		{"tenant twice", "GET", "/login?tenant=a&tenant=b", "", 400, "the parameter tenant is given 2 times"},
		{"tenant with a space", "GET", "/login?tenant=a+b", "", 400, "The tenant must be 1 to 64"},
		{"tenant too long", "GET", "/login?tenant=" + strings.Repeat("t", 65), "", 400, "The tenant must be 1 to 64"},
		{"malformed query", "GET", "/login?tenant=%zz", "", 400, "the query is malformed"},
		{"callback without state", "GET", "/callback?code=c", "", 400, "This answer is not for a sign-in this browser started here"},
		{"callback with an unknown state", "GET", "/callback?code=c&state=forged", "", 400, "This answer is not for a sign-in this browser started here"},
		{"callback with state twice", "GET", "/callback?code=c&state=a&state=b", "", 400, "the parameter state is given 2 times"},
		{"callback by POST", "POST", "/callback?code=c&state=a", "", 405, "This page takes GET."},
		{"initiate login without iss", "GET", "/initiate-login", "", 400, "The iss parameter does not name this app&#39;s provider."},
		{"initiate login from another issuer", "GET", "/initiate-login?iss=http://127.0.0.1:2", "", 400, "does not name this app&#39;s provider"},
		{"initiate login to another site", "GET", "/initiate-login?iss=" + testIssuer + "&target_link_uri=https://evil.example/", "", 400, "The target_link_uri is not a page of this app."},
		{"initiate login to a look-alike host", "GET", "/initiate-login?iss=" + testIssuer + "&target_link_uri=" + testBase + ".evil.example/", "", 400, "The target_link_uri is not a page of this app."},
		{"initiate login with iss twice", "GET", "/initiate-login?iss=" + testIssuer + "&iss=" + testIssuer, "", 400, "the parameter iss is given 2 times"},
		{"initiate login with a bad tenant", "GET", "/initiate-login?iss=" + testIssuer + "&tenant=%3Cx%3E", "", 400, "The tenant must be"},
		{"initiate login with a long hint", "GET", "/initiate-login?iss=" + testIssuer + "&login_hint=" + strings.Repeat("h", 257), "", 400, "The login_hint is too long."},
		{"initiate login form with a query", "POST", "/initiate-login?iss=" + testIssuer, "iss=" + testIssuer, 400, "send the parameters in the form, not the query"},
		{"initiate login form, iss twice", "POST", "/initiate-login", "iss=a&iss=b", 400, "the parameter iss is given 2 times"},
		{"initiate login by PUT", "PUT", "/initiate-login", "", 405, "This page takes GET, POST."},
		{"logout by GET", "GET", "/logout", "", 405, "This page takes POST."},
		{"logout with a query", "POST", "/logout?next=https://evil.example/", "", 400, "Sign-out takes no parameters."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, req)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.text) {
				t.Errorf("%s %s: %d, want %d with %q:\n%s", tc.method, tc.target, rec.Code, tc.status, tc.text, rec.Body.String())
			}
			if rec.Header().Get("Location") != "" {
				t.Errorf("a refusal redirects to %s", rec.Header().Get("Location"))
			}
		})
	}
}

// TestLogoutWithoutSession: signing out of no session clears the cookie
// and goes home, without asking the provider.
func TestLogoutWithoutSession(t *testing.T) {
	a, err := New(Config{Issuer: testIssuer, ClientID: "app", ClientSecret: "s", BaseURL: testBase})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/logout", nil)
	req.AddCookie(&http.Cookie{Name: Cookie, Value: "unknown"})
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
		t.Fatalf("logout: %d to %q, want 303 to /", rec.Code, rec.Header().Get("Location"))
	}
	if c := rec.Result().Cookies(); len(c) != 1 || c[0].Name != Cookie || c[0].MaxAge >= 0 || !c[0].HttpOnly {
		t.Errorf("logout cookies: %+v, want %s cleared", c, Cookie)
	}
}

// TestTargetLinkURI: initiate-login keeps only the path and query of a
// target_link_uri that is a page of this app, and refuses every other
// one, in particular those a browser would read as another host once they
// are a Location after the sign-in (a review found "//evil.example/x" and
// "/\evil.example/x" let through by a prefix check).
func TestTargetLinkURI(t *testing.T) {
	for _, tc := range []struct {
		name, base, target string
		want               string // the pending target; "" means refused
		refusal            string
	}{
		{"home", testBase, testBase + "/", "/", ""},
		{"no path", testBase, testBase, "/", ""},
		{"a page with a query", testBase, testBase + "/orders?id=7&view=full", "/orders?id=7&view=full", ""},
		{"an escaped path", testBase, testBase + "/a%20b/c", "/a%20b/c", ""},
		{"upper-case scheme and host", "http://app.example", "HTTP://APP.example/x", "/x", ""},
		{"under the base path", "https://app.example/shop", "https://app.example/shop/cart?x=1", "/shop/cart?x=1", ""},
		{"double slash", testBase, testBase + "//evil.example/x", "", "The target_link_uri is not a page of this app."},
		{"backslash", testBase, testBase + "/\\evil.example/x", "", "The target_link_uri is not a page of this app."},
		{"encoded backslash", testBase, testBase + "/%5Cevil.example/x", "", "The target_link_uri is not a page of this app."},
		{"encoded double slash", testBase, testBase + "/%2F%2Fevil.example/x", "", "The target_link_uri is not a page of this app."},
		{"slash then backslash deeper", testBase, testBase + "/a/\\b", "", "The target_link_uri is not a page of this app."},
		{"encoded tab", testBase, testBase + "/%09/evil.example/x", "", "The target_link_uri is not a page of this app."},
		{"dot dot", testBase, testBase + "/a/../b", "", "The target_link_uri is not a page of this app."},
		{"encoded dot dot", testBase, testBase + "/a/%2e%2e/b", "", "The target_link_uri is not a page of this app."},
		{"out of the base path", "https://app.example/shop", "https://app.example/shop/../admin", "", "The target_link_uri is not a page of this app."},
		{"beside the base path", "https://app.example/shop", "https://app.example/shopping/x", "", "The target_link_uri is not a page of this app."},
		{"the base path without a slash", "https://app.example/shop", "https://app.example/shop", "", "The target_link_uri is not a page of this app."},
		{"another host", testBase, "https://evil.example/", "", "The target_link_uri is not a page of this app."},
		{"a look-alike host", testBase, testBase + ".evil.example/", "", "The target_link_uri is not a page of this app."},
		{"another port", testBase, "http://127.0.0.1:8071/", "", "The target_link_uri is not a page of this app."},
		{"another scheme", testBase, "https://127.0.0.1:8070/", "", "The target_link_uri is not a page of this app."},
		{"relative", testBase, "/x", "", "The target_link_uri is not a page of this app."},
		{"scheme-relative", testBase, "//127.0.0.1:8070/x", "", "The target_link_uri is not a page of this app."},
		{"javascript", testBase, "javascript:alert(1)", "", "The target_link_uri is not a page of this app."},
		{"opaque", testBase, "http:127.0.0.1:8070/x", "", "The target_link_uri is not a page of this app."},
		{"user info", testBase, "http://evil.example@127.0.0.1:8070/x", "", "The target_link_uri is malformed."},
		{"fragment", testBase, testBase + "/x#y", "", "The target_link_uri is malformed."},
		{"malformed escape", testBase, testBase + "/%zz", "", "The target_link_uri is not a page of this app."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(Config{Issuer: testIssuer, ClientID: "app", ClientSecret: "s", BaseURL: tc.base})
			if err != nil {
				t.Fatal(err)
			}
			// As if discovery had happened: start redirects without asking
			// the provider anything.
			a.provider = &discovered{oauth: oauth2.Config{ClientID: "app", Endpoint: oauth2.Endpoint{AuthURL: testIssuer + "/authorize"}}}
			q := url.Values{"iss": {testIssuer}, "target_link_uri": {tc.target}}
			rec := httptest.NewRecorder()
			a.ServeHTTP(rec, httptest.NewRequest("GET", "/initiate-login?"+q.Encode(), nil))
			if tc.want == "" {
				if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), html.EscapeString(tc.refusal)) ||
					rec.Header().Get("Location") != "" || len(a.sessions) != 0 {
					t.Fatalf("%s: %d, Location %q, %d sessions, want 400 %q and no session:\n%s", tc.target, rec.Code,
						rec.Header().Get("Location"), len(a.sessions), tc.refusal, rec.Body)
				}
				return
			}
			if rec.Code != http.StatusFound || !strings.HasPrefix(rec.Header().Get("Location"), testIssuer+"/authorize?") {
				t.Fatalf("%s: %d to %q, want 302 to the provider:\n%s", tc.target, rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			var targets []string
			for _, s := range a.sessions {
				for _, p := range s.pending {
					targets = append(targets, p.target)
				}
			}
			if len(targets) != 1 || targets[0] != tc.want {
				t.Fatalf("%s: pending targets %q, want [%q]", tc.target, targets, tc.want)
			}
			// The callback redirects to the pending target just so.
			cb := httptest.NewRecorder()
			http.Redirect(cb, httptest.NewRequest("GET", "/callback", nil), targets[0], http.StatusFound)
			if got := cb.Header().Get("Location"); got != tc.want {
				t.Errorf("%s: Location after the sign-in %q, want %q", tc.target, got, tc.want)
			}
		})
	}
}
