package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// KitSignForm is the canonical form of the Kit V2 x-sign (saas-v2.md
// §2.3): which one KooGallery sends is UNCONFIRMED, so the emulator can
// send either.
type KitSignForm string

// The two x-sign forms.
const (
	// KitFormA is hex(HMAC(key, key + nonce + timestamp + body)), the form
	// the Kit section of the page prints (sign.KitSignature); the default.
	KitFormA KitSignForm = "A"
	// KitFormB is the basic-interface formula with the inner body HMAC
	// (sign.KitSignatureHashed).
	KitFormB KitSignForm = "B"
)

// ParseKitSignForm reads "A" or "B" (either case).
func ParseKitSignForm(s string) (KitSignForm, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "A":
		return KitFormA, nil
	case "B":
		return KitFormB, nil
	}
	return "", fmt.Errorf("emulator: kit signature form %q: want A or B", s)
}

// V1 is the SaaS V1 basic-interface family (saas-v1-joint-login.md Part
// A): GET on Config.Target with every parameter in the query string,
// URL-encoded, and authToken = sign.AuthTokenQuery over the URL-decoded
// values with the basic key (§A.2). A V1 Call's Body is the URL-encoded
// query without authToken (url.Values.Encode); activity is added from
// Call.Interface and timeStamp (UTC yyyyMMddHHmmssSSS of the wall clock
// plus Tamper.Skew) when the body has none. Answers are checked as §A.9
// says: HTTP 200, JSON, Body-Sign, resultCode, and for newInstance an
// instanceId of at most 64 characters, appInfo.frontEndUrl of at most 512
// and an encryptType of 1 or 2 when present. Retries follow §A.6:
// newInstance and upgrade hourly for 3 hours, refreshInstance and
// expireInstance every 10 minutes and releaseInstance every minute for an
// hour; instanceStatus, whose policy is UNCONFIRMED, like expireInstance.
//
// Tamper: Signature replaces authToken, Key signs with another key, Skew
// moves the timeStamp added, Omit drops query parameters ("authToken",
// "timeStamp") after signing. Nonce does not apply.
var V1 = &Family{
	Name:     "v1",
	Key:      KeyBasic,
	Prepare:  prepareV1,
	TestFlag: v1TestFlag,
	Fields:   v1Fields,
	Retry: map[string]RetryPolicy{
		protocol.ActivityNewInstance:     {Interval: time.Hour, Window: 3 * time.Hour},
		protocol.ActivityUpgrade:         {Interval: time.Hour, Window: 3 * time.Hour},
		protocol.ActivityRefreshInstance: {Interval: 10 * time.Minute, Window: time.Hour},
		protocol.ActivityExpireInstance:  {Interval: 10 * time.Minute, Window: time.Hour},
		protocol.ActivityInstanceStatus:  {Interval: 10 * time.Minute, Window: time.Hour},
		protocol.ActivityReleaseInstance: {Interval: time.Minute, Window: time.Hour},
	},
	BodySign: true,
	shown:    v1Shown,
}

// KitV1 is the joint-operation Kit V1 family (saas-v1-joint-login.md Part
// B): the Call's Body POSTed as JSON to <kit target>/produceAPI/<name>,
// Interface being the name (protocol.KitTenantSync, …), with the authToken
// HEADER = sign.AuthTokenJSON over the body's top-level fields with the
// key bound to the Kit interfaces (Config.KeyFor(KeyKit)); the body must
// hold timeStamp. The kit target is Config.KitTarget, by default the
// origin of Config.Target. Answers carry resultCode and a Body-Sign made
// with the Kit key. Kit calls are never retried automatically (saas-v2.md
// §3.8: the buyer retries in the console).
//
// Tamper: Signature replaces the authToken header, Key signs with another
// key, Omit: []string{"authToken"} leaves the header out. Skew and Nonce
// do not apply (the timeStamp is the body's own).
var KitV1 = &Family{
	Name:     "kit-v1",
	Key:      KeyKit,
	Target:   kitTarget,
	Prepare:  prepareKitV1,
	TestFlag: kitTestFlag,
	BodySign: true,
}

// KitV2 is the joint-operation Kit V2 family (saas-v2.md §2.3, §3.8): the
// Call's Body POSTed as JSON to <kit target>/produceAPI/v2/<name> with the
// headers x-sign, x-timestamp (Unix ms of the wall clock plus Tamper.Skew)
// and x-nonce, signed with the Kit key in form A (sign.KitSignature) or B
// (sign.KitSignatureHashed): Call.KitForm, else Config.KitSignForm, else
// A. Answers are checked like KitV1's; no automatic retries.
//
// Tamper: Signature replaces x-sign, Key signs with another key, Skew
// moves x-timestamp, Nonce replays a nonce, Omit drops headers ("x-sign",
// "x-timestamp", "x-nonce").
var KitV2 = &Family{
	Name:     "kit-v2",
	Key:      KeyKit,
	Target:   kitTarget,
	Prepare:  prepareKitV2,
	TestFlag: kitTestFlag,
	BodySign: true,
}

// Kit header names.
const (
	headerXSign      = "x-sign"
	headerXTimestamp = "x-timestamp"
	headerXNonce     = "x-nonce"
)

// kitTarget is the base URL of the Kit calls: Config.KitTarget, or the
// origin (scheme and host) of Config.Target.
func kitTarget(cfg Config) string {
	if cfg.KitTarget != "" {
		return cfg.KitTarget
	}
	u, err := url.Parse(cfg.Target)
	if err != nil {
		return cfg.Target
	}
	return (&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host}).String()
}

// v1Params are the parameters of the V1 GET interfaces whose values the
// message log shows; authToken and the encrypted mobilePhone and email are
// redacted, like anything the target itself carries.
var v1Params = []string{
	"activity", "timeStamp", "testFlag", "customerId", "customerName", "userId", "userName",
	"businessId", "orderId", "skuCode", "productId", "trialFlag", "expireTime", "chargingMode",
	"saasExtendParams", "amount", "diskSize", "bandWidth", "periodType", "periodNumber",
	"orderAmount", "provisionType", "instanceId", "trialToFormal", "instanceStatus",
}

func v1Shown(name string) bool { return slices.Contains(v1Params, name) }

// parseV1Body reads a V1 Call's Body: a URL-encoded query.
func parseV1Body(body []byte) (url.Values, error) {
	q, err := url.ParseQuery(strings.TrimSpace(string(body)))
	if err != nil {
		return nil, fmt.Errorf("emulator: v1 body is not a URL-encoded query: %w", err)
	}
	return q, nil
}

// prepareV1 builds a V1 GET: the target's own query, the body's
// parameters, activity and timeStamp when missing, and authToken over all
// of them (what the seller receives), then drops the omitted parameters.
func prepareV1(ctx context.Context, target, key string, c Call, now time.Time) (*http.Request, error) {
	u, err := httpURL(target)
	if err != nil {
		return nil, err
	}
	params, err := parseV1Body(c.Body)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if q.Get("activity") == "" {
		q.Set("activity", c.Interface)
	}
	if q.Get(sign.TimeStampParam) == "" {
		q.Set(sign.TimeStampParam, protocol.FormatTime17(now.Add(c.Tamper.Skew)))
	}
	q.Del(sign.AuthTokenParam)
	token := c.Tamper.Signature
	if token == "" {
		if token, err = sign.AuthTokenQuery(key, q); err != nil {
			return nil, fmt.Errorf("emulator: v1 authToken: %w", err)
		}
	}
	q.Set(sign.AuthTokenParam, token)
	for _, name := range c.Tamper.Omit {
		q.Del(name)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("emulator: build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// kitURL is target + /produceAPI/[v2/]name.
func kitURL(target, name string, version int) (*url.URL, error) {
	u, err := httpURL(target)
	if err != nil {
		return nil, err
	}
	p := strings.TrimSuffix(u.Path, "/") + "/produceAPI/"
	if version == 2 {
		p += "v2/"
	}
	u.Path = p + name
	u.RawPath = ""
	return u, nil
}

// httpURL parses an http(s) URL.
func httpURL(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("emulator: target URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("emulator: target URL %q: want http or https", target)
	}
	return u, nil
}

func newKitRequest(ctx context.Context, u *url.URL, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("emulator: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// prepareKitV1 POSTs the body with the authToken header.
func prepareKitV1(ctx context.Context, target, key string, c Call, now time.Time) (*http.Request, error) {
	u, err := kitURL(target, c.Interface, 1)
	if err != nil {
		return nil, err
	}
	token := c.Tamper.Signature
	if token == "" {
		if token, err = sign.AuthTokenJSON(key, c.Body); err != nil {
			return nil, fmt.Errorf("emulator: kit v1 authToken: %w", err)
		}
	}
	req, err := newKitRequest(ctx, u, c.Body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(sign.AuthTokenParam, token)
	for _, name := range c.Tamper.Omit {
		req.Header.Del(name)
	}
	return req, nil
}

// prepareKitV2 POSTs the body with x-sign, x-timestamp and x-nonce.
func prepareKitV2(ctx context.Context, target, key string, c Call, now time.Time) (*http.Request, error) {
	u, err := kitURL(target, c.Interface, 2)
	if err != nil {
		return nil, err
	}
	ts := protocol.FormatMillis(now.Add(c.Tamper.Skew))
	nonce := c.Tamper.Nonce
	if nonce == "" {
		nonce = NewNonce()
	}
	sig := c.Tamper.Signature
	if sig == "" {
		if c.KitForm == KitFormB {
			sig = sign.KitSignatureHashed(key, nonce, ts, c.Body)
		} else {
			sig = sign.KitSignature(key, nonce, ts, c.Body)
		}
	}
	req, err := newKitRequest(ctx, u, c.Body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerXSign, sig)
	req.Header.Set(headerXTimestamp, ts)
	req.Header.Set(headerXNonce, nonce)
	for _, name := range c.Tamper.Omit {
		req.Header.Del(name)
	}
	return req, nil
}

// v1TestFlag reads testFlag from a V1 query body.
func v1TestFlag(body []byte) bool {
	q, err := parseV1Body(body)
	return err == nil && q.Get("testFlag") == "1"
}

// kitTestFlag reads testFlag (an integer, or its text) from a Kit body.
func kitTestFlag(body []byte) bool {
	var r struct {
		TestFlag protocol.FlexInt `json:"testFlag"`
	}
	return json.Unmarshal(body, &r) == nil && r.TestFlag == 1
}

// v1Fields checks the mandatory fields and lengths of a V1 answer
// (saas-v1-joint-login.md §A.5, §A.9): newInstance's instanceId (≤ 64),
// appInfo.frontEndUrl (≤ 512, on 000000: the debugger requires it) and
// encryptType (1 or 2 when present); queryInstance as in V2.
func v1Fields(iface string, code protocol.ResultCode, body []byte) []Violation {
	switch iface {
	case protocol.ActivityNewInstance:
		var r protocol.V1NewInstanceResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return fieldViolation(&protocol.DecodeError{What: "newInstance reply", Err: err})
		}
		if vs := fieldViolation(r.Validate()); len(vs) > 0 {
			return vs
		}
		var vs []Violation
		if code == protocol.CodeSuccess && r.AppInfo == nil {
			vs = append(vs, violation(RuleRequiredField, "调测失败,接口响应缺少appInfo.frontEndUrl"))
		}
		if r.EncryptType != "" {
			if _, err := sign.ParseEncryptType(r.EncryptType); err != nil {
				vs = append(vs, violation(RuleFieldLength, "调测失败,字段encryptType长度不合法: %q, want 1 or 2", r.EncryptType))
			}
		}
		return vs
	case protocol.ActivityQueryInstance:
		return v2Fields(iface, code, body)
	}
	return nil
}
