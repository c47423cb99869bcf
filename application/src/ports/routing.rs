//! Where topics and the routing rules are kept.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{RecipientId, RoutingRules, Topic, TopicKey, TopicName};

use super::{RepositoryError, Upserted};

/// Stores topics and their members.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TopicRepository: Send + Sync {
    /// Creates the topic `key` or replaces its name and every member, in one transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails (a recipient erased meanwhile
    /// included); nothing is written then.
    async fn put(
        &self,
        key: &TopicKey,
        name: &TopicName,
        members: &[RecipientId],
    ) -> Result<Upserted, RepositoryError>;

    /// Adds `members` to the topic (those already in it stay once). `false` when no topic
    /// has that key (nothing written).
    ///
    /// # Errors
    /// As [`TopicRepository::put`].
    async fn add_members(
        &self,
        key: &TopicKey,
        members: &[RecipientId],
    ) -> Result<bool, RepositoryError>;

    /// Removes `member` from the topic (nothing to do when not a member). `false` when no topic
    /// has that key.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn remove_member(
        &self,
        key: &TopicKey,
        member: &RecipientId,
    ) -> Result<bool, RepositoryError>;

    /// The topic with its members (sorted), or `None`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; [`RepositoryError::Corrupt`]
    /// for a row that no longer validates.
    async fn get(&self, key: &TopicKey) -> Result<Option<Topic>, RepositoryError>;

    /// The members of the topics among `keys` that exist, each once, sorted, and the keys
    /// that name no topic (sorted).
    ///
    /// # Errors
    /// As [`TopicRepository::get`].
    async fn members_of(
        &self,
        keys: &[TopicKey],
    ) -> Result<(Vec<RecipientId>, Vec<TopicKey>), RepositoryError>;
}

/// One stored version of the routing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesVersion {
    /// 1 for the first stored set; 0 for the built-in default set (never stored).
    pub version: i64,
    /// The rules.
    pub rules: RoutingRules,
    /// When it was stored (UTC); `None` for the built-in default set.
    pub created_at: Option<DateTime<Utc>>,
}

/// Stores the routing rules as versions, append-only.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RoutingRulesRepository: Send + Sync {
    /// The newest stored version, or `None` when no set was ever stored.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; [`RepositoryError::Corrupt`]
    /// when the stored rules no longer validate.
    async fn current(&self) -> Result<Option<RulesVersion>, RepositoryError>;

    /// Stores `rules` as the next version (the newest plus one) and returns it.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; nothing is written then.
    async fn store(&self, rules: &RoutingRules) -> Result<RulesVersion, RepositoryError>;
}
