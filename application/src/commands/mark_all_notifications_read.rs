//! `MarkAllNotificationsRead`: the recipient has seen everything in their inbox.

use std::sync::Arc;

use clairon_domain::RecipientId;

use crate::ports::{
    Clock, NotificationRepository, RealtimeEvent, RealtimePublisher, RepositoryError,
};

/// Mark every unread notification of a recipient read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkAllNotificationsRead {
    /// Whose inbox.
    pub recipient_id: RecipientId,
}

/// Why it failed.
#[derive(Debug, thiserror::Error)]
pub enum MarkAllNotificationsReadError {
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`MarkAllNotificationsRead`].
pub struct MarkAllNotificationsReadHandler {
    notifications: Arc<dyn NotificationRepository>,
    realtime: Arc<dyn RealtimePublisher>,
    clock: Arc<dyn Clock>,
}

impl MarkAllNotificationsReadHandler {
    /// Builds the handler on its ports.
    pub fn new(
        notifications: Arc<dyn NotificationRepository>,
        realtime: Arc<dyn RealtimePublisher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            notifications,
            realtime,
            clock,
        }
    }

    /// Marks them read and returns how many changed.
    ///
    /// # Errors
    /// [`MarkAllNotificationsReadError`].
    #[tracing::instrument(name = "mark_all_notifications_read", skip_all, fields(recipient_id = %command.recipient_id))]
    pub async fn execute(
        &self,
        command: MarkAllNotificationsRead,
    ) -> Result<u64, MarkAllNotificationsReadError> {
        let ids = self
            .notifications
            .mark_all_read(&command.recipient_id, self.clock.now())
            .await?;
        let marked = ids.len() as u64;
        if !ids.is_empty() {
            let unread = self
                .notifications
                .unread_count(&command.recipient_id)
                .await?;
            self.realtime
                .publish(RealtimeEvent::NotificationsRead {
                    recipient_id: command.recipient_id,
                    ids,
                    unread,
                })
                .await;
        }
        Ok(marked)
    }
}
