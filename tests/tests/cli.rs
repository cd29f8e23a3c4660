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
    let out = ok(d, &["list-runs", job]);
    assert!(out.contains("note=\x1b]0;pwned\x07"), "{out:?}");
    let out = ok(d, &["list-jobs"]);
    assert!(out.contains(job), "{out:?}");
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
    rx: std::sync::mpsc::Receiver<String>,
    lines: Vec<String>,
}

impl Follower {
    fn start(dir: &Path, args: &[&str]) -> Follower {
        let mut child = cmd()
            .arg("--journal-dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start runlog");
        let rx = line_channel(child.stdout.take().unwrap());
        Follower {
            child,
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
    assert_eq!(f.lines.len(), 4, "{:?}", f.lines);
    assert!(f.lines[3].ends_with("released"), "{:?}", f.lines);
    let o = ok(dir.path(), &["--json", "list-runs", "held"]);
    assert!(o.contains(&id) && o.contains(r#""status":"ok""#), "{o}");
}

#[test]
fn follow_ends_when_the_writer_is_killed_and_its_run_becomes_crashed() {
    let (dir, mut kid, _) = held_run(2);
    let mut f = Follower::start(dir.path(), &["logs", "held", "last", "--follow"]);
    f.wait_lines(2);
    kid.kill();
    let st = f.wait_exit();
    assert!(st.success(), "{st}");
    assert_eq!(f.lines.len(), 2, "{:?}", f.lines);
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
