package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// Operation reads the idempotency record with key; store.ErrNotFound if
// there is none.
func (s *Store) Operation(ctx context.Context, key string) (_ store.Operation, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return reader{q: s.db}.Operation(ctx, key)
}

// Operation reads the idempotency record with key; store.ErrNotFound if
// there is none.
func (r reader) Operation(ctx context.Context, key string) (store.Operation, error) {
	var (
		op               store.Operation
		state            string
		created, updated int64
	)
	err := r.q.QueryRowContext(ctx, `SELECT key, activity, instance_id, fingerprint, state, result_code, response,
		created_at, updated_at FROM operations WHERE key = ?`, key).
		Scan(&op.Key, &op.Activity, &op.InstanceID, &op.Fingerprint, &state, &op.ResultCode, &op.Response, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Operation{}, store.ErrNotFound
	}
	if err != nil {
		return store.Operation{}, fmt.Errorf("sqlite: read operation: %w", mapErr(err))
	}
	op.State = store.OperationState(state)
	op.CreatedAt = fromMS(created)
	op.UpdatedAt = fromMS(updated)
	return op, nil
}

// InsertOperation inserts op unless its Key exists (the primary key
// decides). An empty State is stored as running; zero times as now.
func (t *tx) InsertOperation(ctx context.Context, op store.Operation) (bool, error) {
	now := time.Now()
	state := op.State
	if state == "" {
		state = store.OperationRunning
	}
	res, err := t.tx.ExecContext(ctx, `INSERT INTO operations
		(key, activity, instance_id, fingerprint, state, result_code, response, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO NOTHING`,
		op.Key, op.Activity, op.InstanceID, op.Fingerprint, string(state), op.ResultCode, op.Response,
		ms(or(op.CreatedAt, now)), ms(or(op.UpdatedAt, now)))
	if err != nil {
		return false, fmt.Errorf("sqlite: insert operation: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: insert operation: %w", mapErr(err))
	}
	return n == 1, nil
}

// FinishOperation marks the operation with key done with its answer;
// store.ErrNotFound if there is none. UpdatedAt is the wall clock.
func (t *tx) FinishOperation(ctx context.Context, key, resultCode string, response []byte) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE operations SET state = ?, result_code = ?, response = ?, updated_at = ?
		WHERE key = ?`, string(store.OperationDone), resultCode, response, ms(time.Now()), key)
	if err != nil {
		return fmt.Errorf("sqlite: finish operation: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: finish operation: %w", mapErr(err))
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ReopenOperation sets the operation with key back to running with no
// result code and no response, and its UpdatedAt to now (the wall clock
// when now is zero); store.ErrNotFound if there is none. Its Activity,
// InstanceID, Fingerprint and CreatedAt are kept.
func (t *tx) ReopenOperation(ctx context.Context, key string, now time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE operations SET state = ?, result_code = '', response = NULL, updated_at = ?
		WHERE key = ?`, string(store.OperationRunning), ms(or(now, time.Now())), key)
	if err != nil {
		return fmt.Errorf("sqlite: reopen operation: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: reopen operation: %w", mapErr(err))
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
