//! `RunJob`: runs one job now — a built-in one or an HTTP job of `CLAIRON_JOBS_FILE` — records
//! the run in `job_runs`, then runs the jobs chained `after` it (or records them `skipped` when
//! it failed), and emits `job.failed` through [`JobAlerts`] for what failed (issue 13).
//!
//! What each built-in job does is decided here; how (the SQL) is the [`Housekeeping`] port's
//! business, an HTTP call the [`HttpJobClient`]'s, and when the [`crate::scheduler`]'s. A
//! scheduled occurrence is claimed first (its unique key in `job_runs`), so of several
//! processes one runs it; runs by hand may overlap, and the built-in jobs are idempotent.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use clairon_domain::jobs::JobName;
use serde_json::json;

use crate::dead_letters::DeadLetterAlert;
use crate::digests::DigestJob;
use crate::ports::{
    Clock, Finished, Housekeeping, HttpJobClient, HttpJobOutcome, HttpJobRequest, Job, JobAlerts,
    JobFailed, JobRun, JobRunEnd, JobRunQuery, JobRunRepository, JobSource, JobStatus, JobTrigger,
    RepositoryError,
};
use crate::scheduler::{JobCatalog, JobDefinition, JobWork};

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

/// Run `job` now (and the jobs chained after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunJob {
    /// Which job (built-in or from `CLAIRON_JOBS_FILE`).
    pub job: JobName,
    /// What asked for it.
    pub trigger: JobTrigger,
    /// The scheduled occurrence this run is, for the scheduler's runs: claimed first, so that
    /// of several processes only one runs it. `None` for runs by hand.
    pub occurrence: Option<DateTime<Utc>>,
}

impl RunJob {
    /// A run of `job` by hand (no occurrence).
    pub fn now(job: JobName, trigger: JobTrigger) -> Self {
        Self {
            job,
            trigger,
            occurrence: None,
        }
    }
}

/// Why a job could not be run or its run not recorded. A job that fails is not an error of
/// this command: its run is recorded with status `error` and returned.
#[derive(Debug, thiserror::Error)]
pub enum RunJobError {
    /// No job has this name.
    #[error("no job {job:?}; jobs are {known}")]
    UnknownJob {
        /// The name asked for.
        job: String,
        /// Every job's name.
        known: String,
    },
    /// The run happened (or failed) but its record could not be written.
    #[error("recording the job run failed: {0}")]
    Repository(#[from] RepositoryError),
}

/// The longest part of an HTTP job's answer kept in a run's `error`, in characters.
const MAX_ERROR_BODY: usize = 2000;

/// How long after its start a Clairon run still `running` is taken for abandoned (its process
/// stopped mid-run: killed, crashed, the machine lost) by the lease reaper: 1 hour, or, for a
/// jobs file job whose `timeout_s` is longer, its timeout and a minute more.
pub const ABANDONED_AFTER: TimeDelta = TimeDelta::hours(1);

/// The `message` of a run the lease reaper found abandoned.
pub const ABANDONED: &str = "abandoned: the process running it stopped";

/// Handles [`RunJob`].
pub struct RunJobHandler {
    housekeeping: Arc<dyn Housekeeping>,
    runs: Arc<dyn JobRunRepository>,
    clock: Arc<dyn Clock>,
    retention: RetentionPolicy,
    catalog: Arc<JobCatalog>,
    http: Option<Arc<dyn HttpJobClient>>,
    alerts: Option<Arc<dyn JobAlerts>>,
    digests: Option<Arc<DigestJob>>,
    dead_letters: Option<Arc<DeadLetterAlert>>,
}

impl RunJobHandler {
    /// Builds the handler on its ports, knowing the built-in jobs only (hourly; the scheduler's
    /// intervals come with [`RunJobHandler::with_catalog`]).
    pub fn new(
        housekeeping: Arc<dyn Housekeeping>,
        runs: Arc<dyn JobRunRepository>,
        clock: Arc<dyn Clock>,
        retention: RetentionPolicy,
    ) -> Self {
        let catalog = JobCatalog::new(JobCatalog::builtin(&[])).expect("built-in jobs are valid");
        Self {
            housekeeping,
            runs,
            clock,
            retention,
            catalog: Arc::new(catalog),
            http: None,
            alerts: None,
            digests: None,
            dead_letters: None,
        }
    }

    /// The same handler running the jobs of `catalog`.
    #[must_use]
    pub fn with_catalog(mut self, catalog: Arc<JobCatalog>) -> Self {
        self.catalog = catalog;
        self
    }

    /// The same handler calling HTTP jobs through `http` (without: an HTTP job's run is an
    /// `error`).
    #[must_use]
    pub fn with_http(mut self, http: Arc<dyn HttpJobClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// The same handler emitting `job.failed` through `alerts`.
    #[must_use]
    pub fn with_alerts(mut self, alerts: Arc<dyn JobAlerts>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// The same handler sending digests with `digests` (without: a `digests` run does
    /// nothing and says so in its stats).
    #[must_use]
    pub fn with_digests(mut self, digests: Arc<DigestJob>) -> Self {
        self.digests = Some(digests);
        self
    }

    /// The same handler checking the dead letters with `dead_letters` (without: a
    /// `dead_letter_alert` run does nothing and says so in its stats).
    #[must_use]
    pub fn with_dead_letters(mut self, dead_letters: Arc<DeadLetterAlert>) -> Self {
        self.dead_letters = Some(dead_letters);
        self
    }

    /// The jobs this handler runs.
    pub fn catalog(&self) -> &JobCatalog {
        &self.catalog
    }

    /// Emits `job.failed` for `run` (an `error` run, or a chained run skipped because its
    /// parent failed).
    async fn alert(&self, run: &JobRun) {
        if let Some(alerts) = &self.alerts {
            alerts
                .job_failed(&JobFailed {
                    job: run.job.clone(),
                    run_id: run.id.clone(),
                    message: run.message.clone(),
                    error_details: run.error.clone(),
                })
                .await;
        }
    }

    /// Runs the job, times it, records the run (status `success` with its stats, or `error`
    /// with the cause), then the jobs chained after it — each run when its parent succeeded,
    /// else recorded `skipped` with the reason — and returns the recorded runs, the job's
    /// first, then its chain depth first. Empty when `command.occurrence` was already claimed
    /// by another process (nothing ran). Every `error` run and every run skipped for a failed
    /// parent emits `job.failed`.
    ///
    /// # Errors
    /// [`RunJobError::UnknownJob`]; [`RunJobError::Repository`] when a run cannot be recorded
    /// (the chain stops there).
    #[tracing::instrument(name = "job", skip_all, fields(job = %command.job, trigger = command.trigger.as_str()))]
    pub async fn execute(&self, command: RunJob) -> Result<Vec<JobRun>, RunJobError> {
        let definition =
            self.catalog
                .get(command.job.as_str())
                .ok_or_else(|| RunJobError::UnknownJob {
                    job: command.job.to_string(),
                    known: self.catalog.names(),
                })?;
        let mut started =
            JobRun::internal(definition.name.as_str(), command.trigger, self.clock.now());
        started.task_type = definition.task_type;
        started.occurrence = command.occurrence;
        let run = match self.runs.record(&started).await {
            Ok(run) => run,
            Err(RepositoryError::Conflict(_)) if command.occurrence.is_some() => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e.into()),
        };
        let first = self.perform(definition, run).await?;
        let mut done = vec![first];
        let mut parents = vec![0];
        while let Some(index) = parents.pop() {
            let parent = done[index].clone();
            for child in self.catalog.children(&parent.job) {
                let run = if parent.status.succeeded() {
                    let mut started =
                        JobRun::internal(child.name.as_str(), parent.trigger, self.clock.now());
                    started.task_type = child.task_type;
                    started.parent_run_id = Some(parent.id.clone());
                    let run = self.runs.record(&started).await?;
                    self.perform(child, run).await?
                } else {
                    self.skip(child, &parent).await?
                };
                done.push(run);
                parents.push(done.len() - 1);
            }
        }
        Ok(done)
    }

    /// Records `child` as `skipped` because `parent` did not succeed, and alerts.
    async fn skip(
        &self,
        child: &JobDefinition,
        parent: &JobRun,
    ) -> Result<JobRun, RepositoryError> {
        let now = self.clock.now();
        let mut run = JobRun::internal(child.name.as_str(), parent.trigger, now);
        run.task_type = child.task_type;
        run.parent_run_id = Some(parent.id.clone());
        run.finished_at = Some(now);
        run.duration_ms = Some(0);
        run.status = JobStatus::Skipped;
        run.message = Some(format!(
            "not run: the job it runs after, {}, ended {} (run {})",
            parent.job,
            parent.status.as_str(),
            parent.id
        ));
        run.error = parent.error.clone();
        let run = self.runs.record(&run).await?;
        tracing::warn!(job = %run.job, parent = %parent.job, "chained job skipped: its parent failed");
        self.alert(&run).await;
        Ok(run)
    }

    /// Does `definition`'s work for the `running` run `run` and records how it ended.
    async fn perform(
        &self,
        definition: &JobDefinition,
        run: JobRun,
    ) -> Result<JobRun, RepositoryError> {
        let timer = Instant::now();
        let (status, stats, message, error) = match &definition.work {
            JobWork::Builtin(job) => match self.work(*job).await {
                Ok(stats) => (JobStatus::Success, stats, None, None),
                Err(e) => (JobStatus::Error, json!({}), None, Some(e.to_string())),
            },
            JobWork::Http(request) => self.call(request).await,
        };
        let duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
        if status == JobStatus::Error {
            tracing::error!(
                duration_ms,
                error = error.as_deref().unwrap_or(""),
                "job run failed"
            );
        } else {
            tracing::info!(duration_ms, stats = %stats, "job run succeeded");
        }
        let end = JobRunEnd {
            status,
            finished_at: self.clock.now(),
            duration_ms: Some(duration_ms),
            message,
            stats: Some(stats),
            error,
        };
        let ended = match self.runs.finish(&run.id, &end).await? {
            Finished::Ended(run) => run,
            Finished::NotRunning(other) => other,
            Finished::NotFound => {
                return Err(RepositoryError::Corrupt(format!(
                    "job run {} vanished while it ran",
                    run.id
                )))
            }
        };
        if ended.status == JobStatus::Error {
            self.alert(&ended).await;
        }
        Ok(ended)
    }

    /// Calls an HTTP job: `2xx` is a success whose JSON-object body is the stats; any other
    /// status, or no answer within the timeout, is an error with the details.
    async fn call(
        &self,
        request: &HttpJobRequest,
    ) -> (JobStatus, serde_json::Value, Option<String>, Option<String>) {
        let target = format!("{} {}", request.method, request.url);
        let Some(http) = &self.http else {
            return (
                JobStatus::Error,
                json!({}),
                Some(format!("{target}: not called")),
                Some("this process has no HTTP client for jobs".into()),
            );
        };
        match http.call(request).await {
            HttpJobOutcome::Answered { status, body } if (200..300).contains(&status) => {
                let stats = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .filter(serde_json::Value::is_object)
                    .unwrap_or_else(|| json!({}));
                (
                    JobStatus::Success,
                    stats,
                    Some(format!("{target} answered {status}")),
                    None,
                )
            }
            HttpJobOutcome::Answered { status, body } => (
                JobStatus::Error,
                json!({}),
                Some(format!("{target} answered {status}")),
                Some(format!(
                    "HTTP {status}: {}",
                    body.chars().take(MAX_ERROR_BODY).collect::<String>()
                )),
            ),
            HttpJobOutcome::Failed(cause) => (
                JobStatus::Error,
                json!({}),
                Some(format!("{target}: no answer")),
                Some(cause),
            ),
        }
    }

    async fn work(&self, job: Job) -> Result<serde_json::Value, RepositoryError> {
        let now = self.clock.now();
        match job {
            Job::LeaseReaper => {
                let released = self.housekeeping.release_expired_leases(now).await?;
                let abandoned = self.abandon_orphaned_runs(now).await?;
                Ok(json!({ "released": released, "abandoned_runs": abandoned }))
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
            Job::Digests => match &self.digests {
                Some(digests) => Ok(digests.run().await?.to_json()),
                None => Ok(json!({ "sent": 0, "configured": false })),
            },
            Job::DeadLetterAlert => match &self.dead_letters {
                Some(check) => Ok(check.check().await?.to_json()),
                None => Ok(json!({ "raised": false, "configured": false })),
            },
        }
    }

    /// How long a run of `job` may stay `running` before it is taken for abandoned:
    /// [`ABANDONED_AFTER`], or an HTTP job's timeout and a minute more when that is longer.
    fn abandon_after(&self, job: &str) -> TimeDelta {
        match self.catalog.get(job).map(|d| &d.work) {
            Some(JobWork::Http(request)) => TimeDelta::from_std(request.timeout)
                .ok()
                .and_then(|t| t.checked_add(&TimeDelta::minutes(1)))
                .map_or(ABANDONED_AFTER, |t| t.max(ABANDONED_AFTER)),
            _ => ABANDONED_AFTER,
        }
    }

    /// Ends as `error` ([`ABANDONED`]) every Clairon run still `running` longer than its job
    /// may run ([`RunJobHandler::abandon_after`]) at `now`: the process running it stopped
    /// before recording its end (outside systems' runs are theirs to end). Each is ended by the
    /// conditional [`JobRunRepository::finish`] (two reapers cannot both end it) and emits
    /// `job.failed` like any error. Returns how many were ended.
    async fn abandon_orphaned_runs(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let mut abandoned = 0;
        let mut cursor = None;
        loop {
            let page = self
                .runs
                .list(&JobRunQuery {
                    job: None,
                    status: Some(JobStatus::Running),
                    source: Some(JobSource::Internal),
                    limit: 100,
                    cursor,
                })
                .await?;
            for run in &page.items {
                let limit = self.abandon_after(&run.job);
                let running_for = now - run.started_at;
                if running_for < limit {
                    continue;
                }
                let end = JobRunEnd {
                    status: JobStatus::Error,
                    finished_at: now,
                    duration_ms: None,
                    message: Some(ABANDONED.to_owned()),
                    stats: None,
                    error: Some(format!(
                        "still running {} min after it started at {} (a run of {} may take {} min): the process running it stopped before recording how it ended",
                        running_for.num_minutes(),
                        run.started_at.to_rfc3339(),
                        run.job,
                        limit.num_minutes()
                    )),
                };
                if let Finished::Ended(ended) = self.runs.finish(&run.id, &end).await? {
                    abandoned += 1;
                    tracing::warn!(job = %ended.job, run_id = %ended.id, "abandoned job run ended as error");
                    self.alert(&ended).await;
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(abandoned)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::ports::{
        JobRunPage, MockHousekeeping, MockHttpJobClient, MockJobAlerts, Purged, TaskType,
    };
    use crate::scheduler::JobTiming;
    use crate::test_support::fixed_clock;
    use async_trait::async_trait;
    use clairon_domain::jobs::CronSchedule;
    use clairon_domain::TimeZone;

    /// `job_runs` in memory: ids `run-1`, `run-2`…; an occurrence taken twice is a conflict.
    #[derive(Default)]
    struct Runs(Mutex<Vec<JobRun>>);

    #[async_trait]
    impl JobRunRepository for Runs {
        async fn record(&self, run: &JobRun) -> Result<JobRun, RepositoryError> {
            let mut runs = self.0.lock().unwrap();
            if run.occurrence.is_some()
                && runs
                    .iter()
                    .any(|r| r.job == run.job && r.occurrence == run.occurrence)
            {
                return Err(RepositoryError::Conflict("occurrence taken".into()));
            }
            let stored = JobRun {
                id: format!("run-{}", runs.len() + 1),
                ..run.clone()
            };
            runs.push(stored.clone());
            Ok(stored)
        }

        async fn finish(&self, id: &str, end: &JobRunEnd) -> Result<Finished, RepositoryError> {
            let mut runs = self.0.lock().unwrap();
            let Some(run) = runs.iter_mut().find(|r| r.id == id) else {
                return Ok(Finished::NotFound);
            };
            if run.status != JobStatus::Running {
                return Ok(Finished::NotRunning(run.clone()));
            }
            run.status = end.status;
            run.finished_at = Some(end.finished_at);
            run.duration_ms = end.duration_ms.or(Some(0));
            run.message = end.message.clone().or(run.message.take());
            if let Some(stats) = &end.stats {
                run.stats = stats.clone();
            }
            run.error = end.error.clone().or(run.error.take());
            Ok(Finished::Ended(run.clone()))
        }

        async fn get(&self, id: &str) -> Result<Option<JobRun>, RepositoryError> {
            Ok(self.0.lock().unwrap().iter().find(|r| r.id == id).cloned())
        }

        async fn list(&self, query: &JobRunQuery) -> Result<JobRunPage, RepositoryError> {
            let runs = self.0.lock().unwrap();
            let items = runs
                .iter()
                .rev()
                .filter(|r| query.status.is_none_or(|s| r.status == s))
                .filter(|r| query.source.is_none_or(|s| r.source == s))
                .cloned()
                .collect();
            Ok(JobRunPage {
                items,
                next_cursor: None,
            })
        }
    }

    fn http_job(name: &str, url: &str, timing: JobTiming) -> JobDefinition {
        JobDefinition {
            name: JobName::parse(name).unwrap(),
            work: JobWork::Http(HttpJobRequest {
                method: "POST".into(),
                url: url.into(),
                timeout: Duration::from_secs(5),
            }),
            timing,
            task_type: TaskType::Sync,
        }
    }

    /// The built-in jobs, `sync-gazelle` at 01:00 in Montreal and `timeline-report` after it.
    fn chain() -> Arc<JobCatalog> {
        let zone = TimeZone::parse("America/Montreal").unwrap();
        let mut jobs = JobCatalog::builtin(&[]);
        jobs.push(http_job(
            "sync-gazelle",
            "http://jobs.test/sync",
            JobTiming::Cron(Box::new(CronSchedule::parse("0 1 * * *", zone).unwrap())),
        ));
        jobs.push(http_job(
            "timeline-report",
            "http://jobs.test/report",
            JobTiming::After(JobName::parse("sync-gazelle").unwrap()),
        ));
        Arc::new(JobCatalog::new(jobs).unwrap())
    }

    fn answering(sync: u16, sync_body: &'static str) -> MockHttpJobClient {
        let mut http = MockHttpJobClient::new();
        http.expect_call().returning(move |request| {
            if request.url.ends_with("/sync") {
                HttpJobOutcome::Answered {
                    status: sync,
                    body: sync_body.into(),
                }
            } else {
                HttpJobOutcome::Answered {
                    status: 200,
                    body: r#"{"pages": 3}"#.into(),
                }
            }
        });
        http
    }

    fn handler(runs: Arc<Runs>, http: MockHttpJobClient, alerts: MockJobAlerts) -> RunJobHandler {
        RunJobHandler::new(
            Arc::new(MockHousekeeping::new()),
            runs,
            Arc::new(fixed_clock()),
            RetentionPolicy::default(),
        )
        .with_catalog(chain())
        .with_http(Arc::new(http))
        .with_alerts(Arc::new(alerts))
    }

    fn by_hand(job: &str) -> RunJob {
        RunJob::now(JobName::parse(job).unwrap(), JobTrigger::Manual)
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
            Arc::new(Runs::default()),
            Arc::new(fixed_clock()),
            RetentionPolicy::default(),
        );

        let runs = handler
            .execute(RunJob::now(
                JobName::parse("retention").unwrap(),
                JobTrigger::Api,
            ))
            .await
            .unwrap();

        let run = &runs[0];
        assert_eq!(runs.len(), 1);
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
    async fn a_failing_job_is_recorded_as_an_error_with_its_cause_and_alerts_once() {
        let mut housekeeping = MockHousekeeping::new();
        housekeeping
            .expect_release_expired_leases()
            .returning(|_| Err(RepositoryError::Unavailable("disk I/O error".into())));
        let mut alerts = MockJobAlerts::new();
        alerts
            .expect_job_failed()
            .withf(|alert| {
                alert.job == "lease_reaper"
                    && alert.run_id == "run-1"
                    && alert
                        .error_details
                        .as_deref()
                        .is_some_and(|e| e.contains("disk I/O error"))
            })
            .times(1)
            .return_const(());
        let handler = RunJobHandler::new(
            Arc::new(housekeeping),
            Arc::new(Runs::default()),
            Arc::new(fixed_clock()),
            RetentionPolicy::default(),
        )
        .with_alerts(Arc::new(alerts));

        let runs = handler
            .execute(RunJob::now(
                JobName::parse("lease_reaper").unwrap(),
                JobTrigger::Schedule,
            ))
            .await
            .unwrap();

        assert_eq!(runs[0].status, JobStatus::Error);
        assert!(runs[0].error.as_deref().unwrap().contains("disk I/O error"));
    }

    #[tokio::test]
    async fn a_chained_job_runs_after_its_parent_succeeded_with_the_parent_run_id_and_no_alert() {
        let runs = Arc::new(Runs::default());
        let mut alerts = MockJobAlerts::new();
        alerts.expect_job_failed().never();
        let handler = handler(
            runs.clone(),
            answering(200, r#"{"clients": 50, "pianos": 100}"#),
            alerts,
        );

        let done = handler.execute(by_hand("sync-gazelle")).await.unwrap();

        assert_eq!(done.len(), 2);
        let (sync, report) = (&done[0], &done[1]);
        assert_eq!(sync.job, "sync-gazelle");
        assert_eq!(sync.status, JobStatus::Success);
        assert_eq!(sync.stats["pianos"], 100, "a JSON object body is the stats");
        assert_eq!(sync.task_type, TaskType::Sync);
        assert_eq!(report.job, "timeline-report");
        assert_eq!(report.status, JobStatus::Success);
        assert_eq!(report.parent_run_id.as_deref(), Some(sync.id.as_str()));
        assert_eq!(
            report.trigger,
            JobTrigger::Manual,
            "the chain follows its trigger"
        );
        assert_eq!(report.stats["pages"], 3);
    }

    #[tokio::test]
    async fn when_the_parent_fails_the_chained_job_is_skipped_with_the_reason_and_both_alert() {
        let runs = Arc::new(Runs::default());
        let mut http = MockHttpJobClient::new();
        http.expect_call()
            .withf(|r| r.url.ends_with("/sync"))
            .times(1)
            .returning(|_| HttpJobOutcome::Answered {
                status: 500,
                body: "Gazelle API down".into(),
            });
        let mut alerts = MockJobAlerts::new();
        alerts
            .expect_job_failed()
            .withf(|a| a.job == "sync-gazelle" && a.run_id == "run-1")
            .times(1)
            .return_const(());
        alerts
            .expect_job_failed()
            .withf(|a| {
                a.job == "timeline-report"
                    && a.run_id == "run-2"
                    && a.message
                        .as_deref()
                        .is_some_and(|m| m.contains("sync-gazelle"))
            })
            .times(1)
            .return_const(());
        let handler = handler(runs.clone(), http, alerts);

        let done = handler.execute(by_hand("sync-gazelle")).await.unwrap();

        let (sync, report) = (&done[0], &done[1]);
        assert_eq!(sync.status, JobStatus::Error);
        assert!(sync
            .error
            .as_deref()
            .unwrap()
            .contains("HTTP 500: Gazelle API down"));
        assert_eq!(report.status, JobStatus::Skipped);
        assert_eq!(report.parent_run_id.as_deref(), Some("run-1"));
        assert!(report.message.as_deref().unwrap().contains("ended error"));
    }

    #[tokio::test]
    async fn an_http_job_without_an_answer_is_an_error_with_the_cause() {
        let mut http = MockHttpJobClient::new();
        http.expect_call()
            .returning(|_| HttpJobOutcome::Failed("timed out after 600 s".into()));
        let mut alerts = MockJobAlerts::new();
        alerts.expect_job_failed().times(2).return_const(());
        let handler = handler(Arc::new(Runs::default()), http, alerts);

        let done = handler.execute(by_hand("sync-gazelle")).await.unwrap();

        assert_eq!(done[0].status, JobStatus::Error);
        assert_eq!(done[0].error.as_deref(), Some("timed out after 600 s"));
    }

    #[tokio::test]
    async fn an_occurrence_another_process_claimed_is_not_run_again() {
        let runs = Arc::new(Runs::default());
        let mut http = MockHttpJobClient::new();
        http.expect_call()
            .times(2)
            .returning(|_| HttpJobOutcome::Answered {
                status: 204,
                body: String::new(),
            });
        let mut alerts = MockJobAlerts::new();
        alerts.expect_job_failed().never();
        let handler = handler(runs.clone(), http, alerts);
        let occurrence = fixed_clock().now();
        let scheduled = RunJob {
            job: JobName::parse("sync-gazelle").unwrap(),
            trigger: JobTrigger::Schedule,
            occurrence: Some(occurrence),
        };

        let first = handler.execute(scheduled.clone()).await.unwrap();
        let second = handler.execute(scheduled).await.unwrap();

        assert_eq!(first.len(), 2, "the job and its chained one");
        assert!(second.is_empty());
        assert_eq!(runs.0.lock().unwrap().len(), 2);
        assert_eq!(first[0].stats, json!({}), "an empty body is no stats");
    }

    #[tokio::test]
    async fn the_lease_reaper_ends_an_internal_run_left_running_over_an_hour_as_abandoned_and_alerts(
    ) {
        let now = fixed_clock().now();
        let runs = Arc::new(Runs::default());
        let seed = |job: &str, source: JobSource, started: TimeDelta| {
            let mut run = JobRun::internal(job, JobTrigger::Schedule, now - started);
            run.source = source;
            runs.0.lock().unwrap().push(JobRun {
                id: format!("seed-{job}"),
                ..run
            });
        };
        seed("retention", JobSource::Internal, TimeDelta::minutes(61));
        seed("digests", JobSource::Internal, TimeDelta::minutes(10));
        seed("inventory-sync", JobSource::External, TimeDelta::hours(5));
        // A jobs file job whose timeout is longer than the hour may run that long.
        seed("sync-gazelle", JobSource::Internal, TimeDelta::minutes(90));
        let mut housekeeping = MockHousekeeping::new();
        housekeeping
            .expect_release_expired_leases()
            .returning(|_| Ok(0));
        let mut alerts = MockJobAlerts::new();
        alerts
            .expect_job_failed()
            .withf(|a| {
                a.job == "retention"
                    && a.run_id == "seed-retention"
                    && a.message.as_deref() == Some(ABANDONED)
            })
            .times(1)
            .return_const(());
        let mut jobs = JobCatalog::builtin(&[]);
        let mut long = http_job(
            "sync-gazelle",
            "http://jobs.test/sync",
            JobTiming::After(JobName::parse("retention").unwrap()),
        );
        long.work = JobWork::Http(HttpJobRequest {
            method: "POST".into(),
            url: "http://jobs.test/sync".into(),
            timeout: Duration::from_secs(2 * 3600),
        });
        jobs.push(long);
        let handler = RunJobHandler::new(
            Arc::new(housekeeping),
            runs.clone(),
            Arc::new(fixed_clock()),
            RetentionPolicy::default(),
        )
        .with_catalog(Arc::new(JobCatalog::new(jobs).unwrap()))
        .with_alerts(Arc::new(alerts));

        let done = handler.execute(by_hand("lease_reaper")).await.unwrap();

        assert_eq!(done[0].status, JobStatus::Success);
        assert_eq!(done[0].stats["abandoned_runs"], 1, "{}", done[0].stats);
        let status = |id: &str| {
            let all = runs.0.lock().unwrap();
            let run = all.iter().find(|r| r.id == id).unwrap().clone();
            (run.status, run.message, run.error)
        };
        let (abandoned, message, error) = status("seed-retention");
        assert_eq!(abandoned, JobStatus::Error);
        assert_eq!(message.as_deref(), Some(ABANDONED));
        assert!(error.unwrap().contains("61 min"));
        assert_eq!(
            status("seed-digests").0,
            JobStatus::Running,
            "ten minutes is not abandoned"
        );
        assert_eq!(
            status("seed-inventory-sync").0,
            JobStatus::Running,
            "an outside system ends its own runs"
        );
        assert_eq!(
            status("seed-sync-gazelle").0,
            JobStatus::Running,
            "within its timeout"
        );
    }

    #[tokio::test]
    async fn an_unknown_job_is_refused_naming_the_known_ones() {
        let handler = handler(
            Arc::new(Runs::default()),
            MockHttpJobClient::new(),
            MockJobAlerts::new(),
        );
        let err = handler.execute(by_hand("coffee")).await.unwrap_err();
        assert!(err.to_string().contains("timeline-report"), "{err}");
    }
}
