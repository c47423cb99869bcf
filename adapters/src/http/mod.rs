//! The actix-web HTTP adapter: JSON API under `/api/v1` (API key required, each route checking
//! the key's scope), `/health`, the operator's `/admin` and `/metrics`, and the API contract
//! (`/api/openapi.json`, `/api/docs/`).
//!
//! Routes translate requests into commands and queries of the application layer and their
//! results or errors into JSON or RFC 7807 problems; they hold no business rule.

pub mod admin;
pub mod auth;
mod deliveries;
pub mod dto;
pub mod extract;
mod gdpr;
pub mod idempotency;
pub mod live;
pub mod observability;
pub mod openapi;
pub mod paths;
pub mod problem;
pub mod rate_limit;
pub mod request_id;
pub mod responses;
mod routes;
pub mod security;
pub mod tokens;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::web;
use clairon_application::commands::{
    CreateNotificationHandler, EraseRecipientHandler, HandlePlanningEventHandler,
    MarkAllNotificationsReadHandler, MarkNotificationReadHandler, RetryDeliveryHandler,
    RevokeRecipientTokensHandler, RunJobHandler, SendTestNotificationHandler,
    UpsertRecipientsHandler,
};
use clairon_application::ports::RecipientRepository;
use clairon_application::queries::{
    ExportRecipientHandler, GetNotificationHandler, GetOperationsStatsHandler,
    ListDeliveriesHandler, ListJobRunsHandler, ListNotificationsHandler, UnreadCountHandler,
};

pub use admin::AdminSessions;
pub use auth::{ApiKeyDirectory, ApiKeys, ApiPrincipal};
pub use extract::BodyLimits;
pub use idempotency::IdempotencyStore;
pub use live::Live;
pub use observability::Observability;
pub use openapi::ApiDoc;
pub use problem::{ApiError, FieldError};
pub use rate_limit::{AuthFailureQuota, RateLimits, RateQuota};
pub use tokens::RecipientTokens;
use utoipa_swagger_ui::SwaggerUi;

/// Why the database is not ready, as `/health/ready` names it in `checks.database`; each holds
/// a cause that is logged, never shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseProblem {
    /// It does not answer (`unavailable`).
    Unavailable(String),
    /// It answers but refuses writes (`read-only`): a read-only SQLite file, a PostgreSQL
    /// standby or read-only session.
    ReadOnly(String),
    /// It answers, but writes fail (`write failed`): a full disk, I/O errors.
    WriteFailed(String),
}

impl DatabaseProblem {
    /// `unavailable`, `read-only` or `write failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::ReadOnly(_) => "read-only",
            Self::WriteFailed(_) => "write failed",
        }
    }

    /// The cause, for the log.
    pub fn cause(&self) -> &str {
        match self {
            Self::Unavailable(c) | Self::ReadOnly(c) | Self::WriteFailed(c) => c,
        }
    }
}

/// The dispatcher workers of this process, as `/health/ready` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherHealth {
    /// Whether at least one worker runs.
    pub running: bool,
    /// How many times a worker was restarted after a panic escaped its loop, since start-up
    /// (any: `degraded`).
    pub restarts: u64,
}

/// What `/health/ready` checks.
pub trait HealthProbe: Send + Sync {
    /// `Ok` when the database answers and takes writes; otherwise what is wrong.
    fn database(&self) -> Pin<Box<dyn Future<Output = Result<(), DatabaseProblem>> + Send + '_>>;
    /// `Ok` when every embedded migration is applied; `Err` naming the pending ones (or why
    /// they could not be listed) otherwise.
    fn migrations(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
    /// The dispatcher workers of this process.
    fn dispatcher(&self) -> DispatcherHealth;
}

/// Everything the routes call: the use-case handlers, built once by the bootstrap.
pub struct Handlers {
    /// `PUT /recipients/{id}`, `POST /recipients/import`.
    pub upsert_recipients: Arc<UpsertRecipientsHandler>,
    /// `GET /recipients/{id}` reads the repository directly: it is a plain lookup.
    pub recipients: Arc<dyn RecipientRepository>,
    /// `POST /notifications`.
    pub create_notification: Arc<CreateNotificationHandler>,
    /// `POST /notifications/plannings/{id}/events`.
    pub handle_planning_event: Arc<HandlePlanningEventHandler>,
    /// `GET /recipients/{id}/notifications`.
    pub list_notifications: Arc<ListNotificationsHandler>,
    /// `GET /recipients/{id}/notifications/unread-count`.
    pub unread_count: Arc<UnreadCountHandler>,
    /// `GET /notifications/{id}`.
    pub get_notification: Arc<GetNotificationHandler>,
    /// `POST /notifications/{id}/read`.
    pub mark_read: Arc<MarkNotificationReadHandler>,
    /// `POST /recipients/{id}/notifications/read-all`.
    pub mark_all_read: Arc<MarkAllNotificationsReadHandler>,
    /// `POST /notifications/test`.
    pub send_test: Arc<SendTestNotificationHandler>,
    /// `GET /deliveries`.
    pub list_deliveries: Arc<ListDeliveriesHandler>,
    /// `POST /deliveries/{id}/retry`.
    pub retry_delivery: Arc<RetryDeliveryHandler>,
    /// `/health`.
    pub health: Arc<dyn HealthProbe>,
    /// `Idempotency-Key` records of the ingestion POSTs.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// `POST /admin/jobs/{job}/run`.
    pub run_job: Arc<RunJobHandler>,
    /// `GET /admin/job-runs`.
    pub list_job_runs: Arc<ListJobRunsHandler>,
    /// `GET /admin/stats` and the dashboard.
    pub operations_stats: Arc<GetOperationsStatsHandler>,
    /// `GET /recipients/{id}/export`.
    pub export_recipient: Arc<ExportRecipientHandler>,
    /// `DELETE /recipients/{id}`.
    pub erase_recipient: Arc<EraseRecipientHandler>,
    /// `POST /recipients/{id}/tokens/revoke`.
    pub revoke_tokens: Arc<RevokeRecipientTokensHandler>,
}

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
        .service(web::resource("/health").get(observability::health))
        .service(web::resource("/health/live").get(observability::live))
        .service(web::resource("/health/ready").get(observability::ready))
        .service(web::resource("/metrics").get(observability::metrics))
        .service(web::resource("/admin").get(admin::dashboard))
        .service(web::resource("/admin/login").post(admin::login))
        .service(web::resource("/admin/logout").post(admin::logout))
        .service(
            web::resource("/admin/deliveries/{id}/retry").route(
                web::post()
                    .to(admin::retry_delivery)
                    .wrap(from_fn(paths::refuse_dot_segments))
                    .wrap(from_fn(admin::require_admin_session)),
            ),
        )
        .service(web::resource("/static/admin.js").get(admin::admin_js))
        .service(web::resource("/inbox").get(live::inbox_page))
        .service(web::resource("/static/clairon.js").get(live::client_js))
        .service(web::resource("/api/openapi.json").get(openapi::openapi_json))
        .service(
            web::scope("/api/docs")
                .service(web::resource("").get(openapi::docs_redirect))
                .service(
                    SwaggerUi::new("/{_:.*}")
                        .config(utoipa_swagger_ui::Config::new(["/api/openapi.json"])),
                )
                .default_service(web::to(routes::not_found)),
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
                .service(web::resource("/notifications").get(live::me_list))
                .service(web::resource("/notifications/unread-count").get(live::me_unread_count))
                .service(web::resource("/notifications/stream").get(live::sse))
                .service(web::resource("/notifications/read-all").post(live::me_read_all))
                .service(
                    web::resource("/notifications/{id}/read").route(
                        web::post()
                            .to(live::me_mark_read)
                            .wrap(from_fn(paths::refuse_dot_segments)),
                    ),
                )
                .service(web::resource("/ws").get(live::websocket))
                .default_service(web::to(routes::not_found)),
        )
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(auth::require_api_key))
                .service(web::resource("/recipients/import").route(scoped!(
                    post,
                    require_send,
                    routes::import_recipients,
                    idempotency::idempotent
                )))
                .service(
                    web::resource("/recipients/{id}")
                        .route(scoped!(put, require_send, routes::put_recipient))
                        .route(scoped!(get, require_read, routes::get_recipient))
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
                    live::issue_token
                )))
                // The counterpart of issuing: whoever may mint a recipient's tokens may void them.
                .service(
                    web::resource("/recipients/{id}/tokens/revoke").route(scoped!(
                        post,
                        require_read,
                        live::revoke_tokens
                    )),
                )
                .service(
                    web::resource("/recipients/{id}/notifications").route(scoped!(
                        get,
                        require_read,
                        routes::list_notifications
                    )),
                )
                .service(
                    web::resource("/recipients/{id}/notifications/unread-count").route(scoped!(
                        get,
                        require_read,
                        routes::unread_count
                    )),
                )
                .service(
                    web::resource("/recipients/{id}/notifications/read-all").route(scoped!(
                        post,
                        require_read,
                        routes::mark_all_read
                    )),
                )
                .service(web::resource("/notifications").route(scoped!(
                    post,
                    require_send,
                    routes::create_notifications,
                    idempotency::idempotent
                )))
                .service(web::resource("/notifications/test").route(scoped!(
                    post,
                    require_send,
                    routes::send_test
                )))
                .service(
                    web::resource("/notifications/plannings/{planning_id}/events").route(scoped!(
                        post,
                        require_send,
                        routes::planning_event,
                        idempotency::idempotent
                    )),
                )
                .service(web::resource("/notifications/{id}").route(scoped!(
                    get,
                    require_read,
                    routes::get_notification
                )))
                .service(web::resource("/notifications/{id}/read").route(scoped!(
                    post,
                    require_read,
                    routes::mark_read
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
                        .default_service(web::to(routes::not_found)),
                )
                .default_service(web::to(routes::not_found)),
        )
        .default_service(web::to(routes::not_found));
}
