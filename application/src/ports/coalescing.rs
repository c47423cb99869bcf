//! Where coalesced planning changes are settled (issue 13, `clairon_domain::coalescing`): a
//! batch of notifications written together with what it does to the earlier, still held
//! modifications of the same plannings, in ONE transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clairon_domain::coalescing::CoalesceRole;
use clairon_domain::{DeliveryId, NotificationId, PlanningId, RecipientId};

use super::{NewNotification, ReminderChanges, RepositoryError};

/// One notification of the batch that takes part in coalescing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoalesceEntry {
    /// The new notification.
    pub notification_id: NotificationId,
    /// Its recipient: only their own earlier notices are looked at.
    pub recipient_id: RecipientId,
    /// The planning it is keyed on.
    pub planning_id: PlanningId,
    /// What it does ([`CoalesceRole`]).
    pub role: CoalesceRole,
}

/// What a batch changes in coalescing, and the reminders written with it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct CoalesceChanges {
    /// The notifications of the batch that take part.
    pub entries: Vec<CoalesceEntry>,
    /// The J-1 reminder changes of the same event (`NotificationRepository::
    /// insert_with_reminders`), applied in the same transaction; `None`: none.
    pub reminders: Option<ReminderChanges>,
    /// When (UTC) superseded deliveries are settled.
    pub now: DateTime<Utc>,
}

/// What coalescing did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoalesceOutcome {
    /// The ids of the reminders written (as `insert_with_reminders` returns them).
    pub reminders: Vec<NotificationId>,
    /// Pending outbound deliveries of earlier notices settled `skipped`
    /// (`coalesced: <new notification id>`).
    pub superseded: Vec<DeliveryId>,
    /// Outbound deliveries of the batch settled `skipped` (`coalesced: no net change`).
    pub unneeded: Vec<DeliveryId>,
}

/// Writes notifications and settles coalescing in the same transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CoalescingRepository: Send + Sync {
    /// Writes `batch` (as `NotificationRepository::insert_batch`, with `changes.reminders` as
    /// `insert_with_reminders` applies them) and, in the SAME transaction, for each entry:
    /// - finds the earlier notifications of its planning for its recipient that are held
    ///   (stored with the planning as coalescing key, not cancelled) and still open
    ///   (`clairon_domain::coalescing::is_open` of their outbound deliveries, read under a row
    ///   lock so a dispatcher's claim either happened before or waits);
    /// - settles their `pending` outbound deliveries `skipped` `coalesced: <entry's id>`;
    /// - for [`CoalesceRole::Coalesce`]: stores the planning as the entry's key; when it took
    ///   some in, stores their net change with the other changes (`coalesced` in the metadata)
    ///   and makes its pending outbound deliveries due at the earliest due time of those taken
    ///   in, or settles them `skipped` `coalesced: no net change` when nothing is left.
    ///
    /// Two writers of the same planning take turns (PostgreSQL: an advisory lock per planning).
    ///
    /// # Errors
    /// As `NotificationRepository::insert_with_reminders`; nothing is written then.
    async fn insert_coalescing(
        &self,
        batch: &[NewNotification],
        changes: &CoalesceChanges,
    ) -> Result<CoalesceOutcome, RepositoryError>;
}
