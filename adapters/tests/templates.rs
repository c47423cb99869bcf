//! The real templates of `templates/`, rendered by `TeraTemplateRenderer` against contexts built by
//! the domain's own rules: what each recipient reads on each channel, in each language, and that
//! nothing a venue or a title contains can break an email or a Telegram message.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{TimeZone as _, Utc};
use clairon_adapters::templates::{
    check_set, Origin, TemplateLoadError, TemplateProblem, TemplateSet, TeraTemplateRenderer,
};
use clairon_application::ports::{TemplateError, TemplateRenderer};
use clairon_domain::rules::{planning_notices, Audience, PlanningNotice};
use clairon_domain::{
    Contact, DisplayName, EventType, Locale, Location, PlanningChange, PlanningEvent,
    PlanningEventId, PlanningEventKind, PlanningId, PlanningSnapshot, Recipient, RecipientId,
    Schedule, TimeZone,
};
use regex::Regex;
use rstest::rstest;
use serde_json::{json, Value};

const VENUE: &str = "Théâtre Outremont";
const ADDRESS: &str = "1248 Av. Bernard O, Montréal";
const TRICKY_VENUE: &str = "Salle <Jazz> & Co";
const TRICKY_VENUE_ESCAPED: &str = "Salle &lt;Jazz&gt; &amp; Co";
const CONTACT: &str = "Samir Nguyễn";
const PHONE: &str = "+15145550030";
const EMAIL: &str = "samir@example.org";
const ACTION_URL: &str = "https://clairon.example/plannings/pl-1";

fn templates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates")
}

/// The real templates, loaded once for the whole test binary.
fn renderer() -> &'static TeraTemplateRenderer {
    static RENDERER: OnceLock<TeraTemplateRenderer> = OnceLock::new();
    RENDERER.get_or_init(|| {
        TeraTemplateRenderer::from_dir(&templates_dir(), Locale::Fr)
            .unwrap_or_else(|e| panic!("the real templates load: {e}"))
    })
}

fn id(raw: &str) -> RecipientId {
    RecipientId::parse(raw).unwrap()
}

/// Two artists and a coordinator, all reading `locale` in Montréal time.
fn directory(locale: Locale) -> HashMap<RecipientId, Recipient> {
    [
        ("artist-1", "Zoé Tremblay"),
        ("artist-2", "Noah Martin"),
        ("coord-1", "Céline Lévesque"),
    ]
    .into_iter()
    .map(|(raw, name)| Recipient {
        id: id(raw),
        name: DisplayName::parse(name).unwrap(),
        email: None,
        telegram_chat_id: None,
        phone: None,
        locale: Some(locale),
        timezone: Some(TimeZone::parse("America/Montreal").unwrap()),
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

/// A planning on Tuesday 16 March 2027, 20:15–22:15 in Montréal, at `venue`; a modification
/// moves its start from the day before.
fn planning_event(kind: PlanningEventKind, venue: &str) -> PlanningEvent {
    let starts_at = Utc.with_ymd_and_hms(2027, 3, 17, 0, 15, 0).unwrap();
    let changes = match kind {
        PlanningEventKind::Modified => vec![PlanningChange::StartsAt {
            from: Utc.with_ymd_and_hms(2027, 3, 16, 0, 15, 0).unwrap(),
            to: starts_at,
        }],
        _ => Vec::new(),
    };
    let planning = PlanningSnapshot::new(
        PlanningId::parse("pl-1").unwrap(),
        "Représentation — Carmen",
        Location::new(venue, ADDRESS).unwrap(),
        Schedule::new(
            starts_at,
            Utc.with_ymd_and_hms(2027, 3, 17, 2, 15, 0).unwrap(),
            TimeZone::parse("America/Montreal").unwrap(),
        )
        .unwrap(),
        Contact::new(CONTACT, Some(PHONE), Some(EMAIL)).unwrap(),
    )
    .unwrap();
    PlanningEvent::new(
        PlanningEventId::parse("evt-1").unwrap(),
        kind,
        Utc.with_ymd_and_hms(2027, 2, 9, 1, 29, 0).unwrap(),
        planning,
        vec![id("artist-1"), id("artist-2")],
        vec![id("coord-1")],
        changes,
    )
    .unwrap()
}

/// The notice the domain rules write for the first recipient of `audience`.
fn notice(
    kind: PlanningEventKind,
    locale: Locale,
    audience: Audience,
    venue: &str,
) -> PlanningNotice {
    planning_notices(&planning_event(kind, venue), &directory(locale), Locale::Fr)
        .into_iter()
        .find(|n| n.audience == audience)
        .expect("the rules tell someone in that role")
}

#[derive(Debug, Clone, Copy)]
enum Channel {
    InApp,
    EmailText,
    EmailHtml,
    Telegram,
}

impl Channel {
    fn is_html(self) -> bool {
        matches!(self, Channel::EmailHtml | Channel::Telegram)
    }
}

/// Renders `notice` on `channel` the way Clairon does: in-app from the planning context alone,
/// email and Telegram from that context plus the `notification` written from the in-app text.
/// Returns the title line (in-app title or subject; empty for Telegram) and the body.
fn render_notice(notice: &PlanningNotice, channel: Channel, action: bool) -> (String, String) {
    let renderer = renderer();
    let context = Value::Object(notice.context.clone());
    let in_app = renderer
        .render_in_app(&notice.event_type, notice.locale, &context)
        .unwrap();
    let dispatch = with_notification(
        &context,
        &in_app.title,
        &in_app.body,
        &notice.event_type,
        action,
    );
    match channel {
        Channel::InApp => (in_app.title, in_app.body),
        Channel::EmailText | Channel::EmailHtml => {
            let email = renderer
                .render_email(&notice.event_type, notice.locale, &dispatch)
                .unwrap();
            let body = if matches!(channel, Channel::EmailText) {
                email.text
            } else {
                email.html
            };
            (email.subject, body)
        }
        Channel::Telegram => {
            let telegram = renderer
                .render_telegram(&notice.event_type, notice.locale, &dispatch)
                .unwrap();
            (String::new(), telegram.html)
        }
    }
}

/// `context` plus the `notification` object the dispatcher adds.
fn with_notification(
    context: &Value,
    title: &str,
    body: &str,
    event_type: &EventType,
    action: bool,
) -> Value {
    let mut context = context.clone();
    context["notification"] = json!({
        "id": "01890a5d-ac96-774b-b9aa-000000000001",
        "kind": "info",
        "title": title,
        "body": body,
        "action_url": if action { json!(ACTION_URL) } else { Value::Null },
        "action_label": Value::Null,
        "event_type": event_type.as_str(),
        "created_at": "2027-02-09T01:29:00+00:00",
    });
    context
}

/// The context of a notification written through the API (`custom`, `test`, unknown types).
fn free_context(event_type: &str, title: &str, body: &str, locale: Locale) -> Value {
    json!({
        "notification": {
            "id": "01890a5d-ac96-774b-b9aa-000000000002",
            "kind": "info",
            "title": title,
            "body": body,
            "action_url": Value::Null,
            "action_label": Value::Null,
            "event_type": event_type,
            "created_at": "2027-02-09T01:29:00+00:00",
        },
        "recipient": { "id": "artist-1", "name": "Zoé Tremblay" },
        "locale": locale.as_str(),
    })
}

fn start_time(locale: Locale) -> &'static str {
    match locale {
        Locale::Fr => "mardi 16 mars 2027, 20 h 15",
        Locale::En => "Tuesday, March 16, 2027, 8:15 PM",
    }
}

fn assert_contains(text: &str, needle: &str, what: &str) {
    assert!(
        text.contains(needle),
        "{what}: expected {needle:?} in:\n{text}"
    );
}

#[rstest]
fn an_artist_reads_the_place_the_address_the_time_and_the_contact(
    #[values(
        PlanningEventKind::Assigned,
        PlanningEventKind::Modified,
        PlanningEventKind::Cancelled,
        PlanningEventKind::Reminder
    )]
    kind: PlanningEventKind,
    #[values(Locale::Fr, Locale::En)] locale: Locale,
    #[values(
        Channel::InApp,
        Channel::EmailText,
        Channel::EmailHtml,
        Channel::Telegram
    )]
    channel: Channel,
) {
    let notice = notice(kind, locale, Audience::Artist, VENUE);

    let (title, body) = render_notice(&notice, channel, false);

    if !matches!(channel, Channel::Telegram) {
        assert_contains(
            &title,
            "Représentation — Carmen",
            "the title line names the planning",
        );
        assert!(
            !title.contains('\n'),
            "the title line is one line: {title:?}"
        );
    }
    assert_contains(&body, VENUE, "the venue");
    assert_contains(&body, ADDRESS, "the address");
    assert_contains(
        &body,
        start_time(locale),
        "the start in the recipient's zone and language",
    );
    assert_contains(&body, CONTACT, "the contact's name");
    assert_contains(&body, PHONE, "the contact's phone");
    assert_contains(&body, EMAIL, "the contact's email");
}

#[rstest]
#[case(Locale::Fr, "Vous êtes affecté·e à")]
#[case(Locale::En, "You are assigned to")]
fn an_assigned_artist_is_told_personally(
    #[case] locale: Locale,
    #[case] sentence: &str,
    #[values(
        Channel::InApp,
        Channel::EmailText,
        Channel::EmailHtml,
        Channel::Telegram
    )]
    channel: Channel,
) {
    let notice = notice(PlanningEventKind::Assigned, locale, Audience::Artist, VENUE);

    let (_, body) = render_notice(&notice, channel, false);

    assert_contains(&body, sentence, "the personal sentence");
}

#[rstest]
#[case(Locale::Fr, "Zoé Tremblay et Noah Martin sont affecté·e·s")]
#[case(Locale::En, "Zoé Tremblay and Noah Martin are assigned")]
fn a_coordinator_gets_a_summary_naming_the_assigned_artists(
    #[case] locale: Locale,
    #[case] summary: &str,
    #[values(
        Channel::InApp,
        Channel::EmailText,
        Channel::EmailHtml,
        Channel::Telegram
    )]
    channel: Channel,
) {
    let notice = notice(
        PlanningEventKind::Assigned,
        locale,
        Audience::Coordinator,
        VENUE,
    );

    let (_, body) = render_notice(&notice, channel, false);

    assert_contains(&body, summary, "the summary names both artists");
    assert!(
        !body.contains("Vous êtes affecté·e") && !body.contains("You are assigned"),
        "{body}"
    );
}

#[rstest]
#[case(
    Locale::Fr,
    "Début :",
    "lundi 15 mars 2027, 20 h 15 → mardi 16 mars 2027, 20 h 15"
)]
#[case(
    Locale::En,
    "Start:",
    "Monday, March 15, 2027, 8:15 PM → Tuesday, March 16, 2027, 8:15 PM"
)]
fn a_modification_shows_each_change_as_label_old_to_new(
    #[case] locale: Locale,
    #[case] label: &str,
    #[case] from_to: &str,
    #[values(Audience::Artist, Audience::Coordinator)] audience: Audience,
    #[values(
        Channel::InApp,
        Channel::EmailText,
        Channel::EmailHtml,
        Channel::Telegram
    )]
    channel: Channel,
) {
    let notice = notice(PlanningEventKind::Modified, locale, audience, VENUE);

    let (_, body) = render_notice(&notice, channel, false);

    assert_contains(&body, label, "the localised field label");
    assert_contains(&body, from_to, "old → new");
    if !channel.is_html() {
        assert_contains(
            &body,
            &format!("{label} {from_to}"),
            "label : old → new on one line",
        );
    }
}

#[rstest]
#[case(Locale::Fr, "est annulé")]
#[case(Locale::En, "is cancelled")]
fn a_cancellation_says_so_with_what_when_and_where(
    #[case] locale: Locale,
    #[case] cancelled: &str,
    #[values(Audience::Artist, Audience::Coordinator)] audience: Audience,
    #[values(
        Channel::InApp,
        Channel::EmailText,
        Channel::EmailHtml,
        Channel::Telegram
    )]
    channel: Channel,
) {
    let notice = notice(PlanningEventKind::Cancelled, locale, audience, VENUE);

    let (_, body) = render_notice(&notice, channel, false);

    assert_contains(&body, cancelled, "the cancellation");
    assert_contains(&body, "Représentation — Carmen", "what");
    assert_contains(&body, start_time(locale), "when");
    assert_contains(&body, VENUE, "where");
}

#[rstest]
#[case(Locale::Fr, "demain")]
#[case(Locale::En, "tomorrow")]
fn a_reminder_says_it_is_tomorrow(
    #[case] locale: Locale,
    #[case] tomorrow: &str,
    #[values(
        Channel::InApp,
        Channel::EmailText,
        Channel::EmailHtml,
        Channel::Telegram
    )]
    channel: Channel,
) {
    let notice = notice(PlanningEventKind::Reminder, locale, Audience::Artist, VENUE);

    let (title, body) = render_notice(&notice, channel, false);

    assert_contains(
        &format!("{title}\n{body}").to_lowercase(),
        tomorrow,
        "tomorrow",
    );
}

#[rstest]
fn a_venue_with_markup_characters_is_escaped_in_html_and_left_alone_in_text(
    #[values(
        PlanningEventKind::Assigned,
        PlanningEventKind::Modified,
        PlanningEventKind::Cancelled,
        PlanningEventKind::Reminder
    )]
    kind: PlanningEventKind,
    #[values(Locale::Fr, Locale::En)] locale: Locale,
    #[values(
        Channel::InApp,
        Channel::EmailText,
        Channel::EmailHtml,
        Channel::Telegram
    )]
    channel: Channel,
) {
    let notice = notice(kind, locale, Audience::Artist, TRICKY_VENUE);

    let (_, body) = render_notice(&notice, channel, false);

    if channel.is_html() {
        assert_contains(&body, TRICKY_VENUE_ESCAPED, "the escaped venue");
        assert!(
            !body.contains("<Jazz>"),
            "no raw tag from the venue in:\n{body}"
        );
    } else {
        assert_contains(&body, TRICKY_VENUE, "the venue as written");
        assert!(
            !body.contains("&lt;") && !body.contains("&amp;"),
            "no entity in text:\n{body}"
        );
    }
}

/// Every tag name in `html`, and every named entity.
fn tags_and_entities(html: &str) -> (Vec<String>, Vec<String>) {
    let tag = Regex::new(r"</?\s*([A-Za-z][A-Za-z0-9-]*)").unwrap();
    let entity = Regex::new(r"&([A-Za-z][A-Za-z0-9]*);").unwrap();
    (
        tag.captures_iter(html)
            .map(|c| c[1].to_lowercase())
            .collect(),
        entity
            .captures_iter(html)
            .map(|c| c[1].to_owned())
            .collect(),
    )
}

#[rstest]
fn a_telegram_planning_message_uses_only_what_telegrams_html_mode_accepts(
    #[values(
        PlanningEventKind::Assigned,
        PlanningEventKind::Modified,
        PlanningEventKind::Cancelled,
        PlanningEventKind::Reminder
    )]
    kind: PlanningEventKind,
    #[values(Locale::Fr, Locale::En)] locale: Locale,
    #[values(Audience::Artist, Audience::Coordinator)] audience: Audience,
) {
    if kind == PlanningEventKind::Reminder && audience == Audience::Coordinator {
        return; // reminders go to artists only
    }
    let notice = notice(kind, locale, audience, TRICKY_VENUE);

    let (_, html) = render_notice(&notice, Channel::Telegram, true);

    let (tags, entities) = tags_and_entities(&html);
    let allowed_tags = ["b", "i", "u", "s", "a", "code", "pre", "blockquote"];
    assert!(
        tags.iter().all(|t| allowed_tags.contains(&t.as_str())),
        "tags {tags:?} in:\n{html}"
    );
    let allowed_entities = ["lt", "gt", "amp", "quot"];
    assert!(
        entities
            .iter()
            .all(|e| allowed_entities.contains(&e.as_str())),
        "entities {entities:?}"
    );
    assert!(
        !html.contains(ACTION_URL),
        "the button is the sender's, not the text's:\n{html}"
    );
}

#[rstest]
fn a_telegram_message_written_through_the_api_escapes_its_title_and_body(
    #[values("custom", "test")] event_type: &str,
    #[values(Locale::Fr, Locale::En)] locale: Locale,
) {
    let context = free_context(
        event_type,
        "Salle <B> & co",
        "Ligne 1 <i>\nLigne 2 & fin",
        locale,
    );

    let html = renderer()
        .render_telegram(&EventType::parse(event_type).unwrap(), locale, &context)
        .unwrap()
        .html;

    let (tags, _) = tags_and_entities(&html);
    assert!(
        tags.iter().all(|t| t == "b" || t == "i"),
        "tags {tags:?} in:\n{html}"
    );
    assert_contains(&html, "Salle &lt;B&gt; &amp; co", "the escaped title");
    assert_contains(
        &html,
        "Ligne 1 &lt;i&gt;\nLigne 2 &amp; fin",
        "the escaped body, newlines kept",
    );
}

#[rstest]
#[case(
    Locale::Fr,
    "<html lang=\"fr\"",
    "Vous recevez ce courriel parce que vous êtes affecté·e à ce planning"
)]
#[case(
    Locale::En,
    "<html lang=\"en\"",
    "You are receiving this email because you are assigned to this planning"
)]
fn the_html_email_is_a_complete_document_in_the_recipients_language_saying_why_it_was_sent(
    #[case] locale: Locale,
    #[case] html_tag: &str,
    #[case] why: &str,
) {
    let notice = notice(PlanningEventKind::Assigned, locale, Audience::Artist, VENUE);

    let (_, html) = render_notice(&notice, Channel::EmailHtml, false);

    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "doctype first:\n{html}"
    );
    assert_contains(&html, html_tag, "the lang attribute");
    assert_contains(&html, "<title>", "a document title");
    assert_contains(
        &html,
        "role=\"presentation\"",
        "layout tables hidden from screen readers",
    );
    assert_contains(&html, why, "the footer");
    assert!(html.ends_with("</html>"), "a complete document:\n{html}");
}

#[rstest]
#[case(Locale::Fr, "Voir le détail")]
#[case(Locale::En, "View details")]
fn a_call_to_action_appears_only_when_the_notification_has_one(
    #[case] locale: Locale,
    #[case] label: &str,
    #[values(true, false)] action: bool,
) {
    let notice = notice(PlanningEventKind::Reminder, locale, Audience::Artist, VENUE);

    let (_, text) = render_notice(&notice, Channel::EmailText, action);
    let (_, html) = render_notice(&notice, Channel::EmailHtml, action);

    // The escaper leaves `/` alone, so the link reads as written in the HTML source too.
    let escaped_url = ACTION_URL.replace('&', "&amp;");
    assert_eq!(
        text.contains(ACTION_URL),
        action,
        "the link in the text part:\n{text}"
    );
    assert_eq!(
        html.contains(&format!("<a href=\"{escaped_url}\"")),
        action,
        "the link:\n{html}"
    );
    assert_eq!(html.contains(label), action, "the default label:\n{html}");
}

#[test]
fn a_call_to_action_uses_the_notifications_own_label() {
    let context = {
        let mut c = free_context("custom", "Répétition", "Salle B", Locale::Fr);
        c["notification"]["action_url"] = json!(ACTION_URL);
        c["notification"]["action_label"] = json!("Confirmer <vite>");
        c
    };

    let email = renderer()
        .render_email(&EventType::parse("custom").unwrap(), Locale::Fr, &context)
        .unwrap();

    assert_contains(
        &email.html,
        "Confirmer &lt;vite&gt;</a>",
        "the escaped label",
    );
    assert_contains(
        &email.text,
        &format!("Confirmer <vite> : {ACTION_URL}"),
        "label and URL",
    );
}

#[rstest]
fn a_custom_notification_echoes_its_title_and_body(
    #[values(Locale::Fr, Locale::En)] locale: Locale,
) {
    let custom = EventType::parse("custom").unwrap();
    let context = free_context(
        "custom",
        "Répétition déplacée",
        "Salle B.\nApportez vos partitions.",
        locale,
    );
    let renderer = renderer();

    let in_app = renderer.render_in_app(&custom, locale, &context).unwrap();
    let email = renderer.render_email(&custom, locale, &context).unwrap();

    assert_eq!(in_app.title, "Répétition déplacée");
    assert_eq!(in_app.body, "Salle B.\nApportez vos partitions.");
    assert_eq!(email.subject, "Répétition déplacée");
    assert_contains(
        &email.text,
        "Salle B.\nApportez vos partitions.",
        "the body in text",
    );
    assert_contains(
        &email.html,
        "Salle B.<br>Apportez vos partitions.",
        "the body in HTML",
    );
}

#[rstest]
#[case(Locale::Fr, "message de test")]
#[case(Locale::En, "test message")]
fn the_test_message_says_it_is_a_test_on_every_channel(
    #[case] locale: Locale,
    #[case] words: &str,
) {
    let test = EventType::parse("test").unwrap();
    let context = free_context("test", "Clairon", "Bonjour !", locale);
    let renderer = renderer();

    let email = renderer.render_email(&test, locale, &context).unwrap();
    let telegram = renderer.render_telegram(&test, locale, &context).unwrap();

    assert_contains(&email.text, words, "the text email");
    assert_contains(&email.html, words, "the HTML email");
    assert_contains(&telegram.html, words, "the Telegram message");
}

#[test]
fn a_title_spread_over_several_lines_becomes_one_line() {
    let context = free_context(
        "custom",
        "  Répétition\n   déplacée\t ",
        "Salle B",
        Locale::Fr,
    );

    let in_app = renderer()
        .render_in_app(&EventType::parse("custom").unwrap(), Locale::Fr, &context)
        .unwrap();

    assert_eq!(in_app.title, "Répétition déplacée");
}

#[test]
fn every_family_renders_in_every_locale_on_every_channel_against_the_samples() {
    let renderer = renderer();

    renderer.check_all().unwrap();

    for locale in Locale::ALL {
        let families = renderer.families(locale);
        for family in [
            "planning.assigned",
            "planning.modified",
            "planning.cancelled",
            "planning.reminder",
            "custom",
            "test",
        ] {
            assert!(families.contains(&family), "{locale}/{family} exists");
        }
    }
}

/// Copies the real templates into a temporary directory, leaving out what `skip` says.
fn copy_templates(skip: impl Fn(&Path) -> bool) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path, root: &Path, skip: &dyn Fn(&Path) -> bool) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap();
            if skip(relative) {
                continue;
            }
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() {
                copy(&path, &target, root, skip);
            } else {
                fs::copy(&path, &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let root = templates_dir();
    copy(&root, dir.path(), &root, &skip);
    dir
}

#[test]
fn a_locale_without_the_family_falls_back_to_the_default_locale() {
    let only_french = copy_templates(|p| p.starts_with("en"));
    let renderer = TeraTemplateRenderer::from_dir(only_french.path(), Locale::Fr).unwrap();
    let notice = notice(
        PlanningEventKind::Assigned,
        Locale::En,
        Audience::Artist,
        VENUE,
    );

    let in_app = renderer
        .render_in_app(
            &notice.event_type,
            Locale::En,
            &Value::Object(notice.context),
        )
        .unwrap();

    assert!(
        in_app.title.starts_with("Nouvelle affectation"),
        "French: {}",
        in_app.title
    );
}

#[test]
fn an_event_type_without_templates_falls_back_to_the_custom_family() {
    let context = free_context("invoice.paid", "Facture réglée", "Merci !", Locale::En);

    let in_app = renderer()
        .render_in_app(
            &EventType::parse("invoice.paid").unwrap(),
            Locale::En,
            &context,
        )
        .unwrap();

    assert_eq!(in_app.title, "Facture réglée");
    assert_eq!(in_app.body, "Merci !");
}

#[test]
fn an_event_type_without_templates_and_without_custom_is_missing() {
    let no_custom = copy_templates(|p| p.ends_with("custom"));
    let renderer = TeraTemplateRenderer::from_dir(no_custom.path(), Locale::Fr).unwrap();

    let error = renderer
        .render_in_app(
            &EventType::parse("invoice.paid").unwrap(),
            Locale::En,
            &free_context("invoice.paid", "a", "b", Locale::En),
        )
        .unwrap_err();

    assert_eq!(error, TemplateError::Missing("en/invoice.paid".to_owned()));
    assert!(matches!(renderer.check_all(), Err(TemplateError::Missing(m)) if m == "fr/custom"));
}

#[test]
fn a_template_with_a_syntax_error_fails_to_load_naming_the_file() {
    let broken = copy_templates(|_| false);
    let file = broken.path().join("en/planning.reminder/email.html");
    fs::write(
        &file,
        "{% extends \"en/_layouts/email.html\" %}\n{% block content %}{% if x %}\n",
    )
    .unwrap();

    let error = TeraTemplateRenderer::from_dir(broken.path(), Locale::Fr).unwrap_err();

    assert!(
        matches!(&error, TemplateLoadError::Syntax { path, .. } if *path == file),
        "{error:?}"
    );
    assert_contains(
        &error.to_string(),
        "en/planning.reminder/email.html",
        "the message names the file",
    );
}

#[test]
fn a_template_extending_a_layout_that_does_not_exist_fails_to_load_naming_both() {
    let broken = copy_templates(|_| false);
    fs::write(
        broken.path().join("fr/custom/email.html"),
        "{% extends \"fr/_layouts/nowhere.html\" %}",
    )
    .unwrap();

    let error = TeraTemplateRenderer::from_dir(broken.path(), Locale::Fr).unwrap_err();

    let message = error.to_string();
    assert!(
        matches!(error, TemplateLoadError::Links { .. }),
        "{message}"
    );
    assert_contains(&message, "fr/custom/email.html", "the template");
    assert_contains(&message, "fr/_layouts/nowhere.html", "the missing layout");
}

#[test]
fn a_family_missing_a_part_fails_to_load_naming_the_part() {
    let incomplete = copy_templates(|p| p == Path::new("en/test/telegram.html"));

    let error = TeraTemplateRenderer::from_dir(incomplete.path(), Locale::Fr).unwrap_err();

    assert!(
        matches!(&error, TemplateLoadError::IncompleteFamily { locale: Locale::En, family, missing }
            if family == "test" && missing == &["telegram.html".to_owned()]),
        "{error:?}"
    );
}

#[test]
fn a_family_absent_from_the_default_locale_fails_to_load() {
    let english_only = copy_templates(|p| p.starts_with("fr/planning.reminder"));

    let error = TeraTemplateRenderer::from_dir(english_only.path(), Locale::Fr).unwrap_err();

    assert!(
        matches!(&error, TemplateLoadError::IncompleteFamily { locale: Locale::Fr, family, .. }
            if family == "planning.reminder"),
        "{error:?}"
    );
}

#[test]
fn a_directory_for_a_language_clairon_does_not_write_in_fails_to_load() {
    let extra = copy_templates(|_| false);
    fs::create_dir_all(extra.path().join("de/custom")).unwrap();
    fs::write(
        extra.path().join("de/custom/in_app.title.txt"),
        "{{ notification.title }}",
    )
    .unwrap();

    let error = TeraTemplateRenderer::from_dir(extra.path(), Locale::Fr).unwrap_err();

    assert!(
        matches!(error, TemplateLoadError::Unexpected { .. }),
        "{error:?}"
    );
}

#[test]
fn the_startup_check_catches_a_telegram_template_using_a_tag_telegram_rejects() {
    let broken = copy_templates(|_| false);
    fs::write(
        broken.path().join("fr/custom/telegram.html"),
        "<b>{{ notification.title }}</b><br>{{ notification.body }}",
    )
    .unwrap();
    let renderer = TeraTemplateRenderer::from_dir(broken.path(), Locale::Fr).unwrap();

    let error = renderer.check_all().unwrap_err();

    assert!(
        matches!(&error, TemplateError::Render { name, reason }
            if name == "fr/custom/telegram.html" && reason.contains("<br>")),
        "{error:?}"
    );
}

#[test]
fn a_render_error_names_the_template_and_carries_teras_cause() {
    let context = json!({ "audience": "artist", "locale": "fr" });

    let error = renderer()
        .render_in_app(
            &EventType::parse("planning.assigned").unwrap(),
            Locale::Fr,
            &context,
        )
        .unwrap_err();

    let TemplateError::Render { name, reason } = error else {
        panic!("a render error, got {error:?}");
    };
    assert_eq!(name, "fr/planning.assigned/in_app.title.txt");
    assert_contains(
        &reason,
        "planning.title",
        "the missing variable, from Tera's source chain",
    );
}

#[rstest]
fn a_planning_title_at_its_longest_still_makes_a_valid_notification_title(
    #[values(
        PlanningEventKind::Assigned,
        PlanningEventKind::Modified,
        PlanningEventKind::Cancelled,
        PlanningEventKind::Reminder
    )]
    kind: PlanningEventKind,
    #[values(Locale::Fr, Locale::En)] locale: Locale,
) {
    let notice = notice(kind, locale, Audience::Artist, VENUE);
    let mut context = Value::Object(notice.context);
    context["planning"]["title"] = json!("é".repeat(200));

    let in_app = renderer()
        .render_in_app(&notice.event_type, locale, &context)
        .unwrap();

    assert!(
        clairon_domain::Title::parse(&in_app.title).is_ok(),
        "{} characters",
        in_app.title.chars().count()
    );
}

// The built-in set and its overrides (`CLAIRON_TEMPLATES_DIR`), and `clairon templates check`.

/// A directory holding only `files` (`(template name, text)`), as an operator's override
/// directory would.
fn override_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

fn problems_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<TemplateProblem>) {
    let dir = override_dir(files);
    let set = TemplateSet::built_in_overridden_by(dir.path()).unwrap();
    let problems = check_set(&set, Locale::Fr);
    (dir, problems)
}

#[test]
fn the_built_in_set_is_the_templates_directory_file_for_file() {
    let on_disk = TemplateSet::from_dir(&templates_dir()).unwrap();

    let built_in = TemplateSet::built_in();

    let names = |set: &TemplateSet| set.files().map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&built_in), names(&on_disk), "the same templates");
    for file in built_in.files() {
        assert_eq!(file.origin, Origin::BuiltIn, "{} is built in", file.name);
        assert_eq!(
            file.text,
            on_disk.get(&file.name).unwrap().text,
            "{} has the text of templates/{}",
            file.name,
            file.name
        );
    }
}

#[rstest]
fn the_built_in_set_loads_and_renders_in_every_locale_and_channel(
    #[values(Locale::Fr, Locale::En)] default_locale: Locale,
) {
    let problems = check_set(&TemplateSet::built_in(), default_locale);

    assert_eq!(problems, Vec::new(), "no problem in the built-in templates");
}

#[test]
fn a_file_of_the_override_directory_replaces_the_built_in_one_and_the_others_stay_built_in() {
    let dir = override_dir(&[(
        "fr/custom/email.subject.txt",
        "[Clairon] {{ notification.title -}}",
    )]);
    let renderer = TeraTemplateRenderer::built_in(Some(dir.path()), Locale::Fr).unwrap();
    let context = free_context("custom", "Répétition", "Demain 18 h.", Locale::Fr);
    let custom = EventType::parse("custom").unwrap();

    let french = renderer
        .render_email(&custom, Locale::Fr, &context)
        .unwrap();
    let english = renderer
        .render_email(&custom, Locale::En, &context)
        .unwrap();

    assert_eq!(
        french.subject, "[Clairon] Répétition",
        "the override's subject"
    );
    assert_contains(
        &french.text,
        "Bonjour",
        "the built-in French layout still frames the text",
    );
    assert_eq!(
        english.subject, "Répétition",
        "the English subject is still built in"
    );
}

#[test]
fn an_override_directory_that_cannot_be_read_is_refused_naming_it() {
    let missing = Path::new("/nonexistent/clairon-templates");

    let error = TeraTemplateRenderer::built_in(Some(missing), Locale::Fr).unwrap_err();

    assert!(
        matches!(&error, TemplateLoadError::Io { path, .. } if path == missing),
        "an I/O error on the directory: {error:?}"
    );
}

#[test]
fn the_check_reports_every_syntax_error_with_its_file_and_line() {
    let (dir, problems) = problems_with(&[
        ("fr/custom/email.txt", "Bonjour\n\n{{ notification.title \n"),
        ("en/test/telegram.html", "<b>Test</b>\n{% if x %}\nno end\n"),
    ]);

    let shown: Vec<(PathBuf, Option<usize>)> =
        problems.iter().map(|p| (p.path.clone(), p.line)).collect();
    assert_eq!(
        shown,
        vec![
            (dir.path().join("en/test/telegram.html"), Some(4)),
            (dir.path().join("fr/custom/email.txt"), Some(4)),
        ],
        "both files, each with the line Tera's parser stopped at: {problems:?}"
    );
    assert_contains(
        &problems[1].to_string(),
        &format!(
            "{}:4: syntax error: expected",
            dir.path().join("fr/custom/email.txt").display()
        ),
        "file:line: message",
    );
}

#[test]
fn the_check_reports_an_unknown_variable_at_the_line_that_uses_it() {
    let (dir, problems) = problems_with(&[(
        "fr/custom/telegram.html",
        "<b>{{ notification.title }}</b>\n\n{{ notification.venue }}\n",
    )]);

    assert_eq!(problems.len(), 1, "one problem: {problems:?}");
    assert_eq!(
        (problems[0].path.clone(), problems[0].line),
        (dir.path().join("fr/custom/telegram.html"), Some(3)),
        "the override and the line of the unknown variable"
    );
    assert_contains(&problems[0].message, "notification.venue", "the variable");
}

#[test]
fn the_check_reports_a_variable_unknown_to_a_layout_in_the_layout() {
    // Tera reports a variable missing in a layout as missing in the template extending it.
    let (dir, problems) = problems_with(&[(
        "en/_layouts/email.txt",
        "Hello,\n\n{% block content %}{% endblock content %}\n{{ signature.name }}\n",
    )]);

    assert!(!problems.is_empty(), "every English email fails");
    for problem in &problems {
        assert_eq!(
            (problem.path.clone(), problem.line),
            (dir.path().join("en/_layouts/email.txt"), Some(4)),
            "the layout and the line of the unknown variable: {problem}"
        );
    }
}

#[test]
fn the_check_reports_a_tag_telegram_refuses_with_its_line_in_a_built_in_family() {
    let (_dir, problems) = problems_with(&[(
        "fr/custom/telegram.html",
        "<b>{{ notification.title }}</b>\n<br>{{ notification.body }}",
    )]);

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, Some(2), "the line of <br>");
    assert_contains(&problems[0].message, "<br>", "the tag");
}

#[test]
fn the_check_names_a_missing_layout_at_the_line_that_extends_it() {
    let (dir, problems) = problems_with(&[(
        "fr/custom/email.html",
        "{# a comment #}\n{% extends \"fr/_layouts/nowhere.html\" %}",
    )]);

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].path.clone(), problems[0].line),
        (dir.path().join("fr/custom/email.html"), Some(2)),
        "the file and the line of the extends: {problems:?}"
    );
}

/// The context a domain event's notification is rendered with: its metadata as the generic
/// listener writes it (`locale`, `event`, `data`), and `notification` and `recipient`.
fn event_context(event_type: &str, locale: Locale, data: Value) -> Value {
    json!({
        "locale": locale.as_str(),
        "event": { "id": "ev-42", "type": event_type, "occurred_at": "2027-03-01T10:00:00+00:00" },
        "data": data,
        "notification": {
            "kind": "info", "title": "Producer's title", "body": "Producer's body",
            "action_url": null, "action_label": null, "event_type": event_type,
        },
        "recipient": { "id": "artist-0001", "name": "Zoé Tremblay" },
    })
}

#[rstest]
#[case::created_fr("project.created", Locale::Fr, json!({"project": {"id": "7", "name": "Carmen"}}), "Nouveau projet : Carmen", "Le projet « Carmen » vient d’être créé.")]
#[case::created_en("project.created", Locale::En, json!({"project": {"id": "7", "name": "Carmen"}}), "New project: Carmen", "The project “Carmen” has just been created.")]
#[case::assigned_fr("project.role.assigned", Locale::Fr, json!({"project": {"id": "7", "name": "Carmen"}, "role": "Soprano"}), "Rôle attribué : Soprano dans Carmen", "Vous avez obtenu le rôle « Soprano » dans le projet « Carmen ».")]
#[case::assigned_en("project.role.assigned", Locale::En, json!({"project": {"id": "7", "name": "Carmen"}, "role": "Soprano"}), "Role assigned: Soprano in Carmen", "You have been given the role “Soprano” in the project “Carmen”.")]
#[case::application_fr("project.role.application.created", Locale::Fr, json!({"project": {"id": "7", "name": "Carmen"}, "role": "Soprano", "applicant": {"id": "a-2", "name": "Liam"}}), "Nouvelle candidature : Liam pour Soprano", "Liam postule au rôle « Soprano » du projet « Carmen ».")]
#[case::application_en("project.role.application.created", Locale::En, json!({"project": {"id": "7", "name": "Carmen"}, "role": "Soprano", "applicant": {"id": "a-2", "name": "Liam"}}), "New application: Liam for Soprano", "Liam has applied for the role “Soprano” in the project “Carmen”.")]
#[case::job_fr("job.failed", Locale::Fr, json!({"job": "retention", "run_id": "r-1", "message": "disk full"}), "Échec de la tâche retention", "La tâche « retention » a échoué (exécution r-1).\ndisk full")]
#[case::job_en("job.failed", Locale::En, json!({"job": "retention", "run_id": "r-1", "message": "disk full"}), "Job retention failed", "The job “retention” failed (run r-1).\ndisk full")]
#[case::dead_letters_fr("deliveries.dead_letters", Locale::Fr, json!({"count": 11, "threshold": 10, "samples": [{"delivery_id": "d-1", "channel": "email", "error": "451 try later"}, {"delivery_id": "d-2", "channel": "telegram", "error": null}]}), "11 envois abandonnés en une heure", "11 envois sont passés « dead » (essais épuisés) dans l’heure, au-delà du seuil de 10. Ils attendent une relance dans le tableau de bord.\nd-1 (email) : 451 try later\nd-2 (telegram) : aucune erreur enregistrée")]
#[case::dead_letters_en("deliveries.dead_letters", Locale::En, json!({"count": 11, "threshold": 10, "samples": [{"delivery_id": "d-1", "channel": "email", "error": "451 try later"}]}), "11 deliveries gave up within the hour", "11 deliveries went dead (out of attempts) within the hour, more than the threshold of 10. They wait for a retry on the dashboard.\nd-1 (email): 451 try later")]
fn a_domain_event_reads_its_data_in_the_recipients_language(
    #[case] event_type: &str,
    #[case] locale: Locale,
    #[case] data: Value,
    #[case] title: &str,
    #[case] body: &str,
) {
    let in_app = renderer()
        .render_in_app(
            &EventType::parse(event_type).unwrap(),
            locale,
            &event_context(event_type, locale, data),
        )
        .unwrap();
    assert_eq!(in_app.title, title);
    assert_eq!(in_app.body, body);
}

#[test]
fn a_domain_event_without_its_data_falls_back_to_the_producers_title_and_body() {
    let in_app = renderer()
        .render_in_app(
            &EventType::parse("project.role.assigned").unwrap(),
            Locale::En,
            &event_context("project.role.assigned", Locale::En, json!({})),
        )
        .unwrap();
    assert_eq!(in_app.title, "Producer's title");
    assert_eq!(in_app.body, "Producer's body");
}

#[test]
fn a_failed_job_email_and_telegram_carry_the_error_details_escaped() {
    let event_type = EventType::parse("job.failed").unwrap();
    let mut context = event_context(
        "job.failed",
        Locale::Fr,
        json!({"job": "sync", "error_details": "timeout <5s> & retry"}),
    );
    context["notification"]["title"] = json!("Échec de la tâche sync");
    let email = renderer()
        .render_email(&event_type, Locale::Fr, &context)
        .unwrap();
    assert_eq!(email.subject, "Échec de la tâche sync");
    assert!(
        email.text.contains("Détails :\ntimeout <5s> & retry"),
        "{}",
        email.text
    );
    assert!(
        email.html.contains("timeout &lt;5s&gt; &amp; retry"),
        "{}",
        email.html
    );
    let telegram = renderer()
        .render_telegram(&event_type, Locale::Fr, &context)
        .unwrap();
    assert!(
        telegram
            .html
            .contains("<pre>timeout &lt;5s&gt; &amp; retry</pre>"),
        "{}",
        telegram.html
    );
}

#[test]
fn an_event_type_without_templates_is_told_with_the_producers_title_and_body() {
    let in_app = renderer()
        .render_in_app(
            &EventType::parse("sync.failed").unwrap(),
            Locale::Fr,
            &event_context("sync.failed", Locale::Fr, json!({"anything": 1})),
        )
        .unwrap();
    assert_eq!(in_app.title, "Producer's title");
    assert_eq!(in_app.body, "Producer's body");
}

/// The SMS (and WhatsApp) text of `notice`, rendered as the dispatcher does.
fn render_sms(notice: &PlanningNotice) -> String {
    let renderer = renderer();
    let context = Value::Object(notice.context.clone());
    let in_app = renderer
        .render_in_app(&notice.event_type, notice.locale, &context)
        .unwrap();
    let dispatch = with_notification(
        &context,
        &in_app.title,
        &in_app.body,
        &notice.event_type,
        true,
    );
    renderer
        .render_sms(&notice.event_type, notice.locale, &dispatch)
        .unwrap()
        .text
}

#[rstest]
#[case::assigned_artist(PlanningEventKind::Assigned, Audience::Artist)]
#[case::assigned_coordinator(PlanningEventKind::Assigned, Audience::Coordinator)]
#[case::modified_artist(PlanningEventKind::Modified, Audience::Artist)]
#[case::modified_coordinator(PlanningEventKind::Modified, Audience::Coordinator)]
#[case::cancelled_artist(PlanningEventKind::Cancelled, Audience::Artist)]
#[case::cancelled_coordinator(PlanningEventKind::Cancelled, Audience::Coordinator)]
#[case::reminder_artist(PlanningEventKind::Reminder, Audience::Artist)]
fn an_sms_names_the_planning_its_start_and_its_venue_without_the_link(
    #[case] kind: PlanningEventKind,
    #[case] audience: Audience,
    #[values(Locale::Fr, Locale::En)] locale: Locale,
) {
    let text = render_sms(&notice(kind, locale, audience, VENUE));

    assert_contains(&text, "Représentation — Carmen", "the planning");
    assert_contains(&text, start_time(locale), "the start");
    assert_contains(&text, VENUE, "the venue");
    assert!(
        !text.contains(ACTION_URL),
        "the dispatcher adds the link, whole, after cutting the text: {text}"
    );
    assert!(
        clairon_domain::sms::sms_length(&text).segments <= 2,
        "short enough not to be cut on an ordinary planning: {text}"
    );
}

#[rstest]
#[case(Locale::Fr, "Message de test")]
#[case(Locale::En, "test message")]
fn the_test_sms_says_first_that_it_is_a_test(#[case] locale: Locale, #[case] words: &str) {
    let test = EventType::parse("test").unwrap();
    let context = free_context("test", "Clairon", "Bonjour !", locale);

    let sms = renderer().render_sms(&test, locale, &context).unwrap();

    assert_contains(&sms.text, words, "the SMS");
    assert!(
        sms.text.find(words) < sms.text.find("Bonjour"),
        "{}",
        sms.text
    );
}

/// The Slack section of `notice`, rendered as the dispatcher does.
fn render_slack(notice: &PlanningNotice) -> String {
    let renderer = renderer();
    let context = Value::Object(notice.context.clone());
    let in_app = renderer
        .render_in_app(&notice.event_type, notice.locale, &context)
        .unwrap();
    let dispatch = with_notification(
        &context,
        &in_app.title,
        &in_app.body,
        &notice.event_type,
        true,
    );
    renderer
        .render_slack(&notice.event_type, notice.locale, &dispatch)
        .unwrap()
        .mrkdwn
}

#[rstest]
#[case::assigned_artist(PlanningEventKind::Assigned, Audience::Artist)]
#[case::modified_coordinator(PlanningEventKind::Modified, Audience::Coordinator)]
#[case::cancelled_artist(PlanningEventKind::Cancelled, Audience::Artist)]
#[case::reminder_artist(PlanningEventKind::Reminder, Audience::Artist)]
fn a_slack_section_names_the_planning_and_escapes_its_values_for_mrkdwn(
    #[case] kind: PlanningEventKind,
    #[case] audience: Audience,
    #[values(Locale::Fr, Locale::En)] locale: Locale,
) {
    let text = render_slack(&notice(kind, locale, audience, TRICKY_VENUE));

    assert_contains(&text, "Représentation — Carmen", "the planning");
    assert_contains(&text, start_time(locale), "the start");
    assert_contains(&text, TRICKY_VENUE_ESCAPED, "the venue, escaped for mrkdwn");
    assert!(!text.contains(TRICKY_VENUE), "never raw: {text}");
    assert!(text.contains('*'), "labels in mrkdwn bold: {text}");
    assert!(!text.contains("<b>"), "no HTML: {text}");
}

#[test]
fn a_free_text_slack_section_escapes_what_the_producer_wrote() {
    let custom = EventType::parse("custom").unwrap();
    let context = free_context("custom", "Titre", "<!channel> Tom & Jerry", Locale::Fr);

    let slack = renderer()
        .render_slack(&custom, Locale::Fr, &context)
        .unwrap();

    assert_eq!(slack.mrkdwn, "&lt;!channel&gt; Tom &amp; Jerry");
}
