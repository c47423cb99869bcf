//! `ListDeliveries`: deliveries across notifications, newest first, filtered by status and
//! channel, with cursor pagination — the dead-letter view of an operator.

use std::sync::Arc;

use clairon_domain::{Channel, DeliveryId, DeliveryStatus};
use serde::Serialize;

use crate::ports::{DeliveryListQuery, DeliveryRepository, RepositoryError};
use crate::queries::DeliveryView;

/// One page of deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListDeliveries {
    /// Only this status (`dead`, `failed`, `retrying`, …), when given.
    pub status: Option<DeliveryStatus>,
    /// Only this channel, when given.
    pub channel: Option<Channel>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A delivery in a listing: the delivery and whose notification it carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryListItem {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The notification it delivers.
    pub notification_id: String,
    /// Who it goes to.
    pub recipient_id: String,
}

/// A page of deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryListPage {
    /// Newest first.
    pub items: Vec<DeliveryListItem>,
    /// Opaque; pass it back as `cursor` for the next page. `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why the page could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListDeliveriesError {
    /// `limit` is outside 1..=100.
    #[error("limit must be between 1 and 100")]
    InvalidLimit,
    /// `cursor` is not one this service gave out.
    #[error("cursor is not valid")]
    InvalidCursor,
    /// The database failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles [`ListDeliveries`].
pub struct ListDeliveriesHandler {
    deliveries: Arc<dyn DeliveryRepository>,
}

impl ListDeliveriesHandler {
    /// Default page size.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 100;

    /// Builds the handler on its port.
    pub fn new(deliveries: Arc<dyn DeliveryRepository>) -> Self {
        Self { deliveries }
    }

    /// Lists one page.
    ///
    /// # Errors
    /// [`ListDeliveriesError`].
    pub async fn execute(
        &self,
        query: ListDeliveries,
    ) -> Result<DeliveryListPage, ListDeliveriesError> {
        let limit = query.limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ListDeliveriesError::InvalidLimit);
        }
        let before = query
            .cursor
            .as_deref()
            .map(DeliveryId::parse)
            .transpose()
            .map_err(|_| ListDeliveriesError::InvalidCursor)?;
        let page = self
            .deliveries
            .list(&DeliveryListQuery {
                status: query.status,
                channel: query.channel,
                limit,
                before,
            })
            .await?;
        Ok(DeliveryListPage {
            items: page
                .items
                .into_iter()
                .map(|d| DeliveryListItem {
                    notification_id: d.notification_id.to_string(),
                    recipient_id: d.recipient_id.to_string(),
                    delivery: DeliveryView::from(d),
                })
                .collect(),
            next_cursor: page.next.map(|id| id.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{DeliveryPage, MockDeliveryRepository};

    #[tokio::test]
    async fn filters_and_the_cursor_reach_the_repository_and_the_next_cursor_comes_back() {
        let mut repository = MockDeliveryRepository::new();
        repository
            .expect_list()
            .withf(|q| {
                q.status == Some(DeliveryStatus::Dead)
                    && q.channel == Some(Channel::Email)
                    && q.limit == 5
                    && q.before.as_ref().map(DeliveryId::as_str) == Some("d-9")
            })
            .times(1)
            .returning(|_| {
                Ok(DeliveryPage {
                    items: Vec::new(),
                    next: Some(DeliveryId::parse("d-4").unwrap()),
                })
            });
        let page = ListDeliveriesHandler::new(Arc::new(repository))
            .execute(ListDeliveries {
                status: Some(DeliveryStatus::Dead),
                channel: Some(Channel::Email),
                limit: Some(5),
                cursor: Some("d-9".into()),
            })
            .await
            .unwrap();
        assert_eq!(page.next_cursor.as_deref(), Some("d-4"));
    }

    #[tokio::test]
    async fn a_limit_out_of_range_or_a_foreign_cursor_is_refused_before_any_read() {
        let handler = ListDeliveriesHandler::new(Arc::new(MockDeliveryRepository::new()));
        let query = |limit, cursor: Option<&str>| ListDeliveries {
            status: None,
            channel: None,
            limit,
            cursor: cursor.map(str::to_owned),
        };
        assert!(matches!(
            handler.execute(query(Some(0), None)).await,
            Err(ListDeliveriesError::InvalidLimit)
        ));
        assert!(matches!(
            handler.execute(query(Some(101), None)).await,
            Err(ListDeliveriesError::InvalidLimit)
        ));
        assert!(matches!(
            handler.execute(query(None, Some("not a cursor!"))).await,
            Err(ListDeliveriesError::InvalidCursor)
        ));
    }
}
