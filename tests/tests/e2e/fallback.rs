//! Channel failover: a notification's `fallback` chain is tried one channel at a time, the next
//! only when the one before gave up, through the real SMTP server and the Bot API stand-in.

use std::time::Duration;

use clairon_tests::{spawn_app_configured, spawn_app_with, Options, TestApp};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

async fn register(app: &TestApp, id: &str, chat: Option<&str>) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "email": format!("{id}@example.org"),
                     "telegram_chat_id": chat, "locale": "fr" }),
        )
        .await;
    assert!(
        answer.status == 201 || answer.status == 200,
        "{}",
        answer.json
    );
}

/// Posts a notification to `recipient` with only the inbox in `channels` and the chain
/// `fallback`; returns its id.
async fn notify_with_fallback(app: &TestApp, recipient: &str, fallback: &[&str]) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [recipient], "title": "Répétition annulée", "body": "Salle B",
                     "priority": "high", "channels": ["in_app"], "fallback": fallback }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn delivery<'a>(details: &'a Value, channel: &str) -> &'a Value {
    details["deliveries"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["channel"] == channel))
        .unwrap_or_else(|| panic!("a {channel} delivery: {details}"))
}

#[tokio::test]
async fn a_telegram_refusal_falls_back_to_email_and_the_deliveries_show_the_chain() {
    // Arrange: a recipient whose chat blocked the bot (Bot API 403).
    let app = spawn_app_with(Options::default()).await.unwrap();
    app.telegram.as_ref().unwrap().block_chat("100000001");
    register(&app, "artist-1", Some("100000001")).await;

    // Act
    let id = notify_with_fallback(&app, "artist-1", &["telegram", "email"]).await;
    let email = app.wait_for_delivery(&id, "email", "sent", WAIT).await;

    // Assert: Telegram failed for good, then email took over, naming the Telegram delivery.
    let details = app.wait_until_settled(&id, WAIT).await;
    let telegram = delivery(&details, "telegram");
    assert_eq!(telegram["status"], "failed", "{details}");
    assert_eq!(telegram["fallback"], json!(["email"]), "{telegram}");
    assert_eq!(email["fallback_of"], telegram["id"], "{email}");
    assert_eq!(delivery(&details, "in_app")["status"], "sent");
    let sent = app.smtp.as_ref().unwrap().wait_for_messages(1, WAIT).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0]
        .to
        .iter()
        .any(|to| to.address == "artist-1@example.org"));
}

#[tokio::test]
async fn a_chain_stops_at_its_first_sent_channel() {
    // Arrange
    let app = spawn_app_with(Options::default()).await.unwrap();
    register(&app, "artist-1", Some("100000001")).await;

    // Act
    let id = notify_with_fallback(&app, "artist-1", &["telegram", "email"]).await;
    app.wait_for_delivery(&id, "telegram", "sent", WAIT).await;

    // Assert: no email delivery was ever made.
    let details = app.wait_until_settled(&id, WAIT).await;
    let channels: Vec<&str> = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels.len(), 2, "{details}");
    assert!(!channels.contains(&"email"), "{details}");
}

#[tokio::test]
async fn an_unreachable_first_channel_is_skipped_and_the_next_one_is_tried_at_once() {
    // Arrange: no Telegram chat id at all.
    let app = spawn_app_with(Options::default()).await.unwrap();
    register(&app, "artist-1", None).await;

    // Act
    let id = notify_with_fallback(&app, "artist-1", &["telegram", "email"]).await;
    let email = app.wait_for_delivery(&id, "email", "sent", WAIT).await;

    // Assert
    let details = app.wait_until_settled(&id, WAIT).await;
    let telegram = delivery(&details, "telegram");
    assert_eq!(telegram["status"], "skipped");
    assert!(telegram["reason"]
        .as_str()
        .unwrap()
        .starts_with("unreachable"));
    assert_eq!(email["fallback_of"], telegram["id"]);
}

#[tokio::test]
async fn a_delivery_parked_as_poison_hands_over_to_the_next_channel_of_its_chain() {
    // Arrange: short leases, so the crashed rounds' Telegram delivery is retaken while the
    // test waits; every round that claims it panics (a bug in the dispatcher, as it were).
    let app = spawn_app_configured(Options::default(), |s| {
        s.dispatch_lease_secs = 1;
        s.workers = 1;
    })
    .await
    .unwrap();
    register(&app, "artist-1", Some("100000001")).await;

    // Act
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "Répétition annulée", "body": "Salle B",
                     "priority": "high", "channels": ["in_app"], "fallback": ["telegram", "email"],
                     "metadata": { "clairon_fault": "panic_round:telegram" } }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let id = answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let email = app.wait_for_delivery(&id, "email", "sent", WAIT).await;

    // Assert: Telegram was parked dead as poison, and email stood in for it.
    let details = app.wait_until_settled(&id, WAIT).await;
    let telegram = delivery(&details, "telegram");
    assert_eq!(telegram["status"], "dead", "{details}");
    assert!(
        telegram["last_error"]
            .as_str()
            .unwrap_or("")
            .starts_with("poison"),
        "{telegram}"
    );
    assert_eq!(email["fallback_of"], telegram["id"], "{email}");
    assert!(
        app.telegram.as_ref().unwrap().messages().is_empty(),
        "the poisoned delivery never reached the Bot API"
    );
}

#[tokio::test]
async fn urgent_planning_notices_fall_back_by_default_and_others_go_everywhere_at_once() {
    // Arrange: the default CLAIRON_PLANNING_FALLBACK (telegram,sms,email; SMS is off here).
    let app = spawn_app_with(Options::default()).await.unwrap();
    app.telegram.as_ref().unwrap().block_chat("100000001");
    register(&app, "artist-1", Some("100000001")).await;
    let event = |id: &str, kind: &str| {
        let mut e = json!({
            "event_id": id, "planning_id": "p-1", "event": kind,
            "occurred_at": "2027-02-09T01:29:00Z",
            "planning": {
                "title": "Carmen",
                "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O" },
                "starts_at": "2099-03-16T20:15:00-04:00", "ends_at": "2099-03-16T22:15:00-04:00",
                "timezone": "America/Montreal", "contact": { "name": "Samir Nguyễn" }
            },
            "artist_ids": ["artist-1"], "coordinator_ids": []
        });
        if kind == "modified" {
            e["changes"] = json!({ "title": { "from": "Carmen", "to": "Carmen (reprise)" } });
        }
        e
    };

    // Act: an assignment (normal) and a modification (high).
    let assigned = app.post_event(&event("ev-1", "assigned")).await;
    let modified = app.post_event(&event("ev-2", "modified")).await;

    // Assert: the assignment went to email and Telegram at once; the modification tried
    // Telegram first and fell back to email when the chat refused.
    let id = |answer: &clairon_tests::Answer| {
        answer.json["notifications"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = app.wait_until_settled(&id(&assigned), WAIT).await;
    assert_eq!(
        delivery(&first, "email")["fallback_of"],
        Value::Null,
        "{first}"
    );
    let email = app
        .wait_for_delivery(&id(&modified), "email", "sent", WAIT)
        .await;
    let second = app.wait_until_settled(&id(&modified), WAIT).await;
    assert_eq!(
        email["fallback_of"],
        delivery(&second, "telegram")["id"],
        "{second}"
    );
}

#[tokio::test]
async fn a_routing_rule_can_carry_the_chain_and_a_bad_chain_is_a_422_naming_each_entry() {
    // Arrange
    let app = spawn_app_configured(Options::default(), |s| s.planning_fallback = String::new())
        .await
        .unwrap();
    register(&app, "artist-1", None).await;

    // Act: a rule with a chain, then an event of its type.
    let rules = app
        .put(
            "/api/v1/routing-rules",
            &json!({ "rules": [{ "event": "sync.failed", "fallback": ["telegram", "email"] }] }),
        )
        .await;
    assert_eq!(rules.status, 200, "{}", rules.json);
    let shown = app.get("/api/v1/routing-rules").await;
    assert_eq!(
        shown.json["rules"][0]["fallback"],
        json!(["telegram", "email"])
    );
    let answer = app
        .post(
            "/api/v1/events",
            &json!({
                "event_id": "sync-1", "type": "sync.failed",
                "occurred_at": "2027-02-09T01:00:00Z", "recipient_ids": ["artist-1"],
                "title": "Sync failed", "body": "Gazelle did not answer", "channels": ["in_app"]
            }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let id = answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let email = app.wait_for_delivery(&id, "email", "sent", WAIT).await;
    assert!(email["fallback_of"].is_string(), "{email}");

    // And: a bad chain names each bad entry, and nothing is written.
    let bad = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "t", "body": "b",
                     "fallback": ["telegram", "fax", "telegram", "in_app"] }),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.json);
    let fields: Vec<&str> = bad.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["fallback[1]", "fallback[2]", "fallback[3]"],
        "{}",
        bad.json
    );
}
