//! TLS and least privilege against a TLS-only `redis-server` of each test (`--port 0
//! --tls-port P`, a private CA made with `openssl`; never the server on 6379):
//!
//! - mutual TLS (`tls-auth-clients yes`): the shipper and the CLI connect with
//!   `tls-cert-file` / `tls-key-file`, and are refused, clearly, without a client certificate
//!   or with one from another CA;
//! - a `tls-ca-file` of another CA: the server's certificate is not trusted, the shipper and
//!   the CLI refuse to talk to it, nothing is written; `#insecure` cannot turn that off;
//! - the ACL users of spec/redis.md over TLS: the shipper's user ships, the reader's user runs
//!   every read command of the CLI and can write nothing.
//!
//! The binaries must be built first (`cargo build --workspace`).

use std::fs;
use std::path::{Path, PathBuf};

use runlog_e2e::cli::{logger, output, runlog_cmd, Out};
use runlog_e2e::redis::{
    check_consistent, create_acl_users, dump_all, RedisServer, READER_ACL, READER_PASSWORD,
    READER_USER, SHIPPER_ACL, SHIPPER_PASSWORD, SHIPPER_USER,
};
use runlog_e2e::shipper::{ship_once, ship_once_ok, toml_str, ShipperConfig};
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
    assert_eq!(o.code, 1, "{o:?}");
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
