//! Clairon's adapters: everything that touches the world.
//!
//! Each module implements ports of `clairon-application` with one technology and translates that
//! technology's errors into the ports' error enums; no SDK type leaves this crate.

pub mod channels;
pub mod correlation;
pub mod http;
pub mod idempotency;
pub mod jobs;
pub mod links;
pub mod metrics;
pub mod persistence;
pub mod realtime;
pub mod retry;
pub mod system;
pub mod templates;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
