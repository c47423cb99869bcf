//! The default rate limits against the documented main job: replaying the planning dataset
//! over HTTP and reading every inbox, importing 5,000 recipients one `PUT` each from 8 clients,
//! and 60 recipients polling their unread count every second never see a `429`. That the same
//! defaults still stop a runaway client is shown on the buckets themselves
//! (`clairon_bootstrap::settings` tests), where a loop can outrun the refill on any machine.
//!
//! `spawn_app` switches the limits off for the other tests; these put the defaults back, and
//! assert counts of answers, never how fast they came.

use clairon_bootstrap::Settings;
use clairon_tests::{dataset, spawn_app_configured, Engine, Options, TestApp};
use futures_util::future::join_all;
use rstest::rstest;
use serde_json::{json, Value};

/// The rate limits of a fresh configuration, whatever `spawn_app` chose.
fn default_limits(settings: &mut Settings) {
    let defaults = Settings::default();
    settings.rate_limit_per_sec = defaults.rate_limit_per_sec;
    settings.rate_limit_burst = defaults.rate_limit_burst;
    settings.token_rate_limit_per_sec = defaults.token_rate_limit_per_sec;
    settings.token_rate_limit_burst = defaults.token_rate_limit_burst;
}

/// An app with the default limits, emails as `.eml` files and no bot: only HTTP is measured.
async fn app_with_default_limits(engine: Engine) -> Option<TestApp> {
    let options = Options {
        engine,
        smtp: false,
        telegram: false,
        ..Options::default()
    };
    spawn_app_configured(options, default_limits).await
}

fn too_many(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 429).count()
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn replaying_the_dataset_over_http_then_reading_every_inbox_is_never_throttled(
    #[case] engine: Engine,
) {
    // Arrange
    let Some(app) = app_with_default_limits(engine).await else {
        return;
    };
    let data = dataset();
    let recipients = data["recipients"].as_array().unwrap();
    let events = data["events"].as_array().unwrap();
    let mut statuses = Vec::new();

    // Act: as fast as one client goes, the admin key the service generated would be used.
    for recipient in recipients {
        let id = recipient["id"].as_str().unwrap();
        let answer = app
            .put(&format!("/api/v1/recipients/{id}"), recipient)
            .await;
        assert!(
            matches!(answer.status, 200 | 201 | 429),
            "PUT {id}: {}",
            answer.json
        );
        statuses.push(answer.status);
    }
    for event in events {
        let answer = app.post_event(event).await;
        assert!(
            matches!(answer.status, 202 | 429),
            "{}: {}",
            event["event_id"],
            answer.json
        );
        statuses.push(answer.status);
    }
    let mut read = 0;
    for recipient in recipients {
        let id = recipient["id"].as_str().unwrap();
        let answer = app
            .get(&format!("/api/v1/recipients/{id}/notifications"))
            .await;
        assert!(
            matches!(answer.status, 200 | 429),
            "inbox of {id}: {}",
            answer.json
        );
        statuses.push(answer.status);
        read += usize::from(answer.status == 200);
    }

    // Assert
    assert_eq!(
        statuses.len(),
        recipients.len() * 2 + events.len(),
        "every request was answered"
    );
    assert_eq!(
        too_many(&statuses),
        0,
        "no 429 in {} requests",
        statuses.len()
    );
    assert_eq!(
        read,
        recipients.len(),
        "all {} inboxes were read",
        recipients.len()
    );
}

#[tokio::test]
async fn importing_5000_recipients_one_put_each_from_8_clients_is_never_throttled() {
    // Arrange
    let app = app_with_default_limits(Engine::Sqlite)
        .await
        .expect("SQLite is always available");
    let put = |i: usize| {
        let app = &app;
        async move {
            app.put(
                &format!("/api/v1/recipients/member-{i:05}"),
                &json!({ "name": format!("Member {i}"), "email": format!("member{i}@example.org") }),
            )
            .await
            .status
        }
    };

    // Act: 8 clients, each putting every 8th recipient one after the other.
    let clients = (0..8).map(|client| {
        let put = &put;
        async move {
            let mut statuses = Vec::new();
            for i in (client..5_000).step_by(8) {
                statuses.push(put(i).await);
            }
            statuses
        }
    });
    let statuses: Vec<u16> = join_all(clients).await.into_iter().flatten().collect();

    // Assert
    assert_eq!(statuses.len(), 5_000, "every PUT was answered");
    assert_eq!(too_many(&statuses), 0, "no 429 among 5,000 PUTs");
    assert!(
        statuses.iter().all(|s| *s == 201),
        "every recipient was created: {:?}",
        statuses
            .iter()
            .filter(|s| **s != 201)
            .take(5)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn sixty_recipients_polling_their_unread_count_every_second_are_never_throttled() {
    // Arrange: the dataset's 60 recipients, each with a token, as 60 open inbox pages.
    let app = app_with_default_limits(Engine::Sqlite)
        .await
        .expect("SQLite is always available");
    let data = dataset();
    let imported = app.import_dataset_recipients(&data).await;
    assert_eq!(imported.status, 200, "{}", imported.json);
    let mut tokens = Vec::new();
    for recipient in data["recipients"].as_array().unwrap() {
        tokens.push(app.token_for(recipient["id"].as_str().unwrap()).await);
    }

    // Act: ten polls each, one a second, all 60 clients at once.
    let clients = tokens.iter().map(|token| {
        let app = &app;
        async move {
            let mut every_second = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut answers: Vec<(u16, Value)> = Vec::new();
            for _ in 0..10 {
                every_second.tick().await;
                let answer = app
                    .call_as(
                        token,
                        reqwest::Method::GET,
                        "/api/v1/me/notifications/unread-count",
                    )
                    .await;
                answers.push((answer.status, answer.json));
            }
            answers
        }
    });
    let answers: Vec<(u16, Value)> = join_all(clients).await.into_iter().flatten().collect();

    // Assert
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses.len(), 600, "every poll was answered");
    assert_eq!(too_many(&statuses), 0, "no 429 among 600 polls");
    assert!(
        answers
            .iter()
            .all(|(s, json)| *s == 200 && json["unread"].is_u64()),
        "every poll read a count: {:?}",
        answers.iter().find(|(s, _)| *s != 200)
    );
}
