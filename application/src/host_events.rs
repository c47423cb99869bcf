//! [`HostEventWorker`]: posts the host-event outbox to the host application (issue 12,
//! `CLAIRON_EVENTS_WEBHOOK_URL`), apart from the delivery dispatcher.
//!
//! It has its own loop (bootstrap spawns it on its own task, with its own HTTP client), so a
//! slow or dead host endpoint only ever holds this worker: deliveries never wait for it. Events
//! are claimed in batches under a lease ([`HostEventOutbox::claim_due`]) and posted one after the
//! other; each outcome is recorded as soon as it is known. `2xx` → `sent`; anything else (a
//! non-`2xx` status, a timeout, a connection error) → `pending` again after the
//! [`RetrySchedule`]'s delay (exponential backoff with full jitter), or `dead` once the schedule
//! has no next try (`CLAIRON_EVENTS_WEBHOOK_MAX_ATTEMPTS`). A `4xx` is retried too, as Standard
//! Webhooks senders do: a host refusing events is most often a host being misconfigured or
//! redeployed, and giving up at once would lose what it will accept once fixed.

use std::sync::Arc;
use std::time::Duration;

use crate::ports::{
    Clock, HostEvent, HostEventOutbox, HostEventOutcome, HostEventSender, RepositoryError,
    RetrySchedule,
};

/// How the worker claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostEventSettings {
    /// Events per claim (at least 1).
    pub batch_size: u32,
    /// How long a claim holds its events: longer than the batch can take to post
    /// (`batch_size` × the HTTP timeout), else another process may post them as well.
    pub lease: Duration,
}

/// What one round of the worker did, for its caller's logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostEventRound {
    /// Events the host answered `2xx`.
    pub sent: usize,
    /// Events to try again later.
    pub retried: usize,
    /// Events given up on (`dead`).
    pub dead: usize,
}

impl HostEventRound {
    /// Events posted this round, whatever their outcome.
    pub fn posted(&self) -> usize {
        self.sent + self.retried + self.dead
    }
}

/// Posts due host events: claim → post → record.
pub struct HostEventWorker {
    outbox: Arc<dyn HostEventOutbox>,
    sender: Arc<dyn HostEventSender>,
    clock: Arc<dyn Clock>,
    retry: Arc<dyn RetrySchedule>,
    settings: HostEventSettings,
}

impl std::fmt::Debug for HostEventWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostEventWorker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HostEventWorker {
    /// A worker posting `outbox`'s events through `sender`, reading "now" from `clock` and
    /// the delay before a retry from `retry` (its maximum number of tries makes an event dead).
    pub fn new(
        outbox: Arc<dyn HostEventOutbox>,
        sender: Arc<dyn HostEventSender>,
        clock: Arc<dyn Clock>,
        retry: Arc<dyn RetrySchedule>,
        settings: HostEventSettings,
    ) -> Self {
        Self {
            outbox,
            sender,
            clock,
            retry,
            settings,
        }
    }

    /// Claims one batch of due events, posts each and records its outcome; returns what
    /// happened (nothing posted: nothing was due).
    ///
    /// # Errors
    /// [`RepositoryError`] when the claim fails, or when recording an outcome fails (the events
    /// not recorded are posted again once their lease lapses: at least once).
    pub async fn run_once(&self) -> Result<HostEventRound, RepositoryError> {
        let claimed = self
            .outbox
            .claim_due(
                self.clock.now(),
                self.settings.lease,
                self.settings.batch_size.max(1),
            )
            .await?;
        let mut round = HostEventRound::default();
        for event in claimed {
            self.post(&event, &mut round).await?;
        }
        Ok(round)
    }

    async fn post(
        &self,
        event: &HostEvent,
        round: &mut HostEventRound,
    ) -> Result<(), RepositoryError> {
        let attempts = event.attempts.saturating_add(1);
        match self.sender.send(event).await {
            HostEventOutcome::Delivered => {
                self.outbox
                    .mark_sent(&event.id, attempts, self.clock.now())
                    .await?;
                round.sent += 1;
            }
            HostEventOutcome::Failed(error) => match self.retry.delay_after(attempts) {
                Some(delay) => {
                    let next = chrono::TimeDelta::from_std(delay)
                        .ok()
                        .and_then(|d| self.clock.now().checked_add_signed(d))
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
                    tracing::debug!(event_id = %event.id, attempts, error = %error, "host event not taken; retrying later");
                    self.outbox
                        .mark_retry(&event.id, attempts, next, &error)
                        .await?;
                    round.retried += 1;
                }
                None => {
                    tracing::warn!(event_id = %event.id, event_type = %event.event_type, attempts, error = %error, "host event dead: the host did not take it in the tries allowed");
                    self.outbox.mark_dead(&event.id, attempts, &error).await?;
                    round.dead += 1;
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockClock, MockHostEventOutbox, MockHostEventSender, MockRetrySchedule};
    use chrono::{DateTime, TimeZone as _, Utc};
    use mockall::predicate::eq;
    use mockall::Sequence;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 14, 9, 0, 0).unwrap()
    }

    fn event(attempts: u32) -> HostEvent {
        HostEvent {
            id: "0193a5f0-0000-7000-8000-000000000001".into(),
            event_type: "delivery.sent".into(),
            payload: r#"{"type":"delivery.sent","timestamp":"2027-03-14T09:00:00Z","data":{}}"#
                .into(),
            attempts,
        }
    }

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        Arc::new(clock)
    }

    fn settings() -> HostEventSettings {
        HostEventSettings {
            batch_size: 8,
            lease: Duration::from_secs(70),
        }
    }

    fn claiming(outbox: &mut MockHostEventOutbox, events: Vec<HostEvent>) {
        outbox
            .expect_claim_due()
            .with(eq(now()), eq(Duration::from_secs(70)), eq(8))
            .times(1)
            .return_once(move |_, _, _| Ok(events));
    }

    fn worker(
        outbox: MockHostEventOutbox,
        sender: MockHostEventSender,
        retry: MockRetrySchedule,
    ) -> HostEventWorker {
        HostEventWorker::new(
            Arc::new(outbox),
            Arc::new(sender),
            clock(),
            Arc::new(retry),
            settings(),
        )
    }

    #[tokio::test]
    async fn an_event_the_host_answers_2xx_is_recorded_sent_after_one_try() {
        let mut outbox = MockHostEventOutbox::new();
        claiming(&mut outbox, vec![event(0)]);
        outbox
            .expect_mark_sent()
            .with(eq(event(0).id), eq(1), eq(now()))
            .times(1)
            .returning(|_, _, _| Ok(()));
        outbox.expect_mark_retry().never();
        outbox.expect_mark_dead().never();
        let mut sender = MockHostEventSender::new();
        sender
            .expect_send()
            .withf(|e| e.payload.contains("delivery.sent"))
            .times(1)
            .returning(|_| HostEventOutcome::Delivered);
        let round = worker(outbox, sender, MockRetrySchedule::new())
            .run_once()
            .await
            .unwrap();
        assert_eq!(
            round,
            HostEventRound {
                sent: 1,
                retried: 0,
                dead: 0
            }
        );
    }

    #[tokio::test]
    async fn a_500_keeps_the_event_pending_with_the_backoff_delay_and_the_next_2xx_sends_it() {
        let mut outbox = MockHostEventOutbox::new();
        let mut order = Sequence::new();
        outbox
            .expect_claim_due()
            .times(1)
            .in_sequence(&mut order)
            .return_once(|_, _, _| Ok(vec![event(0)]));
        outbox
            .expect_mark_retry()
            .with(
                eq(event(0).id),
                eq(1),
                eq(now() + chrono::TimeDelta::seconds(5)),
                eq("host answered 500".to_owned()),
            )
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _, _, _| Ok(()));
        outbox
            .expect_claim_due()
            .times(1)
            .in_sequence(&mut order)
            .return_once(|_, _, _| Ok(vec![event(1)]));
        outbox
            .expect_mark_sent()
            .with(eq(event(0).id), eq(2), eq(now()))
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _, _| Ok(()));
        outbox.expect_mark_dead().never();
        let mut sender = MockHostEventSender::new();
        let mut answers = vec![
            HostEventOutcome::Delivered,
            HostEventOutcome::Failed("host answered 500".into()),
        ];
        sender
            .expect_send()
            .times(2)
            .returning(move |_| answers.pop().unwrap());
        let mut retry = MockRetrySchedule::new();
        retry
            .expect_delay_after()
            .with(eq(1))
            .times(1)
            .returning(|_| Some(Duration::from_secs(5)));
        let worker = worker(outbox, sender, retry);
        assert_eq!(worker.run_once().await.unwrap().retried, 1);
        assert_eq!(worker.run_once().await.unwrap().sent, 1);
    }

    #[tokio::test]
    async fn an_event_failing_its_last_allowed_try_is_parked_dead_with_the_cause() {
        let mut outbox = MockHostEventOutbox::new();
        claiming(&mut outbox, vec![event(11)]);
        outbox
            .expect_mark_dead()
            .with(eq(event(11).id), eq(12), eq("host timed out".to_owned()))
            .times(1)
            .returning(|_, _, _| Ok(()));
        outbox.expect_mark_retry().never();
        outbox.expect_mark_sent().never();
        let mut sender = MockHostEventSender::new();
        sender
            .expect_send()
            .times(1)
            .returning(|_| HostEventOutcome::Failed("host timed out".into()));
        let mut retry = MockRetrySchedule::new();
        retry
            .expect_delay_after()
            .with(eq(12))
            .times(1)
            .returning(|_| None);
        let round = worker(outbox, sender, retry).run_once().await.unwrap();
        assert_eq!(round.dead, 1);
    }

    #[tokio::test]
    async fn a_failed_claim_posts_nothing_and_reports_the_error() {
        let mut outbox = MockHostEventOutbox::new();
        outbox
            .expect_claim_due()
            .times(1)
            .returning(|_, _, _| Err(RepositoryError::Unavailable("down".into())));
        let mut sender = MockHostEventSender::new();
        sender.expect_send().never();
        let error = worker(outbox, sender, MockRetrySchedule::new())
            .run_once()
            .await
            .unwrap_err();
        assert_eq!(error, RepositoryError::Unavailable("down".into()));
    }
}
