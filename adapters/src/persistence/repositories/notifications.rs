//! [`DieselNotificationRepository`]: notifications with their deliveries (the outbox's write
//! side) and the inbox reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{
    ListQuery, NewNotification, NotificationDetails, NotificationRepository, Page, ReadFilter,
    ReminderChanges, RepositoryError,
};
use clairon_domain::{DeliveryStatus, Notification, NotificationId, RecipientId, SourceEventId};
use diesel::prelude::*;

use super::group_commit::GroupCommit;
use super::CHUNK;
use crate::idempotency::{self, Settlement};
use crate::persistence::connection::{
    on_inner, write_transaction, AnyConnection, Backend, Database, DbError,
};
use crate::persistence::rows::{db_time, AttemptRow, DeliveryRow, NotificationRow};
use crate::persistence::schema::{
    deliveries, delivery_attempts, notification_mentions, notifications,
};

/// The [`NotificationRepository`] on the Diesel [`Database`] (SQLite or PostgreSQL).
///
/// `insert_batch` goes through a [`GroupCommit`]: concurrent requests share transactions.
#[derive(Debug, Clone)]
pub struct DieselNotificationRepository {
    pub(super) db: Database,
    group: Arc<GroupCommit>,
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
            group: GroupCommit::new(db.clone(), writers),
            db,
        }
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

/// Whether a notification is visible in the inbox at `now`: not cancelled, and not scheduled or
/// due. The time is the process clock's (the read ports take none).
macro_rules! visible_at {
    ($now:expr) => {
        notifications::cancelled_at.is_null().and(
            notifications::deliver_at
                .is_null()
                .or(notifications::deliver_at.le($now)),
        )
    };
}

/// A `notification_mentions` row: someone a notification names besides its recipient.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = notification_mentions)]
pub(crate) struct MentionRow {
    pub notification_id: String,
    pub recipient_id: String,
}

/// Everything one write adds: notifications, their deliveries, whom they mention.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rows {
    pub notifications: Vec<NotificationRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub mentions: Vec<MentionRow>,
}

impl Rows {
    /// Appends `other`'s rows (a group commit writes several requests' rows together).
    pub(crate) fn extend(&mut self, other: &Rows) {
        self.notifications
            .extend(other.notifications.iter().cloned());
        self.deliveries.extend(other.deliveries.iter().cloned());
        self.mentions.extend(other.mentions.iter().cloned());
    }
}

/// The rows of `batch`: notifications, deliveries due at their notification's time, and the
/// other recipients each names (`clairon_domain::rules::mentioned_recipients`, so an erasure
/// finds them). Each notification carries the id of the HTTP request being served, if any:
/// call this on the request's task, before moving to the blocking pool.
fn rows_of(batch: &[NewNotification]) -> Rows {
    let request_id = crate::correlation::current_request_id();
    let notifications = batch
        .iter()
        .map(|n| NotificationRow {
            request_id: request_id.clone(),
            ..NotificationRow::scheduled(&n.notification, n.deliver_at)
        })
        .collect();
    let deliveries = batch
        .iter()
        .flat_map(|n| {
            n.deliveries
                .iter()
                .map(|d| DeliveryRow::due_at(d, n.notification.priority, n.deliver_at))
        })
        .collect();
    let mentions = batch
        .iter()
        .flat_map(|n| {
            clairon_domain::rules::mentioned_recipients(&n.notification)
                .into_iter()
                .map(|named| MentionRow {
                    notification_id: n.notification.id.as_str().to_owned(),
                    recipient_id: named.as_str().to_owned(),
                })
        })
        .collect();
    Rows {
        notifications,
        deliveries,
        mentions,
    }
}

/// Inserts notifications, their deliveries and mentions, numbering each notification in its
/// recipient's sequence (the SSE event ids) within the caller's transaction.
pub(super) fn insert_rows(conn: &mut AnyConnection, rows: &Rows) -> Result<(), DbError> {
    // Counters first, in recipient order, so concurrent writers lock alike; each row then
    // carries its number in the INSERT.
    let numbered = super::inbox_feed::numbered(conn, &rows.notifications)?;
    for chunk in numbered.chunks(CHUNK) {
        on_inner!(conn, |c| diesel::insert_into(notifications::table)
            .values(chunk)
            .execute(c))?;
    }
    for chunk in rows.deliveries.chunks(CHUNK) {
        on_inner!(conn, |c| diesel::insert_into(deliveries::table)
            .values(chunk)
            .execute(c))?;
    }
    // The foreign key to `recipients` refuses to name someone erased meanwhile: the write
    // fails whole rather than keep a name the erasure could no longer find.
    for chunk in rows.mentions.chunks(CHUNK) {
        on_inner!(conn, |c| diesel::insert_into(notification_mentions::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// Writes `rows`, and `settlement` of the request's `Idempotency-Key` record first, in the
/// caller's transaction.
pub(super) fn write_rows(
    conn: &mut AnyConnection,
    rows: &Rows,
    settlement: Option<&Settlement>,
) -> Result<(), DbError> {
    if let Some(settlement) = settlement {
        super::idempotency::settle(conn, settlement)?;
    }
    insert_rows(conn, rows)
}

/// Makes the reminder changes of one planning (the reminders keyed under `prefix`) take turns.
///
/// On PostgreSQL two events of one planning may be written at once, in READ COMMITTED: each
/// would read the live reminders before the other commits, and both insert a reminder under the
/// same key, the second then failing on the unique index of live keys (a `500` for a request
/// that did nothing wrong). A transaction-scoped advisory lock on the prefix makes the second
/// wait for the first, then read what it committed (each statement reads afresh in READ
/// COMMITTED) and replace or keep its reminders. SQLite needs nothing: `BEGIN IMMEDIATE`
/// already runs writers one at a time.
fn serialize_planning(conn: &mut AnyConnection, prefix: &str) -> Result<(), DbError> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<diesel::sql_types::Text, _>(prefix)
            .execute(pg)?;
    }
    Ok(())
}

/// Cancels the notifications `ids`: out of the inbox for good, pending deliveries `cancelled`.
fn cancel_notifications(
    conn: &mut AnyConnection,
    ids: &[String],
    now: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    for chunk in ids.chunks(CHUNK) {
        diesel::update(notifications::table.filter(notifications::id.eq_any(chunk)))
            .set(notifications::cancelled_at.eq(Some(now)))
            .execute(conn)?;
        diesel::update(
            deliveries::table
                .filter(deliveries::notification_id.eq_any(chunk))
                .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str())),
        )
        .set((
            deliveries::status.eq(DeliveryStatus::Cancelled.as_str()),
            deliveries::updated_at.eq(now),
        ))
        .execute(conn)?;
    }
    if !ids.is_empty() {
        tracing::debug!(count = ids.len(), "pending reminders cancelled");
    }
    Ok(())
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
        let rows = rows_of(batch);
        let settlement = idempotency::settlement_for(batch);
        let answered = settlement.as_ref().is_some_and(|s| s.answer.is_some());
        self.group.insert(rows, settlement).await?;
        if answered {
            idempotency::mark_answered();
        }
        Ok(())
    }

    async fn insert_with_reminders(
        &self,
        batch: &[NewNotification],
        reminders: &ReminderChanges,
    ) -> Result<Vec<NotificationId>, RepositoryError> {
        let event_rows = rows_of(batch);
        let settlement = idempotency::settlement_for(batch);
        let answered = settlement.as_ref().is_some_and(|s| s.answer.is_some());
        let schedule: Vec<(String, Rows)> = reminders
            .schedule
            .iter()
            .map(|r| {
                let mut rows = rows_of(std::slice::from_ref(&r.notification));
                for row in &mut rows.notifications {
                    row.cancellation_key = Some(r.key.clone());
                }
                (r.key.clone(), rows)
            })
            .collect();
        let prefix = reminders.prefix.clone();
        let keep: HashSet<String> = reminders.keep.iter().cloned().collect();
        let now = db_time(reminders.now);
        let written = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    serialize_planning(conn, &prefix)?;
                    write_rows(conn, &event_rows, settlement.as_ref())?;
                    // LIKE narrows (a `%` or `_` in an id only widens it); `starts_with` decides.
                    let live: Vec<(String, Option<String>)> = notifications::table
                        .filter(notifications::cancellation_key.like(format!("{prefix}%")))
                        .filter(notifications::cancelled_at.is_null())
                        .select((notifications::id, notifications::cancellation_key))
                        .load(conn)?;
                    let live: Vec<(String, String)> = live
                        .into_iter()
                        .filter_map(|(id, key)| key.map(|k| (id, k)))
                        .filter(|(_, key)| key.starts_with(&prefix))
                        .collect();
                    let live_ids: Vec<&String> = live.iter().map(|(id, _)| id).collect();
                    let mut pending: HashSet<String> = HashSet::new();
                    for chunk in live_ids.chunks(CHUNK) {
                        pending.extend(
                            deliveries::table
                                .filter(deliveries::notification_id.eq_any(chunk))
                                .filter(deliveries::status.eq(DeliveryStatus::Pending.as_str()))
                                .select(deliveries::notification_id)
                                .load::<String>(conn)?,
                        );
                    }
                    let rescheduled: HashSet<&str> =
                        schedule.iter().map(|(key, _)| key.as_str()).collect();
                    // A reminder that went out (or is going out) is not made again.
                    let gone_out: HashSet<&str> = live
                        .iter()
                        .filter(|(id, _)| !pending.contains(id))
                        .map(|(_, key)| key.as_str())
                        .collect();
                    let cancel: Vec<String> = live
                        .iter()
                        .filter(|(id, key)| {
                            pending.contains(id)
                                && (!keep.contains(key) || rescheduled.contains(key.as_str()))
                        })
                        .map(|(id, _)| id.clone())
                        .collect();
                    cancel_notifications(conn, &cancel, now)?;
                    let mut written = Vec::new();
                    for (key, rows) in &schedule {
                        if gone_out.contains(key.as_str()) {
                            continue;
                        }
                        insert_rows(conn, rows)?;
                        written.extend(rows.notifications.iter().map(|r| r.id.clone()));
                    }
                    parse_ids(written)
                })
            })
            .await?;
        if answered {
            idempotency::mark_answered();
        }
        Ok(written)
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
        let now = db_time(Utc::now());
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
        let now = db_time(Utc::now());
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
        let now = db_time(Utc::now());
        self.db
            .call(move |conn| {
                let mut counts = HashMap::with_capacity(ids.len());
                for chunk in ids.chunks(CHUNK) {
                    let rows: Vec<(String, i64)> = notifications::table
                        .filter(notifications::recipient_id.eq_any(chunk))
                        .filter(visible_at!(now))
                        .filter(notifications::read_at.is_null())
                        .group_by(notifications::recipient_id)
                        .select((notifications::recipient_id, diesel::dsl::count_star()))
                        .load(conn)?;
                    for (recipient, count) in rows {
                        let recipient = RecipientId::parse(&recipient).map_err(|e| {
                            DbError::Corrupt(format!("notifications: recipient {recipient:?}: {e}"))
                        })?;
                        counts.insert(recipient, u64::try_from(count).unwrap_or(0));
                    }
                }
                Ok(counts)
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
        let now = db_time(Utc::now());
        self.db
            .call(move |conn| {
                let mut changed: Vec<String> = diesel::update(
                    notifications::table
                        .filter(notifications::recipient_id.eq(recipient))
                        .filter(visible_at!(now))
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
