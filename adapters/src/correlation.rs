//! The request being served, as ambient context: the HTTP adapter's request-id middleware runs
//! each request inside [`scope`], and the persistence adapter stamps the notifications it
//! writes with [`current_request_id`] — so the id follows the notification into its deliveries
//! and their log lines without every command and port carrying it.
//!
//! A tokio task-local: it is visible on the request's task only (not on spawned tasks, nor in
//! `spawn_blocking` closures: read it before moving there).

use std::future::Future;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `future` with `request_id` as the current request id.
pub async fn scope<F: Future>(request_id: String, future: F) -> F::Output {
    REQUEST_ID.scope(request_id, future).await
}

/// The id of the HTTP request this task serves; `None` outside a request (the dispatcher,
/// background jobs, `replay`, an embedding host).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}
