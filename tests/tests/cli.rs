//! End-to-end tests of the `runlog` command: journals are written with the runlog library in a
//! temporary directory, then the real binary reads them.
//!
//! The binary must be built first (`cargo build --workspace`, as `scripts/test.sh` does): a
//! test cannot build it, and a missing or stale binary fails the tests with that advice.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use runlog_e2e::cli::{line_channel, logger, output, runlog_bin, runlog_cmd, Out};
use tempfile::TempDir;

const JOB: &str = "nightly-report";

fn bin() -> PathBuf {
    runlog_bin()
}

/// Ids in a journal are distinct by time: a short pause between runs keeps their order and
/// makes each microsecond timestamp unique.
fn pause() {
    std::thread::sleep(Duration::from_millis(3));
}

/// A journal with one job of four runs: ok, failed (labelled), cancelled, labelled ok.
struct Fixture {
    dir: TempDir,
    ok: String,
    failed: String,
    cancelled: String,
    labelled: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rl = logger(dir.path());
    let ok = {
        let run = rl.runlog(JOB).unwrap();
        log::info!("ok run starts");
        log::debug!(user = "alice"; "processing");
        run.id().to_owned()
    };
    pause();
    let failed = {
        let run = rl.runlog(JOB).unwrap();
        run.label("user", "bar");
        log::info!("failed run starts");
        log::error!("boom:\nsecond line\n  third line");
        run.fail();
        run.id().to_owned()
    };
    pause();
    let cancelled = {
        let run = rl.runlog(JOB).unwrap();
        log::info!("a boring run");
        let id = run.id().to_owned();
        run.cancel();
        id
    };
    pause();
    let labelled = {
        let run = rl.runlog(JOB).unwrap();
        run.label("user", "carol");
        run.label("env", "prod");
        log::warn!("labelled run is careful");
        run.id().to_owned()
    };
    Fixture {
        dir,
        ok,
        failed,
        cancelled,
        labelled,
    }
}

fn cmd() -> Command {
    runlog_cmd()
}

/// `runlog --journal-dir DIR ARGS...`.
fn runlog(dir: &Path, args: &[&str]) -> Out {
    output(cmd().arg("--journal-dir").arg(dir).args(args))
}

/// Like [`runlog`], asserting success.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = runlog(dir, args);
    assert_eq!(o.code, 0, "runlog {args:?} failed: {o:?}");
    assert_eq!(o.stderr, "", "runlog {args:?} warned: {o:?}");
    o.stdout
}

/// The segment files of a job, sorted.
fn segments(journal: &Path, job: &str) -> Vec<PathBuf> {
    let dir = runlog::journal::layout::job_dir(journal, job);
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn segment_of(journal: &Path, job: &str, run: &str) -> PathBuf {
    segments(journal, job)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with(run))
        .expect("segment of the run")
}

#[test]
fn list_jobs_shows_each_job_with_its_run_count_and_last_status() {
    let f = fixture();
    let rl = logger(f.dir.path());
    {
        let run = rl.runlog("other-job").unwrap();
        log::info!("hello");
        run.fail();
    }
    let out = ok(f.dir.path(), &["list-jobs"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["JOB", "LAST", "START", "STATUS", "RUNS"]
    );
    // The most recently active job first.
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!((row[0], row[3], row[2]), ("other-job", "1", "failed"));
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(row[0], JOB);
    assert_eq!(row[3], "3", "the cancelled run is not counted: {out}");
    assert_eq!(
        row[1],
        format!("{}Z", &f.labelled[..19]),
        "start of the last run"
    );
    assert_eq!(row[2], "ok");
    // Columns line up: each starts at the same position as its header.
    let at = lines[0].find("RUNS").unwrap();
    assert_eq!(&lines[2][at..at + 1], "3");
    assert!(lines.iter().all(|l| !l.ends_with(' ')), "{out:?}");
}

#[test]
fn list_runs_shows_status_and_labels_newest_last_and_never_the_cancelled_run() {
    let f = fixture();
    let out = ok(f.dir.path(), &["list-runs", JOB]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["RUN", "STATUS", "START", "DURATION", "RECORDS", "HOST", "LABELS"]
    );
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let ids: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(ids, [&f.ok, &f.failed, &f.labelled]);
    assert!(!out.contains(&f.cancelled), "{out}");
    let status: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(status, ["ok", "failed", "ok"]);
    let records: Vec<&str> = rows.iter().map(|r| r[4]).collect();
    assert_eq!(records, ["2", "2", "1"]);
    let labels: Vec<&str> = rows.iter().map(|r| r[6]).collect();
    // Sorted by key, as from Redis (whose hash fields have no order), not in the order set.
    assert_eq!(labels, ["-", "user=bar", "env=prod,user=carol"]);
    for r in &rows {
        assert!(r[2].ends_with('Z') && r[0].starts_with(r[2].trim_end_matches('Z')));
        assert!(r[3].ends_with('s'), "duration {}", r[3]);
    }
}

#[test]
fn logs_accepts_a_full_id_a_prefix_last_and_negative_refs() {
    let f = fixture();
    let d = f.dir.path();
    let failed_prefix = &f.failed[..26]; // to the microsecond
    let with_space = failed_prefix.replacen('T', " ", 1);
    for (r, want) in [
        (f.ok.as_str(), "ok run starts"),
        (failed_prefix, "failed run starts"),
        (with_space.as_str(), "failed run starts"),
        ("last", "labelled run is careful"),
        ("-1", "labelled run is careful"),
        ("-2", "failed run starts"),
        ("-3", "ok run starts"),
        ("last-failed", "failed run starts"),
    ] {
        let out = ok(d, &["logs", JOB, r]);
        assert!(out.contains(want), "logs {r}: {out}");
        let n = out.lines().filter(|l| l.starts_with("20")).count();
        assert!(n >= 1 && !out.contains("==>"), "logs {r}: {out}");
    }
    let out = ok(d, &["logs", JOB, &f.ok]);
    assert!(
        out.contains(" DEBUG ") && out.contains(": processing user=alice\n"),
        "{out}"
    );
    let o = runlog(d, &["logs", JOB, "-4"]);
    assert_eq!(o.code, 3, "not found: {o:?}");
    assert!(o.stderr.contains("has only 3 run(s)"), "{o:?}");
    let o = runlog(d, &["logs", JOB, &f.cancelled]);
    assert_eq!(o.code, 3, "a cancelled run is forgotten: {o:?}");
}

#[test]
fn an_ambiguous_prefix_lists_the_candidates_and_exits_2() {
    let f = fixture();
    let prefix = &f.ok[..4]; // the year: every run
    let o = runlog(f.dir.path(), &["logs", JOB, prefix]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(o.stdout, "");
    assert!(
        o.stderr
            .starts_with(&format!("runlog: run {prefix:?} matches 3 runs of job")),
        "{}",
        o.stderr
    );
    for id in [&f.ok, &f.failed, &f.labelled] {
        assert!(o.stderr.contains(id.as_str()), "{}", o.stderr);
    }
    assert!(!o.stderr.contains(&f.cancelled));
    assert!(o.stderr.contains(&format!("runlog list-runs {JOB}")));
}

#[test]
fn an_unknown_run_job_or_journal_exits_3_and_says_what_to_do() {
    let f = fixture();
    let d = f.dir.path();
    let o = runlog(d, &["logs", JOB, "1999-01-01"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stderr.starts_with("runlog: "), "{o:?}");
    assert!(
        o.stderr.contains("1999-01-01") && o.stderr.contains(JOB),
        "{o:?}"
    );
    assert!(
        o.stderr.contains(&format!("runlog list-runs {JOB}")),
        "{o:?}"
    );

    for args in [
        &["list-runs", "no-such-job"][..],
        &["logs", "no-such-job", "last"],
    ] {
        let o = runlog(d, args);
        assert_eq!(o.code, 3, "{o:?}");
        assert!(
            o.stderr.contains("no-such-job") && o.stderr.contains("runlog list-jobs"),
            "{o:?}"
        );
    }

    let missing = d.join("nowhere");
    let o = runlog(&missing, &["list-jobs"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stderr
            .contains(&format!("journal dir {} does not exist", missing.display()))
            && o.stderr.contains("--journal-dir")
            && o.stderr.contains("RUNLOG_JOURNAL_DIR"),
        "{o:?}"
    );

    let o = runlog(d, &["logs", JOB, "last", "--level", "loud"]);
    assert_eq!(o.code, 2, "a usage error: {o:?}");
}

#[test]
fn with_several_runs_each_line_starts_with_its_run_id() {
    let f = fixture();
    let out = ok(f.dir.path(), &["logs", JOB, "-3", "-2", "last"]);
    for line in out.lines() {
        assert!(
            [&f.ok, &f.failed, &f.labelled]
                .iter()
                .any(|id| line.starts_with(&format!("{id} "))),
            "{line:?} in {out}"
        );
    }
    // In the order named, a multi-line message's continuation lines prefixed too.
    let first = out.find("ok run starts").unwrap();
    let boom = out.find("boom:").unwrap();
    let cont = out.find(&format!("{}   second line", f.failed)).unwrap();
    let last = out.find("labelled run is careful").unwrap();
    assert!(first < boom && boom < cont && cont < last, "{out}");
    // One run: no prefix.
    let out = ok(f.dir.path(), &["logs", JOB, "last"]);
    assert!(!out.contains(&f.labelled), "{out}");
}

#[test]
fn multi_line_messages_continue_indented_under_their_record() {
    let f = fixture();
    let out = ok(f.dir.path(), &["logs", JOB, &f.failed]);
    let lines: Vec<&str> = out.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.ends_with(": boom:"))
        .expect(&out);
    assert!(lines[i].contains(" ERROR "), "{out}");
    assert_eq!(lines[i + 1], "  second line");
    assert_eq!(lines[i + 2], "    third line");
    // Every line is a record (starts with its time) or a continuation (starts with spaces).
    assert!(lines
        .iter()
        .all(|l| l.starts_with("20") || l.starts_with("  ")));
}

#[test]
fn level_and_grep_select_records() {
    let f = fixture();
    let d = f.dir.path();
    let out = ok(d, &["logs", JOB, &f.ok, "--level", "info"]);
    assert!(
        out.contains("ok run starts") && !out.contains("processing"),
        "{out}"
    );
    let out = ok(d, &["logs", JOB, &f.ok, "--grep", "user=ali"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("processing"));
    let out = ok(d, &["logs", JOB, "-2", "--level", "error"]);
    assert!(
        out.starts_with("20") && out.contains("boom") && !out.contains("starts"),
        "{out}"
    );
    let o = runlog(d, &["logs", JOB, "last", "--grep", "("]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("--grep"), "{o:?}");
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn json_prints_one_valid_object_per_job_run_and_record() {
    let f = fixture();
    let d = f.dir.path();
    let jobs = json_lines(&ok(d, &["list-jobs", "--json"]));
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["job"], JOB);
    assert_eq!(jobs[0]["runs"], 3);
    assert_eq!(jobs[0]["last_status"], "ok");

    let runs = json_lines(&ok(d, &["--json", "list-runs", JOB]));
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&f.ok, &f.failed, &f.labelled]);
    assert_eq!(runs[1]["status"], "failed");
    assert_eq!(runs[2]["labels"]["env"], "prod");
    assert_eq!(runs[2]["labels"]["user"], "carol");
    assert_eq!(runs[0]["records"], 2);
    assert!(runs[0]["end"].is_string() && runs[0]["duration_ms"].is_u64());

    let recs = json_lines(&ok(d, &["logs", JOB, "-3", "-2", "--json"]));
    assert_eq!(recs.len(), 4, "no header lines in JSON");
    assert_eq!(recs[1]["fields"]["user"], "alice");
    assert_eq!(recs[1]["job"], JOB);
    assert!(recs[1]["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(recs[1]["level"], "DEBUG");
    assert_eq!(recs[3]["message"], "boom:\nsecond line\n  third line");
    assert_eq!(recs[3]["run"], f.failed.as_str());
    assert!(recs[3]["line"].is_u64() && recs[3]["file"].is_string());
}

/// The value of a JSON field as text shows it: strings bare, numbers in decimal, labels as
/// `k=v,...`.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", json_text(v)))
            .collect::<Vec<_>>()
            .join(","),
        v => v.to_string(),
    }
}

// `list-runs --json` and `why --json` carried no error text or exit status although text
// `why` printed them.
#[test]
fn every_text_field_of_list_jobs_list_runs_and_why_is_in_their_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = runlog(
        d,
        &[
            "exec",
            JOB,
            "--label",
            "user=bar",
            "--",
            "sh",
            "-c",
            "echo working; exit 3",
        ],
    );
    assert_eq!(o.code, 3, "{o:?}");

    // list-jobs: JOB, LAST START, STATUS, RUNS (times are compared by their second).
    let text = ok(d, &["list-jobs"]);
    let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    let j = &json_lines(&ok(d, &["list-jobs", "--json"]))[0];
    assert_eq!(row[0], json_text(&j["job"]));
    assert_eq!(row[2], json_text(&j["last_status"]));
    assert_eq!(row[3], json_text(&j["runs"]));
    assert_eq!(j["v"], 1);

    // list-runs: RUN, STATUS, START, DURATION, RECORDS, HOST, LABELS.
    let text = ok(d, &["list-runs", JOB]);
    let row: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    let r = &json_lines(&ok(d, &["list-runs", JOB, "--json"]))[0];
    for (col, field) in [
        (0, "id"),
        (1, "status"),
        (4, "records"),
        (5, "host"),
        (6, "labels"),
    ] {
        assert_eq!(row[col], json_text(&r[field]), "{field}: {text}");
    }
    assert!(r["duration_ms"].is_u64() && r["start"].is_string(), "{r}");
    assert_eq!(r["v"], 1);

    // why: every header line's value, the error text and the command's exit status.
    let o = runlog(d, &["why", JOB]);
    assert_eq!(o.code, 0, "{o:?}");
    let field = |name: &str| {
        o.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name}: line in {}", o.stdout))
            .trim()
            .to_owned()
    };
    let lines = json_lines(&ok(d, &["why", JOB, "--json"]));
    let w = &lines[0];
    assert_eq!(field("job"), json_text(&w["job"]));
    assert_eq!(field("run"), json_text(&w["id"]));
    assert_eq!(field("status"), json_text(&w["status"]));
    assert_eq!(field("labels"), json_text(&w["labels"]));
    assert_eq!(field("error"), "command exited with status 3");
    assert_eq!(field("error"), json_text(&w["error"]));
    assert_eq!(w["exit_status"], 3, "{w}");
    assert_eq!(w["signal"], serde_json::Value::Null, "{w}");
    let started = field("started");
    for f in ["records", "host", "pid"] {
        assert!(
            started.contains(&json_text(&w[f])),
            "{f} of {w} not in {started:?}"
        );
    }
    let before: usize = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("-- "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(w["records_before"], before, "{w}");
    // Then the records shown: the ones before the failure and the failure.
    assert_eq!(lines.len(), before + 2, "{lines:?}");
    assert!(lines[1..]
        .iter()
        .all(|r| r["v"] == 1 && r["run"] == w["id"]));
    assert!(o.stdout.contains("stdout: working"), "{}", o.stdout);
    assert!(lines.iter().any(|r| r["message"] == "working"));
}

// `runlog journal verify` without a path was a usage error; it checks the configured journal.
#[test]
fn verify_without_a_path_checks_the_configured_journal() {
    let f = fixture();
    let d = f.dir.path();
    let o = output(
        cmd()
            .env("RUNLOG_JOURNAL_DIR", d)
            .args(["journal", "verify"]),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout
            .contains(&format!("{}: checked 3 segments", d.display())),
        "{o:?}"
    );
    let o = runlog(d, &["journal", "verify"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains(&format!("{}: checked", d.display())));
    // The configured journal is checked as a path would be: corruption exits 1.
    let seg = segment_of(d, JOB, &f.failed);
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&seg, bytes).unwrap();
    let o = runlog(d, &["journal", "verify"]);
    assert_eq!(o.code, 1, "{o:?}");
}

// `--since` later than `--until` listed nothing and exited 0, as if no run matched.
#[test]
fn since_later_than_until_is_a_usage_error() {
    let f = fixture();
    let d = f.dir.path();
    for args in [
        &["list-runs", JOB, "--since", "1h", "--until", "2h"][..],
        &[
            "logs",
            JOB,
            "last",
            "--since",
            "2026-11-29",
            "--until",
            "2026-11-28",
        ],
    ] {
        let o = runlog(d, args);
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(
            o.stderr.contains("is later than --until") && o.stderr.contains("swap them"),
            "{o:?}"
        );
    }
    // An equal pair is no mistake.
    let o = runlog(d, &["list-runs", JOB, "--since", "@5", "--until", "@5"]);
    assert_eq!(o.code, 0, "{o:?}");
}

// An empty job name was "not found" (exit 3) for `logs`, a failure of runlog (125) for `exec`.
#[test]
fn an_empty_job_name_is_a_usage_error_everywhere() {
    let f = fixture();
    let d = f.dir.path();
    for args in [
        &["list-runs", ""][..],
        &["logs", ""],
        &["logs", "", "last"],
        &["why", ""],
        &["exec", "", "--", "true"],
    ] {
        let o = runlog(d, args);
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(o.stderr.contains("the job name is empty"), "{o:?}");
    }
}

/// The long options a `--help` lists.
fn help_options(help: &str) -> Vec<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| l.split([' ', ',', '=']).take(3))
        .filter(|t| t.starts_with("--"))
        .map(|t| t.split('<').next().unwrap().trim().to_owned())
        .collect()
}

// Every common option was `global`, so `runlog exec --help` listed --json, --source, --color
// and --raw, which exec never used, and `journal dump --help` listed --source.
#[test]
fn each_subcommands_help_lists_only_the_options_that_apply_to_it() {
    let common = [
        "--config",
        "--journal-dir",
        "--source",
        "--json",
        "--color",
        "--raw",
    ];
    let cases: [(&[&str], &[&str]); 8] = [
        (
            &["list-jobs"],
            &["--config", "--journal-dir", "--source", "--json", "--color"],
        ),
        (
            &["list-runs"],
            &["--config", "--journal-dir", "--source", "--json", "--color"],
        ),
        (&["logs"], &common),
        (&["why"], &common),
        (&["exec"], &["--config", "--journal-dir"]),
        (
            &["journal", "verify"],
            &["--config", "--journal-dir", "--json"],
        ),
        (&["journal", "dump"], &[]),
        (&["completions"], &[]),
    ];
    for (sub, takes) in cases {
        let o = output(cmd().args(sub).arg("--help"));
        assert_eq!(o.code, 0, "{sub:?}: {o:?}");
        let listed = help_options(&o.stdout);
        for opt in common {
            assert_eq!(
                listed.iter().any(|l| l == opt),
                takes.contains(&opt),
                "runlog {sub:?} --help and {opt}: {listed:?}"
            );
        }
        // What help leaves out is refused there, a usage error.
        for opt in common.iter().filter(|o| !takes.contains(o)) {
            let mut args: Vec<&str> = sub.to_vec();
            args.push(opt);
            let o = output(cmd().args(&args));
            assert_eq!(o.code, 2, "{args:?}: {o:?}");
        }
    }
    // Before the subcommand, as always, each is taken.
    let f = fixture();
    let o = output(
        cmd()
            .args(["--json", "--journal-dir"])
            .arg(f.dir.path())
            .args(["--color", "never", "list-runs", JOB]),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(json_lines(&o.stdout).len(), 3, "{}", o.stdout);
}

#[test]
fn verify_of_a_healthy_journal_exits_0() {
    let f = fixture();
    let d = f.dir.path();
    let seg = segment_of(d, JOB, &f.labelled);
    let job_dir = seg.parent().unwrap().to_path_buf();
    for p in [d.to_path_buf(), job_dir, seg] {
        let o = runlog(d, &["journal", "verify", p.to_str().unwrap()]);
        assert_eq!(o.code, 0, "{o:?}");
        assert_eq!(o.stdout.lines().count(), 1, "only the summary: {o:?}");
        assert!(o.stdout.contains("no corruption"), "{o:?}");
    }
}

/// A journal with one run of many records; its segment file.
fn big_run(records: usize) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rl = logger(dir.path());
    let id = {
        let run = rl.runlog("big").unwrap();
        for i in 0..records {
            log::info!(i = i; "record {i} of {records}: some text to make it longer");
        }
        run.id().to_owned()
    };
    let seg = segment_of(dir.path(), "big", &id);
    (dir, seg)
}

#[test]
fn verify_reports_a_flipped_byte_mid_segment_with_file_and_offset_and_exits_1() {
    let (dir, seg) = big_run(50);
    let d = dir.path();
    let scan = runlog::journal::reader::scan_file(&seg).unwrap();
    let victim = scan.frames[25].offset;
    let mut bytes = fs::read(&seg).unwrap();
    bytes[victim as usize + 20] ^= 0x40; // inside the payload: the CRC no longer matches
    fs::write(&seg, &bytes).unwrap();

    let o = runlog(d, &["journal", "verify", d.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    let expect = format!("{}: offset {victim}: corrupt frame", seg.display());
    assert!(
        o.stdout.contains(&expect),
        "want {expect:?} in {}",
        o.stdout
    );
    assert!(o.stdout.contains("CORRUPTION"), "{}", o.stdout);

    let o = runlog(d, &["--json", "journal", "verify", seg.to_str().unwrap()]);
    assert_eq!(o.code, 1);
    let found = json_lines(&o.stdout);
    assert_eq!(found[0]["offset"], victim);
    assert_eq!(found[0]["severity"], "corrupt");
    assert_eq!(found.last().unwrap()["ok"], false);

    // Listings still work, and warn naming the file and offset.
    let o = runlog(d, &["list-runs", "big"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("warning")
            && o.stderr.contains(&seg.display().to_string())
            && o.stderr.contains(&format!("offset {victim}")),
        "{o:?}"
    );

    let o = runlog(d, &["journal", "dump", seg.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stdout
            .contains(&format!("{victim}  CORRUPT CRC mismatch")),
        "{o:?}"
    );
    let last = o.stdout.lines().last().unwrap();
    assert!(last.starts_with("end     clean at "), "{last}");
}

/// Bug: one flipped byte in the middle of a committed run hid the rest of it: `list-runs`
/// showed it `crashed` with the records before the damage only, and `logs` and `journal dump`
/// stopped at the bad frame.
#[test]
fn a_flipped_byte_mid_run_lists_it_damaged_and_shows_the_records_after_a_marker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rl = logger(d);
    let id = {
        let run = rl.runlog("dmg").unwrap();
        for i in 0..4 {
            log::info!("record {i} of 4");
        }
        run.id().to_owned()
    };
    let seg = segment_of(d, "dmg", &id);
    let name = seg.file_name().unwrap().to_str().unwrap().to_owned();
    let scan = runlog::journal::reader::scan_file(&seg).unwrap();
    // Frame 0 is BEGIN: damage the second record, frame 2.
    let (victim, next) = (scan.frames[2].offset, scan.frames[3].offset);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[victim as usize + 20] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();

    let o = runlog(d, &["list-runs", "dmg"]);
    assert_eq!(o.code, 0, "{o:?}");
    let row = o.stdout.lines().nth(1).unwrap();
    assert!(row.contains(" damaged "), "{o:?}");
    assert!(o.stderr.contains(&format!("offset {victim}")), "{o:?}");
    let o = runlog(d, &["--json", "list-runs", "dmg"]);
    let runs = json_lines(&o.stdout);
    assert_eq!(runs[0]["status"], "damaged", "{o:?}");
    // Three records and the marker.
    assert_eq!(runs[0]["records"], 4, "{o:?}");
    let o = runlog(d, &["list-jobs"]);
    assert!(
        o.stdout.lines().nth(1).unwrap().contains(" damaged "),
        "{o:?}"
    );

    let o = runlog(d, &["logs", "dmg", "last"]);
    assert_eq!(o.code, 0, "{o:?}");
    let marker = format!(
        "runlog::damage: -- {} bytes unreadable at {name}:{victim} --",
        next - victim
    );
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{o:?}");
    assert!(lines[0].ends_with("record 0 of 4"), "{o:?}");
    assert!(
        lines[1].contains(" WARN ") && lines[1].ends_with(&marker),
        "{o:?}"
    );
    assert!(lines[2].ends_with("record 2 of 4"), "{o:?}");
    assert!(lines[3].ends_with("record 3 of 4"), "{o:?}");

    let o = runlog(d, &["journal", "dump", seg.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stdout
            .contains(&format!("{victim}  CORRUPT CRC mismatch"))
            && o.stdout.contains(&format!(
                "{} bytes unreadable, next valid frame at {next}",
                next - victim
            )),
        "{o:?}"
    );
    assert!(
        o.stdout.contains("record 3 of 4") && o.stdout.contains("COMMIT"),
        "{o:?}"
    );
    let o = runlog(d, &["journal", "verify", d.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{o:?}");

    // A torn tail after a crash is still a crash, not damage.
    let len = bytes.len() as u64;
    bytes[victim as usize + 20] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let out = ok(d, &["list-runs", "dmg"]);
    assert!(out.lines().nth(1).unwrap().contains(" crashed "), "{out}");
}

#[test]
fn a_torn_tail_is_a_crash_not_corruption() {
    let (dir, seg) = big_run(5);
    let d = dir.path();
    let len = fs::metadata(&seg).unwrap().len();
    // Cut the end frame in half: what a kill in the middle of writing it leaves.
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let o = runlog(d, &["journal", "verify", d.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("torn tail (crash), cut on recovery"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains(&seg.display().to_string()));
    let out = ok(d, &["list-runs", "big"]);
    assert!(out.lines().nth(1).unwrap().contains(" crashed "), "{out}");
    let out = ok(d, &["logs", "big", "last"]);
    assert_eq!(
        out.lines().count(),
        5,
        "every record before the crash: {out}"
    );
}

/// A run of job `j` written by hand: segment `s` holds, after its header (and for segment 0
/// the BEGIN frame), one record and then the end frames `ends[s]`. Returns the run id.
fn handmade_run(journal: &Path, id: &str, ends: &[&[runlog::journal::payload::Outcome]]) -> String {
    use runlog::journal::frame::{encode_frame, encode_header, FrameType};
    use runlog::journal::payload::{
        encode_begin, encode_end, encode_record, Begin, End, Outcome, Record,
    };
    let t0 = runlog::time::parse_utc(&id[..27]).unwrap();
    let dir = runlog::journal::layout::job_dir(journal, "j");
    fs::create_dir_all(&dir).unwrap();
    for (s, ends) in ends.iter().enumerate() {
        let mut seg = encode_header(s as u32, id).to_vec();
        if s == 0 {
            seg.extend(encode_frame(
                FrameType::Begin,
                &encode_begin(&Begin {
                    start_ns: t0,
                    pid: 1,
                    run_id: id.into(),
                    job: "j".into(),
                    host: "h".into(),
                }),
            ));
        }
        let rec = Record {
            ts_ns: t0 + 1000 * s as i64,
            level: log::Level::Info,
            target: "t".into(),
            module_path: None,
            file: None,
            line: None,
            kvs: vec![],
            message: format!("in segment {s}"),
            truncated: false,
        };
        seg.extend(encode_frame(FrameType::Record, &encode_record(&rec)));
        for o in ends.iter() {
            let kind = if *o == Outcome::Cancelled {
                FrameType::Cancel
            } else {
                FrameType::Commit
            };
            let end = End {
                end_ns: t0 + 5000,
                outcome: *o,
                records: 2,
                dropped: 0,
            };
            seg.extend(encode_frame(kind, &encode_end(&end)));
        }
        fs::write(
            dir.join(runlog::journal::layout::segment_name(id, s as u32)),
            seg,
        )
        .unwrap();
    }
    id.to_owned()
}

/// Bug: a run with a CANCEL frame in segment 0 and a COMMIT frame in segment 1 listed as `ok`:
/// the last end frame won. The first one ends the run (a writer writes nothing after it), so
/// that run is cancelled, and frames after an end frame are damage.
#[test]
fn the_first_end_frame_ends_a_run_and_frames_after_it_are_damage() {
    use runlog::journal::payload::Outcome::{Cancelled, Ok as Done};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cancelled = handmade_run(
        d,
        "2026-11-28T10:00:00.000000Z-0000000000aa",
        &[&[Cancelled], &[Done]],
    );
    let committed = handmade_run(
        d,
        "2026-11-28T11:00:00.000000Z-0000000000bb",
        &[&[Done], &[Cancelled]],
    );
    let o = runlog(d, &["--json", "list-runs", "j"]);
    assert_eq!(o.code, 0, "{o:?}");
    let runs = json_lines(&o.stdout);
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [committed.as_str()],
        "the cancelled run is not listed: {o:?}"
    );
    assert_eq!(runs[0]["status"], "damaged", "{o:?}");
    assert!(
        runs[0]["end"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-28T11:00:00.000005"),
        "{o:?}"
    );
    assert!(
        o.stderr.contains("frames after the run's end frame"),
        "{o:?}"
    );
    let o = runlog(d, &["logs", "j", &cancelled]);
    assert_ne!(o.code, 0, "{o:?}");
}

/// Bug: `runlog why` took the first record with target `runlog::error` or `runlog::panic`, at
/// any level, while the shipper's `error` field takes the last ERROR record of the best kind:
/// the same run named two different errors depending on where it was read.
#[test]
fn why_picks_the_failure_by_the_same_rule_as_the_error_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rl = logger(d);
    {
        let run = rl.runlog("rule").unwrap();
        log::warn!(target: "runlog::error", "a WARN record is never the error");
        log::error!("first error");
        log::info!("between");
        log::error!("the last error");
        log::info!("after it");
        run.fail();
    }
    let out = ok(d, &["why", "rule", "-n", "1"]);
    assert!(out.contains("error:    the last error\n"), "{out}");
    // The record before the failure, the failure and what follows it.
    assert!(out.contains("between") && out.contains("after it"), "{out}");
    assert!(!out.contains("first error"), "{out}");
}

#[test]
fn dump_prints_every_frame_and_how_the_segment_ends() {
    let f = fixture();
    let seg = segment_of(f.dir.path(), JOB, &f.labelled);
    let out = ok(f.dir.path(), &["journal", "dump", seg.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("header  version=1 seq=0 run="),
        "{out}"
    );
    let kinds: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["BEGIN", "LABEL", "LABEL", "RECORD", "COMMIT"],
        "{out}"
    );
    assert!(lines[1].trim_start().starts_with("64  BEGIN   "), "{out}");
    assert!(out.contains(&format!("job={JOB:?}")));
    assert!(out.contains(r#""env"="prod""#));
    assert!(out.contains(r#"message="labelled run is careful""#));
    assert!(lines[5].contains("COMMIT  ok "), "{out}");
    let len = fs::metadata(&seg).unwrap().len();
    assert_eq!(lines[6], format!("end     clean at {len}"));

    // A directory: every segment, each under its own header line.
    let out = ok(
        f.dir.path(),
        &["journal", "dump", f.dir.path().to_str().unwrap()],
    );
    assert_eq!(out.lines().filter(|l| l.starts_with("==> ")).count(), 3);
}

#[test]
fn a_closed_pipe_ends_quietly_with_success() {
    let (dir, _) = big_run(5000);
    let err = dir.path().join("stderr");
    let rc = dir.path().join("rc");
    // The exit status and stderr of runlog itself, not of the pipeline.
    let o = output(
        Command::new("sh")
            .arg("-c")
            .arg(r#"{ "$0" --journal-dir "$1" logs big last 2>"$2"; echo $? >"$3"; } | head -1"#)
            .arg(bin())
            .arg(dir.path())
            .arg(&err)
            .arg(&rc)
            .env_remove("RUNLOG_CONFIG")
            .env_remove("RUNLOG_JOURNAL_DIR"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout.lines().count(), 1, "{o:?}");
    assert!(o.stdout.contains("record 0 of 5000"), "{o:?}");
    assert_eq!(fs::read_to_string(&err).unwrap(), "", "runlog's stderr");
    assert_eq!(
        fs::read_to_string(&rc).unwrap().trim(),
        "0",
        "runlog's exit status"
    );
}

/// A job whose messages, labels and name carry terminal control sequences.
fn hostile_journal() -> (TempDir, &'static str) {
    let dir = tempfile::tempdir().unwrap();
    let rl = logger(dir.path());
    let job = "evil\x1b[2Jjob";
    {
        let run = rl.runlog(job).unwrap();
        run.label("note", "\x1b]0;pwned\x07");
        log::error!(k = "v\x7fw"; "\x1b[31mred\x1b[0m and\rback");
    }
    (dir, job)
}

#[test]
fn control_characters_reach_a_pipe_raw() {
    let (dir, job) = hostile_journal();
    let d = dir.path();
    let out = ok(d, &["logs", job, "last"]);
    assert!(
        out.contains(": \x1b[31mred\x1b[0m and\rback k=v\x7fw\n"),
        "{out:?}"
    );
    assert!(!out.contains("\\x1b"), "{out:?}");
    // Tables escape job text in a pipe too, so that one row stays one line.
    let out = ok(d, &["list-runs", job]);
    assert!(out.contains("note=\\x1b]0;pwned\\x07"), "{out:?}");
    let out = ok(d, &["list-jobs"]);
    assert!(out.contains("evil\\x1b[2Jjob"), "{out:?}");
    assert!(!out.contains('\x1b'), "{out:?}");
    // --color=always colours even into a pipe; nothing else changes.
    let out = ok(d, &["logs", job, "last", "--color=always"]);
    assert!(out.contains(" \x1b[1;31mERROR\x1b[0m "), "{out:?}");
}

/// `runlog --journal-dir DIR ARGS...` on a terminal.
fn on_a_terminal(dir: &Path, args: &[&str], no_color: bool) -> Out {
    runlog_e2e::cli::on_a_terminal(
        dir,
        &[OsStr::new("--journal-dir"), dir.as_os_str()],
        args,
        no_color,
    )
}

#[test]
fn on_a_terminal_control_characters_are_escaped_and_levels_coloured_unless_no_color() {
    let (dir, job) = hostile_journal();
    let d = dir.path();
    let o = on_a_terminal(d, &["logs", job, "last"], false);
    assert_eq!(o.code, 0, "{o:?}");
    let line = o.stdout.lines().next().unwrap();
    assert!(
        line.ends_with(": \\x1b[31mred\\x1b[0m and\\rback k=v\\u{7f}w"),
        "{line:?}"
    );
    assert!(
        line.contains(" \x1b[1;31mERROR\x1b[0m "),
        "coloured level: {line:?}"
    );
    // The only escape sequences left are the level's colour.
    assert_eq!(line.matches('\x1b').count(), 2, "{line:?}");

    let o = on_a_terminal(d, &["logs", job, "last"], true);
    assert!(!o.stdout.contains('\x1b'), "NO_COLOR: {:?}", o.stdout);
    assert!(
        o.stdout.contains(" ERROR cli: \\x1b[31mred"),
        "{:?}",
        o.stdout
    );

    let o = on_a_terminal(d, &["list-runs", job], true);
    assert!(
        o.stdout.contains("note=\\x1b]0;pwned\\x07"),
        "{:?}",
        o.stdout
    );
    let o = on_a_terminal(d, &["list-jobs"], true);
    assert!(o.stdout.contains("evil\\x1b[2Jjob"), "{:?}", o.stdout);
    assert!(!o.stdout.contains('\x1b'), "{:?}", o.stdout);
}

/// The display width of a table row's first cell and the spaces after it: where the second
/// column starts, in terminal columns (CJK characters take two).
fn second_column_at(line: &str) -> usize {
    let first = line.split("  ").next().unwrap();
    let spaces = line[first.len()..].len() - line[first.len()..].trim_start().len();
    let width: usize = first
        .chars()
        .map(|c| {
            if ('\u{4e00}'..='\u{9fff}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum();
    width + spaces
}

// A 10,000-character job name padded every row of `list-jobs` to 10,000 columns, a CJK name
// misaligned the columns, and a name with a newline split its row in two in a pipe.
#[test]
fn long_wide_and_multi_line_names_keep_one_aligned_row_per_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rl = logger(d);
    let long = "x".repeat(10_000);
    for job in [long.as_str(), "数据备份任务", "new\nline", "short"] {
        let run = rl.runlog(job).unwrap();
        run.label("note", "two\nlines");
        log::info!("hello");
        pause();
    }

    // A pipe: every name whole, control characters escaped, one line per job.
    let piped = ok(d, &["list-jobs"]);
    let lines: Vec<&str> = piped.lines().collect();
    assert_eq!(lines.len(), 5, "{piped:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("new\\nline  ")),
        "{piped:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with(&format!("{long}  "))));
    let at: Vec<usize> = lines.iter().map(|l| second_column_at(l)).collect();
    assert!(at.iter().all(|&a| a == 10_002), "{at:?}");
    let runs = ok(d, &["list-runs", "new\nline"]);
    assert_eq!(runs.lines().count(), 2, "{runs:?}");
    assert!(runs.contains("note=two\\nlines"), "{runs:?}");

    // A terminal: the long name cut to 48 columns with `…`, the columns aligned.
    let t = on_a_terminal(d, &["list-jobs"], true);
    assert_eq!(t.code, 0, "{t:?}");
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{:?}", t.stdout);
    assert!(
        lines.contains(&format!("{}…", "x".repeat(47)).as_str())
            || lines
                .iter()
                .any(|l| l.starts_with(&format!("{}…  ", "x".repeat(47)))),
        "{:?}",
        t.stdout
    );
    assert!(
        lines.iter().all(|l| l.chars().count() < 120),
        "{:?}",
        t.stdout
    );
    let at: Vec<usize> = lines.iter().map(|l| second_column_at(l)).collect();
    assert!(at.iter().all(|&a| a == 50), "{at:?}\n{}", t.stdout);
    assert!(t.stdout.contains("数据备份任务"), "{:?}", t.stdout);
    assert!(t.stdout.contains("new\\nline"), "{:?}", t.stdout);

    // --wide (or --json) shows the whole name on a terminal too.
    let t = on_a_terminal(d, &["list-jobs", "--wide"], true);
    assert!(t.stdout.contains(&long), "--wide cut the name");
    let j = ok(d, &["list-jobs", "--json"]);
    assert!(j.contains(&long));
}

#[test]
fn the_journal_dir_comes_from_the_config_and_environment_and_the_option_wins() {
    let f = fixture();
    let d = f.dir.path();
    let home = tempfile::tempdir().unwrap();
    let isolated = |c: &mut Command| {
        c.current_dir(home.path())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_STATE_HOME", home.path().join("state"));
    };
    // RUNLOG_JOURNAL_DIR.
    let mut c = cmd();
    isolated(&mut c);
    let o = output(c.env("RUNLOG_JOURNAL_DIR", d).arg("list-jobs"));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains(JOB));
    // --config FILE.
    let conf = home.path().join("runlog.toml");
    fs::write(
        &conf,
        format!("[runlog]\njournal-dir = {:?}\n", d.to_str().unwrap()),
    )
    .unwrap();
    let mut c = cmd();
    isolated(&mut c);
    let o = output(c.arg("--config").arg(&conf).arg("list-jobs"));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains(JOB));
    // --journal-dir beats both.
    let empty = tempfile::tempdir().unwrap();
    let mut c = cmd();
    isolated(&mut c);
    let o = output(
        c.env("RUNLOG_JOURNAL_DIR", d)
            .arg("--config")
            .arg(&conf)
            .arg("--journal-dir")
            .arg(empty.path())
            .arg("list-jobs"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(!o.stdout.contains(JOB), "{o:?}");
    // A config file with an unknown key is an error naming it.
    fs::write(&conf, "[runlog]\nmax-logz = 3\n").unwrap();
    let mut c = cmd();
    isolated(&mut c);
    let o = output(c.arg("--config").arg(&conf).arg("list-jobs"));
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("max-logz"), "{o:?}");
}

#[test]
fn a_run_in_progress_is_listed_running_and_its_records_so_far_can_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rl = logger(d);
    let run = rl.runlog("live").unwrap();
    log::info!("first step done");
    let out = ok(d, &["list-runs", "live"]);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[4]),
        (run.id(), "running", "1"),
        "{out}"
    );
    let out = ok(d, &["logs", "live", "last"]);
    assert!(out.contains("first step done"), "{out}");
    // The segment is preallocated and being written: not corruption.
    let o = runlog(d, &["journal", "verify", d.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{o:?}");
    drop(run);
    let out = ok(d, &["list-runs", "live"]);
    assert!(out.lines().nth(1).unwrap().contains(" ok "), "{out}");
}

#[test]
fn verify_tells_corruption_from_crashes_in_the_golden_vectors() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors");
    let o = output(cmd().args(["--json", "journal", "verify"]).arg(&vectors));
    assert_eq!(o.code, 1, "{o:?}");
    let found = json_lines(&o.stdout);
    let of = |name: &str| -> Vec<(u64, String)> {
        found
            .iter()
            .filter(|f| {
                f["file"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/{name}.seg")))
            })
            .map(|f| {
                (
                    f["offset"].as_u64().unwrap(),
                    f["severity"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let corrupt = |off: u64| vec![(off, "corrupt".to_owned())];
    let info = |off: u64| vec![(off, "info".to_owned())];
    assert_eq!(of("bad-crc-mid"), corrupt(240));
    assert_eq!(of("huge-length-mid"), corrupt(240));
    assert_eq!(of("malformed-payload"), corrupt(240));
    assert_eq!(of("bad-magic"), corrupt(0));
    assert_eq!(of("bad-header-crc"), corrupt(0));
    assert_eq!(of("future-version"), corrupt(0));
    assert_eq!(of("torn-tail"), info(314));
    assert_eq!(of("killed-mid-frame"), info(240));
    for clean in [
        "valid",
        "failed",
        "cancelled",
        "second-segment",
        "zero-tail",
    ] {
        assert_eq!(of(clean), vec![], "{clean}");
    }
    let summary = found.last().unwrap();
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["corrupt_segments"], 6);
}

/// `runlog ARGS...` started with stdout piped, its lines sent to a channel as they come.
struct Follower {
    child: std::process::Child,
    /// Where its stderr goes.
    err: tempfile::NamedTempFile,
    rx: std::sync::mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Follower {
    fn start(dir: &Path, args: &[&str]) -> Follower {
        let err = tempfile::NamedTempFile::new().unwrap();
        let mut child = cmd()
            .arg("--journal-dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err.reopen().unwrap())
            .spawn()
            .expect("start runlog");
        let rx = line_channel(child.stdout.take().unwrap());
        Follower {
            child,
            err,
            rx,
            lines: Vec::new(),
        }
    }

    /// Wait (up to 20 s) until `n` lines were printed.
    fn wait_lines(&mut self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.lines.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.lines.push(l),
                Err(_) => panic!("runlog printed {:?}, not {n} lines", self.lines),
            }
        }
    }

    /// Wait (up to 20 s) for it to exit; its status, having read all it printed.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            while let Ok(l) = self.rx.try_recv() {
                self.lines.push(l);
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                // The reader thread may still hold the last lines.
                while let Ok(l) = self.rx.recv_timeout(Duration::from_millis(500)) {
                    self.lines.push(l);
                }
                return st;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("runlog did not exit; printed {:?}", self.lines);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What it wrote to stderr so far.
    fn stderr(&self) -> String {
        fs::read_to_string(self.err.path()).unwrap()
    }

    /// It is still running after `d`.
    fn still_running_after(&mut self, d: Duration) -> bool {
        std::thread::sleep(d);
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KID: &str = env!("CARGO_BIN_EXE_jobkid");

/// A jobkid holding a run of `records` records open in a new journal.
fn held_run(records: u64) -> (TempDir, runlog_e2e::shipper::Kid, String) {
    use runlog_e2e::shipper::{Kid, KidArgs, KidLine, Kind};
    let dir = tempfile::tempdir().unwrap();
    let args = KidArgs::new(dir.path(), "held", 1, records, &[Kind::Hold]);
    let mut kid = Kid::spawn(Path::new(KID), &args);
    let KidLine::Hold { id, .. } = kid.wait_for(Duration::from_secs(20), "hold", |l| {
        matches!(l, KidLine::Hold { .. })
    }) else {
        unreachable!()
    };
    (dir, kid, id)
}

#[test]
fn follow_prints_a_run_another_process_is_writing_as_it_grows_and_ends_with_it() {
    let (dir, mut kid, id) = held_run(3);
    let mut f = Follower::start(dir.path(), &["logs", "held", "last", "-f"]);
    f.wait_lines(3);
    assert!(
        f.still_running_after(Duration::from_millis(600)),
        "-f on a running run keeps going: {:?}",
        f.lines
    );
    assert_eq!(f.lines.len(), 3, "nothing new was written: {:?}", f.lines);
    // The job logs one more record and ends the run.
    kid.release();
    let st = f.wait_exit();
    assert!(st.success(), "{st}");
    assert_eq!(f.stderr(), "-- run ended: ok --\n");
    assert_eq!(f.lines.len(), 4, "{:?}", f.lines);
    assert!(f.lines[3].ends_with("released"), "{:?}", f.lines);
    let o = ok(dir.path(), &["--json", "list-runs", "held"]);
    assert!(o.contains(&id) && o.contains(r#""status":"ok""#), "{o}");
}

// `logs -f` ended silently when the run crashed, with exit 0: a script following a run could
// not tell how it ended.
#[test]
fn follow_ends_when_the_writer_is_killed_and_its_run_becomes_crashed() {
    let (dir, mut kid, _) = held_run(2);
    let mut f = Follower::start(
        dir.path(),
        &["logs", "held", "last", "--follow", "--exit-status"],
    );
    f.wait_lines(2);
    kid.kill();
    let st = f.wait_exit();
    assert_eq!(st.code(), Some(5), "--exit-status of a crashed run: {st}");
    assert_eq!(f.stderr(), "-- run ended: crashed --\n");
    assert_eq!(f.lines.len(), 2, "{:?}", f.lines);
    // Without --exit-status, success; the status line all the same.
    let o = runlog(dir.path(), &["logs", "held", "last", "-f"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stderr, "-- run ended: crashed --\n");
    let o = ok(dir.path(), &["list-runs", "held", "--status", "crashed"]);
    assert_eq!(o.lines().count(), 2, "header and the crashed run: {o}");
}

#[test]
fn follow_with_tail_starts_from_the_last_records_and_on_an_ended_run_just_prints_it() {
    let (dir, mut kid, _) = held_run(5);
    let mut f = Follower::start(dir.path(), &["logs", "held", "-f", "--tail", "2"]);
    f.wait_lines(2);
    kid.release();
    assert!(f.wait_exit().success());
    assert_eq!(
        f.lines.len(),
        3,
        "the last 2, then the new one: {:?}",
        f.lines
    );
    assert!(f.lines[2].ends_with("released"));
    drop(kid);
    // The run has ended: -f prints it and exits at once.
    let o = runlog(dir.path(), &["logs", "held", "last", "-f"]);
    assert_eq!((o.code, o.stdout.lines().count()), (0, 6), "{o:?}");
    let o = runlog(dir.path(), &["logs", "held", "-1", "-2", "-f"]);
    assert_eq!(o.code, 2, "one run only: {o:?}");
}

#[test]
fn why_shows_the_last_failure_its_error_and_the_records_before_it() {
    let f = fixture();
    let d = f.dir.path();
    let out = ok(d, &["why", JOB]);
    assert!(out.contains(&format!("run:      {}\n", f.failed)), "{out}");
    assert!(out.contains("status:   failed\n"), "{out}");
    assert!(
        out.contains("error:    boom: second line third line\n"),
        "{out}"
    );
    assert!(out.contains("labels:   user=bar\n"), "{out}");
    // The record before the error, then the error with its continuation lines.
    let before = out.find("failed run starts").unwrap();
    let boom = out.find(" ERROR ").unwrap();
    assert!(before < boom && out.contains("\n  second line\n"), "{out}");
    assert!(
        out.contains(&format!("runlog logs {JOB} {}", f.failed)),
        "{out}"
    );
    // -n 0: only the failure.
    let out = ok(d, &["why", JOB, "-n", "0"]);
    assert!(
        !out.contains("failed run starts") && out.contains("boom:"),
        "{out}"
    );
    // --label picks among runs: the failed run has user=bar, none with user=carol failed.
    let o = runlog(d, &["why", JOB, "--label", "user=carol"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stderr.contains("no failed or crashed run"), "{o:?}");
    // JSON: the run, then its records.
    let lines = json_lines(&ok(d, &["--json", "why", JOB]));
    assert_eq!(lines[0]["id"], f.failed.as_str());
    assert_eq!(lines.last().unwrap()["level"], "ERROR");
}

#[test]
fn why_shows_a_panic_with_its_message_location_and_backtrace() {
    use runlog_e2e::shipper::{run_kid, KidArgs, Kind};
    let dir = tempfile::tempdir().unwrap();
    run_kid(
        Path::new(KID),
        &KidArgs::new(dir.path(), "panicky", 2, 30, &[Kind::Ok, Kind::Panic]),
    );
    let out = ok(dir.path(), &["why", "panicky", "-n", "5"]);
    assert!(out.contains("status:   failed"), "{out}");
    let error = out.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        error.starts_with("error:    thread '")
            && error.contains("panicked at")
            && error.ends_with(": panic in run 1: the input was bad"),
        "the location and the message on one line: {out}"
    );
    assert!(out.contains("stack backtrace:"), "{out}");
    assert!(out.contains("-- 5 record(s) before the failure"), "{out}");
    // The 5 records before the panic, then the panic's two (message, backtrace).
    let recs: Vec<&str> = out.lines().filter(|l| l.starts_with("20")).collect();
    assert_eq!(recs.len(), 7, "{out}");
    assert!(
        recs[..5].iter().all(|l| !l.contains("runlog::panic")),
        "{out}"
    );
    assert!(
        recs[5..].iter().all(|l| l.contains("runlog::panic")),
        "{out}"
    );
}

#[test]
fn raw_writes_job_text_unescaped_even_on_a_terminal() {
    let (dir, job) = hostile_journal();
    let o = on_a_terminal(dir.path(), &["--raw", "logs", job, "last"], true);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("\x1b[31mred\x1b[0m"), "{:?}", o.stdout);
}

#[test]
fn times_and_regexes_that_do_not_parse_are_usage_errors_naming_them() {
    let f = fixture();
    let d = f.dir.path();
    for (args, what) in [
        (
            &["logs", JOB, "--since", "soon"][..],
            "--since \"soon\" is not a time",
        ),
        (
            &["list-runs", JOB, "--until", "2026-13-01"],
            "--until \"2026-13-01\"",
        ),
        (
            &["logs", JOB, "--grep", "(unclosed"],
            "--grep \"(unclosed\" is not a valid",
        ),
        // A bare number could be a year or seconds: refused with the hint (it was read as a
        // year, and a long one overflowed).
        (
            &["logs", JOB, "--since", "1700000000"],
            "write @1700000000 for seconds since the epoch",
        ),
        (
            &["list-runs", JOB, "--until", "1796682338803537000"],
            "--until \"1796682338803537000\" is not a time",
        ),
        (
            &["logs", JOB, "--since", "@99999999999999"],
            "is not a time",
        ),
    ] {
        let o = runlog(d, args);
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(o.stderr.contains(what), "{args:?}: {o:?}");
    }
}

#[test]
fn run_refs_that_cannot_name_a_run_are_usage_errors_naming_them() {
    let f = fixture();
    let d = f.dir.path();
    for (r, shown) in [
        ("-abc", "\"-abc\""),
        ("", "\"\""),
        ("../x", "\"../x\""),
        ("\x1b[31mred", "\"\\u{1b}[31mred\""),
    ] {
        let o = runlog(d, &["logs", JOB, "--", r]);
        assert_eq!(o.code, 2, "{r:?}: {o:?}");
        assert!(
            o.stderr.contains(shown) && o.stderr.contains("is not a run reference"),
            "{r:?}: {o:?}"
        );
        assert!(
            !o.stderr.contains('\x1b'),
            "{r:?} reached the terminal raw: {o:?}"
        );
        assert!(o.stdout.is_empty(), "{r:?}: {o:?}");
    }
    // Well-formed but naming nothing: not found, with the reference as typed, not echoed whole.
    let long = "7".repeat(5000);
    let o = runlog(d, &["logs", JOB, &long]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stderr.len() < 600,
        "{} bytes: {:?}",
        o.stderr.len(),
        o.stderr
    );
    let o = runlog(d, &["logs", JOB, "--", "-99999999999999999999"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stderr.contains("so -99999999999999999999 does not exist"),
        "{o:?}"
    );
}

#[test]
fn head_tail_and_record_times_select_records_of_a_local_run() {
    let (dir, _) = big_run(100);
    let d = dir.path();
    let all = ok(d, &["logs", "big", "last"]);
    let all: Vec<&str> = all.lines().collect();
    assert_eq!(all.len(), 100);
    let head = ok(d, &["logs", "big", "--head", "3"]);
    assert_eq!(head.lines().collect::<Vec<_>>(), all[..3]);
    let tail = ok(d, &["logs", "big", "--tail", "4"]);
    assert_eq!(tail.lines().collect::<Vec<_>>(), all[96..]);
    // From the 10th record's time on; before the 20th's.
    let ts = |i: usize| all[i].split(' ').next().unwrap().to_owned();
    let out = ok(d, &["logs", "big", "--since", &ts(10), "--until", &ts(20)]);
    let got: Vec<&str> = out.lines().collect();
    assert!(got.first() == Some(&all[10]) || ts(9) == ts(10), "{out}");
    assert!(
        got.iter()
            .all(|l| ts(10).as_str() <= l.split(' ').next().unwrap()),
        "{out}"
    );
    assert!(!got.contains(&all[20]) || ts(19) == ts(20), "{out}");
    // Seconds since the epoch, as journalctl takes them.
    assert_eq!(
        ok(d, &["logs", "big", "--since", "@0"]).lines().count(),
        100
    );
    assert_eq!(ok(d, &["logs", "big", "--since", "@9000000000"]), "");
}

// ---------------------------------------------------------------------------------------------
// What the README and `--help` promise a new user
// ---------------------------------------------------------------------------------------------

/// The workspace root (the README is there).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The text of the README's section headed `heading` (up to the next `## ` heading).
fn readme_section(heading: &str) -> String {
    let readme = fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no section \"## {heading}\""));
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// The commands of the `console` blocks of `text`, each with the output shown under it: a line
/// `$ CMD` is a command, the lines up to the next command or the block's end its output.
fn console_steps(text: &str) -> Vec<(String, String)> {
    let mut steps: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("```") {
            inside = line == "```console";
            continue;
        }
        if !inside {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push((cmd.to_owned(), String::new()));
        } else if let Some((_, out)) = steps.last_mut() {
            out.push_str(line);
            out.push('\n');
        } else {
            panic!("a console block starts with output, not a command: {line:?}");
        }
    }
    steps
}

/// Output with what differs from one run to the next masked: run ids, times, durations, pids
/// and the host name (the README shows `web-1`), and the padding of table columns (it follows
/// their widths).
fn masked(text: &str, host: &str) -> String {
    use regex::Regex;
    let rules = [
        (
            r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?-[0-9a-f]{12}",
            "<RUN>",
        ),
        (
            r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d| [A-Z]{2,5})?",
            "<TIME>",
        ),
        (r"\b\d+(\.\d+)?(ns|µs|us|ms|s)\b", "<DURATION>"),
        (r"\bpid \d+", "pid <PID>"),
    ];
    let mut out = text.to_owned();
    for (pattern, with) in rules {
        let re = Regex::new(pattern).expect("pattern");
        out = re.replace_all(&out, with).into_owned();
    }
    let words = Regex::new(&format!(r"\b({}|web-1)\b", regex::escape(host))).expect("host");
    let spaces = Regex::new(r"[ \t]+").expect("spaces");
    out.lines()
        .map(|l| {
            let l = words.replace_all(l, "<HOST>");
            spaces.replace_all(l.trim_end(), " ").into_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// This machine's host name, as runs record it.
fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("/proc/sys/kernel/hostname")
        .trim()
        .to_owned()
}

/// A shell for what a new user types: `runlog` on the PATH, a home of its own (so the default
/// journal is fresh), no runlog settings or config from the developer's environment, UTC.
fn user_shell(home: &Path, cwd: &Path, line: &str) -> Out {
    let bin_dir = bin().parent().expect("bin dir").to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir];
    dirs.extend(std::env::split_paths(&path));
    let mut c = Command::new("sh");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("RUNLOG_") || k.starts_with("XDG_") || k == "NO_COLOR" {
            c.env_remove(k);
        }
    }
    c.arg("-c")
        .arg(format!("exec 2>&1; {line}"))
        .env("HOME", home)
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .env("TZ", "UTC")
        .current_dir(cwd)
        .stdin(Stdio::null());
    output(&mut c)
}

/// Every command of the README's quick start, typed into a shell on a fresh machine (the
/// journal in a new home), prints what the README shows under it.
#[test]
fn the_readme_quick_start_prints_what_the_readme_shows() {
    let steps = console_steps(&readme_section("Quick start"));
    assert!(
        steps.len() >= 5,
        "the quick start should show at least 5 commands: {steps:?}"
    );
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let host = host_name();
    for (line, shown) in steps {
        let got = user_shell(home.path(), cwd.path(), &line);
        assert_eq!(
            masked(&got.stdout, &host),
            masked(&shown, &host),
            "README quick start: `{line}` (exit {}) printed\n{}\nwhere the README shows\n{shown}",
            got.code,
            got.stdout
        );
    }
}

/// The fake wall clock of the run the `--help` examples find at 2026-11-28T03:00 (ns).
static HELP_CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn help_clock() -> i64 {
    HELP_CLOCK.load(std::sync::atomic::Ordering::Relaxed)
}

/// What each example of `runlog --help` must print (a line of its output contains this), by
/// the example's command as the help shows it.
const HELP_EXAMPLES: &[(&str, &str)] = &[
    ("runlog list-jobs", "nightly"),
    (
        "runlog list-runs nightly --status failed --since 2d",
        "failed",
    ),
    (
        "runlog why nightly",
        "error:    command exited with status 3",
    ),
    (
        "runlog logs nightly last --label user=bar",
        "stdout: for bar",
    ),
    (
        "runlog logs nightly last-failed --level warn",
        "stderr: report 2: connection refused",
    ),
    (
        "runlog logs nightly 2026-11-28T03:00 --grep 'timeout|refused' --tail 50",
        "upstream timeout after 30s",
    ),
    ("runlog logs nightly last -f", "stdout: for bar"),
    (
        "runlog exec nightly --label env=prod -- ./report.sh --full",
        "report: full",
    ),
    ("runlog journal verify /var/lib/runlog", "no corruption"),
];

/// Every example of `runlog --help`, typed into a shell on a journal with a job `nightly`
/// (runs made with `runlog exec`, and one written at 2026-11-28T03:00), succeeds and prints
/// what its comment says. `/var/lib/runlog` is the test's journal.
#[test]
fn every_example_of_runlog_help_runs_and_prints_what_it_says() {
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let journal = home.path().join(".local/state/runlog");
    // The run at 2026-11-28T03:00 first: a run never starts before the job's newest.
    let _installed = logger(&journal);
    let t0 = 1_795_834_800_000_000_000_i64; // 2026-11-28T03:00:00Z
    HELP_CLOCK.store(t0 + 10_000_000_000, std::sync::atomic::Ordering::Relaxed);
    let rl = runlog::RunLogger::builder()
        .journal_dir(&journal)
        .no_config_file()
        .clock(help_clock)
        .build()
        .unwrap();
    {
        let run = rl.runlog("nightly").unwrap();
        for (min, msg) in [
            (1, "fetching"),
            (6, "upstream timeout after 30s"),
            (9, "done"),
        ] {
            HELP_CLOCK.store(
                t0 + min * 60_000_000_000,
                std::sync::atomic::Ordering::Relaxed,
            );
            log::warn!("{msg}");
        }
        drop(run);
    }
    fs::write(
        cwd.path().join("report.sh"),
        "#!/bin/sh\necho \"report: ${1#--}\"\n",
    )
    .unwrap();
    fs::set_permissions(
        cwd.path().join("report.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for line in [
        "runlog exec nightly -- sh -c 'echo fetching; echo \"report 2: connection refused\" >&2; exit 3'",
        "runlog exec nightly --label user=bar -- echo 'for bar'",
    ] {
        user_shell(home.path(), cwd.path(), line);
    }
    let help = output(cmd().arg("--help"));
    assert_eq!(help.code, 0, "{help:?}");
    let examples: Vec<String> = help
        .stdout
        .split("Examples:\n")
        .nth(1)
        .expect("runlog --help has an Examples: section")
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .split("   ")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .collect();
    assert!(examples.len() >= 5, "{examples:?}");
    let shown: Vec<&str> = examples.iter().map(String::as_str).collect();
    let known: Vec<&str> = HELP_EXAMPLES.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        shown, known,
        "the examples of `runlog --help` changed: keep HELP_EXAMPLES (what each prints) in step"
    );
    for (example, wants) in HELP_EXAMPLES {
        let line = example.replace("/var/lib/runlog", &journal.to_string_lossy());
        let got = user_shell(home.path(), cwd.path(), &line);
        assert_eq!(got.code, 0, "`{example}` failed:\n{}", got.stdout);
        assert!(
            got.stdout.lines().any(|l| l.contains(wants)),
            "`{example}` does not print {wants:?}:\n{}",
            got.stdout
        );
    }
}

thread_local! {
    /// The wall clock of the runs a test makes at chosen times (see [`run_at`]); per thread,
    /// so tests running at once do not move each other's clocks.
    static CLOCK: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn test_clock() -> i64 {
    CLOCK.with(|c| c.get())
}

/// ns since the epoch of a UTC time written `2026-11-28T12:10:55.123456Z`.
fn utc_ns(t: &str) -> i64 {
    runlog::time::parse_utc(t).expect("a UTC time")
}

/// A run of `job` in `dir` that starts at `start` (a UTC time) and logs `message` then, ending
/// ok, or failed with an ERROR record when `fail`; its id. Runs of a job must be made in
/// order of their starts.
fn run_at(dir: &Path, job: &str, start: &str, message: &str, fail: bool) -> String {
    logger(dir);
    let rl = runlog::RunLogger::builder()
        .journal_dir(dir)
        .max_logs(1000)
        .no_config_file()
        .clock(test_clock)
        .build()
        .expect("build a RunLogger");
    CLOCK.with(|c| c.set(utc_ns(start)));
    let run = rl.runlog(job).unwrap();
    log::info!("{message}");
    if fail {
        log::error!("{message} failed");
        run.fail();
    }
    run.id().to_owned()
}

/// `TZ=ZONE runlog --journal-dir DIR ARGS...`.
fn in_zone(zone: &str, dir: &Path, args: &[&str]) -> Out {
    output(
        cmd()
            .env("TZ", zone)
            .arg("--journal-dir")
            .arg(dir)
            .args(args),
    )
}

/// Like [`in_zone`], asserting success without a word on stderr.
fn ok_in(zone: &str, dir: &Path, args: &[&str]) -> String {
    let o = in_zone(zone, dir, args);
    assert_eq!(o.code, 0, "TZ={zone} runlog {args:?} failed: {o:?}");
    assert_eq!(o.stderr, "", "TZ={zone} runlog {args:?} warned: {o:?}");
    o.stdout
}

/// The START column (the third) of `list-runs` output.
fn starts(list_runs: &str) -> Vec<String> {
    list_runs
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
        .collect()
}

#[test]
fn times_show_in_local_time_with_their_offset_and_in_utc_with_the_flag_json_always_utc() {
    // Bug: every time was shown (and read) in UTC only.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let summer = run_at(d, "tz", "2026-07-01T12:00:00.5Z", "in summer", true);
    let winter = run_at(d, "tz", "2026-11-28T12:10:55.123456Z", "in winter", false);

    let ny = "America/New_York";
    assert_eq!(
        starts(&ok_in(ny, d, &["list-runs", "tz"])),
        ["2026-07-01T08:00:00-04:00", "2026-11-28T07:10:55-05:00"]
    );
    let jobs = ok_in(ny, d, &["list-jobs"]);
    let row: Vec<&str> = jobs.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..2], ["tz", "2026-11-28T07:10:55-05:00"], "{jobs}");
    assert_eq!(
        ok_in(ny, d, &["logs", "tz"]),
        "2026-11-28T07:10:55.123456-05:00 INFO  cli: in winter\n"
    );
    let why = ok_in(ny, d, &["why", "tz"]);
    assert!(
        why.contains("\nstarted:  2026-07-01T08:00:00.500000-04:00  after "),
        "{why}"
    );
    assert!(
        why.contains("\n2026-07-01T08:00:00.500000-04:00 ERROR cli: in summer failed\n"),
        "{why}"
    );
    // Several runs: each line starts with its run id, which stays UTC.
    let both = ok_in(ny, d, &["logs", "tz", "-2", "-1"]);
    assert!(
        both.contains(&format!("{summer} 2026-07-01T08:00:00.500000-04:00 INFO ")),
        "{both}"
    );

    let berlin = "Europe/Berlin";
    assert_eq!(
        starts(&ok_in(berlin, d, &["list-runs", "tz"])),
        ["2026-07-01T14:00:00+02:00", "2026-11-28T13:10:55+01:00"]
    );

    // --utc, and a zone that is UTC, show UTC as run ids do.
    for (zone, utc) in [(ny, true), ("UTC", false), ("Etc/UTC", false), ("", false)] {
        let flag: &[&str] = if utc { &["--utc"] } else { &[] };
        let args = |a: &[&'static str]| [flag, a].concat();
        assert_eq!(
            starts(&ok_in(zone, d, &args(&["list-runs", "tz"]))),
            ["2026-07-01T12:00:00Z", "2026-11-28T12:10:55Z"],
            "TZ={zone} {flag:?}"
        );
        assert_eq!(
            ok_in(zone, d, &args(&["logs", "tz"])),
            "2026-11-28T12:10:55.123456Z INFO  cli: in winter\n"
        );
    }

    // JSON is UTC whatever the zone.
    let json = ok_in(ny, d, &["list-runs", "tz", "--json"]);
    assert!(
        json.contains(&format!(
            r#""id":"{winter}","status":"ok","start":"2026-11-28T12:10:55.123456Z""#
        )),
        "{json}"
    );
    let json = ok_in(ny, d, &["logs", "tz", "--json"]);
    assert!(
        json.starts_with(r#"{"timestamp":"2026-11-28T12:10:55.123456Z","#),
        "{json}"
    );
    let json = ok_in(ny, d, &["list-jobs", "--json"]);
    assert!(
        json.contains(r#""last_start":"2026-11-28T12:10:55.123456Z""#),
        "{json}"
    );
}

#[test]
fn a_start_as_listed_names_its_run_in_every_zone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let starts_utc = [
        "2026-03-29T00:59:59.5Z",
        "2026-03-29T01:00:00.5Z",
        "2026-11-01T05:59:59Z",
        "2026-11-01T06:00:01Z",
    ];
    for (i, s) in starts_utc.iter().enumerate() {
        run_at(d, "listed", s, &format!("run number {i}"), false);
    }
    for (zone, flag) in [
        ("UTC", None),
        ("America/New_York", None),
        ("Europe/Berlin", None),
        ("Asia/Kolkata", None),
        ("Europe/Berlin", Some("--utc")),
    ] {
        let pre: Vec<&str> = flag.into_iter().collect();
        let listed = ok_in(zone, d, &[&pre[..], &["list-runs", "listed"]].concat());
        let listed = starts(&listed);
        assert_eq!(listed.len(), 4);
        for (i, start) in listed.iter().enumerate() {
            let out = ok_in(zone, d, &[&pre[..], &["logs", "listed", start]].concat());
            assert!(
                out.contains(&format!("run number {i}\n")),
                "TZ={zone} {flag:?}: START {start} named: {out}"
            );
            // The record's timestamp as printed is a time --since takes, in that zone.
            let ts = out.split(' ').next().unwrap();
            let args = [&pre[..], &["list-runs", "listed", "--since", ts]].concat();
            let since = ok_in(zone, d, &args);
            assert_eq!(
                since.lines().count(),
                1 + 4 - i,
                "TZ={zone} --since {ts}: {since}"
            );
        }
    }
}

#[test]
fn in_the_repeated_hour_a_local_time_is_the_earlier_run_and_the_listed_start_names_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2026-03-08: New York jumps from 02:00 to 03:00. 07:30Z is 03:30 EDT.
    run_at(d, "dst", "2026-03-08T07:30:00Z", "spring", false);
    // 2026-11-01: 01:00-02:00 comes twice in New York, first EDT (-04:00), then EST (-05:00).
    let first = run_at(d, "dst", "2026-11-01T05:30:00.25Z", "first 01:30", false);
    let second = run_at(d, "dst", "2026-11-01T06:30:00.75Z", "second 01:30", true);
    let ny = "America/New_York";
    let listed = starts(&ok_in(ny, d, &["list-runs", "dst"]));
    assert_eq!(
        listed,
        [
            "2026-03-08T03:30:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:30:00-05:00"
        ]
    );
    let said = |r: &str| ok_in(ny, d, &["logs", "dst", r]);
    // A local time in the repeated hour is its earlier instance.
    assert!(said("2026-11-01T01:30").contains("first 01:30"));
    assert!(said("2026-11-01 01:30:00").contains("first 01:30"));
    // Each start as listed names its own run; so does an offset typed.
    assert!(said(&listed[1]).contains("first 01:30"));
    assert!(said(&listed[2]).contains("second 01:30"));
    assert!(said("2026-11-01T01:30-05:00").contains("second 01:30"));
    assert!(said("2026-11-01T06:30Z").contains("second 01:30"));
    // The hour 01 that day holds both.
    let o = in_zone(ny, d, &["logs", "dst", "2026-11-01T01"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains(&first) && o.stderr.contains(&second),
        "{o:?}"
    );
    // The second run's start to the microsecond, read as its earlier instance, is no run.
    let o = in_zone(ny, d, &["logs", "dst", "2026-11-01-01:30:00.750000"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stderr
            .contains("local time, America/New_York: add Z for UTC"),
        "{o:?}"
    );
    // A skipped local time is read with the offset before the jump: 02:30 is 03:30 EDT.
    assert!(said("2026-03-08T02:30").contains("spring"));

    // --since and --until take local times the same way.
    let ids = |args: &[&str]| -> Vec<String> {
        let out = ok_in(ny, d, &[&["list-runs", "dst"][..], args].concat());
        out.lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&["--since", "2026-11-01 01:30", "--until", "2026-11-01 01:31"]),
        [first.as_str()]
    );
    assert_eq!(
        ids(&["--since", "2026-11-01T01:30-05:00"]),
        [second.as_str()]
    );
    assert_eq!(
        ids(&["--since", "2026-11-01", "--until", "2026-11-01T02:00"]),
        [first.as_str(), second.as_str()]
    );
    assert_eq!(ids(&["--until", "2026-03-08T03:30"]), Vec::<String>::new());
    // In Berlin the two are an hour apart on the clock too.
    assert_eq!(
        starts(&ok_in("Europe/Berlin", d, &["list-runs", "dst"]))[1..],
        ["2026-11-01T06:30:00+01:00", "2026-11-01T07:30:00+01:00"]
    );
}

#[test]
fn the_original_runlogs_form_names_a_run_and_runs_of_one_second_are_listed_to_pick_from() {
    // Bug: `logs JOB 2026-12-07-22:25:43.772233` (how the original printed runs) said "no
    // run matching", and a START naming several runs listed ids without their starts.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids: Vec<String> = [
        "2026-12-07T21:25:43.772233Z",
        "2026-12-07T21:25:43.9Z",
        "2026-12-07T21:25:43.95Z",
        "2026-12-07T21:26:10Z",
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| run_at(d, "seed", s, &format!("seed run {i}"), i == 2))
    .collect();
    let berlin = "Europe/Berlin";
    let said = |r: &str| ok_in(berlin, d, &["logs", "seed", r]);
    assert!(said("2026-12-07-22:25:43.772233").contains("seed run 0"));
    assert!(said("2026-12-07-22:26").contains("seed run 3"));
    assert!(said("2026-12-07-22:26:10").contains("seed run 3"));

    let listed = starts(&ok_in(berlin, d, &["list-runs", "seed"]));
    assert_eq!(listed[0], "2026-12-07T22:25:43+01:00");
    for r in ["2026-12-07-22:25:43", listed[0].as_str()] {
        let o = in_zone(berlin, d, &["logs", "seed", r]);
        assert_eq!(o.code, 2, "{o:?}");
        assert_eq!(o.stdout, "");
        let lines: Vec<&str> = o.stderr.lines().collect();
        assert_eq!(
            lines[0],
            format!("runlog: run {r:?} matches 3 runs of job \"seed\" (id, start, status):")
        );
        assert_eq!(
            lines[1..4],
            [
                format!("  {}  2026-12-07T22:25:43.772233+01:00  ok", ids[0]),
                format!("  {}  2026-12-07T22:25:43.900000+01:00  ok", ids[1]),
                format!("  {}  2026-12-07T22:25:43.950000+01:00  failed", ids[2]),
            ],
            "{}",
            o.stderr
        );
        assert!(lines[4].contains("runlog list-runs seed"), "{}", o.stderr);
    }
    // What the list offers picks one: the start to the microsecond, or the id.
    assert!(said("2026-12-07T22:25:43.900000+01:00").contains("seed run 1"));
    assert!(said(&ids[2]).contains("seed run 2"));
    // With --utc the list is in UTC, as typed times are.
    let o = in_zone(berlin, d, &["--utc", "logs", "seed", "2026-12-07T21:25:43"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr
            .contains(&format!("  {}  2026-12-07T21:25:43.772233Z  ok", ids[0])),
        "{o:?}"
    );
}

#[test]
fn a_tz_naming_no_zone_is_said_and_times_are_utc() {
    let dir = tempfile::tempdir().unwrap();
    run_at(dir.path(), "mars", "2026-11-28T12:10:55Z", "hi", false);
    let o = in_zone("Mars/Olympus_Mons", dir.path(), &["list-runs", "mars"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(starts(&o.stdout), ["2026-11-28T12:10:55Z"]);
    assert!(
        o.stderr.starts_with(
            "runlog: warning: TZ=\"Mars/Olympus_Mons\" names no time zone this host knows"
        ) && o.stderr.contains("times are shown and read in UTC"),
        "{o:?}"
    );
}

#[test]
fn on_a_host_without_a_tz_database_the_bundled_one_gives_local_time() {
    // A minimal container has no /usr/share/zoneinfo: TZDIR names an empty one here.
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    run_at(dir.path(), "bare", "2026-11-28T12:10:55Z", "hi", false);
    let out = output(
        cmd()
            .env("TZ", "America/New_York")
            .env("TZDIR", empty.path())
            .arg("--journal-dir")
            .arg(dir.path())
            .args(["list-runs", "bare"]),
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    assert_eq!(starts(&out.stdout), ["2026-11-28T07:10:55-05:00"]);
}

/// A user of the original Python runlog keeps its INI `.runlog.conf`; runlog read no such file
/// and kept 10 runs per job whatever it said.
mod seed_conf {
    use super::*;

    /// A working dir and a home of their own, and a journal set by `RUNLOG_JOURNAL_DIR` (which
    /// picks no file).
    struct Seed {
        home: TempDir,
        cwd: TempDir,
        journal: TempDir,
    }

    impl Seed {
        fn new() -> Seed {
            Seed {
                home: tempfile::tempdir().unwrap(),
                cwd: tempfile::tempdir().unwrap(),
                journal: tempfile::tempdir().unwrap(),
            }
        }

        fn runlog(&self, args: &[&str]) -> Out {
            output(
                cmd()
                    .current_dir(self.cwd.path())
                    .env("HOME", self.home.path())
                    .env("XDG_CONFIG_HOME", self.home.path().join("config"))
                    .env("RUNLOG_JOURNAL_DIR", self.journal.path())
                    .args(args),
            )
        }

        /// `runlog exec JOB -- true` `n` times, then the number of runs of JOB kept.
        fn runs_kept_after(&self, job: &str, n: usize) -> usize {
            for _ in 0..n {
                let o = self.runlog(&["exec", job, "--", "true"]);
                assert_eq!(o.code, 0, "{o:?}");
                pause();
            }
            let o = self.runlog(&["--source", "local", "--json", "list-runs", job]);
            assert_eq!(o.code, 0, "{o:?}");
            o.stdout.lines().count()
        }
    }

    #[test]
    fn a_runlog_conf_in_the_working_dir_sets_max_logs_as_the_original_wrote_it() {
        let s = Seed::new();
        // As the original's own .runlog.conf had it: `_`, `:` and a comment.
        fs::write(
            s.cwd.path().join(".runlog.conf"),
            "; kept from the Python days\n[runlog]\nmax_logs: 4\n",
        )
        .unwrap();
        assert_eq!(s.runs_kept_after("seed", 6), 4);
        // As the original's README wrote it: `-` and `=`, keys in any case.
        fs::write(
            s.cwd.path().join(".runlog.conf"),
            "[runlog]\n# README form\nMax-Logs = 2\n",
        )
        .unwrap();
        assert_eq!(s.runs_kept_after("readme", 3), 2);
    }

    #[test]
    fn the_home_runlog_conf_comes_after_the_xdg_config_and_one_file_wins() {
        let s = Seed::new();
        fs::write(
            s.home.path().join(".runlog.conf"),
            "[runlog]\nmax-logs: 2\n",
        )
        .unwrap();
        assert_eq!(s.runs_kept_after("home", 3), 2);
        // $XDG_CONFIG_HOME/runlog/config.toml comes first, and nothing is merged from
        // ~/.runlog.conf: its max-logs is not used.
        let xdg = s.home.path().join("config/runlog");
        fs::create_dir_all(&xdg).unwrap();
        fs::write(xdg.join("config.toml"), "[runlog]\nlevel = \"info\"\n").unwrap();
        assert_eq!(s.runs_kept_after("xdg", 11), 10);
        // ./.runlog.conf comes before the XDG file; ./.runlog.toml before it.
        fs::write(
            s.cwd.path().join(".runlog.conf"),
            "[runlog]\nmax_logs = 3\n",
        )
        .unwrap();
        assert_eq!(s.runs_kept_after("cwd-conf", 4), 3);
        fs::write(
            s.cwd.path().join(".runlog.toml"),
            "[runlog]\nmax-logs = 1\n",
        )
        .unwrap();
        assert_eq!(s.runs_kept_after("cwd-toml", 2), 1);
    }

    #[test]
    fn config_names_an_ini_file_and_its_unknown_keys_are_errors_naming_them() {
        let s = Seed::new();
        let conf = s.home.path().join("seed.conf");
        fs::write(&conf, "[runlog]\nmax_logs: 1\n").unwrap();
        let conf_arg = conf.to_str().unwrap();
        for _ in 0..2 {
            let o = s.runlog(&["--config", conf_arg, "exec", "named", "--", "true"]);
            assert_eq!(o.code, 0, "{o:?}");
            pause();
        }
        let o = s.runlog(&["--config", conf_arg, "--json", "list-runs", "named"]);
        assert_eq!((o.code, o.stdout.lines().count()), (0, 1), "{o:?}");

        // redis-py took socket_timeout; runlog does not: say so, never ignore it.
        fs::write(
            &conf,
            "[runlog-redis]\nhost: 127.0.0.1\nsocket_timeout: 5\n",
        )
        .unwrap();
        let o = s.runlog(&["--config", conf_arg, "list-jobs"]);
        assert_eq!(o.code, 2, "{o:?}");
        for want in [
            conf_arg,
            "[runlog-redis]",
            "`socket_timeout`",
            "`host`",
            "`ssl`",
        ] {
            assert!(o.stderr.contains(want), "{want:?} in {:?}", o.stderr);
        }
        // A job run under it still runs (runlog never stops a job) and says why it is not
        // recorded.
        let o = s.runlog(&["--config", conf_arg, "exec", "named", "--", "true"]);
        assert_eq!(o.code, 0, "{o:?}");
        assert!(
            o.stderr.contains("socket_timeout") && o.stderr.contains("without recording"),
            "{o:?}"
        );

        // An unknown section likewise, found by the search in the working dir.
        fs::write(
            s.cwd.path().join(".runlog.conf"),
            "[runlog-reddis]\nport = 1\n",
        )
        .unwrap();
        let o = s.runlog(&["list-jobs"]);
        assert_eq!(o.code, 2, "{o:?}");
        assert!(
            o.stderr.contains(".runlog.conf") && o.stderr.contains("[runlog-reddis]"),
            "{o:?}"
        );
    }
}
