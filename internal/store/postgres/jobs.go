package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/koobridge/koobridge/internal/store"
)

const jobColumns = `id, kind, unique_key, payload, state, attempts, max_attempts, run_at,
	locked_by, locked_until, last_error, created_at, updated_at`

func scanJob(row pgx.Row) (store.Job, error) {
	var (
		j                                    store.Job
		uniqueKey                            *string
		state                                string
		runAt, lockedUntil, created, updated *time.Time
	)
	if err := row.Scan(&j.ID, &j.Kind, &uniqueKey, &j.Payload, &state, &j.Attempts, &j.MaxAttempts, &runAt,
		&j.LockedBy, &lockedUntil, &j.LastError, &created, &updated); err != nil {
		return store.Job{}, err
	}
	if uniqueKey != nil {
		j.UniqueKey = *uniqueKey
	}
	j.State = store.JobState(state)
	j.RunAt = fromTS(runAt)
	j.LockedUntil = fromTS(lockedUntil)
	j.CreatedAt = fromTS(created)
	j.UpdatedAt = fromTS(updated)
	return j, nil
}

// EnqueueJob inserts job as available and returns its ID. When job has a
// UniqueKey that another job already has, nothing is inserted and the ID
// returned is the existing job's (a concurrent insert of the same key
// waits for the first transaction). A zero CreatedAt is set to now and a
// zero RunAt to CreatedAt (due at once). State, attempts and locks of job
// are ignored.
func (t *tx) EnqueueJob(ctx context.Context, job store.Job) (int64, bool, error) {
	created := or(job.CreatedAt, time.Now())
	var uniqueKey *string
	if job.UniqueKey != "" {
		k := txt(job.UniqueKey)
		uniqueKey = &k
	}
	var id int64
	err := t.tx.QueryRow(ctx, `INSERT INTO jobs
		(kind, unique_key, payload, state, attempts, max_attempts, run_at, locked_by, locked_until,
		 last_error, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 0, $5, $6, '', NULL, '', $7, $7)
		ON CONFLICT DO NOTHING
		RETURNING id`,
		txt(job.Kind), uniqueKey, job.Payload, string(store.JobAvailable), job.MaxAttempts,
		ts(or(job.RunAt, created)), ts(created)).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, false, fmt.Errorf("postgres: enqueue job: %w", mapErr(ctx, err))
	}
	// Not inserted: the unique key is taken.
	if err := t.tx.QueryRow(ctx, `SELECT id FROM jobs WHERE unique_key = $1`, uniqueKey).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("postgres: enqueue job: find job with the same key: %w", mapErr(ctx, err))
	}
	return id, false, nil
}

// EnqueueClaimedJob inserts job running, locked by worker until now+lease,
// its first attempt begun at now, and returns it as stored. When job has a
// UniqueKey that another job already has, nothing is inserted and the job
// returned is the existing one (a concurrent insert of the same key waits
// for the first transaction). A zero CreatedAt is set to now.
func (t *tx) EnqueueClaimedJob(ctx context.Context, job store.Job, worker string, now time.Time, lease time.Duration) (store.Job, bool, error) {
	created := or(job.CreatedAt, now)
	var uniqueKey *string
	if job.UniqueKey != "" {
		k := txt(job.UniqueKey)
		uniqueKey = &k
	}
	j, err := scanJob(t.tx.QueryRow(ctx, `INSERT INTO jobs
		(kind, unique_key, payload, state, attempts, max_attempts, run_at, locked_by, locked_until,
		 last_error, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, '', $9, $6)
		ON CONFLICT DO NOTHING
		RETURNING `+jobColumns,
		txt(job.Kind), uniqueKey, job.Payload, string(store.JobRunning), job.MaxAttempts,
		ts(now), txt(worker), ts(now.Add(lease)), ts(created)))
	if err == nil {
		return j, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.Job{}, false, fmt.Errorf("postgres: enqueue claimed job: %w", mapErr(ctx, err))
	}
	// Not inserted: the unique key is taken.
	j, err = scanJob(t.tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE unique_key = $1`, uniqueKey))
	if err != nil {
		return store.Job{}, false, fmt.Errorf("postgres: enqueue claimed job: find job with the same key: %w", mapErr(ctx, err))
	}
	return j, false, nil
}

// CompleteJob marks job id done in the transaction if worker holds it
// (running and locked by worker, even if the lease has run out but nobody
// took it over). store.ErrNotFound when the job does not exist,
// store.ErrConflict when worker does not hold it.
func (t *tx) CompleteJob(ctx context.Context, id int64, worker string) error {
	tag, err := t.tx.Exec(ctx, `UPDATE jobs SET state = 'done', locked_by = '', locked_until = NULL, updated_at = $1
		WHERE id = $2 AND state = 'running' AND locked_by = $3`, ts(time.Now()), id, txt(worker))
	if err != nil {
		return fmt.Errorf("postgres: complete job: %w", mapErr(ctx, err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var state, lockedBy string
	err = t.tx.QueryRow(ctx, `SELECT state, locked_by FROM jobs WHERE id = $1`, id).Scan(&state, &lockedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: complete job: %w", mapErr(ctx, err))
	}
	return fmt.Errorf("postgres: complete job %d (%s, locked by %q): %w", id, state, lockedBy, store.ErrConflict)
}

// claimable is the condition for a job a worker may take at now ($1): due
// and available, or running with an expired lease.
const claimable = `((state = 'available' AND run_at <= $1) OR (state = 'running' AND locked_until < $1))`

// claimSet is the change a claim makes; $1 is now, $2 the worker, $3 the
// lease's end. RunAt becomes now, when the attempt began: a job claimed
// before it was due (by ID) would otherwise show a run time after it had
// finished.
const claimSet = `state = 'running', locked_by = $2, locked_until = $3, attempts = attempts + 1, run_at = $1, updated_at = $1`

// ClaimJob takes the due job of one of kinds (any kind when kinds is
// empty) with the earliest RunAt. The job is picked with SELECT … FOR
// UPDATE SKIP LOCKED inside the claiming UPDATE, so workers of every
// replica claim different jobs without waiting for each other, and two
// workers never get the same job.
func (s *Store) ClaimJob(ctx context.Context, worker string, kinds []string, now time.Time, lease time.Duration) (_ store.Job, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	args := []any{ts(now), txt(worker), ts(now.Add(lease))}
	kindCond := ""
	if len(kinds) > 0 {
		k := make([]string, len(kinds))
		for i, kind := range kinds {
			k[i] = txt(kind)
		}
		args = append(args, k)
		kindCond = ` AND kind = ANY($4::text[])`
	}
	// The outer condition repeats claimable: it costs nothing and keeps
	// the UPDATE correct on its own.
	return s.claim(ctx, `UPDATE jobs SET `+claimSet+`
		WHERE id = (SELECT id FROM jobs WHERE `+claimable+kindCond+`
			ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		AND `+claimable+`
		RETURNING `+jobColumns, args)
}

// ClaimJobByID claims job id if it is available (whatever its RunAt) or
// its lease expired; store.ErrNotFound if it does not exist, another worker
// holds it, or it is done or dead. A concurrent claim of the same job
// waits for the first and then finds it taken.
func (s *Store) ClaimJobByID(ctx context.Context, id int64, worker string, now time.Time, lease time.Duration) (_ store.Job, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.claim(ctx, `UPDATE jobs SET `+claimSet+`
		WHERE id = $4 AND (state = 'available' OR (state = 'running' AND locked_until < $1))
		RETURNING `+jobColumns, []any{ts(now), txt(worker), ts(now.Add(lease)), id})
}

// claim runs a claiming UPDATE … RETURNING.
func (s *Store) claim(ctx context.Context, query string, args []any) (store.Job, error) {
	j, err := scanJob(s.q.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Job{}, store.ErrNotFound
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("postgres: claim job: %w", mapErr(ctx, err))
	}
	return j, nil
}

// CompleteJob marks job id done if worker holds it.
func (s *Store) CompleteJob(ctx context.Context, id int64, worker string) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.finishJob(ctx, "complete", id, worker, `state = 'done', locked_by = '', locked_until = NULL`)
}

// RetryJob makes job id available again at runAt with lastErr, if worker
// holds it.
func (s *Store) RetryJob(ctx context.Context, id int64, worker string, runAt time.Time, lastErr string) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.finishJob(ctx, "retry", id, worker,
		`state = 'available', locked_by = '', locked_until = NULL, run_at = $4, last_error = $5`,
		ts(or(runAt, time.Unix(0, 0))), txt(lastErr))
}

// DeadJob marks job id dead with lastErr, if worker holds it.
func (s *Store) DeadJob(ctx context.Context, id int64, worker string, lastErr string) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.finishJob(ctx, "dead-letter", id, worker,
		`state = 'dead', locked_by = '', locked_until = NULL, last_error = $4`, txt(lastErr))
}

// finishJob applies set ($4… are setArgs) to job id when worker holds it
// (it is running and locked by worker, even if the lease has run out but
// nobody took it over). store.ErrNotFound when the job does not exist,
// store.ErrConflict when worker does not hold it.
func (s *Store) finishJob(ctx context.Context, op string, id int64, worker, set string, setArgs ...any) error {
	args := append([]any{ts(time.Now()), id, txt(worker)}, setArgs...)
	tag, err := s.q.Exec(ctx, `UPDATE jobs SET `+set+`, updated_at = $1
		WHERE id = $2 AND state = 'running' AND locked_by = $3`, args...)
	if err != nil {
		return fmt.Errorf("postgres: %s job: %w", op, mapErr(ctx, err))
	}
	return s.checkJobUpdate(ctx, op, id, tag)
}

// ReviveJob makes a dead or done job available at now with no attempts
// counted; its LastError is kept for the record. store.ErrConflict when
// the job is available or running.
func (s *Store) ReviveJob(ctx context.Context, id int64, now time.Time) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	tag, err := s.q.Exec(ctx, `UPDATE jobs SET state = 'available', attempts = 0, run_at = $1,
		locked_by = '', locked_until = NULL, updated_at = $1
		WHERE id = $2 AND state IN ('dead', 'done')`, ts(or(now, time.Unix(0, 0))), id)
	if err != nil {
		return fmt.Errorf("postgres: revive job: %w", mapErr(ctx, err))
	}
	return s.checkJobUpdate(ctx, "revive", id, tag)
}

// checkJobUpdate turns an update of job id that touched no row into
// store.ErrNotFound or store.ErrConflict.
func (s *Store) checkJobUpdate(ctx context.Context, op string, id int64, tag pgconn.CommandTag) error {
	if tag.RowsAffected() == 1 {
		return nil
	}
	j, err := s.job(ctx, id)
	if err != nil {
		return err
	}
	return fmt.Errorf("postgres: %s job %d (%s, locked by %q): %w", op, id, j.State, j.LockedBy, store.ErrConflict)
}

// Job reads job id; store.ErrNotFound if there is none.
func (s *Store) Job(ctx context.Context, id int64) (_ store.Job, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.job(ctx, id)
}

// job is Job within an operation that is already bounded.
func (s *Store) job(ctx context.Context, id int64) (store.Job, error) {
	j, err := scanJob(s.q.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Job{}, store.ErrNotFound
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("postgres: read job: %w", mapErr(ctx, err))
	}
	return j, nil
}

// Jobs lists jobs matching f, newest (highest ID) first.
func (s *Store) Jobs(ctx context.Context, f store.JobFilter) (_ []store.Job, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Kind != "" {
		add(`kind = ?`, txt(f.Kind))
	}
	if f.State != "" {
		add(`state = ?`, txt(string(f.State)))
	}
	if f.BeforeID > 0 {
		add(`id < ?`, f.BeforeID)
	}
	query := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	args = append(args, limit(f.Limit))
	query += ` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args))

	return queryAll(ctx, s.q, "list jobs", query, args, scanJob)
}
