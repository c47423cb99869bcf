//! The JSON API under `/api/v1` (API keys, each route with its scope), one module per resource;
//! each owns its handlers, their `#[utoipa::path]` and the helpers only it uses. Routes are
//! registered in `http::configure` and listed in `http::openapi::ApiDoc`.

pub mod admin;
pub mod deliveries;
pub mod gdpr;
pub mod inbox;
pub mod notifications;
pub mod recipients;
