//! `GetNotification`: one notification with its deliveries.

use std::sync::Arc;

use clairon_domain::NotificationId;

use crate::ports::{NotificationRepository, RepositoryError};
use crate::queries::NotificationDetailsView;

/// Fetch one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetNotification {
    /// Which.
    pub id: NotificationId,
}

/// Why it could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum GetNotificationError {
    /// No such notification.
    #[error("notification {0} not found")]
    NotFound(NotificationId),
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`GetNotification`].
pub struct GetNotificationHandler {
    notifications: Arc<dyn NotificationRepository>,
}

impl GetNotificationHandler {
    /// Builds the handler on its port.
    pub fn new(notifications: Arc<dyn NotificationRepository>) -> Self {
        Self { notifications }
    }

    /// Fetches it.
    ///
    /// # Errors
    /// [`GetNotificationError`].
    pub async fn execute(
        &self,
        query: GetNotification,
    ) -> Result<NotificationDetailsView, GetNotificationError> {
        self.notifications
            .get(&query.id)
            .await?
            .map(NotificationDetailsView::from)
            .ok_or(GetNotificationError::NotFound(query.id))
    }
}
