//! The GDPR routes: `GET /api/v1/recipients/{id}/export` (access and portability, articles 15
//! and 20) and `DELETE /api/v1/recipients/{id}` (erasure, article 17).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use clairon_application::commands::{EraseRecipient, EraseRecipientError};
use clairon_application::queries::{ExportRecipient, ExportRecipientError};

use crate::http::credentials::api_keys::ApiPrincipal;
use crate::http::extract::recipient_id;
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::schema::params::RecipientPath;
use crate::http::schema::responses::RecipientExport;
use crate::http::state::Handlers;

/// `GET /api/v1/recipients/{id}/export` → 200 `{exported_at, recipient, notifications: [{…,
/// deliveries: [{…, attempt_log}]}]}`: everything held about the recipient; 404 when unknown.
///
/// # Errors
/// 404 for an unknown recipient, 503 when the database fails.
#[utoipa::path(
    get, path = "/api/v1/recipients/{id}/export", tag = "gdpr",
    params(RecipientPath),
    responses(
        (status = 200, description = "Everything held about the recipient (`Cache-Control: no-store`): `{exported_at, recipient, notifications: [{…, deliveries: [{…, attempt_log}]}]}`. Scope `read` or `admin`.", body = RecipientExport),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn export(
    handlers: web::Data<Handlers>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let export = handlers
        .export_recipient
        .execute(ExportRecipient {
            recipient_id: recipient_id(&path)?,
        })
        .await
        .map_err(|e| match e {
            ExportRecipientError::UnknownRecipient(id) => {
                ApiError::NotFound(format!("recipient {id} not found"))
            }
            ExportRecipientError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(RecipientExport::from(export)))
}

/// `DELETE /api/v1/recipients/{id}` → 204: the recipient and all their notifications,
/// deliveries and attempts are gone, in one transaction, and an audit row without personal data
/// says so.
///
/// # Errors
/// 404 for an unknown recipient; 409 while a delivery to them is being sent (retry after its
/// lease); 503 when the database fails. Nothing is erased then.
#[utoipa::path(
    delete, path = "/api/v1/recipients/{id}", tag = "gdpr",
    params(RecipientPath),
    responses(
        (status = 204, description = "Erased, with their notifications, deliveries and attempts, in one transaction; an audit row without personal data records it. Scope `admin`."),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A delivery to them is being sent right now; retry after its lease. Nothing is erased.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn erase(
    handlers: web::Data<Handlers>,
    principal: web::ReqData<ApiPrincipal>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    handlers
        .erase_recipient
        .execute(EraseRecipient {
            recipient_id: recipient_id(&path)?,
            actor: principal.actor(),
        })
        .await
        .map_err(|e| match e {
            EraseRecipientError::UnknownRecipient(id) => {
                ApiError::NotFound(format!("recipient {id} not found"))
            }
            e @ EraseRecipientError::DeliveryInFlight(_) => ApiError::Conflict(e.to_string()),
            EraseRecipientError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the export in the `/api/v1` scope; the erasure (`DELETE /recipients/{id}`) is
/// registered by [`super::recipients::routes`], on that path's one resource.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/recipients/{id}/export").route(scoped!(get, require_read, export)));
}
