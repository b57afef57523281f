package sso_test

import (
	"crypto/rand"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/sso"
)

// TestUnregisteredRedirectURI: an authorization request whose redirect_uri
// is not one the app registered (exactly) is answered with a 400 page and
// no redirect, and never reaches the identity center.
func TestUnregisteredRedirectURI(t *testing.T) {
	e := newEnv(t, dialects[0].open(t))
	e.fake.set(func(f *fakeOneAccess) { f.user = "alice" })
	for _, tc := range []struct{ name, uri string }{
		{"dot segments", appRedirect + "/../evil"},
		{"trailing slash", appRedirect + "/"},
		{"another case", "http://127.0.0.1:1/Callback"},
		{"a query added", appRedirect + "?next=https://evil.example/"},
		{"another host", "https://evil.example/callback"},
		{"another port", "http://127.0.0.1:2/callback"},
		{"https instead of http", "https://127.0.0.1:1/callback"},
		{"user info", "http://evil.example@127.0.0.1:1/callback"},
		{"scheme-relative", "//evil.example/callback"},
		{"the post-logout URI", appPostLogout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.browser.Jar, _ = cookiejar.New(nil)
			bad := e.oauth
			bad.RedirectURL = tc.uri
			before := e.fake.authorize
			f := newFlow()
			resp, body := e.get(bad.AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce),
				oauth2.SetAuthURLParam("tenant", tenantID)))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("redirect_uri %s: %d, Location %q, want 400 without a redirect; body %.200s", tc.uri, resp.StatusCode,
					resp.Header.Get("Location"), body)
			}
			if e.fake.authorize != before {
				t.Errorf("redirect_uri %s: the identity center was asked", tc.uri)
			}
		})
	}
}

// TestEndSessionRedirects: end_session sends the browser only to a
// post_logout_redirect_uri the app registered; one it did not register is
// answered with 400, and one without client_id or id_token_hint (so of no
// known app) is ignored for koobridge's own signed-out page.
func TestEndSessionRedirects(t *testing.T) {
	e := newEnv(t, dialects[0].open(t))
	for _, tc := range []struct {
		name   string
		query  url.Values
		status int
		to     string // Location; "" means none
	}{
		{"unregistered, with client_id", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {"https://evil.example/"}},
			http.StatusBadRequest, ""},
		{"registered one with a path added", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {appPostLogout + "/x"}},
			http.StatusBadRequest, ""},
		{"the redirect URI, not a post-logout one", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {appRedirect}},
			http.StatusBadRequest, ""},
		{"without client_id or hint", url.Values{"post_logout_redirect_uri": {"https://evil.example/"}},
			http.StatusFound, "/sso/logged-out"},
		{"a registered one without client_id or hint", url.Values{"post_logout_redirect_uri": {appPostLogout}},
			http.StatusFound, "/sso/logged-out"},
		{"nothing", url.Values{}, http.StatusFound, "/sso/logged-out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.browser.Jar, _ = cookiejar.New(nil)
			resp, body := e.get(e.issuer + "/end_session?" + tc.query.Encode())
			to := ""
			if tc.to != "" {
				to = e.issuer + tc.to
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != to {
				t.Fatalf("end_session?%s: %d to %q, want %d to %q; body %.200s", tc.query.Encode(), resp.StatusCode,
					resp.Header.Get("Location"), tc.status, to, body)
			}
			if to == "" {
				return
			}
			resp, body = e.get(to)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, "You are signed out.") {
				t.Errorf("signed-out page: %d %.200s", resp.StatusCode, body)
			}
		})
	}
	// A valid hint does not make an unregistered URI good.
	tok, _ := e.signIn("alice")
	raw, _ := tok.Extra("id_token").(string)
	evil := e.issuer + "/end_session?" + url.Values{"id_token_hint": {raw}, "client_id": {clientID},
		"post_logout_redirect_uri": {"https://evil.example/"}}.Encode()
	signedIn := e.browser.Jar
	e.browser.Jar, _ = cookiejar.New(nil)
	resp, body := e.get(evil)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("end_session with a hint and an unregistered URI: %d to %q, want 400; body %.200s", resp.StatusCode,
			resp.Header.Get("Location"), body)
	}
	// From the signed-in browser the logout is refused all the same, yet the
	// user asked to sign out: the session ends through the tenant's logout,
	// which returns to koobridge's signed-out page, never to the
	// unregistered URI.
	e.browser.Jar = signedIn
	resp, body = e.get(evil)
	viaLogout := e.fake.srv.URL + "/api/v1/logout?" + url.Values{"redirect_url": {e.issuer + "/sso/logged-out"}}.Encode()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != viaLogout {
		t.Errorf("signed in, end_session with a hint and an unregistered URI: %d to %q, want 302 to %q; body %.200s",
			resp.StatusCode, resp.Header.Get("Location"), viaLogout, body)
	}
}

// cookieSeen is one koobridge cookie of a Set-Cookie header.
type cookieSeen struct {
	Name    string
	Cleared bool
}

// TestCookieAttributes: every cookie koobridge sets or clears in a sign-in
// and a sign-out is HttpOnly, SameSite=Lax, on the issuer's path, and
// Secure exactly when the issuer is https.
func TestCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tls    bool
		issuer string // a path after the server's URL
	}{
		{"http", false, ""},
		{"https", true, ""},
		{"https under a path", true, "/idp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := dialects[0].open(t)
			dataKey := make([]byte, seal.KeySize)
			_, _ = rand.Read(dataKey)
			sealer, err := seal.NewSealer(dataKey)
			if err != nil {
				t.Fatal(err)
			}
			fake := newFakeOneAccess(t, oaClientID, oaSecret, tenantID)
			fake.users["alice"] = "Alice"
			fake.user = "alice"
			seedKit(t, st, sealer, fake.srv.URL)
			var handler http.Handler
			serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) })
			kb := httptest.NewUnstartedServer(serve)
			if tc.tls {
				kb.StartTLS()
			} else {
				kb.Start()
			}
			t.Cleanup(kb.Close)
			issuer := kb.URL + tc.issuer
			p, err := sso.New(sso.Config{Issuer: issuer, Store: st, DataKey: dataKey,
				Clients: []sso.Client{{ID: clientID, Secret: clientSecret, RedirectURIs: []string{appRedirect},
					PostLogoutRedirectURIs: []string{appPostLogout}}}})
			if err != nil {
				t.Fatal(err)
			}
			handler = p.Handler()

			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Transport: kb.Client().Transport, Jar: jar,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			ctx := oidc.ClientContext(t.Context(), browser)
			provider, err := oidc.NewProvider(ctx, issuer)
			if err != nil {
				t.Fatalf("discovery: %v", err)
			}
			conf := oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: provider.Endpoint(),
				RedirectURL: appRedirect, Scopes: []string{oidc.ScopeOpenID}}

			var seen []cookieSeen
			// visit GETs u and returns its Location, checking koobridge's
			// cookies. Messages name u's path only: its query may hold a
			// code or a token.
			visit := func(u string) string {
				t.Helper()
				resp, err := browser.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				path := resp.Request.URL.Path
				if resp.StatusCode != http.StatusFound {
					t.Fatalf("GET %s: %d, want 302", path, resp.StatusCode)
				}
				if strings.HasPrefix(u, kb.URL) {
					for _, c := range resp.Cookies() {
						seen = append(seen, cookieSeen{c.Name, c.MaxAge < 0})
						if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tc.tls || c.Path != tc.issuer+"/" {
							t.Errorf("GET %s sets %s: HttpOnly %v, SameSite %v, Secure %v, Path %q; want HttpOnly, Lax, Secure %v, Path %q",
								path, c.Name, c.HttpOnly, c.SameSite, c.Secure, c.Path, tc.tls, tc.issuer+"/")
						}
					}
				}
				return resolve(u, resp.Header.Get("Location"))
			}

			f := newFlow()
			u := conf.AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce),
				oauth2.SetAuthURLParam("tenant", tenantID))
			for hops := 0; !strings.HasPrefix(u, appRedirect); hops++ {
				if hops == 10 {
					t.Fatalf("no redirect to the app after %d hops; at %s", hops, u)
				}
				u = visit(u)
			}
			cb, _ := url.Parse(u)
			tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(f.verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			raw, _ := tok.Extra("id_token").(string)
			visit(issuer + "/end_session?" + url.Values{"id_token_hint": {raw}, "client_id": {clientID},
				"post_logout_redirect_uri": {appPostLogout}}.Encode())

			want := []cookieSeen{{sso.StateCookie, false}, {sso.StateCookie, true}, {sso.SessionCookie, false}, {sso.SessionCookie, true}}
			if !reflect.DeepEqual(seen, want) {
				t.Errorf("koobridge's cookies %v, want %v", seen, want)
			}
		})
	}
}
