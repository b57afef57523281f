package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/provision"
)

// errBusy is the retry of a delivery job whose tenant's outbox another
// worker is delivering: that worker delivers this job's event too, in
// order, and the retry then finds it done.
var errBusy = errors.New("tenant: another worker is delivering this tenant's events")

// handleEvent is the delivery job of one event: under the tenant's outbox
// lease, deliver the tenant's pending events oldest first, this one and
// any later ones (whose own jobs then find them delivered: an event whose
// job died is still delivered by the next job of its tenant), stopping at
// the first the vendor did not take. An event the
// vendor refused for good (a permanent error), or whose own job ran out of
// attempts, is marked failed and the next one goes on: one bad event does
// not hold the tenant's later ones back for ever.
func (s *Service) handleEvent(ctx context.Context, job store.Job) error {
	var p eventJob
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.TenantID == "" {
		return jobs.Permanent(fmt.Errorf("tenant: bad delivery job payload: %v", err))
	}
	worker := fmt.Sprintf("%s/job-%d", s.jobs.WorkerID(), job.ID)
	held, err := s.store.LeaseTenantEvents(ctx, p.TenantID, worker, s.now().UTC(), s.jobs.Lease())
	if err != nil {
		return fmt.Errorf("tenant: lease outbox of %s: %w", p.TenantID, err)
	}
	if !held {
		own, err := s.store.TenantEvent(ctx, p.EventID)
		if err == nil && own.State != store.TenantEventPending {
			return nil // delivered by the lease holder meanwhile
		}
		return errBusy
	}
	defer func() {
		// Released on a context of its own: a handler cut short by its
		// deadline still frees the outbox (else it frees at the lease's end).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := s.store.ReleaseTenantEvents(rctx, p.TenantID, worker); err != nil {
			s.log.WarnContext(ctx, "tenant: release outbox lease", "tenant", p.TenantID, "err", err)
		}
	}()
	last := job.Attempts >= job.MaxAttempts
	for {
		ev, err := s.store.NextTenantEvent(ctx, p.TenantID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tenant: next event of %s: %w", p.TenantID, err)
		}
		derr := s.deliver(ctx, ev)
		now := s.now().UTC()
		switch {
		case derr == nil:
			if err := s.store.SetTenantEventState(ctx, ev.ID, store.TenantEventDelivered, "", now); err != nil {
				return fmt.Errorf("tenant: mark event %d delivered: %w", ev.ID, err)
			}
		case errors.Is(derr, provision.ErrPermanent) || errors.Is(derr, jobs.ErrPermanent) || (last && ev.ID == p.EventID):
			s.log.WarnContext(ctx, "tenant: event not delivered, given up", "tenant", p.TenantID, "event", ev.EventID, "type", ev.Type, "err", derr)
			if err := s.store.SetTenantEventState(ctx, ev.ID, store.TenantEventFailed, instance.Clip(derr.Error()), now); err != nil {
				return fmt.Errorf("tenant: mark event %d failed: %w", ev.ID, err)
			}
		default:
			if err := s.store.SetTenantEventState(ctx, ev.ID, store.TenantEventPending, instance.Clip(derr.Error()), now); err != nil {
				s.log.WarnContext(ctx, "tenant: record delivery error", "event", ev.ID, "err", err)
			}
			return fmt.Errorf("tenant: deliver %s %s: %w", ev.Type, ev.EventID, derr)
		}
	}
}

// recordTimeout bounds the writes that follow a delivery.
const recordTimeout = 10 * time.Second

// deliver sends one stored event to the vendor.
func (s *Service) deliver(ctx context.Context, e store.TenantEvent) error {
	plain, err := s.sealer.Open(e.PayloadSealed)
	if err != nil {
		return jobs.Permanent(fmt.Errorf("open event %d: %w", e.ID, err))
	}
	var ev provision.Event
	if err := json.Unmarshal([]byte(plain), &ev); err != nil {
		return jobs.Permanent(fmt.Errorf("decode event %d: %w", e.ID, err))
	}
	ev.Seq = e.Seq
	_, err = s.provisionerFor(ev.Test).Provision(ctx, ev)
	return err
}
