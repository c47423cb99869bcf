//! When to try a delivery again after a transient failure: the retry schedule, injected so
//! tests decide the delays (the real one draws random jitter).

use std::time::Duration;

/// The backoff policy for transient failures.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RetrySchedule: Send + Sync {
    /// The delay before the next try of a delivery that has now failed `attempts` times
    /// (1 after the first failed try). MUST return `None` when `attempts` reached the maximum
    /// number of tries: the delivery is then dead. Never fails, never blocks.
    fn delay_after(&self, attempts: u32) -> Option<Duration>;
}
