// Package openapitest is a working imitation of KooGallery's Open API for
// tests and for the emulator: real HTTP, APIG signatures verified the way
// the gateway does, Query Order answered for orders you add and for the
// debug (MOCK*) orders, and faults (error statuses, delays, dropped
// connections) you can switch on.
//
// Handler is the imitation itself and can be mounted anywhere; Server runs
// it on an httptest.Server for the length of a test.
package openapitest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/openapi"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// QueryOrderPath is the path Query Order is served at.
const QueryOrderPath = openapi.QueryOrderPath

// Fault makes the imitation misbehave. The zero Fault is "behave".
type Fault struct {
	// Status, when not 0, is answered instead of the real answer, with
	// Body or a body matching the status (5xx: CBC.0999; 429: APIG.0308;
	// 401: APIGW.0301; others: CBC.0199).
	Status int
	// Delay is waited before answering (or dropping); the wait ends early
	// when the client goes away.
	Delay time.Duration
	// Count is how many requests the fault affects; 0 means every request
	// until SetFault(Fault{}) clears it.
	Count int
	// Drop closes the connection without any answer.
	Drop bool
	// Body, when not empty, is the answer body for Status.
	Body string
}

func (f Fault) active() bool { return f.Status != 0 || f.Delay > 0 || f.Drop }

// Handler answers Open API requests signed with one AK/SK pair. It is safe
// for concurrent use.
type Handler struct {
	ak, sk string

	mu     sync.Mutex
	now    func() time.Time
	orders map[string]protocol.OrderInfo
	fault  Fault
	left   int // requests the fault still affects when fault.Count > 0
	calls  int // Query Order requests, every outcome
}

// NewHandler returns a Handler that accepts requests signed with ak/sk.
func NewHandler(ak, sk string) *Handler {
	return &Handler{ak: ak, sk: sk, now: time.Now, orders: make(map[string]protocol.OrderInfo)}
}

// SetClock replaces the clock used to check X-Sdk-Date and to date the
// MOCK* orders. Default time.Now.
func (h *Handler) SetClock(now func() time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = now
}

// AddOrder makes Query Order answer info for info.OrderID, replacing an
// order added before under the same ID (a MOCK* ID overrides the canned
// data).
func (h *Handler) AddOrder(info protocol.OrderInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.orders[string(info.OrderID)] = info
}

// SetFault switches f on for the next f.Count requests (every request when
// Count is 0); SetFault(Fault{}) switches faults off. Faults apply to
// every path, before the signature is checked, like a failing gateway.
func (h *Handler) SetFault(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fault, h.left = f, f.Count
}

// QueryOrderCalls returns how many requests reached the Query Order path,
// whatever they were answered (faults and rejected signatures included).
func (h *Handler) QueryOrderCalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// takeFault returns the fault to apply to one request, counting it.
func (h *Handler) takeFault(path string) (Fault, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if path == QueryOrderPath {
		h.calls++
	}
	f := h.fault
	if !f.active() {
		return Fault{}, h.now()
	}
	if f.Count > 0 {
		h.left--
		if h.left <= 0 {
			h.fault = Fault{}
		}
	}
	return f, h.now()
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, now := h.takeFault(r.URL.Path)
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.Drop {
		dropConnection(w)
		return
	}
	if f.Status != 0 {
		writeFault(w, f)
		return
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	_, err = sign.VerifyAPIG(r, body, func(ak string) (string, bool) {
		return h.sk, ak == h.ak
	}, now, 0)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, gatewayError{"APIGW.0301", authMessage(err)})
		return
	}

	switch {
	case r.URL.Path != QueryOrderPath:
		writeJSON(w, http.StatusNotFound, gatewayError{"APIGW.0101", "The API does not exist or has not been published in the environment"})
	case r.Method != http.MethodGet:
		writeJSON(w, http.StatusNotFound, gatewayError{"APIGW.0101", "The API does not exist or has not been published in the environment"})
	default:
		h.queryOrder(w, r, now)
	}
}

// queryOrder answers Query Order.
func (h *Handler) queryOrder(w http.ResponseWriter, r *http.Request, now time.Time) {
	q := r.URL.Query()
	orderID, lineID := q.Get("orderId"), q.Get("orderLineId")
	if orderID == "" {
		writeJSON(w, http.StatusBadRequest, result{ResultCode: protocol.CBCInvalidParam, ResultMsg: "orderId is required"})
		return
	}
	h.mu.Lock()
	info, ok := h.orders[orderID]
	h.mu.Unlock()
	if !ok {
		info, ok = MockOrder(orderID, now)
	}
	if !ok {
		writeJSON(w, http.StatusBadRequest, result{ResultCode: protocol.CBCInvalidParam, ResultMsg: "invalid orderId"})
		return
	}
	if _, found := info.Line(lineID); lineID != "" && !found {
		writeJSON(w, http.StatusBadRequest, result{ResultCode: protocol.CBCInvalidParam, ResultMsg: "invalid orderLineId"})
		return
	}
	writeJSON(w, http.StatusOK, result{ResultCode: protocol.MKTSuccess, ResultMsg: "Success", OrderInfo: &info})
}

// result is the Query Order reply.
type result struct {
	ResultCode string              `json:"resultCode"`
	ResultMsg  string              `json:"resultMsg"`
	OrderInfo  *protocol.OrderInfo `json:"orderInfo,omitempty"`
}

// gatewayError is the API gateway's own reply.
type gatewayError struct {
	Code string `json:"error_code"`
	Msg  string `json:"error_msg"`
}

// authMessage words a signature failure like the gateway.
func authMessage(err error) string {
	const prefix = "Incorrect IAM authentication information: "
	switch {
	case errors.Is(err, sign.ErrAPIGUnknownAK):
		return prefix + "ak not found"
	case errors.Is(err, sign.ErrAPIGDate):
		return prefix + "x-sdk-date is invalid or expired"
	case errors.Is(err, sign.ErrAPIGMalformed):
		return prefix + "Authorization format incorrect"
	default:
		return prefix + "verify aksk signature fail"
	}
}

func writeFault(w http.ResponseWriter, f Fault) {
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return
	}
	switch {
	case f.Status >= 500:
		writeJSON(w, f.Status, result{ResultCode: protocol.CBCInternalError, ResultMsg: "internal error"})
	case f.Status == http.StatusTooManyRequests:
		writeJSON(w, f.Status, gatewayError{"APIG.0308", "The throttling threshold has been reached"})
	case f.Status == http.StatusUnauthorized:
		writeJSON(w, f.Status, gatewayError{"APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail"})
	default:
		writeJSON(w, f.Status, result{ResultCode: protocol.CBCParamError, ResultMsg: "parameter error"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort the handler, which resets the stream.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// Server is a Handler served over real HTTP by an httptest.Server.
type Server struct {
	*Handler
	srv *httptest.Server
}

// NewServer starts a Server accepting ak/sk; it is closed when the test
// ends.
func NewServer(t testing.TB, ak, sk string) *Server {
	t.Helper()
	s := &Server{Handler: NewHandler(ak, sk)}
	s.srv = httptest.NewServer(s.Handler)
	t.Cleanup(s.Close)
	return s
}

// URL returns the base URL to give the client, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.srv.URL }

// Close shuts the server down, cutting open connections (a delayed
// answer in progress ends). It is safe to call more than once.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}
