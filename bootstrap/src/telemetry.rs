//! Telemetry: `tracing` to stderr, human-readable or JSON, filtered by `CLAIRON_LOG`
//! (or `RUST_LOG` when set), through a [`Masker`] so no line carries a secret or a full email
//! address.
//!
//! The code does not log message bodies, and logs recipients by id; the masker is the last line
//! of defence for what a dependency or a provider's answer may echo (an SMTP server's
//! `550 <zoe@example.org>: unknown user`, a URL with a bot token): every line is rewritten before
//! it is written.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::Arc;

use regex::Regex;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{fmt, EnvFilter};

/// Rewrites log lines: known secrets (API keys, bot token, token secret, passwords) become `***`,
/// email addresses keep their first character and domain (`z***@example.org`), JWTs (recipient
/// tokens) become `<token>`, generated API keys (`clr_…`) become `clr_***`, anything shaped
/// like a Telegram bot token (`123456789:AA…`) becomes `<bot-token>`, and the token of an
/// unsubscribe link (`/unsubscribe/<token>`: it unsubscribes whoever holds it) `<link>`, and a
/// webhook signing secret (`whsec_…`) `whsec_***`, and a Slack incoming-webhook URL's secret
/// path (`hooks.slack.com/…`, `/services/T…/B…/…` on any host) `<slack-webhook>`.
#[derive(Debug, Clone)]
pub struct Masker {
    secrets: Vec<String>,
    email: Regex,
    jwt: Regex,
    generated_key: Regex,
    bot_token: Regex,
    unsubscribe_link: Regex,
    /// A Standard Webhooks signing secret (`whsec_` + base64).
    webhook_secret: Regex,
    /// The secret path of a Slack incoming webhook, on Slack's host or another.
    slack_webhook: Regex,
}

impl Masker {
    /// A masker that also hides each of `secrets` (empty and very short ones are ignored: they
    /// would mask ordinary words).
    ///
    /// # Panics
    /// Never: the patterns are constants.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self {
            secrets,
            email: Regex::new(
                r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+)",
            )
            .expect("a valid pattern"),
            jwt: Regex::new(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
                .expect("a valid pattern"),
            generated_key: Regex::new(r"clr_[0-9a-f]{16,}").expect("a valid pattern"),
            bot_token: Regex::new(r"\b\d{6,}:[A-Za-z0-9_\-]{30,}").expect("a valid pattern"),
            unsubscribe_link: Regex::new(r"/unsubscribe/[A-Za-z0-9_\-.]+")
                .expect("a valid pattern"),
            webhook_secret: Regex::new(r"whsec_[A-Za-z0-9+/=]+").expect("a valid pattern"),
            slack_webhook: Regex::new(
                r"hooks\.slack\.com/[^\s<>'`]+|/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9_\-]+",
            )
            .expect("a valid pattern"),
        }
    }

    /// `line` with everything sensitive masked.
    pub fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(line);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), "***"));
            }
        }
        for (pattern, replacement) in [
            (&self.jwt, "<token>"),
            (&self.generated_key, "clr_***"),
            (&self.bot_token, "<bot-token>"),
            (&self.unsubscribe_link, "/unsubscribe/<link>"),
            (&self.webhook_secret, "whsec_***"),
            (&self.slack_webhook, "<slack-webhook>"),
            (&self.email, "$1***@$2"),
        ] {
            if pattern.is_match(&out) {
                out = Cow::Owned(pattern.replace_all(&out, replacement).into_owned());
            }
        }
        out
    }
}

/// A [`MakeWriter`] whose writers pass every line through a [`Masker`].
#[derive(Debug, Clone)]
pub struct MaskingMakeWriter<M> {
    inner: M,
    masker: Arc<Masker>,
}

impl<M> MaskingMakeWriter<M> {
    /// Masks what `inner`'s writers get.
    pub fn new(inner: M, masker: Masker) -> Self {
        Self {
            inner,
            masker: Arc::new(masker),
        }
    }
}

/// A writer that masks each write (the `fmt` layer writes one whole event per call).
#[derive(Debug)]
pub struct MaskingWriter<W> {
    inner: W,
    masker: Arc<Masker>,
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner.write_all(self.masker.mask(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskingMakeWriter<M> {
    type Writer = MaskingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter {
            inner: self.inner.make_writer(),
            masker: self.masker.clone(),
        }
    }
}

/// Installs the global subscriber, masking by patterns only. Calling it twice is harmless (the
/// second call is ignored), which lets tests build several applications in one process.
pub fn init(filter: &str, format: &str) {
    init_with_writer(filter, format, Masker::new(Vec::new()), io::stderr);
}

/// Installs the global subscriber on stderr, also masking `secrets` (see
/// `Settings::secrets`).
pub fn init_with_secrets(filter: &str, format: &str, secrets: Vec<String>) {
    init_with_writer(filter, format, Masker::new(secrets), io::stderr);
}

/// Installs the global subscriber writing to `writer` through `masker` (tests capture logs
/// this way). Ignored when a global subscriber is already installed.
pub fn init_with_writer<W>(filter: &str, format: &str, masker: Masker, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(MaskingMakeWriter::new(writer, masker));
    let installed = if format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    if installed.is_ok() {
        route_panics_through_the_logs();
    }
}

/// Replaces Rust's default panic hook, which writes straight to stderr, by one that logs the
/// panic as an `ERROR` event (target `clairon::panic`, with its location, and the backtrace when
/// `RUST_BACKTRACE` asks for one): a panic message that holds a secret or an address then goes
/// through the [`Masker`] like every other line, and keeps the log format (one JSON object per
/// line with `CLAIRON_LOG_FORMAT=json`).
fn route_panics_through_the_logs() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(target: "clairon::panic", %location, %backtrace, "panicked: {message}");
        } else {
            tracing::error!(target: "clairon::panic", %location, "panicked: {message}");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_keep_their_first_letter_and_domain_only() {
        let masker = Masker::new(Vec::new());
        assert_eq!(
            masker.mask("550 <zoe.tremblay@example.org>: unknown user"),
            "550 <z***@example.org>: unknown user"
        );
    }

    #[test]
    fn slack_webhook_urls_lose_their_secret_path() {
        let masker = Masker::new(Vec::new());
        assert_eq!(
            masker.mask(
                "url=https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX end"
            ),
            "url=https://<slack-webhook> end"
        );
        assert_eq!(
            masker.mask("url=http://127.0.0.1:9/services/T0CLAIRON/B0CLAIRON/abc-1 end"),
            "url=http://127.0.0.1:9<slack-webhook> end"
        );
    }

    #[test]
    fn webhook_signing_secrets_are_hidden() {
        let masker = Masker::new(Vec::new());
        assert_eq!(
            masker.mask("secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw end"),
            "secret=whsec_*** end"
        );
    }

    #[test]
    fn secrets_tokens_and_generated_keys_are_hidden() {
        let masker = Masker::new(vec!["dev-key".into(), "123456:TEST-token".into()]);
        let line = "key dev-key bot 123456:TEST-token jwt eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl \
                    new clr_0123456789abcdef0123 tg 987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw \
                    POST /unsubscribe/YXJ0aXN0LTEKY3VzdG9t.c2lnbmF0dXJlLW9mLXRoZS1saW5r 200";
        let masked = masker.mask(line);
        for leaked in [
            "dev-key",
            "TEST-token",
            "eyJhbGciOi",
            "clr_0123456789abcdef",
            "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "YXJ0aXN0LTEKY3VzdG9t",
        ] {
            assert!(!masked.contains(leaked), "{leaked} leaked: {masked}");
        }
    }
}
