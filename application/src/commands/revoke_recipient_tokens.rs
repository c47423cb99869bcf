//! `RevokeRecipientTokens`: every token issued for a recipient so far stops working — a lost
//! device, a signed-out user, a suspicion. Their open live connections are told to close.

use std::sync::Arc;

use clairon_domain::RecipientId;

use crate::ports::{RealtimeEvent, RealtimePublisher, RepositoryError, TokenGenerations};

/// Revoke every token of a recipient issued until now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeRecipientTokens {
    /// Whose tokens.
    pub recipient_id: RecipientId,
}

/// Why nothing was revoked.
#[derive(Debug, thiserror::Error)]
pub enum RevokeRecipientTokensError {
    /// No such recipient (their tokens, if any, are refused already).
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// The database failed; the tokens still work.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`RevokeRecipientTokens`].
pub struct RevokeRecipientTokensHandler {
    generations: Arc<dyn TokenGenerations>,
    realtime: Arc<dyn RealtimePublisher>,
}

impl RevokeRecipientTokensHandler {
    /// Builds the handler on its ports.
    pub fn new(
        generations: Arc<dyn TokenGenerations>,
        realtime: Arc<dyn RealtimePublisher>,
    ) -> Self {
        Self {
            generations,
            realtime,
        }
    }

    /// Draws the recipient a new token generation — from then on every older token is refused
    /// — and publishes [`RealtimeEvent::TokensRevoked`] so their open connections close.
    ///
    /// # Errors
    /// [`RevokeRecipientTokensError`]; nothing is published then.
    #[tracing::instrument(name = "revoke_recipient_tokens", skip_all, fields(recipient_id = %command.recipient_id))]
    pub async fn execute(
        &self,
        command: RevokeRecipientTokens,
    ) -> Result<(), RevokeRecipientTokensError> {
        if self
            .generations
            .renew(&command.recipient_id)
            .await?
            .is_none()
        {
            return Err(RevokeRecipientTokensError::UnknownRecipient(
                command.recipient_id,
            ));
        }
        self.realtime
            .publish(RealtimeEvent::TokensRevoked {
                recipient_id: command.recipient_id,
            })
            .await;
        tracing::info!("recipient tokens revoked");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockRealtimePublisher, MockTokenGenerations};

    fn artist() -> RecipientId {
        RecipientId::parse("artist-0001").unwrap()
    }

    #[tokio::test]
    async fn revoking_renews_the_generation_then_tells_the_open_connections() {
        let mut generations = MockTokenGenerations::new();
        generations
            .expect_renew()
            .withf(|id| id.as_str() == "artist-0001")
            .times(1)
            .returning(|_| Ok(Some(42)));
        let mut realtime = MockRealtimePublisher::new();
        realtime
            .expect_publish()
            .withf(|e| {
                matches!(e, RealtimeEvent::TokensRevoked { recipient_id } if recipient_id.as_str() == "artist-0001")
            })
            .times(1)
            .returning(|_| ());
        let handler = RevokeRecipientTokensHandler::new(Arc::new(generations), Arc::new(realtime));

        let revoked = handler
            .execute(RevokeRecipientTokens {
                recipient_id: artist(),
            })
            .await;

        assert!(revoked.is_ok(), "revoked: {revoked:?}");
    }

    #[tokio::test]
    async fn an_unknown_recipient_is_said_so_and_nothing_is_published() {
        let mut generations = MockTokenGenerations::new();
        generations.expect_renew().returning(|_| Ok(None));
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish().never();
        let handler = RevokeRecipientTokensHandler::new(Arc::new(generations), Arc::new(realtime));

        let revoked = handler
            .execute(RevokeRecipientTokens {
                recipient_id: artist(),
            })
            .await;

        assert!(
            matches!(
                revoked,
                Err(RevokeRecipientTokensError::UnknownRecipient(_))
            ),
            "{revoked:?}"
        );
    }

    #[tokio::test]
    async fn a_database_failure_revokes_nothing_and_publishes_nothing() {
        let mut generations = MockTokenGenerations::new();
        generations
            .expect_renew()
            .returning(|_| Err(RepositoryError::Unavailable("down".into())));
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish().never();
        let handler = RevokeRecipientTokensHandler::new(Arc::new(generations), Arc::new(realtime));

        let revoked = handler
            .execute(RevokeRecipientTokens {
                recipient_id: artist(),
            })
            .await;

        assert!(
            matches!(revoked, Err(RevokeRecipientTokensError::Repository(_))),
            "{revoked:?}"
        );
    }
}
