package tenant

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
)

// Redeliver sends the failed event of tenantID with Seq seq to the vendor
// again: in one transaction the event goes back to pending, its attempts
// and error cleared, and a fresh delivery job is enqueued (as for a new
// event, with a key of its own so that it never meets an earlier job of
// the event). It returns the event as stored; store.ErrNotFound (wrapped)
// when the tenant has no event with that Seq, store.ErrConflict when the
// event is not failed.
//
// A tenant's pending events are delivered lowest Seq first, so the
// re-delivered event goes out before any later event of the tenant still
// pending, and after the later ones already delivered: out of its original
// order. The vendor tells by the event's Seq.
func (s *Service) Redeliver(ctx context.Context, tenantID string, seq int64) (store.TenantEvent, error) {
	var ev store.TenantEvent
	err := s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		now := s.now().UTC()
		var err error
		if ev, err = tx.RedeliverTenantEvent(ctx, tenantID, seq, now); err != nil {
			return err
		}
		payload, err := json.Marshal(eventJob{TenantID: tenantID, EventID: ev.ID})
		if err != nil {
			return fmt.Errorf("encode delivery job: %w", err)
		}
		if _, _, err := tx.EnqueueJob(ctx, store.Job{
			Kind: KindEvent, UniqueKey: fmt.Sprintf("%s:%d:redeliver:%d", KindEvent, ev.ID, now.UnixNano()),
			Payload: payload, MaxAttempts: s.maxAttempts, RunAt: now,
		}); err != nil {
			return fmt.Errorf("enqueue delivery: %w", err)
		}
		return nil
	})
	if err != nil {
		return store.TenantEvent{}, fmt.Errorf("tenant: redeliver event %d of %s: %w", seq, tenantID, err)
	}
	s.log.InfoContext(ctx, "tenant: event re-delivery queued", "tenant", tenantID, "seq", seq, "type", ev.Type, "event", ev.ID)
	s.jobs.Kick()
	return ev, nil
}
