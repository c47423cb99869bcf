//! The scheduler: which jobs exist ([`JobCatalog`]: the built-in ones and those of
//! `CLAIRON_JOBS_FILE`), when each runs ([`JobTiming`]), and the loop that runs one job's
//! occurrences ([`JobScheduler::run_schedule`]) through [`RunJobHandler`], reading time from the
//! [`Clock`] and waiting on the [`Timer`].
//!
//! Several processes may run the same schedule: each occurrence is claimed in `job_runs` by its
//! unique key (job + occurrence) before the work starts, so only one process does it (issue 13:
//! "several processes never run the same scheduled occurrence twice").

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use clairon_domain::jobs::{check_chains, ChainError, CronSchedule, JobName};

use crate::commands::{RunJob, RunJobHandler};
use crate::ports::{Clock, HttpJobRequest, Job, JobTrigger, TaskType, Timer};

/// When a job runs by itself.
#[derive(Debug, Clone, PartialEq)]
pub enum JobTiming {
    /// At every multiple of this interval since the Unix epoch (UTC): every process computes
    /// the same occurrences, so they share them. The built-in jobs.
    Every(Duration),
    /// At each occurrence of a cron schedule in its time zone.
    Cron(Box<CronSchedule>),
    /// Right after each successful run of the job named here (and skipped, recorded as such,
    /// when that run fails).
    After(JobName),
}

impl JobTiming {
    /// The first occurrence strictly after `after`; `None` for a chained job (it has none of
    /// its own) or a cron schedule that never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(every) => {
                let step = i64::try_from(every.as_millis())
                    .unwrap_or(i64::MAX)
                    .max(1000);
                let now = after.timestamp_millis();
                let next = (now.div_euclid(step) + 1).checked_mul(step)?;
                DateTime::from_timestamp_millis(next)
            }
            Self::Cron(schedule) => schedule.next_after(after),
            Self::After(_) => None,
        }
    }
}

/// What a job does.
#[derive(Debug, Clone, PartialEq)]
pub enum JobWork {
    /// A built-in housekeeping job.
    Builtin(Job),
    /// Calls an HTTP endpoint: `2xx` is a success (a JSON object body becomes the stats),
    /// anything else or no answer is an error.
    Http(HttpJobRequest),
}

/// One job the scheduler knows.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDefinition {
    /// Its name (unique).
    pub name: JobName,
    /// What it does.
    pub work: JobWork,
    /// When it runs.
    pub timing: JobTiming,
    /// The `task_type` its runs are recorded with.
    pub task_type: TaskType,
}

/// Why a set of jobs is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Two jobs have one name (a file job named like a built-in one, or twice in the file).
    #[error("job {0:?}: name: another job has this name")]
    Duplicate(String),
    /// A chain names an unknown job or loops.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// Every job of this process: the built-in ones first, then the file's, each name once, every
/// chain leading to a known job without cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCatalog {
    jobs: Vec<JobDefinition>,
}

impl JobCatalog {
    /// The built-in jobs on `intervals` (one per [`Job`]; a job missing there runs hourly).
    pub fn builtin(intervals: &[(Job, Duration)]) -> Vec<JobDefinition> {
        Job::ALL
            .into_iter()
            .map(|job| JobDefinition {
                name: JobName::parse(job.as_str()).expect("built-in names are valid"),
                work: JobWork::Builtin(job),
                timing: JobTiming::Every(
                    intervals
                        .iter()
                        .find(|(j, _)| *j == job)
                        .map_or(Duration::from_secs(3600), |(_, every)| *every),
                ),
                task_type: TaskType::Other,
            })
            .collect()
    }

    /// A catalog of `jobs`.
    ///
    /// # Errors
    /// [`CatalogError`] for a name given twice, a chain to an unknown job or a cycle.
    pub fn new(jobs: Vec<JobDefinition>) -> Result<Self, CatalogError> {
        let mut seen = BTreeMap::new();
        for job in &jobs {
            if seen.insert(job.name.as_str(), ()).is_some() {
                return Err(CatalogError::Duplicate(job.name.to_string()));
            }
        }
        check_chains(jobs.iter().map(|j| {
            let after = match &j.timing {
                JobTiming::After(parent) => Some(parent.as_str()),
                _ => None,
            };
            (j.name.as_str(), after)
        }))?;
        Ok(Self { jobs })
    }

    /// Every job, built-in ones first.
    pub fn jobs(&self) -> &[JobDefinition] {
        &self.jobs
    }

    /// The job named `name`.
    pub fn get(&self, name: &str) -> Option<&JobDefinition> {
        self.jobs.iter().find(|j| j.name.as_str() == name)
    }

    /// The jobs chained `after` the job `name`, in catalog order.
    pub fn children(&self, name: &str) -> Vec<&JobDefinition> {
        self.jobs
            .iter()
            .filter(|j| matches!(&j.timing, JobTiming::After(p) if p.as_str() == name))
            .collect()
    }

    /// Every job's name, comma-separated (for error messages).
    pub fn names(&self) -> String {
        self.jobs
            .iter()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs jobs at their occurrences.
pub struct JobScheduler {
    run_job: Arc<RunJobHandler>,
    clock: Arc<dyn Clock>,
    timer: Arc<dyn Timer>,
}

impl JobScheduler {
    /// A scheduler running jobs through `run_job`.
    pub fn new(run_job: Arc<RunJobHandler>, clock: Arc<dyn Clock>, timer: Arc<dyn Timer>) -> Self {
        Self {
            run_job,
            clock,
            timer,
        }
    }

    /// The jobs that run by themselves (a schedule of their own, not chained).
    pub fn scheduled(&self) -> Vec<JobName> {
        self.run_job
            .catalog()
            .jobs()
            .iter()
            .filter(|j| !matches!(j.timing, JobTiming::After(_)))
            .map(|j| j.name.clone())
            .collect()
    }

    /// Runs the occurrence `occurrence` of `job` (trigger `schedule`) unless another process
    /// already claimed it, with the jobs chained after it. Errors are logged: a failing run is
    /// recorded, and a run that cannot be recorded is tried again at the next occurrence.
    pub async fn run_occurrence(&self, job: &JobName, occurrence: DateTime<Utc>) {
        let command = RunJob {
            job: job.clone(),
            trigger: JobTrigger::Schedule,
            occurrence: Some(occurrence),
        };
        match self.run_job.execute(command).await {
            Ok(runs) if runs.is_empty() => {
                tracing::debug!(job = %job, %occurrence, "occurrence taken by another process");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(job = %job, error = %e, "scheduled job run failed to start"),
        }
    }

    /// Runs `job` at each of its occurrences until `stop` resolves (a run in progress finishes
    /// first). Occurrences missed while a run lasted, or while no process ran, are not caught
    /// up: the next one is computed from the time the wait starts.
    pub async fn run_schedule(&self, job: &JobName, stop: impl Future<Output = ()>) {
        let Some(timing) = self
            .run_job
            .catalog()
            .get(job.as_str())
            .map(|j| j.timing.clone())
        else {
            return;
        };
        let mut stop = std::pin::pin!(stop);
        loop {
            let now = self.clock.now();
            let Some(next) = timing.next_after(now) else {
                tracing::info!(job = %job, "no further occurrence");
                stop.await;
                return;
            };
            let wait = (next - now)
                .max(TimeDelta::zero())
                .to_std()
                .unwrap_or(Duration::ZERO);
            let sleep = std::pin::pin!(self.timer.sleep(wait));
            match futures_util::future::select(sleep, stop.as_mut()).await {
                futures_util::future::Either::Left(((), _)) => {}
                futures_util::future::Either::Right(((), _)) => return,
            }
            // A timer that woke a little early must not run the previous occurrence again.
            while self.clock.now() < next {
                let rest = (next - self.clock.now())
                    .to_std()
                    .unwrap_or(Duration::from_millis(1));
                self.timer.sleep(rest).await;
            }
            self.run_occurrence(job, next).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use clairon_domain::TimeZone;

    fn http(name: &str, timing: JobTiming) -> JobDefinition {
        JobDefinition {
            name: JobName::parse(name).unwrap(),
            work: JobWork::Http(HttpJobRequest {
                method: "POST".into(),
                url: "http://127.0.0.1:9/x".into(),
                timeout: Duration::from_secs(1),
            }),
            timing,
            task_type: TaskType::Sync,
        }
    }

    #[test]
    fn interval_occurrences_are_multiples_of_the_interval_so_every_process_computes_the_same() {
        let every = JobTiming::Every(Duration::from_secs(60));
        let t = Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 30).unwrap();
        assert_eq!(
            every.next_after(t),
            Some(Utc.with_ymd_and_hms(2027, 3, 1, 9, 1, 0).unwrap())
        );
        let on_the_dot = Utc.with_ymd_and_hms(2027, 3, 1, 9, 1, 0).unwrap();
        assert_eq!(
            every.next_after(on_the_dot),
            Some(Utc.with_ymd_and_hms(2027, 3, 1, 9, 2, 0).unwrap())
        );
    }

    #[test]
    fn a_file_job_named_like_a_built_in_one_is_refused() {
        let mut jobs = JobCatalog::builtin(&[]);
        jobs.push(http("retention", JobTiming::Every(Duration::from_secs(60))));
        assert_eq!(
            JobCatalog::new(jobs),
            Err(CatalogError::Duplicate("retention".into()))
        );
    }

    #[test]
    fn children_are_the_jobs_chained_after_a_job() {
        let zone = TimeZone::parse("America/Montreal").unwrap();
        let mut jobs = JobCatalog::builtin(&[]);
        jobs.push(http(
            "sync",
            JobTiming::Cron(Box::new(CronSchedule::parse("0 1 * * *", zone).unwrap())),
        ));
        jobs.push(http(
            "report",
            JobTiming::After(JobName::parse("sync").unwrap()),
        ));
        let catalog = JobCatalog::new(jobs).unwrap();
        let children: Vec<&str> = catalog
            .children("sync")
            .iter()
            .map(|j| j.name.as_str())
            .collect();
        assert_eq!(children, ["report"]);
        assert!(catalog.children("report").is_empty());
    }
}
