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
//!
//! Any other domain event goes the same way as a [`GenericEvent`] (what `POST /api/v1/events`
//! publishes); [`crate::routing::GenericEventListener`] resolves its recipients (listed, its
//! topics' members and its routing rule's) and writes one notification each:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use clairon_application::events::{DomainEvent, EventBus};
//! # use clairon_domain::{Body, GenericEvent, NotificationKind, RecipientId, SourceEventId, Title, TopicKey};
//! # use clairon_domain::routing::parse_event_type;
//! # async fn host(bus: Arc<EventBus>) -> Result<(), Box<dyn std::error::Error>> {
//! let mut data = serde_json::Map::new();
//! data.insert("project".into(), serde_json::json!({"id": "7", "name": "Carmen"}));
//! data.insert("role".into(), serde_json::json!("Soprano"));
//! let event = GenericEvent {
//!     event_id: SourceEventId::parse("ev-42")?,
//!     event_type: parse_event_type("project.role.assigned")?,
//!     occurred_at: chrono::Utc::now(),
//!     recipient_ids: vec![RecipientId::parse("artist-0001")?],
//!     topics: vec![TopicKey::parse("project-7-owners")?],
//!     title: Title::parse("Rôle attribué")?,
//!     body: Body::parse("Vous chantez Soprano dans Carmen.")?,
//!     action_url: None,
//!     action_label: None,
//!     priority: None,
//!     kind: NotificationKind::Info,
//!     channels: None,
//!     fallback: vec![],
//!     data,
//! };
//! let created = bus.publish(&DomainEvent::Generic(event)).await?;
//! println!("{} notifications written", created.len());
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use clairon_domain::reminders::{
    plan_reminder, reminder_key, reminder_key_prefix, ReminderPlan, ReminderTime,
};
use clairon_domain::rules::{planning_notices, planning_priority, PlanningNotice};
use clairon_domain::{
    Body, Channel, GenericEvent, Locale, PlanningEvent, PlanningEventKind, Priority, Recipient,
    RecipientId, SourceEventId, Title, TopicKey, ValidationError,
};
use serde_json::Value;

use crate::commands::{
    AppliedRule, ContentTooLarge, CreateNotificationError, CreateNotificationHandler,
    CreatedNotification, NotificationDraft, ReminderDraft,
};
use crate::ports::{Clock, RecipientRepository, RepositoryError, TemplateError, TemplateRenderer};
use crate::routing::{Routed, Router};
use clairon_domain::routing::effective_priority;

/// Something that happened, as the bus carries it.
///
/// Planning events arrive as one variant: its `kind` says whether it is `PlanningAssigned`,
/// `PlanningModified`, `PlanningCancelled` or `PlanningReminderDue`.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    /// A planning event from the host application.
    Planning(PlanningEvent),
    /// Any other domain event (`project.created`, `job.failed`, …): routed by its type's
    /// routing rule and rendered with its type's templates when there are some.
    Generic(GenericEvent),
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
            Self::Generic(_) => "GenericEvent",
        }
    }
}

/// Why publishing failed. The listener that failed wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event names recipients that are not registered (all listed, sorted).
    #[error("unknown recipients: {}", .0.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
    UnknownRecipients(Vec<RecipientId>),
    /// The event names topics that do not exist (all listed, sorted).
    #[error("unknown topics: {}", .0.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "))]
    UnknownTopics(Vec<TopicKey>),
    /// Neither the event's recipients and topics nor its routing rule's topics reach anyone.
    #[error("the event reaches no recipient: name recipient_ids or topics, or route its type to a topic with members")]
    NoRecipient,
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
    /// The event's notifications would hold more content than one request may write
    /// ([`crate::commands::ContentLimits`]): every notice lists every artist, so it grows as
    /// the square of the artists named.
    #[error(transparent)]
    TooLarge(#[from] ContentTooLarge),
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
            CreateNotificationError::TooLarge(too_large) => Self::TooLarge(too_large),
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
    reminders: Option<(Arc<dyn Clock>, ReminderTime)>,
    router: Option<Arc<Router>>,
    urgent_fallback: Vec<Channel>,
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
            reminders: None,
            router: None,
            urgent_fallback: Vec::new(),
        }
    }

    /// Gives the notices of priority `high` and `critical` the fallback chain `chain`
    /// (`CLAIRON_PLANNING_FALLBACK`, `telegram,sms,email` by default) unless their routing
    /// rule has one: they go out on its first channel that can take them, then each next one
    /// only if the one before gave up, instead of on all of them at once. Empty: no chain.
    #[must_use]
    pub fn with_urgent_fallback(mut self, chain: Vec<Channel>) -> Self {
        self.urgent_fallback = chain;
        self
    }

    /// Makes the listener apply the routing rule of each event's type (`planning.modified`,
    /// …): the members of the rule's topics who are not already told hear of it as
    /// coordinators do (the summary: what, where, when, which artists, what changed), its
    /// channels narrow every notice's channels (`not_in_rule`), and its priority raises the
    /// notices' (the higher of both). Clairon's own J-1 reminders are not routed.
    #[must_use]
    pub fn with_routing(mut self, router: Arc<Router>) -> Self {
        self.router = Some(router);
        self
    }

    /// Makes the listener schedule J-1 reminders itself (`clairon_domain::reminders`): on
    /// `assigned` and `modified`, each artist's reminder is (re)scheduled for the day before the
    /// start at `at` in their zone, read on `clock` (at once when that has passed, none once the
    /// planning has started); artists no longer listed lose theirs; `cancelled` cancels them all.
    /// They are written in the event's transaction, keyed `reminder:{planning}:{recipient}`.
    #[must_use]
    pub fn with_reminders(mut self, clock: Arc<dyn Clock>, at: ReminderTime) -> Self {
        self.reminders = Some((clock, at));
        self
    }

    fn draft(
        &self,
        notice: PlanningNotice,
        priority: Priority,
        source: Option<SourceEventId>,
    ) -> Result<NotificationDraft, PublishError> {
        self.routed_draft(notice, priority, source, None)
    }

    fn routed_draft(
        &self,
        notice: PlanningNotice,
        priority: Priority,
        source: Option<SourceEventId>,
        rule: Option<AppliedRule>,
    ) -> Result<NotificationDraft, PublishError> {
        let context = Value::Object(notice.context.clone());
        let content = self
            .templates
            .render_in_app(&notice.event_type, notice.locale, &context)?;
        Ok(NotificationDraft {
            recipient_id: notice.recipient_id,
            kind: notice.kind,
            priority,
            title: Title::parse(&content.title)?,
            body: Body::parse(&content.body)?,
            action_url: None,
            action_label: None,
            metadata: notice.context,
            event_type: notice.event_type,
            source_event_id: source,
            channels: None,
            fallback: match rule.as_ref().map(|r| r.fallback.clone()) {
                Some(chain) if !chain.is_empty() => chain,
                _ if priority >= Priority::High => self.urgent_fallback.clone(),
                _ => Vec::new(),
            },
            rule,
        })
    }

    /// The reminders an `assigned` or `modified` event calls for, and the keys of every artist
    /// it lists (their reminders are kept).
    fn reminder_drafts(
        &self,
        event: &PlanningEvent,
        directory: &HashMap<RecipientId, Recipient>,
        clock: &dyn Clock,
        at: ReminderTime,
    ) -> Result<(Vec<ReminderDraft>, Vec<String>), PublishError> {
        let now = clock.now();
        let mut as_reminder = event.clone();
        as_reminder.kind = PlanningEventKind::Reminder;
        as_reminder.changes.clear();
        let mut drafts = Vec::new();
        let mut keep = Vec::new();
        for notice in planning_notices(&as_reminder, directory, self.default_locale) {
            let key = reminder_key(&event.planning.id, &notice.recipient_id);
            keep.push(key.clone());
            let zone = directory
                .get(&notice.recipient_id)
                .and_then(|r| r.timezone)
                .unwrap_or(event.planning.schedule.timezone);
            let deliver_at = match plan_reminder(event.planning.schedule.starts_at, zone, at, now) {
                ReminderPlan::At(when) => Some(when),
                ReminderPlan::Now => None,
                ReminderPlan::None => continue,
            };
            drafts.push(ReminderDraft {
                key,
                draft: self.draft(notice, Priority::Normal, None)?,
                deliver_at,
            });
        }
        Ok((drafts, keep))
    }

    /// Refuses, before any notice is built, an event whose notices would be over the fan-out
    /// bound: each one lists every artist, so their list alone, times the notifications to
    /// write (reminders included), is a lower bound of what the event writes.
    fn check_size(
        &self,
        event: &PlanningEvent,
        directory: &HashMap<RecipientId, Recipient>,
    ) -> Result<(), ContentTooLarge> {
        // `{"id":"…","name":"…"},` around each artist's id and name.
        const ENTRY_OVERHEAD: usize = 20;
        let listed: usize = event
            .artist_ids
            .iter()
            .map(|id| {
                id.as_str().len()
                    + directory.get(id).map_or(0, |r| r.name.as_str().len())
                    + ENTRY_OVERHEAD
            })
            .sum();
        let coordinators = event
            .coordinator_ids
            .iter()
            .filter(|id| !event.artist_ids.contains(id))
            .count();
        let reminders = match (&self.reminders, event.kind) {
            (Some(_), PlanningEventKind::Assigned | PlanningEventKind::Modified) => {
                event.artist_ids.len()
            }
            _ => 0,
        };
        let told = event.artist_ids.len() + coordinators + reminders;
        self.create.limits().check_fanout(told, listed)
    }
}

#[async_trait]
impl EventListener for PlanningListener {
    fn name(&self) -> &'static str {
        "PlanningListener"
    }

    async fn handle(&self, event: &DomainEvent) -> Result<Vec<CreatedNotification>, PublishError> {
        let DomainEvent::Planning(event) = event else {
            return Ok(Vec::new());
        };
        let named = event.named_recipients();
        let routed = match &self.router {
            Some(router) => router.route(event.kind.event_type().as_str()).await?,
            None => Routed::default(),
        };
        // The rule's topic members not already told join as coordinators.
        let mut routed_event;
        let event = if routed.members.iter().any(|m| !named.contains(m)) {
            routed_event = event.clone();
            for member in &routed.members {
                if !named.contains(member) {
                    routed_event.coordinator_ids.push(member.clone());
                }
            }
            &routed_event
        } else {
            event
        };
        let mut fetched = named.clone();
        fetched.extend(
            routed
                .members
                .iter()
                .filter(|m| !named.contains(m))
                .cloned(),
        );
        let directory: HashMap<RecipientId, Recipient> = self
            .recipients
            .get_many(&fetched)
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
        self.check_size(event, &directory)?;
        let source = SourceEventId::parse(event.event_id.as_str())?;
        let mut drafts = Vec::new();
        let rule = routed.rule.as_ref();
        let priority = planning_priority(event).max(effective_priority(None, rule));
        let applied = rule.map(AppliedRule::of);
        for notice in planning_notices(event, &directory, self.default_locale) {
            drafts.push(self.routed_draft(
                notice,
                priority,
                Some(source.clone()),
                applied.clone(),
            )?);
        }
        let Some((clock, at)) = &self.reminders else {
            return Ok(self.create.execute_with(&directory, drafts).await?);
        };
        let (reminders, keep) = match event.kind {
            // The host's own J-1 reminder event changes nothing of Clairon's.
            PlanningEventKind::Reminder => {
                return Ok(self.create.execute_with(&directory, drafts).await?)
            }
            PlanningEventKind::Cancelled => (Vec::new(), Vec::new()),
            PlanningEventKind::Assigned | PlanningEventKind::Modified => {
                self.reminder_drafts(event, &directory, clock.as_ref(), *at)?
            }
        };
        Ok(self
            .create
            .execute_with_reminders(
                &directory,
                drafts,
                reminders,
                reminder_key_prefix(&event.planning.id),
                keep,
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::ChannelPolicy;
    use crate::ports::{
        InAppContent, MockDeliveryWaker, MockNotificationRepository, MockRecipientRepository,
        MockTemplateRenderer, NewNotification, ReminderChanges,
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
        let (result, batch, _) = publish_at(event, registered, None).await;
        (result, batch)
    }

    /// As `publish`, with Clairon's reminders on when `now` is given (the clock reads `now`, and
    /// reminders go out at 18:00 local time): also the reminder changes written.
    async fn publish_at(
        event: PlanningEvent,
        registered: Vec<Recipient>,
        now: Option<chrono::DateTime<Utc>>,
    ) -> (
        Result<Vec<CreatedNotification>, PublishError>,
        Vec<NewNotification>,
        Option<ReminderChanges>,
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
        let sink = written.clone();
        let changes = Arc::new(Mutex::new(None));
        let changes_sink = changes.clone();
        notifications
            .expect_insert_with_reminders()
            .returning(move |batch, reminders| {
                sink.lock().unwrap().extend_from_slice(batch);
                *changes_sink.lock().unwrap() = Some(reminders.clone());
                Ok(reminders
                    .schedule
                    .iter()
                    .map(|r| r.notification.notification.id.clone())
                    .collect())
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
                enabled: ChannelSet::parse_list("in_app,email,telegram").unwrap(),
                providers: ChannelSet::all(),
            },
        ));
        let bus = EventBus::new();
        let mut listener =
            PlanningListener::new(recipients, Arc::new(templates), create, Locale::Fr);
        if let Some(now) = now {
            let mut clock = crate::ports::MockClock::new();
            clock.expect_now().return_const(now);
            listener = listener.with_reminders(Arc::new(clock), ReminderTime::default());
        }
        bus.subscribe(Arc::new(listener));
        let result = bus.publish(&DomainEvent::Planning(event)).await;
        let batch = written.lock().unwrap().clone();
        let changes = changes.lock().unwrap().clone();
        (result, batch, changes)
    }

    fn utc(raw: &str) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn keys(changes: &ReminderChanges) -> Vec<(&str, Option<chrono::DateTime<Utc>>)> {
        changes
            .schedule
            .iter()
            .map(|r| (r.key.as_str(), r.notification.deliver_at))
            .collect()
    }

    // The planning of `event` starts 2027-03-16 20:15 in Montréal (2027-03-17 00:15 UTC); its
    // artist lives in Montréal too, so their reminder is 2027-03-15 18:00 EDT = 22:00 UTC.
    #[rstest]
    #[case::assigned(PlanningEventKind::Assigned)]
    #[case::modified(PlanningEventKind::Modified)]
    #[tokio::test]
    async fn an_assignment_or_a_change_schedules_each_artists_reminder_for_the_day_before(
        #[case] kind: PlanningEventKind,
    ) {
        let (result, batch, changes) = publish_at(
            event(kind),
            people(Locale::Fr),
            Some(utc("2027-02-09T01:29:00Z")),
        )
        .await;
        assert_eq!(
            result.unwrap().len(),
            2,
            "the event's own notifications only"
        );
        assert_eq!(batch.len(), 2);
        let changes = changes.expect("reminders written with the event");
        assert_eq!(changes.prefix, "reminder:pl-1:");
        assert_eq!(
            keys(&changes),
            vec![("reminder:pl-1:artist-1", Some(utc("2027-03-15T22:00:00Z")))],
            "artists only, at 18:00 local time the day before"
        );
        assert_eq!(changes.keep, vec!["reminder:pl-1:artist-1".to_owned()]);
        let reminder = &changes.schedule[0].notification.notification;
        assert_eq!(reminder.event_type.as_str(), "planning.reminder");
        assert_eq!(reminder.title.as_str(), "fr:planning.reminder:artist");
        assert_eq!(
            reminder.source_event_id, None,
            "keyed by planning and artist, not event"
        );
    }

    #[rstest]
    #[case::reminder_time_passed("2027-03-16T12:00:00Z", &[("reminder:pl-1:artist-1", None)])]
    #[case::planning_started("2027-03-17T00:15:00Z", &[])]
    #[tokio::test]
    async fn a_late_assignment_is_reminded_at_once_unless_the_planning_has_started(
        #[case] now: &str,
        #[case] expected: &[(&str, Option<chrono::DateTime<Utc>>)],
    ) {
        let (_, _, changes) = publish_at(
            event(PlanningEventKind::Assigned),
            people(Locale::Fr),
            Some(utc(now)),
        )
        .await;
        let changes = changes.unwrap();
        assert_eq!(keys(&changes), expected);
        assert_eq!(
            changes.keep,
            vec!["reminder:pl-1:artist-1".to_owned()],
            "a listed artist keeps a reminder already made"
        );
    }

    #[tokio::test]
    async fn the_artists_own_time_zone_sets_the_reminder_time() {
        let mut registered = people(Locale::Fr);
        registered[0].timezone = Some(TimeZone::parse("Europe/Paris").unwrap());
        let (_, _, changes) = publish_at(
            event(PlanningEventKind::Assigned),
            registered,
            Some(utc("2027-02-09T01:29:00Z")),
        )
        .await;
        // The start is 2027-03-17 01:15 in Paris: the day before is the 16th, 18:00 CET.
        assert_eq!(
            keys(&changes.unwrap()),
            vec![("reminder:pl-1:artist-1", Some(utc("2027-03-16T17:00:00Z")))]
        );
    }

    #[tokio::test]
    async fn a_cancellation_cancels_every_pending_reminder_of_the_planning() {
        let (result, batch, changes) = publish_at(
            event(PlanningEventKind::Cancelled),
            people(Locale::Fr),
            Some(utc("2027-02-09T01:29:00Z")),
        )
        .await;
        assert_eq!(
            result.unwrap().len(),
            2,
            "everyone is told of the cancellation"
        );
        assert_eq!(batch.len(), 2);
        let changes = changes.unwrap();
        assert!(changes.schedule.is_empty(), "no reminder is made");
        assert!(changes.keep.is_empty(), "none is kept");
        assert_eq!(changes.prefix, "reminder:pl-1:");
    }

    #[tokio::test]
    async fn an_artist_left_out_of_a_later_event_loses_their_reminder() {
        let mut later = event(PlanningEventKind::Modified);
        later.artist_ids = vec![RecipientId::parse("artist-2").unwrap()];
        let mut registered = people(Locale::Fr);
        registered.push(recipient("artist-2"));
        let (_, _, changes) =
            publish_at(later, registered, Some(utc("2027-02-09T01:29:00Z"))).await;
        let changes = changes.unwrap();
        assert_eq!(
            changes.keep,
            vec!["reminder:pl-1:artist-2".to_owned()],
            "artist-1's key is not kept: their pending reminder is cancelled"
        );
    }

    #[tokio::test]
    async fn the_hosts_own_reminder_event_leaves_clairons_reminders_alone() {
        let (result, batch, changes) = publish_at(
            event(PlanningEventKind::Reminder),
            people(Locale::Fr),
            Some(utc("2027-02-09T01:29:00Z")),
        )
        .await;
        assert_eq!(result.unwrap().len(), 1);
        assert_eq!(batch.len(), 1);
        assert!(changes.is_none());
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
    async fn an_event_whose_notices_would_list_too_many_artists_is_refused_before_rendering() {
        // 1,000 artists with 200-character names: each of the 1,000 notices (and as many
        // reminders) would list them all, some 460 MB in all.
        let artists: Vec<Recipient> = (1..=1_000)
            .map(|i| {
                let mut r = recipient(&format!("artist-{i}"));
                r.name = clairon_domain::DisplayName::parse(&"N".repeat(200)).unwrap();
                r
            })
            .collect();
        let mut assigned = event(PlanningEventKind::Assigned);
        assigned.artist_ids = artists.iter().map(|r| r.id.clone()).collect();
        let mut recipients = MockRecipientRepository::new();
        recipients.expect_get_many().returning(move |_| {
            Ok(artists
                .iter()
                .cloned()
                .chain([recipient("coord-1")])
                .collect())
        });
        let recipients = Arc::new(recipients);
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_batch().never();
        notifications.expect_insert_with_reminders().never();
        let mut templates = MockTemplateRenderer::new();
        templates.expect_render_in_app().never();
        let create = Arc::new(CreateNotificationHandler::new(
            recipients.clone(),
            Arc::new(notifications),
            Arc::new(sequential_ids()),
            Arc::new(fixed_clock()),
            Arc::new(MockDeliveryWaker::new()),
            ChannelPolicy {
                enabled: ChannelSet::parse_list("in_app,email,telegram").unwrap(),
                providers: ChannelSet::all(),
            },
        ));
        let listener = PlanningListener::new(recipients, Arc::new(templates), create, Locale::Fr);

        let result = listener.handle(&DomainEvent::Planning(assigned)).await;

        assert!(
            matches!(
                result,
                Err(PublishError::TooLarge(ContentTooLarge::Fanout { .. }))
            ),
            "refused as too large, nothing rendered nor written: {result:?}"
        );
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
