-- Where a delivery goes, when its recipient has more than one address on its channel (issue 12).
--
-- `address`: NULL for channels whose address is the recipient's own (email, Telegram chat,
-- in-app); for `web_push`, the push subscription's endpoint: one delivery per subscription,
-- so a notification may hold several `web_push` deliveries, one per endpoint. The unique key
-- becomes (notification, channel, address), NULL counted as one address.
--
-- SQLite cannot drop the inline UNIQUE constraint: the table is rebuilt as its documentation
-- says ("Making Other Kinds Of Table Schema Changes"), foreign keys off so that dropping the
-- old table does not cascade to `delivery_attempts`, checked before the commit.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE deliveries_new (
    id                  TEXT PRIMARY KEY NOT NULL,
    notification_id     TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    recipient_id        TEXT NOT NULL,
    channel             TEXT NOT NULL,
    status              TEXT NOT NULL,
    priority            SMALLINT NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMP NOT NULL,
    lease_expires_at    TIMESTAMP,
    last_error          TEXT,
    provider_message_id TEXT,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    sent_at             TIMESTAMP,
    claim_token         TEXT,
    crashes             INTEGER NOT NULL DEFAULT 0,
    address             TEXT
);
INSERT INTO deliveries_new (id, notification_id, recipient_id, channel, status, priority,
        attempts, next_attempt_at, lease_expires_at, last_error, provider_message_id,
        created_at, updated_at, sent_at, claim_token, crashes)
    SELECT id, notification_id, recipient_id, channel, status, priority, attempts,
        next_attempt_at, lease_expires_at, last_error, provider_message_id, created_at,
        updated_at, sent_at, claim_token, crashes
    FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_notification_channel_address_key
    ON deliveries (notification_id, channel, COALESCE(address, ''));
CREATE INDEX deliveries_due_idx ON deliveries (priority DESC, next_attempt_at)
    WHERE status IN ('pending', 'retrying', 'sending');
CREATE INDEX deliveries_created_at_idx ON deliveries (created_at);
CREATE INDEX deliveries_recipient_channel_idx ON deliveries (recipient_id, channel);
PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
