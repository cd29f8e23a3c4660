//! SIGBUS never kills the job for runlog's sake: a segment cut under a live writer's mapping,
//! or a full copy-on-write file system (btrfs, made in a loop file), makes the run drop and
//! count records, tell the job once on stderr and end with the count, while the job finishes
//! with exit 0 and every record that survived reads back intact. A SIGBUS of the job's own (a
//! mapping runlog did not make) still kills it, as it would without runlog.
//!
//! The child is `src/bin/sigbuskid.rs`; it waits on stdin at the point where the test damages
//! the journal, so nothing depends on timing. The torture scenario cuts the live segment at
//! random offsets (`RUNLOG_TORTURE=long` for more, `RUNLOG_TORTURE_SEED` to replay).

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
use runlog_e2e::torture::{conclude, iterations, seeded_rng};

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

/// What a checked run of the child came to.
struct Checked {
    log: RunLog,
    /// Records the child's run counted as dropped before it ended.
    dropped_before_end: u64,
    stderr: String,
}

/// Check everything a damaged journal must not change: the child finished by itself with exit
/// 0 (not killed by a signal); its run reads back ended ok, without damage, its records a
/// gap-free prefix of the `logged` ones (each byte for byte) and every other record counted as
/// dropped; and the job was told once on stderr if (and only if) records were dropped.
fn check(
    journal: &Path,
    id: &str,
    logged: u64,
    out: &Output,
    stdout: &str,
) -> Result<Checked, String> {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.signal().is_some() || !out.status.success() {
        return Err(format!(
            "the job ended with {} (signal 7 is SIGBUS): {stdout} {stderr}",
            out.status
        ));
    }
    let dropped_before_end = stdout
        .lines()
        .find_map(|l| l.strip_prefix("done dropped="))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("the child did not finish its run: {stdout} {stderr}"))?;
    let log = Journal::open(journal)
        .and_then(|j| j.read_run(JOB, id))
        .map_err(|e| format!("read run {id}: {e}"))?;
    let info = &log.info;
    if info.status != RunStatus::Ok || !info.problems.is_empty() {
        return Err(format!("the run did not end ok and undamaged: {info:?}"));
    }
    if let Some(i) = (0..log.records.len()).find(|&i| log.records[i].message != message(i as u64)) {
        return Err(format!(
            "record {i} is not the one logged: {:?}",
            log.records[i]
        ));
    }
    if info.records != log.records.len() as u64 || info.records + info.dropped != logged {
        return Err(format!(
            "{} records read, {logged} logged, but the run counts {} kept and {} dropped",
            log.records.len(),
            info.records,
            info.dropped
        ));
    }
    let told = stderr
        .matches("records of this run are dropped and counted")
        .count();
    if told != usize::from(info.dropped > 0) {
        return Err(format!(
            "told {told} times, {} dropped: {stderr}",
            info.dropped
        ));
    }
    Ok(Checked {
        log,
        dropped_before_end,
        stderr,
    })
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

/// The temporary directory of a test that cuts a segment under its mapping.
fn mapped_tempdir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    assert!(
        maps_safely_in(tmp.path()).unwrap(),
        "this test cuts a segment under a mapping: it needs a temporary directory ($TMPDIR) on \
         ext4, XFS or tmpfs, where runlog maps segments"
    );
    tmp
}

/// Cut a file to `len` bytes, as another process would.
fn cut(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .unwrap_or_else(|e| panic!("cut {}: {e}", path.display()));
}

#[test]
fn a_segment_cut_under_a_live_writer_drops_and_counts_records_and_the_job_lives_on() {
    // Bug: a store into a page of the mapping past the cut raised SIGBUS, which killed the job.
    // (before, after, the record the cut starts at: None = right after the header, so the
    // BEGIN frame of segment 0 goes too.) The last case cuts in the page being written, where
    // the one record after it may not fault at all: the end must find the cut either way.
    for (before, after, at) in [(400, 200, Some(200)), (400, 200, None), (400, 1, Some(399))] {
        let tmp = mapped_tempdir();
        let journal = tmp.path();
        let held = start_logs(journal, before, after);
        let seg = segment_path(journal, &held.id, 0);
        let (len, kept) = match at {
            Some(k) => (record_offset(&seg, k), k),
            None => (HEADER_LEN as u64, 0),
        };
        cut(&seg, len);
        let id = held.id.clone();
        let (out, stdout) = release(held);
        let c =
            check(journal, &id, before + after, &out, &stdout).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.stderr.contains("cut"), "{}", c.stderr);
        assert_eq!(
            c.log.records.len() as u64,
            kept,
            "cut at {len}: {:?}",
            c.log.info
        );
        assert_eq!(
            c.log.info.dropped,
            before + after - kept,
            "{:?}",
            c.log.info
        );
        if after > 1 {
            assert_eq!(
                c.dropped_before_end, after,
                "every record after the cut: {stdout}"
            );
        }
    }
}

#[test]
fn torture_a_live_segment_cut_anywhere_never_kills_the_job_nor_loses_an_uncounted_record() {
    const SCENARIO: &str = "live segment cut anywhere under its writer";
    let iterations = iterations(24, 400);
    let mut rng = seeded_rng(SCENARIO);
    let mut failures = Vec::new();
    let mut lost = 0;
    for iter in 0..iterations {
        // Up to ~1.5 segments of records before the cut (so the live one may be segment 1).
        let (before, after) = (rng.below(1600), rng.below(400));
        let tmp = mapped_tempdir();
        let journal = tmp.path();
        let held = start_logs(journal, before, after);
        let live = (0..)
            .map(|seq| segment_path(journal, &held.id, seq))
            .take_while(|p| p.exists())
            .last()
            .expect("segment 0");
        let size = std::fs::metadata(&live).map_or(0, |m| m.len());
        let written = scan_file(&live).map_or(size, |s| s.valid_len);
        // Mostly into what was written (a header, a frame, a page boundary), else anywhere.
        let len = if rng.percent(70) {
            rng.below(written + 1)
        } else {
            rng.below(size + 1)
        };
        cut(&live, len);
        let id = held.id.clone();
        let (out, stdout) = release(held);
        match check(journal, &id, before + after, &out, &stdout) {
            Ok(c) => {
                lost += (before + after).saturating_sub(c.log.info.records + c.log.info.dropped)
            }
            Err(e) => failures.push(format!(
                "iteration {iter} ({before} records, cut {} to {len}, {after} more): {e}",
                live.display()
            )),
        }
    }
    conclude(SCENARIO, iterations, &failures, lost);
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
    let c = check(&journal, &id, BEFORE + AFTER, &out, &stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.dropped_before_end > 0, "the disk is full: {stdout}");
    // Written with pwrite, the full disk is an error the writer saw, not a fault it survived.
    assert!(c.stderr.contains("No space left on device"), "{}", c.stderr);
    assert!(
        c.log.records.len() as u64 >= BEFORE,
        "the records written before the disk was full are kept: {:?}",
        c.log.info
    );
}
