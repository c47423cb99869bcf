//! The `clairon` binary as operators run it. Killed with SIGKILL in the middle of draining its
//! outbox, then started again on the same SQLite file: every delivery still ends `sent`, and an
//! email is sent twice only when it was in flight at the kill — with the same `Message-ID`, so a
//! mail system can tell the copies apart. Two processes on one PostgreSQL database drain one
//! queue without sending anything twice.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clairon_adapters::testing::smtp_sink::SmtpSink;
use diesel::{Connection as _, RunQueryDsl as _};
use serde_json::{json, Value};

const API_KEY: &str = "crash-key";
const RECIPIENTS: usize = 300;
const BATCH: usize = 16;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spawn_clairon(dir: &Path, port: u16, smtp_url: &str) -> Child {
    spawn_clairon_on(
        dir,
        &format!("sqlite://{}", dir.join("clairon.db").display()),
        port,
        smtp_url,
        // A killed process's leases lapse quickly, so the next one retakes its deliveries.
        2,
    )
}

/// `lease_secs`: how long a claimed batch stays claimed. Short where a killed process's
/// deliveries must be retaken soon; long where no process dies, so that a batch slowed down by a
/// loaded machine is not retaken while still being sent (the in-flight duplicate the contract
/// allows only after a crash).
fn spawn_clairon_on(
    dir: &Path,
    database_url: &str,
    port: u16,
    smtp_url: &str,
    lease_secs: u32,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_clairon"))
        .arg("serve")
        .current_dir(dir)
        .env("CLAIRON_DATABASE_URL", database_url)
        .env("CLAIRON_BIND", format!("127.0.0.1:{port}"))
        .env("CLAIRON_API_KEYS", API_KEY)
        .env("CLAIRON_SMTP_URL", smtp_url)
        .env("CLAIRON_CHANNELS", "in_app,email")
        .env("CLAIRON_DISPATCH_BATCH_SIZE", BATCH.to_string())
        .env("CLAIRON_DISPATCH_LEASE_SECS", lease_secs.to_string())
        .env("CLAIRON_DISPATCH_POLL_MS", "100")
        .env("CLAIRON_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the clairon binary starts")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/health")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "clairon did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn eml_count(maildir: &Path) -> usize {
    std::fs::read_dir(maildir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

/// Registers RECIPIENTS artists and writes one notification to each; returns their ids.
async fn seed(client: &reqwest::Client, base: &str) -> Vec<String> {
    let recipients: Vec<Value> = (0..RECIPIENTS)
        .map(|i| {
            json!({
                "id": format!("artist-{i:04}"),
                "name": format!("Artist {i}"),
                "email": format!("artist{i}@example.org"),
            })
        })
        .collect();
    let imported = client
        .post(format!("{base}/api/v1/recipients/import"))
        .bearer_auth(API_KEY)
        .json(&json!({ "recipients": recipients }))
        .send()
        .await
        .expect("import");
    assert!(imported.status().is_success());
    let ids: Vec<String> = (0..RECIPIENTS).map(|i| format!("artist-{i:04}")).collect();
    let created: Value = client
        .post(format!("{base}/api/v1/notifications"))
        .bearer_auth(API_KEY)
        .json(&json!({ "recipient_ids": ids, "title": "Répétition", "body": "Demain 18 h." }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("JSON");
    let notifications: Vec<String> = created["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(notifications.len(), RECIPIENTS);
    notifications
}

/// Polls until every delivery of every notification is `sent`.
async fn wait_all_sent(client: &reqwest::Client, base: &str, notifications: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in notifications {
        loop {
            let details: Value = client
                .get(format!("{base}/api/v1/notifications/{id}"))
                .bearer_auth(API_KEY)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("JSON");
            let deliveries = details["deliveries"].as_array().expect("deliveries");
            if deliveries.iter().all(|d| d["status"] == "sent") {
                break;
            }
            assert!(Instant::now() < deadline, "{id} never settled: {details}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// How many times each `Message-ID` was received.
fn copies(smtp: &SmtpSink) -> HashMap<String, usize> {
    let mut copies: HashMap<String, usize> = HashMap::new();
    for email in smtp.messages() {
        *copies
            .entry(email.header("Message-ID").expect("a Message-ID"))
            .or_default() += 1;
    }
    copies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_drain_loses_no_delivery_and_duplicates_only_in_flight_emails() {
    // Arrange: a service with RECIPIENTS notifications written, not yet all sent.
    let dir = tempfile::tempdir().expect("a temp dir");
    let smtp = SmtpSink::start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut first = spawn_clairon(dir.path(), port, &smtp.url());
    wait_healthy(&client, &base).await;
    let notifications = seed(&client, &base).await;

    // Act: SIGKILL once some emails are out, then start again on the same database.
    let deadline = Instant::now() + Duration::from_secs(60);
    while eml_count(smtp.maildir()) < 10 {
        assert!(Instant::now() < deadline, "the first process sends nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let sent_before_restart = eml_count(smtp.maildir());
    assert!(
        sent_before_restart < RECIPIENTS,
        "killed mid-drain ({sent_before_restart} of {RECIPIENTS} sent): otherwise this proves nothing"
    );
    let mut second = spawn_clairon(dir.path(), port, &smtp.url());
    wait_healthy(&client, &base).await;

    // Assert: every delivery ends sent; only the batch in flight at the kill went out twice.
    wait_all_sent(&client, &base, &notifications).await;
    second.kill().expect("stop");
    second.wait().expect("reaped");
    let copies = copies(&smtp);
    assert_eq!(copies.len(), RECIPIENTS, "every notification was emailed");
    assert!(
        copies.values().all(|&n| n <= 2),
        "an email was sent more than twice"
    );
    let duplicated = copies.values().filter(|&&n| n > 1).count();
    assert!(
        duplicated <= BATCH,
        "{duplicated} emails sent twice: more than the one claimed batch in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_database_drain_one_queue_without_sending_twice() {
    let admin_url = std::env::var("CLAIRON_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut admin = match diesel::PgConnection::establish(&admin_url) {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required in CI but not reachable: {e}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL not reachable: {e}");
            return;
        }
    };
    let name = format!("clairon_crash_{:016x}", rand::random::<u64>());
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("CREATE DATABASE");
    let server = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    let database_url = format!("{server}/{name}");

    let dir = tempfile::tempdir().expect("a temp dir");
    let smtp = SmtpSink::start().await;
    let client = reqwest::Client::new();
    let (port_a, port_b) = (free_port(), free_port());
    let base_a = format!("http://127.0.0.1:{port_a}");
    let base_b = format!("http://127.0.0.1:{port_b}");
    // One after the other: the first applies the migrations.
    let mut a = spawn_clairon_on(dir.path(), &database_url, port_a, &smtp.url(), 60);
    wait_healthy(&client, &base_a).await;
    let mut b = spawn_clairon_on(dir.path(), &database_url, port_b, &smtp.url(), 60);
    wait_healthy(&client, &base_b).await;

    let notifications = seed(&client, &base_a).await;
    wait_all_sent(&client, &base_b, &notifications).await;
    for child in [&mut a, &mut b] {
        child.kill().expect("stop");
        child.wait().expect("reaped");
    }
    let copies = copies(&smtp);
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin);

    assert_eq!(copies.len(), RECIPIENTS, "every notification was emailed");
    let twice: Vec<_> = copies.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}

/// One `(status, claim_token, seq)` row per in-app delivery, read straight from the SQLite file.
fn in_app_rows(db: &Path) -> Vec<(String, Option<String>, Option<i64>, String)> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        claim_token: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        seq: Option<i64>,
        #[diesel(sql_type = diesel::sql_types::Text)]
        notification_id: String,
    }
    let mut conn =
        diesel::SqliteConnection::establish(&db.display().to_string()).expect("the SQLite file");
    diesel::sql_query(
        "SELECT d.status, d.claim_token, n.seq, n.id AS notification_id \
         FROM deliveries d JOIN notifications n ON n.id = d.notification_id \
         WHERE d.channel = 'in_app'",
    )
    .load::<Row>(&mut conn)
    .expect("the deliveries")
    .into_iter()
    .map(|r| (r.status, r.claim_token, r.seq, r.notification_id))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_dying_between_commit_and_record_leaves_its_in_app_notification_to_the_dispatcher_once_the_lease_lapses(
) {
    // Arrange: one recipient; a notification whose request makes the process abort right after
    // it committed and published, before it recorded the in-app delivery `sent`.
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("clairon.db");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let spawn = || {
        spawn_clairon_on(
            dir.path(),
            &format!("sqlite://{}", db.display()),
            port,
            "",
            // Short: the second process retakes the delivery once it lapses.
            6,
        )
    };
    let mut first = spawn();
    wait_healthy(&client, &base).await;
    let imported = client
        .post(format!("{base}/api/v1/recipients/import"))
        .bearer_auth(API_KEY)
        .json(&json!({ "recipients": [{ "id": "artist-1", "name": "Artist" }] }))
        .send()
        .await
        .expect("import");
    assert!(imported.status().is_success());

    // Act: the request dies with its process.
    let answer = client
        .post(format!("{base}/api/v1/notifications"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "recipient_ids": ["artist-1"],
            "title": "Répétition",
            "body": "Demain 18 h.",
            "channels": ["in_app"],
            "metadata": { "clairon_fault": "abort_before_record" },
        }))
        .send()
        .await;
    assert!(answer.is_err(), "the process answered: {answer:?}");
    let status = first.wait().expect("reaped");
    assert!(!status.success(), "the process aborted");
    let rows = in_app_rows(&db);
    assert_eq!(rows.len(), 1, "the notification was committed: {rows:?}");
    let (state, claim, seq, notification) = rows[0].clone();
    assert_eq!(state, "sending", "published, never recorded: {rows:?}");
    assert!(
        claim.is_some_and(|c| c.starts_with("commit-")),
        "held by the writer's lease: {rows:?}"
    );
    assert_eq!(seq, Some(1));

    // A second process on the same file. (A live client connected now would not see the
    // retaken notification: it is number 1, already in the inbox the client lists at connect,
    // and the SSE stream never repeats a seq.)
    let mut second = spawn();
    wait_healthy(&client, &base).await;

    // Assert: once the lease lapses, a dispatcher retakes the delivery, publishes it again
    // (same id, same seq) and records it sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let details: Value = client
            .get(format!("{base}/api/v1/notifications/{notification}"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("JSON");
        if details["deliveries"][0]["status"] == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "never recorded: {details}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill().expect("stop");
    second.wait().expect("reaped");
}
