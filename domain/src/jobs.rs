//! Scheduled jobs, as rules: a job's name, its cron schedule in a time zone (DST resolved), and
//! the chains `after = "parent"` draws between jobs (no unknown parent, no cycle).
//!
//! Issue 13 ("Scheduled jobs and chaining") and seed 003's orchestrator: a 01:00 sync that
//! triggers the report only when it succeeded. Cron expressions are the classic 5 fields
//! (minute hour day-of-month month day-of-week), parsed by the `croner` crate.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use chrono::{DateTime, Utc};

use crate::error::ValidationError;
use crate::recipient::TimeZone;

/// The longest job name, in characters.
pub const MAX_JOB_NAME: usize = 64;

/// A job's name: 1 to [`MAX_JOB_NAME`] characters of ASCII letters, digits, `_`, `-` and `.`
/// (`sync-gazelle`, `lease_reaper`); it appears in URLs, `job_runs.job` and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobName(String);

impl JobName {
    /// Parses a job name.
    ///
    /// # Errors
    /// [`ValidationError`] on field `job` when blank, too long, `.`/`..`, or holding another
    /// character.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.chars().count() <= MAX_JOB_NAME
            && raw != "."
            && raw != ".."
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "job",
                format!(
                    "must be 1 to {MAX_JOB_NAME} ASCII letters, digits, '_', '-' or '.' (not . or ..)"
                ),
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 5-field cron expression read in a time zone: when a scheduled job's occurrences fall.
///
/// A local time that a DST change skips (02:30 on a spring-forward night) fires at the first
/// instant after the gap; a local time that happens twice (the autumn fall-back hour) fires
/// once, at its first instant. Occurrences are whole minutes.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    cron: croner::Cron,
    zone: TimeZone,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.zone == other.zone
    }
}

impl CronSchedule {
    /// Parses `expression` (5 fields: minute hour day-of-month month day-of-week; lists, ranges,
    /// steps and names as cron has them) in `zone`.
    ///
    /// # Errors
    /// [`ValidationError`] on field `schedule` when it has not exactly 5 fields or `croner`
    /// refuses it.
    pub fn parse(expression: &str, zone: TimeZone) -> Result<Self, ValidationError> {
        let fields = expression.split_whitespace().count();
        if fields != 5 {
            return Err(ValidationError::new(
                "schedule",
                format!(
                    "{expression:?} has {fields} fields; a cron schedule has 5 (minute hour day-of-month month day-of-week)"
                ),
            ));
        }
        let cron = croner::Cron::from_str(expression).map_err(|e| {
            ValidationError::new(
                "schedule",
                format!("{expression:?} is not a cron schedule: {e}"),
            )
        })?;
        Ok(Self {
            expression: expression.to_owned(),
            cron,
            zone,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone its fields are read in.
    pub fn zone(&self) -> TimeZone {
        self.zone
    }

    /// The first occurrence strictly after `after` (UTC), or `None` when there is none (a
    /// 30 February).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone.tz());
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Why a set of chained jobs is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// `job` runs `after` a job that does not exist.
    #[error("job {job:?}: after = {after:?} names no job")]
    UnknownParent {
        /// The chained job.
        job: String,
        /// The parent it names.
        after: String,
    },
    /// Following `after` from `job` comes back to it.
    #[error("job {job:?}: after makes a cycle ({})", cycle.join(" → "))]
    Cycle {
        /// A job on the cycle.
        job: String,
        /// The cycle, from `job` back to it.
        cycle: Vec<String>,
    },
}

/// Checks the chains of `jobs` (each job's name with the parent it runs after, if any): every
/// parent exists among `jobs` and no chain comes back on itself. A job may have several children
/// but one parent.
///
/// # Errors
/// The first [`ChainError`] in name order.
pub fn check_chains<'a>(
    jobs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), ChainError> {
    let parents: BTreeMap<&str, Option<&str>> = jobs.into_iter().collect();
    for (&job, &after) in &parents {
        let Some(first) = after else { continue };
        let mut seen = BTreeSet::from([job]);
        let mut path = vec![job.to_owned()];
        let mut current = first;
        loop {
            let Some(&next) = parents.get(current) else {
                return Err(ChainError::UnknownParent {
                    job: path.last().cloned().unwrap_or_default(),
                    after: current.to_owned(),
                });
            };
            path.push(current.to_owned());
            if !seen.insert(current) {
                return Err(ChainError::Cycle {
                    job: job.to_owned(),
                    cycle: path,
                });
            }
            match next {
                Some(parent) => current = parent,
                None => break,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use rstest::rstest;

    fn montreal() -> TimeZone {
        TimeZone::parse("America/Montreal").unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[rstest]
    #[case::winter_is_utc_minus_5(utc(2027, 1, 10, 12, 0), utc(2027, 1, 11, 6, 0))]
    #[case::summer_is_utc_minus_4(utc(2027, 7, 10, 12, 0), utc(2027, 7, 11, 5, 0))]
    #[case::the_night_clocks_go_forward_still_winter(
        utc(2027, 3, 13, 12, 0),
        utc(2027, 3, 14, 6, 0)
    )]
    #[case::the_day_after_clocks_went_forward(utc(2027, 3, 14, 12, 0), utc(2027, 3, 15, 5, 0))]
    #[case::the_night_clocks_go_back(utc(2027, 11, 6, 12, 0), utc(2027, 11, 7, 5, 0))]
    fn a_daily_01_00_job_runs_at_01_00_local_time_whatever_the_offset(
        #[case] after: DateTime<Utc>,
        #[case] expected: DateTime<Utc>,
    ) {
        let schedule = CronSchedule::parse("0 1 * * *", montreal()).unwrap();
        assert_eq!(schedule.next_after(after), Some(expected));
    }

    #[test]
    fn a_local_time_skipped_by_the_spring_change_fires_once_after_the_gap() {
        // 2027-03-14 02:30 does not exist in Montreal (02:00 → 03:00, 07:00 UTC).
        let schedule = CronSchedule::parse("30 2 * * *", montreal()).unwrap();
        let next = schedule.next_after(utc(2027, 3, 14, 5, 0)).unwrap();
        assert!(next >= utc(2027, 3, 14, 7, 0), "{next}");
        assert!(next < utc(2027, 3, 15, 0, 0), "{next}");
    }

    #[test]
    fn a_local_time_repeated_by_the_autumn_change_fires_once() {
        // 2027-11-07 01:30 happens twice in Montreal (05:30 and 06:30 UTC).
        let schedule = CronSchedule::parse("30 1 * * *", montreal()).unwrap();
        let first = schedule.next_after(utc(2027, 11, 7, 4, 0)).unwrap();
        let second = schedule.next_after(first).unwrap();
        assert_eq!(first, utc(2027, 11, 7, 5, 30));
        assert!(second >= utc(2027, 11, 8, 0, 0), "{second}");
    }

    #[rstest]
    #[case::six_fields("0 0 1 * * *")]
    #[case::four_fields("0 1 * *")]
    #[case::out_of_range("61 1 * * *")]
    #[case::words("every night")]
    fn a_schedule_that_is_not_a_5_field_cron_is_refused_on_its_field(#[case] raw: &str) {
        let err = CronSchedule::parse(raw, montreal()).unwrap_err();
        assert_eq!(err.field, "schedule");
    }

    #[rstest]
    #[case::kebab("sync-gazelle", true)]
    #[case::snake("lease_reaper", true)]
    #[case::blank("", false)]
    #[case::dot_dot("..", false)]
    #[case::space("sync gazelle", false)]
    #[case::slash("a/b", false)]
    fn job_names_are_url_safe_words(#[case] raw: &str, #[case] ok: bool) {
        assert_eq!(JobName::parse(raw).is_ok(), ok);
    }

    #[test]
    fn chains_to_existing_parents_are_accepted() {
        assert_eq!(
            check_chains([
                ("sync", None),
                ("report", Some("sync")),
                ("archive", Some("report"))
            ]),
            Ok(())
        );
    }

    #[test]
    fn a_chain_to_an_unknown_job_is_refused_naming_both() {
        assert_eq!(
            check_chains([("report", Some("sync"))]),
            Err(ChainError::UnknownParent {
                job: "report".into(),
                after: "sync".into()
            })
        );
    }

    #[test]
    fn a_chain_that_comes_back_on_itself_is_refused() {
        let err = check_chains([("a", Some("b")), ("b", Some("a")), ("c", None)]).unwrap_err();
        assert!(
            matches!(err, ChainError::Cycle { ref job, .. } if job == "a"),
            "{err}"
        );
        assert!(check_chains([("a", Some("a"))]).is_err());
    }
}
