//! [`ReqwestHostEventSender`]: posts delivery events to the host application (issue 12,
//! `CLAIRON_EVENTS_WEBHOOK_URL`), signed as the recipients' webhooks are (Standard Webhooks 1.0,
//! [`super::webhook::sign`]): headers `webhook-id` (the event's id, the same on every retry),
//! `webhook-timestamp` (Unix seconds of the try) and `webhook-signature`
//! (`v1,` + base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with
//! `CLAIRON_EVENTS_WEBHOOK_SECRET`'s bytes).
//!
//! The operator configures the URL, so the SSRF guard of recipients' webhooks does not apply
//! (a host application on the same network is the usual case). Redirects are not followed.
//! Its own client, with its own timeout (`CLAIRON_EVENTS_WEBHOOK_TIMEOUT_MS`): nothing here is
//! shared with the delivery channels. `2xx` → delivered; anything else, a timeout or a network
//! error → failed (the worker retries with backoff). Error strings name the host only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use clairon_application::ports::{HostEvent, HostEventOutcome, HostEventSender};
use clairon_domain::{WebhookSecret, WebhookUrl};

use super::webhook::sign;

/// How long a whole call to the host may take by default: 5 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Posts host events over reqwest.
#[derive(Debug, Clone)]
pub struct ReqwestHostEventSender {
    client: reqwest::Client,
    url: WebhookUrl,
    secret: WebhookSecret,
}

impl ReqwestHostEventSender {
    /// A sender posting to `url`, signing with `secret`, each call taking at most `timeout`.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(
        url: WebhookUrl,
        secret: WebhookSecret,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Clairon/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url,
            secret,
        })
    }
}

#[async_trait]
impl HostEventSender for ReqwestHostEventSender {
    async fn send(&self, event: &HostEvent) -> HostEventOutcome {
        let host = self.url.host();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let body = event.payload.as_bytes().to_vec();
        let signature = sign(&self.secret.key(), &event.id, timestamp, &body);
        let sent = self
            .client
            .post(self.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => HostEventOutcome::Delivered,
            Ok(response) => HostEventOutcome::Failed(format!(
                "the host at {host} answered {}",
                response.status()
            )),
            Err(error) if error.is_timeout() => {
                HostEventOutcome::Failed(format!("the host at {host} timed out"))
            }
            // `without_url`: the error's text would otherwise carry the whole URL.
            Err(error) => HostEventOutcome::Failed(format!(
                "the host at {host} could not be reached: {}",
                error.without_url()
            )),
        }
    }
}
