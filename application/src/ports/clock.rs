//! Time and identity: injected so tests decide what "now" is, how long a wait lasts, and which
//! ids come out.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{DeliveryId, NotificationId};

/// The current time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC. Never fails.
    fn now(&self) -> DateTime<Utc>;
}

/// Waiting, for what must happen at intervals inside the application (the dispatcher's lease
/// heartbeat) without the application owning a runtime.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Timer: Send + Sync {
    /// Resolves once `duration` has passed. Never fails; dropping the future cancels the wait.
    async fn sleep(&self, duration: Duration);
}

/// Fresh ids for new rows.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new notification id; MUST be unique and SHOULD sort by creation time (UUIDv7).
    fn notification_id(&self) -> NotificationId;
    /// A new delivery id; MUST be unique.
    fn delivery_id(&self) -> DeliveryId;
}
