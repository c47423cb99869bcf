//! [`DieselRecipientRepository`]: recipients by the host application's id.

use async_trait::async_trait;
use clairon_application::ports::{RecipientRepository, RepositoryError, Upserted};
use clairon_domain::SlackWebhookUrl;
use clairon_domain::{Recipient, RecipientId, TelegramChatId, WebhookUrl};
use diesel::prelude::*;

use super::CHUNK;
use crate::idempotency::Settlement;
use crate::persistence::connection::{write_transaction, AnyConnection, Database, DbError};
use crate::persistence::rows::{db_time, RecipientChanges, RecipientRow};
use crate::persistence::schema::recipients;

/// The [`RecipientRepository`] on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselRecipientRepository {
    db: Database,
}

impl DieselRecipientRepository {
    /// A repository on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    async fn upsert_once(
        &self,
        rows: Vec<(RecipientRow, RecipientChanges)>,
        settlement: Option<Settlement>,
    ) -> Result<Vec<Upserted>, RepositoryError> {
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    // An `Idempotency-Key` import records whom it wrote about (for erasure).
                    if let Some(settlement) = &settlement {
                        super::idempotency::settle(conn, settlement)?;
                    }
                    upsert_rows(conn, &rows)
                })
            })
            .await
    }
}

/// Updates each recipient in place, or inserts it when no row has its id. (`ON CONFLICT` would
/// do it in one statement on both engines, but `MultiConnection` does not offer it, and telling
/// Created from Updated needs the affected-row count anyway.)
fn upsert_rows(
    conn: &mut AnyConnection,
    rows: &[(RecipientRow, RecipientChanges)],
) -> Result<Vec<Upserted>, DbError> {
    rows.iter()
        .map(|(row, changes)| {
            let updated = diesel::update(recipients::table.find(&row.id))
                .set(changes)
                .execute(conn)?;
            if updated > 0 {
                // A Telegram refusal is about one chat id: a new one starts afresh.
                let marked = recipients::table
                    .find(&row.id)
                    .filter(recipients::telegram_unreachable_chat_id.is_not_null());
                let clear = (
                    recipients::telegram_unreachable_chat_id.eq(None::<String>),
                    recipients::telegram_unreachable_reason.eq(None::<String>),
                );
                match &row.telegram_chat_id {
                    Some(chat) => diesel::update(
                        marked.filter(recipients::telegram_unreachable_chat_id.ne(chat)),
                    )
                    .set(clear)
                    .execute(conn)?,
                    None => diesel::update(marked).set(clear).execute(conn)?,
                };
                // A 410 is about one webhook URL: a new one is enabled again.
                let disabled = recipients::table
                    .find(&row.id)
                    .filter(recipients::webhook_disabled_url.is_not_null());
                let enable = (
                    recipients::webhook_disabled_url.eq(None::<String>),
                    recipients::webhook_disabled_reason.eq(None::<String>),
                );
                match &row.webhook_url {
                    Some(url) => {
                        diesel::update(disabled.filter(recipients::webhook_disabled_url.ne(url)))
                            .set(enable)
                            .execute(conn)?
                    }
                    None => diesel::update(disabled).set(enable).execute(conn)?,
                };
                // A Slack refusal is about one webhook URL: a new one starts afresh.
                let refused = recipients::table
                    .find(&row.id)
                    .filter(recipients::slack_unreachable_url.is_not_null());
                let reachable = (
                    recipients::slack_unreachable_url.eq(None::<String>),
                    recipients::slack_unreachable_reason.eq(None::<String>),
                );
                match &row.slack_webhook_url {
                    Some(url) => {
                        diesel::update(refused.filter(recipients::slack_unreachable_url.ne(url)))
                            .set(reachable)
                            .execute(conn)?
                    }
                    None => diesel::update(refused).set(reachable).execute(conn)?,
                };
                return Ok(Upserted::Updated);
            }
            // A new row draws its own token generation: tokens of an earlier recipient with this
            // id (erased since) carry another one and stay refused.
            diesel::insert_into(recipients::table)
                .values((
                    row,
                    recipients::token_generation.eq(super::token_generations::fresh_generation()),
                ))
                .execute(conn)?;
            Ok(Upserted::Created)
        })
        .collect()
}

#[async_trait]
impl RecipientRepository for DieselRecipientRepository {
    async fn upsert_many(
        &self,
        recipients: &[Recipient],
    ) -> Result<Vec<Upserted>, RepositoryError> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        let now = db_time(self.db.now());
        let rows: Vec<_> = recipients
            .iter()
            .map(|r| (RecipientRow::new(r, now), RecipientChanges::new(r, now)))
            .collect();
        let settlement = crate::idempotency::subjects_settlement(
            recipients.iter().map(|r| r.id.as_str().to_owned()),
        );
        match self.upsert_once(rows.clone(), settlement.clone()).await {
            // Another writer created one of these ids between our UPDATE and INSERT (PostgreSQL
            // only: SQLite's IMMEDIATE transactions serialise writers). Our transaction rolled
            // back; the row exists now, so a second pass updates it.
            Err(RepositoryError::Conflict(reason)) => {
                tracing::debug!(%reason, "recipient upsert raced another writer; retrying once");
                self.upsert_once(rows, settlement).await
            }
            other => other,
        }
    }

    async fn get(&self, id: &RecipientId) -> Result<Option<Recipient>, RepositoryError> {
        let id = id.as_str().to_owned();
        self.db
            .call(move |conn| {
                recipients::table
                    .find(&id)
                    .select(RecipientRow::as_select())
                    .first(conn)
                    .optional()?
                    .map(RecipientRow::into_domain)
                    .transpose()
            })
            .await
    }

    async fn mark_telegram_unreachable(
        &self,
        id: &RecipientId,
        chat_id: &TelegramChatId,
        reason: &str,
    ) -> Result<(), RepositoryError> {
        let (id, chat, reason) = (
            id.as_str().to_owned(),
            chat_id.as_str().to_owned(),
            reason.to_owned(),
        );
        self.db
            .call(move |conn| {
                diesel::update(
                    recipients::table
                        .find(&id)
                        .filter(recipients::telegram_chat_id.eq(&chat)),
                )
                .set((
                    recipients::telegram_unreachable_chat_id.eq(Some(&chat)),
                    recipients::telegram_unreachable_reason.eq(Some(&reason)),
                ))
                .execute(conn)?;
                Ok(())
            })
            .await
    }

    async fn mark_webhook_disabled(
        &self,
        id: &RecipientId,
        url: &WebhookUrl,
        reason: &str,
    ) -> Result<(), RepositoryError> {
        let (id, url, reason) = (
            id.as_str().to_owned(),
            url.as_str().to_owned(),
            reason.to_owned(),
        );
        self.db
            .call(move |conn| {
                diesel::update(
                    recipients::table
                        .find(&id)
                        .filter(recipients::webhook_url.eq(&url)),
                )
                .set((
                    recipients::webhook_disabled_url.eq(Some(&url)),
                    recipients::webhook_disabled_reason.eq(Some(&reason)),
                ))
                .execute(conn)?;
                Ok(())
            })
            .await
    }

    async fn mark_slack_unreachable(
        &self,
        id: &RecipientId,
        url: &SlackWebhookUrl,
        reason: &str,
    ) -> Result<(), RepositoryError> {
        let (id, url, reason) = (
            id.as_str().to_owned(),
            url.expose().to_owned(),
            reason.to_owned(),
        );
        self.db
            .call(move |conn| {
                diesel::update(
                    recipients::table
                        .find(&id)
                        .filter(recipients::slack_webhook_url.eq(&url)),
                )
                .set((
                    recipients::slack_unreachable_url.eq(Some(&url)),
                    recipients::slack_unreachable_reason.eq(Some(&reason)),
                ))
                .execute(conn)?;
                Ok(())
            })
            .await
    }

    async fn get_many(&self, ids: &[RecipientId]) -> Result<Vec<Recipient>, RepositoryError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        self.db.call(move |conn| load_recipients(conn, &ids)).await
    }
}

/// The recipients among `ids` that exist, in chunks that stay under the bind-parameter limits.
pub(crate) fn load_recipients(
    conn: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<Recipient>, DbError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows = recipients::table
            .filter(recipients::id.eq_any(chunk))
            .select(RecipientRow::as_select())
            .load(conn)?;
        for row in rows {
            found.push(row.into_domain()?);
        }
    }
    Ok(found)
}
