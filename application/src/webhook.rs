//! What a signed webhook says: the Standard Webhooks 1.0 payload of a notification.
//!
//! `{"type": "notification.created", "timestamp": RFC 3339, "data": <the notification as the
//! API shows it>}`: `data` is the [`NotificationView`] the HTTP API serialises for
//! `GET /api/v1/notifications/{id}`, so the two cannot drift.

use chrono::{DateTime, SecondsFormat, Utc};
use clairon_domain::Notification;
use serde::Serialize;

use crate::queries::NotificationView;

/// The event type of a notification's webhook.
pub const NOTIFICATION_CREATED: &str = "notification.created";

/// A Standard Webhooks payload: `type`, `timestamp` and `data` (the specification's
/// recommended envelope, "Payload structure").
#[derive(Debug, Serialize)]
pub struct WebhookPayload<T: Serialize> {
    /// The event type, dot-separated (`notification.created`, `delivery.sent`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the event happened, RFC 3339 in UTC with millisecond precision.
    pub timestamp: String,
    /// The event's object.
    pub data: T,
}

impl<T: Serialize> WebhookPayload<T> {
    /// The payload of `kind` about `data`, happened `at`.
    pub fn new(kind: &'static str, at: DateTime<Utc>, data: T) -> Self {
        Self {
            kind,
            timestamp: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            data,
        }
    }

    /// The payload as the bytes that are signed and sent (compact JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data (strings, numbers, maps with string keys) cannot fail; an
        // empty body would be refused by any receiver rather than panic here.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The `notification.created` body of `notification`, as of `now`.
pub fn notification_created_body(notification: &Notification, now: DateTime<Utc>) -> Vec<u8> {
    WebhookPayload::new(
        NOTIFICATION_CREATED,
        now,
        NotificationView::from(notification.clone()),
    )
    .to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::notification;

    #[test]
    fn the_body_is_the_standard_envelope_around_the_api_view() {
        let notification = notification("n-1", "artist-0001");
        let now = "2027-03-01T10:00:00Z".parse().unwrap();
        let body: serde_json::Value =
            serde_json::from_slice(&notification_created_body(&notification, now)).unwrap();
        assert_eq!(body["type"], "notification.created");
        assert_eq!(body["timestamp"], "2027-03-01T10:00:00.000Z");
        assert_eq!(body["data"]["id"], notification.id.to_string());
        assert_eq!(body["data"]["title"], notification.title.as_str());
        assert_eq!(body["data"]["read"], false);
    }
}
