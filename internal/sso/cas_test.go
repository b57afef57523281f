package sso_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/koobridge/koobridge/internal/sso"
	"github.com/koobridge/koobridge/internal/store"
)

// casTenants configures the provider's CAS tenants.
func casTenants(tenants ...string) func(c *sso.Config) {
	return func(c *sso.Config) { c.CASTenants = tenants }
}

// forEachDialectCAS runs fn on each dialect with tenant acme on CAS.
func forEachDialectCAS(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) { fn(t, newEnvWith(t, d.open(t), casTenants(tenantID))) })
	}
}

// checkService checks that the CAS service koobridge sent is its
// /sso/cas with exactly a state and the tenant.
func (e *env) checkService(service string) {
	e.t.Helper()
	u, err := url.Parse(service)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != e.issuer+sso.CASServicePath {
		e.t.Fatalf("service %q is not %s", service, e.issuer+sso.CASServicePath)
	}
	q := u.Query()
	if len(q) != 2 || len(q["state"]) != 1 || len(q.Get("state")) != 43 || !reflect.DeepEqual(q["tenant"], []string{tenantID}) {
		e.t.Fatalf("service %q: want exactly a 43-character state and tenant=%s", service, tenantID)
	}
}

func TestCASSignIn(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			for _, tc := range []struct {
				name    string
				tenants []string
				xml     bool
			}{
				{"listed tenant, JSON answer", []string{"t-other", tenantID}, false},
				{"listed tenant, XML answer", []string{tenantID}, true},
				{"every tenant", []string{"*"}, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnvWith(t, d.open(t), casTenants(tc.tenants...))
					e.fake.set(func(f *fakeOneAccess) { f.casXML = tc.xml })
					tok, idt := e.signIn("alice")
					if got := userClaims(t, idt); !reflect.DeepEqual(got, aliceClaims) {
						t.Errorf("ID token claims %v, want %v", got, aliceClaims)
					}
					ui, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
					if err != nil {
						t.Fatalf("userinfo: %v", err)
					}
					if got := userClaims(t, ui); !reflect.DeepEqual(got, aliceClaims) {
						t.Errorf("userinfo claims %v, want %v", got, aliceClaims)
					}
					if e.fake.authorize != 0 || len(e.fake.access) != 0 {
						t.Errorf("OAuth at OneAccess: %d authorize requests, %d access tokens; want none", e.fake.authorize, len(e.fake.access))
					}
					if len(e.fake.casLogins) != 1 || !reflect.DeepEqual(e.fake.validated, e.fake.casLogins) {
						t.Fatalf("CAS logins %q, validations %q: want one, validated for the same service", e.fake.casLogins, e.fake.validated)
					}
					e.checkService(e.fake.casLogins[0])
					if len(e.fake.tickets) != 0 {
						t.Errorf("tickets left unvalidated: %d", len(e.fake.tickets))
					}
				})
			}
		})
	}
}

// TestCASOnlyListed: a tenant not listed keeps OAuth 2.0.
func TestCASOnlyListed(t *testing.T) {
	e := newEnvWith(t, dialects[0].open(t), casTenants("t-other"))
	_, idt := e.signIn("alice")
	if idt.Subject != "alice@acme" || e.fake.authorize != 1 || len(e.fake.casLogins) != 0 {
		t.Errorf("sub %q after %d OAuth and %d CAS logins; want alice@acme after 1 and 0", idt.Subject, e.fake.authorize, len(e.fake.casLogins))
	}
}

// TestCASRefused: the admission rules of OAuth hold over CAS, and a
// ticket the identity center refuses reaches the app as access_denied;
// every refusal on the app's redirect URI with its state, and no code.
func TestCASRefused(t *testing.T) {
	forEachDialectCAS(t, func(t *testing.T, e *env) {
		notAuthorised := "The user is not authorised for this application."
		for _, tc := range []struct {
			name, user string
			set        func(f *fakeOneAccess)
			desc       string
		}{
			{"never authorised", "dave", nil, notAuthorised},
			{"revoked", "bob", nil, notAuthorised},
			{"disabled", "carol", nil, notAuthorised},
			{"disabled, XML answer", "carol", func(f *fakeOneAccess) { f.casXML = true }, notAuthorised},
			{"user of another tenant", "alice", func(f *fakeOneAccess) { f.casTenant = "t-other" },
				"The identity center signed in a user of another tenant."},
			{"INVALID_TICKET, JSON answer", "alice", func(f *fakeOneAccess) { f.failTicket = true },
				"The identity center refused the ticket (INVALID_TICKET)."},
			{"INVALID_TICKET, XML answer", "alice", func(f *fakeOneAccess) { f.failTicket, f.casXML = true, true },
				"The identity center refused the ticket (INVALID_TICKET)."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e.browser.Jar, _ = cookiejar.New(nil)
				e.fake.set(func(f *fakeOneAccess) {
					f.user, f.casXML, f.failTicket, f.casTenant = tc.user, false, false, ""
					if tc.set != nil {
						tc.set(f)
					}
				})
				f := newFlow()
				q := e.authorize(f, tenantID)
				want := url.Values{"error": {"access_denied"}, "error_description": {tc.desc}, "state": {f.state}, "iss": {e.issuer}}
				if !reflect.DeepEqual(q, want) {
					t.Errorf("redirect to the app: %v, want %v", q, want)
				}
			})
		}
	})
}

// casWalk runs the browser from the app's authorization request to
// OneAccess's answer at the CAS service, without following it, and
// returns that answer's URL.
func (e *env) casWalk(f flow) *url.URL {
	e.t.Helper()
	e.fake.set(func(f *fakeOneAccess) { f.user = "alice" })
	resp, _ := e.get(e.oauth.AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce),
		oauth2.SetAuthURLParam("tenant", tenantID)))
	resp, _ = e.get(resolve(e.issuer, resp.Header.Get("Location"))) // login → CAS login
	login := resp.Header.Get("Location")
	if !strings.HasPrefix(login, e.fake.srv.URL+"/api/v1/cas/login?service=") {
		e.t.Fatalf("login step sent the browser to %q, want the CAS login", login)
	}
	resp, _ = e.get(login) // CAS login → service
	cb, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(cb.String(), e.issuer+sso.CASServicePath+"?") || !strings.HasPrefix(cb.Query().Get("ticket"), "ST-") {
		e.t.Fatalf("CAS login answered %s", cb)
	}
	return cb
}

// TestCASServiceAndState: an answer at the service with another state or
// tenant than the round's is a 400 page and leaves the round for the
// genuine answer, which works once; a ticket issued for another round's
// service is refused by the identity center (INVALID_SERVICE).
func TestCASServiceAndState(t *testing.T) {
	e := newEnvWith(t, dialects[0].open(t), casTenants(tenantID))
	f := newFlow()
	cb := e.casWalk(f)
	for _, tc := range []struct {
		name  string
		query func(v url.Values)
	}{
		{"another state", func(v url.Values) { v.Set("state", "forged") }},
		{"state twice", func(v url.Values) { v.Add("state", v.Get("state")) }},
		{"another tenant", func(v url.Values) { v.Set("tenant", "t-other") }},
		{"no tenant", func(v url.Values) { v.Del("tenant") }},
		{"tenant twice", func(v url.Values) { v.Add("tenant", tenantID) }},
		{"ticket twice", func(v url.Values) { v.Add("ticket", "ST-999") }},
		{"no state, no tenant", func(v url.Values) { v.Del("state"); v.Del("tenant") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := cb.Query()
			tc.query(v)
			u := *cb
			u.RawQuery = v.Encode()
			resp, body := e.get(u.String())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || strings.Contains(body, "ST-") {
				t.Errorf("service with %s: %d, Location %q, body %s; want a 400 page", tc.name, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		})
	}
	if len(e.fake.validated) != 0 {
		t.Fatalf("tickets validated for the forged answers: %q", e.fake.validated)
	}
	// The genuine answer works once.
	q := e.follow(cb.String(), appRedirect)
	if q.Get("code") == "" || q.Get("state") != f.state {
		t.Fatalf("the genuine answer: %v", q)
	}
	if resp, _ := e.get(cb.String()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the answer again: %d, want 400", resp.StatusCode)
	}

	// A ticket of round B played into round C: validated for C's service,
	// which is not the ticket's.
	e.browser.Jar, _ = cookiejar.New(nil)
	ticketB := e.casWalk(newFlow()).Query().Get("ticket")
	e.browser.Jar, _ = cookiejar.New(nil)
	fc := newFlow()
	cbC := e.casWalk(fc)
	v := cbC.Query()
	v.Set("ticket", ticketB)
	cbC.RawQuery = v.Encode()
	q = e.follow(cbC.String(), appRedirect)
	want := url.Values{"error": {"access_denied"}, "error_description": {"The identity center refused the ticket (INVALID_SERVICE)."},
		"state": {fc.state}, "iss": {e.issuer}}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("another round's ticket: %v, want %v", q, want)
	}
}

// TestCASRefresh: a CAS session has no OneAccess token, so a refresh
// asks OneAccess nothing, hours later too; it re-checks the Kit data.
func TestCASRefresh(t *testing.T) {
	forEachDialectCAS(t, func(t *testing.T, e *env) {
		tok, _ := e.signIn("alice")
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		tok2, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		e.verify(tok2, "")
		e.clock.Add(3 * time.Hour)
		tok3, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh after 3 h: %v", err)
		}
		if got := userClaims(t, e.verify(tok3, "")); !reflect.DeepEqual(got, aliceClaims) {
			t.Errorf("claims after refresh %v, want %v", got, aliceClaims)
		}
		if e.fake.refreshes != 0 || len(e.fake.access) != 0 || len(e.fake.validated) != 1 {
			t.Errorf("OneAccess saw %d refreshes, %d access tokens, %d validations; want 0, 0, 1", e.fake.refreshes, len(e.fake.access), len(e.fake.validated))
		}
		// authSync disables alice: the next refresh and userinfo are refused.
		e.setUser("alice", func(u *store.TenantUser) { u.Enable = false })
		if _, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("refresh of a disabled user: %v, want invalid_grant", err)
		}
		if _, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok3)); err == nil {
			t.Fatal("userinfo of a disabled user answered")
		}
	})
}

// TestCASLogout: end_session of a CAS session goes through the tenant's
// OneAccess logout (Part C.5) to the app, and ends koobridge's session.
func TestCASLogout(t *testing.T) {
	forEachDialectCAS(t, func(t *testing.T, e *env) {
		tok, _ := e.signIn("alice")
		raw, _ := tok.Extra("id_token").(string)
		end := e.issuer + "/end_session?" + url.Values{"id_token_hint": {raw}, "client_id": {clientID},
			"post_logout_redirect_uri": {appPostLogout}, "state": {"bye-2"}}.Encode()
		resp, _ := e.get(end)
		want := e.fake.srv.URL + "/api/v1/logout?" + url.Values{"redirect_url": {appPostLogout + "?state=bye-2"}}.Encode()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Fatalf("end_session: %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		q := e.follow(end, appPostLogout)
		if !reflect.DeepEqual(q, url.Values{"state": {"bye-2"}}) {
			t.Errorf("landed with %v", q)
		}
		if !reflect.DeepEqual(e.fake.logouts, []string{appPostLogout + "?state=bye-2"}) {
			t.Errorf("OneAccess logouts %q, want one to the app", e.fake.logouts)
		}
		if _, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("refresh after logout: %v, want invalid_grant", err)
		}
		e.signIn("alice")
		if len(e.fake.casLogins) != 2 {
			t.Errorf("CAS logins after logout and a new sign-in: %d, want 2", len(e.fake.casLogins))
		}
	})
}

// TestCASEntry: the per-tenant login link and the entries from KooGallery
// (at the OAuth callback with code, at the CAS service with ticket, both
// with tenant and no state) run a fresh CAS round, validate no ticket
// they were handed, and enter the app through its initiate_login_uri.
func TestCASEntry(t *testing.T) {
	e := newEnvWith(t, dialects[0].open(t), casTenants(tenantID))
	e.fake.set(func(f *fakeOneAccess) {
		f.user = "alice"
		f.tickets["ST-unified"] = casTicket{user: "bob", service: e.issuer + sso.CASServicePath + "?tenant=" + tenantID}
		f.codes["code-unified"] = "bob"
	})
	want := url.Values{"iss": {e.issuer}, "target_link_uri": {"http://127.0.0.1:1/"}, "tenant": {tenantID}}
	for i, u := range []string{
		e.issuer + "/sso/" + tenantID + "/login",
		e.issuer + sso.CASServicePath + "?ticket=ST-unified&tenant=" + tenantID,
		e.issuer + sso.CallbackPath + "?code=code-unified&tenant=" + tenantID,
	} {
		e.browser.Jar, _ = cookiejar.New(nil)
		if q := e.follow(u, appInitiate); !reflect.DeepEqual(q, want) {
			t.Errorf("%s: initiate_login_uri query %v, want %v", u, q, want)
		}
		if len(e.fake.casLogins) != i+1 || !reflect.DeepEqual(e.fake.validated, e.fake.casLogins) {
			t.Errorf("%s: CAS logins %q, validations %q", u, e.fake.casLogins, e.fake.validated)
		}
	}
	if _, ok := e.fake.tickets["ST-unified"]; !ok {
		t.Error("koobridge validated the ticket of the entry link")
	}
	if _, ok := e.fake.codes["code-unified"]; !ok {
		t.Error("koobridge exchanged the code of the entry link")
	}
	// The app's own flow after the entry needs no further round.
	_, idt := e.signIn("alice")
	if len(e.fake.casLogins) != 3 || idt.Subject != "alice@acme" {
		t.Errorf("the app's flow after the entry: %d CAS logins, sub %q", len(e.fake.casLogins), idt.Subject)
	}
}

func TestCASConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tenants []string
		wantErr string
	}{
		{"empty", []string{""}, `sso: CAS tenant "": want a tenantId (at most 64 characters, no spaces) or *`},
		{"space", []string{"t acme"}, `sso: CAS tenant "t acme": want a tenantId (at most 64 characters, no spaces) or *`},
		{"control", []string{"t\nacme"}, `sso: CAS tenant "t\nacme": want a tenantId (at most 64 characters, no spaces) or *`},
		{"too long", []string{strings.Repeat("t", 65)}, `sso: CAS tenant "` + strings.Repeat("t", 65) + `": want a tenantId (at most 64 characters, no spaces) or *`},
		{"good", []string{"*", tenantID, strings.Repeat("t", 64)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sso.New(sso.Config{
				Issuer: "https://isv.example.com", Store: dialects[0].open(t), DataKey: make([]byte, 32), CASTenants: tc.tenants,
				Clients: []sso.Client{{ID: clientID, Secret: clientSecret, RedirectURIs: []string{appRedirect}}},
			})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("error %q, want %q", got, tc.wantErr)
			}
		})
	}
}
