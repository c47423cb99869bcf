//! The API contract: the OpenAPI 3.1 document at `/api/openapi.json` covers every route and
//! describes every error as problem+json; the errors actix would answer by itself (unknown
//! route, wrong method, unreadable query) are problems too; schemathesis, fuzzing every
//! operation of the document against a running app, finds no server error and no answer that
//! contradicts the document; and the docs page renders from the binary alone under the pages'
//! CSP.
//!
//! Without schemathesis (`pip install -r tests/support/requirements.txt`) or Chromium the tests
//! that need them print `skipped:` and pass — except under CI (`CI` set), where they fail.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clairon_tests::{spawn_app, TestApp, API_KEY};
use serde_json::{json, Value};

use super::browser::{headless, PATIENCE};

/// Every route `http::configure` registers, as `(method, path)` in the document's spelling.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/inbox"),
    ("get", "/static/clairon.js"),
    ("get", "/unsubscribe/{token}"),
    ("post", "/unsubscribe/{token}"),
    ("get", "/api/openapi.json"),
    ("get", "/api/docs"),
    ("get", "/api/v1/me/notifications"),
    ("get", "/api/v1/me/notifications/unread-count"),
    ("get", "/api/v1/me/notifications/stream"),
    ("post", "/api/v1/me/notifications/read-all"),
    ("post", "/api/v1/me/notifications/{id}/read"),
    ("get", "/api/v1/me/preferences"),
    ("put", "/api/v1/me/preferences"),
    ("post", "/api/v1/me/consents"),
    ("get", "/api/v1/me/consents"),
    ("post", "/api/v1/me/push-subscriptions"),
    ("delete", "/api/v1/me/push-subscriptions"),
    ("get", "/api/v1/push/vapid-public-key"),
    ("get", "/sw.js"),
    ("get", "/api/v1/me/ws"),
    ("post", "/api/v1/recipients/import"),
    ("put", "/api/v1/recipients/{id}"),
    ("get", "/api/v1/recipients/{id}"),
    ("post", "/api/v1/recipients/{id}/tokens"),
    ("post", "/api/v1/recipients/{id}/tokens/revoke"),
    ("get", "/api/v1/recipients/{id}/notifications"),
    ("get", "/api/v1/recipients/{id}/notifications/unread-count"),
    ("post", "/api/v1/recipients/{id}/notifications/read-all"),
    ("post", "/api/v1/notifications"),
    ("post", "/api/v1/notifications/test"),
    (
        "post",
        "/api/v1/notifications/plannings/{planning_id}/events",
    ),
    ("get", "/api/v1/notifications/{id}"),
    ("post", "/api/v1/notifications/{id}/read"),
    ("get", "/api/v1/deliveries"),
    ("post", "/api/v1/deliveries/{id}/retry"),
    ("get", "/metrics"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/api/v1/admin/job-runs"),
    ("post", "/api/v1/admin/jobs/{job}/run"),
    ("get", "/api/v1/admin/job-stats"),
    ("get", "/api/v1/admin/stats"),
    ("post", "/api/v1/job-runs"),
    ("patch", "/api/v1/job-runs/{id}"),
    ("get", "/admin"),
    ("post", "/admin/login"),
    ("post", "/admin/logout"),
    ("post", "/admin/deliveries/{id}/retry"),
    ("get", "/static/admin.js"),
    ("get", "/api/v1/recipients/{id}/export"),
    ("delete", "/api/v1/recipients/{id}"),
    ("get", "/api/v1/recipients/{id}/preferences"),
    ("put", "/api/v1/recipients/{id}/preferences"),
    ("post", "/api/v1/recipients/{id}/consents"),
    ("get", "/api/v1/recipients/{id}/consents"),
    ("post", "/api/v1/events"),
    ("put", "/api/v1/topics/{key}"),
    ("get", "/api/v1/topics/{key}"),
    ("post", "/api/v1/topics/{key}/subscribers"),
    ("delete", "/api/v1/topics/{key}/subscribers/{recipient_id}"),
    ("get", "/api/v1/routing-rules"),
    ("put", "/api/v1/routing-rules"),
];

async fn document(app: &TestApp) -> Value {
    let answer = app.get("/api/openapi.json").await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json
}

fn assert_problem(answer: &clairon_tests::Answer, status: u16) {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(answer.content_type, "application/problem+json");
    assert_eq!(answer.json["status"], status, "{}", answer.json);
    assert!(
        answer.json["type"].is_string()
            && answer.json["title"].is_string()
            && answer.json["detail"].is_string(),
        "an RFC 7807 problem: {}",
        answer.json
    );
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route_with_its_security() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    documented.sort();
    assert_eq!(
        documented, expected,
        "the document lists exactly the routes"
    );

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["recipient_token"]["bearerFormat"], "JWT");
    assert_eq!(schemes["recipient_token_query"]["in"], "query");
    let security = |method: &str, path: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(
        security("get", "/api/v1/deliveries"),
        json!([{ "api_key": [] }])
    );
    assert_eq!(
        security("get", "/api/v1/me/notifications"),
        json!([{ "recipient_token": [] }])
    );
    assert!(security("get", "/health").is_null(), "health needs no key");
}

#[tokio::test]
async fn every_documented_error_answer_is_problem_json() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let mut errors = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                // The sign-in form answers a refused key with the form again: a page, for a
                // browser.
                if !status.starts_with('4') && !status.starts_with('5')
                    || (path == "/admin/login" && status == "401")
                {
                    continue;
                }
                errors += 1;
                let content = response["content"].as_object();
                assert_eq!(
                    content.map(|c| c.keys().collect::<Vec<_>>()),
                    Some(vec![&"application/problem+json".to_owned()]),
                    "{method} {path} {status}"
                );
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
    }
    assert!(errors > 50, "only {errors} error answers documented");
    // Scoped routes document 403 (scope) and 429 (rate limit); readiness its 503 problem.
    for (method, path) in [
        ("get", "/api/v1/deliveries"),
        ("delete", "/api/v1/recipients/{id}"),
        ("get", "/api/v1/admin/stats"),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        for status in ["401", "403", "429"] {
            assert!(
                responses[status].is_object(),
                "{method} {path} documents {status}"
            );
        }
    }
    assert!(doc["paths"]["/api/v1/me/notifications"]["get"]["responses"]["429"].is_object());
    assert!(doc["paths"]["/api/v1/me/notifications"]["get"]["responses"]["403"].is_null());
    assert!(doc["paths"]["/health/ready"]["get"]["responses"]["503"].is_object());
    assert!(
        doc["paths"]["/api/v1/admin/job-runs"]["get"]["responses"]["400"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("named"))
    );
    let post_notifications = &doc["paths"]["/api/v1/notifications"]["post"]["responses"];
    for status in ["400", "401", "409", "413", "415", "422", "503"] {
        assert!(
            post_notifications[status].is_object(),
            "POST /api/v1/notifications documents {status}"
        );
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem_with_or_without_a_key() {
    let app = spawn_app().await;
    assert_problem(&app.get("/nowhere").await, 404);
    assert_problem(&app.get("/api/v1/nowhere").await, 404);
    assert_problem(&app.get("/api/v1/me/nowhere").await, 404);
}

#[tokio::test]
async fn a_known_path_with_another_method_is_a_405_problem_listing_the_allowed_ones() {
    let app = spawn_app().await;
    for (method, path, allowed) in [
        (
            reqwest::Method::PATCH,
            "/api/v1/recipients/artist-1",
            "DELETE, GET, PUT",
        ),
        (
            reqwest::Method::GET,
            "/api/v1/admin/jobs/retention/run",
            "POST",
        ),
        (reqwest::Method::GET, "/admin/login", "POST"),
        (reqwest::Method::GET, "/api/v1/notifications", "POST"),
        (reqwest::Method::POST, "/health", "GET"),
        (reqwest::Method::PATCH, "/api/v1/me/notifications", "GET"),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let mut allow: Vec<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .collect();
        allow.sort();
        assert_eq!(allow.join(", "), allowed, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], 405, "{body}");
    }
}

#[tokio::test]
async fn an_unreadable_query_a_wrong_content_type_and_a_missing_key_are_problems() {
    let app = spawn_app().await;
    // serde_urlencoded refuses a repeated field.
    assert_problem(&app.get("/api/v1/deliveries?limit=1&limit=2").await, 400);
    assert_problem(
        &app.post_raw("/api/v1/notifications", b"title=x".to_vec(), "text/plain")
            .await,
        415,
    );
    let anonymous = app
        .client
        .get(format!("{}/api/v1/deliveries", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    // The WebSocket route refuses a plain GET (no upgrade) with a problem too.
    let token = {
        app.put("/api/v1/recipients/artist-1", &json!({ "name": "Zoé" }))
            .await;
        app.token_for("artist-1").await
    };
    assert_problem(
        &app.call_as(&token, reqwest::Method::GET, "/api/v1/me/ws")
            .await,
        400,
    );
}

fn schemathesis() -> Option<&'static str> {
    let found = ["st", "schemathesis"].into_iter().find(|cli| {
        Command::new(cli)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs schemathesis (pip install -r tests/support/requirements.txt)"
        );
        eprintln!("skipped: schemathesis is not installed");
    }
    found
}

/// The schemathesis configuration: credentials per security scheme of the document, and what
/// the document cannot say (see the comments inside).
fn schemathesis_config(token: &str, admin_session: &str) -> String {
    format!(
        r#"
[auth.openapi.api_key]
bearer = "{API_KEY}"

[auth.openapi.recipient_token]
bearer = "{token}"

[auth.openapi.recipient_token_query]
api_key = "{token}"

[auth.openapi.admin_session]
api_key = "{admin_session}"

# A body that satisfies the schema may still break a rule JSON Schema cannot state: recipients
# that must be registered, a routing pattern given once, an end after its start (a job run's too),
# a date-time chrono does not read, an IANA zone, an address as the email_address crate reads
# RFC 5322, the channel names and event-type keys of a preference document (map keys with a
# syntax), a consent source on one line. Those are refused with a 422 naming the field, which is right; every
# other check (no 5xx, statuses, content types, schemas, negative data refused) still applies.
# (One filter per block: schemathesis joins a block's filters with "or", so a method filter
# would widen the block to every POST.)
[[operations]]
include-path-regex = "^/api/v1/(recipients/import|recipients/\\{{id\\}}|recipients/\\{{id\\}}/(preferences|consents)|me/(preferences|consents|push-subscriptions)|notifications|notifications/test|notifications/plannings/.*|events|topics/.*|routing-rules|job-runs|job-runs/\\{{id\\}})$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "404", "409", "422"]

# `since` must be in the past, which a JSON Schema `date-time` cannot say: a future one is a 400
# naming it.
[[operations]]
include-path-regex = "^/api/v1/admin/(stats|job-stats)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]
"#
    )
}

/// A dashboard session id, from signing in with the (admin) API key as a browser would.
async fn admin_session(app: &TestApp) -> String {
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = no_redirect
        .post(format!("{}/admin/login", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("api_key={API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let (name, value) = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .expect("name=value");
    assert_eq!(name, "clairon_admin");
    value.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_that_contradicts_the_document() {
    let Some(cli) = schemathesis() else { return };
    let app = spawn_app().await;
    // Happy paths exist: a recipient with a notification, and a token for `/me`.
    let put = app
        .put(
            "/api/v1/recipients/artist-0001",
            &json!({ "name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr",
                     "timezone": "America/Montreal" }),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.json);
    let created = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-0001"], "title": "Répétition", "body": "Demain 10 h" }),
        )
        .await;
    assert_eq!(created.status, 202, "{}", created.json);
    let token = app.token_for("artist-0001").await;
    let admin_session = admin_session(&app).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, schemathesis_config(&token, &admin_session)).unwrap();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking({
        let url = format!("{}/api/openapi.json", app.address);
        let dir = dir.path().to_owned();
        move || {
            Command::new(cli)
                .current_dir(&dir)
                .arg("--no-color")
                .arg("--config-file")
                .arg(&config)
                .arg("run")
                .arg(&url)
                .args(["--checks", "all"])
                // Bounded so the run takes a couple of minutes on 2 cores; fixed seed so a
                // failure reproduces.
                .args([
                    "--max-examples",
                    "25",
                    "--seed",
                    "20270316",
                    "--workers",
                    "1",
                ])
                .args(["--request-timeout", "10"])
                .args(["--generation-database", "none"])
                // The two streams never end: their handshake and auth are tested in
                // realtime.rs, not fuzzed here (a fuzzer would wait on each for its timeout).
                .args(["--exclude-path", "/api/v1/me/notifications/stream"])
                .args(["--exclude-path", "/api/v1/me/ws"])
                .output()
                .expect("schemathesis runs")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems after {:?}:\n{stdout}\n{stderr}",
        started.elapsed()
    );
    eprintln!("{stdout}");
}

// ---------------------------------------------------------------------------------------------
// The docs page in a real browser

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_from_the_binary_alone_under_the_pages_csp() {
    let Some((_driver, browser, _profile)) = headless().await else {
        return;
    };
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!("{}/api/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !page.text().await.unwrap().contains("<script>"),
        "no inline script"
    );

    // `/api/docs` redirects to `/api/docs/`, where the relative asset links resolve.
    browser
        .goto(&format!("{}/api/docs", app.address))
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let state = loop {
        let state = browser
            .execute(
                "return { title: document.querySelector('.swagger-ui .info .title')?.textContent || '', \
                          operations: document.querySelectorAll('.opblock').length, \
                          foreign: performance.getEntriesByType('resource') \
                              .map(e => e.name).filter(n => !n.startsWith(location.origin)) };",
                vec![],
            )
            .await
            .expect("the page answers");
        if state["title"]
            .as_str()
            .is_some_and(|t| t.contains("Clairon"))
            && state["operations"].as_u64().unwrap_or(0) >= 20
        {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "Swagger UI did not render the document: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(state["foreign"], json!([]), "everything came from the app");
    browser.close().await.unwrap();
}
