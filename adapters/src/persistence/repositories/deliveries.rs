//! [`DieselDeliveryQueue`]: the outbox as the dispatcher sees it.
//!
//! Claiming is the one place where the engines differ. PostgreSQL may serve several dispatchers
//! (several Clairon processes): due rows are selected `FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers each get different rows without waiting for one another. SQLite has one writer at a
//! time: the claim runs in a `BEGIN IMMEDIATE` transaction, so claimers queue on the write lock
//! and each sees the previous one's leases.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{
    AttemptRecord, ClaimedDelivery, DeliveryQueue, DeliveryUpdate, RepositoryError,
};
use clairon_domain::{DeliveryId, DeliveryStatus};
use diesel::prelude::*;

use super::recipients::load_recipients;
use super::CHUNK;
use crate::persistence::connection::{
    on_inner, write_transaction, AnyConnection, Database, DbError,
};
use crate::persistence::rows::{
    db_time, AttemptRow, DeliveryRow, NewAttemptRow, NotificationRow, OutcomeChanges,
};
use crate::persistence::schema::{deliveries, delivery_attempts, notifications};

/// The [`DeliveryQueue`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselDeliveryQueue {
    db: Database,
}

impl DieselDeliveryQueue {
    /// A queue on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The audit trail of one delivery: its attempt rows, first try first.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`], or [`RepositoryError::Corrupt`] for a row with a
    /// negative number or duration.
    pub async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptRecord>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .call(move |conn| {
                delivery_attempts::table
                    .filter(delivery_attempts::delivery_id.eq(id))
                    .order((delivery_attempts::number.asc(), delivery_attempts::id.asc()))
                    .select(AttemptRow::as_select())
                    .load(conn)?
                    .into_iter()
                    .map(AttemptRow::into_domain)
                    .collect()
            })
            .await
    }
}

/// The ids of up to `$limit` deliveries due at `$now`, in claim order. A macro rather than a
/// function: PostgreSQL appends `FOR UPDATE SKIP LOCKED` to the concrete statement type.
macro_rules! due_ids {
    ($now:expr, $limit:expr) => {
        deliveries::table
            .select(deliveries::id)
            .filter(
                deliveries::status
                    .eq(DeliveryStatus::Pending.as_str())
                    // A scheduled notification's deliveries are pending until `deliver_at`.
                    .and(deliveries::next_attempt_at.le($now))
                    .or(deliveries::status
                        .eq(DeliveryStatus::Retrying.as_str())
                        .and(deliveries::next_attempt_at.le($now)))
                    .or(deliveries::status
                        .eq(DeliveryStatus::Sending.as_str())
                        .and(deliveries::lease_expires_at.le($now))),
            )
            .order((
                deliveries::priority.desc(),
                deliveries::next_attempt_at.asc(),
                deliveries::id.asc(),
            ))
            .limit($limit)
    };
}

fn claim(
    conn: &mut AnyConnection,
    now: chrono::NaiveDateTime,
    lease_until: chrono::NaiveDateTime,
    limit: i64,
) -> Result<Vec<ClaimedDelivery>, DbError> {
    let ids: Vec<String> = match conn {
        AnyConnection::Postgresql(pg) => {
            due_ids!(now, limit).for_update().skip_locked().load(pg)?
        }
        AnyConnection::Sqlite(sqlite) => due_ids!(now, limit).load(sqlite)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let claimed: Vec<DeliveryRow> =
        diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
            .set((
                deliveries::status.eq(DeliveryStatus::Sending.as_str()),
                deliveries::lease_expires_at.eq(Some(lease_until)),
                deliveries::updated_at.eq(now),
            ))
            // `as_returning()` does not pass through `MultiConnection` (its `SelectBy` is
            // built for the multi backend, which RETURNING hands to each engine as is).
            .returning(deliveries::all_columns)
            .get_results(conn)?;

    // The batch's notifications and recipients in one query each, not one per delivery.
    let mut notification_ids: Vec<String> =
        claimed.iter().map(|d| d.notification_id.clone()).collect();
    notification_ids.sort_unstable();
    notification_ids.dedup();
    let mut recipient_ids: Vec<String> = claimed.iter().map(|d| d.recipient_id.clone()).collect();
    recipient_ids.sort_unstable();
    recipient_ids.dedup();

    let mut notifications_by_id = HashMap::with_capacity(notification_ids.len());
    for chunk in notification_ids.chunks(CHUNK) {
        for row in notifications::table
            .filter(notifications::id.eq_any(chunk))
            .select(NotificationRow::as_select())
            .load(conn)?
        {
            let notification = row.into_domain()?;
            notifications_by_id.insert(notification.id.as_str().to_owned(), notification);
        }
    }
    let recipients_by_id: HashMap<String, _> = load_recipients(conn, &recipient_ids)?
        .into_iter()
        .map(|r| (r.id.as_str().to_owned(), r))
        .collect();

    let mut by_id: HashMap<String, DeliveryRow> =
        claimed.into_iter().map(|d| (d.id.clone(), d)).collect();
    ids.iter()
        .filter_map(|id| by_id.remove(id))
        .map(|row| {
            let notification = notifications_by_id
                .get(&row.notification_id)
                .cloned()
                .ok_or_else(|| {
                    DbError::Corrupt(format!(
                        "deliveries {:?}: notification {:?} is missing",
                        row.id, row.notification_id
                    ))
                })?;
            let recipient = recipients_by_id
                .get(&row.recipient_id)
                .cloned()
                .ok_or_else(|| {
                    DbError::Corrupt(format!(
                        "deliveries {:?}: recipient {:?} is missing",
                        row.id, row.recipient_id
                    ))
                })?;
            Ok(ClaimedDelivery {
                delivery: row.into_domain()?,
                notification,
                recipient,
            })
        })
        .collect()
}

fn record(
    conn: &mut AnyConnection,
    updates: &[DeliveryUpdate],
    now: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    let mut attempts = Vec::new();
    for update in updates {
        let changed = diesel::update(deliveries::table.find(update.id.as_str()))
            .set(OutcomeChanges::new(update, now))
            .execute(conn)?;
        if changed == 0 {
            // Nothing to attach an attempt row to; the rest of the batch still counts.
            tracing::warn!(delivery_id = %update.id, "recorded an outcome for an unknown delivery");
            continue;
        }
        if let Some(attempt) = &update.attempt {
            attempts.push(NewAttemptRow::new(&update.id, attempt));
        }
    }
    for chunk in attempts.chunks(CHUNK) {
        on_inner!(conn, |c| diesel::insert_into(delivery_attempts::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

#[async_trait]
impl DeliveryQueue for DieselDeliveryQueue {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = chrono::TimeDelta::from_std(lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let (now, lease_until) = (db_time(now), db_time(lease_until));
        let claimed = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| claim(conn, now, lease_until, i64::from(limit)))
            })
            .await?;
        if !claimed.is_empty() {
            tracing::debug!(count = claimed.len(), "claimed due deliveries");
        }
        Ok(claimed)
    }

    async fn record(&self, updates: &[DeliveryUpdate]) -> Result<(), RepositoryError> {
        if updates.is_empty() {
            return Ok(());
        }
        let updates = updates.to_vec();
        let now = db_time(Utc::now());
        self.db
            .call(move |conn| write_transaction(conn, |conn| record(conn, &updates, now)))
            .await
    }
}
