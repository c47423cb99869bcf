//! What scheduled jobs need from the world besides the database: calling a job's HTTP endpoint
//! ([`HttpJobClient`]) and telling operators a job failed ([`JobAlerts`]).

use std::time::Duration;

use async_trait::async_trait;

/// One HTTP call of a `CLAIRON_JOBS_FILE` job (`request = {method, url, timeout_s}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpJobRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE` (upper case).
    pub method: String,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// The whole call (connect, send, read the body) must end within this.
    pub timeout: Duration,
}

/// What the job's endpoint did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpJobOutcome {
    /// It answered `status` with `body` (text, possibly cut at a bound the adapter chooses).
    Answered {
        /// The HTTP status code.
        status: u16,
        /// The response body.
        body: String,
    },
    /// No answer: connection refused, timeout, a broken response; the text says which.
    Failed(String),
}

/// Calls a job's HTTP endpoint. Never fails: a failure is an [`HttpJobOutcome::Failed`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HttpJobClient: Send + Sync {
    /// Sends `request` and waits for the whole answer, at most `request.timeout`.
    async fn call(&self, request: &HttpJobRequest) -> HttpJobOutcome;
}

/// The domain event `job.failed` (issue 13, "Alerts"): a run ended `error` (internal or
/// external), or a chained job was skipped because its parent failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailed {
    /// The job's name.
    pub job: String,
    /// The run that failed or was skipped.
    pub run_id: String,
    /// Its summary (a skipped run's says which parent failed).
    pub message: Option<String>,
    /// Why it failed.
    pub error_details: Option<String>,
}

/// Tells operators about failed jobs. Never fails and should not block for long: the run is
/// already recorded; an alert that cannot go out is the adapter's to log.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobAlerts: Send + Sync {
    /// Emits `job.failed` for `alert`.
    async fn job_failed(&self, alert: &JobFailed);
}
