//! SMS and WhatsApp through Twilio's Messages API (issue 12): what the Twilio stand-in
//! receives for a planning event, consent required first, and a long text cut to two SMS
//! segments with its link whole.

use std::time::Duration;

use clairon_domain::sms::{sms_length, SmsEncoding};
use clairon_tests::{spawn_app_with, Options, TestApp, SMS_FROM, WHATSAPP_FROM};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const PHONE: &str = "+33612345678";

async fn app() -> TestApp {
    spawn_app_with(Options {
        twilio: true,
        ..Options::default()
    })
    .await
    .expect("SQLite")
}

async fn register(app: &TestApp, id: &str, phone: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({ "name": "Zoé Tremblay", "email": format!("{id}@example.org"),
                     "phone": phone, "locale": "fr", "timezone": "America/Montreal" }),
        )
        .await;
    assert!(
        matches!(answer.status, 200 | 201),
        "{}: {}",
        answer.status,
        answer.json
    );
}

async fn consent(app: &TestApp, id: &str, channel: &str) {
    let answer = app
        .post(
            &format!("/api/v1/recipients/{id}/consents"),
            &json!({ "channel": channel, "granted": true, "source": "signup-form" }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

fn assigned(event_id: &str, artist: &str) -> Value {
    json!({
        "event_id": event_id, "planning_id": "pl-1", "event": "assigned",
        "occurred_at": "2027-02-09T01:29:00Z",
        "planning": {
            "title": "Carmen",
            "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O" },
            "starts_at": "2099-03-16T20:15:00-04:00", "ends_at": "2099-03-16T22:15:00-04:00",
            "timezone": "America/Montreal",
            "contact": { "name": "Samir Nguyễn" }
        },
        "artist_ids": [artist], "coordinator_ids": []
    })
}

/// Posts the event; returns the notification made for `artist`.
async fn post_event(app: &TestApp, event: &Value, artist: &str) -> Value {
    let answer = app.post_event(event).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["recipient_id"] == artist).cloned())
        .unwrap_or_else(|| panic!("a notification for {artist}: {}", answer.json))
}

#[tokio::test]
async fn a_recipient_who_consented_gets_the_planning_event_by_sms_and_by_whatsapp() {
    let app = app().await;
    register(&app, "artist-1", "+33 6 12 34 56 78").await;
    consent(&app, "artist-1", "sms").await;
    consent(&app, "artist-1", "whatsapp").await;

    let notification = post_event(&app, &assigned("evt-1", "artist-1"), "artist-1").await;
    let id = notification["id"].as_str().unwrap();
    let sms = app.wait_for_delivery(id, "sms", "sent", WAIT).await;
    let whatsapp = app.wait_for_delivery(id, "whatsapp", "sent", WAIT).await;

    let twilio = app.twilio.as_ref().unwrap();
    let received = twilio.wait_for_messages(2, WAIT).await;
    assert_eq!(twilio.rejected(), Vec::<String>::new());
    let by_sms = received.iter().find(|m| !m.is_whatsapp()).expect("an SMS");
    let by_whatsapp = received
        .iter()
        .find(|m| m.is_whatsapp())
        .expect("a WhatsApp message");
    assert_eq!(
        (by_sms.to.as_str(), by_sms.from.as_str()),
        (PHONE, SMS_FROM)
    );
    assert_eq!(by_whatsapp.to, format!("whatsapp:{PHONE}"));
    assert_eq!(by_whatsapp.from, format!("whatsapp:{WHATSAPP_FROM}"));
    for message in [by_sms, by_whatsapp] {
        assert!(message.body.contains("Carmen"), "{}", message.body);
        assert!(
            message.body.contains("Théâtre Outremont"),
            "{}",
            message.body
        );
        assert!(
            message.body.contains("lundi 16 mars 2099"),
            "{}",
            message.body
        );
        assert!(sms_length(&message.body).segments <= 2, "{}", message.body);
    }
    // The provider's id is Twilio's sid of each message.
    let sids: Vec<Option<String>> = vec![by_sms.sid.clone(), by_whatsapp.sid.clone()];
    assert!(
        sids.contains(&sms["provider_message_id"].as_str().map(str::to_owned)),
        "{sms}"
    );
    assert!(
        sids.contains(&whatsapp["provider_message_id"].as_str().map(str::to_owned)),
        "{whatsapp}"
    );
}

#[tokio::test]
async fn without_consent_sms_and_whatsapp_are_skipped_and_twilio_hears_nothing() {
    let app = app().await;
    register(&app, "artist-1", PHONE).await;

    let notification = post_event(&app, &assigned("evt-1", "artist-1"), "artist-1").await;
    let id = notification["id"].as_str().unwrap();
    let settled = app.wait_until_settled(id, WAIT).await;

    let reason = |channel: &str| {
        settled["deliveries"]
            .as_array()
            .and_then(|ds| ds.iter().find(|d| d["channel"] == channel).cloned())
            .map(|d| (d["status"].clone(), d["reason"].clone()))
    };
    // Skipped when written: either no delivery row at all, or a skipped one naming consent.
    let skipped = notification["skipped"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for channel in ["sms", "whatsapp"] {
        let named = skipped
            .iter()
            .any(|s| s["channel"] == channel && s["reason"] == format!("no_consent: {channel}"));
        let row = reason(channel);
        assert!(
            named
                || row
                    .as_ref()
                    .is_some_and(|(status, reason)| status == "skipped"
                        && reason.as_str().is_some_and(|r| r.contains("no_consent"))),
            "{channel}: {notification} / {settled}"
        );
    }
    app.wait_for_delivery(id, "email", "sent", WAIT).await;
    let twilio = app.twilio.as_ref().unwrap();
    assert!(twilio.messages().is_empty() && twilio.failed_attempts().is_empty());
}

#[tokio::test]
async fn a_long_french_text_is_cut_to_two_ucs2_segments_and_keeps_its_link_whole() {
    let app = app().await;
    register(&app, "artist-1", PHONE).await;
    consent(&app, "artist-1", "sms").await;
    let link = "https://planning.example.org/plannings/pl-1?onglet=details&vue=semaine";
    let body = "La répétition générale est déplacée à la grande salle, côté jardin : prévoyez \
                vos partitions annotées, votre pupitre et de quoi boire ; le régisseur vous \
                attendra à l'entrée des artistes dès 18 h, la générale commençant à 19 h précises.";

    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "Générale déplacée à l’Opéra", "body": body,
                     "action_url": link, "channels": ["sms"] }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let id = answer.json["notifications"][0]["id"].as_str().unwrap();
    app.wait_for_delivery(id, "sms", "sent", WAIT).await;

    let received = app
        .twilio
        .as_ref()
        .unwrap()
        .wait_for_messages(1, WAIT)
        .await;
    let text = &received[0].body;
    let length = sms_length(text);
    assert_eq!(length.encoding, SmsEncoding::Ucs2, "{text}");
    assert!(length.segments <= 2, "{} segments: {text}", length.segments);
    assert!(
        text.starts_with("Générale déplacée à l’Opéra\nLa répétition"),
        "{text}"
    );
    let expected_end = format!("…\n{link}");
    assert!(text.ends_with(&expected_end), "{text}");
}
