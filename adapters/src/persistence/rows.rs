//! Rows as Diesel reads and writes them, and their conversions to and from domain values.
//!
//! Reading a row parses every field with the domain's own constructors: a row that no longer
//! validates (a hand edit, a bug in an older version) becomes `RepositoryError::Corrupt` naming
//! the table, the key and the field, instead of an invalid value in memory.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use clairon_application::ports::{AttemptRecord, DeliveryUpdate};
use clairon_domain::SlackWebhookUrl;
use clairon_domain::{
    ActionLabel, ActionUrl, AttemptOutcome, Body, Channel, Delivery, DeliveryId, DeliveryStatus,
    DisplayName, EmailAddress, EventType, Locale, Metadata, Notification, NotificationId,
    NotificationKind, PhoneNumber, Priority, Recipient, RecipientId, SourceEventId, TelegramChatId,
    TimeZone, Title, ValidationError,
};
use clairon_domain::{WebhookSecret, WebhookUrl};
use diesel::prelude::*;

use super::connection::DbError;
use super::schema::{deliveries, delivery_attempts, notifications, recipients};

/// A UTC instant as stored: truncated to microseconds, PostgreSQL's `TIMESTAMP` precision, so a
/// value reads back equal on both engines.
pub(crate) fn db_time(at: DateTime<Utc>) -> NaiveDateTime {
    at.trunc_subsecs(6).naive_utc()
}

/// A stored instant, read as UTC.
pub(crate) fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

/// A count or attempt number as stored (`INTEGER`), saturating.
pub(crate) fn db_count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Maps a domain validation failure of a stored value to a corruption report.
fn corrupt<'a>(table: &'a str, key: &'a str) -> impl Fn(ValidationError) -> DbError + 'a {
    move |e| DbError::Corrupt(format!("{table} {key:?}: {e}"))
}

/// A `recipients` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = recipients)]
pub(crate) struct RecipientRow {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub telegram_chat_id: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The chat id Telegram said is gone (blocked, not found); only counts while it is still
    /// the recipient's chat id.
    pub telegram_unreachable_chat_id: Option<String>,
    /// What Telegram said about it.
    pub telegram_unreachable_reason: Option<String>,
    /// Where their signed webhooks go.
    pub webhook_url: Option<String>,
    /// Their webhook signing secret (`whsec_…`).
    pub webhook_secret: Option<String>,
    /// The webhook URL that answered 410; only counts while it is still `webhook_url`.
    pub webhook_disabled_url: Option<String>,
    /// What that endpoint answered.
    pub webhook_disabled_reason: Option<String>,
    /// Their Slack incoming-webhook URL.
    pub slack_webhook_url: Option<String>,
    /// The Slack webhook URL Slack refused for good; only counts while it is still
    /// `slack_webhook_url`.
    pub slack_unreachable_url: Option<String>,
    /// What Slack answered.
    pub slack_unreachable_reason: Option<String>,
}

/// Every field an upsert replaces (all but the id and the creation time).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = recipients, treat_none_as_null = true)]
pub(crate) struct RecipientChanges {
    pub name: String,
    pub email: Option<String>,
    pub telegram_chat_id: Option<String>,
    pub phone: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub updated_at: NaiveDateTime,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub slack_webhook_url: Option<String>,
}

impl RecipientRow {
    /// The row for `recipient`, created and updated `now`.
    pub fn new(recipient: &Recipient, now: NaiveDateTime) -> Self {
        let changes = RecipientChanges::new(recipient, now);
        Self {
            id: recipient.id.as_str().to_owned(),
            name: changes.name,
            email: changes.email,
            telegram_chat_id: changes.telegram_chat_id,
            phone: changes.phone,
            locale: changes.locale,
            timezone: changes.timezone,
            created_at: now,
            updated_at: now,
            telegram_unreachable_chat_id: None,
            telegram_unreachable_reason: None,
            webhook_url: changes.webhook_url,
            webhook_secret: changes.webhook_secret,
            webhook_disabled_url: None,
            webhook_disabled_reason: None,
            slack_webhook_url: changes.slack_webhook_url,
            slack_unreachable_url: None,
            slack_unreachable_reason: None,
        }
    }

    /// The recipient this row stores.
    pub fn into_domain(self) -> Result<Recipient, DbError> {
        let bad = corrupt("recipients", &self.id);
        let telegram_unreachable =
            match (&self.telegram_unreachable_chat_id, &self.telegram_chat_id) {
                (Some(gone), Some(current)) if gone == current => self
                    .telegram_unreachable_reason
                    .clone()
                    .or_else(|| Some("Telegram refused this chat".to_owned())),
                _ => None,
            };
        let webhook_disabled = match (&self.webhook_disabled_url, &self.webhook_url) {
            (Some(gone), Some(current)) if gone == current => self
                .webhook_disabled_reason
                .clone()
                .or_else(|| Some("410 Gone".to_owned())),
            _ => None,
        };
        let slack_unreachable = match (&self.slack_unreachable_url, &self.slack_webhook_url) {
            (Some(gone), Some(current)) if gone == current => self
                .slack_unreachable_reason
                .clone()
                .or_else(|| Some("Slack refused this webhook".to_owned())),
            _ => None,
        };
        Ok(Recipient {
            id: RecipientId::parse(&self.id).map_err(&bad)?,
            // Leniently: a name stored before line breaks were refused still loads.
            name: DisplayName::from_stored(&self.name).map_err(&bad)?,
            email: self
                .email
                .as_deref()
                .map(EmailAddress::parse)
                .transpose()
                .map_err(&bad)?,
            telegram_chat_id: self
                .telegram_chat_id
                .as_deref()
                .map(TelegramChatId::parse)
                .transpose()
                .map_err(&bad)?,
            phone: self
                .phone
                .as_deref()
                .map(PhoneNumber::from_stored)
                .transpose()
                .map_err(&bad)?,
            locale: self
                .locale
                .as_deref()
                .map(Locale::parse)
                .transpose()
                .map_err(&bad)?,
            timezone: self
                .timezone
                .as_deref()
                .map(TimeZone::parse)
                .transpose()
                .map_err(&bad)?,
            telegram_unreachable,
            webhook_url: self
                .webhook_url
                .as_deref()
                .map(WebhookUrl::parse)
                .transpose()
                .map_err(&bad)?,
            webhook_secret: self
                .webhook_secret
                .as_deref()
                .map(WebhookSecret::parse)
                // Never the stored value in a corruption report: only its field.
                .transpose()
                .map_err(|e| bad(ValidationError::new(e.field, "does not validate")))?,
            webhook_disabled,
            slack_webhook_url: self
                .slack_webhook_url
                .as_deref()
                .map(SlackWebhookUrl::parse)
                // Never the stored URL in a corruption report: it is the credential.
                .transpose()
                .map_err(|e| bad(ValidationError::new(e.field, "does not validate")))?,
            slack_unreachable,
        })
    }
}

impl RecipientChanges {
    /// The replacement of every field by `recipient`'s, at `now`.
    pub fn new(recipient: &Recipient, now: NaiveDateTime) -> Self {
        Self {
            name: recipient.name.as_str().to_owned(),
            email: recipient.email.as_ref().map(|e| e.as_str().to_owned()),
            telegram_chat_id: recipient
                .telegram_chat_id
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            phone: recipient.phone.as_ref().map(|p| p.as_str().to_owned()),
            locale: recipient.locale.map(|l| l.as_str().to_owned()),
            timezone: recipient.timezone.map(|t| t.name().to_owned()),
            updated_at: now,
            webhook_url: recipient
                .webhook_url
                .as_ref()
                .map(|u| u.as_str().to_owned()),
            webhook_secret: recipient
                .webhook_secret
                .as_ref()
                .map(|s| s.expose().to_owned()),
            slack_webhook_url: recipient
                .slack_webhook_url
                .as_ref()
                .map(|u| u.expose().to_owned()),
        }
    }
}

/// A `notifications` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
pub(crate) struct NotificationRow {
    pub id: String,
    pub recipient_id: String,
    pub kind: String,
    pub priority: i16,
    pub title: String,
    pub body: String,
    pub action_url: Option<String>,
    pub action_label: Option<String>,
    pub metadata: String,
    pub event_type: String,
    pub source_event_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
    pub deliver_at: Option<NaiveDateTime>,
    pub cancellation_key: Option<String>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub request_id: Option<String>,
}

impl NotificationRow {
    /// The row for `n`, delivered at once (see [`NotificationRow::scheduled`]).
    pub fn new(n: &Notification) -> Self {
        Self {
            id: n.id.as_str().to_owned(),
            recipient_id: n.recipient_id.as_str().to_owned(),
            kind: n.kind.as_str().to_owned(),
            priority: n.priority.rank(),
            title: n.title.as_str().to_owned(),
            body: n.body.as_str().to_owned(),
            action_url: n.action_url.as_ref().map(|u| u.as_str().to_owned()),
            action_label: n.action_label.as_ref().map(|l| l.as_str().to_owned()),
            // A map of JSON values always serialises.
            metadata: serde_json::Value::Object(n.metadata.clone()).to_string(),
            event_type: n.event_type.as_str().to_owned(),
            source_event_id: n.source_event_id.as_ref().map(|s| s.as_str().to_owned()),
            created_at: db_time(n.created_at),
            read_at: n.read_at.map(db_time),
            deliver_at: None,
            cancellation_key: None,
            cancelled_at: None,
            request_id: None,
        }
    }

    /// The row for `n`, hidden until `deliver_at` when that is given.
    pub fn scheduled(n: &Notification, deliver_at: Option<DateTime<Utc>>) -> Self {
        Self {
            deliver_at: deliver_at.map(db_time),
            ..Self::new(n)
        }
    }

    /// The notification this row stores.
    pub fn into_domain(self) -> Result<Notification, DbError> {
        let bad = corrupt("notifications", &self.id);
        let metadata: Metadata = serde_json::from_str(&self.metadata).map_err(|e| {
            DbError::Corrupt(format!(
                "notifications {:?}: metadata is not a JSON object: {e}",
                self.id
            ))
        })?;
        Ok(Notification {
            id: NotificationId::parse(&self.id).map_err(&bad)?,
            recipient_id: RecipientId::parse(&self.recipient_id).map_err(&bad)?,
            kind: NotificationKind::parse(&self.kind).map_err(&bad)?,
            priority: priority(self.priority).map_err(&bad)?,
            // Leniently: a title stored before line breaks were refused still loads.
            title: Title::from_stored(&self.title).map_err(&bad)?,
            body: Body::parse(&self.body).map_err(&bad)?,
            action_url: self
                .action_url
                .as_deref()
                .map(ActionUrl::parse)
                .transpose()
                .map_err(&bad)?,
            action_label: self
                .action_label
                .as_deref()
                .map(ActionLabel::parse)
                .transpose()
                .map_err(&bad)?,
            metadata,
            event_type: EventType::parse(&self.event_type).map_err(&bad)?,
            source_event_id: self
                .source_event_id
                .as_deref()
                .map(SourceEventId::parse)
                .transpose()
                .map_err(&bad)?,
            created_at: utc(self.created_at),
            read_at: self.read_at.map(utc),
        })
    }
}

/// A stored priority rank; unlike [`Priority::from_rank`], an unknown rank is corruption.
fn priority(rank: i16) -> Result<Priority, ValidationError> {
    let parsed = Priority::from_rank(rank);
    if parsed.rank() == rank {
        Ok(parsed)
    } else {
        Err(ValidationError::new(
            "priority",
            format!("unknown priority rank {rank}"),
        ))
    }
}

/// A `deliveries` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = deliveries)]
pub(crate) struct DeliveryRow {
    pub id: String,
    pub notification_id: String,
    pub recipient_id: String,
    pub channel: String,
    pub status: String,
    pub priority: i16,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_expires_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub provider_message_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub claim_token: Option<String>,
    pub crashes: i32,
    pub fallback_of: Option<String>,
    pub fallback: Option<String>,
    pub address: Option<String>,
    /// [`PACED_RANK`] while a put-back waits for its pacing slot, else 0.
    pub claim_rank: i16,
}

/// `deliveries.claim_rank` of a delivery put back for pacing ([`DeliveryUpdate::paced`]): the
/// claim takes it, once due, before the fresh deliveries of its priority (0).
pub(crate) const PACED_RANK: i16 = 1;

impl DeliveryRow {
    /// The row for `d`, due at `due` (a scheduled notification's `deliver_at`) or else at its
    /// creation time, not leased.
    /// A delivery postponed past its notification's time (quiet hours) is due at its own
    /// `next_attempt_at`.
    pub fn due_at(d: &Delivery, priority: Priority, due: Option<DateTime<Utc>>) -> Self {
        let mut row = Self::new(d, priority);
        if let Some(due) = d.next_attempt_at.or(due) {
            row.next_attempt_at = db_time(due);
        }
        row
    }

    /// The row for `d`, a delivery of a notification of `priority`: due at its creation time,
    /// not leased.
    pub fn new(d: &Delivery, priority: Priority) -> Self {
        let created_at = db_time(d.created_at);
        Self {
            id: d.id.as_str().to_owned(),
            notification_id: d.notification_id.as_str().to_owned(),
            recipient_id: d.recipient_id.as_str().to_owned(),
            channel: d.channel.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            priority: priority.rank(),
            attempts: db_count(d.attempts),
            next_attempt_at: created_at,
            lease_expires_at: None,
            last_error: d.last_error.clone(),
            provider_message_id: d.provider_message_id.clone(),
            created_at,
            updated_at: created_at,
            sent_at: d.sent_at.map(db_time),
            claim_token: None,
            crashes: 0,
            fallback_of: d.fallback_of.as_ref().map(|id| id.as_str().to_owned()),
            fallback: (!d.fallback.is_empty()).then(|| {
                d.fallback
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            address: d.address.clone(),
            claim_rank: 0,
        }
    }

    /// The delivery this row stores.
    pub fn into_domain(self) -> Result<Delivery, DbError> {
        let bad = corrupt("deliveries", &self.id);
        let attempts = u32::try_from(self.attempts).map_err(|_| {
            DbError::Corrupt(format!(
                "deliveries {:?}: negative attempts {}",
                self.id, self.attempts
            ))
        })?;
        Ok(Delivery {
            id: DeliveryId::parse(&self.id).map_err(&bad)?,
            notification_id: NotificationId::parse(&self.notification_id).map_err(&bad)?,
            recipient_id: RecipientId::parse(&self.recipient_id).map_err(&bad)?,
            channel: Channel::parse(&self.channel).map_err(&bad)?,
            status: DeliveryStatus::parse(&self.status).map_err(&bad)?,
            attempts,
            last_error: self.last_error,
            provider_message_id: self.provider_message_id,
            created_at: utc(self.created_at),
            sent_at: self.sent_at.map(utc),
            next_attempt_at: Some(utc(self.next_attempt_at)),
            fallback_of: self
                .fallback_of
                .as_deref()
                .map(DeliveryId::parse)
                .transpose()
                .map_err(&bad)?,
            fallback: match self.fallback.as_deref() {
                None | Some("") => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(Channel::parse)
                    .collect::<Result<_, _>>()
                    .map_err(&bad)?,
            },
            address: self.address,
        })
    }
}

/// A `delivery_attempts` row as read back.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = delivery_attempts)]
pub(crate) struct AttemptRow {
    pub id: i64,
    pub number: i32,
    pub started_at: NaiveDateTime,
    pub duration_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
    pub provider_response_id: Option<String>,
}

impl AttemptRow {
    /// The audit record this row stores.
    pub fn into_domain(self) -> Result<AttemptRecord, DbError> {
        let number = u32::try_from(self.number).map_err(|_| {
            DbError::Corrupt(format!(
                "delivery_attempts {}: negative number {}",
                self.id, self.number
            ))
        })?;
        let duration_ms = u64::try_from(self.duration_ms).map_err(|_| {
            DbError::Corrupt(format!(
                "delivery_attempts {}: negative duration {}",
                self.id, self.duration_ms
            ))
        })?;
        let outcome = AttemptOutcome::parse(&self.outcome).map_err(|e| {
            DbError::Corrupt(format!("delivery_attempts {}: {}", self.id, e.message))
        })?;
        Ok(AttemptRecord {
            number,
            started_at: utc(self.started_at),
            duration_ms,
            outcome,
            error: self.error,
            provider_response_id: self.provider_response_id,
        })
    }
}

/// A `delivery_attempts` row to write (the id is the engine's).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = delivery_attempts)]
pub(crate) struct NewAttemptRow {
    pub delivery_id: String,
    pub number: i32,
    pub started_at: NaiveDateTime,
    pub duration_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
    pub provider_response_id: Option<String>,
}

impl NewAttemptRow {
    /// The row recording `attempt` of delivery `delivery_id`.
    pub fn new(delivery_id: &DeliveryId, attempt: &AttemptRecord) -> Self {
        Self {
            delivery_id: delivery_id.as_str().to_owned(),
            number: db_count(attempt.number),
            started_at: db_time(attempt.started_at),
            duration_ms: i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX),
            outcome: attempt.outcome.as_str().to_owned(),
            error: attempt.error.clone(),
            provider_response_id: attempt.provider_response_id.clone(),
        }
    }
}

/// What recording a dispatcher's decision changes on a `deliveries` row. The lease is always
/// released; `next_attempt_at` changes only when the decision sets one.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = deliveries)]
pub(crate) struct OutcomeChanges {
    pub status: String,
    pub attempts: i32,
    #[diesel(treat_none_as_null = true)]
    pub last_error: Option<String>,
    #[diesel(treat_none_as_null = true)]
    pub provider_message_id: Option<String>,
    #[diesel(treat_none_as_null = true)]
    pub sent_at: Option<NaiveDateTime>,
    #[diesel(treat_none_as_null = true)]
    pub lease_expires_at: Option<NaiveDateTime>,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
    /// Released with the lease.
    #[diesel(treat_none_as_null = true)]
    pub claim_token: Option<String>,
    /// An outcome was recorded: whatever crashed before did not crash this try.
    pub crashes: i32,
    /// [`PACED_RANK`] when the outcome is a put-back for pacing, 0 for any other outcome.
    pub claim_rank: i16,
}

impl OutcomeChanges {
    /// The changes `update` makes, recorded at `now`.
    pub fn new(update: &DeliveryUpdate, now: NaiveDateTime) -> Self {
        Self {
            status: update.status.as_str().to_owned(),
            attempts: db_count(update.attempts),
            last_error: update.last_error.clone(),
            provider_message_id: update.provider_message_id.clone(),
            sent_at: update.sent_at.map(db_time),
            lease_expires_at: None,
            next_attempt_at: update.next_attempt_at.map(db_time),
            updated_at: now,
            claim_token: None,
            crashes: 0,
            claim_rank: if update.paced { PACED_RANK } else { 0 },
        }
    }
}
