//! Group commit for [`NotificationRepository::insert_batch`](clairon_application::ports::NotificationRepository::insert_batch),
//! the write path's plain batches: concurrent requests' notifications are written in one
//! transaction when they arrive while writers are busy, so a burst of small requests pays for
//! one commit (one WAL flush) per group instead of one per request, and a recipient's inbox
//! counter is bumped once per group.
//!
//! How: every write is queued; a caller that finds a writer slot free spawns a writer task that
//! drains the queue — up to [`GROUP_ROWS`] notifications per transaction — until it is empty.
//! At most `writers` transactions run at once; what arrives meanwhile waits in the queue and
//! goes together in the next one. Nothing waits for a group to fill: a lone request is written
//! at once, alone.
//!
//! Each request still takes effect whole or not at all: when a group's transaction fails, each
//! of its requests is retried in a transaction of its own, so a conflicting request (a second
//! notification for one source event and recipient) fails alone and the others commit. The
//! writer is a spawned task, not the caller's future, so a client hanging up mid-write cannot
//! abandon the other requests of its group.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use clairon_application::ports::RepositoryError;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::{write_rows, Rows, Written};
use crate::idempotency::Settlement;
use crate::persistence::connection::{write_transaction, Database};
use crate::persistence::rows::db_time;

/// Most notifications written by one grouped transaction; a larger request is written alone.
pub(crate) const GROUP_ROWS: usize = 2_000;

/// One request's rows, what it writes about its `Idempotency-Key` record, and where its outcome
/// goes.
struct Write {
    rows: Rows,
    settlement: Option<Settlement>,
    done: oneshot::Sender<Result<Arc<Written>, RepositoryError>>,
}

/// The shared queue of writes and the writer slots.
pub(crate) struct GroupCommit {
    db: Database,
    queue: Mutex<VecDeque<Write>>,
    writers: Arc<Semaphore>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("writers_free", &self.writers.available_permits())
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Group commit on `db` with at most `writers` (≥ 1) transactions at once.
    pub(crate) fn new(db: Database, writers: usize) -> Arc<Self> {
        Arc::new(Self {
            db,
            queue: Mutex::new(VecDeque::new()),
            writers: Arc::new(Semaphore::new(writers.max(1))),
        })
    }

    /// Writes `rows` (numbering the notifications, see `super::insert_rows`) and `settlement`, in
    /// the same transaction as whatever else is queued with them; returns the numbers given (to
    /// this request's notifications, and maybe to others of its group).
    ///
    /// # Errors
    /// This request's own error: [`RepositoryError::Conflict`] when a uniqueness rule refuses
    /// one of its rows, [`RepositoryError::Unavailable`] when the database fails. Nothing of the
    /// request is written then.
    pub(crate) async fn insert(
        self: &Arc<Self>,
        rows: Rows,
        settlement: Option<Settlement>,
    ) -> Result<Arc<Written>, RepositoryError> {
        let (done, outcome) = oneshot::channel();
        self.lock().push_back(Write {
            rows,
            settlement,
            done,
        });
        self.start_writer();
        outcome.await.map_err(|_| {
            RepositoryError::Unavailable("the notification writer stopped before answering".into())
        })?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Write>> {
        // The queue stays consistent whatever panicked while holding it (push/pop only).
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns a writer if a slot is free; otherwise a running writer will take the write (it
    /// checks the queue again after giving its slot back, see [`GroupCommit::drain`]).
    fn start_writer(self: &Arc<Self>) {
        if let Some(slot) = self.writers_slot() {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.drain(slot).await });
        }
    }

    fn writers_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.writers).try_acquire_owned().ok()
    }

    /// Writes groups until the queue is empty, then gives the slot back and looks once more,
    /// so a write queued while the slot was taken is never stranded.
    async fn drain(self: Arc<Self>, mut slot: OwnedSemaphorePermit) {
        loop {
            loop {
                let group = self.next_group();
                if group.is_empty() {
                    break;
                }
                self.write(group).await;
            }
            drop(slot);
            if self.lock().is_empty() {
                return;
            }
            match self.writers_slot() {
                Some(again) => slot = again,
                // Another writer holds a slot and will see the queue.
                None => return,
            }
        }
    }

    /// The oldest writes, up to [`GROUP_ROWS`] notifications (at least one write).
    fn next_group(&self) -> Vec<Write> {
        let mut queue = self.lock();
        let mut group = Vec::new();
        let mut rows = 0;
        while let Some(next) = queue.front() {
            if !group.is_empty() && rows + next.rows.notifications.len() > GROUP_ROWS {
                break;
            }
            rows += next.rows.notifications.len();
            group.extend(queue.pop_front());
        }
        group
    }

    async fn write(&self, group: Vec<Write>) {
        if group.len() > 1 {
            let mut rows = Rows::default();
            for write in &group {
                rows.extend(&write.rows);
            }
            let settlements: Vec<Settlement> =
                group.iter().filter_map(|w| w.settlement.clone()).collect();
            let now = db_time(self.db.now());
            let together = self
                .db
                .call(move |conn| {
                    write_transaction(conn, |conn| {
                        for settlement in &settlements {
                            super::super::idempotency::settle(conn, settlement)?;
                        }
                        write_rows(conn, &rows, None, now)
                    })
                })
                .await;
            if let Ok(written) = together {
                let written = Arc::new(written);
                for write in group {
                    let _ = write.done.send(Ok(Arc::clone(&written)));
                }
                return;
            }
            tracing::debug!(
                requests = group.len(),
                "a grouped notification write failed; writing its requests one by one"
            );
        }
        for write in group {
            let Write {
                rows,
                settlement,
                done,
            } = write;
            let now = db_time(self.db.now());
            let alone = self
                .db
                .call(move |conn| {
                    write_transaction(conn, |conn| {
                        write_rows(conn, &rows, settlement.as_ref(), now)
                    })
                })
                .await;
            let _ = done.send(alone.map(Arc::new));
        }
    }
}
