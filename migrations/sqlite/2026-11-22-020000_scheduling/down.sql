DROP INDEX notifications_live_cancellation_key_idx;
ALTER TABLE notifications DROP COLUMN cancelled_at;
ALTER TABLE notifications DROP COLUMN cancellation_key;
ALTER TABLE notifications DROP COLUMN deliver_at;
