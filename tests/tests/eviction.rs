//! Redis that evicts keys (`maxmemory` with an eviction policy, spec/redis.md, "Redis
//! configuration"): the shipper refuses a server that may evict any key unless
//! `[runlog-shipper] allow-eviction` says otherwise; readers that find a run listed in a job's
//! `runs` index without its hash or chunks say it is missing (evicted or deleted) and read the
//! local journal's copy when there is one; the shipper uploads such runs again from the
//! journal, and never a run that was trimmed.
//!
//! Needs `redis-server` (each test starts its own, never the one on port 6379) and the
//! binaries built (`cargo build --workspace`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runlog_e2e::cli::{output, runlog_cmd, Out};
use runlog_e2e::redis::{diff, job_base, scan_keys, snapshot, RedisServer};
use runlog_e2e::shipper::{
    run_kid, ship_once, ship_once_ok, KidArgs, Kind, Shipper, ShipperConfig,
};

const KID: &str = env!("CARGO_BIN_EXE_jobkid");
const PREFIX: &str = "runlog";
const MISSING: &str = "missing from Redis (evicted or deleted)";

/// `runlog --config CONFIG ARGS...`.
fn runlog(config: &Path, args: &[&str]) -> Out {
    output(runlog_cmd().arg("--config").arg(config).args(args))
}

/// The ids of the runs of `job` in the journal, oldest first.
fn journal_ids(journal: &Path, job: &str) -> Vec<String> {
    runlog::Journal::open(journal)
        .unwrap()
        .runs(job)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Delete the segment files of one run from the journal (as local retention does).
fn remove_from_journal(journal: &Path, job: &str, id: &str) {
    let dir = runlog::journal::layout::job_dir(journal, job);
    let segs = runlog::journal::reader::list_run_segments(&dir).unwrap();
    for (_, p) in &segs[id] {
        fs::remove_file(p).unwrap();
    }
}

fn del(server: &RedisServer, key: &str) {
    let n: i64 = redis::cmd("DEL")
        .arg(key)
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(n, 1, "{key} was not there");
}

/// A journal with `runs` ok runs of 30 records of `job`, shipped to a server of its own.
fn shipped(t: &Path, job: &str, runs: u64) -> (PathBuf, RedisServer, PathBuf) {
    let j = t.join("journal");
    run_kid(
        Path::new(KID),
        &KidArgs::new(&j, job, runs, 30, &[Kind::Ok]),
    );
    let server = RedisServer::start();
    let cfg = ShipperConfig::new(&j, &server.url(), 10, 10).write(&t.join("c.toml"));
    ship_once_ok(&cfg, &t.join("ship.log"));
    (j, server, cfg)
}

/// Bug (issue 12, item 4): a shipper shipped to a Redis that evicts any key under memory
/// pressure (`allkeys-lru`), which silently loses shipped runs. Now it refuses such a server,
/// naming the fix, before writing anything — `--once` and the daemon exit 1 — unless
/// `allow-eviction = true`; a `volatile-*` policy (only keys with an expiry, runlog's stage
/// lists, are evicted) is accepted.
#[test]
fn a_redis_that_may_evict_any_key_is_refused_unless_allowed() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    run_kid(Path::new(KID), &KidArgs::new(&j, "lru", 2, 10, &[Kind::Ok]));
    let lru =
        RedisServer::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut cfg = ShipperConfig::new(&j, &lru.url(), 10, 10);
    let path = cfg.write(&t.path().join("lru.toml"));
    let (st, log) = ship_once(&path, &t.path().join("once.log"));
    assert_eq!(st.code(), Some(1), "{log}");
    for want in [
        "evicts keys (maxmemory-policy allkeys-lru)",
        "maxmemory-policy noeviction",
        "volatile-lru",
        "allow-eviction = true",
        &format!("Redis at redis://127.0.0.1:{}/0", lru.port()),
    ] {
        assert!(log.contains(want), "{want:?} missing:\n{log}");
    }
    assert!(
        scan_keys(&mut lru.conn(), "*").is_empty(),
        "keys were written to a refused server"
    );
    // The daemon stops too: it is a configuration to fix, not an outage to wait out.
    let mut daemon = Shipper::spawn(&path, false, &t.path().join("daemon.log"));
    let st = daemon
        .wait_timeout(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the daemon keeps running:\n{}", daemon.log()));
    assert_eq!(st.code(), Some(1), "{}", daemon.log());
    assert!(daemon.log().contains("allkeys-lru"), "{}", daemon.log());

    cfg.extra = "allow-eviction = true\n".into();
    let path = cfg.write(&t.path().join("allowed.toml"));
    let log = ship_once_ok(&path, &t.path().join("allowed.log"));
    assert!(
        log.contains("uploaded 2 runs") && log.contains("allkeys-lru"),
        "{log}"
    );

    let volatile =
        RedisServer::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]);
    let path = ShipperConfig::new(&t.path().join("journal2"), &volatile.url(), 10, 10)
        .write(&t.path().join("volatile.toml"));
    run_kid(
        Path::new(KID),
        &KidArgs::new(&t.path().join("journal2"), "lru", 2, 10, &[Kind::Ok]),
    );
    let log = ship_once_ok(&path, &t.path().join("volatile.log"));
    assert!(
        log.contains("uploaded 2 runs") && !log.contains("evict"),
        "{log}"
    );
}

/// Bug (issue 12, item 4): a run still listed in its job's `runs` index whose hash or chunks
/// are gone (evicted, or deleted by hand) was taken for one trimmed meanwhile: silently left
/// out of listings, or "trimmed while being read". Now readers check the index again and say
/// it is missing from Redis; the local journal's copy is shown when it has one.
#[test]
fn a_run_missing_from_redis_but_still_listed_is_reported_and_read_from_the_journal() {
    let t = tempfile::tempdir().unwrap();
    let job = "evicted";
    let (j, server, cfg) = shipped(t.path(), job, 3);
    let ids = journal_ids(&j, job);
    let base = job_base(PREFIX, job);
    // Run 0: its hash is gone; the journal still has it.
    del(&server, &format!("{base}run:{}", ids[0]));
    // Run 1: its chunks are gone, and so is its journal copy.
    del(&server, &format!("{base}log:{}", ids[1]));
    remove_from_journal(&j, job, &ids[1]);

    let o = runlog(&cfg, &["list-runs", job]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains(MISSING) && o.stderr.contains(&ids[0]),
        "{o:?}"
    );
    assert!(o.stderr.contains("local journal"), "{o:?}");
    for id in &ids {
        assert!(o.stdout.contains(id.as_str()), "{id} not listed: {o:?}");
    }

    let o = runlog(&cfg, &["logs", "--json", job, &ids[0]]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stderr.contains(MISSING), "{o:?}");
    assert_eq!(o.stdout.lines().count(), 30, "{o:?}");

    let o = runlog(&cfg, &["logs", "--json", job, &ids[1]]);
    assert_ne!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains(MISSING) && !o.stderr.contains("trimmed"),
        "{o:?}"
    );
    assert_eq!(o.stdout, "", "records shown of a run without its chunks");

    // With only Redis to read, run 0 is left out of the listing, and said to be missing.
    let o = runlog(&cfg, &["--source", "redis", "list-runs", job]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains(MISSING) && !o.stdout.contains(&ids[0]),
        "{o:?}"
    );

    // The newest run's hash gone too, and no local copy: list-jobs counts the runs list-runs
    // shows (spec/redis.md, Keys: only runs whose hash reads), and the status of the newest of
    // them, rather than a made-up one.
    del(&server, &format!("{base}run:{}", ids[2]));
    remove_from_journal(&j, job, &ids[2]);
    let o = runlog(&cfg, &["list-jobs", "--json"]);
    assert_eq!(o.code, 0, "{o:?}");
    let listed = runlog(&cfg, &["--json", "list-runs", job]);
    assert_eq!(listed.stdout.lines().count(), 2, "{listed:?}");
    let line = o
        .stdout
        .lines()
        .find(|l| l.contains(job))
        .unwrap_or_default();
    assert!(
        line.contains("\"runs\":2") && line.contains("\"last_status\":\"ok\""),
        "{o:?}"
    );
}

/// Bug (issue 12, item 4): nothing ever repaired a shipped run whose hash or chunks Redis
/// evicted, because `.shipped` says it is there. Now the shipper checks the runs it shipped
/// (a bounded batch per rescan interval; `--once` checks all) and uploads those still listed
/// in `runs` but incomplete again from the journal. A run trimmed by retention (no longer in
/// `runs`) is never uploaded again.
#[test]
fn a_shipped_run_evicted_from_redis_is_uploaded_again_but_a_trimmed_one_never() {
    let t = tempfile::tempdir().unwrap();
    let job = "repaired";
    let (j, server, cfg) = shipped(t.path(), job, 4);
    let ids = journal_ids(&j, job);
    let base = job_base(PREFIX, job);
    let mut conn = server.conn();
    // Run 3 trimmed, as the upload script trims: out of the index, its keys deleted.
    let _: () = redis::pipe()
        .cmd("ZREM")
        .arg(format!("{base}runs"))
        .arg(&ids[3])
        .cmd("DEL")
        .arg(format!("{base}run:{}", ids[3]))
        .arg(format!("{base}log:{}", ids[3]))
        .query(&mut conn)
        .unwrap();
    let whole = snapshot(&mut conn, PREFIX);
    // Run 0 lost its hash, run 1 its chunks, run 2 one of them (a list evicted and written
    // again by a stray RPUSH would look so).
    del(&server, &format!("{base}run:{}", ids[0]));
    del(&server, &format!("{base}log:{}", ids[1]));
    let _: () = redis::cmd("RPOP")
        .arg(format!("{base}log:{}", ids[2]))
        .query(&mut conn)
        .unwrap();
    let log = ship_once_ok(&cfg, &t.path().join("repair.log"));
    for id in &ids[..3] {
        assert!(
            log.contains(id) && log.contains("uploading it again"),
            "run {id} not repaired:\n{log}"
        );
    }
    let now = snapshot(&mut conn, PREFIX);
    assert!(now == whole, "not repaired:\n{}", diff(&whole, &now, 20));
    assert!(
        !log.contains(&ids[3]),
        "the trimmed run was touched:\n{log}"
    );

    // The daemon repairs at its rescan rate too.
    del(&server, &format!("{base}run:{}", ids[1]));
    let mut daemon = Shipper::spawn(&cfg, false, &t.path().join("daemon.log"));
    runlog_e2e::shipper::poll(Duration::from_secs(30), "the daemon's repair", |last| {
        let now = snapshot(&mut conn, PREFIX);
        *last = diff(&whole, &now, 5);
        (now == whole).then_some(())
    });
    daemon.signal("TERM");
    assert!(daemon.wait_timeout(Duration::from_secs(30)).is_some());
    assert!(!daemon.log().contains(&ids[3]), "{}", daemon.log());
}
