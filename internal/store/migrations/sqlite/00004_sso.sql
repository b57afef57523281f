-- koobridge schema, SQLite dialect, version 4: the OpenID Connect provider
-- of package sso (single sign-on for joint-operation products): its signing
-- keys and its short-lived state (authorization requests and their codes,
-- sign-in sessions, access and refresh tokens), kept in the database so
-- that every replica serves every step of a sign-in. Conventions as in
-- 00001_init.sql.

-- +goose Up
-- One row per generation of signing key: the newest signs, older ones stay
-- published for a while (package sso). The primary key makes two replicas
-- that start together create one key of a generation, not two.
CREATE TABLE sso_keys (
    generation     INTEGER NOT NULL PRIMARY KEY,
    kid            TEXT    NOT NULL,
    algorithm      TEXT    NOT NULL,
    private_sealed TEXT    NOT NULL, -- PKCS#8 DER, base64, sealed with the data key
    created_at     INTEGER NOT NULL,
    UNIQUE (kid)
) STRICT;

-- The provider's state, one row per record of a kind: data is the record
-- as JSON, written and read by package sso only (secrets in it are sealed).
-- lookup is a second key, unique within its kind when set (an
-- authorization code, the digest of a refresh token).
CREATE TABLE sso_records (
    kind       TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    lookup     TEXT    NOT NULL DEFAULT '',
    data       TEXT    NOT NULL DEFAULT '',
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)
) STRICT;

CREATE UNIQUE INDEX sso_records_lookup ON sso_records (kind, lookup) WHERE lookup <> '';

-- The sweep of expired records.
CREATE INDEX sso_records_expires_at ON sso_records (expires_at);

-- +goose Down
DROP TABLE sso_records;
DROP TABLE sso_keys;
