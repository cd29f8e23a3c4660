//! Torture suite, security defaults: a private journal whatever the umask, no file read
//! through a symlink planted in the journal, and the least Redis privileges that work (the
//! ACL rules of spec/redis.md).
//!
//! The binaries must be built first (`cargo build --workspace`); the Redis scenario starts its
//! own `redis-server` (never the one on port 6379).

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use runlog_e2e::cli::{logger, output, runlog_cmd, Out};
use runlog_e2e::redis::{check_consistent, create_acl_users, RedisServer};
use runlog_e2e::shipper::{
    clean_env, shipper_bin, toml_str, KidArgs, Kind, Shipper, ShipperConfig,
};
use runlog_e2e::torture::conclude;

const KID: &str = env!("CARGO_BIN_EXE_jobkid");

/// `cmd` run with umask 000.
fn permissive(mut cmd: Command) -> Command {
    // SAFETY: umask is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    cmd
}

/// Every directory and file under `dir` (not following symlinks) with its permission bits.
fn modes(dir: &Path, out: &mut Vec<(PathBuf, bool, u32)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        out.push((e.path(), md.is_dir(), md.permissions().mode() & 0o7777));
        if md.is_dir() {
            modes(&e.path(), out);
        }
    }
}

#[test]
fn torture_under_umask_000_every_journal_directory_is_0700_and_every_file_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let redis = RedisServer::start();

    // The library, in a job process with umask 000: ok, failed and crashed-free runs.
    let kid = KidArgs::new(
        &journal,
        "perm job",
        4,
        20,
        &[Kind::Ok, Kind::Fail, Kind::Cancel],
    );
    let mut c = Command::new(KID);
    c.args(kid.to_args());
    clean_env(&mut c);
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let st = permissive(c).status().unwrap();
    assert!(st.success(), "jobkid: {st}");

    // The CLI's exec, with umask 000.
    let mut c = runlog_cmd();
    c.arg("--journal-dir").arg(&journal).args([
        "exec",
        "exec job",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    let o = output(&mut permissive(c));
    assert_eq!(o.code, 0, "{o:?}");

    // The shipper, with umask 000: shipper/, its lock, every .shipped.
    let cfg = ShipperConfig::new(&journal, &redis.url(), 10, 10).write(&tmp.path().join("s.toml"));
    let mut c = Command::new(shipper_bin());
    c.arg("--config").arg(&cfg).arg("--once");
    let log = tmp.path().join("shipper.log");
    let mut s = Shipper::spawn_cmd(permissive(c), &log);
    let st = s
        .wait_timeout(Duration::from_secs(60))
        .expect("shipper --once ends");
    assert!(st.success(), "{}", s.log());
    check_consistent(&mut redis.conn(), "runlog").unwrap();

    let mut all = Vec::new();
    modes(&journal, &mut all);
    all.push((
        journal.clone(),
        true,
        std::fs::metadata(&journal).unwrap().permissions().mode() & 0o7777,
    ));
    let mut failures = Vec::new();
    for (p, is_dir, mode) in &all {
        let want = if *is_dir { 0o700 } else { 0o600 };
        if *mode != want {
            failures.push(format!("{} has mode {mode:o}, not {want:o}", p.display()));
        }
    }
    let names: Vec<String> = all
        .iter()
        .map(|(p, _, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for must in ["jobs", "shipper", ".shipped", "lock"] {
        assert!(names.iter().any(|n| n == must), "no {must} in {names:?}");
    }
    conclude(
        "umask 000: modes of everything the library, exec and the shipper create",
        all.len() as u64,
        &failures,
        0,
    );
}

#[test]
fn torture_redis_acl_users_ship_with_write_access_to_the_prefix_only_and_read_with_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let redis = RedisServer::start();
    let mut admin = redis.conn();
    create_acl_users(&mut admin);
    let rl = logger(&journal);
    let id = {
        let run = rl.runlog("acl job").unwrap();
        run.label("user", "bar");
        log::info!("shipped by the shipper user");
        log::error!("why reads this");
        run.fail();
        run.id().to_owned()
    };
    // The shipper's user in the url.
    let url = format!(
        "redis://runlog-shipper:shipper-secret@127.0.0.1:{}/0",
        redis.port()
    );
    let cfg = ShipperConfig::new(&journal, &url, 10, 10).write(&tmp.path().join("s.toml"));
    let log = runlog_e2e::shipper::ship_once_ok(&cfg, &tmp.path().join("shipper.log"));
    assert!(!log.contains("NOPERM"), "{log}");
    let store = check_consistent(&mut admin, "runlog").unwrap();
    assert_eq!(store.ids("acl job"), std::slice::from_ref(&id));

    // The CLI with the reader's user as separate fields; its journal is elsewhere.
    let cli_cfg = tmp.path().join("cli.toml");
    std::fs::write(
        &cli_cfg,
        format!(
            "[runlog]\njournal-dir = {}\n[runlog-redis]\nhost = \"127.0.0.1\"\nport = {}\n\
             username = \"runlog-reader\"\npassword = \"reader-secret\"\n",
            toml_str(&tmp.path().join("empty").to_string_lossy()),
            redis.port()
        ),
    )
    .unwrap();
    let mut failures = Vec::new();
    let mut tried = 0;
    let cli = |args: &[&str]| -> Out {
        let mut c = runlog_cmd();
        c.arg("--config")
            .arg(&cli_cfg)
            .args(["--source", "redis"])
            .args(args);
        output(&mut c)
    };
    for (args, want) in [
        (&["list-jobs"][..], "acl job"),
        (&["list-runs", "acl job"], id.as_str()),
        (&["logs", "acl job", "last"], "shipped by the shipper user"),
        (&["logs", "acl job", "--tail", "1"], "why reads this"),
        (&["why", "acl job"], "why reads this"),
    ] {
        tried += 1;
        let o = cli(args);
        if o.code != 0 || !o.stdout.contains(want) || o.stderr.contains("NOPERM") {
            failures.push(format!("reader: runlog {args:?}: {o:?}"));
        }
    }

    // Neither user can do more.
    let as_user = |user: &str, pw: &str| {
        let c = redis::Client::open(format!("redis://{user}:{pw}@127.0.0.1:{}/0", redis.port()))
            .unwrap();
        c.get_connection().unwrap()
    };
    let mut reader = as_user("runlog-reader", "reader-secret");
    let mut shipper = as_user("runlog-shipper", "shipper-secret");
    let denied: [(&str, &[&str]); 13] = [
        ("reader", &["SET", "runlog:x", "1"]),
        ("reader", &["DEL", "runlog:jobs"]),
        ("reader", &["ZADD", "runlog:jobs", "1", "x"]),
        ("reader", &["GET", "other:x"]),
        ("reader", &["FLUSHALL"]),
        ("reader", &["KEYS", "*"]),
        ("reader", &["CONFIG", "GET", "*"]),
        ("shipper", &["SET", "other:x", "1"]),
        ("shipper", &["GET", "other:x"]),
        ("shipper", &["FLUSHALL"]),
        ("shipper", &["KEYS", "*"]),
        ("shipper", &["EVAL", "return 1", "0"]),
        ("shipper", &["CONFIG", "SET", "save", ""]),
    ];
    for (user, args) in denied {
        tried += 1;
        let conn = if user == "reader" {
            &mut reader
        } else {
            &mut shipper
        };
        let r: redis::RedisResult<redis::Value> = redis::cmd(args[0]).arg(&args[1..]).query(conn);
        match r {
            Err(e) if e.to_string().contains("no permissions") => {}
            other => failures.push(format!("{user} may run {args:?}: {other:?}")),
        }
    }
    conclude(
        "Redis ACL users: shipper writes its prefix only, reader reads only",
        tried,
        &failures,
        0,
    );
}

/// A journal with job `victim`, and outside it another journal whose `victim` run logged a
/// secret; (journal, outside journal).
fn journal_and_outside() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let outside = tmp.path().join("outside");
    let rl = logger(&journal);
    drop(rl.runlog("victim").unwrap());
    let other = runlog::RunLogger::builder()
        .journal_dir(&outside)
        .no_config_file()
        .build()
        .unwrap();
    {
        let _r = other.runlog("victim").unwrap();
        log::info!("the secret outside the journal");
    }
    (tmp, journal, outside)
}

fn cli_in(journal: &Path, args: &[&str]) -> Out {
    let mut c = runlog_cmd();
    c.arg("--journal-dir").arg(journal).args(args);
    output(&mut c)
}

#[test]
fn a_segment_symlinked_to_a_file_outside_the_journal_is_refused_naming_the_path() {
    let (_tmp, journal, outside) = journal_and_outside();
    let src_dir = outside.join("jobs").join("victim");
    let seg = std::fs::read_dir(&src_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let planted = journal
        .join("jobs")
        .join("victim")
        .join(seg.file_name().unwrap());
    std::os::unix::fs::symlink(&seg, &planted).unwrap();
    let j = journal.to_string_lossy().into_owned();
    for args in [
        &["list-runs", "victim"][..],
        &["logs", "victim", "last"],
        &["journal", "verify", &j],
        &["journal", "dump", &j],
    ] {
        let o = cli_in(&journal, args);
        assert!(
            !o.stdout.contains("the secret"),
            "{args:?} read through the symlink: {o:?}"
        );
        assert_ne!(o.code, 0, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains(&*planted.to_string_lossy()) && o.stderr.contains("symlink"),
            "{args:?}: {o:?}"
        );
    }
}

#[test]
fn a_job_directory_symlinked_outside_the_journal_is_refused_naming_the_path() {
    let (_tmp, journal, outside) = journal_and_outside();
    let planted = journal.join("jobs").join("other");
    std::os::unix::fs::symlink(outside.join("jobs").join("victim"), &planted).unwrap();
    let o = cli_in(&journal, &["list-jobs"]);
    assert!(o.stderr.contains(&*planted.to_string_lossy()), "{o:?}");
    for args in [&["logs", "victim", "last"][..], &["list-runs", "victim"]] {
        let o = cli_in(&journal, args);
        assert!(!o.stdout.contains("the secret"), "{args:?}: {o:?}");
    }
}

/// Every file under `dir` with its contents.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(tree(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_job_directory_replaced_by_a_link_is_refused_by_readers_the_writer_retention_and_the_shipper() {
    let (tmp, journal, outside) = journal_and_outside();
    // The job's own directory becomes a link to another journal's directory of that job.
    let planted = journal.join("jobs").join("victim");
    std::fs::remove_dir_all(&planted).unwrap();
    std::os::unix::fs::symlink(outside.join("jobs").join("victim"), &planted).unwrap();
    let before = tree(&outside);
    let named = |text: &str| text.contains(&*planted.to_string_lossy()) && text.contains("symlink");

    for args in [&["logs", "victim", "last"][..], &["list-runs", "victim"]] {
        let o = cli_in(&journal, args);
        assert_ne!(o.code, 0, "{args:?}: {o:?}");
        assert!(named(&o.stderr), "{args:?}: {o:?}");
        assert!(!o.stdout.contains("the secret"), "{args:?}: {o:?}");
    }

    // The library writes nothing through it (the run's records are dropped and counted).
    let rl = logger(&journal);
    {
        let _r = rl.runlog("victim").unwrap();
        log::info!("must not land outside the journal");
    }
    let err = runlog::journal::retention::sweep_job(&planted, 0, 0, false)
        .expect_err("retention through a link");
    assert!(named(&err.to_string()), "{err}");

    // The shipper reports it every pass and uploads nothing from it.
    let redis = RedisServer::start();
    let cfg = ShipperConfig::new(&journal, &redis.url(), 10, 10).write(&tmp.path().join("s.toml"));
    let log = runlog_e2e::shipper::ship_once_ok(&cfg, &tmp.path().join("shipper.log"));
    assert!(named(&log), "{log}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*victim*")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(keys, Vec::<String>::new());
    assert_eq!(tree(&outside), before, "a file outside the journal changed");
}

#[test]
fn a_shipper_lock_planted_as_a_link_is_refused_and_its_target_left_as_it_was() {
    let (tmp, journal, _outside) = journal_and_outside();
    let victim = tmp.path().join("precious.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let sdir = journal.join("shipper");
    std::fs::create_dir_all(&sdir).unwrap();
    let lock = sdir.join("lock");
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let redis = RedisServer::start();
    let cfg = ShipperConfig::new(&journal, &redis.url(), 10, 10).write(&tmp.path().join("s.toml"));
    let (status, log) = runlog_e2e::shipper::ship_once(&cfg, &tmp.path().join("shipper.log"));
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&*lock.to_string_lossy()) && log.contains("symlink"),
        "{log}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");

    // The state directory itself as a link: refused too.
    std::fs::remove_dir_all(&sdir).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &sdir).unwrap();
    let (status, log) = runlog_e2e::shipper::ship_once(&cfg, &tmp.path().join("shipper2.log"));
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&*sdir.to_string_lossy()) && log.contains("symlink"),
        "{log}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn a_journal_directory_reached_through_a_link_is_read_as_usual() {
    let (tmp, journal, _outside) = journal_and_outside();
    let link = tmp.path().join("journal-link");
    std::os::unix::fs::symlink(&journal, &link).unwrap();
    let o = cli_in(&link, &["list-runs", "victim"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout.lines().count(), 2, "a header and the run: {o:?}");
}

// ---------------------------------------------------------------------------------------------
// A host where jobs run as several users
// ---------------------------------------------------------------------------------------------

/// Users and a group made for one test with `useradd`/`groupadd`, removed when dropped.
struct HostUsers {
    group: String,
    users: Vec<String>,
}

impl HostUsers {
    fn new(group: &str) -> HostUsers {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test makes users and a group (useradd, groupadd) and runs jobs as them with \
             setpriv: run it as root (CI does)"
        );
        // A group left by a killed earlier run of this test.
        let _ = Command::new("groupdel").arg(group).output();
        run_ok(Command::new("groupadd").arg(group));
        HostUsers {
            group: group.to_owned(),
            users: Vec::new(),
        }
    }

    /// A user with no home and no login; in the shared group if `member`.
    fn add(&mut self, name: &str, member: bool) -> String {
        let _ = Command::new("userdel").arg(name).output();
        let mut c = Command::new("useradd");
        c.args([
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
        ]);
        if member {
            c.args(["--groups", &self.group]);
        }
        run_ok(c.arg(name));
        self.users.push(name.to_owned());
        name.to_owned()
    }
}

impl Drop for HostUsers {
    fn drop(&mut self) {
        for u in &self.users {
            let _ = Command::new("userdel").arg(u).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

fn run_ok(c: &mut Command) {
    let o = c
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e} (install passwd / util-linux)"));
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `program ARGS` as `user`, with the user's groups, umask 077 (the strictest a job may have),
/// and no `RUNLOG_*` variable.
fn as_user(user: &str, program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", user, "--regid", user, "--init-groups", "--"])
        .arg(program)
        .stdin(Stdio::null());
    clean_env(&mut c);
    c.env_remove("NO_COLOR");
    // SAFETY: umask is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    c
}

/// Jobs run as several people and service users write one journal shared by a group, and
/// one shipper, a member running as its own service user, ships them all. Before, the
/// journal was 0700/0600 per user: the second user's job could not write the first one's
/// job directory and the shipper could not read what they wrote.
#[test]
fn jobs_of_three_users_share_a_group_journal_one_shipper_ships_them_and_an_outsider_is_refused() {
    use std::os::unix::fs::MetadataExt as _;
    let tag = format!("rl{}", std::process::id() % 100_000);
    let mut host = HostUsers::new(&format!("{tag}grp"));
    let group = host.group.clone();
    let people: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| host.add(&format!("{tag}{s}"), true))
        .collect();
    let service = host.add(&format!("{tag}ship"), true);
    let outsider = host.add(&format!("{tag}out"), false);

    let redis = RedisServer::start();
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let journal = root.path().join("journal");
    // What the README tells the admin to do.
    run_ok(
        Command::new("install")
            .args(["-d", "-m", "2770", "-o", &service, "-g", &group])
            .arg(&journal),
    );
    let conf = root.path().join("runlog.toml");
    std::fs::write(
        &conf,
        format!(
            "[runlog]\njournal-dir = {}\njournal-group = {}\n\n[runlog-redis]\nurl = {}\n",
            toml_str(&journal.to_string_lossy()),
            toml_str(&group),
            toml_str(&redis.url())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let runlog_bin = runlog_e2e::cli::runlog_bin();
    let runlog_as = |user: &str, args: &[&str]| -> Out {
        output(
            as_user(user, &runlog_bin)
                .arg("--config")
                .arg(&conf)
                .args(args),
        )
    };

    // The shipper may start first: what it creates must not lock the jobs out.
    let ship = || {
        output(
            as_user(&service, &shipper_bin())
                .arg("--config")
                .arg(&conf)
                .arg("--once"),
        )
    };
    let o = ship();
    assert_eq!(o.code, 0, "{o:?}");

    // Each person runs a job of their own and one job all three share (one job directory,
    // made by the first, written by the others).
    for p in &people {
        for job in [format!("job-{p}"), "shared-job".to_owned()] {
            let o = runlog_as(p, &["exec", &job, "--", "echo", &format!("hello from {p}")]);
            assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{p} {job}: {o:?}");
        }
    }
    // Members read each other's runs.
    let o = runlog_as(
        &people[1],
        &[
            "--source",
            "local",
            "logs",
            &format!("job-{}", people[0]),
            "last",
        ],
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains(&format!("hello from {}", people[0])),
        "{o:?}"
    );

    // Everything in the journal belongs to the group, directories setgid and group-writable,
    // files group-readable and -writable, whatever the jobs' umask 077.
    let gid = std::fs::metadata(&journal).unwrap().gid();
    let mut all = Vec::new();
    modes(&journal, &mut all);
    for (path, is_dir, mode) in &all {
        if path.starts_with(journal.join("shipper")) {
            continue;
        }
        let want = if *is_dir { 0o2770 } else { 0o660 };
        assert_eq!(*mode, want, "{} is {mode:o}", path.display());
        assert_eq!(
            std::fs::metadata(path).unwrap().gid(),
            gid,
            "{}",
            path.display()
        );
    }

    // One shipper, the service user, ships every user's runs.
    let o = ship();
    assert_eq!(o.code, 0, "{o:?}");
    let from_redis = |args: &[&str]| {
        let o = output(
            runlog_cmd()
                .arg("--config")
                .arg(&conf)
                .args(["--source", "redis"])
                .args(args),
        );
        assert_eq!(o.code, 0, "{o:?}");
        o.stdout
    };
    let shared = from_redis(&["--json", "list-runs", "shared-job"]);
    assert_eq!(shared.lines().count(), 3, "{shared}");
    for p in &people {
        let text = from_redis(&["logs", &format!("job-{p}"), "last"]);
        assert!(text.contains(&format!("hello from {p}")), "{text}");
    }
    // The shipper recorded what it shipped where the jobs' retention reads it.
    let shipped: Vec<_> = all_files(&journal)
        .into_iter()
        .filter(|p| p.ends_with(".shipped"))
        .collect();
    assert!(shipped.len() >= 4, "{shipped:?}");
    for p in &shipped {
        assert_eq!(
            std::fs::metadata(p).unwrap().mode() & 0o777,
            0o660,
            "{}",
            p.display()
        );
    }

    // A user outside the group: the command still runs (runlog never stops a job), its run is
    // refused with the reason and the fix; and it can read nothing.
    let o = runlog_as(&outsider, &["exec", "sneaky", "--", "echo", "outside"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "outside\n");
    assert!(
        o.stderr.contains(&format!("shared by group `{group}`"))
            && o.stderr.contains(&format!("usermod -aG {group}"))
            && o.stderr.contains(&journal.display().to_string()),
        "{o:?}"
    );
    assert!(!journal.join("sneaky").exists());
    let o = runlog_as(&outsider, &["--source", "local", "list-jobs"]);
    assert_ne!(o.code, 0, "{o:?}");
    assert!(!o.stdout.contains("job-"), "{o:?}");
    assert!(
        o.stderr.contains(&journal.display().to_string()) && o.stderr.contains("group"),
        "{o:?}"
    );
    let o = runlog_as(
        &outsider,
        &["--source", "local", "logs", "shared-job", "last"],
    );
    assert_ne!(o.code, 0, "{o:?}");
    assert!(!o.stdout.contains("hello"), "{o:?}");
    let seg = all_files(&journal)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let o = output(as_user(&outsider, Path::new("/bin/cat")).arg(&seg));
    assert_ne!(o.code, 0, "an outsider read {}: {o:?}", seg.display());
}

/// Every file (not directory) under `dir`.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    modes(dir, &mut all);
    all.into_iter()
        .filter(|(_, is_dir, _)| !is_dir)
        .map(|(p, _, _)| p)
        .collect()
}
