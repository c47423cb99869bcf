//! Sample contexts for `TeraTemplateRenderer::check_all`, shaped like the real ones: planning
//! contexts come from the domain's own rules (`planning_notices`), and the dispatch-time keys
//! (`notification`, `recipient`, `locale`) are added the way the dispatcher adds them.
//!
//! The data is chosen to be awkward: a venue with `<`, `>` and `&`, a name with an apostrophe,
//! a contact without phone or email, a call to action with `&` in its query, so that a template
//! that forgets to escape, or that assumes an optional value is there, fails the check.

use std::collections::HashMap;

use chrono::{TimeZone as _, Utc};
use clairon_application::ports::InAppContent;
use clairon_domain::rules::planning_notices;
use clairon_domain::{
    Contact, DisplayName, Locale, Location, PlanningChange, PlanningEvent, PlanningEventId,
    PlanningEventKind, PlanningId, PlanningSnapshot, Recipient, RecipientId, Schedule, TimeZone,
};
use serde_json::{json, Value};

/// One context to render a family with.
pub(super) struct Sample {
    /// The context of the in-app parts (for planning families: without `notification`).
    pub(super) in_app: Value,
    /// The event type, for the `notification` object added at dispatch.
    event_type: String,
    /// Whether the notification carries a call to action.
    with_action: bool,
}

impl Sample {
    /// The context of the email and Telegram parts: the in-app context plus `notification`
    /// (titled and worded as the in-app render was, as the real notification is), `recipient`
    /// and `locale`.
    pub(super) fn at_dispatch(&self, in_app: &InAppContent) -> Value {
        let mut context = self.in_app.clone();
        if let Value::Object(map) = &mut context {
            let (url, label) = if self.with_action {
                (
                    json!("https://clairon.example/plannings/pl-1?tab=artists&view=\"full\""),
                    json!("Ouvrir <le> planning"),
                )
            } else {
                (Value::Null, Value::Null)
            };
            map.insert(
                "notification".to_owned(),
                json!({
                    "id": "01890a5d-ac96-774b-b9aa-000000000001",
                    "kind": "info",
                    "title": in_app.title,
                    "body": in_app.body,
                    "action_url": url,
                    "action_label": label,
                    "event_type": self.event_type,
                    "created_at": "2027-02-09T01:29:00+00:00",
                }),
            );
            // As the dispatcher adds it to emails: a link, or null (`critical`, tests).
            map.insert(
                "unsubscribe_url".to_owned(),
                if self.with_action {
                    json!("https://clairon.example/unsubscribe/YXJ0aXN0LTEKY3VzdG9t.c2ln")
                } else {
                    Value::Null
                },
            );
        }
        context
    }
}

/// Samples for `event_type` in `locale`: planning families (`planning.assigned`, ...) get
/// every audience the rules produce, with a full contact and a call to action, then with a bare
/// contact and none; any other family gets a free-form notification, with and without action.
pub(super) fn contexts(event_type: &str, locale: Locale) -> Vec<Sample> {
    let kind = event_type
        .strip_prefix("planning.")
        .and_then(|k| PlanningEventKind::parse(k).ok());
    match kind {
        Some(kind) => [true, false]
            .into_iter()
            .flat_map(|full| {
                let event = planning_event(kind, full);
                planning_notices(&event, &directory(locale), locale)
                    .into_iter()
                    .map(move |notice| Sample {
                        in_app: Value::Object(notice.context),
                        event_type: event_type.to_owned(),
                        with_action: full,
                    })
            })
            .collect(),
        None => [true, false]
            .into_iter()
            .map(|with_action| Sample {
                in_app: json!({
                    "notification": {
                        "id": "01890a5d-ac96-774b-b9aa-000000000002",
                        "kind": "info",
                        "title": "Répétition <déplacée> & avancée",
                        "body": "La répétition a lieu salle B.\nApportez vos partitions & votre pupitre.",
                        "action_url": if with_action { json!("https://clairon.example/n/2?a=1&b=2") } else { Value::Null },
                        "action_label": Value::Null,
                        "event_type": event_type,
                        "created_at": "2027-02-09T01:29:00+00:00",
                    },
                    "recipient": { "id": "artist-1", "name": "Liam O'Brien" },
                    "locale": locale.as_str(),
                    // Domain events (`POST /api/v1/events`): their data, full with a call to
                    // action and empty without, so a template must not assume a key is there.
                    "event": { "id": "ev-42", "type": event_type, "occurred_at": "2027-02-09T01:29:00+00:00" },
                    "data": if with_action { event_data(event_type) } else { json!({}) },
                }),
                event_type: event_type.to_owned(),
                with_action,
            })
            .collect(),
    }
}

/// The `data` of the domain events Clairon ships templates for, shaped as documented in
/// `templates/README.md`, with awkward values; any other type gets a little of everything.
fn event_data(event_type: &str) -> Value {
    let project = json!({ "id": "7", "name": "Carmen <version> & \"concert\"" });
    match event_type {
        "project.created" => json!({ "project": project }),
        "project.role.assigned" => json!({ "project": project, "role": "Soprano & chœur" }),
        "project.role.application.created" => json!({
            "project": project,
            "role": "Soprano & chœur",
            "applicant": { "id": "artist-2", "name": "Liam O'Brien" },
        }),
        "job.failed" => json!({
            "job": "retention",
            "run_id": "01890a5d-ac96-774b-b9aa-000000000003",
            "message": "database <unavailable> & retrying",
            "error_details": "connection refused\n  at pool.get()",
        }),
        // The digest job's data (`clairon_application::digests`), a title to escape and an
        // item without link.
        "digest" => json!({
            "count": 2,
            "window_end": "mardi 12 janvier 2027 à 08:00",
            "items": [
                { "title": "Répétition <déplacée> & avancée", "at": "lundi 11 janvier 2027 à 09:30", "link": "https://clairon.example/n/2?a=1&b=2" },
                { "title": "Nouveau projet \"Carmen\"", "at": "lundi 11 janvier 2027 à 17:05", "link": null },
            ],
        }),
        // The dead-letter alert's data (`clairon_application::dead_letters`): an error to
        // escape and a sample without one.
        "deliveries.dead_letters" => json!({
            "count": 11,
            "threshold": 10,
            "window_minutes": 60,
            "window_start": "2027-02-09T00:29:00+00:00",
            "window_end": "2027-02-09T01:29:00+00:00",
            "samples": [
                { "delivery_id": "01890a5d-ac96-774b-b9aa-000000000004", "channel": "email", "error": "451 <try> & later", "dead_at": "2027-02-09T01:28:00+00:00" },
                { "delivery_id": "01890a5d-ac96-774b-b9aa-000000000005", "channel": "telegram", "error": null, "dead_at": "2027-02-09T01:27:00+00:00" },
            ],
        }),
        _ => json!({ "project": project, "role": "Soprano", "job": "sync" }),
    }
}

const SAMPLE_DATA: &str = "the built-in sample data is valid";

fn directory(locale: Locale) -> HashMap<RecipientId, Recipient> {
    [
        ("artist-1", "Zoé Tremblay", "America/Montreal"),
        ("artist-2", "Liam O'Brien", "Europe/Paris"),
        ("coord-1", "Céline Lévesque", "America/Montreal"),
    ]
    .into_iter()
    .map(|(id, name, zone)| Recipient {
        id: RecipientId::parse(id).expect(SAMPLE_DATA),
        name: DisplayName::parse(name).expect(SAMPLE_DATA),
        email: None,
        telegram_chat_id: None,
        phone: None,
        locale: Some(locale),
        timezone: Some(TimeZone::parse(zone).expect(SAMPLE_DATA)),
        telegram_unreachable: None,
        webhook_url: None,
        webhook_secret: None,
        webhook_disabled: None,
        slack_webhook_url: None,
        slack_unreachable: None,
    })
    .map(|r| (r.id.clone(), r))
    .collect()
}

fn planning_event(kind: PlanningEventKind, full_contact: bool) -> PlanningEvent {
    let starts_at = Utc.with_ymd_and_hms(2027, 3, 17, 0, 15, 0).unwrap();
    let ends_at = Utc.with_ymd_and_hms(2027, 3, 17, 2, 15, 0).unwrap();
    let location =
        Location::new("Salle <Jazz> & Co", "12 rue d'Oran, 75018 Paris").expect(SAMPLE_DATA);
    let contact = if full_contact {
        Contact::new(
            "Samir Nguyễn",
            Some("+15145550030"),
            Some("samir@example.org"),
        )
    } else {
        Contact::new("Samir Nguyễn", None, None)
    }
    .expect(SAMPLE_DATA);
    let changes = if kind == PlanningEventKind::Modified {
        let earlier = Utc.with_ymd_and_hms(2027, 3, 16, 0, 15, 0).unwrap();
        vec![
            PlanningChange::Title {
                from: "Répétition — Carmen".to_owned(),
                to: "Représentation — Carmen".to_owned(),
            },
            PlanningChange::Location {
                from: Location::new("Théâtre Outremont", "1248 Av. Bernard O, Montréal")
                    .expect(SAMPLE_DATA),
                to: location.clone(),
            },
            PlanningChange::StartsAt {
                from: earlier,
                to: starts_at,
            },
            PlanningChange::EndsAt {
                from: earlier + chrono::Duration::hours(2),
                to: ends_at,
            },
            PlanningChange::Contact {
                from: Contact::new("Céline <Lévesque>", None, Some("celine@example.org"))
                    .expect(SAMPLE_DATA),
                to: contact.clone(),
            },
        ]
    } else {
        Vec::new()
    };
    let planning = PlanningSnapshot::new(
        PlanningId::parse("pl-1").expect(SAMPLE_DATA),
        "Représentation — Carmen",
        location,
        Schedule::new(
            starts_at,
            ends_at,
            TimeZone::parse("America/Montreal").expect(SAMPLE_DATA),
        )
        .expect(SAMPLE_DATA),
        contact,
    )
    .expect(SAMPLE_DATA);
    let ids = |raw: &[&str]| -> Vec<RecipientId> {
        raw.iter()
            .map(|r| RecipientId::parse(r).expect(SAMPLE_DATA))
            .collect()
    };
    PlanningEvent::new(
        PlanningEventId::parse("evt-sample").expect(SAMPLE_DATA),
        kind,
        Utc.with_ymd_and_hms(2027, 2, 9, 1, 29, 0).unwrap(),
        planning,
        ids(&["artist-1", "artist-2"]),
        ids(&["coord-1"]),
        changes,
    )
    .expect(SAMPLE_DATA)
}
