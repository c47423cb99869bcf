//! What the logs may not hold: secrets, tokens, message bodies, full email addresses.
//!
//! Its own test binary: the global `tracing` subscriber is per process, and this test installs
//! one at debug level that captures every line, through the same masker production uses.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clairon_bootstrap::telemetry::{self, Masker};
use clairon_bootstrap::Settings;
use clairon_tests::{spawn_app_configured, Options, API_KEY, BOT_TOKEN, TOKEN_SECRET};
use reqwest::Method;
use serde_json::json;

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_of_a_realistic_flow_hold_no_secret_token_body_or_full_email_address() {
    let captured = Arc::new(Mutex::new(Vec::new()));
    let secrets = Settings {
        api_keys: API_KEY.into(),
        telegram_bot_token: BOT_TOKEN.into(),
        token_secret: TOKEN_SECRET.into(),
        ..Settings::default()
    }
    .secrets();
    let sink = Capture(captured.clone());
    telemetry::init_with_writer("debug", "pretty", Masker::new(secrets), move || {
        sink.clone()
    });
    let app = spawn_app_configured(Options::default(), |s| s.log = "debug".into())
        .await
        .unwrap();
    let (_, created_key) = app.create_api_key("producer", "admin").await;
    let body = "Corps confidentiel du message 4471";
    let emails = ["zoe.tremblay@example.org", "liam.obrien@example.org"];

    let imported = app
        .post(
            "/api/v1/recipients/import",
            &json!({"recipients": [
                {"id": "artist-0001", "name": "Zoé Tremblay", "email": emails[0], "telegram_chat_id": 100000001},
                {"id": "artist-0002", "name": "Liam O'Brien", "email": emails[1], "telegram_chat_id": 100000002}
            ]}),
        )
        .await;
    assert_eq!(imported.status, 200, "{}", imported.json);
    let sent = app
        .call_with_key(
            Some(&created_key),
            Method::POST,
            "/api/v1/notifications",
            Some(
                &json!({"recipient_ids": ["artist-0001", "artist-0002"], "title": "Répétition",
                         "body": body}),
            ),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.json);
    for n in sent.json["notifications"].as_array().unwrap() {
        app.wait_until_settled(n["id"].as_str().unwrap(), Duration::from_secs(20))
            .await;
    }
    let token = app.token_for("artist-0001").await;
    let inbox = app
        .call_as(&token, Method::GET, "/api/v1/me/notifications")
        .await;
    assert_eq!(inbox.status, 200);
    assert_eq!(inbox.json["items"][0]["body"], body, "the flow really ran");
    let by_query = app
        .client
        .get(format!(
            "{}/api/v1/me/notifications/unread-count?token={token}",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status().as_u16(), 200);
    let refused = app
        .call_as(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.Zm9yZ2Vk",
            Method::GET,
            "/api/v1/me/notifications",
        )
        .await;
    assert_eq!(refused.status, 401);
    // A panic whose message holds secrets goes through the masker too, not straight to stderr.
    let panicked = std::thread::spawn(|| {
        panic!("a bug printing {API_KEY} {BOT_TOKEN} for zoe.tremblay@example.org");
    })
    .join();
    assert!(panicked.is_err(), "the thread panicked");

    let logs = String::from_utf8(captured.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("panicked: a bug printing") && logs.contains("z***@example.org"),
        "the panic is logged, masked: {}",
        logs.lines()
            .filter(|l| l.contains("panicked"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        logs.contains("email accepted") && logs.contains("/api/v1/notifications"),
        "debug logs were captured: {} bytes",
        logs.len()
    );
    for (what, leaked) in [
        ("the configured API key", API_KEY),
        ("a created API key", created_key.as_str()),
        ("a recipient token", token.as_str()),
        ("the bot token", BOT_TOKEN),
        ("the token secret", TOKEN_SECRET),
        ("a message body", body),
        ("an email address", emails[0]),
        ("an email address", emails[1]),
    ] {
        assert!(
            !logs.contains(leaked),
            "{what} is in the logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(leaked))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
