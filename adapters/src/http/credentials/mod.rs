//! Who is calling: API keys ([`api_keys`]: `Authorization: Bearer <key>`, the
//! [`api_keys::ApiPrincipal`] a route reads) and recipient tokens ([`tokens`]: the JWTs of
//! `/api/v1/me`, the [`tokens::Me`] extractor). The middleware that refuses a request for want
//! of one is in `http::middleware::auth` and `tokens::authenticate`.

pub mod api_keys;
pub mod tokens;
