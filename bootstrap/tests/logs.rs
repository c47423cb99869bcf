//! The `clairon` binary's logs as operators read them: `CLAIRON_LOG_FORMAT=json` writes one JSON
//! object per line, and the `X-Request-Id` of the request that created a notification is in the
//! access log line and in the dispatcher's `deliver` span of each of its deliveries.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const API_KEY: &str = "logs-key";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id_from_the_request_to_each_delivery() {
    // Arrange: the binary with JSON logs on stderr, read line by line.
    let dir = tempfile::tempdir().expect("a temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clairon"))
        .arg("serve")
        .current_dir(dir.path())
        .env(
            "CLAIRON_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("c.db").display()),
        )
        .env("CLAIRON_BIND", format!("127.0.0.1:{port}"))
        .env("CLAIRON_API_KEYS", API_KEY)
        .env("CLAIRON_CHANNELS", "in_app,email")
        .env("CLAIRON_DISPATCH_POLL_MS", "100")
        .env("CLAIRON_LOG", "info")
        .env("CLAIRON_LOG_FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the clairon binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client.get(format!("{base}/health/ready")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "the binary never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Act: a recipient and a notification, the latter with a request id.
    let put = client
        .put(format!("{base}/api/v1/recipients/artist-1"))
        .bearer_auth(API_KEY)
        .json(&json!({ "name": "Zoé", "email": "zoe@example.org" }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    let post = client
        .post(format!("{base}/api/v1/notifications"))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", "trace-me-7")
        .json(&json!({ "recipient_ids": ["artist-1"], "title": "T", "body": "B" }))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 202);

    // Assert: every line is JSON; the access log and both deliveries name the request id.
    let mut access_logged = false;
    let mut delivered = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(access_logged && delivered.len() == 2) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| {
            panic!("request id not seen everywhere: access log {access_logged}, deliveries {delivered:?}")
        });
        let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let message = entry["fields"]["message"].as_str().unwrap_or("");
        if message.starts_with("POST /api/v1/notifications 202")
            && message.ends_with("request_id=trace-me-7")
        {
            access_logged = true;
        }
        // A delivery the dispatcher makes carries the request id on its own `deliver` span; an
        // in-app one published at commit is delivered inside the request's `http_request` span.
        if let Some(spans) = entry["spans"].as_array() {
            let in_request = spans.iter().any(|s| s["request_id"] == "trace-me-7");
            for span in spans {
                if span["name"] == "deliver" && in_request {
                    delivered.insert(span["channel"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    child.kill().expect("stop");
    child.wait().expect("reaped");
    assert_eq!(
        delivered,
        ["in_app", "email"].map(str::to_owned).into_iter().collect()
    );
}
