//! The operator dashboard in a real headless Chromium: sign in with the API key, read the day's
//! numbers after real deliveries, retry a dead delivery from the page.
//!
//! Skipped (with `skipped:`) without `chromium` and `chromedriver`, except under CI.

use std::time::{Duration, Instant};

use clairon_tests::{spawn_app_with, Options, API_KEY};
use fantoccini::Locator;
use serde_json::{json, Value};

use super::browser::{headless, PATIENCE};

/// What the dashboard shows, read from the page.
async fn dashboard(browser: &fantoccini::Client) -> Value {
    browser
        .execute(
            "const row = (c) => document.querySelector(`#deliveries tr[data-channel=${c}]`); \
             const cell = (c, k) => row(c) ? row(c).querySelector('.' + k).textContent : null; \
             return { verdict: document.querySelector('#verdict')?.className || '', \
                      email_total: cell('email', 'total'), email_sent: cell('email', 'sent'), \
                      in_app_sent: cell('in_app', 'sent'), in_app_rate: cell('in_app', 'rate'), \
                      dead_count: document.querySelector('#dead-count')?.textContent, \
                      dead_rows: document.querySelectorAll('#dead tbody tr').length, \
                      outcome: document.querySelector('#dead .outcome')?.textContent || '', \
                      jobs: [...document.querySelectorAll('#jobs tbody tr')].map(r => [...r.cells].map(c => c.textContent.trim()).join(' ')), \
                      cookies: document.cookie };",
            vec![],
        )
        .await
        .expect("the page answers")
}

async fn wait_for(browser: &fantoccini::Client, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = dashboard(browser).await;
        if ok(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "{what}: the page shows {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_sees_the_days_numbers_and_retries_a_dead_delivery() {
    // Arrange: one email goes dead (the SMTP server defers it and only one try is allowed),
    // the in-app delivery is sent, and the reaper has run once.
    let Some(app) = spawn_app_with(Options {
        smtp_script: &[451],
        retry_max_attempts: 1,
        telegram: false,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    let Some((_driver, browser, _profile)) = headless().await else {
        return;
    };
    app.put(
        "/api/v1/recipients/artist-1",
        &json!({ "name": "Zoé", "email": "zoe@example.org" }),
    )
    .await;
    let created = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "Répétition", "body": "Salle B" }),
        )
        .await;
    let id = created.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_delivery(&id, "email", "dead", PATIENCE).await;
    app.wait_for_delivery(&id, "in_app", "sent", PATIENCE).await;
    let reaped = app
        .post("/api/v1/admin/jobs/lease_reaper/run", &json!({}))
        .await;
    assert_eq!(reaped.status, 200);

    // Act: sign in.
    browser
        .goto(&format!("{}/admin?lang=fr", app.address))
        .await
        .unwrap();
    browser
        .find(Locator::Css("#api_key"))
        .await
        .unwrap()
        .send_keys(API_KEY)
        .await
        .unwrap();
    browser
        .find(Locator::Css("#login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Assert: the numbers of the day.
    let shown = wait_for(&browser, "the dashboard after sign-in", |s| {
        s["dead_count"] == "1"
    })
    .await;
    assert_eq!(
        shown["verdict"], "badge bad",
        "a dead letter needs attention"
    );
    assert_eq!(shown["email_total"], "1");
    assert_eq!(shown["email_sent"], "0");
    assert_eq!(shown["in_app_sent"], "1");
    assert_eq!(shown["in_app_rate"], "100.0 %");
    assert_eq!(shown["dead_rows"], 1);
    assert_eq!(shown["cookies"], "", "the session cookie is HttpOnly");
    let jobs = shown["jobs"].as_array().unwrap();
    assert!(
        jobs.iter()
            .any(|j| j.as_str().unwrap().starts_with("lease_reaper success")),
        "{jobs:?}"
    );

    // Act: retry the dead delivery from the page.
    browser
        .find(Locator::Css("#dead button.retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Assert: requeued, then really sent (the SMTP server accepts the second try).
    wait_for(&browser, "the retry is acknowledged", |s| {
        s["outcome"] == "Remis en file" && s["dead_count"] == "0"
    })
    .await;
    app.wait_for_delivery(&id, "email", "sent", PATIENCE).await;
    browser
        .goto(&format!("{}/admin?lang=en", app.address))
        .await
        .unwrap();
    let after = wait_for(&browser, "the dashboard after the retry", |s| {
        s["email_sent"] == "1"
    })
    .await;
    assert_eq!(after["verdict"], "badge good");
    assert_eq!(after["dead_rows"], 0);
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_dashboard_shows_the_sign_in_form_without_a_session_and_refuses_a_wrong_key() {
    let Some(app) = spawn_app_with(Options::default()).await else {
        return;
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let anonymous = client
        .get(format!("{}/admin?lang=en", app.address))
        .send()
        .await
        .unwrap();
    let csp = anonymous.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = anonymous.text().await.unwrap();
    let refused = client
        .post(format!("{}/admin/login", app.address))
        .form(&[("api_key", "wrong")])
        .send()
        .await
        .unwrap();
    let accepted = client
        .post(format!("{}/admin/login", app.address))
        .form(&[("api_key", API_KEY)])
        .send()
        .await
        .unwrap();
    let retry_without_session = client
        .post(format!(
            "{}/admin/deliveries/0190f5f2-7a3b-7cde-9f00-000000000011/retry",
            app.address
        ))
        .header("X-Clairon-Admin", "1")
        .send()
        .await
        .unwrap();

    assert!(page.contains("id=\"api_key\""), "the sign-in form");
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"));
    assert_eq!(
        script_src,
        Some("script-src 'self'"),
        "no inline script: {csp}"
    );
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(accepted.status().as_u16(), 303);
    let cookie = accepted.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("clairon_admin="), "{cookie}");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=28800",
        "Path=/admin",
    ] {
        assert!(cookie.contains(attribute), "{cookie} has {attribute}");
    }
    assert_eq!(retry_without_session.status().as_u16(), 401);
}
