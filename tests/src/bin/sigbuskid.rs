//! The child process of the SIGBUS tests (`tests/tests/sigbus.rs`).
//!
//! `sigbuskid logs JOURNAL BEFORE AFTER`: start a run of [`JOB`], log records `0..BEFORE`
//! ([`message`]), say `hold <run id>` on stdout and wait for a line on stdin (the test damages
//! the journal meanwhile), log records `BEFORE..BEFORE+AFTER`, end the run, say
//! `done dropped=<records the run counted as dropped before it ended>` and exit 0.
//!
//! `sigbuskid own-fault JOURNAL FILE`: start a run (so runlog's mapping, and whatever runlog
//! installs for it, exists), then map `FILE` itself, cut it to nothing and store into the
//! mapping: a fault of the job's own, which must kill it with SIGBUS as it would without
//! runlog. Says `survived` and exits 0 if it does not.

use std::fs::OpenOptions;
use std::io::BufRead;
use std::os::fd::AsRawFd;
use std::process::exit;

use runlog::RunLogger;
use runlog_e2e::sigbus::{message, JOB};

fn logger(journal: &str) -> RunLogger {
    let rl = RunLogger::builder()
        .journal_dir(journal)
        .no_config_file()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("sigbuskid: building the logger failed: {e}");
            exit(2)
        });
    rl.install().unwrap_or_else(|e| {
        eprintln!("sigbuskid: install failed: {e}");
        exit(2)
    });
    rl
}

fn number(s: Option<&String>) -> u64 {
    s.and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        eprintln!("sigbuskid: expected a number, got {s:?}");
        exit(2)
    })
}

fn logs(journal: &str, before: u64, after: u64) {
    let rl = logger(journal);
    let run = rl.runlog(JOB).unwrap_or_else(|e| {
        eprintln!("sigbuskid: runlog failed: {e}");
        exit(2)
    });
    run.set_level(log::LevelFilter::Info);
    for i in 0..before {
        log::info!("{}", message(i));
    }
    runlog_e2e::tell_test(&format!("hold {}\n", run.id()));
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    for i in before..before + after {
        log::info!("{}", message(i));
    }
    let dropped = run.dropped();
    drop(run);
    runlog_e2e::tell_test(&format!("done dropped={dropped}\n"));
}

fn own_fault(journal: &str, file: &str) {
    let rl = logger(journal);
    let run = rl.runlog(JOB).unwrap_or_else(|e| {
        eprintln!("sigbuskid: runlog failed: {e}");
        exit(2)
    });
    log::info!("{}", message(0));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(file)
        .and_then(|f| f.set_len(8192).map(|()| f))
        .unwrap_or_else(|e| {
            eprintln!("sigbuskid: {file}: {e}");
            exit(2)
        });
    // SAFETY: a fresh shared mapping of 8192 bytes of a file that holds them; no Rust reference
    // to it is made, only raw volatile stores below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        eprintln!(
            "sigbuskid: mmap failed: {}",
            std::io::Error::last_os_error()
        );
        exit(2)
    }
    if let Err(e) = f.set_len(0) {
        eprintln!("sigbuskid: cutting {file}: {e}");
        exit(2)
    }
    // SAFETY: inside the mapping made above; the file behind it is gone, so this raises SIGBUS,
    // which is the point.
    unsafe { std::ptr::write_volatile(p.cast::<u8>().add(4200), 1) };
    drop(run);
    runlog_e2e::tell_test("survived\n");
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.first().map(String::as_str) {
        Some("logs") if argv.len() == 4 => {
            logs(&argv[1], number(argv.get(2)), number(argv.get(3)));
        }
        Some("own-fault") if argv.len() == 3 => own_fault(&argv[1], &argv[2]),
        _ => {
            eprintln!("usage: sigbuskid logs JOURNAL BEFORE AFTER | own-fault JOURNAL FILE");
            exit(2)
        }
    }
}
