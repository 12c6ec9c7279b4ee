-- Administration: admin-flagged clients (the only ones that may ask for the
-- latchkey:admin scope), groups with their own MFA requirement, and API keys
-- for the admin API (a visible prefix in clear, the whole key only as its
-- SHA-256).
ALTER TABLE clients ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE user_groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    name_normalized TEXT NOT NULL UNIQUE,
    require_mfa BOOLEAN NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    key_hash     TEXT NOT NULL,
    -- Space-separated scopes.
    scopes       TEXT NOT NULL,
    -- Who made it: "user:ID", "apikey:PREFIX" or "cli".
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP
);
