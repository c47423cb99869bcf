//! `GET /api/v1/push/vapid-public-key`: the VAPID public key (RFC 8292 §3.2) browsers subscribe
//! to Web Push with. Public, like the key itself: the inbox page asks for it with a recipient
//! token only, and an API key would add nothing (it is mounted before the `/api/v1` scope).

use actix_web::{web, HttpResponse};

use crate::http::problem::ApiError;
use crate::http::schema::responses::VapidPublicKey;
use crate::http::state::Handlers;

/// `GET /api/v1/push/vapid-public-key` → `{"public_key": "<base64url>"}`.
#[utoipa::path(
    get, path = "/api/v1/push/vapid-public-key", tag = "me",
    responses(
        (status = 200, description = "The VAPID public key: base64url of the uncompressed P-256 point, the `applicationServerKey` of `PushManager.subscribe`.", body = VapidPublicKey),
    ),
)]
pub async fn vapid_public_key(handlers: web::Data<Handlers>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(VapidPublicKey {
        public_key: handlers.web_push.public_key.clone(),
    }))
}

/// Registers the route at the top level, before the `/api/v1` scope (no API key asked).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/v1/push/vapid-public-key").get(vapid_public_key));
}
