//! The email channel: [`LettreEmailSender`] implements the [`EmailSender`] port with lettre,
//! over SMTP (a pooled `AsyncSmtpTransport`) or, when no SMTP server is configured, by writing
//! `.eml` files into a directory.
//!
//! It builds an Internet Message Format message (RFC 5322) with MIME (RFC 2045/2046): a
//! `multipart/alternative` body holding `text/plain` then `text/html`, non-ASCII display names and
//! subjects as RFC 2047 encoded words, a `Message-ID` derived from the delivery id so a retried
//! delivery keeps it, an `X-Clairon-Notification-Id` header, and, when the message has an
//! unsubscribe link, `List-Unsubscribe` (RFC 2369) with `List-Unsubscribe-Post:
//! List-Unsubscribe=One-Click` (RFC 8058). SMTP replies are classified by
//! their first digit (RFC 5321 §4.2.1): 4xx is transient, 5xx permanent.
//!
//! Header values are never trusted to be clean, whatever validated them before: the display
//! name and the subject have every control character turned into a space and are cut to a bounded
//! length, and a message the builder still refuses (or panics on) is a
//! [`SendOutcome::Permanent`] of that one delivery, never a panic.
//!
//! It knows nothing of deliveries, retries or templates, and never logs or displays the SMTP
//! password that the connection URL may carry.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use clairon_application::ports::{EmailMessage, EmailSender, SendOutcome};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{
    Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};

/// The header carrying the notification id, so a support person can trace a received email back
/// to its notification (RFC 5322 §3.6.8 optional field).
pub const NOTIFICATION_ID_HEADER: &str = "X-Clairon-Notification-Id";

/// The header naming the link that unsubscribes the recipient (RFC 2369 §3.2), as
/// `<https://…/unsubscribe/{token}>`.
pub const LIST_UNSUBSCRIBE_HEADER: &str = "List-Unsubscribe";

/// The header saying the `List-Unsubscribe` link works with one `POST` (RFC 8058 §3.1).
pub const LIST_UNSUBSCRIBE_POST_HEADER: &str = "List-Unsubscribe-Post";

/// The value of [`LIST_UNSUBSCRIBE_POST_HEADER`], and the body a mail client posts to the link
/// (RFC 8058 §3.1).
pub const LIST_UNSUBSCRIBE_ONE_CLICK: &str = "List-Unsubscribe=One-Click";

/// The longest unsubscribe URL put in a header, in bytes: with `List-Unsubscribe: <` and `>` it
/// stays under RFC 5322 §2.1.1's 998-character line, since lettre folds only at spaces.
const MAX_UNSUBSCRIBE_URL_BYTES: usize = 900;

/// `url` when it can go into `List-Unsubscribe` as is: an `http(s)` URL of printable ASCII
/// without spaces or angle brackets (RFC 2369 §2), short enough for one line; `None` otherwise,
/// and the email then goes without the headers rather than with a broken one.
fn unsubscribe_target(url: &str) -> Option<&str> {
    let printable = url
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    let web = url.starts_with("https://") || url.starts_with("http://");
    (printable && web && url.len() <= MAX_UNSUBSCRIBE_URL_BYTES).then_some(url)
}

/// The longest `Subject` sent, in characters (a longer one is cut and ends with "…"): RFC 5322
/// §2.1.1 bounds a header line at 998 characters; lettre folds the subject into RFC 2047 encoded
/// words, and nobody reads a subject that long anyway.
pub const MAX_SUBJECT_CHARS: usize = 250;

/// The longest display name in `To`, in characters (a longer one is cut and ends with "…").
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// `raw` as a header value: each control character (CR and LF above all: RFC 5322 §2.2, a header
/// field body holds none of its own) becomes a space, the ends are trimmed, and at most `max`
/// characters are kept, the last being "…" when it was cut.
pub fn header_text(raw: &str, max: usize) -> String {
    let flat: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() <= max {
        return flat.to_owned();
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Why a [`LettreEmailSender`] could not be built from its configuration.
///
/// No variant ever holds the SMTP password: URLs are shown with their user information replaced
/// by `***`.
#[derive(Debug, thiserror::Error)]
pub enum EmailConfigError {
    /// The configured `From` is not an RFC 5322 mailbox (`Name <user@domain>` or `user@domain`).
    #[error("invalid sender address {from:?}: {reason}")]
    InvalidFrom {
        /// The configured value.
        from: String,
        /// What lettre found wrong with it.
        reason: String,
    },
    /// The SMTP URL is not one lettre understands (`smtp://`, `smtp://…?tls=required`,
    /// `smtp://…?tls=opportunistic`, `smtps://`).
    #[error("invalid SMTP URL {url}: {reason}")]
    InvalidSmtpUrl {
        /// The URL with any credentials redacted.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A pool of zero connections could never send anything.
    #[error("the SMTP connection pool size must be at least 1")]
    ZeroPoolSize,
    /// The SMTP pool spawns its idle-connection reaper on Tokio, so it must be built inside a
    /// Tokio runtime.
    #[error("the SMTP email sender must be built inside a Tokio runtime")]
    NoTokioRuntime,
    /// The directory for `.eml` files could not be created.
    #[error("cannot create the email directory {}: {source}", path.display())]
    MailDirectory {
        /// The configured directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// The URL with credentials redacted, for Debug and logs.
        redacted_url: String,
        pool_size: u32,
        /// The most a whole send may take (lettre's own timeout bounds connecting only).
        timeout: std::time::Duration,
    },
    Files {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

/// Sends email with lettre, over SMTP or into a directory of `.eml` files.
///
/// Each message is RFC 5322 + MIME: `From` from configuration; `To` with the recipient's display
/// name (RFC 2047-encoded when not ASCII); UTF-8 `Subject` (RFC 2047); `Date`;
/// `Message-ID: <{delivery_id}@{domain of From}>` (RFC 5322 §3.6.4), identical on every retry of a
/// delivery; [`NOTIFICATION_ID_HEADER`]; with [`EmailMessage::unsubscribe_url`],
/// [`LIST_UNSUBSCRIBE_HEADER`] and [`LIST_UNSUBSCRIBE_POST_HEADER`] (RFC 8058 §3.1); a
/// `multipart/alternative` body (RFC 2046 §5.1.4) with the
/// `text/plain` part first and the `text/html` part last (the preferred one).
///
/// Sending reports [`SendOutcome::Sent`] with the `Message-ID` (angle brackets included) as the
/// provider id. Failures follow RFC 5321 §4.2.1: a 5yz reply is [`SendOutcome::Permanent`];
/// a 4yz reply, a connection, I/O, TLS or protocol error is [`SendOutcome::Transient`].
///
/// The SMTP transport keeps a pool of connections and spawns tasks on Tokio: build and drop the
/// sender inside a Tokio runtime. A whole send (connecting, the greeting, every reply) times out
/// after [`LettreEmailSender::DEFAULT_TIMEOUT`] unless built with
/// [`LettreEmailSender::smtp_with_timeout`], so a server that accepts and stays silent costs an
/// attempt ([`SendOutcome::Transient`]), never a worker. (lettre's own timeout bounds the TCP
/// connection only on its async transport, so the send is wrapped in a Tokio timeout too.)
pub struct LettreEmailSender {
    from: Mailbox,
    message_id_domain: String,
    transport: Transport,
}

impl LettreEmailSender {
    /// A sender over SMTP, with a pool of at most `pool_size` connections.
    ///
    /// `url` takes lettre's connection URL forms
    /// (`scheme://user:pass@host:port/ehlo-name?tls=…`): `smtp://host:port` is plain SMTP with
    /// no TLS at all (for loopback test servers and local relays); `smtp://…?tls=required` upgrades
    /// with STARTTLS (RFC 3207) or fails; `smtp://…?tls=opportunistic` upgrades when offered;
    /// `smtps://…` is implicit TLS, port 465 by default (RFC 8314). User and password, when
    /// present, are percent-decoded and used for SMTP AUTH (RFC 4954). `from` is an RFC 5322
    /// mailbox such as `Clairon <notifications@clairon.local>`; its domain names the
    /// `Message-ID`s.
    ///
    /// # Errors
    /// [`EmailConfigError::InvalidFrom`], [`EmailConfigError::InvalidSmtpUrl`] (the URL shown
    /// without its credentials), [`EmailConfigError::ZeroPoolSize`], and
    /// [`EmailConfigError::NoTokioRuntime`] when called outside a Tokio runtime.
    pub fn smtp(url: &str, from: &str, pool_size: u32) -> Result<Self, EmailConfigError> {
        Self::smtp_with_timeout(url, from, pool_size, Self::DEFAULT_TIMEOUT)
    }

    /// Timeout of a whole SMTP send by default: 30 s.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

    /// As [`LettreEmailSender::smtp`], a whole send (connect, greeting, every reply) timing out
    /// after `timeout`.
    ///
    /// # Errors
    /// As [`LettreEmailSender::smtp`].
    pub fn smtp_with_timeout(
        url: &str,
        from: &str,
        pool_size: u32,
        timeout: std::time::Duration,
    ) -> Result<Self, EmailConfigError> {
        let from = parse_from(from)?;
        if pool_size == 0 {
            return Err(EmailConfigError::ZeroPoolSize);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(EmailConfigError::NoTokioRuntime);
        }
        let redacted_url = redact_url(url);
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| {
            EmailConfigError::InvalidSmtpUrl {
                url: redacted_url.clone(),
                reason: e.to_string(),
            }
        })?;
        let transport = builder
            .pool_config(PoolConfig::new().max_size(pool_size))
            .timeout(Some(timeout))
            .build();
        Ok(Self {
            message_id_domain: from.email.domain().to_owned(),
            from,
            transport: Transport::Smtp {
                transport,
                redacted_url,
                pool_size,
                timeout,
            },
        })
    }

    /// Checks a `From` mailbox the way both constructors do, without creating anything: lets
    /// start-up refuse a bad `CLAIRON_EMAIL_FROM` before it writes a file.
    ///
    /// # Errors
    /// [`EmailConfigError::InvalidFrom`].
    pub fn check_from(from: &str) -> Result<(), EmailConfigError> {
        parse_from(from).map(drop)
    }

    /// A sender that writes each message as `{uuid}.eml` in `dir` (created, with its parents,
    /// when missing) instead of sending it: for development and installations without SMTP.
    ///
    /// # Errors
    /// [`EmailConfigError::InvalidFrom`] and [`EmailConfigError::MailDirectory`].
    pub fn files(dir: PathBuf, from: &str) -> Result<Self, EmailConfigError> {
        let from = parse_from(from)?;
        std::fs::create_dir_all(&dir).map_err(|source| EmailConfigError::MailDirectory {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            message_id_domain: from.email.domain().to_owned(),
            from,
            transport: Transport::Files {
                transport: AsyncFileTransport::new(&dir),
                dir,
            },
        })
    }

    /// The directory `.eml` files are written to, in file mode.
    pub fn mail_directory(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Files { dir, .. } => Some(dir),
            Transport::Smtp { .. } => None,
        }
    }

    /// The `Message-ID` (RFC 5322 §3.6.4) a delivery's email carries, angle brackets included:
    /// `<{delivery_id}@{domain of From}>`. Delivery ids are letters, digits, `-` and `_` (the
    /// domain's `DeliveryId` checks it) and the domain is the one lettre parsed from `From`, so
    /// both are a valid `id-left` and `id-right`.
    pub fn message_id_for(&self, message: &EmailMessage) -> String {
        format!("<{}@{}>", message.delivery_id, self.message_id_domain)
    }

    fn build(&self, message: &EmailMessage, message_id: &str) -> Result<Message, String> {
        let address: Address = message
            .to
            .as_str()
            .parse()
            .map_err(|e| format!("recipient address refused by the email builder: {e}"))?;
        // Cleaned again here, whatever validated them: lettre panics on a display name holding
        // a line break, and a subject comes out of a template.
        let name = header_text(message.to_name.as_str(), MAX_DISPLAY_NAME_CHARS);
        let to = Mailbox::new(Some(name).filter(|n| !n.is_empty()), address);
        let subject = header_text(&message.subject, MAX_SUBJECT_CHARS);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .date_now()
            .message_id(Some(message_id.to_owned()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(NOTIFICATION_ID_HEADER),
                message.notification_id.as_str().to_owned(),
            ));
        if let Some(url) = message
            .unsubscribe_url
            .as_deref()
            .and_then(unsubscribe_target)
        {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str(LIST_UNSUBSCRIBE_HEADER),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str(LIST_UNSUBSCRIBE_POST_HEADER),
                    LIST_UNSUBSCRIBE_ONE_CLICK.to_owned(),
                ));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|e| format!("the email could not be built: {e}"))
    }
}

#[async_trait]
impl EmailSender for LettreEmailSender {
    #[tracing::instrument(
        name = "email.send",
        skip_all,
        fields(delivery_id = %message.delivery_id, notification_id = %message.notification_id)
    )]
    async fn send(&self, message: &EmailMessage) -> SendOutcome {
        let message_id = self.message_id_for(message);
        // lettre reports some malformed values by panicking (an `expect` on a failing
        // `Display`); whatever slips past the cleaning above fails this delivery alone.
        let built = std::panic::catch_unwind(AssertUnwindSafe(|| self.build(message, &message_id)))
            .unwrap_or_else(|_| Err("the email builder failed on this message".to_owned()));
        let email = match built {
            Ok(email) => email,
            Err(reason) => {
                tracing::warn!(%reason, "email refused before sending");
                return SendOutcome::Permanent(reason);
            }
        };
        let outcome = match &self.transport {
            Transport::Smtp {
                transport, timeout, ..
            } => match tokio::time::timeout(*timeout, transport.send(email)).await {
                Ok(Ok(_)) => SendOutcome::Sent {
                    provider_message_id: message_id,
                },
                Ok(Err(error)) => classify_smtp_error(&error),
                Err(_) => SendOutcome::Transient(format!(
                    "SMTP server did not finish the exchange within {} ms",
                    timeout.as_millis()
                )),
            },
            Transport::Files { transport, .. } => match transport.send(email).await {
                Ok(_) => SendOutcome::Sent {
                    provider_message_id: message_id,
                },
                Err(error) => {
                    SendOutcome::Transient(format!("cannot write the email file: {error}"))
                }
            },
        };
        match &outcome {
            SendOutcome::Sent { .. } => tracing::info!("email accepted"),
            other => tracing::warn!(outcome = ?other, "email not accepted"),
        }
        outcome
    }
}

impl fmt::Debug for LettreEmailSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("LettreEmailSender");
        debug.field("from", &self.from.to_string());
        match &self.transport {
            Transport::Smtp {
                redacted_url,
                pool_size,
                ..
            } => debug
                .field("smtp_url", redacted_url)
                .field("pool_size", pool_size),
            Transport::Files { dir, .. } => debug.field("mail_directory", dir),
        };
        debug.finish_non_exhaustive()
    }
}

fn parse_from(from: &str) -> Result<Mailbox, EmailConfigError> {
    if from.chars().any(char::is_control) {
        return Err(EmailConfigError::InvalidFrom {
            from: from.escape_debug().to_string(),
            reason: "a header value holds no control character (RFC 5322 §2.2)".to_owned(),
        });
    }
    from.parse::<Mailbox>()
        .map_err(|e| EmailConfigError::InvalidFrom {
            from: from.to_owned(),
            reason: e.to_string(),
        })
}

/// RFC 5321 §4.2.1: the first digit of a reply says whether trying again may help. Everything
/// that is not a 5yz reply (4yz replies, refused connections, I/O and TLS failures, garbled
/// replies, a server lacking an extension) may work later, or after an operator's fix.
fn classify_smtp_error(error: &lettre::transport::smtp::Error) -> SendOutcome {
    let text = error.to_string();
    if error.is_permanent() {
        SendOutcome::Permanent(format!("SMTP server refused the email: {text}"))
    } else if error.is_transient() {
        SendOutcome::Transient(format!("SMTP server deferred the email: {text}"))
    } else {
        SendOutcome::Transient(format!("SMTP exchange failed: {text}"))
    }
}

/// `scheme://user:pass@host…` → `scheme://***@host…`; anything that does not look like a URL is
/// hidden whole, since it may be a password pasted in the wrong place.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***@{}{tail}", &authority[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_cut_out_of_a_url() {
        assert_eq!(
            redact_url("smtps://user:p%40ss@mail.example.org:465"),
            "smtps://***@mail.example.org:465"
        );
        assert_eq!(
            redact_url("smtp://u:pw@relay.local:587/helo.local?tls=required"),
            "smtp://***@relay.local:587/helo.local?tls=required"
        );
        assert_eq!(redact_url("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
        assert_eq!(redact_url("hunter2"), "<not a URL>");
    }

    #[tokio::test]
    async fn a_zero_pool_is_refused() {
        let err = LettreEmailSender::smtp("smtp://127.0.0.1:2525", "a@b.example", 0).unwrap_err();
        assert!(matches!(err, EmailConfigError::ZeroPoolSize), "{err:?}");
    }

    #[test]
    fn an_smtp_sender_needs_a_tokio_runtime() {
        let err = LettreEmailSender::smtp("smtp://127.0.0.1:2525", "a@b.example", 1).unwrap_err();
        assert!(matches!(err, EmailConfigError::NoTokioRuntime), "{err:?}");
    }

    #[test]
    fn only_a_one_line_http_url_becomes_an_unsubscribe_header() {
        let good = "https://notify.example.org/unsubscribe/abc.def";
        assert_eq!(unsubscribe_target(good), Some(good));
        for bad in [
            "https://x.example/a b",
            "https://x.example/\r\nBcc: eve@example.org",
            "https://x.example/<a>",
            "mailto:unsubscribe@example.org",
            "https://x.example/é",
        ] {
            assert_eq!(unsubscribe_target(bad), None, "{bad:?}");
        }
        let long = format!(
            "https://x.example/{}",
            "a".repeat(MAX_UNSUBSCRIBE_URL_BYTES)
        );
        assert_eq!(unsubscribe_target(&long), None, "longer than a header line");
    }

    #[test]
    fn a_header_value_is_put_on_one_line_and_cut_to_its_bound() {
        assert_eq!(
            header_text("Eve\r\nBcc: x@example.org", 200),
            "Eve  Bcc: x@example.org"
        );
        assert_eq!(
            header_text("  Zoé\t", 200),
            "Zoé",
            "trimmed after flattening"
        );
        let long = header_text(&"a".repeat(300), 250);
        assert_eq!(long.chars().count(), 250, "at most the bound: {long}");
        assert!(long.ends_with('…'), "a cut value says so: {long}");
    }

    #[test]
    fn a_from_with_a_line_break_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            LettreEmailSender::files(dir.path().to_owned(), "Clai\nron <a@b.example>").unwrap_err();
        assert!(
            matches!(err, EmailConfigError::InvalidFrom { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn an_unparseable_from_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = LettreEmailSender::files(dir.path().to_owned(), "Clairon <nobody>").unwrap_err();
        assert!(
            matches!(err, EmailConfigError::InvalidFrom { .. }),
            "{err:?}"
        );
    }
}
