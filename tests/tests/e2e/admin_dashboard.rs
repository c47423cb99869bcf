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
                      jobs: [...document.querySelectorAll('#scheduled-runs tbody tr')].map(r => [...r.cells].map(c => c.textContent.trim()).join(' ')), \
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

/// The health logs as the page shows them.
async fn health_logs(browser: &fantoccini::Client) -> Value {
    browser
        .execute(
            "const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)].map(r => [...r.cells].map(c => c.textContent.trim()).join(' | ')); \
             const split = (c) => document.querySelector(`#queue-split tr[data-channel=${c}]`); \
             return { line: document.querySelector('#health-line')?.textContent.replace(/\\s+/g, ' ').trim() || '', \
                      failures: [...document.querySelectorAll('#health-line .failure')].map(f => f.textContent), \
                      scheduled_hidden: document.querySelector('#panel-scheduled').hidden, \
                      syncs_hidden: document.querySelector('#panel-syncs').hidden, \
                      scheduled_stats: rows('scheduled-stats'), scheduled_runs: rows('scheduled-runs'), \
                      syncs_stats: rows('syncs-stats'), syncs_runs: rows('syncs-runs'), \
                      stats_open: document.querySelector('#syncs-runs details')?.open || false, \
                      stats_json: document.querySelector('#syncs-runs pre.stats')?.textContent || '', \
                      email_due: split('email')?.querySelector('.due').textContent, \
                      email_later: split('email')?.querySelector('.later').textContent.trim(), \
                      email_oldest: split('email')?.querySelector('.oldest').textContent, \
                      email_skipped: document.querySelector('#deliveries tr[data-channel=telegram] .skipped')?.textContent, \
                      pending: document.querySelector('#pending-later')?.textContent || '', \
                      verdict: document.querySelector('#verdict')?.className || '' };",
            vec![],
        )
        .await
        .expect("the page answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_logs_tell_what_failed_since_yesterday_evening_per_tab_and_future_work_is_pending_not_stuck(
) {
    // Arrange: a failed chained run (the file's sync points at a closed port, its report is
    // skipped), an external sync reported with stats, and a notification due tomorrow.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jobs.toml");
    std::fs::write(
        &file,
        "[[job]]\nname = \"sync-gazelle\"\nschedule = \"0 1 * * *\"\ntimezone = \"America/Montreal\"\nrequest = { url = \"http://127.0.0.1:9/sync\", timeout_s = 5 }\n\
         [[job]]\nname = \"timeline-report\"\nafter = \"sync-gazelle\"\nrequest = { url = \"http://127.0.0.1:9/report\" }\n",
    )
    .unwrap();
    let Some(app) = clairon_tests::spawn_app_configured(
        Options {
            telegram: false,
            ..Options::default()
        },
        |s| {
            s.jobs_file = file;
            s.dashboard_timezone = "America/Montreal".into();
        },
    )
    .await
    else {
        return;
    };
    let Some((_driver, browser, _profile)) = headless().await else {
        return;
    };
    let run = app
        .post("/api/v1/admin/jobs/sync-gazelle/run", &json!({}))
        .await;
    assert_eq!(run.json["status"], "error", "{}", run.json);
    let reported = app
        .post(
            "/api/v1/job-runs",
            &json!({"job": "inventory-sync", "task_type": "sync", "status": "success",
                    "triggered_by": "manual", "stats": {"pianos": 100}}),
        )
        .await;
    assert_eq!(reported.status, 201, "{}", reported.json);
    app.put(
        "/api/v1/recipients/artist-1",
        &json!({ "name": "Zoé", "email": "zoe@example.org" }),
    )
    .await;
    let tomorrow = chrono::Utc::now() + chrono::TimeDelta::days(1);
    let later = app
        .post(
            "/api/v1/notifications",
            &json!({ "recipient_ids": ["artist-1"], "title": "Rappel", "body": "Demain",
                     "deliver_at": tomorrow.to_rfc3339(), "channels": ["email"] }),
        )
        .await;
    assert_eq!(later.status, 202, "{}", later.json);

    // Act: sign in, then open the "Syncs" tab and a run's stats.
    browser
        .goto(&format!("{}/admin?lang=en", app.address))
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
    browser
        .wait()
        .for_element(Locator::Css("#health-line"))
        .await
        .unwrap();
    let before = health_logs(&browser).await;
    browser
        .find(Locator::Css("#tab-syncs"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Css("#syncs-runs summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let after = health_logs(&browser).await;

    // Assert: the night's verdict names what failed.
    assert!(
        before["line"]
            .as_str()
            .unwrap()
            .starts_with("Since yesterday 18:00 (America/Montreal)"),
        "{before}"
    );
    assert_eq!(
        before["failures"],
        json!(["sync-gazelle (error)", "timeline-report (skipped)"]),
        "{before}"
    );
    // The scheduled tab first: the file's jobs with their figures and runs.
    assert_eq!(before["scheduled_hidden"], false);
    assert_eq!(before["syncs_hidden"], true);
    let stats = before["scheduled_stats"].as_array().unwrap();
    assert!(
        stats
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("sync-gazelle | 1 | 0.0 %")),
        "{stats:?}"
    );
    let runs = before["scheduled_runs"].as_array().unwrap();
    assert!(
        runs.iter().any(|r| {
            let r = r.as_str().unwrap();
            r.starts_with("timeline-report ↳ | skipped") && r.contains("| api |")
        }),
        "{runs:?}"
    );
    // The syncs tab: the reported run, its stats expandable.
    assert_eq!(after["syncs_hidden"], false);
    assert_eq!(after["scheduled_hidden"], true);
    assert!(
        after["syncs_stats"][0]
            .as_str()
            .unwrap()
            .starts_with("inventory-sync | 1 | 100.0 %"),
        "{after}"
    );
    assert_eq!(after["stats_open"], true);
    assert!(after["stats_json"]
        .as_str()
        .unwrap()
        .contains("\"pianos\": 100"));
    // The queue: tomorrow's email is pending for later, nothing due, nothing stuck.
    assert_eq!(before["email_due"], "0", "{before}");
    assert!(
        before["email_later"].as_str().unwrap().starts_with('1'),
        "{before}"
    );
    assert_eq!(before["email_oldest"], "—");
    assert!(
        before["pending"].as_str().unwrap().contains("pending"),
        "{before}"
    );
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_the_rules_in_force_and_says_why_each_channel_of_a_notification_was_used_or_skipped(
) {
    // Arrange: a rule keeps project events in the inbox; one project event for Zoé.
    let Some(app) = spawn_app_with(Options::default()).await else {
        return;
    };
    let Some((_driver, browser, _profile)) = headless().await else {
        return;
    };
    app.put(
        "/api/v1/recipients/artist-1",
        &json!({ "name": "Zoé", "email": "zoe@example.org", "locale": "en" }),
    )
    .await;
    let rules = app
        .put(
            "/api/v1/routing-rules",
            &json!({"rules": [
                {"event": "project.*", "channels": ["in_app"], "priority": "high"},
                {"event": "job.failed", "topics": ["admins"]}
            ]}),
        )
        .await;
    assert_eq!(rules.status, 200, "{}", rules.json);
    let event = app
        .post(
            "/api/v1/events",
            &json!({"event_id": "ev-dash-1", "type": "project.created",
                    "occurred_at": "2027-03-01T10:00:00Z", "recipient_ids": ["artist-1"],
                    "title": "Carmen", "body": "A new project",
                    "data": {"project": {"id": "7", "name": "Carmen"}}}),
        )
        .await;
    assert_eq!(event.status, 202, "{}", event.json);
    let id = event.json["notifications"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.wait_for_delivery(&id, "in_app", "sent", PATIENCE).await;

    // Act: sign in, then look the notification up.
    browser
        .goto(&format!("{}/admin?lang=en", app.address))
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
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#rules"))
        .await
        .expect("the rules are listed once signed in");
    let listed = browser
        .execute(
            "return { version: document.querySelector('#rules-version').textContent, \
                      rows: [...document.querySelectorAll('#rules tbody tr')].map(r => [...r.cells].map(c => c.textContent.trim())) };",
            vec![],
        )
        .await
        .unwrap();
    browser
        .find(Locator::Css("#why-id"))
        .await
        .unwrap()
        .send_keys(&id)
        .await
        .unwrap();
    browser
        .find(Locator::Css("#why-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#why"))
        .await
        .expect("the notification's deliveries are shown");
    let why = browser
        .execute(
            "return Object.fromEntries([...document.querySelectorAll('#why tbody tr')].map(r => \
                [r.dataset.channel, { status: r.querySelector('.status').textContent, reason: r.querySelector('.reason').textContent }]));",
            vec![],
        )
        .await
        .unwrap();
    browser
        .goto(&format!(
            "{}/admin?lang=en&notification=no-such-id",
            app.address
        ))
        .await
        .unwrap();
    let missing = browser.find(Locator::Css("#why-missing")).await.is_ok();

    // Assert
    assert_eq!(listed["version"], "(version 1)", "{listed}");
    assert_eq!(
        listed["rows"],
        json!([
            ["project.*", "", "in_app", "high"],
            ["job.failed", "admins", "any", "—"]
        ]),
        "{listed}"
    );
    assert_eq!(why["in_app"]["status"], "sent", "{why}");
    assert_eq!(why["email"]["status"], "skipped", "{why}");
    assert_eq!(why["email"]["reason"], "not_in_rule: project.*", "{why}");
    assert!(missing, "an unknown id says so");
    browser.close().await.unwrap();
}
