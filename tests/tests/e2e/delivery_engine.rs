//! The delivery engine end to end: retries with backoff, dead letters, rate limits that are not
//! attempts, permanent failures, the deliveries listing and the retry endpoint — and no poison
//! pill: a hostile name, a panicking delivery or a panicking dispatcher round never stops the
//! others.

use std::time::Duration;

use clairon_tests::{spawn_app_configured, spawn_app_with, Engine, Options, TestApp};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use rstest::rstest;
use serde_json::{json, Value};

/// Generous: the tests poll, they never time the engine.
const WAIT: Duration = Duration::from_secs(30);

async fn register(app: &TestApp, id: &str, email: Option<&str>, chat: Option<&str>) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "email": email, "telegram_chat_id": chat, "locale": "fr" }),
        )
        .await;
    assert!(
        answer.status == 201 || answer.status == 200,
        "{}",
        answer.json
    );
}

/// Notifies `recipient` on `channels`; returns the notification id.
async fn notify(app: &TestApp, recipient: &str, channels: &[&str]) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [recipient], "title": "t", "body": "b", "channels": channels }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn outcomes(delivery: &Value) -> Vec<String> {
    delivery["attempt_log"]
        .as_array()
        .map(|log| {
            log.iter()
                .map(|a| a["outcome"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_transient_smtp_failure_is_retried_then_sent_with_two_attempt_rows() {
    let app = spawn_app_with(Options {
        smtp_script: &[451, 250],
        telegram: false,
        ..Options::default()
    })
    .await
    .unwrap();
    register(&app, "artist-1", Some("zoe@example.org"), None).await;

    let id = notify(&app, "artist-1", &["email"]).await;
    let email = app.wait_for_delivery(&id, "email", "sent", WAIT).await;

    assert_eq!(email["attempts"], 2, "{email}");
    assert_eq!(outcomes(&email), vec!["transient", "sent"], "{email}");
    let first = &email["attempt_log"][0];
    assert_eq!(first["number"], 1);
    assert!(first["error"].as_str().unwrap().contains("451"), "{first}");
    assert_eq!(email["attempt_log"][1]["number"], 2);
    assert!(email["attempt_log"][1]["provider_response_id"].is_string());
    assert_eq!(app.smtp.as_ref().unwrap().messages().len(), 1);
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_dead_after_the_last_attempt_and_can_be_retried_by_hand() {
    let app = spawn_app_with(Options {
        smtp_script: &[451, 451, 250],
        retry_max_attempts: 2,
        telegram: false,
        ..Options::default()
    })
    .await
    .unwrap();
    register(&app, "artist-1", Some("zoe@example.org"), None).await;

    let id = notify(&app, "artist-1", &["email"]).await;
    let email = app.wait_for_delivery(&id, "email", "dead", WAIT).await;
    assert_eq!(email["attempts"], 2, "{email}");
    assert_eq!(outcomes(&email), vec!["transient", "transient"]);

    let dead = app.get("/api/v1/deliveries?status=dead").await;
    assert_eq!(dead.status, 200, "{}", dead.json);
    let items = dead.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", dead.json);
    assert_eq!(items[0]["id"], email["id"]);
    assert_eq!(items[0]["notification_id"], id.as_str());
    assert_eq!(items[0]["recipient_id"], "artist-1");
    assert_eq!(dead.json["next_cursor"], Value::Null);

    let delivery_id = email["id"].as_str().unwrap();
    let retried = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(retried.status, 200, "{}", retried.json);
    assert_eq!(retried.json["status"], "pending");
    let email = app.wait_for_delivery(&id, "email", "sent", WAIT).await;
    assert_eq!(
        outcomes(&email),
        vec!["transient", "transient", "sent"],
        "the audit trail keeps the dead tries"
    );

    let again = app
        .post(
            &format!("/api/v1/deliveries/{delivery_id}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(again.status, 409, "a sent delivery is not retried");
    assert_eq!(again.content_type, "application/problem+json");
    let unknown = app
        .post("/api/v1/deliveries/no-such-delivery/retry", &json!({}))
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn a_refused_email_fails_at_once_and_is_listed_among_failed_deliveries() {
    let app = spawn_app_with(Options {
        smtp_script: &[550],
        telegram: false,
        ..Options::default()
    })
    .await
    .unwrap();
    register(&app, "artist-1", Some("zoe@example.org"), None).await;

    let id = notify(&app, "artist-1", &["email"]).await;
    let email = app.wait_for_delivery(&id, "email", "failed", WAIT).await;

    assert_eq!(email["attempts"], 1);
    assert_eq!(outcomes(&email), vec!["permanent"]);
    let failed = app
        .get("/api/v1/deliveries?status=failed&channel=email")
        .await;
    assert_eq!(
        failed.json["items"][0]["id"], email["id"],
        "{}",
        failed.json
    );
    let telegram = app
        .get("/api/v1/deliveries?status=failed&channel=telegram")
        .await;
    assert_eq!(telegram.json["items"], json!([]));
}

#[tokio::test]
async fn a_telegram_rate_limit_is_not_counted_and_the_message_is_sent_later() {
    let app = spawn_app_with(Options {
        smtp: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let stub = app.telegram.as_ref().unwrap();
    stub.fail_next(429, "Too Many Requests: retry after 1", Some(1));
    register(&app, "artist-1", None, Some("100000001")).await;

    let id = notify(&app, "artist-1", &["telegram"]).await;
    let telegram = app.wait_for_delivery(&id, "telegram", "sent", WAIT).await;

    assert_eq!(
        telegram["attempts"], 1,
        "the 429 did not use up an attempt: {telegram}"
    );
    assert_eq!(outcomes(&telegram), vec!["rate_limited", "sent"]);
    assert_eq!(stub.messages().len(), 1);
}

#[tokio::test]
async fn the_deliveries_listing_pages_newest_first_and_names_every_bad_parameter() {
    let app = spawn_app_with(Options {
        smtp: false,
        telegram: false,
        ..Options::default()
    })
    .await
    .unwrap();
    register(&app, "artist-1", None, None).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(notify(&app, "artist-1", &["in_app"]).await);
    }
    for id in &ids {
        app.wait_for_delivery(id, "in_app", "sent", WAIT).await;
    }

    let first = app
        .get("/api/v1/deliveries?status=sent&channel=in_app&limit=2")
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!(
            "/api/v1/deliveries?status=sent&channel=in_app&limit=2&cursor={cursor}"
        ))
        .await;
    let listed: Vec<&str> = first.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.json["items"].as_array().unwrap())
        .map(|d| d["notification_id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(second.json["next_cursor"], Value::Null);

    let bad = app
        .get("/api/v1/deliveries?status=lost&channel=pigeon&limit=many")
        .await;
    assert_eq!(bad.status, 422, "{}", bad.json);
    assert_eq!(bad.content_type, "application/problem+json");
    let fields: Vec<&str> = bad.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["status", "channel", "limit"]);
    let too_many = app.get("/api/v1/deliveries?limit=101").await;
    assert_eq!(too_many.status, 422);
    let foreign = app.get("/api/v1/deliveries?cursor=not%20ours").await;
    assert_eq!(foreign.status, 422);
}

#[tokio::test]
async fn a_blocked_bot_fails_at_once_and_the_next_notification_skips_telegram_until_the_chat_changes(
) {
    let app = spawn_app_with(Options {
        smtp: false,
        ..Options::default()
    })
    .await
    .unwrap();
    let stub = app.telegram.as_ref().unwrap();
    stub.block_chat("100000001");
    register(&app, "artist-1", None, Some("100000001")).await;

    let first = notify(&app, "artist-1", &["telegram"]).await;
    let telegram = app
        .wait_for_delivery(&first, "telegram", "failed", WAIT)
        .await;
    assert_eq!(telegram["attempts"], 1);
    assert_eq!(outcomes(&telegram), vec!["permanent"]);

    let second = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "t", "body": "b", "channels": ["telegram"] }),
        )
        .await;
    assert_eq!(second.status, 202, "{}", second.json);
    let skipped = &second.json["notifications"][0]["skipped"][0];
    assert_eq!(skipped["channel"], "telegram", "{}", second.json);
    assert!(
        skipped["reason"]
            .as_str()
            .unwrap()
            .contains("bot was blocked by the user"),
        "{skipped}"
    );

    let shown = app.get("/api/v1/recipients/artist-1").await;
    assert!(
        shown.json["telegram_unreachable"]
            .as_str()
            .is_some_and(|r| r.contains("bot was blocked")),
        "{}",
        shown.json
    );

    // Same chat id again: still unreachable. A new chat id: Telegram is tried again.
    register(&app, "artist-1", None, Some("100000001")).await;
    let same = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "t", "body": "b", "channels": ["telegram"] }),
        )
        .await;
    assert_eq!(
        same.json["notifications"][0]["skipped"][0]["channel"],
        "telegram"
    );
    register(&app, "artist-1", None, Some("100000002")).await;
    let third = notify(&app, "artist-1", &["telegram"]).await;
    app.wait_for_delivery(&third, "telegram", "sent", WAIT)
        .await;
    assert_eq!(stub.messages().len(), 1);
}

#[tokio::test]
async fn a_transient_failure_on_the_primary_smtp_is_sent_through_the_fallback_in_one_attempt() {
    let app = spawn_app_with(Options {
        smtp_script: &[451],
        smtp_fallback: true,
        telegram: false,
        ..Options::default()
    })
    .await
    .unwrap();
    register(&app, "artist-1", Some("zoe@example.org"), None).await;

    let id = notify(&app, "artist-1", &["email"]).await;
    let email = app.wait_for_delivery(&id, "email", "sent", WAIT).await;

    assert_eq!(
        email["attempts"], 1,
        "the fallback is part of the attempt: {email}"
    );
    assert_eq!(outcomes(&email), vec!["sent"]);
    let fallback = app
        .smtp_fallback
        .as_ref()
        .unwrap()
        .wait_for_messages(1, WAIT)
        .await;
    assert_eq!(fallback.len(), 1);
    assert!(
        app.smtp.as_ref().unwrap().messages().is_empty(),
        "the primary refused it with 451"
    );
}

#[tokio::test]
async fn on_postgres_two_workers_retry_and_dead_letter_like_on_sqlite() {
    let Some(app) = spawn_app_with(Options {
        engine: Engine::Postgres,
        smtp_script: &[451, 250, 451, 451],
        retry_max_attempts: 2,
        telegram: false,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    register(&app, "artist-1", Some("zoe@example.org"), None).await;

    let retried = notify(&app, "artist-1", &["email"]).await;
    let email = app.wait_for_delivery(&retried, "email", "sent", WAIT).await;
    assert_eq!(outcomes(&email), vec!["transient", "sent"]);
    let dead = notify(&app, "artist-1", &["email"]).await;
    let email = app.wait_for_delivery(&dead, "email", "dead", WAIT).await;
    assert_eq!(outcomes(&email), vec!["transient", "transient"]);

    let listed = app
        .get("/api/v1/deliveries?status=dead&channel=email")
        .await;
    assert_eq!(
        listed.json["items"][0]["id"], email["id"],
        "{}",
        listed.json
    );
}

#[tokio::test]
async fn a_shutdown_signal_stops_the_workers_and_the_server_after_their_work() {
    let mut app = spawn_app_with(Options {
        telegram: false,
        ..Options::default()
    })
    .await
    .unwrap();
    register(&app, "artist-1", Some("zoe@example.org"), None).await;
    let id = notify(&app, "artist-1", &["email"]).await;
    app.wait_for_delivery(&id, "email", "sent", WAIT).await;

    app.shut_down(WAIT).await;

    let refused = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await;
    assert!(refused.is_err(), "the listener is closed after shutdown");
}

// ---------------------------------------------------------------------------------------------
// No poison pill
// ---------------------------------------------------------------------------------------------

/// Runs one SQL statement on the app's database behind its back, as an old version of Clairon
/// (or an operator) would have written it.
fn sql(app: &TestApp, statement: &str) {
    let url = &app.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = SqliteConnection::establish(path).unwrap();
        diesel::sql_query(statement).execute(&mut c).unwrap();
    } else {
        let mut c = PgConnection::establish(url).unwrap();
        diesel::sql_query(statement).execute(&mut c).unwrap();
    }
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Notifies `recipient` on `channels` with `metadata`; returns the notification id.
async fn notify_with(app: &TestApp, recipient: &str, channels: &[&str], metadata: Value) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [recipient], "title": "t", "body": "b", "channels": channels, "metadata": metadata }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn a_name_with_a_line_break_is_refused_and_one_stored_before_gets_a_clean_email_while_others_are_delivered(
    #[case] engine: Engine,
) {
    // Arrange
    let Some(app) = spawn_app_with(Options {
        engine,
        telegram: false,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let refused = app
        .put(
            "/api/v1/recipients/p-1",
            &json!({ "name": "Eve\nX", "email": "p1@example.org" }),
        )
        .await;
    register(&app, "p-1", Some("p1@example.org"), None).await;
    register(&app, "p-2", Some("p2@example.org"), None).await;
    // A row written before names were validated.
    sql(
        &app,
        match engine {
            Engine::Sqlite => {
                "UPDATE recipients SET name = 'Eve' || char(10) || 'X' WHERE id = 'p-1'"
            }
            Engine::Postgres => "UPDATE recipients SET name = E'Eve\\nX' WHERE id = 'p-1'",
        },
    );

    // Act: a notification to p-1, then one to someone else.
    let to_eve = notify(&app, "p-1", &["email"]).await;
    let to_other = notify(&app, "p-2", &["email"]).await;

    // Assert
    assert_eq!(refused.status, 422, "{}", refused.json);
    assert_eq!(
        refused.json["errors"][0]["field"], "name",
        "{}",
        refused.json
    );
    app.wait_for_delivery(&to_eve, "email", "sent", WAIT).await;
    app.wait_for_delivery(&to_other, "email", "sent", WAIT)
        .await;
    let emails = app.smtp.as_ref().unwrap().wait_for_messages(2, WAIT).await;
    let eve = emails
        .iter()
        .find(|e| e.envelope_to == vec!["p1@example.org".to_owned()])
        .expect("Eve's email");
    assert_eq!(
        eve.to[0].name.as_deref(),
        Some("Eve X"),
        "the stored name went out on one line"
    );
    let (status, body) = readiness(&app).await;
    assert_eq!(
        (status, body["dispatcher"].as_str()),
        (200, Some("running")),
        "{body}"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn a_panic_injected_into_one_delivery_fails_it_and_the_dispatcher_delivers_the_next(
    #[case] engine: Engine,
) {
    // Arrange
    let Some(app) = spawn_app_with(Options {
        engine,
        telegram: false,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    register(&app, "p-1", Some("p1@example.org"), None).await;
    register(&app, "p-2", Some("p2@example.org"), None).await;

    // Act
    let panicking = notify_with(&app, "p-1", &["email"], json!({ "clairon_fault": "panic" })).await;
    let next = notify(&app, "p-2", &["email"]).await;

    // Assert
    let failed = app
        .wait_for_delivery(&panicking, "email", "failed", WAIT)
        .await;
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("panicked"),
        "the reason says it panicked: {failed}"
    );
    app.wait_for_delivery(&next, "email", "sent", WAIT).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["dispatcher"], "running",
        "caught inside the delivery: no restart"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn a_panic_escaping_a_dispatcher_round_restarts_the_worker_and_the_delivery_is_parked_as_poison(
    #[case] engine: Engine,
) {
    // Arrange: short leases, so the crashed rounds' deliveries are retaken while the test waits.
    let Some(app) = spawn_app_configured(
        Options {
            engine,
            telegram: false,
            ..Options::default()
        },
        |s| {
            s.dispatch_lease_secs = 1;
            s.workers = 1;
        },
    )
    .await
    else {
        return;
    };
    register(&app, "p-1", Some("p1@example.org"), None).await;
    register(&app, "p-2", Some("p2@example.org"), None).await;

    // Act: a notification whose every round panics, then one to someone else.
    let poison = notify_with(
        &app,
        "p-1",
        &["in_app"],
        json!({ "clairon_fault": "panic_round" }),
    )
    .await;
    let next = notify(&app, "p-2", &["email"]).await;

    // Assert
    app.wait_for_delivery(&next, "email", "sent", WAIT).await;
    let parked = app.wait_for_delivery(&poison, "in_app", "dead", WAIT).await;
    assert!(
        parked["last_error"]
            .as_str()
            .unwrap_or("")
            .starts_with("poison"),
        "parked as a poison pill: {parked}"
    );
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200, "still delivering: {body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["dispatcher"], "degraded", "{body}");
    assert!(
        body["dispatcher_restarts"].as_u64().unwrap_or(0) >= 2,
        "the worker was restarted after each crash: {body}"
    );
    let later = notify(&app, "p-2", &["email"]).await;
    app.wait_for_delivery(&later, "email", "sent", WAIT).await;
}
