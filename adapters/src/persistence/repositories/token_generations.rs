//! [`DieselTokenGenerations`]: recipients' token generations, kept in
//! `recipients.token_generation`, so an erasure (which deletes the row) takes it along and a
//! recipient created later with the same id draws a new one.

use async_trait::async_trait;
use clairon_application::ports::{RepositoryError, TokenGenerations};
use clairon_domain::RecipientId;
use diesel::prelude::*;

use crate::persistence::connection::Database;
use crate::persistence::schema::recipients;

/// A fresh generation: a uniformly random positive 63-bit number (never 0, the column's default
/// for rows not made by Clairon). Two draws agree with a chance of 2⁻⁶³.
pub(crate) fn fresh_generation() -> i64 {
    (rand::random::<i64>() & i64::MAX) | 1
}

/// The [`TokenGenerations`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselTokenGenerations {
    db: Database,
}

impl DieselTokenGenerations {
    /// Generations on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl TokenGenerations for DieselTokenGenerations {
    async fn current(&self, id: &RecipientId) -> Result<Option<i64>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .call(move |conn| {
                Ok(recipients::table
                    .find(&id)
                    .select(recipients::token_generation)
                    .first::<i64>(conn)
                    .optional()?)
            })
            .await
    }

    async fn renew(&self, id: &RecipientId) -> Result<Option<i64>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .call(move |conn| {
                let generation = fresh_generation();
                let updated = diesel::update(recipients::table.find(&id))
                    .set(recipients::token_generation.eq(generation))
                    .execute(conn)?;
                Ok((updated > 0).then_some(generation))
            })
            .await
    }
}
