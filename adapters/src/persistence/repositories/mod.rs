//! The Diesel implementations of the repository ports, one per file, plus the API key store
//! and the notification write path (`notification_writes/`: rows, inbox numbering, mentions,
//! reminders, group commit).

mod alerts;
mod api_keys;
mod deliveries;
mod digests;
pub(crate) mod host_events;
mod idempotency;
mod inbox_feed;
#[macro_use]
mod notification_writes;
mod notifications;
mod operations;
mod personal_data;
pub(crate) mod preferences;
mod recipients;
mod routing;
mod token_generations;
mod web_push;

pub use alerts::DieselDeadLetters;
pub use api_keys::{ApiKeyRecord, DieselApiKeyStore};
pub use deliveries::DieselDeliveryQueue;
pub use digests::DieselDigestStore;
pub use host_events::{DieselHostEventOutbox, HostEventRecord};
pub use idempotency::DieselIdempotencyStore;
pub use notifications::DieselNotificationRepository;
pub use operations::{DieselHousekeeping, DieselJobRunRepository, DieselOperationsStats};
pub use personal_data::DieselPersonalDataStore;
pub use preferences::{DieselConsentRepository, DieselPreferenceRepository};
pub use recipients::DieselRecipientRepository;
pub use routing::{DieselRoutingRulesRepository, DieselTopicRepository};
pub use token_generations::DieselTokenGenerations;
pub use web_push::DieselPushSubscriptions;

/// Rows per multi-row INSERT, and ids per `IN` list: far below SQLite's 32,766 and PostgreSQL's
/// 65,535 bind parameters, even for the widest row (14 columns).
pub(crate) const CHUNK: usize = 500;
