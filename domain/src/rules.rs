//! Who is told what when a planning event happens.
//!
//! - `assigned`: every artist gets a personal notice (what, where, when in their own zone and
//!   language, whom to call); every coordinator gets one summary naming the assigned artists.
//! - `modified`: artists and coordinators get what changed, old → new.
//! - `cancelled`: artists and coordinators are told.
//! - `reminder` (J-1): artists get a reminder with place, times and contact.
//!
//! Priorities ([`planning_priority`]): `modified` and `cancelled` are `high`, and a `cancelled`
//! less than 48 hours before the start is `critical` (it overrides preferences and quiet hours:
//! someone about to travel to a cancelled show must hear of it); the others are `normal`.
//!
//! Someone named both as artist and coordinator gets the artist's notice only: one event, one
//! notification per person. The notice carries its template context, already localised, so the
//! inbox line, the email and the Telegram message all say the same thing.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::formatting::{format_date, format_datetime, format_range, format_time};
use crate::notification::{EventType, Metadata, Notification, NotificationKind, Priority};
use crate::planning::{Contact, Location, PlanningChange, PlanningEvent, PlanningEventKind};
use crate::recipient::{Locale, Recipient, RecipientId, TimeZone};

/// The role in which a recipient hears about a planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// Performs in the planning.
    Artist,
    /// Organises the planning.
    Coordinator,
}

/// One notification the rules call for, before it is written down.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanningNotice {
    /// Who is told.
    pub recipient_id: RecipientId,
    /// In which role.
    pub audience: Audience,
    /// `planning.assigned`, `planning.modified`, ...: also the template family.
    pub event_type: EventType,
    /// How an inbox shows it.
    pub kind: NotificationKind,
    /// The language it is written in.
    pub locale: Locale,
    /// Template context, localised for the recipient; stored as the notification's metadata.
    pub context: Metadata,
}

/// Decides who is told about `event`, and with what.
///
/// `directory` must hold every recipient the event names (the caller checks that first and
/// refuses the event otherwise); a name missing from it is skipped. Times are written in each
/// recipient's zone (or the planning's when they have none) and language (or `default_locale`).
pub fn planning_notices(
    event: &PlanningEvent,
    directory: &HashMap<RecipientId, Recipient>,
    default_locale: Locale,
) -> Vec<PlanningNotice> {
    let artists: Vec<&RecipientId> = event.artist_ids.iter().collect();
    let coordinators: Vec<&RecipientId> = event
        .coordinator_ids
        .iter()
        .filter(|id| !event.artist_ids.contains(id))
        .collect();
    let (kind, told): (NotificationKind, Vec<(&RecipientId, Audience)>) = match event.kind {
        PlanningEventKind::Assigned | PlanningEventKind::Reminder if artists.is_empty() => {
            (NotificationKind::Info, Vec::new())
        }
        PlanningEventKind::Assigned => {
            (NotificationKind::Info, with_roles(&artists, &coordinators))
        }
        PlanningEventKind::Modified => (
            NotificationKind::Warning,
            with_roles(&artists, &coordinators),
        ),
        PlanningEventKind::Cancelled => (
            NotificationKind::Warning,
            with_roles(&artists, &coordinators),
        ),
        PlanningEventKind::Reminder => (NotificationKind::Info, with_roles(&artists, &[])),
    };
    told.into_iter()
        .filter_map(|(id, audience)| {
            let recipient = directory.get(id)?;
            let locale = recipient.locale_or(default_locale);
            let zone = recipient
                .timezone
                .unwrap_or(event.planning.schedule.timezone);
            Some(PlanningNotice {
                recipient_id: id.clone(),
                audience,
                event_type: event.kind.event_type(),
                kind,
                locale,
                context: context(event, recipient, audience, locale, zone, directory),
            })
        })
        .collect()
}

/// How close to its start a cancellation becomes `critical`: 48 hours.
pub const CRITICAL_CANCELLATION_HOURS: i64 = 48;

/// The priority of the notices of `event`: `critical` for a `cancelled` that occurred less than
/// [`CRITICAL_CANCELLATION_HOURS`] before the planning's start (measured from the event's
/// `occurred_at`, so a replay decides alike), `high` for other cancellations and for
/// modifications, `normal` for assignments and reminders.
pub fn planning_priority(event: &PlanningEvent) -> Priority {
    match event.kind {
        PlanningEventKind::Cancelled
            if event.planning.schedule.starts_at - event.occurred_at
                < chrono::TimeDelta::hours(CRITICAL_CANCELLATION_HOURS) =>
        {
            Priority::Critical
        }
        PlanningEventKind::Cancelled | PlanningEventKind::Modified => Priority::High,
        PlanningEventKind::Assigned | PlanningEventKind::Reminder => Priority::Normal,
    }
}

fn with_roles<'a>(
    artists: &[&'a RecipientId],
    coordinators: &[&'a RecipientId],
) -> Vec<(&'a RecipientId, Audience)> {
    artists
        .iter()
        .map(|id| (*id, Audience::Artist))
        .chain(coordinators.iter().map(|id| (*id, Audience::Coordinator)))
        .collect()
}

fn context(
    event: &PlanningEvent,
    recipient: &Recipient,
    audience: Audience,
    locale: Locale,
    zone: TimeZone,
    directory: &HashMap<RecipientId, Recipient>,
) -> Metadata {
    let planning = &event.planning;
    let schedule = planning.schedule;
    let artists: Vec<Value> = event
        .artist_ids
        .iter()
        .map(|id| {
            let name = directory.get(id).map_or(id.as_str(), |r| r.name.as_str());
            json!({ "id": id.as_str(), "name": name })
        })
        .collect();
    let changes: Vec<Value> = event
        .changes
        .iter()
        .map(|change| describe_change(change, zone, locale))
        .collect();
    let value = json!({
        "audience": audience,
        "locale": locale.as_str(),
        "timezone": zone.name(),
        "recipient": { "id": recipient.id.as_str(), "name": recipient.name.as_str() },
        "event": {
            "id": event.event_id.as_str(),
            "kind": event.kind,
            "occurred_at": event.occurred_at.to_rfc3339(),
        },
        "planning": {
            "id": planning.id.as_str(),
            "title": planning.title,
            "location": location_json(&planning.location),
            "starts_at": schedule.starts_at.to_rfc3339(),
            "ends_at": schedule.ends_at.to_rfc3339(),
            "timezone": schedule.timezone.name(),
            "date": format_date(schedule.starts_at, zone, locale),
            "starts": format_datetime(schedule.starts_at, zone, locale),
            "start_time": format_time(schedule.starts_at, zone, locale),
            "end_time": format_time(schedule.ends_at, zone, locale),
            "when": format_range(schedule.starts_at, schedule.ends_at, zone, locale),
            "contact": contact_json(&planning.contact),
        },
        "artists": artists,
        "changes": changes,
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! of an object literal is an object"),
    }
}

fn location_json(location: &Location) -> Value {
    json!({ "name": location.name, "address": location.address })
}

fn contact_json(contact: &Contact) -> Value {
    json!({
        "name": contact.name,
        "phone": contact.phone.as_ref().map(|p| p.as_str()),
        "email": contact.email.as_ref().map(|e| e.as_str()),
    })
}

fn contact_line(contact: &Contact) -> String {
    let details: Vec<&str> = [
        contact.phone.as_ref().map(|p| p.as_str()),
        contact.email.as_ref().map(|e| e.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if details.is_empty() {
        contact.name.clone()
    } else {
        format!("{} ({})", contact.name, details.join(", "))
    }
}

/// A change as `{field, from, to}` strings the recipient can read.
fn describe_change(change: &PlanningChange, zone: TimeZone, locale: Locale) -> Value {
    let (from, to) = match change {
        PlanningChange::Title { from, to } => (from.clone(), to.clone()),
        PlanningChange::Location { from, to } => (
            format!("{}, {}", from.name, from.address),
            format!("{}, {}", to.name, to.address),
        ),
        PlanningChange::StartsAt { from, to } | PlanningChange::EndsAt { from, to } => (
            format_datetime(*from, zone, locale),
            format_datetime(*to, zone, locale),
        ),
        PlanningChange::Contact { from, to } => (contact_line(from), contact_line(to)),
    };
    json!({ "field": change.field(), "from": from, "to": to })
}

/// The other recipients a notification names: for a planning notification, the artists its
/// context lists (`artists[].id`, written by [`planning_notices`] — a coordinator's summary and
/// every artist's notice name all the planning's artists), its own recipient left out. Other
/// notifications name nobody Clairon knows of: their metadata is the producer's, opaque.
///
/// Recorded when the notification is written, so that erasing a recipient (GDPR article 17)
/// finds exactly the notifications of others that name them ([`redact_mention`]).
pub fn mentioned_recipients(notification: &Notification) -> Vec<RecipientId> {
    if !notification.event_type.is_planning() {
        return Vec::new();
    }
    let mut named: Vec<RecipientId> = Vec::new();
    let listed = notification
        .metadata
        .get("artists")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|artist| artist.get("id").and_then(Value::as_str))
        .filter_map(|id| RecipientId::parse(id).ok());
    for id in listed {
        if id != notification.recipient_id && !named.contains(&id) {
            named.push(id);
        }
    }
    named
}

/// The neutral words that stand for an erased person in what others were told, in `locale`.
pub fn erased_label(locale: Locale) -> &'static str {
    match locale {
        Locale::Fr => "[personne effacée]",
        Locale::En => "[erased person]",
    }
}

/// A planning notification's context with `erased` taken out: every artist entry of theirs
/// becomes `{"name": label}` — no id, no name — so a summary rendered from it still lists as
/// many artists ("[personne effacée] et Liam O'Brien sont affecté·e·s") but no longer says who.
/// Everything else is kept.
pub fn redact_mention(metadata: &Metadata, erased: &RecipientId, label: &str) -> Metadata {
    let mut redacted = metadata.clone();
    if let Some(Value::Array(artists)) = redacted.get_mut("artists") {
        for artist in artists.iter_mut() {
            if artist.get("id").and_then(Value::as_str) == Some(erased.as_str()) {
                *artist = json!({ "name": label });
            }
        }
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::{PlanningEventId, PlanningId, PlanningSnapshot, Schedule};
    use crate::recipient::{DisplayName, EmailAddress};
    use chrono::{TimeZone as _, Utc};

    fn person(id: &str, name: &str, locale: Locale, zone: &str) -> Recipient {
        Recipient {
            id: RecipientId::parse(id).unwrap(),
            name: DisplayName::parse(name).unwrap(),
            email: Some(EmailAddress::parse(&format!("{id}@example.org")).unwrap()),
            telegram_chat_id: None,
            phone: None,
            locale: Some(locale),
            timezone: Some(TimeZone::parse(zone).unwrap()),
            telegram_unreachable: None,
            webhook_url: None,
            webhook_secret: None,
            webhook_disabled: None,
            slack_webhook_url: None,
            slack_unreachable: None,
        }
    }

    fn directory() -> HashMap<RecipientId, Recipient> {
        [
            person("artist-1", "Zoé Tremblay", Locale::Fr, "America/Montreal"),
            person("artist-2", "Liam O'Brien", Locale::En, "Europe/Paris"),
            person("coord-1", "Céline Lévesque", Locale::Fr, "America/Montreal"),
        ]
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect()
    }

    fn ids(raw: &[&str]) -> Vec<RecipientId> {
        raw.iter().map(|r| RecipientId::parse(r).unwrap()).collect()
    }

    fn event(kind: PlanningEventKind, changes: Vec<PlanningChange>) -> PlanningEvent {
        let montreal = TimeZone::parse("America/Montreal").unwrap();
        let planning = PlanningSnapshot::new(
            PlanningId::parse("pl-1").unwrap(),
            "Représentation — Carmen",
            Location::new("Théâtre Outremont", "1248 Av. Bernard O, Montréal").unwrap(),
            Schedule::new(
                Utc.with_ymd_and_hms(2027, 3, 17, 0, 15, 0).unwrap(),
                Utc.with_ymd_and_hms(2027, 3, 17, 2, 15, 0).unwrap(),
                montreal,
            )
            .unwrap(),
            Contact::new(
                "Samir Nguyễn",
                Some("+15145550030"),
                Some("samir@example.org"),
            )
            .unwrap(),
        )
        .unwrap();
        PlanningEvent::new(
            PlanningEventId::parse("evt-1").unwrap(),
            kind,
            Utc.with_ymd_and_hms(2027, 2, 9, 1, 29, 0).unwrap(),
            planning,
            ids(&["artist-1", "artist-2"]),
            ids(&["coord-1"]),
            changes,
        )
        .unwrap()
    }

    fn audiences(notices: &[PlanningNotice]) -> Vec<(&str, Audience)> {
        notices
            .iter()
            .map(|n| (n.recipient_id.as_str(), n.audience))
            .collect()
    }

    #[test]
    fn an_assignment_tells_each_artist_and_sends_coordinators_a_summary() {
        let notices = planning_notices(
            &event(PlanningEventKind::Assigned, vec![]),
            &directory(),
            Locale::Fr,
        );
        assert_eq!(
            audiences(&notices),
            vec![
                ("artist-1", Audience::Artist),
                ("artist-2", Audience::Artist),
                ("coord-1", Audience::Coordinator)
            ]
        );
        let summary = &notices[2].context;
        let named: Vec<&str> = summary["artists"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(named, vec!["Zoé Tremblay", "Liam O'Brien"]);
        assert_eq!(notices[0].event_type.as_str(), "planning.assigned");
    }

    #[test]
    fn each_artist_reads_the_time_in_their_own_zone_and_language() {
        let notices = planning_notices(
            &event(PlanningEventKind::Assigned, vec![]),
            &directory(),
            Locale::Fr,
        );
        assert_eq!(
            notices[0].context["planning"]["starts"],
            "mardi 16 mars 2027, 20 h 15"
        );
        assert_eq!(notices[1].locale, Locale::En);
        // The same instant is 01:15 on the 17th in Paris.
        assert_eq!(
            notices[1].context["planning"]["starts"],
            "Wednesday, March 17, 2027, 1:15 AM"
        );
        assert_eq!(
            notices[0].context["planning"]["contact"]["phone"],
            "+15145550030"
        );
    }

    #[test]
    fn a_modification_tells_everyone_what_changed_from_and_to() {
        let change = PlanningChange::StartsAt {
            from: Utc.with_ymd_and_hms(2027, 3, 16, 0, 15, 0).unwrap(),
            to: Utc.with_ymd_and_hms(2027, 3, 17, 0, 15, 0).unwrap(),
        };
        let notices = planning_notices(
            &event(PlanningEventKind::Modified, vec![change]),
            &directory(),
            Locale::Fr,
        );
        assert_eq!(notices.len(), 3);
        let described = &notices[0].context["changes"][0];
        assert_eq!(described["field"], "starts_at");
        assert_eq!(described["from"], "lundi 15 mars 2027, 20 h 15");
        assert_eq!(described["to"], "mardi 16 mars 2027, 20 h 15");
        assert_eq!(notices[2].kind, NotificationKind::Warning);
    }

    #[test]
    fn a_cancellation_tells_artists_and_coordinators() {
        let notices = planning_notices(
            &event(PlanningEventKind::Cancelled, vec![]),
            &directory(),
            Locale::Fr,
        );
        assert_eq!(audiences(&notices).len(), 3);
        assert!(notices
            .iter()
            .all(|n| n.event_type.as_str() == "planning.cancelled"));
    }

    #[test]
    fn a_reminder_goes_to_artists_only() {
        let notices = planning_notices(
            &event(PlanningEventKind::Reminder, vec![]),
            &directory(),
            Locale::Fr,
        );
        assert_eq!(
            audiences(&notices),
            vec![
                ("artist-1", Audience::Artist),
                ("artist-2", Audience::Artist)
            ]
        );
    }

    #[test]
    fn someone_named_as_artist_and_coordinator_is_told_once_as_an_artist() {
        let mut assigned = event(PlanningEventKind::Assigned, vec![]);
        assigned.coordinator_ids = ids(&["coord-1", "artist-1"]);
        let notices = planning_notices(&assigned, &directory(), Locale::Fr);
        assert_eq!(
            audiences(&notices),
            vec![
                ("artist-1", Audience::Artist),
                ("artist-2", Audience::Artist),
                ("coord-1", Audience::Coordinator)
            ]
        );
    }

    fn as_notification(notice: &PlanningNotice) -> Notification {
        Notification {
            id: crate::notification::NotificationId::parse("n-1").unwrap(),
            recipient_id: notice.recipient_id.clone(),
            kind: notice.kind,
            priority: crate::notification::Priority::Normal,
            title: crate::notification::Title::parse("t").unwrap(),
            body: crate::notification::Body::parse("b").unwrap(),
            action_url: None,
            action_label: None,
            metadata: notice.context.clone(),
            event_type: notice.event_type.clone(),
            source_event_id: None,
            created_at: Utc.with_ymd_and_hms(2027, 2, 9, 1, 29, 0).unwrap(),
            read_at: None,
        }
    }

    #[test]
    fn a_summary_mentions_every_artist_and_an_artists_notice_the_other_artists() {
        let notices = planning_notices(
            &event(PlanningEventKind::Assigned, vec![]),
            &directory(),
            Locale::Fr,
        );
        assert_eq!(
            mentioned_recipients(&as_notification(&notices[2])),
            ids(&["artist-1", "artist-2"]),
            "the coordinator's summary names both artists"
        );
        assert_eq!(
            mentioned_recipients(&as_notification(&notices[0])),
            ids(&["artist-2"]),
            "an artist's notice names the other artist, not themselves"
        );
    }

    #[test]
    fn a_custom_notification_mentions_nobody_whatever_its_metadata_says() {
        let notices = planning_notices(
            &event(PlanningEventKind::Assigned, vec![]),
            &directory(),
            Locale::Fr,
        );
        let mut custom = as_notification(&notices[2]);
        custom.event_type = EventType::parse(EventType::CUSTOM).unwrap();
        assert_eq!(
            mentioned_recipients(&custom),
            Vec::<RecipientId>::new(),
            "the producer's metadata is opaque"
        );
    }

    #[test]
    fn redacting_a_mention_replaces_the_erased_artist_by_the_label_and_keeps_the_others() {
        let notices = planning_notices(
            &event(PlanningEventKind::Assigned, vec![]),
            &directory(),
            Locale::Fr,
        );
        let erased = RecipientId::parse("artist-1").unwrap();
        let label = erased_label(Locale::Fr);
        let redacted = redact_mention(&notices[2].context, &erased, label);
        assert_eq!(
            redacted["artists"],
            json!([{ "name": "[personne effacée]" }, { "id": "artist-2", "name": "Liam O'Brien" }]),
            "the erased artist's id and name are gone, the other artist stays"
        );
        let text = Value::Object(redacted).to_string();
        assert!(
            !text.contains("Zoé Tremblay") && !text.contains("artist-1"),
            "nothing names them any more: {text}"
        );
        assert_eq!(erased_label(Locale::En), "[erased person]");
    }

    #[test]
    fn a_recipient_without_locale_or_zone_gets_the_default_language_and_the_plannings_zone() {
        let mut dir = directory();
        let artist = dir
            .get_mut(&RecipientId::parse("artist-2").unwrap())
            .unwrap();
        artist.locale = None;
        artist.timezone = None;
        let notices = planning_notices(
            &event(PlanningEventKind::Reminder, vec![]),
            &dir,
            Locale::Fr,
        );
        assert_eq!(notices[1].locale, Locale::Fr);
        assert_eq!(notices[1].context["timezone"], "America/Montreal");
    }

    #[rstest::rstest]
    #[case::cancelled_a_month_ahead(
        PlanningEventKind::Cancelled,
        "2027-02-09T01:29:00Z",
        Priority::High
    )]
    #[case::cancelled_just_over_48h_ahead(
        PlanningEventKind::Cancelled,
        "2027-03-15T00:14:00Z",
        Priority::High
    )]
    #[case::cancelled_exactly_48h_ahead(
        PlanningEventKind::Cancelled,
        "2027-03-15T00:15:00Z",
        Priority::High
    )]
    #[case::cancelled_47h_ahead(
        PlanningEventKind::Cancelled,
        "2027-03-15T01:15:00Z",
        Priority::Critical
    )]
    #[case::cancelled_after_the_start(
        PlanningEventKind::Cancelled,
        "2027-03-17T01:00:00Z",
        Priority::Critical
    )]
    #[case::modified_the_day_before(
        PlanningEventKind::Modified,
        "2027-03-16T00:15:00Z",
        Priority::High
    )]
    #[case::assigned_the_day_before(
        PlanningEventKind::Assigned,
        "2027-03-16T00:15:00Z",
        Priority::Normal
    )]
    fn a_cancellation_less_than_48_hours_before_the_start_is_critical(
        #[case] kind: PlanningEventKind,
        #[case] occurred_at: &str,
        #[case] expected: Priority,
    ) {
        let changes = match kind {
            PlanningEventKind::Modified => vec![PlanningChange::Title {
                from: "a".into(),
                to: "b".into(),
            }],
            _ => vec![],
        };
        let mut told = event(kind, changes);
        told.occurred_at = chrono::DateTime::parse_from_rfc3339(occurred_at)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(planning_priority(&told), expected);
    }
}
