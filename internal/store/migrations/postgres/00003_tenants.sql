-- koobridge schema, PostgreSQL dialect, version 3: joint-operation Kit
-- data (tenants, their apps, users and departments), the per-tenant outbox
-- of events for the vendor with its stream row, and the tenant of a call in
-- the ledger. The same columns and constraints as
-- sqlite/00003_tenants.sql. Conventions as in 00001_init.sql: the text keys
-- listed in order use the "C" collation.

-- +goose Up
-- The tenant a Kit call is about; '' for other calls and for calls
-- recorded before version 3. (A constant default: no table rewrite.)
ALTER TABLE calls ADD COLUMN tenant_id text NOT NULL DEFAULT '';

-- The console's per-tenant listing, newest (highest id) first.
CREATE INDEX calls_tenant_id_id ON calls (tenant_id, id);

CREATE TABLE tenants (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,
    code        text        NOT NULL DEFAULT '',
    name        text        NOT NULL DEFAULT '',
    domain_name text        NOT NULL DEFAULT '',
    instance_id text        NOT NULL DEFAULT '',
    order_id    text        NOT NULL DEFAULT '',
    test        boolean     NOT NULL DEFAULT false,
    status      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    version     bigint      NOT NULL DEFAULT 0
);

-- The listing by status, paged by id.
CREATE INDEX tenants_status_id ON tenants (status, id);

-- The primary keys below also serve the listings of one tenant, in key
-- order.
CREATE TABLE tenant_apps (
    tenant_id            text COLLATE "C" NOT NULL,
    app_id               text COLLATE "C" NOT NULL,
    client_id            text        NOT NULL DEFAULT '',
    client_secret_sealed text        NOT NULL DEFAULT '',
    instance_id          text        NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, app_id)
);

CREATE TABLE tenant_users (
    tenant_id     text COLLATE "C" NOT NULL,
    app_id        text COLLATE "C" NOT NULL,
    user_name     text COLLATE "C" NOT NULL,
    name          text        NOT NULL DEFAULT '',
    org_code      text        NOT NULL DEFAULT '',
    role          text        NOT NULL DEFAULT '',
    enable        boolean     NOT NULL DEFAULT false,
    revoked       boolean     NOT NULL DEFAULT false,
    position      text        NOT NULL DEFAULT '',
    employee_code text        NOT NULL DEFAULT '',
    employee_type integer     NOT NULL DEFAULT 0,
    mobile_sealed text        NOT NULL DEFAULT '',
    email_sealed  text        NOT NULL DEFAULT '',
    work_place    text        NOT NULL DEFAULT '',
    entry_date    text        NOT NULL DEFAULT '',
    sync_time     text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, app_id, user_name)
);

CREATE TABLE tenant_orgs (
    tenant_id   text COLLATE "C" NOT NULL,
    org_code    text COLLATE "C" NOT NULL,
    name        text        NOT NULL DEFAULT '',
    parent_code text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, org_code)
);

-- The outbox: one event id is stored once, one sequence number of a tenant
-- is given once. The (tenant_id, seq) constraint's index serves the
-- listing by tenant, newest first.
CREATE TABLE tenant_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      text COLLATE "C" NOT NULL,
    seq            bigint      NOT NULL,
    event_id       text        NOT NULL,
    type           text        NOT NULL DEFAULT '',
    payload_sealed text        NOT NULL DEFAULT '',
    state          text        NOT NULL,
    last_error     text        NOT NULL DEFAULT '',
    attempts       integer     NOT NULL DEFAULT 0, -- failed deliveries so far
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT tenant_events_event_id UNIQUE (event_id),
    CONSTRAINT tenant_events_tenant_seq UNIQUE (tenant_id, seq)
);

-- A tenant's next pending event.
CREATE INDEX tenant_events_pending ON tenant_events (tenant_id, seq) WHERE state = 'pending';

-- One row per tenant with events or a delivery lease: next_seq is the Seq
-- the tenant's next event gets; leased_by holds the delivery of the
-- tenant's events until leased_until ('' and NULL when nobody does).
CREATE TABLE tenant_streams (
    tenant_id    text COLLATE "C" NOT NULL PRIMARY KEY,
    next_seq     bigint      NOT NULL DEFAULT 1,
    leased_by    text        NOT NULL DEFAULT '',
    leased_until timestamptz
);

-- +goose Down
DROP TABLE tenant_streams;
DROP TABLE tenant_events;
DROP TABLE tenant_orgs;
DROP TABLE tenant_users;
DROP TABLE tenant_apps;
DROP TABLE tenants;
DROP INDEX calls_tenant_id_id;
ALTER TABLE calls DROP COLUMN tenant_id;
