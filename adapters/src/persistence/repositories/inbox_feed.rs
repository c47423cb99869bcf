//! The [`InboxFeed`] on [`DieselNotificationRepository`]: a recipient's notifications by their
//! inbox number (`seq`). It only reads; the numbers are given by the write path
//! (`notification_writes::numbering`).

use async_trait::async_trait;
use clairon_application::ports::{InboxFeed, RepositoryError, SequencedNotification};
use clairon_domain::{NotificationId, RecipientId};
use diesel::prelude::*;

use super::DieselNotificationRepository;
use crate::persistence::connection::DbError;
use crate::persistence::rows::NotificationRow;
use crate::persistence::schema::{notifications, recipients};

fn sequenced(row: NotificationRow, seq: Option<i64>) -> Result<SequencedNotification, DbError> {
    let id = row.id.clone();
    let seq = seq
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| DbError::Corrupt(format!("notifications {id:?}: no sequence number")))?;
    Ok(SequencedNotification {
        seq,
        notification: row.into_domain()?,
    })
}

#[async_trait]
impl InboxFeed for DieselNotificationRepository {
    async fn after(
        &self,
        recipient_id: &RecipientId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SequencedNotification>, RepositoryError> {
        let recipient = recipient_id.as_str().to_owned();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.db
            .call(move |conn| {
                let rows: Vec<(NotificationRow, Option<i64>)> = notifications::table
                    .filter(notifications::recipient_id.eq(recipient))
                    .filter(notifications::seq.gt(after))
                    .filter(notifications::cancelled_at.is_null())
                    .order(notifications::seq.asc())
                    .limit(i64::from(limit.max(1)))
                    .select((NotificationRow::as_select(), notifications::seq))
                    .load(conn)?;
                rows.into_iter()
                    .map(|(row, seq)| sequenced(row, seq))
                    .collect()
            })
            .await
    }

    async fn sequenced(
        &self,
        id: &NotificationId,
    ) -> Result<Option<SequencedNotification>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .call(move |conn| {
                let row: Option<(NotificationRow, Option<i64>)> = notifications::table
                    .find(id)
                    .select((NotificationRow::as_select(), notifications::seq))
                    .first(conn)
                    .optional()?;
                row.map(|(row, seq)| sequenced(row, seq)).transpose()
            })
            .await
    }

    async fn last_seq(&self, recipient_id: &RecipientId) -> Result<u64, RepositoryError> {
        let recipient = recipient_id.as_str().to_owned();
        self.db
            .call(move |conn| {
                let last: Option<i64> = recipients::table
                    .find(recipient)
                    .select(recipients::last_seq)
                    .first(conn)
                    .optional()?;
                Ok(last.and_then(|l| u64::try_from(l).ok()).unwrap_or(0))
            })
            .await
    }
}
