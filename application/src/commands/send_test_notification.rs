//! `SendTestNotification`: send a test message now on each configured channel, to check the
//! configuration end to end (SMTP credentials, bot token, templates).
//!
//! Email and Telegram are sent directly, not through the outbox, so the answer says what the
//! provider replied. In-app needs a registered recipient: the test notification is written to
//! their inbox like any other.

use std::sync::Arc;

use clairon_domain::{
    Body, Channel, ChannelSet, DeliveryId, DisplayName, EmailAddress, EventType, Locale, Metadata,
    Notification, NotificationKind, Priority, Recipient, RecipientId, TelegramChatId, Title,
};
use serde::Serialize;

use crate::commands::{CreateNotification, CreateNotificationHandler, NotificationDraft};
use crate::dispatch::{compose_email, compose_telegram};
use crate::ports::{
    Clock, EmailSender, IdGenerator, RecipientRepository, RepositoryError, SendOutcome,
    TelegramSender, TemplateRenderer,
};

/// Where the test goes.
#[derive(Debug, Clone, PartialEq)]
pub enum TestTarget {
    /// A registered recipient, on every channel that reaches them.
    Recipient(RecipientId),
    /// Bare addresses, for checking a channel before registering anyone.
    Addresses {
        /// Email address to test.
        email: Option<EmailAddress>,
        /// Telegram chat to test.
        telegram_chat_id: Option<TelegramChatId>,
    },
}

/// Send a test message.
#[derive(Debug, Clone, PartialEq)]
pub struct SendTestNotification {
    /// Where.
    pub target: TestTarget,
    /// Channels to test; `None` means every channel that is on.
    pub channels: Option<ChannelSet>,
}

/// The outcome on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    /// The provider accepted it (or, for in-app, it is in the inbox).
    Sent,
    /// The provider refused it or could not be reached.
    Failed,
    /// The channel cannot reach the target.
    Skipped,
}

/// What happened on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestChannelResult {
    /// The channel.
    pub channel: Channel,
    /// What happened.
    pub status: TestStatus,
    /// The provider's message id, the failure, or the skip reason.
    pub detail: String,
}

/// Why the test could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SendTestNotificationError {
    /// The recipient is not registered.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`SendTestNotification`].
pub struct SendTestNotificationHandler {
    recipients: Arc<dyn RecipientRepository>,
    create: Arc<CreateNotificationHandler>,
    templates: Arc<dyn TemplateRenderer>,
    email: Arc<dyn EmailSender>,
    telegram: Option<Arc<dyn TelegramSender>>,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
    default_locale: Locale,
}

impl SendTestNotificationHandler {
    /// Builds the handler. `telegram` is `None` when no bot token is configured.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        create: Arc<CreateNotificationHandler>,
        templates: Arc<dyn TemplateRenderer>,
        email: Arc<dyn EmailSender>,
        telegram: Option<Arc<dyn TelegramSender>>,
        ids: Arc<dyn IdGenerator>,
        clock: Arc<dyn Clock>,
        default_locale: Locale,
    ) -> Self {
        Self {
            recipients,
            create,
            templates,
            email,
            telegram,
            ids,
            clock,
            default_locale,
        }
    }

    /// Sends the test on each channel and reports per channel, in channel order.
    ///
    /// # Errors
    /// [`SendTestNotificationError`] when the target recipient is unknown or the database fails.
    #[tracing::instrument(name = "send_test_notification", skip_all)]
    pub async fn execute(
        &self,
        command: SendTestNotification,
    ) -> Result<Vec<TestChannelResult>, SendTestNotificationError> {
        let (recipient, registered) = match &command.target {
            TestTarget::Recipient(id) => {
                let recipient = self
                    .recipients
                    .get(id)
                    .await?
                    .ok_or_else(|| SendTestNotificationError::UnknownRecipient(id.clone()))?;
                (recipient, true)
            }
            TestTarget::Addresses {
                email,
                telegram_chat_id,
            } => (
                Recipient {
                    id: RecipientId::parse("clairon-test").unwrap_or_else(|_| unreachable!()),
                    name: DisplayName::parse("Clairon").unwrap_or_else(|_| unreachable!()),
                    email: email.clone(),
                    telegram_chat_id: telegram_chat_id.clone(),
                    phone: None,
                    locale: None,
                    timezone: None,
                    telegram_unreachable: None,
                    webhook_url: None,
                    webhook_secret: None,
                    webhook_disabled: None,
                    slack_webhook_url: None,
                    slack_unreachable: None,
                },
                false,
            ),
        };
        let locale = recipient.locale_or(self.default_locale);
        let policy = self.create.policy();
        let mut results = Vec::new();
        for (channel, reach) in policy.plan(&recipient, command.channels) {
            let result = match reach {
                Err(why) => skipped(channel, why.to_string()),
                Ok(()) => self.send(channel, &recipient, registered, locale).await,
            };
            results.push(result);
        }
        Ok(results)
    }

    async fn send(
        &self,
        channel: Channel,
        recipient: &Recipient,
        registered: bool,
        locale: Locale,
    ) -> TestChannelResult {
        let event_type = EventType::parse(EventType::TEST).unwrap_or_else(|_| unreachable!());
        let notification = Notification {
            id: self.ids.notification_id(),
            recipient_id: recipient.id.clone(),
            kind: NotificationKind::Info,
            priority: Priority::High,
            title: Title::parse(test_title(locale)).unwrap_or_else(|_| unreachable!()),
            body: Body::parse(test_body(locale)).unwrap_or_else(|_| unreachable!()),
            action_url: None,
            action_label: None,
            metadata: Metadata::new(),
            event_type: event_type.clone(),
            source_event_id: None,
            created_at: self.clock.now(),
            read_at: None,
        };
        let outcome = match channel {
            Channel::InApp if !registered => {
                return skipped(channel, "in-app needs a registered recipient_id".into())
            }
            Channel::InApp => {
                let draft = NotificationDraft {
                    recipient_id: recipient.id.clone(),
                    kind: notification.kind,
                    priority: notification.priority,
                    title: notification.title.clone(),
                    body: notification.body.clone(),
                    action_url: None,
                    action_label: None,
                    metadata: Metadata::new(),
                    event_type,
                    source_event_id: None,
                    channels: Some([Channel::InApp].into_iter().collect()),
                    rule: None,
                    fallback: Vec::new(),
                };
                return match self
                    .create
                    .execute(CreateNotification {
                        drafts: vec![draft],
                        deliver_at: None,
                    })
                    .await
                {
                    Ok(created) => TestChannelResult {
                        channel,
                        status: TestStatus::Sent,
                        detail: format!("notification {} is in the inbox", created[0].id),
                    },
                    Err(e) => failed(channel, e.to_string()),
                };
            }
            Channel::Email => {
                let Some(to) = recipient.email.clone() else {
                    return skipped(channel, "no email address".into());
                };
                match compose_email(
                    self.templates.as_ref(),
                    self.test_delivery_id(),
                    &notification,
                    recipient,
                    to,
                    locale,
                    // An operator's check of the channel, sent once: nothing to unsubscribe from.
                    None,
                ) {
                    Err(e) => SendOutcome::Permanent(e.to_string()),
                    Ok(message) => self.email.send(&message).await,
                }
            }
            Channel::Telegram => {
                let (Some(sender), Some(chat_id)) =
                    (&self.telegram, recipient.telegram_chat_id.clone())
                else {
                    return skipped(channel, "no Telegram bot or chat id".into());
                };
                match compose_telegram(
                    self.templates.as_ref(),
                    self.test_delivery_id(),
                    &notification,
                    recipient,
                    chat_id,
                    locale,
                ) {
                    Err(e) => SendOutcome::Permanent(e.to_string()),
                    Ok(message) => sender.send(&message).await,
                }
            }
            other @ (Channel::Slack
            | Channel::Webhook
            | Channel::Sms
            | Channel::WhatsApp
            | Channel::WebPush) => {
                return skipped(channel, format!("{other} is not configured"));
            }
        };
        match outcome {
            SendOutcome::Sent {
                provider_message_id,
            } => TestChannelResult {
                channel,
                status: TestStatus::Sent,
                detail: provider_message_id,
            },
            SendOutcome::Transient(why) | SendOutcome::Permanent(why) => failed(channel, why),
            SendOutcome::RateLimited { retry_after } => failed(
                channel,
                format!("rate limited; retry after {} s", retry_after.as_secs()),
            ),
            // A test is sent once, now: a destination at its pace is reported, not queued.
            SendOutcome::Paced { ready_in } => failed(
                channel,
                format!(
                    "paced: this destination may get its next message in {} ms",
                    ready_in.as_millis()
                ),
            ),
        }
    }

    fn test_delivery_id(&self) -> DeliveryId {
        self.ids.delivery_id()
    }
}

fn skipped(channel: Channel, detail: String) -> TestChannelResult {
    TestChannelResult {
        channel,
        status: TestStatus::Skipped,
        detail,
    }
}

fn failed(channel: Channel, detail: String) -> TestChannelResult {
    tracing::error!(channel = %channel, cause = %detail, "test notification failed");
    TestChannelResult {
        channel,
        status: TestStatus::Failed,
        detail,
    }
}

fn test_title(locale: Locale) -> &'static str {
    match locale {
        Locale::Fr => "Notification de test Clairon",
        Locale::En => "Clairon test notification",
    }
}

fn test_body(locale: Locale) -> &'static str {
    match locale {
        Locale::Fr => "Si vous lisez ceci, ce canal fonctionne.",
        Locale::En => "If you can read this, this channel works.",
    }
}
