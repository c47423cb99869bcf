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

use std::collections::{BTreeSet, HashMap};
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

/// A slot at most this far away is waited for in place: putting the message back would cost a
/// database round trip and a later claim for less than that.
const INLINE_WAIT: Duration = Duration::from_millis(50);

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

/// The account's calendar (a bot, a Twilio account): time cut into periods of one `interval`
/// from the first message, each period taken by at most one message. A message gets the first
/// free period at or after its destination's slot, so the account's pace is kept by reservation,
/// like the destinations', and nobody waits for it inside a batch.
struct AccountSlots {
    interval: Duration,
    origin: Option<Instant>,
    taken: BTreeSet<u64>,
}

impl AccountSlots {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            origin: None,
            taken: BTreeSet::new(),
        }
    }

    fn period_of(&self, origin: Instant, at: Instant) -> u64 {
        let since = at.saturating_duration_since(origin).as_nanos();
        u64::try_from(since / self.interval.as_nanos().max(1)).unwrap_or(u64::MAX)
    }

    fn start_of(&self, origin: Instant, period: u64) -> Instant {
        let nanos = self.interval.as_nanos().saturating_mul(u128::from(period));
        origin + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Takes the first free period at or after `at` (`now` at the earliest) and returns when
    /// the message may leave: `at`, or the start of a later period.
    fn take(&mut self, at: Instant, now: Instant) -> Instant {
        let origin = *self.origin.get_or_insert(now);
        // Periods already past are nobody's any more.
        let current = self.period_of(origin, now);
        self.taken = self.taken.split_off(&current);
        let at = at.max(now);
        let mut period = self.period_of(origin, at);
        while self.taken.contains(&period) {
            period += 1;
        }
        self.taken.insert(period);
        at.max(self.start_of(origin, period))
    }
}

/// The lanes of the destinations and the account's calendar, under one lock.
struct PacerState {
    lanes: HashMap<String, Lane>,
    account: Option<AccountSlots>,
}

/// The pace of each destination (a chat, a webhook URL), one message every
/// `1 / per_destination` s, and optionally of the whole account (a bot, a Twilio account).
///
/// A message that cannot go now is not waited for: [`Self::admit`] reserves the destination's
/// next free slot for it, and the account's first free period at or after that slot, and says
/// how long until then, so the delivery is put back due exactly then, and the messages queued
/// for one chat go out one a second in their order instead of all coming back at once to be
/// refused again. The account's bucket (`governor`, spaced GCRA) is still waited for as a
/// backstop, for messages that came back late and bunched: a wait of at most one account
/// interval a message. A message that had its slot still leaves at least one interval after the
/// destination's previous one (a short wait, within the account's jitter).
pub struct DestinationPacer {
    interval: Duration,
    state: Mutex<PacerState>,
    overall: Option<DefaultDirectRateLimiter>,
}

impl DestinationPacer {
    /// `per_destination` messages per second to each destination and at most `overall` per
    /// second in all when given, both spaced (no burst: "one message per second" means one a
    /// second, not a second's worth at once).
    pub fn new(per_destination: NonZeroU32, overall: Option<NonZeroU32>) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_destination.get(),
            state: Mutex::new(PacerState {
                lanes: HashMap::new(),
                account: overall.map(|n| AccountSlots::new(Duration::from_secs(1) / n.get())),
            }),
            // Spaced too: 30 per second is one every 33 ms, never 30 at once then a wait.
            overall: overall
                .map(|n| RateLimiter::direct(Quota::per_second(n).allow_burst(NonZeroU32::MIN))),
        }
    }

    /// Takes a slot for the message `ticket` (its delivery id) to `destination` (and a period of
    /// the account's, when it has a pace), then waits for the account's bucket (the backstop).
    ///
    /// # Errors
    /// The wait until the slot reserved for `ticket`, when the destination's next free slot or
    /// the account's first free period after it is later than now: the caller puts the message
    /// back until then, and the slot is its own when it comes back with the same ticket.
    pub async fn admit(&self, destination: &str, ticket: &str) -> Result<(), Duration> {
        match self.reserve(destination, ticket, Instant::now()) {
            Ok(()) => {}
            // A slot this close is cheaper waited for than put back and claimed again.
            Err(wait) if wait <= INLINE_WAIT => {
                tokio::time::sleep(wait).await;
                self.reserve(destination, ticket, Instant::now())?;
            }
            Err(wait) => return Err(wait),
        }
        if let Some(overall) = &self.overall {
            overall.until_ready().await;
        }
        let gap = self.leave(destination, Instant::now());
        if !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        Ok(())
    }

    /// Sends through `send` once [`Self::admit`] lets the message `ticket` to `destination`
    /// go; else answers [`SendOutcome::Paced`] with the wait, `send` never polled (what every
    /// paced sender does around its provider).
    pub async fn send_paced(
        &self,
        destination: &str,
        ticket: &str,
        send: impl std::future::Future<Output = SendOutcome>,
    ) -> SendOutcome {
        match self.admit(destination, ticket).await {
            Ok(()) => send.await,
            Err(ready_in) => SendOutcome::Paced { ready_in },
        }
    }

    /// Records that a message to `destination` leaves now or after the returned wait: at
    /// least one interval after the one before it.
    fn leave(&self, destination: &str, now: Instant) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(lane) = state.lanes.get_mut(destination) else {
            return Duration::ZERO;
        };
        let at = lane
            .last_sent
            .map_or(now, |last| (last + self.interval).max(now));
        lane.last_sent = Some(at);
        at - now
    }

    fn reserve(&self, destination: &str, ticket: &str, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let PacerState { lanes, account } = &mut *state;
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
        let slot = account
            .as_mut()
            .map_or(slot, |account| account.take(slot, now));
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
        self.pacer
            .send_paced(message.chat_id.as_str(), &ticket, self.inner.send(message))
            .await
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
    fn the_accounts_pace_is_kept_by_reserving_its_periods_not_by_waiting() {
        // 1 per second per chat, 10 per second for the account: periods of 100 ms.
        let pacer = DestinationPacer::new(
            NonZeroU32::new(1).unwrap(),
            Some(NonZeroU32::new(10).unwrap()),
        );
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(
            pacer.reserve("1", "a", t0),
            Ok(()),
            "the first period is free"
        );
        assert_eq!(
            pacer.reserve("2", "b", t0),
            Err(ms(100)),
            "another chat, but the account's period is taken: the next one"
        );
        assert_eq!(pacer.reserve("3", "c", t0), Err(ms(200)));
        assert_eq!(
            pacer.reserve("1", "d", t0),
            Err(ms(1000)),
            "chat 1's next slot is a second away, and the account is free then"
        );
        assert_eq!(
            pacer.reserve("2", "b", t0 + ms(100)),
            Ok(()),
            "b comes back for its period"
        );
        assert_eq!(
            pacer.reserve("4", "e", t0 + ms(250)),
            Err(ms(50)),
            "the period of 200 ms is c's: e gets the one of 300 ms"
        );
        assert_eq!(
            pacer.reserve("5", "f", t0 + ms(2000)),
            Ok(()),
            "past periods are forgotten, a quiet account lets a message go at once"
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
    async fn a_message_whose_bot_period_is_far_is_put_back_and_a_close_one_waited_for() {
        // 10 per second per bot: periods of 100 ms, more than the inline wait.
        let slow = paced(1, 10, 1);
        assert!(matches!(
            slow.send(&message("1", "d-1")).await,
            SendOutcome::Sent { .. }
        ));
        let SendOutcome::Paced { ready_in } = slow.send(&message("2", "d-2")).await else {
            panic!("the bot's next period is 100 ms away: put back, not waited for");
        };
        assert!(
            ready_in > INLINE_WAIT && ready_in <= Duration::from_millis(100),
            "{ready_in:?}"
        );
        // 30 per second: the next period is 33 ms away, waited for in place.
        let paced = paced(2, 30, 1);
        let start = Instant::now();
        for chat in ["1", "2"] {
            assert!(matches!(
                paced.send(&message(chat, &format!("d-{chat}"))).await,
                SendOutcome::Sent { .. }
            ));
        }
        // A lower bound only (what the pace guarantees), never an upper one.
        assert!(
            start.elapsed() >= Duration::from_millis(30),
            "30 per second per bot, spaced: the second message waited for its period"
        );
    }
}
