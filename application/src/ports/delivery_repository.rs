//! The deliveries as an operator sees them: listed across notifications (dead letters first of
//! all) and put back in the queue by hand.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{Channel, Delivery, DeliveryId, DeliveryStatus};

use super::RepositoryError;

/// Which deliveries a listing shows, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryListQuery {
    /// Only this status, when given.
    pub status: Option<DeliveryStatus>,
    /// Only this channel, when given.
    pub channel: Option<Channel>,
    /// At most this many (1 to 100).
    pub limit: u32,
    /// Only deliveries older than this one (its id; ids are UUIDv7, so they sort by creation).
    pub before: Option<DeliveryId>,
}

/// One page of deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPage {
    /// Newest first.
    pub items: Vec<Delivery>,
    /// Pass back as `before` for the next page; `None` on the last page.
    pub next: Option<DeliveryId>,
}

/// What putting a delivery back in the queue did.
// One value per operator click: the size of the variant carrying the delivery does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Requeued {
    /// It is `pending` again, due now, with a fresh series of tries (`attempts` 0; its attempt
    /// rows are kept).
    Requeued(Delivery),
    /// No such delivery.
    NotFound,
    /// Only `dead` and `failed` deliveries may be retried by hand; this one is in another status.
    NotRetryable(DeliveryStatus),
}

/// Operator access to deliveries.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeliveryRepository: Send + Sync {
    /// One page of deliveries matching `query`, newest first (by id).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn list(&self, query: &DeliveryListQuery) -> Result<DeliveryPage, RepositoryError>;

    /// Puts a `dead` or `failed` delivery back in the queue, due at `now`. MUST change nothing
    /// and return [`Requeued::NotRetryable`] for any other status (checked and changed
    /// atomically), and [`Requeued::NotFound`] for an unknown id.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn requeue(
        &self,
        id: &DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<Requeued, RepositoryError>;
}
