//! Web Push: one message to one browser's push subscription (RFC 8030), its payload encrypted
//! `aes128gcm` for that browser (RFC 8291, on RFC 8188) by `web-push-native`, the request
//! signed with a VAPID JWT (RFC 8292, ES256 by jsonwebtoken).
//!
//! The push service's answer is classified as every sender does: `201`/`202` sent, `404`/`410`
//! permanent with the cause starting [`SUBSCRIPTION_GONE`] (the caller deletes the
//! subscription), `429` rate limited (its `Retry-After`), `5xx` and network errors transient,
//! any other `4xx` permanent.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clairon_application::ports::SendOutcome;
use clairon_domain::Priority;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::rand_core::OsRng;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use serde::Serialize;

/// The start of the cause of a [`SendOutcome::Permanent`] for a `404`/`410`: the subscription
/// expired or was unsubscribed (RFC 8030 §7.3), and must be deleted (the application's
/// `PUSH_SUBSCRIPTION_GONE`, which the dispatcher looks for).
pub const SUBSCRIPTION_GONE: &str = clairon_application::ports::PUSH_SUBSCRIPTION_GONE;

/// How long a VAPID JWT is valid: 12 hours, within RFC 8292 §2's 24-hour bound.
pub const VAPID_JWT_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The longest `TTL` a push carries: 4 weeks (what push services keep at most; Mozilla's
/// autopush and FCM cap there).
pub const MAX_TTL: Duration = Duration::from_secs(28 * 24 * 3600);

/// The default VAPID `sub` claim when `CLAIRON_VAPID_SUBJECT` is not set (RFC 8292 §2.1: a
/// `mailto:` or `https:` contact for the push service's operator).
pub const DEFAULT_VAPID_SUBJECT: &str = "mailto:webmaster@localhost";

/// A VAPID key pair (RFC 8292 §3): a P-256 private key; its public key is the
/// `applicationServerKey` browsers subscribe with.
#[derive(Clone)]
pub struct VapidKeys {
    secret: p256::SecretKey,
    signing: EncodingKey,
}

impl std::fmt::Debug for VapidKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKeys")
            .field("public_key", &self.public_key_base64url())
            .finish_non_exhaustive()
    }
}

/// Why a VAPID private key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a VAPID private key (base64url of a 32-byte P-256 scalar): {0}")]
pub struct VapidKeyError(String);

impl VapidKeys {
    /// Draws a new key pair from the operating system's generator.
    pub fn generate() -> Self {
        Self::from_secret(p256::SecretKey::random(&mut OsRng))
            .unwrap_or_else(|e| unreachable!("a fresh P-256 key encodes: {e}"))
    }

    /// Reads a private key written as base64url (no padding) of its 32-byte scalar, the form
    /// of `CLAIRON_VAPID_PRIVATE_KEY` and of the stored key.
    ///
    /// # Errors
    /// [`VapidKeyError`] when it is not base64url or not a valid P-256 scalar.
    pub fn from_base64url(raw: &str) -> Result<Self, VapidKeyError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(raw.trim().trim_end_matches('='))
            .map_err(|e| VapidKeyError(e.to_string()))?;
        let secret =
            p256::SecretKey::from_slice(&bytes).map_err(|e| VapidKeyError(e.to_string()))?;
        Self::from_secret(secret)
    }

    fn from_secret(secret: p256::SecretKey) -> Result<Self, VapidKeyError> {
        let der = secret
            .to_pkcs8_der()
            .map_err(|e| VapidKeyError(e.to_string()))?;
        let signing = EncodingKey::from_ec_der(der.as_bytes());
        Ok(Self { secret, signing })
    }

    /// The private key as base64url (no padding) of its 32-byte scalar, to store it.
    pub fn private_key_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.to_bytes())
    }

    /// The public key as base64url (no padding) of the uncompressed point (65 bytes, `0x04`
    /// first): `GET /api/v1/push/vapid-public-key`, the `k` of the `vapid` Authorization.
    pub fn public_key_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }
}

/// A browser's push subscription (W3C Push API `PushSubscription.toJSON()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The push service URL to POST to.
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed point, base64url (RFC 8291 §3.1).
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url (RFC 8291 §3.2).
    pub auth: String,
}

/// What the service worker is given, JSON, encrypted: `{id, title, body, action_url}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushPayload {
    /// The notification id.
    pub id: String,
    /// The title.
    pub title: String,
    /// The body text.
    pub body: String,
    /// Where a click on the notification leads, if anywhere.
    pub action_url: Option<String>,
}

/// The `Urgency` header of a priority (RFC 8030 §5.3): `low` → `low`, `normal` → `normal`,
/// `high` and `critical` → `high`.
pub fn urgency(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High | Priority::Critical => "high",
    }
}

/// The `TTL` of a priority (RFC 8030 §5.2: how long the push service keeps a message for an
/// offline browser), at most the sender's `ttl`: `low` 1 hour (stale soon), `normal` 1 day,
/// `high` and `critical` 4 weeks (a planning change should still reach a browser that comes
/// back online).
pub fn ttl_for(priority: Priority, max: Duration) -> Duration {
    let wanted = match priority {
        Priority::Low => Duration::from_secs(3600),
        Priority::Normal => Duration::from_secs(24 * 3600),
        Priority::High | Priority::Critical => Duration::from_secs(28 * 24 * 3600),
    };
    wanted.min(max)
}

#[derive(Serialize)]
struct VapidClaims<'a> {
    aud: &'a str,
    exp: u64,
    sub: &'a str,
}

/// Sends Web Push messages over reqwest.
#[derive(Debug, Clone)]
pub struct WebPushSender {
    client: reqwest::Client,
    keys: VapidKeys,
    subject: String,
    ttl: Duration,
}

impl WebPushSender {
    /// A sender signing with `keys`, `subject` as the VAPID `sub` (a `mailto:` or `https:`
    /// URL), asking push services to keep an undelivered message `ttl` (sent as `TTL`, in
    /// seconds), each request bounded by `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        keys: VapidKeys,
        subject: impl Into<String>,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            keys,
            subject: subject.into(),
            ttl,
        })
    }

    /// The VAPID public key browsers subscribe with.
    pub fn keys(&self) -> &VapidKeys {
        &self.keys
    }

    /// Encrypts `payload` for `target` and POSTs it to its endpoint with `Urgency` of
    /// `priority`. Never panics; the outcome classifies the push service's answer (module
    /// documentation).
    pub async fn send(
        &self,
        target: &PushTarget,
        payload: &PushPayload,
        priority: Priority,
    ) -> SendOutcome {
        let request = match self.request(target, payload, priority) {
            Ok(request) => request,
            Err(cause) => return SendOutcome::Permanent(cause),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return SendOutcome::Transient(format!("push service unreachable: {e}")),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        match status {
            200..=202 => SendOutcome::Sent {
                provider_message_id: location.unwrap_or_else(|| format!("{status}")),
            },
            404 | 410 => SendOutcome::Permanent(format!("{SUBSCRIPTION_GONE}: {status} {text}")),
            429 => SendOutcome::RateLimited {
                retry_after: Duration::from_secs(retry_after.unwrap_or(60)),
            },
            500..=599 => SendOutcome::Transient(format!("push service answered {status} {text}")),
            _ => SendOutcome::Permanent(format!("push service refused: {status} {text}")),
        }
    }

    fn request(
        &self,
        target: &PushTarget,
        payload: &PushPayload,
        priority: Priority,
    ) -> Result<reqwest::RequestBuilder, String> {
        let endpoint = url::Url::parse(&target.endpoint)
            .map_err(|e| format!("push endpoint is not a URL: {e}"))?;
        let origin = endpoint.origin().ascii_serialization();
        let ua_public = URL_SAFE_NO_PAD
            .decode(target.p256dh.trim_end_matches('='))
            .ok()
            .and_then(|bytes| p256::PublicKey::from_sec1_bytes(&bytes).ok())
            .ok_or("the subscription's p256dh is not a P-256 public key")?;
        let auth = URL_SAFE_NO_PAD
            .decode(target.auth.trim_end_matches('='))
            .ok()
            .filter(|bytes| bytes.len() == 16)
            .ok_or("the subscription's auth is not 16 bytes of base64url")?;
        let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
        let encrypted = web_push_native::encrypt(
            body,
            &ua_public,
            &web_push_native::Auth::clone_from_slice(&auth),
        )
        .map_err(|e| format!("payload encryption failed: {e}"))?;
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(VAPID_JWT_LIFETIME)
            .as_secs();
        let jwt = jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &VapidClaims {
                aud: &origin,
                exp,
                sub: &self.subject,
            },
            &self.keys.signing,
        )
        .map_err(|e| format!("VAPID signature failed: {e}"))?;
        Ok(self
            .client
            .post(endpoint)
            .header("TTL", ttl_for(priority, self.ttl).as_secs().to_string())
            .header("Urgency", urgency(priority))
            .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(
                reqwest::header::AUTHORIZATION,
                format!("vapid t={jwt}, k={}", self.keys.public_key_base64url()),
            )
            .body(encrypted))
    }
}

#[async_trait::async_trait]
impl clairon_application::ports::PushSender for WebPushSender {
    async fn send(&self, message: &clairon_application::ports::PushMessage) -> SendOutcome {
        let target = PushTarget {
            endpoint: message.subscription.endpoint.clone(),
            p256dh: message.subscription.p256dh.clone(),
            auth: message.subscription.auth.clone(),
        };
        let payload = PushPayload {
            id: message.notification_id.to_string(),
            title: message.title.clone(),
            body: message.body.clone(),
            action_url: message.action_url.clone(),
        };
        WebPushSender::send(self, &target, &payload, message.priority).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vapid_key_survives_its_stored_form_and_its_public_key_is_an_uncompressed_point() {
        let keys = VapidKeys::generate();
        let again = VapidKeys::from_base64url(&keys.private_key_base64url()).unwrap();
        assert_eq!(again.public_key_base64url(), keys.public_key_base64url());
        let point = URL_SAFE_NO_PAD.decode(keys.public_key_base64url()).unwrap();
        assert_eq!(point.len(), 65);
        assert_eq!(point[0], 4);
        assert!(VapidKeys::from_base64url("not a key").is_err());
    }
}
