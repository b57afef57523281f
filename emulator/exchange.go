package emulator

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/durationtext"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// KeyType is the interface type a Seller Center key is bound to: one key
// per type (saas-v2.md §2.1, license-openapi.md §A.6). A Family names the
// type whose key signs its calls and their answers' Body-Sign.
type KeyType string

// The interface types keys are bound to.
const (
	KeyBasic   KeyType = "basic"   // 基础接口: the SaaS V2 basic interfaces (Config.Key)
	KeyKit     KeyType = "kit"     // 联营SaaS同步接口: joint-operation sync (Config.KitKey)
	KeyLicense KeyType = "license" // License授权码交付接口: license interfaces (Config.LicenseKey)
	KeyGeneral KeyType = "general" // 通用接口: general interfaces, order notification (Config.GeneralKey)
)

// KeyFor returns the key bound to interface type t: KitKey, LicenseKey or
// GeneralKey, or Key for the basic type, an unknown type and a type whose
// key is empty.
func (c Config) KeyFor(t KeyType) string {
	var k string
	switch t {
	case KeyKit:
		k = c.KitKey
	case KeyLicense:
		k = c.LicenseKey
	case KeyGeneral:
		k = c.GeneralKey
	}
	if k == "" {
		return c.Key
	}
	return k
}

// Family is one family of production interfaces: how KooGallery signs its
// calls to the seller, with which key and to which URL, how the answers
// are checked and how failed calls are retried. V2 is the SaaS V2 basic
// interfaces and OrderNotify the order notification; the V1, Kit and
// license families are further values of this type with their own
// scenario tables.
type Family struct {
	// Name identifies the family, e.g. "v2".
	Name string
	// Key is the interface type whose key signs the calls and checks the
	// answers' Body-Sign (Config.KeyFor); empty means KeyBasic.
	Key KeyType
	// KeyOf, when set, picks the interface type from the configuration
	// instead of Key (online license: Config.OnlineLicenseKey).
	KeyOf func(cfg Config) KeyType
	// Target returns the seller's URL for the family's calls; nil means
	// Config.Target.
	Target func(cfg Config) string
	// Prepare builds the signed request for one call to target.
	Prepare func(ctx context.Context, target, key string, c Call, now time.Time) (*http.Request, error)
	// TestFlag reports whether a request body is a debug call (testFlag
	// "1"), for the message log; nil means none is.
	TestFlag func(body []byte) bool
	// Fields checks the mandatory fields and lengths of an answer with the
	// given resultCode; nil checks none beyond resultCode and resultMsg.
	Fields func(iface string, code protocol.ResultCode, body []byte) []Violation
	// Retry is KooGallery's retry policy per interface; an interface
	// missing from it is not retried.
	Retry map[string]RetryPolicy
	// BodySign reports whether answers must carry a Body-Sign header.
	BodySign bool

	// shown, when set, lists the query parameters whose values the
	// message log shows besides timestamp and nonce (V1 carries its
	// parameters in the query).
	shown func(name string) bool
	// codeSpec, when set, names the spec section of an interface's
	// resultCodes for a wrong one; "" (or nil) means saas-v2.md §5.
	codeSpec func(iface string) string
	// appInfoOptional: the family's instances need no appInfo in a
	// queryInstance answer (online-license products have no front end).
	appInfoOptional bool
}

// RetryPolicy is how KooGallery re-sends a failed call: every Interval for
// Window after the first attempt (saas-v2.md §6.2). Durations are in
// emulated time; Config.TimeScale shrinks them on the wall clock.
type RetryPolicy struct {
	Interval time.Duration `json:"interval"`
	Window   time.Duration `json:"window"`
}

// V2 is the SaaS V2 basic-interface family: POST with signature, timestamp
// and nonce in the query (saas-v2.md §2.2), answers checked against §1.4
// and §3, retried per §6.2. Where the spec leaves a V2 window UNCONFIRMED
// the V1 value is used (docs/emulator.md lists the choices).
var V2 = &Family{
	Name:     "v2",
	Key:      KeyBasic,
	Prepare:  prepareV2,
	TestFlag: v2TestFlag,
	Fields:   v2Fields,
	Retry: map[string]RetryPolicy{
		protocol.ActivityNewInstance:          {Interval: time.Hour, Window: 3 * time.Hour},
		protocol.ActivityUpgradeInstance:      {Interval: time.Hour, Window: 3 * time.Hour},
		protocol.ActivityRefreshInstance:      {Interval: 10 * time.Minute, Window: time.Hour},
		protocol.ActivityUpdateInstanceStatus: {Interval: 10 * time.Minute, Window: time.Hour},
		protocol.ActivityReleaseInstance:      {Interval: time.Minute, Window: time.Hour},
	},
	BodySign: true,
}

// OrderNotify is the order-notification family (license-openapi.md §F and
// its Addenda): orderNotify POSTed to Config.OrderNotifyTarget with the V2
// URL signature (signature, timestamp and nonce in the query) made with
// the key bound to the general interfaces (通用接口), answered with
// resultCode and resultMsg and a Body-Sign made with the same key.
// KooGallery retries it for 3 hours; the emulator retries hourly within
// that window, as for newInstance (the interval is not published).
var OrderNotify = &Family{
	Name:     "order-notify",
	Key:      KeyGeneral,
	Target:   func(cfg Config) string { return cmp.Or(cfg.OrderNotifyTarget, cfg.Target) },
	Prepare:  prepareV2,
	TestFlag: v2TestFlag,
	Retry: map[string]RetryPolicy{
		protocol.ActivityOrderNotify: {Interval: time.Hour, Window: 3 * time.Hour},
	},
	BodySign: true,
}

// v2TestFlag reads testFlag from a body the V2 decoder understands (the
// V2 activities and orderNotify).
func v2TestFlag(body []byte) bool {
	req, err := protocol.DecodeV2(body)
	return err == nil && req.IsTest()
}

// keyType is the interface type whose key signs f's calls.
func (f *Family) keyType(cfg Config) KeyType {
	if f.KeyOf != nil {
		return f.KeyOf(cfg)
	}
	return f.Key
}

// target is the URL f's calls go to.
func (f *Family) target(cfg Config) string {
	if f.Target == nil {
		return cfg.Target
	}
	return f.Target(cfg)
}

// Call is one request the emulator sends to a seller.
type Call struct {
	// Family is the family the call belongs to: its key, URL, signature
	// and checks. Nil means V2.
	Family *Family `json:"-"`
	// Interface is the interface called: the activity, e.g. "newInstance"
	// or "orderNotify".
	Interface string `json:"interface"`
	// Body is the exact request body.
	Body []byte `json:"-"`
	// Expect lists the resultCodes that count as the right answer; empty
	// means 000000 (and 000004 for newInstance).
	Expect []protocol.ResultCode `json:"expect,omitempty"`
	// Tamper breaks the signature on purpose, for negative tests and the
	// calling-side faults.
	Tamper Tamper `json:"tamper,omitzero"`
	// KitForm is the x-sign form of a KitV2 call; empty means
	// Config.KitSignForm (form A unless set).
	KitForm KitSignForm `json:"kitForm,omitempty"`
}

// Tamper describes deliberate damage to a call's authentication.
type Tamper struct {
	// Signature, when set, is sent instead of the right signature.
	Signature string `json:"signature,omitempty"`
	// Key, when set, signs the call instead of the family's key (a key
	// bound to another interface type, or a made-up one); the answer's
	// Body-Sign is still checked with the family's key.
	Key string `json:"-"`
	// Skew is added to the timestamp (clock skew; beyond 60 s it is stale).
	Skew time.Duration `json:"skew,omitempty"`
	// Nonce, when set, is used instead of a fresh random nonce (a replay).
	Nonce string `json:"nonce,omitempty"`
	// Omit lists what is left out of the request after signing, for
	// sellers that skip a check when its value is absent: query
	// parameters for V2 and order notification ("signature",
	// "timestamp", "nonce") and V1 ("authToken", "timeStamp"), headers
	// for KitV1 ("authToken") and KitV2 ("x-sign", "x-timestamp",
	// "x-nonce").
	Omit []string `json:"omit,omitempty"`
}

// HTTPRecord is a request or response as it went over the wire, for the
// message log. Header values are joined with ", ". The URL is redacted as
// RedactURL says. The message log keeps at most the first 16 KiB
// of a body (Truncated says some was cut); the checks see all of it.
type HTTPRecord struct {
	Method    string            `json:"method,omitempty"`
	URL       string            `json:"url,omitempty"`
	Status    int               `json:"status,omitempty"`
	Header    map[string]string `json:"header,omitempty"`
	Body      string            `json:"body"`
	Truncated bool              `json:"truncated,omitempty"`
}

// maxStoredBody is how much of each body the message log keeps.
const maxStoredBody = 16 << 10

// stored returns r with its body cut to maxStoredBody bytes.
func (r HTTPRecord) stored() HTTPRecord {
	if len(r.Body) > maxStoredBody {
		r.Body, r.Truncated = r.Body[:maxStoredBody], true
	}
	return r
}

// stored returns a as the message log keeps it: bodies cut to
// maxStoredBody bytes.
func (a Attempt) stored() Attempt {
	a.appInfo, a.polled = nil, false
	a.Request = a.Request.stored()
	if a.Response != nil {
		r := a.Response.stored()
		a.Response = &r
	}
	return a
}

// Attempt is one delivery of a call and what came of it.
type Attempt struct {
	At         time.Time           `json:"at"`
	Duration   time.Duration       `json:"duration"`
	Request    HTTPRecord          `json:"request"`
	Response   *HTTPRecord         `json:"response,omitempty"` // nil when nothing came back
	ResultCode protocol.ResultCode `json:"resultCode,omitempty"`
	Violations []Violation         `json:"violations,omitempty"`

	// appInfo is what a poll's check found in the answer, so that the
	// answer is parsed once for the check and the state change; polled
	// says the answer carried the instance as the family needs it (with
	// its appInfo, but for online license, whose products have no front
	// end).
	appInfo *protocol.AppInfo
	polled  bool
}

// OK reports whether the attempt broke no rule.
func (a Attempt) OK() bool { return len(a.Violations) == 0 }

// Has reports whether the attempt broke rule r.
func (a Attempt) Has(r Rule) bool {
	for _, v := range a.Violations {
		if v.Rule == r {
			return true
		}
	}
	return false
}

// maxReply caps how much of an answer is read; KooGallery's own limit is
// not published, and no correct answer comes near it.
const maxReply = 1 << 20

// seller is where calls go and how their answers are judged.
type seller struct {
	client   *http.Client
	url, key string
	deadline time.Duration
	// bodySignOptional accepts answers without Body-Sign (a present one
	// must still be right).
	bodySignOptional bool
}

// send delivers one call and checks the answer. The deadline bounds the
// whole exchange: an answer later than that is a deadline violation, as in
// the debugger, which gives up waiting. now is the emulated clock used for
// the timestamp; the duration is measured on the wall clock.
func send(ctx context.Context, s seller, f *Family, c Call, now time.Time) Attempt {
	client, target, key, deadline := s.client, s.url, s.key, s.deadline
	a := Attempt{At: now}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	req, err := f.Prepare(ctx, target, cmp.Or(c.Tamper.Key, key), c, now)
	if err != nil {
		a.Violations = []Violation{violation(RuleReachable, "调测失败,生产地址不可达: %v", err)}
		return a
	}
	a.Request = HTTPRecord{Method: req.Method, URL: redactURL(req.URL, f.shown), Header: redactHeader(flatten(req.Header)), Body: string(c.Body)}
	if req.Method == http.MethodGet {
		a.Request.Body = "" // V1: the parameters are in the (redacted) URL
	}
	start := time.Now()
	resp, err := client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
		resp.Body.Close()
	}
	a.Duration = time.Since(start)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
			a.Violations = []Violation{violation(RuleDeadline, "调测失败,调用接口超时: no complete answer within %s", durationtext.Format(deadline))}
		default:
			a.Violations = []Violation{violation(RuleReachable, "调测失败,生产地址不可达: %v", redactErr(err))}
		}
		if resp != nil {
			a.Response = &HTTPRecord{Status: resp.StatusCode, Header: flatten(resp.Header), Body: string(body)}
		}
		return a
	}
	a.Response = &HTTPRecord{Status: resp.StatusCode, Header: flatten(resp.Header), Body: string(body)}
	if len(body) > maxReply {
		a.Violations = []Violation{violation(RuleJSON, "调测失败,解析响应体失败: answer longer than %d bytes", maxReply)}
		return a
	}
	rc := replyCheck{iface: c.Interface, expect: c.expect(), fieldRule: f.Fields}
	if f.codeSpec != nil {
		rc.codeSpec = f.codeSpec(c.Interface)
	}
	if f.BodySign {
		rc.key, rc.keyOptional = key, s.bodySignOptional
	}
	a.ResultCode, a.Violations = checkReply(rc, resp.StatusCode, resp.Header, body)
	return a
}

// expect returns the resultCodes that count as success for c.
func (c Call) expect() []protocol.ResultCode {
	if len(c.Expect) > 0 {
		return c.Expect
	}
	if c.Interface == protocol.ActivityNewInstance {
		return []protocol.ResultCode{protocol.CodeSuccess, protocol.CodeProcessing}
	}
	return []protocol.ResultCode{protocol.CodeSuccess}
}

// prepareV2 signs a V2 call: signature, timestamp (Unix ms) and nonce in
// the query, appended to whatever query the target already has.
func prepareV2(ctx context.Context, target, key string, c Call, now time.Time) (*http.Request, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("emulator: target URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("emulator: target URL %q: want http or https", target)
	}
	ts := protocol.FormatMillis(now.Add(c.Tamper.Skew))
	nonce := c.Tamper.Nonce
	if nonce == "" {
		nonce = NewNonce()
	}
	sig := c.Tamper.Signature
	if sig == "" {
		sig = sign.V2Signature(key, nonce, ts, c.Body)
	}
	q := u.Query()
	q.Set("signature", sig)
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	for _, name := range c.Tamper.Omit {
		q.Del(name)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(c.Body))
	if err != nil {
		return nil, fmt.Errorf("emulator: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf8")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// NewNonce returns a fresh random nonce: 32 hex digits.
func NewNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func flatten(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	m := make(map[string]string, len(h))
	for k, v := range h {
		m[k] = strings.Join(v, ", ")
	}
	return m
}

// shownParams are the query parameters whose values a redacted URL keeps:
// the timestamp and nonce the emulator adds to every call.
var shownParams = map[string]bool{"timestamp": true, "nonce": true}

// RedactURL returns raw as the emulator shows it: a password in the
// userinfo becomes "xxxxx", and the value of every query parameter but
// timestamp and nonce becomes "[redacted]": the signature, and whatever
// the target itself carries (a tenant token, an API key). The message log
// is served without authentication, and reports end up in CI logs. An
// unparsable URL is shown as "[unparsable URL]".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL]"
	}
	return redactURL(u, nil)
}

// redactURL is RedactURL for a parsed URL; shown, when set, keeps more
// parameters' values.
func redactURL(u *url.URL, shown func(string) bool) string {
	c := *u
	if c.RawQuery != "" {
		parts := strings.Split(c.RawQuery, "&")
		for i, p := range parts {
			if k, _, _ := strings.Cut(p, "="); !shownParams[k] && (shown == nil || !shown(k)) {
				parts[i] = k + "=[redacted]"
			}
		}
		c.RawQuery = strings.Join(parts, "&")
	}
	return c.Redacted()
}

// secretHeaders are the request headers whose values the message log
// hides: the Kit signatures (authToken, x-sign).
var secretHeaders = []string{"Authtoken", "X-Sign"}

// redactHeader hides the values of secretHeaders in a flattened header.
func redactHeader(h map[string]string) map[string]string {
	for _, k := range secretHeaders {
		if _, ok := h[k]; ok {
			h[k] = "[redacted]"
		}
	}
	return h
}

// redactErr drops the query (which carries the signature) from URL errors.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
