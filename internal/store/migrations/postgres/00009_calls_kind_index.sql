-- +goose NO TRANSACTION
-- koobridge schema, PostgreSQL dialect, version 9: an index per kind of
-- call for the ledger's retention sweep, as sqlite/00009_calls_kind_index.sql.
-- Built CONCURRENTLY, outside a transaction, so that older replicas keep
-- writing their ledger rows while a large ledger is indexed during a
-- rolling upgrade. A build cut short leaves an invalid index behind; the
-- DROP first lets the migration run again.

-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS calls_rejected_created_at;
CREATE INDEX CONCURRENTLY calls_rejected_created_at ON calls (created_at, id)
    WHERE (result_code IN ('000001', '000002') AND idem_key = '');
DROP INDEX CONCURRENTLY IF EXISTS calls_answered_created_at;
CREATE INDEX CONCURRENTLY calls_answered_created_at ON calls (created_at, id)
    WHERE NOT (result_code IN ('000001', '000002') AND idem_key = '');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS calls_answered_created_at;
DROP INDEX CONCURRENTLY IF EXISTS calls_rejected_created_at;
