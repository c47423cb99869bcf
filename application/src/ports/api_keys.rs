//! API keys created with the CLI (the `api_keys` table), as the HTTP adapter's key check looks
//! them up.

use async_trait::async_trait;
use clairon_domain::ApiScope;

use super::RepositoryError;

/// Where keys created with the CLI are looked up (the `api_keys` table).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ApiKeyDirectory: Send + Sync {
    /// The id and scope of the key whose lowercase hex SHA-256 is `hash_hex`, if it exists and
    /// is not revoked. MAY note the use (`last_used_at`).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn find_active(&self, hash_hex: &str)
        -> Result<Option<(i64, ApiScope)>, RepositoryError>;
}
