-- koobridge schema, SQLite dialect, version 9: an index per kind of call
-- for the ledger's retention sweep. The sweep deletes the oldest calls of
-- one kind (store.RejectedCallSQL, or its negation); with only
-- calls_created_at it read every older call of the other kind on each
-- batch, holding the one writer while it did, when one kind is kept
-- longer than the other. Each index holds only its kind, ordered as the
-- sweep deletes. Its WHERE is RejectedCallSQL word for word: SQLite uses a
-- partial index only where the query holds its condition as written.
-- Building them takes the write lock once, for as long as the ledger is
-- large. As postgres/00009_calls_kind_index.sql.

-- +goose Up
CREATE INDEX calls_rejected_created_at ON calls (created_at, id)
    WHERE (result_code IN ('000001', '000002') AND idem_key = '');
CREATE INDEX calls_answered_created_at ON calls (created_at, id)
    WHERE NOT (result_code IN ('000001', '000002') AND idem_key = '');

-- +goose Down
DROP INDEX calls_answered_created_at;
DROP INDEX calls_rejected_created_at;
