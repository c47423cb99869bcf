//! The dead-letter alert (issue 13, "Alerts"): more than `CLAIRON_ALERT_DEAD_LETTERS` (10 by
//! default) deliveries going `dead` within an hour emits the domain event
//! `deliveries.dead_letters` `{count, threshold, window_minutes, window_start, window_end,
//! samples: [{delivery_id, channel, error, dead_at}]}`, routed like `job.failed` (the built-in
//! rule: topic `admins`, priority `high`, every channel its members have), at most once an hour.
//!
//! The `dead_letter_alert` job runs [`DeadLetterAlert::check`] every minute: it counts the
//! deliveries now `dead` whose move to `dead` is less than an hour old
//! ([`DeadLetterSource::dead_since`]); over the threshold, it takes the hour through the
//! [`AlertThrottle`] (one conditional write in the database, so of several processes one
//! raises it, and never twice within [`WINDOW`]) and publishes the event on the [`EventBus`].
//! A threshold of `0` switches the alert off.
//!
//! The event id is `dead-letters-<UTC instant it was raised>` (`dead-letters-20270314T120000Z`),
//! so a retried publication of one alert creates nothing new.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use clairon_domain::{Body, EventType, GenericEvent, NotificationKind, SourceEventId, Title};
use serde_json::{json, Map, Value};

use crate::events::{DomainEvent, EventBus, PublishError};
use crate::ports::{AlertThrottle, Clock, DeadLetterSource, DeadLetters, RepositoryError};

/// The event type of too many deliveries going `dead`.
pub const DEAD_LETTERS: &str = "deliveries.dead_letters";

/// The window the deliveries are counted over, and the least time between two alerts: 1 hour.
pub const WINDOW: TimeDelta = TimeDelta::hours(1);

/// How many dead deliveries an alert quotes (the newest).
pub const SAMPLES: usize = 5;

/// The longest error quoted per sample, in characters.
const MAX_SAMPLE_ERROR_CHARS: usize = 300;

/// What one check found: the job run's `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadLetterCheck {
    /// The threshold (`0`: the alert is off and nothing was counted).
    pub threshold: u32,
    /// Deliveries that went `dead` within the last hour.
    pub dead: u64,
    /// Whether this check raised the alert.
    pub raised: bool,
    /// Over the threshold, but already raised within the hour (by this process or another).
    pub throttled: bool,
    /// Notifications the alert created (0 when it reached nobody).
    pub notifications: usize,
}

impl DeadLetterCheck {
    /// As the job run's `stats` object.
    pub fn to_json(self) -> Value {
        json!({
            "threshold": self.threshold,
            "enabled": self.threshold > 0,
            "dead": self.dead,
            "window_minutes": WINDOW.num_minutes(),
            "raised": self.raised,
            "throttled": self.throttled,
            "notifications": self.notifications,
        })
    }
}

/// Counts the deliveries that went `dead` within the hour and raises `deliveries.dead_letters`
/// over the threshold, at most once an hour.
pub struct DeadLetterAlert {
    source: Arc<dyn DeadLetterSource>,
    throttle: Arc<dyn AlertThrottle>,
    bus: Arc<EventBus>,
    clock: Arc<dyn Clock>,
    threshold: u32,
}

impl DeadLetterAlert {
    /// The check on its ports: more than `threshold` dead deliveries within an hour raise the
    /// alert (`CLAIRON_ALERT_DEAD_LETTERS`; `0`: never).
    pub fn new(
        source: Arc<dyn DeadLetterSource>,
        throttle: Arc<dyn AlertThrottle>,
        bus: Arc<EventBus>,
        clock: Arc<dyn Clock>,
        threshold: u32,
    ) -> Self {
        Self {
            source,
            throttle,
            bus,
            clock,
            threshold,
        }
    }

    /// The domain event of `letters`, counted over the hour before `now`; `None` when its texts
    /// cannot make one (in practice always `Some`).
    pub fn event(&self, letters: &DeadLetters, now: DateTime<Utc>) -> Option<GenericEvent> {
        let start = now - WINDOW;
        let id = format!("dead-letters-{}", now.format("%Y%m%dT%H%M%SZ"));
        let title = format!(
            "{} deliveries went dead within the hour (threshold {})",
            letters.count, self.threshold
        );
        let mut body = format!(
            "{} deliveries went dead between {} and {} UTC, more than the {} allowed.",
            letters.count,
            start.format("%Y-%m-%d %H:%M"),
            now.format("%H:%M"),
            self.threshold
        );
        let mut samples = Vec::new();
        for letter in &letters.samples {
            let error: Option<String> = letter
                .error
                .as_deref()
                .map(|e| e.chars().take(MAX_SAMPLE_ERROR_CHARS).collect());
            body.push_str(&format!(
                "\n{} ({}): {}",
                letter.delivery_id,
                letter.channel.as_str(),
                error.as_deref().unwrap_or("no error recorded")
            ));
            samples.push(json!({
                "delivery_id": letter.delivery_id,
                "channel": letter.channel.as_str(),
                "error": error,
                "dead_at": letter.dead_at.to_rfc3339(),
            }));
        }
        let mut data = Map::new();
        data.insert("count".into(), json!(letters.count));
        data.insert("threshold".into(), json!(self.threshold));
        data.insert("window_minutes".into(), json!(WINDOW.num_minutes()));
        data.insert("window_start".into(), json!(start.to_rfc3339()));
        data.insert("window_end".into(), json!(now.to_rfc3339()));
        data.insert("samples".into(), Value::Array(samples));
        Some(GenericEvent {
            event_id: SourceEventId::parse(&id).ok()?,
            event_type: EventType::parse(DEAD_LETTERS).ok()?,
            occurred_at: now,
            recipient_ids: Vec::new(),
            topics: Vec::new(),
            title: Title::parse(&title).ok()?,
            body: Body::parse(&body).ok()?,
            action_url: None,
            action_label: None,
            priority: None,
            kind: NotificationKind::Warning,
            channels: None,
            fallback: Vec::new(),
            data,
        })
    }

    /// One check: counts, and over the threshold takes the hour and publishes the alert.
    ///
    /// # Errors
    /// [`RepositoryError`] when the count or the throttle cannot be read or written, or when
    /// the alert, once the hour was taken, cannot be routed (the run then ends `error`, which
    /// emits `job.failed`; the hour stays taken).
    pub async fn check(&self) -> Result<DeadLetterCheck, RepositoryError> {
        let mut check = DeadLetterCheck {
            threshold: self.threshold,
            ..DeadLetterCheck::default()
        };
        if self.threshold == 0 {
            return Ok(check);
        }
        let now = self.clock.now();
        let letters = self.source.dead_since(now - WINDOW, SAMPLES).await?;
        check.dead = letters.count;
        if letters.count <= u64::from(self.threshold) {
            return Ok(check);
        }
        if !self.throttle.try_raise(DEAD_LETTERS, now, WINDOW).await? {
            check.throttled = true;
            return Ok(check);
        }
        check.raised = true;
        tracing::warn!(
            target: "clairon::jobs",
            event = DEAD_LETTERS,
            dead = letters.count,
            threshold = self.threshold,
            "deliveries.dead_letters"
        );
        let Some(event) = self.event(&letters, now) else {
            return Err(RepositoryError::Corrupt(
                "deliveries.dead_letters could not be made into an event".into(),
            ));
        };
        match self.bus.publish(&DomainEvent::Generic(event)).await {
            Ok(created) => check.notifications = created.len(),
            Err(PublishError::NoRecipient) => tracing::warn!(
                target: "clairon::jobs",
                "deliveries.dead_letters reached nobody: add members to topic `admins` (or route deliveries.dead_letters elsewhere)"
            ),
            Err(PublishError::Duplicate(_)) => {}
            Err(PublishError::Repository(error)) => return Err(error),
            Err(error) => {
                return Err(RepositoryError::Corrupt(format!(
                    "deliveries.dead_letters could not be routed: {error}"
                )))
            }
        }
        Ok(check)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use clairon_domain::Channel;

    use super::*;
    use crate::commands::CreatedNotification;
    use crate::events::EventListener;
    use crate::ports::{DeadLetter, MockAlertThrottle, MockDeadLetterSource};
    use crate::test_support::fixed_clock;

    /// Records the events published, creating nothing.
    #[derive(Default)]
    struct Heard(Mutex<Vec<GenericEvent>>);

    #[async_trait]
    impl EventListener for Heard {
        fn name(&self) -> &'static str {
            "Heard"
        }

        async fn handle(
            &self,
            event: &DomainEvent,
        ) -> Result<Vec<CreatedNotification>, PublishError> {
            if let DomainEvent::Generic(event) = event {
                self.0.lock().unwrap().push(event.clone());
            }
            Ok(Vec::new())
        }
    }

    fn dead(count: u64) -> DeadLetters {
        DeadLetters {
            count,
            samples: (0..count.min(SAMPLES as u64))
                .map(|i| DeadLetter {
                    delivery_id: format!("delivery-{i}"),
                    channel: Channel::Email,
                    error: Some("554 5.7.1 refused".into()),
                    dead_at: fixed_clock().now(),
                })
                .collect(),
        }
    }

    fn alert(
        source: MockDeadLetterSource,
        throttle: MockAlertThrottle,
        threshold: u32,
    ) -> (DeadLetterAlert, Arc<Heard>) {
        let bus = Arc::new(EventBus::new());
        let heard = Arc::new(Heard::default());
        bus.subscribe(heard.clone());
        let alert = DeadLetterAlert::new(
            Arc::new(source),
            Arc::new(throttle),
            bus,
            Arc::new(fixed_clock()),
            threshold,
        );
        (alert, heard)
    }

    #[tokio::test]
    async fn eleven_deliveries_dead_within_the_hour_raise_one_alert_with_count_window_and_samples()
    {
        let now = fixed_clock().now();
        let mut source = MockDeadLetterSource::new();
        source
            .expect_dead_since()
            .withf(move |since, samples| *since == now - WINDOW && *samples == SAMPLES)
            .times(1)
            .returning(|_, _| Ok(dead(11)));
        let mut throttle = MockAlertThrottle::new();
        throttle
            .expect_try_raise()
            .withf(move |alert, at, period| {
                alert == DEAD_LETTERS && *at == now && *period == WINDOW
            })
            .times(1)
            .returning(|_, _, _| Ok(true));
        let (alert, heard) = alert(source, throttle, 10);

        let check = alert.check().await.unwrap();

        assert!(check.raised && !check.throttled, "{check:?}");
        assert_eq!(check.dead, 11);
        let events = heard.0.lock().unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.event_type.as_str(), "deliveries.dead_letters");
        assert!(event.event_id.as_str().starts_with("dead-letters-"));
        assert!(
            event.recipient_ids.is_empty() && event.topics.is_empty(),
            "the rules decide"
        );
        assert_eq!(event.data["count"], 11);
        assert_eq!(event.data["threshold"], 10);
        assert_eq!(event.data["window_minutes"], 60);
        assert_eq!(event.data["window_end"], now.to_rfc3339());
        let samples = event.data["samples"].as_array().unwrap();
        assert_eq!(samples.len(), SAMPLES);
        assert_eq!(samples[0]["delivery_id"], "delivery-0");
        assert_eq!(samples[0]["channel"], "email");
        assert_eq!(samples[0]["error"], "554 5.7.1 refused");
        assert!(event.body.as_str().contains("delivery-0 (email)"));
    }

    #[tokio::test]
    async fn an_alert_already_raised_within_the_hour_is_not_raised_again() {
        let mut source = MockDeadLetterSource::new();
        source.expect_dead_since().returning(|_, _| Ok(dead(40)));
        let mut throttle = MockAlertThrottle::new();
        throttle
            .expect_try_raise()
            .times(1)
            .returning(|_, _, _| Ok(false));
        let (alert, heard) = alert(source, throttle, 10);

        let check = alert.check().await.unwrap();

        assert!(check.throttled && !check.raised, "{check:?}");
        assert!(heard.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn as_many_dead_deliveries_as_the_threshold_raise_nothing_and_take_no_hour() {
        let mut source = MockDeadLetterSource::new();
        source.expect_dead_since().returning(|_, _| Ok(dead(10)));
        let mut throttle = MockAlertThrottle::new();
        throttle.expect_try_raise().never();
        let (alert, heard) = alert(source, throttle, 10);

        let check = alert.check().await.unwrap();

        assert_eq!((check.dead, check.raised), (10, false));
        assert!(heard.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_threshold_of_zero_switches_the_alert_off_without_counting() {
        let mut source = MockDeadLetterSource::new();
        source.expect_dead_since().never();
        let mut throttle = MockAlertThrottle::new();
        throttle.expect_try_raise().never();
        let (alert, heard) = alert(source, throttle, 0);

        let check = alert.check().await.unwrap();

        assert_eq!(check.to_json()["enabled"], false);
        assert!(heard.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_count_that_cannot_be_read_fails_the_check() {
        let mut source = MockDeadLetterSource::new();
        source
            .expect_dead_since()
            .returning(|_, _| Err(RepositoryError::Unavailable("database is locked".into())));
        let (alert, _) = alert(source, MockAlertThrottle::new(), 10);

        let error = alert.check().await.unwrap_err();

        assert!(error.to_string().contains("database is locked"), "{error}");
    }
}
