//! Clairon's composition root: reads the configuration, sets up telemetry, builds every adapter
//! and handler, and runs the HTTP server beside the delivery dispatcher.
//!
//! The only crate that knows all the others. `anyhow` lives here and in `main`, nowhere else.

pub mod api_keys;
pub mod host_events;
pub mod jobs;
pub mod jobs_file;
pub mod replay;
pub mod routing;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod templates;

pub use settings::Settings;
pub use startup::{Application, Components};
