//! The inbox page's Web Push opt-in in a real headless Chromium, as far as a browser goes without
//! a real push service: the click asks permission (granted by the profile), registers `/sw.js`
//! as the page's service worker, and calls `PushManager.subscribe` with the server's VAPID public
//! key. Headless Chromium has no push service to subscribe to (it would ask Google's FCM), so the
//! page's `subscribe` answers with the push-service stand-in's subscription instead; the page
//! posts it to `/api/v1/me/push-subscriptions`, and a notification then reaches the stand-in,
//! VAPID checked and the payload decrypted with the subscription's keys.

use std::time::{Duration, Instant};

use clairon_adapters::testing::PushStub;
use clairon_tests::{spawn_app_configured, Options};
use fantoccini::Locator;
use serde_json::{json, Value};

use super::browser::{headless_with_prefs, PATIENCE};

/// Replaces `PushManager.prototype.subscribe` with one that records what the page asked
/// (`window.pushCalls`: `userVisibleOnly` and the `applicationServerKey` in base64url) and
/// answers the stand-in's subscription (`arguments[0..3]`: endpoint, p256dh, auth).
const STAND_IN_PUSH_SERVICE: &str = r#"
const [endpoint, p256dh, auth] = arguments;
window.pushCalls = [];
PushManager.prototype.getSubscription = async function () { return null; };
PushManager.prototype.subscribe = async function (options) {
  const bytes = new Uint8Array(options.applicationServerKey);
  const key = btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  window.pushCalls.push({ userVisibleOnly: options.userVisibleOnly, key });
  return { endpoint, toJSON() { return { endpoint, keys: { p256dh, auth } }; } };
};
"#;

/// What the page shows and did: the status line, the subscribe calls, the service worker.
async fn opt_in_state(browser: &fantoccini::Client) -> Value {
    browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             navigator.serviceWorker.getRegistration('/').then((r) => done({
               status: document.querySelector('#push-status').textContent,
               calls: window.pushCalls || [],
               worker: r && (r.active || r.waiting || r.installing)
                 ? (r.active || r.waiting || r.installing).scriptURL : null,
               scope: r ? r.scope : null,
               permission: Notification.permission,
             }));",
            vec![],
        )
        .await
        .expect("the page answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_opt_in_registers_the_service_worker_subscribes_with_the_vapid_key_and_posts_the_subscription(
) {
    let Some((_driver, browser, _profile)) =
        headless_with_prefs(json!({ "profile.default_content_setting_values.notifications": 1 }))
            .await
    else {
        return;
    };
    let app = spawn_app_configured(
        Options {
            telegram: false,
            smtp: false,
            ..Options::default()
        },
        |s| {
            s.channels = "in_app,web_push".into();
            s.push_allowed_hosts = "127.0.0.1".into();
        },
    )
    .await
    .expect("SQLite is always available");
    let push = PushStub::start().await;
    let registered = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé Tremblay", "locale": "en" }),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.json);
    let consent = app
        .post(
            "/api/v1/recipients/artist-1/consents",
            &json!({ "channel": "web_push", "granted": true, "source": "inbox-button" }),
        )
        .await;
    assert_eq!(consent.status, 201, "{}", consent.json);
    let token = app.token_for("artist-1").await;
    let vapid = app.get("/api/v1/push/vapid-public-key").await;
    let public_key = vapid.json["public_key"].as_str().unwrap().to_owned();

    // Act: open the inbox and click "Notify me in this browser".
    browser
        .goto(&format!("{}/inbox?lang=en&token={token}", app.address))
        .await
        .unwrap();
    let button = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#push-enable:not([hidden])"))
        .await
        .expect("the opt-in button is shown where service workers exist");
    browser
        .execute(
            STAND_IN_PUSH_SERVICE,
            vec![
                json!(push.endpoint()),
                json!(push.p256dh()),
                json!(push.auth()),
            ],
        )
        .await
        .unwrap();
    button.click().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let state = loop {
        let state = opt_in_state(&browser).await;
        if !state["status"].as_str().unwrap_or_default().is_empty() {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "no status after the click: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert: permission, service worker, one subscribe call with the server's key.
    assert_eq!(
        state["status"], "This browser will get notifications.",
        "{state}"
    );
    assert_eq!(state["permission"], "granted", "{state}");
    assert_eq!(state["worker"], format!("{}/sw.js", app.address), "{state}");
    assert_eq!(state["scope"], format!("{}/", app.address), "{state}");
    assert_eq!(
        state["calls"],
        json!([{ "userVisibleOnly": true, "key": public_key }]),
        "{state}"
    );

    // The page posted the subscription: a notification goes to it, decrypted by the stand-in.
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "Rehearsal moved",
                     "body": "Thursday, 7 pm.", "channels": ["web_push"] }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let id = answer.json["notifications"][0]["id"].as_str().unwrap();
    app.wait_for_delivery(id, "web_push", "sent", PATIENCE)
        .await;
    let received = push.received();
    assert_eq!(received.len(), 1, "rejected: {:?}", push.rejected());
    assert_eq!(received[0].payload["title"], "Rehearsal moved");
    assert_eq!(received[0].payload["id"], id);
}
