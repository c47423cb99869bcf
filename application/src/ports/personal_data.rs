//! Everything Clairon holds about one recipient, read or erased at once (GDPR articles 15, 17
//! and 20: access, erasure, portability).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{
    Body, Consent, Metadata, Notification, Recipient, RecipientId, Title, TopicKey,
};

use super::{NotificationDetails, RepositoryError, StoredPreferences};

/// Everything held about one recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientData {
    /// The profile.
    pub recipient: Recipient,
    /// Every notification — scheduled, cancelled and read ones included — oldest first, each
    /// with its deliveries and every attempt row.
    pub notifications: Vec<NotificationDetails>,
    /// Their preference document, when they set one.
    pub preferences: Option<StoredPreferences>,
    /// Their consent history, newest first.
    pub consents: Vec<Consent>,
    /// The topics they are a member of, sorted by key.
    pub topics: Vec<TopicKey>,
    /// The endpoints of their Web Push subscriptions, oldest first.
    pub push_subscriptions: Vec<String>,
}

/// How many rows an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErasedCounts {
    /// Notifications.
    pub notifications: u64,
    /// Deliveries.
    pub deliveries: u64,
    /// Delivery attempts.
    pub attempts: u64,
    /// Other recipients' notifications that named them, rewritten without them.
    pub redacted: u64,
    /// Stored `Idempotency-Key` records (answers and request fingerprints) that named them,
    /// dropped.
    pub idempotency_keys: u64,
}

/// A notification of someone else that named the erased recipient, as it is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    /// The title, without them.
    pub title: Title,
    /// The body, without them.
    pub body: Body,
    /// The metadata, without them.
    pub metadata: Metadata,
}

/// Rewrites, for an erasure, another recipient's notification that names the erased one.
///
/// [`PersonalDataStore::erase`] calls it inside its transaction, once per such notification:
/// it MUST be quick and do no I/O, and it cannot fail (a redaction that cannot be done well is
/// done crudely, never skipped).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait MentionRedactor: Send + Sync {
    /// `notification`, which names `erased` (see
    /// `clairon_domain::rules::mentioned_recipients`), with every trace of them replaced.
    fn redact(&self, notification: &Notification, erased: &Recipient) -> Redacted;
}

/// What an erasure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureOutcome {
    /// The recipient and everything about them are gone; the audit row is written.
    Erased(ErasedCounts),
    /// No such recipient; nothing changed.
    UnknownRecipient,
    /// A delivery to them is being sent right now (claimed, lease not expired): the message
    /// cannot be recalled and its outcome is about to be recorded. Nothing changed; the caller
    /// may try again once the lease is over.
    DeliveryInFlight,
}

/// The audit record of an erasure: no personal data, by design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureAudit {
    /// Who asked: `api-key:{id}`, or `env` for a key from `CLAIRON_API_KEYS`.
    pub actor: String,
    /// When (UTC).
    pub at: DateTime<Utc>,
}

/// Reads and erases all of one recipient's data.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PersonalDataStore: Send + Sync {
    /// Everything about `id`, or `None` for an unknown recipient.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; [`RepositoryError::Corrupt`]
    /// when a stored row no longer validates.
    async fn export(&self, id: &RecipientId) -> Result<Option<RecipientData>, RepositoryError>;

    /// Erases `id` in ONE transaction: first cancels their pending and retrying deliveries (so
    /// no dispatcher claims them meanwhile), then deletes every attempt, delivery and
    /// notification of theirs and the recipient, rewrites with `redactor` every notification
    /// of someone else that names them (recorded when it was written), drops every stored
    /// `Idempotency-Key` record of a request that named them, and writes one audit row from
    /// `audit` (without the recipient's id). MUST change nothing and return
    /// [`ErasureOutcome::DeliveryInFlight`] when one of their deliveries is claimed with a lease
    /// not yet expired at `audit.at`, and [`ErasureOutcome::UnknownRecipient`] for an unknown id.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; nothing is changed then.
    async fn erase(
        &self,
        id: &RecipientId,
        audit: &ErasureAudit,
        redactor: Arc<dyn MentionRedactor>,
    ) -> Result<ErasureOutcome, RepositoryError>;
}
