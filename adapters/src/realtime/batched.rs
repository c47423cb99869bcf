//! [`BatchedRelay`]: a [`Relay`] that never holds its publisher up. Events handed to it are
//! queued and sent by one background task, everything queued so far in one send, so a burst
//! of requests that each publish a few events costs the broker (PostgreSQL `NOTIFY`, one
//! statement per send) one round trip per batch instead of one per request, and the requests
//! are answered without waiting for it.
//!
//! Order is kept: one send at a time, in the order events were queued. What a failed send
//! carried is not retried (the relay's contract: the other processes' clients catch up at their
//! next resync); the failure is logged. The queue is bounded by [`QUEUE_LIMIT`]: beyond it new
//! events are dropped for the other processes (counted in the log), never memory without bound
//! while the broker is down.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use clairon_application::ports::RealtimeEvent;

use super::Relay;

/// Most events waiting to be relayed; beyond, new ones are left to the other processes' next
/// resync.
pub const QUEUE_LIMIT: usize = 100_000;

/// Waiting events, and whether a task is sending them.
#[derive(Default)]
struct Queue {
    events: Vec<RealtimeEvent>,
    sending: bool,
    dropped: u64,
}

/// Relays through `inner` from a background task, batching what arrives while a send is in
/// flight (see the module). [`Relay::send`] returns at once, always `Ok`.
pub struct BatchedRelay {
    inner: Arc<dyn Relay>,
    queue: Arc<Mutex<Queue>>,
}

impl BatchedRelay {
    /// Batches the sends of `inner`. Must be used inside a Tokio runtime (it spawns its task
    /// on the first send).
    pub fn new(inner: Arc<dyn Relay>) -> Self {
        Self {
            inner,
            queue: Arc::new(Mutex::new(Queue::default())),
        }
    }
}

#[async_trait]
impl Relay for BatchedRelay {
    async fn send(&self, events: &[RealtimeEvent]) -> Result<(), String> {
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let room = QUEUE_LIMIT.saturating_sub(queue.events.len());
            if events.len() > room {
                queue.dropped += (events.len() - room) as u64;
            }
            queue.events.extend(events.iter().take(room).cloned());
            !std::mem::replace(&mut queue.sending, true)
        };
        if start {
            let inner = Arc::clone(&self.inner);
            let queue = Arc::clone(&self.queue);
            tokio::spawn(drain(inner, queue));
        }
        Ok(())
    }
}

/// Sends what is queued, batch after batch, until the queue is empty.
async fn drain(inner: Arc<dyn Relay>, queue: Arc<Mutex<Queue>>) {
    loop {
        let (batch, dropped) = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.events.is_empty() {
                queue.sending = false;
                return;
            }
            (
                std::mem::take(&mut queue.events),
                std::mem::take(&mut queue.dropped),
            )
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "realtime relay queue full; other processes' clients catch up at their next resync"
            );
        }
        if let Err(cause) = inner.send(&batch).await {
            tracing::warn!(cause = %cause, events = batch.len(), "realtime relay failed; other processes' clients catch up at their next resync (revoked tokens: once their token cache expires)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_domain::RecipientId;
    use std::time::Duration;
    use tokio::sync::Notify;

    /// Records each send's size; the first send waits until released, so what is queued
    /// meanwhile must go in the second.
    struct Gate {
        sizes: Mutex<Vec<usize>>,
        release: Notify,
    }

    #[async_trait]
    impl Relay for Gate {
        async fn send(&self, events: &[RealtimeEvent]) -> Result<(), String> {
            let first = {
                let mut sizes = self.sizes.lock().unwrap();
                sizes.push(events.len());
                sizes.len() == 1
            };
            if first {
                self.release.notified().await;
            }
            Err("the broker is down".into())
        }
    }

    fn revoked(id: &str) -> RealtimeEvent {
        RealtimeEvent::TokensRevoked {
            recipient_id: RecipientId::parse(id).unwrap(),
        }
    }

    #[tokio::test]
    async fn what_arrives_during_a_send_goes_in_the_next_one_in_order_and_nobody_waits() {
        let gate = Arc::new(Gate {
            sizes: Mutex::new(Vec::new()),
            release: Notify::new(),
        });
        let relay = BatchedRelay::new(gate.clone());
        relay.send(&[revoked("a")]).await.unwrap();
        // The first send is in flight (held by the gate); these three queue behind it.
        tokio::time::timeout(Duration::from_secs(5), async {
            while gate.sizes.lock().unwrap().is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        for id in ["b", "c", "d"] {
            relay.send(&[revoked(id)]).await.unwrap();
        }
        gate.release.notify_one();
        tokio::time::timeout(Duration::from_secs(5), async {
            while gate.sizes.lock().unwrap().len() < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert_eq!(*gate.sizes.lock().unwrap(), vec![1, 3]);
        // The failed sends were logged, not retried, and the task stopped once empty.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!relay.queue.lock().unwrap().sending);
    }
}
