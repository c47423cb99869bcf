//! End-to-end tests: the assembled application over HTTP, with real engines around it.

mod admin_dashboard;
mod amplification;
mod bad_input;
mod browser;
mod contract;
mod database;
mod dataset;
mod default_limits;
mod delivery_engine;
mod erasure_traces;
mod gdpr;
mod hostile_input;
mod idempotency;
mod idempotent_work;
mod jobs;
mod notifications;
mod operations;
mod postgres;
mod realtime;
mod recipients;
mod reminders;
mod scheduling;
mod security;
