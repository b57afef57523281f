package grant

import (
	"context"
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
		s.jobs.RunWithin(ctx, jobID, deadline)
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
