//! A wall clock that steps back an hour in the middle of a run (NTP, a VM restored from a
//! snapshot), through a clock injected into the library (`Builder::clock`):
//!
//! - runs started after the step still get ids (and start times) after every earlier run of
//!   the job, so local retention and the Redis trim keep the newest runs, not delete them
//!   first;
//! - `fsync = <interval>` keeps syncing after the step: a power loss then keeps every record
//!   logged after it whose interval had passed.
//!
//! Bug this reproduces: run ids come from the wall clock, so after a step back the newest run
//! got the smallest id, and its own sweep (or the shipper's trim) deleted it first; and the
//! interval policy compared frame times with a last sync in the future and never synced again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use log::LevelFilter;
use runlog::journal::faultfs::{FaultFs, Unsynced};
use runlog::journal::layout::job_dir;
use runlog::journal::reader::{Journal, RunStatus};
use runlog::journal::retention::sweep_job;
use runlog::journal::storage::mount;
use runlog::{FsyncPolicy, RunLogger};
use runlog_e2e::redis::{check_consistent, RedisServer};
use runlog_e2e::shipper::{ship_once_ok, ShipperConfig};
use runlog_e2e::torture::conclude;
use runlog_e2e::torture::install_logger_once;

const JOB: &str = "clock";
const HOUR_NS: i64 = 3_600_000_000_000;
/// Records per run, half of them before the step in the run that steps.
const PER_RUN: u64 = 6;
/// The interval of the fsync policy in the power-loss part.
const INTERVAL: Duration = Duration::from_millis(5);

/// Added to the system clock by [`clock`].
static OFFSET: AtomicI64 = AtomicI64::new(0);

fn clock() -> i64 {
    runlog::time::now_ns() + OFFSET.load(Ordering::SeqCst)
}

fn install() {
    install_logger_once("clock");
}

fn logger(root: &Path, policy: FsyncPolicy) -> RunLogger {
    install();
    RunLogger::builder()
        .no_config_file()
        .force_journal_dir(root)
        .fsync(policy)
        .max_logs(100)
        .max_failed_logs(100)
        .clock(clock)
        .build()
        .expect("build")
}

/// Runs 0..4 of the job, the clock stepping back an hour in the middle of run 1; their ids.
fn four_runs(root: &Path) -> Vec<String> {
    let rl = logger(root, FsyncPolicy::Commit);
    let mut ids = Vec::new();
    for r in 0..4u64 {
        let run = rl.runlog(JOB).expect("runlog");
        run.set_level(LevelFilter::Info);
        ids.push(run.id().to_owned());
        for i in 0..PER_RUN {
            if r == 1 && i == PER_RUN / 2 {
                OFFSET.fetch_sub(HOUR_NS, Ordering::SeqCst);
            }
            log::info!(target: "clock", "run {r} record {i}");
        }
    }
    ids
}

/// The runs a reader lists, checked: ok, every record.
fn listed(root: &Path, failures: &mut Vec<String>, lost: &mut u64) -> Vec<String> {
    let j = Journal::open(root).expect("open");
    let runs = j.runs(JOB).expect("runs");
    for r in &runs {
        if r.status != RunStatus::Ok || !r.problems.is_empty() {
            failures.push(format!(
                "run {} reads {} ({:?})",
                r.id, r.status, r.problems
            ));
        }
        *lost += PER_RUN.saturating_sub(r.records);
    }
    runs.into_iter().map(|r| r.id).collect()
}

#[test]
fn torture_a_clock_stepping_back_an_hour_mid_run_keeps_ids_in_order_and_syncing() {
    let mut failures = Vec::new();
    let mut lost = 0u64;
    let mut checked = 0u64;

    // Ids, local retention and the Redis trim.
    OFFSET.store(0, Ordering::SeqCst);
    let t = tempfile::tempdir().expect("tempdir");
    let root = t.path().join("journal");
    let ids = four_runs(&root);
    checked += ids.len() as u64;
    let mut sorted = ids.clone();
    sorted.sort();
    if sorted != ids {
        failures.push(format!("run ids do not sort in start order: {ids:?}"));
    }
    let all = listed(&root, &mut failures, &mut lost);
    if all != ids {
        failures.push(format!("the journal lists {all:?}, not the runs {ids:?}"));
    }
    // The shipper keeps 2 runs in Redis: the two started last.
    let redis = RedisServer::start();
    let cfg = ShipperConfig::new(&root, &redis.url(), 2, 2).write(&t.path().join("s.toml"));
    ship_once_ok(&cfg, &t.path().join("s.log"));
    let mut conn = redis.conn();
    match check_consistent(&mut conn, "runlog") {
        Err(e) => failures.push(format!("Redis: {e}")),
        Ok(store) => {
            let kept = store.ids(JOB);
            if kept != ids[2..] {
                failures.push(format!(
                    "Redis kept {kept:?}, not the newest {:?}",
                    &ids[2..]
                ));
            }
        }
    }
    // Local retention keeping 2 ok runs keeps the two started last.
    if let Err(e) = sweep_job(&job_dir(&root, JOB), 2, 2, false) {
        failures.push(format!("sweep: {e}"));
    }
    let kept = listed(&root, &mut failures, &mut lost);
    if kept != ids[2..] {
        failures.push(format!(
            "retention kept {kept:?}, not the newest {:?}",
            &ids[2..]
        ));
    }

    // Interval syncing goes on after the step: a power loss keeps what was synced.
    OFFSET.store(0, Ordering::SeqCst);
    let froot = PathBuf::from(format!("/runlog-faultfs/{}/clock", std::process::id()));
    let fs = FaultFs::new(&froot);
    let image = {
        let _m = mount(&froot, Arc::new(fs.clone()));
        let rl = logger(&froot, FsyncPolicy::Interval(INTERVAL));
        let run = rl.runlog(JOB).expect("runlog");
        run.set_level(LevelFilter::Info);
        for i in 0..PER_RUN {
            if i == PER_RUN / 2 {
                OFFSET.fetch_sub(HOUR_NS, Ordering::SeqCst);
            }
            // Each record comes an interval after the one before: each is synced.
            std::thread::sleep(INTERVAL * 2);
            log::info!(target: "clock", "synced record {i}");
        }
        let img = fs.crash_image(&froot.join("image"), Unsynced::Lost);
        drop(run);
        img
    };
    OFFSET.store(0, Ordering::SeqCst);
    checked += 1;
    {
        let iroot = froot.join("image");
        let _m = mount(&iroot, Arc::new(image));
        let j = Journal::open(&iroot).expect("open image");
        match j.runs(JOB).ok().and_then(|r| r.into_iter().next()) {
            None => {
                failures.push("the run is gone after the power loss".into());
                lost += PER_RUN;
            }
            Some(r) => {
                if r.status != RunStatus::Crashed {
                    failures.push(format!("the cut run reads {}", r.status));
                }
                if r.records < PER_RUN {
                    failures.push(format!(
                        "a power loss kept {} of {PER_RUN} records synced at their interval \
                         (the clock stepped back after {})",
                        r.records,
                        PER_RUN / 2
                    ));
                    lost += PER_RUN - r.records;
                }
            }
        }
    }
    conclude(
        "a clock stepping back an hour mid-run",
        checked,
        &failures,
        lost,
    );
}
