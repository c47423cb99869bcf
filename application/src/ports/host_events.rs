//! Delivery events to the host application (issue 12): the outbox of events the persistence
//! adapter writes beside the changes they report ([`HostEventOutbox`]), and the signed POST that
//! carries one to `CLAIRON_EVENTS_WEBHOOK_URL` ([`HostEventSender`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepositoryError;

/// The event types posted to the host application.
pub const HOST_EVENT_TYPES: [&str; 4] = [
    "delivery.sent",
    "delivery.failed",
    "delivery.dead",
    "notification.read",
];

/// One event claimed from the outbox, ready to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    /// UUIDv7 text: the `webhook-id` (Standard Webhooks 1.0), the same on every retry so the
    /// host can drop a repeat.
    pub id: String,
    /// One of [`HOST_EVENT_TYPES`].
    pub event_type: String,
    /// The exact JSON body to post: `{"type", "timestamp", "data"}`.
    pub payload: String,
    /// Tries made before this one (0 on the first).
    pub attempts: u32,
}

/// What the host's answer to one POST means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEventOutcome {
    /// A `2xx`: the host has it.
    Delivered,
    /// Anything else (any non-`2xx` status, a timeout, a connection error): tried again later
    /// with backoff, dead after the maximum number of tries. The cause names the host only.
    Failed(String),
}

/// The outbox of host events.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HostEventOutbox: Send + Sync {
    /// Claims up to `limit` `pending` events due at `now` (`next_attempt_at <= now`), oldest due
    /// first, and pushes their `next_attempt_at` to `now + lease`, so another claimer (another
    /// process on the same PostgreSQL) does not take them until the lease lapses; an event whose
    /// worker died is so posted again after the lease (at least once: the host drops repeats by
    /// `webhook-id`).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; nothing is claimed then.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<HostEvent>, RepositoryError>;

    /// Records `id` `sent` at `at` after `attempts` tries.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; the event is then posted again after its lease.
    async fn mark_sent(
        &self,
        id: &str,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> Result<(), RepositoryError>;

    /// Keeps `id` `pending` after `attempts` tries, due again at `next_attempt_at`, with the
    /// failure `error`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; the event is then tried again after its lease.
    async fn mark_retry(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), RepositoryError>;

    /// Parks `id` `dead` after `attempts` tries, with the last failure `error`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; the event is then tried again after its lease.
    async fn mark_dead(&self, id: &str, attempts: u32, error: &str) -> Result<(), RepositoryError>;
}

/// Posts one host event, signed (Standard Webhooks 1.0). Never fails: the answer is classified.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HostEventSender: Send + Sync {
    /// Posts `event.payload` with `webhook-id` = `event.id`.
    async fn send(&self, event: &HostEvent) -> HostEventOutcome;
}
