//! `ExportRecipient`: everything Clairon holds about one recipient, as one document (GDPR
//! article 15, right of access, and article 20, portability).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use clairon_domain::{Recipient, RecipientId};
use serde::Serialize;

use crate::ports::{Clock, PersonalDataStore, RepositoryError};
use crate::queries::{ConsentView, NotificationDetailsView};

/// Export one recipient's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRecipient {
    /// Whose.
    pub recipient_id: RecipientId,
}

/// Why the export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportRecipientError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// A recipient's profile, every field as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientProfileView {
    /// The host application's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: Option<String>,
    /// Telegram chat id or `@username`.
    pub telegram_chat_id: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// `fr` or `en`.
    pub locale: Option<&'static str>,
    /// IANA zone name.
    pub timezone: Option<String>,
    /// Why Telegram refused their chat id for good, if it did.
    pub telegram_unreachable: Option<String>,
    /// Their webhook URL, whole (it is theirs); the signing secret is never exported.
    pub webhook_url: Option<String>,
    /// Why their webhook endpoint is disabled, if it answered 410.
    pub webhook_disabled: Option<String>,
    /// Whether they have a Slack webhook URL; the URL is a credential and is never exported.
    pub slack_configured: bool,
    /// Why Slack refused their webhook URL for good, if it did.
    pub slack_unreachable: Option<String>,
}

impl From<Recipient> for RecipientProfileView {
    fn from(r: Recipient) -> Self {
        Self {
            id: r.id.to_string(),
            name: r.name.as_str().to_owned(),
            email: r.email.map(|e| e.as_str().to_owned()),
            telegram_chat_id: r.telegram_chat_id.map(|c| c.as_str().to_owned()),
            phone: r.phone.map(|p| p.as_str().to_owned()),
            locale: r.locale.map(|l| l.as_str()),
            timezone: r.timezone.map(|t| t.name().to_owned()),
            telegram_unreachable: r.telegram_unreachable,
            webhook_url: r.webhook_url.map(|u| u.as_str().to_owned()),
            webhook_disabled: r.webhook_disabled,
            slack_configured: r.slack_webhook_url.is_some(),
            slack_unreachable: r.slack_unreachable,
        }
    }
}

/// The export document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecipientExportView {
    /// When it was made (RFC 3339, UTC).
    pub exported_at: DateTime<Utc>,
    /// The profile.
    pub recipient: RecipientProfileView,
    /// Every notification, oldest first (scheduled, cancelled and read ones included), each
    /// with its deliveries and their `attempt_log`.
    pub notifications: Vec<NotificationDetailsView>,
    /// Their preference document (the defaults when they never set one).
    pub preferences: serde_json::Value,
    /// When they last set it (RFC 3339, UTC); `None` if never.
    pub preferences_updated_at: Option<DateTime<Utc>>,
    /// Their consent history, newest first.
    pub consents: Vec<ConsentView>,
    /// The keys of the topics they are a member of, sorted.
    pub topics: Vec<String>,
    /// The endpoints of their Web Push subscriptions (the browsers they opted in from).
    pub push_subscriptions: Vec<String>,
}

/// Handles [`ExportRecipient`].
pub struct ExportRecipientHandler {
    store: Arc<dyn PersonalDataStore>,
    clock: Arc<dyn Clock>,
}

impl ExportRecipientHandler {
    /// Builds the handler on its ports.
    pub fn new(store: Arc<dyn PersonalDataStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Reads everything about the recipient.
    ///
    /// # Errors
    /// [`ExportRecipientError`].
    #[tracing::instrument(name = "export_recipient", skip_all)]
    pub async fn execute(
        &self,
        query: ExportRecipient,
    ) -> Result<RecipientExportView, ExportRecipientError> {
        let data = self
            .store
            .export(&query.recipient_id)
            .await?
            .ok_or(ExportRecipientError::UnknownRecipient(query.recipient_id))?;
        Ok(RecipientExportView {
            exported_at: self.clock.now(),
            recipient: data.recipient.into(),
            notifications: data.notifications.into_iter().map(Into::into).collect(),
            preferences: data
                .preferences
                .as_ref()
                .map(|p| p.preferences.to_json())
                .unwrap_or_else(|| clairon_domain::Preferences::default().to_json()),
            preferences_updated_at: data.preferences.map(|p| p.updated_at),
            consents: data.consents.into_iter().map(Into::into).collect(),
            topics: data.topics.iter().map(|t| t.as_str().to_owned()).collect(),
            push_subscriptions: data.push_subscriptions,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::ports::{MockClock, MockPersonalDataStore, RecipientData};
    use crate::test_support::recipient;

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .returning(|| Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap());
        Arc::new(clock)
    }

    #[tokio::test]
    async fn an_export_holds_the_profile_as_stored() {
        let mut store = MockPersonalDataStore::new();
        store.expect_export().returning(|_| {
            Ok(Some(RecipientData {
                recipient: recipient("artist-0001"),
                notifications: Vec::new(),
                preferences: None,
                consents: Vec::new(),
                topics: Vec::new(),
                push_subscriptions: Vec::new(),
            }))
        });
        let handler = ExportRecipientHandler::new(Arc::new(store), clock());

        let export = handler
            .execute(ExportRecipient {
                recipient_id: RecipientId::parse("artist-0001").unwrap(),
            })
            .await
            .unwrap();

        assert_eq!(export.recipient.id, "artist-0001");
        assert_eq!(
            export.recipient.email.as_deref(),
            Some("artist-0001@example.org")
        );
        assert_eq!(
            export.recipient.timezone.as_deref(),
            Some("America/Montreal")
        );
        assert_eq!(
            export.preferences,
            serde_json::json!({"channels": {}, "event_types": {}, "quiet_hours": null}),
            "someone who never set preferences exports the defaults"
        );
        assert!(export.consents.is_empty());
    }

    #[tokio::test]
    async fn an_unknown_recipient_has_nothing_to_export() {
        let mut store = MockPersonalDataStore::new();
        store.expect_export().returning(|_| Ok(None));
        let handler = ExportRecipientHandler::new(Arc::new(store), clock());

        let result = handler
            .execute(ExportRecipient {
                recipient_id: RecipientId::parse("ghost").unwrap(),
            })
            .await;

        assert!(matches!(
            result,
            Err(ExportRecipientError::UnknownRecipient(_))
        ));
    }
}
