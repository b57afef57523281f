package sso

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/koobridge/koobridge/internal/oneaccess"
	"github.com/koobridge/koobridge/internal/store"
)

// Claims of the ID token and the user info beyond the standard ones.
const (
	ClaimTenant = "tenant" // the tenantId (tenantSync)
	ClaimRole   = "role"   // "user" or "admin" (authSync)
	ClaimOrg    = "org"    // the user's orgCode (authSync)
)

// failure is why a sign-in cannot go on: the OIDC error for the app, and
// the page for a browser that cannot be sent back to one.
type failure struct {
	status int    // of the page
	code   string // OIDC error code
	title  string
	desc   string // for the app and the page: never a secret or a token
}

func (f *failure) Error() string { return f.code + ": " + f.desc }

var (
	errNoTenant = &failure{http.StatusBadRequest, "invalid_request", "No tenant",
		"The sign-in names no tenant: the authorization request needs the tenant parameter (the tenantId)."}
	errUnknownTenant = &failure{http.StatusNotFound, "invalid_request", "Unknown tenant",
		"No enterprise with this tenant ID is bound to the product."}
	errNoApp = &failure{http.StatusConflict, "access_denied", "No application",
		"No application of this enterprise is synced for this app (applicationSync)."}
	errManyApps = &failure{http.StatusConflict, "access_denied", "No application",
		"The enterprise has several applications and this app is not mapped to one (app-id)."}
	errSecret = &failure{http.StatusConflict, "access_denied", "Application unusable",
		"The client secret of the enterprise's application cannot be decrypted."}
	errIdentityCenter = &failure{http.StatusConflict, "access_denied", "Identity center unusable",
		"The enterprise's identity center address is not usable."}
	errNotAuthorised = &failure{http.StatusForbidden, "access_denied", "Not authorised",
		"The user is not authorised for this application."}
	errOtherTenant = &failure{http.StatusForbidden, "access_denied", "Not authorised",
		"The identity center signed in a user of another tenant."}
	errRefused = &failure{http.StatusForbidden, "access_denied", "Sign-in refused",
		"The identity center did not sign the user in."}
	errUnavailable = &failure{http.StatusBadGateway, "server_error", "Identity center unavailable",
		"The enterprise's identity center could not be reached; try again later."}
	errInternal = &failure{http.StatusServiceUnavailable, "server_error", "Unavailable",
		"Sign-in is unavailable at the moment; try again later."}
	errLoginRequired = &failure{http.StatusForbidden, "login_required", "Sign-in required",
		"The user is not signed in and prompt=none was asked."}
)

// grantFailure is the failure of a refused authorization code.
func grantFailure(code string) *failure {
	return &failure{http.StatusBadRequest, "access_denied", "Sign-in refused",
		"The identity center refused the authorization code (" + code + ")."}
}

// login is the provider's login step: the library sends the browser here
// with the authorization request's id.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if len(q["id"]) != 1 {
		p.page(w, http.StatusBadRequest, "Bad request", "The sign-in request is missing or given twice.")
		return
	}
	ar, err := p.authRequest(ctx, q.Get("id"))
	if err != nil {
		p.gone(w, r, err)
		return
	}
	client := p.clients[ar.ClientID]
	if client == nil || ar.Finished {
		p.page(w, http.StatusBadRequest, "Bad request", "This sign-in request cannot be used again.")
		return
	}
	sess, hasSession := p.browserSession(r)
	tenantID := ar.Tenant
	if tenantID == "" && hasSession {
		tenantID = sess.TenantID
	}
	if tenantID == "" {
		p.fail(w, r, ar, errNoTenant)
		return
	}
	tn, app, oa, f := p.resolve(ctx, tenantID, client)
	if f != nil {
		p.fail(w, r, ar, f)
		return
	}
	if hasSession && sess.TenantID == tn.ID && sess.AppID == app.AppID && !forcesLogin(ar, sess, p.now()) {
		if _, _, f := p.admitted(ctx, sess.TenantID, sess.AppID, sess.UserName); f != nil {
			p.fail(w, r, ar, f)
			return
		}
		p.complete(w, r, ar, sess)
		return
	}
	if len(ar.Prompt) == 1 && ar.Prompt[0] == oidc.PromptNone {
		p.fail(w, r, ar, errLoginRequired)
		return
	}
	p.startRound(w, r, oa, loginRound{AuthRequest: ar.ID, TenantID: tn.ID, AppID: app.AppID, ClientID: client.ID}, ar)
}

// forcesLogin reports whether the request asks for a fresh sign-in at
// the identity center (prompt=login, or max_age older than the session).
func forcesLogin(ar *authRequest, sess session, now time.Time) bool {
	for _, pr := range ar.Prompt {
		if pr == oidc.PromptLogin {
			return true
		}
	}
	return ar.MaxAge != nil && now.Sub(sess.AuthTime) > time.Duration(*ar.MaxAge)*time.Second
}

// startRound sends the browser to the tenant's OneAccess with a fresh
// state, kept in the state cookie and in the database: to its OAuth 2.0
// authorize endpoint, or for a CAS tenant to its CAS login with a
// service URL that carries the state and the tenant.
func (p *Provider) startRound(w http.ResponseWriter, r *http.Request, oa *oneaccess.Client, round loginRound, ar *authRequest) {
	ctx := r.Context()
	state, err := randomID()
	target := ""
	if err == nil {
		if p.usesCAS(round.TenantID) {
			round.Protocol = protocolCAS
			round.Service = p.casService(state, round.TenantID)
			target = oa.CASLoginURL(round.Service)
		} else {
			target = oa.AuthCodeURL(state, p.issuer+CallbackPath)
		}
		err = p.put(ctx, kindLogin, state, "", round, p.now().Add(loginLifetime))
	}
	if err != nil {
		p.log.ErrorContext(ctx, "sso: start sign-in", "tenant", round.TenantID, "err", err)
		p.fail(w, r, ar, errInternal)
		return
	}
	p.setCookie(w, StateCookie, state, loginLifetime)
	http.Redirect(w, r, target, http.StatusFound)
}

// callback is the redirect URI registered at every tenant's OneAccess:
// the answer to a round of ours (state), or an entry from KooGallery's
// unified login page or the enterprise workbench (code and tenant, no
// state).
func (p *Provider) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, state, ok := p.answer(w, r, "code")
	if !ok {
		return
	}
	var round loginRound
	if _, err := p.get(ctx, kindLogin, state, &round); err != nil {
		p.clearCookie(w, StateCookie)
		p.gone(w, r, err)
		return
	}
	// A CAS round answered here was not answered by its identity center.
	refused := round.Protocol != protocolOAuth || q.Get("error") != "" || q.Get("code") == ""
	p.finish(w, r, state, round, refused, func(ctx context.Context, oa *oneaccess.Client, tn store.Tenant, app store.TenantApp) (session, *failure) {
		return p.signIn(ctx, oa, tn, app, q.Get("code"))
	})
}

// finish spends the round answered with state (single use: a replay finds
// it gone), then, unless the answer refused the sign-in, signs the user in
// with signIn at the round's tenant application and sends the browser on:
// back to the app's authorization request, or, for an entry, to its
// initiate_login_uri. The OAuth and CAS callbacks share it.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, state string, round loginRound, refused bool,
	signIn func(ctx context.Context, oa *oneaccess.Client, tn store.Tenant, app store.TenantApp) (session, *failure)) {
	ctx := r.Context()
	p.clearCookie(w, StateCookie)
	if ok, err := p.st.DeleteSSORecord(ctx, kindLogin, state); err != nil || !ok {
		p.page(w, http.StatusBadRequest, "Sign-in expired", "This sign-in was answered already. Start again from the app.")
		return
	}
	var ar *authRequest
	if round.AuthRequest != "" {
		var err error
		if ar, err = p.authRequest(ctx, round.AuthRequest); err != nil {
			p.gone(w, r, err)
			return
		}
	}
	client := p.clients[round.ClientID]
	if client == nil {
		p.page(w, http.StatusBadRequest, "Bad request", "The app of this sign-in is no longer registered.")
		return
	}
	if refused {
		p.fail(w, r, ar, errRefused)
		return
	}
	tn, app, oa, f := p.resolve(ctx, round.TenantID, client)
	if f != nil {
		p.fail(w, r, ar, f)
		return
	}
	if app.AppID != round.AppID {
		p.fail(w, r, ar, errNoApp)
		return
	}
	sess, f := signIn(ctx, oa, tn, app)
	if f != nil {
		p.fail(w, r, ar, f)
		return
	}
	p.setCookie(w, SessionCookie, sess.ID, p.cfg.SessionLifetime)
	if ar == nil {
		p.initiate(w, r, client, tn.ID)
		return
	}
	p.complete(w, r, ar, sess)
}

// answer reads the identity center's answer to a round (credential is
// "code" or "ticket"): every parameter once, and a state that is the
// browser's own. An answer without a state but with a credential and a
// tenant is an entry from KooGallery's unified login page or workbench:
// its credential is not used, a fresh round runs instead. ok is false
// when the answer was handled here (a page, or the entry).
func (p *Provider) answer(w http.ResponseWriter, r *http.Request, credential string) (q url.Values, state string, ok bool) {
	q = r.URL.Query()
	for k, v := range q {
		if len(v) > 1 {
			p.page(w, http.StatusBadRequest, "Bad request", "The parameter "+template.HTMLEscapeString(k)+" is given more than once.")
			return nil, "", false
		}
	}
	state = q.Get("state")
	if state == "" {
		if q.Get(credential) != "" && q.Get("tenant") != "" {
			p.entry(w, r, q.Get("tenant"), "")
			return nil, "", false
		}
		p.page(w, http.StatusBadRequest, "Bad request", "The answer of the identity center carries no state.")
		return nil, "", false
	}
	c, err := r.Cookie(StateCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		p.page(w, http.StatusBadRequest, "State mismatch",
			"This sign-in was not started in this browser, or another sign-in started since. Start again from the app.")
		return nil, "", false
	}
	return q, state, true
}

// signIn exchanges the code, reads the user and admits them, and stores
// the browser's new session.
func (p *Provider) signIn(ctx context.Context, oa *oneaccess.Client, tn store.Tenant, app store.TenantApp, code string) (session, *failure) {
	tok, err := oa.Exchange(ctx, code, p.issuer+CallbackPath)
	if err != nil {
		var oe *oneaccess.Error
		if errors.As(err, &oe) {
			p.log.InfoContext(ctx, "sso: code refused", "tenant", tn.ID, "code", oe.Code, "status", oe.Status)
			return session{}, grantFailure(safeCode(oe.Code))
		}
		p.log.WarnContext(ctx, "sso: token endpoint", "tenant", tn.ID, "err", err)
		return session{}, errUnavailable
	}
	user, err := oa.UserInfo(ctx, tok.AccessToken)
	if err != nil {
		p.log.WarnContext(ctx, "sso: user info", "tenant", tn.ID, "err", err)
		var oe *oneaccess.Error
		if errors.As(err, &oe) {
			return session{}, errRefused
		}
		return session{}, errUnavailable
	}
	return p.openSession(ctx, tn, app, user, &tok)
}

// openSession admits the user the identity center signed in (of this
// tenant, authorised by authSync for the application, not revoked,
// enabled) and stores the browser's new session, with the OneAccess
// tokens of tok sealed; tok is nil for a CAS sign-in, which has none.
func (p *Provider) openSession(ctx context.Context, tn store.Tenant, app store.TenantApp, user oneaccess.User, tok *oneaccess.Token) (session, *failure) {
	protocol := protocolOAuth
	if tok == nil {
		protocol = protocolCAS
	}
	if user.Tenant != "" && user.Tenant != tn.ID {
		p.log.InfoContext(ctx, "sso: user of another tenant refused", "tenant", tn.ID, "protocol", protocolName(protocol))
		return session{}, errOtherTenant
	}
	if _, _, f := p.admitted(ctx, tn.ID, app.AppID, user.UserName); f != nil {
		p.log.InfoContext(ctx, "sso: user refused", "tenant", tn.ID, "app", app.AppID, "protocol", protocolName(protocol), "reason", f.desc)
		return session{}, f
	}
	id, err := randomID()
	if err != nil {
		return session{}, errInternal
	}
	sess := session{ID: id, TenantID: tn.ID, AppID: app.AppID, UserName: user.UserName, Protocol: protocol,
		Subject: subject(user.UserName, tn), AuthTime: p.now().UTC().Truncate(time.Second)}
	if tok != nil {
		sess.Expiry = tok.Expiry
		if sess.AccessSealed, err = p.sealer.Seal(tok.AccessToken); err == nil && tok.RefreshToken != "" {
			sess.RefreshSealed, err = p.sealer.Seal(tok.RefreshToken)
		}
	}
	if err == nil {
		err = p.put(ctx, kindSession, id, "", sess, p.now().Add(p.cfg.SessionLifetime))
	}
	if err != nil {
		p.log.ErrorContext(ctx, "sso: store session", "tenant", tn.ID, "err", err)
		return session{}, errInternal
	}
	p.log.InfoContext(ctx, "sso: signed in", "tenant", tn.ID, "app", app.AppID, "protocol", protocolName(protocol))
	return sess, nil
}

// subject is the ID token's sub: userName@tenantCode (the tenantId when
// the tenant has no code).
func subject(userName string, tn store.Tenant) string {
	code := tn.Code
	if code == "" {
		code = tn.ID
	}
	return userName + "@" + code
}

// safeCode keeps an OAuth error code as RFC 6749 allows its characters.
func safeCode(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' || (r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return r
		}
		return -1
	}, s)
	if len(s) > 40 {
		s = s[:40]
	}
	if s == "" {
		return "error"
	}
	return s
}

// complete marks the authorization request done by the session and hands
// the browser back to the library, which issues the code.
func (p *Provider) complete(w http.ResponseWriter, r *http.Request, ar *authRequest, sess session) {
	ar.Subject, ar.Session, ar.Finished, ar.AuthTime = sess.Subject, sess.ID, true, sess.AuthTime
	if err := p.update(r.Context(), kindAuthRequest, ar.ID, "", ar.version, ar, p.now().Add(authRequestLifetime)); err != nil {
		p.log.ErrorContext(r.Context(), "sso: complete authorization request", "err", err)
		p.fail(w, r, ar, errInternal)
		return
	}
	http.Redirect(w, r, p.base+"/authorize/callback?id="+url.QueryEscape(ar.ID), http.StatusFound)
}

// fail ends a sign-in: the OIDC error to the app's registered redirect
// URI when there is an authorization request, a page otherwise.
func (p *Provider) fail(w http.ResponseWriter, r *http.Request, ar *authRequest, f *failure) {
	if ar == nil || p.clients[ar.ClientID] == nil || !p.clients[ar.ClientID].knownRedirect(ar.RedirectURI) {
		p.page(w, f.status, f.title, f.desc)
		return
	}
	if _, err := p.st.DeleteSSORecord(r.Context(), kindAuthRequest, ar.ID); err != nil {
		p.log.WarnContext(r.Context(), "sso: delete failed authorization request", "err", err)
	}
	u, err := url.Parse(ar.RedirectURI)
	if err != nil {
		p.page(w, f.status, f.title, f.desc)
		return
	}
	v := u.Query()
	v.Set("error", f.code)
	v.Set("error_description", f.desc)
	if ar.State != "" {
		v.Set("state", ar.State)
	}
	v.Set("iss", p.issuer)
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// gone answers a request whose record is missing or expired.
func (p *Provider) gone(w http.ResponseWriter, r *http.Request, err error) {
	if notFound(err) {
		p.page(w, http.StatusBadRequest, "Sign-in expired", "This sign-in has expired or is unknown. Start again from the app.")
		return
	}
	p.log.ErrorContext(r.Context(), "sso: read sign-in", "err", err)
	p.page(w, errInternal.status, errInternal.title, errInternal.desc)
}

// resolve finds the tenant, the application the client signs in through,
// and builds the client of the tenant's identity center.
func (p *Provider) resolve(ctx context.Context, tenantID string, c *Client) (store.Tenant, store.TenantApp, *oneaccess.Client, *failure) {
	if tenantID == "" || len(tenantID) > maxTenantLen || strings.IndexFunc(tenantID, unicode.IsControl) >= 0 {
		return store.Tenant{}, store.TenantApp{}, nil, errUnknownTenant
	}
	tn, err := p.st.Tenant(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && tn.Status != store.TenantActive) {
		return store.Tenant{}, store.TenantApp{}, nil, errUnknownTenant
	}
	if err != nil {
		p.log.ErrorContext(ctx, "sso: read tenant", "tenant", tenantID, "err", err)
		return store.Tenant{}, store.TenantApp{}, nil, errInternal
	}
	app, f := p.app(ctx, tn.ID, c)
	if f != nil {
		return store.Tenant{}, store.TenantApp{}, nil, f
	}
	secret, err := p.sealer.Open(app.ClientSecretSealed)
	if err != nil || secret == "" {
		p.log.ErrorContext(ctx, "sso: unseal client secret", "tenant", tn.ID, "app", app.AppID, "err", err)
		return store.Tenant{}, store.TenantApp{}, nil, errSecret
	}
	oa, err := oneaccess.New(oneaccess.Config{
		DomainName: tn.DomainName, ClientID: app.ClientID, ClientSecret: secret, HTTPClient: p.cfg.HTTPClient, Now: p.now,
	})
	if err != nil {
		p.log.WarnContext(ctx, "sso: identity center", "tenant", tn.ID, "err", err)
		return store.Tenant{}, store.TenantApp{}, nil, errIdentityCenter
	}
	return tn, app, oa, nil
}

// app picks the tenant's application of client c: its AppID, or the
// tenant's only application.
func (p *Provider) app(ctx context.Context, tenantID string, c *Client) (store.TenantApp, *failure) {
	apps, err := p.st.TenantApps(ctx, tenantID)
	if err != nil {
		p.log.ErrorContext(ctx, "sso: read tenant apps", "tenant", tenantID, "err", err)
		return store.TenantApp{}, errInternal
	}
	if c.AppID != "" {
		for _, a := range apps {
			if a.AppID == c.AppID {
				return a, nil
			}
		}
		return store.TenantApp{}, errNoApp
	}
	switch len(apps) {
	case 0:
		return store.TenantApp{}, errNoApp
	case 1:
		return apps[0], nil
	}
	return store.TenantApp{}, errManyApps
}

// admitted checks the Kit data: the user is authorised for the tenant's
// application by authSync, not revoked, and enabled.
func (p *Provider) admitted(ctx context.Context, tenantID, appID, userName string) (store.Tenant, store.TenantUser, *failure) {
	tn, err := p.st.Tenant(ctx, tenantID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && tn.Status != store.TenantActive) {
		return store.Tenant{}, store.TenantUser{}, errUnknownTenant
	}
	if err != nil {
		return store.Tenant{}, store.TenantUser{}, errInternal
	}
	users, err := p.st.TenantUsers(ctx, tenantID)
	if err != nil {
		return store.Tenant{}, store.TenantUser{}, errInternal
	}
	for _, u := range users {
		if u.AppID == appID && u.UserName == userName && userName != "" {
			if u.Revoked || !u.Enable {
				return store.Tenant{}, store.TenantUser{}, errNotAuthorised
			}
			return tn, u, nil
		}
	}
	return store.Tenant{}, store.TenantUser{}, errNotAuthorised
}

// browserSession returns the browser's valid session, if it has one.
func (p *Provider) browserSession(r *http.Request) (session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	var sess session
	v, err := p.get(r.Context(), kindSession, c.Value, &sess)
	if err != nil {
		return session{}, false
	}
	sess.version = v
	return sess, true
}

// userinfo fills the claims of the user of a session, refusing a user
// the Kit data no longer admits.
func (p *Provider) userinfo(ctx context.Context, ui *oidc.UserInfo, sessID string) error {
	var sess session
	if _, err := p.get(ctx, kindSession, sessID, &sess); err != nil {
		return fmt.Errorf("sso: session ended: %w", err)
	}
	tn, u, f := p.admitted(ctx, sess.TenantID, sess.AppID, sess.UserName)
	if f != nil {
		return f
	}
	ui.Subject = subject(u.UserName, tn)
	ui.Name = u.Name
	ui.AppendClaims(ClaimTenant, tn.ID)
	ui.AppendClaims(ClaimRole, u.Role)
	ui.AppendClaims(ClaimOrg, u.OrgCode)
	if u.EmailSealed != "" {
		email, err := p.sealer.Open(u.EmailSealed)
		if err != nil {
			return fmt.Errorf("sso: unseal e-mail: %w", err)
		}
		ui.Email = email
	}
	if u.MobileSealed != "" {
		mobile, err := p.sealer.Open(u.MobileSealed)
		if err != nil {
			return fmt.Errorf("sso: unseal mobile: %w", err)
		}
		ui.PhoneNumber = mobile
	}
	return nil
}

// renew checks a session before its refresh token is honoured: still
// signed in, the user still admitted, and the OneAccess tokens renewed
// when they expire within RefreshMargin (a refusal there ends the
// session; an identity center that is down does not). A CAS session has
// no OneAccess tokens: only the Kit data is checked.
//
// One refresh at a time renews a session's OneAccess tokens: it claims the
// session (RenewingUntil, an optimistic update) before it calls OneAccess,
// and concurrent refreshes (another tab, another replica) wait for it and
// then find the session renewed. Without the claim, two refreshes would
// spend the same OneAccess refresh token, and where OneAccess rotates them
// the loser's refusal would end the session the winner had just renewed.
func (p *Provider) renew(ctx context.Context, sessID string) error {
	deadline := p.now().Add(renewWait)
	for {
		var sess session
		v, err := p.get(ctx, kindSession, sessID, &sess)
		if err != nil {
			return fmt.Errorf("sso: session ended: %w", err)
		}
		sess.version = v
		if _, _, f := p.admitted(ctx, sess.TenantID, sess.AppID, sess.UserName); f != nil {
			return f
		}
		// A CAS session has no OneAccess token to renew: the Kit data
		// is all there is to check.
		if sess.Protocol == protocolCAS || sess.Expiry.IsZero() || sess.Expiry.Sub(p.now()) > RefreshMargin {
			return nil
		}
		if sess.RenewingUntil.After(p.now()) {
			// Another refresh renews it: wait, then look again.
			if !p.now().Before(deadline) {
				return errors.New("sso: the session is being renewed by another refresh for too long")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(renewPoll):
			}
			continue
		}
		sess.RenewingUntil = p.now().Add(renewClaim)
		err = p.update(ctx, kindSession, sess.ID, "", sess.version, sess, p.now().Add(p.cfg.SessionLifetime))
		if errors.Is(err, store.ErrConflict) {
			continue // another refresh claimed it first: look again
		}
		if err != nil {
			return err
		}
		sess.version++
		return p.renewClaimed(ctx, sess)
	}
}

// Timings of renew.
const (
	renewClaim = 30 * time.Second      // how long a claim holds (the token call's timeout is 10 s)
	renewWait  = 15 * time.Second      // how long a refresh waits for another's renewal
	renewPoll  = 50 * time.Millisecond // how often it looks
)

// renewClaimed renews the OneAccess tokens of a session this refresh has
// claimed, and lets the claim go.
func (p *Provider) renewClaimed(ctx context.Context, sess session) error {
	release := func() error {
		sess.RenewingUntil = time.Time{}
		return p.update(ctx, kindSession, sess.ID, "", sess.version, sess, p.now().Add(p.cfg.SessionLifetime))
	}
	if sess.RefreshSealed == "" {
		_, _ = p.st.DeleteSSORecord(ctx, kindSession, sess.ID)
		return errors.New("sso: the identity center's token expired and gave no refresh token")
	}
	client := p.clientOfApp(sess.AppID)
	_, app, oa, f := p.resolve(ctx, sess.TenantID, client)
	if f != nil {
		_ = release()
		return f
	}
	if app.AppID != sess.AppID {
		_ = release()
		return errNoApp
	}
	rt, err := p.sealer.Open(sess.RefreshSealed)
	if err != nil {
		_ = release()
		return fmt.Errorf("sso: unseal refresh token: %w", err)
	}
	tok, err := oa.Refresh(ctx, rt)
	if err != nil {
		var oe *oneaccess.Error
		if errors.As(err, &oe) && !unavailable(oe) {
			_, _ = p.st.DeleteSSORecord(ctx, kindSession, sess.ID)
			return fmt.Errorf("sso: the identity center refused the refresh (%s)", safeCode(oe.Code))
		}
		// The identity center is down or failing: the user stays signed
		// in on the Kit data alone (checked by renew) and its tokens are
		// renewed at a later refresh. Signing every user out during an
		// outage of their enterprise's identity center would be worse.
		p.log.WarnContext(ctx, "sso: identity center unavailable at refresh; session kept on the Kit data",
			"tenant", sess.TenantID, "err", err)
		return release()
	}
	if sess.AccessSealed, err = p.sealer.Seal(tok.AccessToken); err != nil {
		_ = release()
		return err
	}
	if tok.RefreshToken != "" {
		if sess.RefreshSealed, err = p.sealer.Seal(tok.RefreshToken); err != nil {
			_ = release()
			return err
		}
	}
	sess.Expiry = tok.Expiry
	return release()
}

// unavailable reports whether an identity center's error says it is
// failing (5xx, server_error, temporarily_unavailable) rather than
// refusing the grant.
func unavailable(e *oneaccess.Error) bool {
	return e.Status >= 500 || e.Code == "server_error" || e.Code == "temporarily_unavailable"
}

// clientOfApp is a client that signs in through appID (for resolving a
// session's tenant application again).
func (p *Provider) clientOfApp(appID string) *Client {
	for _, c := range p.order {
		if c.AppID == appID {
			return c
		}
	}
	return &Client{AppID: appID}
}

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest:
// end_session ends koobridge's session (the browser's cookie) and sends
// the browser through the tenant's OneAccess logout, which returns it to
// the app's post_logout_redirect_uri.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	id, _ := ctx.Value(ctxSession).(string)
	return s.endBrowserSession(ctx, id, req.ClientID, req.IDTokenHintClaims, req.RedirectURI)
}

// endBrowserSession deletes session id (when given) and returns where to
// send the browser: through the tenant's OneAccess logout to redirect, or
// to redirect itself when no tenant is known. hint, when the library
// verified one, names the tenant of a browser without a session.
func (s *storage) endBrowserSession(ctx context.Context, id, clientID string, hint *oidc.IDTokenClaims, redirect string) (string, error) {
	p := (*Provider)(s)
	tenantID, appID := "", ""
	if id != "" {
		var sess session
		if _, err := p.get(ctx, kindSession, id, &sess); err == nil {
			tenantID, appID = sess.TenantID, sess.AppID
		}
		if _, err := p.st.DeleteSSORecord(ctx, kindSession, id); err != nil {
			return "", fmt.Errorf("sso: end session: %w", err)
		}
	}
	if tenantID == "" && hint != nil {
		tenantID, _ = hint.Claims[ClaimTenant].(string)
	}
	if tenantID == "" {
		return redirect, nil
	}
	client := p.clients[clientID]
	if appID != "" {
		client = p.clientOfApp(appID)
	}
	if client == nil {
		client = p.order[0]
	}
	_, _, oa, f := p.resolve(ctx, tenantID, client)
	if f != nil {
		p.log.InfoContext(ctx, "sso: logout without the identity center", "tenant", tenantID, "reason", f.desc)
		return redirect, nil
	}
	p.log.InfoContext(ctx, "sso: signed out", "tenant", tenantID)
	return oa.LogoutURL(redirect), nil
}

// loggedOut is where end_session lands without a post_logout_redirect_uri.
func (p *Provider) loggedOut(w http.ResponseWriter, _ *http.Request) {
	p.page(w, http.StatusOK, "Signed out", "You are signed out.")
}

// tenantLogin is the per-tenant login link /sso/{tenantId}/login: a round
// at the tenant's OneAccess for the client of the client_id parameter (or
// the only client), then into the app through its initiate_login_uri.
func (p *Provider) tenantLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if len(q["client_id"]) > 1 {
		p.page(w, http.StatusBadRequest, "Bad request", "The parameter client_id is given more than once.")
		return
	}
	p.entry(w, r, r.PathValue("tenantId"), q.Get("client_id"))
}

// entry starts a round at the tenant's OneAccess that ends in the app's
// initiate_login_uri: the entry from KooGallery's unified login page and
// the enterprise workbench (whose code is not trusted: the round is
// fresh, and the user's OneAccess session makes it invisible), and the
// per-tenant login link.
func (p *Provider) entry(w http.ResponseWriter, r *http.Request, tenantID, clientID string) {
	ctx := r.Context()
	var client *Client
	switch {
	case clientID != "":
		client = p.clients[clientID]
	case len(p.order) == 1:
		client = p.order[0]
	default:
		client = p.entryClient(ctx, tenantID)
	}
	if client == nil {
		p.page(w, http.StatusBadRequest, "Unknown app", "No app is registered for this sign-in; name it with client_id.")
		return
	}
	if client.InitiateLoginURI == "" {
		p.page(w, http.StatusConflict, "No entry", "The app has no initiate_login_uri registered, so it cannot be entered from here.")
		return
	}
	tn, app, oa, f := p.resolve(ctx, tenantID, client)
	if f != nil {
		p.page(w, f.status, f.title, f.desc)
		return
	}
	p.startRound(w, r, oa, loginRound{TenantID: tn.ID, AppID: app.AppID, ClientID: client.ID}, nil)
}

// entryClient is the only registered client mapped to one of the
// tenant's applications, if there is exactly one.
func (p *Provider) entryClient(ctx context.Context, tenantID string) *Client {
	apps, err := p.st.TenantApps(ctx, tenantID)
	if err != nil {
		return nil
	}
	var found *Client
	for _, c := range p.order {
		for _, a := range apps {
			if c.AppID == a.AppID {
				if found != nil {
					return nil
				}
				found = c
			}
		}
	}
	return found
}

// initiate sends the browser into the app's third-party initiated login
// (OpenID Connect Core §4) for the tenant.
func (p *Provider) initiate(w http.ResponseWriter, r *http.Request, c *Client, tenantID string) {
	u, err := url.Parse(c.InitiateLoginURI)
	if err != nil || c.InitiateLoginURI == "" {
		p.page(w, http.StatusConflict, "No entry", "The app has no initiate_login_uri registered.")
		return
	}
	v := u.Query()
	v.Set("iss", p.issuer)
	v.Set("target_link_uri", targetLink(u))
	v.Set("tenant", tenantID)
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// targetLink is the target_link_uri of a third-party initiated login: the
// app's root, taken as the initiate_login_uri's directory, so an app
// mounted under a path prefix gets a target inside itself.
func targetLink(initiate *url.URL) string {
	dir := initiate.Path[:strings.LastIndex(initiate.Path, "/")+1]
	if dir == "" {
		dir = "/"
	}
	return initiate.Scheme + "://" + initiate.Host + dir
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · koobridge sign-in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// page writes a small HTML page; title and message never hold a secret.
func (p *Provider) page(w http.ResponseWriter, status int, title, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, struct{ Title, Message string }{title, message})
}
