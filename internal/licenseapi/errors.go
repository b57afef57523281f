package licenseapi

import (
	"encoding/json"
	"errors"
	"fmt"
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
// order they are matched. message is the fixed text of the answer, %s
// the license code the client sent: the error's own text may carry what
// KooGallery or its gateway said, or the Open API's address, which are
// for koobridge's log, not for software in the field. Only an invalid
// request is answered with the error's text (message ""): it names the
// client's own input.
var domainErrors = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{license.ErrInvalid, http.StatusBadRequest, codeInvalid, ""},
	{license.ErrUnknown, http.StatusNotFound, codeUnknown, "KooGallery does not know license code %s"},
	{license.ErrNotActivated, http.StatusConflict, codeNotActivated,
		"license code %s is not activated for this device: activate it first"},
	{license.ErrRefused, http.StatusConflict, codeRefused,
		"KooGallery refused to activate license code %s (the buyer may not have received it yet)"},
	{license.ErrNoSeat, http.StatusConflict, codeNoSeat, "every seat of license code %s is taken by other devices"},
	{license.ErrUnavailable, http.StatusServiceUnavailable, codeUnavailable,
		"KooGallery cannot be reached to answer for license code %s, and no answer recent enough is cached: try again later"},
}

// classify returns the answer of an error of Activate or Check about
// code; ok is false for an error package license does not name (an
// internal one).
func classify(err error, code string) (status int, category, message string, ok bool) {
	for _, d := range domainErrors {
		if errors.Is(err, d.err) {
			if d.message == "" {
				return d.status, d.code, err.Error(), true
			}
			return d.status, d.code, fmt.Sprintf(d.message, code), true
		}
	}
	return http.StatusInternalServerError, codeInternal, "internal error: the license service could not answer", false
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
