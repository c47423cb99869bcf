//! Erasure reaches everywhere the person is named (GDPR article 17): after an artist is erased,
//! the summaries their coordinators got and the notices the other artists got no longer name
//! them (a neutral label in their language instead), nor do the coordinators' exports, and the
//! stored `Idempotency-Key` answers that named them are gone — on SQLite and PostgreSQL.

use std::time::Duration;

use clairon_tests::{spawn_app_with, Engine, Options, TestApp};
use reqwest::Method;
use rstest::rstest;
use serde_json::{json, Value};

use super::database::number;

const PATIENCE: Duration = Duration::from_secs(20);

fn assigned() -> Value {
    json!({
        "event_id": "evt-000001", "planning_id": "pl-00001", "event": "assigned",
        "occurred_at": "2027-02-09T01:29:00Z",
        "planning": {
            "title": "Représentation — Carmen",
            "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O, Montréal" },
            "starts_at": "2099-03-16T20:15:00-04:00", "ends_at": "2099-03-16T22:15:00-04:00",
            "timezone": "America/Montreal",
            "contact": { "name": "Samir Nguyễn", "phone": "+15145550030" }
        },
        "artist_ids": ["artist-0001", "artist-0002"],
        "coordinator_ids": ["coordinator-0001"]
    })
}

/// Zoé (artist-0001, to be erased), Liam (artist-0002, English) and Céline (coordinator, French),
/// told of one assignment under an `Idempotency-Key`, and one notification to Zoé and Céline
/// under another. Returns the event's answer.
async fn arrange(app: &TestApp) -> Value {
    for (id, name, locale) in [
        ("artist-0001", "Zoé Tremblay", "fr"),
        ("artist-0002", "Liam O'Brien", "en"),
        ("coordinator-0001", "Céline Lévesque", "fr"),
    ] {
        let put = app
            .put(
                &format!("/api/v1/recipients/{id}"),
                &json!({ "name": name, "locale": locale, "timezone": "America/Montreal" }),
            )
            .await;
        assert_eq!(put.status, 201, "{}", put.json);
    }
    let event = app
        .post_idempotent(
            "/api/v1/notifications/plannings/pl-00001/events",
            "event-key",
            &assigned(),
        )
        .await;
    assert_eq!(event.status, 202, "{}", event.json);
    let custom = app
        .post_idempotent(
            "/api/v1/notifications",
            "custom-key",
            &json!({ "recipient_ids": ["artist-0001", "coordinator-0001"],
                     "title": "Répétition", "body": "Salle B, 14 h" }),
        )
        .await;
    assert_eq!(custom.status, 202, "{}", custom.json);
    let sent = event.json["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .chain(custom.json["notifications"].as_array().unwrap())
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    for id in sent {
        app.wait_until_settled(&id, PATIENCE).await;
    }
    event.json
}

fn notification_of(event: &Value, recipient: &str) -> String {
    event["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["recipient_id"] == recipient)
        .and_then(|n| n["id"].as_str())
        .expect("a notification for the recipient")
        .to_owned()
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn an_erased_artist_is_named_nowhere_else_not_in_summaries_exports_or_stored_answers(
    #[case] engine: Engine,
) {
    let Some(app) = spawn_app_with(Options {
        engine,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let event = arrange(&app).await;
    let summary = notification_of(&event, "coordinator-0001");
    let liams = notification_of(&event, "artist-0002");
    let before = app.get(&format!("/api/v1/notifications/{summary}")).await;
    assert!(
        before.json["body"]
            .as_str()
            .unwrap()
            .contains("Zoé Tremblay"),
        "the summary named her: {}",
        before.json
    );

    let erased = app
        .call(Method::DELETE, "/api/v1/recipients/artist-0001", None)
        .await;

    assert_eq!(erased.status, 204, "{}", erased.json);
    let named = |text: &str| text.contains("Zoé Tremblay") || text.contains("artist-0001");
    let summary_now = app.get(&format!("/api/v1/notifications/{summary}")).await;
    assert!(
        !named(&summary_now.json.to_string()),
        "the coordinator's summary names her no more: {}",
        summary_now.json
    );
    let body = summary_now.json["body"].as_str().unwrap();
    assert!(
        body.contains("[personne effacée]") && body.contains("Liam O'Brien"),
        "a neutral label in the coordinator's language stands for her, the others stay: {body}"
    );
    let liams_now = app.get(&format!("/api/v1/notifications/{liams}")).await;
    assert!(
        !named(&liams_now.json.to_string()),
        "nor the other artist's notice: {}",
        liams_now.json
    );
    assert!(
        liams_now.json["metadata"]
            .to_string()
            .contains("[erased person]"),
        "in his language: {}",
        liams_now.json["metadata"]
    );
    let export = app.get("/api/v1/recipients/coordinator-0001/export").await;
    assert_eq!(export.status, 200, "{}", export.json);
    assert!(
        !named(&export.json.to_string()),
        "nor the coordinator's export: {}",
        export.json
    );
    let url = &app.database_url;
    assert_eq!(
        number(
            url,
            "SELECT COUNT(*) AS n FROM notifications WHERE title LIKE '%Zoé Tremblay%' \
             OR body LIKE '%Zoé Tremblay%' OR metadata LIKE '%Zoé Tremblay%' \
             OR metadata LIKE '%artist-0001%'"
        ),
        0,
        "no notification of anyone (Liam's reminder included) names her"
    );
    assert_eq!(
        number(url, "SELECT COUNT(*) AS n FROM idempotency_keys"),
        0,
        "both stored answers named her: both are dropped"
    );
    assert_eq!(
        number(
            url,
            "SELECT COUNT(*) AS n FROM erasures WHERE redacted = 3 AND idempotency_records = 2"
        ),
        1,
        "the audit row counts the summary, Liam's notice and his reminder, and both records"
    );

    let retried = app
        .post_idempotent(
            "/api/v1/notifications/plannings/pl-00001/events",
            "event-key",
            &assigned(),
        )
        .await;
    assert!(
        !retried.replayed && retried.status != 202,
        "the stored answer is not replayed any more: {} {}",
        retried.status,
        retried.json
    );
}
