//! The delivery outbox as the dispatcher sees it: claim due deliveries, record what happened.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{ChannelSet, Delivery, DeliveryId, DeliveryStatus, Notification, Recipient};

use super::RepositoryError;

/// A delivery claimed by a dispatcher, with what it needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The delivery, now `sending`, `attempts` not yet incremented.
    pub delivery: Delivery,
    /// Its notification.
    pub notification: Notification,
    /// Its recipient as stored now (addresses may have changed since the notification was made).
    pub recipient: Recipient,
    /// The `X-Request-Id` of the HTTP request that created the notification, for the logs.
    pub request_id: Option<String>,
}

/// The audit record of one try (one `delivery_attempts` row).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// 1 for the first try.
    pub number: u32,
    /// When the try started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// `sent`, `transient`, `rate_limited` or `permanent`.
    pub outcome: String,
    /// The failure, when it failed.
    pub error: Option<String>,
    /// The provider's response id (message id), when it gave one.
    pub provider_response_id: Option<String>,
}

/// What a dispatcher decided about one claimed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryUpdate {
    /// Which delivery.
    pub id: DeliveryId,
    /// Its new status (`sent`, `failed`, `retrying`, `dead`, `skipped`).
    pub status: DeliveryStatus,
    /// Tries so far, this one included.
    pub attempts: u32,
    /// The failure, or the skip reason.
    pub last_error: Option<String>,
    /// The provider's message id, when sent.
    pub provider_message_id: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When to try again (`retrying` only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The audit row of this try; `None` when nothing was tried (a skip decided at dispatch).
    pub attempt: Option<AttemptRecord>,
}

/// The outbox of deliveries waiting to be sent.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `limit` deliveries that are due at `now` (`pending`, or `retrying` with
    /// `next_attempt_at <= now`, or `sending` whose lease expired), marks them `sending` with a
    /// lease until `now + lease`, and returns them highest priority first, then oldest due first.
    /// Only deliveries on a channel of `channels` are claimed (a channel paused by a provider's
    /// 429 is left out); an empty set claims nothing.
    /// A claimed delivery is not returned again until its lease expires or it is recorded.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; nothing is claimed then.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
        channels: ChannelSet,
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError>;

    /// Records the outcome of claimed deliveries (and their attempt rows) in one transaction,
    /// releasing their leases.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; nothing is recorded then and the leases will expire.
    async fn record(&self, updates: &[DeliveryUpdate]) -> Result<(), RepositoryError>;
}

/// Wakes the dispatcher when new deliveries were written, so it need not wait for its next poll.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait DeliveryWaker: Send + Sync {
    /// Signals that deliveries are waiting. Never blocks, never fails.
    fn wake(&self);
}
