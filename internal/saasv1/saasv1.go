// Package saasv1 is the family of the SaaS V1 basic interfaces
// (saas-v1-joint-login.md Part A): GET at the production path, every
// parameter in the query, authenticated by the authToken over the
// URL-decoded parameters with the basic keys (the pipeline verifies it, in
// constant time, and Body-Signs every answer). POST at the same path is
// SaaS V2, so one server carries V1 and V2 products.
//
// It decodes the seven activities with protocol.DecodeV1 and maps each
// onto the shared instance state machine (package instance), with V1's
// idempotency keys (§A.6):
//
//	newInstance      Create    orderId; orderId + productId when chargingMode is 0 (pay-per-use)
//	refreshInstance  Renew     the renewal orderId
//	expireInstance   Expire    instanceId (freezes; already frozen succeeds)
//	releaseInstance  Release   instanceId (released again succeeds)
//	upgrade          Upgrade   the upgrade orderId
//	instanceStatus   SetStatus instanceId + instanceStatus (FREEZE, NORMAL)
//	queryInstance    Query     read only
//
// newInstance carries the whole order, so the instance takes it at once
// (instance.Create.Order) and Query Order is never asked: V1 charging modes
// 0, 1, 3, 5 become ON_DEMAND, PERIOD, ONE_TIME, ON_DEMAND_PKG, the linear
// value is the first of amount, diskSize and bandWidth given. A
// pay-per-use order may buy several charge items in one order, one call
// and one instance each, so its productId stands in for the order line.
// The buyer's mobilePhone and email arrive AES-encrypted (§A.7): they are
// decrypted with the basic key and the product's sensitive-information
// encryptType (Config.EncryptType), given in full to the vendor in
// instance.created (Event.Order.Buyer), and kept only sealed and masked. A
// value that does not decrypt is refused with 000002 before anything is
// written. upgrade carries the new specification (instance.Upgrade.Target).
//
// Replies: appInfo userName and password are always AES-encrypted with
// the first basic key and Config.EncryptType, named by encryptType,
// whatever the V2 credentials setting says. Their IV is derived from the
// key, the instance, the field and the value (an HMAC), not drawn at
// random, so that a repeated newInstance or queryInstance answers the same
// bytes; equal IVs only ever encrypt equal values.
//
// timeStamp: no V1 page documents a freshness window (UNCONFIRMED), and
// KooGallery replays saved debug cases twice a day, so none is enforced by
// default. Config.TimestampWindow (koobridge serve --v1-timestamp-window)
// turns one on: a call whose timeStamp is further than that from the
// server's clock, either way, is answered 000001 after its parameters
// are validated.
package saasv1

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/protocol/sign"
	"github.com/koobridge/koobridge/provision"
)

// Name labels the family in the ledger, the log and metrics.
const Name = "v1"

// Config configures a Service.
type Config struct {
	// Instances is the instance state machine. Required.
	Instances *instance.Service
	// Keys are the basic keys, the one bound in Seller Center first: the
	// buyer's mobilePhone and email are decrypted with the first that
	// decrypts them, credentials encrypted with the first. Required.
	Keys []string
	// EncryptType is the product's sensitive-information encryptType
	// (敏感信息加密算法): the AES key size of the buyer's data and of the
	// credentials in replies. Empty means sign.EncryptAES256 ("1").
	EncryptType sign.EncryptType
	// TimestampWindow, when positive, refuses (000001) calls whose
	// timeStamp is further than this from now; zero enforces none.
	TimestampWindow time.Duration
	// Now is the clock of the timeStamp window; nil means time.Now.
	Now func() time.Time
}

// Service runs the V1 activities on the instance service.
type Service struct {
	svc    *instance.Service
	buyer  []*sign.CredentialCipher // one per key, in order
	creds  credentials
	window time.Duration
	now    func() time.Time
}

// New checks cfg and returns the family's service.
func New(cfg Config) (*Service, error) {
	if cfg.Instances == nil {
		return nil, errors.New("saasv1: Config.Instances is required")
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("saasv1: no basic key")
	}
	if cfg.TimestampWindow < 0 {
		return nil, fmt.Errorf("saasv1: negative timeStamp window %v", cfg.TimestampWindow)
	}
	et := cfg.EncryptType
	if et == "" {
		et = sign.EncryptAES256
	}
	s := &Service{svc: cfg.Instances, window: cfg.TimestampWindow, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	for i, k := range cfg.Keys {
		c, err := sign.NewCredentialCipher(k, et)
		if err != nil {
			return nil, fmt.Errorf("saasv1: basic key %d: %w", i+1, err)
		}
		s.buyer = append(s.buyer, c)
	}
	s.creds = credentials{c: s.buyer[0], ivKey: hmacSHA256([]byte(cfg.Keys[0]), []byte("koobridge saasv1 reply IV"))}
	return s, nil
}

// activity is one served activity: its name and what runs it. The request
// it gets is the decoded type of that activity.
type activity struct {
	name string
	run  func(s *Service, ctx context.Context, req inbound.Request) (inbound.Outcome, error)
}

// activities is the one list of what the family serves: it gives the
// family its Activities (routing, metrics) and serve its dispatch.
var activities = []activity{
	{protocol.ActivityNewInstance, (*Service).newInstance},
	{protocol.ActivityRefreshInstance, (*Service).refreshInstance},
	{protocol.ActivityExpireInstance, (*Service).expireInstance},
	{protocol.ActivityReleaseInstance, (*Service).releaseInstance},
	{protocol.ActivityUpgrade, (*Service).upgrade},
	{protocol.ActivityInstanceStatus, (*Service).instanceStatus},
	{protocol.ActivityQueryInstance, (*Service).queryInstance},
}

// Activities returns the seven V1 basic activities.
func Activities() []string {
	names := make([]string, len(activities))
	for i, a := range activities {
		names[i] = a.name
	}
	return names
}

// Family returns the SaaS V1 family served with GET at path.
func (s *Service) Family(path string) *inbound.Family {
	return &inbound.Family{
		Name:       Name,
		Method:     http.MethodGet,
		Path:       path,
		Keys:       inbound.KeyBasic,
		Scheme:     inbound.V1Token,
		Activities: Activities(),
		Decode:     decode,
		Serve:      s.serve,
	}
}

// decode decodes the strictly parsed query (package protocol refuses an
// unknown activity and a saasExtendParams that does not decode).
func decode(c *inbound.Call) (inbound.Request, error) {
	return protocol.DecodeV1(c.Query)
}

// serve runs one decoded, valid V1 request.
func (s *Service) serve(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	if out, stale := s.stale(req); stale {
		return out, nil
	}
	for _, a := range activities {
		if a.name == req.Activity() {
			return a.run(s, ctx, req)
		}
	}
	return inbound.Outcome{}, fmt.Errorf("saasv1: activity %s has no handler", req.Activity())
}

// stale answers 000001 when a timeStamp window is set and the call's
// timeStamp lies outside it.
func (s *Service) stale(req inbound.Request) (inbound.Outcome, bool) {
	return Stale(req, s.window, s.now())
}

// Stale is the timeStamp window of the V1 authToken scheme, for every
// family on it (SaaS V1, license 1.0): with a positive window, a request
// whose timeStamp (protocol.V1Auth) is further than window from now,
// either way, is answered 000001 (stale true); a zero window enforces
// none.
func Stale(req inbound.Request, window time.Duration, now time.Time) (inbound.Outcome, bool) {
	r, ok := req.(interface {
		Time() (time.Time, error)
		IsTest() bool
	})
	if window <= 0 || !ok {
		return inbound.Outcome{}, false
	}
	t, err := r.Time()
	if err != nil { // Validate has checked the form already
		return inbound.Outcome{}, false
	}
	age := now.Sub(t)
	if age <= window && -age <= window {
		return inbound.Outcome{}, false
	}
	msg := fmt.Sprintf("authentication failed: timeStamp is more than %v from the server's time", window)
	return inbound.Outcome{
		Response: protocol.NewResponse(protocol.CodeAuthFailed, msg),
		Code:     protocol.CodeAuthFailed, Msg: msg, Test: r.IsTest(),
	}, true
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

// refuse answers a call the family refuses itself, before anything is
// written: 000002 naming the field.
func refuse(out inbound.Outcome, field, problem string) (inbound.Outcome, error) {
	msg := (&protocol.FieldError{Field: field, Problem: problem}).Error()
	a := instance.Answer{Code: protocol.CodeInvalidParam, Msg: msg}
	b, err := render(a)
	a.Body = b
	return outcome(a, out, err)
}

// chargingModes maps V1's chargingMode integers (protocol.V1Charging*) to
// the instance's modes.
var chargingModes = map[int]string{
	0: protocol.ChargingOnDemand,
	1: protocol.ChargingPeriod,
	3: protocol.ChargingOneTime,
	5: protocol.ChargingOnDemandPkg,
}

func (s *Service) newInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.V1NewInstanceRequest)
	test := protocol.IsTestOrder(r.IsTest(), r.OrderID)
	out := inbound.Outcome{OrderID: r.OrderID, Test: test}
	mode := ""
	if r.ChargingMode != "" {
		n, err := strconv.Atoi(r.ChargingMode) // Validate allows up to 3 digits
		if mode = chargingModes[n]; err != nil || mode == "" {
			return refuse(out, "chargingMode", "want 0 (pay-per-use), 1 (yearly/monthly), 3 (one-time) or 5 (pay-per-use package)")
		}
	}
	// One instance per charge item of a pay-per-use order (§A.5.1): its
	// productId is the order line.
	line := ""
	if mode == protocol.ChargingOnDemand {
		line = r.ProductID
	}
	out.OrderLineID = line

	order := provision.Order{
		OrderID: r.OrderID, OrderLineID: line, OrderType: protocol.OrderTypeNew,
		ProductID: r.ProductID, SKUCode: r.SKUCode, LinearValue: firstOf(r.Amount, r.DiskSize, r.BandWidth),
		ChargingMode: mode, PeriodType: r.PeriodType, OrderAmount: r.OrderAmount,
		Buyer: provision.Buyer{
			CustomerID: r.CustomerID, CustomerName: r.CustomerName, UserID: r.UserID, UserName: r.UserName,
		},
	}
	if r.IsTrial() {
		order.OrderType = protocol.OrderTypeTrial
	}
	if r.PeriodNumber != "" {
		n, err := strconv.Atoi(r.PeriodNumber)
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
	for _, f := range []struct {
		name, value string
		to          *string
	}{{"mobilePhone", r.MobilePhone, &order.Buyer.MobilePhone}, {"email", r.Email, &order.Buyer.Email}} {
		if f.value == "" {
			continue
		}
		plain, ok := s.decryptBuyer(f.value)
		if !ok {
			return refuse(out, f.name, "cannot be decrypted with the basic key and encryptType "+s.buyer[0].Type().String()+" (§A.7)")
		}
		*f.to = plain
	}
	for _, p := range r.ExtendParams {
		order.ExtendParams = append(order.ExtendParams, provision.ExtendParam{Name: p.Name.String(), Value: p.Value.String()})
	}

	a, err := s.svc.Create(ctx, instance.Create{
		Activity:    r.Activity(),
		OrderID:     r.OrderID,
		OrderLineID: line,
		BusinessID:  r.BusinessID,
		Test:        test,
		// businessId differs on every call, the rest of a repeat does not.
		Fingerprint: instance.Fingerprint(strconv.FormatBool(test), r.CustomerID, r.ProductID, r.SKUCode, mode),
		Order:       &order,
	}, s.renderNewInstance)
	return outcome(a, out, err)
}

// firstOf returns the first non-empty value.
func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// decryptBuyer decrypts a buyer's mobile number or e-mail with the first
// key that decrypts it cleanly (a rotation may be under way).
func (s *Service) decryptBuyer(v string) (string, bool) {
	for _, c := range s.buyer {
		if plain, err := c.Decrypt(v); err == nil {
			return plain, true
		}
	}
	return "", false
}

func (s *Service) refreshInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.V1RefreshInstanceRequest)
	out := inbound.Outcome{
		IdemKey: instance.Key(r.Activity(), r.OrderID), InstanceID: r.InstanceID,
		OrderID: r.OrderID, Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}
	expiry, err := r.Expiry()
	if err != nil {
		return refuse(out, "expireTime", err.Error())
	}
	scene := protocol.SceneRenewal
	switch {
	case r.TrialToFormal == "1":
		scene = protocol.SceneTrialToFormal
	case strings.HasPrefix(r.OrderAmount, "-"): // a renewal refund (退续费)
		scene = protocol.SceneUnsubscribeRenewalPeriod
	}
	a, err := s.svc.Renew(ctx, instance.Renewal{
		Activity:    r.Activity(),
		Key:         out.IdemKey,
		Fingerprint: instance.Fingerprint(r.InstanceID, strconv.FormatInt(expiry.UnixMilli(), 10), r.ProductID, scene),
		InstanceID:  r.InstanceID,
		OrderID:     r.OrderID,
		Scene:       scene,
		ProductID:   r.ProductID,
		Expiry:      expiry,
	}, render)
	return outcome(a, out, err)
}

func (s *Service) expireInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.V1ExpireInstanceRequest)
	key := instance.Key(r.Activity(), r.InstanceID)
	a, err := s.svc.Expire(ctx, key, r.InstanceID, render)
	return outcome(a, inbound.Outcome{
		IdemKey: key, InstanceID: r.InstanceID, OrderID: r.OrderID, Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}, err)
}

func (s *Service) releaseInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.V1ReleaseInstanceRequest)
	key := instance.Key(r.Activity(), r.InstanceID)
	a, err := s.svc.Release(ctx, key, r.InstanceID, render)
	return outcome(a, inbound.Outcome{
		IdemKey: key, InstanceID: r.InstanceID, OrderID: r.OrderID, Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}, err)
}

func (s *Service) upgrade(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.V1UpgradeRequest)
	key := instance.Key(r.Activity(), r.OrderID)
	target := provision.Product{ProductID: r.ProductID, SKUCode: r.SKUCode, LinearValue: firstOf(r.Amount, r.DiskSize, r.BandWidth)}
	a, err := s.svc.Upgrade(ctx, instance.Upgrade{
		Activity:    r.Activity(),
		Key:         key,
		Fingerprint: instance.Fingerprint(r.InstanceID, target.ProductID, target.SKUCode, target.LinearValue),
		InstanceID:  r.InstanceID,
		OrderID:     r.OrderID,
		Target:      &target,
	}, render)
	return outcome(a, inbound.Outcome{
		IdemKey: key, InstanceID: r.InstanceID, OrderID: r.OrderID, Test: protocol.IsTestOrder(r.IsTest(), r.OrderID),
	}, err)
}

func (s *Service) instanceStatus(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.V1InstanceStatusRequest)
	key := instance.Key(r.Activity(), r.InstanceID, r.InstanceStatus)
	a, err := s.svc.SetStatus(ctx, key, r.InstanceID, r.InstanceStatus == protocol.InstanceStatusFreeze, render)
	return outcome(a, inbound.Outcome{IdemKey: key, InstanceID: r.InstanceID, Test: protocol.IsTestOrder(r.IsTest(), "")}, err)
}

func (s *Service) queryInstance(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	r := req.(protocol.V1QueryInstanceRequest)
	resp, err := s.svc.QueryWith(ctx, r.InstanceIDs(), s.creds)
	if err != nil {
		return inbound.Outcome{}, err
	}
	out := inbound.Outcome{Response: resp, Code: resp.ResultCode, Msg: resp.ResultMsg, Test: protocol.IsTestOrder(r.IsTest(), "")}
	if ids := r.InstanceIDs(); len(ids) == 1 {
		out.InstanceID = ids[0]
	}
	return out, nil
}

// render writes the plain V1 reply: resultCode and resultMsg.
func render(a instance.Answer) ([]byte, error) {
	return protocol.Marshal(protocol.NewResponse(a.Code, a.Msg))
}

// renderNewInstance writes the newInstance reply: the instanceId, and the
// app info with its credentials encrypted once the instance is
// provisioned. A refusal that names no instance is the plain reply.
func (s *Service) renderNewInstance(a instance.Answer) ([]byte, error) {
	if a.Instance.ID == "" {
		return render(a)
	}
	resp := protocol.V1NewInstanceResponse{Response: protocol.NewResponse(a.Code, a.Msg), InstanceID: a.Instance.ID}
	if a.Code == protocol.CodeSuccess {
		app, err := s.svc.App(a.Instance, s.creds)
		if err != nil {
			return nil, fmt.Errorf("saasv1: newInstance reply: %w", err)
		}
		resp.AppInfo = app
		if app != nil {
			resp.EncryptType = s.creds.Type().String()
		}
	}
	return protocol.Marshal(resp)
}

// credentials encrypts the credentials of V1 replies with the first basic
// key. The IV is 16 characters of [A-Za-z0-9] taken from an HMAC, keyed by
// a key derived from the basic key, of the instance, the field and the
// value: a repeat answers the same bytes, and an IV is reused only for
// the same value.
type credentials struct {
	c     *sign.CredentialCipher
	ivKey []byte
}

// ivAlphabet is the character set of KooGallery's IVs.
const ivAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Encrypt implements instance.Encrypter.
func (c credentials) Encrypt(instanceID, field, value string) (string, error) {
	sum := hmacSHA256(c.ivKey, []byte(instanceID+"\x00"+field+"\x00"+value))
	var iv [16]byte
	for i := range iv {
		iv[i] = ivAlphabet[int(sum[i])%len(ivAlphabet)]
	}
	enc, err := c.c.EncryptWithIV(value, string(iv[:]))
	if err != nil {
		return "", fmt.Errorf("saasv1: encrypt %s: %w", field, err)
	}
	return enc, nil
}

// Type implements instance.Encrypter.
func (c credentials) Type() sign.EncryptType { return c.c.Type() }

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
