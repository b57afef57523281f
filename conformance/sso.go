package conformance

import (
	"context"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/emulator"
)

// ProfileSSO is single sign-on for joint-operation products
// (saas-v1-joint-login.md Part C), checked from outside: the suite binds
// a tenant with the Kit, plays the tenant's identity center (OneAccess)
// on the Config.OpenAPI listener and signs users in to the seller's app
// with a browser of its own (a cookie jar, every redirect followed). It
// needs Config.RSAPublicKey and Config.SSO.
const ProfileSSO = "sso"

// Suite rules of the sso profile.
const (
	RuleSSOSignIn           = "sso-sign-in"           // an authorised user signs in: the login URL leads to the tenant's OneAccess and whoami shows the user after
	RuleSSOCodeExchange     = "sso-code-exchange"     // the seller's server exchanges the code at the token endpoint; the browser never does
	RuleSSOClientSecret     = "sso-client-secret"     // the token request carries the tenant's client secret, decrypted
	RuleSSOState            = "sso-state"             // a callback whose state was changed is refused and its code not exchanged
	RuleSSOUnauthorisedUser = "sso-unauthorised-user" // a directory user authSync never authorised is refused
	RuleSSORevokedUser      = "sso-revoked-user"      // a user revoked by authSync can no longer sign in
	RuleSSOLogout           = "sso-logout"            // logout reaches the identity center's logout and ends the app's session
)

// Spec sections of the sso cases.
const (
	specSSO       = "saas-v1-joint-login.md Part C"
	specSSOFlow   = "saas-v1-joint-login.md §C.3"
	specSSOAdmit  = "saas-v1-joint-login.md §C.1, §B.4"
	specSSOLogout = "saas-v1-joint-login.md §C.5"
)

// SSOConfig is the sso profile's contract with the seller: three URLs of
// the seller's app, and where the seller's server and the browser reach
// the tenants' identity center the suite plays.
type SSOConfig struct {
	// LoginURL starts a sign-in for a tenant: every "{tenantId}" in it is
	// replaced by the tenantId of tenantSync. The browser GETs it and must
	// end on the tenant's OneAccess login form. Required.
	LoginURL string
	// WhoamiURL is a page of the seller's app that answers 200 with the
	// signed-in user's userName in its body when the browser is signed in,
	// and anything else otherwise (the userName must stand apart: not
	// directly preceded or followed by a letter, digit, "_" or "-").
	// Required.
	WhoamiURL string
	// LogoutURL is the app's logout. The browser POSTs an empty form to it
	// (a sign-out button), or GETs it when the POST answers 405, and
	// follows every redirect. Required.
	LogoutURL string
	// PublicURL is the suite's base URL as the seller's server and the
	// browser reach the Config.OpenAPI listener, where the tenants'
	// OneAccess is served under /oneaccess/<tenantCode> (tenantSync's
	// domainName). Empty means http://<the listener's address>, an
	// unspecified host (0.0.0.0, ::) becoming 127.0.0.1.
	PublicURL string
}

// check validates the sso settings.
func (c SSOConfig) check() error {
	for _, f := range []struct{ name, url string }{{"LoginURL", c.LoginURL}, {"WhoamiURL", c.WhoamiURL}, {"LogoutURL", c.LogoutURL}} {
		if f.url == "" {
			return fmt.Errorf("conformance: config: the sso profile needs SSO.%s (--sso-%s-url)", f.name, strings.ToLower(strings.TrimSuffix(f.name, "URL")))
		}
		u, err := url.Parse(strings.ReplaceAll(f.url, "{tenantId}", "t"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("conformance: config: SSO.%s %q is not an http or https URL without a fragment", f.name, emulator.RedactURL(f.url))
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("conformance: config: SSO.PublicURL %q is not an http or https URL without credentials, query or fragment", c.PublicURL)
		}
	}
	return nil
}

// ssoPublicURL is the base URL of the tenants' OneAccess: SSO.PublicURL,
// or the listener's address.
func ssoPublicURL(c SSOConfig, ln net.Listener) string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		return "http://" + ln.Addr().String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// ssoTenant is the tenant the sso cases sign in to and its users.
type ssoTenant struct {
	subID, tenantID, code  string
	base                   string // the tenant's OneAccess (domainName)
	user, revoked, outside string
}

// sso runs the sso cases on a tenant bound to a purchase of the joint
// product (p when the emulator has none).
func (r *runner) sso(ctx context.Context, p emulator.Product) {
	st := r.ssoBind(ctx, p)
	cases := []struct {
		id, title, spec string
		run             func(context.Context, *caseRun, *ssoTenant)
	}{
		{"sso/sign-in", "an authorised user signs in; the seller's server exchanges the code with the decrypted client secret", specSSOFlow, r.ssoSignInCase},
		{"sso/tampered-state", "a callback whose state was changed is refused, its code not exchanged", specSSOFlow, r.ssoTamperedState},
		{"sso/unauthorised-user", "a user of the tenant's directory that authSync never authorised is refused", specSSOAdmit, r.ssoUnauthorised},
		{"sso/revoked-user", "a user who signed in, then was revoked by authSync, can no longer sign in", specSSOAdmit, r.ssoRevoked},
		{"sso/logout", "logout reaches the identity center's logout for the browser's session and ends the app's", specSSOLogout, r.ssoLogout},
	}
	for _, c := range cases {
		if ctx.Err() != nil {
			return
		}
		cr := r.begin(c.id, c.title, c.spec)
		if st == nil {
			cr.fail(RuleNotRun, "not run: sso/bind did not bind a tenant with authorised users")
		} else {
			c.run(ctx, cr, st)
		}
		r.end(cr)
	}
}

// ssoBind buys the joint product, binds its tenant and authorises its
// users (the emulator's bind and authorize-users scenarios), and adds a
// user to the tenant's directory that the seller is never told of. It
// returns nil when that failed.
func (r *runner) ssoBind(ctx context.Context, p emulator.Product) *ssoTenant {
	cr := r.begin("sso/bind", "a purchase of the joint product, its tenant bound (tenantSync, applicationSync, allOrgSync) and its users authorised (authSync)", specKit)
	defer r.end(cr)
	sub, ok := r.purchaseWith(ctx, cr, emulator.PurchaseRequest{ProductID: r.jointProduct(p).ID}, nil)
	if !ok {
		return nil
	}
	for _, sc := range []string{"bind", "authorize-users"} {
		run, err := r.e.Play(ctx, sub.ID, sc)
		if !r.addRun(cr, run, err) {
			return nil
		}
	}
	s, _ := r.e.Subscription(sub.ID)
	tn, found := r.e.Tenant(s.TenantID)
	if !found {
		cr.fail(RuleScenario, "the bind left no tenant")
		return nil
	}
	st := &ssoTenant{subID: sub.ID, tenantID: tn.TenantID, code: tn.TenantCode, base: tn.OneAccessURL}
	var users []string
	for _, u := range tn.Users {
		if u.Authorized && u.Enable {
			users = append(users, u.UserName)
		}
	}
	if len(users) < 2 {
		cr.fail(RuleScenario, "authorize-users left %d enabled authorised users, want at least 2", len(users))
		return nil
	}
	st.user, st.revoked = users[0], users[1]
	st.outside = "never-authorised-" + strings.ToLower(emulator.NewNonce()[:10])
	if err := r.e.AddDirectoryUser(tn.TenantID, emulator.DirectoryUser{UserName: st.outside, Name: "Never Authorised", OrgCode: tn.Orgs[0].OrgCode}); err != nil {
		cr.fail(RuleScenario, "add a user to the tenant's directory: %v", err)
		return nil
	}
	cr.c.Note = fmt.Sprintf("tenant %s (%s), its OneAccess at %s; users %s (signs in), %s (revoked later), %s (in the directory, never authorised)",
		st.tenantID, st.code, st.base, st.user, st.revoked, st.outside)
	return st
}

// signInResult is what one sign-in in a fresh browser came to.
type signInResult struct {
	b        *browser
	code     string // the code OneAccess sent to the seller's callback
	signedIn bool   // whoami showed the user
	whoami   int    // whoami's HTTP status
}

// ssoSignIn signs userName in with a fresh browser: the seller's login
// URL for the tenant up to the OneAccess login form, the form posted,
// the seller's callback (its state changed when tamper), every redirect
// after it, then whoami. An error means the flow did not get as far as
// the callback.
func (r *runner) ssoSignIn(ctx context.Context, cr *caseRun, st *ssoTenant, userName string, tamper bool) (signInResult, error) {
	b, err := r.newBrowser(cr)
	if err != nil {
		return signInResult{}, err
	}
	res := signInResult{b: b}
	login := strings.ReplaceAll(r.cfg.SSO.LoginURL, "{tenantId}", url.PathEscape(st.tenantID))
	pg, err := b.follow(ctx, http.MethodGet, login, nil)
	if err != nil {
		return res, err
	}
	authorize := st.base + "/api/v1/oauth2/authorize"
	if pg.status != http.StatusOK || !strings.HasPrefix(pg.url.String(), authorize) {
		return res, fmt.Errorf("the login URL did not lead to the tenant's OneAccess login form (%s…): the browser ended on %s with HTTP %d",
			authorize, emulator.RedactURL(pg.url.String()), pg.status)
	}
	action, form, ok := loginForm(pg)
	if !ok {
		return res, fmt.Errorf("the tenant's OneAccess answered %s without its login form", emulator.RedactURL(pg.url.String()))
	}
	form.Set("username", userName)
	form.Set("password", r.e.Config().UserPassword)
	answer, err := b.fetch(ctx, http.MethodPost, action, form)
	if err != nil {
		return res, err
	}
	cb, err := answer.location()
	if answer.status != http.StatusFound || err != nil {
		return res, fmt.Errorf("the tenant's OneAccess answered the login form of %s with HTTP %d, not a redirect to the seller's callback", userName, answer.status)
	}
	q := cb.Query()
	res.code = q.Get("code")
	if res.code == "" {
		return res, fmt.Errorf("the tenant's OneAccess sent the browser to %s without a code: %s", emulator.RedactURL(cb.String()), q.Get("error"))
	}
	if tamper {
		q.Set("state", "tampered-"+emulator.NewNonce()[:16])
		cb.RawQuery = q.Encode()
	}
	if _, err := b.follow(ctx, http.MethodGet, cb.String(), nil); err != nil {
		return res, err
	}
	res.signedIn, res.whoami, err = b.whoami(ctx, r.cfg.SSO.WhoamiURL, userName)
	return res, err
}

// exchanged checks the token requests OneAccess got for res's code:
// at least one, answered 200, none from the browser.
func (r *runner) exchanged(cr *caseRun, st *ssoTenant, res signInResult, userName string) {
	if res.b.visitedToken() {
		cr.fail(RuleSSOCodeExchange, "the browser was sent to the identity center's token endpoint: the code must be exchanged by the seller's server, never through the browser")
	}
	recs := r.oa.tokenRequests(st.code, res.code)
	switch {
	case len(recs) == 0:
		cr.fail(RuleSSOCodeExchange, "the tenant's OneAccess got no token request for the code it sent to the seller's callback for %s: the seller's server must exchange it at %s/api/v1/oauth2/token", userName, st.base)
	case slices.ContainsFunc(recs, func(t tokenRecord) bool { return t.status == http.StatusOK }):
	case slices.ContainsFunc(recs, func(t tokenRecord) bool { return t.oauthError == "invalid_client" }):
		cr.fail(RuleSSOClientSecret, "the token request for %s's code was refused with invalid_client (HTTP 401): it must carry the tenant's clientId and the clientSecret of applicationSync decrypted with the seller's RSA private key", userName)
	default:
		cr.fail(RuleSSOCodeExchange, "the token request for %s's code was refused: HTTP %d %s", userName, recs[0].status, recs[0].oauthError)
	}
}

func (r *runner) ssoSignInCase(ctx context.Context, cr *caseRun, st *ssoTenant) {
	res, err := r.ssoSignIn(ctx, cr, st, st.user, false)
	if err != nil {
		cr.fail(RuleSSOSignIn, "%v", err)
		return
	}
	if !res.signedIn {
		cr.fail(RuleSSOSignIn, "after %s, an authorised user, signed in at the tenant's OneAccess, whoami answered HTTP %d without the user: the seller did not sign the user in", st.user, res.whoami)
	}
	r.exchanged(cr, st, res, st.user)
}

func (r *runner) ssoTamperedState(ctx context.Context, cr *caseRun, st *ssoTenant) {
	res, err := r.ssoSignIn(ctx, cr, st, st.user, true)
	if err != nil {
		cr.fail(RuleSSOSignIn, "%v", err)
		return
	}
	if res.signedIn {
		cr.fail(RuleSSOState, "the seller signed %s in from a callback whose state the suite had changed: it must check state against the browser that started the sign-in", st.user)
	}
	if n := len(r.oa.tokenRequests(st.code, res.code)); n > 0 {
		cr.fail(RuleSSOState, "the seller exchanged the code of a callback whose state the suite had changed (%d token requests): it must refuse the callback before the exchange", n)
	}
}

func (r *runner) ssoUnauthorised(ctx context.Context, cr *caseRun, st *ssoTenant) {
	res, err := r.ssoSignIn(ctx, cr, st, st.outside, false)
	if err != nil {
		cr.fail(RuleSSOSignIn, "%v", err)
		return
	}
	if res.signedIn {
		cr.fail(RuleSSOUnauthorisedUser, "the seller signed in %s, a user of the tenant's directory that authSync never authorised: only users authSync authorised for the app may sign in", st.outside)
	}
}

func (r *runner) ssoRevoked(ctx context.Context, cr *caseRun, st *ssoTenant) {
	res, err := r.ssoSignIn(ctx, cr, st, st.revoked, false)
	if err != nil {
		cr.fail(RuleSSOSignIn, "%v", err)
		return
	}
	if !res.signedIn {
		cr.fail(RuleSSOSignIn, "before the revocation, %s, an authorised user, was not signed in (whoami HTTP %d)", st.revoked, res.whoami)
		return
	}
	run, err := r.e.PlayWith(ctx, st.subID, "revoke-user", emulator.PlayOptions{UserName: st.revoked})
	if !r.addRun(cr, run, err) {
		return
	}
	res, err = r.ssoSignIn(ctx, cr, st, st.revoked, false)
	if err != nil {
		cr.fail(RuleSSOSignIn, "after the revocation: %v", err)
		return
	}
	if res.signedIn {
		cr.fail(RuleSSORevokedUser, "the seller signed in %s after authSync revoked the user: a revoked user must be refused", st.revoked)
	}
}

func (r *runner) ssoLogout(ctx context.Context, cr *caseRun, st *ssoTenant) {
	res, err := r.ssoSignIn(ctx, cr, st, st.user, false)
	if err == nil && !res.signedIn {
		err = fmt.Errorf("%s, an authorised user, was not signed in (whoami HTTP %d)", st.user, res.whoami)
	}
	if err != nil {
		cr.fail(RuleNotRun, "not run: the sign-in before the logout failed: %v", err)
		return
	}
	session := res.b.cookie(st.base+"/api/v1/logout", oneAccessCookie)
	before := r.oa.logoutCount()
	if err := res.b.logout(ctx, r.cfg.SSO.LogoutURL); err != nil {
		cr.fail(RuleSSOLogout, "%v", err)
		return
	}
	if !r.oa.loggedOut(before, st.code, session) {
		cr.fail(RuleSSOLogout, "the logout did not reach the tenant's OneAccess: no request to %s/api/v1/logout carried the browser's session; the app's logout must end the identity center's session too", st.base)
	}
	signedIn, status, err := res.b.whoami(ctx, r.cfg.SSO.WhoamiURL, st.user)
	switch {
	case err != nil:
		cr.fail(RuleSSOLogout, "%v", err)
	case signedIn:
		cr.fail(RuleSSOLogout, "after the logout whoami still shows %s (HTTP %d): the logout did not end the app's session", st.user, status)
	}
}

// loginForm reads the OneAccess login form of pg: where it posts and its
// hidden fields.
func loginForm(pg page) (string, url.Values, bool) {
	m := formRE.FindStringSubmatch(pg.body)
	if m == nil {
		return "", nil, false
	}
	action, err := pg.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return "", nil, false
	}
	form := url.Values{}
	for _, in := range inputRE.FindAllString(pg.body, -1) {
		if !strings.Contains(in, `type="hidden"`) {
			continue
		}
		name, value := attrRE("name").FindStringSubmatch(in), attrRE("value").FindStringSubmatch(in)
		if name != nil {
			v := ""
			if value != nil {
				v = html.UnescapeString(value[1])
			}
			form.Set(html.UnescapeString(name[1]), v)
		}
	}
	return action.String(), form, true
}

var (
	formRE  = regexp.MustCompile(`<form\b[^>]*\baction="([^"]*)"`)
	inputRE = regexp.MustCompile(`<input\b[^>]*>`)
)

func attrRE(name string) *regexp.Regexp { return regexp.MustCompile(`\b` + name + `="([^"]*)"`) }

// showsUser reports whether body holds userName standing apart: not
// directly preceded or followed by a letter, digit, "_" or "-".
func showsUser(body, userName string) bool {
	word := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	for i := 0; userName != ""; {
		j := strings.Index(body[i:], userName)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(userName)
		if (start == 0 || !word(body[start-1])) && (end == len(body) || !word(body[end])) {
			return true
		}
		i = start + 1
	}
	return false
}

// browserTimeout bounds each request of the suite's browser.
const browserTimeout = 30 * time.Second

// maxHops is how many redirects the browser follows in a row.
const maxHops = 20

// maxPage is how much of a page the browser reads.
const maxPage = 1 << 20

// browser is the suite's browser: a cookie jar, redirects followed one
// by one so that each is recorded (URLs redacted, no bodies: pages may
// show a user's personal data) as an exchange of the case.
type browser struct {
	c       *http.Client
	cr      *caseRun
	visited []*url.URL
}

func (r *runner) newBrowser(cr *caseRun) (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("conformance: browser cookie jar: %w", err)
	}
	var tr http.RoundTripper
	if r.cfg.HTTPClient != nil {
		tr = r.cfg.HTTPClient.Transport
	}
	return &browser{cr: cr, c: &http.Client{
		Transport: tr, Jar: jar, Timeout: browserTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// page is one answer the browser got.
type page struct {
	url    *url.URL
	status int
	header http.Header
	body   string
}

// location is the redirect target of p, resolved against its URL.
func (p page) location() (*url.URL, error) {
	loc := p.header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("HTTP %d from %s has no Location", p.status, emulator.RedactURL(p.url.String()))
	}
	u, err := p.url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("HTTP %d from %s: unreadable Location: %w", p.status, emulator.RedactURL(p.url.String()), err)
	}
	return u, nil
}

// fetch makes one request, a form POST when form is not nil, and records
// it.
func (b *browser) fetch(ctx context.Context, method, target string, form url.Values) (page, error) {
	u, err := url.Parse(target)
	if err != nil {
		return page{}, fmt.Errorf("browser: %s %s: %w", method, emulator.RedactURL(target), err)
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return page{}, fmt.Errorf("browser: %s %s: %w", method, emulator.RedactURL(target), err)
	}
	req.Header.Set("User-Agent", "koobridge-conformance-browser")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	}
	b.visited = append(b.visited, u)
	x := Exchange{Interface: "browser", Request: emulator.HTTPRecord{Method: method, URL: emulator.RedactURL(u.String())}}
	if form != nil {
		x.Request.Body = shownForm(form)
	}
	start := time.Now()
	resp, err := b.c.Do(req)
	x.Duration = time.Since(start)
	if err != nil {
		b.cr.c.Exchanges = append(b.cr.c.Exchanges, x)
		return page{}, fmt.Errorf("browser: %s %s: %w", method, emulator.RedactURL(u.String()), unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	x.Duration = time.Since(start)
	rec := &emulator.HTTPRecord{Status: resp.StatusCode, Header: map[string]string{}}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		rec.Header["Content-Type"] = ct
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		rec.Header["Location"] = emulator.RedactURL(loc)
	}
	x.Response = rec
	b.cr.c.Exchanges = append(b.cr.c.Exchanges, x)
	if err != nil {
		return page{}, fmt.Errorf("browser: %s %s: read the answer: %w", method, emulator.RedactURL(u.String()), err)
	}
	return page{url: u, status: resp.StatusCode, header: resp.Header, body: string(raw)}, nil
}

// follow makes a request and follows its redirects, returning the last
// answer.
func (b *browser) follow(ctx context.Context, method, target string, form url.Values) (page, error) {
	p, err := b.fetch(ctx, method, target, form)
	if err != nil {
		return p, err
	}
	return b.after(ctx, p, method, form)
}

// after follows the redirects from p, the answer to a request with
// method and form: a 307 or 308 keeps the method and form, the others
// become a GET.
func (b *browser) after(ctx context.Context, p page, method string, form url.Values) (page, error) {
	for range maxHops {
		switch p.status {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			return p, nil
		}
		next, err := p.location()
		if err != nil {
			return p, err
		}
		if p.status != http.StatusTemporaryRedirect && p.status != http.StatusPermanentRedirect {
			method, form = http.MethodGet, nil
		}
		if p, err = b.fetch(ctx, method, next.String(), form); err != nil {
			return p, err
		}
	}
	return page{}, fmt.Errorf("browser: more than %d redirects in a row, the last from %s", maxHops, emulator.RedactURL(p.url.String()))
}

// whoami asks the seller's whoami URL, without following redirects,
// whether userName is signed in.
func (b *browser) whoami(ctx context.Context, whoamiURL, userName string) (bool, int, error) {
	p, err := b.fetch(ctx, http.MethodGet, whoamiURL, nil)
	if err != nil {
		return false, 0, err
	}
	return p.status == http.StatusOK && showsUser(p.body, userName), p.status, nil
}

// logout POSTs an empty form to the app's logout URL (GET when that
// answers 405) and follows the redirects.
func (b *browser) logout(ctx context.Context, logoutURL string) error {
	p, err := b.fetch(ctx, http.MethodPost, logoutURL, url.Values{})
	if err != nil {
		return err
	}
	if p.status == http.StatusMethodNotAllowed {
		_, err = b.follow(ctx, http.MethodGet, logoutURL, nil)
		return err
	}
	_, err = b.after(ctx, p, http.MethodPost, url.Values{})
	return err
}

// visitedToken reports whether the browser was sent to a token endpoint.
func (b *browser) visitedToken() bool {
	return slices.ContainsFunc(b.visited, func(u *url.URL) bool { return strings.HasSuffix(u.Path, "/api/v1/oauth2/token") })
}

// cookie is the value of the browser's cookie name for target.
func (b *browser) cookie(target, name string) string {
	u, err := url.Parse(target)
	if err != nil {
		return ""
	}
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// shownForm is a form as the report shows it: the password's value
// redacted.
func shownForm(form url.Values) string {
	shown := url.Values{}
	for k, vs := range form {
		if k == "password" {
			vs = []string{"[redacted]"}
		}
		shown[k] = vs
	}
	return shown.Encode()
}

// unwrapURLError drops *url.Error's wrapping, whose text repeats the
// whole URL (query values included).
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
