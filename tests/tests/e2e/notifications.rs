//! Notifications written through the API: the inbox, read state, deliveries, test messages, and
//! failures that stay contained.

use std::time::Duration;

use clairon_tests::{spawn_app, spawn_app_with, Options, TestApp};
use serde_json::{json, Value};

async fn register(app: &TestApp, id: &str, email: Option<&str>, chat: Option<&str>) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "email": email, "telegram_chat_id": chat, "locale": "fr", "timezone": "America/Montreal" }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

async fn notify(app: &TestApp, body: Value) -> Value {
    let answer = app.post("/api/v1/notifications", &body).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json
}

#[tokio::test]
async fn a_notification_is_persisted_then_delivered_and_an_unreachable_channel_is_skipped() {
    let app = spawn_app().await;
    register(&app, "artist-1", Some("zoe@example.org"), None).await;
    let created = notify(
        &app,
        json!({
            "recipient_ids": ["artist-1"], "kind": "success", "title": "Contrat signé",
            "body": "Votre contrat pour Carmen est signé.", "action_url": "https://planning.example.org/contracts/7",
            "action_label": "Voir le contrat", "metadata": { "contract_id": 7 }
        }),
    )
    .await;
    let n = &created["notifications"][0];
    assert_eq!(n["channels"], json!(["in_app", "email"]));
    assert_eq!(n["skipped"][0]["channel"], "telegram");
    assert_eq!(
        n["skipped"][0]["reason"],
        "unreachable: recipient has no Telegram chat id"
    );

    let details = app
        .wait_until_settled(n["id"].as_str().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(details["kind"], "success");
    assert_eq!(details["metadata"]["contract_id"], 7);
    let statuses: Vec<(&str, &str)> = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["channel"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("in_app", "sent"),
            ("email", "sent"),
            ("telegram", "skipped")
        ]
    );

    let email = &app
        .smtp
        .as_ref()
        .unwrap()
        .wait_for_messages(1, Duration::from_secs(10))
        .await[0];
    assert_eq!(email.subject.as_deref(), Some("Contrat signé"));
    assert_eq!(
        email.header("X-Clairon-Notification-Id").as_deref(),
        n["id"].as_str()
    );
    let html = email.part("text/html").unwrap();
    assert!(
        html.contains("https://planning.example.org/contracts/7")
            && html.contains("Voir le contrat"),
        "{html}"
    );
}

#[tokio::test]
async fn the_inbox_pages_newest_first_and_read_state_moves_the_unread_count() {
    let app = spawn_app().await;
    register(&app, "artist-1", Some("zoe@example.org"), None).await;
    for i in 0..12 {
        notify(&app, json!({ "recipient_ids": ["artist-1"], "title": format!("n{i}"), "body": "b", "channels": ["in_app"] })).await;
    }
    // Pages of 5: 5 + 5 + 2, newest first, no repeats.
    let mut titles = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/recipients/artist-1/notifications?limit=5&cursor={c}"),
            None => "/api/v1/recipients/artist-1/notifications?limit=5".to_owned(),
        };
        let page = app.get(&path).await;
        titles.extend(
            page.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["title"].as_str().unwrap().to_owned()),
        );
        match page.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..12).rev().map(|i| format!("n{i}")).collect();
    assert_eq!(titles, expected);

    let newest = app
        .get("/api/v1/recipients/artist-1/notifications?limit=1")
        .await
        .json["items"][0]
        .clone();
    let read = app
        .post(
            &format!(
                "/api/v1/notifications/{}/read",
                newest["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json["read"], true);
    let count = app
        .get("/api/v1/recipients/artist-1/notifications/unread-count")
        .await;
    assert_eq!(count.json["unread"], 11);
    let read_only = app
        .get("/api/v1/recipients/artist-1/notifications?status=read")
        .await;
    assert_eq!(read_only.json["items"].as_array().unwrap().len(), 1);
    let unread_only = app
        .get("/api/v1/recipients/artist-1/notifications?status=unread&limit=100")
        .await;
    assert_eq!(unread_only.json["items"].as_array().unwrap().len(), 11);

    let all = app
        .post(
            "/api/v1/recipients/artist-1/notifications/read-all",
            &json!({}),
        )
        .await;
    assert_eq!(all.json["marked"], 11);
    let count = app
        .get("/api/v1/recipients/artist-1/notifications/unread-count")
        .await;
    assert_eq!(count.json["unread"], 0);

    let bad = app
        .get("/api/v1/recipients/artist-1/notifications?status=maybe")
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json["errors"][0]["field"], "status");
}

#[tokio::test]
async fn the_test_endpoint_sends_on_each_configured_channel_and_reports_each() {
    let app = spawn_app().await;
    register(&app, "artist-1", Some("zoe@example.org"), Some("100000001")).await;
    let answer = app
        .post(
            "/api/v1/notifications/test",
            &json!({ "recipient_id": "artist-1" }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    let results: Vec<(&str, &str)> = answer.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        vec![("in_app", "sent"), ("email", "sent"), ("telegram", "sent")]
    );
    assert_eq!(
        app.smtp.as_ref().unwrap().messages().len(),
        1,
        "the email went out before the answer"
    );
    assert_eq!(app.telegram.as_ref().unwrap().messages().len(), 1);

    let bare = app
        .post(
            "/api/v1/notifications/test",
            &json!({ "email": "ops@example.org", "channels": ["email", "in_app"] }),
        )
        .await;
    let results = bare.json["results"].as_array().unwrap();
    assert_eq!(
        results[0]["status"], "skipped",
        "in-app needs a registered recipient"
    );
    assert_eq!(results[1]["status"], "sent");
}

#[tokio::test]
async fn a_refused_email_is_recorded_as_failed_without_holding_back_other_deliveries() {
    let app = spawn_app_with(Options {
        smtp_script: &[550],
        ..Options::default()
    })
    .await
    .unwrap();
    register(&app, "artist-1", Some("zoe@example.org"), Some("100000001")).await;
    let created = notify(
        &app,
        json!({ "recipient_ids": ["artist-1"], "title": "t", "body": "b" }),
    )
    .await;
    let id = created["notifications"][0]["id"].as_str().unwrap();
    let details = app.wait_until_settled(id, Duration::from_secs(10)).await;
    let by_channel = |c: &str| {
        details["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["channel"] == c)
            .unwrap()
            .clone()
    };
    let email = by_channel("email");
    assert_eq!(email["status"], "failed");
    assert!(
        email["last_error"].as_str().unwrap().contains("550"),
        "{email}"
    );
    assert_eq!(by_channel("telegram")["status"], "sent");
    assert_eq!(by_channel("in_app")["status"], "sent");
    let inbox = app.get("/api/v1/recipients/artist-1/notifications").await;
    assert_eq!(
        inbox.json["items"][0]["id"], id,
        "the notification stays in the inbox"
    );
}

#[tokio::test]
async fn a_bot_the_user_blocked_fails_the_telegram_delivery_only() {
    let app = spawn_app().await;
    app.telegram.as_ref().unwrap().block_chat("100000001");
    register(&app, "artist-1", Some("zoe@example.org"), Some("100000001")).await;
    let created = notify(
        &app,
        json!({ "recipient_ids": ["artist-1"], "title": "t", "body": "b" }),
    )
    .await;
    let details = app
        .wait_until_settled(
            created["notifications"][0]["id"].as_str().unwrap(),
            Duration::from_secs(10),
        )
        .await;
    let telegram = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "telegram")
        .unwrap();
    assert_eq!(telegram["status"], "failed");
    assert!(
        telegram["last_error"].as_str().unwrap().contains("blocked"),
        "{telegram}"
    );
}
