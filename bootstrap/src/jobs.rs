//! The background job runner: each job of [`Job::ALL`] runs on its own interval in this
//! process, through the `RunJob` use case (which records every run in `job_runs`), until the
//! stop signal. What a job does lives in the application; this is only the timer.
//!
//! Every process runs every job: they are idempotent, so two processes on one PostgreSQL
//! database at worst do the same purge twice, the second finding nothing.

use std::sync::Arc;
use std::time::Duration;

use clairon_application::commands::{RunJob, RunJobHandler};
use clairon_application::ports::{Job, JobTrigger};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::settings::Settings;

/// The first run of a job comes after its interval, but never later than this after start-up:
/// a daily job still runs in a process restarted every day.
const FIRST_RUN_AT_MOST: Duration = Duration::from_secs(300);

/// Each job with its interval, from the settings (at least 1 s each).
pub fn schedule(settings: &Settings) -> Vec<(Job, Duration)> {
    Job::ALL
        .into_iter()
        .map(|job| {
            let secs = match job {
                Job::LeaseReaper => settings.reaper_interval_secs,
                Job::Retention => settings.retention_interval_secs,
                Job::IdempotencyPurge => settings.idempotency_purge_interval_secs,
            };
            (job, Duration::from_secs(secs.max(1)))
        })
        .collect()
}

/// Spawns one timer task per job; each stops when `stop` turns true (a run in progress
/// finishes first).
pub fn spawn(
    handler: Arc<RunJobHandler>,
    schedule: Vec<(Job, Duration)>,
    stop: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    schedule
        .into_iter()
        .map(|(job, every)| {
            tokio::spawn(run_on_schedule(handler.clone(), job, every, stop.clone()))
        })
        .collect()
}

async fn run_on_schedule(
    handler: Arc<RunJobHandler>,
    job: Job,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let first = tokio::time::Instant::now() + every.min(FIRST_RUN_AT_MOST);
    let mut ticker = tokio::time::interval_at(first, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = ticker.tick() => {
                let command = RunJob { job, trigger: JobTrigger::Schedule };
                if let Err(e) = handler.execute(command).await {
                    tracing::error!(job = job.as_str(), error = %e, "job run could not be recorded");
                }
            }
            _ = stop.changed() => break,
        }
    }
    tracing::debug!(job = job.as_str(), "job timer stopped");
}
