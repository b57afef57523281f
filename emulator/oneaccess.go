package emulator

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The emulator plays each tenant's identity center (OneAccess,
// saas-v1-joint-login.md Part C) under its own base path, so that one
// process serves every tenant: OneAccessPath + tenantCode. With
// Config.PublicURL the tenant's domainName (tenantSync) is that base URL,
// so a seller that follows domainName reaches the emulator.
const OneAccessPath = "/oneaccess/"

// Defaults of the OneAccess the emulator plays (Config fills them in).
const (
	// DefaultUserPassword is the password every user of every tenant
	// signs in with (Config.UserPassword; koobridge emulate
	// --user-password).
	DefaultUserPassword = "emulator-password"
	// DefaultAccessTokenLifetime is expires_in of the access tokens, the
	// OneAccess default (Part C.3).
	DefaultAccessTokenLifetime = 7200 * time.Second
)

// Lifetimes of what the emulated OneAccess hands out, on the wall clock
// (Config.Now): the seller measures them with its own clock.
const (
	oaCodeLife    = 5 * time.Minute     // authorization codes and CAS service tickets
	oaRefreshLife = 30 * 24 * time.Hour // refresh tokens (Part C.3: 30 days)
	oaSessionLife = 8 * time.Hour       // the sign-in session of the login page
	// oaMaxEntries bounds each store (codes, tokens, tickets, sessions):
	// at the bound expired entries are swept, then an arbitrary one goes.
	oaMaxEntries = 10000
	// oaCookie is the session cookie, named apart from koobridge's and
	// scoped to the tenant's base path.
	oaCookie = "emu_oneaccess_session"
	// oaDefaultScope is the scope when the request names none (Part C.3).
	oaDefaultScope = "get_user_info"
)

// oaUser is a user of a tenant's directory: every user authSync ever
// sent, revoked, disabled or deleted included (refusing them is the
// seller's job, as with a real directory).
type oaUser struct {
	id       string
	userName string
	name     string
	orgCode  string
	role     string
	mobile   string
	email    string
}

// oaTenant is what a tenant's identity center keeps beside the Kit data.
// Guarded by Emulator.mu.
type oaTenant struct {
	users map[string]*oaUser
	// client is the clientId the registrations below belong to: a new
	// OAuth client (bind after unbind) starts afresh.
	client string
	// redirectURI is the OAuth callback, casService the CAS service: the
	// first one the seller uses is registered, later ones must equal it.
	redirectURI, casService string
}

// remember adds users to the tenant's directory (or updates them).
func (t *tenant) remember(users []kitUserWire) {
	if t.oa.users == nil {
		t.oa.users = make(map[string]*oaUser)
	}
	for _, u := range users {
		d := t.oa.users[u.UserName]
		if d == nil {
			d = &oaUser{id: NewNonce(), userName: u.UserName}
			t.oa.users[u.UserName] = d
		}
		d.name, d.orgCode, d.role, d.mobile, d.email = u.Name, u.OrgCode, u.Role, u.Mobile, u.Email
	}
}

// oaRegistrations returns the tenant's registrations for its current
// OAuth client.
func (t *tenant) oaRegistrations() *oaTenant {
	if t.oa.client != t.t.ClientID {
		t.oa.client, t.oa.redirectURI, t.oa.casService = t.t.ClientID, "", ""
	}
	return &t.oa
}

// oaGrant is what a code, a token or a ticket stands for.
type oaGrant struct {
	tenantID, clientID, userName string
	redirectURI                  string // codes: the redirect_uri it was issued for; tickets: the service
	scope                        string
	expires                      time.Time
	newLogin                     bool      // tickets: issued by a sign-in with the form, not the session
	authAt                       time.Time // tickets: when the user signed in
}

// oaSession is a sign-in at the login page.
type oaSession struct {
	tenantID, userName string
	at, expires        time.Time
}

// oaState holds the codes, tokens, tickets and sessions the emulated
// identity centers handed out, keyed by their random value. Guarded by
// Emulator.mu.
type oaState struct {
	codes, access, refresh, tickets map[string]*oaGrant
	sessions                        map[string]*oaSession
}

func newOAState() oaState {
	return oaState{
		codes: map[string]*oaGrant{}, access: map[string]*oaGrant{}, refresh: map[string]*oaGrant{},
		tickets: map[string]*oaGrant{}, sessions: map[string]*oaSession{},
	}
}

// oaPut stores v under a new random key in m, keeping m within
// oaMaxEntries, and returns the key with prefix.
func oaPut[V any](m map[string]V, prefix string, v V, expired func(V) bool) string {
	if len(m) >= oaMaxEntries {
		for k, old := range m {
			if expired(old) {
				delete(m, k)
			}
		}
		for k := range m {
			if len(m) < oaMaxEntries {
				break
			}
			delete(m, k)
		}
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	k := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	m[k] = v
	return k
}

// oaTenantLocked finds a tenant by tenantCode.
func (e *Emulator) oaTenantLocked(code string) *tenant {
	for _, t := range e.tenants {
		if t.t.TenantCode == code {
			return t
		}
	}
	return nil
}

// oneAccessURL is the tenant's identity center: PublicURL +
// /oneaccess/<code>, or the path alone when the emulator does not know
// its address.
func (e *Emulator) oneAccessURL(code string) string {
	return e.cfg.PublicURL + OneAccessPath + code
}

// OneAccessHandler serves the identity center (OneAccess, Part C) of
// every tenant the Kit scenarios made, each under OneAccessPath +
// tenantCode; Handler serves it too. Relative to a tenant's base path:
//
//	GET  /api/v1/oauth2/authorize      login form (username, password), then 302 to redirect_uri with code and state
//	POST /api/v1/oauth2/token          authorization_code and refresh_token grants
//	GET  /api/v1/oauth2/userinfo       the user of a Bearer access token
//	GET  /api/v1/logout                ends the session, 302 to redirect_url
//	GET  /api/v1/cas/login             login form, then 302 to service with ticket
//	GET  /api/v1/cas/p3/serviceValidate CAS 3.0 ticket validation, XML (default) or format=JSON
//	GET  /api/v1/unified-login         the unified-login entry: 302 to the app's callback with code and tenant, no state
//
// Every user authSync ever sent to the tenant signs in with
// Config.UserPassword. The client is the tenant's current clientId and
// clientSecret (applicationSync); the first redirect_uri (and CAS
// service, without its query) the seller uses is registered, later ones
// must equal it.
func (e *Emulator) OneAccessHandler() http.Handler {
	o := &oneAccess{e: e, cop: http.NewCrossOriginProtection()}
	mux := http.NewServeMux()
	const p = OneAccessPath + "{tenant}/api/v1/"
	mux.HandleFunc("GET "+p+"oauth2/authorize", o.authorize)
	mux.HandleFunc("POST "+p+"oauth2/authorize", o.authorize)
	mux.HandleFunc("POST "+p+"oauth2/token", o.token)
	mux.HandleFunc("GET "+p+"oauth2/userinfo", o.userinfo)
	mux.HandleFunc("GET "+p+"logout", o.logout)
	mux.HandleFunc("GET "+p+"cas/login", o.casLogin)
	mux.HandleFunc("POST "+p+"cas/login", o.casLogin)
	mux.HandleFunc("GET "+p+"cas/p3/serviceValidate", o.serviceValidate)
	mux.HandleFunc("GET "+p+"unified-login", o.unifiedLogin)
	mux.HandleFunc("POST "+p+"unified-login", o.unifiedLogin)
	return mux
}

// oneAccess serves the emulated identity centers.
type oneAccess struct {
	e   *Emulator
	cop *http.CrossOriginProtection
}

// oaCSP is the login pages' policy: no scripts or foreign resources. It
// has no form-action: the form's answer redirects to the seller, which
// form-action 'self' would block.
const oaCSP = "default-src 'none'; style-src 'unsafe-inline'"

// oaPages are the identity center's pages: the login form and the error
// page.
var oaPages = template.Must(template.ParseFS(templateFS, "templates/oneaccess.html"))

// loginView is the login form.
type loginView struct {
	Tenant string // the tenant's name
	App    string // the client the user signs in to, or the CAS service
	Action string // where the form posts
	Hidden []hiddenField
	User   string
	Error  string
}

type hiddenField struct{ Name, Value string }

type oaErrorView struct {
	Status  int
	Message string
}

func (o *oneAccess) page(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := oaPages.ExecuteTemplate(&buf, name, data); err != nil {
		o.e.cfg.Logger.Error("emulator oneaccess: render page", "page", name, "err", err)
		http.Error(w, "internal error: render page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", oaCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (o *oneAccess) errorPage(w http.ResponseWriter, status int, msg string) {
	o.page(w, status, "error", oaErrorView{Status: status, Message: msg})
}

// loginRequest is what one of the sign-in entries (authorize, CAS login,
// unified login) asks, checked.
type loginRequest struct {
	tenantID, code, tenantName string
	clientID                   string
	target                     string // redirect_uri or service
	hidden                     []hiddenField
	app                        string
	// finish builds the redirect for a signed-in user.
	finish func(userName string, newLogin bool, authAt time.Time) string
}

// signIn runs the login form around req: a user with a session goes on
// at once (GET); otherwise GET shows the form and POST checks it.
func (o *oneAccess) signIn(w http.ResponseWriter, r *http.Request, req loginRequest) {
	now := o.e.cfg.Now()
	if r.Method == http.MethodGet {
		o.e.mu.Lock()
		s := o.sessionLocked(r, req.tenantID, now)
		var loc string
		if s != nil {
			loc = req.finish(s.userName, false, s.at)
		}
		o.e.mu.Unlock()
		if s != nil {
			http.Redirect(w, r, loc, http.StatusFound)
			return
		}
		o.loginForm(w, r, req, http.StatusOK, "", "")
		return
	}
	if err := o.cop.Check(r); err != nil {
		o.errorPage(w, http.StatusForbidden, "cross-origin sign-in refused")
		return
	}
	user := r.PostForm.Get("username")
	pass := r.PostForm.Get("password")
	o.e.mu.Lock()
	t := o.e.oaTenantLocked(req.code)
	ok := t != nil && t.oa.users[user] != nil
	want := o.e.cfg.UserPassword
	o.e.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
		o.loginForm(w, r, req, http.StatusUnauthorized, user, "Wrong user name or password.")
		return
	}
	o.e.mu.Lock()
	sid := oaPut(o.e.oa.sessions, "", &oaSession{tenantID: req.tenantID, userName: user, at: now, expires: now.Add(oaSessionLife)},
		func(s *oaSession) bool { return !now.Before(s.expires) })
	loc := req.finish(user, true, now)
	o.e.mu.Unlock()
	o.e.cfg.Logger.Info("emulator oneaccess: sign-in", "tenant", req.code, "user", user)
	http.SetCookie(w, &http.Cookie{
		Name: oaCookie, Value: sid, Path: o.cookiePath(req.code), HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: int(oaSessionLife / time.Second),
		Secure: strings.HasPrefix(o.e.cfg.PublicURL, "https:"),
	})
	http.Redirect(w, r, loc, http.StatusFound)
}

func (o *oneAccess) loginForm(w http.ResponseWriter, r *http.Request, req loginRequest, status int, user, msg string) {
	o.page(w, status, "login", loginView{
		Tenant: req.tenantName, App: req.app, Action: r.URL.Path, Hidden: req.hidden, User: user, Error: msg,
	})
}

// cookiePath is the tenant's base path as the browser sees it.
func (o *oneAccess) cookiePath(code string) string {
	p := ""
	if u, err := url.Parse(o.e.cfg.PublicURL); err == nil {
		p = strings.TrimSuffix(u.Path, "/")
	}
	return p + OneAccessPath + code
}

// sessionLocked is the live session r's cookie names for the tenant.
func (o *oneAccess) sessionLocked(r *http.Request, tenantID string, now time.Time) *oaSession {
	c, err := r.Cookie(oaCookie)
	if err != nil {
		return nil
	}
	s := o.e.oa.sessions[c.Value]
	if s == nil || s.tenantID != tenantID || !now.Before(s.expires) {
		return nil
	}
	return s
}

// params reads the request's parameters: the query of a GET, the form
// body of a POST (at most maxBody bytes).
func params(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if r.Method == http.MethodGet {
		return r.URL.Query(), nil
	}
	if err := parseForm(w, r); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

// callbackURL checks that s is an absolute http(s) URL without a fragment.
func callbackURL(name, s string) (*url.URL, error) {
	if s == "" {
		return nil, badRequest("%s is required", name)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.User != nil {
		return nil, badRequest("%s %q is not an absolute http(s) URL without a fragment", name, s)
	}
	return u, nil
}

// withQuery adds vals to u's query.
func withQuery(u *url.URL, vals url.Values) string {
	q := u.Query()
	for k, vs := range vals {
		q[k] = vs
	}
	c := *u
	c.RawQuery = q.Encode()
	return c.String()
}

// register checks target against the registration *reg: the first one
// is registered, later ones must equal it.
func register(reg *string, what, target string) error {
	switch {
	case *reg == "":
		*reg = target
	case *reg != target:
		return badRequest("%s %q is not the one registered for this application (%q)", what, target, *reg)
	}
	return nil
}

// checkOAuthClient finds the tenant and checks client_id and
// redirect_uri, registering the redirect URI the first time.
func (o *oneAccess) checkOAuthClient(r *http.Request, clientID, redirectURI string) (*tenant, *url.URL, error) {
	code := r.PathValue("tenant")
	t := o.e.oaTenantLocked(code)
	if t == nil {
		return nil, nil, notFound("no such tenant: %q", code)
	}
	if clientID == "" {
		return nil, nil, badRequest("client_id is required")
	}
	if subtle.ConstantTimeCompare([]byte(clientID), []byte(t.t.ClientID)) != 1 {
		return nil, nil, badRequest("unknown client_id %q", clientID)
	}
	u, err := callbackURL("redirect_uri", redirectURI)
	if err != nil {
		return nil, nil, err
	}
	if err := register(&t.oaRegistrations().redirectURI, "redirect_uri", redirectURI); err != nil {
		return nil, nil, err
	}
	return t, u, nil
}

// issueCodeLocked issues an authorization code.
func (o *oneAccess) issueCodeLocked(tenantID, clientID, userName, redirectURI, scope string) string {
	now := o.e.cfg.Now()
	return oaPut(o.e.oa.codes, "", &oaGrant{
		tenantID: tenantID, clientID: clientID, userName: userName, redirectURI: redirectURI,
		scope: scope, expires: now.Add(oaCodeLife),
	}, func(g *oaGrant) bool { return !now.Before(g.expires) })
}

// authorize is the OAuth 2.0 authorize endpoint (Part C.3 step 1).
func (o *oneAccess) authorize(w http.ResponseWriter, r *http.Request) {
	q, err := params(w, r)
	if err != nil {
		o.fail(w, err)
		return
	}
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	responseType, scope, state := q.Get("response_type"), q.Get("scope"), q.Get("state")
	o.e.mu.Lock()
	t, u, err := o.checkOAuthClient(r, clientID, redirectURI)
	var tenantID, code, name string
	if t != nil {
		tenantID, code, name = t.t.TenantID, t.t.TenantCode, t.t.Name
	}
	o.e.mu.Unlock()
	if err != nil {
		o.fail(w, err)
		return
	}
	if responseType != "code" {
		back := url.Values{"error": {"unsupported_response_type"}, "error_description": {"response_type must be code"}}
		if state != "" {
			back.Set("state", state)
		}
		http.Redirect(w, r, withQuery(u, back), http.StatusFound)
		return
	}
	if scope == "" {
		scope = oaDefaultScope
	}
	hidden := []hiddenField{{"client_id", clientID}, {"redirect_uri", redirectURI}, {"response_type", responseType}, {"scope", scope}}
	if state != "" {
		hidden = append(hidden, hiddenField{"state", state})
	}
	o.signIn(w, r, loginRequest{
		tenantID: tenantID, code: code, tenantName: name, clientID: clientID, target: redirectURI,
		hidden: hidden, app: "application " + clientID,
		finish: func(userName string, _ bool, _ time.Time) string {
			back := url.Values{"code": {o.issueCodeLocked(tenantID, clientID, userName, redirectURI, scope)}}
			if state != "" {
				back.Set("state", state)
			}
			return withQuery(u, back)
		},
	})
}

// unifiedLogin is the unified-login entry (Part C.2 entry 1): after
// sign-in the browser goes to the app's callback with code and tenant
// (the tenantId) and no state. redirect_uri may be left out once the
// app's callback is registered.
func (o *oneAccess) unifiedLogin(w http.ResponseWriter, r *http.Request) {
	q, err := params(w, r)
	if err != nil {
		o.fail(w, err)
		return
	}
	o.e.mu.Lock()
	var t *tenant
	var u *url.URL
	redirectURI := q.Get("redirect_uri")
	if t = o.e.oaTenantLocked(r.PathValue("tenant")); t == nil {
		err = notFound("no such tenant: %q", r.PathValue("tenant"))
	} else {
		if redirectURI == "" {
			redirectURI = t.oaRegistrations().redirectURI
		}
		if redirectURI == "" {
			err = badRequest("redirect_uri is required: no callback is registered for the application yet")
		} else {
			t, u, err = o.checkOAuthClient(r, t.t.ClientID, redirectURI)
		}
	}
	var tenantID, code, name, clientID string
	if err == nil {
		tenantID, code, name, clientID = t.t.TenantID, t.t.TenantCode, t.t.Name, t.t.ClientID
	}
	o.e.mu.Unlock()
	if err != nil {
		o.fail(w, err)
		return
	}
	o.signIn(w, r, loginRequest{
		tenantID: tenantID, code: code, tenantName: name, clientID: clientID, target: redirectURI,
		hidden: []hiddenField{{"redirect_uri", redirectURI}}, app: "application " + clientID,
		finish: func(userName string, _ bool, _ time.Time) string {
			c := o.issueCodeLocked(tenantID, clientID, userName, redirectURI, oaDefaultScope)
			return withQuery(u, url.Values{"code": {c}, "tenant": {tenantID}})
		},
	})
}

// casLogin is the CAS login (Part C.4): after sign-in the browser goes
// to service with a service ticket.
func (o *oneAccess) casLogin(w http.ResponseWriter, r *http.Request) {
	q, err := params(w, r)
	if err != nil {
		o.fail(w, err)
		return
	}
	service := q.Get("service")
	o.e.mu.Lock()
	var tenantID, code, name, clientID string
	var u *url.URL
	t := o.e.oaTenantLocked(r.PathValue("tenant"))
	switch {
	case t == nil:
		err = notFound("no such tenant: %q", r.PathValue("tenant"))
	default:
		if u, err = callbackURL("service", service); err == nil {
			// The service's query (a seller's own state, the tenant) may
			// change from one sign-in to the next: the registered service
			// is its URL without it.
			err = register(&t.oaRegistrations().casService, "service", withoutQuery(service))
		}
		tenantID, code, name, clientID = t.t.TenantID, t.t.TenantCode, t.t.Name, t.t.ClientID
	}
	o.e.mu.Unlock()
	if err != nil {
		o.fail(w, err)
		return
	}
	o.signIn(w, r, loginRequest{
		tenantID: tenantID, code: code, tenantName: name, clientID: clientID, target: service,
		hidden: []hiddenField{{"service", service}}, app: "service " + service,
		finish: func(userName string, newLogin bool, authAt time.Time) string {
			now := o.e.cfg.Now()
			st := oaPut(o.e.oa.tickets, "ST-", &oaGrant{
				tenantID: tenantID, clientID: clientID, userName: userName, redirectURI: service,
				expires: now.Add(oaCodeLife), newLogin: newLogin, authAt: authAt,
			}, func(g *oaGrant) bool { return !now.Before(g.expires) })
			return withQuery(u, url.Values{"ticket": {st}})
		},
	})
}

// fail answers err as the identity center's error page.
func (o *oneAccess) fail(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		o.errorPage(w, ae.status, ae.msg)
		return
	}
	o.errorPage(w, http.StatusInternalServerError, err.Error())
}

// logout ends the session (Part C.5) and sends the browser to
// redirect_url, when given.
func (o *oneAccess) logout(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("tenant")
	o.e.mu.Lock()
	t := o.e.oaTenantLocked(code)
	if t != nil {
		if c, err := r.Cookie(oaCookie); err == nil {
			if s := o.e.oa.sessions[c.Value]; s != nil && s.tenantID == t.t.TenantID {
				delete(o.e.oa.sessions, c.Value)
			}
		}
	}
	o.e.mu.Unlock()
	if t == nil {
		o.errorPage(w, http.StatusNotFound, "no such tenant: "+code)
		return
	}
	back := r.URL.Query().Get("redirect_url")
	var u *url.URL
	if back != "" {
		var err error
		if u, err = callbackURL("redirect_url", back); err != nil {
			o.fail(w, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: oaCookie, Value: "", Path: o.cookiePath(code), MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if u == nil {
		o.errorPage(w, http.StatusOK, "You are signed out.")
		return
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// oauthError is an OAuth error answer.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func writeOAuth(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// tokenAnswer is the token endpoint's success (Part C.3 step 2).
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token"`
}

// token is the token endpoint (Part C.3 steps 2 and 3).
func (o *oneAccess) token(w http.ResponseWriter, r *http.Request) {
	// The body is read first: only then does the server notice a client
	// that hangs up during the latency fault.
	mt, _, ctErr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	formErr := r.ParseForm()
	if f := o.e.Faults(); f.OneAccessTokenLatency > 0 || f.OneAccessTokenFail {
		if f.OneAccessTokenLatency > 0 {
			t := time.NewTimer(f.OneAccessTokenLatency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if f.OneAccessTokenFail {
			writeOAuth(w, http.StatusInternalServerError, oauthError{"server_error", "Internal server error"})
			return
		}
	}
	if ctErr != nil || mt != "application/x-www-form-urlencoded" {
		writeOAuth(w, http.StatusBadRequest, oauthError{"invalid_request", "Content-Type must be application/x-www-form-urlencoded"})
		return
	}
	if formErr != nil {
		writeOAuth(w, http.StatusBadRequest, oauthError{"invalid_request", "unreadable form body"})
		return
	}
	form := r.PostForm
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if id, sec, ok := r.BasicAuth(); ok {
		if (clientID != "" && clientID != id) || secret != "" {
			writeOAuth(w, http.StatusBadRequest, oauthError{"invalid_request", "client credentials given twice (HTTP Basic and the form)"})
			return
		}
		clientID, secret = id, sec
	}
	now := o.e.cfg.Now()
	o.e.mu.Lock()
	defer o.e.mu.Unlock()
	t := o.e.oaTenantLocked(r.PathValue("tenant"))
	if t == nil {
		writeOAuth(w, http.StatusNotFound, oauthError{"invalid_request", "no such tenant"})
		return
	}
	if clientID == "" || secret == "" ||
		subtle.ConstantTimeCompare([]byte(clientID), []byte(t.t.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(t.secret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth2/client"`)
		writeOAuth(w, http.StatusUnauthorized, oauthError{"invalid_client", "Bad client credentials"})
		return
	}
	var g *oaGrant
	switch form.Get("grant_type") {
	case "authorization_code":
		c := form.Get("code")
		g = o.e.oa.codes[c]
		delete(o.e.oa.codes, c) // single use, whatever follows
		if c == "" || g == nil || !now.Before(g.expires) || g.tenantID != t.t.TenantID ||
			g.clientID != clientID || g.redirectURI != form.Get("redirect_uri") {
			writeOAuth(w, http.StatusBadRequest, oauthError{"invalid_grant", "Invalid authorization code"})
			return
		}
	case "refresh_token":
		rt := form.Get("refresh_token")
		g = o.e.oa.refresh[rt]
		if rt == "" || g == nil || !now.Before(g.expires) || g.tenantID != t.t.TenantID || g.clientID != clientID {
			writeOAuth(w, http.StatusBadRequest, oauthError{"invalid_grant", "Invalid refresh token"})
			return
		}
		// The refresh token is not rotated: the answer carries it again
		// (whether OneAccess rotates it is UNCONFIRMED, Part C.3).
		writeOAuth(w, http.StatusOK, o.accessLocked(g, rt, now))
		return
	case "":
		writeOAuth(w, http.StatusBadRequest, oauthError{"invalid_request", "grant_type is required"})
		return
	default:
		writeOAuth(w, http.StatusBadRequest, oauthError{"unsupported_grant_type", "Unsupported grant type: " + form.Get("grant_type")})
		return
	}
	refresh := *g
	refresh.expires = now.Add(oaRefreshLife)
	rt := oaPut(o.e.oa.refresh, "", &refresh, func(g *oaGrant) bool { return !now.Before(g.expires) })
	writeOAuth(w, http.StatusOK, o.accessLocked(g, rt, now))
}

// accessLocked issues an access token for g, answered with refresh
// token rt.
func (o *oneAccess) accessLocked(g *oaGrant, rt string, now time.Time) tokenAnswer {
	life := o.e.cfg.AccessTokenLifetime
	access := *g
	access.expires = now.Add(life)
	at := oaPut(o.e.oa.access, "", &access, func(g *oaGrant) bool { return !now.Before(g.expires) })
	return tokenAnswer{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(life / time.Second),
		Scope: g.scope, RefreshToken: rt,
	}
}

// oaUserInfo is the user info the emulated OneAccess answers (Part C.3
// step 4).
type oaUserInfo struct {
	ID               string `json:"id"`
	UserName         string `json:"userName"`
	Name             string `json:"name"`
	Email            string `json:"email"`
	Mobile           string `json:"mobile"`
	Role             string `json:"role"`
	OrganizationName string `json:"organizationName"`
	UserID           string `json:"userId"`
	OrganizationCode string `json:"organizationCode"`
	ProjectName      string `json:"projectName"`
	Tenant           string `json:"tenant"`
}

// userinfo answers the user of a Bearer access token (Part C.3 step 4).
func (o *oneAccess) userinfo(w http.ResponseWriter, r *http.Request) {
	unauthorized := func() {
		w.Header().Set("WWW-Authenticate", `Bearer realm="oauth2-resource", error="unauthorized"`)
		writeOAuth(w, http.StatusUnauthorized, oauthError{"unauthorized", "Full authentication is required to access this resource"})
	}
	auth := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		unauthorized()
		return
	}
	now := o.e.cfg.Now()
	o.e.mu.Lock()
	defer o.e.mu.Unlock()
	t := o.e.oaTenantLocked(r.PathValue("tenant"))
	g := o.e.oa.access[tok]
	if t == nil || g == nil || g.tenantID != t.t.TenantID || !now.Before(g.expires) {
		unauthorized()
		return
	}
	u := t.oa.users[g.userName]
	if u == nil {
		unauthorized()
		return
	}
	writeOAuth(w, http.StatusOK, oaUserInfo{
		ID: u.id, UserName: u.userName, Name: u.name, Email: u.email, Mobile: u.mobile, Role: u.role,
		OrganizationName: orgName(t, u.orgCode), UserID: u.id, OrganizationCode: u.orgCode,
		ProjectName: t.t.Name, Tenant: t.t.TenantID,
	})
}

// orgName is the name of department code in t's tree (the code itself
// once the department is gone).
func orgName(t *tenant, code string) string {
	for _, org := range slices.Concat(t.t.Orgs, orgTree()) {
		if org.OrgCode == code {
			return org.Name
		}
	}
	return code
}

// CAS 3.0 answers (Part C.4).
type casXML struct {
	XMLName xml.Name       `xml:"cas:serviceResponse"`
	NS      string         `xml:"xmlns:cas,attr"`
	Success *casXMLSuccess `xml:"cas:authenticationSuccess,omitempty"`
	Failure *casXMLFailure `xml:"cas:authenticationFailure,omitempty"`
}

type casXMLSuccess struct {
	User       string        `xml:"cas:user"`
	Attributes casAttributes `xml:"cas:attributes"`
}

type casAttributes struct {
	AuthenticationDate                     string `xml:"cas:authenticationDate" json:"authenticationDate"`
	LongTermAuthenticationRequestTokenUsed bool   `xml:"cas:longTermAuthenticationRequestTokenUsed" json:"longTermAuthenticationRequestTokenUsed"`
	IsFromNewLogin                         bool   `xml:"cas:isFromNewLogin" json:"isFromNewLogin"`
	Role                                   string `xml:"cas:role" json:"role"`
	OrganizationCode                       string `xml:"cas:organizationCode" json:"organizationCode"`
	Name                                   string `xml:"cas:name" json:"name"`
	UserName                               string `xml:"cas:userName" json:"userName"`
	Tenant                                 string `xml:"cas:tenant" json:"tenant"`
}

type casXMLFailure struct {
	Code        string `xml:"code,attr"`
	Description string `xml:",chardata"`
}

type casJSON struct {
	ServiceResponse struct {
		Success *casJSONSuccess `json:"authenticationSuccess,omitempty"`
		Failure *casJSONFailure `json:"authenticationFailure,omitempty"`
	} `json:"serviceResponse"`
}

type casJSONSuccess struct {
	User       string        `json:"user"`
	Attributes casAttributes `json:"attributes"`
}

type casJSONFailure struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

// serviceValidate validates a service ticket (CAS 3.0
// p3/serviceValidate): XML unless format=JSON. Tickets are single use
// and bound to their service.
func (o *oneAccess) serviceValidate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	asJSON := false
	var failCode, failMsg string
	switch strings.ToUpper(q.Get("format")) {
	case "", "XML":
	case "JSON":
		asJSON = true
	default:
		failCode, failMsg = "INVALID_REQUEST", "format must be XML or JSON"
	}
	service, ticket := q.Get("service"), q.Get("ticket")
	var succ *casAttributes
	var user string
	if failCode == "" {
		now := o.e.cfg.Now()
		o.e.mu.Lock()
		t := o.e.oaTenantLocked(r.PathValue("tenant"))
		g := o.e.oa.tickets[ticket]
		delete(o.e.oa.tickets, ticket) // single use, whatever follows
		switch {
		case service == "" || ticket == "":
			failCode, failMsg = "INVALID_REQUEST", "service and ticket are required"
		case t == nil || g == nil || g.tenantID != t.t.TenantID || !now.Before(g.expires):
			failCode, failMsg = "INVALID_TICKET", "Ticket "+ticket+" not recognized"
		case g.redirectURI != service:
			failCode, failMsg = "INVALID_SERVICE", "Ticket "+ticket+" does not match the service "+service
		default:
			u := t.oa.users[g.userName]
			user = u.userName
			succ = &casAttributes{
				AuthenticationDate: g.authAt.UTC().Format(time.RFC3339), IsFromNewLogin: g.newLogin,
				Role: u.role, OrganizationCode: u.orgCode, Name: u.name, UserName: u.userName, Tenant: t.t.TenantID,
			}
		}
		o.e.mu.Unlock()
	}
	if asJSON {
		var a casJSON
		if succ != nil {
			a.ServiceResponse.Success = &casJSONSuccess{User: user, Attributes: *succ}
		} else {
			a.ServiceResponse.Failure = &casJSONFailure{Code: failCode, Description: failMsg}
		}
		writeOAuth(w, http.StatusOK, a)
		return
	}
	a := casXML{NS: "http://www.yale.edu/tp/cas"}
	if succ != nil {
		a.Success = &casXMLSuccess{User: user, Attributes: *succ}
	} else {
		a.Failure = &casXMLFailure{Code: failCode, Description: failMsg}
	}
	b, err := xml.MarshalIndent(a, "", "  ")
	if err != nil {
		http.Error(w, "internal error: encode CAS answer", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// withoutQuery is u without its query and fragment.
func withoutQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
