//! One planning event to a recipient reachable on every channel (the eight) (issue 12's done-when): what
//! each provider stand-in received, and the urgent notice's fallback chain — Telegram refuses
//! the chat (`403`), so SMS is tried; Twilio refuses the number (`400`, error 21211), so email
//! is tried and sent.

use std::time::Duration;

use clairon_adapters::testing::{verify_with_reference, PushStub, WebhookStub};
use clairon_tests::{spawn_app_configured, Options, TestApp};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const CHAT: &str = "100000001";
const PHONE: &str = "+33612345678";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn app() -> TestApp {
    spawn_app_configured(
        Options {
            twilio: true,
            slack: true,
            ..Options::default()
        },
        |s| {
            s.channels = "in_app,email,telegram,slack,webhook,sms,whatsapp,web_push".into();
            s.webhook_allow_private = true;
            s.push_allowed_hosts = "127.0.0.1".into();
        },
    )
    .await
    .expect("SQLite is always available")
}

/// Registers the recipient with an address on every channel, grants the consents SMS,
/// WhatsApp and Web Push need, and subscribes the push stand-in's browser.
async fn reachable_everywhere(app: &TestApp, hook: &WebhookStub, push: &PushStub) {
    let answer = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr",
                     "timezone": "America/Montreal", "telegram_chat_id": CHAT, "phone": PHONE,
                     "webhook_url": format!("{}/hooks/clairon", hook.base_url()),
                     "slack_webhook_url": app.slack.as_ref().unwrap().webhook_url("zoe"),
                     "webhook_secret": SECRET }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    for channel in ["sms", "whatsapp", "web_push"] {
        let consent = app
            .post(
                "/api/v1/recipients/artist-1/consents",
                &json!({ "channel": channel, "granted": true, "source": "signup-form" }),
            )
            .await;
        assert_eq!(consent.status, 201, "{}", consent.json);
    }
    let token = app.token_for("artist-1").await;
    let subscribed = app
        .client
        .post(format!("{}/api/v1/me/push-subscriptions", app.address))
        .bearer_auth(token)
        .json(&json!({ "endpoint": push.endpoint(),
                       "keys": { "p256dh": push.p256dh(), "auth": push.auth() } }))
        .send()
        .await
        .expect("the app answers");
    assert_eq!(subscribed.status().as_u16(), 201);
}

/// A change of venue: a `modified` planning event, priority `high`, so the default
/// `CLAIRON_PLANNING_FALLBACK` (`telegram,sms,email`) applies.
fn venue_changed() -> Value {
    json!({
        "event_id": "ev-venue", "planning_id": "pl-1", "event": "modified",
        "occurred_at": "2027-02-09T01:29:00Z",
        "planning": {
            "title": "Carmen",
            "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O" },
            "starts_at": "2099-03-16T20:15:00-04:00", "ends_at": "2099-03-16T22:15:00-04:00",
            "timezone": "America/Montreal", "contact": { "name": "Samir Nguyễn" }
        },
        "changes": { "location": {
            "from": { "name": "Salle Bourgie", "address": "1339 Rue Sherbrooke O" },
            "to": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O" } } },
        "artist_ids": ["artist-1"], "coordinator_ids": []
    })
}

fn delivery<'a>(details: &'a Value, channel: &str) -> &'a Value {
    details["deliveries"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["channel"] == channel))
        .unwrap_or_else(|| panic!("a {channel} delivery: {details}"))
}

#[tokio::test]
async fn one_planning_event_reaches_every_channel_and_its_chain_falls_from_telegram_to_sms_to_email(
) {
    // Arrange: Telegram refuses the chat, Twilio refuses SMS to the number (not WhatsApp).
    let app = app().await;
    let hook = WebhookStub::start().await;
    let push = PushStub::start().await;
    reachable_everywhere(&app, &hook, &push).await;
    let telegram = app.telegram.as_ref().unwrap();
    let twilio = app.twilio.as_ref().unwrap();
    telegram.block_chat(CHAT);
    twilio.fail_sms_to(PHONE, 400, Some(21211), "Invalid 'To' Phone Number");

    // Act
    let answer = app.post_event(&venue_changed()).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let id = answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let email = app.wait_for_delivery(&id, "email", "sent", WAIT).await;
    for channel in ["in_app", "slack", "webhook", "whatsapp", "web_push"] {
        app.wait_for_delivery(&id, channel, "sent", WAIT).await;
    }
    let details = app.wait_until_settled(&id, WAIT).await;

    // Assert: the chain, link by link.
    let by_telegram = delivery(&details, "telegram");
    let by_sms = delivery(&details, "sms");
    assert_eq!(by_telegram["status"], "failed", "{details}");
    assert_eq!(by_telegram["fallback_of"], Value::Null, "{details}");
    assert_eq!(by_sms["status"], "failed", "{details}");
    assert_eq!(by_sms["fallback_of"], by_telegram["id"], "{details}");
    assert!(
        by_sms["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("21211")),
        "{by_sms}"
    );
    assert_eq!(email["fallback_of"], by_sms["id"], "{email}");

    // Each stand-in heard what its provider would have.
    let refused_chat = telegram.failed_attempts();
    assert_eq!(refused_chat.len(), 1, "{refused_chat:?}");
    assert_eq!(refused_chat[0].chat_id.to_string(), CHAT);
    assert!(telegram.messages().is_empty(), "no chat took it");

    let whatsapp = twilio.wait_for_messages(1, WAIT).await;
    assert_eq!(whatsapp.len(), 1, "{whatsapp:?}");
    assert_eq!(whatsapp[0].to, format!("whatsapp:{PHONE}"));
    assert!(
        whatsapp[0].body.contains("Théâtre Outremont"),
        "{}",
        whatsapp[0].body
    );
    let refused_sms = twilio.failed_attempts();
    assert_eq!(refused_sms.len(), 1, "{refused_sms:?}");
    assert_eq!(refused_sms[0].to, PHONE);
    assert_eq!(
        twilio.rejected(),
        Vec::<String>::new(),
        "well-formed requests"
    );

    let emails = app.smtp.as_ref().unwrap().wait_for_messages(1, WAIT).await;
    assert_eq!(emails.len(), 1);
    assert!(emails[0]
        .to
        .iter()
        .any(|to| to.address == "zoe@example.org"));
    assert!(
        emails[0]
            .subject
            .as_deref()
            .is_some_and(|s| s.contains("Carmen")),
        "{:?}",
        emails[0].subject
    );

    let slack = app.slack.as_ref().unwrap().wait_for_accepted(1, WAIT).await;
    assert_eq!(slack.len(), 1);
    assert!(
        slack[0].header().is_some_and(|h| h.contains("Carmen")),
        "{:?}",
        slack[0]
    );
    assert!(
        slack[0]
            .section()
            .is_some_and(|s| s.contains("Théâtre Outremont")),
        "{:?}",
        slack[0]
    );

    let hooks = hook.wait_for_accepted(1, WAIT).await;
    assert_eq!(hooks[0].body["type"], "notification.created");
    assert_eq!(hooks[0].body["data"]["id"], id.as_str());
    verify_with_reference(&hooks[0], SECRET).expect("the reference implementation verifies it");

    let pushed = push.received();
    assert_eq!(pushed.len(), 1, "rejected: {:?}", push.rejected());
    assert_eq!(pushed[0].payload["id"], id.as_str());
    assert_eq!(pushed[0].urgency.as_deref(), Some("high"));

    let token = app.token_for("artist-1").await;
    let inbox = app
        .call_as(&token, reqwest::Method::GET, "/api/v1/me/notifications")
        .await;
    assert_eq!(inbox.json["items"][0]["id"], id.as_str(), "{}", inbox.json);
}
