-- Scheduled and cancellable notifications (identical on both engines).
--
-- `deliver_at` (UTC) hides a notification from the inbox and the unread count until it is due;
-- its deliveries are due at the same time (`deliveries.next_attempt_at`). NULL: at once.
-- `cancellation_key` names a notification its producer may replace or cancel while it is pending
-- (J-1 reminders: `reminder:{planning}:{recipient}`); at most one live (not cancelled)
-- notification holds a key. `cancelled_at` (UTC) hides a cancelled notification for good; its
-- pending deliveries are `cancelled`.

ALTER TABLE notifications ADD COLUMN deliver_at TIMESTAMP;
ALTER TABLE notifications ADD COLUMN cancellation_key TEXT;
ALTER TABLE notifications ADD COLUMN cancelled_at TIMESTAMP;

CREATE UNIQUE INDEX notifications_live_cancellation_key_idx ON notifications (cancellation_key)
    WHERE cancellation_key IS NOT NULL AND cancelled_at IS NULL;
