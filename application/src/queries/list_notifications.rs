//! `ListNotifications`: a recipient's inbox, newest first, with a read/unread filter and
//! cursor pagination.

use std::sync::Arc;

use clairon_domain::{NotificationId, RecipientId};

use crate::ports::{
    ListQuery, NotificationRepository, ReadFilter, RecipientRepository, RepositoryError,
};
use crate::queries::NotificationView;

/// One page of an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListNotifications {
    /// Whose inbox.
    pub recipient_id: RecipientId,
    /// Read state filter.
    pub filter: ReadFilter,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A page of notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationPage {
    /// Newest first.
    pub items: Vec<NotificationView>,
    /// Opaque; pass it back as `cursor` for the next page. `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why the page could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListNotificationsError {
    /// No such recipient.
    #[error("recipient {0} not found")]
    UnknownRecipient(RecipientId),
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

/// Handles [`ListNotifications`].
pub struct ListNotificationsHandler {
    recipients: Arc<dyn RecipientRepository>,
    notifications: Arc<dyn NotificationRepository>,
}

impl ListNotificationsHandler {
    /// Default page size.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 100;

    /// Builds the handler on its ports.
    pub fn new(
        recipients: Arc<dyn RecipientRepository>,
        notifications: Arc<dyn NotificationRepository>,
    ) -> Self {
        Self {
            recipients,
            notifications,
        }
    }

    /// Lists one page.
    ///
    /// # Errors
    /// [`ListNotificationsError`].
    pub async fn execute(
        &self,
        query: ListNotifications,
    ) -> Result<NotificationPage, ListNotificationsError> {
        let limit = query.limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ListNotificationsError::InvalidLimit);
        }
        let before = query
            .cursor
            .as_deref()
            .map(NotificationId::parse)
            .transpose()
            .map_err(|_| ListNotificationsError::InvalidCursor)?;
        if self.recipients.get(&query.recipient_id).await?.is_none() {
            return Err(ListNotificationsError::UnknownRecipient(query.recipient_id));
        }
        let page = self
            .notifications
            .list(&ListQuery {
                recipient_id: query.recipient_id,
                filter: query.filter,
                limit,
                before,
            })
            .await?;
        Ok(NotificationPage {
            items: page.items.into_iter().map(NotificationView::from).collect(),
            next_cursor: page.next.map(|id| id.to_string()),
        })
    }
}
