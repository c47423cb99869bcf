//! Configuration: `CLAIRON_*` environment variables (and a `.env` file, read by `main`), with
//! defaults that make `cargo run` work with nothing installed. Loaded with figment.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clairon_domain::{ChannelSet, Locale};
use figment::providers::{Env, Serialized};
use figment::Figment;
use serde::{Deserialize, Serialize};

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
    /// Comma-separated API keys. Empty: a key is generated at first start and printed once.
    pub api_keys: String,
    /// Comma-separated channels switched on: `in_app,email,telegram` by default.
    pub channels: String,
    /// SMTP server URL (`smtp://127.0.0.1:2525`, `smtps://user:pass@host`); empty: `.eml` files.
    pub smtp_url: String,
    /// Pooled SMTP connections.
    pub smtp_pool_size: u32,
    /// Where `.eml` files go when no SMTP server is configured.
    pub email_outbox_dir: PathBuf,
    /// The `From` mailbox of emails.
    pub email_from: String,
    /// Telegram bot token; empty: the Telegram channel skips every delivery.
    pub telegram_bot_token: String,
    /// Telegram Bot API base URL (requests go to `{url}/bot{token}/sendMessage`).
    pub telegram_api_url: String,
    /// Language for recipients without one: `fr` (default) or `en`.
    pub default_locale: String,
    /// Directory of the Tera templates.
    pub templates_dir: PathBuf,
    /// Deliveries claimed per dispatcher round.
    pub dispatch_batch_size: u32,
    /// How often the dispatcher looks for due deliveries when nothing woke it, in ms.
    pub dispatch_poll_ms: u64,
    /// How long a claimed delivery stays claimed before another dispatcher may take it, in s.
    pub dispatch_lease_secs: u64,
    /// `tracing` filter directives (`info`, `clairon=debug,actix_web=info`).
    pub log: String,
    /// `pretty` (default) or `json`.
    pub log_format: String,
    /// HS256 secret of recipient tokens; empty: a random one per process (tokens die with it).
    pub token_secret: String,
    /// Lifetime of a recipient token, in s (12 h by default).
    pub token_ttl_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://clairon.db".into(),
            database_pool_size: 8,
            bind: "127.0.0.1:8080".into(),
            api_keys: String::new(),
            channels: "in_app,email,telegram".into(),
            smtp_url: String::new(),
            smtp_pool_size: 4,
            email_outbox_dir: "outbox".into(),
            email_from: "Clairon <notifications@clairon.localhost>".into(),
            telegram_bot_token: String::new(),
            telegram_api_url: "https://api.telegram.org".into(),
            default_locale: "fr".into(),
            templates_dir: "templates".into(),
            dispatch_batch_size: 64,
            dispatch_poll_ms: 1_000,
            dispatch_lease_secs: 60,
            log: "info".into(),
            log_format: "pretty".into(),
            token_secret: String::new(),
            token_ttl_secs: 12 * 3600,
        }
    }
}

impl fmt::Debug for Settings {
    /// Secrets (API keys, bot token, SMTP password) never appear.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("api_keys", &format!("<{} keys>", self.api_key_list().len()))
            .field("channels", &self.channels)
            .field("smtp_url", &redact_url(&self.smtp_url))
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
            .field("default_locale", &self.default_locale)
            .field("templates_dir", &self.templates_dir)
            .finish_non_exhaustive()
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
    /// Reads the defaults overridden by `CLAIRON_*` variables.
    ///
    /// # Errors
    /// When a variable holds a value of the wrong type (a word for a number).
    pub fn load() -> anyhow::Result<Self> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Env::prefixed("CLAIRON_"))
            .extract()
            .context("reading CLAIRON_* configuration")
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

    /// The channels switched on.
    ///
    /// # Errors
    /// When `CLAIRON_CHANNELS` names an unknown channel.
    pub fn channel_set(&self) -> anyhow::Result<ChannelSet> {
        ChannelSet::parse_list(&self.channels)
            .map_err(|e| anyhow::anyhow!("CLAIRON_CHANNELS: {}", e.message))
    }

    /// The default locale.
    ///
    /// # Errors
    /// When `CLAIRON_DEFAULT_LOCALE` is not `fr` or `en`.
    pub fn locale(&self) -> anyhow::Result<Locale> {
        Locale::parse(&self.default_locale)
            .map_err(|e| anyhow::anyhow!("CLAIRON_DEFAULT_LOCALE: {}", e.message))
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

    /// The dispatcher's poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.dispatch_poll_ms.max(10))
    }
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

    #[test]
    fn debug_output_never_shows_secrets() {
        let settings = Settings {
            api_keys: "k1-secret,k2-secret".into(),
            telegram_bot_token: "123:bot-secret".into(),
            smtp_url: "smtp://u:pw-secret@host".into(),
            ..Settings::default()
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<2 keys>"));
    }
}
