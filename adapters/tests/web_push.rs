//! `WebPushSender` against a local push-service stand-in that checks the VAPID JWT with OpenSSL
//! and decrypts the `aes128gcm` body with Mozilla's `ece` crate — implementations independent of
//! the sender's (jsonwebtoken, web-push-native) — and how it classifies each answer class.
#![cfg(feature = "test-support")]

use std::time::Duration;

use clairon_adapters::channels::web_push::SUBSCRIPTION_GONE;
use clairon_adapters::channels::{PushPayload, PushTarget, VapidKeys, WebPushSender};
use clairon_adapters::testing::PushStub;
use clairon_application::ports::SendOutcome;
use clairon_domain::Priority;
use serde_json::json;

fn payload() -> PushPayload {
    PushPayload {
        id: "0190a1b2-0000-7000-8000-000000000042".into(),
        title: "Répétition déplacée".into(),
        body: "Carmen — salle 2, 14 h".into(),
        action_url: Some("https://clairon.example/notifications/42".into()),
    }
}

async fn stub_and_sender() -> (PushStub, WebPushSender, PushTarget) {
    let stub = PushStub::start().await;
    let sender = WebPushSender::new(
        VapidKeys::generate(),
        "mailto:ops@clairon.example",
        Duration::from_secs(3600),
        Duration::from_secs(5),
    )
    .unwrap();
    let target = PushTarget {
        endpoint: stub.endpoint(),
        p256dh: stub.p256dh(),
        auth: stub.auth(),
    };
    (stub, sender, target)
}

#[tokio::test]
async fn an_accepted_push_is_sent_and_decrypts_to_the_payload_under_a_valid_vapid_jwt() {
    let (stub, sender, target) = stub_and_sender().await;
    let outcome = sender.send(&target, &payload(), Priority::Critical).await;
    assert!(
        matches!(outcome, SendOutcome::Sent { ref provider_message_id } if provider_message_id.ends_with("/message/1")),
        "{outcome:?}; rejected: {:?}",
        stub.rejected()
    );
    let received = stub.received();
    assert_eq!(received.len(), 1, "rejected: {:?}", stub.rejected());
    let push = &received[0];
    assert_eq!(
        push.payload,
        json!({
            "id": "0190a1b2-0000-7000-8000-000000000042",
            "title": "Répétition déplacée",
            "body": "Carmen — salle 2, 14 h",
            "action_url": "https://clairon.example/notifications/42",
        })
    );
    assert_eq!(push.ttl, 3600);
    assert_eq!(push.urgency.as_deref(), Some("high"));
    assert_eq!(push.claims["sub"], "mailto:ops@clairon.example");
    let origin = stub.endpoint();
    let origin = origin.trim_end_matches("/push/subscription-1");
    assert_eq!(push.claims["aud"], origin);
}

#[tokio::test]
async fn a_payload_for_another_browser_does_not_decrypt_at_the_push_service() {
    let (stub, sender, mut target) = stub_and_sender().await;
    let other = PushStub::start().await;
    target.p256dh = other.p256dh();
    let outcome = sender.send(&target, &payload(), Priority::Normal).await;
    assert!(matches!(outcome, SendOutcome::Permanent(_)), "{outcome:?}");
    assert!(stub.received().is_empty());
    assert!(
        stub.rejected()[0].contains("does not decrypt"),
        "{:?}",
        stub.rejected()
    );
}

#[rstest::rstest]
#[case::not_found(404)]
#[case::gone(410)]
#[tokio::test]
async fn an_expired_subscription_is_permanent_and_says_it_is_gone(#[case] status: u16) {
    let (stub, sender, target) = stub_and_sender().await;
    stub.fail_next(status, None);
    let outcome = sender.send(&target, &payload(), Priority::Low).await;
    match outcome {
        SendOutcome::Permanent(cause) => assert!(cause.starts_with(SUBSCRIPTION_GONE), "{cause}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn too_many_requests_is_rate_limited_for_the_retry_after_it_names() {
    let (stub, sender, target) = stub_and_sender().await;
    stub.fail_next(429, Some(7));
    let outcome = sender.send(&target, &payload(), Priority::Normal).await;
    assert_eq!(
        outcome,
        SendOutcome::RateLimited {
            retry_after: Duration::from_secs(7)
        }
    );
}

#[tokio::test]
async fn a_push_service_error_is_transient_and_another_refusal_permanent() {
    let (stub, sender, target) = stub_and_sender().await;
    stub.fail_next(503, None);
    stub.fail_next(413, None);
    let first = sender.send(&target, &payload(), Priority::Normal).await;
    assert!(matches!(first, SendOutcome::Transient(_)), "{first:?}");
    let second = sender.send(&target, &payload(), Priority::Normal).await;
    assert!(
        matches!(second, SendOutcome::Permanent(ref c) if !c.starts_with(SUBSCRIPTION_GONE)),
        "{second:?}"
    );
}

#[tokio::test]
async fn an_unreachable_push_service_is_transient() {
    let (stub, sender, target) = stub_and_sender().await;
    stub.stop().await;
    let outcome = sender.send(&target, &payload(), Priority::Normal).await;
    assert!(matches!(outcome, SendOutcome::Transient(_)), "{outcome:?}");
}
