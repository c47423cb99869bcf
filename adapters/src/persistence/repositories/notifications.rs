//! [`DieselNotificationRepository`]: notifications with their deliveries (the outbox's write
//! side) and the inbox reads.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{
    ListQuery, NewNotification, NotificationDetails, NotificationRepository, Page, ReadFilter,
    RepositoryError,
};
use clairon_domain::{Notification, NotificationId, RecipientId, SourceEventId};
use diesel::prelude::*;

use super::CHUNK;
use crate::persistence::connection::{
    on_inner, write_transaction, AnyConnection, Database, DbError,
};
use crate::persistence::rows::{db_time, DeliveryRow, NotificationRow};
use crate::persistence::schema::{deliveries, notifications};

/// The [`NotificationRepository`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselNotificationRepository {
    pub(super) db: Database,
}

impl DieselNotificationRepository {
    /// A repository on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// Joins notifications (kept in the given order) with their deliveries, in channel order.
fn with_deliveries(
    conn: &mut AnyConnection,
    rows: Vec<NotificationRow>,
) -> Result<Vec<NotificationDetails>, DbError> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut by_notification: HashMap<String, Vec<_>> = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let delivery_rows = deliveries::table
            .filter(deliveries::notification_id.eq_any(chunk))
            .select(DeliveryRow::as_select())
            .load(conn)?;
        for row in delivery_rows {
            let key = row.notification_id.clone();
            by_notification
                .entry(key)
                .or_default()
                .push(row.into_domain()?);
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut deliveries = by_notification.remove(&row.id).unwrap_or_default();
            deliveries.sort_by_key(|d| d.channel);
            Ok(NotificationDetails {
                notification: row.into_domain()?,
                deliveries,
            })
        })
        .collect()
}

fn find_row(conn: &mut AnyConnection, id: &str) -> Result<Option<NotificationRow>, DbError> {
    Ok(notifications::table
        .find(id)
        .select(NotificationRow::as_select())
        .first(conn)
        .optional()?)
}

fn parse_ids(ids: Vec<String>) -> Result<Vec<NotificationId>, DbError> {
    ids.iter()
        .map(|id| {
            NotificationId::parse(id)
                .map_err(|e| DbError::Corrupt(format!("notifications {id:?}: {e}")))
        })
        .collect()
}

#[async_trait]
impl NotificationRepository for DieselNotificationRepository {
    async fn insert_batch(&self, batch: &[NewNotification]) -> Result<(), RepositoryError> {
        if batch.is_empty() {
            return Ok(());
        }
        let notification_rows: Vec<NotificationRow> = batch
            .iter()
            .map(|n| NotificationRow::new(&n.notification))
            .collect();
        let delivery_rows: Vec<DeliveryRow> = batch
            .iter()
            .flat_map(|n| {
                n.deliveries
                    .iter()
                    .map(|d| DeliveryRow::new(d, n.notification.priority))
            })
            .collect();
        let feed = super::inbox_feed::seq_plan(&notification_rows);
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    // Counters first, in recipient order, so concurrent writers lock alike.
                    let seqs = super::inbox_feed::bump_counters(conn, &feed)?;
                    for chunk in notification_rows.chunks(CHUNK) {
                        on_inner!(conn, |c| diesel::insert_into(notifications::table)
                            .values(chunk)
                            .execute(c))?;
                    }
                    super::inbox_feed::write_seqs(conn, &seqs)?;
                    for chunk in delivery_rows.chunks(CHUNK) {
                        on_inner!(conn, |c| diesel::insert_into(deliveries::table)
                            .values(chunk)
                            .execute(c))?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn get(
        &self,
        id: &NotificationId,
    ) -> Result<Option<NotificationDetails>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .call(move |conn| {
                let Some(row) = find_row(conn, &id)? else {
                    return Ok(None);
                };
                Ok(with_deliveries(conn, vec![row])?.pop())
            })
            .await
    }

    async fn find_by_source_event(
        &self,
        source_event_id: &SourceEventId,
    ) -> Result<Vec<NotificationDetails>, RepositoryError> {
        let source = source_event_id.as_str().to_owned();
        self.db
            .call(move |conn| {
                let rows = notifications::table
                    .filter(notifications::source_event_id.eq(&source))
                    .order(notifications::id.asc())
                    .select(NotificationRow::as_select())
                    .load(conn)?;
                with_deliveries(conn, rows)
            })
            .await
    }

    async fn list(&self, query: &ListQuery) -> Result<Page<Notification>, RepositoryError> {
        let recipient = query.recipient_id.as_str().to_owned();
        let before = query.before.as_ref().map(|b| b.as_str().to_owned());
        let filter = query.filter;
        let limit = query.limit.max(1);
        self.db
            .call(move |conn| {
                let mut select = notifications::table
                    .filter(notifications::recipient_id.eq(recipient))
                    .select(NotificationRow::as_select())
                    .order(notifications::id.desc())
                    // One more than asked tells whether another page exists.
                    .limit(i64::from(limit) + 1)
                    .into_boxed();
                if let Some(before) = before {
                    select = select.filter(notifications::id.lt(before));
                }
                select = match filter {
                    ReadFilter::Unread => select.filter(notifications::read_at.is_null()),
                    ReadFilter::Read => select.filter(notifications::read_at.is_not_null()),
                    ReadFilter::All => select,
                };
                let mut rows = select.load(conn)?;
                let more = rows.len() > limit as usize;
                rows.truncate(limit as usize);
                let items = rows
                    .into_iter()
                    .map(NotificationRow::into_domain)
                    .collect::<Result<Vec<_>, _>>()?;
                let next = if more {
                    items.last().map(|n| n.id.clone())
                } else {
                    None
                };
                Ok(Page { items, next })
            })
            .await
    }

    async fn unread_count(&self, recipient_id: &RecipientId) -> Result<u64, RepositoryError> {
        let recipient = recipient_id.as_str().to_owned();
        self.db
            .call(move |conn| {
                let count: i64 = notifications::table
                    .filter(notifications::recipient_id.eq(recipient))
                    .filter(notifications::read_at.is_null())
                    .count()
                    .get_result(conn)?;
                Ok(u64::try_from(count).unwrap_or(0))
            })
            .await
    }

    async fn mark_read(
        &self,
        id: &NotificationId,
        owner: Option<RecipientId>,
        at: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepositoryError> {
        let id = id.as_str().to_owned();
        let at = db_time(at);
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    let Some(row) = find_row(conn, &id)? else {
                        return Ok(None);
                    };
                    if owner.is_some_and(|o| o.as_str() != row.recipient_id) {
                        return Ok(None);
                    }
                    if row.read_at.is_some() {
                        return row.into_domain().map(Some);
                    }
                    // `read_at IS NULL` keeps a read time another writer set meanwhile
                    // (PostgreSQL); the row is read again to return whichever time won.
                    diesel::update(
                        notifications::table
                            .find(&id)
                            .filter(notifications::read_at.is_null()),
                    )
                    .set(notifications::read_at.eq(at))
                    .execute(conn)?;
                    find_row(conn, &id)?
                        .map(NotificationRow::into_domain)
                        .transpose()
                })
            })
            .await
    }

    async fn mark_all_read(
        &self,
        recipient_id: &RecipientId,
        at: DateTime<Utc>,
    ) -> Result<Vec<NotificationId>, RepositoryError> {
        let recipient = recipient_id.as_str().to_owned();
        let at = db_time(at);
        self.db
            .call(move |conn| {
                let mut changed: Vec<String> = diesel::update(
                    notifications::table
                        .filter(notifications::recipient_id.eq(recipient))
                        .filter(notifications::read_at.is_null()),
                )
                .set(notifications::read_at.eq(at))
                .returning(notifications::id)
                .get_results(conn)?;
                changed.sort_unstable_by(|a, b| b.cmp(a));
                parse_ids(changed)
            })
            .await
    }
}
