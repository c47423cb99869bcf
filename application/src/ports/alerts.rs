//! What the `dead_letter_alert` job reads and writes (issue 13, "Alerts"): the deliveries that
//! went `dead` lately ([`DeadLetterSource`]) and the record of when an alert was last raised,
//! shared by every process ([`AlertThrottle`]).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clairon_domain::Channel;

use super::RepositoryError;

/// One delivery that went `dead`, as an alert quotes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The delivery's id (UUIDv7 text).
    pub delivery_id: String,
    /// Its channel.
    pub channel: Channel,
    /// Its last error (`deliveries.last_error`), if any.
    pub error: Option<String>,
    /// When it went `dead` (its last update, UTC).
    pub dead_at: DateTime<Utc>,
}

/// The deliveries that went `dead` in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetters {
    /// How many went `dead` in the window (and are still `dead`: one retried by an operator
    /// since is not counted).
    pub count: u64,
    /// The newest of them, newest first, at most the number asked for.
    pub samples: Vec<DeadLetter>,
}

/// Reads the dead letters.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeadLetterSource: Send + Sync {
    /// The deliveries now `dead` whose last update (the move to `dead`) is at or after `since`:
    /// how many, and the `samples` newest (one count query and one bounded query).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; [`RepositoryError::Corrupt`] for an unknown channel.
    async fn dead_since(
        &self,
        since: DateTime<Utc>,
        samples: usize,
    ) -> Result<DeadLetters, RepositoryError>;
}

/// When each throttled alert was last raised, shared by every process on the database.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AlertThrottle: Send + Sync {
    /// Takes the right to raise `alert` at `now`: `true` when it was never raised or last raised
    /// at or before `now - period`, and then records `now` as its last time; `false` (nothing
    /// written) when it was raised within the period. One conditional write: of several
    /// processes asking within one period, one gets `true`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; nothing is recorded then.
    async fn try_raise(
        &self,
        alert: &str,
        now: DateTime<Utc>,
        period: TimeDelta,
    ) -> Result<bool, RepositoryError>;
}
