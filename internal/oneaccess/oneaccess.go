// Package oneaccess is koobridge's client of a tenant's identity center
// (OneAccess, saas-v1-joint-login.md Part C): the OAuth 2.0
// authorization-code flow on the tenant's domainName, the refresh of its
// tokens, the user info, CAS 3.0 ticket validation and the logout URL.
// One Client serves one tenant's application (its domainName from
// tenantSync, its clientId and decrypted clientSecret from
// applicationSync). The client secret and the tokens never leave the
// server: nothing here builds a URL that carries them.
package oneaccess

import (
	"net/http"
	"time"
)

// Config is one tenant application's identity center.
type Config struct {
	// DomainName is the tenant's identity center, with https:// (from
	// tenantSync); the endpoints below are relative to it unless set.
	DomainName   string
	ClientID     string
	ClientSecret string // decrypted; never logged
	// Endpoint overrides, for identity servers laid out differently
	// (the interoperability tests point them at LemonLDAP::NG). Empty
	// means DomainName + the OneAccess path:
	//   AuthorizeURL  /api/v1/oauth2/authorize
	//   TokenURL      /api/v1/oauth2/token
	//   UserInfoURL   /api/v1/oauth2/userinfo
	//   LogoutURL     /api/v1/logout
	//   CASLoginURL   /api/v1/cas/login
	//   CASValidateURL /api/v1/cas/p3/serviceValidate
	AuthorizeURL, TokenURL, UserInfoURL, LogoutURL, CASLoginURL, CASValidateURL string
	// HTTPClient sends the requests; nil means one with a 10 s timeout
	// that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock (token expiry); nil means time.Now.
	Now func() time.Time
}

// Token is what the token endpoint answered. Expiry is computed from
// expires_in when the token arrived.
type Token struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string
	Expiry       time.Time
}

// User is the user info of a signed-in user (Part C.3 step 4; CAS
// attributes map to the same fields).
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
// (INVALID_TICKET, …), its description, and the HTTP status.
type Error struct {
	Status      int
	Code        string
	Description string
}

func (e *Error) Error() string {
	return "oneaccess: " + e.Code + ": " + e.Description
}

// The package's Client (type Client struct, built by New(cfg Config)
// (*Client, error), safe for concurrent use) has these methods; they are
// the contract package sso codes against:
//
//	// AuthCodeURL is where to send the browser to sign in: the authorize
//	// endpoint with client_id, redirect_uri, response_type=code, scope
//	// (get_user_info) and state.
//	AuthCodeURL(state, redirectURI string) string
//	// Exchange trades a code for tokens at the token endpoint (form post:
//	// client_id, client_secret, code, grant_type=authorization_code,
//	// redirect_uri). A refusal is an *Error (invalid_grant, …).
//	Exchange(ctx context.Context, code, redirectURI string) (Token, error)
//	// Refresh renews the tokens (grant_type=refresh_token). A refusal is
//	// an *Error.
//	Refresh(ctx context.Context, refreshToken string) (Token, error)
//	// UserInfo reads the signed-in user with the access token (Bearer). A
//	// 401 is an *Error with Code "unauthorized".
//	UserInfo(ctx context.Context, accessToken string) (User, error)
//	// CASLoginURL is where to send the browser for CAS: the login
//	// endpoint with service.
//	CASLoginURL(service string) string
//	// ValidateTicket validates a CAS service ticket at p3/serviceValidate
//	// (asking format=JSON, reading an XML answer too), returning the user
//	// from its attributes. A failure is an *Error with the CAS code.
//	ValidateTicket(ctx context.Context, service, ticket string) (User, error)
//	// LogoutURL ends the identity center's session and returns the
//	// browser to redirectURL.
//	LogoutURL(redirectURL string) string
