use clairon_tests::{spawn_app, TestApp, API_KEY};
use serde_json::json;

#[tokio::test]
async fn health_answers_without_an_api_key_and_reports_the_database() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/health", app.address))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert!(body["version"].is_string());
}

#[tokio::test]
async fn api_routes_refuse_a_missing_or_unknown_api_key_with_a_problem() {
    let app = spawn_app().await;
    for key in [None, Some("wrong-key")] {
        let mut request = app
            .client
            .get(format!("{}/api/v1/recipients/artist-0001", app.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "key {key:?}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
    }
    let ok = app
        .client
        .get(format!("{}/api/v1/recipients/nobody", app.address))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 404, "a valid key reaches the route");
}

async fn put_zoe(app: &TestApp, email: &str) -> clairon_tests::Answer {
    app.put(
        "/api/v1/recipients/artist-0001",
        &json!({
            "name": "Zoé Tremblay",
            "email": email,
            "telegram_chat_id": 100000001,
            "phone": "+1 514 555 0001",
            "locale": "fr-CA",
            "timezone": "America/Montreal"
        }),
    )
    .await
}

#[tokio::test]
async fn a_recipient_is_created_then_updated_in_place() {
    let app = spawn_app().await;
    let created = put_zoe(&app, "zoe@example.org").await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json["telegram_chat_id"], "100000001");
    assert_eq!(created.json["phone"], "+15145550001");
    assert_eq!(created.json["locale"], "fr");

    let updated = put_zoe(&app, "zoe.tremblay@example.org").await;
    assert_eq!(updated.status, 200);
    let fetched = app.get("/api/v1/recipients/artist-0001").await;
    assert_eq!(fetched.json["email"], "zoe.tremblay@example.org");
    assert_eq!(fetched.json["timezone"], "America/Montreal");
}

#[tokio::test]
async fn an_import_with_one_invalid_recipient_writes_none_of_them() {
    let app = spawn_app().await;
    let answer = app
        .post(
            "/api/v1/recipients/import",
            &json!({ "recipients": [
                { "id": "artist-0001", "name": "Zoé Tremblay", "email": "zoe@example.org" },
                { "id": "artist-0002", "name": "Liam", "timezone": "Mars/Olympus" }
            ]}),
        )
        .await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.json["errors"][0]["field"], "recipients[1].timezone");
    assert_eq!(app.get("/api/v1/recipients/artist-0001").await.status, 404);
}
