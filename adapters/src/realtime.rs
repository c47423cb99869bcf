//! The realtime hub: routes inbox changes to the open connections (WebSocket, SSE) of the one
//! recipient they concern, in this process — and through a [`Relay`] (PostgreSQL
//! `LISTEN/NOTIFY`, [`pg_notify`], or a NATS server, [`nats`]) to the other processes on the same
//! database.
//!
//! One structure per process, sharded by recipient ([`SHARDS`] mutexes over maps of the
//! recipient's connection handles), and one bounded queue per connection
//! ([`InProcessHub::new`]'s `queue` events, 64 in production). An event is serialized once
//! ([`frames::Framed`]: the WebSocket frames and the SSE chunk, shared [`Bytes`]) and handed to
//! every connection of its recipient in one pass, without waiting: a connection whose queue is
//! full loses the event and is told so at its next receive ([`RecvError::Lagged`]), and catches
//! up from the database (SSE replays, the WebSocket sends `resync`). Memory per connection is
//! thus bounded, whatever a slow client does.
//!
//! Events are delivered here first, then relayed to the other processes, which ignore their
//! own echo (each hub has an [`InProcessHub::origin`]).
//!
//! A revocation of a recipient's tokens ([`RealtimeEvent::TokensRevoked`]) goes the same way,
//! to every process: each one tells its [`RevocationListener`] (the token check's cache) to
//! forget that recipient and closes their connections ([`LiveEvent::Revoked`]).

pub mod batched;
pub mod frames;
pub mod nats;
pub mod pg_notify;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Poll, Waker};

use async_trait::async_trait;
use bytes::Bytes;
use clairon_application::ports::{InboxFeed, RealtimeEvent, RealtimePublisher};
use clairon_domain::{NotificationId, RecipientId};

use self::frames::Framed;

/// Shards of the recipient map: a publish locks one, for the time of a few `try_send`s.
pub const SHARDS: usize = 64;

/// What a recipient's open connections receive, already serialized.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A notification arrived.
    Created {
        /// Its place in the recipient's feed (the SSE event id).
        seq: u64,
        /// The recipient's unread count after it.
        unread: u64,
        /// `notification.created` then `unread_count`.
        frames: Framed,
    },
    /// Notifications were read: `notification.read` then `unread_count`.
    Read {
        /// The frames.
        frames: Framed,
    },
    /// Events may have been lost (the cross-process relay reconnected): connections should
    /// catch up from the database (and check their token again: a revocation may be among the
    /// lost events).
    Resync,
    /// The tokens the recipient's connections were opened with are revoked: they must close.
    Revoked,
}

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The connection's queue overflowed: events were dropped. Catch up from the database.
    Lagged,
    /// The hub is gone.
    Closed,
}

/// Told about revocations as every process hears them: the token check's cache, which must
/// forget what it knew (see `http::credentials::tokens`).
pub trait RevocationListener: Send + Sync {
    /// `recipient`'s tokens were revoked (or the recipient erased).
    fn revoked(&self, recipient: &RecipientId);
    /// Revocations may have been missed (the cross-process relay reconnected): forget all.
    fn all_may_be_revoked(&self);
}

/// Where events go beyond this process (PostgreSQL `NOTIFY`, a NATS subject); every other
/// process hears them and hands them to its hub ([`InProcessHub::deliver`]).
#[async_trait]
pub trait Relay: Send + Sync {
    /// Sends `events` (in order) to the other processes. `Err` (with a cause for the log)
    /// when it could not: they were delivered in this process only.
    async fn send(&self, events: &[RealtimeEvent]) -> Result<(), String>;
}

/// One connection's bounded queue, shared by the hub (which pushes) and the connection's
/// [`Subscription`] (which pops). Allocated lazily: an idle connection's queue is one small
/// allocation (the `Arc`, a mutex, an unallocated `VecDeque`, the waker slot), where a tokio
/// `mpsc` channel of 64 allocated its channel state and a first block of 32 slots at creation
/// (~1.1 KB: BENCHMARKS.md, "Realtime at wire speed", fourth run).
struct Queue {
    state: Mutex<QueueState>,
}

struct QueueState {
    /// Events waiting, oldest first; at most the hub's `queue`. Unallocated while empty, and
    /// released again when drained beyond [`KEPT_QUEUE_CAPACITY`].
    events: VecDeque<Arc<LiveEvent>>,
    /// The task waiting in [`Subscription::recv`], if any.
    waker: Option<Waker>,
    /// Events were dropped since the last receive (the queue was full).
    lagged: bool,
    /// The hub is gone: nothing more will come.
    closed: bool,
}

/// Slots a drained queue keeps (8 bytes each); a larger one is released.
const KEPT_QUEUE_CAPACITY: usize = 4;

impl Queue {
    fn new() -> Self {
        Self {
            state: Mutex::new(QueueState {
                events: VecDeque::new(),
                waker: None,
                lagged: false,
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Plain values: a panic elsewhere cannot leave them half-written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes the receiver, outside the lock.
    fn wake(waker: Option<Waker>) {
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// One connection's end in the hub. Dropped when the connection leaves or the hub goes; the
/// latter closes the queue.
struct Conn {
    id: u64,
    queue: Arc<Queue>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.queue.lock();
            state.closed = true;
            state.waker.take()
        };
        Queue::wake(waker);
    }
}

type Shard = Mutex<HashMap<RecipientId, Vec<Conn>>>;

struct Inner {
    shards: Box<[Shard]>,
    hasher: RandomState,
    queue: usize,
    next_id: AtomicU64,
    origin: u64,
    feed: Arc<dyn InboxFeed>,
    relay: OnceLock<Arc<dyn Relay>>,
    revocations: OnceLock<Arc<dyn RevocationListener>>,
}

impl Inner {
    fn shard(&self, recipient: &RecipientId) -> MutexGuard<'_, HashMap<RecipientId, Vec<Conn>>> {
        // usize from u64: the modulo keeps it under SHARDS.
        let index = (self.hasher.hash_one(recipient) % SHARDS as u64) as usize;
        self.shards[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Routes [`RealtimeEvent`]s to the connections of their recipient.
#[derive(Clone)]
pub struct InProcessHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for InProcessHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessHub")
            .field("queue", &self.inner.queue)
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

/// One connection's subscription to one recipient's events; dropping it leaves the hub.
pub struct Subscription {
    queue: Arc<Queue>,
    id: u64,
    recipient: RecipientId,
    hub: Weak<Inner>,
}

impl Subscription {
    /// The next event, in publication order. Cancel-safe: an event is taken from the queue
    /// only by the call that returns it.
    ///
    /// # Errors
    /// [`RecvError::Lagged`] once after the connection's queue overflowed (what was queued is
    /// dropped too: the caller catches up from the database anyway); [`RecvError::Closed`] when
    /// the hub is gone.
    pub async fn recv(&mut self) -> Result<Arc<LiveEvent>, RecvError> {
        std::future::poll_fn(|cx| {
            let mut state = self.queue.lock();
            match self.take(&mut state) {
                Some(outcome) => Poll::Ready(outcome),
                None => {
                    if !state
                        .waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        state.waker = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// What a receive gives now, if anything.
    fn take(&self, state: &mut QueueState) -> Option<Result<Arc<LiveEvent>, RecvError>> {
        if state.lagged {
            state.lagged = false;
            state.events = VecDeque::new();
            return Some(Err(RecvError::Lagged));
        }
        if let Some(event) = state.events.pop_front() {
            if state.events.is_empty() && state.events.capacity() > KEPT_QUEUE_CAPACITY {
                // A burst is over: an idle connection keeps no large queue.
                state.events = VecDeque::new();
            }
            return Some(Ok(event));
        }
        state.closed.then_some(Err(RecvError::Closed))
    }

    /// A receive that does not wait (tests).
    #[cfg(test)]
    fn try_recv(&self) -> Option<Result<Arc<LiveEvent>, RecvError>> {
        let mut state = self.queue.lock();
        self.take(&mut state)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.hub.upgrade() {
            let mut shard = inner.shard(&self.recipient);
            if let Some(conns) = shard.get_mut(&self.recipient) {
                conns.retain(|c| c.id != self.id);
                if conns.is_empty() {
                    shard.remove(&self.recipient);
                }
            }
        }
    }
}

impl InProcessHub {
    /// A hub whose connections each queue up to `queue` events (at least 1), reading
    /// sequence numbers from `feed` when a publisher did not give them.
    pub fn new(queue: usize, feed: Arc<dyn InboxFeed>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                hasher: RandomState::new(),
                queue: queue.max(1),
                next_id: AtomicU64::new(0),
                origin: rand::random::<u64>(),
                feed,
                relay: OnceLock::new(),
                revocations: OnceLock::new(),
            }),
        }
    }

    /// This process's id among the relay's senders (random at start): a relay skips the events
    /// it hears from its own process, which were delivered here already.
    pub fn origin(&self) -> u64 {
        self.inner.origin
    }

    /// Relays published events to the other processes. Set once, at start-up; later calls are
    /// ignored.
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
        let queue = Arc::new(Queue::new());
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .shard(recipient)
            .entry(recipient.clone())
            // Most recipients have one connection: room for one, not the four of a first push.
            .or_insert_with(|| Vec::with_capacity(1))
            .push(Conn {
                id,
                queue: queue.clone(),
            });
        Subscription {
            queue,
            id,
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
        let event = Arc::new(LiveEvent::Resync);
        for shard in self.inner.shards.iter() {
            let shard = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for conn in shard.values().flatten() {
                offer(conn, &event, self.inner.queue);
            }
        }
    }

    /// How many recipients have at least one connection here.
    pub fn rooms(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// How many connections are subscribed here.
    pub fn connections(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Whether `recipient` has a connection here.
    pub fn listening(&self, recipient: &RecipientId) -> bool {
        self.inner.shard(recipient).contains_key(recipient)
    }

    /// Hands `event` to every connection of `recipient` here, without waiting; returns how
    /// many took it. A full queue drops it and marks the connection lagged.
    pub fn send_to(&self, recipient: &RecipientId, event: LiveEvent) -> usize {
        let shard = self.inner.shard(recipient);
        let Some(conns) = shard.get(recipient) else {
            return 0;
        };
        let event = Arc::new(event);
        conns
            .iter()
            .filter(|c| offer(c, &event, self.inner.queue))
            .count()
    }

    /// A notification created with its sequence number and already-serialized frame (as the
    /// relay carries it): handed to `recipient`'s connections here.
    pub fn deliver_frame(&self, recipient: &RecipientId, seq: u64, created: Bytes, unread: u64) {
        if self.listening(recipient) {
            self.send_to(
                recipient,
                LiveEvent::Created {
                    seq,
                    unread,
                    frames: Framed::created(seq, created, unread),
                },
            );
        }
    }

    /// Reads notification `id` back for its sequence number and hands it to `recipient`'s
    /// connections here — when there are any.
    pub async fn deliver_created(&self, recipient: &RecipientId, id: &NotificationId, unread: u64) {
        if !self.listening(recipient) {
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
        let created = frames::created(sequenced.seq, &sequenced.notification);
        self.deliver_frame(recipient, sequenced.seq, created, unread);
    }

    /// A handle that does not keep the hub alive (for background tasks that should end with it).
    pub fn downgrade(&self) -> WeakHub {
        WeakHub(Arc::downgrade(&self.inner))
    }

    /// Hands `event` to the connections of its recipient in this process. A created
    /// notification without its sequence number is read back (once), and only when someone
    /// listens.
    pub async fn deliver(&self, event: RealtimeEvent) {
        self.deliver_ref(&event).await;
    }

    async fn deliver_ref(&self, event: &RealtimeEvent) {
        match event {
            RealtimeEvent::NotificationCreated {
                notification,
                seq: Some(seq),
                unread,
            } => {
                let recipient = &notification.recipient_id;
                if self.listening(recipient) {
                    let created = frames::created(*seq, notification);
                    self.deliver_frame(recipient, *seq, created, *unread);
                }
            }
            RealtimeEvent::NotificationCreated {
                notification,
                seq: None,
                unread,
            } => {
                self.deliver_created(&notification.recipient_id, &notification.id, *unread)
                    .await;
            }
            RealtimeEvent::NotificationsRead {
                recipient_id,
                ids,
                unread,
            } => {
                if self.listening(recipient_id) {
                    self.send_to(
                        recipient_id,
                        LiveEvent::Read {
                            frames: Framed::read(ids, *unread),
                        },
                    );
                }
            }
            RealtimeEvent::TokensRevoked { recipient_id } => {
                if let Some(listener) = self.inner.revocations.get() {
                    listener.revoked(recipient_id);
                }
                self.send_to(recipient_id, LiveEvent::Revoked);
            }
        }
    }

    async fn relay(&self, events: &[RealtimeEvent]) {
        if let Some(relay) = self.inner.relay.get() {
            if let Err(cause) = relay.send(events).await {
                tracing::warn!(cause = %cause, "realtime relay failed; other processes' clients catch up at their next resync (revoked tokens: once their token cache expires)");
            }
        }
    }
}

/// Offers `event` to `conn` without waiting: `false` when its queue already holds `capacity`
/// events (the connection is then marked lagged).
fn offer(conn: &Conn, event: &Arc<LiveEvent>, capacity: usize) -> bool {
    let (taken, waker) = {
        let mut state = conn.queue.lock();
        let taken = if state.events.len() < capacity {
            state.events.push_back(Arc::clone(event));
            true
        } else {
            state.lagged = true;
            false
        };
        (taken, state.waker.take())
    };
    Queue::wake(waker);
    taken
}

#[async_trait]
impl RealtimePublisher for InProcessHub {
    async fn publish(&self, event: RealtimeEvent) {
        // Here at once — a revocation before the revoking request is answered, so its next
        // request is refused by this process whatever the relay does — then elsewhere.
        self.deliver_ref(&event).await;
        self.relay(std::slice::from_ref(&event)).await;
    }

    async fn publish_all(&self, events: Vec<RealtimeEvent>) {
        if events.is_empty() {
            return;
        }
        for event in &events {
            self.deliver_ref(event).await;
        }
        self.relay(&events).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_application::ports::{MockInboxFeed, SequencedNotification};
    use clairon_domain::{Body, EventType, Notification, NotificationKind, Priority, Title};

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

    fn silent_feed() -> Arc<dyn InboxFeed> {
        let mut feed = MockInboxFeed::new();
        feed.expect_sequenced().never();
        Arc::new(feed)
    }

    fn json(bytes: &Bytes) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[tokio::test]
    async fn a_recipients_subscribers_receive_their_events_with_the_sequence_number() {
        let hub = InProcessHub::new(8, feed_with_seq(7));
        let artist = RecipientId::parse("artist-1").unwrap();
        let mut first = hub.subscribe(&artist);
        let mut second = hub.subscribe(&artist);
        hub.publish(RealtimeEvent::NotificationCreated {
            notification: notification("n-1", "artist-1"),
            seq: None,
            unread: 3,
        })
        .await;
        let a = first.recv().await.unwrap();
        let b = second.recv().await.unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one event, serialized once, shared");
        let LiveEvent::Created { seq, frames, .. } = &*a else {
            panic!("expected a created event, got {a:?}");
        };
        assert_eq!(*seq, 7);
        let created = json(&frames.ws[0]);
        assert_eq!(created["type"], "notification.created");
        assert_eq!(created["notification"]["id"], "n-1");
        assert_eq!(created["notification"]["seq"], 7);
        assert_eq!(json(&frames.ws[1])["count"], 3);
        let sse = std::str::from_utf8(&frames.sse).unwrap();
        assert!(
            sse.starts_with("id: 7\nevent: notification.created\ndata: {"),
            "{sse}"
        );
        assert!(
            sse.ends_with("event: unread_count\ndata: {\"type\":\"unread_count\",\"count\":3}\n\n"),
            "{sse}"
        );
    }

    #[tokio::test]
    async fn a_known_sequence_number_is_not_read_back() {
        let hub = InProcessHub::new(8, silent_feed());
        let artist = RecipientId::parse("artist-1").unwrap();
        let mut conn = hub.subscribe(&artist);
        hub.publish_all(vec![
            RealtimeEvent::NotificationCreated {
                notification: notification("n-1", "artist-1"),
                seq: Some(41),
                unread: 1,
            },
            RealtimeEvent::NotificationCreated {
                notification: notification("n-2", "artist-1"),
                seq: Some(42),
                unread: 2,
            },
        ])
        .await;
        for expected in [41, 42] {
            match &*conn.recv().await.unwrap() {
                LiveEvent::Created { seq, .. } => assert_eq!(*seq, expected),
                other => panic!("expected a created event, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn nobody_else_sees_a_recipients_events_and_rooms_close_with_their_last_subscriber() {
        let hub = InProcessHub::new(8, silent_feed());
        let other = RecipientId::parse("artist-2").unwrap();
        let theirs = hub.subscribe(&other);
        // artist-1 has no connection: the created event is dropped without reading the database.
        hub.publish(RealtimeEvent::NotificationCreated {
            notification: notification("n-1", "artist-1"),
            seq: None,
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
            theirs.try_recv().is_none(),
            "artist-2 saw nothing of artist-1's inbox"
        );
        assert_eq!((hub.rooms(), hub.connections()), (1, 1));
        drop(theirs);
        assert_eq!(hub.rooms(), 0, "the room closed with its last subscriber");
    }

    #[tokio::test]
    async fn a_slow_connection_overflows_into_one_lag_and_then_hears_again() {
        let hub = InProcessHub::new(4, silent_feed());
        let artist = RecipientId::parse("artist-1").unwrap();
        let mut slow = hub.subscribe(&artist);
        let events: Vec<_> = (1..=10)
            .map(|seq| RealtimeEvent::NotificationCreated {
                notification: notification(&format!("n-{seq}"), "artist-1"),
                seq: Some(seq),
                unread: seq,
            })
            .collect();
        hub.publish_all(events).await;
        assert_eq!(slow.recv().await.unwrap_err(), RecvError::Lagged);
        assert!(
            slow.try_recv().is_none(),
            "what was queued before the lag was dropped: the client catches up from the database"
        );
        hub.publish(RealtimeEvent::NotificationCreated {
            notification: notification("n-11", "artist-1"),
            seq: Some(11),
            unread: 11,
        })
        .await;
        match &*slow.recv().await.unwrap() {
            LiveEvent::Created { seq, .. } => assert_eq!(*seq, 11),
            other => panic!("expected a created event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_drained_queue_holds_no_buffer_and_an_idle_one_never_had_one() {
        let hub = InProcessHub::new(64, silent_feed());
        let artist = RecipientId::parse("artist-1").unwrap();
        let mut conn = hub.subscribe(&artist);
        assert_eq!(
            conn.queue.lock().events.capacity(),
            0,
            "an idle connection's queue is not allocated"
        );
        hub.publish_all(created_for_artist(20)).await;
        assert!(conn.queue.lock().events.capacity() >= 20);
        for expected in 1..=20 {
            match &*conn.recv().await.unwrap() {
                LiveEvent::Created { seq, .. } => assert_eq!(*seq, expected),
                other => panic!("expected a created event, got {other:?}"),
            }
        }
        assert_eq!(
            conn.queue.lock().events.capacity(),
            0,
            "the burst's buffer was released once drained"
        );
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_publish_and_told_when_the_hub_is_gone() {
        let hub = InProcessHub::new(8, silent_feed());
        let mut conn = hub.subscribe(&RecipientId::parse("artist-1").unwrap());
        let waiting = tokio::spawn(async move {
            let first = conn.recv().await;
            let second = conn.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        hub.send_to(&RecipientId::parse("artist-1").unwrap(), LiveEvent::Resync);
        drop(hub);
        let (first, second) = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the receiver was woken")
            .unwrap();
        assert_eq!(*first.unwrap(), LiveEvent::Resync);
        assert_eq!(second.unwrap_err(), RecvError::Closed);
    }

    #[tokio::test]
    async fn a_receive_cancelled_while_waiting_loses_no_event() {
        let hub = InProcessHub::new(8, silent_feed());
        let artist = RecipientId::parse("artist-1").unwrap();
        let mut conn = hub.subscribe(&artist);
        let cancelled =
            tokio::time::timeout(std::time::Duration::from_millis(10), conn.recv()).await;
        assert!(cancelled.is_err(), "nothing was published yet");
        hub.send_to(&artist, LiveEvent::Revoked);
        assert_eq!(*conn.recv().await.unwrap(), LiveEvent::Revoked);
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
        let hub = InProcessHub::new(8, silent_feed());
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
        let hub = InProcessHub::new(8, silent_feed());
        let mut one = hub.subscribe(&RecipientId::parse("artist-1").unwrap());
        let mut two = hub.subscribe(&RecipientId::parse("artist-2").unwrap());
        hub.resync_all();
        assert_eq!(*one.recv().await.unwrap(), LiveEvent::Resync);
        assert_eq!(*two.recv().await.unwrap(), LiveEvent::Resync);
    }

    /// `NotificationCreated` events `n-1`…`n-{count}` for `artist-1`, seqs and counts 1…count.
    fn created_for_artist(count: u64) -> Vec<RealtimeEvent> {
        (1..=count)
            .map(|seq| RealtimeEvent::NotificationCreated {
                notification: notification(&format!("n-{seq}"), "artist-1"),
                seq: Some(seq),
                unread: seq,
            })
            .collect()
    }

    struct Recording(Mutex<Vec<usize>>);

    #[async_trait]
    impl Relay for Recording {
        async fn send(&self, events: &[RealtimeEvent]) -> Result<(), String> {
            self.0.lock().unwrap().push(events.len());
            Err("broker down".into())
        }
    }

    #[tokio::test]
    async fn a_batch_is_delivered_here_and_relayed_in_one_send_even_when_the_relay_fails() {
        let hub = InProcessHub::new(8, silent_feed());
        let relay = Arc::new(Recording(Mutex::new(Vec::new())));
        hub.set_relay(relay.clone());
        let mut conn = hub.subscribe(&RecipientId::parse("artist-1").unwrap());
        hub.publish_all(created_for_artist(3)).await;
        assert_eq!(*relay.0.lock().unwrap(), vec![3]);
        for expected in 1..=3 {
            match &*conn.recv().await.unwrap() {
                LiveEvent::Created { seq, .. } => assert_eq!(*seq, expected),
                other => panic!("expected a created event, got {other:?}"),
            }
        }
    }
}
