// Package oneaccess is koobridge's client of a tenant's identity center
// (OneAccess, saas-v1-joint-login.md Part C): the OAuth 2.0
// authorization-code flow on the tenant's domainName, the refresh of its
// tokens, the user info, CAS 3.0 ticket validation and the logout URL.
// One Client serves one tenant's application (its domainName from
// tenantSync, its clientId and decrypted clientSecret from
// applicationSync). The client secret and the tokens never leave the
// server: nothing here builds a URL that carries them, and no error this
// package returns contains them, the authorization code or the CAS ticket.
//
// Errors come in two kinds. An answer of the identity center that refuses
// the request in its documented shape (an OAuth error body, a 401 at the
// user info, a CAS authenticationFailure) is an *Error. Everything else —
// the server unreachable, a timeout, an unexpected status, a body that is
// not what Part C documents — is a plain error naming the endpoint.
package oneaccess

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The OneAccess paths of Part C, relative to the tenant's domainName.
const (
	AuthorizePath   = "/api/v1/oauth2/authorize"
	TokenPath       = "/api/v1/oauth2/token"
	UserInfoPath    = "/api/v1/oauth2/userinfo"
	LogoutPath      = "/api/v1/logout"
	CASLoginPath    = "/api/v1/cas/login"
	CASValidatePath = "/api/v1/cas/p3/serviceValidate"
)

// DefaultScope is the scope asked at the authorize endpoint (Part C.3).
const DefaultScope = "get_user_info"

// DefaultTimeout is the whole-request timeout of the default HTTP client.
const DefaultTimeout = 10 * time.Second

// maxResponseBytes bounds an answer; a longer one is an error.
const maxResponseBytes = 1 << 20

// Config is one tenant application's identity center.
type Config struct {
	// DomainName is the tenant's identity center, with https:// (from
	// tenantSync); the endpoints below are relative to it unless set.
	// It must be an absolute https URL without query or fragment (a path
	// prefix is kept); http is accepted only for a loopback host
	// (localhost, *.localhost, 127.0.0.0/8, ::1) so tests can run.
	DomainName string
	// ClientID is the application's OAuth client at the identity center
	// (applicationSync clientId).
	ClientID string
	// ClientSecret is the decrypted applicationSync clientSecret; it is
	// sent only in the token request's body or Authorization header and
	// never logged or returned in an error.
	ClientSecret string
	// AuthStyleBasic sends client_id and client_secret to the token
	// endpoint with HTTP Basic authentication (RFC 6749 §2.3.1: each
	// form-urlencoded, then base64) instead of in the form, which is what
	// OneAccess documents. Other identity servers need it.
	AuthStyleBasic bool
	// Scope is the scope asked at the authorize endpoint; empty means
	// DefaultScope. An OpenID Connect server needs "openid" in it.
	Scope string
	// Endpoint overrides, for identity servers laid out differently
	// (the interoperability tests point them at LemonLDAP::NG). Empty
	// means DomainName + the OneAccess path:
	//   AuthorizeURL   /api/v1/oauth2/authorize
	//   TokenURL       /api/v1/oauth2/token
	//   UserInfoURL    /api/v1/oauth2/userinfo
	//   LogoutURL      /api/v1/logout
	//   CASLoginURL    /api/v1/cas/login
	//   CASValidateURL /api/v1/cas/p3/serviceValidate
	// An override obeys DomainName's scheme rule; it may carry a query,
	// to which the client adds its parameters, but no fragment.
	AuthorizeURL, TokenURL, UserInfoURL, LogoutURL, CASLoginURL, CASValidateURL string
	// HTTPClient sends the requests; nil means one with a DefaultTimeout
	// timeout that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock (token expiry); nil means time.Now.
	Now func() time.Time
}

// Token is what the token endpoint answered. Expiry is computed from
// expires_in when the answer arrived; it is zero when the answer gave no
// lifetime.
type Token struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string
	Expiry       time.Time
}

// User is the user info of a signed-in user (Part C.3 step 4; CAS
// attributes map to the same fields). Only UserName is guaranteed to be
// set; the rest is what the identity center said and must not be trusted
// over the Kit data.
type User struct {
	ID               string // id
	UserName         string // userName: the Kit's authSync userName
	Name             string
	Email            string
	Mobile           string
	Role             string // "user" or "admin"
	OrganizationCode string // the Kit's orgCode
	Tenant           string // the tenantId
}

// Error is an error the identity center answered: the OAuth error code
// (invalid_grant, unauthorized, …) or the CAS failure code
// (INVALID_TICKET, …), its description, and the HTTP status. Code and
// Description come from the identity center, cleaned of control
// characters, shortened, and with the credentials of the request
// removed.
type Error struct {
	Status      int
	Code        string
	Description string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Description == "" {
		return "oneaccess: " + e.Code
	}
	return "oneaccess: " + e.Code + ": " + e.Description
}

// Client is the client of one tenant application's identity center,
// built by New. It is safe for concurrent use.
type Client struct {
	cfg Config
	// the resolved endpoints
	authorize, token, userInfo, logout, casLogin, casValidate *url.URL
}

// New checks cfg, fills in its defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("oneaccess: ClientID is required")
	}
	if cfg.ClientSecret == "" {
		return nil, errors.New("oneaccess: ClientSecret is required")
	}
	base, err := parseEndpoint(cfg.DomainName, false)
	if err != nil {
		return nil, fmt.Errorf("oneaccess: DomainName: %w", err)
	}
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawPath = ""
	c := &Client{cfg: cfg}
	for _, e := range []struct {
		name, override, path string
		dst                  **url.URL
	}{
		{"AuthorizeURL", cfg.AuthorizeURL, AuthorizePath, &c.authorize},
		{"TokenURL", cfg.TokenURL, TokenPath, &c.token},
		{"UserInfoURL", cfg.UserInfoURL, UserInfoPath, &c.userInfo},
		{"LogoutURL", cfg.LogoutURL, LogoutPath, &c.logout},
		{"CASLoginURL", cfg.CASLoginURL, CASLoginPath, &c.casLogin},
		{"CASValidateURL", cfg.CASValidateURL, CASValidatePath, &c.casValidate},
	} {
		if e.override == "" {
			u := *base
			u.Path = base.Path + e.path
			*e.dst = &u
			continue
		}
		u, err := parseEndpoint(e.override, true)
		if err != nil {
			return nil, fmt.Errorf("oneaccess: %s: %w", e.name, err)
		}
		*e.dst = u
	}
	if c.cfg.Scope == "" {
		c.cfg.Scope = DefaultScope
	}
	if c.cfg.HTTPClient == nil {
		c.cfg.HTTPClient = &http.Client{
			Timeout: DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if c.cfg.Now == nil {
		c.cfg.Now = time.Now
	}
	return c, nil
}

// parseEndpoint parses an identity-center URL: absolute, https (http only
// on a loopback host), a host, no user info, no fragment, a query only
// when allowQuery.
func parseEndpoint(s string, allowQuery bool) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", s)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an absolute URL with a host", s)
	}
	if u.User != nil {
		// Not echoed: user info may hold a password.
		return nil, errors.New("must not carry user info")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("%q: http is allowed only for localhost and loopback addresses; use https", s)
		}
	default:
		return nil, fmt.Errorf("%q: scheme must be https", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return nil, fmt.Errorf("%q must not have a fragment", s)
	}
	if !allowQuery && (u.RawQuery != "" || u.ForceQuery) {
		return nil, fmt.Errorf("%q must not have a query", s)
	}
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return nil, fmt.Errorf("%q: bad query", s)
	}
	return u, nil
}

// loopback reports whether host names this machine: localhost, a name
// under .localhost (RFC 6761), or a loopback IP address.
func loopback(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// withQuery returns u with the parameters added to its query (those of
// an override's own query kept, ours replacing any of the same name).
func withQuery(u *url.URL, params url.Values) string {
	v := u.Query()
	for k, vs := range params {
		v[k] = vs
	}
	out := *u
	out.RawQuery = v.Encode()
	out.ForceQuery = false
	return out.String()
}

// AuthCodeURL is where to send the browser to sign in (Part C.3 step 1):
// the authorize endpoint with client_id, redirect_uri, response_type=code,
// scope (Config.Scope, default get_user_info) and state (left out when
// empty).
func (c *Client) AuthCodeURL(state, redirectURI string) string {
	v := url.Values{
		"client_id":     {c.cfg.ClientID},
		"redirect_uri":  {redirectURI},
		"response_type": {"code"},
		"scope":         {c.cfg.Scope},
	}
	if state != "" {
		v.Set("state", state)
	}
	return withQuery(c.authorize, v)
}

// CASLoginURL is where to send the browser for CAS (Part C.4): the login
// endpoint with service.
func (c *Client) CASLoginURL(service string) string {
	return withQuery(c.casLogin, url.Values{"service": {service}})
}

// LogoutURL ends the identity center's session and returns the browser
// to redirectURL (Part C.5): the logout endpoint with redirect_url.
func (c *Client) LogoutURL(redirectURL string) string {
	return withQuery(c.logout, url.Values{"redirect_url": {redirectURL}})
}
