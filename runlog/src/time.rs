//! UTC timestamps: formatting and parsing of RFC 3339 times without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, now.
#[inline]
pub fn now_ns() -> i64 {
    // Seconds and nanoseconds separately: no 128-bit arithmetic on the hot path.
    fn ns(d: std::time::Duration) -> i64 {
        (d.as_secs() as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(d.subsec_nanos() as i64)
    }
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => ns(d),
        Err(e) => -ns(e.duration()),
    }
}

// Howard Hinnant's civil-from-days and days-from-civil algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year.
    pub year: i64,
    /// Month 1-12.
    pub month: u32,
    /// Day 1-31.
    pub day: u32,
    /// Hour 0-23.
    pub hour: u32,
    /// Minute 0-59.
    pub minute: u32,
    /// Second 0-59.
    pub second: u32,
    /// Nanoseconds 0-999_999_999.
    pub nanos: u32,
}

impl Utc {
    /// Split nanoseconds since the epoch.
    pub fn from_ns(ns: i64) -> Utc {
        let secs = ns.div_euclid(1_000_000_000);
        let nanos = ns.rem_euclid(1_000_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: (sod / 3600) as u32,
            minute: (sod % 3600 / 60) as u32,
            second: (sod % 60) as u32,
            nanos,
        }
    }

    /// Back to nanoseconds since the epoch.
    pub fn to_ns(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days.saturating_mul(86_400)
            .saturating_add((self.hour * 3600 + self.minute * 60 + self.second) as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(self.nanos as i64)
    }
}

/// `2026-11-28T12:10:55.123456Z` (microseconds): the form used in run ids and listings.
pub fn format_micros(ns: i64) -> String {
    let t = Utc::from_ns(ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.nanos / 1000
    )
}

/// `2026-11-28 12:10:55` (seconds, UTC, for listings).
pub fn format_seconds(ns: i64) -> String {
    let t = Utc::from_ns(ns);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// Parse an RFC 3339 UTC time or a prefix of one (`2026-11-28`, `2026-11-28T12:10`,
/// `2026-11-28 12:10:55.5Z`); missing parts are zero. Returns nanoseconds since the epoch.
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let mut dp = date.split('-');
    // Four digits, as RFC 3339 writes years: a longer number is not a year (and would
    // overflow the arithmetic below).
    let year = dp.next()?;
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let month: u32 = dp.next().map_or(Some(1), |m| m.parse().ok())?;
    let day: u32 = dp.next().map_or(Some(1), |d| d.parse().ok())?;
    if dp.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    if !time.is_empty() {
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (time, None),
        };
        let mut tp = hms.split(':');
        hour = tp.next()?.parse().ok()?;
        minute = tp.next().map_or(Some(0), |m| m.parse().ok())?;
        second = tp.next().map_or(Some(0), |m| m.parse().ok())?;
        if tp.next().is_some() || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            nanos = f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32);
        }
    }
    Some(
        Utc {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
        }
        .to_ns(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_known_instants() {
        // 2026-11-28T12:10:55.123456Z
        let ns = 1_795_867_855_123_456_000;
        assert_eq!(format_micros(ns), "2026-11-28T12:10:55.123456Z");
        assert_eq!(parse_utc("2026-11-28T12:10:55.123456Z"), Some(ns));
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(parse_utc("1970-01-01"), Some(0));
        assert_eq!(
            format_micros(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn round_trips_many_days() {
        for d in (-100_000i64..100_000).step_by(997) {
            let ns = d * 86_400_000_000_000 + 3_723_000_000_000;
            assert_eq!(
                parse_utc(&format_micros(ns)),
                Some(ns),
                "{}",
                format_micros(ns)
            );
        }
    }

    #[test]
    fn rejects_garbage() {
        // Bug: a bare number was read as a year (and a long one overflowed in debug builds).
        assert_eq!(parse_utc("1700000000"), None);
        assert_eq!(parse_utc("1796682338803537000"), None);
        assert_eq!(parse_utc("12026-01-01"), None);
        assert_eq!(parse_utc("-2026-01-01"), None);
        assert_eq!(parse_utc("last"), None);
        assert_eq!(parse_utc("2026-13-01"), None);
        assert_eq!(parse_utc("2026-11-28T25:00"), None);
    }
}
