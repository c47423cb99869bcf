//! The Slack channel: [`ReqwestSlackSender`] implements the [`SlackSender`] port, posting a
//! message to a recipient's incoming webhook (<https://api.slack.com/messaging/webhooks>) as
//! JSON: `text` (the notification fallback) and `blocks` (Block Kit: a `header` with the title
//! as `plain_text`, a `section` with the `mrkdwn` body, a `context` with the local time and
//! the kind and event type, an `actions` block with a `button` to the `action_url` when there
//! is one). [`PacedSlackSender`] keeps Slack's pace, one message a second per webhook URL
//! ("Rate limits": incoming webhooks), on the [`DestinationPacer`].
//!
//! Answers (Slack, "Handling errors" of incoming webhooks, plain-text bodies): `200 ok` →
//! sent; `429` → rate limited for `Retry-After` seconds; `404`, `410`, or a body `no_service`,
//! `channel_not_found`, `channel_is_archived`, `team_disabled`, `invalid_token` → permanent,
//! cause starting with [`SLACK_GONE`] (the dispatcher marks the recipient's Slack unreachable
//! until the URL changes); `408`, `5xx`, timeouts and network errors → transient; any other
//! answer (`400 invalid_blocks`, `403 action_prohibited`) → permanent. Redirects are not
//! followed. Error strings name the host only: the URL is the credential.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clairon_application::ports::{SendOutcome, SlackMessage, SlackSender, SLACK_GONE};
use clairon_domain::SlackHosts;
use serde_json::{json, Value};

use super::pacing::DestinationPacer;

/// How long a whole Slack call may take by default: 15 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a TCP (and TLS) connection: 10 s at most.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `429` pauses Slack when it gives no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How much of an answer's body a cause quotes, in characters.
const BODY_QUOTED: usize = 80;

/// The bodies by which Slack says a webhook will never work again (the app was uninstalled,
/// the webhook revoked, the channel deleted or archived, the workspace disabled).
const GONE_BODIES: [&str; 5] = [
    "no_service",
    "channel_not_found",
    "channel_is_archived",
    "team_disabled",
    "invalid_token",
];

/// The JSON body of `message`: `text` and the Block Kit `blocks`.
pub fn payload(message: &SlackMessage) -> Value {
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {"type": "plain_text", "text": message.title, "emoji": true},
        }),
        json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": message.body},
        }),
        json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": message.context}],
        }),
    ];
    if let Some(button) = &message.button {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": button.label, "emoji": true},
                "url": button.url,
                "action_id": "clairon-open",
            }],
        }));
    }
    json!({"text": message.text, "blocks": blocks})
}

/// Posts Slack messages over reqwest, to the hosts [`SlackHosts`] allows only.
#[derive(Debug, Clone)]
pub struct ReqwestSlackSender {
    client: reqwest::Client,
    hosts: SlackHosts,
}

impl ReqwestSlackSender {
    /// A sender whose calls take at most `timeout` each, posting only to URLs `hosts` allows
    /// (checked again at send time: the list may have changed since the URL was stored).
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(hosts: SlackHosts, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Clairon/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, hosts })
    }

    /// What Slack's answer `status` with `body` (and `retry_after`, from its header) means.
    pub fn classify(
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
        host: &str,
        delivery_id: &str,
    ) -> SendOutcome {
        let said: String = body
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(BODY_QUOTED)
            .collect();
        if status == 429 {
            return SendOutcome::RateLimited {
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            };
        }
        if matches!(status, 404 | 410) || GONE_BODIES.contains(&said.as_str()) {
            return SendOutcome::Permanent(format!(
                "{SLACK_GONE}: Slack at {host} answered {status} {said}"
            ));
        }
        match status {
            200 if said == "ok" => SendOutcome::Sent {
                provider_message_id: delivery_id.to_owned(),
            },
            408 | 500..=599 => {
                SendOutcome::Transient(format!("Slack at {host} answered {status} {said}"))
            }
            _ => SendOutcome::Permanent(format!("Slack at {host} answered {status} {said}")),
        }
    }
}

/// The `Retry-After` of `response`, in whole seconds (RFC 9110 §10.2.3; Slack sends seconds).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[async_trait]
impl SlackSender for ReqwestSlackSender {
    async fn send(&self, message: &SlackMessage) -> SendOutcome {
        let host = message.url.host();
        if let Err(refused) = self.hosts.check(&message.url) {
            return SendOutcome::Permanent(format!(
                "Slack webhook host {host} {}",
                refused.message
            ));
        }
        let body = payload(message);
        let sent = self
            .client
            .post(message.url.expose())
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let wait = retry_after(&response);
                // A body that cannot be read is classified by its status alone.
                let text = response.text().await.unwrap_or_default();
                Self::classify(status, &text, wait, &host, &message.delivery_id.to_string())
            }
            Err(error) if error.is_timeout() => {
                SendOutcome::Transient(format!("Slack at {host} timed out"))
            }
            // `without_url`: the error's text would otherwise carry the whole URL.
            Err(error) => SendOutcome::Transient(format!(
                "Slack at {host} could not be reached: {}",
                error.without_url()
            )),
        }
    }
}

/// A [`SlackSender`] that keeps each webhook URL's pace ([`DestinationPacer`], keyed by the
/// URL): a message whose URL had one within the interval comes back [`SendOutcome::Paced`],
/// unsent, and messages to other URLs are not held up.
pub struct PacedSlackSender {
    inner: Arc<dyn SlackSender>,
    pacer: DestinationPacer,
}

impl PacedSlackSender {
    /// Paces `inner` to `per_webhook` messages per second per webhook URL (Slack's documented
    /// limit is 1); no overall limit (each URL is its own app's).
    pub fn new(inner: Arc<dyn SlackSender>, per_webhook: NonZeroU32) -> Self {
        Self {
            inner,
            pacer: DestinationPacer::new(per_webhook, None),
        }
    }
}

#[async_trait]
impl SlackSender for PacedSlackSender {
    async fn send(&self, message: &SlackMessage) -> SendOutcome {
        let ticket = message.delivery_id.to_string();
        self.pacer
            .send_paced(message.url.expose(), &ticket, self.inner.send(message))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_slack_answer_is_classified_as_documented() {
        let classify = |status, body| ReqwestSlackSender::classify(status, body, None, "h", "d-1");
        assert_eq!(
            classify(200, "ok"),
            SendOutcome::Sent {
                provider_message_id: "d-1".into()
            }
        );
        assert!(
            matches!(classify(403, "invalid_token"), SendOutcome::Permanent(c) if c.starts_with(SLACK_GONE))
        );
        assert!(
            matches!(classify(400, "no_service"), SendOutcome::Permanent(c) if c.starts_with(SLACK_GONE))
        );
        assert!(
            matches!(classify(404, ""), SendOutcome::Permanent(c) if c.starts_with(SLACK_GONE))
        );
        assert!(
            matches!(classify(400, "invalid_blocks"), SendOutcome::Permanent(c) if !c.starts_with(SLACK_GONE))
        );
        assert!(
            matches!(classify(403, "action_prohibited"), SendOutcome::Permanent(c) if !c.starts_with(SLACK_GONE))
        );
        assert!(matches!(classify(503, "x"), SendOutcome::Transient(_)));
        assert_eq!(
            classify(429, "rate_limited"),
            SendOutcome::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER
            }
        );
    }
}
