// Package testseller is a small, independent seller kept in memory: the
// SaaS V2 production interface (saas-v2.md §2–§6) and order notifications
// (orderNotify, license-openapi.md §F) POSTed to any path, the SaaS V1
// basic interfaces (saas-v1-joint-login.md Part A) called with GET on any
// path, and the five joint-operation Kit interfaces (Part B, saas-v2.md
// §3.8) POSTed to /produceAPI/<name> (V1: authToken header) and
// /produceAPI/v2/<name> (V2: x-sign, x-timestamp, x-nonce), at the root or
// under any path prefix, and license codes 2.0 and online license
// (license-openapi.md §A, §C) POSTed to a path whose last segment is
// "license" (koobridge serve's default --license-path). Faults can be
// switched on one at a time. It
// exists to test the conformance suite and the emulator: the suite must
// pass against the correct seller and fail, naming the fault, against a
// broken one.
//
// Like a Seller Center account it holds one key per interface type
// (Keys): the basic key verifies the V1 and V2 basic interfaces and signs
// their answers, the general key orderNotify and its answer, the Kit key
// the Kit calls and their answers, the license key the license-code and
// online-license calls and their answers. It reads the activity of a V2 call
// before verifying it only to choose the key; a call signed with the other
// key fails. It holds an RSA key pair too: applicationSync's clientSecret
// is decrypted with its private key (Keys.RSA, or one made once per
// process), whose public half RSAPublicKey returns.
//
// It deliberately shares nothing with koobridge's own server beyond the
// wire types of package protocol and the algorithms of package
// protocol/sign, so that a bug in the real server is not repeated here.
// That is why it checks the signature window and nonces with its own few
// lines rather than with sign.Verifier, which koobridge serve uses: the
// suite's authentication cases must not be judged against the code they
// test. It calls the Open API (WithOpenAPI) only for online license: to
// upload the licenses getLicenseAsync asks for (§C.7), and to learn with
// Query Order whether an instance is yearly/monthly when a
// getLicenseAsync comes without expireTime.
//
// Choices where the spec is UNCONFIRMED: V1 enforces no timeStamp window
// (none is documented, and saved debug cases are replayed twice a day);
// neither does Kit V1 (its authToken has no window either); Kit V2 holds
// x-timestamp to 60 s both ways, like V2. Kit answers carry a Body-Sign
// made with the Kit key.
package testseller

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
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

	// SaaS V1 basic interfaces (GET, saas-v1-joint-login.md Part A). The
	// V2 faults above do not touch them.

	// V1SkipAuthToken accepts a V1 call whatever its authToken says,
	// also without one.
	V1SkipAuthToken bool
	// V1NoBodySign leaves the Body-Sign header off V1 answers.
	V1NoBodySign bool
	// V1NewInstanceEveryCall makes V1 newInstance create a new instanceId
	// on every call, even for a known order.
	V1NewInstanceEveryCall bool
	// V1UnknownInstanceOK answers 000000 to refreshInstance,
	// expireInstance, releaseInstance, upgrade and instanceStatus of an
	// instance that never existed.
	V1UnknownInstanceOK bool
	// V1SkipValidation answers V1 calls with missing or overlong fields,
	// and unknown activities, 000000 (newInstance still creates).
	V1SkipValidation bool

	// Joint-operation Kit interfaces (saas-v1-joint-login.md Part B,
	// saas-v2.md §2.3, §3.8).

	// KitSkipAuthToken accepts a Kit V1 call whatever its authToken
	// header says, also without one.
	KitSkipAuthToken bool
	// KitSkipSign accepts a Kit V2 call whatever its x-sign says, also
	// without one (the timestamp and nonce are still checked).
	KitSkipSign bool
	// KitStaleTimestampOK accepts a Kit V2 x-timestamp of any age.
	KitStaleTimestampOK bool
	// KitReplayOK accepts a Kit V2 x-nonce seen before.
	KitReplayOK bool
	// KitRepeatAddFails answers an add (flag 1) of a tenant, app, user or
	// department that already exists 000005 ("already exists") instead of
	// 000000.
	KitRepeatAddFails bool
	// KitDeleteUnknownFails answers a delete (flag 0) or revoke (flag 3)
	// of a tenant, app, user or department it does not hold 000003
	// instead of 000000.
	KitDeleteUnknownFails bool
	// KitNoUserLimit accepts authSync with more than 500 users.
	KitNoUserLimit bool
	// KitAcceptBadSecret answers applicationSync 000000 when its
	// clientSecret cannot be decrypted with the seller's private key.
	KitAcceptBadSecret bool

	// License codes 2.0 and online license (license-openapi.md §A, §C).
	// The faults that touch every answer (SkipSignature, NoBodySign,
	// WrongContentType, Slow, SkipValidation) touch these too, and
	// UnknownInstanceOK getLicenseAsync.

	// LicenseBasicKeyBodySign signs the Body-Sign of license answers with
	// the basic key instead of the license key.
	LicenseBasicKeyBodySign bool
	// LicenseAnyKey accepts a license call signed with the basic key as
	// well as one signed with the license key.
	LicenseAnyKey bool
	// LicenseUnknownCodeRefused answers 000003 to a call about a license
	// code it never heard of, instead of recording the code.
	LicenseUnknownCodeRefused bool
	// LicenseRepeatDiffers answers a license-code call that changes
	// nothing (a renewal order line already applied, a freeze of a frozen
	// code, a release of a released one) 000005 ("already applied").
	LicenseRepeatDiffers bool
	// LicenseStaleRenewalRefused keeps no record of the renewals applied:
	// every refreshLicenseCode is applied afresh, and a RENEWAL whose
	// expireTime is before the code's expiry is refused 000002.
	LicenseStaleRenewalRefused bool
	// LicenseDebugMixed keeps debug (testFlag 1) and real codes together:
	// a debug call changes the real code of the same name (a debug
	// release, as a saved debug case replays it, releases the real code).
	LicenseDebugMixed bool
	// OnlineLicenseNoUpload answers getLicenseAsync 000004 but never
	// uploads the license.
	OnlineLicenseNoUpload bool
	// OnlineLicenseRegenerates generates another license for a repeated
	// getLicenseAsync and uploads it before answering.
	OnlineLicenseRegenerates bool
	// OnlineLicenseWrongSHA256 uploads the license with the sha256 of
	// something else.
	OnlineLicenseWrongSHA256 bool
	// OnlineLicenseNoExpiryCheck takes a yearly/monthly getLicenseAsync
	// without expireTime instead of answering 000902.
	OnlineLicenseNoExpiryCheck bool
}

// Keys are the keys of a Seller, one per interface type it serves
// (saas-v2.md §2.1).
type Keys struct {
	// Basic is the key bound to the basic interfaces: the V2 activities.
	Basic string
	// General is the key bound to the general interfaces (通用接口):
	// orderNotify. Empty means Basic.
	General string
	// Kit is the key bound to the joint-operation sync interfaces
	// (联营SaaS同步接口). Empty means Basic.
	Kit string
	// License is the key bound to the license interfaces
	// (License授权码交付接口): license codes and online license. Empty
	// means Basic.
	License string
	// RSA is the seller's private key, with which applicationSync's
	// clientSecret is decrypted. Nil means a 3072-bit key made once per
	// process and shared by every Seller without one.
	RSA *rsa.PrivateKey
}

// Seller answers the V2 production interface and orderNotify on any path.
// It is safe for concurrent use.
type Seller struct {
	key        string // the basic key
	generalKey string
	kitKey     string
	licenseKey string
	rsa        *rsa.PrivateKey        // nil: processKey
	v1Cipher   *sign.CredentialCipher // encryptType 1 with the basic key (saas-v1-joint-login.md §A.7)
	faults     Faults
	usage      protocol.Decimal // the usageValue reported for pay-per-use instances

	mu        sync.Mutex
	instances map[string]*instance   // by instanceId
	lines     map[orderLine]string   // newInstance idempotency: order line → instanceId
	pending   map[orderLine]bool     // first calls still processing (ConcurrentProcessing)
	notified  map[orderLine]struct{} // order lines orderNotify told of
	created   int
	nonces    nonceMemory
	v1Orders  map[orderLine]string // V1 newInstance idempotency: orderId (+ productId) → instanceId
	kit       kitState
	lic       licenseState
	openAPI   openAPI // set by WithOpenAPI before serving
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
	// A V1 seller's answers need a cipher; with an empty basic key (a
	// misconfiguration) the V1 credentials stay empty.
	v1Cipher, _ := sign.NewCredentialCipher(k.Basic, sign.EncryptType("1"))
	return &Seller{
		key:        k.Basic,
		generalKey: cmp.Or(k.General, k.Basic),
		kitKey:     cmp.Or(k.Kit, k.Basic),
		licenseKey: cmp.Or(k.License, k.Basic),
		rsa:        k.RSA,
		v1Cipher:   v1Cipher,
		faults:     f,
		usage:      usage,
		instances:  make(map[string]*instance),
		lines:      make(map[orderLine]string),
		pending:    make(map[orderLine]bool),
		notified:   make(map[orderLine]struct{}),
		nonces:     nonceMemory{expires: make(map[string]time.Time)},
		v1Orders:   make(map[orderLine]string),
		kit:        newKitState(),
		lic:        newLicenseState(),
	}
}

// processKey is the RSA key of every Seller made without one: 3072 bits,
// as KooGallery asks, made once because making one takes a while.
var processKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		panic(fmt.Sprintf("testseller: generate RSA key: %v", err)) // crypto/rand does not fail
	}
	return k
})

// privateKey is the seller's RSA private key.
func (s *Seller) privateKey() *rsa.PrivateKey {
	if s.rsa == nil {
		return processKey()
	}
	return s.rsa
}

// RSAPublicKey returns the public half of the seller's RSA key: the key
// KooGallery encrypts applicationSync's clientSecret to.
func (s *Seller) RSAPublicKey() *rsa.PublicKey { return &s.privateKey().PublicKey }

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

// ServeHTTP answers one production-interface call: GET is SaaS V1, a POST
// to a Kit path (.../produceAPI/<name>, .../produceAPI/v2/<name>) is the
// Kit, a POST to a license path (.../license) is a license code or online
// license, any other POST is V2 or orderNotify. Every answer is HTTP 200
// with a JSON body carrying resultCode.
func (s *Seller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		reply    any
		key      string
		bodySign bool
	)
	if name, version, ok := protocol.KitOperation(r.URL.Path); ok {
		reply, key, bodySign = s.kitAnswer(w, r, name, version), s.kitKey, true
	} else if r.Method == http.MethodGet {
		reply, key, bodySign = s.v1Answer(r), s.key, !s.faults.V1NoBodySign
	} else if isLicensePath(r.URL.Path) {
		reply, key = s.licenseAnswer(w, r)
		bodySign = !s.faults.NoBodySign
	} else {
		reply, key = s.answer(w, r)
		bodySign = !s.faults.NoBodySign
	}
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
	if bodySign {
		h.Set(sign.BodySignHeader, sign.BodySign(key, body))
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body) // the caller may be gone; nothing to do about it
}

// answer decides the reply to one call and the key its Body-Sign is made
// with.
func (s *Seller) answer(w http.ResponseWriter, r *http.Request) (any, string) {
	if r.Method != http.MethodPost {
		return protocol.NewResponse(protocol.CodeInvalidParam, "method "+r.Method+" not allowed: use POST (V2) or GET (V1)"), s.key
	}
	body, refused := readBody(w, r)
	if refused != nil {
		return *refused, s.key
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
		if err := s.verify(keys, v2Forms, q.Get("signature"), q.Get("timestamp"), q.Get("nonce"), body, time.Now(), lax{}); err != nil {
			return protocol.NewResponse(protocol.CodeAuthFailed, err.Error()), replyKey
		}
	}
	return s.dispatch(body), replyKey
}

// readBody reads a POST body of at most maxBody bytes; refused is the
// answer when it cannot.
func readBody(w http.ResponseWriter, r *http.Request) (body []byte, refused *protocol.Response) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		msg := "cannot read the request body"
		if errors.As(err, &tooLarge) {
			msg = "request body larger than 1 MiB"
		}
		reply := protocol.NewResponse(protocol.CodeInvalidParam, msg)
		return nil, &reply
	}
	return body, nil
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
	if reply, ok := s.validate(req); !ok {
		return reply
	}
	if reply, ok := s.instanceActivity(req); ok {
		return reply
	}
	// getLicenseAsync: decoded by protocol but served at the license path.
	if s.faults.SkipValidation {
		return protocol.NewResponse(protocol.CodeSuccess, "")
	}
	return protocol.NewResponse(protocol.CodeInvalidParam, "activity "+req.Activity()+" is not served here")
}

// validate validates a decoded V2 request; ok is false when reply is the
// answer. Under SkipValidation an invalid request is answered 000000,
// but an invalid newInstance still creates, as a seller that checks
// nothing would.
func (s *Seller) validate(req protocol.V2Request) (reply any, ok bool) {
	if err := req.Validate(); err != nil {
		if !s.faults.SkipValidation {
			return protocol.ErrorResponse(err), false
		}
		if req.Activity() != protocol.ActivityNewInstance {
			return protocol.NewResponse(protocol.CodeSuccess, ""), false
		}
	}
	return nil, true
}

// instanceActivity carries out a validated instance activity (V2, and
// online license's at the license path); ok is false for any other
// request.
func (s *Seller) instanceActivity(req protocol.V2Request) (reply any, ok bool) {
	switch req := req.(type) {
	case protocol.NewInstanceRequest:
		return s.newInstance(req), true
	case protocol.QueryInstanceRequest:
		return s.queryInstance(req), true
	case protocol.RefreshInstanceRequest:
		return s.refreshInstance(req), true
	case protocol.UpdateInstanceStatusRequest:
		return s.updateInstanceStatus(req), true
	case protocol.ReleaseInstanceRequest:
		return s.releaseInstance(req), true
	case protocol.UpgradeInstanceRequest:
		return s.upgradeInstance(req), true
	case protocol.ChangeInstanceCheckRequest:
		return s.changeInstanceCheck(req), true
	}
	return nil, false
}
