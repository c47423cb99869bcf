//! What operators watch: background job runs, the housekeeping those jobs do, the counts behind
//! `/api/v1/admin/stats` and `/metrics`, and the dispatcher's outcomes as they are recorded.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{Channel, DeliveryStatus};

use super::{ClaimedDelivery, DeliveryUpdate, RepositoryError};

/// A background job Clairon runs on a schedule (and on demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    /// Puts deliveries whose dispatcher lease expired back in the queue (`pending` when never
    /// tried, else `retrying`), due now.
    LeaseReaper,
    /// Deletes notifications (with their deliveries and attempts) older than the retention
    /// period, and job runs older than theirs.
    Retention,
    /// Deletes expired `Idempotency-Key` records.
    IdempotencyPurge,
}

impl Job {
    /// Every job, in display order.
    pub const ALL: [Job; 3] = [Job::LeaseReaper, Job::Retention, Job::IdempotencyPurge];

    /// `lease_reaper`, `retention` or `idempotency_purge`: the name in `job_runs.job`, the API
    /// and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeaseReaper => "lease_reaper",
            Self::Retention => "retention",
            Self::IdempotencyPurge => "idempotency_purge",
        }
    }

    /// The job named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.as_str() == raw)
    }
}

/// What started a job run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobTrigger {
    /// The process's own timer.
    Schedule,
    /// An operator on the command line.
    Manual,
    /// `POST /api/v1/admin/jobs/{job}/run`.
    Api,
}

impl JobTrigger {
    /// `schedule`, `manual` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::Api => "api",
        }
    }

    /// The trigger named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Schedule, Self::Manual, Self::Api]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

/// How a job run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// It did its work.
    Success,
    /// It failed; `error` says why.
    Error,
}

impl JobStatus {
    /// `success` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
        }
    }

    /// The status named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Success, Self::Error]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A finished job run, as recorded (one `job_runs` row).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    /// UUIDv7 text, given by the repository: sorts by start time.
    pub id: String,
    /// Which job.
    pub job: Job,
    /// What started it.
    pub trigger: JobTrigger,
    /// When it started (UTC).
    pub started_at: DateTime<Utc>,
    /// When it finished (UTC).
    pub finished_at: DateTime<Utc>,
    /// How long it took, in milliseconds (measured on a monotonic clock).
    pub duration_ms: u64,
    /// How it ended.
    pub status: JobStatus,
    /// What it did, a JSON object (for example `{"notifications": 12}`).
    pub stats: serde_json::Value,
    /// Why it failed.
    pub error: Option<String>,
}

/// A page of job runs, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRunPage {
    /// The runs.
    pub items: Vec<JobRun>,
    /// Pass as `cursor` for the next (older) page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Which job runs to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRunQuery {
    /// Only this job.
    pub job: Option<Job>,
    /// Only runs that ended so.
    pub status: Option<JobStatus>,
    /// At most this many (1–100).
    pub limit: u32,
    /// Runs strictly older than the run with this id (a previous page's `next_cursor`).
    pub cursor: Option<String>,
}

/// The record of job runs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobRunRepository: Send + Sync {
    /// Records a finished run; its `id` is ignored and a fresh UUIDv7 is given. Returns the run
    /// as stored.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; nothing is recorded then.
    async fn record(&self, run: &JobRun) -> Result<JobRun, RepositoryError>;

    /// Lists runs newest first, filtered and paged as `query` says.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; [`RepositoryError::Corrupt`] for a row naming an
    /// unknown job, trigger or status.
    async fn list(&self, query: &JobRunQuery) -> Result<JobRunPage, RepositoryError>;
}

/// How many notifications the retention purge removed, with what went with them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Notifications deleted.
    pub notifications: u64,
    /// Their deliveries.
    pub deliveries: u64,
    /// Those deliveries' attempt rows.
    pub attempts: u64,
}

/// The database housekeeping the background jobs do.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Puts every `sending` delivery whose lease expired at `now` back in the queue, due at
    /// `now`: `pending` when it was never tried, else `retrying`. Each counts one crash (its
    /// worker died holding it), as when a claim retakes it; one that reaches
    /// [`POISON_CRASHES`](super::POISON_CRASHES) is parked `dead` ("poison…") instead. Returns
    /// how many were released or parked.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; nothing is changed then.
    async fn release_expired_leases(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;

    /// Deletes notifications created before `cutoff` whose deliveries are all settled (none
    /// `pending`, `retrying` or `sending`: nothing still to be delivered is ever purged), with
    /// their deliveries and attempt rows, in batches each in its own transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; the batches committed before the failure stay purged.
    async fn purge_notifications(&self, cutoff: DateTime<Utc>) -> Result<Purged, RepositoryError>;

    /// Deletes job runs started before `cutoff`; returns how many.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    async fn purge_job_runs(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError>;

    /// Deletes `Idempotency-Key` records expired at `now`; returns how many.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    async fn purge_idempotency_keys(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError>;
}

/// How many deliveries of one channel are in one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelStatusCount {
    /// The channel.
    pub channel: Channel,
    /// The status.
    pub status: DeliveryStatus,
    /// How many.
    pub count: u64,
}

/// The delivery queue at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Deliveries `pending`, `retrying` or `sending`, by channel and status (scheduled ones not
    /// yet due included).
    pub counts: Vec<ChannelStatusCount>,
    /// Per channel, the age in seconds of the oldest delivery that is due (`pending` or
    /// `retrying` with `next_attempt_at <= now`) and not sent yet; channels with none are left
    /// out.
    pub oldest_due_age_secs: Vec<(Channel, u64)>,
}

/// The numbers behind the operator's statistics.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OperationsStatsSource: Send + Sync {
    /// Deliveries created at or after `since`, counted by channel and status (one grouped
    /// query).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; [`RepositoryError::Corrupt`] for an unknown channel or
    /// status.
    async fn delivery_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ChannelStatusCount>, RepositoryError>;

    /// For each delivery created at or after `since` and sent, its channel and its latency from
    /// creation to sent, in milliseconds.
    ///
    /// # Errors
    /// As [`OperationsStatsSource::delivery_counts`].
    async fn sent_latencies_ms(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Channel, u64)>, RepositoryError>;

    /// For each job run started at or after `since`: its job, status and duration (ms).
    ///
    /// # Errors
    /// As [`OperationsStatsSource::delivery_counts`].
    async fn job_run_durations(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Job, JobStatus, u64)>, RepositoryError>;

    /// The queue at `now` (one grouped query, and one for the oldest due delivery per channel).
    ///
    /// # Errors
    /// As [`OperationsStatsSource::delivery_counts`].
    async fn queue_depth(&self, now: DateTime<Utc>) -> Result<QueueDepth, RepositoryError>;
}

/// Hears what the dispatcher recorded, for metrics. Called after a batch's outcomes were
/// written, once per delivery; never fails and must not block (count, don't do I/O).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait DispatchObserver: Send + Sync {
    /// `claimed` ended up as `update` (and `update.attempt`, when set, was one try).
    fn recorded(&self, claimed: &ClaimedDelivery, update: &DeliveryUpdate);
}
