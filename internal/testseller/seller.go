// Package testseller is a small, independent SaaS V2 seller (production
// interface, saas-v2.md §2–§6) kept in memory, that also takes order
// notifications (orderNotify, license-openapi.md §F) on the same path,
// with faults that can be switched on one at a time. It exists to test
// the conformance suite: the suite must pass against the correct seller
// and fail, naming the fault, against a broken one.
//
// Like a Seller Center account it holds one key per interface type
// (Keys): the basic key verifies the V2 activities and signs their
// answers, the general key orderNotify and its answer. It reads the
// activity of a call before verifying it only to choose the key; a call
// signed with the other key fails.
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
	"encoding/json"
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
	// ConcurrentProcessing, when positive, makes the first newInstance or
	// orderNotify of an order line take this long before it answers
	// 000000, and answers a call for the same line that comes meanwhile
	// 000004 (still processing; newInstance with the same instanceId).
	// Each answer is right on its own, but concurrent duplicates get
	// different resultCodes (saas-v2.md §6.1).
	ConcurrentProcessing time.Duration

	// Order notification (orderNotify, license-openapi.md §F).

	// OrderNotifyBasicKeyBodySign signs the Body-Sign of orderNotify
	// answers with the basic key instead of the general key.
	OrderNotifyBasicKeyBodySign bool
	// OrderNotifyAnyKey accepts an orderNotify signed with the basic key
	// as well as one signed with the general key.
	OrderNotifyAnyKey bool
	// OrderNotifyOptionalTestFlag accepts an orderNotify without testFlag
	// (read as "0"); testFlag is mandatory (license-openapi.md Addenda).
	OrderNotifyOptionalTestFlag bool
	// OrderNotifyRepeatDiffers answers an orderNotify for an order line
	// already notified 000005 ("already notified") instead of 000000.
	OrderNotifyRepeatDiffers bool
}

// Keys are the keys of a Seller, one per interface type it serves
// (saas-v2.md §2.1).
type Keys struct {
	// Basic is the key bound to the basic interfaces: the V2 activities.
	Basic string
	// General is the key bound to the general interfaces (通用接口):
	// orderNotify. Empty means Basic.
	General string
}

// Seller answers the V2 production interface and orderNotify on any path.
// It is safe for concurrent use.
type Seller struct {
	key        string // the basic key
	generalKey string
	faults     Faults
	usage      protocol.Decimal // the usageValue reported for pay-per-use instances

	mu        sync.Mutex
	instances map[string]*instance   // by instanceId
	lines     map[orderLine]string   // newInstance idempotency: order line → instanceId
	pending   map[orderLine]bool     // first calls still processing (ConcurrentProcessing)
	notified  map[orderLine]struct{} // order lines orderNotify told of
	created   int
	nonces    nonceMemory
}

// New returns a Seller that verifies requests and signs replies with key,
// for every interface type, and misbehaves as f says.
func New(key string, f Faults) *Seller {
	return NewWithKeys(Keys{Basic: key}, f)
}

// NewWithKeys returns a Seller that verifies requests and signs replies
// with the key of each call's interface type and misbehaves as f says.
func NewWithKeys(k Keys, f Faults) *Seller {
	usage, err := protocol.ParseDecimal("1.5")
	if err != nil {
		panic(fmt.Sprintf("testseller: usage value: %v", err)) // a constant; cannot fail
	}
	general := k.General
	if general == "" {
		general = k.Basic
	}
	return &Seller{
		key:        k.Basic,
		generalKey: general,
		faults:     f,
		usage:      usage,
		instances:  make(map[string]*instance),
		lines:      make(map[orderLine]string),
		pending:    make(map[orderLine]bool),
		notified:   make(map[orderLine]struct{}),
		nonces:     nonceMemory{expires: make(map[string]time.Time)},
	}
}

// Instances returns how many instances were ever created.
func (s *Seller) Instances() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Notified returns how many order lines orderNotify has told it of.
func (s *Seller) Notified() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.notified)
}

// ServeHTTP answers one production-interface call. Every answer is HTTP
// 200 with a JSON body carrying resultCode.
func (s *Seller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply, key := s.answer(w, r)
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
		h.Set(sign.BodySignHeader, sign.BodySign(key, body))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) // the caller may be gone; nothing to do about it
}

// answer decides the reply to one call and the key its Body-Sign is made
// with.
func (s *Seller) answer(w http.ResponseWriter, r *http.Request) (any, string) {
	if r.Method != http.MethodPost {
		return protocol.NewResponse(protocol.CodeInvalidParam, "method "+r.Method+" not allowed: use POST"), s.key
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return protocol.NewResponse(protocol.CodeInvalidParam, "request body larger than 1 MiB"), s.key
		}
		return protocol.NewResponse(protocol.CodeInvalidParam, "cannot read the request body"), s.key
	}
	// The activity, unverified, only chooses the key: a body changed to
	// name another activity does not verify with that activity's key.
	keys, replyKey := []string{s.key}, s.key
	if peekActivity(body) == protocol.ActivityOrderNotify {
		keys, replyKey = []string{s.generalKey}, s.generalKey
		if s.faults.OrderNotifyAnyKey {
			keys = append(keys, s.key)
		}
		if s.faults.OrderNotifyBasicKeyBodySign {
			replyKey = s.key
		}
	}
	if !s.faults.SkipSignature {
		q := r.URL.Query()
		if err := s.verify(keys, q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), body, time.Now()); err != nil {
			return protocol.NewResponse(protocol.CodeAuthFailed, err.Error()), replyKey
		}
	}
	return s.dispatch(body), replyKey
}

// peekActivity reads the activity of a body, or "" when there is none.
func peekActivity(body []byte) string {
	var v struct {
		Activity string `json:"activity"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.Activity
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
	if on, ok := req.(protocol.OrderNotifyRequest); ok {
		return s.orderNotify(on) // validated there: testFlag is mandatory
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
	// getLicenseAsync: decoded by protocol but not served here.
	if s.faults.SkipValidation {
		return protocol.NewResponse(protocol.CodeSuccess, "")
	}
	return protocol.NewResponse(protocol.CodeInvalidParam, "activity "+req.Activity()+" is not served here")
}
