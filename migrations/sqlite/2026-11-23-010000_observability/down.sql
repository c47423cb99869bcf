DROP INDEX deliveries_created_at_idx;
DROP INDEX notifications_created_at_idx;
DROP TABLE job_runs;
ALTER TABLE notifications DROP COLUMN request_id;
