package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koobridge/koobridge/internal/store"
)

// Operation reads the idempotency record with key; store.ErrNotFound if
// there is none.
func (s *Store) Operation(ctx context.Context, key string) (_ store.Operation, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.q}.Operation(ctx, key)
}

// Operation reads the idempotency record with key; store.ErrNotFound if
// there is none. Inside a transaction the row stays locked until it ends.
func (r reader) Operation(ctx context.Context, key string) (store.Operation, error) {
	var (
		op               store.Operation
		state            string
		created, updated *time.Time
	)
	err := r.q.QueryRow(ctx, `SELECT key, activity, instance_id, fingerprint, state, result_code, response,
		created_at, updated_at FROM operations WHERE key = $1`+r.forUpdate(), txt(key)).
		Scan(&op.Key, &op.Activity, &op.InstanceID, &op.Fingerprint, &state, &op.ResultCode, &op.Response, &created, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Operation{}, store.ErrNotFound
	}
	if err != nil {
		return store.Operation{}, fmt.Errorf("postgres: read operation: %w", mapErr(ctx, err))
	}
	op.State = store.OperationState(state)
	op.CreatedAt = fromTS(created)
	op.UpdatedAt = fromTS(updated)
	return op, nil
}

// InsertOperation inserts op unless its Key exists (the primary key
// decides; a concurrent insert of the same key waits for the first
// transaction). An empty State is stored as running; zero times as now.
func (t *tx) InsertOperation(ctx context.Context, op store.Operation) (bool, error) {
	now := time.Now()
	state := op.State
	if state == "" {
		state = store.OperationRunning
	}
	tag, err := t.tx.Exec(ctx, `INSERT INTO operations
		(key, activity, instance_id, fingerprint, state, result_code, response, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (key) DO NOTHING`,
		txt(op.Key), txt(op.Activity), txt(op.InstanceID), txt(op.Fingerprint), txt(string(state)), txt(op.ResultCode), op.Response,
		ts(or(op.CreatedAt, now)), ts(or(op.UpdatedAt, now)))
	if err != nil {
		return false, fmt.Errorf("postgres: insert operation: %w", mapErr(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// FinishOperation marks the operation with key done with its answer;
// store.ErrNotFound if there is none. UpdatedAt is the wall clock.
func (t *tx) FinishOperation(ctx context.Context, key, resultCode string, response []byte) error {
	tag, err := t.tx.Exec(ctx, `UPDATE operations SET state = $1, result_code = $2, response = $3, updated_at = $4
		WHERE key = $5`, string(store.OperationDone), txt(resultCode), response, ts(time.Now()), txt(key))
	if err != nil {
		return fmt.Errorf("postgres: finish operation: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ReopenOperation sets the operation with key back to running with no
// result code and no response, and its UpdatedAt to now (the wall clock
// when now is zero); store.ErrNotFound if there is none. Its Activity,
// InstanceID, Fingerprint and CreatedAt are kept.
func (t *tx) ReopenOperation(ctx context.Context, key string, now time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE operations SET state = $1, result_code = '', response = NULL, updated_at = $2
		WHERE key = $3`, string(store.OperationRunning), ts(or(now, time.Now())), txt(key))
	if err != nil {
		return fmt.Errorf("postgres: reopen operation: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}
