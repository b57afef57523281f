// Package console serves koobridge's admin JSON API and web console:
// instances with their call history, the ledger of calls, background jobs,
// order notifications, joint-operation tenants with their Kit data,
// license codes with their devices and history, generated licenses with
// their uploads, pay-per-use metering (usage periods, records and pushes
// to KooGallery), and the repair actions (re-run a dead job, re-provision
// a failed instance, re-deliver a failed Kit event, retry a failed license
// grant, send a pending usage push now, push a rejected usage period
// again). The JSON API is mounted under
// /admin/api/ and guarded by a bearer token; the web console (NewWeb)
// under /admin/, behind a login with the same token.
package console

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/koobridge/koobridge/internal/bearer"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/internal/tenant"
)

// APIConfig configures the admin API.
type APIConfig struct {
	Store   store.Store
	Service *instance.Service // for reprovision; nil answers 500 there
	Tenants *tenant.Service   // for re-delivering Kit events; nil answers 500 there
	// Grants re-runs a license grant that gave up (package grant); nil
	// (a nil interface, not a nil pointer of a concrete type)
	// answers 500 there.
	Grants GrantRetrier
	// Devices releases a device of a license code, freeing its seat
	// (package license); nil (a nil interface) answers 500 there.
	Devices DeviceReleaser
	// Usage sends a pending usage push to KooGallery now and pushes a
	// rejected usage period again (package usage); nil (a nil interface)
	// answers 500 there.
	Usage UsagePushes
	// Token is the bearer token every request must carry. An empty Token
	// rejects every request: the API fails closed.
	Token  string
	Logger *slog.Logger
	// Now is the clock for job revival; nil means time.Now.
	Now func() time.Time
}

// Paging limits, as the store defines them.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

type api struct {
	*core
	tokens bearer.Tokens
}

// NewAPI returns the admin API handler. Its routes carry the full
// /admin/api/ prefix, so mount it at "/admin/api/" without stripping.
func NewAPI(cfg APIConfig) http.Handler {
	a := &api{
		core:   newCore(cfg.Store, cfg.Service, cfg.Tenants, cfg.Now, cfg.Logger, "admin api"),
		tokens: bearer.New(cfg.Token),
	}
	a.grantRetrier = cfg.Grants
	a.deviceReleaser = cfg.Devices
	a.pushRetrier = cfg.Usage
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/api/instances", a.listInstances)
	mux.HandleFunc("GET /admin/api/instances/{id}", a.getInstance)
	mux.HandleFunc("POST /admin/api/instances/{id}/reprovision", a.reprovisionInstance)
	mux.HandleFunc("GET /admin/api/calls", a.listCalls)
	mux.HandleFunc("GET /admin/api/jobs", a.listJobs)
	mux.HandleFunc("GET /admin/api/jobs/{id}", a.getJob)
	mux.HandleFunc("POST /admin/api/jobs/{id}/retry", a.retry)
	mux.HandleFunc("GET /admin/api/orders", a.listOrders)
	mux.HandleFunc("GET /admin/api/tenants", a.listTenants)
	mux.HandleFunc("GET /admin/api/tenants/{tenantId}", a.getTenant)
	mux.HandleFunc("POST /admin/api/tenants/{tenantId}/events/{seq}/redeliver", a.redeliverEvent)
	a.licenseRoutes(mux)
	a.usageRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a.auth(mux)
}

// auth checks the bearer token, in constant time (package bearer).
func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.tokens.Allow(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="koobridge admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (a *api) listInstances(w http.ResponseWriter, r *http.Request) {
	list, next, err := a.instances(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Instances []instanceView `json:"instances"`
		Next      string         `json:"next,omitempty"`
	}{Instances: make([]instanceView, 0, len(list)), Next: next}
	for _, inst := range list {
		out.Instances = append(out.Instances, viewInstance(inst))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getInstance(w http.ResponseWriter, r *http.Request) {
	inst, calls, err := a.instance(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		instanceView
		Calls []callView `json:"calls"`
	}{instanceView: viewInstance(inst), Calls: viewCalls(calls)}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) reprovisionInstance(w http.ResponseWriter, r *http.Request) {
	inst, err := a.reprovision(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, viewInstance(inst))
}

func (a *api) listCalls(w http.ResponseWriter, r *http.Request) {
	calls, next, err := a.calls(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Calls []callView `json:"calls"`
		Next  string     `json:"next,omitempty"`
	}{Calls: viewCalls(calls), Next: next}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) listJobs(w http.ResponseWriter, r *http.Request) {
	jobs, next, err := a.jobs(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Jobs []jobView `json:"jobs"`
		Next string    `json:"next,omitempty"`
	}{Jobs: make([]jobView, 0, len(jobs)), Next: next}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, viewJob(j))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getJob(w http.ResponseWriter, r *http.Request) {
	j, err := a.job(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewJob(j))
}

func (a *api) retry(w http.ResponseWriter, r *http.Request) {
	j, err := a.retryJob(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, viewJob(j))
}

func (a *api) listOrders(w http.ResponseWriter, r *http.Request) {
	list, next, err := a.orders(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Orders []orderView `json:"orders"`
		Next   string      `json:"next,omitempty"`
	}{Orders: make([]orderView, 0, len(list)), Next: next}
	for _, n := range list {
		out.Orders = append(out.Orders, viewOrder(n))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) listTenants(w http.ResponseWriter, r *http.Request) {
	list, next, err := a.tenants(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Tenants []tenantView `json:"tenants"`
		Next    string       `json:"next,omitempty"`
	}{Tenants: make([]tenantView, 0, len(list)), Next: next}
	for _, t := range list {
		out.Tenants = append(out.Tenants, viewTenant(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getTenant(w http.ResponseWriter, r *http.Request) {
	d, err := a.tenant(r.Context(), r.PathValue("tenantId"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewTenantDetail(d))
}

func (a *api) redeliverEvent(w http.ResponseWriter, r *http.Request) {
	ev, err := a.redeliver(r.Context(), r.PathValue("tenantId"), r.PathValue("seq"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, viewTenantEvent(ev))
}

// fail answers err as {"error": …} with its status.
func fail(w http.ResponseWriter, err error) {
	status, msg := asStatus(err)
	writeError(w, status, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
