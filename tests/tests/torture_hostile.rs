//! Torture suite, hostile input: job names and labels that look like paths, globs, Redis hash
//! tags, terminal escapes or broken text; config files with wrong types and huge values;
//! command lines that do not parse; and Redis values crafted by an attacker. Each is either
//! accepted and round-trips exactly, or refused with an error that names it — never a panic,
//! never a huge allocation, never a lost record.
//!
//! The binaries must be built first (`cargo build --workspace`); the Redis scenarios start
//! their own `redis-server` (never the one on port 6379).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use runlog::Journal;
use runlog_e2e::cli::{logger, output, runlog_cmd, Out};
use runlog_e2e::redis::{check_consistent, key_slot, scan_keys, spec_escape, RedisServer};
use runlog_e2e::shipper::{ship_once_ok, toml_str, ShipperConfig};
use runlog_e2e::torture::conclude;

/// Address space a CLI process may use: far below what a length field of 4 GB would ask for.
const CLI_MEMORY_LIMIT: u64 = 1 << 30;

/// `cmd` with its address space limited to [`CLI_MEMORY_LIMIT`]: a huge allocation fails
/// (and aborts the process, which the caller sees as a failure) instead of succeeding.
fn limited(mut cmd: Command) -> Command {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: CLI_MEMORY_LIMIT,
                rlim_max: CLI_MEMORY_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// `runlog --config CONFIG ARGS...` with limited memory.
fn cli(config: &Path, args: &[&str]) -> Out {
    let mut c = runlog_cmd();
    c.arg("--config").arg(config).args(args);
    output(&mut limited(c))
}

/// A process that ended the way a program that did not crash ends: exit 0..=3, no panic
/// message, no abort. Returns a description of what went wrong.
fn sane(o: &Out) -> Option<String> {
    if !(0..=3).contains(&o.code)
        || o.stderr.contains("panicked")
        || o.stderr.contains("RUST_BACKTRACE")
    {
        return Some(format!("exit {}: stderr {:?}", o.code, cut(&o.stderr)));
    }
    None
}

fn cut(s: &str) -> String {
    s.chars().take(120).collect()
}

/// A label key as the journal keeps it: cut to 4 KiB at a character boundary
/// (spec/journal.md, Limits).
fn label_key(name: &str) -> &str {
    let mut n = name.len().min(4096);
    while !name.is_char_boundary(n) {
        n -= 1;
    }
    &name[..n]
}

/// Job names (and label texts) that mean something to a file system, a glob, a shell, Redis
/// Cluster, a terminal or a Unicode renderer. All are valid job names: 1 byte to 64 KiB.
fn hostile_texts() -> Vec<String> {
    let mut v: Vec<String> = [
        "a/b",
        "/",
        "/etc/passwd",
        "../../etc/passwd",
        "..",
        ".",
        "...",
        "nul\0byte",
        "\0",
        "{}",
        "{",
        "}",
        "a{b}c",
        "}{",
        "{{x}}",
        "*",
        "*?[",
        "[a-z]*",
        "\\*",
        "line\nbreak",
        "\n",
        "cr\rlf\r\n",
        "\x1b[2J\x1b[Hcleared",
        "\x1b]0;pwned\x07",
        "\x07\x08\x7f",
        "\u{9b}31m",
        "\u{fffd}",
        "\u{fffd}\u{fffd}bad?",
        "\u{202e}txt.exe\u{202c}",
        "\u{2066}isolate\u{2069}",
        "\u{301}",
        "\u{301}\u{301}\u{301}lone marks",
        "\u{feff}bom",
        "zero\u{200b}width",
        "\u{10ffff}",
        "emoji 🎉 ✓",
        "tab\there",
        " ",
        " leading and trailing ",
        "%",
        "%2F",
        "%00",
        "~",
        "a~0123456789abcdef",
        ":",
        "runlog:jobs",
        "a:b:c",
        "$(touch /tmp/pwned)",
        "`id`",
        ";ls",
        "\"quoted\"",
        "'single'",
        "-1",
        "--help",
        "last",
        "last-failed",
        "2026-11-28T12:10:55.123456Z-0123456789ab",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("é".repeat(5000));
    v.push("x".repeat(200));
    v.push("{".repeat(300));
    // The longest job name there is.
    v.push("y".repeat(runlog::MAX_JOB_NAME));
    v
}

/// What a run of a hostile job logged.
fn message_for(i: usize) -> String {
    format!("record of hostile job {i}")
}

/// A CLI config in `dir` (`cli.toml`) reading `journal` and `redis`.
fn cli_config(dir: &Path, journal: &Path, redis: &RedisServer) -> PathBuf {
    let path = dir.join("cli.toml");
    std::fs::write(
        &path,
        format!(
            "[runlog]\njournal-dir = {}\n[runlog-redis]\nurl = {}\n",
            toml_str(&journal.to_string_lossy()),
            toml_str(&redis.url())
        ),
    )
    .unwrap();
    path
}

#[test]
fn torture_hostile_job_names_and_labels_round_trip_through_the_journal_the_shipper_redis_and_the_cli(
) {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let rl = logger(&journal);
    let names = hostile_texts();
    let mut failures: Vec<String> = Vec::new();
    let mut tried = 0u64;
    let mut lost = 0u64;

    // Refused: empty and too long, with an error that says what a job name may be.
    for bad in [
        String::new(),
        "z".repeat(runlog::MAX_JOB_NAME + 1),
        "z".repeat(1 << 20),
    ] {
        tried += 1;
        match rl.runlog(&bad) {
            Ok(_) => failures.push(format!("a job name of {} bytes was accepted", bad.len())),
            Err(e) => {
                let m = e.to_string();
                if !(m.contains(&format!("{} bytes", bad.len())) && m.contains("1 byte to 64 KiB"))
                {
                    failures.push(format!("unclear error for a {}-byte name: {m}", bad.len()));
                }
            }
        }
    }

    // Accepted: one run per name, its record and a label whose key and value are the name.
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        tried += 1;
        let run = match rl.runlog(name) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("job name {:?} refused: {e}", cut(name)));
                continue;
            }
        };
        run.label(name, name);
        run.label("k", name);
        log::info!(name = name.as_str(); "{}", message_for(i));
        if run.dropped() != 0 || !run.is_recording() {
            failures.push(format!("job {:?}: run not recorded", cut(name)));
        }
        ids.insert(name.clone(), run.id().to_owned());
    }
    // Labels beyond their limits are cut (spec/journal.md, Limits), not refused.
    let big = {
        let run = rl.runlog("big-labels").unwrap();
        let key = "k".repeat(1 << 20);
        let value = "v".repeat(1 << 20);
        run.label(&key, &value);
        run.label("small", &value);
        log::info!("big labels");
        run.id().to_owned()
    };
    tried += 2;

    // The journal: the exact names, records and labels; nothing outside the journal dir.
    let j = Journal::open(&journal).unwrap();
    let jobs: Vec<String> = j.jobs().unwrap().into_iter().map(|j| j.name).collect();
    for name in &names {
        if !jobs.contains(name) {
            failures.push(format!("journal: job {:?} not listed", cut(name)));
        }
    }
    assert_eq!(jobs.len(), names.len() + 1, "journal jobs: {jobs:?}");
    for (i, name) in names.iter().enumerate() {
        let Some(id) = ids.get(name) else { continue };
        match j.read_run(name, id) {
            Ok(log) => {
                let msgs: Vec<&str> = log.records.iter().map(|r| r.message.as_str()).collect();
                if msgs != [message_for(i)] {
                    lost += 1;
                    failures.push(format!("journal: job {:?}: records {msgs:?}", cut(name)));
                }
                if log.records[0].kvs != [("name".to_owned(), name.clone())] {
                    failures.push(format!("journal: job {:?}: key-values", cut(name)));
                }
                let want = vec![
                    (label_key(name).to_owned(), name.clone()),
                    ("k".to_owned(), name.clone()),
                ];
                let mut got = log.info.labels.clone();
                let mut want = want;
                got.sort();
                want.sort();
                want.dedup_by(|a, b| a.0 == b.0);
                if got != want {
                    failures.push(format!("journal: job {:?}: labels differ", cut(name)));
                }
            }
            Err(e) => failures.push(format!("journal: job {:?}: {e}", cut(name))),
        }
    }
    let big_labels = j.read_run("big-labels", &big).unwrap().info.labels;
    assert_eq!(
        big_labels,
        vec![
            ("k".repeat(4096), "v".repeat(65536)),
            ("small".to_owned(), "v".repeat(65536))
        ],
        "labels are cut to 4 KiB keys and 64 KiB values"
    );
    let outside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("journal")]);

    // Shipped to Redis: keys well-formed (spec/redis.md's escaping), every job in its slot.
    let redis = RedisServer::start();
    let cfg =
        ShipperConfig::new(&journal, &redis.url(), 1000, 1000).write(&tmp.path().join("ship.toml"));
    ship_once_ok(&cfg, &tmp.path().join("shipper.log"));
    let mut conn = redis.conn();
    let store = match check_consistent(&mut conn, "runlog") {
        Ok(s) => s,
        Err(e) => panic!("Redis after shipping hostile names is not consistent: {e}"),
    };
    for name in &names {
        tried += 1;
        let runs = store.runs(name);
        if runs.len() != 1 || runs[0].records.len() != 1 {
            lost += 1;
            failures.push(format!(
                "redis: job {:?} has {} runs",
                cut(name),
                runs.len()
            ));
            continue;
        }
        let r = &runs[0];
        if r.field("job") != Some(name.as_str())
            || r.field(&format!("label:{}", label_key(name))) != Some(name.as_str())
            || r.field("label:k") != Some(name.as_str())
        {
            failures.push(format!("redis: job {:?}: job or labels differ", cut(name)));
        }
    }
    for key in scan_keys(&mut conn, "runlog:*") {
        let k = String::from_utf8_lossy(&key).into_owned();
        let rest = k.strip_prefix("runlog:").expect("prefix");
        if ["schema", "epoch", "jobs"].contains(&rest) {
            continue;
        }
        // `{<J>}:...`: one hash tag, escaped, and the key's slot is the tag's.
        let (tag, _) = rest
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
            .unwrap_or_else(|| panic!("key {k:?} has no job hash tag"));
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-%".contains(&b)),
            "key {k:?}: hash tag not escaped"
        );
        assert_eq!(key_slot(&key), key_slot(tag.as_bytes()), "key {k:?}");
        assert!(
            names.iter().any(|n| spec_escape(n) == tag) || tag == "big-labels",
            "key {k:?}: tag of no job"
        );
    }

    // The CLI, from each source: every job listed exactly (JSON), each run's record printed.
    let cli_cfg = cli_config(tmp.path(), &journal, &redis);
    for source in ["local", "redis", "auto"] {
        let o = cli(&cli_cfg, &["--source", source, "--json", "list-jobs"]);
        tried += 1;
        if let Some(e) = sane(&o) {
            failures.push(format!("list-jobs --source {source}: {e}"));
            continue;
        }
        let listed: Vec<String> = o
            .stdout
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                v["job"]
                    .as_str()
                    .or(v["name"].as_str())
                    .expect("job name")
                    .to_owned()
            })
            .collect();
        for name in &names {
            if !listed.contains(name) {
                failures.push(format!(
                    "list-jobs --source {source}: {:?} missing",
                    cut(name)
                ));
            }
        }
        for (i, name) in names.iter().enumerate() {
            // A NUL cannot be passed in an argument: such a job is listed, not named.
            if name.contains('\0') {
                continue;
            }
            tried += 1;
            let o = cli(&cli_cfg, &["--source", source, "logs", "--", name, "last"]);
            if let Some(e) = sane(&o) {
                failures.push(format!("logs {:?} --source {source}: {e}", cut(name)));
                continue;
            }
            if o.code != 0 || !o.stdout.contains(&message_for(i)) {
                failures.push(format!(
                    "logs {:?} --source {source}: exit {} {:?} {:?}",
                    cut(name),
                    o.code,
                    cut(&o.stdout),
                    cut(&o.stderr)
                ));
            }
            let o = cli(
                &cli_cfg,
                &["--source", source, "--json", "list-runs", "--", name],
            );
            let labels_ok = o.stdout.lines().any(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
                v["labels"][label_key(name)].as_str() == Some(name.as_str())
                    && v["labels"]["k"].as_str() == Some(name.as_str())
            });
            if o.code != 0 || !labels_ok {
                failures.push(format!(
                    "list-runs {:?} --source {source}: exit {} {:?} {:?}",
                    cut(name),
                    o.code,
                    cut(&o.stdout),
                    cut(&o.stderr)
                ));
            }
        }
    }

    // On a terminal, nothing from a job name or label reaches the screen raw.
    let pre = [OsStr::new("--config"), cli_cfg.as_os_str()];
    for args in [&["list-jobs"][..], &["list-runs", "--", "\x1b]0;pwned\x07"]] {
        tried += 1;
        let o = runlog_e2e::cli::on_a_terminal(tmp.path(), &pre, args, true);
        if o.code != 0 {
            failures.push(format!(
                "{args:?} on a terminal: exit {}: {}",
                o.code, o.stderr
            ));
        }
        let raw = o.stdout.chars().find(|&c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        });
        if let Some(c) = raw {
            failures.push(format!("{args:?} on a terminal printed {c:?} raw"));
        }
    }

    conclude(
        "hostile job names and labels through journal, shipper, Redis and CLI",
        tried,
        &failures,
        lost,
    );
}

/// A config file the CLI is given; the error it must print (all of `wants`), exit 2.
struct BadConfig {
    text: String,
    wants: Vec<&'static str>,
}

fn bad(text: impl Into<String>, wants: &[&'static str]) -> BadConfig {
    BadConfig {
        text: text.into(),
        wants: wants.to_vec(),
    }
}

#[test]
fn torture_config_files_with_wrong_types_unknown_keys_and_huge_values_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let ten_mb = "a".repeat(10 << 20);
    let cases = vec![
        // Wrong types.
        bad("[runlog]\nmax-logs = \"ten\"\n", &["max-logs", "line 2"]),
        bad("[runlog]\nmax-logs = -1\n", &["max-logs", "line 2"]),
        bad("[runlog]\nmax-logs = 1.5\n", &["max-logs", "line 2"]),
        bad("[runlog]\nmax-logs = true\n", &["max-logs", "line 2"]),
        bad("[runlog]\nmax-logs = [1]\n", &["max-logs", "line 2"]),
        bad("[runlog]\nmax-logs = { a = 1 }\n", &["max-logs", "line 2"]),
        bad(
            "[runlog]\nsegment-size = \"1PiB\"\n",
            &["segment-size", "line 2"],
        ),
        bad("[runlog]\nfsync = 1\n", &["fsync", "line 2"]),
        bad("[runlog]\njournal-dir = 7\n", &["journal-dir", "line 2"]),
        bad("runlog = 1\n", &["runlog", "line 1"]),
        bad("[runlog-redis]\nport = \"6379\"\n", &["port", "line 2"]),
        bad("[runlog-redis]\nport = 70000\n", &["port", "line 2"]),
        bad("[runlog-redis]\ndb = -1\n", &["db", "line 2"]),
        bad(
            "[runlog.jobs.nightly]\nmax-logs = \"3\"\n",
            &["max-logs", "line 2"],
        ),
        bad("[runlog.jobs]\nnightly = 3\n", &["nightly", "line 2"]),
        // Unknown keys and tables.
        bad(
            "[runlog]\nmax-log = 3\n",
            &["unknown key `max-log`", "max-logs"],
        ),
        bad(
            "[runlog-redis]\npasswrd = \"x\"\n",
            &["unknown key `passwrd`", "password"],
        ),
        bad(
            "[runlog-shipper]\nbudget = 1\n",
            &["unknown key `budget`", "disk-budget"],
        ),
        bad(
            "[runlog.jobs.x]\nkeep = 1\n",
            &["unknown key `keep`", "max-logs"],
        ),
        bad("[runlogs]\n", &["runlogs"]),
        bad(
            "[runlog]\nmax-logs = 1\nmax-logs = 2\n",
            &["max-logs", "line 3"],
        ),
        // Huge values.
        bad("[runlog]\nmax-logs = 99999999999999999999\n", &["line 2"]),
        bad(
            "[runlog]\nsegment-size = 1125899906842624\n",
            &["runlog.segment-size", "1125899906842624", "1073741824"],
        ),
        bad(
            "[runlog]\nsegment-size = 9223372036854775807\n",
            &["runlog.segment-size"],
        ),
        bad(
            "[runlog-shipper]\ndisk-budget = \"99999999999TiB\"\n",
            &["runlog-shipper.disk-budget"],
        ),
        bad(
            "[runlog-shipper]\nrescan-interval = \"99999999999999999999h\"\n",
            &["runlog-shipper.rescan-interval"],
        ),
        bad(
            "[runlog-redis]\nconnect-timeout = \"18446744073709551615s\"\n",
            &["connect-timeout"],
        ),
        bad(
            format!("[runlog]\nlevel = \"{ten_mb}\"\n"),
            &["runlog.level", "off"],
        ),
        bad(
            format!("[runlog]\nfsync = \"{ten_mb}\"\n"),
            &["runlog.fsync", "commit"],
        ),
        bad(
            format!("[runlog-redis]\nprefix = \"{ten_mb}\"\n"),
            &["prefix", "256"],
        ),
        bad(format!("[runlog-redis]\nurl = \"{ten_mb}\"\n"), &["url"]),
        bad(
            format!("[runlog]\nmax-logs = \"{ten_mb}\"\n"),
            &["max-logs", "line 2"],
        ),
        bad(
            format!("[runlog]\n{ten_mb} = 1\n"),
            &["unknown key", "max-logs"],
        ),
        bad(
            format!("[runlog.jobs.\"{}\"]\nmax-logs = 1\n", "j".repeat(100_000)),
            &["job name", "64 KiB"],
        ),
        bad("[runlog.jobs.\"\"]\nmax-logs = 1\n", &["job name"]),
        bad(
            format!("[runlog]\nfilters = \"{}\"\n", "a b=debug,".repeat(100_000)),
            &["runlog.filters"],
        ),
        // Nesting: a parser that recurses must not overflow its stack.
        bad(
            format!(
                "[runlog]\nmax-logs = {}1{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            &["max-logs"],
        ),
        bad(
            format!("[runlog]\nmax-logs = {}\n", "{a=".repeat(50_000)),
            &["line 2"],
        ),
        // Not UTF-8; NUL bytes.
        bad(
            b"[runlog]\nlevel = \"\xff\xfe\"\n"
                .iter()
                .map(|&b| b as char)
                .collect::<String>(),
            &["level"],
        ),
        bad("[runlog]\nlevel = \"de\0bug\"\n", &["line 2"]),
    ];
    let mut failures = Vec::new();
    let file = tmp.path().join("config.toml");
    let journal = tmp.path().join("journal");
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(&file, &c.text).unwrap();
        let mut cmd = runlog_cmd();
        cmd.arg("--config")
            .arg(&file)
            .arg("--journal-dir")
            .arg(&journal)
            .args(["list-jobs"]);
        let o = output(&mut limited(cmd));
        let shown = cut(&c.text);
        if let Some(e) = sane(&o) {
            failures.push(format!("case {i} {shown:?}: {e}"));
            continue;
        }
        let missing: Vec<_> = c.wants.iter().filter(|w| !o.stderr.contains(*w)).collect();
        if o.code != 2 || !missing.is_empty() || !o.stderr.contains(&*file.to_string_lossy()) {
            failures.push(format!(
                "case {i} {shown:?}: exit {}, missing {missing:?} in {:?}",
                o.code,
                cut(&o.stderr)
            ));
        }
        // A clear error is a short one: a huge value is not echoed whole.
        if o.stderr.len() > 4096 {
            failures.push(format!(
                "case {i} {shown:?}: a {}-byte error message: {:?}",
                o.stderr.len(),
                cut(&o.stderr)
            ));
        }
    }
    // Huge limits that are valid are accepted, and allocate nothing in proportion: a job keeps
    // every run, the shipper's trim keeps every run, the CLI lists them.
    let redis = RedisServer::start();
    let huge = tmp.path().join("huge.toml");
    std::fs::write(
        &huge,
        format!(
            "[runlog]\njournal-dir = {}\nmax-logs = 1000000000000000000\n\
             max-failed-logs = 18446744073709551615\nsegment-size = 1073741824\n\
             [runlog.jobs.huge]\nmax-logs = 999999999999999999\n\
             [runlog-redis]\nurl = {}\n[runlog-shipper]\ndisk-budget = \"1048576TiB\"\n\
             rescan-interval = \"24h\"\n",
            toml_str(&journal.to_string_lossy()),
            toml_str(&redis.url())
        ),
    )
    .unwrap();
    let rl = runlog::RunLogger::builder()
        .config_file(&huge)
        .build()
        .expect("huge but valid limits are accepted");
    assert_eq!(rl.max_logs(), 1_000_000_000_000_000_000);
    logger(&tmp.path().join("unused"));
    for i in 0..3 {
        let run = rl.runlog("huge").unwrap();
        log::info!("huge limits {i}");
        if i == 1 {
            run.fail();
        }
    }
    ship_once_ok(&huge, &tmp.path().join("shipper.log"));
    let o = cli(&huge, &["--source", "redis", "list-runs", "huge"]);
    let accepted_ok = o.code == 0 && o.stdout.lines().count() == 4;
    if !accepted_ok {
        failures.push(format!("huge limits: list-runs: {o:?}"));
    }

    conclude(
        "config files with wrong types, unknown keys and huge values",
        cases.len() as u64 + 1,
        &failures,
        0,
    );
}

/// A Zstandard frame that claims `claimed` bytes of content and holds `content` in one raw
/// block (RFC 8878: single segment, 4-byte content size, no checksum).
fn zstd_claiming(claimed: u32, content: &[u8]) -> Vec<u8> {
    let mut f = 0xFD2F_B528u32.to_le_bytes().to_vec();
    f.push(0b1010_0000); // FCS 4 bytes, single segment
    f.extend_from_slice(&claimed.to_le_bytes());
    let header = 1u32 | ((content.len() as u32) << 3); // last block, raw
    f.extend_from_slice(&header.to_le_bytes()[..3]);
    f.extend_from_slice(content);
    f
}

/// Crafted values that `command` must refuse (exit 1): a run hash of another schema when it
/// reads runs, a damaged chunk when it reads records.
fn must_fail(what: &str, command: &str) -> bool {
    let hash = what.contains("schema version 2")
        || what.contains("without a version")
        || what.contains("non-numeric start");
    let chunk = what.contains("chunk claiming 4 GB")
        || what.contains("length of 4 GB")
        || what.contains("zstd bomb")
        || what.contains("not zstd");
    (hash && command != "list-jobs") || (chunk && ["logs", "why"].contains(&command))
}

/// How an attacker with write access to Redis rewrites a shipped run.
enum Craft {
    Cmd(Vec<Vec<u8>>),
}

fn craft(args: &[&[u8]]) -> Craft {
    Craft::Cmd(args.iter().map(|a| a.to_vec()).collect())
}

#[test]
fn torture_crafted_redis_values_are_bounded_clear_errors_for_the_cli_and_the_shipper() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let rl = logger(&journal);
    let id = {
        let run = rl.runlog("victim").unwrap();
        run.label("user", "bar");
        for i in 0..100 {
            log::info!("victim record {i}");
        }
        log::error!("it failed");
        run.fail();
        run.id().to_owned()
    };
    let redis = RedisServer::start();
    let ship_cfg =
        ShipperConfig::new(&journal, &redis.url(), 10, 10).write(&tmp.path().join("ship.toml"));
    ship_once_ok(&ship_cfg, &tmp.path().join("shipper.log"));
    // The CLI reads Redis only (the journal is elsewhere): every record comes from Redis.
    let cli_cfg = cli_config(tmp.path(), &tmp.path().join("empty"), &redis);
    let mut conn = redis.conn();
    let pristine = runlog_e2e::redis::dump_all(&mut conn, "runlog");
    let run_key = format!("runlog:{{victim}}:run:{id}");
    let log_key = format!("runlog:{{victim}}:log:{id}");
    let runs_key = "runlog:{victim}:runs".to_owned();
    let (rk, lk, zk) = (run_key.as_bytes(), log_key.as_bytes(), runs_key.as_bytes());

    let four_gb_claim = zstd_claiming(u32::MAX, b"tiny");
    let four_gb_len = {
        let mut raw = u32::MAX.to_le_bytes().to_vec();
        raw.extend_from_slice(b"abc");
        zstd::bulk::compress(&raw, 1).unwrap()
    };
    let bomb = {
        // 256 MiB of zeros in a streamed frame (no content size): a few KB on the wire.
        let mut e = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            std::io::Write::write_all(&mut e, &zeros).unwrap();
        }
        e.finish().unwrap()
    };
    let record_of_4gb_string = {
        // A RECORD payload whose target length says 4 GB.
        let mut p = 0i64.to_le_bytes().to_vec();
        p.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut raw = (p.len() as u32).to_le_bytes().to_vec();
        raw.extend_from_slice(&p);
        zstd::bulk::compress(&raw, 1).unwrap()
    };
    let many_lines: String = "0 0 1\n".repeat(1_000_000);
    let huge = vec![b'x'; 8 << 20];
    let cases: Vec<(&str, Vec<Craft>)> = vec![
        (
            "a chunk claiming 4 GB of content",
            vec![craft(&[b"LSET", lk, b"0", &four_gb_claim])],
        ),
        (
            "a record length of 4 GB in a chunk",
            vec![craft(&[b"LSET", lk, b"0", &four_gb_len])],
        ),
        (
            "a string length of 4 GB in a record",
            vec![craft(&[b"LSET", lk, b"0", &record_of_4gb_string])],
        ),
        (
            "a zstd bomb of 256 MiB",
            vec![craft(&[b"LSET", lk, b"0", &bomb])],
        ),
        (
            "a chunk that is not zstd",
            vec![craft(&[b"LSET", lk, b"0", b"garbage"])],
        ),
        ("an empty chunk", vec![craft(&[b"LSET", lk, b"0", b""])]),
        (
            "a run hash of schema version 2",
            vec![craft(&[b"HSET", rk, b"v", b"2"])],
        ),
        (
            "a run hash without a version",
            vec![craft(&[b"HDEL", rk, b"v"])],
        ),
        (
            "the schema key says 2",
            vec![craft(&[b"SET", b"runlog:schema", b"2"])],
        ),
        (
            "the schema key is a list",
            vec![
                craft(&[b"DEL", b"runlog:schema"]),
                craft(&[b"RPUSH", b"runlog:schema", b"1"]),
            ],
        ),
        (
            "a non-numeric start",
            vec![craft(&[b"HSET", rk, b"start", b"soon"])],
        ),
        (
            "a start beyond i64",
            vec![craft(&[b"HSET", rk, b"start", b"99999999999999999999999"])],
        ),
        (
            "a negative record count",
            vec![craft(&[b"HSET", rk, b"records", b"-1"])],
        ),
        (
            "a non-numeric end, last and pid",
            vec![craft(&[
                b"HSET", rk, b"end", b"x", b"last", b"NaN", b"pid", b"-5",
            ])],
        ),
        (
            "a status that is not one",
            vec![craft(&[b"HSET", rk, b"status", b"running"])],
        ),
        (
            "a status of 8 MB",
            vec![craft(&[b"HSET", rk, b"status", &huge])],
        ),
        (
            "a label of 8 MB",
            vec![craft(&[b"HSET", rk, b"label:big", &huge])],
        ),
        (
            "field names that are not UTF-8",
            vec![craft(&[
                b"HSET",
                rk,
                b"label:\xff\xfe",
                b"\xc3\x28",
                b"\xff",
                b"x",
            ])],
        ),
        (
            "an error summary with escapes",
            vec![craft(&[b"HSET", rk, b"error", b"\x1b]0;pwned\x07\x1b[2J"])],
        ),
        (
            "a chunk index with more lines than chunks",
            vec![craft(&[b"HSET", rk, b"chunks", many_lines.as_bytes()])],
        ),
        (
            "a chunk index with no lines",
            vec![craft(&[b"HSET", rk, b"chunks", b""])],
        ),
        (
            "a chunk index of garbage",
            vec![craft(&[b"HSET", rk, b"chunks", b"a b c\n"])],
        ),
        (
            "a chunk index whose counts overflow",
            vec![craft(&[
                b"HSET",
                rk,
                b"chunks",
                b"0 0 9223372036854775808\n0 0 9223372036854775808\n0 0 9223372036854775808\n",
                b"records",
                b"-2",
            ])],
        ),
        (
            "a chunk index with times out of order",
            vec![craft(&[
                b"HSET",
                rk,
                b"chunks",
                b"9223372036854775807 -9223372036854775808 5\n",
            ])],
        ),
        (
            "a run key that is a string",
            vec![craft(&[b"DEL", rk]), craft(&[b"SET", rk, b"x"])],
        ),
        (
            "a log key that is a string",
            vec![craft(&[b"DEL", lk]), craft(&[b"SET", lk, b"x"])],
        ),
        ("a log key that is missing", vec![craft(&[b"DEL", lk])]),
        (
            "a runs key that is a hash",
            vec![craft(&[b"DEL", zk]), craft(&[b"HSET", zk, b"a", b"b"])],
        ),
        (
            "runs members that are not run ids",
            vec![craft(&[
                b"ZADD",
                zk,
                b"1",
                b"../../etc/passwd",
                b"2",
                b"x}{y",
                b"3",
                b"\xff\xfe",
                b"4",
                b"evil\x1b[2J",
            ])],
        ),
        (
            "a runs member of 8 MB",
            vec![craft(&[b"ZADD", zk, b"5", &huge])],
        ),
        (
            "infinite scores",
            vec![
                craft(&[b"ZADD", zk, b"+inf", id.as_bytes()]),
                craft(&[b"ZADD", b"runlog:jobs", b"-inf", b"victim"]),
            ],
        ),
        (
            "jobs members that are not UTF-8 or huge",
            vec![craft(&[
                b"ZADD",
                b"runlog:jobs",
                b"1",
                b"\xff\xfe",
                b"2",
                &huge,
            ])],
        ),
        (
            "a jobs key that is a list",
            vec![
                craft(&[b"DEL", b"runlog:jobs"]),
                craft(&[b"RPUSH", b"runlog:jobs", b"victim"]),
            ],
        ),
    ];
    let commands: [&[&str]; 6] = [
        &["list-jobs"],
        &["list-runs", "victim"],
        &["logs", "victim", "last"],
        &["logs", "victim", "last", "--tail", "3"],
        &[
            "logs",
            "victim",
            "last",
            "--since",
            "2000-01-01",
            "--grep",
            "record 9",
        ],
        &["why", "victim"],
    ];
    let mut failures = Vec::new();
    let mut tried = 0;
    for (what, crafts) in &cases {
        let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();
        for (k, v) in &pristine {
            let _: () = redis::cmd("RESTORE")
                .arg(k)
                .arg(0)
                .arg(v)
                .query(&mut conn)
                .unwrap();
        }
        for Craft::Cmd(args) in crafts {
            let mut c = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
            for a in &args[1..] {
                c.arg(a);
            }
            let _: redis::Value = c.query(&mut conn).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        for args in commands {
            tried += 1;
            let mut full = vec!["--source", "redis"];
            full.extend_from_slice(args);
            let o = cli(&cli_cfg, &full);
            let bad = if let Some(e) = sane(&o) {
                Some(e)
            } else if o.code == 4 {
                Some("exit 4 (unreachable) for data that Redis answered".to_owned())
            } else if o.stderr.len() > 4096 {
                Some(format!("a {}-byte error message", o.stderr.len()))
            } else if o.code != 0 && !o.stderr.contains("runlog:") {
                Some("the error does not name the key".to_owned())
            } else if must_fail(what, args[0]) && o.code != 1 {
                Some("was not refused".to_owned())
            } else if o.stdout.contains('\x1b') {
                Some("an escape sequence reached the output raw".to_owned())
            } else {
                None
            };
            if let Some(b) = bad {
                failures.push(format!(
                    "{what}: runlog {args:?}: {b}: exit {} stderr {:?}",
                    o.code,
                    cut(&o.stderr)
                ));
            }
        }
    }
    // The shipper's store checks: a schema it does not write and an epoch that is not one
    // stop it with an error naming the key, before it uploads anything.
    {
        let run = rl.runlog("victim").unwrap();
        log::info!("one more run to ship");
        drop(run);
    }
    for (what, key, value) in [
        ("schema 2", "runlog:schema", &b"2"[..]),
        ("an epoch with a newline", "runlog:epoch", &b"abc\ndef"[..]),
        ("an epoch of 8 MB", "runlog:epoch", &huge[..]),
    ] {
        tried += 1;
        let _: () = redis::cmd("FLUSHALL").query(&mut conn).unwrap();
        for (k, v) in &pristine {
            let _: () = redis::cmd("RESTORE")
                .arg(k)
                .arg(0)
                .arg(v)
                .query(&mut conn)
                .unwrap();
        }
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query(&mut conn)
            .unwrap();
        let (st, log) =
            runlog_e2e::shipper::ship_once(&ship_cfg, &tmp.path().join("shipper-crafted.log"));
        let runs: Vec<String> = redis::cmd("ZRANGE")
            .arg(zk)
            .arg(0)
            .arg(-1)
            .query(&mut conn)
            .unwrap();
        if st.success() || !log.contains(key) || log.len() > 16384 || runs.len() != 1 {
            failures.push(format!(
                "shipper with {what}: {st}, {} runs in Redis, log {:?}",
                runs.len(),
                cut(&log)
            ));
        }
    }

    conclude(
        "crafted Redis values read by the CLI and the shipper",
        tried,
        &failures,
        0,
    );
}

/// A journal with one failed run of `victim` (3 records) shipped to a private Redis; a CLI
/// config that reads that Redis (and an empty journal); the shipper's config; the run id.
fn victim_in_redis() -> (
    tempfile::TempDir,
    RedisServer,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let rl = logger(&journal);
    let id = {
        let run = rl.runlog("victim").unwrap();
        log::info!("one");
        log::info!("two");
        log::error!("three");
        run.fail();
        run.id().to_owned()
    };
    let redis = RedisServer::start();
    let ship = ShipperConfig::new(&journal, &redis.url(), 10, 10).write(&tmp.path().join("s.toml"));
    ship_once_ok(&ship, &tmp.path().join("shipper.log"));
    let cli_cfg = cli_config(tmp.path(), &tmp.path().join("empty"), &redis);
    (tmp, redis, cli_cfg, ship, id)
}

#[test]
fn a_chunk_index_whose_record_counts_overflow_does_not_panic_logs_tail() {
    let (_tmp, redis, cfg, _, id) = victim_in_redis();
    let _: () = redis::cmd("HSET")
        .arg(format!("runlog:{{victim}}:run:{id}"))
        .arg("chunks")
        .arg("0 0 9223372036854775808\n0 0 9223372036854775808\n")
        .arg("records")
        .arg("-2")
        .query(&mut redis.conn())
        .unwrap();
    let o = cli(
        &cfg,
        &["--source", "redis", "logs", "victim", "last", "--tail", "2"],
    );
    assert_eq!(sane(&o), None);
}

#[test]
fn a_run_hash_of_another_schema_version_is_refused_naming_its_key() {
    let (_tmp, redis, cfg, _, id) = victim_in_redis();
    let key = format!("runlog:{{victim}}:run:{id}");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("v")
        .arg("2")
        .query(&mut redis.conn())
        .unwrap();
    for args in [
        &["list-runs", "victim"][..],
        &["logs", "victim"],
        &["why", "victim"],
    ] {
        let mut full = vec!["--source", "redis"];
        full.extend_from_slice(args);
        let o = cli(&cfg, &full);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains(&key) && o.stderr.contains("schema version Some(\"2\")"),
            "{o:?}"
        );
    }
}

#[test]
fn a_redis_key_of_the_wrong_type_is_a_data_error_naming_it_not_an_unreachable_redis() {
    let (_tmp, redis, cfg, _, id) = victim_in_redis();
    let mut conn = redis.conn();
    let log = format!("runlog:{{victim}}:log:{id}");
    let _: () = redis::cmd("DEL").arg(&log).query(&mut conn).unwrap();
    let _: () = redis::cmd("SET")
        .arg(&log)
        .arg("x")
        .query(&mut conn)
        .unwrap();
    let o = cli(&cfg, &["--source", "redis", "logs", "victim"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(&log) && o.stderr.contains("WRONGTYPE"),
        "{o:?}"
    );
    let _: () = redis::cmd("DEL")
        .arg("runlog:jobs")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("runlog:jobs")
        .arg("x")
        .query(&mut conn)
        .unwrap();
    let o = cli(&cfg, &["--source", "redis", "list-jobs"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .contains("runlog:jobs holds data that is not runlog schema 1"),
        "{o:?}"
    );
}

#[test]
fn a_crafted_epoch_in_redis_stops_the_shipper_with_an_error_naming_the_key() {
    let (tmp, redis, _, ship, _) = victim_in_redis();
    let rl = logger(&tmp.path().join("journal"));
    drop(rl.runlog("victim").unwrap());
    let _: () = redis::cmd("SET")
        .arg("runlog:epoch")
        .arg("not an epoch")
        .query(&mut redis.conn())
        .unwrap();
    let (st, log) = runlog_e2e::shipper::ship_once(&ship, &tmp.path().join("shipper2.log"));
    assert!(!st.success(), "{log}");
    assert!(
        log.contains("runlog:epoch") && log.contains("not an epoch"),
        "{log}"
    );
}
