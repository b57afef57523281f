package sso

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/koobridge/koobridge/internal/store"
)

// storage is the Provider seen as the library's op.Storage.
type storage Provider

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

// maxTenantLen bounds the tenant parameter (a tenantId is S64).
const maxTenantLen = 64

// CreateAuthRequest stores an authorization request the library
// validated, with koobridge's tenant parameter.
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	p := (*Provider)(s)
	tenant, _ := ctx.Value(ctxTenant).(string)
	if len(tenant) > maxTenantLen {
		return nil, oidc.ErrInvalidRequest().WithDescription("tenant is longer than 64 characters")
	}
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	ar := &authRequest{
		ID: id, ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce,
		Scopes: req.Scopes, ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt: req.Prompt, MaxAge: req.MaxAge, Tenant: tenant,
	}
	if err := p.put(ctx, kindAuthRequest, id, "", ar, p.now().Add(authRequestLifetime)); err != nil {
		return nil, err
	}
	p.sweep(ctx)
	return ar, nil
}

// AuthRequestByID implements op.Storage.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return (*Provider)(s).authRequest(ctx, id)
}

func (p *Provider) authRequest(ctx context.Context, id string) (*authRequest, error) {
	ar := new(authRequest)
	v, err := p.get(ctx, kindAuthRequest, id, ar)
	if err != nil {
		return nil, err
	}
	ar.version = v
	return ar, nil
}

// AuthRequestByCode implements op.Storage: the code is looked up by its
// digest.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	p := (*Provider)(s)
	ar := new(authRequest)
	_, v, err := p.getByLookup(ctx, kindAuthRequest, digest(code), ar)
	if err != nil {
		return nil, err
	}
	if !ar.Finished {
		return nil, errors.New("sso: code of an unfinished request")
	}
	ar.version = v
	return ar, nil
}

// SaveAuthCode implements op.Storage.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	p := (*Provider)(s)
	ar, err := p.authRequest(ctx, id)
	if err != nil {
		return err
	}
	return p.update(ctx, kindAuthRequest, id, digest(code), ar.version, ar, p.now().Add(authRequestLifetime))
}

// DeleteAuthRequest implements op.Storage. The library calls it when a
// code is exchanged: of two exchanges of one code, only the one that
// deletes the request gets tokens.
func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	ok, err := s.st.DeleteSSORecord(ctx, kindAuthRequest, id)
	if err != nil {
		return fmt.Errorf("sso: delete authorization request: %w", err)
	}
	if !ok {
		return oidc.ErrInvalidGrant().WithDescription("code already used")
	}
	return nil
}

// sessionOf returns the session a token request was made in.
func sessionOf(req op.TokenRequest) (string, error) {
	switch r := req.(type) {
	case *authRequest:
		return r.Session, nil
	case *refreshToken:
		return r.Session, nil
	}
	return "", fmt.Errorf("sso: unsupported token request %T", req)
}

// CreateAccessToken implements op.Storage.
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	p := (*Provider)(s)
	sess, err := sessionOf(req)
	if err != nil {
		return "", time.Time{}, err
	}
	clientID := ""
	if a := req.GetAudience(); len(a) > 0 {
		clientID = a[0]
	}
	id, err := randomID()
	if err != nil {
		return "", time.Time{}, err
	}
	exp := p.now().Add(p.cfg.AccessTokenLifetime).UTC()
	if err := p.put(ctx, kindAccess, id, "", accessToken{
		ID: id, Session: sess, ClientID: clientID, Subject: req.GetSubject(), Scopes: req.GetScopes(), Expiry: exp,
	}, exp); err != nil {
		return "", time.Time{}, err
	}
	return id, exp, nil
}

// CreateAccessAndRefreshTokens implements op.Storage. A refresh rotates
// the refresh token: the old one is deleted first, so of two refreshes
// with one token only one succeeds.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	p := (*Provider)(s)
	if current != "" {
		rt, ok := req.(*refreshToken)
		if !ok {
			return "", "", time.Time{}, errors.New("sso: refresh without its token")
		}
		deleted, err := p.st.DeleteSSORecord(ctx, kindRefresh, rt.ID)
		if err != nil {
			return "", "", time.Time{}, fmt.Errorf("sso: rotate refresh token: %w", err)
		}
		if !deleted {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
		}
	}
	accessID, exp, err := s.CreateAccessToken(ctx, req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	sess, _ := sessionOf(req)
	token, err := randomID()
	if err != nil {
		return "", "", time.Time{}, err
	}
	id, err := randomID()
	if err != nil {
		return "", "", time.Time{}, err
	}
	authTime := time.Time{}
	switch r := req.(type) {
	case *authRequest:
		authTime = r.AuthTime
	case *refreshToken:
		authTime = r.AuthTime
	}
	rexp := p.now().Add(p.cfg.RefreshTokenLifetime).UTC()
	if err := p.put(ctx, kindRefresh, id, digest(token), refreshToken{
		ID: id, Session: sess, ClientID: req.GetAudience()[0], Subject: req.GetSubject(), Scopes: req.GetScopes(),
		AuthTime: authTime, Expiry: rexp,
	}, rexp); err != nil {
		return "", "", time.Time{}, err
	}
	return accessID, token, exp, nil
}

// TokenRequestByRefreshToken implements op.Storage: the refresh token's
// session must still be signed in, its user still admitted by the Kit
// data, and its OneAccess tokens are renewed when they expire soon.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	p := (*Provider)(s)
	rt := new(refreshToken)
	if _, _, err := p.getByLookup(ctx, kindRefresh, digest(token), rt); err != nil {
		return nil, err
	}
	if err := p.renew(ctx, rt.Session); err != nil {
		p.log.InfoContext(ctx, "sso: refresh refused", "client", rt.ClientID, "reason", err.Error())
		return nil, err
	}
	return rt, nil
}

// TerminateSession implements op.Storage; end_session uses
// TerminateSessionFromRequest.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// RevokeToken implements op.Storage (RFC 7009).
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	p := (*Provider)(s)
	if userID != "" {
		at := new(accessToken)
		if _, err := p.get(ctx, kindAccess, tokenOrID, at); err != nil {
			return nil // unknown or expired: nothing to revoke
		}
		if at.ClientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		if _, err := p.st.DeleteSSORecord(ctx, kindAccess, tokenOrID); err != nil {
			return oidc.ErrServerError()
		}
		return nil
	}
	rt := new(refreshToken)
	if _, _, err := p.getByLookup(ctx, kindRefresh, digest(tokenOrID), rt); err != nil {
		return nil
	}
	if rt.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	if _, err := p.st.DeleteSSORecord(ctx, kindRefresh, rt.ID); err != nil {
		return oidc.ErrServerError()
	}
	return nil
}

// GetRefreshTokenInfo implements op.Storage.
func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rt := new(refreshToken)
	if _, _, err := (*Provider)(s).getByLookup(ctx, kindRefresh, digest(token), rt); err != nil || rt.ClientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.Subject, rt.ID, nil
}

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, clientID string) (op.Client, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return nil, errors.New("sso: unknown client")
	}
	return &opClient{c: c, p: (*Provider)(s)}, nil
}

// AuthorizeClientIDSecret implements op.Storage, in constant time.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, clientID, secret string) error {
	c, ok := s.clients[clientID]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("sso: wrong client credentials")
	}
	return nil
}

// SetUserinfoFromScopes implements op.Storage (deprecated by the library:
// SetUserinfoFromRequest does the work).
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the ID
// token's claims.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	tr, ok := req.(op.TokenRequest)
	if !ok {
		return fmt.Errorf("sso: unsupported ID token request %T", req)
	}
	sess, err := sessionOf(tr)
	if err != nil {
		return err
	}
	return (*Provider)(s).userinfo(ctx, ui, sess)
}

// SetUserinfoFromToken implements op.Storage: the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	p := (*Provider)(s)
	at := new(accessToken)
	if _, err := p.get(ctx, kindAccess, tokenID, at); err != nil {
		return err
	}
	if at.Subject != subject {
		return errors.New("sso: token subject mismatch")
	}
	return p.userinfo(ctx, ui, at.Session)
}

// SetIntrospectionFromToken implements op.Storage; introspection is not
// served.
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("sso: introspection is not supported")
}

// GetPrivateClaimsFromScopes implements op.Storage: access tokens are
// opaque, so they carry no claims.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID implements op.Storage; JWT client authentication
// is not supported.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("sso: JWT client authentication is not supported")
}

// ValidateJWTProfileScopes implements op.Storage; the JWT profile grant is
// not supported.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("sso: the JWT profile grant is not supported")
}

// Health implements op.Storage.
func (s *storage) Health(ctx context.Context) error { return s.st.Ping(ctx) }

// opClient is a registered Client as the library's op.Client.
type opClient struct {
	c *Client
	p *Provider
}

func (c *opClient) GetID() string                       { return c.c.ID }
func (c *opClient) RedirectURIs() []string              { return c.c.RedirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string    { return c.c.PostLogoutRedirectURIs }
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *opClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *opClient) LoginURL(id string) string {
	return c.p.base + loginPath + "?id=" + url.QueryEscape(id)
}
func (c *opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *opClient) IDTokenLifetime() time.Duration      { return c.p.cfg.IDTokenLifetime }
func (c *opClient) DevMode() bool                       { return false }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) IsScopeAllowed(string) bool           { return false }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) ClockSkew() time.Duration             { return 0 }

// knownRedirect reports whether uri is one of the client's registered
// redirect URIs.
func (c *Client) knownRedirect(uri string) bool { return slices.Contains(c.RedirectURIs, uri) }

// notFound reports whether err means the record is gone.
func notFound(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, errExpired)
}
