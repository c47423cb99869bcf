//! [`DieselDeliveryQueue`]: the outbox as the dispatcher sees it.
//!
//! Claiming and recording are where the engines differ. PostgreSQL may serve several dispatchers
//! (several Clairon processes): due rows are selected `FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers each get different rows without waiting for one another. SQLite has one writer at a
//! time: the claim runs in a `BEGIN IMMEDIATE` transaction, so claimers queue on the write lock
//! and each sees the previous one's leases. A claim only takes the channels it is given (the
//! dispatcher leaves out a channel a provider paused with a 429).
//!
//! Recording a batch is one `UPDATE … FROM unnest(…)` on PostgreSQL (one round trip per batch,
//! whatever its size) and one UPDATE per delivery on SQLite, where statements are in-process
//! calls anyway; the attempt rows follow in chunked multi-row INSERTs.
//!
//! No poison pill: each claim writes a fresh claim token on its rows, and recording or renewing
//! only touches rows still `sending` under that token (fencing), so a worker that lost its lease
//! never writes over the worker that took the delivery over. A lapsed lease found by the claim
//! counts one crash on the delivery (`deliveries.crashes`); a delivery with a crash is claimed
//! alone, and one with [`POISON_CRASHES`] is parked `dead` ("poison…") instead of being handed
//! out again. A delivery whose notification or recipient row does not read back is parked
//! `failed` with the reason, never failing the claim of the others.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{
    AttemptRecord, ClaimToken, ClaimedDelivery, DeliveryListQuery, DeliveryPage, DeliveryQueue,
    DeliveryRepository, DeliveryUpdate, IdGenerator, RepositoryError, Requeued, POISON_CRASHES,
};
use clairon_domain::{Channel, ChannelSet, DeliveryId, DeliveryStatus, Priority};
use diesel::prelude::*;

use super::CHUNK;
use crate::persistence::connection::{
    on_inner, write_transaction, AnyConnection, Database, DbError,
};
use crate::persistence::rows::{
    db_time, utc, AttemptRow, DeliveryRow, NewAttemptRow, NotificationRow, OutcomeChanges,
    RecipientRow,
};
use crate::persistence::schema::{
    deliveries, delivery_attempts, notifications, push_subscriptions, recipients,
};
use crate::system::UuidV7Generator;

/// The [`DeliveryQueue`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselDeliveryQueue {
    db: Database,
    /// Whether recording `sent`, `failed` or `dead` also writes its host event (issue 12).
    host_events: bool,
}

impl DieselDeliveryQueue {
    /// A queue on `db`.
    pub fn new(db: Database) -> Self {
        Self {
            db,
            host_events: false,
        }
    }

    /// The same queue, writing a `delivery.sent|failed|dead` host event in the transaction of
    /// each such outcome it records when `on` (`CLAIRON_EVENTS_WEBHOOK_URL` is set).
    #[must_use]
    pub fn with_host_events(mut self, on: bool) -> Self {
        self.host_events = on;
        self
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

/// Up to `$limit` deliveries due at `$now`, in claim order (`priority DESC, claim_rank DESC,
/// next_attempt_at, id`: a due paced put-back before the fresh rows of its priority), as
/// `(id, status, crashes)`. A macro
/// rather than a function: PostgreSQL appends `FOR UPDATE SKIP LOCKED` to the concrete statement
/// type.
macro_rules! due_rows {
    ($now:expr, $limit:expr, $channels:expr) => {
        deliveries::table
            .select((deliveries::id, deliveries::status, deliveries::crashes))
            .filter(deliveries::channel.eq_any($channels))
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
            // A due put-back for pacing (`claim_rank` 1) before the fresh rows of its priority:
            // they are due at their creation, long before its slot, and would otherwise take
            // whole claims while its slot passes (issue 12). Only due rows are ordered, so it is
            // never ahead before its slot. The order of `deliveries_due_idx`.
            .order((
                deliveries::priority.desc(),
                deliveries::claim_rank.desc(),
                deliveries::next_attempt_at.asc(),
                deliveries::id.asc(),
            ))
            .limit($limit)
    };
}

/// The `last_error` of a delivery parked as a poison pill.
pub(super) fn poison_reason(crashes: i32) -> String {
    format!(
        "poison: its worker died {crashes} times while sending it, before any outcome was \
         recorded; parked instead of being retried (retry it by hand once the cause is fixed)"
    )
}

/// Parks `poisoned` (each id with the crash count it reached) `dead` as poison pills, in the
/// caller's transaction: the claim and the lease reaper both park this way. Each parked delivery
/// hands its notification over to the next channel of its fallback chain, as any other `dead`
/// outcome does ([`clairon_domain::Delivery::fallback_link`]), and the host application hears of
/// it (`delivery.dead`) when `host_events` is on.
pub(super) fn park_poisoned(
    conn: &mut AnyConnection,
    poisoned: &[(String, i32)],
    now: chrono::NaiveDateTime,
    host_events: bool,
) -> Result<(), DbError> {
    if poisoned.is_empty() {
        return Ok(());
    }
    for (id, crashes) in poisoned {
        tracing::error!(
            delivery_id = %id,
            crashes,
            "poison pill: a delivery crashed its worker {crashes} times; parked dead"
        );
        diesel::update(deliveries::table.find(id))
            .set((
                deliveries::status.eq(DeliveryStatus::Dead.as_str()),
                deliveries::crashes.eq(crashes),
                deliveries::last_error.eq(Some(poison_reason(*crashes))),
                deliveries::lease_expires_at.eq(None::<chrono::NaiveDateTime>),
                deliveries::claim_token.eq(None::<String>),
                deliveries::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    let ids: Vec<String> = poisoned.iter().map(|(id, _)| id.clone()).collect();
    let parked: Vec<DeliveryRow> = deliveries::table
        .filter(deliveries::id.eq_any(&ids))
        .filter(deliveries::fallback.is_not_null())
        .select(DeliveryRow::as_select())
        .load(conn)?;
    let mut links = Vec::new();
    for row in parked {
        let priority = row.priority;
        let delivery = match row.into_domain() {
            Ok(delivery) => delivery,
            Err(e) => {
                tracing::error!(error = ?e, "a poisoned delivery's chain cannot be read; it stops here");
                continue;
            }
        };
        let next = delivery.fallback_link(
            DeliveryStatus::Dead,
            UuidV7Generator.delivery_id(),
            utc(now),
        );
        if let Some(next) = next {
            tracing::info!(
                delivery_id = %delivery.id,
                next_channel = %next.channel,
                "poisoned delivery parked; its fallback channel takes over"
            );
            let mut link = DeliveryRow::new(&next, Priority::Normal);
            link.priority = priority;
            links.push(link);
        }
    }
    insert_links(conn, links)?;
    if host_events {
        // Parked `dead`: the host application hears of it as of any other dead delivery.
        super::host_events::record_deliveries(conn, &ids, now)?;
    }
    Ok(())
}

/// Inserts the next links of fallback chains, in the caller's transaction. A `web_push` link
/// (one delivery per subscription elsewhere) is addressed to the recipient's newest push
/// subscription, the browser it most likely still uses; without one it stays unaddressed and is
/// skipped as unreachable, which passes the chain on.
fn insert_links(conn: &mut AnyConnection, mut links: Vec<DeliveryRow>) -> Result<(), DbError> {
    for link in &mut links {
        if link.channel != Channel::WebPush.as_str() || link.address.is_some() {
            continue;
        }
        link.address = push_subscriptions::table
            .filter(push_subscriptions::recipient_id.eq(&link.recipient_id))
            .order((
                push_subscriptions::created_at.desc(),
                push_subscriptions::endpoint.desc(),
            ))
            .select(push_subscriptions::endpoint)
            .first::<String>(conn)
            .optional()?;
    }
    for chunk in links.chunks(CHUNK) {
        on_inner!(conn, |c| diesel::insert_into(deliveries::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// Parks a claimed delivery whose stored rows cannot be read `failed` with `reason`, so one
/// corrupt row never blocks the queue (every claim would fail on it otherwise).
fn park_unreadable(
    conn: &mut AnyConnection,
    id: &str,
    reason: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    tracing::error!(delivery_id = %id, reason, "a claimed delivery cannot be read back; parked failed");
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::status.eq(DeliveryStatus::Failed.as_str()),
            deliveries::last_error.eq(Some(format!(
                "the stored delivery cannot be read: {reason}"
            ))),
            deliveries::lease_expires_at.eq(None::<chrono::NaiveDateTime>),
            deliveries::claim_token.eq(None::<String>),
            deliveries::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

fn claim(
    conn: &mut AnyConnection,
    now: chrono::NaiveDateTime,
    lease_until: chrono::NaiveDateTime,
    limit: i64,
    channels: &[&'static str],
    token: &ClaimToken,
    host_events: bool,
) -> Result<Vec<ClaimedDelivery>, DbError> {
    let due: Vec<(String, String, i32)> = match conn {
        AnyConnection::Postgresql(pg) => due_rows!(now, limit, channels)
            .for_update()
            .skip_locked()
            .load(pg)?,
        AnyConnection::Sqlite(sqlite) => due_rows!(now, limit, channels).load(sqlite)?,
    };
    if due.is_empty() {
        return Ok(Vec::new());
    }
    // A row still `sending` here has a lapsed lease: the worker holding it died (or hung)
    // before recording anything. That is one more crash to its name.
    let poison_at = i32::try_from(POISON_CRASHES).unwrap_or(i32::MAX);
    let mut poisoned = Vec::new();
    let mut suspect = None;
    let mut clean = Vec::new();
    for (id, status, crashes) in due {
        let crashes = crashes + i32::from(status == DeliveryStatus::Sending.as_str());
        if crashes >= poison_at {
            poisoned.push((id, crashes));
        } else if crashes > 0 {
            suspect = suspect.or(Some((id, crashes)));
        } else {
            clean.push(id);
        }
    }
    park_poisoned(conn, &poisoned, now, host_events)?;
    // A suspect is claimed alone: if it is what crashed its worker, this time it takes no
    // innocent delivery down with it (and they do not pile up crashes of its making).
    let (ids, crashes) = match suspect {
        Some((id, crashes)) => (vec![id], crashes),
        None => (clean, 0),
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let claimed: Vec<DeliveryRow> =
        diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
            .set((
                deliveries::status.eq(DeliveryStatus::Sending.as_str()),
                deliveries::lease_expires_at.eq(Some(lease_until)),
                deliveries::claim_token.eq(Some(token.as_str())),
                deliveries::crashes.eq(crashes),
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

    // Rows that do not read back are kept as their reason: they fail their deliveries alone.
    let mut notifications_by_id = HashMap::with_capacity(notification_ids.len());
    for chunk in notification_ids.chunks(CHUNK) {
        let rows: Vec<NotificationRow> = notifications::table
            .filter(notifications::id.eq_any(chunk))
            .select(NotificationRow::as_select())
            .load(conn)?;
        // A scheduled notification gets its inbox number when its first delivery falls due;
        // immediate ones were numbered on insert, so most batches skip this query.
        let scheduled: Vec<String> = rows
            .iter()
            .filter(|r| r.deliver_at.is_some())
            .map(|r| r.id.clone())
            .collect();
        if !scheduled.is_empty() {
            super::notification_writes::numbering::number_due(conn, &scheduled)?;
        }
        for row in rows {
            let id = row.id.clone();
            let request_id = row.request_id.clone();
            let read = row
                .into_domain()
                .map(|notification| (notification, request_id))
                .map_err(unreadable);
            notifications_by_id.insert(id, read);
        }
    }
    let mut recipients_by_id = HashMap::with_capacity(recipient_ids.len());
    for chunk in recipient_ids.chunks(CHUNK) {
        let rows: Vec<RecipientRow> = recipients::table
            .filter(recipients::id.eq_any(chunk))
            .select(RecipientRow::as_select())
            .load(conn)?;
        for row in rows {
            recipients_by_id.insert(row.id.clone(), row.into_domain().map_err(unreadable));
        }
    }

    let mut by_id: HashMap<String, DeliveryRow> =
        claimed.into_iter().map(|d| (d.id.clone(), d)).collect();
    let mut batch = Vec::with_capacity(ids.len());
    let mut parked = Vec::new();
    for row in ids.iter().filter_map(|id| by_id.remove(id)) {
        let id = row.id.clone();
        let notification = match notifications_by_id.get(&row.notification_id) {
            Some(Ok(found)) => Ok(found.clone()),
            Some(Err(reason)) => Err(reason.clone()),
            None => Err(format!("notification {:?} is missing", row.notification_id)),
        };
        let recipient = match recipients_by_id.get(&row.recipient_id) {
            Some(Ok(found)) => Ok(found.clone()),
            Some(Err(reason)) => Err(reason.clone()),
            None => Err(format!("recipient {:?} is missing", row.recipient_id)),
        };
        let delivery = row.into_domain().map_err(unreadable);
        match (delivery, notification, recipient) {
            (Ok(delivery), Ok((notification, request_id)), Ok(recipient)) => {
                batch.push(ClaimedDelivery {
                    delivery,
                    notification,
                    recipient,
                    request_id,
                    claim: token.clone(),
                });
            }
            (Err(reason), _, _) | (_, Err(reason), _) | (_, _, Err(reason)) => {
                park_unreadable(conn, &id, &reason, now)?;
                parked.push(id);
            }
        }
    }
    if host_events && !parked.is_empty() {
        // Parked `failed`: reported like any failed delivery.
        super::host_events::record_deliveries(conn, &parked, now)?;
    }
    Ok(batch)
}

/// Why a row did not read back, for a parked delivery's `last_error`.
fn unreadable(error: DbError) -> String {
    match error {
        DbError::Corrupt(reason) => reason,
        other => format!("{:?}", RepositoryError::from(other)),
    }
}

/// Records `updates` under their claims; returns the ids whose claim was lost.
fn record(
    conn: &mut AnyConnection,
    updates: &[DeliveryUpdate],
    now: chrono::NaiveDateTime,
    host_events: bool,
) -> Result<Vec<DeliveryId>, DbError> {
    let recorded: HashSet<String> = match conn {
        AnyConnection::Postgresql(pg) => record_batch_pg(pg, updates, now)?,
        AnyConnection::Sqlite(_) => {
            let mut recorded = HashSet::with_capacity(updates.len());
            for update in updates {
                let changed = diesel::update(
                    deliveries::table
                        .filter(deliveries::id.eq(update.id.as_str()))
                        .filter(deliveries::status.eq(DeliveryStatus::Sending.as_str()))
                        .filter(deliveries::claim_token.eq(update.claim.as_str())),
                )
                .set(OutcomeChanges::new(update, now))
                .execute(conn)?;
                if changed > 0 {
                    recorded.insert(update.id.as_str().to_owned());
                }
            }
            recorded
        }
    };
    let mut attempts = Vec::new();
    let mut links = Vec::new();
    let mut lost = Vec::new();
    let mut reported = Vec::new();
    for update in updates {
        if !recorded.contains(update.id.as_str()) {
            // Another claim holds it now (or it is gone): its holder records its own outcome.
            tracing::debug!(delivery_id = %update.id, "outcome refused: the claim was lost");
            lost.push(update.id.clone());
            continue;
        }
        if let Some(attempt) = &update.attempt {
            attempts.push(NewAttemptRow::new(&update.id, attempt));
        }
        if let Some(link) = &update.fallback {
            links.push(DeliveryRow::new(&link.delivery, link.priority));
        }
        if host_events && super::host_events::reported(update.status) {
            reported.push(update.id.as_str().to_owned());
        }
    }
    // The host application's events of these outcomes (issue 12): in this transaction, so an
    // event is never told of an outcome that was not recorded, nor an outcome lost to it.
    if !reported.is_empty() {
        super::host_events::record_deliveries(conn, &reported, now)?;
    }
    for chunk in attempts.chunks(CHUNK) {
        on_inner!(conn, |c| diesel::insert_into(delivery_attempts::table)
            .values(chunk)
            .execute(c))?;
    }
    // The next links of the fallback chains these outcomes gave up on: in this transaction, so
    // an outcome is never recorded without the channel that takes over.
    insert_links(conn, links)?;
    Ok(lost)
}

/// The id of a row an `UPDATE … RETURNING` touched.
#[derive(QueryableByName)]
struct UpdatedId {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// Finalises a whole batch in ONE statement on PostgreSQL (`UPDATE … FROM unnest(…)`): one
/// round trip instead of one per delivery, which is what bounds the drain rate of several
/// workers sharing one database. Only rows still `sending` under the update's claim token are
/// touched; returns their ids.
fn record_batch_pg(
    pg: &mut diesel::PgConnection,
    updates: &[DeliveryUpdate],
    now: chrono::NaiveDateTime,
) -> Result<HashSet<String>, DbError> {
    use diesel::sql_types::{Array, Integer, Nullable, SmallInt, Text, Timestamp};

    let rows: Vec<OutcomeChanges> = updates
        .iter()
        .map(|u| OutcomeChanges::new(u, now))
        .collect();
    let ids: Vec<String> = updates.iter().map(|u| u.id.as_str().to_owned()).collect();
    let statuses: Vec<String> = rows.iter().map(|r| r.status.clone()).collect();
    let attempts: Vec<i32> = rows.iter().map(|r| r.attempts).collect();
    let errors: Vec<Option<String>> = rows.iter().map(|r| r.last_error.clone()).collect();
    let provider_ids: Vec<Option<String>> =
        rows.iter().map(|r| r.provider_message_id.clone()).collect();
    let sent_at: Vec<Option<chrono::NaiveDateTime>> = rows.iter().map(|r| r.sent_at).collect();
    let next_at: Vec<Option<chrono::NaiveDateTime>> =
        rows.iter().map(|r| r.next_attempt_at).collect();
    let claims: Vec<String> = updates
        .iter()
        .map(|u| u.claim.as_str().to_owned())
        .collect();
    let ranks: Vec<i16> = rows.iter().map(|r| r.claim_rank).collect();
    let updated: Vec<UpdatedId> = diesel::sql_query(
        "UPDATE deliveries AS d SET \
            status = u.status, attempts = u.attempts, last_error = u.last_error, \
            provider_message_id = u.provider_message_id, sent_at = u.sent_at, \
            next_attempt_at = COALESCE(u.next_attempt_at, d.next_attempt_at), \
            lease_expires_at = NULL, claim_token = NULL, crashes = 0, updated_at = $8, \
            claim_rank = u.claim_rank \
         FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], \
                     $6::timestamp[], $7::timestamp[], $9::text[], $10::int2[]) \
              AS u(id, status, attempts, last_error, provider_message_id, sent_at, \
                   next_attempt_at, claim_token, claim_rank) \
         WHERE d.id = u.id AND d.status = 'sending' AND d.claim_token = u.claim_token \
         RETURNING d.id",
    )
    .bind::<Array<Text>, _>(ids)
    .bind::<Array<Text>, _>(statuses)
    .bind::<Array<Integer>, _>(attempts)
    .bind::<Array<Nullable<Text>>, _>(errors)
    .bind::<Array<Nullable<Text>>, _>(provider_ids)
    .bind::<Array<Nullable<Timestamp>>, _>(sent_at)
    .bind::<Array<Nullable<Timestamp>>, _>(next_at)
    .bind::<Timestamp, _>(now)
    .bind::<Array<Text>, _>(claims)
    .bind::<Array<SmallInt>, _>(ranks)
    .load(pg)?;
    Ok(updated.into_iter().map(|u| u.id).collect())
}

/// Extends to `until` the leases of `claims` still `sending` under their token; returns the
/// ids renewed.
fn renew(
    conn: &mut AnyConnection,
    claims: &[(DeliveryId, ClaimToken)],
    until: chrono::NaiveDateTime,
) -> Result<Vec<DeliveryId>, DbError> {
    let mut by_token: HashMap<&str, Vec<&str>> = HashMap::new();
    for (id, token) in claims {
        by_token
            .entry(token.as_str())
            .or_default()
            .push(id.as_str());
    }
    let mut renewed = Vec::with_capacity(claims.len());
    for (token, ids) in by_token {
        for chunk in ids.chunks(CHUNK) {
            let touched: Vec<String> = diesel::update(
                deliveries::table
                    .filter(deliveries::id.eq_any(chunk))
                    .filter(deliveries::status.eq(DeliveryStatus::Sending.as_str()))
                    .filter(deliveries::claim_token.eq(token)),
            )
            .set(deliveries::lease_expires_at.eq(Some(until)))
            .returning(deliveries::id)
            .get_results(conn)?;
            for id in touched {
                renewed.push(
                    DeliveryId::parse(&id).map_err(|e| {
                        DbError::Corrupt(format!("deliveries {id:?}: {}", e.message))
                    })?,
                );
            }
        }
    }
    Ok(renewed)
}

#[async_trait]
impl DeliveryQueue for DieselDeliveryQueue {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
        channels: ChannelSet,
    ) -> Result<Vec<ClaimedDelivery>, RepositoryError> {
        if limit == 0 || channels.is_empty() {
            return Ok(Vec::new());
        }
        let channels: Vec<&'static str> = channels.iter().map(|c| c.as_str()).collect();
        let lease_until = chrono::TimeDelta::from_std(lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let (now, lease_until) = (db_time(now), db_time(lease_until));
        let token = ClaimToken::new(uuid::Uuid::now_v7().to_string());
        let host_events = self.host_events;
        let claimed = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    claim(
                        conn,
                        now,
                        lease_until,
                        i64::from(limit),
                        &channels,
                        &token,
                        host_events,
                    )
                })
            })
            .await?;
        if !claimed.is_empty() {
            tracing::debug!(count = claimed.len(), "claimed due deliveries");
        }
        Ok(claimed)
    }

    async fn record(&self, updates: &[DeliveryUpdate]) -> Result<Vec<DeliveryId>, RepositoryError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let updates = updates.to_vec();
        let now = db_time(self.db.now());
        let host_events = self.host_events;
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| record(conn, &updates, now, host_events))
            })
            .await
    }

    async fn renew(
        &self,
        claims: &[(DeliveryId, ClaimToken)],
        until: DateTime<Utc>,
    ) -> Result<Vec<DeliveryId>, RepositoryError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let claims = claims.to_vec();
        let until = db_time(until);
        self.db
            .call(move |conn| write_transaction(conn, |conn| renew(conn, &claims, until)))
            .await
    }
}

#[async_trait]
impl DeliveryRepository for DieselDeliveryQueue {
    async fn list(&self, query: &DeliveryListQuery) -> Result<DeliveryPage, RepositoryError> {
        let status = query.status.map(DeliveryStatus::as_str);
        let channel = query.channel.map(|c| c.as_str());
        let before = query.before.as_ref().map(|b| b.as_str().to_owned());
        let limit = query.limit.max(1);
        self.db
            .call(move |conn| {
                let mut select = deliveries::table
                    .select(DeliveryRow::as_select())
                    .order(deliveries::id.desc())
                    // One more than asked tells whether another page exists.
                    .limit(i64::from(limit) + 1)
                    .into_boxed();
                if let Some(status) = status {
                    select = select.filter(deliveries::status.eq(status));
                }
                if let Some(channel) = channel {
                    select = select.filter(deliveries::channel.eq(channel));
                }
                if let Some(before) = before {
                    select = select.filter(deliveries::id.lt(before));
                }
                let mut rows = select.load(conn)?;
                let more = rows.len() > limit as usize;
                rows.truncate(limit as usize);
                let items = rows
                    .into_iter()
                    .map(DeliveryRow::into_domain)
                    .collect::<Result<Vec<_>, _>>()?;
                let next = if more {
                    items.last().map(|d| d.id.clone())
                } else {
                    None
                };
                Ok(DeliveryPage { items, next })
            })
            .await
    }

    async fn requeue(
        &self,
        id: &DeliveryId,
        now: DateTime<Utc>,
    ) -> Result<Requeued, RepositoryError> {
        let id = id.as_str().to_owned();
        let now = db_time(now);
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    // Checked and changed in one statement: two operators retrying at once
                    // requeue it once, and a delivery that moved on meanwhile is left alone.
                    let requeued: Option<DeliveryRow> =
                        diesel::update(deliveries::table.filter(deliveries::id.eq(&id)).filter(
                            deliveries::status.eq_any(
                                DeliveryStatus::RETRYABLE_BY_HAND.map(DeliveryStatus::as_str),
                            ),
                        ))
                        .set((
                            deliveries::status.eq(DeliveryStatus::Pending.as_str()),
                            deliveries::attempts.eq(0),
                            deliveries::next_attempt_at.eq(now),
                            deliveries::lease_expires_at.eq(None::<chrono::NaiveDateTime>),
                            deliveries::claim_token.eq(None::<String>),
                            // An operator's retry: a poison pill gets a fresh start too.
                            deliveries::crashes.eq(0),
                            deliveries::updated_at.eq(now),
                        ))
                        .returning(deliveries::all_columns)
                        .get_results(conn)?
                        .pop();
                    if let Some(row) = requeued {
                        return Ok(Requeued::Requeued(row.into_domain()?));
                    }
                    let status: Option<String> = deliveries::table
                        .find(&id)
                        .select(deliveries::status)
                        .first(conn)
                        .optional()?;
                    match status {
                        None => Ok(Requeued::NotFound),
                        Some(raw) => DeliveryStatus::parse(&raw)
                            .map(Requeued::NotRetryable)
                            .map_err(|e| {
                                DbError::Corrupt(format!("deliveries {id:?}: {}", e.message))
                            }),
                    }
                })
            })
            .await
    }
}
