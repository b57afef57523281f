-- koobridge schema, PostgreSQL dialect. The same tables and unique
-- constraints as the SQLite schema (sqlite/00001_init.sql).
--
-- Conventions: times are timestamptz, NULL for the zero time, so operators
-- can read them; durations are bigint milliseconds; payloads and stored
-- responses are bytea, kept byte for byte. Ids of the ledger and the job
-- queue are bigint identities. Text keys that are listed in order (instance
-- ids) use the "C" collation, so order and paging are byte order, as in
-- SQLite, whatever the database's default collation.
-- Idempotency rests on the unique constraints below, never on application
-- checks.

-- +goose Up
CREATE TABLE instances (
    id                  text COLLATE "C" NOT NULL PRIMARY KEY,
    order_id            text        NOT NULL,
    order_line_id       text        NOT NULL,
    business_id         text        NOT NULL DEFAULT '',
    test                boolean     NOT NULL DEFAULT false,
    order_state         text        NOT NULL DEFAULT '',
    product_id          text        NOT NULL DEFAULT '',
    sku_code            text        NOT NULL DEFAULT '',
    charging_mode       text        NOT NULL DEFAULT '',
    period_type         text        NOT NULL DEFAULT '',
    period_number       integer     NOT NULL DEFAULT 0,
    linear_value        text        NOT NULL DEFAULT '',
    customer_id         text        NOT NULL DEFAULT '',
    customer_name       text        NOT NULL DEFAULT '',
    expire_time         timestamptz,
    order_json          text        NOT NULL DEFAULT '',
    status              text        NOT NULL,
    frozen_by           text        NOT NULL DEFAULT '',
    app_front_end_url   text        NOT NULL DEFAULT '',
    app_admin_url       text        NOT NULL DEFAULT '',
    app_user_name       text        NOT NULL DEFAULT '',
    app_password_sealed text        NOT NULL DEFAULT '',
    app_memo            text        NOT NULL DEFAULT '',
    usage_value         text        NOT NULL DEFAULT '',
    usage_time          timestamptz,
    last_error          text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    released_at         timestamptz,
    version             bigint      NOT NULL DEFAULT 0,
    -- One instance per order line, whatever the number of calls.
    CONSTRAINT instances_order_line UNIQUE (order_id, order_line_id)
);

CREATE INDEX instances_status ON instances (status);

CREATE TABLE operations (
    key         text        NOT NULL PRIMARY KEY,
    activity    text        NOT NULL,
    instance_id text        NOT NULL DEFAULT '',
    state       text        NOT NULL,
    result_code text        NOT NULL DEFAULT '',
    response    bytea,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE calls (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id    text        NOT NULL DEFAULT '',
    interface     text        NOT NULL DEFAULT '',
    activity      text        NOT NULL DEFAULT '',
    idem_key      text        NOT NULL DEFAULT '',
    instance_id   text        NOT NULL DEFAULT '',
    order_id      text        NOT NULL DEFAULT '',
    order_line_id text        NOT NULL DEFAULT '',
    test          boolean     NOT NULL DEFAULT false,
    remote        text        NOT NULL DEFAULT '',
    request       text        NOT NULL DEFAULT '',
    response      text        NOT NULL DEFAULT '',
    result_code   text        NOT NULL DEFAULT '',
    result_msg    text        NOT NULL DEFAULT '',
    http_status   integer     NOT NULL DEFAULT 0,
    latency_ms    bigint      NOT NULL DEFAULT 0,
    repeat        boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL
);

CREATE INDEX calls_created_at ON calls (created_at);
CREATE INDEX calls_instance_id ON calls (instance_id);
CREATE INDEX calls_order_id ON calls (order_id);
CREATE INDEX calls_activity ON calls (activity);

CREATE TABLE nonces (
    nonce      text        NOT NULL PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX nonces_expires_at ON nonces (expires_at);

CREATE TABLE jobs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text        NOT NULL,
    unique_key   text,
    payload      bytea,
    state        text        NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    max_attempts integer     NOT NULL DEFAULT 0,
    run_at       timestamptz NOT NULL,
    locked_by    text        NOT NULL DEFAULT '',
    locked_until timestamptz,
    last_error   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- A job with a key is enqueued at most once; jobs without one are not
-- constrained (the store writes NULL for an empty key).
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND unique_key <> '';
-- Workers claim the due job with the earliest run_at.
CREATE INDEX jobs_state_run_at ON jobs (state, run_at);

-- +goose Down
DROP TABLE jobs;
DROP TABLE nonces;
DROP TABLE calls;
DROP TABLE operations;
DROP TABLE instances;
