-- The embedded store: what Redis holds in production (sessions, codes,
-- one-time tokens, flow state, rate-limit counters, per-user indexes, locks).
-- Expiry times are milliseconds since the epoch by the application's clock;
-- a sweep removes what has expired.
CREATE TABLE store_entries (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX store_entries_expires ON store_entries (expires_at);

CREATE TABLE store_counters (
    key        TEXT PRIMARY KEY,
    count      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX store_counters_expires ON store_counters (expires_at);

CREATE TABLE store_index (
    index_key  TEXT NOT NULL,
    member     TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (index_key, member)
);
CREATE INDEX store_index_expires ON store_index (expires_at);
