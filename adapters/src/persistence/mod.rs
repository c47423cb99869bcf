//! Persistence with Diesel: recipients, notifications, the delivery outbox and API keys, on an
//! embedded SQLite file (the default) or a PostgreSQL server, with the same behaviour on both.
//!
//! [`Database`] owns one r2d2 pool of a Diesel `MultiConnection` over both engines: queries are
//! written once where the engines agree, and only row locking (`FOR UPDATE SKIP LOCKED` against
//! SQLite's `BEGIN IMMEDIATE`) and the migration sets differ. The repositories implement the
//! ports of `clairon_application::ports`; no Diesel type leaves this module, and every Diesel
//! call runs on tokio's blocking pool.
//!
//! Times are stored as UTC `TIMESTAMP`s truncated to microseconds (PostgreSQL's precision), so
//! what is written reads back equal on both engines.

pub(crate) mod connection;
mod repositories;
mod rows;
mod schema;

pub use connection::{Backend, Database, PersistenceError, WriteFailure, WRITE_FAILURE_MEMORY};
pub use repositories::DieselDeadLetters;
pub use repositories::{
    ApiKeyRecord, DieselApiKeyStore, DieselConsentRepository, DieselDeliveryQueue,
    DieselDigestStore, DieselHousekeeping, DieselIdempotencyStore, DieselJobRunRepository,
    DieselNotificationRepository, DieselOperationsStats, DieselPersonalDataStore,
    DieselPreferenceRepository, DieselPushSubscriptions, DieselRecipientRepository,
    DieselRoutingRulesRepository, DieselTokenGenerations, DieselTopicRepository,
};
pub use repositories::{DieselHostEventOutbox, HostEventRecord};
