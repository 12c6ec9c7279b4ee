-- Second factors and passkeys (SPEC §5). TOTP secrets are sealed by the
-- secret box; recovery codes are stored only as hashes; WebAuthn credentials
-- keep the library's record (public key, counter, backup flags) as JSON.
CREATE TABLE totp_factors (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    -- The last 30-second step a code was accepted for: a code is taken only
    -- by an update that moves it forward, so a step is used once.
    last_step  BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE webauthn_credentials (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'passkey' (a first factor, user verification required) or
    -- 'security_key' (a second factor).
    kind           TEXT NOT NULL,
    credential_id  TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    credential     TEXT NOT NULL,
    sign_count     BIGINT NOT NULL,
    backup_eligible BOOLEAN NOT NULL,
    backup_state   BOOLEAN NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    last_used_at   TIMESTAMP
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at    TIMESTAMP,
    UNIQUE (user_id, code_hash)
);

-- Settings an admin changes while servers run (`latchkey policy set`).
CREATE TABLE policies (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
