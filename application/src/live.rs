//! Publish at commit: the in-app path of the outbox without the dispatcher's round trip.
//!
//! The request that writes notifications takes their due in-app deliveries itself, in the
//! inserting transaction (`pending → sending` through the domain's [`Delivery::claim`], under a
//! [`CreationLease`]), publishes them to the realtime hub as soon as the transaction commits
//! (it knows each notification's inbox sequence number then), and records them `sent` in
//! batches afterwards ([`PublishAtCommit::flush`], run every few milliseconds by a background
//! task, through the domain's [`Delivery::succeed`] under the lease's claim).
//!
//! The outbox guarantee stays: should the process die between the commit and the record, the
//! deliveries are still `sending` under a lapsed lease, and a dispatcher retakes them (and
//! publishes them once more) after [`PublishAtCommit::lease`]. A client may so see a
//! notification twice after a crash, with the same `id` and `seq`: the JavaScript client skips
//! a `seq` it has already shown, the SSE stream never repeats one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clairon_domain::{AttemptOutcome, Channel, DeliveryStatus, Recipient, RecipientId};

use crate::dispatch::DispatchSettings;
use crate::ports::{
    AttemptRecord, ClaimToken, ClaimedDelivery, Clock, CreationLease, DeliveryQueue,
    DeliveryUpdate, DispatchObserver, IdGenerator, LeasedWrite, NewNotification,
    NotificationRepository, RealtimeEvent, RealtimePublisher, RepositoryError,
};

/// Most deliveries recorded by one [`PublishAtCommit::flush`] transaction.
pub const RECORD_BATCH: usize = 2_000;

/// Writes notifications, publishes their in-app deliveries at commit, records them in batches.
pub struct PublishAtCommit {
    notifications: Arc<dyn NotificationRepository>,
    queue: Arc<dyn DeliveryQueue>,
    realtime: Arc<dyn RealtimePublisher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    lease: Duration,
    observer: Option<Arc<dyn DispatchObserver>>,
    /// Published, not yet recorded.
    unrecorded: Mutex<Vec<(ClaimedDelivery, DeliveryUpdate)>>,
}

impl std::fmt::Debug for PublishAtCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishAtCommit")
            .field("lease", &self.lease)
            .field("unrecorded", &self.unrecorded().len())
            .finish_non_exhaustive()
    }
}

impl PublishAtCommit {
    /// Publish at commit on these ports; in-app deliveries are leased for `lease` (the
    /// dispatcher's [`DispatchSettings::lease`]: a crash leaves them to it after that).
    pub fn new(
        notifications: Arc<dyn NotificationRepository>,
        queue: Arc<dyn DeliveryQueue>,
        realtime: Arc<dyn RealtimePublisher>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            notifications,
            queue,
            realtime,
            clock,
            ids,
            lease: settings.lease,
            observer: None,
            unrecorded: Mutex::new(Vec::new()),
        }
    }

    /// Tells `observer` every delivery recorded (the metrics the dispatcher also feeds).
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn DispatchObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// How long a crash leaves the published deliveries to wait for a dispatcher.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn unrecorded(&self) -> std::sync::MutexGuard<'_, Vec<(ClaimedDelivery, DeliveryUpdate)>> {
        self.unrecorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `batch` in one transaction — its due in-app deliveries taken under a lease, the
    /// unread counts read in the same transaction — then publishes those deliveries to the
    /// recipients' live connections (one publication of the whole batch, no query of its own)
    /// and queues them to be recorded `sent` by [`Self::flush`]. `directory` holds every
    /// recipient of `batch`. A batch with no due in-app delivery is written as
    /// [`NotificationRepository::insert_batch`] does.
    ///
    /// # Errors
    /// As [`NotificationRepository::insert_batch`]; nothing is written then.
    pub async fn write(
        &self,
        batch: &mut [NewNotification],
        directory: &HashMap<RecipientId, Recipient>,
    ) -> Result<(), RepositoryError> {
        let taken = take_in_app(batch);
        if taken.is_empty() {
            return self.notifications.insert_batch(batch).await;
        }
        let now = self.clock.now();
        let lease = CreationLease {
            claim: ClaimToken::new(format!("commit-{}", self.ids.delivery_id())),
            until: now + chrono::TimeDelta::from_std(self.lease).unwrap_or(chrono::TimeDelta::MAX),
        };
        let LeasedWrite { seqs, unread } = self.notifications.insert_leased(batch, &lease).await?;
        // Each notification's event carries the count after it: a recipient with several in
        // the batch sees it go up one by one.
        let mut before: HashMap<RecipientId, u64> = HashMap::new();
        for &(n, _) in &taken {
            *before
                .entry(batch[n].notification.recipient_id.clone())
                .or_default() += 1;
        }
        let mut events = Vec::with_capacity(taken.len());
        for &(n, _) in &taken {
            let notification = &batch[n].notification;
            let total = unread.get(&notification.recipient_id).copied().unwrap_or(0);
            let left = before
                .get_mut(&notification.recipient_id)
                .map(|left| {
                    *left -= 1;
                    *left
                })
                .unwrap_or(0);
            events.push(RealtimeEvent::NotificationCreated {
                notification: notification.clone(),
                seq: seqs.get(n).copied().flatten(),
                unread: total.saturating_sub(left),
            });
        }
        self.realtime.publish_all(events).await;
        #[cfg(feature = "fault-injection")]
        fault::after_publish(batch);
        let sent_at = self.clock.now();
        let mut updates = Vec::with_capacity(taken.len());
        for (n, d) in taken {
            let new = &batch[n];
            let delivery = &new.deliveries[d];
            let Some(recipient) = directory.get(&delivery.recipient_id) else {
                continue; // never: the handler checked every recipient
            };
            let claimed = ClaimedDelivery {
                delivery: delivery.clone(),
                notification: new.notification.clone(),
                recipient: recipient.clone(),
                request_id: None,
                claim: lease.claim.clone(),
            };
            match delivery.succeed(new.notification.id.to_string(), sent_at) {
                Ok(transition) => {
                    // The dispatcher's `deliver` span and line, here inside the request's own
                    // span: the request id of the request that wrote it correlates both.
                    tracing::info_span!(
                        "deliver",
                        notification_id = %new.notification.id,
                        delivery_id = %delivery.id,
                        channel = %delivery.channel,
                    )
                    .in_scope(|| {
                        tracing::info!(
                            attempt = transition.attempts,
                            "delivery sent (published at commit)"
                        );
                    });
                    let attempt = AttemptRecord {
                        number: transition.attempts,
                        started_at: now,
                        duration_ms: u64::try_from((sent_at - now).num_milliseconds()).unwrap_or(0),
                        outcome: AttemptOutcome::Sent,
                        error: None,
                        provider_response_id: transition.provider_message_id.clone(),
                    };
                    let update = DeliveryUpdate::recording(&claimed, transition, Some(attempt));
                    updates.push((claimed, update));
                }
                Err(refused) => {
                    tracing::error!(delivery_id = %delivery.id, error = %refused, "publish at commit: a taken delivery is not sending; left to the dispatcher");
                }
            }
        }
        self.unrecorded().extend(updates);
        Ok(())
    }

    /// Records `sent` what was published and not yet recorded, up to [`RECORD_BATCH`] per
    /// transaction, until nothing is left; returns how many were recorded. Called every few
    /// milliseconds by a background task (and once more at shutdown).
    ///
    /// # Errors
    /// [`RepositoryError`] when the queue fails: the batch is kept and tried again at the next
    /// flush (and, should the process die first, the dispatcher retakes it once the lease
    /// lapses).
    pub async fn flush(&self) -> Result<usize, RepositoryError> {
        let mut recorded = 0;
        loop {
            let batch: Vec<(ClaimedDelivery, DeliveryUpdate)> = {
                let mut unrecorded = self.unrecorded();
                let n = unrecorded.len().min(RECORD_BATCH);
                unrecorded.drain(..n).collect()
            };
            if batch.is_empty() {
                return Ok(recorded);
            }
            let updates: Vec<DeliveryUpdate> = batch.iter().map(|(_, u)| u.clone()).collect();
            let lost = match self.queue.record(&updates).await {
                Ok(lost) => lost,
                Err(e) => {
                    let mut unrecorded = self.unrecorded();
                    let later = std::mem::take(&mut *unrecorded);
                    unrecorded.extend(batch);
                    unrecorded.extend(later);
                    return Err(e);
                }
            };
            recorded += updates.len() - lost.len();
            if let Some(observer) = &self.observer {
                for (claimed, update) in &batch {
                    if !lost.contains(&update.id) {
                        observer.recorded(claimed, update);
                    }
                }
            }
            for id in lost {
                tracing::warn!(delivery_id = %id, "publish at commit: lease lost before the record (a dispatcher took the delivery over)");
            }
        }
    }
}

/// Takes the due in-app deliveries of `batch` (`pending → sending`, [`Delivery::claim`]);
/// returns their places, `(notification, delivery)` indexes.
fn take_in_app(batch: &mut [NewNotification]) -> Vec<(usize, usize)> {
    let mut taken = Vec::new();
    for (n, new) in batch.iter_mut().enumerate() {
        if new.deliver_at.is_some() {
            continue; // scheduled: the dispatcher sends it when due
        }
        #[cfg(feature = "fault-injection")]
        if fault::for_the_dispatcher(new) {
            continue; // a test of the dispatcher's faults: its deliveries are the dispatcher's
        }
        for (d, delivery) in new.deliveries.iter_mut().enumerate() {
            if delivery.channel != Channel::InApp || delivery.status != DeliveryStatus::Pending {
                continue;
            }
            if let Ok(claimed) = delivery.claim() {
                *delivery = claimed;
                taken.push((n, d));
            }
        }
    }
    taken
}

#[cfg(feature = "fault-injection")]
mod fault {
    use crate::ports::NewNotification;

    /// Whether `new` asks the dispatcher for a fault (`panic`, `panic_round`): then its in-app
    /// delivery is left to the dispatcher, whose faults the test is about.
    pub(super) fn for_the_dispatcher(new: &NewNotification) -> bool {
        new.notification
            .metadata
            .get(crate::dispatch::fault::KEY)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|f| f != "abort_before_record")
    }

    /// The process aborts right after publishing, before recording, when a notification of
    /// the batch asks for `abort_before_record` (the lease-lapse test).
    pub(super) fn after_publish(batch: &[NewNotification]) {
        if batch.iter().any(|n| {
            n.notification
                .metadata
                .get(crate::dispatch::fault::KEY)
                .and_then(serde_json::Value::as_str)
                == Some("abort_before_record")
        }) {
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        MockDeliveryQueue, MockIdGenerator, MockNotificationRepository, MockRealtimePublisher,
    };
    use crate::test_support::{fixed_clock, notification, recipient};
    use clairon_domain::{Delivery, DeliveryId};

    fn new_notification(id: &str, to: &str, channels: &[Channel]) -> NewNotification {
        let notification = notification(id, to);
        let deliveries = channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Delivery::pending(
                    DeliveryId::parse(&format!("{id}-d{i}")).unwrap(),
                    notification.id.clone(),
                    notification.recipient_id.clone(),
                    *c,
                    notification.created_at,
                )
            })
            .collect();
        NewNotification {
            notification,
            deliveries,
            deliver_at: None,
        }
    }

    fn ids() -> Arc<dyn IdGenerator> {
        let mut ids = MockIdGenerator::new();
        ids.expect_delivery_id()
            .returning(|| DeliveryId::parse("claim-1").unwrap());
        Arc::new(ids)
    }

    fn settings() -> DispatchSettings {
        DispatchSettings {
            batch_size: 64,
            lease: Duration::from_secs(30),
        }
    }

    fn directory(ids: &[&str]) -> HashMap<RecipientId, Recipient> {
        ids.iter()
            .map(|id| (RecipientId::parse(id).unwrap(), recipient(id)))
            .collect()
    }

    #[tokio::test]
    async fn in_app_deliveries_are_written_leased_published_with_their_seq_then_recorded_sent() {
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert_leased()
            .withf(|batch, lease| {
                lease.claim.as_str() == "commit-claim-1"
                    && batch[0].deliveries[0].status == DeliveryStatus::Sending
                    && batch[0].deliveries[1].status == DeliveryStatus::Pending
            })
            .returning(|_, _| {
                Ok(LeasedWrite {
                    seqs: vec![Some(5), Some(1)],
                    unread: HashMap::from([
                        (RecipientId::parse("artist-1").unwrap(), 5),
                        (RecipientId::parse("artist-2").unwrap(), 1),
                    ]),
                })
            });
        notifications.expect_unread_counts().never();
        let mut realtime = MockRealtimePublisher::new();
        realtime
            .expect_publish_all()
            .withf(|events| {
                let seqs: Vec<(Option<u64>, u64)> = events
                    .iter()
                    .map(|e| match e {
                        RealtimeEvent::NotificationCreated { seq, unread, .. } => (*seq, *unread),
                        _ => (None, 0),
                    })
                    .collect();
                seqs == vec![(Some(5), 5), (Some(1), 1)]
            })
            .times(1)
            .return_const(());
        let mut queue = MockDeliveryQueue::new();
        queue
            .expect_record()
            .withf(|updates| {
                updates.len() == 2
                    && updates.iter().all(|u| {
                        u.status == DeliveryStatus::Sent
                            && u.claim.as_str() == "commit-claim-1"
                            && u.attempts == 1
                            && u.attempt.as_ref().map(|a| a.outcome) == Some(AttemptOutcome::Sent)
                    })
            })
            .times(1)
            .returning(|_| Ok(vec![]));
        let live = PublishAtCommit::new(
            Arc::new(notifications),
            Arc::new(queue),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
            ids(),
            settings(),
        );
        let mut batch = vec![
            new_notification("n-1", "artist-1", &[Channel::InApp, Channel::Email]),
            new_notification("n-2", "artist-2", &[Channel::InApp]),
        ];
        live.write(&mut batch, &directory(&["artist-1", "artist-2"]))
            .await
            .unwrap();
        assert_eq!(
            batch[0].deliveries[1].status,
            DeliveryStatus::Pending,
            "the email is left to the dispatcher"
        );
        assert_eq!(live.flush().await.unwrap(), 2);
        assert_eq!(live.flush().await.unwrap(), 0, "recorded once");
    }

    #[tokio::test]
    async fn a_batch_without_a_due_in_app_delivery_is_a_plain_insert() {
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert_batch()
            .times(1)
            .returning(|_| Ok(()));
        notifications.expect_insert_leased().never();
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish_all().never();
        let live = PublishAtCommit::new(
            Arc::new(notifications),
            Arc::new(MockDeliveryQueue::new()),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
            ids(),
            settings(),
        );
        let mut scheduled = new_notification("n-1", "artist-1", &[Channel::InApp]);
        scheduled.deliver_at =
            Some(scheduled.notification.created_at + chrono::TimeDelta::hours(1));
        let mut batch = vec![
            scheduled,
            new_notification("n-2", "artist-1", &[Channel::Email]),
        ];
        live.write(&mut batch, &directory(&["artist-1"]))
            .await
            .unwrap();
        assert_eq!(batch[0].deliveries[0].status, DeliveryStatus::Pending);
    }

    #[tokio::test]
    async fn a_failed_write_publishes_nothing_and_records_nothing() {
        let mut notifications = MockNotificationRepository::new();
        notifications
            .expect_insert_leased()
            .returning(|_, _| Err(RepositoryError::Unavailable("down".into())));
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish_all().never();
        let mut queue = MockDeliveryQueue::new();
        queue.expect_record().never();
        let live = PublishAtCommit::new(
            Arc::new(notifications),
            Arc::new(queue),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
            ids(),
            settings(),
        );
        let mut batch = vec![new_notification("n-1", "artist-1", &[Channel::InApp])];
        assert!(live
            .write(&mut batch, &directory(&["artist-1"]))
            .await
            .is_err());
        assert_eq!(live.flush().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_failed_record_is_kept_for_the_next_flush() {
        let mut notifications = MockNotificationRepository::new();
        notifications.expect_insert_leased().returning(|_, _| {
            Ok(LeasedWrite {
                seqs: vec![Some(1)],
                unread: HashMap::new(),
            })
        });
        let mut realtime = MockRealtimePublisher::new();
        realtime.expect_publish_all().return_const(());
        let mut queue = MockDeliveryQueue::new();
        let mut seq = mockall::Sequence::new();
        queue
            .expect_record()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Err(RepositoryError::Unavailable("down".into())));
        queue
            .expect_record()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Ok(vec![]));
        let live = PublishAtCommit::new(
            Arc::new(notifications),
            Arc::new(queue),
            Arc::new(realtime),
            Arc::new(fixed_clock()),
            ids(),
            settings(),
        );
        let mut batch = vec![new_notification("n-1", "artist-1", &[Channel::InApp])];
        live.write(&mut batch, &directory(&["artist-1"]))
            .await
            .unwrap();
        assert!(live.flush().await.is_err());
        assert_eq!(live.flush().await.unwrap(), 1);
    }
}
