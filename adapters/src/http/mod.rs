//! The actix-web HTTP adapter: JSON API under `/api/v1` (API key required, each route checking
//! the key's scope) and `/health`.
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
pub mod problem;
pub mod request_id;
pub mod rate_limit;
mod routes;
pub mod security;
pub mod tokens;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{guard, web};
use clairon_application::commands::{
    CreateNotificationHandler, EraseRecipientHandler, HandlePlanningEventHandler,
    MarkAllNotificationsReadHandler, MarkNotificationReadHandler, RetryDeliveryHandler,
    RunJobHandler, SendTestNotificationHandler, UpsertRecipientsHandler,
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
pub use problem::{ApiError, FieldError};
pub use rate_limit::{RateLimits, RateQuota};
pub use tokens::RecipientTokens;

/// What `/health/ready` checks.
pub trait HealthProbe: Send + Sync {
    /// `Ok` when the database answers; `Err` with a cause (logged, never shown) otherwise.
    fn database(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
    /// `Ok` when every embedded migration is applied; `Err` naming the pending ones (or why
    /// they could not be listed) otherwise.
    fn migrations(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
    /// Whether at least one dispatcher worker of this process is running.
    fn dispatcher_running(&self) -> bool;
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
}

/// What the routes' wiring takes from configuration.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Origins allowed to call `/api/v1/me` from a browser (CORS); empty: none.
    pub cors_origins: Vec<String>,
}

/// One resource of `/api/v1` for one method, behind a scope check: `scoped!(path, Get,
/// require_read, handler)`, or with an extra middleware (idempotency) inside the check.
macro_rules! scoped {
    ($path:expr, $method:ident, $scope:ident, $handler:expr) => {
        web::resource($path)
            .guard(guard::$method())
            .wrap(from_fn(auth::$scope))
            .route(web::route().to($handler))
    };
    ($path:expr, $method:ident, $scope:ident, $handler:expr, $inner:expr) => {
        web::resource($path)
            .guard(guard::$method())
            .wrap(from_fn($inner))
            .wrap(from_fn(auth::$scope))
            .route(web::route().to($handler))
    };
}

/// Registers every route on an actix `App`: give it `web::Data<Handlers>`,
/// `web::Data<ApiKeys>`, `web::Data<RecipientTokens>`, `web::Data<Live>`,
/// `web::Data<Observability>` and `web::Data<AdminSessions>` as app data (and optionally
/// `web::Data<RateLimits>` and `web::Data<BodyLimits>`).
///
/// Scopes (see `clairon_domain::ApiScope`): `send` ingests, `read` reads, `admin` does
/// everything; a route's scope is the middleware around it.
pub fn configure(cfg: &mut web::ServiceConfig, options: &HttpOptions) {
    cfg.route("/health", web::get().to(observability::ready))
        .route("/health/live", web::get().to(observability::live))
        .route("/health/ready", web::get().to(observability::ready))
        .route("/metrics", web::get().to(observability::metrics))
        .route("/admin", web::get().to(admin::dashboard))
        .route("/admin/login", web::post().to(admin::login))
        .route("/admin/logout", web::post().to(admin::logout))
        .service(
            web::resource("/admin/deliveries/{id}/retry")
                .wrap(from_fn(admin::require_admin_session))
                .route(web::post().to(deliveries::retry)),
        )
        .route("/static/admin.js", web::get().to(admin::admin_js))
        .route("/inbox", web::get().to(live::inbox_page))
        .route("/static/clairon.js", web::get().to(live::client_js))
        // Before `/api/v1`: recipient tokens only, never API keys.
        .service(
            web::scope("/api/v1/me")
                .wrap(from_fn(rate_limit::limit_recipient))
                // Outermost: preflights are answered before any token is asked for.
                .wrap(security::me_cors(&options.cors_origins))
                .route("/notifications", web::get().to(live::me_list))
                .route(
                    "/notifications/unread-count",
                    web::get().to(live::me_unread_count),
                )
                .route("/notifications/stream", web::get().to(live::sse))
                .route("/notifications/read-all", web::post().to(live::me_read_all))
                .route(
                    "/notifications/{id}/read",
                    web::post().to(live::me_mark_read),
                )
                .route("/ws", web::get().to(live::websocket))
                .default_service(web::to(routes::not_found)),
        )
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(auth::require_api_key))
                .service(scoped!(
                    "/recipients/import",
                    Post,
                    require_send,
                    routes::import_recipients,
                    idempotency::idempotent
                ))
                .service(scoped!(
                    "/recipients/{id}",
                    Put,
                    require_send,
                    routes::put_recipient
                ))
                .service(scoped!(
                    "/recipients/{id}",
                    Get,
                    require_read,
                    routes::get_recipient
                ))
                .service(scoped!(
                    "/recipients/{id}",
                    Delete,
                    require_admin,
                    gdpr::erase
                ))
                .service(scoped!(
                    "/recipients/{id}/export",
                    Get,
                    require_read,
                    gdpr::export
                ))
                .service(scoped!(
                    "/recipients/{id}/tokens",
                    Post,
                    require_read,
                    live::issue_token
                ))
                .service(scoped!(
                    "/recipients/{id}/notifications",
                    Get,
                    require_read,
                    routes::list_notifications
                ))
                .service(scoped!(
                    "/recipients/{id}/notifications/unread-count",
                    Get,
                    require_read,
                    routes::unread_count
                ))
                .service(scoped!(
                    "/recipients/{id}/notifications/read-all",
                    Post,
                    require_read,
                    routes::mark_all_read
                ))
                .service(scoped!(
                    "/notifications",
                    Post,
                    require_send,
                    routes::create_notifications,
                    idempotency::idempotent
                ))
                .service(scoped!(
                    "/notifications/test",
                    Post,
                    require_send,
                    routes::send_test
                ))
                .service(scoped!(
                    "/notifications/plannings/{planning_id}/events",
                    Post,
                    require_send,
                    routes::planning_event,
                    idempotency::idempotent
                ))
                .service(scoped!(
                    "/notifications/{id}",
                    Get,
                    require_read,
                    routes::get_notification
                ))
                .service(scoped!(
                    "/notifications/{id}/read",
                    Post,
                    require_read,
                    routes::mark_read
                ))
                .service(scoped!("/deliveries", Get, require_read, deliveries::list))
                .service(scoped!(
                    "/deliveries/{id}/retry",
                    Post,
                    require_admin,
                    deliveries::retry
                ))
                // Operators only.
                .service(
                    web::scope("/admin")
                        .wrap(from_fn(auth::require_admin))
                        .route("/job-runs", web::get().to(admin::list_job_runs))
                        .route("/jobs/{job}/run", web::post().to(admin::run_job))
                        .route("/stats", web::get().to(admin::stats)),
                )
                .default_service(web::to(routes::not_found)),
        )
        .default_service(web::to(routes::not_found));
}
