//! `PutRoutingRules`: replace the routing rules in force by a new, validated set
//! (`PUT /api/v1/routing-rules`, `clairon routing import`). The previous versions are kept;
//! the newest is in force.

use std::sync::Arc;

use clairon_domain::RoutingRules;

use crate::ports::{RepositoryError, RoutingRulesRepository, RulesVersion};

/// Store a new version of the routing rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRoutingRules {
    /// The whole set, validated by [`RoutingRules::from_raw`].
    pub rules: RoutingRules,
}

/// Handles [`PutRoutingRules`].
pub struct PutRoutingRulesHandler {
    rules: Arc<dyn RoutingRulesRepository>,
}

impl PutRoutingRulesHandler {
    /// Builds the handler.
    pub fn new(rules: Arc<dyn RoutingRulesRepository>) -> Self {
        Self { rules }
    }

    /// Stores the set as the next version and returns it.
    ///
    /// # Errors
    /// [`RepositoryError`]; nothing is stored then.
    pub async fn execute(&self, command: PutRoutingRules) -> Result<RulesVersion, RepositoryError> {
        let stored = self.rules.store(&command.rules).await?;
        tracing::info!(
            version = stored.version,
            rules = stored.rules.rules().len(),
            "routing rules replaced"
        );
        Ok(stored)
    }

    /// The set in force (version 0: the built-in default, never stored).
    ///
    /// # Errors
    /// [`RepositoryError`] when the rules cannot be read.
    pub async fn current(&self) -> Result<RulesVersion, RepositoryError> {
        crate::routing::rules_in_force(self.rules.as_ref()).await
    }
}
