//! `PutTopic`, `AddTopicMembers`, `RemoveTopicMember`: topics and their members
//! (`PUT /api/v1/topics/{key}`, `POST …/subscribers`, `DELETE …/subscribers/{recipient_id}`).
//!
//! Members must be registered recipients: unknown ids are refused, all listed, and nothing is
//! written.

use std::sync::Arc;

use clairon_domain::{RecipientId, TopicKey, TopicName};

use crate::ports::{RecipientRepository, RepositoryError, TopicRepository, Upserted};

/// Create or replace a topic, its name and every member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutTopic {
    /// The topic.
    pub key: TopicKey,
    /// Its display name.
    pub name: TopicName,
    /// Its members (repeats are kept once).
    pub recipient_ids: Vec<RecipientId>,
}

/// Add members to an existing topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddTopicMembers {
    /// The topic.
    pub key: TopicKey,
    /// The members to add (those already in stay once).
    pub recipient_ids: Vec<RecipientId>,
}

/// Remove one member from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveTopicMember {
    /// The topic.
    pub key: TopicKey,
    /// The member.
    pub recipient_id: RecipientId,
}

/// Why a topic command was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// Some recipient ids are not registered (all listed, sorted).
    #[error("unknown recipients: {}", .0.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
    UnknownRecipients(Vec<RecipientId>),
    /// No topic has this key.
    #[error("topic {0} not found")]
    NotFound(TopicKey),
    /// More members than [`TopicsHandler::MAX_MEMBERS`] in one request.
    #[error("at most {max} recipients per request")]
    TooMany {
        /// The bound.
        max: usize,
    },
    /// The repository failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Handles the topic commands.
pub struct TopicsHandler {
    recipients: Arc<dyn RecipientRepository>,
    topics: Arc<dyn TopicRepository>,
}

impl TopicsHandler {
    /// Most members one request may name.
    pub const MAX_MEMBERS: usize = 10_000;

    /// Builds the handler on its ports.
    pub fn new(recipients: Arc<dyn RecipientRepository>, topics: Arc<dyn TopicRepository>) -> Self {
        Self { recipients, topics }
    }

    /// Checks that every id is a registered recipient; returns them sorted, each once.
    async fn known(&self, ids: &[RecipientId]) -> Result<Vec<RecipientId>, TopicError> {
        if ids.len() > Self::MAX_MEMBERS {
            return Err(TopicError::TooMany {
                max: Self::MAX_MEMBERS,
            });
        }
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        let found: std::collections::HashSet<RecipientId> = self
            .recipients
            .get_many(&ids)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let unknown: Vec<RecipientId> = ids
            .iter()
            .filter(|i| !found.contains(*i))
            .cloned()
            .collect();
        if unknown.is_empty() {
            Ok(ids)
        } else {
            Err(TopicError::UnknownRecipients(unknown))
        }
    }

    /// Creates or replaces the topic.
    ///
    /// # Errors
    /// [`TopicError`]; nothing is written then.
    pub async fn put(&self, command: PutTopic) -> Result<Upserted, TopicError> {
        let members = self.known(&command.recipient_ids).await?;
        Ok(self
            .topics
            .put(&command.key, &command.name, &members)
            .await?)
    }

    /// Adds members.
    ///
    /// # Errors
    /// [`TopicError::NotFound`] for an unknown topic; otherwise as [`TopicsHandler::put`].
    pub async fn add(&self, command: AddTopicMembers) -> Result<(), TopicError> {
        let members = self.known(&command.recipient_ids).await?;
        if self.topics.add_members(&command.key, &members).await? {
            Ok(())
        } else {
            Err(TopicError::NotFound(command.key))
        }
    }

    /// Removes a member; removing someone who is not a member does nothing.
    ///
    /// # Errors
    /// [`TopicError::NotFound`] for an unknown topic; [`TopicError::Repository`].
    pub async fn remove(&self, command: RemoveTopicMember) -> Result<(), TopicError> {
        if self
            .topics
            .remove_member(&command.key, &command.recipient_id)
            .await?
        {
            Ok(())
        } else {
            Err(TopicError::NotFound(command.key))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{MockRecipientRepository, MockTopicRepository};
    use crate::test_support::recipient;

    fn ids(raw: &[&str]) -> Vec<RecipientId> {
        raw.iter().map(|r| RecipientId::parse(r).unwrap()).collect()
    }

    fn registered(known: &'static [&'static str]) -> MockRecipientRepository {
        let mut recipients = MockRecipientRepository::new();
        recipients.expect_get_many().returning(move |wanted| {
            Ok(wanted
                .iter()
                .filter(|id| known.contains(&id.as_str()))
                .map(|id| recipient(id.as_str()))
                .collect())
        });
        recipients
    }

    #[tokio::test]
    async fn a_topic_naming_unknown_recipients_is_refused_with_all_of_them_and_not_written() {
        let mut topics = MockTopicRepository::new();
        topics.expect_put().never();
        let handler = TopicsHandler::new(Arc::new(registered(&["a-1"])), Arc::new(topics));
        let err = handler
            .put(PutTopic {
                key: TopicKey::parse("admins").unwrap(),
                name: TopicName::parse("Admins").unwrap(),
                recipient_ids: ids(&["zz-9", "a-1", "bb-2"]),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, TopicError::UnknownRecipients(u) if *u == ids(&["bb-2", "zz-9"])),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_topic_is_stored_with_its_members_sorted_and_once() {
        let mut topics = MockTopicRepository::new();
        topics
            .expect_put()
            .withf(|_, _, members| members == ids(&["a-1", "b-2"]).as_slice())
            .times(1)
            .returning(|_, _, _| Ok(Upserted::Created));
        let handler = TopicsHandler::new(Arc::new(registered(&["a-1", "b-2"])), Arc::new(topics));
        let outcome = handler
            .put(PutTopic {
                key: TopicKey::parse("admins").unwrap(),
                name: TopicName::parse("Admins").unwrap(),
                recipient_ids: ids(&["b-2", "a-1", "b-2"]),
            })
            .await
            .unwrap();
        assert_eq!(outcome, Upserted::Created);
    }

    #[tokio::test]
    async fn adding_to_a_topic_that_does_not_exist_is_not_found() {
        let mut topics = MockTopicRepository::new();
        topics.expect_add_members().returning(|_, _| Ok(false));
        let handler = TopicsHandler::new(Arc::new(registered(&["a-1"])), Arc::new(topics));
        let err = handler
            .add(AddTopicMembers {
                key: TopicKey::parse("nobody").unwrap(),
                recipient_ids: ids(&["a-1"]),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, TopicError::NotFound(_)), "{err:?}");
    }
}
