//! Recipients: `PUT`/`GET /api/v1/recipients/{id}`, `POST /api/v1/recipients/import`, and the
//! recipient tokens of `/api/v1/me` (`POST /api/v1/recipients/{id}/tokens`, `…/tokens/revoke`).
//! Erasure and export are `api::gdpr`; the inbox read with an API key is `api::inbox`.

use actix_web::http::header;
use actix_web::{http::StatusCode, web, HttpResponse};
use clairon_application::commands::{
    RevokeRecipientTokens, RevokeRecipientTokensError, UpsertRecipients, UpsertRecipientsError,
};
use clairon_application::ports::Upserted;
use clairon_domain::Recipient;

use crate::http::credentials::tokens::RecipientTokens;
use crate::http::extract::{recipient_id, JsonBody};
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::schema::params::{IdempotencyKeyHeader, RecipientPath};
use crate::http::schema::requests::refuse_unlisted_slack_hosts;
use crate::http::schema::requests::{refuse_private_webhook_targets, ImportBody, RecipientBody};
use crate::http::schema::responses::{ImportResult, IssuedToken, RecipientResponse};
use crate::http::state::Handlers;

type Data = web::Data<Handlers>;

/// `PUT /api/v1/recipients/{id}` → 201 created or 200 updated, with the recipient.
#[utoipa::path(
    put, path = "/api/v1/recipients/{id}", tag = "recipients",
    params(RecipientPath),
    request_body = RecipientBody,
    responses(
        (status = 201, description = "Registered.", body = RecipientResponse),
        (status = 200, description = "Replaced.", body = RecipientResponse),
        (status = 422, description = "Invalid fields (or an `id` in the body that differs from the path's), all listed.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn put_recipient(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<RecipientBody>,
) -> Result<HttpResponse, ApiError> {
    let recipient = body.into_recipient(&path)?;
    refuse_private_webhook_targets(
        std::slice::from_ref(&recipient),
        handlers.webhook_allow_private,
        false,
    )?;
    refuse_unlisted_slack_hosts(
        std::slice::from_ref(&recipient),
        &handlers.slack_hosts,
        false,
    )?;
    let json = RecipientResponse::from(&recipient);
    let outcome = upsert(&handlers, vec![recipient]).await?;
    let status = match outcome.first() {
        Some(Upserted::Created) => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    Ok(HttpResponse::build(status).json(json))
}

async fn upsert(
    handlers: &Handlers,
    recipients: Vec<Recipient>,
) -> Result<Vec<Upserted>, ApiError> {
    handlers
        .upsert_recipients
        .execute(UpsertRecipients { recipients })
        .await
        .map_err(|e| match e {
            UpsertRecipientsError::DuplicateId(id) => {
                ApiError::invalid("recipients", format!("id {id:?} appears more than once"))
            }
            UpsertRecipientsError::TooMany { max } => {
                ApiError::invalid("recipients", format!("at most {max} per import"))
            }
            UpsertRecipientsError::Repository(e) => repository(e),
        })
}

/// `POST /api/v1/recipients/import` → 200 `{"created": n, "updated": n}`.
#[utoipa::path(
    post, path = "/api/v1/recipients/import", tag = "recipients",
    params(IdempotencyKeyHeader),
    request_body = ImportBody,
    responses(
        (status = 200, description = "All registered or replaced, in one transaction.", body = ImportResult),
        (status = 409, description = "A request with this `Idempotency-Key` is in progress.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (`recipients[3].email`), a repeated id, too many recipients, or an `Idempotency-Key` reused with another request; nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn import_recipients(
    handlers: Data,
    JsonBody(body): JsonBody<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let recipients = body.into_recipients()?;
    refuse_private_webhook_targets(&recipients, handlers.webhook_allow_private, true)?;
    refuse_unlisted_slack_hosts(&recipients, &handlers.slack_hosts, true)?;
    let outcome = upsert(&handlers, recipients).await?;
    let created = outcome.iter().filter(|o| **o == Upserted::Created).count();
    Ok(HttpResponse::Ok().json(ImportResult {
        created,
        updated: outcome.len() - created,
    }))
}

/// `GET /api/v1/recipients/{id}`.
#[utoipa::path(
    get, path = "/api/v1/recipients/{id}", tag = "recipients",
    params(RecipientPath),
    responses(
        (status = 200, description = "The recipient.", body = RecipientResponse),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn get_recipient(
    handlers: Data,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = recipient_id(&path)?;
    match handlers.recipients.get(&id).await.map_err(repository)? {
        Some(r) => Ok(HttpResponse::Ok().json(RecipientResponse::from(&r))),
        None => Err(ApiError::NotFound(format!("recipient {id} not found"))),
    }
}

/// `POST /api/v1/recipients/{id}/tokens` (API key) → 201 `{"token", "expires_at"}`.
#[utoipa::path(
    post, path = "/api/v1/recipients/{id}/tokens", tag = "recipients",
    params(RecipientPath),
    responses(
        (status = 201, description = "A recipient token for `/api/v1/me` (`Cache-Control: no-store`).", body = IssuedToken),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn issue_token(
    handlers: Data,
    tokens: web::Data<RecipientTokens>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = recipient_id(&path)?;
    let Some((token, expires_at)) = tokens.issue(&id, handlers.clock.now()).await? else {
        return Err(ApiError::NotFound(format!("recipient {id} not found")));
    };
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(IssuedToken { token, expires_at }))
}

/// `POST /api/v1/recipients/{id}/tokens/revoke` → 204: every token issued for the recipient
/// until now is refused from now on (401), and their open WebSocket and SSE connections close.
///
/// # Errors
/// 404 for an unknown recipient; 503 when the database fails (nothing is revoked then).
#[utoipa::path(
    post, path = "/api/v1/recipients/{id}/tokens/revoke", tag = "recipients",
    params(RecipientPath),
    responses(
        (status = 204, description = "Revoked: every token issued for the recipient until now gets `401`, at once in this process and within `CLAIRON_TOKEN_CACHE_MS` (5 s) at worst in others; their open WebSocket connections close with `4401` and their SSE streams end. Tokens issued after this work. Scope `read` or `admin`."),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn revoke_tokens(
    handlers: web::Data<Handlers>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let recipient_id = recipient_id(&path)?;
    handlers
        .revoke_tokens
        .execute(RevokeRecipientTokens { recipient_id })
        .await
        .map_err(|e| match e {
            RevokeRecipientTokensError::UnknownRecipient(id) => {
                ApiError::NotFound(format!("recipient {id} not found"))
            }
            RevokeRecipientTokensError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers the recipients' routes in the `/api/v1` scope: `/recipients/import` before
/// `/recipients/{id}` (which it would otherwise match), and on `/recipients/{id}` the erasure of
/// [`super::gdpr`] beside `PUT` and `GET`, since one path is one resource (405 with `Allow`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/recipients/import").route(scoped!(
        post,
        require_send,
        import_recipients,
        crate::http::middleware::idempotency::idempotent
    )))
    .service(
        web::resource("/recipients/{id}")
            .route(scoped!(put, require_send, put_recipient))
            .route(scoped!(get, require_read, get_recipient))
            .route(scoped!(delete, require_admin, super::gdpr::erase)),
    )
    .service(web::resource("/recipients/{id}/tokens").route(scoped!(
        post,
        require_read,
        issue_token
    )))
    // The counterpart of issuing: whoever may mint a recipient's tokens may void them.
    .service(
        web::resource("/recipients/{id}/tokens/revoke").route(scoped!(
            post,
            require_read,
            revoke_tokens
        )),
    );
}
