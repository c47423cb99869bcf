//! [`DieselTopicRepository`] (topics and their members) and [`DieselRoutingRulesRepository`]
//! (the routing rules, one row per version, append-only).

use std::collections::BTreeSet;

use async_trait::async_trait;
use clairon_application::ports::{
    RepositoryError, RoutingRulesRepository, RulesVersion, TopicRepository, Upserted,
};
use clairon_domain::{RawRule, RecipientId, RoutingRules, Topic, TopicKey, TopicName};
use diesel::prelude::*;

use crate::persistence::connection::{
    on_inner, write_transaction, AnyConnection, Database, DbError,
};
use crate::persistence::repositories::CHUNK;
use crate::persistence::rows::{db_time, utc};
use crate::persistence::schema::{routing_rule_versions, topic_subscriptions, topics};

/// Topics on the Diesel [`Database`] (SQLite or PostgreSQL).
#[derive(Debug, Clone)]
pub struct DieselTopicRepository {
    db: Database,
}

impl DieselTopicRepository {
    /// A repository on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = topic_subscriptions)]
struct SubscriptionRow {
    topic_key: String,
    recipient_id: String,
    created_at: chrono::NaiveDateTime,
}

/// Inserts the `members` of `key` not already in it.
fn add_members_in(
    conn: &mut AnyConnection,
    key: &str,
    members: &[String],
    now: chrono::NaiveDateTime,
) -> Result<(), DbError> {
    for chunk in members.chunks(CHUNK) {
        let present: BTreeSet<String> = topic_subscriptions::table
            .filter(topic_subscriptions::topic_key.eq(key))
            .filter(topic_subscriptions::recipient_id.eq_any(chunk))
            .select(topic_subscriptions::recipient_id)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let rows: Vec<SubscriptionRow> = chunk
            .iter()
            .filter(|m| !present.contains(*m))
            .map(|m| SubscriptionRow {
                topic_key: key.to_owned(),
                recipient_id: m.clone(),
                created_at: now,
            })
            .collect();
        if !rows.is_empty() {
            on_inner!(conn, |c| diesel::insert_into(topic_subscriptions::table)
                .values(&rows)
                .execute(c))?;
        }
    }
    Ok(())
}

fn topic_exists(conn: &mut AnyConnection, key: &str) -> Result<bool, DbError> {
    Ok(topics::table
        .find(key)
        .select(topics::key)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

#[async_trait]
impl TopicRepository for DieselTopicRepository {
    async fn put(
        &self,
        key: &TopicKey,
        name: &TopicName,
        members: &[RecipientId],
    ) -> Result<Upserted, RepositoryError> {
        let (key, name) = (key.as_str().to_owned(), name.as_str().to_owned());
        let members: Vec<String> = members.iter().map(|m| m.as_str().to_owned()).collect();
        let now = db_time(self.db.now());
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    let outcome = if topic_exists(conn, &key)? {
                        diesel::update(topics::table.find(&key))
                            .set((topics::name.eq(&name), topics::updated_at.eq(now)))
                            .execute(conn)?;
                        diesel::delete(
                            topic_subscriptions::table
                                .filter(topic_subscriptions::topic_key.eq(&key)),
                        )
                        .execute(conn)?;
                        Upserted::Updated
                    } else {
                        diesel::insert_into(topics::table)
                            .values((
                                topics::key.eq(&key),
                                topics::name.eq(&name),
                                topics::created_at.eq(now),
                                topics::updated_at.eq(now),
                            ))
                            .execute(conn)?;
                        Upserted::Created
                    };
                    add_members_in(conn, &key, &members, now)?;
                    Ok(outcome)
                })
            })
            .await
    }

    async fn add_members(
        &self,
        key: &TopicKey,
        members: &[RecipientId],
    ) -> Result<bool, RepositoryError> {
        let key = key.as_str().to_owned();
        let members: Vec<String> = members.iter().map(|m| m.as_str().to_owned()).collect();
        let now = db_time(self.db.now());
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    if !topic_exists(conn, &key)? {
                        return Ok(false);
                    }
                    add_members_in(conn, &key, &members, now)?;
                    diesel::update(topics::table.find(&key))
                        .set(topics::updated_at.eq(now))
                        .execute(conn)?;
                    Ok(true)
                })
            })
            .await
    }

    async fn remove_member(
        &self,
        key: &TopicKey,
        member: &RecipientId,
    ) -> Result<bool, RepositoryError> {
        let (key, member) = (key.as_str().to_owned(), member.as_str().to_owned());
        let now = db_time(self.db.now());
        self.db
            .call(move |conn| {
                write_transaction(conn, |conn| {
                    if !topic_exists(conn, &key)? {
                        return Ok(false);
                    }
                    let removed = diesel::delete(
                        topic_subscriptions::table
                            .filter(topic_subscriptions::topic_key.eq(&key))
                            .filter(topic_subscriptions::recipient_id.eq(&member)),
                    )
                    .execute(conn)?;
                    if removed > 0 {
                        diesel::update(topics::table.find(&key))
                            .set(topics::updated_at.eq(now))
                            .execute(conn)?;
                    }
                    Ok(true)
                })
            })
            .await
    }

    async fn get(&self, key: &TopicKey) -> Result<Option<Topic>, RepositoryError> {
        let key = key.as_str().to_owned();
        self.db
            .call(move |conn| {
                let Some((key, name, created_at, updated_at)) = topics::table
                    .find(&key)
                    .select((
                        topics::key,
                        topics::name,
                        topics::created_at,
                        topics::updated_at,
                    ))
                    .first::<(String, String, chrono::NaiveDateTime, chrono::NaiveDateTime)>(conn)
                    .optional()?
                else {
                    return Ok(None);
                };
                let members: Vec<String> = topic_subscriptions::table
                    .filter(topic_subscriptions::topic_key.eq(&key))
                    .select(topic_subscriptions::recipient_id)
                    .order(topic_subscriptions::recipient_id.asc())
                    .load(conn)?;
                let corrupt = |e: clairon_domain::ValidationError| {
                    DbError::Corrupt(format!("topics {key}: {e}"))
                };
                Ok(Some(Topic {
                    key: TopicKey::parse(&key).map_err(corrupt)?,
                    name: TopicName::parse(&name).map_err(corrupt)?,
                    recipient_ids: members
                        .iter()
                        .map(|m| RecipientId::parse(m))
                        .collect::<Result<_, _>>()
                        .map_err(corrupt)?,
                    created_at: utc(created_at),
                    updated_at: utc(updated_at),
                }))
            })
            .await
    }

    async fn members_of(
        &self,
        keys: &[TopicKey],
    ) -> Result<(Vec<RecipientId>, Vec<TopicKey>), RepositoryError> {
        let wanted: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
        self.db
            .call(move |conn| {
                let found: BTreeSet<String> = topics::table
                    .filter(topics::key.eq_any(&wanted))
                    .select(topics::key)
                    .load::<String>(conn)?
                    .into_iter()
                    .collect();
                let members: BTreeSet<String> = topic_subscriptions::table
                    .filter(topic_subscriptions::topic_key.eq_any(&wanted))
                    .select(topic_subscriptions::recipient_id)
                    .load::<String>(conn)?
                    .into_iter()
                    .collect();
                let members = members
                    .iter()
                    .map(|m| {
                        RecipientId::parse(m)
                            .map_err(|e| DbError::Corrupt(format!("topic_subscriptions {m}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut unknown: Vec<TopicKey> = keys_not_in(&wanted, &found);
                unknown.sort();
                unknown.dedup();
                Ok((members, unknown))
            })
            .await
    }
}

fn keys_not_in(wanted: &[String], found: &BTreeSet<String>) -> Vec<TopicKey> {
    wanted
        .iter()
        .filter(|k| !found.contains(*k))
        .filter_map(|k| TopicKey::parse(k).ok())
        .collect()
}

/// Routing rules on the Diesel [`Database`]: one row per version, never updated.
#[derive(Debug, Clone)]
pub struct DieselRoutingRulesRepository {
    db: Database,
}

impl DieselRoutingRulesRepository {
    /// A repository on `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn decode(version: i64, json: &str) -> Result<RoutingRules, DbError> {
    let raw: Vec<RawRule> = serde_json::from_str(json)
        .map_err(|e| DbError::Corrupt(format!("routing_rule_versions {version}: {e}")))?;
    RoutingRules::from_raw(&raw).map_err(|errors| {
        DbError::Corrupt(format!(
            "routing_rule_versions {version}: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}

#[async_trait]
impl RoutingRulesRepository for DieselRoutingRulesRepository {
    async fn current(&self) -> Result<Option<RulesVersion>, RepositoryError> {
        self.db
            .call(|conn| {
                let Some((version, rules, created_at)) = routing_rule_versions::table
                    .order(routing_rule_versions::version.desc())
                    .select((
                        routing_rule_versions::version,
                        routing_rule_versions::rules,
                        routing_rule_versions::created_at,
                    ))
                    .first::<(i64, String, chrono::NaiveDateTime)>(conn)
                    .optional()?
                else {
                    return Ok(None);
                };
                Ok(Some(RulesVersion {
                    version,
                    rules: decode(version, &rules)?,
                    created_at: Some(utc(created_at)),
                }))
            })
            .await
    }

    async fn store(&self, rules: &RoutingRules) -> Result<RulesVersion, RepositoryError> {
        let json = serde_json::to_string(&rules.to_raw())
            .map_err(|e| RepositoryError::Corrupt(format!("routing rules: {e}")))?;
        let now = self.db.now();
        let rules = rules.clone();
        let attempt = |json: String| {
            let at = db_time(now);
            self.db.call(move |conn| {
                write_transaction(conn, |conn| {
                    let newest: Option<i64> = routing_rule_versions::table
                        .select(diesel::dsl::max(routing_rule_versions::version))
                        .first(conn)?;
                    let version = newest.unwrap_or(0) + 1;
                    diesel::insert_into(routing_rule_versions::table)
                        .values((
                            routing_rule_versions::version.eq(version),
                            routing_rule_versions::rules.eq(&json),
                            routing_rule_versions::created_at.eq(at),
                        ))
                        .execute(conn)?;
                    Ok(version)
                })
            })
        };
        // Two concurrent stores on PostgreSQL may pick the same number: the loser's insert is
        // refused by the primary key; it tries once more on top of the winner's version.
        let version = match attempt(json.clone()).await {
            Err(RepositoryError::Conflict(_)) => attempt(json).await?,
            other => other?,
        };
        Ok(RulesVersion {
            version,
            rules,
            created_at: Some(utc(db_time(now))),
        })
    }
}
