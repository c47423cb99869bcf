//! The middleware of the HTTP adapter: API key and scope checks ([`auth`]), rate limits
//! ([`rate_limit`]), `Idempotency-Key` ([`idempotency`]), request ids ([`request_id`]),
//! security headers and CORS ([`security`]), request metrics ([`observability`]) and the
//! refusal of `.`/`..` path parameters ([`paths`]).

pub mod auth;
pub mod idempotency;
pub mod observability;
pub mod paths;
pub mod rate_limit;
pub mod request_id;
pub mod security;
