//! `HandleEvent`: any domain event arrives (`POST /api/v1/events`); publish it on the bus so
//! the [`crate::routing::GenericEventListener`] creates the notifications.
//!
//! As for planning events, an event id seen before is not processed again: the handler answers
//! with the notifications the first delivery created (`replayed = true`), and a replay racing
//! the original is stopped by the outbox's unique (source event, recipient) constraint, then
//! answered as a replay too. Event ids share one space with planning event ids.

use std::sync::Arc;

use clairon_domain::{EventType, GenericEvent, SourceEventId};

use crate::commands::handle_planning_event::created_from;
use crate::commands::CreatedNotification;
use crate::events::{DomainEvent, EventBus, PublishError};
use crate::ports::{NotificationRepository, RepositoryError};

/// Handle one domain event.
#[derive(Debug, Clone, PartialEq)]
pub struct HandleEvent {
    /// The validated event.
    pub event: GenericEvent,
}

/// What handling the event did.
#[derive(Debug, Clone, PartialEq)]
pub struct EventHandled {
    /// The event's id.
    pub event_id: SourceEventId,
    /// Its type.
    pub event_type: EventType,
    /// The notifications it created (or, on a replay, had created).
    pub notifications: Vec<CreatedNotification>,
    /// Whether the event had been handled before and nothing new was created.
    pub replayed: bool,
}

/// Why the event was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum HandleEventError {
    /// A listener refused it.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The database failed while checking for a replay.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`HandleEvent`].
pub struct HandleEventHandler {
    bus: Arc<EventBus>,
    notifications: Arc<dyn NotificationRepository>,
}

impl HandleEventHandler {
    /// Builds the handler.
    pub fn new(bus: Arc<EventBus>, notifications: Arc<dyn NotificationRepository>) -> Self {
        Self { bus, notifications }
    }

    /// Publishes the event unless its id was handled before.
    ///
    /// # Errors
    /// [`HandleEventError`]; nothing is written then.
    #[tracing::instrument(
        name = "handle_event",
        skip_all,
        fields(event_id = %command.event.event_id, event_type = command.event.event_type.as_str())
    )]
    pub async fn execute(&self, command: HandleEvent) -> Result<EventHandled, HandleEventError> {
        let event = command.event;
        if let Some(handled) = self.replay(&event).await? {
            return Ok(handled);
        }
        match self.bus.publish(&DomainEvent::Generic(event.clone())).await {
            Ok(notifications) => Ok(EventHandled {
                event_id: event.event_id,
                event_type: event.event_type,
                notifications,
                replayed: false,
            }),
            // A concurrent delivery of the same event won the race: answer as a replay.
            Err(PublishError::Duplicate(_)) => match self.replay(&event).await? {
                Some(handled) => Ok(handled),
                None => Err(PublishError::Duplicate(event.event_id.to_string()).into()),
            },
            Err(other) => Err(other.into()),
        }
    }

    async fn replay(&self, event: &GenericEvent) -> Result<Option<EventHandled>, RepositoryError> {
        let existing = self
            .notifications
            .find_by_source_event(&event.event_id)
            .await?;
        if existing.is_empty() {
            return Ok(None);
        }
        tracing::info!(
            count = existing.len(),
            "event already handled; answering as a replay"
        );
        Ok(Some(EventHandled {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            notifications: existing.into_iter().map(created_from).collect(),
            replayed: true,
        }))
    }
}
