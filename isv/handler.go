package isv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	"unicode/utf8"

	"github.com/koobridge/koobridge/internal/lifecycle"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// ledgerTimeout bounds the ledger write that follows every reply.
const ledgerTimeout = 5 * time.Second

// exchange is what the handler learns about one call, for the reply's
// signature, the ledger and the log.
type exchange struct {
	requestID string
	body      []byte // the raw request body, as far as it was read
	activity  string // as the body names it; "" when unknown
	keyIndex  int    // index of the key that verified the call; -1 when none did
	test      bool
	out       lifecycle.Outcome
}

// reply is the answer to one call before it is serialised.
type reply struct {
	status int
	body   any
	code   protocol.ResultCode
	msg    string
}

func replyCode(status int, code protocol.ResultCode, msg string) reply {
	return reply{status: status, body: protocol.NewResponse(code, msg), code: code, msg: msg}
}

func internalError() reply {
	return replyCode(http.StatusOK, protocol.CodeInternal, "internal error")
}

// serveHTTP answers one production-interface call, then records it.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex := &exchange{requestID: requestID(r.Header.Get("X-Request-Id")), keyIndex: -1}
	log := s.log.With("request_id", ex.requestID)

	rep := s.answer(w, r, ex, log)
	body, err := protocol.Marshal(rep.body)
	if err != nil {
		log.Error("encode reply", "error", err)
		rep = internalError()
		if body, err = protocol.Marshal(rep.body); err != nil {
			panic(fmt.Sprintf("isv: cannot encode the internal-error reply: %v", err))
		}
	}

	h := w.Header()
	h.Set("X-Request-Id", ex.requestID)
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if rep.status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost)
	}
	if !s.disableBodySign {
		key := s.keys[0]
		if ex.keyIndex >= 0 {
			key = s.keys[ex.keyIndex]
		}
		h.Set(sign.BodySignHeader, sign.BodySign(key, body))
	}
	w.WriteHeader(rep.status)
	if _, err := w.Write(body); err != nil {
		log.Warn("write reply", "error", err)
	}
	// Send the reply before the ledger write rather than when the handler
	// returns: KooGallery's clock is running.
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	latency := time.Since(start)

	s.metrics.observeCall(ex.activity, rep.code, latency)
	log.Info("call",
		"activity", ex.activity,
		"code", string(rep.code),
		"status", rep.status,
		"latency_ms", float64(latency.Microseconds())/1000,
		"instance_id", ex.out.InstanceID,
		"repeat", ex.out.Repeat,
		"test", ex.test)
	s.record(r, ex, rep, body, latency, log)
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

	if r.Method != http.MethodPost {
		return replyCode(http.StatusMethodNotAllowed, protocol.CodeInvalidParam,
			fmt.Sprintf("method %s not allowed: use POST", r.Method))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	ex.body = body
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return replyCode(http.StatusOK, protocol.CodeInvalidParam,
				fmt.Sprintf("request body larger than %d bytes", s.maxBody))
		}
		log.Warn("read request body", "error", err)
		return replyCode(http.StatusOK, protocol.CodeInvalidParam, "could not read the request body")
	}

	// From here on a client hanging up must not abort a transaction half
	// way: the work continues and the outcome is stored for the retry.
	ctx := withRequestID(context.WithoutCancel(r.Context()), ex.requestID)

	q := r.URL.Query()
	idx, err := s.verifier.VerifyV2(ctx, q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), body)
	if err != nil {
		ex.activity = peekActivity(body)
		fail, ok := classifyAuth(err, missingParams(q), s.window)
		if !ok {
			log.Error("nonce store unavailable", "error", err)
			return internalError()
		}
		s.metrics.authFailures.WithLabelValues(fail.reason).Inc()
		log.Warn("call rejected", "reason", fail.reason, "activity", ex.activity)
		return replyCode(http.StatusOK, protocol.CodeAuthFailed, fail.msg)
	}
	ex.keyIndex = idx

	req, err := protocol.DecodeV2(body)
	if err != nil {
		ex.activity = peekActivity(body)
		return s.invalid(err, log)
	}
	ex.activity = req.Activity()
	ex.test = req.IsTest()
	if !servedActivities[req.Activity()] {
		return replyCode(http.StatusOK, protocol.CodeInvalidParam,
			fmt.Sprintf("activity %s is not served here", req.Activity()))
	}
	if err := req.Validate(); err != nil {
		return s.invalid(err, log)
	}

	out, err := s.svc.Do(ctx, req)
	if err != nil {
		log.Error("call failed", "activity", ex.activity, "error", err)
		return internalError()
	}
	if out.Response == nil {
		log.Error("call answered without a response", "activity", ex.activity)
		return internalError()
	}
	ex.out = out
	// MOCK* orders are debug calls even without testFlag (saas-v2.md §6.5).
	ex.test = ex.test || strings.HasPrefix(out.OrderID, "MOCK")
	return reply{status: http.StatusOK, body: out.Response, code: out.Code, msg: out.Msg}
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

// record appends the call to the ledger. A failure is logged and counted;
// the reply is already on its way.
func (s *Server) record(r *http.Request, ex *exchange, rep reply, respBody []byte, latency time.Duration, log *slog.Logger) {
	c := store.Call{
		RequestID:   ex.requestID,
		Interface:   "v2",
		Activity:    ex.activity,
		IdemKey:     ex.out.IdemKey,
		InstanceID:  ex.out.InstanceID,
		OrderID:     ex.out.OrderID,
		OrderLineID: ex.out.OrderLineID,
		Test:        ex.test,
		Remote:      r.RemoteAddr,
		Response:    maskJSON(respBody),
		ResultCode:  string(rep.code),
		ResultMsg:   rep.msg,
		HTTPStatus:  rep.status,
		Latency:     latency,
		Repeat:      ex.out.Repeat,
		CreatedAt:   s.now(),
	}
	if len(ex.body) > 0 {
		c.Request = maskJSON(ex.body)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), ledgerTimeout)
	defer cancel()
	if _, err := s.st.InsertCall(ctx, c); err != nil {
		s.metrics.ledgerErrors.Inc()
		log.Error("ledger write failed", "error", err)
	}
}

// missingParams names the signature query parameters that are absent.
func missingParams(q url.Values) []string {
	var missing []string
	for _, name := range []string{"signature", "timestamp", "nonce"} {
		if q.Get(name) == "" {
			missing = append(missing, name)
		}
	}
	return missing
}

// maxActivityLen caps an activity read from an unverified or undecodable
// body before it goes to the ledger and the log.
const maxActivityLen = 64

// peekActivity reads the activity field of a body that was not (or could
// not be) decoded, for the ledger only.
func peekActivity(body []byte) string {
	var v struct {
		Activity any `json:"activity"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	a, ok := v.Activity.(string)
	if !ok {
		return ""
	}
	if utf8.RuneCountInString(a) > maxActivityLen {
		a = string([]rune(a)[:maxActivityLen])
	}
	return strings.ToValidUTF8(a, "\uFFFD")
}

// maxRequestIDLen is the longest X-Request-Id taken from a caller.
const maxRequestIDLen = 64

// requestID returns the caller's X-Request-Id when it is short and made of
// safe characters (it goes into logs and the ledger), a fresh one
// otherwise.
func requestID(h string) string {
	if h != "" && len(h) <= maxRequestIDLen && strings.IndexFunc(h, unsafeIDRune) < 0 {
		return h
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func unsafeIDRune(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	case r == '-', r == '_', r == '.', r == ':':
		return false
	}
	return true
}
