//! Configuration: `CLAIRON_*` environment variables (and a `.env` file, read by `main`), with
//! defaults that make `cargo run` work with nothing installed. Loaded with figment.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clairon_adapters::http::{AuthFailureQuota, RateLimits, RateQuota};
use clairon_adapters::links::PublicUrl;
use clairon_domain::reminders::ReminderTime;
use clairon_domain::{ChannelSet, Locale};
use figment::providers::{Env, Serialized};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The shortest `CLAIRON_TOKEN_SECRET` accepted, in bytes: an HS256 key shorter than the hash
/// output (256 bits) weakens it (RFC 7518 § 3.2: "A key of the same size as the hash output …
/// or larger MUST be used").
pub const MIN_TOKEN_SECRET_BYTES: usize = 32;

/// Every setting. Each field is read from `CLAIRON_<FIELD IN UPPER CASE>`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `sqlite://clairon.db` (default) or `postgres://user@host/db`.
    pub database_url: String,
    /// Database connections in the pool.
    pub database_pool_size: u32,
    /// Address the HTTP server listens on (`127.0.0.1:8080`; port 0 picks a free one).
    pub bind: String,
    /// The absolute URL Clairon is reached at from outside (`https://notify.example.org`,
    /// with a reverse proxy's path prefix if any): the base of every link Clairon writes
    /// (the emails' unsubscribe links). Empty (default): `http://{CLAIRON_BIND}`, with the
    /// port actually bound.
    pub public_url: String,
    /// Comma-separated API keys. Empty: a key is generated at first start and printed once.
    pub api_keys: String,
    /// Comma-separated channels switched on: `in_app,email,telegram` by default.
    pub channels: String,
    /// Comma-separated channels that need a granted consent before anything is delivered on
    /// them (`CLAIRON_CONSENT_REQUIRED`), names of `clairon_domain::KNOWN_CHANNELS`:
    /// `sms,whatsapp,web_push` by default; empty: none.
    pub consent_required: String,
    /// The fallback chain of planning notices of priority `high` and `critical`
    /// (`CLAIRON_PLANNING_FALLBACK`): comma-separated channels tried in order, each only when
    /// the one before gave up; `telegram,sms,email` by default; empty: no chain (every channel
    /// at once, as for other priorities).
    pub planning_fallback: String,
    /// SMTP server URL (`smtp://127.0.0.1:2525`, `smtps://user:pass@host`); empty: `.eml` files.
    pub smtp_url: String,
    /// Pooled SMTP connections.
    pub smtp_pool_size: u32,
    /// A second SMTP server, tried when the first fails transiently; empty: none.
    pub smtp_fallback_url: String,
    /// Where `.eml` files go when no SMTP server is configured.
    pub email_outbox_dir: PathBuf,
    /// The `From` mailbox of emails.
    pub email_from: String,
    /// Telegram bot token; empty: the Telegram channel skips every delivery.
    pub telegram_bot_token: String,
    /// Telegram Bot API base URL (requests go to `{url}/bot{token}/sendMessage`).
    pub telegram_api_url: String,
    /// Messages per second the bot sends in all (Telegram: about 30).
    pub telegram_rate_per_sec: u32,
    /// Messages per second the bot sends to one chat (Telegram: 1).
    pub telegram_chat_rate_per_sec: u32,
    /// Language for recipients without one: `fr` (default) or `en`.
    pub default_locale: String,
    /// A directory whose template files replace the built-in ones of the same path (the
    /// others still come from the binary); empty (default): the built-in templates only.
    pub templates_dir: PathBuf,
    /// Deliveries claimed per dispatcher round.
    pub dispatch_batch_size: u32,
    /// How often the dispatcher looks for due deliveries when nothing woke it, in ms.
    pub dispatch_poll_ms: u64,
    /// How long a claimed delivery stays claimed before another dispatcher may take it, in s.
    pub dispatch_lease_secs: u64,
    /// Dispatcher workers in this process, each claiming its own batches (SQLite: forced to 1,
    /// it has one writer anyway).
    pub workers: u32,
    /// First retry delay ceiling after a transient failure, in ms.
    pub retry_base_ms: u64,
    /// Growth of the retry delay ceiling per failed try.
    pub retry_factor: f32,
    /// Largest retry delay ceiling, in s.
    pub retry_cap_secs: u64,
    /// Tries in all before a transiently failing delivery is `dead`.
    pub retry_max_attempts: u32,
    /// Local time of day (`HH:MM`) of the J-1 reminders, in each recipient's time zone.
    pub reminder_local_time: String,
    /// `tracing` filter directives (`info`, `clairon=debug,actix_web=info`).
    pub log: String,
    /// `pretty` (default) or `json`.
    pub log_format: String,
    /// HS256 secret of recipient tokens, at least [`MIN_TOKEN_SECRET_BYTES`] bytes; empty: a
    /// random one per process (tokens die with it).
    pub token_secret: String,
    /// Lifetime of a recipient token, in s (12 h by default).
    pub token_ttl_secs: u64,
    /// How long a recipient's token generation, once read, is trusted, in ms: the longest a
    /// revoked recipient token keeps working in a process that did not hear of the revocation
    /// (5 s by default; 0: every request reads it).
    pub token_cache_ms: u64,
    /// Where live inbox events go between processes: empty (the default) for PostgreSQL
    /// `LISTEN/NOTIFY` on PostgreSQL and nothing on SQLite, or a NATS server,
    /// `nats://host:port` (`CLAIRON_REALTIME_BROKER`).
    pub realtime_broker: String,
    /// Notifications older than this many days (with their deliveries and attempts) are
    /// purged by the daily retention job (365 by default).
    pub retention_days: u32,
    /// Job runs older than this many days are purged by the retention job (30 by default).
    pub job_runs_retention_days: u32,
    /// Interval of the lease reaper, in s (60 by default).
    pub reaper_interval_secs: u64,
    /// Interval of the retention job, in s (86,400: daily, by default).
    pub retention_interval_secs: u64,
    /// Interval of the expired `Idempotency-Key` purge, in s (3,600 by default).
    pub idempotency_purge_interval_secs: u64,
    /// Interval of the `digests` job (`CLAIRON_DIGEST_INTERVAL_SECS`), in s (60 by default):
    /// how late after its window's end a digest may go out.
    pub digest_interval_secs: u64,
    /// A TOML file of scheduled HTTP jobs (`[[job]]` with `name`, `schedule` or `after`,
    /// `timezone`, `request = {method, url, timeout_s}`); empty (default): the built-in jobs only.
    pub jobs_file: PathBuf,
    /// The IANA time zone the dashboard's "since yesterday 18:00" is read in (`UTC` by default).
    pub dashboard_timezone: String,
    /// When set, `GET /metrics` requires `Authorization: Bearer <this token>`; empty (default):
    /// `/metrics` is open, like `/health` (keep it on a private network).
    pub metrics_token: String,
    /// How long a database API key lookup is trusted, in ms: the longest a revoked key keeps
    /// working in a running process (5 s by default; 0: every request asks the database).
    pub api_key_cache_ms: u64,
    /// Requests per second per API key, sustained (token bucket); 0: no limit. 500 by default:
    /// a runaway client is held well below what one process serves, so other keys still get
    /// through.
    pub rate_limit_per_sec: u32,
    /// Largest burst per API key, in requests (the bucket's size). 10,000 by default: twice
    /// the largest bulk job documented (5,000 recipients imported one `PUT` each), so the
    /// main job is never throttled however fast the server answers.
    pub rate_limit_burst: u32,
    /// Requests per second per recipient on `/api/v1/me` (whatever token of theirs); 0: no limit.
    pub token_rate_limit_per_sec: u32,
    /// Largest burst per recipient on `/api/v1/me`, in requests.
    pub token_rate_limit_burst: u32,
    /// Refused credentials (unknown or revoked API keys, failed `/admin` sign-ins) per minute
    /// per client address, sustained; beyond the burst, that address gets 429 for anything
    /// that presents a credential. 0: no limit.
    pub auth_failure_limit_per_min: u32,
    /// How many refused credentials a client address may have in a row, before the per-minute
    /// rate applies.
    pub auth_failure_limit_burst: u32,
    /// The request header whose last entry is the client's address, set by the reverse proxy in
    /// front (`X-Forwarded-For`, `X-Real-IP`); empty (default): the TCP peer's address.
    pub client_ip_header: String,
    /// Largest JSON request body, in bytes (256 KiB by default); beyond, 413.
    pub max_body_bytes: usize,
    /// Deepest nesting of arrays and objects in a JSON body (32 by default); beyond, 400.
    pub max_json_depth: usize,
    /// Largest `metadata` of one notification, in bytes of compact JSON (16 KiB by default);
    /// beyond, 422 naming `metadata`.
    pub max_metadata_bytes: usize,
    /// Largest content (title, body, action URL and label, metadata) of all the notifications
    /// one request creates together, J-1 reminders included, in bytes (8 MiB by default);
    /// beyond, 422 naming the recipients (`recipient_ids`, `artist_ids`).
    pub max_fanout_bytes: usize,
    /// Timeout of a whole SMTP send (connect, greeting, every reply), in ms (30 s by default):
    /// a silent server fails the attempt as transient instead of holding a worker.
    pub smtp_timeout_ms: u64,
    /// Timeout of a whole Telegram Bot API call, in ms (30 s by default; connecting gets at
    /// most 10 s of it).
    pub telegram_timeout_ms: u64,
    /// Comma-separated origins allowed to call `/api/v1/me` from browsers (CORS), such as
    /// `https://app.example.org`; empty: no CORS.
    pub cors_origins: String,
    /// Twilio API base URL (`https://api.twilio.com`); messages are posted to
    /// `{url}/2010-04-01/Accounts/{CLAIRON_TWILIO_ACCOUNT_SID}/Messages.json`.
    pub twilio_api_url: String,
    /// Twilio account SID (`AC…`); empty (default): no SMS or WhatsApp provider.
    pub twilio_account_sid: String,
    /// Twilio auth token (secret: masked in logs, never shown).
    pub twilio_auth_token: String,
    /// The E.164 number SMS are sent from; empty: no SMS provider.
    pub sms_from: String,
    /// The E.164 WhatsApp sender number (sent as `whatsapp:+E164`); empty: no WhatsApp provider.
    pub whatsapp_from: String,
    /// Timeout of a whole Twilio API call, in ms (30 s by default; connecting gets at most
    /// 10 s of it).
    pub twilio_timeout_ms: u64,
    /// Messages per second from each Twilio sender number, SMS and WhatsApp each
    /// (`CLAIRON_TWILIO_RATE_PER_SEC`, 1 by default: a US long code's rate; a toll-free number
    /// takes 3, a short code 100, a WhatsApp sender 80). At least 1.
    pub twilio_rate_per_sec: u32,
    /// Whether signed webhooks may target loopback, private and link-local addresses
    /// (`CLAIRON_WEBHOOK_ALLOW_PRIVATE`, `false` by default: the SSRF guard refuses them at
    /// `PUT /recipients/{id}` for a literal address and at send time after resolution).
    pub webhook_allow_private: bool,
    /// Timeout of a whole webhook call, in ms (15 s by default); beyond, the try is transient.
    pub webhook_timeout_ms: u64,
    /// The VAPID private key Web Push requests are signed with (RFC 8292): base64url of its
    /// 32-byte P-256 scalar. Empty (default): a key pair generated at first start and stored
    /// in the database (`service_keys`), so every process signs with the same one.
    pub vapid_private_key: String,
    /// The VAPID `sub` claim, a `mailto:` or `https:` contact for push services (RFC 8292
    /// §2.1). Empty (default): `CLAIRON_PUBLIC_URL` when it is `https`, else
    /// `mailto:webmaster@<its host>`.
    pub vapid_subject: String,
    /// Comma-separated hosts (`host` or `host:port`) whose push endpoints may be plain `http`
    /// (tests: `127.0.0.1`); every other endpoint must be `https`. Empty (default): none.
    pub push_allowed_hosts: String,
    /// Timeout of a whole Web Push request, in ms (30 s by default).
    pub push_timeout_ms: u64,
    /// Where delivery events are posted to the host application (issue 12): an `http(s)` URL,
    /// signed per Standard Webhooks 1.0. Empty (default): no events are written nor posted.
    pub events_webhook_url: String,
    /// The `whsec_…` secret the host events are signed with (secret: masked in logs); required
    /// with `CLAIRON_EVENTS_WEBHOOK_URL`.
    pub events_webhook_secret: String,
    /// Timeout of a whole POST to the host, in ms (5 s by default); beyond, the try failed and
    /// is retried.
    pub events_webhook_timeout_ms: u64,
    /// Tries of one host event before it is parked `dead` (12 by default; the delay between
    /// tries is `CLAIRON_RETRY_BASE_MS`/`_FACTOR`/`_CAP_SECS`'s backoff with full jitter).
    pub events_webhook_max_attempts: u32,
    /// More than this many deliveries going `dead` within an hour emits
    /// `deliveries.dead_letters` (to topic `admins` by the built-in rule), at most once an hour
    /// (`CLAIRON_ALERT_DEAD_LETTERS`, 10 by default; `0`: never).
    pub alert_dead_letters: u32,
    /// Interval of the `dead_letter_alert` job that counts them, in s
    /// (`CLAIRON_DEAD_LETTER_ALERT_INTERVAL_SECS`, 60 by default).
    pub dead_letter_alert_interval_secs: u64,
    /// The coalescing window of planning changes, in s (`CLAIRON_COALESCE_SECS`, 120 by
    /// default; issue 13): the outbound messages (every channel but the inbox) of a
    /// `planning.modified` notice below `critical` wait this long, and further modifications
    /// of the same planning meanwhile make one message per recipient and channel with the net
    /// change. The window is fixed from the first event, so this is also the longest delay it
    /// adds. 0: off, each modification goes out at once.
    pub coalesce_secs: u64,
    /// Comma-separated hosts a recipient's Slack webhook URL may name besides
    /// `https://hooks.slack.com/`, over `http` or `https` (`CLAIRON_SLACK_ALLOWED_HOSTS`; tests:
    /// `127.0.0.1`). Empty (default): Slack's own host only.
    pub slack_allowed_hosts: String,
    /// Timeout of a whole Slack webhook call, in ms (15 s by default); beyond, the try is
    /// transient.
    pub slack_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://clairon.db".into(),
            database_pool_size: 8,
            bind: "127.0.0.1:8080".into(),
            public_url: String::new(),
            api_keys: String::new(),
            channels: "in_app,email,telegram".into(),
            consent_required: clairon_domain::ConsentRequired::DEFAULT.into(),
            planning_fallback: "telegram,sms,email".into(),
            smtp_url: String::new(),
            smtp_pool_size: 4,
            smtp_fallback_url: String::new(),
            email_outbox_dir: "outbox".into(),
            email_from: "Clairon <notifications@clairon.localhost>".into(),
            telegram_bot_token: String::new(),
            telegram_api_url: "https://api.telegram.org".into(),
            telegram_rate_per_sec: 30,
            telegram_chat_rate_per_sec: 1,
            default_locale: "fr".into(),
            templates_dir: PathBuf::new(),
            dispatch_batch_size: 64,
            dispatch_poll_ms: 1_000,
            dispatch_lease_secs: 60,
            workers: 2,
            retry_base_ms: 5_000,
            retry_factor: 2.0,
            retry_cap_secs: 15 * 60,
            retry_max_attempts: 8,
            reminder_local_time: "18:00".into(),
            log: "info".into(),
            log_format: "pretty".into(),
            token_secret: String::new(),
            token_ttl_secs: 12 * 3600,
            token_cache_ms: 5_000,
            realtime_broker: String::new(),
            retention_days: 365,
            job_runs_retention_days: 30,
            reaper_interval_secs: 60,
            retention_interval_secs: 24 * 3600,
            idempotency_purge_interval_secs: 3600,
            digest_interval_secs: 60,
            jobs_file: PathBuf::new(),
            dashboard_timezone: "UTC".into(),
            metrics_token: String::new(),
            api_key_cache_ms: 5_000,
            rate_limit_per_sec: 500,
            rate_limit_burst: 10_000,
            token_rate_limit_per_sec: 10,
            token_rate_limit_burst: 30,
            // A guesser gets 10 tries a minute after the first 120; the contract test's
            // schemathesis run, the noisiest honest client we know, refuses 57 credentials.
            auth_failure_limit_per_min: 10,
            auth_failure_limit_burst: 120,
            client_ip_header: String::new(),
            max_body_bytes: 256 * 1024,
            max_json_depth: 32,
            max_metadata_bytes: 16 * 1024,
            max_fanout_bytes: 8 * 1024 * 1024,
            smtp_timeout_ms: 30_000,
            telegram_timeout_ms: 30_000,
            cors_origins: String::new(),
            twilio_api_url: clairon_adapters::channels::twilio::DEFAULT_API_URL.into(),
            twilio_account_sid: String::new(),
            twilio_auth_token: String::new(),
            sms_from: String::new(),
            whatsapp_from: String::new(),
            twilio_timeout_ms: 30_000,
            twilio_rate_per_sec: 1,
            webhook_allow_private: false,
            webhook_timeout_ms: 15_000,
            vapid_private_key: String::new(),
            vapid_subject: String::new(),
            push_allowed_hosts: String::new(),
            push_timeout_ms: 30_000,
            events_webhook_url: String::new(),
            events_webhook_secret: String::new(),
            events_webhook_timeout_ms: 5_000,
            events_webhook_max_attempts: 12,
            alert_dead_letters: 10,
            dead_letter_alert_interval_secs: 60,
            coalesce_secs: clairon_domain::coalescing::DEFAULT_WINDOW_SECS,
            slack_allowed_hosts: String::new(),
            slack_timeout_ms: 15_000,
        }
    }
}

impl fmt::Debug for Settings {
    /// Secrets (API keys, bot token, SMTP password) never appear.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("api_keys", &format!("<{} keys>", self.api_key_list().len()))
            .field("channels", &self.channels)
            .field("consent_required", &self.consent_required)
            .field("planning_fallback", &self.planning_fallback)
            .field("smtp_url", &redact_url(&self.smtp_url))
            .field("smtp_fallback_url", &redact_url(&self.smtp_fallback_url))
            .field("email_outbox_dir", &self.email_outbox_dir)
            .field("email_from", &self.email_from)
            .field(
                "telegram_bot_token",
                &if self.telegram_bot_token.is_empty() {
                    "<unset>"
                } else {
                    "<redacted>"
                },
            )
            .field("telegram_api_url", &self.telegram_api_url)
            .field(
                "twilio_auth_token",
                &if self.twilio_auth_token.is_empty() {
                    "<unset>"
                } else {
                    "<redacted>"
                },
            )
            .field("default_locale", &self.default_locale)
            .field("templates_dir", &self.templates_dir)
            .field("reminder_local_time", &self.reminder_local_time)
            .field("retention_days", &self.retention_days)
            .field("job_runs_retention_days", &self.job_runs_retention_days)
            .field("jobs_file", &self.jobs_file)
            .field(
                "vapid_private_key",
                &if self.vapid_private_key.is_empty() {
                    "<unset>"
                } else {
                    "<redacted>"
                },
            )
            .field("vapid_subject", &self.vapid_subject)
            .field("push_allowed_hosts", &self.push_allowed_hosts)
            .field(
                "events_webhook_url",
                &clairon_domain::WebhookUrl::parse(&self.events_webhook_url)
                    .map(|u| u.host())
                    .unwrap_or_default(),
            )
            .field(
                "events_webhook_secret",
                &if self.events_webhook_secret.is_empty() {
                    "<unset>"
                } else {
                    "<redacted>"
                },
            )
            .field("alert_dead_letters", &self.alert_dead_letters)
            .field("slack_allowed_hosts", &self.slack_allowed_hosts)
            .finish_non_exhaustive()
    }
}

/// The settings whose values are text (strings and paths): their default serialises as one.
fn text_settings() -> std::collections::HashSet<String> {
    match figment::value::Value::serialize(Settings::default()) {
        Ok(figment::value::Value::Dict(_, fields)) => fields
            .into_iter()
            .filter(|(_, value)| matches!(value, figment::value::Value::String(..)))
            .map(|(key, _)| key)
            .collect(),
        _ => std::collections::HashSet::new(),
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Settings {
    /// Reads the defaults overridden by `CLAIRON_*` variables, then [`Settings::check`]s them.
    ///
    /// A text setting (`CLAIRON_API_KEYS`, `CLAIRON_TOKEN_SECRET`, `CLAIRON_METRICS_TOKEN`,
    /// URLs, paths…) is taken exactly as written: figment would otherwise read `123456` as a
    /// number, `true` as a boolean and `[a]` as an array, and refuse them (or, for a 32-digit
    /// secret, round it).
    ///
    /// # Errors
    /// When a variable holds a value of the wrong type (a word for a number): the message
    /// names each such variable (`CLAIRON_RATE_LIMIT_PER_SEC: invalid type: …`); or a value
    /// [`Settings::check`] refuses.
    pub fn load() -> anyhow::Result<Self> {
        Self::from_env(Env::prefixed("CLAIRON_"))
    }

    fn from_env(env: Env) -> anyhow::Result<Self> {
        let texts = text_settings();
        let verbatim: std::collections::BTreeMap<String, String> = env
            .iter()
            .filter(|(key, _)| texts.contains(key.as_str()))
            .map(|(key, value)| (key.as_str().to_owned(), value))
            .collect();
        let settings: Self = Figment::from(Serialized::defaults(Settings::default()))
            .merge(env)
            .merge(Serialized::defaults(verbatim))
            .extract()
            .map_err(|errors| {
                let each: Vec<String> = errors
                    .into_iter()
                    .map(|e| {
                        let variable = if e.path.is_empty() {
                            "CLAIRON_*".to_owned()
                        } else {
                            format!("CLAIRON_{}", e.path.join("_").to_uppercase())
                        };
                        format!("{variable}: {}", e.kind)
                    })
                    .collect();
                anyhow::anyhow!(each.join("; "))
            })?;
        settings.check()?;
        Ok(settings)
    }

    /// Refuses settings that would run insecurely without saying so, or write broken links.
    ///
    /// # Errors
    /// When `CLAIRON_TOKEN_SECRET` is set but shorter than [`MIN_TOKEN_SECRET_BYTES`] bytes;
    /// when `CLAIRON_PUBLIC_URL` is set but is no absolute `http(s)` URL, or has a query or a
    /// fragment ([`Settings::public_url`]).
    pub fn check(&self) -> anyhow::Result<()> {
        let secret = self.token_secret.len();
        if secret > 0 && secret < MIN_TOKEN_SECRET_BYTES {
            anyhow::bail!(
                "CLAIRON_TOKEN_SECRET is {secret} bytes long; it must be at least {MIN_TOKEN_SECRET_BYTES} bytes (random ones: `openssl rand -hex 32`), or empty for a random secret per process"
            );
        }
        if !self.public_url.trim().is_empty() {
            self.public_url()?;
        }
        if !self.realtime_broker.is_empty() && !self.realtime_broker.starts_with("nats://") {
            anyhow::bail!(
                "CLAIRON_REALTIME_BROKER: {:?} is not a nats:// URL (leave it empty for PostgreSQL LISTEN/NOTIFY)",
                self.realtime_broker
            );
        }
        Ok(())
    }

    /// The base of every link Clairon writes: `CLAIRON_PUBLIC_URL`, or `http://{CLAIRON_BIND}`
    /// when it is empty.
    ///
    /// # Errors
    /// When the URL is no absolute `http(s)` URL with a host, or holds a user name, a query or
    /// a fragment; the message names `CLAIRON_PUBLIC_URL`.
    pub fn public_url(&self) -> anyhow::Result<PublicUrl> {
        if self.public_url.trim().is_empty() {
            return PublicUrl::parse(&format!("http://{}", self.bind)).map_err(|e| {
                anyhow::anyhow!("CLAIRON_PUBLIC_URL is empty and CLAIRON_BIND makes no URL: {e}")
            });
        }
        PublicUrl::parse(&self.public_url).map_err(|e| anyhow::anyhow!("CLAIRON_PUBLIC_URL: {e}"))
    }

    /// The jobs file, `None` when `CLAIRON_JOBS_FILE` is empty.
    pub fn jobs_file(&self) -> Option<&Path> {
        Some(self.jobs_file.as_path()).filter(|p| !p.as_os_str().is_empty())
    }

    /// The dashboard's time zone.
    ///
    /// # Errors
    /// When `CLAIRON_DASHBOARD_TIMEZONE` is not an IANA time zone.
    pub fn dashboard_zone(&self) -> anyhow::Result<clairon_domain::TimeZone> {
        clairon_domain::TimeZone::parse(&self.dashboard_timezone)
            .map_err(|e| anyhow::anyhow!("CLAIRON_DASHBOARD_TIMEZONE: {}", e.message))
    }

    /// The directory of template overrides, `None` when `CLAIRON_TEMPLATES_DIR` is empty.
    pub fn templates_override(&self) -> Option<&Path> {
        Some(self.templates_dir.as_path()).filter(|d| !d.as_os_str().is_empty())
    }

    /// The token buckets of the HTTP API: per API key, per recipient, and per client address
    /// for refused credentials (see `clairon_adapters::http::middleware::rate_limit`).
    pub fn rate_limits(&self) -> RateLimits {
        RateLimits::new(
            RateQuota::new(self.rate_limit_per_sec, self.rate_limit_burst),
            RateQuota::new(self.token_rate_limit_per_sec, self.token_rate_limit_burst),
        )
        .with_auth_failures(AuthFailureQuota::new(
            self.auth_failure_limit_per_min,
            self.auth_failure_limit_burst,
        ))
        .with_client_header(Some(self.client_ip_header.clone()))
    }

    /// The log format.
    ///
    /// # Errors
    /// When `CLAIRON_LOG_FORMAT` is neither `pretty` nor `json`.
    pub fn check_log_format(&self) -> anyhow::Result<()> {
        match self.log_format.as_str() {
            "pretty" | "json" => Ok(()),
            other => anyhow::bail!("CLAIRON_LOG_FORMAT: {other:?} is neither pretty nor json"),
        }
    }

    /// The configured API keys.
    pub fn api_key_list(&self) -> Vec<String> {
        self.api_keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Every secret of the configuration, for the log masker: API keys, the bot token, the
    /// token secret, and the passwords of the database and SMTP URLs.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = self.api_key_list();
        secrets.push(self.telegram_bot_token.clone());
        secrets.push(self.vapid_private_key.clone());
        secrets.push(self.token_secret.clone());
        secrets.push(self.twilio_auth_token.clone());
        secrets.push(self.events_webhook_secret.clone());
        for url in [&self.database_url, &self.smtp_url, &self.smtp_fallback_url] {
            if let (Some(scheme), Some(at)) = (url.find("://"), url.rfind('@')) {
                if let Some((_, password)) = url[scheme + 3..at.max(scheme + 3)].split_once(':') {
                    secrets.push(password.to_owned());
                }
            }
        }
        secrets.retain(|s| !s.is_empty());
        secrets
    }

    /// The configured VAPID key pair, `None` when `CLAIRON_VAPID_PRIVATE_KEY` is empty (the
    /// stored or generated one is used then).
    ///
    /// # Errors
    /// When it is not base64url of a 32-byte P-256 scalar; the message names
    /// `CLAIRON_VAPID_PRIVATE_KEY` (never its value).
    pub fn vapid_keys(&self) -> anyhow::Result<Option<clairon_adapters::channels::VapidKeys>> {
        if self.vapid_private_key.trim().is_empty() {
            return Ok(None);
        }
        clairon_adapters::channels::VapidKeys::from_base64url(&self.vapid_private_key)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("CLAIRON_VAPID_PRIVATE_KEY: {e}"))
    }

    /// The VAPID `sub` claim (RFC 8292 §2.1): `CLAIRON_VAPID_SUBJECT`, else
    /// `CLAIRON_PUBLIC_URL` when it is `https`, else `mailto:webmaster@<its host>`.
    ///
    /// # Errors
    /// When `CLAIRON_VAPID_SUBJECT` is neither a `mailto:` nor an `https:` URL (the message
    /// names it), or the public URL is refused ([`Settings::public_url`]).
    pub fn vapid_subject(&self) -> anyhow::Result<String> {
        let subject = self.vapid_subject.trim();
        if !subject.is_empty() {
            let parsed = url::Url::parse(subject).map_err(|e| {
                anyhow::anyhow!("CLAIRON_VAPID_SUBJECT: {subject:?} is not a URL: {e}")
            })?;
            let ok = match parsed.scheme() {
                "mailto" => parsed.path().contains('@'),
                "https" => parsed.host_str().is_some(),
                _ => false,
            };
            if !ok {
                anyhow::bail!(
                    "CLAIRON_VAPID_SUBJECT: {subject:?} is neither a mailto: address nor an https: URL (RFC 8292 §2.1)"
                );
            }
            return Ok(subject.to_owned());
        }
        let public = url::Url::parse(self.public_url()?.as_str())
            .map_err(|e| anyhow::anyhow!("CLAIRON_PUBLIC_URL: {e}"))?;
        if public.scheme() == "https" {
            return Ok(public.origin().ascii_serialization());
        }
        Ok(format!(
            "mailto:webmaster@{}",
            public.host_str().unwrap_or("localhost")
        ))
    }

    /// The hosts whose push endpoints may be plain `http` (`CLAIRON_PUSH_ALLOWED_HOSTS`),
    /// lower-cased.
    pub fn push_allowed_host_list(&self) -> Vec<String> {
        self.push_allowed_hosts
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect()
    }

    /// The timeout of a whole Web Push request.
    pub fn push_timeout(&self) -> Duration {
        Duration::from_millis(self.push_timeout_ms.max(1))
    }

    /// The origins allowed by CORS on `/api/v1/me`.
    pub fn cors_origin_list(&self) -> Vec<String> {
        self.cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect()
    }

    /// The channels switched on.
    ///
    /// # Errors
    /// When `CLAIRON_CHANNELS` names an unknown channel.
    pub fn channel_set(&self) -> anyhow::Result<ChannelSet> {
        ChannelSet::parse_list(&self.channels)
            .map_err(|e| anyhow::anyhow!("CLAIRON_CHANNELS: {}", e.message))
    }

    /// The fallback chain of urgent planning notices, in order (empty: none).
    ///
    /// # Errors
    /// When `CLAIRON_PLANNING_FALLBACK` names an unknown channel, one twice, or `in_app`.
    pub fn planning_fallback(&self) -> anyhow::Result<Vec<clairon_domain::Channel>> {
        let names: Vec<String> = self
            .planning_fallback
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        clairon_domain::Channel::parse_fallback("CLAIRON_PLANNING_FALLBACK", &names).map_err(
            |errors| {
                let why: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect();
                anyhow::anyhow!("{}", why.join("; "))
            },
        )
    }

    /// The channels that need a granted consent.
    ///
    /// # Errors
    /// When `CLAIRON_CONSENT_REQUIRED` names a channel outside the catalogue.
    pub fn consent_required(&self) -> anyhow::Result<clairon_domain::ConsentRequired> {
        clairon_domain::ConsentRequired::parse(&self.consent_required)
            .map_err(|e| anyhow::anyhow!("CLAIRON_CONSENT_REQUIRED: {}", e.message))
    }

    /// The default locale.
    ///
    /// # Errors
    /// When `CLAIRON_DEFAULT_LOCALE` is not `fr` or `en`.
    pub fn locale(&self) -> anyhow::Result<Locale> {
        Locale::parse(&self.default_locale)
            .map_err(|e| anyhow::anyhow!("CLAIRON_DEFAULT_LOCALE: {}", e.message))
    }

    /// The local time of day of the J-1 reminders.
    ///
    /// # Errors
    /// When `CLAIRON_REMINDER_LOCAL_TIME` is not `HH:MM`.
    pub fn reminder_time(&self) -> anyhow::Result<ReminderTime> {
        ReminderTime::parse(&self.reminder_local_time)
            .map_err(|e| anyhow::anyhow!("CLAIRON_REMINDER_LOCAL_TIME: {}", e.message))
    }

    /// The listen address.
    ///
    /// # Errors
    /// When `CLAIRON_BIND` is not `host:port`.
    pub fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        self.bind
            .parse()
            .with_context(|| format!("CLAIRON_BIND {:?} is not host:port", self.bind))
    }

    /// The retry schedule of transient failures: exponential backoff with full jitter.
    pub fn retry_schedule(&self) -> clairon_adapters::retry::BackonRetrySchedule {
        clairon_adapters::retry::BackonRetrySchedule::new(
            Duration::from_millis(self.retry_base_ms),
            self.retry_factor,
            Duration::from_secs(self.retry_cap_secs),
            self.retry_max_attempts.max(1),
        )
    }

    /// The timeout of a whole SMTP send.
    pub fn smtp_timeout(&self) -> Duration {
        Duration::from_millis(self.smtp_timeout_ms.max(1))
    }

    /// The timeout of a whole Telegram Bot API call.
    pub fn telegram_timeout(&self) -> Duration {
        Duration::from_millis(self.telegram_timeout_ms.max(1))
    }

    /// The timeout of a whole webhook call.
    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms.max(1))
    }

    /// Where and how delivery events are posted to the host application (issue 12): `None`
    /// when `CLAIRON_EVENTS_WEBHOOK_URL` is empty.
    ///
    /// # Errors
    /// When `CLAIRON_EVENTS_WEBHOOK_URL` is not an absolute `http(s)` URL with a host and no
    /// user info, or `CLAIRON_EVENTS_WEBHOOK_SECRET` is missing or not `whsec_` + base64 of 24
    /// to 64 bytes (the message names the variable, never the secret), or
    /// `CLAIRON_EVENTS_WEBHOOK_MAX_ATTEMPTS` is 0.
    pub fn host_events(&self) -> anyhow::Result<Option<HostEventsConfig>> {
        let secret = self.events_webhook_secret.trim();
        if self.events_webhook_url.trim().is_empty() {
            if !secret.is_empty() {
                clairon_domain::WebhookSecret::parse(secret)
                    .map_err(|e| anyhow::anyhow!("CLAIRON_EVENTS_WEBHOOK_SECRET {}", e.message))?;
            }
            return Ok(None);
        }
        let url = clairon_domain::WebhookUrl::parse(&self.events_webhook_url)
            .map_err(|e| anyhow::anyhow!("CLAIRON_EVENTS_WEBHOOK_URL {}", e.message))?;
        if secret.is_empty() {
            anyhow::bail!(
                "CLAIRON_EVENTS_WEBHOOK_SECRET must be set with CLAIRON_EVENTS_WEBHOOK_URL (whsec_ followed by the base64 of 24 to 64 random bytes: `echo whsec_$(openssl rand -base64 32)`)"
            );
        }
        let secret = clairon_domain::WebhookSecret::parse(secret)
            .map_err(|e| anyhow::anyhow!("CLAIRON_EVENTS_WEBHOOK_SECRET {}", e.message))?;
        if self.events_webhook_max_attempts == 0 {
            anyhow::bail!("CLAIRON_EVENTS_WEBHOOK_MAX_ATTEMPTS must be at least 1");
        }
        Ok(Some(HostEventsConfig {
            url,
            secret,
            timeout: Duration::from_millis(self.events_webhook_timeout_ms.max(1)),
            retry: clairon_adapters::retry::BackonRetrySchedule::new(
                Duration::from_millis(self.retry_base_ms),
                self.retry_factor,
                Duration::from_secs(self.retry_cap_secs),
                self.events_webhook_max_attempts,
            ),
        }))
    }

    /// The content bounds of one request.
    pub fn content_limits(&self) -> clairon_application::commands::ContentLimits {
        clairon_application::commands::ContentLimits {
            max_metadata_bytes: self.max_metadata_bytes.max(2),
            max_fanout_bytes: self.max_fanout_bytes.max(1),
        }
    }

    /// The dispatcher's poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.dispatch_poll_ms.max(10))
    }
}

/// The host-event webhook's configuration (issue 12), from `CLAIRON_EVENTS_WEBHOOK_*`.
#[derive(Debug, Clone)]
pub struct HostEventsConfig {
    /// `CLAIRON_EVENTS_WEBHOOK_URL`.
    pub url: clairon_domain::WebhookUrl,
    /// `CLAIRON_EVENTS_WEBHOOK_SECRET` (its `Debug` hides it).
    pub secret: clairon_domain::WebhookSecret,
    /// `CLAIRON_EVENTS_WEBHOOK_TIMEOUT_MS`.
    pub timeout: Duration,
    /// The delays between tries (`CLAIRON_RETRY_*`), dead after
    /// `CLAIRON_EVENTS_WEBHOOK_MAX_ATTEMPTS`.
    pub retry: clairon_adapters::retry::BackonRetrySchedule,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("smtps://user:hunter2@mail.example.org:465"),
            "smtps://user:***@mail.example.org:465"
        );
        assert_eq!(redact_url("sqlite://clairon.db"), "sqlite://clairon.db");
    }

    fn load_with(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        // A prefix of its own per test: the process environment is shared by the tests.
        let prefix = format!("CLAIRON_TEST_{}_", uuid_like());
        for (name, value) in vars {
            std::env::set_var(format!("{prefix}{name}"), value);
        }
        let loaded = Settings::from_env(Env::prefixed(&prefix));
        for (name, _) in vars {
            std::env::remove_var(format!("{prefix}{name}"));
        }
        loaded
    }

    fn uuid_like() -> String {
        hex::encode(rand::random::<[u8; 8]>()).to_ascii_uppercase()
    }

    #[test]
    fn numeric_and_boolean_text_settings_are_read_as_written() {
        let settings = load_with(&[
            ("API_KEYS", "123456"),
            ("TOKEN_SECRET", "12345678901234567890123456789012"),
            ("METRICS_TOKEN", "true"),
            ("TELEGRAM_BOT_TOKEN", "007"),
            ("DATABASE_POOL_SIZE", "3"),
        ])
        .expect("numbers and booleans are valid text settings");

        assert_eq!(settings.api_key_list(), vec!["123456".to_owned()]);
        assert_eq!(
            settings.token_secret, "12345678901234567890123456789012",
            "a 32-digit secret is not rounded to a float"
        );
        assert_eq!(settings.metrics_token, "true");
        assert_eq!(settings.telegram_bot_token, "007", "leading zeros kept");
        assert_eq!(
            settings.database_pool_size, 3,
            "numeric settings still parse"
        );
    }

    #[test]
    fn a_word_for_a_number_is_still_refused() {
        let refused = load_with(&[("DATABASE_POOL_SIZE", "eight")]);
        assert!(refused.is_err(), "{refused:?}");
    }

    #[test]
    fn a_token_secret_shorter_than_32_bytes_is_refused_with_a_message_saying_so() {
        let refused = load_with(&[("TOKEN_SECRET", "x")]).unwrap_err();
        let message = format!("{refused:#}");
        assert!(
            message.contains("CLAIRON_TOKEN_SECRET") && message.contains("at least 32 bytes"),
            "{message}"
        );
        assert!(
            load_with(&[("TOKEN_SECRET", &"s".repeat(32))]).is_ok(),
            "32 bytes are enough"
        );
        assert!(load_with(&[]).is_ok(), "no secret: one per process");
    }

    #[test]
    fn a_public_url_that_would_make_broken_links_is_refused_naming_the_variable() {
        for bad in [
            "notify.example.org",
            "ftp://notify.example.org",
            "https://notify.example.org/?x=1",
            "https://notify.example.org/#x",
        ] {
            let refused = load_with(&[("PUBLIC_URL", bad)]).unwrap_err();
            assert!(
                format!("{refused:#}").starts_with("CLAIRON_PUBLIC_URL: "),
                "{bad}: {refused:#}"
            );
        }
        let set = load_with(&[("PUBLIC_URL", "https://notify.example.org/clairon/")]).unwrap();
        assert_eq!(
            set.public_url().unwrap().as_str(),
            "https://notify.example.org/clairon"
        );
        let default = load_with(&[("BIND", "0.0.0.0:9000")]).unwrap();
        assert_eq!(
            default.public_url().unwrap().as_str(),
            "http://0.0.0.0:9000",
            "http://{{CLAIRON_BIND}} by default"
        );
    }

    #[test]
    fn the_default_limits_let_the_largest_bulk_job_through_and_stop_a_runaway_client() {
        // Arrange: one key's and one recipient's buckets, as a fresh process has them.
        let limits = Settings::default().rate_limits();
        let key = [7; 32];

        // Act: a 5,000-recipient import as fast as the CPU goes, then the same client looping
        // on, and one recipient's client looping without pause.
        let import_refused = (0..5_000)
            .filter(|_| limits.check_api_key(key).is_err())
            .count();
        let runaway_refused = (0..20_000)
            .filter(|_| limits.check_api_key(key).is_err())
            .count();
        let recipient_refused = (0..1_000)
            .filter(|_| limits.check_recipient("artist-0001").is_err())
            .count();

        // Assert: the loops take microseconds, the buckets refill 500 and 10 tokens a second.
        assert_eq!(import_refused, 0, "the import fits in the burst");
        assert!(
            runaway_refused >= 10_000,
            "a key looping on is refused once its burst is spent: {runaway_refused} of 20,000"
        );
        assert!(
            recipient_refused >= 900,
            "a recipient's client looping on is refused past its burst: {recipient_refused} of 1,000"
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let settings = Settings {
            api_keys: "k1-secret,k2-secret".into(),
            telegram_bot_token: "123:bot-secret".into(),
            smtp_url: "smtp://u:pw-secret@host".into(),
            events_webhook_secret: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0".into(),
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        // The values, not the field names (`events_webhook_secret` is one).
        assert!(!shown.contains("-secret"), "{shown}");
        assert!(!shown.contains("whsec_"), "{shown}");
        assert!(shown.contains("<2 keys>"));
    }
}

impl Settings {
    /// The Twilio account SMS and WhatsApp go through; `None` when none of
    /// `CLAIRON_TWILIO_ACCOUNT_SID`, `CLAIRON_TWILIO_AUTH_TOKEN`, `CLAIRON_SMS_FROM` and
    /// `CLAIRON_WHATSAPP_FROM` is set. SMS is then a configured provider when `sms_from` is
    /// set, WhatsApp when `whatsapp_from` is.
    ///
    /// # Errors
    /// Naming the variable: when some are set but the SID or the token is missing, when the
    /// SID is not `AC` followed by letters and digits, when neither sender number is set,
    /// when a sender number is not E.164, or when `CLAIRON_TWILIO_API_URL` is no `http(s)`
    /// URL.
    pub fn twilio_account(
        &self,
    ) -> anyhow::Result<Option<clairon_adapters::channels::TwilioAccount>> {
        let sid = self.twilio_account_sid.trim();
        let token = self.twilio_auth_token.trim();
        let (sms_from, whatsapp_from) = (self.sms_from.trim(), self.whatsapp_from.trim());
        if [sid, token, sms_from, whatsapp_from]
            .iter()
            .all(|v| v.is_empty())
        {
            return Ok(None);
        }
        if sid.is_empty() {
            anyhow::bail!("CLAIRON_TWILIO_ACCOUNT_SID is empty, but other Twilio settings are set");
        }
        if !(sid.starts_with("AC") && sid.chars().all(|c| c.is_ascii_alphanumeric())) {
            anyhow::bail!("CLAIRON_TWILIO_ACCOUNT_SID: must be AC followed by letters and digits");
        }
        if token.is_empty() {
            anyhow::bail!(
                "CLAIRON_TWILIO_AUTH_TOKEN is empty, but CLAIRON_TWILIO_ACCOUNT_SID is set"
            );
        }
        if sms_from.is_empty() && whatsapp_from.is_empty() {
            anyhow::bail!(
                "CLAIRON_SMS_FROM and CLAIRON_WHATSAPP_FROM are both empty: set the number SMS or WhatsApp messages are sent from"
            );
        }
        let number = |raw: &str, variable: &str| {
            (!raw.is_empty())
                .then(|| {
                    clairon_domain::PhoneNumber::parse(raw)
                        .map_err(|e| anyhow::anyhow!("{variable}: {}", e.message))
                })
                .transpose()
        };
        let api_url = self.twilio_api_url.trim().trim_end_matches('/');
        match url::Url::parse(api_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            _ => anyhow::bail!("CLAIRON_TWILIO_API_URL: {api_url:?} is not an http(s) URL"),
        }
        Ok(Some(clairon_adapters::channels::TwilioAccount {
            api_url: api_url.to_owned(),
            account_sid: sid.to_owned(),
            auth_token: token.to_owned(),
            sms_from: number(sms_from, "CLAIRON_SMS_FROM")?,
            whatsapp_from: number(whatsapp_from, "CLAIRON_WHATSAPP_FROM")?,
        }))
    }

    /// The timeout of a whole Twilio API call.
    pub fn twilio_timeout(&self) -> Duration {
        Duration::from_millis(self.twilio_timeout_ms.max(1))
    }

    /// The hosts a Slack webhook URL may name (`CLAIRON_SLACK_ALLOWED_HOSTS`), besides
    /// `https://hooks.slack.com/`.
    pub fn slack_hosts(&self) -> clairon_domain::SlackHosts {
        clairon_domain::SlackHosts::parse(&self.slack_allowed_hosts)
    }

    /// The timeout of a whole Slack webhook call.
    pub fn slack_timeout(&self) -> Duration {
        Duration::from_millis(self.slack_timeout_ms.max(1))
    }
}

#[cfg(test)]
mod twilio_tests {
    use super::Settings;
    use rstest::rstest;

    fn twilio(sid: &str, token: &str, sms: &str, whatsapp: &str) -> Settings {
        Settings {
            twilio_account_sid: sid.into(),
            twilio_auth_token: token.into(),
            sms_from: sms.into(),
            whatsapp_from: whatsapp.into(),
            ..Settings::default()
        }
    }

    #[rstest]
    #[case::no_sid(twilio("", "tok", "+15005550006", ""), "CLAIRON_TWILIO_ACCOUNT_SID")]
    #[case::bad_sid(
        twilio("AC/../x", "tok", "+15005550006", ""),
        "CLAIRON_TWILIO_ACCOUNT_SID"
    )]
    #[case::no_token(twilio("AC1", "", "+15005550006", ""), "CLAIRON_TWILIO_AUTH_TOKEN")]
    #[case::no_number(twilio("AC1", "tok", "", ""), "CLAIRON_SMS_FROM")]
    #[case::bad_sms_from(twilio("AC1", "tok", "Clairon", ""), "CLAIRON_SMS_FROM")]
    #[case::bad_whatsapp_from(twilio("AC1", "tok", "", "0612"), "CLAIRON_WHATSAPP_FROM")]
    #[case::bad_api_url(Settings { twilio_api_url: "api.twilio.com".into(), ..twilio("AC1", "tok", "+15005550006", "") }, "CLAIRON_TWILIO_API_URL")]
    fn a_bad_twilio_setting_is_refused_naming_its_variable(
        #[case] settings: Settings,
        #[case] variable: &str,
    ) {
        let error = settings.twilio_account().unwrap_err().to_string();
        assert!(error.starts_with(variable), "{error}");
        assert!(!error.contains("tok"), "{error}");
    }

    #[test]
    fn twilio_is_off_until_configured_and_its_token_is_a_secret() {
        assert!(Settings::default().twilio_account().unwrap().is_none());
        let settings = twilio("AC1", "tok-secret", "", "+14155238886");
        let account = settings.twilio_account().unwrap().unwrap();
        assert_eq!(account.sms_from, None);
        assert_eq!(account.whatsapp_from.unwrap().as_str(), "+14155238886");
        assert_eq!(account.api_url, "https://api.twilio.com");
        assert!(settings.secrets().contains(&"tok-secret".to_owned()));
        assert!(!format!("{settings:?}").contains("tok-secret"));
    }
}

#[cfg(test)]
mod host_events_tests {
    use super::Settings;
    use rstest::rstest;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn events(url: &str, secret: &str) -> Settings {
        Settings {
            events_webhook_url: url.into(),
            events_webhook_secret: secret.into(),
            ..Settings::default()
        }
    }

    #[rstest]
    #[case::not_a_url(events("host.example/events", SECRET), "CLAIRON_EVENTS_WEBHOOK_URL")]
    #[case::not_http(
        events("ftp://host.example/events", SECRET),
        "CLAIRON_EVENTS_WEBHOOK_URL"
    )]
    #[case::no_secret(
        events("https://host.example/events", ""),
        "CLAIRON_EVENTS_WEBHOOK_SECRET"
    )]
    #[case::no_prefix(
        events("https://host.example/events", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "CLAIRON_EVENTS_WEBHOOK_SECRET"
    )]
    #[case::too_short(
        events("https://host.example/events", "whsec_c2hvcnQ="),
        "CLAIRON_EVENTS_WEBHOOK_SECRET"
    )]
    #[case::bad_secret_without_url(events("", "secret"), "CLAIRON_EVENTS_WEBHOOK_SECRET")]
    #[case::no_tries(Settings { events_webhook_max_attempts: 0, ..events("https://host.example/events", SECRET) }, "CLAIRON_EVENTS_WEBHOOK_MAX_ATTEMPTS")]
    fn a_bad_events_webhook_setting_is_refused_naming_its_variable(
        #[case] settings: Settings,
        #[case] variable: &str,
    ) {
        let error = settings.host_events().unwrap_err().to_string();
        assert!(error.starts_with(variable), "{error}");
        assert!(
            !error.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "{error}"
        );
    }

    #[test]
    fn host_events_are_off_until_a_url_is_set_and_the_secret_is_masked() {
        assert!(Settings::default().host_events().unwrap().is_none());
        let settings = events("http://127.0.0.1:9000/clairon/events", SECRET);
        let config = settings.host_events().unwrap().unwrap();
        assert_eq!(config.url.as_str(), "http://127.0.0.1:9000/clairon/events");
        assert_eq!(config.timeout, std::time::Duration::from_secs(5));
        assert!(settings.secrets().contains(&SECRET.to_owned()));
        assert!(!format!("{settings:?}").contains(SECRET));
        assert!(!format!("{config:?}").contains(SECRET));
    }
}
