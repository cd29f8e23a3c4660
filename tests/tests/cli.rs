//! End-to-end tests of the `runlog` command: journals are written with the runlog library in a
//! temporary directory, then the real binary reads them.
//!
//! The binary must be built first (`cargo build --workspace`, as `scripts/test.sh` does): a
//! test cannot build it, and a missing or stale binary fails the tests with that advice.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use runlog::RunLogger;
use tempfile::TempDir;

const JOB: &str = "nightly-report";

/// The `runlog` binary next to this test's `deps/` directory (same target dir and profile),
/// checked to be built and fresh.
fn bin() -> PathBuf {
    runlog_e2e::workspace_binary("runlog", &["runlog/src", "runlog-cli/src"])
}

/// A logger writing to `dir`. The first one is installed as the process's `log` logger;
/// runs of every `RunLogger` capture from then on.
fn logger(dir: &Path) -> RunLogger {
    static INSTALL: Once = Once::new();
    let rl = RunLogger::builder()
        .journal_dir(dir)
        .max_logs(1000)
        .no_config_file()
        .build()
        .unwrap();
    assert_eq!(
        rl.journal_dir(),
        dir,
        "RUNLOG_JOURNAL_DIR is set and overrides the tests' journal dir: unset it"
    );
    INSTALL.call_once(|| {
        let _ = rl.install();
    });
    rl
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

/// What a run of the binary produced.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A command for the binary that never sees the user's config or environment.
fn cmd() -> Command {
    let mut c = Command::new(bin());
    for v in [
        "RUNLOG_CONFIG",
        "RUNLOG_JOURNAL_DIR",
        "NO_COLOR",
        "RUNLOG_MAX_LOGS",
        "RUNLOG_REDIS_URL",
    ] {
        c.env_remove(v);
    }
    c
}

fn output(c: &mut Command) -> Out {
    let o = c
        .stdin(Stdio::null())
        .output()
        .expect("run the runlog binary");
    Out {
        code: o.status.code().expect("runlog was killed by a signal"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
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
        ["JOB", "RUNS", "LAST", "START", "STATUS"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], JOB);
    assert_eq!(row[1], "3", "the cancelled run is not counted: {out}");
    assert_eq!(
        row[2],
        format!("{}Z", &f.labelled[..19]),
        "start of the last run"
    );
    assert_eq!(row[3], "ok");
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!((row[0], row[1], row[3]), ("other-job", "1", "failed"));
    // Columns line up: each starts at the same position as its header.
    let at = lines[0].find("RUNS").unwrap();
    assert_eq!(&lines[1][at..at + 1], "3");
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
    assert_eq!(labels, ["-", "user=bar", "user=carol,env=prod"]);
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
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("has only 3 run(s)"), "{o:?}");
    let o = runlog(d, &["logs", JOB, &f.cancelled]);
    assert_eq!(o.code, 2, "a cancelled run is forgotten: {o:?}");
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
fn an_unknown_run_job_or_journal_exits_2_and_says_what_to_do() {
    let f = fixture();
    let d = f.dir.path();
    let o = runlog(d, &["logs", JOB, "1999-01-01"]);
    assert_eq!(o.code, 2, "{o:?}");
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
        assert_eq!(o.code, 2, "{o:?}");
        assert!(
            o.stderr.contains("no-such-job") && o.stderr.contains("runlog list-jobs"),
            "{o:?}"
        );
    }

    let missing = d.join("nowhere");
    let o = runlog(&missing, &["list-jobs"]);
    assert_eq!(o.code, 2, "{o:?}");
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
fn several_runs_print_a_header_line_per_run() {
    let f = fixture();
    let out = ok(f.dir.path(), &["logs", JOB, "-3", "last"]);
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("==> ")).collect();
    assert_eq!(
        headers,
        [
            format!("==> {JOB} {} (ok) <==", f.ok),
            format!("==> {JOB} {} (ok) <==", f.labelled)
        ]
    );
    let first = out.find("ok run starts").unwrap();
    let second = out.find("labelled run is careful").unwrap();
    assert!(out.find(&f.labelled).unwrap() < second && first < second);
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
    assert_eq!(recs[1]["kvs"]["user"], "alice");
    assert_eq!(recs[1]["level"], "DEBUG");
    assert_eq!(recs[3]["message"], "boom:\nsecond line\n  third line");
    assert_eq!(recs[3]["run"], f.failed.as_str());
    assert!(recs[3]["line"].is_u64() && recs[3]["file"].is_string());
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
    let last = o.stdout.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("end     CORRUPT at {victim}")),
        "{last}"
    );
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
    let out = ok(d, &["list-runs", job]);
    assert!(out.contains("note=\x1b]0;pwned\x07"), "{out:?}");
    let out = ok(d, &["list-jobs"]);
    assert!(out.contains(job), "{out:?}");
    // --color=always colours even into a pipe; nothing else changes.
    let out = ok(d, &["logs", job, "last", "--color=always"]);
    assert!(out.contains(" \x1b[1;31mERROR\x1b[0m "), "{out:?}");
}

/// Run the binary with stdout on a new pseudo-terminal (made by `script` from util-linux);
/// what it wrote there, with the terminal's `\r\n` turned back into `\n`.
fn on_a_terminal(dir: &Path, args: &[&str], no_color: bool) -> Out {
    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
    let err = dir.join("terminal.stderr");
    let mut line = vec![quote(&bin().to_string_lossy()), "--journal-dir".into()];
    line.push(quote(&dir.to_string_lossy()));
    line.extend(args.iter().map(|a| quote(a)));
    let shell = format!("{} 2>{}", line.join(" "), quote(&err.to_string_lossy()));
    // script: -q quiet, -e the command's exit status, -f flush, -c the command; no log file.
    let o = Command::new("script")
        .args(["-qefc", &shell, "/dev/null"])
        // Nothing from this environment (RUNLOG_*, NO_COLOR) but what the test sets.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .envs(no_color.then_some(("NO_COLOR", "1")))
        .stdin(Stdio::null())
        .output()
        .expect("run `script` (util-linux) to give runlog a terminal: install util-linux");
    Out {
        code: o.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n"),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
    }
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
