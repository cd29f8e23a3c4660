//! SIGBUS never kills the job for runlog's sake: a segment cut under a live writer's mapping,
//! or a full copy-on-write file system (btrfs, made in a loop file), makes the run drop and
//! count records, tell the job once on stderr and end with the count, while the job finishes
//! with exit 0 and every record that survived reads back intact. A SIGBUS of the job's own (a
//! mapping runlog did not make) still kills it, as it would without runlog.
//!
//! The child is `src/bin/sigbuskid.rs`; it waits on stdin at the point where the test damages
//! the journal, so nothing depends on timing.

use std::io::{BufRead, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use runlog::journal::frame::HEADER_LEN;
use runlog::journal::payload::Frame;
use runlog::journal::reader::scan_file;
use runlog::journal::storage::maps_safely_in;
use runlog::{Journal, RunLog, RunStatus};
use runlog_e2e::sigbus::{message, segment_path, Btrfs, JOB};

const KID: &str = env!("CARGO_BIN_EXE_sigbuskid");

/// A child in `logs` mode, holding after its first records.
struct Held {
    child: Child,
    out: BufReader<ChildStdout>,
    id: String,
}

fn start_logs(journal: &Path, before: u64, after: u64) -> Held {
    let mut child = Command::new(KID)
        .arg("logs")
        .arg(journal)
        .arg(before.to_string())
        .arg(after.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sigbuskid");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read the child's stdout");
    let Some(id) = line.trim().strip_prefix("hold ") else {
        let rest = child.wait_with_output().expect("wait for the child");
        panic!(
            "the child did not hold: {line:?} {}",
            String::from_utf8_lossy(&rest.stderr)
        );
    };
    Held {
        id: id.to_owned(),
        child,
        out,
    }
}

/// Let the child go on; its exit status, the rest of its stdout and its stderr.
fn release(mut h: Held) -> (Output, String) {
    let mut stdin = h.child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("release the child");
    drop(stdin);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut h.out, &mut rest);
    (
        h.child.wait_with_output().expect("wait for the child"),
        rest,
    )
}

/// The child finished by itself with exit 0, not killed by a signal; the records it counted
/// as dropped before its run ended.
fn finished(out: &Output, stdout: &str) -> u64 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        None,
        "the job was killed by signal {:?} (7 is SIGBUS); stderr: {stderr}",
        out.status.signal()
    );
    assert!(out.status.success(), "{}: {stdout} {stderr}", out.status);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("done dropped="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the child did not finish its run: {stdout} {stderr}"))
}

/// The run, read back: ended ok, no damage, its records a gap-free prefix of what was logged
/// (each byte for byte), every other record counted as dropped.
fn read_back(journal: &Path, id: &str, logged: u64) -> RunLog {
    let log = Journal::open(journal)
        .and_then(|j| j.read_run(JOB, id))
        .unwrap_or_else(|e| panic!("read run {id}: {e}"));
    assert_eq!(log.info.status, RunStatus::Ok, "{:?}", log.info);
    assert!(log.info.problems.is_empty(), "{:?}", log.info.problems);
    for (i, r) in log.records.iter().enumerate() {
        assert_eq!(r.message, message(i as u64), "record {i}");
    }
    assert_eq!(log.info.records, log.records.len() as u64, "{:?}", log.info);
    assert_eq!(
        log.info.records + log.info.dropped,
        logged,
        "every record is kept or counted as dropped: {:?}",
        log.info
    );
    log
}

/// Told once, on stderr, that records are dropped.
fn told_once(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr
            .matches("records of this run are dropped and counted")
            .count(),
        1,
        "{stderr}"
    );
    stderr
}

/// Where record `k` starts in a segment.
fn record_offset(seg: &Path, k: u64) -> u64 {
    let scan = scan_file(seg).unwrap_or_else(|e| panic!("{e}"));
    let want = message(k);
    scan.frames
        .iter()
        .find(|f| matches!(&f.frame, Ok(Frame::Record(r)) if r.message == want))
        .unwrap_or_else(|| panic!("record {k} is not in {}", seg.display()))
        .offset
}

#[test]
fn a_segment_cut_under_a_live_writer_drops_and_counts_records_and_the_job_lives_on() {
    // Bug: a store into a page of the mapping past the cut raised SIGBUS, which killed the job.
    const BEFORE: u64 = 400;
    const AFTER: u64 = 200;
    // Cut at a record in the middle (the records before it stay), and at the header (the BEGIN
    // frame of segment 0 goes with the records).
    for cut_at_record in [Some(200), None] {
        let tmp = tempfile::tempdir().unwrap();
        let journal = tmp.path();
        assert!(
            maps_safely_in(journal).unwrap(),
            "this test cuts a segment under a mapping: it needs a temporary directory ($TMPDIR) \
             on ext4, XFS or tmpfs, where runlog maps segments"
        );
        let held = start_logs(journal, BEFORE, AFTER);
        let seg = segment_path(journal, &held.id, 0);
        let (cut, kept) = match cut_at_record {
            Some(k) => (record_offset(&seg, k), k),
            None => (HEADER_LEN as u64, 0),
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .and_then(|f| f.set_len(cut))
            .unwrap();
        let id = held.id.clone();
        let (out, stdout) = release(held);
        let dropped_before_end = finished(&out, &stdout);
        assert_eq!(
            dropped_before_end, AFTER,
            "every record after the cut: {stdout}"
        );
        let stderr = told_once(&out);
        assert!(stderr.contains("cut"), "{stderr}");
        let log = read_back(journal, &id, BEFORE + AFTER);
        assert_eq!(
            log.records.len() as u64,
            kept,
            "cut at {cut}: {:?}",
            log.info
        );
        assert_eq!(log.info.dropped, BEFORE + AFTER - kept, "{:?}", log.info);
    }
}

#[test]
fn a_sigbus_outside_runlogs_mappings_still_kills_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(KID)
        .arg("own-fault")
        .arg(tmp.path().join("journal"))
        .arg(tmp.path().join("own-file"))
        .output()
        .expect("run sigbuskid");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGBUS),
        "{}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_full_btrfs_drops_and_counts_records_and_the_job_lives_on() {
    // Bug: on copy-on-write storage writing zeros reserves nothing, so once the disk was full a
    // store into the mapping (a page written back, hence clean) raised SIGBUS and killed the job.
    const BEFORE: u64 = 200;
    const AFTER: u64 = 20_000;
    let fs = Btrfs::mount(256 << 20);
    let journal = fs.mnt().join("journal");
    assert!(
        !maps_safely_in(&fs.mnt()).unwrap(),
        "btrfs must be detected as a file system where segments are not mapped"
    );
    let held = start_logs(&journal, BEFORE, AFTER);
    let filled = fs.fill();
    assert!(filled > 100 << 20, "filled only {filled} bytes");
    let id = held.id.clone();
    let (out, stdout) = release(held);
    let dropped_before_end = finished(&out, &stdout);
    assert!(dropped_before_end > 0, "the disk is full: {stdout}");
    let stderr = told_once(&out);
    // Written with pwrite, the full disk is an error the writer saw, not a fault it survived.
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let log = read_back(&journal, &id, BEFORE + AFTER);
    assert!(
        log.records.len() as u64 >= BEFORE,
        "the records written before the disk was full are kept: {:?}",
        log.info
    );
}
