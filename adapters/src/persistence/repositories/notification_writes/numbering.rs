//! Inbox numbering: the per-recipient sequence number (`seq`, 1, 2, 3…, the SSE event ids) each
//! notification gets in its writing transaction.
//!
//! `recipients.last_seq` is bumped with `UPDATE … RETURNING` in the inserting transaction: on
//! PostgreSQL the row lock serialises concurrent writers for one recipient until commit (so
//! numbers are gap-free and commit in order); on SQLite the single writer (`BEGIN IMMEDIATE`)
//! does the same. A scheduled notification is numbered when its first delivery falls due
//! ([`number_due`], called by the claim), so its number follows everything its recipient saw
//! before it.

use std::collections::BTreeMap;

use diesel::prelude::*;

use crate::persistence::connection::{AnyConnection, DbError};
use crate::persistence::repositories::CHUNK;
use crate::persistence::rows::NotificationRow;
use crate::persistence::schema::{notifications, recipients};

/// New notification ids per recipient, in insertion order; the map orders recipients.
type SeqPlan = BTreeMap<String, Vec<String>>;

/// Groups `(notification id, recipient id)` pairs by recipient, keeping their order.
fn seq_plan<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> SeqPlan {
    let mut plan = SeqPlan::new();
    for (id, recipient) in rows {
        plan.entry(recipient.to_owned())
            .or_default()
            .push(id.to_owned());
    }
    plan
}

/// The rows to number when they are inserted: those visible at once. A scheduled notification
/// (`deliver_at`) is numbered when it falls due ([`number_due`]), so its number follows
/// everything the recipient saw before it and a client resuming from `Last-Event-ID` gets it.
fn immediate(rows: &[NotificationRow]) -> SeqPlan {
    seq_plan(
        rows.iter()
            .filter(|r| r.deliver_at.is_none())
            .map(|r| (r.id.as_str(), r.recipient_id.as_str())),
    )
}

/// Numbers the notifications among `ids` that have no number yet (scheduled ones, now due).
pub(crate) fn number_due(conn: &mut AnyConnection, ids: &[String]) -> Result<(), DbError> {
    let unnumbered: Vec<(String, String)> = notifications::table
        .filter(notifications::id.eq_any(ids))
        .filter(notifications::seq.is_null())
        .filter(notifications::cancelled_at.is_null())
        .order(notifications::id.asc())
        .select((notifications::id, notifications::recipient_id))
        .load(conn)?;
    if unnumbered.is_empty() {
        return Ok(());
    }
    let plan = seq_plan(unnumbered.iter().map(|(id, r)| (id.as_str(), r.as_str())));
    let seqs = bump_counters(conn, &plan)?;
    write_seqs(conn, &seqs)
}

/// Reserves one number per new notification on each recipient's counter and returns
/// `(notification id, seq)` pairs.
///
/// Counters are locked in recipient order, so concurrent writers lock alike and cannot
/// deadlock. PostgreSQL takes a chunk of recipients in two statements whatever its size (a
/// `SELECT … ORDER BY id FOR UPDATE`, then one `UPDATE … FROM unnest(…) RETURNING`); SQLite,
/// whose statements are in-process calls under a single writer, bumps them one by one.
fn bump_counters(conn: &mut AnyConnection, plan: &SeqPlan) -> Result<Vec<(String, i64)>, DbError> {
    let mut seqs = Vec::with_capacity(plan.values().map(Vec::len).sum());
    let mut number = |recipient: &str, last: i64| {
        let ids = &plan[recipient];
        let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
        let first = last - count + 1;
        seqs.extend(ids.iter().zip(first..).map(|(id, seq)| (id.clone(), seq)));
    };
    match &mut *conn {
        AnyConnection::Postgresql(pg) if plan.len() > 1 => {
            let recipients: Vec<&String> = plan.keys().collect();
            for chunk in recipients.chunks(CHUNK) {
                for (recipient, last) in bump_counters_pg(pg, chunk, plan)? {
                    number(&recipient, last);
                }
            }
        }
        _ => {
            for (recipient, ids) in plan {
                let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
                let last: i64 = diesel::update(recipients::table.find(recipient))
                    .set(recipients::last_seq.eq(recipients::last_seq + count))
                    .returning(recipients::last_seq)
                    .get_result(conn)?;
                number(recipient, last);
            }
        }
    }
    Ok(seqs)
}

/// A counter an `UPDATE … RETURNING` bumped.
#[derive(QueryableByName)]
struct Bumped {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    last_seq: i64,
}

/// Bumps the counters of `chunk` (sorted recipient ids) by their number of new notifications.
fn bump_counters_pg(
    pg: &mut diesel::PgConnection,
    chunk: &[&String],
    plan: &SeqPlan,
) -> Result<Vec<(String, i64)>, DbError> {
    use diesel::sql_types::{Array, BigInt, Text};

    let ids: Vec<&str> = chunk.iter().map(|r| r.as_str()).collect();
    let counts: Vec<i64> = chunk
        .iter()
        .map(|r| i64::try_from(plan[*r].len()).unwrap_or(i64::MAX))
        .collect();
    // An UPDATE locks rows in whatever order its plan visits them; locking first, in id
    // order, keeps two writers of overlapping recipients from deadlocking.
    diesel::sql_query("SELECT id FROM recipients WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind::<Array<Text>, _>(&ids)
        .execute(pg)?;
    let bumped: Vec<Bumped> = diesel::sql_query(
        "UPDATE recipients AS r SET last_seq = r.last_seq + v.n \
         FROM unnest($1::text[], $2::bigint[]) AS v(id, n) \
         WHERE r.id = v.id RETURNING r.id, r.last_seq",
    )
    .bind::<Array<Text>, _>(&ids)
    .bind::<Array<BigInt>, _>(&counts)
    .load(pg)?;
    if bumped.len() != ids.len() {
        return Err(DbError::Corrupt(format!(
            "recipients: {} of {} counters found while numbering notifications",
            bumped.len(),
            ids.len()
        )));
    }
    Ok(bumped.into_iter().map(|b| (b.id, b.last_seq)).collect())
}

/// Stores the reserved numbers on rows inserted earlier (scheduled notifications now due; new
/// rows carry theirs in the `INSERT`, see [`NumberedRow`]).
fn write_seqs(conn: &mut AnyConnection, seqs: &[(String, i64)]) -> Result<(), DbError> {
    for (id, seq) in seqs {
        diesel::update(notifications::table.find(id))
            .set(notifications::seq.eq(Some(*seq)))
            .execute(conn)?;
    }
    Ok(())
}

/// A new `notifications` row with its inbox number, so one `INSERT` writes both.
#[derive(Insertable)]
#[diesel(table_name = notifications)]
pub(super) struct NumberedRow {
    #[diesel(embed)]
    row: NotificationRow,
    seq: Option<i64>,
}

impl NumberedRow {
    /// The notification's id and inbox number (`None`: scheduled, numbered when due).
    pub(super) fn id_and_seq(&self) -> (&str, Option<i64>) {
        (&self.row.id, self.seq)
    }
}

/// `rows` with the numbers of [`immediate`] ones reserved on their recipients' counters.
pub(super) fn numbered(
    conn: &mut AnyConnection,
    rows: &[NotificationRow],
) -> Result<Vec<NumberedRow>, DbError> {
    let seqs: std::collections::HashMap<String, i64> =
        bump_counters(conn, &immediate(rows))?.into_iter().collect();
    Ok(rows
        .iter()
        .map(|row| NumberedRow {
            seq: seqs.get(&row.id).copied(),
            row: row.clone(),
        })
        .collect())
}
