-- Clairon's schema on PostgreSQL. Keep it column-for-column identical to the SQLite migration:
-- one Diesel `schema.rs` serves both engines through `MultiConnection`.
--
-- Times are `TIMESTAMP` (without time zone) holding UTC, microsecond precision. Ids are text;
-- notification ids use the "C" collation so `ORDER BY id` and `id < $cursor` compare bytes,
-- exactly as SQLite does, whatever the database's default collation.

CREATE TABLE recipients (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT NOT NULL,
    email            TEXT,
    telegram_chat_id TEXT,
    phone            TEXT,
    locale           TEXT,
    timezone         TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

CREATE TABLE notifications (
    id              TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    recipient_id    TEXT NOT NULL REFERENCES recipients (id),
    kind            TEXT NOT NULL,
    priority        SMALLINT NOT NULL,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    action_url      TEXT,
    action_label    TEXT,
    metadata        TEXT NOT NULL DEFAULT '{}',
    event_type      TEXT NOT NULL,
    source_event_id TEXT,
    created_at      TIMESTAMP NOT NULL,
    read_at         TIMESTAMP,
    -- NULLs are distinct in a UNIQUE constraint, so notifications without a source never conflict.
    CONSTRAINT notifications_source_event_recipient_key UNIQUE (source_event_id, recipient_id)
);

-- The inbox: one recipient's notifications, newest (highest UUIDv7) first.
CREATE INDEX notifications_recipient_id_idx ON notifications (recipient_id, id);
-- The unread badge.
CREATE INDEX notifications_unread_idx ON notifications (recipient_id) WHERE read_at IS NULL;

CREATE TABLE deliveries (
    id                  TEXT PRIMARY KEY NOT NULL,
    notification_id     TEXT COLLATE "C" NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
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
    CONSTRAINT deliveries_notification_channel_key UNIQUE (notification_id, channel)
);

-- The dispatcher's claim: only rows that may still be due, in claim order.
CREATE INDEX deliveries_due_idx ON deliveries (priority DESC, next_attempt_at)
    WHERE status IN ('pending', 'retrying', 'sending');

CREATE TABLE delivery_attempts (
    id                   BIGSERIAL PRIMARY KEY NOT NULL,
    delivery_id          TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number               INTEGER NOT NULL,
    started_at           TIMESTAMP NOT NULL,
    duration_ms          BIGINT NOT NULL,
    outcome              TEXT NOT NULL,
    error                TEXT,
    provider_response_id TEXT
);

CREATE INDEX delivery_attempts_delivery_id_idx ON delivery_attempts (delivery_id, number);

CREATE TABLE api_keys (
    hash       TEXT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL,
    label      TEXT
);
