//! Signed webhooks end to end (issue 12): a recipient's `webhook_url` and write-only
//! `webhook_secret`, the planning event posted to a local receiver and verified by the Standard
//! Webhooks reference implementation, a `410 Gone` disabling the endpoint, and the SSRF guard at
//! `PUT /recipients/{id}`.

use std::time::Duration;

use clairon_adapters::testing::{verify_with_reference, WebhookStub};
use clairon_tests::{dataset, spawn_app_configured, Options, TestApp};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn app(allow_private: bool) -> TestApp {
    spawn_app_configured(
        Options {
            telegram: false,
            ..Options::default()
        },
        |settings| {
            settings.channels = "in_app,email,webhook".into();
            settings.webhook_allow_private = allow_private;
        },
    )
    .await
    .expect("SQLite is always available")
}

async fn hook_up(app: &TestApp, id: &str, url: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "locale": "fr", "webhook_url": url, "webhook_secret": SECRET }),
        )
        .await;
    assert!(matches!(answer.status, 200 | 201), "{}", answer.json);
}

async fn notify(app: &TestApp, recipient: &str) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [recipient], "title": "Répétition", "body": "Salle 2", "channels": ["webhook"] }),
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
async fn a_recipient_with_a_webhook_gets_the_planning_event_signed() {
    let app = app(true).await;
    let stub = WebhookStub::start().await;
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
    hook_up(
        &app,
        &artist,
        &format!("{}/hooks/clairon?t=tok", stub.base_url()),
    )
    .await;

    let answer = app.post_event(&event).await;
    assert!(matches!(answer.status, 200 | 202), "{}", answer.json);

    let received = stub.wait_for_accepted(1, WAIT).await;
    let hook = &received[0];
    assert_eq!(hook.path, "/hooks/clairon?t=tok");
    assert_eq!(hook.body["type"], "notification.created");
    assert_eq!(hook.body["data"]["recipient_id"], artist.as_str());
    assert_eq!(hook.body["data"]["event_type"], "planning.assigned");
    verify_with_reference(hook, SECRET).expect("the reference implementation verifies it");

    // The webhook-id is the delivery's id, and the notification's data is the API's view.
    let id = hook.body["data"]["id"].as_str().unwrap();
    let delivery = app.wait_for_delivery(id, "webhook", "sent", WAIT).await;
    assert_eq!(delivery["id"], hook.id.as_str(), "{delivery}");
    let shown = app.get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(shown.json["title"], hook.body["data"]["title"]);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_the_next_delivery_is_skipped_until_the_url_changes() {
    let app = app(true).await;
    let stub = WebhookStub::start().await;
    let url = format!("{}/hook", stub.base_url());
    hook_up(&app, "artist-1", &url).await;
    stub.answer_next(410);

    let first = notify(&app, "artist-1").await;
    let failed = app
        .wait_for_delivery(&first, "webhook", "failed", WAIT)
        .await;
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("410")
            || failed.to_string().contains("410"),
        "{failed}"
    );
    let recipient = app.get("/api/v1/recipients/artist-1").await;
    assert!(
        recipient.json["webhook"]["disabled"].is_string(),
        "{}",
        recipient.json
    );

    let second = notify(&app, "artist-1").await;
    let skipped = app
        .wait_for_delivery(&second, "webhook", "skipped", WAIT)
        .await;
    assert!(skipped.to_string().contains("disabled"), "{skipped}");
    assert_eq!(stub.received().len(), 1, "nothing more was posted");

    // A new URL enables the channel again.
    hook_up(&app, "artist-1", &format!("{url}/v2")).await;
    let third = notify(&app, "artist-1").await;
    app.wait_for_delivery(&third, "webhook", "sent", WAIT).await;
    assert_eq!(stub.received().len(), 2);
}

#[tokio::test]
async fn the_secret_is_write_only_required_with_the_url_and_private_targets_are_refused() {
    let app = app(false).await;
    let missing = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé", "webhook_url": "https://hooks.example.org/x" }),
        )
        .await;
    assert_eq!(missing.status, 422, "{}", missing.json);
    assert_eq!(fields(&missing), vec!["webhook_secret"]);

    let bad = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé", "webhook_url": "ftp://hooks.example.org/x", "webhook_secret": "nope" }),
        )
        .await;
    assert_eq!(bad.status, 422);
    let mut named = fields(&bad);
    named.sort();
    assert_eq!(named, vec!["webhook_secret", "webhook_url"]);
    assert!(
        !bad.json.to_string().contains("nope"),
        "the secret is never repeated"
    );

    for private in [
        "http://127.0.0.1:9/x",
        "http://10.0.0.8/x",
        "http://[::1]/x",
        "http://169.254.169.254/",
    ] {
        let refused = app
            .put(
                "/api/v1/recipients/artist-1",
                &json!({ "name": "Zoé", "webhook_url": private, "webhook_secret": SECRET }),
            )
            .await;
        assert_eq!(refused.status, 422, "{private}: {}", refused.json);
        assert_eq!(fields(&refused), vec!["webhook_url"], "{private}");
    }

    let put = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé", "webhook_url": "https://hooks.example.org/secret-path?token=abc", "webhook_secret": SECRET }),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.json);
    let shown: Value = app.get("/api/v1/recipients/artist-1").await.json;
    assert_eq!(
        shown["webhook"],
        json!({"url": "hooks.example.org", "configured": true, "disabled": null})
    );
    let text = shown.to_string();
    assert!(
        !text.contains("whsec_") && !text.contains("secret-path"),
        "{text}"
    );
    assert!(!put.json.to_string().contains("whsec_"), "{}", put.json);
}
