//! Delivery events to the host application (issue 12): builds the [`HostEventWorker`] from
//! `CLAIRON_EVENTS_WEBHOOK_*` and runs it on a task of its own, apart from the dispatcher's
//! workers, so a slow or dead host endpoint never holds a delivery.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clairon_adapters::channels::ReqwestHostEventSender;
use clairon_adapters::metrics::Metrics;
use clairon_adapters::persistence::{Database, DieselHostEventOutbox};
use clairon_application::host_events::{HostEventSettings, HostEventWorker};
use clairon_application::ports::Clock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::settings::HostEventsConfig;

/// Events claimed per round.
pub const BATCH: u32 = 16;

/// The worker posting `database`'s host events as `config` says.
///
/// # Errors
/// When the HTTP client cannot be built (its TLS backend).
pub fn worker(
    config: HostEventsConfig,
    database: &Database,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<HostEventWorker>> {
    let sender = ReqwestHostEventSender::new(config.url, config.secret, config.timeout)
        .context("building the host events HTTP client (CLAIRON_EVENTS_WEBHOOK_TIMEOUT_MS)")?;
    // The batch is posted one event after the other: the lease covers every POST timing out,
    // plus a margin for the database.
    let lease = config
        .timeout
        .saturating_mul(BATCH)
        .saturating_add(Duration::from_secs(30));
    Ok(Arc::new(HostEventWorker::new(
        Arc::new(DieselHostEventOutbox::new(database.clone())),
        Arc::new(sender),
        clock,
        Arc::new(config.retry),
        HostEventSettings {
            batch_size: BATCH,
            lease,
        },
    )))
}

/// Runs `worker` until `stop` turns true: a round after another while events are due, else a
/// wait of `poll`. A round in flight when the stop arrives is dropped: its events stay
/// `pending` under their lease and are posted again after it (at least once; the host drops
/// repeats by `webhook-id`).
pub fn spawn(
    worker: Arc<HostEventWorker>,
    metrics: Arc<Metrics>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                break;
            }
            let round = tokio::select! {
                round = worker.run_once() => round,
                _ = stop.changed() => break,
            };
            let idle = match round {
                Ok(round) => {
                    metrics.observe_host_events(round.sent, round.retried, round.dead);
                    round.posted() == 0
                }
                Err(e) => {
                    tracing::warn!(error = %e, "host events round failed; trying again after the poll interval");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => break,
                }
            }
        }
        tracing::debug!("host events worker stopped");
    })
}
