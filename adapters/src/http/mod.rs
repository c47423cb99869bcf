//! The actix-web HTTP adapter: JSON API under `/api/v1` (API key required) and `/health`.
//!
//! Routes translate requests into commands and queries of the application layer and their
//! results or errors into JSON or RFC 7807 problems; they hold no business rule.

pub mod admin;
pub mod auth;
mod deliveries;
pub mod dto;
pub mod extract;
pub mod idempotency;
pub mod live;
pub mod observability;
pub mod problem;
pub mod request_id;
mod routes;
pub mod tokens;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::web;
use clairon_application::commands::{
    CreateNotificationHandler, HandlePlanningEventHandler, MarkAllNotificationsReadHandler,
    MarkNotificationReadHandler, RetryDeliveryHandler, RunJobHandler, SendTestNotificationHandler,
    UpsertRecipientsHandler,
};
use clairon_application::ports::RecipientRepository;
use clairon_application::queries::{
    GetNotificationHandler, GetOperationsStatsHandler, ListDeliveriesHandler, ListJobRunsHandler,
    ListNotificationsHandler, UnreadCountHandler,
};

pub use admin::AdminSessions;
pub use auth::ApiKeys;
pub use idempotency::IdempotencyStore;
pub use live::Live;
pub use observability::Observability;
pub use problem::{ApiError, FieldError};
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
}

/// Registers every route on an actix `App`: give it `web::Data<Handlers>`,
/// `web::Data<ApiKeys>`, `web::Data<RecipientTokens>`, `web::Data<Live>`,
/// `web::Data<Observability>` and `web::Data<AdminSessions>` as app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
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
                .service(
                    web::resource("/recipients/import")
                        .wrap(from_fn(idempotency::idempotent))
                        .route(web::post().to(routes::import_recipients)),
                )
                .route("/recipients/{id}", web::put().to(routes::put_recipient))
                .route("/recipients/{id}", web::get().to(routes::get_recipient))
                .route("/recipients/{id}/tokens", web::post().to(live::issue_token))
                .route(
                    "/recipients/{id}/notifications",
                    web::get().to(routes::list_notifications),
                )
                .route(
                    "/recipients/{id}/notifications/unread-count",
                    web::get().to(routes::unread_count),
                )
                .route(
                    "/recipients/{id}/notifications/read-all",
                    web::post().to(routes::mark_all_read),
                )
                .service(
                    web::resource("/notifications")
                        .wrap(from_fn(idempotency::idempotent))
                        .route(web::post().to(routes::create_notifications)),
                )
                .route("/notifications/test", web::post().to(routes::send_test))
                .service(
                    web::resource("/notifications/plannings/{planning_id}/events")
                        .wrap(from_fn(idempotency::idempotent))
                        .route(web::post().to(routes::planning_event)),
                )
                .route(
                    "/notifications/{id}",
                    web::get().to(routes::get_notification),
                )
                .route(
                    "/notifications/{id}/read",
                    web::post().to(routes::mark_read),
                )
                .route("/deliveries", web::get().to(deliveries::list))
                .route("/deliveries/{id}/retry", web::post().to(deliveries::retry))
                // Operators only: when API keys get scopes, wrap this scope in the admin check.
                .service(
                    web::scope("/admin")
                        .route("/job-runs", web::get().to(admin::list_job_runs))
                        .route("/jobs/{job}/run", web::post().to(admin::run_job))
                        .route("/stats", web::get().to(admin::stats)),
                )
                .default_service(web::to(routes::not_found)),
        )
        .default_service(web::to(routes::not_found));
}
