//! The delivery outbox as the dispatcher sees it: claim due deliveries, record what happened.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{
    AttemptOutcome, ChannelSet, Delivery, DeliveryId, DeliveryStatus, DeliveryTransition,
    Notification, Priority, Recipient,
};

use super::RepositoryError;

/// How many times a delivery may be left behind by a worker that died holding it (its lease
/// lapsed with no outcome recorded) before the claim parks it `dead` as a poison pill instead of
/// handing it out again: it crashed a worker twice.
pub const POISON_CRASHES: u32 = 2;

/// Names one claim of deliveries (a fencing token): [`DeliveryQueue::claim_due`] writes it on the
/// rows it claims, and [`DeliveryQueue::record`] and [`DeliveryQueue::renew`] only touch rows that
/// still hold it. A worker whose lease lapsed, and whose deliveries another worker claimed since,
/// so cannot write over the new holder's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimToken(String);

impl ClaimToken {
    /// A token; the queue makes them, unique per claim (a UUID).
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The token as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A delivery claimed by a dispatcher, with what it needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The delivery, now `sending`, `attempts` not yet incremented.
    pub delivery: Delivery,
    /// Its notification.
    pub notification: Notification,
    /// Its recipient as stored now (addresses may have changed since the notification was made).
    pub recipient: Recipient,
    /// The `X-Request-Id` of the HTTP request that created the notification, for the logs.
    pub request_id: Option<String>,
    /// The claim that holds it; its outcome is recorded under this token.
    pub claim: ClaimToken,
}

/// The audit record of one try (one `delivery_attempts` row).
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// 1 for the first try.
    pub number: u32,
    /// When the try started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// What the try came to (stored as `sent`, `transient`, `rate_limited` or `permanent`).
    pub outcome: AttemptOutcome,
    /// The failure, when it failed.
    pub error: Option<String>,
    /// The provider's response id (message id), when it gave one.
    pub provider_response_id: Option<String>,
}

/// What a dispatcher decided about one claimed delivery: a [`DeliveryTransition`] the domain
/// allowed ([`DeliveryUpdate::recording`]), under the claim it was sent with.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryUpdate {
    /// Which delivery.
    pub id: DeliveryId,
    /// Its new status (`sent`, `failed`, `retrying`, `dead`, `skipped`).
    pub status: DeliveryStatus,
    /// Tries so far, this one included.
    pub attempts: u32,
    /// The failure, or the skip reason.
    pub last_error: Option<String>,
    /// The provider's message id, when sent.
    pub provider_message_id: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When to try again (`retrying` only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The audit row of this try; `None` when nothing was tried (a skip decided at dispatch).
    pub attempt: Option<AttemptRecord>,
    /// The claim the delivery was sent under ([`ClaimedDelivery::claim`]): the update is only
    /// recorded while the delivery still holds it.
    pub claim: ClaimToken,
    /// The next link of the delivery's fallback chain, when this outcome gave up
    /// ([`Delivery::fallback_link`]): written in the same transaction as the outcome, and only
    /// if the outcome is (a lost claim writes neither).
    pub fallback: Option<FallbackLink>,
    /// Whether this is a put-back for pacing ([`SendOutcome::Paced`](crate::ports::SendOutcome)
    /// recorded as [`Delivery::defer`](clairon_domain::Delivery::defer)): `pending` due at the
    /// slot reserved for it. Once due, the queue claims such a delivery before the fresh ones
    /// of its priority, so a slot that has come is not spent waiting behind them; any other
    /// outcome (`false`) puts it back in the ordinary order (issue 12).
    pub paced: bool,
}

/// A delivery to write beside an outcome: the next channel of a fallback chain.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackLink {
    /// The new `pending` delivery, due at once.
    pub delivery: Delivery,
    /// Its notification's priority (the claim order).
    pub priority: Priority,
}

impl DeliveryUpdate {
    /// The update recording `transition` of the delivery `claimed` holds, with the audit row
    /// of the try (`None` when nothing was tried), under `claimed`'s claim.
    pub fn recording(
        claimed: &ClaimedDelivery,
        transition: DeliveryTransition,
        attempt: Option<AttemptRecord>,
    ) -> Self {
        Self {
            id: claimed.delivery.id.clone(),
            status: transition.to,
            attempts: transition.attempts,
            last_error: transition.last_error,
            provider_message_id: transition.provider_message_id,
            sent_at: transition.sent_at,
            next_attempt_at: transition.next_attempt_at,
            attempt,
            claim: claimed.claim.clone(),
            fallback: None,
            paced: false,
        }
    }

    /// The same update, marked a put-back for pacing ([`DeliveryUpdate::paced`]).
    #[must_use]
    pub fn put_back_paced(mut self) -> Self {
        self.paced = true;
        self
    }
}

/// The outbox of deliveries waiting to be sent.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `limit` deliveries that are due at `now` (`pending`, or `retrying` with
    /// `next_attempt_at <= now`, or `sending` whose lease expired), marks them `sending` with a
    /// lease until `now + lease` under a new [`ClaimToken`], and returns them highest priority
    /// first, then oldest due first. Only deliveries on a channel of `channels` are claimed (a
    /// channel paused by a provider's 429 is left out); an empty set claims nothing.
    /// A claimed delivery is not returned again until its lease expires or it is recorded.
    ///
    /// Poison pills: a `sending` delivery whose lease expired was left behind by a worker that
    /// died (or hung) holding it; the claim MUST count that on the delivery (a crash). A
    /// delivery with a crash counted since its last recorded outcome is a suspect and MUST be
    /// claimed alone, in a batch of its own, so it cannot take innocent deliveries down with it
    /// again; one that reaches [`POISON_CRASHES`] MUST be parked `dead` with a `last_error`
    /// starting with `poison` instead of being returned. A delivery whose stored rows cannot be
    /// read back (its notification or recipient row is corrupt) MUST be parked `failed` with the
    /// reason, not returned, and MUST NOT fail the claim of the others.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; nothing is claimed then.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
        channels: ChannelSet,
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError>;

    /// Records the outcome of claimed deliveries (and their attempt rows) in one transaction,
    /// releasing their leases and clearing their crash count.
    ///
    /// Fencing: an update is recorded only while its delivery is still `sending` under the
    /// update's [`ClaimToken`]. One whose claim was lost (its lease lapsed and another worker
    /// claimed it since, or an operator moved it on) MUST be left untouched, without an attempt
    /// row, and returned.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; nothing is recorded then and the leases will expire.
    async fn record(&self, updates: &[DeliveryUpdate]) -> Result<Vec<DeliveryId>, RepositoryError>;

    /// Extends the leases of deliveries still being sent to `until` (the dispatcher's heartbeat,
    /// so a batch slower than its lease is not retaken while in flight). Only deliveries still
    /// `sending` under the given token are renewed; returns their ids, so the caller learns
    /// which claims it lost.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`]; nothing is renewed then.
    async fn renew(
        &self,
        claims: &[(DeliveryId, ClaimToken)],
        until: DateTime<Utc>,
    ) -> Result<Vec<DeliveryId>, RepositoryError>;
}

/// Wakes the dispatcher when new deliveries were written, so it need not wait for its next poll.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait DeliveryWaker: Send + Sync {
    /// Signals that deliveries are waiting. Never blocks, never fails.
    fn wake(&self);
}
