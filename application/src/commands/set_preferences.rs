//! `SetPreferences`: replace a recipient's preference document whole (`PUT …/preferences`).

use std::sync::Arc;

use clairon_domain::{Preferences, RecipientId};

use crate::ports::{Clock, PreferenceRepository, RecipientRepository, RepositoryError};

/// Replace the recipient's preferences with `preferences` (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPreferences {
    /// Whose.
    pub recipient_id: RecipientId,
    /// The new document.
    pub preferences: Preferences,
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SetPreferencesError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// The database failed.
    #[error(transparent)]
    Repository(RepositoryError),
}

/// Handles [`SetPreferences`].
pub struct SetPreferencesHandler {
    recipients: Arc<dyn RecipientRepository>,
    preferences: Arc<dyn PreferenceRepository>,
    clock: Arc<dyn Clock>,
}

impl SetPreferencesHandler {
    /// Builds the handler on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        preferences: Arc<dyn PreferenceRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            recipients,
            preferences,
            clock,
        }
    }

    /// Checks the recipient exists, then stores the document dated now; returns it.
    ///
    /// # Errors
    /// [`SetPreferencesError`]; nothing is written then.
    #[tracing::instrument(name = "set_preferences", skip_all, fields(recipient_id = %command.recipient_id))]
    pub async fn execute(&self, command: SetPreferences) -> Result<Preferences, SetPreferencesError> {
        let id = command.recipient_id;
        if self
            .recipients
            .get(&id)
            .await
            .map_err(SetPreferencesError::Repository)?
            .is_none()
        {
            return Err(SetPreferencesError::UnknownRecipient(id));
        }
        match self
            .preferences
            .put(&id, &command.preferences, self.clock.now())
            .await
        {
            Ok(()) => Ok(command.preferences),
            // Erased between the check and the write.
            Err(RepositoryError::Conflict(_)) => Err(SetPreferencesError::UnknownRecipient(id)),
            Err(e) => Err(SetPreferencesError::Repository(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockPreferenceRepository, MockRecipientRepository};
    use crate::test_support::{fixed_clock, recipient};
    use serde_json::json;

    fn command() -> SetPreferences {
        SetPreferences {
            recipient_id: RecipientId::parse("artist-1").unwrap(),
            preferences: Preferences::parse(&json!({"channels": {"email": false}})).unwrap(),
        }
    }

    #[tokio::test]
    async fn the_document_is_stored_for_a_known_recipient() {
        let mut recipients = MockRecipientRepository::new();
        recipients
            .expect_get()
            .returning(|_| Ok(Some(recipient("artist-1"))));
        let mut store = MockPreferenceRepository::new();
        let expected = command().preferences;
        store
            .expect_put()
            .withf(move |id, p, _| id.as_str() == "artist-1" && *p == expected)
            .times(1)
            .returning(|_, _, _| Ok(()));
        let handler =
            SetPreferencesHandler::new(Arc::new(recipients), Arc::new(store), Arc::new(fixed_clock()));
        assert_eq!(handler.execute(command()).await.unwrap(), command().preferences);
    }

    #[tokio::test]
    async fn an_unknown_recipient_is_refused_and_nothing_is_written() {
        let mut recipients = MockRecipientRepository::new();
        recipients.expect_get().returning(|_| Ok(None));
        let mut store = MockPreferenceRepository::new();
        store.expect_put().never();
        let handler =
            SetPreferencesHandler::new(Arc::new(recipients), Arc::new(store), Arc::new(fixed_clock()));
        assert!(matches!(
            handler.execute(command()).await,
            Err(SetPreferencesError::UnknownRecipient(_))
        ));
    }
}
