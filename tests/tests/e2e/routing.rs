//! Routing rules: validated and versioned over `GET|PUT /api/v1/routing-rules`, and applied to
//! domain events and planning events (topics add recipients, channels narrow them, priority).

use clairon_tests::{spawn_app, TestApp};
use serde_json::{json, Value};

async fn register(app: &TestApp, id: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": format!("Person {id}"), "email": format!("{id}@example.org"), "telegram_chat_id": 100000001, "locale": "fr" }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

async fn topic(app: &TestApp, key: &str, members: &[&str]) {
    let answer = app
        .put(
            &format!("/api/v1/topics/{key}"),
            &json!({ "name": key, "recipient_ids": members }),
        )
        .await;
    assert!(
        answer.status == 201 || answer.status == 200,
        "{}",
        answer.json
    );
}

async fn put_rules(app: &TestApp, rules: Value) -> clairon_tests::Answer {
    app.call(
        reqwest::Method::PUT,
        "/api/v1/routing-rules",
        Some(&json!({ "rules": rules })),
    )
    .await
}

#[tokio::test]
async fn the_default_set_is_version_0_and_each_put_stores_the_next_version() {
    let app = spawn_app().await;
    let initial = app.get("/api/v1/routing-rules").await;
    assert_eq!(initial.status, 200, "{}", initial.json);
    assert_eq!(initial.json["version"], 0);
    assert_eq!(
        initial.json["rules"],
        json!([
            { "event": "job.failed", "topics": ["admins"], "priority": "high" },
            { "event": "deliveries.dead_letters", "topics": ["admins"], "priority": "high" }
        ])
    );

    let first = put_rules(&app, json!([{ "event": "sync.*", "topics": ["admins"] }])).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["version"], 1);
    let second = put_rules(
        &app,
        json!([{ "event": "sync.failed", "channels": ["in_app", "email"], "priority": "critical" }]),
    )
    .await;
    assert_eq!(second.json["version"], 2);
    let current = app.get("/api/v1/routing-rules").await;
    assert_eq!(current.json["version"], 2);
    assert_eq!(
        current.json["rules"],
        json!([{ "event": "sync.failed", "channels": ["in_app", "email"], "priority": "critical" }])
    );
}

#[tokio::test]
async fn a_bad_rule_is_named_by_its_place_and_nothing_is_stored() {
    let app = spawn_app().await;
    let answer = put_rules(
        &app,
        json!([
            { "event": "sync.failed" },
            { "event": "project.*", "channels": ["email"] },
            { "event": "job.failed", "channels": ["email", "pigeon"] },
            { "event": "sync.failed" },
            { "event": "Bad" },
        ]),
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.json);
    let fields: Vec<&str> = answer.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["rules[2].channels[1]", "rules[3].event", "rules[4].event"]
    );
    assert_eq!(app.get("/api/v1/routing-rules").await.json["version"], 0);
}

#[tokio::test]
async fn an_event_is_routed_by_its_rule_to_the_topic_members_on_the_rules_channels() {
    let app = spawn_app().await;
    for id in ["admin-1", "admin-2", "dev-1"] {
        register(&app, id).await;
    }
    topic(&app, "admins", &["admin-1", "admin-2"]).await;
    let stored = put_rules(
        &app,
        json!([
            { "event": "sync.*", "channels": ["in_app"] },
            { "event": "sync.failed", "topics": ["admins"], "channels": ["in_app", "email"], "priority": "high" },
        ]),
    )
    .await;
    assert_eq!(stored.status, 200, "{}", stored.json);

    let answer = app
        .post(
            "/api/v1/events",
            &json!({
                "event_id": "sync-1", "type": "sync.failed", "occurred_at": "2027-03-01T10:00:00Z",
                "recipient_ids": ["dev-1"], "title": "Synchronisation échouée", "body": "Le serveur ne répond pas.",
                "priority": "low",
            }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let notifications = answer.json["notifications"].as_array().unwrap();
    let mut reached: Vec<&str> = notifications
        .iter()
        .map(|n| n["recipient_id"].as_str().unwrap())
        .collect();
    reached.sort_unstable();
    assert_eq!(reached, vec!["admin-1", "admin-2", "dev-1"]);
    for n in notifications {
        assert_eq!(n["channels"], json!(["in_app", "email"]), "{n}");
        assert_eq!(
            n["skipped"],
            json!([{ "channel": "telegram", "reason": "not_in_rule: sync.failed" }]),
            "{n}"
        );
    }
    // The rule raises the producer's `low` to its `high`.
    let id = notifications[0]["id"].as_str().unwrap();
    let details = app.get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(details.json["priority"], "high", "{}", details.json);
    let telegram = details.json["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "telegram")
        .unwrap()
        .clone();
    assert_eq!(telegram["status"], "skipped");
    assert_eq!(telegram["last_error"], "not_in_rule: sync.failed");
}

#[tokio::test]
async fn failed_jobs_reach_the_admins_topic_by_the_default_rule() {
    let app = spawn_app().await;
    register(&app, "admin-1").await;
    topic(&app, "admins", &["admin-1"]).await;
    let answer = app
        .post(
            "/api/v1/events",
            &json!({
                "event_id": "job-1", "type": "job.failed", "occurred_at": "2027-03-01T10:00:00Z",
                "title": "Job failed", "body": "The nightly sync failed.",
                "data": { "job": "nightly-sync", "run_id": "r-7", "message": "timeout" },
            }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    assert_eq!(answer.json["notifications"][0]["recipient_id"], "admin-1");
    let id = answer.json["notifications"][0]["id"].as_str().unwrap();
    let details = app.get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(
        details.json["title"], "Échec de la tâche nightly-sync",
        "{}",
        details.json
    );
    assert_eq!(details.json["priority"], "high");
}

#[tokio::test]
async fn a_planning_event_also_reaches_its_rules_topic_as_coordinators_do() {
    let app = spawn_app().await;
    for id in ["artist-1", "coord-1", "regie-1"] {
        register(&app, id).await;
    }
    topic(&app, "regie", &["regie-1", "coord-1"]).await;
    let stored = put_rules(
        &app,
        json!([{ "event": "planning.modified", "topics": ["regie"] }]),
    )
    .await;
    assert_eq!(stored.status, 200, "{}", stored.json);
    let answer = app
        .post(
            "/api/v1/notifications/plannings/pl-1/events",
            &json!({
                "event_id": "pl-ev-1", "planning_id": "pl-1", "event": "modified",
                "occurred_at": "2027-03-01T10:00:00Z",
                "planning": {
                    "title": "Carmen",
                    "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O, Montréal" },
                    "starts_at": "2027-03-17T00:15:00Z", "ends_at": "2027-03-17T02:15:00Z",
                    "timezone": "America/Montreal",
                    "contact": { "name": "Samir" }
                },
                "artist_ids": ["artist-1"], "coordinator_ids": ["coord-1"],
                "changes": { "title": { "from": "Carmen", "to": "Carmen (concert)" } }
            }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let mut reached: Vec<&str> = answer.json["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["recipient_id"].as_str().unwrap())
        .collect();
    reached.sort_unstable();
    assert_eq!(reached, vec!["artist-1", "coord-1", "regie-1"], "each once");
    let inbox = app
        .get("/api/v1/recipients/regie-1/notifications?limit=10")
        .await;
    let item = &inbox.json["items"][0];
    assert_eq!(item["event_type"], "planning.modified", "{}", inbox.json);
    let coordinator = app
        .get("/api/v1/recipients/coord-1/notifications?limit=10")
        .await;
    assert_eq!(
        item["title"], coordinator.json["items"][0]["title"],
        "the topic member reads the coordinator's version"
    );
}
