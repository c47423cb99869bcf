//! `UpsertRecipient` / import: register or update recipients by the host application's id.

use std::sync::Arc;

use clairon_domain::Recipient;

use crate::ports::{RecipientRepository, RepositoryError, Upserted};

/// Creates or replaces recipients, all or none. One recipient is the `PUT /recipients/{id}`
/// case; many is the import.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertRecipients {
    /// Validated recipients; ids are unique within the command.
    pub recipients: Vec<Recipient>,
}

/// Why an upsert failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum UpsertRecipientsError {
    /// The same id appears twice in one import.
    #[error("recipient {0} appears more than once")]
    DuplicateId(String),
    /// The import holds more than [`UpsertRecipientsHandler::MAX_BATCH`] recipients.
    #[error("at most {max} recipients per import")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The repository failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`UpsertRecipients`].
pub struct UpsertRecipientsHandler {
    recipients: Arc<dyn RecipientRepository>,
}

impl UpsertRecipientsHandler {
    /// Most recipients one import may carry.
    pub const MAX_BATCH: usize = 10_000;

    /// Builds the handler on its port.
    pub fn new(recipients: Arc<dyn RecipientRepository>) -> Self {
        Self { recipients }
    }

    /// Writes the recipients in one transaction; returns, per input, whether it was created or
    /// updated.
    ///
    /// # Errors
    /// [`UpsertRecipientsError`]; nothing is written then.
    #[tracing::instrument(name = "upsert_recipients", skip_all, fields(count = command.recipients.len()))]
    pub async fn execute(
        &self,
        command: UpsertRecipients,
    ) -> Result<Vec<Upserted>, UpsertRecipientsError> {
        if command.recipients.len() > Self::MAX_BATCH {
            return Err(UpsertRecipientsError::TooMany {
                max: Self::MAX_BATCH,
            });
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = command.recipients.iter().find(|r| !seen.insert(&r.id)) {
            return Err(UpsertRecipientsError::DuplicateId(dup.id.to_string()));
        }
        Ok(self.recipients.upsert_many(&command.recipients).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockRecipientRepository;
    use crate::test_support::recipient;

    #[tokio::test]
    async fn an_import_with_a_repeated_id_writes_nothing() {
        let mut repo = MockRecipientRepository::new();
        repo.expect_upsert_many().never();
        let handler = UpsertRecipientsHandler::new(Arc::new(repo));
        let err = handler
            .execute(UpsertRecipients {
                recipients: vec![recipient("artist-1"), recipient("artist-1")],
            })
            .await
            .unwrap_err();
        assert!(matches!(err, UpsertRecipientsError::DuplicateId(id) if id == "artist-1"));
    }

    #[tokio::test]
    async fn recipients_are_written_in_one_call() {
        let mut repo = MockRecipientRepository::new();
        repo.expect_upsert_many()
            .withf(|rs| rs.len() == 2)
            .times(1)
            .returning(|_| Ok(vec![Upserted::Created, Upserted::Updated]));
        let handler = UpsertRecipientsHandler::new(Arc::new(repo));
        let result = handler
            .execute(UpsertRecipients {
                recipients: vec![recipient("artist-1"), recipient("artist-2")],
            })
            .await
            .unwrap();
        assert_eq!(result, vec![Upserted::Created, Upserted::Updated]);
    }
}
