//! The notification write path: everything that adds notifications to the database, in one
//! place.
//!
//! A write is [`Rows`] (notifications, their deliveries, the recipients each mentions), built
//! on the request's task by [`rows_of`] and written in one transaction by [`insert_rows`], which
//! numbers each notification in its recipient's inbox sequence ([`numbering`]: immediate ones
//! in their `INSERT`, scheduled ones when they fall due). A plain batch goes through the
//! [`group_commit`]: concurrent requests share transactions. An event with reminders is written
//! alone by [`reminders::write`], which replaces or cancels its planning's live reminders in the
//! same transaction. The `Idempotency-Key` answer of the request is settled in the
//! notifications' own transaction, so a lost answer never makes a retry write them twice.
//!
//! The inbox feed (`inbox_feed.rs`) and the notification reads only read what this module
//! wrote; nothing else inserts notifications.

mod coalescing;
mod group_commit;
pub(crate) mod numbering;
mod reminders;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDateTime;
use clairon_application::ports::{
    CreationLease, LeasedWrite, NewNotification, ReminderChanges, RepositoryError,
};
use clairon_domain::{Channel, DeliveryStatus, NotificationId};
use diesel::prelude::*;

use self::group_commit::GroupCommit;
use super::CHUNK;
use crate::idempotency::{self, Settlement};
use crate::persistence::connection::{
    on_inner, write_transaction, AnyConnection, Database, DbError,
};
use crate::persistence::rows::{db_time, DeliveryRow, NotificationRow};
use crate::persistence::schema::{deliveries, notification_mentions, notifications};

/// Whether a notification is visible in the inbox at `now`: not cancelled, and not scheduled or
/// due. The time is the process clock's (the read ports take none).
// Used by `super::notifications` too (`#[macro_use]` on this module).
macro_rules! visible_at {
    ($now:expr) => {
        notifications::cancelled_at.is_null().and(
            notifications::deliver_at
                .is_null()
                .or(notifications::deliver_at.le($now)),
        )
    };
}

/// Writes notifications: plain batches through the group commit, events with reminders alone.
#[derive(Debug, Clone)]
pub(crate) struct NotificationWriter {
    db: Database,
    group: Arc<GroupCommit>,
}

impl NotificationWriter {
    /// A writer on `db` running at most `writers` (≥ 1) grouped transactions at once.
    pub(crate) fn new(db: Database, writers: usize) -> Self {
        Self {
            group: GroupCommit::new(db.clone(), writers),
            db,
        }
    }

    /// `NotificationRepository::insert_batch`: the batch, grouped with concurrent ones.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when a uniqueness rule refuses one of its rows,
    /// [`RepositoryError::Unavailable`] when the database fails; nothing is written then.
    pub(crate) async fn insert_batch(
        &self,
        batch: &[NewNotification],
    ) -> Result<(), RepositoryError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.insert_leased(batch, None).await.map(|_| ())
    }

    /// `NotificationRepository::insert_leased` (`lease: Some`) and `insert_batch` (`None`): the
    /// batch through the group commit, its `sending` deliveries under `lease`; returns each
    /// notification's inbox number, in `batch` order, and the unread counts of the recipients
    /// of its `sending` in-app deliveries, read in the writing transaction.
    ///
    /// # Errors
    /// As [`Self::insert_batch`].
    pub(crate) async fn insert_leased(
        &self,
        batch: &[NewNotification],
        lease: Option<&CreationLease>,
    ) -> Result<LeasedWrite, RepositoryError> {
        if batch.is_empty() {
            return Ok(LeasedWrite::default());
        }
        let mut rows = rows_of(batch);
        if let Some(lease) = lease {
            let until = db_time(lease.until);
            for row in &mut rows.deliveries {
                if row.status == DeliveryStatus::Sending.as_str() {
                    row.claim_token = Some(lease.claim.as_str().to_owned());
                    row.lease_expires_at = Some(until);
                }
            }
        }
        let settlement = idempotency::settlement_for(batch);
        let answered = settlement.as_ref().is_some_and(|s| s.answer.is_some());
        let written = self.group.insert(rows, settlement).await?;
        if answered {
            idempotency::mark_answered();
        }
        let mut unread = HashMap::new();
        for new in batch {
            let recipient = &new.notification.recipient_id;
            if let Some(&count) = written.unread.get(recipient.as_str()) {
                unread.insert(recipient.clone(), count);
            }
        }
        Ok(LeasedWrite {
            seqs: batch
                .iter()
                .map(|n| written.seqs.get(n.notification.id.as_str()).copied())
                .collect(),
            unread,
        })
    }

    /// `NotificationRepository::insert_with_reminders`: the batch and the reminder changes of
    /// its planning in one transaction; returns the ids of the reminders written.
    ///
    /// # Errors
    /// As [`Self::insert_batch`].
    pub(crate) async fn insert_with_reminders(
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
                    let change = reminders::Change {
                        prefix: &prefix,
                        keep: &keep,
                        schedule: &schedule,
                        now,
                    };
                    reminders::write(conn, &event_rows, settlement.as_ref(), &change)
                })
            })
            .await?;
        if answered {
            idempotency::mark_answered();
        }
        Ok(written)
    }
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

/// The inbox numbers a write gave its notifications, by notification id (immediate ones only).
pub(crate) type Seqs = HashMap<String, u64>;

/// What one transaction of the write path wrote: the inbox numbers it gave, and the unread
/// counts (after the write, by recipient id) of the recipients of its `sending` in-app
/// deliveries — those published at commit — read in the same transaction, so publishing needs
/// no query of its own. A recipient with nothing unread is absent.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub seqs: Seqs,
    pub unread: HashMap<String, u64>,
}

/// Inserts notifications, their deliveries and mentions, numbering each notification in its
/// recipient's sequence (the SSE event ids) within the caller's transaction, then counts the
/// unread notifications of the recipients of its `sending` in-app deliveries as of `now`.
fn insert_rows(
    conn: &mut AnyConnection,
    rows: &Rows,
    now: NaiveDateTime,
) -> Result<Written, DbError> {
    // Counters first, in recipient order, so concurrent writers lock alike; each row then
    // carries its number in the INSERT.
    let numbered = numbering::numbered(conn, &rows.notifications)?;
    let seqs: Seqs = numbered
        .iter()
        .filter_map(|row| match row.id_and_seq() {
            (id, Some(seq)) => u64::try_from(seq).ok().map(|seq| (id.to_owned(), seq)),
            _ => None,
        })
        .collect();
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
    let mut published: Vec<&str> = rows
        .deliveries
        .iter()
        .filter(|d| {
            d.status == DeliveryStatus::Sending.as_str() && d.channel == Channel::InApp.as_str()
        })
        .map(|d| d.recipient_id.as_str())
        .collect();
    published.sort_unstable();
    published.dedup();
    let unread = count_unread(conn, &published, now)?;
    Ok(Written { seqs, unread })
}

/// The unread notifications of each of `recipient_ids` visible at `now` (one grouped query per
/// [`CHUNK`] recipients), by recipient id; a recipient with none is absent. Runs on the caller's
/// connection, so the write path counts inside its own transaction.
pub(crate) fn count_unread(
    conn: &mut AnyConnection,
    recipient_ids: &[&str],
    now: chrono::NaiveDateTime,
) -> Result<HashMap<String, u64>, DbError> {
    let mut counts = HashMap::with_capacity(recipient_ids.len());
    for chunk in recipient_ids.chunks(CHUNK) {
        let rows: Vec<(String, i64)> = notifications::table
            .filter(notifications::recipient_id.eq_any(chunk))
            .filter(visible_at!(now))
            .filter(notifications::read_at.is_null())
            .group_by(notifications::recipient_id)
            .select((notifications::recipient_id, diesel::dsl::count_star()))
            .load(conn)?;
        for (recipient, count) in rows {
            counts.insert(recipient, u64::try_from(count).unwrap_or(0));
        }
    }
    Ok(counts)
}

/// Writes `rows`, and `settlement` of the request's `Idempotency-Key` record first, in the
/// caller's transaction.
fn write_rows(
    conn: &mut AnyConnection,
    rows: &Rows,
    settlement: Option<&Settlement>,
    now: NaiveDateTime,
) -> Result<Written, DbError> {
    if let Some(settlement) = settlement {
        super::idempotency::settle(conn, settlement)?;
    }
    insert_rows(conn, rows, now)
}
