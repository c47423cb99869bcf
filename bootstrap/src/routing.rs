//! `clairon routing import FILE.toml` and `clairon routing export`: the routing rules as TOML,
//! one `[[rule]]` table per rule with the fields of `PUT /api/v1/routing-rules`:
//!
//! ```toml
//! [[rule]]
//! event = "sync.failed"
//! topics = ["admins"]
//! channels = ["in_app", "email", "telegram"]
//! priority = "high"
//! ```

use std::sync::Arc;

use anyhow::Context as _;
use clairon_adapters::persistence::{Database, DieselRoutingRulesRepository};
use clairon_application::commands::{PutRoutingRules, PutRoutingRulesHandler};
use clairon_domain::{RawRule, RoutingRules};
use serde::{Deserialize, Serialize};

/// The TOML document: `[[rule]]` tables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// Parses and validates a TOML rule set.
///
/// # Errors
/// A TOML syntax error (with its line), or every invalid field named `rules[i].field` (the
/// i-th `[[rule]]`, from 0).
pub fn parse(text: &str) -> anyhow::Result<RoutingRules> {
    let file: RulesFile = toml::from_str(text).context("not a rule file")?;
    RoutingRules::from_raw(&file.rule).map_err(|errors| {
        anyhow::anyhow!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

/// Writes `rules` as TOML.
///
/// # Errors
/// Only if TOML cannot express a value, which does not happen with validated rules.
pub fn to_toml(rules: &RoutingRules) -> anyhow::Result<String> {
    Ok(toml::to_string(&RulesFile {
        rule: rules.to_raw(),
    })?)
}

fn handler(db: &Database) -> PutRoutingRulesHandler {
    PutRoutingRulesHandler::new(Arc::new(DieselRoutingRulesRepository::new(db.clone())))
}

/// Validates the TOML `text` and stores it as the next version; returns the version number.
///
/// # Errors
/// As [`parse`], or the database failing; nothing is stored then.
pub async fn import(db: &Database, text: &str) -> anyhow::Result<i64> {
    let rules = parse(text)?;
    let stored = handler(db).execute(PutRoutingRules { rules }).await?;
    Ok(stored.version)
}

/// The rules in force as TOML, headed by a comment naming their version (0: the built-in
/// default set).
///
/// # Errors
/// The database failing.
pub async fn export(db: &Database) -> anyhow::Result<String> {
    let current = handler(db).current().await?;
    Ok(format!(
        "# Clairon routing rules, version {}{}\n{}",
        current.version,
        if current.version == 0 {
            " (the built-in default set)"
        } else {
            ""
        },
        to_toml(&current.rules)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_file_reads_back_as_it_was_written() {
        let text = r#"
[[rule]]
event = "sync.failed"
topics = ["admins"]
channels = ["in_app", "email", "telegram"]
priority = "high"

[[rule]]
event = "project.*"
"#;
        let rules = parse(text).unwrap();
        assert_eq!(rules.rules().len(), 2);
        assert_eq!(parse(&to_toml(&rules).unwrap()).unwrap(), rules);
    }

    #[test]
    fn a_bad_rule_is_named_by_its_place() {
        let err = parse(
            "[[rule]]\nevent = \"a.b\"\n[[rule]]\nevent = \"c.d\"\nchannels = [\"pigeon\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("rules[1].channels[0]"), "{err}");
    }
}
