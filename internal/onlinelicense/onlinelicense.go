// Package onlinelicense is the family of online-license products
// (在线开通License, license-openapi.md §C): POST at the license path, signed
// in the URL (signature, timestamp, nonce) with the License key by default
// or the basic key (which key type signs these calls is UNCONFIRMED;
// Config.Keys chooses, koobridge serve --online-license-key-type), the
// activity in the JSON body.
//
// The instance activities (newInstance, refreshInstance,
// updateInstanceStatus, releaseInstance, queryInstance, upgradeInstance;
// §C.1–§C.5 and the Addenda) run on the shared instance state machine
// through SaaS V2's handlers (saasv2.Serve), so they are answered as V2's
// are. Their instances are marked app-info optional: an online-license
// product need have no web front end, and instance.created is answered
// without appInfo (the newInstance reply carries only the instanceId).
//
// getLicenseAsync (§C.6) asks for a license: an unknown instance is
// 000003, and so is one whose creation failed (KooGallery never got its
// success: for the buyer it does not exist; §C.6 lists 000100 "no such
// instance resource" too, but 000003 is what every activity at this
// address answers for an instance it does not know); a released or frozen
// one 000901 (apply within the order's validity); one whose order is not
// fetched yet 000005, writing nothing (whether 000902 applies is in the
// order; KooGallery asks again); a yearly/monthly (PERIOD) instance's
// request without expireTime 000902; one without deviceFingerprint 000903
// when Config.FingerprintRequired (koobridge serve
// --online-license-fingerprint required). An eventId the upload could not
// use (protocol.CheckEventID) and an expireTime before effectiveTime are
// 000002. Otherwise one transaction stores
// the grant (package grant: its key the eventId and the SHA-256 of the
// fingerprint, which together identify one application; the fingerprint
// itself only sealed), the operation record with the reply and the
// generate job, and the call is answered 000004: the license is generated
// by the vendor's generator and uploaded to KooGallery (§C.7) in the
// background. Whether a synchronous 000000 reply may carry the license is
// UNCONFIRMED; koobridge never answers one. A repeat (the same eventId and
// fingerprint) gets the first answer byte for byte and creates nothing;
// the same eventId with another fingerprint is another application; the
// same application with another instance, validity or testFlag is refused
// 000002. A repeat of an application whose license failed (generation or
// upload) puts it back to work (grant.Service.Resume), as license 1.0
// does. Refusals write nothing and are not stored: a repeat is judged
// again.
package onlinelicense

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/koobridge/koobridge/internal/grant"
	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/saasv2"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// Name labels the family in the ledger, the log and metrics.
const Name = "online-license"

// Activities are what the family serves: the instance activities of §C
// and getLicenseAsync.
var Activities = []string{
	protocol.ActivityNewInstance,
	protocol.ActivityRefreshInstance,
	protocol.ActivityUpdateInstanceStatus,
	protocol.ActivityReleaseInstance,
	protocol.ActivityQueryInstance,
	protocol.ActivityUpgradeInstance,
	protocol.ActivityGetLicenseAsync,
}

// Store is what the family reads and writes itself: the operation
// records of getLicenseAsync, in transactions with the instance they name.
type Store interface {
	store.OperationReader
	store.Txer
}

// Config configures a Service.
type Config struct {
	// Instances is the instance state machine. Required.
	Instances *instance.Service
	// Grants generates and uploads the licenses. Required.
	Grants *grant.Service
	Store  Store // Required.
	// Keys is the key type the calls are signed with: inbound.KeyLicense
	// (the default, when empty) or inbound.KeyBasic.
	Keys inbound.KeyType
	// FingerprintRequired answers a getLicenseAsync without
	// deviceFingerprint 000903; otherwise the fingerprint is optional, as
	// the spec prints it.
	FingerprintRequired bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service serves the online-license family.
type Service struct {
	cfg       Config
	instances func(ctx context.Context, req inbound.Request) (inbound.Outcome, error)
}

// New checks cfg and returns the family's service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Instances == nil, cfg.Grants == nil, cfg.Store == nil:
		return nil, errors.New("onlinelicense: Instances, Grants and Store are required")
	case cfg.Keys == "":
		cfg.Keys = inbound.KeyLicense
	case cfg.Keys != inbound.KeyLicense && cfg.Keys != inbound.KeyBasic:
		return nil, fmt.Errorf("onlinelicense: key type %q: want %s or %s", cfg.Keys, inbound.KeyLicense, inbound.KeyBasic)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, instances: saasv2.Serve(cfg.Instances, saasv2.Options{AppInfoOptional: true})}, nil
}

// Family returns the online-license family served with POST at path (the
// license path, beside the license-code 2.0 family: the activity tells
// them apart).
func (s *Service) Family(path string) *inbound.Family {
	return &inbound.Family{
		Name:       Name,
		Method:     http.MethodPost,
		Path:       path,
		Keys:       s.cfg.Keys,
		Scheme:     inbound.URLSignature,
		Activities: Activities,
		Decode:     decode,
		Serve:      s.serve,
	}
}

// decode decodes a body strictly with the V2 decoder, which knows
// getLicenseAsync (package protocol refuses duplicate keys, wrong types,
// invalid UTF-8 and NUL).
func decode(c *inbound.Call) (inbound.Request, error) {
	return protocol.DecodeV2(c.Body)
}

// serve runs one decoded, valid request.
func (s *Service) serve(ctx context.Context, req inbound.Request) (inbound.Outcome, error) {
	if r, ok := req.(protocol.GetLicenseAsyncRequest); ok {
		return s.getLicenseAsync(ctx, r)
	}
	return s.instances(ctx, req)
}

// refusal is a getLicenseAsync the family refuses, with its code: it ends
// the transaction before anything is written.
type refusal struct {
	code protocol.ResultCode
	msg  string
}

func (r *refusal) Error() string { return string(r.code) + " " + r.msg }

// accepted is the resultMsg of an application taken.
const accepted = "license application accepted; the license will be uploaded to KooGallery"

func (s *Service) getLicenseAsync(ctx context.Context, r protocol.GetLicenseAsyncRequest) (inbound.Outcome, error) {
	test := protocol.IsTestOrder(r.IsTest(), "")
	key := s.cfg.Grants.OnlineKey(r.EventID, r.DeviceFingerprint)
	opKey := instance.Key(protocol.ActivityGetLicenseAsync, key)
	out := inbound.Outcome{InstanceID: r.InstanceID, Test: test}
	// Validate has checked both forms already.
	effective, err := r.Effective()
	if err != nil {
		return answer(out, &refusal{protocol.CodeInvalidParam, (&protocol.FieldError{Field: "effectiveTime", Problem: err.Error()}).Error()})
	}
	expiry, hasExpiry, err := r.Expiry()
	if err != nil {
		return answer(out, &refusal{protocol.CodeInvalidParam, (&protocol.FieldError{Field: "expireTime", Problem: err.Error()}).Error()})
	}
	fp := instance.Fingerprint(r.InstanceID, strconv.FormatInt(effective.UnixMilli(), 10),
		strconv.FormatInt(expiry.UnixMilli(), 10), strconv.FormatBool(hasExpiry), strconv.FormatBool(test))

	// A repeat gets the first answer, whatever has happened since; a
	// license that failed is worked on again, as KooGallery still wants it.
	if op, err := s.cfg.Store.Operation(ctx, opKey); err == nil && op.State == store.OperationDone {
		if op.Fingerprint == fp {
			if _, err := s.cfg.Grants.Resume(ctx, store.GrantOnline, key); err != nil {
				return inbound.Outcome{}, fmt.Errorf("onlinelicense: getLicenseAsync %s: %w", r.InstanceID, err)
			}
		}
		return repeat(out, opKey, op, fp)
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return inbound.Outcome{}, fmt.Errorf("onlinelicense: read operation: %w", err)
	}
	if s.cfg.FingerprintRequired && r.DeviceFingerprint == "" {
		return answer(out, &refusal{protocol.CodeFingerprintRequired, "device fingerprint required: deviceFingerprint is missing"})
	}
	body, err := protocol.Marshal(protocol.NewResponse(protocol.CodeProcessing, accepted))
	if err != nil {
		return inbound.Outcome{}, err
	}
	var winner *store.Operation
	err = s.cfg.Store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		winner = nil
		inst, err := tx.Instance(ctx, r.InstanceID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return &refusal{protocol.CodeInstanceNotFound, "instance does not exist"}
		case err != nil:
			return err
		}
		switch {
		case inst.Status == store.StatusReleased:
			return &refusal{protocol.CodeOutsideOrderValidity, "must apply within the order validity period: the instance is released"}
		case inst.Status == store.StatusFrozen:
			return &refusal{protocol.CodeOutsideOrderValidity, "must apply within the order validity period: the instance is frozen"}
		case inst.Status == store.StatusFailed:
			return &refusal{protocol.CodeInstanceNotFound, "instance does not exist: its creation failed"}
		case inst.OrderState != store.OrderFetched:
			// Whether the product is a period one (000902) is in the
			// order, not known yet; KooGallery asks again.
			return &refusal{protocol.CodeInternal, "instance still being provisioned: its order is not known yet; ask again"}
		case inst.ChargingMode == protocol.ChargingPeriod && !hasExpiry:
			return &refusal{protocol.CodeExpiryRequired, "a period license needs an expiry time: expireTime is missing"}
		}
		now := s.cfg.Now().UTC()
		inserted, err := tx.InsertOperation(ctx, store.Operation{
			Key: opKey, Activity: r.Activity(), InstanceID: inst.ID, Fingerprint: fp, State: store.OperationDone,
			ResultCode: string(protocol.CodeProcessing), Response: body, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		if !inserted { // a concurrent duplicate committed first
			op, err := tx.Operation(ctx, opKey)
			if err != nil {
				return err
			}
			winner = &op
			return nil
		}
		_, _, _, err = s.cfg.Grants.Insert(ctx, tx, grant.Request{
			Kind: store.GrantOnline, Key: key, InstanceID: inst.ID, EventID: r.EventID, OrderID: inst.OrderID,
			ProductID: inst.ProductID, Test: test || inst.Test, EffectiveTime: effective, ExpireTime: expiry,
			DeviceFingerprint: r.DeviceFingerprint, Fingerprint: fp,
		})
		return err
	})
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		return answer(out, ref)
	case err != nil:
		return inbound.Outcome{}, fmt.Errorf("onlinelicense: getLicenseAsync %s: %w", r.InstanceID, err)
	case winner != nil:
		return repeat(out, opKey, *winner, fp)
	}
	s.cfg.Grants.Kick()
	out.IdemKey, out.Response, out.Code, out.Msg = opKey, json.RawMessage(body), protocol.CodeProcessing, accepted
	return out, nil
}

// repeat answers a getLicenseAsync whose application is stored: the
// stored reply byte for byte, or 000002 when the application was made
// with other values (not a repeat, and not applied: its key is taken).
func repeat(out inbound.Outcome, opKey string, op store.Operation, fp string) (inbound.Outcome, error) {
	if op.Fingerprint != fp {
		return answer(out, &refusal{protocol.CodeInvalidParam,
			"invalid request: this eventId and device fingerprint were already applied for with another instanceId, validity or testFlag; not applied again"})
	}
	var r protocol.Response
	_ = json.Unmarshal(op.Response, &r)
	out.IdemKey, out.Repeat = opKey, true
	out.Response, out.Code, out.Msg = json.RawMessage(op.Response), protocol.ResultCode(op.ResultCode), r.ResultMsg
	return out, nil
}

// answer answers a refusal: its code and message, nothing stored.
func answer(out inbound.Outcome, r *refusal) (inbound.Outcome, error) {
	out.Response, out.Code, out.Msg = protocol.NewResponse(r.code, r.msg), r.code, r.msg
	return out, nil
}
