//! Notifications: one message for one recipient, kept with its read state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{bounded_text, flatten_controls, single_line_text, ValidationError};
use crate::recipient::RecipientId;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an id: 1 to 64 ASCII letters, digits, `-` or `_`.
            ///
            /// # Errors
            #[doc = concat!("[`ValidationError`] on field `", $field, "` for anything else.")]
            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                if (1..=64).contains(&raw.len())
                    && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(ValidationError::new($field, "must be 1 to 64 letters, digits, - or _"))
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use opaque_id;

opaque_id!(
    /// A notification's id: a UUIDv7 in text form, so ids sort by creation time.
    NotificationId,
    "id"
);

/// What a notification is about, as an inbox shows it (colour, icon).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// Neutral information (the default).
    #[default]
    Info,
    /// Something went well.
    Success,
    /// Something needs attention.
    Warning,
    /// Something went wrong.
    Error,
}

impl NotificationKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }

    /// Parses a wire name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `kind` for anything but `info|success|warning|error`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "info" => Ok(Self::Info),
            "success" => Ok(Self::Success),
            "warning" => Ok(Self::Warning),
            "error" => Ok(Self::Error),
            other => Err(ValidationError::new(
                "kind",
                format!("unknown kind {other:?}; known: info, success, warning, error"),
            )),
        }
    }
}

/// How urgent a notification's deliveries are: under a backlog, higher priorities go first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Can wait behind everything else.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Ahead of normal traffic.
    High,
    /// First in line.
    Critical,
}

impl Priority {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Rank stored in the database: higher goes first (`low` 0 … `critical` 3).
    pub fn rank(self) -> i16 {
        self as i16
    }

    /// Whether its emails carry a one-click unsubscribe link (`List-Unsubscribe`, RFC 8058):
    /// every priority but `critical`, which overrides the recipient's preferences, so a link
    /// that turns them off would promise what it cannot keep (issue 11).
    pub fn offers_unsubscribe(self) -> bool {
        self != Self::Critical
    }

    /// The priority of a stored rank; unknown ranks read as `normal`.
    pub fn from_rank(rank: i16) -> Self {
        match rank {
            0 => Self::Low,
            2 => Self::High,
            3 => Self::Critical,
            _ => Self::Normal,
        }
    }

    /// Parses a wire name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `priority` for anything but `critical|high|normal|low`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "low" => Ok(Self::Low),
            "normal" => Ok(Self::Normal),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            other => Err(ValidationError::new(
                "priority",
                format!("unknown priority {other:?}; known: critical, high, normal, low"),
            )),
        }
    }
}

/// A notification title: 1 to 200 characters, trimmed, on one line (no control character: it
/// becomes an email's `Subject`, RFC 5322 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Title(String);

impl Title {
    /// Parses a title.
    ///
    /// # Errors
    /// [`ValidationError`] on field `title` when blank, over 200 characters, or holding a
    /// control character (a line break, a tab, NUL…).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        single_line_text("title", raw, 200).map(Self)
    }

    /// Reads a title back from storage: rows written before control characters were refused
    /// have each of them turned into a space rather than failing to load.
    ///
    /// # Errors
    /// [`ValidationError`] on field `title` when what remains is blank or over 200 characters.
    pub fn from_stored(raw: &str) -> Result<Self, ValidationError> {
        Self::parse(&flatten_controls(raw))
    }

    /// The title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A notification body: 1 to 10,000 characters of plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Body(String);

impl Body {
    /// Parses a body.
    ///
    /// # Errors
    /// [`ValidationError`] on field `body` when blank or over 10,000 characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text("body", raw, 10_000).map(Self)
    }

    /// The body.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the notification's call to action leads: an absolute `http`/`https` URL of at most 2,048 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionUrl(String);

impl ActionUrl {
    /// Parses an action URL.
    ///
    /// # Errors
    /// [`ValidationError`] on field `action_url` when not an absolute http(s) URL or over 2,048 bytes.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        if raw.len() > 2048 {
            return Err(ValidationError::new(
                "action_url",
                "must be at most 2048 bytes",
            ));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| ValidationError::new("action_url", format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ValidationError::new(
                "action_url",
                "must be an http or https URL",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text of the call-to-action button: 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionLabel(String);

impl ActionLabel {
    /// Parses an action label.
    ///
    /// # Errors
    /// [`ValidationError`] on field `action_label` when blank or over 64 characters.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_text("action_label", raw, 64).map(Self)
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Opaque data attached to a notification by its producer: always a JSON object.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// The kind of event a notification comes from, dotted and lowercase (`planning.assigned`,
/// `test`, `custom`); it also selects the template family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventType(String);

impl EventType {
    /// A notification written by hand through the API.
    pub const CUSTOM: &'static str = "custom";
    /// A test message (`POST /api/v1/notifications/test`).
    pub const TEST: &'static str = "test";

    /// Parses an event type: 1 to 64 characters among lowercase ASCII letters, digits, `.` and `_`.
    ///
    /// # Errors
    /// [`ValidationError`] on field `event_type` for anything else.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if (1..=64).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_')
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "event_type",
                "must be 1 to 64 lowercase letters, digits, . or _",
            ))
        }
    }

    /// The event type.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is one of the planning event types (`planning.assigned`, …), whose metadata
    /// is the template context Clairon writes rather than the producer's data.
    pub fn is_planning(&self) -> bool {
        self.0.starts_with("planning.")
    }
}

opaque_id!(
    /// The id of the event that caused a notification (a planning event's `event_id`); with the
    /// recipient it identifies a notification across replays.
    SourceEventId,
    "event_id"
);

/// One message for one recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// UUIDv7, sortable by creation time.
    pub id: NotificationId,
    /// Who it is for.
    pub recipient_id: RecipientId,
    /// What it is about.
    pub kind: NotificationKind,
    /// Under a backlog, higher priorities are delivered first.
    pub priority: Priority,
    /// Short title (inbox line, email subject fallback).
    pub title: Title,
    /// Plain-text body.
    pub body: Body,
    /// Optional call-to-action URL.
    pub action_url: Option<ActionUrl>,
    /// Optional call-to-action label.
    pub action_label: Option<ActionLabel>,
    /// Producer data, and for planning events the template context.
    pub metadata: Metadata,
    /// The kind of event it comes from.
    pub event_type: EventType,
    /// The event it comes from, when it comes from one.
    pub source_event_id: Option<SourceEventId>,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When the recipient first read it; `None` means unread. Reading again keeps the first
    /// time, in one conditional UPDATE (`NotificationRepository::mark_read`).
    pub read_at: Option<DateTime<Utc>>,
}

impl Notification {
    /// Whether the recipient has read it.
    pub fn is_read(&self) -> bool {
        self.read_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_urls_must_be_absolute_http() {
        assert!(ActionUrl::parse("https://planning.example.org/p/1").is_ok());
        assert_eq!(
            ActionUrl::parse("javascript:alert(1)").unwrap_err().field,
            "action_url"
        );
        assert!(ActionUrl::parse("/relative").is_err());
    }

    #[test]
    fn kinds_and_priorities_parse_their_wire_names() {
        assert_eq!(
            NotificationKind::parse("warning").unwrap(),
            NotificationKind::Warning
        );
        assert_eq!(NotificationKind::parse("fatal").unwrap_err().field, "kind");
        assert!(Priority::Critical > Priority::High && Priority::Normal > Priority::Low);
        assert_eq!(
            Priority::from_rank(Priority::Critical.rank()),
            Priority::Critical
        );
    }

    #[test]
    fn every_priority_but_critical_offers_an_unsubscribe_link() {
        for priority in [Priority::Low, Priority::Normal, Priority::High] {
            assert!(priority.offers_unsubscribe(), "{priority:?}");
        }
        assert!(!Priority::Critical.offers_unsubscribe());
    }

    #[test]
    fn blank_titles_are_refused() {
        assert_eq!(Title::parse("   ").unwrap_err().field, "title");
        assert_eq!(Title::parse("  Salut ").unwrap().as_str(), "Salut");
    }
}
