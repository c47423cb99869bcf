//! The SMS and WhatsApp channels: [`TwilioSmsSender`] implements the [`SmsSender`] port with
//! reqwest against Twilio's Messages API
//! (<https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource>):
//! `POST {api_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic authentication
//! (account SID, auth token; RFC 7617), an `application/x-www-form-urlencoded` body of `To`,
//! `From` and `Body`. An SMS goes from the configured SMS number; a WhatsApp message carries
//! `whatsapp:+E164` on both `To` and `From`
//! (<https://www.twilio.com/docs/whatsapp/api#sending-messages>).
//!
//! Twilio's answers, classified into [`SendOutcome`]s:
//!
//! | answer | outcome |
//! |---|---|
//! | `201` with `sid` | `Sent`, provider id = the `sid` (`SM…`) |
//! | `429` | `RateLimited` (`Retry-After` when given, else 1 s) |
//! | `400` with `code` 21211 / 21614 / 21610 | `Permanent`, saying which (invalid number, not a mobile, unsubscribed) |
//! | other `4xx` (a bad account, token or `From`: 401, 404, other codes) | `Permanent` |
//! | `5xx`, a timeout, a connection error, a `201` without `sid` | `Transient` |
//!
//! Error bodies are Twilio's `{"code": …, "message": …, "more_info": …, "status": …}`
//! (<https://www.twilio.com/docs/usage/twilios-response>). The auth token never reaches a log
//! line, an error string or a `Debug` output; neither do the number and the text.
//!
//! [`PacedSmsSender`] keeps the account's pace: Twilio sends from one number at a set rate
//! ("Messaging Services and rate limits": a US long code takes 1 message segment a second, a
//! toll-free number 3, a short code 100; WhatsApp senders 80) and queues the rest for hours,
//! so Clairon paces each sender (the SMS number, the WhatsApp number) at
//! `CLAIRON_TWILIO_RATE_PER_SEC` on the [`DestinationPacer`] and puts a message back
//! ([`SendOutcome::Paced`]) instead of waiting or letting Twilio's queue grow.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clairon_application::ports::{SendOutcome, SmsMessage, SmsSender};
use clairon_domain::PhoneNumber;
use serde::Deserialize;

use super::pacing::DestinationPacer;

/// Twilio's production API, the default base URL.
pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

/// How long to wait for a TCP (and TLS) connection to Twilio: 10 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait when a 429 answer does not say how long to wait: 1 s.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The most of an answer read, in bytes: a Message resource or an error is far smaller.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Twilio error 21211: "Invalid 'To' Phone Number".
pub const ERROR_INVALID_NUMBER: u32 = 21211;
/// Twilio error 21614: "'To' number is not a valid mobile number".
pub const ERROR_NOT_MOBILE: u32 = 21614;
/// Twilio error 21610: "Attempt to send to unsubscribed recipient" (they answered STOP).
pub const ERROR_UNSUBSCRIBED: u32 = 21610;

/// The Twilio account and the numbers Clairon sends from.
#[derive(Clone)]
pub struct TwilioAccount {
    /// Base URL of the API, without a trailing slash ([`DEFAULT_API_URL`]; a stand-in's in
    /// tests).
    pub api_url: String,
    /// The account SID (`AC…`), also the Basic auth user name.
    pub account_sid: String,
    /// The auth token, the Basic auth password. Secret.
    pub auth_token: String,
    /// The number SMS are sent from; `None`: SMS deliveries are refused (permanent).
    pub sms_from: Option<PhoneNumber>,
    /// The WhatsApp sender number (sent as `whatsapp:+E164`); `None`: WhatsApp deliveries are
    /// refused (permanent).
    pub whatsapp_from: Option<PhoneNumber>,
}

impl fmt::Debug for TwilioAccount {
    /// The auth token never appears.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioAccount")
            .field("api_url", &self.api_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("sms_from", &self.sms_from)
            .field("whatsapp_from", &self.whatsapp_from)
            .finish()
    }
}

/// Sends SMS and WhatsApp messages through Twilio's Messages API.
#[derive(Clone)]
pub struct TwilioSmsSender {
    client: reqwest::Client,
    messages_url: String,
    account: TwilioAccount,
}

impl fmt::Debug for TwilioSmsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSmsSender")
            .field("messages_url", &self.messages_url)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// The part of Twilio's answers Clairon reads: a Message resource's `sid`, an error's `code`
/// and `message`.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    sid: Option<String>,
    code: Option<u32>,
    message: Option<String>,
}

impl TwilioSmsSender {
    /// A sender for `account` whose calls time out after `timeout` in all (connecting gets at
    /// most 10 s of it), following no redirect.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(account: TwilioAccount, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("clairon/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let messages_url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            account.api_url.trim_end_matches('/'),
            account.account_sid
        );
        Ok(Self {
            client,
            messages_url,
            account,
        })
    }

    /// The `From` and `To` of `message`: the SMS number, or both as `whatsapp:+E164`.
    fn addresses(&self, message: &SmsMessage) -> Result<(String, String), String> {
        if message.whatsapp {
            let from = self.account.whatsapp_from.as_ref().ok_or(
                "no WhatsApp sender number is configured (CLAIRON_WHATSAPP_FROM)".to_owned(),
            )?;
            Ok((
                format!("whatsapp:{}", from.as_str()),
                format!("whatsapp:{}", message.to.as_str()),
            ))
        } else {
            let from = self
                .account
                .sms_from
                .as_ref()
                .ok_or("no SMS sender number is configured (CLAIRON_SMS_FROM)".to_owned())?;
            Ok((from.as_str().to_owned(), message.to.as_str().to_owned()))
        }
    }
}

#[async_trait]
impl SmsSender for TwilioSmsSender {
    async fn send(&self, message: &SmsMessage) -> SendOutcome {
        let (from, to) = match self.addresses(message) {
            Ok(addresses) => addresses,
            Err(cause) => return SendOutcome::Permanent(cause),
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("To", &to)
            .append_pair("From", &from)
            .append_pair("Body", &message.body)
            .finish();
        let sent = self
            .client
            .post(&self.messages_url)
            .basic_auth(&self.account.account_sid, Some(&self.account.auth_token))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            // reqwest's error names the URL, which holds the SID but never the token.
            Err(e) if e.is_timeout() => {
                return SendOutcome::Transient("Twilio did not answer in time".into())
            }
            Err(e) => {
                return SendOutcome::Transient(format!(
                    "Twilio could not be reached: {}",
                    without_url(&e)
                ))
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if room <= chunk.len() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if (200..300).contains(&status) => {
                    return SendOutcome::Transient(format!(
                        "Twilio's answer was cut off: {}",
                        without_url(&e)
                    ))
                }
                // An error answer is classified by its status even when its body is lost.
                Err(_) => break,
            }
        }
        let answer: Answer = serde_json::from_slice(&body).unwrap_or_default();
        classify(status, retry_after, answer)
    }
}

/// What Twilio's `status` (with its parsed body) means for the delivery.
fn classify(status: u16, retry_after: Option<Duration>, answer: Answer) -> SendOutcome {
    let said = || {
        let code = answer.code.map(|c| format!(" {c}")).unwrap_or_default();
        let message = answer
            .message
            .as_deref()
            .map(|m| format!(": {}", m.chars().take(300).collect::<String>()))
            .unwrap_or_default();
        format!("{code}{message}")
    };
    match status {
        200..=299 => match answer.sid {
            Some(sid) if !sid.is_empty() => SendOutcome::Sent {
                provider_message_id: sid,
            },
            _ => SendOutcome::Transient(format!("Twilio answered {status} without a message sid")),
        },
        429 => SendOutcome::RateLimited {
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        },
        400..=499 => {
            let why = match answer.code {
                Some(ERROR_INVALID_NUMBER) => "the number is invalid",
                Some(ERROR_NOT_MOBILE) => "the number is not a mobile number",
                Some(ERROR_UNSUBSCRIBED) => "the recipient unsubscribed (replied STOP)",
                _ => "the request was refused",
            };
            SendOutcome::Permanent(format!(
                "Twilio refused the message ({status}), {why}: error{}",
                said()
            ))
        }
        _ => SendOutcome::Transient(format!("Twilio answered {status}: error{}", said())),
    }
}

/// A reqwest error's message without the URL it names (which holds the account SID).
fn without_url(error: &reqwest::Error) -> String {
    let mut cause = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(e) = source {
        if !cause.is_empty() {
            cause.push_str(": ");
        }
        cause.push_str(&e.to_string());
        source = e.source();
    }
    if cause.is_empty() {
        if error.is_connect() {
            "connection failed".to_owned()
        } else {
            "request failed".to_owned()
        }
    } else {
        cause
    }
}

/// An [`SmsSender`] that keeps each Twilio sender's pace ([`DestinationPacer`]): one lane for
/// the SMS number and one for the WhatsApp number, each at `per_sender` messages a second; a
/// message whose lane has no free slot comes back [`SendOutcome::Paced`], unsent.
pub struct PacedSmsSender {
    inner: Arc<dyn SmsSender>,
    pacer: DestinationPacer,
}

impl PacedSmsSender {
    /// Paces `inner` to `per_sender` messages per second from each sender number.
    pub fn new(inner: Arc<dyn SmsSender>, per_sender: NonZeroU32) -> Self {
        Self {
            inner,
            pacer: DestinationPacer::new(per_sender, None),
        }
    }
}

#[async_trait]
impl SmsSender for PacedSmsSender {
    async fn send(&self, message: &SmsMessage) -> SendOutcome {
        let sender = if message.whatsapp { "whatsapp" } else { "sms" };
        let ticket = message.delivery_id.to_string();
        self.pacer
            .send_paced(sender, &ticket, self.inner.send(message))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let account = TwilioAccount {
            api_url: DEFAULT_API_URL.into(),
            account_sid: "AC0123".into(),
            auth_token: "tok-secret".into(),
            sms_from: None,
            whatsapp_from: None,
        };
        let sender = TwilioSmsSender::new(account, Duration::from_secs(1)).unwrap();
        let shown = format!("{sender:?}");
        assert!(!shown.contains("tok-secret"), "{shown}");
        assert!(shown.contains("/2010-04-01/Accounts/AC0123/Messages.json"));
    }

    fn message(delivery: &str, whatsapp: bool) -> SmsMessage {
        SmsMessage {
            delivery_id: clairon_domain::DeliveryId::parse(delivery).unwrap(),
            to: PhoneNumber::parse("+33612345678").unwrap(),
            body: "Répétition".into(),
            whatsapp,
        }
    }

    #[tokio::test]
    async fn a_second_sms_within_the_senders_second_is_paced_unsent_while_whatsapp_goes_on() {
        // The mock counts the provider calls: two, never the paced one.
        let mut inner = clairon_application::ports::MockSmsSender::new();
        inner
            .expect_send()
            .times(2)
            .returning(|m| SendOutcome::Sent {
                provider_message_id: m.delivery_id.to_string(),
            });
        let paced = PacedSmsSender::new(Arc::new(inner), NonZeroU32::MIN);

        assert!(matches!(
            paced.send(&message("d-1", false)).await,
            SendOutcome::Sent { .. }
        ));
        let SendOutcome::Paced { ready_in } = paced.send(&message("d-2", false)).await else {
            panic!("one SMS a second from the SMS number: the second is put back");
        };
        assert!(
            ready_in > Duration::from_millis(500) && ready_in <= Duration::from_secs(1),
            "{ready_in:?}"
        );
        assert!(
            matches!(
                paced.send(&message("d-3", true)).await,
                SendOutcome::Sent { .. }
            ),
            "the WhatsApp number has its own pace"
        );
    }
}
