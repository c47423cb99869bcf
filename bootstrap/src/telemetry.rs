//! Telemetry: `tracing` to stderr, human-readable or JSON, filtered by `CLAIRON_LOG`
//! (or `RUST_LOG` when set).

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. Calling it twice is harmless (the second call is ignored),
/// which lets tests build several applications in one process.
pub fn init(filter: &str, format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
