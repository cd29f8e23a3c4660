//! TLS and least privilege against a TLS-only `redis-server` of each test (`--port 0
//! --tls-port P`, a private CA made with `openssl`; never the server on 6379):
//!
//! - mutual TLS (`tls-auth-clients yes`): the shipper and the CLI connect with
//!   `tls-cert-file` / `tls-key-file`, and are refused, clearly, without a client certificate
//!   or with one from another CA;
//! - a `tls-ca-file` of another CA: the server's certificate is not trusted, the shipper and
//!   the CLI refuse to talk to it, nothing is written; `#insecure` cannot turn that off;
//! - the ACL users of spec/redis.md over TLS: the shipper's user ships, the reader's user runs
//!   every read command of the CLI and can write nothing;
//! - a wrong setup named with its fix, by the CLI (exit 4 with `--source redis`, the journal
//!   alone and a one-line warning with `--source auto`) and by the shipper: a server with
//!   `requirepass`, a wrong password, an ACL user without a rule, TLS on one side only, an HTTP
//!   server on the port, a Redis older than 6.2, a replica.
//!
//! The binaries must be built first (`cargo build --workspace`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runlog_e2e::cli::{logger, output, runlog_cmd, Out};
use runlog_e2e::redis::{
    check_consistent, create_acl_users, dump_all, FakeServer, RedisServer, READER_ACL,
    READER_PASSWORD, READER_USER, SHIPPER_ACL, SHIPPER_PASSWORD, SHIPPER_USER,
};
use runlog_e2e::shipper::{poll, ship_once, ship_once_ok, toml_str, Shipper, ShipperConfig};
use runlog_e2e::tls::Certs;

const JOB: &str = "tls job";

/// A test's directory, its certificates, and a journal with two ended runs of [`JOB`]: an ok
/// one and a failed one.
struct Setup {
    dir: tempfile::TempDir,
    certs: Certs,
    journal: PathBuf,
    ok_id: String,
    failed_id: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = Certs::make(&dir.path().join("certs"));
        let journal = dir.path().join("journal");
        let rl = logger(&journal);
        let ok_id = {
            let run = rl.runlog(JOB).expect("start a run");
            run.label("user", "bar");
            log::info!("shipped over TLS");
            run.id().to_owned()
        };
        let failed_id = {
            let run = rl.runlog(JOB).expect("start a run");
            log::info!("the record before the failure");
            log::error!("the TLS job failed here");
            run.fail();
            run.id().to_owned()
        };
        Setup {
            dir,
            certs,
            journal,
            ok_id,
            failed_id,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A shipper config for `url` with more `[runlog-redis]` lines.
    fn shipper_config(&self, name: &str, url: &str, redis_lines: &str) -> PathBuf {
        let mut c = ShipperConfig::new(&self.journal, url, 10, 10);
        c.redis_extra = redis_lines.to_owned();
        c.write(&self.path(name))
    }

    /// A CLI config for `url` with more `[runlog-redis]` lines; its journal is empty, so what
    /// the CLI prints comes from Redis.
    fn cli_config(&self, name: &str, url: &str, redis_lines: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(
            &path,
            format!(
                "[runlog]\njournal-dir = {}\n[runlog-redis]\nurl = {}\nconnect-timeout = \"2s\"\n\
                 io-timeout = \"5s\"\n{redis_lines}",
                toml_str(&self.path("empty-journal").to_string_lossy()),
                toml_str(url),
            ),
        )
        .expect("write the CLI config");
        path
    }

    /// The read commands of the CLI, each with what its output must show.
    fn read_commands(&self) -> Vec<(Vec<&str>, &str)> {
        let (ok, failed) = (self.ok_id.as_str(), self.failed_id.as_str());
        vec![
            (vec!["list-jobs"], JOB),
            (vec!["list-jobs", "--json"], "\"last_status\":\"failed\""),
            (vec!["list-runs", JOB], ok),
            (vec!["list-runs", JOB, "--status", "failed"], failed),
            (vec!["list-runs", JOB, "--label", "user=bar", "--json"], ok),
            (vec!["logs", JOB, ok], "shipped over TLS"),
            (
                vec!["logs", JOB, "last", "--tail", "1"],
                "the TLS job failed here",
            ),
            (
                vec!["logs", JOB, "last-failed", "--json"],
                "the TLS job failed here",
            ),
            (
                vec!["logs", JOB, "-1", "--grep", "before"],
                "the record before",
            ),
            // An ended run: -f prints it and returns.
            (vec!["logs", JOB, "last", "-f"], "the TLS job failed here"),
            (vec!["why", JOB], "the TLS job failed here"),
        ]
    }
}

fn path_str(p: &Path) -> String {
    toml_str(&p.to_string_lossy())
}

/// `runlog --config CONFIG --source redis ARGS...` with `env` set.
fn cli(config: &Path, args: &[&str], env: &[(&str, &Path)]) -> Out {
    let mut c = runlog_cmd();
    c.arg("--config")
        .arg(config)
        .args(["--source", "redis"])
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    output(&mut c)
}

/// Every read command of the CLI succeeds with `config` and shows what it should.
fn assert_reads(s: &Setup, config: &Path, env: &[(&str, &Path)]) {
    let mut failures = Vec::new();
    for (args, want) in s.read_commands() {
        let o = cli(config, &args, env);
        // `logs -f` ends with how the run ended, on stderr; nothing else may be there.
        let warned = o.stderr.lines().any(|l| !l.starts_with("-- run ended: "));
        if o.code != 0 || !o.stdout.contains(want) || warned {
            failures.push(format!("runlog {args:?} should print {want:?}: {o:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A CLI read that must be refused: exit status 4 (store unreachable), nothing on stdout, and
/// a message naming Redis, TLS and each of `words`.
fn assert_cli_refused(config: &Path, words: &[&str]) {
    for args in [&["list-jobs"][..], &["logs", JOB, "last"], &["why", JOB]] {
        let o = cli(config, args, &[]);
        assert_eq!(o.code, 4, "runlog {args:?} should be refused: {o:?}");
        assert!(o.stdout.is_empty(), "runlog {args:?}: {o:?}");
        for w in ["Redis", "TLS"].iter().chain(words) {
            assert!(o.stderr.contains(w), "runlog {args:?}: no {w:?} in {o:?}");
        }
    }
}

/// Every key in the server's database 0 (read as the admin).
fn all_keys(redis: &RedisServer) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.conn())
        .expect("KEYS");
    keys.sort();
    keys
}

#[test]
fn mutual_tls_ships_and_reads_with_the_client_certificate_and_is_refused_without_one() {
    let s = Setup::new();
    let c = &s.certs;
    let redis = RedisServer::start_tls(c.server(true));
    let url = redis.url();
    let ca = format!("tls-ca-file = {}\n", path_str(&c.ca));
    let client = format!(
        "{ca}tls-cert-file = {}\ntls-key-file = {}\n",
        path_str(&c.client_cert),
        path_str(&c.client_key)
    );
    let other_client = format!(
        "{ca}tls-cert-file = {}\ntls-key-file = {}\n",
        path_str(&c.other_client_cert),
        path_str(&c.other_client_key)
    );
    let log = s.path("shipper.log");

    // No client certificate, or one the server's CA did not sign: refused, nothing written.
    for (name, lines, words) in [
        (
            "no-cert.toml",
            &ca,
            &["received fatal alert", "no client certificate"][..],
        ),
        (
            "other-cert.toml",
            &other_client,
            &["received fatal alert", "which the server must trust"][..],
        ),
    ] {
        let cfg = s.shipper_config(name, &url, lines);
        let (st, out) = ship_once(&cfg, &log);
        assert!(
            !st.success(),
            "{name}: shipped without a trusted client certificate:\n{out}"
        );
        for w in [
            &format!("Redis at {url}"),
            "TLS connection failed",
            "certificate",
        ]
        .into_iter()
        .chain(words.iter().copied())
        {
            assert!(
                out.contains(w),
                "{name}: no {w:?} in the shipper's log:\n{out}"
            );
        }
        assert!(
            all_keys(&redis).is_empty(),
            "{name}: {:?}",
            all_keys(&redis)
        );
    }

    // With the client certificate it ships.
    let cfg = s.shipper_config("mtls.toml", &url, &client);
    let out = ship_once_ok(&cfg, &log);
    assert!(out.contains("uploaded 2 runs"), "{out}");
    let store = check_consistent(&mut redis.conn(), "runlog").expect("a consistent store");
    let mut want = vec![s.ok_id.clone(), s.failed_id.clone()];
    want.sort();
    assert_eq!(store.ids(JOB), want);

    // The CLI reads over mutual TLS, the files given in the config or in the environment.
    assert_reads(&s, &s.cli_config("cli.toml", &url, &client), &[]);
    let env_cfg = s.cli_config("cli-env.toml", &url, "");
    assert_reads(
        &s,
        &env_cfg,
        &[
            ("RUNLOG_REDIS_TLS_CA_FILE", &c.ca),
            ("RUNLOG_REDIS_TLS_CERT_FILE", &c.client_cert),
            ("RUNLOG_REDIS_TLS_KEY_FILE", &c.client_key),
        ],
    );
    assert_cli_refused(
        &s.cli_config("cli-no-cert.toml", &url, &ca),
        &["received fatal alert", "no client certificate"],
    );
    assert_cli_refused(
        &s.cli_config("cli-other.toml", &url, &other_client),
        &["received fatal alert", "which the server must trust"],
    );

    // A certificate without its key is a config error naming both keys; an unreadable key
    // file is an error naming the file and the key.
    let half = format!("{ca}tls-cert-file = {}\n", path_str(&c.client_cert));
    let o = cli(
        &s.cli_config("cli-half.toml", &url, &half),
        &["list-jobs"],
        &[],
    );
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("`runlog-redis.tls-cert-file`") && o.stderr.contains("`tls-key-file`"),
        "{o:?}"
    );
    let missing = s.path("no-such.key");
    let gone = format!(
        "{ca}tls-cert-file = {}\ntls-key-file = {}\n",
        path_str(&c.client_cert),
        path_str(&missing)
    );
    let (st, out) = ship_once(&s.shipper_config("gone.toml", &url, &gone), &log);
    assert!(!st.success(), "{out}");
    assert!(
        out.contains(&*missing.to_string_lossy())
            && out.contains("tls-key-file")
            && out.contains("cannot be read"),
        "{out}"
    );
    let o = cli(
        &s.cli_config("cli-gone.toml", &url, &gone),
        &["list-jobs"],
        &[],
    );
    assert_ne!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains(&*missing.to_string_lossy()) && o.stderr.contains("tls-key-file"),
        "{o:?}"
    );
    // A key that is not the certificate's: a config error naming both files.
    let mismatched = format!(
        "{ca}tls-cert-file = {}\ntls-key-file = {}\n",
        path_str(&c.client_cert),
        path_str(&c.other_client_key)
    );
    let (st, out) = ship_once(&s.shipper_config("mismatch.toml", &url, &mismatched), &log);
    assert!(!st.success(), "{out}");
    for w in [
        "must hold the private key",
        &*c.other_client_key.to_string_lossy(),
        &*c.client_cert.to_string_lossy(),
    ] {
        assert!(out.contains(w), "no {w:?} in the shipper's log:\n{out}");
    }
    assert!(
        all_keys(&redis).len() > 2,
        "the store shipped above is still there"
    );
}

#[test]
fn a_server_certificate_of_another_ca_is_refused_by_the_shipper_and_the_cli_and_nothing_is_written()
{
    let s = Setup::new();
    let redis = RedisServer::start_tls(s.certs.server(false));
    let url = redis.url();
    let wrong = format!("tls-ca-file = {}\n", path_str(&s.certs.other_ca));
    let log = s.path("shipper.log");

    let (st, out) = ship_once(&s.shipper_config("wrong-ca.toml", &url, &wrong), &log);
    assert!(
        !st.success(),
        "shipped to a server it must not trust:\n{out}"
    );
    for w in [
        &format!("Redis at {url}"),
        "TLS connection failed",
        "invalid peer certificate",
        &*s.certs.other_ca.to_string_lossy(),
    ] {
        assert!(out.contains(w), "no {w:?} in the shipper's log:\n{out}");
    }
    assert_cli_refused(
        &s.cli_config("cli-wrong-ca.toml", &url, &wrong),
        &["invalid peer certificate"],
    );

    // Verification cannot be turned off: the client's `#insecure` is refused.
    let insecure = format!("{url}#insecure");
    let (st, out) = ship_once(&s.shipper_config("insecure.toml", &insecure, &wrong), &log);
    assert!(!st.success(), "{out}");
    assert!(out.contains("always verifies"), "{out}");
    let o = cli(
        &s.cli_config("cli-insecure.toml", &insecure, &wrong),
        &["list-jobs"],
        &[],
    );
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("always verifies"), "{o:?}");

    assert!(all_keys(&redis).is_empty(), "{:?}", all_keys(&redis));

    // The right CA: the same server is trusted (so the refusals were about the CA).
    let right = format!("tls-ca-file = {}\n", path_str(&s.certs.ca));
    ship_once_ok(&s.shipper_config("right-ca.toml", &url, &right), &log);
    assert_eq!(
        check_consistent(&mut redis.conn(), "runlog")
            .expect("a consistent store")
            .ids(JOB)
            .len(),
        2
    );
}

#[test]
fn acl_users_over_tls_ship_with_write_access_to_the_prefix_and_read_with_read_only() {
    let s = Setup::new();
    let redis = RedisServer::start_tls(s.certs.server(false));
    create_acl_users(&mut redis.conn());
    let port = redis.port();
    let url_of = |user: &str, pw: &str| format!("rediss://{user}:{pw}@localhost:{port}/0");
    let ca = format!("tls-ca-file = {}\n", path_str(&s.certs.ca));
    let log = s.path("shipper.log");

    // The reader's user cannot ship: refused at its first write, nothing written.
    let as_reader = s.shipper_config("reader.toml", &url_of(READER_USER, READER_PASSWORD), &ca);
    let (st, out) = ship_once(&as_reader, &log);
    assert!(!st.success(), "the reader shipped:\n{out}");
    assert!(
        out.contains("no permissions") && out.contains("spec/redis.md"),
        "{out}"
    );
    assert!(all_keys(&redis).is_empty(), "{:?}", all_keys(&redis));

    // The shipper's user ships over TLS.
    let cfg = s.shipper_config("shipper.toml", &url_of(SHIPPER_USER, SHIPPER_PASSWORD), &ca);
    let out = ship_once_ok(&cfg, &log);
    assert!(!out.contains("no permissions"), "{out}");
    let store = check_consistent(&mut redis.conn(), "runlog").expect("a consistent store");
    assert_eq!(store.ids(JOB).len(), 2);
    let before = dump_all(&mut redis.conn(), "runlog");

    // The reader's user runs every read command (the user goes in the URL: the separate
    // host/port/username fields connect without TLS).
    let reader_cfg = s.cli_config("cli.toml", &url_of(READER_USER, READER_PASSWORD), &ca);
    assert_reads(&s, &reader_cfg, &[]);

    // ... and can write nothing, over the same TLS connection the CLI uses.
    let reader_client = redis::Client::build_with_tls(
        url_of(READER_USER, READER_PASSWORD),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(fs::read(&s.certs.ca).expect("read the CA")),
        },
    )
    .expect("a TLS client");
    let mut reader = reader_client
        .get_connection_with_timeout(std::time::Duration::from_secs(10))
        .expect("the reader connects over TLS");
    let run_key = format!("runlog:{{{JOB}}}:run:{}", s.ok_id);
    let log_key = format!("runlog:{{{JOB}}}:log:{}", s.ok_id);
    let denied: &[&[&str]] = &[
        &["SET", "runlog:schema", "2"],
        &["SET", "runlog:x", "1"],
        &["ZADD", "runlog:jobs", "1", "x"],
        &["ZREM", "runlog:jobs", JOB],
        &["DEL", "runlog:jobs"],
        &["HSET", &run_key, "status", "ok"],
        &["RPUSH", &log_key, "x"],
        &["PEXPIRE", &run_key, "1"],
        &["RENAME", &log_key, "runlog:y"],
        &["SCRIPT", "LOAD", "return 1"],
        &["EVAL", "return 1", "0"],
        &["FLUSHDB"],
        &["FLUSHALL"],
        &["CONFIG", "SET", "save", ""],
        &["ACL", "SETUSER", READER_USER, "+@all"],
        &["KEYS", "*"],
        &["GET", "other:x"],
    ];
    let mut failures = Vec::new();
    for args in denied {
        let r: redis::RedisResult<redis::Value> =
            redis::cmd(args[0]).arg(&args[1..]).query(&mut reader);
        match r {
            Err(e) if e.code() == Some("NOPERM") => {}
            other => failures.push(format!("the reader may run {args:?}: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(dump_all(&mut redis.conn(), "runlog"), before);

    // A reader with less than the rules of the spec is told which rules it lacks, not that the
    // data is damaged.
    let weak: Vec<&str> = READER_ACL
        .iter()
        .copied()
        .filter(|r| *r != "+lrange")
        .collect();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("runlog-weak")
        .arg(&weak)
        .query(&mut redis.conn())
        .expect("ACL SETUSER runlog-weak");
    let weak_cfg = s.cli_config("weak.toml", &url_of("runlog-weak", READER_PASSWORD), &ca);
    let o = cli(&weak_cfg, &["logs", JOB, "last"], &[]);
    assert_eq!(o.code, 4, "{o:?}");
    assert!(
        o.stderr.contains("does not let this user read")
            && o.stderr.contains("reader's rules of spec/redis.md")
            && !o.stderr.contains("delete the key"),
        "{o:?}"
    );
    let names: Vec<String> = before
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(
        all_keys(&redis),
        names,
        "only the shipper's keys, all under its prefix"
    );
}

/// The rules the tests give the users are the ones spec/redis.md documents.
#[test]
fn the_acl_rules_of_the_tests_are_the_rules_of_spec_redis_md() {
    let spec = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/redis.md"))
        .expect("read spec/redis.md");
    for (user, rules, secret) in [
        (SHIPPER_USER, SHIPPER_ACL, SHIPPER_PASSWORD),
        (READER_USER, READER_ACL, READER_PASSWORD),
    ] {
        let line = spec
            .lines()
            .find(|l| l.starts_with(&format!("ACL SETUSER {user} ")))
            .unwrap_or_else(|| panic!("spec/redis.md has no `ACL SETUSER {user}` line"));
        let spec_rules: Vec<String> = line
            .split_whitespace()
            .skip(3)
            .map(|r| r.replace("SECRET", secret).replace("<P>", "runlog"))
            .collect();
        assert_eq!(spec_rules, rules, "{user}");
    }
}

// ---------------------------------------------------------------------------------------------
// A wrong setup, named with its fix
// ---------------------------------------------------------------------------------------------

/// `runlog --config CONFIG --source SOURCE ARGS...`.
fn cli_from(config: &Path, source: &str, args: &[&str]) -> Out {
    let mut c = runlog_cmd();
    c.arg("--config")
        .arg(config)
        .args(["--source", source])
        .args(args);
    output(&mut c)
}

/// The CLI, given Redis at `url` (with more `[runlog-redis]` lines) and the journal of `s`:
/// with `--source redis` each read exits 4 with one line on stderr holding every one of
/// `words` and no advice to delete keys; with `--source auto` it lists the journal's runs and
/// says so in one warning line that names the cause (`words[0]`, `words[1]`).
fn assert_cli_diagnosed(s: &Setup, name: &str, url: &str, lines: &str, words: &[&str]) {
    let config = s.path(&format!("{name}.toml"));
    fs::write(
        &config,
        format!(
            "[runlog]\njournal-dir = {}\n[runlog-redis]\nurl = {}\nconnect-timeout = \"2s\"\n\
             io-timeout = \"2s\"\n{lines}",
            path_str(&s.journal),
            toml_str(url),
        ),
    )
    .expect("write the CLI config");
    for args in [
        &["list-jobs"][..],
        &["list-runs", JOB],
        &["logs", JOB, "last"],
    ] {
        let o = cli_from(&config, "redis", args);
        assert_eq!(o.code, 4, "{name}: runlog --source redis {args:?}: {o:?}");
        assert!(o.stdout.is_empty(), "{name}: {args:?}: {o:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{name}: {args:?}: {o:?}");
        for w in words {
            assert!(o.stderr.contains(w), "{name}: {args:?}: no {w:?} in {o:?}");
        }
        assert!(!o.stderr.contains("delete the key"), "{name}: {o:?}");
    }
    let o = cli_from(&config, "auto", &["list-runs", JOB]);
    assert_eq!(o.code, 0, "{name}: runlog --source auto: {o:?}");
    assert!(
        o.stdout.contains(&s.ok_id) && o.stdout.contains(&s.failed_id),
        "{name}: the journal's runs: {o:?}"
    );
    // The diagnosis in one line; besides it only the note that the journal's runs (which
    // the test never shipped) wait for runlog-shipper.
    let (diagnosis, others): (Vec<&str>, Vec<&str>) = o
        .stderr
        .lines()
        .partition(|l| !l.contains("wait for runlog-shipper"));
    assert_eq!(diagnosis.len(), 1, "{name}: one line: {o:?}");
    assert!(others.len() <= 1, "{name}: {o:?}");
    for w in words.iter().take(2).chain(&["local journal only"]) {
        assert!(diagnosis[0].contains(w), "{name}: auto: no {w:?} in {o:?}");
    }
}

/// `runlog-shipper --once` to `url` fails, writes nothing that the admin connection can see
/// (when given), and its log names the cause with every one of `words`.
fn assert_shipper_diagnosed(s: &Setup, name: &str, url: &str, lines: &str, words: &[&str]) {
    let cfg = s.shipper_config(&format!("shipper-{name}.toml"), url, lines);
    let log = s.path(&format!("shipper-{name}.log"));
    let (st, out) = ship_once(&cfg, &log);
    assert!(!st.success(), "{name}: shipped:\n{out}");
    for w in words.iter().chain(&["nothing was lost"]) {
        assert!(
            out.contains(w),
            "{name}: no {w:?} in the shipper's log:\n{out}"
        );
    }
    assert!(!out.contains("delete the key"), "{name}: {out}");
}

#[test]
fn a_redis_that_wants_a_password_or_refuses_it_is_named_with_the_fix() {
    // Before: `runlog:schema holds data that is not runlog schema 1 ("NOAUTH": Authentication
    // required.) ... delete the key or use another prefix`, exit 1, and no journal under auto.
    let s = Setup::new();
    let redis = RedisServer::start();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret")
        .query(&mut redis.conn())
        .expect("CONFIG SET requirepass");
    let url = redis.url();
    let place = format!("Redis at {url}");
    let noauth = [
        place.as_str(),
        "requires a password",
        "set [runlog-redis] password (or username and password for an ACL user)",
    ];
    assert_cli_diagnosed(&s, "noauth", &url, "", &noauth);
    assert_shipper_diagnosed(&s, "noauth", &url, "", &noauth);

    let wrong = format!("redis://:wrong@127.0.0.1:{}/0", redis.port());
    let wrongpass = [
        place.as_str(),
        "refused the password of the default user",
        "WRONGPASS",
        "check username and password",
    ];
    assert_cli_diagnosed(&s, "wrongpass", &wrong, "", &wrongpass);
    assert_shipper_diagnosed(&s, "wrongpass", &wrong, "", &wrongpass);

    // The right password ships (so the refusals were about the password).
    let right = format!("redis://:s3cret@127.0.0.1:{}/0", redis.port());
    let out = ship_once_ok(
        &s.shipper_config("right.toml", &right, ""),
        &s.path("right.log"),
    );
    assert!(out.contains("uploaded 2 runs"), "{out}");
}

#[test]
fn an_acl_user_without_a_rule_it_needs_is_told_which_rules_it_lacks() {
    // Before: the CLI's reader without +get was told that `runlog:schema holds data that is
    // not runlog schema 1 ... delete the key`, exit 1.
    let s = Setup::new();
    let redis = RedisServer::start();
    let without = |acl: &[&'static str], rule: &str| -> Vec<&'static str> {
        acl.iter().copied().filter(|r| *r != rule).collect()
    };
    for (user, rules) in [
        ("reader-no-get", without(READER_ACL, "+get")),
        ("shipper-no-set", without(SHIPPER_ACL, "+set")),
    ] {
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(user)
            .arg(&rules)
            .query(&mut redis.conn())
            .expect("ACL SETUSER");
    }
    let port = redis.port();
    let place = format!("Redis at redis://127.0.0.1:{port}/0");
    let reader = format!("redis://reader-no-get:{READER_PASSWORD}@127.0.0.1:{port}/0");
    assert_cli_diagnosed(
        &s,
        "noperm",
        &reader,
        "",
        &[
            &place,
            "does not let this user read runlog:schema",
            "reader's rules of spec/redis.md",
        ],
    );
    let shipper = format!("redis://shipper-no-set:{SHIPPER_PASSWORD}@127.0.0.1:{port}/0");
    assert_shipper_diagnosed(
        &s,
        "noperm",
        &shipper,
        "",
        &[
            &place,
            "does not let user \"shipper-no-set\" run a command runlog needs",
            "no permissions to run the 'set' command",
            "shipper's rules of spec/redis.md",
        ],
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.conn())
        .expect("KEYS");
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn tls_on_one_side_only_is_named_by_the_cli_and_the_shipper() {
    // Before: a TLS server spoken to in plain text gave `Redis at ... failed: broken pipe`; a
    // plain server spoken to with rediss:// a certificate hint.
    let s = Setup::new();
    let ca = format!("tls-ca-file = {}\n", path_str(&s.certs.ca));

    let tls_server = RedisServer::start_tls(s.certs.server(false));
    let plain_url = format!("redis://127.0.0.1:{}/0", tls_server.port());
    let speaks_tls = [
        &*format!("Redis at {plain_url}"),
        "speaks TLS on that port",
        "use a rediss:// url",
    ];
    assert_cli_diagnosed(&s, "tls-as-plain", &plain_url, "", &speaks_tls);
    assert_shipper_diagnosed(&s, "tls-as-plain", &plain_url, "", &speaks_tls);

    let plain_server = RedisServer::start();
    let tls_url = format!("rediss://localhost:{}/0", plain_server.port());
    let no_tls = [
        &*format!("Redis at {tls_url}"),
        "does not speak TLS on that port",
        "use a redis:// url",
    ];
    assert_cli_diagnosed(&s, "plain-as-tls", &tls_url, &ca, &no_tls);
    assert_shipper_diagnosed(&s, "plain-as-tls", &tls_url, &ca, &no_tls);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut plain_server.conn())
        .expect("KEYS");
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn an_http_server_on_the_port_is_named_with_what_it_answered() {
    // Before: `Incompatible type - Parse error ...`.
    let s = Setup::new();
    let http = FakeServer::http();
    let url = http.url();
    let words = [
        &*format!("the server at {url} is not Redis"),
        "it answered \"HTTP/1.1 400 Bad Request\" (an HTTP server)",
        "check the host and port",
    ];
    assert_cli_diagnosed(&s, "http", &url, "", &words);
    assert_shipper_diagnosed(&s, "http", &url, "", &words);
}

#[test]
fn a_redis_older_than_6_2_is_refused_with_its_version() {
    // No Redis older than 6.2 is installed here: a fake server speaks RESP as Redis 6.0.16
    // does for the commands runlog sends first (`FakeServer::redis_6_0`). Before: the CLI said
    // `runlog:jobs holds data that is not runlog schema 1 (... syntax error) ... delete the
    // key`; the shipper uploaded with a script that Redis 6.0 cannot run.
    let s = Setup::new();
    let old = FakeServer::redis_6_0();
    let url = old.url();
    let words = [
        &*format!("Redis at {url}"),
        "is version \"6.0.16\"; runlog needs Redis 6.2 or later",
        "upgrade it",
    ];
    assert_cli_diagnosed(&s, "old", &url, "", &words);
    assert_shipper_diagnosed(&s, "old", &url, "", &words);

    // Before 6.0 there is no HELLO, which the CLI asks (any ACL user may run it, INFO not).
    let older = FakeServer::redis_5_0();
    let url = older.url();
    let place = format!("Redis at {url}");
    assert_cli_diagnosed(
        &s,
        "older",
        &url,
        "",
        &[
            &place,
            "does not know HELLO, so it is older than Redis 6.0",
            "runlog needs Redis 6.2 or later",
        ],
    );
    assert_shipper_diagnosed(
        &s,
        "older",
        &url,
        "",
        &[
            &place,
            "is version \"5.0.7\"; runlog needs Redis 6.2 or later",
        ],
    );
}

#[test]
fn a_replica_is_refused_by_the_shipper_but_read_by_the_cli() {
    // Before: the shipper's writes failed with `READONLY You can't write against a read only
    // replica.` and nothing said to point it at the master.
    let s = Setup::new();
    let master = RedisServer::start();
    let replica = RedisServer::start();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.port())
        .query(&mut replica.conn())
        .expect("REPLICAOF");
    ship_once_ok(
        &s.shipper_config("master.toml", &master.url(), ""),
        &s.path("master.log"),
    );
    let master_keys = dump_all(&mut master.conn(), "runlog");
    poll(Duration::from_secs(30), "the replica has synced", |_| {
        (dump_all(&mut replica.conn(), "runlog") == master_keys).then_some(())
    });

    let words = [
        &*format!("Redis at {}", replica.url()),
        &*format!("is a read-only replica of \"127.0.0.1:{}\"", master.port()),
        "point [runlog-redis] at the master",
    ];
    assert_shipper_diagnosed(&s, "replica", &replica.url(), "", &words);

    // A shipper user that may not run INFO meets the replica's READONLY: the same diagnosis.
    let no_info: Vec<&str> = SHIPPER_ACL
        .iter()
        .copied()
        .filter(|r| *r != "+info")
        .collect();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("shipper-no-info")
        .arg(&no_info)
        .query(&mut replica.conn())
        .expect("ACL SETUSER");
    let no_info_url = format!(
        "redis://shipper-no-info:{SHIPPER_PASSWORD}@127.0.0.1:{}/0",
        replica.port()
    );
    assert_shipper_diagnosed(
        &s,
        "readonly",
        &no_info_url,
        "",
        &[
            words[0],
            "is a read-only replica",
            "point [runlog-redis] at the master",
        ],
    );

    // The running shipper says so and waits with backoff: no crash, no spin.
    let cfg = s.shipper_config("daemon.toml", &replica.url(), "");
    let log = s.path("daemon.log");
    let mut daemon = Shipper::spawn(&cfg, false, &log);
    poll(
        Duration::from_secs(20),
        "the daemon names the replica",
        |_| {
            let text = fs::read_to_string(&log).unwrap_or_default();
            (text.matches("is a read-only replica of").count() >= 2).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(daemon.try_status().is_none(), "it exited: {}", daemon.log());
    let text = daemon.log();
    let tries = text.matches("is a read-only replica of").count();
    assert!(
        tries <= 8,
        "it retries with backoff, not in a loop: {tries}\n{text}"
    );
    assert!(text.contains("ERROR") && text.contains("retry"), "{text}");
    daemon.kill();

    // The CLI reads from a replica: reading is what replicas are for.
    let reader = s.cli_config("cli-replica.toml", &replica.url(), "");
    let o = cli(&reader, &["list-runs", JOB], &[]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains(&s.ok_id) && o.stderr.is_empty(), "{o:?}");
    assert_eq!(dump_all(&mut replica.conn(), "runlog"), master_keys);
}
