// Package console serves koobridge's admin JSON API: instances with their
// call history, the ledger of calls, background jobs, and the two repair
// actions (re-run a dead job, re-provision a failed instance). It is mounted
// under /admin/api/ and guarded by a bearer token.
package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/lifecycle"
	"github.com/koobridge/koobridge/internal/store"
)

// APIConfig configures the admin API.
type APIConfig struct {
	Store   store.Store
	Service *lifecycle.Service // for reprovision; nil answers 500 there
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
	cfg       APIConfig
	tokenHash [sha256.Size]byte
	log       *slog.Logger
}

// NewAPI returns the admin API handler. Its routes carry the full
// /admin/api/ prefix, so mount it at "/admin/api/" without stripping.
func NewAPI(cfg APIConfig) http.Handler {
	a := &api{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.Token)), log: cfg.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.cfg.Now == nil {
		a.cfg.Now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/api/instances", a.listInstances)
	mux.HandleFunc("GET /admin/api/instances/{id}", a.getInstance)
	mux.HandleFunc("POST /admin/api/instances/{id}/reprovision", a.reprovision)
	mux.HandleFunc("GET /admin/api/calls", a.listCalls)
	mux.HandleFunc("GET /admin/api/jobs", a.listJobs)
	mux.HandleFunc("GET /admin/api/jobs/{id}", a.getJob)
	mux.HandleFunc("POST /admin/api/jobs/{id}/retry", a.retryJob)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a.auth(mux)
}

// auth checks the bearer token in constant time. Hashing first makes the
// comparison independent of the token's length too.
func (a *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if !ok || a.cfg.Token == "" || subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="koobridge admin"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (a *api) listInstances(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := store.InstanceFilter{
		Status:  store.InstanceStatus(q.Get("status")),
		OrderID: q.Get("order"),
		AfterID: q.Get("after"),
		Limit:   limit,
	}
	switch f.Status {
	case "", store.StatusProvisioning, store.StatusActive, store.StatusFrozen, store.StatusFailed, store.StatusReleased:
	default:
		writeError(w, http.StatusBadRequest, "status: want provisioning, active, frozen, failed or released")
		return
	}
	if v := q.Get("test"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "test: want true or false")
			return
		}
		f.Test = &b
	}
	list, err := a.cfg.Store.Instances(r.Context(), f)
	if err != nil {
		a.internal(w, "list instances", err)
		return
	}
	out := struct {
		Instances []instanceView `json:"instances"`
		Next      string         `json:"next,omitempty"`
	}{Instances: make([]instanceView, 0, len(list))}
	for _, inst := range list {
		out.Instances = append(out.Instances, viewInstance(inst))
	}
	if len(list) == limit {
		out.Next = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getInstance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	inst, err := a.cfg.Store.Instance(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "instance "+strconv.Quote(id)+" not found")
		return
	}
	if err != nil {
		a.internal(w, "get instance", err)
		return
	}
	calls, err := a.cfg.Store.Calls(r.Context(), store.CallFilter{InstanceID: id, Limit: maxLimit})
	if err != nil {
		a.internal(w, "list calls of instance", err)
		return
	}
	out := struct {
		instanceView
		Calls []callView `json:"calls"`
	}{instanceView: viewInstance(inst), Calls: viewCalls(calls)}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) reprovision(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if a.cfg.Service == nil {
		writeError(w, http.StatusInternalServerError, "reprovisioning is not available")
		return
	}
	if _, err := a.cfg.Store.Instance(r.Context(), id); errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "instance "+strconv.Quote(id)+" not found")
		return
	} else if err != nil {
		a.internal(w, "get instance", err)
		return
	}
	if err := a.cfg.Service.Reprovision(r.Context(), id); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			writeError(w, http.StatusNotFound, "instance "+strconv.Quote(id)+" not found")
		case errors.Is(err, lifecycle.ErrWrongState), errors.Is(err, store.ErrConflict):
			// Only failed (or stuck) instances can be re-run: a conflict
			// with the instance's state that the caller can read and act on.
			writeError(w, http.StatusConflict, "instance "+strconv.Quote(id)+" cannot be reprovisioned now: "+err.Error())
		default:
			a.internal(w, "reprovision", err)
		}
		return
	}
	inst, err := a.cfg.Store.Instance(r.Context(), id)
	if err != nil {
		a.internal(w, "get instance", err)
		return
	}
	writeJSON(w, http.StatusAccepted, viewInstance(inst))
}

func (a *api) listCalls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := store.CallFilter{
		Activity:   q.Get("activity"),
		InstanceID: q.Get("instance"),
		OrderID:    q.Get("order"),
		ResultCode: q.Get("code"),
		Limit:      limit,
	}
	if f.Since, err = parseTime("since", q.Get("since")); err == nil {
		f.Until, err = parseTime("until", q.Get("until"))
	}
	if err == nil {
		f.BeforeID, err = parseID("before", q.Get("before"))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	calls, err := a.cfg.Store.Calls(r.Context(), f)
	if err != nil {
		a.internal(w, "list calls", err)
		return
	}
	out := struct {
		Calls []callView `json:"calls"`
		Next  string     `json:"next,omitempty"`
	}{Calls: viewCalls(calls)}
	if len(calls) == limit {
		out.Next = strconv.FormatInt(calls[len(calls)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) listJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := store.JobFilter{Kind: q.Get("kind"), State: store.JobState(q.Get("state")), Limit: limit}
	switch f.State {
	case "", store.JobAvailable, store.JobRunning, store.JobDone, store.JobDead:
	default:
		writeError(w, http.StatusBadRequest, "state: want available, running, done or dead")
		return
	}
	if f.BeforeID, err = parseID("before", q.Get("before")); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	jobs, err := a.cfg.Store.Jobs(r.Context(), f)
	if err != nil {
		a.internal(w, "list jobs", err)
		return
	}
	out := struct {
		Jobs []jobView `json:"jobs"`
		Next string    `json:"next,omitempty"`
	}{Jobs: make([]jobView, 0, len(jobs))}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, viewJob(j))
	}
	if len(jobs) == limit {
		out.Next = strconv.FormatInt(jobs[len(jobs)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getJob(w http.ResponseWriter, r *http.Request) {
	id, ok := a.jobID(w, r)
	if !ok {
		return
	}
	j, err := a.cfg.Store.Job(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "job "+strconv.FormatInt(id, 10)+" not found")
		return
	}
	if err != nil {
		a.internal(w, "get job", err)
		return
	}
	writeJSON(w, http.StatusOK, viewJob(j))
}

func (a *api) retryJob(w http.ResponseWriter, r *http.Request) {
	id, ok := a.jobID(w, r)
	if !ok {
		return
	}
	err := a.cfg.Store.ReviveJob(r.Context(), id, a.cfg.Now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "job "+strconv.FormatInt(id, 10)+" not found")
		return
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "job "+strconv.FormatInt(id, 10)+" is not dead or done: it is still queued or running")
		return
	case err != nil:
		a.internal(w, "revive job", err)
		return
	}
	j, err := a.cfg.Store.Job(r.Context(), id)
	if err != nil {
		a.internal(w, "get job", err)
		return
	}
	a.log.Info("admin revived job", "job_id", id, "kind", j.Kind)
	writeJSON(w, http.StatusAccepted, viewJob(j))
}

func (a *api) jobID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "job "+strconv.Quote(r.PathValue("id"))+" not found")
		return 0, false
	}
	return id, true
}

// internal logs the cause and answers a generic 500: store errors may
// carry SQL or paths that are no business of an HTTP client.
func (a *api) internal(w http.ResponseWriter, what string, err error) {
	a.log.Error("admin api: "+what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error: "+what)
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, errors.New("limit: want a number from 1 to 1000")
	}
	return n, nil
}

func parseID(name, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New(name + ": want a positive id")
	}
	return n, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New(name + ": want an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t, nil
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
