//! Dates and times as a recipient reads them: in their time zone, in their language.
//!
//! French follows the Office québécois de la langue française and Imprimerie nationale usage
//! ("mardi 16 mars 2027, 20 h 15"); English follows the US style of the Chicago Manual of Style
//! ("Tuesday, March 16, 2027, 8:15 PM"). Day and month names come from chrono's CLDR-derived
//! locale tables; conversion to local time uses the IANA tz database (chrono-tz), so a time on
//! either side of a DST change reads as the wall clock shows it.

use chrono::{DateTime, Utc};

use crate::recipient::{Locale, TimeZone};

fn chrono_locale(locale: Locale) -> chrono::Locale {
    match locale {
        Locale::Fr => chrono::Locale::fr_FR,
        Locale::En => chrono::Locale::en_US,
    }
}

/// The date alone: "mardi 16 mars 2027" / "Tuesday, March 16, 2027".
pub fn format_date(instant: DateTime<Utc>, zone: TimeZone, locale: Locale) -> String {
    let local = instant.with_timezone(&zone.tz());
    let pattern = match locale {
        Locale::Fr => "%A %-d %B %Y",
        Locale::En => "%A, %B %-d, %Y",
    };
    local
        .format_localized(pattern, chrono_locale(locale))
        .to_string()
}

/// The time alone: "20 h 15" / "8:15 PM"; French drops zero minutes ("9 h").
pub fn format_time(instant: DateTime<Utc>, zone: TimeZone, locale: Locale) -> String {
    let local = instant.with_timezone(&zone.tz());
    match locale {
        Locale::Fr if local.format("%M").to_string() == "00" => local.format("%-H h").to_string(),
        Locale::Fr => local.format("%-H h %M").to_string(),
        Locale::En => local.format("%-I:%M %p").to_string(),
    }
}

/// Date and time: "mardi 16 mars 2027, 20 h 15" / "Tuesday, March 16, 2027, 8:15 PM".
pub fn format_datetime(instant: DateTime<Utc>, zone: TimeZone, locale: Locale) -> String {
    format!(
        "{}, {}",
        format_date(instant, zone, locale),
        format_time(instant, zone, locale)
    )
}

/// A span: "mardi 16 mars 2027, 20 h 15 – 22 h 15" when it ends the same local day, else both
/// ends in full.
pub fn format_range(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    zone: TimeZone,
    locale: Locale,
) -> String {
    let same_day = starts_at.with_timezone(&zone.tz()).date_naive()
        == ends_at.with_timezone(&zone.tz()).date_naive();
    if same_day {
        format!(
            "{} – {}",
            format_datetime(starts_at, zone, locale),
            format_time(ends_at, zone, locale)
        )
    } else {
        format!(
            "{} – {}",
            format_datetime(starts_at, zone, locale),
            format_datetime(ends_at, zone, locale)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use rstest::rstest;

    fn montreal() -> TimeZone {
        TimeZone::parse("America/Montreal").unwrap()
    }

    #[rstest]
    #[case(Locale::Fr, "mardi 16 mars 2027, 20 h 15")]
    #[case(Locale::En, "Tuesday, March 16, 2027, 8:15 PM")]
    fn a_time_reads_in_the_recipients_language(#[case] locale: Locale, #[case] expected: &str) {
        // 20:15 in Montréal on 16 March 2027 is EDT (UTC-4), two days after the DST change.
        let instant = Utc.with_ymd_and_hms(2027, 3, 17, 0, 15, 0).unwrap();
        assert_eq!(format_datetime(instant, montreal(), locale), expected);
    }

    #[test]
    fn the_same_wall_clock_hour_on_both_sides_of_a_dst_change_is_shown_as_such() {
        // Montréal springs forward on Sunday 14 March 2027 at 02:00 (EST UTC-5 → EDT UTC-4).
        let before = Utc.with_ymd_and_hms(2027, 3, 13, 15, 0, 0).unwrap(); // 10:00 EST
        let after = Utc.with_ymd_and_hms(2027, 3, 15, 14, 0, 0).unwrap(); // 10:00 EDT
        assert_eq!(format_time(before, montreal(), Locale::Fr), "10 h");
        assert_eq!(format_time(after, montreal(), Locale::Fr), "10 h");
        assert_eq!(
            format_datetime(after, montreal(), Locale::En),
            "Monday, March 15, 2027, 10:00 AM"
        );
    }

    #[test]
    fn the_same_instant_reads_differently_in_paris_and_montreal() {
        let instant = Utc.with_ymd_and_hms(2027, 3, 26, 9, 0, 0).unwrap();
        let paris = TimeZone::parse("Europe/Paris").unwrap();
        assert_eq!(
            format_datetime(instant, paris, Locale::Fr),
            "vendredi 26 mars 2027, 10 h"
        );
        assert_eq!(
            format_datetime(instant, montreal(), Locale::Fr),
            "vendredi 26 mars 2027, 5 h"
        );
    }

    #[test]
    fn a_same_day_range_names_the_day_once() {
        let start = Utc.with_ymd_and_hms(2027, 3, 17, 0, 15, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2027, 3, 17, 2, 15, 0).unwrap();
        assert_eq!(
            format_range(start, end, montreal(), Locale::Fr),
            "mardi 16 mars 2027, 20 h 15 – 22 h 15"
        );
        assert_eq!(
            format_range(
                start,
                end + chrono::Duration::days(1),
                montreal(),
                Locale::En
            ),
            "Tuesday, March 16, 2027, 8:15 PM – Wednesday, March 17, 2027, 10:15 PM"
        );
    }
}
