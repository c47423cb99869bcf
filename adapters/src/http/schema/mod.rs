//! The API's types as the OpenAPI document shows them: request bodies ([`requests`]), answers
//! ([`responses`]) and the names, path parameters and headers the routes share ([`params`]).
//! They import nothing of the HTTP adapter but its problems (`requests` refuses with them).

pub mod params;
pub mod requests;
pub mod responses;
