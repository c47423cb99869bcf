//! `ReportJobRun`: an outside system reports a run of one of its jobs (`POST /api/v1/job-runs`,
//! seed 003's `sync_logs`): recorded in `job_runs` with source `external`, and `job.failed`
//! emitted when it is reported as ended `error` (issue 13, "External job runs").

use std::sync::Arc;

use chrono::{DateTime, Utc};
use clairon_domain::jobs::JobName;

use crate::ports::{
    Clock, JobAlerts, JobFailed, JobRun, JobRunRepository, JobSource, JobStatus, JobTrigger,
    RepositoryError, TaskType,
};

/// A reported run, already checked field by field by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportJobRun {
    /// The job's name in the outside system.
    pub job: JobName,
    /// What kind of work.
    pub task_type: TaskType,
    /// `running` (to be finished by [`crate::commands::FinishJobRun`]) or how it ended.
    pub status: JobStatus,
    /// A one-line summary.
    pub message: Option<String>,
    /// What it did, a JSON object (`{}` when not given).
    pub stats: serde_json::Value,
    /// Why it failed.
    pub error_details: Option<String>,
    /// What started it.
    pub trigger: JobTrigger,
    /// Who started it by hand.
    pub triggered_by_user: Option<String>,
    /// When it started (UTC); `None`: now.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (UTC), for a run reported ended; `None`: now. Ignored for `running`.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReportJobRunError {
    /// `finished_at` is before `started_at`.
    #[error("finished_at is before started_at")]
    FinishedBeforeStart,
    /// The database failed; nothing was recorded.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`ReportJobRun`].
pub struct ReportJobRunHandler {
    runs: Arc<dyn JobRunRepository>,
    alerts: Arc<dyn JobAlerts>,
    clock: Arc<dyn Clock>,
}

impl ReportJobRunHandler {
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

    /// Records the run (its duration `finished_at - started_at` when it ended) and returns it
    /// as stored; emits `job.failed` when its status is `error`.
    ///
    /// # Errors
    /// [`ReportJobRunError`].
    pub async fn execute(&self, report: ReportJobRun) -> Result<JobRun, ReportJobRunError> {
        let now = self.clock.now();
        let started_at = report.started_at.unwrap_or(now);
        let (finished_at, duration_ms) = if report.status == JobStatus::Running {
            (None, None)
        } else {
            let finished_at = report.finished_at.unwrap_or(now).max(started_at);
            if report.finished_at.is_some_and(|f| f < started_at) {
                return Err(ReportJobRunError::FinishedBeforeStart);
            }
            let ms = (finished_at - started_at).num_milliseconds().max(0);
            (Some(finished_at), Some(u64::try_from(ms).unwrap_or(0)))
        };
        let run = JobRun {
            id: String::new(),
            job: report.job.to_string(),
            source: JobSource::External,
            task_type: report.task_type,
            trigger: report.trigger,
            triggered_by_user: report.triggered_by_user,
            parent_run_id: None,
            occurrence: None,
            started_at,
            finished_at,
            duration_ms,
            status: report.status,
            message: report.message,
            stats: report.stats,
            error: report.error_details,
        };
        let run = self.runs.record(&run).await?;
        if run.status == JobStatus::Error {
            self.alerts
                .job_failed(&JobFailed {
                    job: run.job.clone(),
                    run_id: run.id.clone(),
                    message: run.message.clone(),
                    error_details: run.error.clone(),
                })
                .await;
        }
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockJobAlerts, MockJobRunRepository};
    use crate::test_support::fixed_clock;
    use chrono::TimeDelta;
    use rstest::rstest;

    fn report(status: JobStatus) -> ReportJobRun {
        ReportJobRun {
            job: JobName::parse("sync-gazelle").unwrap(),
            task_type: TaskType::Sync,
            status,
            message: None,
            stats: serde_json::json!({"clients": 50}),
            error_details: None,
            trigger: JobTrigger::Schedule,
            triggered_by_user: None,
            started_at: Some(fixed_clock().now() - TimeDelta::seconds(12)),
            finished_at: None,
        }
    }

    fn storing() -> MockJobRunRepository {
        let mut runs = MockJobRunRepository::new();
        runs.expect_record().returning(|run| {
            Ok(JobRun {
                id: "run-9".into(),
                ..run.clone()
            })
        });
        runs
    }

    #[rstest]
    #[case::error(JobStatus::Error, 1)]
    #[case::success(JobStatus::Success, 0)]
    #[case::warning(JobStatus::Warning, 0)]
    #[case::running(JobStatus::Running, 0)]
    #[tokio::test]
    async fn a_reported_run_alerts_only_when_it_ended_in_error(
        #[case] status: JobStatus,
        #[case] alerts_expected: usize,
    ) {
        let mut alerts = MockJobAlerts::new();
        alerts
            .expect_job_failed()
            .withf(|a| a.job == "sync-gazelle" && a.run_id == "run-9")
            .times(alerts_expected)
            .return_const(());
        let handler = ReportJobRunHandler::new(
            Arc::new(storing()),
            Arc::new(alerts),
            Arc::new(fixed_clock()),
        );

        let run = handler.execute(report(status)).await.unwrap();

        assert_eq!(run.source, JobSource::External);
        if status == JobStatus::Running {
            assert_eq!((run.finished_at, run.duration_ms), (None, None));
        } else {
            assert_eq!(
                run.duration_ms,
                Some(12_000),
                "finished now, started 12 s ago"
            );
        }
    }

    #[tokio::test]
    async fn a_run_finished_before_it_started_is_refused() {
        let handler = ReportJobRunHandler::new(
            Arc::new(MockJobRunRepository::new()),
            Arc::new(MockJobAlerts::new()),
            Arc::new(fixed_clock()),
        );
        let mut bad = report(JobStatus::Success);
        bad.finished_at = Some(fixed_clock().now() - TimeDelta::hours(1));
        assert!(matches!(
            handler.execute(bad).await,
            Err(ReportJobRunError::FinishedBeforeStart)
        ));
    }
}
