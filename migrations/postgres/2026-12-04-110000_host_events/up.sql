-- Delivery events to the host application (issue 12). Identical on both engines.
--
-- The outbox of the events Clairon posts to CLAIRON_EVENTS_WEBHOOK_URL: a row is written in the
-- same transaction as the change it reports (a delivery recorded `sent`, `failed` or `dead`, a
-- notification marked read), then posted by its own worker, signed per Standard Webhooks 1.0.
-- `id` is the `webhook-id` (the same on every retry); `payload` the exact JSON body posted,
-- `{"type", "timestamp", "data"}`. `status`: `pending`, then `sent` or `dead`; a claim pushes
-- `next_attempt_at` forward (its lease), so two processes never post the same row at once.
CREATE TABLE host_events (
    id              TEXT PRIMARY KEY NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL,
    sent_at         TIMESTAMP
);

-- The worker's claim: due pending events, oldest due first.
CREATE INDEX host_events_due ON host_events (status, next_attempt_at);
