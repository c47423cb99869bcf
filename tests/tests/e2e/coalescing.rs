//! Coalesced planning changes (issue 13): several `modified` events of one planning within
//! `CLAIRON_COALESCE_SECS` make one email per recipient with the net change, while the inbox
//! records each; `0` switches it off. Through the real SMTP server, on SQLite and PostgreSQL.

use std::time::Duration;

use clairon_tests::{spawn_app_configured, Engine, Options, TestApp};
use rstest::rstest;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// A window long enough for three requests on a loaded machine; the test waits for states,
/// never for the window itself.
const WINDOW_SECS: u64 = 4;

async fn spawn(engine: Engine, window: u64) -> Option<TestApp> {
    spawn_app_configured(
        Options {
            engine,
            ..Options::default()
        },
        |s| s.coalesce_secs = window,
    )
    .await
}

async fn register(app: &TestApp) {
    // No Telegram chat: the planning chain (telegram, sms, email) opens on email.
    let answer = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé Tremblay", "email": "artist-1@example.org", "locale": "fr" }),
        )
        .await;
    assert!(
        answer.status == 201 || answer.status == 200,
        "{}",
        answer.json
    );
}

const OUTREMONT: (&str, &str) = ("Théâtre Outremont", "1248 Av. Bernard O");
const BOURGIE: (&str, &str) = ("Salle Bourgie", "1339 Rue Sherbrooke O");

/// A planning event of `p-1` for `artist-1`, the planning titled `title` at `venue` after it.
fn event(id: &str, kind: &str, title: &str, venue: (&str, &str), changes: Value) -> Value {
    let mut event = json!({
        "event_id": id, "planning_id": "p-1", "event": kind,
        "occurred_at": "2027-02-09T01:29:00Z",
        "planning": {
            "title": title,
            "location": { "name": venue.0, "address": venue.1 },
            "starts_at": "2099-03-16T20:15:00-04:00", "ends_at": "2099-03-16T22:15:00-04:00",
            "timezone": "America/Montreal", "contact": { "name": "Samir Nguyễn" }
        },
        "artist_ids": ["artist-1"], "coordinator_ids": []
    });
    if kind == "modified" {
        event["changes"] = changes;
    }
    event
}

fn location(venue: (&str, &str)) -> Value {
    json!({ "name": venue.0, "address": venue.1 })
}

/// Three modifications: the title twice, the venue away and back.
fn three_modifications() -> [Value; 3] {
    [
        event(
            "ev-1",
            "modified",
            "Carmen (reprise)",
            OUTREMONT,
            json!({ "title": { "from": "Carmen", "to": "Carmen (reprise)" } }),
        ),
        event(
            "ev-2",
            "modified",
            "Carmen (reprise)",
            BOURGIE,
            json!({ "location": { "from": location(OUTREMONT), "to": location(BOURGIE) } }),
        ),
        event(
            "ev-3",
            "modified",
            "Carmen (version concert)",
            OUTREMONT,
            json!({
                "title": { "from": "Carmen (reprise)", "to": "Carmen (version concert)" },
                "location": { "from": location(BOURGIE), "to": location(OUTREMONT) }
            }),
        ),
    ]
}

/// Posts `event`; returns the id of its one notification.
async fn post(app: &TestApp, event: &Value) -> String {
    let answer = app.post_event(event).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn email_of(details: &Value) -> &Value {
    details["deliveries"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["channel"] == "email"))
        .unwrap_or_else(|| panic!("an email delivery: {details}"))
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn coalescing_of_three_modifications_into_one_message(#[case] engine: Engine) {
    // Arrange
    let Some(app) = spawn(engine, WINDOW_SECS).await else {
        return;
    };
    register(&app).await;

    // Act: three modifications of one planning within the window.
    let mut ids = Vec::new();
    for modification in three_modifications() {
        ids.push(post(&app, &modification).await);
    }
    app.wait_for_delivery(&ids[2], "email", "sent", WAIT).await;

    // Assert: the inbox recorded each of them.
    let inbox = app
        .get("/api/v1/recipients/artist-1/notifications?limit=10")
        .await;
    assert_eq!(
        inbox.json["items"].as_array().map(Vec::len),
        Some(3),
        "{}",
        inbox.json
    );
    // One email, with the net change: first from → last to, the venue (back) left out.
    let sink = app.smtp.as_ref().unwrap();
    let sent = sink.wait_for_messages(1, WAIT).await;
    let text = sent[0].part("text/plain").expect("a text part");
    assert!(
        text.contains("Carmen → Carmen (version concert)"),
        "the net title change: {text}"
    );
    assert!(
        !text.contains("Carmen (reprise)") && !text.contains("Salle Bourgie"),
        "neither the intermediate title nor the venue changed back: {text}"
    );
    // The earlier emails were skipped, each naming the notice that took it in.
    for (earlier, later) in [(0, 1), (1, 2)] {
        let details = app.wait_until_settled(&ids[earlier], WAIT).await;
        let email = email_of(&details);
        assert_eq!(email["status"], "skipped", "{details}");
        assert_eq!(
            email["reason"],
            json!(format!("coalesced: {}", ids[later])),
            "{details}"
        );
        let in_app = details["deliveries"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["channel"] == "in_app"))
            .unwrap();
        assert_eq!(in_app["status"], "sent", "the inbox got it at once");
    }
    app.wait_until_settled(&ids[2], WAIT).await;
    assert_eq!(sink.messages().len(), 1, "one email in all");
}

#[tokio::test]
async fn modifications_that_undo_each_other_send_nothing_and_say_why() {
    // Arrange
    let app = spawn(Engine::Sqlite, WINDOW_SECS).await.unwrap();
    register(&app).await;

    // Act: the venue away and back.
    let away = post(
        &app,
        &event(
            "ev-1",
            "modified",
            "Carmen",
            BOURGIE,
            json!({ "location": { "from": location(OUTREMONT), "to": location(BOURGIE) } }),
        ),
    )
    .await;
    let answer = app
        .post_event(&event(
            "ev-2",
            "modified",
            "Carmen",
            OUTREMONT,
            json!({ "location": { "from": location(BOURGIE), "to": location(OUTREMONT) } }),
        ))
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);

    // Assert: both emails skipped, the second for having nothing left to tell, as answered.
    let back = answer.json["notifications"][0]["id"].as_str().unwrap();
    let answered = answer.json["notifications"][0]["skipped"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["channel"] == "email"))
        .cloned()
        .unwrap_or_else(|| panic!("the email answered skipped: {}", answer.json));
    assert_eq!(
        answered["reason"], "coalesced: no net change",
        "{}",
        answer.json
    );
    let details = app.wait_until_settled(back, WAIT).await;
    assert_eq!(
        email_of(&details)["reason"],
        "coalesced: no net change",
        "{details}"
    );
    let first = app.wait_until_settled(&away, WAIT).await;
    assert_eq!(
        email_of(&first)["reason"],
        json!(format!("coalesced: {back}")),
        "{first}"
    );
    assert!(app.smtp.as_ref().unwrap().messages().is_empty());
}

#[tokio::test]
async fn a_cancellation_makes_the_held_modifications_moot_and_goes_out_at_once() {
    // Arrange
    let app = spawn(Engine::Sqlite, WINDOW_SECS).await.unwrap();
    register(&app).await;
    let [modified, ..] = three_modifications();
    let held = post(&app, &modified).await;

    // Act
    let cancelled = post(
        &app,
        &event(
            "ev-9",
            "cancelled",
            "Carmen (reprise)",
            OUTREMONT,
            json!({}),
        ),
    )
    .await;

    // Assert
    app.wait_for_delivery(&cancelled, "email", "sent", WAIT)
        .await;
    let details = app.wait_until_settled(&held, WAIT).await;
    assert_eq!(
        email_of(&details)["reason"],
        json!(format!("coalesced: {cancelled}")),
        "{details}"
    );
    let sent = app.smtp.as_ref().unwrap().wait_for_messages(1, WAIT).await;
    assert_eq!(sent.len(), 1, "only the cancellation");
}

#[tokio::test]
async fn with_a_zero_window_each_modification_gets_its_email() {
    // Arrange
    let app = spawn(Engine::Sqlite, 0).await.unwrap();
    register(&app).await;

    // Act
    let mut ids = Vec::new();
    for modification in three_modifications() {
        ids.push(post(&app, &modification).await);
    }

    // Assert
    for id in &ids {
        app.wait_for_delivery(id, "email", "sent", WAIT).await;
    }
    let sent = app.smtp.as_ref().unwrap().wait_for_messages(3, WAIT).await;
    assert_eq!(sent.len(), 3);
}
