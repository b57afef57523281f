package isv

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/koobridge/koobridge/internal/sso"
)

// SSOClient is one vendor app registered with koobridge's OpenID Connect
// provider (docs/sso.md).
type SSOClient struct {
	// ID and Secret are the app's client_id and client_secret.
	ID, Secret string
	// RedirectURIs are the app's redirect URIs (exact match). At least one.
	RedirectURIs []string
	// PostLogoutRedirectURIs are where end_session may return the browser.
	PostLogoutRedirectURIs []string
	// InitiateLoginURI is the app's third-party initiated login endpoint:
	// the per-tenant login link /sso/{tenantId}/login and the entry from
	// KooGallery's unified login page end there. "" disables both.
	InitiateLoginURI string
	// AppID is the Kit appId of the tenants' application this app signs in
	// through; "" means each tenant's only application.
	AppID string
}

// SSOConfig configures the OpenID Connect provider.
type SSOConfig struct {
	// PublicURL is koobridge's external base URL, e.g.
	// https://isv.example.com: the issuer. Every endpoint lies under its
	// path (discovery at PublicURL + /.well-known/openid-configuration).
	PublicURL string
	// Clients are the vendor's apps; at least one.
	Clients []SSOClient
	// HTTPClient reaches the tenants' identity centers; nil means one with a
	// 10 s timeout that follows no redirects.
	HTTPClient *http.Client
	// CASTenants are the tenants (tenantIds) that sign in over CAS 3.0
	// instead of OAuth 2.0; "*" means every tenant.
	CASTenants []string
}

// SSOHandler returns koobridge's OpenID Connect provider for the vendor's
// apps (single sign-on of joint-operation products through each tenant's
// OneAccess, docs/sso.md) and the URL paths to mount it at: each path
// ending in "/" is a subtree. Its state (signing keys, sign-ins in flight,
// sessions, tokens) lives in the server's database, so every replica
// serves every step.
func (s *Server) SSOHandler(cfg SSOConfig) (http.Handler, []string, error) {
	if len(cfg.Clients) == 0 {
		return nil, nil, errors.New("isv: SSO needs at least one client")
	}
	clients := make([]sso.Client, len(cfg.Clients))
	for i, c := range cfg.Clients {
		clients[i] = sso.Client{
			ID: c.ID, Secret: c.Secret, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			InitiateLoginURI: c.InitiateLoginURI, AppID: c.AppID,
		}
	}
	p, err := sso.New(sso.Config{
		Issuer: cfg.PublicURL, Clients: clients, Store: s.st, DataKey: s.dataKey, HTTPClient: cfg.HTTPClient,
		CASTenants: cfg.CASTenants, Logger: s.log, Now: s.now,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("isv: %w", err)
	}
	return p.Handler(), p.Paths(), nil
}
