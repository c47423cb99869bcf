//! Coalesced planning changes in `CreateNotificationHandler` (issue 13): what is held, until
//! when, and what goes to the coalescing store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, TimeZone as _, Utc};
use clairon_domain::coalescing::CoalesceRole;
use clairon_domain::{Channel, ChannelSet, DeliveryStatus, EventType, Priority};
use serde_json::json;

use super::*;
use crate::ports::{
    CoalesceChanges, CoalesceOutcome, MockCoalescingRepository, MockDeliveryWaker,
    MockNotificationRepository, MockRecipientRepository,
};
use crate::test_support::{draft, fixed_clock, recipient, sequential_ids};

const WINDOW: Duration = Duration::from_secs(120);

fn handler(store: MockCoalescingRepository, window: Duration) -> CreateNotificationHandler {
    let mut waker = MockDeliveryWaker::new();
    waker.expect_wake().return_const(());
    let mut notifications = MockNotificationRepository::new();
    // Written at once when nothing takes part in coalescing.
    notifications.expect_insert_batch().returning(|_| Ok(()));
    CreateNotificationHandler::new(
        Arc::new(MockRecipientRepository::new()),
        Arc::new(notifications),
        Arc::new(sequential_ids()),
        Arc::new(fixed_clock()),
        Arc::new(waker),
        ChannelPolicy {
            enabled: ChannelSet::parse_list("in_app,email").unwrap(),
            providers: ChannelSet::all(),
        },
    )
    .with_coalescing(window, Arc::new(store))
}

fn planning_draft(event_type: &str, priority: Priority) -> NotificationDraft {
    let mut d = draft("artist-1");
    d.event_type = EventType::parse(event_type).unwrap();
    d.priority = priority;
    d.metadata = match json!({ "planning": { "id": "pl-1" }, "changes": [] }) {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    };
    d
}

fn directory() -> HashMap<RecipientId, Recipient> {
    let zoe = recipient("artist-1");
    HashMap::from([(zoe.id.clone(), zoe)])
}

/// What a store was asked to write, call by call.
type Seen = Arc<Mutex<Vec<(Vec<NewNotification>, CoalesceChanges)>>>;

/// A store recording what it is asked to write, answering `outcome`.
fn recording(outcome: CoalesceOutcome) -> (MockCoalescingRepository, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let mut store = MockCoalescingRepository::new();
    store
        .expect_insert_coalescing()
        .returning(move |batch, changes| {
            sink.lock().unwrap().push((batch.to_vec(), changes.clone()));
            Ok(outcome.clone())
        });
    (store, seen)
}

#[tokio::test]
async fn a_modification_is_held_for_the_window_on_outbound_channels_and_in_app_goes_at_once() {
    // Arrange
    let (store, seen) = recording(CoalesceOutcome::default());
    let handler = handler(store, WINDOW);

    // Act
    let created = handler
        .execute_with(
            &directory(),
            vec![planning_draft("planning.modified", Priority::High)],
        )
        .await
        .unwrap();

    // Assert
    let seen = seen.lock().unwrap();
    let (batch, changes) = &seen[0];
    let now = Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap();
    let due: Vec<(Channel, Option<chrono::DateTime<Utc>>)> = batch[0]
        .deliveries
        .iter()
        .map(|d| (d.channel, d.next_attempt_at))
        .collect();
    assert_eq!(
        due,
        vec![
            (Channel::InApp, None),
            (Channel::Email, Some(now + TimeDelta::seconds(120)))
        ],
        "in-app at once, email at the end of the window"
    );
    assert_eq!(changes.entries.len(), 1);
    assert_eq!(changes.entries[0].role, CoalesceRole::Coalesce);
    assert_eq!(changes.entries[0].planning_id.as_str(), "pl-1");
    assert_eq!(changes.entries[0].notification_id, created[0].id);
    assert!(changes.reminders.is_none());
}

#[tokio::test]
async fn a_critical_modification_is_not_held_and_a_cancellation_supersedes_without_waiting() {
    // Arrange
    let (store, seen) = recording(CoalesceOutcome::default());
    let handler = handler(store, WINDOW);

    // Act
    handler
        .execute_with(
            &directory(),
            vec![planning_draft("planning.modified", Priority::Critical)],
        )
        .await
        .unwrap();
    handler
        .execute_with(
            &directory(),
            vec![planning_draft("planning.cancelled", Priority::High)],
        )
        .await
        .unwrap();

    // Assert: only the cancellation went to the store, its email due at once.
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        1,
        "the critical modification was written plainly"
    );
    let (batch, changes) = &seen[0];
    assert_eq!(changes.entries[0].role, CoalesceRole::Supersede);
    assert!(
        batch[0]
            .deliveries
            .iter()
            .all(|d| d.next_attempt_at.is_none()),
        "{:?}",
        batch[0].deliveries
    );
}

#[tokio::test]
async fn a_zero_window_leaves_coalescing_off() {
    // Arrange: a store that must not be called.
    let mut store = MockCoalescingRepository::new();
    store.expect_insert_coalescing().never();
    let handler = handler(store, Duration::ZERO);

    // Act
    let created = handler
        .execute_with(
            &directory(),
            vec![planning_draft("planning.modified", Priority::High)],
        )
        .await
        .unwrap();

    // Assert
    assert!(created[0]
        .deliveries
        .iter()
        .all(|d| d.status == DeliveryStatus::Pending));
}

#[tokio::test]
async fn deliveries_left_with_nothing_to_tell_are_answered_skipped_with_the_reason() {
    // Arrange: the store settles the email delivery (the second id drawn) as unneeded.
    let (store, _) = recording(CoalesceOutcome {
        unneeded: vec![clairon_domain::DeliveryId::parse("d-2").unwrap()],
        ..CoalesceOutcome::default()
    });
    let handler = handler(store, WINDOW);

    // Act
    let created = handler
        .execute_with(
            &directory(),
            vec![planning_draft("planning.modified", Priority::High)],
        )
        .await
        .unwrap();

    // Assert
    let email = created[0]
        .deliveries
        .iter()
        .find(|d| d.channel == Channel::Email)
        .unwrap();
    assert_eq!(email.status, DeliveryStatus::Skipped);
    assert_eq!(email.reason.as_deref(), Some("coalesced: no net change"));
}
