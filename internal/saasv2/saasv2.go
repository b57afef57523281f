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

// Activities are the seven V2 basic activities.
var Activities = []string{
	protocol.ActivityNewInstance,
	protocol.ActivityQueryInstance,
	protocol.ActivityRefreshInstance,
	protocol.ActivityUpdateInstanceStatus,
	protocol.ActivityReleaseInstance,
	protocol.ActivityUpgradeInstance,
	protocol.ActivityChangeInstanceCheck,
}

// Family returns the SaaS V2 family served at path by svc.
func Family(svc *instance.Service, path string) *inbound.Family {
	h := handler{svc}
	return &inbound.Family{
		Name:       Name,
		Method:     http.MethodPost,
		Path:       path,
		Keys:       inbound.KeyBasic,
		Scheme:     inbound.URLSignature,
		Activities: Activities,
		Decode:     decode,
		Serve:      h.serve,
	}
}

// decode decodes a V2 body strictly (package protocol refuses duplicate
// keys, wrong types, invalid UTF-8 and NUL).
func decode(c *inbound.Call) (inbound.Request, error) {
	return protocol.DecodeV2(c.Body)
}

type handler struct{ svc *instance.Service }

// serve runs one decoded, valid V2 request.
func (h handler) serve(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	var (
		a   instance.Answer
		err error
		out inbound.Outcome
	)
	switch r := req.(type) {
	case protocol.NewInstanceRequest:
		test := protocol.IsTestOrder(r.IsTest(), r.OrderID)
		out = inbound.Outcome{OrderID: r.OrderID, OrderLineID: r.OrderLineID}
		a, err = h.svc.Create(ctx, instance.Create{
			Activity:    r.Activity(),
			OrderID:     r.OrderID,
			OrderLineID: r.OrderLineID,
			BusinessID:  r.BusinessID,
			Test:        test,
			Fingerprint: instance.Fingerprint(strconv.FormatBool(test)),
		}, renderNewInstance)
	case protocol.QueryInstanceRequest:
		resp, err := h.svc.Query(ctx, r.InstanceIDs())
		if err != nil {
			return inbound.Outcome{}, err
		}
		out = inbound.Outcome{Response: resp, Code: resp.ResultCode, Msg: resp.ResultMsg, Test: protocol.IsTestOrder(r.IsTest(), "")}
		if ids := r.InstanceIDs(); len(ids) == 1 {
			out.InstanceID = ids[0]
		}
		return out, nil
	case protocol.RefreshInstanceRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID, OrderID: r.OrderID, OrderLineID: r.OrderLineID}
		key := instance.Key(r.Activity(), r.OrderID, r.OrderLineID, r.Scene)
		expiry, perr := r.Expiry()
		if perr != nil {
			a, err = plainAnswer(protocol.CodeInvalidParam, (&protocol.FieldError{Field: "expireTime", Problem: perr.Error()}).Error())
			break
		}
		a, err = h.svc.Renew(ctx, instance.Renewal{
			Activity:    r.Activity(),
			Key:         key,
			Fingerprint: instance.Fingerprint(r.InstanceID, strconv.FormatInt(expiry.UnixMilli(), 10), r.ProductID),
			InstanceID:  r.InstanceID,
			OrderID:     r.OrderID,
			OrderLineID: r.OrderLineID,
			Scene:       r.Scene,
			ProductID:   r.ProductID,
			Expiry:      expiry,
		}, render)
		a.Key = key
	case protocol.UpdateInstanceStatusRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID}
		a, err = h.svc.SetStatus(ctx, instance.Key(r.Activity(), r.InstanceID, r.Status), r.InstanceID, r.Status == protocol.StatusFreeze, render)
	case protocol.ReleaseInstanceRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID, OrderID: r.OrderID, OrderLineID: r.OrderLineID}
		a, err = h.svc.Release(ctx, instance.Key(r.Activity(), r.InstanceID), r.InstanceID, render)
	case protocol.UpgradeInstanceRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID, OrderID: r.OrderID, OrderLineID: r.OrderLineID}
		key := instance.Key(r.Activity(), r.OrderID, r.OrderLineID)
		a, err = h.svc.Upgrade(ctx, instance.Upgrade{
			Activity:    r.Activity(),
			Key:         key,
			Fingerprint: instance.Fingerprint(r.InstanceID),
			InstanceID:  r.InstanceID,
			OrderID:     r.OrderID,
			OrderLineID: r.OrderLineID,
		}, render)
		a.Key = key
	case protocol.ChangeInstanceCheckRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID}
		var target provision.Product
		if p := r.ProductInfo; p != nil {
			target = provision.Product{
				ProductID: p.ProductID.String(), SKUCode: p.SKUCode.String(),
				LinearValue: p.LinearValue.String(), ProductName: p.ProductName.String(),
			}
		}
		a, err = h.svc.CheckChange(ctx, r.InstanceID, protocol.IsTestOrder(r.IsTest(), ""), target, render)
	default:
		return inbound.Outcome{}, fmt.Errorf("saasv2: activity %s has no handler", req.Activity())
	}
	if err != nil {
		return inbound.Outcome{}, err
	}
	out.Response = json.RawMessage(a.Body)
	out.Code, out.Msg, out.IdemKey, out.Repeat = a.Code, a.Msg, a.Key, a.Repeat
	if out.InstanceID == "" {
		out.InstanceID = a.Instance.ID
	}
	out.Test = protocol.IsTestOrder(testFlag(req), out.OrderID) || a.Instance.Test
	return out, nil
}

// testFlag reports whether a V2 request carries testFlag "1".
func testFlag(req inbound.Request) bool {
	t, ok := req.(interface{ IsTest() bool })
	return ok && t.IsTest()
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
