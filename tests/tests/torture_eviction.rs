//! Torture suite, a Redis that evicts keys (`maxmemory`, spec/redis.md, "Redis configuration"):
//!
//! - `allkeys-*` policies: the shipper refuses the server before writing anything.
//! - `volatile-lru` with a memory limit that each iteration draws below what the journal
//!   needs: only the stage lists of uploads in flight (the one kind of runlog key with an
//!   expiry) can be evicted, mid-upload. An upload whose stage list was evicted must never
//!   publish a partial run (the upload script finds the stage list short or missing and
//!   fails; the shipper tries again), must leave no stage list without its expiry, and what
//!   the CLI lists must have the journal's status. Once the limit is lifted, one more ship
//!   makes Redis hold every run whole.
//!
//! The binaries must be built first (`cargo build --workspace`); every scenario starts its own
//! `redis-server` (never the one on port 6379).

use std::collections::BTreeMap;
use std::path::Path;

use runlog::{Journal, RunStatus};
use runlog_e2e::cli::{output, runlog_cmd};
use runlog_e2e::redis::{check_store, job_base, scan_keys, snapshot, Data, RedisServer, Val};
use runlog_e2e::shipper::{
    copy_tree, reset_shipper_state, run_kid, ship_once, ship_once_ok, KidArgs, Kind, ShipperConfig,
};
use runlog_e2e::torture::{conclude, iterations, seeded_rng};

const KID: &str = env!("CARGO_BIN_EXE_jobkid");
const PREFIX: &str = "runlog";
const JOBS: [&str; 2] = ["evict a", "evict/b"];

/// An `INFO` field as a number.
fn info_number(server: &RedisServer, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query(&mut server.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
}

fn config_set(server: &RedisServer, key: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(key)
        .arg(value)
        .query(&mut server.conn())
        .unwrap();
}

/// (status, records) of every ended run of the journal, by job and id.
fn journal_runs(journal: &Path) -> BTreeMap<(String, String), (RunStatus, u64)> {
    let j = Journal::open(journal).unwrap();
    let mut out = BTreeMap::new();
    for job in JOBS {
        for r in j.runs(job).unwrap() {
            out.insert((job.to_owned(), r.id.clone()), (r.status, r.records));
        }
    }
    out
}

/// The runs `runlog list-runs --json --source redis` shows: (job, id) → status.
fn listed(config: &Path) -> Result<BTreeMap<(String, String), String>, String> {
    let mut out = BTreeMap::new();
    for job in JOBS {
        let o = output(runlog_cmd().arg("--config").arg(config).args([
            "--source",
            "redis",
            "list-runs",
            "--json",
            job,
        ]));
        // A job none of whose runs made it yet is "not found" (3).
        if o.code == 3 {
            continue;
        }
        if o.code != 0 {
            return Err(format!("list-runs {job:?}: exit {}: {}", o.code, o.stderr));
        }
        for line in o.stdout.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            out.insert((job.to_owned(), field("id")), field("status"));
        }
    }
    Ok(out)
}

#[test]
fn torture_eviction_allkeys_policies_are_refused_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    run_kid(
        Path::new(KID),
        &KidArgs::new(&j, JOBS[0], 2, 20, &[Kind::Ok]),
    );
    let mut failures = Vec::new();
    let policies = ["allkeys-lru", "allkeys-lfu", "allkeys-random"];
    for policy in policies {
        let server =
            RedisServer::start_with(&["--maxmemory", "16mb", "--maxmemory-policy", policy]);
        let cfg = ShipperConfig::new(&j, &server.url(), 10, 10)
            .write(&t.path().join(format!("{policy}.toml")));
        let (st, log) = ship_once(&cfg, &t.path().join(format!("{policy}.log")));
        if st.code() != Some(1) || !log.contains(&format!("maxmemory-policy {policy}")) {
            failures.push(format!("{policy}: not refused ({st}): {log}"));
        }
        let keys = scan_keys(&mut server.conn(), "*");
        if !keys.is_empty() {
            failures.push(format!("{policy}: {} keys written", keys.len()));
        }
    }
    conclude(
        "eviction: allkeys-* refused",
        policies.len() as u64,
        &failures,
        0,
    );
}

#[test]
fn torture_eviction_volatile_lru_evicts_stage_lists_only_and_no_run_is_published_partly() {
    let t = tempfile::tempdir().unwrap();
    let template = t.path().join("template");
    // Records of random text barely compress: each run is ~8 chunks of ~64 KiB in Redis.
    for job in JOBS {
        let mut args = KidArgs::new(&template, job, 4, 350, &[Kind::Ok, Kind::Fail]);
        args.size = 1500;
        args.noise = true;
        run_kid(Path::new(KID), &args);
    }
    let expected = journal_runs(&template);
    let total_records: u64 = expected.values().map(|(_, n)| n).sum();
    let mut rng = seeded_rng("eviction volatile-lru");
    let iters = iterations(6, 40);
    let (mut failures, mut lost, mut checked, mut wrong_status) = (Vec::new(), 0u64, 0u64, 0u64);
    let (mut evicted, mut refused_ships) = (0u64, 0u64);
    for i in 0..iters {
        let j = t.path().join(format!("journal{i}"));
        copy_tree(&template, &j);
        reset_shipper_state(&j);
        let server = RedisServer::start_with(&["--maxmemory-policy", "volatile-lru"]);
        let mut cfg = ShipperConfig::new(&j, &server.url(), 10, 10);
        // One chunk per RPUSH and per round trip: stage lists grow command by command.
        cfg.pipeline_size = Some("1KiB".into());
        let cfg = cfg.write(&t.path().join(format!("c{i}.toml")));
        // The keys a shipper sets first (it keeps them), then a limit somewhere below what
        // all runs need (the first iteration: below one run).
        let mut conn = server.conn();
        for (k, v) in [
            ("schema", "1"),
            ("epoch", "0123456789abcdef0123456789abcdef"),
        ] {
            let _: () = redis::cmd("SET")
                .arg(format!("{PREFIX}:{k}"))
                .arg(v)
                .query(&mut conn)
                .unwrap();
        }
        let used = info_number(&server, "memory", "used_memory");
        let room = if i == 0 {
            300 << 10
        } else {
            (300 << 10) + rng.below(4 << 20)
        };
        config_set(&server, "maxmemory", &(used + room).to_string());
        let (st, log) = ship_once(&cfg, &t.path().join(format!("tight{i}.log")));
        if !st.success() {
            refused_ships += 1;
        } else if i == 0 {
            failures.push(format!("iteration 0: shipped in {room} bytes: {log}"));
        }
        evicted += info_number(&server, "stats", "evicted_keys");
        config_set(&server, "maxmemory", "0");

        // Whatever is visible is whole; stage lists left behind still expire.
        let mut snap = snapshot(&mut server.conn(), PREFIX);
        let stages: Vec<Vec<u8>> = snap
            .keys()
            .filter(|k| k.windows(7).any(|w| w == b":stage:"))
            .cloned()
            .collect();
        for k in stages {
            if let Some(v) = snap.remove(&k) {
                if !v.expires {
                    failures.push(format!(
                        "iteration {i}: stage list {} left without expiry",
                        String::from_utf8_lossy(&k)
                    ));
                }
                if !matches!(v.data, Data::List(_)) {
                    failures.push(format!("iteration {i}: stage key of another type"));
                }
            }
        }
        // A ship that failed after a run's upload script and before `ZADD <P>:jobs` (step 4,
        // a command of its own) leaves a whole, visible run whose job is not in the jobs
        // index yet: allowed (spec/redis.md, *Upload*; the next ship adds it). Count such jobs
        // in for the check.
        let jobs_key = format!("{PREFIX}:jobs").into_bytes();
        for job in JOBS {
            let runs_key = format!("{}runs", job_base(PREFIX, job)).into_bytes();
            // Its score: the start of its newest run.
            let newest = match snap.get(&runs_key) {
                Some(Val {
                    data: Data::ZSet(runs),
                    ..
                }) => runs
                    .iter()
                    .map(|(_, s)| s.clone())
                    .max_by_key(|s| s.parse::<i64>().unwrap_or(0)),
                _ => None,
            };
            let Some(newest) = newest else {
                continue;
            };
            let jobs = snap.entry(jobs_key.clone()).or_insert(Val {
                data: Data::ZSet(Vec::new()),
                expires: false,
            });
            if let Data::ZSet(members) = &mut jobs.data {
                if !members.iter().any(|(m, _)| m == job.as_bytes()) {
                    members.push((job.as_bytes().to_vec(), newest));
                    members.sort();
                }
            }
        }
        if let Err(e) = check_store(&snap, PREFIX, true) {
            failures.push(format!(
                "iteration {i}: after the tight ship: {e}; its log:\n{log}"
            ));
        }
        let mut compare = |phase: &str, failures: &mut Vec<String>| match listed(&cfg) {
            Ok(shown) => {
                for (run, status) in shown {
                    checked += 1;
                    match expected.get(&run) {
                        Some((s, _)) if s.as_str() == status => {}
                        other => {
                            wrong_status += 1;
                            failures.push(format!(
                                "iteration {i} {phase}: run {run:?} shown {status}, journal \
                                 says {other:?}"
                            ));
                        }
                    }
                }
            }
            Err(e) => failures.push(format!("iteration {i} {phase}: {e}")),
        };
        compare("after the tight ship", &mut failures);

        // Room again: one more ship makes every run whole.
        ship_once_ok(&cfg, &t.path().join(format!("room{i}.log")));
        match check_store(&snapshot(&mut server.conn(), PREFIX), PREFIX, true) {
            Ok(store) => {
                for ((job, id), (_, records)) in &expected {
                    let got = store
                        .runs(job)
                        .iter()
                        .find(|r| &r.id == id)
                        .map_or(0, |r| r.records.len() as u64);
                    lost += records.saturating_sub(got);
                }
            }
            Err(e) => {
                failures.push(format!("iteration {i}: after the ship with room: {e}"));
                lost += total_records;
            }
        }
        compare("after the ship with room", &mut failures);
    }
    eprintln!(
        "torture: eviction volatile-lru: {checked} runs checked, {wrong_status} shown with a \
         wrong status, {evicted} keys evicted, {refused_ships} of {iters} tight ships failed \
         and were retried"
    );
    if evicted == 0 {
        failures.push("no stage list was ever evicted: the scenario tested nothing".into());
    }
    conclude(
        "eviction: volatile-lru, stage lists evicted mid-upload (runs checked)",
        checked,
        &failures,
        lost,
    );
}
