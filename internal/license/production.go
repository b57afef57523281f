package license

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/protocol"
	"github.com/koobridge/koobridge/provision"
)

// History kinds (store.LicenseEvent.Kind).
const (
	kindRenewed     = "renewed"
	kindFrozen      = "frozen"
	kindUnfrozen    = "unfrozen"
	kindReleased    = "released"
	kindActivated   = "activated"
	kindDeactivated = "deactivated"
	kindChecked     = "checked"
	kindDevice      = "device"
)

// errReleased refuses a change a released code cannot take.
var errReleased = errors.New("license code was released")

// Answer is the outcome of a production call: the reply and what the
// ledger records about it.
type Answer struct {
	Code protocol.ResultCode
	Msg  string
	// Body is the reply, byte for byte what a repeat of the call gets.
	Body []byte
	// Key is the call's idempotency key (for the ledger); "" for a
	// refusal.
	Key string
	// Repeat says the call changed nothing: its stored outcome was
	// replayed, or the code was already in the state it asks for.
	Repeat bool
}

// newAnswer renders a reply.
func newAnswer(code protocol.ResultCode, msg, key string, repeat bool) (Answer, error) {
	msg = instance.Clip(msg)
	body, err := protocol.Marshal(protocol.NewResponse(code, msg))
	if err != nil {
		return Answer{}, err
	}
	return Answer{Code: code, Msg: msg, Body: body, Key: key, Repeat: repeat}, nil
}

// releasedAnswer refuses a change of a released code (000002).
func releasedAnswer(code string) (Answer, error) {
	return newAnswer(protocol.CodeInvalidParam, fmt.Sprintf("invalid request: license code %s was released", code), "", false)
}

// isRenewal reports whether a refreshLicenseCode scene renews the code
// (and so lifts a freeze when the new expiry is in the future). The
// license table lists RENEWAL and UNSUBSCRIBE_RENEWAL_PERIOD; the other
// renewing scenes of refreshInstance are read the same way should they
// come.
func isRenewal(scene string) bool {
	switch scene {
	case protocol.SceneRenewal, protocol.SceneTrialToFormal, protocol.SceneRenewalChange:
		return true
	}
	return false
}

// Refresh applies refreshLicenseCode: the code's new expiry (and product,
// when the period type changed). It is idempotent by the renewal order
// line: the first call stores its reply under the key of (test, orderId,
// orderLineId, license) with a fingerprint of scene, expireTime and
// productId, in the transaction that changes the code, writes its history
// and enqueues license.renewed. A repeat, concurrent or late, gets that
// reply byte for byte and changes nothing; the same key with another
// fingerprint is refused 000002. A renewal never shortens an expiry the
// production interface or a query told (an older renewal retried after a
// newer one keeps the newer expiry), but replaces activate's estimate
// (§A.8.1: LicenseCode.ExpireEstimated), earlier too; a cut-back period
// sets it as sent. A renewal into the future lifts a
// freeze (license.unfrozen too) and forgets a cached "not alive" answer
// of KooGallery. A released code is refused 000002, a released debug code
// answered 000000 without change (the saved debug cases are replayed
// twice a day, a release among them).
func (s *Service) Refresh(ctx context.Context, r protocol.RefreshLicenseCodeRequest) (Answer, error) {
	test := r.IsTest()
	expiry, err := r.Expiry()
	if err != nil {
		return newAnswer(protocol.CodeInvalidParam, (&protocol.FieldError{Field: "expireTime", Problem: "not yyyyMMddHHmmss"}).Error(), "", false)
	}
	key := instance.Key(protocol.ActivityRefreshLicenseCode, testFlag(test), r.OrderID, r.OrderLineID, r.License)
	// The expiry's instant, not its spelling: 14 and 17 digits of the same
	// time are the same request.
	fp := instance.Fingerprint(r.Scene, expiry.UTC().Format(time.RFC3339Nano), r.ProductID)
	op, err := s.store.Operation(ctx, key)
	switch {
	case err == nil:
		return s.replay(op, fp, r)
	case !errors.Is(err, store.ErrNotFound):
		return Answer{}, fmt.Errorf("license: refresh %s: read operation: %w", r.License, err)
	}
	ok, err := newAnswer(protocol.CodeSuccess, "success", key, false)
	if err != nil {
		return Answer{}, err
	}
	var winner *store.Operation
	_, err = s.change(ctx, r.License, test, func(ctx context.Context, tx store.Tx, c *store.LicenseCode, _ bool, now time.Time) ([]entry, error) {
		winner = nil
		switch {
		case c.Status == store.LicenseReleased && test:
			return nil, errNoChange
		case c.Status == store.LicenseReleased:
			return nil, errReleased
		}
		inserted, err := tx.InsertOperation(ctx, store.Operation{
			Key: key, Activity: r.Activity(), Fingerprint: fp, State: store.OperationDone,
			ResultCode: string(protocol.CodeSuccess), Response: ok.Body, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return nil, err
		}
		if !inserted { // a concurrent call with the same key committed first
			op, err := tx.Operation(ctx, key)
			if err != nil {
				return nil, err
			}
			winner = &op
			return nil, errNoChange
		}
		detail := map[string]any{"scene": r.Scene, "expireTime": expiry, "orderId": r.OrderID, "orderLineId": r.OrderLineID}
		if !c.ExpireTime.IsZero() {
			detail["previousExpireTime"] = c.ExpireTime
		}
		if r.ProductID != "" {
			detail["productId"] = r.ProductID
			c.ProductID = r.ProductID
		}
		renewal := isRenewal(r.Scene)
		stale := renewal && !c.ExpireEstimated && c.ExpireTime.After(expiry)
		if stale {
			// An older renewal arriving after a newer one (its first
			// delivery failed): the later expiry stands, and what came
			// after the newer one (a freeze) is not undone. Activate's
			// estimate is no such expiry: the renewal replaces it.
			detail["expireTime"], detail["requestedExpireTime"] = c.ExpireTime, expiry
		} else {
			c.ExpireTime = expiry
		}
		c.ExpireEstimated = false
		// OrderID is the purchase order once activation named it, else the
		// latest order that touched the code.
		if c.ActivatedAt.IsZero() || c.OrderID == "" {
			c.OrderID, c.OrderLineID = r.OrderID, r.OrderLineID
		}
		entries := []entry{{kind: kindRenewed, source: sourceKooGallery, detail: detail, event: provision.EventLicenseRenewed, scene: r.Scene}}
		if renewal && !stale && expiry.After(now) {
			c.ConfirmedAt = now
			forgetStaleAnswer(c)
			if c.Status == store.LicenseFrozen {
				c.Status = store.LicenseActive
				detail["unfrozen"] = true
				entries = append(entries, entry{kind: kindUnfrozen, source: sourceKooGallery,
					detail: map[string]any{"renewal": r.OrderID}, event: provision.EventLicenseUnfrozen})
			}
		}
		return entries, nil
	})
	switch {
	case winner != nil:
		return s.replay(*winner, fp, r)
	case errors.Is(err, errNoChange): // a released debug code
		return newAnswer(protocol.CodeSuccess, "success", key, true)
	case errors.Is(err, errReleased):
		return releasedAnswer(r.License)
	case err != nil:
		return Answer{}, fmt.Errorf("license: refresh %s: %w", r.License, err)
	}
	s.jobs.Kick()
	return ok, nil
}

// forgetStaleAnswer clears KooGallery's cached answer about c when it
// said the code was not alive, for a production call that made the code
// alive again: the next check asks KooGallery (a code without
// RemoteStatus is due) instead of answering the stale EXPIRED. An ALIVE
// answer is kept: nothing in it went stale. CheckedAt stays when the last
// query was; the call itself is the confirmation the offline grace runs
// from (ConfirmedAt, set by the caller). It reports whether it cleared.
func forgetStaleAnswer(c *store.LicenseCode) bool {
	if c.RemoteStatus == "" || c.RemoteStatus == protocol.LicenseStatusAlive {
		return false
	}
	c.RemoteStatus = ""
	return true
}

// replay answers a refresh whose key is stored: its reply when the
// request is the same, else a refusal naming the conflict.
func (s *Service) replay(op store.Operation, fp string, r protocol.RefreshLicenseCodeRequest) (Answer, error) {
	if op.Fingerprint != "" && op.Fingerprint != fp {
		return newAnswer(protocol.CodeInvalidParam, fmt.Sprintf(
			"invalid request: renewal order %s line %s of license code %s was already applied with another scene, expireTime or productId; not applied again",
			r.OrderID, r.OrderLineID, r.License), "", false)
	}
	var resp protocol.Response
	_ = json.Unmarshal(op.Response, &resp)
	return Answer{Code: protocol.ResultCode(op.ResultCode), Msg: resp.ResultMsg, Body: op.Response, Key: op.Key, Repeat: true}, nil
}

// SetStatus applies updateLicenseCodeStatus: FREEZE freezes the code,
// UNFREEZE makes it active again (and forgets a cached "not alive" answer
// of KooGallery). It is state-based: a code already in the target state
// succeeds without a new event; a released code answers FREEZE and
// UNFREEZE with success and no change (released is beyond both, and the
// saved debug cases replay UNFREEZE after release twice a day). A code
// first heard of is recorded frozen or active. Every UNFREEZE of a code
// not released, one already active too, is KooGallery confirming the
// code alive: it sets ConfirmedAt, which the offline grace runs from.
func (s *Service) SetStatus(ctx context.Context, r protocol.UpdateLicenseCodeStatusRequest) (Answer, error) {
	test := r.IsTest()
	freeze := r.Status == protocol.StatusFreeze
	target, kind, ev := store.LicenseActive, kindUnfrozen, provision.EventLicenseUnfrozen
	if freeze {
		target, kind, ev = store.LicenseFrozen, kindFrozen, provision.EventLicenseFrozen
	}
	key := instance.Key(protocol.ActivityUpdateLicenseCodeStatus, testFlag(test), r.License, r.Status)
	var changed bool
	_, err := s.change(ctx, r.License, test, func(_ context.Context, _ store.Tx, c *store.LicenseCode, isNew bool, now time.Time) ([]entry, error) {
		changed = false
		if c.Status == store.LicenseReleased {
			return nil, errNoChange
		}
		if !freeze {
			c.ConfirmedAt = now
		}
		switch {
		case c.Status == target && !isNew && freeze:
			return nil, errNoChange
		case c.Status == target && !isNew:
			// Confirmed, and the cache cleared when it said "not
			// alive": no new state, no event.
			changed = forgetStaleAnswer(c)
			return nil, nil
		}
		if !freeze {
			forgetStaleAnswer(c)
		}
		c.Status, changed = target, true
		return []entry{{kind: kind, source: sourceKooGallery, detail: map[string]any{"status": r.Status}, event: ev}}, nil
	})
	return s.stateAnswer("set status of", r.License, key, changed, err)
}

// Release applies releaseLicenseCode. Released is terminal: a released
// code answers success again, forever, without a new event. A code first
// heard of is recorded released.
func (s *Service) Release(ctx context.Context, r protocol.ReleaseLicenseCodeRequest) (Answer, error) {
	test := r.IsTest()
	key := instance.Key(protocol.ActivityReleaseLicenseCode, testFlag(test), r.License)
	_, err := s.change(ctx, r.License, test, func(_ context.Context, _ store.Tx, c *store.LicenseCode, _ bool, _ time.Time) ([]entry, error) {
		if c.Status == store.LicenseReleased {
			return nil, errNoChange
		}
		c.Status = store.LicenseReleased
		detail := map[string]any{}
		if r.OrderID != "" {
			detail["orderId"], detail["orderLineId"] = r.OrderID, r.OrderLineID
		}
		return []entry{{kind: kindReleased, source: sourceKooGallery, detail: detail, event: provision.EventLicenseReleased}}, nil
	})
	return s.stateAnswer("release", r.License, key, err == nil, err)
}

// stateAnswer answers a state-based change from the result of its
// transaction; changed says it wrote something (else the reply is a
// repeat's).
func (s *Service) stateAnswer(what, code, key string, changed bool, err error) (Answer, error) {
	switch {
	case errors.Is(err, errNoChange):
		return newAnswer(protocol.CodeSuccess, "success", key, true)
	case err != nil:
		return Answer{}, fmt.Errorf("license: %s %s: %w", what, code, err)
	}
	s.jobs.Kick()
	return newAnswer(protocol.CodeSuccess, "success", key, !changed)
}
