package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// Reasons a mutating call cannot apply, turned into result codes by
// refusal.
var (
	errReleased       = errors.New("instance is released")
	errNotProvisioned = errors.New("instance is not provisioned yet")
)

// refusal maps the errors of a state decision to an answer; ok is false
// for errors that are internal failures.
func refusal(err error) (Answer, bool) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Answer{Code: protocol.CodeInstanceNotFound, Msg: "instance does not exist"}, true
	case errors.Is(err, errReleased):
		return Answer{Code: protocol.CodeInstanceNotFound, Msg: errReleased.Error()}, true
	case errors.Is(err, errNotProvisioned):
		return Answer{Code: protocol.CodeInternal, Msg: errNotProvisioned.Error()}, true
	}
	return Answer{}, false
}

// msgOf reads the resultMsg of a stored reply, for the ledger.
func msgOf(body []byte) string {
	var r protocol.Response
	_ = json.Unmarshal(body, &r)
	return r.ResultMsg
}

// stored returns the operation key, ok false when there is none (or it is
// not done).
func (s *Service) stored(ctx context.Context, key string) (store.Operation, bool, error) {
	op, err := s.store.Operation(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return op, false, nil
	}
	if err != nil {
		return op, false, fmt.Errorf("instance: read operation: %w", err)
	}
	return op, op.State == store.OperationDone, nil
}

// conflict answers a call whose key names an operation stored for another
// request: it is not a repeat, and is not applied either (its key is
// taken). An instance that does not exist (or is released) is 000003, as
// it would be for any call; otherwise 000002 says why.
func (s *Service) conflict(ctx context.Context, instanceID, what string, render Render) (Answer, error) {
	inst, err := s.store.Instance(ctx, instanceID)
	if err == nil && inst.Status == store.StatusReleased {
		err = errReleased
	}
	if a, ok := refusal(err); ok && a.Code == protocol.CodeInstanceNotFound {
		return answer(a, render)
	}
	if err != nil {
		return Answer{}, fmt.Errorf("instance: read %s: %w", instanceID, err)
	}
	return answer(Answer{
		Code:     protocol.CodeInvalidParam,
		Msg:      "invalid request: " + what + " was already applied with other values; not applied again",
		Instance: inst,
	}, render)
}

// isRenewal reports whether a refreshInstance scene renews the instance
// (and so lifts a freeze caused by expiry).
func isRenewal(scene string) bool {
	switch scene {
	case protocol.SceneRenewal, protocol.SceneTrialToFormal, protocol.SceneRenewalChange:
		return true
	}
	return false
}

// Renewal sets an instance's expiry (refreshInstance): trial conversion,
// renewal, a renewal period unsubscribed, a renewal with change.
type Renewal struct {
	Activity    string
	Key         string // idempotency key, e.g. "refreshInstance:ORDER:LINE:SCENE"
	Fingerprint string // of InstanceID, Expiry and ProductID at least
	InstanceID  string
	OrderID     string
	OrderLineID string
	Scene       string
	ProductID   string // the new product when the period type changed; "" keeps it
	Expiry      time.Time
}

// Renew sets the expiry absolutely. Its operation row, the instance change
// and the instance.renewed job commit together; a repeat gets the stored
// reply byte for byte; a call with the same key and another fingerprint is
// answered by conflict.
func (s *Service) Renew(ctx context.Context, r Renewal, render Render) (Answer, error) {
	if op, ok, err := s.stored(ctx, r.Key); err != nil || ok {
		if err != nil {
			return Answer{}, err
		}
		if !sameRequest(op, r.Fingerprint) {
			return s.conflict(ctx, r.InstanceID, "this order line and scene", render)
		}
		return storedAnswer(op, store.Instance{ID: op.InstanceID}), nil
	}
	a, err := answer(Answer{Code: protocol.CodeSuccess, Msg: "success", Key: r.Key}, render)
	if err != nil {
		return Answer{}, err
	}
	now := s.now().UTC()
	var winner *store.Operation
	inst, err := s.mutate(ctx, r.InstanceID, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		winner = nil
		if in.Status == store.StatusReleased {
			return errReleased
		}
		ok, err := tx.InsertOperation(ctx, store.Operation{
			Key: r.Key, Activity: r.Activity, InstanceID: in.ID, Fingerprint: r.Fingerprint, State: store.OperationDone,
			ResultCode: string(protocol.CodeSuccess), Response: a.Body, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		if !ok { // a concurrent call with the same key committed first
			op, err := tx.Operation(ctx, r.Key)
			if err != nil {
				return err
			}
			winner = &op
			return errNoChange
		}
		in.ExpireTime = r.Expiry
		if r.ProductID != "" {
			in.ProductID = r.ProductID
		}
		// An instance frozen by expiry is unfrozen by a renewal that moves
		// the expiry into the future.
		if in.Status == store.StatusFrozen && isRenewal(r.Scene) && r.Expiry.After(now) {
			in.Status, in.FrozenBy = store.StatusActive, ""
		}
		_, _, err = s.enqueue(ctx, tx, KindNotify, "notify:"+r.Key, jobPayload{
			InstanceID: in.ID, Event: string(provision.EventRenewed), EventID: r.Key, Scene: r.Scene,
		}, now)
		return err
	})
	if errors.Is(err, errNoChange) && winner != nil {
		if !sameRequest(*winner, r.Fingerprint) {
			return s.conflict(ctx, r.InstanceID, "this order line and scene", render)
		}
		return storedAnswer(*winner, inst), nil
	}
	if ra, ok := refusal(err); ok {
		return answer(ra, render)
	}
	if err != nil {
		return Answer{}, fmt.Errorf("instance: renew: %w", err)
	}
	s.jobs.Kick()
	a.Instance = inst
	return a, nil
}

// Why an instance is frozen (store.Instance.FrozenBy).
const (
	frozenByStatus = "status" // updateInstanceStatus / instanceStatus FREEZE
	frozenByExpiry = "expiry" // SaaS V1 expireInstance
)

// SetStatus freezes (freeze true) or unfreezes an instance. It is
// state-based, not stored: FREEZE, UNFREEZE, FREEZE each act, and a call
// finding the instance already in the target state succeeds without an
// event. key labels the call in the ledger.
func (s *Service) SetStatus(ctx context.Context, key, instanceID string, freeze bool, render Render) (Answer, error) {
	return s.setStatus(ctx, key, instanceID, freeze, frozenByStatus, render)
}

// Expire freezes an instance at its expiry (SaaS V1 expireInstance), as
// SetStatus freezes it, and records expiry as the reason: a renewal that
// moves the expiry into the future unfreezes it.
func (s *Service) Expire(ctx context.Context, key, instanceID string, render Render) (Answer, error) {
	return s.setStatus(ctx, key, instanceID, true, frozenByExpiry, render)
}

// setStatus is SetStatus, with why a freeze happens.
func (s *Service) setStatus(ctx context.Context, key, instanceID string, freeze bool, why string, render Render) (Answer, error) {
	target, evType, frozenBy, word := store.StatusActive, provision.EventUnfrozen, "", "UNFREEZE"
	if freeze {
		target, evType, frozenBy, word = store.StatusFrozen, provision.EventFrozen, why, "FREEZE"
	}
	now := s.now().UTC()
	inst, err := s.mutate(ctx, instanceID, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		switch in.Status {
		case store.StatusReleased:
			return errReleased
		case store.StatusProvisioning, store.StatusFailed:
			return errNotProvisioned
		case target:
			return errNoChange
		}
		eventID := "status:" + in.ID + ":" + word + ":" + strconv.FormatInt(in.Version, 10)
		if _, _, err := s.enqueue(ctx, tx, KindNotify, "notify:"+eventID, jobPayload{
			InstanceID: in.ID, Event: string(evType), EventID: eventID,
		}, now); err != nil {
			return err
		}
		in.Status, in.FrozenBy = target, frozenBy
		return nil
	})
	return s.stateAnswer("set status", key, inst, err, render)
}

// Release releases an instance. It is terminal and answers success again
// for a released instance; only ids that never existed get 000003.
// koobridge keeps the instance's data (the ledger needs it); the vendor
// deletes its side on instance.released.
func (s *Service) Release(ctx context.Context, key, instanceID string, render Render) (Answer, error) {
	now := s.now().UTC()
	inst, err := s.mutate(ctx, instanceID, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		if in.Status == store.StatusReleased {
			return errNoChange
		}
		eventID := string(provision.EventReleased) + ":" + in.ID
		if _, _, err := s.enqueue(ctx, tx, KindNotify, "notify:released:"+in.ID, jobPayload{
			InstanceID: in.ID, Event: string(provision.EventReleased), EventID: eventID,
		}, now); err != nil {
			return err
		}
		// Released ends a freeze: the reason it was frozen no longer
		// describes the instance.
		in.Status, in.FrozenBy, in.ReleasedAt = store.StatusReleased, "", now
		return nil
	})
	return s.stateAnswer("release", key, inst, err, render)
}

// stateAnswer answers a state-based change (status, release) from the
// result of its mutate: no change is a successful repeat, a refusal its
// result code, success wakes the workers for the event it enqueued.
func (s *Service) stateAnswer(what, key string, inst store.Instance, err error, render Render) (Answer, error) {
	switch {
	case errors.Is(err, errNoChange):
		return answer(Answer{Code: protocol.CodeSuccess, Msg: "success", Instance: inst, Key: key, Repeat: true}, render)
	case err != nil:
		if a, ok := refusal(err); ok {
			a.Key = key
			return answer(a, render)
		}
		return Answer{}, fmt.Errorf("instance: %s: %w", what, err)
	}
	s.jobs.Kick()
	return answer(Answer{Code: protocol.CodeSuccess, Msg: "success", Instance: inst, Key: key}, render)
}

// Upgrade is a change of specification (upgradeInstance): the target comes
// from Query Order of the upgrade order, or with the call.
type Upgrade struct {
	Activity    string
	Key         string // idempotency key, e.g. "upgradeInstance:ORDER:LINE"
	Fingerprint string // of InstanceID at least
	InstanceID  string
	OrderID     string
	OrderLineID string
	// Target is the new specification when the call carries it (SaaS V1
	// upgrade); nil asks Query Order of the upgrade order (SaaS V2).
	Target *provision.Product
}

// Upgrade accepts an upgrade durably (operation row and upgrade job in one
// transaction) and answers 000000; the job learns the new specification
// from Query Order and tells the vendor, within the budget when it can, in
// the background otherwise.
func (s *Service) Upgrade(ctx context.Context, u Upgrade, render Render) (Answer, error) {
	deadline := time.Now().Add(s.budget)
	if op, ok, err := s.stored(ctx, u.Key); err != nil || ok {
		if err != nil {
			return Answer{}, err
		}
		if !sameRequest(op, u.Fingerprint) {
			return s.conflict(ctx, u.InstanceID, "this upgrade order line", render)
		}
		return storedAnswer(op, store.Instance{ID: op.InstanceID}), nil
	}
	a, err := answer(Answer{Code: protocol.CodeSuccess, Msg: "success", Key: u.Key}, render)
	if err != nil {
		return Answer{}, err
	}
	now := s.now().UTC()
	var (
		winner *store.Operation
		jobID  int64
		inst   store.Instance
	)
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		winner, jobID = nil, 0
		in, err := tx.Instance(ctx, u.InstanceID)
		if err != nil {
			return err
		}
		inst = in
		switch in.Status {
		case store.StatusReleased:
			return errReleased
		case store.StatusProvisioning, store.StatusFailed:
			return errNotProvisioned
		}
		ok, err := tx.InsertOperation(ctx, store.Operation{
			Key: u.Key, Activity: u.Activity, InstanceID: in.ID, Fingerprint: u.Fingerprint, State: store.OperationDone,
			ResultCode: string(protocol.CodeSuccess), Response: a.Body, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		if !ok {
			op, err := tx.Operation(ctx, u.Key)
			if err != nil {
				return err
			}
			winner = &op
			return nil
		}
		jobID, _, err = s.enqueue(ctx, tx, KindUpgrade, "upgrade:"+u.Key, jobPayload{
			InstanceID: in.ID, OrderID: u.OrderID, OrderLineID: u.OrderLineID, OpKey: u.Key, Target: u.Target,
		}, now.Add(s.budget+5*time.Second))
		return err
	})
	if ra, ok := refusal(err); ok {
		return answer(ra, render)
	}
	if err != nil {
		return Answer{}, fmt.Errorf("instance: upgrade: %w", err)
	}
	if winner != nil {
		if !sameRequest(*winner, u.Fingerprint) {
			return s.conflict(ctx, u.InstanceID, "this upgrade order line", render)
		}
		return storedAnswer(*winner, inst), nil
	}
	s.runWithin(ctx, jobID, deadline)
	a.Instance = inst
	return a, nil
}

// CheckChange asks the provisioner, within the budget, whether the
// instance may be renewed with a change to target (changeInstanceCheck).
// Nothing is stored: the answer may change over time and the call changes
// nothing.
func (s *Service) CheckChange(ctx context.Context, instanceID string, test bool, target provision.Product, render Render) (Answer, error) {
	inst, err := s.store.Instance(ctx, instanceID)
	if err == nil && inst.Status == store.StatusReleased {
		err = errReleased
	}
	if a, ok := refusal(err); ok {
		return answer(a, render)
	}
	if err != nil {
		return Answer{}, fmt.Errorf("instance: check change: %w", err)
	}
	test = inst.Test || test
	ev := provision.Event{
		ID:       string(provision.EventChangeCheck) + ":" + inst.ID + ":" + uuid.NewString(),
		Type:     provision.EventChangeCheck,
		Time:     s.now().UTC(),
		Test:     test,
		Instance: vendorView(inst),
		Change:   &target,
	}
	cctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	res, err := s.provisionerFor(test).Provision(cctx, ev)
	a := Answer{Code: protocol.CodeSuccess, Msg: "success", Instance: inst}
	switch {
	case err != nil:
		// The error stays in the log: it may name the vendor's internal hosts.
		s.log.WarnContext(ctx, "instance: change check failed", "instance", inst.ID, "err", err)
		a.Code, a.Msg = protocol.CodeInternal, "could not check the change with the vendor's product"
	case !res.Allowed:
		a.Code, a.Msg = protocol.CodeInternal, res.Reason
		if a.Msg == "" {
			a.Msg = "change not allowed"
		}
	}
	return answer(a, render)
}
