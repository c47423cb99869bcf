//! A stand-in for the Telegram Bot API's `sendMessage`: a real HTTP server on `127.0.0.1:0`
//! that checks each request against the documented shape
//! (<https://core.telegram.org/bots/api#sendmessage>, "Formatting options" → "HTML style",
//! <https://core.telegram.org/bots/api#inlinekeyboardmarkup>), answers like the real API
//! (`{"ok":true,"result":Message}` or `{"ok":false,"error_code":…,"description":…}`), records
//! what it accepted and why it refused the rest, and plays scripted failures.
//!
//! It runs actix-web on a thread of its own with its own actix system, so it works the same under
//! `#[tokio::test]`, `#[actix_web::test]` or any other Tokio runtime, and is stopped when dropped.
//! It knows nothing of Clairon's senders: it only speaks the Bot API.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

/// The longest message text the Bot API takes: 4096 characters after entity parsing, counted as
/// Telegram counts them, in UTF-16 code units.
pub const MAX_TEXT_LEN: usize = 4096;

/// The HTML tags Telegram's HTML parse mode supports (Bot API, "HTML style").
pub const ALLOWED_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

/// A `chat_id` as a request carried it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StubChatId {
    /// A JSON integer.
    Integer(i64),
    /// A JSON string (an `@username`, or digits sent as a string).
    Text(String),
}

impl fmt::Display for StubChatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Integer(id) => write!(f, "{id}"),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// A well-formed `sendMessage` request the stub received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedTelegramMessage {
    /// The id the stub answered with (1, 2, 3, … in order of acceptance); `None` for a request
    /// answered with an injected failure.
    pub message_id: Option<i32>,
    /// `chat_id` as sent.
    pub chat_id: StubChatId,
    /// `text` as sent (with its HTML tags and entities).
    pub text: String,
    /// `text` as Telegram would show it: tags removed, entities decoded.
    pub visible_text: String,
    /// `parse_mode`, when sent.
    pub parse_mode: Option<String>,
    /// `reply_markup`, when sent (parsed, if it came as a JSON string).
    pub reply_markup: Option<Value>,
    /// The whole JSON body, for anything else a test wants to check.
    pub body: Value,
}

#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    description: String,
    retry_after: Option<u16>,
}

impl Failure {
    fn response(&self) -> HttpResponse {
        let mut body = json!({
            "ok": false,
            "error_code": self.status,
            "description": self.description,
        });
        if let Some(seconds) = self.retry_after {
            body["parameters"] = json!({ "retry_after": seconds });
        }
        HttpResponse::build(
            actix_web::http::StatusCode::from_u16(self.status)
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
        )
        .json(body)
    }
}

struct State {
    token: String,
    bot_id: i64,
    next_message_id: i32,
    messages: Vec<ReceivedTelegramMessage>,
    failed: Vec<ReceivedTelegramMessage>,
    rejected: Vec<String>,
    scripted: VecDeque<Failure>,
    chat_rules: HashMap<String, Failure>,
}

impl State {
    fn refuse(&mut self, status: u16, description: String, context: &str) -> HttpResponse {
        self.rejected
            .push(format!("{status} {description} ({context})"));
        Failure {
            status,
            description,
            retry_after: None,
        }
        .response()
    }
}

/// A local Bot API server for `sendMessage`.
///
/// ```ignore
/// let stub = TelegramStub::start("123456:TEST-token").await;
/// let sender = FrankensteinTelegramSender::new(&stub.base_url(), "123456:TEST-token");
/// stub.fail_next(429, "Too Many Requests: retry after 7", Some(7));
/// // … send, then:
/// assert_eq!(stub.messages().len(), 1);
/// ```
///
/// It checks, in this order, and refuses with the real API's answers:
/// - the path is `/bot<token>/sendMessage` with the token it was started with → else 404
///   `{"ok":false,"error_code":404,"description":"Not Found"}`;
/// - the request is a `POST` with a JSON object body;
/// - `chat_id` is an integer or a non-empty string (`@username` or digits);
/// - `parse_mode`, if present, is `HTML`, `MarkdownV2` or `Markdown`;
/// - with `HTML`, `text` uses only [`ALLOWED_TAGS`] (`a` with `href`, `span` with
///   `class="tg-spoiler"`, `tg-emoji` with a numeric `emoji-id`), properly nested and closed,
///   nothing nested in `code` and only `code` in `pre`, and only the entities `&lt; &gt; &amp;
///   &quot;` and numeric ones; a bare `<`, `>` or `&` is refused, as the Bot API's rule says
///   they "must be replaced" (the live parser is more lenient with `>`) → else 400
///   `Bad Request: can't parse entities: …`;
/// - the text is not blank and at most [`MAX_TEXT_LEN`] UTF-16 code units after parsing;
/// - `reply_markup.inline_keyboard`, if present, is an array of arrays of buttons, each with a
///   non-empty `text` and an `http`, `https` or `tg` `url`.
///
/// A well-formed request is then answered with the next scripted failure if any
/// ([`Self::fail_next`]), else with the rule of its chat if any ([`Self::fail_chat`]), else with
/// `{"ok":true,"result":{"message_id":n,"date":…,"chat":{"id":…,"type":"private"},"text":…}}`,
/// message ids counting up from 1.
pub struct TelegramStub {
    base_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl TelegramStub {
    /// Starts a stub for the bot `token` on a free loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound or the server thread cannot start.
    pub async fn start(token: &str) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .expect("the Telegram stub could not bind a loopback port");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            bot_id: token
                .split(':')
                .next()
                .and_then(|id| id.parse().ok())
                .unwrap_or(1),
            next_message_id: 1,
            messages: Vec::new(),
            failed: Vec::new(),
            rejected: Vec::new(),
            scripted: VecDeque::new(),
            chat_rules: HashMap::new(),
        }));
        let data = web::Data::from(Arc::clone(&state));
        let handle =
            super::serve_stand_in(format!("telegram-stub-{port}"), listener, data, answer).await;
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// The Bot API base URL to configure a sender with: `http://127.0.0.1:PORT` (requests then
    /// go to `{base_url}/bot<token>/sendMessage`).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The messages accepted so far (answered with `ok: true`), in order.
    pub fn messages(&self) -> Vec<ReceivedTelegramMessage> {
        self.lock().messages.clone()
    }

    /// Well-formed requests answered with an injected failure, in order.
    pub fn failed_attempts(&self) -> Vec<ReceivedTelegramMessage> {
        self.lock().failed.clone()
    }

    /// Why malformed requests were refused: `"<status> <description> (<context>)"`, in order.
    pub fn rejected(&self) -> Vec<String> {
        self.lock().rejected.clone()
    }

    /// Answers the next well-formed request with HTTP `status` and the Bot API error
    /// `description` (and `parameters.retry_after` in seconds, when given) instead of delivering
    /// it. Calls queue up; each is used once.
    pub fn fail_next(&self, status: u16, description: &str, retry_after: Option<u16>) {
        self.lock().scripted.push_back(Failure {
            status,
            description: description.to_owned(),
            retry_after,
        });
    }

    /// Answers every well-formed request to `chat_id` (as sent: `"424242"` or `"@channel"`) with
    /// HTTP `status` and `description`, until the stub stops.
    pub fn fail_chat(&self, chat_id: &str, status: u16, description: &str) {
        self.lock().chat_rules.insert(
            chat_id.to_owned(),
            Failure {
                status,
                description: description.to_owned(),
                retry_after: None,
            },
        );
    }

    /// The user of `chat_id` blocked the bot: 403 `Forbidden: bot was blocked by the user`.
    pub fn block_chat(&self, chat_id: &str) {
        self.fail_chat(chat_id, 403, "Forbidden: bot was blocked by the user");
    }

    /// `chat_id` does not exist for the bot: 400 `Bad Request: chat not found`.
    pub fn unknown_chat(&self, chat_id: &str) {
        self.fail_chat(chat_id, 400, "Bad Request: chat not found");
    }

    /// Waits until at least `count` messages were accepted and returns them all.
    ///
    /// # Panics
    /// After `timeout`, listing what was received and refused.
    pub async fn wait_for_messages(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedTelegramMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "the Telegram stub got {} of {count} messages in {timeout:?}; received: {messages:#?}; \
                 failed attempts: {:#?}; refused: {:#?}",
                messages.len(),
                self.failed_attempts(),
                self.rejected()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server and waits until it has.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for TelegramStub {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; the returned future only waits for it.
        drop(self.handle.stop(false));
    }
}

impl fmt::Debug for TelegramStub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramStub")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

async fn answer(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let prefix = format!("/bot{}/", state.token);
    let path = request.path();
    if path != format!("{prefix}sendMessage") {
        let shown = match path.strip_prefix(&prefix) {
            Some(method) => format!("{} /bot<token>/{method}", request.method()),
            None => format!(
                "{} {} (not this bot's token)",
                request.method(),
                redact_bot_path(path)
            ),
        };
        return state.refuse(404, "Not Found".to_owned(), &shown);
    }
    if request.method() != Method::POST {
        return state.refuse(
            400,
            "Bad Request: the stand-in only takes POST requests".to_owned(),
            "method",
        );
    }
    let json_body = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_body {
        return state.refuse(
            400,
            "Bad Request: the stand-in only takes application/json bodies".to_owned(),
            "content-type",
        );
    }
    let mut received = match check_send_message(&body) {
        Ok(received) => received,
        Err(description) => return state.refuse(400, description, "sendMessage"),
    };
    let chat_key = received.chat_id.to_string();
    let failure = state
        .scripted
        .pop_front()
        .or_else(|| state.chat_rules.get(&chat_key).cloned());
    if let Some(failure) = failure {
        state.failed.push(received);
        return failure.response();
    }
    let message_id = state.next_message_id;
    state.next_message_id += 1;
    received.message_id = Some(message_id);
    let chat = match &received.chat_id {
        StubChatId::Integer(id) => json!({ "id": id, "type": "private" }),
        StubChatId::Text(name) => match name.parse::<i64>() {
            Ok(id) => json!({ "id": id, "type": "private" }),
            Err(_) => json!({
                "id": -1_001_000_000_001_i64,
                "type": "channel",
                "username": name.trim_start_matches('@'),
            }),
        },
    };
    let date = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let result = json!({
        "message_id": message_id,
        "from": {
            "id": state.bot_id,
            "is_bot": true,
            "first_name": "Clairon stub",
            "username": "clairon_stub_bot",
        },
        "date": date,
        "chat": chat,
        "text": received.visible_text,
    });
    state.messages.push(received);
    HttpResponse::Ok().json(json!({ "ok": true, "result": result }))
}

/// `/bot123:abc/sendMessage` → `/bot<token>/sendMessage`, so no token lands in a report.
fn redact_bot_path(path: &str) -> String {
    match path.strip_prefix("/bot") {
        Some(rest) => match rest.find('/') {
            Some(slash) => format!("/bot<token>{}", &rest[slash..]),
            None => "/bot<token>".to_owned(),
        },
        None => path.to_owned(),
    }
}

fn check_send_message(body: &[u8]) -> Result<ReceivedTelegramMessage, String> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| format!("Bad Request: the request body is not JSON: {e}"))?;
    let fields = body
        .as_object()
        .ok_or_else(|| "Bad Request: the request body is not a JSON object".to_owned())?;
    let chat_id = match fields.get("chat_id") {
        None | Some(Value::Null) => return Err("Bad Request: chat_id is empty".to_owned()),
        Some(Value::Number(n)) => StubChatId::Integer(
            n.as_i64()
                .ok_or_else(|| "Bad Request: chat_id is not a 64-bit integer".to_owned())?,
        ),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err("Bad Request: chat_id is empty".to_owned())
        }
        Some(Value::String(s)) if s.parse::<i64>().is_ok() || s.starts_with('@') => {
            StubChatId::Text(s.clone())
        }
        Some(Value::String(_)) => return Err("Bad Request: chat not found".to_owned()),
        Some(_) => return Err("Bad Request: chat_id must be an Integer or a String".to_owned()),
    };
    let text = match fields.get("text") {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => return Err("Bad Request: message text is empty".to_owned()),
        Some(_) => return Err("Bad Request: field \"text\" must be of type String".to_owned()),
    };
    let parse_mode = match fields.get("parse_mode") {
        None | Some(Value::Null) => None,
        Some(Value::String(mode))
            if matches!(mode.as_str(), "HTML" | "MarkdownV2" | "Markdown") =>
        {
            Some(mode.clone())
        }
        Some(other) => return Err(format!("Bad Request: unsupported parse_mode {other}")),
    };
    let visible_text = if parse_mode.as_deref() == Some("HTML") {
        parse_telegram_html(&text)
            .map_err(|reason| format!("Bad Request: can't parse entities: {reason}"))?
    } else {
        text.clone()
    };
    if visible_text.trim().is_empty() {
        return Err("Bad Request: message text is empty".to_owned());
    }
    if visible_text.encode_utf16().count() > MAX_TEXT_LEN {
        return Err("Bad Request: message is too long".to_owned());
    }
    let reply_markup = match fields.get("reply_markup") {
        None | Some(Value::Null) => None,
        Some(Value::String(serialized)) => {
            Some(serde_json::from_str(serialized).map_err(|_| {
                "Bad Request: can't parse reply keyboard markup JSON object".to_owned()
            })?)
        }
        Some(markup) => Some(markup.clone()),
    };
    if let Some(markup) = &reply_markup {
        check_reply_markup(markup)?;
    }
    Ok(ReceivedTelegramMessage {
        message_id: None,
        chat_id,
        text,
        visible_text,
        parse_mode,
        reply_markup,
        body,
    })
}

fn check_reply_markup(markup: &Value) -> Result<(), String> {
    let markup = markup
        .as_object()
        .ok_or_else(|| "Bad Request: can't parse reply keyboard markup JSON object".to_owned())?;
    let Some(keyboard) = markup.get("inline_keyboard") else {
        return Ok(());
    };
    let not_rows = || {
        "Bad Request: field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of \
         Arrays"
            .to_owned()
    };
    for row in keyboard.as_array().ok_or_else(not_rows)? {
        for button in row.as_array().ok_or_else(not_rows)? {
            check_button(button)?;
        }
    }
    Ok(())
}

fn check_button(button: &Value) -> Result<(), String> {
    const PREFIX: &str = "Bad Request: can't parse inline keyboard button";
    let button: &Map<String, Value> = button
        .as_object()
        .ok_or_else(|| format!("{PREFIX}: InlineKeyboardButton must be an Object"))?;
    match button.get("text") {
        Some(Value::String(text)) if !text.trim().is_empty() => {}
        Some(Value::String(_)) => return Err(format!("{PREFIX}: Text must be non-empty")),
        _ => return Err(format!("{PREFIX}: Field \"text\" must be of type String")),
    }
    match button.get("url") {
        Some(Value::String(url)) => {
            let lower = url.to_ascii_lowercase();
            if ["http://", "https://", "tg://"]
                .iter()
                .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len())
            {
                Ok(())
            } else {
                Err(format!(
                    "Bad Request: inline keyboard button URL '{url}' is invalid: Unsupported URL protocol"
                ))
            }
        }
        Some(_) => Err(format!("{PREFIX}: Field \"url\" must be of type String")),
        None => Err(format!(
            "{PREFIX}: Text buttons are unallowed in the inline keyboard (the stand-in only knows \
             URL buttons)"
        )),
    }
}

/// Parses `text` as Telegram's HTML parse mode does and returns what the reader would see.
///
/// # Errors
/// The reason, worded like the Bot API's `can't parse entities` descriptions.
pub fn parse_telegram_html(text: &str) -> Result<String, String> {
    let mut visible = String::with_capacity(text.len());
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        match c {
            '<' => {
                let end = tag_end(text, at)?;
                let inner = &text[at + 1..end];
                if let Some(closing) = inner.strip_prefix('/') {
                    let name = closing.trim().to_ascii_lowercase();
                    match open.pop() {
                        Some((top, _)) if top == name => {}
                        Some((top, _)) => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {at}, expected \"</{top}>\", found \"</{name}>\""
                            ))
                        }
                        None => return Err(format!("Unexpected end tag at byte offset {at}")),
                    }
                } else {
                    let name = start_tag(inner, at, open.last().map(|(n, _)| n.as_str()))?;
                    open.push((name, at));
                }
                at = end + 1;
            }
            '&' => {
                let (decoded, len) = entity(text, at)?;
                visible.push(decoded);
                at += len;
            }
            '>' => {
                return Err(format!(
                    "Character '>' at byte offset {at} is not part of a tag and must be escaped as &gt;"
                ))
            }
            _ => {
                visible.push(c);
                at += c.len_utf8();
            }
        }
    }
    match open.pop() {
        Some((name, at)) => Err(format!(
            "Can't find end tag corresponding to start tag \"{name}\" at byte offset {at}"
        )),
        None => Ok(visible),
    }
}

/// The byte index of the `>` closing the tag opened at `start`, skipping quoted values.
fn tag_end(text: &str, start: usize) -> Result<usize, String> {
    let mut quote: Option<char> = None;
    for (offset, c) in text[start + 1..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Ok(start + 1 + offset),
            (None, '<') => break,
            (None, _) => {}
        }
    }
    Err(format!("Unclosed start tag at byte offset {start}"))
}

/// Checks a start tag's name, attributes and nesting; returns its lower-case name.
fn start_tag(inner: &str, at: usize, parent: Option<&str>) -> Result<String, String> {
    let name_end = inner
        .find(|c: char| c.is_whitespace())
        .unwrap_or(inner.len());
    let name = inner[..name_end].to_ascii_lowercase();
    if !ALLOWED_TAGS.contains(&name.as_str()) {
        return Err(format!(
            "Unsupported start tag \"{name}\" at byte offset {at}"
        ));
    }
    match parent {
        Some("code") => {
            return Err(format!(
                "Tag \"{name}\" can't be nested inside \"code\" at byte offset {at}"
            ))
        }
        Some("pre") if name != "code" => {
            return Err(format!(
                "Tag \"{name}\" can't be nested inside \"pre\" at byte offset {at}"
            ))
        }
        _ => {}
    }
    let attributes =
        attributes(&inner[name_end..]).map_err(|e| format!("{e} at byte offset {at}"))?;
    let attribute = |wanted: &str| {
        attributes
            .iter()
            .find(|(n, _)| n == wanted)
            .map(|(_, v)| v.as_str())
    };
    match name.as_str() {
        "a" if attribute("href").is_none_or(|href| href.trim().is_empty()) => Err(format!(
            "Tag \"a\" must have a non-empty href attribute at byte offset {at}"
        )),
        "span" if attribute("class") != Some("tg-spoiler") => Err(format!(
            "Tag \"span\" must have class \"tg-spoiler\" at byte offset {at}"
        )),
        "tg-emoji"
            if !attribute("emoji-id")
                .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit())) =>
        {
            Err(format!(
                "Tag \"tg-emoji\" must have a numeric emoji-id at byte offset {at}"
            ))
        }
        _ => Ok(name),
    }
}

/// Parses ` name="value" name='value' name=value name`; values have their entities decoded.
fn attributes(mut rest: &str) -> Result<Vec<(String, String)>, String> {
    let mut found = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(found);
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("Invalid attribute name \"{name}\""));
        }
        rest = rest[name_end..].trim_start();
        let raw_value = if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let close = after[1..]
                        .find(q)
                        .ok_or_else(|| format!("Unclosed value of attribute \"{name}\""))?;
                    rest = &after[close + 2..];
                    &after[1..close + 1]
                }
                _ => {
                    let end = after
                        .find(|c: char| c.is_whitespace())
                        .unwrap_or(after.len());
                    rest = &after[end..];
                    &after[..end]
                }
            }
        } else {
            ""
        };
        found.push((name.to_ascii_lowercase(), decode_entities(raw_value)?));
    }
}

fn decode_entities(raw: &str) -> Result<String, String> {
    let mut decoded = String::with_capacity(raw.len());
    let mut at = 0;
    while let Some(c) = raw[at..].chars().next() {
        if c == '&' {
            let (d, len) = entity(raw, at)?;
            decoded.push(d);
            at += len;
        } else {
            decoded.push(c);
            at += c.len_utf8();
        }
    }
    Ok(decoded)
}

/// Decodes the entity at `at` (which holds `&`): `&lt; &gt; &amp; &quot;`, `&#NNN;`, `&#xHHH;`.
/// Returns the character and the entity's length in bytes.
fn entity(text: &str, at: usize) -> Result<(char, usize), String> {
    let rest = &text[at..];
    let semicolon = rest
        .char_indices()
        .take(12)
        .find(|(_, c)| *c == ';')
        .map(|(i, _)| i)
        .ok_or_else(|| {
            format!("Character '&' at byte offset {at} is not part of an entity and must be escaped as &amp;")
        })?;
    let name = &rest[1..semicolon];
    let numeric = |digits: &str, radix: u32| {
        u32::from_str_radix(digits, radix)
            .ok()
            .filter(|_| !digits.is_empty())
            .and_then(char::from_u32)
    };
    let decoded = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
            Some(hex) => numeric(hex, 16),
            None => name.strip_prefix('#').and_then(|dec| numeric(dec, 10)),
        },
    };
    decoded
        .map(|c| (c, semicolon + 1))
        .ok_or_else(|| format!("Unsupported HTML entity \"&{name};\" at byte offset {at}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_tag_and_entity_is_accepted() {
        let text = "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s>\
                    <strike>k</strike><del>d</del><span class=\"tg-spoiler\">p</span>\
                    <tg-spoiler>t</tg-spoiler><a href=\"https://x.example/?a=1&amp;b=2\">a</a>\
                    <code>c</code><pre><code class=\"language-rust\">r</code></pre>\
                    <blockquote expandable>q</blockquote><tg-emoji emoji-id=\"5368324170671202286\">👍</tg-emoji>\
                    &lt;&gt;&amp;&quot;&#39;&#x2F;";
        assert_eq!(
            parse_telegram_html(text).unwrap(),
            "bsieunskdptacrq👍<>&\"'/"
        );
    }

    #[test]
    fn unsupported_tags_entities_and_bare_reserved_characters_are_refused() {
        for (text, reason) in [
            ("<div>x</div>", "Unsupported start tag \"div\""),
            ("<b>x</i>", "Unmatched end tag"),
            (
                "<b>x",
                "Can't find end tag corresponding to start tag \"b\"",
            ),
            ("x</b>", "Unexpected end tag"),
            ("a &nbsp; b", "Unsupported HTML entity \"&nbsp;\""),
            ("Tom & Jerry", "must be escaped as &amp;"),
            ("1 < 2", "Unclosed start tag"),
            ("2 > 1", "must be escaped as &gt;"),
            ("<a>x</a>", "href"),
            ("<span>x</span>", "tg-spoiler"),
            ("<code><b>x</b></code>", "can't be nested inside \"code\""),
        ] {
            let err = parse_telegram_html(text).unwrap_err();
            assert!(
                err.contains(reason),
                "{text:?} gave {err:?}, expected {reason:?}"
            );
        }
    }

    #[test]
    fn a_token_is_cut_out_of_a_reported_path() {
        assert_eq!(
            redact_bot_path("/bot1:abc/sendMessage"),
            "/bot<token>/sendMessage"
        );
        assert_eq!(redact_bot_path("/favicon.ico"), "/favicon.ico");
    }
}
