-- koobridge schema, PostgreSQL dialect, version 2: request fingerprints of
-- operations, the refusal code of instances, and order notifications. The
-- same columns and constraints as sqlite/00002_order_notifications.sql.
-- Conventions as in 00001_init.sql.

-- +goose Up
-- A digest of the request's meaningful fields; '' for operations recorded
-- before version 2. (A constant default: no table rewrite.)
ALTER TABLE operations ADD COLUMN fingerprint text NOT NULL DEFAULT '';

-- The business result code with which the vendor's product refused the
-- purchase; '' unless it did.
ALTER TABLE instances ADD COLUMN fail_code text NOT NULL DEFAULT '';

CREATE TABLE order_notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id      text        NOT NULL,
    order_line_id text        NOT NULL,
    test          boolean     NOT NULL DEFAULT false,
    status        text        NOT NULL,
    order_json    text        NOT NULL DEFAULT '',
    last_error    text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       bigint      NOT NULL DEFAULT 0,
    -- One notification per order line, whatever the number of calls. The
    -- constraint's index also serves the listing by order.
    CONSTRAINT order_notifications_order_line UNIQUE (order_id, order_line_id)
);

-- The listing by status, newest (highest id) first, paged by id.
CREATE INDEX order_notifications_status_id ON order_notifications (status, id);

-- +goose Down
DROP TABLE order_notifications;
ALTER TABLE instances DROP COLUMN fail_code;
ALTER TABLE operations DROP COLUMN fingerprint;
