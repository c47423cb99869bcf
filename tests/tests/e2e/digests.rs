//! Digests (issue 13): a daily email digest in the recipient's zone lists the notifications
//! batched in its window, leaves out the one read in the inbox meanwhile, settles the batched
//! deliveries `sent` with the digest's provider id; a run with nothing due sends nothing; a
//! `critical` notification is not batched but sent at once.
//!
//! The app's clock is the system's, so the window's end is brought forward in the database
//! (as an operator with `sqlite3`/`psql` would) instead of waiting for 08:00 Paris.

use std::time::Duration;

use clairon_tests::{spawn_app, TestApp};
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
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
