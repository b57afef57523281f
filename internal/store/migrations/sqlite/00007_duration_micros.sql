-- koobridge schema, SQLite dialect, version 7: durations in microseconds.
-- A call to the production interface is mostly answered in less than a
-- millisecond, which whole milliseconds recorded as 0. The ledger's
-- latency and a usage push attempt's duration get a microsecond column;
-- the millisecond columns are still written, so that an older binary
-- reading this database sees what it always saw. Rows from before are not
-- rewritten: the store reads a row whose microseconds do not agree with its
-- milliseconds (0 before this version, or a value an older binary
-- replaced) from the milliseconds. An UPDATE of every row here would hold
-- the ledger's lock for as long as it took on a large ledger. Conventions as in 00001_init.sql.

-- +goose Up
ALTER TABLE calls ADD COLUMN latency_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_push_attempts ADD COLUMN duration_us INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE usage_push_attempts DROP COLUMN duration_us;
ALTER TABLE calls DROP COLUMN latency_us;
