//! Input no engine should store, and requests that are not what they claim: a NUL character
//! anywhere in a JSON body (PostgreSQL cannot store one; SQLite would) is a 422 naming each
//! place, on both engines; a body without `Content-Type` is a 415; `.` and `..` are no ids.
//! Every refusal writes nothing.

use clairon_tests::{spawn_app, spawn_app_with, Engine, Options, TestApp, API_KEY};
use rstest::rstest;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::database::number;

fn fields(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn event(kind: &str) -> Value {
    let mut event = json!({
        "event_id": "evt-1", "planning_id": "pl-1", "event": kind,
        "occurred_at": "2027-02-09T01:29:00Z",
        "planning": {
            "title": "Carmen",
            "location": { "name": "Théâtre Outremont", "address": "1248 Av. Bernard O" },
            "starts_at": "2099-03-16T20:15:00-04:00", "ends_at": "2099-03-16T22:15:00-04:00",
            "timezone": "America/Montreal",
            "contact": { "name": "Samir Nguyễn" }
        },
        "artist_ids": ["artist-1"], "coordinator_ids": []
    });
    if kind == "modified" {
        event["changes"] = json!({ "title": { "from": "Carmen", "to": "Carmen" } });
    }
    event
}

/// `(method, path, body, the field it names)`: one NUL in each kind of text of each body.
fn with_nul() -> Vec<(reqwest::Method, &'static str, Value, &'static str)> {
    use reqwest::Method;
    let notification = |patch: Value| {
        let mut body =
            json!({ "recipient_ids": ["artist-1"], "title": "Répétition", "body": "Salle B" });
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let mut location = event("assigned");
    location["planning"]["location"]["name"] = json!("Théâtre\u{0}");
    let mut contact = event("assigned");
    contact["planning"]["contact"]["name"] = json!("Samir\u{0}");
    let mut title = event("assigned");
    title["planning"]["title"] = json!("Car\u{0}men");
    let mut change = event("modified");
    change["changes"]["title"]["to"] = json!("Carmen\u{0}");
    let events = "/api/v1/notifications/plannings/pl-1/events";
    vec![
        (
            Method::POST,
            "/api/v1/notifications",
            notification(json!({ "title": "Salle\u{0}B" })),
            "title",
        ),
        (
            Method::POST,
            "/api/v1/notifications",
            notification(json!({ "body": "Salle\u{0}B" })),
            "body",
        ),
        (
            Method::POST,
            "/api/v1/notifications",
            notification(json!({ "action_url": "https://x.org/", "action_label": "Vo\u{0}ir" })),
            "action_label",
        ),
        (
            Method::POST,
            "/api/v1/notifications",
            notification(json!({ "metadata": { "note": "x\u{0}y" } })),
            "metadata.note",
        ),
        (
            Method::POST,
            "/api/v1/notifications",
            notification(json!({ "metadata": { "k\u{0}": 1 } })),
            r"metadata.k\u0000",
        ),
        (
            Method::PUT,
            "/api/v1/recipients/artist-2",
            json!({ "name": "Eve\u{0}" }),
            "name",
        ),
        (
            Method::POST,
            "/api/v1/recipients/import",
            json!({ "recipients": [{ "id": "a-1", "name": "A" }, { "id": "a-2", "name": "B\u{0}" }] }),
            "recipients[1].name",
        ),
        (Method::POST, events, title, "planning.title"),
        (Method::POST, events, location, "planning.location.name"),
        (Method::POST, events, contact, "planning.contact.name"),
        (Method::POST, events, change, "changes.title.to"),
    ]
}

#[rstest]
#[case::sqlite(Engine::Sqlite)]
#[case::postgres(Engine::Postgres)]
#[tokio::test]
async fn a_nul_character_anywhere_in_a_body_is_a_422_naming_it_and_writes_nothing(
    #[case] engine: Engine,
) {
    let Some(app) = spawn_app_with(Options {
        engine,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let put = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé Tremblay" }),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.json);

    for (method, path, body, field) in with_nul() {
        let answer = app.call(method.clone(), path, Some(&body)).await;

        assert_eq!(
            answer.status, 422,
            "{method} {path} ({field}): {}",
            answer.json
        );
        assert_eq!(answer.content_type, "application/problem+json", "{field}");
        assert_eq!(
            fields(&answer.json),
            [field],
            "{method} {path}: {}",
            answer.json
        );
    }
    let url = &app.database_url;
    assert_eq!(
        number(url, "SELECT COUNT(*) AS n FROM notifications"),
        0,
        "no notification was written"
    );
    assert_eq!(
        number(url, "SELECT COUNT(*) AS n FROM recipients"),
        1,
        "no recipient was written but the first"
    );
}

#[tokio::test]
async fn a_json_body_without_content_type_is_a_415_problem_and_writes_nothing() {
    let app = spawn_app().await;
    for (method, path, body) in [
        (
            reqwest::Method::PUT,
            "/api/v1/recipients/artist-1",
            json!({ "name": "Zoé" }),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/recipients/import",
            json!({ "recipients": [{ "id": "artist-1", "name": "Zoé" }] }),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/notifications",
            json!({ "recipient_ids": ["artist-1"], "title": "t", "body": "b" }),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/notifications/plannings/pl-1/events",
            event("assigned"),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/notifications/test",
            json!({ "email": "zoe@example.org" }),
        ),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .bearer_auth(API_KEY)
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();

        assert!(
            response
                .headers()
                .get("content-type")
                .is_some_and(|ct| ct == "application/problem+json"),
            "{method} {path}: a problem"
        );
        assert_eq!(response.status(), 415, "{method} {path}");
    }
    assert_eq!(
        app.get("/api/v1/recipients/artist-1").await.status,
        404,
        "nothing was written"
    );
}

/// Sends `method path` as written, dot-segments included (HTTP clients resolve them away:
/// RFC 3986 §5.2.4), with the API key or `bearer`, and `body` as JSON; returns the status and
/// the body as JSON.
async fn raw(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // One chunk is all a problem takes: its size line, its bytes, then `0`.
        body.split_once("\r\n")
            .map_or("", |(_, rest)| rest)
            .rsplit_once("\r\n0\r\n")
            .map_or("", |(chunk, _)| chunk)
            .to_owned()
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn dot_segments_are_no_ids_in_a_path_or_a_body_and_are_422_naming_the_field() {
    let app = spawn_app().await;
    let put = app
        .put("/api/v1/recipients/artist-1", &json!({ "name": "Zoé" }))
        .await;
    assert_eq!(put.status, 201, "{}", put.json);
    let token = app.token_for("artist-1").await;

    for (method, path, bearer, body, field) in [
        (
            "PUT",
            "/api/v1/recipients/..",
            API_KEY,
            Some(json!({ "name": "Zoé" })),
            "id",
        ),
        (
            "PUT",
            "/api/v1/recipients/.",
            API_KEY,
            Some(json!({ "name": "Zoé" })),
            "id",
        ),
        ("GET", "/api/v1/recipients/..", API_KEY, None, "id"),
        ("DELETE", "/api/v1/recipients/.", API_KEY, None, "id"),
        ("GET", "/api/v1/recipients/../export", API_KEY, None, "id"),
        (
            "POST",
            "/api/v1/recipients/../tokens",
            API_KEY,
            Some(json!({})),
            "id",
        ),
        ("GET", "/api/v1/notifications/..", API_KEY, None, "id"),
        ("POST", "/api/v1/deliveries/../retry", API_KEY, None, "id"),
        (
            "POST",
            "/api/v1/notifications/plannings/../events",
            API_KEY,
            Some(event("assigned")),
            "planning_id",
        ),
        ("POST", "/api/v1/admin/jobs/../run", API_KEY, None, "job"),
        (
            "POST",
            "/api/v1/me/notifications/../read",
            token.as_str(),
            None,
            "id",
        ),
    ] {
        let (status, answer) = raw(&app, method, path, bearer, body.as_ref()).await;

        assert_eq!(status, 422, "{method} {path}: {answer}");
        assert_eq!(fields(&answer), [field], "{method} {path}: {answer}");
    }

    let mut dotted_artist = event("assigned");
    dotted_artist["artist_ids"] = json!([".."]);
    for (path, body, field) in [
        (
            "/api/v1/recipients/import",
            json!({ "recipients": [{ "id": "..", "name": "Zoé" }] }),
            "recipients[0].id",
        ),
        (
            "/api/v1/notifications",
            json!({ "recipient_ids": ["."], "title": "t", "body": "b" }),
            "recipient_ids[0]",
        ),
        (
            "/api/v1/notifications/plannings/pl-1/events",
            dotted_artist,
            "artist_ids[0]",
        ),
        (
            "/api/v1/notifications/test",
            json!({ "recipient_id": ".." }),
            "recipient_id",
        ),
    ] {
        let answer = app.post(path, &body).await;

        assert_eq!(answer.status, 422, "{path}: {}", answer.json);
        assert!(
            fields(&answer.json).iter().any(|f| f == field),
            "{path} names {field}: {}",
            answer.json
        );
    }
    assert_eq!(
        number(&app.database_url, "SELECT COUNT(*) AS n FROM recipients"),
        1,
        "no recipient `.` or `..` was written"
    );
}
