//! Web Push (RFC 8030): the browsers a recipient opted in from, and the sender that pushes to
//! one of them. A `web_push` delivery is addressed to one subscription's endpoint
//! (`Delivery::address`): the planner makes one per subscription, the dispatcher looks the
//! subscription up by that endpoint when it sends, and deletes it when the push service says
//! it is gone (`404`/`410`, RFC 8030 §7.3).

use std::collections::HashMap;

use async_trait::async_trait;
use clairon_domain::{DeliveryId, NotificationId, Priority, RecipientId};

use super::{RepositoryError, SendOutcome};

/// The start of the cause of a [`SendOutcome::Permanent`] that means the subscription is gone
/// (the push service answered `404` or `410`): the dispatcher then deletes it.
pub const PUSH_SUBSCRIPTION_GONE: &str = "push subscription gone";

/// One browser's push subscription (W3C Push API `PushSubscription.toJSON()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// The push service URL to POST to.
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed point (65 bytes), base64url (RFC 8291 §3.1).
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url (RFC 8291 §3.2).
    pub auth: String,
}

/// A push message, ready to encrypt and send: the service worker receives
/// `{id, title, body, action_url}` as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    /// The delivery it belongs to.
    pub delivery_id: DeliveryId,
    /// The subscription to push to.
    pub subscription: PushSubscription,
    /// The notification id (the payload's `id`).
    pub notification_id: NotificationId,
    /// The payload's `title`.
    pub title: String,
    /// The payload's `body`.
    pub body: String,
    /// The payload's `action_url`: where a click on the notification leads, if anywhere.
    pub action_url: Option<String>,
    /// The notification's priority: gives the `Urgency` and `TTL` headers (RFC 8030 §5.2, §5.3).
    pub priority: Priority,
}

/// Sends Web Push messages.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PushSender: Send + Sync {
    /// Encrypts and POSTs `message` to its subscription's endpoint. MUST classify the answer:
    /// `201`/`202` [`SendOutcome::Sent`]; `404`/`410` [`SendOutcome::Permanent`] with a cause
    /// starting [`PUSH_SUBSCRIPTION_GONE`]; `429` [`SendOutcome::RateLimited`]; `5xx` and
    /// network errors [`SendOutcome::Transient`]. Never panics.
    async fn send(&self, message: &PushMessage) -> SendOutcome;
}

/// The stored push subscriptions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PushSubscriptions: Send + Sync {
    /// The endpoints of each of `recipients`' subscriptions, oldest first; a recipient with
    /// none is absent.
    ///
    /// # Errors
    /// [`RepositoryError`] when the store fails.
    async fn endpoints(
        &self,
        recipients: &[RecipientId],
    ) -> Result<HashMap<RecipientId, Vec<String>>, RepositoryError>;

    /// `recipient`'s subscription at `endpoint`, `None` when it was deleted since.
    ///
    /// # Errors
    /// [`RepositoryError`] when the store fails.
    async fn find(
        &self,
        recipient: &RecipientId,
        endpoint: &str,
    ) -> Result<Option<PushSubscription>, RepositoryError>;

    /// Deletes `recipient`'s subscription at `endpoint`; whether there was one.
    ///
    /// # Errors
    /// [`RepositoryError`] when the store fails.
    async fn forget(
        &self,
        recipient: &RecipientId,
        endpoint: &str,
    ) -> Result<bool, RepositoryError>;
}
