-- koobridge schema, SQLite dialect, version 2: request fingerprints of
-- operations, the refusal code of instances, and order notifications.
-- Conventions as in 00001_init.sql.

-- +goose Up
-- A digest of the request's meaningful fields; '' for operations recorded
-- before version 2.
ALTER TABLE operations ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';

-- The business result code with which the vendor's product refused the
-- purchase; '' unless it did.
ALTER TABLE instances ADD COLUMN fail_code TEXT NOT NULL DEFAULT '';

CREATE TABLE order_notifications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id      TEXT    NOT NULL,
    order_line_id TEXT    NOT NULL,
    test          INTEGER NOT NULL DEFAULT 0,
    status        TEXT    NOT NULL,
    order_json    TEXT    NOT NULL DEFAULT '',
    last_error    TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL DEFAULT 0,
    -- One notification per order line, whatever the number of calls. The
    -- constraint's index also serves the listing by order.
    UNIQUE (order_id, order_line_id)
) STRICT;

-- The listing by status, newest (highest id) first, paged by id.
CREATE INDEX order_notifications_status_id ON order_notifications (status, id);

-- +goose Down
DROP TABLE order_notifications;
ALTER TABLE instances DROP COLUMN fail_code;
ALTER TABLE operations DROP COLUMN fingerprint;
