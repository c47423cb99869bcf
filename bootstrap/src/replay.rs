//! `clairon replay <dataset.json>`: registers a planning dataset's recipients and feeds its
//! events through the in-process bus, in order, then sends everything and reports the counts.
//!
//! The dataset has the shape of `tests/data/planning-spring-2027.json`:
//! `{"recipients": [...], "events": [...]}`, each event as `POST .../events` takes it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use clairon_adapters::http::extract::parse_json;
use clairon_adapters::http::schema::requests::{PlanningEventBody, RecipientBody};
use clairon_application::commands::{HandlePlanningEvent, UpsertRecipients};
use clairon_application::queries::GetNotification;
use serde::Deserialize;

use crate::startup::Components;

#[derive(Deserialize)]
struct Dataset {
    recipients: Vec<RecipientBody>,
    events: Vec<PlanningEventBody>,
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Recipients registered.
    pub recipients: usize,
    /// Events fed.
    pub events: usize,
    /// Events already handled by an earlier replay.
    pub replayed_events: usize,
    /// Notifications created (or found, for replayed events).
    pub notifications: usize,
    /// Deliveries after draining, by `channel` then `status`.
    pub deliveries: BTreeMap<(String, String), usize>,
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "recipients registered: {}", self.recipients)?;
        writeln!(
            f,
            "events fed: {} ({} already handled before)",
            self.events, self.replayed_events
        )?;
        writeln!(f, "notifications: {}", self.notifications)?;
        for ((channel, status), n) in &self.deliveries {
            writeln!(f, "deliveries {channel:<8} {status:<9} {n}")?;
        }
        Ok(())
    }
}

/// Replays the dataset at `path`.
///
/// # Errors
/// When the file is unreadable or invalid (the first invalid event is named), or a use case fails.
pub async fn replay(components: &Components, path: &Path) -> anyhow::Result<ReplayReport> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let dataset: Dataset =
        parse_json(&raw).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut recipients = Vec::with_capacity(dataset.recipients.len());
    for (i, body) in dataset.recipients.into_iter().enumerate() {
        let id = body
            .id
            .clone()
            .with_context(|| format!("recipients[{i}] has no id"))?;
        recipients.push(
            body.into_recipient(&id)
                .map_err(|e| anyhow::anyhow!("recipients[{i}]: {e}"))?,
        );
    }
    let mut report = ReplayReport {
        recipients: recipients.len(),
        ..ReplayReport::default()
    };
    components
        .handlers
        .upsert_recipients
        .execute(UpsertRecipients { recipients })
        .await?;
    let mut ids = Vec::new();
    for (i, body) in dataset.events.into_iter().enumerate() {
        let planning_id = body.planning_id.clone();
        let event = body
            .into_event(&planning_id)
            .map_err(|e| anyhow::anyhow!("events[{i}]: {e}"))?;
        let handled = components
            .handlers
            .handle_planning_event
            .execute(HandlePlanningEvent { event })
            .await
            .with_context(|| format!("events[{i}]"))?;
        report.events += 1;
        report.replayed_events += usize::from(handled.replayed);
        ids.extend(handled.notifications.into_iter().map(|n| n.id));
    }
    report.notifications = ids.len();
    components.drain().await?;
    for id in ids {
        let details = components
            .handlers
            .get_notification
            .execute(GetNotification { id })
            .await?;
        for d in details.deliveries {
            *report
                .deliveries
                .entry((d.channel.to_owned(), d.status.to_owned()))
                .or_default() += 1;
        }
    }
    Ok(report)
}
