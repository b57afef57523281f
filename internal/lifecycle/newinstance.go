package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
)

// IsTestOrder reports whether a call creates a debug instance: testFlag "1"
// or one of the MOCK* orders of the seller console's debugger (saas-v2.md
// §6.5).
func IsTestOrder(testFlag bool, orderID string) bool {
	return testFlag || strings.HasPrefix(orderID, "MOCK")
}

// newInstance creates the instance of an order line once, whatever the
// number of calls: the instances table's unique (order, line) constraint
// decides which call inserts. That call also enqueues the provision job in
// the same transaction, then runs it itself within the budget.
//
// Pay-per-use needs nothing more: in V2 each billing item of a pay-per-use
// order has its own order line, so (orderId, orderLineId) is one instance
// per billing item, which is what the guide's "orderId + productId" rule
// asks for.
func (s *Service) newInstance(ctx context.Context, r protocol.NewInstanceRequest) (Outcome, error) {
	deadline := time.Now().Add(s.budget)
	now := s.now().UTC()
	cand := store.Instance{
		ID:          uuid.NewString(),
		OrderID:     r.OrderID,
		OrderLineID: r.OrderLineID,
		BusinessID:  r.BusinessID,
		Test:        IsTestOrder(r.IsTest(), r.OrderID),
		OrderState:  store.OrderPending,
		Status:      store.StatusProvisioning,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	var (
		inst     store.Instance
		inserted bool
		jobID    int64
	)
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		jobID = 0 // the store may run fn again
		ok, err := tx.InsertInstance(ctx, cand)
		if err != nil {
			return err
		}
		inserted = ok
		if !ok {
			inst, err = tx.InstanceByOrderLine(ctx, r.OrderID, r.OrderLineID)
			return err
		}
		inst = cand
		// RunAt lies past the budget: this call claims the job itself, and a
		// runner takes it only if this process dies before it can.
		jobID, _, err = s.enqueue(ctx, tx, KindProvision, "provision:"+cand.ID,
			jobPayload{InstanceID: cand.ID}, now.Add(s.budget+5*time.Second))
		return err
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("lifecycle: newInstance: %w", err)
	}
	out := Outcome{
		IdemKey:     "newInstance:" + r.OrderID + ":" + r.OrderLineID,
		InstanceID:  inst.ID,
		OrderID:     r.OrderID,
		OrderLineID: r.OrderLineID,
		Repeat:      !inserted,
	}
	if !inserted {
		if inst.Status != store.StatusFailed {
			return newInstanceAnswer(out, inst), nil
		}
		// A repeat of a failed purchase provisions again: KooGallery retries
		// newInstance for hours, and the vendor may have fixed the cause.
		var restarted bool
		// Due after the budget, like the first job: this call runs it itself.
		inst, restarted, jobID, err = s.restartProvisioning(ctx, inst.ID, false, now.Add(s.budget+5*time.Second))
		if err != nil {
			return Outcome{}, fmt.Errorf("lifecycle: newInstance: %w", err)
		}
		if !restarted {
			return newInstanceAnswer(out, inst), nil
		}
	}
	s.runWithin(ctx, jobID, deadline)
	inst, err = s.store.Instance(ctx, inst.ID)
	if err != nil {
		return Outcome{}, fmt.Errorf("lifecycle: newInstance: read instance: %w", err)
	}
	return newInstanceAnswer(out, inst), nil
}

// restartProvisioning moves a failed instance (or, with stuck, a
// provisioning one whose job is dead) back to provisioning and enqueues a
// fresh provision job, due at runAt, in the same transaction. restarted is
// false, with the instance as read, when its state no longer allows it.
func (s *Service) restartProvisioning(ctx context.Context, id string, stuck bool, runAt time.Time) (inst store.Instance, restarted bool, jobID int64, err error) {
	inst, err = s.mutate(ctx, id, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		if in.Status != store.StatusFailed && !(stuck && in.Status == store.StatusProvisioning) {
			return errNoChange
		}
		key := "provision:" + in.ID + ":" + strconv.FormatInt(in.Version+1, 10)
		var err error
		jobID, _, err = s.enqueue(ctx, tx, KindProvision, key, jobPayload{InstanceID: in.ID}, runAt)
		if err != nil {
			return err
		}
		in.Status = store.StatusProvisioning
		return nil
	})
	if errors.Is(err, errNoChange) {
		return inst, false, 0, nil
	}
	if err != nil {
		return inst, false, 0, err
	}
	return inst, true, jobID, nil
}

// newInstanceAnswer maps the instance's state to the newInstance reply.
func newInstanceAnswer(out Outcome, inst store.Instance) Outcome {
	code, msg := protocol.CodeSuccess, "success"
	switch inst.Status {
	case store.StatusProvisioning:
		code, msg = protocol.CodeProcessing, progressMsg(inst)
	case store.StatusFailed:
		code, msg = protocol.CodeInternal, failedMsg(inst)
	}
	out.Code, out.Msg = code, msg
	out.Response = protocol.NewInstanceResponse{
		Response:   protocol.Response{ResultCode: code, ResultMsg: msg},
		InstanceID: inst.ID,
	}
	return out
}

// orderWaitPrefix starts LastError while Query Order has not answered.
const orderWaitPrefix = "waiting for order details"

// progressMsg and failedMsg are the resultMsg KooGallery sees. They say
// what koobridge is waiting for, but never repeat the provisioner's error:
// that may name the vendor's internal hosts and quote its replies, and it
// stays in LastError for the admin API and the log.
func progressMsg(inst store.Instance) string {
	if strings.HasPrefix(inst.LastError, orderWaitPrefix) {
		return "provisioning in progress: " + orderWaitPrefix
	}
	if inst.LastError != "" {
		return "provisioning in progress: the vendor's product has not confirmed the instance yet"
	}
	return "provisioning in progress"
}

func failedMsg(store.Instance) string {
	return "provisioning failed: the vendor's product did not create the instance"
}

// clip shortens s to resultMsg's 255 characters.
func clip(s string) string {
	const max = 255
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
