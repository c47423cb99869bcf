//! The in-app channel's live side: pushes inbox changes to a recipient's open connections, and
//! tells them when the tokens they were opened with are revoked.

use async_trait::async_trait;
use clairon_domain::{Notification, NotificationId, RecipientId};

/// A change to a recipient's inbox that open connections should see.
// Short-lived (one per change, handed to the hub and dropped): boxing the notification would
// only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum RealtimeEvent {
    /// A notification arrived.
    NotificationCreated {
        /// The notification.
        notification: Notification,
        /// Its place in the recipient's inbox sequence (1, 2, 3…, the SSE event id), when the
        /// publisher knows it (the write path does: it numbered it); `None` makes the hub read
        /// it back.
        seq: Option<u64>,
        /// The recipient's unread count after it.
        unread: u64,
    },
    /// Notifications were read.
    NotificationsRead {
        /// Whose.
        recipient_id: RecipientId,
        /// Which.
        ids: Vec<NotificationId>,
        /// The unread count after it.
        unread: u64,
    },
    /// Every token issued for the recipient so far stopped being valid (their tokens were
    /// revoked, or they were erased): open connections authenticated with one MUST close.
    TokensRevoked {
        /// Whose.
        recipient_id: RecipientId,
    },
}

/// Publishes inbox changes to connected clients (in-process, or across processes).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RealtimePublisher: Send + Sync {
    /// Publishes `event` to the recipient's open connections. Best effort: nobody connected is
    /// not an error, and a failure here never fails the notification (it is in the inbox).
    async fn publish(&self, event: RealtimeEvent);

    /// Publishes `events` in order, as one batch where the transport can (one fan-out pass in
    /// this process, one round trip to the broker). Best effort, as [`Self::publish`].
    async fn publish_all(&self, events: Vec<RealtimeEvent>) {
        for event in events {
            self.publish(event).await;
        }
    }
}
