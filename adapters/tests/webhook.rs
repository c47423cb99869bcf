//! `ReqwestWebhookSender` against a local webhook receiver stand-in: the Standard Webhooks 1.0
//! request it makes (headers, body, a signature the reference implementation verifies), how it
//! classifies each class of answer, and the SSRF guard.
#![cfg(feature = "test-support")]

use std::time::Duration;

use clairon_adapters::channels::{ReqwestWebhookSender, WebhookTargets};
use clairon_adapters::testing::{verify_with_reference, WebhookStub};
use clairon_application::ports::{SendOutcome, WebhookMessage, WebhookSender, WEBHOOK_GONE};
use clairon_domain::{DeliveryId, WebhookSecret, WebhookUrl};
use serde_json::json;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const DELIVERY: &str = "0190a1b2-0000-7000-8000-000000000012";

fn message(url: &str) -> WebhookMessage {
    WebhookMessage {
        delivery_id: DeliveryId::parse(DELIVERY).unwrap(),
        url: WebhookUrl::parse(url).unwrap(),
        secret: WebhookSecret::parse(SECRET).unwrap(),
        body: serde_json::to_vec(&json!({
            "type": "notification.created",
            "timestamp": "2027-03-01T10:00:00.000Z",
            "data": {"id": "n-1", "title": "Répétition — Carmen"},
        }))
        .unwrap(),
    }
}

fn sender(timeout: Duration) -> ReqwestWebhookSender {
    ReqwestWebhookSender::new(
        WebhookTargets {
            allow_private: true,
        },
        timeout,
    )
    .unwrap()
}

async fn stub_and_sender() -> (WebhookStub, ReqwestWebhookSender) {
    (WebhookStub::start().await, sender(Duration::from_secs(5)))
}

#[tokio::test]
async fn a_2xx_is_sent_with_standard_headers_and_a_signature_the_reference_library_verifies() {
    let (stub, sender) = stub_and_sender().await;
    let url = format!("{}/hooks/clairon?token=t0k", stub.base_url());
    let outcome = sender.send(&message(&url)).await;
    assert_eq!(
        outcome,
        SendOutcome::Sent {
            provider_message_id: DELIVERY.into()
        }
    );
    let received = stub.received();
    assert_eq!(received.len(), 1, "refused: {:?}", stub.rejected());
    let hook = &received[0];
    assert_eq!(hook.path, "/hooks/clairon?token=t0k");
    assert_eq!(hook.id, DELIVERY, "webhook-id is the delivery id");
    assert_eq!(hook.content_type, "application/json");
    assert!(hook.signature.starts_with("v1,"), "{}", hook.signature);
    let now = chrono::Utc::now().timestamp();
    let sent_at: i64 = hook.timestamp.parse().unwrap();
    assert!(
        (now - sent_at).abs() <= 5,
        "webhook-timestamp is Unix seconds of the try"
    );
    assert_eq!(hook.body["type"], "notification.created");
    assert_eq!(hook.raw_body.as_bytes(), message(&url).body.as_slice());
    verify_with_reference(hook, SECRET).expect("the reference implementation verifies it");
    assert!(
        verify_with_reference(hook, OTHER_SECRET).is_err(),
        "another secret does not verify: the check is real"
    );
    let mut tampered = hook.clone();
    tampered.raw_body = tampered.raw_body.replace("Carmen", "Tosca");
    assert!(verify_with_reference(&tampered, SECRET).is_err());
}

#[tokio::test]
async fn a_retry_carries_the_same_webhook_id() {
    let (stub, sender) = stub_and_sender().await;
    stub.answer_next(503);
    let url = format!("{}/hook", stub.base_url());
    assert!(matches!(
        sender.send(&message(&url)).await,
        SendOutcome::Transient(_)
    ));
    assert!(matches!(
        sender.send(&message(&url)).await,
        SendOutcome::Sent { .. }
    ));
    let ids: Vec<_> = stub.received().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![DELIVERY.to_owned(), DELIVERY.to_owned()]);
}

#[tokio::test]
async fn each_answer_class_is_classified() {
    let (stub, sender) = stub_and_sender().await;
    let url = format!("{}/hook/secret-path", stub.base_url());
    for (status, expect) in [
        (200, "sent"),
        (202, "sent"),
        (410, "gone"),
        (429, "transient"),
        (500, "transient"),
        (502, "transient"),
        (408, "transient"),
        (400, "permanent"),
        (404, "permanent"),
        (301, "permanent"),
    ] {
        stub.answer_next(status);
        let outcome = sender.send(&message(&url)).await;
        let got = match &outcome {
            SendOutcome::Sent { .. } => "sent",
            SendOutcome::Permanent(cause) if cause.starts_with(WEBHOOK_GONE) => "gone",
            SendOutcome::Permanent(_) => "permanent",
            SendOutcome::Transient(_) => "transient",
            other => panic!("{status}: unexpected {other:?}"),
        };
        assert_eq!(got, expect, "{status}: {outcome:?}");
        if let SendOutcome::Permanent(cause) | SendOutcome::Transient(cause) = &outcome {
            assert!(
                !cause.contains("secret-path"),
                "causes name the host only: {cause}"
            );
        }
    }
    assert_eq!(stub.received().len(), 10, "refused: {:?}", stub.rejected());
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_transient() {
    let stub = WebhookStub::start().await;
    stub.delay_answers(Some(Duration::from_secs(3)));
    let sender = sender(Duration::from_millis(300));
    let outcome = sender
        .send(&message(&format!("{}/hook", stub.base_url())))
        .await;
    assert!(
        matches!(&outcome, SendOutcome::Transient(cause) if cause.contains("timed out")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_receiver_that_is_down_is_transient() {
    let stub = WebhookStub::start().await;
    let url = format!("{}/hook", stub.base_url());
    stub.stop().await;
    let outcome = sender(Duration::from_secs(2)).send(&message(&url)).await;
    assert!(matches!(outcome, SendOutcome::Transient(_)), "{outcome:?}");
}

#[tokio::test]
async fn private_targets_are_refused_as_permanent_before_anything_is_sent() {
    let stub = WebhookStub::start().await;
    let guarded =
        ReqwestWebhookSender::new(WebhookTargets::default(), Duration::from_secs(2)).unwrap();
    let port = stub.base_url().rsplit(':').next().unwrap().to_owned();
    for url in [
        format!("{}/hook", stub.base_url()),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        "http://169.254.169.254/latest/meta-data".to_owned(),
    ] {
        let outcome = guarded.send(&message(&url)).await;
        assert!(
            matches!(&outcome, SendOutcome::Permanent(cause) if cause.contains("private")),
            "{url}: {outcome:?}"
        );
    }
    assert!(
        stub.received().is_empty(),
        "nothing reached the private target"
    );
}

#[tokio::test]
async fn the_stand_in_refuses_an_unsigned_request() {
    let stub = WebhookStub::start().await;
    let status = reqwest::Client::new()
        .post(format!("{}/hook", stub.base_url()))
        .header("content-type", "application/json")
        .body(r#"{"type":"x","timestamp":"t","data":{}}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    assert!(stub.received().is_empty());
    assert_eq!(stub.rejected().len(), 1);
}
