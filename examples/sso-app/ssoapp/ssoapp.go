// Package ssoapp is the sample app's relying party: an http.Handler that
// signs users in with OpenID Connect (github.com/coreos/go-oidc/v3 and
// golang.org/x/oauth2) against koobridge, shows who is signed in, renews
// the access token, signs out at both ends and accepts third-party
// initiated login. It uses nothing of koobridge's. "koobridge demo" runs a
// verbatim copy of this file (koobridge's cmd/koobridge/internal/ssoapp,
// which a test there keeps identical).
package ssoapp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config is what the app needs to sign users in.
type Config struct {
	// Issuer is the OpenID Connect provider's issuer URL (koobridge's
	// --public-url); its discovery document is read on first use.
	Issuer string
	// ClientID and ClientSecret are the app's registration at the
	// provider (koobridge's --sso-client-id and --sso-client-secret).
	ClientID, ClientSecret string
	// BaseURL is where the browser reaches this app, without a trailing
	// slash. The redirect URI is BaseURL + "/callback", the
	// post-logout redirect URI BaseURL + "/" and the initiate-login
	// URI BaseURL + "/initiate-login": register them at the provider.
	BaseURL string
	// Tenant is the tenant the sign-in form offers by default (empty:
	// none).
	Tenant string
	// RefreshEarly is how long before the access token's expiry the app
	// renews it; 0 renews it only once it has expired.
	RefreshEarly time.Duration
	// HTTPClient talks to the provider; nil means one with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Logger logs sign-ins, sign-outs and failures, never a token or a
	// secret; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Cookie is the name of the app's session cookie. It is named apart
// from koobridge's and the emulator's cookies: all three may run on
// 127.0.0.1, and browsers do not tell cookies apart by port.
const Cookie = "sso_app_session"

const (
	pendingTTL  = 10 * time.Minute // a sign-in started and not finished
	sessionTTL  = 12 * time.Hour   // a session left alone
	maxPending  = 8                // sign-ins under way in one browser
	maxSessions = 100000           // sessions in memory at once
	maxTenant   = 64               // a tenantId is at most 64 characters (tenantSync)
)

// App is the relying party: an http.Handler serving the home page, the
// sign-in, the callback, the initiate-login endpoint and the sign-out.
type App struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	pages  *template.Template

	discoverMu sync.Mutex
	provider   *discovered // nil until the discovery document was read

	mu       sync.Mutex
	sessions map[string]*session
}

// discovered is what the provider's discovery document said.
type discovered struct {
	provider   *oidc.Provider
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	endSession string // end_session_endpoint; empty when it has none
}

// session is one browser's state, found by its cookie.
type session struct {
	pending map[string]*pending // by state
	user    *signedIn
	touched time.Time
}

// pending is a sign-in the app started and the provider has not yet
// answered.
type pending struct {
	nonce, verifier string
	target          string // the app path to land on afterwards
	started         time.Time
}

// signedIn is the signed-in user of a session with its tokens, which
// never leave the server (the ID token goes back to the provider as
// id_token_hint at sign-out, as OpenID Connect RP-initiated logout
// says).
type signedIn struct {
	claims    Claims
	idToken   string
	token     *oauth2.Token
	refreshes int
	userInfo  string // "ok", or why the last userinfo call failed
}

// Claims are the ID token's claims the app shows.
type Claims struct {
	Subject string `json:"sub"`
	Name    string `json:"name"`
	Tenant  string `json:"tenant"`
	Role    string `json:"role"`
	Org     string `json:"org"`
}

// New checks cfg and returns the app. It does not contact the provider:
// discovery happens on the first sign-in.
func New(cfg Config) (*App, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || (iss.Scheme != "http" && iss.Scheme != "https") || iss.Host == "" || iss.RawQuery != "" || iss.Fragment != "" {
		return nil, fmt.Errorf("sso-app: issuer %q: want an http(s) URL without query or fragment", cfg.Issuer)
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.RawQuery != "" || base.Fragment != "" ||
		strings.HasSuffix(cfg.BaseURL, "/") {
		return nil, fmt.Errorf("sso-app: base URL %q: want an http(s) URL without query, fragment or trailing slash", cfg.BaseURL)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("sso-app: the client id is empty")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("sso-app: the client secret is empty")
	}
	if cfg.Tenant != "" && !validTenant(cfg.Tenant) {
		return nil, fmt.Errorf("sso-app: tenant %q: want 1 to %d letters, digits or ._~-", cfg.Tenant, maxTenant)
	}
	if cfg.RefreshEarly < 0 {
		return nil, fmt.Errorf("sso-app: refresh early %v: want 0 or more", cfg.RefreshEarly)
	}
	a := &App{cfg: cfg, client: cfg.HTTPClient, log: cfg.Logger, now: cfg.Now, sessions: map[string]*session{}}
	if a.client == nil {
		a.client = &http.Client{Timeout: 10 * time.Second}
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.pages = template.Must(template.New("page").Parse(pageHTML))
	return a, nil
}

// RedirectURI is the app's OAuth 2.0 redirect URI.
func (a *App) RedirectURI() string { return a.cfg.BaseURL + "/callback" }

// PostLogoutRedirectURI is where the provider sends the browser back
// after sign-out.
func (a *App) PostLogoutRedirectURI() string { return a.cfg.BaseURL + "/" }

// InitiateLoginURI is the app's OpenID Connect third-party initiated
// login endpoint.
func (a *App) InitiateLoginURI() string { return a.cfg.BaseURL + "/initiate-login" }

// ServeHTTP routes the app's pages.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// No form-action: the sign-in and sign-out forms lead, through
	// redirects, to the provider and the identity center, which browsers
	// check against it.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	switch r.URL.Path {
	case "/":
		a.home(w, r)
	case "/login":
		a.login(w, r)
	case "/callback":
		a.callback(w, r)
	case "/initiate-login":
		a.initiateLogin(w, r)
	case "/logout":
		a.logout(w, r)
	default:
		a.fail(w, http.StatusNotFound, "Not found", "There is no such page here.")
	}
}

// query reads r's query strictly: only the names in allowed, each at
// most once.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errors.New("the query is malformed")
	}
	return strict(q, allowed)
}

func strict(q url.Values, allowed []string) (url.Values, error) {
	for name, vs := range q {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			continue // OAuth 2.0: unknown parameters are ignored
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("the parameter %s is given %d times", name, len(vs))
		}
	}
	return q, nil
}

// validTenant reports whether t can be a tenantId.
func validTenant(t string) bool {
	if t == "" || len(t) > maxTenant {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._~-", c)) {
			return false
		}
	}
	return true
}

// home shows who is signed in, renewing the access token first when it
// has expired and reading the userinfo endpoint with it.
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.methodNotAllowed(w, "GET, HEAD")
		return
	}
	if _, err := query(r); err != nil {
		a.fail(w, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	view := pageView{Title: "Signed out", Tenant: a.cfg.Tenant}
	sid, s := a.session(r)
	if s != nil && s.user != nil {
		notice, ended := a.renew(r.Context(), sid, s)
		if !ended {
			a.mu.Lock()
			u := *s.user
			a.mu.Unlock()
			view = pageView{Title: "Signed in", User: &u.claims, Refreshes: u.refreshes, Expiry: u.token.Expiry.UTC().Format(time.RFC3339),
				UserInfo: u.userInfo}
		}
		view.Notice = notice
	}
	a.render(w, http.StatusOK, view)
}

// renew refreshes the session's access token when it is due and reads
// the userinfo endpoint with it. It returns a notice for the page, and
// whether the session ended: a refresh the provider refused (the user
// was revoked or disabled since, or signed out elsewhere) ends it; one
// that failed for the moment (server_error, temporarily_unavailable, no
// answer) does not.
func (a *App) renew(ctx context.Context, sid string, s *session) (notice string, ended bool) {
	p, err := a.discover(ctx)
	if err != nil {
		a.log.Error("sso-app: discovery", "err", err)
		return "The sign-in service is unavailable: what is shown may be out of date.", false
	}
	a.mu.Lock()
	u := s.user
	tok := u.token
	a.mu.Unlock()
	if !tok.Expiry.IsZero() && !a.now().Before(tok.Expiry.Add(-a.cfg.RefreshEarly)) {
		if tok.RefreshToken == "" {
			a.endSession(sid)
			return "Your session has ended: the access token expired and the provider gave no refresh token.", true
		}
		// A refresh token source always asks the token endpoint.
		fresh, err := p.oauth.TokenSource(oidc.ClientContext(ctx, a.client), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.ErrorCode != "" && re.ErrorCode != "server_error" && re.ErrorCode != "temporarily_unavailable" {
				a.log.Info("sso-app: refresh refused", "tenant", u.claims.Tenant, "error", re.ErrorCode)
				a.endSession(sid)
				return "Your session has ended: the provider refused to renew it (" + re.ErrorCode + "). Sign in again.", true
			}
			a.log.Error("sso-app: refresh", "tenant", u.claims.Tenant, "err", redactErr(err))
			return "The access token could not be renewed just now; the app tries again on the next page.", false
		}
		claims := u.claims
		idToken := u.idToken
		if raw, ok := fresh.Extra("id_token").(string); ok && raw != "" {
			// OpenID Connect Core 12.2: a refreshed ID token is about
			// the same user.
			c, err := a.verify(ctx, p, raw, fresh.AccessToken, "")
			if err != nil || c.Subject != u.claims.Subject {
				a.log.Error("sso-app: the refreshed ID token is not valid", "tenant", u.claims.Tenant, "err", err)
				a.endSession(sid)
				return "Your session has ended: the provider's renewed ID token did not verify.", true
			}
			claims, idToken = c, raw
		}
		if fresh.RefreshToken == "" {
			fresh.RefreshToken = tok.RefreshToken
		}
		a.mu.Lock()
		u.token, u.claims, u.idToken = fresh, claims, idToken
		u.refreshes++
		a.mu.Unlock()
		tok = fresh
		a.log.Info("sso-app: access token renewed", "tenant", claims.Tenant)
	}
	ui, err := p.provider.UserInfo(oidc.ClientContext(ctx, a.client), oauth2.StaticTokenSource(tok))
	status := "ok"
	switch {
	case err != nil:
		a.log.Error("sso-app: userinfo", "tenant", u.claims.Tenant, "err", redactErr(err))
		status = "failed"
	case ui.Subject != u.claims.Subject:
		// OpenID Connect Core 5.3.2: the userinfo sub must match.
		status = "another subject"
	}
	a.mu.Lock()
	u.userInfo = status
	a.mu.Unlock()
	return "", false
}

// redactErr keeps only the first line of err, so no response body of
// the provider reaches the log in full.
func redactErr(err error) string {
	s := err.Error()
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// login starts a sign-in: GET /login?tenant=….
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		a.methodNotAllowed(w, "GET")
		return
	}
	q, err := query(r, "tenant")
	if err != nil {
		a.fail(w, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	tenant := q.Get("tenant")
	if _, given := q["tenant"]; !given {
		tenant = a.cfg.Tenant
	}
	if tenant != "" && !validTenant(tenant) {
		a.fail(w, http.StatusBadRequest, "Bad request", fmt.Sprintf("The tenant must be 1 to %d letters, digits or ._~-.", maxTenant))
		return
	}
	a.start(w, r, tenant, "", "/")
}

// initiateLogin is OpenID Connect third-party initiated login: the
// provider (koobridge, after an entry from KooGallery's unified login
// page) sends the browser here with iss and, optionally, login_hint and
// target_link_uri; the app starts a normal sign-in. GET or a form POST.
func (a *App) initiateLogin(w http.ResponseWriter, r *http.Request) {
	var q url.Values
	var err error
	switch r.Method {
	case http.MethodGet:
		q, err = query(r, "iss", "login_hint", "target_link_uri", "tenant")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		if err = r.ParseForm(); err == nil {
			q, err = strict(r.PostForm, []string{"iss", "login_hint", "target_link_uri", "tenant"})
			if err == nil && r.URL.RawQuery != "" {
				err = errors.New("send the parameters in the form, not the query")
			}
		}
	default:
		a.methodNotAllowed(w, "GET, POST")
		return
	}
	if err != nil {
		a.fail(w, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	if q.Get("iss") != a.cfg.Issuer {
		a.fail(w, http.StatusBadRequest, "Bad request", "The iss parameter does not name this app's provider.")
		return
	}
	target := "/"
	if t := q.Get("target_link_uri"); t != "" {
		var refusal string
		if target, refusal = a.localTarget(t); refusal != "" {
			a.fail(w, http.StatusBadRequest, "Bad request", refusal)
			return
		}
	}
	tenant := q.Get("tenant")
	if tenant != "" && !validTenant(tenant) {
		a.fail(w, http.StatusBadRequest, "Bad request", fmt.Sprintf("The tenant must be 1 to %d letters, digits or ._~-.", maxTenant))
		return
	}
	hint := q.Get("login_hint")
	if len(hint) > 256 {
		a.fail(w, http.StatusBadRequest, "Bad request", "The login_hint is too long.")
		return
	}
	a.start(w, r, tenant, hint, target)
}

// localTarget checks that the target_link_uri t is a page of this app and
// returns its path and query, the only parts the app redirects to after
// the sign-in (never an open redirector), or why it refuses t. t must
// have BaseURL's scheme and host and a path under BaseURL's path, without
// user info, fragment or dot segments, and without what a browser reads
// as another host in a path: "//" at its start, a backslash, a control
// character.
func (a *App) localTarget(t string) (target, refusal string) {
	const notOurs = "The target_link_uri is not a page of this app."
	u, err := url.Parse(t)
	if err != nil || u.Opaque != "" {
		return "", notOurs
	}
	if u.User != nil || u.Fragment != "" {
		return "", "The target_link_uri is malformed."
	}
	base, err := url.Parse(a.cfg.BaseURL)
	if err != nil { // checked by New
		return "", notOurs
	}
	if u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) {
		return "", notOurs
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, base.EscapedPath()+"/") {
		return "", notOurs
	}
	// Browsers read "//host" and "/\host" as another host, ignore tabs
	// and newlines, and resolve "." and ".." (also percent-encoded): look
	// at the path as sent and as decoded.
	for _, p := range []string{path, u.Path} {
		if strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\") ||
			strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return "", notOurs
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				return "", notOurs
			}
		}
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return path, ""
}

// start sends the browser to the provider's authorization endpoint with
// a fresh state, nonce and PKCE verifier kept in the browser's session.
func (a *App) start(w http.ResponseWriter, r *http.Request, tenant, loginHint, target string) {
	p, err := a.discover(r.Context())
	if err != nil {
		a.log.Error("sso-app: discovery", "err", err)
		a.fail(w, http.StatusBadGateway, "The sign-in service is unavailable", "The app could not read its OpenID Connect provider's configuration. Try again later.")
		return
	}
	state, nonce := randomString(), randomString()
	verifier := oauth2.GenerateVerifier()
	sid, s := a.session(r)
	now := a.now()
	a.mu.Lock()
	if s == nil {
		if len(a.sessions) >= maxSessions {
			a.sweepLocked(now)
		}
		if len(a.sessions) >= maxSessions {
			a.mu.Unlock()
			a.fail(w, http.StatusServiceUnavailable, "Busy", "Too many sign-ins are under way. Try again later.")
			return
		}
		sid, s = randomString(), &session{pending: map[string]*pending{}}
		a.sessions[sid] = s
	}
	for k, p := range s.pending {
		if now.Sub(p.started) > pendingTTL {
			delete(s.pending, k)
		}
	}
	for len(s.pending) >= maxPending { // the oldest gives way
		var oldest string
		for k, p := range s.pending {
			if oldest == "" || p.started.Before(s.pending[oldest].started) {
				oldest = k
			}
		}
		delete(s.pending, oldest)
	}
	s.pending[state] = &pending{nonce: nonce, verifier: verifier, target: target, started: now}
	s.touched = now
	a.mu.Unlock()
	a.setCookie(w, sid)
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if tenant != "" {
		opts = append(opts, oauth2.SetAuthURLParam("tenant", tenant))
	}
	if loginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", loginHint))
	}
	http.Redirect(w, r, p.oauth.AuthCodeURL(state, opts...), http.StatusFound)
}

// callback finishes a sign-in: it checks state, exchanges the code with
// the PKCE verifier, verifies the ID token and its nonce, and keeps the
// user in the session.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		a.methodNotAllowed(w, "GET")
		return
	}
	q, err := query(r, "code", "state", "error", "error_description", "iss")
	if err != nil {
		a.fail(w, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	sid, s := a.session(r)
	state := q.Get("state")
	var pend *pending
	if s != nil && state != "" {
		a.mu.Lock()
		for k, p := range s.pending {
			if subtle.ConstantTimeCompare([]byte(k), []byte(state)) == 1 {
				pend = p
				delete(s.pending, k) // a state is good once
			}
		}
		a.mu.Unlock()
	}
	if pend == nil || a.now().Sub(pend.started) > pendingTTL {
		a.fail(w, http.StatusBadRequest, "Sign-in not recognised", "This answer is not for a sign-in this browser started here, or it came too late. Sign in again.")
		return
	}
	if iss, given := q["iss"]; given && iss[0] != a.cfg.Issuer { // RFC 9207
		a.fail(w, http.StatusBadRequest, "Sign-in refused", "The answer names another issuer.")
		return
	}
	if code := q.Get("error"); code != "" {
		a.log.Info("sso-app: the provider refused the sign-in", "error", code)
		a.render(w, http.StatusForbidden, pageView{Title: "Sign-in refused", Tenant: a.cfg.Tenant,
			Error: code, ErrorDescription: q.Get("error_description")})
		return
	}
	code := q.Get("code")
	if code == "" {
		a.fail(w, http.StatusBadRequest, "Bad request", "The answer has neither a code nor an error.")
		return
	}
	p, err := a.discover(r.Context())
	if err != nil {
		a.log.Error("sso-app: discovery", "err", err)
		a.fail(w, http.StatusBadGateway, "The sign-in service is unavailable", "Try again later.")
		return
	}
	ctx := oidc.ClientContext(r.Context(), a.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(pend.verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			a.log.Info("sso-app: the token endpoint refused the code", "error", re.ErrorCode)
			a.render(w, http.StatusForbidden, pageView{Title: "Sign-in refused", Tenant: a.cfg.Tenant,
				Error: re.ErrorCode, ErrorDescription: re.ErrorDescription})
			return
		}
		a.log.Error("sso-app: code exchange", "err", redactErr(err))
		a.fail(w, http.StatusBadGateway, "The sign-in service is unavailable", "The app could not redeem the sign-in. Try again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		a.fail(w, http.StatusBadGateway, "Sign-in failed", "The provider sent no ID token.")
		return
	}
	claims, err := a.verify(r.Context(), p, raw, tok.AccessToken, pend.nonce)
	if err != nil {
		a.log.Error("sso-app: the ID token is not valid", "err", err)
		a.fail(w, http.StatusBadGateway, "Sign-in failed", "The provider's ID token did not verify.")
		return
	}
	now := a.now()
	a.mu.Lock()
	s.user = &signedIn{claims: claims, idToken: raw, token: tok, userInfo: "not read yet"}
	s.touched = now
	a.mu.Unlock()
	// A new session id at sign-in, so an id planted before it is
	// worth nothing after.
	a.mu.Lock()
	delete(a.sessions, sid)
	sid = randomString()
	a.sessions[sid] = s
	a.mu.Unlock()
	a.log.Info("sso-app: signed in", "tenant", claims.Tenant)
	a.setCookie(w, sid)
	http.Redirect(w, r, pend.target, http.StatusFound)
}

// verify checks an ID token (signature, issuer, audience, expiry; the
// nonce when one is wanted; at_hash when it has one) and reads its
// claims.
func (a *App) verify(ctx context.Context, p *discovered, raw, accessToken, nonce string) (Claims, error) {
	idt, err := p.verifier.Verify(oidc.ClientContext(ctx, a.client), raw)
	if err != nil {
		return Claims{}, fmt.Errorf("verify: %w", err)
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return Claims{}, errors.New("the nonce is not the one sent")
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return Claims{}, fmt.Errorf("at_hash: %w", err)
		}
	}
	var c Claims
	if err := idt.Claims(&c); err != nil {
		return Claims{}, fmt.Errorf("claims: %w", err)
	}
	return c, nil
}

// logout ends the app's session and sends the browser to the provider's
// end_session_endpoint (OpenID Connect RP-initiated logout), which
// returns it to the home page. POST, from the home page's button.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		a.methodNotAllowed(w, "POST")
		return
	}
	if r.URL.RawQuery != "" {
		a.fail(w, http.StatusBadRequest, "Bad request", "Sign-out takes no parameters.")
		return
	}
	sid, s := a.session(r)
	var idToken, tenant string
	if s != nil {
		a.mu.Lock()
		if s.user != nil {
			idToken, tenant = s.user.idToken, s.user.claims.Tenant
		}
		a.mu.Unlock()
		a.endSession(sid)
	}
	http.SetCookie(w, &http.Cookie{Name: Cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(a.cfg.BaseURL, "https://")})
	if idToken == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	a.log.Info("sso-app: signed out", "tenant", tenant)
	p, err := a.discover(r.Context())
	if err != nil || p.endSession == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	v := u.Query()
	v.Set("id_token_hint", idToken)
	v.Set("client_id", a.cfg.ClientID)
	v.Set("post_logout_redirect_uri", a.PostLogoutRedirectURI())
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// discover reads the provider's discovery document once it answers.
func (a *App) discover(ctx context.Context) (*discovered, error) {
	a.discoverMu.Lock()
	defer a.discoverMu.Unlock()
	if a.provider != nil {
		return a.provider, nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, a.client), 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, a.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", a.cfg.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discover %s: %w", a.cfg.Issuer, err)
	}
	a.provider = &discovered{
		provider: p,
		verifier: p.Verifier(&oidc.Config{ClientID: a.cfg.ClientID, Now: a.now}),
		oauth: oauth2.Config{
			ClientID: a.cfg.ClientID, ClientSecret: a.cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: a.RedirectURI(), Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess},
		},
		endSession: meta.EndSession,
	}
	return a.provider, nil
}

// session finds the browser's session by its cookie.
func (a *App) session(r *http.Request) (string, *session) {
	c, err := r.Cookie(Cookie)
	if err != nil {
		return "", nil
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[c.Value]
	if s == nil {
		return "", nil
	}
	if now.Sub(s.touched) > sessionTTL {
		delete(a.sessions, c.Value)
		return "", nil
	}
	s.touched = now
	return c.Value, s
}

func (a *App) endSession(sid string) {
	a.mu.Lock()
	delete(a.sessions, sid)
	a.mu.Unlock()
}

// sweepLocked drops the sessions left alone too long; a.mu is held.
func (a *App) sweepLocked(now time.Time) {
	for k, s := range a.sessions {
		if now.Sub(s.touched) > sessionTTL || (s.user == nil && now.Sub(s.touched) > pendingTTL) {
			delete(a.sessions, k)
		}
	}
}

func (a *App) setCookie(w http.ResponseWriter, sid string) {
	http.SetCookie(w, &http.Cookie{Name: Cookie, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(a.cfg.BaseURL, "https://")})
}

// randomString is 32 random bytes, base64url.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (a *App) methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	a.fail(w, http.StatusMethodNotAllowed, "Method not allowed", "This page takes "+allow+".")
}

func (a *App) fail(w http.ResponseWriter, status int, title, message string) {
	a.render(w, status, pageView{Title: title, Tenant: a.cfg.Tenant, Message: message})
}

// pageView is what the one page template shows.
type pageView struct {
	Title            string
	User             *Claims
	Refreshes        int
	Expiry           string
	UserInfo         string
	Tenant           string // the sign-in form's default
	Notice, Message  string
	Error            string // an OAuth error code from the provider
	ErrorDescription string
}

func (a *App) render(w http.ResponseWriter, status int, v pageView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := a.pages.Execute(w, v); err != nil {
		a.log.Error("sso-app: render", "err", err)
	}
}

const pageHTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{{.Title}} · sample app</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}dt{font-weight:bold}dd{margin:0 0 .5em 1em}</style></head>
<body>
<h1 id="title">{{.Title}}</h1>
{{with .Notice}}<p id="notice">{{.}}</p>{{end}}
{{with .Message}}<p id="message">{{.}}</p>{{end}}
{{if .Error}}<p>The provider answered <code id="error">{{.Error}}</code>{{with .ErrorDescription}}: <span id="error-description">{{.}}</span>{{end}}</p>{{end}}
{{with .User}}
<dl>
<dt>Subject</dt><dd id="sub">{{.Subject}}</dd>
<dt>Name</dt><dd id="name">{{.Name}}</dd>
<dt>Tenant</dt><dd id="tenant">{{.Tenant}}</dd>
<dt>Role</dt><dd id="role">{{.Role}}</dd>
<dt>Department</dt><dd id="org">{{.Org}}</dd>
</dl>
<p>Access token valid until <span id="expiry">{{$.Expiry}}</span>, renewed <span id="refreshes">{{$.Refreshes}}</span> times; userinfo: <span id="userinfo">{{$.UserInfo}}</span>.</p>
<form method="post" action="/logout"><button id="logout" type="submit">Sign out</button></form>
{{else}}
<form method="get" action="/login">
<label>Tenant <input id="tenant-input" name="tenant" value="{{.Tenant}}" maxlength="64"></label>
<button id="login" type="submit">Sign in</button>
</form>
{{end}}
</body>
</html>
`
