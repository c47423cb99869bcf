-- Realtime inbox (issue 4): a per-recipient sequence number on notifications, so SSE clients can
-- resume with `Last-Event-ID` and miss nothing. `recipients.last_seq` is the counter, bumped with
-- `UPDATE … RETURNING` in the transaction that inserts the notifications (the row lock, or
-- SQLite's single writer, makes the numbers gap-free and in commit order).

ALTER TABLE recipients ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN seq BIGINT;

-- Number what already exists, oldest (lowest UUIDv7) first.
UPDATE notifications SET seq = (
    SELECT COUNT(*) FROM notifications AS older
    WHERE older.recipient_id = notifications.recipient_id AND older.id <= notifications.id
);
UPDATE recipients SET last_seq = COALESCE(
    (SELECT MAX(seq) FROM notifications WHERE notifications.recipient_id = recipients.id), 0
);

CREATE UNIQUE INDEX notifications_recipient_seq_key ON notifications (recipient_id, seq);
