//! Where `Idempotency-Key` records of the ingestion POSTs are kept: the HTTP adapter's
//! middleware begins, completes and releases them; the persistence adapter implements the store.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use super::RepositoryError;

/// One request under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// Lowercase hex SHA-256 of the caller's API key: keys of different clients never collide.
    pub api_key_hash: String,
    /// The `Idempotency-Key` header.
    pub key: String,
    /// Lowercase hex SHA-256 of method, path and body.
    pub fingerprint: String,
}

/// A stored answer, replayed as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`, when the answer had one.
    pub content_type: Option<String>,
    /// The body (the API only answers JSON, so UTF-8).
    pub body: String,
}

/// What [`IdempotencyStore::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The key was free (or expired): it is now recorded in progress and the request must run.
    Started,
    /// Another request with this key and fingerprint has not finished.
    InProgress,
    /// A request with this key and fingerprint completed with this answer.
    Completed(StoredResponse),
    /// The key was used with another fingerprint (another path or body).
    Mismatch,
}

/// Where idempotency keys are kept, implemented by `persistence::DieselIdempotencyStore`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Records `request`'s key as in progress unless a live record exists, atomically: of two
    /// concurrent calls with one key, exactly one gets [`Begun::Started`]. Records whose
    /// `expires_at` is at or before `now` are ignored (and purged); a new record expires at
    /// `now + ttl`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails (nothing is recorded).
    async fn begin(
        &self,
        request: &IdempotentRequest,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Begun, RepositoryError>;

    /// Stores the answer of a started request; it is replayed from then on.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn complete(
        &self,
        request: &IdempotentRequest,
        response: &StoredResponse,
    ) -> Result<(), RepositoryError>;

    /// Forgets a started request that did not complete (a 5xx answer), so the key may be used
    /// again. A completed record is left alone.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn release(&self, request: &IdempotentRequest) -> Result<(), RepositoryError>;
}
