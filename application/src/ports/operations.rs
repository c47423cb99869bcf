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
    /// Sends the digests whose window ended (issue 13; [`crate::digests::DigestJob`]).
    Digests,
    /// Raises `deliveries.dead_letters` when more than `CLAIRON_ALERT_DEAD_LETTERS` deliveries
    /// went `dead` within the hour, at most once an hour (issue 13;
    /// [`crate::dead_letters::DeadLetterAlert`]).
    DeadLetterAlert,
}

impl Job {
    /// Every job, in display order.
    pub const ALL: [Job; 5] = [
        Job::LeaseReaper,
        Job::Retention,
        Job::IdempotencyPurge,
        Job::Digests,
        Job::DeadLetterAlert,
    ];

    /// `lease_reaper`, `retention`, `idempotency_purge`, `digests` or `dead_letter_alert`: the
    /// name in `job_runs.job`, the API and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeaseReaper => "lease_reaper",
            Self::Retention => "retention",
            Self::IdempotencyPurge => "idempotency_purge",
            Self::Digests => "digests",
            Self::DeadLetterAlert => "dead_letter_alert",
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
    /// A scheduler: this process's own (an internal run), or the one of an outside system (an
    /// external run posted with `triggered_by` `scheduler`).
    Schedule,
    /// An operator on the command line (`clairon run-job`), or by hand in an outside system.
    Manual,
    /// `POST /api/v1/admin/jobs/{job}/run`, or an outside system's API.
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

    /// The trigger named `raw`, if any; `scheduler` (seed 003's name, the external runs'
    /// `triggered_by`) is `schedule`.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw == "scheduler" {
            return Some(Self::Schedule);
        }
        [Self::Schedule, Self::Manual, Self::Api]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

/// Where a job run happened: in Clairon (its scheduler, `run-job`, the admin API) or in an
/// outside system that reports it (`POST /api/v1/job-runs`, seed 003's `sync_logs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobSource {
    /// Run by Clairon.
    Internal,
    /// Reported by an outside system.
    External,
}

impl JobSource {
    /// `internal` or `external`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::External => "external",
        }
    }

    /// The source named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Internal, Self::External]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// What kind of work a run is (seed 003's `task_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskType {
    /// A synchronisation.
    Sync,
    /// A report.
    Report,
    /// A chain of tasks.
    Chain,
    /// A backup.
    Backup,
    /// Anything else (the built-in housekeeping jobs).
    Other,
}

impl TaskType {
    /// Every task type.
    pub const ALL: [TaskType; 5] = [
        Self::Sync,
        Self::Report,
        Self::Chain,
        Self::Backup,
        Self::Other,
    ];

    /// `sync`, `report`, `chain`, `backup` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Report => "report",
            Self::Chain => "chain",
            Self::Backup => "backup",
            Self::Other => "other",
        }
    }

    /// The task type named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// Where a job run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    /// Started, not finished yet (an external run until its `PATCH`; an internal one while it
    /// works).
    Running,
    /// It did its work.
    Success,
    /// It did its work, with something to look at (`message`); counts as a success.
    Warning,
    /// It failed; `error_details` says why.
    Error,
    /// A chained job that did not run because its parent failed; `message` says which.
    Skipped,
}

impl JobStatus {
    /// Every status.
    pub const ALL: [JobStatus; 5] = [
        Self::Running,
        Self::Success,
        Self::Warning,
        Self::Error,
        Self::Skipped,
    ];

    /// `running`, `success`, `warning`, `error` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }

    /// The status named `raw`, if any.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// `success` or `warning`: the work was done (a chained job then runs).
    pub fn succeeded(self) -> bool {
        matches!(self, Self::Success | Self::Warning)
    }
}

/// A job run, as recorded (one `job_runs` row).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    /// UUIDv7 text, given by the repository: sorts by start time.
    pub id: String,
    /// Which job: a built-in's name ([`Job::as_str`]), a `CLAIRON_JOBS_FILE` job's, or the name
    /// an outside system reports.
    pub job: String,
    /// Clairon's run or an outside system's.
    pub source: JobSource,
    /// What kind of work.
    pub task_type: TaskType,
    /// What started it.
    pub trigger: JobTrigger,
    /// Who started it by hand (an email, a login), when the reporter says.
    pub triggered_by_user: Option<String>,
    /// The run of the job this one is chained `after`, when it ran (or was skipped) because of
    /// that run.
    pub parent_run_id: Option<String>,
    /// The scheduled occurrence this run is (UTC), for scheduled internal runs: with `job`, a
    /// unique key, so several processes never run one occurrence twice.
    pub occurrence: Option<DateTime<Utc>>,
    /// When it started (UTC).
    pub started_at: DateTime<Utc>,
    /// When it finished (UTC); `None` while `running`.
    pub finished_at: Option<DateTime<Utc>>,
    /// How long it took, in milliseconds (internal runs: a monotonic clock; external ones:
    /// `finished_at - started_at`); `None` while `running`.
    pub duration_ms: Option<u64>,
    /// Where it stands.
    pub status: JobStatus,
    /// A one-line summary (seed 003's `message`).
    pub message: Option<String>,
    /// What it did, a JSON object (for example `{"notifications": 12}`).
    pub stats: serde_json::Value,
    /// Why it failed (seed 003's `error_details`: a cause, a stack trace).
    pub error: Option<String>,
}

impl JobRun {
    /// A run of `job` by Clairon, `running` since `started_at`, with nothing else set yet.
    pub fn internal(job: &str, trigger: JobTrigger, started_at: DateTime<Utc>) -> Self {
        Self {
            id: String::new(),
            job: job.to_owned(),
            source: JobSource::Internal,
            task_type: TaskType::Other,
            trigger,
            triggered_by_user: None,
            parent_run_id: None,
            occurrence: None,
            started_at,
            finished_at: None,
            duration_ms: None,
            status: JobStatus::Running,
            message: None,
            stats: serde_json::json!({}),
            error: None,
        }
    }
}

/// How a `running` run ends.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRunEnd {
    /// The final status (never `running`).
    pub status: JobStatus,
    /// When it finished (UTC).
    pub finished_at: DateTime<Utc>,
    /// Its duration in ms; `None`: `finished_at - started_at` (at least 0).
    pub duration_ms: Option<u64>,
    /// The summary; `None` keeps the one recorded.
    pub message: Option<String>,
    /// What it did; `None` keeps the stats recorded.
    pub stats: Option<serde_json::Value>,
    /// Why it failed; `None` keeps what was recorded.
    pub error: Option<String>,
}

/// What [`JobRunRepository::finish`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// The run was `running` and is now ended so.
    Ended(JobRun),
    /// The run had already ended; nothing changed.
    NotRunning(JobRun),
    /// No run has this id.
    NotFound,
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
    pub job: Option<String>,
    /// Only runs in this status.
    pub status: Option<JobStatus>,
    /// Only Clairon's runs, or only the reported ones.
    pub source: Option<JobSource>,
    /// At most this many (1–100).
    pub limit: u32,
    /// Runs strictly older than the run with this id (a previous page's `next_cursor`).
    pub cursor: Option<String>,
}

/// The record of job runs.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobRunRepository: Send + Sync {
    /// Records a run (finished, or `running` to be ended by [`JobRunRepository::finish`]); its
    /// `id` is ignored and a fresh UUIDv7 is given. Returns the run as stored.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when `run.occurrence` is set and a run of that job and
    /// occurrence exists (another process took it); [`RepositoryError::Unavailable`] when the
    /// database fails. Nothing is recorded then.
    async fn record(&self, run: &JobRun) -> Result<JobRun, RepositoryError>;

    /// Ends the run `id` as `end` says, only if it is still `running` (one conditional
    /// update: two finishers cannot both end it).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    async fn finish(&self, id: &str, end: &JobRunEnd) -> Result<Finished, RepositoryError>;

    /// The run `id`, if any.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; [`RepositoryError::Corrupt`] for a bad row.
    async fn get(&self, id: &str) -> Result<Option<JobRun>, RepositoryError>;

    /// Lists runs newest first, filtered and paged as `query` says.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; [`RepositoryError::Corrupt`] for a row naming an
    /// unknown trigger, source, task type or status.
    async fn list(&self, query: &JobRunQuery) -> Result<JobRunPage, RepositoryError>;
}

/// One run, as the statistics read it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRunSample {
    /// Its id (UUIDv7: sorts by start).
    pub id: String,
    /// Its job.
    pub job: String,
    /// Clairon's or reported.
    pub source: JobSource,
    /// Where it stands.
    pub status: JobStatus,
    /// What started it.
    pub trigger: JobTrigger,
    /// When it started (UTC).
    pub started_at: DateTime<Utc>,
    /// Its duration in ms, once finished.
    pub duration_ms: Option<u64>,
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
    /// Deliveries `pending`, `retrying`, `sending` or `batched`, by channel and status
    /// (scheduled ones not yet due included).
    pub counts: Vec<ChannelStatusCount>,
    /// Deliveries `pending` or `retrying` whose `next_attempt_at` is still in the future
    /// (reminders, scheduled notifications, quiet hours, retries waiting) and every `batched`
    /// one (held for a digest), by channel: work for later, never a sign of a stuck queue.
    pub scheduled_later: Vec<(Channel, u64)>,
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

    /// Every job run started at or after `since`, oldest first (rows with a status or source
    /// this version does not know are left out).
    ///
    /// # Errors
    /// As [`OperationsStatsSource::delivery_counts`].
    async fn job_runs_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<JobRunSample>, RepositoryError>;

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
