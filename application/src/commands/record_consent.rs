//! `RecordConsent`: append a grant or a withdrawal to a recipient's consent history
//! (`POST …/consents`). A withdrawal cancels their pending deliveries on that channel in the
//! same transaction (`consent_revoked`).

use std::sync::Arc;

use clairon_domain::{NewConsent, RecipientId};

use crate::ports::{
    Clock, ConsentRepository, RecipientRepository, RecordedConsent, RepositoryError,
};

/// Record `consent` for the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConsent {
    /// Whose.
    pub recipient_id: RecipientId,
    /// What they granted or withdrew.
    pub consent: NewConsent,
}

/// Why nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordConsentError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// The database failed.
    #[error(transparent)]
    Repository(RepositoryError),
}

/// Handles [`RecordConsent`].
pub struct RecordConsentHandler {
    recipients: Arc<dyn RecipientRepository>,
    consents: Arc<dyn ConsentRepository>,
    clock: Arc<dyn Clock>,
}

impl RecordConsentHandler {
    /// Builds the handler on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        consents: Arc<dyn ConsentRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            recipients,
            consents,
            clock,
        }
    }

    /// Checks the recipient exists, then records the consent dated now.
    ///
    /// # Errors
    /// [`RecordConsentError`]; nothing is written then.
    #[tracing::instrument(name = "record_consent", skip_all, fields(recipient_id = %command.recipient_id, channel = %command.consent.channel, granted = command.consent.granted))]
    pub async fn execute(
        &self,
        command: RecordConsent,
    ) -> Result<RecordedConsent, RecordConsentError> {
        let id = command.recipient_id;
        if self
            .recipients
            .get(&id)
            .await
            .map_err(RecordConsentError::Repository)?
            .is_none()
        {
            return Err(RecordConsentError::UnknownRecipient(id));
        }
        match self
            .consents
            .record(&id, &command.consent, self.clock.now())
            .await
        {
            Ok(recorded) => {
                if recorded.cancelled > 0 {
                    tracing::info!(
                        cancelled = recorded.cancelled,
                        "consent withdrawn: pending deliveries cancelled"
                    );
                }
                Ok(recorded)
            }
            Err(RepositoryError::Conflict(_)) => Err(RecordConsentError::UnknownRecipient(id)),
            Err(e) => Err(RecordConsentError::Repository(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockConsentRepository, MockRecipientRepository};
    use crate::test_support::{fixed_clock, recipient};
    use clairon_domain::{ChannelName, Consent, ConsentSource};

    fn withdrawal() -> NewConsent {
        NewConsent {
            channel: ChannelName::parse("email").unwrap(),
            granted: false,
            source: ConsentSource::parse("support-call").unwrap(),
            wording: None,
        }
    }

    #[tokio::test]
    async fn a_withdrawal_is_recorded_at_the_clocks_now_with_what_it_cancelled() {
        let mut recipients = MockRecipientRepository::new();
        recipients
            .expect_get()
            .returning(|_| Ok(Some(recipient("artist-1"))));
        let now = fixed_clock().now();
        let mut consents = MockConsentRepository::new();
        consents
            .expect_record()
            .withf(move |id, c, at| id.as_str() == "artist-1" && !c.granted && *at == now)
            .times(1)
            .returning(|id, c, at| {
                Ok(RecordedConsent {
                    consent: Consent {
                        id: 7,
                        recipient_id: id.clone(),
                        channel: c.channel,
                        granted: c.granted,
                        source: c.source.clone(),
                        wording: None,
                        recorded_at: at,
                    },
                    cancelled: 2,
                })
            });
        let handler = RecordConsentHandler::new(
            Arc::new(recipients),
            Arc::new(consents),
            Arc::new(fixed_clock()),
        );
        let recorded = handler
            .execute(RecordConsent {
                recipient_id: RecipientId::parse("artist-1").unwrap(),
                consent: withdrawal(),
            })
            .await
            .unwrap();
        assert_eq!((recorded.consent.id, recorded.cancelled), (7, 2));
    }

    #[tokio::test]
    async fn an_unknown_recipient_records_nothing() {
        let mut recipients = MockRecipientRepository::new();
        recipients.expect_get().returning(|_| Ok(None));
        let mut consents = MockConsentRepository::new();
        consents.expect_record().never();
        let handler = RecordConsentHandler::new(
            Arc::new(recipients),
            Arc::new(consents),
            Arc::new(fixed_clock()),
        );
        let refused = handler
            .execute(RecordConsent {
                recipient_id: RecipientId::parse("nobody").unwrap(),
                consent: withdrawal(),
            })
            .await;
        assert!(matches!(refused, Err(RecordConsentError::UnknownRecipient(_))));
    }
}
