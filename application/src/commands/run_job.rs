//! `RunJob`: runs one background job now and records the run in `job_runs`.
//!
//! What each job does is decided here; how (the SQL) is the [`Housekeeping`] port's business,
//! and when (the timer) the binary's. Runs never overlap within one call, but the same job may
//! run in several processes at once: every job is idempotent (a second purge finds nothing).

use std::sync::Arc;
use std::time::Instant;

use chrono::TimeDelta;
use serde_json::json;

use crate::ports::{
    Clock, Housekeeping, Job, JobRun, JobRunRepository, JobStatus, JobTrigger, RepositoryError,
};

/// How long rows are kept before the [`Job::Retention`] purge deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Notifications (with their deliveries and attempts) older than this many days are
    /// deleted (`CLAIRON_RETENTION_DAYS`, 365 by default).
    pub notification_days: u32,
    /// Job runs older than this many days are deleted (`CLAIRON_JOB_RUNS_RETENTION_DAYS`, 30
    /// by default).
    pub job_run_days: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            notification_days: 365,
            job_run_days: 30,
        }
    }
}

/// Run `job` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunJob {
    /// Which job.
    pub job: Job,
    /// What asked for it.
    pub trigger: JobTrigger,
}

/// Why a run could not be recorded. A job that fails is not an error of this command: its run
/// is recorded with status `error` and returned.
#[derive(Debug, thiserror::Error)]
pub enum RunJobError {
    /// The run happened (or failed) but its record could not be written.
    #[error("recording the job run failed: {0}")]
    Repository(#[from] RepositoryError),
}

/// Handles [`RunJob`].
pub struct RunJobHandler {
    housekeeping: Arc<dyn Housekeeping>,
    runs: Arc<dyn JobRunRepository>,
    clock: Arc<dyn Clock>,
    retention: RetentionPolicy,
}

impl RunJobHandler {
    /// Builds the handler on its ports.
    pub fn new(
        housekeeping: Arc<dyn Housekeeping>,
        runs: Arc<dyn JobRunRepository>,
        clock: Arc<dyn Clock>,
        retention: RetentionPolicy,
    ) -> Self {
        Self {
            housekeeping,
            runs,
            clock,
            retention,
        }
    }

    /// Runs the job, times it, records the run (status `success` with its stats, or `error`
    /// with the cause) and returns the recorded run.
    ///
    /// # Errors
    /// [`RunJobError::Repository`] when the run cannot be recorded.
    #[tracing::instrument(name = "job", skip_all, fields(job = command.job.as_str(), trigger = command.trigger.as_str()))]
    pub async fn execute(&self, command: RunJob) -> Result<JobRun, RunJobError> {
        let started_at = self.clock.now();
        let timer = Instant::now();
        let outcome = self.work(command.job).await;
        let duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, stats, error) = match outcome {
            Ok(stats) => {
                tracing::info!(duration_ms, stats = %stats, "job run succeeded");
                (JobStatus::Success, stats, None)
            }
            Err(e) => {
                tracing::error!(duration_ms, error = %e, "job run failed");
                (JobStatus::Error, json!({}), Some(e.to_string()))
            }
        };
        let run = JobRun {
            id: String::new(),
            job: command.job,
            trigger: command.trigger,
            started_at,
            finished_at: self.clock.now(),
            duration_ms,
            status,
            stats,
            error,
        };
        Ok(self.runs.record(&run).await?)
    }

    async fn work(&self, job: Job) -> Result<serde_json::Value, RepositoryError> {
        let now = self.clock.now();
        match job {
            Job::LeaseReaper => {
                let released = self.housekeeping.release_expired_leases(now).await?;
                Ok(json!({ "released": released }))
            }
            Job::Retention => {
                let cutoff = now - TimeDelta::days(i64::from(self.retention.notification_days));
                let purged = self.housekeeping.purge_notifications(cutoff).await?;
                let runs_cutoff = now - TimeDelta::days(i64::from(self.retention.job_run_days));
                let job_runs = self.housekeeping.purge_job_runs(runs_cutoff).await?;
                Ok(json!({
                    "notifications": purged.notifications,
                    "deliveries": purged.deliveries,
                    "attempts": purged.attempts,
                    "job_runs": job_runs,
                    "cutoff": cutoff.to_rfc3339(),
                }))
            }
            Job::IdempotencyPurge => {
                let purged = self.housekeeping.purge_idempotency_keys(now).await?;
                Ok(json!({ "idempotency_keys": purged }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockHousekeeping, MockJobRunRepository, Purged};
    use crate::test_support::fixed_clock;

    fn recording() -> MockJobRunRepository {
        let mut runs = MockJobRunRepository::new();
        runs.expect_record().times(1).returning(|run| {
            Ok(JobRun {
                id: "run-1".into(),
                ..run.clone()
            })
        });
        runs
    }

    #[tokio::test]
    async fn the_retention_job_purges_what_is_older_than_the_policy_and_records_its_counts() {
        let now = fixed_clock().now();
        let mut housekeeping = MockHousekeeping::new();
        housekeeping
            .expect_purge_notifications()
            .withf(move |cutoff| *cutoff == now - TimeDelta::days(365))
            .times(1)
            .returning(|_| {
                Ok(Purged {
                    notifications: 2,
                    deliveries: 5,
                    attempts: 7,
                })
            });
        housekeeping
            .expect_purge_job_runs()
            .withf(move |cutoff| *cutoff == now - TimeDelta::days(30))
            .times(1)
            .returning(|_| Ok(3));
        let handler = RunJobHandler::new(
            Arc::new(housekeeping),
            Arc::new(recording()),
            Arc::new(fixed_clock()),
            RetentionPolicy::default(),
        );

        let run = handler
            .execute(RunJob {
                job: Job::Retention,
                trigger: JobTrigger::Api,
            })
            .await
            .unwrap();

        assert_eq!(run.id, "run-1");
        assert_eq!(run.status, JobStatus::Success);
        assert_eq!(run.trigger, JobTrigger::Api);
        assert_eq!(run.stats["notifications"], 2);
        assert_eq!(run.stats["deliveries"], 5);
        assert_eq!(run.stats["attempts"], 7);
        assert_eq!(run.stats["job_runs"], 3);
        assert_eq!(run.error, None);
    }

    #[tokio::test]
    async fn a_failing_job_is_recorded_as_an_error_with_its_cause() {
        let mut housekeeping = MockHousekeeping::new();
        housekeeping
            .expect_release_expired_leases()
            .returning(|_| Err(RepositoryError::Unavailable("disk I/O error".into())));
        let handler = RunJobHandler::new(
            Arc::new(housekeeping),
            Arc::new(recording()),
            Arc::new(fixed_clock()),
            RetentionPolicy::default(),
        );

        let run = handler
            .execute(RunJob {
                job: Job::LeaseReaper,
                trigger: JobTrigger::Schedule,
            })
            .await
            .unwrap();

        assert_eq!(run.status, JobStatus::Error);
        assert!(run.error.unwrap().contains("disk I/O error"));
    }
}
