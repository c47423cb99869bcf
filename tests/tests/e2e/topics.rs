//! Topics: named groups of recipients, replaced, added to, removed from and read over HTTP;
//! erasure takes a recipient out of them and the GDPR export lists them.

use clairon_tests::{spawn_app, TestApp};
use serde_json::json;

async fn register(app: &TestApp, ids: &[&str]) {
    for id in ids {
        let answer = app
            .put(
                &format!("/api/v1/recipients/{id}"),
                &json!({ "name": format!("Person {id}") }),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
    }
}

#[tokio::test]
async fn a_topic_is_created_replaced_added_to_and_removed_from() {
    let app = spawn_app().await;
    register(&app, &["a-1", "a-2", "a-3"]).await;

    let created = app
        .put(
            "/api/v1/topics/project-7-owners",
            &json!({ "name": "Carmen owners", "recipient_ids": ["a-2", "a-1", "a-2"] }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["key"], "project-7-owners");
    assert_eq!(created.json["recipient_ids"], json!(["a-1", "a-2"]));

    let replaced = app
        .put(
            "/api/v1/topics/project-7-owners",
            &json!({ "name": "Owners", "recipient_ids": ["a-3"] }),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(replaced.json["name"], "Owners");
    assert_eq!(replaced.json["recipient_ids"], json!(["a-3"]));

    let added = app
        .post(
            "/api/v1/topics/project-7-owners/subscribers",
            &json!({ "recipient_ids": ["a-1", "a-3"] }),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.json);
    assert_eq!(added.json["recipient_ids"], json!(["a-1", "a-3"]));

    let removed = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/topics/project-7-owners/subscribers/a-3",
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    let read = app.get("/api/v1/topics/project-7-owners").await;
    assert_eq!(read.status, 200, "{}", read.json);
    assert_eq!(read.json["recipient_ids"], json!(["a-1"]));
}

#[tokio::test]
async fn unknown_recipients_are_listed_and_nothing_is_written() {
    let app = spawn_app().await;
    register(&app, &["a-1"]).await;
    let answer = app
        .put(
            "/api/v1/topics/admins",
            &json!({ "name": "Admins", "recipient_ids": ["a-1", "ghost-2", "ghost-1"] }),
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.json);
    assert_eq!(answer.json["errors"][0]["field"], "recipient_ids");
    let message = answer.json["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("ghost-1, ghost-2"), "{message}");
    assert_eq!(app.get("/api/v1/topics/admins").await.status, 404);
}

#[tokio::test]
async fn a_bad_key_is_a_422_naming_key_and_an_unknown_topic_a_404() {
    let app = spawn_app().await;
    let bad = app
        .put(
            "/api/v1/topics/Admins",
            &json!({ "name": "A", "recipient_ids": [] }),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.json);
    assert_eq!(bad.json["errors"][0]["field"], "key");
    assert_eq!(app.get("/api/v1/topics/nobody").await.status, 404);
    let add = app
        .post(
            "/api/v1/topics/nobody/subscribers",
            &json!({ "recipient_ids": ["x"] }),
        )
        .await;
    assert!(add.status == 404 || add.status == 422, "{}", add.json);
    let delete = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/topics/nobody/subscribers/x",
            None,
        )
        .await;
    assert_eq!(delete.status, 404, "{}", delete.json);
}

#[tokio::test]
async fn erasure_takes_a_recipient_out_of_their_topics_and_the_export_lists_them() {
    let app = spawn_app().await;
    register(&app, &["a-1", "a-2"]).await;
    for key in ["admins", "regie"] {
        let answer = app
            .put(
                &format!("/api/v1/topics/{key}"),
                &json!({ "name": key, "recipient_ids": ["a-1", "a-2"] }),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
    }
    let export = app.get("/api/v1/recipients/a-1/export").await;
    assert_eq!(export.status, 200, "{}", export.json);
    assert_eq!(export.json["topics"], json!(["admins", "regie"]));

    let erased = app
        .call(reqwest::Method::DELETE, "/api/v1/recipients/a-1", None)
        .await;
    assert_eq!(erased.status, 204, "{}", erased.json);
    let topic = app.get("/api/v1/topics/admins").await;
    assert_eq!(topic.json["recipient_ids"], json!(["a-2"]));
}
