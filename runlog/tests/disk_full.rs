//! A journal that runs out of space mid-run: the job goes on, records are counted as dropped,
//! it is told once on stderr, and the end marker records the count.
//!
//! The child is this test binary re-run with a file-size limit (`prlimit --fsize`), which makes
//! the journal's writes fail with EFBIG exactly as a full disk makes them fail with ENOSPC.

use std::process::Command;

use runlog::{Journal, RunLogger, RunStatus};

const CHILD_ENV: &str = "RUNLOG_DISK_FULL_CHILD";
const RECORDS: u64 = 20_000;

/// The child: not a test on its own (returns at once unless run by the parent).
#[test]
fn child_logs_past_the_size_limit() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rl = RunLogger::builder()
        .journal_dir(&dir)
        .no_config_file()
        // Segments grow 256 KiB, 512 KiB, 1 MiB...: the third is over the child's file size
        // limit.
        .segment_size(4 << 20)
        .build()
        .unwrap();
    rl.install().unwrap();
    let run = rl.runlog("filler").unwrap();
    for i in 0..RECORDS {
        log::info!(
            "record {i} padded to take some room in the segment: {:>64}",
            i
        );
    }
    let dropped = run.dropped();
    drop(run);
    // The job is alive and carries on.
    println!("CHILD-DONE dropped={dropped}");
}

#[test]
fn a_full_disk_drops_and_counts_records_and_the_job_lives_on() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // SIGXFSZ would kill the child: ignore it (inherited through exec), as EFBIG is what we want.
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "trap '' XFSZ; exec prlimit --fsize=600000 \"$0\" --exact child_logs_past_the_size_limit --nocapture --test-threads=1",
        )
        .arg(&exe)
        .env(CHILD_ENV, tmp.path())
        .output()
        .expect("run sh + prlimit (util-linux): install util-linux if prlimit is missing");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    let dropped: u64 = stdout
        .lines()
        .find_map(|l| l.split("CHILD-DONE dropped=").nth(1))
        .unwrap_or_else(|| panic!("child did not finish: {stdout}\n{stderr}"))
        .trim()
        .parse()
        .unwrap();
    assert!(dropped > 0, "the limit should have been hit");
    // Told once, naming the journal and the fix.
    let told = stderr
        .matches("records of this run are dropped and counted")
        .count();
    assert_eq!(told, 1, "{stderr}");
    assert!(
        stderr.contains(&tmp.path().display().to_string()),
        "{stderr}"
    );

    let j = Journal::open(tmp.path()).unwrap();
    let runs = j.runs("filler").unwrap();
    assert_eq!(runs.len(), 1);
    let log = j.read_run("filler", &runs[0].id).unwrap();
    assert_eq!(log.info.status, RunStatus::Ok, "{:?}", log.info);
    assert!(log.info.problems.is_empty(), "{:?}", log.info.problems);
    assert_eq!(log.info.dropped, dropped);
    assert_eq!(log.records.len() as u64 + dropped, RECORDS);
    // What was kept is a gap-free prefix: records are dropped only once space ran out.
    for (i, r) in log.records.iter().enumerate() {
        assert!(
            r.message.starts_with(&format!("record {i} ")),
            "{}",
            r.message
        );
    }
}
