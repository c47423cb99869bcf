//! Recipients' preferences and consents (issue 11): stored and served through the API key and
//! `/api/v1/me` routes, and their effect on the deliveries a notification gets — opted out,
//! overridden by `critical`, postponed by quiet hours across a DST change, consent required,
//! granted and revoked — plus the 422s naming each field and the GDPR export and erasure.

use std::time::Duration;

use chrono::{SecondsFormat, TimeDelta, Utc};
use clairon_tests::{spawn_app, spawn_app_configured, Engine, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

async fn register(app: &TestApp, id: &str) {
    let answer = app
        .put(
            &format!("/api/v1/recipients/{id}"),
            &json!({
                "name": "Zoé Tremblay", "email": format!("{id}@example.org"),
                "telegram_chat_id": "100000001", "locale": "fr", "timezone": "America/Montreal"
            }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
}

async fn set_preferences(app: &TestApp, id: &str, document: Value) {
    let answer = app
        .put(&format!("/api/v1/recipients/{id}/preferences"), &document)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.json);
}

/// Notifies `id` on in-app and email; returns the answer's notification.
async fn notify(app: &TestApp, id: &str, extra: Value) -> Value {
    let mut body = json!({
        "recipient_ids": [id], "title": "Répétition déplacée", "body": "Salle B, 19 h.",
        "event_type": "planning.modified", "channels": ["in_app", "email"]
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let answer = app.post("/api/v1/notifications", &body).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    answer.json["notifications"][0].clone()
}

fn delivery<'a>(details: &'a Value, channel: &str) -> &'a Value {
    details["deliveries"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["channel"] == channel))
        .unwrap_or_else(|| panic!("no {channel} delivery: {details}"))
}

async fn details(app: &TestApp, id: &str) -> Value {
    let answer = app.get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json
}

#[tokio::test]
async fn someone_who_never_set_preferences_reads_the_defaults_and_a_put_replaces_them_whole() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    let read = app.get("/api/v1/recipients/artist-1/preferences").await;
    assert_eq!(read.status, 200, "{}", read.json);
    assert_eq!(
        read.json,
        json!({"channels": {}, "event_types": {}, "quiet_hours": null})
    );
    let document = json!({
        "channels": {"email": true, "telegram": false},
        "event_types": {"planning.modified": {"email": false}, "project.*": {"telegram": false}},
        "quiet_hours": {"start": "22:00", "end": "08:00"}
    });
    set_preferences(&app, "artist-1", document.clone()).await;
    assert_eq!(
        app.get("/api/v1/recipients/artist-1/preferences")
            .await
            .json,
        document
    );
    set_preferences(&app, "artist-1", json!({"channels": {"telegram": false}})).await;
    assert_eq!(
        app.get("/api/v1/recipients/artist-1/preferences")
            .await
            .json,
        json!({"channels": {"telegram": false}, "event_types": {}, "quiet_hours": null}),
        "PUT replaces the document whole"
    );
    assert_eq!(
        app.get("/api/v1/recipients/nobody/preferences")
            .await
            .status,
        404
    );
    assert_eq!(
        app.put("/api/v1/recipients/nobody/preferences", &json!({}))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_bad_document_is_a_422_naming_each_field_and_nothing_is_written() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    let answer = app
        .put(
            "/api/v1/recipients/artist-1/preferences",
            &json!({
                "channels": {"in_app": false, "fax": true, "email": "no"},
                "event_types": {"Planning": {"email": false}, "project.*": {"pigeon": false}},
                "quiet_hours": {"start": "25:00", "end": "08:00"},
                "colour": "blue"
            }),
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.json);
    assert_eq!(answer.content_type, "application/problem+json");
    let mut fields: Vec<&str> = answer.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        vec![
            "channels.email",
            "channels.fax",
            "channels.in_app",
            "colour",
            "event_types.Planning",
            "event_types.project.*.pigeon",
            "quiet_hours.start"
        ]
    );
    assert_eq!(
        app.get("/api/v1/recipients/artist-1/preferences")
            .await
            .json,
        json!({"channels": {}, "event_types": {}, "quiet_hours": null}),
        "nothing was written"
    );
    let consent = app
        .post(
            "/api/v1/recipients/artist-1/consents",
            &json!({"channel": "fax", "granted": true, "source": " "}),
        )
        .await;
    assert_eq!(consent.status, 422, "{}", consent.json);
    let mut fields: Vec<&str> = consent.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["channel", "source"]);
}

#[tokio::test]
async fn an_opt_out_skips_the_email_naming_the_entry_and_critical_overrides_it() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    set_preferences(
        &app,
        "artist-1",
        json!({"event_types": {"custom": {"email": false}}}),
    )
    .await;

    let opted_out = notify(&app, "artist-1", json!({})).await;
    assert_eq!(opted_out["channels"], json!(["in_app"]));
    assert_eq!(
        opted_out["skipped"],
        json!([{"channel": "email", "reason": "opted_out: event_types.custom.email"}])
    );
    let read = details(&app, opted_out["id"].as_str().unwrap()).await;
    let email = delivery(&read, "email");
    assert_eq!(email["status"], "skipped");
    assert_eq!(email["reason"], "opted_out: event_types.custom.email");
    assert!(email["next_attempt_at"].is_null(), "{email}");

    let critical = notify(&app, "artist-1", json!({"priority": "critical"})).await;
    assert_eq!(critical["channels"], json!(["in_app", "email"]));
    assert_eq!(critical["skipped"], json!([]));
    app.wait_for_delivery(
        critical["id"].as_str().unwrap(),
        "email",
        "sent",
        Duration::from_secs(10),
    )
    .await;
}

fn cancellation(event_id: &str, starts_in: TimeDelta) -> Value {
    let now = Utc::now();
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({
        "event_id": event_id, "planning_id": format!("pl-{event_id}"), "event": "cancelled",
        "occurred_at": at(now),
        "planning": {
            "title": "Carmen",
            "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O, Montréal" },
            "starts_at": at(now + starts_in), "ends_at": at(now + starts_in + TimeDelta::hours(2)),
            "timezone": "America/Montreal",
            "contact": { "name": "Samir", "phone": "+15145550030", "email": "samir@example.org" }
        },
        "artist_ids": ["artist-1"], "coordinator_ids": []
    })
}

#[tokio::test]
async fn a_cancellation_less_than_48_hours_ahead_is_critical_and_overrides_an_opt_out() {
    // Every channel at once: the urgent notices' fallback chain off.
    let app = spawn_app_configured(Options::default(), |s| s.planning_fallback = String::new())
        .await
        .unwrap();
    register(&app, "artist-1").await;
    set_preferences(
        &app,
        "artist-1",
        json!({"event_types": {"planning.*": {"email": false}}}),
    )
    .await;

    let far = app
        .post_event(&cancellation("evt-far", TimeDelta::days(30)))
        .await;
    assert_eq!(far.status, 202, "{}", far.json);
    let far = &far.json["notifications"][0];
    let read = details(&app, far["id"].as_str().unwrap()).await;
    assert_eq!(read["priority"], "high");
    assert_eq!(
        delivery(&read, "email")["reason"],
        "opted_out: event_types.planning.*.email"
    );

    let near = app
        .post_event(&cancellation("evt-near", TimeDelta::hours(20)))
        .await;
    assert_eq!(near.status, 202, "{}", near.json);
    let near = &near.json["notifications"][0];
    let read = details(&app, near["id"].as_str().unwrap()).await;
    assert_eq!(read["priority"], "critical");
    assert!(
        near["channels"]
            .as_array()
            .unwrap()
            .contains(&json!("email")),
        "critical overrides the opt-out: {near}"
    );
}

#[tokio::test]
async fn quiet_hours_postpone_an_email_to_their_end_across_a_dst_change() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    set_preferences(
        &app,
        "artist-1",
        json!({"quiet_hours": {"start": "22:00", "end": "08:00"}}),
    )
    .await;
    // Saturday 13 March 2027, 22:30 in Montréal (EST, UTC−5); the clocks spring forward that
    // night, so the quiet hours end at 08:00 EDT (UTC−4), 12:00 UTC — not 13:00.
    let created = notify(
        &app,
        "artist-1",
        json!({"deliver_at": "2027-03-14T03:30:00Z"}),
    )
    .await;
    assert_eq!(
        created["channels"],
        json!(["in_app", "email"]),
        "postponed, not skipped"
    );
    let read = details(&app, created["id"].as_str().unwrap()).await;
    let email = delivery(&read, "email");
    assert_eq!(email["status"], "pending");
    assert_eq!(email["next_attempt_at"], "2027-03-14T12:00:00Z", "{email}");
    assert!(email["reason"].is_null());
    let in_app = delivery(&read, "in_app");
    assert_eq!(
        in_app["next_attempt_at"], "2027-03-14T03:30:00Z",
        "in-app is never postponed: due with its notification"
    );
}

#[tokio::test]
async fn a_consent_required_channel_is_skipped_until_granted_and_a_revocation_cancels_what_waits() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.consent_required = "email".into();
    })
    .await
    .expect("SQLite");
    register(&app, "artist-1").await;

    let before = notify(&app, "artist-1", json!({})).await;
    assert_eq!(
        before["skipped"],
        json!([{"channel": "email", "reason": "no_consent: email"}])
    );

    let granted = app
        .post(
            "/api/v1/recipients/artist-1/consents",
            &json!({"channel": "email", "granted": true, "source": "signup-form", "wording": "I agree to receive emails."}),
        )
        .await;
    assert_eq!(granted.status, 201, "{}", granted.json);
    assert_eq!(granted.json["channel"], "email");
    assert_eq!(granted.json["granted"], true);
    assert_eq!(granted.json["source"], "signup-form");
    assert!(granted.json["recorded_at"].is_string());

    // Scheduled far ahead, so it is still pending when the consent is withdrawn.
    let waiting = notify(
        &app,
        "artist-1",
        json!({"deliver_at": "2030-01-01T12:00:00Z"}),
    )
    .await;
    assert_eq!(waiting["channels"], json!(["in_app", "email"]));

    let revoked = app
        .post(
            "/api/v1/recipients/artist-1/consents",
            &json!({"channel": "email", "granted": false, "source": "support-call"}),
        )
        .await;
    assert_eq!(revoked.status, 201, "{}", revoked.json);
    let read = details(&app, waiting["id"].as_str().unwrap()).await;
    let email = delivery(&read, "email");
    assert_eq!(email["status"], "cancelled");
    assert_eq!(email["reason"], "consent_revoked");
    assert_eq!(
        delivery(&read, "in_app")["status"],
        "pending",
        "only that channel is cancelled"
    );

    let history = app.get("/api/v1/recipients/artist-1/consents").await;
    assert_eq!(history.status, 200, "{}", history.json);
    let granted: Vec<&Value> = history.json["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["granted"])
        .collect();
    assert_eq!(granted, vec![&json!(false), &json!(true)], "newest first");

    let after = notify(&app, "artist-1", json!({})).await;
    assert_eq!(
        after["skipped"],
        json!([{"channel": "email", "reason": "no_consent: email"}]),
        "the latest record decides"
    );
}

#[tokio::test]
async fn a_recipient_reads_and_writes_their_own_preferences_and_consents_with_their_token() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    let token = app.token_for("artist-1").await;
    let response = app
        .client
        .put(format!("{}/api/v1/me/preferences", app.address))
        .bearer_auth(&token)
        .json(&json!({"channels": {"telegram": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mine = app
        .call_as(&token, Method::GET, "/api/v1/me/preferences")
        .await;
    assert_eq!(mine.json["channels"], json!({"telegram": false}));
    assert_eq!(
        app.get("/api/v1/recipients/artist-1/preferences")
            .await
            .json,
        mine.json,
        "the API key sees the same document"
    );
    let refused = app
        .client
        .put(format!("{}/api/v1/me/preferences", app.address))
        .bearer_auth(&token)
        .json(&json!({"channels": {"in_app": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "channels.in_app");

    let recorded = app
        .client
        .post(format!("{}/api/v1/me/consents", app.address))
        .bearer_auth(&token)
        .json(&json!({"channel": "sms", "granted": true, "source": "inbox", "wording": "I agree to receive text messages."}))
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status(), 201);
    let history = app
        .call_as(&token, Method::GET, "/api/v1/me/consents")
        .await;
    assert_eq!(history.json["consents"][0]["channel"], "sms");
    assert_eq!(
        app.call(Method::GET, "/api/v1/me/preferences", None)
            .await
            .status,
        401,
        "an API key is not a recipient token"
    );
}

#[tokio::test]
async fn the_export_holds_preferences_and_consents_and_the_erasure_removes_them() {
    let app = spawn_app().await;
    register(&app, "artist-1").await;
    set_preferences(&app, "artist-1", json!({"channels": {"telegram": false}})).await;
    let consent = app
        .post(
            "/api/v1/recipients/artist-1/consents",
            &json!({"channel": "sms", "granted": true, "source": "signup-form"}),
        )
        .await;
    assert_eq!(consent.status, 201, "{}", consent.json);
    let export = app.get("/api/v1/recipients/artist-1/export").await;
    assert_eq!(export.status, 200, "{}", export.json);
    assert_eq!(
        export.json["preferences"]["channels"],
        json!({"telegram": false})
    );
    assert!(export.json["preferences_updated_at"].is_string());
    assert_eq!(export.json["consents"][0]["channel"], "sms");

    let erased = app
        .call(Method::DELETE, "/api/v1/recipients/artist-1", None)
        .await;
    assert_eq!(erased.status, 204, "{}", erased.json);
    // The same id registered again starts from nothing.
    register(&app, "artist-1").await;
    assert_eq!(
        app.get("/api/v1/recipients/artist-1/preferences")
            .await
            .json,
        json!({"channels": {}, "event_types": {}, "quiet_hours": null})
    );
    assert_eq!(
        app.get("/api/v1/recipients/artist-1/consents").await.json["consents"],
        json!([])
    );
}

#[tokio::test]
async fn on_postgresql_an_opt_out_is_skipped_and_a_revocation_cancels_the_waiting_delivery() {
    let Some(app) = spawn_app_configured(
        Options {
            engine: Engine::Postgres,
            ..Options::default()
        },
        |s| s.consent_required = "telegram".into(),
    )
    .await
    else {
        return;
    };
    register(&app, "artist-1").await;
    set_preferences(&app, "artist-1", json!({"channels": {"email": false}})).await;
    let granted = app
        .post(
            "/api/v1/recipients/artist-1/consents",
            &json!({"channel": "telegram", "granted": true, "source": "signup-form"}),
        )
        .await;
    assert_eq!(granted.status, 201, "{}", granted.json);
    let created = notify(
        &app,
        "artist-1",
        json!({"channels": ["in_app", "email", "telegram"], "deliver_at": "2030-01-01T12:00:00Z"}),
    )
    .await;
    assert_eq!(
        created["skipped"],
        json!([{"channel": "email", "reason": "opted_out: channels.email"}])
    );
    let revoked = app
        .post(
            "/api/v1/recipients/artist-1/consents",
            &json!({"channel": "telegram", "granted": false, "source": "support-call"}),
        )
        .await;
    assert_eq!(revoked.status, 201, "{}", revoked.json);
    let read = details(&app, created["id"].as_str().unwrap()).await;
    assert_eq!(delivery(&read, "telegram")["status"], "cancelled");
    assert_eq!(delivery(&read, "telegram")["reason"], "consent_revoked");
}
