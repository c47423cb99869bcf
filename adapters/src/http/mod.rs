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
use utoipa_swagger_ui::SwaggerUi;

use self::api::{admin, deliveries, gdpr, inbox, notifications, recipients};
use self::credentials::tokens;
use self::me::{rest, stream};
use self::middleware::{auth, idempotency, paths, rate_limit, security};
use self::pages::{dashboard, sessions};
use self::problem::not_found;

/// What the routes' wiring takes from configuration.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Origins allowed to call `/api/v1/me` from a browser (CORS); empty: none.
    pub cors_origins: Vec<String>,
}

/// One method of a resource, behind a scope check: `scoped!(get, require_read, handler)`, or
/// with an extra middleware (idempotency) inside the check:
/// `scoped!(post, require_send, handler, idempotency::idempotent)`. It is a route, not a
/// resource, so the other methods of the path stay a 405 with `Allow`. Inside the scope check,
/// a path parameter that is `.` or `..` is refused ([`paths::refuse_dot_segments`]).
macro_rules! scoped {
    ($method:ident, $scope:ident, $handler:expr) => {
        web::$method()
            .to($handler)
            .wrap(from_fn(paths::refuse_dot_segments))
            .wrap(from_fn(auth::$scope))
    };
    ($method:ident, $scope:ident, $handler:expr, $inner:expr) => {
        web::$method()
            .to($handler)
            .wrap(from_fn($inner))
            .wrap(from_fn(paths::refuse_dot_segments))
            .wrap(from_fn(auth::$scope))
    };
}

/// The Content-Security-Policy of the HTML pages (`/inbox`, `/admin`, `/api/docs/`): scripts
/// only from this origin, never inline (W3C CSP Level 3); the one of
/// [`security::DEFAULT_CSP`].
pub const PAGE_CSP: &str = security::DEFAULT_CSP;

/// Registers every route on an actix `App`: give it `web::Data<Handlers>`,
/// `web::Data<ApiKeys>`, `web::Data<RecipientTokens>`, `web::Data<Live>`,
/// `web::Data<Observability>` and `web::Data<AdminSessions>` as app data (and optionally
/// `web::Data<RateLimits>` and `web::Data<BodyLimits>`), and wrap the app in
/// [`problem::problems`] so that every error is `application/problem+json`.
///
/// Each path is one `web::resource`, so a known path with another method is a 405 with `Allow`
/// (RFC 9110 § 15.5.6), not a 404. Scopes (see `clairon_domain::ApiScope`): `send` ingests,
/// `read` reads, `admin` does everything; a route's scope is the middleware around its method
/// ([`scoped!`]), and idempotency wraps the ingestion POST routes inside it, so another method
/// is refused before any key scope or `Idempotency-Key` is looked at. A route added here is
/// documented by a `#[utoipa::path]` on its handler and a line in [`openapi::ApiDoc`].
pub fn configure(cfg: &mut web::ServiceConfig, options: &HttpOptions) {
    cfg.app_data(web::QueryConfig::default().error_handler(problem::query_error))
        .app_data(web::PathConfig::default().error_handler(problem::path_error))
        .app_data(web::Data::new(openapi::document()))
        .service(web::resource("/health").get(probes::health))
        .service(web::resource("/health/live").get(probes::live))
        .service(web::resource("/health/ready").get(probes::ready))
        .service(web::resource("/metrics").get(probes::metrics))
        .service(web::resource("/admin").get(dashboard::dashboard))
        .service(web::resource("/admin/login").post(dashboard::login))
        .service(web::resource("/admin/logout").post(dashboard::logout))
        .service(
            web::resource("/admin/deliveries/{id}/retry").route(
                web::post()
                    .to(dashboard::retry_delivery)
                    .wrap(from_fn(paths::refuse_dot_segments))
                    .wrap(from_fn(sessions::require_admin_session)),
            ),
        )
        .service(web::resource("/static/admin.js").get(dashboard::admin_js))
        .service(web::resource("/inbox").get(pages::inbox::inbox_page))
        .service(web::resource("/static/clairon.js").get(pages::inbox::client_js))
        .service(web::resource("/api/openapi.json").get(openapi::openapi_json))
        .service(
            web::scope("/api/docs")
                .service(web::resource("").get(openapi::docs_redirect))
                .service(
                    SwaggerUi::new("/{_:.*}")
                        .config(utoipa_swagger_ui::Config::new(["/api/openapi.json"])),
                )
                .default_service(web::to(not_found)),
        )
        // Before `/api/v1`: recipient tokens only, never API keys.
        .service(
            web::scope("/api/v1/me")
                .wrap(from_fn(rate_limit::limit_recipient))
                // Before the rate limit: the token is checked (signature, expiry, revocation)
                // once per request, and the outcome left for the limit and the routes.
                .wrap(from_fn(tokens::authenticate))
                // Outermost: preflights are answered before any token is asked for.
                .wrap(security::me_cors(&options.cors_origins))
                .service(web::resource("/notifications").get(rest::me_list))
                .service(web::resource("/notifications/unread-count").get(rest::me_unread_count))
                .service(web::resource("/notifications/stream").get(stream::sse))
                .service(web::resource("/notifications/read-all").post(rest::me_read_all))
                .service(
                    web::resource("/notifications/{id}/read").route(
                        web::post()
                            .to(rest::me_mark_read)
                            .wrap(from_fn(paths::refuse_dot_segments)),
                    ),
                )
                .service(web::resource("/ws").get(stream::websocket))
                .default_service(web::to(not_found)),
        )
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(auth::require_api_key))
                .service(web::resource("/recipients/import").route(scoped!(
                    post,
                    require_send,
                    recipients::import_recipients,
                    idempotency::idempotent
                )))
                .service(
                    web::resource("/recipients/{id}")
                        .route(scoped!(put, require_send, recipients::put_recipient))
                        .route(scoped!(get, require_read, recipients::get_recipient))
                        .route(scoped!(delete, require_admin, gdpr::erase)),
                )
                .service(web::resource("/recipients/{id}/export").route(scoped!(
                    get,
                    require_read,
                    gdpr::export
                )))
                .service(web::resource("/recipients/{id}/tokens").route(scoped!(
                    post,
                    require_read,
                    recipients::issue_token
                )))
                // The counterpart of issuing: whoever may mint a recipient's tokens may void them.
                .service(
                    web::resource("/recipients/{id}/tokens/revoke").route(scoped!(
                        post,
                        require_read,
                        recipients::revoke_tokens
                    )),
                )
                .service(
                    web::resource("/recipients/{id}/notifications").route(scoped!(
                        get,
                        require_read,
                        inbox::list_notifications
                    )),
                )
                .service(
                    web::resource("/recipients/{id}/notifications/unread-count").route(scoped!(
                        get,
                        require_read,
                        inbox::unread_count
                    )),
                )
                .service(
                    web::resource("/recipients/{id}/notifications/read-all").route(scoped!(
                        post,
                        require_read,
                        inbox::mark_all_read
                    )),
                )
                .service(web::resource("/notifications").route(scoped!(
                    post,
                    require_send,
                    notifications::create_notifications,
                    idempotency::idempotent
                )))
                .service(web::resource("/notifications/test").route(scoped!(
                    post,
                    require_send,
                    notifications::send_test
                )))
                .service(
                    web::resource("/notifications/plannings/{planning_id}/events").route(scoped!(
                        post,
                        require_send,
                        notifications::planning_event,
                        idempotency::idempotent
                    )),
                )
                .service(web::resource("/notifications/{id}").route(scoped!(
                    get,
                    require_read,
                    notifications::get_notification
                )))
                .service(web::resource("/notifications/{id}/read").route(scoped!(
                    post,
                    require_read,
                    notifications::mark_read
                )))
                .service(web::resource("/deliveries").route(scoped!(
                    get,
                    require_read,
                    deliveries::list
                )))
                .service(web::resource("/deliveries/{id}/retry").route(scoped!(
                    post,
                    require_admin,
                    deliveries::retry
                )))
                // Operators only.
                .service(
                    web::scope("/admin")
                        .wrap(from_fn(auth::require_admin))
                        .service(web::resource("/job-runs").get(admin::list_job_runs))
                        .service(
                            web::resource("/jobs/{job}/run").route(
                                web::post()
                                    .to(admin::run_job)
                                    .wrap(from_fn(paths::refuse_dot_segments)),
                            ),
                        )
                        .service(web::resource("/stats").get(admin::stats))
                        .default_service(web::to(not_found)),
                )
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}
