//! The same behaviour on PostgreSQL. Outside CI these tests say they were skipped when no
//! PostgreSQL is reachable; in CI they fail instead.

use std::time::Duration;

use clairon_tests::{dataset, spawn_app_configured, spawn_app_with, Engine, Options};

#[tokio::test]
async fn on_postgres_planning_events_become_delivered_notifications_and_replays_create_nothing() {
    // Every channel at once: the urgent notices' fallback chain off.
    let Some(app) = spawn_app_configured(
        Options {
            engine: Engine::Postgres,
            ..Options::default()
        },
        |s| s.planning_fallback = String::new(),
    )
    .await
    else {
        return;
    };
    let data = dataset();
    assert_eq!(app.import_dataset_recipients(&data).await.status, 200);
    let events: Vec<_> = data["events"].as_array().unwrap().iter().take(20).collect();
    let mut ids = Vec::new();
    for event in &events {
        let answer = app.post_event(event).await;
        assert_eq!(answer.status, 202, "{}", answer.json);
        ids.extend(
            answer.json["notifications"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned()),
        );
    }
    let emails = app
        .smtp
        .as_ref()
        .unwrap()
        .wait_for_messages(ids.len(), Duration::from_secs(60))
        .await;
    assert_eq!(emails.len(), ids.len());
    for id in &ids {
        let details = app.wait_until_settled(id, Duration::from_secs(30)).await;
        assert!(
            details["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] == "sent"
                    || (d["channel"] == "telegram" && d["status"] == "skipped")),
            "{details}"
        );
    }
    let replay = app.post_event(events[0]).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.json["replayed"], true);
    assert_eq!(
        app.smtp.as_ref().unwrap().messages().len(),
        ids.len(),
        "a replay sends nothing"
    );
}

#[tokio::test]
async fn on_postgres_racing_events_of_one_planning_all_succeed_and_leave_one_event_s_reminders() {
    use chrono::{SecondsFormat, TimeDelta, Utc};
    use diesel::{Connection as _, RunQueryDsl as _};
    use serde_json::json;

    // Arrange: three artists, and a planning in ten days, so each assignment schedules the J-1
    // reminders of the artists it names and cancels those of the artists it leaves out.
    let Some(app) = spawn_app_with(Options {
        engine: Engine::Postgres,
        telegram: false,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let artists = ["artist-1", "artist-2", "artist-3"];
    for id in artists {
        let answer = app
            .put(
                &format!("/api/v1/recipients/{id}"),
                &json!({ "name": id, "email": format!("{id}@example.org") }),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
    }
    let starts = Utc::now() + TimeDelta::days(10);
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    // Event n assigns one artist, in turn: each event replaces the planning's cast.
    let event = |n: usize| {
        json!({
            "event_id": format!("evt-race-{n}"), "planning_id": "pl-race", "event": "assigned",
            "occurred_at": at(Utc::now()),
            "planning": {
                "title": "Carmen",
                "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O" },
                "starts_at": at(starts), "ends_at": at(starts + TimeDelta::hours(2)),
                "timezone": "America/Montreal",
                "contact": { "name": "Samir", "phone": "+15145550030" }
            },
            "artist_ids": [artists[n % artists.len()]],
        })
    };

    // Act: many events of the planning at once.
    let answers = futures_util::future::join_all((0..24).map(|n| {
        let body = event(n);
        let app = &app;
        async move { app.post_event(&body).await }
    }))
    .await;

    // Assert
    for answer in &answers {
        assert!(
            (200..300).contains(&answer.status),
            "every racing event succeeds: {} {}",
            answer.status,
            answer.json
        );
    }
    #[derive(diesel::QueryableByName)]
    struct Live {
        #[diesel(sql_type = diesel::sql_types::Text)]
        cancellation_key: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        live: i64,
    }
    let mut c = diesel::PgConnection::establish(&app.database_url).unwrap();
    let live: Vec<Live> = diesel::sql_query(
        "SELECT cancellation_key, count(*) AS live FROM notifications \
         WHERE cancellation_key IS NOT NULL AND cancelled_at IS NULL \
         GROUP BY cancellation_key",
    )
    .load(&mut c)
    .unwrap();
    let keys: Vec<(String, i64)> = live
        .into_iter()
        .map(|l| (l.cancellation_key, l.live))
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "the reminders of one event (the last one written), not a mix of several: {keys:?}"
    );
    assert_eq!(
        keys[0].1, 1,
        "exactly one live reminder for its artist: {keys:?}"
    );
}
