//! Retried and concurrent ingestion: `Idempotency-Key` replays, and planning events posted many
//! times at once that still notify each person once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use clairon_tests::{dataset, spawn_app, TestApp};
use serde_json::{json, Value};

async fn register(app: &TestApp, id: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr" }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

async fn inbox_len(app: &TestApp, id: &str) -> usize {
    let answer = app
        .get(&format!("/api/v1/recipients/{id}/notifications?limit=100"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["items"].as_array().unwrap().len()
}

fn message(title: &str) -> Value {
    json!({ "recipient_ids": ["artist-1"], "title": title, "body": "Rendez-vous à 18 h." })
}

#[tokio::test]
async fn a_retried_request_with_the_same_key_answers_the_first_answer_and_creates_nothing() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;

    let first = app
        .post_idempotent("/api/v1/notifications", "order-42", &message("Répétition"))
        .await;
    let again = app
        .post_idempotent("/api/v1/notifications", "order-42", &message("Répétition"))
        .await;

    assert_eq!(first.status, 202, "{}", first.json);
    assert!(!first.replayed, "the first request is not a replay");
    assert_eq!(again.status, 202, "the original status is replayed");
    assert!(again.replayed, "a replay says so in Idempotent-Replayed");
    assert_eq!(again.json, first.json, "the original body is replayed");
    assert_eq!(again.content_type, "application/json");
    assert_eq!(
        inbox_len(&app, "artist-1").await,
        1,
        "nothing was created twice"
    );

    let without_key = app
        .post("/api/v1/notifications", &message("Répétition"))
        .await;
    assert_eq!(without_key.status, 202);
    assert_eq!(
        inbox_len(&app, "artist-1").await,
        2,
        "requests without a key are never deduplicated"
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_naming_the_header() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    let first = app
        .post_idempotent("/api/v1/notifications", "k-1", &message("Répétition"))
        .await;
    assert_eq!(first.status, 202, "{}", first.json);

    let other = app
        .post_idempotent("/api/v1/notifications", "k-1", &message("Concert"))
        .await;

    assert_eq!(other.status, 422, "{}", other.json);
    assert_eq!(other.content_type, "application/problem+json");
    assert_eq!(other.json["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(inbox_len(&app, "artist-1").await, 1);
}

#[tokio::test]
async fn an_invalid_key_is_refused_naming_the_header_and_writes_nothing() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    for key in ["two words".to_owned(), "k".repeat(256)] {
        let answer = app
            .post_idempotent("/api/v1/notifications", &key, &message("Répétition"))
            .await;
        assert_eq!(answer.status, 422, "{key:?}: {}", answer.json);
        assert_eq!(answer.json["errors"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(inbox_len(&app, "artist-1").await, 0);
}

#[tokio::test]
async fn a_refused_request_is_replayed_too_and_keys_work_on_every_ingestion_route() {
    let app = spawn_app().await;
    let import =
        json!({ "recipients": [{ "id": "artist-1", "name": "Zoé", "email": "zoe@example.org" }] });
    let first = app
        .post_idempotent("/api/v1/recipients/import", "import-1", &import)
        .await;
    let again = app
        .post_idempotent("/api/v1/recipients/import", "import-1", &import)
        .await;
    assert_eq!(first.json, json!({ "created": 1, "updated": 0 }));
    assert!(again.replayed);
    assert_eq!(again.json, first.json, "not {{created: 0, updated: 1}}");

    let unknown = json!({ "recipient_ids": ["nobody"], "title": "t", "body": "b" });
    let refused = app
        .post_idempotent("/api/v1/notifications", "bad-1", &unknown)
        .await;
    let refused_again = app
        .post_idempotent("/api/v1/notifications", "bad-1", &unknown)
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused_again.status, 422,
        "a 4xx answer is an answer: replayed"
    );
    assert!(refused_again.replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_execute_once() {
    let app = Arc::new(spawn_app().await);
    register(&app, "artist-1").await;

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post_idempotent("/api/v1/notifications", "race-1", &message("Répétition"))
                    .await
            })
        })
        .collect();
    let mut executed = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        match (answer.status, answer.replayed) {
            (202, false) => executed += 1,
            (202, true) => {}
            (409, _) => assert_eq!(answer.content_type, "application/problem+json"),
            other => panic!("unexpected answer {other:?}: {}", answer.json),
        }
    }

    assert_eq!(executed, 1, "exactly one request executed");
    assert_eq!(inbox_len(&app, "artist-1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_clients_posting_the_same_ten_events_at_once_notify_and_email_each_person_once() {
    // Arrange: the dataset's recipients and its first ten events.
    let app = Arc::new(spawn_app().await);
    let data = dataset();
    let imported = app.import_dataset_recipients(&data).await;
    assert_eq!(imported.status, 200, "{}", imported.json);
    let events: Vec<Value> = data["events"].as_array().unwrap()[..10].to_vec();

    // Act: twenty tasks post the ten events, all at once.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, events) = (app.clone(), events.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for event in &events {
                    answers.push(app.post_event(event).await);
                }
                answers
            })
        })
        .collect();
    let mut per_event: Vec<HashSet<Vec<String>>> = vec![HashSet::new(); events.len()];
    let mut first_deliveries = 0;
    for task in tasks {
        for (i, answer) in task.await.unwrap().into_iter().enumerate() {
            assert!(
                matches!(answer.status, 200 | 202),
                "{}: {}",
                answer.status,
                answer.json
            );
            let mut ids: Vec<String> = answer.json["notifications"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            if answer.status == 202 {
                first_deliveries += 1;
            }
            per_event[i].insert(ids);
        }
    }

    // Assert: every answer about one event names the same notifications.
    assert_eq!(first_deliveries, 10, "each event was processed once");
    let mut notification_ids = Vec::new();
    for (i, answers) in per_event.iter().enumerate() {
        assert_eq!(answers.len(), 1, "event {i}: answers disagree: {answers:?}");
        notification_ids.extend(answers.iter().next().unwrap().iter().cloned());
    }
    let mut emails_expected = 0;
    for id in &notification_ids {
        let details = app.wait_until_settled(id, Duration::from_secs(30)).await;
        emails_expected += details["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["channel"] == "email" && d["status"] == "sent")
            .count();
    }
    assert!(emails_expected > 0, "the events reach people by email");
    let smtp = app.smtp.as_ref().unwrap();
    smtp.wait_for_messages(emails_expected, Duration::from_secs(30))
        .await;
    // A duplicate would have been sent with the originals; give stragglers a moment anyway.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = smtp.messages();
    let message_ids: HashSet<String> = messages
        .iter()
        .map(|m| m.header("Message-ID").expect("a Message-ID"))
        .collect();
    assert_eq!(messages.len(), emails_expected, "no email was sent twice");
    assert_eq!(
        message_ids.len(),
        emails_expected,
        "every email is distinct"
    );
}
