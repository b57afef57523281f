-- koobridge schema, SQLite dialect, version 10: indexes in the order of
-- the admin API's and the console's lists, so that a page of a filtered
-- list reads its rows and stops, however many rows the filter selects (or
-- finds none). Before, instances by status read every instance of that
-- status and sorted them by id; instances by test flag, jobs by kind and
-- calls by result code read the whole table; jobs by state sorted every
-- job of that state.
--
-- instances_status_id replaces instances_status, which no query needs
-- any more (only the lists filter instances by status).
--
-- Every index costs each write of its table. So no index serves two
-- filters at once (the lists walk one and filter by the other, choosing
-- which where SQLite cannot tell), and two hold only the few rows that a
-- list looks for among many: the test instances, and the calls not
-- answered 000000, most of the ledger, whose insert is the hottest write.
-- Lists of the others walk the primary key, most rows matching. Their
-- WHERE is written word for word into the lists' queries
-- (store.UnsuccessfulCallSQL for calls): SQLite uses a partial index only
-- where the query holds its condition as written. jobs_state_run_at stays
-- for the claim.
--
-- Building them takes the write lock once, for as long as the tables are
-- large: some seconds at a million instances, jobs and calls. As
-- postgres/00010_admin_list_indexes.sql, which also gives PostgreSQL's
-- calls_created_at the id that SQLite's holds as the rowid.

-- +goose Up
CREATE INDEX instances_status_id ON instances (status, id);
DROP INDEX instances_status;
CREATE INDEX instances_test_id ON instances (id) WHERE test = 1;
CREATE INDEX calls_result_code_id ON calls (result_code, id) WHERE result_code <> '000000';
CREATE INDEX jobs_state_id ON jobs (state, id);
CREATE INDEX jobs_kind_id ON jobs (kind, id);

-- +goose Down
DROP INDEX jobs_kind_id;
DROP INDEX jobs_state_id;
DROP INDEX calls_result_code_id;
DROP INDEX instances_test_id;
CREATE INDEX instances_status ON instances (status);
DROP INDEX instances_status_id;
