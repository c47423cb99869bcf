//! The dispatcher's `sms` and `whatsapp` arms: what reaches the `SmsSender`, and how each
//! answer is recorded.

use super::*;
use crate::ports::{
    EmailContent, MockDeliveryQueue, MockEmailSender, MockNotificationRepository,
    MockRealtimePublisher, MockRecipientRepository, MockRetrySchedule, MockSmsSender,
    MockTemplateRenderer, SmsContent,
};
use crate::test_support::{fixed_clock, notification, recipient};
use clairon_domain::sms::{sms_length, SmsEncoding};
use clairon_domain::{ActionUrl, Delivery, DeliveryStatus};
use rstest::rstest;

const LINK: &str = "https://planning.example.org/plannings/p-1?tab=details";

fn claimed(channel: Channel, phone: Option<&str>) -> ClaimedDelivery {
    let mut n = notification("n-1", "artist-1");
    n.action_url = Some(ActionUrl::parse(LINK).unwrap());
    let mut delivery = Delivery::pending(
        DeliveryId::parse("d-1").unwrap(),
        n.id.clone(),
        n.recipient_id.clone(),
        channel,
        n.created_at,
    );
    delivery.status = DeliveryStatus::Sending;
    let mut recipient = recipient("artist-1");
    recipient.phone = phone.map(|p| PhoneNumber::parse(p).unwrap());
    ClaimedDelivery {
        delivery,
        notification: n,
        recipient,
        request_id: None,
        claim: ClaimToken::new("claim-1"),
    }
}

/// Runs one round over `claim` with an SMS sender answering `answer` (or none configured),
/// the `sms` template rendering `text`; returns the update and the messages the sender got.
async fn run(
    claim: ClaimedDelivery,
    text: &'static str,
    answer: Option<SendOutcome>,
) -> (DeliveryUpdate, Vec<SmsMessage>) {
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
    templates.expect_render_email().returning(|_, _, _| {
        Ok(EmailContent {
            subject: "s".into(),
            text: "t".into(),
            html: "h".into(),
        })
    });
    templates
        .expect_render_sms()
        .returning(move |_, _, _| Ok(SmsContent { text: text.into() }));
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
        Arc::new(MockRecipientRepository::new()),
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
            let mut sms = MockSmsSender::new();
            let sent_sink = sent.clone();
            sms.expect_send().returning(move |m| {
                sent_sink.lock().unwrap().push(m.clone());
                answer.clone()
            });
            dispatcher.with_sms(Some(Arc::new(sms)))
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
        provider_message_id: "SM0123456789abcdef0123456789abcdef".into(),
    }
}

#[rstest]
#[case::sms(Channel::Sms, false)]
#[case::whatsapp(Channel::WhatsApp, true)]
#[tokio::test]
async fn a_text_message_goes_to_the_recipients_phone_with_its_link(
    #[case] channel: Channel,
    #[case] whatsapp: bool,
) {
    let (update, messages) = run(
        claimed(channel, Some("+33 6 12 34 56 78")),
        "Répétition demain 9h",
        Some(sent()),
    )
    .await;
    assert_eq!(update.status, DeliveryStatus::Sent);
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.to.as_str(), "+33612345678");
    assert_eq!(message.whatsapp, whatsapp);
    assert_eq!(message.body, format!("Répétition demain 9h\n{LINK}"));
    assert_eq!(message.delivery_id.as_str(), "d-1");
}

#[tokio::test]
async fn a_long_text_is_cut_to_two_segments_and_its_link_kept_whole() {
    let long = "Votre répétition au théâtre est déplacée : rendez-vous à la salle côté jardin, \
                prévoyez vos partitions, votre pupitre et une bouteille d'eau ; le régisseur \
                vous attendra à l'entrée des artistes.";
    let (_, messages) = run(
        claimed(Channel::Sms, Some("+33612345678")),
        long,
        Some(sent()),
    )
    .await;
    let body = &messages[0].body;
    let length = sms_length(body);
    assert_eq!(length.encoding, SmsEncoding::Ucs2);
    assert!(length.segments <= SMS_MAX_SEGMENTS, "{body}");
    assert!(body.ends_with(&format!("…\n{LINK}")), "{body}");
}

#[rstest]
#[case::sent(sent(), DeliveryStatus::Sent)]
#[case::transient(SendOutcome::Transient("Twilio answered 503".into()), DeliveryStatus::Retrying)]
#[case::rate_limited(SendOutcome::RateLimited { retry_after: Duration::from_secs(1) }, DeliveryStatus::Retrying)]
#[case::permanent(SendOutcome::Permanent("Twilio refused the number (21211)".into()), DeliveryStatus::Failed)]
#[tokio::test]
async fn each_twilio_answer_is_recorded_as_its_class(
    #[case] answer: SendOutcome,
    #[case] status: DeliveryStatus,
) {
    let (update, _) = run(
        claimed(Channel::Sms, Some("+33612345678")),
        "Salut",
        Some(answer),
    )
    .await;
    assert_eq!(update.status, status);
}

#[rstest]
#[case::no_phone(Some(sent()), None, "recipient has no phone number")]
#[case::no_provider(None, Some("+33612345678"), "sms is not configured")]
#[tokio::test]
async fn an_sms_that_cannot_go_is_skipped_without_an_attempt(
    #[case] answer: Option<SendOutcome>,
    #[case] phone: Option<&str>,
    #[case] reason: &str,
) {
    let (update, messages) = run(claimed(Channel::Sms, phone), "Salut", answer).await;
    assert_eq!(update.status, DeliveryStatus::Skipped);
    assert!(messages.is_empty());
    let error = update.last_error.clone().unwrap_or_default();
    assert!(error.contains(reason), "{error}");
}
