package mockapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/koobridge/koobridge/protocol"
)

// MaxRequests is how many requests Requests remembers; older ones are
// forgotten.
const MaxRequests = 1000

// maxLoggedBody bounds how much of an answer is kept to read its code
// from; every answer the imitation writes itself is far smaller.
const maxLoggedBody = 64 << 10

// Fault kinds as recorded in Request.Fault.
const (
	FaultNone   = ""
	FaultStatus = "status"
	FaultDelay  = "delay"
	FaultDrop   = "drop"
)

// Request is one request the Handler received, as the request log keeps
// it. Headers and bodies are not kept, so neither the Authorization
// header nor any signature or key ends up in the log.
type Request struct {
	At       time.Time // when it arrived, by the handler's clock (SetClock)
	Method   string
	Path     string
	Query    string // raw query, without "?"
	Status   int    // HTTP status answered; 0 when the connection was dropped or the client left
	Code     string // error_code or resultCode answered, or ""
	Fault    string // FaultNone, FaultStatus, FaultDelay, FaultDrop or a usage failure (FaultUsageError…): the fault that decided the answer
	Duration time.Duration
}

// Requests returns the last MaxRequests requests the handler received,
// oldest first, whatever their outcome (faults and rejections included).
func (h *Handler) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests.list()
}

func (h *Handler) logRequest(req Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests.add(req)
}

// logWriter remembers the status and the start of the body answered.
type logWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

// Unwrap lets http.ResponseController reach the connection (Drop).
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *logWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if room := maxLoggedBody - w.body.Len(); room > 0 {
		w.body.Write(b[:min(len(b), room)])
	}
	return w.ResponseWriter.Write(b)
}

// code returns the error_code or resultCode of the answer, or "" when it
// has none (or is not JSON, like an HTML error page).
func (w *logWriter) code() string {
	var v struct {
		ErrorCode  protocol.FlexString `json:"error_code"`
		ResultCode protocol.FlexString `json:"resultCode"`
	}
	if json.Unmarshal(w.body.Bytes(), &v) != nil {
		return ""
	}
	if v.ErrorCode != "" {
		return string(v.ErrorCode)
	}
	return string(v.ResultCode)
}
