package sso

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/koobridge/koobridge/internal/oneaccess"
	"github.com/koobridge/koobridge/internal/store"
)

// CAS 3.0 (Part C.4) is the alternative to OAuth 2.0 for the tenants of
// Config.CASTenants. The login step sends the browser to
// {domainName}/api/v1/cas/login with the service
// {issuer}/sso/cas?state=…&tenant=…, the state being the round's, bound
// to the browser by the state cookie as the OAuth round's is. OneAccess
// sends the browser back to the service with a ticket; casCallback checks
// the state and the tenant, validates the ticket at
// p3/serviceValidate for exactly the service the round sent, and admits
// the user by the same rules and with the same session and ID token as
// an OAuth sign-in. The session holds no OneAccess token: a refresh
// re-checks the Kit data only.

// ticketFailure is the failure of a refused CAS ticket.
func ticketFailure(code string) *failure {
	return &failure{http.StatusBadRequest, "access_denied", "Sign-in refused",
		"The identity center refused the ticket (" + code + ")."}
}

// usesCAS reports whether the tenant signs in over CAS.
func (p *Provider) usesCAS(tenantID string) bool { return p.cas["*"] || p.cas[tenantID] }

// casService is the CAS service URL of a round: the state and the tenant
// on the issuer's CASServicePath.
func (p *Provider) casService(state, tenantID string) string {
	return p.issuer + CASServicePath + "?" + url.Values{"state": {state}, "tenant": {tenantID}}.Encode()
}

// protocolName names a protocol in the log.
func protocolName(protocol string) string {
	if protocol == protocolCAS {
		return "cas"
	}
	return "oauth2"
}

// casCallback is the CAS service: OneAccess's answer to a CAS round of
// ours (state, tenant, ticket), or an entry from KooGallery's unified
// login page (ticket and tenant, no state), whose ticket is not trusted:
// a fresh round runs instead, as for an OAuth entry.
func (p *Provider) casCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, state, ok := p.answer(w, r, "ticket")
	if !ok {
		return
	}
	var round loginRound
	if _, err := p.get(ctx, kindLogin, state, &round); err != nil {
		p.gone(w, r, err)
		return
	}
	if round.Protocol != protocolCAS || q.Get("tenant") != round.TenantID {
		// Not the service this round sent to the CAS login: the round
		// stays, for the genuine answer.
		p.page(w, http.StatusBadRequest, "Service mismatch",
			"The answer of the identity center is not for the service this sign-in asked for. Start again from the app.")
		return
	}
	p.finish(w, r, state, round, q.Get("ticket") == "", func(ctx context.Context, oa *oneaccess.Client, tn store.Tenant, app store.TenantApp) (session, *failure) {
		return p.casSignIn(ctx, oa, tn, app, round.Service, q.Get("ticket"))
	})
}

// casSignIn validates the ticket for the round's service, admits the
// user and stores the browser's new session.
func (p *Provider) casSignIn(ctx context.Context, oa *oneaccess.Client, tn store.Tenant, app store.TenantApp, service, ticket string) (session, *failure) {
	user, err := oa.ValidateTicket(ctx, service, ticket)
	if err != nil {
		var oe *oneaccess.Error
		if errors.As(err, &oe) {
			p.log.InfoContext(ctx, "sso: ticket refused", "tenant", tn.ID, "code", oe.Code, "status", oe.Status)
			return session{}, ticketFailure(safeCode(oe.Code))
		}
		p.log.WarnContext(ctx, "sso: CAS validation", "tenant", tn.ID, "err", err)
		return session{}, errUnavailable
	}
	return p.openSession(ctx, tn, app, user, nil)
}
