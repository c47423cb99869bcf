//! The delivery dispatcher: claims due deliveries from the outbox, renders each for its
//! channel, hands it to the channel's sender, and records what happened.
//!
//! A failure on one delivery never blocks the others of the batch and never loses the
//! notification: it is already in the database, and the delivery records the error. Every
//! failure is logged at error level with the notification id, the channel and the cause.
//!
//! The loop that calls [`DeliveryDispatcher::dispatch_once`] (polling, waking on new work,
//! stopping on shutdown) belongs to the binary; this type holds no timer and spawns nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clairon_domain::{Channel, DeliveryStatus, Locale, Notification, Recipient};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::ports::{
    AttemptRecord, ClaimedDelivery, Clock, DeliveryQueue, DeliveryUpdate, EmailMessage,
    EmailSender, NotificationRepository, RealtimeEvent, RealtimePublisher, RepositoryError,
    SendOutcome, TelegramButton, TelegramMessage, TelegramSender, TemplateRenderer,
};

/// How the dispatcher claims work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// Deliveries claimed per round.
    pub batch_size: u32,
    /// How long a claim holds before another dispatcher may take the delivery over.
    pub lease: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            batch_size: 64,
            lease: Duration::from_secs(60),
        }
    }
}

/// The template context of a notification at dispatch time: its metadata (for planning
/// notifications, the localised planning context), plus `notification`, `recipient` and `locale`.
pub fn dispatch_context(
    notification: &Notification,
    recipient: &Recipient,
    locale: Locale,
) -> Value {
    let mut context = notification.metadata.clone();
    context.insert(
        "notification".into(),
        json!({
            "id": notification.id.as_str(),
            "kind": notification.kind.as_str(),
            "title": notification.title.as_str(),
            "body": notification.body.as_str(),
            "action_url": notification.action_url.as_ref().map(|u| u.as_str()),
            "action_label": notification.action_label.as_ref().map(|l| l.as_str()),
            "event_type": notification.event_type.as_str(),
            "created_at": notification.created_at.to_rfc3339(),
        }),
    );
    context.insert(
        "recipient".into(),
        json!({ "id": recipient.id.as_str(), "name": recipient.name.as_str() }),
    );
    context.insert("locale".into(), json!(locale.as_str()));
    Value::Object(context)
}

/// The language a notification is written in: the one its planning context was localised in,
/// else the recipient's, else the default.
pub fn notification_locale(
    notification: &Notification,
    recipient: &Recipient,
    default: Locale,
) -> Locale {
    notification
        .metadata
        .get("locale")
        .and_then(Value::as_str)
        .and_then(|l| Locale::parse(l).ok())
        .unwrap_or_else(|| recipient.locale_or(default))
}

/// Sends what the outbox holds.
pub struct DeliveryDispatcher {
    queue: Arc<dyn DeliveryQueue>,
    notifications: Arc<dyn NotificationRepository>,
    templates: Arc<dyn TemplateRenderer>,
    email: Arc<dyn EmailSender>,
    telegram: Option<Arc<dyn TelegramSender>>,
    realtime: Arc<dyn RealtimePublisher>,
    clock: Arc<dyn Clock>,
    default_locale: Locale,
    settings: DispatchSettings,
}

impl DeliveryDispatcher {
    /// Builds a dispatcher. `telegram` is `None` when no bot token is configured.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queue: Arc<dyn DeliveryQueue>,
        notifications: Arc<dyn NotificationRepository>,
        templates: Arc<dyn TemplateRenderer>,
        email: Arc<dyn EmailSender>,
        telegram: Option<Arc<dyn TelegramSender>>,
        realtime: Arc<dyn RealtimePublisher>,
        clock: Arc<dyn Clock>,
        default_locale: Locale,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            queue,
            notifications,
            templates,
            email,
            telegram,
            realtime,
            clock,
            default_locale,
            settings,
        }
    }

    /// Claims one batch of due deliveries, sends them concurrently, records the outcomes.
    /// Returns how many were claimed (0 means the outbox had nothing due).
    ///
    /// # Errors
    /// [`RepositoryError`] when claiming or recording fails; claimed deliveries whose outcome
    /// could not be recorded are retaken when their lease expires.
    pub async fn dispatch_once(&self) -> Result<usize, RepositoryError> {
        let claimed = self
            .queue
            .claim_due(
                self.clock.now(),
                self.settings.lease,
                self.settings.batch_size,
            )
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let updates = join_all(claimed.iter().map(|c| self.deliver(c))).await;
        self.queue.record(&updates).await?;
        Ok(claimed.len())
    }

    #[tracing::instrument(
        name = "deliver",
        skip_all,
        fields(notification_id = %claimed.notification.id, delivery_id = %claimed.delivery.id, channel = %claimed.delivery.channel)
    )]
    async fn deliver(&self, claimed: &ClaimedDelivery) -> DeliveryUpdate {
        let number = claimed.delivery.attempts + 1;
        let started_at = self.clock.now();
        let timer = Instant::now();
        let outcome = match self.attempt(claimed).await {
            Attempt::Tried(outcome) => outcome,
            Attempt::Skipped(reason) => {
                tracing::info!(reason, "delivery skipped at dispatch");
                return DeliveryUpdate {
                    id: claimed.delivery.id.clone(),
                    status: DeliveryStatus::Skipped,
                    attempts: claimed.delivery.attempts,
                    last_error: Some(reason),
                    provider_message_id: None,
                    sent_at: None,
                    next_attempt_at: None,
                    attempt: None,
                };
            }
        };
        let duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
        let record =
            |outcome: &str, error: Option<String>, provider: Option<String>| AttemptRecord {
                number,
                started_at,
                duration_ms,
                outcome: outcome.to_owned(),
                error,
                provider_response_id: provider,
            };
        match outcome {
            SendOutcome::Sent {
                provider_message_id,
            } => DeliveryUpdate {
                id: claimed.delivery.id.clone(),
                status: DeliveryStatus::Sent,
                attempts: number,
                last_error: None,
                provider_message_id: Some(provider_message_id.clone()),
                sent_at: Some(self.clock.now()),
                next_attempt_at: None,
                attempt: Some(record("sent", None, Some(provider_message_id))),
            },
            failure => {
                let (kind, cause) = match failure {
                    SendOutcome::Transient(reason) => ("transient", reason),
                    SendOutcome::Permanent(reason) => ("permanent", reason),
                    SendOutcome::RateLimited { retry_after } => (
                        "rate_limited",
                        format!("rate limited; retry after {} s", retry_after.as_secs()),
                    ),
                    SendOutcome::Sent { .. } => unreachable!("handled above"),
                };
                tracing::error!(
                    notification_id = %claimed.notification.id,
                    channel = %claimed.delivery.channel,
                    cause = %cause,
                    outcome = kind,
                    "delivery failed"
                );
                self.failed(
                    claimed,
                    number,
                    record(kind, Some(cause.clone()), None),
                    cause,
                )
            }
        }
    }

    /// The seam for retries: today every failure is final (`failed`); the delivery engine
    /// decides here between `retrying` (with `next_attempt_at`), `dead` and `failed`.
    fn failed(
        &self,
        claimed: &ClaimedDelivery,
        number: u32,
        attempt: AttemptRecord,
        cause: String,
    ) -> DeliveryUpdate {
        DeliveryUpdate {
            id: claimed.delivery.id.clone(),
            status: DeliveryStatus::Failed,
            attempts: number,
            last_error: Some(cause),
            provider_message_id: None,
            sent_at: None,
            next_attempt_at: None,
            attempt: Some(attempt),
        }
    }

    async fn attempt(&self, claimed: &ClaimedDelivery) -> Attempt {
        let ClaimedDelivery {
            delivery,
            notification,
            recipient,
        } = claimed;
        let locale = notification_locale(notification, recipient, self.default_locale);
        match delivery.channel {
            Channel::InApp => {
                let unread = match self.notifications.unread_count(&recipient.id).await {
                    Ok(n) => n,
                    Err(e) => return Attempt::Tried(SendOutcome::Transient(e.to_string())),
                };
                self.realtime
                    .publish(RealtimeEvent::NotificationCreated {
                        notification: notification.clone(),
                        unread,
                    })
                    .await;
                Attempt::Tried(SendOutcome::Sent {
                    provider_message_id: notification.id.to_string(),
                })
            }
            Channel::Email => {
                let Some(to) = recipient.email.clone() else {
                    return Attempt::Skipped("recipient has no email address".into());
                };
                let context = dispatch_context(notification, recipient, locale);
                let content =
                    match self
                        .templates
                        .render_email(&notification.event_type, locale, &context)
                    {
                        Ok(c) => c,
                        Err(e) => return Attempt::Tried(SendOutcome::Permanent(e.to_string())),
                    };
                let message = EmailMessage {
                    delivery_id: delivery.id.clone(),
                    notification_id: notification.id.clone(),
                    to,
                    to_name: recipient.name.clone(),
                    subject: content.subject,
                    text: content.text,
                    html: content.html,
                };
                Attempt::Tried(self.email.send(&message).await)
            }
            Channel::Telegram => {
                let Some(sender) = &self.telegram else {
                    return Attempt::Skipped("no Telegram bot token is configured".into());
                };
                let Some(chat_id) = recipient.telegram_chat_id.clone() else {
                    return Attempt::Skipped("recipient has no Telegram chat id".into());
                };
                let context = dispatch_context(notification, recipient, locale);
                let content =
                    match self
                        .templates
                        .render_telegram(&notification.event_type, locale, &context)
                    {
                        Ok(c) => c,
                        Err(e) => return Attempt::Tried(SendOutcome::Permanent(e.to_string())),
                    };
                let button = notification.action_url.as_ref().map(|url| TelegramButton {
                    label: notification.action_label.as_ref().map_or_else(
                        || default_action_label(locale).to_owned(),
                        |l| l.as_str().to_owned(),
                    ),
                    url: url.as_str().to_owned(),
                });
                let message = TelegramMessage {
                    delivery_id: delivery.id.clone(),
                    chat_id,
                    html: content.html,
                    button,
                };
                Attempt::Tried(sender.send(&message).await)
            }
        }
    }
}

fn default_action_label(locale: Locale) -> &'static str {
    match locale {
        Locale::Fr => "Ouvrir",
        Locale::En => "Open",
    }
}

enum Attempt {
    Tried(SendOutcome),
    Skipped(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        EmailContent, MockDeliveryQueue, MockEmailSender, MockNotificationRepository,
        MockRealtimePublisher, MockTelegramSender, MockTemplateRenderer, TelegramContent,
    };
    use crate::test_support::{fixed_clock, notification, recipient};
    use clairon_domain::{ActionUrl, Delivery, DeliveryId};
    use rstest::rstest;
    use std::sync::Mutex;

    fn claimed(channel: Channel) -> ClaimedDelivery {
        let mut n = notification("n-1", "artist-1");
        n.action_url = Some(ActionUrl::parse("https://planning.example.org/p/1").unwrap());
        let mut delivery = Delivery::pending(
            DeliveryId::parse("d-1").unwrap(),
            n.id.clone(),
            n.recipient_id.clone(),
            channel,
            n.created_at,
        );
        delivery.status = DeliveryStatus::Sending;
        ClaimedDelivery {
            delivery,
            notification: n,
            recipient: recipient("artist-1"),
        }
    }

    /// Given one claimed delivery and what its provider answers, when the dispatcher runs once,
    /// then the update it records.
    async fn dispatch(claim: ClaimedDelivery, answer: SendOutcome) -> DeliveryUpdate {
        let mut queue = MockDeliveryQueue::new();
        queue
            .expect_claim_due()
            .times(1)
            .returning(move |_, _, _| Ok(vec![claim.clone()]));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = recorded.clone();
        queue.expect_record().times(1).returning(move |updates| {
            sink.lock().unwrap().extend_from_slice(updates);
            Ok(())
        });
        let mut templates = MockTemplateRenderer::new();
        templates.expect_render_email().returning(|_, _, ctx| {
            Ok(EmailContent {
                subject: ctx["notification"]["title"].as_str().unwrap().into(),
                text: "text".into(),
                html: "<p>html</p>".into(),
            })
        });
        templates.expect_render_telegram().returning(|_, _, _| {
            Ok(TelegramContent {
                html: "<b>hi</b>".into(),
            })
        });
        let mut email = MockEmailSender::new();
        let email_answer = answer.clone();
        email
            .expect_send()
            .withf(|m| m.subject == "Titre" && m.to.as_str() == "artist-1@example.org")
            .returning(move |_| email_answer.clone());
        let mut telegram = MockTelegramSender::new();
        telegram
            .expect_send()
            .withf(|m| {
                m.button.as_ref().is_some_and(|b| {
                    b.url == "https://planning.example.org/p/1" && b.label == "Ouvrir"
                })
            })
            .returning(move |_| answer.clone());
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish().return_const(());
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_unread_count().returning(|_| Ok(1));
        let dispatcher = DeliveryDispatcher::new(
            Arc::new(queue),
            Arc::new(notifications),
            Arc::new(templates),
            Arc::new(email),
            Some(Arc::new(telegram)),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
            Locale::Fr,
            DispatchSettings::default(),
        );
        assert_eq!(dispatcher.dispatch_once().await.unwrap(), 1);
        let update = recorded.lock().unwrap()[0].clone();
        update
    }

    fn sent() -> SendOutcome {
        SendOutcome::Sent {
            provider_message_id: "provider-42".into(),
        }
    }

    #[rstest]
    #[case::email_sent(Channel::Email, sent(), DeliveryStatus::Sent, "sent")]
    #[case::email_transient(Channel::Email, SendOutcome::Transient("451 try later".into()), DeliveryStatus::Failed, "transient")]
    #[case::email_permanent(Channel::Email, SendOutcome::Permanent("550 no such user".into()), DeliveryStatus::Failed, "permanent")]
    #[case::telegram_sent(Channel::Telegram, sent(), DeliveryStatus::Sent, "sent")]
    #[case::telegram_rate_limited(Channel::Telegram, SendOutcome::RateLimited { retry_after: Duration::from_secs(7) }, DeliveryStatus::Failed, "rate_limited")]
    #[tokio::test]
    async fn each_provider_answer_is_recorded_on_the_delivery_with_its_attempt(
        #[case] channel: Channel,
        #[case] answer: SendOutcome,
        #[case] status: DeliveryStatus,
        #[case] outcome: &str,
    ) {
        let update = dispatch(claimed(channel), answer).await;
        assert_eq!(update.status, status);
        assert_eq!(update.attempts, 1);
        let attempt = update.attempt.expect("an attempt row");
        assert_eq!(attempt.number, 1);
        assert_eq!(attempt.outcome, outcome);
        assert_eq!(
            update.provider_message_id.is_some(),
            status == DeliveryStatus::Sent
        );
        assert_eq!(update.last_error.is_some(), status != DeliveryStatus::Sent);
    }

    #[tokio::test]
    async fn in_app_deliveries_are_published_live_and_marked_sent() {
        let update = dispatch(claimed(Channel::InApp), sent()).await;
        assert_eq!(update.status, DeliveryStatus::Sent);
        assert_eq!(update.provider_message_id.as_deref(), Some("n-1"));
    }

    #[tokio::test]
    async fn an_email_address_removed_since_creation_skips_the_delivery_without_an_attempt() {
        let mut claim = claimed(Channel::Email);
        claim.recipient.email = None;
        let update = dispatch(claim, sent()).await;
        assert_eq!(update.status, DeliveryStatus::Skipped);
        assert!(update.attempt.is_none());
    }
}
