//! End-to-end tests of the `runlog` command reading Redis and the local journal merged: runs are
//! written with the runlog library (in this process, or by `jobkid` processes), uploaded by the
//! real `runlog-shipper --once` to a `redis-server` each test starts for itself (never the
//! machine's own on port 6379), and read back by the real `runlog` binary with a config file
//! (`--config`) naming that Redis.
//!
//! Needs `redis-server` and `redis-cli` (the tests fail, never skip, without them), `script`
//! (util-linux) for the terminal tests, and the binaries built (`cargo build --workspace`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use log::LevelFilter;
use runlog_e2e::cli::{logger, output, runlog_bin, runlog_cmd, Out};
use runlog_e2e::redis::{free_port, job_base, RedisServer};
use runlog_e2e::shipper::{
    run_kid, ship_once_ok, toml_str, Kid, KidArgs, KidLine, Kind, ShipperConfig,
};
use serde_json::Value;
use tempfile::TempDir;

const KID: &str = env!("CARGO_BIN_EXE_jobkid");
const JOB: &str = "nightly";
/// The target of records logged by this test process.
const TARGET: &str = "cli_redis";

fn bin() -> PathBuf {
    runlog_bin()
}

/// Write one ended run of `job` to the journal in `dir` on this thread: its labels, the records
/// `body` logs (every level kept), failed if `fail`. Returns its id. A short pause afterwards
/// keeps run ids and record times of consecutive runs distinct and ordered.
fn write_run(
    dir: &Path,
    job: &str,
    labels: &[(&str, &str)],
    fail: bool,
    body: impl FnOnce(),
) -> String {
    let rl = logger(dir);
    let run = rl.runlog(job).unwrap();
    run.set_level(LevelFilter::Trace);
    for (k, v) in labels {
        run.label(k, v);
    }
    body();
    if fail {
        run.fail();
    }
    let id = run.id().to_owned();
    drop(run);
    std::thread::sleep(Duration::from_millis(3));
    id
}

/// A jobkid holding a run of `job` with `records` records open in `journal`; its id.
fn hold(journal: &Path, job: &str, records: u64) -> (Kid, String) {
    let args = KidArgs::new(journal, job, 1, records, &[Kind::Hold]);
    let mut kid = Kid::spawn(Path::new(KID), &args);
    let KidLine::Hold { id, .. } = kid.wait_for(Duration::from_secs(20), "hold", |l| {
        matches!(l, KidLine::Hold { .. })
    }) else {
        unreachable!()
    };
    (kid, id)
}

/// Delete the segment files of one run (as local retention does once it was shipped).
fn remove_run_files(journal: &Path, job: &str, id: &str) {
    let dir = runlog::journal::layout::job_dir(journal, job);
    let mut n = 0;
    for e in fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{id}.")) && name.ends_with(".seg") {
            fs::remove_file(e.path()).unwrap();
            n += 1;
        }
    }
    assert!(n > 0, "no segment files of run {id} in {}", dir.display());
}

fn cmd() -> Command {
    runlog_cmd()
}

/// `runlog --config CONFIG ARGS...`.
fn runlog(config: &Path, args: &[&str]) -> Out {
    output(cmd().arg("--config").arg(config).args(args))
}

/// A CLI config: the journal, and Redis at `url` if given (1 s timeouts).
fn write_config(path: &Path, journal: &Path, url: Option<&str>) -> PathBuf {
    let mut t = format!(
        "[runlog]\njournal-dir = {}\n",
        toml_str(&journal.to_string_lossy())
    );
    if let Some(url) = url {
        t.push_str(&format!(
            "\n[runlog-redis]\nurl = {}\nconnect-timeout = \"1s\"\nio-timeout = \"1s\"\n",
            toml_str(url)
        ));
    }
    fs::write(path, t).unwrap();
    path.to_path_buf()
}

/// A test's world: its own Redis, the local journal the CLI reads (`local`), the journal of
/// "another host" (`other`) whose runs reach the CLI only through Redis, and a config file.
struct Env {
    root: TempDir,
    redis: RedisServer,
}

/// The note `list-runs` and `list-jobs` print when Redis is configured and local runs are not
/// shipped yet.
fn is_waiting_note(line: &str) -> bool {
    line.starts_with("runlog: ")
        && (line.contains(" runs wait for runlog-shipper")
            || line.contains(" run waits for runlog-shipper"))
}

impl Env {
    fn new() -> Env {
        let env = Env {
            root: tempfile::tempdir().unwrap(),
            redis: RedisServer::start(),
        };
        write_config(&env.config(), &env.local(), Some(&env.redis.url()));
        env
    }

    fn local(&self) -> PathBuf {
        self.root.path().join("local")
    }

    fn other(&self) -> PathBuf {
        self.root.path().join("other")
    }

    fn config(&self) -> PathBuf {
        self.root.path().join("runlog.toml")
    }

    /// `runlog-shipper --once` of `journal` to this test's Redis (keeping every run).
    fn ship(&self, journal: &Path) {
        let name = journal.file_name().unwrap().to_string_lossy().into_owned();
        let cfg = ShipperConfig::new(journal, &self.redis.url(), 1000, 1000)
            .write(&self.root.path().join(format!("ship-{name}.toml")));
        ship_once_ok(&cfg, &self.root.path().join("shipper.log"));
    }

    fn run(&self, args: &[&str]) -> Out {
        runlog(&self.config(), args)
    }

    /// Exit 0 and nothing on stderr but the note on runs not shipped yet (these tests
    /// write local runs on purpose; `unshipped_runs_are_kept_and_said_to_wait_for_the_shipper`
    /// checks the note); stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.code, 0, "runlog {args:?} failed: {o:?}");
        let stderr: String = o.stderr.lines().filter(|l| !is_waiting_note(l)).collect();
        assert_eq!(stderr, "", "runlog {args:?} warned: {o:?}");
        o.stdout
    }

    /// The exit status, which must be `code`, and stderr, which must mention `what`.
    fn fails(&self, code: i32, args: &[&str], what: &str) {
        let o = self.run(args);
        assert_eq!(o.code, code, "runlog {args:?}: {o:?}");
        assert!(o.stderr.contains(what), "runlog {args:?}: {o:?}");
    }

    /// `--json` lines of a command.
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        json_lines(&self.ok(&a))
    }

    /// The ids `list-runs ARGS` prints, oldest first.
    fn run_ids(&self, args: &[&str]) -> Vec<String> {
        let mut a = vec!["list-runs"];
        a.extend_from_slice(args);
        self.json(&a)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The record lines of `logs ARGS` (text).
    fn log_lines(&self, args: &[&str]) -> Vec<String> {
        let mut a = vec!["logs"];
        a.extend_from_slice(args);
        self.ok(&a).lines().map(str::to_owned).collect()
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The message part of a record line: what follows `TARGET: `.
fn message(line: &str) -> &str {
    line.split_once(&format!("{TARGET}: "))
        .map_or(line, |(_, m)| m)
}

// ---------------------------------------------------------------------------------------------
// The merged view
// ---------------------------------------------------------------------------------------------

#[test]
fn the_merged_view_shows_each_run_once_whichever_source_holds_it() {
    let env = Env::new();
    let (local, other) = (env.local(), env.other());
    // Shipped from another host's journal: only in Redis.
    let remote = write_run(&other, JOB, &[("from", "other")], false, || {
        log::info!("remote says hi");
        log::debug!(k = "v"; "remote detail");
    });
    env.ship(&other);
    // Shipped from here, then removed locally (as retention does): only in Redis.
    let gone = write_run(&local, JOB, &[("from", "gone")], false, || {
        log::warn!("gone here but shipped");
    });
    // Shipped and still here: in both.
    let both = write_run(&local, JOB, &[], true, || {
        log::info!("in both places");
        log::error!("both failed:\nsecond line");
    });
    // Ongoing: a job process holds a run open (running runs are never shipped).
    let (_kid, held) = hold(&local, JOB, 3);
    env.ship(&local);
    remove_run_files(&local, JOB, &gone);
    // Not shipped yet: only here.
    let only_local = write_run(&local, JOB, &[], false, || log::info!("local only"));

    let all = [&remote, &gone, &both, &held, &only_local];

    // list-jobs: each run counted once.
    let jobs = env.json(&["list-jobs"]);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["job"], JOB);
    assert_eq!(jobs[0]["runs"], 5, "{jobs:?}");
    assert_eq!(jobs[0]["last_status"], "ok", "{jobs:?}");
    let text = env.ok(&["list-jobs"]);
    let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!((row[0], row[2], row[3]), (JOB, "ok", "5"), "{text}");
    let jobs = env.json(&["--source", "redis", "list-jobs"]);
    assert_eq!(
        (&jobs[0]["runs"], &jobs[0]["last_status"]),
        (&Value::from(3), &Value::from("failed")),
        "remote, gone and both: {jobs:?}"
    );
    let jobs = env.json(&["--source", "local", "list-jobs"]);
    assert_eq!(
        (&jobs[0]["runs"], &jobs[0]["last_status"]),
        (&Value::from(3), &Value::from("ok")),
        "both, held and local: {jobs:?}"
    );

    // list-runs: all of them, oldest first, with their statuses and where they are.
    let runs = env.json(&["list-runs", JOB]);
    let got: Vec<(&str, &str, &str, u64)> = runs
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
                r["source"].as_str().unwrap(),
                r["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (remote.as_str(), "ok", "redis", 2),
            (gone.as_str(), "ok", "redis", 1),
            (both.as_str(), "failed", "both", 2),
            (held.as_str(), "running", "local", 3),
            (only_local.as_str(), "ok", "local", 1),
        ]
    );
    assert_eq!(runs[0]["labels"]["from"], "other");
    assert_eq!(runs[1]["labels"]["from"], "gone");
    let text = env.ok(&["list-runs", JOB]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    for (line, (id, status, ..)) in lines[1..].iter().zip(&got) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((cols[0], cols[1]), (*id, *status), "{text}");
    }
    let redis = env.json(&["--source", "redis", "list-runs", JOB]);
    assert_eq!(
        redis
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r["source"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [
            (remote.as_str(), "redis"),
            (gone.as_str(), "redis"),
            (both.as_str(), "redis")
        ]
    );
    let locals = env.json(&["--source", "local", "list-runs", JOB]);
    assert_eq!(
        locals
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r["source"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [
            (both.as_str(), "local"),
            (held.as_str(), "local"),
            (only_local.as_str(), "local")
        ]
    );

    // logs: the records of each run, whichever source holds it.
    let msgs = |args: &[&str]| -> Vec<String> {
        env.log_lines(args)
            .iter()
            .map(|l| message(l).to_owned())
            .collect()
    };
    assert_eq!(
        msgs(&[JOB, &remote]),
        ["remote says hi", "remote detail k=v"]
    );
    assert_eq!(msgs(&[JOB, &gone]), ["gone here but shipped"]);
    assert_eq!(
        msgs(&[JOB, &both]),
        ["in both places", "both failed:", "  second line"]
    );
    assert_eq!(msgs(&[JOB, &only_local]), ["local only"]);
    let held_lines = env.log_lines(&[JOB, &held]);
    assert_eq!(held_lines.len(), 3, "{held_lines:?}");
    for (i, l) in held_lines.iter().enumerate() {
        assert!(l.contains(&format!("run 0 record {i}: ")), "{held_lines:?}");
    }
    assert_eq!(env.log_lines(&[JOB, "-2"]), held_lines);
    assert_eq!(msgs(&[JOB]), ["local only"], "the default is the last run");
    // The run in both reads the same from either source, as text and as JSON.
    for json in [false, true] {
        let j: &[&str] = if json { &["--json"] } else { &[] };
        let read = |source: &str| {
            let mut a = j.to_vec();
            a.extend(["--source", source, "logs", JOB, &both]);
            env.ok(&a)
        };
        let from_redis = read("redis");
        assert_eq!(from_redis, read("local"));
        assert_eq!(from_redis, read("auto"));
    }
    // Several runs: every line starts with its run's id, runs in the order named.
    let mut args = vec![JOB];
    args.extend(all.iter().map(|s| s.as_str()));
    let lines = env.log_lines(&args);
    let owners: Vec<&str> = lines
        .iter()
        .map(|l| {
            let id = l.split(' ').next().unwrap();
            assert!(all.iter().any(|a| a.as_str() == id), "{l:?}");
            id
        })
        .collect();
    let mut expected = Vec::new();
    for (id, n) in all.iter().zip([2, 1, 3, 3, 1]) {
        expected.extend(std::iter::repeat_n(id.as_str(), n));
    }
    assert_eq!(owners, expected, "{lines:#?}");
    assert!(lines[5].ends_with("  second line"), "{lines:#?}");

    // Each source alone has only its own runs.
    env.fails(3, &["--source", "local", "logs", JOB, &remote], "no run");
    env.fails(3, &["--source", "local", "logs", JOB, &gone], "no run");
    env.fails(
        3,
        &["--source", "redis", "logs", JOB, &only_local],
        "no run",
    );
    env.fails(3, &["--source", "redis", "logs", JOB, &held], "no run");
    assert_eq!(
        env.log_lines(&["--source", "redis", JOB, "last"]),
        env.log_lines(&[JOB, &both])
    );
    assert_eq!(
        msgs(&["--source", "local", JOB, "-3"]),
        ["in both places", "both failed:", "  second line"]
    );
}

// ---------------------------------------------------------------------------------------------
// Redis away
// ---------------------------------------------------------------------------------------------

/// Exit 0, the same stdout as `--source local`, and exactly one warning line naming `place`
/// (besides the note on runs not shipped yet).
fn assert_falls_back(config: &Path, args: &[&str], place: &str) {
    let o = runlog(config, args);
    assert_eq!(o.code, 0, "{args:?}: {o:?}");
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !is_waiting_note(l)).collect();
    assert_eq!(lines.len(), 1, "one warning line: {args:?}: {o:?}");
    assert!(
        lines[0].starts_with("runlog: warning: ") && lines[0].contains(place),
        "{args:?}: {o:?}"
    );
    let mut local = vec!["--source", "local"];
    local.extend_from_slice(args);
    let l = runlog(config, &local);
    assert_eq!(l.code, 0, "{local:?}: {l:?}");
    assert!(l.stderr.lines().all(is_waiting_note), "{local:?}: {l:?}");
    assert_eq!(o.stdout, l.stdout, "{args:?}: auto reads the journal alone");
}

#[test]
fn with_redis_unreachable_auto_reads_the_journal_with_one_warning_and_source_redis_exits_4() {
    let mut env = Env::new();
    let local = env.local();
    let shipped = write_run(&local, JOB, &[], false, || log::info!("shipped"));
    env.ship(&local);
    let unshipped = write_run(&local, JOB, &[], true, || log::error!("not shipped"));
    let place = format!("127.0.0.1:{}", env.redis.port());
    assert_eq!(env.run_ids(&[JOB]), [shipped.as_str(), unshipped.as_str()]);
    let cases: [&[&str]; 4] = [
        &["list-jobs"],
        &["list-runs", JOB],
        &["logs", JOB, &shipped, &unshipped],
        &["why", JOB],
    ];

    // A hung Redis (SIGSTOP): the connection is accepted, no command is answered.
    env.redis.pause();
    let t = Instant::now();
    assert_falls_back(&env.config(), &["list-runs", JOB], &place);
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "the io-timeout (1 s) bounds the wait: {:?}",
        t.elapsed()
    );
    env.fails(4, &["--source", "redis", "list-runs", JOB], &place);
    env.redis.resume();
    assert_eq!(env.run_ids(&[JOB]), [shipped.as_str(), unshipped.as_str()]);

    // Nothing listens any more.
    env.redis.stop();
    for args in cases {
        assert_falls_back(&env.config(), args, &place);
    }
    let o = env.run(&["--json", "list-runs", JOB]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(json_lines(&o.stdout).iter().all(|r| r["source"] == "local"));
    for args in cases {
        let mut a = vec!["--source", "redis"];
        a.extend_from_slice(args);
        env.fails(4, &a, &place);
    }

    // A port where nothing ever listened.
    let nowhere = format!("redis://127.0.0.1:{}/0", free_port());
    let cfg = write_config(
        &env.root.path().join("nowhere.toml"),
        &local,
        Some(&nowhere),
    );
    assert_falls_back(&cfg, &["list-runs", JOB], &nowhere[8..]);
    let o = runlog(&cfg, &["--source", "redis", "list-jobs"]);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stderr.contains(&nowhere[8..]), "{o:?}");

    // No Redis configured: --source redis is a usage error, auto is the journal, silently.
    let cfg = write_config(&env.root.path().join("no-redis.toml"), &local, None);
    let o = runlog(&cfg, &["--source", "redis", "list-runs", JOB]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("--source redis") && o.stderr.contains("[runlog-redis]"),
        "{o:?}"
    );
    let o = runlog(&cfg, &["list-runs", JOB]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{o:?}");
    assert_eq!(o.stdout.lines().count(), 3, "{o:?}");
}

// ---------------------------------------------------------------------------------------------
// list-runs filters
// ---------------------------------------------------------------------------------------------

#[test]
fn list_runs_filters_redis_runs_by_status_label_time_and_limit() {
    let env = Env::new();
    let other = env.other();
    let r0 = write_run(
        &other,
        JOB,
        &[("user", "bar"), ("env", "prod")],
        false,
        || log::info!("r0"),
    );
    let r1 = write_run(
        &other,
        JOB,
        &[("user", "bar"), ("env", "dev")],
        true,
        || log::error!("r1"),
    );
    let r2 = write_run(
        &other,
        JOB,
        &[("user", "baz"), ("env", "prod")],
        false,
        || log::info!("r2"),
    );
    let r3 = write_run(
        &other,
        JOB,
        &[("user", "baz"), ("env", "prod")],
        true,
        || log::error!("r3"),
    );
    // A job process that dies inside its run: crashed.
    let mut kid = KidArgs::new(&other, JOB, 1, 2, &[Kind::Crash]);
    kid.labels.push(("user".into(), "qux".into()));
    let lines = run_kid(Path::new(KID), &kid);
    let r4 = lines
        .iter()
        .find_map(|l| match l {
            KidLine::Crash { id, .. } => Some(id.clone()),
            _ => None,
        })
        .expect("the kid crashed in its run");
    env.ship(&other);
    let (r0, r1, r2, r3, r4) = (&*r0, &*r1, &*r2, &*r3, &*r4);
    let all = [r0, r1, r2, r3, r4];

    // The runs come from Redis only (the local journal does not even exist).
    assert!(!env.local().exists());
    let runs = env.json(&["list-runs", JOB]);
    assert_eq!(
        runs.iter()
            .map(|r| (r["status"].as_str().unwrap(), r["source"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("ok", "redis"),
            ("failed", "redis"),
            ("ok", "redis"),
            ("failed", "redis"),
            ("crashed", "redis")
        ]
    );
    let start = |i: usize| runs[i]["start"].as_str().unwrap().to_owned();
    let ids = |args: &[&str]| {
        let mut a = vec![JOB];
        a.extend_from_slice(args);
        env.run_ids(&a)
    };
    assert_eq!(ids(&[]), all);

    // --status, repeated or with commas.
    assert_eq!(ids(&["--status", "failed"]), [r1, r3]);
    assert_eq!(ids(&["--status", "failed,crashed"]), [r1, r3, r4]);
    assert_eq!(
        ids(&["--status", "ok", "--status", "crashed"]),
        [r0, r2, r4]
    );
    assert_eq!(ids(&["--status", "running"]), Vec::<String>::new());
    let text = env.ok(&["list-runs", JOB, "--status", "crashed,failed"]);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| (r[0], r[1])).collect::<Vec<_>>(),
        [(r1, "failed"), (r3, "failed"), (r4, "crashed")],
        "{text}"
    );
    assert_eq!(rows[0][6], "env=dev,user=bar", "labels: {text}");
    env.fails(2, &["list-runs", JOB, "--status", "gone"], "gone");

    // --label: every one given must match.
    assert_eq!(ids(&["--label", "user=bar"]), [r0, r1]);
    assert_eq!(ids(&["--label", "env=prod"]), [r0, r2, r3]);
    assert_eq!(ids(&["--label", "user=bar", "--label", "env=prod"]), [r0]);
    assert_eq!(ids(&["--label", "env=prod", "--status", "failed"]), [r3]);
    assert_eq!(ids(&["--label", "user=qux"]), [r4]);
    assert_eq!(ids(&["--label", "user=nobody"]), Vec::<String>::new());
    assert_eq!(ids(&["--label", "user=ba"]), Vec::<String>::new());

    // --since / --until: run starts, as absolute times and as durations ago.
    assert_eq!(ids(&["--since", &start(2)]), [r2, r3, r4]);
    assert_eq!(ids(&["--until", &start(2)]), [r0, r1]);
    assert_eq!(ids(&["--since", &start(1), "--until", &start(3)]), [r1, r2]);
    let day = &start(0)[..10];
    let minute = &start(0)[..16];
    let second = format!("{}Z", &start(0)[..19]);
    assert_eq!(ids(&["--since", day]), all);
    assert_eq!(ids(&["--since", &minute.replace('T', " ")]), all);
    assert_eq!(ids(&["--until", minute]), Vec::<String>::new());
    assert_eq!(ids(&["--until", &second]), Vec::<String>::new());
    assert_eq!(ids(&["--since", "1h"]), all);
    assert_eq!(ids(&["--since", "1h30m ago", "--until", "now"]), all);
    assert_eq!(
        ids(&["--since", "1w", "--until", "1h"]),
        Vec::<String>::new()
    );
    assert_eq!(ids(&["--until", "2h"]), Vec::<String>::new());
    env.fails(
        2,
        &["list-runs", JOB, "--since", "soonish"],
        "--since \"soonish\" is not a time",
    );
    env.fails(
        2,
        &["list-runs", JOB, "--until", "2026-13-01"],
        "--until \"2026-13-01\" is not a time",
    );

    // --limit N: the newest N that pass, still oldest first.
    assert_eq!(ids(&["--limit", "2"]), [r3, r4]);
    assert_eq!(ids(&["--limit", "5"]), all);
    assert_eq!(ids(&["--limit", "50"]), all);
    // 0 means every run, as for list-jobs (it printed none).
    assert_eq!(ids(&["--limit", "0"]), all);
    assert_eq!(ids(&["--limit", "1", "--status", "ok"]), [r2]);
    assert_eq!(ids(&["--label", "user=bar", "--limit", "1"]), [r1]);
    let text = env.ok(&["list-runs", JOB, "--limit", "2"]);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().nth(2).unwrap().starts_with(r4), "{text}");
    env.fails(2, &["list-runs", JOB, "--limit", "some"], "some");

    // With --limit, Redis picks the newest N of a coarser window (the `failed` index holds
    // crashed runs too; scores are milliseconds): a picked run that a filter drops makes the
    // older ones count again.
    assert_eq!(ids(&["--status", "failed", "--limit", "1"]), [r3]);
    assert_eq!(ids(&["--status", "crashed", "--limit", "1"]), [r4]);
    assert_eq!(
        ids(&["--status", "failed,crashed", "--limit", "2"]),
        [r3, r4]
    );
    assert_eq!(ids(&["--status", "failed,running", "--limit", "1"]), [r3]);
    assert_eq!(ids(&["--until", &start(2), "--limit", "1"]), [r1]);
    assert_eq!(ids(&["--since", &start(1), "--limit", "2"]), [r3, r4]);
    assert_eq!(
        ids(&["--since", &start(1), "--until", &start(4), "--limit", "2"]),
        [r2, r3]
    );
    assert_eq!(ids(&["--since", "1m", "--limit", "1"]), [r4]);
    assert_eq!(
        ids(&["--until", minute, "--limit", "1"]),
        Vec::<String>::new()
    );
    env.fails(3, &["list-runs", "no-such-job", "--limit", "1"], "no job");
    env.fails(
        3,
        &[
            "list-runs",
            "no-such-job",
            "--since",
            "1h",
            "--status",
            "failed",
        ],
        "no job",
    );
}

// ---------------------------------------------------------------------------------------------
// Many jobs: list-jobs by last activity and --limit; what each listing asks Redis
// ---------------------------------------------------------------------------------------------

/// The commands `redis` ran while `f` ran, by name (`INFO commandstats` after
/// `CONFIG RESETSTAT`; the counting commands themselves left out).
fn commands_during(redis: &RedisServer, f: impl FnOnce()) -> BTreeMap<String, u64> {
    let mut conn = redis.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut conn)
        .unwrap();
    f();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| !name.starts_with("config") && name != "info")
        .collect()
}

/// No command that walks the keyspace.
fn assert_no_keyspace_walk(calls: &BTreeMap<String, u64>) {
    for walk in ["keys", "scan"] {
        assert!(!calls.contains_key(walk), "{walk} was used: {calls:?}");
    }
}

/// The (job, status, runs) of the rows of `list-jobs` text, in order.
fn job_rows(text: &str) -> Vec<(String, String, String)> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["JOB", "LAST", "START", "STATUS", "RUNS"], "{text}");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[2].to_owned(), f[3].to_owned())
        })
        .collect()
}

#[test]
fn list_jobs_shows_the_most_recently_active_jobs_first_up_to_its_limit_and_says_when_there_are_more(
) {
    let env = Env::new();
    let (local, other) = (env.local(), env.other());
    // The first activity of all: a run still going here (never shipped).
    let (_kid, _held) = hold(&local, "local-old", 1);
    std::thread::sleep(Duration::from_millis(3));
    // 105 jobs shipped from another host, one run each, job-000 first; then job-000 again,
    // failing: by name it comes first, by activity it was last until then.
    let names: Vec<String> = (0..105).map(|i| format!("job-{i:03}")).collect();
    for n in &names {
        write_run(&other, n, &[], false, || log::info!("hi"));
    }
    write_run(&other, "job-000", &[], true, || log::error!("again"));
    env.ship(&other);
    // job-050 runs here and is shipped: in Redis twice, one of them also here.
    write_run(&local, "job-050", &[], false, || log::info!("here"));
    env.ship(&local);
    // A job only here, not shipped yet: the newest activity.
    write_run(&local, "local-new", &[], false, || log::info!("new"));

    let note = "runlog: showing the 100 most recently active jobs; there are more (--limit 0 \
                shows all)\n";
    let row = |j: &str, st: &str, n: usize| (j.to_owned(), st.to_owned(), n.to_string());
    // Redis's index holds 105 jobs, most recently active first.
    let mut in_redis = vec![row("job-050", "ok", 2), row("job-000", "failed", 2)];
    in_redis.extend(
        (1..105)
            .rev()
            .filter(|&i| i != 50)
            .map(|i| row(&format!("job-{i:03}"), "ok", 1)),
    );
    let o = env.run(&["--source", "redis", "list-jobs"]);
    assert_eq!((o.code, o.stderr.as_str()), (0, note), "{o:?}");
    assert_eq!(job_rows(&o.stdout), in_redis[..100], "{}", o.stdout);
    assert_eq!(
        job_rows(&env.ok(&["--source", "redis", "list-jobs", "--limit", "0"])),
        in_redis
    );
    assert_eq!(
        job_rows(&env.ok(&["--source", "redis", "list-jobs", "--limit", "105"])),
        in_redis
    );
    let o = env.run(&["--source", "redis", "list-jobs", "--limit", "104"]);
    assert!(o.stderr.contains("showing the 104 most recently"), "{o:?}");
    assert_eq!(job_rows(&o.stdout), in_redis[..104]);

    // Merged: the local jobs take their places by their newest local run, each job once and
    // each run counted once (job-050's shipped run is in both).
    let mut merged = vec![row("local-new", "ok", 1)];
    merged.extend(in_redis.iter().cloned());
    merged.push(row("local-old", "running", 1));
    // local-new's run is not shipped: a note says so (local-old's is running).
    let waiting = "runlog: 1 run waits for runlog-shipper: [runlog-redis] is configured but the \
                   run is not shipped yet (the journal keeps it until it is); is runlog-shipper \
                   running?\n";
    let o = env.run(&["list-jobs"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (0, format!("{note}{waiting}").as_str()),
        "{o:?}"
    );
    assert_eq!(job_rows(&o.stdout), merged[..100], "{}", o.stdout);
    assert_eq!(job_rows(&env.ok(&["list-jobs", "--limit", "0"])), merged);
    assert_eq!(job_rows(&env.ok(&["list-jobs", "--limit", "107"])), merged);
    let o = env.run(&["list-jobs", "--limit", "106"]);
    assert!(o.stderr.contains("showing the 106 most recently"), "{o:?}");
    assert_eq!(job_rows(&o.stdout), merged[..106]);
    let o = env.run(&["list-jobs", "--limit", "3"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stderr,
        format!(
            "runlog: showing the 3 most recently active jobs; there are more (--limit 0 shows \
             all)\n{waiting}"
        )
    );
    assert_eq!(job_rows(&o.stdout), merged[..3]);
    assert_eq!(
        job_rows(&env.ok(&["--source", "local", "list-jobs"])),
        [
            row("local-new", "ok", 1),
            row("job-050", "ok", 1),
            row("local-old", "running", 1)
        ]
    );
    // JSON lines: as many, in the same order; the note still on stderr only.
    let o = env.run(&["--json", "list-jobs", "--limit", "2"]);
    assert!(o.stderr.contains("showing the 2 most recently"), "{o:?}");
    let jobs = json_lines(&o.stdout);
    assert_eq!(
        jobs.iter()
            .map(|j| (j["job"].as_str().unwrap(), j["runs"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("local-new", 1), ("job-050", 2)]
    );
    env.fails(2, &["list-jobs", "--limit", "many"], "--limit");

    // What it costs Redis follows what is shown: the index read once, then per shown job its
    // runs index and each counted run's status (pipelined); no walk of the keyspace.
    for (limit, shown) in [("3", 3), ("100", 100)] {
        let mut runs = 0u64;
        let calls = commands_during(&env.redis, || {
            let o = env.run(&["--source", "redis", "list-jobs", "--limit", limit]);
            assert_eq!(o.stdout.lines().count(), shown as usize + 1, "{o:?}");
            runs = job_rows(&o.stdout)
                .iter()
                .map(|r| r.2.parse::<u64>().unwrap())
                .sum();
        });
        assert_no_keyspace_walk(&calls);
        assert_eq!(calls.get("zrange"), Some(&(shown + 1)), "{calls:?}");
        assert_eq!(calls.get("hmget"), Some(&runs), "{calls:?}");
        assert_eq!(calls.get("hgetall"), None, "{calls:?}");
    }
}

#[test]
fn list_runs_reads_only_its_jobs_keys_and_with_limit_only_the_newest_runs() {
    let env = Env::new();
    let other = env.other();
    let ids: Vec<String> = (0..6)
        .map(|i| write_run(&other, JOB, &[], i == 2, || log::info!("run {i}")))
        .collect();
    write_run(&other, "neighbour", &[], false, || log::info!("not read"));
    env.ship(&other);
    // A reader allowed to read this job's keys and the schema version only.
    let base = job_base("runlog", JOB);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("job-reader")
        .arg(&[
            "on",
            ">job-secret",
            "resetkeys",
            &format!("%R~{base}*"),
            "%R~runlog:schema",
            "resetchannels",
            "-@all",
        ])
        // The reader's commands of spec/redis.md, on this job's keys only.
        .arg(
            runlog_e2e::redis::READER_ACL
                .iter()
                .filter(|r| r.starts_with('+'))
                .collect::<Vec<_>>(),
        )
        .query(&mut env.redis.conn())
        .unwrap();
    let cfg = write_config(
        &env.root.path().join("job-reader.toml"),
        &env.local(),
        Some(&format!(
            "redis://job-reader:job-secret@127.0.0.1:{}/0",
            env.redis.port()
        )),
    );
    let list = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--source", "redis", "--json", "list-runs", JOB];
        a.extend_from_slice(args);
        let o = runlog(&cfg, &a);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{a:?}: {o:?}");
        json_lines(&o.stdout)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let calls = commands_during(&env.redis, || assert_eq!(list(&[]), ids));
    assert_no_keyspace_walk(&calls);
    assert_eq!(calls.get("hgetall"), Some(&6), "{calls:?}");
    // --limit N reads N run hashes, whatever the job keeps.
    let calls = commands_during(&env.redis, || assert_eq!(list(&["--limit", "2"]), ids[4..]));
    assert_no_keyspace_walk(&calls);
    assert_eq!(calls.get("hgetall"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("zrange"), Some(&1), "{calls:?}");
    let calls = commands_during(&env.redis, || {
        assert_eq!(list(&["--status", "failed", "--limit", "1"]), ids[2..3])
    });
    assert_eq!(
        calls.get("hgetall"),
        Some(&1),
        "from the failed index: {calls:?}"
    );
    let calls = commands_during(&env.redis, || {
        assert_eq!(list(&["--since", "1h", "--limit", "3"]), ids[3..])
    });
    assert_eq!(calls.get("hgetall"), Some(&3), "{calls:?}");
    // Other jobs' keys are out of this reader's reach: list-jobs needs the jobs index. Redis
    // refuses this user (exit 4, as for any Redis that cannot be used), naming the rules.
    let o = runlog(&cfg, &["--source", "redis", "list-jobs"]);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stderr.contains("no permissions"), "{o:?}");
    let o = runlog(&cfg, &["--source", "redis", "list-runs", "neighbour"]);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stderr.contains("no permissions"), "{o:?}");
}

// ---------------------------------------------------------------------------------------------
// logs
// ---------------------------------------------------------------------------------------------

#[test]
fn logs_finds_redis_runs_by_last_index_prefix_last_failed_and_label() {
    let env = Env::new();
    let other = env.other();
    let mk = |i: usize, user: &str, fail: bool| {
        write_run(&other, JOB, &[("user", user)], fail, || {
            log::info!("this is r{i}");
            log::debug!("r{i} detail");
        })
    };
    let r = [
        mk(0, "bar", false),
        mk(1, "baz", true),
        mk(2, "bar", false),
        mk(3, "baz", false),
    ];
    env.ship(&other);
    // The message of each record line (several runs: after the run id).
    let said = |args: &[&str]| -> Vec<String> {
        let mut a = vec![JOB];
        a.extend_from_slice(args);
        env.log_lines(&a)
            .iter()
            .map(|l| message(l).to_owned())
            .collect()
    };
    let of = |i: usize| vec![format!("this is r{i}"), format!("r{i} detail")];

    assert_eq!(said(&[]), of(3), "the default is last");
    assert_eq!(said(&["last"]), of(3));
    assert_eq!(said(&["-1"]), of(3));
    assert_eq!(said(&["-2"]), of(2));
    assert_eq!(said(&["-4"]), of(0));
    assert_eq!(said(&[&r[1]]), of(1), "a full id");
    assert_eq!(said(&[&r[1][..26]]), of(1), "a unique prefix");
    assert_eq!(
        said(&[&r[1][..26].replacen('T', " ", 1)]),
        of(1),
        "a prefix with a space for the T"
    );
    assert_eq!(said(&["last-failed"]), of(1));
    // --label: references count among the runs it keeps.
    assert_eq!(said(&["last", "--label", "user=bar"]), of(2));
    assert_eq!(said(&["--label", "user=bar"]), of(2));
    assert_eq!(said(&["-2", "--label", "user=bar"]), of(0));
    assert_eq!(said(&["last-failed", "--label", "user=baz"]), of(1));
    env.fails(
        3,
        &["logs", JOB, "last-failed", "--label", "user=bar"],
        "no failed or crashed run",
    );
    env.fails(
        3,
        &["logs", JOB, "-3", "--label", "user=bar"],
        "has only 2 run(s)",
    );
    env.fails(
        3,
        &["logs", JOB, "last", "--label", "user=nobody"],
        "no run labelled user=nobody",
    );

    // Several runs: in the order named, each line starting with its run id.
    let lines = env.log_lines(&[JOB, "-1", "last-failed", &r[0][..26]]);
    let expect: Vec<String> = [3, 1, 0]
        .iter()
        .flat_map(|&i| of(i).into_iter().map(move |m| (i, m)))
        .map(|(i, m)| format!("{} {m}", r[i]))
        .collect();
    let got: Vec<String> = lines
        .iter()
        .map(|l| {
            let (id, rest) = l.split_once(' ').unwrap();
            format!("{id} {}", message(rest))
        })
        .collect();
    assert_eq!(got, expect);

    // Not found: exit 3, saying what to do; ambiguous: exit 2, listing the candidates.
    env.fails(3, &["logs", JOB, "-5"], "has only 4 run(s)");
    env.fails(
        3,
        &["logs", JOB, "1999-01-01"],
        "no run matching \"1999-01-01\"",
    );
    env.fails(3, &["logs", "no-such-job"], "no job \"no-such-job\"");
    env.fails(3, &["logs", "no-such-job"], "Redis at");
    let o = env.run(&["logs", JOB, &r[0][..10]]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(r.iter().all(|id| o.stderr.contains(id.as_str())), "{o:?}");
}

/// A run shipped to Redis (and kept locally, as an oracle) with records of every level, fields
/// and distinct times.
fn records_run(env: &Env) -> (String, Vec<&'static str>) {
    let msgs = vec![
        "starting",
        "connecting to db",
        "slow reply from db",
        "raw bytes",
        "query failed: timeout",
        "retrying",
        "giving up",
    ];
    let id = write_run(&env.local(), "records", &[("user", "bar")], true, || {
        let gap = || std::thread::sleep(Duration::from_millis(2));
        log::info!(user = "bar"; "starting");
        gap();
        log::debug!(host = "db1"; "connecting to db");
        gap();
        log::warn!(ms = 1500; "slow reply from db");
        gap();
        log::trace!("raw bytes");
        gap();
        log::error!("query failed: timeout");
        gap();
        log::info!("retrying");
        gap();
        log::error!(user = "bar", attempt = 2; "giving up");
    });
    env.ship(&env.local());
    (id, msgs)
}

#[test]
fn logs_of_a_redis_run_filter_records_by_level_regex_time_head_and_tail() {
    let env = Env::new();
    let (id, msgs) = records_run(&env);
    // Every query reads Redis; the same from the journal must agree.
    let pick = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--source", "redis", "logs", "records"];
        a.extend_from_slice(args);
        let out = env.ok(&a);
        a[1] = "local";
        assert_eq!(out, env.ok(&a), "Redis and the journal differ for {args:?}");
        out.lines()
            .map(|l| {
                let m = message(l);
                m.split(" user=")
                    .next()
                    .unwrap()
                    .split(" host=")
                    .next()
                    .unwrap()
                    .split(" ms=")
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let m = |idx: &[usize]| -> Vec<String> { idx.iter().map(|&i| msgs[i].to_owned()).collect() };
    assert_eq!(pick(&[]), m(&[0, 1, 2, 3, 4, 5, 6]));
    let all = env.log_lines(&["--source", "redis", "records"]);
    assert!(all[0].ends_with(": starting user=bar"), "{all:?}");
    assert!(
        all[6].ends_with(": giving up user=bar attempt=2"),
        "{all:?}"
    );
    assert!(all[2].contains(" WARN  "), "{all:?}");

    // --level: that level and more severe.
    assert_eq!(pick(&["--level", "warn"]), m(&[2, 4, 6]));
    assert_eq!(pick(&["--level", "ERROR"]), m(&[4, 6]));
    assert_eq!(pick(&["--level", "trace"]), m(&[0, 1, 2, 3, 4, 5, 6]));
    env.fails(2, &["logs", "records", "--level", "loud"], "loud");

    // --grep: message, target or a key=value field.
    assert_eq!(pick(&["--grep", "db$"]), m(&[1, 2]));
    assert_eq!(pick(&["--grep", "host=db1"]), m(&[1]));
    assert_eq!(pick(&["--grep", "user=bar"]), m(&[0, 6]));
    assert_eq!(pick(&["--grep", "^cli_redis$"]), m(&[0, 1, 2, 3, 4, 5, 6]));
    assert_eq!(pick(&["--grep", "(?i)GIVING|TIMEOUT"]), m(&[4, 6]));
    assert_eq!(pick(&["--level", "error", "--grep", "timeout"]), m(&[4]));
    assert_eq!(pick(&["--grep", "nothing like this"]), m(&[]));
    env.fails(
        2,
        &["logs", "records", "--grep", "(unclosed"],
        "--grep \"(unclosed\" is not a valid regular expression",
    );

    // --since / --until: record times.
    let ts = |i: usize| all[i].split(' ').next().unwrap().to_owned();
    assert_eq!(pick(&["--since", &ts(2), "--until", &ts(5)]), m(&[2, 3, 4]));
    assert_eq!(pick(&["--since", &ts(5)]), m(&[5, 6]));
    assert_eq!(pick(&["--until", &ts(1)]), m(&[0]));
    assert_eq!(pick(&["--since", "1h"]), m(&[0, 1, 2, 3, 4, 5, 6]));
    assert_eq!(pick(&["--until", "1h"]), m(&[]));
    assert_eq!(pick(&["--since", "now"]), m(&[]));
    env.fails(
        2,
        &["logs", "records", "--until", "later"],
        "--until \"later\" is not a time",
    );

    // --head / --tail, after the filters.
    assert_eq!(pick(&["--head", "2"]), m(&[0, 1]));
    assert_eq!(pick(&["--tail", "2"]), m(&[5, 6]));
    assert_eq!(pick(&["--head", "0"]), m(&[]));
    assert_eq!(pick(&["--tail", "0"]), m(&[]));
    assert_eq!(pick(&["--tail", "100"]), m(&[0, 1, 2, 3, 4, 5, 6]));
    assert_eq!(pick(&["--level", "warn", "--head", "1"]), m(&[2]));
    assert_eq!(pick(&["--level", "warn", "--tail", "2"]), m(&[4, 6]));
    assert_eq!(pick(&["--since", &ts(1), "--tail", "1"]), m(&[6]));
    env.fails(
        2,
        &["logs", "records", "--head", "1", "--tail", "1"],
        "--head",
    );

    // --json: one object per record.
    let recs = env.json(&["--source", "redis", "logs", "records"]);
    assert_eq!(recs.len(), 7);
    let r = &recs[6];
    assert_eq!(r["timestamp"], ts(6).as_str());
    assert_eq!(r["level"], "ERROR");
    assert_eq!(r["target"], TARGET);
    assert_eq!(r["message"], "giving up");
    assert_eq!(
        r["fields"],
        serde_json::json!({"user": "bar", "attempt": "2"})
    );
    assert_eq!(r["run"], id.as_str());
    assert_eq!(r["job"], "records");
    assert!(r["file"].as_str().unwrap().ends_with("cli_redis.rs"), "{r}");
    assert!(r["line"].as_u64().is_some(), "{r}");
    assert_eq!(recs[3]["level"], "TRACE");
    assert_eq!(recs[3]["fields"], serde_json::json!({}));
    let redis = env.ok(&["--json", "--source", "redis", "logs", "records"]);
    assert_eq!(
        redis,
        env.ok(&["--json", "--source", "local", "logs", "records"])
    );
}

#[test]
fn tail_of_a_redis_run_of_many_chunks_is_exactly_its_last_records_in_order() {
    let env = Env::new();
    let local = env.local();
    let lines = run_kid(
        Path::new(KID),
        &KidArgs::new(&local, "big", 1, 20_000, &[Kind::Ok]),
    );
    let KidLine::Run { id, .. } = &lines[0] else {
        panic!("{lines:?}")
    };
    env.ship(&local);
    let index: String = redis::cmd("HGET")
        .arg(format!("{}run:{id}", job_base("runlog", "big")))
        .arg("chunks")
        .query(&mut env.redis.conn())
        .unwrap();
    let chunks = index.lines().count();
    assert!(chunks >= 4, "the run spans several chunks: {index}");

    let read = |source: &str, args: &[&str]| -> Vec<String> {
        let mut a = vec!["--source", source, "logs", "big"];
        a.extend_from_slice(args);
        env.ok(&a).lines().map(str::to_owned).collect()
    };
    let full = read("redis", &[]);
    assert_eq!(full.len(), 20_000);
    assert_eq!(full, read("local", &[]), "Redis holds what the journal has");
    for (i, l) in full.iter().enumerate() {
        assert!(l.contains(&format!(" run 0 record {i}: ")), "line {i}: {l}");
    }
    for n in [1, 7, 600, 1500, 19_999, 20_000, 25_000] {
        let tail = read("redis", &["--tail", &n.to_string()]);
        assert_eq!(
            tail,
            full[full.len().saturating_sub(n)..],
            "--tail {n} from Redis"
        );
    }
    let head = read("redis", &["--head", "1500"]);
    assert_eq!(head, full[..1500]);
    // With a filter the tail is of the records that pass it.
    let warn: Vec<String> = full
        .iter()
        .filter(|l| l.contains(" WARN "))
        .cloned()
        .collect();
    assert_eq!(warn.len(), 5000);
    assert_eq!(
        read(
            "redis",
            &["--level", "warn", "--grep", "WARN|record", "--tail", "700"]
        ),
        warn[warn.len() - 700..]
    );
    assert_eq!(
        read("redis", &["--level", "warn", "--tail", "3"]),
        warn[warn.len() - 3..]
    );
    // A record-time range in the middle, then its tail.
    let ts = |i: usize| full[i].split(' ').next().unwrap().to_owned();
    let (from, to) = (ts(5000), ts(15_000));
    let mid: Vec<String> = full
        .iter()
        .filter(|l| {
            let t = l.split(' ').next().unwrap();
            t >= from.as_str() && t < to.as_str()
        })
        .cloned()
        .collect();
    assert_eq!(
        read("redis", &["--since", &from, "--until", &to]),
        mid,
        "a time range"
    );
    assert_eq!(
        read("redis", &["--since", &from, "--until", &to, "--tail", "10"]),
        mid[mid.len() - 10..]
    );
}

// ---------------------------------------------------------------------------------------------
// why
// ---------------------------------------------------------------------------------------------

#[test]
fn why_shows_the_last_failure_of_a_redis_run_its_error_and_the_records_before_it() {
    let env = Env::new();
    let other = env.other();
    let local = env.local();
    // Only in Redis: a job whose last failure is a panic, one whose last is an error record.
    run_kid(
        Path::new(KID),
        &KidArgs::new(
            &other,
            "panicky",
            4,
            30,
            &[Kind::Ok, Kind::Fail, Kind::Ok, Kind::Panic],
        ),
    );
    let failing = run_kid(
        Path::new(KID),
        &KidArgs::new(&other, "failing", 3, 30, &[Kind::Ok, Kind::Fail, Kind::Ok]),
    );
    run_kid(
        Path::new(KID),
        &KidArgs::new(&other, "fine", 2, 5, &[Kind::Ok]),
    );
    // A job process that dies inside its run, after an error record.
    run_kid(
        Path::new(KID),
        &KidArgs::new(&other, "crashy", 2, 5, &[Kind::Ok, Kind::Crash]),
    );
    env.ship(&other);
    // In both: the same output from either source.
    run_kid(
        Path::new(KID),
        &KidArgs::new(&local, "both", 2, 30, &[Kind::Ok, Kind::Panic]),
    );
    env.ship(&local);

    let out = env.ok(&["why", "panicky", "-n", "5"]);
    let runs = env.run_ids(&["panicky"]);
    assert!(out.contains(&format!("run:      {}\n", runs[3])), "{out}");
    assert!(out.contains("status:   failed\n"), "{out}");
    assert!(
        out.contains("error:    thread '") && out.contains("panicked at"),
        "{out}"
    );
    assert!(out.contains("panic in run 3: the input was bad"), "{out}");
    assert!(out.contains("stack backtrace:"), "{out}");
    assert!(out.contains("-- 5 record(s) before the failure"), "{out}");
    let recs: Vec<&str> = out.lines().filter(|l| l.starts_with("20")).collect();
    assert_eq!(
        recs.len(),
        7,
        "5 records, the panic and its backtrace: {out}"
    );
    for (i, l) in recs[..5].iter().enumerate() {
        assert!(l.contains(&format!("run 3 record {}: ", 25 + i)), "{out}");
    }
    assert!(
        recs[5..].iter().all(|l| l.contains("runlog::panic")),
        "{out}"
    );
    assert!(
        out.contains(&format!("runlog logs panicky {}", runs[3])),
        "{out}"
    );

    let out = env.ok(&["why", "failing", "-n", "3"]);
    let KidLine::Run { id, .. } = &failing[1] else {
        panic!("{failing:?}")
    };
    assert!(out.contains(&format!("run:      {id}\n")), "{out}");
    assert!(out.contains("status:   failed\n"), "{out}");
    assert!(
        out.contains("error:    giving up: run 1 failed on purpose\n"),
        "{out}"
    );
    let recs: Vec<&str> = out.lines().filter(|l| l.starts_with("20")).collect();
    assert_eq!(recs.len(), 4, "{out}");
    for (i, l) in recs[..3].iter().enumerate() {
        assert!(l.contains(&format!("run 1 record {}: ", 27 + i)), "{out}");
    }
    assert!(
        recs[3].contains(" ERROR ") && recs[3].contains("giving up: run 1 failed on purpose"),
        "{out}"
    );
    let out = env.ok(&["why", "failing", "-n", "0"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("20")).count(),
        1,
        "{out}"
    );

    // JSON: the run (from Redis), then its records.
    let lines = env.json(&["why", "failing", "-n", "2"]);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0]["id"], id.as_str());
    assert_eq!(lines[0]["source"], "redis");
    assert_eq!(lines[0]["status"], "failed");
    assert_eq!(lines[3]["level"], "ERROR");
    assert_eq!(lines[3]["run"], id.as_str());

    // The same failure reads the same whichever source holds it.
    let from_redis = env.ok(&["--source", "redis", "why", "both", "-n", "4"]);
    let from_local = env.ok(&["--source", "local", "why", "both", "-n", "4"]);
    assert_eq!(from_redis, from_local);
    assert_eq!(from_redis, env.ok(&["why", "both", "-n", "4"]));

    // A crash: the status says what happened; the error is its last ERROR record.
    let out = env.ok(&["why", "crashy", "-n", "2"]);
    assert!(
        out.contains("status:   crashed (the process died without ending the run"),
        "{out}"
    );
    assert!(out.contains("error:    about to crash in run 1\n"), "{out}");
    let recs: Vec<&str> = out.lines().filter(|l| l.starts_with("20")).collect();
    assert_eq!(recs.len(), 3, "{out}");
    assert!(
        recs[2].ends_with(" ERROR jobkid: about to crash in run 1"),
        "{out}"
    );

    // No failure: not found.
    env.fails(3, &["why", "fine"], "no failed or crashed run");
    env.fails(3, &["why", "no-such-job"], "no job \"no-such-job\"");
}

// ---------------------------------------------------------------------------------------------
// completions
// ---------------------------------------------------------------------------------------------

#[test]
fn completions_are_printed_without_reaching_for_redis() {
    let root = tempfile::tempdir().unwrap();
    // Redis configured where nothing listens: completions never read a store.
    let cfg = write_config(
        &root.path().join("c.toml"),
        &root.path().join("j"),
        Some(&format!("redis://127.0.0.1:{}/0", free_port())),
    );
    for shell in ["bash", "zsh", "fish"] {
        let o = runlog(&cfg, &["completions", shell]);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{shell}: {o:?}");
        assert!(o.stdout.len() > 200, "{shell}: {o:?}");
        for sub in ["list-jobs", "list-runs", "logs", "why", "completions"] {
            assert!(o.stdout.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let o = runlog(&cfg, &["completions", "bash"]);
    let script = root.path().join("runlog.bash");
    fs::write(&script, &o.stdout).unwrap();
    let st = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .expect("run bash to check the completion script: install bash");
    assert!(st.success(), "bash -n rejects the completion script");
    let o = runlog(&cfg, &["completions", "tcsh"]);
    assert_eq!(o.code, 2, "{o:?}");
}

// ---------------------------------------------------------------------------------------------
// Text from Redis on a terminal and in a pipe
// ---------------------------------------------------------------------------------------------

/// `runlog --config CONFIG ARGS...` on a terminal.
fn on_a_terminal(config: &Path, args: &[&str], no_color: bool) -> Out {
    let scratch = config.parent().expect("the config's directory");
    runlog_e2e::cli::on_a_terminal(
        scratch,
        &[OsStr::new("--config"), config.as_os_str()],
        args,
        no_color,
    )
}

#[test]
fn control_characters_from_redis_are_escaped_on_a_terminal_and_raw_in_a_pipe_or_with_raw() {
    let env = Env::new();
    let other = env.other();
    let job = "evil\x1b[2Jjob";
    write_run(&other, job, &[("note", "\x1b]0;pwned\x07")], true, || {
        log::error!(k = "v\x7fw"; "\x1b[31mred\x1b[0m and\rback");
    });
    env.ship(&other);
    let cfg = env.config();
    let raw_line = ": \x1b[31mred\x1b[0m and\rback k=v\x7fw";
    let escaped_line = ": \\x1b[31mred\\x1b[0m and\\rback k=v\\u{7f}w";

    // A pipe: as the job wrote it.
    let out = env.ok(&["logs", job, "last"]);
    assert!(out.ends_with(&format!("{raw_line}\n")), "{out:?}");
    assert!(!out.contains("\\x1b"), "{out:?}");
    // Tables escape job text in a pipe too: one row stays one line.
    assert!(env
        .ok(&["list-runs", job])
        .contains("note=\\x1b]0;pwned\\x07"));
    assert!(env.ok(&["list-jobs"]).contains("evil\\x1b[2Jjob"));
    // JSON escapes control characters everywhere.
    let out = env.ok(&["--json", "logs", job, "last"]);
    assert!(
        !out.contains('\x1b') && out.contains("\\u001b[31mred"),
        "{out:?}"
    );
    assert_eq!(
        json_lines(&out)[0]["message"],
        "\x1b[31mred\x1b[0m and\rback"
    );

    // A terminal: escaped, the level coloured unless NO_COLOR.
    let o = on_a_terminal(&cfg, &["logs", job, "last"], false);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{o:?}");
    let line = o.stdout.lines().next().unwrap();
    assert!(line.ends_with(escaped_line), "{line:?}");
    assert!(
        line.contains(" \x1b[1;31mERROR\x1b[0m "),
        "coloured: {line:?}"
    );
    assert_eq!(line.matches('\x1b').count(), 2, "only the colour: {line:?}");
    let o = on_a_terminal(&cfg, &["logs", job, "last"], true);
    assert!(!o.stdout.contains('\x1b'), "NO_COLOR: {:?}", o.stdout);
    assert!(o.stdout.contains(" ERROR cli_redis: \\x1b[31mred"), "{o:?}");
    let o = on_a_terminal(&cfg, &["--color", "never", "logs", job, "last"], false);
    assert!(!o.stdout.contains('\x1b'), "--color never: {:?}", o.stdout);
    let o = on_a_terminal(&cfg, &["list-runs", job], true);
    assert!(o.stdout.contains("note=\\x1b]0;pwned\\x07"), "{o:?}");
    assert!(!o.stdout.contains('\x1b'), "{o:?}");
    let o = on_a_terminal(&cfg, &["list-jobs"], true);
    assert!(o.stdout.contains("evil\\x1b[2Jjob"), "{o:?}");
    assert!(!o.stdout.contains('\x1b'), "{o:?}");
    // why's error line comes from Redis's `error` field: escaped as well.
    let o = on_a_terminal(&cfg, &["why", job], true);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout
            .contains("error:    \\x1b[31mred\\x1b[0m and\\rback\n"),
        "{o:?}"
    );
    assert!(!o.stdout.contains('\x1b'), "{o:?}");

    // --raw: as written, even on a terminal.
    let o = on_a_terminal(&cfg, &["--raw", "logs", job, "last"], true);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("\x1b[31mred\x1b[0m"), "{:?}", o.stdout);
}

#[test]
fn a_closed_pipe_ends_quietly_with_success_while_reading_redis() {
    let env = Env::new();
    let other = env.other();
    run_kid(
        Path::new(KID),
        &KidArgs::new(&other, "big", 1, 10_000, &[Kind::Ok]),
    );
    env.ship(&other);
    let err = env.root.path().join("stderr");
    let rc = env.root.path().join("rc");
    // Read to the end, it succeeds.
    let o = output(
        cmd()
            .arg("--config")
            .arg(env.config())
            .args(["--source", "redis", "logs", "big", "last"])
            .stdout(Stdio::null()),
    );
    assert_eq!(o.code, 0, "{o:?}");
    // Cut after one line: the exit status and stderr of runlog itself, not of the pipeline.
    let o = output(
        Command::new("sh")
            .arg("-c")
            .arg(
                r#"{ "$0" --config "$1" --source redis logs big last 2>"$2"; echo $? >"$3"; } | head -1"#,
            )
            .arg(bin())
            .arg(env.config())
            .arg(&err)
            .arg(&rc)
            .stdin(Stdio::null())
            .env_remove("RUNLOG_CONFIG")
            .env_remove("RUNLOG_JOURNAL_DIR")
            .env_remove("RUNLOG_REDIS_URL"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout.lines().count(), 1, "{o:?}");
    assert!(o.stdout.contains(" run 0 record 0: "), "{o:?}");
    assert_eq!(fs::read_to_string(&err).unwrap(), "", "runlog's stderr");
    assert_eq!(
        fs::read_to_string(&rc).unwrap().trim(),
        "0",
        "runlog's exit status"
    );
}

/// Bug: the shipper uploaded a run with corruption in the middle of a segment only up to the
/// bad frame, so Redis hid every record after it. It uploads them too, behind the same marker
/// record the journal's readers show, and the run reads the same from both.
#[test]
fn a_run_damaged_mid_segment_reads_the_same_from_redis_and_the_journal() {
    use runlog::journal::frame::FRAME_HEADER_LEN;
    let env = Env::new();
    let id = write_run(&env.other(), JOB, &[], false, || {
        for i in 0..6 {
            log::info!(target: TARGET, "record {i}");
        }
    });
    let seg = runlog::journal::layout::job_dir(&env.other(), JOB).join(format!("{id}.000000.seg"));
    let scan = runlog::journal::reader::scan_file(&seg).unwrap();
    // Frame 0 is BEGIN: damage record 2 (frame 3) in its payload.
    let (victim, next) = (scan.frames[3].offset, scan.frames[4].offset);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[victim as usize + FRAME_HEADER_LEN + 2] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();

    env.ship(&env.other());
    let o = env.run(&["--source", "redis", "logs", JOB, &id]);
    assert_eq!(o.code, 0, "{o:?}");
    let from_redis: Vec<String> = o.stdout.lines().map(str::to_owned).collect();
    let marker = format!(
        "runlog::damage: -- {} bytes unreadable at {id}.000000.seg:{victim} --",
        next - victim
    );
    let shown: Vec<&str> = from_redis.iter().map(|l| message(l)).collect();
    assert_eq!(shown.len(), 6, "{o:?}");
    assert_eq!(shown[..2], ["record 0", "record 1"], "{o:?}");
    assert_eq!(shown[3..], ["record 3", "record 4", "record 5"], "{o:?}");
    assert!(from_redis[2].ends_with(&marker), "{o:?}");
    // The same lines from the journal the run was shipped from.
    let cfg = write_config(&env.root.path().join("other.toml"), &env.other(), None);
    let o = runlog(&cfg, &["logs", JOB, &id]);
    assert_eq!(o.code, 0, "{o:?}");
    let from_journal: Vec<String> = o.stdout.lines().map(str::to_owned).collect();
    assert_eq!(from_redis, from_journal);

    let o = env.run(&["--json", "--source", "redis", "list-runs", JOB]);
    let runs = json_lines(&o.stdout);
    assert_eq!(runs[0]["status"], "damaged", "{o:?}");
    assert_eq!(runs[0]["records"], 6, "{o:?}");
    let o = runlog(&cfg, &["--json", "list-runs", JOB]);
    let local = json_lines(&o.stdout);
    assert_eq!(local[0]["status"], "damaged", "{o:?}");
    assert_eq!(local[0]["records"], runs[0]["records"], "{o:?}");
    let o = env.run(&["--source", "redis", "list-jobs"]);
    assert!(
        o.stdout.lines().nth(1).unwrap().contains(" damaged "),
        "{o:?}"
    );
}

/// Bug: `list-jobs` counted a `runs` member whose hash is missing (evicted, deleted) while
/// `list-runs` left it out, and the spec said a job in `jobs` with no visible run is shown
/// with no runs while both commands leave it out. One rule: only runs whose hash reads are
/// counted or listed, and a job with none is not shown (`list-runs` exits 3).
#[test]
fn list_jobs_counts_exactly_the_runs_list_runs_shows() {
    let env = Env::new();
    let ids: Vec<String> = (0..3)
        .map(|i| write_run(&env.other(), JOB, &[], false, || log::info!("run {i}")))
        .collect();
    env.ship(&env.other());
    let mut conn = env.redis.conn();
    let base = job_base("runlog", JOB);
    let deleted: i64 = redis::cmd("DEL")
        .arg(format!("{base}run:{}", ids[1]))
        .query(&mut conn)
        .unwrap();
    assert_eq!(deleted, 1);
    let _: i64 = redis::cmd("ZADD")
        .arg("runlog:jobs")
        .arg(1)
        .arg("ghost")
        .query(&mut conn)
        .unwrap();

    let o = env.run(&["--json", "--source", "redis", "list-runs", JOB]);
    assert_eq!(o.code, 0, "{o:?}");
    let shown: Vec<String> = json_lines(&o.stdout)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, [ids[0].clone(), ids[2].clone()], "{o:?}");
    let o = env.run(&["--source", "redis", "list-jobs"]);
    assert_eq!(o.code, 0, "{o:?}");
    let rows = job_rows(&o.stdout);
    assert_eq!(
        rows,
        [(JOB.to_owned(), "ok".to_owned(), "2".to_owned())],
        "{o:?}"
    );
    env.fails(3, &["--source", "redis", "list-runs", "ghost"], "no job");
}

/// Bug: a record frame whose CRC is valid but whose payload does not decode was shipped inside
/// a chunk, and readers then rejected that whole chunk — every other record in it — as damaged.
/// It is a problem of the run, as in the journal, and the other records read as ever.
#[test]
fn a_record_that_does_not_decode_is_a_problem_of_its_run_not_a_lost_chunk() {
    use runlog::journal::frame::{encode_frame, FrameType};
    use runlog::journal::payload::Frame;
    let env = Env::new();
    let id = write_run(&env.other(), JOB, &[], false, || {
        for i in 0..10 {
            log::info!(target: TARGET, "record {i}");
        }
    });
    // Record 4 gets level 9 (no such level) and a CRC that matches: a valid frame, a payload
    // that does not decode.
    let seg = runlog::journal::layout::job_dir(&env.other(), JOB).join(format!("{id}.000000.seg"));
    let scan = runlog::journal::reader::scan_file(&seg).unwrap();
    let at = scan
        .frames
        .iter()
        .filter(|f| matches!(f.frame, Ok(Frame::Record(_))))
        .nth(4)
        .unwrap()
        .offset as usize;
    let mut bytes = fs::read(&seg).unwrap();
    let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    let mut payload = bytes[at + 12..at + 12 + len].to_vec();
    payload[8] = 9;
    let frame = encode_frame(FrameType::Record, &payload);
    bytes[at..at + frame.len()].copy_from_slice(&frame);
    fs::write(&seg, &bytes).unwrap();

    env.ship(&env.other());
    let o = env.run(&["--source", "redis", "logs", JOB, &id]);
    assert_eq!(o.code, 0, "{o:?}");
    let shown: Vec<&str> = o.stdout.lines().map(message).collect();
    let want: Vec<String> = (0..10)
        .filter(|&i| i != 4)
        .map(|i| format!("record {i}"))
        .collect();
    assert_eq!(shown, want, "{o:?}");
    let o = env.run(&["--json", "--source", "redis", "list-runs", JOB]);
    assert!(o.stderr.contains("damaged in 1 place(s)"), "{o:?}");
    let runs = json_lines(&o.stdout);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["records"], 9, "{runs:?}");
    assert_eq!(
        runs[0]["problems"].as_array().map(Vec::len),
        Some(1),
        "{runs:?}"
    );
}

/// A seed user's `.runlog.conf` named Redis with redis-py's keys (host, port, db, password);
/// runlog ignored the file, so jobs, shipper and CLI all missed that Redis.
#[test]
fn a_seed_runlog_conf_names_a_password_protected_redis_by_host_port_db_and_password() {
    let root = tempfile::tempdir().unwrap();
    let cwd = root.path().join("cwd");
    let journal = root.path().join("journal");
    fs::create_dir_all(&cwd).unwrap();
    // `%` was written `%%` for the original's SafeConfigParser; `;` and `#` inside a value are
    // not comments there.
    let password = "s3cr%t;#1";
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(password)
        .query::<()>(&mut conn)
        .unwrap();
    fs::write(
        cwd.join(".runlog.conf"),
        format!(
            "[runlog]\nmax_logs: 5\njournal_dir: {}\n\n[runlog-redis]\nhost: 127.0.0.1\n\
             port: {}\ndb: 3\npassword: s3cr%%t;#1\n",
            journal.display(),
            redis.port()
        ),
    )
    .unwrap();
    let in_cwd = |mut c: Command| {
        c.current_dir(&cwd)
            .env("HOME", root.path())
            .env("XDG_CONFIG_HOME", root.path().join("config"));
        c
    };
    let o = output(in_cwd(cmd()).args(["exec", "seed-job", "--", "echo", "from the seed"]));
    assert_eq!(o.code, 0, "{o:?}");
    let mut ship = in_cwd(Command::new(runlog_e2e::shipper::shipper_bin()));
    runlog_e2e::shipper::clean_env(&mut ship);
    let st = ship.arg("--once").stdin(Stdio::null()).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let o = output(in_cwd(cmd()).args(["--source", "redis", "logs", "seed-job", "last"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("from the seed"), "{o:?}");
    // In database 3, as `db: 3` said.
    let dbsize = |conn: &mut redis::Connection, db: u32| -> u64 {
        redis::cmd("SELECT").arg(db).query::<()>(conn).unwrap();
        redis::cmd("DBSIZE").query(conn).unwrap()
    };
    assert!(dbsize(&mut conn, 3) > 0);
    assert_eq!(dbsize(&mut conn, 0), 0);
}
