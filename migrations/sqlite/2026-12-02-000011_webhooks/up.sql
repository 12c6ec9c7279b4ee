-- Webhooks: endpoints that admins register for event types, each with its
-- own signing secret (sealed by the secret box), and a log of every delivery
-- attempt. The events themselves wait in the `deliveries` outbox, written in
-- the same transaction as the audit event that causes them.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Space-separated event types.
    events      TEXT NOT NULL,
    -- The `whsec_…` secret, sealed.
    secret      TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE webhook_attempts (
    id          TEXT PRIMARY KEY,
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The event's id (the `webhook-id` header), the same on every retry.
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    at          TIMESTAMP NOT NULL,
    attempt     BIGINT NOT NULL,
    -- The endpoint's HTTP status, when it answered.
    status      BIGINT,
    -- delivered | retrying | failed | dropped
    outcome     TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX webhook_attempts_by_webhook ON webhook_attempts (webhook_id, at);
