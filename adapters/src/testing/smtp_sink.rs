//! A real SMTP server on loopback for tests: [`SmtpSink`] launches
//! `tests/support/smtp_sink.py` (Python's `aiosmtpd`), which stores every accepted message as a
//! `.eml` file and can answer scripted reply codes; [`ReceivedEmail`] parses what it stored with
//! `mail-parser` (RFC 5322, MIME, RFC 2047) so tests assert on decoded headers and parts.
//!
//! It needs `python3` on `PATH` with `aiosmtpd` installed (`pip install aiosmtpd`); without them
//! it panics with instructions rather than let a test pass untested. It knows nothing of
//! Clairon's senders: it only speaks SMTP.

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use tempfile::TempDir;

/// Where the sink script lives in the workspace.
pub const SCRIPT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/smtp_sink.py");

/// How long the sink may take to start listening: 30 s.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running SMTP sink; the process is killed and its mail directory removed when dropped.
///
/// ```ignore
/// let sink = SmtpSink::start().await;                           // accepts everything
/// let flaky = SmtpSink::start_with_script(&[451, 250]).await;   // defers the first DATA
/// let sender = LettreEmailSender::smtp(&sink.url(), "Clairon <notifications@clairon.local>", 2)?;
/// // … send, then:
/// let emails = sink.wait_for_messages(1, Duration::from_secs(5)).await;
/// assert_eq!(emails[0].subject.as_deref(), Some("Répétition"));
/// ```
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    port: u16,
    maildir: TempDir,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port that accepts every message.
    ///
    /// # Panics
    /// When `python3` or `aiosmtpd` is missing, or the sink does not start within 30 s.
    pub async fn start() -> Self {
        Self::start_with_script(&[]).await
    }

    /// Starts a sink whose successive DATA transactions get the reply codes of `replies` (250
    /// accepts; 451 is "451 4.3.0 Try again later", 550 "550 5.1.1 Mailbox unavailable", other
    /// 4xx/5xx a generic text), then 250 for every later one.
    ///
    /// # Panics
    /// When `python3` or `aiosmtpd` is missing, or the sink does not start within 30 s.
    pub async fn start_with_script(replies: &[u16]) -> Self {
        let maildir = tempfile::Builder::new()
            .prefix("clairon-smtp-sink-")
            .tempdir()
            .expect("a temporary directory for the SMTP sink");
        let log_path = maildir.path().join("sink.log");
        let log = fs::File::create(&log_path).expect("the SMTP sink's log file");
        let mut command = Command::new("python3");
        command
            .arg(SCRIPT_PATH)
            .args(["--port", "0", "--maildir"])
            .arg(maildir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if !replies.is_empty() {
            let script: Vec<String> = replies.iter().map(u16::to_string).collect();
            command.args(["--script", &script.join(",")]);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) if error.kind() == ErrorKind::NotFound => panic!(
                "the SMTP sink needs `python3` on PATH (with `pip install aiosmtpd`); \
                 it could not be started: {error}"
            ),
            Err(error) => panic!("the SMTP sink ({SCRIPT_PATH}) could not be started: {error}"),
        };

        // A thread reads stdout to the end, so the pipe never fills up; the first line says
        // which port was bound.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (port_tx, port_rx) = tokio::sync::oneshot::channel::<Option<String>>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = port_tx.send(lines.next().and_then(Result::ok));
            for _ in lines {}
        });
        let first_line = tokio::time::timeout(STARTUP_TIMEOUT, port_rx)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let port = first_line
            .as_deref()
            .and_then(|line| line.strip_prefix("LISTENING "))
            .and_then(|port| port.trim().parse::<u16>().ok());
        match port {
            Some(port) => Self {
                child,
                port,
                maildir,
            },
            None => {
                let _ = child.kill();
                let status = child.wait();
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                if log.contains("No module named 'aiosmtpd'") {
                    panic!(
                        "the SMTP sink needs the Python package aiosmtpd: run `pip install aiosmtpd` \
                         (CI installs it). python3 said:\n{log}"
                    );
                }
                panic!(
                    "the SMTP sink did not start within {STARTUP_TIMEOUT:?} (first line {first_line:?}, \
                     exit {status:?}); its log:\n{log}"
                );
            }
        }
    }

    /// The connection URL for a sender: `smtp://127.0.0.1:PORT` (plain SMTP, no TLS).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The TCP port the sink listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding `<n>.eml`, `<n>.json`, `attempts.jsonl` and `sink.log`.
    pub fn maildir(&self) -> &Path {
        self.maildir.path()
    }

    /// The messages accepted so far, in order of acceptance.
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        let mut numbered: Vec<(u64, PathBuf)> = fs::read_dir(self.maildir.path())
            .expect("the SMTP sink's mail directory is readable")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter_map(|path| {
                let number = path
                    .file_name()?
                    .to_str()?
                    .strip_suffix(".eml")?
                    .parse()
                    .ok()?;
                Some((number, path))
            })
            .collect();
        numbered.sort();
        numbered
            .into_iter()
            .map(|(_, eml)| {
                let raw = fs::read(&eml).expect("an accepted message is readable");
                let side: serde_json::Value = fs::read(eml.with_extension("json"))
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .unwrap_or_default();
                let mut email = ReceivedEmail::from_raw(raw);
                email.envelope_from = side["mail_from"].as_str().map(str::to_owned);
                email.envelope_to = side["rcpt_tos"]
                    .as_array()
                    .map(|tos| {
                        tos.iter()
                            .filter_map(|to| to.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                email
            })
            .collect()
    }

    /// Every DATA transaction so far, accepted or refused, in order.
    pub fn attempts(&self) -> Vec<SmtpAttempt> {
        fs::read_to_string(self.maildir.path().join("attempts.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .map(|line| SmtpAttempt {
                code: line["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(0),
                rcpt_tos: line["rcpt_tos"]
                    .as_array()
                    .map(|tos| {
                        tos.iter()
                            .filter_map(|to| to.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Waits until at least `count` messages were accepted and returns them all.
    ///
    /// # Panics
    /// After `timeout`, with the sink's attempts and log.
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<ReceivedEmail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if Instant::now() >= deadline {
                let log =
                    fs::read_to_string(self.maildir.path().join("sink.log")).unwrap_or_default();
                panic!(
                    "the SMTP sink accepted {} of {count} messages in {timeout:?}; attempts: {:?}; log:\n{log}",
                    messages.len(),
                    self.attempts()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One DATA transaction the sink saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpAttempt {
    /// The reply code it answered (250, 451, 550, …).
    pub code: u16,
    /// The envelope recipients (`RCPT TO`).
    pub rcpt_tos: Vec<String>,
}

/// A mailbox of an address header, decoded: the display name (RFC 2047 words decoded) and the
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMailbox {
    /// Display name, when present.
    pub name: Option<String>,
    /// `local@domain`.
    pub address: String,
}

/// A stored email, with what tests usually assert already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEmail {
    /// The message exactly as stored (CRLF line ends, encoded headers).
    pub raw: Vec<u8>,
    /// `MAIL FROM` of the SMTP envelope (`None` outside the sink).
    pub envelope_from: Option<String>,
    /// `RCPT TO`s of the SMTP envelope (empty outside the sink).
    pub envelope_to: Vec<String>,
    /// `From`, decoded.
    pub from: Vec<ParsedMailbox>,
    /// `To`, decoded.
    pub to: Vec<ParsedMailbox>,
    /// `Subject`, RFC 2047 decoded.
    pub subject: Option<String>,
    /// `Message-ID` as written, angle brackets included.
    pub message_id: Option<String>,
    /// `Date` as written.
    pub date: Option<String>,
    /// The top-level `Content-Type` without parameters (`multipart/alternative`).
    pub content_type: Option<String>,
    /// The leaf body parts in order: (`type/subtype`, decoded text); binary parts are left out.
    pub parts: Vec<(String, String)>,
}

impl ReceivedEmail {
    /// Parses a raw RFC 5322 message (for instance a `.eml` file written by file mode).
    ///
    /// # Panics
    /// When `raw` is not a message at all.
    pub fn from_raw(raw: Vec<u8>) -> Self {
        let parsed = MessageParser::default()
            .parse(&raw)
            .expect("the stored email parses as an RFC 5322 message");
        let mailboxes = |address: Option<&mail_parser::Address<'_>>| -> Vec<ParsedMailbox> {
            address
                .map(|a| {
                    a.iter()
                        .map(|m| ParsedMailbox {
                            name: m.name().map(str::to_owned),
                            address: m.address().unwrap_or_default().to_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mime = |ct: Option<&mail_parser::ContentType<'_>>| {
            ct.map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{sub}", ct.ctype()).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            })
        };
        let parts = parsed
            .parts
            .iter()
            .filter_map(|part| {
                let text = match &part.body {
                    PartType::Text(text) | PartType::Html(text) => text.to_string(),
                    _ => return None,
                };
                Some((
                    mime(part.content_type()).unwrap_or_else(|| "text/plain".to_owned()),
                    text,
                ))
            })
            .collect();
        let raw_header = |name: &str| {
            parsed
                .header_raw(name)
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        Self {
            from: mailboxes(parsed.from()),
            to: mailboxes(parsed.to()),
            subject: parsed.subject().map(str::to_owned),
            message_id: raw_header("Message-ID"),
            date: raw_header("Date"),
            content_type: mime(parsed.content_type()),
            parts,
            envelope_from: None,
            envelope_to: Vec::new(),
            raw,
        }
    }

    /// A header as written, unfolded (RFC 5322 §2.2.3) and trimmed; not RFC 2047-decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed()
            .header_raw(name)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The full `mail-parser` view of the message, for anything else.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(&self.raw)
            .expect("the stored email parses as an RFC 5322 message")
    }

    /// The decoded text of the first leaf part of MIME type `mime` (`text/plain`, `text/html`).
    pub fn part(&self, mime: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|(m, _)| m == mime)
            .map(|(_, text)| text.as_str())
    }
}
