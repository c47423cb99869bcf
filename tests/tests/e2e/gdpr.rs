//! GDPR: exporting everything held about a recipient, and erasing it in one transaction with an
//! audit row that holds no personal data — on SQLite and PostgreSQL.

use std::time::Duration;

use clairon_tests::{spawn_app_with, Engine, Options, TestApp};
use diesel::{Connection, RunQueryDsl};
use reqwest::Method;
use rstest::rstest;
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(20);

/// Zoé (email and Telegram) with one sent notification and one scheduled next year; Liam with
/// one notification. Returns Zoé's notification ids (sent, scheduled).
async fn arrange(app: &TestApp) -> (String, String) {
    for (id, name, email, chat) in [
        ("artist-0001", "Zoé Tremblay", "zoe@example.org", 100000001),
        ("artist-0002", "Liam O'Brien", "liam@example.org", 100000002),
    ] {
        let answer = app
            .put(
                &format!("/api/v1/recipients/{id}"),
                &json!({"name": name, "email": email, "telegram_chat_id": chat, "locale": "fr"}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
    }
    let sent = app
        .post(
            "/api/v1/notifications",
            &json!({"recipient_ids": ["artist-0001", "artist-0002"], "title": "Répétition",
                    "body": "Salle B, 14 h"}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.json);
    let zoe_sent = sent.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_until_settled(&zoe_sent, PATIENCE).await;
    let later = app
        .post(
            "/api/v1/notifications",
            &json!({"recipient_ids": ["artist-0001"], "title": "Rappel", "body": "Demain",
                    "deliver_at": "2099-01-01T10:00:00Z"}),
        )
        .await;
    assert_eq!(later.status, 202, "{}", later.json);
    let zoe_later = later.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (zoe_sent, zoe_later)
}

fn engine_options(engine: Engine) -> Options {
    Options {
        engine,
        ..Options::default()
    }
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn an_export_holds_the_profile_every_notification_delivery_and_attempt(
    #[case] engine: Engine,
) {
    let Some(app) = spawn_app_with(engine_options(engine)).await else {
        return;
    };
    let (sent, later) = arrange(&app).await;

    let export = app.get("/api/v1/recipients/artist-0001/export").await;

    assert_eq!(export.status, 200, "{}", export.json);
    let doc = &export.json;
    assert_eq!(doc["recipient"]["id"], "artist-0001");
    assert_eq!(doc["recipient"]["email"], "zoe@example.org");
    assert_eq!(doc["recipient"]["telegram_chat_id"], "100000001");
    assert!(doc["exported_at"].is_string());
    let notifications = doc["notifications"].as_array().unwrap();
    let ids: Vec<&str> = notifications
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [sent.as_str(), later.as_str()],
        "both, scheduled included, oldest first"
    );
    assert!(
        notifications
            .iter()
            .all(|n| n["recipient_id"] == "artist-0001"),
        "nobody else's"
    );
    let email = notifications[0]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "email")
        .unwrap();
    assert_eq!(email["status"], "sent");
    assert_eq!(email["attempt_log"].as_array().unwrap().len(), 1, "{email}");

    let unknown = app.get("/api/v1/recipients/nobody/export").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.content_type, "application/problem+json");
}

fn count(database_url: &str, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<Count> = if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut conn = diesel::SqliteConnection::establish(path).unwrap();
        diesel::sql_query(sql).load(&mut conn).unwrap()
    } else {
        let mut conn = diesel::PgConnection::establish(database_url).unwrap();
        diesel::sql_query(sql).load(&mut conn).unwrap()
    };
    rows[0].n
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn an_erasure_removes_the_recipient_and_all_theirs_and_leaves_an_audit_row_without_them(
    #[case] engine: Engine,
) {
    let Some(app) = spawn_app_with(engine_options(engine)).await else {
        return;
    };
    let (sent, later) = arrange(&app).await;
    let (key_id, admin) = app.create_api_key("dpo", "admin").await;

    let erased = app
        .call_with_key(
            Some(&admin),
            Method::DELETE,
            "/api/v1/recipients/artist-0001",
            None,
        )
        .await;

    assert_eq!(erased.status, 204, "{}", erased.json);
    assert_eq!(app.get("/api/v1/recipients/artist-0001").await.status, 404);
    assert_eq!(
        app.get(&format!("/api/v1/notifications/{sent}"))
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/notifications/{later}"))
            .await
            .status,
        404
    );
    let url = &app.database_url;
    for (table, sql) in [
        ("notifications", "SELECT COUNT(*) AS n FROM notifications WHERE recipient_id = 'artist-0001'"),
        ("deliveries", "SELECT COUNT(*) AS n FROM deliveries WHERE recipient_id = 'artist-0001'"),
        (
            "delivery_attempts",
            "SELECT COUNT(*) AS n FROM delivery_attempts WHERE delivery_id NOT IN (SELECT id FROM deliveries)",
        ),
    ] {
        assert_eq!(count(url, sql), 0, "{table} of artist-0001 are gone");
    }
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) AS n FROM notifications WHERE recipient_id = 'artist-0002'"
        ),
        1,
        "Liam keeps his"
    );
    assert_eq!(
        count(
            url,
            &format!(
                "SELECT COUNT(*) AS n FROM erasures WHERE actor = 'api-key:{key_id}' \
                 AND notifications = 2 AND deliveries = 6 AND attempts >= 2"
            )
        ),
        1,
        "one audit row: who, and how much"
    );
    assert_eq!(
        count(
            url,
            "SELECT COUNT(*) AS n FROM erasures WHERE actor LIKE '%artist%' \
             OR CAST(id AS TEXT) LIKE '%artist%'"
        ),
        0,
        "the audit row does not name the recipient"
    );

    let again = app
        .call(Method::DELETE, "/api/v1/recipients/artist-0001", None)
        .await;
    assert_eq!(again.status, 404, "{}", again.json);
    assert_eq!(again.content_type, "application/problem+json");
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn an_erasure_waits_for_a_delivery_being_sent_right_now(#[case] engine: Engine) {
    let Some(app) = spawn_app_with(engine_options(engine)).await else {
        return;
    };
    arrange(&app).await;
    // A dispatcher has just claimed one of Zoé's deliveries (lease one minute from now).
    let claim = "UPDATE deliveries SET status = 'sending', lease_expires_at = (now() AT TIME ZONE 'utc') + INTERVAL '1 minute' \
                 WHERE recipient_id = 'artist-0001' AND status = 'pending'";
    let sqlite_claim = "UPDATE deliveries SET status = 'sending', lease_expires_at = datetime('now', '+1 minute') \
                        WHERE recipient_id = 'artist-0001' AND status = 'pending'";
    let url = app.database_url.clone();
    let claimed = if let Some(path) = url.strip_prefix("sqlite://") {
        let mut conn = diesel::SqliteConnection::establish(path).unwrap();
        diesel::sql_query(sqlite_claim).execute(&mut conn).unwrap()
    } else {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        diesel::sql_query(claim).execute(&mut conn).unwrap()
    };
    assert!(
        claimed > 0,
        "the scheduled notification's deliveries are pending"
    );

    let refused = app
        .call(Method::DELETE, "/api/v1/recipients/artist-0001", None)
        .await;

    assert_eq!(refused.status, 409, "{}", refused.json);
    assert_eq!(refused.content_type, "application/problem+json");
    assert_eq!(
        app.get("/api/v1/recipients/artist-0001").await.status,
        200,
        "nothing was erased"
    );
    assert_eq!(
        count(&url, "SELECT COUNT(*) AS n FROM erasures"),
        0,
        "and nothing audited"
    );
}
