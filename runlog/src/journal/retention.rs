//! What happens to a job's directory after a run ends: crashed runs are recovered (a torn
//! tail is cut), cancelled and stale files are removed, and only the newest `max-logs` ok runs
//! and `max-failed-logs` failed or crashed runs are kept (and, while shipping is on, older runs
//! that are not shipped yet).
//!
//! The process that ran a job sweeps its directory after every run ([`sweep_job`]); the
//! shipper uses [`remove_run`] to delete runs itself.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use super::layout::{parse_segment_name, TMP_PREFIX};
use super::reader::{
    being_deleted, hole_before, list_run_segments, quick_status, really_cancelled, scan_file,
    settled_status, writer_state, ReadError, RunStatus, SegmentEnd, Writer,
};
use super::shipped::read_shipped;
use super::storage::{self, OpenMode};
use super::writer::{MIN_SEGMENT, SYNC_TMP_TAG};

/// A `.tmp-` segment file unlocked and at least this old was left by a writer that died (and
/// the rest of a half-deleted run this old is finished off).
const STALE_TMP_AGE: std::time::Duration = std::time::Duration::from_secs(60);

fn to_io(e: ReadError) -> io::Error {
    match e {
        // The kind is kept (callers test for `NotFound`), and the path named.
        ReadError::Io { path, source } => {
            io::Error::new(source.kind(), format!("{}: {source}", path.display()))
        }
        other => io::Error::other(other.to_string()),
    }
}

/// Delete a run's segment files (as [`list_run_segments`] groups them): segment 0 first, so
/// that from the first unlink on every reader and sweep sees the run as
/// [being deleted](super::reader::being_deleted) and none lists a run with segments missing.
/// The rest follow in the given order. A file already gone is not an error (another sweep
/// may be deleting the same run); if this stops half-way, a later sweep finishes the job once
/// the remaining segments are 60 s old.
///
/// The caller decides that the run may go: its writer has ended it (not
/// [`Running`](RunStatus::Running)) or it is to be forgotten anyway. Deleting a live run's
/// files does not disturb its writer but loses the run.
///
/// # Errors
/// The first error other than "not found" from unlinking a file; the files before it are gone.
pub fn remove_run(segs: &[(u32, PathBuf)]) -> io::Result<()> {
    let first = segs.iter().filter(|(seq, _)| *seq == 0);
    let rest = segs.iter().filter(|(seq, _)| *seq != 0);
    for (_, p) in first.chain(rest) {
        match storage::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Could this segment still have its preallocated size (a multiple of [`MIN_SEGMENT`])? A
/// segment cut to its frames almost never does, so a sweep scans only segments that may need
/// cutting.
fn maybe_uncut(path: &Path) -> bool {
    storage::metadata(path).is_ok_and(|m| m.len % MIN_SEGMENT as u64 == 0)
}

/// Cut what a dead writer left after its frames: the torn or zero-filled tail of the last
/// segment, and the zero tails of earlier segments it had no time to cut. Holds the run lock
/// so that no writer or other recoverer is active. Damage is never modified.
fn recover_crashed(segs: &[(u32, PathBuf)]) -> io::Result<bool> {
    let Some((_, first)) = segs.first() else {
        return Ok(false);
    };
    let lock = match storage::open(first, OpenMode::Read) {
        Ok(f) => f,
        // Deleted meanwhile (by another sweep, say).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !lock.try_lock().unwrap_or(false) {
        return Ok(false);
    }
    for (i, (_, path)) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        if !maybe_uncut(path) {
            // The last segment of a crashed run is scanned anyway: a torn frame may end it.
            if !last {
                continue;
            }
        }
        let scan = match scan_file(path) {
            Ok(s) => s,
            // Damage is reported by readers and never modified here.
            Err(ReadError::BadSegment { .. }) => continue,
            Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(false)
            }
            Err(e) => return Err(to_io(e)),
        };
        let cut = match scan.end {
            // Zeros where the next segment's first frame would have fit are a hole, damage
            // that readers report: left as it is.
            SegmentEnd::ZeroTail { offset } if !last => segs
                .get(i + 1)
                .is_none_or(|(_, next)| hole_before(path, offset, next).is_none()),
            SegmentEnd::ZeroTail { .. } => true,
            SegmentEnd::TornTail { .. } => last,
            SegmentEnd::Clean | SegmentEnd::Corrupt { .. } => false,
        };
        if cut && !scan.is_corrupt() {
            let f = storage::open(path, OpenMode::Write)?;
            f.set_len(scan.valid_len)?;
            f.sync_data()?;
        }
    }
    let _ = lock.unlock();
    Ok(true)
}

/// Recover, clean and trim one job directory (`<journal>/jobs/<encoded job>`), as
/// `spec/journal.md` ("Recovery and retention") describes: remove stale `.tmp-` segment files
/// and finish half-deleted runs; delete cancelled runs; recover crashed runs (cut the torn or
/// zero tail a dead writer left, under the run lock); then keep the newest `max_ok` ok runs and
/// the newest `max_failed` failed or crashed runs and delete older ones. Running runs are never
/// touched. A missing directory is swept trivially.
///
/// With `protect_unshipped` (shipping is on), an older run beyond those limits is deleted only
/// if the job's [`.shipped`](super::shipped) file lists it (under any epoch); the others stay
/// until a later sweep finds them listed. They still count against the limits: the newest
/// `max_ok` / `max_failed` are kept whether shipped or not. A `.shipped` file that cannot be
/// read or is malformed counts as listing nothing (everything is protected). Cancelled runs are
/// deleted either way (they are never shipped).
///
/// Safe to run concurrently with writers, readers and other sweeps of the same directory.
///
/// # Errors
/// The first I/O error listing the directory, recovering a crashed run or deleting a run;
/// the sweep stops there (a later one continues).
pub fn sweep_job(
    dir: &Path,
    max_ok: usize,
    max_failed: usize,
    protect_unshipped: bool,
) -> io::Result<()> {
    sweep_job_held(dir, max_ok, max_failed, protect_unshipped).map(|_| ())
}

/// [`sweep_job`], returning how many runs beyond the limits it kept only because they are not
/// shipped yet (0 without `protect_unshipped`): the backlog a shipper that is not running
/// leaves.
///
/// # Errors
/// As [`sweep_job`].
pub fn sweep_job_held(
    dir: &Path,
    max_ok: usize,
    max_failed: usize,
    protect_unshipped: bool,
) -> io::Result<usize> {
    let mut runs = list_run_segments(dir).map_err(to_io)?;
    // Segment files left half-created by a writer that died.
    if let Ok(names) = storage::read_dir(dir) {
        for name in names {
            let Some(name) = name.to_str() else { continue };
            let path = dir.join(name);
            let Some(rest) = name.strip_prefix(TMP_PREFIX) else {
                continue;
            };
            let rest = rest.strip_prefix(SYNC_TMP_TAG).unwrap_or(rest);
            let Some((id, seq)) = parse_segment_name(rest) else {
                continue;
            };
            // A writer creates and then locks its file: give it time before calling it stale,
            // and do not even probe its lock meanwhile (a probe could make its lock fail).
            let young = storage::metadata(&path)
                .ok()
                .and_then(|m| m.modified)
                .and_then(|t| t.elapsed().ok())
                .is_none_or(|age| age < STALE_TMP_AGE);
            if young {
                continue;
            }
            let owner = if seq == 0 {
                writer_state(&path)
            } else {
                runs.get(id)
                    .and_then(|s| s.first())
                    .map_or(Writer::Gone, |(_, p)| writer_state(p))
            };
            if owner != Writer::Alive {
                let _ = storage::remove_file(&path);
            }
        }
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (id, segs) in runs.iter_mut() {
        if being_deleted(segs) {
            // The rest of a run whose deletion was interrupted: finish the job, but only once
            // sure. A directory listing may miss a file renamed in while it is read, so a live
            // run's segment 0 could be missing from it: check the path itself, and leave
            // anything young alone.
            let seg0 = dir.join(super::layout::segment_name(id, 0));
            let stale = segs.iter().all(|(_, p)| {
                storage::metadata(p)
                    .ok()
                    .and_then(|m| m.modified)
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= STALE_TMP_AGE)
            });
            if stale && storage::metadata(&seg0).is_err() {
                remove_run(segs)?;
            }
            continue;
        }
        // Settled: a run that another process ended in a new segment since the listing
        // (its lock free by now) reads as it ended, with the segment it ended in.
        let mut status = settled_status(segs);
        if being_deleted(segs) {
            continue;
        }
        if status == RunStatus::Crashed {
            if !recover_crashed(segs)? {
                // Its lock could not be taken (a writer after all, or a reader holding it for a
                // moment): not counted, not touched.
                continue;
            }
            // A writer killed after its end frame but before cutting its segment reads as
            // crashed until the cut: look again.
            status = quick_status(segs);
        }
        match status {
            RunStatus::Running => {}
            RunStatus::Cancelled if really_cancelled(segs) => remove_run(segs)?,
            RunStatus::Ok => ok.push(id.clone()),
            // Only looked cancelled: a crashed run. (The quick status is never `Damaged`.)
            RunStatus::Cancelled | RunStatus::Failed | RunStatus::Crashed | RunStatus::Damaged => {
                failed.push(id.clone())
            }
        }
    }
    // Read only when something is to be trimmed: most sweeps trim nothing.
    let mut shipped: Option<BTreeSet<String>> = None;
    let mut held = 0;
    // Ids sort by start time: the oldest come first.
    for (list, keep) in [(ok, max_ok), (failed, max_failed)] {
        let excess = list.len().saturating_sub(keep);
        for id in &list[..excess] {
            if protect_unshipped {
                // Unreadable or malformed: nothing counts as shipped.
                let listed = shipped.get_or_insert_with(|| match read_shipped(dir) {
                    Ok(Some(s)) => s.runs,
                    Ok(None) | Err(_) => BTreeSet::new(),
                });
                if !listed.contains(id) {
                    held += 1;
                    continue;
                }
            }
            if let Some(segs) = runs.get(id) {
                remove_run(segs)?;
            }
        }
    }
    Ok(held)
}
