//! The actix-web HTTP adapter: JSON API under `/api/v1` (API key required, each route checking
//! the key's scope), `/health`, the operator's `/admin` and `/metrics`, and the API contract
//! (`/api/openapi.json`, `/api/docs/`).
//!
//! Routes translate requests into commands and queries of the application layer and their
//! results or errors into JSON or RFC 7807 problems; they hold no business rule.
//!
//! Layout: [`api`] (one module per `/api/v1` resource, each owning its handlers), [`me`] (the
//! recipient-token routes: REST and live streams), [`pages`] (the HTML pages), [`probes`]
//! (health and metrics), [`middleware`]; the shared pieces [`problem`], [`extract`],
//! [`schema`], [`credentials`] and [`state`] import no route module, and [`openapi`] (which
//! imports the handlers) is imported by this file only.

/// One method of a resource, behind a scope check: `scoped!(get, require_read, handler)`, or
/// with an extra middleware (idempotency) inside the check:
/// `scoped!(post, require_send, handler, idempotency::idempotent)`. Defined before the modules,
/// so that each resource module registers its own routes with it (its `routes`). It is a route,
/// not a resource, so the other methods of the path stay a 405 with `Allow`. Inside the scope check,
/// a path parameter that is `.` or `..` is refused ([`middleware::paths::refuse_dot_segments`]).
macro_rules! scoped {
    ($method:ident, $scope:ident, $handler:expr) => {
        ::actix_web::web::$method()
            .to($handler)
            .wrap(::actix_web::middleware::from_fn(
                $crate::http::middleware::paths::refuse_dot_segments,
            ))
            .wrap(::actix_web::middleware::from_fn(
                $crate::http::middleware::auth::$scope,
            ))
    };
    ($method:ident, $scope:ident, $handler:expr, $inner:expr) => {
        ::actix_web::web::$method()
            .to($handler)
            .wrap(::actix_web::middleware::from_fn($inner))
            .wrap(::actix_web::middleware::from_fn(
                $crate::http::middleware::paths::refuse_dot_segments,
            ))
            .wrap(::actix_web::middleware::from_fn(
                $crate::http::middleware::auth::$scope,
            ))
    };
}

pub mod api;
pub mod credentials;
pub mod extract;
pub mod me;
pub mod middleware;
pub mod openapi;
pub mod pages;
pub mod probes;
pub mod problem;
pub mod schema;
pub mod state;
pub mod upgrade;

use actix_web::middleware::from_fn;
use actix_web::web;

pub use credentials::api_keys::{ApiKeys, ApiPrincipal};
pub use credentials::tokens::RecipientTokens;
pub use extract::BodyLimits;
pub use me::stream::Live;
pub use middleware::observability::Observability;
pub use middleware::rate_limit::{AuthFailureQuota, RateLimits, RateQuota};
pub use openapi::ApiDoc;
pub use pages::sessions::AdminSessions;
pub use problem::{ApiError, FieldError};
pub use state::Handlers;
pub use state::WebPushState;

use self::api::{
    admin, deliveries, events, gdpr, inbox, job_runs, notifications, preferences, recipients,
    routing_rules, topics,
};
use self::credentials::tokens;
use self::me::{rest, stream};
use self::middleware::{auth, rate_limit, security};
use self::pages::dashboard;
use self::problem::not_found;

/// What the routes' wiring takes from configuration.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Origins allowed to call `/api/v1/me` from a browser (CORS); empty: none.
    pub cors_origins: Vec<String>,
}

/// The Content-Security-Policy of the HTML pages (`/inbox`, `/admin`, `/api/docs/`): scripts
/// only from this origin, never inline (W3C CSP Level 3); the one of
/// [`security::DEFAULT_CSP`].
pub const PAGE_CSP: &str = security::DEFAULT_CSP;

/// Registers every route on an actix `App`: give it `web::Data<Handlers>`,
/// `web::Data<ApiKeys>`, `web::Data<RecipientTokens>`,
/// `web::Data<crate::links::UnsubscribeTokens>`, `web::Data<Live>`,
/// `web::Data<Observability>` and `web::Data<AdminSessions>` as app data (and optionally
/// `web::Data<RateLimits>` and `web::Data<BodyLimits>`), and wrap the app in
/// [`problem::problems`] so that every error is `application/problem+json`.
///
/// Each path is one `web::resource`, so a known path with another method is a 405 with `Allow`
/// (RFC 9110 § 15.5.6), not a 404. Scopes (see `clairon_domain::ApiScope`): `send` ingests,
/// `read` reads, `admin` does everything; a route's scope is the middleware around its method
/// ([`scoped!`]), and idempotency wraps the ingestion POST routes inside it, so another method
/// is refused before any key scope or `Idempotency-Key` is looked at. Each resource module
/// registers its own paths (its `routes`, mounted here in its scope: `/api/v1` for [`api`],
/// `/api/v1/me` for [`me`]); a route added there is documented by a `#[utoipa::path]` on its
/// handler and a line in [`openapi::ApiDoc`].
pub fn configure(cfg: &mut web::ServiceConfig, options: &HttpOptions) {
    cfg.app_data(web::QueryConfig::default().error_handler(problem::query_error))
        .app_data(web::PathConfig::default().error_handler(problem::path_error))
        .configure(probes::routes)
        .configure(dashboard::routes)
        .configure(pages::inbox::routes)
        .configure(pages::unsubscribe::routes)
        .configure(openapi::routes)
        // Before `/api/v1`: a public key, asked for by browsers that hold no API key.
        .configure(api::push::routes)
        // Before `/api/v1`: recipient tokens only, never API keys.
        .service(
            web::scope("/api/v1/me")
                .wrap(from_fn(rate_limit::limit_recipient))
                // Before the rate limit: the token is checked (signature, expiry, revocation)
                // once per request, and the outcome left for the limit and the routes.
                .wrap(from_fn(tokens::authenticate))
                // Outermost: preflights are answered before any token is asked for.
                .wrap(security::me_cors(&options.cors_origins))
                .configure(rest::routes)
                .configure(stream::routes)
                .configure(me::push::routes)
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(auth::require_api_key))
                // `recipients` first: its `/recipients/import` comes before `/recipients/{id}`.
                .configure(recipients::routes)
                .configure(gdpr::routes)
                .configure(preferences::routes)
                .configure(inbox::routes)
                .configure(notifications::routes)
                .configure(deliveries::routes)
                .configure(job_runs::routes)
                .configure(admin::routes)
                .configure(events::routes)
                .configure(topics::routes)
                .configure(routing_rules::routes)
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}
