//! `UnreadCount`: the number on the inbox badge.

use std::sync::Arc;

use clairon_domain::RecipientId;

use crate::ports::{NotificationRepository, RecipientRepository, RepositoryError};

/// How many unread notifications a recipient has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadCount {
    /// Whose.
    pub recipient_id: RecipientId,
}

/// Why it could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum UnreadCountError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`UnreadCount`].
pub struct UnreadCountHandler {
    recipients: Arc<dyn RecipientRepository>,
    notifications: Arc<dyn NotificationRepository>,
}

impl UnreadCountHandler {
    /// Builds the handler on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        notifications: Arc<dyn NotificationRepository>,
    ) -> Self {
        Self {
            recipients,
            notifications,
        }
    }

    /// Counts.
    ///
    /// # Errors
    /// [`UnreadCountError`].
    pub async fn execute(&self, query: UnreadCount) -> Result<u64, UnreadCountError> {
        if self.recipients.get(&query.recipient_id).await?.is_none() {
            return Err(UnreadCountError::UnknownRecipient(query.recipient_id));
        }
        Ok(self.notifications.unread_count(&query.recipient_id).await?)
    }
}
