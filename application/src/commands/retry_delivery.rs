//! `RetryDelivery`: an operator puts a `dead` or `failed` delivery back in the queue.

use std::sync::Arc;

use clairon_domain::{DeliveryId, DeliveryStatus};

use crate::ports::{Clock, DeliveryRepository, DeliveryWaker, RepositoryError, Requeued};
use crate::queries::DeliveryView;

/// Retry one delivery now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryDelivery {
    /// Which.
    pub id: DeliveryId,
}

/// Why it could not be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryDeliveryError {
    /// No such delivery.
    #[error("delivery {0} not found")]
    NotFound(DeliveryId),
    /// Only `dead` and `failed` deliveries are retried by hand.
    #[error("delivery {id} is {status}; only dead or failed deliveries can be retried")]
    NotRetryable {
        /// Which.
        id: DeliveryId,
        /// Its status now.
        status: DeliveryStatus,
    },
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`RetryDelivery`].
pub struct RetryDeliveryHandler {
    deliveries: Arc<dyn DeliveryRepository>,
    clock: Arc<dyn Clock>,
    waker: Arc<dyn DeliveryWaker>,
}

impl RetryDeliveryHandler {
    /// Builds the handler on its ports.
    pub fn new(
        deliveries: Arc<dyn DeliveryRepository>,
        clock: Arc<dyn Clock>,
        waker: Arc<dyn DeliveryWaker>,
    ) -> Self {
        Self {
            deliveries,
            clock,
            waker,
        }
    }

    /// Requeues it (due now, fresh tries) and wakes the dispatcher.
    ///
    /// # Errors
    /// [`RetryDeliveryError`].
    pub async fn execute(
        &self,
        command: RetryDelivery,
    ) -> Result<DeliveryView, RetryDeliveryError> {
        match self
            .deliveries
            .requeue(&command.id, self.clock.now())
            .await?
        {
            Requeued::Requeued(delivery) => {
                tracing::info!(delivery_id = %delivery.id, "delivery put back in the queue by hand");
                self.waker.wake();
                Ok(DeliveryView::from(delivery))
            }
            Requeued::NotFound => Err(RetryDeliveryError::NotFound(command.id)),
            Requeued::NotRetryable(status) => Err(RetryDeliveryError::NotRetryable {
                id: command.id,
                status,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockDeliveryRepository, MockDeliveryWaker};
    use crate::test_support::fixed_clock;
    use clairon_domain::{Channel, Delivery, NotificationId, RecipientId};

    fn handler(answer: Requeued, wakes: usize) -> RetryDeliveryHandler {
        let mut repository = MockDeliveryRepository::new();
        repository
            .expect_requeue()
            .times(1)
            .returning(move |_, _| Ok(answer.clone()));
        let mut waker = MockDeliveryWaker::new();
        waker.expect_wake().times(wakes).return_const(());
        RetryDeliveryHandler::new(
            Arc::new(repository),
            Arc::new(fixed_clock()),
            Arc::new(waker),
        )
    }

    fn id() -> DeliveryId {
        DeliveryId::parse("d-1").unwrap()
    }

    #[tokio::test]
    async fn a_requeued_delivery_is_pending_again_and_wakes_the_dispatcher() {
        let delivery = Delivery::pending(
            id(),
            NotificationId::parse("n-1").unwrap(),
            RecipientId::parse("artist-1").unwrap(),
            Channel::Email,
            chrono::Utc::now(),
        );
        let view = handler(Requeued::Requeued(delivery), 1)
            .execute(RetryDelivery { id: id() })
            .await
            .unwrap();
        assert_eq!(view.status, "pending");
    }

    #[tokio::test]
    async fn a_delivery_in_another_status_is_refused_without_waking_anyone() {
        let error = handler(Requeued::NotRetryable(DeliveryStatus::Sent), 0)
            .execute(RetryDelivery { id: id() })
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            RetryDeliveryError::NotRetryable {
                status: DeliveryStatus::Sent,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn an_unknown_delivery_is_not_found() {
        let error = handler(Requeued::NotFound, 0)
            .execute(RetryDelivery { id: id() })
            .await
            .unwrap_err();
        assert!(matches!(error, RetryDeliveryError::NotFound(_)));
    }
}
