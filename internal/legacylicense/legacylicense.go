// Package legacylicense is the family of the retired license 1.0 guide
// (联营License类商品接入指南, license-openapi.md §B): GET with every parameter
// in the query, authenticated by the authToken over the URL-decoded
// parameters with the basic key (服务商信息 key, the scheme of SaaS V1; the
// pipeline verifies it and Body-Signs every answer). It is answered at the
// production path, told apart from SaaS V1 by its activities, and at the
// license path.
//
//	getLicense      a purchase: the vendor's generator makes the license
//	refreshLicense  a new expiry (license.renewed)
//	expireLicense   frozen at expiry (license.frozen)
//	releaseLicense  released, terminal (license.released)
//
// getLicense is idempotent per orderId (KooGallery retries it every hour
// for three hours): the first call stores a grant (package grant, kind
// legacy, key the orderId) whose instanceId is that call's businessId, as
// the guide suggests (a businessId that is already another order's
// instanceId is refused 000002, writing nothing: the lifecycle calls name
// the instanceId, and two orders must not share one; KooGallery's hourly
// retry brings another businessId), and has the vendor's generator make
// the license (license.requested with the order the call carried),
// waiting for it up to the budget. The reply carries the instanceId and the license: a
// license string as it is, a license file as the base64 (standard
// alphabet, padded) of its content, since the reply's license is a JSON
// string. While the generator has not answered the reply is 000004 with
// the instanceId (the retry gets the license); a generation that failed is
// 000005, and a repeat starts it again. A call naming an orderId bought
// with another customerId, productId, skuCode or testFlag is not a repeat
// and is refused with 000002.
//
// refreshLicense, expireLicense and releaseLicense find the license by
// instanceId (000003 for one never answered), are state-based (a call
// finding the license as it asks succeeds without an event) and tell the
// vendor with Event.License (InstanceID set, Code empty). A released
// license answers releaseLicense with success forever and the other two
// with 000003 (released is terminal, as for an instance). The
// expireLicense page was never retrieved (UNCONFIRMED): instanceId is
// required and orderId read but optional. releaseLicense's orderId (the
// purchase) and expireLicense's when given must match: an orderId whose
// getLicense was answered with another instanceId is 000003; an orderId
// koobridge never saw in a getLicense is tolerated (the license is found
// by instanceId). refreshLicense carries the renewal order, so its orderId
// is not matched.
//
// timeStamp: as for SaaS V1, no freshness window is documented
// (UNCONFIRMED) and none is enforced by default; Config.TimestampWindow
// turns one on (000001 outside it).
package legacylicense

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/saasv1"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// Name labels the family in the ledger, the log and metrics.
const Name = "license-v1"

// Activities are the four license 1.0 activities.
var Activities = []string{
	protocol.ActivityGetLicense,
	protocol.ActivityRefreshLicense,
	protocol.ActivityExpireLicense,
	protocol.ActivityReleaseLicense,
}

// Config configures a Service.
type Config struct {
	// Grants generates and keeps the licenses. Required.
	Grants *grant.Service
	// TimestampWindow, when positive, refuses (000001) calls whose
	// timeStamp is further than this from now; zero enforces none.
	TimestampWindow time.Duration
	// Now is the clock of the timeStamp window; nil means time.Now.
	Now func() time.Time
}

// Service serves the license 1.0 family.
type Service struct {
	grants *grant.Service
	window time.Duration
	now    func() time.Time
}

// New checks cfg and returns the family's service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Grants == nil:
		return nil, errors.New("legacylicense: Config.Grants is required")
	case cfg.TimestampWindow < 0:
		return nil, fmt.Errorf("legacylicense: negative timeStamp window %v", cfg.TimestampWindow)
	}
	s := &Service{grants: cfg.Grants, window: cfg.TimestampWindow, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Family returns the license 1.0 family served with GET at path (the
// production path, beside SaaS V1) and at aliases (the license path).
func (s *Service) Family(path string, aliases ...string) *inbound.Family {
	return &inbound.Family{
		Name:       Name,
		Method:     http.MethodGet,
		Path:       path,
		Aliases:    aliases,
		Keys:       inbound.KeyBasic,
		Scheme:     inbound.V1Token,
		Activities: Activities,
		Decode:     decode,
		Serve:      s.serve,
	}
}

// decode decodes the strictly parsed query.
func decode(c *inbound.Call) (inbound.Request, error) {
	return protocol.DecodeLegacyLicense(c.Query)
}

// serve runs one decoded, valid request.
func (s *Service) serve(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	if out, stale := saasv1.Stale(req, s.window, s.now()); stale {
		return out, nil
	}
	switch r := req.(type) {
	case protocol.GetLicenseRequest:
		return s.getLicense(ctx, r)
	case protocol.RefreshLicenseRequest:
		return s.refreshLicense(ctx, r)
	case protocol.ExpireLicenseRequest:
		return s.expireLicense(ctx, r)
	case protocol.ReleaseLicenseRequest:
		return s.releaseLicense(ctx, r)
	}
	return inbound.Outcome{}, fmt.Errorf("legacylicense: activity %s has no handler", req.Activity())
}

// reply completes out with a plain reply.
func reply(out inbound.Outcome, code protocol.ResultCode, msg string) (inbound.Outcome, error) {
	out.Response, out.Code, out.Msg = protocol.NewResponse(code, msg), code, msg
	return out, nil
}

// refuse answers a call refused before anything is written: 000002
// naming the field.
func refuse(out inbound.Outcome, field, problem string) (inbound.Outcome, error) {
	out.IdemKey = ""
	return reply(out, protocol.CodeInvalidParam, (&protocol.FieldError{Field: field, Problem: problem}).Error())
}

func (s *Service) getLicense(ctx context.Context, r protocol.GetLicenseRequest) (inbound.Outcome, error) {
	deadline := time.Now().Add(s.grants.Budget())
	test := protocol.IsTestOrder(r.IsTest(), r.OrderID)
	out := inbound.Outcome{IdemKey: instance.Key(r.Activity(), r.OrderID), OrderID: r.OrderID, Test: test}
	order := provision.Order{
		OrderID: r.OrderID, OrderType: protocol.OrderTypeNew, ProductID: r.ProductID, SKUCode: r.SKUCode,
		LinearValue: r.Amount, PeriodType: r.PeriodType,
		Buyer: provision.Buyer{CustomerID: r.CustomerID, CustomerName: r.CustomerName},
	}
	if r.PeriodType != "" {
		order.ChargingMode = protocol.ChargingPeriod
	}
	if r.PeriodNumber != "" {
		n, err := strconv.Atoi(r.PeriodNumber) // Validate allows up to 4 digits
		if err != nil {
			return refuse(out, "periodNumber", "not a number")
		}
		order.PeriodNumber = n
	}
	if r.ExpireTime != "" {
		t, err := protocol.ParseExpireTime(r.ExpireTime)
		if err != nil {
			return refuse(out, "expireTime", err.Error())
		}
		order.ExpireTime = t
	}
	// businessId differs on every call, the rest of a repeat does not.
	fp := instance.Fingerprint(strconv.FormatBool(test), r.CustomerID, r.ProductID, r.SKUCode)
	g, inserted, jobID, err := s.grants.Request(ctx, grant.Request{
		Kind: store.GrantLegacy, Key: r.OrderID, InstanceID: r.BusinessID, OrderID: r.OrderID, ProductID: r.ProductID,
		Test: test, ExpireTime: order.ExpireTime, Order: &order, Fingerprint: fp, InCall: true,
	})
	if errors.Is(err, grant.ErrInstanceTaken) {
		return refuse(out, "businessId", "already the instanceId of another order's license; not applied")
	}
	if err != nil {
		return inbound.Outcome{}, fmt.Errorf("legacylicense: getLicense %s: %w", r.OrderID, err)
	}
	if !inserted {
		if !grant.SameRequest(g, fp) {
			return refuse(out, "orderId", "this order was bought by a call with other values (customerId, productId, skuCode or testFlag); not a repeat")
		}
		out.Repeat = true
		if g.State == store.GrantFailed && g.ContentSealed == "" {
			// KooGallery retries for hours; the vendor may have fixed the
			// cause. A concurrent repeat may have restarted it already.
			jobID, err = s.grants.Rerun(ctx, g.ID)
			if errors.Is(err, grant.ErrWrongState) {
				jobID, err = 0, nil
			}
			if err != nil {
				return inbound.Outcome{}, fmt.Errorf("legacylicense: getLicense %s: %w", r.OrderID, err)
			}
		}
	}
	if g, err = s.grants.Await(ctx, g, jobID, deadline); err != nil {
		return inbound.Outcome{}, fmt.Errorf("legacylicense: getLicense %s: %w", r.OrderID, err)
	}
	out.InstanceID = g.InstanceID
	out.Test = out.Test || g.Test
	resp := protocol.GetLicenseResponse{InstanceID: g.InstanceID}
	switch {
	case g.ContentSealed != "":
		f, err := s.grants.License(g)
		if err != nil {
			return inbound.Outcome{}, fmt.Errorf("legacylicense: getLicense %s: %w", r.OrderID, err)
		}
		resp.License = f.Characters
		if f.FileName != "" {
			resp.License = base64.StdEncoding.EncodeToString(f.Content)
		}
		resp.Response = protocol.NewResponse(protocol.CodeSuccess, "success")
	case g.State == store.GrantFailed:
		// The generator's error stays in the grant and the log: it may name
		// the vendor's internal hosts.
		resp.Response = protocol.NewResponse(protocol.CodeInternal, "license generation failed: the vendor's license generator did not produce a license")
	default:
		resp.Response = protocol.NewResponse(protocol.CodeProcessing, "the license is being generated; ask again for it")
	}
	out.Response, out.Code, out.Msg = resp, resp.ResultCode, resp.ResultMsg
	return out, nil
}

func (s *Service) refreshLicense(ctx context.Context, r protocol.RefreshLicenseRequest) (inbound.Outcome, error) {
	out := inbound.Outcome{
		IdemKey: instance.Key(r.Activity(), r.OrderID), InstanceID: r.InstanceID, OrderID: r.OrderID,
		Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}
	expiry, err := protocol.ParseExpireTime(r.ExpireTime)
	if err != nil {
		return refuse(out, "expireTime", err.Error())
	}
	c, err := s.grants.Renew(ctx, r.InstanceID, expiry, r.ProductID)
	return lifecycle(out, c, err)
}

func (s *Service) expireLicense(ctx context.Context, r protocol.ExpireLicenseRequest) (inbound.Outcome, error) {
	out := inbound.Outcome{
		IdemKey: instance.Key(r.Activity(), r.InstanceID), InstanceID: r.InstanceID, OrderID: r.OrderID,
		Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}
	c, err := s.grants.Expire(ctx, r.InstanceID, r.OrderID)
	return lifecycle(out, c, err)
}

func (s *Service) releaseLicense(ctx context.Context, r protocol.ReleaseLicenseRequest) (inbound.Outcome, error) {
	out := inbound.Outcome{
		IdemKey: instance.Key(r.Activity(), r.InstanceID), InstanceID: r.InstanceID, OrderID: r.OrderID,
		Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}
	c, err := s.grants.Release(ctx, r.InstanceID, r.OrderID)
	return lifecycle(out, c, err)
}

// lifecycle answers a refreshLicense, expireLicense or releaseLicense from
// the grant service's outcome.
func lifecycle(out inbound.Outcome, c grant.Change, err error) (inbound.Outcome, error) {
	switch {
	case errors.Is(err, grant.ErrOtherOrder):
		return reply(out, protocol.CodeInstanceNotFound, "instance does not exist for this orderId: the order's license is another instanceId")
	case errors.Is(err, store.ErrNotFound):
		return reply(out, protocol.CodeInstanceNotFound, "instance does not exist")
	case errors.Is(err, grant.ErrReleased):
		out.Test = out.Test || c.Grant.Test
		return reply(out, protocol.CodeInstanceNotFound, "instance is released")
	case err != nil:
		return inbound.Outcome{}, fmt.Errorf("legacylicense: %w", err)
	}
	out.Test = out.Test || c.Grant.Test
	out.Repeat = !c.Changed
	return reply(out, protocol.CodeSuccess, "success")
}
