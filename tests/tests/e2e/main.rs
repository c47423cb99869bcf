//! End-to-end tests: the assembled application over HTTP, with real engines around it.

mod bad_input;
mod browser;
mod contract;
mod dataset;
mod delivery_engine;
mod idempotency;
mod notifications;
mod postgres;
mod realtime;
mod recipients;
mod reminders;
mod scheduling;
