//! Several processes write runs of the same job at once: no lock is shared between them on the
//! hot path, and every run comes out whole (this test binary re-runs itself as the children).

use std::process::Command;

use runlog::{Journal, RunLogger, RunStatus};

const CHILD_ENV: &str = "RUNLOG_PROCESSES_CHILD";
const CHILDREN: usize = 4;
const RUNS: usize = 5;
const RECORDS: usize = 2000;

/// The child: not a test on its own (returns at once unless run by the parent).
#[test]
fn child_writes_runs() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, who) = spec.split_once('|').unwrap();
    let rl = RunLogger::builder()
        .journal_dir(dir)
        .no_config_file()
        .max_logs(1000)
        .segment_size(64 << 10)
        .build()
        .unwrap();
    rl.install().unwrap();
    for r in 0..RUNS {
        let run = rl.runlog("shared-job").unwrap();
        run.label("child", who);
        run.label("run", &r.to_string());
        for i in 0..RECORDS {
            log::info!(child = who, run = r; "child {who} run {r} record {i}");
        }
    }
}

#[test]
fn concurrent_processes_writing_one_job_all_come_out_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let kids: Vec<_> = (0..CHILDREN)
        .map(|c| {
            Command::new(&exe)
                .args(["--exact", "child_writes_runs", "--test-threads=1"])
                .env(CHILD_ENV, format!("{}|{c}", tmp.path().display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let out = k.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let j = Journal::open(tmp.path()).unwrap();
    let runs = j.runs("shared-job").unwrap();
    assert_eq!(runs.len(), CHILDREN * RUNS);
    let mut seen = std::collections::BTreeSet::new();
    for info in &runs {
        assert_eq!(info.status, RunStatus::Ok);
        assert!(info.problems.is_empty(), "{:?}", info.problems);
        let label = |k: &str| info.labels.iter().find(|l| l.0 == k).unwrap().1.clone();
        let (who, r) = (label("child"), label("run"));
        assert!(seen.insert((who.clone(), r.clone())));
        let log = j.read_run("shared-job", &info.id).unwrap();
        assert_eq!(log.records.len(), RECORDS);
        for (i, rec) in log.records.iter().enumerate() {
            assert_eq!(rec.message, format!("child {who} run {r} record {i}"));
        }
    }
    // Ids are unique and sort by start time (to the microsecond, the resolution of the id).
    let starts: Vec<_> = runs.iter().map(|r| r.start_ns / 1000).collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted);
}
