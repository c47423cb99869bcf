DROP INDEX notifications_recipient_seq_key;
ALTER TABLE notifications DROP COLUMN seq;
ALTER TABLE recipients DROP COLUMN last_seq;
