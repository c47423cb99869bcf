//! Realtime across processes on PostgreSQL: every inbox change is sent with `NOTIFY
//! clairon_inbox` and every process `LISTEN`s on a dedicated
//! `tokio-postgres` connection, reconnecting with backoff, and hands what it hears from the
//! others to its [`InProcessHub`]. SQLite stays in-process (one process owns the file).
//!
//! Payloads are small JSON (the sending process, the recipient, the notification id, its
//! sequence number and `notification.created` frame when that fits, the unread count; read ids
//! in chunks), under PostgreSQL's 8,000-byte limit; a receiver reads the notification row only
//! when the frame did not fit. The sending process delivered the event to its own connections
//! already and skips its echo.
//! `NOTIFY` is transactional and delivered in commit order to every listening session.
//! What is sent while a listener is disconnected is not heard again: once it is back, every
//! local connection gets a [`super::LiveEvent::Resync`] (SSE streams replay from the database,
//! WebSocket clients get a `resync` frame and refetch).
//!
//! The `LISTEN` connection follows the database URL's `sslmode` the way libpq (and so the pool)
//! does ([`ListenTls`]): `disable` plain, `allow` plain then TLS, `prefer` (libpq's default) TLS
//! then plain, `require` TLS without checking the certificate (unless a root certificate is
//! given: then as `verify-ca`), `verify-ca` TLS with the chain checked against `sslrootcert`,
//! `verify-full` that and the host name too. tokio-postgres knows neither `verify-*` nor
//! `sslrootcert`, so those are read here and the rest of the URL is handed to it.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use clairon_application::ports::RealtimeEvent;
use clairon_domain::{NotificationId, RecipientId};
use diesel::sql_types::{Array, Text};
use diesel::RunQueryDsl;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::config::SslMode;
use tokio_postgres::AsyncMessage;

use super::{InProcessHub, Relay, WeakHub};
use crate::persistence::connection::AnyConnection;
use crate::persistence::Database;

/// The `LISTEN`/`NOTIFY` channel.
pub const CHANNEL: &str = "clairon_inbox";

/// The `t` of a revocation payload.
const REVOKED: &str = "x";

/// Read ids per `NOTIFY` (64-character ids at most: about 6.7 KB, under the 8,000-byte limit).
const IDS_PER_PAYLOAD: usize = 100;

/// A created notification's frame travels in its payload when it is at most this long (bytes
/// of JSON), so the receivers need not read it back; a longer one is read back by id.
const FRAME_IN_PAYLOAD: usize = 6_000;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    /// The sending process ([`InProcessHub::origin`]): it delivered the event already, and
    /// skips its own echo.
    #[serde(default)]
    o: u64,
    /// `c` created, `r` read, `x` tokens revoked.
    t: String,
    /// Recipient id.
    r: String,
    /// Created notification id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    /// Created notification's inbox sequence number, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<u64>,
    /// Created notification's `notification.created` frame (JSON text), when short enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<String>,
    /// Read notification ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    i: Vec<String>,
    /// Unread count after the change.
    u: u64,
}

/// The `NOTIFY` payloads of `event` sent by process `origin` (each under PostgreSQL's
/// 8,000-byte limit).
pub(super) fn payloads(origin: u64, event: &RealtimeEvent) -> Vec<String> {
    let encode = |p: &Payload| serde_json::to_string(p).unwrap_or_default();
    let base = |t: &str, r: &RecipientId, u: u64| Payload {
        o: origin,
        t: t.into(),
        r: r.to_string(),
        n: None,
        s: None,
        f: None,
        i: Vec::new(),
        u,
    };
    match event {
        RealtimeEvent::NotificationCreated {
            notification,
            seq,
            unread,
        } => {
            let frame = seq
                .map(|seq| super::frames::created(seq, notification))
                .filter(|f| f.len() <= FRAME_IN_PAYLOAD)
                .and_then(|f| String::from_utf8(f.to_vec()).ok());
            vec![encode(&Payload {
                n: Some(notification.id.to_string()),
                s: frame.as_ref().and(*seq),
                f: frame,
                ..base("c", &notification.recipient_id, *unread)
            })]
        }
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
                        i: chunk.iter().map(ToString::to_string).collect(),
                        ..base("r", recipient_id, *unread)
                    })
                })
                .collect()
        }
        RealtimeEvent::TokensRevoked { recipient_id } => {
            vec![encode(&base(REVOKED, recipient_id, 0))]
        }
    }
}

/// Sends inbox changes with `NOTIFY` over the pool's connections: a batch of events in one
/// statement (`pg_notify` over an array of payloads).
#[derive(Debug, Clone)]
pub struct PgNotifyRelay {
    db: Database,
    origin: u64,
}

impl PgNotifyRelay {
    /// A relay on `db` (PostgreSQL; on SQLite `send` does nothing and succeeds) for the
    /// process whose hub has `origin` ([`InProcessHub::origin`]).
    pub fn new(db: Database, origin: u64) -> Self {
        Self { db, origin }
    }
}

#[async_trait]
impl Relay for PgNotifyRelay {
    async fn send(&self, events: &[RealtimeEvent]) -> Result<(), String> {
        let payloads: Vec<String> = events
            .iter()
            .flat_map(|e| payloads(self.origin, e))
            .collect();
        self.db
            .call(move |conn| {
                if let AnyConnection::Postgresql(pg) = conn {
                    // `unnest … WITH ORDINALITY` keeps the order: NOTIFYs of one transaction
                    // are delivered in the order they were sent.
                    for chunk in payloads.chunks(1_000) {
                        diesel::sql_query(
                            "SELECT pg_notify($1, p.v) FROM unnest($2::text[]) WITH ORDINALITY AS p(v, n) ORDER BY p.n",
                        )
                        .bind::<Text, _>(CHANNEL)
                        .bind::<Array<Text>, _>(chunk)
                        .execute(pg)?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())
    }
}

pub(super) async fn handle(hub: &InProcessHub, raw: &str) {
    let Ok(payload) = serde_json::from_str::<Payload>(raw) else {
        tracing::warn!("realtime: ignoring a malformed NOTIFY payload");
        return;
    };
    if payload.o == hub.origin() {
        return; // delivered here when it was published
    }
    let Ok(recipient) = RecipientId::parse(&payload.r) else {
        return;
    };
    match (payload.t.as_str(), payload.n) {
        ("c", Some(id)) => match (payload.s, payload.f) {
            (Some(seq), Some(frame)) => {
                hub.deliver_frame(&recipient, seq, Bytes::from(frame), payload.u);
            }
            _ => {
                if let Ok(id) = NotificationId::parse(&id) {
                    hub.deliver_created(&recipient, &id, payload.u).await;
                }
            }
        },
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
        (REVOKED, _) => {
            hub.deliver(RealtimeEvent::TokensRevoked {
                recipient_id: recipient,
            })
            .await;
        }
        _ => {}
    }
}

/// libpq's `sslmode` values (PostgreSQL manual, "SSL Support", table "SSL Mode Descriptions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslModeName {
    /// No TLS.
    Disable,
    /// Plain first; TLS if the server insists.
    Allow,
    /// TLS if the server offers it, else plain (libpq's default).
    Prefer,
    /// TLS, the certificate not checked (unless a root certificate is given).
    Require,
    /// TLS, the certificate's chain checked against the root certificate.
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host.
    VerifyFull,
}

impl SslModeName {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(match raw {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "invalid sslmode {other:?}: expected disable, allow, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }
}

/// Where the root certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootCert {
    /// None given (and none at libpq's default place).
    Unset,
    /// `sslrootcert=system`: the system's trust store.
    System,
    /// A PEM file: the only trusted root, as with libpq.
    File(PathBuf),
}

/// How the `LISTEN` connection uses TLS, read from the database URL as libpq reads it (with
/// libpq's environment fallbacks `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, and
/// its default root certificate `~/.postgresql/root.crt`).
#[derive(Debug, Clone)]
pub struct ListenTls {
    /// The URL without the TLS options tokio-postgres does not know.
    config: tokio_postgres::Config,
    /// The `sslmode`.
    pub mode: SslModeName,
    root: RootCert,
    client_cert: Option<(PathBuf, PathBuf)>,
}

/// URL options read here rather than by tokio-postgres.
const TLS_OPTIONS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslsni"];

fn home_file(relative: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(relative))
}

impl ListenTls {
    /// Reads `url` (`postgres://…?sslmode=…&sslrootcert=…`).
    ///
    /// # Errors
    /// A message (without credentials) for a bad URL, an unknown `sslmode`, or a
    /// `verify-ca`/`verify-full` without a root certificate file (as libpq refuses it).
    pub fn from_url(url: &str) -> Result<Self, String> {
        let mut parsed =
            url::Url::parse(url).map_err(|e| format!("the database URL is not a URL: {e}"))?;
        // The query is filtered pair by pair, the kept ones verbatim: re-encoding them would
        // turn spaces into `+`, which tokio-postgres (like libpq) does not read as spaces.
        let mut options = std::collections::HashMap::new();
        let mut kept = Vec::new();
        for pair in parsed
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            // Percent-decoding only, as libpq reads URIs: a `+` is a plus sign.
            let decoded = pair.replace('+', "%2B");
            match url::form_urlencoded::parse(decoded.as_bytes()).next() {
                Some((key, value)) if TLS_OPTIONS.contains(&key.as_ref()) => {
                    options.insert(key.into_owned(), value.into_owned());
                }
                _ => kept.push(pair.to_owned()),
            }
        }
        parsed.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
        let option = |name: &str, env: &str| {
            options
                .get(name)
                .cloned()
                .or_else(|| std::env::var(env).ok())
                .filter(|v| !v.is_empty())
        };
        let mode = SslModeName::parse(
            option("sslmode", "PGSSLMODE")
                .as_deref()
                .unwrap_or("prefer"),
        )?;
        let default_root = home_file(".postgresql/root.crt");
        let root = match option("sslrootcert", "PGSSLROOTCERT") {
            Some(system) if system == "system" => RootCert::System,
            Some(file) => RootCert::File(file.into()),
            None => match default_root {
                Some(file) if file.exists() => RootCert::File(file),
                _ => RootCert::Unset,
            },
        };
        if let (SslModeName::VerifyCa | SslModeName::VerifyFull, RootCert::Unset) = (mode, &root) {
            return Err(format!(
                "sslmode={} needs a root certificate: none given (sslrootcert) and {} does not exist",
                if mode == SslModeName::VerifyCa { "verify-ca" } else { "verify-full" },
                home_file(".postgresql/root.crt").map_or_else(|| "~/.postgresql/root.crt".into(), |p| p.display().to_string())
            ));
        }
        let client_cert = option("sslcert", "PGSSLCERT")
            .zip(option("sslkey", "PGSSLKEY"))
            .map(|(cert, key)| (cert.into(), key.into()));
        let config = parsed
            .as_str()
            .parse::<tokio_postgres::Config>()
            .map_err(|e| format!("the database URL: {e}"))?;
        Ok(Self {
            config,
            mode,
            root,
            client_cert,
        })
    }

    /// Whether the certificate's chain is checked: `verify-*`, and `require` with a root
    /// certificate (libpq: "if a root CA file exists, … the same way as if verify-ca was
    /// specified").
    fn verifies_chain(&self) -> bool {
        match self.mode {
            SslModeName::VerifyCa | SslModeName::VerifyFull => true,
            SslModeName::Require => self.root != RootCert::Unset,
            _ => false,
        }
    }

    fn connector(&self) -> Result<postgres_native_tls::MakeTlsConnector, String> {
        let mut builder = native_tls::TlsConnector::builder();
        if self.verifies_chain() {
            if let RootCert::File(path) = &self.root {
                let pem = std::fs::read(path).map_err(|e| {
                    format!(
                        "root certificate file {:?}: {e}",
                        path.display().to_string()
                    )
                })?;
                let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| {
                    format!(
                        "root certificate file {:?}: {e}",
                        path.display().to_string()
                    )
                })?;
                builder
                    .add_root_certificate(cert)
                    .disable_built_in_roots(true);
            }
            builder.danger_accept_invalid_hostnames(self.mode != SslModeName::VerifyFull);
        } else {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        if let Some((cert, key)) = &self.client_cert {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| format!("{:?}: {e}", p.display().to_string()))
            };
            let identity = native_tls::Identity::from_pkcs8(&read(cert)?, &read(key)?)
                .map_err(|e| format!("client certificate: {e}"))?;
            builder.identity(identity);
        }
        builder
            .build()
            .map(postgres_native_tls::MakeTlsConnector::new)
            .map_err(|e| format!("TLS set-up: {e}"))
    }

    /// The tokio-postgres TLS modes to try, in order.
    fn attempts(&self) -> &'static [SslMode] {
        match self.mode {
            SslModeName::Disable => &[SslMode::Disable],
            SslModeName::Allow => &[SslMode::Disable, SslMode::Require],
            // tokio-postgres falls back to plain when the server declines TLS; libpq also
            // when the handshake itself fails.
            SslModeName::Prefer => &[SslMode::Prefer, SslMode::Disable],
            _ => &[SslMode::Require],
        }
    }

    /// Connects as the mode says; the connection must be polled by the caller.
    ///
    /// # Errors
    /// The last attempt's error (without credentials): refused, TLS handshake failed
    /// ("server does not support TLS", a certificate that does not verify), authentication.
    pub async fn connect(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<
                tokio_postgres::Socket,
                postgres_native_tls::TlsStream<tokio_postgres::Socket>,
            >,
        ),
        String,
    > {
        let tls = self.connector()?;
        let mut last = String::new();
        for mode in self.attempts() {
            let mut config = self.config.clone();
            config.ssl_mode(*mode);
            match config.connect(tls.clone()).await {
                Ok(connected) => return Ok(connected),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

/// One listening session: the client (dropping it closes the connection) and what it hears.
struct Session {
    _client: tokio_postgres::Client,
    heard: mpsc::UnboundedReceiver<String>,
}

async fn listen(tls: &ListenTls) -> Result<Session, String> {
    let (client, mut connection) = tls.connect().await?;
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
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Session {
        _client: client,
        heard,
    })
}

/// Listens for other processes' inbox changes on a dedicated connection to `url` (TLS as its
/// `sslmode` says, see [`ListenTls`]) and hands them to `hub`, reconnecting (0.5 s doubling to
/// 30 s) when the connection drops. Returns once the first `LISTEN` is in place; the background
/// task ends when the hub is dropped.
///
/// # Errors
/// The cause (without credentials) when the URL cannot be read or the first connection or
/// `LISTEN` fails.
pub async fn start_listener(url: String, hub: &InProcessHub) -> Result<(), String> {
    let tls = ListenTls::from_url(&url)?;
    let first = listen(&tls).await?;
    let hub = hub.downgrade();
    tokio::spawn(run(tls, hub, first));
    Ok(())
}

async fn run(url: ListenTls, hub: WeakHub, mut session: Session) {
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
        let payloads = payloads(
            7,
            &RealtimeEvent::NotificationsRead {
                recipient_id: RecipientId::parse(&"r".repeat(64)).unwrap(),
                ids,
                unread: 0,
            },
        );
        assert_eq!(payloads.len(), 3);
        assert!(
            payloads.iter().all(|p| p.len() < 8000),
            "every payload fits NOTIFY"
        );
    }
}
