//! Run references: how a user names a run of a job on the command line.
//!
//! - a full run id: `2026-11-28T12:10:55.123456Z-0123456789ab`, or a prefix of one past its
//!   time (`2026-11-28T12:10:55.123456Z-01`)
//! - a start time, to any precision, in the command's zone (local, or UTC with `--utc`) unless
//!   it has an offset: the runs that started in that time (see [`crate::when::Written`]).
//!   So a START as `list-runs` prints it (`2026-11-28T07:10:55-05:00`) names the runs started
//!   in that second; `2026-11-28T07:10` (or with a space for the `T`) those of that minute;
//!   the original runlog's `2026-12-07-22:25:43.772233` that microsecond; `2026-11-28T12:10Z`
//!   is UTC, as run ids are.
//! - `last` or `-1` (the newest run), `-2` (the one before), ...
//! - `last-failed`: the newest failed or crashed run

use runlog::RunStatus;

use crate::when::Written;
use crate::zone::Zone;

/// Why a reference names no single run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefError {
    /// The job has no runs.
    NoRuns,
    /// Nothing matches.
    NotFound,
    /// A time that no run started in; `local` if it was read in the command's zone (no
    /// offset typed).
    NoneStarted {
        /// Read in the command's zone.
        local: bool,
    },
    /// `-N` with fewer than N runs.
    OutOfRange {
        /// N.
        n: usize,
        /// Runs the job has.
        have: usize,
    },
    /// `-0` or similar.
    BadIndex,
    /// Cannot name a run at all: empty, `-` not followed by a number, or characters no run
    /// id holds (why).
    Malformed(&'static str),
    /// `last-failed` without a failed or crashed run.
    NoFailed,
    /// Several runs match (their indexes, oldest first).
    Ambiguous(Vec<usize>),
}

/// A run as references see it: its id, start (ns since the epoch) and status.
pub(crate) type RunKey<'a> = (&'a str, i64, RunStatus);

/// `-N` as N.
fn parse_back_index(r: &str) -> Option<Result<usize, RefError>> {
    let digits = r.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Err(RefError::Malformed(
            "`-` must be followed by a number (-1 is the newest run)",
        )));
    }
    Some(match digits.parse::<usize>() {
        Ok(0) => Err(RefError::BadIndex),
        Ok(n) => Ok(n),
        // More runs than fit in a usize: certainly out of range.
        Err(_) => Ok(usize::MAX),
    })
}

/// Find the run `r` names among `runs` (oldest first), times read in `zone`; its index.
pub(crate) fn resolve(runs: &[RunKey<'_>], r: &str, zone: &Zone) -> Result<usize, RefError> {
    let r = r.trim();
    if runs.is_empty() {
        return Err(RefError::NoRuns);
    }
    if r == "last" {
        return Ok(runs.len() - 1);
    }
    if r == "last-failed" {
        return runs
            .iter()
            .rposition(|(_, _, s)| matches!(s, RunStatus::Failed | RunStatus::Crashed))
            .ok_or(RefError::NoFailed);
    }
    if let Some(n) = parse_back_index(r) {
        let n = n?;
        return if n <= runs.len() {
            Ok(runs.len() - n)
        } else {
            Err(RefError::OutOfRange {
                n,
                have: runs.len(),
            })
        };
    }
    if r.is_empty() {
        return Err(RefError::Malformed("it is empty"));
    }
    // Run ids hold only `[A-Za-z0-9:.-]`; a time may have a space for the `T` and a `+` in
    // its offset.
    if !r
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'-' | b' ' | b'+'))
    {
        return Err(RefError::Malformed(
            "run ids hold only letters, digits, `:`, `.` and `-`",
        ));
    }
    if let Some(i) = runs.iter().position(|(id, _, _)| *id == r) {
        return Ok(i);
    }
    let hits: Vec<usize> = match Written::parse(r) {
        Some(w) => {
            let Some((from, to)) = w.span(zone) else {
                return Err(RefError::NotFound);
            };
            let hits: Vec<usize> = runs
                .iter()
                .enumerate()
                .filter(|(_, (_, start, _))| (from..to).contains(start))
                .map(|(i, _)| i)
                .collect();
            if hits.is_empty() {
                return Err(RefError::NoneStarted {
                    local: !w.has_offset(),
                });
            }
            hits
        }
        // Not a time: a prefix of ids (past the time: `...Z-01`).
        None => runs
            .iter()
            .enumerate()
            .filter(|(_, (id, _, _))| id.starts_with(r))
            .map(|(i, _)| i)
            .collect(),
    };
    match hits.len() {
        0 => Err(RefError::NotFound),
        1 => Ok(hits[0]),
        _ => Err(RefError::Ambiguous(hits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [(&str, RunStatus); 4] = [
        ("2026-11-27T23:59:59.000001Z-aaaaaaaaaaaa", RunStatus::Ok),
        (
            "2026-11-28T12:10:55.123456Z-bbbbbbbbbbbb",
            RunStatus::Failed,
        ),
        ("2026-11-28T12:10:55.900000Z-cccccccccccc", RunStatus::Ok),
        ("2026-11-28T13:00:00.000000Z-dddddddddddd", RunStatus::Ok),
    ];

    /// Runs with these ids (and statuses), started at the time in the id.
    fn runs(ids: &[(&'static str, RunStatus)]) -> Vec<RunKey<'static>> {
        ids.iter()
            .map(|&(id, s)| (id, runlog::time::parse_utc(&id[..27]).unwrap(), s))
            .collect()
    }

    #[allow(non_snake_case)]
    fn RUNS() -> Vec<RunKey<'static>> {
        runs(&IDS)
    }

    /// Resolve with times in UTC (`--utc`, or `TZ=UTC`).
    fn resolve(runs: &[RunKey<'_>], r: &str) -> Result<usize, RefError> {
        super::resolve(runs, r, &Zone::utc())
    }

    #[test]
    fn last_and_negative_indexes_count_from_the_newest() {
        assert_eq!(resolve(&RUNS(), "last"), Ok(3));
        assert_eq!(resolve(&RUNS(), "-1"), Ok(3));
        assert_eq!(resolve(&RUNS(), "-2"), Ok(2));
        assert_eq!(resolve(&RUNS(), "-4"), Ok(0));
        assert_eq!(
            resolve(&RUNS(), "-5"),
            Err(RefError::OutOfRange { n: 5, have: 4 })
        );
        assert_eq!(resolve(&RUNS(), "-0"), Err(RefError::BadIndex));
        for bad in [
            "",
            "  ",
            "-abc",
            "-1x",
            "-",
            "../x",
            "\u{1b}[31m",
            "a/b",
            "2026*",
        ] {
            assert!(
                matches!(resolve(&RUNS(), bad), Err(RefError::Malformed(_))),
                "{bad:?}: {:?}",
                resolve(&RUNS(), bad)
            );
        }
        assert!(matches!(
            resolve(&RUNS(), "-99999999999999999999999"),
            Err(RefError::OutOfRange { .. })
        ));
    }

    #[test]
    fn last_failed_is_the_newest_failed_or_crashed_run() {
        assert_eq!(resolve(&RUNS(), "last-failed"), Ok(1));
        let mut runs = RUNS();
        runs[3].2 = RunStatus::Crashed;
        assert_eq!(resolve(&runs, "last-failed"), Ok(3));
        assert_eq!(
            resolve(&RUNS()[2..], "last-failed"),
            Err(RefError::NoFailed)
        );
    }

    #[test]
    fn a_full_id_or_a_unique_prefix_names_one_run() {
        assert_eq!(resolve(&RUNS(), RUNS()[1].0), Ok(1));
        assert_eq!(resolve(&RUNS(), "2026-11-27"), Ok(0));
        assert_eq!(resolve(&RUNS(), "2026-11-28T13"), Ok(3));
        assert_eq!(resolve(&RUNS(), "2026-11-28T12:10:55.9"), Ok(2));
    }

    #[test]
    fn a_space_may_stand_for_the_t() {
        assert_eq!(resolve(&RUNS(), "2026-11-28 13:00"), Ok(3));
        assert_eq!(resolve(&RUNS(), " 2026-11-28 13:00 "), Ok(3));
    }

    #[test]
    fn a_start_time_as_listed_names_the_runs_of_that_second() {
        assert_eq!(resolve(&RUNS(), "2026-11-28T13:00:00Z"), Ok(3));
        assert_eq!(
            resolve(&RUNS(), "2026-11-28T12:10:55Z"),
            Err(RefError::Ambiguous(vec![1, 2]))
        );
        // 12:10:5 is not a whole second.
        assert_eq!(
            resolve(&RUNS(), "2026-11-28T12:10:5Z"),
            Err(RefError::NotFound)
        );
    }

    #[test]
    fn an_ambiguous_prefix_lists_every_candidate() {
        assert_eq!(
            resolve(&RUNS(), "2026-11-28"),
            Err(RefError::Ambiguous(vec![1, 2, 3]))
        );
        assert_eq!(
            resolve(&RUNS(), "2026-11-28T12:10"),
            Err(RefError::Ambiguous(vec![1, 2]))
        );
    }

    #[test]
    fn no_match_is_not_found() {
        assert_eq!(
            resolve(&RUNS(), "2025"),
            Err(RefError::NoneStarted { local: true })
        );
        assert_eq!(
            resolve(&RUNS(), "2026-11-28T12:10Z"),
            Err(RefError::Ambiguous(vec![1, 2]))
        );
        assert_eq!(
            resolve(&RUNS(), "2026-11-28T12:11Z"),
            Err(RefError::NoneStarted { local: false })
        );
        assert_eq!(resolve(&RUNS(), "first"), Err(RefError::NotFound));
        assert_eq!(resolve(&[], "last"), Err(RefError::NoRuns));
    }

    #[test]
    fn a_prefix_of_an_id_past_its_time_still_names_the_run() {
        assert_eq!(resolve(&RUNS(), "2026-11-28T12:10:55.123456Z-bb"), Ok(1));
        assert_eq!(resolve(&RUNS(), "2026-11-28T12:10:55.123456Z"), Ok(1));
        assert_eq!(
            resolve(&RUNS(), "2026-11-28T12:10:55.123456Z-cc"),
            Err(RefError::NotFound)
        );
    }

    #[test]
    fn the_original_runlogs_form_and_its_prefixes_name_runs() {
        // Bug: `2026-12-07-22:25:43.772233`, as the original printed runs, matched nothing.
        assert_eq!(resolve(&RUNS(), "2026-11-28-12:10:55.123456"), Ok(1));
        assert_eq!(resolve(&RUNS(), "2026-11-28-13"), Ok(3));
        assert_eq!(
            resolve(&RUNS(), "2026-11-28-1"),
            Err(RefError::Ambiguous(vec![1, 2, 3]))
        );
        assert_eq!(
            resolve(&RUNS(), "2026-11-28-12:10:55"),
            Err(RefError::Ambiguous(vec![1, 2]))
        );
    }

    #[test]
    fn times_without_an_offset_are_local() {
        let ny = Zone::named("America/New_York");
        let r = |s: &str| super::resolve(&RUNS(), s, &ny);
        // 13:00Z is 08:00 in New York.
        assert_eq!(r("2026-11-28T08:00"), Ok(3));
        assert_eq!(r("2026-11-28 08"), Ok(3));
        assert_eq!(
            r("2026-11-28T13:00"),
            Err(RefError::NoneStarted { local: true })
        );
        assert_eq!(r("2026-11-28T13:00Z"), Ok(3));
        assert_eq!(r("2026-11-28T08:00-05:00"), Ok(3));
        assert_eq!(r("2026-11-28T14:00+01:00"), Ok(3));
        // 23:59:59Z on the 27th is 18:59:59 on the 27th here: the 28th holds three runs.
        assert_eq!(r("2026-11-28"), Err(RefError::Ambiguous(vec![1, 2, 3])));
        assert_eq!(r("2026-11-27"), Ok(0));
        // START as list-runs prints it.
        assert_eq!(r(&ny.format_seconds(RUNS()[3].1)), Ok(3));
        assert_eq!(
            r(&ny.format_seconds(RUNS()[1].1)),
            Err(RefError::Ambiguous(vec![1, 2]))
        );
    }

    #[test]
    fn in_the_repeated_hour_a_local_time_is_the_earlier_instance_and_an_offset_picks() {
        let ny = Zone::named("America/New_York");
        // 01:30:00 in New York, twice on 2026-11-01: 05:30Z (EDT) then 06:30Z (EST).
        let runs = runs(&[
            ("2026-11-01T05:30:00.000000Z-aaaaaaaaaaaa", RunStatus::Ok),
            (
                "2026-11-01T06:30:00.000000Z-bbbbbbbbbbbb",
                RunStatus::Failed,
            ),
        ]);
        let r = |s: &str| super::resolve(&runs, s, &ny);
        assert_eq!(r("2026-11-01T01:30:00"), Ok(0));
        assert_eq!(r("2026-11-01T01:30"), Ok(0));
        assert_eq!(r("2026-11-01T01:30:00-04:00"), Ok(0));
        assert_eq!(r("2026-11-01T01:30:00-05:00"), Ok(1));
        assert_eq!(r(&ny.format_seconds(runs[1].1)), Ok(1));
        // The hour 01 is both of them; so is the day.
        assert_eq!(r("2026-11-01T01"), Err(RefError::Ambiguous(vec![0, 1])));
        assert_eq!(r("2026-11-01"), Err(RefError::Ambiguous(vec![0, 1])));
    }
}
