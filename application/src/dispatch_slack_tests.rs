//! The dispatcher's `slack` arm: what reaches the `SlackSender`, how each answer is recorded,
//! and the unreachable mark a refusal for good leaves on the recipient.

use super::*;
use crate::ports::{
    MockDeliveryQueue, MockEmailSender, MockNotificationRepository, MockRealtimePublisher,
    MockRecipientRepository, MockRetrySchedule, MockSlackSender, MockTemplateRenderer,
    SlackContent, SlackMessage,
};
use crate::test_support::{fixed_clock, notification, recipient};
use clairon_domain::{ActionUrl, Delivery, DeliveryStatus, SlackWebhookUrl};
use rstest::rstest;

const HOOK: &str = "https://hooks.slack.com/services/T0001/B0001/secretpart";

fn claimed(url: Option<&str>, unreachable: Option<&str>) -> ClaimedDelivery {
    let mut n = notification("n-1", "artist-1");
    n.action_url = Some(ActionUrl::parse("https://planning.example.org/p/1").unwrap());
    let mut delivery = Delivery::pending(
        DeliveryId::parse("d-1").unwrap(),
        n.id.clone(),
        n.recipient_id.clone(),
        Channel::Slack,
        n.created_at,
    );
    delivery.status = DeliveryStatus::Sending;
    let mut recipient = recipient("artist-1");
    recipient.slack_webhook_url = url.map(|u| SlackWebhookUrl::parse(u).unwrap());
    recipient.slack_unreachable = unreachable.map(str::to_owned);
    ClaimedDelivery {
        delivery,
        notification: n,
        recipient,
        request_id: None,
        claim: ClaimToken::new("claim-1"),
    }
}

/// Runs one round over `claim` with a Slack sender answering `answer` (or none configured);
/// returns the update and the messages the sender got.
async fn run(
    claim: ClaimedDelivery,
    answer: Option<SendOutcome>,
    recipients: MockRecipientRepository,
) -> (DeliveryUpdate, Vec<SlackMessage>) {
    let mut queue = MockDeliveryQueue::new();
    let batch = Mutex::new(Some(vec![claim]));
    queue
        .expect_claim_due()
        .returning(move |_, _, _, _| Ok(batch.lock().unwrap().take().unwrap_or_default()));
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    queue.expect_record().returning(move |updates| {
        sink.lock().unwrap().extend_from_slice(updates);
        Ok(Vec::new())
    });
    let mut templates = MockTemplateRenderer::new();
    templates.expect_render_slack().returning(|_, _, _| {
        Ok(SlackContent {
            mrkdwn: "*Corps*".into(),
        })
    });
    let mut notifications = MockNotificationRepository::new();
    notifications
        .expect_unread_counts()
        .returning(|_| Ok(HashMap::new()));
    let mut realtime = MockRealtimePublisher::new();
    realtime.expect_publish().return_const(());
    let mut retry = MockRetrySchedule::new();
    retry
        .expect_delay_after()
        .returning(|_| Some(Duration::from_secs(30)));
    let dispatcher = DeliveryDispatcher::new(
        Arc::new(queue),
        Arc::new(notifications),
        Arc::new(recipients),
        Arc::new(templates),
        Arc::new(MockEmailSender::new()),
        None,
        Arc::new(realtime),
        Arc::new(fixed_clock()),
        Arc::new(retry),
        Locale::Fr,
        DispatchSettings::default(),
    );
    let sent = Arc::new(Mutex::new(Vec::new()));
    let dispatcher = match answer {
        Some(answer) => {
            let mut slack = MockSlackSender::new();
            let sent_sink = sent.clone();
            slack.expect_send().returning(move |m| {
                sent_sink.lock().unwrap().push(m.clone());
                answer.clone()
            });
            dispatcher.with_slack(Arc::new(slack))
        }
        None => dispatcher,
    };
    dispatcher.dispatch_once().await.unwrap();
    let update = recorded.lock().unwrap()[0].clone();
    let sent = sent.lock().unwrap().clone();
    (update, sent)
}

fn sent() -> SendOutcome {
    SendOutcome::Sent {
        provider_message_id: "ok".into(),
    }
}

#[tokio::test]
async fn a_slack_message_goes_to_the_recipients_webhook_with_its_button() {
    let (update, sent) = run(
        claimed(Some(HOOK), None),
        Some(sent()),
        MockRecipientRepository::new(),
    )
    .await;
    assert_eq!(update.status, DeliveryStatus::Sent);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].url.expose(), HOOK);
    assert_eq!(sent[0].body, "*Corps*");
    assert_eq!(
        sent[0].button.as_ref().map(|b| b.url.as_str()),
        Some("https://planning.example.org/p/1")
    );
}

#[rstest]
#[case::no_sender(Some(HOOK), None, false, "slack is not configured")]
#[case::no_url(None, None, true, "recipient has no Slack webhook URL")]
#[case::gone(
    Some(HOOK),
    Some("slack webhook gone: 404 no_service"),
    true,
    "until its URL changes"
)]
#[tokio::test]
async fn a_slack_delivery_that_cannot_go_is_skipped_without_calling_slack(
    #[case] url: Option<&str>,
    #[case] unreachable: Option<&str>,
    #[case] configured: bool,
    #[case] reason: &str,
) {
    let answer = configured.then(sent);
    let (update, sent) = run(
        claimed(url, unreachable),
        answer,
        MockRecipientRepository::new(),
    )
    .await;
    assert_eq!(update.status, DeliveryStatus::Skipped);
    let error = update.last_error.clone().unwrap_or_default();
    assert!(error.contains(reason), "{error}");
    assert!(sent.is_empty());
}

#[tokio::test]
async fn a_webhook_slack_refuses_for_good_is_marked_on_the_recipient() {
    let mut recipients = MockRecipientRepository::new();
    recipients
        .expect_mark_slack_unreachable()
        .withf(|id, url, reason| {
            id.as_str() == "artist-1" && url.expose() == HOOK && reason.starts_with(SLACK_GONE)
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let (update, _) = run(
        claimed(Some(HOOK), None),
        Some(SendOutcome::Permanent(format!(
            "{SLACK_GONE}: 404 no_service"
        ))),
        recipients,
    )
    .await;
    assert_eq!(update.status, DeliveryStatus::Failed);
}

#[tokio::test]
async fn another_permanent_refusal_does_not_mark_the_recipient() {
    // No expectation: a call to mark_slack_unreachable would panic the mock, and the
    // delivery would then be failed with the panic's message instead of Slack's cause.
    let (update, _) = run(
        claimed(Some(HOOK), None),
        Some(SendOutcome::Permanent(
            "Slack answered 400: invalid_blocks".into(),
        )),
        MockRecipientRepository::new(),
    )
    .await;
    assert_eq!(update.status, DeliveryStatus::Failed);
    assert_eq!(
        update.last_error.as_deref(),
        Some("Slack answered 400: invalid_blocks")
    );
}
