//! The load client of the realtime benchmarks: `python3 bench/run.py ws-latency|ws-fanout`
//! starts a release `clairon serve` on PostgreSQL, registers the recipients, builds this example
//! in release and runs it. It opens one WebSocket per recipient (`/api/v1/me/ws?token=…`, each
//! token asked of `POST /api/v1/recipients/{id}/tokens`: a token carries its recipient's token
//! generation, which only the server knows) and measures, on the client's clock, the time
//! from just before an HTTP `POST /api/v1/notifications` is sent to the `notification.created`
//! frame arriving on the recipient's socket. It prints one JSON object on stdout.
//!
//! ```text
//! realtime_load latency <base_url> <api_key> <recipients> <rate_per_s> <seconds>
//! realtime_load fanout  <base_url> <api_key> <recipients> <rounds>
//! ```
//!
//! * `latency`: open loop — one single-recipient in-app notification every `1/rate` s, to the
//!   recipients in turn, for `seconds`; reports HTTP and HTTP→WebSocket percentiles (ms).
//! * `fanout`: one request naming every recipient, `rounds` times; reports, per round, the
//!   response time and when the first, median, 99th-percentile and last socket got it (ms).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{stream, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What a socket reports: the notification title it saw and when (µs since the client's start).
type Seen = (String, u64);

struct Client {
    base: String,
    api_key: String,
    http: reqwest::Client,
    start: Instant,
}

impl Client {
    fn micros(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A recipient token from the server (`POST /api/v1/recipients/{id}/tokens`).
    async fn token(&self, recipient: &str) -> String {
        let response = self
            .http
            .post(format!(
                "{}/api/v1/recipients/{recipient}/tokens",
                self.base
            ))
            .bearer_auth(&self.api_key)
            .json(&json!({}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("a token for {recipient}: {e}"));
        let body: Value = response.json().await.expect("a JSON answer");
        body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("a token for {recipient}: {body}"))
            .to_owned()
    }

    /// Opens one socket per recipient (200 handshakes at a time); each forwards the titles of
    /// `notification.created` frames to `seen`. Returns once every socket has had its first
    /// `unread_count` frame (the server's "you are subscribed").
    async fn connect_all(
        self: &Arc<Self>,
        recipients: &[String],
        seen: mpsc::UnboundedSender<Seen>,
    ) {
        let ready = Arc::new(AtomicUsize::new(0));
        let ws_base = self.base.replacen("http", "ws", 1);
        stream::iter(recipients.iter().cloned())
            .map(|recipient| {
                let (client, seen, ready) = (Arc::clone(self), seen.clone(), Arc::clone(&ready));
                let ws_base = ws_base.clone();
                async move {
                    let url = format!(
                        "{ws_base}/api/v1/me/ws?token={}",
                        client.token(&recipient).await
                    );
                    let (socket, _) = tokio_tungstenite::connect_async(url)
                        .await
                        .unwrap_or_else(|e| panic!("WebSocket of {recipient}: {e}"));
                    let (mut write, mut read) = socket.split();
                    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
                    tokio::spawn(async move {
                        let mut subscribed = Some(subscribed_tx);
                        while let Some(Ok(message)) = read.next().await {
                            match message {
                                Message::Text(text) => {
                                    let at = client.micros();
                                    let frame: Value =
                                        serde_json::from_str(&text).unwrap_or_default();
                                    if frame["type"] == "notification.created" {
                                        let title = frame["notification"]["title"]
                                            .as_str()
                                            .unwrap_or_default();
                                        let _ = seen.send((title.to_owned(), at));
                                    } else if let Some(tx) = subscribed.take() {
                                        let _ = tx.send(());
                                    }
                                }
                                Message::Ping(bytes) => {
                                    let _ = write.send(Message::Pong(bytes)).await;
                                }
                                Message::Close(_) => break,
                                _ => {}
                            }
                        }
                    });
                    let _ = subscribed_rx.await;
                    ready.fetch_add(1, Ordering::Relaxed);
                }
            })
            .buffer_unordered(200)
            .collect::<Vec<()>>()
            .await;
        eprintln!("{} sockets open", ready.load(Ordering::Relaxed));
    }

    /// `POST /api/v1/notifications` (in-app only); returns the response time in µs.
    async fn notify(&self, recipients: &[String], title: &str) -> u64 {
        let sent = self.micros();
        let response = self
            .http
            .post(format!("{}/api/v1/notifications", self.base))
            .bearer_auth(&self.api_key)
            .json(&json!({
                "recipient_ids": recipients,
                "title": title,
                "body": "Realtime benchmark.",
                "channels": ["in_app"],
            }))
            .send()
            .await
            .expect("the POST");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "POST answered {status}: {body}");
        self.micros() - sent
    }
}

/// Percentile `p` (0–100) of sorted µs values, in ms.
fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn latency(client: Arc<Client>, recipients: Vec<String>, rate: u64, seconds: u64) -> Value {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    client.connect_all(&recipients, seen_tx).await;
    let total = rate * seconds;
    let mut http_us = Vec::with_capacity(total as usize);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        ticker.tick().await;
        let (client, done) = (Arc::clone(&client), done_tx.clone());
        let to = [recipients[i as usize % recipients.len()].clone()];
        tokio::spawn(async move {
            // The title carries the send time: the socket side needs no shared map.
            let title = format!("t{}", client.micros());
            let _ = done.send(client.notify(&to, &title).await);
        });
    }
    drop(done_tx);
    while let Some(us) = done_rx.recv().await {
        http_us.push(us);
    }
    let mut ws_us = Vec::with_capacity(total as usize);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (ws_us.len() as u64) < total {
        match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
            Ok(Some((title, at))) => {
                if let Some(sent) = title.strip_prefix('t').and_then(|s| s.parse::<u64>().ok()) {
                    ws_us.push(at.saturating_sub(sent));
                }
            }
            _ => break,
        }
    }
    http_us.sort_unstable();
    ws_us.sort_unstable();
    json!({
        "mode": "latency", "recipients": recipients.len(), "rate_per_s": rate, "seconds": seconds,
        "sent": total, "received": ws_us.len(),
        "http_p50_ms": pct(&http_us, 50.0), "http_p99_ms": pct(&http_us, 99.0),
        "ws_p50_ms": pct(&ws_us, 50.0), "ws_p99_ms": pct(&ws_us, 99.0),
        "ws_max_ms": pct(&ws_us, 100.0),
    })
}

async fn fanout(client: Arc<Client>, recipients: Vec<String>, rounds: u32) -> Value {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    client.connect_all(&recipients, seen_tx).await;
    let mut results = Vec::new();
    for round in 0..rounds {
        let title = format!("fanout {round}");
        let start = client.micros();
        let response_us = client.notify(&recipients, &title).await;
        let mut reached = Vec::with_capacity(recipients.len());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while reached.len() < recipients.len() {
            match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
                Ok(Some((seen, at))) if seen == title => reached.push(at - start),
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        reached.sort_unstable();
        results.push(json!({
            "response_ms": response_us as f64 / 1000.0, "reached": reached.len(),
            "first_ms": pct(&reached, 0.0), "p50_ms": pct(&reached, 50.0),
            "p99_ms": pct(&reached, 99.0), "last_ms": pct(&reached, 100.0),
        }));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    json!({ "mode": "fanout", "recipients": recipients.len(), "rounds": results })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "realtime_load latency|fanout <base_url> <api_key> <recipients> …";
    let [mode, base, api_key, count, rest @ ..] = args.as_slice() else {
        panic!("{usage}");
    };
    let count: usize = count.parse().expect("recipients: a number");
    let recipients: Vec<String> = (0..count).map(|i| format!("r-{i}")).collect();
    let client = Arc::new(Client {
        base: base.clone(),
        api_key: api_key.clone(),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .expect("an HTTP client"),
        start: Instant::now(),
    });
    let result = match (mode.as_str(), rest) {
        ("latency", [rate, seconds]) => {
            let rate = rate.parse().expect("rate_per_s: a number");
            latency(client, recipients, rate, seconds.parse().expect("seconds")).await
        }
        ("fanout", [rounds]) => fanout(client, recipients, rounds.parse().expect("rounds")).await,
        _ => panic!("{usage}"),
    };
    println!("{result}");
}
