//! Token buckets per destination (`governor`, GCRA) that keep each provider under its limits
//! without making a worker wait: [`DestinationPacer`], and [`PacedTelegramSender`] on it.
//!
//! Telegram Bot API FAQ, "My bot is hitting limits": about 30 messages per second per bot to
//! different chats, and no more than one message per second in a single chat. A message whose
//! bucket has no token is not sent and not waited for: the sender answers
//! [`SendOutcome::Paced`] with the time until the token, the dispatcher puts the delivery back
//! due then and takes the next one, so one busy chat never holds up the others (no head-of-line
//! blocking) and no 429 pauses the whole channel. SMTP needs no bucket: the connection pool
//! (`CLAIRON_SMTP_POOL_SIZE`) already bounds how many messages are in flight.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clairon_application::ports::{SendOutcome, TelegramMessage, TelegramSender};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// How many destinations' lanes are kept before the idle ones are forgotten.
const LANES_KEPT: usize = 10_000;

/// How early a message may come back for its slot and still take it (the worker's wake-up and
/// the database's clock are not exact).
const SLOT_TOLERANCE: Duration = Duration::from_millis(20);

/// A reserved slot nobody came back for (the delivery was cancelled, or taken by another
/// process) is given up after this long.
const RESERVATION_KEPT: Duration = Duration::from_secs(60);

/// One destination's pace: when its next free slot is, the slots promised to messages that
/// were put back (by delivery id), and when its last message actually left.
struct Lane {
    next_free: Instant,
    reserved: HashMap<String, Instant>,
    last_sent: Option<Instant>,
}

/// The pace of each destination (a chat, a webhook URL), one message every
/// `1 / per_destination` s, and optionally of the whole account (a bot, a Twilio account).
///
/// A message that cannot go now is not waited for: [`Self::admit`] reserves the destination's
/// next free slot for it and says how long until then, so the delivery is put back due exactly
/// then, and the messages queued for one chat go out one a second in their order instead of all
/// coming back at once to be refused again. The account's bucket (`governor`, spaced GCRA) is
/// waited for: it holds back every destination alike, for at most one interval a message. As
/// that wait varies, a message that had its slot still leaves at least one interval after the
/// destination's previous one (a short wait, within the account's jitter).
pub struct DestinationPacer {
    interval: Duration,
    lanes: Mutex<HashMap<String, Lane>>,
    overall: Option<DefaultDirectRateLimiter>,
}

impl DestinationPacer {
    /// `per_destination` messages per second to each destination and at most `overall` per
    /// second in all when given, both spaced (no burst: "one message per second" means one a
    /// second, not a second's worth at once).
    pub fn new(per_destination: NonZeroU32, overall: Option<NonZeroU32>) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_destination.get(),
            lanes: Mutex::new(HashMap::new()),
            // Spaced too: 30 per second is one every 33 ms, never 30 at once then a wait.
            overall: overall
                .map(|n| RateLimiter::direct(Quota::per_second(n).allow_burst(NonZeroU32::MIN))),
        }
    }

    /// Takes a slot for the message `ticket` (its delivery id) to `destination`, then waits
    /// for the account's bucket.
    ///
    /// # Errors
    /// The wait until the slot reserved for `ticket`, when the destination's next free slot
    /// is later than now: the caller puts the message back until then, and the slot is its
    /// own when it comes back with the same ticket.
    pub async fn admit(&self, destination: &str, ticket: &str) -> Result<(), Duration> {
        self.reserve(destination, ticket, Instant::now())?;
        if let Some(overall) = &self.overall {
            overall.until_ready().await;
        }
        let gap = self.leave(destination, Instant::now());
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        Ok(())
    }

    /// Records that a message to `destination` leaves now or after the returned wait: at
    /// least one interval after the one before it.
    fn leave(&self, destination: &str, now: Instant) -> Duration {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(lane) = lanes.get_mut(destination) else {
            return Duration::ZERO;
        };
        let at = lane
            .last_sent
            .map_or(now, |last| (last + self.interval).max(now));
        lane.last_sent = Some(at);
        at - now
    }

    fn reserve(&self, destination: &str, ticket: &str, now: Instant) -> Result<(), Duration> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        if lanes.len() > LANES_KEPT {
            lanes.retain(|_, lane| {
                lane.next_free + self.interval > now || !lane.reserved.is_empty()
            });
        }
        let lane = lanes.entry(destination.to_owned()).or_insert(Lane {
            next_free: now,
            reserved: HashMap::new(),
            last_sent: None,
        });
        lane.reserved
            .retain(|_, slot| *slot + RESERVATION_KEPT > now);
        if let Some(slot) = lane.reserved.get(ticket).copied() {
            if slot <= now + SLOT_TOLERANCE {
                lane.reserved.remove(ticket);
                return Ok(());
            }
            return Err(slot - now);
        }
        let slot = lane.next_free.max(now);
        lane.next_free = slot + self.interval;
        if slot <= now + SLOT_TOLERANCE {
            return Ok(());
        }
        lane.reserved.insert(ticket.to_owned(), slot);
        Err(slot - now)
    }
}

/// A [`TelegramSender`] that keeps the bot's and each chat's pace ([`DestinationPacer`]):
/// a message whose bucket is empty comes back [`SendOutcome::Paced`], unsent.
pub struct PacedTelegramSender {
    inner: Arc<dyn TelegramSender>,
    pacer: DestinationPacer,
}

impl PacedTelegramSender {
    /// Paces `inner` to `per_bot` messages per second in all, and `per_chat` per chat
    /// (Telegram's documented limits are 30 and 1).
    pub fn new(inner: Arc<dyn TelegramSender>, per_bot: NonZeroU32, per_chat: NonZeroU32) -> Self {
        Self {
            inner,
            pacer: DestinationPacer::new(per_chat, Some(per_bot)),
        }
    }
}

#[async_trait]
impl TelegramSender for PacedTelegramSender {
    async fn send(&self, message: &TelegramMessage) -> SendOutcome {
        let ticket = message.delivery_id.to_string();
        match self.pacer.admit(message.chat_id.as_str(), &ticket).await {
            Ok(()) => self.inner.send(message).await,
            Err(ready_in) => SendOutcome::Paced { ready_in },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_application::ports::MockTelegramSender;
    use clairon_domain::{DeliveryId, TelegramChatId};

    fn message(chat: &str, delivery: &str) -> TelegramMessage {
        TelegramMessage {
            delivery_id: DeliveryId::parse(delivery).unwrap(),
            chat_id: TelegramChatId::parse(chat).unwrap(),
            html: "hi".into(),
            button: None,
        }
    }

    fn paced(sent: usize, per_bot: u32, per_chat: u32) -> PacedTelegramSender {
        let mut inner = MockTelegramSender::new();
        inner
            .expect_send()
            .times(sent)
            .returning(|m| SendOutcome::Sent {
                provider_message_id: m.chat_id.as_str().to_owned(),
            });
        PacedTelegramSender::new(
            Arc::new(inner),
            NonZeroU32::new(per_bot).unwrap(),
            NonZeroU32::new(per_chat).unwrap(),
        )
    }

    #[tokio::test]
    async fn every_message_to_a_different_chat_reaches_the_provider_and_its_answer_comes_back() {
        let paced = paced(3, 30, 1);
        for chat in ["1", "2", "3"] {
            assert_eq!(
                paced.send(&message(chat, &format!("d-{chat}"))).await,
                SendOutcome::Sent {
                    provider_message_id: chat.into()
                }
            );
        }
    }

    #[tokio::test]
    async fn a_second_message_to_the_same_chat_is_paced_unsent_while_other_chats_go_on() {
        // The mock counts the provider calls: two, never the paced one.
        let paced = paced(2, 30, 1);
        assert!(matches!(
            paced.send(&message("42", "d-1")).await,
            SendOutcome::Sent { .. }
        ));
        let SendOutcome::Paced { ready_in } = paced.send(&message("42", "d-2")).await else {
            panic!("a second message within the second must be paced");
        };
        assert!(
            ready_in > Duration::from_millis(500) && ready_in <= Duration::from_secs(1),
            "one per second per chat: the slot is about a second away, got {ready_in:?}"
        );
        assert!(
            matches!(
                paced.send(&message("43", "d-3")).await,
                SendOutcome::Sent { .. }
            ),
            "another chat is not held up by the busy one"
        );
    }

    #[test]
    fn messages_put_back_for_one_destination_get_successive_slots_kept_for_them() {
        let pacer = DestinationPacer::new(NonZeroU32::new(1).unwrap(), None);
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(pacer.reserve("chat", "a", t0), Ok(()));
        assert_eq!(pacer.reserve("chat", "b", t0), Err(second));
        assert_eq!(pacer.reserve("chat", "c", t0), Err(2 * second));
        assert_eq!(
            pacer.reserve("chat", "b", t0),
            Err(second),
            "asking again keeps the slot already reserved"
        );
        assert_eq!(
            pacer.reserve("chat", "c", t0 + second),
            Err(second),
            "c's slot is after b's, whoever comes back first"
        );
        assert_eq!(pacer.reserve("chat", "b", t0 + second), Ok(()));
        assert_eq!(pacer.reserve("chat", "c", t0 + 2 * second), Ok(()));
        assert_eq!(
            pacer.reserve("chat", "d", t0 + 2 * second),
            Err(second),
            "a newcomer queues after the slots already promised"
        );
        assert_eq!(
            pacer.reserve("other", "e", t0),
            Ok(()),
            "lanes are per destination"
        );
    }

    #[test]
    fn a_message_leaves_at_least_one_interval_after_the_one_before_it_whatever_its_slot() {
        let pacer = DestinationPacer::new(NonZeroU32::new(1).unwrap(), None);
        let t0 = Instant::now();
        assert_eq!(pacer.reserve("chat", "a", t0), Ok(()));
        // a waited 300 ms for the account's bucket before it left.
        let late = t0 + Duration::from_millis(300);
        assert_eq!(pacer.leave("chat", late), Duration::ZERO);
        // b comes back for its slot (t0 + 1 s, within the tolerance) and waits the rest.
        let back = t0 + Duration::from_millis(990);
        assert_eq!(pacer.reserve("chat", "b", t0), Err(Duration::from_secs(1)));
        assert_eq!(pacer.reserve("chat", "b", back), Ok(()));
        assert_eq!(pacer.leave("chat", back), Duration::from_millis(310));
    }

    #[tokio::test]
    async fn the_bots_own_bucket_spaces_messages_to_any_chat() {
        let paced = paced(2, 10, 1);
        let start = Instant::now();
        for chat in ["1", "2"] {
            assert!(matches!(
                paced.send(&message(chat, &format!("d-{chat}"))).await,
                SendOutcome::Sent { .. }
            ));
        }
        // A lower bound only (what the bucket guarantees), never an upper one.
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "10 per second per bot, spaced: the second message waited for the bot's token"
        );
    }
}
