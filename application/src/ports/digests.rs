//! Digests (issue 13): the store of `batched` deliveries and of the digests sent for them.
//!
//! A digest is keyed by its recipient, channel and window end ([`DigestKey`]): the key is
//! unique in storage, so a run that crashed and a run that overlaps it settle on the same digest
//! (its id, hence its email `Message-ID`, is the same), never two.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{Channel, DeliveryId, NotificationId, RecipientId};

use super::RepositoryError;

/// The idempotency key of one digest: whose, which channel, which window (its end, UTC).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DigestKey {
    /// The recipient.
    pub recipient_id: RecipientId,
    /// The digested channel (never `in_app`).
    pub channel: Channel,
    /// The window's end (UTC): the `next_attempt_at` of its `batched` deliveries.
    pub window_end: DateTime<Utc>,
}

/// One notification listed in a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestItem {
    /// The `batched` delivery it settles.
    pub delivery_id: DeliveryId,
    /// Its notification.
    pub notification_id: NotificationId,
    /// The notification's title.
    pub title: String,
    /// When the notification was created (UTC).
    pub created_at: DateTime<Utc>,
    /// The notification's call to action, if any.
    pub action_url: Option<String>,
}

/// A digest opened for sending: its stable id and what it lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDigest {
    /// UUIDv7, stable across runs for its key: the email `Message-ID` and the Telegram
    /// delivery id of the digest.
    pub id: DeliveryId,
    /// Set when the digest was already sent (a run settled it): its provider id; what is
    /// listed is then settled with it, nothing is sent again.
    pub sent_as: Option<String>,
    /// The unread notifications it lists, oldest first; never empty.
    pub items: Vec<DigestItem>,
}

/// What became of a digest the provider was asked to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestOutcome {
    /// Accepted: the digest and its deliveries become `sent` with this provider id.
    Sent {
        /// The provider's id of the digest message.
        provider_message_id: String,
    },
    /// Refused for good (or the recipient cannot be reached on the channel any more): the
    /// digest and its deliveries become `failed` with the reason.
    Failed(String),
}

/// Storage of batched deliveries and digests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DigestStore: Send + Sync {
    /// The keys of the windows ended at or before `now` that still hold `batched`
    /// deliveries, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails.
    async fn due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DigestKey>, RepositoryError>;

    /// In one transaction: the `batched` deliveries of `key` whose notification was read in
    /// the inbox become `skipped` (`read before the digest`); when others remain, the digest
    /// row of `key` is created (id `id`, status `sending`) unless it exists, and it is
    /// returned with them. `None` when nothing is left to send (an empty digest is not sent).
    /// The number of deliveries skipped comes back too.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails.
    async fn open(
        &self,
        key: &DigestKey,
        id: DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<(Option<OpenDigest>, u64), RepositoryError>;

    /// In one transaction: the digest `id` and the listed deliveries (still `batched`)
    /// take `outcome`; returns the deliveries moved.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails.
    async fn settle(
        &self,
        id: &DeliveryId,
        deliveries: &[DeliveryId],
        outcome: &DigestOutcome,
        now: DateTime<Utc>,
    ) -> Result<u64, RepositoryError>;
}
