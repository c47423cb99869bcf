//! The in-process realtime hub: fans inbox changes out to every subscriber in this process
//! (WebSocket and SSE connections subscribe here).

use async_trait::async_trait;
use clairon_application::ports::{RealtimeEvent, RealtimePublisher};
use tokio::sync::broadcast;

/// Broadcasts [`RealtimeEvent`]s to in-process subscribers.
///
/// A subscriber that falls more than `capacity` events behind loses the oldest ones (and is
/// told so by `broadcast::error::RecvError::Lagged`); the inbox in the database stays complete.
#[derive(Debug, Clone)]
pub struct InProcessHub {
    sender: broadcast::Sender<RealtimeEvent>,
}

impl InProcessHub {
    /// A hub buffering up to `capacity` events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// A new subscription to every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RealtimeEvent> {
        self.sender.subscribe()
    }
}

#[async_trait]
impl RealtimePublisher for InProcessHub {
    async fn publish(&self, event: RealtimeEvent) {
        // No subscriber is not an error: the notification is in the inbox either way.
        let _ = self.sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_domain::{NotificationId, RecipientId};

    #[tokio::test]
    async fn every_subscriber_receives_what_is_published_after_it_subscribed() {
        let hub = InProcessHub::new(8);
        let mut first = hub.subscribe();
        let mut second = hub.subscribe();
        let event = RealtimeEvent::NotificationsRead {
            recipient_id: RecipientId::parse("artist-1").unwrap(),
            ids: vec![NotificationId::parse("n-1").unwrap()],
            unread: 0,
        };
        hub.publish(event.clone()).await;
        assert_eq!(first.recv().await.unwrap(), event);
        assert_eq!(second.recv().await.unwrap(), event);
    }
}
