//! `ReqwestSlackSender` and `PacedSlackSender` against a local Slack incoming-webhook stand-in:
//! the JSON and Block Kit shape it posts, how it classifies each class of Slack's answers, the
//! allowed hosts, and the pace of one message a second per webhook URL.
#![cfg(feature = "test-support")]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use clairon_adapters::channels::{PacedSlackSender, ReqwestSlackSender};
use clairon_adapters::testing::{SlackAnswer, SlackStub};
use clairon_application::ports::{SendOutcome, SlackButton, SlackMessage, SlackSender, SLACK_GONE};
use clairon_domain::{DeliveryId, SlackHosts, SlackWebhookUrl};
use rstest::rstest;

const DELIVERY: &str = "0190a1b2-0000-7000-8000-000000000042";

fn message(url: &str, delivery: &str) -> SlackMessage {
    SlackMessage {
        delivery_id: DeliveryId::parse(delivery).unwrap(),
        url: SlackWebhookUrl::parse(url).unwrap(),
        text: "Répétition — Carmen\nSalle &lt;Jazz&gt; &amp; Co".into(),
        title: "Répétition — Carmen".into(),
        body: "*Où :* Salle &lt;Jazz&gt; &amp; Co".into(),
        context: "lundi 1 mars 2027, 10 h · info · planning.assigned".into(),
        button: Some(SlackButton {
            label: "Ouvrir".into(),
            url: "https://planning.example.org/p/1?a=1&b=2".into(),
        }),
    }
}

fn sender() -> ReqwestSlackSender {
    ReqwestSlackSender::new(SlackHosts::parse("127.0.0.1"), Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn a_200_ok_is_sent_as_json_with_header_section_context_and_button_blocks() {
    let stub = SlackStub::start().await;
    let url = stub.webhook_url("hook-1");

    let outcome = sender().send(&message(&url, DELIVERY)).await;

    assert_eq!(
        outcome,
        SendOutcome::Sent {
            provider_message_id: DELIVERY.into()
        }
    );
    let received = stub.received();
    assert_eq!(received.len(), 1, "refused: {:?}", stub.rejected());
    let posted = &received[0];
    assert_eq!(posted.path, "/services/T0CLAIRON/B0CLAIRON/hook-1");
    assert!(posted.text().starts_with("Répétition — Carmen"));
    assert_eq!(posted.header(), Some("Répétition — Carmen"));
    assert_eq!(posted.section(), Some("*Où :* Salle &lt;Jazz&gt; &amp; Co"));
    assert!(posted.context().unwrap().contains("planning.assigned"));
    assert_eq!(
        posted.button(),
        Some((
            "Ouvrir".to_owned(),
            "https://planning.example.org/p/1?a=1&b=2".to_owned()
        ))
    );
}

#[tokio::test]
async fn a_message_without_a_link_has_no_actions_block() {
    let stub = SlackStub::start().await;
    let mut plain = message(&stub.webhook_url("hook-1"), DELIVERY);
    plain.button = None;

    let outcome = sender().send(&plain).await;

    assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
    assert!(stub.received()[0].block("actions").is_none());
}

#[tokio::test]
async fn a_429_is_rate_limited_for_its_retry_after() {
    let stub = SlackStub::start().await;
    stub.answer_next(SlackAnswer::RateLimited(7));

    let outcome = sender()
        .send(&message(&stub.webhook_url("hook-1"), DELIVERY))
        .await;

    assert_eq!(
        outcome,
        SendOutcome::RateLimited {
            retry_after: Duration::from_secs(7)
        }
    );
}

#[rstest]
#[case::no_service(SlackAnswer::NoService, "404 no_service")]
#[case::invalid_token(SlackAnswer::InvalidToken, "403 invalid_token")]
#[case::channel_not_found(SlackAnswer::ChannelNotFound, "410 channel_not_found")]
#[tokio::test]
async fn a_webhook_slack_refuses_for_good_is_permanent_and_says_it_is_gone(
    #[case] answer: SlackAnswer,
    #[case] said: &str,
) {
    let stub = SlackStub::start().await;
    stub.answer_next(answer);
    let url = stub.webhook_url("secret-part");

    let outcome = sender().send(&message(&url, DELIVERY)).await;

    let SendOutcome::Permanent(cause) = outcome else {
        panic!("a refusal for good is permanent, got {outcome:?}");
    };
    assert!(cause.starts_with(SLACK_GONE), "{cause}");
    assert!(cause.contains(said), "{cause}");
    assert!(
        !cause.contains("secret-part"),
        "the cause names the host, never the URL: {cause}"
    );
}

#[tokio::test]
async fn a_5xx_is_transient() {
    let stub = SlackStub::start().await;
    stub.answer_next(SlackAnswer::ServerError);

    let outcome = sender()
        .send(&message(&stub.webhook_url("hook-1"), DELIVERY))
        .await;

    assert!(matches!(outcome, SendOutcome::Transient(_)), "{outcome:?}");
}

#[tokio::test]
async fn an_unreachable_server_is_transient_and_its_cause_hides_the_url() {
    // A port nobody listens on: bound, then freed.
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/services/T1/B1/secret-part");

    let outcome = sender().send(&message(&url, DELIVERY)).await;

    let SendOutcome::Transient(cause) = outcome else {
        panic!("a connection refused is transient, got {outcome:?}");
    };
    assert!(!cause.contains("secret-part"), "{cause}");
}

#[tokio::test]
async fn a_host_no_longer_allowed_is_refused_without_being_called() {
    let stub = SlackStub::start().await;
    let strict = ReqwestSlackSender::new(SlackHosts::default(), Duration::from_secs(5)).unwrap();

    let outcome = strict
        .send(&message(&stub.webhook_url("hook-1"), DELIVERY))
        .await;

    assert!(
        matches!(&outcome, SendOutcome::Permanent(c) if !c.starts_with(SLACK_GONE)),
        "{outcome:?}"
    );
    assert!(stub.received().is_empty());
}

#[tokio::test]
async fn a_second_message_to_one_webhook_within_the_second_is_paced_and_another_webhook_is_not_held_up(
) {
    let stub = SlackStub::start().await;
    let paced = PacedSlackSender::new(Arc::new(sender()), NonZeroU32::MIN);
    let busy = stub.webhook_url("busy");
    let other = stub.webhook_url("other");

    let first = paced
        .send(&message(&busy, "0190a1b2-0000-7000-8000-000000000001"))
        .await;
    let second = paced
        .send(&message(&busy, "0190a1b2-0000-7000-8000-000000000002"))
        .await;
    let elsewhere = paced
        .send(&message(&other, "0190a1b2-0000-7000-8000-000000000003"))
        .await;

    assert!(matches!(first, SendOutcome::Sent { .. }), "{first:?}");
    let SendOutcome::Paced { ready_in } = second else {
        panic!("a second message to one webhook within the second is paced, got {second:?}");
    };
    assert!(
        ready_in > Duration::from_millis(500) && ready_in <= Duration::from_secs(1),
        "one a second per webhook: {ready_in:?}"
    );
    assert!(
        matches!(elsewhere, SendOutcome::Sent { .. }),
        "{elsewhere:?}"
    );
    let paths: Vec<String> = stub.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/services/T0CLAIRON/B0CLAIRON/busy",
            "/services/T0CLAIRON/B0CLAIRON/other"
        ],
        "the paced message never reached Slack"
    );
}
