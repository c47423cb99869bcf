//! `/api/v1/me/notifications…`: the token's own inbox over REST, the same reads and writes as
//! `http::api::inbox` with the recipient taken from the token ([`Me`]).

use actix_web::{web, HttpResponse};

use crate::http::api::inbox::{self, ListParams};
use crate::http::api::{notifications, preferences};
use crate::http::credentials::tokens::Me;
use crate::http::extract::JsonBody;
use crate::http::problem::{ApiError, Problem};
use crate::http::schema::requests::{ConsentBody, PreferencesBody};
use crate::http::schema::responses::{ConsentList, ConsentResponse, PreferencesDocument};
use crate::http::schema::params::IdPath;
use crate::http::schema::responses::{
    MarkedAllRead, NotificationPage, NotificationResponse, UnreadCountResponse,
};
use crate::http::state::Handlers;

/// `GET /api/v1/me/notifications` — the token's inbox, same filters as the API-key route.
#[utoipa::path(
    get, path = "/api/v1/me/notifications", tag = "me",
    params(ListParams),
    responses(
        (status = 200, description = "A page of the token's inbox, newest first.", body = NotificationPage),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad `status`, `limit` or `cursor`, named.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_list(
    handlers: web::Data<Handlers>,
    me: Me,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    inbox::list_for(&handlers, me.recipient, &params).await
}

/// `GET /api/v1/me/notifications/unread-count` → `{"unread": n}`.
#[utoipa::path(
    get, path = "/api/v1/me/notifications/unread-count", tag = "me",
    responses(
        (status = 200, description = "The token's unread count.", body = UnreadCountResponse),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_unread_count(
    handlers: web::Data<Handlers>,
    me: Me,
) -> Result<HttpResponse, ApiError> {
    inbox::unread_for(&handlers, me.recipient).await
}

/// `POST /api/v1/me/notifications/{id}/read`: someone else's notification is 404.
#[utoipa::path(
    post, path = "/api/v1/me/notifications/{id}/read", tag = "me",
    params(IdPath),
    responses(
        (status = 200, description = "The notification, read.", body = NotificationResponse),
        (status = 404, description = "No such notification among the token's.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_mark_read(
    handlers: web::Data<Handlers>,
    me: Me,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    notifications::mark_read_as(&handlers, &path, Some(me.recipient)).await
}

/// `POST /api/v1/me/notifications/read-all` → `{"marked": n, "unread": 0}`.
#[utoipa::path(
    post, path = "/api/v1/me/notifications/read-all", tag = "me",
    responses(
        (status = 200, description = "Every notification of the token's recipient is read.", body = MarkedAllRead),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_read_all(handlers: web::Data<Handlers>, me: Me) -> Result<HttpResponse, ApiError> {
    inbox::mark_all_for(&handlers, me.recipient).await
}

/// `GET /api/v1/me/preferences` — the token's own preferences (the defaults if never set).
#[utoipa::path(
    get, path = "/api/v1/me/preferences", tag = "me",
    responses(
        (status = 200, description = "The token's preference document, every key present.", body = PreferencesDocument),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_get_preferences(
    handlers: web::Data<Handlers>,
    me: Me,
) -> Result<HttpResponse, ApiError> {
    preferences::preferences_for(&handlers, me.recipient).await
}

/// `PUT /api/v1/me/preferences` — replaces the token's preferences whole.
#[utoipa::path(
    put, path = "/api/v1/me/preferences", tag = "me",
    request_body = PreferencesBody,
    responses(
        (status = 200, description = "Replaced; the stored document.", body = PreferencesDocument),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every bad field named (`channels.in_app`, `event_types.Bad`, `quiet_hours.end`, …); nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_put_preferences(
    handlers: web::Data<Handlers>,
    me: Me,
    JsonBody(body): JsonBody<PreferencesBody>,
) -> Result<HttpResponse, ApiError> {
    preferences::set_preferences_for(&handlers, me.recipient, body).await
}

/// `POST /api/v1/me/consents` — the token's recipient grants or withdraws a consent.
#[utoipa::path(
    post, path = "/api/v1/me/consents", tag = "me",
    request_body = ConsentBody,
    responses(
        (status = 201, description = "Recorded; a withdrawal cancels the pending deliveries on that channel (`consent_revoked`).", body = ConsentResponse),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every bad field named; nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_post_consent(
    handlers: web::Data<Handlers>,
    me: Me,
    JsonBody(body): JsonBody<ConsentBody>,
) -> Result<HttpResponse, ApiError> {
    preferences::record_consent_for(&handlers, me.recipient, body).await
}

/// `GET /api/v1/me/consents` — the token's consent history, newest first.
#[utoipa::path(
    get, path = "/api/v1/me/consents", tag = "me",
    responses(
        (status = 200, description = "The history, newest first.", body = ConsentList),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_get_consents(
    handlers: web::Data<Handlers>,
    me: Me,
) -> Result<HttpResponse, ApiError> {
    preferences::consents_for(&handlers, me.recipient).await
}

/// Registers the REST routes in the `/api/v1/me` scope (whose middleware checks the token).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/notifications").get(me_list))
        .service(
            web::resource("/preferences")
                .get(me_get_preferences)
                .put(me_put_preferences),
        )
        .service(
            web::resource("/consents")
                .post(me_post_consent)
                .get(me_get_consents),
        )
        .service(web::resource("/notifications/unread-count").get(me_unread_count))
        .service(web::resource("/notifications/read-all").post(me_read_all))
        .service(
            web::resource("/notifications/{id}/read").route(web::post().to(me_mark_read).wrap(
                actix_web::middleware::from_fn(crate::http::middleware::paths::refuse_dot_segments),
            )),
        );
}
