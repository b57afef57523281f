-- koobridge schema, PostgreSQL dialect, version 5: license products
-- (license-openapi.md §A–§D): license codes, their history and devices,
-- the licenses koobridge had the vendor generate with their upload
-- attempts, and the keys of the license service's tokens. The same columns
-- and constraints as sqlite/00005_licenses.sql. Conventions as in
-- 00001_init.sql: the text keys listed in order use the "C" collation.

-- +goose Up
-- One row per license code, test codes (testFlag "1") apart from real ones:
-- KooGallery's retries and probes of one code find one row, whatever the
-- number of calls.
CREATE TABLE license_codes (
    code             text COLLATE "C" NOT NULL,
    test             boolean     NOT NULL DEFAULT false,
    status           text        NOT NULL,
    expire_time      timestamptz,
    expire_estimated boolean     NOT NULL DEFAULT false, -- expire_time is activate's estimate
    order_id         text        NOT NULL DEFAULT '',
    order_line_id    text        NOT NULL DEFAULT '',
    product_id       text        NOT NULL DEFAULT '',
    amount           integer     NOT NULL DEFAULT 0,
    activated_at     timestamptz,
    checked_at       timestamptz,
    remote_status    text        NOT NULL DEFAULT '',
    confirmed_at     timestamptz, -- the production interface's last confirmation; NULL never
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL DEFAULT 0,
    -- The key also serves the admin API's listing by code.
    PRIMARY KEY (code, test)
);

-- The admin API's listings by status and by order, in code order.
CREATE INDEX license_codes_status_code ON license_codes (status, code);
CREATE INDEX license_codes_order_id ON license_codes (order_id, code);

-- A code's history. Detail is JSON without personal data. An event belongs
-- to a recorded code.
CREATE TABLE license_events (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code   text COLLATE "C" NOT NULL,
    test   boolean     NOT NULL,
    kind   text        NOT NULL,
    source text        NOT NULL DEFAULT '',
    detail text        NOT NULL DEFAULT '',
    at     timestamptz NOT NULL,
    CONSTRAINT license_events_code FOREIGN KEY (code, test) REFERENCES license_codes (code, test)
);

-- One code's history, newest first.
CREATE INDEX license_events_code_at ON license_events (code, test, at, id);

-- The devices of a code; device is a keyed hash of the fingerprint, never
-- the fingerprint. The key makes a device one row however often and from
-- however many replicas it is seen.
CREATE TABLE license_devices (
    code        text COLLATE "C" NOT NULL,
    test        boolean     NOT NULL,
    device      text COLLATE "C" NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    reported_at timestamptz, -- last usage statistics push; NULL never
    PRIMARY KEY (code, test, device),
    CONSTRAINT license_devices_code FOREIGN KEY (code, test) REFERENCES license_codes (code, test)
);

-- The usage statistics batch: real devices seen since their last report,
-- by code. The index holds only those, so it stays small.
CREATE INDEX license_devices_unreported ON license_devices (code, device)
    WHERE NOT test AND (reported_at IS NULL OR last_seen > reported_at);

-- Licenses the vendor's generator made: one per (kind, grant_key)
-- (getLicenseAsync's eventId and device, license 1.0's orderId), whatever
-- the number of calls. content_sealed is the license, sealed with the data
-- key.
CREATE TABLE license_grants (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           text        NOT NULL,
    grant_key      text        NOT NULL,
    instance_id    text        NOT NULL DEFAULT '',
    event_id       text        NOT NULL DEFAULT '',
    order_id       text        NOT NULL DEFAULT '',
    product_id     text        NOT NULL DEFAULT '',
    test           boolean     NOT NULL DEFAULT false,
    state          text        NOT NULL,
    status         text        NOT NULL,
    expire_time    timestamptz,
    request        text        NOT NULL DEFAULT '',
    type           text        NOT NULL DEFAULT '',
    file_name      text        NOT NULL DEFAULT '',
    content_sealed text        NOT NULL DEFAULT '',
    sha256         text        NOT NULL DEFAULT '',
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text        NOT NULL DEFAULT '',
    uploaded_at    timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    version        bigint      NOT NULL DEFAULT 0,
    CONSTRAINT license_grants_kind_key UNIQUE (kind, grant_key)
);

-- The admin API's listings, newest (highest id) first, paged by id: by
-- kind (and state), by state, by instance; the last also finds an
-- instance's grant.
CREATE INDEX license_grants_kind_state_id ON license_grants (kind, state, id);
CREATE INDEX license_grants_state_id ON license_grants (state, id);
CREATE INDEX license_grants_instance_id ON license_grants (instance_id, kind, id);

-- Attempts at uploading a grant to KooGallery, each of a stored grant.
CREATE TABLE license_uploads (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grant_id    bigint      NOT NULL CONSTRAINT license_uploads_grant REFERENCES license_grants (id),
    at          timestamptz NOT NULL,
    outcome     text        NOT NULL,
    http_status integer     NOT NULL DEFAULT 0,
    code        text        NOT NULL DEFAULT '',
    message     text        NOT NULL DEFAULT ''
);

-- A grant's attempts, oldest first.
CREATE INDEX license_uploads_grant_at ON license_uploads (grant_id, at, id);

-- One row per generation of token signing key: the newest signs, older
-- ones stay published for a while (package licensetoken). The primary key
-- makes two replicas that start together create one key of a generation.
CREATE TABLE license_keys (
    generation     bigint      NOT NULL PRIMARY KEY,
    kid            text        NOT NULL,
    public         text        NOT NULL, -- the public key, base64url: not secret
    private_sealed text        NOT NULL, -- the seed, base64, sealed with the data key
    created_at     timestamptz NOT NULL,
    CONSTRAINT license_keys_kid UNIQUE (kid)
);

-- +goose Down
DROP TABLE license_keys;
DROP TABLE license_uploads;
DROP TABLE license_grants;
DROP TABLE license_devices;
DROP TABLE license_events;
DROP TABLE license_codes;
