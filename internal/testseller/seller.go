// Package testseller is a small, independent SaaS V2 seller (production
// interface, saas-v2.md §2–§6) kept in memory, with faults that can be
// switched on one at a time. It exists to test the conformance suite: the
// suite must pass against the correct seller and fail, naming the fault,
// against a broken one.
//
// It deliberately shares nothing with koobridge's own server beyond the
// wire types of package protocol and the algorithms of package
// protocol/sign, so that a bug in the real server is not repeated here.
// That is why it checks the signature window and nonces with its own few
// lines rather than with sign.Verifier, which koobridge serve uses: the
// suite's authentication cases must not be judged against the code they
// test. It never calls Query Order.
package testseller

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// maxBody is the largest request body accepted; larger ones answer 000002.
const maxBody = 1 << 20

// Faults switches misbehaviours on. The zero Faults is a correct seller.
type Faults struct {
	// SkipSignature accepts any signature, a stale timestamp and a
	// replayed nonce.
	SkipSignature bool
	// NewInstanceEveryCall makes newInstance create a new instanceId on
	// every call, even for a known order line.
	NewInstanceEveryCall bool
	// NoBodySign leaves the Body-Sign header off replies.
	NoBodySign bool
	// ReleaseTwiceFails answers 000003 to releasing an already released
	// instance.
	ReleaseTwiceFails bool
	// UnknownInstanceOK answers 000000 to refreshInstance,
	// updateInstanceStatus and releaseInstance of an instance that never
	// existed.
	UnknownInstanceOK bool
	// SkipValidation answers 000000 to requests with missing or overlong
	// fields and to unknown activities. An invalid newInstance still
	// creates an instance, as a seller that checks nothing would.
	// Malformed JSON still answers 000002.
	SkipValidation bool
	// Slow is slept before every answer, to exercise the caller's
	// deadline. The sleep ends early when the caller goes away.
	Slow time.Duration
	// Async makes newInstance answer 000004, and queryInstance answer
	// 000004 (without appInfo) for an instance that has been queried fewer
	// than two times before, then 000000 with appInfo.
	Async bool
	// WrongContentType replies with Content-Type text/plain.
	WrongContentType bool
}

// Seller answers the V2 production interface on any path. It is safe for
// concurrent use.
type Seller struct {
	key    string
	faults Faults
	usage  protocol.Decimal // the usageValue reported for pay-per-use instances

	mu        sync.Mutex
	instances map[string]*instance // by instanceId
	lines     map[orderLine]string // newInstance idempotency: order line → instanceId
	created   int
	nonces    nonceMemory
}

// New returns a Seller that verifies requests and signs replies with key
// and misbehaves as f says.
func New(key string, f Faults) *Seller {
	usage, err := protocol.ParseDecimal("1.5")
	if err != nil {
		panic(fmt.Sprintf("testseller: usage value: %v", err)) // a constant; cannot fail
	}
	return &Seller{
		key:       key,
		faults:    f,
		usage:     usage,
		instances: make(map[string]*instance),
		lines:     make(map[orderLine]string),
		nonces:    nonceMemory{expires: make(map[string]time.Time)},
	}
}

// Instances returns how many instances were ever created.
func (s *Seller) Instances() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// ServeHTTP answers one production-interface call. Every answer is HTTP
// 200 with a JSON body carrying resultCode.
func (s *Seller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := s.answer(w, r)
	body, err := protocol.Marshal(reply)
	if err != nil {
		body = []byte(`{"resultCode":"000005","resultMsg":"cannot encode the reply"}`)
	}
	if s.faults.Slow > 0 {
		t := time.NewTimer(s.faults.Slow)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	h := w.Header()
	if s.faults.WrongContentType {
		h.Set("Content-Type", "text/plain")
	} else {
		h.Set("Content-Type", "application/json;charset=UTF-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if !s.faults.NoBodySign {
		h.Set(sign.BodySignHeader, sign.BodySign(s.key, body))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) // the caller may be gone; nothing to do about it
}

// answer decides the reply to one call.
func (s *Seller) answer(w http.ResponseWriter, r *http.Request) any {
	if r.Method != http.MethodPost {
		return protocol.NewResponse(protocol.CodeInvalidParam, "method "+r.Method+" not allowed: use POST")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return protocol.NewResponse(protocol.CodeInvalidParam, "request body larger than 1 MiB")
		}
		return protocol.NewResponse(protocol.CodeInvalidParam, "cannot read the request body")
	}
	if !s.faults.SkipSignature {
		q := r.URL.Query()
		if err := s.verify(q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), body, time.Now()); err != nil {
			return protocol.NewResponse(protocol.CodeAuthFailed, err.Error())
		}
	}
	return s.dispatch(body)
}

// dispatch decodes, validates and carries out a verified call.
func (s *Seller) dispatch(body []byte) any {
	req, err := protocol.DecodeV2(body)
	if err != nil {
		var fe *protocol.FieldError // unknown or missing activity
		if s.faults.SkipValidation && errors.As(err, &fe) {
			return protocol.NewResponse(protocol.CodeSuccess, "")
		}
		return protocol.ErrorResponse(err)
	}
	if err := req.Validate(); err != nil {
		if !s.faults.SkipValidation {
			return protocol.ErrorResponse(err)
		}
		if req.Activity() != protocol.ActivityNewInstance {
			return protocol.NewResponse(protocol.CodeSuccess, "")
		}
	}
	switch req := req.(type) {
	case protocol.NewInstanceRequest:
		return s.newInstance(req)
	case protocol.QueryInstanceRequest:
		return s.queryInstance(req)
	case protocol.RefreshInstanceRequest:
		return s.refreshInstance(req)
	case protocol.UpdateInstanceStatusRequest:
		return s.updateInstanceStatus(req)
	case protocol.ReleaseInstanceRequest:
		return s.releaseInstance(req)
	case protocol.UpgradeInstanceRequest:
		return s.upgradeInstance(req)
	case protocol.ChangeInstanceCheckRequest:
		return s.changeInstanceCheck(req)
	}
	// getLicenseAsync, orderNotify: decoded by protocol but not V2 SaaS.
	if s.faults.SkipValidation {
		return protocol.NewResponse(protocol.CodeSuccess, "")
	}
	return protocol.NewResponse(protocol.CodeInvalidParam, "activity "+req.Activity()+" is not served here")
}
