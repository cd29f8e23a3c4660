//! End-to-end tests of `runlog-shipper`: real job processes (`src/bin/jobkid.rs`) write
//! journals with the runlog library, the real shipper binary uploads them to a `redis-server`
//! each test starts for itself (never the machine's own on port 6379), and the tests read Redis
//! back — with the `redis` crate, with `redis-cli`, and atomically with a Lua script while the
//! shipper writes — and hold it to `spec/redis.md`.
//!
//! Needs `redis-server` and `redis-cli` (the tests fail, never skip, without them) and the
//! shipper binary built (`cargo build --workspace`, as `scripts/test.sh` does).
//!
//! Environment: `RUNLOG_SHIPPER_KILL_ITERS` (kill points of the SIGKILL test, default
//! [`DEFAULT_KILL_ITERS`]), `RUNLOG_SHIPPER_KILL_SEED` (replay a seed; it is printed).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use runlog::journal::shipped::read_shipped;
use runlog::{Journal, Record, RunInfo, RunLog, RunStatus};
use runlog_e2e::crash::{mix, Rng};
use runlog_e2e::redis::{
    check_consistent, check_store, check_view, diff, dump_all, job_base, key_slot,
    read_job_atomically, scan_keys, snapshot, spec_decode_chunk, spec_escape, spec_parse_index,
    without_epoch, RedisServer, RunState, Snapshot, Store,
};
use runlog_e2e::shipper::{
    copy_tree, poll, reset_shipper_state, run_kid, segment_bytes, ship_once, ship_once_ok,
    wait_first_write, Kid, KidArgs, KidLine, Kind, Shipper, ShipperConfig,
};
use tempfile::TempDir;

const KID: &str = env!("CARGO_BIN_EXE_jobkid");
const PEAKRSS: &str = env!("CARGO_BIN_EXE_peakrss");
const PREFIX: &str = "runlog";
/// Kill points of the SIGKILL test in the default run.
const DEFAULT_KILL_ITERS: usize = 100;
/// Generous deadline for anything a daemon shipper should do "soon".
const SOON: Duration = Duration::from_secs(30);

fn kid() -> &'static Path {
    Path::new(KID)
}

/// The tests that measure something (kill points spread over a ship's duration, log-call
/// latencies) run one at a time, so they do not measure each other.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn tmp() -> TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn epoch_key() -> Vec<u8> {
    format!("{PREFIX}:epoch").into_bytes()
}

/// Every listed run of `job` in the journal (not cancelled), oldest first.
fn journal_infos(journal: &Path, job: &str) -> Vec<RunInfo> {
    Journal::open(journal)
        .expect("open journal")
        .runs(job)
        .expect("list runs")
}

/// Every ended run of `job` in the journal with its records, by id.
fn journal_logs(journal: &Path, job: &str) -> BTreeMap<String, RunLog> {
    let j = Journal::open(journal).expect("open journal");
    journal_infos(journal, job)
        .into_iter()
        .filter(|r| r.status != RunStatus::Running)
        .map(|r| {
            let log = j.read_run(job, &r.id).expect("read run");
            (r.id.clone(), log)
        })
        .collect()
}

/// The runs a job must hold in Redis: the newest `max_ok` ok runs and the newest
/// `max_failed` failed or crashed ones.
fn newest(runs: &[(String, &str)], max_ok: usize, max_failed: usize) -> BTreeSet<String> {
    let mut sorted: Vec<&(String, &str)> = runs.iter().collect();
    sorted.sort();
    let ok: Vec<&String> = sorted
        .iter()
        .filter(|(_, s)| *s == "ok")
        .map(|(id, _)| id)
        .collect();
    let failed: Vec<&String> = sorted
        .iter()
        .filter(|(_, s)| *s == "failed" || *s == "crashed")
        .map(|(id, _)| id)
        .collect();
    ok[ok.len().saturating_sub(max_ok)..]
        .iter()
        .chain(&failed[failed.len().saturating_sub(max_failed)..])
        .map(|s| (*s).clone())
        .collect()
}

fn statuses(logs: &BTreeMap<String, RunLog>) -> Vec<(String, &'static str)> {
    logs.values()
        .map(|l| (l.info.id.clone(), l.info.status.as_str()))
        .collect()
}

/// The `error` summary spec/redis.md defines: the last `runlog::error` record's message, else
/// the last `runlog::panic` record's that is not the backtrace, else the last ERROR record's;
/// at most 1024 bytes cut at a character boundary.
fn expected_error(records: &[Record]) -> Option<String> {
    let error = |r: &&Record| r.level == log::Level::Error;
    let msg = records
        .iter()
        .filter(error)
        .rfind(|r| r.target == "runlog::error")
        .or_else(|| {
            records.iter().filter(error).rfind(|r| {
                r.target == "runlog::panic" && !r.message.starts_with("stack backtrace:")
            })
        })
        .or_else(|| records.iter().rfind(error))?;
    let mut end = msg.message.len().min(1024);
    while !msg.message.is_char_boundary(end) {
        end -= 1;
    }
    Some(msg.message[..end].to_owned())
}

/// A visible run holds exactly what the journal has: the metadata spec/redis.md lists and the
/// same records.
fn assert_run_matches(job: &str, state: &RunState, log: &RunLog) {
    let info = &log.info;
    let ctx = format!("job {job:?} run {}", info.id);
    let f = |k: &str| state.field(k).map(str::to_owned);
    assert_eq!(f("v").as_deref(), Some("1"), "{ctx}");
    assert_eq!(f("job").as_deref(), Some(job), "{ctx}");
    assert_eq!(f("id").as_deref(), Some(info.id.as_str()), "{ctx}");
    assert_eq!(f("status").as_deref(), Some(info.status.as_str()), "{ctx}");
    assert_eq!(f("start"), Some(info.start_ns.to_string()), "{ctx}");
    assert_eq!(f("end"), info.end_ns.map(|e| e.to_string()), "{ctx}");
    assert_eq!(f("last"), Some(info.last_ns.to_string()), "{ctx}");
    assert_eq!(f("host").as_deref(), Some(info.host.as_str()), "{ctx}");
    assert_eq!(f("pid"), Some(info.pid.to_string()), "{ctx}");
    assert_eq!(f("records"), Some(log.records.len().to_string()), "{ctx}");
    assert_eq!(f("dropped"), Some(info.dropped.to_string()), "{ctx}");
    assert_eq!(
        f("problems"),
        None,
        "{ctx}: a healthy run has no `problems`"
    );
    let labels: BTreeMap<String, String> = info
        .labels
        .iter()
        .map(|(k, v)| (format!("label:{k}"), v.clone()))
        .collect();
    let got: BTreeMap<String, String> = state
        .meta
        .iter()
        .filter(|(k, _)| k.starts_with("label:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(got, labels, "{ctx}: labels");
    match info.status {
        RunStatus::Ok => assert_eq!(f("error"), None, "{ctx}: an ok run has no error"),
        _ => assert_eq!(
            f("error"),
            expected_error(&log.records),
            "{ctx}: the error summary"
        ),
    }
    assert_eq!(
        state.records.len(),
        log.records.len(),
        "{ctx}: record count"
    );
    for (i, (a, b)) in state.records.iter().zip(&log.records).enumerate() {
        assert_eq!(
            a, b,
            "{ctx}: record {i} in Redis differs from the journal's"
        );
    }
}

fn config(dir: &Path, name: &str, c: &ShipperConfig) -> PathBuf {
    c.write(&dir.join(name))
}

fn kid_args(journal: &Path, job: &str, runs: u64, records: u64, kinds: &[Kind]) -> KidArgs {
    KidArgs::new(journal, job, runs, records, kinds)
}

/// One run of `job` (ending as `kind`) of `records` records, each with `size` bytes of random
/// text that barely compresses.
fn noise_run(journal: &Path, job: &str, records: u64, size: usize, kind: Kind) {
    let mut a = kid_args(journal, job, 1, records, &[kind]);
    a.size = size;
    a.noise = true;
    run_kid(kid(), &a);
}

fn kid_runs(lines: &[KidLine]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| match l {
            KidLine::Run { id, status, .. } => Some((id.clone(), status.clone())),
            KidLine::Crash { id, .. } => Some((id.clone(), "crashed".to_owned())),
            _ => None,
        })
        .collect()
}

/// The ids a daemon must have uploaded for a job, and the check that Redis holds exactly those.
fn redis_ids(redis: &RedisServer, job: &str) -> BTreeSet<String> {
    let mut c = redis.conn();
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{}runs", job_base(PREFIX, job)))
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("ZRANGE runs");
    ids.into_iter().collect()
}

fn wait_started(s: &Shipper) {
    poll(SOON, "the shipper to start", |last| {
        let log = s.log();
        if log.contains("shipping journal") {
            return Some(());
        }
        *last = log;
        None
    });
}

// ---------------------------------------------------------------------------------------------
// a
// ---------------------------------------------------------------------------------------------

const ODD_JOB: &str = "nightly {eu}: report ✓ ü";
const PLAIN_JOB: &str = "plain-job";

/// `--once` uploads every ended run that local retention and the limits keep, with the metadata
/// spec/redis.md lists and exactly the journal's records; cancelled runs never, a running run
/// only once it has ended; crashed runs as `crashed`; failed runs with their `error` summary;
/// trimming keeps exactly the newest `max-logs` ok and `max-failed-logs` failed/crashed runs.
#[test]
fn ship_once_uploads_ended_runs_exactly() {
    let t = tmp();
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    let (max_ok, max_failed) = (3, 2);

    // ok, panic, Err, cancel, ok, fail, ok; then a crash; then ok, ok, Err: with the limits
    // (3, 2) the crashed run and the last Err run are the kept failures.
    let mut a = kid_args(
        &journal,
        ODD_JOB,
        7,
        30,
        &[
            Kind::Ok,
            Kind::Panic,
            Kind::Err,
            Kind::Cancel,
            Kind::Ok,
            Kind::Fail,
            Kind::Ok,
        ],
    );
    a.labels = vec![
        ("user".into(), "bar".into()),
        ("env".into(), "prod ✓".into()),
    ];
    let mut lines = run_kid(kid(), &a);
    let mut crash = kid_args(&journal, ODD_JOB, 1, 12, &[Kind::Crash]);
    crash.labels = vec![("user".into(), "carol".into())];
    lines.extend(run_kid(kid(), &crash));
    lines.extend(run_kid(
        kid(),
        &kid_args(&journal, ODD_JOB, 3, 25, &[Kind::Ok, Kind::Ok, Kind::Err]),
    ));
    // Another job: a panic that stays visible, and records in several chunks.
    let mut p = kid_args(&journal, PLAIN_JOB, 2, 3000, &[Kind::Ok, Kind::Panic]);
    p.size = 120;
    lines.extend(run_kid(kid(), &p));
    let crashed_id = lines
        .iter()
        .find_map(|l| match l {
            KidLine::Crash { id, .. } => Some(id.clone()),
            _ => None,
        })
        .expect("crash line");
    let cancelled: Vec<String> = lines
        .iter()
        .filter_map(|l| match l {
            KidLine::Run { id, status, .. } if status == "cancelled" => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled.len(), 1);

    // A run in progress when the shipper runs.
    let mut holder = Kid::spawn(kid(), &kid_args(&journal, ODD_JOB, 1, 10, &[Kind::Hold]));
    let held = match holder.wait_for(SOON, "the hold line", |l| matches!(l, KidLine::Hold { .. })) {
        KidLine::Hold { id, .. } => id,
        _ => unreachable!(),
    };

    let mut logs: BTreeMap<&str, BTreeMap<String, RunLog>> = BTreeMap::new();
    for job in [ODD_JOB, PLAIN_JOB] {
        logs.insert(job, journal_logs(&journal, job));
    }
    assert_eq!(
        logs[ODD_JOB][&crashed_id].info.status,
        RunStatus::Crashed,
        "the journal reads the aborted run as crashed"
    );
    let mut c = ShipperConfig::new(&journal, &redis.url(), max_ok, max_failed);
    c.prefix = Some(PREFIX.into());
    let cfg = config(t.path(), "shipper.toml", &c);
    let log = t.path().join("shipper.log");
    let out = ship_once_ok(&cfg, &log);

    let check = |logs: &BTreeMap<&str, BTreeMap<String, RunLog>>, held_visible: bool| {
        let mut conn = redis.conn();
        let store: Store = check_consistent(&mut conn, PREFIX)
            .unwrap_or_else(|e| panic!("Redis is inconsistent: {e}\nshipper log:\n{out}"));
        assert_eq!(
            store.jobs.keys().map(String::as_str).collect::<Vec<_>>(),
            vec![ODD_JOB, PLAIN_JOB],
            "{PREFIX}:jobs names both jobs, unescaped"
        );
        for (job, runs) in logs {
            let want = newest(&statuses(runs), max_ok, max_failed);
            let got: BTreeSet<String> = store.ids(job).into_iter().collect();
            assert_eq!(
                got, want,
                "job {job:?}: Redis must hold exactly the newest {max_ok} ok and {max_failed} failed runs"
            );
            for state in store.runs(job) {
                assert_run_matches(job, state, &runs[&state.id]);
            }
            let newest_ms = runs
                .values()
                .map(|l| l.info.start_ns.div_euclid(1_000_000))
                .max()
                .expect("runs");
            assert_eq!(
                store.jobs[*job].0, newest_ms,
                "job {job:?}: its score in {PREFIX}:jobs is the start of its newest uploaded run"
            );
        }
        assert_eq!(store.ids(ODD_JOB).contains(&held), held_visible);
        // Cancelled runs: no key anywhere names them.
        for id in &cancelled {
            assert!(
                scan_keys(&mut conn, &format!("*{id}*")).is_empty(),
                "a cancelled run was uploaded"
            );
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(format!("{}runs", job_base(PREFIX, ODD_JOB)))
                .arg(0)
                .arg(-1)
                .query(&mut conn)
                .expect("ZRANGE");
            assert!(!members.contains(id));
        }
        store
    };
    let store = check(&logs, false);
    assert!(
        scan_keys(&mut redis.conn(), &format!("*{held}*")).is_empty(),
        "a running run was uploaded"
    );
    let crashed = store
        .runs(ODD_JOB)
        .iter()
        .find(|r| r.id == crashed_id)
        .expect("the crashed run is visible");
    assert_eq!(crashed.status(), "crashed");
    assert_eq!(crashed.field("error"), Some("about to crash in run 0"));
    assert_eq!(crashed.field("end"), None);
    assert_eq!(crashed.field("label:user"), Some("carol"));
    let err_run = store
        .runs(ODD_JOB)
        .iter()
        .rfind(|r| r.status() == "failed")
        .expect("a failed run is visible");
    assert_eq!(
        err_run.field("error"),
        Some("run failed: run 2 could not finish its work\ncaused by: disk quota of bar exceeded"),
        "an Err run's summary is its runlog::error record with the source chain"
    );
    let panicked = &store.runs(PLAIN_JOB)[1];
    assert_eq!(panicked.status(), "failed");
    let summary = panicked.field("error").expect("a panic has a summary");
    assert!(
        summary.contains("panicked at") && summary.ends_with("panic in run 1: the input was bad"),
        "a panic's summary is the panic message, not the backtrace: {summary:?}"
    );
    assert!(
        store.runs(PLAIN_JOB)[0].chunks > 1,
        "3000 records of ~200 bytes make several chunks"
    );
    // Local retention after shipping never removes what Redis holds.
    let local: BTreeSet<String> = journal_infos(&journal, ODD_JOB)
        .into_iter()
        .map(|r| r.id)
        .collect();
    for id in store.ids(ODD_JOB) {
        assert!(local.contains(&id), "{id} is in Redis but gone locally");
    }

    // The held run ends: the next ship uploads it (and trims the oldest ok run).
    holder.release();
    let (st, hl) = holder.finish(SOON);
    assert!(st.success(), "{hl:?}");
    let held_log = Journal::open(&journal)
        .unwrap()
        .read_run(ODD_JOB, &held)
        .expect("read the ended run");
    assert_eq!(held_log.info.status, RunStatus::Ok);
    let mut logs2 = logs.clone();
    logs2
        .get_mut(ODD_JOB)
        .expect("job")
        .insert(held.clone(), held_log);
    let out2 = ship_once_ok(&cfg, &log);
    // It said "uploaded 1 runs (3 records, 211 bytes)".
    assert!(out2.contains("uploaded 1 run ("), "{out2}");
    assert!(
        out2.contains(" B)") || out2.contains(" KiB)") || out2.contains(" MiB)"),
        "byte sizes in human units: {out2}"
    );
    check(&logs2, true);
}

// ---------------------------------------------------------------------------------------------
// b
// ---------------------------------------------------------------------------------------------

/// A journal of a few jobs with every kind of run; returns its directory.
fn build_journal(dir: &Path, big_records: u64) -> PathBuf {
    let journal = dir.to_path_buf();
    let mixed = [
        Kind::Ok,
        Kind::Fail,
        Kind::Ok,
        Kind::Err,
        Kind::Cancel,
        Kind::Ok,
    ];
    run_kid(kid(), &kid_args(&journal, "idem/alpha", 12, 40, &mixed));
    run_kid(
        kid(),
        &kid_args(&journal, "idem {beta}", 9, 15, &mixed[1..]),
    );
    let mut big = kid_args(
        &journal,
        "idem gamma ü",
        2,
        big_records,
        &[Kind::Ok, Kind::Fail],
    );
    big.size = 150;
    run_kid(kid(), &big);
    run_kid(
        kid(),
        &kid_args(&journal, "idem gamma ü", 1, 7, &[Kind::Crash]),
    );
    journal
}

/// Uploading again — after the shipper forgot what it shipped, and from a fresh copy of the
/// journal that still holds runs Redis trimmed — leaves every key byte-identical (`DUMP`), adds
/// no key and leaves no stage key.
#[test]
fn upload_is_idempotent_byte_identical() {
    let t = tmp();
    let redis = RedisServer::start();
    let pristine = build_journal(&t.path().join("pristine"), 4000);
    let (max_ok, max_failed) = (3, 2);

    let w1 = t.path().join("w1");
    copy_tree(&pristine, &w1);
    let c1 = config(
        t.path(),
        "w1.toml",
        &ShipperConfig::new(&w1, &redis.url(), max_ok, max_failed),
    );
    let log = t.path().join("shipper.log");
    ship_once_ok(&c1, &log);
    let mut conn = redis.conn();
    let store = check_consistent(&mut conn, PREFIX).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.jobs.len(), 3);
    let dump1 = dump_all(&mut conn, PREFIX);
    let snap1 = snapshot(&mut conn, PREFIX);
    assert!(dump1.len() > 20, "{} keys", dump1.len());

    // 1. The shipper forgets what it shipped: everything still in the journal goes again.
    reset_shipper_state(&w1);
    let out = ship_once_ok(&c1, &log);
    let again: u64 = uploaded_count(&out);
    assert!(again > 0, "the second ship uploaded nothing: {out}");
    let dump2 = dump_all(&mut conn, PREFIX);
    assert_dumps_equal(&dump1, &dump2, "after forgetting .shipped and the state");

    // 2. A fresh copy of the journal (runs Redis trimmed are there again) shipped from another
    //    directory: every run is uploaded once more, and trimmed again in the same step.
    let w2 = t.path().join("w2");
    copy_tree(&pristine, &w2);
    let c2 = config(
        t.path(),
        "w2.toml",
        &ShipperConfig::new(&w2, &redis.url(), max_ok, max_failed),
    );
    let out = ship_once_ok(&c2, &log);
    let total: usize = ["idem/alpha", "idem {beta}", "idem gamma ü"]
        .iter()
        .map(|j| journal_infos(&pristine, j).len())
        .sum();
    assert_eq!(uploaded_count(&out), total as u64, "{out}");
    let dump3 = dump_all(&mut conn, PREFIX);
    assert_dumps_equal(&dump1, &dump3, "after shipping a fresh copy of the journal");
    assert_eq!(snapshot(&mut conn, PREFIX), snap1);
}

fn uploaded_count(log: &str) -> u64 {
    log.lines()
        .filter_map(|l| {
            let rest = l.split("uploaded ").nth(1)?;
            rest.split(' ').next()?.parse::<u64>().ok()
        })
        .sum()
}

fn assert_dumps_equal(a: &BTreeMap<Vec<u8>, Vec<u8>>, b: &BTreeMap<Vec<u8>, Vec<u8>>, when: &str) {
    let ka: BTreeSet<&Vec<u8>> = a.keys().collect();
    let kb: BTreeSet<&Vec<u8>> = b.keys().collect();
    let name = |k: &Vec<u8>| String::from_utf8_lossy(k).into_owned();
    assert_eq!(
        ka.iter().map(|k| name(k)).collect::<Vec<_>>(),
        kb.iter().map(|k| name(k)).collect::<Vec<_>>(),
        "{when}: the keys changed"
    );
    for (k, v) in a {
        assert!(b[k] == *v, "{when}: DUMP of {} changed", name(k));
    }
}

// ---------------------------------------------------------------------------------------------
// c
// ---------------------------------------------------------------------------------------------

fn redis_cli(port: u16, args: &[&str]) -> Vec<u8> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli (install redis-tools)");
    assert!(
        out.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `--raw` output of one value: the value then a newline.
fn raw_value(mut out: Vec<u8>) -> Vec<u8> {
    assert_eq!(
        out.last(),
        Some(&b'\n'),
        "redis-cli --raw ends a value with a newline"
    );
    out.pop();
    out
}

fn raw_lines(out: &[u8]) -> Vec<String> {
    String::from_utf8(out.to_vec())
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The keys are what spec/redis.md says to type into `redis-cli`: the jobs index names the
/// jobs, `runs` under the escaped name lists the runs, `HGET` gives status and chunk index,
/// `--raw LINDEX` gives chunks that decode — with zstd and a parser written from the spec
/// alone — to exactly the journal's records; and every key of a job is in the slot of its
/// hash tag (CRC16 computed here, checked against Redis' own `CLUSTER KEYSLOT`) whatever
/// braces the job name holds.
#[test]
fn redis_cli_reads_the_keys_as_the_spec_says() {
    let t = tmp();
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    let jobs = [
        "a{b}c",
        "{",
        "}",
        "{}",
        "}{",
        "{{x}}",
        "x:y z",
        "naïve 日本 ☃",
        "nightly {eu} report",
    ];
    for job in jobs {
        let (runs, records, size) = if job == "nightly {eu} report" {
            (2, 2500, 200)
        } else {
            (2, 20, 30)
        };
        let mut a = kid_args(&journal, job, runs, records, &[Kind::Ok]);
        a.size = size;
        run_kid(kid(), &a);
    }
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&journal, &redis.url(), 10, 10),
    );
    ship_once_ok(&cfg, &t.path().join("shipper.log"));
    let port = redis.port();

    let listed: BTreeSet<String> = raw_lines(&redis_cli(
        port,
        &["--raw", "ZRANGE", "runlog:jobs", "0", "-1"],
    ))
    .into_iter()
    .collect();
    assert_eq!(listed, jobs.iter().map(|s| (*s).to_owned()).collect());

    let oracle = RedisServer::start_with(&["--cluster-enabled", "yes"]);
    let mut oc = oracle.conn();
    let mut conn = redis.conn();
    let mut multi_chunk = false;
    for job in jobs {
        let j = spec_escape(job);
        assert!(!j.contains(['{', '}', ':']), "{j}");
        let runs_key = format!("runlog:{{{j}}}:runs");
        let ids = raw_lines(&redis_cli(port, &["--raw", "ZRANGE", &runs_key, "0", "-1"]));
        let logs = journal_logs(&journal, job);
        assert_eq!(
            ids,
            logs.keys().cloned().collect::<Vec<_>>(),
            "job {job:?}: ZRANGE {runs_key}"
        );
        for id in &ids {
            let meta = format!("runlog:{{{j}}}:run:{id}");
            let status = raw_value(redis_cli(port, &["--raw", "HGET", &meta, "status"]));
            assert_eq!(status, b"ok");
            let index = String::from_utf8(raw_value(redis_cli(
                port,
                &["--raw", "HGET", &meta, "chunks"],
            )))
            .expect("UTF-8 index");
            let index = spec_parse_index(&index).unwrap_or_else(|e| panic!("{e}"));
            let logk = format!("runlog:{{{j}}}:log:{id}");
            let llen = raw_value(redis_cli(port, &["--raw", "LLEN", &logk]));
            assert_eq!(String::from_utf8(llen).unwrap(), index.len().to_string());
            multi_chunk |= index.len() > 1;
            let mut records = Vec::new();
            for (i, (first, last, n)) in index.iter().enumerate() {
                let chunk = raw_value(redis_cli(port, &["--raw", "LINDEX", &logk, &i.to_string()]));
                let (recs, _) = spec_decode_chunk(&chunk)
                    .unwrap_or_else(|e| panic!("job {job:?} run {id} chunk {i}: {e}"));
                assert_eq!(recs.len() as u64, *n);
                assert_eq!(recs.iter().map(|r| r.ts_ns).min(), Some(*first));
                assert_eq!(recs.iter().map(|r| r.ts_ns).max(), Some(*last));
                records.extend(recs);
            }
            assert_eq!(records, logs[id].records, "job {job:?} run {id}");
        }

        // Slots: every key of the job, and the stage key it would use.
        let tag_slot = key_slot(j.as_bytes());
        let mut keys = scan_keys(&mut conn, &format!("runlog:{{{j}}}:*"));
        assert_eq!(keys.len(), 1 + 2 * ids.len(), "{keys:?}");
        keys.push(format!("runlog:{{{j}}}:stage:{}", ids[0]).into_bytes());
        keys.push(format!("runlog:{{{j}}}:failed").into_bytes());
        for k in &keys {
            let mine = key_slot(k);
            let theirs: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(k)
                .query(&mut oc)
                .expect("CLUSTER KEYSLOT");
            assert_eq!(mine, theirs, "{}", String::from_utf8_lossy(k));
            assert_eq!(
                mine,
                tag_slot,
                "job {job:?}: {} is not in the slot of its hash tag",
                String::from_utf8_lossy(k)
            );
        }
    }
    assert!(multi_chunk, "no run had several chunks");
    // The CRC16 here agrees with Redis on raw names too (without escaping, `{}` would hash
    // the whole key, `}{` and `{{x}}` other parts).
    for k in [
        "foo{}{bar}",
        "{}",
        "}{",
        "{{x}}",
        "a{b}c",
        "runlog:{}{x}:runs",
        "123456789",
    ] {
        let theirs: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(k)
            .query(&mut oc)
            .expect("CLUSTER KEYSLOT");
        assert_eq!(key_slot(k.as_bytes()), theirs, "{k}");
    }
}

// ---------------------------------------------------------------------------------------------
// d
// ---------------------------------------------------------------------------------------------

/// What the concurrent reader saw.
#[derive(Debug, Default)]
struct ReaderStats {
    views: AtomicU64,
    nonempty: AtomicU64,
    partial_sets: AtomicU64,
}

/// SIGKILL the shipper at random points of an upload (≥ 100 in the default run), possibly again
/// while it restarts, then let it finish: Redis is each time identical to a clean ship (every
/// committed run exactly once, trimming exact, no orphan or stage key), and a reader that reads
/// each job atomically all along never sees a partial run, a run that differs from what a
/// clean ship writes, or more runs than the limits.
#[test]
fn sigkill_during_uploads_never_shows_partial_runs() {
    let _heavy = heavy();
    let iters: usize = std::env::var("RUNLOG_SHIPPER_KILL_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KILL_ITERS);
    let seed: u64 = std::env::var("RUNLOG_SHIPPER_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            mix(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64))
        });
    println!("sigkill test: RUNLOG_SHIPPER_KILL_SEED={seed} RUNLOG_SHIPPER_KILL_ITERS={iters}");
    let t = tmp();
    let redis = RedisServer::start();
    let (max_ok, max_failed) = (4, 2);

    // The journal: many small runs, a few big ones of several chunks, every status.
    let pristine = t.path().join("pristine");
    let mixed = [
        Kind::Ok,
        Kind::Fail,
        Kind::Ok,
        Kind::Err,
        Kind::Cancel,
        Kind::Ok,
    ];
    run_kid(kid(), &kid_args(&pristine, "kill/alpha", 14, 300, &mixed));
    run_kid(
        kid(),
        &kid_args(&pristine, "kill {beta}", 10, 60, &mixed[1..]),
    );
    let mut big = kid_args(
        &pristine,
        "kill gamma ü",
        3,
        4000,
        &[Kind::Ok, Kind::Fail, Kind::Ok],
    );
    big.size = 100;
    run_kid(kid(), &big);
    run_kid(
        kid(),
        &kid_args(&pristine, "kill delta", 30, 8, &[Kind::Ok]),
    );
    run_kid(
        kid(),
        &kid_args(&pristine, "kill delta", 1, 5, &[Kind::Crash]),
    );
    let jobs = ["kill/alpha", "kill {beta}", "kill gamma ü", "kill delta"];
    let pristine_files = runlog_e2e::shipper::tree_contents(&pristine);

    let work = t.path().join("work");
    let fresh = |w: &Path| {
        if w.exists() {
            fs::remove_dir_all(w).expect("remove work journal");
        }
        copy_tree(&pristine, w);
    };
    let log = t.path().join("shipper.log");

    // Every run as a ship that trims nothing writes it: what a visible run must equal.
    fresh(&work);
    let full_cfg = config(
        t.path(),
        "full.toml",
        &ShipperConfig::new(&work, &redis.url(), 100_000, 100_000),
    );
    ship_once_ok(&full_cfg, &log);
    let full = snapshot(&mut redis.conn(), PREFIX);
    let full_store = check_store(&full, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    let mut all_runs = 0;
    for job in jobs {
        let logs = journal_logs(&pristine, job);
        assert_eq!(full_store.runs(job).len(), logs.len(), "job {job:?}");
        for s in full_store.runs(job) {
            assert_run_matches(job, s, &logs[&s.id]);
        }
        all_runs += logs.len();
    }

    // The reference: clean ships with the limits (three, timed; all must be equal).
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&work, &redis.url(), max_ok, max_failed),
    );
    let mut times = Vec::new();
    let mut windows = Vec::new();
    let mut reference: Option<Snapshot> = None;
    let mut clean_local: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for _ in 0..3 {
        redis.flushall();
        fresh(&work);
        let start = Instant::now();
        let mut s = Shipper::spawn(&cfg, true, &log);
        let first_write = wait_first_write(&mut redis.conn(), &mut s);
        let st = s
            .wait_timeout(runlog_e2e::shipper::SHIP_TIMEOUT)
            .expect("clean ship ends");
        assert!(st.success(), "clean ship failed ({st}):\n{}", s.log());
        let end = Instant::now();
        times.push(end - start);
        windows.push(end - first_write.expect("a clean ship writes"));
        let snap = without_epoch(snapshot(&mut redis.conn(), PREFIX), PREFIX);
        match &reference {
            None => reference = Some(snap),
            Some(r) => assert!(
                *r == snap,
                "two clean ships differ:\n{}",
                diff(r, &snap, 20)
            ),
        }
        for job in jobs {
            clean_local.insert(
                job.to_owned(),
                journal_infos(&work, job)
                    .into_iter()
                    .map(|r| r.id)
                    .collect(),
            );
        }
    }
    let reference = reference.expect("reference");
    let store = check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
    for job in jobs {
        let logs = journal_logs(&pristine, job);
        let want = newest(&statuses(&logs), max_ok, max_failed);
        assert_eq!(
            store.ids(job).into_iter().collect::<BTreeSet<_>>(),
            want,
            "job {job:?}: a clean ship trims exactly"
        );
    }
    times.sort();
    windows.sort();
    let (clean, window) = (times[1], windows[1]);
    println!(
        "clean ship of {all_runs} runs: {times:?} (median {clean:?}); from its first write to \
         Redis to its exit: {windows:?}"
    );

    // The reader: atomic reads of every job, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(ReaderStats::default());
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let reader = {
        let stop = Arc::clone(&stop);
        let stats = Arc::clone(&stats);
        let failure = Arc::clone(&failure);
        let full = full.clone();
        let reference = reference.clone();
        let mut conn = redis.conn();
        std::thread::spawn(move || {
            let final_ids: BTreeMap<&str, usize> = jobs
                .iter()
                .map(|j| {
                    let key = format!("{}runs", job_base(PREFIX, j)).into_bytes();
                    let n = match reference.get(&key).map(|v| &v.data) {
                        Some(runlog_e2e::redis::Data::ZSet(z)) => z.len(),
                        _ => 0,
                    };
                    (*j, n)
                })
                .collect();
            while !stop.load(Ordering::Relaxed) {
                for job in jobs {
                    let res = read_job_atomically(&mut conn, PREFIX, job).and_then(|v| {
                        check_view(&v, PREFIX, (max_ok, max_failed), Some(&full))?;
                        Ok(v)
                    });
                    match res {
                        Ok(v) => {
                            stats.views.fetch_add(1, Ordering::Relaxed);
                            if !v.runs.is_empty() {
                                stats.nonempty.fetch_add(1, Ordering::Relaxed);
                                if v.runs.len() != final_ids[job] {
                                    stats.partial_sets.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Err(e) => {
                            let mut f = failure.lock().unwrap_or_else(|e| e.into_inner());
                            if f.is_none() {
                                *f = Some(e);
                            }
                            return;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let started = Instant::now();
    let mut finished_before_kill = 0;
    let mut second_kills = 0;
    let mut anchored_on_write = 0;
    for it in 0..iters {
        let mut rng = Rng::new(mix(seed ^ mix(it as u64 + 1)));
        redis.flushall();
        fresh(&work);
        // Half the kills anywhere in the shipper's life (start, reading and compressing the
        // journal, uploading, recording), half in the part that writes: after its first write
        // to Redis, when staging, upload scripts and `.shipped` files are under way.
        let on_write = it % 2 == 1;
        let span = if on_write { window } else { clean };
        let delay = Duration::from_micros(rng.below((span.as_micros() as u64 * 12 / 10).max(1)));
        let mut s = Shipper::spawn(&cfg, true, &log);
        if on_write {
            anchored_on_write += 1;
            wait_first_write(&mut redis.conn(), &mut s);
        }
        std::thread::sleep(delay);
        if s.try_status().is_some() {
            finished_before_kill += 1;
        }
        s.kill();
        if rng.percent(33) {
            second_kills += 1;
            let d2 = Duration::from_micros(rng.below(clean.as_micros().max(1) as u64));
            let mut s2 = Shipper::spawn(&cfg, true, &log);
            std::thread::sleep(d2);
            s2.kill();
        }
        let (st, out) = ship_once(&cfg, &log);
        let ctx = format!(
            "seed {seed} iteration {it} (kill {delay:?} after {}; replay with \
             RUNLOG_SHIPPER_KILL_SEED={seed})",
            if on_write {
                "its first write"
            } else {
                "its start"
            }
        );
        assert!(
            st.success(),
            "{ctx}: the shipper after the kill failed ({st}):\n{out}"
        );
        if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            panic!("{ctx}: the concurrent reader saw: {e}");
        }
        let snap = snapshot(&mut redis.conn(), PREFIX);
        check_store(&snap, PREFIX, false).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let snap = without_epoch(snap, PREFIX);
        assert!(
            snap == reference,
            "{ctx}: Redis differs from a clean ship:\n{}",
            diff(&reference, &snap, 30)
        );
        // Nothing ended is left unshipped, and local retention kept at least what a clean
        // ship keeps.
        for job in jobs {
            let local: BTreeSet<String> = journal_infos(&work, job)
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert!(
                local.is_superset(&clean_local[job]),
                "{ctx}: job {job:?}: local retention deleted runs a clean ship keeps"
            );
            let dir = runlog::journal::layout::job_dir(&work, job);
            let shipped = read_shipped(&dir)
                .expect("read .shipped")
                .expect(".shipped exists");
            for id in &local {
                assert!(
                    shipped.runs.contains(id),
                    "{ctx}: job {job:?}: run {id} is in the journal but not listed as shipped"
                );
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("reader thread");
    if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        panic!("seed {seed}: the concurrent reader saw: {e}");
    }
    assert_eq!(
        runlog_e2e::shipper::tree_contents(&pristine),
        pristine_files,
        "the pristine journal was modified"
    );
    let views = stats.views.load(Ordering::Relaxed);
    let nonempty = stats.nonempty.load(Ordering::Relaxed);
    let partial = stats.partial_sets.load(Ordering::Relaxed);
    println!(
        "{iters} kill points in {:?} ({anchored_on_write} timed from the first write; \
         {finished_before_kill} ships finished before their kill, {second_kills} killed twice); \
         reader: {views} atomic job views, {nonempty} with runs, {partial} while a job held \
         fewer or more runs than at the end",
        started.elapsed()
    );
    assert!(
        nonempty > 0 && partial > 0,
        "the reader never saw an upload in progress ({views} views)"
    );
    assert!(
        finished_before_kill < iters * 3 / 4,
        "{finished_before_kill} of {iters} ships finished before their kill: the kill points \
         are not spread over uploads"
    );
}

// ---------------------------------------------------------------------------------------------
// e
// ---------------------------------------------------------------------------------------------

/// A Redis outage in the middle of a job's runs: every committed run ends up in Redis (also
/// those shipped before the outage, which the restart lost: the epoch makes the shipper upload
/// them again), the job's log calls never wait for the network, and the shipper retries with
/// growing waits instead of spinning.
#[test]
fn redis_outage_loses_nothing_and_never_slows_jobs() {
    let _heavy = heavy();
    let t = tmp();
    let journal = t.path().join("journal");
    let mut redis = RedisServer::start();
    let job = "outage job";
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&journal, &redis.url(), 1000, 1000),
    );
    let mut shipper = Shipper::spawn(&cfg, false, &t.path().join("shipper.log"));
    wait_started(&shipper);

    let runs = 60;
    let mut args = kid_args(
        &journal,
        job,
        runs,
        200,
        &[Kind::Ok, Kind::Ok, Kind::Ok, Kind::Fail],
    );
    args.delay_ms = 50;
    args.latency = true;
    args.fsync = "commit".into();
    let mut k = Kid::spawn(kid(), &args);
    for _ in 0..15 {
        k.wait_for(SOON, "a run", |l| matches!(l, KidLine::Run { .. }));
    }
    poll(SOON, "a run in Redis before the outage", |last| {
        let n = redis_ids(&redis, job).len();
        *last = format!("{n} runs");
        (n > 0).then_some(())
    });
    let shipped_before = redis_ids(&redis, job);
    let before_outage = shipper.log().len();
    redis.stop();
    let outage = Instant::now();
    // The outage lasts ~3 s (a scenario, not a condition: everything below polls).
    std::thread::sleep(Duration::from_secs(3));
    let log_at_restart = shipper.log().len();
    redis.restart();
    println!("Redis was down for {:?}", outage.elapsed());

    let (st, lines) = k.finish(Duration::from_secs(120));
    assert!(st.success(), "{lines:?}");
    let committed = kid_runs(&lines);
    assert_eq!(committed.len(), runs as usize);
    let want: BTreeSet<String> = committed.iter().map(|(id, _)| id.clone()).collect();
    assert!(want.is_superset(&shipped_before));
    poll(
        Duration::from_secs(90),
        "every committed run in Redis",
        |last| {
            let got = redis_ids(&redis, job);
            *last = format!(
                "{} of {} runs; shipper log tail: {}",
                got.len(),
                want.len(),
                tail(&shipper.log(), 5)
            );
            (got == want).then_some(())
        },
    );
    let store = check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
    let logs = journal_logs(&journal, job);
    for s in store.runs(job) {
        assert_run_matches(job, s, &logs[&s.id]);
    }

    let text = shipper.log();
    let during = &text[before_outage..log_at_restart];
    let retries = during.lines().filter(|l| l.contains("retry")).count();
    let total_retries = text.lines().filter(|l| l.contains("retry")).count();
    println!(
        "shipper retry lines: {retries} during the outage, {total_retries} in all:\n{}",
        text.lines()
            .filter(|l| l.contains("retry") || l.contains("epoch") || l.contains("again"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        retries >= 1,
        "the shipper did not notice the outage:\n{text}"
    );
    assert!(
        total_retries < 50,
        "the shipper spins: {total_retries} retry lines for a ~3 s outage"
    );
    let lat = k.latency("log").expect("latency line");
    let run_lat = k.latency("run").expect("latency line");
    println!(
        "jobkid log calls during the outage test: n={} p50={}µs p99={}µs max={}µs; run start/end: \
         p50={}µs p99={}µs max={}µs",
        lat.n,
        lat.p50_ns / 1000,
        lat.p99_ns / 1000,
        lat.max_ns / 1000,
        run_lat.p50_ns / 1000,
        run_lat.p99_ns / 1000,
        run_lat.max_ns / 1000
    );
    assert_eq!(lat.n, runs * 200);
    // Not a speed goal: a bound far above any log call that does not wait on the network
    // (and below the shipper's 1 s connect timeout).
    assert!(
        lat.max_ns < 200_000_000,
        "a log call took {} ms: the job waited for something",
        lat.max_ns / 1_000_000
    );
    shipper.signal("TERM");
    let st = shipper.wait_timeout(SOON).expect("exit after SIGTERM");
    assert!(st.success(), "{st}");
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

// ---------------------------------------------------------------------------------------------
// f
// ---------------------------------------------------------------------------------------------

/// Two hosts (two journals, two shippers) run the same job, interleaved, into one Redis: the job
/// ends with exactly its newest `max-logs` ok and `max-failed-logs` failed runs across both, and
/// no key of a trimmed run is left.
#[test]
fn two_shippers_share_a_job_exactly() {
    let t = tmp();
    let redis = RedisServer::start();
    let job = "shared job ✓";
    let (max_ok, max_failed) = (3, 2);
    let mut shippers = Vec::new();
    let mut kids = Vec::new();
    for (n, kinds) in [
        (
            1,
            vec![
                Kind::Ok,
                Kind::Ok,
                Kind::Fail,
                Kind::Ok,
                Kind::Cancel,
                Kind::Err,
            ],
        ),
        (2, vec![Kind::Ok, Kind::Fail, Kind::Ok, Kind::Ok]),
    ] {
        let journal = t.path().join(format!("host{n}"));
        let cfg = config(
            t.path(),
            &format!("host{n}.toml"),
            &ShipperConfig::new(&journal, &redis.url(), max_ok, max_failed),
        );
        let s = Shipper::spawn(&cfg, false, &t.path().join(format!("host{n}.log")));
        wait_started(&s);
        shippers.push(s);
        let mut a = kid_args(&journal, job, 16, 30, &kinds);
        a.delay_ms = 25;
        a.max_logs = max_ok;
        a.max_failed_logs = max_failed;
        a.labels = vec![("host".into(), format!("host{n}"))];
        kids.push(Kid::spawn(kid(), &a));
    }
    let mut all = Vec::new();
    for k in &mut kids {
        let (st, lines) = k.finish(Duration::from_secs(120));
        assert!(st.success(), "{lines:?}");
        all.extend(kid_runs(&lines));
    }
    let records: BTreeMap<String, u64> = kids
        .iter()
        .flat_map(|k| k.runs())
        .map(|(id, _, n, _)| (id, n))
        .collect();
    let statuses: Vec<(String, &str)> = all
        .iter()
        .map(|(id, s)| {
            (
                id.clone(),
                if s == "ok" {
                    "ok"
                } else if s == "failed" {
                    "failed"
                } else {
                    "cancelled"
                },
            )
        })
        .collect();
    let want = newest(&statuses, max_ok, max_failed);
    poll(SOON, "the newest runs of both hosts in Redis", |last| {
        let got = redis_ids(&redis, job);
        *last = format!("{got:?}, want {want:?}");
        (got == want).then_some(())
    });
    let store = check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
    let hosts: BTreeSet<&str> = store
        .runs(job)
        .iter()
        .filter_map(|r| r.field("label:host"))
        .collect();
    assert_eq!(hosts.len(), 2, "the kept runs come from both hosts");
    for r in store.runs(job) {
        assert_eq!(r.records.len() as u64, records[&r.id], "run {}", r.id);
    }
    for mut s in shippers {
        s.signal("TERM");
        let st = s.wait_timeout(SOON).expect("exit after SIGTERM");
        assert!(st.success(), "{st}");
    }
    // Still exact once both are gone.
    assert_eq!(redis_ids(&redis, job), want);
    check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------
// g
// ---------------------------------------------------------------------------------------------

/// SIGTERM (and SIGINT) stop the daemon with exit status 0 within seconds — while idle and
/// while it waits for an unreachable Redis — and a restarted daemon ships what came meanwhile.
#[test]
fn sigterm_exits_zero_and_resumes() {
    let t = tmp();
    let journal = t.path().join("journal");
    let mut redis = RedisServer::start();
    let job = "term job";
    let a = run_kid(
        kid(),
        &kid_args(&journal, job, 5, 20, &[Kind::Ok, Kind::Fail]),
    );
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&journal, &redis.url(), 100, 100),
    );
    let log = t.path().join("shipper.log");
    let mut s = Shipper::spawn(&cfg, false, &log);
    let first: BTreeSet<String> = kid_runs(&a).into_iter().map(|(id, _)| id).collect();
    poll(SOON, "the first runs in Redis", |_| {
        (redis_ids(&redis, job) == first).then_some(())
    });
    let sent = Instant::now();
    s.signal("TERM");
    let st = s
        .wait_timeout(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit within 10 s of SIGTERM:\n{}", s.log()));
    assert_eq!(st.code(), Some(0), "SIGTERM: {st}\n{}", s.log());
    println!("SIGTERM to exit: {:?}", sent.elapsed());

    // Runs made while no shipper runs are shipped by the next one.
    let b = run_kid(kid(), &kid_args(&journal, job, 3, 20, &[Kind::Ok]));
    let mut all = first.clone();
    all.extend(kid_runs(&b).into_iter().map(|(id, _)| id));
    let mut s = Shipper::spawn(&cfg, false, &log);
    poll(SOON, "the new runs in Redis", |_| {
        (redis_ids(&redis, job) == all).then_some(())
    });
    // And runs made while it runs.
    let c = run_kid(kid(), &kid_args(&journal, job, 2, 20, &[Kind::Ok]));
    all.extend(kid_runs(&c).into_iter().map(|(id, _)| id));
    poll(SOON, "runs made while the daemon runs", |_| {
        (redis_ids(&redis, job) == all).then_some(())
    });
    check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
    s.signal("INT");
    let st = s
        .wait_timeout(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit within 10 s of SIGINT:\n{}", s.log()));
    assert_eq!(st.code(), Some(0), "SIGINT: {st}");

    // While Redis is unreachable, in its backoff.
    redis.stop();
    let mut s = Shipper::spawn(&cfg, false, &log);
    poll(SOON, "a retry line", |_| {
        s.log().contains("retry").then_some(())
    });
    s.signal("TERM");
    let st = s.wait_timeout(Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "no exit within 10 s of SIGTERM during a backoff:\n{}",
            s.log()
        )
    });
    assert_eq!(st.code(), Some(0), "SIGTERM in a backoff: {st}");
}

// ---------------------------------------------------------------------------------------------
// h
// ---------------------------------------------------------------------------------------------

/// Bad configurations stop the shipper with a non-zero exit status and a message that names
/// the problem: the unknown key, the missing Redis table, the unreachable host and port, the
/// value out of range, the missing file.
#[test]
fn bad_config_fails_clearly() {
    let t = tmp();
    let journal = t.path().join("journal");
    let closed = runlog_e2e::redis::free_port();
    let base = ShipperConfig::new(&journal, &format!("redis://127.0.0.1:{closed}/0"), 3, 3);
    let log = t.path().join("shipper.log");
    let run = |name: &str, text: &str, once: bool| -> (std::process::ExitStatus, String) {
        let path = t.path().join(name);
        fs::write(&path, text).expect("write config");
        // Measured before the spawn: a bad config fails at once, maybe before a read here.
        let before = fs::read_to_string(&log).map_or(0, |l| l.len());
        let mut s = Shipper::spawn(&path, once, &log);
        let st = s
            .wait_timeout(SOON)
            .unwrap_or_else(|| panic!("{name}: the shipper did not stop:\n{}", s.log()));
        let out = s.log();
        (st, out.get(before..).unwrap_or(&out).to_owned())
    };
    let cases: Vec<(&str, String, bool, Vec<String>)> = vec![
        (
            "unknown-key.toml",
            base.toml().replace(
                "[runlog-shipper]\n",
                "[runlog-shipper]\nrescan-intervall = \"1s\"\n",
            ),
            true,
            vec!["rescan-intervall".into(), "runlog-shipper".into()],
        ),
        (
            "unknown-key-daemon.toml",
            base.toml().replace(
                "[runlog-shipper]\n",
                "[runlog-shipper]\nrescan-intervall = \"1s\"\n",
            ),
            false,
            vec!["rescan-intervall".into()],
        ),
        (
            "no-redis.toml",
            format!(
                "[runlog]\njournal-dir = \"{}\"\n[runlog-shipper]\nrescan-interval = \"1s\"\n",
                journal.display()
            ),
            true,
            vec!["[runlog-redis]".into()],
        ),
        (
            "no-redis-daemon.toml",
            format!("[runlog]\njournal-dir = \"{}\"\n", journal.display()),
            false,
            vec!["[runlog-redis]".into()],
        ),
        (
            "small-budget.toml",
            base.toml()
                .replace("disk-budget = \"1GiB\"", "disk-budget = \"1KiB\""),
            true,
            vec!["disk-budget".into()],
        ),
        (
            "unreachable.toml",
            base.toml(),
            true,
            vec![format!("127.0.0.1:{closed}")],
        ),
    ];
    for (name, text, once, needles) in cases {
        let (st, out) = run(name, &text, once);
        assert!(
            !st.success(),
            "{name}: exit status {st}, want failure; stderr:\n{out}"
        );
        for n in &needles {
            assert!(
                out.contains(n.as_str()),
                "{name}: the message does not name {n:?}:\n{out}"
            );
        }
        if name == "unreachable.toml" {
            assert_eq!(st.code(), Some(1), "--once with Redis unreachable exits 1");
        }
    }
    // A second shipper of the same journal (the first one waits for its Redis).
    let cfg = config(t.path(), "first.toml", &base);
    let first = Shipper::spawn(&cfg, false, &t.path().join("first.log"));
    wait_started(&first);
    let (st, out) = run("second.toml", &base.toml(), true);
    assert!(
        !st.success(),
        "a second shipper of one journal must not run:\n{out}"
    );
    assert!(
        out.contains(&first.pid().to_string()) && out.contains(&journal.display().to_string()),
        "the message names the running shipper's pid and the journal:\n{out}"
    );
    drop(first);
    // A config file that does not exist.
    let missing = t.path().join("nope.toml");
    let mut s = Shipper::spawn(&missing, true, &log);
    let st = s.wait_timeout(SOON).expect("exit");
    assert!(!st.success());
    assert!(
        s.log().contains("nope.toml"),
        "the message names the missing file:\n{}",
        s.log()
    );
}

// ---------------------------------------------------------------------------------------------
// i
// ---------------------------------------------------------------------------------------------

/// With Redis unreachable and more unshipped runs than the disk budget, the shipper deletes the
/// oldest runs until the journal fits, says so loudly (`DISK BUDGET`), and counts them in
/// `<journal>/shipper/state`.
#[test]
fn disk_budget_drops_oldest_unshipped_loudly() {
    let t = tmp();
    let journal = t.path().join("journal");
    let job = "budget job";
    let mut a = kid_args(&journal, job, 12, 1500, &[Kind::Ok, Kind::Ok, Kind::Fail]);
    a.size = 120;
    let lines = run_kid(kid(), &a);
    let all: Vec<String> = kid_runs(&lines).into_iter().map(|(id, _)| id).collect();
    let before = segment_bytes(&journal);
    let budget = 1u64 << 20;
    assert!(before > 2 * budget, "the journal holds {before} bytes");

    let closed = runlog_e2e::redis::free_port();
    let mut c = ShipperConfig::new(&journal, &format!("redis://127.0.0.1:{closed}/0"), 100, 100);
    c.connect_timeout = "200ms".into();
    c.io_timeout = "200ms".into();
    c.disk_budget = "1MiB".into();
    let cfg = config(t.path(), "shipper.toml", &c);
    let mut s = Shipper::spawn(&cfg, false, &t.path().join("shipper.log"));
    let state_path = journal.join("shipper").join("state");
    let dropped = poll(SOON, "the journal within its disk budget", |last| {
        let bytes = segment_bytes(&journal);
        let state = fs::read_to_string(&state_path).unwrap_or_default();
        let log = s.log();
        *last = format!(
            "{bytes} bytes of segments (budget {budget}); state {state:?}; log tail: {}",
            tail(&log, 4)
        );
        let n: u64 = state
            .lines()
            .find_map(|l| l.strip_prefix("dropped-unshipped "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        (bytes <= budget && n > 0 && log.contains("DISK BUDGET")).then_some(n)
    });
    let left: Vec<String> = journal_infos(&journal, job)
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(!left.is_empty(), "the budget fits some runs");
    assert_eq!(
        left,
        all[all.len() - left.len()..].to_vec(),
        "the oldest runs are deleted first"
    );
    assert_eq!(
        dropped as usize,
        all.len() - left.len(),
        "state counts every unshipped run deleted"
    );
    let log = s.log();
    let loud = log.lines().filter(|l| l.contains("DISK BUDGET")).count();
    assert_eq!(
        loud,
        all.len() - left.len(),
        "one loud line per deleted run:\n{log}"
    );
    s.signal("TERM");
    let st = s.wait_timeout(SOON).expect("exit after SIGTERM");
    assert!(st.success(), "{st}");
}

// ---------------------------------------------------------------------------------------------
// j
// ---------------------------------------------------------------------------------------------

/// A Redis that restarts empty gets everything in the journal's retention back: from `--once`,
/// and from a daemon that was idle when it happened. The new epoch is recorded in `.shipped`.
#[test]
fn epoch_change_reuploads() {
    let t = tmp();
    let journal = t.path().join("journal");
    let mut redis = RedisServer::start();
    let mixed = [Kind::Ok, Kind::Fail, Kind::Ok, Kind::Cancel, Kind::Err];
    run_kid(kid(), &kid_args(&journal, "epoch/a", 10, 30, &mixed));
    run_kid(kid(), &kid_args(&journal, "epoch {b}", 6, 30, &mixed));
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&journal, &redis.url(), 3, 2),
    );
    let log = t.path().join("shipper.log");
    ship_once_ok(&cfg, &log);
    let snap1 = snapshot(&mut redis.conn(), PREFIX);
    let store1 = check_store(&snap1, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    let epoch1 = store1.epoch.clone().expect("epoch");
    let dir_a = runlog::journal::layout::job_dir(&journal, "epoch/a");
    assert_eq!(read_shipped(&dir_a).unwrap().unwrap().epoch, epoch1);

    // --once after an empty restart.
    redis.restart();
    let out = ship_once_ok(&cfg, &log);
    assert!(uploaded_count(&out) > 0, "{out}");
    let snap2 = snapshot(&mut redis.conn(), PREFIX);
    let store2 = check_store(&snap2, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    let epoch2 = store2.epoch.clone().expect("epoch");
    assert_ne!(epoch1, epoch2, "a restarted Redis gets a new epoch");
    assert!(
        without_epoch(snap2, PREFIX) == without_epoch(snap1.clone(), PREFIX),
        "after the restart, Redis holds what it held before"
    );
    assert_eq!(read_shipped(&dir_a).unwrap().unwrap().epoch, epoch2);

    // A daemon, idle, when Redis restarts empty.
    let mut s = Shipper::spawn(&cfg, false, &log);
    wait_started(&s);
    redis.restart();
    let want = without_epoch(snap1, PREFIX);
    poll(SOON, "the idle daemon to upload everything again", |last| {
        let now = without_epoch(snapshot(&mut redis.conn(), PREFIX), PREFIX);
        if now == want {
            return Some(());
        }
        *last = diff(&want, &now, 5);
        None
    });
    check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
    s.signal("TERM");
    let st = s.wait_timeout(SOON).expect("exit after SIGTERM");
    assert!(st.success(), "{st}");
}

// ---------------------------------------------------------------------------------------------
// More: limits per job, foreign schemas and prefixes, runs bigger than a pipeline, the checks
// ---------------------------------------------------------------------------------------------

/// `[runlog.jobs."<name>"]` limits apply to the job in Redis and in the journal's retention —
/// also for a name so long that its directory name is cut (and cannot be decoded back).
#[test]
fn per_job_limits_apply_in_redis_and_in_the_journal() {
    let t = tmp();
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    let short = "limited";
    let long = format!("{}✓ {{x}}", "a-long-job-name-".repeat(12));
    assert!(
        runlog::journal::layout::encode_job(&long).contains('~'),
        "the long name's directory is cut"
    );
    for job in [short, long.as_str()] {
        run_kid(
            kid(),
            &kid_args(&journal, job, 9, 10, &[Kind::Ok, Kind::Ok, Kind::Fail]),
        );
    }
    let mut c = ShipperConfig::new(&journal, &redis.url(), 2, 2);
    c.extra = format!(
        "\n[runlog.jobs.{}]\nmax-logs = 1\nmax-failed-logs = 1\n\n[runlog.jobs.{}]\nmax-logs = 5\nmax-failed-logs = 3\n",
        runlog_e2e::shipper::toml_str(short),
        runlog_e2e::shipper::toml_str(&long)
    );
    let cfg = config(t.path(), "shipper.toml", &c);
    let before: BTreeMap<String, BTreeMap<String, RunLog>> = [short, long.as_str()]
        .iter()
        .map(|j| ((*j).to_owned(), journal_logs(&journal, j)))
        .collect();
    ship_once_ok(&cfg, &t.path().join("shipper.log"));
    let store = check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
    for (job, (max_ok, max_failed)) in [(short, (1, 1)), (long.as_str(), (5, 3))] {
        let want = newest(&statuses(&before[job]), max_ok, max_failed);
        assert_eq!(
            store.ids(job).into_iter().collect::<BTreeSet<_>>(),
            want,
            "job {job:?}: Redis keeps its own limits ({max_ok}, {max_failed})"
        );
        let local: BTreeSet<String> = journal_infos(&journal, job)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert!(
            local.is_superset(&want),
            "job {job:?}: the journal lost some of its newest {max_ok} ok / {max_failed} failed \
             runs after shipping (its retention must use the job's own limits): kept {local:?}, \
             newest {want:?}"
        );
    }
}

/// A Redis whose `<P>:schema` says another version stops the shipper (`--once` and the daemon)
/// with a message naming the key, and nothing is written under that prefix; another prefix on
/// the same Redis is an independent store.
#[test]
fn foreign_schema_stops_the_shipper_and_prefixes_are_independent() {
    let t = tmp();
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    run_kid(kid(), &kid_args(&journal, "schema job", 3, 10, &[Kind::Ok]));
    let mut conn = redis.conn();
    let _: () = redis::cmd("SET")
        .arg("runlog:schema")
        .arg("2")
        .query(&mut conn)
        .expect("SET");
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&journal, &redis.url(), 5, 5),
    );
    let log = t.path().join("shipper.log");
    let (st, out) = ship_once(&cfg, &log);
    assert!(
        !st.success(),
        "--once must fail on a foreign schema:\n{out}"
    );
    assert!(
        out.contains("runlog:schema"),
        "the message names the key:\n{out}"
    );
    let mut s = Shipper::spawn(&cfg, false, &log);
    let st = s
        .wait_timeout(SOON)
        .unwrap_or_else(|| panic!("the daemon keeps running on a foreign schema:\n{}", s.log()));
    assert!(!st.success());
    let keys = scan_keys(&mut conn, "runlog:*");
    assert_eq!(
        keys,
        vec![b"runlog:schema".to_vec()],
        "nothing written under the prefix"
    );

    // The same journal under another prefix.
    let mut c = ShipperConfig::new(&journal, &redis.url(), 5, 5);
    c.prefix = Some("team:b".into());
    let cfg2 = config(t.path(), "other.toml", &c);
    ship_once_ok(&cfg2, &log);
    let store = check_consistent(&mut conn, "team:b").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.runs("schema job").len(), 3);
    assert_eq!(
        scan_keys(&mut conn, "runlog:*"),
        vec![b"runlog:schema".to_vec()]
    );
    for k in scan_keys(&mut conn, "*") {
        assert!(
            k.starts_with(b"team:b:") || k == b"runlog:schema",
            "{} is outside the prefix",
            String::from_utf8_lossy(&k)
        );
    }
}

/// A run whose chunks do not fit one pipeline (~9 MB compressed): killed at points of its
/// upload, the shipper leaves nothing visible but a stage list that expires (spec/redis.md,
/// *Upload*: "at most a stage list that expires or is replaced by the next attempt"); a reader
/// never sees the run partially; finishing gives exactly a clean ship.
#[test]
fn a_run_larger_than_a_pipeline_is_atomic_and_its_stage_list_always_expires() {
    let _heavy = heavy();
    let t = tmp();
    let redis = RedisServer::start();
    let pristine = t.path().join("pristine");
    let job = "big run";
    noise_run(&pristine, job, 12_000, 1000, Kind::Ok);
    run_kid(kid(), &kid_args(&pristine, job, 2, 5, &[Kind::Fail]));
    let work = t.path().join("work");
    let fresh = || {
        if work.exists() {
            fs::remove_dir_all(&work).expect("remove work journal");
        }
        copy_tree(&pristine, &work);
    };
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&work, &redis.url(), 10, 10),
    );
    let log = t.path().join("shipper.log");
    fresh();
    ship_once_ok(&cfg, &log);
    let full = snapshot(&mut redis.conn(), PREFIX);
    let store = check_store(&full, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    let logs = journal_logs(&pristine, job);
    let big = store
        .runs(job)
        .iter()
        .max_by_key(|r| r.chunks)
        .expect("runs");
    assert_run_matches(job, big, &logs[&big.id]);
    let big_id = big.id.clone();
    let total_chunks = big.chunks;
    let chunk_bytes: usize =
        match full.get(&format!("{}log:{big_id}", job_base(PREFIX, job)).into_bytes()) {
            Some(runlog_e2e::redis::Val {
                data: runlog_e2e::redis::Data::List(l),
                ..
            }) => l.iter().map(Vec::len).sum(),
            _ => 0,
        };
    assert!(
        chunk_bytes > 8 << 20,
        "the big run compresses to {chunk_bytes} bytes: too small to need two pipelines"
    );
    let reference = without_epoch(full.clone(), PREFIX);
    let stage = format!("{}stage:{big_id}", job_base(PREFIX, job));

    let stop = Arc::new(AtomicBool::new(false));
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let reader = {
        let (stop, failure, full) = (Arc::clone(&stop), Arc::clone(&failure), full.clone());
        let mut conn = redis.conn();
        std::thread::spawn(move || {
            let mut views = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = read_job_atomically(&mut conn, PREFIX, job)
                    .and_then(|v| check_view(&v, PREFIX, (10, 10), Some(&full)));
                if let Err(e) = r {
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    return views;
                }
                views += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            views
        })
    };
    let mut leaks = Vec::new();
    let attempts = 6;
    let mut rng = Rng::new(0x5eed);
    for it in 0..attempts {
        redis.flushall();
        fresh();
        let mut conn = redis.conn();
        // Kill once the stage list holds at least `want` chunks (or it was renamed): every
        // other attempt as soon as its first chunks are there.
        let want = if it % 2 == 0 {
            1
        } else {
            1 + rng.below(total_chunks as u64) as usize
        };
        let mut s = Shipper::spawn(&cfg, true, &log);
        let mut seen = 0usize;
        loop {
            let n: usize = redis::cmd("LLEN")
                .arg(&stage)
                .query(&mut conn)
                .expect("LLEN");
            seen = seen.max(n);
            // Kill at once: another round trip would wait behind the shipper's next RPUSH.
            if n >= want {
                break;
            }
            let visible: bool = redis::cmd("EXISTS")
                .arg(format!("{}run:{big_id}", job_base(PREFIX, job)))
                .query(&mut conn)
                .expect("EXISTS");
            if visible || s.try_status().is_some() {
                break;
            }
        }
        s.kill();
        println!("attempt {it}: killed once the stage list held {seen} chunks (aimed at {want})");
        for k in scan_keys(&mut conn, "*:stage:*") {
            let pttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut conn).expect("PTTL");
            // -1: no expiry, a leak. -2: gone since the scan: commands the killed shipper sent
            // just before its death still reach Redis (its final RENAME of this list).
            if pttl == -1 {
                let n: usize = redis::cmd("LLEN").arg(&k).query(&mut conn).expect("LLEN");
                leaks.push(format!(
                    "attempt {it}: killed after the stage list held {seen} of {total_chunks} \
                     chunks: {} is left with {n} chunks and no expiry",
                    String::from_utf8_lossy(&k)
                ));
            }
        }
        ship_once_ok(&cfg, &log);
        let snap = snapshot(&mut redis.conn(), PREFIX);
        check_store(&snap, PREFIX, false).unwrap_or_else(|e| panic!("attempt {it}: {e}"));
        assert!(
            without_epoch(snap.clone(), PREFIX) == reference,
            "attempt {it}: Redis differs from a clean ship:\n{}",
            diff(&reference, &without_epoch(snap, PREFIX), 10)
        );
    }
    stop.store(true, Ordering::Relaxed);
    let views = reader.join().expect("reader");
    if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        panic!("the concurrent reader saw: {e}");
    }
    println!("big run: {total_chunks} chunks, {chunk_bytes} bytes; reader views: {views}");
    assert!(
        leaks.is_empty(),
        "a killed upload left stage lists that never expire (spec/redis.md: a crash leaves at \
         most a stage list that expires or is replaced by the next attempt; the shipper creates \
         it with its expiry in one MULTI/EXEC):\n{}",
        leaks.join("\n")
    );
}

/// The checks above are not vacuous: each kind of damage to a store a shipper wrote is found.
#[test]
fn the_consistency_checks_catch_broken_stores() {
    let t = tmp();
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    let job = "check job";
    let mut a = kid_args(&journal, job, 4, 1500, &[Kind::Ok, Kind::Fail]);
    a.size = 60;
    run_kid(kid(), &a);
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&journal, &redis.url(), 10, 10),
    );
    ship_once_ok(&cfg, &t.path().join("shipper.log"));
    let good = snapshot(&mut redis.conn(), PREFIX);
    let store = check_store(&good, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    let runs = store.runs(job);
    let ok_run = runs.iter().find(|r| r.status() == "ok").expect("ok run");
    assert!(ok_run.chunks > 1, "{} chunks", ok_run.chunks);
    let base = job_base(PREFIX, job);
    let meta = format!("{base}run:{}", ok_run.id).into_bytes();
    let logk = format!("{base}log:{}", ok_run.id).into_bytes();
    let failed = format!("{base}failed").into_bytes();
    use runlog_e2e::redis::{Data, Val};
    let edit = |f: &dyn Fn(&mut Snapshot)| {
        let mut s = good.clone();
        f(&mut s);
        s
    };
    let set_field = |s: &mut Snapshot, field: &str, value: &str| {
        if let Some(Val {
            data: Data::Hash(h),
            ..
        }) = s.get_mut(&meta)
        {
            h.retain(|(k, _)| k != field.as_bytes());
            h.push((field.as_bytes().to_vec(), value.as_bytes().to_vec()));
            h.sort();
        }
    };
    let list = |s: &mut Snapshot, f: &dyn Fn(&mut Vec<Vec<u8>>)| {
        if let Some(Val {
            data: Data::List(l),
            ..
        }) = s.get_mut(&logk)
        {
            f(l);
        }
    };
    let records = ok_run
        .field("records")
        .expect("records")
        .parse::<u64>()
        .unwrap();
    let cases: Vec<(&str, Snapshot, &str)> = vec![
        (
            "metadata missing",
            edit(&|s| {
                s.remove(&meta);
            }),
            "run:<R>",
        ),
        (
            "records off by one",
            edit(&|s| set_field(s, "records", &(records + 1).to_string())),
            "records",
        ),
        (
            "a chunk missing",
            edit(&|s| {
                list(s, &|l| {
                    l.pop();
                })
            }),
            "chunk",
        ),
        (
            "a chunk damaged",
            edit(&|s| {
                list(s, &|l| {
                    let c = &mut l[0];
                    let n = c.len();
                    c[n / 2] ^= 0xff;
                })
            }),
            "chunk",
        ),
        (
            "an unknown field",
            edit(&|s| set_field(s, "colour", "blue")),
            "colour",
        ),
        (
            "an ok run in failed",
            edit(&|s| {
                if let Some(Val {
                    data: Data::ZSet(z),
                    ..
                }) = s.get_mut(&failed)
                {
                    z.push((ok_run.id.as_bytes().to_vec(), ok_run.score.to_string()));
                    z.sort();
                }
            }),
            "failed",
        ),
        (
            "an orphan log",
            edit(&|s| {
                let v = s[&logk].clone();
                s.insert(
                    format!("{base}log:2000-01-01T00:00:00.000000Z-000000000000").into_bytes(),
                    v,
                );
            }),
            "orphan",
        ),
        (
            "a stage leftover",
            edit(&|s| {
                let v = s[&logk].clone();
                s.insert(format!("{base}stage:{}", ok_run.id).into_bytes(), v);
            }),
            "stage",
        ),
        (
            "a log that expires",
            edit(&|s| {
                if let Some(v) = s.get_mut(&logk) {
                    v.expires = true;
                }
            }),
            "log",
        ),
        (
            "no epoch",
            edit(&|s| {
                s.remove(&epoch_key());
            }),
            "epoch",
        ),
    ];
    for (what, snap, needle) in cases {
        match check_store(&snap, PREFIX, true) {
            Ok(_) => panic!("{what}: not detected"),
            Err(e) => assert!(e.contains(needle), "{what}: {e}"),
        }
    }
    // The atomic view: a run visible without its hash, or with other chunks than a clean ship
    // writes, or an orphan key.
    let view = read_job_atomically(&mut redis.conn(), PREFIX, job).expect("view");
    check_view(&view, PREFIX, (10, 10), Some(&good)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        check_view(&view, PREFIX, (1, 10), Some(&good)).is_err(),
        "limits"
    );
    let mut v = view.clone();
    v.runs[0].meta.clear();
    assert!(
        check_view(&v, PREFIX, (10, 10), Some(&good)).is_err(),
        "missing hash"
    );
    let mut v = view.clone();
    let i = v
        .runs
        .iter()
        .position(|r| r.chunks.len() > 1)
        .expect("multi-chunk run");
    v.runs[i].chunks.pop();
    assert!(
        check_view(&v, PREFIX, (10, 10), Some(&good)).is_err(),
        "a chunk missing"
    );
    let mut v = view.clone();
    v.keys
        .push(format!("{base}run:2000-01-01T00:00:00.000000Z-000000000000").into_bytes());
    assert!(
        check_view(&v, PREFIX, (10, 10), Some(&good)).is_err(),
        "orphan"
    );
    let mut v = view;
    v.failed
        .push("2000-01-01T00:00:00.000000Z-000000000000".into());
    assert!(
        check_view(&v, PREFIX, (10, 10), Some(&good)).is_err(),
        "failed ⊄ runs"
    );
}

/// A Redis that hangs (SIGSTOP: it accepts connections but answers nothing) while a job
/// commits runs: the job's log calls never wait, the shipper gives up on the hung commands after
/// its `io-timeout` and retries, SIGTERM still stops it with status 0, and once Redis answers
/// again every run is there exactly once.
#[test]
fn a_hung_redis_times_out_and_loses_nothing() {
    let t = tmp();
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    let job = "hung job";
    let mut c = ShipperConfig::new(&journal, &redis.url(), 1000, 1000);
    c.connect_timeout = "500ms".into();
    c.io_timeout = "1s".into();
    let cfg = config(t.path(), "shipper.toml", &c);
    let log = t.path().join("shipper.log");
    let mut shipper = Shipper::spawn(&cfg, false, &log);
    wait_started(&shipper);
    let first = run_kid(kid(), &kid_args(&journal, job, 3, 20, &[Kind::Ok]));
    let mut want: BTreeSet<String> = kid_runs(&first).into_iter().map(|(id, _)| id).collect();
    poll(SOON, "the first runs in Redis", |_| {
        (redis_ids(&redis, job) == want).then_some(())
    });

    redis.pause();
    let mut a = kid_args(&journal, job, 10, 50, &[Kind::Ok, Kind::Fail]);
    a.delay_ms = 100;
    a.latency = true;
    let during = run_kid(kid(), &a);
    want.extend(kid_runs(&during).into_iter().map(|(id, _)| id));
    poll(SOON, "the shipper to time out on the hung Redis", |_| {
        shipper.log().contains("retry").then_some(())
    });
    redis.resume();
    poll(SOON, "every run in Redis after the hang", |last| {
        let got = redis_ids(&redis, job);
        *last = format!(
            "{} of {}; log tail {}",
            got.len(),
            want.len(),
            tail(&shipper.log(), 3)
        );
        (got == want).then_some(())
    });
    check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
    let lat = KidLine::parse(
        &during
            .iter()
            .find(|l| matches!(l, KidLine::Latency { what, .. } if what == "log"))
            .expect("latency line")
            .line(),
    );
    if let KidLine::Latency { lat, .. } = lat {
        println!(
            "log calls while Redis hung: n={} p50={}µs p99={}µs max={}µs",
            lat.n,
            lat.p50_ns / 1000,
            lat.p99_ns / 1000,
            lat.max_ns / 1000
        );
        assert!(
            lat.max_ns < 200_000_000,
            "a log call took {} ms while Redis hung",
            lat.max_ns / 1_000_000
        );
    }

    // SIGTERM while a command hangs: the shipper stops within its io-timeout and a margin.
    redis.pause();
    run_kid(kid(), &kid_args(&journal, job, 1, 5, &[Kind::Ok]));
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    shipper.signal("TERM");
    let st = shipper.wait_timeout(Duration::from_secs(15));
    redis.resume();
    let st = st.unwrap_or_else(|| {
        panic!(
            "no exit within 15 s of SIGTERM while Redis hung:\n{}",
            shipper.log()
        )
    });
    assert_eq!(st.code(), Some(0), "{st}");
    println!(
        "SIGTERM to exit while Redis hung: {:?}; shipper log tail:\n{}",
        sent.elapsed(),
        tail(&shipper.log(), 8).replace(" | ", "\n")
    );
}

/// `io-timeout` bounds how long the shipper waits for Redis (spec/config.md: "how long to wait
/// for a command's reply"): when Redis hangs after the shipper connected, `--once` gives up
/// within a few timeouts — not one timeout per command of its pipeline.
#[test]
fn a_hung_redis_does_not_block_the_shipper_longer_than_its_io_timeout() {
    let t = tmp();
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    run_kid(kid(), &kid_args(&journal, "hang job", 150, 5, &[Kind::Ok]));
    let mut c = ShipperConfig::new(&journal, &redis.url(), 100, 100);
    c.connect_timeout = "500ms".into();
    c.io_timeout = "1s".into();
    let cfg = config(t.path(), "shipper.toml", &c);
    let mut conn = redis.conn();
    let mut s = Shipper::spawn(&cfg, true, &t.path().join("shipper.log"));
    // Pause Redis once the shipper has set the epoch (SET NX and GET in one pipeline: its last
    // step of connecting), while it reads and compresses the journal, before it uploads.
    let deadline = Instant::now() + SOON;
    loop {
        let epoch: bool = redis::cmd("EXISTS")
            .arg("runlog:epoch")
            .query(&mut conn)
            .expect("EXISTS");
        if epoch {
            break;
        }
        assert!(
            s.try_status().is_none() && Instant::now() < deadline,
            "the shipper did not connect:\n{}",
            s.log()
        );
    }
    redis.pause();
    let paused = Instant::now();
    let st = s.wait_timeout(Duration::from_secs(12));
    let waited = paused.elapsed();
    redis.resume();
    let log = s.log();
    s.kill();
    let st = st.unwrap_or_else(|| {
        panic!(
            "runlog-shipper --once was still waiting for a hung Redis {waited:?} after it hung, \
             with io-timeout = 1s (it waits one io-timeout per command of a pipeline: 150 runs \
             make ~750 commands, ~750 s); log:\n{log}"
        )
    });
    assert!(!st.success(), "a hung Redis is an error for --once:\n{log}");
    println!(
        "--once gave up {waited:?} after Redis hung: {}",
        tail(&log, 1)
    );
    assert!(
        waited < Duration::from_secs(10),
        "--once waited {waited:?} for a hung Redis with io-timeout = 1s"
    );
}

/// Under systemd (`JOURNAL_STREAM` set) every line starts with its syslog priority
/// (sd-daemon(3)), so `journalctl -p err` finds the errors; elsewhere lines carry a timestamp
/// and the level.
#[test]
fn stderr_lines_carry_syslog_priorities_under_journald() {
    let t = tmp();
    let missing = t.path().join("no-such.toml");
    let run = |journald: bool| {
        let mut cmd = Command::new(runlog_e2e::shipper::shipper_bin());
        runlog_e2e::shipper::clean_env(&mut cmd);
        cmd.arg("--once").arg("--config").arg(&missing);
        if journald {
            cmd.env("JOURNAL_STREAM", "8:12345");
        }
        let out = cmd.output().expect("run runlog-shipper");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let j = run(true);
    assert!(
        j.starts_with("<3>") && j.contains("no-such.toml"),
        "under journald an error line starts with <3>:\n{j}"
    );
    let plain = run(false);
    assert!(
        !plain.starts_with('<') && plain.contains(" ERROR: ") && plain.contains("no-such.toml"),
        "{plain}"
    );
}

/// The most resident memory `runlog-shipper --once` may use, whatever the size of the runs it
/// ships (issue 12, item 9).
const SHIPPER_RSS_BOUND: u64 = 64 << 20;

/// Issue 12, item 9: the shipper held a whole run in memory (a run of 2.2 GB of segments
/// peaked at 500 MB resident). A run of barely compressible records, several times larger than
/// the bound, ships whole and exact while the shipper stays within it.
#[test]
fn a_run_many_times_larger_than_the_memory_bound_ships_whole_in_bounded_memory() {
    let _heavy = heavy();
    let t = tmp();
    let redis = RedisServer::start();
    let journal = t.path().join("journal");
    let job = "huge run";
    // 75,000 records of ~4 KB of random text: ~300 MB of segments, compressing to ~3/4.
    let started = Instant::now();
    noise_run(&journal, job, 75_000, 4000, Kind::Fail);
    let segments = segment_bytes(&journal);
    println!(
        "wrote {segments} bytes of segments in {:?}",
        started.elapsed()
    );
    assert!(
        segments >= 4 * SHIPPER_RSS_BOUND,
        "the run has {segments} bytes of segments: not several times the bound"
    );
    let cfg = config(
        t.path(),
        "shipper.toml",
        &ShipperConfig::new(&journal, &redis.url(), 10, 10),
    );
    let log = t.path().join("shipper.log");
    let started = Instant::now();
    let (status, text, peak) =
        runlog_e2e::shipper::ship_once_peak_rss(Path::new(PEAKRSS), &cfg, &log);
    println!(
        "shipped in {:?}, peak RSS {peak} bytes ({} MiB); the shipper said:\n{text}",
        started.elapsed(),
        peak >> 20
    );
    assert!(
        status.success(),
        "runlog-shipper --once failed ({status}):\n{text}"
    );
    let store = check_consistent(&mut redis.conn(), PREFIX).unwrap_or_else(|e| panic!("{e}"));
    let logs = journal_logs(&journal, job);
    assert_eq!(logs.len(), 1);
    let runs = store.runs(job);
    assert_eq!(runs.len(), 1, "one visible run");
    let (id, want) = logs.iter().next().expect("the run");
    assert_eq!(&runs[0].id, id);
    assert_eq!(runs[0].status(), "failed");
    assert_eq!(want.records.len(), 75_001, "the records and the failure");
    assert_run_matches(job, &runs[0], want);
    assert!(
        peak <= SHIPPER_RSS_BOUND,
        "runlog-shipper --once peaked at {peak} bytes ({} MiB) resident shipping a run of \
         {segments} bytes of segments; the bound is {SHIPPER_RSS_BOUND} bytes (64 MiB)",
        peak >> 20
    );
}
