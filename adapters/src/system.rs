//! The system clock, Tokio's timer and UUIDv7 id generation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{Clock, IdGenerator, Timer};
use clairon_domain::{DeliveryId, NotificationId};

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Waits on Tokio's timer (the dispatcher's lease heartbeat).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTimer;

#[async_trait]
impl Timer for TokioTimer {
    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// UUIDv7 ids (RFC 9562 §5.7): time-ordered, so newest-first listings can page by id.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Generator;

impl UuidV7Generator {
    fn next() -> String {
        uuid::Uuid::now_v7().hyphenated().to_string()
    }
}

impl IdGenerator for UuidV7Generator {
    fn notification_id(&self) -> NotificationId {
        NotificationId::parse(&Self::next())
            .unwrap_or_else(|_| unreachable!("a UUID is a valid id"))
    }

    fn delivery_id(&self) -> DeliveryId {
        DeliveryId::parse(&Self::next()).unwrap_or_else(|_| unreachable!("a UUID is a valid id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successive_ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..100)
            .map(|_| UuidV7Generator.notification_id().as_str().to_owned())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
