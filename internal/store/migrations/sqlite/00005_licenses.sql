-- koobridge schema, SQLite dialect, version 5: license products
-- (license-openapi.md §A–§D). License codes KooGallery issued, their
-- history and the devices the vendor's client software presented them
-- from; the licenses koobridge had the vendor generate (online license,
-- license 1.0) with their upload attempts; the Ed25519 keys of the license
-- service's tokens. Conventions as in 00001_init.sql.

-- +goose Up
-- One row per license code, test codes (testFlag "1") apart from real ones:
-- KooGallery's retries and probes of one code find one row, whatever the
-- number of calls.
CREATE TABLE license_codes (
    code             TEXT    NOT NULL,
    test             INTEGER NOT NULL DEFAULT 0,
    status           TEXT    NOT NULL,
    expire_time      INTEGER NOT NULL DEFAULT 0,
    expire_estimated INTEGER NOT NULL DEFAULT 0, -- 1: expire_time is activate's estimate
    order_id         TEXT    NOT NULL DEFAULT '',
    order_line_id    TEXT    NOT NULL DEFAULT '',
    product_id       TEXT    NOT NULL DEFAULT '',
    amount           INTEGER NOT NULL DEFAULT 0,
    activated_at     INTEGER NOT NULL DEFAULT 0,
    checked_at       INTEGER NOT NULL DEFAULT 0,
    remote_status    TEXT    NOT NULL DEFAULT '',
    confirmed_at     INTEGER NOT NULL DEFAULT 0, -- the production interface's last confirmation; 0 never
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    version          INTEGER NOT NULL DEFAULT 0,
    -- The key also serves the admin API's listing by code.
    PRIMARY KEY (code, test)
) STRICT;

-- The admin API's listings by status and by order, in code order.
CREATE INDEX license_codes_status_code ON license_codes (status, code);
CREATE INDEX license_codes_order_id ON license_codes (order_id, code);

-- A code's history. Detail is JSON without personal data. An event belongs
-- to a recorded code.
CREATE TABLE license_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    code   TEXT    NOT NULL,
    test   INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    source TEXT    NOT NULL DEFAULT '',
    detail TEXT    NOT NULL DEFAULT '',
    at     INTEGER NOT NULL,
    FOREIGN KEY (code, test) REFERENCES license_codes (code, test)
) STRICT;

-- One code's history, newest first.
CREATE INDEX license_events_code_at ON license_events (code, test, at, id);

-- The devices of a code; device is a keyed hash of the fingerprint, never
-- the fingerprint. The key makes a device one row however often and from
-- however many replicas it is seen.
CREATE TABLE license_devices (
    code        TEXT    NOT NULL,
    test        INTEGER NOT NULL,
    device      TEXT    NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    reported_at INTEGER NOT NULL DEFAULT 0, -- last usage statistics push; 0 never
    PRIMARY KEY (code, test, device),
    FOREIGN KEY (code, test) REFERENCES license_codes (code, test)
) STRICT;

-- The usage statistics batch: real devices seen since their last report,
-- by code. The index holds only those, so it stays small.
CREATE INDEX license_devices_unreported ON license_devices (code, device)
    WHERE test = 0 AND last_seen > reported_at;

-- Licenses the vendor's generator made: one per (kind, grant_key)
-- (getLicenseAsync's eventId and device, license 1.0's orderId), whatever
-- the number of calls. content_sealed is the license, sealed with the data
-- key.
CREATE TABLE license_grants (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL,
    grant_key      TEXT    NOT NULL,
    instance_id    TEXT    NOT NULL DEFAULT '',
    event_id       TEXT    NOT NULL DEFAULT '',
    order_id       TEXT    NOT NULL DEFAULT '',
    product_id     TEXT    NOT NULL DEFAULT '',
    test           INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    expire_time    INTEGER NOT NULL DEFAULT 0,
    request        TEXT    NOT NULL DEFAULT '',
    type           TEXT    NOT NULL DEFAULT '',
    file_name      TEXT    NOT NULL DEFAULT '',
    content_sealed TEXT    NOT NULL DEFAULT '',
    sha256         TEXT    NOT NULL DEFAULT '',
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT    NOT NULL DEFAULT '',
    uploaded_at    INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    version        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, grant_key)
) STRICT;

-- The admin API's listings, newest (highest id) first, paged by id: by
-- kind (and state), by state, by instance; the last also finds an
-- instance's grant.
CREATE INDEX license_grants_kind_state_id ON license_grants (kind, state, id);
CREATE INDEX license_grants_state_id ON license_grants (state, id);
CREATE INDEX license_grants_instance_id ON license_grants (instance_id, kind, id);

-- Attempts at uploading a grant to KooGallery, each of a stored grant.
CREATE TABLE license_uploads (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id    INTEGER NOT NULL REFERENCES license_grants (id),
    at          INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    http_status INTEGER NOT NULL DEFAULT 0,
    code        TEXT    NOT NULL DEFAULT '',
    message     TEXT    NOT NULL DEFAULT ''
) STRICT;

-- A grant's attempts, oldest first.
CREATE INDEX license_uploads_grant_at ON license_uploads (grant_id, at, id);

-- One row per generation of token signing key: the newest signs, older
-- ones stay published for a while (package licensetoken). The primary key
-- makes two replicas that start together create one key of a generation.
CREATE TABLE license_keys (
    generation     INTEGER NOT NULL PRIMARY KEY,
    kid            TEXT    NOT NULL,
    public         TEXT    NOT NULL, -- the public key, base64url: not secret
    private_sealed TEXT    NOT NULL, -- the seed, base64, sealed with the data key
    created_at     INTEGER NOT NULL,
    UNIQUE (kid)
) STRICT;

-- +goose Down
DROP TABLE license_keys;
DROP TABLE license_uploads;
DROP TABLE license_grants;
DROP TABLE license_devices;
DROP TABLE license_events;
DROP TABLE license_codes;
