//! Time as a dependency, so validity checks can be tested at any instant.

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;

    fn unix_now(&self) -> i64 {
        match self.now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        }
    }
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Civil date (year, month, day) from days since 1970-01-01, proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil_from_days`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day), UTC, of a unix time.
pub(crate) fn civil_date(unix: i64) -> (i64, u32, u32) {
    civil_from_days(unix.div_euclid(86_400))
}

/// `YYYY-MM-DD` as the unix time of its midnight, UTC; years 1 to 9999 only (the arithmetic
/// would overflow for years near i64's limits, and no date we are given lies outside them).
pub(crate) fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    let known = (1..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d);
    if parts.next().is_some() || !known {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject dates that do not exist (2026-02-30) instead of rolling them over.
    (civil_from_days(days) == (y, m, d)).then_some(days * 86_400)
}

fn split(unix: i64) -> (i64, u32, u32, i64, i64, i64, usize) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60, weekday)
}

/// `2026-11-23T14:03:46Z`
pub(crate) fn iso8601(unix: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// HL7 DTM in UTC, as XDS metadata has its times: `20261123140346`
pub(crate) fn hl7_dtm(unix: i64) -> String {
    let (y, mo, d, h, mi, s, _) = split(unix);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// RFC 5322 date-time in UTC: `Mon, 23 Nov 2026 14:03:46 +0000`
pub(crate) fn rfc5322(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s, wd) = split(unix);
    format!("{}, {d} {} {y:04} {h:02}:{mi:02}:{s:02} +0000", DAYS[wd], MONTHS[mo as usize - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_refuses_impossible_ones() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-23").map(iso8601).as_deref(), Some("2026-11-23T00:00:00Z"));
        assert_eq!(parse_date("2024-02-29").map(iso8601).as_deref(), Some("2024-02-29T00:00:00Z"));
        assert_eq!(parse_date("9999-12-31").map(iso8601).as_deref(), Some("9999-12-31T00:00:00Z"));
        // Found by the api_json fuzz target: a year near i64's limit overflowed (a panic).
        let huge = "8198552921648689646-06-01";
        for bad in ["2026-02-30", "2026-13-01", "2026-11", "yesterday", "2026-11-23-1", huge, "0-01-01", "10000-01-01"]
        {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_442_626), "2026-11-23T14:03:46Z");
        assert_eq!(rfc5322(1_795_442_626), "Mon, 23 Nov 2026 14:03:46 +0000");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(-86_400), "1969-12-31T00:00:00Z");
    }
}
