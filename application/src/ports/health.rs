//! What `/health/ready` checks: the database, the migrations and the dispatcher workers.

use async_trait::async_trait;

/// Why the database is not ready, as `/health/ready` names it in `checks.database`; each holds
/// a cause that is logged, never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseProblem {
    /// It does not answer (`unavailable`).
    Unavailable(String),
    /// It answers but refuses writes (`read-only`): a read-only SQLite file, a PostgreSQL
    /// standby or read-only session.
    ReadOnly(String),
    /// It answers, but writes fail (`write failed`): a full disk, I/O errors.
    WriteFailed(String),
}

impl DatabaseProblem {
    /// `unavailable`, `read-only` or `write failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::ReadOnly(_) => "read-only",
            Self::WriteFailed(_) => "write failed",
        }
    }

    /// The cause, for the log.
    pub fn cause(&self) -> &str {
        match self {
            Self::Unavailable(c) | Self::ReadOnly(c) | Self::WriteFailed(c) => c,
        }
    }
}

/// The dispatcher workers of this process, as `/health/ready` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherHealth {
    /// Whether at least one worker runs.
    pub running: bool,
    /// How many times a worker was restarted after a panic escaped its loop, since start-up
    /// (any: `degraded`).
    pub restarts: u64,
}

/// What `/health/ready` checks, implemented by the bootstrap (it knows the database and the
/// dispatcher workers).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// `Ok` when the database answers and takes writes.
    ///
    /// # Errors
    /// MUST return [`DatabaseProblem::Unavailable`] when it does not answer,
    /// [`DatabaseProblem::ReadOnly`] when it refuses writes and [`DatabaseProblem::WriteFailed`]
    /// when writes fail (a full disk), each with its cause for the log.
    async fn database(&self) -> Result<(), DatabaseProblem>;
    /// `Ok` when every embedded migration is applied.
    ///
    /// # Errors
    /// The pending migrations' names (or why they could not be listed).
    async fn migrations(&self) -> Result<(), String>;
    /// The dispatcher workers of this process.
    fn dispatcher(&self) -> DispatcherHealth;
}
