//! End-to-end tests: the assembled application over HTTP, with real engines around it.

mod admin_dashboard;
mod bad_input;
mod browser;
mod contract;
mod dataset;
mod default_limits;
mod delivery_engine;
mod gdpr;
mod idempotency;
mod notifications;
mod operations;
mod postgres;
mod realtime;
mod recipients;
mod reminders;
mod scheduling;
mod security;
