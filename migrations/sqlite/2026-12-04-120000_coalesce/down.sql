DROP INDEX notifications_coalesce_key_idx;
ALTER TABLE notifications DROP COLUMN coalesce_key;
