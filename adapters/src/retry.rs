//! [`BackonRetrySchedule`]: exponential backoff with full jitter for transient failures.
//!
//! The exponential ceiling (`base × factor^(n-1)`, capped) comes from `backon`'s
//! `ExponentialBuilder` without its own jitter: backon's jitter *adds* up to one delay on top,
//! whereas "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter") draws the
//! whole delay uniformly in `[0, ceiling]`, which spreads retries of a burst of failures best.
//! The uniform draw is `rand`'s.

use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use clairon_application::ports::RetrySchedule;

/// How a delay is drawn under its ceiling.
pub type Jitter = fn(Duration) -> Duration;

/// Full jitter: uniform in `[0, ceiling]`, millisecond resolution.
pub fn full_jitter(ceiling: Duration) -> Duration {
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(0..=ceiling_ms))
}

/// Exponential backoff with full jitter and a maximum number of tries.
#[derive(Debug, Clone)]
pub struct BackonRetrySchedule {
    base: Duration,
    factor: f32,
    cap: Duration,
    max_attempts: u32,
    jitter: Jitter,
}

impl BackonRetrySchedule {
    /// The delay after the n-th failed try is drawn in `[0, min(cap, base × factor^(n-1))]`;
    /// after `max_attempts` tries there is no next one. `factor` below 1 is taken as 1.
    pub fn new(base: Duration, factor: f32, cap: Duration, max_attempts: u32) -> Self {
        Self {
            base,
            factor: factor.max(1.0),
            cap,
            max_attempts,
            jitter: full_jitter,
        }
    }

    /// The same schedule with another jitter (tests use the identity to see the ceilings).
    #[must_use]
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The ceiling of the delay after `attempts` failed tries (1-based), before jitter.
    pub fn ceiling(&self, attempts: u32) -> Duration {
        let steps = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX);
        ExponentialBuilder::new()
            .with_min_delay(self.base)
            .with_factor(self.factor)
            .with_max_delay(self.cap)
            .without_max_times()
            .build()
            .nth(steps)
            .unwrap_or(self.cap)
            .min(self.cap)
    }
}

impl RetrySchedule for BackonRetrySchedule {
    fn delay_after(&self, attempts: u32) -> Option<Duration> {
        (attempts < self.max_attempts).then(|| (self.jitter)(self.ceiling(attempts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> BackonRetrySchedule {
        BackonRetrySchedule::new(Duration::from_secs(5), 2.0, Duration::from_secs(15 * 60), 8)
    }

    #[test]
    fn ceilings_grow_by_the_factor_from_the_base_up_to_the_cap() {
        let schedule = defaults().with_jitter(|ceiling| ceiling);
        let delays: Vec<Option<u64>> = (1..=8)
            .map(|n| schedule.delay_after(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(
            delays,
            vec![
                Some(5),
                Some(10),
                Some(20),
                Some(40),
                Some(80),
                Some(160),
                Some(320),
                None
            ],
            "after the 8th try the delivery is dead"
        );
        assert_eq!(
            schedule.ceiling(12),
            Duration::from_secs(900),
            "capped at 15 min"
        );
    }

    #[test]
    fn the_jitter_decides_the_delay_under_the_ceiling() {
        let schedule = defaults().with_jitter(|ceiling| ceiling / 4);
        assert_eq!(schedule.delay_after(3), Some(Duration::from_secs(5)));
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling() {
        let ceiling = Duration::from_millis(250);
        for _ in 0..200 {
            assert!(full_jitter(ceiling) <= ceiling);
        }
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn one_allowed_try_means_no_retry() {
        let schedule =
            BackonRetrySchedule::new(Duration::from_millis(50), 2.0, Duration::from_secs(1), 1);
        assert_eq!(schedule.delay_after(1), None);
    }
}
