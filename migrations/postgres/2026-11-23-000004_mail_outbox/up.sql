-- Mail waiting to be delivered: written on the request path, delivered by a
-- worker with retries, so a restart or a mail-server outage loses nothing.
-- The message (it may carry a sign-in link) is sealed by the secret box.
CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    created_at      TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts        BIGINT NOT NULL,
    recipient       TEXT NOT NULL,
    message         TEXT NOT NULL,
    last_error      TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
