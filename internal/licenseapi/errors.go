package licenseapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/license"
)

// The "error" of an error answer: a category a client can branch on; the
// HTTP status is the precise one (400, 413 and 415 are all
// invalid_request: the request is wrong and retrying it will not help).
const (
	codeInvalid      = "invalid_request"
	codeUnknown      = "unknown_license"
	codeNotActivated = "not_activated"
	codeRefused      = "refused"
	codeNoSeat       = "no_seat"
	codeRateLimited  = "rate_limited"
	codeUnavailable  = "unavailable"
	codeNotFound     = "not_found"
	codeMethod       = "method_not_allowed"
	codeInternal     = "internal"
)

// unavailableRetry is the Retry-After of a 503: KooGallery's Open API or
// the database did not answer; a minute is enough for a blip and keeps
// a fleet of clients from hammering a koobridge that waits on it.
const unavailableRetry = time.Minute

// domainErrors maps the errors of package license to answers, in the
// order they are matched.
var domainErrors = []struct {
	err    error
	status int
	code   string
}{
	{license.ErrInvalid, http.StatusBadRequest, codeInvalid},
	{license.ErrUnknown, http.StatusNotFound, codeUnknown},
	{license.ErrNotActivated, http.StatusConflict, codeNotActivated},
	{license.ErrRefused, http.StatusConflict, codeRefused},
	{license.ErrNoSeat, http.StatusConflict, codeNoSeat},
	{license.ErrUnavailable, http.StatusServiceUnavailable, codeUnavailable},
}

// classify returns the answer of an error of Activate or Check; ok is
// false for an error package license does not name (an internal one).
func classify(err error) (status int, code string, ok bool) {
	for _, d := range domainErrors {
		if errors.Is(err, d.err) {
			return d.status, d.code, true
		}
	}
	return http.StatusInternalServerError, codeInternal, false
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError writes an error answer.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorBody{Error: code, Message: message})
}

// writeRetry writes an error answer that tells when to try again, in
// whole seconds (at least 1).
func writeRetry(w http.ResponseWriter, status int, code, message string, after time.Duration) {
	secs := int64((after + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeError(w, status, code, message)
}

// writeJSON writes v as the JSON answer; answers are never cached, as
// each is about one moment.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"cannot encode the answer"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
