//! Scheduled notifications: hidden and undelivered until `deliver_at`, then delivered like any
//! other. Everything is in the database, so a restart loses nothing.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use clairon_tests::{spawn_app, TestApp};
use serde_json::json;

async fn register(app: &TestApp, id: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr" }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

async fn unread(app: &TestApp, id: &str) -> u64 {
    app.get(&format!(
        "/api/v1/recipients/{id}/notifications/unread-count"
    ))
    .await
    .json["unread"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_scheduled_notification_stays_hidden_and_undelivered_until_deliver_at() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    let deliver_at = Utc::now() + chrono::TimeDelta::seconds(2);

    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({
                "recipient_ids": ["artist-1"], "title": "Appel", "body": "Répétition demain.",
                "deliver_at": deliver_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let id = answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Before: out of the inbox and the badge, deliveries pending, no email.
    let inbox = app.get("/api/v1/recipients/artist-1/notifications").await;
    assert_eq!(inbox.json["items"], json!([]), "hidden until due");
    assert_eq!(unread(&app, "artist-1").await, 0);
    let details = app.get(&format!("/api/v1/notifications/{id}")).await;
    assert!(
        details.json["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["channel"] != "telegram")
            .all(|d| d["status"] == "pending"),
        "{}",
        details.json
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.smtp.as_ref().unwrap().messages().is_empty(),
        "not sent early"
    );

    // After: delivered and visible.
    let settled = app.wait_until_settled(&id, Duration::from_secs(15)).await;
    assert!(Utc::now() >= deliver_at, "settled only once due");
    assert!(
        settled["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["channel"] != "telegram")
            .all(|d| d["status"] == "sent"),
        "{settled}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while unread(&app, "artist-1").await != 1 {
        assert!(Instant::now() < deadline, "visible once due");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.smtp.as_ref().unwrap().messages().len(), 1);
}

#[tokio::test]
async fn a_deliver_at_that_is_not_rfc_3339_is_refused_naming_the_field() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "t", "body": "b", "deliver_at": "demain 18 h" }),
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.json);
    assert_eq!(answer.json["errors"][0]["field"], "deliver_at");
}
