//! J-1 reminders: when an assigned artist is reminded of a planning.
//!
//! The reminder goes out the day before the planning starts, at a configured local time
//! (`CLAIRON_REMINDER_LOCAL_TIME`, 18:00 by default) in the *recipient's* time zone, else the
//! planning's. "The day before" is the calendar day before the start date as seen in that same
//! zone. Daylight-saving transitions are resolved as RFC 5545 (iCalendar, §3.3.5) resolves local
//! times: a local time that does not exist (skipped by a spring-forward) moves forward to the
//! first valid instant after the gap; an ambiguous one (repeated by a fall-back) takes the earlier
//! of its two instants.
//!
//! Pure: no clock is read here; callers pass `now`.

use chrono::{
    DateTime, Days, LocalResult, NaiveDateTime, NaiveTime, TimeDelta, TimeZone as _, Utc,
};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::planning::PlanningId;
use crate::recipient::{RecipientId, TimeZone};

/// The local time of day reminders go out at (`HH:MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderTime(NaiveTime);

impl ReminderTime {
    /// Parses `HH:MM` (24-hour clock).
    ///
    /// # Errors
    /// [`ValidationError`] on `reminder_local_time` when it is not `HH:MM`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        NaiveTime::parse_from_str(raw.trim(), "%H:%M")
            .map(Self)
            .map_err(|_| {
                ValidationError::new(
                    "reminder_local_time",
                    format!("{raw:?} is not a time of day as HH:MM (24-hour clock)"),
                )
            })
    }

    /// The time of day.
    pub fn time(self) -> NaiveTime {
        self.0
    }
}

impl Default for ReminderTime {
    /// 18:00.
    fn default() -> Self {
        Self(NaiveTime::from_hms_opt(18, 0, 0).unwrap_or(NaiveTime::MIN))
    }
}

/// What to do about one artist's reminder when an assignment arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderPlan {
    /// Deliver it at this instant (UTC), in the future.
    At(DateTime<Utc>),
    /// The reminder time has passed but the planning has not started: deliver it at once.
    Now,
    /// The planning has started (or is over): no reminder.
    None,
}

/// The instant of `local` in `zone`, DST-resolved: a skipped local time moves to the first valid
/// instant after the gap, an ambiguous one takes the earlier instant.
pub fn resolve_local(zone: TimeZone, local: NaiveDateTime) -> DateTime<Utc> {
    let tz = zone.tz();
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: the first valid instant after it is the transition itself, the first
            // whole minute at which the local clock exists again (IANA gaps are whole minutes,
            // at most a few hours). Reminder times are whole minutes too.
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += TimeDelta::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            // Unreachable with real zone data; fall back to reading the local time as UTC.
            local.and_utc()
        }
    }
}

/// When the J-1 reminder of a planning starting at `starts_at` goes out, for a recipient in
/// `zone`, at local time `at`.
pub fn reminder_instant(
    starts_at: DateTime<Utc>,
    zone: TimeZone,
    at: ReminderTime,
) -> DateTime<Utc> {
    let start_day = starts_at.with_timezone(&zone.tz()).date_naive();
    let day_before = start_day
        .checked_sub_days(Days::new(1))
        .unwrap_or(start_day);
    resolve_local(zone, day_before.and_time(at.time()))
}

/// Whether and when to remind, seen at `now`: at [`reminder_instant`] when that is still ahead;
/// at once when it has passed but the planning has not started; never once it has started.
pub fn plan_reminder(
    starts_at: DateTime<Utc>,
    zone: TimeZone,
    at: ReminderTime,
    now: DateTime<Utc>,
) -> ReminderPlan {
    if now >= starts_at {
        return ReminderPlan::None;
    }
    let when = reminder_instant(starts_at, zone, at);
    if when > now {
        ReminderPlan::At(when)
    } else {
        ReminderPlan::Now
    }
}

/// The cancellation key of one artist's reminder of one planning: `reminder:{planning}:{recipient}`.
/// At most one pending reminder exists per key, so replays never double it.
pub fn reminder_key(planning: &PlanningId, recipient: &RecipientId) -> String {
    format!("{}{}", reminder_key_prefix(planning), recipient.as_str())
}

/// What every reminder key of `planning` starts with: `reminder:{planning}:`.
pub fn reminder_key_prefix(planning: &PlanningId) -> String {
    format!("reminder:{}:", planning.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn zone(name: &str) -> TimeZone {
        TimeZone::parse(name).unwrap()
    }

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn time(raw: &str) -> ReminderTime {
        ReminderTime::parse(raw).unwrap()
    }

    #[rstest]
    // Ordinary days: 18:00 local the day before.
    #[case::montreal_winter(
        "2027-03-10T20:00:00-05:00",
        "America/Montreal",
        "18:00",
        "2027-03-09T23:00:00Z"
    )]
    #[case::paris_summer(
        "2027-04-10T20:00:00+02:00",
        "Europe/Paris",
        "18:00",
        "2027-04-09T16:00:00Z"
    )]
    // The day before the start *in the recipient's zone*: 01:15 in Paris is the 17th there.
    #[case::day_is_the_recipients(
        "2027-03-16T20:15:00-04:00",
        "Europe/Paris",
        "18:00",
        "2027-03-16T17:00:00Z"
    )]
    // The reminder day is before the change, the start after it: each side its own offset.
    #[case::montreal_across_the_change(
        "2027-03-15T19:00:00-04:00",
        "America/Montreal",
        "18:00",
        "2027-03-14T22:00:00Z"
    )]
    #[case::paris_across_the_change(
        "2027-03-29T19:00:00+02:00",
        "Europe/Paris",
        "18:00",
        "2027-03-28T16:00:00Z"
    )]
    // Spring forward: Montréal skips 02:00–03:00 on 2027-03-14, Paris 02:00–03:00 on 2027-03-28.
    #[case::montreal_in_the_gap(
        "2027-03-15T10:00:00-04:00",
        "America/Montreal",
        "02:30",
        "2027-03-14T07:00:00Z"
    )]
    #[case::paris_in_the_gap(
        "2027-03-29T10:00:00+02:00",
        "Europe/Paris",
        "02:30",
        "2027-03-28T01:00:00Z"
    )]
    #[case::montreal_gap_start(
        "2027-03-15T10:00:00-04:00",
        "America/Montreal",
        "02:00",
        "2027-03-14T07:00:00Z"
    )]
    #[case::montreal_after_the_gap(
        "2027-03-15T10:00:00-04:00",
        "America/Montreal",
        "03:00",
        "2027-03-14T07:00:00Z"
    )]
    // Fall back: Montréal repeats 01:00–02:00 on 2027-11-07, Paris 02:00–03:00 on 2027-10-31.
    #[case::montreal_ambiguous(
        "2027-11-08T10:00:00-05:00",
        "America/Montreal",
        "01:30",
        "2027-11-07T05:30:00Z"
    )]
    #[case::paris_ambiguous(
        "2027-11-01T10:00:00+01:00",
        "Europe/Paris",
        "02:30",
        "2027-10-31T00:30:00Z"
    )]
    fn the_reminder_is_the_day_before_at_local_time_dst_resolved(
        #[case] starts_at: &str,
        #[case] zone_name: &str,
        #[case] local: &str,
        #[case] expected: &str,
    ) {
        assert_eq!(
            reminder_instant(utc(starts_at), zone(zone_name), time(local)),
            utc(expected)
        );
    }

    #[rstest]
    #[case::ahead("2027-03-09T12:00:00Z", ReminderPlan::At(utc("2027-03-09T23:00:00Z")))]
    #[case::passed_but_not_started("2027-03-10T09:00:00Z", ReminderPlan::Now)]
    #[case::exactly_at_the_reminder("2027-03-09T23:00:00Z", ReminderPlan::Now)]
    #[case::started("2027-03-11T01:00:00Z", ReminderPlan::None)]
    #[case::over("2027-03-12T00:00:00Z", ReminderPlan::None)]
    fn an_assignment_is_reminded_later_at_once_or_not_at_all(
        #[case] now: &str,
        #[case] expected: ReminderPlan,
    ) {
        let starts_at = utc("2027-03-10T20:00:00-05:00");
        assert_eq!(
            plan_reminder(starts_at, zone("America/Montreal"), time("18:00"), utc(now)),
            expected
        );
    }

    #[test]
    fn the_reminder_time_is_hh_mm_and_defaults_to_six_pm() {
        assert_eq!(ReminderTime::default(), time("18:00"));
        assert_eq!(
            time(" 07:05 ").time(),
            NaiveTime::from_hms_opt(7, 5, 0).unwrap()
        );
        for bad in ["18h", "25:00", "", "18:00:00pm"] {
            assert!(ReminderTime::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_cancellation_key_names_the_planning_and_the_recipient() {
        assert_eq!(
            reminder_key(
                &PlanningId::parse("pl-00042").unwrap(),
                &RecipientId::parse("artist-0001").unwrap()
            ),
            "reminder:pl-00042:artist-0001"
        );
    }
}
