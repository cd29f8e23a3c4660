//! Stray and misnamed files in a job directory: copies of a segment under names that are not a
//! run's (`keep.000000.seg`), segment names with a malformed run id or sequence, backups and
//! notes. None is ever a run: readers and `runlog list-runs` list exactly the job's runs,
//! `runlog journal verify` names each stray, and the shipper ships the runs, writes `.shipped`,
//! uploads nothing twice, lets local retention trim what was shipped and leaves the strays be.
//!
//! Bug this reproduces: any `*.NNNNNN.seg` counted as a run. A copy `keep.000000.seg` was
//! listed as run `keep` (status `ok`), sorted newest so it was never trimmed; the shipper
//! uploaded it and then could not write `.shipped` (`keep` is no run id), so every later pass
//! uploaded every run of the job again and local retention kept them all.

use std::fs;
use std::path::{Path, PathBuf};

use runlog::journal::layout::job_dir;
use runlog::journal::shipped::read_shipped;
use runlog::Journal;
use runlog_e2e::cli::{output, runlog_cmd};
use runlog_e2e::redis::{check_consistent, RedisServer};
use runlog_e2e::shipper::{run_kid, ship_once_ok, KidArgs, Kind, ShipperConfig};
use runlog_e2e::torture::conclude;

const KID: &str = env!("CARGO_BIN_EXE_jobkid");
const JOB: &str = "strays";
const RUNS: u64 = 4;
const RECORDS: u64 = 20;

/// The names planted next to the runs, from the id of one of them.
fn strays(id: &str) -> Vec<String> {
    let upper = id.to_uppercase();
    let mut short = id.to_owned();
    short.pop();
    vec![
        "keep.000000.seg".into(),
        format!("{upper}.000000.seg"),
        format!("{short}.000000.seg"),
        format!("{id}.00000.seg"),
        format!("{id}.0000001.seg"),
        format!("{id}.00000a.seg"),
        format!("{id}.000000.seg~"),
        format!("{id}.000000.seg.bak"),
        format!("x{id}.000000.seg"),
        "notes.txt".into(),
    ]
}

fn ids(journal: &Path) -> Vec<String> {
    Journal::open(journal)
        .and_then(|j| j.runs(JOB))
        .map(|r| r.into_iter().map(|i| i.id).collect())
        .unwrap_or_default()
}

#[test]
fn torture_stray_and_misnamed_segment_files_are_never_runs_and_never_block_shipping() {
    let t = tempfile::tempdir().expect("tempdir");
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    let mut failures = Vec::new();
    let mut lost = 0u64;

    let lines = run_kid(
        Path::new(KID),
        &KidArgs::new(&journal, JOB, RUNS, RECORDS, &[Kind::Ok]),
    );
    assert!(!lines.is_empty());
    let runs = ids(&journal);
    assert_eq!(runs.len() as u64, RUNS, "the job's runs: {runs:?}");
    let dir = job_dir(&journal, JOB);
    let newest = runs.last().cloned().unwrap_or_default();
    let seg0: PathBuf = dir.join(format!("{newest}.000000.seg"));
    let planted = strays(&newest);
    for name in &planted {
        fs::copy(&seg0, dir.join(name)).expect("plant a stray");
    }

    // Readers and the CLI list the runs, and only them.
    let listed = ids(&journal);
    if listed != runs {
        failures.push(format!(
            "the reader lists {listed:?}, not the job's runs {runs:?}"
        ));
    }
    let o = output(
        runlog_cmd()
            .arg("--source")
            .arg("local")
            .arg("--json")
            .arg("list-runs")
            .arg(JOB)
            .env("RUNLOG_JOURNAL_DIR", &journal),
    );
    let cli_runs = o.stdout.lines().count();
    if o.code != 0 || cli_runs as u64 != RUNS {
        failures.push(format!(
            "runlog list-runs printed {cli_runs} runs (exit {}):\n{}{}",
            o.code, o.stdout, o.stderr
        ));
    }

    // verify names every stray and finds no corruption.
    let o = output(runlog_cmd().arg("journal").arg("verify").arg(&journal));
    if o.code != 0 {
        failures.push(format!(
            "journal verify exited {}:\n{}{}",
            o.code, o.stdout, o.stderr
        ));
    }
    for name in &planted {
        if !o.stdout.contains(name.as_str()) {
            failures.push(format!(
                "journal verify does not name the stray {name}:\n{}",
                o.stdout
            ));
        }
    }

    // The shipper ships the runs, records them, names the strays, and never uploads twice;
    // with every run shipped, local retention keeps max-logs runs and the strays.
    let max_logs = 2;
    let cfg = ShipperConfig::new(&journal, &redis.url(), max_logs, max_logs)
        .write(&t.path().join("shipper.toml"));
    let log = t.path().join("shipper.log");
    let first = ship_once_ok(&cfg, &log);
    let shipped = read_shipped(&dir)
        .ok()
        .flatten()
        .map(|s| s.runs.into_iter().collect::<Vec<_>>())
        .unwrap_or_default();
    let kept: Vec<String> = runs[runs.len() - max_logs..].to_vec();
    if !kept.iter().all(|id| shipped.contains(id)) {
        failures.push(format!(".shipped lists {shipped:?}, not the runs {kept:?}"));
    }
    for name in &planted {
        if !first.contains(name.as_str()) {
            failures.push(format!(
                "the shipper does not name the stray {name}:\n{first}"
            ));
        }
        if !dir.join(name).exists() {
            failures.push(format!("the stray {name} was deleted"));
        }
    }
    let mut conn = redis.conn();
    match check_consistent(&mut conn, "runlog") {
        Err(e) => failures.push(format!("Redis: {e}")),
        Ok(store) => {
            let up = store.ids(JOB);
            if up != kept {
                failures.push(format!("Redis holds {up:?}, not {kept:?}"));
            }
            for r in store.runs(JOB) {
                if r.status() != "ok" {
                    failures.push(format!("Redis has run {} as {}", r.id, r.status()));
                }
                lost += RECORDS.saturating_sub(r.records.len() as u64);
            }
        }
    }
    let local = ids(&journal);
    if local != kept {
        failures.push(format!(
            "after shipping the journal keeps {local:?}, not {kept:?}"
        ));
    }
    let second = ship_once_ok(&cfg, &log);
    if second.contains("uploaded") && !second.contains("uploaded 0") {
        failures.push(format!("a second pass uploaded again:\n{second}"));
    }

    conclude(
        "stray and misnamed segment files in a job directory",
        planted.len() as u64,
        &failures,
        lost,
    );
}
