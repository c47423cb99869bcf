//! The dead-letter alert (issue 13): eleven emails go `dead` (the SMTP server defers each, one
//! try allowed), the `dead_letter_alert` job raises `deliveries.dead_letters` once, the
//! `admins` topic's member finds it in the inbox (the built-in rule), and a second check within
//! the hour raises none. On SQLite and PostgreSQL (the once-an-hour record is a row both
//! engines write by compare-and-set).
//!
//! The job's own schedule is pushed a year away, so only the runs by hand check.

use std::time::{Duration, Instant};

use clairon_tests::{spawn_app_configured, Engine, Options, TestApp};
use rstest::rstest;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn dead_deliveries(app: &TestApp) -> Vec<Value> {
    let answer = app.get("/api/v1/deliveries?status=dead&limit=100").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["items"].as_array().cloned().unwrap_or_default()
}

async fn check(app: &TestApp) -> Value {
    let run = app
        .post("/api/v1/admin/jobs/dead_letter_alert/run", &json!({}))
        .await;
    assert_eq!(run.status, 200, "{}", run.json);
    assert_eq!(run.json["status"], "success", "{}", run.json);
    run.json
}

async fn notify(app: &TestApp, n: usize) {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({"recipient_ids": ["artist-1"], "title": format!("Répétition {n}"),
                    "body": "Salle B, 19 h.", "channels": ["email"]}),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
}

async fn admin_inbox(app: &TestApp) -> Vec<Value> {
    let inbox = app
        .get("/api/v1/recipients/admin-1/notifications?limit=20")
        .await;
    assert_eq!(inbox.status, 200, "{}", inbox.json);
    inbox.json["items"].as_array().cloned().unwrap_or_default()
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn eleven_dead_deliveries_within_the_hour_alert_the_admins_once_and_a_second_check_raises_none(
    #[case] engine: Engine,
) {
    let Some(app) = spawn_app_configured(
        Options {
            engine,
            smtp_script: &[451; 11],
            retry_max_attempts: 1,
            telegram: false,
            ..Options::default()
        },
        |s| s.dead_letter_alert_interval_secs = 365 * 24 * 3600,
    )
    .await
    else {
        return;
    };
    let artist = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({"name": "Zoé Tremblay", "email": "zoe@example.org"}),
        )
        .await;
    assert_eq!(artist.status, 201, "{}", artist.json);
    // The admin has the inbox only: the alert is not an email to the failing SMTP server.
    let admin = app
        .put(
            "/api/v1/recipients/admin-1",
            &json!({"name": "Régie", "locale": "fr"}),
        )
        .await;
    assert_eq!(admin.status, 201, "{}", admin.json);
    let topic = app
        .put(
            "/api/v1/topics/admins",
            &json!({"name": "Admins", "recipient_ids": ["admin-1"]}),
        )
        .await;
    assert_eq!(topic.status, 201, "{}", topic.json);

    // Ten dead deliveries are not more than the threshold: nothing is raised.
    for n in 0..10 {
        notify(&app, n).await;
    }
    let deadline = Instant::now() + WAIT;
    while dead_deliveries(&app).await.len() < 10 {
        assert!(Instant::now() < deadline, "ten emails never went dead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let quiet = check(&app).await;
    assert_eq!(quiet["stats"]["dead"], 10, "{quiet}");
    assert_eq!(quiet["stats"]["raised"], false, "{quiet}");
    assert!(admin_inbox(&app).await.is_empty());

    // The eleventh: over the threshold.
    notify(&app, 10).await;
    let deadline = Instant::now() + WAIT;
    while dead_deliveries(&app).await.len() < 11 {
        assert!(
            Instant::now() < deadline,
            "the eleventh email never went dead"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let first = check(&app).await;
    let second = check(&app).await;

    assert_eq!(first["stats"]["dead"], 11, "{first}");
    assert_eq!(first["stats"]["raised"], true, "{first}");
    assert_eq!(first["stats"]["notifications"], 1, "{first}");
    assert_eq!(second["stats"]["raised"], false, "{second}");
    assert_eq!(second["stats"]["throttled"], true, "{second}");
    let inbox = admin_inbox(&app).await;
    assert_eq!(inbox.len(), 1, "one alert: {inbox:?}");
    let alert = &inbox[0];
    assert_eq!(alert["event_type"], "deliveries.dead_letters", "{alert}");
    assert_eq!(alert["priority"], "high", "the built-in rule: {alert}");
    assert_eq!(
        alert["title"], "11 envois abandonnés en une heure",
        "{alert}"
    );
    let data = &alert["metadata"]["data"];
    assert_eq!(data["count"], 11, "{alert}");
    assert_eq!(data["threshold"], 10, "{alert}");
    assert_eq!(data["window_minutes"], 60, "{alert}");
    let samples = data["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 5, "{alert}");
    let dead_ids: Vec<Value> = dead_deliveries(&app)
        .await
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    assert!(
        samples.iter().all(|s| dead_ids.contains(&s["delivery_id"])),
        "samples are dead deliveries: {alert}"
    );
    assert_eq!(samples[0]["channel"], "email");
    assert!(
        samples[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("451"),
        "{alert}"
    );
}
