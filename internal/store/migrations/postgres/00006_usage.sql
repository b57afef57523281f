-- koobridge schema, PostgreSQL dialect, version 6: pay-per-use metering
-- (saas-v2.md §7.2, saas-v1-joint-login.md §A.5.8): usage records, their
-- sums per instance and billing period, every instance's running total,
-- the usage pushes with their attempts. The same columns and constraints
-- as sqlite/00006_usage.sql. Values are bigint ten-thousandths.
-- Conventions as in 00001_init.sql: the text keys listed in order use the
-- "C" collation.

-- +goose Up
-- One row per record the vendor reported: the unique key makes a repeated
-- report (a retry, another replica) one record.
CREATE TABLE usage_records (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text COLLATE "C" NOT NULL,
    instance_id     text COLLATE "C" NOT NULL,
    value           bigint      NOT NULL,
    time            timestamptz NOT NULL,
    period_start    timestamptz NOT NULL, -- the period it is billed in
    carried         boolean     NOT NULL DEFAULT false, -- billed in a later period than its time's
    created_at      timestamptz NOT NULL,
    CONSTRAINT usage_records_key UNIQUE (idempotency_key)
);

-- The admin API's listing of an instance's records, by period.
CREATE INDEX usage_records_instance ON usage_records (instance_id, period_start, id);

-- One row per instance and billing period, whatever the number of records
-- and replicas: the sum KooGallery is told, and what became of it.
CREATE TABLE usage_periods (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id text COLLATE "C" NOT NULL,
    start       timestamptz NOT NULL,
    "end"       timestamptz NOT NULL,
    total       bigint      NOT NULL DEFAULT 0,
    records     bigint      NOT NULL DEFAULT 0,
    state       text        NOT NULL,
    metering_sn text        NOT NULL DEFAULT '',
    push_id     bigint      NOT NULL DEFAULT 0, -- 0: not in a push yet
    code        text        NOT NULL DEFAULT '',
    message     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    CONSTRAINT usage_periods_instance_start UNIQUE (instance_id, start)
);

-- The sealer's due periods (open, oldest end first), the oldest unpushed
-- period and the counts per state; the periods of a push.
CREATE INDEX usage_periods_state_end ON usage_periods (state, "end", id);
CREATE INDEX usage_periods_push ON usage_periods (push_id);

-- Everything an instance has used, for queryInstance's usageInfo.
CREATE TABLE usage_totals (
    instance_id text COLLATE "C" NOT NULL PRIMARY KEY,
    total       bigint      NOT NULL DEFAULT 0,
    records     bigint      NOT NULL DEFAULT 0,
    last_time   timestamptz
);

-- One row per usage-push request; body is the exact request body, so every
-- attempt sends the same bytes.
CREATE TABLE usage_pushes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    api        text        NOT NULL,
    parent_id  bigint      NOT NULL DEFAULT 0, -- the push it was split from; 0 none
    body       bytea       NOT NULL,
    records    integer     NOT NULL DEFAULT 0,
    state      text        NOT NULL,
    attempts   integer     NOT NULL DEFAULT 0,
    code       text        NOT NULL DEFAULT '',
    message    text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The admin API's listing by state, newest first.
CREATE INDEX usage_pushes_state_id ON usage_pushes (state, id);

-- Each try at sending a push, with KooGallery's answer.
CREATE TABLE usage_push_attempts (
    push_id     bigint      NOT NULL,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    duration    bigint      NOT NULL DEFAULT 0, -- milliseconds
    http_status integer     NOT NULL DEFAULT 0, -- 0: no answer
    code        text        NOT NULL DEFAULT '',
    message     text        NOT NULL DEFAULT '',
    PRIMARY KEY (push_id, attempt)
);

-- +goose Down
DROP TABLE usage_push_attempts;
DROP TABLE usage_pushes;
DROP TABLE usage_totals;
DROP TABLE usage_periods;
DROP TABLE usage_records;
