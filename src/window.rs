//! The time window of a hunt (`scan --since/--until`): which alerts are shown, by their record's
//! `eventTime`, and which days of a CloudTrail S3 tree can hold them.
//!
//! A bound is a date (`2024-06-01`, a whole UTC day: `--since` from its first instant, `--until`
//! through its last) or an RFC 3339 time with an offset (`2024-06-01T12:00:00Z`, `...+02:00`),
//! parsed by `jiff`. Both bounds are inclusive.
//!
//! It decides nothing about records (the rule does) and lists nothing (`s3.rs` maps
//! [`TimeWindow::key_days`] onto the key layout).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::fmt;

/// Inclusive bounds on `eventTime`; `None` is unbounded. `TimeWindow::default()` holds every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeWindow {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// A bound that is neither a date nor an RFC 3339 time, or bounds in the wrong order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowError(String);

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WindowError {}

/// How late CloudTrail may deliver a file after its last event, for choosing key days: a file lands
/// in the folder of its delivery day (UTC), typically about 5 minutes after the events in it (AWS
/// does not guarantee it), so the last minutes of the `--until` day are read from the next day's
/// folder too.
pub const DELIVERY_ALLOWANCE: SignedDuration = SignedDuration::from_hours(24);

impl TimeWindow {
    /// The window from the text of `--since` and `--until`.
    pub fn parse(since: Option<&str>, until: Option<&str>) -> Result<TimeWindow, WindowError> {
        let since = since.map(|s| parse_bound(s, Bound::Since)).transpose()?;
        let until = until.map(|s| parse_bound(s, Bound::Until)).transpose()?;
        if let (Some(since), Some(until)) = (since, until)
            && since > until
        {
            return Err(WindowError(format!(
                "--since {since} is after --until {until}"
            )));
        }
        Ok(TimeWindow { since, until })
    }

    pub fn is_unbounded(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    /// Whether an alert whose record has this `eventTime` is shown. A time that is missing or not a
    /// timestamp cannot be placed, so it is inside: the window never hides what it cannot rule out.
    pub fn contains_event_time(&self, event_time: Option<&str>) -> bool {
        let Some(time) = event_time.and_then(|t| t.parse::<Timestamp>().ok()) else {
            return true;
        };
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time <= until)
    }

    /// The first and last UTC days whose S3 folders (`.../YYYY/MM/DD/`) can hold records of the
    /// window: from the `--since` day to the day after `--until` (see [`DELIVERY_ALLOWANCE`]).
    pub fn key_days(&self) -> (Option<Date>, Option<Date>) {
        let day = |t: Timestamp| t.to_zoned_datetime(TimeZone::UTC).date();
        let first = self.since.map(day);
        let last = self
            .until
            .map(|t| day(t.checked_add(DELIVERY_ALLOWANCE).unwrap_or(Timestamp::MAX)));
        (first, last)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    Since,
    Until,
}

fn parse_bound(text: &str, bound: Bound) -> Result<Timestamp, WindowError> {
    let flag = match bound {
        Bound::Since => "--since",
        Bound::Until => "--until",
    };
    let invalid = |why: String| {
        WindowError(format!(
            "{flag} {text:?}: {why} (expected a date such as 2024-06-01, a whole UTC day, or an \
             RFC 3339 time with an offset such as 2024-06-01T12:00:00Z)"
        ))
    };
    // A bare date has exactly the ten characters of YYYY-MM-DD; anything longer must be a full
    // timestamp (a date-time without an offset is refused, not read as some time zone).
    if text.len() == 10 {
        let date: Date = text.parse().map_err(|e| invalid(format!("{e}")))?;
        let start = |d: Date| {
            d.to_zoned_datetime(TimeZone::UTC)
                .map(|z| z.timestamp())
                .map_err(|e| invalid(format!("{e}")))
        };
        return match bound {
            Bound::Since => start(date),
            // Through the last instant of the day: the next day's start, minus one nanosecond.
            Bound::Until => match date.tomorrow() {
                Ok(next) => start(next)?
                    .checked_sub(SignedDuration::from_nanos(1))
                    .map_err(|e| invalid(format!("{e}"))),
                Err(_) => Ok(Timestamp::MAX),
            },
        };
    }
    text.parse::<Timestamp>()
        .map_err(|e| invalid(format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(since: Option<&str>, until: Option<&str>) -> TimeWindow {
        TimeWindow::parse(since, until).unwrap()
    }

    #[test]
    fn dates_cover_whole_utc_days_and_bounds_are_inclusive() {
        let w = window(Some("2024-06-02"), Some("2024-06-03"));
        assert!(!w.contains_event_time(Some("2024-06-01T23:59:59Z")));
        assert!(w.contains_event_time(Some("2024-06-02T00:00:00Z")));
        assert!(w.contains_event_time(Some("2024-06-03T23:59:59.999Z")));
        assert!(!w.contains_event_time(Some("2024-06-04T00:00:00Z")));
        let w = window(
            Some("2024-06-02T10:00:00+02:00"),
            Some("2024-06-02T08:30:00Z"),
        );
        assert!(!w.contains_event_time(Some("2024-06-02T07:59:59Z")));
        assert!(w.contains_event_time(Some("2024-06-02T08:00:00Z")));
        assert!(w.contains_event_time(Some("2024-06-02T08:30:00Z")));
        assert!(!w.contains_event_time(Some("2024-06-02T08:30:01Z")));
    }

    #[test]
    fn a_time_that_cannot_be_placed_is_inside() {
        let w = window(Some("2024-06-02"), None);
        assert!(w.contains_event_time(None));
        assert!(w.contains_event_time(Some("yesterday")));
        assert!(!w.contains_event_time(Some("2024-06-01T00:00:00Z")));
        assert!(TimeWindow::default().contains_event_time(Some("1999-01-01T00:00:00Z")));
    }

    #[test]
    fn bad_bounds_are_refused_with_the_flag_and_the_expected_forms() {
        for (since, until) in [
            (Some("2024-13-01"), None),
            (Some("2024-06-01T12:00:00"), None),
            (None, Some("last week")),
            (Some("2024-06-03"), Some("2024-06-02")),
        ] {
            let e = TimeWindow::parse(since, until).unwrap_err().to_string();
            assert!(e.contains("--since") || e.contains("--until"), "{e}");
        }
        let e = TimeWindow::parse(Some("2024-06-01T12:00:00"), None).unwrap_err();
        assert!(e.to_string().contains("2024-06-01T12:00:00Z"), "{e}");
    }

    #[test]
    fn key_days_run_from_the_since_day_to_the_day_after_until() {
        let w = window(Some("2024-06-02T23:00:00-05:00"), Some("2024-06-05"));
        let (first, last) = w.key_days();
        assert_eq!(first, Some("2024-06-03".parse().unwrap()));
        assert_eq!(last, Some("2024-06-06".parse().unwrap()));
        assert_eq!(TimeWindow::default().key_days(), (None, None));
    }
}
