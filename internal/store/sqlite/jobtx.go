package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// EnqueueClaimedJob inserts job running, locked by worker until now+lease,
// its first attempt begun at now, and returns it as stored. When job has a
// UniqueKey that another job already has, nothing is inserted and the job
// returned is the existing one. A zero CreatedAt is set to now.
func (t *tx) EnqueueClaimedJob(ctx context.Context, job store.Job, worker string, now time.Time, lease time.Duration) (store.Job, bool, error) {
	created := or(job.CreatedAt, now)
	var uniqueKey sql.NullString
	if job.UniqueKey != "" {
		uniqueKey = sql.NullString{String: job.UniqueKey, Valid: true}
	}
	j, err := scanJob(t.tx.QueryRowContext(ctx, `INSERT INTO jobs
		(kind, unique_key, payload, state, attempts, max_attempts, run_at, locked_by, locked_until,
		 last_error, created_at, updated_at)
		VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, '', ?, ?)
		ON CONFLICT DO NOTHING
		RETURNING `+jobColumns,
		job.Kind, uniqueKey, job.Payload, string(store.JobRunning), job.MaxAttempts,
		ms(now), worker, ms(now.Add(lease)), ms(created), ms(now)))
	if err == nil {
		return j, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return store.Job{}, false, fmt.Errorf("sqlite: enqueue claimed job: %w", mapErr(err))
	}
	// Not inserted: the unique key is taken.
	j, err = scanJob(t.tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE unique_key = ?`, job.UniqueKey))
	if err != nil {
		return store.Job{}, false, fmt.Errorf("sqlite: enqueue claimed job: find job with the same key: %w", mapErr(err))
	}
	return j, false, nil
}

// CompleteJob marks job id done in the transaction if worker holds it
// (running and locked by worker, even if the lease has run out but nobody
// took it over). store.ErrNotFound when the job does not exist,
// store.ErrConflict when worker does not hold it.
func (t *tx) CompleteJob(ctx context.Context, id int64, worker string) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', locked_by = '', locked_until = 0, updated_at = ?
		WHERE id = ? AND state = 'running' AND locked_by = ?`, ms(time.Now()), id, worker)
	if err != nil {
		return fmt.Errorf("sqlite: complete job: %w", mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: complete job: %w", mapErr(err))
	}
	if n == 1 {
		return nil
	}
	var state, lockedBy string
	err = t.tx.QueryRowContext(ctx, `SELECT state, locked_by FROM jobs WHERE id = ?`, id).Scan(&state, &lockedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite: complete job: %w", mapErr(err))
	}
	return fmt.Errorf("sqlite: complete job %d (%s, locked by %q): %w", id, state, lockedBy, store.ErrConflict)
}
