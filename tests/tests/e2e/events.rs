//! `POST /api/v1/events`: any domain event, routed to the recipients it lists, its topics'
//! members and its routing rule's; replays answer what was created; seed 004's events rendered
//! in each recipient's language.

use std::time::Duration;

use clairon_tests::{spawn_app, spawn_app_with, Engine, Options, TestApp};
use serde_json::{json, Value};

async fn register(app: &TestApp, id: &str, locale: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": format!("Person {id}"), "email": format!("{id}@example.org"), "locale": locale }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

fn event(event_id: &str, event_type: &str, data: Value) -> Value {
    json!({
        "event_id": event_id, "type": event_type, "occurred_at": "2027-03-01T10:00:00Z",
        "recipient_ids": ["artist-0001"],
        "title": "Titre du producteur", "body": "Corps du producteur",
        "data": data,
    })
}

fn recipients_of(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["recipient_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn an_event_reaches_its_recipients_and_its_topics_members_once_each() {
    let app = spawn_app().await;
    for id in ["artist-0001", "owner-1", "owner-2"] {
        register(&app, id, "fr").await;
    }
    let topic = app
        .put(
            "/api/v1/topics/project-7-owners",
            &json!({ "name": "Owners", "recipient_ids": ["owner-1", "owner-2", "artist-0001"] }),
        )
        .await;
    assert_eq!(topic.status, 201, "{}", topic.json);
    let mut body = event(
        "ev-1",
        "project.role.assigned",
        json!({"project": {"id": "7", "name": "Carmen"}, "role": "Soprano"}),
    );
    body["topics"] = json!(["project-7-owners"]);
    let answer = app.post("/api/v1/events", &body).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    assert_eq!(answer.json["replayed"], false);
    assert_eq!(answer.json["type"], "project.role.assigned");
    assert_eq!(
        recipients_of(&answer.json),
        vec!["artist-0001", "owner-1", "owner-2"]
    );
}

#[tokio::test]
async fn the_same_event_id_again_answers_200_replayed_and_creates_nothing() {
    let app = spawn_app().await;
    register(&app, "artist-0001", "fr").await;
    let body = event(
        "ev-2",
        "project.created",
        json!({"project": {"id": "7", "name": "Carmen"}}),
    );
    let first = app.post("/api/v1/events", &body).await;
    assert_eq!(first.status, 202, "{}", first.json);
    let again = app.post("/api/v1/events", &body).await;
    assert_eq!(again.status, 200, "{}", again.json);
    assert_eq!(again.json["replayed"], true);
    assert_eq!(
        again.json["notifications"][0]["id"],
        first.json["notifications"][0]["id"]
    );
    let inbox = app
        .get("/api/v1/recipients/artist-0001/notifications?limit=100")
        .await;
    assert_eq!(
        inbox.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        inbox.json
    );
}

#[tokio::test]
async fn concurrent_replays_on_postgres_create_the_notifications_once() {
    let Some(app) = spawn_app_with(Options {
        engine: Engine::Postgres,
        ..Options::default()
    })
    .await
    else {
        println!("skipped: PostgreSQL is not reachable");
        return;
    };
    register(&app, "artist-0001", "fr").await;
    let body = event(
        "ev-race",
        "project.created",
        json!({"project": {"id": "7", "name": "Carmen"}}),
    );
    let answers =
        futures_util::future::join_all((0..6).map(|_| app.post("/api/v1/events", &body))).await;
    let ids: Vec<&Value> = answers
        .iter()
        .map(|a| {
            assert!(
                a.status == 202 || a.status == 200,
                "{} {}",
                a.status,
                a.json
            );
            &a.json["notifications"][0]["id"]
        })
        .collect();
    assert_eq!(answers.iter().filter(|a| a.status == 202).count(), 1);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let inbox = app
        .get("/api/v1/recipients/artist-0001/notifications?limit=100")
        .await;
    assert_eq!(
        inbox.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        inbox.json
    );
}

#[tokio::test]
async fn an_event_reaching_nobody_or_naming_unknowns_is_a_422_and_writes_nothing() {
    let app = spawn_app().await;
    register(&app, "artist-0001", "fr").await;
    let mut nobody = event("ev-3", "sync.failed", json!({}));
    nobody["recipient_ids"] = json!([]);
    let answer = app.post("/api/v1/events", &nobody).await;
    assert_eq!(answer.status, 422, "{}", answer.json);
    assert_eq!(answer.json["errors"][0]["field"], "recipient_ids");

    let mut unknown = event("ev-4", "sync.failed", json!({}));
    unknown["recipient_ids"] = json!(["artist-0001", "ghost-1"]);
    unknown["topics"] = json!([]);
    let answer = app.post("/api/v1/events", &unknown).await;
    assert_eq!(answer.status, 422, "{}", answer.json);
    assert!(answer.json["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ghost-1"));

    let mut no_topic = event("ev-5", "sync.failed", json!({}));
    no_topic["topics"] = json!(["nobody-here"]);
    let answer = app.post("/api/v1/events", &no_topic).await;
    assert_eq!(answer.status, 422, "{}", answer.json);
    assert_eq!(answer.json["errors"][0]["field"], "topics");

    let mut bad = event("ev-6", "Project", json!([]));
    bad["priority"] = json!("urgent");
    let answer = app.post("/api/v1/events", &bad).await;
    assert_eq!(answer.status, 422, "{}", answer.json);
    let mut fields: Vec<&str> = answer.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["data", "priority", "type"]);
    let inbox = app
        .get("/api/v1/recipients/artist-0001/notifications?limit=100")
        .await;
    assert_eq!(inbox.json["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn an_event_accepts_the_critical_priority_and_an_idempotency_key() {
    let app = spawn_app().await;
    register(&app, "artist-0001", "fr").await;
    let mut body = event("ev-7", "sync.failed", json!({}));
    body["priority"] = json!("critical");
    let first = app
        .post_idempotent("/api/v1/events", "key-ev-7", &body)
        .await;
    assert_eq!(first.status, 202, "{}", first.json);
    let again = app
        .post_idempotent("/api/v1/events", "key-ev-7", &body)
        .await;
    assert_eq!(again.status, 202, "{}", again.json);
    assert!(again.replayed, "the stored answer comes back");
    let id = first.json["notifications"][0]["id"].as_str().unwrap();
    let details = app.get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(details.json["priority"], "critical", "{}", details.json);
}

/// Seed 004's three events, sent to a French and an English recipient: what each inbox shows
/// and each email says.
#[tokio::test]
async fn seed_004s_events_are_rendered_in_french_and_in_english() {
    let app = spawn_app().await;
    register(&app, "fr-1", "fr").await;
    register(&app, "en-1", "en").await;
    let project = json!({"id": "7", "name": "Carmen"});
    let cases = [
        (
            "project.created",
            json!({"project": project}),
            "Nouveau projet : Carmen",
            "New project: Carmen",
        ),
        (
            "project.role.assigned",
            json!({"project": project, "role": "Soprano"}),
            "Rôle attribué : Soprano dans Carmen",
            "Role assigned: Soprano in Carmen",
        ),
        (
            "project.role.application.created",
            json!({"project": project, "role": "Soprano", "applicant": {"id": "a-9", "name": "Liam"}}),
            "Nouvelle candidature : Liam pour Soprano",
            "New application: Liam for Soprano",
        ),
    ];
    for (i, (event_type, data, _, _)) in cases.iter().enumerate() {
        let mut body = event(&format!("seed4-{i}"), event_type, data.clone());
        body["recipient_ids"] = json!(["fr-1", "en-1"]);
        body["channels"] = json!(["in_app", "email"]);
        let answer = app.post("/api/v1/events", &body).await;
        assert_eq!(answer.status, 202, "{}", answer.json);
    }
    for (who, pick) in [("fr-1", 2usize), ("en-1", 3usize)] {
        let inbox = app
            .get(&format!("/api/v1/recipients/{who}/notifications?limit=100"))
            .await;
        let mut titles: Vec<String> = inbox.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect();
        titles.sort();
        let mut expected: Vec<String> = cases
            .iter()
            .map(|c| if pick == 2 { c.2 } else { c.3 }.to_owned())
            .collect();
        expected.sort();
        assert_eq!(titles, expected, "{who}");
    }
    let emails = app
        .smtp
        .as_ref()
        .unwrap()
        .wait_for_messages(6, Duration::from_secs(20))
        .await;
    let mut subjects: Vec<String> = emails.iter().filter_map(|e| e.subject.clone()).collect();
    subjects.sort();
    let mut expected: Vec<String> = cases
        .iter()
        .flat_map(|c| [c.2.to_owned(), c.3.to_owned()])
        .collect();
    expected.sort();
    assert_eq!(subjects, expected);
    let english = emails
        .iter()
        .find(|e| e.subject.as_deref() == Some("Role assigned: Soprano in Carmen"))
        .unwrap();
    let text = english.part("text/plain").unwrap();
    assert!(
        text.contains("Hello Person en-1")
            && text.contains("You have been given the role “Soprano” in the project “Carmen”."),
        "{text}"
    );
}
