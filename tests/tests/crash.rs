//! SIGKILL at random points: real child processes (`src/bin/crashkid.rs`) log into runs and
//! acknowledge on stdout every call that returned; the test kills them with SIGKILL after a
//! random delay and then checks the journal (the engine is `runlog_e2e::crash_kills`, shared
//! with the torture scenario in `torture_proc.rs`):
//!
//! - the run is reported `crashed`. In the many-short-runs mode: every run whose commit
//!   returned is `ok` (and listed, unless a small `max-logs` let retention delete it), every run
//!   whose cancel returned is never listed, and the run in progress is `crashed` — or `ok` if the
//!   kill came after its end frame, or gone if it was being cancelled;
//! - every acknowledged record is there, in order (per thread), and at most one record per
//!   thread past the last acknowledgement (its call returned, its ack was not yet written);
//! - every decoded record is byte for byte one the child logs for its `(run, thread, seq)`
//!   (level, target, key-values, message; a record too large for a segment is cut, and then
//!   must be a prefix), so no partial or foreign record is ever decoded;
//! - the reader reports no problem (a torn tail is not one);
//! - after one more run of the job in a new process (whose end recovers the job directory),
//!   the crashed run is still `crashed` with the same records, every run's last segment ends
//!   cleanly at its last valid frame (the torn tail was cut), and no `.tmp-` file nor any file of
//!   a cancelled or deleted run is left. (`.tmp-` files are aged first: a sweep removes them only
//!   when a minute old. A cancelled run killed before its segment was cut survives the first
//!   sweep, as `spec/journal.md` says; a second recovery run must delete it.)
//!
//! The default run kills [`DEFAULT_ITERS`] children, [`PARALLEL`] at a time. Environment:
//! `RUNLOG_CRASH_SEED` (replay a seed; printed on failure), `RUNLOG_CRASH_ITERS` (more kill
//! points), `RUNLOG_CRASH_ONLY` (run only this iteration of the seed),
//! `RUNLOG_CRASH_KEEP_GOING=1` (do not stop at the first failing iteration).

use runlog_e2e::crash::mix;
use runlog_e2e::crash_kills::{kill_iterations, KillOptions};

const KID: &str = env!("CARGO_BIN_EXE_crashkid");

/// Kill points in the default `cargo test` run.
const DEFAULT_ITERS: usize = 500;
/// Children alive at once.
const PARALLEL: usize = 3;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

#[test]
fn sigkill_at_random_points_loses_no_returned_record() {
    let seed = env_u64("RUNLOG_CRASH_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        mix(t ^ u64::from(std::process::id()))
    });
    let iters = env_u64("RUNLOG_CRASH_ITERS").map_or(DEFAULT_ITERS, |n| n as usize);
    let only = env_u64("RUNLOG_CRASH_ONLY").map(|n| n as usize);
    let keep_going = env_u64("RUNLOG_CRASH_KEEP_GOING").is_some_and(|n| n != 0);
    let todo: Vec<usize> = match only {
        Some(i) => vec![i],
        None => (0..iters).collect(),
    };
    eprintln!(
        "crash test: seed {seed} (replay with RUNLOG_CRASH_SEED={seed}), {} kill points, \
         {PARALLEL} at a time",
        todo.len()
    );
    let n = todo.len();
    let sum = kill_iterations(&KillOptions {
        kid: KID.into(),
        seed,
        iterations: todo,
        keep_going,
        parallel: PARALLEL,
        replay: format!(
            "RUNLOG_CRASH_SEED={seed} RUNLOG_CRASH_ONLY={{iter}} cargo test -p runlog-e2e \
             --test crash"
        ),
    });
    if !sum.failures.is_empty() {
        panic!(
            "{} of the crash iterations failed (seed {seed}; replay one with \
             RUNLOG_CRASH_SEED={seed} RUNLOG_CRASH_ONLY=<iteration> cargo test -p runlog-e2e \
             --test crash; {} acknowledged records lost):\n\n{}",
            sum.failures.len(),
            sum.records_lost,
            sum.failures.join("\n\n")
        );
    }
    eprintln!(
        "crash test: seed {seed}: {} kills in {:.1?}: {}",
        sum.kills, sum.elapsed, sum.stats
    );
    assert_eq!(
        sum.records_lost, 0,
        "records lost without a failure reported"
    );
    assert_eq!(sum.kills, n, "every iteration must kill its child");
}
