-- Back to the observability shape: runs still running are dropped (they have no end).
CREATE TABLE job_runs_old (
    id          TEXT PRIMARY KEY NOT NULL,
    job         TEXT NOT NULL,
    "trigger"   TEXT NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    duration_ms BIGINT NOT NULL,
    status      TEXT NOT NULL,
    stats       TEXT NOT NULL DEFAULT '{}',
    error       TEXT
);

INSERT INTO job_runs_old (id, job, "trigger", started_at, finished_at, duration_ms, status, stats, error)
    SELECT id, job, "trigger", started_at, finished_at, duration_ms, status, stats, error FROM job_runs
    WHERE finished_at IS NOT NULL AND duration_ms IS NOT NULL;

DROP TABLE job_runs;
ALTER TABLE job_runs_old RENAME TO job_runs;

CREATE INDEX job_runs_job_id_idx ON job_runs (job, id);
CREATE INDEX job_runs_started_at_idx ON job_runs (started_at);
