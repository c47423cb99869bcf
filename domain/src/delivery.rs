//! Deliveries: a notification on one channel, and where it stands.
//!
//! Status moves forward: `pending → sending → sent`; a transient failure goes `sending →
//! retrying → sending …` until it is sent or, out of attempts, `dead`; a refusal is `failed`;
//! a channel that cannot reach the recipient is `skipped` from the start. Only an operator's
//! retry moves a `dead` or `failed` delivery back to `pending`. `cancelled` is reserved for
//! withdrawn scheduled deliveries.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::error::ValidationError;
use crate::notification::{opaque_id, NotificationId};
use crate::recipient::RecipientId;

opaque_id!(
    /// A delivery's id: a UUIDv7 in text form. It is stable across retries, so it also makes the
    /// email `Message-ID`.
    DeliveryId,
    "delivery_id"
);

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for a dispatcher.
    Pending,
    /// Claimed by a dispatcher, being sent.
    Sending,
    /// Accepted by the channel's provider.
    Sent,
    /// Failed, waiting for another attempt.
    Retrying,
    /// Failed for good: the provider refused it.
    Failed,
    /// Out of attempts.
    Dead,
    /// The channel cannot reach the recipient; never tried.
    Skipped,
    /// Withdrawn before it was sent.
    Cancelled,
}

impl DeliveryStatus {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `status` for an unknown name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Ok(match raw {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "retrying" => Self::Retrying,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            "skipped" => Self::Skipped,
            "cancelled" => Self::Cancelled,
            other => {
                return Err(ValidationError::new(
                    "status",
                    format!("unknown delivery status {other:?}"),
                ))
            }
        })
    }

    /// Whether nothing will happen to the delivery any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Sent | Self::Failed | Self::Dead | Self::Skipped | Self::Cancelled
        )
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// UUIDv7.
    pub id: DeliveryId,
    /// The notification it delivers.
    pub notification_id: NotificationId,
    /// Who it goes to (denormalised from the notification for the dispatcher).
    pub recipient_id: RecipientId,
    /// The channel.
    pub channel: Channel,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Tries made so far.
    pub attempts: u32,
    /// Why it was skipped, or the last failure.
    pub last_error: Option<String>,
    /// The provider's id of the sent message (SMTP `Message-ID`, Telegram `message_id`).
    pub provider_message_id: Option<String>,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When the provider accepted it (UTC).
    pub sent_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// A delivery waiting for a dispatcher.
    pub fn pending(
        id: DeliveryId,
        notification_id: NotificationId,
        recipient_id: RecipientId,
        channel: Channel,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            notification_id,
            recipient_id,
            channel,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            provider_message_id: None,
            created_at: now,
            sent_at: None,
        }
    }

    /// A delivery that will never be tried, with the reason.
    pub fn skipped(
        id: DeliveryId,
        notification_id: NotificationId,
        recipient_id: RecipientId,
        channel: Channel,
        reason: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            status: DeliveryStatus::Skipped,
            last_error: Some(reason.into()),
            ..Self::pending(id, notification_id, recipient_id, channel, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in [
            DeliveryStatus::Pending,
            DeliveryStatus::Sending,
            DeliveryStatus::Sent,
            DeliveryStatus::Retrying,
            DeliveryStatus::Failed,
            DeliveryStatus::Dead,
            DeliveryStatus::Skipped,
            DeliveryStatus::Cancelled,
        ] {
            assert_eq!(DeliveryStatus::parse(status.as_str()).unwrap(), status);
        }
        assert!(DeliveryStatus::parse("lost").is_err());
    }

    #[test]
    fn only_settled_statuses_are_final() {
        assert!(DeliveryStatus::Sent.is_final());
        assert!(DeliveryStatus::Skipped.is_final());
        assert!(!DeliveryStatus::Pending.is_final());
        assert!(!DeliveryStatus::Retrying.is_final());
    }
}
