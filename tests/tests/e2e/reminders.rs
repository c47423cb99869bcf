//! J-1 reminders scheduled by Clairon itself: made when an artist is assigned, sent at once when
//! their time has passed but the planning has not started, never once it has started, never
//! twice, and cancelled with the planning.
//!
//! Deterministic without a fake clock: plannings are placed relative to the real now so that
//! the reminder is due at once, or days away.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use clairon_tests::{spawn_app, TestApp};
use serde_json::{json, Value};

async fn register(app: &TestApp) {
    for (id, email, locale) in [
        ("artist-1", "zoe@example.org", "fr"),
        ("coord-1", "liam@example.org", "en"),
    ] {
        let answer = app
            .put(
                &format!("/api/v1/recipients/{id}"),
                &json!({ "name": id, "email": email, "locale": locale, "timezone": "America/Montreal" }),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn event(event_id: &str, kind: &str, starts_at: DateTime<Utc>) -> Value {
    json!({
        "event_id": event_id, "planning_id": "pl-1", "event": kind,
        "occurred_at": rfc3339(Utc::now()),
        "planning": {
            "title": "Carmen",
            "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O, Montréal" },
            "starts_at": rfc3339(starts_at), "ends_at": rfc3339(starts_at + TimeDelta::hours(2)),
            "timezone": "America/Montreal",
            "contact": { "name": "Samir", "phone": "+15145550030", "email": "samir@example.org" }
        },
        "artist_ids": ["artist-1"], "coordinator_ids": ["coord-1"]
    })
}

async fn inbox_types(app: &TestApp, id: &str) -> Vec<String> {
    let answer = app
        .get(&format!("/api/v1/recipients/{id}/notifications?limit=100"))
        .await;
    let mut types: Vec<String> = answer.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["event_type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    types
}

fn reminder_emails(app: &TestApp) -> usize {
    app.smtp
        .as_ref()
        .unwrap()
        .messages()
        .iter()
        .filter(|m| {
            m.subject
                .as_deref()
                .is_some_and(|s| s.starts_with("Rappel pour demain"))
        })
        .count()
}

#[tokio::test]
async fn an_assignment_whose_reminder_time_has_passed_is_reminded_at_once_and_only_once() {
    let app = spawn_app().await;
    register(&app).await;
    // Starts in 3 h: "the day before at 18:00" is behind us, the planning is ahead.
    let starts_at = Utc::now() + TimeDelta::hours(3);

    let first = app.post_event(&event("evt-1", "assigned", starts_at)).await;
    // The host sends the assignment again under another event id.
    let again = app.post_event(&event("evt-2", "assigned", starts_at)).await;
    assert_eq!(first.status, 202, "{}", first.json);
    assert_eq!(again.status, 202, "{}", again.json);
    assert_eq!(
        first.json["notifications"].as_array().unwrap().len(),
        2,
        "the answer lists the people told, not the reminder"
    );

    // The artist's reminder is in the inbox and sent by email, once.
    let smtp = app.smtp.as_ref().unwrap();
    // artist: 2 assignments + 1 reminder; coordinator: 2 summaries.
    smtp.wait_for_messages(5, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reminder_emails(&app), 1, "one reminder, never doubled");
    assert_eq!(smtp.messages().len(), 5);
    assert_eq!(
        inbox_types(&app, "artist-1").await,
        vec![
            "planning.assigned",
            "planning.assigned",
            "planning.reminder"
        ]
    );
    assert_eq!(
        inbox_types(&app, "coord-1").await,
        vec!["planning.assigned", "planning.assigned"],
        "coordinators get no reminder"
    );
}

#[tokio::test]
async fn a_planning_that_has_started_gets_no_reminder() {
    let app = spawn_app().await;
    register(&app).await;
    let started = Utc::now() - TimeDelta::minutes(30);
    let answer = app.post_event(&event("evt-1", "assigned", started)).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    app.smtp
        .as_ref()
        .unwrap()
        .wait_for_messages(2, Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        inbox_types(&app, "artist-1").await,
        vec!["planning.assigned"]
    );
    assert_eq!(reminder_emails(&app), 0);
}

#[tokio::test]
async fn a_future_reminder_stays_hidden_and_a_cancellation_cancels_it() {
    let app = spawn_app().await;
    register(&app).await;
    let starts_at = Utc::now() + TimeDelta::days(10);
    let assigned = app.post_event(&event("evt-1", "assigned", starts_at)).await;
    assert_eq!(assigned.status, 202, "{}", assigned.json);
    assert_eq!(
        inbox_types(&app, "artist-1").await,
        vec!["planning.assigned"],
        "the reminder waits, out of the inbox"
    );
    let cancelled = app
        .post_event(&event("evt-2", "cancelled", starts_at))
        .await;
    assert_eq!(cancelled.status, 202, "{}", cancelled.json);

    let deadline = Instant::now() + Duration::from_secs(15);
    while app.smtp.as_ref().unwrap().messages().len() < 4 {
        assert!(Instant::now() < deadline, "the four notices are emailed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        inbox_types(&app, "artist-1").await,
        vec!["planning.assigned", "planning.cancelled"]
    );
    assert_eq!(reminder_emails(&app), 0);
}
