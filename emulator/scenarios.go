package emulator

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/emulator/mockapi"
	"github.com/koobridge/koobridge/protocol"
)

// retention is how long a frozen PERIOD instance is kept after its expiry
// before KooGallery releases it (saas-v2.md §3.4: at most 15 days).
const retention = 15 * 24 * time.Hour

// scenarioTables lists every family's scenarios. V1, Kit and license
// scenarios are further tables played by the same runner.
var scenarioTables = [][]*scenario{v2Scenarios, orderNotifyScenarios, v1Scenarios, kitScenarios, licenseScenarios, onlineLicenseScenarios}

// Product protocols: the generation of the basic interfaces a product
// speaks (Product.Protocol).
const (
	ProtocolV2            = "v2"             // SaaS V2: POST JSON (the default)
	ProtocolV1            = "v1"             // SaaS V1: GET with the query (saas-v1-joint-login.md Part A)
	ProtocolLicense       = "license"        // license codes (license-openapi.md §A): the LicenseCode family
	ProtocolOnlineLicense = "online-license" // online license (§C): the OnlineLicense family
)

// protoAny marks a scenario played on products of either protocol.
const protoAny = "*"

// protocolOf is the protocol a Product.Protocol or Subscription.Protocol
// names: empty means ProtocolV2.
func protocolOf(p string) string { return cmp.Or(p, ProtocolV2) }

// scenario is one KooGallery flow as data: where it applies and the steps
// it plays. The runner (run) knows nothing about any one scenario.
type scenario struct {
	name, title, spec string
	family            *Family
	// familyOf, when set, chooses the family per subscription (the Kit
	// scenarios speak KitV1 to V1 products and KitV2 to V2 ones); family
	// then only names it for display.
	familyOf func(sub *Subscription) *Family
	// proto is the product protocol it plays on: "" (V2), ProtocolV1 or
	// protoAny.
	proto string
	// joint: it plays on joint-operation products only.
	joint bool
	// needs, when set, says what the configuration lacks for the
	// scenario ("" when nothing); Play and Purchase refuse it then.
	needs func(cfg Config) string
	modes []string
	from  []string // statuses it starts from; empty: a new purchase
	trial trialRule
	// check, when set, refuses a subscription the scenario cannot apply
	// to for reasons beyond mode and status, saying why; "" accepts it.
	// It reads sub only (e.mu held, or a copy).
	check func(sub *Subscription) string
	steps []step
}

// trialRule says whether a scenario needs a trial subscription.
type trialRule int

const (
	anyTrial trialRule = iota
	trialOnly
	formalOnly
)

// step is one call of a scenario. Every function runs with e.mu held.
type step struct {
	iface string
	// before prepares the call, e.g. moves the clock to the expiry; an
	// error stops the run.
	before func(e *Emulator, sub *Subscription) error
	// order, when set, describes the order the step places and names the
	// debug order a test subscription uses instead (none: a fresh one).
	order func(e *Emulator, sub *Subscription) (spec orderSpec, mockID string)
	// build returns the request; x holds the order placed, if any.
	build func(e *Emulator, sub *Subscription, x *stepCtx) any
	// perAttempt, when set, changes the request before each attempt.
	perAttempt func(req any) any
	// expect lists acceptable resultCodes; empty means Call's default.
	expect []protocol.ResultCode
	// apply changes the subscription after the call succeeded.
	apply func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt)
	// skip, when set and true, leaves the step out (nothing to send).
	skip func(e *Emulator, sub *Subscription) bool
	// local, when set, makes a step that sends nothing: KooGallery
	// changes its own state (issues a license code) after the step's
	// order is placed. It runs with e.mu held; an error stops the run.
	local func(e *Emulator, sub *Subscription, x *stepCtx) error
	// wait, when set, makes a step that sends nothing but waits, without
	// e.mu, for what the seller must do (upload a license); an error stops
	// the run.
	wait func(ctx context.Context, e *Emulator, sub *Subscription) error
}

// stepCtx is what one step knows while it is being played.
type stepCtx struct {
	scenario string
	family   *Family
	order    order
	spec     orderSpec
	testFlag string
	first    time.Time // emulated time of the first attempt
	// syncPoll: the caller polls queryInstance itself after 000004
	// (Config.NoRetry inside Purchase), so apply must not start polling.
	syncPoll bool
	// poll is the message of the polls after 000004 (e.mu held).
	poll *delivery
	// run is the run the step belongs to (never nil once played);
	// polling is set when newInstance answered 000004 and queryInstance
	// is polled, in the background or (syncPoll) by the caller: the run
	// ends with the polling.
	run     *runState
	polling bool
}

func (s *scenario) info() Scenario {
	steps := make([]string, len(s.steps))
	for i, st := range s.steps {
		steps[i] = st.iface
	}
	return Scenario{
		Name: s.name, Title: s.title, Spec: s.spec, Family: s.family.Name,
		Protocol: s.protoName(), Joint: s.joint,
		Modes: s.modes, From: s.from, Steps: steps,
	}
}

// protoName is the product protocol s plays on, for display.
func (s *scenario) protoName() string {
	if s.proto == protoAny {
		return "any"
	}
	return protocolOf(s.proto)
}

// fits reports whether s plays on products of protocol proto.
func (s *scenario) fits(proto string) bool {
	return s.proto == protoAny || protocolOf(s.proto) == protocolOf(proto)
}

// familyFor is the family s's calls to sub go through.
func (s *scenario) familyFor(sub *Subscription) *Family {
	if s.familyOf != nil {
		return s.familyOf(sub)
	}
	return s.family
}

// refusal says why s cannot be played on sub, or "" when it can: the
// charging mode, the status it starts from, the trial rule and the
// scenario's own check. Play adds what changes from moment to moment (a
// scenario or a retry under way); the dashboard offers what this
// accepts. It reads sub only (e.mu held, or a copy).
func (s *scenario) refusal(sub *Subscription) string {
	switch {
	case len(s.from) == 0:
		return "it starts a new purchase; use Purchase"
	case !s.fits(sub.Protocol):
		return fmt.Sprintf("not for %s products (it plays on %s products)", protocolOf(sub.Protocol), s.protoName())
	case s.joint && !sub.Joint:
		return "not a joint-operation product"
	case !slices.Contains(s.modes, sub.ChargingMode):
		return fmt.Sprintf("not for %s subscriptions (it plays on %v)", sub.ChargingMode, s.modes)
	case !slices.Contains(s.from, sub.Status):
		return fmt.Sprintf("the subscription is %s; it must be %v", sub.Status, s.from)
	case s.trial == trialOnly && !sub.Trial:
		return "the subscription is not a trial"
	case s.trial == formalOnly && sub.Trial:
		return "the subscription is a trial; convert it first (trial-to-formal)"
	case s.check != nil:
		return s.check(sub)
	}
	return ""
}

// scenarioNames lists every scenario's name.
func scenarioNames() []string {
	var names []string
	for _, table := range scenarioTables {
		for _, s := range table {
			if !slices.Contains(names, s.name) {
				names = append(names, s.name)
			}
		}
	}
	return names
}

// anyScenario returns a scenario called name, whatever its protocol, or
// nil.
func anyScenario(name string) *scenario {
	for _, table := range scenarioTables {
		for _, s := range table {
			if s.name == name {
				return s
			}
		}
	}
	return nil
}

// findScenario returns the scenario called name that plays on products of
// protocol proto, or nil.
func findScenario(name, proto string) *scenario {
	for _, table := range scenarioTables {
		for _, s := range table {
			if s.name == name && s.fits(proto) {
				return s
			}
		}
	}
	return nil
}

var (
	allModes    = []string{protocol.ChargingPeriod, protocol.ChargingOneTime, protocol.ChargingOnDemand, protocol.ChargingOnDemandPkg}
	periodMode  = []string{protocol.ChargingPeriod}
	onDemandAll = []string{protocol.ChargingOnDemand, protocol.ChargingOnDemandPkg}
)

// v2Scenarios is the SaaS V2 table (saas-v2.md §3 and §6.3).
var v2Scenarios = []*scenario{
	{
		name: "purchase", title: "Purchase", spec: "saas-v2.md §3.1, §6.3",
		family: V2, modes: allModes,
		steps: []step{newInstanceStep(protocol.OrderTypeNew)},
	},
	{
		name: "trial", title: "Trial purchase", spec: "saas-v2.md §3.1, §6.8",
		family: V2, modes: periodMode,
		steps: []step{newInstanceStep(protocol.OrderTypeTrial)},
	},
	{
		name: "trial-to-formal", title: "Trial converted to paid", spec: "saas-v2.md §3.3, §6.8",
		family: V2, modes: periodMode, from: []string{StatusActive}, trial: trialOnly,
		steps: []step{refreshStep(protocol.SceneTrialToFormal, protocol.OrderTypeTrialToFormal, mockapi.MockMonthTrialToFormal,
			func(e *Emulator, sub *Subscription) (time.Time, Subscription) {
				// UNCONFIRMED: the paid period starts at conversion.
				return addPeriod(e.orderTimeLocked(sub), sub.PeriodType, sub.PeriodNumber), *sub
			})},
	},
	{
		name: "renewal", title: "Renewal", spec: "saas-v2.md §3.3",
		family: V2, modes: periodMode, from: []string{StatusActive}, trial: formalOnly,
		steps: []step{renewalStep()},
	},
	{
		name: "unsubscribe-renewal", title: "Unsubscribe a renewed period", spec: "saas-v2.md §3.3",
		family: V2, modes: periodMode, from: []string{StatusActive}, trial: formalOnly,
		check: renewedPeriod,
		steps: []step{unsubscribeRenewalStep()},
	},
	{
		name: "renewal-change", title: "Renewal with a change of period", spec: "saas-v2.md §3.7, §3.3",
		family: V2, modes: periodMode, from: []string{StatusActive}, trial: formalOnly,
		steps: []step{changeCheckStep(), changeStep()},
	},
	{
		name: "expire", title: "Expiry: freeze", spec: "saas-v2.md §3.4",
		family: V2, modes: periodMode, from: []string{StatusActive},
		steps: []step{withBefore(statusStep(protocol.StatusFreeze, StatusFrozen), advanceTo(func(sub *Subscription) time.Time { return sub.ExpireTime }))},
	},
	{
		name: "unfreeze", title: "Renewal during the freeze: unfreeze", spec: "saas-v2.md §3.3, §3.4",
		family: V2, modes: periodMode, from: []string{StatusFrozen}, trial: formalOnly,
		steps: []step{renewalStep(), statusStep(protocol.StatusUnfreeze, StatusActive)},
	},
	{
		name: "release", title: "Release after the retention period", spec: "saas-v2.md §3.5, §3.4",
		family: V2, modes: periodMode, from: []string{StatusFrozen},
		steps: []step{withBefore(releaseStep(false), advanceTo(func(sub *Subscription) time.Time { return sub.ExpireTime.Add(retention) }))},
	},
	{
		name: "unsubscribe", title: "Unsubscribe", spec: "saas-v2.md §3.5",
		family: V2, modes: allModes, from: []string{StatusActive, StatusFrozen},
		steps: []step{releaseStep(true)},
	},
	{
		name: "upgrade", title: "Upgrade", spec: "saas-v2.md §3.6",
		family: V2, modes: periodMode, from: []string{StatusActive}, trial: formalOnly,
		steps: []step{upgradeStep()},
	},
	{
		name: "arrears-freeze", title: "Pay-per-use arrears: freeze", spec: "saas-v2.md §3.4",
		family: V2, modes: onDemandAll, from: []string{StatusActive},
		steps: []step{statusStep(protocol.StatusFreeze, StatusFrozen)},
	},
	{
		name: "arrears-unfreeze", title: "Pay-per-use arrears paid: unfreeze", spec: "saas-v2.md §3.4",
		family: V2, modes: onDemandAll, from: []string{StatusFrozen},
		steps: []step{statusStep(protocol.StatusUnfreeze, StatusActive)},
	},
	{
		name: "query", title: "Query instance", spec: "saas-v2.md §3.2",
		family: V2, modes: allModes, from: []string{StatusActive, StatusFrozen, StatusProvisioning},
		steps: []step{queryStep()},
	},
}

// mockNew is the debug order a test purchase of each charging mode uses.
var mockNew = map[string]string{
	protocol.ChargingPeriod:      mockapi.MockPeriodYearNew,
	protocol.ChargingOneTime:     mockapi.MockOneTimeNew,
	protocol.ChargingOnDemand:    mockapi.MockOnDemand,
	protocol.ChargingOnDemandPkg: mockapi.MockOnDemandPkg,
}

// orderNotifyScenarios is the order-notification table (license-openapi.md
// §F): a paid order is notified; the seller fetches it with Query Order.
var orderNotifyScenarios = []*scenario{
	{
		name: "order-notify", title: "Order notification", spec: "license-openapi.md §F",
		family: OrderNotify, modes: allModes,
		steps: []step{orderNotifyStep()},
	},
}

// newOrder places the order a purchase makes: a NEW order for one period
// of the subscription (none for other charging modes), or a TRIAL order
// of the product's trial days. It returns the debug order a test
// subscription uses instead.
func newOrder(orderType string) func(e *Emulator, sub *Subscription) (orderSpec, string) {
	return func(e *Emulator, sub *Subscription) (orderSpec, string) {
		now := e.orderAtLocked(sub)
		spec := orderSpec{orderType: orderType, sku: sub.SKU, linearValue: sub.LinearValue}
		if orderType == protocol.OrderTypeTrial {
			p, _ := e.productLocked(sub.ProductID)
			spec.periodType, spec.periodNumber = "day", p.TrialDays
			spec.expire = addPeriod(now, "day", p.TrialDays)
			return spec, mockapi.MockPeriodDayTrial
		}
		if sub.ChargingMode == protocol.ChargingPeriod {
			spec.periodType, spec.periodNumber = sub.PeriodType, sub.PeriodNumber
			spec.expire = addPeriod(now, sub.PeriodType, sub.PeriodNumber)
		}
		return spec, mockNew[sub.ChargingMode]
	}
}

// orderNotifyStep notifies a NEW order: testFlag "1" on a test
// subscription's MOCK* order, "0" otherwise (the field is mandatory,
// license-openapi.md Addenda). Success leaves the subscription notified.
func orderNotifyStep() step {
	return step{
		iface: protocol.ActivityOrderNotify,
		order: newOrder(protocol.OrderTypeNew),
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			return protocol.OrderNotifyRequest{
				ActivityName: protocol.ActivityOrderNotify,
				OrderID:      x.order.id,
				OrderLineID:  x.order.line,
				TestFlag:     cmp.Or(x.testFlag, "0"),
			}
		},
		apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
			sub.ExpireTime = x.spec.expire
			sub.Status = StatusNotified
		},
	}
}

func newInstanceStep(orderType string) step {
	return step{
		iface: protocol.ActivityNewInstance,
		order: newOrder(orderType),
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			return protocol.NewInstanceRequest{
				ActivityName: protocol.ActivityNewInstance,
				BusinessID:   uuid.NewString(),
				OrderID:      x.order.id,
				OrderLineID:  x.order.line,
				TestFlag:     x.testFlag,
			}
		},
		perAttempt: func(req any) any {
			r := req.(protocol.NewInstanceRequest)
			r.BusinessID = uuid.NewString() // different on every call, retries included
			return r
		},
		apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
			id := instanceIDOf(a.Response.Body)
			sub.InstanceID = id
			e.known[id] = sub
			sub.ExpireTime = x.spec.expire
			if a.ResultCode != protocol.CodeProcessing {
				sub.Status = StatusActive
				return
			}
			sub.Status = StatusProvisioning
			x.polling = true
			if !x.syncPoll {
				e.pollLaterLocked(sub, x, a.At)
			}
		},
	}
}

// refreshStep is refreshInstance with an order: expiry says the new
// expireTime and the subscription after success.
func refreshStep(scene, orderType, mockID string, expiry func(e *Emulator, sub *Subscription) (time.Time, Subscription)) step {
	return step{
		iface: protocol.ActivityRefreshInstance,
		order: func(e *Emulator, sub *Subscription) (orderSpec, string) {
			exp, next := expiry(e, sub)
			return orderSpec{
				orderType: orderType, expire: exp, periodType: next.PeriodType,
				periodNumber: next.PeriodNumber, sku: next.SKU, linearValue: next.LinearValue,
			}, mockID
		},
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			r := protocol.RefreshInstanceRequest{
				ActivityName: protocol.ActivityRefreshInstance,
				ExpireTime:   protocol.FormatTime14(x.spec.expire),
				InstanceID:   sub.InstanceID,
				OrderID:      x.order.id,
				OrderLineID:  x.order.line,
				Scene:        scene,
				TestFlag:     x.testFlag,
			}
			if scene == protocol.SceneRenewalChange {
				r.ProductID = sub.ProductID
			}
			return r
		},
		apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
			sub.ExpireTime = x.spec.expire
			sub.PeriodType, sub.PeriodNumber, sub.SKU = x.spec.periodType, x.spec.periodNumber, x.spec.sku
			if scene == protocol.SceneTrialToFormal {
				sub.Trial = false
			}
		},
	}
}

// renewalStep renews for one more period from the current expiry; the
// period counts as renewed (unsubscribe-renewal can undo it).
func renewalStep() step {
	return withApply(refreshStep(protocol.SceneRenewal, protocol.OrderTypeRenew, mockapi.MockMonthRenew,
		func(e *Emulator, sub *Subscription) (time.Time, Subscription) {
			return addPeriod(sub.ExpireTime, sub.PeriodType, sub.PeriodNumber), *sub
		}), func(sub *Subscription) { sub.RenewedPeriods++ })
}

// renewedPeriod refuses a subscription without a renewed period to undo.
func renewedPeriod(sub *Subscription) string {
	if sub.RenewedPeriods <= 0 {
		return "there is no renewed period to unsubscribe; play renewal first"
	}
	return ""
}

// unsubscribeRenewalStep is refreshInstance UNSUBSCRIBE_RENEWAL_PERIOD
// with an UNSUBSCRIBE order: one period less, one renewal undone.
func unsubscribeRenewalStep() step {
	return withApply(refreshStep(protocol.SceneUnsubscribeRenewalPeriod, protocol.OrderTypeUnsubscribe, mockapi.MockMonthUnsubscribe,
		func(e *Emulator, sub *Subscription) (time.Time, Subscription) {
			return addPeriod(sub.ExpireTime, sub.PeriodType, -sub.PeriodNumber), *sub
		}), func(sub *Subscription) { sub.RenewedPeriods = max(sub.RenewedPeriods-1, 0) })
}

// changeStep is the refresh of renewal-change: a CHANGE order for one
// period of the other period type, from the current expiry.
func changeStep() step {
	return refreshStep(protocol.SceneRenewalChange, protocol.OrderTypeChange, mockapi.MockMonthChange,
		func(e *Emulator, sub *Subscription) (time.Time, Subscription) {
			base, _ := e.productLocked(sub.ProductID)
			typ, n, sku := changedPeriod(sub, base)
			next := *sub
			next.PeriodType, next.PeriodNumber, next.SKU = typ, n, sku
			return addPeriod(sub.ExpireTime, typ, n), next
		})
}

// withApply returns s with more to apply after its own change.
func withApply(s step, more func(sub *Subscription)) step {
	apply := s.apply
	s.apply = func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
		apply(e, sub, x, a)
		more(sub)
	}
	return s
}

func changeCheckStep() step {
	return step{
		iface: protocol.ActivityChangeInstanceCheck,
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			base, _ := e.productLocked(sub.ProductID)
			_, _, sku := changedPeriod(sub, base)
			return protocol.ChangeInstanceCheckRequest{
				ActivityName: protocol.ActivityChangeInstanceCheck,
				InstanceID:   sub.InstanceID,
				ProductInfo: &protocol.ProductInfo{
					ProductID:   protocol.FlexString(sub.ProductID),
					SKUCode:     protocol.FlexString(sku),
					LinearValue: protocol.FlexNumber(strconv.Itoa(sub.LinearValue)),
					ProductName: protocol.FlexString(base.Name),
				},
				TestFlag: x.testFlag,
			}
		},
	}
}

func statusStep(status, to string) step {
	return step{
		iface: protocol.ActivityUpdateInstanceStatus,
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			return protocol.UpdateInstanceStatusRequest{
				ActivityName: protocol.ActivityUpdateInstanceStatus,
				InstanceID:   sub.InstanceID,
				Status:       status,
				TestFlag:     x.testFlag,
			}
		},
		apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) { sub.Status = to },
	}
}

// releaseStep is releaseInstance, with an UNSUBSCRIBE order when
// unsubscribe is set and without one at the end of the retention period.
func releaseStep(unsubscribe bool) step {
	s := step{
		iface: protocol.ActivityReleaseInstance,
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			return protocol.ReleaseInstanceRequest{
				ActivityName: protocol.ActivityReleaseInstance,
				InstanceID:   sub.InstanceID,
				OrderID:      x.order.id,
				OrderLineID:  x.order.line,
				TestFlag:     x.testFlag,
			}
		},
		apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
			sub.Status = StatusReleased
			e.setReleasedLocked(sub)
		},
	}
	if unsubscribe {
		s.order = func(e *Emulator, sub *Subscription) (orderSpec, string) {
			spec := orderSpec{orderType: protocol.OrderTypeUnsubscribe, periodType: sub.PeriodType,
				periodNumber: sub.PeriodNumber, sku: sub.SKU, linearValue: sub.LinearValue}
			if sub.ChargingMode == protocol.ChargingPeriod {
				spec.expire = e.orderTimeLocked(sub) // the subscription ends now
			}
			return spec, mockapi.MockMonthUnsubscribe
		}
	}
	return s
}

// upgradeStep raises the linear value by one with a CHANGE order.
func upgradeStep() step {
	return step{
		iface: protocol.ActivityUpgradeInstance,
		order: func(e *Emulator, sub *Subscription) (orderSpec, string) {
			return orderSpec{
				orderType: protocol.OrderTypeChange, expire: sub.ExpireTime, periodType: sub.PeriodType,
				periodNumber: sub.PeriodNumber, sku: sub.SKU, linearValue: sub.LinearValue + 1,
			}, mockapi.MockMonthChange
		},
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			return protocol.UpgradeInstanceRequest{
				ActivityName: protocol.ActivityUpgradeInstance,
				InstanceID:   sub.InstanceID,
				OrderID:      x.order.id,
				OrderLineID:  x.order.line,
				TestFlag:     x.testFlag,
			}
		},
		apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) { sub.LinearValue = x.spec.linearValue },
	}
}

func queryStep() step {
	return step{
		iface: protocol.ActivityQueryInstance,
		build: func(e *Emulator, sub *Subscription, x *stepCtx) any {
			return protocol.QueryInstanceRequest{
				ActivityName: protocol.ActivityQueryInstance,
				InstanceID:   sub.InstanceID,
				TestFlag:     x.testFlag,
			}
		},
		apply: func(e *Emulator, sub *Subscription, x *stepCtx, a Attempt) {
			if info, ok := appInfoOf(a.Response.Body, sub.InstanceID); ok {
				sub.AppInfo = info
			}
		},
	}
}

// withBefore returns s with a preparation run ahead of its call.
func withBefore(s step, before func(e *Emulator, sub *Subscription) error) step {
	s.before = before
	return s
}

// advanceTo moves sub's clock, and no other, to the time t gives, if it
// is ahead.
func advanceTo(t func(sub *Subscription) time.Time) func(e *Emulator, sub *Subscription) error {
	return func(e *Emulator, sub *Subscription) error {
		if d := t(sub).Sub(e.clockLocked(sub)); d > 0 {
			return e.advanceSubLocked(sub, d)
		}
		return nil
	}
}

// appInfoOf finds the appInfo of instance id in a queryInstance answer.
func appInfoOf(body, id string) (*protocol.AppInfo, bool) {
	r, ok := queryReply(body)
	if !ok {
		return nil, false
	}
	for _, in := range r.Info {
		if in.InstanceID == id && in.AppInfo != nil {
			return in.AppInfo, true
		}
	}
	return nil, false
}
