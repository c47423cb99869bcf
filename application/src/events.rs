//! The in-process event bus, and the listener that turns planning events into notifications.
//!
//! A producer — the HTTP endpoint, or a Rust host application embedding Clairon — publishes a
//! [`DomainEvent`]; every subscribed [`EventListener`] handles it in subscription order and the
//! publisher gets back what they created. Publishing awaits the listeners: when `publish`
//! returns `Ok`, the notifications are in the database.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use clairon_application::events::{DomainEvent, EventBus};
//! # async fn host(bus: Arc<EventBus>, event: clairon_domain::PlanningEvent) {
//! // In a host application, with the bus Clairon's bootstrap built:
//! let created = bus.publish(&DomainEvent::Planning(event)).await.expect("published");
//! println!("{} notifications written", created.len());
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use clairon_domain::rules::planning_notices;
use clairon_domain::{
    Body, Locale, PlanningEvent, PlanningEventKind, Priority, Recipient, RecipientId,
    SourceEventId, Title, ValidationError,
};
use serde_json::Value;

use crate::commands::{
    CreateNotificationError, CreateNotificationHandler, CreatedNotification, NotificationDraft,
};
use crate::ports::{RecipientRepository, RepositoryError, TemplateError, TemplateRenderer};

/// Something that happened, as the bus carries it.
///
/// Planning events arrive as one variant: its `kind` says whether it is `PlanningAssigned`,
/// `PlanningModified`, `PlanningCancelled` or `PlanningReminderDue`.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    /// A planning event from the host application.
    Planning(PlanningEvent),
}

impl DomainEvent {
    /// The event's name, past tense (`PlanningAssigned`, ...), for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Planning(e) => match e.kind {
                PlanningEventKind::Assigned => "PlanningAssigned",
                PlanningEventKind::Modified => "PlanningModified",
                PlanningEventKind::Cancelled => "PlanningCancelled",
                PlanningEventKind::Reminder => "PlanningReminderDue",
            },
        }
    }
}

/// Why publishing failed. The listener that failed wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event names recipients that are not registered (all listed, sorted).
    #[error("unknown recipients: {}", .0.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
    UnknownRecipients(Vec<RecipientId>),
    /// The notifications of this event were already created (a replay racing the original).
    #[error("already processed: {0}")]
    Duplicate(String),
    /// A template failed; it is a deployment error, not the producer's.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A rendered title or body was empty or too long.
    #[error("rendered content is invalid: {0}")]
    Content(#[from] ValidationError),
    /// Too many notifications for one event.
    #[error("{0}")]
    TooMany(String),
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<CreateNotificationError> for PublishError {
    fn from(error: CreateNotificationError) -> Self {
        match error {
            CreateNotificationError::UnknownRecipients(ids) => Self::UnknownRecipients(ids),
            CreateNotificationError::Duplicate(what) => Self::Duplicate(what),
            CreateNotificationError::TooMany { .. } => Self::TooMany(error.to_string()),
            CreateNotificationError::Repository(e) => Self::Repository(e),
        }
    }
}

/// Reacts to domain events.
#[async_trait]
pub trait EventListener: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Handles `event`, returning the notifications it created (empty when the event is not
    /// its business).
    ///
    /// # Errors
    /// [`PublishError`]; the listener MUST have written nothing then.
    async fn handle(&self, event: &DomainEvent) -> Result<Vec<CreatedNotification>, PublishError>;
}

/// The in-process publish/subscribe bus.
#[derive(Default)]
pub struct EventBus {
    listeners: RwLock<Vec<Arc<dyn EventListener>>>,
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a listener; it receives every event published afterwards.
    pub fn subscribe(&self, listener: Arc<dyn EventListener>) {
        self.listeners
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(listener);
    }

    /// Hands `event` to every listener in subscription order and returns what they created.
    ///
    /// # Errors
    /// The first listener's [`PublishError`]; later listeners are not called then.
    #[tracing::instrument(name = "publish", skip_all, fields(event = event.name()))]
    pub async fn publish(
        &self,
        event: &DomainEvent,
    ) -> Result<Vec<CreatedNotification>, PublishError> {
        let listeners: Vec<Arc<dyn EventListener>> = self
            .listeners
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut created = Vec::new();
        for listener in listeners {
            let mut made = listener.handle(event).await.inspect_err(|e| {
                tracing::warn!(listener = listener.name(), error = %e, "listener refused the event");
            })?;
            created.append(&mut made);
        }
        Ok(created)
    }
}

/// Turns planning events into notifications, following the domain's rules of who is told what.
///
/// It loads every named recipient (refusing the event, with all unknown ids, if some are
/// missing), asks the rules for the notices, renders each notice's in-app title and body in the
/// recipient's language, and creates all notifications in one transaction.
pub struct PlanningListener {
    recipients: Arc<dyn RecipientRepository>,
    templates: Arc<dyn TemplateRenderer>,
    create: Arc<CreateNotificationHandler>,
    default_locale: Locale,
}

impl PlanningListener {
    /// Builds the listener on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        templates: Arc<dyn TemplateRenderer>,
        create: Arc<CreateNotificationHandler>,
        default_locale: Locale,
    ) -> Self {
        Self {
            recipients,
            templates,
            create,
            default_locale,
        }
    }

    fn priority(kind: PlanningEventKind) -> Priority {
        match kind {
            PlanningEventKind::Cancelled | PlanningEventKind::Modified => Priority::High,
            PlanningEventKind::Assigned | PlanningEventKind::Reminder => Priority::Normal,
        }
    }
}

#[async_trait]
impl EventListener for PlanningListener {
    fn name(&self) -> &'static str {
        "PlanningListener"
    }

    async fn handle(&self, event: &DomainEvent) -> Result<Vec<CreatedNotification>, PublishError> {
        let DomainEvent::Planning(event) = event;
        let named = event.named_recipients();
        let directory: HashMap<RecipientId, Recipient> = self
            .recipients
            .get_many(&named)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut unknown: Vec<RecipientId> = named
            .into_iter()
            .filter(|id| !directory.contains_key(id))
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            return Err(PublishError::UnknownRecipients(unknown));
        }
        let source = SourceEventId::parse(event.event_id.as_str())?;
        let mut drafts = Vec::new();
        for notice in planning_notices(event, &directory, self.default_locale) {
            let context = Value::Object(notice.context.clone());
            let content =
                self.templates
                    .render_in_app(&notice.event_type, notice.locale, &context)?;
            drafts.push(NotificationDraft {
                recipient_id: notice.recipient_id,
                kind: notice.kind,
                priority: Self::priority(event.kind),
                title: Title::parse(&content.title)?,
                body: Body::parse(&content.body)?,
                action_url: None,
                action_label: None,
                metadata: notice.context,
                event_type: notice.event_type,
                source_event_id: Some(source.clone()),
                channels: None,
            });
        }
        Ok(self.create.execute_with(&directory, drafts).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::ChannelPolicy;
    use crate::ports::{
        InAppContent, MockDeliveryWaker, MockNotificationRepository, MockRecipientRepository,
        MockTemplateRenderer, NewNotification,
    };
    use crate::test_support::{fixed_clock, recipient, sequential_ids};
    use chrono::{TimeZone as _, Utc};
    use clairon_domain::{
        ChannelSet, Contact, Location, PlanningEventId, PlanningId, PlanningSnapshot, Schedule,
        TimeZone,
    };
    use rstest::rstest;
    use std::sync::Mutex;

    fn event(kind: PlanningEventKind) -> PlanningEvent {
        let changes = match kind {
            PlanningEventKind::Modified => vec![clairon_domain::PlanningChange::Title {
                from: "Carmen".into(),
                to: "Carmen (version concert)".into(),
            }],
            _ => vec![],
        };
        PlanningEvent::new(
            PlanningEventId::parse("evt-1").unwrap(),
            kind,
            Utc.with_ymd_and_hms(2027, 2, 9, 1, 29, 0).unwrap(),
            PlanningSnapshot::new(
                PlanningId::parse("pl-1").unwrap(),
                "Carmen",
                Location::new("Théâtre Outremont", "1248 Av. Bernard O").unwrap(),
                Schedule::new(
                    Utc.with_ymd_and_hms(2027, 3, 17, 0, 15, 0).unwrap(),
                    Utc.with_ymd_and_hms(2027, 3, 17, 2, 15, 0).unwrap(),
                    TimeZone::parse("America/Montreal").unwrap(),
                )
                .unwrap(),
                Contact::new("Samir", None, None).unwrap(),
            )
            .unwrap(),
            vec![RecipientId::parse("artist-1").unwrap()],
            vec![RecipientId::parse("coord-1").unwrap()],
            changes,
        )
        .unwrap()
    }

    /// Given the registered recipients, when `event` is published, then the batch written.
    async fn publish(
        event: PlanningEvent,
        registered: Vec<Recipient>,
    ) -> (
        Result<Vec<CreatedNotification>, PublishError>,
        Vec<NewNotification>,
    ) {
        let mut recipients = MockRecipientRepository::new();
        recipients
            .expect_get_many()
            .returning(move |_| Ok(registered.clone()));
        let recipients = Arc::new(recipients);
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = written.clone();
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_batch().returning(move |batch| {
            sink.lock().unwrap().extend_from_slice(batch);
            Ok(())
        });
        let mut templates = MockTemplateRenderer::new();
        templates
            .expect_render_in_app()
            .returning(|event_type, locale, context| {
                Ok(InAppContent {
                    title: format!(
                        "{}:{}:{}",
                        locale,
                        event_type.as_str(),
                        context["audience"].as_str().unwrap()
                    ),
                    body: context["planning"]["when"].as_str().unwrap().to_owned(),
                })
            });
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().return_const(());
        let create = Arc::new(CreateNotificationHandler::new(
            recipients.clone(),
            Arc::new(notifications),
            Arc::new(sequential_ids()),
            Arc::new(fixed_clock()),
            Arc::new(waker),
            ChannelPolicy {
                enabled: ChannelSet::all(),
                telegram_bot: true,
            },
        ));
        let bus = EventBus::new();
        bus.subscribe(Arc::new(PlanningListener::new(
            recipients,
            Arc::new(templates),
            create,
            Locale::Fr,
        )));
        let result = bus.publish(&DomainEvent::Planning(event)).await;
        let batch = written.lock().unwrap().clone();
        (result, batch)
    }

    fn people(locale: Locale) -> Vec<Recipient> {
        ["artist-1", "coord-1"]
            .into_iter()
            .map(|id| Recipient {
                locale: Some(locale),
                ..recipient(id)
            })
            .collect()
    }

    #[rstest]
    #[case::assigned(PlanningEventKind::Assigned, &["fr:planning.assigned:artist", "fr:planning.assigned:coordinator"])]
    #[case::modified(PlanningEventKind::Modified, &["fr:planning.modified:artist", "fr:planning.modified:coordinator"])]
    #[case::cancelled(PlanningEventKind::Cancelled, &["fr:planning.cancelled:artist", "fr:planning.cancelled:coordinator"])]
    #[case::reminder(PlanningEventKind::Reminder, &["fr:planning.reminder:artist"])]
    #[tokio::test]
    async fn each_planning_event_writes_one_notification_per_person_told(
        #[case] kind: PlanningEventKind,
        #[case] titles: &[&str],
    ) {
        let (result, batch) = publish(event(kind), people(Locale::Fr)).await;
        assert_eq!(result.unwrap().len(), titles.len());
        let got: Vec<&str> = batch
            .iter()
            .map(|n| n.notification.title.as_str())
            .collect();
        assert_eq!(got, titles);
        assert!(batch
            .iter()
            .all(|n| n.notification.source_event_id.as_ref().map(|s| s.as_str()) == Some("evt-1")));
    }

    #[rstest]
    #[case::french(Locale::Fr, "mardi 16 mars 2027, 20 h 15 – 22 h 15")]
    #[case::english(Locale::En, "Tuesday, March 16, 2027, 8:15 PM – 10:15 PM")]
    #[tokio::test]
    async fn the_in_app_text_is_rendered_in_each_recipients_language(
        #[case] locale: Locale,
        #[case] when: &str,
    ) {
        let (result, batch) = publish(event(PlanningEventKind::Assigned), people(locale)).await;
        result.unwrap();
        assert_eq!(batch[0].notification.body.as_str(), when);
        assert_eq!(batch[0].notification.metadata["locale"], locale.as_str());
    }

    #[rstest]
    #[case::in_app(clairon_domain::Channel::InApp)]
    #[case::email(clairon_domain::Channel::Email)]
    #[case::telegram(clairon_domain::Channel::Telegram)]
    #[tokio::test]
    async fn every_reachable_channel_gets_a_pending_delivery(
        #[case] channel: clairon_domain::Channel,
    ) {
        let (_, batch) = publish(event(PlanningEventKind::Assigned), people(Locale::Fr)).await;
        for written in &batch {
            let delivery = written
                .deliveries
                .iter()
                .find(|d| d.channel == channel)
                .unwrap();
            assert_eq!(delivery.status, clairon_domain::DeliveryStatus::Pending);
        }
    }

    #[tokio::test]
    async fn an_event_naming_unregistered_people_is_refused_whole() {
        let only_artist = vec![recipient("artist-1")];
        let (result, batch) = publish(event(PlanningEventKind::Assigned), only_artist).await;
        let Err(PublishError::UnknownRecipients(ids)) = result else {
            panic!("expected UnknownRecipients");
        };
        assert_eq!(ids, vec![RecipientId::parse("coord-1").unwrap()]);
        assert!(batch.is_empty(), "nothing may be written");
    }
}
