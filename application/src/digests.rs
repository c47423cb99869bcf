//! The `digests` job (issue 13, "Digests"): for every (recipient, channel) whose digest window
//! ended, one message listing the notifications batched in it, sent through the channel's own
//! sender; then those `batched` deliveries become `sent` with the digest's provider id.
//!
//! Per window, in order: [`DigestStore::open`] leaves out (as `skipped`, "read before the
//! digest") what the recipient read in the inbox meanwhile and, when something is left, opens the
//! digest row of the window's key (recipient + channel + window end, unique): a second run, or a
//! run after a crash, finds the same row and the same id. The message is rendered from the
//! `digest` family (`templates/{locale}/digest/`, context below) and sent; the outcome settles the
//! digest and its deliveries in one transaction ([`DigestStore::settle`]). A crash after the
//! provider took the message and before it was recorded sends it again on the next run with the
//! same id (the email's `Message-ID`), never a second, different digest; a transient failure
//! leaves everything `batched` for the next run.
//!
//! The templates' context is the dispatcher's shape: `notification` (`title` = the subject
//! line words, `event_type` = `digest`, no call to action), `recipient` `{id, name}`, `locale`,
//! and `data`: `{"count": n, "window_end": "<local date and time>", "items": [{"title",
//! "at": "<local date and time>", "link": url | null}]}`, times in the recipient's zone.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use clairon_domain::formatting::format_datetime;
use clairon_domain::{Channel, EventType, Locale, Recipient, TimeZone};
use serde_json::{json, Value};

use crate::ports::{
    Clock, DigestKey, DigestOutcome, DigestStore, EmailMessage, EmailSender, IdGenerator,
    OpenDigest, RecipientRepository, RepositoryError, SendOutcome, TelegramMessage, TelegramSender,
    TemplateRenderer,
};

/// The most windows one run settles; the rest wait for the next run.
pub const MAX_WINDOWS_PER_RUN: usize = 500;

/// What one run did: the job run's `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestRunStats {
    /// Digests the providers accepted.
    pub sent: u64,
    /// Batched deliveries settled `sent` with them.
    pub deliveries: u64,
    /// Batched deliveries left out because they were read first.
    pub read_before: u64,
    /// Digests refused for good (their deliveries `failed`).
    pub failed: u64,
    /// Digests left for the next run (a transient failure, a paced or rate-limited provider).
    pub deferred: u64,
}

impl DigestRunStats {
    /// As the job run's `stats` object.
    pub fn to_json(self) -> Value {
        json!({
            "sent": self.sent,
            "deliveries": self.deliveries,
            "read_before": self.read_before,
            "failed": self.failed,
            "deferred": self.deferred,
        })
    }
}

/// Builds and sends the digests whose window ended.
pub struct DigestJob {
    store: Arc<dyn DigestStore>,
    recipients: Arc<dyn RecipientRepository>,
    templates: Arc<dyn TemplateRenderer>,
    email: Arc<dyn EmailSender>,
    telegram: Option<Arc<dyn TelegramSender>>,
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn Clock>,
    default_locale: Locale,
}

impl DigestJob {
    /// The job on its ports; Telegram digests go out once [`DigestJob::with_telegram`] gives
    /// it a sender (without, they wait).
    pub fn new(
        store: Arc<dyn DigestStore>,
        recipients: Arc<dyn RecipientRepository>,
        templates: Arc<dyn TemplateRenderer>,
        email: Arc<dyn EmailSender>,
        ids: Arc<dyn IdGenerator>,
        clock: Arc<dyn Clock>,
        default_locale: Locale,
    ) -> Self {
        Self {
            store,
            recipients,
            templates,
            email,
            telegram: None,
            ids,
            clock,
            default_locale,
        }
    }

    /// The same job sending Telegram digests through `telegram`.
    #[must_use]
    pub fn with_telegram(mut self, telegram: Arc<dyn TelegramSender>) -> Self {
        self.telegram = Some(telegram);
        self
    }

    /// One run: every window ended by now, oldest first (at most [`MAX_WINDOWS_PER_RUN`]).
    ///
    /// # Errors
    /// [`RepositoryError`] when the store fails; what was settled before stays settled.
    pub async fn run(&self) -> Result<DigestRunStats, RepositoryError> {
        let now = self.clock.now();
        let mut stats = DigestRunStats::default();
        for key in self.store.due(now, MAX_WINDOWS_PER_RUN).await? {
            self.one(&key, now, &mut stats).await?;
        }
        Ok(stats)
    }

    async fn one(
        &self,
        key: &DigestKey,
        now: DateTime<Utc>,
        stats: &mut DigestRunStats,
    ) -> Result<(), RepositoryError> {
        let (open, read_before) = self.store.open(key, self.ids.delivery_id(), now).await?;
        stats.read_before += read_before;
        let Some(digest) = open else {
            return Ok(());
        };
        let listed: Vec<_> = digest.items.iter().map(|i| i.delivery_id.clone()).collect();
        let outcome = match &digest.sent_as {
            Some(provider_message_id) => Some(DigestOutcome::Sent {
                provider_message_id: provider_message_id.clone(),
            }),
            None => self.send(key, &digest).await,
        };
        let Some(outcome) = outcome else {
            stats.deferred += 1;
            return Ok(());
        };
        let moved = self
            .store
            .settle(&digest.id, &listed, &outcome, self.clock.now())
            .await?;
        match outcome {
            DigestOutcome::Sent { .. } => {
                stats.sent += 1;
                stats.deliveries += moved;
            }
            DigestOutcome::Failed(_) => stats.failed += 1,
        }
        Ok(())
    }

    /// Renders and sends `digest`; `None` when it should be tried again on the next run.
    async fn send(&self, key: &DigestKey, digest: &OpenDigest) -> Option<DigestOutcome> {
        let recipient = match self.recipients.get(&key.recipient_id).await {
            Ok(Some(recipient)) => recipient,
            Ok(None) => return Some(DigestOutcome::Failed("unreachable: no recipient".into())),
            Err(e) => {
                tracing::warn!(error = %e, "digest: reading the recipient failed");
                return None;
            }
        };
        let locale = recipient.locale_or(self.default_locale);
        let context = digest_context(&recipient, digest, key.window_end, locale);
        let family = EventType::parse("digest").ok()?;
        let sent = match key.channel {
            Channel::Email => {
                let Some(to) = recipient.email.clone() else {
                    return Some(DigestOutcome::Failed(
                        "unreachable: recipient has no email address".into(),
                    ));
                };
                let content = match self.templates.render_email(&family, locale, &context) {
                    Ok(content) => content,
                    Err(e) => return Some(DigestOutcome::Failed(e.to_string())),
                };
                self.email
                    .send(&EmailMessage {
                        delivery_id: digest.id.clone(),
                        notification_id: digest.items[0].notification_id.clone(),
                        to,
                        to_name: recipient.name.clone(),
                        subject: content.subject,
                        text: content.text,
                        html: content.html,
                        unsubscribe_url: None,
                    })
                    .await
            }
            Channel::Telegram => {
                let (Some(telegram), Some(chat_id)) =
                    (&self.telegram, recipient.telegram_chat_id.clone())
                else {
                    return Some(DigestOutcome::Failed(
                        "unreachable: no Telegram chat or no bot".into(),
                    ));
                };
                let content = match self.templates.render_telegram(&family, locale, &context) {
                    Ok(content) => content,
                    Err(e) => return Some(DigestOutcome::Failed(e.to_string())),
                };
                telegram
                    .send(&TelegramMessage {
                        delivery_id: digest.id.clone(),
                        chat_id,
                        html: content.html,
                        button: None,
                    })
                    .await
            }
            other => {
                return Some(DigestOutcome::Failed(format!(
                    "unreachable: {} digests are not supported",
                    other.as_str()
                )))
            }
        };
        match sent {
            SendOutcome::Sent {
                provider_message_id,
            } => Some(DigestOutcome::Sent {
                provider_message_id,
            }),
            SendOutcome::Permanent(why) => Some(DigestOutcome::Failed(why)),
            SendOutcome::Transient(why) => {
                tracing::info!(reason = %why, "digest: transient failure, next run retries");
                None
            }
            SendOutcome::RateLimited { .. } | SendOutcome::Paced { .. } => None,
        }
    }
}

/// The templates' context of `digest` for `recipient` (see the module).
pub fn digest_context(
    recipient: &Recipient,
    digest: &OpenDigest,
    window_end: DateTime<Utc>,
    locale: Locale,
) -> Value {
    let zone = recipient.timezone.unwrap_or(TimeZone::UTC);
    let items: Vec<Value> = digest
        .items
        .iter()
        .map(|item| {
            json!({
                "title": item.title,
                "at": format_datetime(item.created_at, zone, locale),
                "link": item.action_url,
            })
        })
        .collect();
    let count = items.len();
    json!({
        "notification": {
            "id": digest.id.as_str(),
            "kind": "info",
            "title": format!("{count}"),
            "body": "",
            "action_url": Value::Null,
            "action_label": Value::Null,
            "event_type": "digest",
            "created_at": window_end.to_rfc3339(),
        },
        "recipient": { "id": recipient.id.as_str(), "name": recipient.name.as_str() },
        "locale": locale.as_str(),
        "data": {
            "count": count,
            "window_end": format_datetime(window_end, zone, locale),
            "items": items,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        DigestItem, EmailContent, MockDigestStore, MockEmailSender, MockRecipientRepository,
        MockTemplateRenderer,
    };
    use crate::test_support::{fixed_clock, recipient, sequential_ids};
    use clairon_domain::{DeliveryId, NotificationId, RecipientId};
    use rstest::rstest;

    fn key() -> DigestKey {
        DigestKey {
            recipient_id: RecipientId::parse("artist-1").unwrap(),
            channel: Channel::Email,
            window_end: fixed_clock().now(),
        }
    }

    fn open() -> OpenDigest {
        OpenDigest {
            id: DeliveryId::parse("digest-1").unwrap(),
            sent_as: None,
            items: vec![DigestItem {
                delivery_id: DeliveryId::parse("d-1").unwrap(),
                notification_id: NotificationId::parse("n-1").unwrap(),
                title: "Répétition avancée".into(),
                created_at: fixed_clock().now(),
                action_url: None,
            }],
        }
    }

    fn job(answer: SendOutcome, settles: bool) -> DigestJob {
        let mut store = MockDigestStore::new();
        store.expect_due().returning(|_, _| Ok(vec![key()]));
        store
            .expect_open()
            .returning(|_, _, _| Ok((Some(open()), 1)));
        store
            .expect_settle()
            .times(usize::from(settles))
            .returning(|_, listed, _, _| Ok(listed.len() as u64));
        let mut recipients = MockRecipientRepository::new();
        recipients
            .expect_get()
            .returning(|_| Ok(Some(recipient("artist-1"))));
        let mut templates = MockTemplateRenderer::new();
        templates.expect_render_email().returning(|_, _, context| {
            assert_eq!(context["data"]["count"], 1);
            assert_eq!(context["data"]["items"][0]["title"], "Répétition avancée");
            Ok(EmailContent {
                subject: "Votre résumé".into(),
                text: "…".into(),
                html: "<p>…</p>".into(),
            })
        });
        let mut email = MockEmailSender::new();
        email.expect_send().returning(move |message| {
            assert_eq!(
                message.delivery_id.as_str(),
                "digest-1",
                "the digest's stable id"
            );
            answer.clone()
        });
        DigestJob::new(
            Arc::new(store),
            Arc::new(recipients),
            Arc::new(templates),
            Arc::new(email),
            Arc::new(sequential_ids()),
            Arc::new(fixed_clock()),
            Locale::Fr,
        )
    }

    #[rstest]
    #[case::sent(SendOutcome::Sent { provider_message_id: "m-1".into() }, true, DigestRunStats { sent: 1, deliveries: 1, read_before: 1, ..Default::default() })]
    #[case::refused(SendOutcome::Permanent("550".into()), true, DigestRunStats { failed: 1, read_before: 1, ..Default::default() })]
    #[case::transient(SendOutcome::Transient("451".into()), false, DigestRunStats { deferred: 1, read_before: 1, ..Default::default() })]
    #[tokio::test]
    async fn each_answer_of_the_provider_settles_the_digest_or_leaves_it_for_the_next_run(
        #[case] answer: SendOutcome,
        #[case] settles: bool,
        #[case] expected: DigestRunStats,
    ) {
        let stats = job(answer, settles).run().await.unwrap();
        assert_eq!(stats, expected);
    }
}
