//! Delivery events to the host application end to end (issue 12): with
//! `CLAIRON_EVENTS_WEBHOOK_URL` pointing at the webhook stand-in, the host receives
//! `delivery.sent` for an email and `notification.read` after a mark-read, signed per Standard
//! Webhooks 1.0 (checked by the reference implementation); a `500` is retried with the same
//! `webhook-id`; and a host that never answers does not hold up the email deliveries.

use std::time::{Duration, Instant};

use clairon_adapters::persistence::{Database, DieselHostEventOutbox, HostEventRecord};
use clairon_adapters::testing::{verify_with_reference, ReceivedWebhook, WebhookStub};
use clairon_tests::{spawn_app_configured, Options, TestApp};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn app(stub: &WebhookStub, timeout_ms: u64) -> TestApp {
    let url = format!("{}/clairon/events?source=clairon", stub.base_url());
    spawn_app_configured(
        Options {
            telegram: false,
            ..Options::default()
        },
        move |settings| {
            settings.events_webhook_url = url;
            settings.events_webhook_secret = SECRET.into();
            settings.events_webhook_timeout_ms = timeout_ms;
        },
    )
    .await
    .expect("SQLite is always available")
}

async fn email_notification(app: &TestApp, recipient: &str) -> String {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{recipient}"),
            &json!({ "name": "Zoé Tremblay", "locale": "fr", "email": format!("{recipient}@example.org") }),
        )
        .await;
    assert!(matches!(answer.status, 200 | 201), "{}", answer.json);
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": [recipient], "title": "Répétition", "body": "Salle 2", "channels": ["email"] }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The stored host events, read from the app's database.
async fn stored(app: &TestApp) -> Vec<HostEventRecord> {
    let db = Database::connect(&app.database_url, 1)
        .await
        .expect("the app's database");
    DieselHostEventOutbox::new(db).all().await.unwrap()
}

/// Waits until the stand-in has accepted (`2xx`) an event of `event_type` about
/// `notification`; returns it.
async fn accepted(stub: &WebhookStub, event_type: &str, notification: &str) -> ReceivedWebhook {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = stub.received().into_iter().find(|r| {
            (200..300).contains(&r.answered)
                && r.body["type"] == event_type
                && r.body["data"]["notification_id"] == notification
        });
        if let Some(found) = found {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {event_type} of {notification} accepted; received: {:#?}; refused: {:#?}",
            stub.received(),
            stub.rejected()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn the_host_receives_delivery_sent_then_notification_read_signed_as_the_standard_says() {
    let stub = WebhookStub::start().await;
    let app = app(&stub, 5_000).await;
    let id = email_notification(&app, "artist-1").await;
    let delivery = app.wait_for_delivery(&id, "email", "sent", WAIT).await;

    let sent = accepted(&stub, "delivery.sent", &id).await;
    let read = app
        .post(&format!("/api/v1/notifications/{id}/read"), &json!({}))
        .await;
    assert_eq!(read.status, 200, "{}", read.json);
    let read_event = accepted(&stub, "notification.read", &id).await;

    assert_eq!(sent.path, "/clairon/events?source=clairon");
    assert_eq!(sent.content_type, "application/json");
    verify_with_reference(&sent, SECRET).expect("the reference implementation verifies it");
    verify_with_reference(&read_event, SECRET).expect("the reference implementation verifies it");
    let data = &sent.body["data"];
    assert_eq!(data["delivery_id"], delivery["id"]);
    assert_eq!(data["recipient_id"], "artist-1");
    assert_eq!(data["channel"], "email");
    assert_eq!(data["status"], "sent");
    assert_eq!(data["attempts"], 1);
    assert!(data["provider_message_id"].is_string(), "{data}");
    assert_eq!(read_event.body["data"]["recipient_id"], "artist-1");
    let instant = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).expect("RFC 3339")
    };
    assert_eq!(
        instant(&read_event.body["data"]["read_at"]),
        instant(&read.json["read_at"])
    );
    assert_ne!(sent.id, read_event.id, "each event has its own webhook-id");
}

#[tokio::test]
async fn a_host_answering_500_gets_the_event_again_with_the_same_webhook_id() {
    let stub = WebhookStub::start().await;
    stub.answer_next(500);
    let app = app(&stub, 5_000).await;
    let id = email_notification(&app, "artist-2").await;

    let sent = accepted(&stub, "delivery.sent", &id).await;

    let tries: Vec<ReceivedWebhook> = stub
        .received()
        .into_iter()
        .filter(|r| r.id == sent.id)
        .collect();
    assert_eq!(
        tries.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![500, 204],
        "refused once, then taken"
    );
    assert_eq!(tries[0].raw_body, tries[1].raw_body, "the same event");
    verify_with_reference(&tries[1], SECRET).expect("the retry is signed too");
    let deadline = Instant::now() + WAIT;
    loop {
        let events = stored(&app).await;
        let event = events.iter().find(|e| e.id == sent.id).expect("stored");
        if event.status == "sent" {
            assert_eq!(event.attempts, 2);
            break;
        }
        assert!(Instant::now() < deadline, "never recorded sent: {event:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_host_that_never_answers_does_not_hold_up_the_email_deliveries() {
    let stub = WebhookStub::start().await;
    // The stand-in takes each request and answers in an hour; Clairon waits up to ten minutes.
    stub.delay_answers(Some(Duration::from_secs(3600)));
    let app = app(&stub, 600_000).await;
    let first = email_notification(&app, "artist-3").await;
    app.wait_for_delivery(&first, "email", "sent", WAIT).await;
    let deadline = Instant::now() + WAIT;
    while !stub
        .received()
        .iter()
        .any(|r| r.body["data"]["notification_id"] == first.as_str())
    {
        assert!(Instant::now() < deadline, "the host was never called");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The host now holds the worker's POST: the next email goes out all the same.
    let second = email_notification(&app, "artist-4").await;
    app.wait_for_delivery(&second, "email", "sent", WAIT).await;

    let events = stored(&app).await;
    let hanging = events
        .iter()
        .find(|e| e.payload.contains(&first))
        .expect("the first event is stored");
    assert_eq!(
        (hanging.status.as_str(), hanging.attempts),
        ("pending", 0),
        "the host has not answered the first event yet"
    );
    assert!(
        events.iter().any(|e| e.payload.contains(&second)),
        "the second email's event waits in the outbox: {events:?}"
    );
}
