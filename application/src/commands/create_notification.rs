//! `CreateNotification`: write notifications and their deliveries — the outbox — in one
//! transaction, before any channel is tried.
//!
//! Which channels a notification goes out on: the channels switched on for the service
//! (`CLAIRON_CHANNELS`), narrowed to those the producer asked for. Each becomes one delivery:
//! `pending` when it may go out, `skipped` with the reason otherwise. A skip is not a failure:
//! it says why nothing was sent. For one channel of one recipient the checks run in the order
//! of the shared contract of issue 11, the first that applies naming the skip
//! (`clairon_domain::SkipReason`): `unreachable: …` (no address, no bot), `no_consent: <channel>`
//! (the channel is in `CLAIRON_CONSENT_REQUIRED` and its latest consent record is not a grant),
//! `opted_out: <entry>` (the recipient's preferences, `Preferences::decide`; `critical`
//! overrides them). A delivery falling due inside the recipient's quiet hours (their zone, UTC
//! when they have none) is `pending` with its due time at their end; in-app never waits.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use clairon_domain::recipient::Unreachable;
use clairon_domain::{
    ActionLabel, ActionUrl, Body, Channel, ChannelName, ChannelSet, ConsentRequired, ConsentState,
    Delivery, DeliveryStatus, EventPattern, EventType, Metadata, Notification, NotificationId,
    NotificationKind, PreferenceVerdict, Preferences, Priority, Recipient, RecipientId,
    RoutingRule, SkipReason, SourceEventId, TimeZone, Title,
};

use crate::ports::{
    Clock, ConsentRepository, DeliveryWaker, IdGenerator, NewNotification, NewReminder,
    NotificationRepository, PreferenceRepository, PushSubscriptions, RecipientRepository,
    ReminderChanges, RepositoryError,
};
use crate::ports::{CoalesceChanges, CoalesceEntry, CoalesceOutcome, CoalescingRepository};

/// Service-wide channel settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPolicy {
    /// Channels switched on (`CLAIRON_CHANNELS`); others get no delivery at all.
    pub enabled: ChannelSet,
    /// The channels whose provider is configured (a Telegram bot token, a Twilio account, ...);
    /// a channel outside it is skipped as unreachable. `in_app` and `email` are always in it.
    pub providers: ChannelSet,
}

impl ChannelPolicy {
    /// The delivery plan of one recipient: each channel that is on and wanted, with
    /// `Ok(())` when it can reach them or the reason it cannot.
    pub fn plan(
        &self,
        recipient: &Recipient,
        wanted: Option<ChannelSet>,
    ) -> Vec<(Channel, Result<(), Unreachable>)> {
        let channels = wanted.map_or(self.enabled, |w| self.enabled.intersect(w));
        channels
            .iter()
            .map(|c| (c, recipient.reachability(c, self.providers)))
            .collect()
    }
}

/// How much content one request may write: each notification's producer `metadata`, and all
/// the content of every notification it creates together. Without the second bound, a request
/// within the body limit (256 KiB) copied into each of 10,000 notifications writes gigabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentLimits {
    /// Largest `metadata` of one notification, in bytes of compact JSON
    /// (`CLAIRON_MAX_METADATA_BYTES`, 16 KiB by default).
    pub max_metadata_bytes: usize,
    /// Largest sum, over every notification one request creates (J-1 reminders included), of
    /// its title, body, action URL and label and metadata, in bytes (UTF-8 and compact JSON)
    /// (`CLAIRON_MAX_FANOUT_BYTES`, 8 MiB by default).
    pub max_fanout_bytes: usize,
}

impl ContentLimits {
    /// Default of [`ContentLimits::max_metadata_bytes`]: 16 KiB.
    pub const DEFAULT_METADATA_BYTES: usize = 16 * 1024;
    /// Default of [`ContentLimits::max_fanout_bytes`]: 8 MiB.
    pub const DEFAULT_FANOUT_BYTES: usize = 8 * 1024 * 1024;

    /// Checks one notification's producer metadata; returns its size in bytes.
    ///
    /// # Errors
    /// [`ContentTooLarge::Metadata`] when it is over [`ContentLimits::max_metadata_bytes`].
    pub fn check_metadata(&self, metadata: &Metadata) -> Result<usize, ContentTooLarge> {
        let bytes = json_len(metadata);
        if bytes > self.max_metadata_bytes {
            return Err(ContentTooLarge::Metadata {
                bytes,
                max: self.max_metadata_bytes,
            });
        }
        Ok(bytes)
    }

    /// Checks that `notifications` notifications of `each` content bytes fit in one request.
    ///
    /// # Errors
    /// [`ContentTooLarge::Fanout`] when their product is over
    /// [`ContentLimits::max_fanout_bytes`].
    pub fn check_fanout(&self, notifications: usize, each: usize) -> Result<(), ContentTooLarge> {
        let bytes = notifications.saturating_mul(each);
        if bytes > self.max_fanout_bytes {
            return Err(ContentTooLarge::Fanout {
                notifications,
                bytes,
                max: self.max_fanout_bytes,
            });
        }
        Ok(())
    }

    /// Checks every draft's metadata, and their content together. Stops measuring once over
    /// the fan-out bound, so refusing costs at most the bound plus one draft.
    ///
    /// # Errors
    /// The first [`ContentTooLarge`] found.
    pub fn check_drafts<'a>(
        &self,
        drafts: impl IntoIterator<Item = &'a NotificationDraft>,
    ) -> Result<(), ContentTooLarge> {
        let (mut notifications, mut total) = (0usize, 0usize);
        for draft in drafts {
            let metadata = if draft.event_type.is_planning() {
                // Clairon's own template context: bounded by the fan-out bound only, which is
                // what grows with the event.
                json_len(&draft.metadata)
            } else {
                self.check_metadata(&draft.metadata)?
            };
            notifications += 1;
            total = total.saturating_add(draft.content_bytes_besides_metadata() + metadata);
            if total > self.max_fanout_bytes {
                return Err(ContentTooLarge::Fanout {
                    notifications,
                    bytes: total,
                    max: self.max_fanout_bytes,
                });
            }
        }
        Ok(())
    }
}

impl Default for ContentLimits {
    fn default() -> Self {
        Self {
            max_metadata_bytes: Self::DEFAULT_METADATA_BYTES,
            max_fanout_bytes: Self::DEFAULT_FANOUT_BYTES,
        }
    }
}

/// A request over a [`ContentLimits`] bound; nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContentTooLarge {
    /// One notification's `metadata` is over [`ContentLimits::max_metadata_bytes`].
    #[error("metadata is {bytes} bytes of JSON; at most {max} are accepted")]
    Metadata {
        /// Its size, compact JSON.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// The request's notifications together are over [`ContentLimits::max_fanout_bytes`].
    #[error(
        "{notifications} notifications would hold {bytes} bytes of content together (title, body, action, metadata); at most {max} per request"
    )]
    Fanout {
        /// Notifications counted until the bound was passed.
        notifications: usize,
        /// Their content, in bytes.
        bytes: usize,
        /// The bound.
        max: usize,
    },
}

/// The length of `metadata` as compact JSON, measured without building the string.
pub fn json_len(metadata: &Metadata) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serialising a map of JSON values into a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, metadata);
    counter.0
}

/// One notification to create, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationDraft {
    /// Who it is for.
    pub recipient_id: RecipientId,
    /// How an inbox shows it.
    pub kind: NotificationKind,
    /// Delivery priority.
    pub priority: Priority,
    /// Title.
    pub title: Title,
    /// Body.
    pub body: Body,
    /// Optional call-to-action URL.
    pub action_url: Option<ActionUrl>,
    /// Optional call-to-action label.
    pub action_label: Option<ActionLabel>,
    /// Producer data (for planning notifications: the template context).
    pub metadata: Metadata,
    /// Event type, which selects the templates.
    pub event_type: EventType,
    /// The event it comes from; with the recipient, unique.
    pub source_event_id: Option<SourceEventId>,
    /// Channels asked for; `None` means every channel that is on.
    pub channels: Option<ChannelSet>,
    /// The routing rule that applied to its event (`POST /api/v1/events`, planning events), if
    /// any: the channels it leaves out get a `skipped` delivery `not_in_rule: <pattern>`.
    pub rule: Option<AppliedRule>,
    /// The fallback chain, in order (`fallback` of the request, of the routing rule, or the
    /// planning default): the first channel that can take it is tried at once, each next one
    /// only when the one before gave up (`failed`, `dead`, `skipped` as unreachable). These
    /// channels need not be in [`NotificationDraft::channels`] and are not sent in parallel
    /// with the chain. Empty: no chain.
    pub fallback: Vec<Channel>,
}

/// What a notification keeps of the routing rule of its event type
/// ([`clairon_domain::RoutingRules::for_event`]): its pattern, to name it, and its channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRule {
    /// The rule's event pattern (`sync.*`, `job.failed`).
    pub pattern: EventPattern,
    /// The channels it allows; `None`: every channel.
    pub channels: Option<ChannelSet>,
    /// Its fallback chain (empty: none); used when the event names none.
    pub fallback: Vec<Channel>,
}

impl AppliedRule {
    /// What `rule` asks of a notification's channels.
    pub fn of(rule: &RoutingRule) -> Self {
        Self {
            pattern: rule.event.clone(),
            channels: rule.channels,
            fallback: rule.fallback.clone(),
        }
    }

    /// The skip reason of `channel` under this rule, `not_in_rule: <pattern>`, when the rule
    /// leaves it out (shared contract of issue 11: checked before reachability, consent and
    /// preferences).
    pub fn excludes(&self, channel: Channel) -> Option<SkipReason> {
        match self.channels {
            Some(allowed) if !allowed.contains(channel) => {
                Some(SkipReason::NotInRule(self.pattern.to_string()))
            }
            _ => None,
        }
    }
}

impl NotificationDraft {
    /// Bytes of its title, body, action URL and action label (UTF-8).
    pub fn content_bytes_besides_metadata(&self) -> usize {
        self.title.as_str().len()
            + self.body.as_str().len()
            + self.action_url.as_ref().map_or(0, |u| u.as_str().len())
            + self.action_label.as_ref().map_or(0, |l| l.as_str().len())
    }
}

/// A J-1 reminder to schedule under its cancellation key.
#[derive(Debug, Clone, PartialEq)]
pub struct ReminderDraft {
    /// `reminder:{planning}:{recipient}`.
    pub key: String,
    /// Its content.
    pub draft: NotificationDraft,
    /// When (UTC); `None` or past: at once.
    pub deliver_at: Option<DateTime<Utc>>,
}

/// Creates notifications, all or none.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateNotification {
    /// The notifications.
    pub drafts: Vec<NotificationDraft>,
    /// When to deliver them (UTC): until then they are out of the inbox and the unread count
    /// and their deliveries are not due. `None`, or a time already past: at once.
    pub deliver_at: Option<DateTime<Utc>>,
}

/// A delivery as planned at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPlan {
    /// The channel.
    pub channel: Channel,
    /// `pending` or `skipped`.
    pub status: DeliveryStatus,
    /// Why it was skipped.
    pub reason: Option<String>,
}

/// A notification written to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedNotification {
    /// Its id.
    pub id: NotificationId,
    /// Who it is for.
    pub recipient_id: RecipientId,
    /// One entry per delivery, in channel order.
    pub deliveries: Vec<DeliveryPlan>,
}

impl From<&NewNotification> for CreatedNotification {
    /// What the producer is told about a notification about to be written: its id, recipient
    /// and each delivery's channel, status and skip reason.
    fn from(new: &NewNotification) -> Self {
        Self {
            id: new.notification.id.clone(),
            recipient_id: new.notification.recipient_id.clone(),
            deliveries: new
                .deliveries
                .iter()
                .map(|d| DeliveryPlan {
                    channel: d.channel,
                    status: d.status,
                    reason: d.last_error.clone(),
                })
                .collect(),
        }
    }
}

/// Why notifications were not created; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum CreateNotificationError {
    /// Some recipient ids are not registered (all of them listed, sorted).
    #[error("unknown recipients: {}", .0.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
    UnknownRecipients(Vec<RecipientId>),
    /// A notification for the same source event and recipient already exists.
    #[error("already created: {0}")]
    Duplicate(String),
    /// The command holds more drafts than [`CreateNotificationHandler::MAX_BATCH`].
    #[error("at most {max} notifications per request")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// The content is over a [`ContentLimits`] bound.
    #[error(transparent)]
    TooLarge(ContentTooLarge),
    /// The repository failed.
    #[error(transparent)]
    Repository(RepositoryError),
}

impl From<ContentTooLarge> for CreateNotificationError {
    fn from(error: ContentTooLarge) -> Self {
        Self::TooLarge(error)
    }
}

impl From<RepositoryError> for CreateNotificationError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Conflict(what) => Self::Duplicate(what),
            other => Self::Repository(other),
        }
    }
}

/// Where the recipients' own choices are read from: their preference documents and consents.
#[derive(Clone)]
pub struct ChoiceSources {
    /// Preference documents.
    pub preferences: Arc<dyn PreferenceRepository>,
    /// Consent histories.
    pub consents: Arc<dyn ConsentRepository>,
}

/// The choices of a batch's recipients, loaded once per batch.
#[derive(Debug, Default)]
struct Choices {
    preferences: HashMap<RecipientId, Preferences>,
    consents: HashMap<RecipientId, ConsentState>,
    defaults: Preferences,
    /// Each recipient's push subscription endpoints (absent: none).
    push_endpoints: HashMap<RecipientId, Vec<String>>,
}

impl Choices {
    fn preferences(&self, id: &RecipientId) -> &Preferences {
        self.preferences.get(id).unwrap_or(&self.defaults)
    }

    fn consented(&self, id: &RecipientId, channel: ChannelName) -> bool {
        self.consents.get(id).is_some_and(|s| s.granted(channel))
    }

    fn push_endpoints(&self, id: &RecipientId) -> &[String] {
        self.push_endpoints.get(id).map_or(&[], Vec::as_slice)
    }
}

/// Handles [`CreateNotification`].
pub struct CreateNotificationHandler {
    recipients: Arc<dyn RecipientRepository>,
    notifications: Arc<dyn NotificationRepository>,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
    waker: Arc<dyn DeliveryWaker>,
    policy: ChannelPolicy,
    limits: ContentLimits,
    choices: Option<ChoiceSources>,
    consent_required: ConsentRequired,
    /// Publish at commit (issue 14); `None`: the dispatcher publishes in-app deliveries.
    live: Option<Arc<crate::live::PublishAtCommit>>,
    /// Where the recipients' push subscriptions are read; `None`: nobody has one.
    push: Option<Arc<dyn PushSubscriptions>>,
    /// Coalesced planning changes (issue 13): the window and where they are settled; `None`:
    /// off (`CLAIRON_COALESCE_SECS=0`).
    coalescing: Option<(chrono::TimeDelta, Arc<dyn CoalescingRepository>)>,
}

impl CreateNotificationHandler {
    /// Most notifications one command may create.
    pub const MAX_BATCH: usize = 10_000;

    /// Builds the handler on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        notifications: Arc<dyn NotificationRepository>,
        ids: Arc<dyn IdGenerator>,
        clock: Arc<dyn Clock>,
        waker: Arc<dyn DeliveryWaker>,
        policy: ChannelPolicy,
    ) -> Self {
        Self {
            recipients,
            notifications,
            ids,
            clock,
            waker,
            policy,
            limits: ContentLimits::default(),
            choices: None,
            consent_required: ConsentRequired::default(),
            live: None,
            push: None,
            coalescing: None,
        }
    }

    /// The same handler coalescing planning changes (issue 13, `clairon_domain::coalescing`):
    /// the outbound deliveries (every channel but `in_app`) of a `planning.modified` notice
    /// below `critical` are due `window` after it (quiet hours read then), and a later
    /// modification of the same planning for the same recipient within that time takes them
    /// in, written through `store` in the notifications' transaction; a `planning.cancelled`
    /// notice makes them moot. A zero `window` leaves coalescing off.
    #[must_use]
    pub fn with_coalescing(
        mut self,
        window: std::time::Duration,
        store: Arc<dyn CoalescingRepository>,
    ) -> Self {
        self.coalescing = chrono::TimeDelta::from_std(window)
            .ok()
            .filter(|w| *w > chrono::TimeDelta::zero())
            .map(|w| (w, store));
        self
    }

    /// The same handler giving a recipient one `web_push` delivery per push subscription
    /// `subscriptions` holds for them, addressed to its endpoint; without subscriptions (or
    /// without this), `web_push` is skipped `unreachable: no push subscription`.
    #[must_use]
    pub fn with_push_subscriptions(mut self, subscriptions: Arc<dyn PushSubscriptions>) -> Self {
        self.push = Some(subscriptions);
        self
    }

    /// The same handler applying the recipients' preferences and consents read from
    /// `sources`, with `required` the channels that need a granted consent
    /// (`CLAIRON_CONSENT_REQUIRED`). Without it, no preference applies and a channel that
    /// needs consent never has one.
    #[must_use]
    pub fn with_choices(mut self, sources: ChoiceSources, required: ConsentRequired) -> Self {
        self.choices = Some(sources);
        self.consent_required = required;
        self
    }

    /// The channels that need a granted consent.
    pub fn consent_required(&self) -> &ConsentRequired {
        &self.consent_required
    }

    /// The preferences and consents of every recipient of `drafts`: one query for the
    /// preferences and, when a channel in force needs consent, one for the consents (per 500
    /// recipients), however many notifications.
    async fn load_choices<'a>(
        &self,
        drafts: impl IntoIterator<Item = &'a NotificationDraft>,
    ) -> Result<Choices, RepositoryError> {
        let mut ids: Vec<RecipientId> =
            drafts.into_iter().map(|d| d.recipient_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let push_endpoints = match &self.push {
            Some(push) if !ids.is_empty() && self.policy.enabled.contains(Channel::WebPush) => {
                push.endpoints(&ids).await?
            }
            _ => HashMap::new(),
        };
        let Some(sources) = &self.choices else {
            return Ok(Choices {
                push_endpoints,
                ..Choices::default()
            });
        };
        if ids.is_empty() {
            return Ok(Choices::default());
        }
        let preferences = sources.preferences.get_many(&ids).await?;
        let required: Vec<ChannelName> = self
            .consent_required
            .channels()
            .iter()
            .copied()
            .filter(|name| {
                name.channel()
                    .is_some_and(|c| self.policy.enabled.contains(c))
            })
            .collect();
        let consents = if required.is_empty() {
            HashMap::new()
        } else {
            sources.consents.states(&ids, &required).await?
        };
        Ok(Choices {
            preferences,
            consents,
            defaults: Preferences::default(),
            push_endpoints,
        })
    }

    /// The same handler publishing in-app notifications right after the transaction that
    /// writes them ([`crate::live::PublishAtCommit`]) rather than through the dispatcher.
    #[must_use]
    pub fn with_publish_at_commit(mut self, live: Arc<crate::live::PublishAtCommit>) -> Self {
        self.live = Some(live);
        self
    }

    /// The same handler with other content bounds than [`ContentLimits::default`].
    #[must_use]
    pub fn with_limits(mut self, limits: ContentLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The content bounds in force.
    pub fn limits(&self) -> ContentLimits {
        self.limits
    }

    /// The channel policy in force.
    pub fn policy(&self) -> ChannelPolicy {
        self.policy
    }

    /// Loads the recipients, then writes the notifications and deliveries in one transaction,
    /// then wakes the dispatcher.
    ///
    /// # Errors
    /// [`CreateNotificationError`]; nothing is written then.
    #[tracing::instrument(name = "create_notification", skip_all, fields(count = command.drafts.len()))]
    pub async fn execute(
        &self,
        command: CreateNotification,
    ) -> Result<Vec<CreatedNotification>, CreateNotificationError> {
        if command.drafts.len() > Self::MAX_BATCH {
            return Err(CreateNotificationError::TooMany {
                max: Self::MAX_BATCH,
            });
        }
        self.limits.check_drafts(&command.drafts)?;
        let mut ids: Vec<RecipientId> = command
            .drafts
            .iter()
            .map(|d| d.recipient_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        // The recipients and their choices are read at once (two queries in flight, not one
        // after the other): a request's latency pays for one round trip, not two.
        let (found, choices) = futures_util::future::try_join(
            self.recipients.get_many(&ids),
            self.load_choices(&command.drafts),
        )
        .await?;
        let directory: HashMap<RecipientId, Recipient> =
            found.into_iter().map(|r| (r.id.clone(), r)).collect();
        self.write_chosen(&directory, &choices, command.drafts, command.deliver_at)
            .await
    }

    /// As [`CreateNotificationHandler::execute`], with the recipients already loaded (the
    /// planning listener has them).
    ///
    /// # Errors
    /// [`CreateNotificationError::UnknownRecipients`] when a draft's recipient is not in
    /// `directory`; otherwise as `execute`.
    pub async fn execute_with(
        &self,
        directory: &HashMap<RecipientId, Recipient>,
        drafts: Vec<NotificationDraft>,
    ) -> Result<Vec<CreatedNotification>, CreateNotificationError> {
        self.execute_scheduled(directory, drafts, None).await
    }

    /// As [`CreateNotificationHandler::execute_with`], delivered at `deliver_at` (UTC) rather
    /// than at once when that is in the future (see [`CreateNotification::deliver_at`]).
    ///
    /// # Errors
    /// As [`CreateNotificationHandler::execute_with`]; [`CreateNotificationError::TooLarge`]
    /// when the drafts are over the [`ContentLimits`].
    pub async fn execute_scheduled(
        &self,
        directory: &HashMap<RecipientId, Recipient>,
        drafts: Vec<NotificationDraft>,
        deliver_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<CreatedNotification>, CreateNotificationError> {
        self.limits.check_drafts(&drafts)?;
        let choices = self.load_choices(&drafts).await?;
        self.write_chosen(directory, &choices, drafts, deliver_at)
            .await
    }

    /// Decides each draft's deliveries under `choices` (the recipients' preferences and
    /// consents, [`Self::load_choices`]) and writes them; the rest of
    /// [`CreateNotificationHandler::execute_scheduled`].
    async fn write_chosen(
        &self,
        directory: &HashMap<RecipientId, Recipient>,
        choices: &Choices,
        drafts: Vec<NotificationDraft>,
        deliver_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<CreatedNotification>, CreateNotificationError> {
        let (mut batch, mut created) = self.prepare(directory, choices, drafts, deliver_at)?;
        if let Some((store, entries)) = self.coalesce_entries(&batch) {
            // In-app deliveries then go through the dispatcher, at once all the same.
            let changes = CoalesceChanges {
                entries,
                reminders: None,
                now: self.clock.now(),
            };
            let outcome = store.insert_coalescing(&batch, &changes).await?;
            settle_unneeded(&batch, &mut created, &outcome);
            self.wake_for(&batch);
            return Ok(created);
        }
        // Publish at commit (crate::live): in-app deliveries taken, published, recorded later.
        match &self.live {
            Some(live) => live.write(&mut batch, directory).await?,
            None => self.notifications.insert_batch(&batch).await?,
        }
        self.wake_for(&batch);
        tracing::debug!(count = created.len(), "notifications written to the outbox");
        Ok(created)
    }

    /// As [`CreateNotificationHandler::execute_with`], and (re)schedules or cancels the J-1
    /// reminders of one planning in the same transaction (see
    /// [`crate::ports::ReminderChanges`]): `reminders` are scheduled, pending reminders whose
    /// key starts with `prefix` and is not in `keep` are cancelled. Returns the event's
    /// notifications only; the reminders' ids are logged.
    ///
    /// # Errors
    /// As [`CreateNotificationHandler::execute_with`].
    pub async fn execute_with_reminders(
        &self,
        directory: &HashMap<RecipientId, Recipient>,
        drafts: Vec<NotificationDraft>,
        reminders: Vec<ReminderDraft>,
        prefix: String,
        keep: Vec<String>,
    ) -> Result<Vec<CreatedNotification>, CreateNotificationError> {
        self.limits
            .check_drafts(drafts.iter().chain(reminders.iter().map(|r| &r.draft)))?;
        let choices = self
            .load_choices(drafts.iter().chain(reminders.iter().map(|r| &r.draft)))
            .await?;
        let (batch, mut created) = self.prepare(directory, &choices, drafts, None)?;
        let mut schedule = Vec::with_capacity(reminders.len());
        for reminder in reminders {
            let (mut prepared, _) = self.prepare(
                directory,
                &choices,
                vec![reminder.draft],
                reminder.deliver_at,
            )?;
            if let Some(notification) = prepared.pop() {
                schedule.push(NewReminder {
                    key: reminder.key,
                    notification,
                });
            }
        }
        let changes = ReminderChanges {
            prefix,
            schedule,
            keep,
            now: self.clock.now(),
        };
        let written = match self.coalesce_entries(&batch) {
            Some((store, entries)) => {
                let coalescing = CoalesceChanges {
                    entries,
                    reminders: Some(changes.clone()),
                    now: changes.now,
                };
                let outcome = store.insert_coalescing(&batch, &coalescing).await?;
                settle_unneeded(&batch, &mut created, &outcome);
                outcome.reminders
            }
            None => {
                self.notifications
                    .insert_with_reminders(&batch, &changes)
                    .await?
            }
        };
        self.wake_for(&batch);
        let reminders: Vec<NewNotification> = changes
            .schedule
            .into_iter()
            .map(|r| r.notification)
            .collect();
        self.wake_for(&reminders);
        tracing::debug!(
            count = created.len(),
            reminders = written.len(),
            "notifications and reminders written to the outbox"
        );
        Ok(created)
    }

    /// Wakes the dispatcher when something of `batch` is due now; scheduled deliveries are
    /// picked up by its poll once due.
    fn wake_for(&self, batch: &[NewNotification]) {
        if batch.iter().any(|n| {
            n.deliver_at.is_none()
                && n.deliveries
                    .iter()
                    .any(|d| d.status == DeliveryStatus::Pending)
        }) {
            self.waker.wake();
        }
    }

    /// Checks the recipients and builds the rows of `drafts`, all delivered at `deliver_at`,
    /// each channel decided by [`Self::decide`].
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        directory: &HashMap<RecipientId, Recipient>,
        choices: &Choices,
        drafts: Vec<NotificationDraft>,
        deliver_at: Option<DateTime<Utc>>,
    ) -> Result<(Vec<NewNotification>, Vec<CreatedNotification>), CreateNotificationError> {
        let mut unknown: Vec<RecipientId> = drafts
            .iter()
            .filter(|d| !directory.contains_key(&d.recipient_id))
            .map(|d| d.recipient_id.clone())
            .collect();
        if !unknown.is_empty() {
            unknown.sort();
            unknown.dedup();
            return Err(CreateNotificationError::UnknownRecipients(unknown));
        }
        let now = self.clock.now();
        // A time already past is "at once": stored as such, so nothing waits on it.
        let deliver_at = deliver_at.filter(|at| *at > now);
        let mut batch = Vec::with_capacity(drafts.len());
        let mut created = Vec::with_capacity(drafts.len());
        let due = deliver_at.unwrap_or(now);
        for draft in drafts {
            let recipient = &directory[&draft.recipient_id];
            let id = self.ids.notification_id();
            let mut deliveries = Vec::new();
            let held = self.held_until(&draft, due);
            for (channel, reach) in self.policy.plan(recipient, draft.channels) {
                if draft.fallback.contains(&channel) {
                    continue;
                }
                let at = outbound_due(channel, held, due);
                let decision = hold(
                    self.decide(choices, recipient, &draft, channel, reach, at),
                    channel,
                    held,
                );
                // Web Push: one delivery per subscription, addressed to its endpoint (`decide`
                // skipped it when there is none).
                let addresses: Vec<Option<&String>> =
                    if channel == Channel::WebPush && !matches!(decision, Decision::Skip(_)) {
                        choices
                            .push_endpoints(&recipient.id)
                            .iter()
                            .map(Some)
                            .collect()
                    } else {
                        vec![None]
                    };
                for address in addresses {
                    let delivery_id = self.ids.delivery_id();
                    let (rid, nid) = (recipient.id.clone(), id.clone());
                    let delivery = match &decision {
                        Decision::Now => Delivery::pending(delivery_id, nid, rid, channel, now),
                        Decision::After(until) => {
                            Delivery::postponed(delivery_id, nid, rid, channel, *until, now)
                        }
                        Decision::Skip(why) => {
                            Delivery::skipped(delivery_id, nid, rid, channel, why.to_string(), now)
                        }
                        Decision::Batch(window_end) => {
                            Delivery::batched(delivery_id, nid, rid, channel, *window_end, now)
                        }
                    };
                    deliveries.push(match address {
                        Some(endpoint) => delivery.to_address(endpoint.clone()),
                        None => delivery,
                    });
                }
            }
            deliveries.extend(self.chain(choices, recipient, &draft, &id, (due, held), now));
            let new = NewNotification {
                notification: Notification {
                    id,
                    recipient_id: draft.recipient_id,
                    kind: draft.kind,
                    priority: draft.priority,
                    title: draft.title,
                    body: draft.body,
                    action_url: draft.action_url,
                    action_label: draft.action_label,
                    metadata: draft.metadata,
                    event_type: draft.event_type,
                    source_event_id: draft.source_event_id,
                    created_at: now,
                    read_at: None,
                },
                deliveries,
                deliver_at,
            };
            created.push(CreatedNotification::from(&new));
            batch.push(new);
        }
        Ok((batch, created))
    }
}

/// When a channel of a notification is decided at: `held` (the end of its coalescing window)
/// for an outbound channel of a held notice, `due` otherwise.
fn outbound_due(
    channel: Channel,
    held: Option<DateTime<Utc>>,
    due: DateTime<Utc>,
) -> DateTime<Utc> {
    match held {
        Some(at) if channel != Channel::InApp => at,
        _ => due,
    }
}

/// A held notice's outbound channel that may go at once waits for the end of its window.
fn hold(decision: Decision, channel: Channel, held: Option<DateTime<Utc>>) -> Decision {
    match (decision, held) {
        (Decision::Now, Some(at)) if channel != Channel::InApp => Decision::After(at),
        (decision, _) => decision,
    }
}

/// Marks in `created` (the answer, built from `batch` before it was written) the deliveries
/// coalescing settled `skipped` because nothing was left to tell.
fn settle_unneeded(
    batch: &[NewNotification],
    created: &mut [CreatedNotification],
    outcome: &CoalesceOutcome,
) {
    if outcome.unneeded.is_empty() {
        return;
    }
    for (new, answer) in batch.iter().zip(created.iter_mut()) {
        for (delivery, plan) in new.deliveries.iter().zip(answer.deliveries.iter_mut()) {
            if outcome.unneeded.contains(&delivery.id) {
                plan.status = DeliveryStatus::Skipped;
                plan.reason = Some(
                    SkipReason::Coalesced(clairon_domain::coalescing::NO_NET_CHANGE.into())
                        .to_string(),
                );
            }
        }
    }
}

impl CreateNotificationHandler {
    /// The end of `draft`'s coalescing window when it is held (coalescing on, a
    /// `planning.modified` notice below `critical`): `due` plus the window.
    fn held_until(&self, draft: &NotificationDraft, due: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (window, _) = self.coalescing.as_ref()?;
        match clairon_domain::coalescing::role(&draft.event_type, draft.priority, &draft.metadata) {
            Some((_, clairon_domain::coalescing::CoalesceRole::Coalesce)) => Some(due + *window),
            _ => None,
        }
    }

    /// The notifications of `batch` that take part in coalescing, with the store that settles
    /// them; `None` when coalescing is off or none does.
    fn coalesce_entries(
        &self,
        batch: &[NewNotification],
    ) -> Option<(Arc<dyn CoalescingRepository>, Vec<CoalesceEntry>)> {
        let (_, store) = self.coalescing.as_ref()?;
        let entries: Vec<CoalesceEntry> = batch
            .iter()
            .filter_map(|new| {
                let n = &new.notification;
                clairon_domain::coalescing::role(&n.event_type, n.priority, &n.metadata).map(
                    |(planning_id, role)| CoalesceEntry {
                        notification_id: n.id.clone(),
                        recipient_id: n.recipient_id.clone(),
                        planning_id,
                        role,
                    },
                )
            })
            .collect();
        (!entries.is_empty()).then(|| (store.clone(), entries))
    }
}

/// What becomes of one channel of one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// `pending`, due with its notification.
    Now,
    /// `pending`, due at this instant (UTC): the end of quiet hours.
    After(DateTime<Utc>),
    /// `skipped`, with the reason.
    Skip(SkipReason),
    /// `batched` for the recipient's digest of the channel, going out at this window end
    /// (UTC).
    Batch(DateTime<Utc>),
}

impl CreateNotificationHandler {
    /// The deliveries that open `draft`'s fallback chain for `recipient`: each channel of the
    /// chain that is on is decided as any other ([`Self::decide`]); those that cannot take it
    /// now (unreachable, no consent, opted out, outside the rule) are `skipped` with their
    /// reason, and the first that can is `pending` (or postponed to the end of quiet hours),
    /// carrying the channels after it that could too. Each row names the one before it in the
    /// chain (`fallback_of`), so the deliveries read as the chain. Nothing when the draft has
    /// no chain.
    fn chain(
        &self,
        choices: &Choices,
        recipient: &Recipient,
        draft: &NotificationDraft,
        notification: &NotificationId,
        (due, held): (DateTime<Utc>, Option<DateTime<Utc>>),
        now: DateTime<Utc>,
    ) -> Vec<Delivery> {
        let mut chain: Vec<Channel> = Vec::with_capacity(draft.fallback.len());
        for c in &draft.fallback {
            if self.policy.enabled.contains(*c) && !chain.contains(c) {
                chain.push(*c);
            }
        }
        let decided: Vec<(Channel, Decision)> = chain
            .into_iter()
            .map(|c| {
                let reach = recipient.reachability(c, self.policy.providers);
                let at = outbound_due(c, held, due);
                let decision = self.decide(choices, recipient, draft, c, reach, at);
                (c, hold(decision, c, held))
            })
            .collect();
        let viable: Vec<Channel> = decided
            .iter()
            .filter(|(_, d)| !matches!(d, Decision::Skip(_)))
            .map(|(c, _)| *c)
            .collect();
        let mut rows: Vec<Delivery> = Vec::new();
        for (channel, decision) in decided {
            let before = rows.last().map(|d| d.id.clone());
            let (id, rid, nid) = (
                self.ids.delivery_id(),
                recipient.id.clone(),
                notification.clone(),
            );
            let opened = match decision {
                Decision::Skip(why) => {
                    rows.push(
                        Delivery::skipped(id, nid, rid, channel, why.to_string(), now)
                            .in_chain(before, Vec::new()),
                    );
                    continue;
                }
                Decision::Now => Delivery::pending(id, nid, rid, channel, now),
                Decision::After(until) => Delivery::postponed(id, nid, rid, channel, until, now),
                // A digested chain channel: the digest takes it (the chain ends there).
                Decision::Batch(end) => Delivery::batched(id, nid, rid, channel, end, now),
            };
            // A chain reaches one browser, the newest subscription (`decide` skipped web_push
            // when there is none), as a link written when a channel gives up does.
            let opened = match choices.push_endpoints(&recipient.id).last() {
                Some(endpoint) if channel == Channel::WebPush => {
                    opened.to_address(endpoint.clone())
                }
                _ => opened,
            };
            let rest = viable
                .iter()
                .skip_while(|c| **c != channel)
                .skip(1)
                .copied();
            rows.push(opened.in_chain(before, rest.collect()));
            break;
        }
        rows
    }

    /// The shared order of checks for one channel of one recipient: reachability, consent
    /// (never overridden), then preferences (which `critical` overrides) with quiet hours read
    /// at `due` in the recipient's zone.
    fn decide(
        &self,
        choices: &Choices,
        recipient: &Recipient,
        draft: &NotificationDraft,
        channel: Channel,
        reach: Result<(), Unreachable>,
        due: DateTime<Utc>,
    ) -> Decision {
        // The routing rule first: a channel it leaves out is `not_in_rule` whatever else.
        if let Some(why) = draft.rule.as_ref().and_then(|r| r.excludes(channel)) {
            return Decision::Skip(why);
        }
        if let Err(why) = reach {
            return Decision::Skip(SkipReason::Unreachable(why));
        }
        if channel == Channel::WebPush && choices.push_endpoints(&recipient.id).is_empty() {
            return Decision::Skip(SkipReason::Unreachable(Unreachable::NoPushSubscription));
        }
        let name = ChannelName::from(channel);
        if self.consent_required.requires(name) && !choices.consented(&recipient.id, name) {
            return Decision::Skip(SkipReason::NoConsent(name));
        }
        let zone = recipient.timezone.unwrap_or(TimeZone::UTC);
        let preferences = choices.preferences(&recipient.id);
        let verdict = preferences.decide(name, &draft.event_type, draft.priority, due, zone);
        match (
            verdict,
            preferences.digest_window(name, draft.priority, due, zone),
        ) {
            // A digested channel (issue 13) holds what it allows, quiet hours included: the
            // digest goes out at its window's end instead.
            (PreferenceVerdict::Allowed | PreferenceVerdict::Postponed(_), Some(window)) => {
                Decision::Batch(window.end)
            }
            (PreferenceVerdict::Allowed, None) => Decision::Now,
            (PreferenceVerdict::Postponed(until), None) => Decision::After(until),
            (PreferenceVerdict::OptedOut(entry), _) => Decision::Skip(SkipReason::OptedOut(entry)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockDeliveryWaker, MockNotificationRepository, MockRecipientRepository};
    use crate::test_support::{draft, fixed_clock, recipient, sequential_ids};
    use clairon_domain::{EmailAddress, TelegramChatId};
    use rstest::rstest;

    fn handler(
        recipients: MockRecipientRepository,
        notifications: MockNotificationRepository,
        waker: MockDeliveryWaker,
        policy: ChannelPolicy,
    ) -> CreateNotificationHandler {
        CreateNotificationHandler::new(
            Arc::new(recipients),
            Arc::new(notifications),
            Arc::new(sequential_ids()),
            Arc::new(fixed_clock()),
            Arc::new(waker),
            policy,
        )
    }

    fn all_on() -> ChannelPolicy {
        ChannelPolicy {
            enabled: ChannelSet::parse_list("in_app,email,telegram").unwrap(),
            providers: ChannelSet::all(),
        }
    }

    #[rstest]
    #[case::everything(Some("zoe@example.org"), Some("100"), true, &[("in_app", "pending"), ("email", "pending"), ("telegram", "pending")])]
    #[case::no_email(None, Some("100"), true, &[("in_app", "pending"), ("email", "skipped"), ("telegram", "pending")])]
    #[case::no_chat(Some("zoe@example.org"), None, true, &[("in_app", "pending"), ("email", "pending"), ("telegram", "skipped")])]
    #[case::no_bot(Some("zoe@example.org"), Some("100"), false, &[("in_app", "pending"), ("email", "pending"), ("telegram", "skipped")])]
    #[tokio::test]
    async fn each_channel_gets_a_pending_or_skipped_delivery(
        #[case] email: Option<&str>,
        #[case] chat: Option<&str>,
        #[case] bot: bool,
        #[case] expected: &[(&str, &str)],
    ) {
        let mut zoe = recipient("artist-1");
        zoe.email = email.map(|e| EmailAddress::parse(e).unwrap());
        zoe.telegram_chat_id = chat.map(|c| TelegramChatId::parse(c).unwrap());
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert_batch()
            .times(1)
            .returning(|_| Ok(()));
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().times(1).return_const(());
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            waker,
            ChannelPolicy {
                enabled: ChannelSet::parse_list("in_app,email,telegram").unwrap(),
                providers: if bot {
                    ChannelSet::all()
                } else {
                    ChannelSet::parse_list("in_app,email").unwrap()
                },
            },
        );
        let directory = HashMap::from([(zoe.id.clone(), zoe)]);
        let created = handler
            .execute_with(&directory, vec![draft("artist-1")])
            .await
            .unwrap();
        let got: Vec<(&str, &str)> = created[0]
            .deliveries
            .iter()
            .map(|d| (d.channel.as_str(), d.status.as_str()))
            .collect();
        assert_eq!(got, expected);
    }

    #[rstest]
    #[case::in_the_future(3_600, Some(3_600), false)]
    #[case::already_past(-60, None, true)]
    #[tokio::test]
    async fn a_scheduled_notification_is_stored_with_its_time_and_wakes_nobody_until_due(
        #[case] offset_secs: i64,
        #[case] stored_offset: Option<i64>,
        #[case] wakes: bool,
    ) {
        let now = fixed_clock().now();
        let stored = stored_offset.map(|s| now + chrono::TimeDelta::seconds(s));
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert_batch()
            .withf(move |batch| batch.iter().all(|n| n.deliver_at == stored))
            .times(1)
            .returning(|_| Ok(()));
        let mut waker = MockDeliveryWaker::new();
        waker
            .expect_wake()
            .times(usize::from(wakes))
            .return_const(());
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            waker,
            all_on(),
        );
        let zoe = recipient("artist-1");
        let directory = HashMap::from([(zoe.id.clone(), zoe)]);
        handler
            .execute_scheduled(
                &directory,
                vec![draft("artist-1")],
                Some(now + chrono::TimeDelta::seconds(offset_secs)),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_globally_disabled_channel_gets_no_delivery_even_when_asked_for() {
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert_batch()
            .withf(|batch| {
                batch[0]
                    .deliveries
                    .iter()
                    .all(|d| d.channel == Channel::InApp)
            })
            .times(1)
            .returning(|_| Ok(()));
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().return_const(());
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            waker,
            ChannelPolicy {
                enabled: ChannelSet::parse_list("in_app").unwrap(),
                providers: ChannelSet::all(),
            },
        );
        let zoe = recipient("artist-1");
        let mut wanted = draft("artist-1");
        wanted.channels = Some(ChannelSet::parse_list("in_app,email").unwrap());
        let created = handler
            .execute_with(&HashMap::from([(zoe.id.clone(), zoe)]), vec![wanted])
            .await
            .unwrap();
        assert_eq!(created[0].deliveries.len(), 1);
    }

    #[tokio::test]
    async fn unknown_recipients_are_all_named_and_nothing_is_written() {
        let mut recipients = MockRecipientRepository::new();
        recipients
            .expect_get_many()
            .returning(|_| Ok(vec![recipient("artist-1")]));
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_batch().never();
        let handler = handler(
            recipients,
            notifications,
            MockDeliveryWaker::new(),
            all_on(),
        );
        let err = handler
            .execute(CreateNotification {
                drafts: vec![draft("artist-9"), draft("artist-1"), draft("artist-3")],
                deliver_at: None,
            })
            .await
            .unwrap_err();
        let CreateNotificationError::UnknownRecipients(ids) = err else {
            panic!("expected UnknownRecipients, got {err:?}");
        };
        assert_eq!(
            ids.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
            vec!["artist-3", "artist-9"]
        );
    }

    fn with_metadata(recipient: &str, bytes: usize) -> NotificationDraft {
        let mut d = draft(recipient);
        d.metadata
            .insert("note".into(), serde_json::Value::String("x".repeat(bytes)));
        d
    }

    fn limits(max_metadata_bytes: usize, max_fanout_bytes: usize) -> ContentLimits {
        ContentLimits {
            max_metadata_bytes,
            max_fanout_bytes,
        }
    }

    #[tokio::test]
    async fn metadata_over_its_bound_is_refused_and_nothing_is_written() {
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_batch().never();
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            MockDeliveryWaker::new(),
            all_on(),
        )
        .with_limits(limits(1_000, 1_000_000));
        let zoe = recipient("artist-1");
        let err = handler
            .execute_with(
                &HashMap::from([(zoe.id.clone(), zoe)]),
                vec![with_metadata("artist-1", 1_000)],
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CreateNotificationError::TooLarge(ContentTooLarge::Metadata {
                    bytes: 1_011,
                    max: 1_000
                })
            ),
            "the metadata's compact JSON size is reported against the bound: {err:?}"
        );
    }

    #[tokio::test]
    async fn content_copied_to_too_many_recipients_is_refused_before_anything_is_written() {
        let mut recipients = MockRecipientRepository::new();
        recipients.expect_get_many().never();
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_batch().never();
        let handler = handler(
            recipients,
            notifications,
            MockDeliveryWaker::new(),
            all_on(),
        )
        .with_limits(limits(16_384, 50_000));
        let drafts: Vec<NotificationDraft> = (1..=10)
            .map(|i| with_metadata(&format!("artist-{i}"), 6_000))
            .collect();
        let err = handler
            .execute(CreateNotification {
                drafts,
                deliver_at: None,
            })
            .await
            .unwrap_err();
        let CreateNotificationError::TooLarge(ContentTooLarge::Fanout { bytes, max, .. }) = err
        else {
            panic!("expected a fan-out refusal, got {err:?}");
        };
        assert!(bytes > max, "{bytes} bytes are over the {max} bound");
    }

    #[tokio::test]
    async fn a_planning_context_is_bound_by_the_fanout_only() {
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert_batch()
            .times(1)
            .returning(|_| Ok(()));
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().return_const(());
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            waker,
            all_on(),
        )
        .with_limits(limits(1_000, 1_000_000));
        let mut notice = with_metadata("artist-1", 5_000);
        notice.event_type = EventType::parse("planning.assigned").unwrap();
        let zoe = recipient("artist-1");
        let created = handler
            .execute_with(&HashMap::from([(zoe.id.clone(), zoe)]), vec![notice])
            .await;
        assert!(
            created.is_ok(),
            "Clairon's own template context is not the producer's metadata: {created:?}"
        );
    }

    #[tokio::test]
    async fn a_conflict_in_the_outbox_is_reported_as_a_duplicate_and_wakes_nobody() {
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_batch().returning(|_| {
            Err(RepositoryError::Conflict(
                "notifications_source_recipient".into(),
            ))
        });
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().never();
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            waker,
            all_on(),
        );
        let zoe = recipient("artist-1");
        let err = handler
            .execute_with(
                &HashMap::from([(zoe.id.clone(), zoe)]),
                vec![draft("artist-1")],
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, CreateNotificationError::Duplicate(_)),
            "{err:?}"
        );
    }

    fn choosing(
        document: serde_json::Value,
        consents: &'static [(&'static str, bool)],
    ) -> ChoiceSources {
        use crate::ports::{MockConsentRepository, MockPreferenceRepository};
        let mut preferences = MockPreferenceRepository::new();
        let parsed = clairon_domain::Preferences::parse(&document).unwrap();
        preferences
            .expect_get_many()
            .times(1)
            .returning(move |ids| Ok(ids.iter().map(|id| (id.clone(), parsed.clone())).collect()));
        let mut store = MockConsentRepository::new();
        store.expect_states().returning(move |ids, _| {
            let mut state = ConsentState::default();
            for (i, (channel, granted)) in consents.iter().enumerate() {
                state.apply(
                    ChannelName::parse(channel).unwrap(),
                    fixed_clock().now(),
                    i64::try_from(i).unwrap(),
                    *granted,
                );
            }
            Ok(ids.iter().map(|id| (id.clone(), state.clone())).collect())
        });
        ChoiceSources {
            preferences: Arc::new(preferences),
            consents: Arc::new(store),
        }
    }

    #[rstest]
    #[case::nothing_set(serde_json::json!({}), "", &[], Priority::Normal, ("pending", None))]
    #[case::opted_out(serde_json::json!({"channels": {"email": false}}), "", &[], Priority::Normal, ("skipped", Some("opted_out: channels.email")))]
    #[case::critical_overrides(serde_json::json!({"channels": {"email": false}}), "", &[], Priority::Critical, ("pending", None))]
    #[case::no_consent(serde_json::json!({}), "email", &[], Priority::Normal, ("skipped", Some("no_consent: email")))]
    #[case::critical_never_overrides_consent(serde_json::json!({}), "email", &[("email", false)], Priority::Critical, ("skipped", Some("no_consent: email")))]
    #[case::consent_granted(serde_json::json!({}), "email", &[("email", true)], Priority::Normal, ("pending", None))]
    #[case::consent_before_preferences(serde_json::json!({"channels": {"email": false}}), "email", &[], Priority::Normal, ("skipped", Some("no_consent: email")))]
    #[tokio::test]
    async fn preferences_and_consents_decide_the_email_delivery(
        #[case] document: serde_json::Value,
        #[case] required: &str,
        #[case] consents: &'static [(&'static str, bool)],
        #[case] priority: Priority,
        #[case] expected: (&str, Option<&str>),
    ) {
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_batch().returning(|_| Ok(()));
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().return_const(());
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            waker,
            all_on(),
        )
        .with_choices(
            choosing(document, consents),
            ConsentRequired::parse(required).unwrap(),
        );
        let zoe = recipient("artist-1");
        let mut wanted = draft("artist-1");
        wanted.priority = priority;
        let created = handler
            .execute_with(&HashMap::from([(zoe.id.clone(), zoe)]), vec![wanted])
            .await
            .unwrap();
        let email = created[0]
            .deliveries
            .iter()
            .find(|d| d.channel == Channel::Email)
            .unwrap();
        assert_eq!((email.status.as_str(), email.reason.as_deref()), expected);
        let in_app = &created[0].deliveries[0];
        assert_eq!(
            (in_app.channel, in_app.status),
            (Channel::InApp, DeliveryStatus::Pending),
            "in-app is never stopped"
        );
    }

    #[tokio::test]
    async fn an_email_due_inside_quiet_hours_waits_for_their_end_and_in_app_does_not() {
        let mut notifications = MockNotificationRepository::new();
        // 09:00 UTC is 04:00 in Montréal (EST): inside 22:00–08:00, which ends at 13:00 UTC.
        let end = fixed_clock().now() + chrono::TimeDelta::hours(4);
        notifications
            .expect_insert_batch()
            .withf(move |batch| {
                let due: Vec<Option<DateTime<Utc>>> = batch[0]
                    .deliveries
                    .iter()
                    .map(|d| d.next_attempt_at)
                    .collect();
                due == vec![None, Some(end), Some(end)]
            })
            .times(1)
            .returning(|_| Ok(()));
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().return_const(());
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            waker,
            all_on(),
        )
        .with_choices(
            choosing(
                serde_json::json!({"quiet_hours": {"start": "22:00", "end": "08:00"}}),
                &[],
            ),
            ConsentRequired::none(),
        );
        let zoe = recipient("artist-1");
        let created = handler
            .execute_with(
                &HashMap::from([(zoe.id.clone(), zoe)]),
                vec![draft("artist-1")],
            )
            .await
            .unwrap();
        assert!(created[0]
            .deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending));
    }

    #[rstest]
    #[case::telegram_reachable(Some("100"), &[("in_app", "pending", false, ""), ("telegram", "pending", false, "email")])]
    #[case::no_chat(None, &[("in_app", "pending", false, ""), ("telegram", "skipped", false, ""), ("email", "pending", true, "")])]
    #[tokio::test]
    async fn a_fallback_chain_opens_on_its_first_channel_that_can_take_it(
        #[case] chat: Option<&str>,
        #[case] expected: &[(&str, &str, bool, &str)],
    ) {
        // Arrange: the chain telegram → sms → email, SMS switched off service-wide.
        let mut zoe = recipient("artist-1");
        zoe.telegram_chat_id = chat.map(|c| TelegramChatId::parse(c).unwrap());
        let mut notifications = MockNotificationRepository::new();
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = written.clone();
        notifications
            .expect_insert_batch()
            .times(1)
            .returning(move |batch| {
                sink.lock()
                    .unwrap()
                    .extend(batch.iter().flat_map(|n| n.deliveries.clone()));
                Ok(())
            });
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().return_const(());
        let handler = handler(
            MockRecipientRepository::new(),
            notifications,
            waker,
            all_on(),
        );
        let mut chained = draft("artist-1");
        chained.fallback = vec![Channel::Telegram, Channel::Sms, Channel::Email];
        let directory = HashMap::from([(zoe.id.clone(), zoe)]);

        // Act
        handler
            .execute_with(&directory, vec![chained])
            .await
            .unwrap();

        // Assert: email is not sent beside Telegram; each link names the one before it.
        let written = written.lock().unwrap().clone();
        let got: Vec<(&str, &str, bool, String)> = written
            .iter()
            .map(|d| {
                let rest: Vec<&str> = d.fallback.iter().map(|c| c.as_str()).collect();
                (
                    d.channel.as_str(),
                    d.status.as_str(),
                    d.fallback_of.is_some(),
                    rest.join(","),
                )
            })
            .collect();
        let expected: Vec<(&str, &str, bool, String)> = expected
            .iter()
            .map(|(c, s, of, rest)| (*c, *s, *of, (*rest).to_owned()))
            .collect();
        assert_eq!(got, expected);
        if let [_, telegram, email] = written.as_slice() {
            assert_eq!(email.fallback_of.as_ref(), Some(&telegram.id));
        }
    }
}

#[cfg(test)]
#[path = "create_notification_coalescing_tests.rs"]
mod coalescing_tests;
