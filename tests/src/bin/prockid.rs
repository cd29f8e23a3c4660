//! A job process of the concurrency torture scenario (`tests/tests/torture_proc.rs`):
//! `prockid JOURNAL PROC THREADS RUNS RECORDS MAX_LOGS MAX_FAILED_LOGS FAILS` starts `THREADS`
//! threads at once; each makes `RUNS` runs (of the jobs `torture_proc::job_of`
//! picks) of `RECORDS` records, and writes a line to stdout when each run ended.

use std::process::exit;

use runlog::RunLogger;

// Shared with the test through the file, not the library (`tests/src/torture_proc.rs`).
#[allow(dead_code, unreachable_pub)]
use runlog_e2e::torture_proc;

use torture_proc::{fails, job_of, message, run_line, who, ProcArgs};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let a = ProcArgs::parse(&argv).unwrap_or_else(|e| {
        eprintln!("prockid: {e}");
        exit(2)
    });
    let rl = RunLogger::builder()
        .journal_dir(&a.journal)
        .no_config_file()
        .max_logs(a.max_logs as usize)
        .max_failed_logs(a.max_failed_logs as usize)
        .fsync(runlog::FsyncPolicy::Never)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("prockid: building the logger failed: {e}");
            exit(2)
        });
    rl.install().unwrap_or_else(|e| {
        eprintln!("prockid: install failed: {e}");
        exit(2)
    });
    let barrier = std::sync::Barrier::new(a.threads as usize);
    std::thread::scope(|s| {
        for t in 0..a.threads {
            let (a, rl, barrier) = (&a, &rl, &barrier);
            s.spawn(move || {
                barrier.wait();
                for r in 0..a.runs {
                    let run = rl.runlog(job_of(a.proc_, t, r)).unwrap_or_else(|e| {
                        eprintln!("prockid: runlog failed: {e}");
                        exit(2)
                    });
                    run.set_level(log::LevelFilter::Debug);
                    run.label("who", &who(a.proc_, t, r));
                    for seq in 0..a.records {
                        log::info!(seq = seq; "{}", message(a.proc_, t, r, seq));
                    }
                    let failed = a.fails && fails(a.proc_, t, r);
                    if failed {
                        run.fail();
                    }
                    let id = run.id().to_owned();
                    drop(run);
                    let line = run_line(&id, if failed { "failed" } else { "ok" }, t, r);
                    runlog_e2e::tell_test(&line);
                }
            });
        }
    });
}
