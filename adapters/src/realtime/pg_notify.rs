//! Realtime across processes on PostgreSQL: every inbox change is sent with `NOTIFY
//! clairon_inbox` and every process (the sender included) `LISTEN`s on a dedicated
//! `tokio-postgres` connection, reconnecting with backoff, and hands what it hears to its
//! [`InProcessHub`]. SQLite stays in-process (one process owns the file).
//!
//! Payloads are small JSON (the recipient, the notification id, the unread count; read ids in
//! chunks), far under PostgreSQL's 8,000-byte limit; the receiver reads the notification row.
//! `NOTIFY` is transactional and delivered in commit order to every listening session.
//! What is sent while a listener is disconnected is not heard again: once it is back, every
//! local connection gets a [`super::LiveEvent::Resync`] (SSE streams replay from the database,
//! WebSocket clients get a `resync` frame and refetch).

use std::time::Duration;

use async_trait::async_trait;
use clairon_application::ports::RealtimeEvent;
use clairon_domain::{NotificationId, RecipientId};
use diesel::sql_types::Text;
use diesel::RunQueryDsl;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{InProcessHub, Relay, WeakHub};
use crate::persistence::connection::AnyConnection;
use crate::persistence::Database;

/// The `LISTEN`/`NOTIFY` channel.
pub const CHANNEL: &str = "clairon_inbox";

/// Read ids per `NOTIFY` (64-character ids at most: about 6.7 KB, under the 8,000-byte limit).
const IDS_PER_PAYLOAD: usize = 100;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    /// `c` created, `r` read.
    t: String,
    /// Recipient id.
    r: String,
    /// Created notification id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    /// Read notification ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    i: Vec<String>,
    /// Unread count after the change.
    u: u64,
}

fn payloads(event: &RealtimeEvent) -> Vec<String> {
    let encode = |p: &Payload| serde_json::to_string(p).unwrap_or_default();
    match event {
        RealtimeEvent::NotificationCreated {
            notification,
            unread,
        } => vec![encode(&Payload {
            t: "c".into(),
            r: notification.recipient_id.to_string(),
            n: Some(notification.id.to_string()),
            i: Vec::new(),
            u: *unread,
        })],
        RealtimeEvent::NotificationsRead {
            recipient_id,
            ids,
            unread,
        } => {
            let chunks: Vec<&[NotificationId]> = if ids.is_empty() {
                vec![&[]]
            } else {
                ids.chunks(IDS_PER_PAYLOAD).collect()
            };
            chunks
                .into_iter()
                .map(|chunk| {
                    encode(&Payload {
                        t: "r".into(),
                        r: recipient_id.to_string(),
                        n: None,
                        i: chunk.iter().map(ToString::to_string).collect(),
                        u: *unread,
                    })
                })
                .collect()
        }
    }
}

/// Sends inbox changes with `NOTIFY` over the pool's connections.
#[derive(Debug, Clone)]
pub struct PgNotifyRelay {
    db: Database,
}

impl PgNotifyRelay {
    /// A relay on `db` (PostgreSQL; on SQLite `send` does nothing and succeeds).
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl Relay for PgNotifyRelay {
    async fn send(&self, event: &RealtimeEvent) -> Result<(), String> {
        let payloads = payloads(event);
        self.db
            .call(move |conn| {
                if let AnyConnection::Postgresql(pg) = conn {
                    for payload in &payloads {
                        diesel::sql_query("SELECT pg_notify($1, $2)")
                            .bind::<Text, _>(CHANNEL)
                            .bind::<Text, _>(payload)
                            .execute(pg)?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())
    }
}

async fn handle(hub: &InProcessHub, raw: &str) {
    let Ok(payload) = serde_json::from_str::<Payload>(raw) else {
        tracing::warn!("realtime: ignoring a malformed NOTIFY payload");
        return;
    };
    let Ok(recipient) = RecipientId::parse(&payload.r) else {
        return;
    };
    match (payload.t.as_str(), payload.n) {
        ("c", Some(id)) => {
            if let Ok(id) = NotificationId::parse(&id) {
                hub.deliver_created(&recipient, &id, payload.u).await;
            }
        }
        ("r", _) => {
            let ids = payload
                .i
                .iter()
                .filter_map(|id| NotificationId::parse(id).ok())
                .collect();
            hub.deliver(RealtimeEvent::NotificationsRead {
                recipient_id: recipient,
                ids,
                unread: payload.u,
            })
            .await;
        }
        _ => {}
    }
}

/// One listening session: the client (dropping it closes the connection) and what it hears.
struct Session {
    _client: tokio_postgres::Client,
    heard: mpsc::UnboundedReceiver<String>,
}

async fn listen(url: &str) -> Result<Session, tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let (tx, heard) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "realtime: LISTEN connection lost");
                    break;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok(Session {
        _client: client,
        heard,
    })
}

/// Listens for other processes' inbox changes on a dedicated connection to `url` and hands them
/// to `hub`, reconnecting (0.5 s doubling to 30 s) when the connection drops. Returns once the
/// first `LISTEN` is in place; the background task ends when the hub is dropped.
///
/// # Errors
/// The cause (without credentials) when the first connection or `LISTEN` fails.
pub async fn start_listener(url: String, hub: &InProcessHub) -> Result<(), String> {
    let first = listen(&url).await.map_err(|e| e.to_string())?;
    let hub = hub.downgrade();
    tokio::spawn(run(url, hub, first));
    Ok(())
}

async fn run(url: String, hub: WeakHub, mut session: Session) {
    loop {
        loop {
            tokio::select! {
                heard = session.heard.recv() => {
                    let Some(raw) = heard else { break };
                    let Some(hub) = hub.upgrade() else { return };
                    handle(&hub, &raw).await;
                }
                () = tokio::time::sleep(Duration::from_secs(5)) => {
                    if hub.upgrade().is_none() {
                        return;
                    }
                }
            }
        }
        let mut backoff = Duration::from_millis(500);
        session = loop {
            if hub.upgrade().is_none() {
                return;
            }
            match listen(&url).await {
                Ok(s) => {
                    tracing::info!("realtime: LISTEN connection re-established");
                    // What was sent while we were deaf is in the database, not in the hub.
                    if let Some(hub) = hub.upgrade() {
                        hub.resync_all();
                    }
                    break s;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "realtime: cannot LISTEN yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_events_with_many_ids_are_split_into_payloads_under_the_notify_limit() {
        let ids: Vec<NotificationId> = (0..250)
            .map(|i| NotificationId::parse(&format!("{i:0>64}")).unwrap())
            .collect();
        let payloads = payloads(&RealtimeEvent::NotificationsRead {
            recipient_id: RecipientId::parse(&"r".repeat(64)).unwrap(),
            ids,
            unread: 0,
        });
        assert_eq!(payloads.len(), 3);
        assert!(
            payloads.iter().all(|p| p.len() < 8000),
            "every payload fits NOTIFY"
        );
    }
}
