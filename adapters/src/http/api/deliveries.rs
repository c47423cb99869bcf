//! Operator routes on deliveries: `GET /api/v1/deliveries` (the dead-letter view) and
//! `POST /api/v1/deliveries/{id}/retry`.

use actix_web::{web, HttpResponse};
use clairon_application::commands::{RetryDelivery, RetryDeliveryError};
use clairon_application::ports::RepositoryError;
use clairon_application::queries::{ListDeliveries, ListDeliveriesError};
use clairon_domain::{Channel, DeliveryId, DeliveryStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::http::problem::{ApiError, FieldError, Problem};
use crate::http::schema::params::{ChannelName, DeliveryStatusName, IdPath};
use crate::http::schema::responses::{DeliveryListEntry, DeliveryPage, DeliveryResponse};
use crate::http::state::Handlers;

fn repository(e: RepositoryError) -> ApiError {
    match e {
        RepositoryError::Unavailable(cause) => ApiError::Unavailable(cause),
        other => ApiError::Internal(other.to_string()),
    }
}

/// Query string of `GET /api/v1/deliveries`; every value is parsed here so a bad one is named.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only deliveries in this status.
    #[param(value_type = Option<DeliveryStatusName>)]
    status: Option<String>,
    /// Only deliveries on this channel.
    #[param(value_type = Option<ChannelName>)]
    channel: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The previous page's `next_cursor` (an id: 1 to 64 letters, digits, `-` or `_`).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    cursor: Option<String>,
}

const LIMIT_MESSAGE: &str = "must be an integer from 1 to 100";

/// `GET /api/v1/deliveries?status=dead|failed|retrying|…&channel=&limit=&cursor=` →
/// `{"items":[…], "next_cursor"}`, newest first; every invalid parameter is listed in one 422.
#[utoipa::path(
    get, path = "/api/v1/deliveries", tag = "deliveries",
    params(ListParams),
    responses(
        (status = 200, description = "A page of deliveries, newest first.", body = DeliveryPage),
        (status = 422, description = "Every bad parameter (`status`, `channel`, `limit`, `cursor`), named.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn list(
    handlers: web::Data<Handlers>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let status = params.status.as_deref().and_then(|raw| {
        DeliveryStatus::parse(raw)
            .map_err(|_| {
                errors.push(FieldError {
                    field: "status".into(),
                    message: "must be one of pending, sending, sent, retrying, failed, dead, skipped, cancelled, batched".into(),
                });
            })
            .ok()
    });
    let channel = params.channel.as_deref().and_then(|raw| {
        Channel::parse(raw)
            .map_err(|_| {
                errors.push(FieldError {
                    field: "channel".into(),
                    message: "must be one of in_app, email, telegram, slack, webhook, sms, whatsapp, web_push"
                        .into(),
                });
            })
            .ok()
    });
    let limit = params.limit.as_deref().and_then(|raw| {
        raw.parse::<u32>()
            .map_err(|_| {
                errors.push(FieldError {
                    field: "limit".into(),
                    message: LIMIT_MESSAGE.into(),
                });
            })
            .ok()
    });
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let page = handlers
        .list_deliveries
        .execute(ListDeliveries {
            status,
            channel,
            limit,
            cursor: params.cursor.clone(),
        })
        .await
        .map_err(|e| match e {
            ListDeliveriesError::InvalidLimit => ApiError::invalid("limit", LIMIT_MESSAGE),
            ListDeliveriesError::InvalidCursor => {
                ApiError::invalid("cursor", "is not a cursor this service gave out")
            }
            ListDeliveriesError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(DeliveryPage {
        items: page
            .items
            .into_iter()
            .map(DeliveryListEntry::from)
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `POST /api/v1/deliveries/{id}/retry` → `200` with the delivery, `pending` and due now;
/// `409` unless it was `dead` or `failed`; `404` for an unknown id.
#[utoipa::path(
    post, path = "/api/v1/deliveries/{id}/retry", tag = "deliveries",
    params(IdPath),
    responses(
        (status = 200, description = "Back in the queue, due now, with a fresh series of tries.", body = DeliveryResponse),
        (status = 404, description = "No such delivery.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The delivery is neither `dead` nor `failed`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn retry(
    handlers: web::Data<Handlers>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = DeliveryId::parse(&path)
        .map_err(|_| ApiError::NotFound(format!("delivery {:?} not found", path.as_str())))?;
    let delivery = handlers
        .retry_delivery
        .execute(RetryDelivery { id })
        .await
        .map_err(|e| match e {
            RetryDeliveryError::NotFound(id) => {
                ApiError::NotFound(format!("delivery {id} not found"))
            }
            e @ RetryDeliveryError::NotRetryable { .. } => ApiError::Conflict(e.to_string()),
            RetryDeliveryError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(DeliveryResponse::from(delivery)))
}

/// Registers the deliveries' routes in the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/deliveries").route(scoped!(get, require_read, list)))
        .service(web::resource("/deliveries/{id}/retry").route(scoped!(
            post,
            require_admin,
            retry
        )));
}
