//! Run references: how a user names a run of a job on the command line.
//!
//! - a full run id: `2026-11-28T12:10:55.123456Z-0123456789ab`
//! - a unique prefix of one, usually a timestamp: `2026-11-28T12:10`, also with a space
//!   instead of the `T` (`2026-11-28 12:10`); a whole second with a `Z`
//!   (`2026-11-28T12:10:55Z`, as `list-runs` prints START) names the runs started in that second
//! - `last` or `-1` (the newest run), `-2` (the one before), ...
//! - `last-failed`: the newest failed or crashed run

use runlog::RunStatus;

/// Why a reference names no single run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefError {
    /// The job has no runs.
    NoRuns,
    /// Nothing matches.
    NotFound,
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

/// Find the run `r` names among `runs` (id and status, oldest first); its index.
pub(crate) fn resolve(runs: &[(&str, RunStatus)], r: &str) -> Result<usize, RefError> {
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
            .rposition(|(_, s)| matches!(s, RunStatus::Failed | RunStatus::Crashed))
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
    // Run ids hold only `[A-Za-z0-9:.-]` (and a reference may have a space for the `T`).
    if !r
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'-' | b' '))
    {
        return Err(RefError::Malformed(
            "run ids hold only letters, digits, `:`, `.` and `-`",
        ));
    }
    if let Some(i) = runs.iter().position(|(id, _)| *id == r) {
        return Ok(i);
    }
    // `2026-11-28 12:10` as typed (or copied from a listing) means `2026-11-28T12:10`.
    let prefix = if r.as_bytes().get(10) == Some(&b' ') {
        format!("{}T{}", &r[..10], &r[11..])
    } else {
        r.to_owned()
    };
    let mut hits: Vec<usize> = runs
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| id.starts_with(&prefix))
        .map(|(i, _)| i)
        .collect();
    if hits.is_empty() {
        // `...T12:10:55Z`: the runs started in that second (ids go on with `.micros Z`).
        if let Some(p) = prefix.strip_suffix('Z') {
            hits = runs
                .iter()
                .enumerate()
                .filter(|(_, (id, _))| {
                    id.strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('Z'))
                })
                .map(|(i, _)| i)
                .collect();
        }
    }
    match hits.len() {
        0 => Err(RefError::NotFound),
        1 => Ok(hits[0]),
        _ => Err(RefError::Ambiguous(hits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNS: [(&str, RunStatus); 4] = [
        ("2026-11-27T23:59:59.000001Z-aaaaaaaaaaaa", RunStatus::Ok),
        (
            "2026-11-28T12:10:55.123456Z-bbbbbbbbbbbb",
            RunStatus::Failed,
        ),
        ("2026-11-28T12:10:55.900000Z-cccccccccccc", RunStatus::Ok),
        ("2026-11-28T13:00:00.000000Z-dddddddddddd", RunStatus::Ok),
    ];

    #[test]
    fn last_and_negative_indexes_count_from_the_newest() {
        assert_eq!(resolve(&RUNS, "last"), Ok(3));
        assert_eq!(resolve(&RUNS, "-1"), Ok(3));
        assert_eq!(resolve(&RUNS, "-2"), Ok(2));
        assert_eq!(resolve(&RUNS, "-4"), Ok(0));
        assert_eq!(
            resolve(&RUNS, "-5"),
            Err(RefError::OutOfRange { n: 5, have: 4 })
        );
        assert_eq!(resolve(&RUNS, "-0"), Err(RefError::BadIndex));
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
                matches!(resolve(&RUNS, bad), Err(RefError::Malformed(_))),
                "{bad:?}: {:?}",
                resolve(&RUNS, bad)
            );
        }
        assert!(matches!(
            resolve(&RUNS, "-99999999999999999999999"),
            Err(RefError::OutOfRange { .. })
        ));
    }

    #[test]
    fn last_failed_is_the_newest_failed_or_crashed_run() {
        assert_eq!(resolve(&RUNS, "last-failed"), Ok(1));
        let mut runs = RUNS;
        runs[3].1 = RunStatus::Crashed;
        assert_eq!(resolve(&runs, "last-failed"), Ok(3));
        assert_eq!(resolve(&RUNS[2..], "last-failed"), Err(RefError::NoFailed));
    }

    #[test]
    fn a_full_id_or_a_unique_prefix_names_one_run() {
        assert_eq!(resolve(&RUNS, RUNS[1].0), Ok(1));
        assert_eq!(resolve(&RUNS, "2026-11-27"), Ok(0));
        assert_eq!(resolve(&RUNS, "2026-11-28T13"), Ok(3));
        assert_eq!(resolve(&RUNS, "2026-11-28T12:10:55.9"), Ok(2));
    }

    #[test]
    fn a_space_may_stand_for_the_t() {
        assert_eq!(resolve(&RUNS, "2026-11-28 13:00"), Ok(3));
        assert_eq!(resolve(&RUNS, " 2026-11-28 13:00 "), Ok(3));
    }

    #[test]
    fn a_start_time_as_listed_names_the_runs_of_that_second() {
        assert_eq!(resolve(&RUNS, "2026-11-28T13:00:00Z"), Ok(3));
        assert_eq!(
            resolve(&RUNS, "2026-11-28T12:10:55Z"),
            Err(RefError::Ambiguous(vec![1, 2]))
        );
        // 12:10:5 is not a whole second.
        assert_eq!(
            resolve(&RUNS, "2026-11-28T12:10:5Z"),
            Err(RefError::NotFound)
        );
    }

    #[test]
    fn an_ambiguous_prefix_lists_every_candidate() {
        assert_eq!(
            resolve(&RUNS, "2026-11-28"),
            Err(RefError::Ambiguous(vec![1, 2, 3]))
        );
        assert_eq!(
            resolve(&RUNS, "2026-11-28T12:10"),
            Err(RefError::Ambiguous(vec![1, 2]))
        );
    }

    #[test]
    fn no_match_is_not_found() {
        assert_eq!(resolve(&RUNS, "2025"), Err(RefError::NotFound));
        assert_eq!(resolve(&RUNS, "first"), Err(RefError::NotFound));
        assert_eq!(resolve(&[], "last"), Err(RefError::NoRuns));
    }
}
