package conformance

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Spec sections of the V1 cases (saas-v1-joint-login.md Part A).
const (
	specV1New     = "saas-v1-joint-login.md §A.5.1, §A.7, §A.9"
	specV1Query   = "saas-v1-joint-login.md §A.5.7"
	specV1Refresh = "saas-v1-joint-login.md §A.5.2"
	specV1Expire  = "saas-v1-joint-login.md §A.5.3"
	specV1Release = "saas-v1-joint-login.md §A.5.4"
	specV1Upgrade = "saas-v1-joint-login.md §A.5.5"
	specV1Status  = "saas-v1-joint-login.md §A.5.6"
	specV1Idem    = "saas-v1-joint-login.md §A.5.1, §A.6 (idempotent per orderId)"
	specV1Unknown = "saas-v1-joint-login.md §A.4 (000003), §A.5.2–§A.5.6"
	specV1Param   = "saas-v1-joint-login.md §A.4 (000002), §A.5.1"
)

// v1Sub is a V1 purchase the V1 cases work on.
type v1Sub struct {
	ok         bool // newInstance answered an instanceId
	orderID    string
	productID  string
	instanceID string
	params     url.Values // the newInstance parameters, for repeats
}

// v1Call is a V1 GET call: params URL-encoded, the emulator adding
// activity, timeStamp and authToken.
func v1Call(activity string, params url.Values, expect ...protocol.ResultCode) emulator.Call {
	return emulator.Call{Family: emulator.V1, Interface: activity, Body: []byte(params.Encode()), Expect: expect}
}

// v1Order is a V1 newInstance carrying the whole order (§A.5.1): chargingMode
// "1" (yearly/monthly) or "0" (pay-per-use), mobilePhone and email
// AES-encrypted with the basic key (§A.7, encryptType 1), and
// saasExtendParams.
func (r *runner) v1Order(chargingMode string) url.Values {
	id := "CS" + strings.ToUpper(emulator.NewNonce()[:15])
	q := url.Values{}
	q.Set("customerId", "conformance-customer-"+emulator.NewNonce()[:8])
	q.Set("customerName", "conformance")
	q.Set("businessId", uuid.NewString())
	q.Set("orderId", id)
	q.Set("skuCode", "OFFI-EMU-V1-SKU")
	q.Set("productId", "OFFI-EMU-V1-"+chargingMode)
	q.Set("chargingMode", chargingMode)
	q.Set("testFlag", "0")
	if chargingMode == protocol.V1ChargingPeriod {
		q.Set("periodType", "month")
		q.Set("periodNumber", "1")
		q.Set("expireTime", protocol.FormatTime14(time.Now().UTC().AddDate(0, 1, 0)))
	}
	if c, err := sign.NewCredentialCipher(r.cfg.Key, sign.EncryptType("1")); err == nil {
		if v, err := c.Encrypt("13800000000"); err == nil {
			q.Set("mobilePhone", v)
		}
		if v, err := c.Encrypt("buyer@example.com"); err == nil {
			q.Set("email", v)
		}
	}
	if v, err := protocol.EncodeSaaSExtendParams([]protocol.ExtendParam{{Name: "region", Value: "cn-north-4"}}); err == nil {
		q.Set("saasExtendParams", v)
	}
	return q
}

// v1Purchase sends a V1 newInstance for a new order within case cr.
func (r *runner) v1Purchase(ctx context.Context, cr *caseRun, chargingMode string) v1Sub {
	q := r.v1Order(chargingMode)
	s := v1Sub{orderID: q.Get("orderId"), productID: q.Get("productId"), params: q}
	a, sent := r.send(ctx, cr, v1Call(protocol.ActivityNewInstance, q), nil)
	if !sent {
		return s
	}
	s.instanceID = instanceIDOf(a)
	s.ok = s.instanceID != ""
	if !s.ok && len(cr.c.Failures) == 0 {
		cr.fail(RuleScenario, "newInstance answered %s without an instanceId", a.ResultCode)
	}
	return s
}

// v1 runs the V1 cases: the lifecycle of a yearly/monthly product, the
// freeze and unfreeze of a pay-per-use one, and the edge cases.
func (r *runner) v1(ctx context.Context) {
	cr := r.begin("v1/purchase", "V1 newInstance (GET) with the whole order, mobilePhone and email encrypted: an instanceId and appInfo", specV1New)
	s := r.v1Purchase(ctx, cr, protocol.V1ChargingPeriod)
	r.end(cr)
	steps := []func(context.Context, v1Sub){
		r.v1RepeatNewInstance,
		r.v1Query,
		r.v1Renewal,
		r.v1Upgrade,
		r.v1Expire,
		r.v1Release,
		r.v1ReleaseTwice,
		r.v1InstanceStatus,
		r.v1MissingAuthToken,
		r.v1BadAuthToken,
		r.v1WrongKey,
		r.v1UnknownInstance,
		r.v1MissingField,
	}
	for _, step := range steps {
		if ctx.Err() != nil {
			return
		}
		step(ctx, s)
	}
}

// notRun fails a case that needs the V1 purchase when there is none.
func (s v1Sub) notRun(cr *caseRun) bool {
	if s.ok {
		return false
	}
	cr.fail(RuleNotRun, "not run: v1/purchase got no instanceId")
	return true
}

// v1Step sends one call that must answer 000000 in a case of its own.
func (r *runner) v1Step(ctx context.Context, s v1Sub, id, title, spec, activity string, params url.Values) {
	cr := r.begin(id, title, spec)
	defer r.end(cr)
	if s.notRun(cr) {
		return
	}
	r.send(ctx, cr, v1Call(activity, params), nil)
}

func (r *runner) v1RepeatNewInstance(ctx context.Context, s v1Sub) {
	cr := r.begin("v1/repeat-new-instance", "V1 newInstance repeated for the same order (fresh businessId) answers the same instanceId", specV1Idem)
	defer r.end(cr)
	if s.notRun(cr) {
		return
	}
	q := url.Values{}
	for k, v := range s.params {
		q[k] = v
	}
	q.Set("businessId", uuid.NewString())
	a, sent := r.send(ctx, cr, v1Call(protocol.ActivityNewInstance, q), nil)
	if !sent || a.Response == nil {
		return
	}
	if got := instanceIDOf(a); got != s.instanceID {
		cr.fail(RuleIdempotentNewInstance, "V1 newInstance repeated for order %s returned instanceId %q, the first call %q: the seller created a second instance for the same order", s.orderID, got, s.instanceID)
	}
}

func (r *runner) v1Query(ctx context.Context, s v1Sub) {
	cr := r.begin("v1/query", "V1 queryInstance reports the instance", specV1Query)
	defer r.end(cr)
	if s.notRun(cr) {
		return
	}
	a, sent := r.send(ctx, cr, v1Call(protocol.ActivityQueryInstance, url.Values{"instanceId": {s.instanceID}}), nil)
	if !sent || a.ResultCode != protocol.CodeSuccess || a.Response == nil {
		return
	}
	var reply protocol.QueryInstanceResponse
	if json.Unmarshal([]byte(a.Response.Body), &reply) != nil {
		return // the emulator has reported the broken body
	}
	found := false
	for _, in := range reply.Info {
		found = found || in.InstanceID == s.instanceID
	}
	if !found {
		cr.fail(RuleQueryInfo, "V1 queryInstance for %s answered 000000 without an info entry for that instance", s.instanceID)
	}
}

func (r *runner) v1Renewal(ctx context.Context, s v1Sub) {
	r.v1Step(ctx, s, "v1/renewal", "V1 refreshInstance with a renewal order and the new expireTime", specV1Refresh,
		protocol.ActivityRefreshInstance, url.Values{
			"instanceId":   {s.instanceID},
			"orderId":      {"CS" + strings.ToUpper(emulator.NewNonce()[:15])},
			"productId":    {s.productID},
			"expireTime":   {protocol.FormatTime14(time.Now().UTC().AddDate(0, 2, 0))},
			"periodType":   {"month"},
			"periodNumber": {"1"},
			"testFlag":     {"0"},
		})
}

func (r *runner) v1Upgrade(ctx context.Context, s v1Sub) {
	r.v1Step(ctx, s, "v1/upgrade", "V1 upgrade to another SKU with an upgrade order", specV1Upgrade,
		protocol.ActivityUpgrade, url.Values{
			"instanceId": {s.instanceID},
			"orderId":    {"CS" + strings.ToUpper(emulator.NewNonce()[:15])},
			"skuCode":    {"OFFI-EMU-V1-SKU-PRO"},
			"productId":  {s.productID},
			"testFlag":   {"0"},
		})
}

func (r *runner) v1Expire(ctx context.Context, s v1Sub) {
	r.v1Step(ctx, s, "v1/expire", "V1 expireInstance freezes the instance", specV1Expire,
		protocol.ActivityExpireInstance, url.Values{"instanceId": {s.instanceID}, "orderId": {s.orderID}, "testFlag": {"0"}})
}

func (r *runner) v1Release(ctx context.Context, s v1Sub) {
	r.v1Step(ctx, s, "v1/release", "V1 releaseInstance of the expired instance", specV1Release,
		protocol.ActivityReleaseInstance, url.Values{"instanceId": {s.instanceID}, "orderId": {s.orderID}, "testFlag": {"0"}})
}

func (r *runner) v1ReleaseTwice(ctx context.Context, s v1Sub) {
	cr := r.begin("v1/release-twice", "V1 releaseInstance of an instance already released answers 000000", specV1Release+", §A.6")
	defer r.end(cr)
	if s.notRun(cr) {
		return
	}
	c := v1Call(protocol.ActivityReleaseInstance, url.Values{"instanceId": {s.instanceID}, "orderId": {s.orderID}, "testFlag": {"0"}})
	r.send(ctx, cr, c, resultCodeAs(RuleIdempotentRelease, func(got protocol.ResultCode) string {
		return fmt.Sprintf("the seller %s to a second V1 releaseInstance of %s, want 000000: releasing an already released instance must succeed", answered(got), s.instanceID)
	}))
}

// v1InstanceStatus buys a pay-per-use instance, freezes it and sets it
// back to NORMAL.
func (r *runner) v1InstanceStatus(ctx context.Context, _ v1Sub) {
	cr := r.begin("v1/instance-status", "V1 pay-per-use purchase, then instanceStatus FREEZE and NORMAL", specV1Status+", "+specV1New)
	defer r.end(cr)
	s := r.v1Purchase(ctx, cr, protocol.V1ChargingOnDemand)
	if !s.ok {
		return
	}
	for _, status := range []string{protocol.InstanceStatusFreeze, protocol.InstanceStatusNormal} {
		r.send(ctx, cr, v1Call(protocol.ActivityInstanceStatus, url.Values{"instanceId": {s.instanceID}, "instanceStatus": {status}, "testFlag": {"0"}}), nil)
	}
}

// v1AuthProbe is the harmless call the V1 authentication cases tamper
// with: queryInstance of the V1 instance (or of one never issued).
func v1AuthProbe(s v1Sub, t emulator.Tamper) emulator.Call {
	id := s.instanceID
	if id == "" {
		id = neverIssued()
	}
	c := v1Call(protocol.ActivityQueryInstance, url.Values{"instanceId": {id}}, authFailed...)
	c.Tamper = t
	return c
}

// v1AuthCase sends the probe tampered with t: it must answer 000001.
func (r *runner) v1AuthCase(ctx context.Context, s v1Sub, id, title, what, fault string, t emulator.Tamper) {
	cr := r.begin(id, title, suiteSpec[RuleAuthToken])
	defer r.end(cr)
	r.send(ctx, cr, v1AuthProbe(s, t), resultCodeAs(RuleAuthToken, func(got protocol.ResultCode) string {
		if got == protocol.CodeSuccess || got == protocol.CodeInstanceNotFound {
			return fmt.Sprintf("the seller accepted a V1 call %s: %s", what, fault)
		}
		return fmt.Sprintf("the seller %s to a V1 call %s, want 000001 (authentication failed)", answered(got), what)
	}))
}

func (r *runner) v1MissingAuthToken(ctx context.Context, s v1Sub) {
	r.v1AuthCase(ctx, s, "v1/missing-auth-token", "a V1 call without authToken answers 000001", "without authToken",
		"it skips the check when the parameter is absent", emulator.Tamper{Omit: []string{sign.AuthTokenParam}})
}

// zeroToken is a well-formed authToken that matches nothing: base64 of 32
// zero bytes.
var zeroToken = base64.StdEncoding.EncodeToString(make([]byte, 32))

func (r *runner) v1BadAuthToken(ctx context.Context, s v1Sub) {
	r.v1AuthCase(ctx, s, "v1/bad-auth-token", "a V1 call with a wrong authToken (base64 of 32 zero bytes) answers 000001", "with a wrong authToken",
		"it does not check authToken", emulator.Tamper{Signature: zeroToken})
}

func (r *runner) v1WrongKey(ctx context.Context, s v1Sub) {
	r.v1AuthCase(ctx, s, "v1/wrong-key", "a V1 call whose authToken is made with another key answers 000001", "signed with a made-up key",
		"it does not check authToken against its key", emulator.Tamper{Key: "conformance-made-up-key-" + emulator.NewNonce()})
}

// v1UnknownInstance calls every V1 change of a never-issued instanceId:
// each must answer 000003.
func (r *runner) v1UnknownInstance(ctx context.Context, s v1Sub) {
	cr := r.begin("v1/unknown-instance", "V1 refreshInstance, expireInstance, releaseInstance, upgrade and instanceStatus of a never-issued instanceId answer 000003", specV1Unknown)
	defer r.end(cr)
	id := neverIssued()
	order := "CS" + strings.ToUpper(emulator.NewNonce()[:15])
	calls := []struct {
		activity string
		params   url.Values
	}{
		{protocol.ActivityRefreshInstance, url.Values{"orderId": {order}, "expireTime": {protocol.FormatTime14(time.Now().UTC().AddDate(1, 0, 0))}}},
		{protocol.ActivityExpireInstance, url.Values{"orderId": {order}}},
		{protocol.ActivityReleaseInstance, url.Values{"orderId": {order}}},
		{protocol.ActivityUpgrade, url.Values{"orderId": {order}, "skuCode": {"OFFI-EMU-V1-SKU-PRO"}, "productId": {"OFFI-EMU-V1-1"}}},
		{protocol.ActivityInstanceStatus, url.Values{"instanceStatus": {protocol.InstanceStatusFreeze}}},
	}
	for _, c := range calls {
		c.params.Set("instanceId", id)
		c.params.Set("testFlag", "0")
		r.send(ctx, cr, v1Call(c.activity, c.params, protocol.CodeInstanceNotFound), resultCodeAs(RuleUnknownInstance, func(got protocol.ResultCode) string {
			return fmt.Sprintf("the seller %s to V1 %s of instanceId %s, which it never issued, want 000003 (instance does not exist)", answered(got), c.activity, id)
		}))
	}
}

func (r *runner) v1MissingField(ctx context.Context, _ v1Sub) {
	cr := r.begin("v1/missing-field", "V1 newInstance without orderId answers 000002", specV1Param)
	defer r.end(cr)
	q := r.v1Order(protocol.V1ChargingPeriod)
	q.Del("orderId")
	r.send(ctx, cr, v1Call(protocol.ActivityNewInstance, q, invalidParam...), resultCodeAs(RuleValidation, func(got protocol.ResultCode) string {
		if got == protocol.CodeSuccess {
			return "the seller answered 000000 to a V1 newInstance without orderId: it does not validate requests, want 000002 (invalid parameter)"
		}
		return fmt.Sprintf("the seller %s to a V1 newInstance without orderId, want 000002 (invalid parameter)", answered(got))
	}))
}
