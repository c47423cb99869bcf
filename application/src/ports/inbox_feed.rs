//! The inbox as a numbered feed: each recipient's notifications carry a sequence number (1, 2,
//! 3… in commit order) so a live client that reconnects can ask for exactly what it missed.

use async_trait::async_trait;
use clairon_domain::{Notification, NotificationId, RecipientId};

use super::RepositoryError;

/// A notification with its place in its recipient's feed.
#[derive(Debug, Clone, PartialEq)]
pub struct SequencedNotification {
    /// Position in the recipient's feed: 1 for their first notification, then +1 each, without
    /// gaps, in the order the notifications were committed.
    pub seq: u64,
    /// The notification.
    pub notification: Notification,
}

/// Reads a recipient's notifications by sequence number.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait InboxFeed: Send + Sync {
    /// The recipient's notifications with `seq > after`, lowest first, at most `limit` of them.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn after(
        &self,
        recipient_id: &RecipientId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SequencedNotification>, RepositoryError>;

    /// One notification with its sequence number, or `None` when it does not exist.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn sequenced(
        &self,
        id: &NotificationId,
    ) -> Result<Option<SequencedNotification>, RepositoryError>;

    /// The highest sequence number given to the recipient so far (0 when none).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    async fn last_seq(&self, recipient_id: &RecipientId) -> Result<u64, RepositoryError>;
}
