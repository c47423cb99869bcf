-- Traces of a person outside their own rows, recorded when they are written so that a GDPR
-- erasure (article 17) finds them exactly (identical on both engines).
--
-- `notification_mentions`: the other recipients a notification names (a planning summary lists
-- the artists), from `clairon_domain::rules::mentioned_recipients`, written in the notification's
-- transaction. Erasing a recipient rewrites those notifications without them. The foreign key to
-- `recipients` also stops a write racing an erasure from naming someone already erased.
CREATE TABLE notification_mentions (
    notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    recipient_id    TEXT NOT NULL REFERENCES recipients (id) ON DELETE CASCADE,
    PRIMARY KEY (notification_id, recipient_id)
);

CREATE INDEX notification_mentions_recipient_id_idx ON notification_mentions (recipient_id);

-- `idempotency_subjects`: the recipients an `Idempotency-Key` request wrote about (the
-- notifications' recipients and those they mention, the recipients imported), written in the
-- request's own transaction. Erasing a recipient drops those records: their stored answers and
-- request fingerprints.
CREATE TABLE idempotency_subjects (
    api_key_hash    TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    recipient_id    TEXT NOT NULL,
    PRIMARY KEY (api_key_hash, idempotency_key, recipient_id),
    FOREIGN KEY (api_key_hash, idempotency_key)
        REFERENCES idempotency_keys (api_key_hash, idempotency_key) ON DELETE CASCADE
);

CREATE INDEX idempotency_subjects_recipient_id_idx ON idempotency_subjects (recipient_id);

-- The audit row of an erasure also counts what it rewrote and dropped elsewhere.
ALTER TABLE erasures ADD COLUMN redacted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE erasures ADD COLUMN idempotency_records BIGINT NOT NULL DEFAULT 0;
