-- Digests (issue 13). Identical on both engines.
--
-- A digested channel's non-critical deliveries are written `batched`, their `next_attempt_at`
-- the end of their digest window; the `digests` job sends one message per recipient, channel
-- and window end, recorded here first (status `sending`), so that a second run or a run after a
-- crash finds the same row and id (UNIQUE key) instead of sending another digest; the row and
-- its deliveries are then settled together (`sent` with the provider's id, or `failed`).
CREATE TABLE digests (
    id                  TEXT PRIMARY KEY NOT NULL,
    recipient_id        TEXT NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    channel             TEXT NOT NULL,
    window_end          TIMESTAMP NOT NULL,
    status              TEXT NOT NULL,
    item_count          INTEGER NOT NULL,
    provider_message_id TEXT,
    last_error          TEXT,
    created_at          TIMESTAMP NOT NULL,
    sent_at             TIMESTAMP,
    UNIQUE (recipient_id, channel, window_end)
);

-- The job's look-up: the windows ended that still hold batched deliveries.
CREATE INDEX deliveries_batched ON deliveries (next_attempt_at, recipient_id, channel)
    WHERE status = 'batched';
