//! The GDPR routes: `GET /api/v1/recipients/{id}/export` (access and portability, articles 15
//! and 20) and `DELETE /api/v1/recipients/{id}` (erasure, article 17).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use clairon_application::commands::{EraseRecipient, EraseRecipientError};
use clairon_application::queries::{ExportRecipient, ExportRecipientError};

use super::auth::ApiPrincipal;
use super::problem::ApiError;
use super::routes::{recipient_id, repository};
use super::Handlers;

/// `GET /api/v1/recipients/{id}/export` → 200 `{exported_at, recipient, notifications: [{…,
/// deliveries: [{…, attempt_log}]}]}`: everything held about the recipient; 404 when unknown.
///
/// # Errors
/// 404 for an unknown recipient, 503 when the database fails.
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
        .json(export))
}

/// `DELETE /api/v1/recipients/{id}` → 204: the recipient and all their notifications,
/// deliveries and attempts are gone, in one transaction, and an audit row without personal data
/// says so.
///
/// # Errors
/// 404 for an unknown recipient; 409 while a delivery to them is being sent (retry after its
/// lease); 503 when the database fails. Nothing is erased then.
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
