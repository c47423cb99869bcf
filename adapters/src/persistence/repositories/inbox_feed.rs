//! The [`InboxFeed`] on [`DieselNotificationRepository`], and the per-recipient sequence numbers
//! `insert_batch` gives new notifications.
//!
//! `recipients.last_seq` is bumped with `UPDATE … RETURNING` in the inserting transaction: on
//! PostgreSQL the row lock serialises concurrent writers for one recipient until commit (so
//! numbers are gap-free and commit in order); on SQLite the single writer (`BEGIN IMMEDIATE`)
//! does the same.

use std::collections::BTreeMap;

use async_trait::async_trait;
use clairon_application::ports::{InboxFeed, RepositoryError, SequencedNotification};
use clairon_domain::{NotificationId, RecipientId};
use diesel::prelude::*;

use super::DieselNotificationRepository;
use crate::persistence::connection::{AnyConnection, DbError};
use crate::persistence::rows::NotificationRow;
use crate::persistence::schema::{notifications, recipients};

/// New notification ids per recipient, in insertion order; the map orders recipients.
pub(crate) type SeqPlan = BTreeMap<String, Vec<String>>;

/// Groups `(notification id, recipient id)` pairs by recipient, keeping their order.
pub(crate) fn seq_plan<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> SeqPlan {
    let mut plan = SeqPlan::new();
    for (id, recipient) in rows {
        plan.entry(recipient.to_owned())
            .or_default()
            .push(id.to_owned());
    }
    plan
}

/// The rows to number when they are inserted: those visible at once. A scheduled notification
/// (`deliver_at`) is numbered when it falls due ([`number_due`]), so its number follows
/// everything the recipient saw before it and a client resuming from `Last-Event-ID` gets it.
pub(crate) fn immediate(rows: &[NotificationRow]) -> SeqPlan {
    seq_plan(
        rows.iter()
            .filter(|r| r.deliver_at.is_none())
            .map(|r| (r.id.as_str(), r.recipient_id.as_str())),
    )
}

/// Numbers the notifications among `ids` that have no number yet (scheduled ones, now due).
pub(crate) fn number_due(conn: &mut AnyConnection, ids: &[String]) -> Result<(), DbError> {
    let unnumbered: Vec<(String, String)> = notifications::table
        .filter(notifications::id.eq_any(ids))
        .filter(notifications::seq.is_null())
        .filter(notifications::cancelled_at.is_null())
        .order(notifications::id.asc())
        .select((notifications::id, notifications::recipient_id))
        .load(conn)?;
    if unnumbered.is_empty() {
        return Ok(());
    }
    let plan = seq_plan(unnumbered.iter().map(|(id, r)| (id.as_str(), r.as_str())));
    let seqs = bump_counters(conn, &plan)?;
    write_seqs(conn, &seqs)
}

/// Reserves one number per new notification on each recipient's counter (in recipient order)
/// and returns `(notification id, seq)` pairs.
pub(crate) fn bump_counters(
    conn: &mut AnyConnection,
    plan: &SeqPlan,
) -> Result<Vec<(String, i64)>, DbError> {
    let mut seqs = Vec::new();
    for (recipient, ids) in plan {
        let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        let last: i64 = diesel::update(recipients::table.find(recipient))
            .set(recipients::last_seq.eq(recipients::last_seq + count))
            .returning(recipients::last_seq)
            .get_result(conn)?;
        let first = last - count + 1;
        seqs.extend(ids.iter().zip(first..).map(|(id, seq)| (id.clone(), seq)));
    }
    Ok(seqs)
}

/// Stores the reserved numbers on the inserted rows.
pub(crate) fn write_seqs(conn: &mut AnyConnection, seqs: &[(String, i64)]) -> Result<(), DbError> {
    for (id, seq) in seqs {
        diesel::update(notifications::table.find(id))
            .set(notifications::seq.eq(Some(*seq)))
            .execute(conn)?;
    }
    Ok(())
}

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
