//! Digests (issue 13, "Digests"): a recipient may ask for a channel's non-`critical`
//! notifications to be gathered and sent as one message at the end of a daily or weekly window.
//!
//! The preference document's `digest` key:
//!
//! ```json
//! {"email": {"frequency": "daily", "at": "08:00"},
//!  "telegram": {"frequency": "weekly", "day": "monday", "at": "09:00"}}
//! ```
//!
//! `off` by default (a channel not named, or `{"frequency": "off"}`). Only outbound channels
//! are digested: the inbox is the record, never batched. A window ends at `at`, local time in
//! the recipient's zone, every day (`daily`) or every `day` of the week (`weekly`); the window is
//! the half-open interval `(previous end, end]`. Local times are resolved as the J-1 reminders
//! resolve them ([`crate::reminders::resolve_local`]): a time skipped by a spring-forward gap
//! moves forward past the gap, a time repeated by a fall-back takes the earlier instant; a
//! daily window across a DST change is therefore 23 or 25 hours long, never skipped or doubled.
//!
//! Pure: callers pass the instant and the zone.

use chrono::{DateTime, Datelike, Days, NaiveTime, Utc, Weekday};
use serde_json::{json, Value};

use crate::error::ValidationError;
use crate::recipient::TimeZone;
use crate::reminders::resolve_local;

/// How often a digested channel's window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestFrequency {
    /// Every day at the schedule's `at`.
    Daily,
    /// Every week, on this day, at the schedule's `at`.
    Weekly(Weekday),
}

/// One channel's digest schedule: when its windows end, local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestSchedule {
    frequency: DigestFrequency,
    at: NaiveTime,
}

/// One digest window, UTC: the notifications batched after `start` and up to `end` (inclusive)
/// go out in the digest sent at `end`. `end` with the recipient and channel is the digest's
/// idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestWindow {
    /// The previous window's end (exclusive).
    pub start: DateTime<Utc>,
    /// This window's end (inclusive): when its digest goes out.
    pub end: DateTime<Utc>,
}

const DAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

fn day_name(day: Weekday) -> &'static str {
    DAYS.iter()
        .find(|(_, d)| *d == day)
        .map_or("monday", |(name, _)| name)
}

impl DigestSchedule {
    /// A daily schedule ending at `at`, local time.
    pub fn daily(at: NaiveTime) -> Self {
        Self {
            frequency: DigestFrequency::Daily,
            at,
        }
    }

    /// A weekly schedule ending on `day` at `at`, local time.
    pub fn weekly(day: Weekday, at: NaiveTime) -> Self {
        Self {
            frequency: DigestFrequency::Weekly(day),
            at,
        }
    }

    /// How often its windows end.
    pub fn frequency(self) -> DigestFrequency {
        self.frequency
    }

    /// When its windows end, local time.
    pub fn at(self) -> NaiveTime {
        self.at
    }

    /// Parses one channel's entry at `field` (`digest.email`): `{"frequency": "daily" |
    /// "weekly" | "off", "day"?: "monday"…"sunday" (weekly only, required there), "at": "HH:MM"
    /// (required unless off)}`. `Ok(None)` for `off`.
    ///
    /// # Errors
    /// Every [`ValidationError`] found: `<field>` (not an object), `<field>.frequency`,
    /// `<field>.day`, `<field>.at` (missing or malformed), `<field>.<key>` (unknown key).
    pub fn parse_entry(field: &str, value: &Value) -> Result<Option<Self>, Vec<ValidationError>> {
        let mut errors = Vec::new();
        let Some(object) = value.as_object() else {
            return Err(vec![ValidationError::new(
                field,
                "must be an object {\"frequency\": \"daily|weekly|off\", \"day\"?, \"at\": \"HH:MM\"}",
            )]);
        };
        for key in object
            .keys()
            .filter(|k| !matches!(k.as_str(), "frequency" | "day" | "at"))
        {
            errors.push(ValidationError::new(
                format!("{field}.{key}"),
                "unknown field; expected frequency, day and at",
            ));
        }
        let frequency = match object.get("frequency").and_then(Value::as_str) {
            Some(f @ ("daily" | "weekly" | "off")) => Some(f),
            _ => {
                errors.push(ValidationError::new(
                    format!("{field}.frequency"),
                    "must be \"daily\", \"weekly\" or \"off\"",
                ));
                None
            }
        };
        let day = match (frequency, object.get("day")) {
            (Some("weekly"), None) => {
                errors.push(ValidationError::new(format!("{field}.day"), "missing"));
                None
            }
            (Some("weekly") | None, Some(raw)) => {
                let day = raw
                    .as_str()
                    .and_then(|r| DAYS.iter().find(|(name, _)| *name == r))
                    .map(|(_, d)| *d);
                if day.is_none() {
                    errors.push(ValidationError::new(
                        format!("{field}.day"),
                        "must be a day of the week in English, lower case (monday…sunday)",
                    ));
                }
                day
            }
            (Some(_), Some(_)) => {
                errors.push(ValidationError::new(
                    format!("{field}.day"),
                    "only a weekly digest has a day",
                ));
                None
            }
            (_, None) => None,
        };
        let at = match (frequency, object.get("at")) {
            (Some("off"), None) => None,
            (_, None) => {
                errors.push(ValidationError::new(format!("{field}.at"), "missing"));
                None
            }
            (_, Some(raw)) => crate::preferences::time_of_day(&format!("{field}.at"), raw)
                .map_err(|e| errors.push(e))
                .ok(),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(match (frequency, day, at) {
            (Some("daily"), _, Some(at)) => Some(Self::daily(at)),
            (Some("weekly"), Some(day), Some(at)) => Some(Self::weekly(day, at)),
            _ => None,
        })
    }

    /// The entry as stored and served: `{"frequency": "daily", "at": "HH:MM"}` or
    /// `{"frequency": "weekly", "day": "monday", "at": "HH:MM"}`.
    pub fn to_json(self) -> Value {
        let at = self.at.format("%H:%M").to_string();
        match self.frequency {
            DigestFrequency::Daily => json!({"frequency": "daily", "at": at}),
            DigestFrequency::Weekly(day) => {
                json!({"frequency": "weekly", "day": day_name(day), "at": at})
            }
        }
    }

    /// The window `at` falls in, for a recipient in `zone`: its end is the first window end at
    /// or after `at` (an end closes its own window, `(start, end]`), its start the end before.
    /// DST-resolved as the module says.
    pub fn window_containing(self, at: DateTime<Utc>, zone: TimeZone) -> DigestWindow {
        let end = self.end_at_or_after(at, zone);
        DigestWindow {
            start: self.end_before(end, zone),
            end,
        }
    }

    /// The window ends of local day `day`, if it is one of the schedule's days.
    fn end_on(self, day: chrono::NaiveDate, zone: TimeZone) -> Option<DateTime<Utc>> {
        match self.frequency {
            DigestFrequency::Weekly(weekday) if day.weekday() != weekday => None,
            _ => Some(resolve_local(zone, day.and_time(self.at))),
        }
    }

    /// Candidate local days around `at`: from two days before to nine after (a week and the
    /// widest UTC offsets either side).
    fn days_around(at: DateTime<Utc>, zone: TimeZone) -> impl Iterator<Item = chrono::NaiveDate> {
        let local = at.with_timezone(&zone.tz()).date_naive();
        let first = local.checked_sub_days(Days::new(9)).unwrap_or(local);
        (0..19).filter_map(move |n| first.checked_add_days(Days::new(n)))
    }

    /// The first window end at or after `at`.
    pub fn end_at_or_after(self, at: DateTime<Utc>, zone: TimeZone) -> DateTime<Utc> {
        Self::days_around(at, zone)
            .filter_map(|day| self.end_on(day, zone))
            .find(|end| *end >= at)
            .unwrap_or(at)
    }

    /// The last window end strictly before `at`.
    pub fn end_before(self, at: DateTime<Utc>, zone: TimeZone) -> DateTime<Utc> {
        Self::days_around(at, zone)
            .filter_map(|day| self.end_on(day, zone))
            .filter(|end| *end < at)
            .last()
            .unwrap_or(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn utc(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn paris() -> TimeZone {
        TimeZone::parse("Europe/Paris").unwrap()
    }

    fn hm(raw: &str) -> NaiveTime {
        NaiveTime::parse_from_str(raw, "%H:%M").unwrap()
    }

    fn window(start: &str, end: &str) -> DigestWindow {
        DigestWindow {
            start: utc(start),
            end: utc(end),
        }
    }

    #[rstest]
    // Winter (UTC+1): 08:00 Paris is 07:00Z.
    #[case::winter(
        "2027-01-12T10:00:00Z",
        window("2027-01-12T07:00:00Z", "2027-01-13T07:00:00Z")
    )]
    // An end closes its own window.
    #[case::at_the_end(
        "2027-01-13T07:00:00Z",
        window("2027-01-12T07:00:00Z", "2027-01-13T07:00:00Z")
    )]
    // Spring forward on 2027-03-28 (02:00 → 03:00): the window holding it is 23 hours long.
    #[case::spring_forward(
        "2027-03-27T12:00:00Z",
        window("2027-03-27T07:00:00Z", "2027-03-28T06:00:00Z")
    )]
    // Fall back on 2027-10-31 (03:00 → 02:00): 25 hours long.
    #[case::fall_back(
        "2027-10-30T12:00:00Z",
        window("2027-10-30T06:00:00Z", "2027-10-31T07:00:00Z")
    )]
    fn a_daily_window_ends_at_the_local_time_across_dst(
        #[case] at: &str,
        #[case] expected: DigestWindow,
    ) {
        let schedule = DigestSchedule::daily(hm("08:00"));
        assert_eq!(schedule.window_containing(utc(at), paris()), expected);
    }

    #[test]
    fn a_daily_end_inside_a_gap_moves_past_it_and_one_in_a_repeated_hour_takes_the_first() {
        // 02:30 does not exist in Paris on 2027-03-28: the first instant after the gap, 03:00
        // local (01:00Z). The day after, 02:30 is 00:30Z again.
        let gap = DigestSchedule::daily(hm("02:30"));
        assert_eq!(
            gap.window_containing(utc("2027-03-27T12:00:00Z"), paris()),
            window("2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z")
        );
        assert_eq!(
            gap.window_containing(utc("2027-03-28T01:00:01Z"), paris()),
            window("2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z")
        );
        // 02:30 happens twice on 2027-10-31: the first (00:30Z), once.
        let repeated = DigestSchedule::daily(hm("02:30"));
        assert_eq!(
            repeated.window_containing(utc("2027-10-31T01:00:00Z"), paris()),
            window("2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z")
        );
    }

    #[test]
    fn a_weekly_window_ends_on_its_day_across_dst() {
        // Mondays 09:00 Paris: 2027-03-22 is UTC+1 (08:00Z), 2027-03-29 UTC+2 (07:00Z).
        let schedule = DigestSchedule::weekly(Weekday::Mon, hm("09:00"));
        assert_eq!(
            schedule.window_containing(utc("2027-03-25T12:00:00Z"), paris()),
            window("2027-03-22T08:00:00Z", "2027-03-29T07:00:00Z")
        );
        let montreal = TimeZone::parse("America/Montreal").unwrap();
        // Montreal springs forward 2027-03-14; Mondays 09:00 are 14:00Z then 13:00Z.
        assert_eq!(
            schedule.window_containing(utc("2027-03-10T00:00:00Z"), montreal),
            window("2027-03-08T14:00:00Z", "2027-03-15T13:00:00Z")
        );
    }

    fn fields(value: Value) -> Vec<String> {
        let mut fields: Vec<String> = DigestSchedule::parse_entry("digest.email", &value)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        fields.sort();
        fields
    }

    #[rstest]
    #[case::not_an_object(json!("daily"), &["digest.email"])]
    #[case::bad_frequency(json!({"frequency": "hourly", "at": "08:00"}), &["digest.email.frequency"])]
    #[case::bad_at(json!({"frequency": "daily", "at": "8h"}), &["digest.email.at"])]
    #[case::missing_at(json!({"frequency": "daily"}), &["digest.email.at"])]
    #[case::weekly_without_day(json!({"frequency": "weekly", "at": "09:00"}), &["digest.email.day"])]
    #[case::bad_day(json!({"frequency": "weekly", "day": "lundi", "at": "09:00"}), &["digest.email.day"])]
    #[case::daily_with_day(json!({"frequency": "daily", "day": "monday", "at": "09:00"}), &["digest.email.day"])]
    #[case::unknown_key(json!({"frequency": "daily", "at": "09:00", "tz": "UTC"}), &["digest.email.tz"])]
    fn every_bad_field_of_an_entry_is_named(#[case] value: Value, #[case] expected: &[&str]) {
        assert_eq!(fields(value), expected);
    }

    #[rstest]
    #[case::daily(json!({"frequency": "daily", "at": "08:00"}))]
    #[case::weekly(json!({"frequency": "weekly", "day": "monday", "at": "09:00"}))]
    fn an_entry_round_trips(#[case] value: Value) {
        let schedule = DigestSchedule::parse_entry("digest.email", &value)
            .unwrap()
            .unwrap();
        assert_eq!(schedule.to_json(), value);
    }

    #[test]
    fn off_is_no_schedule() {
        assert_eq!(
            DigestSchedule::parse_entry("digest.email", &json!({"frequency": "off"})),
            Ok(None)
        );
    }
}
