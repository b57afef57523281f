package inbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/mask"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// exchange is what the pipeline learns about one call, for the reply's
// signature, the ledger and the log.
type exchange struct {
	requestID string
	body      []byte  // the raw request body, as far as it was read
	family    *Family // the family the call went to; nil when the route is unknown
	activity  string  // as the call names it; "" when unknown
	keyIndex  int     // index of the key that verified the call; -1 when none did
	out       Outcome
}

// reply is the answer to one call before it is serialised.
type reply struct {
	status int
	body   any
	code   protocol.ResultCode
	msg    string
	allow  string // the Allow header of a 405
}

func replyCode(status int, code protocol.ResultCode, msg string) reply {
	return reply{status: status, body: protocol.NewResponse(code, msg), code: code, msg: msg}
}

func internalError() reply {
	return replyCode(http.StatusOK, protocol.CodeInternal, "internal error")
}

// ServeHTTP answers one call, then records it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{requestID: requestID(r.Header.Get("X-Request-Id")), keyIndex: -1}
	log := s.log.With("request_id", ex.requestID)

	rep := s.answer(w, r, ex, log)
	body, err := protocol.Marshal(rep.body)
	if err != nil {
		log.Error("encode reply", "error", err)
		rep = internalError()
		if body, err = protocol.Marshal(rep.body); err != nil {
			panic(fmt.Sprintf("inbound: cannot encode the internal-error reply: %v", err))
		}
	}

	h := w.Header()
	h.Set("X-Request-Id", ex.requestID)
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if rep.allow != "" {
		h.Set("Allow", rep.allow)
	}
	if key := s.signingKey(ex); s.bodySign && key != "" {
		h.Set(sign.BodySignHeader, sign.BodySign(key, body))
	}
	w.WriteHeader(rep.status)
	if _, err := w.Write(body); err != nil {
		log.Warn("write reply", "error", err)
	}
	latency := time.Since(start)

	family := ""
	if ex.family != nil {
		family = ex.family.Name
	}
	s.metrics.observeCall(family, ex.activity, rep.code, latency)
	log.Info("call",
		"family", family,
		"activity", ex.activity,
		"code", string(rep.code),
		"status", rep.status,
		"latency_ms", float64(latency.Microseconds())/1000,
		"instance_id", ex.out.InstanceID,
		"repeat", ex.out.Repeat,
		"test", ex.out.Test)

	// The ledger row is written behind the reply, by the ledger writer:
	// KooGallery's clock is running, and on a kept-alive connection its
	// next call waits for this handler to return.
	c := s.ledgerCall(r, ex, rep, body, latency)
	row := ledgerRow{call: c, size: rowSize(c)}
	// When the queue is full the reply goes first, then this handler waits
	// for a place, which slows its caller down instead of holding more rows
	// in memory.
	flushed := false
	flush := func() {
		if f, ok := w.(http.Flusher); ok && !flushed {
			f.Flush()
			flushed = true
		}
	}
	s.reserveLedger(row.size, flush)
	select {
	case s.ledger <- row:
	default:
		flush()
		s.ledger <- row
	}
}

// Wait waits until the ledger rows queued before it are written. Call it
// once the handler receives no more calls (after the HTTP server's
// Shutdown), before the store closes.
func (s *Server) Wait() {
	done := make(chan struct{})
	s.ledger <- ledgerRow{written: done}
	<-done
}

// signingKey is the key that Body-Signs the reply: the one that verified
// the call, else the first of its family's type; a call that reached no
// family (an unknown path or method) is signed with the first basic key,
// so that every answer carries a Body-Sign.
func (s *Server) signingKey(ex *exchange) string {
	if ex.family == nil {
		if keys := s.keys[KeyBasic]; len(keys) > 0 {
			return keys[0]
		}
		return ""
	}
	keys := s.keys[ex.family.Keys]
	if ex.keyIndex >= 0 && ex.keyIndex < len(keys) {
		return keys[ex.keyIndex]
	}
	return keys[0]
}

// answer decides the reply. A panic anywhere below becomes 000005.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, ex *exchange, log *slog.Logger) (rep reply) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { // let net/http abort the connection
				panic(v)
			}
			log.Error("panic while answering a call", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			rep = internalError()
		}
	}()

	routes, ok := s.routes[r.URL.Path]
	if !ok {
		return replyCode(http.StatusNotFound, protocol.CodeInvalidParam, "no production interface at this path")
	}
	var families []*Family
	var methods []string
	for _, rt := range routes {
		methods = append(methods, rt.method)
		if rt.method == r.Method {
			families = rt.families
		}
	}
	if families == nil {
		// Answered, and Body-Signed, as the path's family.
		ex.family = routes[0].families[0]
		rep = replyCode(http.StatusMethodNotAllowed, protocol.CodeInvalidParam,
			fmt.Sprintf("method %s not allowed: use %s", r.Method, strings.Join(methods, " or ")))
		rep.allow = strings.Join(methods, ", ")
		return rep
	}

	limit := s.maxBody
	for _, f := range families {
		limit = max(limit, f.MaxBody)
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	ex.body = body
	// The activity picks the family, and so the key that verifies the call
	// and signs the reply, refusals included. It is read leniently here,
	// only for that; the family's decoder reads it again, strictly.
	loose, _ := url.ParseQuery(r.URL.RawQuery)
	ex.activity = peekActivity(r.Method, body, loose)
	f := pick(families, ex.activity)
	ex.family = f
	if f.ActivityAt != nil {
		// The path names the activity; an "activity" in the body does not.
		ex.activity = f.ActivityAt(r.URL.Path)
	}
	if readErr != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(readErr, &tooLarge) {
			return replyCode(http.StatusOK, protocol.CodeInvalidParam,
				fmt.Sprintf("request body larger than %d bytes", limit))
		}
		log.Warn("read request body", "error", readErr)
		return replyCode(http.StatusOK, protocol.CodeInvalidParam, "could not read the request body")
	}
	// Ambiguous parameters are refused before authentication: with two
	// signatures, which one was checked would be up to the parser.
	q, err := protocol.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return s.invalid(err, log)
	}
	c := &Call{Method: r.Method, Path: r.URL.Path, Query: q, Header: r.Header, Body: body}

	// From here on a client hanging up must not abort a transaction half
	// way: the work continues and the outcome is stored for the retry.
	ctx := WithRequestID(context.WithoutCancel(r.Context()), ex.requestID)

	idx, err := s.authenticate(ctx, f, c)
	if errors.Is(err, sign.ErrMalformedParams) && len(c.Body) > 0 {
		// A body the token cannot be computed over (a key twice, not an
		// object) cannot be authenticated at all: the strict decoder names
		// what is wrong with it, as it would after authentication. Nothing
		// in it is acted on.
		if _, derr := f.Decode(c); derr != nil {
			return s.invalid(derr, log)
		}
	}
	if err != nil {
		fail, ok := classifyAuth(err, missing(f.Scheme, c), s.window)
		if !ok {
			log.Error("nonce store unavailable", "error", err)
			return internalError()
		}
		s.metrics.authFailures.WithLabelValues(f.Name, fail.reason).Inc()
		log.Warn("call rejected", "family", f.Name, "reason", fail.reason, "activity", ex.activity)
		return replyCode(http.StatusOK, protocol.CodeAuthFailed, fail.msg)
	}
	ex.keyIndex = idx

	req, err := f.Decode(c)
	if err != nil {
		return s.invalid(err, log)
	}
	ex.activity = req.Activity()
	if !f.serves(ex.activity) {
		return replyCode(http.StatusOK, protocol.CodeInvalidParam,
			fmt.Sprintf("activity %s is not served here", ex.activity))
	}
	if err := req.Validate(); err != nil {
		return s.invalid(err, log)
	}

	out, err := f.Serve(ctx, req)
	if err != nil {
		log.Error("call failed", "family", f.Name, "activity", ex.activity, "error", err)
		return internalError()
	}
	if out.Response == nil {
		log.Error("call answered without a response", "family", f.Name, "activity", ex.activity)
		return internalError()
	}
	ex.out = out
	return reply{status: http.StatusOK, body: out.Response, code: out.Code, msg: out.Msg}
}

// pick returns the family of families that serves activity, or the first.
func pick(families []*Family, activity string) *Family {
	for _, f := range families {
		if f.serves(activity) {
			return f
		}
	}
	return families[0]
}

// invalid answers a decode or validation error with its field message.
func (s *Server) invalid(err error, log *slog.Logger) reply {
	resp := protocol.ErrorResponse(err)
	if resp.ResultCode == protocol.CodeInternal {
		log.Error("decode request", "error", err)
		return internalError()
	}
	return reply{status: http.StatusOK, body: resp, code: resp.ResultCode, msg: resp.ResultMsg}
}

// ledgerCall is the ledger row of a call.
func (s *Server) ledgerCall(r *http.Request, ex *exchange, rep reply, respBody []byte, latency time.Duration) store.Call {
	c := store.Call{
		RequestID:   ex.requestID,
		Activity:    ex.activity,
		IdemKey:     ex.out.IdemKey,
		InstanceID:  ex.out.InstanceID,
		OrderID:     ex.out.OrderID,
		OrderLineID: ex.out.OrderLineID,
		TenantID:    ex.out.TenantID,
		Test:        ex.out.Test,
		Remote:      r.RemoteAddr,
		Response:    mask.JSON(respBody),
		ResultCode:  string(rep.code),
		ResultMsg:   rep.msg,
		HTTPStatus:  rep.status,
		Latency:     latency,
		Repeat:      ex.out.Repeat,
		CreatedAt:   s.now(),
	}
	if ex.family != nil {
		c.Interface = ex.family.Name
	}
	switch {
	case len(ex.body) > 0:
		c.Request = mask.JSON(ex.body)
	case r.URL.RawQuery != "":
		// A GET carries its parameters in the query, masked by name as
		// a body's fields are (SaaS V1: authToken, the buyer's encrypted
		// mobilePhone and email, userName).
		c.Request = mask.Query(r.URL.RawQuery)
	}
	return c
}
