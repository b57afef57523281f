package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
)

// ErrWrongState is returned (wrapped, with the state named) by Reprovision
// when the instance is not in a state it can re-run.
var ErrWrongState = errors.New("lifecycle: instance state does not allow this")

// Reprovision re-runs the provisioning of a failed instance, or of one still
// provisioning whose provision job is dead (Query Order never answered
// within MaxAttempts): the instance goes (back) to provisioning and a fresh
// provision job is enqueued in the same transaction. Other states give an
// error wrapping ErrWrongState; an unknown id one wrapping store.ErrNotFound.
func (s *Service) Reprovision(ctx context.Context, instanceID string) error {
	inst, err := s.store.Instance(ctx, instanceID)
	if err != nil {
		return fmt.Errorf("lifecycle: reprovision %s: %w", instanceID, err)
	}
	stuck := false
	switch inst.Status {
	case store.StatusFailed:
	case store.StatusProvisioning:
		live, dead, err := s.provisionJobs(ctx, instanceID)
		if err != nil {
			return err
		}
		if live || !dead {
			return fmt.Errorf("lifecycle: reprovision %s: %w: it is provisioning and its job is still queued", instanceID, ErrWrongState)
		}
		stuck = true
	default:
		return fmt.Errorf("lifecycle: reprovision %s: %w: it is %s", instanceID, ErrWrongState, inst.Status)
	}
	inst, ok, _, err := s.restartProvisioning(ctx, instanceID, stuck, s.now().UTC())
	if err != nil {
		return fmt.Errorf("lifecycle: reprovision %s: %w", instanceID, err)
	}
	if !ok {
		return fmt.Errorf("lifecycle: reprovision %s: %w: it is %s", instanceID, ErrWrongState, inst.Status)
	}
	s.log.InfoContext(ctx, "lifecycle: reprovisioning", "instance", instanceID)
	s.jobs.Kick()
	return nil
}

// provisionJobs reports whether instance id has a provision job that is
// still to run (live) and whether it has a dead one. It pages through the
// provision jobs, newest first; this is an admin action, not a hot path.
func (s *Service) provisionJobs(ctx context.Context, id string) (live, dead bool, err error) {
	const page = 1000
	f := store.JobFilter{Kind: KindProvision, Limit: page}
	for {
		js, err := s.store.Jobs(ctx, f)
		if err != nil {
			return false, false, fmt.Errorf("lifecycle: list provision jobs: %w", err)
		}
		for _, j := range js {
			if f.BeforeID == 0 || j.ID < f.BeforeID {
				f.BeforeID = j.ID
			}
			p, err := decodePayload(j.Payload)
			if err != nil || p.InstanceID != id {
				continue
			}
			switch j.State {
			case store.JobAvailable, store.JobRunning:
				live = true
			case store.JobDead:
				dead = true
			}
		}
		if len(js) < page {
			return live, dead, nil
		}
	}
}
