//! `runlog-shipper` on a 3-master Redis Cluster against one `redis-server`: the same journal
//! (several jobs, so that their slots spread over the masters) shipped by
//! `runlog-shipper --once` to each, interleaved, records per second, medians; target: the
//! cluster at least as fast as one server (≥ 1.0×).
//!
//! `cargo bench -p runlog-benches --bench cluster`
//!
//! The bench starts its own servers on free loopback ports (the cluster's made with
//! `redis-cli --cluster create`) and stops them by pid; it never talks to any other Redis.
//! See `benches/README.md`, section `cluster`.

mod common;
#[path = "common/procs.rs"]
mod procs;
use common::{base_dir, env_number, filesystem_of};
use procs::{
    clean_command, free_port, log_one_run, release_binaries, ship_once, stats, thousands,
    write_journal, RedisServer,
};

use std::fs;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use runlog::journal::layout::{SHIPPED_FILE, SHIPPER_DIR};
use runlog_shipper::schema::Keys;
use runlog_shipper::ship::STATE_FILE;

const DEFAULT_RECORDS: u64 = 1_000_000;
const DEFAULT_REPEAT: usize = 5;
/// Jobs in the journal: enough for every master to serve several.
const JOBS: u64 = 12;
/// Runs per job.
const RUNS: u64 = 10;
const MASTERS: usize = 3;
const PREFIX: &str = "runlog";
const MAX_LOGS: usize = 100_000;
const TARGET: f64 = 1.0;

fn job(i: u64) -> String {
    format!("bench-cluster-{i}")
}

/// `--write-journal JOURNAL RECORDS_PER_RUN`: `JOBS` jobs of `RUNS` runs.
fn write_journal_child(args: &[String]) -> ExitCode {
    let [journal, per_run] = args else {
        eprintln!("usage: cluster --write-journal JOURNAL RECORDS_PER_RUN");
        return ExitCode::FAILURE;
    };
    let Ok(per_run) = per_run.parse::<u64>() else {
        eprintln!("cluster --write-journal: bad arguments {args:?}");
        return ExitCode::FAILURE;
    };
    let rl = runlog::RunLogger::builder()
        .journal_dir(journal)
        .no_config_file()
        .max_logs(MAX_LOGS)
        .max_failed_logs(MAX_LOGS)
        .build()
        .unwrap_or_else(|e| panic!("cannot build runlog: {e}"));
    rl.install()
        .unwrap_or_else(|e| panic!("cannot install runlog: {e}"));
    let (mut written, mut dropped) = (0, 0);
    for _ in 0..RUNS {
        for j in 0..JOBS {
            let (w, d) = log_one_run(&rl, &job(j), per_run);
            written += w;
            dropped += d;
        }
    }
    println!("RESULT written={written} dropped={dropped}");
    ExitCode::SUCCESS
}

/// Start `MASTERS` cluster nodes and join them; their servers.
fn start_cluster(root: &Path) -> Result<Vec<RedisServer>, String> {
    let mut nodes = Vec::new();
    for i in 0..MASTERS {
        let dir = root.join(format!("node{i}"));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let bus = free_port()?.to_string();
        nodes.push(RedisServer::start_with(
            &dir,
            &["redis-cli"],
            &["--cluster-enabled", "yes", "--cluster-port", &bus],
        )?);
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let out = clean_command("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run redis-cli: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = nodes.iter().all(|n| {
            n.conn()
                .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
                .is_ok_and(|i| {
                    i.contains("cluster_state:ok")
                        && i.contains(&format!("cluster_known_nodes:{MASTERS}"))
                })
        });
        if ok {
            return Ok(nodes);
        }
        if Instant::now() > deadline {
            return Err("the cluster did not become ok within 30 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_config(path: &Path, journal: &Path, redis: &str) -> Result<(), String> {
    let text = format!(
        "[runlog]\njournal-dir = {:?}\nmax-logs = {MAX_LOGS}\nmax-failed-logs = {MAX_LOGS}\n\n\
         [runlog-redis]\n{redis}\nprefix = {PREFIX:?}\n\n\
         [runlog-shipper]\ndisk-budget = \"64GiB\"\n",
        journal.display().to_string()
    );
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Forget what was shipped, so that every run is uploaded again.
fn reset_journal(journal: &Path) -> Result<(), String> {
    let mut files = vec![journal.join(SHIPPER_DIR).join(STATE_FILE)];
    for j in 0..JOBS {
        files.push(runlog::journal::layout::job_dir(journal, &job(j)).join(SHIPPED_FILE));
    }
    for f in files {
        match fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", f.display())),
        }
    }
    Ok(())
}

/// FLUSHALL on each server.
fn flush(servers: &[RedisServer]) -> Result<(), String> {
    for s in servers {
        let mut c = s.conn().map_err(|e| e.to_string())?;
        redis::cmd("FLUSHALL")
            .query::<()>(&mut c)
            .map_err(|e| format!("FLUSHALL: {e}"))?;
    }
    Ok(())
}

/// (runs, records) the servers hold together: every job's `runs` members and their `records`.
fn stored(servers: &[RedisServer]) -> Result<(u64, u64), String> {
    let keys = Keys::new(PREFIX);
    let (mut runs, mut records) = (0, 0);
    for s in servers {
        let mut c = s.conn().map_err(|e| e.to_string())?;
        for j in 0..JOBS {
            let jk = keys.job(&job(j));
            // Only the node serving the job's slot holds its keys; the others answer MOVED.
            let Ok(ids) = redis::cmd("ZRANGE")
                .arg(jk.runs())
                .arg(0)
                .arg(-1)
                .query::<Vec<String>>(&mut c)
            else {
                continue;
            };
            for id in ids {
                let n: Option<u64> = redis::cmd("HGET")
                    .arg(jk.run(&id))
                    .arg("records")
                    .query(&mut c)
                    .map_err(|e| e.to_string())?;
                runs += 1;
                records += n.unwrap_or(0);
            }
        }
    }
    Ok((runs, records))
}

fn parent() -> Result<bool, String> {
    let n: u64 = env_number("RUNLOG_BENCH_RECORDS", DEFAULT_RECORDS).max(JOBS * RUNS);
    let per_run = n / (JOBS * RUNS);
    let n = per_run * JOBS * RUNS;
    let repeat: usize = env_number("RUNLOG_BENCH_REPEAT", DEFAULT_REPEAT).max(1);
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let base = base_dir();
    let root = tempfile::Builder::new()
        .prefix("runlog-bench-cluster-")
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?;
    let shipper =
        release_binaries(&[("runlog-shipper", "runlog-shipper", "RUNLOG_BENCH_SHIPPER")])?
            .remove(0);
    let single_dir = root.path().join("single");
    fs::create_dir_all(&single_dir).map_err(|e| e.to_string())?;
    let single = RedisServer::start(&single_dir, &["redis-cli"])?;
    let cluster = start_cluster(root.path())?;

    let journal = root.path().join("journal");
    write_journal(&exe, &journal, &[per_run.to_string()], n)?;
    let (single_cfg, cluster_cfg) = (root.path().join("single.toml"), root.path().join("c.toml"));
    write_config(&single_cfg, &journal, &format!("url = {:?}", single.url()))?;
    let nodes: Vec<String> = cluster.iter().map(|s| format!("{:?}", s.url())).collect();
    write_config(
        &cluster_cfg,
        &journal,
        &format!("cluster = [{}]", nodes.join(", ")),
    )?;

    println!("runlog-shipper --once: a {MASTERS}-master Redis Cluster against one redis-server");
    println!(
        "{} records: {JOBS} jobs x {RUNS} runs x {per_run} records; {repeat} repeats \
         interleaved (single, cluster, ...), medians with min/max; {} CPUs",
        thousands(n as f64),
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    let fs_desc = filesystem_of(root.path()).map_or_else(
        || "unknown filesystem".to_owned(),
        |(dev, at, fs)| format!("{dev} mounted on {at}, {fs}"),
    );
    println!("files in {} ({fs_desc})", root.path().display());
    println!(
        "{}, all on 127.0.0.1, --save \"\" --appendonly no; shipper binary: {}",
        single.version,
        shipper.display()
    );
    let (mut single_rps, mut cluster_rps) = (Vec::new(), Vec::new());
    for rep in 0..repeat {
        for (name, cfg, servers, out) in [
            (
                "single",
                &single_cfg,
                std::slice::from_ref(&single),
                &mut single_rps,
            ),
            ("cluster", &cluster_cfg, &cluster[..], &mut cluster_rps),
        ] {
            flush(servers)?;
            reset_journal(&journal)?;
            let wall = ship_once(&mut clean_command(&shipper), cfg)?;
            let (runs, records) = stored(servers)?;
            if runs != JOBS * RUNS || records != n {
                return Err(format!(
                    "repeat {rep}, {name}: Redis holds {runs} runs and {records} records, not \
                     {} and {n}",
                    JOBS * RUNS
                ));
            }
            out.push(n as f64 / wall);
        }
    }
    let (s_med, s_min, s_max) = stats(&single_rps);
    let (c_med, c_min, c_max) = stats(&cluster_rps);
    println!();
    println!("target              records/s      min        max");
    for (name, (med, min, max)) in [
        ("one redis-server", (s_med, s_min, s_max)),
        ("3-master cluster", (c_med, c_min, c_max)),
    ] {
        println!(
            "{name:<18} {:>10} {:>10} {:>10}",
            thousands(med),
            thousands(min),
            thousands(max)
        );
    }
    let ratio = c_med / s_med;
    let ok = ratio >= TARGET;
    println!();
    println!(
        "cluster/single throughput: {ratio:.2}x (target >= {TARGET:.1}) {}",
        if ok { "PASS" } else { "FAIL" }
    );
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--write-journal") {
        return write_journal_child(&args[1..]);
    }
    match parent() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cluster bench: {e}");
            ExitCode::FAILURE
        }
    }
}
