//! Realtime across processes through a NATS server (`CLAIRON_REALTIME_BROKER=nats://…`), in
//! place of PostgreSQL `LISTEN/NOTIFY`: every process publishes its inbox changes on the subject
//! [`SUBJECT`] and subscribes to it, handing what the others sent to its [`InProcessHub`]. The
//! payloads are those of [`super::pg_notify`] (JSON: the sending process, the recipient, the
//! notification's seq and frame…), one NATS message each.
//!
//! NATS is at-most-once: what is published while a process is cut off from the server is not
//! heard again. So when the connection comes back every local connection gets a
//! [`super::LiveEvent::Resync`] (SSE streams replay from the database, WebSocket clients refetch)
//! and the token cache forgets what it knew; a publish that cannot reach the server within
//! [`PUBLISH_TIMEOUT`] is given up (the event was delivered in this process already, and the
//! notification is in the database): a broker outage never loses a notification, it only makes
//! other processes' clients catch up.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use clairon_application::ports::RealtimeEvent;
use futures_util::StreamExt;

use super::{InProcessHub, Relay, WeakHub};

/// The subject every process publishes inbox changes on.
pub const SUBJECT: &str = "clairon.inbox";

/// How long a batch of publications may wait for the server before it is given up.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_millis(250);

/// Publishes inbox changes to NATS.
#[derive(Debug, Clone)]
pub struct NatsRelay {
    client: async_nats::Client,
    origin: u64,
}

impl NatsRelay {
    /// Connects to `url` (`nats://host:port`; reconnecting by itself for as long as the process
    /// lives, with backoff), subscribes to [`SUBJECT`] for `hub` and returns the relay to give
    /// it ([`InProcessHub::set_relay`]). The first connection is waited for at most `connect`;
    /// a server down at start-up is tried again in the background (the relay's publications
    /// are given up meanwhile, and clients resync once it is up).
    ///
    /// # Errors
    /// When `url` is not a NATS URL.
    pub async fn start(url: &str, hub: &InProcessHub) -> Result<Self, String> {
        let weak = hub.downgrade();
        let on_event = weak.clone();
        let client = async_nats::ConnectOptions::new()
            .name("clairon")
            .retry_on_initial_connect()
            .event_callback(move |event| {
                let hub = on_event.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("realtime: NATS connection (re-)established");
                            // What was published while we were cut off is in the database.
                            if let Some(hub) = hub.upgrade() {
                                hub.resync_all();
                            }
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("realtime: NATS connection lost; reconnecting");
                        }
                        other => tracing::debug!(event = %other, "realtime: NATS"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| format!("CLAIRON_REALTIME_BROKER: {e}"))?;
        let subscriber = client
            .subscribe(SUBJECT)
            .await
            .map_err(|e| format!("CLAIRON_REALTIME_BROKER: subscribing to {SUBJECT}: {e}"))?;
        tokio::spawn(listen(subscriber, weak));
        Ok(Self {
            client,
            origin: hub.origin(),
        })
    }
}

async fn listen(mut subscriber: async_nats::Subscriber, hub: WeakHub) {
    while let Some(message) = subscriber.next().await {
        let Some(hub) = hub.upgrade() else { return };
        if let Ok(raw) = std::str::from_utf8(&message.payload) {
            super::pg_notify::handle(&hub, raw).await;
        }
    }
}

#[async_trait]
impl Relay for NatsRelay {
    async fn send(&self, events: &[RealtimeEvent]) -> Result<(), String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err("not connected to the NATS server".into());
        }
        let publish = async {
            for event in events {
                for payload in super::pg_notify::payloads(self.origin, event) {
                    self.client
                        .publish(SUBJECT, Bytes::from(payload))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok::<(), String>(())
        };
        tokio::time::timeout(PUBLISH_TIMEOUT, publish)
            .await
            .map_err(|_| "the NATS server did not take the events in time".to_owned())?
    }
}
