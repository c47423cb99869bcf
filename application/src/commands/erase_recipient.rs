//! `EraseRecipient`: the right to erasure (GDPR article 17). The recipient, their notifications,
//! deliveries and attempts go in one transaction; an audit row without personal data records
//! that it happened, when, and at whose request.

use std::sync::Arc;

use clairon_domain::RecipientId;

use crate::ports::{
    Clock, ErasedCounts, ErasureAudit, ErasureOutcome, PersonalDataStore, RealtimeEvent,
    RealtimePublisher, RepositoryError,
};

/// Erase one recipient and everything about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseRecipient {
    /// Whom.
    pub recipient_id: RecipientId,
    /// Who asks, for the audit row: `api-key:{id}`, or `env` for a `CLAIRON_API_KEYS` key.
    pub actor: String,
}

/// Why nothing was erased.
#[derive(Debug, thiserror::Error)]
pub enum EraseRecipientError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// A delivery to them is being sent at this moment; try again once it is recorded.
    #[error("a delivery to recipient {0} is being sent right now; retry in a few seconds")]
    DeliveryInFlight(RecipientId),
    /// The database failed; nothing was erased.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`EraseRecipient`].
pub struct EraseRecipientHandler {
    store: Arc<dyn PersonalDataStore>,
    clock: Arc<dyn Clock>,
    realtime: Option<Arc<dyn RealtimePublisher>>,
}

impl EraseRecipientHandler {
    /// Builds the handler on its ports.
    pub fn new(store: Arc<dyn PersonalDataStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            realtime: None,
        }
    }

    /// Also publishes [`RealtimeEvent::TokensRevoked`] after each erasure, so the erased
    /// recipient's open live connections close (their tokens are refused from the commit on:
    /// the recipient row, and so its token generation, is gone).
    #[must_use]
    pub fn with_realtime(mut self, realtime: Arc<dyn RealtimePublisher>) -> Self {
        self.realtime = Some(realtime);
        self
    }

    /// Erases, whole or not at all.
    ///
    /// # Errors
    /// [`EraseRecipientError`].
    // The recipient id is personal data: it stays out of the span.
    #[tracing::instrument(name = "erase_recipient", skip_all, fields(actor = %command.actor))]
    pub async fn execute(
        &self,
        command: EraseRecipient,
    ) -> Result<ErasedCounts, EraseRecipientError> {
        let audit = ErasureAudit {
            actor: command.actor,
            at: self.clock.now(),
        };
        match self.store.erase(&command.recipient_id, &audit).await? {
            ErasureOutcome::Erased(counts) => {
                tracing::info!(
                    notifications = counts.notifications,
                    deliveries = counts.deliveries,
                    attempts = counts.attempts,
                    "recipient erased"
                );
                if let Some(realtime) = &self.realtime {
                    realtime
                        .publish(RealtimeEvent::TokensRevoked {
                            recipient_id: command.recipient_id,
                        })
                        .await;
                }
                Ok(counts)
            }
            ErasureOutcome::UnknownRecipient => {
                Err(EraseRecipientError::UnknownRecipient(command.recipient_id))
            }
            ErasureOutcome::DeliveryInFlight => {
                Err(EraseRecipientError::DeliveryInFlight(command.recipient_id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use rstest::rstest;

    use super::*;
    use crate::ports::{MockClock, MockPersonalDataStore};

    fn handler(outcome: ErasureOutcome) -> EraseRecipientHandler {
        let now = Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().returning(move || now);
        let mut store = MockPersonalDataStore::new();
        store
            .expect_erase()
            .withf(move |id, audit| {
                id.as_str() == "artist-0001" && audit.actor == "api-key:7" && audit.at == now
            })
            .times(1)
            .returning(move |_, _| Ok(outcome));
        EraseRecipientHandler::new(Arc::new(store), Arc::new(clock))
    }

    fn command() -> EraseRecipient {
        EraseRecipient {
            recipient_id: RecipientId::parse("artist-0001").unwrap(),
            actor: "api-key:7".into(),
        }
    }

    #[tokio::test]
    async fn an_erasure_is_audited_with_the_actor_and_the_time_and_reports_its_counts() {
        let counts = ErasedCounts {
            notifications: 2,
            deliveries: 6,
            attempts: 4,
        };
        let erased = handler(ErasureOutcome::Erased(counts))
            .execute(command())
            .await
            .unwrap();
        assert_eq!(erased, counts);
    }

    #[tokio::test]
    async fn an_erasure_tells_the_recipients_open_connections_their_tokens_are_revoked() {
        let mut realtime = crate::ports::MockRealtimePublisher::new();
        realtime
            .expect_publish()
            .withf(|e| {
                matches!(e, RealtimeEvent::TokensRevoked { recipient_id } if recipient_id.as_str() == "artist-0001")
            })
            .times(1)
            .returning(|_| ());
        let handler = handler(ErasureOutcome::Erased(ErasedCounts::default()))
            .with_realtime(Arc::new(realtime));

        let erased = handler.execute(command()).await;

        assert!(erased.is_ok(), "erased: {erased:?}");
    }

    #[tokio::test]
    async fn an_erasure_that_did_not_happen_revokes_nothing() {
        let mut realtime = crate::ports::MockRealtimePublisher::new();
        realtime.expect_publish().never();
        let handler = handler(ErasureOutcome::DeliveryInFlight).with_realtime(Arc::new(realtime));

        let erased = handler.execute(command()).await;

        assert!(erased.is_err(), "nothing erased: {erased:?}");
    }

    #[rstest]
    #[case::unknown(ErasureOutcome::UnknownRecipient, "not found")]
    #[case::in_flight(ErasureOutcome::DeliveryInFlight, "being sent")]
    #[tokio::test]
    async fn an_erasure_that_cannot_happen_says_why(
        #[case] outcome: ErasureOutcome,
        #[case] said: &str,
    ) {
        let error = handler(outcome).execute(command()).await.unwrap_err();
        assert!(error.to_string().contains(said), "{error}");
    }
}
