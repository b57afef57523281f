// Package saasv2 is the family of the SaaS V2 basic interfaces
// (saas-v2.md §3): POST at the production path, signed with the basic key
// in the URL (signature, timestamp, nonce), the activity in the JSON body.
// It decodes the seven activities and maps each onto the shared instance
// state machine (package instance), writing V2's replies.
package saasv2

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// Name labels the family in the ledger, the log and metrics.
const Name = "v2"

// handler runs the activities on the instance service.
type handler struct {
	svc  *instance.Service
	opts Options
}

// Options adapt the V2 instance activities to another family that shares
// them (online license, license-openapi.md §C).
type Options struct {
	// AppInfoOptional marks the instances newInstance creates as those of
	// a product without a web front end (online license): instance.created
	// may be answered without appInfo. It is part of the purchase's
	// fingerprint, so an order line bought by one family is not a repeat
	// for the other.
	AppInfoOptional bool
}

// Serve returns the dispatch of the V2 instance activities on svc with
// opts, for a family that shares them; which of them it serves is its own
// Family.Activities (the pipeline refuses the others before Serve). The V2
// family itself is Family.
func Serve(svc *instance.Service, opts Options) func(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	return handler{svc: svc, opts: opts}.serve
}

// activity is one served activity: its name and what runs it. The request
// it gets is the decoded type of that activity.
type activity struct {
	name string
	run  func(h handler, ctx context.Context, req inbound.Request) (inbound.Outcome, error)
}

// activities is the one list of what the family serves: it gives the
// family its Activities (routing, metrics) and serve its dispatch.
var activities = []activity{
	{protocol.ActivityNewInstance, handler.newInstance},
	{protocol.ActivityQueryInstance, handler.queryInstance},
	{protocol.ActivityRefreshInstance, handler.refreshInstance},
	{protocol.ActivityUpdateInstanceStatus, handler.updateInstanceStatus},
	{protocol.ActivityReleaseInstance, handler.releaseInstance},
	{protocol.ActivityUpgradeInstance, handler.upgradeInstance},
	{protocol.ActivityChangeInstanceCheck, handler.changeInstanceCheck},
}

// Activities returns the seven V2 basic activities.
func Activities() []string {
	names := make([]string, len(activities))
	for i, a := range activities {
		names[i] = a.name
	}
	return names
}

// Family returns the SaaS V2 family served at path by svc.
func Family(svc *instance.Service, path string) *inbound.Family {
	h := handler{svc: svc}
	return &inbound.Family{
		Name:       Name,
		Method:     http.MethodPost,
		Path:       path,
		Keys:       inbound.KeyBasic,
		Scheme:     inbound.URLSignature,
		Activities: Activities(),
		Decode:     decode,
		Serve:      h.serve,
	}
}

// decode decodes a V2 body strictly (package protocol refuses duplicate
// keys, wrong types, invalid UTF-8 and NUL).
func decode(c *inbound.Call) (inbound.Request, error) {
	return protocol.DecodeV2(c.Body)
}

// serve runs one decoded, valid V2 request.
func (h handler) serve(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	for _, a := range activities {
		if a.name == req.Activity() {
			return a.run(h, ctx, req)
		}
	}
	return inbound.Outcome{}, fmt.Errorf("saasv2: activity %s has no handler", req.Activity())
}

// outcome completes out, which says what the call named, with the
// instance service's answer.
func outcome(a instance.Answer, out inbound.Outcome, err error) (inbound.Outcome, error) {
	if err != nil {
		return inbound.Outcome{}, err
	}
	out.Response = json.RawMessage(a.Body)
	out.Code, out.Msg, out.Repeat = a.Code, a.Msg, a.Repeat
	if out.IdemKey == "" {
		out.IdemKey = a.Key
	}
	if out.InstanceID == "" {
		out.InstanceID = a.Instance.ID
	}
	out.Test = out.Test || a.Instance.Test
	return out, nil
}

func (h handler) newInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.NewInstanceRequest)
	test := protocol.IsTestOrder(r.IsTest(), r.OrderID)
	fp := []string{strconv.FormatBool(test)}
	if h.opts.AppInfoOptional {
		fp = append(fp, "appInfoOptional")
	}
	a, err := h.svc.Create(ctx, instance.Create{
		Activity:        r.Activity(),
		OrderID:         r.OrderID,
		OrderLineID:     r.OrderLineID,
		BusinessID:      r.BusinessID,
		Test:            test,
		Fingerprint:     instance.Fingerprint(fp...),
		AppInfoOptional: h.opts.AppInfoOptional,
	}, renderNewInstance)
	return outcome(a, inbound.Outcome{OrderID: r.OrderID, OrderLineID: r.OrderLineID, Test: test}, err)
}

func (h handler) queryInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.QueryInstanceRequest)
	resp, err := h.svc.Query(ctx, r.InstanceIDs())
	if err != nil {
		return inbound.Outcome{}, err
	}
	out := inbound.Outcome{Response: resp, Code: resp.ResultCode, Msg: resp.ResultMsg, Test: protocol.IsTestOrder(r.IsTest(), "")}
	if ids := r.InstanceIDs(); len(ids) == 1 {
		out.InstanceID = ids[0]
	}
	return out, nil
}

func (h handler) refreshInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.RefreshInstanceRequest)
	out := inbound.Outcome{
		IdemKey: instance.Key(r.Activity(), r.OrderID, r.OrderLineID, r.Scene), InstanceID: r.InstanceID,
		OrderID: r.OrderID, OrderLineID: r.OrderLineID, Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}
	expiry, err := r.Expiry()
	if err != nil {
		a, err := plainAnswer(protocol.CodeInvalidParam, (&protocol.FieldError{Field: "expireTime", Problem: err.Error()}).Error())
		return outcome(a, out, err)
	}
	a, err := h.svc.Renew(ctx, instance.Renewal{
		Activity:    r.Activity(),
		Key:         out.IdemKey,
		Fingerprint: instance.Fingerprint(r.InstanceID, strconv.FormatInt(expiry.UnixMilli(), 10), r.ProductID),
		InstanceID:  r.InstanceID,
		OrderID:     r.OrderID,
		OrderLineID: r.OrderLineID,
		Scene:       r.Scene,
		ProductID:   r.ProductID,
		Expiry:      expiry,
	}, render)
	return outcome(a, out, err)
}

func (h handler) updateInstanceStatus(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.UpdateInstanceStatusRequest)
	key := instance.Key(r.Activity(), r.InstanceID, r.Status)
	a, err := h.svc.SetStatus(ctx, key, r.InstanceID, r.Status == protocol.StatusFreeze, render)
	return outcome(a, inbound.Outcome{IdemKey: key, InstanceID: r.InstanceID, Test: protocol.IsTestOrder(r.IsTest(), "")}, err)
}

func (h handler) releaseInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.ReleaseInstanceRequest)
	key := instance.Key(r.Activity(), r.InstanceID)
	a, err := h.svc.Release(ctx, key, r.InstanceID, render)
	return outcome(a, inbound.Outcome{
		IdemKey: key, InstanceID: r.InstanceID, OrderID: r.OrderID, OrderLineID: r.OrderLineID,
		Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}, err)
}

func (h handler) upgradeInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.UpgradeInstanceRequest)
	key := instance.Key(r.Activity(), r.OrderID, r.OrderLineID)
	a, err := h.svc.Upgrade(ctx, instance.Upgrade{
		Activity:    r.Activity(),
		Key:         key,
		Fingerprint: instance.Fingerprint(r.InstanceID),
		InstanceID:  r.InstanceID,
		OrderID:     r.OrderID,
		OrderLineID: r.OrderLineID,
	}, render)
	return outcome(a, inbound.Outcome{
		IdemKey: key, InstanceID: r.InstanceID, OrderID: r.OrderID, OrderLineID: r.OrderLineID,
		Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}, err)
}

func (h handler) changeInstanceCheck(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.ChangeInstanceCheckRequest)
	var target provision.Product
	if p := r.ProductInfo; p != nil {
		target = provision.Product{
			ProductID: p.ProductID.String(), SKUCode: p.SKUCode.String(),
			LinearValue: p.LinearValue.String(), ProductName: p.ProductName.String(),
		}
	}
	test := protocol.IsTestOrder(r.IsTest(), "")
	a, err := h.svc.CheckChange(ctx, r.InstanceID, test, target, render)
	return outcome(a, inbound.Outcome{InstanceID: r.InstanceID, Test: test}, err)
}

// render writes the plain V2 reply: resultCode and resultMsg.
func render(a instance.Answer) ([]byte, error) {
	return protocol.Marshal(protocol.NewResponse(a.Code, a.Msg))
}

// renderNewInstance writes the newInstance reply, with the instanceId; a
// refusal that names no instance (a call that is not a repeat) is the
// plain reply.
func renderNewInstance(a instance.Answer) ([]byte, error) {
	if a.Instance.ID == "" {
		return render(a)
	}
	return protocol.Marshal(protocol.NewInstanceResponse{
		Response:   protocol.NewResponse(a.Code, a.Msg),
		InstanceID: a.Instance.ID,
	})
}

// plainAnswer is an answer the family gives without the state machine.
func plainAnswer(code protocol.ResultCode, msg string) (instance.Answer, error) {
	a := instance.Answer{Code: code, Msg: msg}
	b, err := render(a)
	a.Body = b
	return a, err
}
