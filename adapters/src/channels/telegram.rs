//! The Telegram channel: [`FrankensteinTelegramSender`] implements the [`TelegramSender`] port
//! with frankenstein's reqwest client, calling the Bot API's `sendMessage` method
//! (<https://core.telegram.org/bots/api#sendmessage>).
//!
//! It classifies the Bot API's answers (<https://core.telegram.org/bots/api#making-requests>:
//! `{"ok":false,"error_code":…,"description":…,"parameters":{"retry_after":…}}`) into
//! [`SendOutcome`]s. It knows nothing of deliveries, retries or templates, and the bot token,
//! which sits in every request path, never reaches a log line, an error string or a `Debug`
//! output.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use clairon_application::ports::{SendOutcome, TelegramMessage, TelegramSender};
use frankenstein::client_reqwest::Bot;
use frankenstein::methods::SendMessageParams;
use frankenstein::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, ReplyMarkup,
};
use frankenstein::{AsyncTelegramApi, ParseMode};

/// How long to wait for a TCP (and TLS) connection to the Bot API: 10 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole `sendMessage` call may take by default: 30 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The wait when a 429 answer does not say how long to wait: 1 s.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Sends Telegram messages through a bot with the Bot API's `sendMessage`.
///
/// Each request posts JSON to `{api_base_url}/bot{token}/sendMessage` with `chat_id` (an integer
/// when the chat id is numeric, else the `@username` string), `text` with `parse_mode: "HTML"`,
/// link previews disabled, and, when the message has a button, `reply_markup`
/// `{"inline_keyboard":[[{"text":label,"url":url}]]}`.
///
/// Answers map to outcomes as the Bot API documents them: 200 → [`SendOutcome::Sent`] with the
/// `message_id`; 429 → [`SendOutcome::RateLimited`] after `parameters.retry_after` seconds (1 s
/// when absent); any other 4xx (400 "chat not found", 403 "bot was blocked by the user", 401 bad
/// token, 404) → [`SendOutcome::Permanent`] with the API's description; 5xx, unreadable answers,
/// network errors and timeouts (10 s to connect, 30 s in all) → [`SendOutcome::Transient`].
pub struct FrankensteinTelegramSender {
    bot: Bot,
    api_base_url: String,
    bot_token: String,
}

impl FrankensteinTelegramSender {
    /// The public Bot API server.
    pub const DEFAULT_API_BASE_URL: &'static str = "https://api.telegram.org";

    /// A sender for the bot `bot_token` (as BotFather gives it, `123456:ABC…`) on the Bot API
    /// server at `api_base_url` (scheme, host and optional port, no trailing `/bot…`; usually
    /// [`Self::DEFAULT_API_BASE_URL`], a local server in tests).
    pub fn new(api_base_url: &str, bot_token: &str) -> Self {
        Self::with_timeout(api_base_url, bot_token, REQUEST_TIMEOUT)
    }

    /// As [`FrankensteinTelegramSender::new`], a whole call timing out after `timeout` (and
    /// connecting after at most 10 s of it): a Bot API server that accepts and stays silent
    /// costs an attempt ([`SendOutcome::Transient`]), never a worker.
    pub fn with_timeout(api_base_url: &str, bot_token: &str, timeout: Duration) -> Self {
        let api_base_url = api_base_url.trim_end_matches('/').to_owned();
        let client = frankenstein::reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()
            .unwrap_or_else(|_| frankenstein::reqwest::Client::new());
        let bot = Bot::builder()
            .api_url(format!("{api_base_url}/bot{bot_token}"))
            .client(client)
            .build();
        Self {
            bot,
            api_base_url,
            bot_token: bot_token.to_owned(),
        }
    }

    /// The Bot API server this sender talks to (without the token).
    pub fn api_base_url(&self) -> &str {
        &self.api_base_url
    }

    fn params(message: &TelegramMessage) -> SendMessageParams {
        let chat_id = match message.chat_id.as_i64() {
            Some(id) => ChatId::Integer(id),
            None => ChatId::String(message.chat_id.as_str().to_owned()),
        };
        let reply_markup = message.button.as_ref().map(|button| {
            ReplyMarkup::InlineKeyboardMarkup(
                InlineKeyboardMarkup::builder()
                    .inline_keyboard(vec![vec![InlineKeyboardButton::builder()
                        .text(button.label.as_str())
                        .url(button.url.as_str())
                        .build()]])
                    .build(),
            )
        });
        SendMessageParams::builder()
            .chat_id(chat_id)
            .text(message.html.as_str())
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions::DISABLED)
            .maybe_reply_markup(reply_markup)
            .build()
    }

    /// Removes the token from text that may have picked it up (a URL in an error, an echoing
    /// proxy), so no error string can leak it.
    fn scrub(&self, text: String) -> String {
        if self.bot_token.is_empty() {
            text
        } else {
            text.replace(&self.bot_token, "<bot-token>")
        }
    }

    fn classify(&self, error: frankenstein::Error) -> SendOutcome {
        match error {
            frankenstein::Error::Api(answer) => {
                let description = self.scrub(answer.description);
                match answer.error_code {
                    429 => SendOutcome::RateLimited {
                        retry_after: answer
                            .parameters
                            .and_then(|p| p.retry_after)
                            .map_or(DEFAULT_RETRY_AFTER, |s| Duration::from_secs(s.into())),
                    },
                    400..=499 => SendOutcome::Permanent(format!(
                        "Telegram refused the message ({}): {description}",
                        answer.error_code
                    )),
                    code => SendOutcome::Transient(format!(
                        "Telegram failed to take the message ({code}): {description}"
                    )),
                }
            }
            frankenstein::Error::HttpReqwest(error) => {
                // frankenstein already dropped the URL (and so the token) from the error.
                let mut text = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                SendOutcome::Transient(
                    self.scrub(format!("the Telegram Bot API could not be reached: {text}")),
                )
            }
            frankenstein::Error::JsonDecode { source, .. } => SendOutcome::Transient(format!(
                "the Telegram Bot API answered something that is not a Bot API answer: {source}"
            )),
            other => SendOutcome::Transient(self.scrub(format!("Telegram call failed: {other}"))),
        }
    }
}

#[async_trait]
impl TelegramSender for FrankensteinTelegramSender {
    #[tracing::instrument(
        name = "telegram.send",
        skip_all,
        fields(delivery_id = %message.delivery_id)
    )]
    async fn send(&self, message: &TelegramMessage) -> SendOutcome {
        let outcome = match self.bot.send_message(&Self::params(message)).await {
            Ok(answer) => SendOutcome::Sent {
                provider_message_id: answer.result.message_id.to_string(),
            },
            Err(error) => self.classify(error),
        };
        match &outcome {
            SendOutcome::Sent {
                provider_message_id,
            } => tracing::info!(%provider_message_id, "telegram message accepted"),
            other => tracing::warn!(outcome = ?other, "telegram message not accepted"),
        }
        outcome
    }
}

impl fmt::Debug for FrankensteinTelegramSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrankensteinTelegramSender")
            .field("api_base_url", &self.api_base_url)
            .field("bot_token", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_application::ports::TelegramButton;
    use clairon_domain::{DeliveryId, TelegramChatId};

    fn message(chat_id: &str, button: bool) -> TelegramMessage {
        TelegramMessage {
            delivery_id: DeliveryId::parse("d-1").unwrap(),
            chat_id: TelegramChatId::parse(chat_id).unwrap(),
            html: "<b>Hi</b>".to_owned(),
            button: button.then(|| TelegramButton {
                label: "Open".to_owned(),
                url: "https://clairon.example/n/1".to_owned(),
            }),
        }
    }

    #[test]
    fn a_numeric_chat_id_is_sent_as_an_integer_with_html_and_a_url_button() {
        let json = serde_json::to_value(FrankensteinTelegramSender::params(&message(
            "-1001234", true,
        )))
        .unwrap();
        assert_eq!(json["chat_id"], serde_json::json!(-1001234));
        assert_eq!(json["parse_mode"], "HTML");
        assert_eq!(json["link_preview_options"]["is_disabled"], true);
        assert_eq!(
            json["reply_markup"],
            serde_json::json!({"inline_keyboard": [[{"text": "Open", "url": "https://clairon.example/n/1"}]]})
        );
    }

    #[test]
    fn a_username_chat_id_is_sent_as_a_string_without_markup() {
        let json = serde_json::to_value(FrankensteinTelegramSender::params(&message(
            "@clairon_news",
            false,
        )))
        .unwrap();
        assert_eq!(json["chat_id"], "@clairon_news");
        assert!(json.get("reply_markup").is_none(), "{json}");
    }

    #[test]
    fn the_debug_form_hides_the_token() {
        let sender = FrankensteinTelegramSender::new("http://127.0.0.1:9/", "42:SECRET-token");
        let debug = format!("{sender:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("http://127.0.0.1:9"), "{debug}");
        assert_eq!(sender.api_base_url(), "http://127.0.0.1:9");
    }
}
