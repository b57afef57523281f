package console

import (
	"net/http"

	"github.com/koobridge/koobridge/internal/store"
)

// usageRoutes adds the metering endpoints: the periods counted by state,
// the periods, one instance's usage, the records, the pushes to KooGallery
// with their attempts, the retry of a pending push, and pushing a rejected
// period again.
func (a *api) usageRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/api/usage", a.getUsageSummary)
	mux.HandleFunc("GET /admin/api/usage/periods", a.listUsagePeriods)
	mux.HandleFunc("GET /admin/api/usage/instances/{id}", a.getUsageInstance)
	mux.HandleFunc("GET /admin/api/usage/records", a.listUsageRecords)
	mux.HandleFunc("GET /admin/api/usage/pushes", a.listUsagePushes)
	mux.HandleFunc("GET /admin/api/usage/pushes/{id}", a.getUsagePush)
	mux.HandleFunc("POST /admin/api/usage/pushes/{id}/retry", a.retryUsagePushHandler)
	mux.HandleFunc("POST /admin/api/usage/instances/{id}/periods/{start}/repush", a.repushUsagePeriodHandler)
}

func (a *api) getUsageSummary(w http.ResponseWriter, r *http.Request) {
	s, err := a.usageSummary(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewUsageSummary(s))
}

func (a *api) listUsagePeriods(w http.ResponseWriter, r *http.Request) {
	list, next, err := a.usagePeriods(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Periods []usagePeriodView `json:"periods"`
		Next    string            `json:"next,omitempty"`
	}{Periods: viewUsagePeriods(list), Next: next}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getUsageInstance(w http.ResponseWriter, r *http.Request) {
	d, err := a.usageInstance(r.Context(), r.PathValue("id"), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewUsageInstance(d))
}

func (a *api) listUsageRecords(w http.ResponseWriter, r *http.Request) {
	list, next, err := a.usageRecords(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Records []usageRecordView `json:"records"`
		Next    string            `json:"next,omitempty"`
	}{Records: viewUsageRecords(list), Next: next}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) listUsagePushes(w http.ResponseWriter, r *http.Request) {
	list, next, err := a.usagePushes(r.Context(), r.URL.Query())
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Pushes []usagePushView `json:"pushes"`
		Next   string          `json:"next,omitempty"`
	}{Pushes: make([]usagePushView, 0, len(list)), Next: next}
	for _, p := range list {
		out.Pushes = append(out.Pushes, viewUsagePush(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getUsagePush(w http.ResponseWriter, r *http.Request) {
	d, err := a.usagePush(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewUsagePushDetail(d))
}

func (a *api) retryUsagePushHandler(w http.ResponseWriter, r *http.Request) {
	p, err := a.retryUsagePush(r.Context(), r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, viewUsagePush(p))
}

func (a *api) repushUsagePeriodHandler(w http.ResponseWriter, r *http.Request) {
	p, err := a.repushUsagePeriod(r.Context(), r.PathValue("id"), r.PathValue("start"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, viewUsagePeriods([]store.UsagePeriod{p})[0])
}
