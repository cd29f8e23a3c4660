//! Redis that evicts keys (`maxmemory` with an eviction policy, spec/redis.md, "Redis
//! configuration"): the shipper refuses a server that may evict any key unless
//! `[runlog-shipper] allow-eviction` says otherwise; readers that find a run listed in a job's
//! `runs` index without its hash or chunks say it is missing (evicted or deleted) and read the
//! local journal's copy when there is one; the shipper uploads such runs again from the
//! journal, and never a run that was trimmed.
//!
//! Needs `redis-server` (each test starts its own, never the one on port 6379) and the
//! binaries built (`cargo build --workspace`).

use std::path::Path;
use std::time::Duration;

use runlog_e2e::redis::{scan_keys, RedisServer};
use runlog_e2e::shipper::{
    run_kid, ship_once, ship_once_ok, KidArgs, Kind, Shipper, ShipperConfig,
};

const KID: &str = env!("CARGO_BIN_EXE_jobkid");

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
