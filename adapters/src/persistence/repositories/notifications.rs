//! [`DieselNotificationRepository`]: the notification port. Its writes (notifications with their
//! deliveries, the outbox's write side, numbering, mentions, reminders, group commit) are the
//! write path's (`notification_writes`); this file holds the reads and the read marks.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{
    CreationLease, LeasedWrite, ListQuery, NewNotification, NotificationDetails,
    NotificationRepository, Page, ReadFilter, ReminderChanges, RepositoryError,
};
use clairon_domain::{Notification, NotificationId, RecipientId, SourceEventId};
use diesel::prelude::*;

use super::notification_writes::NotificationWriter;
use super::CHUNK;
use crate::persistence::connection::{
    write_transaction, AnyConnection, Backend, Database, DbError,
};
use crate::persistence::rows::{db_time, AttemptRow, DeliveryRow, NotificationRow};
use crate::persistence::schema::{deliveries, delivery_attempts, notifications};

/// The [`NotificationRepository`] on the Diesel [`Database`] (SQLite or PostgreSQL).
///
/// Its writes go through the write path's `NotificationWriter`: `insert_batch` through a
/// group commit (concurrent requests share transactions).
#[derive(Debug, Clone)]
pub struct DieselNotificationRepository {
    pub(super) db: Database,
    writes: NotificationWriter,
    /// Whether marking read also writes `notification.read` host events (issue 12).
    host_events: bool,
}

impl DieselNotificationRepository {
    /// A repository on `db`. Notification writes run at most [`Self::WRITERS_POSTGRES`]
    /// transactions at once on PostgreSQL, one on SQLite (it has a single writer anyway).
    pub fn new(db: Database) -> Self {
        let writers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => Self::WRITERS_POSTGRES,
        };
        Self {
            writes: NotificationWriter::new(db.clone(), writers),
            db,
            host_events: false,
        }
    }

    /// The same repository, writing a `notification.read` host event in the transaction of
    /// each notification it marks read (`mark_read`, `mark_all_read`) when `on`
    /// (`CLAIRON_EVENTS_WEBHOOK_URL` is set).
    #[must_use]
    pub fn with_host_events(mut self, on: bool) -> Self {
        self.host_events = on;
        self
    }

    /// Concurrent notification-writing transactions on PostgreSQL: enough to overlap one
    /// group's commit (its WAL flush) with the next group's statements.
    pub const WRITERS_POSTGRES: usize = 2;
}

/// Joins notifications (kept in the given order) with their deliveries, in channel order.
pub(crate) fn with_deliveries(
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
                attempts: HashMap::new(),
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
impl clairon_application::ports::CoalescingRepository for DieselNotificationRepository {
    async fn insert_coalescing(
        &self,
        batch: &[NewNotification],
        changes: &clairon_application::ports::CoalesceChanges,
    ) -> Result<clairon_application::ports::CoalesceOutcome, RepositoryError> {
        self.writes.insert_coalescing(batch, changes).await
    }
}

#[async_trait]
impl NotificationRepository for DieselNotificationRepository {
    async fn insert_batch(&self, batch: &[NewNotification]) -> Result<(), RepositoryError> {
        self.writes.insert_batch(batch).await
    }

    async fn insert_leased(
        &self,
        batch: &[NewNotification],
        lease: &CreationLease,
    ) -> Result<LeasedWrite, RepositoryError> {
        self.writes.insert_leased(batch, Some(lease)).await
    }

    async fn insert_with_reminders(
        &self,
        batch: &[NewNotification],
        reminders: &ReminderChanges,
    ) -> Result<Vec<NotificationId>, RepositoryError> {
        self.writes.insert_with_reminders(batch, reminders).await
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
                let Some(mut details) = with_deliveries(conn, vec![row])?.pop() else {
                    return Ok(None);
                };
                let ids: Vec<&str> = details.deliveries.iter().map(|d| d.id.as_str()).collect();
                let rows: Vec<(String, AttemptRow)> = delivery_attempts::table
                    .filter(delivery_attempts::delivery_id.eq_any(&ids))
                    // In the order they were made: a manual retry starts numbering again at 1.
                    .order(delivery_attempts::id.asc())
                    .select((delivery_attempts::delivery_id, AttemptRow::as_select()))
                    .load(conn)?;
                for delivery in &details.deliveries {
                    details.attempts.insert(delivery.id.clone(), Vec::new());
                }
                for (delivery_id, row) in rows {
                    if let Some(list) = details
                        .deliveries
                        .iter()
                        .find(|d| d.id.as_str() == delivery_id)
                        .and_then(|d| details.attempts.get_mut(&d.id))
                    {
                        list.push(row.into_domain()?);
                    }
                }
                Ok(Some(details))
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
        let now = db_time(self.db.now());
        self.db
            .call(move |conn| {
                let mut select = notifications::table
                    .filter(notifications::recipient_id.eq(recipient))
                    .filter(visible_at!(now))
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
        let now = db_time(self.db.now());
        self.db
            .call(move |conn| {
                let count: i64 = notifications::table
                    .filter(notifications::recipient_id.eq(recipient))
                    .filter(visible_at!(now))
                    .filter(notifications::read_at.is_null())
                    .count()
                    .get_result(conn)?;
                Ok(u64::try_from(count).unwrap_or(0))
            })
            .await
    }

    async fn unread_counts(
        &self,
        recipient_ids: &[RecipientId],
    ) -> Result<HashMap<RecipientId, u64>, RepositoryError> {
        let ids: Vec<String> = recipient_ids
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect();
        let now = db_time(self.db.now());
        let counts = self
            .db
            .call(move |conn| {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                super::notification_writes::count_unread(conn, &ids, now)
            })
            .await?;
        counts
            .into_iter()
            .map(|(recipient, count)| {
                RecipientId::parse(&recipient)
                    .map(|id| (id, count))
                    .map_err(|e| {
                        RepositoryError::Corrupt(format!(
                            "notifications: recipient {recipient:?}: {e}"
                        ))
                    })
            })
            .collect()
    }

    async fn mark_read(
        &self,
        id: &NotificationId,
        owner: Option<RecipientId>,
        at: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepositoryError> {
        let id = id.as_str().to_owned();
        let at = db_time(at);
        let host_events = self.host_events;
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
                    let changed = diesel::update(
                        notifications::table
                            .find(&id)
                            .filter(notifications::read_at.is_null()),
                    )
                    .set(notifications::read_at.eq(at))
                    .execute(conn)?;
                    if host_events && changed > 0 {
                        super::host_events::record_reads(
                            conn,
                            &[(id.clone(), row.recipient_id.clone())],
                            at,
                        )?;
                    }
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
        let now = db_time(self.db.now());
        let host_events = self.host_events;
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    let mut changed: Vec<String> = diesel::update(
                        notifications::table
                            .filter(notifications::recipient_id.eq(&recipient))
                            .filter(visible_at!(now))
                            .filter(notifications::read_at.is_null()),
                    )
                    .set(notifications::read_at.eq(at))
                    .returning(notifications::id)
                    .get_results(conn)?;
                    changed.sort_unstable_by(|a, b| b.cmp(a));
                    if host_events && !changed.is_empty() {
                        // One multi-row INSERT per chunk, in the read-all's transaction.
                        let read: Vec<(String, String)> = changed
                            .iter()
                            .rev()
                            .map(|id| (id.clone(), recipient.clone()))
                            .collect();
                        super::host_events::record_reads(conn, &read, at)?;
                    }
                    parse_ids(changed)
                })
            })
            .await
    }
}
