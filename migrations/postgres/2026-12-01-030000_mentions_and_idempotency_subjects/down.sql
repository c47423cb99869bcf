ALTER TABLE erasures DROP COLUMN idempotency_records;
ALTER TABLE erasures DROP COLUMN redacted;
DROP TABLE idempotency_subjects;
DROP TABLE notification_mentions;
