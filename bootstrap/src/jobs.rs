//! The job scheduler's tasks: one per job with a schedule of its own (the built-in jobs on
//! their intervals, the jobs file's on their cron schedules), each running
//! [`JobScheduler::run_schedule`] until the stop signal. What a job does and when its
//! occurrences fall live in the application; this only spawns and stops.
//!
//! Every process runs every schedule, but each occurrence is claimed in `job_runs` (unique on
//! job + occurrence) before it runs: of two processes on one PostgreSQL database, one runs it.
//! Interval occurrences are multiples of the interval since the Unix epoch, so every process
//! computes the same ones.

use std::sync::Arc;
use std::time::Duration;

use clairon_application::ports::Job;
use clairon_application::scheduler::JobScheduler;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::settings::Settings;

/// Each built-in job with its interval, from the settings (at least 1 s each).
pub fn schedule(settings: &Settings) -> Vec<(Job, Duration)> {
    Job::ALL
        .into_iter()
        .map(|job| {
            let secs = match job {
                Job::LeaseReaper => settings.reaper_interval_secs,
                Job::Retention => settings.retention_interval_secs,
                Job::IdempotencyPurge => settings.idempotency_purge_interval_secs,
                Job::Digests => settings.digest_interval_secs,
                Job::DeadLetterAlert => settings.dead_letter_alert_interval_secs,
            };
            (job, Duration::from_secs(secs.max(1)))
        })
        .collect()
}

/// Spawns one task per scheduled job; each stops when `stop` turns true (a run in progress
/// finishes first).
pub fn spawn(scheduler: Arc<JobScheduler>, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    scheduler
        .scheduled()
        .into_iter()
        .map(|job| {
            let scheduler = scheduler.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    while !*stop.borrow_and_update() {
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                };
                scheduler.run_schedule(&job, stopped).await;
                tracing::debug!(job = %job, "job schedule stopped");
            })
        })
        .collect()
}
