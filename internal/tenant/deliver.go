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

// recordTimeout bounds each write that follows a delivery. Those writes
// run on a context of their own, so that a handler cut short by its
// deadline still records what the vendor already took; the bound stays
// under the job runner's margin between the handler's deadline and the
// end of its lease.
const recordTimeout = 4 * time.Second

// DefaultRetry is the wait before the next delivery of an event that
// failed attempt times: 1 s, 2 s, 4 s, … up to 10 minutes. It is
// deterministic (no jitter): every job of a tenant computes the same due
// time, so one retry job is enqueued per failure, not one per job.
func DefaultRetry(attempt int) time.Duration {
	const maxWait = 10 * time.Minute
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 20 {
		return maxWait
	}
	return min(time.Second<<(attempt-1), maxWait)
}

// drained says how a drain of a tenant's outbox ended.
type drained int

const (
	drainedAll drained = iota // nothing pending
	waiting                   // the oldest pending event is due later; its retry job is enqueued
	cut                       // the handler's deadline came; a continuation job is enqueued
)

// handleEvent is the delivery job of a tenant's events. Under the tenant's
// outbox lease it delivers the tenant's pending events, oldest first,
// until none is left, the oldest is not due yet, or the handler's time is
// up. A job never fails for the vendor's sake, so the job queue's attempts
// and backoff play no part in the delivery:
//
//   - When another job holds the lease, this one is done at once: the
//     holder looks for pending events again after it lets the lease go,
//     and goes on with any that is due (a new one, or one whose retry time
//     came while it held the lease).
//     The lease belongs to the job (its ID), so a job taken over after its
//     worker died finds it its own.
//   - A delivery the vendor refuses for good (a permanent error) marks its
//     event failed and the next one goes on. Any other failure counts on
//     the event (its attempts); the event fails once it has failed
//     MaxAttempts times, else it is due again after Retry(attempts), and a
//     retry job due then is enqueued with a key made of the event and its
//     attempts, so however many jobs find it waiting, one retry job is.
//   - When the handler's deadline comes, a continuation job, due at once,
//     carries on; a delivery cut by it does not count.
//
// Only the store failing makes the job fail; at its last attempt it leaves
// a successor, so a tenant's pending events always have a job.
func (s *Service) handleEvent(ctx context.Context, job store.Job) (err error) {
	var p eventJob
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.TenantID == "" {
		return jobs.Permanent(fmt.Errorf("tenant: bad delivery job payload: %v", err))
	}
	defer func() {
		if err != nil && job.Attempts >= job.MaxAttempts {
			err = s.enqueue(ctx, p.TenantID, fmt.Sprintf("after-%d", job.ID), s.now().UTC().Add(s.retry(1)), err)
		}
	}()
	holder := fmt.Sprintf("job-%d", job.ID)
	for {
		held, err := s.store.LeaseTenantEvents(ctx, p.TenantID, holder, s.now().UTC(), s.jobs.Lease())
		if err != nil {
			return fmt.Errorf("tenant: lease outbox of %s: %w", p.TenantID, err)
		}
		if !held {
			return nil // the holder delivers this job's event too
		}
		how, derr := s.drain(ctx, p.TenantID, job.ID)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		rerr := s.store.ReleaseTenantEvents(rctx, p.TenantID, holder)
		cancel()
		switch {
		case derr != nil:
			return derr
		case rerr != nil:
			// Retried, the job takes its own lease again and lets it go.
			return fmt.Errorf("tenant: release outbox lease of %s: %w", p.TenantID, rerr)
		case how == cut:
			return nil // the continuation job carries on
		}
		// Look again now that the lease is free: an event appended, or an
		// event's retry come due, while it was held found the outbox busy
		// and left it to this job. Whatever is not due yet has its retry
		// job, which will find the lease free or its holder looking again.
		ev, err := s.store.NextTenantEvent(ctx, p.TenantID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tenant: next event of %s: %w", p.TenantID, err)
		}
		if !s.due(ev) {
			return nil
		}
	}
}

// due reports whether a pending event may be delivered now: a new one at
// once, one that failed after its retry time.
func (s *Service) due(ev store.TenantEvent) bool {
	return ev.Attempts == 0 || !s.now().Before(ev.UpdatedAt.Add(s.retry(ev.Attempts)))
}

// drain delivers tenantID's pending events in order, as handleEvent says.
func (s *Service) drain(ctx context.Context, tenantID string, jobID int64) (drained, error) {
	for {
		if ctx.Err() != nil {
			return cut, s.enqueue(ctx, tenantID, fmt.Sprintf("continue-%d", jobID), s.now().UTC(), nil)
		}
		ev, err := s.store.NextTenantEvent(ctx, tenantID)
		if errors.Is(err, store.ErrNotFound) {
			return drainedAll, nil
		}
		if err != nil {
			return 0, fmt.Errorf("tenant: next event of %s: %w", tenantID, err)
		}
		if !s.due(ev) {
			due := ev.UpdatedAt.Add(s.retry(ev.Attempts))
			return waiting, s.enqueue(ctx, tenantID, fmt.Sprintf("retry-%d-%d", ev.ID, ev.Attempts), due, nil)
		}
		derr := s.deliver(ctx, ev)
		if derr != nil && ctx.Err() != nil {
			// Our deadline, not the vendor: not an attempt.
			return cut, s.enqueue(ctx, tenantID, fmt.Sprintf("continue-%d", jobID), s.now().UTC(), nil)
		}
		stored, err := s.recordDelivery(ctx, ev, derr)
		if err != nil {
			return 0, err
		}
		if stored.State == store.TenantEventPending {
			due := stored.UpdatedAt.Add(s.retry(stored.Attempts))
			return waiting, s.enqueue(ctx, tenantID, fmt.Sprintf("retry-%d-%d", ev.ID, stored.Attempts), due, nil)
		}
	}
}

// recordDelivery stores the outcome of one delivery and returns the event
// as it stands.
func (s *Service) recordDelivery(ctx context.Context, ev store.TenantEvent, derr error) (store.TenantEvent, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	now := s.now().UTC()
	switch {
	case derr == nil:
		if err := s.store.SetTenantEventState(ctx, ev.ID, store.TenantEventDelivered, "", now); err != nil {
			return ev, fmt.Errorf("tenant: mark event %d delivered: %w", ev.ID, err)
		}
		ev.State = store.TenantEventDelivered
		return ev, nil
	case errors.Is(derr, provision.ErrPermanent) || errors.Is(derr, jobs.ErrPermanent):
		s.log.WarnContext(ctx, "tenant: event refused for good", "tenant", ev.TenantID, "seq", ev.Seq, "type", ev.Type, "err", derr)
		if err := s.store.SetTenantEventState(ctx, ev.ID, store.TenantEventFailed, instance.Clip(derr.Error()), now); err != nil {
			return ev, fmt.Errorf("tenant: mark event %d failed: %w", ev.ID, err)
		}
		ev.State = store.TenantEventFailed
		return ev, nil
	}
	stored, err := s.store.FailTenantEventAttempt(ctx, ev.ID, instance.Clip(derr.Error()), s.maxAttempts, now)
	if err != nil {
		return ev, fmt.Errorf("tenant: record failed delivery of event %d: %w", ev.ID, err)
	}
	if stored.State == store.TenantEventFailed {
		s.log.WarnContext(ctx, "tenant: event not delivered, attempts spent", "tenant", ev.TenantID, "seq", ev.Seq, "type", ev.Type, "attempts", stored.Attempts, "err", derr)
	} else {
		s.log.InfoContext(ctx, "tenant: event not delivered, retried later", "tenant", ev.TenantID, "seq", ev.Seq, "type", ev.Type, "attempts", stored.Attempts, "err", derr)
	}
	return stored, nil
}

// enqueue adds a delivery job of tenantID due at runAt, unless one with
// the same key (tenant and what) exists, on a context of its own: it is
// what keeps the tenant's pending events moving, also when the handler's
// deadline has passed. cause, when not nil, is the failure the job
// follows; it is returned wrapped when the job cannot be enqueued, and
// dropped when it can (the new job carries on).
func (s *Service) enqueue(ctx context.Context, tenantID, what string, runAt time.Time, cause error) error {
	payload, err := json.Marshal(eventJob{TenantID: tenantID})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err = s.store.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, _, err := tx.EnqueueJob(ctx, store.Job{
			Kind: KindEvent, UniqueKey: fmt.Sprintf("%s:%s:%s", KindEvent, tenantID, what),
			Payload: payload, MaxAttempts: s.maxAttempts, RunAt: runAt,
		})
		return err
	})
	if err != nil {
		if cause != nil {
			return fmt.Errorf("tenant: enqueue delivery job %s of %s: %w (after %w)", what, tenantID, err, cause)
		}
		return fmt.Errorf("tenant: enqueue delivery job %s of %s: %w", what, tenantID, err)
	}
	if cause != nil {
		s.log.WarnContext(ctx, "tenant: delivery job spent, a successor carries on", "tenant", tenantID, "err", cause)
	}
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
