// Package mockapi is a working imitation of KooGallery's Open API, for
// the emulator, for "koobridge serve --dev" and for tests: real HTTP, APIG
// signatures verified the way the gateway does, Query Order answered for
// orders you add and for the debug (MOCK*) orders, the new and old usage
// pushes (records kept for inspection), the license Open APIs (activate
// and query v1 and v2, software usage, the license upload) on license
// codes and applications you register, a log of the last requests, and
// faults (error statuses, delays, dropped connections) you can switch on.
//
// Handler is the imitation; mount it anywhere. MockOrder answers the
// debug orders without HTTP. Package internal/openapi/openapitest runs a
// Handler on an httptest.Server for the length of a test.
package mockapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// QueryOrderPath is the path Query Order is served at (license-openapi.md
// §E.2). It is written here, not taken from koobridge's Open API client,
// so that a wrong path in the client is caught by the imitation instead of
// mirrored in it.
const QueryOrderPath = "/api/mkp-openapi-public/global/v1/order/query"

// Fault makes the imitation misbehave. The zero Fault is "behave".
type Fault struct {
	// Status, when not 0, is answered instead of the real answer, with
	// Body or a body matching the status (5xx: CBC.0999; 429: APIG.0308;
	// 401: APIGW.0301; others: CBC.0199). On the usage push paths the
	// body is error_code/error_msg, with MKT.0999 and MKT.0199 in place of
	// the CBC codes; on the license paths it is error_code/error_msg as
	// SetLicenseFault says.
	Status int
	// Delay is waited before answering (or dropping); the wait ends early
	// when the client goes away.
	Delay time.Duration
	// Count is how many requests (for Path, when set) the fault affects;
	// 0 means every request until SetFault(Fault{}) clears it.
	Count int
	// Drop closes the connection without any answer.
	Drop bool
	// Body, when not empty, is the answer body for Status.
	Body string
	// Path, when not empty, limits the fault to requests for that path
	// (e.g. UsagePath); requests for other paths are answered normally
	// and do not count against Count.
	Path string
	// Code, when not empty, is the error_code answered with Status on the
	// license endpoints (SetLicenseFault), e.g. APIGW.0201 with 502.
	Code string
}

func (f Fault) active() bool { return f.Status != 0 || f.Delay > 0 || f.Drop }

// maxBody bounds the request bodies read; a full usage push of 1000
// records is a few hundred KiB.
const maxBody = 4 << 20

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

	usageKey           string
	requireAPIGOnUsage bool
	instanceLookup     func(instanceID string) (UsageInstance, bool)
	usageFailRate      float64
	usage              ring[UsageRecord]
	// billed is every kept record and the duplicate keys, never
	// forgotten (the ring above is only the log).
	billed ledger

	requests ring[Request]

	// lic is the license side: codes, applications, records, faults.
	lic licenseState
}

// NewHandler returns a Handler that accepts requests signed with ak/sk.
func NewHandler(ak, sk string) *Handler {
	return &Handler{
		ak: ak, sk: sk, now: time.Now, orders: make(map[string]protocol.OrderInfo),
		usage:    newRing[UsageRecord](MaxUsageRecords),
		billed:   newLedger(),
		requests: newRing[Request](MaxRequests),
		lic:      newLicenseState(),
	}
}

// SetClock replaces the clock used to check X-Sdk-Date and the usage ts,
// to date the MOCK* orders, usage records and logged requests, and to tell
// whether a begin_time is too old. Default time.Now.
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
// Count is 0) for f.Path (every path when empty); SetFault(Fault{})
// switches faults off. Faults apply before any signature is checked, like
// a failing gateway.
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

// takeFault returns the fault to apply to one request, counting it, and
// the usage failure (SetUsageFailRate) when no fault applies.
func (h *Handler) takeFault(path string) (Fault, string, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if path == QueryOrderPath {
		h.calls++
	}
	f := h.fault
	if !f.active() || f.Path != "" && f.Path != path {
		if f = h.takeLicenseFaultLocked(path); f.active() {
			return f, "", h.now()
		}
		return f, h.takeUsageFaultLocked(path), h.now()
	}
	if f.Count > 0 {
		h.left--
		if h.left <= 0 {
			h.fault = Fault{}
		}
	}
	return f, "", h.now()
}

// ServeHTTP implements http.Handler. Every request is added to the
// request log.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	f, usageFault, now := h.takeFault(r.URL.Path)
	lw := &logWriter{ResponseWriter: w}
	entry := Request{At: now, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Fault: cmp.Or(faultKind(f), usageFault)}
	// Deferred so that a dropped HTTP/2 stream (a panic) is logged too.
	defer func() {
		entry.Status, entry.Code, entry.Duration = lw.status, lw.code(), time.Since(start)
		h.logRequest(entry)
	}()
	h.serve(lw, r, f, usageFault, now)
}

// faultKind names the fault that decides the answer.
func faultKind(f Fault) string {
	switch {
	case f.Drop:
		return FaultDrop
	case f.Status != 0:
		return FaultStatus
	case f.Delay > 0:
		return FaultDelay
	}
	return FaultNone
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, f Fault, usageFault string, now time.Time) {
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
		writeFault(w, f, r.URL.Path)
		return
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return
	}
	if len(body) > maxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, gatewayError{protocol.APIGWBadRequest, "Request entity too large"})
		return
	}

	// The new usage push is signed with the usage key; APIG AK/SK on it
	// is UNCONFIRMED, so it is checked only when sent or required.
	if r.URL.Path != UsagePath || r.Header.Get("Authorization") != "" || h.apigRequiredOnUsage() {
		_, err = sign.VerifyAPIG(r, body, func(ak string) (string, bool) {
			return h.sk, ak == h.ak
		}, now, 0)
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, gatewayError{protocol.APIGWAuthFailed, authMessage(err)})
			return
		}
	}

	switch {
	case isLicensePath(r.URL.Path):
		h.serveLicense(w, r, body)
	case isUploadPath(r.URL.Path) && r.Method == http.MethodPost:
		h.upload(w, r, body)
	case r.URL.Path == QueryOrderPath && r.Method == http.MethodGet:
		h.queryOrder(w, r, now)
	case r.URL.Path == UsagePath && r.Method == http.MethodPost:
		h.usagePush(w, r, UsageAPINew, body, now, usageFault)
	case r.URL.Path == OldUsagePath && r.Method == http.MethodPost:
		h.usagePush(w, r, UsageAPIOld, body, now, usageFault)
	default:
		writeJSON(w, http.StatusNotFound, gatewayError{protocol.APIGWAPINotFound, "The API does not exist or has not been published in the environment"})
	}
}

func (h *Handler) apigRequiredOnUsage() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requireAPIGOnUsage
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

// gatewayError is an error_code/error_msg reply: the API gateway's own,
// and every usage push answer.
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

func writeFault(w http.ResponseWriter, f Fault, path string) {
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, f.Body)
		return
	}
	if isLicensePath(path) || isUploadPath(path) {
		writeJSON(w, f.Status, licenseFaultBody(f, path))
		return
	}
	usage := path == UsagePath || path == OldUsagePath
	switch {
	case usage && f.Status >= 500:
		writeJSON(w, f.Status, gatewayError{protocol.MKTInternalError, "internal error"})
	case f.Status >= 500:
		writeJSON(w, f.Status, result{ResultCode: protocol.CBCInternalError, ResultMsg: "internal error"})
	case f.Status == http.StatusTooManyRequests:
		writeJSON(w, f.Status, gatewayError{"APIG.0308", "The throttling threshold has been reached"})
	case f.Status == http.StatusUnauthorized:
		writeJSON(w, f.Status, gatewayError{"APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail"})
	case usage:
		writeJSON(w, f.Status, gatewayError{protocol.MKTParamError, "request parameter error"})
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
