//! [`PacedTelegramSender`]: keeps a bot under Telegram's limits with token buckets (`governor`,
//! GCRA) instead of finding them out through 429 answers.
//!
//! Telegram Bot API FAQ, "My bot is hitting limits": about 30 messages per second per bot to
//! different chats, and no more than one message per second in a single chat. A send waits for
//! a token from the chat's bucket, then from the bot's, then goes out; waiting here is cheaper
//! than a 429, which pauses the whole channel. SMTP needs no bucket: the connection pool
//! (`CLAIRON_SMTP_POOL_SIZE`) already bounds how many messages are in flight.

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use clairon_application::ports::{SendOutcome, TelegramMessage, TelegramSender};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How many chats' buckets are kept before the idle ones are forgotten.
const CHAT_BUCKETS_KEPT: usize = 10_000;

/// A [`TelegramSender`] that waits for the bot's and the chat's token buckets.
pub struct PacedTelegramSender {
    inner: Arc<dyn TelegramSender>,
    bot: DefaultDirectRateLimiter,
    chats: DefaultKeyedRateLimiter<String>,
}

impl PacedTelegramSender {
    /// Paces `inner` to `per_bot` messages per second in all, and `per_chat` per chat
    /// (Telegram's documented limits are 30 and 1).
    pub fn new(inner: Arc<dyn TelegramSender>, per_bot: NonZeroU32, per_chat: NonZeroU32) -> Self {
        Self {
            inner,
            bot: RateLimiter::direct(Quota::per_second(per_bot)),
            // No burst per chat: "one message per second" means spaced, not 1 s worth at once.
            chats: RateLimiter::keyed(Quota::per_second(per_chat).allow_burst(NonZeroU32::MIN)),
        }
    }
}

#[async_trait]
impl TelegramSender for PacedTelegramSender {
    async fn send(&self, message: &TelegramMessage) -> SendOutcome {
        self.chats
            .until_key_ready(&message.chat_id.as_str().to_owned())
            .await;
        self.bot.until_ready().await;
        if self.chats.len() > CHAT_BUCKETS_KEPT {
            self.chats.retain_recent();
        }
        self.inner.send(message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clairon_application::ports::MockTelegramSender;
    use clairon_domain::{DeliveryId, TelegramChatId};
    use std::time::Instant;

    fn message(chat: &str) -> TelegramMessage {
        TelegramMessage {
            delivery_id: DeliveryId::parse("d-1").unwrap(),
            chat_id: TelegramChatId::parse(chat).unwrap(),
            html: "hi".into(),
            button: None,
        }
    }

    #[tokio::test]
    async fn every_message_reaches_the_provider_and_its_answer_comes_back() {
        let mut inner = MockTelegramSender::new();
        inner
            .expect_send()
            .times(3)
            .returning(|m| SendOutcome::Sent {
                provider_message_id: m.chat_id.as_str().to_owned(),
            });
        let paced = PacedTelegramSender::new(
            Arc::new(inner),
            NonZeroU32::new(30).unwrap(),
            NonZeroU32::new(1).unwrap(),
        );
        for chat in ["1", "2", "3"] {
            assert_eq!(
                paced.send(&message(chat)).await,
                SendOutcome::Sent {
                    provider_message_id: chat.into()
                }
            );
        }
    }

    #[tokio::test]
    async fn a_second_message_to_the_same_chat_waits_for_the_chat_bucket() {
        let mut inner = MockTelegramSender::new();
        inner
            .expect_send()
            .times(2)
            .returning(|_| SendOutcome::Sent {
                provider_message_id: "1".into(),
            });
        let paced = PacedTelegramSender::new(
            Arc::new(inner),
            NonZeroU32::new(30).unwrap(),
            NonZeroU32::new(5).unwrap(),
        );
        let start = Instant::now();
        paced.send(&message("42")).await;
        paced.send(&message("42")).await;
        // A lower bound only (what the bucket guarantees), never an upper one.
        assert!(
            start.elapsed() >= std::time::Duration::from_millis(150),
            "5 per second per chat: the second message waited for a token"
        );
    }
}
