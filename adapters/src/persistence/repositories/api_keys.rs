//! [`DieselApiKeyStore`]: the hashes of the API keys the HTTP API accepts.
//!
//! Only the SHA-256 of a key is stored, as lowercase hex; the key itself never reaches the
//! database, so a leaked database does not leak usable keys.

use chrono::Utc;
use clairon_application::ports::RepositoryError;
use diesel::prelude::*;

use crate::persistence::connection::Database;
use crate::persistence::rows::{db_time, ApiKeyRow};
use crate::persistence::schema::api_keys;

/// API key hashes on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselApiKeyStore {
    db: Database,
}

impl DieselApiKeyStore {
    /// A store on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Stores the hex SHA-256 `hash_hex` of a key (case-insensitive; kept lowercase), with an
    /// optional free-form `label` saying whose key it is.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when the hash is already stored (nothing changes);
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn insert_hash(
        &self,
        hash_hex: &str,
        label: Option<&str>,
    ) -> Result<(), RepositoryError> {
        let row = ApiKeyRow {
            hash: hash_hex.trim().to_ascii_lowercase(),
            created_at: db_time(Utc::now()),
            label: label.map(str::to_owned),
        };
        self.db
            .call(move |conn| {
                diesel::insert_into(api_keys::table)
                    .values(&row)
                    .execute(conn)?;
                Ok(())
            })
            .await
    }

    /// Whether the hex SHA-256 `hash_hex` (case-insensitive) is a stored key's.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn contains_hash(&self, hash_hex: &str) -> Result<bool, RepositoryError> {
        let hash = hash_hex.trim().to_ascii_lowercase();
        self.db
            .call(move |conn| {
                let found: i64 = api_keys::table
                    .filter(api_keys::hash.eq(hash))
                    .count()
                    .get_result(conn)?;
                Ok(found > 0)
            })
            .await
    }

    /// How many keys are stored (bootstrap creates a first one when there are none).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn count(&self) -> Result<u64, RepositoryError> {
        self.db
            .call(|conn| {
                let count: i64 = api_keys::table.count().get_result(conn)?;
                Ok(u64::try_from(count).unwrap_or(0))
            })
            .await
    }

    /// Every stored hash, lowercase hex: the HTTP adapter keeps them in memory so checking a
    /// key costs no query.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database fails.
    pub async fn all_hashes(&self) -> Result<Vec<String>, RepositoryError> {
        self.db
            .call(|conn| {
                Ok(api_keys::table
                    .select(api_keys::hash)
                    .load::<String>(conn)?)
            })
            .await
    }
}
