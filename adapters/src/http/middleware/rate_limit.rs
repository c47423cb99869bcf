//! Rate limits of the HTTP API: one token bucket (GCRA, `governor`) per API key and one per
//! recipient (whatever token of theirs is presented, over REST and WebSocket frames alike), so
//! one noisy client cannot starve the others. Over the limit, a request is answered 429
//! problem+json with `Retry-After` (RFC 6585 §4) and does nothing.
//!
//! Refused credentials (an unknown or revoked API key, a failed `/admin` sign-in) take a token
//! from their client address's failure bucket ([`AuthFailureQuota`]); once it is empty, that
//! address is answered 429 for everything that presents a credential — good ones included,
//! or a 429 would tell a guesser that a guess was wrong and a 200 that it was right — until
//! the bucket has a token again. Requests that pass never touch that bucket, and a request
//! without any credential is a plain 401, not a guess.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::observability::Observability;
use crate::http::credentials::tokens::recipient_of;
use crate::http::problem::ApiError;

/// A token bucket: `per_sec` requests per second on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    /// Sustained requests per second.
    pub per_sec: NonZeroU32,
    /// Largest burst (the bucket's size), in requests.
    pub burst: NonZeroU32,
}

impl RateQuota {
    /// A quota, or `None` (no limit) when `per_sec` is 0. A `burst` of 0 means `per_sec`.
    pub fn new(per_sec: u32, burst: u32) -> Option<Self> {
        let per_sec = NonZeroU32::new(per_sec)?;
        Some(Self {
            per_sec,
            burst: NonZeroU32::new(burst).unwrap_or(per_sec),
        })
    }

    fn quota(self) -> Quota {
        Quota::per_second(self.per_sec).allow_burst(self.burst)
    }
}

/// The failure bucket of each client address: `per_minute` refused credentials a minute on
/// average, at most `burst` in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailureQuota {
    /// Sustained refused credentials per minute.
    pub per_minute: NonZeroU32,
    /// The bucket's size, in refused credentials.
    pub burst: NonZeroU32,
}

impl AuthFailureQuota {
    /// A quota, or `None` (no limit) when `per_minute` is 0. A `burst` of 0 means `per_minute`.
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(Self {
            per_minute,
            burst: NonZeroU32::new(burst).unwrap_or(per_minute),
        })
    }
}

/// Checks between two purges of idle buckets.
const PURGE_EVERY: u64 = 4096;
/// Most blocked addresses remembered; beyond, expired blocks are dropped first, then all.
const BLOCKED_CAPACITY: usize = 10_000;

/// Failure buckets per client address, and the addresses blocked until some instant.
struct AuthFailures {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

/// What a refused credential was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An API key in `Authorization: Bearer` (on `/api/v1`, or the dashboard).
    ApiKey,
    /// The key typed into the `/admin` sign-in form.
    AdminLogin,
    /// The signed token of a one-click unsubscribe link (`/unsubscribe/{token}`): a forged or
    /// altered one is a guess like a wrong key, answered 404.
    UnsubscribeLink,
}

impl Credential {
    /// The metric label: `api_key`, `admin_login`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::AdminLogin => "admin_login",
            Self::UnsubscribeLink => "unsubscribe_link",
        }
    }

    /// The status a refusal of this credential answers: 401, but 404 for an unsubscribe
    /// link, which is a page address rather than a credential a client knows it presents.
    pub fn refused_status(self) -> u16 {
        match self {
            Self::UnsubscribeLink => 404,
            Self::ApiKey | Self::AdminLogin => 401,
        }
    }
}

/// The API's token buckets, keyed by API key (its SHA-256), by recipient id, and (for refused
/// credentials) by client address.
pub struct RateLimits {
    api_keys: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    recipients: Option<DefaultKeyedRateLimiter<String>>,
    failures: Option<AuthFailures>,
    client_header: Option<String>,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_api_key", &self.api_keys.is_some())
            .field("per_recipient", &self.recipients.is_some())
            .field("auth_failures", &self.failures.is_some())
            .field("client_header", &self.client_header)
            .finish()
    }
}

impl RateLimits {
    /// Limits per API key and per recipient token; `None` switches one off.
    pub fn new(per_api_key: Option<RateQuota>, per_recipient: Option<RateQuota>) -> Self {
        Self {
            api_keys: per_api_key.map(|q| RateLimiter::keyed(q.quota())),
            recipients: per_recipient.map(|q| RateLimiter::keyed(q.quota())),
            failures: None,
            client_header: None,
            checks: AtomicU64::new(0),
        }
    }

    /// Also limits refused credentials per client address (`None`: no limit).
    #[must_use]
    pub fn with_auth_failures(mut self, quota: Option<AuthFailureQuota>) -> Self {
        self.failures = quota.map(|q| AuthFailures {
            limiter: RateLimiter::keyed(Quota::per_minute(q.per_minute).allow_burst(q.burst)),
            blocked: Mutex::new(HashMap::new()),
        });
        self
    }

    /// Reads the client address from the last entry of `header` (the one the reverse proxy in
    /// front added, such as `X-Forwarded-For`) instead of the TCP peer; `None`: the peer.
    #[must_use]
    pub fn with_client_header(mut self, header: Option<String>) -> Self {
        self.client_header = header.filter(|h| !h.trim().is_empty());
        self
    }

    /// The address a request's failure bucket is keyed by: the last entry of the configured
    /// header when there is one (a client can prepend to it, never append), else the TCP peer.
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        if let Some(name) = &self.client_header {
            let last = req
                .headers()
                .get_all(name.as_str())
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .last()
                .map(str::trim);
            if let Some(address) = last.and_then(|a| a.parse().ok()) {
                return Some(address);
            }
        }
        req.peer_addr().map(|a| a.ip())
    }

    /// 429 while `client` is blocked (its failure bucket ran empty); `Ok` otherwise.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] with the seconds left.
    pub fn check_client(&self, client: IpAddr) -> Result<(), ApiError> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        let blocked = failures.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match blocked.get(&client) {
            Some(until) if *until > Instant::now() => Err(ApiError::TooManyRequests {
                retry_after_secs: whole_secs(until.saturating_duration_since(Instant::now())),
            }),
            _ => Ok(()),
        }
    }

    /// Counts one refused credential from `client`.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] when its bucket was empty: `client` is then blocked until
    /// the bucket has a token again.
    pub fn record_failure(&self, client: IpAddr) -> Result<(), ApiError> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        self.purge_now_and_then();
        let Err(not_until) = failures.limiter.check_key(&client) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut blocked = failures.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() >= BLOCKED_CAPACITY {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            if blocked.len() >= BLOCKED_CAPACITY {
                blocked.clear();
            }
        }
        blocked.insert(client, Instant::now() + wait);
        Err(ApiError::TooManyRequests {
            retry_after_secs: whole_secs(wait),
        })
    }

    /// No limits at all.
    pub fn unlimited() -> Self {
        Self::new(None, None)
    }

    fn purge_now_and_then(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            // Full buckets are indistinguishable from absent ones: drop them.
            if let Some(l) = &self.api_keys {
                l.retain_recent();
            }
            if let Some(l) = &self.recipients {
                l.retain_recent();
            }
            if let Some(f) = &self.failures {
                f.limiter.retain_recent();
            }
        }
    }

    /// Takes one token from the bucket of the API key whose SHA-256 is `key_digest`.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] when the bucket is empty.
    pub fn check_api_key(&self, key_digest: [u8; 32]) -> Result<(), ApiError> {
        self.purge_now_and_then();
        match &self.api_keys {
            Some(limiter) => limiter.check_key(&key_digest).map_err(too_many),
            None => Ok(()),
        }
    }

    /// Takes one token from `recipient`'s bucket.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] when the bucket is empty.
    pub fn check_recipient(&self, recipient: &str) -> Result<(), ApiError> {
        self.purge_now_and_then();
        match &self.recipients {
            Some(limiter) => limiter.check_key(&recipient.to_owned()).map_err(too_many),
            None => Ok(()),
        }
    }
}

/// Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
fn whole_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn too_many(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    ApiError::TooManyRequests {
        retry_after_secs: whole_secs(not_until.wait_time_from(DefaultClock::default().now())),
    }
}

fn count_failure(req: &HttpRequest, credential: Credential, status: u16) {
    if let Some(observability) = req.app_data::<web::Data<Observability>>() {
        observability
            .metrics
            .observe_auth_failure(credential.as_str(), status);
    }
}

/// Before a presented credential is looked at: 429 while the request's client address is
/// blocked (counted in `clairon_auth_failures_total{answer="429"}`), so a blocked guesser learns
/// nothing and costs no lookup.
///
/// # Errors
/// [`ApiError::TooManyRequests`].
pub fn admit_credential(req: &HttpRequest, credential: Credential) -> Result<(), ApiError> {
    let Some(limits) = req.app_data::<web::Data<RateLimits>>() else {
        return Ok(());
    };
    let Some(client) = limits.client_address(req) else {
        return Ok(());
    };
    limits.check_client(client).inspect_err(|_| {
        count_failure(req, credential, 429);
    })
}

/// A presented credential was refused: counts it against the client address and in
/// `clairon_auth_failures_total`, and returns the answer: [`ApiError::Unauthorized`]
/// ([`ApiError::NotFound`] for an unsubscribe link), or [`ApiError::TooManyRequests`] when this
/// failure emptied the address's bucket.
pub fn refuse_credential(req: &HttpRequest, credential: Credential) -> ApiError {
    let limited = req
        .app_data::<web::Data<RateLimits>>()
        .and_then(|limits| Some((limits, limits.client_address(req)?)))
        .and_then(|(limits, client)| limits.record_failure(client).err());
    match limited {
        Some(too_many) => {
            count_failure(req, credential, 429);
            too_many
        }
        None => {
            count_failure(req, credential, credential.refused_status());
            match credential {
                Credential::UnsubscribeLink => {
                    ApiError::NotFound("no such unsubscribe link".into())
                }
                Credential::ApiKey | Credential::AdminLogin => ApiError::Unauthorized,
            }
        }
    }
}

/// Middleware of `/api/v1/me` (inside `tokens::authenticate`): a request with a valid
/// recipient token takes a token from its recipient's bucket, or is answered 429. Requests
/// without a valid token pass through, to be refused (401) by the route's `Me` extractor.
///
/// # Errors
/// [`ApiError::TooManyRequests`] over the limit.
pub async fn limit_recipient(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(limits) = req.app_data::<web::Data<RateLimits>>().cloned() {
        if let Ok(me) = recipient_of(req.request()).await {
            limits.check_recipient(me.recipient.as_str())?;
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_is_told_when_to_come_back_and_others_are_untouched() {
        let limits = RateLimits::new(RateQuota::new(1, 2), None);
        assert!(limits.check_api_key([1; 32]).is_ok());
        assert!(limits.check_api_key([1; 32]).is_ok());
        match limits.check_api_key([1; 32]) {
            Err(ApiError::TooManyRequests { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(
            limits.check_api_key([2; 32]).is_ok(),
            "another key has its own bucket"
        );
        assert!(
            limits.check_recipient("artist-0001").is_ok(),
            "tokens are not limited"
        );
    }

    fn client(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_address_is_blocked_once_its_failures_empty_the_bucket_and_others_are_not() {
        let limits = RateLimits::unlimited().with_auth_failures(AuthFailureQuota::new(1, 2));
        assert!(limits.record_failure(client(1)).is_ok());
        assert!(limits.record_failure(client(1)).is_ok());
        assert!(
            limits.check_client(client(1)).is_ok(),
            "two failures allowed"
        );

        let third = limits.record_failure(client(1));

        match third {
            Err(ApiError::TooManyRequests { retry_after_secs }) => {
                assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
            }
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(
            matches!(
                limits.check_client(client(1)),
                Err(ApiError::TooManyRequests { .. })
            ),
            "blocked for everything until the bucket refills"
        );
        assert!(
            limits.check_client(client(2)).is_ok(),
            "another address is not"
        );
        assert!(
            RateLimits::unlimited().record_failure(client(1)).is_ok(),
            "no limit configured"
        );
    }

    #[test]
    fn the_client_address_is_the_last_entry_of_the_configured_header_else_the_peer() {
        let peer: std::net::SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let req = actix_web::test::TestRequest::default()
            .peer_addr(peer)
            .insert_header(("X-Forwarded-For", "203.0.113.9, 192.0.2.44"))
            .to_http_request();
        let behind_proxy =
            RateLimits::unlimited().with_client_header(Some("X-Forwarded-For".into()));
        let direct = RateLimits::unlimited();

        assert_eq!(behind_proxy.client_address(&req), Some(client(44)));
        assert_eq!(
            direct.client_address(&req),
            Some(peer.ip()),
            "the header is not trusted by default"
        );
    }

    #[test]
    fn a_rate_of_zero_means_no_limit() {
        assert_eq!(AuthFailureQuota::new(0, 10), None);
        assert_eq!(RateQuota::new(0, 10), None);
        assert_eq!(
            RateQuota::new(5, 0).map(|q| q.burst.get()),
            Some(5),
            "burst 0 is the rate"
        );
    }
}
