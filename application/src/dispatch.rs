//! The delivery dispatcher: claims due deliveries from the outbox, renders each for its
//! channel, hands it to the channel's sender, and records what happened.
//!
//! A failure on one delivery never blocks the others of the batch and never loses the
//! notification: it is already in the database, and the delivery records the error. Every
//! failure is logged at error level with the notification id, the channel and the cause.
//!
//! The policy for what a provider answered:
//!
//! | answer | delivery becomes | attempt counted |
//! |---|---|---|
//! | sent | `sent` | yes |
//! | transient (SMTP 4xx, 5xx HTTP, network) | `retrying`, due after the [`RetrySchedule`]'s delay; `dead` once it has none | yes |
//! | rate limited (429) | `retrying`, due after `retry_after`; the channel is paused in this process for as long | no |
//! | permanent (SMTP 5xx, Telegram "chat not found") | `failed` | yes |
//!
//! No poison pill: a panic while delivering one delivery (a sender's, a template's, a bug of
//! ours) is caught there, and that delivery alone is recorded `failed` with the panic's message;
//! the rest of the batch goes on. A panic escaping a whole round is the binary's supervisor's to
//! catch; the deliveries of that round are then left behind, and the queue counts the crash and
//! parks a delivery that crashed workers [`POISON_CRASHES`](crate::ports::POISON_CRASHES) times
//! (see [`DeliveryQueue::claim_due`]).
//!
//! Leases and fencing: while a batch is being sent, a heartbeat renews its leases every third of
//! the lease ([`DeliveryDispatcher::with_lease_heartbeat`]), so a batch slower than its lease is
//! not retaken by another worker mid-send; outcomes are recorded under the batch's
//! [`ClaimToken`], so a worker that lost its lease anyway cannot write over the new holder (the
//! queue refuses, the dispatcher logs it).
//!
//! The loop that calls [`DeliveryDispatcher::dispatch_once`] (polling, waking on new work,
//! stopping on shutdown, restarting after a panic) belongs to the binary; this type spawns
//! nothing, and waits only through the [`Timer`] port.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clairon_domain::{
    recipient::Unreachable, AttemptOutcome, Channel, ChannelSet, DeliveryId, DeliveryTransition,
    EmailAddress, IllegalTransition, Locale, Notification, Recipient, RecipientId, SkipReason,
    TelegramChatId,
};
use clairon_domain::{sms::fit_sms, PhoneNumber};
use futures_util::future::{join_all, select, Either};
use futures_util::FutureExt as _;
use serde_json::{json, Value};

use crate::ports::{
    AttemptRecord, ClaimToken, ClaimedDelivery, Clock, DeliveryQueue, DeliveryUpdate,
    DispatchObserver, EmailMessage, EmailSender, FallbackLink, IdGenerator, NotificationRepository,
    RealtimeEvent, RealtimePublisher, RecipientRepository, RepositoryError, RetrySchedule,
    SendOutcome, TelegramButton, TelegramMessage, TelegramSender, TemplateError, TemplateRenderer,
    Timer, UnsubscribeLinks, WebhookMessage, WebhookSender, WEBHOOK_GONE,
};
use crate::ports::{PushMessage, PushSender, PushSubscriptions, PUSH_SUBSCRIPTION_GONE};
use crate::ports::{SlackSender, SLACK_GONE};
use crate::ports::{SmsMessage, SmsSender};

/// How the dispatcher claims work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// Deliveries claimed per round.
    pub batch_size: u32,
    /// How long a claim holds before another dispatcher may take the delivery over; with a
    /// heartbeat, renewed every third of it while the batch is in flight.
    pub lease: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            batch_size: 64,
            lease: Duration::from_secs(60),
        }
    }
}

/// The template context of a notification at dispatch time: its metadata (for planning
/// notifications, the localised planning context; `changes` being the net change when it took
/// in earlier modifications, `clairon_domain::coalescing::outbound_context`), plus
/// `notification`, `recipient` and `locale`.
pub fn dispatch_context(
    notification: &Notification,
    recipient: &Recipient,
    locale: Locale,
) -> Value {
    let mut context = notification.metadata.clone();
    clairon_domain::coalescing::outbound_context(&mut context);
    context.insert(
        "notification".into(),
        json!({
            "id": notification.id.as_str(),
            "kind": notification.kind.as_str(),
            "title": notification.title.as_str(),
            "body": notification.body.as_str(),
            "action_url": notification.action_url.as_ref().map(|u| u.as_str()),
            "action_label": notification.action_label.as_ref().map(|l| l.as_str()),
            "event_type": notification.event_type.as_str(),
            "created_at": notification.created_at.to_rfc3339(),
        }),
    );
    context.insert(
        "recipient".into(),
        json!({ "id": recipient.id.as_str(), "name": recipient.name.as_str() }),
    );
    context.insert("locale".into(), json!(locale.as_str()));
    Value::Object(context)
}

/// The email of one delivery of `notification`, rendered in `locale`: what the dispatcher and
/// the test command send. `unsubscribe_url` (the one-click link, RFC 8058) goes into the
/// message's headers and, as `unsubscribe_url` (a string, or null), into the templates'
/// context, so the footer can show it.
///
/// # Errors
/// [`TemplateError`] when no template applies or it fails.
pub(crate) fn compose_email(
    templates: &dyn TemplateRenderer,
    delivery_id: DeliveryId,
    notification: &Notification,
    recipient: &Recipient,
    to: EmailAddress,
    locale: Locale,
    unsubscribe_url: Option<String>,
) -> Result<EmailMessage, TemplateError> {
    let mut context = dispatch_context(notification, recipient, locale);
    if let Value::Object(fields) = &mut context {
        fields.insert("unsubscribe_url".into(), json!(unsubscribe_url));
    }
    let content = templates.render_email(&notification.event_type, locale, &context)?;
    Ok(EmailMessage {
        delivery_id,
        notification_id: notification.id.clone(),
        to,
        to_name: recipient.name.clone(),
        subject: content.subject,
        text: content.text,
        html: content.html,
        unsubscribe_url,
    })
}

/// The Telegram message of one delivery of `notification`, rendered in `locale`, with an inline
/// button when the notification has an `action_url`.
///
/// # Errors
/// [`TemplateError`] when no template applies or it fails.
pub(crate) fn compose_telegram(
    templates: &dyn TemplateRenderer,
    delivery_id: DeliveryId,
    notification: &Notification,
    recipient: &Recipient,
    chat_id: TelegramChatId,
    locale: Locale,
) -> Result<TelegramMessage, TemplateError> {
    let context = dispatch_context(notification, recipient, locale);
    let content = templates.render_telegram(&notification.event_type, locale, &context)?;
    let button = notification.action_url.as_ref().map(|url| TelegramButton {
        label: notification.action_label.as_ref().map_or_else(
            || default_action_label(locale).to_owned(),
            |l| l.as_str().to_owned(),
        ),
        url: url.as_str().to_owned(),
    });
    Ok(TelegramMessage {
        delivery_id,
        chat_id,
        html: content.html,
        button,
    })
}

/// The most SMS segments a text message is sent as: 2 (306 GSM-7 septets, 134 UCS-2 code
/// units; 3GPP TS 23.038). WhatsApp gets the same text.
pub const SMS_MAX_SEGMENTS: usize = 2;

/// The SMS (or, with `whatsapp`, WhatsApp) message of one delivery of `notification`,
/// rendered in `locale` from the `sms` template and cut to [`SMS_MAX_SEGMENTS`] segments with
/// the notification's `action_url` kept whole on its last line.
///
/// # Errors
/// [`TemplateError`] when no template applies or it fails.
pub(crate) fn compose_sms(
    templates: &dyn TemplateRenderer,
    delivery_id: DeliveryId,
    notification: &Notification,
    recipient: &Recipient,
    to: PhoneNumber,
    locale: Locale,
    whatsapp: bool,
) -> Result<SmsMessage, TemplateError> {
    let context = dispatch_context(notification, recipient, locale);
    let content = templates.render_sms(&notification.event_type, locale, &context)?;
    let link = notification.action_url.as_ref().map(|u| u.as_str());
    Ok(SmsMessage {
        delivery_id,
        to,
        body: fit_sms(&content.text, link, SMS_MAX_SEGMENTS),
        whatsapp,
    })
}

/// The language a notification is written in: the one its planning context was localised in,
/// else the recipient's, else the default.
pub fn notification_locale(
    notification: &Notification,
    recipient: &Recipient,
    default: Locale,
) -> Locale {
    notification
        .metadata
        .get("locale")
        .and_then(Value::as_str)
        .and_then(|l| Locale::parse(l).ok())
        .unwrap_or_else(|| recipient.locale_or(default))
}

/// Sends what the outbox holds.
pub struct DeliveryDispatcher {
    queue: Arc<dyn DeliveryQueue>,
    notifications: Arc<dyn NotificationRepository>,
    recipients: Arc<dyn RecipientRepository>,
    templates: Arc<dyn TemplateRenderer>,
    email: Arc<dyn EmailSender>,
    telegram: Option<Arc<dyn TelegramSender>>,
    realtime: Arc<dyn RealtimePublisher>,
    clock: Arc<dyn Clock>,
    retry: Arc<dyn RetrySchedule>,
    default_locale: Locale,
    settings: DispatchSettings,
    /// Channels a provider asked us to slow down on, with when they may be claimed again.
    paused: Mutex<HashMap<Channel, DateTime<Utc>>>,
    /// Told every recorded outcome (metrics); none by default.
    observer: Option<Arc<dyn DispatchObserver>>,
    /// Paces the lease heartbeat; without one, leases are not renewed.
    heartbeat: Option<Arc<dyn Timer>>,
    /// Makes the one-click unsubscribe links of emails; without it, emails carry none.
    unsubscribe: Option<Arc<dyn UnsubscribeLinks>>,
    /// When the deliveries this dispatcher put back for pacing become due, soonest first
    /// (a min-heap), so an idle worker wakes for them rather than a poll interval later.
    deferred: Mutex<BinaryHeap<Reverse<DateTime<Utc>>>>,
    /// Makes the ids of fallback links; without it, a chain stops at the link that gave up.
    ids: Option<Arc<dyn IdGenerator>>,
    /// Sends SMS and WhatsApp messages; `None` when no provider account is configured.
    sms: Option<Arc<dyn SmsSender>>,
    /// Posts signed webhooks; without one, webhook deliveries are skipped as not configured.
    webhook: Option<Arc<dyn WebhookSender>>,
    /// Sends Web Push, and the subscriptions it sends to; without it, `web_push` is skipped.
    push: Option<(Arc<dyn PushSender>, Arc<dyn PushSubscriptions>)>,
    /// Posts Slack messages to incoming webhooks; without one, `slack` is skipped.
    slack: Option<Arc<dyn SlackSender>>,
}

impl DeliveryDispatcher {
    /// Builds a dispatcher. `telegram` is `None` when no bot token is configured; `retry`
    /// decides when a transiently failed delivery is tried again, and when it is dead.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queue: Arc<dyn DeliveryQueue>,
        notifications: Arc<dyn NotificationRepository>,
        recipients: Arc<dyn RecipientRepository>,
        templates: Arc<dyn TemplateRenderer>,
        email: Arc<dyn EmailSender>,
        telegram: Option<Arc<dyn TelegramSender>>,
        realtime: Arc<dyn RealtimePublisher>,
        clock: Arc<dyn Clock>,
        retry: Arc<dyn RetrySchedule>,
        default_locale: Locale,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            queue,
            notifications,
            recipients,
            templates,
            email,
            telegram,
            realtime,
            clock,
            retry,
            default_locale,
            settings,
            paused: Mutex::new(HashMap::new()),
            observer: None,
            heartbeat: None,
            unsubscribe: None,
            deferred: Mutex::new(BinaryHeap::new()),
            ids: None,
            sms: None,
            webhook: None,
            push: None,
            slack: None,
        }
    }

    /// Delivers the `slack` channel through `sender`: each delivery posted as Block Kit blocks
    /// to the recipient's incoming-webhook URL ([`crate::slack::compose_slack`]); a refusal for
    /// good ([`SLACK_GONE`]) marks the recipient's Slack unreachable until the URL changes.
    #[must_use]
    pub fn with_slack(mut self, sender: Arc<dyn SlackSender>) -> Self {
        self.slack = Some(sender);
        self
    }

    /// Lets fallback chains go on: when a delivery with channels left in its
    /// [`clairon_domain::Delivery::fallback`] gives up (`failed`, `dead`, or `skipped` as
    /// unreachable at dispatch), the next channel gets a delivery with an id from `ids`,
    /// written with the outcome ([`DeliveryUpdate::fallback`]).
    #[must_use]
    pub fn with_fallback_ids(mut self, ids: Arc<dyn IdGenerator>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// Sends `sms` and `whatsapp` deliveries through `sender` (Twilio's Messages API);
    /// without one (`None`, the default) they are skipped as not configured.
    #[must_use]
    pub fn with_sms(mut self, sender: Option<Arc<dyn SmsSender>>) -> Self {
        self.sms = sender;
        self
    }

    /// Delivers the `webhook` channel through `sender`: each delivery's notification posted as a
    /// signed `notification.created` webhook (Standard Webhooks 1.0) to the recipient's URL; a
    /// `410 Gone` disables that URL for the recipient until it changes.
    #[must_use]
    pub fn with_webhook(mut self, sender: Arc<dyn WebhookSender>) -> Self {
        self.webhook = Some(sender);
        self
    }

    /// Sends `web_push` deliveries through `sender`, each to the subscription of
    /// `subscriptions` its address (the endpoint) names, with the payload
    /// `{id, title, body, action_url}` of its notification; a subscription the push service
    /// says is gone (`404`/`410`) is deleted, the delivery `failed`. Without it, `web_push`
    /// deliveries are skipped `unreachable: web_push is not configured`.
    #[must_use]
    pub fn with_web_push(
        mut self,
        sender: Arc<dyn PushSender>,
        subscriptions: Arc<dyn PushSubscriptions>,
    ) -> Self {
        self.push = Some((sender, subscriptions));
        self
    }

    /// Gives every email whose notification's priority offers it
    /// ([`clairon_domain::Priority::offers_unsubscribe`]: all but `critical`) the one-click
    /// unsubscribe link `links` makes for its recipient and event type (RFC 8058, RFC 2369).
    #[must_use]
    pub fn with_unsubscribe_links(mut self, links: Arc<dyn UnsubscribeLinks>) -> Self {
        self.unsubscribe = Some(links);
        self
    }

    /// Tells `observer` every outcome once it is recorded (for metrics).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn DispatchObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Renews the leases of a batch in flight every third of the lease
    /// ([`DispatchSettings::lease`]), waiting through `timer`, until the batch is recorded. A
    /// dispatcher that may take longer than its lease to send a batch (any real one: SMTP and
    /// Telegram time out after 30 s, a batch holds up to 64 deliveries) needs it, or another
    /// worker retakes the batch and sends it a second time.
    #[must_use]
    pub fn with_lease_heartbeat(mut self, timer: Arc<dyn Timer>) -> Self {
        self.heartbeat = Some(timer);
        self
    }

    /// The channels this dispatcher may claim at `now`: all but those paused by a 429 whose
    /// pause has not ended yet.
    pub fn claimable_channels(&self, now: DateTime<Utc>) -> ChannelSet {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        paused.retain(|_, until| *until > now);
        Channel::ALL
            .into_iter()
            .filter(|c| !paused.contains_key(c))
            .collect()
    }

    /// How long an idle worker may sleep: `poll`, or less when a delivery this dispatcher put
    /// back for pacing ([`SendOutcome::Paced`]) becomes due sooner. Times already past are
    /// dropped (their deliveries are due: the next round takes them).
    pub fn idle_wait(&self, poll: Duration) -> Duration {
        self.next_wakeup_in().map_or(poll, |wait| wait.min(poll))
    }

    /// How long until this dispatcher has work it knows of: the soonest delivery it put back
    /// for pacing becomes due, or a channel a 429 paused may be claimed again. `None` when
    /// neither is still to come.
    pub fn next_wakeup_in(&self) -> Option<Duration> {
        let now = self.clock.now();
        let soonest_deferral = {
            let mut deferred = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
            while deferred.peek().is_some_and(|Reverse(at)| *at <= now) {
                deferred.pop();
            }
            deferred.peek().map(|Reverse(at)| *at)
        };
        let soonest_resume = {
            let paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
            paused.values().copied().filter(|until| *until > now).min()
        };
        [soonest_deferral, soonest_resume]
            .into_iter()
            .flatten()
            .min()
            .and_then(|at| (at - now).to_std().ok())
    }

    /// Remembers that a delivery put back for pacing is due at `at` ([`Self::idle_wait`]).
    fn deferred_until(&self, at: DateTime<Utc>) {
        let now = self.clock.now();
        let mut deferred = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
        while deferred.peek().is_some_and(|Reverse(due)| *due <= now) {
            deferred.pop();
        }
        // Bounded: beyond this many, the poll interval picks the rest up.
        if deferred.len() < 10_000 {
            deferred.push(Reverse(at));
        }
    }

    /// Pauses `channel` until `until` (a later pause wins over an earlier one).
    fn pause(&self, channel: Channel, until: DateTime<Utc>) {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        let entry = paused.entry(channel).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// Claims one batch of due deliveries, sends them concurrently (renewing their leases
    /// meanwhile, with a heartbeat), records the outcomes. Returns how many were claimed (0
    /// means the outbox had nothing due).
    ///
    /// A panic while delivering one of them is caught: that delivery is recorded `failed` with
    /// the panic's message, the others as they went. An outcome the queue refuses because the
    /// claim was lost (another worker holds the delivery now) is logged and dropped.
    ///
    /// # Errors
    /// [`RepositoryError`] when claiming or recording fails; claimed deliveries whose outcome
    /// could not be recorded are retaken when their lease expires.
    pub async fn dispatch_once(&self) -> Result<usize, RepositoryError> {
        let now = self.clock.now();
        let channels = self.claimable_channels(now);
        if channels.is_empty() {
            return Ok(0);
        }
        let claimed = self
            .queue
            .claim_due(now, self.settings.lease, self.settings.batch_size, channels)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        #[cfg(feature = "fault-injection")]
        fault::round(&claimed);
        let unread = self.unread_counts(&claimed).await;
        let sending = join_all(claimed.iter().map(|c| async {
            let update = self.deliver_guarded(c, &unread).await?;
            Some(self.chained(c, update))
        }));
        let decided = self.while_holding(&claimed, sending).await;
        // A move the domain refused is not recorded (see `Self::update`): its lease lapses.
        let (held, updates): (Vec<&ClaimedDelivery>, Vec<DeliveryUpdate>) = claimed
            .iter()
            .zip(decided)
            .filter_map(|(claimed, update)| update.map(|u| (claimed, u)))
            .unzip();
        let lost: HashSet<DeliveryId> = self.queue.record(&updates).await?.into_iter().collect();
        for id in &lost {
            tracing::warn!(
                delivery_id = %id,
                "lease lost: another worker holds this delivery now; this outcome was not recorded"
            );
        }
        if let Some(observer) = &self.observer {
            for (claimed, update) in held.into_iter().zip(&updates) {
                if !lost.contains(&update.id) {
                    observer.recorded(claimed, update);
                }
            }
        }
        Ok(claimed.len())
    }

    /// Runs `work` (sending a batch) while a heartbeat renews the batch's leases, when this
    /// dispatcher has one.
    async fn while_holding<F: std::future::Future>(
        &self,
        claimed: &[ClaimedDelivery],
        work: F,
    ) -> F::Output {
        let Some(timer) = &self.heartbeat else {
            return work.await;
        };
        let beat = std::pin::pin!(self.heartbeat(timer.as_ref(), claimed));
        match select(std::pin::pin!(work), beat).await {
            Either::Left((output, _)) => output,
            Either::Right((never, _)) => match never {},
        }
    }

    /// Every third of the lease, extends the leases this batch still holds; never ends (it is
    /// dropped once the batch is sent). A renewal that fails is retried at the next beat: the
    /// lease still has two thirds to run.
    async fn heartbeat(&self, timer: &dyn Timer, claimed: &[ClaimedDelivery]) -> Infallible {
        let every = (self.settings.lease / 3).max(Duration::from_millis(10));
        let mut held: Vec<(DeliveryId, ClaimToken)> = claimed
            .iter()
            .map(|c| (c.delivery.id.clone(), c.claim.clone()))
            .collect();
        loop {
            timer.sleep(every).await;
            if held.is_empty() {
                continue;
            }
            let until = later(self.clock.now(), self.settings.lease);
            match self.queue.renew(&held, until).await {
                Ok(renewed) => {
                    let renewed: HashSet<DeliveryId> = renewed.into_iter().collect();
                    held.retain(|(id, _)| {
                        let kept = renewed.contains(id);
                        if !kept {
                            tracing::warn!(
                                delivery_id = %id,
                                "lease lost while sending: another worker may hold this delivery now"
                            );
                        }
                        kept
                    });
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not renew the leases of the batch in flight; trying again at the next beat"
                ),
            }
        }
    }

    /// `update` with the next link of its delivery's fallback chain, when it gave up and the
    /// chain has channels left ([`clairon_domain::Delivery::fallback_link`]).
    fn chained(&self, claimed: &ClaimedDelivery, mut update: DeliveryUpdate) -> DeliveryUpdate {
        if claimed.delivery.fallback.is_empty() {
            return update;
        }
        let Some(ids) = &self.ids else {
            tracing::error!(
                delivery_id = %claimed.delivery.id,
                "fallback chain stops here: this dispatcher makes no delivery ids"
            );
            return update;
        };
        let link =
            claimed
                .delivery
                .fallback_link(update.status, ids.delivery_id(), self.clock.now());
        if let Some(next) = link {
            tracing::info!(
                delivery_id = %claimed.delivery.id,
                status = update.status.as_str(),
                next_channel = %next.channel,
                "delivery gave up; its fallback channel takes over"
            );
            update.fallback = Some(FallbackLink {
                delivery: next,
                priority: claimed.notification.priority,
            });
        }
        update
    }

    /// [`Self::deliver`], with a panic inside it caught and turned into a `failed` outcome of
    /// this delivery alone.
    async fn deliver_guarded(
        &self,
        claimed: &ClaimedDelivery,
        unread: &HashMap<RecipientId, Result<u64, String>>,
    ) -> Option<DeliveryUpdate> {
        let started_at = self.clock.now();
        let timer = Instant::now();
        match AssertUnwindSafe(self.deliver(claimed, unread))
            .catch_unwind()
            .await
        {
            Ok(update) => update,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(
                    notification_id = %claimed.notification.id,
                    delivery_id = %claimed.delivery.id,
                    channel = %claimed.delivery.channel,
                    panic = %message,
                    "delivery panicked; marked failed, the dispatcher goes on"
                );
                let cause = format!("the delivery panicked: {message}");
                let attempt = AttemptRecord {
                    number: claimed.delivery.attempt_number(),
                    started_at,
                    duration_ms: u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX),
                    outcome: AttemptOutcome::Permanent,
                    error: Some(cause.clone()),
                    provider_response_id: None,
                };
                update(
                    claimed,
                    claimed.delivery.fail_permanent(cause),
                    Some(attempt),
                )
            }
        }
    }

    /// The unread count of each recipient with an in-app delivery in the batch: one grouped
    /// query per round rather than one per delivery or per recipient (the batch's notifications
    /// are all written, so one count serves every live event of the round).
    async fn unread_counts(
        &self,
        claimed: &[ClaimedDelivery],
    ) -> HashMap<RecipientId, Result<u64, String>> {
        let mut recipients: Vec<RecipientId> = claimed
            .iter()
            .filter(|c| c.delivery.channel == Channel::InApp)
            .map(|c| c.recipient.id.clone())
            .collect();
        if recipients.is_empty() {
            return HashMap::new();
        }
        recipients.sort_unstable();
        recipients.dedup();
        match self.notifications.unread_counts(&recipients).await {
            Ok(mut counts) => recipients
                .into_iter()
                .map(|r| {
                    let count = counts.remove(&r).unwrap_or(0);
                    (r, Ok(count))
                })
                .collect(),
            Err(e) => {
                let cause = e.to_string();
                recipients
                    .into_iter()
                    .map(|r| (r, Err(cause.clone())))
                    .collect()
            }
        }
    }

    #[tracing::instrument(
        name = "deliver",
        skip_all,
        fields(notification_id = %claimed.notification.id, delivery_id = %claimed.delivery.id, channel = %claimed.delivery.channel, request_id = claimed.request_id.as_deref())
    )]
    async fn deliver(
        &self,
        claimed: &ClaimedDelivery,
        unread: &HashMap<RecipientId, Result<u64, String>>,
    ) -> Option<DeliveryUpdate> {
        #[cfg(feature = "fault-injection")]
        fault::delivery(claimed);
        let delivery = &claimed.delivery;
        let number = delivery.attempt_number();
        let started_at = self.clock.now();
        let timer = Instant::now();
        let outcome = match self.attempt(claimed, unread).await {
            Attempt::Tried(outcome) => outcome,
            Attempt::Skipped(reason) => {
                tracing::info!(reason, "delivery skipped at dispatch");
                return update(
                    claimed,
                    delivery.skip(format!("unreachable: {reason}")),
                    None,
                );
            }
        };
        let duration_ms = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
        let record = |outcome: AttemptOutcome, error: Option<String>, provider: Option<String>| {
            Some(AttemptRecord {
                number,
                started_at,
                duration_ms,
                outcome,
                error,
                provider_response_id: provider,
            })
        };
        match outcome {
            SendOutcome::Sent {
                provider_message_id,
            } => {
                // One line per delivery sent, in the delivery's span (ids and request id).
                tracing::info!(attempt = number, duration_ms, "delivery sent");
                let attempt = record(
                    AttemptOutcome::Sent,
                    None,
                    Some(provider_message_id.clone()),
                );
                let moved = delivery.succeed(provider_message_id, self.clock.now());
                update(claimed, moved, attempt)
            }
            SendOutcome::Paced { ready_in } => {
                // At least 10 ms: a bucket that is ready "now" is retaken in the next round.
                let until = later(self.clock.now(), ready_in.max(Duration::from_millis(10)));
                tracing::debug!(
                    channel = %delivery.channel,
                    ready_in_ms = u64::try_from(ready_in.as_millis()).unwrap_or(u64::MAX),
                    "destination paced; delivery put back, worker goes on"
                );
                self.deferred_until(until);
                // Marked paced: once its slot comes, it is claimed before fresh deliveries.
                update(claimed, delivery.defer(until), None).map(DeliveryUpdate::put_back_paced)
            }
            SendOutcome::RateLimited { retry_after } => {
                let cause = format!("rate limited; retry after {} s", retry_after.as_secs());
                let until = later(self.clock.now(), retry_after.max(Duration::from_secs(1)));
                self.pause(delivery.channel, until);
                tracing::warn!(
                    notification_id = %claimed.notification.id,
                    channel = %delivery.channel,
                    retry_after_s = retry_after.as_secs(),
                    "provider rate limit; channel paused, attempt not counted"
                );
                let attempt = record(AttemptOutcome::RateLimited, Some(cause.clone()), None);
                update(claimed, delivery.rate_limit(cause, until), attempt)
            }
            SendOutcome::Transient(cause) => {
                let attempt = record(AttemptOutcome::Transient, Some(cause.clone()), None);
                let retry_at = match self.retry.delay_after(number) {
                    Some(wait) => {
                        tracing::warn!(
                            notification_id = %claimed.notification.id,
                            channel = %delivery.channel,
                            cause = %cause,
                            attempt = number,
                            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "delivery failed; will retry"
                        );
                        Some(later(self.clock.now(), wait))
                    }
                    None => {
                        tracing::error!(
                            notification_id = %claimed.notification.id,
                            channel = %delivery.channel,
                            cause = %cause,
                            attempts = number,
                            "delivery dead: out of attempts"
                        );
                        None
                    }
                };
                update(claimed, delivery.fail_transient(cause, retry_at), attempt)
            }
            SendOutcome::Permanent(cause) => {
                tracing::error!(
                    notification_id = %claimed.notification.id,
                    channel = %delivery.channel,
                    cause = %cause,
                    outcome = AttemptOutcome::Permanent.as_str(),
                    "delivery failed"
                );
                if let Some(gone) = GoneAddress::of(delivery.channel, &cause) {
                    self.forget_gone_address(claimed, gone, &cause).await;
                }
                let attempt = record(AttemptOutcome::Permanent, Some(cause.clone()), None);
                update(claimed, delivery.fail_permanent(cause), attempt)
            }
        }
    }

    /// Forgets an address its provider refused for good, so later notifications skip it: the
    /// recipient's Telegram chat, webhook URL or Slack webhook is marked unreachable until the
    /// address changes, a push subscription is deleted (RFC 8030 §7.3). A failure here is
    /// logged, not fatal: the delivery's own outcome is recorded regardless.
    async fn forget_gone_address(&self, claimed: &ClaimedDelivery, gone: GoneAddress, cause: &str) {
        let recipient = &claimed.recipient;
        let forgotten = match gone {
            GoneAddress::TelegramChat => match &recipient.telegram_chat_id {
                Some(chat) => {
                    self.recipients
                        .mark_telegram_unreachable(&recipient.id, chat, cause)
                        .await
                }
                None => return,
            },
            GoneAddress::Webhook => match &recipient.webhook_url {
                Some(url) => {
                    self.recipients
                        .mark_webhook_disabled(&recipient.id, url, cause)
                        .await
                }
                None => return,
            },
            GoneAddress::Slack => match &recipient.slack_webhook_url {
                Some(url) => {
                    self.recipients
                        .mark_slack_unreachable(&recipient.id, url, cause)
                        .await
                }
                None => return,
            },
            GoneAddress::PushSubscription => {
                let (Some((_, subscriptions)), Some(endpoint)) =
                    (&self.push, claimed.delivery.address.as_deref())
                else {
                    return;
                };
                subscriptions
                    .forget(&recipient.id, endpoint)
                    .await
                    .map(drop)
            }
        };
        match forgotten {
            Ok(()) => tracing::warn!(
                recipient_id = %recipient.id,
                channel = %claimed.delivery.channel,
                address = gone.as_str(),
                "the provider refused the address for good; later notifications skip it until it changes"
            ),
            Err(e) => tracing::error!(
                recipient_id = %recipient.id,
                channel = %claimed.delivery.channel,
                address = gone.as_str(),
                error = %e,
                "could not remember that the provider refused the address for good"
            ),
        }
    }

    /// The Web Push try of `claimed`: its subscription looked up by its address, then sent.
    async fn attempt_web_push(&self, claimed: &ClaimedDelivery) -> Attempt {
        let Some((sender, subscriptions)) = &self.push else {
            return Attempt::Skipped(Unreachable::NotConfigured(Channel::WebPush).to_string());
        };
        let Some(endpoint) = claimed.delivery.address.as_deref() else {
            return Attempt::Skipped(Unreachable::NoPushSubscription.to_string());
        };
        let subscription = match subscriptions.find(&claimed.recipient.id, endpoint).await {
            Ok(Some(subscription)) => subscription,
            // Unsubscribed (or gone) since the delivery was planned.
            Ok(None) => return Attempt::Skipped(Unreachable::NoPushSubscription.to_string()),
            Err(e) => return Attempt::Tried(SendOutcome::Transient(e.to_string())),
        };
        let notification = &claimed.notification;
        let message = PushMessage {
            delivery_id: claimed.delivery.id.clone(),
            subscription,
            notification_id: notification.id.clone(),
            title: notification.title.as_str().to_owned(),
            body: notification.body.as_str().to_owned(),
            action_url: notification
                .action_url
                .as_ref()
                .map(|u| u.as_str().to_owned()),
            priority: notification.priority,
        };
        Attempt::Tried(sender.send(&message).await)
    }

    /// The Slack try of `claimed`, written in `locale`.
    async fn attempt_slack(&self, claimed: &ClaimedDelivery, locale: Locale) -> Attempt {
        let Some(sender) = &self.slack else {
            return Attempt::Skipped(Unreachable::NotConfigured(Channel::Slack).to_string());
        };
        let recipient = &claimed.recipient;
        if let Err(unreachable) = recipient.reachability(Channel::Slack, ChannelSet::all()) {
            return Attempt::Skipped(unreachable.to_string());
        }
        let Some(url) = recipient.slack_webhook_url.clone() else {
            return Attempt::Skipped(Unreachable::NoSlackWebhook.to_string());
        };
        match crate::slack::compose_slack(
            self.templates.as_ref(),
            claimed.delivery.id.clone(),
            &claimed.notification,
            recipient,
            url,
            locale,
        ) {
            Ok(message) => Attempt::Tried(sender.send(&message).await),
            Err(e) => Attempt::Tried(SendOutcome::Permanent(e.to_string())),
        }
    }

    async fn attempt(
        &self,
        claimed: &ClaimedDelivery,
        unread: &HashMap<RecipientId, Result<u64, String>>,
    ) -> Attempt {
        let ClaimedDelivery {
            delivery,
            notification,
            recipient,
            ..
        } = claimed;
        let locale = notification_locale(notification, recipient, self.default_locale);
        match delivery.channel {
            Channel::InApp => {
                let unread = match unread.get(&recipient.id) {
                    Some(Ok(n)) => *n,
                    Some(Err(e)) => return Attempt::Tried(SendOutcome::Transient(e.clone())),
                    // Counted for every in-app delivery of the batch; never a panic regardless.
                    None => {
                        return Attempt::Tried(SendOutcome::Transient(
                            "the unread count was not read".into(),
                        ))
                    }
                };
                self.realtime
                    .publish(RealtimeEvent::NotificationCreated {
                        notification: notification.clone(),
                        seq: None,
                        unread,
                    })
                    .await;
                Attempt::Tried(SendOutcome::Sent {
                    provider_message_id: notification.id.to_string(),
                })
            }
            Channel::Email => {
                let Some(to) = recipient.email.clone() else {
                    return Attempt::Skipped("recipient has no email address".into());
                };
                let unsubscribe_url = self
                    .unsubscribe
                    .as_ref()
                    .filter(|_| notification.priority.offers_unsubscribe())
                    .map(|links| links.unsubscribe_url(&recipient.id, &notification.event_type));
                let message = match compose_email(
                    self.templates.as_ref(),
                    delivery.id.clone(),
                    notification,
                    recipient,
                    to,
                    locale,
                    unsubscribe_url,
                ) {
                    Ok(m) => m,
                    Err(e) => return Attempt::Tried(SendOutcome::Permanent(e.to_string())),
                };
                Attempt::Tried(self.email.send(&message).await)
            }
            Channel::Telegram => {
                let Some(sender) = &self.telegram else {
                    return Attempt::Skipped("no Telegram bot token is configured".into());
                };
                let Some(chat_id) = recipient.telegram_chat_id.clone() else {
                    return Attempt::Skipped("recipient has no Telegram chat id".into());
                };
                if let Err(unreachable) =
                    recipient.reachability(Channel::Telegram, ChannelSet::all())
                {
                    return Attempt::Skipped(unreachable.to_string());
                }
                let message = match compose_telegram(
                    self.templates.as_ref(),
                    delivery.id.clone(),
                    notification,
                    recipient,
                    chat_id,
                    locale,
                ) {
                    Ok(m) => m,
                    Err(e) => return Attempt::Tried(SendOutcome::Permanent(e.to_string())),
                };
                Attempt::Tried(sender.send(&message).await)
            }
            Channel::WebPush => self.attempt_web_push(claimed).await,
            channel @ (Channel::Sms | Channel::WhatsApp) => {
                let Some(sender) = &self.sms else {
                    return Attempt::Skipped(
                        SkipReason::Unreachable(Unreachable::NotConfigured(channel)).to_string(),
                    );
                };
                let Some(to) = recipient.phone.clone() else {
                    return Attempt::Skipped(Unreachable::NoPhone.to_string());
                };
                let message = match compose_sms(
                    self.templates.as_ref(),
                    delivery.id.clone(),
                    notification,
                    recipient,
                    to,
                    locale,
                    channel == Channel::WhatsApp,
                ) {
                    Ok(m) => m,
                    Err(e) => return Attempt::Tried(SendOutcome::Permanent(e.to_string())),
                };
                Attempt::Tried(sender.send(&message).await)
            }
            Channel::Webhook => {
                let Some(sender) = &self.webhook else {
                    return Attempt::Skipped(
                        Unreachable::NotConfigured(Channel::Webhook).to_string(),
                    );
                };
                if let Err(unreachable) =
                    recipient.reachability(Channel::Webhook, ChannelSet::all())
                {
                    return Attempt::Skipped(unreachable.to_string());
                }
                let (Some(url), Some(secret)) = (
                    recipient.webhook_url.clone(),
                    recipient.webhook_secret.clone(),
                ) else {
                    return Attempt::Skipped(Unreachable::NoWebhook.to_string());
                };
                let message = WebhookMessage {
                    delivery_id: delivery.id.clone(),
                    url,
                    secret,
                    body: crate::webhook::notification_created_body(notification, self.clock.now()),
                };
                Attempt::Tried(sender.send(&message).await)
            }
            Channel::Slack => self.attempt_slack(claimed, locale).await,
        }
    }
}

/// The update recording `moved`, the move the domain decided for `claimed`, with the audit row
/// of the try. `None` when the domain refused the move: the queue hands out only `sending`
/// deliveries, so that is a bug of the queue, logged; nothing is recorded then and the lease
/// lapses (the fencing would refuse an outcome for a delivery that is not `sending` anyway).
fn update(
    claimed: &ClaimedDelivery,
    moved: Result<DeliveryTransition, IllegalTransition>,
    attempt: Option<AttemptRecord>,
) -> Option<DeliveryUpdate> {
    match moved {
        Ok(transition) => Some(DeliveryUpdate::recording(claimed, transition, attempt)),
        Err(refused) => {
            tracing::error!(
                notification_id = %claimed.notification.id,
                delivery_id = %claimed.delivery.id,
                error = %refused,
                "the queue handed out a delivery that is not being sent; its outcome is not recorded"
            );
            None
        }
    }
}

/// An address a provider refused for good (as opposed to refusing one message), which the
/// dispatcher forgets so later notifications skip it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoneAddress {
    /// Telegram: the chat is gone or blocked the bot ([`telegram_chat_gone`]).
    TelegramChat,
    /// A signed webhook endpoint answered `410 Gone` ([`WEBHOOK_GONE`]).
    Webhook,
    /// The push service said the subscription is gone, `404`/`410` ([`PUSH_SUBSCRIPTION_GONE`]).
    PushSubscription,
    /// Slack refused the incoming webhook for good ([`SLACK_GONE`]).
    Slack,
}

impl GoneAddress {
    /// Which address a permanent refusal `cause` on `channel` names as gone, if any.
    fn of(channel: Channel, cause: &str) -> Option<Self> {
        match channel {
            Channel::Telegram if telegram_chat_gone(cause) => Some(Self::TelegramChat),
            Channel::Webhook if cause.starts_with(WEBHOOK_GONE) => Some(Self::Webhook),
            Channel::WebPush if cause.starts_with(PUSH_SUBSCRIPTION_GONE) => {
                Some(Self::PushSubscription)
            }
            Channel::Slack if cause.starts_with(SLACK_GONE) => Some(Self::Slack),
            _ => None,
        }
    }

    /// The address's name in logs.
    fn as_str(self) -> &'static str {
        match self {
            Self::TelegramChat => "telegram_chat",
            Self::Webhook => "webhook_url",
            Self::PushSubscription => "push_subscription",
            Self::Slack => "slack_webhook_url",
        }
    }
}

/// Whether a permanent Telegram refusal is about the chat itself (Bot API: 400 "Bad Request:
/// chat not found", 403 "Forbidden: bot was blocked by the user" / "user is deactivated"),
/// rather than about this one message: only then is the recipient's chat marked unreachable.
fn telegram_chat_gone(cause: &str) -> bool {
    [
        "chat not found",
        "bot was blocked by the user",
        "user is deactivated",
    ]
    .iter()
    .any(|needle| cause.contains(needle))
}

/// What a caught panic said: its `&str` or `String` payload (what `panic!` makes), else a
/// placeholder.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Faults a test build can inject (feature `fault-injection`, never in a release build): a
/// notification whose metadata holds `"clairon_fault": "panic"` makes its deliveries panic inside
/// the per-delivery guard; `"panic_round"` makes the whole round that claimed it panic outside
/// the guard, as a bug in the dispatcher itself would, for the binary's supervisor to catch;
/// `"panic_round:<channel>"` (say `panic_round:telegram`) does so only for the notification's
/// delivery on that channel, so the rest of its fallback chain can be watched.
#[cfg(feature = "fault-injection")]
pub mod fault {
    use crate::ports::ClaimedDelivery;

    /// The metadata key that asks for a fault.
    pub const KEY: &str = "clairon_fault";

    fn asked(claimed: &ClaimedDelivery, fault: &str) -> bool {
        let Some(asked) = claimed
            .notification
            .metadata
            .get(KEY)
            .and_then(serde_json::Value::as_str)
        else {
            return false;
        };
        match asked.split_once(':') {
            Some((asked, channel)) => {
                asked == fault && channel == claimed.delivery.channel.as_str()
            }
            None => asked == fault,
        }
    }

    /// Panics when this delivery's notification asks for `panic`.
    pub(crate) fn delivery(claimed: &ClaimedDelivery) {
        assert!(
            !asked(claimed, "panic"),
            "injected fault: this delivery panics"
        );
    }

    /// Panics when a delivery of the round's batch asks for `panic_round`.
    pub(crate) fn round(batch: &[ClaimedDelivery]) {
        assert!(
            !batch.iter().any(|c| asked(c, "panic_round")),
            "injected fault: this dispatcher round panics"
        );
    }
}

/// `now + wait`, saturating: a `retry_after` of centuries is still "later", never a panic.
fn later(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(wait)
        .ok()
        .and_then(|wait| now.checked_add_signed(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(crate) fn default_action_label(locale: Locale) -> &'static str {
    match locale {
        Locale::Fr => "Ouvrir",
        Locale::En => "Open",
    }
}

enum Attempt {
    Tried(SendOutcome),
    Skipped(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        EmailContent, MockDeliveryQueue, MockEmailSender, MockNotificationRepository,
        MockRealtimePublisher, MockRecipientRepository, MockRetrySchedule, MockTelegramSender,
        MockTemplateRenderer, TelegramContent,
    };
    use crate::test_support::{fixed_clock, notification, recipient, sequential_ids};
    use chrono::TimeZone as _;
    use clairon_domain::{ActionUrl, Delivery, DeliveryId, DeliveryStatus};
    use rstest::rstest;

    #[rstest]
    #[case::blocked_chat(
        Channel::Telegram,
        "Forbidden: bot was blocked by the user",
        Some(GoneAddress::TelegramChat)
    )]
    #[case::unknown_chat(
        Channel::Telegram,
        "Bad Request: chat not found",
        Some(GoneAddress::TelegramChat)
    )]
    #[case::bad_message(Channel::Telegram, "Bad Request: can't parse entities", None)]
    #[case::webhook_410(
        Channel::Webhook,
        "410 Gone: the endpoint is gone",
        Some(GoneAddress::Webhook)
    )]
    #[case::webhook_400(Channel::Webhook, "400 Bad Request", None)]
    #[case::push_gone(
        Channel::WebPush,
        "push subscription gone (410)",
        Some(GoneAddress::PushSubscription)
    )]
    #[case::slack_gone(
        Channel::Slack,
        "slack webhook gone: no_service",
        Some(GoneAddress::Slack)
    )]
    #[case::slack_other(Channel::Slack, "400 invalid_payload", None)]
    #[case::wrong_channel(Channel::Email, "slack webhook gone: no_service", None)]
    fn a_permanent_refusal_names_the_address_to_forget_only_when_the_address_itself_is_gone(
        #[case] channel: Channel,
        #[case] cause: &str,
        #[case] gone: Option<GoneAddress>,
    ) {
        assert_eq!(GoneAddress::of(channel, cause), gone);
    }

    /// The fixed clock's now.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap()
    }

    fn claimed(channel: Channel) -> ClaimedDelivery {
        let mut n = notification("n-1", "artist-1");
        n.action_url = Some(ActionUrl::parse("https://planning.example.org/p/1").unwrap());
        let mut delivery = Delivery::pending(
            DeliveryId::parse("d-1").unwrap(),
            n.id.clone(),
            n.recipient_id.clone(),
            channel,
            n.created_at,
        );
        delivery.status = DeliveryStatus::Sending;
        ClaimedDelivery {
            delivery,
            notification: n,
            recipient: recipient("artist-1"),
            request_id: Some("req-1".into()),
            claim: ClaimToken::new("claim-1"),
        }
    }

    /// A schedule that waits `40 s × attempts` and allows `max` tries in all.
    fn schedule(max: u32) -> MockRetrySchedule {
        let mut retry = MockRetrySchedule::new();
        retry
            .expect_delay_after()
            .returning(move |n| (n < max).then(|| Duration::from_secs(40 * u64::from(n))));
        retry
    }

    /// What one `dispatch_once` claimed with, and recorded.
    struct Round {
        channels: Vec<ChannelSet>,
        updates: Vec<DeliveryUpdate>,
        /// What `idle_wait` answers after the rounds, for a poll interval of 1 s.
        idle_wait: Duration,
    }

    /// Given claimed deliveries (one batch per round) and what the provider answers, when the
    /// dispatcher runs once per batch, then the channels it asked for and the updates recorded.
    async fn dispatch_rounds(
        batches: Vec<ClaimedDelivery>,
        answer: SendOutcome,
        retry: MockRetrySchedule,
        rounds: usize,
    ) -> Round {
        dispatch_with(
            batches,
            answer,
            retry,
            MockRecipientRepository::new(),
            rounds,
        )
        .await
    }

    async fn dispatch_with(
        batches: Vec<ClaimedDelivery>,
        answer: SendOutcome,
        retry: MockRetrySchedule,
        recipients: MockRecipientRepository,
        rounds: usize,
    ) -> Round {
        let mut queue = MockDeliveryQueue::new();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let asked_sink = asked.clone();
        let batches = Mutex::new(batches);
        queue
            .expect_claim_due()
            .times(rounds)
            .returning(move |_, _, _, channels| {
                asked_sink.lock().unwrap().push(channels);
                let mut batches = batches.lock().unwrap();
                let next: Vec<ClaimedDelivery> = batches
                    .iter()
                    .position(|c| channels.contains(c.delivery.channel))
                    .map(|i| vec![batches.remove(i)])
                    .unwrap_or_default();
                Ok(next)
            });
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = recorded.clone();
        queue.expect_record().returning(move |updates| {
            sink.lock().unwrap().extend_from_slice(updates);
            Ok(Vec::new())
        });
        let mut templates = MockTemplateRenderer::new();
        templates.expect_render_email().returning(|_, _, ctx| {
            Ok(EmailContent {
                subject: ctx["notification"]["title"].as_str().unwrap().into(),
                text: "text".into(),
                html: "<p>html</p>".into(),
            })
        });
        templates.expect_render_telegram().returning(|_, _, _| {
            Ok(TelegramContent {
                html: "<b>hi</b>".into(),
            })
        });
        let mut email = MockEmailSender::new();
        let email_answer = answer.clone();
        email
            .expect_send()
            .withf(|m| m.subject == "Titre" && m.to.as_str() == "artist-1@example.org")
            .returning(move |_| email_answer.clone());
        let mut telegram = MockTelegramSender::new();
        telegram
            .expect_send()
            .withf(|m| {
                m.button.as_ref().is_some_and(|b| {
                    b.url == "https://planning.example.org/p/1" && b.label == "Ouvrir"
                })
            })
            .returning(move |_| answer.clone());
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish().return_const(());
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_unread_counts()
            .returning(|ids| Ok(ids.iter().map(|id| (id.clone(), 1)).collect()));
        let dispatcher = DeliveryDispatcher::new(
            Arc::new(queue),
            Arc::new(notifications),
            Arc::new(recipients),
            Arc::new(templates),
            Arc::new(email),
            Some(Arc::new(telegram)),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
            Arc::new(retry),
            Locale::Fr,
            DispatchSettings::default(),
        );
        for _ in 0..rounds {
            dispatcher.dispatch_once().await.unwrap();
        }
        let channels = asked.lock().unwrap().clone();
        let updates = recorded.lock().unwrap().clone();
        let idle_wait = dispatcher.idle_wait(Duration::from_secs(1));
        Round {
            channels,
            updates,
            idle_wait,
        }
    }

    /// Given one claimed delivery and what its provider answers, when the dispatcher runs once,
    /// then the update it records.
    async fn dispatch(claim: ClaimedDelivery, answer: SendOutcome) -> DeliveryUpdate {
        let round = dispatch_rounds(vec![claim], answer, schedule(8), 1).await;
        round.updates[0].clone()
    }

    fn sent() -> SendOutcome {
        SendOutcome::Sent {
            provider_message_id: "provider-42".into(),
        }
    }

    #[rstest]
    #[case::normal(clairon_domain::Priority::Normal, true)]
    #[case::high(clairon_domain::Priority::High, true)]
    #[case::low(clairon_domain::Priority::Low, true)]
    #[case::critical(clairon_domain::Priority::Critical, false)]
    #[tokio::test]
    async fn an_email_carries_its_unsubscribe_link_unless_its_notification_is_critical(
        #[case] priority: clairon_domain::Priority,
        #[case] linked: bool,
    ) {
        // Arrange: an email delivery of that priority, and links that name who and what.
        let mut claim = claimed(Channel::Email);
        claim.notification.priority = priority;
        let mut queue = MockDeliveryQueue::new();
        let batch = Mutex::new(Some(vec![claim]));
        queue
            .expect_claim_due()
            .returning(move |_, _, _, _| Ok(batch.lock().unwrap().take().unwrap_or_default()));
        queue.expect_record().returning(|_| Ok(Vec::new()));
        let contexts = Arc::new(Mutex::new(Vec::new()));
        let seen = contexts.clone();
        let mut templates = MockTemplateRenderer::new();
        templates.expect_render_email().returning(move |_, _, ctx| {
            seen.lock().unwrap().push(ctx["unsubscribe_url"].clone());
            Ok(EmailContent {
                subject: "s".into(),
                text: "t".into(),
                html: "<p>h</p>".into(),
            })
        });
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sent_to = messages.clone();
        let mut email = MockEmailSender::new();
        email.expect_send().returning(move |m| {
            sent_to.lock().unwrap().push(m.unsubscribe_url.clone());
            sent()
        });
        let mut links = crate::ports::MockUnsubscribeLinks::new();
        links
            .expect_unsubscribe_url()
            .times(usize::from(linked))
            .returning(|r, t| {
                format!(
                    "https://x.example/unsubscribe/{}-{}",
                    r.as_str(),
                    t.as_str()
                )
            });
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_unread_counts()
            .returning(|ids| Ok(ids.iter().map(|id| (id.clone(), 1)).collect()));
        let dispatcher = DeliveryDispatcher::new(
            Arc::new(queue),
            Arc::new(notifications),
            Arc::new(MockRecipientRepository::new()),
            Arc::new(templates),
            Arc::new(email),
            None,
            Arc::new(MockRealtimePublisher::new()),
            Arc::new(fixed_clock()),
            Arc::new(schedule(8)),
            Locale::Fr,
            DispatchSettings::default(),
        )
        .with_unsubscribe_links(Arc::new(links));

        // Act
        dispatcher.dispatch_once().await.unwrap();

        // Assert: the same link in the headers and the templates' context, or none at all.
        let expected = linked.then(|| "https://x.example/unsubscribe/artist-1-custom".to_owned());
        assert_eq!(*messages.lock().unwrap(), vec![expected.clone()]);
        assert_eq!(*contexts.lock().unwrap(), vec![json!(expected)]);
    }

    #[rstest]
    #[case::email_sent(Channel::Email, sent(), DeliveryStatus::Sent, "sent")]
    #[case::email_transient(Channel::Email, SendOutcome::Transient("451 try later".into()), DeliveryStatus::Retrying, "transient")]
    #[case::email_permanent(Channel::Email, SendOutcome::Permanent("550 no such user".into()), DeliveryStatus::Failed, "permanent")]
    #[case::telegram_sent(Channel::Telegram, sent(), DeliveryStatus::Sent, "sent")]
    #[case::telegram_transient(Channel::Telegram, SendOutcome::Transient("502 bad gateway".into()), DeliveryStatus::Retrying, "transient")]
    #[case::telegram_permanent(Channel::Telegram, SendOutcome::Permanent("400 Bad Request: can't parse entities".into()), DeliveryStatus::Failed, "permanent")]
    #[tokio::test]
    async fn each_provider_answer_is_recorded_on_the_delivery_with_its_attempt(
        #[case] channel: Channel,
        #[case] answer: SendOutcome,
        #[case] status: DeliveryStatus,
        #[case] outcome: &str,
    ) {
        let update = dispatch(claimed(channel), answer).await;
        assert_eq!(update.status, status);
        assert_eq!(update.attempts, 1);
        let attempt = update.attempt.expect("an attempt row");
        assert_eq!(attempt.number, 1);
        assert_eq!(attempt.outcome.as_str(), outcome);
        assert_eq!(
            update.provider_message_id.is_some(),
            status == DeliveryStatus::Sent
        );
        assert_eq!(update.last_error.is_some(), status != DeliveryStatus::Sent);
        assert_eq!(
            update.next_attempt_at.is_some(),
            status == DeliveryStatus::Retrying
        );
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_after_the_scheduled_delay() {
        let mut claim = claimed(Channel::Email);
        claim.delivery.attempts = 2;

        let update = dispatch(claim, SendOutcome::Transient("451 try later".into())).await;

        assert_eq!(update.status, DeliveryStatus::Retrying);
        assert_eq!(update.attempts, 3, "the try is counted");
        assert_eq!(
            update.next_attempt_at,
            Some(now() + chrono::TimeDelta::seconds(120)),
            "the schedule's delay after 3 failed tries"
        );
        assert_eq!(update.last_error.as_deref(), Some("451 try later"));
        assert_eq!(update.attempt.unwrap().number, 3);
    }

    #[tokio::test]
    async fn a_transient_failure_on_the_last_attempt_makes_the_delivery_dead() {
        let mut claim = claimed(Channel::Email);
        claim.delivery.attempts = 7;

        let round = dispatch_rounds(
            vec![claim],
            SendOutcome::Transient("451 try later".into()),
            schedule(8),
            1,
        )
        .await;

        let update = &round.updates[0];
        assert_eq!(update.status, DeliveryStatus::Dead);
        assert_eq!(update.attempts, 8);
        assert_eq!(update.next_attempt_at, None);
        assert_eq!(update.last_error.as_deref(), Some("451 try later"));
    }

    #[tokio::test]
    async fn a_paced_destination_puts_its_delivery_back_unattempted_and_the_channel_goes_on() {
        let mut first = claimed(Channel::Telegram);
        first.delivery.attempts = 1;
        first.delivery.last_error = Some("502 bad gateway".into());
        let mut second = claimed(Channel::Telegram);
        second.delivery.id = DeliveryId::parse("d-2").unwrap();

        let round = dispatch_rounds(
            vec![first, second],
            SendOutcome::Paced {
                ready_in: Duration::from_millis(400),
            },
            schedule(8),
            2,
        )
        .await;

        assert_eq!(
            round.updates.len(),
            2,
            "the second round still claimed Telegram"
        );
        let update = &round.updates[0];
        assert_eq!(update.status, DeliveryStatus::Pending);
        assert_eq!(update.attempts, 1, "pacing is not an attempt");
        assert!(
            update.attempt.is_none(),
            "no audit row: the provider was not called"
        );
        assert_eq!(update.last_error.as_deref(), Some("502 bad gateway"));
        assert_eq!(
            update.next_attempt_at,
            Some(now() + chrono::TimeDelta::milliseconds(400))
        );
        assert!(
            round.channels[1].contains(Channel::Telegram),
            "pacing one chat does not pause the channel"
        );
        assert_eq!(
            round.idle_wait,
            Duration::from_millis(400),
            "an idle worker wakes when the put-back delivery is due, not a poll later"
        );
    }

    #[rstest]
    #[case::paced(SendOutcome::Paced { ready_in: Duration::from_millis(400) }, true)]
    #[case::sent(sent(), false)]
    #[case::transient(SendOutcome::Transient("502 bad gateway".into()), false)]
    #[case::rate_limited(SendOutcome::RateLimited { retry_after: Duration::from_secs(7) }, false)]
    #[case::permanent(SendOutcome::Permanent("400 Bad Request: message is too long".into()), false)]
    #[tokio::test]
    async fn only_a_paced_answer_marks_its_update_a_paced_put_back(
        #[case] answer: SendOutcome,
        #[case] paced: bool,
    ) {
        // Given a claimed Telegram delivery, when its provider answers, then the update says
        // whether it is put back for pacing: the queue claims a due put-back before fresh
        // deliveries of its priority (issue 12) on this flag alone, and any other outcome
        // clears it.
        let update = dispatch(claimed(Channel::Telegram), answer).await;

        assert_eq!(update.paced, paced, "{update:?}");
    }

    #[tokio::test]
    async fn a_rate_limit_is_not_an_attempt_and_pauses_the_channel() {
        let mut first = claimed(Channel::Telegram);
        first.delivery.attempts = 1;
        let mut second = claimed(Channel::Telegram);
        second.delivery.id = DeliveryId::parse("d-2").unwrap();

        let round = dispatch_rounds(
            vec![first, second],
            SendOutcome::RateLimited {
                retry_after: Duration::from_secs(7),
            },
            schedule(8),
            2,
        )
        .await;

        assert_eq!(round.updates.len(), 1, "the second round claimed nothing");
        let update = &round.updates[0];
        assert_eq!(update.status, DeliveryStatus::Retrying);
        assert_eq!(update.attempts, 1, "a 429 does not consume an attempt");
        assert_eq!(
            update.next_attempt_at,
            Some(now() + chrono::TimeDelta::seconds(7))
        );
        assert_eq!(
            update.attempt.as_ref().unwrap().outcome.as_str(),
            "rate_limited"
        );
        assert!(round.channels[0].contains(Channel::Telegram));
        assert!(
            !round.channels[1].contains(Channel::Telegram),
            "Telegram is paused for retry_after: {:?}",
            round.channels[1]
        );
        assert!(round.channels[1].contains(Channel::Email));
    }

    #[test]
    fn a_pause_ends_when_its_time_has_come() {
        let dispatcher = DeliveryDispatcher::new(
            Arc::new(MockDeliveryQueue::new()),
            Arc::new(MockNotificationRepository::new()),
            Arc::new(MockRecipientRepository::new()),
            Arc::new(MockTemplateRenderer::new()),
            Arc::new(MockEmailSender::new()),
            None,
            Arc::new(MockRealtimePublisher::new()),
            Arc::new(fixed_clock()),
            Arc::new(schedule(8)),
            Locale::Fr,
            DispatchSettings::default(),
        );
        dispatcher.pause(Channel::Telegram, now() + chrono::TimeDelta::seconds(5));

        assert!(!dispatcher
            .claimable_channels(now() + chrono::TimeDelta::seconds(4))
            .contains(Channel::Telegram));
        assert_eq!(
            dispatcher.claimable_channels(now() + chrono::TimeDelta::seconds(5)),
            ChannelSet::all()
        );
    }

    #[rstest]
    #[case::blocked("Telegram refused the message (403): Forbidden: bot was blocked by the user")]
    #[case::not_found("Telegram refused the message (400): Bad Request: chat not found")]
    #[tokio::test]
    async fn a_chat_telegram_refuses_for_good_is_remembered_on_the_recipient(#[case] cause: &str) {
        let mut recipients = MockRecipientRepository::new();
        let expected = cause.to_owned();
        recipients
            .expect_mark_telegram_unreachable()
            .withf(move |id, chat, reason| {
                id.as_str() == "artist-1" && chat.as_str() == "100000001" && reason == expected
            })
            .times(1)
            .returning(|_, _, _| Ok(()));

        let round = dispatch_with(
            vec![claimed(Channel::Telegram)],
            SendOutcome::Permanent(cause.into()),
            schedule(8),
            recipients,
            1,
        )
        .await;

        assert_eq!(round.updates[0].status, DeliveryStatus::Failed);
    }

    #[tokio::test]
    async fn a_permanent_refusal_of_one_message_does_not_mark_the_chat() {
        let round = dispatch_with(
            vec![claimed(Channel::Telegram)],
            SendOutcome::Permanent(
                "Telegram refused the message (400): Bad Request: can't parse entities".into(),
            ),
            schedule(8),
            MockRecipientRepository::new(),
            1,
        )
        .await;
        assert_eq!(round.updates[0].status, DeliveryStatus::Failed);
    }

    #[tokio::test]
    async fn a_chat_already_known_unreachable_is_skipped_at_dispatch_without_an_attempt() {
        let mut claim = claimed(Channel::Telegram);
        claim.recipient.telegram_unreachable =
            Some("Forbidden: bot was blocked by the user".into());
        let update = dispatch(claim, sent()).await;
        assert_eq!(update.status, DeliveryStatus::Skipped);
        assert!(update.attempt.is_none());
        assert!(update.last_error.unwrap().contains("bot was blocked"));
    }

    #[tokio::test]
    async fn in_app_deliveries_are_published_live_and_marked_sent() {
        let update = dispatch(claimed(Channel::InApp), sent()).await;
        assert_eq!(update.status, DeliveryStatus::Sent);
        assert_eq!(update.provider_message_id.as_deref(), Some("n-1"));
    }

    #[tokio::test]
    async fn an_email_address_removed_since_creation_skips_the_delivery_without_an_attempt() {
        let mut claim = claimed(Channel::Email);
        claim.recipient.email = None;
        let update = dispatch(claim, sent()).await;
        assert_eq!(update.status, DeliveryStatus::Skipped);
        assert!(update.attempt.is_none());
    }

    /// A queue handing out `batches` one per claim, recording what it is given, and refusing
    /// (as lost) the updates of `lost`.
    fn scripted_queue(
        batches: Vec<Vec<ClaimedDelivery>>,
        lost: Vec<DeliveryId>,
    ) -> (MockDeliveryQueue, Arc<Mutex<Vec<DeliveryUpdate>>>) {
        let mut queue = MockDeliveryQueue::new();
        let batches = Mutex::new(std::collections::VecDeque::from(batches));
        queue.expect_claim_due().returning(move |_, _, _, _| {
            Ok(batches.lock().unwrap().pop_front().unwrap_or_default())
        });
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = recorded.clone();
        queue.expect_record().returning(move |updates| {
            sink.lock().unwrap().extend_from_slice(updates);
            Ok(updates
                .iter()
                .filter(|u| lost.contains(&u.id))
                .map(|u| u.id.clone())
                .collect())
        });
        (queue, recorded)
    }

    fn templates() -> MockTemplateRenderer {
        let mut templates = MockTemplateRenderer::new();
        templates.expect_render_email().returning(|_, _, _| {
            Ok(EmailContent {
                subject: "Titre".into(),
                text: "text".into(),
                html: "<p>html</p>".into(),
            })
        });
        templates.expect_render_telegram().returning(|_, _, _| {
            Ok(TelegramContent {
                html: "<b>hi</b>".into(),
            })
        });
        templates
    }

    fn dispatcher_on(
        queue: MockDeliveryQueue,
        email: Arc<dyn EmailSender>,
        telegram: MockTelegramSender,
        settings: DispatchSettings,
    ) -> DeliveryDispatcher {
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish().return_const(());
        DeliveryDispatcher::new(
            Arc::new(queue),
            Arc::new(MockNotificationRepository::new()),
            Arc::new(MockRecipientRepository::new()),
            Arc::new(templates()),
            email,
            Some(Arc::new(telegram)),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
            Arc::new(schedule(8)),
            Locale::Fr,
            settings,
        )
    }

    fn telegram_sending() -> MockTelegramSender {
        let mut telegram = MockTelegramSender::new();
        telegram.expect_send().returning(|_| sent());
        telegram
    }

    fn with_id(mut claim: ClaimedDelivery, id: &str) -> ClaimedDelivery {
        claim.delivery.id = DeliveryId::parse(id).unwrap();
        claim
    }

    #[tokio::test]
    async fn a_panic_in_one_delivery_fails_that_delivery_and_the_batch_and_the_next_round_go_on() {
        // Arrange: a batch whose email panics in its sender, beside a Telegram delivery; then a
        // second batch with another email.
        let batches = vec![
            vec![
                with_id(claimed(Channel::Email), "d-email"),
                with_id(claimed(Channel::Telegram), "d-telegram"),
            ],
            vec![with_id(claimed(Channel::Telegram), "d-next")],
        ];
        let (queue, recorded) = scripted_queue(batches, Vec::new());
        let mut email = MockEmailSender::new();
        email
            .expect_send()
            .returning(|_| panic!("a Display implementation returned an error unexpectedly"));
        let dispatcher = dispatcher_on(
            queue,
            Arc::new(email),
            telegram_sending(),
            DispatchSettings::default(),
        );

        // Act
        let first = dispatcher.dispatch_once().await;
        let second = dispatcher.dispatch_once().await;

        // Assert
        assert_eq!(
            first.unwrap(),
            2,
            "the first round claimed and recorded both"
        );
        assert_eq!(
            second.unwrap(),
            1,
            "the dispatcher goes on with the next round"
        );
        let recorded = recorded.lock().unwrap().clone();
        let by_id = |id: &str| {
            recorded
                .iter()
                .find(|u| u.id.as_str() == id)
                .cloned()
                .unwrap()
        };
        let panicked = by_id("d-email");
        assert_eq!(
            panicked.status,
            DeliveryStatus::Failed,
            "the panicking delivery fails"
        );
        assert_eq!(panicked.attempts, 1, "its try is counted");
        let cause = panicked.last_error.unwrap();
        assert!(
            cause.contains("panicked") && cause.contains("Display implementation"),
            "the reason says it panicked and why: {cause}"
        );
        assert_eq!(panicked.attempt.unwrap().outcome.as_str(), "permanent");
        assert_eq!(
            by_id("d-telegram").status,
            DeliveryStatus::Sent,
            "its batch-mate is sent"
        );
        assert_eq!(
            by_id("d-next").status,
            DeliveryStatus::Sent,
            "the next batch is sent"
        );
    }

    #[tokio::test]
    async fn an_outcome_refused_for_a_lost_claim_is_not_reported_as_recorded() {
        // Arrange: two deliveries, the queue refusing one of them as lost.
        let batch = vec![
            with_id(claimed(Channel::Telegram), "d-kept"),
            with_id(claimed(Channel::Telegram), "d-lost"),
        ];
        let (queue, _) = scripted_queue(vec![batch], vec![DeliveryId::parse("d-lost").unwrap()]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let mut observer = crate::ports::MockDispatchObserver::new();
        observer
            .expect_recorded()
            .returning(move |_, u| sink.lock().unwrap().push(u.id.to_string()));
        let dispatcher = dispatcher_on(
            queue,
            Arc::new(MockEmailSender::new()),
            telegram_sending(),
            DispatchSettings::default(),
        )
        .with_observer(Arc::new(observer));

        // Act
        dispatcher.dispatch_once().await.unwrap();

        // Assert
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["d-kept".to_owned()],
            "only the outcome the queue recorded reaches the metrics"
        );
    }

    #[tokio::test]
    async fn an_outcome_the_domain_refuses_is_not_recorded_and_its_batch_mates_are() {
        // Arrange: a queue that (wrongly) hands out a delivery still `pending`, beside a
        // claimed one.
        let mut unclaimed = with_id(claimed(Channel::Telegram), "d-pending");
        unclaimed.delivery.status = DeliveryStatus::Pending;
        let batch = vec![unclaimed, with_id(claimed(Channel::Telegram), "d-claimed")];
        let (queue, recorded) = scripted_queue(vec![batch], Vec::new());
        let dispatcher = dispatcher_on(
            queue,
            Arc::new(MockEmailSender::new()),
            telegram_sending(),
            DispatchSettings::default(),
        );

        // Act
        let claimed = dispatcher.dispatch_once().await.unwrap();

        // Assert
        assert_eq!(claimed, 2, "both were handed out");
        let recorded: Vec<String> = recorded
            .lock()
            .unwrap()
            .iter()
            .map(|u| format!("{} {}", u.id, u.status))
            .collect();
        assert_eq!(
            recorded,
            vec!["d-claimed sent".to_owned()],
            "pending → sent is refused, so only the claimed delivery's outcome is recorded"
        );
    }

    /// Beats at once (no real wait) and remembers how long it was asked to wait.
    #[derive(Default)]
    struct InstantTimer {
        asked: Mutex<Vec<Duration>>,
    }

    #[async_trait::async_trait]
    impl Timer for InstantTimer {
        async fn sleep(&self, duration: Duration) {
            self.asked.lock().unwrap().push(duration);
            tokio::task::yield_now().await;
        }
    }

    /// Every renewal a queue was asked for: the claims, and until when.
    type Renewals = Arc<Mutex<Vec<(Vec<(DeliveryId, ClaimToken)>, DateTime<Utc>)>>>;

    /// An email provider that answers only once the batch's leases were renewed `beats` times.
    struct SlowEmail {
        renewals: Renewals,
        beats: usize,
    }

    #[async_trait::async_trait]
    impl EmailSender for SlowEmail {
        async fn send(&self, _: &EmailMessage) -> SendOutcome {
            while self.renewals.lock().unwrap().len() < self.beats {
                tokio::task::yield_now().await;
            }
            sent()
        }
    }

    /// A queue with one batch whose renewals are recorded; `keep` says which ids it still
    /// holds at each renewal.
    fn renewing_queue(
        batch: Vec<ClaimedDelivery>,
        renewals: Renewals,
        keep: impl Fn(&DeliveryId) -> bool + Send + Sync + 'static,
    ) -> MockDeliveryQueue {
        let (mut queue, _) = scripted_queue(vec![batch], Vec::new());
        queue.expect_renew().returning(move |claims, until| {
            renewals.lock().unwrap().push((claims.to_vec(), until));
            Ok(claims
                .iter()
                .map(|(id, _)| id.clone())
                .filter(|id| keep(id))
                .collect())
        });
        queue
    }

    #[tokio::test]
    async fn a_batch_in_flight_has_its_leases_renewed_every_third_of_the_lease() {
        // Arrange: an email that takes three heartbeats to send.
        let renewals = Arc::new(Mutex::new(Vec::new()));
        let queue = renewing_queue(
            vec![with_id(claimed(Channel::Email), "d-slow")],
            renewals.clone(),
            |_| true,
        );
        let timer = Arc::new(InstantTimer::default());
        let settings = DispatchSettings {
            batch_size: 64,
            lease: Duration::from_secs(60),
        };
        let email = SlowEmail {
            renewals: renewals.clone(),
            beats: 3,
        };
        let dispatcher = dispatcher_on(queue, Arc::new(email), telegram_sending(), settings)
            .with_lease_heartbeat(timer.clone());

        // Act (bounded: without a heartbeat the email would wait for ever)
        let claimed = tokio::time::timeout(Duration::from_secs(10), dispatcher.dispatch_once())
            .await
            .expect("the batch is sent once its leases were renewed")
            .unwrap();

        // Assert
        assert_eq!(claimed, 1);
        let renewals = renewals.lock().unwrap().clone();
        assert!(
            renewals.len() >= 3,
            "renewed while sending: {}",
            renewals.len()
        );
        for (claims, until) in &renewals {
            assert_eq!(
                claims,
                &vec![(
                    DeliveryId::parse("d-slow").unwrap(),
                    ClaimToken::new("claim-1")
                )],
                "the batch's delivery is renewed under its claim"
            );
            assert_eq!(
                *until,
                now() + chrono::TimeDelta::seconds(60),
                "each renewal extends the lease by a whole lease from now"
            );
        }
        assert!(
            timer
                .asked
                .lock()
                .unwrap()
                .iter()
                .all(|d| *d == Duration::from_secs(20)),
            "the heartbeat beats every third of the lease: {:?}",
            timer.asked.lock().unwrap()
        );
    }

    #[tokio::test]
    async fn a_lease_lost_while_sending_is_no_longer_renewed() {
        // Arrange: two deliveries, the queue saying at the first renewal that one of them has
        // another holder now; the batch takes three heartbeats.
        let renewals = Arc::new(Mutex::new(Vec::new()));
        let queue = renewing_queue(
            vec![
                with_id(claimed(Channel::Email), "d-kept"),
                with_id(claimed(Channel::Email), "d-taken"),
            ],
            renewals.clone(),
            |id| id.as_str() == "d-kept",
        );
        let email = SlowEmail {
            renewals: renewals.clone(),
            beats: 3,
        };
        let dispatcher = dispatcher_on(
            queue,
            Arc::new(email),
            telegram_sending(),
            DispatchSettings::default(),
        )
        .with_lease_heartbeat(Arc::new(InstantTimer::default()));

        // Act (bounded: without a heartbeat the emails would wait for ever)
        tokio::time::timeout(Duration::from_secs(10), dispatcher.dispatch_once())
            .await
            .expect("the batch is sent once its leases were renewed")
            .unwrap();

        // Assert
        let renewals = renewals.lock().unwrap().clone();
        assert_eq!(renewals[0].0.len(), 2, "the first beat renews both");
        for (claims, _) in &renewals[1..] {
            let ids: Vec<&str> = claims.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(ids, vec!["d-kept"], "the lost one is not renewed again");
        }
    }

    #[rstest]
    #[case::permanent(SendOutcome::Permanent("400 Bad Request: can't parse entities".into()), Some(Channel::Email))]
    #[case::sent(sent(), None)]
    #[case::transient_with_tries_left(SendOutcome::Transient("502 bad gateway".into()), None)]
    #[case::rate_limited(SendOutcome::RateLimited { retry_after: Duration::from_secs(3) }, None)]
    #[tokio::test]
    async fn a_chain_goes_on_to_its_next_channel_only_when_its_link_gives_up(
        #[case] answer: SendOutcome,
        #[case] next: Option<Channel>,
    ) {
        // Arrange: a Telegram delivery opening the chain telegram → email → sms.
        let mut claim = with_id(claimed(Channel::Telegram), "d-telegram");
        claim.delivery = claim
            .delivery
            .in_chain(None, vec![Channel::Email, Channel::Sms]);
        let (queue, recorded) = scripted_queue(vec![vec![claim]], Vec::new());
        let mut telegram = MockTelegramSender::new();
        telegram.expect_send().returning(move |_| answer.clone());
        let dispatcher = dispatcher_on(
            queue,
            Arc::new(MockEmailSender::new()),
            telegram,
            DispatchSettings::default(),
        )
        .with_fallback_ids(Arc::new(sequential_ids()));

        // Act
        dispatcher.dispatch_once().await.unwrap();

        // Assert: the next link is written with the outcome, standing in for the Telegram one
        // and carrying the rest of the chain; nothing while Telegram may still get through.
        let updates = recorded.lock().unwrap().clone();
        assert_eq!(updates.len(), 1);
        let link = updates[0].fallback.as_ref().map(|l| &l.delivery);
        assert_eq!(link.map(|d| d.channel), next);
        if let Some(link) = link {
            assert_eq!(link.status, DeliveryStatus::Pending);
            assert_eq!(
                link.fallback_of.as_ref().map(DeliveryId::as_str),
                Some("d-telegram")
            );
            assert_eq!(link.fallback, vec![Channel::Sms]);
            assert_eq!(updates[0].status, DeliveryStatus::Failed);
        }
    }

    #[tokio::test]
    async fn a_link_skipped_at_dispatch_hands_over_too() {
        // Arrange: the chain telegram → email, for a recipient whose chat id is gone.
        let mut claim = with_id(claimed(Channel::Telegram), "d-telegram");
        claim.recipient.telegram_chat_id = None;
        claim.delivery = claim.delivery.in_chain(None, vec![Channel::Email]);
        let (queue, recorded) = scripted_queue(vec![vec![claim]], Vec::new());
        let dispatcher = dispatcher_on(
            queue,
            Arc::new(MockEmailSender::new()),
            MockTelegramSender::new(),
            DispatchSettings::default(),
        )
        .with_fallback_ids(Arc::new(sequential_ids()));

        // Act
        dispatcher.dispatch_once().await.unwrap();

        // Assert
        let updates = recorded.lock().unwrap().clone();
        assert_eq!(updates[0].status, DeliveryStatus::Skipped);
        let link = &updates[0].fallback.as_ref().expect("a next link").delivery;
        assert_eq!((link.channel, link.fallback.len()), (Channel::Email, 0));
    }
}

#[cfg(test)]
#[path = "dispatch_sms_tests.rs"]
mod sms_tests;

#[cfg(test)]
#[path = "dispatch_slack_tests.rs"]
mod slack_tests;
