PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE deliveries_old (
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
    CONSTRAINT deliveries_notification_channel_key UNIQUE (notification_id, channel)
);
INSERT OR IGNORE INTO deliveries_old SELECT id, notification_id, recipient_id, channel, status,
        priority, attempts, next_attempt_at, lease_expires_at, last_error, provider_message_id,
        created_at, updated_at, sent_at, claim_token, crashes
    FROM deliveries ORDER BY id;
DROP TABLE deliveries;
ALTER TABLE deliveries_old RENAME TO deliveries;
CREATE INDEX deliveries_due_idx ON deliveries (priority DESC, next_attempt_at)
    WHERE status IN ('pending', 'retrying', 'sending');
CREATE INDEX deliveries_created_at_idx ON deliveries (created_at);
CREATE INDEX deliveries_recipient_channel_idx ON deliveries (recipient_id, channel);
COMMIT;
PRAGMA foreign_keys = ON;
