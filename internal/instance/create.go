package instance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// Create is a purchase (newInstance): one instance per order line,
// whatever the number of calls.
type Create struct {
	Activity    string // the family's activity, for the operation record
	OrderID     string
	OrderLineID string
	BusinessID  string
	Test        bool // protocol.IsTestOrder
	// Fingerprint of the meaningful fields beyond the order line (see
	// Fingerprint).
	Fingerprint string
	// Order is the purchase order when the call carries it whole (SaaS
	// V1 newInstance): the instance takes it in the same transaction and
	// Query Order is never asked. The buyer's personal data, in clear here,
	// is stored sealed and masked, and given in full to the vendor in
	// instance.created (Event.Order). nil: the order comes from Query Order
	// (SaaS V2).
	Order *provision.Order
	// AppInfoOptional marks a product without a web front end (online
	// license): instance.created may be answered without appInfo (see
	// appoptional.go). It is taken by the call that creates the instance.
	AppInfoOptional bool
}

// key is the idempotency key of the purchase of an order line.
func (c Create) key() string { return Key(protocol.ActivityNewInstance, c.OrderID, c.OrderLineID) }

// pollEvery is how often a duplicate call looks whether the call in flight
// for the same order line has answered.
const pollEvery = 20 * time.Millisecond

// staleAfter is how long past the budget a running purchase counts as in
// flight: a call that crashed does not keep its duplicates waiting
// forever.
const staleAfter = 10 * time.Second

// Create buys an order line: the first call inserts the instance, its
// running operation record and its provision job in one transaction (the
// instances table's unique order line decides which call that is), runs the
// job itself within the budget and stores its answer.
//
// A duplicate that arrives while the first call is in flight waits for it,
// within its own budget, and answers the first call's bytes; past the
// budget it answers from the instance's state (000004 while it
// provisions). A later repeat answers from the state: 000000 once active,
// 000004 while provisioning, the refusal of a refused purchase. A repeat
// of a failed purchase (not a refused one) provisions again, since
// KooGallery retries newInstance for hours and the vendor may have fixed
// the cause. A call naming an order line bought with another fingerprint
// (a debug call for a real order line, say) is not a repeat and is refused
// with 000002.
//
// Pay-per-use needs nothing more: in V2 each billing item of a pay-per-use
// order has its own order line, so (orderId, orderLineId) is one instance
// per billing item, which is what the guide's "orderId + productId" rule
// asks for.
//
// Commits. A SaaS V2 newInstance that provisions within its budget makes
// five write transactions, each separate for a reason (docs/operations.md,
// "What a call writes"):
//
//  1. The nonce (the pipeline, before the body is decoded): a replayed call
//     is refused even when the first one failed and rolled back, so the
//     nonce cannot share the fate of the call's own writes.
//  2. The instance, its operation and its provision job, inserted already
//     claimed by this process (jobs.Hold): the order line's unique
//     constraint decides which call buys it, and this must be durable
//     before the vendor hears of the instance, so that whatever the vendor
//     creates exists here and its job survives a crash (any runner takes
//     the job over when its lease expires).
//  3. The delivery's outcome, with the order Query Order gave and, when
//     the vendor created the instance, the job's completion
//     (jobs.CompleteIn): it can only follow the vendor's answer, which may
//     come after the budget, from a runner that is not this call.
//  4. The answer, stored on the operation for duplicates in flight: only
//     the call knows what it answered (000004 at its budget, or the
//     outcome of 3), so it writes it after deciding, once 3 has committed
//     or the budget has passed.
//  5. The ledger row (the pipeline, after the reply): the record of the
//     reply as sent, with its latency; the answer does not rest on it and
//     the reply does not wait for it.
//
// A failed delivery records its error with the order in 3, then the
// runner's retry or dead-letter commits on its own; a Query Order failure
// records its reason, then the retry. A repeat of a failed purchase adds
// the purchase's transaction that finds the instance, and restarts it
// with its job claimed as in 2.
func (s *Service) Create(ctx context.Context, c Create, render Render) (Answer, error) {
	deadline := time.Now().Add(s.budget)
	now := s.now().UTC()
	key := c.key()
	cand := store.Instance{
		ID:          uuid.NewString(),
		OrderID:     c.OrderID,
		OrderLineID: c.OrderLineID,
		BusinessID:  c.BusinessID,
		Test:        c.Test,
		OrderState:  store.OrderPending,
		Status:      store.StatusProvisioning,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if c.Order != nil {
		if err := s.carry(&cand, *c.Order); err != nil {
			return Answer{}, err
		}
	}
	var (
		inst     store.Instance
		op       store.Operation
		hasOp    bool
		inserted bool
		jobID    int64
	)
	hold := s.jobs.Hold()
	defer hold.Release()
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		jobID, hasOp = 0, false // the store may run fn again
		ok, err := tx.InsertInstance(ctx, cand)
		if err != nil {
			return err
		}
		inserted = ok
		if !ok {
			if inst, err = tx.InstanceByOrderLine(ctx, c.OrderID, c.OrderLineID); err != nil {
				return err
			}
			op, err = tx.Operation(ctx, key)
			switch {
			case errors.Is(err, store.ErrNotFound): // bought before operations were kept
				return nil
			case err != nil:
				return err
			}
			hasOp = true
			return nil
		}
		inst = cand
		opInserted, err := tx.InsertOperation(ctx, store.Operation{
			Key: key, Activity: c.Activity, InstanceID: cand.ID, Fingerprint: c.Fingerprint,
			State: store.OperationRunning, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		if !opInserted {
			// Another order line's purchase holds the key: impossible with
			// Key's escaping, unless the database was edited by hand.
			return fmt.Errorf("operation %s exists for another instance", key)
		}
		if c.AppInfoOptional {
			if _, err := tx.InsertOperation(ctx, store.Operation{
				Key: appOptionalKey(cand.ID), Activity: c.Activity, InstanceID: cand.ID,
				State: store.OperationRunning, CreatedAt: now, UpdatedAt: now,
			}); err != nil {
				return err
			}
		}
		// Inserted claimed by this process, which runs it: a runner takes
		// it only once its lease expires, should this process die. (RunAt,
		// past the budget, is for a process that is stopping.)
		jobID, _, err = s.enqueueHeld(ctx, tx, hold, KindProvision, "provision:"+cand.ID,
			jobPayload{InstanceID: cand.ID}, now.Add(s.budget+5*time.Second))
		return err
	})
	if err != nil {
		return Answer{}, fmt.Errorf("instance: create: %w", err)
	}
	if !inserted {
		hold.Release() // no job of this call's own to run
		if hasOp && !sameRequest(op, c.Fingerprint) {
			return answer(Answer{
				Code: protocol.CodeInvalidParam,
				Msg:  "invalid parameter orderLineId: this order line was bought by a call with other values (testFlag, or another product family: SaaS or online license); not a repeat",
			}, render)
		}
		return s.repeatCreate(ctx, c, inst, op, hasOp, deadline, render)
	}
	return s.finishCreate(ctx, c, inst.ID, hold, jobID, deadline, false, render)
}

// repeatCreate answers a purchase whose instance exists.
func (s *Service) repeatCreate(ctx context.Context, c Create, inst store.Instance, op store.Operation, hasOp bool, deadline time.Time, render Render) (Answer, error) {
	key := c.key()
	if hasOp && op.State == store.OperationRunning && s.inFlight(op) {
		return s.awaitCreate(ctx, key, inst.ID, deadline, render)
	}
	if inst.Status == store.StatusFailed && inst.FailCode != "" {
		// Refused by the vendor's product: the same refusal, never a new
		// attempt. The stored answer is the refusal unless the refusal came
		// after the first call had answered 000004 at its budget.
		if hasOp && op.State == store.OperationDone && op.ResultCode == inst.FailCode {
			return storedAnswer(op, inst), nil
		}
		return s.createAnswer(inst, key, true, render)
	}
	if inst.Status != store.StatusFailed {
		return s.createAnswer(inst, key, true, render)
	}
	// Inserted claimed, like the first job: this call runs it itself.
	hold := s.jobs.Hold()
	defer hold.Release()
	restarted, jobID, err := s.restartProvisioning(ctx, inst.ID, false, &key, hold, s.now().UTC().Add(s.budget+5*time.Second))
	if err != nil {
		return Answer{}, fmt.Errorf("instance: create: %w", err)
	}
	if !restarted {
		hold.Release()
		// A concurrent repeat restarted it: wait for that one as a duplicate.
		op, err := s.store.Operation(ctx, key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Answer{}, fmt.Errorf("instance: create: %w", err)
		}
		if err == nil && op.State == store.OperationRunning {
			return s.awaitCreate(ctx, key, inst.ID, deadline, render)
		}
		inst, err := s.store.Instance(ctx, inst.ID)
		if err != nil {
			return Answer{}, fmt.Errorf("instance: create: read instance: %w", err)
		}
		return s.createAnswer(inst, key, true, render)
	}
	return s.finishCreate(ctx, c, inst.ID, hold, jobID, deadline, true, render)
}

// awaitCreate answers a duplicate of a purchase in flight: the first call's
// stored bytes when it answers before deadline, else the instance's state
// (000004 while it provisions).
func (s *Service) awaitCreate(ctx context.Context, key, id string, deadline time.Time, render Render) (Answer, error) {
	done, ok, err := s.awaitOperation(ctx, key, deadline)
	if err != nil {
		return Answer{}, err
	}
	inst, err := s.store.Instance(ctx, id)
	if err != nil {
		return Answer{}, fmt.Errorf("instance: create: read instance: %w", err)
	}
	if ok {
		return storedAnswer(done, inst), nil
	}
	return s.createAnswer(inst, key, true, render)
}

// finishCreate runs the provision job, which hold inserted claimed, within
// the budget, answers from the instance's state and stores the answer for
// duplicates in flight.
func (s *Service) finishCreate(ctx context.Context, c Create, id string, hold *jobs.Hold, jobID int64, deadline time.Time, repeat bool, render Render) (Answer, error) {
	hold.Run(ctx, jobID, deadline)
	inst, err := s.store.Instance(ctx, id)
	if err != nil {
		return Answer{}, fmt.Errorf("instance: create: read instance: %w", err)
	}
	a, err := s.createAnswer(inst, c.key(), repeat, render)
	if err != nil {
		return Answer{}, err
	}
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.FinishOperation(ctx, c.key(), string(a.Code), a.Body)
	})
	if err != nil {
		// The answer stands; duplicates waiting for it answer from the
		// state after their budget instead.
		s.log.WarnContext(ctx, "instance: store the purchase answer", "instance", id, "err", err)
	}
	return a, nil
}

// inFlight reports whether a running operation may still be answered by
// the call that runs it.
func (s *Service) inFlight(op store.Operation) bool {
	return s.now().Sub(op.UpdatedAt) < s.budget+staleAfter
}

// awaitOperation polls operation key until it is done (ok true) or the
// deadline passes (ok false).
func (s *Service) awaitOperation(ctx context.Context, key string, deadline time.Time) (store.Operation, bool, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		op, err := s.store.Operation(ctx, key)
		if err != nil {
			return op, false, fmt.Errorf("instance: read operation %s: %w", key, err)
		}
		if op.State == store.OperationDone {
			return op, true, nil
		}
		if !time.Now().Before(deadline) {
			return op, false, nil
		}
		select {
		case <-ctx.Done():
			return op, false, nil
		case <-t.C:
		}
	}
}

// storedAnswer answers with a stored reply, byte for byte.
func storedAnswer(op store.Operation, inst store.Instance) Answer {
	return Answer{
		Code:     protocol.ResultCode(op.ResultCode),
		Msg:      msgOf(op.Response),
		Instance: inst,
		Key:      op.Key,
		Repeat:   true,
		Body:     op.Response,
	}
}

// restartProvisioning moves a failed instance (or, with stuck, a
// provisioning one whose job is dead) back to provisioning and enqueues a
// fresh provision job, due at runAt (or, with hold, claimed by this process
// for the caller to run), in the same transaction; with opKey
// set it also reopens that operation, so duplicates wait for the new
// attempt. restarted is false when the instance's state no longer allows
// it. A refused instance is restarted only by an operator (stuck false,
// opKey nil: the admin's Reprovision), whose restart clears the refusal.
func (s *Service) restartProvisioning(ctx context.Context, id string, stuck bool, opKey *string, hold *jobs.Hold, runAt time.Time) (restarted bool, jobID int64, err error) {
	_, err = s.mutate(ctx, id, func(ctx context.Context, tx store.Tx, in *store.Instance) error {
		if in.Status != store.StatusFailed && !(stuck && in.Status == store.StatusProvisioning) {
			return errNoChange
		}
		if opKey != nil && in.FailCode != "" {
			return errNoChange
		}
		key := "provision:" + in.ID + ":" + strconv.FormatInt(in.Version+1, 10)
		var err error
		jobID, _, err = s.enqueueHeld(ctx, tx, hold, KindProvision, key, jobPayload{InstanceID: in.ID}, runAt)
		if err != nil {
			return err
		}
		if opKey != nil {
			switch err := tx.ReopenOperation(ctx, *opKey, s.now().UTC()); {
			case errors.Is(err, store.ErrNotFound):
				now := s.now().UTC()
				if _, err := tx.InsertOperation(ctx, store.Operation{
					Key: *opKey, Activity: protocol.ActivityNewInstance, InstanceID: in.ID,
					State: store.OperationRunning, CreatedAt: now, UpdatedAt: now,
				}); err != nil {
					return err
				}
			case err != nil:
				return err
			}
		}
		in.Status, in.FailCode = store.StatusProvisioning, ""
		return nil
	})
	if errors.Is(err, errNoChange) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	return true, jobID, nil
}

// createAnswer maps the instance's state to the purchase's answer.
func (s *Service) createAnswer(inst store.Instance, key string, repeat bool, render Render) (Answer, error) {
	code, msg := stateCode(inst)
	return answer(Answer{Code: code, Msg: msg, Instance: inst, Key: key, Repeat: repeat}, render)
}

// stateCode is what an instance's state says to KooGallery: 000000 once
// provisioned, 000004 while provisioning, the refusal of a refused
// purchase, 000005 for a failed one.
func stateCode(inst store.Instance) (protocol.ResultCode, string) {
	switch inst.Status {
	case store.StatusProvisioning:
		return protocol.CodeProcessing, progressMsg(inst)
	case store.StatusFailed:
		if inst.FailCode != "" {
			return protocol.ResultCode(inst.FailCode), inst.LastError
		}
		return protocol.CodeInternal, failedMsg(inst)
	}
	return protocol.CodeSuccess, "success"
}

// orderWaitPrefix starts LastError while Query Order has not answered.
const orderWaitPrefix = "waiting for order details"

// progressMsg and failedMsg are the resultMsg KooGallery sees. They say
// what koobridge is waiting for, but never repeat the provisioner's error:
// that may name the vendor's internal hosts and quote its replies, and it
// stays in LastError for the admin API and the log. (A refusal's message
// is different: the vendor wrote it for the buyer.)
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
