-- Scheduled jobs, chains and external job runs (issue 13; seed 003's scheduler_logs and
-- sync_logs). SQLite cannot drop a NOT NULL, so job_runs is rebuilt (a running run has no
-- finished_at nor duration yet); the PostgreSQL migration alters it in place to the same shape.

CREATE TABLE job_runs_new (
    id                TEXT PRIMARY KEY NOT NULL,
    job               TEXT NOT NULL,
    "trigger"         TEXT NOT NULL,
    started_at        TIMESTAMP NOT NULL,
    -- NULL while running.
    finished_at       TIMESTAMP,
    -- Milliseconds; NULL while running.
    duration_ms       BIGINT,
    -- running, success, warning, error, skipped.
    status            TEXT NOT NULL,
    stats             TEXT NOT NULL DEFAULT '{}',
    -- error_details.
    error             TEXT,
    -- internal (run by Clairon) or external (POST /api/v1/job-runs).
    source            TEXT NOT NULL DEFAULT 'internal',
    -- sync, report, chain, backup, other.
    task_type         TEXT NOT NULL DEFAULT 'other',
    message           TEXT,
    triggered_by_user TEXT,
    -- The run of the job this one is chained after.
    parent_run_id     TEXT,
    -- The scheduled occurrence (UTC) of a scheduler's run; NULL for runs by hand and
    -- external ones. Unique with job: two processes never run one occurrence twice.
    occurrence        TIMESTAMP
);

INSERT INTO job_runs_new (id, job, "trigger", started_at, finished_at, duration_ms, status, stats, error)
    SELECT id, job, "trigger", started_at, finished_at, duration_ms, status, stats, error FROM job_runs;

DROP TABLE job_runs;
ALTER TABLE job_runs_new RENAME TO job_runs;

CREATE INDEX job_runs_job_id_idx ON job_runs (job, id);
CREATE INDEX job_runs_started_at_idx ON job_runs (started_at);
CREATE UNIQUE INDEX job_runs_occurrence_idx ON job_runs (job, occurrence);
