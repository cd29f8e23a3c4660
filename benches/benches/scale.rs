//! The `runlog` CLI listing jobs and runs as Redis fills up: `list-jobs` and `list-runs JOB`
//! against a store of 10,000 jobs × 10 runs, timed against the same commands on a store of
//! 10 jobs × 10 runs in the same Redis (two key prefixes), in the same run.
//!
//! `cargo bench -p runlog-benches --bench scale [-- list-jobs|list-runs|auto|diag]`
//!
//! The bench starts its own `redis-server` on a free loopback port and stops it by pid; it never
//! talks to any other Redis. Both stores are written directly in the key schema of
//! `spec/redis.md` (pipelined `HSET`/`ZADD`), not through a journal and the shipper: what is
//! measured is only the reading. See `benches/README.md`, section `scale`.

// Shared with the benches that write journals; this one uses only a few of the helpers.
#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "common/procs.rs"]
mod procs;
use common::env_number;
use procs::{clean_command, release_binaries, stats, thousands, RedisServer};

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use runlog_shipper::schema::{Keys, SCHEMA_VERSION};

/// Repeats unless `RUNLOG_BENCH_REPEAT` says otherwise.
const DEFAULT_REPEAT: usize = 21;
/// Runs per job in both stores.
const RUNS_PER_JOB: usize = 10;
/// Jobs in the small and the big store (`RUNLOG_BENCH_JOBS` changes the big one).
const SMALL_JOBS: usize = 10;
const DEFAULT_BIG_JOBS: usize = 10_000;
/// Jobs written per pipeline.
const JOBS_PER_PIPELINE: usize = 500;
/// Time between consecutive run starts across the store.
const STEP_MS: i64 = 500;
/// `list-jobs` shows this many without `--limit` (the CLI's default).
const DEFAULT_LIMIT: usize = 100;
/// The job `list-runs` lists: in both stores.
const LIST_RUNS_JOB: &str = "job-00003";

/// Target (the "Must show"): big store ÷ small store, at most.
const TARGET: f64 = 2.0;

/// The name of job `j`.
fn job_name(j: usize) -> String {
    format!("job-{j:05}")
}

/// One store: `jobs` jobs of [`RUNS_PER_JOB`] runs each under `prefix`, written as the shipper
/// writes them (spec/redis.md). Job `j`'s runs start in rounds: round `k` starts every job once,
/// in an order that is not the names' (a multiplicative permutation), so the jobs index's order
/// by last activity differs from the order by name. Every seventh run or so failed. Returns the
/// job names, most recently active first.
fn populate(
    conn: &mut redis::Connection,
    prefix: &str,
    jobs: usize,
    base_ns: i64,
) -> Result<Vec<String>, String> {
    let keys = Keys::new(prefix);
    let _: () = redis::cmd("SET")
        .arg(keys.schema())
        .arg(SCHEMA_VERSION)
        .query(conn)
        .map_err(|e| format!("SET {}: {e}", keys.schema()))?;
    // A permutation of 0..jobs: 7919 is prime and divides no job count we use.
    let slot = |j: usize| (j * 7919) % jobs;
    let start_ns =
        |j: usize, k: usize| base_ns + ((k * jobs + slot(j)) as i64) * STEP_MS * 1_000_000;
    let mut j = 0;
    while j < jobs {
        let mut p = redis::pipe();
        for j in j..(j + JOBS_PER_PIPELINE).min(jobs) {
            let name = job_name(j);
            let jk = keys.job(&name);
            for k in 0..RUNS_PER_JOB {
                let start = start_ns(j, k);
                let end = start + 1_500_000_000;
                let id = runlog::journal::layout::new_run_id(start);
                let failed = (j + k) % 7 == 3;
                let ms = start.div_euclid(1_000_000);
                p.cmd("HSET")
                    .arg(jk.run(&id))
                    .arg(&[
                        ("v", SCHEMA_VERSION.to_owned()),
                        ("job", name.clone()),
                        ("id", id.clone()),
                        ("status", if failed { "failed" } else { "ok" }.to_owned()),
                        ("start", start.to_string()),
                        ("end", end.to_string()),
                        ("last", (end - 1_000_000).to_string()),
                        ("host", "bench-host".to_owned()),
                        ("pid", "4242".to_owned()),
                        ("records", "0".to_owned()),
                        ("dropped", "0".to_owned()),
                        ("bytes", "0".to_owned()),
                        ("chunks", String::new()),
                    ])
                    .ignore();
                p.cmd("ZADD").arg(jk.runs()).arg(ms).arg(&id).ignore();
                if failed {
                    p.cmd("ZADD").arg(jk.failed()).arg(ms).arg(&id).ignore();
                }
                p.cmd("ZADD")
                    .arg(keys.jobs())
                    .arg("GT")
                    .arg(ms)
                    .arg(&name)
                    .ignore();
            }
        }
        p.query::<()>(conn)
            .map_err(|e| format!("writing the store {prefix}: {e}"))?;
        j += JOBS_PER_PIPELINE;
    }
    let mut order: Vec<usize> = (0..jobs).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(start_ns(j, RUNS_PER_JOB - 1)));
    Ok(order.into_iter().map(job_name).collect())
}

fn write_config(path: &Path, journal: &Path, url: &str, prefix: &str) -> Result<(), String> {
    let text = format!(
        "[runlog]\njournal-dir = {:?}\n\n[runlog-redis]\nurl = {url:?}\nprefix = {prefix:?}\n",
        journal.display().to_string()
    );
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What a command printed.
struct Printed {
    stdout: String,
    stderr: String,
}

/// `runlog --config CONFIG ARGS...` once, stdout to `/dev/null` (`timed`) or captured; it
/// must exit 0. Its wall time from spawn to exit.
fn run(cli: &Path, config: &Path, args: &[&str], timed: bool) -> Result<(f64, Printed), String> {
    let shell = format!("runlog --config {} {}", config.display(), args.join(" "));
    let mut c = clean_command(cli);
    c.arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if timed {
        let null = OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("/dev/null: {e}"))?;
        c.stdout(null);
    } else {
        c.stdout(Stdio::piped());
    }
    let t0 = Instant::now();
    let o = c
        .spawn()
        .and_then(|child| child.wait_with_output())
        .map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    let printed = Printed {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    if !o.status.success() {
        return Err(format!(
            "`{shell}` failed ({}): {}",
            o.status,
            printed.stderr.trim()
        ));
    }
    Ok((secs, printed))
}

/// The first column of each row of a listing (its header left out).
fn first_column(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// One comparison: the same command on the small and on the big store.
struct Row {
    name: &'static str,
    what: String,
    args: Vec<String>,
    /// What it must print on stderr: on the small store, on the big one.
    stderr: (String, String),
    target: Option<f64>,
    small_s: Vec<f64>,
    big_s: Vec<f64>,
}

fn verdict(ratio: f64, target: Option<f64>) -> String {
    match target {
        Some(t) if ratio.is_finite() && ratio <= t => "PASS".into(),
        Some(_) => "MISS".into(),
        None => "(no target)".into(),
    }
}

fn parent(filters: &[String]) -> Result<bool, String> {
    let repeat: usize = env_number("RUNLOG_BENCH_REPEAT", DEFAULT_REPEAT).max(1);
    let big_jobs: usize = env_number("RUNLOG_BENCH_JOBS", DEFAULT_BIG_JOBS).max(DEFAULT_LIMIT + 1);
    let base = common::base_dir();
    let root = tempfile::Builder::new()
        .prefix("runlog-bench-scale-")
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?;
    let dir = root.path();
    let started = Instant::now();

    let bins = release_binaries(&[("runlog-cli", "runlog", "RUNLOG_BENCH_CLI")])?;
    let cli = bins[0].clone();
    let server = RedisServer::start(dir, &[])?;
    let mut conn = server
        .conn()
        .map_err(|e| format!("cannot connect to our redis-server: {e}"))?;
    let cpus = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!(
        "runlog CLI listings: {big_jobs} jobs x {RUNS_PER_JOB} runs against {SMALL_JOBS} jobs x \
         {RUNS_PER_JOB} runs in one Redis"
    );
    println!(
        "{repeat} repeats interleaved (small, big, big, small, ...), medians with min/max; \
         {cpus} CPUs"
    );
    println!(
        "{} on 127.0.0.1:{} (pid {}), --save \"\" --appendonly no",
        server.version,
        server.port,
        server.child.id()
    );
    println!("runlog: {}", cli.display());

    // The stores, a day old.
    let base_ns = runlog::time::now_ns() - 86_400 * 1_000_000_000;
    let t0 = Instant::now();
    let small_order = populate(&mut conn, "small", SMALL_JOBS, base_ns)?;
    let big_order = populate(&mut conn, "big", big_jobs, base_ns)?;
    let keys: i64 = redis::cmd("DBSIZE")
        .query(&mut conn)
        .map_err(|e| format!("DBSIZE: {e}"))?;
    let mem: String = redis::cmd("MEMORY")
        .arg("STATS")
        .query::<Vec<redis::Value>>(&mut conn)
        .ok()
        .and_then(|v| {
            v.chunks(2).find_map(|kv| match kv {
                [redis::Value::BulkString(k), redis::Value::Int(n)] if k == b"dataset.bytes" => {
                    Some(thousands(*n as f64))
                }
                _ => None,
            })
        })
        .unwrap_or_else(|| "?".into());
    println!(
        "stores written in {:.2} s: prefix `small` ({SMALL_JOBS} jobs), prefix `big` \
         ({big_jobs} jobs); {} keys, dataset {mem} bytes",
        t0.elapsed().as_secs_f64(),
        thousands(keys as f64)
    );

    // Configs: one per store; the journal directory exists and is empty (for --source auto).
    let journal = dir.join("journal-empty");
    fs::create_dir_all(&journal).map_err(|e| format!("{}: {e}", journal.display()))?;
    let url = server.url();
    let small_cfg = dir.join("small.toml");
    let big_cfg = dir.join("big.toml");
    write_config(&small_cfg, &journal, &url, "small")?;
    write_config(&big_cfg, &journal, &url, "big")?;

    let note = |n: usize| {
        format!(
            "runlog: showing the {n} most recently active jobs; there are more (--limit 0 shows \
             all)\n"
        )
    };
    let words = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut rows = vec![
        Row {
            name: "list-jobs",
            what: "list-jobs (default limit)".into(),
            args: words(&["--source", "redis", "list-jobs"]),
            stderr: (String::new(), note(DEFAULT_LIMIT)),
            target: Some(TARGET),
            small_s: Vec::new(),
            big_s: Vec::new(),
        },
        Row {
            name: "list-runs",
            what: format!("list-runs {LIST_RUNS_JOB}"),
            args: words(&["--source", "redis", "list-runs", LIST_RUNS_JOB]),
            stderr: (String::new(), String::new()),
            target: Some(TARGET),
            small_s: Vec::new(),
            big_s: Vec::new(),
        },
        Row {
            name: "auto list-jobs",
            what: "list-jobs, --source auto".into(),
            args: words(&["--source", "auto", "list-jobs"]),
            stderr: (String::new(), note(DEFAULT_LIMIT)),
            target: Some(TARGET),
            small_s: Vec::new(),
            big_s: Vec::new(),
        },
        Row {
            name: "diag list-jobs --limit 10",
            what: "list-jobs --limit 10".into(),
            args: words(&["--source", "redis", "list-jobs", "--limit", "10"]),
            stderr: (String::new(), note(10)),
            target: None,
            small_s: Vec::new(),
            big_s: Vec::new(),
        },
        Row {
            name: "diag list-jobs --limit 0",
            what: "list-jobs --limit 0 (all)".into(),
            args: words(&["--source", "redis", "list-jobs", "--limit", "0"]),
            stderr: (String::new(), String::new()),
            target: None,
            small_s: Vec::new(),
            big_s: Vec::new(),
        },
    ];
    rows.retain(|r| filters.is_empty() || filters.iter().any(|f| r.name.contains(f.as_str())));
    if rows.is_empty() {
        return Err(format!(
            "no part matches {filters:?} (parts: list-jobs, list-runs, auto, diag)"
        ));
    }

    // What each prints, checked once: the most recently active jobs, in order.
    fn args(r: &Row) -> Vec<&str> {
        r.args.iter().map(String::as_str).collect()
    }
    for r in &rows {
        for (cfg, order, want_err) in [
            (&small_cfg, &small_order, &r.stderr.0),
            (&big_cfg, &big_order, &r.stderr.1),
        ] {
            let (_, p) = run(&cli, cfg, &args(r), false)?;
            let shown = first_column(&p.stdout);
            let want: Vec<String> = if r.args.iter().any(|a| a == "list-runs") {
                vec![String::new(); RUNS_PER_JOB]
            } else {
                let limit = match r.args.iter().position(|a| a == "--limit") {
                    Some(i) => r.args[i + 1].parse().unwrap_or(0),
                    None => DEFAULT_LIMIT,
                };
                let n = if limit == 0 { order.len() } else { limit };
                order.iter().take(n).cloned().collect()
            };
            let same = if r.args.iter().any(|a| a == "list-runs") {
                shown.len() == want.len()
            } else {
                shown == want
            };
            if !same || &p.stderr != want_err {
                return Err(format!(
                    "`runlog {}` ({}) printed {} rows (first {:?}) and stderr {:?}; expected {} \
                     rows (first {:?}) and stderr {want_err:?}",
                    r.args.join(" "),
                    cfg.display(),
                    shown.len(),
                    shown.first(),
                    p.stderr,
                    want.len(),
                    want.first()
                ));
            }
        }
        println!(
            "{:<26} runlog --config {{small,big}}.toml {}",
            r.name,
            r.args.join(" ")
        );
    }
    println!();

    // The measurements: a warm-up round, then the repeats; the order of small and big swaps
    // every repeat. Listing all 10,000 jobs (20,000 commands) slowed whatever ran right after
    // it by about a millisecond (`list-jobs` 4.5 ms after it, 3.4 ms otherwise), so it runs
    // after the others, in its own rounds.
    let mut failed = false;
    let heavy = |r: &Row| r.args.ends_with(&["--limit".to_owned(), "0".to_owned()]);
    for phase in [false, true] {
        for rep in 0..=repeat {
            for r in rows.iter_mut().filter(|r| heavy(r) == phase) {
                let a: Vec<String> = r.args.clone();
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                let once = |cfg: &PathBuf, want_err: &str| -> Option<f64> {
                    match run(&cli, cfg, &a, true) {
                        Ok((s, p)) if p.stderr == want_err => Some(s),
                        Ok((_, p)) => {
                            eprintln!(
                                "scale bench: {}, repeat {rep}: stderr {:?}",
                                r.name, p.stderr
                            );
                            None
                        }
                        Err(e) => {
                            eprintln!("scale bench: {}, repeat {rep}: {e}", r.name);
                            None
                        }
                    }
                };
                let (s, b) = if rep % 2 == 0 {
                    let s = once(&small_cfg, &r.stderr.0);
                    (s, once(&big_cfg, &r.stderr.1))
                } else {
                    let b = once(&big_cfg, &r.stderr.1);
                    (once(&small_cfg, &r.stderr.0), b)
                };
                match (s, b) {
                    (Some(s), Some(b)) if rep > 0 => {
                        r.small_s.push(s);
                        r.big_s.push(b);
                    }
                    (Some(_), Some(_)) => {}
                    _ => failed = true,
                }
            }
        }
    }

    let ms = |v: &[f64]| {
        let (med, min, max) = stats(v);
        (med * 1e3, min * 1e3, max * 1e3)
    };
    println!(
        "{:<40} {:>9} {:>9} {:>9}",
        "wall time (ms)", "median", "min", "max"
    );
    for r in &rows {
        for (who, v, jobs) in [
            ("small", &r.small_s, SMALL_JOBS),
            ("big", &r.big_s, big_jobs),
        ] {
            let (med, min, max) = ms(v);
            println!(
                "{:<40} {med:>9.2} {min:>9.2} {max:>9.2}",
                format!("{} ({who}: {} jobs)", r.what, thousands(jobs as f64))
            );
        }
    }
    println!();
    println!(
        "{:<30} {:>11} {:>11} {:>8} {:>15} {:>8}  verdict",
        "what", "small (ms)", "big (ms)", "ratio", "paired min..max", "target"
    );
    for r in &rows {
        let (s, _, _) = stats(&r.small_s);
        let (b, _, _) = stats(&r.big_s);
        let paired: Vec<f64> = r.big_s.iter().zip(&r.small_s).map(|(b, s)| b / s).collect();
        let (_, pmin, pmax) = stats(&paired);
        let ratio = b / s;
        println!(
            "{:<30} {:>11.2} {:>11.2} {:>7.2}x {:>15} {:>8}  {}",
            r.what,
            s * 1e3,
            b * 1e3,
            ratio,
            format!("{pmin:.2}..{pmax:.2}"),
            r.target
                .map_or_else(|| "-".into(), |t| format!("<= {t:.1}x")),
            verdict(ratio, r.target)
        );
        failed |= r.small_s.len() != repeat;
    }
    println!();
    println!("took {:.1} s", started.elapsed().as_secs_f64());
    drop(server);
    Ok(!failed)
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; other words choose parts.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match parent(&filters) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("scale bench: {e}");
            ExitCode::FAILURE
        }
    }
}
