//! Recipient tokens: short-lived JWTs (HS256, RFC 7519) that let one recipient's browser read and
//! mark their own inbox under `/api/v1/me/…`, without ever holding an API key.
//!
//! A token names its recipient in `sub`, carries its recipient's token generation in `gen`,
//! expires at `exp`, and is signed with the service's secret; anything else (another algorithm,
//! another audience, a bad signature, an expired token, a missing `gen`) is refused the same way,
//! with no detail about which check failed.
//!
//! **Revocation.** A token is honoured only while its recipient exists and still has the
//! generation it carries ([`TokenGenerations`]): revoking a recipient's tokens draws a new one,
//! and an erasure deletes the recipient (a recipient created later with the same id draws its
//! own). The generation is looked up once per request and the answer kept for
//! [`RecipientTokens::cache_ttl`] (`CLAIRON_TOKEN_CACHE_MS`, 5 s by default) — except that every
//! process forgets a recipient's entry as soon as it hears of the revocation (the realtime hub,
//! across processes through PostgreSQL `LISTEN/NOTIFY`). So a revoked token is refused at once
//! by the process that revoked it, within moments by the others, and within the cache time
//! at worst (when the revocation's `NOTIFY` was lost).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, HttpMessage, HttpRequest};
use chrono::{DateTime, Utc};
use clairon_application::ports::TokenGenerations;
use clairon_domain::RecipientId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::api_keys::bearer;
use crate::http::problem::ApiError;
use crate::realtime::RevocationListener;

/// The `aud` of every recipient token: an API key's bearer format never matches it.
const AUDIENCE: &str = "clairon-inbox";

/// Most recipients kept in the generation cache; beyond, it is emptied.
const CACHE_CAPACITY: usize = 10_000;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// The recipient's token generation when the token was issued.
    #[serde(rename = "gen")]
    generation: i64,
}

/// Recipients' generations as last read, and a count of forgets: an answer read before a
/// forget is not cached after it (it may predate the revocation).
#[derive(Default)]
struct GenerationCache {
    ttl: Duration,
    entries: Mutex<HashMap<RecipientId, (Instant, Option<i64>)>>,
    forgets: AtomicU64,
}

impl GenerationCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RecipientId, (Instant, Option<i64>)>> {
        // The map holds plain values: a panic elsewhere cannot leave it half-written.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, recipient: &RecipientId) -> Option<Option<i64>> {
        self.lock()
            .get(recipient)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, generation)| *generation)
    }

    fn put(&self, recipient: &RecipientId, generation: Option<i64>, forgets_before: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        // Checked under the lock that `forget` takes after counting: either we see its count,
        // or it removes what we insert.
        if self.forgets.load(Ordering::SeqCst) != forgets_before {
            return;
        }
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(recipient.clone(), (Instant::now(), generation));
    }
}

impl RevocationListener for GenerationCache {
    fn revoked(&self, recipient: &RecipientId) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.lock().remove(recipient);
    }

    fn all_may_be_revoked(&self) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }
}

/// Issues and checks recipient tokens with one HS256 secret, against the recipients' current
/// token generations.
#[derive(Clone)]
pub struct RecipientTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    generations: Arc<dyn TokenGenerations>,
    cache: Arc<GenerationCache>,
}

impl std::fmt::Debug for RecipientTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientTokens")
            .field("ttl", &self.ttl)
            .field("cache_ttl", &self.cache.ttl)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused (for tests and logs; clients see 401, or 503 for `Unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token in the request.
    #[error("no recipient token")]
    Missing,
    /// Expired, forged, malformed, or for another audience.
    #[error("invalid recipient token")]
    Invalid,
    /// Well signed and unexpired, but revoked: its recipient has another generation now, or
    /// no longer exists.
    #[error("revoked recipient token")]
    Revoked,
    /// The generation could not be read (the database failed): neither accepted nor refused.
    #[error("cannot check the recipient token: {0}")]
    Unavailable(String),
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Unavailable(cause) => ApiError::Unavailable(cause),
            _ => ApiError::Unauthorized,
        }
    }
}

/// The recipient a `/api/v1/me` request acts as, from a valid, unrevoked recipient token (never
/// an API key), and when that token expires (live connections close then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// Whose inbox.
    pub recipient: RecipientId,
    /// The token's `exp`.
    pub expires_at: DateTime<Utc>,
}

impl RecipientTokens {
    /// Tokens signed with `secret` (32 bytes or more: the bootstrap refuses shorter ones) and
    /// valid for `ttl`, checked against `generations`, whose answers are kept for `cache_ttl`
    /// (0: every check reads them).
    pub fn new(
        secret: &[u8],
        ttl: Duration,
        generations: Arc<dyn TokenGenerations>,
        cache_ttl: Duration,
    ) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
            generations,
            cache: Arc::new(GenerationCache {
                ttl: cache_ttl,
                ..GenerationCache::default()
            }),
        }
    }

    /// How long an issued token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How long a generation read is trusted: the longest a revoked token may keep working in a
    /// process that did not hear of the revocation.
    pub fn cache_ttl(&self) -> Duration {
        self.cache.ttl
    }

    /// What the realtime hub tells about revocations, so that this process forgets them at once
    /// ([`crate::realtime::InProcessHub::set_revocation_listener`]).
    pub fn revocation_listener(&self) -> Arc<dyn RevocationListener> {
        self.cache.clone()
    }

    /// A token for `recipient` at its current generation (read now, never from the cache: a
    /// token issued just after a revocation must carry the new one), issued at `now`, and when
    /// it expires; `None` for an unknown recipient.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when the generation cannot be read; [`ApiError::Internal`] if
    /// signing fails (it does not with HS256).
    pub async fn issue(
        &self,
        recipient: &RecipientId,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, DateTime<Utc>)>, ApiError> {
        let Some(generation) = self
            .generations
            .current(recipient)
            .await
            .map_err(|e| ApiError::Unavailable(format!("reading a token generation: {e}")))?
        else {
            return Ok(None);
        };
        self.sign(recipient, generation, now).map(Some)
    }

    /// A token for `recipient` carrying `generation`, issued at `now`, and when it expires.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if signing fails (it does not with HS256).
    pub fn sign(
        &self,
        recipient: &RecipientId,
        generation: i64,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let expires_at = now
            + chrono::Duration::from_std(self.ttl).unwrap_or_else(|_| chrono::Duration::hours(12));
        let claims = Claims {
            sub: recipient.to_string(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            generation,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing a recipient token: {e}")))?;
        Ok((token, expires_at))
    }

    /// The signature and claims of `token` alone (no generation check): its recipient, the
    /// generation it carries, and its expiry.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] when expired, forged, malformed or of another kind.
    pub fn verify(&self, token: &str) -> Result<(RecipientId, i64, DateTime<Utc>), TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        let recipient = RecipientId::parse(&data.claims.sub).map_err(|_| TokenError::Invalid)?;
        let expires_at = DateTime::from_timestamp(data.claims.exp, 0).ok_or(TokenError::Invalid)?;
        Ok((recipient, data.claims.generation, expires_at))
    }

    /// Who `token` lets in now: [`RecipientTokens::verify`], then its generation against its
    /// recipient's (one cached lookup).
    ///
    /// # Errors
    /// [`TokenError::Invalid`], [`TokenError::Revoked`], or [`TokenError::Unavailable`] when
    /// the generation cannot be read.
    pub async fn authenticate(&self, token: &str) -> Result<Me, TokenError> {
        let (recipient, carried, expires_at) = self.verify(token)?;
        self.still_current(&recipient, carried).await?;
        Ok(Me {
            recipient,
            expires_at,
        })
    }

    /// Whether a token of `recipient` carrying `generation` (as [`RecipientTokens::verify`]
    /// read it) is still unrevoked: the generation part of [`RecipientTokens::authenticate`],
    /// through the same cache. A live connection checks this again at a resync without keeping
    /// its token (about 200 bytes) for the purpose; its expiry is its own timer.
    ///
    /// # Errors
    /// [`TokenError::Revoked`] when the recipient has another generation now or no longer
    /// exists; [`TokenError::Unavailable`] when the generation cannot be read.
    pub async fn still_current(
        &self,
        recipient: &RecipientId,
        generation: i64,
    ) -> Result<(), TokenError> {
        let current = match self.cache.get(recipient) {
            Some(current) => current,
            None => {
                let forgets = self.cache.forgets.load(Ordering::SeqCst);
                let current = self
                    .generations
                    .current(recipient)
                    .await
                    .map_err(|e| TokenError::Unavailable(e.to_string()))?;
                self.cache.put(recipient, current, forgets);
                current
            }
        };
        if current == Some(generation) {
            Ok(())
        } else {
            Err(TokenError::Revoked)
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Where a request may carry its token: `Authorization: Bearer`, the `token` query parameter
/// (for `EventSource` and WebSocket, which cannot set headers), or a `Sec-WebSocket-Protocol`
/// entry after `clairon`.
pub fn presented_token(req: &HttpRequest) -> Option<String> {
    if let Some(token) = bearer(req) {
        return Some(token.to_owned());
    }
    if let Ok(query) = web::Query::<TokenQuery>::from_query(req.query_string()) {
        if let Some(token) = query.into_inner().token.filter(|t| !t.is_empty()) {
            return Some(token);
        }
    }
    websocket_protocol_token(req)
}

/// A token offered as a WebSocket subprotocol (`Sec-WebSocket-Protocol: clairon, <token>`).
pub fn websocket_protocol_token(req: &HttpRequest) -> Option<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?;
    header
        .split(',')
        .map(str::trim)
        .find(|p| !p.is_empty() && *p != "clairon")
        .map(ToOwned::to_owned)
}

/// The outcome of [`authenticate`], left in the request's extensions for the rate limit and
/// the routes, so a request costs one check.
#[derive(Debug, Clone)]
struct Checked(Result<Me, TokenError>);

/// Who the request's token lets in: what [`authenticate`] found, else checked now.
///
/// # Errors
/// [`TokenError`], or [`TokenError::Unavailable`] when no [`RecipientTokens`] is configured.
pub async fn recipient_of(req: &HttpRequest) -> Result<Me, TokenError> {
    if let Some(Checked(outcome)) = req.extensions().get::<Checked>() {
        return outcome.clone();
    }
    let tokens = req
        .app_data::<web::Data<RecipientTokens>>()
        .cloned()
        .ok_or_else(|| TokenError::Unavailable("recipient tokens are not configured".into()))?;
    let token = presented_token(req).ok_or(TokenError::Missing)?;
    tokens.authenticate(&token).await
}

/// Middleware of `/api/v1/me`: checks the request's token once (signature, expiry, generation)
/// and leaves the outcome for the rate limit and the routes. Refuses nothing itself: the
/// route's [`Me`] extractor answers 401 (or the WebSocket closes with 4401).
///
/// # Errors
/// Only those of the inner service.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let outcome = recipient_of(req.request()).await;
    req.extensions_mut().insert(Checked(outcome));
    next.call(req).await
}

impl FromRequest for Me {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { recipient_of(&req).await.map_err(ApiError::from) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_application::ports::RepositoryError;

    /// Generations in memory, counting reads.
    #[derive(Default)]
    struct Generations {
        of: Mutex<HashMap<String, i64>>,
        reads: AtomicU64,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl TokenGenerations for Generations {
        async fn current(&self, id: &RecipientId) -> Result<Option<i64>, RepositoryError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(RepositoryError::Unavailable("down".into()));
            }
            Ok(self.of.lock().unwrap().get(id.as_str()).copied())
        }

        async fn renew(&self, id: &RecipientId) -> Result<Option<i64>, RepositoryError> {
            let mut of = self.of.lock().unwrap();
            Ok(of.get_mut(id.as_str()).map(|g| {
                *g += 1;
                *g
            }))
        }
    }

    fn artist() -> RecipientId {
        RecipientId::parse("artist-0001").unwrap()
    }

    fn tokens_with(generations: Arc<Generations>, cache: Duration) -> RecipientTokens {
        generations
            .of
            .lock()
            .unwrap()
            .insert("artist-0001".into(), 7);
        RecipientTokens::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(60),
            generations,
            cache,
        )
    }

    #[tokio::test]
    async fn a_token_names_its_recipient_until_it_expires() {
        let tokens = tokens_with(Arc::default(), Duration::ZERO);
        let (token, expires_at) = tokens.issue(&artist(), Utc::now()).await.unwrap().unwrap();
        let me = tokens.authenticate(&token).await.unwrap();
        assert_eq!(me.recipient, artist());
        assert_eq!(
            me.expires_at.timestamp(),
            expires_at.timestamp(),
            "exp is told"
        );
        assert!(expires_at > Utc::now());
        let (old, _) = tokens
            .sign(&artist(), 7, Utc::now() - chrono::Duration::hours(1))
            .unwrap();
        assert_eq!(
            tokens.authenticate(&old).await,
            Err(TokenError::Invalid),
            "expired"
        );
    }

    #[tokio::test]
    async fn no_token_is_issued_for_an_unknown_recipient() {
        let tokens = tokens_with(Arc::default(), Duration::ZERO);
        let nobody = RecipientId::parse("nobody").unwrap();
        assert_eq!(tokens.issue(&nobody, Utc::now()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_token_signed_with_another_secret_or_tampered_with_is_refused() {
        let ours = tokens_with(Arc::default(), Duration::ZERO);
        let theirs = RecipientTokens::new(
            b"theirs-theirs-theirs-theirs-the",
            Duration::from_secs(60),
            Arc::new(Generations::default()),
            Duration::ZERO,
        );
        let (forged, _) = theirs.sign(&artist(), 7, Utc::now()).unwrap();
        assert_eq!(ours.authenticate(&forged).await, Err(TokenError::Invalid));
        let (token, _) = ours.sign(&artist(), 7, Utc::now()).unwrap();
        let mut tampered = token.clone();
        tampered.pop();
        assert_eq!(ours.authenticate(&tampered).await, Err(TokenError::Invalid));
        assert_eq!(
            ours.authenticate("not-a-jwt").await,
            Err(TokenError::Invalid)
        );
    }

    #[tokio::test]
    async fn a_token_without_a_generation_is_refused() {
        let tokens = tokens_with(Arc::default(), Duration::ZERO);
        let now = Utc::now().timestamp();
        let legacy = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({ "sub": "artist-0001", "aud": AUDIENCE, "iat": now, "exp": now + 60 }),
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(tokens.authenticate(&legacy).await, Err(TokenError::Invalid));
    }

    #[tokio::test]
    async fn a_renewed_generation_revokes_older_tokens_and_a_gone_recipient_all_of_them() {
        let generations = Arc::new(Generations::default());
        let tokens = tokens_with(generations.clone(), Duration::ZERO);
        let (old, _) = tokens.issue(&artist(), Utc::now()).await.unwrap().unwrap();

        generations.renew(&artist()).await.unwrap();
        let (new, _) = tokens.issue(&artist(), Utc::now()).await.unwrap().unwrap();

        assert_eq!(tokens.authenticate(&old).await, Err(TokenError::Revoked));
        assert!(tokens.authenticate(&new).await.is_ok(), "a new token works");
        generations.of.lock().unwrap().clear();
        assert_eq!(
            tokens.authenticate(&new).await,
            Err(TokenError::Revoked),
            "the recipient is gone"
        );
    }

    #[tokio::test]
    async fn generations_are_read_once_per_cache_time_and_forgotten_when_a_revocation_is_heard() {
        let generations = Arc::new(Generations::default());
        let tokens = tokens_with(generations.clone(), Duration::from_secs(60));
        let (token, _) = tokens.sign(&artist(), 7, Utc::now()).unwrap();
        tokens.authenticate(&token).await.unwrap();
        tokens.authenticate(&token).await.unwrap();
        assert_eq!(generations.reads.load(Ordering::SeqCst), 1, "cached");

        generations.renew(&artist()).await.unwrap();
        assert!(
            tokens.authenticate(&token).await.is_ok(),
            "within the cache time, a revocation this process did not hear of is not seen yet"
        );
        tokens.revocation_listener().revoked(&artist());

        assert_eq!(tokens.authenticate(&token).await, Err(TokenError::Revoked));
        assert_eq!(generations.reads.load(Ordering::SeqCst), 2, "read again");
    }

    #[tokio::test]
    async fn a_generation_read_before_a_revocation_is_not_cached_after_it() {
        let generations = Arc::new(Generations::default());
        let tokens = tokens_with(generations.clone(), Duration::from_secs(60));
        let forgets = tokens.cache.forgets.load(Ordering::SeqCst);

        tokens.revocation_listener().revoked(&artist());
        tokens.cache.put(&artist(), Some(7), forgets);

        assert_eq!(
            tokens.cache.get(&artist()),
            None,
            "the stale read was dropped"
        );
    }

    #[tokio::test]
    async fn a_database_failure_neither_accepts_nor_refuses_the_token() {
        let generations = Arc::new(Generations::default());
        let tokens = tokens_with(generations.clone(), Duration::ZERO);
        let (token, _) = tokens.sign(&artist(), 7, Utc::now()).unwrap();
        generations.down.store(true, Ordering::SeqCst);
        assert!(matches!(
            tokens.authenticate(&token).await,
            Err(TokenError::Unavailable(_))
        ));
    }
}
