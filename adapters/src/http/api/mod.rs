//! The JSON API under `/api/v1` (API keys, each route with its scope), one module per resource;
//! each owns its handlers, their `#[utoipa::path]`, the helpers only it uses and its routes (its
//! `routes`, mounted by `http::configure` in the `/api/v1` scope); each is listed in
//! `http::openapi::ApiDoc`.

pub mod admin;
pub mod deliveries;
pub mod events;
pub mod gdpr;
pub mod inbox;
pub mod job_runs;
pub mod notifications;
pub mod preferences;
pub mod push;
pub mod recipients;
pub mod routing_rules;
pub mod topics;
