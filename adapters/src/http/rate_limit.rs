//! Rate limits of the HTTP API: one token bucket (GCRA, `governor`) per API key and one per
//! recipient (whatever token of theirs is presented), so one noisy client cannot starve the
//! others. Over the limit, a request is answered 429 problem+json with `Retry-After` (RFC 6585
//! §4) and does nothing.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::problem::ApiError;
use super::tokens::{presented_token, RecipientTokens};

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

/// Checks between two purges of idle buckets.
const PURGE_EVERY: u64 = 4096;

/// The API's token buckets, keyed by API key (its SHA-256) and by recipient id.
pub struct RateLimits {
    api_keys: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    recipients: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_api_key", &self.api_keys.is_some())
            .field("per_recipient", &self.recipients.is_some())
            .finish()
    }
}

impl RateLimits {
    /// Limits per API key and per recipient token; `None` switches one off.
    pub fn new(per_api_key: Option<RateQuota>, per_recipient: Option<RateQuota>) -> Self {
        Self {
            api_keys: per_api_key.map(|q| RateLimiter::keyed(q.quota())),
            recipients: per_recipient.map(|q| RateLimiter::keyed(q.quota())),
            checks: AtomicU64::new(0),
        }
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

fn too_many(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    // Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::TooManyRequests {
        retry_after_secs: secs.max(1),
    }
}

/// Middleware of `/api/v1/me`: a request with a valid recipient token takes a token from its
/// recipient's bucket, or is answered 429. Requests without a valid token pass through, to be
/// refused (401) by the route's `Me` extractor.
///
/// # Errors
/// [`ApiError::TooManyRequests`] over the limit.
pub async fn limit_recipient(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let (Some(limits), Some(tokens)) = (
        req.app_data::<web::Data<RateLimits>>(),
        req.app_data::<web::Data<RecipientTokens>>(),
    ) {
        if let Some(recipient) = presented_token(req.request()).and_then(|t| tokens.verify(&t).ok())
        {
            limits.check_recipient(recipient.as_str())?;
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

    #[test]
    fn a_rate_of_zero_means_no_limit() {
        assert_eq!(RateQuota::new(0, 10), None);
        assert_eq!(
            RateQuota::new(5, 0).map(|q| q.burst.get()),
            Some(5),
            "burst 0 is the rate"
        );
    }
}
