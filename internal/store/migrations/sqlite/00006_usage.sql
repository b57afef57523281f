-- koobridge schema, SQLite dialect, version 6: pay-per-use metering
-- (saas-v2.md §7.2, saas-v1-joint-login.md §A.5.8). The usage records the
-- vendor's product reports, their sums per instance and billing period,
-- every instance's running total, the usage pushes that carry the sums to
-- KooGallery and each push's attempts. Values are INTEGER ten-thousandths.
-- Conventions as in 00001_init.sql.

-- +goose Up
-- One row per record the vendor reported: the unique key makes a repeated
-- report (a retry, another replica) one record.
CREATE TABLE usage_records (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL,
    instance_id     TEXT    NOT NULL,
    value           INTEGER NOT NULL,
    time            INTEGER NOT NULL,
    period_start    INTEGER NOT NULL, -- the period it is billed in
    carried         INTEGER NOT NULL DEFAULT 0, -- 1: billed in a later period than its time's
    created_at      INTEGER NOT NULL,
    UNIQUE (idempotency_key)
) STRICT;

-- The admin API's listing of an instance's records, by period.
CREATE INDEX usage_records_instance ON usage_records (instance_id, period_start, id);

-- One row per instance and billing period, whatever the number of records
-- and replicas: the sum KooGallery is told, and what became of it.
CREATE TABLE usage_periods (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT    NOT NULL,
    start       INTEGER NOT NULL,
    "end"       INTEGER NOT NULL,
    total       INTEGER NOT NULL DEFAULT 0,
    records     INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL,
    metering_sn TEXT    NOT NULL DEFAULT '',
    push_id     INTEGER NOT NULL DEFAULT 0, -- 0: not in a push yet
    code        TEXT    NOT NULL DEFAULT '',
    message     TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (instance_id, start)
) STRICT;

-- The sealer's due periods (open, oldest end first), the oldest unpushed
-- period and the counts per state; the periods of a push.
CREATE INDEX usage_periods_state_end ON usage_periods (state, "end", id);
CREATE INDEX usage_periods_push ON usage_periods (push_id);

-- Everything an instance has used, for queryInstance's usageInfo.
CREATE TABLE usage_totals (
    instance_id TEXT    NOT NULL PRIMARY KEY,
    total       INTEGER NOT NULL DEFAULT 0,
    records     INTEGER NOT NULL DEFAULT 0,
    last_time   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row per usage-push request; body is the exact request body, so every
-- attempt sends the same bytes.
CREATE TABLE usage_pushes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    api        TEXT    NOT NULL,
    parent_id  INTEGER NOT NULL DEFAULT 0, -- the push it was split from; 0 none
    body       BLOB    NOT NULL,
    records    INTEGER NOT NULL DEFAULT 0,
    state      TEXT    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    code       TEXT    NOT NULL DEFAULT '',
    message    TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- The admin API's listing by state, newest first.
CREATE INDEX usage_pushes_state_id ON usage_pushes (state, id);

-- Each try at sending a push, with KooGallery's answer.
CREATE TABLE usage_push_attempts (
    push_id     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    duration    INTEGER NOT NULL DEFAULT 0, -- milliseconds
    http_status INTEGER NOT NULL DEFAULT 0, -- 0: no answer
    code        TEXT    NOT NULL DEFAULT '',
    message     TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (push_id, attempt)
) STRICT;

-- +goose Down
DROP TABLE usage_push_attempts;
DROP TABLE usage_pushes;
DROP TABLE usage_totals;
DROP TABLE usage_periods;
DROP TABLE usage_records;
