-- Recipients' own choices (issue 11): preferences and consent. Identical on both engines but for
-- the id column of `consents` (BIGSERIAL here, AUTOINCREMENT on SQLite).
--
-- `recipient_preferences`: one JSON document per recipient (channels, event_types,
-- quiet_hours; see clairon_domain::preferences), replaced whole by PUT; no row means the
-- defaults (everything allowed).
CREATE TABLE recipient_preferences (
    recipient_id TEXT PRIMARY KEY NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    document     TEXT NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- `consents`: the append-only history of grants and withdrawals per channel (GDPR art. 7:
-- the proof of consent); the current state of a channel is its latest row. Erasure deletes them.
CREATE TABLE consents (
    id           BIGSERIAL PRIMARY KEY,
    recipient_id TEXT NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    channel      TEXT NOT NULL,
    granted      SMALLINT NOT NULL,
    source       TEXT NOT NULL,
    wording      TEXT,
    recorded_at  TIMESTAMP NOT NULL
);

CREATE INDEX consents_recipient_channel_idx ON consents (recipient_id, channel, recorded_at);

-- A revocation cancels the recipient's waiting deliveries on one channel.
CREATE INDEX deliveries_recipient_channel_idx ON deliveries (recipient_id, channel);
