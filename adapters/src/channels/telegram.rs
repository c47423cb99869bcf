//! The Telegram channel: [`FrankensteinTelegramSender`] implements the [`TelegramSender`] port
//! with frankenstein's reqwest client, calling the Bot API's `sendMessage` method
//! (<https://core.telegram.org/bots/api#sendmessage>).
//!
//! A text longer than the Bot API takes (4,096 characters after entity parsing) is shortened
//! before it is sent ([`fit_telegram_html`]), at a safe boundary, with "…", every tag left open
//! closed, and the action link kept: the inline button is untouched, and a message without one
//! keeps its last link.
//!
//! It classifies the Bot API's answers (<https://core.telegram.org/bots/api#making-requests>:
//! `{"ok":false,"error_code":…,"description":…,"parameters":{"retry_after":…}}`) into
//! [`SendOutcome`]s. It knows nothing of deliveries, retries or templates, and the bot token,
//! which sits in every request path, never reaches a log line, an error string or a `Debug`
//! output.

use std::borrow::Cow;
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

/// The longest message text the Bot API takes: 4,096 characters after entity parsing, that is of
/// the text the reader sees (HTML tags and entity escapes not counted), counted as Telegram counts
/// them, in UTF-16 code units (Bot API, `sendMessage`: "1-4096 characters after entities
/// parsing"; longer texts are refused with "Bad Request: message is too long").
pub const MAX_TEXT_LEN: usize = 4096;

/// A piece of a Telegram HTML text.
#[derive(Debug, Clone, Copy)]
enum Piece<'a> {
    /// `<name …>` (`closing`: `</name>`), as written.
    Tag {
        raw: &'a str,
        name: &'a str,
        closing: bool,
    },
    /// Visible text: one character, or one entity (`&amp;`, `&#128512;`), as written, with its
    /// length in UTF-16 code units once parsed.
    Text { raw: &'a str, units: usize },
}

/// Splits `html` into tags and visible characters. Never fails: a `<` that opens no tag and an
/// `&` that opens no entity count as the characters they are (Telegram refuses them, but that is
/// the template's problem, not the cut's).
fn pieces(html: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(c) = html[at..].chars().next() {
        let rest = &html[at..];
        if c == '<' {
            if let Some(end) = tag_end(rest) {
                let raw = &rest[..=end];
                let inner = raw[1..raw.len() - 1].trim_start();
                let (closing, inner) = match inner.strip_prefix('/') {
                    Some(name) => (true, name.trim_start()),
                    None => (false, inner),
                };
                let name_len = inner
                    .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
                    .unwrap_or(inner.len());
                out.push(Piece::Tag {
                    raw,
                    name: &inner[..name_len],
                    closing,
                });
                at += raw.len();
                continue;
            }
        }
        if c == '&' {
            if let Some(len) = rest
                .char_indices()
                .take(12)
                .find(|(_, c)| *c == ';')
                .map(|(i, _)| i + 1)
            {
                let raw = &rest[..len];
                out.push(Piece::Text {
                    raw,
                    units: entity_units(&raw[1..len - 1]),
                });
                at += len;
                continue;
            }
        }
        let raw = &rest[..c.len_utf8()];
        out.push(Piece::Text {
            raw,
            units: c.len_utf16(),
        });
        at += raw.len();
    }
    out
}

/// The byte index of the `>` that closes the tag `rest` starts with, skipping quoted attribute
/// values; `None` when it is not a tag.
fn tag_end(rest: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in rest.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            (None, '<') => return None,
            (None, _) => {}
        }
    }
    None
}

/// How many UTF-16 code units the entity `name` (between `&` and `;`) stands for.
fn entity_units(name: &str) -> usize {
    let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => name.strip_prefix('#').and_then(|dec| dec.parse().ok()),
    };
    code.and_then(char::from_u32).map_or(1, char::len_utf16)
}

/// The visible length of `pieces`, in UTF-16 code units.
fn visible_units(pieces: &[Piece<'_>]) -> usize {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text { units, .. } => *units,
            Piece::Tag { .. } => 0,
        })
        .sum()
}

/// The last whole `<a …>…</a>` of `pieces`, as a range of them.
fn last_link(pieces: &[Piece<'_>]) -> Option<std::ops::Range<usize>> {
    let end = pieces.iter().rposition(
        |p| matches!(p, Piece::Tag { name, closing: true, .. } if name.eq_ignore_ascii_case("a")),
    )?;
    let start = pieces[..end].iter().rposition(
        |p| matches!(p, Piece::Tag { name, closing: false, .. } if name.eq_ignore_ascii_case("a")),
    )?;
    Some(start..end + 1)
}

/// `html`, a text in Telegram's HTML parse mode, fitted to `max` visible characters (UTF-16 code
/// units after entity parsing, as the Bot API counts them; [`MAX_TEXT_LEN`] for `sendMessage`).
///
/// A text that fits is returned as is. A longer one is cut at a safe boundary — never inside a
/// tag, an entity or a surrogate pair, at the last space of the last tenth of the room when there
/// is one — then ends with "…", and every tag still open there is closed, innermost first. With
/// `keep_last_link` (a message without an inline button, whose action link can only be in the
/// text), the text's last link, when the cut would drop it, is kept after the "…" on a line of
/// its own (unless it alone would take half the room).
pub fn fit_telegram_html(html: &str, max: usize, keep_last_link: bool) -> Cow<'_, str> {
    let all = pieces(html);
    if visible_units(&all) <= max {
        return Cow::Borrowed(html);
    }
    // The link to keep: the text's last one, when a plain cut would lose it and it is short
    // enough to leave room for the text.
    let link = keep_last_link
        .then(|| last_link(&all))
        .flatten()
        .filter(|range| {
            visible_units(&all[..range.end]) > max.saturating_sub(1)
                && visible_units(&all[range.clone()]) < max / 2
        });
    // What is cut, and the room it has: all but the "…" (and the kept link, on its own line).
    let (body, room) = match &link {
        Some(range) => (
            &all[..range.start],
            max.saturating_sub(2 + visible_units(&all[range.clone()])),
        ),
        None => (&all[..], max.saturating_sub(1)),
    };
    let mut out = String::with_capacity(html.len().min(8 * max));
    let mut open: Vec<&str> = Vec::new();
    let mut used = 0;
    // The last space written: where the output stood, how much was visible, the tags open.
    let mut space: Option<(usize, usize, Vec<&str>)> = None;
    for piece in body {
        match *piece {
            Piece::Tag { raw, name, closing } => {
                if closing {
                    if let Some(at) = open.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                        open.truncate(at);
                    }
                } else {
                    open.push(name);
                }
                out.push_str(raw);
            }
            Piece::Text { raw, units } => {
                if used + units > room {
                    break;
                }
                if raw.chars().all(char::is_whitespace) {
                    space = Some((out.len(), used, open.clone()));
                }
                out.push_str(raw);
                used += units;
            }
        }
    }
    // Back to the last space when it is in the last tenth of the room, so no word is cut in
    // two; whatever was opened after it goes with it.
    if let Some((at, used_there, open_there)) = space {
        if used_there >= room - room / 10 {
            out.truncate(at);
            open = open_there;
        }
    }
    out.truncate(out.trim_end().len());
    out.push('…');
    for name in open.iter().rev() {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    if let Some(range) = link {
        out.push('\n');
        for piece in &all[range] {
            match piece {
                Piece::Tag { raw, .. } | Piece::Text { raw, .. } => out.push_str(raw),
            }
        }
    }
    Cow::Owned(out)
}

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
        let text = fit_telegram_html(&message.html, MAX_TEXT_LEN, message.button.is_none());
        if let Cow::Owned(_) = &text {
            tracing::info!(
                delivery_id = %message.delivery_id,
                "telegram text shortened to the Bot API's {MAX_TEXT_LEN} characters"
            );
        }
        SendMessageParams::builder()
            .chat_id(chat_id)
            .text(text.into_owned())
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

    /// What the reader sees of `html`, and its length as Telegram counts it.
    fn visible(html: &str) -> (String, usize) {
        let shown: String = pieces(html)
            .iter()
            .filter_map(|p| match p {
                Piece::Text { raw, .. } => {
                    Some(html_escape::decode_html_entities(raw).into_owned())
                }
                Piece::Tag { .. } => None,
            })
            .collect();
        let units = shown.encode_utf16().count();
        (shown, units)
    }

    #[test]
    fn a_text_that_fits_is_sent_as_it_is() {
        let html = "<b>Répétition</b> &amp; co";
        assert!(matches!(
            fit_telegram_html(html, 15, false),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_long_text_is_cut_at_a_space_with_an_ellipsis_and_its_tags_closed() {
        let html = format!("<b>Titre</b>\n\n<i>{}</i>", "mot ".repeat(3_000));

        let fitted = fit_telegram_html(&html, MAX_TEXT_LEN, false);

        let (shown, units) = visible(&fitted);
        assert!(units <= MAX_TEXT_LEN, "{units} characters after parsing");
        assert!(units > MAX_TEXT_LEN - 10, "the room is used: {units}");
        assert!(
            fitted.ends_with("mot…</i>"),
            "cut after a word, <i> closed: {}",
            &fitted[fitted.len() - 20..]
        );
        assert!(shown.starts_with("Titre"));
    }

    #[test]
    fn an_entity_or_a_tag_is_never_cut_in_two() {
        // Every visible character is an entity, and tags open and close all along.
        let html = "<u>&amp;</u>&#128512;".repeat(2_000);

        let fitted = fit_telegram_html(&html, 100, false);

        let (_, units) = visible(&fitted);
        assert!(units <= 100, "{units}");
        for piece in pieces(&fitted) {
            if let Piece::Text { raw, .. } = piece {
                assert!(
                    raw.len() == 1 || raw.starts_with('&') || raw == "…",
                    "only whole entities and the ellipsis: {raw:?}"
                );
            }
        }
        let opened = fitted.matches("<u>").count();
        assert_eq!(
            opened,
            fitted.matches("</u>").count(),
            "every <u> is closed: {fitted}"
        );
    }

    #[test]
    fn characters_outside_the_bmp_count_twice_as_telegram_counts_them() {
        let html = "😀".repeat(100);

        let fitted = fit_telegram_html(&html, 11, false);

        assert_eq!(fitted, format!("{}…", "😀".repeat(5)), "5 × 2 units + 1");
    }

    #[test]
    fn without_a_button_the_last_link_of_the_text_is_kept_after_the_cut() {
        let link = "<a href=\"https://planning.example.org/p/1?a=1&amp;b=2\">Voir le planning</a>";
        let html = format!("<b>Rappel</b> {} {link}", "texte ".repeat(2_000));

        let fitted = fit_telegram_html(&html, MAX_TEXT_LEN, true);
        let without = fit_telegram_html(&html, MAX_TEXT_LEN, false);

        assert!(
            fitted.ends_with(&format!("…\n{link}")),
            "the link is kept: {}",
            &fitted[fitted.len() - 120..]
        );
        assert!(visible(&fitted).1 <= MAX_TEXT_LEN);
        assert!(
            !without.contains("href"),
            "with a button, the text is simply cut"
        );
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
