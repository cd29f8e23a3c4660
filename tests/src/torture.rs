//! The torture suite's shared pieces: how big a scenario runs and the one line each prints.
//!
//! Every scenario ends with [`report`]: one line `torture: <scenario>: iterations <n>, failures
//! found <f>, records lost <l>` on standard error (shown with `--nocapture`) and, when
//! `RUNLOG_TORTURE_REPORT` names a file, appended to it; `scripts/torture.sh` runs the whole
//! suite and prints those lines as a table.
//!
//! Sizes: the defaults keep `.ci/run` short; `RUNLOG_TORTURE=long` runs the larger counts.
//! Scenario tests are named `torture_...` so that `scripts/torture.sh` finds them.

use std::io::Write as _;

pub use crate::crash::Rng;

/// Whether `RUNLOG_TORTURE=long` asks for the larger counts.
pub fn long() -> bool {
    std::env::var("RUNLOG_TORTURE").is_ok_and(|v| v == "long")
}

/// `default`, or `long` under `RUNLOG_TORTURE=long`.
pub fn iterations(default: u64, long_count: u64) -> u64 {
    if long() {
        long_count
    } else {
        default
    }
}

/// Print (and append to `$RUNLOG_TORTURE_REPORT`) the scenario's line. Call it before asserting
/// that `failures` and `lost` are zero, so a failing run still reports its figures.
pub fn report(scenario: &str, iterations: u64, failures: u64, lost: u64) {
    let line = format!(
        "torture: {scenario}: iterations {iterations}, failures found {failures}, records lost {lost}"
    );
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("RUNLOG_TORTURE_REPORT") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            panic!("RUNLOG_TORTURE_REPORT {}: {e}", path.to_string_lossy());
        }
    }
}

/// [`report`] the scenario's line, then fail the test if it found failures (the first 20
/// shown) or lost records.
pub fn conclude(scenario: &str, iterations: u64, failures: &[String], lost: u64) {
    report(scenario, iterations, failures.len() as u64, lost);
    assert!(
        failures.is_empty(),
        "{scenario}: {} failures, first:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(lost, 0, "{scenario}: records lost");
}

/// A [`Rng`] seeded from `RUNLOG_TORTURE_SEED` when set, else from the clock; prints the
/// seed so a failure can be replayed.
pub fn seeded_rng(scenario: &str) -> Rng {
    let seed = std::env::var("RUNLOG_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("torture: {scenario}: seed {seed} (replay with RUNLOG_TORTURE_SEED={seed})");
    Rng::new(seed)
}

/// Install runlog as the process's `log` logger, once per test binary (each run then names
/// its own journal with a `RunLogger` of its own; records go to the thread's current run).
/// Its own journal, unused, is `<tmp>/runlog-<tag>-<pid>`.
pub fn install_logger_once(tag: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = std::env::temp_dir().join(format!("runlog-{tag}-{}", std::process::id()));
        let rl = runlog::RunLogger::builder()
            .no_config_file()
            .force_journal_dir(dir)
            .build()
            .expect("build the process's runlog logger");
        rl.install().expect("install the process's runlog logger");
    });
}
