// Package sso makes koobridge a standard OpenID Connect provider for the
// vendor's app(s) of a joint-operation product, federating every sign-in to
// the identity center (OneAccess) of the buyer's enterprise (issue 13,
// saas-v1-joint-login.md Part C).
//
// The vendor's app speaks plain OpenID Connect to koobridge (discovery,
// authorization-code flow with PKCE, client_secret_basic or _post, userinfo,
// JWKS, RS256 ID tokens, end_session_endpoint). The provider side is
// github.com/zitadel/oidc/v3/pkg/op; this package is its Storage and the
// login step: it finds the tenant (the authorization parameter "tenant", or
// the link /sso/{tenantId}/login), the tenant's application from the Kit
// data, unseals its client secret, sends the browser to the tenant's
// OneAccess with a state bound to the browser by a cookie, exchanges the
// code server-side at /sso/callback, reads the user info, and admits only a
// user authSync authorised for that tenant and application, not revoked and
// enabled. The ID token's sub is userName@tenantCode. The tenants of
// Config.CASTenants sign in over CAS 3.0 instead (login at the tenant's
// /api/v1/cas/login, the ticket validated server-side at /sso/cas), under
// the same rules and with the same ID token.
//
// Everything a sign-in needs between two requests (authorization requests
// and their codes, the browser's sign-in session with the OneAccess tokens
// sealed, access and refresh tokens) is kept in the database
// (store.SSO), so any replica serves any step; signing keys too, their
// private halves sealed with the data key.
package sso

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store"
)

// Defaults of Config.
const (
	DefaultAccessTokenLifetime  = time.Hour
	DefaultIDTokenLifetime      = time.Hour
	DefaultRefreshTokenLifetime = 30 * 24 * time.Hour // OneAccess's own refresh tokens live 30 days
	DefaultSessionLifetime      = 30 * 24 * time.Hour
	DefaultKeyRotation          = 90 * 24 * time.Hour
	DefaultKeyGrace             = 7 * 24 * time.Hour
	// RefreshMargin: a OneAccess access token that expires sooner than this
	// is refreshed when the app refreshes its own tokens.
	RefreshMargin = 5 * time.Minute
)

// Paths under the issuer's path.
const (
	CallbackPath = "/sso/callback"
	// CASServicePath is the CAS service of the tenants that sign in over
	// CAS 3.0 (Config.CASTenants): the service URL sent to the tenant's
	// CAS login is the issuer + CASServicePath + ?state=…&tenant=….
	CASServicePath = "/sso/cas"
	loginPath      = "/sso/login"
	loggedOutPath  = "/sso/logged-out"
)

// Cookie names: koobridge's own, apart from the emulator's emu_* cookies.
const (
	StateCookie   = "kb_sso_state"
	SessionCookie = "kb_sso_session"
)

// Client is one vendor app registered with the provider.
type Client struct {
	ID     string
	Secret string // never logged
	// RedirectURIs are the app's registered redirect URIs (exact match).
	RedirectURIs []string
	// PostLogoutRedirectURIs are where end_session may send the browser.
	PostLogoutRedirectURIs []string
	// InitiateLoginURI is the app's OpenID Connect third-party initiated
	// login endpoint: where /sso/{tenantId}/login and the entry from
	// KooGallery's unified login page send the browser after koobridge's
	// own sign-in. "" disables both for this client.
	InitiateLoginURI string
	// AppID is the Kit appId (applicationSync) of the tenants' application
	// this app signs in through; "" means the tenant's only application.
	AppID string
}

// Config configures a Provider.
type Config struct {
	// Issuer is the public base URL, e.g. https://isv.example.com (a path
	// is allowed): the OpenID Connect issuer; every endpoint lies under it.
	Issuer  string
	Clients []Client
	Store   store.Store
	// DataKey is koobridge's data key (32 bytes): it seals the signing keys
	// and the OneAccess tokens, and (derived) encrypts access tokens.
	DataKey []byte
	// HTTPClient reaches the tenants' identity centers; nil means the
	// oneaccess package's default.
	HTTPClient *http.Client
	// Lifetimes; zero means the Default….
	AccessTokenLifetime, IDTokenLifetime, RefreshTokenLifetime, SessionLifetime time.Duration
	// KeyRotation is the age at which a new signing key replaces the
	// current one; KeyGrace how long a replaced key stays in the JWKS.
	KeyRotation, KeyGrace time.Duration
	// CASTenants are the tenants (tenantIds) whose sign-ins go to their
	// OneAccess over CAS 3.0 (Part C.4) instead of OAuth 2.0; "*" means
	// every tenant. The admission rules and the ID token are the same.
	CASTenants []string
	Logger     *slog.Logger
	// Now is the clock of koobridge's own records; nil means time.Now.
	Now func() time.Time
}

// Provider is the OpenID Connect provider with its federation handlers.
type Provider struct {
	cfg     Config
	st      store.Store
	sealer  *seal.Sealer
	op      *op.Provider
	issuer  string
	base    string // the issuer's path, "" for the root
	secure  bool   // cookies are Secure: the issuer is https
	clients map[string]*Client
	order   []*Client
	cas     map[string]bool // Config.CASTenants; "*" is a key like the others
	log     *slog.Logger
	now     func() time.Time

	keysMu    sync.Mutex
	keysCache []signingKey
	keysAt    time.Time

	sweepMu sync.Mutex
	sweptAt time.Time
}

// New checks cfg and builds the provider.
func New(cfg Config) (*Provider, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("sso: Issuer must be an absolute http or https URL without query, fragment or user info")
	}
	if cfg.Store == nil {
		return nil, errors.New("sso: no Store")
	}
	sealer, err := seal.NewSealer(cfg.DataKey)
	if err != nil {
		return nil, fmt.Errorf("sso: data key: %w", err)
	}
	if len(cfg.Clients) == 0 {
		return nil, errors.New("sso: no client registered")
	}
	p := &Provider{
		cfg: cfg, st: cfg.Store, sealer: sealer,
		issuer:  strings.TrimRight(cfg.Issuer, "/"),
		base:    strings.TrimRight(u.Path, "/"),
		secure:  u.Scheme == "https",
		clients: map[string]*Client{},
		cas:     map[string]bool{},
		log:     cfg.Logger,
		now:     cfg.Now,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&p.cfg.AccessTokenLifetime, DefaultAccessTokenLifetime}, {&p.cfg.IDTokenLifetime, DefaultIDTokenLifetime},
		{&p.cfg.RefreshTokenLifetime, DefaultRefreshTokenLifetime}, {&p.cfg.SessionLifetime, DefaultSessionLifetime},
		{&p.cfg.KeyRotation, DefaultKeyRotation}, {&p.cfg.KeyGrace, DefaultKeyGrace},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	for i := range cfg.Clients {
		c := cfg.Clients[i]
		if err := checkClient(c); err != nil {
			return nil, err
		}
		if _, dup := p.clients[c.ID]; dup {
			return nil, fmt.Errorf("sso: client %q registered twice", c.ID)
		}
		p.clients[c.ID] = &c
		p.order = append(p.order, &c)
	}

	for _, t := range cfg.CASTenants {
		if t == "" || len(t) > maxTenantLen || strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return nil, fmt.Errorf("sso: CAS tenant %q: want a tenantId (at most %d characters, no spaces) or *", t, maxTenantLen)
		}
		p.cas[t] = true
	}

	opts := []op.Option{}
	if u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(&op.Config{
		CryptoKey:                tokenKey(cfg.DataKey),
		DefaultLogoutRedirectURI: p.issuer + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedClaims: append(append([]string(nil), op.DefaultSupportedClaims...),
			ClaimTenant, ClaimRole, ClaimOrg),
	}, (*storage)(p), op.StaticIssuer(p.issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("sso: provider: %w", err)
	}
	return p, nil
}

func checkClient(c Client) error {
	if c.ID == "" {
		return errors.New("sso: a client has no ID")
	}
	if c.Secret == "" {
		return fmt.Errorf("sso: client %q has no secret", c.ID)
	}
	if len(c.RedirectURIs) == 0 {
		return fmt.Errorf("sso: client %q has no redirect URI", c.ID)
	}
	uris := append(append([]string(nil), c.RedirectURIs...), c.PostLogoutRedirectURIs...)
	if c.InitiateLoginURI != "" {
		uris = append(uris, c.InitiateLoginURI)
	}
	for _, raw := range uris {
		if err := checkAppURL(raw); err != nil {
			return fmt.Errorf("sso: client %q: %q: %w", c.ID, raw, err)
		}
	}
	return nil
}

// checkAppURL checks a URL of the vendor's app: absolute http(s), no
// fragment, no user info.
func checkAppURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.User != nil {
		return errors.New("want an absolute http or https URL without fragment or user info")
	}
	return nil
}

// tokenKey derives the key that encrypts access tokens from the data key,
// so every replica reads the others' tokens.
func tokenKey(dataKey []byte) [32]byte {
	m := hmac.New(sha256.New, dataKey)
	m.Write([]byte("koobridge sso access tokens v1"))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// Paths are the URL paths the provider serves (each under the issuer's
// path), for a mux: mount Handler at each.
func (p *Provider) Paths() []string {
	out := []string{}
	for _, s := range []string{oidc.DiscoveryEndpoint, "/authorize", "/authorize/callback", "/oauth/token", "/userinfo",
		"/keys", "/revoke", "/end_session", "/sso/"} {
		out = append(out, p.base+s)
	}
	return out
}

// Handler serves the provider: the OpenID Connect endpoints of the library
// and koobridge's own /sso/ paths, every one under the issuer's path.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	oidcHandler := http.StripPrefix(p.base, p.op)
	for _, s := range []string{oidc.DiscoveryEndpoint, "/authorize/callback", "/oauth/token", "/userinfo", "/keys", "/revoke"} {
		mux.Handle(p.base+s, oidcHandler)
	}
	mux.Handle(p.base+"/authorize", http.StripPrefix(p.base, http.HandlerFunc(p.authorize)))
	mux.Handle(p.base+"/end_session", http.StripPrefix(p.base, http.HandlerFunc(p.endSession)))
	mux.HandleFunc("GET "+p.base+loginPath, p.login)
	mux.HandleFunc("GET "+p.base+CallbackPath, p.callback)
	mux.HandleFunc("GET "+p.base+CASServicePath, p.casCallback)
	mux.HandleFunc("GET "+p.base+loggedOutPath, p.loggedOut)
	mux.HandleFunc("GET "+p.base+"/sso/{tenantId}/login", p.tenantLogin)
	mux.HandleFunc(p.base+"/sso/", func(w http.ResponseWriter, r *http.Request) {
		p.page(w, http.StatusNotFound, "Not found", "There is nothing here.")
	})
	return mux
}

// ctxKey keys the values the HTTP layer hands to the storage.
type ctxKey int

const (
	ctxTenant  ctxKey = iota // the authorization request's tenant parameter
	ctxSession               // the browser's session cookie
)

// authorize reads koobridge's own authorization parameter, tenant, and
// hands the request to the library.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.page(w, http.StatusBadRequest, "Bad request", "The authorization request cannot be read.")
		return
	}
	if len(r.Form["tenant"]) > 1 {
		p.page(w, http.StatusBadRequest, "Bad request", "The parameter tenant is given more than once.")
		return
	}
	ctx := context.WithValue(r.Context(), ctxTenant, r.Form.Get("tenant"))
	p.op.ServeHTTP(w, r.WithContext(ctx))
}

// endSession hands the browser's session to the library's end_session and
// clears the cookie. A logout the library refuses (an id_token_hint that
// no longer verifies, say: its key left the JWKS) still ends the
// browser's session, here and at the tenant's OneAccess: the user asked
// to sign out.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := ""
	if c, err := r.Cookie(SessionCookie); err == nil {
		id = c.Value
		ctx = context.WithValue(ctx, ctxSession, id)
	}
	p.clearCookie(w, SessionCookie)
	rec := &bufferedResponse{header: http.Header{}}
	p.op.ServeHTTP(rec, r.WithContext(ctx))
	if rec.status < http.StatusBadRequest || id == "" {
		rec.copyTo(w)
		return
	}
	// Refused: end the session ourselves and go through OneAccess's logout
	// to koobridge's own signed-out page (the app's redirect is unverified).
	redirect, err := (*storage)(p).endBrowserSession(ctx, id, "", nil, p.issuer+loggedOutPath)
	if err != nil {
		p.log.ErrorContext(ctx, "sso: end session", "err", err)
		p.page(w, http.StatusInternalServerError, "Sign-out failed", "Your session could not be ended. Try again.")
		return
	}
	http.Redirect(w, r, redirect, http.StatusFound)
}

// bufferedResponse holds a handler's answer until it is known to be sent.
type bufferedResponse struct {
	header http.Header
	status int
	body   []byte
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	b.body = append(b.body, p...)
	return len(p), nil
}

// copyTo sends the held answer.
func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = append(w.Header()[k], v...)
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body)
}

func (p *Provider) cookiePath() string { return p.base + "/" }

func (p *Provider) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: p.cookiePath(), MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (p *Provider) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: p.cookiePath(), MaxAge: -1,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
}
