//! Channel senders: the adapters that hand one rendered message to a provider (an SMTP server,
//! the Telegram Bot API) and classify what the provider answered into a
//! [`SendOutcome`](clairon_application::ports::SendOutcome).
//!
//! They know nothing of deliveries, retries or templates: the dispatcher decides what to do with
//! the outcome, and messages arrive already rendered. No lettre or frankenstein type leaves this
//! module.

pub mod email;
pub mod fallback;
pub mod host_events;
pub mod pacing;
pub mod slack;
pub mod telegram;
pub mod twilio;
pub mod web_push;
pub mod webhook;

pub use email::{EmailConfigError, LettreEmailSender};
pub use fallback::FallbackEmailSender;
pub use host_events::ReqwestHostEventSender;
pub use pacing::{DestinationPacer, PacedTelegramSender};
pub use slack::{PacedSlackSender, ReqwestSlackSender};
pub use telegram::FrankensteinTelegramSender;
pub use twilio::{PacedSmsSender, TwilioAccount, TwilioSmsSender};
pub use web_push::{PushPayload, PushTarget, VapidKeys, WebPushSender};
pub use webhook::{ReqwestWebhookSender, WebhookTargets};
