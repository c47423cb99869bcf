//! Read models, serialisable as the API shows them.

use chrono::{DateTime, Utc};
use clairon_domain::{Consent, Delivery, DeliveryStatus, Metadata, Notification};
use serde::Serialize;

use crate::ports::{AttemptRecord, NotificationDetails};

/// A notification as an inbox shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationView {
    /// UUIDv7.
    pub id: String,
    /// Whose.
    pub recipient_id: String,
    /// `info|success|warning|error`.
    pub kind: &'static str,
    /// `critical|high|normal|low`.
    pub priority: &'static str,
    /// Title.
    pub title: String,
    /// Plain-text body.
    pub body: String,
    /// Call-to-action URL.
    pub action_url: Option<String>,
    /// Call-to-action label.
    pub action_label: Option<String>,
    /// Producer data (a JSON object).
    pub metadata: Metadata,
    /// `planning.assigned`, `custom`, ...
    pub event_type: String,
    /// The event it came from.
    pub source_event_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: DateTime<Utc>,
    /// RFC 3339, UTC; null while unread.
    pub read_at: Option<DateTime<Utc>>,
    /// Whether it was read.
    pub read: bool,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            read: n.is_read(),
            id: n.id.to_string(),
            recipient_id: n.recipient_id.to_string(),
            kind: n.kind.as_str(),
            priority: n.priority.as_str(),
            title: n.title.as_str().to_owned(),
            body: n.body.as_str().to_owned(),
            action_url: n.action_url.map(|u| u.as_str().to_owned()),
            action_label: n.action_label.map(|l| l.as_str().to_owned()),
            metadata: n.metadata,
            event_type: n.event_type.as_str().to_owned(),
            source_event_id: n.source_event_id.map(|s| s.to_string()),
            created_at: n.created_at,
            read_at: n.read_at,
        }
    }
}

/// A delivery as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryView {
    /// UUIDv7.
    pub id: String,
    /// `in_app|email|telegram`.
    pub channel: &'static str,
    /// `pending|sending|sent|retrying|failed|dead|skipped|cancelled`.
    pub status: &'static str,
    /// Tries made.
    pub attempts: u32,
    /// The skip reason or last failure.
    pub last_error: Option<String>,
    /// The provider's message id.
    pub provider_message_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: DateTime<Utc>,
    /// RFC 3339, UTC.
    pub sent_at: Option<DateTime<Utc>>,
    /// Why it was skipped or cancelled, as `"<code>: <detail>"` (`opted_out:
    /// event_types.planning.modified.email`, `no_consent: sms`, `unreachable: …`,
    /// `consent_revoked`); `None` for other statuses.
    pub reason: Option<String>,
    /// When it is due (RFC 3339, UTC) while `pending` or `retrying` (the end of quiet hours for
    /// a postponed one); `None` otherwise.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The delivery of the same notification this one stands in for in a fallback chain (the
    /// link before it gave up); `None` outside a chain and for its first link.
    pub fallback_of: Option<String>,
    /// The channels of its chain still to try, in order, if this one gives up.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<&'static str>,
    /// Every try, in the order they were made (in `GET /api/v1/notifications/{id}`; left out
    /// of listings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempt_log: Vec<AttemptView>,
}

/// One try of a delivery (a `delivery_attempts` row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptView {
    /// 1 for the first try. A 429 answer does not use up a number (the next try repeats it),
    /// and a manual retry starts a fresh series at 1.
    pub number: u32,
    /// RFC 3339, UTC.
    pub started_at: DateTime<Utc>,
    /// How long the provider took, in ms.
    pub duration_ms: u64,
    /// `sent|transient|rate_limited|permanent`.
    pub outcome: String,
    /// The failure, when it failed.
    pub error: Option<String>,
    /// The provider's response id (message id), when it gave one.
    pub provider_response_id: Option<String>,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        Self {
            number: a.number,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            outcome: a.outcome.as_str().to_owned(),
            error: a.error,
            provider_response_id: a.provider_response_id,
        }
    }
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        let reason = matches!(
            d.status,
            DeliveryStatus::Skipped | DeliveryStatus::Cancelled
        )
        .then(|| d.last_error.clone())
        .flatten();
        let next_attempt_at =
            matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Retrying)
                .then_some(d.next_attempt_at)
                .flatten();
        Self {
            reason,
            next_attempt_at,
            id: d.id.to_string(),
            channel: d.channel.as_str(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_error: d.last_error,
            provider_message_id: d.provider_message_id,
            created_at: d.created_at,
            sent_at: d.sent_at,
            fallback_of: d.fallback_of.map(|id| id.to_string()),
            fallback: d.fallback.iter().map(|c| c.as_str()).collect(),
            attempt_log: Vec::new(),
        }
    }
}

/// A notification with its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationDetailsView {
    /// The notification's fields.
    #[serde(flatten)]
    pub notification: NotificationView,
    /// One per channel.
    pub deliveries: Vec<DeliveryView>,
}

impl From<NotificationDetails> for NotificationDetailsView {
    fn from(mut d: NotificationDetails) -> Self {
        Self {
            notification: d.notification.into(),
            deliveries: d
                .deliveries
                .into_iter()
                .map(|delivery| {
                    let attempts = d.attempts.remove(&delivery.id).unwrap_or_default();
                    DeliveryView {
                        attempt_log: attempts.into_iter().map(Into::into).collect(),
                        ..DeliveryView::from(delivery)
                    }
                })
                .collect(),
        }
    }
}

/// One consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    /// Its number (recording order).
    pub id: i64,
    /// A catalogue channel name (`sms`).
    pub channel: &'static str,
    /// Granted (`true`) or withdrawn.
    pub granted: bool,
    /// Where it was given.
    pub source: String,
    /// The words shown.
    pub wording: Option<String>,
    /// RFC 3339, UTC.
    pub recorded_at: DateTime<Utc>,
}

impl From<Consent> for ConsentView {
    fn from(c: Consent) -> Self {
        Self {
            id: c.id,
            channel: c.channel.as_str(),
            granted: c.granted,
            source: c.source.as_str().to_owned(),
            wording: c.wording.map(|w| w.as_str().to_owned()),
            recorded_at: c.recorded_at,
        }
    }
}
