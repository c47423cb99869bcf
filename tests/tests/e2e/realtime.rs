//! The realtime notification center end to end: recipient tokens and `/api/v1/me`, the
//! WebSocket and the SSE stream (with `Last-Event-ID` replay) against the running app, and two
//! apps on one PostgreSQL database. Waits poll with generous timeouts; nothing is timed.

use std::time::Duration;

use clairon_tests::{
    spawn_app, spawn_app_configured, spawn_app_with, Engine, Options, TestApp, TOKEN_SECRET,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(20);

async fn given_recipient(app: &TestApp, id: &str) {
    let answer = app
        .put(&format!("/api/v1/recipients/{id}"), &json!({ "name": id }))
        .await;
    assert!(matches!(answer.status, 200 | 201), "{}", answer.json);
}

/// Creates one notification for `to` through the API; returns its id.
async fn notify(app: &TestApp, to: &str, title: &str) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [to], "title": title, "body": "Live!", "channels": ["in_app"] }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn jwt(secret: &str, sub: &str, exp: i64) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": sub, "aud": "clairon-inbox", "iat": exp - 3600, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn expired(sub: &str) -> String {
    jwt(TOKEN_SECRET, sub, chrono::Utc::now().timestamp() - 600)
}

fn forged(sub: &str) -> String {
    jwt(
        "not-the-secret-not-the-secret",
        sub,
        chrono::Utc::now().timestamp() + 600,
    )
}

// ---------------------------------------------------------------------------------------------
// SSE client

struct SseEvent {
    id: Option<String>,
    event: String,
    data: Value,
}

struct Sse {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl Sse {
    /// Opens the stream with `token` in the query, and `Last-Event-ID` when given.
    async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app.client.get(format!(
            "{}/api/v1/me/notifications/stream?token={token}",
            app.address
        ));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("the stream answers");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            body: response
                .bytes_stream()
                .map(|chunk| chunk.map(|b| b.to_vec()))
                .boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (comments and the `retry:` hint skipped).
    async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let (mut id, mut event, mut data) = (None, String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.to_owned());
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            event = v.to_owned();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data.push_str(v);
                        }
                    }
                    if event.is_empty() {
                        continue;
                    }
                    return SseEvent {
                        id,
                        event,
                        data: serde_json::from_str(&data).expect("JSON data"),
                    };
                }
                let chunk = self.body.next().await.expect("the stream stays open");
                self.buffer
                    .push_str(&String::from_utf8(chunk.expect("a chunk")).expect("UTF-8"));
            }
        })
        .await
        .expect("an event within the patience")
    }

    /// The next `notification.created` event, skipping counts and reads.
    async fn next_created(&mut self) -> SseEvent {
        loop {
            let event = self.next().await;
            if event.event == "notification.created" {
                return event;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket client

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(app: &TestApp, token: &str) -> Ws {
    let url = format!(
        "{}/api/v1/me/ws?token={token}",
        app.address.replacen("http", "ws", 1)
    );
    tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket handshake")
        .0
}

/// The next JSON text frame whose `type` is `kind`.
async fn ws_next(ws: &mut Ws, kind: &str) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await.expect("open").expect("a frame") {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                    if frame["type"] == kind {
                        return frame;
                    }
                }
                Message::Close(frame) => panic!("closed while waiting for {kind}: {frame:?}"),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} frame within the patience"))
}

// ---------------------------------------------------------------------------------------------
// Tokens and /api/v1/me

#[tokio::test]
async fn a_token_is_issued_for_a_known_recipient_with_an_api_key_only() {
    let app = spawn_app().await;
    given_recipient(&app, "artist-1").await;

    let issued = app
        .post("/api/v1/recipients/artist-1/tokens", &json!({}))
        .await;
    let unknown = app
        .post("/api/v1/recipients/nobody/tokens", &json!({}))
        .await;
    let token = issued.json["token"].as_str().unwrap().to_owned();
    let with_a_token = app
        .client
        .post(format!("{}/api/v1/recipients/artist-1/tokens", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(issued.status, 201, "{}", issued.json);
    assert!(
        issued.json["expires_at"].as_str().is_some(),
        "{}",
        issued.json
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(
        with_a_token.status(),
        401,
        "a recipient token is no API key"
    );
}

#[tokio::test]
async fn every_me_route_refuses_missing_expired_forged_tokens_and_api_keys_with_401() {
    let app = spawn_app().await;
    given_recipient(&app, "artist-1").await;
    let id = notify(&app, "artist-1", "Hello").await;
    let routes = [
        (Method::GET, "/api/v1/me/notifications".to_owned()),
        (
            Method::GET,
            "/api/v1/me/notifications/unread-count".to_owned(),
        ),
        (Method::POST, format!("/api/v1/me/notifications/{id}/read")),
        (Method::POST, "/api/v1/me/notifications/read-all".to_owned()),
        (Method::GET, "/api/v1/me/notifications/stream".to_owned()),
    ];
    for (method, path) in &routes {
        let missing = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 401, "{method} {path} without a token");
        assert_eq!(
            missing.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        for (what, token) in [
            ("expired", expired("artist-1")),
            ("forged", forged("artist-1")),
            ("an API key", clairon_tests::API_KEY.to_owned()),
        ] {
            let answer = app.call_as(&token, method.clone(), path).await;
            assert_eq!(answer.status, 401, "{method} {path} with {what}");
            assert_eq!(answer.json["status"], 401, "{method} {path} with {what}");
        }
    }
    let unread = app
        .get("/api/v1/recipients/artist-1/notifications/unread-count")
        .await;
    assert_eq!(unread.json["unread"], 1, "nothing was marked read");
}

#[tokio::test]
async fn a_token_only_ever_shows_and_marks_its_own_recipients_inbox() {
    let app = spawn_app().await;
    given_recipient(&app, "artist-1").await;
    given_recipient(&app, "artist-2").await;
    let mine = notify(&app, "artist-1", "Mine").await;
    let theirs = notify(&app, "artist-2", "Theirs").await;
    let token = app.token_for("artist-1").await;

    let list = app
        .call_as(
            &token,
            Method::GET,
            "/api/v1/me/notifications?status=unread",
        )
        .await;
    let count = app
        .call_as(&token, Method::GET, "/api/v1/me/notifications/unread-count")
        .await;
    let other = app
        .call_as(
            &token,
            Method::POST,
            &format!("/api/v1/me/notifications/{theirs}/read"),
        )
        .await;
    let own = app
        .call_as(
            &token,
            Method::POST,
            &format!("/api/v1/me/notifications/{mine}/read"),
        )
        .await;
    let all = app
        .call_as(&token, Method::POST, "/api/v1/me/notifications/read-all")
        .await;

    let ids: Vec<&str> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![mine.as_str()],
        "only artist-1's notification is listed"
    );
    assert_eq!(count.json["unread"], 1);
    assert_eq!(
        other.status, 404,
        "someone else's notification is not found"
    );
    assert_eq!(own.status, 200, "{}", own.json);
    assert_eq!(all.status, 200);
    assert_eq!(all.json["marked"], 0, "artist-1 had nothing left unread");
    let theirs_now = app
        .get("/api/v1/recipients/artist-2/notifications/unread-count")
        .await;
    assert_eq!(
        theirs_now.json["unread"], 1,
        "artist-2's inbox is untouched"
    );
}

// ---------------------------------------------------------------------------------------------
// WebSocket

#[rstest::rstest]
#[case::missing(None)]
#[case::expired(Some(expired("artist-1")))]
#[case::forged(Some(forged("artist-1")))]
#[tokio::test]
async fn a_websocket_with_a_bad_token_is_closed_with_4401(#[case] token: Option<String>) {
    let app = spawn_app().await;
    given_recipient(&app, "artist-1").await;
    let url = format!(
        "{}/api/v1/me/ws{}",
        app.address.replacen("http", "ws", 1),
        token.map(|t| format!("?token={t}")).unwrap_or_default()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    let close = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(Message::Text(text))) => panic!("a bad token received {text}"),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("closed within the patience");

    assert_eq!(close.map(|f| u16::from(f.code)), Some(4401));
}

#[tokio::test]
async fn the_websocket_pushes_new_notifications_and_reads_and_accepts_mark_read() {
    let app = spawn_app().await;
    given_recipient(&app, "artist-1").await;
    given_recipient(&app, "artist-2").await;
    let theirs = notify(&app, "artist-2", "Theirs").await;
    let token = app.token_for("artist-1").await;
    let mut ws = ws_connect(&app, &token).await;
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 0);

    let _ = notify(&app, "artist-2", "Not for artist-1").await;
    let id = notify(&app, "artist-1", "Répétition déplacée").await;
    let created = ws_next(&mut ws, "notification.created").await;
    assert_eq!(created["notification"]["id"], id.as_str(), "{created}");
    assert_eq!(created["notification"]["title"], "Répétition déplacée");
    assert_eq!(created["notification"]["read"], false);
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 1);

    ws.send(Message::text(
        json!({ "type": "mark_read", "id": theirs }).to_string(),
    ))
    .await
    .unwrap();
    let refused = ws_next(&mut ws, "error").await;
    assert!(refused["message"].as_str().unwrap().contains("not found"));

    ws.send(Message::text(
        json!({ "type": "mark_read", "id": id }).to_string(),
    ))
    .await
    .unwrap();
    let read = ws_next(&mut ws, "notification.read").await;
    assert_eq!(read["ids"], json!([id]));
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 0);

    let _ = notify(&app, "artist-1", "Encore").await;
    ws_next(&mut ws, "notification.created").await;
    ws.send(Message::text(
        json!({ "type": "mark_all_read" }).to_string(),
    ))
    .await
    .unwrap();
    ws_next(&mut ws, "notification.read").await;
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 0);
    let theirs_now = app
        .get("/api/v1/recipients/artist-2/notifications/unread-count")
        .await;
    assert_eq!(
        theirs_now.json["unread"], 2,
        "artist-2's inbox is untouched"
    );
}

// ---------------------------------------------------------------------------------------------
// SSE

#[tokio::test]
async fn the_sse_stream_replays_what_was_missed_after_last_event_id_then_goes_live() {
    let app = spawn_app().await;
    given_recipient(&app, "artist-1").await;
    let token = app.token_for("artist-1").await;
    let mut stream = Sse::open(&app, &token, None).await;
    let first = notify(&app, "artist-1", "One").await;
    let live = stream.next_created().await;
    assert_eq!(live.id.as_deref(), Some("1"));
    assert_eq!(live.data["notification"]["id"], first.as_str());
    drop(stream);

    // Created while the client is away.
    let missed = [
        notify(&app, "artist-1", "Two").await,
        notify(&app, "artist-1", "Three").await,
    ];
    for id in &missed {
        app.wait_until_settled(id, PATIENCE).await;
    }
    let mut again = Sse::open(&app, &token, live.id.as_deref()).await;
    let replayed = [again.next_created().await, again.next_created().await];
    let fourth = notify(&app, "artist-1", "Four").await;
    let after = again.next_created().await;

    let ids: Vec<_> = replayed.iter().map(|e| e.id.clone().unwrap()).collect();
    assert_eq!(ids, vec!["2", "3"], "the missed ones, in order");
    assert_eq!(replayed[0].data["notification"]["id"], missed[0].as_str());
    assert_eq!(replayed[1].data["notification"]["id"], missed[1].as_str());
    assert_eq!(
        after.id.as_deref(),
        Some("4"),
        "then live, without a repeat"
    );
    assert_eq!(after.data["notification"]["id"], fourth.as_str());

    let mut by_query = Sse::open(&app, &format!("{token}&since=3"), None).await;
    assert_eq!(by_query.next_created().await.id.as_deref(), Some("4"));
}

#[tokio::test]
async fn the_sse_stream_tells_reads_and_counts() {
    let app = spawn_app().await;
    given_recipient(&app, "artist-1").await;
    let token = app.token_for("artist-1").await;
    let id = notify(&app, "artist-1", "One").await;
    app.wait_until_settled(&id, PATIENCE).await;
    let mut stream = Sse::open(&app, &token, None).await;
    let count = stream.next().await;
    assert_eq!(
        (count.event.as_str(), count.data["count"].clone()),
        ("unread_count", json!(1))
    );

    app.call_as(&token, Method::POST, "/api/v1/me/notifications/read-all")
        .await;
    let read = stream.next().await;
    let after = stream.next().await;

    assert_eq!(read.event, "notification.read");
    assert_eq!(read.data["ids"], json!([id]));
    assert_eq!(after.event, "unread_count");
    assert_eq!(after.data["count"], 0);
}

// ---------------------------------------------------------------------------------------------
// Two processes on PostgreSQL

#[tokio::test]
async fn on_postgres_a_notification_created_through_one_app_reaches_clients_of_another() {
    let Some(a) = spawn_app_with(Options {
        engine: Engine::Postgres,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let b = a.spawn_peer().await;
    given_recipient(&a, "artist-1").await;
    let token = a.token_for("artist-1").await;
    let mut sse_on_b = Sse::open(&b, &token, None).await;
    let mut ws_on_b = ws_connect(&b, &token).await;
    assert_eq!(ws_next(&mut ws_on_b, "unread_count").await["count"], 0);

    let id = notify(&a, "artist-1", "Through A").await;

    let by_sse = sse_on_b.next_created().await;
    let by_ws = ws_next(&mut ws_on_b, "notification.created").await;
    assert_eq!(by_sse.data["notification"]["id"], id.as_str());
    assert_eq!(by_sse.id.as_deref(), Some("1"));
    assert_eq!(by_ws["notification"]["id"], id.as_str());

    // A read through A reaches B too.
    a.call_as(
        &token,
        Method::POST,
        &format!("/api/v1/me/notifications/{id}/read"),
    )
    .await;
    let read = ws_next(&mut ws_on_b, "notification.read").await;
    assert_eq!(read["ids"], json!([id]));
}

// ---------------------------------------------------------------------------------------------
// Two processes through NATS (CLAIRON_REALTIME_BROKER)

/// The NATS server of the development and CI machines; `None` (skipped) when it is not
/// listening and `CI` is unset.
fn nats_url() -> Option<String> {
    let url =
        std::env::var("CLAIRON_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let address = url.trim_start_matches("nats://").to_owned();
    match std::net::TcpStream::connect(&address) {
        Ok(_) => Some(url),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "no NATS server at {address} under CI: {e}"
            );
            eprintln!("skipped: no NATS server at {address} ({e})");
            None
        }
    }
}

#[tokio::test]
async fn through_nats_a_notification_created_through_one_app_reaches_clients_of_another() {
    let Some(broker) = nats_url() else { return };
    let configure = |broker: String| {
        move |s: &mut clairon_bootstrap::settings::Settings| {
            s.realtime_broker = broker;
        }
    };
    let Some(a) = spawn_app_configured(
        Options {
            engine: Engine::Postgres,
            ..Options::default()
        },
        configure(broker.clone()),
    )
    .await
    else {
        return;
    };
    let b = a.spawn_peer_configured(configure(broker)).await;
    b.wait_until_ready().await;
    given_recipient(&a, "artist-1").await;
    let token = a.token_for("artist-1").await;
    let mut sse_on_b = Sse::open(&b, &token, None).await;
    let mut ws_on_b = ws_connect(&b, &token).await;
    assert_eq!(ws_next(&mut ws_on_b, "unread_count").await["count"], 0);

    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(notify(&a, "artist-1", &format!("Through NATS {n}")).await);
    }

    for (n, id) in ids.iter().enumerate() {
        let by_sse = sse_on_b.next_created().await;
        let by_ws = ws_next(&mut ws_on_b, "notification.created").await;
        assert_eq!(by_sse.data["notification"]["id"], id.as_str());
        assert_eq!(by_sse.id, Some((n + 1).to_string()));
        assert_eq!(by_ws["notification"]["id"], id.as_str());
        assert_eq!(by_ws["notification"]["seq"], n + 1);
    }
    a.call_as(
        &token,
        Method::POST,
        &format!("/api/v1/me/notifications/{}/read", ids[0]),
    )
    .await;
    let read = ws_next(&mut ws_on_b, "notification.read").await;
    assert_eq!(read["ids"], json!([ids[0]]));
}

#[tokio::test]
async fn with_the_broker_down_notifications_still_reach_local_clients_and_the_database() {
    // A port nothing listens on: the broker is down for the whole test.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let app = spawn_app_configured(Options::default(), |s| {
        s.realtime_broker = format!("nats://{closed}");
    })
    .await
    .expect("the app starts without its broker");
    given_recipient(&app, "artist-1").await;
    let token = app.token_for("artist-1").await;
    let mut ws = ws_connect(&app, &token).await;
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 0);

    let id = notify(&app, "artist-1", "Broker down").await;

    let live = ws_next(&mut ws, "notification.created").await;
    assert_eq!(live["notification"]["id"], id.as_str());
    let settled = app.wait_until_settled(&id, PATIENCE).await;
    assert_eq!(settled["deliveries"][0]["status"], "sent", "{settled}");
    let replayed = Sse::open(&app, &token, Some("0"))
        .await
        .next_created()
        .await;
    assert_eq!(replayed.data["notification"]["id"], id.as_str());
}

// ---------------------------------------------------------------------------------------------
// The notification center page

#[rstest::rstest]
#[case::french_by_query("/inbox?lang=fr", None, "fr", "Tout marquer comme lu")]
#[case::english_by_query("/inbox?lang=en", Some("fr-CA,fr"), "en", "Mark all as read")]
#[case::french_by_browser("/inbox", Some("fr-CA,fr;q=0.9,en;q=0.5"), "fr", "Non lues")]
#[case::english_by_default("/inbox", None, "en", "Unread")]
#[tokio::test]
async fn the_inbox_page_speaks_the_asked_or_browsers_language_and_loads_the_client(
    #[case] path: &str,
    #[case] accept_language: Option<&str>,
    #[case] lang: &str,
    #[case] words: &str,
) {
    let app = spawn_app().await;
    let mut request = app.client.get(format!("{}{path}", app.address));
    if let Some(accept) = accept_language {
        request = request.header("Accept-Language", accept);
    }
    let page = request.send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{html}");
    assert!(html.contains(words), "{words:?} in {html}");
    assert!(html.contains("id=\"bell\"") && html.contains("aria-label="));
    assert!(html.contains("src=\"/static/clairon.js\""));

    let script = app
        .client
        .get(format!("{}/static/clairon.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(script
        .text()
        .await
        .unwrap()
        .contains("export class ClaironInbox"));
}

// ---------------------------------------------------------------------------------------------
// Revocation and expiry: tokens and the connections opened with them

/// The close code the WebSocket ends with (text frames before it are skipped).
async fn ws_close_code(ws: &mut Ws) -> Option<u16> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("the socket failed instead of closing: {e}"),
                None => return None,
            }
        }
    })
    .await
    .expect("the WebSocket closed within the patience")
}

impl Sse {
    /// Reads until the server ends the stream; panics on a notification meanwhile.
    async fn ended(&mut self) {
        tokio::time::timeout(PATIENCE, async {
            while let Some(chunk) = self.body.next().await {
                let Ok(chunk) = chunk else { return };
                let text = String::from_utf8_lossy(&chunk).into_owned();
                assert!(
                    !text.contains("notification.created"),
                    "nothing arrives after the end: {text}"
                );
            }
        })
        .await
        .expect("the stream ended within the patience");
    }
}

#[rstest::rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn an_erased_then_recreated_id_refuses_the_old_token_and_the_old_connections_close(
    #[case] engine: Engine,
) {
    let Some(app) = spawn_app_with(Options {
        engine,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    given_recipient(&app, "artist-1").await;
    let old = app.token_for("artist-1").await;
    let mut ws = ws_connect(&app, &old).await;
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 0);
    let mut stream = Sse::open(&app, &old, None).await;
    assert_eq!(stream.next().await.event, "unread_count");

    let erased = app
        .call(Method::DELETE, "/api/v1/recipients/artist-1", None)
        .await;
    let closed = ws_close_code(&mut ws).await;
    stream.ended().await;
    given_recipient(&app, "artist-1").await;
    let newcomers = notify(&app, "artist-1", "For the newcomer").await;
    app.wait_until_settled(&newcomers, PATIENCE).await;
    let with_old = app
        .call_as(&old, Method::GET, "/api/v1/me/notifications")
        .await;
    let fresh = app.token_for("artist-1").await;
    let with_fresh = app
        .call_as(&fresh, Method::GET, "/api/v1/me/notifications")
        .await;

    assert_eq!(erased.status, 204, "{}", erased.json);
    assert_eq!(
        closed,
        Some(4401),
        "the old WebSocket is closed as unauthorized"
    );
    assert_eq!(
        with_old.status, 401,
        "the old token does not read the newcomer's inbox: {}",
        with_old.json
    );
    assert_eq!(with_old.content_type, "application/problem+json");
    assert_eq!(with_fresh.status, 200, "{}", with_fresh.json);
    assert_eq!(
        with_fresh.json["items"][0]["id"],
        newcomers.as_str(),
        "a token of the newcomer reads their inbox"
    );
}

#[rstest::rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn revoking_refuses_every_earlier_token_closes_its_connections_and_later_tokens_work(
    #[case] engine: Engine,
) {
    let Some(app) = spawn_app_with(Options {
        engine,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    given_recipient(&app, "artist-1").await;
    given_recipient(&app, "artist-2").await;
    let revoked = app.token_for("artist-1").await;
    let bystander = app.token_for("artist-2").await;
    let mut ws = ws_connect(&app, &revoked).await;
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 0);
    let mut stream = Sse::open(&app, &revoked, None).await;
    assert_eq!(stream.next().await.event, "unread_count");
    let mut theirs = ws_connect(&app, &bystander).await;
    assert_eq!(ws_next(&mut theirs, "unread_count").await["count"], 0);

    let answer = app
        .post("/api/v1/recipients/artist-1/tokens/revoke", &json!({}))
        .await;
    let closed = ws_close_code(&mut ws).await;
    stream.ended().await;
    let refused = app
        .call_as(
            &revoked,
            Method::GET,
            "/api/v1/me/notifications/unread-count",
        )
        .await;
    let later = app.token_for("artist-1").await;
    let accepted = app
        .call_as(&later, Method::GET, "/api/v1/me/notifications/unread-count")
        .await;
    let unknown = app
        .post("/api/v1/recipients/nobody/tokens/revoke", &json!({}))
        .await;

    assert_eq!(answer.status, 204, "{}", answer.json);
    assert_eq!(closed, Some(4401));
    assert_eq!(refused.status, 401, "{}", refused.json);
    assert_eq!(
        accepted.status, 200,
        "a token issued after the revocation works"
    );
    assert_eq!(unknown.status, 404, "{}", unknown.json);
    let id = notify(&app, "artist-2", "Still live").await;
    let created = ws_next(&mut theirs, "notification.created").await;
    assert_eq!(
        created["notification"]["id"],
        id.as_str(),
        "another recipient's connection stays open"
    );
}

#[tokio::test]
async fn on_postgres_a_revocation_through_one_app_closes_connections_on_another_and_is_refused_there(
) {
    let Some(a) = spawn_app_with(Options {
        engine: Engine::Postgres,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let b = a.spawn_peer().await;
    given_recipient(&a, "artist-1").await;
    let token = a.token_for("artist-1").await;
    // B has checked (and cached) the token's generation before the revocation.
    let before = b
        .call_as(&token, Method::GET, "/api/v1/me/notifications/unread-count")
        .await;
    let mut ws_on_b = ws_connect(&b, &token).await;
    assert_eq!(ws_next(&mut ws_on_b, "unread_count").await["count"], 0);

    let revoked = a
        .post("/api/v1/recipients/artist-1/tokens/revoke", &json!({}))
        .await;
    let closed = ws_close_code(&mut ws_on_b).await;
    let after = b
        .call_as(&token, Method::GET, "/api/v1/me/notifications/unread-count")
        .await;

    assert_eq!(before.status, 200);
    assert_eq!(revoked.status, 204);
    assert_eq!(
        closed,
        Some(4401),
        "B closed its connection on hearing of it"
    );
    assert_eq!(
        after.status, 401,
        "B forgot the cached generation as it heard of the revocation"
    );
}

#[tokio::test]
async fn a_websocket_closes_and_a_stream_ends_when_their_token_expires() {
    let app = clairon_tests::spawn_app_configured(Options::default(), |s| s.token_ttl_secs = 2)
        .await
        .unwrap();
    given_recipient(&app, "artist-1").await;
    let token = app.token_for("artist-1").await;
    let mut ws = ws_connect(&app, &token).await;
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 0);
    let mut stream = Sse::open(&app, &token, None).await;
    assert_eq!(stream.next().await.event, "unread_count");

    let closed = ws_close_code(&mut ws).await;
    stream.ended().await;

    assert_eq!(closed, Some(4401), "closed as unauthorized once expired");
}

#[tokio::test]
async fn websocket_frames_count_against_the_recipients_rate_limit_and_over_it_do_nothing() {
    let app = clairon_tests::spawn_app_configured(Options::default(), |s| {
        s.token_rate_limit_per_sec = 1;
        s.token_rate_limit_burst = 3;
    })
    .await
    .unwrap();
    given_recipient(&app, "artist-1").await;
    let mut ids = Vec::new();
    for n in 0..6 {
        let id = notify(&app, "artist-1", &format!("N{n}")).await;
        app.wait_until_settled(&id, PATIENCE).await;
        ids.push(id);
    }
    let token = app.token_for("artist-1").await;
    let mut ws = ws_connect(&app, &token).await;
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 6);

    for id in &ids {
        ws.send(Message::text(
            json!({ "type": "mark_read", "id": id }).to_string(),
        ))
        .await
        .unwrap();
    }
    // One answer per frame: `notification.read` when done, `error` when refused.
    let (mut done, mut refused) = (0, Vec::new());
    tokio::time::timeout(PATIENCE, async {
        while done + refused.len() < ids.len() {
            let Some(Ok(Message::Text(text))) = ws.next().await else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            match frame["type"].as_str() {
                Some("notification.read") => done += 1,
                Some("error") => refused.push(frame),
                _ => {}
            }
        }
    })
    .await
    .expect("every frame was answered");
    let unread = app
        .get("/api/v1/recipients/artist-1/notifications/unread-count")
        .await;

    assert!(!refused.is_empty(), "frames over the limit are refused");
    for frame in &refused {
        assert!(
            frame["message"].as_str().unwrap().contains("rate limited")
                && frame["retry_after"].as_u64().is_some_and(|s| s >= 1),
            "{frame}"
        );
    }
    assert_eq!(
        unread.json["unread"],
        json!(refused.len()),
        "a refused frame marked nothing: {done} done, {} refused",
        refused.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The upgraded socket (http::upgrade, http::me::wire)

#[tokio::test]
async fn the_upgraded_websocket_answers_a_ping_with_its_bytes_and_closes_an_oversized_frame_with_1009(
) {
    let app = spawn_app().await;
    given_recipient(&app, "artist-1").await;
    let token = app.token_for("artist-1").await;
    let mut ws = ws_connect(&app, &token).await;
    assert_eq!(ws_next(&mut ws, "unread_count").await["count"], 0);

    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping sent");
    let pong = tokio::time::timeout(PATIENCE, async {
        loop {
            match ws.next().await.expect("open").expect("a frame") {
                Message::Pong(bytes) => return bytes,
                Message::Close(frame) => panic!("closed instead of answering: {frame:?}"),
                _ => {}
            }
        }
    })
    .await
    .expect("a pong within the patience");
    assert_eq!(&pong[..], b"are you there");

    // Still live after the ping: a notification arrives.
    let id = notify(&app, "artist-1", "Après le ping").await;
    assert_eq!(
        ws_next(&mut ws, "notification.created").await["notification"]["id"],
        id.as_str()
    );

    ws.send(Message::text("x".repeat(5 * 1024)))
        .await
        .expect("big frame sent");
    assert_eq!(ws_close_code(&mut ws).await, Some(1009));
}

#[tokio::test]
async fn an_upgrade_request_to_another_route_gets_that_routes_answer_and_a_closed_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    socket
        .write_all(
            format!(
                "GET /health/live HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n\
                 Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("request sent");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, socket.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection within the patience")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        answer.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
}
