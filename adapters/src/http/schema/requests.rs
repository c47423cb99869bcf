//! Request bodies as clients send them, and their translation into validated domain values.
//!
//! Translation collects every invalid field before answering, so a client fixes its request
//! in one round trip.

use chrono::{DateTime, Utc};
use clairon_domain::routing::parse_event_type;
use clairon_domain::{
    ActionLabel, ActionUrl, Body, Channel, ChannelName, ChannelSet, ConsentSource, ConsentWording,
    Contact, DisplayName, EmailAddress, Locale, Location, Metadata, NewConsent, NotificationKind,
    PhoneNumber, PlanningChange, PlanningEvent, PlanningEventId, PlanningEventKind, PlanningId,
    PlanningSnapshot, Preferences, Priority, Recipient, RecipientId, Schedule, TelegramChatId,
    TimeZone, Title, ValidationError,
};
use clairon_domain::{GenericEvent, RawRule, RoutingRules, SourceEventId, TopicKey, TopicName};
use clairon_domain::{SlackHosts, SlackWebhookUrl};
use clairon_domain::{WebhookSecret, WebhookUrl};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::params::{KindName, PlanningEventName, PriorityName, RecipientIdSchema};

use crate::http::problem::{ApiError, FieldError};

/// Collects field errors while translating a body.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn take<T>(&mut self, prefix: &str, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let e = if prefix.is_empty() {
                    e
                } else {
                    e.within(prefix)
                };
                self.0.push(e.into());
                None
            }
        }
    }

    /// Like [`Errors::take`], for a check that names several fields at once.
    fn take_all<T>(&mut self, result: Result<T, Vec<ValidationError>>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(errors) => {
                self.0.extend(errors.into_iter().map(Into::into));
                None
            }
        }
    }

    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(v) if self.0.is_empty() => Ok(v),
            _ => Err(ApiError::invalid_fields(self.0)),
        }
    }
}

/// A string or an integer (Telegram chat ids arrive as both).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StringOrInt {
    /// `"100000000"` or `"@username"`.
    Text(String),
    /// `100000000`.
    Int(i64),
}

impl StringOrInt {
    fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Int(i) => i.to_string(),
        }
    }
}

/// `PUT /api/v1/recipients/{id}` body; with `id`, an element of the import.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecipientBody {
    /// The recipient's id: required in imports; in `PUT /recipients/{id}` optional and equal to
    /// the path's.
    #[schema(pattern = r"^(?!\.\.?$)[A-Za-z0-9_\-.:@]{1,128}$")]
    pub id: Option<String>,
    /// Display name (1 to 200 characters, not blank).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Email address (RFC 5322 `addr-spec`, at most 254 bytes); empty or null for none.
    #[schema(max_length = 254, example = "zoe@example.org")]
    pub email: Option<String>,
    /// Telegram chat id: an integer, or an `@username` of 5 to 32 letters, digits or `_`.
    pub telegram_chat_id: Option<StringOrInt>,
    /// E.164 phone: `+` then 8 to 15 digits (spaces, dots, dashes, parentheses ignored); empty
    /// or null for none.
    #[schema(example = "+15145550030")]
    pub phone: Option<String>,
    /// BCP 47 language tag whose language is `fr` or `en` (`fr-CA` is French).
    #[schema(example = "fr")]
    pub locale: Option<String>,
    /// IANA time zone.
    #[schema(example = "America/Montreal")]
    pub timezone: Option<String>,
    /// Where signed webhooks (Standard Webhooks 1.0) are posted: an `http(s)` URL, at most
    /// 2,048 bytes; empty or null for none. Needs `webhook_secret`. A literal loopback, private
    /// or link-local address is refused unless `CLAIRON_WEBHOOK_ALLOW_PRIVATE=true`.
    #[schema(max_length = 2048, example = "https://hooks.example.org/clairon")]
    pub webhook_url: Option<String>,
    /// Write-only signing secret: `whsec_` + standard base64 of 24 to 64 bytes; required with
    /// `webhook_url`. Never answered.
    #[schema(write_only, example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub webhook_secret: Option<String>,
    /// Write-only Slack incoming-webhook URL (it is the credential: never answered, `GET` shows
    /// `slack.configured`): an `https://hooks.slack.com/` URL (other hosts only when
    /// `CLAIRON_SLACK_ALLOWED_HOSTS` lists them), at most 2,048 bytes; empty or null for none.
    #[schema(
        write_only,
        max_length = 2048,
        example = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    )]
    pub slack_webhook_url: Option<String>,
}

impl RecipientBody {
    fn translate(&self, id: &str, prefix: &str, errors: &mut Errors) -> Option<Recipient> {
        let id = errors.take(prefix, RecipientId::parse(id));
        let name = errors.take(prefix, DisplayName::parse(&self.name));
        let email = errors.take(
            prefix,
            self.email
                .as_deref()
                .filter(|e| !e.is_empty())
                .map(EmailAddress::parse)
                .transpose(),
        );
        let chat = errors.take(
            prefix,
            self.telegram_chat_id
                .as_ref()
                .map(|c| TelegramChatId::parse(&c.text()))
                .transpose(),
        );
        let phone = errors.take(
            prefix,
            self.phone
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(PhoneNumber::parse)
                .transpose(),
        );
        let locale = errors.take(
            prefix,
            self.locale.as_deref().map(Locale::parse).transpose(),
        );
        let timezone = errors.take(
            prefix,
            self.timezone.as_deref().map(TimeZone::parse).transpose(),
        );
        let webhook_url = errors.take(
            prefix,
            self.webhook_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(WebhookUrl::parse)
                .transpose(),
        );
        let webhook_secret = errors.take(
            prefix,
            self.webhook_secret
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(WebhookSecret::parse)
                .transpose(),
        );
        if matches!(&webhook_url, Some(Some(_))) && matches!(&webhook_secret, Some(None)) {
            let field = if prefix.is_empty() {
                "webhook_secret".to_owned()
            } else {
                format!("{prefix}.webhook_secret")
            };
            errors.push(field, "is required with webhook_url (whsec_ + base64)");
        }
        let slack_webhook_url = errors.take(
            prefix,
            self.slack_webhook_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(SlackWebhookUrl::parse)
                .transpose(),
        );
        Some(Recipient {
            id: id?,
            name: name?,
            email: email?,
            telegram_chat_id: chat?,
            phone: phone?,
            locale: locale?,
            timezone: timezone?,
            telegram_unreachable: None,
            webhook_url: webhook_url?,
            webhook_secret: webhook_secret?,
            webhook_disabled: None,
            slack_webhook_url: slack_webhook_url?,
            slack_unreachable: None,
        })
    }

    /// Validates the body for the recipient `id` of the path.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] listing every invalid field.
    pub fn into_recipient(self, id: &str) -> Result<Recipient, ApiError> {
        let mut errors = Errors::default();
        if let Some(body_id) = &self.id {
            if body_id != id {
                errors.push("id", "differs from the id in the path");
            }
        }
        let recipient = self.translate(id, "", &mut errors);
        errors.finish(recipient)
    }
}

/// Refuses webhook URLs whose host is a literal loopback, private or link-local address (the SSRF
/// guard at the edge; names are resolved and checked again at send time), unless `allow_private`
/// (`CLAIRON_WEBHOOK_ALLOW_PRIVATE=true`). `in_import` names the fields `recipients[i].webhook_url`.
///
/// # Errors
/// [`ApiError::Unprocessable`] naming each refused `webhook_url`.
pub fn refuse_private_webhook_targets(
    recipients: &[Recipient],
    allow_private: bool,
    in_import: bool,
) -> Result<(), ApiError> {
    if allow_private {
        return Ok(());
    }
    let mut errors = Errors::default();
    for (i, recipient) in recipients.iter().enumerate() {
        let literal = recipient
            .webhook_url
            .as_ref()
            .and_then(WebhookUrl::literal_ip);
        if literal.is_some_and(clairon_domain::is_private_target) {
            let field = if in_import {
                format!("recipients[{i}].webhook_url")
            } else {
                "webhook_url".to_owned()
            };
            errors.push(
                field,
                "must not target a loopback, private or link-local address",
            );
        }
    }
    errors.finish(Some(()))
}

/// Refuses Slack webhook URLs whose host `hosts` does not allow: `https://hooks.slack.com/`
/// only, unless `CLAIRON_SLACK_ALLOWED_HOSTS` lists the host. `in_import` names the fields
/// `recipients[i].slack_webhook_url`.
///
/// # Errors
/// [`ApiError::Unprocessable`] naming each refused `slack_webhook_url`.
pub fn refuse_unlisted_slack_hosts(
    recipients: &[Recipient],
    hosts: &SlackHosts,
    in_import: bool,
) -> Result<(), ApiError> {
    let mut errors = Errors::default();
    for (i, recipient) in recipients.iter().enumerate() {
        let Some(url) = &recipient.slack_webhook_url else {
            continue;
        };
        if let Err(refused) = hosts.check(url) {
            let field = if in_import {
                format!("recipients[{i}].{}", refused.field)
            } else {
                refused.field.clone()
            };
            errors.push(field, refused.message);
        }
    }
    errors.finish(Some(()))
}

/// `POST /api/v1/recipients/import` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportBody {
    /// Recipients, each with its `id` (all written in one transaction, or none).
    pub recipients: Vec<RecipientBody>,
}

impl ImportBody {
    /// Validates every recipient.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] listing every invalid field as `recipients[i].field`.
    pub fn into_recipients(self) -> Result<Vec<Recipient>, ApiError> {
        let mut errors = Errors::default();
        let mut out = Vec::with_capacity(self.recipients.len());
        for (i, body) in self.recipients.iter().enumerate() {
            let prefix = format!("recipients[{i}]");
            match &body.id {
                None => errors.push(format!("{prefix}.id"), "is required"),
                Some(id) => out.extend(body.translate(id, &prefix, &mut errors)),
            }
        }
        errors.finish(Some(out))
    }
}

/// `POST /api/v1/notifications` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NotificationBody {
    /// Who to notify (1 to 10,000 registered recipient ids). The content (title, body, action
    /// URL and label, metadata) times the recipients may be at most `CLAIRON_MAX_FANOUT_BYTES`
    /// (8 MiB by default), else a 422 naming `recipient_ids`.
    #[schema(min_items = 1, max_items = 10_000, value_type = Vec<RecipientIdSchema>)]
    pub recipient_ids: Vec<String>,
    /// Default `info`.
    #[schema(value_type = Option<KindName>)]
    pub kind: Option<String>,
    /// Default `normal`.
    #[schema(value_type = Option<PriorityName>)]
    pub priority: Option<String>,
    /// Title (1 to 200 characters, not blank).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    /// Plain-text body (1 to 10,000 characters, not blank).
    #[schema(min_length = 1, max_length = 10_000, pattern = r"\S")]
    pub body: String,
    /// Call-to-action URL: `http` or `https`, at most 2,048 bytes.
    #[schema(max_length = 2048, format = Uri, example = "https://planning.example.org/p/42")]
    pub action_url: Option<String>,
    /// Call-to-action label (1 to 64 characters); needs `action_url`.
    #[schema(min_length = 1, max_length = 64, pattern = r"\S")]
    pub action_label: Option<String>,
    /// The producer's data: a JSON object, kept as sent; at most `CLAIRON_MAX_METADATA_BYTES`
    /// (16 KiB by default) as compact JSON, else a 422 naming `metadata`.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Channels to use (at least one); default every channel that is on.
    #[schema(value_type = Option<Vec<super::params::ChannelName>>, min_items = 1)]
    pub channels: Option<Vec<String>>,
    /// Fallback chain: channels tried in order, the first at once, each next one only when
    /// the one before gave up (`failed`, `dead`, `skipped` as unreachable); the chain stops at
    /// the first `sent`. They need not be in `channels`, and are not also sent in parallel.
    /// Each at most once; never `in_app`.
    #[schema(value_type = Option<Vec<super::params::ChannelName>>, example = json!(["telegram", "sms", "email"]))]
    pub fallback: Option<Vec<String>>,
    /// RFC 3339 date-time: deliver then rather than at once.
    #[schema(format = DateTime)]
    pub deliver_at: Option<String>,
}

/// The validated content shared by every recipient of a [`NotificationBody`].
#[derive(Debug)]
pub struct NotificationContent {
    /// Recipients, deduplicated.
    pub recipient_ids: Vec<RecipientId>,
    /// Kind.
    pub kind: NotificationKind,
    /// Priority.
    pub priority: Priority,
    /// Title.
    pub title: Title,
    /// Body.
    pub body: Body,
    /// Action URL.
    pub action_url: Option<ActionUrl>,
    /// Action label.
    pub action_label: Option<ActionLabel>,
    /// Metadata object.
    pub metadata: Metadata,
    /// Channels asked for.
    pub channels: Option<ChannelSet>,
    /// The fallback chain; empty: none.
    pub fallback: Vec<Channel>,
    /// When to deliver (UTC); `None`: at once.
    pub deliver_at: Option<DateTime<Utc>>,
}

impl NotificationBody {
    /// Validates the body.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] listing every invalid field.
    pub fn into_content(self) -> Result<NotificationContent, ApiError> {
        let mut errors = Errors::default();
        if self.recipient_ids.is_empty() {
            errors.push("recipient_ids", "must name at least one recipient");
        }
        let mut recipient_ids = Vec::with_capacity(self.recipient_ids.len());
        for (i, raw) in self.recipient_ids.iter().enumerate() {
            if let Some(id) = errors.take(
                "",
                RecipientId::parse(raw)
                    .map_err(|e| ValidationError::new(format!("recipient_ids[{i}]"), e.message)),
            ) {
                if !recipient_ids.contains(&id) {
                    recipient_ids.push(id);
                }
            }
        }
        let kind = errors.take(
            "",
            self.kind
                .as_deref()
                .map_or(Ok(NotificationKind::Info), NotificationKind::parse),
        );
        let priority = errors.take(
            "",
            self.priority
                .as_deref()
                .map_or(Ok(Priority::Normal), Priority::parse),
        );
        let title = errors.take("", Title::parse(&self.title));
        let body = errors.take("", Body::parse(&self.body));
        let action_url = errors.take(
            "",
            self.action_url.as_deref().map(ActionUrl::parse).transpose(),
        );
        let action_label = errors.take(
            "",
            self.action_label
                .as_deref()
                .map(ActionLabel::parse)
                .transpose(),
        );
        if action_label.as_ref().is_some_and(Option::is_some)
            && action_url.as_ref().is_some_and(Option::is_none)
        {
            errors.push("action_label", "needs an action_url");
        }
        let metadata = match self.metadata {
            None | Some(Value::Null) => Some(Metadata::new()),
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                errors.push("metadata", "must be a JSON object");
                None
            }
        };
        let channels = errors.take(
            "",
            self.channels
                .as_ref()
                .map(|c| {
                    c.iter()
                        .map(|s| clairon_domain::Channel::parse(s))
                        .collect::<Result<ChannelSet, _>>()
                })
                .transpose(),
        );
        if channels
            .as_ref()
            .is_some_and(|c| c.is_some_and(ChannelSet::is_empty))
        {
            errors.push("channels", "must name at least one channel");
        }
        let fallback = errors.take_all(Channel::parse_fallback(
            "fallback",
            self.fallback.as_deref().unwrap_or_default(),
        ));
        let deliver_at = errors.take(
            "",
            self.deliver_at
                .as_deref()
                .map(|raw| instant(raw, "deliver_at"))
                .transpose(),
        );
        let content = (|| {
            Some(NotificationContent {
                recipient_ids,
                kind: kind?,
                priority: priority?,
                title: title?,
                body: body?,
                action_url: action_url?,
                action_label: action_label?,
                metadata: metadata?,
                channels: channels?,
                fallback: fallback?,
                deliver_at: deliver_at?,
            })
        })();
        errors.finish(content)
    }
}

/// A place in an event body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LocationBody {
    /// Venue name (1 to 200 characters, not blank).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Postal address (1 to 500 characters, not blank).
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    pub address: String,
}

/// A contact in an event body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContactBody {
    /// Name (1 to 200 characters, not blank).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// E.164 phone: `+` then 8 to 15 digits.
    #[schema(example = "+15145550030")]
    pub phone: Option<String>,
    /// Email address.
    #[schema(max_length = 254, example = "samir@example.org")]
    pub email: Option<String>,
}

/// The planning inside an event body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanningBody {
    /// Title (1 to 200 characters, not blank).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    /// Venue.
    pub location: LocationBody,
    /// RFC 3339 start with offset.
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// RFC 3339 end with offset, after `starts_at`.
    #[schema(format = DateTime)]
    pub ends_at: String,
    /// IANA time zone of the venue.
    #[schema(example = "America/Montreal")]
    pub timezone: String,
    /// Contact.
    pub contact: ContactBody,
}

/// A change's old and new values, as sent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangeBody {
    /// Before: a string (`title`, `starts_at`, `ends_at`: RFC 3339) or an object (`location`,
    /// `contact`).
    pub from: Value,
    /// After, of the same shape.
    pub to: Value,
}

/// `POST /api/v1/notifications/plannings/{planning_id}/events` body: one event of the planning
/// application, in the shape of its dataset.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlanningEventBody {
    /// Producer's event id (1 to 64 letters, digits, `-` or `_`): an id seen before is a replay.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub event_id: String,
    /// Must equal the path's planning id.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub planning_id: String,
    /// What happened.
    #[schema(value_type = PlanningEventName)]
    pub event: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// The planning after the event.
    pub planning: PlanningBody,
    /// Registered artists concerned.
    #[serde(default)]
    #[schema(value_type = Vec<RecipientIdSchema>)]
    pub artist_ids: Vec<String>,
    /// Registered coordinators concerned.
    #[serde(default)]
    #[schema(value_type = Vec<RecipientIdSchema>)]
    pub coordinator_ids: Vec<String>,
    /// For `modified`: what changed, by field (`title`, `location`, `starts_at`, `ends_at`,
    /// `contact`) → `{from, to}`.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, ChangeBody>)]
    pub changes: serde_json::Map<String, Value>,
}

fn instant(raw: &str, field: &str) -> Result<DateTime<Utc>, ValidationError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ValidationError::new(field, format!("is not an RFC 3339 date-time: {e}")))
}

fn location(body: &LocationBody) -> Result<Location, ValidationError> {
    Location::new(&body.name, &body.address)
}

fn contact(body: &ContactBody) -> Result<Contact, ValidationError> {
    Contact::new(&body.name, body.phone.as_deref(), body.email.as_deref())
}

fn change(field: &str, raw: &Value) -> Result<PlanningChange, ValidationError> {
    let path = format!("changes.{field}");
    let body: ChangeBody = serde_json::from_value(raw.clone())
        .map_err(|e| ValidationError::new(&path, format!("must be {{\"from\", \"to\"}}: {e}")))?;
    let text = |v: &Value, end: &str| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| ValidationError::new(format!("{path}.{end}"), "must be a string"))
    };
    let object = |v: &Value, end: &str| -> Result<Value, ValidationError> {
        if v.is_object() {
            Ok(v.clone())
        } else {
            Err(ValidationError::new(
                format!("{path}.{end}"),
                "must be an object",
            ))
        }
    };
    Ok(match field {
        "title" => PlanningChange::Title {
            from: text(&body.from, "from")?,
            to: text(&body.to, "to")?,
        },
        "starts_at" | "ends_at" => {
            let from = instant(&text(&body.from, "from")?, &format!("{path}.from"))?;
            let to = instant(&text(&body.to, "to")?, &format!("{path}.to"))?;
            if field == "starts_at" {
                PlanningChange::StartsAt { from, to }
            } else {
                PlanningChange::EndsAt { from, to }
            }
        }
        "location" => {
            let parse = |v: Value, end: &str| -> Result<Location, ValidationError> {
                let body: LocationBody = serde_json::from_value(v)
                    .map_err(|e| ValidationError::new(format!("{path}.{end}"), e.to_string()))?;
                location(&body).map_err(|e| e.within(&format!("{path}.{end}")))
            };
            PlanningChange::Location {
                from: parse(object(&body.from, "from")?, "from")?,
                to: parse(object(&body.to, "to")?, "to")?,
            }
        }
        "contact" => {
            let parse = |v: Value, end: &str| -> Result<Contact, ValidationError> {
                let body: ContactBody = serde_json::from_value(v)
                    .map_err(|e| ValidationError::new(format!("{path}.{end}"), e.to_string()))?;
                contact(&body).map_err(|e| e.within(&format!("{path}.{end}")))
            };
            PlanningChange::Contact {
                from: parse(object(&body.from, "from")?, "from")?,
                to: parse(object(&body.to, "to")?, "to")?,
            }
        }
        other => {
            return Err(ValidationError::new(
                &path,
                format!(
                    "unknown field {other:?}; known: title, location, starts_at, ends_at, contact"
                ),
            ))
        }
    })
}

impl PlanningEventBody {
    /// Validates the event for the planning `path_planning_id`.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] listing every invalid field: ids, event kind, times (and an
    /// end before the start), zone, contact, changes, and a body planning id that differs from
    /// the path's.
    pub fn into_event(self, path_planning_id: &str) -> Result<PlanningEvent, ApiError> {
        let mut e = Errors::default();
        if self.planning_id != path_planning_id {
            e.push(
                "planning_id",
                format!(
                    "{:?} differs from the planning id in the path {path_planning_id:?}",
                    self.planning_id
                ),
            );
        }
        let event_id = e.take("", PlanningEventId::parse(&self.event_id));
        let planning_id = e.take("", PlanningId::parse(path_planning_id));
        let kind = e.take("", PlanningEventKind::parse(&self.event));
        let occurred_at = e.take("", instant(&self.occurred_at, "occurred_at"));
        let p = &self.planning;
        let starts_at = e.take("planning", instant(&p.starts_at, "starts_at"));
        let ends_at = e.take("planning", instant(&p.ends_at, "ends_at"));
        let timezone = e.take("planning", TimeZone::parse(&p.timezone));
        let schedule = match (starts_at, ends_at, timezone) {
            (Some(s), Some(end), Some(tz)) => e.take("planning", Schedule::new(s, end, tz)),
            _ => None,
        };
        let location = e.take("planning.location", location(&p.location));
        let contact = e.take("planning.contact", contact(&p.contact));
        let ids = |raw: &[String], field: &str, e: &mut Errors| -> Vec<RecipientId> {
            raw.iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    e.take(
                        "",
                        RecipientId::parse(r).map_err(|err| {
                            ValidationError::new(format!("{field}[{i}]"), err.message)
                        }),
                    )
                })
                .collect()
        };
        let artist_ids = ids(&self.artist_ids, "artist_ids", &mut e);
        let coordinator_ids = ids(&self.coordinator_ids, "coordinator_ids", &mut e);
        let changes: Vec<PlanningChange> = self
            .changes
            .iter()
            .filter_map(|(field, raw)| e.take("", change(field, raw)))
            .collect();
        let snapshot = match (planning_id, schedule, location, contact) {
            (Some(id), Some(schedule), Some(location), Some(contact)) => e.take(
                "planning",
                PlanningSnapshot::new(id, &p.title, location, schedule, contact),
            ),
            _ => None,
        };
        let event = match (event_id, kind, occurred_at, snapshot) {
            (Some(id), Some(kind), Some(at), Some(snapshot)) if e.0.is_empty() => e.take(
                "",
                PlanningEvent::new(id, kind, at, snapshot, artist_ids, coordinator_ids, changes),
            ),
            _ => None,
        };
        e.finish(event)
    }
}

/// `POST /api/v1/notifications/test` body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TestBody {
    /// A registered recipient…
    #[schema(pattern = r"^(?!\.\.?$)[A-Za-z0-9_\-.:@]{1,128}$")]
    pub recipient_id: Option<String>,
    /// …or an email address…
    #[schema(max_length = 254, example = "zoe@example.org")]
    pub email: Option<String>,
    /// …and/or a Telegram chat.
    pub telegram_chat_id: Option<StringOrInt>,
    /// Channels to test; default every channel that is on.
    #[schema(value_type = Option<Vec<super::params::ChannelName>>)]
    pub channels: Option<Vec<String>>,
}

impl TestBody {
    /// Validates the body.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] when neither a recipient nor an address is given, or a field
    /// is invalid.
    pub fn into_command(
        self,
    ) -> Result<clairon_application::commands::SendTestNotification, ApiError> {
        use clairon_application::commands::{SendTestNotification, TestTarget};
        let mut e = Errors::default();
        let channels = e.take(
            "",
            self.channels
                .as_ref()
                .map(|c| {
                    c.iter()
                        .map(|s| clairon_domain::Channel::parse(s))
                        .collect::<Result<ChannelSet, _>>()
                })
                .transpose(),
        );
        let target = match (&self.recipient_id, &self.email, &self.telegram_chat_id) {
            (Some(id), None, None) => e
                .take(
                    "",
                    RecipientId::parse(id)
                        .map_err(|err| ValidationError::new("recipient_id", err.message)),
                )
                .map(TestTarget::Recipient),
            (None, None, None) => {
                e.push(
                    "recipient_id",
                    "give a recipient_id, or an email and/or telegram_chat_id",
                );
                None
            }
            (Some(_), _, _) => {
                e.push("recipient_id", "give a recipient_id or addresses, not both");
                None
            }
            (None, email, chat) => {
                let email = e.take("", email.as_deref().map(EmailAddress::parse).transpose());
                let chat = e.take(
                    "",
                    chat.as_ref()
                        .map(|c| TelegramChatId::parse(&c.text()))
                        .transpose(),
                );
                email
                    .zip(chat)
                    .map(|(email, telegram_chat_id)| TestTarget::Addresses {
                        email,
                        telegram_chat_id,
                    })
            }
        };
        let command = target
            .zip(channels)
            .map(|(target, channels)| SendTestNotification { target, channels });
        e.finish(command)
    }
}

/// Quiet hours: local times in the recipient's zone (UTC when they have none), `HH:MM`; `end`
/// earlier than `start` wraps midnight.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QuietHoursBody {
    /// When they start (`22:00`), inside.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "22:00")]
    pub start: String,
    /// When they end (`08:00`), outside; must differ from `start`.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "08:00")]
    pub end: String,
}

/// One outbound channel's digest (issue 13): its non-`critical` notifications gathered into
/// one message at the end of each window, local time in the recipient's zone (UTC when they
/// have none); `off` (the default) sends each on its own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "frequency", rename_all = "lowercase")]
pub enum DigestEntryBody {
    /// Every day at `at`.
    Daily {
        /// The window's end (`08:00`).
        #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "08:00")]
        at: String,
    },
    /// Every week on `day` at `at`.
    Weekly {
        /// The day of the week, in English, lower case.
        #[schema(
            pattern = "^(monday|tuesday|wednesday|thursday|friday|saturday|sunday)$",
            example = "monday"
        )]
        day: String,
        /// The window's end (`09:00`).
        #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "09:00")]
        at: String,
    },
    /// No digest.
    Off {},
}

/// `PUT …/preferences`: the whole document (a missing key means "allowed"). `channels` maps a
/// channel name (`clairon_domain::KNOWN_CHANNELS`) to `true`/`false`; `in_app` cannot be
/// `false`. `event_types` maps an exact event type (`planning.modified`) or a prefix ending in
/// `.*` (`project.*`) to such switches, at most 100 entries; for one channel the most specific
/// entry naming it decides. A 422 names every bad field (`channels.fax`,
/// `event_types.Bad`, `event_types.planning.*.in_app`, `quiet_hours.start`, …).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "channels": {"email": true, "telegram": false},
    "event_types": {"planning.modified": {"email": false}, "project.*": {"telegram": false}},
    "quiet_hours": {"start": "22:00", "end": "08:00"}
}))]
pub struct PreferencesBody {
    /// Channel switches.
    #[schema(value_type = Option<std::collections::HashMap<String, bool>>)]
    pub channels: Option<Value>,
    /// Per event type (or prefix `.*`) channel switches.
    #[schema(value_type = Option<std::collections::HashMap<String, std::collections::HashMap<String, bool>>>)]
    pub event_types: Option<Value>,
    /// Quiet hours, or `null` for none.
    #[schema(value_type = Option<QuietHoursBody>)]
    pub quiet_hours: Option<Value>,
    /// Digested outbound channels (`email`, `telegram`, …; never `in_app`): a 422 names
    /// `digest.<channel>.<field>`.
    #[schema(value_type = Option<std::collections::HashMap<String, DigestEntryBody>>)]
    pub digest: Option<Value>,
    /// Any other key: refused (422 naming it).
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: serde_json::Map<String, Value>,
}

impl PreferencesBody {
    /// The validated document.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] naming every bad field.
    pub fn into_preferences(self) -> Result<Preferences, ApiError> {
        let mut document = self.other;
        for (key, value) in [
            ("channels", self.channels),
            ("event_types", self.event_types),
            ("quiet_hours", self.quiet_hours),
            ("digest", self.digest),
        ] {
            if let Some(value) = value {
                document.insert(key.to_owned(), value);
            }
        }
        Preferences::parse(&Value::Object(document)).map_err(|errors| {
            ApiError::invalid_fields(errors.into_iter().map(Into::into).collect())
        })
    }
}

/// `PUT /api/v1/topics/{key}` body: the topic's name and every member (replaces).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TopicBody {
    /// Display name (1 to 200 characters on one line).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Every member (0 to 10,000 registered recipient ids; repeats kept once).
    #[schema(max_items = 10_000, value_type = Vec<RecipientIdSchema>)]
    pub recipient_ids: Vec<String>,
}

/// `POST /api/v1/topics/{key}/subscribers` body: members to add.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscribersBody {
    /// Members to add (1 to 10,000 registered recipient ids).
    #[schema(min_items = 1, max_items = 10_000, value_type = Vec<RecipientIdSchema>)]
    pub recipient_ids: Vec<String>,
}

/// Validates a list of recipient ids named `field`, each error at `field[i]`.
fn recipient_list(raw: &[String], field: &str, errors: &mut Errors) -> Vec<RecipientId> {
    let mut ids = Vec::with_capacity(raw.len());
    for (i, id) in raw.iter().enumerate() {
        if let Some(id) = errors.take(
            "",
            RecipientId::parse(id)
                .map_err(|e| ValidationError::new(format!("{field}[{i}]"), e.message)),
        ) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// A topic key from a path, as a 422 naming `key`.
///
/// # Errors
/// [`ApiError::Unprocessable`] naming `key`.
pub fn topic_key(raw: &str) -> Result<TopicKey, ApiError> {
    TopicKey::parse(raw).map_err(|e| ApiError::invalid_fields(vec![e.into()]))
}

impl TopicBody {
    /// Validates the body.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] listing every invalid field.
    pub fn into_parts(self) -> Result<(TopicName, Vec<RecipientId>), ApiError> {
        let mut errors = Errors::default();
        let name = errors.take("", TopicName::parse(&self.name));
        if self.recipient_ids.len() > 10_000 {
            errors.push("recipient_ids", "at most 10000 recipients");
        }
        let ids = recipient_list(&self.recipient_ids, "recipient_ids", &mut errors);
        errors.finish(name.map(|n| (n, ids)))
    }
}

impl SubscribersBody {
    /// Validates the body.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] listing every invalid field.
    pub fn into_ids(self) -> Result<Vec<RecipientId>, ApiError> {
        let mut errors = Errors::default();
        if self.recipient_ids.is_empty() {
            errors.push("recipient_ids", "must name at least one recipient");
        }
        if self.recipient_ids.len() > 10_000 {
            errors.push("recipient_ids", "at most 10000 recipients");
        }
        let ids = recipient_list(&self.recipient_ids, "recipient_ids", &mut errors);
        errors.finish(Some(ids))
    }
}

/// `POST /api/v1/events` body: any domain event of the host application.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventBody {
    /// The producer's id of the event (1 to 64 letters, digits, `-`, `_`); the same id again
    /// creates nothing new (`200`, `replayed: true`). One space with planning event ids.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "ev-42")]
    pub event_id: String,
    /// Dotted lower case, `[a-z0-9_]+(\.[a-z0-9_]+)+`, at most 64 characters; selects the
    /// routing rule and the templates.
    #[serde(rename = "type")]
    #[schema(
        pattern = r"^[a-z0-9_]+(\.[a-z0-9_]+)+$",
        max_length = 64,
        example = "project.role.assigned"
    )]
    pub event_type: String,
    /// RFC 3339 date-time it happened.
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// Recipients to tell (registered ids; unknown ones are listed in the 422).
    #[schema(max_items = 10_000, value_type = Option<Vec<RecipientIdSchema>>)]
    pub recipient_ids: Option<Vec<String>>,
    /// Topics whose members are told too (existing keys; unknown ones are listed in the 422).
    #[schema(max_items = 100, value_type = Option<Vec<super::params::TopicKeySchema>>)]
    pub topics: Option<Vec<String>>,
    /// Title used when the type has no templates, and given to templates as
    /// `notification.title` (1 to 200 characters on one line).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: String,
    /// Body used when the type has no templates (1 to 10,000 characters).
    #[schema(min_length = 1, max_length = 10_000, pattern = r"\S")]
    pub body: String,
    /// Call-to-action URL: `http` or `https`, at most 2,048 bytes.
    #[schema(max_length = 2048, format = Uri)]
    pub action_url: Option<String>,
    /// Call-to-action label (1 to 64 characters); needs `action_url`.
    #[schema(min_length = 1, max_length = 64, pattern = r"\S")]
    pub action_label: Option<String>,
    /// The producer's priority; the notification gets the higher of it and the routing
    /// rule's (default `normal`).
    #[schema(value_type = Option<PriorityName>)]
    pub priority: Option<String>,
    /// Default `info`.
    #[schema(value_type = Option<KindName>)]
    pub kind: Option<String>,
    /// Channels to use (at least one); the others get no delivery. Default every channel on.
    #[schema(value_type = Option<Vec<super::params::ChannelName>>, min_items = 1)]
    pub channels: Option<Vec<String>>,
    /// Fallback chain: channels tried in order, the first at once, each next one only when
    /// the one before gave up (`failed`, `dead`, `skipped` as unreachable); the chain stops at
    /// the first `sent`. They need not be in `channels`, and are not also sent in parallel.
    /// Each at most once; never `in_app`.
    #[schema(value_type = Option<Vec<super::params::ChannelName>>, example = json!(["telegram", "sms", "email"]))]
    pub fallback: Option<Vec<String>>,
    /// Free-form data, given to templates as `data` (a JSON object, at most
    /// `CLAIRON_MAX_METADATA_BYTES` with the rest of the notification's metadata).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

impl EventBody {
    /// Validates the body.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] listing every invalid field.
    pub fn into_event(self) -> Result<GenericEvent, ApiError> {
        let mut errors = Errors::default();
        let event_id = errors.take("", SourceEventId::parse(&self.event_id));
        let event_type = errors.take("", parse_event_type(&self.event_type));
        let occurred_at = errors.take("", instant(&self.occurred_at, "occurred_at"));
        let recipient_ids = recipient_list(
            self.recipient_ids.as_deref().unwrap_or_default(),
            "recipient_ids",
            &mut errors,
        );
        if recipient_ids.len() > 10_000 {
            errors.push("recipient_ids", "at most 10000 recipients");
        }
        let mut topics = Vec::new();
        let raw_topics = self.topics.unwrap_or_default();
        if raw_topics.len() > 100 {
            errors.push("topics", "at most 100 topics");
        }
        for (i, raw) in raw_topics.iter().enumerate() {
            if let Some(key) = errors.take(
                "",
                TopicKey::parse(raw)
                    .map_err(|e| ValidationError::new(format!("topics[{i}]"), e.message)),
            ) {
                if !topics.contains(&key) {
                    topics.push(key);
                }
            }
        }
        let title = errors.take("", Title::parse(&self.title));
        let body = errors.take("", Body::parse(&self.body));
        let action_url = errors.take(
            "",
            self.action_url.as_deref().map(ActionUrl::parse).transpose(),
        );
        let action_label = errors.take(
            "",
            self.action_label
                .as_deref()
                .map(ActionLabel::parse)
                .transpose(),
        );
        if action_label.as_ref().is_some_and(Option::is_some)
            && action_url.as_ref().is_some_and(Option::is_none)
        {
            errors.push("action_label", "needs an action_url");
        }
        let priority = errors.take(
            "",
            self.priority.as_deref().map(Priority::parse).transpose(),
        );
        let kind = errors.take(
            "",
            self.kind
                .as_deref()
                .map_or(Ok(NotificationKind::Info), NotificationKind::parse),
        );
        let channels = errors.take(
            "",
            self.channels
                .as_ref()
                .map(|c| {
                    c.iter()
                        .map(|s| clairon_domain::Channel::parse(s))
                        .collect::<Result<ChannelSet, _>>()
                })
                .transpose(),
        );
        if channels
            .as_ref()
            .is_some_and(|c| c.is_some_and(ChannelSet::is_empty))
        {
            errors.push("channels", "must name at least one channel");
        }
        let fallback = errors.take_all(Channel::parse_fallback(
            "fallback",
            self.fallback.as_deref().unwrap_or_default(),
        ));
        let data = match self.data {
            None | Some(Value::Null) => Some(Metadata::new()),
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                errors.push("data", "must be a JSON object");
                None
            }
        };
        let event = (|| {
            Some(GenericEvent {
                event_id: event_id?,
                event_type: event_type?,
                occurred_at: occurred_at?,
                recipient_ids,
                topics,
                title: title?,
                body: body?,
                action_url: action_url?,
                action_label: action_label?,
                priority: priority?,
                kind: kind?,
                channels: channels?,
                fallback: fallback?,
                data: data?,
            })
        })();
        errors.finish(event)
    }
}

/// `PUT /api/v1/routing-rules` body: the whole set (replaces the one in force).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoutingRulesBody {
    /// The rules; at most one per `event` pattern, at most 1,000.
    #[schema(max_items = 1000)]
    pub rules: Vec<RoutingRuleBody>,
}

/// One routing rule, as in the TOML `[[rule]]` of `clairon routing import`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoutingRuleBody {
    /// An event type (`sync.failed`) or a prefix followed by `.*` (`project.*`).
    #[schema(
        pattern = r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*|(\.[a-z0-9_]+))$",
        max_length = 64,
        example = "sync.failed"
    )]
    pub event: String,
    /// Topics whose members are told too.
    #[schema(value_type = Option<Vec<super::params::TopicKeySchema>>)]
    pub topics: Option<Vec<String>>,
    /// The only channels to use (at least one); the others get `skipped`, `not_in_rule`.
    #[schema(value_type = Option<Vec<super::params::ChannelName>>, min_items = 1)]
    pub channels: Option<Vec<String>>,
    /// The priority it raises its events to.
    #[schema(value_type = Option<PriorityName>)]
    pub priority: Option<String>,
    /// The fallback chain of its notifications when the event names none (see
    /// `POST /api/v1/events`'s `fallback`).
    #[schema(value_type = Option<Vec<super::params::ChannelName>>)]
    pub fallback: Option<Vec<String>>,
}

impl RoutingRulesBody {
    /// Validates the whole set.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] naming each bad field by its rule (`rules[2].channels[0]`).
    pub fn into_rules(self) -> Result<RoutingRules, ApiError> {
        let raw: Vec<RawRule> = self
            .rules
            .into_iter()
            .map(|r| RawRule {
                event: r.event,
                topics: r.topics,
                channels: r.channels,
                priority: r.priority,
                fallback: r.fallback,
            })
            .collect();
        RoutingRules::from_raw(&raw).map_err(|errors| {
            ApiError::invalid_fields(errors.into_iter().map(Into::into).collect())
        })
    }
}

/// `POST …/consents`: a grant or a withdrawal, appended to the history.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"channel": "sms", "granted": true, "source": "signup-form", "wording": "I agree to receive text messages about my plannings."}))]
pub struct ConsentBody {
    /// A catalogue channel name (`sms`, `email`, …).
    #[schema(value_type = super::params::KnownChannelName)]
    pub channel: String,
    /// `true` grants, `false` withdraws (and cancels the recipient's pending deliveries on that
    /// channel, reason `consent_revoked`).
    pub granted: bool,
    /// Where it was given (`signup-form`): 1 to 200 characters on one line.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub source: String,
    /// The words shown: 1 to 2,000 characters.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub wording: Option<String>,
}

impl ConsentBody {
    /// The validated consent.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] naming every bad field.
    pub fn into_consent(self) -> Result<NewConsent, ApiError> {
        let mut errors = Errors::default();
        let channel = errors.take("", ChannelName::parse(&self.channel));
        let source = errors.take("", ConsentSource::parse(&self.source));
        let wording = match self.wording.as_deref().map(ConsentWording::parse) {
            None => Some(None),
            Some(result) => errors.take("", result).map(Some),
        };
        match (channel, source, wording) {
            (Some(channel), Some(source), Some(wording)) if errors.0.is_empty() => Ok(NewConsent {
                channel,
                granted: self.granted,
                source,
                wording,
            }),
            _ => Err(ApiError::invalid_fields(errors.0)),
        }
    }
}

/// The longest `message` of a job run, in characters.
pub const MAX_JOB_MESSAGE: usize = 2000;
/// The longest `error_details` of a job run (a stack trace), in characters.
pub const MAX_JOB_ERROR_DETAILS: usize = 20_000;
/// The longest `triggered_by_user` of a job run, in characters.
pub const MAX_JOB_USER: usize = 254;

/// `POST /api/v1/job-runs` body: a run of an outside system's job (seed 003's `sync_logs`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct JobRunBody {
    /// The job's name.
    #[schema(value_type = super::params::JobName)]
    pub job: String,
    /// What kind of work.
    #[schema(value_type = super::params::TaskTypeName)]
    pub task_type: String,
    /// `running` (then end it with `PATCH /api/v1/job-runs/{id}`) or how it ended.
    #[schema(value_type = super::params::ReportedStatusName)]
    pub status: String,
    /// A one-line summary.
    #[schema(max_length = 2000)]
    pub message: Option<String>,
    /// What it did, a JSON object (`{"clients": 50, "pianos": 100}`).
    #[schema(value_type = Option<Object>)]
    pub stats: Option<Value>,
    /// Why it failed (a stack trace).
    #[schema(max_length = 20000)]
    pub error_details: Option<String>,
    /// What started it.
    #[schema(value_type = super::params::TriggeredByName)]
    pub triggered_by: String,
    /// Who started it by hand (an email, a login).
    #[schema(max_length = 254)]
    pub triggered_by_user: Option<String>,
    /// When it started (RFC 3339; default: now).
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// When it ended (RFC 3339; default: now, for a run reported ended; ignored for `running`).
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

/// `PATCH /api/v1/job-runs/{id}` body: how a `running` run ended.
#[derive(Debug, Deserialize, ToSchema)]
pub struct JobRunEndBody {
    /// How it ended.
    #[schema(value_type = super::params::EndStatusName)]
    pub status: String,
    /// A one-line summary (default: the one recorded).
    #[schema(max_length = 2000)]
    pub message: Option<String>,
    /// What it did, a JSON object (default: the stats recorded).
    #[schema(value_type = Option<Object>)]
    pub stats: Option<Value>,
    /// Why it failed.
    #[schema(max_length = 20000)]
    pub error_details: Option<String>,
    /// When it ended (RFC 3339; default: now).
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

fn optional_text(
    errors: &mut Errors,
    field: &str,
    raw: Option<String>,
    max: usize,
) -> Option<String> {
    let raw = raw?;
    if raw.chars().count() > max {
        errors.push(field, format!("must be at most {max} characters"));
        return None;
    }
    Some(raw)
}

fn optional_time(errors: &mut Errors, field: &str, raw: Option<&str>) -> Option<DateTime<Utc>> {
    let raw = raw?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(
                field,
                "must be an RFC 3339 date-time (2027-03-01T01:00:00Z)",
            );
            None
        }
    }
}

fn stats_object(errors: &mut Errors, raw: Option<Value>) -> Option<Value> {
    match raw {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => {
            errors.push("stats", "must be a JSON object");
            None
        }
    }
}

fn ended_status(errors: &mut Errors, raw: &str) -> Option<clairon_application::ports::JobStatus> {
    use clairon_application::ports::JobStatus;
    match JobStatus::parse(raw) {
        Some(s @ (JobStatus::Success | JobStatus::Warning | JobStatus::Error)) => Some(s),
        _ => {
            errors.push("status", "must be success, warning or error");
            None
        }
    }
}

impl JobRunBody {
    /// The report, every invalid field named.
    ///
    /// # Errors
    /// A 422 naming each bad field: `job`, `task_type`, `status` (`running`, `success`,
    /// `warning` or `error`), `triggered_by` (`scheduler`, `manual` or `api`), `message`,
    /// `error_details`, `triggered_by_user` (lengths), `stats` (an object), `started_at`,
    /// `finished_at` (RFC 3339).
    pub fn into_report(self) -> Result<clairon_application::commands::ReportJobRun, ApiError> {
        use clairon_application::ports::{JobStatus, JobTrigger, TaskType};
        let mut errors = Errors::default();
        let job = errors.take("", clairon_domain::jobs::JobName::parse(&self.job));
        let task_type = TaskType::parse(&self.task_type);
        if task_type.is_none() {
            errors.push("task_type", "must be sync, report, chain, backup or other");
        }
        let status = if self.status == JobStatus::Running.as_str() {
            Some(JobStatus::Running)
        } else {
            let mut status_errors = Errors::default();
            let s = ended_status(&mut status_errors, &self.status);
            if s.is_none() {
                errors.push("status", "must be running, success, warning or error");
            }
            s
        };
        let message = optional_text(&mut errors, "message", self.message, MAX_JOB_MESSAGE);
        let stats = stats_object(&mut errors, self.stats);
        let error_details = optional_text(
            &mut errors,
            "error_details",
            self.error_details,
            MAX_JOB_ERROR_DETAILS,
        );
        let trigger = JobTrigger::parse(&self.triggered_by);
        if trigger.is_none() {
            errors.push("triggered_by", "must be scheduler, manual or api");
        }
        let triggered_by_user = optional_text(
            &mut errors,
            "triggered_by_user",
            self.triggered_by_user,
            MAX_JOB_USER,
        );
        let started_at = optional_time(&mut errors, "started_at", self.started_at.as_deref());
        let finished_at = optional_time(&mut errors, "finished_at", self.finished_at.as_deref());
        if let (Some(start), Some(end)) = (started_at, finished_at) {
            if end < start && status != Some(JobStatus::Running) {
                errors.push("finished_at", "must not be before started_at");
            }
        }
        let report = match (job, task_type, status, trigger) {
            (Some(job), Some(task_type), Some(status), Some(trigger)) => {
                Some(clairon_application::commands::ReportJobRun {
                    job,
                    task_type,
                    status,
                    message,
                    stats: stats.unwrap_or_else(|| serde_json::json!({})),
                    error_details,
                    trigger,
                    triggered_by_user,
                    started_at,
                    finished_at,
                })
            }
            _ => None,
        };
        errors.finish(report)
    }
}

impl JobRunEndBody {
    /// The end of run `id`, every invalid field named.
    ///
    /// # Errors
    /// A 422 naming each bad field: `status` (`success`, `warning` or `error`), `message`,
    /// `error_details` (lengths), `stats` (an object), `finished_at` (RFC 3339).
    pub fn into_command(
        self,
        id: String,
    ) -> Result<clairon_application::commands::FinishJobRun, ApiError> {
        let mut errors = Errors::default();
        let status = ended_status(&mut errors, &self.status);
        let message = optional_text(&mut errors, "message", self.message, MAX_JOB_MESSAGE);
        let stats = stats_object(&mut errors, self.stats);
        let error_details = optional_text(
            &mut errors,
            "error_details",
            self.error_details,
            MAX_JOB_ERROR_DETAILS,
        );
        let finished_at = optional_time(&mut errors, "finished_at", self.finished_at.as_deref());
        let command = status.map(|status| clairon_application::commands::FinishJobRun {
            id,
            status,
            message,
            stats,
            error_details,
            finished_at,
        });
        errors.finish(command)
    }
}

/// The browser's keys of a push subscription (W3C Push API `PushSubscription.toJSON().keys`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushKeysBody {
    /// The browser's P-256 public key (RFC 8291 §3.1): base64url of the 65-byte uncompressed
    /// point (`0x04` first), 87 characters without padding.
    #[schema(min_length = 87, max_length = 88, pattern = r"^[A-Za-z0-9_-]+=?$")]
    pub p256dh: String,
    /// The authentication secret (RFC 8291 §3.2): base64url of 16 bytes, 22 characters
    /// without padding.
    #[schema(min_length = 22, max_length = 24, pattern = r"^[A-Za-z0-9_-]+={0,2}$")]
    pub auth: String,
}

/// `POST /api/v1/me/push-subscriptions`: a browser's push subscription, as
/// `PushSubscription.toJSON()` gives it (`expirationTime` and other members are ignored).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"endpoint": "https://updates.push.services.mozilla.com/wpush/v2/gAAAA", "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", "auth": "tBHItJI5svbpez7KI4CCXg"}}))]
pub struct PushSubscriptionBody {
    /// The push service URL (RFC 8030): `https` (plain `http` only for the hosts of
    /// `CLAIRON_PUSH_ALLOWED_HOSTS`), at most 2,000 characters.
    #[schema(min_length = 1, max_length = 2000, format = Uri)]
    pub endpoint: String,
    /// The browser's keys.
    pub keys: PushKeysBody,
}

/// Longest push endpoint accepted, in bytes.
pub const MAX_PUSH_ENDPOINT_BYTES: usize = 2000;

/// Checks a push endpoint: an absolute `https` URL with a host, or `http` when its host (or
/// `host:port`) is in `allowed_http_hosts`; no user name, no fragment, at most
/// [`MAX_PUSH_ENDPOINT_BYTES`].
///
/// # Errors
/// The message of what is wrong.
pub fn check_push_endpoint(endpoint: &str, allowed_http_hosts: &[String]) -> Result<(), String> {
    if endpoint.len() > MAX_PUSH_ENDPOINT_BYTES {
        return Err(format!("at most {MAX_PUSH_ENDPOINT_BYTES} bytes"));
    }
    let url = url::Url::parse(endpoint).map_err(|e| format!("not an absolute URL: {e}"))?;
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return Err("has no host".into());
    };
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("must not hold credentials or a fragment".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let with_port = url.port().map(|p| format!("{host}:{p}"));
            let allowed = allowed_http_hosts
                .iter()
                .any(|h| *h == host || Some(h) == with_port.as_ref());
            if allowed {
                Ok(())
            } else {
                Err("must be https (plain http only for CLAIRON_PUSH_ALLOWED_HOSTS)".into())
            }
        }
        other => Err(format!("must be https, not {other}")),
    }
}

fn base64url_bytes(raw: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw.trim_end_matches('='))
        .ok()
}

impl PushSubscriptionBody {
    /// The validated subscription, its keys written without padding.
    ///
    /// # Errors
    /// [`ApiError::Unprocessable`] naming each bad field: `endpoint` (see
    /// [`check_push_endpoint`]), `keys.p256dh` (not a P-256 point, uncompressed, 65 bytes),
    /// `keys.auth` (not 16 bytes).
    pub fn into_subscription(
        self,
        allowed_http_hosts: &[String],
    ) -> Result<clairon_application::ports::PushSubscription, ApiError> {
        let mut errors = Vec::new();
        if let Err(message) = check_push_endpoint(&self.endpoint, allowed_http_hosts) {
            errors.push(FieldError {
                field: "endpoint".into(),
                message,
            });
        }
        let point = base64url_bytes(&self.keys.p256dh).filter(|bytes| {
            bytes.len() == 65 && bytes[0] == 4 && p256::PublicKey::from_sec1_bytes(bytes).is_ok()
        });
        if point.is_none() {
            errors.push(FieldError {
                field: "keys.p256dh".into(),
                message: "not base64url of an uncompressed P-256 point (65 bytes, 0x04 first)"
                    .into(),
            });
        }
        if base64url_bytes(&self.keys.auth)
            .filter(|b| b.len() == 16)
            .is_none()
        {
            errors.push(FieldError {
                field: "keys.auth".into(),
                message: "not base64url of 16 bytes".into(),
            });
        }
        if !errors.is_empty() {
            let detail = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ApiError::Unprocessable { detail, errors });
        }
        Ok(clairon_application::ports::PushSubscription {
            endpoint: self.endpoint,
            p256dh: self.keys.p256dh.trim_end_matches('=').to_owned(),
            auth: self.keys.auth.trim_end_matches('=').to_owned(),
        })
    }
}
