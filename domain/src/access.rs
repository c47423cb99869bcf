//! Who may do what through the HTTP API: the scope of an API key.
//!
//! Three scopes, each a set of routes (the scope matrix of `docs/http-api.md` is the reference):
//! `send` writes what is to be delivered (recipients, notifications, planning events, test
//! messages), `read` reads and acts on inboxes and the delivery history (and issues recipient
//! tokens, which read an inbox), and `admin` may do everything, including erasure and the
//! operator routes. `send` and `read` are disjoint on purpose: a producer's key leaked from a
//! backend cannot read anyone's inbox.

use std::fmt;

use crate::ValidationError;

/// The scope of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiScope {
    /// Ingestion: upsert and import recipients, post notifications and planning events, send a
    /// test message.
    Send,
    /// Reading: recipients, inboxes, notifications, deliveries, exports; marking read; issuing
    /// recipient tokens.
    Read,
    /// Everything, including erasure, delivery retries and `/api/v1/admin/*`.
    Admin,
}

impl ApiScope {
    /// Every scope, narrowest first.
    pub const ALL: [ApiScope; 3] = [ApiScope::Send, ApiScope::Read, ApiScope::Admin];

    /// Parses `send`, `read` or `admin`.
    ///
    /// # Errors
    /// A [`ValidationError`] on `scope` for anything else.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw.trim() {
            "send" => Ok(Self::Send),
            "read" => Ok(Self::Read),
            "admin" => Ok(Self::Admin),
            other => Err(ValidationError::new(
                "scope",
                format!("{other:?} is not one of send, read, admin"),
            )),
        }
    }

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }

    /// Whether a key of this scope may call a route that requires `required`: `admin` may call
    /// everything, `send` and `read` only their own routes.
    pub fn allows(self, required: ApiScope) -> bool {
        self == Self::Admin || self == required
    }
}

impl fmt::Display for ApiScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_and_the_others_only_themselves() {
        for required in ApiScope::ALL {
            assert!(ApiScope::Admin.allows(required));
        }
        assert!(ApiScope::Send.allows(ApiScope::Send));
        assert!(!ApiScope::Send.allows(ApiScope::Read));
        assert!(!ApiScope::Send.allows(ApiScope::Admin));
        assert!(ApiScope::Read.allows(ApiScope::Read));
        assert!(!ApiScope::Read.allows(ApiScope::Send));
        assert!(!ApiScope::Read.allows(ApiScope::Admin));
    }

    #[test]
    fn a_scope_reads_back_from_its_name_and_nothing_else_parses() {
        for scope in ApiScope::ALL {
            assert_eq!(ApiScope::parse(scope.as_str()), Ok(scope));
        }
        assert_eq!(ApiScope::parse("root").unwrap_err().field, "scope");
    }
}
