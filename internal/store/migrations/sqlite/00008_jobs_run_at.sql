-- koobridge schema, SQLite dialect, version 8: a claimed job's run_at is
-- when its latest attempt began. Before, a job claimed ahead of its run_at
-- (a newInstance or upgradeInstance call runs its own job at once, its
-- run_at set past the call's budget for a runner to take over only if the
-- process died) kept that later run_at, and a finished job showed a run
-- time after it had finished. Such jobs get the time of their last change:
-- for a running job its claim, for a done or dead one its end. No schema
-- change. Conventions as in 00001_init.sql.

-- +goose Up
UPDATE jobs SET run_at = updated_at WHERE state <> 'available' AND run_at > updated_at;

-- +goose Down
-- Nothing to undo: an older binary reads the repaired run_at as any other.
