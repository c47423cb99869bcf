//! A recipient's preferences: which channels and event types they hear on, and their quiet hours.
//!
//! The document (issue 11, "Preferences"):
//!
//! ```json
//! {"channels": {"email": true, "telegram": false},
//!  "event_types": {"planning.modified": {"email": false}, "project.*": {"telegram": false}},
//!  "quiet_hours": {"start": "22:00", "end": "08:00"}}
//! ```
//!
//! A missing key means "allowed". `event_types` keys are an exact event type or a prefix ending
//! in `.*`; for one channel, the most specific entry naming that channel decides (an exact type
//! beats any prefix, a longer prefix a shorter one). A channel goes out when neither its
//! `channels` switch nor that entry is `false`. `in_app` cannot be switched off: the inbox is the
//! record. Quiet hours are read in the recipient's time zone and may wrap midnight; a delivery
//! falling due inside them waits until they end, resolved as the J-1 reminders resolve local
//! times ([`crate::reminders::resolve_local`]: a skipped local time moves forward past the gap, an
//! ambiguous one takes the earlier instant). `critical` overrides all of it (never consent,
//! which is [`crate::consent`]'s).
//!
//! A `digest` key (issue 13) gathers a channel's non-`critical` notifications into one message
//! per window: `{"digest": {"email": {"frequency": "daily", "at": "08:00"}}}`, read by
//! [`Preferences::digest_window`]; the schedules are [`crate::digest`]'s.
//!
//! Pure: callers pass the due instant and the zone.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Days, NaiveTime, Utc};
use serde_json::{json, Map, Value};

use crate::channel::ChannelName;
use crate::digest::{DigestSchedule, DigestWindow};
use crate::error::ValidationError;
use crate::notification::{EventType, Priority};
use crate::recipient::{TimeZone, Unreachable};
use crate::reminders::resolve_local;

/// Most `event_types` entries one document may hold.
pub const MAX_EVENT_TYPE_ENTRIES: usize = 100;

/// The key of an `event_types` entry: an exact event type (`planning.modified`) or a prefix
/// (`project.*`, which matches `project.created` and `project.role.assigned`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTypePattern(String);

impl EventTypePattern {
    /// Parses a key: what [`EventType::parse`] accepts (1 to 64 lowercase letters, digits, `.`,
    /// `_`), or such a prefix not ending in `.` followed by `.*`.
    ///
    /// # Errors
    /// [`ValidationError`] on `event_types.<raw>` for anything else.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let body = raw.strip_suffix(".*").unwrap_or(raw);
        if !body.is_empty() && !body.ends_with('.') && EventType::parse(body).is_ok() {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                format!("event_types.{raw}"),
                "must be an event type (lowercase letters, digits, . or _, at most 64) or a prefix ending in .* (project.*)",
            ))
        }
    }

    /// The pattern of exactly `event_type`.
    pub fn exact(event_type: &EventType) -> Self {
        Self(event_type.as_str().to_owned())
    }

    /// The key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it matches `event_type`: the same type, or a type starting with `prefix.`.
    pub fn matches(&self, event_type: &EventType) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => event_type.as_str().starts_with(prefix),
            None => self.0 == event_type.as_str(),
        }
    }

    /// How specific it is: any exact type is more specific than every prefix, a longer prefix
    /// more than a shorter one.
    pub fn specificity(&self) -> (bool, usize) {
        (!self.0.ends_with(".*"), self.0.len())
    }
}

impl fmt::Display for EventTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A time of day as `HH:MM` (24-hour clock).
pub(crate) fn time_of_day(field: &str, value: &Value) -> Result<NaiveTime, ValidationError> {
    value
        .as_str()
        .and_then(|raw| {
            (raw.len() == 5)
                .then(|| NaiveTime::parse_from_str(raw, "%H:%M").ok())
                .flatten()
        })
        .ok_or_else(|| {
            ValidationError::new(field, "must be a time of day as HH:MM (24-hour clock)")
        })
}

/// Quiet hours: from `start` to `end`, local time; wraps midnight when `end` is earlier
/// (`22:00`–`08:00`). `start` is inside, `end` is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
}

impl QuietHours {
    /// Quiet hours from `start` to `end` (`HH:MM` each).
    ///
    /// # Errors
    /// [`ValidationError`] on `quiet_hours.start` or `quiet_hours.end` when it is not `HH:MM`,
    /// or on `quiet_hours.end` when it equals `start`.
    pub fn parse(start: &str, end: &str) -> Result<Self, Vec<ValidationError>> {
        let mut errors = Vec::new();
        parse_quiet_hours(&json!({ "start": start, "end": end }), &mut errors)
            .filter(|_| errors.is_empty())
            .ok_or(errors)
    }

    /// When they start, local time.
    pub fn start(self) -> NaiveTime {
        self.start
    }

    /// When they end, local time.
    pub fn end(self) -> NaiveTime {
        self.end
    }

    /// When quiet hours holding `at` end (UTC), for a recipient in `zone`; `None` when `at` is
    /// outside them. The end is the local time `end` on the day it next comes, DST-resolved (a
    /// gap moves it forward, an ambiguity takes the earlier instant); should that instant not
    /// be after `at` (`at` in the repeated hour of a fall-back, after the first `end`), the
    /// quiet hours are over and `None` is answered.
    pub fn end_after(self, at: DateTime<Utc>, zone: TimeZone) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&zone.tz()).naive_local();
        let (day, time) = (local.date(), local.time());
        let end_day = if self.start < self.end {
            (self.start..self.end).contains(&time).then_some(day)?
        } else if time >= self.start {
            day.checked_add_days(Days::new(1))?
        } else if time < self.end {
            day
        } else {
            return None;
        };
        let end = resolve_local(zone, end_day.and_time(self.end));
        (end > at).then_some(end)
    }

    fn to_json(self) -> Value {
        json!({
            "start": self.start.format("%H:%M").to_string(),
            "end": self.end.format("%H:%M").to_string(),
        })
    }
}

fn parse_quiet_hours(value: &Value, errors: &mut Vec<ValidationError>) -> Option<QuietHours> {
    let Some(object) = value.as_object() else {
        errors.push(ValidationError::new(
            "quiet_hours",
            "must be null or an object {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}",
        ));
        return None;
    };
    for key in object.keys().filter(|k| *k != "start" && *k != "end") {
        errors.push(ValidationError::new(
            format!("quiet_hours.{key}"),
            "unknown field; expected start and end",
        ));
    }
    let mut time = |name: &str| {
        let field = format!("quiet_hours.{name}");
        match object.get(name) {
            None => {
                errors.push(ValidationError::new(field, "missing"));
                None
            }
            Some(v) => time_of_day(&field, v).map_err(|e| errors.push(e)).ok(),
        }
    };
    let (start, end) = (time("start"), time("end"));
    let (start, end) = (start?, end?);
    if start == end {
        errors.push(ValidationError::new(
            "quiet_hours.end",
            "must differ from start (quiet hours of no length)",
        ));
        return None;
    }
    Some(QuietHours { start, end })
}

/// What a preference document says about one channel of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreferenceVerdict {
    /// Send it when due.
    Allowed,
    /// The recipient switched it off; the entry that did it (`channels.email`,
    /// `event_types.planning.modified.email`).
    OptedOut(String),
    /// Inside their quiet hours: not before this instant (UTC), their end.
    Postponed(DateTime<Utc>),
}

/// A recipient's preference document, validated. The default allows everything, always.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Preferences {
    channels: BTreeMap<ChannelName, bool>,
    event_types: BTreeMap<EventTypePattern, BTreeMap<ChannelName, bool>>,
    quiet_hours: Option<QuietHours>,
    digest: BTreeMap<ChannelName, DigestSchedule>,
}

impl Preferences {
    /// Parses a document (a JSON object with the optional keys `channels`, `event_types`,
    /// `quiet_hours`), collecting every bad field.
    ///
    /// # Errors
    /// Every [`ValidationError`] found, each on its field: `channels.<name>` (unknown channel,
    /// not a boolean, `in_app` switched off), `event_types.<key>` (malformed key, not an
    /// object), `event_types.<key>.<name>`, `event_types` (over [`MAX_EVENT_TYPE_ENTRIES`]),
    /// `quiet_hours`, `quiet_hours.start`, `quiet_hours.end`, `digest`, `digest.<channel>`
    /// (unknown channel, `in_app`), `digest.<channel>.<field>` ([`DigestSchedule::parse_entry`]),
    /// or an unknown top-level key.
    pub fn parse(document: &Value) -> Result<Self, Vec<ValidationError>> {
        let mut errors = Vec::new();
        let preferences = Self::read(document, &mut errors);
        if errors.is_empty() {
            Ok(preferences)
        } else {
            Err(errors)
        }
    }

    /// Reads a stored document, keeping what is valid and dropping the rest (a row written
    /// before a rule changed never fails a delivery).
    pub fn from_stored(document: &Value) -> Self {
        Self::read(document, &mut Vec::new())
    }

    fn read(document: &Value, errors: &mut Vec<ValidationError>) -> Self {
        let mut preferences = Self::default();
        let Some(object) = document.as_object() else {
            errors.push(ValidationError::new(
                "body",
                "must be an object with channels, event_types and quiet_hours",
            ));
            return preferences;
        };
        for (key, value) in object {
            match key.as_str() {
                "channels" => preferences.channels = switches("channels", value, errors),
                "event_types" => preferences.event_types = event_types(value, errors),
                "quiet_hours" if value.is_null() => {}
                "quiet_hours" => preferences.quiet_hours = parse_quiet_hours(value, errors),
                "digest" if value.is_null() => {}
                "digest" => preferences.digest = digest_entries(value, errors),
                other => errors.push(ValidationError::new(
                    other,
                    "unknown field; expected channels, event_types, quiet_hours, digest",
                )),
            }
        }
        preferences
    }

    /// The document as JSON, every key present: `{"channels": {…}, "event_types": {…},
    /// "quiet_hours": null | {"start", "end"}}`, and `"digest": {"<channel>": {…}}` when a
    /// channel is digested ([`DigestSchedule::to_json`]).
    pub fn to_json(&self) -> Value {
        let channels: Map<String, Value> = self
            .channels
            .iter()
            .map(|(c, on)| (c.as_str().to_owned(), Value::Bool(*on)))
            .collect();
        let event_types: Map<String, Value> = self
            .event_types
            .iter()
            .map(|(key, switches)| {
                let inner: Map<String, Value> = switches
                    .iter()
                    .map(|(c, on)| (c.as_str().to_owned(), Value::Bool(*on)))
                    .collect();
                (key.as_str().to_owned(), Value::Object(inner))
            })
            .collect();
        let mut document = json!({
            "channels": channels,
            "event_types": event_types,
            "quiet_hours": self.quiet_hours.map(QuietHours::to_json),
        });
        if !self.digest.is_empty() {
            let digest: Map<String, Value> = self
                .digest
                .iter()
                .map(|(c, schedule)| (c.as_str().to_owned(), schedule.to_json()))
                .collect();
            document["digest"] = Value::Object(digest);
        }
        document
    }

    /// The digested channels and their schedules (issue 13, "Digests"): a channel not named
    /// here is not digested (`off`).
    pub fn digest(&self) -> &BTreeMap<ChannelName, DigestSchedule> {
        &self.digest
    }

    /// The digest window a notification of `priority` on `channel`, created at `at` (UTC), is
    /// batched into for a recipient in `zone`; `None` when it goes out on its own: the channel
    /// is not digested, it is `in_app` (the inbox is the record), or the notification is
    /// `critical` (sent at once).
    pub fn digest_window(
        &self,
        channel: ChannelName,
        priority: Priority,
        at: DateTime<Utc>,
        zone: TimeZone,
    ) -> Option<DigestWindow> {
        if channel == ChannelName::IN_APP || priority == Priority::Critical {
            return None;
        }
        self.digest
            .get(&channel)
            .map(|schedule| schedule.window_containing(at, zone))
    }

    /// The channel switches.
    pub fn channels(&self) -> &BTreeMap<ChannelName, bool> {
        &self.channels
    }

    /// The event-type entries.
    pub fn event_types(&self) -> &BTreeMap<EventTypePattern, BTreeMap<ChannelName, bool>> {
        &self.event_types
    }

    /// The quiet hours, if any.
    pub fn quiet_hours(&self) -> Option<QuietHours> {
        self.quiet_hours
    }

    /// Switches `channel` off for exactly `event_type` (`event_types.<type>.<channel> =
    /// false`): what a one-click unsubscribe does. Idempotent; other entries are untouched.
    ///
    /// # Errors
    /// [`ValidationError`] on `channel` for `in_app`, which cannot be switched off.
    pub fn opt_out(
        &mut self,
        event_type: &EventType,
        channel: ChannelName,
    ) -> Result<(), ValidationError> {
        if channel == ChannelName::IN_APP {
            return Err(in_app_refused("channel"));
        }
        self.event_types
            .entry(EventTypePattern::exact(event_type))
            .or_default()
            .insert(channel, false);
        Ok(())
    }

    /// The entry deciding `channel` for `event_type`: the most specific `event_types` key
    /// that names the channel, with its value.
    fn event_type_entry(
        &self,
        event_type: &EventType,
        channel: ChannelName,
    ) -> Option<(&EventTypePattern, bool)> {
        self.event_types
            .iter()
            .filter(|(pattern, _)| pattern.matches(event_type))
            .filter_map(|(pattern, switches)| switches.get(&channel).map(|on| (pattern, *on)))
            .max_by_key(|(pattern, _)| pattern.specificity())
    }

    /// What these preferences say about a notification of `event_type` and `priority` on
    /// `channel`, falling due at `due` (UTC) for a recipient in `zone`:
    ///
    /// 1. `in_app` and `critical` are always [`PreferenceVerdict::Allowed`] (at once);
    /// 2. `channels.<channel>: false` → [`PreferenceVerdict::OptedOut`] `channels.<channel>`;
    /// 3. the most specific `event_types` entry naming the channel, when `false` →
    ///    `OptedOut` `event_types.<key>.<channel>`;
    /// 4. `due` inside the quiet hours → [`PreferenceVerdict::Postponed`] to their end.
    pub fn decide(
        &self,
        channel: ChannelName,
        event_type: &EventType,
        priority: Priority,
        due: DateTime<Utc>,
        zone: TimeZone,
    ) -> PreferenceVerdict {
        if channel == ChannelName::IN_APP || priority == Priority::Critical {
            return PreferenceVerdict::Allowed;
        }
        if self.channels.get(&channel) == Some(&false) {
            return PreferenceVerdict::OptedOut(format!("channels.{channel}"));
        }
        if let Some((pattern, false)) = self.event_type_entry(event_type, channel) {
            return PreferenceVerdict::OptedOut(format!("event_types.{pattern}.{channel}"));
        }
        match self.quiet_hours.and_then(|q| q.end_after(due, zone)) {
            Some(end) => PreferenceVerdict::Postponed(end),
            None => PreferenceVerdict::Allowed,
        }
    }
}

fn in_app_refused(field: impl Into<String>) -> ValidationError {
    ValidationError::new(
        field,
        "in_app cannot be switched off: the inbox is the record",
    )
}

/// A `{"<channel>": bool}` object at `field`.
fn switches(
    field: &str,
    value: &Value,
    errors: &mut Vec<ValidationError>,
) -> BTreeMap<ChannelName, bool> {
    let mut found = BTreeMap::new();
    let Some(object) = value.as_object() else {
        errors.push(ValidationError::new(
            field,
            "must be an object of channel names to true or false",
        ));
        return found;
    };
    for (name, on) in object {
        let at = format!("{field}.{name}");
        let channel = ChannelName::parse_as(&at, name).map_err(|e| errors.push(e));
        let on = on
            .as_bool()
            .ok_or_else(|| errors.push(ValidationError::new(&at, "must be true or false")));
        match (channel, on) {
            (Ok(channel), Ok(false)) if channel == ChannelName::IN_APP => {
                errors.push(in_app_refused(at));
            }
            (Ok(channel), Ok(on)) => {
                found.insert(channel, on);
            }
            _ => {}
        }
    }
    found
}

/// The `digest` object: outbound channel name → [`DigestSchedule::parse_entry`]'s entry
/// (`{"frequency": "off"}` leaves the channel out).
fn digest_entries(
    value: &Value,
    errors: &mut Vec<ValidationError>,
) -> BTreeMap<ChannelName, DigestSchedule> {
    let mut found = BTreeMap::new();
    let Some(object) = value.as_object() else {
        errors.push(ValidationError::new(
            "digest",
            "must be null or an object of outbound channel names to {\"frequency\", \"day\"?, \"at\"}",
        ));
        return found;
    };
    for (name, entry) in object {
        let field = format!("digest.{name}");
        let channel = ChannelName::parse_as(&field, name).map_err(|e| errors.push(e));
        if matches!(channel, Ok(c) if c == ChannelName::IN_APP) {
            errors.push(ValidationError::new(
                &field,
                "in_app is never digested: the inbox is the record",
            ));
            continue;
        }
        let schedule = DigestSchedule::parse_entry(&field, entry).map_err(|e| errors.extend(e));
        if let (Ok(channel), Ok(Some(schedule))) = (channel, schedule) {
            found.insert(channel, schedule);
        }
    }
    found
}

fn event_types(
    value: &Value,
    errors: &mut Vec<ValidationError>,
) -> BTreeMap<EventTypePattern, BTreeMap<ChannelName, bool>> {
    let mut found = BTreeMap::new();
    let Some(object) = value.as_object() else {
        errors.push(ValidationError::new(
            "event_types",
            "must be an object of event types (or prefixes ending in .*) to channel switches",
        ));
        return found;
    };
    if object.len() > MAX_EVENT_TYPE_ENTRIES {
        errors.push(ValidationError::new(
            "event_types",
            format!("at most {MAX_EVENT_TYPE_ENTRIES} entries"),
        ));
    }
    for (key, value) in object {
        let pattern = EventTypePattern::parse(key).map_err(|e| errors.push(e));
        let switches = switches(&format!("event_types.{key}"), value, errors);
        if let Ok(pattern) = pattern {
            found.insert(pattern, switches);
        }
    }
    found
}

/// Why a channel of a notification got a `skipped` delivery (or, for
/// [`SkipReason::ConsentRevoked`], a `cancelled` one): stored as `"<code>: <detail>"` in the
/// delivery's `last_error`, shown as its `reason`. For one channel of one recipient the checks
/// run in this order and the first that applies names the skip: `not_in_rule`, `unreachable`,
/// `no_consent`, `opted_out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The routing rule of the event type leaves the channel out; its event pattern.
    NotInRule(String),
    /// The recipient cannot be reached on it.
    Unreachable(Unreachable),
    /// The channel needs a granted consent and has none.
    NoConsent(ChannelName),
    /// A preference switched it off; the entry.
    OptedOut(String),
    /// A consent revocation withdrew a pending delivery.
    ConsentRevoked,
    /// Coalesced planning changes (issue 13, `crate::coalescing`): an earlier modification's
    /// pending delivery taken into a later notice (the detail is that notice's id), or a new
    /// one with nothing left to tell (`no net change`).
    Coalesced(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInRule(pattern) => write!(f, "not_in_rule: {pattern}"),
            Self::Unreachable(why) => write!(f, "unreachable: {why}"),
            Self::NoConsent(channel) => write!(f, "no_consent: {channel}"),
            Self::OptedOut(entry) => write!(f, "opted_out: {entry}"),
            Self::ConsentRevoked => f.write_str("consent_revoked"),
            Self::Coalesced(detail) => write!(f, "coalesced: {detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::parse(name).unwrap()
    }

    fn channel(name: &str) -> ChannelName {
        ChannelName::parse(name).unwrap()
    }

    fn event(raw: &str) -> EventType {
        EventType::parse(raw).unwrap()
    }

    fn prefs(document: Value) -> Preferences {
        Preferences::parse(&document).unwrap()
    }

    fn fields(document: Value) -> Vec<String> {
        let mut fields: Vec<String> = Preferences::parse(&document)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        fields.sort();
        fields
    }

    #[test]
    fn the_issue_example_parses_and_round_trips() {
        let document = json!({
            "channels": {"email": true, "telegram": false},
            "event_types": {"planning.modified": {"email": false}, "project.*": {"telegram": false}},
            "quiet_hours": {"start": "22:00", "end": "08:00"}
        });
        let parsed = prefs(document.clone());
        assert_eq!(parsed.to_json(), document);
        assert_eq!(Preferences::parse(&parsed.to_json()).unwrap(), parsed);
    }

    #[test]
    fn the_default_document_allows_everything_and_reads_as_empty() {
        assert_eq!(
            Preferences::default().to_json(),
            json!({"channels": {}, "event_types": {}, "quiet_hours": null})
        );
        assert_eq!(prefs(json!({})), Preferences::default());
    }

    #[rstest]
    #[case::unknown_channel(json!({"channels": {"fax": true}}), &["channels.fax"])]
    #[case::not_a_boolean(json!({"channels": {"email": "no"}}), &["channels.email"])]
    #[case::in_app_off(json!({"channels": {"in_app": false}}), &["channels.in_app"])]
    #[case::in_app_off_for_a_type(json!({"event_types": {"planning.*": {"in_app": false}}}), &["event_types.planning.*.in_app"])]
    #[case::malformed_keys(json!({"event_types": {"Planning": {}, "a.*.b": {}, ".*": {}, "x..*": {}}}), &["event_types..*", "event_types.Planning", "event_types.a.*.b", "event_types.x..*"])]
    #[case::entry_not_an_object(json!({"event_types": {"planning.modified": false}}), &["event_types.planning.modified"])]
    #[case::bad_times(json!({"quiet_hours": {"start": "25:00", "end": "8:00"}}), &["quiet_hours.end", "quiet_hours.start"])]
    #[case::empty_window(json!({"quiet_hours": {"start": "08:00", "end": "08:00"}}), &["quiet_hours.end"])]
    #[case::missing_end(json!({"quiet_hours": {"start": "22:00", "stop": "08:00"}}), &["quiet_hours.end", "quiet_hours.stop"])]
    #[case::quiet_hours_not_an_object(json!({"quiet_hours": "22-08"}), &["quiet_hours"])]
    #[case::unknown_top_level(json!({"channel": {}}), &["channel"])]
    #[case::not_an_object(json!([]), &["body"])]
    #[case::all_at_once(
        json!({"channels": {"sms": 1, "in_app": false}, "event_types": {"BAD": {"email": false, "fax": false}}, "quiet_hours": {"start": "x", "end": "08:00"}}),
        &["channels.in_app", "channels.sms", "event_types.BAD", "event_types.BAD.fax", "quiet_hours.start"]
    )]
    fn every_bad_field_is_named(#[case] document: Value, #[case] expected: &[&str]) {
        assert_eq!(fields(document), expected);
    }

    #[test]
    fn the_digest_example_parses_and_round_trips() {
        let document = json!({
            "channels": {},
            "event_types": {},
            "quiet_hours": null,
            "digest": {
                "email": {"frequency": "daily", "at": "08:00"},
                "telegram": {"frequency": "weekly", "day": "monday", "at": "09:00"}
            }
        });
        let parsed = prefs(document.clone());
        assert_eq!(parsed.to_json(), document);
        assert_eq!(parsed.digest().len(), 2);
    }

    #[test]
    fn a_digest_switched_off_is_no_digest() {
        let parsed = prefs(json!({"digest": {"email": {"frequency": "off"}}}));
        assert!(parsed.digest().is_empty());
        assert_eq!(parsed.to_json().get("digest"), None);
    }

    #[rstest]
    #[case::not_an_object(json!({"digest": "daily"}), &["digest"])]
    #[case::in_app(json!({"digest": {"in_app": {"frequency": "daily", "at": "08:00"}}}), &["digest.in_app"])]
    #[case::unknown_channel(json!({"digest": {"fax": {"frequency": "daily", "at": "08:00"}}}), &["digest.fax"])]
    #[case::bad_fields(
        json!({"digest": {"email": {"frequency": "hourly", "at": "8h"}, "telegram": {"frequency": "weekly", "at": "09:00"}}}),
        &["digest.email.at", "digest.email.frequency", "digest.telegram.day"]
    )]
    fn every_bad_digest_field_is_named(#[case] document: Value, #[case] expected: &[&str]) {
        assert_eq!(fields(document), expected);
    }

    #[rstest]
    #[case::digested("email", "normal", Some("2027-03-11T08:00:00Z"))]
    #[case::critical_goes_at_once("email", "critical", None)]
    #[case::in_app_is_never_digested("in_app", "normal", None)]
    #[case::another_channel_is_not_digested("telegram", "normal", None)]
    fn a_digested_channel_batches_a_notification_into_the_window_holding_it(
        #[case] channel_name: &str,
        #[case] priority: &str,
        #[case] end: Option<&str>,
    ) {
        let parsed = prefs(json!({"digest": {"email": {"frequency": "daily", "at": "08:00"}}}));
        let window = parsed.digest_window(
            channel(channel_name),
            Priority::parse(priority).unwrap(),
            noon(),
            zone("UTC"),
        );
        assert_eq!(window.map(|w| w.end), end.map(utc));
    }

    #[test]
    fn too_many_event_type_entries_are_refused() {
        let entries: Map<String, Value> = (0..=MAX_EVENT_TYPE_ENTRIES)
            .map(|i| (format!("type.n{i}"), json!({"email": false})))
            .collect();
        assert_eq!(
            fields(json!({ "event_types": entries })),
            vec!["event_types"]
        );
    }

    #[test]
    fn a_stored_document_keeps_what_is_still_valid() {
        let stored = Preferences::from_stored(&json!({
            "channels": {"fax": false, "email": false},
            "quiet_hours": {"start": "99:00", "end": "08:00"}
        }));
        assert_eq!(
            stored.to_json(),
            json!({"channels": {"email": false}, "event_types": {}, "quiet_hours": null})
        );
    }

    #[rstest]
    #[case::exact("planning.modified", "planning.modified", true)]
    #[case::exact_other("planning.modified", "planning.cancelled", false)]
    #[case::prefix("project.*", "project.created", true)]
    #[case::prefix_deeper("project.*", "project.role.assigned", true)]
    #[case::prefix_not_the_bare_word("project.*", "project", false)]
    #[case::prefix_not_a_longer_word("project.*", "projects.created", false)]
    fn a_pattern_matches_its_type_or_its_prefix(
        #[case] pattern: &str,
        #[case] event_type: &str,
        #[case] expected: bool,
    ) {
        assert_eq!(
            EventTypePattern::parse(pattern)
                .unwrap()
                .matches(&event(event_type)),
            expected
        );
    }

    fn noon() -> DateTime<Utc> {
        utc("2027-03-10T12:00:00Z")
    }

    #[rstest]
    #[case::nothing_set(json!({}), "email", "planning.modified", "normal", PreferenceVerdict::Allowed)]
    #[case::channel_off(json!({"channels": {"email": false}}), "email", "planning.modified", "normal", PreferenceVerdict::OptedOut("channels.email".into()))]
    #[case::channel_on(json!({"channels": {"email": true}}), "email", "planning.modified", "high", PreferenceVerdict::Allowed)]
    #[case::exact_type_off(json!({"event_types": {"planning.modified": {"email": false}}}), "email", "planning.modified", "normal", PreferenceVerdict::OptedOut("event_types.planning.modified.email".into()))]
    #[case::other_channel_untouched(json!({"event_types": {"planning.modified": {"email": false}}}), "telegram", "planning.modified", "normal", PreferenceVerdict::Allowed)]
    #[case::other_type_untouched(json!({"event_types": {"planning.modified": {"email": false}}}), "email", "planning.assigned", "normal", PreferenceVerdict::Allowed)]
    #[case::prefix_off(json!({"event_types": {"project.*": {"telegram": false}}}), "telegram", "project.role.assigned", "low", PreferenceVerdict::OptedOut("event_types.project.*.telegram".into()))]
    #[case::exact_beats_prefix(json!({"event_types": {"project.*": {"email": false}, "project.created": {"email": true}}}), "email", "project.created", "normal", PreferenceVerdict::Allowed)]
    #[case::longer_prefix_beats_shorter(json!({"event_types": {"project.*": {"email": true}, "project.role.*": {"email": false}}}), "email", "project.role.assigned", "normal", PreferenceVerdict::OptedOut("event_types.project.role.*.email".into()))]
    #[case::entry_without_the_channel_does_not_decide(json!({"event_types": {"project.*": {"email": false}, "project.created": {"telegram": true}}}), "email", "project.created", "normal", PreferenceVerdict::OptedOut("event_types.project.*.email".into()))]
    #[case::channel_switch_named_first(json!({"channels": {"email": false}, "event_types": {"planning.modified": {"email": false}}}), "email", "planning.modified", "normal", PreferenceVerdict::OptedOut("channels.email".into()))]
    #[case::critical_overrides_the_channel(json!({"channels": {"email": false}}), "email", "planning.cancelled", "critical", PreferenceVerdict::Allowed)]
    #[case::critical_overrides_the_type(json!({"event_types": {"planning.*": {"telegram": false}}}), "telegram", "planning.cancelled", "critical", PreferenceVerdict::Allowed)]
    #[case::critical_overrides_quiet_hours(json!({"quiet_hours": {"start": "00:00", "end": "23:59"}}), "email", "x.y", "critical", PreferenceVerdict::Allowed)]
    #[case::in_app_is_never_postponed(json!({"quiet_hours": {"start": "00:00", "end": "23:59"}}), "in_app", "x.y", "normal", PreferenceVerdict::Allowed)]
    #[case::quiet_hours_postpone(json!({"quiet_hours": {"start": "00:00", "end": "23:59"}}), "email", "x.y", "normal", PreferenceVerdict::Postponed(utc("2027-03-10T23:59:00Z")))]
    fn the_verdict_for_one_channel(
        #[case] document: Value,
        #[case] channel_name: &str,
        #[case] event_type: &str,
        #[case] priority: &str,
        #[case] expected: PreferenceVerdict,
    ) {
        assert_eq!(
            prefs(document).decide(
                channel(channel_name),
                &event(event_type),
                Priority::parse(priority).unwrap(),
                noon(),
                zone("UTC"),
            ),
            expected
        );
    }

    #[rstest]
    // A window within one day, in Paris (UTC+1 in winter).
    #[case::inside_a_day_window(
        "12:00",
        "14:00",
        "2027-01-15T11:30:00Z",
        "Europe/Paris",
        Some("2027-01-15T13:00:00Z")
    )]
    #[case::start_is_inside(
        "12:00",
        "14:00",
        "2027-01-15T11:00:00Z",
        "Europe/Paris",
        Some("2027-01-15T13:00:00Z")
    )]
    #[case::end_is_outside("12:00", "14:00", "2027-01-15T13:00:00Z", "Europe/Paris", None)]
    #[case::before_a_day_window("12:00", "14:00", "2027-01-15T09:00:00Z", "Europe/Paris", None)]
    // Wrapping midnight: before midnight ends tomorrow, after midnight ends today.
    #[case::wrapping_evening(
        "22:00",
        "08:00",
        "2027-01-15T22:30:00Z",
        "Europe/Paris",
        Some("2027-01-16T07:00:00Z")
    )]
    #[case::wrapping_night(
        "22:00",
        "08:00",
        "2027-01-16T02:00:00Z",
        "Europe/Paris",
        Some("2027-01-16T07:00:00Z")
    )]
    #[case::wrapping_daytime("22:00", "08:00", "2027-01-16T12:00:00Z", "Europe/Paris", None)]
    // The zone is the recipient's: 22:30 UTC is 17:30 in Montréal, outside.
    #[case::the_recipients_zone("22:00", "08:00", "2027-01-15T22:30:00Z", "America/Montreal", None)]
    // Spring forward in Montréal (2027-03-14, 02:00 → 03:00): the night is an hour shorter.
    #[case::across_spring_forward(
        "22:00",
        "08:00",
        "2027-03-14T03:30:00Z",
        "America/Montreal",
        Some("2027-03-14T12:00:00Z")
    )]
    // An end inside the gap moves forward to the first instant after it (03:00 EDT).
    #[case::end_in_the_gap(
        "22:00",
        "02:30",
        "2027-03-14T04:00:00Z",
        "America/Montreal",
        Some("2027-03-14T07:00:00Z")
    )]
    // Fall back in Paris (2027-10-31, 03:00 → 02:00): the night is an hour longer.
    #[case::across_fall_back(
        "22:00",
        "08:00",
        "2027-10-30T21:00:00Z",
        "Europe/Paris",
        Some("2027-10-31T07:00:00Z")
    )]
    // An ambiguous end (02:30 twice) takes the first of its instants.
    #[case::ambiguous_end(
        "22:00",
        "02:30",
        "2027-10-30T23:00:00Z",
        "Europe/Paris",
        Some("2027-10-31T00:30:00Z")
    )]
    // In the repeated hour, after the first 02:30: the quiet hours are over.
    #[case::repeated_hour_after_the_first_end(
        "22:00",
        "02:45",
        "2027-10-31T01:15:00Z",
        "Europe/Paris",
        None
    )]
    fn quiet_hours_end_in_the_recipients_zone_dst_resolved(
        #[case] start: &str,
        #[case] end: &str,
        #[case] at: &str,
        #[case] zone_name: &str,
        #[case] expected: Option<&str>,
    ) {
        let quiet = QuietHours::parse(start, end).unwrap();
        assert_eq!(quiet.end_after(utc(at), zone(zone_name)), expected.map(utc));
    }

    #[test]
    fn an_opt_out_sets_one_entry_and_is_idempotent() {
        let mut preferences =
            prefs(json!({"event_types": {"planning.modified": {"telegram": true}}}));
        let modified = event("planning.modified");
        preferences.opt_out(&modified, channel("email")).unwrap();
        let once = preferences.clone();
        preferences.opt_out(&modified, channel("email")).unwrap();
        assert_eq!(preferences, once);
        assert_eq!(
            preferences.to_json()["event_types"],
            json!({"planning.modified": {"email": false, "telegram": true}})
        );
        assert!(preferences.opt_out(&modified, ChannelName::IN_APP).is_err());
    }

    #[rstest]
    #[case(SkipReason::NotInRule("sync.*".into()), "not_in_rule: sync.*")]
    #[case(
        SkipReason::Unreachable(Unreachable::NoEmail),
        "unreachable: recipient has no email address"
    )]
    #[case(SkipReason::NoConsent(ChannelName::parse("sms").unwrap()), "no_consent: sms")]
    #[case(SkipReason::OptedOut("channels.email".into()), "opted_out: channels.email")]
    #[case(SkipReason::ConsentRevoked, "consent_revoked")]
    #[case(SkipReason::Coalesced("no net change".into()), "coalesced: no net change")]
    fn a_reason_is_its_code_and_its_detail(#[case] reason: SkipReason, #[case] expected: &str) {
        assert_eq!(reason.to_string(), expected);
    }
}
