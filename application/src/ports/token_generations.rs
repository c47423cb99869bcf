//! Revocable recipient tokens: each recipient has a token *generation*, a number every token
//! issued for them carries. A token is honoured only while its recipient still has that
//! generation, so drawing a new one revokes every token issued before, and a recipient created
//! after an erasure (with the same id) starts from a generation no earlier token carries.

use async_trait::async_trait;
use clairon_domain::RecipientId;

use super::RepositoryError;

/// Reads and renews recipients' token generations.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TokenGenerations: Send + Sync {
    /// `id`'s current generation, or `None` when no such recipient exists (erased, or never
    /// created): then no token for `id` is valid.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn current(&self, id: &RecipientId) -> Result<Option<i64>, RepositoryError>;

    /// Gives `id` a new generation, which MUST differ from every one it had before and from
    /// those of any earlier recipient with the same id (a fresh random 63-bit number does,
    /// up to a chance of 2⁻⁶³), and returns it; `None` (nothing changed) for an unknown
    /// recipient.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; nothing changed then.
    async fn renew(&self, id: &RecipientId) -> Result<Option<i64>, RepositoryError>;
}
