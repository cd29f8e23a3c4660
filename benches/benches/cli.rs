//! The `runlog` CLI printing a big run, against the plain unix tools reading the same text:
//! from Redis (`runlog --source redis logs JOB last`) against `redis-cli --raw LRANGE` of the
//! same lines kept as a plain list, from the journal (`--source local`) against `cat` of the
//! text, and `--grep WORD` against `grep WORD`.
//!
//! `cargo bench -p runlog-benches --bench cli [-- redis|local|grep]`
//!
//! The bench starts its own `redis-server` on a free loopback port and stops it by pid; it never
//! talks to any other Redis. The run is written by this binary re-executed as a child with runlog
//! installed (`--write-journal JOURNAL RECORDS`: a `log` logger can be installed once per
//! process), and shipped with the release `runlog-shipper --once`. See `benches/README.md`,
//! section `cli`.

mod common;
#[path = "common/procs.rs"]
mod procs;
use common::{base_dir, env_number, filesystem_of, log_loop, USER};
use procs::{clean_command, release_binaries, stats, thousands, write_journal, RedisServer};

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use log::LevelFilter;

/// Records in the run unless `RUNLOG_BENCH_RECORDS` says otherwise.
const DEFAULT_RECORDS: u64 = 1_000_000;
/// Repeats unless `RUNLOG_BENCH_REPEAT` says otherwise.
const DEFAULT_REPEAT: usize = 7;
/// The job.
const JOB: &str = "bench-cli";
/// The word `--grep` looks for: in one record of every [`WORD_EVERY`], nowhere else.
const WORD: &str = "timeout";
const WORD_EVERY: u64 = 1000;
/// The baseline list: the run's text lines, one element per record.
const BASELINE_KEY: &str = "bench-baseline:lines";
/// Lines per RPUSH when the baseline list is filled.
const RPUSH_BATCH: usize = 1000;

/// Targets (the "Must show"): runlog's time ÷ the baseline's, at most.
const TARGET_REDIS: f64 = 1.0;
const TARGET_LOCAL: f64 = 2.0;
const TARGET_GREP: f64 = 2.0;

// ---------------------------------------------------------------------------------------------
// The child: a job writing one big run through the library.

/// Records `0..n` of a job that works through items: mostly INFO and DEBUG from a few targets,
/// some with key-values, a few WARN; one record in [`WORD_EVERY`] (and only those) says
/// [`WORD`]. Messages are 35 to 65 bytes.
#[inline(never)]
fn job_loop(n: u64) {
    let user = black_box(USER);
    let n = black_box(n);
    for i in 0..n {
        if i % WORD_EVERY == WORD_EVERY - 1 {
            log::warn!(target: "app::net", "upstream timeout after {} ms fetching page {}, retrying", 250 + i % 50, i);
            continue;
        }
        match i % 10 {
            // The brief's record, target `cli::common`.
            0..=4 => log_loop(i, i + 1, n),
            5 => {
                log::debug!(target: "app::db", user = user, item = i; "loaded {} rows for item {} in {} us", 1 + i % 40, i, 80 + i % 900)
            }
            6 => {
                log::info!(target: "app::queue", queue = "default"; "acknowledged batch {} with {} messages from the queue", i / 10, 20 + i % 7)
            }
            7 => {
                log::debug!(target: "app::cache", "cache miss for key item:{} (size {} bytes), fetching", i, 512 + i % 4096)
            }
            8 => {
                log::info!(target: "app::worker", user = user; "finished item {} in {} ms, status ok", i, i % 97)
            }
            _ if i % 100 == 99 => {
                log::warn!(target: "app::db", "slow query for item {} took {} ms", i, 500 + i % 1000)
            }
            _ => {
                log::debug!(target: "app::http", "GET /api/items/{} -> 200 ({} bytes)", i, 200 + i % 3000)
            }
        }
    }
}

/// `--write-journal JOURNAL RECORDS`: one run of [`JOB`] with `RECORDS` records.
fn write_journal_child(args: &[String]) -> ExitCode {
    let [journal, records] = args else {
        eprintln!("usage: cli --write-journal JOURNAL RECORDS");
        return ExitCode::FAILURE;
    };
    let Ok(n) = records.parse::<u64>() else {
        eprintln!("cli --write-journal: bad arguments {args:?}");
        return ExitCode::FAILURE;
    };
    let rl = runlog::RunLogger::builder()
        .journal_dir(journal)
        .no_config_file()
        .fsync(runlog::FsyncPolicy::Commit)
        .build()
        .unwrap_or_else(|e| panic!("cannot build runlog: {e}"));
    rl.install()
        .unwrap_or_else(|e| panic!("cannot install runlog: {e}"));
    let t0 = Instant::now();
    let run = rl
        .runlog(JOB)
        .unwrap_or_else(|e| panic!("cannot start a run: {e}"));
    run.set_level(LevelFilter::Debug);
    run.label("user", USER);
    job_loop(n);
    let (written, dropped) = (run.records(), run.dropped());
    drop(run);
    println!(
        "RESULT written={written} dropped={dropped} wall_ns={}",
        t0.elapsed().as_nanos()
    );
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// Where a measured command's stdout goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// `/dev/null`.
    DevNull,
    /// A regular file, truncated first; its size is checked afterwards.
    File,
}

/// A command line to measure.
struct Cmd {
    program: PathBuf,
    args: Vec<String>,
}

impl Cmd {
    fn new(program: impl Into<PathBuf>, args: &[&str]) -> Cmd {
        Cmd {
            program: program.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn shell(&self) -> String {
        let name = self
            .program
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut s = name;
        for a in &self.args {
            s.push(' ');
            if a.contains(' ') {
                s.push_str(&format!("{a:?}"));
            } else {
                s.push_str(a);
            }
        }
        s
    }

    /// Run it with stdout going to `out`; stderr must stay empty. Returns stdout's bytes (read
    /// back only when asked for) and the wall time from spawn to exit.
    fn run_to(&self, out: File) -> Result<f64, String> {
        let t0 = Instant::now();
        let child = clean_command(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        let o = child
            .wait_with_output()
            .map_err(|e| format!("{}: {e}", self.shell()))?;
        let secs = t0.elapsed().as_secs_f64();
        if !o.status.success() || !o.stderr.is_empty() {
            return Err(format!(
                "`{}` failed ({}): {}",
                self.shell(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(secs)
    }

    /// Run it once with stdout to `path`; the output.
    fn capture(&self, path: &Path) -> Result<Vec<u8>, String> {
        let f = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.run_to(f)?;
        fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// One timed run into `sink`; with [`Sink::File`] the output must be `expect_len` bytes.
    fn time(&self, sink: Sink, file: &Path, expect_len: u64) -> Result<f64, String> {
        let out = match sink {
            Sink::DevNull => OpenOptions::new().write(true).open("/dev/null"),
            Sink::File => File::create(file),
        }
        .map_err(|e| format!("cannot open the output: {e}"))?;
        let secs = self.run_to(out)?;
        if sink == Sink::File {
            let len = fs::metadata(file).map_or(0, |m| m.len());
            if len != expect_len {
                return Err(format!(
                    "`{}` wrote {len} bytes, not {expect_len}",
                    self.shell()
                ));
            }
        }
        Ok(secs)
    }
}

/// One comparison: runlog against a baseline on the same data.
struct Row {
    name: &'static str,
    what: &'static str,
    runlog: Cmd,
    baseline: Cmd,
    sink: Sink,
    /// Bytes both write (checked with [`Sink::File`]).
    bytes: u64,
    target: f64,
    runlog_s: Vec<f64>,
    baseline_s: Vec<f64>,
}

/// A diagnostic measurement shown without a target.
struct Extra {
    what: &'static str,
    cmd: Cmd,
    secs: Vec<f64>,
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn write_config(path: &Path, journal: &Path, url: &str) -> Result<(), String> {
    let text = format!(
        "[runlog]\njournal-dir = {:?}\n\n[runlog-redis]\nurl = {url:?}\n\n\
         [runlog-shipper]\ndisk-budget = \"64GiB\"\n",
        journal.display().to_string()
    );
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Fill the baseline list with the text's lines (without their newlines), pipelined.
fn fill_baseline(conn: &mut redis::Connection, text: &[u8]) -> Result<u64, String> {
    let _: () = redis::cmd("DEL")
        .arg(BASELINE_KEY)
        .query(conn)
        .map_err(|e| format!("DEL: {e}"))?;
    let lines: Vec<&[u8]> = text
        .strip_suffix(b"\n")
        .unwrap_or(text)
        .split(|&b| b == b'\n')
        .collect();
    for batch in lines.chunks(RPUSH_BATCH) {
        let _: i64 = redis::cmd("RPUSH")
            .arg(BASELINE_KEY)
            .arg(batch)
            .query(conn)
            .map_err(|e| format!("RPUSH: {e}"))?;
    }
    redis::cmd("LLEN")
        .arg(BASELINE_KEY)
        .query(conn)
        .map_err(|e| format!("LLEN: {e}"))
}

fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// The lines of `text` containing `word`, as `grep word` prints them.
fn grep_lines(text: &[u8], word: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line.windows(word.len()).any(|w| w == word.as_bytes()) {
            out.extend_from_slice(line);
        }
    }
    out
}

fn parent(filters: &[String]) -> Result<bool, String> {
    let want = |w: &str| filters.is_empty() || filters.iter().any(|f| w.contains(f.as_str()));
    let (do_redis, do_local, do_grep) = (want("redis"), want("local"), want("grep"));
    if !do_redis && !do_local && !do_grep {
        return Err(format!(
            "no part matches {filters:?} (parts: redis, local, grep)"
        ));
    }
    let n: u64 = env_number("RUNLOG_BENCH_RECORDS", DEFAULT_RECORDS).max(WORD_EVERY);
    let repeat: usize = env_number("RUNLOG_BENCH_REPEAT", DEFAULT_REPEAT).max(1);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let base = base_dir();
    let root = tempfile::Builder::new()
        .prefix("runlog-bench-cli-")
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?;
    let dir = root.path();
    let started = Instant::now();

    let bins = release_binaries(&[
        ("runlog-cli", "runlog", "RUNLOG_BENCH_CLI"),
        ("runlog-shipper", "runlog-shipper", "RUNLOG_BENCH_SHIPPER"),
    ])?;
    let (cli, shipper) = (bins[0].clone(), bins[1].clone());
    let server = RedisServer::start(dir, &["redis-cli"])?;
    let mut conn = server
        .conn()
        .map_err(|e| format!("cannot connect to our redis-server: {e}"))?;
    let fs_desc = filesystem_of(dir).map_or_else(
        || "unknown filesystem".to_owned(),
        |(dev, at, fs)| format!("{dev} mounted on {at}, {fs}"),
    );
    let cpus = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!("runlog CLI: printing one run of {n} records, against the unix tools on its text");
    println!(
        "{repeat} repeats interleaved (baseline, runlog, ...), medians with min/max; {cpus} CPUs"
    );
    println!("files in {} ({fs_desc})", dir.display());
    println!(
        "{} on 127.0.0.1:{} (pid {}), --save \"\" --appendonly no",
        server.version,
        server.port,
        server.child.id()
    );
    println!(
        "runlog: {}\nrunlog-shipper: {}",
        cli.display(),
        shipper.display()
    );

    // The run, written by a job process through the library.
    let journal = dir.join("journal");
    let t0 = Instant::now();
    write_journal(&exe, &journal, &[n.to_string()], n)?;
    let journal_bytes: u64 = walk_size(&journal);
    println!(
        "journal: {n} records in one run of job {JOB:?}, {} bytes of segment files ({:.1} \
         bytes/record), written in {:.2} s",
        thousands(journal_bytes as f64),
        journal_bytes as f64 / n as f64,
        t0.elapsed().as_secs_f64()
    );

    // Shipped to our Redis.
    let config = dir.join("runlog.toml");
    write_config(&config, &journal, &server.url())?;
    let config_s = config.to_string_lossy().into_owned();
    let t0 = Instant::now();
    let out = clean_command(&shipper)
        .args(["--once", "--config", &config_s])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", shipper.display()))?;
    if !out.status.success() {
        return Err(format!(
            "runlog-shipper --once failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!(
        "shipped with runlog-shipper --once in {:.2} s",
        t0.elapsed().as_secs_f64()
    );

    // The text: what the CLI prints, saved.
    let logs = |source: &str, extra: &[&str]| {
        let mut a = vec![
            "--config", &config_s, "--source", source, "logs", JOB, "last",
        ];
        a.extend_from_slice(extra);
        Cmd::new(&cli, &a)
    };
    let text_path = dir.join("run.txt");
    let text_s = text_path.to_string_lossy().into_owned();
    let text = logs("local", &[]).capture(&text_path)?;
    if count_lines(&text) != n {
        return Err(format!(
            "`runlog logs` printed {} lines, not {n}",
            count_lines(&text)
        ));
    }
    println!(
        "text (`runlog logs`): {} bytes, {:.1} bytes/record, e.g.\n  {}",
        thousands(text.len() as f64),
        text.len() as f64 / n as f64,
        String::from_utf8_lossy(text.split(|&b| b == b'\n').nth(5).unwrap_or_default())
    );
    let scratch = dir.join("out.txt");
    if logs("redis", &[]).capture(&scratch)? != text {
        return Err("`runlog --source redis logs` prints other text than --source local".into());
    }

    // The baseline list: the same lines, one element per record.
    let t0 = Instant::now();
    let len = fill_baseline(&mut conn, &text)?;
    if len != n {
        return Err(format!("the baseline list has {len} elements, not {n}"));
    }
    let port = server.port.to_string();
    let redis_cli = Cmd::new(
        "redis-cli",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--raw",
            "LRANGE",
            BASELINE_KEY,
            "0",
            "-1",
        ],
    );
    if redis_cli.capture(&scratch)? != text {
        return Err("redis-cli --raw LRANGE of the baseline list is not the run's text".into());
    }
    println!(
        "baseline list {BASELINE_KEY}: {n} elements, filled in {:.2} s",
        t0.elapsed().as_secs_f64()
    );

    // --grep WORD against grep WORD: the same lines.
    let expected = grep_lines(&text, WORD);
    let grep_n = count_lines(&expected);
    if grep_n != n / WORD_EVERY {
        return Err(format!(
            "{WORD:?} is in {grep_n} lines of the text, not {}",
            n / WORD_EVERY
        ));
    }
    let grep = Cmd::new("grep", &[WORD, &text_s]);
    let runlog_grep = logs("local", &["--grep", WORD]);
    if grep.capture(&scratch)? != expected || runlog_grep.capture(&scratch)? != expected {
        return Err(format!(
            "`grep {WORD}` and `runlog logs --grep {WORD}` print other lines"
        ));
    }
    let _ = fs::remove_file(&scratch);
    println!(
        "--grep {WORD:?}: {grep_n} lines ({:.2}%), {} bytes",
        grep_n as f64 * 100.0 / n as f64,
        thousands(expected.len() as f64)
    );
    println!();

    let mut rows: Vec<Row> = Vec::new();
    if do_redis {
        rows.push(Row {
            name: "redis",
            what: "from Redis > /dev/null",
            runlog: logs("redis", &[]),
            baseline: redis_cli,
            sink: Sink::DevNull,
            bytes: text.len() as u64,
            target: TARGET_REDIS,
            runlog_s: Vec::new(),
            baseline_s: Vec::new(),
        });
    }
    if do_local {
        rows.push(Row {
            name: "local",
            what: "from the journal > /dev/null",
            runlog: logs("local", &[]),
            baseline: Cmd::new("cat", &[&text_s]),
            sink: Sink::DevNull,
            bytes: text.len() as u64,
            target: TARGET_LOCAL,
            runlog_s: Vec::new(),
            baseline_s: Vec::new(),
        });
    }
    let mut extras: Vec<Extra> = Vec::new();
    if do_grep {
        rows.push(Row {
            name: "grep",
            what: "--grep WORD > file",
            runlog: runlog_grep,
            baseline: Cmd::new("grep", &[WORD, &text_s]),
            sink: Sink::File,
            bytes: expected.len() as u64,
            target: TARGET_GREP,
            runlog_s: Vec::new(),
            baseline_s: Vec::new(),
        });
        extras.push(Extra {
            what: "grep WORD > /dev/null (GNU grep: stops at the first match)",
            cmd: Cmd::new("grep", &[WORD, &text_s]),
            secs: Vec::new(),
        });
    }
    for r in &rows {
        println!(
            "{:<6} runlog:   {}\n       baseline: {}{}",
            r.name,
            r.runlog.shell(),
            r.baseline.shell(),
            match r.sink {
                Sink::DevNull => "   (both > /dev/null)",
                Sink::File => "   (both > a file, its size checked)",
            }
        );
    }
    println!();

    // The measurements: a warm-up round (page cache, Redis), then the repeats, interleaved.
    let out_file = dir.join("out.txt");
    let mut failed = false;
    for rep in 0..=repeat {
        for r in &mut rows {
            let b = r.baseline.time(r.sink, &out_file, r.bytes);
            let l = r.runlog.time(r.sink, &out_file, r.bytes);
            match (b, l) {
                (Ok(b), Ok(l)) if rep > 0 => {
                    r.baseline_s.push(b);
                    r.runlog_s.push(l);
                }
                (Ok(_), Ok(_)) => {}
                (Err(e), _) | (_, Err(e)) => {
                    failed = true;
                    eprintln!("cli bench: {}, repeat {rep}: {e}", r.name);
                }
            }
        }
        for x in &mut extras {
            match x.cmd.time(Sink::DevNull, &out_file, 0) {
                Ok(s) if rep > 0 => x.secs.push(s),
                Ok(_) => {}
                Err(e) => {
                    failed = true;
                    eprintln!("cli bench: {}, repeat {rep}: {e}", x.what);
                }
            }
        }
    }

    let ms = |v: &[f64]| {
        let (med, min, max) = stats(v);
        (med * 1e3, min * 1e3, max * 1e3)
    };
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "wall time (ms)", "median", "min", "max", "ns/rec", "MB/s", ""
    );
    for r in &rows {
        for (who, v) in [("runlog", &r.runlog_s), ("baseline", &r.baseline_s)] {
            let (med, min, max) = ms(v);
            println!(
                "{:<30} {med:>9.1} {min:>9.1} {max:>9.1} {:>9.0} {:>9.0}",
                format!("{} ({who})", r.name),
                med * 1e6 / n as f64,
                text.len() as f64 / (med * 1e3)
            );
        }
    }
    for x in &extras {
        let (med, min, max) = ms(&x.secs);
        println!(
            "{:<30} {med:>9.1} {min:>9.1} {max:>9.1}",
            "grep > /dev/null"
        );
        println!("  ({})", x.what);
    }
    println!();

    println!(
        "{:<30} {:>13} {:>14} {:>8} {:>15} {:>8}  verdict",
        "what", "runlog (ms)", "baseline (ms)", "ratio", "paired min..max", "target"
    );
    for r in &rows {
        let (l, _, _) = stats(&r.runlog_s);
        let (b, _, _) = stats(&r.baseline_s);
        let paired: Vec<f64> = r
            .runlog_s
            .iter()
            .zip(&r.baseline_s)
            .map(|(l, b)| l / b)
            .collect();
        let (_, pmin, pmax) = stats(&paired);
        let ratio = l / b;
        println!(
            "{:<30} {:>13.1} {:>14.1} {:>7.2}x {:>15} {:>7}  {}",
            r.what,
            l * 1e3,
            b * 1e3,
            ratio,
            format!("{pmin:.2}..{pmax:.2}"),
            format!("<= {:.1}x", r.target),
            verdict(ratio.is_finite() && ratio <= r.target)
        );
        failed |= r.runlog_s.len() != repeat;
    }
    println!();
    println!(
        "took {:.1} s; the journal writer runs as `{} --write-journal JOURNAL RECORDS`",
        started.elapsed().as_secs_f64(),
        exe.display()
    );
    drop(server);
    if std::env::var_os("RUNLOG_BENCH_KEEP").is_some_and(|v| !v.is_empty()) {
        let kept = root.keep();
        println!(
            "kept {} (RUNLOG_BENCH_KEEP): the journal, run.txt and runlog.toml (its Redis is \
             stopped), e.g. `{} --config {} --source local logs {JOB} last > /dev/null`",
            kept.display(),
            cli.display(),
            kept.join("runlog.toml").display()
        );
    }
    Ok(!failed)
}

/// Total size of the files under `dir`.
fn walk_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_size(&p)
            } else {
                fs::metadata(&p).map_or(0, |m| m.len())
            }
        })
        .sum()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--write-journal") {
        return write_journal_child(&args[1..]);
    }
    // `cargo bench` passes `--bench`; other words choose parts.
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
    match parent(&filters) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cli bench: {e}");
            ExitCode::FAILURE
        }
    }
}
