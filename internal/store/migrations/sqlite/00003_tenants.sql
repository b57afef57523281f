-- koobridge schema, SQLite dialect, version 3: joint-operation Kit data
-- (tenants, their apps, users and departments), the per-tenant outbox of
-- events for the vendor with its stream row, and the tenant of a call in
-- the ledger. Conventions as in 00001_init.sql.

-- +goose Up
-- The tenant a Kit call is about; '' for other calls and for calls
-- recorded before version 3.
ALTER TABLE calls ADD COLUMN tenant_id TEXT NOT NULL DEFAULT '';

-- The console's per-tenant listing, newest (highest id) first.
CREATE INDEX calls_tenant_id_id ON calls (tenant_id, id);

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    code        TEXT    NOT NULL DEFAULT '',
    name        TEXT    NOT NULL DEFAULT '',
    domain_name TEXT    NOT NULL DEFAULT '',
    instance_id TEXT    NOT NULL DEFAULT '',
    order_id    TEXT    NOT NULL DEFAULT '',
    test        INTEGER NOT NULL DEFAULT 0,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The listing by status, paged by id.
CREATE INDEX tenants_status_id ON tenants (status, id);

-- The primary keys below also serve the listings of one tenant, in key
-- order.
CREATE TABLE tenant_apps (
    tenant_id            TEXT    NOT NULL,
    app_id               TEXT    NOT NULL,
    client_id            TEXT    NOT NULL DEFAULT '',
    client_secret_sealed TEXT    NOT NULL DEFAULT '',
    instance_id          TEXT    NOT NULL DEFAULT '',
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, app_id)
) STRICT;

CREATE TABLE tenant_users (
    tenant_id     TEXT    NOT NULL,
    app_id        TEXT    NOT NULL,
    user_name     TEXT    NOT NULL,
    name          TEXT    NOT NULL DEFAULT '',
    org_code      TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL DEFAULT '',
    enable        INTEGER NOT NULL DEFAULT 0,
    revoked       INTEGER NOT NULL DEFAULT 0,
    position      TEXT    NOT NULL DEFAULT '',
    employee_code TEXT    NOT NULL DEFAULT '',
    employee_type INTEGER NOT NULL DEFAULT 0,
    mobile_sealed TEXT    NOT NULL DEFAULT '',
    email_sealed  TEXT    NOT NULL DEFAULT '',
    work_place    TEXT    NOT NULL DEFAULT '',
    entry_date    TEXT    NOT NULL DEFAULT '',
    sync_time     TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, app_id, user_name)
) STRICT;

CREATE TABLE tenant_orgs (
    tenant_id   TEXT    NOT NULL,
    org_code    TEXT    NOT NULL,
    name        TEXT    NOT NULL DEFAULT '',
    parent_code TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, org_code)
) STRICT;

-- The outbox: one event id is stored once, one sequence number of a tenant
-- is given once. The (tenant_id, seq) constraint's index serves the
-- listing by tenant, newest first.
CREATE TABLE tenant_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id      TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    event_id       TEXT    NOT NULL,
    type           TEXT    NOT NULL DEFAULT '',
    payload_sealed TEXT    NOT NULL DEFAULT '',
    state          TEXT    NOT NULL,
    last_error     TEXT    NOT NULL DEFAULT '',
    attempts       INTEGER NOT NULL DEFAULT 0, -- failed deliveries so far
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (event_id),
    UNIQUE (tenant_id, seq)
) STRICT;

-- A tenant's next pending event.
CREATE INDEX tenant_events_pending ON tenant_events (tenant_id, seq) WHERE state = 'pending';

-- One row per tenant with events or a delivery lease: next_seq is the Seq
-- the tenant's next event gets; leased_by holds the delivery of the
-- tenant's events until leased_until ('' and 0 when nobody does).
CREATE TABLE tenant_streams (
    tenant_id    TEXT    NOT NULL PRIMARY KEY,
    next_seq     INTEGER NOT NULL DEFAULT 1,
    leased_by    TEXT    NOT NULL DEFAULT '',
    leased_until INTEGER NOT NULL DEFAULT 0
) STRICT;

-- +goose Down
DROP TABLE tenant_streams;
DROP TABLE tenant_events;
DROP TABLE tenant_orgs;
DROP TABLE tenant_users;
DROP TABLE tenant_apps;
DROP TABLE tenants;
DROP INDEX calls_tenant_id_id;
ALTER TABLE calls DROP COLUMN tenant_id;
