//! The same behaviour on PostgreSQL. Outside CI these tests say they were skipped when no
//! PostgreSQL is reachable; in CI they fail instead.

use std::time::Duration;

use clairon_tests::{dataset, spawn_app_with, Engine, Options};

#[tokio::test]
async fn on_postgres_planning_events_become_delivered_notifications_and_replays_create_nothing() {
    let Some(app) = spawn_app_with(Options {
        engine: Engine::Postgres,
        ..Options::default()
    })
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
