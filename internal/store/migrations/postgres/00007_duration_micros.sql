-- koobridge schema, PostgreSQL dialect, version 7: durations in
-- microseconds, as sqlite/00007_duration_micros.sql. A call to the
-- production interface is mostly answered in less than a millisecond,
-- which whole milliseconds recorded as 0. The ledger's latency and a usage
-- push attempt's duration get a microsecond column; the millisecond
-- columns are still written, so that an older binary reading this
-- database sees what it always saw. Rows from before are copied over at
-- millisecond precision.

-- +goose Up
ALTER TABLE calls ADD COLUMN latency_us bigint NOT NULL DEFAULT 0;
UPDATE calls SET latency_us = latency_ms * 1000;
ALTER TABLE usage_push_attempts ADD COLUMN duration_us bigint NOT NULL DEFAULT 0;
UPDATE usage_push_attempts SET duration_us = duration * 1000;

-- +goose Down
ALTER TABLE usage_push_attempts DROP COLUMN duration_us;
ALTER TABLE calls DROP COLUMN latency_us;
