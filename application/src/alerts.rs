//! Job failures as domain events: [`RoutedJobAlerts`] turns a [`JobFailed`] into the domain
//! event `job.failed` `{job, run_id, message, error_details}` and publishes it on the
//! [`EventBus`], so the routing rules decide who hears it (the built-in rule: topic `admins`,
//! priority `high`, every channel its members have; see `docs/routing.md`).
//!
//! The event id is `job-failed-<run id>`, so an alert raised twice for one run (a retried
//! record) creates nothing new. An alert that reaches nobody (no `admins` topic yet) or cannot
//! be written is logged as a warning: the run is already recorded, and a failing alert must
//! never fail the job.

use std::sync::Arc;

use async_trait::async_trait;
use clairon_domain::{Body, EventType, GenericEvent, NotificationKind, SourceEventId, Title};
use serde_json::{json, Map, Value};

use crate::events::{DomainEvent, EventBus, PublishError};
use crate::ports::{Clock, JobAlerts, JobFailed};

/// The event type of a job that failed, or was skipped because its parent failed.
pub const JOB_FAILED: &str = "job.failed";

/// The longest body of a `job.failed` event, in characters (the error details are cut there).
const MAX_BODY_CHARS: usize = 2_000;

/// [`JobAlerts`] through the routing rules: publishes `job.failed` on the bus.
pub struct RoutedJobAlerts {
    bus: Arc<EventBus>,
    clock: Arc<dyn Clock>,
}

impl RoutedJobAlerts {
    /// Publishes on `bus`; `clock` gives `occurred_at`.
    pub fn new(bus: Arc<EventBus>, clock: Arc<dyn Clock>) -> Self {
        Self { bus, clock }
    }

    /// The domain event of `alert`, or `None` when its texts cannot make one (a job name is
    /// never empty, so in practice always `Some`).
    pub fn event(&self, alert: &JobFailed) -> Option<GenericEvent> {
        let id: String = format!("job-failed-{}", alert.run_id)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let title: String = format!("Job {} failed", alert.job)
            .chars()
            .take(200)
            .collect();
        let detail = alert
            .message
            .as_deref()
            .or(alert.error_details.as_deref())
            .filter(|d| !d.trim().is_empty())
            .map_or_else(
                || format!("Run {} of {} failed.", alert.run_id, alert.job),
                str::to_owned,
            );
        let body: String = detail.chars().take(MAX_BODY_CHARS).collect();
        let mut data = Map::new();
        data.insert("job".into(), json!(alert.job));
        data.insert("run_id".into(), json!(alert.run_id));
        data.insert(
            "message".into(),
            alert.message.clone().map_or(Value::Null, Value::String),
        );
        data.insert(
            "error_details".into(),
            alert.error_details.as_deref().map_or(Value::Null, |d| {
                json!(d.chars().take(MAX_BODY_CHARS).collect::<String>())
            }),
        );
        Some(GenericEvent {
            event_id: SourceEventId::parse(&id).ok()?,
            event_type: EventType::parse(JOB_FAILED).ok()?,
            occurred_at: self.clock.now(),
            recipient_ids: Vec::new(),
            topics: Vec::new(),
            title: Title::parse(&title).ok()?,
            body: Body::parse(&body).ok()?,
            action_url: None,
            action_label: None,
            priority: None,
            kind: NotificationKind::Error,
            channels: None,
            fallback: Vec::new(),
            data,
        })
    }
}

#[async_trait]
impl JobAlerts for RoutedJobAlerts {
    async fn job_failed(&self, alert: &JobFailed) {
        tracing::warn!(
            target: "clairon::jobs",
            event = JOB_FAILED,
            job = %alert.job,
            run_id = %alert.run_id,
            message = alert.message.as_deref().unwrap_or(""),
            "job.failed"
        );
        let Some(event) = self.event(alert) else {
            tracing::warn!(target: "clairon::jobs", job = %alert.job, "job.failed could not be made into an event");
            return;
        };
        match self.bus.publish(&DomainEvent::Generic(event)).await {
            Ok(created) => tracing::info!(
                target: "clairon::jobs",
                job = %alert.job,
                notifications = created.len(),
                "job.failed routed"
            ),
            Err(PublishError::NoRecipient) => tracing::warn!(
                target: "clairon::jobs",
                job = %alert.job,
                "job.failed reached nobody: add members to topic `admins` (or route job.failed elsewhere)"
            ),
            Err(PublishError::Duplicate(_)) => {}
            Err(error) => tracing::warn!(
                target: "clairon::jobs",
                job = %alert.job,
                %error,
                "job.failed could not be routed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fixed_clock;

    fn alerts() -> RoutedJobAlerts {
        RoutedJobAlerts::new(Arc::new(EventBus::new()), Arc::new(fixed_clock()))
    }

    #[test]
    fn a_failed_run_becomes_a_job_failed_event_named_after_its_run() {
        let event = alerts()
            .event(&JobFailed {
                job: "sync-gazelle".into(),
                run_id: "42".into(),
                message: None,
                error_details: Some("HTTP 500: Gazelle API unreachable".into()),
            })
            .unwrap();
        assert_eq!(event.event_id.as_str(), "job-failed-42");
        assert_eq!(event.event_type.as_str(), "job.failed");
        assert_eq!(event.title.as_str(), "Job sync-gazelle failed");
        assert_eq!(event.body.as_str(), "HTTP 500: Gazelle API unreachable");
        assert_eq!(event.data["job"], "sync-gazelle");
        assert_eq!(event.data["run_id"], "42");
        assert_eq!(event.data["message"], Value::Null);
        assert!(
            event.recipient_ids.is_empty() && event.topics.is_empty(),
            "the rules decide"
        );
    }

    #[test]
    fn a_run_id_outside_the_event_id_alphabet_is_made_to_fit() {
        let event = alerts()
            .event(&JobFailed {
                job: "report".into(),
                run_id: "0193:ab.cd".into(),
                message: Some("skipped: sync-gazelle failed".into()),
                error_details: None,
            })
            .unwrap();
        assert_eq!(event.event_id.as_str(), "job-failed-0193_ab_cd");
        assert_eq!(event.body.as_str(), "skipped: sync-gazelle failed");
    }
}
