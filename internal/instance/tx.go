package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/jobs"
	"github.com/koobridge/koobridge/internal/store"
	"github.com/koobridge/koobridge/provision"
)

// maxConflictRetries bounds the re-read-and-retry loop of mutate. Each
// retry means another writer committed in between, so a handful suffices.
const maxConflictRetries = 8

// errNoChange tells mutate that fn decided to leave the instance as it is.
var errNoChange = errors.New("instance: no change")

// mutate reads instance id inside a transaction, lets fn change it (and add
// rows with tx, such as jobs) and writes it back with the version check.
// When another writer got there first (store.ErrConflict) it re-reads and
// lets fn decide again. fn returns errNoChange to write nothing; mutate then
// returns the instance as read and errNoChange. fn may run more than once.
// In a job's handler fn may complete the job with its change
// (jobs.CompleteIn): the transaction is a jobs.Tx, so the completion
// counts only when made by the run of fn that committed.
func (s *Service) mutate(ctx context.Context, id string, fn func(ctx context.Context, tx store.Tx, inst *store.Instance) error) (store.Instance, error) {
	var out store.Instance
	for try := 0; ; try++ {
		err := jobs.Tx(ctx, s.store, func(ctx context.Context, tx store.Tx) error {
			inst, err := tx.Instance(ctx, id)
			if err != nil {
				return err
			}
			if err := fn(ctx, tx, &inst); err != nil {
				out = inst
				return err
			}
			inst.UpdatedAt = s.now().UTC()
			if err := tx.UpdateInstance(ctx, inst); err != nil {
				return err
			}
			inst.Version++
			out = inst
			return nil
		})
		if errors.Is(err, store.ErrConflict) && try < maxConflictRetries {
			continue
		}
		if err != nil && !errors.Is(err, errNoChange) && !errors.Is(err, store.ErrNotFound) {
			return out, fmt.Errorf("instance: update %s: %w", id, err)
		}
		return out, err
	}
}

// enqueue inserts a job of kind with payload p in tx.
func (s *Service) enqueue(ctx context.Context, tx store.Tx, kind, uniqueKey string, p jobPayload, runAt time.Time) (int64, bool, error) {
	return s.enqueueHeld(ctx, tx, nil, kind, uniqueKey, p, runAt)
}

// enqueueHeld is enqueue through hold when it is not nil: the job is
// inserted already claimed by this process, for the call to run itself
// (hold.Run) without a claim of its own; runAt then only applies once the
// runner is stopping (see jobs.Hold).
func (s *Service) enqueueHeld(ctx context.Context, tx store.Tx, hold *jobs.Hold, kind, uniqueKey string, p jobPayload, runAt time.Time) (int64, bool, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return 0, false, fmt.Errorf("instance: encode %s job: %w", kind, err)
	}
	job := store.Job{
		Kind:        kind,
		UniqueKey:   uniqueKey,
		Payload:     b,
		MaxAttempts: s.maxAttempts,
		RunAt:       runAt.UTC(),
	}
	var (
		id       int64
		inserted bool
	)
	if hold != nil {
		id, inserted, err = hold.Enqueue(ctx, tx, job)
	} else {
		id, inserted, err = tx.EnqueueJob(ctx, job)
	}
	if err != nil {
		return 0, false, fmt.Errorf("instance: enqueue %s job: %w", kind, err)
	}
	return id, inserted, nil
}

// jobPayload is the JSON payload of every job kind of this package.
type jobPayload struct {
	InstanceID string `json:"instanceId"`
	// Upgrade: the upgrade order; OpKey is the upgradeInstance operation
	// key and the instance.upgraded event id.
	OrderID     string `json:"orderId,omitempty"`
	OrderLineID string `json:"orderLineId,omitempty"`
	OpKey       string `json:"opKey,omitempty"`
	// Target is the specification an upgrade call carried (SaaS V1); nil
	// asks Query Order.
	Target *provision.Product `json:"target,omitempty"`
	// Notify: the event to deliver.
	Event   string `json:"event,omitempty"`
	EventID string `json:"eventId,omitempty"`
	Scene   string `json:"scene,omitempty"`
}

func decodePayload(b []byte) (jobPayload, error) {
	var p jobPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("instance: decode job payload: %w", err)
	}
	if p.InstanceID == "" {
		return p, errors.New("instance: job payload has no instanceId")
	}
	return p, nil
}

// runWithin runs job jobID within the call's budget (jobs.Runner.RunWithin).
func (s *Service) runWithin(ctx context.Context, jobID int64, deadline time.Time) {
	s.jobs.RunWithin(ctx, jobID, deadline)
}
