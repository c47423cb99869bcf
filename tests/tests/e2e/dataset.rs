//! The planning dataset replayed over HTTP: every person is told what the rules say, on every
//! channel that reaches them, in their own language and time zone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use clairon_tests::{dataset, spawn_app, spawn_app_configured, Options};
use serde_json::Value;

/// Who the rules tell about one event: artists, then coordinators who are not also artists;
/// reminders go to artists only.
fn told(event: &Value) -> Vec<String> {
    let ids = |key: &str| -> Vec<String> {
        let mut seen = HashSet::new();
        event[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .filter(|id| seen.insert(id.clone()))
            .collect()
    };
    let artists = ids("artist_ids");
    let coordinators: Vec<String> = ids("coordinator_ids")
        .into_iter()
        .filter(|c| !artists.contains(c))
        .collect();
    if event["event"] == "reminder" {
        artists
    } else {
        artists.into_iter().chain(coordinators).collect()
    }
}

#[tokio::test]
async fn replaying_the_dataset_over_http_notifies_everyone_on_every_reachable_channel() {
    // Arrange: the urgent notices' fallback chain off, so every channel is used at once (the
    // chain is `fallback.rs`'s).
    let app = spawn_app_configured(Options::default(), |s| s.planning_fallback = String::new())
        .await
        .unwrap();
    let data = dataset();
    let recipients: HashMap<String, Value> = data["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    let imported = app.import_dataset_recipients(&data).await;
    assert_eq!(imported.status, 200, "{}", imported.json);
    assert_eq!(imported.json["created"], recipients.len());

    // Act: every event, in order.
    let mut expected_per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    let mut notification_ids = Vec::new();
    for event in data["events"].as_array().unwrap() {
        let answer = app.post_event(event).await;
        assert_eq!(answer.status, 202, "{}: {}", event["event_id"], answer.json);
        let told = told(event);
        let created: Vec<&str> = answer.json["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["recipient_id"].as_str().unwrap())
            .collect();
        assert_eq!(created, told, "who is told about {}", event["event_id"]);
        for n in answer.json["notifications"].as_array().unwrap() {
            let recipient = &recipients[n["recipient_id"].as_str().unwrap()];
            let mut channels = vec!["in_app", "email"];
            if !recipient["telegram_chat_id"].is_null() {
                channels.push("telegram");
            }
            assert_eq!(n["channels"], serde_json::json!(channels), "{n}");
            notification_ids.push(n["id"].as_str().unwrap().to_owned());
        }
        for id in told {
            *expected_per_recipient.entry(id).or_default() += 1;
        }
    }

    // Assert: the totals the rules call for, through real servers.
    let total: usize = expected_per_recipient.values().sum();
    let with_telegram: usize = expected_per_recipient
        .iter()
        .filter(|(id, _)| !recipients[*id]["telegram_chat_id"].is_null())
        .map(|(_, n)| n)
        .sum();
    assert_eq!(notification_ids.len(), total);
    assert_eq!(total, 718, "the dataset's 175 events tell 718 people");
    let emails = app
        .smtp
        .as_ref()
        .unwrap()
        .wait_for_messages(total, Duration::from_secs(120))
        .await;
    let telegrams = app
        .telegram
        .as_ref()
        .unwrap()
        .wait_for_messages(with_telegram, Duration::from_secs(120))
        .await;
    assert_eq!(emails.len(), total);
    assert_eq!(telegrams.len(), with_telegram);
    assert!(
        app.telegram.as_ref().unwrap().rejected().is_empty(),
        "every Telegram request had the documented shape"
    );
    assert!(telegrams
        .iter()
        .all(|m| m.parse_mode.as_deref() == Some("HTML")));

    // Every delivery settles as sent, with a provider message id.
    for id in notification_ids.iter().step_by(37) {
        let details = app.wait_until_settled(id, Duration::from_secs(30)).await;
        for d in details["deliveries"].as_array().unwrap() {
            if d["status"] == "skipped" {
                assert_eq!(
                    d["channel"], "telegram",
                    "only Telegram may be unreachable: {d}"
                );
                assert_eq!(
                    d["last_error"],
                    "unreachable: recipient has no Telegram chat id"
                );
                continue;
            }
            assert_eq!(d["status"], "sent", "{d}");
            assert!(d["provider_message_id"].is_string());
            // Usually 1; a transient hiccup of the local SMTP sink on a loaded machine is
            // retried by the engine, which is its job, not a failure of this test.
            assert!(d["attempts"].as_u64().is_some_and(|n| n >= 1), "{d}");
        }
    }

    // Each inbox holds exactly what its owner was told, unread.
    for (id, expected) in &expected_per_recipient {
        let count = app
            .get(&format!(
                "/api/v1/recipients/{id}/notifications/unread-count"
            ))
            .await;
        assert_eq!(count.json["unread"], *expected, "unread count of {id}");
    }

    // The first event: artist-0037 (Paris, French) is told what, where, when and whom to call.
    let francois = emails
        .iter()
        .find(|e| {
            e.to[0].address == "francois.mercier.37@example.org"
                && e.subject
                    .as_deref()
                    .is_some_and(|s| s.contains("Les Misérables"))
        })
        .expect("François's assignment email");
    assert_eq!(francois.to[0].name.as_deref(), Some("François Mercier"));
    let text = francois.part("text/plain").unwrap();
    for needle in [
        "Répétition — Les Misérables",
        "Salle Pleyel",
        "252 Rue du Faubourg Saint-Honoré, 75008 Paris",
        "vendredi 26 mars 2027, 10 h",
        "Samir Nguyễn",
        "+15145550030",
        "samir.nguyen.30@example.org",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(francois.part("text/html").unwrap().contains("Salle Pleyel"));

    // The coordinator (Montréal) reads the same start in his own zone, and the artists' names.
    let samir = emails
        .iter()
        .find(|e| {
            e.to[0].address == "samir.nguyen.30@example.org"
                && e.subject
                    .as_deref()
                    .is_some_and(|s| s.contains("Les Misérables"))
        })
        .expect("the coordinator's summary");
    let summary = samir.part("text/plain").unwrap();
    assert!(summary.contains("vendredi 26 mars 2027, 5 h"), "{summary}");
    assert!(
        summary.contains("François Mercier") && summary.contains("Maëlle Gagnon"),
        "{summary}"
    );

    // English speakers read English.
    let english: Vec<&str> = recipients
        .values()
        .filter(|r| r["locale"] == "en")
        .map(|r| r["email"].as_str().unwrap())
        .collect();
    let english_mail = emails
        .iter()
        .find(|e| english.contains(&e.to[0].address.as_str()))
        .expect("an email to an English speaker");
    let english_text = english_mail.part("text/plain").unwrap();
    assert!(
        english_text.contains(", 2027, ")
            && (english_text.contains(" AM") || english_text.contains(" PM")),
        "{english_text}"
    );

    // Telegram carries the same facts.
    let to_francois: Vec<_> = telegrams
        .iter()
        .filter(|m| m.chat_id.to_string() == "100000037")
        .collect();
    assert!(
        to_francois
            .iter()
            .any(|m| m.visible_text.contains("Salle Pleyel")),
        "{to_francois:#?}"
    );
}

#[tokio::test]
async fn a_replayed_event_creates_nothing_new() {
    let app = spawn_app().await;
    let data = dataset();
    app.import_dataset_recipients(&data).await;
    let event = &data["events"][0];
    let first = app.post_event(event).await;
    assert_eq!(first.status, 202);
    let again = app.post_event(event).await;
    assert_eq!(again.status, 200, "{}", again.json);
    assert_eq!(again.json["replayed"], true);
    let ids = |a: &clairon_tests::Answer| -> Vec<String> {
        a.json["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&again), ids(&first));
    let artist = event["artist_ids"][0].as_str().unwrap();
    let count = app
        .get(&format!(
            "/api/v1/recipients/{artist}/notifications/unread-count"
        ))
        .await;
    assert_eq!(count.json["unread"], 1);
}

#[tokio::test]
async fn the_replay_command_delivers_every_notification_of_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let settings = clairon_bootstrap::Settings {
        database_url: format!("sqlite://{}", dir.path().join("replay.db").display()),
        email_outbox_dir: dir.path().join("outbox"),
        api_keys: "k".into(),
        // Every modification's email, at once: the report counts them after draining.
        coalesce_secs: 0,
        ..clairon_bootstrap::Settings::default()
    };
    let components = clairon_bootstrap::Components::build(&settings)
        .await
        .unwrap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/planning-spring-2027.json");
    let report = clairon_bootstrap::replay::replay(&components, &path)
        .await
        .unwrap();
    assert_eq!(report.events, 175);
    assert_eq!(report.notifications, 718);
    assert_eq!(
        report.deliveries[&("in_app".to_owned(), "sent".to_owned())],
        718
    );
    assert_eq!(
        report.deliveries[&("email".to_owned(), "sent".to_owned())],
        718
    );
    // No bot token configured: every Telegram delivery is skipped, with its reason.
    assert_eq!(
        report.deliveries[&("telegram".to_owned(), "skipped".to_owned())],
        718
    );
    let files = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(files, 718, "one .eml per email");

    let again = clairon_bootstrap::replay::replay(&components, &path)
        .await
        .unwrap();
    assert_eq!(
        again.replayed_events, 175,
        "a second replay creates nothing"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .count(),
        718
    );
}
