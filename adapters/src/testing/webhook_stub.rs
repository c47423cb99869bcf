//! A stand-in for a receiver of signed webhooks (Standard Webhooks 1.0): a real HTTP server on
//! `127.0.0.1:0` that checks each request against the specification's shape
//! (<https://www.standardwebhooks.com/>: `POST`, a JSON body, headers `webhook-id`,
//! `webhook-timestamp` as Unix seconds, `webhook-signature` as space-separated `v1,<base64>`
//! entries), records every request, refuses malformed ones with `400`, and answers the others
//! with scripted statuses (`204` by default), a delay, or not at all while "down".
//!
//! It does not verify signatures itself: tests hand what it recorded to the reference
//! implementation (`tests/support/verify_webhook.py`, [`verify_with_reference`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde_json::Value;

/// A request the stand-in received.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedWebhook {
    /// The path (and query) it was posted to.
    pub path: String,
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`, as sent.
    pub timestamp: String,
    /// `webhook-signature`, as sent.
    pub signature: String,
    /// `Content-Type`, as sent.
    pub content_type: String,
    /// The raw body, as signed.
    pub raw_body: String,
    /// The body parsed as JSON.
    pub body: Value,
    /// The status the stand-in answered.
    pub answered: u16,
}

impl ReceivedWebhook {
    /// The three Standard Webhooks headers, as the reference implementation reads them.
    pub fn headers(&self) -> serde_json::Map<String, Value> {
        let mut headers = serde_json::Map::new();
        headers.insert("webhook-id".into(), Value::String(self.id.clone()));
        headers.insert(
            "webhook-timestamp".into(),
            Value::String(self.timestamp.clone()),
        );
        headers.insert(
            "webhook-signature".into(),
            Value::String(self.signature.clone()),
        );
        headers
    }
}

#[derive(Debug, Default)]
struct State {
    received: Vec<ReceivedWebhook>,
    rejected: Vec<String>,
    scripted: VecDeque<u16>,
    always: Option<u16>,
    delay: Option<Duration>,
}

/// A local webhook receiver.
pub struct WebhookStub {
    base_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl WebhookStub {
    /// Starts a receiver on a free loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound or the server thread cannot start.
    pub async fn start() -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .expect("the webhook stub could not bind a loopback port");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let state = Arc::new(Mutex::new(State::default()));
        let data = web::Data::from(Arc::clone(&state));
        let handle =
            super::serve_stand_in(format!("webhook-stub-{port}"), listener, data, answer).await;
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// `http://127.0.0.1:PORT`; post to any path under it.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Well-formed requests received so far (whatever they were answered), in order.
    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.lock().received.clone()
    }

    /// Why malformed requests were refused, in order.
    pub fn rejected(&self) -> Vec<String> {
        self.lock().rejected.clone()
    }

    /// Answers the next well-formed request with `status`. Calls queue up; each is used once.
    pub fn answer_next(&self, status: u16) {
        self.lock().scripted.push_back(status);
    }

    /// Answers every well-formed request with `status` (after the scripted ones), until
    /// [`Self::answer_normally`].
    pub fn answer_always(&self, status: u16) {
        self.lock().always = Some(status);
    }

    /// Back to answering `204`.
    pub fn answer_normally(&self) {
        self.lock().always = None;
    }

    /// Waits `delay` before answering each request (a slow receiver); `None`: no delay.
    pub fn delay_answers(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// Waits until at least `count` well-formed requests were answered with a `2xx`.
    ///
    /// # Panics
    /// After `timeout`, listing what was received and refused.
    pub async fn wait_for_accepted(&self, count: usize, timeout: Duration) -> Vec<ReceivedWebhook> {
        let deadline = Instant::now() + timeout;
        loop {
            let accepted: Vec<_> = self
                .received()
                .into_iter()
                .filter(|r| (200..300).contains(&r.answered))
                .collect();
            if accepted.len() >= count {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "the webhook stub accepted {} of {count} in {timeout:?}; received: {:#?}; refused: {:#?}",
                accepted.len(),
                self.received(),
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

impl Drop for WebhookStub {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl fmt::Debug for WebhookStub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookStub")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Checks `webhook` with the Standard Webhooks reference implementation (Python's
/// `standardwebhooks`, through `tests/support/verify_webhook.py`) against `secret`: `Ok` when
/// it verifies, else what the library said.
///
/// # Errors
/// The library's refusal, or why the script could not run (is `pip install -r
/// tests/support/requirements.txt` done?).
pub fn verify_with_reference(webhook: &ReceivedWebhook, secret: &str) -> Result<(), String> {
    use std::io::Write as _;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/support/verify_webhook.py"
    );
    let input = serde_json::json!({
        "secret": secret,
        "headers": webhook.headers(),
        "body": webhook.raw_body,
    });
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 {script}: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(input.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && said.trim() == "verified" {
        Ok(())
    } else {
        Err(said.trim().to_owned())
    }
}

fn header(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether `signature` is a space-separated list of `v1,<base64 of 32 bytes>` entries (other
/// versions are allowed by the specification, but Clairon sends only `v1`).
fn well_formed_signature(signature: &str) -> bool {
    !signature.is_empty()
        && signature.split(' ').all(|entry| {
            entry.strip_prefix("v1,").is_some_and(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .is_ok_and(|mac| mac.len() == 32)
            })
        })
}

async fn answer(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let refuse = |why: String| {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.rejected.push(why.clone());
        HttpResponse::BadRequest().body(why)
    };
    if request.method() != Method::POST {
        return refuse(format!("{} instead of POST", request.method()));
    }
    let content_type = header(&request, "content-type").unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return refuse(format!("Content-Type {content_type:?}"));
    }
    let (Some(id), Some(timestamp), Some(signature)) = (
        header(&request, "webhook-id"),
        header(&request, "webhook-timestamp"),
        header(&request, "webhook-signature"),
    ) else {
        return refuse(
            "a webhook-id, webhook-timestamp or webhook-signature header is missing".into(),
        );
    };
    if id.is_empty() || timestamp.parse::<i64>().is_err() || !well_formed_signature(&signature) {
        return refuse(format!(
            "malformed headers: id {id:?}, timestamp {timestamp:?}, signature {signature:?}"
        ));
    }
    let Ok(raw_body) = String::from_utf8(body.to_vec()) else {
        return refuse("the body is not UTF-8".into());
    };
    let Ok(parsed) = serde_json::from_str::<Value>(&raw_body) else {
        return refuse("the body is not JSON".into());
    };
    if !(parsed["type"].is_string()
        && parsed["timestamp"].is_string()
        && parsed.get("data").is_some())
    {
        return refuse("the body is not {type, timestamp, data}".into());
    }
    let (status, delay) = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let status = state.scripted.pop_front().or(state.always).unwrap_or(204);
        state.received.push(ReceivedWebhook {
            path: request
                .uri()
                .path_and_query()
                .map_or_else(|| request.path().to_owned(), ToString::to_string),
            id,
            timestamp,
            signature,
            content_type,
            raw_body,
            body: parsed,
            answered: status,
        });
        (status, state.delay)
    };
    if let Some(delay) = delay {
        actix_web::rt::time::sleep(delay).await;
    }
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    )
    .finish()
}
