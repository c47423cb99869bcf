//! [`DieselPushSubscriptions`]: the browsers recipients opted in to Web Push from, and the
//! VAPID key the service generated (table `service_keys`).

use std::collections::HashMap;

use async_trait::async_trait;
use clairon_application::ports::{PushSubscription, PushSubscriptions, RepositoryError};
use clairon_domain::RecipientId;
use diesel::prelude::*;

use crate::channels::web_push::{PushTarget, VapidKeys};
use crate::persistence::connection::{on_inner, write_transaction, Database};
use crate::persistence::rows::db_time;
use crate::persistence::schema::{push_subscriptions, service_keys};

/// The `service_keys` name of the generated VAPID private key.
pub const VAPID_KEY_NAME: &str = "vapid_private_key";

/// Push subscriptions and the stored VAPID key on the Diesel [`Database`].
#[derive(Debug, Clone)]
pub struct DieselPushSubscriptions {
    db: Database,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = push_subscriptions)]
struct SubscriptionRow {
    recipient_id: String,
    endpoint: String,
    p256dh: String,
    auth: String,
    created_at: chrono::NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = service_keys)]
struct ServiceKeyRow {
    name: String,
    value: String,
    created_at: chrono::NaiveDateTime,
}

impl DieselPushSubscriptions {
    /// A repository on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Stores `target` for `recipient`; the same endpoint posted again replaces its keys (a
    /// browser that re-subscribed). One transaction.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails (an unknown recipient: the foreign key).
    pub async fn put(
        &self,
        recipient: &RecipientId,
        target: &PushTarget,
    ) -> Result<(), RepositoryError> {
        let row = SubscriptionRow {
            recipient_id: recipient.as_str().to_owned(),
            endpoint: target.endpoint.clone(),
            p256dh: target.p256dh.clone(),
            auth: target.auth.clone(),
            created_at: db_time(self.db.now()),
        };
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    diesel::delete(
                        push_subscriptions::table
                            .filter(push_subscriptions::recipient_id.eq(&row.recipient_id))
                            .filter(push_subscriptions::endpoint.eq(&row.endpoint)),
                    )
                    .execute(conn)?;
                    on_inner!(conn, |c| diesel::insert_into(push_subscriptions::table)
                        .values(&row)
                        .execute(c))?;
                    Ok(())
                })
            })
            .await
    }

    /// Deletes `recipient`'s subscription at `endpoint`; whether there was one. Also what a
    /// `404`/`410` from the push service does.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails.
    pub async fn remove(
        &self,
        recipient: &RecipientId,
        endpoint: &str,
    ) -> Result<bool, RepositoryError> {
        let (recipient, endpoint) = (recipient.as_str().to_owned(), endpoint.to_owned());
        self.db
            .call(move |conn| {
                let n = diesel::delete(
                    push_subscriptions::table
                        .filter(push_subscriptions::recipient_id.eq(&recipient))
                        .filter(push_subscriptions::endpoint.eq(&endpoint)),
                )
                .execute(conn)?;
                Ok(n > 0)
            })
            .await
    }

    /// `recipient`'s subscriptions, oldest first (then by endpoint).
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails.
    pub async fn list(&self, recipient: &RecipientId) -> Result<Vec<PushTarget>, RepositoryError> {
        let recipient = recipient.as_str().to_owned();
        self.db
            .call(move |conn| {
                let rows = push_subscriptions::table
                    .filter(push_subscriptions::recipient_id.eq(&recipient))
                    .order((
                        push_subscriptions::created_at.asc(),
                        push_subscriptions::endpoint.asc(),
                    ))
                    .select((
                        push_subscriptions::endpoint,
                        push_subscriptions::p256dh,
                        push_subscriptions::auth,
                    ))
                    .load::<(String, String, String)>(conn)?;
                Ok(rows
                    .into_iter()
                    .map(|(endpoint, p256dh, auth)| PushTarget {
                        endpoint,
                        p256dh,
                        auth,
                    })
                    .collect())
            })
            .await
    }

    /// The VAPID key pair to sign with: `configured` (`CLAIRON_VAPID_PRIVATE_KEY`) when given,
    /// else the stored one, else one generated now and stored — the first process to store
    /// it wins and every other reads it back, so all processes sign with one key.
    ///
    /// # Errors
    /// [`RepositoryError`] when the database fails or the stored key no longer parses.
    pub async fn vapid_keys(
        &self,
        configured: Option<VapidKeys>,
    ) -> Result<VapidKeys, RepositoryError> {
        if let Some(keys) = configured {
            return Ok(keys);
        }
        let candidate = ServiceKeyRow {
            name: VAPID_KEY_NAME.to_owned(),
            value: VapidKeys::generate().private_key_base64url(),
            created_at: db_time(self.db.now()),
        };
        let stored = self
            .db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    let existing = service_keys::table
                        .find(VAPID_KEY_NAME)
                        .select(service_keys::value)
                        .first::<String>(conn)
                        .optional()?;
                    if let Some(value) = existing {
                        return Ok(value);
                    }
                    on_inner!(conn, |c| diesel::insert_into(service_keys::table)
                        .values(&candidate)
                        .execute(c))?;
                    Ok(candidate.value.clone())
                })
            })
            .await?;
        VapidKeys::from_base64url(&stored).map_err(|e| RepositoryError::Corrupt(e.to_string()))
    }
}

#[async_trait]
impl PushSubscriptions for DieselPushSubscriptions {
    async fn endpoints(
        &self,
        recipients: &[RecipientId],
    ) -> Result<HashMap<RecipientId, Vec<String>>, RepositoryError> {
        let ids: Vec<String> = recipients.iter().map(|r| r.as_str().to_owned()).collect();
        let rows = self
            .db
            .call(move |conn| {
                let mut rows = Vec::new();
                for chunk in ids.chunks(500) {
                    rows.extend(
                        push_subscriptions::table
                            .filter(push_subscriptions::recipient_id.eq_any(chunk))
                            .order((
                                push_subscriptions::recipient_id.asc(),
                                push_subscriptions::created_at.asc(),
                                push_subscriptions::endpoint.asc(),
                            ))
                            .select((
                                push_subscriptions::recipient_id,
                                push_subscriptions::endpoint,
                            ))
                            .load::<(String, String)>(conn)?,
                    );
                }
                Ok(rows)
            })
            .await?;
        let mut by_recipient: HashMap<RecipientId, Vec<String>> = HashMap::new();
        for (recipient, endpoint) in rows {
            let id = RecipientId::parse(&recipient)
                .map_err(|e| RepositoryError::Corrupt(format!("push_subscriptions: {e}")))?;
            by_recipient.entry(id).or_default().push(endpoint);
        }
        Ok(by_recipient)
    }

    async fn find(
        &self,
        recipient: &RecipientId,
        endpoint: &str,
    ) -> Result<Option<PushSubscription>, RepositoryError> {
        let (recipient, endpoint) = (recipient.as_str().to_owned(), endpoint.to_owned());
        self.db
            .call(move |conn| {
                let row = push_subscriptions::table
                    .filter(push_subscriptions::recipient_id.eq(&recipient))
                    .filter(push_subscriptions::endpoint.eq(&endpoint))
                    .select((
                        push_subscriptions::endpoint,
                        push_subscriptions::p256dh,
                        push_subscriptions::auth,
                    ))
                    .first::<(String, String, String)>(conn)
                    .optional()?;
                Ok(row.map(|(endpoint, p256dh, auth)| PushSubscription {
                    endpoint,
                    p256dh,
                    auth,
                }))
            })
            .await
    }

    async fn forget(
        &self,
        recipient: &RecipientId,
        endpoint: &str,
    ) -> Result<bool, RepositoryError> {
        self.remove(recipient, endpoint).await
    }
}
