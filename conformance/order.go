package conformance

import (
	"context"
	"fmt"
	"strings"

	"github.com/koobridge/koobridge/emulator"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
)

// Spec sections of the order-notification cases.
const (
	specOrderNotify   = "license-openapi.md §F, Addenda (general key), saas-v2.md §2.4"
	specOrderTestFlag = "license-openapi.md §F, Addenda (testFlag mandatory), saas-v2.md §5 (000002)"
	specOrderLine     = "license-openapi.md §F (orderLineId mandatory), saas-v2.md §5 (000002)"
)

// orderSub is the notified order the order cases work on.
type orderSub struct {
	ok              bool // the order exists (the notification was sent)
	orderID, lineID string
	// first is the answer to the first notification (Response nil when
	// none came).
	first emulator.Attempt
}

// order runs the order-notification cases (license-openapi.md §F) on
// orders of product p.
func (r *runner) order(ctx context.Context, p emulator.Product) {
	on := r.orderNotify(ctx, p)
	for _, step := range []func(context.Context){
		func(ctx context.Context) { r.orderRepeat(ctx, on) },
		func(ctx context.Context) { r.orderConcurrent(ctx, p) },
		func(ctx context.Context) { r.orderMissingTestFlag(ctx, on) },
		func(ctx context.Context) { r.orderWrongKey(ctx, on) },
		func(ctx context.Context) { r.orderMissingOrderLine(ctx, on) },
	} {
		if ctx.Err() != nil {
			return
		}
		step(ctx)
	}
}

// orderNotify places a new order and notifies it: the seller must answer
// 000000 with a Body-Sign made with the general key.
func (r *runner) orderNotify(ctx context.Context, p emulator.Product) orderSub {
	cr := r.begin("order/notify", "a new order is notified: orderNotify answers 000000 with a Body-Sign made with the general key", specOrderNotify)
	defer r.end(cr)
	run, err := r.e.Purchase(ctx, emulator.PurchaseRequest{ProductID: p.ID, Scenario: "order-notify"})
	r.addRunWith(cr, run, err, func(emulator.Message) translate { return r.basicKeyBodySign })
	if err != nil || len(run.Messages) == 0 {
		return orderSub{}
	}
	sub, _ := r.e.Subscription(run.SubscriptionID)
	on := orderSub{ok: sub.OrderID != "", orderID: sub.OrderID, lineID: sub.OrderLineID}
	if m, found := r.e.Message(run.Messages[0]); found && len(m.Attempts) > 0 {
		on.first = m.Attempts[0]
	}
	return on
}

// orderCall is an orderNotify call of the order line with the fields
// given; an empty value leaves its field out.
func orderCall(orderID, lineID, testFlag string, expect ...protocol.ResultCode) emulator.Call {
	fields := map[string]string{"activity": protocol.ActivityOrderNotify, "orderId": orderID, "orderLineId": lineID, "testFlag": testFlag}
	for k, v := range fields {
		if v == "" {
			delete(fields, k)
		}
	}
	return emulator.Call{Family: emulator.OrderNotify, Interface: protocol.ActivityOrderNotify, Body: mustMarshal(fields), Expect: expect}
}

// orderOf is the order line a hand-made orderNotify names: the notified
// one, or a made-up one when the notification could not be sent.
func orderOf(on orderSub) (string, string) {
	if on.ok {
		return on.orderID, on.lineID
	}
	id := "CS" + strings.ToUpper(emulator.NewNonce()[:15])
	return id, id + "-000001"
}

// orderRepeat notifies the same order line again: the answer must carry
// the first answer's resultCode; a different body is noted.
func (r *runner) orderRepeat(ctx context.Context, on orderSub) {
	cr := r.begin("order/repeat", "the same order line notified again is answered as the first time (same resultCode)", suiteSpec[RuleIdempotentOrderNotify])
	defer r.end(cr)
	if !on.ok {
		cr.fail(RuleNotRun, "not run: order/notify could not notify an order")
		return
	}
	first := on.first.ResultCode
	differs := func(got protocol.ResultCode) string {
		return fmt.Sprintf("the repeat of orderNotify for order line %s %s, the first notification %s: a repeated notification must be answered as the first (deduplicate on orderId + orderLineId)", on.lineID, answered(got), answered(first))
	}
	reported := false
	tr := func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		if v.Rule == emulator.RuleResultCode && first != "" && a.ResultCode != first {
			reported = true
			return Failure{Rule: RuleIdempotentOrderNotify, Message: differs(a.ResultCode), Spec: suiteSpec[RuleIdempotentOrderNotify]}, true
		}
		return r.basicKeyBodySign(a, v)
	}
	a, sent := r.send(ctx, cr, orderCall(on.orderID, on.lineID, "0"), tr)
	if !sent {
		return
	}
	switch {
	case first == "":
		cr.c.Note = "the first notification got no answer; the repeat is judged alone"
	case a.ResultCode != "" && a.ResultCode != first && !reported:
		cr.fail(RuleIdempotentOrderNotify, "%s", differs(a.ResultCode))
	}
	if first != "" && a.Response != nil && on.first.Response.Body != a.Response.Body {
		note := fmt.Sprintf("the answers differ: first %s, repeat %s", cut(on.first.Response.Body, maxNoteBody), cut(a.Response.Body, maxNoteBody))
		cr.c.Note = strings.TrimPrefix(cr.c.Note+"; "+note, "; ")
	}
}

// maxNoteBody is how many characters of each differing answer a note shows.
const maxNoteBody = 200

// orderConcurrent notifies a new order concurrentRepeats times at once,
// as KooGallery's duplicate deliveries come: every answer must carry the
// same resultCode (the emulator's idempotency check).
func (r *runner) orderConcurrent(ctx context.Context, p emulator.Product) {
	cr := r.begin("order/concurrent", fmt.Sprintf("%d concurrent deliveries of one order notification all get the same resultCode", concurrentRepeats), suiteSpec[RuleIdempotentOrderNotify])
	defer r.end(cr)
	run, err := r.e.Purchase(ctx, emulator.PurchaseRequest{ProductID: p.ID, Scenario: "order-notify", Duplicates: concurrentRepeats - 1})
	r.addRunWith(cr, run, err, func(m emulator.Message) translate {
		dup := duplicatesAs(m, RuleIdempotentOrderNotify, "orderNotify")
		return func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
			if f, ok := dup(a, v); ok {
				return f, true
			}
			return r.basicKeyBodySign(a, v)
		}
	})
}

// orderParamCase sends one orderNotify missing a mandatory field: it must
// answer 000002.
func (r *runner) orderParamCase(ctx context.Context, id, title, spec, what string, c emulator.Call) {
	cr := r.begin(id, title, spec)
	defer r.end(cr)
	r.send(ctx, cr, c, func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
		if v.Rule != emulator.RuleResultCode {
			return r.basicKeyBodySign(a, v)
		}
		msg := fmt.Sprintf("the seller %s to %s, want 000002 (invalid parameter)", answered(a.ResultCode), what)
		if a.ResultCode == protocol.CodeSuccess {
			msg = fmt.Sprintf("the seller accepted %s: every field of orderNotify is mandatory, want 000002 (invalid parameter)", what)
		}
		return Failure{Rule: RuleValidation, Message: msg, Spec: spec}, true
	})
}

func (r *runner) orderMissingTestFlag(ctx context.Context, on orderSub) {
	orderID, lineID := orderOf(on)
	r.orderParamCase(ctx, "order/missing-test-flag", "orderNotify without testFlag answers 000002", specOrderTestFlag,
		"an orderNotify without testFlag", orderCall(orderID, lineID, "", invalidParam...))
}

func (r *runner) orderMissingOrderLine(ctx context.Context, on orderSub) {
	orderID, _ := orderOf(on)
	r.orderParamCase(ctx, "order/missing-order-line", "orderNotify without orderLineId answers 000002", specOrderLine,
		"an orderNotify without orderLineId", orderCall(orderID, "", "0", invalidParam...))
}

// orderWrongKey sends orderNotify signed with a made-up key and with the
// basic key: both must answer 000001, since order notification is
// verified with the general key. It is skipped when the general key is
// the basic key.
func (r *runner) orderWrongKey(ctx context.Context, on orderSub) {
	cr := r.begin("order/wrong-key", "orderNotify signed with a key other than the general key (a made-up one, the basic key) answers 000001", suiteSpec[RuleGeneralKey])
	defer r.end(cr)
	cfg := r.e.Config()
	if cfg.KeyFor(emulator.KeyGeneral) == cfg.Key {
		cr.c.Skipped = true
		cr.c.Note = "the general key is the basic key (no general key configured): a seller cannot tell them apart; give the suite the key bound to 通用接口 to run this case"
		return
	}
	orderID, lineID := orderOf(on)
	for _, k := range []struct{ key, what, fault string }{
		{"conformance-made-up-key-" + emulator.NewNonce(), "a made-up key", "it does not check the signature of order notifications"},
		{cfg.Key, "the basic key", "it verifies order notifications with the basic-interface key (基础接口); they are signed with the general key (通用接口)"},
	} {
		c := orderCall(orderID, lineID, "0", authFailed...)
		c.Tamper.Key = k.key
		r.send(ctx, cr, c, func(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
			if v.Rule != emulator.RuleResultCode {
				return r.basicKeyBodySign(a, v)
			}
			msg := fmt.Sprintf("the seller %s to an orderNotify signed with %s, want 000001 (authentication failed)", answered(a.ResultCode), k.what)
			if a.ResultCode == protocol.CodeSuccess {
				msg = fmt.Sprintf("the seller accepted an orderNotify signed with %s: %s", k.what, k.fault)
			}
			return Failure{Rule: RuleGeneralKey, Message: msg, Spec: suiteSpec[RuleGeneralKey]}, true
		})
	}
}

// basicKeyBodySign explains a body-sign failure of an orderNotify answer
// whose Body-Sign is made with the basic key instead of the general key;
// other violations stay as they are.
func (r *runner) basicKeyBodySign(a emulator.Attempt, v emulator.Violation) (Failure, bool) {
	cfg := r.e.Config()
	if v.Rule != emulator.RuleBodySign || a.Response == nil || a.Response.Truncated || cfg.KeyFor(emulator.KeyGeneral) == cfg.Key {
		return Failure{}, false
	}
	if sign.VerifyBodySign(cfg.Key, a.Response.Header[sign.BodySignHeader], []byte(a.Response.Body)) != nil {
		return Failure{}, false
	}
	return Failure{
		Rule:    string(v.Rule),
		Message: protocol.ActivityOrderNotify + ": " + v.Message + ": it is made with the basic key; answers to orderNotify are signed with the general key (通用接口)",
		Spec:    v.Spec + ", license-openapi.md Addenda",
	}, true
}
