//! A stand-in for Twilio's Messages API (create a Message,
//! <https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource>): a
//! real HTTP server on `127.0.0.1:0` that checks each request as Twilio would — the path
//! `/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic auth with the SID and token,
//! an `application/x-www-form-urlencoded` body, `To` and `From` in E.164 (both with the
//! `whatsapp:` prefix, or neither), a `Body` of 1 to 1,600 characters — answers like Twilio
//! (`201` with a Message resource whose `sid` is `SM…`, or `{"code", "message", "more_info",
//! "status"}`), records what it accepted and why it refused the rest, and plays scripted
//! failures.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde_json::json;

/// The longest `Body` Twilio takes: 1,600 characters.
pub const MAX_BODY_CHARS: usize = 1600;

/// A well-formed create-Message request the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSms {
    /// The `sid` it answered with (`SM` + 32 hex digits); `None` for a request answered with a
    /// scripted failure.
    pub sid: Option<String>,
    /// `To` as sent (`+E164` or `whatsapp:+E164`).
    pub to: String,
    /// `From` as sent.
    pub from: String,
    /// `Body` as sent.
    pub body: String,
}

impl ReceivedSms {
    /// Whether it went over WhatsApp (`whatsapp:` addresses).
    pub fn is_whatsapp(&self) -> bool {
        self.to.starts_with("whatsapp:")
    }
}

/// A scripted answer: a status with, for a 4xx/5xx, Twilio's error `code`.
#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    code: Option<u32>,
    message: String,
}

impl Failure {
    fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut answer = HttpResponse::build(status);
        if self.status == 429 {
            answer.insert_header(("Retry-After", "1"));
        }
        answer.json(json!({
            "code": self.code,
            "message": self.message,
            "more_info": self.code.map(|c| format!("https://www.twilio.com/docs/errors/{c}")),
            "status": self.status,
        }))
    }
}

struct State {
    account_sid: String,
    auth_token: String,
    next: u64,
    accepted: Vec<ReceivedSms>,
    failed: Vec<ReceivedSms>,
    rejected: Vec<String>,
    scripted: std::collections::VecDeque<Failure>,
    numbers: std::collections::HashMap<String, Failure>,
    sms_numbers: std::collections::HashMap<String, Failure>,
}

/// The running stand-in; stopped when dropped.
pub struct TwilioStub {
    base_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
}

impl TwilioStub {
    /// Starts a stand-in for the account `account_sid` authenticated by `auth_token`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(account_sid: &str, auth_token: &str) -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .expect("the Twilio stand-in could not bind a loopback port");
        let port = listener
            .local_addr()
            .expect("a bound listener has an address")
            .port();
        let state = Arc::new(Mutex::new(State {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            next: 1,
            accepted: Vec::new(),
            failed: Vec::new(),
            rejected: Vec::new(),
            scripted: std::collections::VecDeque::new(),
            numbers: std::collections::HashMap::new(),
            sms_numbers: std::collections::HashMap::new(),
        }));
        let data = web::Data::from(Arc::clone(&state));
        let handle =
            super::serve_stand_in(format!("twilio-stub-{port}"), listener, data, answer).await;
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
        }
    }

    /// The base URL to configure as `CLAIRON_TWILIO_API_URL`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The messages accepted (answered `201`), in order.
    pub fn messages(&self) -> Vec<ReceivedSms> {
        self.lock().accepted.clone()
    }

    /// Well-formed requests answered with a scripted failure.
    pub fn failed_attempts(&self) -> Vec<ReceivedSms> {
        self.lock().failed.clone()
    }

    /// Why each malformed request was refused (`"<status> <what>"`).
    pub fn rejected(&self) -> Vec<String> {
        self.lock().rejected.clone()
    }

    /// Answers the next well-formed request with `status` and Twilio error `code` (429 comes
    /// with `Retry-After: 1`).
    pub fn fail_next(&self, status: u16, code: Option<u32>, message: &str) {
        self.lock().scripted.push_back(Failure {
            status,
            code,
            message: message.to_owned(),
        });
    }

    /// Answers every request to `number` (`+E164`, either channel) with `status` and `code`.
    pub fn fail_number(&self, number: &str, status: u16, code: Option<u32>, message: &str) {
        self.lock().numbers.insert(
            number.to_owned(),
            Failure {
                status,
                code,
                message: message.to_owned(),
            },
        );
    }

    /// Answers every SMS to `number` (`+E164`) with `status` and `code`; WhatsApp messages to
    /// the same number are accepted (a number that is not mobile takes no SMS, 21614).
    pub fn fail_sms_to(&self, number: &str, status: u16, code: Option<u32>, message: &str) {
        self.lock().sms_numbers.insert(
            number.to_owned(),
            Failure {
                status,
                code,
                message: message.to_owned(),
            },
        );
    }

    /// Waits until `count` messages were accepted, and returns them.
    ///
    /// # Panics
    /// After `timeout`, listing what was received, failed and refused.
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<ReceivedSms> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "the Twilio stand-in got {} of {count} messages in {timeout:?}: {messages:#?}; \
                 failed attempts: {:#?}; refused: {:#?}",
                messages.len(),
                self.failed_attempts(),
                self.rejected()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for TwilioStub {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl fmt::Debug for TwilioStub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioStub")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Whether `raw` is `+` and 8 to 15 digits, the first not 0 (E.164).
fn is_e164(raw: &str) -> bool {
    raw.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// Twilio's error for a malformed request (its codes: 20003 authentication, 20404 not found,
/// 21602 body required, 21617 body too long, 21211 invalid To, 21212 invalid From, 21910
/// mismatched channels).
fn refuse(state: &mut State, status: u16, code: u32, message: &str) -> HttpResponse {
    state.rejected.push(format!("{status} {code} {message}"));
    Failure {
        status,
        code: Some(code),
        message: message.to_owned(),
    }
    .response()
}

async fn answer(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let path = format!("/2010-04-01/Accounts/{}/Messages.json", state.account_sid);
    if request.path() != path || request.method() != Method::POST {
        let shown = format!(
            "{} {} is not this account's Messages resource",
            request.method(),
            request.path()
        );
        return refuse(&mut state, 404, 20404, &shown);
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", state.account_sid, state.auth_token))
    );
    let authorized = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized {
        return refuse(
            &mut state,
            401,
            20003,
            "Authenticate: HTTP Basic with the account SID and auth token",
        );
    }
    let form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return refuse(
            &mut state,
            400,
            20001,
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let (mut to, mut from, mut text) = (None, None, None);
    for (key, value) in url::form_urlencoded::parse(&body) {
        let slot = match key.as_ref() {
            "To" => &mut to,
            "From" => &mut from,
            "Body" => &mut text,
            other => {
                let message = format!("unexpected parameter {other:?}");
                return refuse(&mut state, 400, 20001, &message);
            }
        };
        if slot.replace(value.into_owned()).is_some() {
            let message = format!("parameter {key:?} given twice");
            return refuse(&mut state, 400, 20001, &message);
        }
    }
    let (Some(to), Some(from)) = (to, from) else {
        return refuse(
            &mut state,
            400,
            21604,
            "A 'To' and a 'From' phone number are required",
        );
    };
    let text = text.unwrap_or_default();
    if text.is_empty() {
        return refuse(&mut state, 400, 21602, "Message body is required");
    }
    if text.chars().count() > MAX_BODY_CHARS {
        return refuse(
            &mut state,
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit",
        );
    }
    let to_whatsapp = to.strip_prefix("whatsapp:");
    let from_whatsapp = from.strip_prefix("whatsapp:");
    if to_whatsapp.is_some() != from_whatsapp.is_some() {
        return refuse(
            &mut state,
            400,
            21910,
            "Invalid From and To pair: both or neither must be whatsapp:",
        );
    }
    let to_number = to_whatsapp.unwrap_or(&to).to_owned();
    let is_whatsapp = to_whatsapp.is_some();
    if !is_e164(&to_number) {
        return refuse(&mut state, 400, 21211, "Invalid 'To' Phone Number");
    }
    if !is_e164(from_whatsapp.unwrap_or(&from)) {
        return refuse(&mut state, 400, 21212, "Invalid 'From' Phone Number");
    }
    let mut received = ReceivedSms {
        sid: None,
        to,
        from,
        body: text,
    };
    let failure = state
        .scripted
        .pop_front()
        .or_else(|| state.numbers.get(&to_number).cloned())
        .or_else(|| {
            (!is_whatsapp)
                .then(|| state.sms_numbers.get(&to_number).cloned())
                .flatten()
        });
    if let Some(failure) = failure {
        state.failed.push(received);
        return failure.response();
    }
    let sid = format!("SM{:032x}", state.next);
    state.next += 1;
    received.sid = Some(sid.clone());
    let resource = json!({
        "account_sid": state.account_sid,
        "api_version": "2010-04-01",
        "body": received.body,
        "direction": "outbound-api",
        "from": received.from,
        "num_segments": "1",
        "sid": sid,
        "status": "queued",
        "to": received.to,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", state.account_sid),
    });
    state.accepted.push(received);
    HttpResponse::Created().json(resource)
}
