-- Scheduled jobs, chains and external job runs (issue 13; seed 003's scheduler_logs and
-- sync_logs). Same shape as the SQLite migration, which rebuilds the table instead.

-- NULL while running.
ALTER TABLE job_runs ALTER COLUMN finished_at DROP NOT NULL;
ALTER TABLE job_runs ALTER COLUMN duration_ms DROP NOT NULL;
-- internal (run by Clairon) or external (POST /api/v1/job-runs).
ALTER TABLE job_runs ADD COLUMN source TEXT NOT NULL DEFAULT 'internal';
-- sync, report, chain, backup, other.
ALTER TABLE job_runs ADD COLUMN task_type TEXT NOT NULL DEFAULT 'other';
ALTER TABLE job_runs ADD COLUMN message TEXT;
ALTER TABLE job_runs ADD COLUMN triggered_by_user TEXT;
-- The run of the job this one is chained after.
ALTER TABLE job_runs ADD COLUMN parent_run_id TEXT;
-- The scheduled occurrence (UTC) of a scheduler's run; NULL for runs by hand and external
-- ones. Unique with job: two processes never run one occurrence twice.
ALTER TABLE job_runs ADD COLUMN occurrence TIMESTAMP;

CREATE UNIQUE INDEX job_runs_occurrence_idx ON job_runs (job, occurrence);
