//! Bounded input: a request within the body limit cannot make the database (or the process)
//! grow by its size times its recipients — each notification's `metadata` is bounded
//! (`CLAIRON_MAX_METADATA_BYTES`), and so is a request's content across its notifications
//! (`CLAIRON_MAX_FANOUT_BYTES`) — on SQLite and PostgreSQL.

use clairon_tests::{spawn_app_with, Engine, Options, TestApp};
use rstest::rstest;
use serde_json::{json, Value};

use super::database::size_bytes;

const RECIPIENTS: usize = 1_000;
const TEN_MB: u64 = 10 * 1024 * 1024;

fn ids() -> Vec<String> {
    (1..=RECIPIENTS).map(|i| format!("artist-{i:04}")).collect()
}

/// An app on `engine` with [`RECIPIENTS`] registered recipients (in-app only: no address).
async fn app_with_recipients(engine: Engine) -> Option<TestApp> {
    let app = spawn_app_with(Options {
        engine,
        smtp: false,
        telegram: false,
        ..Options::default()
    })
    .await?;
    let recipients: Vec<Value> = ids()
        .iter()
        .map(|id| json!({ "id": id, "name": "Zoé Tremblay" }))
        .collect();
    let imported = app
        .post(
            "/api/v1/recipients/import",
            &json!({ "recipients": recipients }),
        )
        .await;
    assert_eq!(imported.status, 200, "{}", imported.json);
    Some(app)
}

fn field_errors(answer: &clairon_tests::Answer) -> Vec<String> {
    answer.json["errors"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn notifications_count(app: &TestApp) -> i64 {
    super::database::number(&app.database_url, "SELECT COUNT(*) AS n FROM notifications")
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn the_amplification_request_is_refused_naming_metadata_and_the_database_does_not_grow(
    #[case] engine: Engine,
) {
    let Some(app) = app_with_recipients(engine).await else {
        return;
    };
    // The request of the report: 205 KiB, nearly all of it metadata, for 1,000 recipients.
    let request = json!({
        "recipient_ids": ids(),
        "title": "Répétition",
        "body": "Salle B, 14 h",
        "metadata": { "blob": "x".repeat(192 * 1024) },
    });
    let body = serde_json::to_vec(&request).unwrap();
    assert!(
        (200 * 1024..256 * 1024).contains(&body.len()),
        "≈205 KiB, within the body limit: {} bytes",
        body.len()
    );
    let before = size_bytes(&app.database_url);

    let answer = app
        .post_raw("/api/v1/notifications", body, "application/json")
        .await;

    let after = size_bytes(&app.database_url);
    assert_eq!(answer.status, 422, "{}", answer.json);
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(field_errors(&answer), ["metadata"], "{}", answer.json);
    assert_eq!(notifications_count(&app).await, 0, "nothing was written");
    assert!(
        after.saturating_sub(before) < TEN_MB,
        "the database grew by {} bytes",
        after.saturating_sub(before)
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn metadata_within_its_bound_copied_to_a_thousand_recipients_is_refused_naming_them(
    #[case] engine: Engine,
) {
    let Some(app) = app_with_recipients(engine).await else {
        return;
    };
    // 15 KiB per notification is accepted alone, but 1,000 of them are 15 MiB: over 8 MiB.
    let request = json!({
        "recipient_ids": ids(),
        "title": "Répétition",
        "body": "Salle B, 14 h",
        "metadata": { "blob": "x".repeat(15 * 1024) },
    });
    let before = size_bytes(&app.database_url);

    let answer = app.post("/api/v1/notifications", &request).await;

    let after = size_bytes(&app.database_url);
    assert_eq!(answer.status, 422, "{}", answer.json);
    assert_eq!(field_errors(&answer), ["recipient_ids"], "{}", answer.json);
    assert_eq!(notifications_count(&app).await, 0, "nothing was written");
    assert!(
        after.saturating_sub(before) < TEN_MB,
        "the database grew by {} bytes",
        after.saturating_sub(before)
    );

    // The same metadata for a few recipients is fine.
    let few = json!({
        "recipient_ids": &ids()[..10],
        "title": "Répétition",
        "body": "Salle B, 14 h",
        "metadata": { "blob": "x".repeat(15 * 1024) },
    });
    let accepted = app.post("/api/v1/notifications", &few).await;
    assert_eq!(accepted.status, 202, "{}", accepted.json);
    assert_eq!(notifications_count(&app).await, 10, "ten notifications");
}
