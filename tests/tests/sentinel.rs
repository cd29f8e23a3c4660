//! Redis Sentinel (`[runlog-redis] sentinels`, `sentinel-master`) and
//! `[runlog-shipper] min-replicas-acked`: the shipper daemon follows a failover (the master
//! killed with SIGKILL while jobs commit runs) and in the end the new master holds every run
//! local retention keeps — exactly what one server holds after shipping the same journal; an
//! upload that no replica acknowledged does not count as shipped.

use std::path::Path;
use std::time::{Duration, Instant};

use runlog_e2e::redis::{check_store, diff, snapshot, without_epoch, RedisServer};
use runlog_e2e::sentinel::Sentinels;
use runlog_e2e::shipper::{
    copy_tree, run_kid, ship_once, ship_once_ok, KidArgs, Kind, Shipper, ShipperConfig,
};

const KID: &str = env!("CARGO_BIN_EXE_jobkid");
const PREFIX: &str = "runlog";
const JOBS: [&str; 3] = ["failover a", "failover b", "failover/c"];

/// A primary with two replicas and three Sentinels (quorum 2); the primary is killed with
/// SIGKILL while the shipper daemon (which waits for one replica's acknowledgement) uploads
/// runs that jobs keep committing; the Sentinels promote a replica and make the other one
/// its replica. Afterwards the new master holds exactly what one server holds after shipping
/// the same journal: no committed run was lost, and the shipper noticed the other server.
#[test]
fn a_sentinel_failover_mid_ship_loses_no_committed_run() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    let mut primary = RedisServer::start();
    let of = ["--replicaof", "127.0.0.1", &primary.port().to_string()].map(str::to_owned);
    let of: Vec<&str> = of.iter().map(String::as_str).collect();
    let replicas = [RedisServer::start_with(&of), RedisServer::start_with(&of)];
    let sentinels = Sentinels::start(3, 2, primary.port());
    sentinels.wait_replicas(2);

    let mut cfg = ShipperConfig::new(&j, "", 3, 2);
    cfg.sentinels = sentinels.urls();
    cfg.sentinel_master = Sentinels::MASTER.into();
    cfg.min_replicas_acked = Some(1);
    cfg.rescan = "50ms".into();
    cfg.io_timeout = "2s".into();
    cfg.connect_timeout = "1s".into();
    let cfg = cfg.write(&t.path().join("sentinel.toml"));

    for job in JOBS {
        run_kid(
            Path::new(KID),
            &KidArgs::new(&j, job, 3, 100, &[Kind::Ok, Kind::Fail]),
        );
    }
    let mut shipper = Shipper::spawn(&cfg, false, &t.path().join("shipper.log"));
    // Once the shipper confirmed a pass on the primary (it records the server), jobs keep
    // committing runs and the primary dies among them.
    let confirmed = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(j.join("shipper/state"))
        .is_ok_and(|s| s.contains("redis-server "))
    {
        assert!(
            Instant::now() < confirmed,
            "no pass confirmed:\n{}",
            shipper.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let jobs = {
        let j = j.clone();
        std::thread::spawn(move || {
            for job in JOBS {
                let mut a = KidArgs::new(&j, job, 6, 200, &[Kind::Ok, Kind::Err, Kind::Crash]);
                a.delay_ms = 60;
                run_kid(Path::new(KID), &a);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let old = primary.port();
    primary.stop();
    let new = sentinels.wait_failover(old);
    let master = replicas
        .iter()
        .find(|r| r.port() == new)
        .expect("a replica was promoted");
    jobs.join().unwrap();

    // The reference: the same journal shipped to one fresh server.
    let js = t.path().join("js");
    copy_tree(&j, &js);
    let single = RedisServer::start();
    let sc = ShipperConfig::new(&js, &single.url(), 3, 2).write(&t.path().join("single.toml"));
    ship_once_ok(&sc, &t.path().join("s.log"));
    let reference = without_epoch(snapshot(&mut single.conn(), PREFIX), PREFIX);

    let deadline = Instant::now() + Duration::from_secs(90);
    let raw = loop {
        let raw = snapshot(&mut master.conn(), PREFIX);
        let noticed = shipper.log().contains("Redis is another server now");
        if (noticed && without_epoch(raw.clone(), PREFIX) == reference) || Instant::now() > deadline
        {
            break raw;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = shipper.log();
    shipper.kill();
    check_store(&raw, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    let snap = without_epoch(raw, PREFIX);
    assert!(
        snap == reference,
        "the new master differs from one server that got the same journal:\n{}\nshipper log:\n{log}",
        diff(&reference, &snap, 20)
    );
    assert!(
        log.contains("Redis is another server now"),
        "the shipper did not notice the failover:\n{log}"
    );
    // The CLI finds the new master through the Sentinels and reads what one server shows.
    for args in [
        vec!["list-jobs"],
        vec!["list-runs", "failover a"],
        vec!["logs", "failover/c", "last"],
        vec!["why", "failover b"],
    ] {
        assert_eq!(
            runlog_e2e::cli::read_redis(&cfg, &args),
            runlog_e2e::cli::read_redis(&sc, &args),
            "runlog {args:?} through the Sentinels"
        );
    }
}

/// `min-replicas-acked = 1` against a server without replicas: the upload is refused as
/// unconfirmed (`WAIT` answers 0), clearly, and no run is recorded as shipped; with 0 the
/// same journal ships.
#[test]
fn an_upload_no_replica_acknowledged_does_not_count_as_shipped() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    run_kid(
        Path::new(KID),
        &KidArgs::new(&j, "lonely", 2, 10, &[Kind::Ok]),
    );
    let server = RedisServer::start();
    let mut cfg = ShipperConfig::new(&j, &server.url(), 3, 2);
    cfg.min_replicas_acked = Some(1);
    cfg.io_timeout = "300ms".into();
    let path = cfg.write(&t.path().join("wait.toml"));
    let (st, log) = ship_once(&path, &t.path().join("wait.log"));
    assert!(
        !st.success(),
        "shipped without a replica's acknowledgement:\n{log}"
    );
    assert!(
        log.contains("only 0 of the 1 replicas wanted") && log.contains("min-replicas-acked"),
        "{log}"
    );
    let shipped =
        runlog::journal::shipped::read_shipped(&runlog::journal::layout::job_dir(&j, "lonely"))
            .unwrap()
            .map(|s| s.runs.len())
            .unwrap_or(0);
    assert_eq!(
        shipped, 0,
        "runs recorded as shipped without acknowledgement"
    );
    cfg.min_replicas_acked = Some(0);
    let path = cfg.write(&t.path().join("nowait.toml"));
    ship_once_ok(&path, &t.path().join("nowait.log"));
}

/// A failover to a replica that missed the last writes, made deterministic: the shipper ships
/// to server A and records the runs as shipped; then it is pointed at server B, which has A's
/// epoch (as a replica would) but none of the runs. The shipper notices the other server
/// (`run_id`), uploads every run of the journal again, and B ends equal to A; pointed back at
/// B once more, it uploads nothing.
#[test]
fn another_server_with_the_same_epoch_gets_every_run_in_the_journal_again() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    for job in JOBS {
        run_kid(
            Path::new(KID),
            &KidArgs::new(&j, job, 5, 50, &[Kind::Ok, Kind::Fail]),
        );
    }
    let a = RedisServer::start();
    let cfg_a = ShipperConfig::new(&j, &a.url(), 3, 2).write(&t.path().join("a.toml"));
    ship_once_ok(&cfg_a, &t.path().join("a.log"));
    let on_a = snapshot(&mut a.conn(), PREFIX);
    let b = empty_replica_of(&a);
    let mut cb = b.conn();
    let cfg_b = ShipperConfig::new(&j, &b.url(), 3, 2).write(&t.path().join("b.toml"));
    let log = ship_once_ok(&cfg_b, &t.path().join("b.log"));
    assert!(log.contains("Redis is another server now"), "{log}");
    let on_b = snapshot(&mut cb, PREFIX);
    check_store(&on_b, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        on_b == on_a,
        "B differs from A:\n{}",
        diff(&on_a, &on_b, 20)
    );
    let again = ship_once_ok(&cfg_b, &t.path().join("b2.log"));
    assert!(
        again.contains("uploaded 0 runs") && !again.contains("another server"),
        "{again}"
    );
}

/// A Sentinel that accepts connections and never answers (a hung host) is the first in the
/// list: each connection asks it with the connect and I/O timeouts, then the next Sentinel,
/// and ships (the shipper asked its Sentinels without timeouts before, and hung for good).
#[test]
fn a_hung_sentinel_costs_a_timeout_not_the_shipper() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    run_kid(
        Path::new(KID),
        &KidArgs::new(&j, "patient", 2, 10, &[Kind::Ok]),
    );
    let master = RedisServer::start();
    let sentinels = Sentinels::start(1, 1, master.port());
    // Accepts (the kernel's backlog) and never reads or answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = ShipperConfig::new(&j, "", 3, 2);
    cfg.sentinels = vec![format!("redis://{}", hung.local_addr().unwrap())];
    cfg.sentinels.extend(sentinels.urls());
    cfg.sentinel_master = Sentinels::MASTER.into();
    cfg.io_timeout = "500ms".into();
    let cfg = cfg.write(&t.path().join("hung.toml"));
    let mut s = Shipper::spawn(&cfg, true, &t.path().join("hung.log"));
    let st = s
        .wait_timeout(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the shipper hangs on a silent Sentinel:\n{}", s.log()));
    assert!(st.success(), "{st}:\n{}", s.log());
    let runs: Vec<String> = redis::cmd("ZRANGE")
        .arg(runlog_e2e::redis::job_base(PREFIX, "patient") + "runs")
        .arg(0)
        .arg(-1)
        .query(&mut master.conn())
        .unwrap();
    assert_eq!(runs.len(), 2, "{}", s.log());
    drop(hung);
}

/// `redis-server <id>` of `<journal>/shipper/state`, if any.
fn recorded_server(journal: &Path) -> Option<String> {
    let state = std::fs::read_to_string(journal.join("shipper").join("state")).ok()?;
    state
        .lines()
        .find_map(|l| l.strip_prefix("redis-server "))
        .map(str::to_owned)
}

/// The server id the shipper records for `s` (`<run_id>:<master_replid>`).
fn server_id_of(s: &RedisServer) -> String {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .arg("replication")
        .query(&mut s.conn())
        .unwrap();
    runlog_shipper::upload::server_id(&info).unwrap()
}

/// Server B: A's schema and epoch keys, nothing else (a replica that missed every upload).
fn empty_replica_of(a: &RedisServer) -> RedisServer {
    let b = RedisServer::start();
    let mut cb = b.conn();
    for key in [format!("{PREFIX}:schema"), format!("{PREFIX}:epoch")] {
        let v: String = redis::cmd("GET").arg(&key).query(&mut a.conn()).unwrap();
        let _: () = redis::cmd("SET").arg(&key).arg(v).query(&mut cb).unwrap();
    }
    b
}

/// The path of segment 0 of each run of `job` in the journal, oldest first.
fn first_segments(journal: &Path, job: &str) -> Vec<std::path::PathBuf> {
    let dir = runlog::journal::layout::job_dir(journal, job);
    runlog::journal::reader::list_run_segments(&dir)
        .unwrap()
        .into_values()
        .map(|segs| segs[0].1.clone())
        .collect()
}

/// Bug (issue 12, item 3): after a failover, the pass that uploads every run again recorded
/// the new server as confirmed although it skipped a run — here a crashed run whose segment 0
/// is locked, as a retention sweep locks it for a moment, so it reads as running. That run was
/// then never uploaded to the new server. Now a pass that skipped a run confirms nothing; the
/// next one, with the lock gone, uploads it and records the server.
#[test]
fn a_pass_that_skipped_a_locked_run_does_not_confirm_the_new_server() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    // Two ok runs, then one that crashes (no end frame: its lock decides its status).
    run_kid(
        Path::new(KID),
        &KidArgs::new(&j, "sweep", 3, 20, &[Kind::Ok, Kind::Ok, Kind::Crash]),
    );
    let a = RedisServer::start();
    let cfg_a = ShipperConfig::new(&j, &a.url(), 10, 10).write(&t.path().join("a.toml"));
    ship_once_ok(&cfg_a, &t.path().join("a.log"));
    assert_eq!(recorded_server(&j), Some(server_id_of(&a)));
    let on_a = snapshot(&mut a.conn(), PREFIX);
    let b = empty_replica_of(&a);
    let cfg_b = ShipperConfig::new(&j, &b.url(), 10, 10).write(&t.path().join("b.toml"));

    let crashed = first_segments(&j, "sweep").pop().unwrap();
    let lock = std::fs::File::open(&crashed).unwrap();
    lock.lock().unwrap();
    let log = ship_once_ok(&cfg_b, &t.path().join("b.log"));
    assert!(log.contains("Redis is another server now"), "{log}");
    assert_eq!(
        recorded_server(&j),
        Some(server_id_of(&a)),
        "the new server was recorded as confirmed after a pass that skipped a run:\n{log}"
    );
    assert!(
        log.contains("not recorded as confirmed") && log.contains("1 run"),
        "{log}"
    );
    drop(lock);

    let log = ship_once_ok(&cfg_b, &t.path().join("b2.log"));
    assert_eq!(recorded_server(&j), Some(server_id_of(&b)), "{log}");
    let on_b = snapshot(&mut b.conn(), PREFIX);
    assert!(
        on_b == on_a,
        "B differs from A:\n{}",
        diff(&on_a, &on_b, 20)
    );
}

/// Passes after another server that find a run unreadable (here segment 0 of an ok run is
/// replaced by a directory: reading it fails, even as root) do not confirm the server; after
/// [`SET_ASIDE_AFTER`] such passes the run is reported and set aside (no longer counted as
/// uploaded, so it is tried again as a run not shipped yet) and the server is recorded: one
/// bad run does not make every later pass upload everything again.
#[test]
fn an_unreadable_run_is_set_aside_after_a_bounded_number_of_passes() {
    /// spec/redis.md, "Failover": the passes a run may be skipped before it is set aside.
    const SET_ASIDE_AFTER: usize = 3;
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    run_kid(
        Path::new(KID),
        &KidArgs::new(&j, "broken", 3, 20, &[Kind::Ok]),
    );
    let a = RedisServer::start();
    let cfg_a = ShipperConfig::new(&j, &a.url(), 10, 10).write(&t.path().join("a.toml"));
    ship_once_ok(&cfg_a, &t.path().join("a.log"));
    let b = empty_replica_of(&a);
    let cfg_b = ShipperConfig::new(&j, &b.url(), 10, 10).write(&t.path().join("b.toml"));
    let bad = first_segments(&j, "broken").remove(1);
    std::fs::remove_file(&bad).unwrap();
    std::fs::create_dir(&bad).unwrap();
    let bad_id = bad.file_name().unwrap().to_string_lossy()[..40].to_owned();

    for pass in 1..SET_ASIDE_AFTER {
        let log = ship_once_ok(&cfg_b, &t.path().join(format!("b{pass}.log")));
        assert_eq!(
            recorded_server(&j),
            Some(server_id_of(&a)),
            "pass {pass} confirmed the new server although run {bad_id} could not be read:\n{log}"
        );
        assert!(
            log.contains(&bad_id) && log.contains("cannot be read"),
            "{log}"
        );
    }
    let log = ship_once_ok(&cfg_b, &t.path().join("last.log"));
    assert!(
        log.contains(&bad_id) && log.contains("set aside"),
        "pass {SET_ASIDE_AFTER} did not set the run aside:\n{log}"
    );
    assert_eq!(recorded_server(&j), Some(server_id_of(&b)), "{log}");
    let shipped =
        runlog::journal::shipped::read_shipped(&runlog::journal::layout::job_dir(&j, "broken"))
            .unwrap()
            .unwrap();
    assert!(
        !shipped.runs.contains(&bad_id) && shipped.runs.len() == 2,
        "{shipped:?}"
    );
    // The other runs are on B; later passes do not upload everything again.
    let runs: Vec<String> = redis::cmd("ZRANGE")
        .arg(runlog_e2e::redis::job_base(PREFIX, "broken") + "runs")
        .arg(0)
        .arg(-1)
        .query(&mut b.conn())
        .unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let again = ship_once_ok(&cfg_b, &t.path().join("again.log"));
    assert!(
        again.contains("uploaded 0 runs") && !again.contains("another server"),
        "{again}"
    );
}
