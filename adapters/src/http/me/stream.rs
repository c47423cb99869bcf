//! The live inbox of `/api/v1/me`: WebSocket (`/api/v1/me/ws`) and Server-Sent Events
//! (`/api/v1/me/notifications/stream`).
//!
//! Live connections subscribe to their recipient's room in the [`InProcessHub`] before reading
//! anything from the database, so nothing committed meanwhile can fall between the two; the SSE
//! stream numbers notifications with their per-recipient sequence and fills any gap from the
//! database, so a client resuming with `Last-Event-ID` sees each notification exactly once, in
//! order.
//!
//! A live connection lasts as long as its token: it is closed (WebSocket code 4401, or the end
//! of the SSE stream) when the token expires, when the recipient's tokens are revoked or the
//! recipient erased ([`LiveEvent::Revoked`], heard by every process), and — should that event
//! have been lost — at the next resync, where the token is checked again.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::ws::{CloseCode, CloseReason, OpCode};
use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use clairon_application::commands::{MarkAllNotificationsRead, MarkNotificationRead};
use clairon_application::ports::{Clock, InboxFeed, SequencedNotification};
use clairon_application::queries::UnreadCount;
use clairon_domain::{Notification, NotificationId, RecipientId};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::http::credentials::tokens::{
    presented_token, recipient_of, Me, RecipientTokens, TokenError,
};
use crate::http::middleware::rate_limit::RateLimits;
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::state::Handlers;
use crate::http::upgrade::Takeover;

use super::wire::{Incoming, Wire};
use crate::realtime::frames::{self, sse_event};
use crate::realtime::{InProcessHub, LiveEvent, RecvError, Subscription};

/// What the live routes need besides the use-case handlers.
#[derive(Clone)]
pub struct Live {
    /// Routes inbox changes to connections.
    pub hub: InProcessHub,
    /// Reads notifications by sequence number (SSE replay).
    pub feed: Arc<dyn InboxFeed>,
    /// WebSocket ping interval (25 s); a peer silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// SSE keep-alive comment interval (15 s).
    pub keep_alive: Duration,
    /// Counts open connections for `/metrics`.
    pub connections: crate::metrics::ConnectionGauge,
}

/// Notifications replayed per database read.
const REPLAY_PAGE: u32 = 500;
/// The `retry:` hint sent to SSE clients, in ms.
const SSE_RETRY_MS: u32 = 2000;

pub use crate::realtime::frames::{LiveFrame, LiveNotification};

fn created_frame(seq: u64, n: &Notification) -> Bytes {
    frames::created(seq, n)
}

async fn unread(handlers: &Handlers, me: &RecipientId) -> Option<u64> {
    handlers
        .unread_count
        .execute(UnreadCount {
            recipient_id: me.clone(),
        })
        .await
        .map_err(|e| tracing::warn!(error = %e, "live: cannot count unread notifications"))
        .ok()
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/// What a client may send over the WebSocket.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    MarkRead { id: String },
    MarkAllRead,
}

/// `GET /api/v1/me/ws`: the live inbox over WebSocket (RFC 6455). The token comes in the
/// `token` query parameter or as a `Sec-WebSocket-Protocol` entry after `clairon`; an invalid
/// one is answered by accepting the upgrade and closing with code 4401, and so is the open
/// connection when its token expires or is revoked.
///
/// The answer is a `101` carrying a [`Takeover`]: the server ([`crate::http::upgrade`]) writes
/// it and hands the bare socket to [`websocket_session`] (one task, no HTTP dispatcher left).
///
/// # Errors
/// 400 when the request is not a WebSocket upgrade.
#[utoipa::path(
    get, path = "/api/v1/me/ws", tag = "me",
    description = "The live inbox over WebSocket (RFC 6455). The token travels in `?token=`, in `Authorization: Bearer`, or as the subprotocol after `clairon` (`new WebSocket(url, [\"clairon\", token])`). The upgrade is accepted first; a bad token is then closed with code 4401, and so is the connection when its token expires or is revoked (or the recipient erased). Frames are JSON text: `notification.created`, `notification.read`, `unread_count`, `resync`, `error` from the server; `mark_read` and `mark_all_read` from the client, which count against the recipient's rate limit like REST calls (over it: an `error` frame with `retry_after`, and nothing done).",
    responses(
        (status = 101, description = "Switched to the WebSocket protocol."),
        (status = 400, description = "Not a WebSocket upgrade request.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token_query" = []), ("recipient_token" = [])),
)]
pub async fn websocket(
    req: HttpRequest,
    handlers: web::Data<Handlers>,
    live: web::Data<Live>,
    tokens: web::Data<RecipientTokens>,
) -> Result<HttpResponse, actix_web::Error> {
    let mut response = handshake(&req)?;
    let checked = match (recipient_of(&req).await, presented_token(&req)) {
        // The generation the token carries, for the checks at resyncs (the token itself is
        // not kept). It verified a moment ago; should it not now, the connection is refused.
        (Ok(me), Some(token)) => tokens
            .verify(&token)
            .map(|(_, generation, _)| (me, generation))
            .map_err(Err),
        (outcome, _) => Err(outcome),
    };
    let takeover = match checked {
        Ok((me, generation)) => {
            // Subscribe now, before the handshake completes: nothing published after the
            // answer can be missed.
            let subscription = live.hub.subscribe(&me.recipient);
            let open = live.connections.open(crate::metrics::Transport::WebSocket);
            let auth = Authenticated {
                me,
                generation,
                tokens: tokens.into_inner(),
                clock: handlers.clock.clone(),
            };
            let limits = req
                .app_data::<web::Data<RateLimits>>()
                .map(|l| l.clone().into_inner());
            let session = Session {
                auth,
                handlers: handlers.into_inner(),
                limits,
                ping_every: live.ping_interval,
                _open: open,
            };
            Takeover::new(move |io, leftover| {
                // The session's own future is the task: no wrapper keeping a second copy of
                // what it captured.
                actix_web::rt::spawn(websocket_session(
                    Box::new(session),
                    Wire::new(io, leftover),
                    subscription,
                ));
            })
        }
        Err(outcome) => {
            let reason = match outcome {
                // Neither accepted nor refused: the client may try again later.
                Err(TokenError::Unavailable(_)) => CloseReason {
                    code: CloseCode::Error,
                    description: Some("cannot check the token now; retry later".into()),
                },
                _ => unauthorized("invalid or expired token"),
            };
            Takeover::new(move |io, leftover| {
                actix_web::rt::spawn(Wire::new(io, leftover).close(Some(reason)));
            })
        }
    };
    response.extensions_mut().insert(takeover);
    Ok(response)
}

/// The `101` answer to a valid WebSocket handshake (RFC 6455 § 4.2.2), with the `clairon`
/// subprotocol when the client offered it.
fn handshake(req: &HttpRequest) -> Result<HttpResponse, actix_http::ws::HandshakeError> {
    let mut response = actix_http::ws::handshake(req.head())?;
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "clairon");
    if offered {
        response.insert_header((header::SEC_WEBSOCKET_PROTOCOL, "clairon"));
    }
    Ok(HttpResponse::from(response.finish().map_into_boxed_body()))
}

/// The 4401 close of a connection whose token is (or became) no good.
fn unauthorized(why: &str) -> CloseReason {
    CloseReason {
        code: CloseCode::Other(4401),
        description: Some(why.into()),
    }
}

/// A live connection's recipient and the token generation it was opened with (checked again at
/// resyncs).
struct Authenticated {
    me: Me,
    /// The `gen` claim of the connection's token.
    generation: i64,
    tokens: Arc<RecipientTokens>,
    clock: Arc<dyn Clock>,
}

impl Authenticated {
    /// Whether the token is still good (a resync may have hidden a revocation). A database
    /// failure keeps the connection: it was good, and cannot be told otherwise now.
    async fn still_valid(&self) -> bool {
        match self
            .tokens
            .still_current(&self.me.recipient, self.generation)
            .await
        {
            Ok(()) | Err(TokenError::Unavailable(_)) => true,
            Err(_) => false,
        }
    }

    /// When the token expires, on tokio's clock.
    fn expiry(&self) -> tokio::time::Instant {
        let left = (self.me.expires_at - self.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        tokio::time::Instant::now() + left
    }
}

/// What a WebSocket session reads only now and then, kept behind one pointer so that the
/// session's task holds one word of it.
struct Session {
    auth: Authenticated,
    handlers: Arc<Handlers>,
    limits: Option<Arc<RateLimits>>,
    /// Ping interval (25 s); a peer silent for two of them is dropped.
    ping_every: Duration,
    /// Counts the connection in `/metrics` while the session lives.
    _open: crate::metrics::OpenConnection,
}

/// After lost events: the token checked again, then `resync` and the unread count. `Err`: the
/// token is no longer good (close 4401).
async fn resync_frames(auth: &Authenticated, handlers: &Handlers) -> Result<[Bytes; 2], ()> {
    if !auth.still_valid().await {
        return Err(());
    }
    let count = unread(handlers, &auth.me.recipient).await.unwrap_or(0);
    Ok([frames::resync(), frames::count(count)])
}

/// What one live WebSocket does until it closes. Kept small while idle: the rare work (unread
/// counts, token checks, client messages, the close) is boxed, and what it reads now and then
/// is one boxed [`Session`], so the task's own future holds little more than the socket, the
/// subscription and one timer (the next ping or the token's expiry, whichever comes first).
async fn websocket_session(session: Box<Session>, mut wire: Wire, mut subscription: Subscription) {
    let reason = websocket_loop(&session, &mut wire, &mut subscription).await;
    drop(subscription);
    if let Some(reason) = reason {
        Box::pin(wire.close(reason)).await;
    }
}

/// The session until it should close: `Some(reason)` to close with (`None` inside: a close
/// frame without a reason), `None` when the socket is gone and nothing is to be sent.
async fn websocket_loop(
    session: &Session,
    wire: &mut Wire,
    subscription: &mut Subscription,
) -> Option<Option<CloseReason>> {
    let Session {
        auth,
        handlers,
        limits,
        ping_every,
        ..
    } = session;
    let ping_every = *ping_every;
    let me = &auth.me.recipient;
    if let Some(count) = Box::pin(unread(handlers, me)).await {
        if wire.text(&[frames::count(count)]).await.is_err() {
            return None;
        }
    }
    let expires = auth.expiry();
    let mut next_ping = tokio::time::Instant::now() + ping_every;
    let timer = tokio::time::sleep_until(next_ping.min(expires));
    tokio::pin!(timer);
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            () = &mut timer => {
                let now = tokio::time::Instant::now();
                if now >= expires {
                    return Some(Some(unauthorized("token expired")));
                }
                if now >= next_ping {
                    if last_heard.elapsed() > ping_every * 2 {
                        tracing::debug!(recipient_id = %me, "live: dropping a silent WebSocket peer");
                        return Some(None);
                    }
                    if wire.control(OpCode::Ping, b"clairon").await.is_err() { return None; }
                    next_ping = now + ping_every;
                }
                timer.as_mut().reset(next_ping.min(expires));
            }
            readable = wire.readable() => {
                if readable.is_err() { return None; }
                let incoming = match wire.read() {
                    Ok(Some(incoming)) => incoming,
                    Ok(None) | Err(None) => return None,
                    Err(Some(code)) => return Some(Some(code.into())),
                };
                if !incoming.is_empty() {
                    last_heard = Instant::now();
                }
                for message in incoming {
                    let sent = match message {
                        Incoming::Text(text) => {
                            let text = String::from_utf8_lossy(&text);
                            match Box::pin(client_message(handlers, limits.as_deref(), me, &text)).await {
                                Some(error) => wire.text(&[Bytes::from(error)]).await,
                                None => Ok(()),
                            }
                        }
                        Incoming::Ping(bytes) => wire.control(OpCode::Pong, &bytes).await,
                        // Echo the client's close (RFC 6455 § 5.5.1).
                        Incoming::Close(reason) => return Some(reason),
                        Incoming::Other => Ok(()),
                    };
                    if sent.is_err() { return None; }
                }
            }
            event = subscription.recv() => {
                let sent = match event {
                    Ok(event) => match &*event {
                        LiveEvent::Created { frames, .. } | LiveEvent::Read { frames } => {
                            wire.text(&frames.ws).await
                        }
                        LiveEvent::Revoked => return Some(Some(unauthorized("token revoked"))),
                        LiveEvent::Resync => match Box::pin(resync_frames(auth, handlers)).await {
                            Ok(frames) => wire.text(&frames).await,
                            Err(()) => return Some(Some(unauthorized("token revoked"))),
                        },
                    },
                    // Too slow: events were lost (a revocation among them, maybe); the count is
                    // still right, and the client refetches the list on `resync`.
                    Err(RecvError::Lagged) => match Box::pin(resync_frames(auth, handlers)).await {
                        Ok(frames) => wire.text(&frames).await,
                        Err(()) => return Some(Some(unauthorized("token revoked"))),
                    },
                    Err(RecvError::Closed) => return Some(None),
                };
                if sent.is_err() { return None; }
            }
        }
    }
}

/// The size in bytes of one WebSocket session's future, which is most of its task while the
/// connection is idle (for `examples/hub_memory` and BENCHMARKS.md's byte breakdown).
#[doc(hidden)]
pub fn websocket_session_size() -> usize {
    fn size_of_output<F: std::future::Future>(
        _: &impl FnOnce(Box<Session>, Wire, Subscription) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }
    size_of_output(&websocket_session)
}

/// Acts on one client frame; returns an error frame to send back, if any. Each frame takes a
/// token from the recipient's rate-limit bucket, as a REST call would: over the limit, nothing
/// is done and the error frame says when to come back (`retry_after`, in seconds) — the
/// connection stays open, so the live feed is not lost over a burst of clicks.
async fn client_message(
    handlers: &Handlers,
    limits: Option<&RateLimits>,
    me: &RecipientId,
    text: &str,
) -> Option<String> {
    let error = |message: &str| {
        Some(
            LiveFrame::Error {
                message,
                retry_after: None,
            }
            .to_json(),
        )
    };
    if let Some(Err(ApiError::TooManyRequests { retry_after_secs })) =
        limits.map(|l| l.check_recipient(me.as_str()))
    {
        return Some(
            LiveFrame::Error {
                message: "rate limited: nothing was done",
                retry_after: Some(retry_after_secs),
            }
            .to_json(),
        );
    }
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(ClientMessage::MarkRead { id }) => {
            let Ok(id) = NotificationId::parse(&id) else {
                return error("notification not found");
            };
            match handlers
                .mark_read
                .execute(MarkNotificationRead {
                    id,
                    owner: Some(me.clone()),
                })
                .await
            {
                Ok(_) => None,
                Err(clairon_application::commands::MarkNotificationReadError::NotFound(_)) => {
                    error("notification not found")
                }
                Err(e) => {
                    tracing::error!(error = %e, "live: mark_read failed");
                    error("internal error")
                }
            }
        }
        Ok(ClientMessage::MarkAllRead) => match handlers
            .mark_all_read
            .execute(MarkAllNotificationsRead {
                recipient_id: me.clone(),
            })
            .await
        {
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, "live: mark_all_read failed");
                error("internal error")
            }
        },
        Err(_) => {
            error("expected {\"type\":\"mark_read\",\"id\":…} or {\"type\":\"mark_all_read\"}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events

/// Query of the SSE route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Replay every notification after this per-recipient sequence number first
    /// (`Last-Event-ID` wins when both are given).
    #[param(value_type = Option<u64>)]
    since: Option<String>,
}

/// `GET /api/v1/me/notifications/stream`: the live inbox as Server-Sent Events (WHATWG HTML
/// § 9.2). Each `notification.created` carries `id: <seq>`; with `Last-Event-ID` (or
/// `?since=<seq>`) every later notification is replayed from the database first, in order.
/// The stream ends when its token expires or is revoked (reconnecting with it is then a 401).
///
/// # Errors
/// 401 without a valid token; 422 when `Last-Event-ID`/`since` is not a number.
#[utoipa::path(
    get, path = "/api/v1/me/notifications/stream", tag = "me",
    description = "The live inbox as Server-Sent Events (WHATWG HTML § 9.2): `retry: 2000`, then `notification.created` (with `id:` its per-recipient sequence number), `notification.read` and `unread_count` events, and a `: keep-alive` comment every 15 s. With `Last-Event-ID` or `?since=` every later notification is replayed first, in order, with no gap and no repeat. The stream ends only when its token expires or is revoked (or the recipient erased); reconnecting with that token is then a `401`.",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence number (sent by EventSource when it reconnects)."),
    ),
    responses(
        (status = 200, description = "The event stream.", content_type = "text/event-stream", body = String),
        (status = 422, description = "`Last-Event-ID` or `since` is not a sequence number.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = []), ("recipient_token_query" = [])),
)]
pub async fn sse(
    req: HttpRequest,
    me: Me,
    params: web::Query<StreamParams>,
    handlers: web::Data<Handlers>,
    live: web::Data<Live>,
    tokens: web::Data<RecipientTokens>,
) -> Result<HttpResponse, ApiError> {
    // `Me` came from this very token; its generation is what a resync checks again.
    let token = presented_token(&req).ok_or(ApiError::Unauthorized)?;
    let (_, generation, _) = tokens.verify(&token)?;
    let raw_since = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(ToOwned::to_owned)
        .or_else(|| params.since.clone());
    let since = raw_since
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| ApiError::invalid("since", "must be a notification sequence number"))
        })
        .transpose()?;
    // Live first, then the backlog: what commits in between arrives twice and is dropped by seq.
    let subscription = live.hub.subscribe(&me.recipient);
    // A new client starts from now — fixed before answering, so whatever is created after the
    // answer is sent — and lists the past over REST.
    let start = match since {
        Some(since) => Start::After(since),
        None => Start::Now(
            live.feed
                .last_seq(&me.recipient)
                .await
                .map_err(repository)?,
        ),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    actix_web::rt::spawn(sse_session(
        Authenticated {
            me,
            generation,
            tokens: tokens.into_inner(),
            clock: handlers.clock.clone(),
        },
        start,
        subscription,
        tx,
        handlers.into_inner(),
        live.into_inner(),
    ));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Sends every notification after `last` (from the database, in order); returns the new last
/// seq, or `None` when the client is gone or the database failed.
async fn replay(
    feed: &dyn InboxFeed,
    me: &RecipientId,
    mut last: u64,
    tx: &mpsc::Sender<Bytes>,
) -> Option<u64> {
    loop {
        let page = match feed.after(me, last, REPLAY_PAGE).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "live: SSE replay failed");
                return None;
            }
        };
        let full = page.len() == REPLAY_PAGE as usize;
        for SequencedNotification { seq, notification } in page {
            let frame = created_frame(seq, &notification);
            tx.send(sse_event("notification.created", Some(seq), &frame))
                .await
                .ok()?;
            last = seq;
        }
        if !full {
            return Some(last);
        }
    }
}

/// Where an SSE stream starts.
enum Start {
    /// Replay everything after this seq first.
    After(u64),
    /// Live only, after this seq (the last one when the client connected).
    Now(u64),
}

async fn sse_session(
    auth: Authenticated,
    start: Start,
    mut subscription: Subscription,
    tx: mpsc::Sender<Bytes>,
    handlers: Arc<Handlers>,
    live: Arc<Live>,
) {
    let _open = live.connections.open(crate::metrics::Transport::Sse);
    let me = auth.me.recipient.clone();
    let feed = live.feed.as_ref();
    let hello = Bytes::from(format!("retry: {SSE_RETRY_MS}\n: clairon inbox stream\n\n"));
    if tx.send(hello).await.is_err() {
        return;
    }
    let start = match start {
        Start::After(since) => replay(feed, &me, since, &tx).await,
        Start::Now(last) => Some(last),
    };
    let Some(mut last) = start else { return };
    let count = |n: u64| sse_event("unread_count", None, &frames::count(n));
    if let Some(n) = unread(&handlers, &me).await {
        if tx.send(count(n)).await.is_err() {
            return;
        }
    }
    let mut keep_alive = tokio::time::interval(live.keep_alive);
    keep_alive.tick().await;
    // Returning drops `tx`: the response body, and so the stream, ends.
    let expired = tokio::time::sleep_until(auth.expiry());
    tokio::pin!(expired);
    loop {
        let frames = tokio::select! {
            () = tx.closed() => return,
            () = &mut expired => return,
            _ = keep_alive.tick() => vec![Bytes::from_static(b": keep-alive\n\n")],
            event = subscription.recv() => match event {
                Ok(event) => match &*event {
                    LiveEvent::Created { seq, unread, frames } => {
                        if *seq <= last {
                            continue; // already sent from the backlog
                        }
                        if *seq == last + 1 {
                            last = *seq;
                            vec![frames.sse.clone()]
                        } else {
                            // A gap (events published out of order, or lost): the database has
                            // everything up to `seq` committed, in order.
                            let Some(l) = replay(feed, &me, last, &tx).await else { return };
                            last = l;
                            vec![count(*unread)]
                        }
                    }
                    LiveEvent::Read { frames } => vec![frames.sse.clone()],
                    LiveEvent::Revoked => return,
                    LiveEvent::Resync => {
                        if !auth.still_valid().await {
                            return;
                        }
                        let Some(l) = replay(feed, &me, last, &tx).await else { return };
                        last = l;
                        vec![count(unread(&handlers, &me).await.unwrap_or(0))]
                    }
                },
                Err(RecvError::Lagged) => {
                    if !auth.still_valid().await {
                        return;
                    }
                    let Some(l) = replay(feed, &me, last, &tx).await else { return };
                    last = l;
                    vec![count(unread(&handlers, &me).await.unwrap_or(0))]
                }
                Err(RecvError::Closed) => return,
            },
        };
        for frame in frames {
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    }
}

/// Registers the live streams in the `/api/v1/me` scope: SSE and WebSocket.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/notifications/stream").get(sse))
        .service(web::resource("/ws").get(websocket));
}
