package instance

import (
	"context"
	"errors"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
)

// ErrWrongState is returned (wrapped, with the state named) by Reprovision
// when the instance is not in a state it can re-run.
var ErrWrongState = errors.New("instance: its state does not allow this")

// Reprovision re-runs the provisioning of a failed instance (a refused one
// too: the operator decides; the refusal is cleared), or of one still
// provisioning whose provision job is dead (Query Order never answered
// within MaxAttempts): the instance goes (back) to provisioning and a fresh
// provision job is enqueued in the same transaction. Other states give an
// error wrapping ErrWrongState; an unknown id one wrapping store.ErrNotFound.
func (s *Service) Reprovision(ctx context.Context, instanceID string) error {
	stuck, err := s.reprovisionable(ctx, instanceID)
	if err != nil {
		return err
	}
	ok, _, err := s.restartProvisioning(ctx, instanceID, stuck, nil, nil, s.now().UTC())
	if err != nil {
		return fmt.Errorf("instance: reprovision %s: %w", instanceID, err)
	}
	if !ok {
		inst, err := s.store.Instance(ctx, instanceID)
		if err != nil {
			return fmt.Errorf("instance: reprovision %s: %w", instanceID, err)
		}
		return fmt.Errorf("instance: reprovision %s: %w: it is %s", instanceID, ErrWrongState, inst.Status)
	}
	s.log.InfoContext(ctx, "instance: reprovisioning", "instance", instanceID)
	s.jobs.Kick()
	return nil
}

// CanReprovision reports whether Reprovision would re-run instance
// instanceID now, by the same rule: it is failed, or provisioning with a
// dead provision job and none queued. An unknown id gives an error
// wrapping store.ErrNotFound. The answer may be stale by the time
// Reprovision runs, which decides again.
func (s *Service) CanReprovision(ctx context.Context, instanceID string) (bool, error) {
	_, err := s.reprovisionable(ctx, instanceID)
	if errors.Is(err, ErrWrongState) {
		return false, nil
	}
	return err == nil, err
}

// reprovisionable applies Reprovision's rule to instance id: nil when it
// can be re-run (stuck true when it is provisioning with a dead job), an
// error wrapping ErrWrongState when its state does not allow it.
func (s *Service) reprovisionable(ctx context.Context, id string) (stuck bool, err error) {
	inst, err := s.store.Instance(ctx, id)
	if err != nil {
		return false, fmt.Errorf("instance: reprovision %s: %w", id, err)
	}
	switch inst.Status {
	case store.StatusFailed:
		return false, nil
	case store.StatusProvisioning:
		live, dead, err := s.provisionJobs(ctx, id)
		if err != nil {
			return false, err
		}
		if live || !dead {
			return false, fmt.Errorf("instance: reprovision %s: %w: it is provisioning and its job is still queued", id, ErrWrongState)
		}
		return true, nil
	default:
		return false, fmt.Errorf("instance: reprovision %s: %w: it is %s", id, ErrWrongState, inst.Status)
	}
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
			return false, false, fmt.Errorf("instance: list provision jobs: %w", err)
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
