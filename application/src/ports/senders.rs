//! Channel senders: hand one rendered message to a provider and say how it went.

use std::time::Duration;

use async_trait::async_trait;
use clairon_domain::{
    DeliveryId, DisplayName, EmailAddress, NotificationId, PhoneNumber, TelegramChatId,
};
use clairon_domain::{WebhookSecret, WebhookUrl};

/// What a provider did with a message. A 429 is not a failure of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted; the provider's id of the message (SMTP `Message-ID`, Telegram `message_id`).
    Sent {
        /// Provider's message id.
        provider_message_id: String,
    },
    /// Failed in a way a later try may fix (connection refused, SMTP 4xx, HTTP 5xx).
    Transient(String),
    /// The provider asks to slow down; try again after `retry_after`.
    RateLimited {
        /// How long to wait before trying again.
        retry_after: Duration,
    },
    /// Not sent: the destination's token bucket (Telegram 1/s per chat, Slack 1/s per webhook)
    /// has no token before `ready_in`. The provider was not called; the dispatcher puts the
    /// delivery back due then (not an attempt, the channel not paused) and goes on with others.
    Paced {
        /// How long until the destination's bucket has a token again.
        ready_in: Duration,
    },
    /// Refused for good (SMTP 5xx, Telegram "chat not found"); retrying will not help.
    Permanent(String),
}

/// An email, rendered, ready for SMTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// The delivery it belongs to; makes the stable `Message-ID` `<delivery-id@sender-domain>`.
    pub delivery_id: DeliveryId,
    /// The notification; sent as the `X-Clairon-Notification-Id` header.
    pub notification_id: NotificationId,
    /// Recipient address.
    pub to: EmailAddress,
    /// Recipient display name, for the `To` header.
    pub to_name: DisplayName,
    /// Subject, UTF-8 (the sender encodes it per RFC 2047).
    pub subject: String,
    /// The text/plain alternative.
    pub text: String,
    /// The text/html alternative.
    pub html: String,
    /// The one-click unsubscribe link (RFC 8058), sent as `List-Unsubscribe: <url>` with
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`; `None` for a message nobody can
    /// unsubscribe from (a `critical` notification, a test message): no such headers then.
    pub unsubscribe_url: Option<String>,
}

/// Sends email.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EmailSender: Send + Sync {
    /// Sends `message`. MUST classify failures: connection errors and SMTP 4xx replies are
    /// [`SendOutcome::Transient`], 5xx replies [`SendOutcome::Permanent`] (RFC 5321 §4.2.1).
    /// Never panics; never returns before the provider answered or failed.
    async fn send(&self, message: &EmailMessage) -> SendOutcome;
}

/// An inline keyboard button under a Telegram message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramButton {
    /// Button text.
    pub label: String,
    /// URL the button opens.
    pub url: String,
}

/// A Telegram message, rendered, ready for `sendMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramMessage {
    /// The delivery it belongs to.
    pub delivery_id: DeliveryId,
    /// Target chat.
    pub chat_id: TelegramChatId,
    /// Text in Telegram's HTML parse mode, already escaped (Bot API, "Formatting options").
    pub html: String,
    /// Optional call-to-action button.
    pub button: Option<TelegramButton>,
}

/// Sends Telegram messages through a bot.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TelegramSender: Send + Sync {
    /// Sends `message` with `sendMessage`. MUST classify failures: 429 is
    /// [`SendOutcome::RateLimited`] with `parameters.retry_after`; 400 "chat not found" and 403
    /// "bot was blocked by the user" are [`SendOutcome::Permanent`]; 5xx and network errors are
    /// [`SendOutcome::Transient`]. Never panics.
    async fn send(&self, message: &TelegramMessage) -> SendOutcome;
}

/// An SMS or a WhatsApp message, rendered and cut to fit, ready for a Messages API (Twilio's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// The delivery it belongs to.
    pub delivery_id: DeliveryId,
    /// The recipient's number, E.164.
    pub to: PhoneNumber,
    /// Plain text: the template's text, cut to at most 2 SMS segments
    /// ([`clairon_domain::sms::fit_sms`]), the call-to-action link (whole) on its last line.
    pub body: String,
    /// `true` to send it over WhatsApp (`whatsapp:+E164` addresses), `false` as an SMS.
    pub whatsapp: bool,
}

/// Sends SMS and WhatsApp messages through one provider account.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// Sends `message`. MUST classify failures: 429 is [`SendOutcome::RateLimited`]; a refused
    /// number (Twilio 21211 invalid, 21614 not a mobile, 21610 unsubscribed) and other 4xx are
    /// [`SendOutcome::Permanent`]; 5xx, timeouts and network errors are
    /// [`SendOutcome::Transient`]. Never panics; never logs the credentials, the number or
    /// the text.
    async fn send(&self, message: &SmsMessage) -> SendOutcome;
}
/// A signed webhook (Standard Webhooks 1.0), ready to post: the sender signs `body` with
/// `secret` under `delivery_id` and the time of the try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookMessage {
    /// The delivery it belongs to: the `webhook-id` header, the same on every retry, so the
    /// receiver can drop a duplicate.
    pub delivery_id: DeliveryId,
    /// Where it is posted. Never logged whole (its path or query may carry a token).
    pub url: WebhookUrl,
    /// The signing secret (`whsec_…`); its `Debug` hides it.
    pub secret: WebhookSecret,
    /// The JSON body, exactly as signed and sent.
    pub body: Vec<u8>,
}

/// Posts signed webhooks.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Posts `message` with the `webhook-id`, `webhook-timestamp` and `webhook-signature`
    /// headers. MUST classify answers: `2xx` is [`SendOutcome::Sent`]; `410` is
    /// [`SendOutcome::Permanent`] with a cause starting with [`WEBHOOK_GONE`] (the dispatcher
    /// then disables the endpoint); `429`, `5xx`, timeouts and network errors are
    /// [`SendOutcome::Transient`]; any other answer, and a target the SSRF guard refuses, is
    /// [`SendOutcome::Permanent`]. Never panics.
    async fn send(&self, message: &WebhookMessage) -> SendOutcome;
}

/// How a [`WebhookSender`]'s cause for a `410 Gone` answer starts: the endpoint asks not to be
/// called again (Standard Webhooks 1.0, "Disabling endpoints").
pub const WEBHOOK_GONE: &str = "410 Gone";
