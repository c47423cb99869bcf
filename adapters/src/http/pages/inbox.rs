//! `/inbox`: the notification center page, and its JavaScript client `/static/clairon.js`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::i18n::{page_language, strings, Page};
use crate::http::middleware::security::DEFAULT_CSP;
use crate::http::problem::ApiError;

const INBOX_PAGE: &str = include_str!("../../../assets/inbox.html.tera");
const CLIENT_JS: &str = include_str!("../../../assets/clairon.js");
const SERVICE_WORKER_JS: &str = include_str!("../../../assets/sw.js");

/// `GET /inbox`: the notification center page (token pasted or `?token=`, `?lang=fr|en`, else
/// the browser's `Accept-Language`).
#[utoipa::path(
    get, path = "/inbox", tag = "operations",
    params(
        ("token" = Option<String>, Query, description = "A recipient token; the page moves it to `sessionStorage` (or paste it into the page)."),
        ("lang" = Option<String>, Query, description = "`fr` or `en`; anything else: the browser's `Accept-Language`."),
    ),
    responses((status = 200, description = "The notification center page.", content_type = "text/html", body = String)),
)]
pub async fn inbox_page(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let lang = page_language(&req);
    let words = strings(lang, Page::Inbox);
    let mut context = tera::Context::new();
    context.insert("lang", lang);
    context.insert("strings_json", &words.to_string());
    context.insert("s", &words);
    let html = tera::Tera::one_off(INBOX_PAGE, &context, true)
        .map_err(|e| ApiError::Internal(format!("rendering the inbox page: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((header::CONTENT_SECURITY_POLICY, DEFAULT_CSP))
        .body(html))
}

/// `GET /static/clairon.js`: the browser client (an ES module, embedded in the binary).
#[utoipa::path(
    get, path = "/static/clairon.js", tag = "operations",
    responses((status = 200, description = "The JavaScript client, an ES module (`ClaironInbox`).", content_type = "text/javascript", body = String)),
)]
pub async fn client_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(CLIENT_JS)
}

/// `GET /sw.js`: the Web Push service worker (embedded): shows each push as a notification
/// and opens its `action_url` on click. Served at the root with `Service-Worker-Allowed: /` so
/// it may control every page of the origin; not cached long, so an update reaches browsers.
#[utoipa::path(
    get, path = "/sw.js", tag = "operations",
    responses((status = 200, description = "The service worker the inbox page registers for Web Push.", content_type = "text/javascript", body = String)),
)]
pub async fn service_worker_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Service-Worker-Allowed", "/"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(SERVICE_WORKER_JS)
}

/// Registers the notification center page and its JavaScript client.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/inbox").get(inbox_page))
        .service(web::resource("/static/clairon.js").get(client_js))
        .service(web::resource("/sw.js").get(service_worker_js));
}
