package grant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// pollEvery is how often Await looks whether a grant left pending.
const pollEvery = 20 * time.Millisecond

// Await gives a license 1.0 call its license within its budget. With
// jobID (the call inserted the grant, or Rerun restarted it) the call
// claims the generate job and runs it, as a purchase runs its
// provisioning: the work goes on under the job's lease after deadline, and
// a runner takes it over should this process die. Then it waits until the
// grant leaves pending or deadline passes (a repeat only waits), and
// returns the grant as it stands.
func (s *Service) Await(ctx context.Context, g store.LicenseGrant, jobID int64, deadline time.Time) (store.LicenseGrant, error) {
	if jobID != 0 {
		s.runWithin(ctx, jobID, deadline)
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		cur, err := s.store.LicenseGrantByID(ctx, g.ID)
		if err != nil {
			return g, fmt.Errorf("grant: await %d: %w", g.ID, err)
		}
		if cur.State != store.GrantPending || !time.Now().Before(deadline) {
			return cur, nil
		}
		select {
		case <-ctx.Done():
			return cur, nil
		case <-t.C:
		}
	}
}

// Rerun puts a failed grant back to work for a call that Awaits it (a
// license 1.0 getLicense repeated after its generation failed: KooGallery
// retries it for hours, and the vendor may have fixed the cause): the
// fresh job is due only after the budget, and its ID is for Await. A grant
// that is not failed (a concurrent repeat restarted it) gives an error
// wrapping ErrWrongState.
func (s *Service) Rerun(ctx context.Context, id int64) (int64, error) {
	return s.retry(ctx, id, s.now().UTC().Add(s.budget+5*time.Second))
}

// runWithin claims job jobID for this process and runs it in the
// background through the runner, waiting for it until deadline or the end
// of ctx. The job's context is detached from ctx: an answer given at the
// deadline does not stop the work. If another worker holds the job
// already, it only kicks the runner.
func (s *Service) runWithin(ctx context.Context, jobID int64, deadline time.Time) {
	if !s.startBackground() {
		return // shutting down: the job stays queued for a runner
	}
	job, err := s.store.ClaimJobByID(ctx, jobID, s.jobs.WorkerID(), s.now().UTC(), s.jobs.Lease())
	if err != nil {
		s.bg.Done()
		if !errors.Is(err, store.ErrNotFound) {
			s.log.WarnContext(ctx, "grant: claim job", "job", jobID, "err", err)
		}
		s.jobs.Kick()
		return
	}
	done := make(chan struct{})
	go func() {
		defer s.bg.Done()
		defer close(done)
		s.jobs.Execute(context.WithoutCancel(ctx), job)
	}()
	wait := time.Until(deadline)
	if wait <= 0 {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// startBackground registers one piece of background work, or reports false
// once Wait has begun.
func (s *Service) startBackground() bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.stopping {
		return false
	}
	s.bg.Add(1)
	return true
}
