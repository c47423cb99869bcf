//! Every refusal is an RFC 7807 problem naming the field, and a refused event writes nothing.

use clairon_tests::{dataset, spawn_app, TestApp};
use serde_json::{json, Value};

fn first_assignment() -> Value {
    dataset()["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "assigned")
        .unwrap()
        .clone()
}

async fn app_with_recipients() -> TestApp {
    let app = spawn_app().await;
    assert_eq!(app.import_dataset_recipients(&dataset()).await.status, 200);
    app
}

fn assert_problem(answer: &clairon_tests::Answer, status: u16, field: Option<&str>) {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(answer.json["status"], status);
    assert!(answer.json["title"].is_string() && answer.json["detail"].is_string());
    if let Some(field) = field {
        let fields: Vec<&str> = answer.json["errors"]
            .as_array()
            .map(|es| es.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.contains(&field),
            "expected field {field} in {}",
            answer.json
        );
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let app = app_with_recipients().await;
    let answer = app
        .post_raw(
            "/api/v1/notifications/plannings/pl-00000/events",
            b"{\"event_id\": ".to_vec(),
            "application/json",
        )
        .await;
    assert_problem(&answer, 400, None);
}

#[tokio::test]
async fn a_body_over_256_kib_is_a_413_problem() {
    let app = app_with_recipients().await;
    let huge =
        json!({ "recipient_ids": ["artist-0001"], "title": "t", "body": "x".repeat(300 * 1024) });
    let answer = app
        .post_raw(
            "/api/v1/notifications",
            serde_json::to_vec(&huge).unwrap(),
            "application/json",
        )
        .await;
    assert_problem(&answer, 413, None);
}

#[rstest::rstest]
#[case::bad_timezone("/planning/timezone", json!("Europe/Atlantis"), "planning.timezone")]
#[case::ends_before_start("/planning/ends_at", json!("2027-03-26T09:00:00+01:00"), "planning.ends_at")]
#[case::bad_start("/planning/starts_at", json!("tomorrow at ten"), "planning.starts_at")]
#[case::unknown_event("/event", json!("postponed"), "event")]
#[case::bad_contact_email("/planning/contact/email", json!("not-an-email"), "planning.contact.email")]
#[case::other_planning("/planning_id", json!("pl-99999"), "planning_id")]
#[case::missing_title("/planning/title", Value::Null, "planning.title")]
#[tokio::test]
async fn an_invalid_event_field_is_a_422_naming_it_and_writes_nothing(
    #[case] pointer: &str,
    #[case] value: Value,
    #[case] field: &str,
) {
    let app = app_with_recipients().await;
    let mut event = first_assignment();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut event
    } else {
        event.pointer_mut(parent).unwrap()
    };
    if value.is_null() {
        target.as_object_mut().unwrap().remove(key);
    } else {
        target[key] = value;
    }
    let answer = app
        .post("/api/v1/notifications/plannings/pl-00000/events", &event)
        .await;
    assert_problem(&answer, 422, Some(field));
    let artist = event["artist_ids"][0].as_str().unwrap();
    let inbox = app
        .get(&format!("/api/v1/recipients/{artist}/notifications"))
        .await;
    assert_eq!(
        inbox.json["items"],
        json!([]),
        "a refused event writes nothing"
    );
}

#[tokio::test]
async fn an_event_naming_unknown_recipients_lists_them_all_and_writes_nothing() {
    let app = app_with_recipients().await;
    let mut event = first_assignment();
    event["artist_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!("artist-9998"));
    event["coordinator_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!("coordinator-9999"));
    let answer = app.post_event(&event).await;
    assert_problem(&answer, 422, Some("artist_ids"));
    let message = answer.json["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("artist-9998") && message.contains("coordinator-9999"),
        "{message}"
    );
    let known = event["artist_ids"][0].as_str().unwrap();
    let count = app
        .get(&format!(
            "/api/v1/recipients/{known}/notifications/unread-count"
        ))
        .await;
    assert_eq!(
        count.json["unread"], 0,
        "the known artists were not notified either"
    );
}

#[rstest::rstest]
#[case::bad_email(json!({"name": "Zoé", "email": "zoe@"}), "email")]
#[case::bad_locale(json!({"name": "Zoé", "locale": "tlh"}), "locale")]
#[case::bad_phone(json!({"name": "Zoé", "phone": "514"}), "phone")]
#[case::blank_name(json!({"name": "  "}), "name")]
#[case::missing_name(json!({"email": "zoe@example.org"}), "name")]
#[tokio::test]
async fn an_invalid_recipient_is_a_422_naming_the_field(#[case] body: Value, #[case] field: &str) {
    let app = spawn_app().await;
    let answer = app.put("/api/v1/recipients/artist-0001", &body).await;
    assert_problem(&answer, 422, Some(field));
}

#[rstest::rstest]
#[case::unknown_kind(json!({"recipient_ids": ["artist-0001"], "kind": "fatal", "title": "t", "body": "b"}), "kind")]
#[case::bad_url(json!({"recipient_ids": ["artist-0001"], "title": "t", "body": "b", "action_url": "ftp://x"}), "action_url")]
#[case::metadata_not_object(json!({"recipient_ids": ["artist-0001"], "title": "t", "body": "b", "metadata": [1]}), "metadata")]
#[case::unknown_channel(json!({"recipient_ids": ["artist-0001"], "title": "t", "body": "b", "channels": ["pigeon"]}), "channels")]
#[case::unknown_recipient(json!({"recipient_ids": ["artist-0001", "ghost-1"], "title": "t", "body": "b"}), "recipient_ids")]
#[tokio::test]
async fn an_invalid_notification_is_a_422_naming_the_field(
    #[case] body: Value,
    #[case] field: &str,
) {
    let app = app_with_recipients().await;
    let answer = app.post("/api/v1/notifications", &body).await;
    assert_problem(&answer, 422, Some(field));
    let count = app
        .get("/api/v1/recipients/artist-0001/notifications/unread-count")
        .await;
    assert_eq!(count.json["unread"], 0);
}
