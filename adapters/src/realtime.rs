//! The realtime hub: routes inbox changes to the open connections (WebSocket, SSE) of the one
//! recipient they concern, in this process — and, on PostgreSQL, through `LISTEN/NOTIFY` to the
//! other processes on the same database ([`pg_notify`]).
//!
//! One room per recipient: a `tokio::sync::broadcast` channel created on the first subscriber and
//! removed with the last, so an event costs one map lookup and only that recipient's connections
//! see it. Rooms hold [`LiveEvent`]s, which carry the notification's sequence number (read once
//! per event, and only when someone is listening).
//!
//! A revocation of a recipient's tokens ([`RealtimeEvent::TokensRevoked`]) goes the same way,
//! to every process: each one tells its [`RevocationListener`] (the token check's cache) to
//! forget that recipient and closes their connections ([`LiveEvent::Revoked`]).

pub mod pg_notify;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use clairon_application::ports::{InboxFeed, RealtimeEvent, RealtimePublisher};
use clairon_domain::{Notification, NotificationId, RecipientId};
use tokio::sync::broadcast;

/// What a recipient's open connections receive.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A notification arrived.
    Created {
        /// Its place in the recipient's feed (the SSE event id).
        seq: u64,
        /// The notification (boxed: it is much larger than the other variant).
        notification: Box<Notification>,
        /// The unread count after it.
        unread: u64,
    },
    /// Notifications were read.
    Read {
        /// Which.
        ids: Vec<NotificationId>,
        /// The unread count after it.
        unread: u64,
    },
    /// Events may have been lost (the cross-process relay reconnected): connections should
    /// catch up from the database (and check their token again: a revocation may be among the
    /// lost events).
    Resync,
    /// The tokens the recipient's connections were opened with are revoked: they must close.
    Revoked,
}

/// Told about revocations as every process hears them: the token check's cache, which must
/// forget what it knew (see `http::credentials::tokens`).
pub trait RevocationListener: Send + Sync {
    /// `recipient`'s tokens were revoked (or the recipient erased).
    fn revoked(&self, recipient: &RecipientId);
    /// Revocations may have been missed (the cross-process relay reconnected): forget all.
    fn all_may_be_revoked(&self);
}

/// Where events go beyond this process (PostgreSQL `NOTIFY`); every process, this one included,
/// hears them back and hands them to [`InProcessHub::deliver`].
#[async_trait]
pub trait Relay: Send + Sync {
    /// Sends `event` to every process. `Err` (with a cause for the log) when it could not: the
    /// hub then delivers it in this process only.
    async fn send(&self, event: &RealtimeEvent) -> Result<(), String>;
}

struct Inner {
    rooms: Mutex<HashMap<RecipientId, broadcast::Sender<Arc<LiveEvent>>>>,
    capacity: usize,
    feed: Arc<dyn InboxFeed>,
    relay: OnceLock<Arc<dyn Relay>>,
    revocations: OnceLock<Arc<dyn RevocationListener>>,
}

/// Routes [`RealtimeEvent`]s to the subscribers of their recipient.
///
/// A subscriber that falls more than `capacity` events behind loses the oldest ones (and is told
/// so by `broadcast::error::RecvError::Lagged`); the inbox in the database stays complete, and
/// the SSE stream fills such gaps from it.
#[derive(Clone)]
pub struct InProcessHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for InProcessHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessHub")
            .field("capacity", &self.inner.capacity)
            .field("rooms", &self.rooms())
            .finish_non_exhaustive()
    }
}

/// A [`InProcessHub`] that may be gone.
#[derive(Clone)]
pub struct WeakHub(Weak<Inner>);

impl WeakHub {
    /// The hub, while it lives.
    pub fn upgrade(&self) -> Option<InProcessHub> {
        self.0.upgrade().map(|inner| InProcessHub { inner })
    }
}

/// One connection's subscription to one recipient's room; leaving it (dropping) removes the room
/// when it was the last.
pub struct Subscription {
    receiver: Option<broadcast::Receiver<Arc<LiveEvent>>>,
    recipient: RecipientId,
    hub: Weak<Inner>,
}

impl Subscription {
    /// The next event. `Err(Lagged(n))` when `n` events were lost for being too slow;
    /// `Err(Closed)` never happens while the hub lives.
    ///
    /// # Errors
    /// As [`broadcast::Receiver::recv`].
    pub async fn recv(&mut self) -> Result<Arc<LiveEvent>, broadcast::error::RecvError> {
        match self.receiver.as_mut() {
            Some(r) => r.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        if let Some(inner) = self.hub.upgrade() {
            let mut rooms = inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
            if rooms
                .get(&self.recipient)
                .is_some_and(|room| room.receiver_count() == 0)
            {
                rooms.remove(&self.recipient);
            }
        }
    }
}

impl InProcessHub {
    /// A hub buffering up to `capacity` events per subscriber, reading sequence numbers from
    /// `feed`.
    pub fn new(capacity: usize, feed: Arc<dyn InboxFeed>) -> Self {
        Self {
            inner: Arc::new(Inner {
                rooms: Mutex::new(HashMap::new()),
                capacity: capacity.max(1),
                feed,
                relay: OnceLock::new(),
                revocations: OnceLock::new(),
            }),
        }
    }

    /// Sends published events through `relay` (to every process) instead of delivering them
    /// here directly. Set once, at start-up; later calls are ignored.
    pub fn set_relay(&self, relay: Arc<dyn Relay>) {
        let _ = self.inner.relay.set(relay);
    }

    /// Tells `listener` about every revocation heard (from this process or another). Set once,
    /// at start-up; later calls are ignored.
    pub fn set_revocation_listener(&self, listener: Arc<dyn RevocationListener>) {
        let _ = self.inner.revocations.set(listener);
    }

    /// A new subscription to `recipient`'s events published from now on.
    pub fn subscribe(&self, recipient: &RecipientId) -> Subscription {
        let mut rooms = self.inner.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let receiver = rooms
            .entry(recipient.clone())
            .or_insert_with(|| broadcast::channel(self.inner.capacity).0)
            .subscribe();
        Subscription {
            receiver: Some(receiver),
            recipient: recipient.clone(),
            hub: Arc::downgrade(&self.inner),
        }
    }

    /// Tells every subscriber here to catch up from the database ([`LiveEvent::Resync`]), and
    /// the [`RevocationListener`] that revocations may have been missed.
    pub fn resync_all(&self) {
        if let Some(listener) = self.inner.revocations.get() {
            listener.all_may_be_revoked();
        }
        let rooms: Vec<_> = self
            .inner
            .rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for room in rooms {
            let _ = room.send(Arc::new(LiveEvent::Resync));
        }
    }

    /// How many recipients have at least one subscriber here.
    pub fn rooms(&self) -> usize {
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn room(&self, recipient: &RecipientId) -> Option<broadcast::Sender<Arc<LiveEvent>>> {
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(recipient)
            .cloned()
    }

    /// Reads notification `id` back for its sequence number and hands it to `recipient`'s
    /// subscribers here — when there are any.
    pub async fn deliver_created(&self, recipient: &RecipientId, id: &NotificationId, unread: u64) {
        if self.room(recipient).is_none() {
            return;
        }
        let sequenced = match self.inner.feed.sequenced(id).await {
            Ok(Some(s)) if &s.notification.recipient_id == recipient => s,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(notification_id = %id, error = %e, "realtime: cannot read the notification back; live clients catch up later");
                return;
            }
        };
        if let Some(room) = self.room(recipient) {
            let _ = room.send(Arc::new(LiveEvent::Created {
                seq: sequenced.seq,
                notification: Box::new(sequenced.notification),
                unread,
            }));
        }
    }

    /// A handle that does not keep the hub alive (for background tasks that should end with it).
    pub fn downgrade(&self) -> WeakHub {
        WeakHub(Arc::downgrade(&self.inner))
    }

    /// Hands `event` to the subscribers of its recipient in this process. A created
    /// notification is read back (once) for its sequence number, and only when someone listens.
    pub async fn deliver(&self, event: RealtimeEvent) {
        match event {
            RealtimeEvent::NotificationCreated {
                notification,
                unread,
            } => {
                self.deliver_created(&notification.recipient_id, &notification.id, unread)
                    .await;
            }
            RealtimeEvent::NotificationsRead {
                recipient_id,
                ids,
                unread,
            } => {
                if let Some(room) = self.room(&recipient_id) {
                    let _ = room.send(Arc::new(LiveEvent::Read { ids, unread }));
                }
            }
            RealtimeEvent::TokensRevoked { recipient_id } => {
                if let Some(listener) = self.inner.revocations.get() {
                    listener.revoked(&recipient_id);
                }
                if let Some(room) = self.room(&recipient_id) {
                    let _ = room.send(Arc::new(LiveEvent::Revoked));
                }
            }
        }
    }
}

#[async_trait]
impl RealtimePublisher for InProcessHub {
    async fn publish(&self, event: RealtimeEvent) {
        if matches!(event, RealtimeEvent::TokensRevoked { .. }) {
            // Here at once, before the revoking request is answered: its next request must be
            // refused by this process whatever the relay does. The relay's echo repeats it
            // (forgetting twice and closing a closed connection change nothing).
            self.deliver(event.clone()).await;
            if let Some(relay) = self.inner.relay.get() {
                if let Err(cause) = relay.send(&event).await {
                    tracing::warn!(cause = %cause, "realtime relay failed; other processes refuse the revoked tokens once their token cache expires");
                }
            }
            return;
        }
        if let Some(relay) = self.inner.relay.get() {
            match relay.send(&event).await {
                Ok(()) => return,
                Err(cause) => {
                    tracing::warn!(cause = %cause, "realtime relay failed; delivering in this process only");
                }
            }
        }
        self.deliver(event).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_application::ports::{MockInboxFeed, SequencedNotification};
    use clairon_domain::{Body, EventType, NotificationKind, Priority, Title};

    fn notification(id: &str, to: &str) -> Notification {
        Notification {
            id: NotificationId::parse(id).unwrap(),
            recipient_id: RecipientId::parse(to).unwrap(),
            kind: NotificationKind::Info,
            priority: Priority::default(),
            title: Title::parse("Hello").unwrap(),
            body: Body::parse("World").unwrap(),
            action_url: None,
            action_label: None,
            metadata: serde_json::Map::new(),
            event_type: EventType::parse(EventType::CUSTOM).unwrap(),
            source_event_id: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            read_at: None,
        }
    }

    fn feed_with_seq(seq: u64) -> Arc<dyn InboxFeed> {
        let mut feed = MockInboxFeed::new();
        feed.expect_sequenced().returning(move |id| {
            Ok(Some(SequencedNotification {
                seq,
                notification: notification(id.as_str(), "artist-1"),
            }))
        });
        Arc::new(feed)
    }

    #[tokio::test]
    async fn a_recipients_subscribers_receive_their_events_with_the_sequence_number() {
        let hub = InProcessHub::new(8, feed_with_seq(7));
        let artist = RecipientId::parse("artist-1").unwrap();
        let mut first = hub.subscribe(&artist);
        let mut second = hub.subscribe(&artist);
        hub.publish(RealtimeEvent::NotificationCreated {
            notification: notification("n-1", "artist-1"),
            unread: 3,
        })
        .await;
        for subscription in [&mut first, &mut second] {
            match &*subscription.recv().await.unwrap() {
                LiveEvent::Created {
                    seq,
                    unread,
                    notification,
                } => {
                    assert_eq!((*seq, *unread, notification.id.as_str()), (7, 3, "n-1"));
                }
                other => panic!("expected a created event, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn nobody_else_sees_a_recipients_events_and_rooms_close_with_their_last_subscriber() {
        let mut feed = MockInboxFeed::new();
        feed.expect_sequenced().never();
        let hub = InProcessHub::new(8, Arc::new(feed));
        let other = RecipientId::parse("artist-2").unwrap();
        let mut theirs = hub.subscribe(&other);
        // artist-1 has no room: the created event is dropped without reading the database.
        hub.publish(RealtimeEvent::NotificationCreated {
            notification: notification("n-1", "artist-1"),
            unread: 1,
        })
        .await;
        hub.publish(RealtimeEvent::NotificationsRead {
            recipient_id: RecipientId::parse("artist-1").unwrap(),
            ids: vec![NotificationId::parse("n-1").unwrap()],
            unread: 0,
        })
        .await;
        assert!(
            matches!(
                theirs.receiver.as_mut().unwrap().try_recv(),
                Err(broadcast::error::TryRecvError::Empty)
            ),
            "artist-2 saw nothing of artist-1's inbox"
        );
        assert_eq!(hub.rooms(), 1);
        drop(theirs);
        assert_eq!(hub.rooms(), 0, "the room closed with its last subscriber");
    }

    #[derive(Default)]
    struct Forgetful(Mutex<Vec<String>>);

    impl RevocationListener for Forgetful {
        fn revoked(&self, recipient: &RecipientId) {
            self.0.lock().unwrap().push(recipient.to_string());
        }
        fn all_may_be_revoked(&self) {
            self.0.lock().unwrap().push("*".into());
        }
    }

    #[tokio::test]
    async fn a_revocation_closes_only_its_recipients_room_and_reaches_the_listener_once() {
        let mut feed = MockInboxFeed::new();
        feed.expect_sequenced().never();
        let hub = InProcessHub::new(8, Arc::new(feed));
        let listener = Arc::new(Forgetful::default());
        hub.set_revocation_listener(listener.clone());
        let mut revoked = hub.subscribe(&RecipientId::parse("artist-1").unwrap());
        let mut other = hub.subscribe(&RecipientId::parse("artist-2").unwrap());

        hub.publish(RealtimeEvent::TokensRevoked {
            recipient_id: RecipientId::parse("artist-1").unwrap(),
        })
        .await;
        hub.resync_all();

        assert_eq!(*revoked.recv().await.unwrap(), LiveEvent::Revoked);
        assert_eq!(
            *other.recv().await.unwrap(),
            LiveEvent::Resync,
            "artist-2's connections were not told to close"
        );
        assert_eq!(
            *listener.0.lock().unwrap(),
            vec!["artist-1".to_owned(), "*".to_owned()],
            "the cache forgets the revoked recipient, and everyone after a resync"
        );
    }

    #[tokio::test]
    async fn a_resync_reaches_every_room() {
        let mut feed = MockInboxFeed::new();
        feed.expect_sequenced().never();
        let hub = InProcessHub::new(8, Arc::new(feed));
        let mut one = hub.subscribe(&RecipientId::parse("artist-1").unwrap());
        let mut two = hub.subscribe(&RecipientId::parse("artist-2").unwrap());
        hub.resync_all();
        assert_eq!(*one.recv().await.unwrap(), LiveEvent::Resync);
        assert_eq!(*two.recv().await.unwrap(), LiveEvent::Resync);
    }
}
