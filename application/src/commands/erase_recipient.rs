//! `EraseRecipient`: the right to erasure (GDPR article 17). The recipient, their notifications,
//! deliveries and attempts go in one transaction; so do the traces of them elsewhere: other
//! recipients' notifications that name them are rewritten without them ([`ContextRedactor`]),
//! stored `Idempotency-Key` answers of requests that named them are dropped. An audit row
//! without personal data records that it happened, when, and at whose request.

use std::sync::Arc;

use clairon_domain::rules::{erased_label, redact_mention};
use clairon_domain::{Body, Locale, Notification, Recipient, RecipientId, Title};
use serde_json::Value;

use crate::ports::{
    Clock, ErasedCounts, ErasureAudit, ErasureOutcome, MentionRedactor, PersonalDataStore,
    RealtimeEvent, RealtimePublisher, Redacted, RepositoryError, TemplateRenderer,
};

/// The [`MentionRedactor`] of erasures. In a notification that names the erased recipient, each
/// of their entries in the planning context becomes the neutral label of the notification's
/// language ([`erased_label`], [`redact_mention`]); the in-app title and body are then rendered
/// again from that context by the templates that wrote them, so the text reads as it did, the
/// label in place of the name. Without templates, or when rendering fails, the erased name is
/// replaced by the label in the stored title and body (a text that would then be invalid
/// becomes the label alone): a redaction is never skipped.
pub struct ContextRedactor {
    templates: Option<Arc<dyn TemplateRenderer>>,
    default_locale: Locale,
}

impl ContextRedactor {
    /// Rewrites texts by rendering them again with `templates`; `default_locale` is the
    /// language of a notification whose context says none.
    pub fn new(templates: Arc<dyn TemplateRenderer>, default_locale: Locale) -> Self {
        Self {
            templates: Some(templates),
            default_locale,
        }
    }

    /// Rewrites texts by replacing the erased name with the label only.
    pub fn without_templates(default_locale: Locale) -> Self {
        Self {
            templates: None,
            default_locale,
        }
    }

    fn rendered(
        &self,
        notification: &Notification,
        metadata: &Value,
        locale: Locale,
    ) -> Option<(Title, Body)> {
        let content = self
            .templates
            .as_ref()?
            .render_in_app(&notification.event_type, locale, metadata)
            .inspect_err(|e| tracing::warn!(error = %e, "re-rendering a redacted notification failed; replacing the name instead"))
            .ok()?;
        Some((
            Title::parse(&content.title).ok()?,
            Body::parse(&content.body).ok()?,
        ))
    }
}

impl MentionRedactor for ContextRedactor {
    fn redact(&self, notification: &Notification, erased: &Recipient) -> Redacted {
        let locale = Locale::parse_or(
            notification.metadata.get("locale").and_then(Value::as_str),
            self.default_locale,
        );
        let label = erased_label(locale);
        let metadata = redact_mention(&notification.metadata, &erased.id, label);
        let (title, body) = self
            .rendered(notification, &Value::Object(metadata.clone()), locale)
            .unwrap_or_else(|| {
                let name = erased.name.as_str();
                (
                    Title::parse(&notification.title.as_str().replace(name, label))
                        .or_else(|_| Title::parse(label))
                        .unwrap_or_else(|_| notification.title.clone()),
                    Body::parse(&notification.body.as_str().replace(name, label))
                        .or_else(|_| Body::parse(label))
                        .unwrap_or_else(|_| notification.body.clone()),
                )
            });
        Redacted {
            title,
            body,
            metadata,
        }
    }
}

/// Erase one recipient and everything about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseRecipient {
    /// Whom.
    pub recipient_id: RecipientId,
    /// Who asks, for the audit row: `api-key:{id}`, or `env` for a `CLAIRON_API_KEYS` key.
    pub actor: String,
}

/// Why nothing was erased.
#[derive(Debug, thiserror::Error)]
pub enum EraseRecipientError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// A delivery to them is being sent at this moment; try again once it is recorded.
    #[error("a delivery to recipient {0} is being sent right now; retry in a few seconds")]
    DeliveryInFlight(RecipientId),
    /// The database failed; nothing was erased.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`EraseRecipient`].
pub struct EraseRecipientHandler {
    store: Arc<dyn PersonalDataStore>,
    clock: Arc<dyn Clock>,
    realtime: Option<Arc<dyn RealtimePublisher>>,
    redactor: Arc<dyn MentionRedactor>,
}

impl EraseRecipientHandler {
    /// Builds the handler on its ports; notifications of others that name the erased recipient
    /// are redacted by [`ContextRedactor::without_templates`] unless
    /// [`EraseRecipientHandler::with_redactor`] says otherwise.
    pub fn new(store: Arc<dyn PersonalDataStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            realtime: None,
            redactor: Arc::new(ContextRedactor::without_templates(Locale::default())),
        }
    }

    /// Also publishes [`RealtimeEvent::TokensRevoked`] after each erasure, so the erased
    /// recipient's open live connections close (their tokens are refused from the commit on:
    /// the recipient row, and so its token generation, is gone).
    #[must_use]
    pub fn with_realtime(mut self, realtime: Arc<dyn RealtimePublisher>) -> Self {
        self.realtime = Some(realtime);
        self
    }

    /// The same handler redacting with `redactor` (a [`ContextRedactor::new`] with the
    /// service's templates, in production).
    #[must_use]
    pub fn with_redactor(mut self, redactor: Arc<dyn MentionRedactor>) -> Self {
        self.redactor = redactor;
        self
    }

    /// Erases, whole or not at all.
    ///
    /// # Errors
    /// [`EraseRecipientError`].
    // The recipient id is personal data: it stays out of the span.
    #[tracing::instrument(name = "erase_recipient", skip_all, fields(actor = %command.actor))]
    pub async fn execute(
        &self,
        command: EraseRecipient,
    ) -> Result<ErasedCounts, EraseRecipientError> {
        let audit = ErasureAudit {
            actor: command.actor,
            at: self.clock.now(),
        };
        match self
            .store
            .erase(&command.recipient_id, &audit, self.redactor.clone())
            .await?
        {
            ErasureOutcome::Erased(counts) => {
                tracing::info!(
                    notifications = counts.notifications,
                    deliveries = counts.deliveries,
                    attempts = counts.attempts,
                    redacted = counts.redacted,
                    idempotency_keys = counts.idempotency_keys,
                    "recipient erased"
                );
                if let Some(realtime) = &self.realtime {
                    realtime
                        .publish(RealtimeEvent::TokensRevoked {
                            recipient_id: command.recipient_id,
                        })
                        .await;
                }
                Ok(counts)
            }
            ErasureOutcome::UnknownRecipient => {
                Err(EraseRecipientError::UnknownRecipient(command.recipient_id))
            }
            ErasureOutcome::DeliveryInFlight => {
                Err(EraseRecipientError::DeliveryInFlight(command.recipient_id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use rstest::rstest;

    use super::*;
    use crate::ports::{MockClock, MockPersonalDataStore};

    fn handler(outcome: ErasureOutcome) -> EraseRecipientHandler {
        let now = Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().returning(move || now);
        let mut store = MockPersonalDataStore::new();
        store
            .expect_erase()
            .withf(move |id, audit, _| {
                id.as_str() == "artist-0001" && audit.actor == "api-key:7" && audit.at == now
            })
            .times(1)
            .returning(move |_, _, _| Ok(outcome));
        EraseRecipientHandler::new(Arc::new(store), Arc::new(clock))
    }

    fn command() -> EraseRecipient {
        EraseRecipient {
            recipient_id: RecipientId::parse("artist-0001").unwrap(),
            actor: "api-key:7".into(),
        }
    }

    #[tokio::test]
    async fn an_erasure_is_audited_with_the_actor_and_the_time_and_reports_its_counts() {
        let counts = ErasedCounts {
            notifications: 2,
            deliveries: 6,
            attempts: 4,
            redacted: 1,
            idempotency_keys: 1,
        };
        let erased = handler(ErasureOutcome::Erased(counts))
            .execute(command())
            .await
            .unwrap();
        assert_eq!(erased, counts);
    }

    #[tokio::test]
    async fn an_erasure_tells_the_recipients_open_connections_their_tokens_are_revoked() {
        let mut realtime = crate::ports::MockRealtimePublisher::new();
        realtime
            .expect_publish()
            .withf(|e| {
                matches!(e, RealtimeEvent::TokensRevoked { recipient_id } if recipient_id.as_str() == "artist-0001")
            })
            .times(1)
            .returning(|_| ());
        let handler = handler(ErasureOutcome::Erased(ErasedCounts::default()))
            .with_realtime(Arc::new(realtime));

        let erased = handler.execute(command()).await;

        assert!(erased.is_ok(), "erased: {erased:?}");
    }

    #[tokio::test]
    async fn an_erasure_that_did_not_happen_revokes_nothing() {
        let mut realtime = crate::ports::MockRealtimePublisher::new();
        realtime.expect_publish().never();
        let handler = handler(ErasureOutcome::DeliveryInFlight).with_realtime(Arc::new(realtime));

        let erased = handler.execute(command()).await;

        assert!(erased.is_err(), "nothing erased: {erased:?}");
    }

    #[rstest]
    #[case::unknown(ErasureOutcome::UnknownRecipient, "not found")]
    #[case::in_flight(ErasureOutcome::DeliveryInFlight, "being sent")]
    #[tokio::test]
    async fn an_erasure_that_cannot_happen_says_why(
        #[case] outcome: ErasureOutcome,
        #[case] said: &str,
    ) {
        let error = handler(outcome).execute(command()).await.unwrap_err();
        assert!(error.to_string().contains(said), "{error}");
    }

    fn coordinators_summary(erased_name: &str) -> (Notification, Recipient) {
        let mut erased = crate::test_support::recipient("artist-0001");
        erased.name = clairon_domain::DisplayName::parse(erased_name).unwrap();
        let mut summary = crate::test_support::notification("n-1", "coord-1");
        summary.event_type = clairon_domain::EventType::parse("planning.assigned").unwrap();
        summary.body = Body::parse(&format!(
            "{erased_name} et Liam O'Brien sont affecté·e·s à « Carmen »."
        ))
        .unwrap();
        summary.metadata = serde_json::json!({
            "locale": "fr",
            "audience": "coordinator",
            "artists": [{"id": "artist-0001", "name": erased_name}, {"id": "artist-0002", "name": "Liam O'Brien"}],
        })
        .as_object()
        .unwrap()
        .clone();
        (summary, erased)
    }

    #[test]
    fn a_summary_is_rendered_again_from_its_redacted_context() {
        let (summary, erased) = coordinators_summary("Zoé Tremblay");
        let mut templates = crate::ports::MockTemplateRenderer::new();
        templates
            .expect_render_in_app()
            .withf(|event_type, locale, context| {
                event_type.as_str() == "planning.assigned"
                    && *locale == Locale::Fr
                    && context["artists"][0] == serde_json::json!({"name": "[personne effacée]"})
            })
            .times(1)
            .returning(|_, _, _| {
                Ok(crate::ports::InAppContent {
                    title: "Affectation d’artistes : Carmen".into(),
                    body: "[personne effacée] et Liam O'Brien sont affecté·e·s à « Carmen »."
                        .into(),
                })
            });
        let redactor = ContextRedactor::new(Arc::new(templates), Locale::En);

        let redacted = redactor.redact(&summary, &erased);

        assert_eq!(
            redacted.body.as_str(),
            "[personne effacée] et Liam O'Brien sont affecté·e·s à « Carmen ».",
            "the body is the template's, in the notification's language"
        );
        let kept = Value::Object(redacted.metadata).to_string();
        assert!(
            !kept.contains("Zoé") && !kept.contains("artist-0001") && kept.contains("artist-0002"),
            "the metadata names the others only: {kept}"
        );
    }

    #[test]
    fn without_templates_the_erased_name_is_replaced_in_the_stored_texts() {
        let (summary, erased) = coordinators_summary("Zoé Tremblay");
        let redactor = ContextRedactor::without_templates(Locale::En);

        let redacted = redactor.redact(&summary, &erased);

        assert_eq!(
            redacted.body.as_str(),
            "[personne effacée] et Liam O'Brien sont affecté·e·s à « Carmen ».",
            "the label of the notification's own language replaces the name"
        );
    }
}
