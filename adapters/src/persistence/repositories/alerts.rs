//! The dead-letter alert's side of the database (issue 13): [`DieselDeadLetters`] counts the
//! deliveries that went `dead` lately (the partial index `deliveries_dead` on `updated_at`) and
//! keeps `alert_throttles`, the last time each throttled alert was raised, moved forward by
//! compare-and-set so that of several processes one raises it.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clairon_application::ports::{
    AlertThrottle, DeadLetter, DeadLetterSource, DeadLetters, RepositoryError,
};
use clairon_domain::{Channel, DeliveryStatus};
use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::persistence::connection::{write_transaction, AnyConnection, Database, DbError};
use crate::persistence::rows::{db_time, utc};
use crate::persistence::schema::{alert_throttles, deliveries};

/// [`DeadLetterSource`] and [`AlertThrottle`] on the Diesel [`Database`].
#[derive(Debug, Clone)]
pub struct DieselDeadLetters {
    db: Database,
}

impl DieselDeadLetters {
    /// Reads and writes `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl DeadLetterSource for DieselDeadLetters {
    async fn dead_since(
        &self,
        since: DateTime<Utc>,
        samples: usize,
    ) -> Result<DeadLetters, RepositoryError> {
        let since = db_time(since);
        let limit = i64::try_from(samples).unwrap_or(i64::MAX);
        self.db
            .call(move |conn| {
                let dead = || {
                    deliveries::table
                        .filter(deliveries::status.eq(DeliveryStatus::Dead.as_str()))
                        .filter(deliveries::updated_at.ge(since))
                };
                let count: i64 = dead().select(count_star()).first(conn)?;
                type Sampled = (String, String, Option<String>, chrono::NaiveDateTime);
                let rows: Vec<Sampled> = dead()
                    .order((deliveries::updated_at.desc(), deliveries::id.desc()))
                    .limit(limit)
                    .select((
                        deliveries::id,
                        deliveries::channel,
                        deliveries::last_error,
                        deliveries::updated_at,
                    ))
                    .load(conn)?;
                let samples = rows
                    .into_iter()
                    .map(|(id, channel, error, at)| {
                        Ok(DeadLetter {
                            channel: Channel::parse(&channel).map_err(|e| {
                                DbError::Corrupt(format!("deliveries {id:?}: channel: {e}"))
                            })?,
                            delivery_id: id,
                            error,
                            dead_at: utc(at),
                        })
                    })
                    .collect::<Result<Vec<_>, DbError>>()?;
                Ok(DeadLetters {
                    count: u64::try_from(count).unwrap_or(0),
                    samples,
                })
            })
            .await
    }
}

#[async_trait]
impl AlertThrottle for DieselDeadLetters {
    async fn try_raise(
        &self,
        alert: &str,
        now: DateTime<Utc>,
        period: TimeDelta,
    ) -> Result<bool, RepositoryError> {
        let alert = alert.to_owned();
        let at = db_time(now);
        let due = db_time(now - period);
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    let last: Option<chrono::NaiveDateTime> = alert_throttles::table
                        .find(alert.as_str())
                        .select(alert_throttles::raised_at)
                        .first(conn)
                        .optional()?;
                    let written = match last {
                        // Never raised: the first insert wins, a concurrent one is ignored.
                        None => {
                            let row = (
                                alert_throttles::alert.eq(alert.as_str()),
                                alert_throttles::raised_at.eq(at),
                            );
                            match conn {
                                AnyConnection::Postgresql(pg) => {
                                    diesel::insert_into(alert_throttles::table)
                                        .values(row)
                                        .on_conflict_do_nothing()
                                        .execute(pg)?
                                }
                                AnyConnection::Sqlite(sqlite) => {
                                    diesel::insert_or_ignore_into(alert_throttles::table)
                                        .values(row)
                                        .execute(sqlite)?
                                }
                            }
                        }
                        // Raised a period ago or more: moved forward from the value read, so a
                        // process that read the same value and wrote first wins.
                        Some(last) if last <= due => diesel::update(
                            alert_throttles::table
                                .find(alert.as_str())
                                .filter(alert_throttles::raised_at.eq(last)),
                        )
                        .set(alert_throttles::raised_at.eq(at))
                        .execute(conn)?,
                        Some(_) => 0,
                    };
                    Ok(written == 1)
                })
            })
            .await
    }
}
