//! `LettreEmailSender` against a real SMTP server on loopback (the aiosmtpd sink) and in file
//! mode: the MIME it writes, and how it classifies the server's answers (RFC 5321 §4.2.1).
#![cfg(feature = "test-support")]

use std::time::Duration;

use clairon_adapters::channels::email::{
    LIST_UNSUBSCRIBE_HEADER, LIST_UNSUBSCRIBE_POST_HEADER, NOTIFICATION_ID_HEADER,
};
use clairon_adapters::channels::{EmailConfigError, LettreEmailSender};
use clairon_adapters::testing::{ParsedMailbox, ReceivedEmail, SmtpSink};
use clairon_application::ports::{EmailMessage, EmailSender, SendOutcome};
use clairon_domain::{DeliveryId, DisplayName, EmailAddress, NotificationId};

const FROM: &str = "Clairon <notifications@clairon.local>";
const SUBJECT: &str = "Répétition — Carmen : nouvel horaire";
const TEXT: &str = "Bonjour Zoé,\n\nLa répétition de Carmen commence à 20 h 15.\n";
const HTML: &str =
    "<p>Bonjour Zoé,</p><p>La répétition de <strong>Carmen</strong> commence à 20&nbsp;h&nbsp;15.</p>";
const WAIT: Duration = Duration::from_secs(10);

fn message(delivery_id: &str) -> EmailMessage {
    EmailMessage {
        delivery_id: DeliveryId::parse(delivery_id).unwrap(),
        notification_id: NotificationId::parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap(),
        to: EmailAddress::parse("zoe.tremblay@example.org").unwrap(),
        to_name: DisplayName::parse("Zoé Tremblay").unwrap(),
        subject: SUBJECT.to_owned(),
        text: TEXT.to_owned(),
        html: HTML.to_owned(),
        unsubscribe_url: None,
    }
}

fn sent_id(outcome: SendOutcome) -> String {
    match outcome {
        SendOutcome::Sent {
            provider_message_id,
        } => provider_message_id,
        other => panic!("expected Sent, got {other:?}"),
    }
}

/// Normalises line ends: quoted-printable carries CRLF, the source text LF.
fn lf(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[tokio::test]
async fn an_email_reaches_the_smtp_server_with_encoded_headers_and_both_alternatives() {
    let sink = SmtpSink::start().await;
    let sender = LettreEmailSender::smtp(&sink.url(), FROM, 2).unwrap();
    let delivery = "0190a1b2-0000-7000-8000-000000000001";

    let outcome = sender.send(&message(delivery)).await;

    let expected_id = format!("<{delivery}@clairon.local>");
    assert_eq!(sent_id(outcome), expected_id);
    let emails = sink.wait_for_messages(1, WAIT).await;
    assert_eq!(emails.len(), 1);
    let email = &emails[0];
    assert_eq!(
        email.envelope_to,
        vec!["zoe.tremblay@example.org".to_owned()]
    );
    assert_eq!(
        email.envelope_from.as_deref(),
        Some("notifications@clairon.local")
    );
    assert_eq!(
        email.from,
        vec![ParsedMailbox {
            name: Some("Clairon".to_owned()),
            address: "notifications@clairon.local".to_owned(),
        }]
    );
    assert_eq!(
        email.to,
        vec![ParsedMailbox {
            name: Some("Zoé Tremblay".to_owned()),
            address: "zoe.tremblay@example.org".to_owned(),
        }]
    );
    assert_eq!(email.subject.as_deref(), Some(SUBJECT));
    assert_eq!(email.message_id.as_deref(), Some(expected_id.as_str()));
    assert_eq!(
        email.header(NOTIFICATION_ID_HEADER).as_deref(),
        Some("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
    );
    assert!(
        email.parsed().date().is_some(),
        "Date must be an RFC 5322 date-time, got {:?}",
        email.date
    );
    assert_eq!(email.content_type.as_deref(), Some("multipart/alternative"));
    let types: Vec<&str> = email.parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        vec!["text/plain", "text/html"],
        "plain text first, HTML last (RFC 2046 §5.1.4)"
    );
    assert_eq!(lf(email.part("text/plain").unwrap()), TEXT);
    assert_eq!(lf(email.part("text/html").unwrap()), HTML);
}

#[tokio::test]
async fn a_message_with_an_unsubscribe_link_carries_the_one_click_headers_and_one_without_none() {
    let sink = SmtpSink::start().await;
    let sender = LettreEmailSender::smtp(&sink.url(), FROM, 1).unwrap();
    let url = format!(
        "https://notify.example.org/clairon/unsubscribe/{}.{}",
        "p".repeat(60),
        "m".repeat(43)
    );
    let with_link = EmailMessage {
        unsubscribe_url: Some(url.clone()),
        ..message("d-with-link")
    };

    sent_id(sender.send(&with_link).await);
    sent_id(sender.send(&message("d-without-link")).await);

    let emails = sink.wait_for_messages(2, WAIT).await;
    let by_id = |id: &str| {
        emails
            .iter()
            .find(|e| e.message_id.as_deref() == Some(&format!("<{id}@clairon.local>")[..]))
            .unwrap_or_else(|| panic!("{id} received"))
    };
    let linked = by_id("d-with-link");
    assert_eq!(
        linked.header(LIST_UNSUBSCRIBE_HEADER).as_deref(),
        Some(format!("<{url}>").as_str()),
        "the link, whole, on one line (RFC 2369)"
    );
    assert_eq!(
        linked.header(LIST_UNSUBSCRIBE_POST_HEADER).as_deref(),
        Some("List-Unsubscribe=One-Click"),
        "RFC 8058 §3.1"
    );
    let plain = by_id("d-without-link");
    assert_eq!(plain.header(LIST_UNSUBSCRIBE_HEADER), None);
    assert_eq!(plain.header(LIST_UNSUBSCRIBE_POST_HEADER), None);
}

#[tokio::test]
async fn non_ascii_headers_travel_as_rfc_2047_encoded_words() {
    let sink = SmtpSink::start().await;
    let sender = LettreEmailSender::smtp(&sink.url(), FROM, 1).unwrap();

    sent_id(sender.send(&message("d-encoded-words")).await);

    let email = &sink.wait_for_messages(1, WAIT).await[0];
    let to = email.header("To").unwrap();
    let subject = email.header("Subject").unwrap();
    for (name, value) in [("To", &to), ("Subject", &subject)] {
        assert!(
            value.is_ascii(),
            "{name} must be 7-bit on the wire: {value:?}"
        );
        assert!(
            value.to_ascii_lowercase().contains("=?utf-8?"),
            "{name} must hold UTF-8 encoded words: {value:?}"
        );
    }
    assert!(to.contains("<zoe.tremblay@example.org>"), "{to:?}");
}

#[tokio::test]
async fn a_retried_delivery_keeps_its_message_id() {
    let sink = SmtpSink::start().await;
    let sender = LettreEmailSender::smtp(&sink.url(), FROM, 2).unwrap();
    let delivery = message("0190a1b2-0000-7000-8000-00000000002a");

    let first = sent_id(sender.send(&delivery).await);
    let second = sent_id(sender.send(&delivery).await);

    assert_eq!(first, second);
    let emails = sink.wait_for_messages(2, WAIT).await;
    let ids: Vec<Option<&str>> = emails.iter().map(|e| e.message_id.as_deref()).collect();
    assert_eq!(
        ids,
        vec![
            Some("<0190a1b2-0000-7000-8000-00000000002a@clairon.local>"),
            Some("<0190a1b2-0000-7000-8000-00000000002a@clairon.local>"),
        ]
    );
}

#[tokio::test]
async fn a_451_reply_is_transient_and_the_next_try_goes_through() {
    let sink = SmtpSink::start_with_script(&[451]).await;
    let sender = LettreEmailSender::smtp(&sink.url(), FROM, 1).unwrap();

    let deferred = sender.send(&message("d-451")).await;
    let retried = sender.send(&message("d-451")).await;

    match deferred {
        SendOutcome::Transient(reason) => assert!(reason.contains("451"), "{reason}"),
        other => panic!("a 451 reply must be Transient, got {other:?}"),
    }
    assert_eq!(sent_id(retried), "<d-451@clairon.local>");
    let codes: Vec<u16> = sink.attempts().iter().map(|a| a.code).collect();
    assert_eq!(codes, vec![451, 250]);
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_550_reply_is_permanent() {
    let sink = SmtpSink::start_with_script(&[550]).await;
    let sender = LettreEmailSender::smtp(&sink.url(), FROM, 1).unwrap();

    let outcome = sender.send(&message("d-550")).await;

    match outcome {
        SendOutcome::Permanent(reason) => {
            assert!(reason.contains("550"), "{reason}");
            assert!(reason.contains("Mailbox unavailable"), "{reason}");
        }
        other => panic!("a 550 reply must be Permanent, got {other:?}"),
    }
    assert_eq!(sink.attempts().len(), 1, "the server saw the DATA");
    assert!(sink.messages().is_empty(), "nothing was stored");
}

#[tokio::test]
async fn a_closed_port_is_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sender = LettreEmailSender::smtp(&format!("smtp://127.0.0.1:{port}"), FROM, 1).unwrap();

    let outcome = sender.send(&message("d-closed")).await;

    assert!(
        matches!(outcome, SendOutcome::Transient(_)),
        "a refused connection must be Transient, got {outcome:?}"
    );
}

#[tokio::test]
async fn file_mode_writes_one_parseable_eml_file_into_a_created_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("outbox").join("email");
    let sender = LettreEmailSender::files(dir.clone(), FROM).unwrap();

    let outcome = sender.send(&message("d-file")).await;

    assert_eq!(sent_id(outcome), "<d-file@clairon.local>");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let email = ReceivedEmail::from_raw(std::fs::read(&files[0]).unwrap());
    assert_eq!(email.subject.as_deref(), Some(SUBJECT));
    assert_eq!(email.to[0].name.as_deref(), Some("Zoé Tremblay"));
    assert_eq!(email.message_id.as_deref(), Some("<d-file@clairon.local>"));
    assert_eq!(lf(email.part("text/plain").unwrap()), TEXT);
    assert_eq!(lf(email.part("text/html").unwrap()), HTML);
}

#[tokio::test]
async fn the_smtp_password_never_shows_in_debug_output_or_errors() {
    let sender =
        LettreEmailSender::smtp("smtps://clairon:s3cr3t-pw@mail.example.org:465", FROM, 1).unwrap();
    let debug = format!("{sender:?}");
    assert!(!debug.contains("s3cr3t-pw"), "{debug}");
    assert!(debug.contains("mail.example.org:465"), "{debug}");

    let error =
        LettreEmailSender::smtp("smtpx://clairon:s3cr3t-pw@mail.example.org", FROM, 1).unwrap_err();
    assert!(
        matches!(error, EmailConfigError::InvalidSmtpUrl { .. }),
        "{error:?}"
    );
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("s3cr3t-pw"), "{text}");
        assert!(text.contains("mail.example.org"), "{text}");
    }
}

#[tokio::test]
async fn a_from_that_is_not_a_mailbox_is_refused() {
    let error =
        LettreEmailSender::smtp("smtp://127.0.0.1:25", "Clairon notifications", 1).unwrap_err();

    assert!(
        matches!(error, EmailConfigError::InvalidFrom { .. }),
        "{error:?}"
    );
}

/// A display name that holds a line break, as a row stored before names were validated would
/// give one (deserialised: the parser refuses it).
fn name_with_line_break() -> DisplayName {
    serde_json::from_value(serde_json::json!("Eve\nX")).expect("serde builds it unchecked")
}

#[tokio::test]
async fn a_display_name_with_a_line_break_is_sent_on_one_line_instead_of_panicking() {
    // Arrange
    let sink = SmtpSink::start().await;
    let sender = LettreEmailSender::smtp(&sink.url(), FROM, 1).unwrap();
    let mut email = message("d-line-break-name");
    email.to_name = name_with_line_break();

    // Act
    let outcome = sender.send(&email).await;

    // Assert
    sent_id(outcome);
    let received = &sink.wait_for_messages(1, WAIT).await[0];
    assert_eq!(
        received.to,
        vec![ParsedMailbox {
            name: Some("Eve X".to_owned()),
            address: "zoe.tremblay@example.org".to_owned(),
        }],
        "the line break became a space"
    );
}

#[tokio::test]
async fn a_subject_with_an_injected_header_and_no_end_is_sent_on_one_bounded_line() {
    // Arrange
    let sink = SmtpSink::start().await;
    let sender = LettreEmailSender::smtp(&sink.url(), FROM, 1).unwrap();
    let mut email = message("d-hostile-subject");
    email.subject = format!(
        "Répétition\r\nBcc: eve@example.org\r\n{}",
        "x".repeat(5_000)
    );

    // Act
    let outcome = sender.send(&email).await;

    // Assert
    sent_id(outcome);
    let received = &sink.wait_for_messages(1, WAIT).await[0];
    assert!(
        received.header("Bcc").is_none(),
        "no header was injected: {:?}",
        received.header("Bcc")
    );
    let subject = received.subject.clone().expect("a subject");
    assert!(
        subject.starts_with("Répétition") && subject.contains("Bcc: eve@example.org"),
        "the would-be header stays in the subject: {subject:?}"
    );
    assert!(!subject.contains(['\r', '\n']), "on one line: {subject:?}");
    assert!(
        subject.chars().count() <= clairon_adapters::channels::email::MAX_SUBJECT_CHARS,
        "the subject is cut to its bound: {} characters",
        subject.chars().count()
    );
    assert!(subject.ends_with('…'), "a cut subject says so: {subject:?}");
}
