//! The child process of the SIGKILL crash tests (`tests/tests/crash.rs`).
//!
//! `crashkid JOURNAL_DIR MODE SEED FSYNC SEGMENT_SIZE MAX_LOGS` logs the records
//! [`runlog_e2e::crash::expected`] describes into runs of [`runlog_e2e::crash::JOB`] until it
//! is killed, and acknowledges on stdout (one `write(2)` per line) each thing that returned:
//! the run start, every log call, every label, every commit and every cancel. An
//! acknowledgement is written only after the call it acknowledges returned, so every
//! acknowledged record must be in the journal whatever instant the process is killed at.

use std::process::exit;
use std::time::Instant;

use log::Level;
use runlog::{Run, RunLogger};
use runlog_e2e::crash::{
    expected, run_cancelled, run_records, Ack, ChildArgs, ChildMode, Kvs, CHILD_DEADLINE,
    CUSTOM_TARGET, DEFAULT_TARGET, JOB, LABEL_EVERY, PROGRESS_LABEL, RECOVERY_MESSAGE, RUN_LABEL,
    THREADS,
};

/// Write an acknowledgement line. Standard output is line-buffered and locked per call: a
/// whole line goes out in one `write(2)` when its newline is written (a line of at most
/// `PIPE_BUF` bytes is written to a pipe atomically), so threads never interleave inside a
/// line, and it has left the process before this returns.
fn ack(a: &Ack) {
    runlog_e2e::tell_test(&a.line());
}

/// Log record `seq` of `thread` in run `run` exactly as [`expected`] describes it.
fn log_one(args: &ChildArgs, run: u64, thread: u32, seq: u64) {
    let e = expected(args.seed, args.mode, run, thread, seq);
    let (p, f) = (e.prefix.as_str(), e.filler.as_str());
    let lvl: Level = e.level;
    macro_rules! emit {
        ($target:expr) => {
            match &e.kvs {
                Kvs::None => log::log!(target: $target, lvl, "{} {}", p, f),
                Kvs::Small => {
                    log::log!(target: $target, lvl, seq = seq, thread = thread; "{} {}", p, f)
                }
                Kvs::Blob(b) => log::log!(
                    target: $target,
                    lvl,
                    seq = seq,
                    thread = thread,
                    blob = b.as_str();
                    "{} {}",
                    p,
                    f
                ),
            }
        };
    }
    if e.target == CUSTOM_TARGET {
        emit!(CUSTOM_TARGET);
    } else {
        emit!(DEFAULT_TARGET);
    }
    ack(&Ack::Record { run, thread, seq });
}

/// Log records of `thread` in run 0 until killed; thread 0 also updates the progress label.
fn log_forever(args: &ChildArgs, thread: u32, run: Option<&Run>, start: Instant) {
    for seq in 0.. {
        log_one(args, 0, thread, seq);
        if let Some(run) = run {
            if (seq + 1) % LABEL_EVERY == 0 {
                run.label(PROGRESS_LABEL, &seq.to_string());
                ack(&Ack::Label { run: 0, value: seq });
            }
        }
        if seq % 256 == 0 && start.elapsed() > CHILD_DEADLINE {
            eprintln!("crashkid: not killed within {CHILD_DEADLINE:?}; giving up");
            exit(3);
        }
    }
}

fn start_run(rl: &RunLogger, run: u64) -> Run {
    let r = rl.runlog(JOB).unwrap_or_else(|e| {
        eprintln!("crashkid: runlog({JOB:?}) failed: {e}");
        exit(2)
    });
    ack(&Ack::Started {
        run,
        id: r.id().to_owned(),
    });
    r.set_level(log::LevelFilter::Trace);
    r
}

fn main() {
    let start = Instant::now();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = ChildArgs::parse(&argv).unwrap_or_else(|e| {
        eprintln!("crashkid: {e}");
        exit(2)
    });
    assert_eq!(module_path!(), DEFAULT_TARGET);
    // If the test dies, the next acknowledgement fails (its pipe is closed) and we exit.
    ack(&Ack::Hello);
    let rl = RunLogger::builder()
        .journal_dir(&args.journal_dir)
        .no_config_file()
        .segment_size(args.segment_size)
        .fsync(args.fsync.policy())
        .max_logs(usize::try_from(args.max_logs).unwrap_or(usize::MAX))
        .max_failed_logs(1 << 20)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("crashkid: building the logger failed: {e}");
            exit(2)
        });
    rl.install().unwrap_or_else(|e| {
        eprintln!("crashkid: install failed: {e}");
        exit(2)
    });
    match args.mode {
        ChildMode::Single | ChildMode::Large => {
            let run = start_run(&rl, 0);
            log_forever(&args, 0, Some(&run), start);
        }
        ChildMode::Threads => {
            let run = start_run(&rl, 0);
            run.scope(|s| {
                for t in 1..THREADS {
                    let args = &args;
                    s.spawn(move || log_forever(args, t, None, start));
                }
                log_forever(&args, 0, Some(&run), start)
            });
        }
        ChildMode::Runs => {
            for i in 0.. {
                let run = start_run(&rl, i);
                run.label(RUN_LABEL, &i.to_string());
                ack(&Ack::Label { run: i, value: i });
                for seq in 0..run_records(args.seed, i) {
                    log_one(&args, i, 0, seq);
                }
                if run_cancelled(args.seed, i) {
                    run.cancel();
                    ack(&Ack::Cancelled { run: i });
                } else {
                    drop(run);
                    ack(&Ack::Committed { run: i });
                }
                if start.elapsed() > CHILD_DEADLINE {
                    eprintln!("crashkid: not killed within {CHILD_DEADLINE:?}; giving up");
                    exit(3);
                }
            }
        }
        ChildMode::Recover => {
            let run = start_run(&rl, 0);
            log::info!("{RECOVERY_MESSAGE}");
            drop(run);
            ack(&Ack::Committed { run: 0 });
        }
    }
}
