//! `GetPreferences`: a recipient's preference document, or the defaults when they never set
//! one (`{"channels": {}, "event_types": {}, "quiet_hours": null}`: everything allowed).

use std::sync::Arc;

use clairon_domain::{Preferences, RecipientId};

use crate::ports::{PreferenceRepository, RecipientRepository, RepositoryError};

/// Read the recipient's preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetPreferences {
    /// Whose.
    pub recipient_id: RecipientId,
}

/// Why nothing was read.
#[derive(Debug, thiserror::Error)]
pub enum GetPreferencesError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`GetPreferences`].
pub struct GetPreferencesHandler {
    recipients: Arc<dyn RecipientRepository>,
    preferences: Arc<dyn PreferenceRepository>,
}

impl GetPreferencesHandler {
    /// Builds the handler on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        preferences: Arc<dyn PreferenceRepository>,
    ) -> Self {
        Self {
            recipients,
            preferences,
        }
    }

    /// The stored document, or [`Preferences::default`].
    ///
    /// # Errors
    /// [`GetPreferencesError`].
    pub async fn execute(&self, query: GetPreferences) -> Result<Preferences, GetPreferencesError> {
        if self.recipients.get(&query.recipient_id).await?.is_none() {
            return Err(GetPreferencesError::UnknownRecipient(query.recipient_id));
        }
        Ok(self
            .preferences
            .get(&query.recipient_id)
            .await?
            .map(|stored| stored.preferences)
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockPreferenceRepository, MockRecipientRepository};
    use crate::test_support::recipient;

    #[tokio::test]
    async fn someone_who_never_set_preferences_gets_the_defaults() {
        let mut recipients = MockRecipientRepository::new();
        recipients
            .expect_get()
            .returning(|_| Ok(Some(recipient("artist-1"))));
        let mut store = MockPreferenceRepository::new();
        store.expect_get().returning(|_| Ok(None));
        let handler = GetPreferencesHandler::new(Arc::new(recipients), Arc::new(store));
        let read = handler
            .execute(GetPreferences {
                recipient_id: RecipientId::parse("artist-1").unwrap(),
            })
            .await
            .unwrap();
        assert_eq!(read, Preferences::default());
    }

    #[tokio::test]
    async fn an_unknown_recipient_is_not_found() {
        let mut recipients = MockRecipientRepository::new();
        recipients.expect_get().returning(|_| Ok(None));
        let mut store = MockPreferenceRepository::new();
        store.expect_get().never();
        let handler = GetPreferencesHandler::new(Arc::new(recipients), Arc::new(store));
        assert!(matches!(
            handler
                .execute(GetPreferences {
                    recipient_id: RecipientId::parse("nobody").unwrap(),
                })
                .await,
            Err(GetPreferencesError::UnknownRecipient(_))
        ));
    }
}
