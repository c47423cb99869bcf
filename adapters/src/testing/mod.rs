//! Test doubles of the outside world, for this crate's tests and the end-to-end tests (feature
//! `test-support`): real servers on loopback that stand in for the providers.
//!
//! - [`telegram_stub::TelegramStub`]: an HTTP server playing the Telegram Bot API's
//!   `sendMessage`, checking every request against the documented shape and recording the valid
//!   ones, with scripted failures.
//! - [`smtp_sink::SmtpSink`]: a real SMTP server (`tests/support/smtp_sink.py`, Python's
//!   `aiosmtpd`) that stores every accepted message and can answer scripted reply codes.
//!
//! - [`push_stub::PushStub`]: a Web Push service playing one browser's subscription, checking
//!   the VAPID JWT with OpenSSL and decrypting the payload with Mozilla's `ece`.
//!
//! Nothing here is compiled into the service itself.

pub mod push_stub;
pub mod smtp_sink;
pub mod telegram_stub;

pub use push_stub::{PushStub, ReceivedPush};
pub use smtp_sink::{ParsedMailbox, ReceivedEmail, SmtpAttempt, SmtpSink};
pub use telegram_stub::{ReceivedTelegramMessage, StubChatId, TelegramStub};
