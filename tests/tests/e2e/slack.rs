//! Slack end to end (issue 12): a recipient's write-only `slack_webhook_url`, a planning event
//! and a notification with a link posted as Block Kit to the Slack stand-in, a `404
//! no_service` marking the recipient's Slack unreachable until the URL changes, and the
//! allowed hosts at `PUT /recipients/{id}`.

use std::time::Duration;

use clairon_adapters::testing::{SlackAnswer, SlackStub};
use clairon_tests::{dataset, spawn_app_configured, Options, TestApp};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn app() -> TestApp {
    spawn_app_configured(
        Options {
            telegram: false,
            slack: true,
            ..Options::default()
        },
        |settings| {
            settings.channels = "in_app,email,slack".into();
        },
    )
    .await
    .expect("SQLite is always available")
}

fn stub(app: &TestApp) -> &SlackStub {
    app.slack.as_ref().expect("the Slack stand-in runs")
}

async fn slack_up(app: &TestApp, id: &str, url: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "locale": "fr", "timezone": "Europe/Paris", "slack_webhook_url": url }),
        )
        .await;
    assert!(matches!(answer.status, 200 | 201), "{}", answer.json);
}

async fn notify(app: &TestApp, recipient: &str) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [recipient], "title": "Répétition <générale> & co", "body": "Salle 2 > salle 1",
                     "action_url": "https://planning.example.org/plannings/42?tab=artists&view=full",
                     "action_label": "Voir le planning", "channels": ["slack"] }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn fields(answer: &clairon_tests::Answer) -> Vec<String> {
    answer.json["errors"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_recipient_with_a_slack_url_gets_the_planning_event_as_blocks_on_slack() {
    let app = app().await;
    let data = dataset();
    assert_eq!(app.import_dataset_recipients(&data).await.status, 200);
    let event = data["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "assigned")
        .unwrap()
        .clone();
    let artist = event["artist_ids"][0].as_str().unwrap().to_owned();
    let planning_title = event["planning"]["title"].as_str().unwrap().to_owned();
    slack_up(&app, &artist, &stub(&app).webhook_url("artist")).await;

    let answer = app.post_event(&event).await;
    assert!(matches!(answer.status, 200 | 202), "{}", answer.json);

    let received = stub(&app).wait_for_accepted(1, WAIT).await;
    let message = &received[0];
    assert_eq!(message.path, "/services/T0CLAIRON/B0CLAIRON/artist");
    let header = message.header().expect("a header block");
    let section = message.section().expect("a section block");
    assert!(!header.is_empty() && !message.text().is_empty());
    assert!(
        section.contains(&planning_title) && section.contains("Salle Pleyel"),
        "the planning's title and venue: {section}"
    );
    assert!(
        message.context().unwrap().contains("planning.assigned"),
        "{:?}",
        message.context()
    );
    assert!(
        stub(&app).rejected().is_empty(),
        "{:?}",
        stub(&app).rejected()
    );

    // A notification with a link: the header is its title, plain; the button opens the link.
    let id = notify(&app, &artist).await;
    let received = stub(&app).wait_for_accepted(2, WAIT).await;
    let message = &received[1];
    assert_eq!(message.header(), Some("Répétition <générale> & co"));
    assert!(
        message
            .text()
            .starts_with("Répétition &lt;générale&gt; &amp; co"),
        "the fallback is escaped: {}",
        message.text()
    );
    assert_eq!(message.section(), Some("Salle 2 &gt; salle 1"));
    assert_eq!(
        message.button(),
        Some((
            "Voir le planning".to_owned(),
            "https://planning.example.org/plannings/42?tab=artists&view=full".to_owned()
        ))
    );
    app.wait_for_delivery(&id, "slack", "sent", WAIT).await;
}

#[tokio::test]
async fn a_404_no_service_marks_slack_unreachable_and_the_next_delivery_is_skipped_until_the_url_changes(
) {
    let app = app().await;
    let url = stub(&app).webhook_url("revoked");
    slack_up(&app, "artist-1", &url).await;
    stub(&app).answer_next(SlackAnswer::NoService);

    let first = notify(&app, "artist-1").await;
    let failed = app.wait_for_delivery(&first, "slack", "failed", WAIT).await;
    assert!(failed.to_string().contains("no_service"), "{failed}");
    let recipient = app.get("/api/v1/recipients/artist-1").await;
    assert_eq!(recipient.json["slack"]["configured"], true);
    assert!(
        recipient.json["slack"]["unreachable"]
            .as_str()
            .is_some_and(|r| r.contains("no_service")),
        "{}",
        recipient.json
    );

    let second = notify(&app, "artist-1").await;
    let skipped = app
        .wait_for_delivery(&second, "slack", "skipped", WAIT)
        .await;
    assert!(
        skipped.to_string().contains("until its URL changes"),
        "{skipped}"
    );
    assert_eq!(stub(&app).received().len(), 1, "nothing more was posted");

    // The same URL again keeps the mark; a new URL clears it.
    slack_up(&app, "artist-1", &url).await;
    let still = app.get("/api/v1/recipients/artist-1").await;
    assert!(
        still.json["slack"]["unreachable"].is_string(),
        "{}",
        still.json
    );
    slack_up(&app, "artist-1", &stub(&app).webhook_url("new")).await;
    let third = notify(&app, "artist-1").await;
    app.wait_for_delivery(&third, "slack", "sent", WAIT).await;
    let received = stub(&app).received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].path, "/services/T0CLAIRON/B0CLAIRON/new");
}

#[tokio::test]
async fn the_slack_url_is_write_only_and_a_host_not_allowed_is_a_422_naming_it() {
    let app = app().await;
    for refused in [
        "https://example.org/services/T1/B1/x",
        "http://hooks.slack.com/services/T1/B1/x",
        "https://hooks.slack.com.evil.example/services/T1/B1/x",
        "not a url",
    ] {
        let answer = app
            .put(
                "/api/v1/recipients/artist-1",
                &json!({ "name": "Zoé", "slack_webhook_url": refused }),
            )
            .await;
        assert_eq!(answer.status, 422, "{refused}: {}", answer.json);
        assert_eq!(fields(&answer), vec!["slack_webhook_url"], "{refused}");
        assert_eq!(answer.content_type, "application/problem+json", "{refused}");
    }
    let import = app
        .post(
            "/api/v1/recipients/import",
            &json!({ "recipients": [
                { "id": "a-1", "name": "A" },
                { "id": "a-2", "name": "B", "slack_webhook_url": "https://example.org/services/T1/B1/x" }
            ] }),
        )
        .await;
    assert_eq!(import.status, 422, "{}", import.json);
    assert_eq!(fields(&import), vec!["recipients[1].slack_webhook_url"]);

    let secret = "https://hooks.slack.com/services/T0001/B0001/SeCrEtPaRt0123456789";
    let put = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé", "slack_webhook_url": secret }),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.json);
    let shown: Value = app.get("/api/v1/recipients/artist-1").await.json;
    assert_eq!(
        shown["slack"],
        json!({"configured": true, "unreachable": null})
    );
    let exported: Value = app.get("/api/v1/recipients/artist-1/export").await.json;
    assert_eq!(
        exported["recipient"]["slack_configured"], true,
        "{exported}"
    );
    for text in [
        shown.to_string(),
        put.json.to_string(),
        exported.to_string(),
    ] {
        assert!(
            !text.contains("SeCrEtPaRt"),
            "the URL is never answered: {text}"
        );
    }

    let cleared = app
        .put("/api/v1/recipients/artist-1", &json!({ "name": "Zoé" }))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.json);
    let shown: Value = app.get("/api/v1/recipients/artist-1").await.json;
    assert_eq!(shown["slack"]["configured"], false);
}
