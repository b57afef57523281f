package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/internal/provision"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// Reasons a mutating call cannot apply, turned into result codes by
// refusal.
var (
	errReleased       = errors.New("instance is released")
	errNotProvisioned = errors.New("instance is not provisioned yet")
)

// refusal maps the errors of a state decision to an answer; ok is false
// for errors that are internal failures.
func refusal(err error) (Outcome, bool) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return plain(protocol.CodeInstanceNotFound, "instance does not exist"), true
	case errors.Is(err, errReleased):
		return plain(protocol.CodeInstanceNotFound, errReleased.Error()), true
	case errors.Is(err, errNotProvisioned):
		return plain(protocol.CodeInternal, errNotProvisioned.Error()), true
	}
	return Outcome{}, false
}

// storedOperation returns the done operation key, or ok false when there is
// none (or it is not done).
func (s *Service) storedOperation(ctx context.Context, key string) (Outcome, bool, error) {
	op, err := s.store.Operation(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return Outcome{}, false, nil
	}
	if err != nil {
		return Outcome{}, false, fmt.Errorf("lifecycle: read operation: %w", err)
	}
	if op.State != store.OperationDone {
		return Outcome{}, false, nil
	}
	return fromOperation(op), true, nil
}

// fromOperation answers with a stored reply, byte for byte.
func fromOperation(op store.Operation) Outcome {
	var r protocol.Response
	_ = json.Unmarshal(op.Response, &r) // only for the ledger's message
	return Outcome{
		Response:   json.RawMessage(op.Response),
		Code:       protocol.ResultCode(op.ResultCode),
		Msg:        r.ResultMsg,
		IdemKey:    op.Key,
		InstanceID: op.InstanceID,
		Repeat:     true,
	}
}

// successBody is the stored reply of a successful mutating call.
func successBody() ([]byte, error) {
	return protocol.Marshal(protocol.NewResponse(protocol.CodeSuccess, "success"))
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

// refreshInstance sets the expiry absolutely. Its operation row, the
// instance change and the instance.renewed job commit together; a repeat
// gets the stored reply byte for byte.
func (s *Service) refreshInstance(ctx context.Context, r protocol.RefreshInstanceRequest) (Outcome, error) {
	key := "refreshInstance:" + r.OrderID + ":" + r.OrderLineID + ":" + r.Scene
	ids := func(o Outcome) Outcome {
		o.IdemKey, o.InstanceID, o.OrderID, o.OrderLineID = key, r.InstanceID, r.OrderID, r.OrderLineID
		return o
	}
	if o, ok, err := s.storedOperation(ctx, key); err != nil || ok {
		return ids(o), err
	}
	expiry, err := r.Expiry()
	if err != nil {
		return ids(plain(protocol.CodeInvalidParam, (&protocol.FieldError{Field: "expireTime", Problem: err.Error()}).Error())), nil
	}
	body, err := successBody()
	if err != nil {
		return Outcome{}, err
	}
	now := s.now().UTC()
	var stored *store.Operation
	_, err = s.mutate(ctx, r.InstanceID, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		stored = nil
		if in.Status == store.StatusReleased {
			return errReleased
		}
		ok, err := tx.InsertOperation(ctx, store.Operation{
			Key: key, Activity: r.Activity(), InstanceID: in.ID, State: store.OperationDone,
			ResultCode: string(protocol.CodeSuccess), Response: body, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		if !ok { // a concurrent duplicate committed first
			op, err := tx.Operation(ctx, key)
			if err != nil {
				return err
			}
			stored = &op
			return errNoChange
		}
		in.ExpireTime = expiry
		if r.ProductID != "" {
			in.ProductID = r.ProductID
		}
		// An instance frozen by expiry is unfrozen by a renewal that moves
		// the expiry into the future.
		if in.Status == store.StatusFrozen && isRenewal(r.Scene) && expiry.After(now) {
			in.Status, in.FrozenBy = store.StatusActive, ""
		}
		_, _, err = s.enqueue(ctx, tx, KindNotify, "notify:"+key, jobPayload{
			InstanceID: in.ID, Event: string(provision.EventRenewed), EventID: key, Scene: r.Scene,
		}, now)
		return err
	})
	if errors.Is(err, errNoChange) && stored != nil {
		return ids(fromOperation(*stored)), nil
	}
	if o, ok := refusal(err); ok {
		return ids(o), nil
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("lifecycle: refreshInstance: %w", err)
	}
	s.jobs.Kick()
	return ids(Outcome{Response: json.RawMessage(body), Code: protocol.CodeSuccess, Msg: "success"}), nil
}

// updateInstanceStatus freezes or unfreezes. It is state-based, not
// operation-stored: FREEZE, UNFREEZE, FREEZE each act, and a call finding
// the instance already in the target state succeeds without an event.
func (s *Service) updateInstanceStatus(ctx context.Context, r protocol.UpdateInstanceStatusRequest) (Outcome, error) {
	target, evType, frozenBy := store.StatusFrozen, provision.EventFrozen, "status"
	if r.Status == protocol.StatusUnfreeze {
		target, evType, frozenBy = store.StatusActive, provision.EventUnfrozen, ""
	}
	ids := func(o Outcome) Outcome {
		o.IdemKey, o.InstanceID = "updateInstanceStatus:"+r.InstanceID+":"+r.Status, r.InstanceID
		return o
	}
	now := s.now().UTC()
	_, err := s.mutate(ctx, r.InstanceID, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		switch in.Status {
		case store.StatusReleased:
			return errReleased
		case store.StatusProvisioning, store.StatusFailed:
			return errNotProvisioned
		case target:
			return errNoChange
		}
		eventID := "status:" + in.ID + ":" + r.Status + ":" + strconv.FormatInt(in.Version, 10)
		if _, _, err := s.enqueue(ctx, tx, KindNotify, "notify:"+eventID, jobPayload{
			InstanceID: in.ID, Event: string(evType), EventID: eventID,
		}, now); err != nil {
			return err
		}
		in.Status, in.FrozenBy = target, frozenBy
		return nil
	})
	return s.stateOutcome("updateInstanceStatus", err, ids)
}

// releaseInstance is terminal and answers success again for a released
// instance; only ids that never existed get 000003. koobridge keeps the
// instance's data (the ledger needs it); the vendor deletes its side on
// instance.released.
func (s *Service) releaseInstance(ctx context.Context, r protocol.ReleaseInstanceRequest) (Outcome, error) {
	ids := func(o Outcome) Outcome {
		o.IdemKey, o.InstanceID, o.OrderID, o.OrderLineID = "releaseInstance:"+r.InstanceID, r.InstanceID, r.OrderID, r.OrderLineID
		return o
	}
	now := s.now().UTC()
	_, err := s.mutate(ctx, r.InstanceID, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		if in.Status == store.StatusReleased {
			return errNoChange
		}
		eventID := string(provision.EventReleased) + ":" + in.ID
		if _, _, err := s.enqueue(ctx, tx, KindNotify, "notify:released:"+in.ID, jobPayload{
			InstanceID: in.ID, Event: string(provision.EventReleased), EventID: eventID,
		}, now); err != nil {
			return err
		}
		in.Status, in.ReleasedAt = store.StatusReleased, now
		return nil
	})
	return s.stateOutcome("releaseInstance", err, ids)
}

// stateOutcome answers a state-based change (status, release) from the
// result of its mutate: no change is a successful repeat, a refusal its
// result code, success wakes the workers for the event it enqueued.
func (s *Service) stateOutcome(activity string, err error, ids func(Outcome) Outcome) (Outcome, error) {
	if errors.Is(err, errNoChange) {
		o := ids(plain(protocol.CodeSuccess, "success"))
		o.Repeat = true
		return o, nil
	}
	if o, ok := refusal(err); ok {
		return ids(o), nil
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("lifecycle: %s: %w", activity, err)
	}
	s.jobs.Kick()
	return ids(plain(protocol.CodeSuccess, "success")), nil
}

// upgradeInstance accepts an upgrade durably (operation row and upgrade job
// in one transaction) and answers 000000; the job learns the new
// specification from Query Order and tells the vendor, within the budget
// when it can, in the background otherwise.
func (s *Service) upgradeInstance(ctx context.Context, r protocol.UpgradeInstanceRequest) (Outcome, error) {
	deadline := time.Now().Add(s.budget)
	key := "upgradeInstance:" + r.OrderID + ":" + r.OrderLineID
	ids := func(o Outcome) Outcome {
		o.IdemKey, o.InstanceID, o.OrderID, o.OrderLineID = key, r.InstanceID, r.OrderID, r.OrderLineID
		return o
	}
	if o, ok, err := s.storedOperation(ctx, key); err != nil || ok {
		return ids(o), err
	}
	body, err := successBody()
	if err != nil {
		return Outcome{}, err
	}
	now := s.now().UTC()
	var (
		stored *store.Operation
		jobID  int64
	)
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		stored = nil
		in, err := tx.Instance(ctx, r.InstanceID)
		if err != nil {
			return err
		}
		switch in.Status {
		case store.StatusReleased:
			return errReleased
		case store.StatusProvisioning, store.StatusFailed:
			return errNotProvisioned
		}
		ok, err := tx.InsertOperation(ctx, store.Operation{
			Key: key, Activity: r.Activity(), InstanceID: in.ID, State: store.OperationDone,
			ResultCode: string(protocol.CodeSuccess), Response: body, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		if !ok {
			op, err := tx.Operation(ctx, key)
			if err != nil {
				return err
			}
			stored = &op
			return nil
		}
		jobID, _, err = s.enqueue(ctx, tx, KindUpgrade, "upgrade:"+key, jobPayload{
			InstanceID: in.ID, OrderID: r.OrderID, OrderLineID: r.OrderLineID, OpKey: key,
		}, now.Add(s.budget+5*time.Second))
		return err
	})
	if o, ok := refusal(err); ok {
		return ids(o), nil
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("lifecycle: upgradeInstance: %w", err)
	}
	if stored != nil {
		return ids(fromOperation(*stored)), nil
	}
	s.runWithin(ctx, jobID, deadline)
	return ids(Outcome{Response: json.RawMessage(body), Code: protocol.CodeSuccess, Msg: "success"}), nil
}

// changeInstanceCheck asks the provisioner, within the budget, whether the
// instance may be renewed with a change. Nothing is stored: the answer may
// change over time and the call changes nothing.
func (s *Service) changeInstanceCheck(ctx context.Context, r protocol.ChangeInstanceCheckRequest) (Outcome, error) {
	ids := func(o Outcome) Outcome {
		o.InstanceID = r.InstanceID
		return o
	}
	inst, err := s.store.Instance(ctx, r.InstanceID)
	if err == nil && inst.Status == store.StatusReleased {
		err = errReleased
	}
	if o, ok := refusal(err); ok {
		return ids(o), nil
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("lifecycle: changeInstanceCheck: %w", err)
	}
	var change provision.Product
	if p := r.ProductInfo; p != nil {
		change = provision.Product{
			ProductID: p.ProductID.String(), SKUCode: p.SKUCode.String(),
			LinearValue: p.LinearValue.String(), ProductName: p.ProductName.String(),
		}
	}
	test := inst.Test || r.IsTest()
	ev := provision.Event{
		ID:       string(provision.EventChangeCheck) + ":" + inst.ID + ":" + uuid.NewString(),
		Type:     provision.EventChangeCheck,
		Time:     s.now().UTC(),
		Test:     test,
		Instance: vendorView(inst),
		Change:   &change,
	}
	cctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	res, err := s.provisionerFor(test).Provision(cctx, ev)
	switch {
	case err != nil:
		// The error stays in the log: it may name the vendor's internal hosts.
		s.log.WarnContext(ctx, "lifecycle: change check failed", "instance", inst.ID, "err", err)
		return ids(plain(protocol.CodeInternal, "could not check the change with the vendor's product")), nil
	case !res.Allowed:
		reason := res.Reason
		if reason == "" {
			reason = "change not allowed"
		}
		return ids(plain(protocol.CodeInternal, reason)), nil
	}
	return ids(plain(protocol.CodeSuccess, "success")), nil
}
