//! Coalesced planning changes (issue 13): several `modified` events of one planning within a
//! window (`CLAIRON_COALESCE_SECS`, [`DEFAULT_WINDOW_SECS`] by default) become, per recipient and
//! outbound channel, one message with the net change.
//!
//! The rules, all pure:
//! - Who takes part ([`role`]): a `planning.modified` notice below `critical` is held
//!   ([`CoalesceRole::Coalesce`]); a `planning.cancelled` notice makes the held modifications of
//!   its planning moot ([`CoalesceRole::Supersede`]). A `critical` notice is never held.
//! - The window is fixed from the first event: the outbound deliveries of the first held notice
//!   are due at its creation plus the window, and each later notice that coalesces with it keeps
//!   that due time ([`coalesce`]), so the delay a recipient sees is bounded by the window, however
//!   many changes follow (Knock-style batching rather than a window restarting at each event).
//! - An earlier notice can still be coalesced while nothing of it went out or is going out on an
//!   outbound channel ([`is_open`]).
//! - The net change ([`net_change`]): per field, the first `from` → the last `to`, fields in the
//!   order they first changed; a field back to its first value disappears.
//!
//! In-app notices are never held: the inbox records each event at once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::delivery::DeliveryStatus;
use crate::notification::{EventType, Metadata, Priority};
use crate::planning::PlanningId;

/// Default window, in seconds (`CLAIRON_COALESCE_SECS`): 2 minutes.
pub const DEFAULT_WINDOW_SECS: u64 = 120;

/// The skip reason detail of new outbound deliveries whose net change is empty
/// (`coalesced: no net change`).
pub const NO_NET_CHANGE: &str = "no net change";

/// The metadata key of the net change a notice's outbound channels render
/// (`{"changes": [...], "notifications": [ids coalesced into it]}`).
pub const METADATA_KEY: &str = "coalesced";

/// What a notification does in coalescing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoalesceRole {
    /// A modification: its outbound deliveries wait for the window, and it takes in the earlier
    /// open modifications of its planning for the same recipient.
    Coalesce,
    /// A cancellation: the open modifications of its planning for the same recipient are moot
    /// (their outbound deliveries are skipped); it is not held itself.
    Supersede,
}

/// Whether and how a notification of `event_type` and `priority` with `metadata` (a planning
/// notice's template context, [`crate::rules::planning_notices`]) takes part in coalescing, and
/// the planning it is keyed on (`metadata.planning.id`). `None`: it does not (another event
/// type, a `critical` modification, or no planning id).
pub fn role(
    event_type: &EventType,
    priority: Priority,
    metadata: &Metadata,
) -> Option<(PlanningId, CoalesceRole)> {
    let role = match event_type.as_str() {
        "planning.modified" if priority < Priority::Critical => CoalesceRole::Coalesce,
        "planning.cancelled" => CoalesceRole::Supersede,
        _ => return None,
    };
    let planning = metadata
        .get("planning")
        .and_then(|p| p.get("id"))
        .and_then(Value::as_str)
        .and_then(|id| PlanningId::parse(id).ok())?;
    Some((planning, role))
}

/// One field's change as a notice tells it: `{field, from, to}`, values already written for
/// the recipient (dates in their zone and language), as `rules` puts them in `changes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DescribedChange {
    /// The field's wire name (`starts_at`, `location`, ...).
    pub field: String,
    /// Before.
    pub from: Value,
    /// After.
    pub to: Value,
}

/// The net change of several events' changes, oldest first: per field, the first `from` → the
/// last `to`, in the order fields first changed; a field whose last `to` equals its first
/// `from` disappears. Empty when nothing is left.
pub fn net_change<'a>(
    events: impl IntoIterator<Item = &'a [DescribedChange]>,
) -> Vec<DescribedChange> {
    let mut net: Vec<DescribedChange> = Vec::new();
    for change in events.into_iter().flatten() {
        match net.iter_mut().find(|c| c.field == change.field) {
            Some(seen) => seen.to = change.to.clone(),
            None => net.push(change.clone()),
        }
    }
    net.retain(|c| c.from != c.to);
    net
}

/// The changes a notice's outbound channels tell: its net change when it took in earlier
/// notices ([`METADATA_KEY`]), else its own `changes`. Entries that are not `{field, from, to}`
/// are left out.
pub fn changes_told(metadata: &Metadata) -> Vec<DescribedChange> {
    let listed = metadata
        .get(METADATA_KEY)
        .and_then(|c| c.get("changes"))
        .or_else(|| metadata.get("changes"));
    listed
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .collect()
}

/// Whether an earlier notice, whose outbound deliveries stand at `outbound`, can still be
/// coalesced: one of them is `pending` and none went out or is going out (`sending`, `sent`,
/// `retrying`). Skipped, cancelled, failed, dead and batched ones do not count either way.
pub fn is_open(outbound: impl IntoIterator<Item = DeliveryStatus>) -> bool {
    let mut pending = false;
    for status in outbound {
        match status {
            DeliveryStatus::Pending => pending = true,
            DeliveryStatus::Sending | DeliveryStatus::Sent | DeliveryStatus::Retrying => {
                return false
            }
            DeliveryStatus::Failed
            | DeliveryStatus::Dead
            | DeliveryStatus::Skipped
            | DeliveryStatus::Cancelled
            | DeliveryStatus::Batched => {}
        }
    }
    pending
}

/// An earlier open notice of the same planning and recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenNotice {
    /// What its outbound channels would tell ([`changes_told`]).
    pub changes: Vec<DescribedChange>,
    /// The earliest due time (UTC) of its pending outbound deliveries.
    pub due: Option<DateTime<Utc>>,
}

/// What the newest notice's outbound deliveries become.
#[derive(Debug, Clone, PartialEq)]
pub struct Coalesced {
    /// The net change they tell; empty: they are skipped `coalesced: no net change`.
    pub changes: Vec<DescribedChange>,
    /// When they fall due (UTC): the earliest due time of the notices taken in (the window is
    /// fixed from the first event); `None` when none was taken in (their own).
    pub due: Option<DateTime<Utc>>,
}

impl Coalesced {
    /// Whether nothing is left to tell.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Coalesces `open` (the earlier open notices, oldest first) into the newest notice, which
/// changed `latest`.
pub fn coalesce(open: &[OpenNotice], latest: &[DescribedChange]) -> Coalesced {
    Coalesced {
        changes: net_change(
            open.iter()
                .map(|n| n.changes.as_slice())
                .chain(std::iter::once(latest)),
        ),
        due: open.iter().filter_map(|n| n.due).min(),
    }
}

/// The `coalesced` entry to store in the newest notice's metadata: the net change and the ids
/// of the notices it took in, oldest first.
pub fn metadata_entry(coalesced: &Coalesced, taken_in: &[String]) -> Value {
    serde_json::json!({ "changes": coalesced.changes, "notifications": taken_in })
}

/// A notice's template context as its outbound channels render it: `changes` replaced by its
/// net change when it took in earlier notices. Other contexts are left as they are.
pub fn outbound_context(context: &mut Metadata) {
    if let Some(net) = context
        .get(METADATA_KEY)
        .and_then(|c| c.get("changes"))
        .cloned()
    {
        context.insert("changes".into(), net);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use serde_json::json;

    fn change(field: &str, from: &str, to: &str) -> DescribedChange {
        DescribedChange {
            field: field.into(),
            from: json!(from),
            to: json!(to),
        }
    }

    fn metadata(value: Value) -> Metadata {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn three_modifications_make_one_change_from_the_first_from_to_the_last_to() {
        let first = [change("starts_at", "20 h 15", "20 h 30")];
        let second = [change("starts_at", "20 h 30", "21 h 00")];
        let third = [
            change("starts_at", "21 h 00", "21 h 15"),
            change("location", "Salle A", "Salle B"),
        ];

        let net = net_change([&first[..], &second[..], &third[..]]);

        assert_eq!(
            net,
            vec![
                change("starts_at", "20 h 15", "21 h 15"),
                change("location", "Salle A", "Salle B")
            ]
        );
    }

    #[test]
    fn a_field_changed_back_to_its_first_value_disappears() {
        let first = [
            change("title", "Carmen", "Carmen (reprise)"),
            change("location", "Salle A", "Salle B"),
        ];
        let second = [change("title", "Carmen (reprise)", "Carmen")];

        let net = net_change([&first[..], &second[..]]);

        assert_eq!(net, vec![change("location", "Salle A", "Salle B")]);
    }

    #[test]
    fn nothing_is_left_when_every_field_came_back() {
        let first = [change("title", "Carmen", "Tosca")];
        let second = [change("title", "Tosca", "Aida")];
        let third = [change("title", "Aida", "Carmen")];

        let coalesced = coalesce(
            &[
                OpenNotice {
                    changes: first.to_vec(),
                    due: None,
                },
                OpenNotice {
                    changes: second.to_vec(),
                    due: None,
                },
            ],
            &third,
        );

        assert!(coalesced.is_empty(), "{coalesced:?}");
    }

    #[test]
    fn the_coalesced_notice_keeps_the_earliest_due_time_so_the_window_is_fixed_from_the_first_event(
    ) {
        let first_due = Utc.with_ymd_and_hms(2027, 2, 9, 1, 31, 0).unwrap();
        let later_due = Utc.with_ymd_and_hms(2027, 2, 9, 1, 32, 0).unwrap();
        let open = [
            OpenNotice {
                changes: vec![change("title", "a", "b")],
                due: Some(later_due),
            },
            OpenNotice {
                changes: vec![change("title", "b", "c")],
                due: Some(first_due),
            },
        ];

        let coalesced = coalesce(&open, &[change("title", "c", "d")]);

        assert_eq!(coalesced.due, Some(first_due));
        assert_eq!(coalesced.changes, vec![change("title", "a", "d")]);
        assert_eq!(coalesce(&[], &[change("title", "c", "d")]).due, None);
    }

    #[test]
    fn an_earlier_notice_is_open_while_something_is_pending_and_nothing_went_out() {
        use DeliveryStatus::*;
        assert!(is_open([Pending, Skipped]));
        assert!(
            is_open([Failed, Pending]),
            "a chain's next link still waits"
        );
        assert!(!is_open([Pending, Sent]), "one channel already told them");
        assert!(!is_open([Sending]));
        assert!(!is_open([Retrying, Pending]));
        assert!(!is_open([Skipped, Cancelled]), "nothing is waiting");
        assert!(!is_open([]));
    }

    #[test]
    fn only_modifications_below_critical_are_held_and_cancellations_supersede() {
        let context = metadata(json!({ "planning": { "id": "pl-1" } }));
        let modified = EventType::parse("planning.modified").unwrap();
        let cancelled = EventType::parse("planning.cancelled").unwrap();
        let assigned = EventType::parse("planning.assigned").unwrap();
        let pl = PlanningId::parse("pl-1").unwrap();

        assert_eq!(
            role(&modified, Priority::High, &context),
            Some((pl.clone(), CoalesceRole::Coalesce))
        );
        assert_eq!(role(&modified, Priority::Critical, &context), None);
        assert_eq!(
            role(&cancelled, Priority::Critical, &context),
            Some((pl, CoalesceRole::Supersede))
        );
        assert_eq!(role(&assigned, Priority::Normal, &context), None);
        assert_eq!(role(&modified, Priority::High, &Metadata::new()), None);
    }

    #[test]
    fn the_outbound_context_tells_the_net_change_and_the_notice_its_own_otherwise() {
        let own = json!([{ "field": "title", "from": "b", "to": "c" }]);
        let mut plain = metadata(json!({ "changes": own }));
        assert_eq!(changes_told(&plain), vec![change("title", "b", "c")]);
        outbound_context(&mut plain);
        assert_eq!(plain["changes"], own, "no net change stored: its own");

        let net = Coalesced {
            changes: vec![change("title", "a", "c")],
            due: None,
        };
        let mut held = metadata(json!({ "changes": own }));
        held.insert(
            METADATA_KEY.into(),
            metadata_entry(&net, &["n-1".to_owned()]),
        );
        assert_eq!(changes_told(&held), net.changes);
        outbound_context(&mut held);
        assert_eq!(
            held["changes"],
            json!([{ "field": "title", "from": "a", "to": "c" }])
        );
    }
}
