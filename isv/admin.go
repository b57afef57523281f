package isv

import (
	"net/http"

	"github.com/koobridge/koobridge/internal/console"
)

// MinAdminTokenLen is the shortest admin token AdminHandler accepts.
const MinAdminTokenLen = 16

// AdminConfig configures the admin API and web console.
type AdminConfig struct {
	// Token is the bearer token of the JSON API and the login of the web
	// console; at least MinAdminTokenLen characters. An empty or short
	// token serves 404 for everything: the console fails closed.
	Token string
	// SecureCookie marks the console's session cookie Secure on plain
	// HTTP too (TLS ends at a proxy in front).
	SecureCookie bool
}

// AdminHandler returns the admin JSON API under /admin/api/ and the web
// console under /admin/ (docs/admin-api.md, docs/console.md): instances
// and their calls, the ledger, jobs, order notifications, joint-operation
// tenants with their Kit data and events, license codes and generated
// licenses with their uploads, pay-per-use usage with its pushes to
// KooGallery, and the repair actions (re-run a job, re-provision an
// instance, re-deliver a tenant's failed Kit event, retry a license upload
// that gave up, release a license code's device, send a pending usage push
// now, push a rejected usage period again).
// Mount it at "/admin/" without stripping the prefix.
func (s *Server) AdminHandler(cfg AdminConfig) http.Handler {
	if len(cfg.Token) < MinAdminTokenLen {
		return http.NotFoundHandler()
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/api/", console.NewAPI(console.APIConfig{
		Store: s.st, Service: s.instances, Tenants: s.tenants, Grants: s.grants, Devices: s.licenses, Usage: s.usage, Token: cfg.Token, Logger: s.log,
	}))
	mux.Handle("/admin/", console.NewWeb(console.WebConfig{
		Store: s.st, Service: s.instances, Tenants: s.tenants, Grants: s.grants, Devices: s.licenses, Usage: s.usage, Token: cfg.Token, Logger: s.log,
		SecureCookie: cfg.SecureCookie,
	}))
	return mux
}
