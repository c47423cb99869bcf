//! The webhook channel: [`ReqwestWebhookSender`] implements the [`WebhookSender`] port, posting
//! signed webhooks per Standard Webhooks 1.0 (<https://www.standardwebhooks.com/>,
//! "Signature scheme"): headers `webhook-id` (the delivery id, the same on every retry),
//! `webhook-timestamp` (Unix seconds of the try) and `webhook-signature`
//! (`v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed with the bytes the
//! secret's base64 after `whsec_` encodes).
//!
//! The SSRF guard ([`WebhookTargets`]): unless private targets are allowed
//! (`CLAIRON_WEBHOOK_ALLOW_PRIVATE=true`), a URL whose host is, or resolves to, any loopback,
//! private or link-local address ([`clairon_domain::is_private_target`]; every address of the
//! name is checked) is refused as permanent before anything is sent, and the client's own
//! resolver refuses such addresses again at connect time (a name that changes its answer
//! between the check and the connection gains nothing). Redirects are not followed: a `3xx`
//! could point anywhere.
//!
//! Answers: `2xx` → sent; `410` → permanent, cause starting with [`WEBHOOK_GONE`] (the
//! dispatcher disables the endpoint for the recipient); `408`, `429`, `5xx`, timeouts and
//! network errors → transient (retried with the dispatcher's backoff: a 429 of one receiver
//! must not pause the channel for every other); any other answer → permanent. Error strings
//! name the host only: the path or query of a webhook URL may carry a token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use clairon_application::ports::{SendOutcome, WebhookMessage, WebhookSender, WEBHOOK_GONE};
use clairon_domain::{is_private_target, WebhookUrl};
use hmac::{KeyInit as _, Mac as _};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long a whole webhook call may take by default: 15 s (Standard Webhooks recommends
/// receivers answer quickly and work asynchronously).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a TCP (and TLS) connection: 10 s at most.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `webhook-signature` value of `body` sent as message `id` at Unix second `timestamp`,
/// signed with `key`: `v1,` + standard base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`
/// (Standard Webhooks 1.0, "Signature scheme").
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length (RFC 2104 §3): this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Which webhook targets may be called (the SSRF guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WebhookTargets {
    /// Whether loopback, private and link-local targets are allowed
    /// (`CLAIRON_WEBHOOK_ALLOW_PRIVATE=true`: tests, or a host application on the same network).
    pub allow_private: bool,
}

impl WebhookTargets {
    /// Resolves `url`'s host and checks every address it names.
    ///
    /// # Errors
    /// A cause naming the host when a literal or resolved address is private and private
    /// targets are not allowed, or when the name does not resolve.
    pub async fn check(self, url: &WebhookUrl) -> Result<(), TargetError> {
        let host = url.host_for_lookup();
        let addresses: Vec<SocketAddr> = match url.literal_ip() {
            Some(ip) => vec![SocketAddr::new(ip, url.port())],
            None => tokio::net::lookup_host((host.as_str(), url.port()))
                .await
                .map_err(|e| TargetError::Unresolved(format!("{}: {e}", url.host())))?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(TargetError::Unresolved(format!(
                "{}: no address",
                url.host()
            )));
        }
        if !self.allow_private && addresses.iter().any(|a| is_private_target(a.ip())) {
            return Err(TargetError::Private(url.host()));
        }
        Ok(())
    }
}

/// Why a webhook target cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The host is or resolves to a loopback, private or link-local address.
    #[error("webhook target {0} is a loopback, private or link-local address (set CLAIRON_WEBHOOK_ALLOW_PRIVATE=true to allow)")]
    Private(String),
    /// The host name does not resolve (now): DNS may recover.
    #[error("webhook host does not resolve: {0}")]
    Unresolved(String),
}

/// The client's resolver when private targets are refused: the system's answer, refused whole
/// when any address is private, so the connection can only go where the check allowed.
#[derive(Debug)]
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.iter().any(|a| is_private_target(a.ip())) {
                return Err(Box::new(TargetError::Private(host))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Posts signed webhooks over reqwest.
#[derive(Debug, Clone)]
pub struct ReqwestWebhookSender {
    client: reqwest::Client,
    targets: WebhookTargets,
}

impl ReqwestWebhookSender {
    /// A sender whose calls take at most `timeout` each, calling only what `targets` allows.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(targets: WebhookTargets, timeout: Duration) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Clairon/", env!("CARGO_PKG_VERSION")));
        if !targets.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Ok(Self {
            client: builder.build()?,
            targets,
        })
    }

    fn classify(status: reqwest::StatusCode, host: &str, id: String) -> SendOutcome {
        match status.as_u16() {
            200..=299 => SendOutcome::Sent {
                provider_message_id: id,
            },
            410 => SendOutcome::Permanent(format!(
                "{WEBHOOK_GONE}: the endpoint at {host} asks not to be called again"
            )),
            408 | 429 | 500..=599 => {
                SendOutcome::Transient(format!("webhook endpoint at {host} answered {status}"))
            }
            _ => SendOutcome::Permanent(format!("webhook endpoint at {host} answered {status}")),
        }
    }
}

#[async_trait]
impl WebhookSender for ReqwestWebhookSender {
    async fn send(&self, message: &WebhookMessage) -> SendOutcome {
        let host = message.url.host();
        match self.targets.check(&message.url).await {
            Ok(()) => {}
            Err(refused @ TargetError::Private(_)) => {
                return SendOutcome::Permanent(refused.to_string())
            }
            Err(unresolved) => return SendOutcome::Transient(unresolved.to_string()),
        }
        let id = message.delivery_id.to_string();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let signature = sign(&message.secret.key(), &id, timestamp, &message.body);
        let sent = self
            .client
            .post(message.url.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => Self::classify(response.status(), &host, id),
            Err(error) if refused_by_guard(&error) => {
                SendOutcome::Permanent(TargetError::Private(host).to_string())
            }
            Err(error) if error.is_timeout() => {
                SendOutcome::Transient(format!("webhook endpoint at {host} timed out"))
            }
            // `without_url`: the error's text would otherwise carry the whole URL.
            Err(error) => SendOutcome::Transient(format!(
                "webhook endpoint at {host} could not be reached: {}",
                error.without_url()
            )),
        }
    }
}

/// Whether `error` comes from [`PublicOnlyResolver`] refusing a private address.
fn refused_by_guard(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<TargetError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries
        // (standard-webhooks/libraries, javascript/src/index.test.ts).
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
