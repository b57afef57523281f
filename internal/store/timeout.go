package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultOpTimeout bounds one store operation (a whole Tx included) in
// koobridge serve. KooGallery gives up after 5 s and retries; the bound
// exists so that a database that stops answering (a network cut that drops
// packets, a failover behind a virtual IP) turns into ErrUnavailable within
// seconds instead of holding connections until TCP gives up, minutes later.
const DefaultOpTimeout = 30 * time.Second

// WithTimeout returns s with every operation bounded by d: the context each
// method (and the function given to Tx) sees has a deadline at most d away.
// When that deadline, not the caller's, ends an operation, the error wraps
// ErrUnavailable, so the call is answered 000005 and KooGallery retries.
func WithTimeout(s Store, d time.Duration) Store {
	return &timeoutStore{s: s, d: d}
}

type timeoutStore struct {
	s Store
	d time.Duration
}

// run calls f with a bounded context and classifies a timeout of ours.
func run[T any](t *timeoutStore, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	bounded, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	v, err := f(bounded)
	if err != nil && ctx.Err() == nil && bounded.Err() != nil && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: no answer from the database within %v: %w", ErrUnavailable, t.d, err)
	}
	return v, err
}

// run0 is run for methods that return only an error.
func run0(t *timeoutStore, ctx context.Context, f func(context.Context) error) error {
	_, err := run(t, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

func (t *timeoutStore) Instance(ctx context.Context, id string) (Instance, error) {
	return run(t, ctx, func(ctx context.Context) (Instance, error) { return t.s.Instance(ctx, id) })
}

func (t *timeoutStore) InstanceByOrderLine(ctx context.Context, orderID, orderLineID string) (Instance, error) {
	return run(t, ctx, func(ctx context.Context) (Instance, error) { return t.s.InstanceByOrderLine(ctx, orderID, orderLineID) })
}

func (t *timeoutStore) Operation(ctx context.Context, key string) (Operation, error) {
	return run(t, ctx, func(ctx context.Context) (Operation, error) { return t.s.Operation(ctx, key) })
}

func (t *timeoutStore) Tx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	return run0(t, ctx, func(ctx context.Context) error { return t.s.Tx(ctx, fn) })
}

func (t *timeoutStore) RememberNonce(ctx context.Context, nonce string, expires time.Time) error {
	return run0(t, ctx, func(ctx context.Context) error { return t.s.RememberNonce(ctx, nonce, expires) })
}

func (t *timeoutStore) DeleteExpiredNonces(ctx context.Context, now time.Time) (int64, error) {
	return run(t, ctx, func(ctx context.Context) (int64, error) { return t.s.DeleteExpiredNonces(ctx, now) })
}

func (t *timeoutStore) InsertCall(ctx context.Context, c Call) (int64, error) {
	return run(t, ctx, func(ctx context.Context) (int64, error) { return t.s.InsertCall(ctx, c) })
}

func (t *timeoutStore) Calls(ctx context.Context, f CallFilter) ([]Call, error) {
	return run(t, ctx, func(ctx context.Context) ([]Call, error) { return t.s.Calls(ctx, f) })
}

func (t *timeoutStore) Instances(ctx context.Context, f InstanceFilter) ([]Instance, error) {
	return run(t, ctx, func(ctx context.Context) ([]Instance, error) { return t.s.Instances(ctx, f) })
}

func (t *timeoutStore) ClaimJob(ctx context.Context, worker string, kinds []string, now time.Time, lease time.Duration) (Job, error) {
	return run(t, ctx, func(ctx context.Context) (Job, error) { return t.s.ClaimJob(ctx, worker, kinds, now, lease) })
}

func (t *timeoutStore) ClaimJobByID(ctx context.Context, id int64, worker string, now time.Time, lease time.Duration) (Job, error) {
	return run(t, ctx, func(ctx context.Context) (Job, error) { return t.s.ClaimJobByID(ctx, id, worker, now, lease) })
}

func (t *timeoutStore) CompleteJob(ctx context.Context, id int64, worker string) error {
	return run0(t, ctx, func(ctx context.Context) error { return t.s.CompleteJob(ctx, id, worker) })
}

func (t *timeoutStore) RetryJob(ctx context.Context, id int64, worker string, runAt time.Time, lastErr string) error {
	return run0(t, ctx, func(ctx context.Context) error { return t.s.RetryJob(ctx, id, worker, runAt, lastErr) })
}

func (t *timeoutStore) DeadJob(ctx context.Context, id int64, worker string, lastErr string) error {
	return run0(t, ctx, func(ctx context.Context) error { return t.s.DeadJob(ctx, id, worker, lastErr) })
}

func (t *timeoutStore) ReviveJob(ctx context.Context, id int64, now time.Time) error {
	return run0(t, ctx, func(ctx context.Context) error { return t.s.ReviveJob(ctx, id, now) })
}

func (t *timeoutStore) Job(ctx context.Context, id int64) (Job, error) {
	return run(t, ctx, func(ctx context.Context) (Job, error) { return t.s.Job(ctx, id) })
}

func (t *timeoutStore) Jobs(ctx context.Context, f JobFilter) ([]Job, error) {
	return run(t, ctx, func(ctx context.Context) ([]Job, error) { return t.s.Jobs(ctx, f) })
}

func (t *timeoutStore) Ping(ctx context.Context) error {
	return run0(t, ctx, t.s.Ping)
}

func (t *timeoutStore) Close() error { return t.s.Close() }
