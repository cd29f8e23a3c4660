//! The torture suite's process scenarios (issue 5): real processes killed with SIGKILL at
//! random points (jobs and the shipper), Redis killed and restarted empty in the middle of a
//! ship, many processes and threads writing runs of the same jobs while the shipper uploads
//! them, and segments truncated under a reader by another process.
//!
//! Each scenario prints one line through [`runlog_e2e::torture::conclude`] (iterations, failures
//! found, records lost) before it asserts; `RUNLOG_TORTURE=long` runs the larger counts and
//! `RUNLOG_TORTURE_SEED` replays a random one. Tests that need Redis start their own
//! `redis-server` on a free loopback port (never the one on 6379).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use runlog::journal::shipped::read_shipped;
use runlog::{Journal, RunInfo};
use runlog_e2e::crash::{mix, Rng};
use runlog_e2e::crash_kills::{kill_iterations, KillOptions};
use runlog_e2e::redis::{
    check_consistent, check_store, diff, job_base, snapshot, without_epoch, RedisServer, Snapshot,
    Store,
};
use runlog_e2e::shipper::{
    copy_tree, poll, run_kid, shipper_bin, wait_first_write, wait_keys, Kid, KidArgs, KidLine,
    Kind, Shipper, ShipperConfig, SHIP_TIMEOUT,
};
use runlog_e2e::torture::{conclude, iterations, seeded_rng};

const CRASHKID: &str = env!("CARGO_BIN_EXE_crashkid");
const JOBKID: &str = env!("CARGO_BIN_EXE_jobkid");
const PROCKID: &str = env!("CARGO_BIN_EXE_prockid");

// Shared with `prockid` through the file (`tests/src/torture_proc.rs`).
#[allow(dead_code, unreachable_pub)]
use runlog_e2e::torture_proc;

use torture_proc::{job_of, message, who, ProcArgs, JOBS};

// ---------------------------------------------------------------------------------------------
// 1. Writer SIGKILL at random points
// ---------------------------------------------------------------------------------------------

/// A job process (`crashkid`) killed with SIGKILL at ≥ 1,000 random points (while it starts,
/// logs from one or four threads, rolls segments over with large records, or commits, cancels
/// and sweeps many short runs; under every fsync policy): every record whose log call returned
/// is in the journal, nothing partial or foreign is ever decoded, the killed run reads
/// `crashed`, and the next run's recovery cuts the torn tail and leaves no stray file. The
/// checks are those of `crash.rs` (`runlog_e2e::crash_kills`).
#[test]
fn torture_writer_sigkill_at_1000_random_points_loses_no_returned_record() {
    const SCENARIO: &str = "writer SIGKILL at random points";
    let seed = seeded_rng(SCENARIO).next_u64();
    let n = iterations(1_000, 10_000) as usize;
    let sum = kill_iterations(&KillOptions {
        kid: CRASHKID.into(),
        seed,
        iterations: (0..n).collect(),
        keep_going: true,
        parallel: 3,
        replay: format!(
            "RUNLOG_CRASH_SEED={seed} RUNLOG_CRASH_ONLY={{iter}} cargo test -p runlog-e2e \
             --test crash"
        ),
    });
    eprintln!(
        "{SCENARIO}: {} kills in {:.1?}: {}",
        sum.kills, sum.elapsed, sum.stats
    );
    conclude(SCENARIO, n as u64, &sum.failures, sum.records_lost);
    assert_eq!(sum.kills, n, "every iteration must kill its child");
}

// ---------------------------------------------------------------------------------------------
// 2. Shipper SIGKILL at random points
// ---------------------------------------------------------------------------------------------

const PREFIX: &str = "runlog";

/// The scenarios that time kill points against a process's duration, or that load the machine,
/// run one at a time so they do not skew each other.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every listed run of `job` in the journal, oldest first.
fn journal_runs(journal: &Path, job: &str) -> Vec<RunInfo> {
    Journal::open(journal)
        .and_then(|j| j.runs(job))
        .unwrap_or_else(|e| panic!("listing runs of {job:?} in {}: {e}", journal.display()))
}

/// Records of the runs of `reference` that `got` lacks or holds differently.
fn records_missing(reference: &Store, got: &Store) -> u64 {
    let mut lost = 0;
    for (job, (_, runs)) in &reference.jobs {
        let have = got.runs(job);
        for r in runs {
            match have.iter().find(|h| h.id == r.id) {
                Some(h) if h.records == r.records => {}
                Some(h) => {
                    let same = h
                        .records
                        .iter()
                        .zip(&r.records)
                        .take_while(|(a, b)| a == b)
                        .count();
                    lost += (r.records.len() - same) as u64;
                }
                None => lost += r.records.len() as u64,
            }
        }
    }
    lost
}

/// The journal the shipper scenarios ship: small and big runs of several jobs, every status.
fn shipper_journal(dir: &Path) -> Vec<&'static str> {
    let kid = Path::new(JOBKID);
    let mixed = [
        Kind::Ok,
        Kind::Fail,
        Kind::Ok,
        Kind::Err,
        Kind::Cancel,
        Kind::Ok,
    ];
    run_kid(kid, &KidArgs::new(dir, "tp/alpha", 10, 120, &mixed));
    run_kid(kid, &KidArgs::new(dir, "tp {beta} ü", 8, 25, &mixed[1..]));
    // Runs of several chunks.
    let mut big = KidArgs::new(dir, "tp gamma", 1, 1200, &[Kind::Ok]);
    big.size = 100;
    run_kid(kid, &big);
    big.records = 400;
    big.kinds = vec![Kind::Fail];
    run_kid(kid, &big);
    run_kid(kid, &KidArgs::new(dir, "tp delta", 6, 5, &[Kind::Ok]));
    run_kid(kid, &KidArgs::new(dir, "tp delta", 1, 5, &[Kind::Crash]));
    vec!["tp/alpha", "tp {beta} ü", "tp gamma", "tp delta"]
}

/// Where a kill landed, judged from what it left.
#[derive(Debug, Default)]
struct KillPhases {
    /// Nothing written to Redis yet (starting, reading and compressing the journal).
    reading: u64,
    /// Redis partly written (stage lists, some runs visible).
    uploading: u64,
    /// Redis complete, some job's `.shipped` not yet written.
    recording: u64,
    /// The ship had finished before the kill.
    finished: u64,
    /// Kills of the shipper that recovers after the first kill.
    second_kills: u64,
}

/// Has every ended run of every job been recorded in its `.shipped` file?
fn all_recorded(journal: &Path, jobs: &[&str]) -> bool {
    jobs.iter().all(|job| {
        let dir = runlog::journal::layout::job_dir(journal, job);
        let Ok(Some(shipped)) = read_shipped(&dir) else {
            return false;
        };
        journal_runs(journal, job)
            .iter()
            .all(|r| shipped.runs.contains(&r.id))
    })
}

/// `runlog-shipper --config CONFIG --once` from `bin` (resolved and checked fresh once per
/// test, so that a source file touched meanwhile does not stop a long scenario).
fn spawn_shipper(bin: &Path, cfg: &Path, log: &Path) -> Shipper {
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(cfg).arg("--once");
    Shipper::spawn_cmd(cmd, log)
}

/// Run a `--once` shipper to its end: exit status and what it logged.
fn ship_to_end(bin: &Path, cfg: &Path, log: &Path) -> (ExitStatus, String) {
    let before = fs::read_to_string(log).map_or(0, |s| s.len());
    let mut s = spawn_shipper(bin, cfg, log);
    let st = s.wait_timeout(SHIP_TIMEOUT).unwrap_or_else(|| {
        s.kill();
        panic!(
            "runlog-shipper --once did not finish within {SHIP_TIMEOUT:?}:\n{}",
            s.log()
        )
    });
    let text = s.log();
    (st, text.get(before..).unwrap_or_default().to_owned())
}

/// What one kill worker found.
#[derive(Debug, Default)]
struct KillTally {
    phases: KillPhases,
    failures: Vec<String>,
    lost: u64,
}

/// The shipper (`runlog-shipper --once`) killed with SIGKILL at ≥ 500 random points — a third
/// anywhere in its life, a third from its first write to Redis on (staging, upload scripts,
/// `.shipped` files), a third the moment Redis holds a random number of the keys of a whole
/// ship (mid-upload); a third of the time killed again while it recovers — and then run to the
/// end: Redis holds exactly what a clean ship of the same journal writes into a second, fresh
/// `redis-server` (every key and value byte for byte, the random epoch aside), it passes every
/// reader invariant, and every run in the journal is recorded as shipped. The killed shippers
/// send pipelines of 1 KiB (`pipeline-size`), so that an upload takes many round trips and a
/// kill can land between them; the clean ship uses the default 8 MiB (one round trip), so the
/// comparison also shows that the pipeline size changes nothing in Redis.
#[test]
fn torture_shipper_sigkill_at_500_random_points_leaves_redis_equal_to_a_clean_ship() {
    const SCENARIO: &str = "shipper SIGKILL at random points";
    /// Kill workers, each with its own Redis and journal copy.
    const WORKERS: u64 = 2;
    let _heavy = heavy();
    let seed = seeded_rng(SCENARIO).next_u64();
    let n = iterations(500, 5_000);
    let bin = shipper_bin();
    let t = tempfile::tempdir().expect("tempdir");
    let pristine = t.path().join("pristine");
    let jobs = shipper_journal(&pristine);
    let (max_ok, max_failed) = (3, 2);
    let fresh = |w: &Path| {
        if w.exists() {
            fs::remove_dir_all(w).expect("remove work journal");
        }
        copy_tree(&pristine, w);
    };

    // The reference: a clean ship into a fresh redis-server of its own.
    let clean_redis = RedisServer::start();
    let work = t.path().join("clean");
    fresh(&work);
    let clean_cfg = ShipperConfig::new(&work, &clean_redis.url(), max_ok, max_failed)
        .write(&t.path().join("clean.toml"));
    let (st, out) = ship_to_end(&bin, &clean_cfg, &t.path().join("clean.log"));
    assert!(st.success(), "the clean ship failed ({st}):\n{out}");
    let reference = snapshot(&mut clean_redis.conn(), PREFIX);
    let ref_store = check_store(&reference, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    let reference = without_epoch(reference, PREFIX);
    let ref_runs: usize = ref_store.jobs.values().map(|(_, r)| r.len()).sum();
    assert!(
        ref_runs >= 8 && ref_store.jobs.len() == jobs.len(),
        "the reference ship is too small to test anything: {ref_runs} runs"
    );

    let started = Instant::now();
    let tallies: Vec<KillTally> = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (bin, t, jobs, reference, ref_store) =
                    (&bin, t.path(), &jobs, &reference, &ref_store);
                let fresh = &fresh;
                sc.spawn(move || {
                    let work = t.join(format!("work{w}"));
                    let log = t.join(format!("shipper{w}.log"));
                    let redis = RedisServer::start();
                    let mut conn = redis.conn();
                    let mut cfg = ShipperConfig::new(&work, &redis.url(), max_ok, max_failed);
                    cfg.pipeline_size = Some("1KiB".into());
                    let cfg = cfg.write(&t.join(format!("shipper{w}.toml")));
                    // How long a clean ship takes here, in all and from its first write.
                    let (mut spans, mut windows) = (Vec::new(), Vec::new());
                    for _ in 0..3 {
                        redis.flushall();
                        fresh(&work);
                        let start = Instant::now();
                        let mut s = spawn_shipper(bin, &cfg, &log);
                        let first = wait_first_write(&mut conn, &mut s).expect("a ship writes");
                        let st = s.wait_timeout(SHIP_TIMEOUT).expect("a clean ship ends");
                        assert!(st.success(), "a clean ship failed ({st}):\n{}", s.log());
                        spans.push(start.elapsed());
                        windows.push(first.elapsed());
                        let snap = without_epoch(snapshot(&mut conn, PREFIX), PREFIX);
                        assert!(
                            snap == *reference,
                            "a clean ship into another Redis differs from the reference:\n{}",
                            diff(reference, &snap, 20)
                        );
                    }
                    spans.sort();
                    windows.sort();
                    let (span, window) = (spans[1], windows[1]);
                    eprintln!(
                        "{SCENARIO}: worker {w}: a clean ship takes {span:?}, {window:?} of it \
                         from its first write"
                    );
                    let mut tally = KillTally::default();
                    for it in (w..n).step_by(WORKERS as usize) {
                        let mut rng = Rng::new(mix(seed ^ mix(it)));
                        kill_once(
                            it,
                            &mut rng,
                            bin,
                            &cfg,
                            &log,
                            &redis,
                            &mut conn,
                            &work,
                            fresh,
                            (span, window),
                            jobs,
                            (reference, ref_store),
                            &mut tally,
                        );
                    }
                    tally
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|h| h.join().expect("kill worker"))
            .collect()
    });
    let mut phases = KillPhases::default();
    let mut failures = Vec::new();
    let mut lost = 0;
    for t in tallies {
        phases.reading += t.phases.reading;
        phases.uploading += t.phases.uploading;
        phases.recording += t.phases.recording;
        phases.finished += t.phases.finished;
        phases.second_kills += t.phases.second_kills;
        failures.extend(t.failures);
        lost += t.lost;
    }
    eprintln!(
        "{SCENARIO}: {n} kills in {:.1?} ({WORKERS} at a time); where they landed: {phases:?}",
        started.elapsed()
    );
    conclude(SCENARIO, n, &failures, lost);
    // The kill points must be spread over the ship, not all before or after it.
    assert!(
        phases.reading > 0 && phases.uploading > 0 && phases.finished < n * 3 / 4,
        "the kill points missed the ship: {phases:?}"
    );
}

/// One kill point of the shipper scenario: ship, kill, maybe kill the recovering shipper too,
/// ship to the end, compare with the reference.
#[allow(clippy::too_many_arguments)]
fn kill_once(
    it: u64,
    rng: &mut Rng,
    bin: &Path,
    cfg: &Path,
    log: &Path,
    redis: &RedisServer,
    conn: &mut redis::Connection,
    work: &Path,
    fresh: &dyn Fn(&Path),
    (span, window): (Duration, Duration),
    jobs: &[&str],
    (reference, ref_store): (&Snapshot, &Store),
    tally: &mut KillTally,
) {
    redis.flushall();
    fresh(work);
    let random_delay = |rng: &mut Rng, base: Duration| {
        Duration::from_micros(rng.below((base.as_micros() as u64 * 12 / 10).max(1)))
    };
    let mut s = spawn_shipper(bin, cfg, log);
    // A third of the kills anywhere in the shipper's life, a third from its first write to
    // Redis on, a third as soon as Redis holds a random number of the keys a ship writes.
    let when = match it % 3 {
        0 => {
            let delay = random_delay(rng, span);
            std::thread::sleep(delay);
            format!("{delay:?} after its start")
        }
        1 => {
            let delay = random_delay(rng, window);
            wait_first_write(conn, &mut s);
            std::thread::sleep(delay);
            format!("{delay:?} after its first write")
        }
        _ => {
            let keys = 3 + rng.below((reference.len() as u64).saturating_sub(3).max(1));
            wait_keys(conn, &mut s, keys);
            format!("when Redis held {keys} keys")
        }
    };
    let done = s.try_status().is_some();
    s.kill();
    let phases = &mut tally.phases;
    if done {
        phases.finished += 1;
    } else {
        let keys: u64 = redis::cmd("DBSIZE").query(conn).expect("DBSIZE");
        if keys <= 2 {
            phases.reading += 1;
        } else if without_epoch(snapshot(conn, PREFIX), PREFIX) != *reference {
            phases.uploading += 1;
        } else if !all_recorded(work, jobs) {
            phases.recording += 1;
        } else {
            phases.finished += 1;
        }
    }
    if rng.percent(33) {
        phases.second_kills += 1;
        let d2 = Duration::from_micros(rng.below(span.as_micros().max(1) as u64));
        let mut s2 = spawn_shipper(bin, cfg, log);
        std::thread::sleep(d2);
        s2.kill();
    }
    let ctx = format!("iteration {it} (killed {when})");
    let (st, out) = ship_to_end(bin, cfg, log);
    if !st.success() {
        tally.failures.push(format!(
            "{ctx}: the shipper after the kill failed ({st}):\n{out}"
        ));
        return;
    }
    let snap = snapshot(conn, PREFIX);
    // Equal to the reference (whose chunks were all decoded and checked) is enough; only a
    // store that differs is decoded, to count what it lacks.
    let equal = without_epoch(snap.clone(), PREFIX) == *reference;
    match check_store(&snap, PREFIX, !equal) {
        Ok(store) if !equal => tally.lost += records_missing(ref_store, &store),
        Ok(_) => {}
        Err(e) => {
            tally
                .failures
                .push(format!("{ctx}: Redis breaks an invariant: {e}"));
            return;
        }
    }
    if !equal {
        tally.failures.push(format!(
            "{ctx}: Redis differs from a clean ship:\n{}",
            diff(reference, &without_epoch(snap, PREFIX), 20)
        ));
        return;
    }
    if !all_recorded(work, jobs) {
        tally.failures.push(format!(
            "{ctx}: a run in the journal is not recorded in its job's .shipped"
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Redis killed and restarted empty in the middle of a ship
// ---------------------------------------------------------------------------------------------

/// The runs a job must hold in Redis: the newest `max_ok` ok runs and the newest `max_failed`
/// failed or crashed ones, of `runs` (`(id, status)`).
fn newest(runs: &[(String, String)], max_ok: usize, max_failed: usize) -> BTreeSet<String> {
    let mut sorted: Vec<&(String, String)> = runs.iter().collect();
    sorted.sort();
    let pick = |want: &dyn Fn(&str) -> bool, n: usize| {
        let ids: Vec<&String> = sorted
            .iter()
            .filter(|(_, s)| want(s))
            .map(|(id, _)| id)
            .collect();
        ids[ids.len().saturating_sub(n)..]
            .iter()
            .map(|s| (*s).clone())
            .collect::<Vec<_>>()
    };
    let mut out: BTreeSet<String> = pick(&|s| s == "ok", max_ok).into_iter().collect();
    out.extend(pick(&|s| s == "failed" || s == "crashed", max_failed));
    out
}

/// What the journal and Redis say of `jobs`, for a failure message: each run listed with its
/// status and whether `.shipped` records it, and the epochs on both sides.
fn journal_state(journal: &Path, jobs: &[&str], conn: &mut redis::Connection) -> String {
    let epoch: Option<String> = redis::cmd("GET")
        .arg(format!("{PREFIX}:epoch"))
        .query(conn)
        .unwrap_or_default();
    let mut out = format!("Redis epoch {epoch:?}\n");
    for job in jobs {
        let dir = runlog::journal::layout::job_dir(journal, job);
        let shipped = read_shipped(&dir);
        let (sh_epoch, sh_runs) = match &shipped {
            Ok(Some(s)) => (s.epoch.clone(), s.runs.clone()),
            other => (format!("{other:?}"), BTreeSet::new()),
        };
        out.push_str(&format!("{job:?}: .shipped epoch {sh_epoch}\n"));
        let have = redis_ids(conn, job);
        for r in Journal::open(journal)
            .and_then(|j| j.runs(job))
            .unwrap_or_default()
        {
            out.push_str(&format!(
                "  {} {:?} {} records, shipped {}, in Redis {}, problems {:?}\n",
                r.id,
                r.status,
                r.records,
                sh_runs.contains(&r.id),
                have.contains(&r.id),
                r.problems
            ));
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            let mut names: Vec<String> = entries
                .flatten()
                .map(|e| {
                    let len = e.metadata().map_or(0, |m| m.len());
                    format!("{} ({len} B)", e.file_name().to_string_lossy())
                })
                .collect();
            names.sort();
            out.push_str(&format!("  files: {}\n", names.join(", ")));
        }
    }
    out
}

/// What each thread of process `pid` is doing (its state and the kernel function it waits
/// in), for a failure message: an idle shipper and a stuck one look alike in its log.
fn threads_of(pid: u32) -> String {
    let mut out = format!("shipper pid {pid} threads:\n");
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        out.push_str("  (gone)\n");
        return out;
    };
    for t in tasks.flatten() {
        let p = t.path();
        let stat = fs::read_to_string(p.join("stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().and_then(|r| r.split(' ').next());
        let comm = fs::read_to_string(p.join("comm")).unwrap_or_default();
        let wchan = fs::read_to_string(p.join("wchan")).unwrap_or_default();
        out.push_str(&format!(
            "  {} {} state {} wchan {wchan}\n",
            t.file_name().to_string_lossy(),
            comm.trim(),
            state.unwrap_or("?")
        ));
    }
    out
}

/// The ids in Redis of `job`'s runs.
fn redis_ids(conn: &mut redis::Connection, job: &str) -> BTreeSet<String> {
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{}runs", job_base(PREFIX, job)))
        .arg(0)
        .arg(-1)
        .query(conn)
        .unwrap_or_default();
    ids.into_iter().collect()
}

/// Redis is killed with SIGKILL and restarted empty (no persistence) at a random instant while
/// jobs commit runs and the shipper daemon uploads them; after each restart, every run that
/// local retention keeps (the newest `max-logs` ok and `max-failed-logs` failed runs of each
/// job, counting all runs ever made) is in Redis again with all its records: the shipper
/// notices the new epoch and uploads every run of the journal again.
#[test]
fn torture_redis_killed_and_restarted_empty_mid_ship_gets_every_retained_run_again() {
    const SCENARIO: &str = "Redis kill -9 and restart empty mid-ship";
    let _heavy = heavy();
    let mut rng = seeded_rng(SCENARIO);
    let n = iterations(20, 100);
    let t = tempfile::tempdir().expect("tempdir");
    let journal = t.path().join("journal");
    let mut redis = RedisServer::start();
    let (max_ok, max_failed) = (4, 2);
    // Small pipelines: an upload takes many round trips, so that restarts land in them (CI
    // once saw 0 of 20 restarts hit an upload with one pipeline per pass).
    let mut cfg = ShipperConfig::new(&journal, &redis.url(), max_ok, max_failed);
    cfg.pipeline_size = Some("1KiB".into());
    let cfg = cfg.write(&t.path().join("shipper.toml"));
    let log = t.path().join("shipper.log");
    let mut shipper = Shipper::spawn(&cfg, false, &log);
    poll(SHIP_TIMEOUT, "the shipper to start", |last| {
        *last = shipper.log();
        last.contains("shipping journal").then_some(())
    });
    let jobs = ["restart/alpha", "restart {beta}"];
    // Every run the jobs made: (id, status, records), per job.
    let mut made: BTreeMap<&str, Vec<(String, String, u64)>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut lost = 0;
    let mut mid_upload = 0;
    let started = Instant::now();
    for it in 0..n {
        let log_before = fs::read_to_string(&log).map_or(0, |s| s.len());
        let mut kids: Vec<(&str, Kid)> = jobs
            .iter()
            .map(|job| {
                let mut a = KidArgs::new(
                    &journal,
                    job,
                    12,
                    150,
                    &[Kind::Ok, Kind::Ok, Kind::Fail, Kind::Cancel, Kind::Ok],
                );
                a.delay_ms = 3;
                a.size = 60;
                (a.max_logs, a.max_failed_logs) = (max_ok, max_failed);
                (*job, Kid::spawn(Path::new(JOBKID), &a))
            })
            .collect();
        // Wait for the first runs, then kill Redis at a random instant of the ships.
        kids[0]
            .1
            .wait_for(SHIP_TIMEOUT, "a run", |l| matches!(l, KidLine::Run { .. }));
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        redis.restart();
        for (job, kid) in &mut kids {
            let (st, lines) = kid.finish(SHIP_TIMEOUT);
            assert!(st.success(), "the job {job:?} failed ({st})");
            for l in lines {
                if let KidLine::Run {
                    id,
                    status,
                    records,
                    ..
                } = l
                {
                    if status != "cancelled" {
                        made.entry(job).or_default().push((id, status, records));
                    }
                }
            }
        }
        // Every run the jobs keep must come back.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut conn = redis.conn();
        let mut missing: Vec<String> = Vec::new();
        loop {
            missing.clear();
            let mut extra = Vec::new();
            for job in jobs {
                let runs = &made[job];
                let pairs: Vec<(String, String)> = runs
                    .iter()
                    .map(|(i, s, _)| (i.clone(), s.clone()))
                    .collect();
                let want = newest(&pairs, max_ok, max_failed);
                let have = redis_ids(&mut conn, job);
                missing.extend(want.difference(&have).map(|id| format!("{job}: {id}")));
                extra.extend(have.difference(&want).map(|id| format!("{job}: {id}")));
            }
            if missing.is_empty() && extra.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let text = shipper.log();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                failures.push(format!(
                    "restart {it}: after 60 s Redis still lacks {missing:?} and holds {extra:?}; \
                     the shipper's last lines:\n{}\n{}{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                    journal_state(&journal, &jobs, &mut conn),
                    threads_of(shipper.pid())
                ));
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // What is there is whole and consistent, with every record.
        match check_consistent(&mut conn, PREFIX) {
            Ok(store) => {
                for job in jobs {
                    for (id, _, records) in &made[job] {
                        let Some(r) = store.runs(job).iter().find(|r| &r.id == id) else {
                            continue;
                        };
                        if r.records.len() as u64 != *records {
                            failures.push(format!(
                                "restart {it}: {job} {id} has {} records in Redis, the job \
                                 logged {records}",
                                r.records.len()
                            ));
                            lost += records.saturating_sub(r.records.len() as u64);
                        }
                    }
                }
            }
            Err(e) => failures.push(format!("restart {it}: {e}")),
        }
        for m in &missing {
            let (job, id) = m.split_once(": ").expect("job: id");
            lost += made[job]
                .iter()
                .find(|(i, _, _)| i == id)
                .map_or(0, |(_, _, r)| *r);
        }
        let text = fs::read_to_string(&log).unwrap_or_default();
        if text
            .get(log_before..)
            .is_some_and(|s| s.contains("uploading to Redis"))
        {
            mid_upload += 1;
        }
    }
    assert!(
        shipper.try_status().is_none(),
        "the shipper exited:\n{}",
        shipper.log()
    );
    shipper.kill();
    eprintln!(
        "{SCENARIO}: {n} restarts in {:.1?}, {mid_upload} of them broke an upload in flight",
        started.elapsed()
    );
    conclude(SCENARIO, n, &failures, lost);
    assert!(
        mid_upload > 0,
        "no restart hit an upload in flight: the scenario tested nothing mid-ship"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Many processes and threads at once, with the shipper running
// ---------------------------------------------------------------------------------------------

/// A run a `prockid` made: `(proc, thread, run)`, its id and status.
#[derive(Clone, Debug)]
struct Made {
    who: (u64, u64, u64),
    id: String,
    status: String,
}

/// Run `prockid` processes at once; every run each reports.
fn run_prockids(args: &[ProcArgs]) -> Vec<Made> {
    let children: Vec<_> = args
        .iter()
        .map(|a| {
            let mut cmd = Command::new(PROCKID);
            cmd.args(a.to_args())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            runlog_e2e::shipper::clean_env(&mut cmd);
            (a.proc_, cmd.spawn().expect("spawn prockid"))
        })
        .collect();
    let mut made = Vec::new();
    for (p, child) in children {
        let out = child.wait_with_output().expect("wait for prockid");
        // 32 threads end runs faster than the shipper uploads them on a small machine: the
        // run end may say, once, that unshipped runs pile up. Nothing else may be said.
        let err: String = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !(l.starts_with("runlog: job ") && l.contains("not shipped yet")))
            .collect();
        assert!(
            out.status.success() && err.is_empty(),
            "prockid {p} failed ({}): {err}",
            out.status
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let ["run", id, status, t, r] = f.as_slice() else {
                panic!("prockid {p}: bad line {line:?}");
            };
            made.push(Made {
                who: (p, t.parse().expect("thread"), r.parse().expect("run")),
                id: (*id).to_owned(),
                status: (*status).to_owned(),
            });
        }
    }
    made
}

/// Eight processes of four threads each make 50 runs of 5 records (of five jobs) at once while
/// the shipper daemon uploads: every run holds exactly its own records (no record of another
/// run, process or thread), in the journal and in Redis; after the dust settles (everything
/// shipped, one more run of each job to sweep), the journal holds exactly the newest
/// `max-logs` ok and `max-failed-logs` failed runs of each job, and Redis exactly the same runs
/// with the same records.
#[test]
fn torture_eight_processes_of_four_threads_keep_every_run_intact_and_retention_exact() {
    const SCENARIO: &str = "8 processes x 4 threads x 50 runs, shipper running";
    let _heavy = heavy();
    let (procs, threads, runs, records) = if runlog_e2e::torture::long() {
        (8, 4, 500, 5)
    } else {
        (8, 4, 50, 5)
    };
    let (max_ok, max_failed) = (6, 3);
    let t = tempfile::tempdir().expect("tempdir");
    let journal = t.path().join("journal");
    let redis = RedisServer::start();
    let cfg = ShipperConfig::new(&journal, &redis.url(), max_ok, max_failed)
        .write(&t.path().join("shipper.toml"));
    let mut shipper = Shipper::spawn(&cfg, false, &t.path().join("shipper.log"));
    poll(SHIP_TIMEOUT, "the shipper to start", |last| {
        *last = shipper.log();
        last.contains("shipping journal").then_some(())
    });
    let args = |p: u64, threads: u64, runs: u64, fails: bool| ProcArgs {
        journal: journal.clone(),
        proc_: p,
        threads,
        runs,
        records,
        max_logs: max_ok as u64,
        max_failed_logs: max_failed as u64,
        fails,
    };
    let started = Instant::now();
    let all: Vec<ProcArgs> = (0..procs).map(|p| args(p, threads, runs, true)).collect();
    let mut made = run_prockids(&all);
    let load = started.elapsed();
    let mut failures: Vec<String> = Vec::new();
    let want_runs = (procs * threads * runs) as usize;
    if made.len() != want_runs {
        failures.push(format!(
            "the processes reported {} ended runs, not {want_runs}",
            made.len()
        ));
    }
    let want = |made: &[Made], job: &str| {
        let pairs: Vec<(String, String)> = made
            .iter()
            .filter(|m| job_of(m.who.0, m.who.1, m.who.2) == job)
            .map(|m| (m.id.clone(), m.status.clone()))
            .collect();
        newest(&pairs, max_ok, max_failed)
    };
    let settle = |made: &[Made], what: &str| {
        let mut conn = redis.conn();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let behind: Vec<&str> = JOBS
                .iter()
                .copied()
                .filter(|job| {
                    let dir = runlog::journal::layout::job_dir(&journal, job);
                    let shipped = read_shipped(&dir).ok().flatten();
                    redis_ids(&mut conn, job) != want(made, job)
                        || !journal_runs(&journal, job)
                            .iter()
                            .all(|r| shipped.as_ref().is_some_and(|s| s.runs.contains(&r.id)))
                })
                .collect();
            if behind.is_empty() {
                return None;
            }
            if Instant::now() > deadline {
                return Some(format!(
                    "{what}: after 60 s, jobs {behind:?} are not shipped as they should be"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    failures.extend(settle(&made, "after the load"));
    // One more run of each job (a process of one thread), whose end sweeps the job's directory
    // now that everything is shipped.
    let sweep = args(procs, 1, JOBS.len() as u64, false);
    made.extend(run_prockids(&[sweep]));
    failures.extend(settle(&made, "after the sweeping runs"));

    // The journal: exactly the newest runs, each holding exactly its records.
    let j = Journal::open(&journal).expect("open journal");
    let by_id: BTreeMap<&str, &Made> = made.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut conn = redis.conn();
    let store = check_consistent(&mut conn, PREFIX).unwrap_or_else(|e| {
        failures.push(format!("Redis: {e}"));
        Store::default()
    });
    let mut lost = 0;
    let mut checked = 0;
    for job in JOBS {
        let want_ids = want(&made, job);
        let infos = journal_runs(&journal, job);
        let local: BTreeSet<String> = infos.iter().map(|r| r.id.clone()).collect();
        if local != want_ids {
            failures.push(format!(
                "job {job:?}: the journal keeps {local:?}, retention should keep exactly \
                 {want_ids:?}"
            ));
        }
        for id in &want_ids {
            let m = by_id[id.as_str()];
            let (p, th, r) = m.who;
            let expected: Vec<String> = (0..records).map(|s| message(p, th, r, s)).collect();
            let log = match j.read_run(job, id) {
                Ok(l) => l,
                Err(e) => {
                    failures.push(format!("job {job:?} run {id}: {e}"));
                    lost += records;
                    continue;
                }
            };
            checked += 1;
            let got: Vec<&str> = log.records.iter().map(|r| r.message.as_str()).collect();
            let kvs_ok = log
                .records
                .iter()
                .enumerate()
                .all(|(i, rec)| rec.kvs == [("seq".to_owned(), i.to_string())]);
            let who_ok = log
                .info
                .labels
                .iter()
                .any(|(k, v)| k == "who" && *v == who(p, th, r));
            if got != expected
                || !kvs_ok
                || !who_ok
                || log.info.status.as_str() != m.status
                || !log.info.problems.is_empty()
            {
                failures.push(format!(
                    "job {job:?} run {id} of p{p} t{th} r{r}: status {} (want {}), labels {:?}, \
                     problems {:?}, records {got:?}",
                    log.info.status, m.status, log.info.labels, log.info.problems
                ));
                lost += expected
                    .iter()
                    .filter(|e| !got.contains(&e.as_str()))
                    .count() as u64;
            }
            // Redis holds the same run with the same records.
            match store.runs(job).iter().find(|s| &s.id == id) {
                Some(s) if s.records == log.records => {}
                Some(s) => {
                    failures.push(format!(
                        "job {job:?} run {id}: Redis has {} records that differ from the \
                         journal's {}",
                        s.records.len(),
                        log.records.len()
                    ));
                    lost += records.saturating_sub(s.records.len() as u64);
                }
                None => {
                    failures.push(format!("job {job:?} run {id} is not in Redis"));
                    lost += records;
                }
            }
        }
        let in_redis: BTreeSet<String> = store.ids(job).into_iter().collect();
        if in_redis != want_ids {
            failures.push(format!(
                "job {job:?}: Redis holds {in_redis:?}, it should hold exactly {want_ids:?}"
            ));
        }
    }
    assert!(
        shipper.try_status().is_none(),
        "the shipper exited:\n{}",
        shipper.log()
    );
    shipper.kill();
    eprintln!(
        "{SCENARIO}: {} runs made in {load:.1?} ({procs} processes x {threads} threads), \
         {checked} kept runs checked in the journal and Redis, all in {:.1?}",
        made.len(),
        started.elapsed()
    );
    conclude(SCENARIO, made.len() as u64, &failures, lost);
}

// ---------------------------------------------------------------------------------------------
// 5. A segment truncated under a reader
// ---------------------------------------------------------------------------------------------

/// Which reader a truncation iteration runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TruncReader {
    /// `runlog logs --source local JOB last`.
    Logs,
    /// `runlog journal verify DIR`.
    Verify,
    /// `runlog-shipper --once`.
    Shipper,
}

/// A new length for a segment of `len` bytes whose frames start at `frames`: anywhere, at a
/// frame boundary, or inside the header.
fn cut_length(rng: &mut Rng, len: u64, frames: &[u64]) -> u64 {
    match rng.below(4) {
        2 if !frames.is_empty() => frames[rng.below(frames.len() as u64) as usize],
        3 => rng.below(64),
        _ => 64 + rng.below(len.saturating_sub(64).max(1)),
    }
}

/// If `got` is `full` with at most one contiguous stretch left out, the number of items left
/// out and whether they were the end of `full`.
fn one_gap<T: PartialEq>(full: &[T], got: &[T]) -> Option<(usize, bool)> {
    let a = full.iter().zip(got).take_while(|(x, y)| x == y).count();
    let rest = &got[a..];
    let missing = full.len().checked_sub(got.len())?;
    (full[full.len() - rest.len()..] == *rest).then_some((missing, rest.is_empty()))
}

/// Another process (`truncate(1)`) cuts a random segment of a committed run of several
/// segments to a random length (anywhere, at a frame boundary, inside the header) at a random
/// instant while a reader reads it — `runlog logs`, `runlog journal verify` or the shipper:
/// the reader is never killed by a signal (no SIGBUS) and never panics; what `runlog logs`
/// prints is the start of the run's records, and when it is short, the reader says why on
/// stderr unless the cut segment is the run's last (which reads as a crash, by the spec); what
/// the shipper uploads passes every reader invariant and is the start of the run's records,
/// with `problems` set when records are missing before the last segment.
#[test]
fn torture_segment_truncated_under_a_reader_gives_an_error_or_a_clean_prefix_never_a_crash() {
    const SCENARIO: &str = "segment truncated under a reader";
    let _heavy = heavy();
    let mut rng = seeded_rng(SCENARIO);
    let n = iterations(90, 900);
    let t = tempfile::tempdir().expect("tempdir");
    let pristine = t.path().join("pristine");
    let job = "trunc job";
    let mut a = KidArgs::new(&pristine, job, 1, 40_000, &[Kind::Ok]);
    a.size = 60;
    run_kid(Path::new(JOBKID), &a);
    let info = journal_runs(&pristine, job).pop().expect("the run");
    let nseg = info.segments.len();
    assert!(nseg >= 3, "the run should span several segments: {nseg}");
    let runlog = runlog_e2e::cli::runlog_bin();
    let shipper = shipper_bin();
    let logs_cmd = |dir: &Path| {
        let mut c = Command::new(&runlog);
        c.arg("logs")
            .arg("--journal-dir")
            .arg(dir)
            .args(["--source", "local", job, "last"]);
        runlog_e2e::shipper::clean_env(&mut c);
        c
    };
    let full = logs_cmd(&pristine).output().expect("runlog logs");
    assert!(
        full.status.success(),
        "runlog logs of the pristine run failed"
    );
    // Lines without the empty piece after the last newline (else a gap at the end would
    // never count as at the end).
    let full_lines: Vec<&[u8]> = full.stdout.split_inclusive(|&b| b == b'\n').collect();
    let full_records = Journal::open(&pristine)
        .and_then(|j| j.read_run(job, &info.id))
        .expect("read the pristine run")
        .records;
    let redis = RedisServer::start();
    let work = t.path().join("work");
    let cfg = ShipperConfig::new(&work, &redis.url(), 10, 10).write(&t.path().join("s.toml"));
    // How long each reader takes, to spread the cuts over it.
    let time_of = |mut c: Command| {
        let s = Instant::now();
        let _ = c.output();
        s.elapsed()
    };
    copy_tree(&pristine, &work);
    let logs_time = time_of(logs_cmd(&work));
    let mut vc = Command::new(&runlog);
    vc.args(["journal", "verify"]).arg(&work);
    let verify_time = time_of(vc);
    let mut sc = Command::new(&shipper);
    sc.arg("--config").arg(&cfg).arg("--once");
    let ship_time = time_of(sc);

    let mut failures: Vec<String> = Vec::new();
    let mut lost = 0u64;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for it in 0..n {
        let reader =
            [TruncReader::Logs, TruncReader::Verify, TruncReader::Shipper][it as usize % 3];
        fs::remove_dir_all(&work).expect("remove work");
        copy_tree(&pristine, &work);
        redis.flushall();
        let seg_i = rng.below(nseg as u64) as usize;
        let seg = work.join(
            info.segments[seg_i]
                .strip_prefix(&pristine)
                .expect("under pristine"),
        );
        let len = fs::metadata(&seg).expect("segment").len();
        let frames: Vec<u64> = runlog::journal::reader::scan_file(&seg)
            .expect("scan")
            .frames
            .iter()
            .map(|f| f.offset)
            .collect();
        let cut = cut_length(&mut rng, len, &frames);
        let (mut cmd, span) = match reader {
            TruncReader::Logs => (logs_cmd(&work), logs_time),
            TruncReader::Verify => {
                let mut c = Command::new(&runlog);
                c.args(["journal", "verify"]).arg(&work);
                runlog_e2e::shipper::clean_env(&mut c);
                (c, verify_time)
            }
            TruncReader::Shipper => {
                let mut c = Command::new(&shipper);
                c.arg("--config").arg(&cfg).arg("--once");
                runlog_e2e::shipper::clean_env(&mut c);
                (c, ship_time)
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the reader");
        let delay = Duration::from_micros(rng.below(span.as_micros() as u64 + 1));
        // Read the child's output meanwhile, so that a full pipe never stalls it.
        let out = std::thread::scope(|s| {
            let h = s.spawn(move || child.wait_with_output());
            std::thread::sleep(delay);
            let st = Command::new("truncate")
                .arg("-s")
                .arg(cut.to_string())
                .arg(&seg)
                .status()
                .expect("run truncate(1)");
            assert!(st.success(), "truncate -s {cut} {} failed", seg.display());
            h.join()
                .expect("reader thread")
                .expect("wait for the reader")
        });
        let ctx = format!(
            "iteration {it}: {reader:?} with segment {seg_i} of {nseg} cut from {len} to {cut} \
             bytes after {delay:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        if let Some(sig) = out.status.signal() {
            failures.push(format!(
                "{ctx}: the reader was killed by signal {sig}: {err}"
            ));
            continue;
        }
        if err.contains("panicked") {
            failures.push(format!("{ctx}: the reader panicked: {err}"));
            continue;
        }
        let last_seg = seg_i + 1 == nseg;
        let outcome = match reader {
            TruncReader::Logs => {
                let lines: Vec<&[u8]> = out.stdout.split_inclusive(|&b| b == b'\n').collect();
                let printed = lines.len();
                // The records before the damage and after the cut segment (spec/journal.md:
                // nothing after the damage in that segment), in order; nothing else.
                let Some((missing, at_end)) = one_gap(&full_lines, &lines) else {
                    failures.push(format!(
                        "{ctx}: runlog logs printed lines that are not the run's records with \
                         at most one stretch left out"
                    ));
                    continue;
                };
                let short = missing > 0;
                if short && err.trim().is_empty() && !(last_seg && at_end) {
                    lost += missing as u64;
                    failures.push(format!(
                        "{ctx}: runlog logs printed {printed} of {} records and said nothing \
                         (exit {})",
                        full_lines.len(),
                        out.status
                    ));
                    continue;
                }
                format!(
                    "logs: {}, exit {}",
                    if short { "short" } else { "whole" },
                    out.status.code().unwrap_or(-1)
                )
            }
            TruncReader::Verify => format!("verify: exit {}", out.status.code().unwrap_or(-1)),
            TruncReader::Shipper => {
                if !out.status.success() {
                    failures.push(format!("{ctx}: the shipper failed ({}): {err}", out.status));
                    continue;
                }
                let store = match check_consistent(&mut redis.conn(), PREFIX) {
                    Ok(s) => s,
                    Err(e) => {
                        failures.push(format!("{ctx}: Redis: {e}"));
                        continue;
                    }
                };
                let Some(r) = store.runs(job).first() else {
                    // The run changed while the shipper read it: a clear error, nothing
                    // uploaded (the next ship reads it again).
                    if err.contains("cannot be read, not uploaded") {
                        *outcomes
                            .entry("shipper: error, not uploaded".into())
                            .or_default() += 1;
                        continue;
                    }
                    // A run cut down to nothing readable (its first segment's header) is not
                    // listed: nothing to upload. Anything else must be uploaded.
                    if seg_i == 0 && cut < 64 + 44 {
                        *outcomes
                            .entry("shipper: nothing readable".into())
                            .or_default() += 1;
                        continue;
                    }
                    failures.push(format!("{ctx}: the run was not uploaded: {err}"));
                    continue;
                };
                let k = r.records.len();
                let Some((missing, at_end)) = one_gap(&full_records, &r.records) else {
                    failures.push(format!(
                        "{ctx}: the uploaded records are not the run's with at most one \
                         stretch left out"
                    ));
                    continue;
                };
                let short = missing > 0;
                if short && !(last_seg && at_end) && r.field("problems").is_none() {
                    lost += missing as u64;
                    failures.push(format!(
                        "{ctx}: {k} of {} records uploaded as {} without `problems`",
                        full_records.len(),
                        r.status()
                    ));
                    continue;
                }
                format!(
                    "shipper: {} {}{}",
                    if short { "short" } else { "whole" },
                    r.status(),
                    if r.field("problems").is_some() {
                        " with problems"
                    } else {
                        ""
                    }
                )
            }
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("{SCENARIO}: outcomes: {outcomes:#?}");
    conclude(SCENARIO, n, &failures, lost);
}
