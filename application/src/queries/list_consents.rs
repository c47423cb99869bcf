//! `ListConsents`: a recipient's consent history, newest first.

use std::sync::Arc;

use clairon_domain::{Consent, RecipientId};

use crate::ports::{ConsentRepository, RecipientRepository, RepositoryError};

/// Read the recipient's consent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListConsents {
    /// Whose.
    pub recipient_id: RecipientId,
}

/// Why nothing was read.
#[derive(Debug, thiserror::Error)]
pub enum ListConsentsError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`ListConsents`].
pub struct ListConsentsHandler {
    recipients: Arc<dyn RecipientRepository>,
    consents: Arc<dyn ConsentRepository>,
}

impl ListConsentsHandler {
    /// Builds the handler on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        consents: Arc<dyn ConsentRepository>,
    ) -> Self {
        Self {
            recipients,
            consents,
        }
    }

    /// Every record, newest first (empty when none was ever made).
    ///
    /// # Errors
    /// [`ListConsentsError`].
    pub async fn execute(&self, query: ListConsents) -> Result<Vec<Consent>, ListConsentsError> {
        if self.recipients.get(&query.recipient_id).await?.is_none() {
            return Err(ListConsentsError::UnknownRecipient(query.recipient_id));
        }
        Ok(self.consents.history(&query.recipient_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockConsentRepository, MockRecipientRepository};

    #[tokio::test]
    async fn an_unknown_recipient_has_no_history_to_show() {
        let mut recipients = MockRecipientRepository::new();
        recipients.expect_get().returning(|_| Ok(None));
        let mut consents = MockConsentRepository::new();
        consents.expect_history().never();
        let handler = ListConsentsHandler::new(Arc::new(recipients), Arc::new(consents));
        assert!(matches!(
            handler
                .execute(ListConsents {
                    recipient_id: RecipientId::parse("nobody").unwrap(),
                })
                .await,
            Err(ListConsentsError::UnknownRecipient(_))
        ));
    }
}
