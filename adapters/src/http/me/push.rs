//! `/api/v1/me/push-subscriptions`: the token's recipient opts a browser in to Web Push
//! (`POST`, the W3C Push API's `PushSubscription.toJSON()`) or out (`DELETE ?endpoint=`).
//! Each subscription gets its own `web_push` delivery of every later notification.

use actix_web::{web, HttpResponse};

use crate::http::credentials::tokens::Me;
use crate::http::extract::JsonBody;
use crate::http::problem::{self, ApiError, FieldError, Problem};
use crate::http::schema::params::PushEndpointQuery;
use crate::http::schema::requests::PushSubscriptionBody;
use crate::http::schema::responses::PushSubscriptionCreated;
use crate::http::state::Handlers;

async fn known(handlers: &Handlers, me: &Me) -> Result<(), ApiError> {
    match handlers.recipients.get(&me.recipient).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::NotFound(format!(
            "recipient {} not found",
            me.recipient
        ))),
        Err(e) => Err(problem::repository(e)),
    }
}

/// `POST /api/v1/me/push-subscriptions` → 201: stores the browser's subscription (the same
/// endpoint again replaces its keys).
#[utoipa::path(
    post, path = "/api/v1/me/push-subscriptions", tag = "me",
    request_body = PushSubscriptionBody,
    responses(
        (status = 201, description = "Stored; later notifications get a `web_push` delivery to it (with a granted `web_push` consent).", body = PushSubscriptionCreated),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Each bad field named: `endpoint` (https only, but for CLAIRON_PUSH_ALLOWED_HOSTS), `keys.p256dh` (65-byte uncompressed P-256 point), `keys.auth` (16 bytes).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_post_push_subscription(
    handlers: web::Data<Handlers>,
    me: Me,
    JsonBody(body): JsonBody<PushSubscriptionBody>,
) -> Result<HttpResponse, ApiError> {
    let state = &handlers.web_push;
    let subscription = body.into_subscription(&state.allowed_http_hosts)?;
    known(&handlers, &me).await?;
    let created = PushSubscriptionCreated {
        endpoint: subscription.endpoint.clone(),
    };
    let target = crate::channels::web_push::PushTarget {
        endpoint: subscription.endpoint,
        p256dh: subscription.p256dh,
        auth: subscription.auth,
    };
    state
        .subscriptions
        .put(&me.recipient, &target)
        .await
        .map_err(problem::repository)?;
    Ok(HttpResponse::Created().json(created))
}

/// `DELETE /api/v1/me/push-subscriptions?endpoint=` → 204: the browser opts out (also when
/// there was no such subscription: the result is the same).
#[utoipa::path(
    delete, path = "/api/v1/me/push-subscriptions", tag = "me",
    params(PushEndpointQuery),
    responses(
        (status = 204, description = "No subscription at that endpoint any more."),
        (status = 422, description = "`endpoint` empty or longer than 2,000 characters.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The token's recipient no longer exists.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("recipient_token" = [])),
)]
pub async fn me_delete_push_subscription(
    handlers: web::Data<Handlers>,
    me: Me,
    query: web::Query<PushEndpointQuery>,
) -> Result<HttpResponse, ApiError> {
    let length = query.endpoint.chars().count();
    if length == 0 || length > 2000 {
        return Err(ApiError::invalid_fields(vec![FieldError {
            field: "endpoint".into(),
            message: "must be the subscription's endpoint: 1 to 2,000 characters".into(),
        }]));
    }
    known(&handlers, &me).await?;
    handlers
        .web_push
        .subscriptions
        .remove(&me.recipient, &query.endpoint)
        .await
        .map_err(problem::repository)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the routes in the `/api/v1/me` scope (whose middleware checks the token).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/push-subscriptions")
            .post(me_post_push_subscription)
            .delete(me_delete_push_subscription),
    );
}
