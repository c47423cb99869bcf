//! `/unsubscribe/{token}`: the one-click unsubscribe link of every non-`critical` email
//! (`List-Unsubscribe`, RFC 2369; `List-Unsubscribe-Post`, RFC 8058).
//!
//! `POST` (what a mail client's "unsubscribe" button sends, body `List-Unsubscribe=One-Click`,
//! no cookie, no script, no other credential) switches the email of that event type off for
//! that recipient (`event_types.<type>.email = false` in their preferences) and answers `200`
//! with a confirmation page; it is idempotent. `GET` (a person following the link, or a mail
//! scanner) changes nothing: it shows, in the recipient's language, a page whose button posts.
//!
//! The token is the credential ([`crate::links::UnsubscribeTokens`]: HMAC-signed, checked
//! without storage). A forged or altered one, or one naming a recipient who is unknown or was
//! erased since, is a `404` problem that changes nothing; a well-formed one with a wrong tag (a
//! guess) also counts against the client address's failure bucket like a wrong API key
//! ([`rate_limit::refuse_credential`]), so guessing is throttled.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use clairon_application::commands::{OptOut, OptOutError};
use clairon_domain::{Channel, ChannelName, Recipient};
use serde::Deserialize;
use utoipa::ToSchema;

use super::i18n::{page_language, strings, Page};
use crate::http::middleware::rate_limit::{self, Credential};
use crate::http::middleware::security::DEFAULT_CSP;
use crate::http::problem::{repository, ApiError, Problem};
use crate::http::state::Handlers;
use crate::links::{InvalidUnsubscribeToken, UnsubscribeSubject, UnsubscribeTokens};

const UNSUBSCRIBE_PAGE: &str = include_str!("../../../assets/unsubscribe.html.tera");

/// The body a mail client posts (RFC 8058 §3.1), form-encoded. The route does not insist on
/// it: the signed token and the `POST` itself are the consent (a scanner only ever `GET`s).
#[derive(Debug, Deserialize, ToSchema)]
pub struct OneClickForm {
    /// `One-Click`.
    #[serde(rename = "List-Unsubscribe")]
    #[schema(example = "One-Click")]
    pub list_unsubscribe: Option<String>,
}

/// Checks the token of the path and reads its recipient: `None` answers are problems.
async fn subject(
    req: &HttpRequest,
    tokens: &UnsubscribeTokens,
    handlers: &Handlers,
    token: &str,
) -> Result<(UnsubscribeSubject, Recipient), ApiError> {
    rate_limit::admit_credential(req, Credential::UnsubscribeLink)?;
    let subject = tokens.verify(token).map_err(|refused| match refused {
        // Not even shaped like a token (a mistyped or cut link, a fuzzer): no guess to count.
        InvalidUnsubscribeToken::Malformed => ApiError::NotFound("no such unsubscribe link".into()),
        // A well-formed token with a wrong tag is a guess: counted like a wrong key.
        InvalidUnsubscribeToken::Forged => {
            rate_limit::refuse_credential(req, Credential::UnsubscribeLink)
        }
    })?;
    let recipient = handlers
        .recipients
        .get(&subject.recipient_id)
        .await
        .map_err(repository)?
        // Erased since the email left (or never known): nobody's preferences to change.
        .ok_or_else(|| ApiError::NotFound("no such unsubscribe link".into()))?;
    Ok((subject, recipient))
}

/// The page in the recipient's language (else `?lang=`, else `Accept-Language`).
fn page(
    req: &HttpRequest,
    recipient: &Recipient,
    subject: &UnsubscribeSubject,
    done: bool,
) -> Result<HttpResponse, ApiError> {
    let lang = recipient
        .locale
        .map_or_else(|| page_language(req), |l| l.as_str());
    let words = strings(lang, Page::Unsubscribe);
    let key = if done { "done" } else { "question" };
    let message = words[key]
        .as_str()
        .unwrap_or_default()
        .replace("{type}", subject.event_type.as_str());
    let mut context = tera::Context::new();
    context.insert("lang", lang);
    context.insert("s", &words);
    context.insert("done", &done);
    context.insert("message", &message);
    let html = tera::Tera::one_off(UNSUBSCRIBE_PAGE, &context, true)
        .map_err(|e| ApiError::Internal(format!("rendering the unsubscribe page: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The address is a credential: never cached, never sent on as a referrer, never indexed.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Robots-Tag", "noindex"))
        .insert_header((header::CONTENT_SECURITY_POLICY, DEFAULT_CSP))
        .body(html))
}

/// `GET /unsubscribe/{token}`: the page whose button unsubscribes; changes nothing.
///
/// # Errors
/// 404 for a forged, altered or truncated token, or a recipient unknown or erased; 429 while
/// the client address is over its failure limit; 503 when the database does not answer.
#[utoipa::path(
    get, path = "/unsubscribe/{token}", tag = "operations",
    params(("token" = String, Path, description = "The signed token of the email's `List-Unsubscribe` link.")),
    responses(
        (status = 200, description = "A page, in the recipient's language, with a button that posts to this address; nothing changed.", body = String, content_type = "text/html"),
        (status = 404, description = "No such link: forged, altered or truncated, or its recipient is unknown or erased. Nothing changed.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many refused links or credentials from this client address: refused until `Retry-After` (seconds).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a link is looked at again."))),
        (status = 503, description = "The database does not answer.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn unsubscribe_page(
    req: HttpRequest,
    path: web::Path<String>,
    tokens: web::Data<UnsubscribeTokens>,
    handlers: web::Data<Handlers>,
) -> Result<HttpResponse, ApiError> {
    let (subject, recipient) = subject(&req, &tokens, &handlers, &path).await?;
    page(&req, &recipient, &subject, false)
}

/// `POST /unsubscribe/{token}` (RFC 8058 one-click): switches the recipient's email off for
/// the token's event type (`event_types.<type>.email = false`), idempotently, and answers a
/// confirmation page.
///
/// # Errors
/// 404 for a forged, altered or truncated token, or a recipient unknown or erased (nothing
/// changed); 429 while the client address is over its failure limit; 503 when the database
/// does not answer.
#[utoipa::path(
    post, path = "/unsubscribe/{token}", tag = "operations",
    params(("token" = String, Path, description = "The signed token of the email's `List-Unsubscribe` link.")),
    request_body(content = OneClickForm, content_type = "application/x-www-form-urlencoded",
        description = "`List-Unsubscribe=One-Click`, as RFC 8058 §3.1 has mail clients send it (not required)."),
    responses(
        (status = 200, description = "Unsubscribed (again, if it already was): the email of this event type is off for this recipient. A confirmation page.", body = String, content_type = "text/html"),
        (status = 404, description = "No such link: forged, altered or truncated, or its recipient is unknown or erased. Nothing changed.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many refused links or credentials from this client address: refused until `Retry-After` (seconds).", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a link is looked at again."))),
        (status = 503, description = "The database does not answer.", body = Problem, content_type = "application/problem+json"),
    ),
)]
pub async fn one_click_unsubscribe(
    req: HttpRequest,
    path: web::Path<String>,
    tokens: web::Data<UnsubscribeTokens>,
    handlers: web::Data<Handlers>,
) -> Result<HttpResponse, ApiError> {
    let (subject, recipient) = subject(&req, &tokens, &handlers, &path).await?;
    handlers
        .opt_out
        .execute(OptOut {
            recipient_id: subject.recipient_id.clone(),
            event_type: subject.event_type.clone(),
            channel: ChannelName::from(Channel::Email),
        })
        .await
        .map_err(|e| match e {
            // Erased between the check and the write.
            OptOutError::UnknownRecipient(_) => {
                ApiError::NotFound("no such unsubscribe link".into())
            }
            OptOutError::Repository(e) => repository(e),
            OptOutError::InApp => ApiError::Internal("the link switched in_app off".into()),
        })?;
    page(&req, &recipient, &subject, true)
}

/// Registers `GET|POST /unsubscribe/{token}` (one resource: another method is a 405).
pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::http::middleware::paths::refuse_dot_segments;
    use actix_web::middleware::from_fn;
    cfg.service(
        web::resource("/unsubscribe/{token}")
            .route(
                web::get()
                    .to(unsubscribe_page)
                    .wrap(from_fn(refuse_dot_segments)),
            )
            .route(
                web::post()
                    .to(one_click_unsubscribe)
                    .wrap(from_fn(refuse_dot_segments)),
            ),
    );
}
