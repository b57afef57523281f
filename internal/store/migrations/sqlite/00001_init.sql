-- koobridge schema, SQLite dialect.
--
-- Conventions: times are INTEGER Unix milliseconds UTC (0 = zero time),
-- durations INTEGER milliseconds, booleans INTEGER 0/1. Tables are STRICT so
-- a wrongly typed value fails loudly instead of being stored as text.
-- Idempotency rests on the unique constraints below, never on application
-- checks.

-- +goose Up
CREATE TABLE instances (
    id                  TEXT    NOT NULL PRIMARY KEY,
    order_id            TEXT    NOT NULL,
    order_line_id       TEXT    NOT NULL,
    business_id         TEXT    NOT NULL DEFAULT '',
    test                INTEGER NOT NULL DEFAULT 0,
    order_state         TEXT    NOT NULL DEFAULT '',
    product_id          TEXT    NOT NULL DEFAULT '',
    sku_code            TEXT    NOT NULL DEFAULT '',
    charging_mode       TEXT    NOT NULL DEFAULT '',
    period_type         TEXT    NOT NULL DEFAULT '',
    period_number       INTEGER NOT NULL DEFAULT 0,
    linear_value        TEXT    NOT NULL DEFAULT '',
    customer_id         TEXT    NOT NULL DEFAULT '',
    customer_name       TEXT    NOT NULL DEFAULT '',
    expire_time         INTEGER NOT NULL DEFAULT 0,
    order_json          TEXT    NOT NULL DEFAULT '',
    status              TEXT    NOT NULL,
    frozen_by           TEXT    NOT NULL DEFAULT '',
    app_front_end_url   TEXT    NOT NULL DEFAULT '',
    app_admin_url       TEXT    NOT NULL DEFAULT '',
    app_user_name       TEXT    NOT NULL DEFAULT '',
    app_password_sealed TEXT    NOT NULL DEFAULT '',
    app_memo            TEXT    NOT NULL DEFAULT '',
    usage_value         TEXT    NOT NULL DEFAULT '',
    usage_time          INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT    NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    released_at         INTEGER NOT NULL DEFAULT 0,
    version             INTEGER NOT NULL DEFAULT 0,
    -- One instance per order line, whatever the number of calls.
    UNIQUE (order_id, order_line_id)
) STRICT;

CREATE INDEX instances_status ON instances (status);

CREATE TABLE operations (
    key         TEXT    NOT NULL PRIMARY KEY,
    activity    TEXT    NOT NULL,
    instance_id TEXT    NOT NULL DEFAULT '',
    state       TEXT    NOT NULL,
    result_code TEXT    NOT NULL DEFAULT '',
    response    BLOB,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE calls (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id    TEXT    NOT NULL DEFAULT '',
    interface     TEXT    NOT NULL DEFAULT '',
    activity      TEXT    NOT NULL DEFAULT '',
    idem_key      TEXT    NOT NULL DEFAULT '',
    instance_id   TEXT    NOT NULL DEFAULT '',
    order_id      TEXT    NOT NULL DEFAULT '',
    order_line_id TEXT    NOT NULL DEFAULT '',
    test          INTEGER NOT NULL DEFAULT 0,
    remote        TEXT    NOT NULL DEFAULT '',
    request       TEXT    NOT NULL DEFAULT '',
    response      TEXT    NOT NULL DEFAULT '',
    result_code   TEXT    NOT NULL DEFAULT '',
    result_msg    TEXT    NOT NULL DEFAULT '',
    http_status   INTEGER NOT NULL DEFAULT 0,
    latency_ms    INTEGER NOT NULL DEFAULT 0,
    repeat        INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX calls_created_at ON calls (created_at);
CREATE INDEX calls_instance_id ON calls (instance_id);
CREATE INDEX calls_order_id ON calls (order_id);
CREATE INDEX calls_activity ON calls (activity);

CREATE TABLE nonces (
    nonce      TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX nonces_expires_at ON nonces (expires_at);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    unique_key   TEXT,
    payload      BLOB,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    locked_by    TEXT    NOT NULL DEFAULT '',
    locked_until INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

-- A job with a key is enqueued at most once; jobs without one are not
-- constrained (the store writes NULL for an empty key).
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND unique_key <> '';
CREATE INDEX jobs_state_run_at ON jobs (state, run_at);

-- +goose Down
DROP TABLE jobs;
DROP TABLE nonces;
DROP TABLE calls;
DROP TABLE operations;
DROP TABLE instances;
