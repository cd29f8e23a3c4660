//! A job process for the shipper tests (`tests/tests/shipper.rs`): it writes runs of one job
//! with the runlog library, as a real job would, and acknowledges each on stdout.
//!
//! `jobkid --journal DIR --job NAME [--runs N] [--records M] [--status ok,fail,...|mixed]
//! [--delay-ms D] [--size BYTES] [--label K=V]... [--max-logs N] [--max-failed-logs N]
//! [--fsync never|commit|always] [--latency] [--noise]` (see [`runlog_e2e::shipper::KidArgs`]).
//!
//! Lines (each flushed when written, after the thing it reports returned; see
//! [`runlog_e2e::shipper::KidLine`]): `run <id> <status> <records> <kind>` per ended run,
//! `hold <id> <records>` when a `hold` run waits for a line on stdin, `crash <id> <records>`
//! just before a `crash` run aborts the process, `latency log|run n=.. p50_ns=.. p99_ns=..
//! max_ns=..` at exit with `--latency` (durations of log calls, and of starting and ending
//! runs), and `done`.

use std::fmt;
use std::io::BufRead;
use std::process::exit;
use std::time::{Duration, Instant};

use log::Level;
use runlog::{FsyncPolicy, Run, RunLogger};
use runlog_e2e::shipper::{KidArgs, KidLine, Kind, Latency};

fn say(line: &KidLine) {
    runlog_e2e::tell_test(&format!("{}\n", line.line()));
}

/// An error with a source, for `Kind::Err`.
#[derive(Debug)]
struct KidError {
    run: u64,
    source: std::io::Error,
}

impl fmt::Display for KidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {} could not finish its work", self.run)
    }
}

impl std::error::Error for KidError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

struct Kid {
    args: KidArgs,
    log_ns: Vec<u64>,
    run_ns: Vec<u64>,
}

const LEVELS: [Level; 4] = [Level::Info, Level::Debug, Level::Warn, Level::Trace];

impl Kid {
    /// Varied but deterministic filler text of `size` bytes.
    fn filler(&self, i: u64, j: u64) -> String {
        let mut s = String::with_capacity(self.args.size + 16);
        let mut x = (i << 32 | j).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        if self.args.noise {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            while s.len() < self.args.size {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                for k in 0..10 {
                    s.push(char::from(ALPHABET[((x >> (6 * k)) & 63) as usize]));
                }
            }
            s.truncate(self.args.size);
            return s;
        }
        while s.len() < self.args.size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let words = [
                "alpha", "beta", "gamma", "delta", "item", "user", "queue", "ok",
            ];
            s.push_str(words[(x % 8) as usize]);
            s.push(' ');
            if x.is_multiple_of(5) {
                s.push_str(&format!("{:x} ", x >> 40));
            }
        }
        s.truncate(self.args.size);
        s
    }

    /// Log record `j` of run `i`, timing the call.
    fn log_one(&mut self, i: u64, j: u64) {
        let level = LEVELS[(j % 4) as usize];
        let filler = self.filler(i, j);
        let user = if j.is_multiple_of(2) { "bar" } else { "baz ü" };
        let t = Instant::now();
        log::log!(level, seq = j, user = user; "run {i} record {j}: {filler}");
        let d = t.elapsed().as_nanos() as u64;
        if self.args.latency {
            self.log_ns.push(d);
        }
    }

    fn start(&mut self, rl: &RunLogger, i: u64) -> Run {
        let t = Instant::now();
        let run = rl.runlog(&self.args.job).unwrap_or_else(|e| {
            eprintln!("jobkid: runlog({:?}) failed: {e}", self.args.job);
            exit(2)
        });
        self.run_ns.push(t.elapsed().as_nanos() as u64);
        run.set_level(log::LevelFilter::Trace);
        for (k, v) in &self.args.labels {
            run.label(k, v);
        }
        run.label("index", &i.to_string());
        run
    }

    fn end(&mut self, run: Run) {
        let t = Instant::now();
        drop(run);
        self.run_ns.push(t.elapsed().as_nanos() as u64);
    }

    fn one_run(&mut self, rl: &RunLogger, i: u64, kind: Kind) {
        let n = self.args.records;
        match kind {
            Kind::Ok | Kind::Fail | Kind::Cancel | Kind::Crash | Kind::Hold => {
                let run = self.start(rl, i);
                let id = run.id().to_owned();
                for j in 0..n {
                    self.log_one(i, j);
                }
                match kind {
                    Kind::Ok => self.end(run),
                    Kind::Fail => {
                        log::error!(run = i; "giving up: run {i} failed on purpose");
                        run.fail();
                        self.end(run);
                    }
                    Kind::Cancel => run.cancel(),
                    Kind::Crash => {
                        log::error!("about to crash in run {i}");
                        say(&KidLine::Crash { id, records: n + 1 });
                        std::process::abort();
                    }
                    Kind::Hold => {
                        say(&KidLine::Hold {
                            id: id.clone(),
                            records: n,
                        });
                        let mut line = String::new();
                        let _ = std::io::stdin().lock().read_line(&mut line);
                        log::info!("released");
                        self.end(run);
                        say(&KidLine::Run {
                            id,
                            status: kind.status().into(),
                            records: n + 1,
                            kind: kind.as_str().into(),
                        });
                        return;
                    }
                    Kind::Panic | Kind::Err => unreachable!(),
                }
                let records = if kind == Kind::Fail { n + 1 } else { n };
                say(&KidLine::Run {
                    id,
                    status: kind.status().into(),
                    records,
                    kind: kind.as_str().into(),
                });
            }
            Kind::Panic => {
                let run = self.start(rl, i);
                let id = run.id().to_owned();
                for j in 0..n {
                    self.log_one(i, j);
                }
                // The panic is recorded by the hook `install` set; the run ends failed when
                // its guard drops during the unwind.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _run = run;
                    panic!("panic in run {i}: the input was bad");
                }));
                assert!(r.is_err());
                say(&KidLine::Run {
                    id,
                    status: kind.status().into(),
                    // The panic message and the backtrace.
                    records: n + 2,
                    kind: kind.as_str().into(),
                });
            }
            Kind::Err => {
                let mut id = String::new();
                let t = Instant::now();
                let res: Result<(), KidError> = rl.run(&self.args.job.clone(), |run| {
                    self.run_ns.push(t.elapsed().as_nanos() as u64);
                    id = run.id().to_owned();
                    run.set_level(log::LevelFilter::Trace);
                    for (k, v) in &self.args.labels {
                        run.label(k, v);
                    }
                    run.label("index", &i.to_string());
                    for j in 0..n {
                        self.log_one(i, j);
                    }
                    Err(KidError {
                        run: i,
                        source: std::io::Error::other("disk quota of bar exceeded"),
                    })
                });
                assert!(res.is_err());
                say(&KidLine::Run {
                    id,
                    status: kind.status().into(),
                    records: n + 1,
                    kind: kind.as_str().into(),
                });
            }
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = KidArgs::parse(&argv).unwrap_or_else(|e| {
        eprintln!("jobkid: {e}");
        exit(2)
    });
    let fsync = match args.fsync.as_str() {
        "never" => FsyncPolicy::Never,
        "commit" => FsyncPolicy::Commit,
        "always" => FsyncPolicy::Always,
        other => {
            eprintln!("jobkid: bad --fsync {other:?}");
            exit(2)
        }
    };
    let rl = RunLogger::builder()
        .journal_dir(&args.journal)
        .no_config_file()
        .fsync(fsync)
        .max_logs(args.max_logs)
        .max_failed_logs(args.max_failed_logs)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("jobkid: building the logger failed: {e}");
            exit(2)
        });
    rl.install().unwrap_or_else(|e| {
        eprintln!("jobkid: install failed: {e}");
        exit(2)
    });
    let mut kid = Kid {
        log_ns: Vec::with_capacity((args.runs * args.records) as usize),
        run_ns: Vec::new(),
        args,
    };
    let kinds = kid.args.kinds.clone();
    for i in 0..kid.args.runs {
        if i > 0 && kid.args.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(kid.args.delay_ms));
        }
        kid.one_run(&rl, i, kinds[(i as usize) % kinds.len()]);
    }
    if kid.args.latency {
        say(&KidLine::Latency {
            what: "log".into(),
            lat: Latency::of(std::mem::take(&mut kid.log_ns)),
        });
        say(&KidLine::Latency {
            what: "run".into(),
            lat: Latency::of(std::mem::take(&mut kid.run_ns)),
        });
    }
    say(&KidLine::Done);
}
