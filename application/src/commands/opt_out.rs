//! `OptOut`: switch one channel off for one event type of one recipient
//! (`event_types.<type>.<channel> = false`): what the one-click unsubscribe of an email does
//! (RFC 8058). Idempotent.

use std::sync::Arc;

use clairon_domain::{ChannelName, EventType, RecipientId};

use crate::ports::{Clock, PreferenceRepository, RepositoryError};

/// Switch `channel` off for `event_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    /// Whose preferences.
    pub recipient_id: RecipientId,
    /// The exact event type (the key written).
    pub event_type: EventType,
    /// The channel; never `in_app`.
    pub channel: ChannelName,
}

/// Why nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum OptOutError {
    /// No such recipient (erased since the link was made).
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// `in_app` cannot be switched off.
    #[error("in_app cannot be switched off: the inbox is the record")]
    InApp,
    /// The database failed.
    #[error(transparent)]
    Repository(RepositoryError),
}

/// Handles [`OptOut`].
pub struct OptOutHandler {
    preferences: Arc<dyn PreferenceRepository>,
    clock: Arc<dyn Clock>,
}

impl OptOutHandler {
    /// Builds the handler on its ports.
    pub fn new(preferences: Arc<dyn PreferenceRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { preferences, clock }
    }

    /// Writes the entry (read, changed and written in one transaction by the repository).
    ///
    /// # Errors
    /// [`OptOutError`]; nothing changed then.
    #[tracing::instrument(name = "opt_out", skip_all, fields(recipient_id = %command.recipient_id, event_type = command.event_type.as_str(), channel = %command.channel))]
    pub async fn execute(&self, command: OptOut) -> Result<(), OptOutError> {
        if command.channel == ChannelName::IN_APP {
            return Err(OptOutError::InApp);
        }
        match self
            .preferences
            .opt_out(
                &command.recipient_id,
                &command.event_type,
                command.channel,
                self.clock.now(),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(RepositoryError::Conflict(_)) => {
                Err(OptOutError::UnknownRecipient(command.recipient_id))
            }
            Err(e) => Err(OptOutError::Repository(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockPreferenceRepository;
    use crate::test_support::fixed_clock;

    fn command(channel: &str) -> OptOut {
        OptOut {
            recipient_id: RecipientId::parse("artist-1").unwrap(),
            event_type: EventType::parse("planning.modified").unwrap(),
            channel: ChannelName::parse(channel).unwrap(),
        }
    }

    #[tokio::test]
    async fn the_entry_is_written_for_the_event_type_and_channel() {
        let mut store = MockPreferenceRepository::new();
        store
            .expect_opt_out()
            .withf(|id, t, c, _| {
                id.as_str() == "artist-1" && t.as_str() == "planning.modified" && c.as_str() == "email"
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let handler = OptOutHandler::new(Arc::new(store), Arc::new(fixed_clock()));
        handler.execute(command("email")).await.unwrap();
    }

    #[tokio::test]
    async fn in_app_cannot_be_opted_out_of() {
        let mut store = MockPreferenceRepository::new();
        store.expect_opt_out().never();
        let handler = OptOutHandler::new(Arc::new(store), Arc::new(fixed_clock()));
        assert!(matches!(
            handler.execute(command("in_app")).await,
            Err(OptOutError::InApp)
        ));
    }

    #[tokio::test]
    async fn a_recipient_erased_since_is_unknown() {
        let mut store = MockPreferenceRepository::new();
        store
            .expect_opt_out()
            .returning(|_, _, _, _| Err(RepositoryError::Conflict("recipients".into())));
        let handler = OptOutHandler::new(Arc::new(store), Arc::new(fixed_clock()));
        assert!(matches!(
            handler.execute(command("email")).await,
            Err(OptOutError::UnknownRecipient(_))
        ));
    }
}
