//! Digests (issue 13): a daily email digest in the recipient's zone lists the notifications
//! batched in its window, leaves out the one read in the inbox meanwhile, settles the batched
//! deliveries `sent` with the digest's provider id; a run with nothing due sends nothing; a
//! `critical` notification is not batched but sent at once.
//!
//! The first test runs on the system's clock, so the window's end is brought forward in the
//! database (as an operator with `sqlite3`/`psql` would) instead of waiting for 08:00 Paris; the
//! DST one runs on a settable clock ([`clairon_tests::spawn_app_at`]) put on the night
//! Montreal springs forward.

use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use clairon_tests::{spawn_app, spawn_app_at, Engine, Options, SettableClock, TestApp};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use rstest::rstest;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn sql(app: &TestApp, statement: &str) {
    let url = &app.database_url;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut c = SqliteConnection::establish(path).unwrap();
        diesel::sql_query(statement).execute(&mut c).unwrap();
    } else {
        let mut c = PgConnection::establish(url).unwrap();
        diesel::sql_query(statement).execute(&mut c).unwrap();
    }
}

async fn notify(app: &TestApp, title: &str, priority: &str) -> String {
    let answer = app
        .post(
            "/api/v1/notifications",
            &json!({
                "recipient_ids": ["artist-1"], "title": title, "body": "Salle B, 19 h.",
                "event_type": "planning.modified", "channels": ["in_app", "email"],
                "priority": priority
            }),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn email_delivery(app: &TestApp, id: &str) -> Value {
    let answer = app.get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["deliveries"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["channel"] == "email"))
        .cloned()
        .unwrap_or_else(|| panic!("no email delivery: {}", answer.json))
}

async fn run_digests(app: &TestApp) -> Value {
    let answer = app.post("/api/v1/admin/jobs/digests/run", &json!({})).await;
    assert!((200..300).contains(&answer.status), "{}", answer.json);
    answer.json
}

#[tokio::test]
async fn a_daily_email_digest_lists_the_unread_notifications_of_its_window_in_one_email() {
    let app = spawn_app().await;
    let answer = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({"name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr",
                    "timezone": "Europe/Paris"}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let document = json!({
        "channels": {}, "event_types": {}, "quiet_hours": null,
        "digest": {"email": {"frequency": "daily", "at": "08:00"}}
    });
    let put = app
        .put("/api/v1/recipients/artist-1/preferences", &document)
        .await;
    assert_eq!(put.status, 200, "{}", put.json);
    assert_eq!(
        app.get("/api/v1/recipients/artist-1/preferences")
            .await
            .json,
        document,
        "the digest is shown back"
    );

    // Three notifications batched, one read in the inbox before the digest goes out.
    let first = notify(&app, "Répétition avancée", "normal").await;
    let second = notify(&app, "Costumes à essayer", "normal").await;
    let third = notify(&app, "Concert complet", "normal").await;
    for id in [&first, &second, &third] {
        assert_eq!(email_delivery(&app, id).await["status"], "batched");
    }
    let read = app
        .post(&format!("/api/v1/notifications/{second}/read"), &json!({}))
        .await;
    assert_eq!(read.status, 200, "{}", read.json);

    // A critical one is not batched: it goes out at once, on its own.
    let critical = notify(&app, "Concert annulé", "critical").await;
    let sink = app.smtp.as_ref().unwrap();
    let first_emails = sink.wait_for_messages(1, WAIT).await;
    assert_eq!(first_emails.len(), 1);
    assert_ne!(email_delivery(&app, &critical).await["status"], "batched");

    // Before the window ends, a run sends nothing.
    let early = run_digests(&app).await;
    assert_eq!(sink.messages().len(), 1, "nothing due yet: {early}");

    // The window ends (brought forward); the job sends one email listing two.
    sql(
        &app,
        "UPDATE deliveries SET next_attempt_at = '2000-01-01 00:00:00' WHERE status = 'batched'",
    );
    let run = run_digests(&app).await;
    let emails = sink.wait_for_messages(2, WAIT).await;
    assert_eq!(emails.len(), 2, "one digest: {run}");
    let digest = &emails[1];
    let subject = digest.subject.clone().unwrap_or_default();
    assert!(subject.contains("2 notifications"), "{subject}");
    let text: String = digest.parts.iter().map(|(_, body)| body.clone()).collect();
    assert!(text.contains("Répétition avancée"), "{text}");
    assert!(text.contains("Concert complet"), "{text}");
    assert!(
        !text.contains("Costumes à essayer"),
        "the read one is left out: {text}"
    );

    for id in [&first, &third] {
        let delivery = email_delivery(&app, id).await;
        assert_eq!(delivery["status"], "sent", "{delivery}");
    }
    let skipped = email_delivery(&app, &second).await;
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert_eq!(skipped["reason"], "read before the digest", "{skipped}");

    // The window is settled: another run sends nothing (an empty digest is not sent).
    run_digests(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 2);
}

async fn digest_recipient(app: &TestApp, zone: &str) {
    let answer = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({"name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr",
                    "timezone": zone}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let put = app
        .put(
            "/api/v1/recipients/artist-1/preferences",
            &json!({
                "channels": {}, "event_types": {}, "quiet_hours": null,
                "digest": {"email": {"frequency": "daily", "at": "08:00"}}
            }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.json);
}

/// America/Montreal springs forward on Sunday 2027-03-14 at 02:00 (EST → EDT): the daily 08:00
/// window from Saturday 08:00 EST (13:00 UTC) to Sunday 08:00 EDT (12:00 UTC) lasts 23 hours.
#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn a_daily_email_digest_across_the_spring_forward_night_goes_out_at_eight_local_listing_the_two_unread(
    #[case] engine: Engine,
) {
    // Saturday 18:00 in Montreal (EST, UTC-5).
    let clock = SettableClock::at(Utc.with_ymd_and_hms(2027, 3, 13, 23, 0, 0).unwrap());
    let Some(app) = spawn_app_at(
        Options {
            engine,
            telegram: false,
            ..Options::default()
        },
        clock.clone(),
    )
    .await
    else {
        return;
    };
    digest_recipient(&app, "America/Montreal").await;
    let first = notify(&app, "Répétition avancée", "normal").await;
    let second = notify(&app, "Costumes à essayer", "normal").await;
    let third = notify(&app, "Concert complet", "normal").await;
    for id in [&first, &second, &third] {
        assert_eq!(email_delivery(&app, id).await["status"], "batched");
    }
    // 01:00 EST, before the clocks jump: one is read in the inbox.
    clock.set(Utc.with_ymd_and_hms(2027, 3, 14, 6, 0, 0).unwrap());
    let read = app
        .post(&format!("/api/v1/notifications/{second}/read"), &json!({}))
        .await;
    assert_eq!(read.status, 200, "{}", read.json);
    let sink = app.smtp.as_ref().unwrap();

    // 07:59 EDT (11:59 UTC): the window has not ended yet.
    clock.set(Utc.with_ymd_and_hms(2027, 3, 14, 11, 59, 0).unwrap());
    let early = run_digests(&app).await;
    assert_eq!(early["stats"]["sent"], 0, "{early}");
    assert_eq!(sink.messages().len(), 0, "{early}");

    // 08:00:01 EDT (12:00:01 UTC), an hour before 08:00 EST would be: the digest goes out.
    clock.set(Utc.with_ymd_and_hms(2027, 3, 14, 12, 0, 1).unwrap());
    let run = run_digests(&app).await;
    let emails = sink.wait_for_messages(1, WAIT).await;
    assert_eq!(emails.len(), 1, "one digest: {run}");
    let digest = &emails[0];
    let subject = digest.subject.clone().unwrap_or_default();
    assert!(subject.contains("2 notifications"), "{subject}");
    let text: String = digest.parts.iter().map(|(_, body)| body.clone()).collect();
    assert!(text.contains("Répétition avancée"), "{text}");
    assert!(text.contains("Concert complet"), "{text}");
    assert!(
        !text.contains("Costumes à essayer"),
        "the read one is left out: {text}"
    );
    assert!(
        text.contains("dimanche 14 mars 2027, 8 h"),
        "the window ends at 08:00 local time: {text}"
    );
    assert!(
        text.contains("samedi 13 mars 2027, 18 h"),
        "items at their local time: {text}"
    );
    for id in [&first, &third] {
        let delivery = email_delivery(&app, id).await;
        assert_eq!(delivery["status"], "sent", "{delivery}");
    }
    assert_eq!(email_delivery(&app, &second).await["status"], "skipped");
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn batched_deliveries_count_as_scheduled_for_later_in_the_metrics_the_stats_and_the_dashboard(
) {
    let app = spawn_app().await;
    digest_recipient(&app, "Europe/Paris").await;
    for title in ["Répétition avancée", "Costumes à essayer"] {
        let id = notify(&app, title, "normal").await;
        assert_eq!(email_delivery(&app, &id).await["status"], "batched");
    }

    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stats = app.get("/api/v1/admin/stats").await;
    let dashboard = app
        .client
        .get(format!("{}/admin?lang=en", app.address))
        .bearer_auth(clairon_tests::API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(
        sample(
            &metrics,
            r#"clairon_queue_depth{channel="email",status="batched"}"#
        ),
        Some(2.0),
        "{metrics}"
    );
    for channel in [
        "in_app", "email", "telegram", "slack", "webhook", "sms", "whatsapp", "web_push",
    ] {
        for status in ["pending", "retrying", "sending", "batched"] {
            let series = format!(r#"clairon_queue_depth{{channel="{channel}",status="{status}"}}"#);
            assert!(sample(&metrics, &series).is_some(), "{series} missing");
        }
        let row = format!(r#"<tr data-channel="{channel}">"#);
        assert_eq!(
            dashboard.matches(&row).count(),
            2,
            "{channel}: a deliveries row and a queue row"
        );
    }
    assert_eq!(stats.status, 200, "{}", stats.json);
    let email = stats.json["deliveries"]["by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "email")
        .cloned()
        .unwrap();
    assert_eq!(email["by_status"]["batched"], 2, "{email}");
    assert_eq!(
        stats.json["queue"]["scheduled_later"]["email"], 2,
        "{}",
        stats.json
    );
    assert!(
        stats.json["queue"]["oldest_due_age_seconds"]["email"].is_null(),
        "nothing of the email queue is due: {}",
        stats.json
    );
    let email_queue = dashboard
        .split(r#"<table id="queue-split">"#)
        .nth(1)
        .and_then(|t| t.split(r#"<tr data-channel="email">"#).nth(1))
        .and_then(|t| t.split("</tr>").next())
        .unwrap_or_default()
        .to_owned();
    assert!(
        email_queue.contains(r#"<td class="num due">0</td>"#),
        "batched is not due now: {email_queue}"
    );
    assert!(
        email_queue.contains(r#"<td class="num later">2 "#),
        "batched is for later: {email_queue}"
    );
}
