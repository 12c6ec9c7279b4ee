-- Timestamps are UTC, stored as `timestamp` (without time zone) so that the
-- same diesel schema serves PostgreSQL and SQLite.
CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    email_verified   BOOLEAN NOT NULL DEFAULT FALSE,
    name             TEXT,
    password_hash    TEXT,
    admin            BOOLEAN NOT NULL DEFAULT FALSE,
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    secret_hash               TEXT,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    backchannel_logout_uri    TEXT,
    public                    BOOLEAN NOT NULL,
    first_party               BOOLEAN NOT NULL,
    grant_types               TEXT NOT NULL,
    signing_alg               TEXT NOT NULL,
    require_mfa               BOOLEAN NOT NULL,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL
);

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    at          TIMESTAMP NOT NULL,
    kind        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    actor       TEXT NOT NULL,
    user_id     TEXT,
    user_email  TEXT,
    client_addr TEXT,
    user_agent  TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_email, at);
