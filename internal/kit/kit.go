// Package kit is the family of the joint-operation Kit sync interfaces
// (saas-v1-joint-login.md Part B, saas-v2.md §3.8): tenantSync,
// applicationSync, authSync, singleOrgSync and allOrgSync, POSTed as JSON
// in two generations that are two families of the pipeline:
//
//   - Kit V1 at /produceAPI/<name>, authenticated by the authToken header
//     over the body's fields (HMAC-SHA256 keyed with key + timeStamp; no
//     nonce and, as for SaaS V1, no timestamp window);
//   - Kit V2 at /produceAPI/v2/<name>, authenticated by the x-sign,
//     x-timestamp and x-nonce headers (either canonical form, 60 s
//     window, nonces remembered).
//
// Both are verified with the Kit keys (联营SaaS同步接口, falling back to the
// basic keys), Body-Signed with the same, and answered at the server's
// root and under the production path (/produce/produceAPI/…). The path
// names the operation; the body has no activity. The operations run on
// the tenant service (package tenant).
package kit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/tenant"
	"github.com/koobridge/koobridge/protocol"
)

// Family names, as the ledger, the log and metrics show them.
const (
	NameV1 = "kit-v1"
	NameV2 = "kit-v2"
)

// operations are the five Kit operations, in the order of the spec.
var operations = []string{
	protocol.KitTenantSync, protocol.KitApplicationSync, protocol.KitAuthSync,
	protocol.KitSingleOrgSync, protocol.KitAllOrgSync,
}

// MaxBody is the body cap of Kit calls: an authSync of 500 users with
// every field at its length, sent as JSON text (escaped), stays below it.
const MaxBody = 2 << 20

// Families returns Kit V1 and Kit V2 served by svc at the server's root
// and under producePath.
func Families(svc *tenant.Service, producePath string) []*inbound.Family {
	h := handler{svc}
	mk := func(name, prefix string, scheme inbound.Scheme) *inbound.Family {
		var paths []string
		for _, op := range operations {
			paths = append(paths, prefix+op, producePath+prefix+op)
		}
		return &inbound.Family{
			Name:       name,
			Method:     http.MethodPost,
			Path:       paths[0],
			Aliases:    paths[1:],
			Keys:       inbound.KeyKit,
			Scheme:     scheme,
			Activities: operations,
			ActivityAt: activityAt,
			MaxBody:    MaxBody,
			Decode:     decode,
			Serve:      h.serve,
		}
	}
	return []*inbound.Family{
		mk(NameV1, "/produceAPI/", inbound.V1Token),
		mk(NameV2, "/produceAPI/v2/", inbound.KitHeaders),
	}
}

// activityAt names the operation of a path.
func activityAt(path string) string {
	name, _, _ := protocol.KitOperation(path)
	return name
}

// request is a decoded Kit call as the pipeline sees it.
type request struct{ protocol.KitRequest }

// Activity returns the operation.
func (r request) Activity() string { return r.Operation() }

// decode decodes the body of the operation the path names, strictly
// (package protocol refuses duplicate keys, wrong types, invalid UTF-8 and
// NUL, inside userList and orgInfo text too).
func decode(c *inbound.Call) (inbound.Request, error) {
	name, _, ok := protocol.KitOperation(c.Path)
	if !ok {
		return nil, &protocol.FieldError{Field: "path", Problem: "not a Kit operation"}
	}
	r, err := protocol.DecodeKit(name, c.Body)
	if err != nil {
		return nil, err
	}
	return request{r}, nil
}

// handler runs the operations on the tenant service.
type handler struct{ svc *tenant.Service }

// serve runs one decoded, valid Kit call.
func (h handler) serve(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	var (
		res tenant.Result
		out inbound.Outcome
		err error
	)
	switch r := req.(request).KitRequest.(type) {
	case protocol.TenantSyncRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID, OrderID: r.OrderID, TenantID: r.TenantID,
			IdemKey: instance.Key(r.Operation(), r.TenantID, flag(r.Flag))}
		res, err = h.svc.SyncTenant(ctx, r)
	case protocol.ApplicationSyncRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID, TenantID: r.TenantID,
			IdemKey: instance.Key(r.Operation(), r.TenantID, r.AppID, flag(r.Flag))}
		res, err = h.svc.SyncApp(ctx, r)
	case protocol.AuthSyncRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID, TenantID: r.TenantID,
			IdemKey: instance.Key(r.Operation(), r.TenantID, r.AppID, flag(r.Flag), r.CurrentSyncTime)}
		res, err = h.svc.SyncUsers(ctx, r)
	case protocol.SingleOrgSyncRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID, TenantID: r.TenantID,
			IdemKey: instance.Key(r.Operation(), r.TenantID, r.OrgCode, flag(r.Flag))}
		res, err = h.svc.SyncOrg(ctx, r)
	case protocol.AllOrgSyncRequest:
		out = inbound.Outcome{InstanceID: r.InstanceID, TenantID: r.TenantID,
			IdemKey: instance.Key(r.Operation(), r.TenantID)}
		res, err = h.svc.ReplaceOrgs(ctx, r)
	default:
		return inbound.Outcome{}, fmt.Errorf("kit: operation %s has no handler", req.Activity())
	}
	if err != nil {
		return inbound.Outcome{}, err
	}
	out.Test = req.(request).IsTest()
	out.Response = protocol.NewResponse(res.Code, res.Msg)
	out.Code, out.Msg = res.Code, res.Msg
	out.Repeat = res.Code == protocol.CodeSuccess && !res.Changed
	return out, nil
}

func flag(f protocol.FlexInt) string { return strconv.FormatInt(int64(f), 10) }
