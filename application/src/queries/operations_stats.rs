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

use crate::ports::{
    Clock, Job, JobRunSample, JobStatus, OperationsStatsSource, QueueDepth, RepositoryError,
};

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
    pub job: String,
    /// Runs that ended (`success`, `warning`, `error`, `skipped`); `running` ones are not
    /// counted here.
    pub runs: u64,
    /// Of which `success` or `warning`.
    pub succeeded: u64,
    /// Of which `error`.
    pub failed: u64,
    /// Of which `skipped` (a chained job whose parent failed).
    pub skipped: u64,
    /// Runs still `running`.
    pub running: u64,
    /// `succeeded / runs`; `None` without runs.
    pub success_rate: Option<f64>,
    /// Median duration of the runs that ran (not skipped), in ms.
    pub p50_duration_ms: Option<u64>,
    /// 95th percentile duration, in ms.
    pub p95_duration_ms: Option<u64>,
    /// Mean duration, in ms (rounded to the nearest).
    pub mean_duration_ms: Option<u64>,
    /// Longest run, in ms.
    pub max_duration_ms: Option<u64>,
    /// The newest run in the window (any status, `running` included).
    pub last_run: Option<JobRunSample>,
}

/// Per job, the figures of `samples` (oldest first): the built-in jobs first (listed even
/// without runs), then `known` (the jobs file's, also listed without runs), then any other job
/// that has runs (external ones), in name order.
pub fn job_stats(samples: &[JobRunSample], known: &[String]) -> Vec<JobStats> {
    let mut names: Vec<String> = Job::ALL.map(|j| j.as_str().to_owned()).to_vec();
    for name in known {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut others: Vec<String> = samples
        .iter()
        .map(|s| s.job.clone())
        .filter(|j| !names.contains(j))
        .collect();
    others.sort();
    others.dedup();
    names.extend(others);
    names
        .into_iter()
        .map(|job| {
            let mine: Vec<&JobRunSample> = samples.iter().filter(|s| s.job == job).collect();
            let count =
                |f: fn(JobStatus) -> bool| mine.iter().filter(|s| f(s.status)).count() as u64;
            let succeeded = count(JobStatus::succeeded);
            let failed = count(|s| s == JobStatus::Error);
            let skipped = count(|s| s == JobStatus::Skipped);
            let running = count(|s| s == JobStatus::Running);
            let runs = succeeded + failed + skipped;
            let mut ms: Vec<u64> = mine
                .iter()
                .filter(|s| !matches!(s.status, JobStatus::Running | JobStatus::Skipped))
                .filter_map(|s| s.duration_ms)
                .collect();
            ms.sort_unstable();
            let mean = (!ms.is_empty()).then(|| {
                let total: u128 = ms.iter().map(|&m| u128::from(m)).sum();
                let n = ms.len() as u128;
                u64::try_from((total + n / 2) / n).unwrap_or(u64::MAX)
            });
            JobStats {
                runs,
                succeeded,
                failed,
                skipped,
                running,
                success_rate: ratio(succeeded, runs),
                p50_duration_ms: percentile(&ms, 50),
                p95_duration_ms: percentile(&ms, 95),
                mean_duration_ms: mean,
                max_duration_ms: ms.last().copied(),
                last_run: mine.last().map(|s| (*s).clone()),
                job,
            }
        })
        .collect()
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
    /// One entry per job, as [`job_stats`] lists them.
    pub jobs: Vec<JobStats>,
    /// The queue now.
    pub queue: QueueDepth,
}

/// Handles [`GetOperationsStats`].
pub struct GetOperationsStatsHandler {
    source: Arc<dyn OperationsStatsSource>,
    clock: Arc<dyn Clock>,
    known_jobs: Vec<String>,
}

impl GetOperationsStatsHandler {
    /// Builds the handler on its ports.
    pub fn new(source: Arc<dyn OperationsStatsSource>, clock: Arc<dyn Clock>) -> Self {
        Self {
            source,
            clock,
            known_jobs: Vec::new(),
        }
    }

    /// The same handler listing these jobs (the jobs file's) even when they have no runs.
    #[must_use]
    pub fn with_jobs(mut self, known: Vec<String>) -> Self {
        self.known_jobs = known;
        self
    }

    /// Per job, the runs started at or after `since` (`GET /api/v1/admin/job-stats`).
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails.
    pub async fn job_stats(&self, since: DateTime<Utc>) -> Result<Vec<JobStats>, RepositoryError> {
        let samples = self.source.job_runs_since(since).await?;
        Ok(job_stats(&samples, &self.known_jobs))
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
        let runs = self.source.job_runs_since(query.since).await?;
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
        let jobs = job_stats(&runs, &self.known_jobs);
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
    use crate::ports::{ChannelStatusCount, JobSource, JobTrigger, MockOperationsStatsSource};
    use crate::test_support::fixed_clock;
    use rstest::rstest;

    fn sample(job: &str, status: JobStatus, duration_ms: Option<u64>) -> JobRunSample {
        JobRunSample {
            id: String::new(),
            job: job.into(),
            source: JobSource::External,
            status,
            trigger: JobTrigger::Schedule,
            started_at: fixed_clock().now(),
            duration_ms,
        }
    }

    #[test]
    fn job_stats_count_successes_over_ended_runs_and_time_only_the_runs_that_ran() {
        let samples = [
            sample("sync-gazelle", JobStatus::Success, Some(1000)),
            sample("sync-gazelle", JobStatus::Warning, Some(2000)),
            sample("sync-gazelle", JobStatus::Error, Some(6000)),
            sample("timeline-report", JobStatus::Skipped, Some(0)),
            sample("sync-gazelle", JobStatus::Running, None),
        ];

        let stats = job_stats(&samples, &["timeline-report".into(), "backup".into()]);

        let names: Vec<&str> = stats.iter().map(|s| s.job.as_str()).collect();
        assert_eq!(
            names,
            [
                "lease_reaper",
                "retention",
                "idempotency_purge",
                "digests",
                "dead_letter_alert",
                "timeline-report",
                "backup",
                "sync-gazelle"
            ]
        );
        let sync = &stats[7];
        assert_eq!(
            (sync.runs, sync.succeeded, sync.failed, sync.running),
            (3, 2, 1, 1)
        );
        assert_eq!(sync.success_rate, Some(2.0 / 3.0));
        assert_eq!(sync.p50_duration_ms, Some(2000));
        assert_eq!(sync.p95_duration_ms, Some(6000));
        assert_eq!(sync.mean_duration_ms, Some(3000));
        assert_eq!(sync.last_run.as_ref().unwrap().status, JobStatus::Running);
        let report = &stats[5];
        assert_eq!((report.runs, report.skipped), (1, 1));
        assert_eq!(report.success_rate, Some(0.0));
        assert_eq!(report.mean_duration_ms, None, "a skipped run did not run");
        assert_eq!(stats[6].runs, 0);
    }

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
        source.expect_job_runs_since().returning(|_| {
            Ok(vec![
                sample("lease_reaper", JobStatus::Success, Some(4)),
                sample("lease_reaper", JobStatus::Error, Some(9)),
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
