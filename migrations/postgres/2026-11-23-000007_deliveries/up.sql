-- The durable outbox for calls to other parties (back-channel logout now,
-- webhooks later): written when the change that causes it happens, sent by
-- a worker with retries through the guarded outbound client. `payload` is
-- what to send (for a logout token, its claims: it is signed when sent).
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    target_url      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts        BIGINT NOT NULL,
    last_error      TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at);
