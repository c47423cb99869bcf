//! Recipient tokens: short-lived JWTs (HS256, RFC 7519) that let one recipient's browser read and
//! mark their own inbox under `/api/v1/me/…`, without ever holding an API key.
//!
//! A token names its recipient in `sub`, expires at `exp`, and is signed with the service's
//! secret; anything else (another algorithm, another audience, a bad signature, an expired token)
//! is refused the same way, with no detail about which check failed.

use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::{DateTime, Utc};
use clairon_domain::RecipientId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::problem::ApiError;

/// The `aud` of every recipient token: an API key's bearer format never matches it.
const AUDIENCE: &str = "clairon-inbox";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// Issues and checks recipient tokens with one HS256 secret.
#[derive(Clone)]
pub struct RecipientTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl std::fmt::Debug for RecipientTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused (for tests and logs; clients only ever see 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token in the request.
    #[error("no recipient token")]
    Missing,
    /// Expired, forged, malformed, or for another audience.
    #[error("invalid recipient token")]
    Invalid,
}

impl RecipientTokens {
    /// Tokens signed with `secret` (any bytes; 32 random bytes or more is right for HS256) and
    /// valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    /// How long an issued token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `recipient` issued at `now`, and when it expires.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if signing fails (it does not with HS256).
    pub fn issue(
        &self,
        recipient: &RecipientId,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let expires_at = now
            + chrono::Duration::from_std(self.ttl).unwrap_or_else(|_| chrono::Duration::hours(12));
        let claims = Claims {
            sub: recipient.to_string(),
            aud: AUDIENCE.into(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing a recipient token: {e}")))?;
        Ok((token, expires_at))
    }

    /// The recipient `token` was issued for, if it is valid now.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] when expired, forged, malformed or of another kind.
    pub fn verify(&self, token: &str) -> Result<RecipientId, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        RecipientId::parse(&data.claims.sub).map_err(|_| TokenError::Invalid)
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Where a request may carry its token: `Authorization: Bearer`, the `token` query parameter
/// (for `EventSource` and WebSocket, which cannot set headers), or a `Sec-WebSocket-Protocol`
/// entry after `clairon`.
pub fn presented_token(req: &HttpRequest) -> Option<String> {
    if let Some(token) = super::auth::bearer(req) {
        return Some(token.to_owned());
    }
    if let Ok(query) = web::Query::<TokenQuery>::from_query(req.query_string()) {
        if let Some(token) = query.into_inner().token.filter(|t| !t.is_empty()) {
            return Some(token);
        }
    }
    websocket_protocol_token(req)
}

/// A token offered as a WebSocket subprotocol (`Sec-WebSocket-Protocol: clairon, <token>`).
pub fn websocket_protocol_token(req: &HttpRequest) -> Option<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?;
    header
        .split(',')
        .map(str::trim)
        .find(|p| !p.is_empty() && *p != "clairon")
        .map(ToOwned::to_owned)
}

/// The recipient a `/api/v1/me` request acts as, from a valid recipient token (never an API key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me(pub RecipientId);

impl FromRequest for Me {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = req
            .app_data::<web::Data<RecipientTokens>>()
            .ok_or_else(|| ApiError::Internal("recipient tokens are not configured".into()))
            .and_then(|tokens| {
                let token = presented_token(req).ok_or(ApiError::Unauthorized)?;
                tokens
                    .verify(&token)
                    .map(Me)
                    .map_err(|_| ApiError::Unauthorized)
            });
        std::future::ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artist() -> RecipientId {
        RecipientId::parse("artist-0001").unwrap()
    }

    #[test]
    fn a_token_names_its_recipient_until_it_expires() {
        let tokens =
            RecipientTokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let (token, expires_at) = tokens.issue(&artist(), Utc::now()).unwrap();
        assert_eq!(tokens.verify(&token), Ok(artist()));
        assert!(expires_at > Utc::now());
        let (old, _) = tokens
            .issue(&artist(), Utc::now() - chrono::Duration::hours(1))
            .unwrap();
        assert_eq!(tokens.verify(&old), Err(TokenError::Invalid), "expired");
    }

    #[test]
    fn a_token_signed_with_another_secret_or_tampered_with_is_refused() {
        let ours =
            RecipientTokens::new(b"ours-ours-ours-ours-ours-ours-ou", Duration::from_secs(60));
        let theirs =
            RecipientTokens::new(b"theirs-theirs-theirs-theirs-the", Duration::from_secs(60));
        let (forged, _) = theirs.issue(&artist(), Utc::now()).unwrap();
        assert_eq!(ours.verify(&forged), Err(TokenError::Invalid));
        let (token, _) = ours.issue(&artist(), Utc::now()).unwrap();
        let mut tampered = token.clone();
        tampered.pop();
        assert_eq!(ours.verify(&tampered), Err(TokenError::Invalid));
        assert_eq!(ours.verify("not-a-jwt"), Err(TokenError::Invalid));
    }
}
