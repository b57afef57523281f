-- +goose NO TRANSACTION
-- koobridge schema, PostgreSQL dialect, version 10: indexes in the order of
-- the admin API's and the console's lists, as
-- sqlite/00010_admin_list_indexes.sql (instances_test_id's WHERE is
-- written "test" into the lists' queries here), and one of PostgreSQL's
-- own: calls_created_at_id replaces calls_created_at, so that a list of
-- the calls of a time window reads their ids from the index alone
-- (SQLite's calls_created_at holds the rowid, which is the id, already).
--
-- Built CONCURRENTLY, outside a transaction, so that older replicas keep
-- writing while large tables are indexed during a rolling upgrade. A
-- build cut short leaves an invalid index behind; the DROP first lets the
-- migration run again. An index replaced goes only once its successor is
-- built.

-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS instances_status_id;
CREATE INDEX CONCURRENTLY instances_status_id ON instances (status, id);
DROP INDEX CONCURRENTLY IF EXISTS instances_status;
DROP INDEX CONCURRENTLY IF EXISTS instances_test_id;
CREATE INDEX CONCURRENTLY instances_test_id ON instances (id) WHERE test;
DROP INDEX CONCURRENTLY IF EXISTS calls_result_code_id;
CREATE INDEX CONCURRENTLY calls_result_code_id ON calls (result_code, id) WHERE result_code <> '000000';
DROP INDEX CONCURRENTLY IF EXISTS calls_created_at_id;
CREATE INDEX CONCURRENTLY calls_created_at_id ON calls (created_at, id);
DROP INDEX CONCURRENTLY IF EXISTS calls_created_at;
DROP INDEX CONCURRENTLY IF EXISTS jobs_state_id;
CREATE INDEX CONCURRENTLY jobs_state_id ON jobs (state, id);
DROP INDEX CONCURRENTLY IF EXISTS jobs_kind_id;
CREATE INDEX CONCURRENTLY jobs_kind_id ON jobs (kind, id);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS jobs_kind_id;
DROP INDEX CONCURRENTLY IF EXISTS jobs_state_id;
DROP INDEX CONCURRENTLY IF EXISTS calls_created_at;
CREATE INDEX CONCURRENTLY calls_created_at ON calls (created_at);
DROP INDEX CONCURRENTLY IF EXISTS calls_created_at_id;
DROP INDEX CONCURRENTLY IF EXISTS calls_result_code_id;
DROP INDEX CONCURRENTLY IF EXISTS instances_test_id;
DROP INDEX CONCURRENTLY IF EXISTS instances_status;
CREATE INDEX CONCURRENTLY instances_status ON instances (status);
DROP INDEX CONCURRENTLY IF EXISTS instances_status_id;
