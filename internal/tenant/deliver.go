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

// recordTimeout bounds the writes that follow a delivery: they run on a
// context of their own, so that a handler cut short by its deadline still
// records what the vendor already took.
const recordTimeout = 10 * time.Second

// handleEvent is the delivery job of one event. Under its tenant's outbox
// lease it delivers the tenant's pending events, oldest first, until none
// is left or the vendor fails one:
//
//   - When another job holds the lease, this one is done at once: the
//     holder looks for pending events again after it lets the lease go,
//     and so delivers this job's event too. Waiting for a busy outbox never
//     spends an attempt.
//   - The lease belongs to the job (its ID), not to the process: a job
//     taken over after its worker died finds the lease its own.
//   - A delivery the vendor refuses for good (a permanent error) marks its
//     event failed and the next one goes on; any other failure counts
//     against the event, which fails once it has failed MaxAttempts times,
//     and the job is retried with backoff. A job whose own attempts run out
//     leaves a successor, so a tenant with pending events always has a job.
func (s *Service) handleEvent(ctx context.Context, job store.Job) error {
	var p eventJob
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.TenantID == "" {
		return jobs.Permanent(fmt.Errorf("tenant: bad delivery job payload: %v", err))
	}
	holder := fmt.Sprintf("job-%d", job.ID)
	for {
		held, err := s.store.LeaseTenantEvents(ctx, p.TenantID, holder, s.now().UTC(), s.jobs.Lease())
		if err != nil {
			return fmt.Errorf("tenant: lease outbox of %s: %w", p.TenantID, err)
		}
		if !held {
			return nil // the holder delivers this job's event too
		}
		derr := s.drain(ctx, p.TenantID)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		rerr := s.store.ReleaseTenantEvents(rctx, p.TenantID, holder)
		cancel()
		if rerr != nil {
			// Retried, the job takes its own lease again and lets it go.
			return fmt.Errorf("tenant: release outbox lease of %s: %w", p.TenantID, rerr)
		}
		if derr != nil {
			if job.Attempts >= job.MaxAttempts {
				return s.successor(ctx, job, p, derr)
			}
			return derr
		}
		// An event appended while the lease was held: its job found the
		// outbox busy and left it to this one.
		if _, err := s.store.NextTenantEvent(ctx, p.TenantID); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("tenant: next event of %s: %w", p.TenantID, err)
		}
	}
}

// drain delivers tenantID's pending events in order; it returns the first
// failure that leaves an event pending.
func (s *Service) drain(ctx context.Context, tenantID string) error {
	for {
		ev, err := s.store.NextTenantEvent(ctx, tenantID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tenant: next event of %s: %w", tenantID, err)
		}
		derr := s.deliver(ctx, ev)
		if err := s.recordDelivery(ctx, ev, derr); err != nil {
			return err
		}
	}
}

// recordDelivery stores the outcome of one delivery. It returns an error
// when the event stays pending (or the outcome could not be stored).
func (s *Service) recordDelivery(ctx context.Context, ev store.TenantEvent, derr error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	now := s.now().UTC()
	switch {
	case derr == nil:
		if err := s.store.SetTenantEventState(ctx, ev.ID, store.TenantEventDelivered, "", now); err != nil {
			return fmt.Errorf("tenant: mark event %d delivered: %w", ev.ID, err)
		}
		return nil
	case errors.Is(derr, provision.ErrPermanent) || errors.Is(derr, jobs.ErrPermanent):
		s.log.WarnContext(ctx, "tenant: event refused for good", "tenant", ev.TenantID, "seq", ev.Seq, "type", ev.Type, "err", derr)
		if err := s.store.SetTenantEventState(ctx, ev.ID, store.TenantEventFailed, instance.Clip(derr.Error()), now); err != nil {
			return fmt.Errorf("tenant: mark event %d failed: %w", ev.ID, err)
		}
		return nil
	}
	stored, err := s.store.FailTenantEventAttempt(ctx, ev.ID, instance.Clip(derr.Error()), s.maxAttempts, now)
	if err != nil {
		return fmt.Errorf("tenant: record failed delivery of event %d: %w", ev.ID, err)
	}
	if stored.State == store.TenantEventFailed {
		s.log.WarnContext(ctx, "tenant: event not delivered, attempts spent", "tenant", ev.TenantID, "seq", ev.Seq, "type", ev.Type, "attempts", stored.Attempts, "err", derr)
		return nil
	}
	return fmt.Errorf("tenant: deliver %s (seq %d of %s): %w", ev.Type, ev.Seq, ev.TenantID, derr)
}

// successor enqueues the job that carries on for a spent one, due after
// the longest backoff, and ends the spent one: its failure is on the
// event, which counts its own attempts.
func (s *Service) successor(ctx context.Context, job store.Job, p eventJob, derr error) error {
	payload, err := json.Marshal(p)
	if err != nil {
		return err
	}
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, _, err := tx.EnqueueJob(ctx, store.Job{
			Kind: KindEvent, UniqueKey: fmt.Sprintf("%s:%s:after-%d", KindEvent, p.TenantID, job.ID),
			Payload: payload, MaxAttempts: s.maxAttempts, RunAt: s.now().UTC().Add(s.jobs.Backoff(job.MaxAttempts)),
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("tenant: enqueue the successor of job %d: %w (after %w)", job.ID, err, derr)
	}
	s.log.WarnContext(ctx, "tenant: delivery job spent, a successor carries on", "tenant", p.TenantID, "job", job.ID, "err", derr)
	return nil
}

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
