//! What one idle live connection costs the hub: subscribes N connections (one recipient each,
//! as the benchmark's users) and prints the resident memory they added, per connection.
//!
//! `cargo run --release -p clairon-adapters --example hub_memory -- 10000`
//!
//! This is the hub's share only (the shard entry, the connection handle, its lazily allocated
//! queue); the socket's registration, the connection's task (whose future's size is printed
//! too), the token check's cache and the rate limit's bucket come on top (see BENCHMARKS.md,
//! "Realtime at wire speed", fourth run, for the whole breakdown).

use std::sync::Arc;

use clairon_adapters::realtime::InProcessHub;
use clairon_application::ports::MockInboxFeed;
use clairon_domain::RecipientId;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let hub = InProcessHub::new(64, Arc::new(MockInboxFeed::new()));
    let recipients: Vec<RecipientId> = (0..n)
        .map(|i| RecipientId::parse(&format!("u{i}")).expect("an id"))
        .collect();
    let before = rss_bytes();
    let subscriptions: Vec<_> = recipients.iter().map(|r| hub.subscribe(r)).collect();
    let after = rss_bytes();
    println!(
        "{n} connections: {} bytes of RSS each in the hub (Subscription itself: {} bytes); \
         a WebSocket session's future: {} bytes",
        (after.saturating_sub(before)) / n.max(1),
        std::mem::size_of::<clairon_adapters::realtime::Subscription>(),
        clairon_adapters::http::me::stream::websocket_session_size()
    );
    drop(subscriptions);
}
