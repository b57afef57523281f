-- koobridge schema, PostgreSQL dialect, version 4: the OpenID Connect
-- provider of package sso: its signing keys and its short-lived state. The
-- same columns and constraints as sqlite/00004_sso.sql. Conventions as in
-- 00001_init.sql.

-- +goose Up
-- One row per generation of signing key: the newest signs, older ones stay
-- published for a while (package sso). The primary key makes two replicas
-- that start together create one key of a generation, not two.
CREATE TABLE sso_keys (
    generation     bigint      NOT NULL PRIMARY KEY,
    kid            text        NOT NULL,
    algorithm      text        NOT NULL,
    private_sealed text        NOT NULL, -- PKCS#8 DER, base64, sealed with the data key
    created_at     timestamptz NOT NULL,
    CONSTRAINT sso_keys_kid UNIQUE (kid)
);

-- The provider's state, one row per record of a kind: data is the record
-- as JSON, written and read by package sso only (secrets in it are sealed).
-- lookup is a second key, unique within its kind when set (an
-- authorization code, the digest of a refresh token).
CREATE TABLE sso_records (
    kind       text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    lookup     text COLLATE "C" NOT NULL DEFAULT '',
    data       text        NOT NULL DEFAULT '',
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id)
);

CREATE UNIQUE INDEX sso_records_lookup ON sso_records (kind, lookup) WHERE lookup <> '';

-- The sweep of expired records.
CREATE INDEX sso_records_expires_at ON sso_records (expires_at);

-- +goose Down
DROP TABLE sso_records;
DROP TABLE sso_keys;
