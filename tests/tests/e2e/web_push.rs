//! Web Push end to end (issue 12): a browser subscribes through `/api/v1/me`, a notification
//! reaches it through the push-service stand-in (VAPID checked, payload decrypted), a `410`
//! deletes the subscription, and the opt-in routes refuse bad subscriptions naming each field.

use std::time::Duration;

use clairon_adapters::testing::PushStub;
use clairon_tests::{spawn_app_configured, Options, TestApp};
use serde_json::{json, Value};

async fn push_app() -> Option<TestApp> {
    spawn_app_configured(
        Options {
            telegram: false,
            ..Options::default()
        },
        |s| {
            s.channels = "in_app,email,web_push".into();
            s.push_allowed_hosts = "127.0.0.1".into();
        },
    )
    .await
}

/// Registers `id`, grants its `web_push` consent and returns a recipient token.
async fn subscriber(app: &TestApp, id: &str) -> String {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({"name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr"}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let consent = app
        .post(
            &format!("/api/v1/recipients/{id}/consents"),
            &json!({"channel": "web_push", "granted": true, "source": "inbox-button"}),
        )
        .await;
    assert_eq!(consent.status, 201, "{}", consent.json);
    app.token_for(id).await
}

async fn send_as(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the app answers");
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(Value::Null);
    (status, json)
}

async fn subscribe(app: &TestApp, token: &str, stub: &PushStub) {
    let body = json!({"endpoint": stub.endpoint(), "keys": {"p256dh": stub.p256dh(), "auth": stub.auth()}});
    let (status, json) = send_as(
        app,
        token,
        reqwest::Method::POST,
        "/api/v1/me/push-subscriptions",
        Some(&body),
    )
    .await;
    assert_eq!(status, 201, "{json}");
    assert_eq!(json["endpoint"], stub.endpoint());
}

async fn notify(app: &TestApp, id: &str, priority: &str) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({"recipient_ids": [id], "kind": "info", "title": "Répétition déplacée", "body": "La répétition de jeudi passe à 19 h.", "priority": priority, "action_url": "https://example.org/plannings/42", "channels": ["web_push"]}),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Posts a `high` notification to `id` with only the inbox in `channels` and the chain
/// `fallback`; returns its id.
async fn notify_in_app_with_fallback(app: &TestApp, id: &str, fallback: &[&str]) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({"recipient_ids": [id], "title": "Répétition annulée", "body": "Salle B",
                    "priority": "high", "channels": ["in_app"], "fallback": fallback}),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_subscribed_browser_gets_the_notification_encrypted_and_signed_and_a_410_deletes_its_subscription(
) {
    let Some(app) = push_app().await else { return };
    let stub = PushStub::start().await;
    let token = subscriber(&app, "artist-1").await;
    subscribe(&app, &token, &stub).await;

    let id = notify(&app, "artist-1", "high").await;
    let delivery = app
        .wait_for_delivery(&id, "web_push", "sent", Duration::from_secs(10))
        .await;
    assert_eq!(delivery["status"], "sent", "{delivery}");
    let received = stub.received();
    assert_eq!(received.len(), 1, "rejected: {:?}", stub.rejected());
    let push = &received[0];
    assert_eq!(
        push.payload,
        json!({"id": id, "title": "Répétition déplacée", "body": "La répétition de jeudi passe à 19 h.", "action_url": "https://example.org/plannings/42"})
    );
    assert_eq!(push.urgency.as_deref(), Some("high"));
    assert_eq!(push.ttl, 28 * 24 * 3600);
    assert_eq!(push.claims["sub"], "mailto:webmaster@127.0.0.1");

    // The push service says the subscription is gone: failed, and the subscription deleted,
    // so the next notification has no push subscription to go to.
    stub.fail_next(410, None);
    let gone = notify(&app, "artist-1", "low").await;
    let failed = app
        .wait_for_delivery(&gone, "web_push", "failed", Duration::from_secs(10))
        .await;
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("push subscription gone"),
        "{failed}"
    );
    let after = notify(&app, "artist-1", "normal").await;
    let skipped = app
        .wait_for_delivery(&after, "web_push", "skipped", Duration::from_secs(10))
        .await;
    assert_eq!(
        skipped["last_error"], "unreachable: no push subscription",
        "{skipped}"
    );
    assert_eq!(stub.received().len(), 1, "nothing more was pushed");
    stub.stop().await;
}

#[tokio::test]
async fn the_public_key_is_served_and_bad_subscriptions_are_refused_naming_each_field() {
    let Some(app) = push_app().await else { return };
    let token = subscriber(&app, "artist-1").await;
    let key = app
        .client
        .get(format!("{}/api/v1/push/vapid-public-key", app.address))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let public = key["public_key"].as_str().expect("a public key");
    assert_eq!(public.len(), 87, "base64url of 65 bytes: {public}");

    let body = json!({"endpoint": "http://push.example.org/x", "keys": {"p256dh": "AAAA", "auth": "short"}});
    let (status, json) = send_as(
        &app,
        &token,
        reqwest::Method::POST,
        "/api/v1/me/push-subscriptions",
        Some(&body),
    )
    .await;
    assert_eq!(status, 422, "{json}");
    let mut fields: Vec<&str> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["endpoint", "keys.auth", "keys.p256dh"], "{json}");

    let stub = PushStub::start().await;
    subscribe(&app, &token, &stub).await;
    let export = app.get("/api/v1/recipients/artist-1/export").await;
    assert_eq!(export.status, 200, "{}", export.json);
    assert_eq!(
        export.json["push_subscriptions"],
        json!([stub.endpoint()]),
        "the GDPR export lists the subscription"
    );
    let mut url =
        reqwest::Url::parse(&format!("{}/api/v1/me/push-subscriptions", app.address)).unwrap();
    url.query_pairs_mut()
        .append_pair("endpoint", &stub.endpoint());
    let path = format!("{}?{}", url.path(), url.query().unwrap_or(""));
    let (status, _) = send_as(&app, &token, reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let id = notify(&app, "artist-1", "normal").await;
    let skipped = app
        .wait_for_delivery(&id, "web_push", "skipped", Duration::from_secs(10))
        .await;
    assert_eq!(
        skipped["last_error"], "unreachable: no push subscription",
        "{skipped}"
    );
    stub.stop().await;
}

#[tokio::test]
async fn a_fallback_chain_reaches_the_newest_browser_when_email_refuses_for_good() {
    // Arrange: a subscribed recipient whose mail server refuses the address for good (550).
    let Some(app) = spawn_app_configured(
        Options {
            telegram: false,
            smtp_script: &[550],
            ..Options::default()
        },
        |s| {
            s.channels = "in_app,email,web_push".into();
            s.push_allowed_hosts = "127.0.0.1".into();
        },
    )
    .await
    else {
        return;
    };
    let stub = PushStub::start().await;
    let token = subscriber(&app, "artist-1").await;
    subscribe(&app, &token, &stub).await;

    // Act: email first, then this browser.
    let id = notify_in_app_with_fallback(&app, "artist-1", &["email", "web_push"]).await;
    let push = app
        .wait_for_delivery(&id, "web_push", "sent", Duration::from_secs(20))
        .await;

    // Assert: the push link stands in for the refused email, addressed to the subscription.
    let details = app.get(&format!("/api/v1/notifications/{id}")).await.json;
    let email = details["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email")
        .unwrap_or_else(|| panic!("an email delivery: {details}"));
    assert_eq!(email["status"], "failed", "{details}");
    assert_eq!(push["fallback_of"], email["id"], "{push}");
    let received = stub.received();
    assert_eq!(received.len(), 1, "rejected: {:?}", stub.rejected());
    assert_eq!(received[0].payload["id"], json!(id));
}

#[tokio::test]
async fn a_chain_that_opens_on_web_push_reaches_the_subscribed_browser() {
    // Arrange
    let Some(app) = push_app().await else { return };
    let stub = PushStub::start().await;
    let token = subscriber(&app, "artist-1").await;
    subscribe(&app, &token, &stub).await;

    // Act: the browser first, email only if it gives up.
    let id = notify_in_app_with_fallback(&app, "artist-1", &["web_push", "email"]).await;
    let push = app
        .wait_for_delivery(&id, "web_push", "sent", Duration::from_secs(20))
        .await;

    // Assert: sent to the subscription, and email never tried.
    assert_eq!(push["fallback"], json!(["email"]), "{push}");
    let received = stub.received();
    assert_eq!(received.len(), 1, "rejected: {:?}", stub.rejected());
    assert_eq!(received[0].payload["id"], json!(id));
    let details = app.get(&format!("/api/v1/notifications/{id}")).await.json;
    assert!(
        details["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["channel"] != "email"),
        "{details}"
    );
}
