//! A stand-in for Slack's incoming webhooks: a real HTTP server on `127.0.0.1:0` that checks
//! each request against the documented shape (<https://api.slack.com/messaging/webhooks>,
//! <https://api.slack.com/reference/block-kit/blocks>): `POST`, `Content-Type:
//! application/json`, a JSON object with a non-empty `text` and a `blocks` array of known
//! block types, each as Block Kit defines it (a `header` holds `plain_text` of at most 150
//! characters, a `section` text of at most 3,000, a `context` 1 to 10 text elements, an
//! `actions` block 1 to 25 elements whose buttons have a `plain_text` of at most 75 characters
//! and a `url`). A malformed request is refused as Slack does, `400 invalid_blocks` (or
//! `invalid_payload`) and kept in [`SlackStub::rejected`]; a well-formed one is recorded and
//! answered `200 ok`, or what was scripted: `429` with `Retry-After`, `404 no_service`,
//! `403 invalid_token`, `410 channel_not_found`, `500`, each with Slack's plain-text body.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

/// A message the stand-in received, well-formed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSlackMessage {
    /// The path it was posted to (`/services/T…/B…/…`).
    pub path: String,
    /// The body, parsed.
    pub body: Value,
    /// The status the stand-in answered.
    pub answered: u16,
}

impl ReceivedSlackMessage {
    /// The fallback `text`.
    pub fn text(&self) -> &str {
        self.body["text"].as_str().unwrap_or_default()
    }

    /// The first block of `kind` (`header`, `section`, `context`, `actions`), if any.
    pub fn block(&self, kind: &str) -> Option<&Value> {
        self.body["blocks"]
            .as_array()?
            .iter()
            .find(|b| b["type"] == kind)
    }

    /// The `header` block's text.
    pub fn header(&self) -> Option<&str> {
        self.block("header")?["text"]["text"].as_str()
    }

    /// The `section` block's `mrkdwn` text.
    pub fn section(&self) -> Option<&str> {
        self.block("section")?["text"]["text"].as_str()
    }

    /// The `context` block's texts, joined by a space.
    pub fn context(&self) -> Option<String> {
        let elements = self.block("context")?["elements"].as_array()?;
        Some(
            elements
                .iter()
                .filter_map(|e| e["text"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    /// The first button of the `actions` block: its text and URL.
    pub fn button(&self) -> Option<(String, String)> {
        let button = self.block("actions")?["elements"]
            .as_array()?
            .iter()
            .find(|e| e["type"] == "button")?;
        Some((
            button["text"]["text"].as_str()?.to_owned(),
            button["url"].as_str()?.to_owned(),
        ))
    }
}

/// What the stand-in answers a well-formed request with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackAnswer {
    /// `200 ok`.
    Ok,
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    RateLimited(u64),
    /// `404 no_service`: the webhook is disabled, removed or invalid.
    NoService,
    /// `403 invalid_token`: the token behind the URL is revoked.
    InvalidToken,
    /// `410 channel_not_found`: the channel was deleted.
    ChannelNotFound,
    /// `500 Internal Server Error`.
    ServerError,
}

impl SlackAnswer {
    fn status_and_body(&self) -> (u16, &'static str) {
        match self {
            Self::Ok => (200, "ok"),
            Self::RateLimited(_) => (429, "rate_limited"),
            Self::NoService => (404, "no_service"),
            Self::InvalidToken => (403, "invalid_token"),
            Self::ChannelNotFound => (410, "channel_not_found"),
            Self::ServerError => (500, "internal_error"),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    received: Vec<ReceivedSlackMessage>,
    rejected: Vec<String>,
    scripted: VecDeque<SlackAnswer>,
    always: Option<SlackAnswer>,
}

/// A local Slack incoming-webhook endpoint.
pub struct SlackStub {
    base_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl SlackStub {
    /// Starts a stand-in on a free loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound or the server thread cannot start.
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .expect("the Slack stub could not bind a loopback port");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let state = Arc::new(Mutex::new(State::default()));
        let data = web::Data::from(Arc::clone(&state));
        let handle =
            super::serve_stand_in(format!("slack-stub-{port}"), listener, data, answer).await;
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// A webhook URL on this stand-in, shaped as Slack's (`/services/T…/B…/<name>`).
    pub fn webhook_url(&self, name: &str) -> String {
        format!("{}/services/T0CLAIRON/B0CLAIRON/{name}", self.base_url)
    }

    /// Well-formed messages received so far (whatever they were answered), in order.
    pub fn received(&self) -> Vec<ReceivedSlackMessage> {
        self.lock().received.clone()
    }

    /// Why malformed requests were refused, in order.
    pub fn rejected(&self) -> Vec<String> {
        self.lock().rejected.clone()
    }

    /// Answers the next well-formed request with `answer`. Calls queue up; each is used once.
    pub fn answer_next(&self, answer: SlackAnswer) {
        self.lock().scripted.push_back(answer);
    }

    /// Answers every well-formed request with `answer` (after the scripted ones).
    pub fn answer_always(&self, answer: SlackAnswer) {
        self.lock().always = Some(answer);
    }

    /// Waits until at least `count` well-formed messages were answered `200 ok`.
    ///
    /// # Panics
    /// After `timeout`, listing what was received and refused.
    pub async fn wait_for_accepted(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedSlackMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted: Vec<_> = self
                .received()
                .into_iter()
                .filter(|r| r.answered == 200)
                .collect();
            if accepted.len() >= count {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "the Slack stub accepted {} of {count} in {timeout:?}; received: {:#?}; refused: {:#?}",
                accepted.len(),
                self.received(),
                self.rejected()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until at least `count` well-formed messages were received, whatever answered.
    ///
    /// # Panics
    /// After `timeout`, listing what was received and refused.
    pub async fn wait_for_received(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedSlackMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the Slack stub received {} of {count} in {timeout:?}; refused: {:#?}",
                received.len(),
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

impl Drop for SlackStub {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl fmt::Debug for SlackStub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackStub")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Block Kit's limits, in characters.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const BUTTON_TEXT_MAX: usize = 75;
const URL_MAX: usize = 3000;
const BLOCKS_MAX: usize = 50;

fn chars(value: &Value) -> Option<usize> {
    value.as_str().map(|s| s.chars().count())
}

/// A text object of `kind` (`plain_text` or `mrkdwn`, or either when `None`) whose text is 1
/// to `max` characters.
fn text_object(value: &Value, kind: Option<&str>, max: usize, what: &str) -> Result<(), String> {
    let Some(found) = value["type"].as_str() else {
        return Err(format!("{what}: a text object needs a type"));
    };
    if !matches!(found, "plain_text" | "mrkdwn") || kind.is_some_and(|k| k != found) {
        return Err(format!("{what}: text type {found:?}"));
    }
    match chars(&value["text"]) {
        Some(n) if (1..=max).contains(&n) => Ok(()),
        Some(n) => Err(format!("{what}: text of {n} characters (1 to {max})")),
        None => Err(format!("{what}: no text")),
    }
}

fn check_block(block: &Value, i: usize) -> Result<(), String> {
    let what = format!("blocks[{i}]");
    match block["type"].as_str() {
        Some("header") => text_object(&block["text"], Some("plain_text"), HEADER_MAX, &what),
        Some("section") => text_object(&block["text"], None, SECTION_MAX, &what),
        Some("context") => {
            let elements = block["elements"]
                .as_array()
                .ok_or(format!("{what}: context without elements"))?;
            if !(1..=10).contains(&elements.len()) {
                return Err(format!("{what}: {} context elements", elements.len()));
            }
            elements
                .iter()
                .try_for_each(|e| text_object(e, None, SECTION_MAX, &what))
        }
        Some("actions") => {
            let elements = block["elements"]
                .as_array()
                .ok_or(format!("{what}: actions without elements"))?;
            if !(1..=25).contains(&elements.len()) {
                return Err(format!("{what}: {} action elements", elements.len()));
            }
            for element in elements {
                if element["type"] != "button" {
                    return Err(format!("{what}: element type {}", element["type"]));
                }
                text_object(&element["text"], Some("plain_text"), BUTTON_TEXT_MAX, &what)?;
                match chars(&element["url"]) {
                    Some(n) if (1..=URL_MAX).contains(&n) => {}
                    _ => return Err(format!("{what}: a button url of 1 to {URL_MAX} characters")),
                }
            }
            Ok(())
        }
        other => Err(format!("{what}: unknown block type {other:?}")),
    }
}

fn check_message(body: &Value) -> Result<(), String> {
    if !body.is_object() {
        return Err("the body is not a JSON object".into());
    }
    if body["text"].as_str().is_none_or(|t| t.trim().is_empty()) {
        return Err("no text: Slack needs it as the notification fallback".into());
    }
    let blocks = body["blocks"]
        .as_array()
        .ok_or("no blocks array".to_owned())?;
    if !(1..=BLOCKS_MAX).contains(&blocks.len()) {
        return Err(format!("{} blocks", blocks.len()));
    }
    blocks
        .iter()
        .enumerate()
        .try_for_each(|(i, b)| check_block(b, i))
}

async fn answer(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let refuse = |why: String, slack_says: &'static str| {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.rejected.push(why);
        HttpResponse::BadRequest()
            .content_type("text/html")
            .body(slack_says)
    };
    if request.method() != Method::POST {
        return refuse(
            format!("{} instead of POST", request.method()),
            "invalid_payload",
        );
    }
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !content_type.starts_with("application/json") {
        return refuse(format!("Content-Type {content_type:?}"), "invalid_payload");
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return refuse("the body is not JSON".into(), "invalid_payload");
    };
    if let Err(why) = check_message(&parsed) {
        return refuse(why, "invalid_blocks");
    }
    let scripted = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let scripted = state
            .scripted
            .pop_front()
            .or_else(|| state.always.clone())
            .unwrap_or(SlackAnswer::Ok);
        state.received.push(ReceivedSlackMessage {
            path: request.path().to_owned(),
            body: parsed,
            answered: scripted.status_and_body().0,
        });
        scripted
    };
    let (status, text) = scripted.status_and_body();
    let mut response = HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    );
    if let SlackAnswer::RateLimited(seconds) = scripted {
        response.insert_header(("Retry-After", seconds.to_string()));
    }
    response.content_type("text/html").body(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message() -> Value {
        json!({
            "text": "Titre",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Titre"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Corps*"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "lundi"}]},
                {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Ouvrir"}, "url": "https://x.example/"}]}
            ]
        })
    }

    #[test]
    fn the_documented_shape_passes_and_each_broken_rule_is_named() {
        assert_eq!(check_message(&message()), Ok(()));
        let mut no_text = message();
        no_text["text"] = json!("");
        assert!(check_message(&no_text).unwrap_err().contains("no text"));
        let mut long_header = message();
        long_header["blocks"][0]["text"]["text"] = json!("x".repeat(151));
        assert!(check_message(&long_header).unwrap_err().contains("151"));
        let mut mrkdwn_header = message();
        mrkdwn_header["blocks"][0]["text"]["type"] = json!("mrkdwn");
        assert!(check_message(&mrkdwn_header).is_err());
        let mut long_section = message();
        long_section["blocks"][1]["text"]["text"] = json!("é".repeat(3001));
        assert!(check_message(&long_section).unwrap_err().contains("3001"));
        let mut unknown = message();
        unknown["blocks"][2]["type"] = json!("image");
        assert!(check_message(&unknown).unwrap_err().contains("image"));
    }
}
