//! Where recipients' preference documents and consent histories are kept.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{
    ChannelName, Consent, ConsentState, EventType, NewConsent, Preferences, RecipientId,
};

use super::RepositoryError;

/// A stored preference document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPreferences {
    /// The document.
    pub preferences: Preferences,
    /// When it was last written (UTC).
    pub updated_at: DateTime<Utc>,
}

/// Stores one preference document per recipient.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PreferenceRepository: Send + Sync {
    /// The recipient's document, or `None` when they never set one (the defaults apply).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn get(&self, id: &RecipientId) -> Result<Option<StoredPreferences>, RepositoryError>;

    /// The documents of those among `ids` who set one, in as few queries as the bind-parameter
    /// limits allow (one per 500 ids): the notification write path calls it once per request.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn get_many(
        &self,
        ids: &[RecipientId],
    ) -> Result<HashMap<RecipientId, Preferences>, RepositoryError>;

    /// Replaces the recipient's document whole, dated `at` (UTC).
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when the recipient does not exist (any more);
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn put(
        &self,
        id: &RecipientId,
        preferences: &Preferences,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// Sets `event_types.<event_type>.<channel> = false` in the recipient's document (creating
    /// it with that entry only), in one transaction, dated `at`: read, changed by
    /// [`Preferences::opt_out`], written. Idempotent.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when the recipient does not exist (any more);
    /// [`RepositoryError::Corrupt`] for `in_app`, which cannot be switched off;
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn opt_out(
        &self,
        id: &RecipientId,
        event_type: &EventType,
        channel: ChannelName,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;
}

/// What recording a consent did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedConsent {
    /// The record written.
    pub consent: Consent,
    /// Deliveries cancelled (`consent_revoked`) because it withdrew consent: the recipient's
    /// `pending` and `retrying` ones on that channel.
    pub cancelled: u64,
}

/// Stores the append-only consent history of each recipient.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConsentRepository: Send + Sync {
    /// Appends `consent` for `id`, recorded at `at` (UTC). When it withdraws consent, cancels
    /// in the SAME transaction every `pending` or `retrying` delivery of theirs on that channel
    /// (`cancelled`, reason `consent_revoked`, each move asked of the domain's `Delivery`).
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when the recipient does not exist (any more);
    /// [`RepositoryError::Unavailable`] when the database fails (nothing is written).
    async fn record(
        &self,
        id: &RecipientId,
        consent: &NewConsent,
        at: DateTime<Utc>,
    ) -> Result<RecordedConsent, RepositoryError>;

    /// The recipient's history, newest first.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn history(&self, id: &RecipientId) -> Result<Vec<Consent>, RepositoryError>;

    /// The current consents of those among `ids` with any record, on `channels` only, in as
    /// few queries as the bind-parameter limits allow (one per 500 ids).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn states(
        &self,
        ids: &[RecipientId],
        channels: &[ChannelName],
    ) -> Result<HashMap<RecipientId, ConsentState>, RepositoryError>;
}
