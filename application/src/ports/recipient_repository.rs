//! Where recipients are kept.

use async_trait::async_trait;
use clairon_domain::SlackWebhookUrl;
use clairon_domain::{Recipient, RecipientId, TelegramChatId, WebhookUrl};

use super::RepositoryError;

/// Whether an upsert created the recipient or replaced an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The id was new.
    Created,
    /// The id existed; every field was replaced.
    Updated,
}

/// Stores recipients by the host application's id.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RecipientRepository: Send + Sync {
    /// Creates or replaces every recipient in ONE transaction: all are written or none.
    /// Returns one [`Upserted`] per input, in input order. MUST keep a recipient's
    /// `telegram_unreachable` mark when the chat id stays the same and clear it when it changes
    /// (the mark is never taken from the input).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; nothing is written then.
    async fn upsert_many(&self, recipients: &[Recipient])
        -> Result<Vec<Upserted>, RepositoryError>;

    /// The recipient with `id`, or `None`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails; [`RepositoryError::Corrupt`]
    /// when the stored row no longer validates.
    async fn get(&self, id: &RecipientId) -> Result<Option<Recipient>, RepositoryError>;

    /// The recipients among `ids` that exist, in no particular order; unknown ids are left out.
    ///
    /// # Errors
    /// As [`RecipientRepository::get`].
    async fn get_many(&self, ids: &[RecipientId]) -> Result<Vec<Recipient>, RepositoryError>;

    /// Remembers that Telegram refused `chat_id` for good, with Telegram's `reason`: from now on
    /// the recipient reads back with `telegram_unreachable` set, until their chat id changes.
    /// MUST do nothing when the recipient is unknown or their chat id is no longer `chat_id`
    /// (they changed it while the message was in flight).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn mark_telegram_unreachable(
        &self,
        id: &RecipientId,
        chat_id: &TelegramChatId,
        reason: &str,
    ) -> Result<(), RepositoryError>;

    /// Remembers that the webhook endpoint `url` answered `410 Gone` (`reason`): from now on the
    /// recipient reads back with `webhook_disabled` set, until their webhook URL changes. MUST do
    /// nothing when the recipient is unknown or their URL is no longer `url`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn mark_webhook_disabled(
        &self,
        id: &RecipientId,
        url: &WebhookUrl,
        reason: &str,
    ) -> Result<(), RepositoryError>;

    /// Remembers that Slack refused the incoming webhook `url` for good (`reason`: `404`/`410`,
    /// `no_service`, `channel_not_found`, `invalid_token`): from now on the recipient reads back
    /// with `slack_unreachable` set, until their Slack webhook URL changes. MUST do nothing when
    /// the recipient is unknown or their URL is no longer `url`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    async fn mark_slack_unreachable(
        &self,
        id: &RecipientId,
        url: &SlackWebhookUrl,
        reason: &str,
    ) -> Result<(), RepositoryError>;
}
