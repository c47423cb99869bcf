//! `HandlePlanningEvent`: a planning event arrives from the host application; publish it on the
//! bus so the listeners create the notifications.
//!
//! An event id seen before is not processed again: the handler answers with the notifications
//! the first delivery of the event created (`replayed = true`), and a replay racing the original
//! is stopped by the outbox's unique (source event, recipient) constraint.

use std::sync::Arc;

use clairon_domain::{PlanningEvent, PlanningEventId, PlanningId, SourceEventId};

use crate::commands::{CreatedNotification, DeliveryPlan};
use crate::events::{DomainEvent, EventBus, PublishError};
use crate::ports::{NotificationDetails, NotificationRepository, RepositoryError};

/// Handle one planning event.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlePlanningEvent {
    /// The validated event.
    pub event: PlanningEvent,
}

/// What handling the event did.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanningEventHandled {
    /// The event.
    pub event_id: PlanningEventId,
    /// Its planning.
    pub planning_id: PlanningId,
    /// The notifications it created (or, on a replay, had created).
    pub notifications: Vec<CreatedNotification>,
    /// Whether the event had been handled before and nothing new was created.
    pub replayed: bool,
}

/// Why the event was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum HandlePlanningEventError {
    /// A listener refused it.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The database failed while checking for a replay.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`HandlePlanningEvent`].
pub struct HandlePlanningEventHandler {
    bus: Arc<EventBus>,
    notifications: Arc<dyn NotificationRepository>,
}

impl HandlePlanningEventHandler {
    /// Builds the handler.
    pub fn new(bus: Arc<EventBus>, notifications: Arc<dyn NotificationRepository>) -> Self {
        Self { bus, notifications }
    }

    /// Publishes the event unless it was handled before.
    ///
    /// # Errors
    /// [`HandlePlanningEventError`]; nothing is written then.
    #[tracing::instrument(
        name = "handle_planning_event",
        skip_all,
        fields(event_id = %command.event.event_id, planning_id = %command.event.planning.id, kind = ?command.event.kind)
    )]
    pub async fn execute(
        &self,
        command: HandlePlanningEvent,
    ) -> Result<PlanningEventHandled, HandlePlanningEventError> {
        let event = command.event;
        let source = SourceEventId::parse(event.event_id.as_str())
            .unwrap_or_else(|_| unreachable!("planning event ids are valid source ids"));
        if let Some(handled) = self.replay(&event, &source).await? {
            return Ok(handled);
        }
        let event_id = event.event_id.clone();
        let planning_id = event.planning.id.clone();
        match self
            .bus
            .publish(&DomainEvent::Planning(event.clone()))
            .await
        {
            Ok(notifications) => Ok(PlanningEventHandled {
                event_id,
                planning_id,
                notifications,
                replayed: false,
            }),
            // A concurrent delivery of the same event won the race: answer as a replay.
            Err(PublishError::Duplicate(_)) => match self.replay(&event, &source).await? {
                Some(handled) => Ok(handled),
                None => Err(PublishError::Duplicate(event.event_id.to_string()).into()),
            },
            Err(other) => Err(other.into()),
        }
    }

    async fn replay(
        &self,
        event: &PlanningEvent,
        source: &SourceEventId,
    ) -> Result<Option<PlanningEventHandled>, RepositoryError> {
        let existing = self.notifications.find_by_source_event(source).await?;
        if existing.is_empty() {
            return Ok(None);
        }
        tracing::info!(
            count = existing.len(),
            "event already handled; answering as a replay"
        );
        Ok(Some(PlanningEventHandled {
            event_id: event.event_id.clone(),
            planning_id: event.planning.id.clone(),
            notifications: existing.into_iter().map(created_from).collect(),
            replayed: true,
        }))
    }
}

pub(crate) fn created_from(details: NotificationDetails) -> CreatedNotification {
    CreatedNotification {
        id: details.notification.id,
        recipient_id: details.notification.recipient_id,
        deliveries: details
            .deliveries
            .into_iter()
            .map(|d| DeliveryPlan {
                channel: d.channel,
                status: d.status,
                reason: d.last_error,
            })
            .collect(),
    }
}
