//! An `Idempotency-Key` request whose answer cannot be stored after its work committed (the
//! database refuses, the process dies) is never carried out twice: the notifications' answer is
//! written in their own transaction, and an import run again writes the same — on SQLite and
//! PostgreSQL.

use clairon_tests::{spawn_app_with, Engine, Options, TestApp, API_KEY};
use rstest::rstest;
use serde_json::{json, Value};

use super::database::{batch, execute, number};

/// Makes every later attempt to store an answer fail once `witness` (a query) finds the
/// request's work committed: what a middleware writing the answer after the work meets when
/// the database refuses it, or when it dies first.
fn lose_answers_after(app: &TestApp, witness: &str) {
    batch(
        &app.database_url,
        &format!(
            "CREATE TRIGGER lose_answers BEFORE UPDATE ON idempotency_keys \
             WHEN NEW.state = 'completed' AND EXISTS ({witness}) \
             BEGIN SELECT RAISE(ABORT, 'injected: the answer is lost'); END;"
        ),
        &format!(
            "CREATE FUNCTION lose_answers() RETURNS trigger AS $$ BEGIN \
               IF NEW.state = 'completed' AND EXISTS ({witness}) THEN \
                 RAISE EXCEPTION 'injected: the answer is lost'; \
               END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER lose_answers BEFORE UPDATE ON idempotency_keys \
               FOR EACH ROW EXECUTE FUNCTION lose_answers();"
        ),
    );
}

/// Removes the failure and lets the 10 minutes pass after which a record still in progress
/// counts as abandoned by a dead request (and is taken over).
fn time_passes(app: &TestApp) {
    batch(
        &app.database_url,
        "DROP TRIGGER lose_answers;",
        "DROP TRIGGER lose_answers ON idempotency_keys; DROP FUNCTION lose_answers();",
    );
    execute(
        &app.database_url,
        "UPDATE idempotency_keys SET created_at = datetime(created_at, '-1 hour')",
        "UPDATE idempotency_keys SET created_at = created_at - INTERVAL '1 hour'",
    );
}

async fn post(app: &TestApp, path: &str, key: &str, body: &Value) -> clairon_tests::Answer {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .bearer_auth(API_KEY)
        .header("Idempotency-Key", key)
        .header("X-Request-Id", "lost-answer")
        .json(body)
        .send()
        .await
        .expect("the app answers");
    clairon_tests::Answer {
        status: response.status().as_u16(),
        content_type: String::new(),
        replayed: response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true"),
        json: response.json().await.unwrap_or(Value::Null),
    }
}

fn event() -> Value {
    json!({
        "event_id": "evt-lost-1", "planning_id": "pl-1", "event": "assigned",
        "occurred_at": "2027-02-09T01:29:00Z",
        "planning": {
            "title": "Carmen",
            "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O" },
            "starts_at": "2099-03-16T20:15:00-04:00", "ends_at": "2099-03-16T22:15:00-04:00",
            "timezone": "America/Montreal",
            "contact": { "name": "Samir Nguyễn" }
        },
        "artist_ids": ["artist-1"], "coordinator_ids": ["coordinator-1"]
    })
}

#[rstest]
#[case::notifications_sqlite(Engine::Sqlite, "/api/v1/notifications")]
#[case::notifications_postgres(Engine::Postgres, "/api/v1/notifications")]
#[case::planning_event_sqlite(Engine::Sqlite, "/api/v1/notifications/plannings/pl-1/events")]
#[case::planning_event_postgres(Engine::Postgres, "/api/v1/notifications/plannings/pl-1/events")]
#[tokio::test]
async fn notifications_whose_answer_could_not_be_stored_afterwards_are_not_written_twice(
    #[case] engine: Engine,
    #[case] path: &str,
) {
    let Some(app) = spawn_app_with(Options {
        engine,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    for id in ["artist-1", "coordinator-1"] {
        let put = app
            .put(
                &format!("/api/v1/recipients/{id}"),
                &json!({ "name": "Zoé" }),
            )
            .await;
        assert_eq!(put.status, 201, "{}", put.json);
    }
    let body = if path.ends_with("/events") {
        event()
    } else {
        json!({ "recipient_ids": ["artist-1"], "title": "Répétition", "body": "Salle B" })
    };
    lose_answers_after(
        &app,
        "SELECT 1 FROM notifications WHERE request_id = 'lost-answer'",
    );
    let first = post(&app, path, "k-lost", &body).await;
    assert_eq!(first.status, 202, "{}", first.json);
    let written = number(&app.database_url, "SELECT COUNT(*) AS n FROM notifications");
    assert!(written > 0, "the first request did its work");
    time_passes(&app);

    let retried = post(&app, path, "k-lost", &body).await;

    assert_eq!(retried.status, 202, "{}", retried.json);
    assert!(
        retried.replayed,
        "the retry is a replay of the first answer"
    );
    assert_eq!(retried.json, first.json, "with its body");
    assert_eq!(
        number(&app.database_url, "SELECT COUNT(*) AS n FROM notifications"),
        written,
        "nothing was written twice"
    );
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn an_import_whose_answer_could_not_be_stored_runs_again_without_duplicating_anyone(
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
    let body = json!({ "recipients": [{ "id": "imported-1", "name": "Zoé Tremblay" }] });
    lose_answers_after(&app, "SELECT 1 FROM recipients WHERE id = 'imported-1'");
    let first = post(&app, "/api/v1/recipients/import", "k-import", &body).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["created"], 1, "{}", first.json);
    time_passes(&app);

    let retried = post(&app, "/api/v1/recipients/import", "k-import", &body).await;

    assert_eq!(retried.status, 200, "{}", retried.json);
    assert_eq!(
        retried.json,
        json!({ "created": 0, "updated": 1 }),
        "run again, it writes the same recipient over itself"
    );
    assert_eq!(
        number(
            &app.database_url,
            "SELECT COUNT(*) AS n FROM recipients WHERE id = 'imported-1'"
        ),
        1,
        "one recipient, never two"
    );
}
