package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

const jobColumns = `id, kind, unique_key, payload, state, attempts, max_attempts, run_at,
	locked_by, locked_until, last_error, created_at, updated_at`

func scanJob(sc scanner) (store.Job, error) {
	var (
		j                                    store.Job
		uniqueKey                            sql.NullString
		state                                string
		runAt, lockedUntil, created, updated int64
	)
	if err := sc.Scan(&j.ID, &j.Kind, &uniqueKey, &j.Payload, &state, &j.Attempts, &j.MaxAttempts, &runAt,
		&j.LockedBy, &lockedUntil, &j.LastError, &created, &updated); err != nil {
		return store.Job{}, err
	}
	j.UniqueKey = uniqueKey.String
	j.State = store.JobState(state)
	j.RunAt = fromMS(runAt)
	j.LockedUntil = fromMS(lockedUntil)
	j.CreatedAt = fromMS(created)
	j.UpdatedAt = fromMS(updated)
	return j, nil
}

// EnqueueJob inserts job as available and returns its ID. When job has a
// UniqueKey that another job already has, nothing is inserted and the ID
// returned is the existing job's. A zero CreatedAt is set to now and a zero
// RunAt to CreatedAt (due at once). State, attempts and locks of job are
// ignored.
func (t *tx) EnqueueJob(ctx context.Context, job store.Job) (int64, bool, error) {
	created := or(job.CreatedAt, time.Now())
	var uniqueKey sql.NullString
	if job.UniqueKey != "" {
		uniqueKey = sql.NullString{String: job.UniqueKey, Valid: true}
	}
	var id int64
	err := t.tx.QueryRowContext(ctx, `INSERT INTO jobs
		(kind, unique_key, payload, state, attempts, max_attempts, run_at, locked_by, locked_until,
		 last_error, created_at, updated_at)
		VALUES (?, ?, ?, ?, 0, ?, ?, '', 0, '', ?, ?)
		ON CONFLICT DO NOTHING
		RETURNING id`,
		job.Kind, uniqueKey, job.Payload, string(store.JobAvailable), job.MaxAttempts,
		ms(or(job.RunAt, created)), ms(created), ms(created)).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("sqlite: enqueue job: %w", mapErr(err))
	}
	// Not inserted: the unique key is taken.
	if err := t.tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE unique_key = ?`, job.UniqueKey).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("sqlite: enqueue job: find job with the same key: %w", mapErr(err))
	}
	return id, false, nil
}

// claimable is the condition for a job a worker may take at now (the
// parameter): due and available, or running with an expired lease.
const claimable = `((state = 'available' AND run_at <= :now) OR (state = 'running' AND locked_until < :now))`

// ClaimJob takes the due job of one of kinds (any kind when kinds is
// empty) with the earliest RunAt, in one UPDATE … RETURNING statement run
// while holding SQLite's write lock, so two workers never get the same job.
func (s *Store) ClaimJob(ctx context.Context, worker string, kinds []string, now time.Time, lease time.Duration) (_ store.Job, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	idQuery, kindArgs := claimIDQuery(kinds)
	args := append([]any{
		sql.Named("now", ms(now)),
		sql.Named("worker", worker),
		sql.Named("until", ms(now.Add(lease))),
	}, kindArgs...)
	return s.claim(ctx, idQuery, args)
}

// claimIDQuery is ClaimJob's subquery for the id of the job to claim, at
// :now, and the arguments of its kinds.
func claimIDQuery(kinds []string) (string, []any) {
	var args []any
	kindCond := ""
	if len(kinds) > 0 {
		// Named parameters only: SQLite numbers "?" after the named ones
		// in order of appearance, which is easy to get wrong.
		marks := make([]string, len(kinds))
		for i, k := range kinds {
			name := fmt.Sprintf("kind%d", i)
			marks[i] = ":" + name
			args = append(args, sql.Named(name, k))
		}
		// +kind: the jobs of a kind, all of them done but a few, are no
		// way to the due ones; without statistics SQLite would take the
		// lists' index on kind (schema version 10) and read them all.
		kindCond = ` AND +kind IN (` + strings.Join(marks, ", ") + `)`
	}
	return `(SELECT id FROM jobs WHERE ` + claimable + kindCond + ` ORDER BY run_at, id LIMIT 1)`, args
}

// ClaimJobByID claims job id if it is available (whatever its RunAt) or
// its lease expired; store.ErrNotFound if it does not exist, another worker
// holds it, or it is done or dead.
func (s *Store) ClaimJobByID(ctx context.Context, id int64, worker string, now time.Time, lease time.Duration) (_ store.Job, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	args := []any{
		sql.Named("now", ms(now)),
		sql.Named("worker", worker),
		sql.Named("until", ms(now.Add(lease))),
		sql.Named("id", id),
	}
	return s.claim(ctx, `(SELECT id FROM jobs WHERE id = :id AND (state = 'available' OR (state = 'running' AND locked_until < :now)))`, args)
}

// claim marks the job selected by the subquery idQuery running for worker,
// its attempt begun at now.
func (s *Store) claim(ctx context.Context, idQuery string, args []any) (store.Job, error) {
	var j store.Job
	err := s.run(ctx, true, func(ctx context.Context, t *cachedTx) error {
		// RunAt becomes the claim's time: a job claimed before it was due
		// (by ID) would otherwise show a run time after it had finished.
		var err error
		j, err = scanJob(t.QueryRowContext(ctx, `UPDATE jobs SET state = 'running', locked_by = :worker,
			locked_until = :until, attempts = attempts + 1, run_at = :now, updated_at = :now
			WHERE id = `+idQuery+`
			RETURNING `+jobColumns, args...))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Job{}, store.ErrNotFound
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("sqlite: claim job: %w", mapErr(err))
	}
	return j, nil
}

// CompleteJob marks job id done if worker holds it.
func (s *Store) CompleteJob(ctx context.Context, id int64, worker string) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.finishJob(ctx, "complete", id, worker, `state = 'done', locked_by = '', locked_until = 0`)
}

// RetryJob makes job id available again at runAt with lastErr, if worker
// holds it.
func (s *Store) RetryJob(ctx context.Context, id int64, worker string, runAt time.Time, lastErr string) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.finishJob(ctx, "retry", id, worker,
		`state = 'available', locked_by = '', locked_until = 0, run_at = ?, last_error = ?`, ms(runAt), lastErr)
}

// DeadJob marks job id dead with lastErr, if worker holds it.
func (s *Store) DeadJob(ctx context.Context, id int64, worker string, lastErr string) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.finishJob(ctx, "dead-letter", id, worker,
		`state = 'dead', locked_by = '', locked_until = 0, last_error = ?`, lastErr)
}

// finishJob applies set to job id when worker holds it (it is running and
// locked by worker, even if the lease has run out but nobody took it
// over). store.ErrNotFound when the job does not exist, store.ErrConflict
// when worker does not hold it.
func (s *Store) finishJob(ctx context.Context, op string, id int64, worker, set string, setArgs ...any) error {
	args := append(setArgs, ms(time.Now()), id, worker)
	res, err := s.exec(ctx, `UPDATE jobs SET `+set+`, updated_at = ?
		WHERE id = ? AND state = 'running' AND locked_by = ?`, args...)
	if err != nil {
		return fmt.Errorf("sqlite: %s job: %w", op, err)
	}
	return s.checkJobUpdate(ctx, op, id, res)
}

// ReviveJob makes a dead or done job available at now with no attempts
// counted; its LastError is kept for the record. store.ErrConflict when
// the job is available or running.
func (s *Store) ReviveJob(ctx context.Context, id int64, now time.Time) (err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	res, err := s.exec(ctx, `UPDATE jobs SET state = 'available', attempts = 0, run_at = ?,
		locked_by = '', locked_until = 0, updated_at = ?
		WHERE id = ? AND state IN ('dead', 'done')`, ms(now), ms(now), id)
	if err != nil {
		return fmt.Errorf("sqlite: revive job: %w", err)
	}
	return s.checkJobUpdate(ctx, "revive", id, res)
}

// checkJobUpdate turns an update of job id that touched no row into
// store.ErrNotFound or store.ErrConflict.
func (s *Store) checkJobUpdate(ctx context.Context, op string, id int64, res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s job: %w", op, mapErr(err))
	}
	if n == 1 {
		return nil
	}
	j, err := s.job(ctx, id)
	if err != nil {
		return err
	}
	return fmt.Errorf("sqlite: %s job %d (%s, locked by %q): %w", op, id, j.State, j.LockedBy, store.ErrConflict)
}

// Job reads job id; store.ErrNotFound if there is none.
func (s *Store) Job(ctx context.Context, id int64) (_ store.Job, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return s.job(ctx, id)
}

// job is Job within an operation that is already bounded.
func (s *Store) job(ctx context.Context, id int64) (store.Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Job{}, store.ErrNotFound
	}
	if err != nil {
		return store.Job{}, fmt.Errorf("sqlite: read job: %w", mapErr(err))
	}
	return j, nil
}

// Jobs lists jobs matching f, newest (highest ID) first.
func (s *Store) Jobs(ctx context.Context, f store.JobFilter) (_ []store.Job, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	query, args := jobsQuery(f)
	return queryAll(ctx, s.db, "list jobs", query, args, scanJob)
}

// jobsQuery is Jobs' query and its arguments. A filter by kind or state
// walks jobs_kind_id or jobs_state_id backwards (schema version 10), so a
// page reads its rows and stops.
//
// With both, SQLite, which has no statistics, cannot tell which index
// finds fewer rows: the other column is written with a unary +, which it
// takes as no index's. Done jobs are most of every kind's, and so found
// among the kind's; the jobs of any other state are few.
func jobsQuery(f store.JobFilter) (string, []any) {
	var (
		where []string
		args  []any
	)
	kind, state := `kind = ?`, `state = ?`
	if f.Kind != "" && f.State != "" {
		if f.State == store.JobDone {
			state = `+` + state
		} else {
			kind = `+` + kind
		}
	}
	if f.Kind != "" {
		where = append(where, kind)
		args = append(args, f.Kind)
	}
	if f.State != "" {
		where = append(where, state)
		args = append(args, string(f.State))
	}
	if f.BeforeID > 0 {
		where = append(where, `id < ?`)
		args = append(args, f.BeforeID)
	}
	query := `SELECT ` + jobColumns + ` FROM jobs`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	return query, append(args, limit(f.Limit))
}
