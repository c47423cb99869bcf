//! Where notifications and their deliveries are kept: the write side (the outbox) and the
//! inbox reads.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::{
    Delivery, DeliveryId, Notification, NotificationId, RecipientId, SourceEventId,
};

use super::{AttemptRecord, ClaimToken, RepositoryError};

/// A notification to write, with one delivery per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The notification.
    pub notification: Notification,
    /// Its deliveries (pending or skipped), one per channel.
    pub deliveries: Vec<Delivery>,
    /// When it is scheduled (UTC): hidden from the inbox and the unread count, and its
    /// deliveries not due, until then. `None`: at once.
    pub deliver_at: Option<DateTime<Utc>>,
}

/// What [`NotificationRepository::insert_leased`] wrote, as publishing at commit needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeasedWrite {
    /// Each notification's place in its recipient's inbox sequence, in batch order (`None` for
    /// one scheduled for later, numbered when it falls due).
    pub seqs: Vec<Option<u64>>,
    /// The unread counts, after the write and in its transaction, of the recipients of the
    /// batch's `sending` in-app deliveries; a recipient with none unread is absent (count 0).
    pub unread: HashMap<RecipientId, u64>,
}

/// The claim under which the writer of notifications takes their in-app deliveries in the
/// inserting transaction, to publish them right after the commit (publish at commit, see
/// `crate::live::PublishAtCommit`): a dispatcher leaves them alone until `until`, and retakes
/// what is still `sending` after it (the writer died between commit and record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationLease {
    /// The claim (fencing token) the deliveries are written under; their outcome is recorded
    /// under it.
    pub claim: ClaimToken,
    /// When the lease lapses (UTC).
    pub until: DateTime<Utc>,
}

/// A notification to schedule under a cancellation key (a J-1 reminder).
#[derive(Debug, Clone, PartialEq)]
pub struct NewReminder {
    /// The cancellation key, `reminder:{planning}:{recipient}`.
    pub key: String,
    /// The notification, usually with a `deliver_at`.
    pub notification: NewNotification,
}

/// The reminders of one planning, written in the same transaction as an event's notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct ReminderChanges {
    /// Every key of this planning starts with it (`reminder:{planning}:`).
    pub prefix: String,
    /// Reminders to (re)schedule. Each replaces the pending one under its key; none is made
    /// when the one under its key has already gone out (or is going out).
    pub schedule: Vec<NewReminder>,
    /// Pending reminders under `prefix` whose key is not listed here are cancelled (their
    /// artist is no longer assigned, or the planning is cancelled).
    pub keep: Vec<String>,
    /// When (UTC) replaced and cancelled reminders are cancelled.
    pub now: DateTime<Utc>,
}

/// A notification with its deliveries, newest attempt state included.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationDetails {
    /// The notification.
    pub notification: Notification,
    /// Its deliveries, in channel order.
    pub deliveries: Vec<Delivery>,
    /// The attempt rows of each delivery, first try first. Filled by
    /// [`NotificationRepository::get`]; empty in listings, which do not need them.
    pub attempts: HashMap<DeliveryId, Vec<AttemptRecord>>,
}

/// Which notifications an inbox listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFilter {
    /// Only unread ones.
    Unread,
    /// Only read ones.
    Read,
    /// Both (the default).
    #[default]
    All,
}

/// One page of an inbox listing, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Whose inbox.
    pub recipient_id: RecipientId,
    /// Read state filter.
    pub filter: ReadFilter,
    /// Page size, 1 to 100.
    pub limit: u32,
    /// Only notifications strictly older than this one (the previous page's last id).
    pub before: Option<NotificationId>,
}

/// A page of results and the cursor for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// At most `limit` items.
    pub items: Vec<T>,
    /// Pass back as `before` for the next page; `None` on the last page.
    pub next: Option<NotificationId>,
}

/// Stores notifications and their deliveries.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait NotificationRepository: Send + Sync {
    /// Writes every notification and every delivery of `batch` in ONE transaction, before any
    /// channel is tried: either all rows exist afterwards or none do.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when a notification with the same source event id and
    /// recipient already exists (nothing is written); [`RepositoryError::Unavailable`] when the
    /// database fails (nothing is written).
    async fn insert_batch(&self, batch: &[NewNotification]) -> Result<(), RepositoryError>;

    /// As [`NotificationRepository::insert_batch`], the deliveries of `batch` that are
    /// `sending` (taken by the writer, `Delivery::claim`) written under `lease`; returns what
    /// publishing them needs ([`LeasedWrite`]): each notification's place in its recipient's
    /// inbox sequence and the unread counts of the recipients of the `sending` in-app
    /// deliveries, both read in the writing transaction.
    ///
    /// # Errors
    /// As [`NotificationRepository::insert_batch`]; nothing is written then.
    async fn insert_leased(
        &self,
        batch: &[NewNotification],
        lease: &CreationLease,
    ) -> Result<LeasedWrite, RepositoryError>;

    /// As [`NotificationRepository::insert_batch`], and applies `reminders` in the SAME
    /// transaction. A reminder is *pending* while one of its deliveries is `pending`; cancelling
    /// it marks the notification cancelled (out of the inbox for good) and its pending
    /// deliveries `cancelled`. Returns the ids of the reminders written.
    ///
    /// # Errors
    /// As `insert_batch`; [`RepositoryError::Conflict`] also when a concurrent writer scheduled
    /// a reminder under the same key (nothing is written).
    async fn insert_with_reminders(
        &self,
        batch: &[NewNotification],
        reminders: &ReminderChanges,
    ) -> Result<Vec<NotificationId>, RepositoryError>;

    /// The notification with its deliveries, or `None`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn get(
        &self,
        id: &NotificationId,
    ) -> Result<Option<NotificationDetails>, RepositoryError>;

    /// Every notification made from `source_event_id`, with deliveries, oldest first (empty when
    /// the event was never processed).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn find_by_source_event(
        &self,
        source_event_id: &SourceEventId,
    ) -> Result<Vec<NotificationDetails>, RepositoryError>;

    /// One page of a recipient's inbox, newest first (ordered by id, which is a UUIDv7).
    /// Notifications scheduled for later (`deliver_at` in the future) are left out.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn list(&self, query: &ListQuery) -> Result<Page<Notification>, RepositoryError>;

    /// How many of the recipient's notifications are unread, leaving out those scheduled for
    /// later.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    async fn unread_count(&self, recipient_id: &RecipientId) -> Result<u64, RepositoryError>;

    /// The unread counts of several recipients at once (the dispatcher's live events of one
    /// round): one grouped query, however many recipients. A recipient with nothing unread — or
    /// unknown — is absent from the map (count 0).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    async fn unread_counts(
        &self,
        recipient_ids: &[RecipientId],
    ) -> Result<HashMap<RecipientId, u64>, RepositoryError>;

    /// Marks one notification read at `at` (keeping an earlier read time) and returns it, or
    /// `None` when no such notification exists — or, with `owner`, when it belongs to someone else.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Corrupt`].
    async fn mark_read(
        &self,
        id: &NotificationId,
        owner: Option<RecipientId>,
        at: DateTime<Utc>,
    ) -> Result<Option<Notification>, RepositoryError>;

    /// Marks every unread notification of the recipient read at `at`, leaving out those
    /// scheduled for later; returns the ids it changed.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`].
    async fn mark_all_read(
        &self,
        recipient_id: &RecipientId,
        at: DateTime<Utc>,
    ) -> Result<Vec<NotificationId>, RepositoryError>;
}
