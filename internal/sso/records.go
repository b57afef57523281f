package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/koobridge/koobridge/internal/store"
)

// Kinds of store.SSORecord.
const (
	kindAuthRequest = "authreq" // an authorization request; Lookup: its code once issued
	kindLogin       = "login"   // a round at OneAccess in flight; ID: its state
	kindSession     = "session" // a browser's sign-in; ID: its cookie
	kindAccess      = "access"  // an access token; ID: the token's id
	kindRefresh     = "refresh" // a refresh token; Lookup: the SHA-256 of the token
)

// Lifetimes of the records of a sign-in in flight.
const (
	authRequestLifetime = 10 * time.Minute
	loginLifetime       = 10 * time.Minute
)

// authRequest is an authorization request as stored; it implements
// op.AuthRequest.
type authRequest struct {
	ID                  string    `json:"id"`
	ClientID            string    `json:"clientId"`
	RedirectURI         string    `json:"redirectUri"`
	State               string    `json:"state,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	Scopes              []string  `json:"scopes"`
	ResponseType        string    `json:"responseType"`
	ResponseMode        string    `json:"responseMode,omitempty"`
	CodeChallenge       string    `json:"codeChallenge,omitempty"`
	CodeChallengeMethod string    `json:"codeChallengeMethod,omitempty"`
	Prompt              []string  `json:"prompt,omitempty"`
	MaxAge              *uint     `json:"maxAge,omitempty"`
	Tenant              string    `json:"tenant,omitempty"` // the tenant parameter
	Subject             string    `json:"subject,omitempty"`
	Session             string    `json:"session,omitempty"`
	Finished            bool      `json:"done,omitempty"`
	AuthTime            time.Time `json:"authTime"`

	version int64
}

func (a *authRequest) GetID() string          { return a.ID }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return nil }
func (a *authRequest) GetAudience() []string  { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.AuthTime }
func (a *authRequest) GetClientID() string    { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.CodeChallenge, Method: oidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.ResponseType) }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.ResponseMode) }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.Subject }
func (a *authRequest) Done() bool                         { return a.Finished }

// Protocols of a round at OneAccess and of the session it opens.
const (
	protocolOAuth = ""    // OAuth 2.0 (Part C.3)
	protocolCAS   = "cas" // CAS 3.0 (Part C.4)
)

// loginRound is a round at a tenant's OneAccess in flight, keyed by the
// state sent there (and kept in the browser's state cookie).
type loginRound struct {
	AuthRequest string `json:"authRequest,omitempty"` // "" for an entry round (no app request yet)
	TenantID    string `json:"tenantId"`
	AppID       string `json:"appId"`
	ClientID    string `json:"clientId"`
	Protocol    string `json:"protocol,omitempty"` // protocolOAuth or protocolCAS
	// Service is the CAS service URL the round sent to the CAS login (it
	// carries the state): the ticket is validated for exactly this one.
	Service string `json:"service,omitempty"`
}

// session is one browser's sign-in to one tenant's application: who, and
// the OneAccess tokens (sealed), which never leave the server. A CAS
// session has no OneAccess tokens: AccessSealed and RefreshSealed are
// empty and Expiry is zero.
type session struct {
	ID            string    `json:"id"`
	TenantID      string    `json:"tenantId"`
	AppID         string    `json:"appId"`
	UserName      string    `json:"userName"`
	Subject       string    `json:"subject"`
	Protocol      string    `json:"protocol,omitempty"` // protocolOAuth or protocolCAS
	AccessSealed  string    `json:"accessSealed"`
	RefreshSealed string    `json:"refreshSealed,omitempty"`
	Expiry        time.Time `json:"expiry"` // of the OneAccess access token; zero: unknown
	AuthTime      time.Time `json:"authTime"`
	// RenewingUntil is set while one refresh renews the OneAccess tokens:
	// concurrent refreshes of the session wait for it rather than spend
	// the same OneAccess refresh token.
	RenewingUntil time.Time `json:"renewingUntil,omitzero"`

	version int64
}

// accessToken is an access token koobridge issued (the token itself is
// the library's encryption of its ID and subject).
type accessToken struct {
	ID       string    `json:"id"`
	Session  string    `json:"session"`
	ClientID string    `json:"clientId"`
	Subject  string    `json:"subject"`
	Scopes   []string  `json:"scopes"`
	Expiry   time.Time `json:"expiry"`
}

// refreshToken is a refresh token koobridge issued; it implements
// op.RefreshTokenRequest. The token itself is not stored, only its digest.
type refreshToken struct {
	ID       string    `json:"id"`
	Session  string    `json:"session"`
	ClientID string    `json:"clientId"`
	Subject  string    `json:"subject"`
	Scopes   []string  `json:"scopes"`
	AuthTime time.Time `json:"authTime"`
	Expiry   time.Time `json:"expiry"`
}

func (t *refreshToken) GetAMR() []string                 { return nil }
func (t *refreshToken) GetAudience() []string            { return []string{t.ClientID} }
func (t *refreshToken) GetAuthTime() time.Time           { return t.AuthTime }
func (t *refreshToken) GetClientID() string              { return t.ClientID }
func (t *refreshToken) GetScopes() []string              { return t.Scopes }
func (t *refreshToken) GetSubject() string               { return t.Subject }
func (t *refreshToken) SetCurrentScopes(scopes []string) { t.Scopes = scopes }

// randomID returns 32 random bytes, base64url: ids, states, tokens.
func randomID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("sso: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// digest is what is stored of a refresh token or a code.
func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// errExpired: a record past its expiry is treated as absent.
var errExpired = errors.New("sso: expired")

// put inserts a new record of kind with v as its data.
func (p *Provider) put(ctx context.Context, kind, id, lookup string, v any, expires time.Time) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sso: encode %s: %w", kind, err)
	}
	now := p.now()
	ok, err := p.st.InsertSSORecord(ctx, store.SSORecord{
		Kind: kind, ID: id, Lookup: lookup, Data: string(data), ExpiresAt: expires, CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		return fmt.Errorf("sso: store %s: %w", kind, err)
	}
	if !ok {
		return fmt.Errorf("sso: store %s: %w", kind, store.ErrConflict)
	}
	return nil
}

// get reads the record of kind and id into v; store.ErrNotFound or
// errExpired when it is not there (any more).
func (p *Provider) get(ctx context.Context, kind, id string, v any) (int64, error) {
	r, err := p.st.SSORecord(ctx, kind, id)
	if err != nil {
		return 0, fmt.Errorf("sso: read %s: %w", kind, err)
	}
	return p.decode(r, v)
}

// getByLookup reads the record of kind with lookup into v.
func (p *Provider) getByLookup(ctx context.Context, kind, lookup string, v any) (string, int64, error) {
	r, err := p.st.SSORecordByLookup(ctx, kind, lookup)
	if err != nil {
		return "", 0, fmt.Errorf("sso: read %s: %w", kind, err)
	}
	version, err := p.decode(r, v)
	return r.ID, version, err
}

func (p *Provider) decode(r store.SSORecord, v any) (int64, error) {
	if !p.now().Before(r.ExpiresAt) {
		return 0, fmt.Errorf("sso: read %s: %w", r.Kind, errExpired)
	}
	if err := json.Unmarshal([]byte(r.Data), v); err != nil {
		return 0, fmt.Errorf("sso: decode %s: %w", r.Kind, err)
	}
	return r.Version, nil
}

// update writes v over the record of kind and id whose version is version.
func (p *Provider) update(ctx context.Context, kind, id, lookup string, version int64, v any, expires time.Time) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sso: encode %s: %w", kind, err)
	}
	if err := p.st.UpdateSSORecord(ctx, store.SSORecord{
		Kind: kind, ID: id, Lookup: lookup, Data: string(data), ExpiresAt: expires, UpdatedAt: p.now(), Version: version,
	}); err != nil {
		return fmt.Errorf("sso: update %s: %w", kind, err)
	}
	return nil
}

// sweep deletes expired records, at most every ten minutes per process.
func (p *Provider) sweep(ctx context.Context) {
	p.sweepMu.Lock()
	now := p.now()
	if now.Sub(p.sweptAt) < 10*time.Minute {
		p.sweepMu.Unlock()
		return
	}
	p.sweptAt = now
	p.sweepMu.Unlock()
	if n, err := p.st.DeleteExpiredSSORecords(ctx, now); err != nil {
		p.log.WarnContext(ctx, "sso: sweep expired records", "err", err)
	} else if n > 0 {
		p.log.DebugContext(ctx, "sso: swept expired records", "count", n)
	}
}
