//! Routing: the rule of an event type applied to an event, and the listener that turns any
//! domain event ([`GenericEvent`]) into notifications.
//!
//! For one event: the routing rules in force (the newest stored version, or
//! [`RoutingRules::default_set`]) give the most specific rule of its type; the recipients are
//! those the event lists, the members of the topics it names and the members of the rule's
//! topics, each once; the rule's channels narrow each notification's (`not_in_rule` skips)
//! and the priority is the higher of the event's and the rule's.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use clairon_domain::{
    Body, GenericEvent, Locale, Recipient, RecipientId, RoutingRule, RoutingRules, Title,
};
use serde_json::{json, Value};

use crate::commands::{
    AppliedRule, CreateNotificationHandler, CreatedNotification, NotificationDraft,
};
use crate::events::{DomainEvent, EventListener, PublishError};
use crate::ports::{
    RecipientRepository, RepositoryError, RoutingRulesRepository, RulesVersion, TemplateRenderer,
    TopicRepository,
};

/// The routing rules in force: the newest stored version, else the built-in default set
/// (version 0).
///
/// # Errors
/// [`RepositoryError`] when the rules cannot be read.
pub async fn rules_in_force(
    rules: &dyn RoutingRulesRepository,
) -> Result<RulesVersion, RepositoryError> {
    Ok(rules.current().await?.unwrap_or_else(|| RulesVersion {
        version: 0,
        rules: RoutingRules::default_set(),
        created_at: None,
    }))
}

/// What the routing rules say of one event type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routed {
    /// The most specific rule of the type, if any.
    pub rule: Option<RoutingRule>,
    /// The members of the rule's topics, sorted, each once (topics that do not exist add
    /// nobody).
    pub members: Vec<RecipientId>,
}

/// Applies the routing rules in force to event types.
pub struct Router {
    rules: Arc<dyn RoutingRulesRepository>,
    topics: Arc<dyn TopicRepository>,
}

impl Router {
    /// A router reading `rules` and `topics`.
    pub fn new(rules: Arc<dyn RoutingRulesRepository>, topics: Arc<dyn TopicRepository>) -> Self {
        Self { rules, topics }
    }

    /// The topics repository (the listener resolves the event's own topics through it).
    pub fn topics(&self) -> &dyn TopicRepository {
        self.topics.as_ref()
    }

    /// The rule of `event_type` and its topics' members.
    ///
    /// # Errors
    /// [`RepositoryError`] when the rules or topics cannot be read.
    pub async fn route(&self, event_type: &str) -> Result<Routed, RepositoryError> {
        let in_force = rules_in_force(self.rules.as_ref()).await?;
        let Some(rule) = in_force.rules.for_event(event_type).cloned() else {
            return Ok(Routed::default());
        };
        let members = if rule.topics.is_empty() {
            Vec::new()
        } else {
            self.topics.members_of(&rule.topics).await?.0
        };
        Ok(Routed {
            rule: Some(rule),
            members,
        })
    }
}

/// Turns [`DomainEvent::Generic`] events into notifications: one per recipient reached, in
/// their language, with the content of the type's templates when it has some (the in-app
/// title and body are rendered now; email and Telegram at dispatch), else the event's title
/// and body. The notification's metadata is `{locale, event: {id, type, occurred_at}, data}`,
/// which the templates read.
pub struct GenericEventListener {
    recipients: Arc<dyn RecipientRepository>,
    templates: Arc<dyn TemplateRenderer>,
    create: Arc<CreateNotificationHandler>,
    router: Arc<Router>,
    default_locale: Locale,
}

impl GenericEventListener {
    /// Builds the listener on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        templates: Arc<dyn TemplateRenderer>,
        create: Arc<CreateNotificationHandler>,
        router: Arc<Router>,
        default_locale: Locale,
    ) -> Self {
        Self {
            recipients,
            templates,
            create,
            router,
            default_locale,
        }
    }

    fn draft(
        &self,
        event: &GenericEvent,
        recipient: &Recipient,
        rule: Option<&RoutingRule>,
    ) -> Result<NotificationDraft, PublishError> {
        let locale = recipient.locale_or(self.default_locale);
        let mut metadata = serde_json::Map::new();
        metadata.insert("locale".into(), json!(locale.as_str()));
        metadata.insert(
            "event".into(),
            json!({
                "id": event.event_id.as_str(),
                "type": event.event_type.as_str(),
                "occurred_at": event.occurred_at.to_rfc3339(),
            }),
        );
        metadata.insert("data".into(), Value::Object(event.data.clone()));
        let mut context = metadata.clone();
        context.insert(
            "notification".into(),
            json!({
                "kind": event.kind.as_str(),
                "title": event.title.as_str(),
                "body": event.body.as_str(),
                "action_url": event.action_url.as_ref().map(|u| u.as_str()),
                "action_label": event.action_label.as_ref().map(|l| l.as_str()),
                "event_type": event.event_type.as_str(),
            }),
        );
        context.insert(
            "recipient".into(),
            json!({ "id": recipient.id.as_str(), "name": recipient.name.as_str() }),
        );
        let content =
            self.templates
                .render_in_app(&event.event_type, locale, &Value::Object(context))?;
        Ok(NotificationDraft {
            recipient_id: recipient.id.clone(),
            kind: event.kind,
            priority: event.priority_under(rule),
            title: Title::parse(&content.title)?,
            body: Body::parse(&content.body)?,
            action_url: event.action_url.clone(),
            action_label: event.action_label.clone(),
            metadata,
            event_type: event.event_type.clone(),
            source_event_id: Some(event.event_id.clone()),
            channels: event.channels,
            fallback: event.fallback_under(rule),
            rule: rule.map(AppliedRule::of),
        })
    }
}

#[async_trait]
impl EventListener for GenericEventListener {
    fn name(&self) -> &'static str {
        "GenericEventListener"
    }

    async fn handle(&self, event: &DomainEvent) -> Result<Vec<CreatedNotification>, PublishError> {
        let DomainEvent::Generic(event) = event else {
            return Ok(Vec::new());
        };
        let routed = self.router.route(event.event_type.as_str()).await?;
        let (from_topics, unknown_topics) = if event.topics.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            self.router.topics().members_of(&event.topics).await?
        };
        if !unknown_topics.is_empty() {
            return Err(PublishError::UnknownTopics(unknown_topics));
        }
        let mut seen = std::collections::HashSet::new();
        let reached: Vec<RecipientId> = event
            .recipient_ids
            .iter()
            .chain(&from_topics)
            .chain(&routed.members)
            .filter(|id| seen.insert(*id))
            .cloned()
            .collect();
        if reached.is_empty() {
            return Err(PublishError::NoRecipient);
        }
        let directory: HashMap<RecipientId, Recipient> = self
            .recipients
            .get_many(&reached)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut unknown: Vec<RecipientId> = event
            .recipient_ids
            .iter()
            .filter(|id| !directory.contains_key(*id))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            unknown.dedup();
            return Err(PublishError::UnknownRecipients(unknown));
        }
        // A topic member erased since the topic was read is left out.
        let mut drafts = Vec::with_capacity(reached.len());
        for id in &reached {
            if let Some(recipient) = directory.get(id) {
                drafts.push(self.draft(event, recipient, routed.rule.as_ref())?);
            }
        }
        if drafts.is_empty() {
            return Err(PublishError::NoRecipient);
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
        MockRoutingRulesRepository, MockTemplateRenderer, MockTopicRepository, NewNotification,
    };
    use crate::test_support::{fixed_clock, recipient, sequential_ids};
    use chrono::{TimeZone as _, Utc};
    use clairon_domain::{
        ChannelSet, NotificationKind, Priority, RawRule, SourceEventId, TopicKey,
    };
    use std::sync::Mutex;

    fn ids(raw: &[&str]) -> Vec<RecipientId> {
        raw.iter().map(|r| RecipientId::parse(r).unwrap()).collect()
    }

    fn event(recipients: &[&str], topics: &[&str]) -> GenericEvent {
        GenericEvent {
            event_id: SourceEventId::parse("ev-1").unwrap(),
            event_type: clairon_domain::routing::parse_event_type("sync.failed").unwrap(),
            occurred_at: Utc.with_ymd_and_hms(2027, 3, 1, 10, 0, 0).unwrap(),
            recipient_ids: ids(recipients),
            topics: topics.iter().map(|t| TopicKey::parse(t).unwrap()).collect(),
            title: Title::parse("Sync failed").unwrap(),
            body: Body::parse("The server did not answer.").unwrap(),
            action_url: None,
            action_label: None,
            priority: Some(Priority::Low),
            kind: NotificationKind::Error,
            channels: None,
            fallback: Vec::new(),
            data: serde_json::Map::new(),
        }
    }

    /// Publishes `event` under `rules` with topic `admins` = admin-1, admin-2 (and `ops` =
    /// dev-1); returns the outcome and the batch written.
    async fn publish(
        event: GenericEvent,
        rules: Option<Vec<RawRule>>,
    ) -> (
        Result<Vec<CreatedNotification>, PublishError>,
        Vec<NewNotification>,
    ) {
        let mut recipients = MockRecipientRepository::new();
        recipients.expect_get_many().returning(|wanted| {
            Ok(wanted
                .iter()
                .filter(|id| !id.as_str().starts_with("ghost"))
                .map(|id| recipient(id.as_str()))
                .collect())
        });
        let recipients = Arc::new(recipients);
        let mut topics = MockTopicRepository::new();
        topics.expect_members_of().returning(|keys| {
            let mut members = Vec::new();
            let mut unknown = Vec::new();
            for key in keys {
                match key.as_str() {
                    "admins" => members.extend(ids(&["admin-1", "admin-2"])),
                    "ops" => members.extend(ids(&["dev-1"])),
                    _ => unknown.push(key.clone()),
                }
            }
            members.sort();
            members.dedup();
            Ok((members, unknown))
        });
        let mut store = MockRoutingRulesRepository::new();
        store.expect_current().returning(move || {
            Ok(rules.clone().map(|raw| RulesVersion {
                version: 1,
                rules: RoutingRules::from_raw(&raw).unwrap(),
                created_at: None,
            }))
        });
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = written.clone();
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_batch().returning(move |batch| {
            sink.lock().unwrap().extend_from_slice(batch);
            Ok(())
        });
        let mut templates = MockTemplateRenderer::new();
        templates.expect_render_in_app().returning(|_, _, context| {
            Ok(InAppContent {
                title: context["notification"]["title"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                body: context["notification"]["body"].as_str().unwrap().to_owned(),
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
        let listener = GenericEventListener::new(
            recipients,
            Arc::new(templates),
            create,
            Arc::new(Router::new(Arc::new(store), Arc::new(topics))),
            Locale::Fr,
        );
        let result = listener.handle(&DomainEvent::Generic(event)).await;
        let batch = written.lock().unwrap().clone();
        (result, batch)
    }

    fn rule(
        event: &str,
        topics: &[&str],
        channels: Option<&[&str]>,
        priority: Option<&str>,
    ) -> RawRule {
        RawRule {
            event: event.into(),
            topics: Some(topics.iter().map(|t| (*t).to_owned()).collect()),
            channels: channels.map(|c| c.iter().map(|c| (*c).to_owned()).collect()),
            priority: priority.map(str::to_owned),
            fallback: None,
        }
    }

    #[tokio::test]
    async fn the_rules_topic_members_the_events_topics_and_its_recipients_are_told_once_each() {
        let (result, batch) = publish(
            event(&["dev-1", "admin-1"], &["ops"]),
            Some(vec![rule("sync.*", &["admins"], None, None)]),
        )
        .await;
        let created = result.unwrap();
        let told: Vec<&str> = created.iter().map(|c| c.recipient_id.as_str()).collect();
        assert_eq!(told, vec!["dev-1", "admin-1", "admin-2"]);
        assert_eq!(batch.len(), 3);
    }

    #[tokio::test]
    async fn the_channels_a_rule_leaves_out_are_skipped_naming_its_pattern() {
        let (result, _) = publish(
            event(&["dev-1"], &[]),
            Some(vec![
                rule("sync.*", &[], Some(&["in_app"]), None),
                rule("sync.failed", &[], Some(&["in_app", "email"]), Some("high")),
            ]),
        )
        .await;
        let created = result.unwrap();
        let plan: Vec<(&str, Option<&str>)> = created[0]
            .deliveries
            .iter()
            .map(|d| (d.channel.as_str(), d.reason.as_deref()))
            .collect();
        assert_eq!(
            plan,
            vec![
                ("in_app", None),
                ("email", None),
                ("telegram", Some("not_in_rule: sync.failed"))
            ]
        );
    }

    #[tokio::test]
    async fn the_rule_raises_the_priority_and_never_lowers_it() {
        let (_, batch) = publish(
            event(&["dev-1"], &[]),
            Some(vec![rule("sync.failed", &[], None, Some("high"))]),
        )
        .await;
        assert_eq!(batch[0].notification.priority, Priority::High);
    }

    #[tokio::test]
    async fn unknown_topics_and_an_event_reaching_nobody_are_refused_before_anything_is_written() {
        let (result, batch) = publish(event(&[], &["nobody"]), None).await;
        assert!(
            matches!(result, Err(PublishError::UnknownTopics(ref t)) if t[0].as_str() == "nobody"),
            "{result:?}"
        );
        assert!(batch.is_empty());
        let (result, batch) = publish(event(&[], &[]), None).await;
        assert!(
            matches!(result, Err(PublishError::NoRecipient)),
            "{result:?}"
        );
        assert!(batch.is_empty());
        let (result, _) = publish(event(&["ghost-1", "dev-1"], &[]), None).await;
        assert!(
            matches!(result, Err(PublishError::UnknownRecipients(ref u)) if u[0].as_str() == "ghost-1"),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn failed_jobs_go_to_the_admins_by_the_default_set() {
        let mut job = event(&[], &[]);
        job.event_type = clairon_domain::routing::parse_event_type("job.failed").unwrap();
        let (result, batch) = publish(job, None).await;
        let told: Vec<&str> = result
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.recipient_id.as_str())
            .collect();
        assert_eq!(told, vec!["admin-1", "admin-2"]);
        assert_eq!(batch[0].notification.priority, Priority::High);
        assert_eq!(
            batch[0].notification.metadata["event"]["type"],
            "job.failed"
        );
    }
}
