//! `runlog-shipper` against Redis: throughput (records shipped per second against
//! `redis-benchmark` RPUSH on the same server), Redis memory per record (against the records'
//! plain-text size) and commit-to-visible latency of the idle shipper daemon.
//!
//! `cargo bench -p runlog-benches --bench shipper [-- throughput|latency]`
//!
//! The bench starts its own `redis-server` on a free loopback port and stops it by pid; it never
//! talks to any other Redis. A `log` logger can be installed once per process, so the journal is
//! written, and the latency runs are committed, by this binary re-executed as a child
//! (`--write-journal ...`, `--latency ...`). See `benches/README.md`, section `shipper`.

mod common;
#[path = "common/procs.rs"]
mod procs;
use common::{base_dir, env_number, filesystem_of, log_loop};
use procs::{
    clean_command, log_one_run, parse_result, release_binaries, ship_once, stats, stop_child,
    tail_of, thousands, write_journal, RedisServer,
};

use std::fmt::Write as _;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use log::LevelFilter;
use runlog::journal::layout::{job_dir, SHIPPED_FILE, SHIPPED_TMP_FILE, SHIPPER_DIR};
use runlog::journal::reader::{list_run_segments, quick_status};
use runlog::{Config, ConfigOverrides, ConfigSource, RunStatus};
use runlog_shipper::prepare::{prepare_run, PreparedRun};
use runlog_shipper::schema::{ChunkBuilder, Keys};
use runlog_shipper::ship::{Journal, Pass, STATE_FILE};
use runlog_shipper::upload::{Redis, Target, UploadError};

/// Records in the throughput journal unless `RUNLOG_BENCH_RECORDS` says otherwise.
const DEFAULT_RECORDS: u64 = 1_000_000;
/// Runs they are split into (one job).
const RUNS: u64 = 100;
/// Repeats unless `RUNLOG_BENCH_REPEAT` says otherwise.
const DEFAULT_REPEAT: usize = 5;
/// Runs committed per latency repeat unless `RUNLOG_BENCH_LATENCY_RUNS` says otherwise.
const DEFAULT_LATENCY_RUNS: u64 = 200;
/// Records per latency run.
const LATENCY_RECORDS: u64 = 10;
/// Pause between the commits of two latency runs.
const LATENCY_INTERVAL: Duration = Duration::from_millis(25);
/// Requests of the `redis-benchmark` RPUSH baseline.
const RPUSH_REQUESTS: u64 = 2_000_000;
/// Pipeline depth of the baseline.
const RPUSH_PIPELINE: u32 = 64;
/// Job of the throughput journal.
const JOB: &str = "bench-ship";
/// Job of the latency runs.
const LATENCY_JOB: &str = "bench-latency";
/// Key prefix of the throughput runs.
const PREFIX: &str = "runlog";
/// Key prefix of the latency runs (another store on the same server).
const LATENCY_PREFIX: &str = "runlog-lat";
/// Kept runs per job in every config: local retention and Redis trimming must keep them all.
const MAX_LOGS: usize = 100_000;

/// Records of the one-run journals of the `rss` part unless `RUNLOG_BENCH_RSS_RECORDS` (a
/// comma-separated list) says otherwise: about 120 MB and 480 MB of segment files.
const DEFAULT_RSS_RECORDS: &str = "1000000,4000000";
/// Key prefix of the `rss` runs.
const RSS_PREFIX: &str = "runlog-rss";
/// The most resident memory `runlog-shipper --once` may use, whatever the size of the run it
/// ships (issue 12).
const TARGET_RSS: u64 = 64 << 20;

/// Targets (the "Must show" figures).
const TARGET_THROUGHPUT: f64 = 1.0;
const TARGET_MEMORY: f64 = 0.3;
const TARGET_P99_MS: f64 = 50.0;

// ---------------------------------------------------------------------------------------------
// Small helpers.
/// The `q`-quantile (nearest rank) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------------
// Children.

fn install_runlog(journal: &Path) -> runlog::RunLogger {
    let rl = runlog::RunLogger::builder()
        .journal_dir(journal)
        .no_config_file()
        .max_logs(MAX_LOGS)
        .max_failed_logs(MAX_LOGS)
        .fsync(runlog::FsyncPolicy::Commit)
        .build()
        .unwrap_or_else(|e| panic!("cannot build runlog: {e}"));
    rl.install()
        .unwrap_or_else(|e| panic!("cannot install runlog: {e}"));
    rl
}

/// `--write-journal JOURNAL RUNS RECORDS_PER_RUN`: the throughput journal.
fn write_journal_child(args: &[String]) -> ExitCode {
    let [journal, runs, per_run] = args else {
        eprintln!("usage: shipper --write-journal JOURNAL RUNS RECORDS_PER_RUN");
        return ExitCode::FAILURE;
    };
    let (Ok(runs), Ok(per_run)) = (runs.parse::<u64>(), per_run.parse::<u64>()) else {
        eprintln!("shipper --write-journal: bad arguments {args:?}");
        return ExitCode::FAILURE;
    };
    let rl = install_runlog(Path::new(journal));
    let t0 = Instant::now();
    let (mut written, mut dropped) = (0, 0);
    for _ in 0..runs {
        let (w, d) = log_one_run(&rl, JOB, per_run);
        written += w;
        dropped += d;
    }
    println!(
        "RESULT runs={runs} written={written} dropped={dropped} wall_ns={}",
        t0.elapsed().as_nanos()
    );
    ExitCode::SUCCESS
}

/// Is run `id` visible (a member of the job's `runs`)?
fn visible(conn: &mut redis::Connection, runs_key: &str, id: &str) -> bool {
    redis::cmd("ZSCORE")
        .arg(runs_key)
        .arg(id)
        .query::<Option<String>>(conn)
        .ok()
        .flatten()
        .is_some()
}

/// How a latency sample was taken.
enum Seen {
    /// At the keyspace notification of the upload script's `ZADD`.
    Notified(Instant),
    /// By polling (no notification arrived within 50 ms).
    Polled(Instant),
    /// Not visible within the timeout.
    Missing,
}

/// Wait until run `id` is visible: on each keyspace notification of the runs key, check it.
fn wait_visible(
    conn: &mut redis::Connection,
    events: &mpsc::Receiver<Instant>,
    runs_key: &str,
    id: &str,
    timeout: Duration,
) -> Seen {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Seen::Missing;
        }
        match events.recv_timeout(left.min(Duration::from_millis(50))) {
            Ok(at) => {
                if visible(conn, runs_key, id) {
                    return Seen::Notified(at);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if visible(conn, runs_key, id) {
                    return Seen::Polled(Instant::now());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(1));
                if visible(conn, runs_key, id) {
                    return Seen::Polled(Instant::now());
                }
            }
        }
    }
}

/// Commit one small run; returns its id and the instant its guard's drop returned.
fn commit_small_run(rl: &runlog::RunLogger, job: &str) -> (String, Instant) {
    let run = rl
        .runlog(job)
        .unwrap_or_else(|e| panic!("cannot start a run: {e}"));
    run.set_level(LevelFilter::Info);
    log_loop(0, LATENCY_RECORDS, LATENCY_RECORDS);
    let id = run.id().to_owned();
    drop(run);
    (id, Instant::now())
}

/// `--latency JOURNAL PORT PREFIX RUNS`: commit runs one by one while the shipper daemon
/// watches the journal; for each, the time from commit to visible in Redis.
fn latency_child(args: &[String]) -> ExitCode {
    let [journal, port, prefix, runs] = args else {
        eprintln!("usage: shipper --latency JOURNAL PORT PREFIX RUNS");
        return ExitCode::FAILURE;
    };
    let (Ok(port), Ok(runs)) = (port.parse::<u16>(), runs.parse::<u64>()) else {
        eprintln!("shipper --latency: bad arguments {args:?}");
        return ExitCode::FAILURE;
    };
    let rl = install_runlog(Path::new(journal));
    let url = format!("redis://127.0.0.1:{port}/0");
    let client = redis::Client::open(url.as_str()).unwrap_or_else(|e| panic!("{url}: {e}"));
    let mut conn = client
        .get_connection()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let mut sub = client
        .get_connection()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let runs_key = Keys::new(prefix).job(LATENCY_JOB).runs();
    let channel = format!("__keyspace@0__:{runs_key}");
    let (tx, events) = mpsc::channel::<Instant>();
    let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
    std::thread::spawn(move || {
        let mut ps = sub.as_pubsub();
        if let Err(e) = ps.subscribe(&channel) {
            let _ = ready_tx.send(Err(format!("SUBSCRIBE {channel}: {e}")));
            return;
        }
        let _ = ready_tx.send(Ok(()));
        while let Ok(_msg) = ps.get_message() {
            if tx.send(Instant::now()).is_err() {
                return;
            }
        }
    });
    match ready.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(e) => panic!("subscriber thread: {e}"),
    }

    // Warm-up: the job directory exists and is watched; the daemon finished its first scan.
    let (id, _) = commit_small_run(&rl, LATENCY_JOB);
    if let Seen::Missing = wait_visible(&mut conn, &events, &runs_key, &id, Duration::from_secs(30))
    {
        eprintln!("shipper --latency: the warm-up run {id} did not become visible in 30 s");
        return ExitCode::FAILURE;
    }

    let mut lat_ns = Vec::with_capacity(runs as usize);
    let (mut polled, mut missing) = (0u64, 0u64);
    let start = Instant::now();
    for i in 0..runs {
        let next = start + LATENCY_INTERVAL * (i as u32);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        while events.try_recv().is_ok() {}
        let (id, t0) = commit_small_run(&rl, LATENCY_JOB);
        match wait_visible(&mut conn, &events, &runs_key, &id, Duration::from_secs(10)) {
            Seen::Notified(t1) => lat_ns.push(t1.saturating_duration_since(t0).as_nanos()),
            Seen::Polled(t1) => {
                polled += 1;
                lat_ns.push(t1.saturating_duration_since(t0).as_nanos());
            }
            Seen::Missing => missing += 1,
        }
    }
    let list: Vec<String> = lat_ns.iter().map(|n| n.to_string()).collect();
    println!(
        "RESULT runs={runs} polled={polled} missing={missing} lat_ns={}",
        list.join(",")
    );
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// The parent: Redis, the shipper, the journal.

fn flushall(conn: &mut redis::Connection) -> Result<(), String> {
    redis::cmd("FLUSHALL")
        .query::<()>(conn)
        .map_err(|e| format!("FLUSHALL: {e}"))
}

fn used_memory(conn: &mut redis::Connection) -> Result<i64, String> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(conn)
        .map_err(|e| format!("INFO memory: {e}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "INFO memory has no used_memory".to_owned())
}

/// A config for the shipper (binary and in-process).
fn write_config(
    path: &Path,
    journal: &Path,
    url: &str,
    prefix: &str,
    rescan: &str,
) -> Result<(), String> {
    let text = format!(
        "[runlog]\njournal-dir = {:?}\nmax-logs = {MAX_LOGS}\nmax-failed-logs = {MAX_LOGS}\n\n\
         [runlog-redis]\nurl = {url:?}\nprefix = {prefix:?}\n\n\
         [runlog-shipper]\ndisk-budget = \"64GiB\"\nrescan-interval = {rescan:?}\n",
        journal.display().to_string()
    );
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Load a config file as the binary does, ignoring `RUNLOG_*` variables.
fn load_config(path: &Path) -> Result<Config, String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    Config::load_with_env(
        &ConfigSource::File(path.to_path_buf()),
        &ConfigOverrides::default(),
        &|k| {
            if k.starts_with("RUNLOG_") {
                None
            } else {
                std::env::var_os(k)
            }
        },
        &cwd,
    )
    .map_err(|e| e.to_string())
}

fn target_of(config: &Config) -> Result<(Target, Keys), String> {
    let rc = config
        .redis
        .clone()
        .ok_or("the config has no [runlog-redis]")?;
    Ok((Target::from_config(&rc), Keys::new(rc.prefix_or_default())))
}

/// Forget what was shipped (`.shipped` files, `<journal>/shipper/state`) and check that the
/// journal still holds `runs` ended runs of [`JOB`]. Returns the size of their segment files.
fn reset_journal(journal: &Path, runs: u64) -> Result<u64, String> {
    let dir = job_dir(journal, JOB);
    for f in [SHIPPED_FILE, SHIPPED_TMP_FILE] {
        match fs::remove_file(dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", dir.join(f).display())),
        }
    }
    let state = journal.join(SHIPPER_DIR).join(STATE_FILE);
    match fs::remove_file(&state) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", state.display())),
    }
    let segs = list_run_segments(&dir).map_err(|e| e.to_string())?;
    let ended = segs
        .values()
        .filter(|s| quick_status(s) == RunStatus::Ok)
        .count() as u64;
    if ended != runs || segs.len() as u64 != runs {
        return Err(format!(
            "the journal {} holds {} runs ({ended} ok) of job {JOB}, not {runs}: did retention \
             delete runs?",
            journal.display(),
            segs.len()
        ));
    }
    Ok(segs
        .values()
        .flatten()
        .map(|(_, p)| fs::metadata(p).map_or(0, |m| m.len()))
        .sum())
}

/// One record as `runlog logs` prints it into a pipe (`runlog-cli/src/render.rs`,
/// `format_record` with the plain style).
fn format_record(rec: &runlog::Record, out: &mut String) {
    out.push_str(&runlog::time::format_micros(rec.ts_ns));
    out.push(' ');
    let level = rec.level.as_str();
    out.push_str(level);
    for _ in level.len()..5 {
        out.push(' ');
    }
    out.push(' ');
    if !rec.target.is_empty() {
        out.push_str(&rec.target);
        out.push_str(": ");
    }
    let message = rec.message.trim_end_matches('\n');
    let mut lines = message.split('\n');
    out.push_str(lines.next().unwrap_or(""));
    for (k, v) in &rec.kvs {
        let quote = v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '"' || c == '=');
        if quote {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(out, " {k}=\"{v}\"");
        } else {
            let _ = write!(out, " {k}={v}");
        }
    }
    if rec.truncated {
        out.push_str(" [message truncated]");
    }
    for line in lines {
        out.push_str("\n  ");
        out.push_str(line);
    }
    out.push('\n');
}

/// (records, bytes) of every run of [`JOB`] rendered as text lines; an example line.
fn text_size(journal: &Path) -> Result<(u64, u64, String), String> {
    let j = runlog::Journal::open(journal).map_err(|e| e.to_string())?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut line = String::new();
    let mut example = String::new();
    for run in j.runs(JOB).map_err(|e| e.to_string())? {
        let log = j.read_run(JOB, &run.id).map_err(|e| e.to_string())?;
        for rec in &log.records {
            line.clear();
            format_record(rec, &mut line);
            records += 1;
            bytes += line.len() as u64;
            if example.is_empty() {
                example = line.trim_end().to_owned();
            }
        }
    }
    Ok((records, bytes, example))
}

/// `redis-benchmark -P 64 -t rpush -n 2000000 -q`: requests per second.
fn rpush_baseline(port: u16) -> Result<f64, String> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .arg("-P")
        .arg(RPUSH_PIPELINE.to_string())
        .args(["-t", "rpush", "-n"])
        .arg(RPUSH_REQUESTS.to_string())
        .arg("-q")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run redis-benchmark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `RPUSH: 1234567.00 requests per second` or `..., p50=0.431 msec`; progress lines
    // end with `\r`.
    text.split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("RPUSH:")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .next_back()
        .ok_or_else(|| {
            format!(
                "redis-benchmark printed no RPUSH result ({}): {text}",
                out.status
            )
        })
}

/// Ship everything the journal holds, as `runlog-shipper --once` does, in this process.
fn ship_in_process(config: &Config) -> Result<(Duration, Duration, Pass), String> {
    let (target, keys) = target_of(config)?;
    let t0 = Instant::now();
    let mut journal = Journal::open(config)?;
    let mut redis = Redis::connect(&target, &keys).map_err(|e| e.to_string())?;
    let connected = t0.elapsed();
    let dirs = journal.job_dirs().map_err(|e| e.to_string())?;
    let pass = loop {
        match journal.ship(&mut redis, &dirs, &|| false) {
            Ok(p) => break p,
            Err(UploadError::EpochChanged { .. }) => continue,
            Err(e) => return Err(format!("ship: {e}")),
        }
    };
    let wall = t0.elapsed();
    drop(redis);
    drop(journal);
    Ok((wall, connected, pass))
}

/// Prepare every run of the journal (read, decode frames, chunk, zstd) on `threads` threads,
/// as the shipper does before an upload.
fn prepare_runs(journal: &Path, threads: usize) -> Result<(Duration, Vec<PreparedRun>), String> {
    let segs = list_run_segments(&job_dir(journal, JOB)).map_err(|e| e.to_string())?;
    let runs: Vec<(String, Vec<(u32, PathBuf)>)> = segs.into_iter().collect();
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<PreparedRun>>> = Mutex::new(vec![None; runs.len()]);
    let err: Mutex<Option<String>> = Mutex::new(None);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut builder = ChunkBuilder::new().unwrap_or_else(|e| panic!("zstd: {e}"));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((id, segs)) = runs.get(i) else { break };
                    match prepare_run(JOB, id, segs, &mut builder) {
                        Ok(p) => out.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(p),
                        Err(e) => {
                            *err.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(format!("run {id}: {e}"));
                        }
                    }
                }
            });
        }
    });
    let took = t0.elapsed();
    if let Some(e) = err.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let prepared = out
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    Ok((took, prepared))
}

/// Read the segment files of every run (what preparing starts with), one thread.
fn read_runs(journal: &Path) -> Result<(Duration, u64), String> {
    let segs = list_run_segments(&job_dir(journal, JOB)).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    for (_, p) in segs.values().flatten() {
        buf.clear();
        File::open(p)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| format!("{}: {e}", p.display()))?;
        bytes += buf.len() as u64;
        black_box(&buf);
    }
    Ok((t0.elapsed(), bytes))
}

/// Upload prepared runs on a fresh connection (Redis flushed before).
fn upload_prepared(config: &Config, prepared: &[PreparedRun]) -> Result<Duration, String> {
    let (target, keys) = target_of(config)?;
    let mut redis = Redis::connect(&target, &keys).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    redis
        .upload(prepared, &|_| (MAX_LOGS, MAX_LOGS))
        .map_err(|e| format!("upload: {e}"))?;
    Ok(t0.elapsed())
}

/// What Redis holds for [`JOB`] after a ship.
#[derive(Default)]
struct Stored {
    runs: u64,
    records: u64,
    chunks: u64,
    chunk_bytes: u64,
    /// `MEMORY USAGE` of the `log:` lists, the `run:` hashes, and the `runs` sorted set.
    mem_logs: u64,
    mem_meta: u64,
    mem_index: u64,
}

fn stored(conn: &mut redis::Connection, prefix: &str) -> Result<Stored, String> {
    let jk = Keys::new(prefix).job(JOB);
    let q = |e: redis::RedisError| e.to_string();
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(jk.runs())
        .arg(0)
        .arg(-1)
        .query(conn)
        .map_err(q)?;
    let usage = |conn: &mut redis::Connection, key: &str| -> Result<u64, String> {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query::<Option<u64>>(conn)
            .map(Option::unwrap_or_default)
            .map_err(|e| e.to_string())
    };
    let mut s = Stored {
        runs: ids.len() as u64,
        mem_index: usage(conn, &jk.runs())?,
        ..Stored::default()
    };
    for id in &ids {
        let records: Option<u64> = redis::cmd("HGET")
            .arg(jk.run(id))
            .arg("records")
            .query(conn)
            .map_err(q)?;
        s.records += records.unwrap_or(0);
        let chunks: Vec<Vec<u8>> = redis::cmd("LRANGE")
            .arg(jk.log(id))
            .arg(0)
            .arg(-1)
            .query(conn)
            .map_err(q)?;
        s.chunks += chunks.len() as u64;
        s.chunk_bytes += chunks.iter().map(|c| c.len() as u64).sum::<u64>();
        s.mem_logs += usage(conn, &jk.log(id))?;
        s.mem_meta += usage(conn, &jk.run(id))?;
    }
    Ok(s)
}

/// Start the shipper daemon and wait until it is connected (its epoch key exists).
fn start_daemon(
    bin: &Path,
    config: &Path,
    log: &Path,
    conn: &mut redis::Connection,
    prefix: &str,
) -> Result<Child, String> {
    let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = clean_command(bin)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let epoch = Keys::new(prefix).epoch();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!(
                "runlog-shipper exited ({st}):\n{}",
                tail_of(log, 20)
            ));
        }
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&epoch)
            .query(conn)
            .map_err(|e| e.to_string())?;
        if exists == 1 {
            return Ok(child);
        }
        if Instant::now() > deadline {
            stop_child(&mut child, Duration::from_secs(2));
            return Err(format!(
                "runlog-shipper did not connect to Redis in 20 s:\n{}",
                tail_of(log, 20)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One repeat's throughput figures.
#[derive(Default)]
struct ThroughputSample {
    rpush_rps: f64,
    ship_s: f64,
    connect_s: f64,
    read_s: f64,
    prepare_s: f64,
    upload_s: f64,
    binary_s: f64,
    mem_delta: f64,
    stored: Stored,
    pass_bytes: u64,
}

/// One repeat's latency figures (ms).
struct LatencySample {
    p50: f64,
    p99: f64,
    max: f64,
    all: Vec<f64>,
    polled: u64,
    missing: u64,
}

struct Bench {
    server: RedisServer,
    conn: redis::Connection,
    root: PathBuf,
    exe: PathBuf,
    shipper: PathBuf,
    /// `peakrss`, for the `rss` part.
    peakrss: Option<PathBuf>,
}

impl Bench {
    fn throughput_repeat(
        &mut self,
        journal: &Path,
        config_path: &Path,
        config: &Config,
        runs: u64,
        threads: usize,
    ) -> Result<ThroughputSample, String> {
        let mut s = ThroughputSample {
            rpush_rps: rpush_baseline(self.server.port)?,
            ..ThroughputSample::default()
        };
        flushall(&mut self.conn)?;

        // Where the time goes: reading, preparing (read + chunk + zstd), uploading.
        reset_journal(journal, runs)?;
        let (read, _) = read_runs(journal)?;
        s.read_s = read.as_secs_f64();
        let (prep, prepared) = prepare_runs(journal, threads)?;
        s.prepare_s = prep.as_secs_f64();
        s.upload_s = upload_prepared(config, &prepared)?.as_secs_f64();
        drop(prepared);
        let up = stored(&mut self.conn, PREFIX)?;
        if up.runs != runs {
            return Err(format!("upload only: {} runs visible, not {runs}", up.runs));
        }
        flushall(&mut self.conn)?;

        // The shipper, in this process: the headline figure and the memory.
        reset_journal(journal, runs)?;
        std::thread::sleep(Duration::from_millis(50));
        let before = used_memory(&mut self.conn)?;
        let (wall, connect, pass) = ship_in_process(config)?;
        // Let the server close the shipper's connection before measuring.
        std::thread::sleep(Duration::from_millis(50));
        let after = used_memory(&mut self.conn)?;
        s.ship_s = wall.as_secs_f64();
        s.connect_s = connect.as_secs_f64();
        s.mem_delta = (after - before) as f64;
        s.pass_bytes = pass.bytes;
        s.stored = stored(&mut self.conn, PREFIX)?;
        if s.stored.runs != runs || pass.runs != runs {
            return Err(format!(
                "the shipper uploaded {} runs, {} visible, not {runs}",
                pass.runs, s.stored.runs
            ));
        }
        flushall(&mut self.conn)?;

        // The release binary, `--once`: process start, config, the same work.
        reset_journal(journal, runs)?;
        s.binary_s = ship_once(&mut clean_command(&self.shipper), config_path)?;
        let bin = stored(&mut self.conn, PREFIX)?;
        if bin.runs != runs || bin.records != s.stored.records {
            return Err(format!(
                "runlog-shipper --once: {} runs / {} records visible",
                bin.runs, bin.records
            ));
        }
        flushall(&mut self.conn)?;
        Ok(s)
    }

    fn latency_repeat(&mut self, rep: usize, runs: u64) -> Result<LatencySample, String> {
        let dir = self.root.join(format!("latency-{rep}"));
        let journal = dir.join("journal");
        fs::create_dir_all(&journal).map_err(|e| format!("{}: {e}", journal.display()))?;
        let config = dir.join("shipper.toml");
        write_config(&config, &journal, &self.server.url(), LATENCY_PREFIX, "5s")?;
        flushall(&mut self.conn)?;
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg("Kz")
            .query::<()>(&mut self.conn)
            .map_err(|e| format!("CONFIG SET notify-keyspace-events: {e}"))?;
        let log = dir.join("runlog-shipper.log");
        let mut daemon =
            start_daemon(&self.shipper, &config, &log, &mut self.conn, LATENCY_PREFIX)?;
        let out = clean_command(&self.exe)
            .arg("--latency")
            .arg(&journal)
            .arg(self.server.port.to_string())
            .arg(LATENCY_PREFIX)
            .arg(runs.to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output();
        let alive = matches!(daemon.try_wait(), Ok(None));
        stop_child(&mut daemon, Duration::from_secs(10));
        let out = out.map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let r = parse_result(&stdout).filter(|_| out.status.success() && alive);
        let Some(r) = r else {
            return Err(format!(
                "latency child: {}{}; output: {stdout}\nshipper log:\n{}",
                out.status,
                if alive { "" } else { ", the shipper died" },
                tail_of(&log, 20)
            ));
        };
        let mut all: Vec<f64> = r
            .get("lat_ns")
            .map(|v| {
                v.split(',')
                    .filter_map(|x| x.parse::<f64>().ok())
                    .map(|ns| ns / 1e6)
                    .collect()
            })
            .unwrap_or_default();
        all.sort_by(f64::total_cmp);
        let num = |k: &str| r.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(LatencySample {
            p50: quantile(&all, 0.5),
            p99: quantile(&all, 0.99),
            max: all.last().copied().unwrap_or(f64::NAN),
            polled: num("polled"),
            missing: num("missing"),
            all,
        })
    }
}

/// One measurement of the `rss` part.
struct RssSample {
    records: u64,
    segment_bytes: u64,
    peak: u64,
    seconds: f64,
}

impl Bench {
    /// One run of `records` records in a journal of its own, shipped by the release binary
    /// with `--once` (prefix [`RSS_PREFIX`]) under `peakrss` (the tests' `src/bin/peakrss.rs`:
    /// the shipper's own high-water mark, not this process's): its peak resident memory,
    /// checked to leave the run and all its records visible.
    fn rss_sample(&mut self, records: u64) -> Result<RssSample, String> {
        let dir = self.root.join(format!("rss-{records}"));
        let journal = dir.join("journal");
        write_journal(
            &self.exe,
            &journal,
            &["1".to_owned(), records.to_string()],
            records,
        )?;
        let config = dir.join("shipper.toml");
        write_config(&config, &journal, &self.server.url(), RSS_PREFIX, "5s")?;
        let segment_bytes = reset_journal(&journal, 1)?;
        let peakrss = self
            .peakrss
            .clone()
            .ok_or("internal: the rss part without peakrss")?;
        let figure = dir.join("peak-rss");
        let seconds = ship_once(
            clean_command(&peakrss).arg(&figure).arg(&self.shipper),
            &config,
        )?;
        let peak: u64 = fs::read_to_string(&figure)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| format!("peakrss wrote no figure to {}", figure.display()))?;
        let got = stored(&mut self.conn, RSS_PREFIX)?;
        if got.runs != 1 || got.records != records {
            return Err(format!(
                "runlog-shipper --once: {} runs / {} records visible, not 1 / {records}",
                got.runs, got.records
            ));
        }
        flushall(&mut self.conn)?;
        fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(RssSample {
            records,
            segment_bytes,
            peak,
            seconds,
        })
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn parent(filters: &[String]) -> Result<bool, String> {
    let want = |w: &str| filters.is_empty() || filters.iter().any(|f| w.contains(f.as_str()));
    let (do_tp, do_lat, do_rss) = (want("throughput memory"), want("latency"), want("rss"));
    if !do_tp && !do_lat && !do_rss {
        return Err(format!(
            "no part matches {filters:?} (parts: throughput, memory, latency, rss)"
        ));
    }
    let n: u64 = env_number("RUNLOG_BENCH_RECORDS", DEFAULT_RECORDS).max(RUNS);
    let per_run = n / RUNS;
    let n = per_run * RUNS;
    let repeat: usize = env_number("RUNLOG_BENCH_REPEAT", DEFAULT_REPEAT).max(1);
    let lat_runs: u64 = env_number("RUNLOG_BENCH_LATENCY_RUNS", DEFAULT_LATENCY_RUNS).max(1);
    let threads = std::thread::available_parallelism().map_or(1, |c| c.get());
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let base = base_dir();
    let root = tempfile::Builder::new()
        .prefix("runlog-bench-shipper-")
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?;
    let started = Instant::now();

    let mut wanted = vec![("runlog-shipper", "runlog-shipper", "RUNLOG_BENCH_SHIPPER")];
    if do_rss {
        wanted.push(("runlog-e2e", "peakrss", "RUNLOG_BENCH_PEAKRSS"));
    }
    let mut binaries = release_binaries(&wanted)?.into_iter();
    let shipper = binaries.next().ok_or("internal: no shipper binary")?;
    let peakrss = binaries.next();
    let server = RedisServer::start(root.path(), &["redis-benchmark"])?;
    let conn = server
        .conn()
        .map_err(|e| format!("cannot connect to our redis-server: {e}"))?;
    let fs_desc = filesystem_of(root.path()).map_or_else(
        || "unknown filesystem".to_owned(),
        |(dev, at, fs)| format!("{dev} mounted on {at}, {fs}"),
    );
    println!("runlog-shipper: throughput, Redis memory and commit-to-visible latency");
    println!(
        "{repeat} repeats interleaved (rpush baseline, shipper, latency, ...), medians with \
         min/max; {threads} CPUs"
    );
    println!("files in {} ({fs_desc})", root.path().display());
    println!(
        "{} on 127.0.0.1:{} (pid {}), --save \"\" --appendonly no",
        server.version,
        server.port,
        server.child.id()
    );
    println!("shipper binary: {}", shipper.display());
    let mut bench = Bench {
        server,
        conn,
        root: root.path().to_path_buf(),
        exe: exe.clone(),
        shipper,
        peakrss,
    };

    // The throughput journal, written once by a child with runlog installed.
    let journal = root.path().join("journal");
    let config_path = root.path().join("shipper.toml");
    let mut text = (0u64, 0u64, String::new());
    let mut journal_bytes = 0;
    let mut config = None;
    if do_tp {
        let t0 = Instant::now();
        write_journal(&exe, &journal, &[RUNS.to_string(), per_run.to_string()], n)?;
        write_config(&config_path, &journal, &bench.server.url(), PREFIX, "5s")?;
        config = Some(load_config(&config_path)?);
        journal_bytes = reset_journal(&journal, RUNS)?;
        text = text_size(&journal)?;
        if text.0 != n {
            return Err(format!("the journal holds {} records, not {n}", text.0));
        }
        println!(
            "journal: {n} records in {RUNS} runs of job {JOB:?} ({per_run} each), {} bytes of \
             segment files, written in {:.2} s",
            thousands(journal_bytes as f64),
            t0.elapsed().as_secs_f64()
        );
        println!(
            "as text (`runlog logs`): {} bytes, {:.1} bytes/record, e.g.\n  {}",
            thousands(text.1 as f64),
            text.1 as f64 / n as f64,
            text.2
        );
    }
    if do_lat {
        println!(
            "latency: {lat_runs} runs of {LATENCY_RECORDS} records per repeat, committed \
             {} ms apart, shipper daemon idle-waiting (rescan-interval 5s)",
            LATENCY_INTERVAL.as_millis()
        );
    }
    println!();

    let mut tps: Vec<ThroughputSample> = Vec::new();
    let mut lats: Vec<LatencySample> = Vec::new();
    let mut failed = false;
    for rep in 0..repeat {
        if let Some(config) = &config {
            match bench.throughput_repeat(&journal, &config_path, config, RUNS, threads) {
                Ok(s) => tps.push(s),
                Err(e) => {
                    failed = true;
                    eprintln!("shipper bench: throughput, repeat {}: {e}", rep + 1);
                    let _ = flushall(&mut bench.conn);
                }
            }
        }
        if do_lat {
            match bench.latency_repeat(rep, lat_runs) {
                Ok(s) => lats.push(s),
                Err(e) => {
                    failed = true;
                    eprintln!("shipper bench: latency, repeat {}: {e}", rep + 1);
                }
            }
        }
    }

    let mut summary: Vec<[String; 6]> = Vec::new();
    let nf = n as f64;
    if !tps.is_empty() {
        let col =
            |f: &dyn Fn(&ThroughputSample) -> f64| -> Vec<f64> { tps.iter().map(f).collect() };
        println!(
            "{:<46} {:>12} {:>12} {:>12} {:>9}",
            "throughput", "records/s", "min", "max", "seconds"
        );
        let rows: [(&str, Vec<f64>); 6] = [
            (
                "redis-benchmark rpush -P 64 (requests/s)",
                col(&|s| s.rpush_rps),
            ),
            ("shipper, in-process (lib)", col(&|s| nf / s.ship_s)),
            (
                "shipper binary --once (incl. process start)",
                col(&|s| nf / s.binary_s),
            ),
            (
                "  read segment files only (1 thread)",
                col(&|s| nf / s.read_s),
            ),
            (
                "  prepare only, {threads} threads (read+chunk+zstd)",
                col(&|s| nf / s.prepare_s),
            ),
            (
                "  upload only (prepared runs -> Redis)",
                col(&|s| nf / s.upload_s),
            ),
        ];
        for (i, (name, v)) in rows.iter().enumerate() {
            let (med, min, max) = stats(v);
            let secs = if i == 0 {
                RPUSH_REQUESTS as f64 / med
            } else {
                nf / med
            };
            let name = name.replace("{threads}", &threads.to_string());
            println!(
                "{name:<46} {:>12} {:>12} {:>12} {:>9.3}",
                thousands(med),
                thousands(min),
                thousands(max),
                secs
            );
        }
        let (conn_med, _, _) = stats(&col(&|s| s.connect_s));
        println!(
            "(shipper in-process: from Journal::open to ship() returned, all {RUNS} runs visible; \
             of which open + connect {:.1} ms)",
            conn_med * 1e3
        );
        let (rpush, _, _) = stats(&col(&|s| s.rpush_rps));
        let (ship, _, _) = stats(&col(&|s| nf / s.ship_s));
        let (_, rmin, rmax) = stats(&col(&|s| nf / s.ship_s / s.rpush_rps));
        let ratio = ship / rpush;
        println!(
            "ratio shipper / rpush: {ratio:.3} (paired per repeat: {rmin:.3}..{rmax:.3}); \
             target >= {TARGET_THROUGHPUT:.1} {}",
            verdict(ratio >= TARGET_THROUGHPUT)
        );
        println!();
        summary.push([
            "throughput (records/s)".into(),
            thousands(ship),
            format!("rpush -P 64: {} req/s", thousands(rpush)),
            format!("{ratio:.3}x"),
            format!(">= {TARGET_THROUGHPUT:.1}x"),
            verdict(ratio >= TARGET_THROUGHPUT).into(),
        ]);

        let text_pr = text.1 as f64 / nf;
        println!(
            "{:<46} {:>12} {:>12} {:>12} {:>9}",
            "memory", "bytes/record", "min", "max", "x text"
        );
        let mem_rows: [(&str, Vec<f64>); 5] = [
            (
                "Redis used_memory after - before",
                col(&|s| s.mem_delta / nf),
            ),
            (
                "  MEMORY USAGE of the log: lists",
                col(&|s| s.stored.mem_logs as f64 / nf),
            ),
            (
                "  MEMORY USAGE of the run: hashes + runs zset",
                col(&|s| (s.stored.mem_meta + s.stored.mem_index) as f64 / nf),
            ),
            (
                "chunk bytes (sum of log: list elements)",
                col(&|s| s.stored.chunk_bytes as f64 / nf),
            ),
            ("text lines (`runlog logs`)", vec![text_pr]),
        ];
        for (name, v) in &mem_rows {
            let (med, min, max) = stats(v);
            println!(
                "{name:<46} {med:>12.2} {min:>12.2} {max:>12.2} {:>9.3}",
                med / text_pr
            );
        }
        let (chunks, _, _) = stats(&col(&|s| s.stored.chunks as f64));
        let (cb, _, _) = stats(&col(&|s| s.stored.chunk_bytes as f64));
        let bytes_ok = tps
            .iter()
            .all(|s| s.stored.chunk_bytes == s.pass_bytes && s.stored.records == n);
        println!(
            "({chunks:.0} chunks, {:.0} bytes and {:.0} records each on average; \
             journal segment files: {:.1} bytes/record; records in Redis: {})",
            cb / chunks,
            nf / chunks,
            journal_bytes as f64 / nf,
            if bytes_ok {
                format!("all {n}, chunk bytes = what the shipper sent, in every repeat")
            } else {
                "MISMATCH".to_owned()
            }
        );
        failed |= !bytes_ok;
        let (mem, _, _) = stats(&col(&|s| s.mem_delta / nf));
        let mem_ratio = mem / text_pr;
        let chunk_ratio = stats(&col(&|s| s.stored.chunk_bytes as f64 / nf)).0 / text_pr;
        println!(
            "ratio Redis memory / text: {mem_ratio:.3}; target <= {TARGET_MEMORY:.1} {}; \
             chunk bytes / text: {chunk_ratio:.3}",
            verdict(mem_ratio <= TARGET_MEMORY)
        );
        println!();
        summary.push([
            "Redis memory (bytes/record)".into(),
            format!("{mem:.2}"),
            format!("text: {text_pr:.2}"),
            format!("{mem_ratio:.3}x"),
            format!("<= {TARGET_MEMORY:.1}x"),
            verdict(mem_ratio <= TARGET_MEMORY).into(),
        ]);
        summary.push([
            "chunk bytes (bytes/record)".into(),
            format!("{:.2}", chunk_ratio * text_pr),
            format!("text: {text_pr:.2}"),
            format!("{chunk_ratio:.3}x"),
            "-".into(),
            "-".into(),
        ]);
    }
    if !lats.is_empty() {
        println!(
            "{:<46} {:>12} {:>12} {:>12}",
            "latency, commit to visible (ms)", "median", "min", "max"
        );
        let col = |f: &dyn Fn(&LatencySample) -> f64| -> Vec<f64> { lats.iter().map(f).collect() };
        for (name, v) in [
            ("p50", col(&|s| s.p50)),
            ("p99", col(&|s| s.p99)),
            ("max", col(&|s| s.max)),
        ] {
            let (med, min, max) = stats(&v);
            println!("{name:<46} {med:>12.2} {min:>12.2} {max:>12.2}");
        }
        let mut pooled: Vec<f64> = lats.iter().flat_map(|s| s.all.iter().copied()).collect();
        pooled.sort_by(f64::total_cmp);
        let polled: u64 = lats.iter().map(|s| s.polled).sum();
        let missing: u64 = lats.iter().map(|s| s.missing).sum();
        println!(
            "(all {} samples pooled: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2} ms; seen by \
             keyspace notification: {}, by polling: {polled}, never visible in 10 s: {missing})",
            pooled.len(),
            quantile(&pooled, 0.5),
            quantile(&pooled, 0.9),
            quantile(&pooled, 0.99),
            pooled.last().copied().unwrap_or(f64::NAN),
            pooled.len() as u64 - polled,
        );
        failed |= missing > 0;
        let (p99, _, _) = stats(&col(&|s| s.p99));
        let (p50, _, _) = stats(&col(&|s| s.p50));
        let (mx, _, _) = stats(&col(&|s| s.max));
        println!(
            "p99 {p99:.2} ms; target <= {TARGET_P99_MS:.0} ms {}",
            verdict(p99 <= TARGET_P99_MS && missing == 0)
        );
        println!();
        summary.push([
            "latency p99 (ms)".into(),
            format!("{p99:.2}"),
            format!("p50 {p50:.2}, max {mx:.2}"),
            "-".into(),
            format!("<= {TARGET_P99_MS:.0} ms"),
            verdict(p99 <= TARGET_P99_MS && missing == 0).into(),
        ]);
    }

    if do_rss {
        let sizes = std::env::var("RUNLOG_BENCH_RSS_RECORDS")
            .unwrap_or_else(|_| DEFAULT_RSS_RECORDS.to_owned());
        println!(
            "{:<46} {:>12} {:>12} {:>12} {:>9}",
            "peak RSS of runlog-shipper --once, one run",
            "segment MB",
            "records",
            "peak MiB",
            "seconds"
        );
        let mut worst = 0;
        for n in sizes.split(',').filter(|s| !s.trim().is_empty()) {
            let n: u64 = n
                .trim()
                .parse()
                .map_err(|_| format!("RUNLOG_BENCH_RSS_RECORDS: {n:?} is not a number"))?;
            match bench.rss_sample(n) {
                Ok(s) => {
                    worst = worst.max(s.peak);
                    println!(
                        "{:<46} {:>12.1} {:>12} {:>12.1} {:>9.2}",
                        "",
                        s.segment_bytes as f64 / 1e6,
                        thousands(s.records as f64),
                        s.peak as f64 / f64::from(1 << 20),
                        s.seconds
                    );
                }
                Err(e) => {
                    failed = true;
                    eprintln!("shipper bench: rss, {n} records: {e}");
                }
            }
        }
        let ok = worst > 0 && worst <= TARGET_RSS;
        println!(
            "largest peak {:.1} MiB; target <= {} MiB whatever the run's size {}",
            worst as f64 / f64::from(1 << 20),
            TARGET_RSS >> 20,
            verdict(ok)
        );
        println!();
        summary.push([
            "shipper peak RSS (MiB)".into(),
            format!("{:.1}", worst as f64 / f64::from(1 << 20)),
            "-".into(),
            "-".into(),
            format!("<= {} MiB", TARGET_RSS >> 20),
            verdict(ok).into(),
        ]);
    }

    println!(
        "{:<28} {:>12}  {:<28} {:>8}  {:>9}  verdict",
        "figure", "measured", "baseline", "ratio", "target"
    );
    for [a, b, c, d, e, f] in &summary {
        println!("{a:<28} {b:>12}  {c:<28} {d:>8}  {e:>9}  {f}");
    }
    println!();
    println!(
        "took {:.1} s; children run as `{} --write-journal JOURNAL RUNS RECORDS_PER_RUN` and \
         `--latency JOURNAL PORT PREFIX RUNS`",
        started.elapsed().as_secs_f64(),
        exe.display()
    );
    drop(bench);
    Ok(!failed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--write-journal") => return write_journal_child(&args[1..]),
        Some("--latency") => return latency_child(&args[1..]),
        _ => {}
    }
    // `cargo bench` passes `--bench`; other words choose parts.
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with('-')).collect();
    match parent(&filters) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("shipper bench: {e}");
            ExitCode::FAILURE
        }
    }
}
