//! Security of the HTTP API: the scope matrix of API keys, revocation on a running server, rate
//! limits (refused credentials per client address included), which keys open the dashboard,
//! start-up refusals, body and depth limits, security headers, CORS, and timeouts on providers
//! that never answer.

use std::time::{Duration, Instant};

use clairon_tests::{spawn_app, spawn_app_configured, Answer, Engine, Options, TestApp, API_KEY};
use reqwest::Method;
use rstest::rstest;
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(20);

async fn with_zoe(app: &TestApp) -> String {
    let answer = app
        .put(
            "/api/v1/recipients/artist-0001",
            &json!({"name": "Zoé Tremblay", "email": "zoe@example.org", "locale": "fr"}),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let created = app
        .post(
            "/api/v1/notifications",
            &json!({"recipient_ids": ["artist-0001"], "title": "Répétition", "body": "Salle B",
                    "channels": ["in_app"]}),
        )
        .await;
    assert_eq!(created.status, 202, "{}", created.json);
    created.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What each scope may call: `true` is allowed (the route answers as usual), `false` is 403.
#[rstest]
#[case::put_recipient(Method::PUT, "/api/v1/recipients/artist-0002", Some(json!({"name": "Liam"})), [true, false, true])]
#[case::import(Method::POST, "/api/v1/recipients/import", Some(json!({"recipients": []})), [true, false, true])]
#[case::notify(Method::POST, "/api/v1/notifications", Some(json!({"recipient_ids": ["artist-0001"], "title": "T", "body": "B", "channels": ["in_app"]})), [true, false, true])]
#[case::planning_event(Method::POST, "/api/v1/notifications/plannings/pl-1/events", Some(json!({})), [true, false, true])]
#[case::test_message(Method::POST, "/api/v1/notifications/test", Some(json!({"recipient_id": "artist-0001", "channels": ["email"]})), [true, false, true])]
#[case::report_job_run(Method::POST, "/api/v1/job-runs", Some(json!({"job": "sync", "task_type": "sync", "status": "success", "triggered_by": "api"})), [true, false, true])]
#[case::finish_job_run(Method::PATCH, "/api/v1/job-runs/00000000-0000-7000-8000-000000000000", Some(json!({"status": "success"})), [true, false, true])]
#[case::job_stats(Method::GET, "/api/v1/admin/job-stats", None, [false, false, true])]
#[case::get_recipient(Method::GET, "/api/v1/recipients/artist-0001", None, [false, true, true])]
#[case::inbox(Method::GET, "/api/v1/recipients/artist-0001/notifications", None, [false, true, true])]
#[case::unread(Method::GET, "/api/v1/recipients/artist-0001/notifications/unread-count", None, [false, true, true])]
#[case::read_all(Method::POST, "/api/v1/recipients/artist-0001/notifications/read-all", Some(json!({})), [false, true, true])]
#[case::notification(Method::GET, "/api/v1/notifications/{notification}", None, [false, true, true])]
#[case::mark_read(Method::POST, "/api/v1/notifications/{notification}/read", Some(json!({})), [false, true, true])]
#[case::deliveries(Method::GET, "/api/v1/deliveries", None, [false, true, true])]
#[case::token(Method::POST, "/api/v1/recipients/artist-0001/tokens", Some(json!({})), [false, true, true])]
#[case::revoke_tokens(Method::POST, "/api/v1/recipients/artist-0001/tokens/revoke", Some(json!({})), [false, true, true])]
#[case::export(Method::GET, "/api/v1/recipients/artist-0001/export", None, [false, true, true])]
#[case::get_preferences(Method::GET, "/api/v1/recipients/artist-0001/preferences", None, [false, true, true])]
#[case::put_preferences(Method::PUT, "/api/v1/recipients/artist-0001/preferences", Some(json!({"channels": {"email": false}})), [true, false, true])]
#[case::record_consent(Method::POST, "/api/v1/recipients/artist-0001/consents", Some(json!({"channel": "sms", "granted": true, "source": "signup-form"})), [true, false, true])]
#[case::list_consents(Method::GET, "/api/v1/recipients/artist-0001/consents", None, [false, true, true])]
#[case::retry(Method::POST, "/api/v1/deliveries/00000000-0000-7000-8000-000000000000/retry", Some(json!({})), [false, false, true])]
#[case::erase(Method::DELETE, "/api/v1/recipients/nobody", None, [false, false, true])]
#[case::event(Method::POST, "/api/v1/events", Some(json!({"event_id": "ev-1", "type": "sync.failed", "occurred_at": "2027-03-01T10:00:00Z", "recipient_ids": ["artist-0001"], "title": "T", "body": "B", "channels": ["in_app"]})), [true, false, true])]
#[case::put_topic(Method::PUT, "/api/v1/topics/admins", Some(json!({"name": "Admins", "recipient_ids": ["artist-0001"]})), [true, false, true])]
#[case::add_subscribers(Method::POST, "/api/v1/topics/admins/subscribers", Some(json!({"recipient_ids": ["artist-0001"]})), [true, false, true])]
#[case::remove_subscriber(Method::DELETE, "/api/v1/topics/admins/subscribers/artist-0001", None, [true, false, true])]
#[case::get_topic(Method::GET, "/api/v1/topics/admins", None, [false, true, true])]
#[case::get_rules(Method::GET, "/api/v1/routing-rules", None, [false, false, true])]
#[case::put_rules(Method::PUT, "/api/v1/routing-rules", Some(json!({"rules": []})), [false, false, true])]
#[tokio::test]
async fn each_scope_reaches_its_routes_and_is_refused_the_others_with_403(
    #[case] method: Method,
    #[case] path: &str,
    #[case] body: Option<Value>,
    #[case] allowed: [bool; 3],
) {
    let app = spawn_app().await;
    let notification = with_zoe(&app).await;
    let path = path.replace("{notification}", &notification);
    for (scope, allowed) in ["send", "read", "admin"].into_iter().zip(allowed) {
        let (_, key) = app.create_api_key(&format!("{scope} key"), scope).await;

        let answer = app
            .call_with_key(Some(&key), method.clone(), &path, body.as_ref())
            .await;

        if allowed {
            assert!(
                ![401, 403].contains(&answer.status),
                "{scope} may {method} {path}: {} {}",
                answer.status,
                answer.json
            );
        } else {
            assert_eq!(
                answer.status, 403,
                "{scope} may not {method} {path}: {}",
                answer.json
            );
            assert_eq!(answer.content_type, "application/problem+json");
            assert!(
                answer.json["detail"].as_str().unwrap().contains(scope),
                "the problem names the key's scope: {}",
                answer.json
            );
        }
    }
}

#[tokio::test]
async fn a_key_from_clairon_api_keys_is_admin() {
    let app = spawn_app().await;
    let answer = app
        .call(Method::DELETE, "/api/v1/recipients/nobody", None)
        .await;
    assert_eq!(answer.status, 404, "admin reaches erasure: {}", answer.json);
}

async fn poll_until(app: &TestApp, key: &str, status: u16) -> Answer {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = app
            .call_with_key(Some(key), Method::GET, "/api/v1/deliveries", None)
            .await;
        if answer.status == status {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "still {} instead of {status}",
            answer.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_the_running_server_without_a_restart() {
    let app = spawn_app().await;
    let (id, key) = app.create_api_key("dashboard", "read").await;
    assert_eq!(
        app.call_with_key(Some(&key), Method::GET, "/api/v1/deliveries", None)
            .await
            .status,
        200
    );

    app.revoke_api_key(id).await;

    let refused = poll_until(&app, &key, 401).await;
    assert_eq!(refused.content_type, "application/problem+json");
    assert_eq!(
        app.get("/api/v1/deliveries").await.status,
        200,
        "other keys still work"
    );
}

#[tokio::test]
async fn a_key_over_its_rate_is_answered_429_with_retry_after_and_others_are_not() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.rate_limit_per_sec = 1;
        s.rate_limit_burst = 3;
    })
    .await
    .unwrap();
    let (_, other) = app.create_api_key("other", "read").await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let response = app
            .client
            .get(format!("{}/api/v1/deliveries", app.address))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            limited = Some(response);
            break;
        }
    }

    let limited = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After in whole seconds");
    assert_eq!(
        limited.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem: Value = limited.json().await.unwrap();
    assert_eq!(problem["status"], 429);
    assert!(
        statuses.len() > 3,
        "the burst of 3 went through: {statuses:?}"
    );
    assert_eq!(
        app.call_with_key(Some(&other), Method::GET, "/api/v1/deliveries", None)
            .await
            .status,
        200,
        "another key has its own bucket"
    );
}

#[tokio::test]
async fn a_recipient_token_over_its_rate_is_answered_429() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.token_rate_limit_per_sec = 1;
        s.token_rate_limit_burst = 2;
    })
    .await
    .unwrap();
    with_zoe(&app).await;
    let token = app.token_for("artist-0001").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let answer = app
            .call_as(&token, Method::GET, "/api/v1/me/notifications/unread-count")
            .await;
        statuses.push(answer.status);
        if answer.status == 429 {
            assert_eq!(answer.content_type, "application/problem+json");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses.len() > 2, "the burst went through: {statuses:?}");
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413_and_a_deep_one_is_400_naming_the_body() {
    let app = spawn_app_configured(Options::default(), |s| s.max_body_bytes = 1024)
        .await
        .unwrap();
    let big = json!({"recipients": [{"id": "a", "name": "x".repeat(2000)}]});
    let too_large = app.post("/api/v1/recipients/import", &big).await;
    assert_eq!(too_large.status, 413, "{}", too_large.json);
    assert_eq!(too_large.content_type, "application/problem+json");
    assert!(too_large.json["detail"].as_str().unwrap().contains("1024"));

    let deep = format!(
        "{{\"recipients\": [{{\"id\": \"a\", \"name\": \"x\", \"metadata\": {}1{}}}]}}",
        "[".repeat(40),
        "]".repeat(40)
    );
    let too_deep = app
        .post_raw(
            "/api/v1/recipients/import",
            deep.into_bytes(),
            "application/json",
        )
        .await;
    assert_eq!(too_deep.status, 400, "{}", too_deep.json);
    assert_eq!(too_deep.content_type, "application/problem+json");
    assert!(
        too_deep.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("body:"),
        "{}",
        too_deep.json
    );
}

#[tokio::test]
async fn pages_carry_a_strict_policy_and_every_answer_nosniff() {
    let app = spawn_app().await;
    let page = app
        .client
        .get(format!("{}/inbox", app.address))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap();
    assert_eq!(
        script_src, "script-src 'self'",
        "no inline script, no eval: {csp}"
    );
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<script type=\"module\">"),
        "no inline script in the page"
    );

    for (path, key) in [
        ("/health", None),
        ("/api/v1/deliveries", Some(API_KEY)),
        ("/api/v1/deliveries", None),
        ("/static/clairon.js", None),
    ] {
        let mut request = app.client.get(format!("{}{path}", app.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{path} ({})",
            response.status()
        );
    }
}

#[tokio::test]
async fn listed_origins_may_call_the_recipient_routes_and_preflights_are_answered() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.cors_origins = "https://app.example.org, https://other.example.org".into();
    })
    .await
    .unwrap();
    with_zoe(&app).await;
    let token = app.token_for("artist-0001").await;
    let url = format!("{}/api/v1/me/notifications", app.address);

    let preflight = app
        .client
        .request(Method::OPTIONS, &url)
        .header("Origin", "https://app.example.org")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("authorization"));

    let listed = app
        .client
        .get(&url)
        .bearer_auth(&token)
        .header("Origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status().as_u16(), 200);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );

    let stranger = app
        .client
        .get(&url)
        .bearer_auth(&token)
        .header("Origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "an unlisted origin gets no CORS header"
    );
}

#[tokio::test]
async fn without_cors_origins_no_cors_header_is_sent() {
    let app = spawn_app().await;
    with_zoe(&app).await;
    let token = app.token_for("artist-0001").await;
    let response = app
        .client
        .get(format!("{}/api/v1/me/notifications", app.address))
        .bearer_auth(&token)
        .header("Origin", "https://app.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

/// A TCP server that accepts connections and never says a word.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (address, task)
}

#[tokio::test]
async fn a_provider_that_never_answers_costs_a_transient_attempt_not_a_worker() {
    let (smtp, _smtp_task) = silent_server().await;
    let (telegram, _telegram_task) = silent_server().await;
    let app = spawn_app_configured(
        Options {
            engine: Engine::Sqlite,
            smtp: false,
            telegram: false,
            retry_max_attempts: 1,
            ..Options::default()
        },
        |s| {
            s.smtp_url = format!("smtp://{smtp}");
            s.smtp_timeout_ms = 300;
            s.telegram_bot_token = clairon_tests::BOT_TOKEN.into();
            s.telegram_api_url = format!("http://{telegram}");
            s.telegram_timeout_ms = 300;
        },
    )
    .await
    .unwrap();
    app.put(
        "/api/v1/recipients/artist-0001",
        &json!({"name": "Zoé", "email": "zoe@example.org", "telegram_chat_id": 100000001}),
    )
    .await;
    let created = app
        .post(
            "/api/v1/notifications",
            &json!({"recipient_ids": ["artist-0001"], "title": "T", "body": "B"}),
        )
        .await;
    let id = created.json["notifications"][0]["id"].as_str().unwrap();

    let settled = app.wait_until_settled(id, PATIENCE).await;

    for channel in ["email", "telegram"] {
        let delivery = settled["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["channel"] == channel)
            .unwrap();
        assert_eq!(delivery["status"], "dead", "{channel}: {delivery}");
        assert_eq!(
            delivery["attempt_log"][0]["outcome"], "transient",
            "{channel}: {delivery}"
        );
    }
    let in_app = app.wait_for_delivery(id, "in_app", "sent", PATIENCE).await;
    assert_eq!(
        in_app["status"], "sent",
        "the worker went on with other deliveries"
    );
}

// ---------------------------------------------------------------------------------------------
// Refused credentials, admin sign-in, start-up checks

/// `POST /admin/login` with `key`; returns the status and the response.
async fn sign_in(app: &TestApp, key: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/admin/login", app.address))
        .form(&[("api_key", key)])
        .send()
        .await
        .unwrap()
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} in {text}"))
}

#[tokio::test]
async fn failed_sign_ins_from_one_address_are_answered_429_with_retry_after_and_counted() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.auth_failure_limit_per_min = 1;
        s.auth_failure_limit_burst = 3;
    })
    .await
    .unwrap();
    for _ in 0..5 {
        assert_eq!(
            sign_in(&app, API_KEY).await.status(),
            303,
            "a good sign-in costs nothing"
        );
    }

    let mut statuses = Vec::new();
    let mut limited = None;
    for attempt in 0..10 {
        let response = sign_in(&app, &format!("guess-{attempt}")).await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let blocked_guess = sign_in(&app, "guess-while-blocked").await.status();
    let blocked_good_key = sign_in(&app, API_KEY).await.status();

    assert_eq!(
        statuses,
        vec![401, 401, 401, 429],
        "the burst of 3, then 429"
    );
    let limited = limited.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(
        limited.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        blocked_guess, 429,
        "while blocked, a guess is refused unseen"
    );
    assert_eq!(
        blocked_good_key, 303,
        "the operator's own key is not locked out by a guesser on the same address"
    );
    assert_eq!(
        metric(
            &app,
            "clairon_auth_failures_total{answer=\"401\",credential=\"admin_login\"}"
        )
        .await,
        3.0
    );
    assert!(
        metric(
            &app,
            "clairon_auth_failures_total{answer=\"429\",credential=\"admin_login\"}"
        )
        .await
            >= 2.0,
        "the refusal and the blocked sign-in are counted"
    );
}

#[tokio::test]
async fn forged_unsubscribe_links_from_one_address_are_404_then_429_and_counted() {
    // `/unsubscribe/{token}` takes no key: its signed token is the credential, and guessing
    // one is throttled like guessing a key.
    let app = spawn_app_configured(Options::default(), |s| {
        s.auth_failure_limit_per_min = 1;
        s.auth_failure_limit_burst = 3;
    })
    .await
    .unwrap();

    let mut statuses = Vec::new();
    for attempt in 0..5 {
        let response = app
            .client
            .post(format!(
                "{}/unsubscribe/YXJ0aXN0LTEKY3VzdG9t.{}{}",
                app.address,
                "A".repeat(42),
                // Of the last of 43 base64 characters of a 32-byte tag, 4 bits are the tag's
                // and 2 must be 0: these keep the guess well formed.
                ["A", "E", "I", "M", "Q"][attempt]
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }

    assert_eq!(
        statuses,
        vec![404, 404, 404, 429, 429],
        "the burst of 3, then 429"
    );
    let cut = app
        .client
        .get(format!("{}/unsubscribe/not-a-token", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(cut.status(), 429, "a blocked address is not even looked at");
    assert_eq!(
        metric(
            &app,
            "clairon_auth_failures_total{answer=\"404\",credential=\"unsubscribe_link\"}"
        )
        .await,
        3.0
    );
}

#[tokio::test]
async fn unknown_and_revoked_keys_from_one_address_are_answered_429_while_its_proven_keys_go_on() {
    let app = spawn_app_configured(Options::default(), |s| {
        s.auth_failure_limit_per_min = 1;
        s.auth_failure_limit_burst = 2;
    })
    .await
    .unwrap();
    let (id, revoked) = app.create_api_key("old", "read").await;
    app.revoke_api_key(id).await;
    let (_, proven) = app.create_api_key("backend", "read").await;
    let (_, never_used) = app.create_api_key("spare", "read").await;
    let proven_before = app
        .call_with_key(Some(&proven), Method::GET, "/api/v1/deliveries", None)
        .await;
    for _ in 0..20 {
        assert_eq!(
            app.get("/api/v1/deliveries").await.status,
            200,
            "good keys are never slowed"
        );
    }
    let without_key = app
        .call_with_key(None, Method::GET, "/api/v1/deliveries", None)
        .await;

    let revoked_answer = app
        .call_with_key(Some(&revoked), Method::GET, "/api/v1/deliveries", None)
        .await;
    let unknown = app
        .call_with_key(Some("clr_guess"), Method::GET, "/api/v1/deliveries", None)
        .await;
    let over = app
        .call_with_key(Some("clr_guess2"), Method::GET, "/api/v1/deliveries", None)
        .await;
    let guess_while_blocked = app
        .call_with_key(Some("clr_guess3"), Method::GET, "/api/v1/deliveries", None)
        .await;
    let configured_meanwhile = app.get("/api/v1/deliveries").await;
    let proven_meanwhile = app
        .call_with_key(Some(&proven), Method::GET, "/api/v1/deliveries", None)
        .await;
    let unproven_meanwhile = app
        .call_with_key(Some(&never_used), Method::GET, "/api/v1/deliveries", None)
        .await;

    assert_eq!(proven_before.status, 200);
    assert_eq!(without_key.status, 401, "no key is no guess: not counted");
    assert_eq!(revoked_answer.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(over.status, 429, "{}", over.json);
    assert_eq!(over.content_type, "application/problem+json");
    assert_eq!(
        guess_while_blocked.status, 429,
        "the address is blocked for a while: a guess is not even looked up"
    );
    assert_eq!(
        unproven_meanwhile.status, 429,
        "a key never seen from here is indistinguishable from a guess while blocked"
    );
    assert_eq!(
        configured_meanwhile.status, 200,
        "a configured key is never locked out by a guesser on the same address"
    );
    assert_eq!(
        proven_meanwhile.status, 200,
        "a key that authenticated before goes on working while its address is blocked"
    );
    assert_eq!(
        metric(
            &app,
            "clairon_auth_failures_total{answer=\"401\",credential=\"api_key\"}"
        )
        .await,
        2.0
    );
}

#[tokio::test]
async fn every_admin_key_signs_in_to_the_dashboard_and_other_keys_do_not() {
    let app = spawn_app().await;
    let (_, cli_admin) = app.create_api_key("ops", "admin").await;
    let (_, read) = app.create_api_key("reader", "read").await;
    let (_, send) = app.create_api_key("producer", "send").await;
    let (revoked_id, revoked) = app.create_api_key("gone", "admin").await;
    app.revoke_api_key(revoked_id).await;
    let first_start = spawn_app_configured(Options::default(), |s| s.api_keys = String::new())
        .await
        .unwrap();
    let generated = first_start
        .generated_api_key
        .clone()
        .expect("a key is generated when none is configured");

    let configured = sign_in(&app, API_KEY).await.status();
    let created = sign_in(&app, &cli_admin).await.status();
    let at_first_start = sign_in(&first_start, &generated).await.status();
    let by_bearer = app
        .client
        .get(format!("{}/admin?lang=en", app.address))
        .bearer_auth(&cli_admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(configured, 303, "a CLAIRON_API_KEYS key");
    assert_eq!(
        created, 303,
        "a key made with clairon api-keys create --scope admin"
    );
    assert_eq!(at_first_start, 303, "the key printed at first start");
    assert!(
        by_bearer.contains("Dead letters") && !by_bearer.contains("Operator sign-in"),
        "an admin key in Authorization opens the dashboard"
    );
    for (what, key) in [("read", read), ("send", send), ("revoked admin", revoked)] {
        assert_eq!(sign_in(&app, &key).await.status(), 401, "a {what} key");
    }
}

#[tokio::test]
async fn a_token_secret_shorter_than_32_bytes_stops_the_start_with_a_message_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let settings = clairon_bootstrap::Settings {
        database_url: format!("sqlite://{}", dir.path().join("c.db").display()),
        bind: "127.0.0.1:0".into(),
        token_secret: "x".into(),
        ..clairon_bootstrap::Settings::default()
    };

    let refused = clairon_bootstrap::Application::build(settings).await;

    let message = format!("{:#}", refused.err().expect("the start is refused"));
    assert!(
        message.contains("CLAIRON_TOKEN_SECRET") && message.contains("at least 32 bytes"),
        "{message}"
    );
}

#[tokio::test]
async fn the_vapid_public_key_needs_no_credential_and_push_subscriptions_take_recipient_tokens_only(
) {
    let app = spawn_app().await;
    let open = app
        .call_with_key(None, Method::GET, "/api/v1/push/vapid-public-key", None)
        .await;
    assert_eq!(open.status, 200, "{}", open.json);
    assert!(open.json["public_key"].is_string(), "{}", open.json);
    let body =
        json!({"endpoint": "https://push.example.org/x", "keys": {"p256dh": "x", "auth": "y"}});
    for key in [None, Some(API_KEY)] {
        let refused = app
            .call_with_key(
                key,
                Method::POST,
                "/api/v1/me/push-subscriptions",
                Some(&body),
            )
            .await;
        assert_eq!(
            refused.status, 401,
            "an API key is no recipient token: {}",
            refused.json
        );
        let refused = app
            .call_with_key(
                key,
                Method::DELETE,
                "/api/v1/me/push-subscriptions?endpoint=x",
                None,
            )
            .await;
        assert_eq!(refused.status, 401, "{}", refused.json);
    }
}
