//! The actix-web HTTP adapter: JSON API under `/api/v1` (API key required), `/health`, and the
//! API contract (`/api/openapi.json`, `/api/docs/`).
//!
//! Routes translate requests into commands and queries of the application layer and their
//! results or errors into JSON or RFC 7807 problems; they hold no business rule.

pub mod auth;
mod deliveries;
pub mod dto;
pub mod extract;
pub mod idempotency;
pub mod live;
pub mod openapi;
pub mod problem;
pub mod responses;
mod routes;
pub mod tokens;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::web;
use clairon_application::commands::{
    CreateNotificationHandler, HandlePlanningEventHandler, MarkAllNotificationsReadHandler,
    MarkNotificationReadHandler, RetryDeliveryHandler, SendTestNotificationHandler,
    UpsertRecipientsHandler,
};
use clairon_application::ports::RecipientRepository;
use clairon_application::queries::{
    GetNotificationHandler, ListDeliveriesHandler, ListNotificationsHandler, UnreadCountHandler,
};

pub use auth::ApiKeys;
pub use idempotency::IdempotencyStore;
pub use live::Live;
pub use openapi::ApiDoc;
pub use problem::{ApiError, FieldError};
pub use tokens::RecipientTokens;
use utoipa_swagger_ui::SwaggerUi;

/// Checks the database for `/health`.
pub trait HealthProbe: Send + Sync {
    /// `Ok` when the database answers; `Err` with a cause (logged, never shown) otherwise.
    fn database(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
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
}

/// The Content-Security-Policy of the HTML pages (`/inbox`, `/api/docs/`): scripts only from
/// this origin, never inline (W3C CSP Level 3).
pub const PAGE_CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'";

/// Registers every route on an actix `App`: give it `web::Data<Handlers>`,
/// `web::Data<ApiKeys>`, `web::Data<RecipientTokens>` and `web::Data<Live>` as app data, and
/// wrap the app in [`problem::problems`] so that every error is `application/problem+json`.
///
/// Each path is one `web::resource`, so a known path with another method is a 405 with `Allow`
/// (RFC 9110 § 15.5.6), not a 404. Idempotency wraps the ingestion POST routes, not their
/// resources, so another method is refused before any `Idempotency-Key` is looked at. A route
/// added here is documented by a `#[utoipa::path]` on
/// its handler and a line in [`openapi::ApiDoc`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(problem::query_error))
        .app_data(web::PathConfig::default().error_handler(problem::path_error))
        .app_data(web::Data::new(openapi::document()))
        .service(web::resource("/health").get(routes::health))
        .service(web::resource("/inbox").get(live::inbox_page))
        .service(web::resource("/static/clairon.js").get(live::client_js))
        .service(web::resource("/api/openapi.json").get(openapi::openapi_json))
        .service(
            web::scope("/api/docs")
                .wrap(DefaultHeaders::new().add((header::CONTENT_SECURITY_POLICY, PAGE_CSP)))
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
                .service(web::resource("/notifications").get(live::me_list))
                .service(web::resource("/notifications/unread-count").get(live::me_unread_count))
                .service(web::resource("/notifications/stream").get(live::sse))
                .service(web::resource("/notifications/read-all").post(live::me_read_all))
                .service(web::resource("/notifications/{id}/read").post(live::me_mark_read))
                .service(web::resource("/ws").get(live::websocket))
                .default_service(web::to(routes::not_found)),
        )
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(auth::require_api_key))
                .service(
                    web::resource("/recipients/import").route(
                        web::post()
                            .to(routes::import_recipients)
                            .wrap(from_fn(idempotency::idempotent)),
                    ),
                )
                .service(
                    web::resource("/recipients/{id}")
                        .put(routes::put_recipient)
                        .get(routes::get_recipient),
                )
                .service(web::resource("/recipients/{id}/tokens").post(live::issue_token))
                .service(
                    web::resource("/recipients/{id}/notifications").get(routes::list_notifications),
                )
                .service(
                    web::resource("/recipients/{id}/notifications/unread-count")
                        .get(routes::unread_count),
                )
                .service(
                    web::resource("/recipients/{id}/notifications/read-all")
                        .post(routes::mark_all_read),
                )
                .service(
                    web::resource("/notifications").route(
                        web::post()
                            .to(routes::create_notifications)
                            .wrap(from_fn(idempotency::idempotent)),
                    ),
                )
                .service(web::resource("/notifications/test").post(routes::send_test))
                .service(
                    web::resource("/notifications/plannings/{planning_id}/events").route(
                        web::post()
                            .to(routes::planning_event)
                            .wrap(from_fn(idempotency::idempotent)),
                    ),
                )
                .service(web::resource("/notifications/{id}").get(routes::get_notification))
                .service(web::resource("/notifications/{id}/read").post(routes::mark_read))
                .service(web::resource("/deliveries").get(deliveries::list))
                .service(web::resource("/deliveries/{id}/retry").post(deliveries::retry))
                .default_service(web::to(routes::not_found)),
        )
        .default_service(web::to(routes::not_found));
}
