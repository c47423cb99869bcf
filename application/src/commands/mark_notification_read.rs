//! `MarkNotificationRead`: the recipient has seen one notification.

use std::sync::Arc;

use clairon_domain::{NotificationId, RecipientId};

use crate::ports::{
    Clock, NotificationRepository, RealtimeEvent, RealtimePublisher, RepositoryError,
};
use crate::queries::NotificationView;

/// Mark one notification read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkNotificationRead {
    /// Which notification.
    pub id: NotificationId,
    /// When set, only this recipient's notification may be marked (recipient-scoped routes);
    /// someone else's reads as not found.
    pub owner: Option<RecipientId>,
}

/// Why it could not be marked.
#[derive(Debug, thiserror::Error)]
pub enum MarkNotificationReadError {
    /// No such notification (or not the owner's).
    #[error("notification {0} not found")]
    NotFound(NotificationId),
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`MarkNotificationRead`]; marking twice is harmless and keeps the first read time.
pub struct MarkNotificationReadHandler {
    notifications: Arc<dyn NotificationRepository>,
    realtime: Arc<dyn RealtimePublisher>,
    clock: Arc<dyn Clock>,
}

impl MarkNotificationReadHandler {
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

    /// Marks it read, tells the recipient's open connections, returns the notification.
    ///
    /// # Errors
    /// [`MarkNotificationReadError`].
    #[tracing::instrument(name = "mark_notification_read", skip_all, fields(id = %command.id))]
    pub async fn execute(
        &self,
        command: MarkNotificationRead,
    ) -> Result<NotificationView, MarkNotificationReadError> {
        let notification = self
            .notifications
            .mark_read(&command.id, command.owner, self.clock.now())
            .await?
            .ok_or_else(|| MarkNotificationReadError::NotFound(command.id.clone()))?;
        let unread = self
            .notifications
            .unread_count(&notification.recipient_id)
            .await?;
        self.realtime
            .publish(RealtimeEvent::NotificationsRead {
                recipient_id: notification.recipient_id.clone(),
                ids: vec![notification.id.clone()],
                unread,
            })
            .await;
        Ok(NotificationView::from(notification))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockNotificationRepository, MockRealtimePublisher};
    use crate::test_support::{fixed_clock, notification};

    #[tokio::test]
    async fn someone_elses_notification_reads_as_not_found_and_nothing_is_published() {
        let mut repo = MockNotificationRepository::new();
        repo.expect_mark_read()
            .withf(|_, owner, _| owner.as_ref().map(|o| o.as_str()) == Some("artist-2"))
            .returning(|_, _, _| Ok(None));
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish().never();
        let handler = MarkNotificationReadHandler::new(
            Arc::new(repo),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
        );
        let err = handler
            .execute(MarkNotificationRead {
                id: NotificationId::parse("n-1").unwrap(),
                owner: Some(RecipientId::parse("artist-2").unwrap()),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, MarkNotificationReadError::NotFound(_)));
    }

    #[tokio::test]
    async fn a_read_is_published_with_the_new_unread_count() {
        let mut repo = MockNotificationRepository::new();
        repo.expect_mark_read().returning(|_, _, at| {
            let mut n = notification("n-1", "artist-1");
            n.read_at = Some(at);
            Ok(Some(n))
        });
        repo.expect_unread_count().returning(|_| Ok(4));
        let mut realtime = MockRealtimePublisher::new();
        realtime
            .expect_publish()
            .withf(|e| matches!(e, RealtimeEvent::NotificationsRead { ids, unread: 4, .. } if ids.len() == 1))
            .times(1)
            .return_const(());
        let handler = MarkNotificationReadHandler::new(
            Arc::new(repo),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
        );
        let view = handler
            .execute(MarkNotificationRead {
                id: NotificationId::parse("n-1").unwrap(),
                owner: None,
            })
            .await
            .unwrap();
        assert!(view.read);
    }
}
