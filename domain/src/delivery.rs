//! Deliveries: a notification on one channel, where it stands, and the moves it may make.
//!
//! Status moves forward: `pending → sending → sent`; a transient failure goes `sending →
//! retrying → sending …` until it is sent or, out of attempts, `dead`; a refusal is `failed`;
//! a channel that cannot reach the recipient is `skipped` (from the start, or when the
//! dispatcher finds it so). Only an operator's retry moves a `dead` or `failed` delivery back to
//! `pending`. `cancelled` is a `pending` or `retrying` delivery withdrawn (a replaced reminder,
//! an erased recipient). [`DeliveryStatus::can_move_to`] is the whole matrix.
//!
//! The dispatcher's decisions are methods of [`Delivery`] ([`Delivery::succeed`],
//! [`Delivery::fail_transient`], [`Delivery::rate_limit`], [`Delivery::fail_permanent`],
//! [`Delivery::skip`]): each returns the [`DeliveryTransition`] to record, or refuses an illegal
//! move with an [`IllegalTransition`] naming it. The claim, a lapsed lease, an operator's retry
//! and a cancellation are set-wise SQL statements in the persistence adapter that follow the
//! same matrix.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::error::ValidationError;
use crate::notification::{opaque_id, NotificationId};
use crate::recipient::RecipientId;

opaque_id!(
    /// A delivery's id: a UUIDv7 in text form. It is stable across retries, so it also makes the
    /// email `Message-ID`.
    DeliveryId,
    "delivery_id"
);

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for a dispatcher.
    Pending,
    /// Claimed by a dispatcher, being sent.
    Sending,
    /// Accepted by the channel's provider.
    Sent,
    /// Failed, waiting for another attempt.
    Retrying,
    /// Failed for good: the provider refused it.
    Failed,
    /// Out of attempts.
    Dead,
    /// The channel cannot reach the recipient; never tried.
    Skipped,
    /// Withdrawn before it was sent.
    Cancelled,
    /// Held for the recipient's digest of its channel (issue 13): never claimed by a
    /// dispatcher; `next_attempt_at` is the end of its digest window. The digest job moves it
    /// to `sent` (with the digest's provider id), `skipped` (read before the digest),
    /// `failed` (the digest was refused) or a withdrawal `cancelled` it.
    Batched,
}

impl DeliveryStatus {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
            Self::Batched => "batched",
        }
    }

    /// Parses a stored name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `status` for an unknown name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Ok(match raw {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "retrying" => Self::Retrying,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            "skipped" => Self::Skipped,
            "cancelled" => Self::Cancelled,
            "batched" => Self::Batched,
            other => {
                return Err(ValidationError::new(
                    "status",
                    format!("unknown delivery status {other:?}"),
                ))
            }
        })
    }

    /// Every status, in the order of the life of a delivery.
    pub const ALL: [Self; 9] = [
        Self::Pending,
        Self::Sending,
        Self::Sent,
        Self::Retrying,
        Self::Failed,
        Self::Dead,
        Self::Skipped,
        Self::Cancelled,
        Self::Batched,
    ];

    /// Whether nothing will happen to the delivery any more without an operator: it is neither
    /// waiting to be sent nor being sent (`sent`, `failed`, `dead`, `skipped`, `cancelled`).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Sent | Self::Failed | Self::Dead | Self::Skipped | Self::Cancelled
        )
    }

    /// The statuses that may still be sent (`pending`, `sending`, `retrying`, `batched`): the
    /// queue's depth, never purged.
    pub fn unsettled() -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(|s| !s.is_final())
    }

    /// The statuses an operator's retry puts back to `pending` (`failed`, `dead`).
    pub const RETRYABLE_BY_HAND: [Self; 2] = [Self::Failed, Self::Dead];

    /// Whether a delivery in this status may move to `to`:
    ///
    /// | from | to | why |
    /// |---|---|---|
    /// | `pending`, `retrying` | `sending` | a dispatcher claimed it (due) |
    /// | `pending`, `retrying` | `cancelled` | withdrawn (a replaced reminder, an erasure) |
    /// | `sending` | `sending` | its lease lapsed and a dispatcher claimed it again (a crash) |
    /// | `sending` | `pending`, `retrying` | its lease lapsed and housekeeping released it |
    /// | `sending` | `sent`, `retrying`, `dead`, `failed`, `skipped` | the dispatcher's outcome |
    /// | `failed`, `dead` | `pending` | an operator's retry |
    /// | `batched` | `sent`, `skipped`, `failed` | the digest job: sent in the digest, read before it, the digest refused |
    /// | `batched` | `cancelled` | withdrawn (a consent revoked, an erasure) |
    ///
    /// Nothing leaves `sent`, `skipped` or `cancelled`.
    pub fn can_move_to(self, to: Self) -> bool {
        use DeliveryStatus::{
            Batched, Cancelled, Dead, Failed, Pending, Retrying, Sending, Sent, Skipped,
        };
        match self {
            Pending | Retrying => matches!(to, Sending | Cancelled),
            Batched => matches!(to, Sent | Skipped | Failed | Cancelled),
            Sending => matches!(
                to,
                Sending | Pending | Retrying | Sent | Dead | Failed | Skipped
            ),
            Failed | Dead => to == Pending,
            Sent | Skipped | Cancelled => false,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one try of a delivery came to: the `outcome` of its audit row (`delivery_attempts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The provider accepted it.
    Sent,
    /// A failure worth another try (SMTP 4xx, HTTP 5xx, network).
    Transient,
    /// The provider asked us to slow down (HTTP 429); not counted as a try.
    RateLimited,
    /// The provider refused it for good (SMTP 5xx, Telegram "chat not found"), or it could not
    /// be rendered, or it panicked.
    Permanent,
}

impl AttemptOutcome {
    /// The wire and database name: `sent`, `transient`, `rate_limited`, `permanent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Transient => "transient",
            Self::RateLimited => "rate_limited",
            Self::Permanent => "permanent",
        }
    }

    /// Parses a stored name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `outcome` for an unknown name.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Ok(match raw {
            "sent" => Self::Sent,
            "transient" => Self::Transient,
            "rate_limited" => Self::RateLimited,
            "permanent" => Self::Permanent,
            other => {
                return Err(ValidationError::new(
                    "outcome",
                    format!("unknown attempt outcome {other:?}"),
                ))
            }
        })
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A move [`DeliveryStatus::can_move_to`] refuses, asked of a [`Delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} delivery cannot become {to}")]
pub struct IllegalTransition {
    /// Where the delivery stands.
    pub from: DeliveryStatus,
    /// Where it was asked to go.
    pub to: DeliveryStatus,
}

/// A legal move of one delivery: its state after the move, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTransition {
    /// Where it stood.
    pub from: DeliveryStatus,
    /// Where it stands now.
    pub to: DeliveryStatus,
    /// Tries so far, this one included when it counts.
    pub attempts: u32,
    /// The failure or the skip reason; `None` once sent.
    pub last_error: Option<String>,
    /// The provider's message id, once sent.
    pub provider_message_id: Option<String>,
    /// When the provider accepted it (UTC), once sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When to try again (UTC), when `retrying`; `None` leaves the stored due time as it was.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A notification on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// UUIDv7.
    pub id: DeliveryId,
    /// The notification it delivers.
    pub notification_id: NotificationId,
    /// Who it goes to (denormalised from the notification for the dispatcher).
    pub recipient_id: RecipientId,
    /// The channel.
    pub channel: Channel,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Tries made so far.
    pub attempts: u32,
    /// Why it was skipped, or the last failure.
    pub last_error: Option<String>,
    /// The provider's id of the sent message (SMTP `Message-ID`, Telegram `message_id`).
    pub provider_message_id: Option<String>,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When the provider accepted it (UTC).
    pub sent_at: Option<DateTime<Utc>>,
    /// When it is due (UTC). At creation: `None` for "when its notification is due", or a later
    /// instant (the end of the recipient's quiet hours). Read back: the stored due time.
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The delivery of the same notification this one stands in for: the link before it in a
    /// fallback chain gave up (`failed`, `dead`, or `skipped` as unreachable). `None` for a
    /// delivery that opens a chain or is not in one.
    #[serde(default)]
    pub fallback_of: Option<DeliveryId>,
    /// The channels still to try, in order, if this one gives up ([`Delivery::fallback_link`]);
    /// empty outside a chain and on its last link.
    #[serde(default)]
    pub fallback: Vec<Channel>,
    /// Where it goes when the recipient has several addresses on its channel: for `web_push`,
    /// the push subscription's endpoint (one delivery per subscription). `None` for channels
    /// addressed by the recipient's own fields (email, Telegram chat, in-app).
    #[serde(default)]
    pub address: Option<String>,
}

impl Delivery {
    /// The same delivery, opening (or continuing) a fallback chain: `then` are tried in order,
    /// each only when the one before gave up. `of` is the delivery it stands in for, if any.
    #[must_use]
    pub fn in_chain(mut self, of: Option<DeliveryId>, then: Vec<Channel>) -> Self {
        self.fallback_of = of;
        self.fallback = then;
        self
    }

    /// The next link of this delivery's fallback chain once it ended `ended`: a `pending`
    /// delivery with id `id` on the first channel of [`Delivery::fallback`], standing in for
    /// this one and carrying the rest of the chain. `None` when the chain has no more
    /// channels, or when `ended` is not a giving up — only `failed`, `dead` and `skipped` pass
    /// the notification on (the chain stops at the first `sent`; `retrying` is still this
    /// channel's to finish; `cancelled` ends the notification itself).
    pub fn fallback_link(
        &self,
        ended: DeliveryStatus,
        id: DeliveryId,
        now: DateTime<Utc>,
    ) -> Option<Delivery> {
        let gave_up = matches!(
            ended,
            DeliveryStatus::Failed | DeliveryStatus::Dead | DeliveryStatus::Skipped
        );
        let (next, rest) = self.fallback.split_first()?;
        gave_up.then(|| {
            Delivery::pending(
                id,
                self.notification_id.clone(),
                self.recipient_id.clone(),
                *next,
                now,
            )
            .in_chain(Some(self.id.clone()), rest.to_vec())
        })
    }

    /// A delivery waiting for a dispatcher.
    pub fn pending(
        id: DeliveryId,
        notification_id: NotificationId,
        recipient_id: RecipientId,
        channel: Channel,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            notification_id,
            recipient_id,
            channel,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            provider_message_id: None,
            created_at: now,
            sent_at: None,
            next_attempt_at: None,
            fallback_of: None,
            fallback: Vec::new(),
            address: None,
        }
    }

    /// The same delivery addressed to `address` (a push subscription's endpoint).
    #[must_use]
    pub fn to_address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// A delivery waiting for a dispatcher, not due before `until` (UTC): the end of the
    /// recipient's quiet hours.
    pub fn postponed(
        id: DeliveryId,
        notification_id: NotificationId,
        recipient_id: RecipientId,
        channel: Channel,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            next_attempt_at: Some(until),
            ..Self::pending(id, notification_id, recipient_id, channel, now)
        }
    }

    /// A delivery that will never be tried, with the reason.
    pub fn skipped(
        id: DeliveryId,
        notification_id: NotificationId,
        recipient_id: RecipientId,
        channel: Channel,
        reason: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            status: DeliveryStatus::Skipped,
            last_error: Some(reason.into()),
            ..Self::pending(id, notification_id, recipient_id, channel, now)
        }
    }

    /// A delivery held for the recipient's digest of its channel, the digest going out at
    /// `window_end` (UTC).
    pub fn batched(
        id: DeliveryId,
        notification_id: NotificationId,
        recipient_id: RecipientId,
        channel: Channel,
        window_end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            status: DeliveryStatus::Batched,
            next_attempt_at: Some(window_end),
            ..Self::pending(id, notification_id, recipient_id, channel, now)
        }
    }

    /// It went out in a digest the provider accepted at `at` as `provider_message_id`:
    /// `batched → sent`, one try counted (the digest's).
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `batched`.
    pub fn sent_in_digest(
        &self,
        provider_message_id: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Result<DeliveryTransition, IllegalTransition> {
        if self.status != DeliveryStatus::Batched {
            return Err(IllegalTransition {
                from: self.status,
                to: DeliveryStatus::Sent,
            });
        }
        Ok(DeliveryTransition {
            attempts: self.attempt_number(),
            provider_message_id: Some(provider_message_id.into()),
            sent_at: Some(at),
            ..self.move_to(DeliveryStatus::Sent)?
        })
    }

    /// Left out of its digest (read in the inbox before it went out, or its digest refused):
    /// `batched → skipped` or `batched → failed` with the reason, nothing tried.
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `batched` and `to` is `skipped` or `failed`.
    pub fn left_out_of_digest(
        &self,
        to: DeliveryStatus,
        reason: impl Into<String>,
    ) -> Result<DeliveryTransition, IllegalTransition> {
        if self.status != DeliveryStatus::Batched
            || !matches!(to, DeliveryStatus::Skipped | DeliveryStatus::Failed)
        {
            return Err(IllegalTransition {
                from: self.status,
                to,
            });
        }
        Ok(DeliveryTransition {
            last_error: Some(reason.into()),
            ..self.move_to(to)?
        })
    }

    /// The number of the try a dispatcher is making now: one more than the tries so far
    /// (saturating).
    pub fn attempt_number(&self) -> u32 {
        self.attempts.saturating_add(1)
    }

    /// The provider accepted it at `at`: `sending → sent`, the try counted, the last error
    /// cleared.
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `sending`.
    pub fn succeed(
        &self,
        provider_message_id: impl Into<String>,
        at: DateTime<Utc>,
    ) -> Result<DeliveryTransition, IllegalTransition> {
        Ok(DeliveryTransition {
            attempts: self.attempt_number(),
            provider_message_id: Some(provider_message_id.into()),
            sent_at: Some(at),
            ..self.move_to(DeliveryStatus::Sent)?
        })
    }

    /// A transient failure, the try counted: `sending → retrying` due at `retry_at`, or `sending
    /// → dead` when `retry_at` is `None` (the retry schedule has no try left after this one).
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `sending`.
    pub fn fail_transient(
        &self,
        error: impl Into<String>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<DeliveryTransition, IllegalTransition> {
        let to = match retry_at {
            Some(_) => DeliveryStatus::Retrying,
            None => DeliveryStatus::Dead,
        };
        Ok(DeliveryTransition {
            attempts: self.attempt_number(),
            last_error: Some(error.into()),
            next_attempt_at: retry_at,
            ..self.move_to(to)?
        })
    }

    /// The provider asked us to slow down (429): `sending → retrying` due at `until`, the try
    /// NOT counted (the next one repeats its number).
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `sending`.
    pub fn rate_limit(
        &self,
        error: impl Into<String>,
        until: DateTime<Utc>,
    ) -> Result<DeliveryTransition, IllegalTransition> {
        Ok(DeliveryTransition {
            last_error: Some(error.into()),
            next_attempt_at: Some(until),
            ..self.move_to(DeliveryStatus::Retrying)?
        })
    }

    /// Not sent yet because the destination's pace allows no message now (a token bucket of
    /// the channel's provider is empty for this chat or webhook): `sending → pending` due at
    /// `until`, nothing tried (the tries and the last error unchanged). The worker goes on with
    /// other destinations instead of waiting: no head-of-line blocking.
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `sending`.
    pub fn defer(&self, until: DateTime<Utc>) -> Result<DeliveryTransition, IllegalTransition> {
        if self.status != DeliveryStatus::Sending {
            return Err(IllegalTransition {
                from: self.status,
                to: DeliveryStatus::Pending,
            });
        }
        Ok(DeliveryTransition {
            last_error: self.last_error.clone(),
            next_attempt_at: Some(until),
            ..self.move_to(DeliveryStatus::Pending)?
        })
    }

    /// A refusal for good (or a failure to render, or a panic): `sending → failed`, the try
    /// counted.
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `sending`.
    pub fn fail_permanent(
        &self,
        error: impl Into<String>,
    ) -> Result<DeliveryTransition, IllegalTransition> {
        Ok(DeliveryTransition {
            attempts: self.attempt_number(),
            last_error: Some(error.into()),
            ..self.move_to(DeliveryStatus::Failed)?
        })
    }

    /// The dispatcher found the channel cannot reach the recipient (no address any more, no
    /// bot): `sending → skipped` with the reason, nothing tried.
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `sending`.
    pub fn skip(&self, reason: impl Into<String>) -> Result<DeliveryTransition, IllegalTransition> {
        Ok(DeliveryTransition {
            last_error: Some(reason.into()),
            ..self.move_to(DeliveryStatus::Skipped)?
        })
    }

    /// Withdrawn before it was sent (a consent revoked, a reminder replaced): `pending` or
    /// `retrying` → `cancelled`, with the reason.
    ///
    /// # Errors
    /// [`IllegalTransition`] from any other status (a `sending` delivery is the dispatcher's).
    pub fn cancel(
        &self,
        reason: impl Into<String>,
    ) -> Result<DeliveryTransition, IllegalTransition> {
        Ok(DeliveryTransition {
            last_error: Some(reason.into()),
            ..self.move_to(DeliveryStatus::Cancelled)?
        })
    }

    /// Taken for sending: `pending`/`retrying → sending` (or `sending → sending`, a retake
    /// after a lapsed lease), nothing tried yet (the tries, error and provider id unchanged). The process that writes an in-app delivery takes it this
    /// way in the same transaction, to publish it right after the commit (the dispatcher's
    /// claim makes the same move in the queue).
    ///
    /// # Errors
    /// [`IllegalTransition`] unless it is `pending`, `retrying` or `sending`.
    pub fn claim(&self) -> Result<Delivery, IllegalTransition> {
        let moved = self.move_to(DeliveryStatus::Sending)?;
        Ok(Delivery {
            status: moved.to,
            ..self.clone()
        })
    }

    /// The bare move to `to`, nothing else recorded: the tries unchanged, no error, no provider
    /// id, no due time.
    fn move_to(&self, to: DeliveryStatus) -> Result<DeliveryTransition, IllegalTransition> {
        let from = self.status;
        if !from.can_move_to(to) {
            return Err(IllegalTransition { from, to });
        }
        Ok(DeliveryTransition {
            from,
            to,
            attempts: self.attempts,
            last_error: None,
            provider_message_id: None,
            sent_at: None,
            next_attempt_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use rstest::rstest;
    use DeliveryStatus::{
        Batched, Cancelled, Dead, Failed, Pending, Retrying, Sending, Sent, Skipped,
    };

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, 9, minute, 0).unwrap()
    }

    /// A delivery in `status` after `attempts` tries.
    fn delivery(status: DeliveryStatus, attempts: u32) -> Delivery {
        let mut delivery = Delivery::pending(
            DeliveryId::parse("d-1").unwrap(),
            NotificationId::parse("n-1").unwrap(),
            RecipientId::parse("artist-1").unwrap(),
            Channel::Email,
            at(0),
        );
        delivery.status = status;
        delivery.attempts = attempts;
        delivery.last_error = Some("an earlier failure".into());
        delivery
    }

    /// Every move the matrix allows, and nothing else.
    const LEGAL: [(DeliveryStatus, DeliveryStatus); 17] = [
        (Batched, Sent),
        (Batched, Skipped),
        (Batched, Failed),
        (Batched, Cancelled),
        (Pending, Sending),
        (Pending, Cancelled),
        (Retrying, Sending),
        (Retrying, Cancelled),
        (Sending, Sending),
        (Sending, Pending),
        (Sending, Retrying),
        (Sending, Sent),
        (Sending, Dead),
        (Sending, Failed),
        (Sending, Skipped),
        (Failed, Pending),
        (Dead, Pending),
    ];

    #[rstest]
    fn a_move_is_allowed_exactly_when_the_matrix_lists_it(
        #[values(
            Pending, Sending, Sent, Retrying, Failed, Dead, Skipped, Cancelled, Batched
        )]
        from: DeliveryStatus,
        #[values(
            Pending, Sending, Sent, Retrying, Failed, Dead, Skipped, Cancelled, Batched
        )]
        to: DeliveryStatus,
    ) {
        assert_eq!(
            from.can_move_to(to),
            LEGAL.contains(&(from, to)),
            "{from} → {to}"
        );
    }

    #[rstest]
    fn nothing_leaves_a_settled_delivery_but_an_operators_retry(
        #[values(Sent, Skipped, Cancelled, Failed, Dead)] from: DeliveryStatus,
    ) {
        let moves: Vec<DeliveryStatus> = DeliveryStatus::ALL
            .into_iter()
            .filter(|to| from.can_move_to(*to))
            .collect();
        let expected: &[DeliveryStatus] = if DeliveryStatus::RETRYABLE_BY_HAND.contains(&from) {
            &[Pending]
        } else {
            &[]
        };
        assert_eq!(moves, expected, "moves out of {from}");
        assert!(from.is_final(), "{from} is final");
    }

    #[rstest]
    fn only_a_delivery_waiting_to_be_sent_or_left_sending_can_be_claimed(
        #[values(Pending, Sending, Sent, Retrying, Failed, Dead, Skipped, Cancelled)]
        from: DeliveryStatus,
    ) {
        let d = delivery(from, 1);
        match d.claim() {
            Ok(claimed) => {
                assert!(
                    matches!(from, Pending | Retrying | Sending),
                    "{from} was claimed"
                );
                assert_eq!(claimed.status, Sending);
                assert_eq!(
                    (claimed.attempts, claimed.last_error.as_deref()),
                    (1, Some("an earlier failure")),
                    "nothing tried yet"
                );
            }
            Err(refused) => {
                assert!(
                    !matches!(from, Pending | Retrying | Sending),
                    "{from} was refused"
                );
                assert_eq!((refused.from, refused.to), (from, Sending));
            }
        }
    }

    /// Each dispatcher decision on `d`, named by the status it moves to.
    fn decisions(
        d: &Delivery,
    ) -> Vec<(
        DeliveryStatus,
        Result<DeliveryTransition, IllegalTransition>,
    )> {
        vec![
            (Sent, d.succeed("provider-1", at(5))),
            (Retrying, d.fail_transient("451 try later", Some(at(6)))),
            (Dead, d.fail_transient("451 try later", None)),
            (Retrying, d.rate_limit("rate limited", at(7))),
            (Failed, d.fail_permanent("550 no such user")),
            (Skipped, d.skip("recipient has no email address")),
        ]
    }

    #[rstest]
    #[case::pending(Pending)]
    #[case::retrying(Retrying)]
    #[case::sent(Sent)]
    #[case::failed(Failed)]
    #[case::dead(Dead)]
    #[case::skipped(Skipped)]
    #[case::cancelled(Cancelled)]
    fn only_a_delivery_being_sent_takes_an_outcome_and_a_refusal_names_the_move(
        #[case] from: DeliveryStatus,
    ) {
        // Given a delivery nobody is sending
        let d = delivery(from, 1);
        // When the dispatcher decides anything about it
        for (to, moved) in decisions(&d) {
            // Then the move is refused, naming where it stands and where it was asked to go
            assert_eq!(moved, Err(IllegalTransition { from, to }));
        }
        assert_eq!(
            IllegalTransition { from, to: Sent }.to_string(),
            format!("a {from} delivery cannot become sent")
        );
    }

    #[test]
    fn every_decision_on_a_delivery_being_sent_is_legal() {
        let d = delivery(Sending, 1);
        for (to, moved) in decisions(&d) {
            let moved = moved.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((moved.from, moved.to), (Sending, to));
        }
    }

    #[test]
    fn a_sent_delivery_counts_its_try_and_forgets_its_last_error() {
        // Given a delivery being sent after two failed tries
        let d = delivery(Sending, 2);
        // When its provider accepts it
        let moved = d.succeed("provider-1", at(5)).unwrap();
        // Then
        assert_eq!(moved.to, Sent);
        assert_eq!(moved.attempts, 3, "the try is counted");
        assert_eq!(moved.provider_message_id.as_deref(), Some("provider-1"));
        assert_eq!(moved.sent_at, Some(at(5)));
        assert_eq!(moved.last_error, None);
        assert_eq!(moved.next_attempt_at, None);
    }

    #[rstest]
    #[case::another_try_left(Some(at(6)), Retrying)]
    #[case::out_of_tries(None, Dead)]
    fn a_transient_failure_counts_its_try_and_retries_while_the_schedule_allows(
        #[case] retry_at: Option<DateTime<Utc>>,
        #[case] to: DeliveryStatus,
    ) {
        let d = delivery(Sending, 2);
        let moved = d.fail_transient("451 try later", retry_at).unwrap();
        assert_eq!(moved.to, to);
        assert_eq!(moved.attempts, 3, "the try is counted");
        assert_eq!(moved.next_attempt_at, retry_at);
        assert_eq!(moved.last_error.as_deref(), Some("451 try later"));
        assert_eq!((moved.provider_message_id, moved.sent_at), (None, None));
    }

    #[test]
    fn a_rate_limit_retries_at_the_providers_time_without_counting_the_try() {
        let d = delivery(Sending, 1);
        let moved = d
            .rate_limit("rate limited; retry after 7 s", at(7))
            .unwrap();
        assert_eq!(moved.to, Retrying);
        assert_eq!(moved.attempts, 1, "a 429 does not use up a try");
        assert_eq!(moved.next_attempt_at, Some(at(7)));
        assert_eq!(
            moved.last_error.as_deref(),
            Some("rate limited; retry after 7 s")
        );
    }

    #[test]
    fn a_permanent_refusal_fails_the_delivery_and_counts_its_try() {
        let d = delivery(Sending, 0);
        let moved = d.fail_permanent("550 no such user").unwrap();
        assert_eq!(moved.to, Failed);
        assert_eq!(moved.attempts, 1);
        assert_eq!(moved.last_error.as_deref(), Some("550 no such user"));
        assert_eq!(moved.next_attempt_at, None);
    }

    #[test]
    fn a_skip_at_dispatch_records_its_reason_and_tries_nothing() {
        let d = delivery(Sending, 0);
        let moved = d.skip("recipient has no email address").unwrap();
        assert_eq!(moved.to, Skipped);
        assert_eq!(moved.attempts, 0, "nothing was tried");
        assert_eq!(
            moved.last_error.as_deref(),
            Some("recipient has no email address")
        );
    }

    #[test]
    fn the_try_number_saturates_instead_of_overflowing() {
        assert_eq!(delivery(Sending, 4).attempt_number(), 5);
        assert_eq!(delivery(Sending, u32::MAX).attempt_number(), u32::MAX);
    }

    #[test]
    fn attempt_outcomes_round_trip_through_their_names() {
        for outcome in [
            AttemptOutcome::Sent,
            AttemptOutcome::Transient,
            AttemptOutcome::RateLimited,
            AttemptOutcome::Permanent,
        ] {
            assert_eq!(AttemptOutcome::parse(outcome.as_str()).unwrap(), outcome);
        }
        assert_eq!(AttemptOutcome::RateLimited.as_str(), "rate_limited");
        assert_eq!(AttemptOutcome::parse("lost").unwrap_err().field, "outcome");
    }

    #[test]
    fn the_unsettled_statuses_are_those_that_may_still_be_sent() {
        assert_eq!(
            DeliveryStatus::unsettled().collect::<Vec<_>>(),
            vec![Pending, Sending, Retrying, Batched]
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()).unwrap(), status);
        }
        assert!(DeliveryStatus::parse("lost").is_err());
    }

    #[test]
    fn only_settled_statuses_are_final() {
        assert!(DeliveryStatus::Sent.is_final());
        assert!(DeliveryStatus::Skipped.is_final());
        assert!(!DeliveryStatus::Pending.is_final());
        assert!(!DeliveryStatus::Retrying.is_final());
    }

    #[rstest]
    #[case(Pending, true)]
    #[case(Retrying, true)]
    #[case(Sending, false)]
    #[case(Sent, false)]
    #[case(Skipped, false)]
    fn only_a_waiting_delivery_can_be_cancelled_with_its_reason(
        #[case] from: DeliveryStatus,
        #[case] allowed: bool,
    ) {
        let cancelled = delivery(from, 1).cancel("consent_revoked");
        match cancelled {
            Ok(t) => {
                assert!(allowed, "{from} was cancelled");
                assert_eq!(t.to, Cancelled);
                assert_eq!(t.last_error.as_deref(), Some("consent_revoked"));
            }
            Err(e) => {
                assert!(!allowed, "{from} refused: {e}");
                assert_eq!((e.from, e.to), (from, Cancelled));
            }
        }
    }

    #[test]
    fn a_paced_delivery_goes_back_to_pending_due_later_with_its_tries_and_error_kept() {
        let mut delivery = Delivery::pending(
            DeliveryId::parse("d-1").unwrap(),
            NotificationId::parse("n-1").unwrap(),
            RecipientId::parse("r-1").unwrap(),
            Channel::Telegram,
            Utc::now(),
        );
        let until = Utc::now() + chrono::TimeDelta::seconds(1);
        assert!(
            delivery.defer(until).is_err(),
            "only a delivery being sent can be put back"
        );
        delivery.status = DeliveryStatus::Sending;
        delivery.attempts = 2;
        delivery.last_error = Some("timeout".into());
        let moved = delivery.defer(until).unwrap();
        assert_eq!(moved.to, DeliveryStatus::Pending);
        assert_eq!(moved.attempts, 2);
        assert_eq!(moved.last_error.as_deref(), Some("timeout"));
        assert_eq!(moved.next_attempt_at, Some(until));
    }

    #[rstest]
    #[case::failed(Failed, true)]
    #[case::dead(Dead, true)]
    #[case::skipped(Skipped, true)]
    #[case::sent(Sent, false)]
    #[case::retrying(Retrying, false)]
    #[case::cancelled(Cancelled, false)]
    fn a_chain_passes_on_only_when_its_link_gave_up(
        #[case] ended: DeliveryStatus,
        #[case] passes: bool,
    ) {
        let telegram = Delivery {
            channel: Channel::Telegram,
            ..delivery(Sending, 0)
        }
        .in_chain(None, vec![Channel::Sms, Channel::Email]);
        let next = telegram.fallback_link(ended, DeliveryId::parse("d-2").unwrap(), at(5));
        assert_eq!(next.is_some(), passes);
        if let Some(sms) = next {
            assert_eq!(sms.channel, Channel::Sms);
            assert_eq!(sms.status, Pending);
            assert_eq!(sms.fallback_of, Some(telegram.id.clone()));
            assert_eq!(sms.fallback, vec![Channel::Email]);
            assert_eq!(sms.notification_id, telegram.notification_id);
            let email = sms
                .fallback_link(Failed, DeliveryId::parse("d-3").unwrap(), at(6))
                .unwrap();
            assert_eq!(
                (
                    email.channel,
                    email.fallback_of.as_ref(),
                    email.fallback.len()
                ),
                (Channel::Email, Some(&sms.id), 0)
            );
            assert!(
                email
                    .fallback_link(Dead, DeliveryId::parse("d-4").unwrap(), at(7))
                    .is_none(),
                "the last link ends the chain"
            );
        }
    }

    #[test]
    fn a_batched_delivery_is_never_claimed_and_goes_out_with_its_digests_provider_id() {
        let d = delivery(Batched, 0);
        assert!(
            d.claim().is_err(),
            "a dispatcher never takes a batched delivery"
        );
        let moved = d.sent_in_digest("digest-1@clairon", at(5)).unwrap();
        assert_eq!((moved.from, moved.to), (Batched, Sent));
        assert_eq!(
            moved.provider_message_id.as_deref(),
            Some("digest-1@clairon")
        );
        assert_eq!((moved.sent_at, moved.attempts), (Some(at(5)), 1));
        assert!(delivery(Pending, 0).sent_in_digest("x", at(5)).is_err());
    }

    #[test]
    fn a_batched_delivery_read_before_its_digest_is_skipped_with_the_reason() {
        let moved = delivery(Batched, 0)
            .left_out_of_digest(Skipped, "read before the digest")
            .unwrap();
        assert_eq!(moved.to, Skipped);
        assert_eq!(moved.last_error.as_deref(), Some("read before the digest"));
        assert!(delivery(Batched, 0).left_out_of_digest(Sent, "no").is_err());
        assert!(delivery(Sending, 0)
            .left_out_of_digest(Skipped, "no")
            .is_err());
    }

    #[test]
    fn a_batched_delivery_waits_for_its_window_end() {
        let d = Delivery::batched(
            DeliveryId::parse("d-1").unwrap(),
            NotificationId::parse("n-1").unwrap(),
            RecipientId::parse("r-1").unwrap(),
            Channel::Email,
            at(30),
            at(0),
        );
        assert_eq!((d.status, d.next_attempt_at), (Batched, Some(at(30))));
        assert!(!Batched.is_final(), "never purged while it waits");
    }
}
