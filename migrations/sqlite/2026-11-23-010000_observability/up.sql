-- Observability (identical on both engines): the request id that created a notification, and
-- the record of background job runs.

-- The X-Request-Id of the HTTP request that created the notification (NULL when made in
-- process: replay, J-1 reminders written by the bus outside a request, older rows).
ALTER TABLE notifications ADD COLUMN request_id TEXT;

-- One row per finished run of a background job (lease_reaper, retention, idempotency_purge).
-- Ids are UUIDv7 text, so newest first is ORDER BY id DESC and pages by id. stats is a JSON
-- object as text. The retention job deletes rows older than CLAIRON_JOB_RUNS_RETENTION_DAYS.
CREATE TABLE job_runs (
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

CREATE INDEX job_runs_job_id_idx ON job_runs (job, id);
CREATE INDEX job_runs_started_at_idx ON job_runs (started_at);

-- The retention purge and the admin stats read by creation time.
CREATE INDEX notifications_created_at_idx ON notifications (created_at);
CREATE INDEX deliveries_created_at_idx ON deliveries (created_at);
