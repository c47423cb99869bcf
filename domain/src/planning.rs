//! Plannings and their domain events: an artist was assigned, a planning changed, was cancelled,
//! or starts tomorrow.
//!
//! The host application owns plannings; Clairon only receives snapshots of them inside events,
//! validated here once so the rules never see an impossible planning (one that ends before it
//! starts, in an unknown time zone, with a malformed contact).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{bounded_text, single_line_text, ValidationError};
use crate::notification::{opaque_id, EventType};
use crate::recipient::{EmailAddress, PhoneNumber, RecipientId, TimeZone};

opaque_id!(
    /// The host application's id of a planning (`pl-00042`).
    PlanningId,
    "planning_id"
);

opaque_id!(
    /// The producer's id of one planning event (`evt-000001`), unique per event.
    PlanningEventId,
    "event_id"
);

/// Where a planning takes place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Venue name, 1 to 200 characters.
    pub name: String,
    /// Postal address, 1 to 500 characters.
    pub address: String,
}

impl Location {
    /// Validates a location.
    ///
    /// # Errors
    /// [`ValidationError`] on `name` or `address` when blank or too long, on `name` when it holds
    /// a control character.
    pub fn new(name: &str, address: &str) -> Result<Self, ValidationError> {
        Ok(Self {
            // The venue's name goes into the reminder's email subject.
            name: single_line_text("name", name, 200)?,
            address: bounded_text("address", address, 500)?,
        })
    }
}

/// When a planning takes place, and the IANA zone it is planned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Start instant (UTC).
    pub starts_at: DateTime<Utc>,
    /// End instant (UTC), strictly after the start.
    pub ends_at: DateTime<Utc>,
    /// The zone the planning is planned in (`Europe/Paris`).
    pub timezone: TimeZone,
}

impl Schedule {
    /// Validates a schedule.
    ///
    /// # Errors
    /// [`ValidationError`] on `ends_at` when it is not after `starts_at`.
    pub fn new(
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        timezone: TimeZone,
    ) -> Result<Self, ValidationError> {
        if ends_at <= starts_at {
            return Err(ValidationError::new("ends_at", "must be after starts_at"));
        }
        Ok(Self {
            starts_at,
            ends_at,
            timezone,
        })
    }
}

/// The person to call about a planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Display name.
    pub name: String,
    /// E.164 phone number.
    pub phone: Option<PhoneNumber>,
    /// Email address.
    pub email: Option<EmailAddress>,
}

impl Contact {
    /// Validates a contact.
    ///
    /// # Errors
    /// [`ValidationError`] on `name` (blank, too long, a control character), `phone` or `email`.
    pub fn new(
        name: &str,
        phone: Option<&str>,
        email: Option<&str>,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            name: single_line_text("name", name, 200)?,
            phone: phone.map(PhoneNumber::parse).transpose()?,
            email: email.map(EmailAddress::parse).transpose()?,
        })
    }
}

/// A planning as the host application described it in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanningSnapshot {
    /// The planning's id.
    pub id: PlanningId,
    /// Title, 1 to 200 characters ("Répétition — Carmen").
    pub title: String,
    /// Venue.
    pub location: Location,
    /// Times.
    pub schedule: Schedule,
    /// Who to call.
    pub contact: Contact,
}

impl PlanningSnapshot {
    /// Validates a title and assembles a snapshot.
    ///
    /// # Errors
    /// [`ValidationError`] on `title` when blank, over 200 characters, or holding a control
    /// character.
    pub fn new(
        id: PlanningId,
        title: &str,
        location: Location,
        schedule: Schedule,
        contact: Contact,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            id,
            // The planning's title goes into email subjects.
            title: single_line_text("title", title, 200)?,
            location,
            schedule,
            contact,
        })
    }
}

/// One thing that changed in a planning, old value → new value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum PlanningChange {
    /// The title changed.
    Title {
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// The venue changed.
    Location {
        /// Before.
        from: Location,
        /// After.
        to: Location,
    },
    /// The start moved.
    StartsAt {
        /// Before.
        from: DateTime<Utc>,
        /// After.
        to: DateTime<Utc>,
    },
    /// The end moved.
    EndsAt {
        /// Before.
        from: DateTime<Utc>,
        /// After.
        to: DateTime<Utc>,
    },
    /// The contact changed.
    Contact {
        /// Before.
        from: Contact,
        /// After.
        to: Contact,
    },
}

impl PlanningChange {
    /// The wire name of the changed field (`starts_at`, `location`, ...).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Title { .. } => "title",
            Self::Location { .. } => "location",
            Self::StartsAt { .. } => "starts_at",
            Self::EndsAt { .. } => "ends_at",
            Self::Contact { .. } => "contact",
        }
    }
}

/// The kind of a planning event, as the producer names it in the `event` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanningEventKind {
    /// Artists were assigned to the planning.
    Assigned,
    /// The planning changed.
    Modified,
    /// The planning was cancelled.
    Cancelled,
    /// The planning starts tomorrow (J-1).
    Reminder,
}

impl PlanningEventKind {
    /// Parses the producer's name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `event` for anything but `assigned|modified|cancelled|reminder`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "assigned" => Ok(Self::Assigned),
            "modified" => Ok(Self::Modified),
            "cancelled" => Ok(Self::Cancelled),
            "reminder" => Ok(Self::Reminder),
            other => Err(ValidationError::new(
                "event",
                format!("unknown event {other:?}; known: assigned, modified, cancelled, reminder"),
            )),
        }
    }

    /// The notification event type this kind produces (`planning.assigned`, ...), which also
    /// names its template family.
    pub fn event_type(self) -> EventType {
        let name = match self {
            Self::Assigned => "planning.assigned",
            Self::Modified => "planning.modified",
            Self::Cancelled => "planning.cancelled",
            Self::Reminder => "planning.reminder",
        };
        EventType::parse(name).unwrap_or_else(|_| unreachable!("{name} is a valid event type"))
    }
}

/// A planning domain event: what the host application says happened.
///
/// The four variants of the design (`PlanningAssigned`, `PlanningModified`, `PlanningCancelled`,
/// `PlanningReminderDue`) share their facts; `kind` tells them apart and `changes` is only
/// non-empty for a modification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanningEvent {
    /// The producer's event id; replays carry the same one.
    pub event_id: PlanningEventId,
    /// What happened.
    pub kind: PlanningEventKind,
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The planning after the event.
    pub planning: PlanningSnapshot,
    /// Artists on the planning, without duplicates, in the producer's order.
    pub artist_ids: Vec<RecipientId>,
    /// Coordinators of the planning, without duplicates, in the producer's order.
    pub coordinator_ids: Vec<RecipientId>,
    /// For `modified`: what changed, old → new.
    pub changes: Vec<PlanningChange>,
}

impl PlanningEvent {
    /// Assembles an event, removing duplicate ids.
    ///
    /// # Errors
    /// [`ValidationError`] on `changes` when a `modified` event says nothing changed, or another
    /// kind carries changes; on `artist_ids` when nobody at all is named.
    pub fn new(
        event_id: PlanningEventId,
        kind: PlanningEventKind,
        occurred_at: DateTime<Utc>,
        planning: PlanningSnapshot,
        artist_ids: Vec<RecipientId>,
        coordinator_ids: Vec<RecipientId>,
        changes: Vec<PlanningChange>,
    ) -> Result<Self, ValidationError> {
        match (kind, changes.is_empty()) {
            (PlanningEventKind::Modified, true) => {
                return Err(ValidationError::new(
                    "changes",
                    "a modified event must say what changed",
                ))
            }
            (PlanningEventKind::Modified, false) | (_, true) => {}
            (_, false) => {
                return Err(ValidationError::new(
                    "changes",
                    "only a modified event carries changes",
                ))
            }
        }
        if artist_ids.is_empty() && coordinator_ids.is_empty() {
            return Err(ValidationError::new(
                "artist_ids",
                "an event must name at least one artist or coordinator",
            ));
        }
        Ok(Self {
            event_id,
            kind,
            occurred_at,
            planning,
            artist_ids: dedup(artist_ids),
            coordinator_ids: dedup(coordinator_ids),
            changes,
        })
    }

    /// Every recipient the event names, artists first, without duplicates.
    pub fn named_recipients(&self) -> Vec<RecipientId> {
        dedup(
            self.artist_ids
                .iter()
                .chain(&self.coordinator_ids)
                .cloned()
                .collect(),
        )
    }
}

fn dedup(ids: Vec<RecipientId>) -> Vec<RecipientId> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}
