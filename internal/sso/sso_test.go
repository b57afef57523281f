package sso_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/sso"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/store/postgres"
	"github.com/koobridge/koobridge/internal/store/postgres/pgtest"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

const (
	appRedirect   = "http://127.0.0.1:1/callback"
	appPostLogout = "http://127.0.0.1:1/signed-out"
	appInitiate   = "http://127.0.0.1:1/initiate-login"
	clientID      = "vendor-app"
	clientSecret  = "vendor-app-secret-0123456789"
	oaClientID    = "oa-client-acme"
	oaSecret      = "oa-secret-acme"
	tenantID      = "t-acme"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type env struct {
	t        *testing.T
	st       store.Store
	fake     *fakeOneAccess
	issuer   string
	clock    *clock
	browser  *http.Client
	ctx      context.Context
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

type dialect struct {
	name string
	open func(t *testing.T) store.Store
}

var dialects = []dialect{
	{"sqlite", func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "kb.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), pgtest.Schema(t, pgtest.DSN(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) { fn(t, newEnv(t, d.open(t))) })
	}
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	return newEnvWith(t, st, nil)
}

// newEnvWith is newEnv with the provider's configuration changed by
// configure (nil: unchanged) before the provider is built.
func newEnvWith(t *testing.T, st store.Store, configure func(c *sso.Config)) *env {
	t.Helper()
	dataKey := make([]byte, seal.KeySize)
	_, _ = rand.Read(dataKey)
	sealer, err := seal.NewSealer(dataKey)
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeOneAccess(t, oaClientID, oaSecret, tenantID)
	fake.users["alice"] = "Alice"
	seedKit(t, st, sealer, fake.srv.URL)

	e := &env{t: t, st: st, fake: fake, clock: &clock{t: time.Now().UTC()}}
	var handler http.Handler
	kb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(kb.Close)
	e.issuer = kb.URL
	cfg := sso.Config{
		Issuer: e.issuer, Store: st, DataKey: dataKey, Now: e.clock.Now,
		Clients: []sso.Client{{
			ID: clientID, Secret: clientSecret, RedirectURIs: []string{appRedirect},
			PostLogoutRedirectURIs: []string{appPostLogout}, InitiateLoginURI: appInitiate,
		}},
	}
	if configure != nil {
		configure(&cfg)
	}
	p, err := sso.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	handler = p.Handler()

	jar, _ := cookiejar.New(nil)
	e.browser = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), "http://127.0.0.1:1/") {
			return http.ErrUseLastResponse // the app's own URLs: the test reads them
		}
		return nil
	}}
	e.ctx = oidc.ClientContext(t.Context(), http.DefaultClient)
	e.provider, err = oidc.NewProvider(e.ctx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	e.verifier = e.provider.Verifier(&oidc.Config{ClientID: clientID})
	e.oauth = oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: e.provider.Endpoint(),
		RedirectURL: appRedirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email", "phone", oidc.ScopeOfflineAccess}}
	return e
}

// seedKit stores the Kit data: tenant acme with one app and users alice
// (authorised), bob (revoked), carol (disabled); tenant t-noapp without an
// app; tenant t-badsecret whose secret was sealed with another key.
func seedKit(t *testing.T, st store.Store, sealer *seal.Sealer, domain string) {
	t.Helper()
	secret, _ := sealer.Seal(oaSecret)
	email, _ := sealer.Seal("alice@acme.example")
	mobile, _ := sealer.Seal("+8613800000000")
	other, _ := seal.NewSealer(make([]byte, seal.KeySize))
	otherSecret, _ := other.Seal(oaSecret)
	err := st.Tx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		for _, tn := range []store.Tenant{
			{ID: tenantID, Code: "acme", Name: "Acme", DomainName: domain},
			{ID: "t-noapp", Code: "noapp", DomainName: domain},
			{ID: "t-badsecret", Code: "bad", DomainName: domain},
			{ID: "t-gone", Code: "gone", DomainName: domain, Status: store.TenantDeleted},
		} {
			if err := tx.UpsertTenant(ctx, tn); err != nil {
				return err
			}
		}
		for _, a := range []store.TenantApp{
			{TenantID: tenantID, AppID: "APP1", ClientID: oaClientID, ClientSecretSealed: secret},
			{TenantID: "t-badsecret", AppID: "APP1", ClientID: oaClientID, ClientSecretSealed: otherSecret},
		} {
			if err := tx.UpsertTenantApp(ctx, a); err != nil {
				return err
			}
		}
		return tx.UpsertTenantUsers(ctx, []store.TenantUser{
			{TenantID: tenantID, AppID: "APP1", UserName: "alice", Name: "Alice Zhang", OrgCode: "10000", Role: "admin",
				Enable: true, EmailSealed: email, MobileSealed: mobile},
			{TenantID: tenantID, AppID: "APP1", UserName: "erin", Name: "Erin", OrgCode: "20000", Role: "user", Enable: true},
			{TenantID: tenantID, AppID: "APP1", UserName: "bob", Name: "Bob", OrgCode: "10000", Role: "user", Enable: true, Revoked: true},
			{TenantID: tenantID, AppID: "APP1", UserName: "carol", Name: "Carol", OrgCode: "10000", Role: "user", Enable: false},
			{TenantID: "t-badsecret", AppID: "APP1", UserName: "alice", Name: "Alice", Role: "user", Enable: true},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setUser changes one Kit user, as a later authSync does.
func (e *env) setUser(userName string, fn func(u *store.TenantUser)) {
	e.t.Helper()
	err := e.st.Tx(e.t.Context(), func(ctx context.Context, tx store.Tx) error {
		users, err := tx.TenantUsers(ctx, tenantID)
		if err != nil {
			return err
		}
		for _, u := range users {
			if u.UserName == userName {
				fn(&u)
				return tx.UpsertTenantUsers(ctx, []store.TenantUser{u})
			}
		}
		return errors.New("no such user")
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// flow is one authorization request of the app.
type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: oauth2.GenerateVerifier(), nonce: oauth2.GenerateVerifier(), verifier: oauth2.GenerateVerifier()}
}

// authorize runs the browser from the app's authorization request to the
// app's redirect URI and returns that URI's query.
func (e *env) authorize(f flow, tenant string, extra ...oauth2.AuthCodeOption) url.Values {
	e.t.Helper()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, extra...)
	if tenant != "" {
		opts = append(opts, oauth2.SetAuthURLParam("tenant", tenant))
	}
	return e.follow(e.oauth.AuthCodeURL(f.state, opts...), appRedirect)
}

// follow GETs u in the browser and returns the query of the app URL the
// redirects end at, which must start with want.
func (e *env) follow(u, want string) url.Values {
	e.t.Helper()
	resp, err := e.browser.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, want) {
		e.t.Fatalf("GET %s ended at %s with %d, Location %q, want a redirect to %s; body: %s", u, resp.Request.URL, resp.StatusCode, loc, want, body)
	}
	lu, _ := url.Parse(loc)
	return lu.Query()
}

// signIn signs user in and returns the app's tokens and verified ID token.
func (e *env) signIn(user string) (*oauth2.Token, *oidc.IDToken) {
	e.t.Helper()
	e.fake.set(func(f *fakeOneAccess) { f.user = user })
	f := newFlow()
	q := e.authorize(f, tenantID)
	if q.Get("state") != f.state || q.Get("code") == "" {
		e.t.Fatalf("redirect to the app: %v, want a code and state %q", q, f.state)
	}
	tok, err := e.oauth.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	idt := e.verify(tok, f.nonce)
	return tok, idt
}

func (e *env) verify(tok *oauth2.Token, nonce string) *oidc.IDToken {
	e.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := e.verifier.Verify(e.ctx, raw)
	if err != nil {
		e.t.Fatalf("verify ID token: %v", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		e.t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		e.t.Fatalf("at_hash: %v", err)
	}
	return idt
}

// userClaims are the user's claims the test compares exactly.
func userClaims(t *testing.T, c interface{ Claims(any) error }) map[string]any {
	t.Helper()
	var all map[string]any
	if err := c.Claims(&all); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, k := range []string{"sub", "tenant", "name", "role", "org", "email", "phone_number"} {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	return out
}

var aliceClaims = map[string]any{
	"sub": "alice@acme", "tenant": tenantID, "name": "Alice Zhang", "role": "admin", "org": "10000",
	"email": "alice@acme.example", "phone_number": "+8613800000000",
}

func TestSignIn(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name  string
			style oauth2.AuthStyle
		}{{"client_secret_basic", oauth2.AuthStyleInHeader}, {"client_secret_post", oauth2.AuthStyleInParams}} {
			t.Run(tc.name, func(t *testing.T) {
				e.oauth.Endpoint.AuthStyle = tc.style
				tok, idt := e.signIn("alice")
				if got := userClaims(t, idt); !reflect.DeepEqual(got, aliceClaims) {
					t.Errorf("ID token claims %v, want %v", got, aliceClaims)
				}
				if idt.Issuer != e.issuer || !reflect.DeepEqual(idt.Audience, []string{clientID}) {
					t.Errorf("iss %q aud %v", idt.Issuer, idt.Audience)
				}
				ui, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
				if err != nil {
					t.Fatalf("userinfo: %v", err)
				}
				if got := userClaims(t, ui); !reflect.DeepEqual(got, aliceClaims) {
					t.Errorf("userinfo claims %v, want %v", got, aliceClaims)
				}
			})
		}
		t.Run("without e-mail and mobile", func(t *testing.T) {
			e.browser.Jar, _ = cookiejar.New(nil)
			_, idt := e.signIn("erin")
			want := map[string]any{"sub": "erin@acme", "tenant": tenantID, "name": "Erin", "role": "user", "org": "20000"}
			if got := userClaims(t, idt); !reflect.DeepEqual(got, want) {
				t.Errorf("ID token claims %v, want %v", got, want)
			}
		})
	})
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t, dialects[0].open(t))
	var d struct {
		Issuer          string   `json:"issuer"`
		EndSession      string   `json:"end_session_endpoint"`
		AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
		PKCE            []string `json:"code_challenge_methods_supported"`
		SigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
		UserInfo        string   `json:"userinfo_endpoint"`
		JWKS            string   `json:"jwks_uri"`
		ResponseTypes   []string `json:"response_types_supported"`
		SupportedClaims []string `json:"claims_supported"`
	}
	if err := e.provider.Claims(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != e.issuer || d.EndSession != e.issuer+"/end_session" || d.UserInfo != e.issuer+"/userinfo" || d.JWKS != e.issuer+"/keys" {
		t.Errorf("discovery endpoints: %+v", d)
	}
	for _, want := range []struct {
		name string
		list []string
		v    string
	}{
		{"auth methods", d.AuthMethods, "client_secret_basic"}, {"auth methods", d.AuthMethods, "client_secret_post"},
		{"PKCE", d.PKCE, "S256"}, {"algs", d.SigningAlgs, "RS256"}, {"response types", d.ResponseTypes, "code"},
		{"claims", d.SupportedClaims, "tenant"}, {"claims", d.SupportedClaims, "role"}, {"claims", d.SupportedClaims, "org"},
	} {
		if !contains(want.list, want.v) {
			t.Errorf("discovery %s %v lacks %q", want.name, want.list, want.v)
		}
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func TestCodeSingleUseAndPKCE(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.fake.set(func(f *fakeOneAccess) { f.user = "alice" })
		f := newFlow()
		q := e.authorize(f, tenantID)
		if _, err := e.oauth.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("exchange with a wrong PKCE verifier: %v, want invalid_grant", err)
		}
		f = newFlow()
		q = e.authorize(f, tenantID)
		if _, err := e.oauth.Exchange(e.ctx, q.Get("code")); !isOAuthError(err, "invalid_request") && !isOAuthError(err, "invalid_grant") {
			t.Fatalf("exchange without the PKCE verifier: %v, want a refusal", err)
		}
		f = newFlow()
		q = e.authorize(f, tenantID)
		if _, err := e.oauth.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(f.verifier)); err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		if _, err := e.oauth.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(f.verifier)); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("second exchange of one code: %v, want invalid_grant", err)
		}
		wrong := e.oauth
		wrong.ClientSecret = "not-the-secret"
		f = newFlow()
		q = e.authorize(f, tenantID)
		if _, err := wrong.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(f.verifier)); !isOAuthError(err, "invalid_client") {
			t.Fatalf("exchange with a wrong client secret: %v, want invalid_client", err)
		}
	})
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

// TestRefused: every refusal reaches the app as an OIDC error on its
// registered redirect URI, with its state, and no code.
func TestRefused(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name, tenant, user string
			failToken          bool
			code, desc         string
		}{
			{"never authorised", tenantID, "dave", false, "access_denied", "The user is not authorised for this application."},
			{"revoked", tenantID, "bob", false, "access_denied", "The user is not authorised for this application."},
			{"disabled", tenantID, "carol", false, "access_denied", "The user is not authorised for this application."},
			{"unknown tenant", "t-nobody", "alice", false, "invalid_request", "No enterprise with this tenant ID is bound to the product."},
			{"deleted tenant", "t-gone", "alice", false, "invalid_request", "No enterprise with this tenant ID is bound to the product."},
			{"no tenant", "", "alice", false, "invalid_request", "The sign-in names no tenant: the authorization request needs the tenant parameter (the tenantId)."},
			{"no application", "t-noapp", "alice", false, "access_denied", "No application of this enterprise is synced for this app (applicationSync)."},
			{"undecryptable secret", "t-badsecret", "alice", false, "access_denied", "The client secret of the enterprise's application cannot be decrypted."},
			{"invalid_grant", tenantID, "alice", true, "access_denied", "The identity center refused the authorization code (invalid_grant)."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e.browser.Jar, _ = cookiejar.New(nil)
				e.fake.set(func(f *fakeOneAccess) { f.user, f.failToken = tc.user, tc.failToken })
				f := newFlow()
				q := e.authorize(f, tc.tenant)
				want := url.Values{"error": {tc.code}, "error_description": {tc.desc}, "state": {f.state}, "iss": {e.issuer}}
				if !reflect.DeepEqual(q, want) {
					t.Errorf("redirect to the app: %v, want %v", q, want)
				}
			})
		}
	})
}

// get GETs u in the browser without following redirects.
func (e *env) get(u string) (*http.Response, string) {
	e.t.Helper()
	c := *e.browser
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestStateMismatch(t *testing.T) {
	e := newEnv(t, dialects[0].open(t))
	e.fake.set(func(f *fakeOneAccess) { f.user = "alice" })
	f := newFlow()
	// Walk to the identity center's answer without following it.
	resp, _ := e.get(e.oauth.AuthCodeURL(f.state, oauth2.S256ChallengeOption(f.verifier), oauth2.SetAuthURLParam("tenant", tenantID)))
	resp, _ = e.get(resolve(e.issuer, resp.Header.Get("Location"))) // login → OneAccess
	resp, _ = e.get(resp.Header.Get("Location"))                    // OneAccess → callback
	cb, _ := url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(cb.String(), e.issuer+sso.CallbackPath) {
		t.Fatalf("OneAccess answered %s", cb)
	}
	for _, tc := range []struct {
		name  string
		query func(v url.Values)
	}{
		{"another state", func(v url.Values) { v.Set("state", "forged") }},
		{"no state", func(v url.Values) { v.Del("state") }},
		{"state twice", func(v url.Values) { v.Add("state", v.Get("state")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := cb.Query()
			tc.query(v)
			u := *cb
			u.RawQuery = v.Encode()
			resp, body := e.get(u.String())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || strings.Contains(body, "code-") {
				t.Errorf("callback with %s: %d, Location %q, body %s; want a 400 page", tc.name, resp.StatusCode, resp.Header.Get("Location"), body)
			}
		})
	}
	// The real answer still works once.
	q := e.follow(cb.String(), appRedirect)
	if q.Get("code") == "" || q.Get("state") != f.state {
		t.Fatalf("the genuine answer: %v", q)
	}
	resp, _ = e.get(cb.String())
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the answer again: %d, want 400", resp.StatusCode)
	}
}

func resolve(base, ref string) string {
	b, _ := url.Parse(base)
	r, _ := url.Parse(ref)
	return b.ResolveReference(r).String()
}

func TestRefresh(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		tok, _ := e.signIn("alice")
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		// OneAccess's token (2 h) is still fresh: no refresh there.
		tok2, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		e.verify(tok2, "")
		if e.fake.refreshes != 0 {
			t.Fatalf("OneAccess refreshed %d times, want 0", e.fake.refreshes)
		}
		// The old refresh token was rotated away.
		if _, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("refresh with the rotated token: %v, want invalid_grant", err)
		}
		// Two hours later OneAccess's token has expired: refreshed there too.
		e.clock.Add(2 * time.Hour)
		tok3, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh after 2 h: %v", err)
		}
		if e.fake.refreshes != 1 {
			t.Fatalf("OneAccess refreshed %d times, want 1", e.fake.refreshes)
		}
		if got := userClaims(t, e.verify(tok3, "")); !reflect.DeepEqual(got, aliceClaims) {
			t.Errorf("claims after refresh %v", got)
		}
		// Two more hours, and OneAccess is down: the refresh is honoured
		// on the Kit data alone, and OneAccess is asked again next time.
		e.clock.Add(2 * time.Hour)
		e.fake.mu.Lock()
		e.fake.downToken = true
		e.fake.mu.Unlock()
		tok4, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh while OneAccess is down: %v", err)
		}
		e.fake.mu.Lock()
		e.fake.downToken = false
		e.fake.mu.Unlock()
		tok5, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok4.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh once OneAccess is back: %v", err)
		}
		if e.fake.refreshes != 2 {
			t.Fatalf("OneAccess refreshed %d times, want 2 (the outage's attempt answered 500)", e.fake.refreshes)
		}
		tok3 = tok5
		// authSync revokes alice: the next refresh and userinfo are refused.
		e.setUser("alice", func(u *store.TenantUser) { u.Revoked = true })
		if _, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("refresh of a revoked user: %v, want invalid_grant", err)
		}
		if _, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok3)); err == nil {
			t.Fatal("userinfo of a revoked user answered")
		}
	})
}

func TestLogout(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		tok, _ := e.signIn("alice")
		raw, _ := tok.Extra("id_token").(string)
		end := e.issuer + "/end_session?" + url.Values{"id_token_hint": {raw}, "client_id": {clientID},
			"post_logout_redirect_uri": {appPostLogout}, "state": {"bye-1"}}.Encode()
		resp, _ := e.get(end)
		want := e.fake.srv.URL + "/api/v1/logout?" + url.Values{"redirect_url": {appPostLogout + "?state=bye-1"}}.Encode()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Fatalf("end_session: %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		q := e.follow(end, appPostLogout)
		if !reflect.DeepEqual(q, url.Values{"state": {"bye-1"}}) {
			t.Errorf("landed with %v", q)
		}
		// koobridge's session is over: its refresh token no longer works,
		// and a new sign-in goes to OneAccess again.
		if _, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("refresh after logout: %v, want invalid_grant", err)
		}
		before := e.fake.authorize
		e.signIn("alice")
		if e.fake.authorize != before+1 {
			t.Errorf("sign-in after logout went to OneAccess %d times, want 1", e.fake.authorize-before)
		}
	})
}

// TestLogoutBadHint: a logout whose id_token_hint does not verify (its
// key gone from the JWKS, or tampered) still ends koobridge's session and
// goes through the tenant's OneAccess logout, to koobridge's signed-out
// page (the app's redirect is not trusted then).
func TestLogoutBadHint(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		tok, _ := e.signIn("alice")
		raw, _ := tok.Extra("id_token").(string)
		bad := raw[:len(raw)-4] + "AAAA" // the signature no longer verifies
		end := e.issuer + "/end_session?" + url.Values{"id_token_hint": {bad}, "client_id": {clientID},
			"post_logout_redirect_uri": {appPostLogout}}.Encode()
		resp, _ := e.get(end)
		want := e.fake.srv.URL + "/api/v1/logout?" + url.Values{"redirect_url": {e.issuer + "/sso/logged-out"}}.Encode()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Fatalf("end_session with a bad hint: %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if _, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("refresh after the logout: %v, want invalid_grant", err)
		}
	})
}

// TestSessionReuse: a second sign-in in the same browser needs no round
// at OneAccess; prompt=login forces one.
func TestSessionReuse(t *testing.T) {
	e := newEnv(t, dialects[0].open(t))
	e.signIn("alice")
	before := e.fake.authorize
	_, idt := e.signIn("alice")
	if e.fake.authorize != before {
		t.Errorf("second sign-in went to OneAccess")
	}
	if idt.Subject != "alice@acme" {
		t.Errorf("sub %q", idt.Subject)
	}
	f := newFlow()
	e.authorize(f, tenantID, oauth2.SetAuthURLParam("prompt", "login"))
	if e.fake.authorize != before+1 {
		t.Errorf("prompt=login did not go to OneAccess")
	}
}

// TestEntry: KooGallery's unified login page sends the browser to the
// callback with code and tenant and no state: koobridge does not use that
// code, runs a fresh round, then enters the app through its
// initiate_login_uri; the app's own flow then needs no further round.
func TestEntry(t *testing.T) {
	e := newEnv(t, dialects[0].open(t))
	e.fake.set(func(f *fakeOneAccess) { f.user = "alice"; f.codes["code-unified"] = "bob" })
	q := e.follow(e.issuer+sso.CallbackPath+"?code=code-unified&tenant="+tenantID, appInitiate)
	want := url.Values{"iss": {e.issuer}, "target_link_uri": {"http://127.0.0.1:1/"}, "tenant": {tenantID}}
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("initiate_login_uri query %v, want %v", q, want)
	}
	if _, ok := e.fake.codes["code-unified"]; !ok {
		t.Error("koobridge exchanged the code of the entry link")
	}
	before := e.fake.authorize
	_, idt := e.signIn("alice")
	if e.fake.authorize != before || idt.Subject != "alice@acme" {
		t.Errorf("the app's flow after the entry: %d more rounds, sub %q", e.fake.authorize-before, idt.Subject)
	}
	// The per-tenant login link does the same.
	e.browser.Jar, _ = cookiejar.New(nil)
	q = e.follow(e.issuer+"/sso/"+tenantID+"/login", appInitiate)
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("login link: initiate_login_uri query %v, want %v", q, want)
	}
	resp, _ := e.get(e.issuer + "/sso/t-nobody/login")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("login link of an unknown tenant: %d, want 404", resp.StatusCode)
	}
}

// TestKeys: the signing key is kept in the database, sealed, never in
// clear (keys_test.go checks replicas sharing it and its rotation).
func TestKeys(t *testing.T) {
	st := dialects[0].open(t)
	e := newEnv(t, st)
	e.signIn("alice")
	keys, err := st.SSOKeys(t.Context())
	if err != nil || len(keys) != 1 || !strings.HasPrefix(keys[0].PrivateSealed, "v1:") {
		t.Fatalf("stored keys %d, %v", len(keys), err)
	}
	if strings.Contains(keys[0].PrivateSealed, "PRIVATE") {
		t.Fatal("private key stored in clear")
	}
}

// TestRefreshRefusedByOneAccess: when OneAccess refuses to renew the
// user's tokens (the grant is gone), koobridge ends its session: the
// app's refresh is refused, now and later.
func TestRefreshRefusedByOneAccess(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		tok, _ := e.signIn("alice")
		e.fake.mu.Lock()
		clear(e.fake.refresh) // OneAccess forgot the grant
		e.fake.mu.Unlock()
		e.clock.Add(2 * time.Hour)
		if _, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("refresh OneAccess refused: %v, want invalid_grant", err)
		}
		if _, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("userinfo answered after the session ended")
		}
	})
}

// TestConcurrentRefreshRotating: two refreshes of one session at once
// (two tabs of the app) when OneAccess rotates its refresh tokens. Only
// one may renew at OneAccess: were both to spend the same refresh token,
// the loser's refusal would end the session the winner just renewed.
func TestConcurrentRefreshRotating(t *testing.T) {
	e := newEnv(t, dialects[0].open(t))
	tokA, _ := e.signIn("alice")
	tokB, _ := e.signIn("alice") // the same browser: the same session
	e.fake.mu.Lock()
	e.fake.rotate = true
	e.fake.refreshGate, e.fake.refreshGo = make(chan struct{}, 2), make(chan struct{})
	e.fake.mu.Unlock()
	e.clock.Add(2 * time.Hour)
	errs := make(chan error, 2)
	for _, tok := range []*oauth2.Token{tokA, tokB} {
		go func() {
			_, err := e.oauth.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			errs <- err
		}()
	}
	select { // one refresh at OneAccess; give the other time to get there too
	case <-e.fake.refreshGate:
	case <-time.After(10 * time.Second):
		close(e.fake.refreshGo)
		t.Fatal("no refresh reached OneAccess")
	}
	time.Sleep(200 * time.Millisecond)
	close(e.fake.refreshGo)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a refresh of the shared session: %v", err)
		}
	}
	e.fake.mu.Lock()
	defer e.fake.mu.Unlock()
	if e.fake.refreshes != 1 {
		t.Errorf("OneAccess renewed %d times, want 1", e.fake.refreshes)
	}
}
