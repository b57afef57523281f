package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/durationtext"
)

// maxBody caps every JSON and form body the emulator reads.
const maxBody = 1 << 20

// maxDuplicates caps Faults.Duplicates: each copy is a concurrent call to
// the seller, and a handful is enough to catch a seller that is not
// idempotent.
const maxDuplicates = 10

// maxOneAccessLatency caps Faults.OneAccessTokenLatency and
// LicenseAPILatency: long enough to outlast any seller's timeout, short
// enough not to pile up requests.
const maxOneAccessLatency = 5 * time.Minute

// maxUploadFailures caps Faults.UploadFailures.
const maxUploadFailures = 1000

// The JSON API, under /api/emulator/. Every answer is JSON; errors are
// {"error": "..."} with 400 (bad input), 404 (unknown id or path), 405
// (a known path with another method; Allow lists the methods), 409 (a
// scenario or re-drive that does not fit the current state, or a
// subscription busy with another) or 500.
func (h *site) routeAPI(mux *http.ServeMux) {
	const p = "/api/emulator/"
	mux.HandleFunc("GET "+p+"products", h.apiProducts)
	mux.HandleFunc("POST "+p+"products", h.apiAddProduct)
	mux.HandleFunc("GET "+p+"scenarios", h.apiScenarios)
	mux.HandleFunc("GET "+p+"subscriptions", h.apiSubscriptions)
	mux.HandleFunc("GET "+p+"subscriptions/{id}", h.apiSubscription)
	mux.HandleFunc("POST "+p+"purchases", h.apiPurchase)
	mux.HandleFunc("POST "+p+"subscriptions/{id}/play", h.apiPlay)
	mux.HandleFunc("GET "+p+"runs/{id}", h.apiRun)
	mux.HandleFunc("GET "+p+"messages", h.apiMessages)
	mux.HandleFunc("GET "+p+"messages/{id}", h.apiMessage)
	mux.HandleFunc("POST "+p+"messages/{id}/redrive", h.apiRedrive)
	mux.HandleFunc("GET "+p+"faults", h.apiFaults)
	mux.HandleFunc("PUT "+p+"faults", h.apiSetFaults)
	mux.HandleFunc("GET "+p+"clock", h.apiClock)
	mux.HandleFunc("POST "+p+"clock/advance", h.apiAdvance)
	mux.HandleFunc("GET "+p+"usage", h.apiUsage)
	mux.HandleFunc("GET "+p+"usage/records", h.apiUsageRecords)
	mux.HandleFunc("GET "+p+"openapi-requests", h.apiOpenAPIRequests)
	mux.HandleFunc("GET "+p+"tenants", h.apiTenants)
	mux.HandleFunc("GET "+p+"tenants/{tenantId}", h.apiTenant)
	h.routeLicenseAPI(mux, p)
	mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(mux, r, p); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, &apiError{http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or "))})
			return
		}
		writeError(w, &apiError{http.StatusNotFound, "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
}

// allowed lists the methods mux serves r's path with, other than through
// the catch-all pattern; empty means the path is unknown.
func allowed(mux *http.ServeMux, r *http.Request, catchAll string) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != catchAll && pattern != "" {
			out = append(out, m)
		}
	}
	if slices.Contains(out, http.MethodGet) {
		out = slices.Insert(out, 1, http.MethodHead)
	}
	return out
}

// apiError is an error with the HTTP status it answers.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &apiError{http.StatusConflict, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, fmt.Errorf("emulator: encode answer: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers err as {"error": ...} with its status; an error that
// is not an apiError is a 500.
func writeError(w http.ResponseWriter, err error) {
	status, msg := http.StatusInternalServerError, err.Error()
	var ae *apiError
	if errors.As(err, &ae) {
		status, msg = ae.status, ae.msg
	}
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeJSON reads exactly one JSON value of at most maxBody bytes into v,
// rejecting unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return badRequest("bad JSON: body larger than %d bytes", maxBody)
		case errors.Is(err, io.EOF):
			return badRequest("bad JSON: empty body")
		}
		return badRequest("bad JSON: %v", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return badRequest("bad JSON: more than one value in the body")
	}
	return nil
}

// list turns a nil slice into an empty one, so lists are [] and never null.
func list[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (h *site) apiProducts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, list(h.e.Products()))
}

func (h *site) apiAddProduct(w http.ResponseWriter, r *http.Request) {
	var p Product
	if err := decodeJSON(w, r, &p); err != nil {
		writeError(w, err)
		return
	}
	if err := h.e.AddProduct(p); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	for _, q := range h.e.Products() {
		if q.ID == p.ID {
			p = q
		}
	}
	writeJSON(w, http.StatusCreated, p)
}

func (h *site) apiScenarios(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, list(h.e.Scenarios()))
}

func (h *site) apiSubscriptions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, list(h.e.Subscriptions()))
}

func (h *site) apiSubscription(w http.ResponseWriter, r *http.Request) {
	s, ok := h.e.Subscription(r.PathValue("id"))
	if !ok {
		writeError(w, notFound("no such subscription: %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// purchaseJSON is the body of POST purchases: PurchaseRequest with
// orderTime as text, so that a bad one is refused naming the field.
type purchaseJSON struct {
	PurchaseRequest
	OrderTime *string `json:"orderTime"` // shadows PurchaseRequest.OrderTime
}

func (h *site) apiPurchase(w http.ResponseWriter, r *http.Request) {
	var pj purchaseJSON
	if err := decodeJSON(w, r, &pj); err != nil {
		writeError(w, err)
		return
	}
	p := pj.PurchaseRequest
	if pj.OrderTime != nil {
		t, err := parseOrderTime(*pj.OrderTime)
		if err != nil {
			writeError(w, err)
			return
		}
		p.OrderTime = t
	}
	run, err := h.purchase(r, p)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, run)
}

// parseOrderTime reads a purchase's orderTime: RFC 3339 with a zone.
func parseOrderTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badRequest("orderTime %q: want an RFC 3339 time like 2026-01-02T15:04:05Z", s)
	}
	return t, nil
}

// purchase buys p; what Purchase refuses is mapped by stateError.
func (h *site) purchase(r *http.Request, p PurchaseRequest) (Run, error) {
	if p.ProductID == "" {
		return Run{}, badRequest("productId is required")
	}
	// The run goes on when the client hangs up: half a purchase would
	// leave the subscription in a state no buyer could reach.
	run, err := h.e.Purchase(context.WithoutCancel(r.Context()), p)
	return run, stateError(err)
}

// stateError maps an error of Purchase, Play or Redrive to its answer:
// ErrNotFound 404, ErrConflict 409, Close 500, anything else (a request
// the catalogue or the scenario table cannot serve) 400.
func stateError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return notFound("%v", err)
	case errors.Is(err, ErrConflict):
		return conflict("%v", err)
	case errors.Is(err, errClosed):
		return err
	}
	return badRequest("%v", err)
}

// playRequest is the body of POST subscriptions/{id}/play: the scenario
// and its arguments (revoke-user takes userName).
type playRequest struct {
	Scenario          string `json:"scenario"`
	UserName          string `json:"userName,omitempty"`
	DeviceFingerprint string `json:"deviceFingerprint,omitempty"`
}

func (h *site) apiPlay(w http.ResponseWriter, r *http.Request) {
	var p playRequest
	if err := decodeJSON(w, r, &p); err != nil {
		writeError(w, err)
		return
	}
	run, err := h.play(r, r.PathValue("id"), p.Scenario, PlayOptions{UserName: p.UserName, DeviceFingerprint: p.DeviceFingerprint})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// apiRun answers a run as it stands now (Outcome): a pending one settles
// when what it waits for ends.
func (h *site) apiRun(w http.ResponseWriter, r *http.Request) {
	run, ok := h.e.Outcome(r.PathValue("id"))
	if !ok {
		writeError(w, notFound("no such run: %q (the last %d are kept)", r.PathValue("id"), maxRuns))
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// play plays a scenario; what PlayWith refuses is mapped by stateError.
func (h *site) play(r *http.Request, subID, name string, opts PlayOptions) (Run, error) {
	if name == "" {
		return Run{}, badRequest("scenario is required")
	}
	run, err := h.e.PlayWith(context.WithoutCancel(r.Context()), subID, name, opts)
	return run, stateError(err)
}

func (h *site) apiMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := MessageFilter{
		SubscriptionID: q.Get("subscription"),
		Interface:      q.Get("interface"),
		Status:         q.Get("status"),
	}
	switch f.Status {
	case "", MessageSending, MessageSuccess, MessageRetrying, MessageFailed:
	default:
		writeError(w, badRequest("unknown status %q; want %s, %s, %s or %s", f.Status, MessageSending, MessageSuccess, MessageRetrying, MessageFailed))
		return
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, badRequest("limit: %q is not a whole number ≥ 0", s))
			return
		}
		f.Limit = n
	}
	writeJSON(w, http.StatusOK, list(h.e.Messages(f)))
}

func (h *site) apiMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := h.e.Message(r.PathValue("id"))
	if !ok {
		writeError(w, notFound("no such message: %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (h *site) apiRedrive(w http.ResponseWriter, r *http.Request) {
	m, err := h.redrive(r, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (h *site) redrive(r *http.Request, id string) (Message, error) {
	m, err := h.e.Redrive(context.WithoutCancel(r.Context()), id)
	return m, stateError(err)
}

// duration is a time.Duration written in JSON as a Go duration string
// ("2s"); it also accepts integer nanoseconds.
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := durationtext.Parse(s)
		if err != nil {
			return fmt.Errorf("%q is %w", s, err)
		}
		*d = duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not a duration: want a string like \"2s\" or integer nanoseconds", b)
	}
	*d = duration(n)
	return nil
}

// faultsJSON is Faults on the wire: every field present, durations as
// strings.
type faultsJSON struct {
	OpenAPILatency duration `json:"openapiLatency"`
	OpenAPIStatus  int      `json:"openapiStatus"`
	OpenAPITimeout bool     `json:"openapiTimeout"`
	OpenAPICount   int      `json:"openapiCount"`
	Duplicates     int      `json:"duplicates"`
	ClockSkew      duration `json:"clockSkew"`
	// OneAccess side.
	OneAccessTokenLatency duration `json:"oneaccessTokenLatency"`
	OneAccessTokenFail    bool     `json:"oneaccessTokenFail"`
	// License Open API side.
	LicenseAPIStatus  int      `json:"licenseApiStatus"`
	LicenseAPICode    string   `json:"licenseApiCode"`
	LicenseAPILatency duration `json:"licenseApiLatency"`
	LicenseAPICount   int      `json:"licenseApiCount"`
	UploadFailures    int      `json:"uploadFailures"`
	UploadFailureCode string   `json:"uploadFailureCode"`
	// Usage push side.
	UsageFailRate float64 `json:"usageFailRate"`
}

func toFaultsJSON(f Faults) faultsJSON {
	return faultsJSON{
		OpenAPILatency: duration(f.OpenAPILatency),
		OpenAPIStatus:  f.OpenAPIStatus,
		OpenAPITimeout: f.OpenAPITimeout,
		OpenAPICount:   f.OpenAPICount,
		Duplicates:     f.Duplicates,
		ClockSkew:      duration(f.ClockSkew),

		OneAccessTokenLatency: duration(f.OneAccessTokenLatency),
		OneAccessTokenFail:    f.OneAccessTokenFail,

		LicenseAPIStatus:  f.LicenseAPIStatus,
		LicenseAPICode:    f.LicenseAPICode,
		LicenseAPILatency: duration(f.LicenseAPILatency),
		LicenseAPICount:   f.LicenseAPICount,
		UploadFailures:    f.UploadFailures,
		UploadFailureCode: f.UploadFailureCode,

		UsageFailRate: f.UsageFailRate,
	}
}

// faults validates f and converts it.
func (f faultsJSON) faults() (Faults, error) {
	switch {
	case f.OpenAPILatency < 0:
		return Faults{}, badRequest("openapiLatency must not be negative")
	case f.OpenAPIStatus != 0 && (f.OpenAPIStatus < 400 || f.OpenAPIStatus > 599):
		return Faults{}, badRequest("openapiStatus %d: want 0 (off) or an error status 400-599", f.OpenAPIStatus)
	case f.OpenAPICount < 0:
		return Faults{}, badRequest("openapiCount must not be negative")
	case f.Duplicates < 0 || f.Duplicates > maxDuplicates:
		return Faults{}, badRequest("duplicates %d: want 0 to %d", f.Duplicates, maxDuplicates)
	case f.OneAccessTokenLatency < 0 || time.Duration(f.OneAccessTokenLatency) > maxOneAccessLatency:
		return Faults{}, badRequest("oneaccessTokenLatency %s: want 0 to %s", durationtext.Format(time.Duration(f.OneAccessTokenLatency)), durationtext.Format(maxOneAccessLatency))
	case f.LicenseAPIStatus != 0 && f.LicenseAPIStatus != http.StatusOK && (f.LicenseAPIStatus < 400 || f.LicenseAPIStatus > 599):
		return Faults{}, badRequest("licenseApiStatus %d: want 0 (off), 200 (an error code with HTTP 200) or an error status 400-599", f.LicenseAPIStatus)
	case f.LicenseAPICode != "" && f.LicenseAPIStatus == 0:
		return Faults{}, badRequest("licenseApiCode needs licenseApiStatus: the HTTP status to answer it with")
	case !faultCode(f.LicenseAPICode):
		return Faults{}, badRequest("licenseApiCode %q: want an error code like 92020001 or APIGW.0201", f.LicenseAPICode)
	case f.LicenseAPILatency < 0 || time.Duration(f.LicenseAPILatency) > maxOneAccessLatency:
		return Faults{}, badRequest("licenseApiLatency %s: want 0 to %s", durationtext.Format(time.Duration(f.LicenseAPILatency)), durationtext.Format(maxOneAccessLatency))
	case f.LicenseAPICount < 0:
		return Faults{}, badRequest("licenseApiCount must not be negative")
	case f.UploadFailures < 0 || f.UploadFailures > maxUploadFailures:
		return Faults{}, badRequest("uploadFailures %d: want 0 to %d", f.UploadFailures, maxUploadFailures)
	case f.UploadFailureCode != "" && f.UploadFailures == 0:
		return Faults{}, badRequest("uploadFailureCode needs uploadFailures: how many uploads fail with it")
	case !faultCode(f.UploadFailureCode):
		return Faults{}, badRequest("uploadFailureCode %q: want an error code like CBC.0999 or 91381036", f.UploadFailureCode)
	case !(f.UsageFailRate >= 0 && f.UsageFailRate <= 1): // NaN too
		return Faults{}, badRequest("usageFailRate %v: want a fraction from 0 (off) to 1 (every usage push fails)", f.UsageFailRate)
	}
	return Faults{
		OpenAPILatency: time.Duration(f.OpenAPILatency),
		OpenAPIStatus:  f.OpenAPIStatus,
		OpenAPITimeout: f.OpenAPITimeout,
		OpenAPICount:   f.OpenAPICount,
		Duplicates:     f.Duplicates,
		ClockSkew:      time.Duration(f.ClockSkew),

		OneAccessTokenLatency: time.Duration(f.OneAccessTokenLatency),
		OneAccessTokenFail:    f.OneAccessTokenFail,

		LicenseAPIStatus:  f.LicenseAPIStatus,
		LicenseAPICode:    f.LicenseAPICode,
		LicenseAPILatency: time.Duration(f.LicenseAPILatency),
		LicenseAPICount:   f.LicenseAPICount,
		UploadFailures:    f.UploadFailures,
		UploadFailureCode: f.UploadFailureCode,

		UsageFailRate: f.UsageFailRate,
	}, nil
}

// faultCode reports whether s is empty or looks like an Open API error
// code: 1 to 16 letters, digits and dots.
func faultCode(s string) bool {
	if len(s) > 16 {
		return false
	}
	for _, r := range s {
		if !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '.') {
			return false
		}
	}
	return true
}

func (h *site) apiFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, toFaultsJSON(h.e.Faults()))
}

// apiSetFaults replaces the faults: a field left out is switched off.
func (h *site) apiSetFaults(w http.ResponseWriter, r *http.Request) {
	var fj faultsJSON
	if err := decodeJSON(w, r, &fj); err != nil {
		writeError(w, err)
		return
	}
	f, err := fj.faults()
	if err != nil {
		writeError(w, err)
		return
	}
	h.e.SetFaults(f)
	writeJSON(w, http.StatusOK, toFaultsJSON(h.e.Faults()))
}

// clockJSON is the emulated clock on the wire.
type clockJSON struct {
	Now       time.Time `json:"now"`
	TimeScale float64   `json:"timeScale"`
}

func (h *site) clock() clockJSON {
	return clockJSON{Now: h.e.Now(), TimeScale: h.e.Config().TimeScale}
}

func (h *site) apiClock(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.clock())
}

// advanceRequest is the body of POST clock/advance.
type advanceRequest struct {
	Duration duration `json:"duration"`
}

func (h *site) apiAdvance(w http.ResponseWriter, r *http.Request) {
	var a advanceRequest
	if err := decodeJSON(w, r, &a); err != nil {
		writeError(w, err)
		return
	}
	if a.Duration <= 0 {
		writeError(w, badRequest("duration must be positive, e.g. \"24h\""))
		return
	}
	if err := h.e.Advance(time.Duration(a.Duration)); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	writeJSON(w, http.StatusOK, h.clock())
}

// parsePositive reads a form's positive duration, field name: the
// parser's error says what is wrong with it (not a duration, too long,
// units out of order); example is one that would do.
func parsePositive(name, s, example string) (time.Duration, error) {
	d, err := durationtext.Parse(s)
	if err != nil {
		return 0, badRequest("%s: %q is %v", name, s, err)
	}
	if d <= 0 {
		return 0, badRequest("%s must be positive, e.g. %s", name, example)
	}
	return d, nil
}

// Periods per instance GET usage lists without ?instance=.
const (
	// DefaultUsagePeriods is how many of each instance's latest periods
	// it lists when ?periods= does not say.
	DefaultUsagePeriods = 100
	// MaxUsagePeriods is the most ?periods= may ask for; ?instance= has
	// every period of one instance.
	MaxUsagePeriods = 1000
)

// usageJSON is the answer of GET usage: what was billed, per instance.
type usageJSON struct {
	Instances []BilledInstance `json:"instances"`
}

// apiUsage answers what the usage pushes billed, per instance with its
// latest periods: ?periods=N (0 to MaxUsagePeriods; false is 0, true
// DefaultUsagePeriods, the default), each instance's periodsOmitted
// counting the others. ?instance= picks one instance (404 when nothing
// was billed for it) and lists all its periods unless ?periods= says
// otherwise. Only the periods listed are copied under the Open API's
// lock, so it stays cheap with millions of records.
func (h *site) apiUsage(w http.ResponseWriter, r *http.Request) {
	q, err := strictQuery(r, "instance", "periods")
	if err != nil {
		writeError(w, err)
		return
	}
	n := -1 // all: one instance's
	if s, ok := q["periods"]; ok {
		if n, err = parseUsagePeriods(s); err != nil {
			writeError(w, err)
			return
		}
	}
	id, one := q["instance"]
	var out []BilledInstance
	switch {
	case one && id == "":
		writeError(w, badRequest("instance: empty; give an instance ID or leave the parameter out"))
		return
	case one:
		in, ok := h.e.BilledInstance(id)
		if !ok {
			writeError(w, notFound("no usage received for instance %q", id))
			return
		}
		switch {
		case n == 0:
			in.Periods = nil
		case n > 0 && len(in.Periods) > n:
			in.PeriodsOmitted = len(in.Periods) - n
			in.Periods = in.Periods[len(in.Periods)-n:]
		}
		out = []BilledInstance{in}
	case n < 0:
		out = h.e.BilledLatest(DefaultUsagePeriods)
	default:
		out = h.e.BilledLatest(n) // BilledTotals with 0
	}
	writeJSON(w, http.StatusOK, usageJSON{Instances: list(out)})
}

// parseUsagePeriods reads ?periods=: a count, or true or false.
func parseUsagePeriods(s string) (int, error) {
	switch s {
	case "true":
		return DefaultUsagePeriods, nil
	case "false":
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxUsagePeriods || strings.TrimLeft(s, "0123456789") != "" {
		return 0, badRequest("periods %q: want how many of each instance's latest periods to list, 0 to %d, or true (%d) or false (none)",
			s, MaxUsagePeriods, DefaultUsagePeriods)
	}
	return n, nil
}

// strictQuery reads r's query parameters, each one of names and given
// once: anything else is a 400 naming it, rather than silently ignored
// (a misspelt parameter would answer something else than asked for).
func strictQuery(r *http.Request, names ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("query: %v", err)
	}
	keys := slices.Sorted(maps.Keys(q))
	out := make(map[string]string, len(q))
	for _, k := range keys {
		switch {
		case !slices.Contains(names, k):
			return nil, badRequest("unknown query parameter %q; the parameters are %s", k, strings.Join(names, ", "))
		case len(q[k]) > 1:
			return nil, badRequest("query parameter %q given %d times; give it once", k, len(q[k]))
		}
		out[k] = q[k][0]
	}
	return out, nil
}

// apiUsageRecords answers the log of the last usage records received.
func (h *site) apiUsageRecords(w http.ResponseWriter, r *http.Request) {
	if _, err := strictQuery(r); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list(h.e.UsageRecords()))
}

func (h *site) apiOpenAPIRequests(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, list(h.e.OpenAPIRequests()))
}

func (h *site) apiTenants(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, list(h.e.Tenants()))
}

func (h *site) apiTenant(w http.ResponseWriter, r *http.Request) {
	t, ok := h.e.Tenant(r.PathValue("tenantId"))
	if !ok {
		writeError(w, notFound("no such tenant: %q", r.PathValue("tenantId")))
		return
	}
	writeJSON(w, http.StatusOK, t)
}
