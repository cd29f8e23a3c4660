//! Redis Cluster (`[runlog-redis] cluster`): the shipper and the CLI work on a 3-master
//! cluster of this test's own exactly as on one server — the same keys and values, the same
//! CLI output — with each job's keys in its own slot, and a slot migrated while the shipper
//! writes into it changes nothing in the end.

use std::path::Path;
use std::time::{Duration, Instant};

use runlog_e2e::cli::read_redis as cli;
use runlog_e2e::cluster::RedisCluster;
use runlog_e2e::redis::{
    check_store, diff, job_base, key_slot, without_epoch, Data, RedisServer, Snapshot,
};
use runlog_e2e::shipper::{
    copy_tree, run_kid, ship_once_ok, KidArgs, Kind, Shipper, ShipperConfig,
};

const KID: &str = env!("CARGO_BIN_EXE_jobkid");
const PREFIX: &str = "runlog";

/// Jobs whose names hash to different slots, with runs of every status.
const JOBS: [&str; 6] = [
    "nightly",
    "backup",
    "report/eu",
    "{tagged} job",
    "ünïcode",
    "sync",
];

fn journal(dir: &Path, records: u64) {
    let kinds = [
        Kind::Ok,
        Kind::Fail,
        Kind::Ok,
        Kind::Err,
        Kind::Cancel,
        Kind::Crash,
    ];
    for (i, job) in JOBS.iter().enumerate() {
        let mut a = KidArgs::new(dir, job, 4 + i as u64 % 3, records, &kinds[i % 3..]);
        a.labels = vec![("user".into(), format!("u{i}"))];
        run_kid(Path::new(KID), &a);
    }
}

#[test]
fn the_shipper_and_the_cli_work_on_a_three_master_cluster_as_on_one_server() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    journal(&j, 300);
    // A run big enough to be streamed: its chunks go to the job's node over several
    // pipelines before the upload script makes it visible.
    let mut big = KidArgs::new(&j, "big", 1, 3000, &[Kind::Ok]);
    big.size = 2000;
    big.noise = true;
    run_kid(Path::new(KID), &big);
    let cluster = RedisCluster::start(3);
    let single = RedisServer::start();

    // The same journal shipped (copies: shipping records what was shipped) to each.
    let copy = |name: &str| {
        let d = t.path().join(name);
        copy_tree(&j, &d);
        d
    };
    let (jc, js) = (copy("jc"), copy("js"));
    let mut cc = ShipperConfig::new(&jc, "", 3, 2);
    cc.cluster = cluster.urls();
    let cc = cc.write(&t.path().join("cluster.toml"));
    let sc = ShipperConfig::new(&js, &single.url(), 3, 2).write(&t.path().join("single.toml"));
    ship_once_ok(&cc, &t.path().join("c.log"));
    ship_once_ok(&sc, &t.path().join("s.log"));

    let on_cluster = cluster.snapshot(PREFIX);
    let on_single = runlog_e2e::redis::snapshot(&mut single.conn(), PREFIX);
    check_store(&on_cluster, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        without_epoch(on_cluster.clone(), PREFIX),
        without_epoch(on_single, PREFIX),
        "the cluster holds other keys or values than one server"
    );
    // Each job's keys on one node (its slot's); the jobs spread over more than one node.
    let mut nodes_used = std::collections::BTreeSet::new();
    for job in JOBS {
        let base = job_base(PREFIX, job);
        let slot = key_slot(base.as_bytes());
        let owner = cluster.owner(slot);
        nodes_used.insert(owner);
        let here = runlog_e2e::redis::snapshot(&mut cluster.conn(owner), PREFIX);
        let keys: Vec<&Vec<u8>> = on_cluster
            .keys()
            .filter(|k| k.starts_with(base.as_bytes()))
            .collect();
        assert!(keys.len() >= 3, "job {job}: {} keys", keys.len());
        for k in keys {
            assert!(
                here.contains_key(k),
                "key {} of job {job:?} is not on node {owner}, which serves its slot {slot}",
                String::from_utf8_lossy(k)
            );
        }
    }
    assert!(
        nodes_used.len() > 1,
        "every job landed on one node: {nodes_used:?}"
    );

    // Every CLI read command prints the same from the cluster as from one server.
    for args in [
        vec!["list-jobs"],
        vec!["list-runs", "nightly"],
        vec!["list-runs", "backup", "--status", "failed"],
        vec!["logs", "report/eu", "last"],
        vec!["logs", "{tagged} job", "last", "--json"],
        vec!["logs", "sync", "last-failed", "--grep", "record 1"],
        vec![
            "logs", "nightly", "last", "--label", "user=u0", "--tail", "5",
        ],
        vec!["why", "backup"],
    ] {
        let (a, b) = (cli(&cc, &args), cli(&sc, &args));
        assert!(!a.trim().is_empty(), "runlog {args:?} printed nothing");
        assert_eq!(a, b, "runlog {args:?}: the cluster's output differs");
    }
}

/// Slot of a job's keys, and a job of `JOBS` whose slot is served by node `node`.
fn job_on(cluster: &RedisCluster, node: usize) -> Option<(&'static str, u16)> {
    JOBS.iter().find_map(|job| {
        let slot = key_slot(job_base(PREFIX, job).as_bytes());
        (cluster.owner(slot) == node).then_some((*job, slot))
    })
}

/// A slot moved to another master (IMPORTING/MIGRATING, keys MIGRATEd one at a time, then the
/// new owner announced) while the shipper daemon uploads and trims runs of a job in that slot:
/// in the end the cluster holds exactly what one server holds after shipping the same journal,
/// and the job's keys are all on the new node.
#[test]
fn a_slot_migrated_while_the_shipper_writes_into_it_changes_nothing_in_the_end() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    journal(&j, 200);
    let cluster = RedisCluster::start(3);
    let (job, slot, from) = (0..3)
        .find_map(|n| job_on(&cluster, n).map(|(job, slot)| (job, slot, n)))
        .expect("a job on some node");
    let to = (from + 1) % 3;
    let mut cfg = ShipperConfig::new(&j, "", 3, 2);
    cfg.cluster = cluster.urls();
    cfg.pipeline_size = Some("4KiB".into());
    cfg.rescan = "50ms".into();
    let cfg = cfg.write(&t.path().join("cluster.toml"));
    // The job's first runs are on the slot's first node.
    ship_once_ok(&cfg, &t.path().join("once.log"));

    cluster.begin_migration(slot, from, to);
    let mut shipper = Shipper::spawn(&cfg, false, &t.path().join("shipper.log"));
    // More runs of the job (uploaded, and older ones trimmed) while its keys move one by one.
    let more = {
        let mut a = KidArgs::new(&j, job, 10, 400, &[Kind::Ok, Kind::Fail]);
        a.delay_ms = 100;
        a.labels = vec![("user".into(), "late".into())];
        std::thread::spawn(move || run_kid(Path::new(KID), &a))
    };
    let mut moved = 0;
    while !more.is_finished() {
        moved += cluster.migrate_keys(slot, from, to, 1);
        // Slowly, so that uploads find the job's keys split between the two nodes.
        std::thread::sleep(Duration::from_millis(150));
    }
    more.join().unwrap();
    cluster.finish_migration(slot, from, to);

    // The same journal, shipped to one server, is the reference.
    let single = RedisServer::start();
    let expect_runs = |snap: &Snapshot| -> usize {
        snap.iter()
            .filter(|(k, _)| k.ends_with(b":runs"))
            .map(|(_, v)| match &v.data {
                Data::ZSet(m) => m.len(),
                _ => 0,
            })
            .sum()
    };
    let js = t.path().join("js");
    copy_tree(&j, &js);
    // The copy carries the cluster's `.shipped` records under the cluster's epoch: another
    // Redis has another epoch, so the single server gets every run.
    let sc = ShipperConfig::new(&js, &single.url(), 3, 2).write(&t.path().join("single.toml"));
    ship_once_ok(&sc, &t.path().join("s.log"));
    let reference = without_epoch(
        runlog_e2e::redis::snapshot(&mut single.conn(), PREFIX),
        PREFIX,
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let raw = loop {
        let raw = cluster.snapshot(PREFIX);
        if without_epoch(raw.clone(), PREFIX) == reference || Instant::now() > deadline {
            break raw;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    shipper.kill();
    check_store(&raw, PREFIX, true).unwrap_or_else(|e| panic!("{e}"));
    let snap = without_epoch(raw, PREFIX);
    assert!(
        snap == reference,
        "the cluster differs from one server (runs {} vs {}):\n{}\nshipper log:\n{}",
        expect_runs(&snap),
        expect_runs(&reference),
        diff(&reference, &snap, 20),
        shipper.log()
    );
    let base = job_base(PREFIX, job);
    let on_new = runlog_e2e::redis::snapshot(&mut cluster.conn(to), PREFIX);
    for k in snap.keys().filter(|k| k.starts_with(base.as_bytes())) {
        assert!(
            on_new.contains_key(k),
            "key {} stayed off the slot's new node",
            String::from_utf8_lossy(k)
        );
    }
    assert!(moved > 0, "no key was moved while the shipper ran");
    let log = shipper.log();
    eprintln!(
        "slot {slot} moved from node {from} to node {to}: {moved} keys moved one by one while \
         the shipper ran; shipper log lines with errors (retried): {}",
        log.lines().filter(|l| l.contains("rror")).count()
    );
}

/// The least-privilege users of spec/redis.md on every node of a cluster: the shipper's user
/// ships (the cluster client needs `CLUSTER SLOTS`, the upload its transaction and script),
/// the reader's user runs every CLI read command and may not write.
#[test]
fn the_acl_users_of_the_spec_ship_and_read_on_a_cluster() {
    use runlog_e2e::redis::{
        create_acl_users, READER_PASSWORD, READER_USER, SHIPPER_PASSWORD, SHIPPER_USER,
    };
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    journal(&j, 100);
    let cluster = RedisCluster::start(3);
    for i in 0..3 {
        create_acl_users(&mut cluster.conn(i));
    }
    let with_user = |user: &str, pw: &str| -> Vec<String> {
        cluster
            .urls()
            .iter()
            .map(|u| u.replacen("redis://", &format!("redis://{user}:{pw}@"), 1))
            .collect()
    };
    let mut sc = ShipperConfig::new(&j, "", 3, 2);
    sc.cluster = with_user(SHIPPER_USER, SHIPPER_PASSWORD);
    let sc = sc.write(&t.path().join("shipper.toml"));
    ship_once_ok(&sc, &t.path().join("ship.log"));
    check_store(&cluster.snapshot(PREFIX), PREFIX, true).unwrap_or_else(|e| panic!("{e}"));

    let mut rc = ShipperConfig::new(&j, "", 3, 2);
    rc.cluster = with_user(READER_USER, READER_PASSWORD);
    let rc = rc.write(&t.path().join("reader.toml"));
    for args in [
        vec!["list-jobs"],
        vec!["list-runs", "nightly"],
        vec!["logs", "report/eu", "last"],
        vec!["logs", "sync", "last-failed", "--grep", "record 1"],
        vec!["why", "backup"],
    ] {
        assert!(
            !cli(&rc, &args).trim().is_empty(),
            "runlog {args:?} printed nothing"
        );
    }
    // The reader's user cannot write, on any node.
    let mut reader = redis::cluster::ClusterClient::new(with_user(READER_USER, READER_PASSWORD))
        .unwrap()
        .get_connection()
        .unwrap();
    let e = redis::cmd("SET")
        .arg(format!("{PREFIX}:{{nightly}}:x"))
        .arg("1")
        .query::<()>(&mut reader)
        .unwrap_err();
    assert!(runlog_shipper::upload::is_no_perm(&e), "{e}");
}

/// Eviction on a cluster (spec/redis.md, "Redis configuration"): one master with an
/// `allkeys-lru` policy makes the shipper refuse the cluster, naming that node; runs whose
/// hash or chunks are deleted on their masters are uploaded again from the journal, and the
/// cluster ends as it was.
#[test]
fn an_evicting_master_is_refused_and_evicted_runs_are_repaired_on_a_cluster() {
    let t = tempfile::tempdir().unwrap();
    let j = t.path().join("journal");
    journal(&j, 50);
    let cluster = RedisCluster::start(3);
    let mut cfg = ShipperConfig::new(&j, "", 10, 10);
    cfg.cluster = cluster.urls();
    let cfg = cfg.write(&t.path().join("cluster.toml"));
    ship_once_ok(&cfg, &t.path().join("ship.log"));
    let whole = cluster.snapshot(PREFIX);

    let set_policy = |node: usize, policy: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(policy)
            .query(&mut cluster.conn(node))
            .unwrap();
    };
    set_policy(2, "allkeys-lru");
    let (st, log) = runlog_e2e::shipper::ship_once(&cfg, &t.path().join("refused.log"));
    assert_eq!(st.code(), Some(1), "{log}");
    assert!(
        log.contains("maxmemory-policy allkeys-lru") && log.contains("master 127.0.0.1:"),
        "{log}"
    );
    set_policy(2, "noeviction");

    // The newest run of each job loses its hash, the oldest its chunks.
    for (i, job) in JOBS.iter().enumerate() {
        let base = job_base(PREFIX, job);
        let owner = cluster.owner(key_slot(base.as_bytes()));
        let mut conn = cluster.conn(owner);
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{base}runs"))
            .arg(0)
            .arg(-1)
            .query(&mut conn)
            .unwrap();
        let key = if i % 2 == 0 {
            format!("{base}run:{}", ids[ids.len() - 1])
        } else {
            format!("{base}log:{}", ids[0])
        };
        let n: i64 = redis::cmd("DEL").arg(&key).query(&mut conn).unwrap();
        assert_eq!(n, 1, "{key}");
    }
    let log = ship_once_ok(&cfg, &t.path().join("repair.log"));
    assert_eq!(
        log.matches("uploading it again").count(),
        JOBS.len(),
        "{log}"
    );
    let now = cluster.snapshot(PREFIX);
    assert!(now == whole, "not repaired:\n{}", diff(&whole, &now, 20));
}
