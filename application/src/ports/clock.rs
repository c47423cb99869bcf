//! Time and identity: injected so tests decide what "now" is and which ids come out.

use chrono::{DateTime, Utc};
use clairon_domain::{DeliveryId, NotificationId};

/// The current time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC. Never fails.
    fn now(&self) -> DateTime<Utc>;
}

/// Fresh ids for new rows.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new notification id; MUST be unique and SHOULD sort by creation time (UUIDv7).
    fn notification_id(&self) -> NotificationId;
    /// A new delivery id; MUST be unique.
    fn delivery_id(&self) -> DeliveryId;
}
