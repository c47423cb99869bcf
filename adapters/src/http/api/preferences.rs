//! A recipient's own choices, with an API key: `GET|PUT /api/v1/recipients/{id}/preferences`
//! (scope `read` reads, `send` writes) and `POST|GET /api/v1/recipients/{id}/consents` (`send`
//! records, `read` lists); `admin` does both. The same reads and writes with a recipient token
//! are `http::me::rest` (`/api/v1/me/preferences`, `/api/v1/me/consents`), through the `*_for`
//! helpers here.

use actix_web::{web, HttpResponse};
use clairon_application::commands::{
    RecordConsent, RecordConsentError, SetPreferences, SetPreferencesError,
};
use clairon_application::queries::{
    GetPreferences, GetPreferencesError, ListConsents, ListConsentsError,
};
use clairon_domain::RecipientId;

use crate::http::extract::{recipient_id, JsonBody};
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::schema::params::RecipientPath;
use crate::http::schema::requests::{ConsentBody, PreferencesBody};
use crate::http::schema::responses::{ConsentList, ConsentResponse, PreferencesDocument};
use crate::http::state::Handlers;

type Data = web::Data<Handlers>;

fn not_found(id: &RecipientId) -> ApiError {
    ApiError::NotFound(format!("recipient {id} not found"))
}

/// The preferences of `recipient` (the defaults when they never set any).
///
/// # Errors
/// 404 for an unknown recipient; 503 when the database fails.
pub async fn preferences_for(
    handlers: &Handlers,
    recipient: RecipientId,
) -> Result<HttpResponse, ApiError> {
    let preferences = handlers
        .get_preferences
        .execute(GetPreferences {
            recipient_id: recipient,
        })
        .await
        .map_err(|e| match e {
            GetPreferencesError::UnknownRecipient(id) => not_found(&id),
            GetPreferencesError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(PreferencesDocument::from(&preferences)))
}

/// Replaces the preferences of `recipient` with `body`; answers the stored document.
///
/// # Errors
/// 422 naming every bad field, 404 for an unknown recipient; nothing is written then.
pub async fn set_preferences_for(
    handlers: &Handlers,
    recipient: RecipientId,
    body: PreferencesBody,
) -> Result<HttpResponse, ApiError> {
    let preferences = body.into_preferences()?;
    let stored = handlers
        .set_preferences
        .execute(SetPreferences {
            recipient_id: recipient,
            preferences,
        })
        .await
        .map_err(|e| match e {
            SetPreferencesError::UnknownRecipient(id) => not_found(&id),
            SetPreferencesError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(PreferencesDocument::from(&stored)))
}

/// Records `body` for `recipient`; answers 201 with the record.
///
/// # Errors
/// 422 naming every bad field, 404 for an unknown recipient; nothing is written then.
pub async fn record_consent_for(
    handlers: &Handlers,
    recipient: RecipientId,
    body: ConsentBody,
) -> Result<HttpResponse, ApiError> {
    let consent = body.into_consent()?;
    let recorded = handlers
        .record_consent
        .execute(RecordConsent {
            recipient_id: recipient,
            consent,
        })
        .await
        .map_err(|e| match e {
            RecordConsentError::UnknownRecipient(id) => not_found(&id),
            RecordConsentError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Created().json(ConsentResponse::from(recorded.consent)))
}

/// The consent history of `recipient`, newest first.
///
/// # Errors
/// 404 for an unknown recipient; 503 when the database fails.
pub async fn consents_for(
    handlers: &Handlers,
    recipient: RecipientId,
) -> Result<HttpResponse, ApiError> {
    let history = handlers
        .list_consents
        .execute(ListConsents {
            recipient_id: recipient,
        })
        .await
        .map_err(|e| match e {
            ListConsentsError::UnknownRecipient(id) => not_found(&id),
            ListConsentsError::Repository(e) => repository(e),
        })?;
    Ok(HttpResponse::Ok().json(ConsentList {
        consents: history.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/recipients/{id}/preferences`.
#[utoipa::path(
    get, path = "/api/v1/recipients/{id}/preferences", tag = "preferences",
    params(RecipientPath),
    responses(
        (status = 200, description = "The recipient's document, every key present; `{\"channels\": {}, \"event_types\": {}, \"quiet_hours\": null}` (everything allowed) for someone who never set one. Scope `read` or `admin`.", body = PreferencesDocument),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn get_preferences(handlers: Data, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    preferences_for(&handlers, recipient_id(&path)?).await
}

/// `PUT /api/v1/recipients/{id}/preferences`.
#[utoipa::path(
    put, path = "/api/v1/recipients/{id}/preferences", tag = "preferences",
    params(RecipientPath),
    request_body = PreferencesBody,
    responses(
        (status = 200, description = "Replaced whole; the stored document. Scope `send` or `admin`.", body = PreferencesDocument),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every bad field named: an unknown channel (`channels.fax`), `in_app` switched off, a malformed event-type key (`event_types.Bad`), a bad time (`quiet_hours.start`), an unknown key; nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn put_preferences(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<PreferencesBody>,
) -> Result<HttpResponse, ApiError> {
    set_preferences_for(&handlers, recipient_id(&path)?, body).await
}

/// `POST /api/v1/recipients/{id}/consents`.
#[utoipa::path(
    post, path = "/api/v1/recipients/{id}/consents", tag = "preferences",
    params(RecipientPath),
    request_body = ConsentBody,
    responses(
        (status = 201, description = "Recorded (append-only). A withdrawal (`granted: false`) cancels, in the same transaction, the recipient's `pending` and `retrying` deliveries on that channel (`cancelled`, reason `consent_revoked`). Scope `send` or `admin`.", body = ConsentResponse),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every bad field named (`channel`, `source`, `wording`); nothing is written.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn post_consent(
    handlers: Data,
    path: web::Path<String>,
    JsonBody(body): JsonBody<ConsentBody>,
) -> Result<HttpResponse, ApiError> {
    record_consent_for(&handlers, recipient_id(&path)?, body).await
}

/// `GET /api/v1/recipients/{id}/consents`.
#[utoipa::path(
    get, path = "/api/v1/recipients/{id}/consents", tag = "preferences",
    params(RecipientPath),
    responses(
        (status = 200, description = "The consent history, newest first; a channel's current state is its latest record. Scope `read` or `admin`.", body = ConsentList),
        (status = 404, description = "No such recipient.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])),
)]
pub async fn get_consents(handlers: Data, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    consents_for(&handlers, recipient_id(&path)?).await
}

/// Registers the preference and consent routes in the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/recipients/{id}/preferences")
            .route(scoped!(get, require_read, get_preferences))
            .route(scoped!(put, require_send, put_preferences)),
    )
    .service(
        web::resource("/recipients/{id}/consents")
            .route(scoped!(post, require_send, post_consent))
            .route(scoped!(get, require_read, get_consents)),
    );
}
