//! Times typed on the command line (`--since`, `--until`, run references): local times as
//! listings print them (or with an offset), or durations ago.

use jiff::civil::{Date, DateTime};
use jiff::tz::Offset;
use jiff::Span;

use crate::zone::Zone;

const NS_PER_S: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS_PER_S;

/// `90s`, `30m`, `2h`, `3d`, `1w`, `1h30m`, `500ms` as nanoseconds; `None` if `s` is not one.
fn parse_duration(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" | "sec" | "secs" => NS_PER_S,
            "m" | "min" | "mins" => 60 * NS_PER_S,
            "h" | "hour" | "hours" => 3600 * NS_PER_S,
            "d" | "day" | "days" => DAY_NS,
            "w" | "week" | "weeks" => 7 * DAY_NS,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(total)
}

/// `@<seconds since the epoch>`, with up to 9 decimals (journalctl's form), as nanoseconds;
/// `None` if `s` is not one or does not fit.
fn parse_unix(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('@')?;
    let (secs, frac) = match rest.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) {
        return None;
    }
    let mut ns = secs.parse::<i64>().ok()?.checked_mul(NS_PER_S)?;
    if let Some(f) = frac {
        if !digits(f) || f.len() > 9 {
            return None;
        }
        let scale = 10i64.pow(9 - f.len() as u32);
        ns = ns.checked_add(f.parse::<i64>().ok()? * scale)?;
    }
    Some(ns)
}

/// A time as typed, to the precision typed: `2026-11-28` is that whole day, `2026-11-28T07`
/// that hour, `2026-11-28T07:1` the ten minutes from 07:10, `2026-11-28T07:10:55.5` that tenth
/// of a second.
///
/// The forms: `YYYY[-MM[-DD[(T|t| |-)hh[:mm[:ss[.f]]]]]]` (a `-` between date and time is how
/// the original runlog printed runs: `2026-12-07-22:25:43.772233`), the last field given
/// perhaps cut short, a separator perhaps trailing; then, after a whole hour, minute, second
/// or fraction, an optional offset: `Z`, `+01:00`, `-0500`, `+05`. Without an offset the
/// time is in the zone of the command (local, or UTC with `--utc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Written {
    /// The first civil time it covers.
    from: DateTime,
    /// The first civil time after it.
    to: DateTime,
    /// The offset typed, if any.
    offset: Option<Offset>,
    /// Fields given: 1 the year ... 6 the second, 7 a fraction.
    fields: u8,
    /// Is the last field given whole (not cut short)?
    whole: bool,
}

/// The date and time fields: digits, the separators that may come before it, the smallest
/// value.
const FIELDS: [(usize, &[u8], i64); 6] = [
    (4, b"", 0),
    (2, b"-", 1),
    (2, b"-", 1),
    (2, b"Tt -", 0),
    (2, b":", 0),
    (2, b":", 0),
];

/// `+01:00`, `-0500`, `+05`, `+01:00:30`, `Z` as an offset; `None` if `s` is not one.
fn parse_offset(s: &[u8]) -> Option<Offset> {
    if s == b"Z" || s == b"z" {
        return Some(Offset::UTC);
    }
    let (sign, rest) = match s.split_first()? {
        (b'+', r) => (1, r),
        (b'-', r) => (-1, r),
        _ => return None,
    };
    // Two-digit groups, with `:` between them or with none at all.
    let digits: Vec<u8> = if rest.contains(&b':') {
        let groups: Vec<&[u8]> = rest.split(|&b| b == b':').collect();
        if groups.iter().any(|g| g.len() != 2) {
            return None;
        }
        groups.concat()
    } else {
        rest.to_vec()
    };
    if !matches!(digits.len(), 2 | 4 | 6) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pair = |i: usize| {
        digits
            .get(i..i + 2)
            .map_or(0, |d| i32::from(d[0] - b'0') * 10 + i32::from(d[1] - b'0'))
    };
    let (h, m, sec) = (pair(0), pair(2), pair(4));
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60 + sec)).ok()
}

impl Written {
    /// Read `s`; `None` if it is not a time in one of the forms.
    pub(crate) fn parse(s: &str) -> Option<Written> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut vals = [0i64, 1, 1, 0, 0, 0];
        let mut fields = 0u8;
        // The last field given and how many of its digits.
        let mut cut: Option<usize> = None;
        for (f, &(width, seps, _)) in FIELDS.iter().enumerate() {
            if f > 0 {
                match b.get(i) {
                    Some(c) if seps.contains(c) => i += 1,
                    _ => break,
                }
                if i == b.len() {
                    // A trailing separator: `2026-11-28T` is the day.
                    break;
                }
            }
            let n = b[i..]
                .iter()
                .take(width)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 {
                return None;
            }
            vals[f] = s.get(i..i + n)?.parse().ok()?;
            i += n;
            fields += 1;
            if n < width {
                // Cut short: nothing may follow.
                if i != b.len() {
                    return None;
                }
                cut = Some(n);
                break;
            }
        }
        let mut nanos = 0i64;
        let mut frac_digits = 0usize;
        if fields == 6 && b.get(i) == Some(&b'.') {
            i += 1;
            frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if frac_digits > 9 {
                return None;
            }
            if frac_digits > 0 {
                let f: i64 = s.get(i..i + frac_digits)?.parse().ok()?;
                nanos = f * 10i64.pow(9 - frac_digits as u32);
                fields = 7;
                i += frac_digits;
            }
        }
        let offset = if i < b.len() {
            // After a whole hour at least.
            if fields < 4 || cut.is_some() {
                return None;
            }
            Some(parse_offset(&b[i..])?)
        } else {
            None
        };
        // The span of the last field given: [lo, hi) of its values, clamped to its range.
        let last = usize::from(fields) - 1;
        let (lo, count) = if fields == 7 {
            (nanos, 10i64.pow(9 - frac_digits as u32))
        } else {
            let (width, _, min) = FIELDS[last];
            let scale = 10i64.pow((width - cut.unwrap_or(width)) as u32);
            let max = match last {
                0 => 9999,
                1 => 12,
                2 => i64::from(
                    Date::new(i16::try_from(vals[0]).ok()?, i8::try_from(vals[1]).ok()?, 1)
                        .ok()?
                        .days_in_month(),
                ),
                3 => 23,
                _ => 59,
            };
            let lo = (vals[last] * scale).max(min);
            let hi = ((vals[last] + 1) * scale).min(max + 1);
            if lo >= hi {
                return None;
            }
            vals[last] = lo;
            (lo, hi - lo)
        };
        let small = |v: i64| i8::try_from(v).ok();
        let from = DateTime::new(
            i16::try_from(vals[0]).ok()?,
            small(vals[1])?,
            small(vals[2])?,
            small(vals[3])?,
            small(vals[4])?,
            small(vals[5])?,
            i32::try_from(if fields == 7 { lo } else { 0 }).ok()?,
        )
        .ok()?;
        let span = match last {
            0 => Span::new().try_years(count),
            1 => Span::new().try_months(count),
            2 => Span::new().try_days(count),
            3 => Span::new().try_hours(count),
            4 => Span::new().try_minutes(count),
            5 => Span::new().try_seconds(count),
            _ => Span::new().try_nanoseconds(count),
        }
        .ok()?;
        Some(Written {
            from,
            to: from.checked_add(span).ok()?,
            offset,
            fields,
            whole: cut.is_none(),
        })
    }

    /// Was an offset typed (else the time is in the command's zone)?
    pub(crate) fn has_offset(&self) -> bool {
        self.offset.is_some()
    }

    /// Does it give the date at least, each field whole (what `--since` takes)?
    fn is_a_whole_date(&self) -> bool {
        self.fields >= 3 && self.whole
    }

    /// The instants it covers, `[from, to)` in ns since the epoch, read in `zone` unless it
    /// has an offset; `None` out of range.
    pub(crate) fn span(&self, zone: &Zone) -> Option<(i64, i64)> {
        let ns = |dt: DateTime| match self.offset {
            Some(o) => i64::try_from(o.to_timestamp(dt).ok()?.as_nanosecond()).ok(),
            None => zone.to_ns(dt),
        };
        Some((ns(self.from)?, ns(self.to)?))
    }
}

/// Parse a time for `option` (named in the error) relative to `now_ns`, in `zone`: `now`,
/// `today`, `yesterday` (midnights in `zone`), a duration ago (`2h`, `2h ago`, `-2h`), seconds
/// since the epoch (`@1700000000`, `@1700000000.25`), or a time or a prefix of one down to the
/// day at least (`2026-11-28T03:00:00`, `2026-11-28 03:00`, `2026-11-28`; see [`Written`]),
/// in `zone` unless it has an offset (`2026-11-28T03:00Z`, `2026-11-28T03:00+01:00`). A bare
/// number is refused with a hint (it could mean a year or seconds); nothing overflows: a value
/// out of range is an error.
pub(crate) fn parse_time(option: &str, s: &str, now_ns: i64, zone: &Zone) -> Result<i64, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        // Neither a year nor a count of seconds without saying so (journalctl's `@`).
        return Err(format!(
            "{option} {s:?} is not a time but a bare number: write @{t} for seconds since \
             the epoch, or a time like 2026-11-28T03:00:00, or a duration ago like 2h"
        ));
    }
    let d = t.strip_suffix("ago").map(str::trim_end).unwrap_or(t);
    let d = d.strip_prefix('-').unwrap_or(d);
    let parsed = match t {
        "now" => Some(now_ns),
        "today" => zone.midnight(now_ns, 0),
        "yesterday" => zone.midnight(now_ns, -1),
        _ if t.starts_with('@') => parse_unix(t),
        _ => parse_duration(d)
            .map(|ns| now_ns.saturating_sub(ns))
            .or_else(|| {
                Written::parse(t)
                    .filter(Written::is_a_whole_date)
                    .and_then(|w| w.span(zone))
                    .map(|(from, _)| from)
            }),
    };
    parsed.ok_or_else(|| {
        let zone = if zone.is_utc() {
            "UTC".to_owned()
        } else {
            format!("local time, {}", zone.name())
        };
        format!(
            "{option} {s:?} is not a time: use a time like 2026-11-28T03:00:00 ({zone}; \
             add Z or an offset like +01:00 for another), '2026-11-28 03:00' or 2026-11-28, \
             today, yesterday, a duration ago like 90s, 30m, 2h, 3d, 1w, or @<seconds since \
             the epoch> (each in range)"
        )
    })
}

/// A `[since, until)` range of times; either end open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
}

impl Range {
    /// Parse `--since` and `--until`.
    pub(crate) fn parse(
        since: Option<&str>,
        until: Option<&str>,
        now_ns: i64,
        zone: &Zone,
    ) -> Result<Range, String> {
        let r = Range {
            since: since
                .map(|s| parse_time("--since", s, now_ns, zone))
                .transpose()?,
            until: until
                .map(|s| parse_time("--until", s, now_ns, zone))
                .transpose()?,
        };
        // An empty range is a mistake (the two swapped, or a duration read as a time ago),
        // not a question with no answer.
        if let (Some(s), Some(u), Some(st), Some(ut)) = (r.since, r.until, since, until) {
            if s > u {
                return Err(format!(
                    "--since {st:?} ({}) is later than --until {ut:?} ({}): nothing can be in \
                     between; swap them",
                    runlog::time::format_micros(s),
                    runlog::time::format_micros(u)
                ));
            }
        }
        Ok(r)
    }

    /// Is `ns` in the range?
    pub(crate) fn contains(&self, ns: i64) -> bool {
        self.since.is_none_or(|s| ns >= s) && self.until.is_none_or(|u| ns < u)
    }

    /// Does `[first, last]` overlap the range?
    pub(crate) fn overlaps(&self, first: i64, last: i64) -> bool {
        self.since.is_none_or(|s| last >= s) && self.until.is_none_or(|u| first < u)
    }

    /// No bounds at all.
    pub(crate) fn is_all(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prop_assert;
    use proptest::prop_assert_eq;

    // 2026-11-28T12:10:55Z
    const NOW: i64 = 1_795_867_855 * NS_PER_S;

    /// A time read in UTC (`--utc`, or `TZ=UTC`).
    fn parse_time(option: &str, s: &str, now_ns: i64) -> Result<i64, String> {
        super::parse_time(option, s, now_ns, &Zone::utc())
    }

    fn utc(s: &str) -> i64 {
        let t: jiff::Timestamp = s.parse().unwrap();
        i64::try_from(t.as_nanosecond()).unwrap()
    }

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(parse_time("--since", "2h", NOW), Ok(NOW - 7200 * NS_PER_S));
        assert_eq!(
            parse_time("--since", "2h ago", NOW),
            Ok(NOW - 7200 * NS_PER_S)
        );
        assert_eq!(parse_time("--since", "-90s", NOW), Ok(NOW - 90 * NS_PER_S));
        assert_eq!(
            parse_time("--since", "1h30m", NOW),
            Ok(NOW - 5400 * NS_PER_S)
        );
        assert_eq!(parse_time("--since", "1w", NOW), Ok(NOW - 7 * DAY_NS));
        assert_eq!(parse_time("--since", "500ms", NOW), Ok(NOW - 500_000_000));
    }

    #[test]
    fn with_utc_absolute_times_are_utc_as_listings_print_them() {
        let t = utc("2026-11-28T03:00:00Z");
        assert_eq!(parse_time("--until", "2026-11-28T03:00:00Z", NOW), Ok(t));
        assert_eq!(parse_time("--until", "2026-11-28T03:00:00", NOW), Ok(t));
        assert_eq!(parse_time("--until", "2026-11-28 03:00", NOW), Ok(t));
        assert_eq!(parse_time("--until", "2026-11-28T03", NOW), Ok(t));
        assert_eq!(parse_time("--until", "2026-11-28-03:00", NOW), Ok(t));
        assert_eq!(
            parse_time("--until", "2026-11-28", NOW),
            Ok(utc("2026-11-28T00:00:00Z"))
        );
        assert_eq!(
            parse_time("--until", "today", NOW),
            parse_time("x", "2026-11-28", 0)
        );
        assert_eq!(
            parse_time("--until", "yesterday", NOW),
            parse_time("x", "2026-11-27", 0)
        );
        assert_eq!(parse_time("--until", "now", NOW), Ok(NOW));
    }

    #[test]
    fn times_without_an_offset_are_local_and_offsets_are_taken() {
        let ny = Zone::named("America/New_York");
        let p = |s: &str| super::parse_time("--since", s, NOW, &ny);
        assert_eq!(p("2026-11-28T03:00"), Ok(utc("2026-11-28T08:00:00Z")));
        assert_eq!(p("2026-11-28 03:00:00"), Ok(utc("2026-11-28T08:00:00Z")));
        assert_eq!(p("2026-11-28"), Ok(utc("2026-11-28T05:00:00Z")));
        assert_eq!(p("2026-11-28T03:00Z"), Ok(utc("2026-11-28T03:00:00Z")));
        assert_eq!(p("2026-11-28T03:00+01:00"), Ok(utc("2026-11-28T02:00:00Z")));
        assert_eq!(p("2026-11-28T03:00-0130"), Ok(utc("2026-11-28T04:30:00Z")));
        assert_eq!(p("2026-11-28T03+05"), Ok(utc("2026-11-27T22:00:00Z")));
        assert_eq!(
            p("2026-11-28T07:10:55.25-05:00"),
            Ok(utc("2026-11-28T12:10:55.25Z"))
        );
        // Midnights of the local calendar: 12:10:55Z is 07:10:55 in New York.
        assert_eq!(p("today"), Ok(utc("2026-11-28T05:00:00Z")));
        assert_eq!(p("yesterday"), Ok(utc("2026-11-27T05:00:00Z")));
        // 2026-11-02T04:00Z is 23:00 on Nov 1, a 25-hour day in New York.
        let late = utc("2026-11-02T04:00:00Z");
        assert_eq!(
            super::parse_time("--since", "today", late, &ny),
            Ok(utc("2026-11-01T04:00:00Z"))
        );
        assert_eq!(
            super::parse_time("--since", "yesterday", late, &ny),
            Ok(utc("2026-10-31T04:00:00Z"))
        );
        // Durations and @seconds are instants, the same in any zone.
        assert_eq!(p("2h"), parse_time("--since", "2h", NOW));
        assert_eq!(p("@1700000000"), Ok(1_700_000_000 * NS_PER_S));
    }

    #[test]
    fn the_repeated_hour_is_its_earlier_instance_and_a_skipped_hour_moves_forward() {
        let ny = Zone::named("America/New_York");
        let p = |s: &str| super::parse_time("--since", s, NOW, &ny);
        // 01:30 comes twice on 2026-11-01: at 05:30Z (EDT) and 06:30Z (EST).
        assert_eq!(p("2026-11-01T01:30"), Ok(utc("2026-11-01T05:30:00Z")));
        assert_eq!(p("2026-11-01T01:30-05:00"), Ok(utc("2026-11-01T06:30:00Z")));
        // 02:30 never comes on 2026-03-08: read with the offset before the jump (EST).
        assert_eq!(p("2026-03-08T02:30"), Ok(utc("2026-03-08T07:30:00Z")));
    }

    #[test]
    fn a_written_time_covers_the_precision_typed() {
        let span = |s: &str| {
            Written::parse(s)
                .and_then(|w| w.span(&Zone::utc()))
                .map(|(a, b)| {
                    (
                        runlog::time::format_micros(a),
                        runlog::time::format_micros(b),
                    )
                })
        };
        let s = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(
            span("2026"),
            s("2026-01-01T00:00:00.000000Z", "2027-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            span("2026-11-28"),
            s("2026-11-28T00:00:00.000000Z", "2026-11-29T00:00:00.000000Z")
        );
        assert_eq!(
            span("2026-11-28T"),
            s("2026-11-28T00:00:00.000000Z", "2026-11-29T00:00:00.000000Z")
        );
        assert_eq!(
            span("2026-1"),
            s("2026-10-01T00:00:00.000000Z", "2027-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            span("2026-11-2"),
            s("2026-11-20T00:00:00.000000Z", "2026-11-30T00:00:00.000000Z")
        );
        assert_eq!(
            span("2026-11-0"),
            s("2026-11-01T00:00:00.000000Z", "2026-11-10T00:00:00.000000Z")
        );
        assert_eq!(
            span("2026-12-07-2"),
            s("2026-12-07T20:00:00.000000Z", "2026-12-08T00:00:00.000000Z")
        );
        assert_eq!(
            span("2026-11-28T07:5"),
            s("2026-11-28T07:50:00.000000Z", "2026-11-28T08:00:00.000000Z")
        );
        assert_eq!(
            span("2026-12-07-22:25:43.772233"),
            s("2026-12-07T22:25:43.772233Z", "2026-12-07T22:25:43.772234Z")
        );
        assert_eq!(
            span("2026-11-28T12:10:55.9"),
            s("2026-11-28T12:10:55.900000Z", "2026-11-28T12:10:56.000000Z")
        );
        assert_eq!(
            span("2026-11-28T12:10:55Z"),
            s("2026-11-28T12:10:55.000000Z", "2026-11-28T12:10:56.000000Z")
        );
        for bad in [
            "",
            "x",
            "2026-13",
            "2026-02-30",
            "2026-02-3",
            "2026-11-28T24",
            "2026-11-28T07:6",
            "2026-11-28T12:10:60",
            "2026-11-28T12:10:5Z",
            "2026-11-28Z",
            "2026-11-28T12:10:55.1234567890",
            "2026-11-28T12:10:55.123456Z-0123456789ab",
            "2026-11-28T12+24:00",
            "2026-11-28T12+1",
            "2026-11-28T12:10:55..1",
            "20261",
            "2026/11/28",
        ] {
            assert_eq!(Written::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn what_does_not_parse_is_an_error_naming_the_option_and_value() {
        for bad in [
            "",
            "soon",
            "2x",
            "h",
            "2026",
            "2026-13-01",
            "12:00",
            "99999999999999999999d",
        ] {
            let e = parse_time("--since", bad, NOW).unwrap_err();
            assert!(
                e.starts_with(&format!("--since {bad:?} is not a time")),
                "{e}"
            );
            let e =
                super::parse_time("--since", bad, NOW, &Zone::named("Europe/Berlin")).unwrap_err();
            assert!(
                e.contains("local time, Europe/Berlin") || e.contains("bare number"),
                "{e}"
            );
        }
    }

    #[test]
    fn seconds_since_the_epoch_take_an_at_and_a_bare_number_is_refused_with_a_hint() {
        // Bug: `--since 1796682338803537000` overflowed (a panic in debug builds, every
        // record in release) and `--since 1700000000` was read as a year.
        assert_eq!(
            parse_time("--since", "@1700000000", NOW),
            Ok(1_700_000_000 * NS_PER_S)
        );
        assert_eq!(
            parse_time("--since", "@1700000000.25", NOW),
            Ok(1_700_000_000 * NS_PER_S + 250_000_000)
        );
        for bare in ["1700000000", "1796682338803537000", "2026"] {
            let e = parse_time("--since", bare, NOW).unwrap_err();
            assert!(e.contains(&format!("write @{bare}")), "{e}");
        }
        for bad in [
            "@",
            "@-1",
            "@1.",
            "@1.1234567890",
            "@x",
            "@9223372037",
            "@99999999999999999999",
        ] {
            let e = parse_time("--since", bad, NOW).unwrap_err();
            assert!(e.contains("is not a time"), "{bad}: {e}");
        }
    }

    proptest::proptest! {
        /// No input makes the parser overflow or panic; what it accepts is a time it can
        /// print back.
        #[test]
        fn no_time_or_duration_overflows(s in "[0-9@a-z:. TZ+-]{0,40}", now in proptest::num::i64::ANY) {
            if let Ok(t) = parse_time("--since", &s, now) {
                let _ = runlog::time::format_micros(t);
            }
            let ny = Zone::named("America/New_York");
            if let Ok(t) = super::parse_time("--since", &s, now, &ny) {
                let _ = ny.format_micros(t);
            }
        }

        /// Any text read as a time covers a non-empty span, from before to after.
        #[test]
        fn written_times_cover_a_span_of_time(
            s in "[0-9]{1,4}(-[0-9]{1,2}(-[0-9]{1,2}([T -][0-9]{1,2}(:[0-9]{1,2}(:[0-9]{1,2}(\\.[0-9]{0,10})?)?)?)?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
        ) {
            if let Some(w) = Written::parse(&s) {
                prop_assert!(w.from < w.to, "{}", s);
                if let Some((a, b)) = w.span(&Zone::named("Europe/Berlin")) {
                    prop_assert!(a <= b, "{}", s);
                }
            }
        }

        /// What a listing prints reads back as a span holding the time printed.
        #[test]
        fn a_printed_time_reads_back_around_itself(ns in -6_000_000_000_000_000_000i64..9_000_000_000_000_000_000) {
            for zone in [Zone::utc(), Zone::named("America/New_York"), Zone::named("Asia/Kolkata")] {
                for text in [zone.format_seconds(ns), zone.format_micros(ns)] {
                    let w = Written::parse(&text);
                    prop_assert!(w.is_some(), "{}", text);
                    let (a, b) = w.and_then(|w| w.span(&zone)).unwrap_or((0, 0));
                    prop_assert!(a <= ns && ns < b, "{} {} {} {}", text, a, ns, b);
                }
            }
        }

        #[test]
        fn seconds_since_the_epoch_read_back_exactly(secs in 0i64..=9_223_372_035, frac in 0u32..1_000_000_000) {
            let s = format!("@{secs}.{frac:09}");
            prop_assert_eq!(
                parse_time("--since", &s, 0),
                Ok(secs * NS_PER_S + i64::from(frac))
            );
        }

        #[test]
        fn durations_of_any_size_never_overflow(n in proptest::num::u64::ANY, unit in "ms|s|m|h|d|w") {
            let s = format!("{n}{unit}");
            if let Ok(t) = parse_time("--since", &s, i64::MIN / 2) {
                prop_assert!(t <= i64::MIN / 2);
            }
        }
    }

    #[test]
    fn ranges_are_half_open() {
        let r = Range {
            since: Some(10),
            until: Some(20),
        };
        assert!(r.contains(10) && r.contains(19) && !r.contains(20) && !r.contains(9));
        assert!(
            r.overlaps(0, 10) && r.overlaps(19, 30) && !r.overlaps(20, 30) && !r.overlaps(0, 9)
        );
        assert!(Range::default().is_all() && Range::default().contains(i64::MIN));
    }
}
