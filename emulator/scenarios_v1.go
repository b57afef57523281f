package emulator

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// The buyer's mobile number and e-mail a V1 newInstance carries,
// AES-encrypted with the basic key (saas-v1-joint-login.md §A.7, §A.8).
// Made up: the emulator has no real buyer.
const (
	v1BuyerMobile = "13800000000"
	v1BuyerEmail  = "buyer@emulator.example.com"
)

// v1ExtendParams are the buyer-entered extension fields a V1 newInstance
// carries in saasExtendParams.
var v1ExtendParams = []protocol.ExtendParam{
	{Name: "companyName", Value: "Emulator Ltd"},
	{Name: "seats", Value: "10"},
}

// v1ChargingModes maps the catalogue's charging modes to V1's integers.
var v1ChargingModes = map[string]string{
	protocol.ChargingPeriod:      protocol.V1ChargingPeriod,
	protocol.ChargingOneTime:     protocol.V1ChargingOneTime,
	protocol.ChargingOnDemand:    protocol.V1ChargingOnDemand,
	protocol.ChargingOnDemandPkg: protocol.V1ChargingOnDemandPkg,
}

// v1OrderAmount is what every emulator V1 order line costs, in yuan.
const v1OrderAmount = "99.000"

// v1Query starts a V1 query: activity, testFlag on a test subscription,
// and the name/value pairs kv with a value.
func v1Query(activity string, x *stepCtx, kv ...string) url.Values {
	q := url.Values{"activity": {activity}}
	if x.testFlag != "" {
		q.Set("testFlag", x.testFlag)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// v1Step turns a V2 step into its V1 counterpart: the same order and
// state change, the V1 activity and query.
func v1Step(s step, iface string, build func(e *Emulator, sub *Subscription, x *stepCtx) url.Values) step {
	s.iface = iface
	s.build = func(e *Emulator, sub *Subscription, x *stepCtx) any { return build(e, sub, x) }
	s.perAttempt = nil
	return s
}

// time14 formats t as yyyyMMddHHmmss, or "" for the zero time.
func time14(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return protocol.FormatTime14(t)
}

// v1NewInstanceStep is V1 newInstance with the whole order in the query
// (saas-v1-joint-login.md §A.5.1): a fresh businessId every attempt,
// mobilePhone and email encrypted (encryptType 1 with the basic key),
// saasExtendParams base64 JSON. The answer's appInfo comes at once.
func v1NewInstanceStep(orderType string) step {
	s := v1Step(newInstanceStep(orderType), protocol.ActivityNewInstance, func(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
		cipher, err := sign.NewCredentialCipher(e.cfg.Key, sign.EncryptType("1"))
		mobile, email := "", ""
		if err == nil { // New refuses an empty Key, the only failure
			mobile, _ = cipher.Encrypt(v1BuyerMobile)
			email, _ = cipher.Encrypt(v1BuyerEmail)
		}
		ext, _ := protocol.EncodeSaaSExtendParams(v1ExtendParams) // plain strings always encode
		q := v1Query(protocol.ActivityNewInstance, x,
			"customerId", e.buyer.customerID,
			"customerName", "emulator-buyer",
			"userId", e.buyer.userID,
			"userName", "emulator-buyer",
			"mobilePhone", mobile,
			"email", email,
			"businessId", uuid.NewString(),
			"orderId", x.order.id,
			"skuCode", x.spec.sku,
			"productId", sub.ProductID,
			"expireTime", time14(x.spec.expire),
			"chargingMode", v1ChargingModes[sub.ChargingMode],
			"saasExtendParams", ext,
			"amount", strconv.Itoa(x.spec.linearValue),
			"orderAmount", v1OrderAmount,
		)
		if sub.ChargingMode == protocol.ChargingPeriod && orderType != protocol.OrderTypeTrial {
			q.Set("periodType", x.spec.periodType)
			q.Set("periodNumber", strconv.Itoa(x.spec.periodNumber))
		}
		if orderType == protocol.OrderTypeTrial {
			q.Set("trialFlag", "1")
			q.Set("orderAmount", "0")
		}
		return q
	})
	s.perAttempt = func(req any) any {
		q := cloneValues(req.(url.Values))
		q.Set("businessId", uuid.NewString()) // different on every call, retries included
		return q
	}
	apply := s.apply
	s.apply = func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
		apply(e, sub, x, a)
		var r protocol.V1NewInstanceResponse
		if json.Unmarshal([]byte(a.Response.Body), &r) == nil && r.AppInfo != nil {
			sub.AppInfo = r.AppInfo
		}
	}
	return s
}

func cloneValues(q url.Values) url.Values {
	c := make(url.Values, len(q))
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	return c
}

// v1Refresh builds refreshInstance for the order the step placed:
// trialToFormal "1" on conversion, the product on conversion (KooGallery
// sends productId when the period type changes), a negative orderAmount
// for a renewal refund.
func v1Refresh(trialToFormal bool, refund bool) func(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
	return func(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
		q := v1Query(protocol.ActivityRefreshInstance, x,
			"orderId", x.order.id,
			"instanceId", sub.InstanceID,
			"expireTime", time14(x.spec.expire),
			"periodType", x.spec.periodType,
			"orderAmount", v1OrderAmount,
		)
		if x.spec.periodNumber > 0 {
			q.Set("periodNumber", strconv.Itoa(x.spec.periodNumber))
		}
		if trialToFormal {
			q.Set("trialToFormal", "1")
			q.Set("productId", sub.ProductID)
		}
		if refund {
			q.Set("orderAmount", "-"+v1OrderAmount)
		}
		return q
	}
}

// v1ByInstance builds an activity that names the instance and its
// original order (expireInstance) or the order the step placed, if any
// (releaseInstance).
func v1ByInstance(activity string) func(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
	return func(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
		order := x.order.id
		if order == "" {
			order = sub.OrderID
		}
		return v1Query(activity, x, "instanceId", sub.InstanceID, "orderId", order)
	}
}

func v1Status(status string) func(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
	return func(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
		return v1Query(protocol.ActivityInstanceStatus, x, "instanceId", sub.InstanceID, "instanceStatus", status)
	}
}

func v1Upgrade(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
	return v1Query(protocol.ActivityUpgrade, x,
		"instanceId", sub.InstanceID,
		"orderId", x.order.id,
		"skuCode", x.spec.sku,
		"productId", sub.ProductID,
		"amount", strconv.Itoa(x.spec.linearValue),
	)
}

func v1QueryInstance(e *Emulator, sub *Subscription, x *stepCtx) url.Values {
	return v1Query(protocol.ActivityQueryInstance, x, "instanceId", sub.InstanceID)
}

// v1Scenarios is the SaaS V1 table (saas-v1-joint-login.md Part A): the
// V2 lifecycle in V1 activities. V1 has no changeInstanceCheck (no
// renewal-change) and no unfreeze activity: a renewal during the freeze
// unfreezes (the instance state machine does so).
var v1Scenarios = []*scenario{
	{
		name: "purchase", title: "Purchase (V1)", spec: "saas-v1-joint-login.md §A.5.1",
		family: V1, proto: ProtocolV1, modes: allModes,
		steps: []step{v1NewInstanceStep(protocol.OrderTypeNew)},
	},
	{
		name: "trial", title: "Trial purchase (V1)", spec: "saas-v1-joint-login.md §A.5.1 (trialFlag)",
		family: V1, proto: ProtocolV1, modes: periodMode,
		steps: []step{v1NewInstanceStep(protocol.OrderTypeTrial)},
	},
	{
		name: "trial-to-formal", title: "Trial converted to paid (V1)", spec: "saas-v1-joint-login.md §A.5.2 (trialToFormal)",
		family: V1, proto: ProtocolV1, modes: periodMode, from: []string{StatusActive}, trial: trialOnly,
		steps: []step{v1Step(refreshStep(protocol.SceneTrialToFormal, protocol.OrderTypeTrialToFormal, mockapi.MockMonthTrialToFormal,
			func(e *Emulator, sub *Subscription) (time.Time, Subscription) {
				return addPeriod(e.orderTimeLocked(sub), sub.PeriodType, sub.PeriodNumber), *sub
			}), protocol.ActivityRefreshInstance, v1Refresh(true, false))},
	},
	{
		name: "renewal", title: "Renewal (V1)", spec: "saas-v1-joint-login.md §A.5.2",
		family: V1, proto: ProtocolV1, modes: periodMode, from: []string{StatusActive}, trial: formalOnly,
		steps: []step{v1Step(renewalStep(), protocol.ActivityRefreshInstance, v1Refresh(false, false))},
	},
	{
		name: "unsubscribe-renewal", title: "Renewal refund (V1)", spec: "saas-v1-joint-login.md §A.5.2 (negative orderAmount)",
		family: V1, proto: ProtocolV1, modes: periodMode, from: []string{StatusActive}, trial: formalOnly,
		check: renewedPeriod,
		steps: []step{v1Step(unsubscribeRenewalStep(), protocol.ActivityRefreshInstance, v1Refresh(false, true))},
	},
	{
		name: "expire", title: "Expiry: freeze (V1)", spec: "saas-v1-joint-login.md §A.5.3",
		family: V1, proto: ProtocolV1, modes: periodMode, from: []string{StatusActive},
		steps: []step{withBefore(v1Step(statusStep(protocol.StatusFreeze, StatusFrozen), protocol.ActivityExpireInstance, v1ByInstance(protocol.ActivityExpireInstance)),
			advanceTo(func(sub *Subscription) time.Time { return sub.ExpireTime }))},
	},
	{
		name: "unfreeze", title: "Renewal during the freeze (V1)", spec: "saas-v1-joint-login.md §A.5.2, §A.5.3",
		family: V1, proto: ProtocolV1, modes: periodMode, from: []string{StatusFrozen}, trial: formalOnly,
		steps: []step{withApply(v1Step(renewalStep(), protocol.ActivityRefreshInstance, v1Refresh(false, false)),
			func(sub *Subscription) { sub.Status = StatusActive })},
	},
	{
		name: "release", title: "Release after the retention period (V1)", spec: "saas-v1-joint-login.md §A.5.4",
		family: V1, proto: ProtocolV1, modes: periodMode, from: []string{StatusFrozen},
		steps: []step{withBefore(v1Step(releaseStep(false), protocol.ActivityReleaseInstance, v1ByInstance(protocol.ActivityReleaseInstance)),
			advanceTo(func(sub *Subscription) time.Time { return sub.ExpireTime.Add(retention) }))},
	},
	{
		name: "unsubscribe", title: "Unsubscribe (V1)", spec: "saas-v1-joint-login.md §A.5.4",
		family: V1, proto: ProtocolV1, modes: allModes, from: []string{StatusActive, StatusFrozen},
		steps: []step{v1Step(releaseStep(true), protocol.ActivityReleaseInstance, v1ByInstance(protocol.ActivityReleaseInstance))},
	},
	{
		name: "upgrade", title: "Upgrade (V1)", spec: "saas-v1-joint-login.md §A.5.5",
		family: V1, proto: ProtocolV1, modes: periodMode, from: []string{StatusActive}, trial: formalOnly,
		steps: []step{v1Step(upgradeStep(), protocol.ActivityUpgrade, v1Upgrade)},
	},
	{
		name: "arrears-freeze", title: "Pay-per-use arrears: freeze (V1)", spec: "saas-v1-joint-login.md §A.5.6",
		family: V1, proto: ProtocolV1, modes: onDemandAll, from: []string{StatusActive},
		steps: []step{v1Step(statusStep(protocol.StatusFreeze, StatusFrozen), protocol.ActivityInstanceStatus, v1Status(protocol.InstanceStatusFreeze))},
	},
	{
		name: "arrears-unfreeze", title: "Pay-per-use arrears paid: unfreeze (V1)", spec: "saas-v1-joint-login.md §A.5.6",
		family: V1, proto: ProtocolV1, modes: onDemandAll, from: []string{StatusFrozen},
		steps: []step{v1Step(statusStep(protocol.StatusUnfreeze, StatusActive), protocol.ActivityInstanceStatus, v1Status(protocol.InstanceStatusNormal))},
	},
	{
		name: "query", title: "Query instance (V1)", spec: "saas-v1-joint-login.md §A.5.7",
		family: V1, proto: ProtocolV1, modes: allModes, from: []string{StatusActive, StatusFrozen, StatusProvisioning},
		steps: []step{v1Step(queryStep(), protocol.ActivityQueryInstance, v1QueryInstance)},
	},
}
