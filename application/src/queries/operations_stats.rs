//! `GetOperationsStats`: how deliveries and background jobs went since a given instant — what
//! `GET /api/v1/admin/stats` and the operator dashboard show.
//!
//! Percentiles are nearest-rank (the smallest value with at least p % of the values at or
//! below it), computed here from the raw latencies the [`OperationsStatsSource`] reads, so both
//! database engines give the same numbers.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clairon_domain::{Channel, DeliveryStatus};

use crate::ports::{Clock, Job, JobStatus, OperationsStatsSource, QueueDepth, RepositoryError};

/// Statistics since `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetOperationsStats {
    /// Start of the window (UTC); deliveries created and job runs started at or after it count.
    pub since: DateTime<Utc>,
}

/// Deliveries of one channel in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    /// The channel.
    pub channel: Channel,
    /// Deliveries by status (`DeliveryStatus::as_str`), statuses with none left out.
    pub by_status: BTreeMap<&'static str, u64>,
    /// All deliveries of the channel in the window.
    pub total: u64,
    /// `sent / (sent + failed + dead)`: of the deliveries that settled after being tried, the
    /// share that went out; `None` when none settled. Skipped, cancelled and in-flight ones do
    /// not count.
    pub success_rate: Option<f64>,
    /// Median latency from creation to sent, in ms.
    pub p50_latency_ms: Option<u64>,
    /// 95th percentile latency from creation to sent, in ms.
    pub p95_latency_ms: Option<u64>,
}

/// Runs of one job in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStats {
    /// The job.
    pub job: Job,
    /// Runs recorded.
    pub runs: u64,
    /// Of which succeeded.
    pub succeeded: u64,
    /// `succeeded / runs`; `None` without runs.
    pub success_rate: Option<f64>,
    /// Median duration, in ms.
    pub p50_duration_ms: Option<u64>,
    /// 95th percentile duration, in ms.
    pub p95_duration_ms: Option<u64>,
    /// Longest run, in ms.
    pub max_duration_ms: Option<u64>,
}

/// The read model.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationsStats {
    /// The window's start.
    pub since: DateTime<Utc>,
    /// When the numbers were read.
    pub now: DateTime<Utc>,
    /// One entry per channel, in channel order.
    pub channels: Vec<ChannelStats>,
    /// `dead` deliveries created in the window.
    pub dead_letters: u64,
    /// One entry per job, in [`Job::ALL`] order.
    pub jobs: Vec<JobStats>,
    /// The queue now.
    pub queue: QueueDepth,
}

/// Handles [`GetOperationsStats`].
pub struct GetOperationsStatsHandler {
    source: Arc<dyn OperationsStatsSource>,
    clock: Arc<dyn Clock>,
}

impl GetOperationsStatsHandler {
    /// Builds the handler on its ports.
    pub fn new(source: Arc<dyn OperationsStatsSource>, clock: Arc<dyn Clock>) -> Self {
        Self { source, clock }
    }

    /// Reads and aggregates the numbers.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails.
    pub async fn execute(
        &self,
        query: GetOperationsStats,
    ) -> Result<OperationsStats, RepositoryError> {
        let now = self.clock.now();
        let counts = self.source.delivery_counts(query.since).await?;
        let latencies = self.source.sent_latencies_ms(query.since).await?;
        let runs = self.source.job_run_durations(query.since).await?;
        let queue = self.source.queue_depth(now).await?;

        let channels = Channel::ALL
            .into_iter()
            .map(|channel| {
                let mut by_status = BTreeMap::new();
                for c in counts.iter().filter(|c| c.channel == channel) {
                    *by_status.entry(c.status.as_str()).or_insert(0) += c.count;
                }
                let count = |s: DeliveryStatus| by_status.get(s.as_str()).copied().unwrap_or(0);
                let settled = count(DeliveryStatus::Sent)
                    + count(DeliveryStatus::Failed)
                    + count(DeliveryStatus::Dead);
                let mut ms: Vec<u64> = latencies
                    .iter()
                    .filter(|(c, _)| *c == channel)
                    .map(|(_, ms)| *ms)
                    .collect();
                ms.sort_unstable();
                ChannelStats {
                    channel,
                    total: by_status.values().sum(),
                    success_rate: ratio(count(DeliveryStatus::Sent), settled),
                    p50_latency_ms: percentile(&ms, 50),
                    p95_latency_ms: percentile(&ms, 95),
                    by_status,
                }
            })
            .collect();
        let dead_letters = counts
            .iter()
            .filter(|c| c.status == DeliveryStatus::Dead)
            .map(|c| c.count)
            .sum();
        let jobs = Job::ALL
            .into_iter()
            .map(|job| {
                let mut ms: Vec<u64> = runs
                    .iter()
                    .filter(|(j, _, _)| *j == job)
                    .map(|(_, _, ms)| *ms)
                    .collect();
                ms.sort_unstable();
                let succeeded = runs
                    .iter()
                    .filter(|(j, s, _)| *j == job && *s == JobStatus::Success)
                    .count() as u64;
                JobStats {
                    job,
                    runs: ms.len() as u64,
                    succeeded,
                    success_rate: ratio(succeeded, ms.len() as u64),
                    p50_duration_ms: percentile(&ms, 50),
                    p95_duration_ms: percentile(&ms, 95),
                    max_duration_ms: ms.last().copied(),
                }
            })
            .collect();
        Ok(OperationsStats {
            since: query.since,
            now,
            channels,
            dead_letters,
            jobs,
            queue,
        })
    }
}

#[allow(clippy::cast_precision_loss)]
fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Nearest-rank percentile `p` (1–100) of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // rank = ceil(p/100 × n), 1-based.
    let rank = (usize::try_from(p).unwrap_or(100) * n).div_ceil(100).max(1);
    sorted.get(rank.min(n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{ChannelStatusCount, MockOperationsStatsSource};
    use crate::test_support::fixed_clock;
    use rstest::rstest;

    #[rstest]
    #[case(&[], 50, None)]
    #[case(&[7], 95, Some(7))]
    #[case(&[1, 2, 3, 4], 50, Some(2))]
    #[case(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 95, Some(19))]
    #[case(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 50, Some(10))]
    fn percentiles_are_nearest_rank(
        #[case] sorted: &[u64],
        #[case] p: u32,
        #[case] expected: Option<u64>,
    ) {
        assert_eq!(percentile(sorted, p), expected);
    }

    #[tokio::test]
    async fn success_rate_counts_only_deliveries_that_settled_after_a_try() {
        let mut source = MockOperationsStatsSource::new();
        source.expect_delivery_counts().returning(|_| {
            Ok(vec![
                ChannelStatusCount {
                    channel: Channel::Email,
                    status: DeliveryStatus::Sent,
                    count: 3,
                },
                ChannelStatusCount {
                    channel: Channel::Email,
                    status: DeliveryStatus::Dead,
                    count: 1,
                },
                ChannelStatusCount {
                    channel: Channel::Email,
                    status: DeliveryStatus::Skipped,
                    count: 10,
                },
            ])
        });
        source.expect_sent_latencies_ms().returning(|_| {
            Ok(vec![
                (Channel::Email, 30),
                (Channel::Email, 10),
                (Channel::Email, 20),
            ])
        });
        source.expect_job_run_durations().returning(|_| {
            Ok(vec![
                (Job::LeaseReaper, JobStatus::Success, 4),
                (Job::LeaseReaper, JobStatus::Error, 9),
            ])
        });
        source
            .expect_queue_depth()
            .returning(|_| Ok(QueueDepth::default()));
        let handler = GetOperationsStatsHandler::new(Arc::new(source), Arc::new(fixed_clock()));

        let stats = handler
            .execute(GetOperationsStats {
                since: fixed_clock().now(),
            })
            .await
            .unwrap();

        let email = stats
            .channels
            .iter()
            .find(|c| c.channel == Channel::Email)
            .unwrap();
        assert_eq!(email.total, 14);
        assert_eq!(email.success_rate, Some(0.75));
        assert_eq!(email.p50_latency_ms, Some(20));
        assert_eq!(email.p95_latency_ms, Some(30));
        assert_eq!(stats.dead_letters, 1);
        let reaper = &stats.jobs[0];
        assert_eq!((reaper.runs, reaper.succeeded), (2, 1));
        assert_eq!(reaper.success_rate, Some(0.5));
        assert_eq!(reaper.max_duration_ms, Some(9));
        let in_app = &stats.channels[0];
        assert_eq!((in_app.total, in_app.success_rate), (0, None));
    }
}
