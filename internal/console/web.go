package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/koobridge/koobridge/internal/pagehdr"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/tenant"
)

// WebConfig configures the web console.
type WebConfig struct {
	Store   store.Store
	Service *instance.Service // for reprovision; nil answers 500 there
	Tenants *tenant.Service   // for re-delivering Kit events; nil answers 500 there
	// Grants re-runs a license grant that gave up (package grant); nil
	// (a nil interface, not a nil pointer of a concrete type)
	// offers no Retry button and answers 500 to a forced post.
	Grants GrantRetrier
	// Devices releases a device of a license code, freeing its seat
	// (package license); nil (a nil interface) offers no Release button
	// and answers 500 to a forced post.
	Devices DeviceReleaser
	// Usage sends a pending usage push to KooGallery now and pushes a
	// rejected usage period again (package usage); nil (a nil interface)
	// offers neither Send now nor Push again and answers 500 to a forced
	// post.
	Usage UsagePushes
	// Token is the admin token operators log in with; it also keys the
	// session and CSRF MACs. An empty Token rejects every login and every
	// session: the console fails closed.
	Token  string
	Logger *slog.Logger
	// Now is the clock for sessions and job revival; nil means time.Now.
	Now func() time.Time
	// SecureCookie marks the session cookie Secure even when the request
	// arrived over plain HTTP: set it when TLS ends at a proxy in front of
	// koobridge. Requests that arrive over TLS always get a Secure cookie.
	SecureCookie bool
}

//go:embed templates/*.html
var templateFS embed.FS

// pages are the console's templates, each parsed with the shared layout.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"when":        formatTime,
		"duration":    formatDuration,
		"pretty":      prettyJSON,
		"instPath":    func(id string) string { return "/admin/instances/" + url.PathEscape(id) },
		"tenantPath":  func(id string) string { return "/admin/tenants/" + url.PathEscape(id) },
		"licensePath": licensePath,
		"grantPath":   grantPath,
		// usage pages
		"usageInstancePath": usageInstancePath,
		"usageRecordsPath":  usageRecordsPath,
		"usagePushPath":     usagePushPath,
	}
	m := map[string]*template.Template{}
	for _, name := range []string{"login", "instances", "instance", "calls", "jobs", "orders", "tenants", "tenant", "licenses", "license", "grants", "grant",
		"usage", "usageinstance", "usagepushes", "usagepush", "error"} {
		m[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS,
			"templates/layout.html", "templates/tables.html", "templates/usage_tables.html", "templates/"+name+".html"))
	}
	return m
}()

type web struct {
	*core
	token        []byte
	secureCookie bool
	sessions     sessions
}

// NewWeb returns the web console handler: server-rendered pages to browse
// instances, calls, jobs, order notifications, tenants, license codes,
// generated licenses and metered usage with its pushes, and to run the
// repair actions (re-run a job, re-provision an instance, re-deliver a
// tenant's failed Kit event, retry a failed license grant, send a pending
// usage push now, push a rejected usage period again). Its routes
// carry the full /admin/ prefix, so mount it at "/admin/" without
// stripping; the JSON API keeps the longer /admin/api/ pattern.
func NewWeb(cfg WebConfig) http.Handler {
	w := &web{
		core:         newCore(cfg.Store, cfg.Service, cfg.Tenants, cfg.Now, cfg.Logger, "admin console"),
		token:        []byte(cfg.Token),
		secureCookie: cfg.SecureCookie,
	}
	w.grantRetrier = cfg.Grants
	w.deviceReleaser = cfg.Devices
	w.pushRetrier = cfg.Usage
	w.sessions.revoked = map[string]time.Time{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/login", w.loginForm)
	mux.HandleFunc("POST /admin/login", w.login)
	mux.Handle("POST /admin/logout", w.post(w.logout))
	mux.Handle("GET /admin/{$}", w.page(w.instancesPage))
	mux.Handle("GET /admin/instances/{id}", w.page(w.instancePage))
	mux.Handle("POST /admin/instances/{id}/reprovision", w.post(w.reprovisionForm))
	mux.Handle("GET /admin/calls", w.page(w.callsPage))
	mux.Handle("GET /admin/jobs", w.page(w.jobsPage))
	mux.Handle("GET /admin/orders", w.page(w.ordersPage))
	mux.Handle("GET /admin/tenants", w.page(w.tenantsPage))
	mux.Handle("GET /admin/tenants/{tenantId}", w.page(w.tenantPage))
	mux.Handle("POST /admin/tenants/{tenantId}/events/{seq}/redeliver", w.post(w.redeliverForm))
	mux.Handle("POST /admin/jobs/{id}/retry", w.post(w.retryForm))
	w.licenseRoutes(mux)
	w.usageRoutes(mux)
	mux.Handle("GET /admin/", w.page(func(rw http.ResponseWriter, r *http.Request, s session) {
		w.renderError(rw, s, http.StatusNotFound, "no such page: "+r.URL.Path)
	}))
	mux.Handle("/admin/", w.post(func(rw http.ResponseWriter, r *http.Request, s session) {
		w.renderError(rw, s, http.StatusNotFound, "no such action: "+r.Method+" "+r.URL.Path)
	}))
	// No scripts and no foreign resources: the console needs neither.
	return pagehdr.Secure("default-src 'self'; style-src 'unsafe-inline'", mux)
}

// base is what the layout needs on every page.
type base struct {
	Title    string
	LoggedIn bool
	CSRF     string
	Notice   string
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 instead of half a page.
func (w *web) render(rw http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		w.log.Error("admin console: render "+name, "err", err)
		http.Error(rw, "internal error: render page", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(status)
	_, _ = buf.WriteTo(rw)
}

type errorPage struct {
	base
	Status  int
	Message string
}

func (w *web) renderError(rw http.ResponseWriter, s session, status int, msg string) {
	w.render(rw, status, "error", errorPage{
		base:   base{Title: http.StatusText(status), LoggedIn: s.id != "", CSRF: w.csrfToken(s)},
		Status: status, Message: msg,
	})
}

// fail renders err as an error page with its status.
func (w *web) fail(rw http.ResponseWriter, s session, err error) {
	status, msg := asStatus(err)
	w.renderError(rw, s, status, msg)
}

func formatTime(v any) string {
	switch t := v.(type) {
	case time.Time:
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if t == nil {
			return "—"
		}
		return formatTime(*t)
	}
	return fmt.Sprint(v)
}

// prettyJSON indents a masked ledger body for reading; a body that is not
// JSON is shown as it is.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(empty)"
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// sessions remembers the sessions logged out before they expired, so a
// copied cookie dies with the logout on this process too.
type sessions struct {
	mu      sync.Mutex
	revoked map[string]time.Time // session id → expiry
}
