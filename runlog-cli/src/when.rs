//! Times typed on the command line (`--since`, `--until`): absolute UTC times as listings
//! print them, or durations ago.

use runlog::time::{parse_utc, Utc};

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

/// Midnight (UTC) of the day `ns` falls in.
fn day_start(ns: i64) -> i64 {
    let t = Utc::from_ns(ns);
    Utc {
        hour: 0,
        minute: 0,
        second: 0,
        nanos: 0,
        ..t
    }
    .to_ns()
}

/// Parse a time for `option` (named in the error) relative to `now_ns`: `now`, `today`,
/// `yesterday` (UTC midnights), a duration ago (`2h`, `2h ago`, `-2h`), seconds since the epoch
/// (`@1700000000`, `@1700000000.25`), or a UTC time or a prefix of one
/// (`2026-11-28T03:00:00Z`, `2026-11-28 03:00`, `2026-11-28`). A bare number is refused with a
/// hint (it could mean a year or seconds); nothing overflows: a value out of range is an
/// error.
pub(crate) fn parse_time(option: &str, s: &str, now_ns: i64) -> Result<i64, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        // Neither a year nor a count of seconds without saying so (journalctl's `@`).
        return Err(format!(
            "{option} {s:?} is not a time but a bare number: write @{t} for seconds since \
             the epoch, or a UTC time like 2026-11-28T03:00:00Z, or a duration ago like 2h"
        ));
    }
    let d = t.strip_suffix("ago").map(str::trim_end).unwrap_or(t);
    let d = d.strip_prefix('-').unwrap_or(d);
    let parsed = match t {
        "now" => Some(now_ns),
        "today" => Some(day_start(now_ns)),
        "yesterday" => Some(day_start(now_ns) - DAY_NS),
        _ if t.starts_with('@') => parse_unix(t),
        _ => parse_duration(d)
            .map(|ns| now_ns.saturating_sub(ns))
            .or_else(|| parse_utc(t).filter(|_| t.len() >= 10)),
    };
    parsed.ok_or_else(|| {
        format!(
            "{option} {s:?} is not a time: use a UTC time like 2026-11-28T03:00:00Z, \
             '2026-11-28 03:00' or 2026-11-28, today, yesterday, a duration ago like \
             90s, 30m, 2h, 3d, 1w, or @<seconds since the epoch> (each in range)"
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
    ) -> Result<Range, String> {
        let r = Range {
            since: since
                .map(|s| parse_time("--since", s, now_ns))
                .transpose()?,
            until: until
                .map(|s| parse_time("--until", s, now_ns))
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
    fn absolute_times_are_utc_as_listings_print_them() {
        let t = parse_utc("2026-11-28T03:00:00Z").unwrap();
        assert_eq!(parse_time("--until", "2026-11-28T03:00:00Z", NOW), Ok(t));
        assert_eq!(parse_time("--until", "2026-11-28 03:00", NOW), Ok(t));
        assert_eq!(
            parse_time("--until", "2026-11-28", NOW),
            Ok(parse_utc("2026-11-28").unwrap())
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
        fn no_time_or_duration_overflows(s in "[0-9@a-z:. TZ-]{0,40}", now in proptest::num::i64::ANY) {
            if let Ok(t) = parse_time("--since", &s, now) {
                let _ = runlog::time::format_micros(t);
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
