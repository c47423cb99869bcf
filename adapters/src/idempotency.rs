//! The `Idempotency-Key` request a task is serving, for the persistence adapter: a route tells
//! it how its answer is built ([`answer_with`]); the persistence adapter takes a [`Settlement`]
//! on the request's task and writes it in the transaction of the request's work, so a lost
//! answer can never make a retry write twice. The middleware that opens the [`scope`] is
//! `http::middleware::idempotency` (its module documentation has the rules); the store is the
//! application's `IdempotencyStore` port.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use clairon_application::ports::{IdempotentRequest, NewNotification, StoredResponse};

/// How a route's answer is built from the notifications it is about to write.
pub type AnswerBuilder = Box<dyn FnOnce(&[NewNotification]) -> StoredResponse + Send>;

/// The `Idempotency-Key` request a task is serving, and what its route said of its answer.
pub struct Scope {
    request: IdempotentRequest,
    answer: Mutex<Option<AnswerBuilder>>,
    answered: AtomicBool,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("key", &self.request.key)
            .field("answered", &self.answered.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Scope {
    /// The scope of `request`, a key just [`Begun::Started`].
    pub fn new(request: IdempotentRequest) -> Arc<Self> {
        Arc::new(Self {
            request,
            answer: Mutex::new(None),
            answered: AtomicBool::new(false),
        })
    }

    /// Whether a transaction that committed stored the answer ([`mark_answered`]).
    pub fn answered(&self) -> bool {
        self.answered.load(Ordering::Acquire)
    }
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// What the persistence adapter writes about the served request's record, in the transaction
/// of the request's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The record.
    pub request: IdempotentRequest,
    /// The answer, stored with the work (the record becomes `completed`); `None`: stored by the
    /// middleware afterwards.
    pub answer: Option<StoredResponse>,
    /// Ids of the recipients the request wrote about (`idempotency_subjects`).
    pub subjects: Vec<String>,
}

/// Runs `future` (the rest of the request) as the request under `request`'s key.
pub async fn scope<F: Future>(scope: Arc<Scope>, future: F) -> F::Output {
    SCOPE.scope(scope, future).await
}

/// For a route about to write notifications: its answer, built from them, is stored in the same
/// transaction. Does nothing outside an `Idempotency-Key` request. Call it before the write; the
/// first write of the request takes it.
pub fn answer_with(build: impl FnOnce(&[NewNotification]) -> StoredResponse + Send + 'static) {
    let _ = SCOPE.try_with(|scope| {
        *scope.answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(build));
    });
}

/// For the persistence adapter, on the request's task, before it writes `batch`: what to write
/// about the request's record with it (the answer, taken once, and the recipients named).
/// `None` outside an `Idempotency-Key` request.
pub fn settlement_for(batch: &[NewNotification]) -> Option<Settlement> {
    SCOPE
        .try_with(|scope| {
            let answer = scope
                .answer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .map(|build| build(batch));
            let mut subjects: Vec<String> = Vec::new();
            for new in batch {
                let n = &new.notification;
                let named = std::iter::once(n.recipient_id.clone())
                    .chain(clairon_domain::rules::mentioned_recipients(n));
                for id in named {
                    if !subjects.iter().any(|s| s == id.as_str()) {
                        subjects.push(id.as_str().to_owned());
                    }
                }
            }
            Settlement {
                request: scope.request.clone(),
                answer,
                subjects,
            }
        })
        .ok()
}

/// For the persistence adapter, on the request's task, before it writes recipients `ids`: the
/// subjects to record with them (no answer: an upsert run twice writes the same). `None`
/// outside an `Idempotency-Key` request.
pub fn subjects_settlement(ids: impl IntoIterator<Item = String>) -> Option<Settlement> {
    SCOPE
        .try_with(|scope| Settlement {
            request: scope.request.clone(),
            answer: None,
            subjects: ids.into_iter().collect(),
        })
        .ok()
}

/// For the persistence adapter, on the request's task: the transaction that stored the
/// settlement's answer committed, so the middleware need not store it again.
pub fn mark_answered() {
    let _ = SCOPE.try_with(|scope| scope.answered.store(true, Ordering::Release));
}
