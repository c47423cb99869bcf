//! The notification center page in a real headless Chromium (Debian's `chromium`, driven through
//! `chromedriver` with fantoccini): the badge, a live notification, mark read, and catching up
//! after the server is killed and restarted on the same database and port; the SVG bell, unread
//! marks, relative times, the action button and the counts per filter; the preference centre
//! saving through `/api/v1/me/preferences`.
//!
//! Without `chromium` and `chromedriver` the test prints `skipped:` and passes — except under
//! CI (`CI` set), where it fails: `.ci/run` installs them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clairon_application::commands::{CreateNotification, NotificationDraft};
use clairon_bootstrap::{Application, Components, Settings};
use clairon_domain::{Body, EventType, Metadata, NotificationKind, Priority, RecipientId, Title};
use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};

pub(super) const CHROMIUM: &str = "/usr/bin/chromium";
pub(super) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub(super) const PATIENCE: Duration = Duration::from_secs(30);

pub(super) struct Driver(pub(super) Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn settings(dir: &std::path::Path, bind: String) -> Settings {
    Settings {
        database_url: format!("sqlite://{}", dir.join("clairon.db").display()),
        database_pool_size: 4,
        bind,
        api_keys: clairon_tests::API_KEY.into(),
        channels: "in_app".into(),
        email_outbox_dir: dir.join("outbox"),
        dispatch_poll_ms: 50,
        token_secret: clairon_tests::TOKEN_SECRET.into(),
        log: std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()),
        ..Settings::default()
    }
}

/// Starts the app; returns its port, a handle that stops it, and its task.
async fn start(
    settings: Settings,
) -> (
    u16,
    actix_web::dev::ServerHandle,
    tokio::task::JoinHandle<()>,
) {
    let app = Application::build(settings).await.expect("the app builds");
    let port = app.port();
    let handle = app.server_handle();
    let task = tokio::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    (port, handle, task)
}

/// Badge text, bell label, and titles listed, as the page shows them.
async fn page_state(browser: &fantoccini::Client) -> Value {
    browser
        .execute(
            "return { badge: document.querySelector('#badge').textContent, \
                      label: document.querySelector('#bell').getAttribute('aria-label'), \
                      titles: [...document.querySelectorAll('#list li h2')].map(h => h.textContent), \
                      state: document.querySelector('main').dataset.state || '' };",
            vec![],
        )
        .await
        .expect("the page answers")
}

async fn wait_for(browser: &fantoccini::Client, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = page_state(browser).await;
        if ok(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "{what}: the page shows {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts chromedriver and a headless Chromium session for one test: keep the three values
/// alive as long as the browser is used (the driver process and the profile directory go with
/// them). `None` (after printing `skipped:`) without Debian's `chromium` and `chromium-driver`,
/// except under `CI`, where their absence fails the test.
pub(super) async fn headless() -> Option<(Driver, fantoccini::Client, tempfile::TempDir)> {
    headless_with_prefs(json!({})).await
}

/// Like [`headless`], with Chromium's profile preferences `prefs` (for instance
/// `{"profile.default_content_setting_values.notifications": 1}`: notifications allowed, as
/// if the user had answered the permission prompt).
pub(super) async fn headless_with_prefs(
    prefs: Value,
) -> Option<(Driver, fantoccini::Client, tempfile::TempDir)> {
    let found =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: {CHROMIUM} or {CHROMEDRIVER} not installed");
        return None;
    }
    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": prefs,
        }),
    );
    let deadline = Instant::now() + PATIENCE;
    let client = loop {
        match ClientBuilder::native()
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "chromedriver: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    Some((driver, client, profile))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_page_updates_live_marks_read_and_catches_up_after_a_restart() {
    let Some((_driver, browser, _profile)) = headless().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (port, server, task) = start(settings(dir.path(), "127.0.0.1:0".into())).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(clairon_tests::API_KEY)
            .json(&body)
            .send()
    };
    api(
        reqwest::Method::PUT,
        "/api/v1/recipients/artist-1",
        json!({ "name": "Zoé" }),
    )
    .await
    .unwrap();
    let notify = |title: &'static str| {
        api(
            reqwest::Method::POST,
            "/api/v1/notifications",
            json!({ "recipient_ids": ["artist-1"], "title": title, "body": "…" }),
        )
    };
    assert_eq!(notify("First").await.unwrap().status(), 202);
    let token: Value = api(
        reqwest::Method::POST,
        "/api/v1/recipients/artist-1/tokens",
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    browser
        .goto(&format!("{base}/inbox?lang=en&token={token}"))
        .await
        .unwrap();
    wait_for(&browser, "the badge counts the unread one", |s| {
        s["badge"] == "1"
            && s["label"] == "1 unread notification"
            && s["titles"] == json!(["First"])
    })
    .await;
    let url = browser.current_url().await.unwrap();
    assert!(
        !url.as_str().contains("token="),
        "the token left the address bar: {url}"
    );

    wait_for(&browser, "live", |s| s["state"] == "live").await;
    assert_eq!(notify("Second").await.unwrap().status(), 202);
    wait_for(&browser, "a live notification without reloading", |s| {
        s["badge"] == "2" && s["titles"] == json!(["Second", "First"])
    })
    .await;

    browser
        .find(Locator::Css("#list li .mark-read"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "the badge drops after marking one read", |s| {
        s["badge"] == "1" && s["label"] == "1 unread notification"
    })
    .await;

    // Kill the server; a notification arrives while it is down (written by another process).
    server.stop(false).await;
    task.await.unwrap();
    let offline = Components::build(&settings(dir.path(), "127.0.0.1:0".into()))
        .await
        .unwrap();
    offline
        .handlers
        .create_notification
        .execute(CreateNotification {
            drafts: vec![NotificationDraft {
                recipient_id: RecipientId::parse("artist-1").unwrap(),
                kind: NotificationKind::Info,
                priority: Priority::Normal,
                title: Title::parse("While you were away").unwrap(),
                body: Body::parse("…").unwrap(),
                action_url: None,
                action_label: None,
                metadata: Metadata::new(),
                event_type: EventType::parse(EventType::CUSTOM).unwrap(),
                source_event_id: None,
                channels: None,
                rule: None,
                fallback: Vec::new(),
            }],
            deliver_at: None,
        })
        .await
        .unwrap();
    drop(offline);
    wait_for(&browser, "the page notices the server is gone", |s| {
        s["state"] == "reconnecting"
    })
    .await;

    let (_, server, task) = start(settings(dir.path(), format!("127.0.0.1:{port}"))).await;
    wait_for(&browser, "the page catches up after the restart", |s| {
        s["state"] == "live"
            && s["badge"] == "2"
            && s["titles"] == json!(["While you were away", "Second", "First"])
    })
    .await;

    browser.close().await.unwrap();
    server.stop(false).await;
    task.await.unwrap();
}

/// What the notification center shows beyond titles: the bell, each item's marks, time and
/// action, and the count on each filter.
async fn inbox_details(browser: &fantoccini::Client) -> Value {
    browser
        .execute(
            "const bell = document.querySelector('#bell'); \
             return { \
               svg: !!bell.querySelector('svg path'), \
               bell_text: bell.textContent.replace(/\\s+/g, ''), \
               state: document.querySelector('main').dataset.state || '', \
               counts: Object.fromEntries([...document.querySelectorAll('.count[data-filter]')] \
                 .map(s => [s.dataset.filter, s.textContent])), \
               items: [...document.querySelectorAll('#list li')].map(li => ({ \
                 title: li.querySelector('h2').textContent, \
                 read: li.dataset.read, \
                 dot: !!li.querySelector('.unread-dot'), \
                 marker: li.querySelector('.unread-marker')?.textContent || '', \
                 time: li.querySelector('time').textContent, \
                 action: li.querySelector('a.action') && { \
                   href: li.querySelector('a.action').getAttribute('href'), \
                   text: li.querySelector('a.action').textContent }, \
                 html_in_title: !!li.querySelector('h2 b') })) };",
            vec![],
        )
        .await
        .expect("the page answers")
}

async fn wait_for_details(
    browser: &fantoccini::Client,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = inbox_details(browser).await;
        if ok(&state) {
            return state;
        }
        assert!(Instant::now() < deadline, "{what}: the page shows {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_shows_an_svg_bell_unread_marks_relative_times_an_action_button_and_counts_per_filter(
) {
    let Some((_driver, browser, _profile)) = headless().await else {
        return;
    };
    let app = clairon_tests::spawn_app().await;
    let put = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé", "locale": "fr" }),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.json);
    for body in [
        json!({ "recipient_ids": ["artist-1"], "title": "Plain <b>not bold</b>", "body": "…" }),
        json!({ "recipient_ids": ["artist-1"], "title": "Contrat prêt", "body": "À signer",
                "action_url": "https://planning.example.org/contracts/7?a=1&b=2",
                "action_label": "Voir le contrat" }),
    ] {
        let created = app.post("/api/v1/notifications", &body).await;
        assert_eq!(created.status, 202, "{}", created.json);
    }
    let token = app.token_for("artist-1").await;

    browser
        .goto(&format!("{}/inbox?lang=fr&token={token}", app.address))
        .await
        .unwrap();
    let shown = wait_for_details(&browser, "both notifications, live", |s| {
        s["state"] == "live" && s["items"].as_array().is_some_and(|i| i.len() == 2)
    })
    .await;

    assert_eq!(shown["svg"], true, "the bell is an inline SVG: {shown}");
    assert!(
        !shown["bell_text"].as_str().unwrap().contains('🔔'),
        "no emoji left: {shown}"
    );
    let contract = &shown["items"][0];
    assert_eq!(contract["title"], "Contrat prêt", "{shown}");
    assert_eq!(
        contract["marker"], "Non lue",
        "said to screen readers: {shown}"
    );
    assert_eq!(
        contract["action"],
        json!({ "href": "https://planning.example.org/contracts/7?a=1&b=2", "text": "Voir le contrat" }),
        "the action_url as a button with its label"
    );
    let plain = &shown["items"][1];
    assert_eq!(plain["action"], Value::Null, "no action_url, no button");
    assert_eq!(plain["html_in_title"], false, "text stays text: {shown}");
    for item in shown["items"].as_array().unwrap() {
        assert_eq!(item["read"], "false");
        assert_eq!(item["dot"], true, "unread items are marked: {item}");
        let time = item["time"].as_str().unwrap();
        assert!(
            time.starts_with("il y a") || time == "maintenant",
            "a relative time in French: {time}"
        );
    }
    assert_eq!(
        shown["counts"],
        json!({ "all": "2", "unread": "2", "read": "0" })
    );
    // The formatting itself, in the browser's Intl: five minutes ago, in each language (French
    // puts a no-break space between the number and the unit).
    let relative = browser
        .execute(
            "return import('/static/clairon.js').then(m => { \
               const then = new Date(Date.now() - 5 * 60 * 1000 - 2000).toISOString(); \
               const spaced = (s) => s.replace(/\\u00a0/g, ' '); \
               return [spaced(m.relativeTime(then, 'fr')), spaced(m.relativeTime(then, 'en')), \
                       m.safeHttpUrl('javascript:alert(1)')]; });",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(relative, json!(["il y a 5 min", "5 min. ago", null]));

    browser
        .find(Locator::Css("#list li .mark-read"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let marked = wait_for_details(&browser, "one read", |s| s["counts"]["unread"] == "1").await;
    assert_eq!(
        marked["counts"],
        json!({ "all": "2", "unread": "1", "read": "1" })
    );
    assert_eq!(marked["items"][0]["dot"], false, "{marked}");
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preference_centre_switches_an_event_types_email_off_and_the_api_shows_it() {
    let Some((_driver, browser, _profile)) = headless().await else {
        return;
    };
    let app = clairon_tests::spawn_app().await;
    let put = app
        .put(
            "/api/v1/recipients/artist-1",
            &json!({ "name": "Zoé", "email": "zoe@example.org", "locale": "en" }),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.json);
    let consent = app
        .post(
            "/api/v1/recipients/artist-1/consents",
            &json!({ "channel": "sms", "granted": true, "source": "signup-form",
                     "wording": "I agree to receive text messages" }),
        )
        .await;
    assert_eq!(consent.status, 201, "{}", consent.json);
    let token = app.token_for("artist-1").await;

    browser
        .goto(&format!("{}/inbox?lang=en&token={token}", app.address))
        .await
        .unwrap();
    wait_for(&browser, "live", |s| s["state"] == "live").await;
    browser
        .find(Locator::Id("prefs-toggle"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let prefs_state = |browser: &fantoccini::Client| {
        let browser = browser.clone();
        async move {
            browser
                .execute(
                    "const p = document.querySelector('#prefs'); \
                     return { loaded: p.dataset.loaded || '', saved: p.dataset.saved || '', \
                              hidden: p.hidden, status: document.querySelector('#prefs-status').textContent, \
                              consents: [...document.querySelectorAll('#consents li')].map(li => li.textContent), \
                              rows: [...document.querySelectorAll('#prefs-events tbody tr')].map(tr => tr.dataset.eventType) };",
                    vec![],
                )
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + PATIENCE;
    let loaded = loop {
        let state = prefs_state(&browser).await;
        if state["loaded"] == "true" {
            break state;
        }
        assert!(Instant::now() < deadline, "the panel never loaded: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(loaded["hidden"], false);
    assert!(
        loaded["rows"]
            .as_array()
            .unwrap()
            .contains(&json!("planning.modified")),
        "{loaded}"
    );
    let consents = loaded["consents"].as_array().unwrap();
    assert!(
        consents.len() == 1
            && consents[0]
                .as_str()
                .unwrap()
                .starts_with("sms — granted (signup-form)"),
        "the consent history: {loaded}"
    );

    browser
        .find(Locator::Css(
            "#prefs-events tr[data-event-type=\"planning.modified\"] input[data-channel=\"email\"]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Id("prefs-save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = prefs_state(&browser).await;
        if state["saved"] == "true" {
            assert_eq!(state["status"], "Preferences saved.", "{state}");
            break;
        }
        assert!(Instant::now() < deadline, "never saved: {state}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stored = app.get("/api/v1/recipients/artist-1/preferences").await;
    assert_eq!(stored.status, 200, "{}", stored.json);
    assert_eq!(
        stored.json["event_types"],
        json!({ "planning.modified": { "email": false } }),
        "the change, and only it, through the API: {}",
        stored.json
    );
    assert_ne!(
        stored.json["channels"]["email"],
        json!(false),
        "{}",
        stored.json
    );
    browser.close().await.unwrap();
}
