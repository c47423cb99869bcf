//! [`FallbackEmailSender`]: a second SMTP provider for when the first one cannot take a message
//! right now.
//!
//! Only a transient failure of the primary (connection refused, timeout, SMTP 4xx) moves the
//! message to the fallback: a 5xx from the primary is a verdict on the message or the address
//! (RFC 5321 §4.2.1), which another server would give too. The dispatcher sees one outcome, and
//! counts one attempt, whichever server answered.

use std::sync::Arc;

use async_trait::async_trait;
use clairon_application::ports::{EmailMessage, EmailSender, SendOutcome};

/// Tries `primary`, then `fallback` when the primary failed transiently.
pub struct FallbackEmailSender {
    primary: Arc<dyn EmailSender>,
    fallback: Arc<dyn EmailSender>,
}

impl FallbackEmailSender {
    /// A sender that falls back from `primary` to `fallback`.
    pub fn new(primary: Arc<dyn EmailSender>, fallback: Arc<dyn EmailSender>) -> Self {
        Self { primary, fallback }
    }
}

#[async_trait]
impl EmailSender for FallbackEmailSender {
    async fn send(&self, message: &EmailMessage) -> SendOutcome {
        let primary_failure = match self.primary.send(message).await {
            SendOutcome::Transient(reason) => reason,
            decided => return decided,
        };
        tracing::warn!(
            delivery_id = %message.delivery_id,
            cause = %primary_failure,
            "primary SMTP failed transiently; trying the fallback"
        );
        match self.fallback.send(message).await {
            SendOutcome::Transient(reason) => {
                SendOutcome::Transient(format!("primary: {primary_failure}; fallback: {reason}"))
            }
            decided => decided,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_application::ports::MockEmailSender;
    use clairon_domain::{DeliveryId, DisplayName, EmailAddress, NotificationId};

    fn message() -> EmailMessage {
        EmailMessage {
            delivery_id: DeliveryId::parse("d-1").unwrap(),
            notification_id: NotificationId::parse("n-1").unwrap(),
            to: EmailAddress::parse("zoe@example.org").unwrap(),
            to_name: DisplayName::parse("Zoé").unwrap(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
            unsubscribe_url: None,
        }
    }

    fn sender(answer: SendOutcome, calls: usize) -> Arc<dyn EmailSender> {
        let mut mock = MockEmailSender::new();
        mock.expect_send()
            .times(calls)
            .returning(move |_| answer.clone());
        Arc::new(mock)
    }

    fn sent(id: &str) -> SendOutcome {
        SendOutcome::Sent {
            provider_message_id: id.into(),
        }
    }

    #[tokio::test]
    async fn a_transient_primary_failure_is_sent_through_the_fallback() {
        let composite = FallbackEmailSender::new(
            sender(SendOutcome::Transient("451 try later".into()), 1),
            sender(sent("<fallback>"), 1),
        );
        assert_eq!(composite.send(&message()).await, sent("<fallback>"));
    }

    #[tokio::test]
    async fn a_permanent_primary_refusal_never_reaches_the_fallback() {
        let composite = FallbackEmailSender::new(
            sender(SendOutcome::Permanent("550 no such user".into()), 1),
            sender(sent("<fallback>"), 0),
        );
        assert_eq!(
            composite.send(&message()).await,
            SendOutcome::Permanent("550 no such user".into())
        );
    }

    #[tokio::test]
    async fn when_both_fail_transiently_the_outcome_names_both_causes() {
        let composite = FallbackEmailSender::new(
            sender(SendOutcome::Transient("451 busy".into()), 1),
            sender(SendOutcome::Transient("connection refused".into()), 1),
        );
        let SendOutcome::Transient(reason) = composite.send(&message()).await else {
            panic!("still transient");
        };
        assert!(reason.contains("451 busy") && reason.contains("connection refused"));
    }
}
