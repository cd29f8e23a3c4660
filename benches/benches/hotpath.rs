//! The hot path of a `log` call: runlog inside a run against the loggers it replaces, and
//! runlog outside any run against a logger that only forwards.
//!
//! `cargo bench -p runlog-benches --bench hotpath [-- FILTER...]`
//!
//! A `log` logger can be installed once per process, so this binary re-executes itself once
//! per configuration and repeat (`--child CONFIG THREADS RECORDS DIR`); each child measures
//! one configuration and prints one `RESULT key=value...` line, and the parent prints the
//! table and the ratios against the targets. See `benches/README.md`.

mod common;
use common::{base_dir, env_number, filesystem_of, log_loop, USER};

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

/// Records per configuration unless `RUNLOG_BENCH_RECORDS` says otherwise.
const DEFAULT_RECORDS: u64 = 1_000_000;
/// Repeats of every configuration unless `RUNLOG_BENCH_REPEAT` says otherwise.
const DEFAULT_REPEAT: usize = 5;

/// What one child measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Config {
    /// Format the message into a reused `String`; no logger (the floor).
    Floor,
    /// `Mutex<BufWriter<File>>` `log` logger (fern / simplelog `WriteLogger` style).
    BufWriter,
    /// `tracing_appender::non_blocking` (not lossy) writing to a `File`.
    TracingAppender,
    /// runlog inside a run; with 2 threads each thread has its own run (two jobs).
    Runlog,
    /// runlog inside one run shared by all threads (attached with `Run::scope`).
    RunlogShared,
    /// A `log` logger that only forwards to [`Sink`].
    ForwardOnly,
    /// runlog installed with `forward_to(Sink)`, logging outside any run.
    RunlogOutside,
}

impl Config {
    const ALL: [Config; 7] = [
        Config::Floor,
        Config::BufWriter,
        Config::TracingAppender,
        Config::Runlog,
        Config::RunlogShared,
        Config::ForwardOnly,
        Config::RunlogOutside,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::Floor => "floor",
            Config::BufWriter => "bufwriter",
            Config::TracingAppender => "tracing-appender",
            Config::Runlog => "runlog-in-run",
            Config::RunlogShared => "runlog-shared-run",
            Config::ForwardOnly => "forward-only",
            Config::RunlogOutside => "runlog-outside-run",
        }
    }

    fn from_name(s: &str) -> Option<Config> {
        Config::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Thread counts measured (a shared run of one thread is the same as `Runlog`).
    fn threads(self) -> &'static [usize] {
        match self {
            Config::RunlogShared => &[2],
            _ => &[1, 2],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The loggers under test.

/// Nanoseconds since the epoch, as runlog stamps its records.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// `"{ts} {level} {target}: {args}\n"`.
fn write_line(w: &mut impl Write, record: &Record<'_>) -> std::io::Result<()> {
    writeln!(
        w,
        "{} {} {}: {}",
        now_ns(),
        record.level(),
        record.target(),
        record.args()
    )
}

/// A buffered file behind a mutex; formats straight into the buffer under the lock.
struct BufWriterLogger {
    out: Mutex<BufWriter<File>>,
}

impl Log for BufWriterLogger {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.level() <= LevelFilter::Info
    }

    fn log(&self, record: &Record<'_>) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = write_line(&mut *out, record);
    }

    fn flush(&self) {
        let _ = self.out.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(256));
    static TEXT: RefCell<String> = RefCell::new(String::with_capacity(256));
}

/// Formats the line into a thread-local buffer and hands it to tracing-appender's
/// `NonBlocking` writer, cloned per record as `tracing_subscriber::fmt` does through
/// `MakeWriter::make_writer`.
struct TracingAppenderLogger {
    writer: tracing_appender::non_blocking::NonBlocking,
}

impl Log for TracingAppenderLogger {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.level() <= LevelFilter::Info
    }

    fn log(&self, record: &Record<'_>) {
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            let _ = write_line(&mut *line, record);
            let mut w = self.writer.clone();
            let _ = w.write_all(&line);
        });
    }

    fn flush(&self) {}
}

/// The inner logger of the forwarding comparison: a small fixed amount of real work (format
/// the message into a reused thread-local `String`).
struct Sink;

impl Log for Sink {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        TEXT.with(|text| {
            let mut text = text.borrow_mut();
            text.clear();
            let _ = write!(text, "{}", record.args());
            black_box(text.as_str());
        });
    }

    fn flush(&self) {}
}

/// A logger that only forwards (what runlog does outside a run, minus looking for a run).
struct Forward {
    inner: Box<dyn Log>,
}

impl Log for Forward {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.inner.enabled(meta)
    }

    fn log(&self, record: &Record<'_>) {
        self.inner.log(record);
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

// ---------------------------------------------------------------------------------------------
// The measured loops.

/// Format records `from..to` of `n` into a reused `String`.
#[inline(never)]
fn floor_loop(from: u64, to: u64, n: u64) {
    let user = black_box(USER);
    let n = black_box(n);
    let mut s = String::with_capacity(128);
    for i in from..to {
        s.clear();
        let _ = write!(s, "processed item {} of {} for user {}", i, n, user);
        black_box(s.as_str());
    }
}

/// The share of thread `t` of `threads`: records `from..to`.
fn share(t: usize, threads: usize, n: u64) -> (u64, u64) {
    let at = |k: usize| n * k as u64 / threads as u64;
    (at(t), at(t + 1))
}

/// What a child measured.
#[derive(Default)]
struct Measured {
    /// Wall time of the whole timed region.
    wall: Duration,
    /// Inside the timed region, before the first record: starting the run (slowest thread).
    start: Duration,
    /// Inside the timed region, after the last record: flush, guard drop, commit.
    end: Duration,
    /// Records found in the output afterwards (None: not checked).
    written: Option<u64>,
    /// Records the logger says it dropped.
    dropped: u64,
}

/// Per-thread outcome of a runlog run.
#[derive(Default)]
struct RunStats {
    start: Duration,
    end: Duration,
    written: u64,
    dropped: u64,
}

/// Start a run of `job`, log this thread's share into it, end it.
fn runlog_thread(rl: &runlog::RunLogger, job: &str, from: u64, to: u64, n: u64) -> RunStats {
    let t0 = Instant::now();
    let run = match rl.runlog(job) {
        Ok(r) => r,
        Err(e) => panic!("cannot start a run: {e}"),
    };
    run.set_level(LevelFilter::Info);
    let t1 = Instant::now();
    log_loop(from, to, n);
    let t2 = Instant::now();
    let (written, dropped) = (run.records(), run.dropped());
    drop(run);
    RunStats {
        start: t1 - t0,
        end: t2.elapsed(),
        written,
        dropped,
    }
}

/// Run `f(t)` on `threads` scoped threads; the results in thread order.
fn on_threads<R: Send>(threads: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || f(t))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Count `\n` in a file.
fn count_lines(path: &Path) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(lines);
        }
        lines += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

fn install(logger: Box<dyn Log>, level: LevelFilter) {
    if let Err(e) = log::set_boxed_logger(logger) {
        panic!("cannot install the logger: {e}");
    }
    log::set_max_level(level);
}

fn runlog_builder(dir: &Path) -> runlog::Builder {
    runlog::RunLogger::builder()
        .journal_dir(dir.join("journal"))
        .no_config_file()
        .fsync(runlog::FsyncPolicy::Commit)
}

fn build_and_install(b: runlog::Builder) -> runlog::RunLogger {
    let rl = b
        .build()
        .unwrap_or_else(|e| panic!("cannot build runlog: {e}"));
    rl.install()
        .unwrap_or_else(|e| panic!("cannot install runlog: {e}"));
    rl
}

/// Measure one configuration in this process.
fn measure(cfg: Config, threads: usize, n: u64, dir: &Path) -> Measured {
    let work = |t: usize| {
        let (from, to) = share(t, threads, n);
        log_loop(from, to, n);
    };
    match cfg {
        Config::Floor => {
            let t0 = Instant::now();
            on_threads(threads, |t| {
                let (from, to) = share(t, threads, n);
                floor_loop(from, to, n);
            });
            Measured {
                wall: t0.elapsed(),
                ..Measured::default()
            }
        }
        Config::BufWriter => {
            let path = dir.join("bufwriter.log");
            let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            install(
                Box::new(BufWriterLogger {
                    out: Mutex::new(BufWriter::new(file)),
                }),
                LevelFilter::Info,
            );
            let t0 = Instant::now();
            on_threads(threads, work);
            let t1 = Instant::now();
            log::logger().flush();
            let m = Measured {
                wall: t0.elapsed(),
                end: t1.elapsed(),
                ..Measured::default()
            };
            Measured {
                written: count_lines(&path).ok(),
                ..m
            }
        }
        Config::TracingAppender => {
            let path = dir.join("tracing-appender.log");
            let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .finish(file);
            let errors = writer.error_counter();
            install(
                Box::new(TracingAppenderLogger { writer }),
                LevelFilter::Info,
            );
            let t0 = Instant::now();
            on_threads(threads, work);
            let t1 = Instant::now();
            // The worker drains the queue and flushes before the guard's drop returns.
            drop(guard);
            let m = Measured {
                wall: t0.elapsed(),
                end: t1.elapsed(),
                dropped: errors.dropped_lines() as u64,
                ..Measured::default()
            };
            Measured {
                written: count_lines(&path).ok(),
                ..m
            }
        }
        Config::Runlog => {
            let rl = build_and_install(runlog_builder(dir));
            let t0 = Instant::now();
            let stats = on_threads(threads, |t| {
                let (from, to) = share(t, threads, n);
                runlog_thread(&rl, &format!("bench-{t}"), from, to, n)
            });
            let wall = t0.elapsed();
            Measured {
                wall,
                start: stats.iter().map(|s| s.start).max().unwrap_or_default(),
                end: stats.iter().map(|s| s.end).max().unwrap_or_default(),
                written: Some(stats.iter().map(|s| s.written).sum()),
                dropped: stats.iter().map(|s| s.dropped).sum(),
            }
        }
        Config::RunlogShared => {
            let rl = build_and_install(runlog_builder(dir));
            let t0 = Instant::now();
            let run = rl
                .runlog("bench-shared")
                .unwrap_or_else(|e| panic!("cannot start a run: {e}"));
            run.set_level(LevelFilter::Info);
            let start = t0.elapsed();
            run.scope(|s| {
                let work = &work;
                let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || work(t))).collect();
                for h in handles {
                    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                }
            });
            let t1 = Instant::now();
            let (written, dropped) = (run.records(), run.dropped());
            drop(run);
            Measured {
                wall: t0.elapsed(),
                start,
                end: t1.elapsed(),
                written: Some(written),
                dropped,
            }
        }
        Config::ForwardOnly => {
            install(
                Box::new(Forward {
                    inner: Box::new(Sink),
                }),
                LevelFilter::Trace,
            );
            let t0 = Instant::now();
            on_threads(threads, work);
            Measured {
                wall: t0.elapsed(),
                ..Measured::default()
            }
        }
        Config::RunlogOutside => {
            let _rl = build_and_install(runlog_builder(dir).forward_to(Box::new(Sink)));
            let t0 = Instant::now();
            on_threads(threads, work);
            Measured {
                wall: t0.elapsed(),
                ..Measured::default()
            }
        }
    }
}

/// The child: `--child CONFIG THREADS RECORDS DIR`.
fn child(args: &[String]) -> ExitCode {
    let [cfg, threads, records, dir] = args else {
        eprintln!("usage: hotpath --child CONFIG THREADS RECORDS DIR");
        return ExitCode::FAILURE;
    };
    let (Some(cfg), Ok(threads), Ok(n)) = (
        Config::from_name(cfg),
        threads.parse::<usize>(),
        records.parse::<u64>(),
    ) else {
        eprintln!("hotpath --child: bad arguments {args:?}");
        return ExitCode::FAILURE;
    };
    let dir = match tempfile::Builder::new()
        .prefix(&format!("{}-{threads}-", cfg.name()))
        .tempdir_in(dir)
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("hotpath: cannot create a directory in {dir}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let m = measure(cfg, threads, n, dir.path());
    let written = m.written.map_or_else(|| "-".to_owned(), |w| w.to_string());
    println!(
        "RESULT config={} threads={threads} records={n} wall_ns={} start_ns={} end_ns={} \
         written={written} dropped={}",
        cfg.name(),
        m.wall.as_nanos(),
        m.start.as_nanos(),
        m.end.as_nanos(),
        m.dropped,
    );
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// The parent: run the children, collect, print.

/// One child's parsed `RESULT` line.
struct Sample {
    wall_ns: f64,
    start_ns: f64,
    end_ns: f64,
    written: Option<u64>,
    dropped: u64,
}

fn parse_result(line: &str) -> Option<Sample> {
    let rest = line.strip_prefix("RESULT ")?;
    let get = |k: &str| {
        rest.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
    };
    let num = |k: &str| get(k)?.parse::<f64>().ok();
    Some(Sample {
        wall_ns: num("wall_ns")?,
        start_ns: num("start_ns")?,
        end_ns: num("end_ns")?,
        written: get("written")?.parse().ok(),
        dropped: get("dropped")?.parse().ok()?,
    })
}
struct Row {
    cfg: Config,
    threads: usize,
    samples: Vec<Sample>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        k if k % 2 == 1 => v[k / 2],
        k => (v[k / 2 - 1] + v[k / 2]) / 2.0,
    }
}

impl Row {
    /// The median over the repeats of `f(sample) / n`.
    fn median(&self, n: u64, f: impl Fn(&Sample) -> f64) -> f64 {
        median(&mut self.per_record(n, f))
    }
    fn per_record(&self, n: u64, f: impl Fn(&Sample) -> f64) -> Vec<f64> {
        self.samples.iter().map(|s| f(s) / n as f64).collect()
    }
}

fn parent(filters: &[String]) -> ExitCode {
    let n: u64 = env_number("RUNLOG_BENCH_RECORDS", DEFAULT_RECORDS).max(1);
    let repeat: usize = env_number("RUNLOG_BENCH_REPEAT", DEFAULT_REPEAT).max(1);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("hotpath: cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = base_dir();
    let root = match tempfile::Builder::new()
        .prefix("runlog-bench-")
        .tempdir_in(&base)
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "hotpath: cannot create a directory in {}: {e}",
                base.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut rows: Vec<Row> = Config::ALL
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name().contains(f.as_str())))
        .flat_map(|cfg| {
            cfg.threads().iter().map(move |&threads| Row {
                cfg,
                threads,
                samples: Vec::new(),
            })
        })
        .collect();
    if rows.is_empty() {
        eprintln!("hotpath: no configuration matches {filters:?}");
        return ExitCode::FAILURE;
    }

    let fs = filesystem_of(root.path()).map_or_else(
        || "unknown filesystem".to_owned(),
        |(dev, at, fs)| format!("{dev} mounted on {at}, {fs}"),
    );
    let cpus = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!("runlog hot path: log::info!(\"processed item {{}} of {{}} for user {{}}\", ..)");
    println!(
        "{n} records per configuration (split evenly across the threads), {repeat} repeats \
         interleaved, medians; {cpus} CPUs"
    );
    println!("files in {} ({fs})", root.path().display());
    println!("runlog: fsync = commit, default segment size, no config file, RUNLOG_* unset");
    println!();

    let started = Instant::now();
    let mut failed = false;
    for rep in 0..repeat {
        for row in &mut rows {
            let mut cmd = Command::new(&exe);
            cmd.arg("--child")
                .arg(row.cfg.name())
                .arg(row.threads.to_string())
                .arg(n.to_string())
                .arg(root.path())
                .stdin(Stdio::null())
                .stderr(Stdio::inherit());
            // runlog's own variables would override the builder (journal dir, fsync, ...).
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if k.starts_with("RUNLOG_") && !k.starts_with("RUNLOG_BENCH_") {
                    cmd.env_remove(&*k);
                }
            }
            let out = match cmd.output() {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("hotpath: cannot run {}: {e}", exe.display());
                    return ExitCode::FAILURE;
                }
            };
            let stdout = String::from_utf8_lossy(&out.stdout);
            match stdout.lines().find_map(parse_result) {
                Some(s) if out.status.success() => row.samples.push(s),
                _ => {
                    failed = true;
                    eprintln!(
                        "hotpath: {} on {} thread(s), repeat {}: {}; output: {stdout}",
                        row.cfg.name(),
                        row.threads,
                        rep + 1,
                        out.status
                    );
                }
            }
        }
    }

    println!(
        "{:<19} {:>7} {:>9} {:>7} {:>7} {:>10} {:>6} {:>6}  records check",
        "config", "threads", "ns/record", "min", "max", "per-thread", "start", "end"
    );
    for row in &rows {
        let mut wall = row.per_record(n, |s| s.wall_ns);
        let med = median(&mut wall);
        let (min, max) = (wall.first().copied(), wall.last().copied());
        println!(
            "{:<19} {:>7} {:>9.1} {:>7.1} {:>7.1} {:>10.1} {:>6.1} {:>6.1}  {}",
            row.cfg.name(),
            row.threads,
            med,
            min.unwrap_or(f64::NAN),
            max.unwrap_or(f64::NAN),
            med * row.threads as f64,
            row.median(n, |s| s.start_ns),
            row.median(n, |s| s.end_ns),
            records_check(row, n),
        );
    }
    println!();
    for line in [
        "ns/record: wall-clock time of the timed region / all records (throughput), median of",
        "  the repeats; min and max of the same. per-thread: ns/record x threads (one thread's time",
        "  per call). Ratios compare ns/record at the same thread count (the same in either view).",
        "start, end: the part of ns/record spent in the timed region before the first record",
        "  (starting the run) and after the last (runlog: ending the run = commit frame, msync +",
        "  fdatasync of the run, retention; bufwriter: flush; tracing-appender: guard drop = the",
        "  worker draining its queue to the file).",
    ] {
        println!("{line}");
    }
    println!();

    let find = |cfg: Config, threads: usize| {
        rows.iter()
            .find(|r| r.cfg == cfg && r.threads == threads && !r.samples.is_empty())
    };
    let targets = [
        (Config::Runlog, Config::BufWriter, 1, 0.8),
        (Config::Runlog, Config::BufWriter, 2, 0.7),
        (Config::RunlogShared, Config::BufWriter, 2, 0.7),
        (Config::Runlog, Config::TracingAppender, 1, 0.2),
        (Config::Runlog, Config::TracingAppender, 2, 0.2),
        (Config::RunlogShared, Config::TracingAppender, 2, 0.2),
        (Config::RunlogOutside, Config::ForwardOnly, 1, 1.2),
        (Config::RunlogOutside, Config::ForwardOnly, 2, 1.2),
    ];
    for (a, b, threads, target) in targets {
        let (Some(x), Some(y)) = (find(a, threads), find(b, threads)) else {
            continue;
        };
        let base = y.median(n, |s| s.wall_ns);
        let ratio = x.median(n, |s| s.wall_ns) / base;
        let verdict = |r: f64| if r <= target { "PASS" } else { "FAIL" };
        let plural = if threads == 1 { "thread" } else { "threads" };
        let mut line = format!(
            "{}/{} {threads} {plural}: {ratio:.3} (target <= {target:.2}) {}",
            a.name(),
            b.name(),
            verdict(ratio),
        );
        if x.median(n, |s| s.start_ns + s.end_ns) > 0.0 {
            let hot = x.median(n, |s| s.wall_ns - s.start_ns - s.end_ns) / base;
            let _ = write!(
                line,
                "; without run start and commit: {hot:.3} {}",
                verdict(hot)
            );
        }
        println!("{line}");
    }
    println!();
    println!(
        "took {:.1} s; children run as `{} --child CONFIG THREADS RECORDS DIR`",
        started.elapsed().as_secs_f64(),
        exe.display()
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// "ok", or what is wrong with the records each child found afterwards.
fn records_check(row: &Row, n: u64) -> String {
    let mut problems = Vec::new();
    for s in &row.samples {
        match s.written {
            Some(w) if w != n || s.dropped != 0 => {
                problems.push(format!("{w} written, {} dropped", s.dropped));
            }
            _ => {}
        }
    }
    if row.samples.iter().all(|s| s.written.is_none()) {
        "-".to_owned()
    } else if problems.is_empty() {
        format!("all {n} in every repeat")
    } else {
        format!("MISSING: {}", problems.join("; "))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1..]);
    }
    // `cargo bench` passes `--bench`; other words filter configurations by name.
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
    parent(&filters)
}
