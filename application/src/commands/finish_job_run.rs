//! `FinishJobRun`: an outside system ends a run it reported `running`
//! (`PATCH /api/v1/job-runs/{id}`); the duration is computed from the recorded start, and
//! `job.failed` is emitted when it ends `error` (issue 13, "External job runs").

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::ports::{
    Clock, Finished, JobAlerts, JobFailed, JobRun, JobRunEnd, JobRunRepository, JobSource,
    JobStatus, RepositoryError,
};

/// End the run `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishJobRun {
    /// The run's id.
    pub id: String,
    /// How it ended (never `running`; checked by the caller).
    pub status: JobStatus,
    /// A one-line summary; `None` keeps the recorded one.
    pub message: Option<String>,
    /// What it did, a JSON object; `None` keeps the recorded stats.
    pub stats: Option<serde_json::Value>,
    /// Why it failed.
    pub error_details: Option<String>,
    /// When it ended (UTC); `None`: now.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Why a run could not be ended.
#[derive(Debug, thiserror::Error)]
pub enum FinishJobRunError {
    /// No run has this id.
    #[error("no job run {0:?}")]
    NotFound(String),
    /// The run is not `running` (it ended already), or it is one of Clairon's own runs.
    #[error("job run {id} is {status}, not a running external run")]
    NotRunning {
        /// The run.
        id: String,
        /// Its status.
        status: &'static str,
    },
    /// `finished_at` is before the run's `started_at`.
    #[error("finished_at is before the run's started_at ({0})")]
    FinishedBeforeStart(DateTime<Utc>),
    /// The database failed; nothing changed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`FinishJobRun`].
pub struct FinishJobRunHandler {
    runs: Arc<dyn JobRunRepository>,
    alerts: Arc<dyn JobAlerts>,
    clock: Arc<dyn Clock>,
}

impl FinishJobRunHandler {
    /// Builds the handler on its ports.
    pub fn new(
        runs: Arc<dyn JobRunRepository>,
        alerts: Arc<dyn JobAlerts>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            runs,
            alerts,
            clock,
        }
    }

    /// Ends the run if it is a `running` external one and returns it as stored; emits
    /// `job.failed` when it ended `error`.
    ///
    /// # Errors
    /// [`FinishJobRunError`].
    pub async fn execute(&self, command: FinishJobRun) -> Result<JobRun, FinishJobRunError> {
        let run = self
            .runs
            .get(&command.id)
            .await?
            .ok_or_else(|| FinishJobRunError::NotFound(command.id.clone()))?;
        if run.status != JobStatus::Running || run.source != JobSource::External {
            return Err(FinishJobRunError::NotRunning {
                id: run.id,
                status: run.status.as_str(),
            });
        }
        let finished_at = command.finished_at.unwrap_or_else(|| self.clock.now());
        if finished_at < run.started_at {
            return Err(FinishJobRunError::FinishedBeforeStart(run.started_at));
        }
        let ms = (finished_at - run.started_at).num_milliseconds().max(0);
        let end = JobRunEnd {
            status: command.status,
            finished_at,
            duration_ms: Some(u64::try_from(ms).unwrap_or(0)),
            message: command.message,
            stats: command.stats,
            error: command.error_details,
        };
        let ended = match self.runs.finish(&command.id, &end).await? {
            Finished::Ended(run) => run,
            Finished::NotRunning(run) => {
                return Err(FinishJobRunError::NotRunning {
                    id: run.id,
                    status: run.status.as_str(),
                })
            }
            Finished::NotFound => return Err(FinishJobRunError::NotFound(command.id)),
        };
        if ended.status == JobStatus::Error {
            self.alerts
                .job_failed(&JobFailed {
                    job: ended.job.clone(),
                    run_id: ended.id.clone(),
                    message: ended.message.clone(),
                    error_details: ended.error.clone(),
                })
                .await;
        }
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{JobTrigger, MockJobAlerts, MockJobRunRepository};
    use crate::test_support::fixed_clock;
    use chrono::TimeDelta;

    fn running(source: JobSource, status: JobStatus) -> JobRun {
        let mut run = JobRun::internal(
            "sync-gazelle",
            JobTrigger::Schedule,
            fixed_clock().now() - TimeDelta::seconds(90),
        );
        run.id = "run-1".into();
        run.source = source;
        run.status = status;
        run
    }

    fn finish(status: JobStatus) -> FinishJobRun {
        FinishJobRun {
            id: "run-1".into(),
            status,
            message: Some("Gazelle timed out".into()),
            stats: None,
            error_details: Some("ReadTimeout".into()),
            finished_at: None,
        }
    }

    #[tokio::test]
    async fn a_running_external_run_ended_in_error_is_timed_from_its_start_and_alerts() {
        let mut runs = MockJobRunRepository::new();
        runs.expect_get()
            .returning(|_| Ok(Some(running(JobSource::External, JobStatus::Running))));
        runs.expect_finish()
            .withf(|id, end| id == "run-1" && end.duration_ms == Some(90_000))
            .times(1)
            .returning(|_, end| {
                let mut run = running(JobSource::External, end.status);
                run.error = end.error.clone();
                run.message = end.message.clone();
                Ok(Finished::Ended(run))
            });
        let mut alerts = MockJobAlerts::new();
        alerts
            .expect_job_failed()
            .withf(|a| {
                a.run_id == "run-1"
                    && a.message.as_deref() == Some("Gazelle timed out")
                    && a.error_details.as_deref() == Some("ReadTimeout")
            })
            .times(1)
            .return_const(());
        let handler =
            FinishJobRunHandler::new(Arc::new(runs), Arc::new(alerts), Arc::new(fixed_clock()));

        let run = handler.execute(finish(JobStatus::Error)).await.unwrap();

        assert_eq!(run.status, JobStatus::Error);
    }

    #[tokio::test]
    async fn a_run_that_already_ended_is_not_ended_again_and_does_not_alert() {
        let mut runs = MockJobRunRepository::new();
        runs.expect_get()
            .returning(|_| Ok(Some(running(JobSource::External, JobStatus::Success))));
        runs.expect_finish().never();
        let mut alerts = MockJobAlerts::new();
        alerts.expect_job_failed().never();
        let handler =
            FinishJobRunHandler::new(Arc::new(runs), Arc::new(alerts), Arc::new(fixed_clock()));

        let err = handler.execute(finish(JobStatus::Error)).await.unwrap_err();

        assert!(matches!(
            err,
            FinishJobRunError::NotRunning {
                status: "success",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn clairons_own_running_runs_cannot_be_ended_from_outside() {
        let mut runs = MockJobRunRepository::new();
        runs.expect_get()
            .returning(|_| Ok(Some(running(JobSource::Internal, JobStatus::Running))));
        let handler = FinishJobRunHandler::new(
            Arc::new(runs),
            Arc::new(MockJobAlerts::new()),
            Arc::new(fixed_clock()),
        );
        assert!(matches!(
            handler.execute(finish(JobStatus::Success)).await,
            Err(FinishJobRunError::NotRunning { .. })
        ));
    }
}
