//! The recipient's side of the API, under `/api/v1/me` (recipient tokens only, never API
//! keys): the REST routes ([`rest`]) and the live inbox over WebSocket and Server-Sent Events
//! ([`stream`]).

pub mod push;
pub mod rest;
pub mod stream;
mod wire;
