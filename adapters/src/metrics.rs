//! Prometheus metrics (the `prometheus` crate, text exposition format 0.0.4), one registry per
//! [`Metrics`] value — so several applications in one process (the tests) never share
//! counters.
//!
//! Counters and histograms are updated where things happen: the HTTP middleware
//! ([`crate::http::middleware::observability::track_requests`]), the dispatcher (through the
//! [`DispatchObserver`] port), job runs (the [`MeteredJobRunRepository`] decorator) and live
//! connections ([`ConnectionGauge`]). The queue gauges are read from the database at scrape
//! time ([`Metrics::render`]), so every process reports the shared queue.

use std::sync::Arc;

use async_trait::async_trait;
use clairon_application::ports::{
    ClaimedDelivery, DeliveryUpdate, DispatchObserver, Finished, JobRun, JobRunEnd, JobRunPage,
    JobRunQuery, JobRunRepository, QueueDepth, RepositoryError,
};
use clairon_domain::{Channel, DeliveryStatus};
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Delivery latency buckets, in seconds: from an in-app delivery (milliseconds) to an email
/// retried for a quarter of an hour.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// HTTP request duration buckets, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Job run duration buckets, in seconds.
const JOB_BUCKETS: &[f64] = &[0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0];

/// The statuses a delivery waits in, reported by `clairon_queue_depth` (`batched`: held for a
/// digest, issue 13).
const QUEUED: [DeliveryStatus; 4] = [
    DeliveryStatus::Pending,
    DeliveryStatus::Retrying,
    DeliveryStatus::Sending,
    DeliveryStatus::Batched,
];

/// Every metric Clairon exports.
pub struct Metrics {
    registry: Registry,
    deliveries: IntCounterVec,
    attempts: IntCounterVec,
    latency: HistogramVec,
    queue_depth: IntGaugeVec,
    oldest_due: IntGaugeVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    connections: IntGaugeVec,
    job_runs: IntCounterVec,
    job_duration: HistogramVec,
    auth_failures: IntCounterVec,
    host_events: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name} is well-formed: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name} is registered once: {e}"));
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("metric {name} is well-formed: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name} is registered once: {e}"));
    metric
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let metric = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| unreachable!("metric {name} is well-formed: {e}"));
    registry
        .register(Box::new(metric.clone()))
        .unwrap_or_else(|e| unreachable!("metric {name} is registered once: {e}"));
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let r = Registry::new();
        Self {
            deliveries: counter(
                &r,
                "clairon_deliveries_total",
                "Deliveries the dispatcher recorded, by channel and resulting status (sent, retrying, failed, dead, skipped; pending: put back for its destination's pace, unsent).",
                &["channel", "status"],
            ),
            attempts: counter(
                &r,
                "clairon_delivery_attempts_total",
                "Delivery tries, by channel and outcome (sent, transient, rate_limited, permanent).",
                &["channel", "outcome"],
            ),
            latency: histogram(
                &r,
                "clairon_delivery_latency_seconds",
                "Time from a delivery's creation to its being sent, in seconds.",
                &["channel"],
                LATENCY_BUCKETS,
            ),
            queue_depth: gauge(
                &r,
                "clairon_queue_depth",
                "Deliveries waiting in the queue (read from the database at scrape time), by channel and status (pending, retrying, sending; batched: held for a digest).",
                &["channel", "status"],
            ),
            oldest_due: gauge(
                &r,
                "clairon_queue_oldest_due_age_seconds",
                "Age of the oldest due, unsent delivery, in seconds, by channel (0 when none).",
                &["channel"],
            ),
            http_requests: counter(
                &r,
                "clairon_http_requests_total",
                "HTTP requests, by method, matched route pattern and status code.",
                &["method", "route", "status"],
            ),
            http_duration: histogram(
                &r,
                "clairon_http_request_duration_seconds",
                "HTTP request duration until the response head, in seconds, by method and route pattern.",
                &["method", "route"],
                HTTP_BUCKETS,
            ),
            connections: gauge(
                &r,
                "clairon_realtime_connections",
                "Open live inbox connections in this process, by transport (websocket, sse).",
                &["transport"],
            ),
            job_runs: counter(
                &r,
                "clairon_job_runs_total",
                "Background job runs, by job and status (success, error).",
                &["job", "status"],
            ),
            job_duration: histogram(
                &r,
                "clairon_job_run_duration_seconds",
                "Background job run duration, in seconds, by job.",
                &["job"],
                JOB_BUCKETS,
            ),
            auth_failures: counter(
                &r,
                "clairon_auth_failures_total",
                "Refused credentials (unknown or revoked API keys, failed /admin sign-ins, forged unsubscribe links), by credential (api_key, admin_login, unsubscribe_link) and answer (401, or 404 for an unsubscribe link: refused; 429: the client address is over its failure limit).",
                &["credential", "answer"],
            ),
            host_events: counter(
                &r,
                "clairon_host_events_total",
                "Delivery events posted to the host application (CLAIRON_EVENTS_WEBHOOK_URL), by outcome of the try (sent, retried, dead).",
                &["outcome"],
            ),
            registry: r,
        }
        .with_known_series()
    }

    /// Counts the tries of one round of the host-event worker (issue 12): `sent` answered
    /// `2xx`, `retried` to be tried again, `dead` given up on.
    pub fn observe_host_events(&self, sent: usize, retried: usize, dead: usize) {
        for (outcome, n) in [("sent", sent), ("retried", retried), ("dead", dead)] {
            if n > 0 {
                self.host_events
                    .with_label_values(&[outcome])
                    .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
            }
        }
    }

    /// Counts one HTTP request: `route` is the matched pattern (`/api/v1/recipients/{id}`) or
    /// `unmatched`, never the raw path, so the label's values stay few.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.http_requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// Counts one refused credential (`credential`: `api_key`, `admin_login` or
    /// `unsubscribe_link`), answered `status` (401 — 404 for an unsubscribe link — or 429 when
    /// the client address was over its failure limit).
    pub fn observe_auth_failure(&self, credential: &str, status: u16) {
        self.auth_failures
            .with_label_values(&[credential, status.to_string().as_str()])
            .inc();
    }

    /// Counts one ended job run (a `running` one is counted when it ends).
    pub fn observe_job_run(&self, run: &JobRun) {
        let Some(duration_ms) = run.duration_ms else {
            return;
        };
        self.job_runs
            .with_label_values(&[run.job.as_str(), run.status.as_str()])
            .inc();
        #[allow(clippy::cast_precision_loss)]
        self.job_duration
            .with_label_values(&[run.job.as_str()])
            .observe(duration_ms as f64 / 1000.0);
    }

    /// Every label value known in advance starts at zero, so its series exists from the first
    /// scrape (a rate or an alert on a series that does not exist yet sees nothing).
    fn with_known_series(self) -> Self {
        for transport in [Transport::WebSocket, Transport::Sse] {
            self.connections
                .with_label_values(&[transport.as_str()])
                .set(0);
        }
        for (credential, refused) in [
            ("api_key", "401"),
            ("admin_login", "401"),
            ("unsubscribe_link", "404"),
        ] {
            for answer in [refused, "429"] {
                self.auth_failures
                    .with_label_values(&[credential, answer])
                    .inc_by(0);
            }
        }
        self
    }

    /// The open live connections, for the live routes.
    pub fn connections(&self) -> ConnectionGauge {
        ConnectionGauge(self.connections.clone())
    }

    /// Sets the queue gauges from `queue` (every channel × queued status is written, zeros
    /// included, so series never vanish) and renders every metric in the Prometheus text
    /// format.
    pub fn render(&self, queue: &QueueDepth) -> String {
        for channel in Channel::ALL {
            for status in QUEUED {
                let count = queue
                    .counts
                    .iter()
                    .filter(|c| c.channel == channel && c.status == status)
                    .map(|c| c.count)
                    .sum::<u64>();
                self.queue_depth
                    .with_label_values(&[channel.as_str(), status.as_str()])
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            let age = queue
                .oldest_due_age_secs
                .iter()
                .find(|(c, _)| *c == channel)
                .map_or(0, |(_, age)| *age);
            self.oldest_due
                .with_label_values(&[channel.as_str()])
                .set(i64::try_from(age).unwrap_or(i64::MAX));
        }
        let mut buffer = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl DispatchObserver for Metrics {
    fn recorded(&self, claimed: &ClaimedDelivery, update: &DeliveryUpdate) {
        let channel = claimed.delivery.channel.as_str();
        self.deliveries
            .with_label_values(&[channel, update.status.as_str()])
            .inc();
        if let Some(attempt) = &update.attempt {
            self.attempts
                .with_label_values(&[channel, attempt.outcome.as_str()])
                .inc();
        }
        if let Some(sent_at) = update.sent_at {
            let ms = (sent_at - claimed.delivery.created_at)
                .num_milliseconds()
                .max(0);
            #[allow(clippy::cast_precision_loss)]
            self.latency
                .with_label_values(&[channel])
                .observe(ms as f64 / 1000.0);
        }
    }
}

/// Which live transport a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `GET /api/v1/me/ws`.
    WebSocket,
    /// `GET /api/v1/me/notifications/stream`.
    Sse,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::Sse => "sse",
        }
    }
}

/// Counts open live connections: [`ConnectionGauge::open`] returns a guard that counts the
/// connection until dropped. A gauge made with `default()` counts into a registry nobody
/// renders.
#[derive(Clone)]
pub struct ConnectionGauge(IntGaugeVec);

impl std::fmt::Debug for ConnectionGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionGauge").finish_non_exhaustive()
    }
}

impl Default for ConnectionGauge {
    fn default() -> Self {
        Metrics::new().connections()
    }
}

impl ConnectionGauge {
    /// Counts one more open connection until the guard is dropped.
    pub fn open(&self, transport: Transport) -> OpenConnection {
        let gauge = self.0.with_label_values(&[transport.as_str()]);
        gauge.inc();
        OpenConnection(gauge)
    }
}

/// One counted open connection; dropping it uncounts it.
#[derive(Debug)]
pub struct OpenConnection(prometheus::IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A [`JobRunRepository`] that counts every recorded run in [`Metrics`].
pub struct MeteredJobRunRepository {
    inner: Arc<dyn JobRunRepository>,
    metrics: Arc<Metrics>,
}

impl MeteredJobRunRepository {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn JobRunRepository>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl JobRunRepository for MeteredJobRunRepository {
    async fn record(&self, run: &JobRun) -> Result<JobRun, RepositoryError> {
        let recorded = self.inner.record(run).await?;
        self.metrics.observe_job_run(&recorded);
        Ok(recorded)
    }

    async fn finish(&self, id: &str, end: &JobRunEnd) -> Result<Finished, RepositoryError> {
        let finished = self.inner.finish(id, end).await?;
        if let Finished::Ended(run) = &finished {
            self.metrics.observe_job_run(run);
        }
        Ok(finished)
    }

    async fn get(&self, id: &str) -> Result<Option<JobRun>, RepositoryError> {
        self.inner.get(id).await
    }

    async fn list(&self, query: &JobRunQuery) -> Result<JobRunPage, RepositoryError> {
        self.inner.list(query).await
    }
}
