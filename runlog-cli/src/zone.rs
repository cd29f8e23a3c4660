//! The time zone times are shown and read in: local time (`TZ`, else `/etc/localtime`), as
//! journalctl does, or UTC with `--utc`.
//!
//! A time is shown with its offset (`2026-11-28T07:10:55-05:00`; `Z` in UTC), so that it is
//! one unambiguous token, also in the repeated hour when summer time ends, and reads back as
//! a run reference. A time typed without an offset is read in this zone; the repeated hour
//! then means its earlier instance, and an hour skipped when summer time starts is read with
//! the offset before the change (jiff's `compatible` disambiguation, as RFC 5545 does: 02:30
//! on a day that jumps from 02:00 to 03:00 is 03:30). JSON is always UTC; so are run ids.
//!
//! The zone comes from jiff: the system's tz database, and the copy bundled into the binary
//! on a host that has none.

use std::fmt::Write as _;

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// Where times are shown and read.
#[derive(Clone, Debug)]
pub(crate) struct Zone {
    tz: TimeZone,
    /// `--utc` (or no local zone): every time with `Z`.
    utc: bool,
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::utc()
    }
}

impl Zone {
    /// UTC, as `--utc` asks.
    pub(crate) fn utc() -> Zone {
        Zone {
            tz: TimeZone::UTC,
            utc: true,
        }
    }

    /// The local zone: `TZ` (a name like `Europe/Berlin`, a POSIX rule, a file), else
    /// `/etc/localtime`. Without either, UTC, as the C library does. A `TZ` that names no
    /// zone gives UTC and a warning (the C library would use UTC without a word).
    pub(crate) fn local() -> (Zone, Option<String>) {
        match TimeZone::try_system() {
            Ok(tz) => (Zone { tz, utc: false }, None),
            Err(e) => {
                let why = std::env::var_os("TZ").filter(|v| !v.is_empty()).map(|v| {
                    format!(
                        "TZ={v:?} names no time zone this host knows ({e}); times are shown \
                         and read in UTC: set TZ to a zone name like Europe/Berlin, or unset \
                         it to use /etc/localtime"
                    )
                });
                (Zone::utc(), why)
            }
        }
    }

    /// A zone from a name (`America/New_York`), for tests.
    #[cfg(test)]
    pub(crate) fn named(name: &str) -> Zone {
        Zone {
            tz: TimeZone::get(name).expect("a zone in the tz database"),
            utc: false,
        }
    }

    /// What to call the zone in a message: `America/New_York`, or `UTC`.
    pub(crate) fn name(&self) -> &str {
        if self.utc {
            "UTC"
        } else {
            self.tz.iana_name().unwrap_or("the local time zone")
        }
    }

    /// Are times here UTC, shown with `Z` (`--utc`, `TZ=UTC`, `/etc/localtime` UTC)?
    pub(crate) fn is_utc(&self) -> bool {
        self.civil(runlog::time::now_ns()).1 == OffsetText::z()
    }

    /// The civil time of `ns` here, and its offset as written after it (`Z`, `-05:00`).
    pub(crate) fn civil(&self, ns: i64) -> (DateTime, OffsetText) {
        // Every i64 of nanoseconds (years 1677 to 2262) is a Timestamp.
        let ts = Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH);
        let info = self.tz.to_offset_info(ts);
        let offset = info.offset();
        let text = if self.utc || (offset == Offset::UTC && info.abbreviation() == "UTC") {
            OffsetText::z()
        } else {
            OffsetText::of(offset)
        };
        (offset.to_datetime(ts), text)
    }

    /// `2026-11-28T07:10:55-05:00`: a start time in listings, one token, and a valid run
    /// reference for the runs started in that second.
    pub(crate) fn format_seconds(&self, ns: i64) -> String {
        let (dt, off) = self.civil(ns);
        let mut s = String::with_capacity(25);
        push_civil_seconds(&mut s, dt);
        s.push_str(off.as_str());
        s
    }

    /// `2026-11-28T07:10:55.123456-05:00`: a time to the microsecond, as records show it.
    pub(crate) fn format_micros(&self, ns: i64) -> String {
        let (dt, off) = self.civil(ns);
        let mut s = String::with_capacity(32);
        push_civil_seconds(&mut s, dt);
        let _ = write!(s, ".{:06}", dt.subsec_nanosecond() / 1000);
        s.push_str(off.as_str());
        s
    }

    /// The instant a civil time here names: the earlier one in a repeated hour, one with the
    /// offset before the change in a skipped hour. `None` out of range.
    pub(crate) fn to_ns(&self, dt: DateTime) -> Option<i64> {
        let ts = self.tz.to_timestamp(dt).ok()?;
        i64::try_from(ts.as_nanosecond()).ok()
    }

    /// Midnight here of the day `ns` falls in, and `days` days later (before, if negative).
    pub(crate) fn midnight(&self, ns: i64, days: i32) -> Option<i64> {
        let (dt, _) = self.civil(ns);
        let day = dt
            .date()
            .checked_add(jiff::Span::new().try_days(days).ok()?)
            .ok()?;
        self.to_ns(DateTime::from_parts(day, jiff::civil::Time::midnight()))
    }
}

/// `Y-M-DTh:m:s` of a civil time.
fn push_civil_seconds(s: &mut String, dt: DateTime) {
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
}

/// An offset as written after a time: `Z`, `+01:00`, `-05:00` (`+HH:MM:SS` for the odd
/// historic offset with seconds). Fits inline: at most 9 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetText {
    buf: [u8; 9],
    len: u8,
}

impl OffsetText {
    fn z() -> OffsetText {
        let mut buf = [0; 9];
        buf[0] = b'Z';
        OffsetText { buf, len: 1 }
    }

    fn of(offset: Offset) -> OffsetText {
        let secs = offset.seconds();
        let (sign, abs) = if secs < 0 {
            (b'-', secs.unsigned_abs())
        } else {
            (b'+', secs.unsigned_abs())
        };
        let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
        let digit = |n: u32| b'0' + (n % 10) as u8;
        let mut buf = [
            sign,
            digit(h / 10),
            digit(h),
            b':',
            digit(m / 10),
            digit(m),
            b':',
            digit(s / 10),
            digit(s),
        ];
        let len = if s == 0 { 6 } else { 9 };
        buf[len..].fill(0);
        OffsetText {
            buf,
            len: len as u8,
        }
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        // ASCII by construction.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-28T12:10:55.123456Z
    const NS: i64 = 1_795_867_855_123_456_000;

    #[test]
    fn utc_shows_z_as_run_ids_do() {
        let z = Zone::utc();
        assert_eq!(z.format_seconds(NS), "2026-11-28T12:10:55Z");
        assert_eq!(z.format_micros(NS), "2026-11-28T12:10:55.123456Z");
        assert_eq!(
            z.format_micros(NS),
            runlog::time::format_micros(NS),
            "the library's UTC form"
        );
        assert_eq!(
            Zone::named("Etc/UTC").format_seconds(NS),
            "2026-11-28T12:10:55Z"
        );
        assert!(Zone::named("Etc/UTC").is_utc() && z.is_utc());
        assert!(!Zone::named("Europe/London").is_utc());
    }

    #[test]
    fn local_times_carry_their_offset() {
        let ny = Zone::named("America/New_York");
        assert_eq!(ny.format_seconds(NS), "2026-11-28T07:10:55-05:00");
        assert_eq!(ny.format_micros(NS), "2026-11-28T07:10:55.123456-05:00");
        let berlin = Zone::named("Europe/Berlin");
        assert_eq!(berlin.format_seconds(NS), "2026-11-28T13:10:55+01:00");
        // Summer time.
        let july = NS - 140 * 86_400 * 1_000_000_000;
        assert_eq!(berlin.format_seconds(july), "2026-07-11T14:10:55+02:00");
        let kolkata = Zone::named("Asia/Kolkata");
        assert_eq!(kolkata.format_seconds(NS), "2026-11-28T17:40:55+05:30");
        // London in winter is not UTC, though its offset is zero.
        let london = Zone::named("Europe/London");
        assert_eq!(london.format_seconds(NS), "2026-11-28T12:10:55+00:00");
        assert_eq!(
            OffsetText::of(Offset::from_seconds(-17_762).unwrap()).as_str(),
            "-04:56:02"
        );
    }

    #[test]
    fn the_repeated_hour_is_told_apart_by_its_offset() {
        let ny = Zone::named("America/New_York");
        // 2026-11-01T05:30Z and 06:30Z are both 01:30 in New York.
        let first = 1_793_511_000 * 1_000_000_000;
        let second = first + 3600 * 1_000_000_000;
        assert_eq!(ny.format_seconds(first), "2026-11-01T01:30:00-04:00");
        assert_eq!(ny.format_seconds(second), "2026-11-01T01:30:00-05:00");
        let (dt, _) = ny.civil(second);
        assert_eq!(ny.to_ns(dt), Some(first), "the earlier instance");
    }

    #[test]
    fn a_skipped_hour_reads_with_the_offset_before_the_change() {
        let ny = Zone::named("America/New_York");
        // 2026-03-08 jumps from 02:00 to 03:00: 02:30 is read as 02:30-05:00, i.e. 03:30-04:00.
        let dt = jiff::civil::date(2026, 3, 8).at(2, 30, 0, 0);
        let ns = ny.to_ns(dt).unwrap();
        assert_eq!(ny.format_seconds(ns), "2026-03-08T03:30:00-04:00");
        assert_eq!(Zone::utc().format_seconds(ns), "2026-03-08T07:30:00Z");
    }

    #[test]
    fn midnights_are_local_and_days_are_calendar_days() {
        let ny = Zone::named("America/New_York");
        let today = ny.midnight(NS, 0).unwrap();
        assert_eq!(ny.format_seconds(today), "2026-11-28T00:00:00-05:00");
        // Across the end of summer time: 25 hours back is still yesterday's midnight.
        let nov2 = jiff::civil::date(2026, 11, 2).at(0, 30, 0, 0);
        let nov2 = ny.to_ns(nov2).unwrap();
        let nov1 = ny.midnight(nov2, -1).unwrap();
        assert_eq!(ny.format_seconds(nov1), "2026-11-01T00:00:00-04:00");
        assert_eq!(
            Zone::utc().format_seconds(Zone::utc().midnight(NS, -1).unwrap()),
            "2026-11-27T00:00:00Z"
        );
    }
}
