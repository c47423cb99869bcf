//! Operator routes on deliveries: `GET /api/v1/deliveries` (the dead-letter view) and
//! `POST /api/v1/deliveries/{id}/retry`.

use actix_web::{web, HttpResponse};
use clairon_application::commands::{RetryDelivery, RetryDeliveryError};
use clairon_application::ports::RepositoryError;
use clairon_application::queries::{ListDeliveries, ListDeliveriesError};
use clairon_domain::{Channel, DeliveryId, DeliveryStatus};
use serde::Deserialize;
use serde_json::json;

use super::problem::{ApiError, FieldError};
use super::Handlers;

fn repository(e: RepositoryError) -> ApiError {
    match e {
        RepositoryError::Unavailable(cause) => ApiError::Unavailable(cause),
        other => ApiError::Internal(other.to_string()),
    }
}

/// Query string of `GET /api/v1/deliveries`; every value is parsed here so a bad one is named.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    channel: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

const LIMIT_MESSAGE: &str = "must be an integer from 1 to 100";

/// `GET /api/v1/deliveries?status=dead|failed|retrying|…&channel=&limit=&cursor=` →
/// `{"items":[…], "next_cursor"}`, newest first; every invalid parameter is listed in one 422.
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
                    message: "must be one of pending, sending, sent, retrying, failed, dead, skipped, cancelled".into(),
                });
            })
            .ok()
    });
    let channel = params.channel.as_deref().and_then(|raw| {
        Channel::parse(raw)
            .map_err(|_| {
                errors.push(FieldError {
                    field: "channel".into(),
                    message: "must be one of in_app, email, telegram".into(),
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
    Ok(HttpResponse::Ok().json(json!({ "items": page.items, "next_cursor": page.next_cursor })))
}

/// `POST /api/v1/deliveries/{id}/retry` → `200` with the delivery, `pending` and due now;
/// `409` unless it was `dead` or `failed`; `404` for an unknown id.
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
    Ok(HttpResponse::Ok().json(delivery))
}
