//! The operators' side of the database: [`DieselJobRunRepository`] (the `job_runs` record),
//! [`DieselHousekeeping`] (what the background jobs delete or release) and
//! [`DieselOperationsStats`] (the grouped counts behind `/metrics` and the admin stats).
//!
//! Everything here is written once for both engines; aggregates are plain `COUNT(*)`/`MIN`
//! grouped queries, and percentiles are left to the application so both engines agree.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_application::ports::{
    ChannelStatusCount, Finished, Housekeeping, JobRun, JobRunEnd, JobRunPage, JobRunQuery,
    JobRunRepository, JobRunSample, JobSource, JobStatus, JobTrigger, OperationsStatsSource,
    Purged, QueueDepth, RepositoryError, TaskType, POISON_CRASHES,
};
use clairon_domain::{Channel, DeliveryStatus};
use diesel::dsl::{count_star, min};
use diesel::prelude::*;

use super::CHUNK;
use crate::persistence::connection::{write_transaction, AnyConnection, Database, DbError};
use crate::persistence::rows::{db_time, utc};
use crate::persistence::schema::{
    deliveries, delivery_attempts, idempotency_keys, job_runs, notifications,
};

/// Statuses of a delivery that may still be sent (`DeliveryStatus::unsettled`): never purged,
/// and the queue's depth.
fn unsettled() -> Vec<&'static str> {
    DeliveryStatus::unsettled()
        .map(DeliveryStatus::as_str)
        .collect()
}

/// A `job_runs` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = job_runs)]
struct JobRunRow {
    id: String,
    job: String,
    trigger_kind: String,
    started_at: chrono::NaiveDateTime,
    finished_at: Option<chrono::NaiveDateTime>,
    duration_ms: Option<i64>,
    status: String,
    stats: String,
    error: Option<String>,
    source: String,
    task_type: String,
    message: Option<String>,
    triggered_by_user: Option<String>,
    parent_run_id: Option<String>,
    occurrence: Option<chrono::NaiveDateTime>,
}

impl JobRunRow {
    fn of(id: String, run: &JobRun) -> Self {
        Self {
            id,
            job: run.job.clone(),
            trigger_kind: run.trigger.as_str().to_owned(),
            started_at: db_time(run.started_at),
            finished_at: run.finished_at.map(db_time),
            duration_ms: run
                .duration_ms
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
            status: run.status.as_str().to_owned(),
            stats: run.stats.to_string(),
            error: run.error.clone(),
            source: run.source.as_str().to_owned(),
            task_type: run.task_type.as_str().to_owned(),
            message: run.message.clone(),
            triggered_by_user: run.triggered_by_user.clone(),
            parent_run_id: run.parent_run_id.clone(),
            occurrence: run.occurrence.map(db_time),
        }
    }

    fn into_run(self) -> Result<JobRun, DbError> {
        let bad = |what: &str| DbError::Corrupt(format!("job_runs {:?}: bad {what}", self.id));
        Ok(JobRun {
            job: self.job.clone(),
            source: JobSource::parse(&self.source).ok_or_else(|| bad("source"))?,
            task_type: TaskType::parse(&self.task_type).ok_or_else(|| bad("task_type"))?,
            trigger: JobTrigger::parse(&self.trigger_kind).ok_or_else(|| bad("trigger"))?,
            triggered_by_user: self.triggered_by_user,
            parent_run_id: self.parent_run_id,
            occurrence: self.occurrence.map(utc),
            started_at: utc(self.started_at),
            finished_at: self.finished_at.map(utc),
            duration_ms: self
                .duration_ms
                .map(|ms| u64::try_from(ms).map_err(|_| bad("duration_ms")))
                .transpose()?,
            status: JobStatus::parse(&self.status).ok_or_else(|| bad("status"))?,
            message: self.message,
            stats: serde_json::from_str(&self.stats).map_err(|_| bad("stats"))?,
            error: self.error,
            id: self.id,
        })
    }
}

fn channel(raw: &str) -> Result<Channel, DbError> {
    Channel::parse(raw).map_err(|e| DbError::Corrupt(format!("deliveries: channel {raw:?}: {e}")))
}

fn status(raw: &str) -> Result<DeliveryStatus, DbError> {
    DeliveryStatus::parse(raw)
        .map_err(|e| DbError::Corrupt(format!("deliveries: status {raw:?}: {e}")))
}

fn counted(rows: Vec<(String, String, i64)>) -> Result<Vec<ChannelStatusCount>, DbError> {
    rows.into_iter()
        .map(|(c, s, n)| {
            Ok(ChannelStatusCount {
                channel: channel(&c)?,
                status: status(&s)?,
                count: u64::try_from(n).unwrap_or(0),
            })
        })
        .collect()
}

/// The [`JobRunRepository`] on the Diesel [`Database`].
#[derive(Debug, Clone)]
pub struct DieselJobRunRepository {
    db: Database,
}

impl DieselJobRunRepository {
    /// A repository on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl JobRunRepository for DieselJobRunRepository {
    async fn record(&self, run: &JobRun) -> Result<JobRun, RepositoryError> {
        let id = uuid::Uuid::now_v7().hyphenated().to_string();
        let row = JobRunRow::of(id, run);
        self.db
            .call(move |conn| {
                // A taken (job, occurrence) is a unique violation: a Conflict for the caller.
                diesel::insert_into(job_runs::table)
                    .values(&row)
                    .execute(conn)?;
                row.into_run()
            })
            .await
    }

    async fn finish(&self, id: &str, end: &JobRunEnd) -> Result<Finished, RepositoryError> {
        let id = id.to_owned();
        let end = end.clone();
        self.db
            .call(move |conn| {
                let Some(row) = job_runs::table
                    .find(&id)
                    .select(JobRunRow::as_select())
                    .first(conn)
                    .optional()?
                else {
                    return Ok(Finished::NotFound);
                };
                let duration = end.duration_ms.unwrap_or_else(|| {
                    let ms = (end.finished_at - utc(row.started_at)).num_milliseconds();
                    u64::try_from(ms.max(0)).unwrap_or(0)
                });
                // Conditional on `running`: of two finishers, one changes the row.
                let changed = diesel::update(
                    job_runs::table
                        .find(&id)
                        .filter(job_runs::status.eq(JobStatus::Running.as_str())),
                )
                .set((
                    job_runs::status.eq(end.status.as_str()),
                    job_runs::finished_at.eq(Some(db_time(end.finished_at))),
                    job_runs::duration_ms.eq(Some(i64::try_from(duration).unwrap_or(i64::MAX))),
                    job_runs::message.eq(end.message.clone().or(row.message.clone())),
                    job_runs::stats.eq(end
                        .stats
                        .as_ref()
                        .map_or_else(|| row.stats.clone(), ToString::to_string)),
                    job_runs::error.eq(end.error.clone().or(row.error.clone())),
                ))
                .execute(conn)?;
                let now = job_runs::table
                    .find(&id)
                    .select(JobRunRow::as_select())
                    .first(conn)?
                    .into_run()?;
                Ok(if changed == 1 {
                    Finished::Ended(now)
                } else {
                    Finished::NotRunning(now)
                })
            })
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<JobRun>, RepositoryError> {
        let id = id.to_owned();
        self.db
            .call(move |conn| {
                job_runs::table
                    .find(&id)
                    .select(JobRunRow::as_select())
                    .first(conn)
                    .optional()?
                    .map(JobRunRow::into_run)
                    .transpose()
            })
            .await
    }

    async fn list(&self, query: &JobRunQuery) -> Result<JobRunPage, RepositoryError> {
        let query = query.clone();
        let limit = query.limit.clamp(1, 100);
        self.db
            .call(move |conn| {
                let mut select = job_runs::table
                    .select(JobRunRow::as_select())
                    .order(job_runs::id.desc())
                    .limit(i64::from(limit) + 1)
                    .into_boxed();
                if let Some(job) = query.job {
                    select = select.filter(job_runs::job.eq(job));
                }
                if let Some(status) = query.status {
                    select = select.filter(job_runs::status.eq(status.as_str()));
                }
                if let Some(source) = query.source {
                    select = select.filter(job_runs::source.eq(source.as_str()));
                }
                if let Some(cursor) = query.cursor {
                    select = select.filter(job_runs::id.lt(cursor));
                }
                let mut rows = select.load(conn)?;
                let more = rows.len() > limit as usize;
                rows.truncate(limit as usize);
                let items = rows
                    .into_iter()
                    .map(JobRunRow::into_run)
                    .collect::<Result<Vec<_>, _>>()?;
                let next_cursor = if more {
                    items.last().map(|r| r.id.clone())
                } else {
                    None
                };
                Ok(JobRunPage { items, next_cursor })
            })
            .await
    }
}

/// Purges one page of at most [`CHUNK`] notifications created before `cutoff` (ids after
/// `after`): those whose deliveries are all settled, with their deliveries and attempts. Returns
/// what it deleted and, when the page was full, its last id (where the next page starts).
fn purge_page(
    conn: &mut AnyConnection,
    cutoff: chrono::NaiveDateTime,
    after: Option<&str>,
) -> Result<(Purged, Option<String>), DbError> {
    let mut page = notifications::table
        .filter(notifications::created_at.lt(cutoff))
        .select(notifications::id)
        .order(notifications::id.asc())
        .limit(CHUNK as i64)
        .into_boxed();
    if let Some(after) = after {
        page = page.filter(notifications::id.gt(after.to_owned()));
    }
    let candidates: Vec<String> = page.load(conn)?;
    let last = (candidates.len() == CHUNK)
        .then(|| candidates.last().cloned())
        .flatten();
    let busy: HashSet<String> = deliveries::table
        .filter(deliveries::notification_id.eq_any(&candidates))
        .filter(deliveries::status.eq_any(unsettled()))
        .select(deliveries::notification_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let ids: Vec<String> = candidates
        .into_iter()
        .filter(|id| !busy.contains(id))
        .collect();
    if ids.is_empty() {
        return Ok((Purged::default(), last));
    }
    let delivery_ids: Vec<String> = deliveries::table
        .filter(deliveries::notification_id.eq_any(&ids))
        .select(deliveries::id)
        .load(conn)?;
    let mut attempts = 0;
    for chunk in delivery_ids.chunks(CHUNK) {
        attempts += diesel::delete(
            delivery_attempts::table.filter(delivery_attempts::delivery_id.eq_any(chunk)),
        )
        .execute(conn)?;
    }
    let deliveries =
        diesel::delete(deliveries::table.filter(deliveries::notification_id.eq_any(&ids)))
            .execute(conn)?;
    let notifications = diesel::delete(notifications::table.filter(notifications::id.eq_any(&ids)))
        .execute(conn)?;
    Ok((
        Purged {
            notifications: notifications as u64,
            deliveries: deliveries as u64,
            attempts: attempts as u64,
        },
        last,
    ))
}

/// The [`Housekeeping`] port on the Diesel [`Database`].
#[derive(Debug, Clone)]
pub struct DieselHousekeeping {
    db: Database,
    /// Whether a delivery the reaper parks `dead` also writes its host event (issue 12).
    host_events: bool,
}

impl DieselHousekeeping {
    /// Housekeeping on `db`.
    pub fn new(db: Database) -> Self {
        Self {
            db,
            host_events: false,
        }
    }

    /// The same housekeeping, writing a `delivery.dead` host event in the transaction of each
    /// delivery the reaper parks as poison when `on` (`CLAIRON_EVENTS_WEBHOOK_URL` is set).
    #[must_use]
    pub fn with_host_events(mut self, on: bool) -> Self {
        self.host_events = on;
        self
    }
}

#[async_trait]
impl Housekeeping for DieselHousekeeping {
    async fn release_expired_leases(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let now = db_time(now);
        let host_events = self.host_events;
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    let expired = || {
                        deliveries::table
                            .filter(deliveries::status.eq(DeliveryStatus::Sending.as_str()))
                            .filter(deliveries::lease_expires_at.le(now))
                    };
                    // A lapsed lease is a worker that died holding the delivery: one more crash
                    // (as when the claim retakes it), and the last one parks it as poison.
                    let last_crash = i32::try_from(POISON_CRASHES).unwrap_or(i32::MAX) - 1;
                    let poisoned: Vec<(String, i32)> = expired()
                        .filter(deliveries::crashes.ge(last_crash))
                        .select((deliveries::id, deliveries::crashes))
                        .load(conn)?;
                    let poisoned: Vec<(String, i32)> = poisoned
                        .into_iter()
                        .map(|(id, crashes)| (id, crashes + 1))
                        .collect();
                    super::deliveries::park_poisoned(conn, &poisoned, now, host_events)?;
                    let never_tried = diesel::update(expired().filter(deliveries::attempts.le(0)))
                        .set((
                            deliveries::status.eq(DeliveryStatus::Pending.as_str()),
                            deliveries::lease_expires_at.eq(None::<chrono::NaiveDateTime>),
                            deliveries::claim_token.eq(None::<String>),
                            deliveries::crashes.eq(deliveries::crashes + 1),
                            deliveries::next_attempt_at.eq(now),
                            deliveries::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    let tried = diesel::update(expired().filter(deliveries::attempts.gt(0)))
                        .set((
                            deliveries::status.eq(DeliveryStatus::Retrying.as_str()),
                            deliveries::lease_expires_at.eq(None::<chrono::NaiveDateTime>),
                            deliveries::claim_token.eq(None::<String>),
                            deliveries::crashes.eq(deliveries::crashes + 1),
                            deliveries::next_attempt_at.eq(now),
                            deliveries::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    Ok((poisoned.len() + never_tried + tried) as u64)
                })
            })
            .await
    }

    async fn purge_notifications(&self, cutoff: DateTime<Utc>) -> Result<Purged, RepositoryError> {
        let cutoff = db_time(cutoff);
        let mut total = Purged::default();
        // Pages through the old notifications by id, so a page whose notifications all wait
        // for a delivery is stepped over, not found again.
        let mut after: Option<String> = None;
        loop {
            let from = after.clone();
            let (purged, last) = self
                .db
                .call(move |conn| {
                    write_transaction(conn, |conn| purge_page(conn, cutoff, from.as_deref()))
                })
                .await?;
            total.notifications += purged.notifications;
            total.deliveries += purged.deliveries;
            total.attempts += purged.attempts;
            match last {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        // The host events sent before the same cutoff (issue 12): the host has them; pending
        // and dead ones are kept for the operator.
        let events = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| super::host_events::purge_sent(conn, cutoff))
            })
            .await?;
        if events > 0 {
            tracing::info!(
                host_events = events,
                "purged host events sent before the retention cutoff"
            );
        }
        Ok(total)
    }

    async fn purge_job_runs(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let cutoff = db_time(cutoff);
        self.db
            .call(move |conn| {
                Ok(
                    diesel::delete(job_runs::table.filter(job_runs::started_at.lt(cutoff)))
                        .execute(conn)? as u64,
                )
            })
            .await
    }

    async fn purge_idempotency_keys(&self, now: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let now = db_time(now);
        self.db
            .call(move |conn| {
                Ok(diesel::delete(
                    idempotency_keys::table.filter(idempotency_keys::expires_at.le(now)),
                )
                .execute(conn)? as u64)
            })
            .await
    }
}

/// The [`OperationsStatsSource`] on the Diesel [`Database`].
#[derive(Debug, Clone)]
pub struct DieselOperationsStats {
    db: Database,
}

impl DieselOperationsStats {
    /// Statistics read from `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl OperationsStatsSource for DieselOperationsStats {
    async fn delivery_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<ChannelStatusCount>, RepositoryError> {
        let since = db_time(since);
        self.db
            .call(move |conn| {
                let rows: Vec<(String, String, i64)> = deliveries::table
                    .filter(deliveries::created_at.ge(since))
                    .group_by((deliveries::channel, deliveries::status))
                    .select((deliveries::channel, deliveries::status, count_star()))
                    .load(conn)?;
                counted(rows)
            })
            .await
    }

    async fn sent_latencies_ms(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Channel, u64)>, RepositoryError> {
        let since = db_time(since);
        self.db
            .call(move |conn| {
                let rows: Vec<(String, chrono::NaiveDateTime, Option<chrono::NaiveDateTime>)> =
                    deliveries::table
                        .filter(deliveries::created_at.ge(since))
                        .filter(deliveries::status.eq(DeliveryStatus::Sent.as_str()))
                        .select((
                            deliveries::channel,
                            deliveries::created_at,
                            deliveries::sent_at,
                        ))
                        .load(conn)?;
                rows.into_iter()
                    .filter_map(|(c, created, sent)| sent.map(|sent| (c, created, sent)))
                    .map(|(c, created, sent)| {
                        let ms = (sent - created).num_milliseconds().max(0);
                        Ok((channel(&c)?, u64::try_from(ms).unwrap_or(0)))
                    })
                    .collect()
            })
            .await
    }

    async fn job_runs_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<JobRunSample>, RepositoryError> {
        let since = db_time(since);
        self.db
            .call(move |conn| {
                type Sampled = (
                    String,
                    String,
                    String,
                    String,
                    String,
                    chrono::NaiveDateTime,
                    Option<i64>,
                );
                let rows: Vec<Sampled> = job_runs::table
                    .filter(job_runs::started_at.ge(since))
                    .order(job_runs::id.asc())
                    .select((
                        job_runs::id,
                        job_runs::job,
                        job_runs::source,
                        job_runs::status,
                        job_runs::trigger_kind,
                        job_runs::started_at,
                        job_runs::duration_ms,
                    ))
                    .load(conn)?;
                Ok(rows
                    .into_iter()
                    // A status or source this version does not know (a newer process's) is
                    // not counted.
                    .filter_map(|(id, job, source, status, trigger, started_at, ms)| {
                        Some(JobRunSample {
                            id,
                            job,
                            source: JobSource::parse(&source)?,
                            status: JobStatus::parse(&status)?,
                            trigger: JobTrigger::parse(&trigger)?,
                            started_at: utc(started_at),
                            duration_ms: ms.map(|ms| u64::try_from(ms).unwrap_or(0)),
                        })
                    })
                    .collect())
            })
            .await
    }

    async fn queue_depth(&self, now: DateTime<Utc>) -> Result<QueueDepth, RepositoryError> {
        let at = db_time(now);
        self.db
            .call(move |conn| {
                let rows: Vec<(String, String, i64)> = deliveries::table
                    .filter(deliveries::status.eq_any(unsettled()))
                    .group_by((deliveries::channel, deliveries::status))
                    .select((deliveries::channel, deliveries::status, count_star()))
                    .load(conn)?;
                let oldest: Vec<(String, Option<chrono::NaiveDateTime>)> = deliveries::table
                    .filter(deliveries::status.eq_any([
                        DeliveryStatus::Pending.as_str(),
                        DeliveryStatus::Retrying.as_str(),
                    ]))
                    .filter(deliveries::next_attempt_at.le(at))
                    .group_by(deliveries::channel)
                    .select((deliveries::channel, min(deliveries::next_attempt_at)))
                    .load(conn)?;
                // Later: waiting for a time still to come, and everything held for a digest
                // (`batched`: the digests job, not a dispatcher, sends it at its window's end).
                let later: Vec<(String, i64)> = deliveries::table
                    .filter(
                        deliveries::status
                            .eq_any([
                                DeliveryStatus::Pending.as_str(),
                                DeliveryStatus::Retrying.as_str(),
                            ])
                            .and(deliveries::next_attempt_at.gt(at))
                            .or(deliveries::status.eq(DeliveryStatus::Batched.as_str())),
                    )
                    .group_by(deliveries::channel)
                    .select((deliveries::channel, count_star()))
                    .load(conn)?;
                let scheduled_later = later
                    .into_iter()
                    .map(|(c, n)| Ok((channel(&c)?, u64::try_from(n).unwrap_or(0))))
                    .collect::<Result<Vec<_>, DbError>>()?;
                let oldest_due_age_secs = oldest
                    .into_iter()
                    .filter_map(|(c, due)| due.map(|due| (c, due)))
                    .map(|(c, due)| {
                        let age = (now - utc(due)).num_seconds().max(0);
                        Ok((channel(&c)?, u64::try_from(age).unwrap_or(0)))
                    })
                    .collect::<Result<Vec<_>, DbError>>()?;
                Ok(QueueDepth {
                    counts: counted(rows)?,
                    scheduled_later,
                    oldest_due_age_secs,
                })
            })
            .await
    }
}
