//! Test harness for the end-to-end tests: spawns a whole Clairon on port 0 with a fresh database
//! (SQLite in a temp dir, or a new PostgreSQL database), optionally wired to a real SMTP server
//! and a Telegram Bot API stand-in on loopback, and talks to it over HTTP.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clairon_adapters::testing::smtp_sink::SmtpSink;
use clairon_adapters::testing::telegram_stub::TelegramStub;
use clairon_adapters::testing::twilio_stub::TwilioStub;
use clairon_adapters::testing::SlackStub;
use clairon_bootstrap::{Application, Settings};
use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::Value;

/// The API key every test app accepts.
pub const API_KEY: &str = "test-key";
/// The secret every test app signs recipient tokens with.
pub const TOKEN_SECRET: &str = "test-token-secret-0123456789abcdef";
/// The Telegram bot token every test app uses with the stand-in.
pub const BOT_TOKEN: &str = "123456:TEST-token";

/// The project's copy of the planning dataset.
pub fn dataset() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/planning-spring-2027.json");
    serde_json::from_slice(&std::fs::read(path).expect("the dataset")).expect("the dataset is JSON")
}

/// Which database a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// SQLite in a temp dir.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// What to start around the app.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Database engine.
    pub engine: Engine,
    /// Start a real SMTP server (else emails go to `.eml` files).
    pub smtp: bool,
    /// SMTP reply codes to script (first DATA transactions), when `smtp`.
    pub smtp_script: &'static [u16],
    /// Start the Telegram stand-in and configure a bot token.
    pub telegram: bool,
    /// Start a second SMTP server as `CLAIRON_SMTP_FALLBACK_URL` (accepts everything).
    pub smtp_fallback: bool,
    /// `CLAIRON_RETRY_BASE_MS`: small, so retries happen while the test waits.
    pub retry_base_ms: u64,
    /// `CLAIRON_RETRY_MAX_ATTEMPTS`.
    pub retry_max_attempts: u32,
    /// `CLAIRON_METRICS_TOKEN` (empty: `/metrics` is open).
    pub metrics_token: &'static str,
    /// Start the Twilio stand-in and configure the account, an SMS and a WhatsApp sender
    /// number ([`TWILIO_SID`], [`SMS_FROM`], [`WHATSAPP_FROM`]), with `sms,whatsapp` added to
    /// the channels switched on.
    pub twilio: bool,
    /// Start the Slack incoming-webhook stand-in, with its host (`127.0.0.1`) in
    /// `CLAIRON_SLACK_ALLOWED_HOSTS` and `slack` added to the channels switched on.
    pub slack: bool,
}

/// Interval of the built-in jobs in the test apps, in s (a year: none falls inside a test).
pub const QUIET_JOB_INTERVAL_SECS: u64 = 365 * 86_400;

/// The Twilio account SID of the test apps with `twilio`.
pub const TWILIO_SID: &str = "AC0000000000000000000000000000c1a1";
/// Their Twilio auth token.
pub const TWILIO_TOKEN: &str = "twilio-test-token";
/// Their SMS sender number.
pub const SMS_FROM: &str = "+15005550006";
/// Their WhatsApp sender number.
pub const WHATSAPP_FROM: &str = "+14155238886";

impl Default for Options {
    fn default() -> Self {
        Self {
            engine: Engine::Sqlite,
            smtp: true,
            smtp_script: &[],
            telegram: true,
            smtp_fallback: false,
            retry_base_ms: 50,
            retry_max_attempts: 8,
            metrics_token: "",
            twilio: false,
            slack: false,
        }
    }
}

/// A running Clairon and its surroundings. Dropping it stops everything.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The SMTP server, when started.
    pub smtp: Option<SmtpSink>,
    /// The fallback SMTP server, when started.
    pub smtp_fallback: Option<SmtpSink>,
    /// The Telegram stand-in, when started.
    pub telegram: Option<TelegramStub>,
    /// The Twilio stand-in, when started (`Options::twilio`).
    pub twilio: Option<TwilioStub>,
    /// The Slack stand-in, when started (`Options::slack`).
    pub slack: Option<SlackStub>,
    /// The `.eml` directory when no SMTP server runs.
    pub outbox_dir: PathBuf,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The database URL (a second app on the same database: [`TestApp::spawn_peer`]).
    pub database_url: String,
    /// The admin key the app generated at its first start (only when `api_keys` was emptied by
    /// the test's settings).
    pub generated_api_key: Option<String>,
    _dir: tempfile::TempDir,
    _database: Option<PostgresDatabase>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

/// A throwaway PostgreSQL database, dropped (best effort) with the value.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
    /// URL of the new database.
    pub url: String,
}

impl PostgresDatabase {
    /// Creates a fresh database, or returns `None` (after saying so on stderr) when PostgreSQL is
    /// not reachable outside CI.
    ///
    /// # Panics
    /// When PostgreSQL is not reachable and `CI` is set: CI never skips PostgreSQL.
    pub fn create() -> Option<Self> {
        let admin_url = std::env::var("CLAIRON_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL is required in CI but not reachable at {admin_url}: {e}")
            }
            Err(e) => {
                eprintln!("skipped: PostgreSQL not reachable at {admin_url}: {e}");
                return None;
            }
        };
        let name = format!("clairon_e2e_{}", uuid::Uuid::now_v7().simple());
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("CREATE DATABASE");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        Some(Self {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Spawns an app on SQLite with an SMTP server and the Telegram stand-in.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default())
        .await
        .expect("SQLite is always available")
}

/// Spawns an app with `options`; `None` when it needs PostgreSQL and PostgreSQL is not
/// reachable outside CI.
pub async fn spawn_app_with(options: Options) -> Option<TestApp> {
    spawn_app_configured(options, |_| {}).await
}

/// Like [`spawn_app_with`], with `configure` changing the settings last (rate limits, timeouts,
/// provider URLs, CORS origins).
pub async fn spawn_app_configured(
    options: Options,
    configure: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    spawn_app_on_clock(options, configure, None).await
}

/// A clock a test sets by hand: an app spawned with [`spawn_app_at`] reads "now" from it
/// everywhere (handlers, repositories, the dispatcher, the jobs), so a test can put it on a date
/// (a DST change) and move it past an instant instead of waiting. Its jobs' schedules wait
/// while it stands still.
#[derive(Debug)]
pub struct SettableClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl SettableClock {
    /// A clock showing `now` until [`SettableClock::set`].
    pub fn at(now: chrono::DateTime<chrono::Utc>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::Mutex::new(now)))
    }

    /// From now on, the clock shows `now`.
    pub fn set(&self, now: chrono::DateTime<chrono::Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
    }
}

impl clairon_application::ports::Clock for SettableClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Like [`spawn_app_with`], on `clock` instead of the system's.
pub async fn spawn_app_at(
    options: Options,
    clock: std::sync::Arc<SettableClock>,
) -> Option<TestApp> {
    spawn_app_on_clock(options, |_| {}, Some(clock)).await
}

async fn spawn_app_on_clock(
    options: Options,
    configure: impl FnOnce(&mut Settings),
    clock: Option<std::sync::Arc<SettableClock>>,
) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let database = match options.engine {
        Engine::Sqlite => None,
        Engine::Postgres => Some(PostgresDatabase::create()?),
    };
    let smtp = if options.smtp {
        Some(SmtpSink::start_with_script(options.smtp_script).await)
    } else {
        None
    };
    let smtp_fallback = if options.smtp_fallback {
        Some(SmtpSink::start().await)
    } else {
        None
    };
    let telegram = if options.telegram {
        Some(TelegramStub::start(BOT_TOKEN).await)
    } else {
        None
    };
    let twilio = if options.twilio {
        Some(TwilioStub::start(TWILIO_SID, TWILIO_TOKEN).await)
    } else {
        None
    };
    let slack = if options.slack {
        Some(SlackStub::start().await)
    } else {
        None
    };
    let outbox_dir = dir.path().join("outbox");
    let settings = Settings {
        database_url: database.as_ref().map_or_else(
            || format!("sqlite://{}", dir.path().join("clairon.db").display()),
            |db| db.url.clone(),
        ),
        database_pool_size: 4,
        bind: "127.0.0.1:0".into(),
        api_keys: API_KEY.into(),
        smtp_url: smtp.as_ref().map(SmtpSink::url).unwrap_or_default(),
        smtp_fallback_url: smtp_fallback
            .as_ref()
            .map(SmtpSink::url)
            .unwrap_or_default(),
        email_outbox_dir: outbox_dir.clone(),
        email_from: "Clairon <notifications@clairon.test>".into(),
        telegram_bot_token: if telegram.is_some() {
            BOT_TOKEN.into()
        } else {
            String::new()
        },
        telegram_api_url: telegram
            .as_ref()
            .map(TelegramStub::base_url)
            .unwrap_or_default(),
        dispatch_poll_ms: 50,
        retry_base_ms: options.retry_base_ms,
        // The pacing has its own tests; here it would only make the dataset test slow.
        telegram_rate_per_sec: 10_000,
        telegram_chat_rate_per_sec: 10_000,
        twilio_rate_per_sec: 10_000,
        retry_cap_secs: 1,
        retry_max_attempts: options.retry_max_attempts,
        token_secret: TOKEN_SECRET.into(),
        metrics_token: options.metrics_token.into(),
        log: std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()),
        // Rate limits have their own tests; elsewhere they would only slow the tests down.
        rate_limit_per_sec: 0,
        token_rate_limit_per_sec: 0,
        // The built-in jobs' occurrences are multiples of their interval since the epoch: at 60 s
        // one falls inside a test now and then and adds a run of its own to what it counts. Tests
        // run them by hand; one about the schedule sets its interval.
        reaper_interval_secs: QUIET_JOB_INTERVAL_SECS,
        idempotency_purge_interval_secs: QUIET_JOB_INTERVAL_SECS,
        digest_interval_secs: QUIET_JOB_INTERVAL_SECS,
        retention_interval_secs: QUIET_JOB_INTERVAL_SECS,
        // Coalesced planning changes hold outbound messages; most tests expect them at once
        // (tests/e2e/coalescing.rs turns it on).
        coalesce_secs: 0,
        ..Settings::default()
    };
    let mut settings = settings;
    if let Some(twilio) = &twilio {
        settings.twilio_api_url = twilio.base_url();
        settings.twilio_account_sid = TWILIO_SID.into();
        settings.twilio_auth_token = TWILIO_TOKEN.into();
        settings.sms_from = SMS_FROM.into();
        settings.whatsapp_from = WHATSAPP_FROM.into();
        settings.channels = format!("{},sms,whatsapp", settings.channels);
    }
    if slack.is_some() {
        settings.slack_allowed_hosts = "127.0.0.1".into();
        settings.channels = format!("{},slack", settings.channels);
    }
    configure(&mut settings);
    clairon_bootstrap::telemetry::init(&settings.log, "pretty");
    let database_url = settings.database_url.clone();
    let app = match clock {
        Some(clock) => Application::build_with_clock(settings, clock).await,
        None => Application::build(settings).await,
    }
    .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let generated_api_key = app.components().generated_api_key.clone();
    // What SIGTERM does in production, triggered by `TestApp::shut_down` instead.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let app = TestApp {
        address,
        smtp,
        smtp_fallback,
        telegram,
        twilio,
        slack,
        outbox_dir,
        client: test_client(),
        database_url,
        generated_api_key,
        _dir: dir,
        _database: database,
        server: Some(server),
        stop: Some(stop),
    };
    app.wait_until_ready().await;
    Some(app)
}

/// An HTTP answer: status, content type and body (JSON when it parses).
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Body as JSON (`Value::Null` when not JSON).
    pub json: Value,
    /// Whether the answer carries `Idempotent-Replayed: true`.
    pub replayed: bool,
}

impl TestApp {
    /// Shuts the app down as SIGTERM would and waits until it has stopped: workers finish
    /// their batch, the HTTP server its requests.
    ///
    /// # Panics
    /// When the app does not stop within `timeout` or stops with an error.
    pub async fn shut_down(&mut self, timeout: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let server = self.server.take().expect("the app is running");
        tokio::time::timeout(timeout, server)
            .await
            .expect("the app stops after a shutdown signal")
            .expect("the app task did not panic")
            .expect("the app stopped cleanly");
    }

    /// A second app (another "process") on this app's database, without SMTP or Telegram; the
    /// database stays owned by `self`.
    pub async fn spawn_peer(&self) -> TestApp {
        let peer = self.spawn_peer_configured(|_| {}).await;
        peer.wait_until_ready().await;
        peer
    }

    /// Like [`TestApp::spawn_peer`], with `configure` changing the settings last (a read-only
    /// database URL…), and without waiting for it to be ready: the peer may never be.
    pub async fn spawn_peer_configured(&self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("a temp dir");
        let outbox_dir = dir.path().join("outbox");
        let settings = Settings {
            database_url: self.database_url.clone(),
            database_pool_size: 4,
            bind: "127.0.0.1:0".into(),
            api_keys: API_KEY.into(),
            email_outbox_dir: outbox_dir.clone(),
            email_from: "Clairon <notifications@clairon.test>".into(),
            dispatch_poll_ms: 50,
            token_secret: TOKEN_SECRET.into(),
            log: std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()),
            reaper_interval_secs: QUIET_JOB_INTERVAL_SECS,
            idempotency_purge_interval_secs: QUIET_JOB_INTERVAL_SECS,
            digest_interval_secs: QUIET_JOB_INTERVAL_SECS,
            retention_interval_secs: QUIET_JOB_INTERVAL_SECS,
            coalesce_secs: 0,
            ..Settings::default()
        };
        let mut settings = settings;
        configure(&mut settings);
        let app = Application::build(settings).await.expect("the peer builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp {
            address,
            smtp: None,
            smtp_fallback: None,
            telegram: None,
            twilio: None,
            slack: None,
            outbox_dir,
            client: test_client(),
            database_url: self.database_url.clone(),
            generated_api_key: None,
            _dir: dir,
            _database: None,
            server: Some(server),
            stop: Some(stop),
        }
    }

    /// Polls `GET /health/ready` until it answers 200: the dispatcher workers are started by
    /// the spawned task, possibly after the listener already answers.
    ///
    /// # Panics
    /// When the app is not ready within 30 s.
    pub async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .client
                .get(format!("{}/health/ready", self.address))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "the app never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A recipient token for `recipient` (`POST /api/v1/recipients/{id}/tokens`).
    ///
    /// # Panics
    /// When the app refuses.
    pub async fn token_for(&self, recipient: &str) -> String {
        let answer = self
            .post(
                &format!("/api/v1/recipients/{recipient}/tokens"),
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.json["token"].as_str().expect("a token").to_owned()
    }

    /// `method path` with a recipient token instead of the API key.
    pub async fn call_as(&self, token: &str, method: reqwest::Method, path: &str) -> Answer {
        let response = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("the app answers");
        Self::answer(response).await
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let bytes = response.bytes().await.expect("a body");
        Answer {
            status,
            content_type,
            replayed,
            json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// `method path` with the API key and an optional JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(API_KEY);
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(request.send().await.expect("the app answers")).await
    }

    /// `method path` with `key` (another API key, or none at all) and an optional JSON body.
    pub async fn call_with_key(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(request.send().await.expect("the app answers")).await
    }

    /// Makes an API key with `scope` (`send`, `read`, `admin`) in this app's database, as
    /// `clairon api-keys create` does; returns its id and secret.
    ///
    /// # Panics
    /// On a bad scope or when the database refuses.
    pub async fn create_api_key(&self, name: &str, scope: &str) -> (i64, String) {
        let db = clairon_adapters::persistence::Database::connect(&self.database_url, 1)
            .await
            .expect("the app's database");
        let scope = clairon_domain::ApiScope::parse(scope).expect("a scope");
        let created = clairon_bootstrap::api_keys::create(&db, name, scope)
            .await
            .expect("the key is stored");
        (created.record.id, created.secret)
    }

    /// Revokes API key `id` in this app's database, as `clairon api-keys revoke` does.
    ///
    /// # Panics
    /// When the key does not exist or the database refuses.
    pub async fn revoke_api_key(&self, id: i64) {
        let db = clairon_adapters::persistence::Database::connect(&self.database_url, 1)
            .await
            .expect("the app's database");
        clairon_bootstrap::api_keys::revoke(&db, id)
            .await
            .expect("the database answers")
            .expect("the key exists");
    }

    /// `GET path` with the API key.
    pub async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with the API key and a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `POST path` with the API key, an `Idempotency-Key` header and a JSON body.
    pub async fn post_idempotent(&self, path: &str, key: &str, body: &Value) -> Answer {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("the app answers");
        Self::answer(response).await
    }

    /// `PUT path` with the API key and a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `POST path` with the API key and a raw body.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>, content_type: &str) -> Answer {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(API_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the app answers");
        Self::answer(response).await
    }

    /// Registers the dataset's recipients.
    pub async fn import_dataset_recipients(&self, dataset: &Value) -> Answer {
        self.post(
            "/api/v1/recipients/import",
            &serde_json::json!({ "recipients": dataset["recipients"] }),
        )
        .await
    }

    /// Posts one dataset event to its planning's endpoint.
    pub async fn post_event(&self, event: &Value) -> Answer {
        let planning = event["planning_id"].as_str().expect("planning_id");
        self.post(
            &format!("/api/v1/notifications/plannings/{planning}/events"),
            event,
        )
        .await
    }

    /// Polls `GET /api/v1/notifications/{id}` until its delivery on `channel` has `status`;
    /// returns that delivery.
    ///
    /// # Panics
    /// After `timeout`.
    pub async fn wait_for_delivery(
        &self,
        id: &str,
        channel: &str,
        status: &str,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.get(&format!("/api/v1/notifications/{id}")).await;
            let delivery = answer.json["deliveries"]
                .as_array()
                .and_then(|ds| ds.iter().find(|d| d["channel"] == channel).cloned());
            if let Some(delivery) = delivery.filter(|d| d["status"] == status) {
                return delivery;
            }
            assert!(
                Instant::now() < deadline,
                "the {channel} delivery of {id} never became {status}: {}",
                answer.json
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls `GET /api/v1/notifications/{id}` until no delivery is pending, sending or
    /// retrying: every one is final (sent, failed, dead, skipped).
    ///
    /// # Panics
    /// After `timeout`.
    pub async fn wait_until_settled(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.get(&format!("/api/v1/notifications/{id}")).await;
            let settled = answer.json["deliveries"].as_array().is_some_and(|ds| {
                ds.iter().all(|d| {
                    !matches!(
                        d["status"].as_str(),
                        Some("pending" | "sending" | "retrying")
                    )
                })
            });
            if settled {
                return answer.json;
            }
            assert!(
                Instant::now() < deadline,
                "deliveries of {id} still in flight: {}",
                answer.json
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The HTTP client of the test apps. Its idle connections are dropped after 5 s, before the
/// app's keep-alive (15 s) closes them: a request sent on a connection the server is closing
/// at that moment fails with "IncompleteMessage" (a test that waited a while between two
/// requests, such as for the dataset's Telegram messages, would fail by chance).
fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("an HTTP client")
}
