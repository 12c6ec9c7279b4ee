-- Refresh tokens (SPEC §5): a family per original grant, every token of it
-- stored under its SHA-256 only. A token is used once; its successor is
-- derived from it (HMAC), so a repeat within the grace window can be answered
-- with the same successor. Reuse after the window revokes the family.
CREATE TABLE token_families (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    sid        TEXT NOT NULL,
    auth_time  TIMESTAMP NOT NULL,
    amr        TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
CREATE INDEX token_families_user ON token_families (user_id);
CREATE INDEX token_families_client ON token_families (client_id, user_id);

CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    family_id       TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    created_at      TIMESTAMP NOT NULL,
    idle_expires_at TIMESTAMP NOT NULL,
    used_at         TIMESTAMP
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_idle ON refresh_tokens (idle_expires_at);
