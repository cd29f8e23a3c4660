//! Reading segments and whole journals, with corruption told apart from a torn tail.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use super::frame::{
    decode_frame, decode_header, FrameError, FrameType, HeaderError, RawFrame, SegmentHeader,
    END_FRAME_LEN, FRAME_HEADER_LEN, FR_CRC, FR_FLAGS, FR_LEN, FR_RESERVED, FR_TYPE, HEADER_LEN,
    MAX_PAYLOAD,
};
use super::layout::{self, JOBS_DIR};
use super::payload::{
    decode_payload, decode_record_ref, encode_record, record_payload_ts, Begin, End, Frame,
    Outcome, PayloadError, Record, RecordRef,
};
use super::storage::{self, OpenMode};

/// A segment file larger than this is not read (no valid writer makes one).
pub const MAX_SEGMENT_FILE: u64 = (1 << 30) + (1 << 20);

/// Bytes the search for a valid frame after a bad one may hash before it gives up (and then
/// reports corruption, the safe answer).
const RESYNC_BUDGET: usize = 64 << 20;

/// How the frames of a segment end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentEnd {
    /// The last frame ends exactly at the end of the file.
    Clean,
    /// Zero-filled, preallocated space from `offset` to the end of the file.
    ZeroTail {
        /// Where the zeros start.
        offset: u64,
    },
    /// An incomplete or invalid frame at `offset` with nothing valid after it: what a crash in
    /// the middle of a write leaves. Recovery cuts it.
    TornTail {
        /// Where the torn frame starts.
        offset: u64,
        /// Why it is not a valid frame.
        error: FrameError,
    },
    /// An invalid frame at `offset` followed by a valid frame at `next_valid`: corruption.
    Corrupt {
        /// Where the bad frame starts.
        offset: u64,
        /// Why it is not a valid frame.
        error: FrameError,
        /// Offset of the next valid frame, if one was found within the search budget.
        next_valid: Option<u64>,
    },
}

/// A decoded frame and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameAt {
    /// Offset of the frame header in the segment file.
    pub offset: u64,
    /// The frame, or why its (CRC-valid) payload could not be decoded.
    pub frame: Result<Frame, PayloadError>,
}

/// The result of scanning one segment's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    /// The segment header.
    pub header: SegmentHeader,
    /// Every valid frame up to the first invalid one.
    pub frames: Vec<FrameAt>,
    /// How the valid frames end.
    pub end: SegmentEnd,
    /// Offset just past the last valid frame (the length recovery truncates a torn tail to).
    pub valid_len: u64,
    /// Corrupt regions that the scan went on past, in order (only
    /// [`scan_segment_past_damage`] does; empty otherwise).
    pub skipped: Vec<Skipped>,
    /// Listings only: RECORD frames counted (CRC-checked) but not kept in `frames`, and the
    /// latest timestamp among them.
    skimmed: (u64, i64),
}

impl SegmentScan {
    /// True if the segment is damaged in a way a crash cannot explain (corruption or a
    /// CRC-valid frame with a malformed payload).
    pub fn is_corrupt(&self) -> bool {
        matches!(self.end, SegmentEnd::Corrupt { .. })
            || !self.skipped.is_empty()
            || self.frames.iter().any(|f| f.frame.is_err())
    }
}

fn find_next_valid(buf: &[u8], from: usize, budget: &mut usize) -> Option<Result<u64, ()>> {
    let mut at = from;
    while at + FRAME_HEADER_LEN <= buf.len() {
        let b = &buf[at..];
        // Cheap pre-checks before hashing.
        if FrameType::from_u8(b[4]).is_some() && b[6] == 0 && b[7] == 0 {
            let len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
            if len <= MAX_PAYLOAD && len <= b.len() - FRAME_HEADER_LEN {
                if *budget < len + FRAME_HEADER_LEN {
                    return Some(Err(()));
                }
                *budget -= len + FRAME_HEADER_LEN;
                if decode_frame(b).is_ok() {
                    return Some(Ok(at as u64));
                }
            }
        }
        at += 1;
    }
    None
}

/// Scan a segment's bytes: header, then frames until the first invalid one, then classify the
/// rest as clean end, zero tail, torn tail or corruption. Never panics; allocates at most the
/// decoded frames.
pub fn scan_segment(buf: &[u8]) -> Result<SegmentScan, HeaderError> {
    scan_segment_opts(buf, true, false)
}

/// [`scan_segment`], going on past corruption: where it would end in
/// [`SegmentEnd::Corrupt`] with a next valid frame, the bytes up to that frame are recorded in
/// [`SegmentScan::skipped`] and the scan resumes there, as often as the segment needs (the
/// search for valid frames hashes at most `RESYNC_BUDGET` bytes in all). `end` then tells how
/// the frames after the last skipped region end, and `valid_len` is past the last valid frame
/// of the whole segment. This is how runs are read (`spec/journal.md`, *Reading past
/// corruption*); recovery and the writer use [`scan_segment`], which stops at the damage.
pub fn scan_segment_past_damage(buf: &[u8]) -> Result<SegmentScan, HeaderError> {
    scan_segment_opts(buf, true, true)
}

fn scan_segment_opts(buf: &[u8], records: bool, resume: bool) -> Result<SegmentScan, HeaderError> {
    let mut locs = Vec::new();
    let w = walk_segment(buf, records, resume, &mut locs)?;
    let frames = locs
        .iter()
        .map(|l| FrameAt {
            offset: l.offset as u64,
            frame: decode_payload(&l.raw(buf)),
        })
        .collect();
    Ok(SegmentScan {
        header: w.header,
        frames,
        end: w.end,
        valid_len: w.valid_len,
        skipped: w.skips,
        skimmed: w.skimmed,
    })
}

/// Unreadable bytes in the middle of a segment, with valid frames after them: what
/// [`scan_segment_past_damage`] skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Where the bad frame starts.
    pub offset: u64,
    /// Why it is not a valid frame.
    pub error: FrameError,
    /// The next valid frame, where the scan resumed (`next_valid - offset` bytes were
    /// skipped).
    pub next_valid: u64,
    /// How many frames of [`SegmentScan::frames`] come before this region (in a listing's
    /// walk, frames other than RECORDs).
    pub before_frame: usize,
}

/// Where a valid (CRC-checked) frame lies in a segment's bytes.
#[derive(Clone, Copy, Debug)]
struct FrameLoc {
    /// Offset of its header.
    offset: usize,
    kind: FrameType,
    /// Payload length.
    len: usize,
}

impl FrameLoc {
    /// The frame, from the bytes it was found in (its bounds were checked then).
    fn raw<'a>(&self, buf: &'a [u8]) -> RawFrame<'a> {
        let start = self.offset + FRAME_HEADER_LEN;
        RawFrame {
            kind: self.kind,
            flags: buf.get(self.offset + FR_FLAGS).copied().unwrap_or(0),
            payload: buf.get(start..start + self.len).unwrap_or_default(),
        }
    }
}

/// A segment's frames found valid by [`walk_segment`], without their payloads decoded.
#[derive(Debug)]
struct Walked {
    header: SegmentHeader,
    end: SegmentEnd,
    valid_len: u64,
    /// As [`SegmentScan::skimmed`].
    skimmed: (u64, i64),
    /// Length of the valid frame at [`HEADER_LEN`], if there is one.
    first_frame: Option<u64>,
    /// Corrupt regions walked past (only when asked to resume).
    skips: Vec<Skipped>,
}

/// [`decode_frame`], faster: the CRC in one pass over the bytes it covers (the header after
/// the CRC field and the payload are contiguous), with a hasher set up once per segment. It
/// accepts exactly what `decode_frame` accepts; anything else is handed to `decode_frame`
/// for the error.
#[inline]
fn check_frame<'a>(buf: &'a [u8], hasher: &crc32fast::Hasher) -> Result<RawFrame<'a>, FrameError> {
    if let Some(h) = buf.get(..FRAME_HEADER_LEN) {
        let len = u32::from_le_bytes([h[FR_LEN], h[FR_LEN + 1], h[FR_LEN + 2], h[FR_LEN + 3]]);
        let stored = u32::from_le_bytes([h[FR_CRC], h[FR_CRC + 1], h[FR_CRC + 2], h[FR_CRC + 3]]);
        let reserved_ok = h[FR_RESERVED] == 0 && h[FR_RESERVED + 1] == 0;
        if let (Some(kind), true, true) = (
            FrameType::from_u8(h[FR_TYPE]),
            reserved_ok,
            len as usize <= MAX_PAYLOAD,
        ) {
            if let Some(covered) = buf.get(FR_TYPE..FRAME_HEADER_LEN + len as usize) {
                let mut c = hasher.clone();
                c.update(covered);
                if c.finalize() == stored {
                    return Ok(RawFrame {
                        kind,
                        flags: h[FR_FLAGS],
                        payload: &covered[FRAME_HEADER_LEN - FR_TYPE..],
                    });
                }
            }
        }
    }
    decode_frame(buf)
}

/// The header and the valid frames of a segment (every CRC checked), then how they end: what
/// [`scan_segment`] does, without decoding payloads. The frames go to `locs` (cleared
/// first); without `records`, RECORD frames are only counted, with their latest time. With
/// `resume`, corruption followed by a valid frame is skipped (see
/// [`scan_segment_past_damage`]) instead of ending the walk.
fn walk_segment(
    buf: &[u8],
    records: bool,
    resume: bool,
    locs: &mut Vec<FrameLoc>,
) -> Result<Walked, HeaderError> {
    locs.clear();
    let header = decode_header(buf)?;
    let hasher = crc32fast::Hasher::new();
    let mut skimmed = (0u64, i64::MIN);
    let mut off = HEADER_LEN;
    let mut first_frame = None;
    let mut skips = Vec::new();
    // One budget for every search in the segment: a segment full of damage costs at most
    // this much hashing, however many regions it has.
    let mut budget = RESYNC_BUDGET;
    let end = loop {
        if off == buf.len() {
            break SegmentEnd::Clean;
        }
        match check_frame(&buf[off..], &hasher) {
            Ok(raw) => {
                match raw.payload.get(..8) {
                    // Listings keep no per-record state: memory stays independent of the
                    // number of records. The CRC was checked; the time is all they need.
                    Some(ts) if !records && raw.kind == FrameType::Record => {
                        let ts = i64::from_le_bytes(ts.try_into().unwrap_or([0; 8]));
                        skimmed.0 += 1;
                        skimmed.1 = skimmed.1.max(ts);
                    }
                    _ => locs.push(FrameLoc {
                        offset: off,
                        kind: raw.kind,
                        len: raw.payload.len(),
                    }),
                }
                if off == HEADER_LEN {
                    first_frame = Some(raw.encoded_len() as u64);
                }
                off += raw.encoded_len();
            }
            Err(error) => {
                if buf[off..].iter().all(|&b| b == 0) {
                    break SegmentEnd::ZeroTail { offset: off as u64 };
                }
                break match find_next_valid(buf, off + 1, &mut budget) {
                    Some(Ok(n)) if resume => {
                        skips.push(Skipped {
                            offset: off as u64,
                            error,
                            next_valid: n,
                            before_frame: locs.len(),
                        });
                        off = n as usize;
                        continue;
                    }
                    None => SegmentEnd::TornTail {
                        offset: off as u64,
                        error,
                    },
                    Some(Ok(n)) => SegmentEnd::Corrupt {
                        offset: off as u64,
                        error,
                        next_valid: Some(n),
                    },
                    Some(Err(())) => SegmentEnd::Corrupt {
                        offset: off as u64,
                        error,
                        next_valid: None,
                    },
                };
            }
        }
    };
    Ok(Walked {
        header,
        end,
        valid_len: off as u64,
        skimmed,
        first_frame,
        skips,
    })
}

/// An error reading a journal.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// An I/O error on a path.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file that is not a readable segment.
    BadSegment {
        /// The file.
        path: PathBuf,
        /// Why.
        error: HeaderError,
    },
    /// No such job in the journal.
    NoSuchJob {
        /// The journal directory.
        journal: PathBuf,
        /// The job.
        job: String,
    },
    /// No such run of the job.
    NoSuchRun {
        /// The job.
        job: String,
        /// The run id.
        run: String,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ReadError::BadSegment { path, error } => write!(f, "{}: {error}", path.display()),
            ReadError::NoSuchJob { journal, job } => write!(
                f,
                "no job {job:?} in journal {} (see `runlog list-jobs`)",
                journal.display()
            ),
            ReadError::NoSuchRun { job, run } => {
                write!(
                    f,
                    "job {job:?} has no run {run:?} (see `runlog list-runs {job}`)"
                )
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read a segment file (bounded by [`MAX_SEGMENT_FILE`]) and scan it.
pub fn scan_file(path: &Path) -> Result<SegmentScan, ReadError> {
    scan_file_opts(path, false)
}

/// Read a segment file (bounded by [`MAX_SEGMENT_FILE`]) and scan it past corruption
/// ([`scan_segment_past_damage`]).
pub fn scan_file_past_damage(path: &Path) -> Result<SegmentScan, ReadError> {
    scan_file_opts(path, true)
}

fn scan_file_opts(path: &Path, past_damage: bool) -> Result<SegmentScan, ReadError> {
    let bytes = read_bounded(path)?;
    scan_segment_opts(&bytes, true, past_damage).map_err(|error| ReadError::BadSegment {
        path: path.to_path_buf(),
        error,
    })
}

pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    read_bounded_into(path, &mut bytes)?;
    Ok(bytes)
}

/// [`read_bounded`] into a buffer that is reused (its old contents are dropped).
fn read_bounded_into(path: &Path, bytes: &mut Vec<u8>) -> Result<(), ReadError> {
    storage::read_bounded(path, MAX_SEGMENT_FILE, bytes).map_err(io_err(path))
}

/// The state of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunStatus {
    /// Its writer is alive and has not ended it.
    Running,
    /// Ended normally.
    Ok,
    /// Ended by a panic or an error.
    Failed,
    /// Its writer died before ending it.
    Crashed,
    /// Cancelled: to be forgotten (never listed).
    Cancelled,
    /// Ended or crashed, but read with problems: some of what it wrote cannot be shown
    /// (`spec/journal.md`, *Damaged*). Only [`RunInfo::shown_status`] gives it;
    /// [`RunInfo::status`] keeps the outcome of the end frame (or `Crashed`).
    Damaged,
}

impl RunStatus {
    /// The status to show for a run with this status that was read `damaged` (with
    /// problems) or not: [`RunStatus::Damaged`] for a run that ended or crashed, else itself.
    /// Journal and Redis readers both decide by it.
    pub fn shown(self, damaged: bool) -> RunStatus {
        match self {
            RunStatus::Ok | RunStatus::Failed | RunStatus::Crashed if damaged => RunStatus::Damaged,
            s => s,
        }
    }

    /// Lower-case name: `running`, `ok`, `failed`, `crashed`, `cancelled`, `damaged`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Damaged => "damaged",
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Crashed => "crashed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Damage found while reading a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// Byte offset in the file.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.path.display(),
            self.offset,
            self.what
        )
    }
}

/// What is known about a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    /// Run id.
    pub id: String,
    /// Job name.
    pub job: String,
    /// Status.
    pub status: RunStatus,
    /// Start time (ns since the epoch).
    pub start_ns: i64,
    /// End time, for ended runs.
    pub end_ns: Option<i64>,
    /// Time of the last record (or the start), useful for crashed and running runs.
    pub last_ns: i64,
    /// Records in the journal.
    pub records: u64,
    /// Records that could not be written.
    pub dropped: u64,
    /// Host of the writer.
    pub host: String,
    /// Pid of the writer.
    pub pid: u32,
    /// Labels sorted by key (byte order), as readers of Redis, whose run hash keeps no order,
    /// see them too; a later value for a key replaced the earlier.
    pub labels: Vec<(String, String)>,
    /// Segment files in order.
    pub segments: Vec<PathBuf>,
    /// Damage found (empty for a healthy run; a crashed run's torn tail is not damage).
    pub problems: Vec<Problem>,
}

impl RunInfo {
    /// The status to show: [`RunStatus::Damaged`] for a run that ended or crashed and was
    /// read with problems, else [`RunInfo::status`].
    pub fn shown_status(&self) -> RunStatus {
        self.status.shown(!self.problems.is_empty())
    }
}

/// A run with its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLog {
    /// The run.
    pub info: RunInfo,
    /// Its records in order.
    pub records: Vec<Record>,
}

/// A job in the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// The job name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Runs that are listed (cancelled ones are not).
    pub runs: usize,
    /// Start of the newest listed run.
    pub last_start_ns: Option<i64>,
    /// Status of the newest listed run, as shown ([`RunInfo::shown_status`]).
    pub last_status: Option<RunStatus>,
}

/// A journal directory, for reading.
///
/// Reading a big run (listing it, [`Journal::read_run`], [`Journal::for_each_record`]) uses
/// helper threads, one per spare CPU (at most 4), that read and check its next segments while
/// the current one is being decoded; they end before the call returns.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

/// Segment files of one job directory, grouped by run id, in sequence order (`.tmp-` files
/// and names that are not segments of a run id left out). A missing directory has no runs.
pub fn list_run_segments(
    job_dir: &Path,
) -> Result<BTreeMap<String, Vec<(u32, PathBuf)>>, ReadError> {
    list_job_dir(job_dir).map(|l| l.runs)
}

/// What a job directory holds, as [`list_job_dir`] sorts it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobDirListing {
    /// Segment files, grouped by run id, in sequence order.
    pub runs: BTreeMap<String, Vec<(u32, PathBuf)>>,
    /// Names that no runlog writer or shipper makes in a job directory (see
    /// [`layout::is_job_dir_entry`]): never read as runs, reported by `runlog journal verify`
    /// and the shipper.
    pub strays: Vec<PathBuf>,
}

/// Everything in one job directory: the runs' segments and the stray names. A missing
/// directory holds nothing.
///
/// Only a name of the form `<run id>.<6 digits>.seg` with a valid run id
/// ([`layout::is_run_id`]) is a segment: a copy named `keep.000000.seg` is a stray, not a run.
pub fn list_job_dir(job_dir: &Path) -> Result<JobDirListing, ReadError> {
    let mut out = JobDirListing::default();
    // Every reader, recovery, retention and the shipper list a job's runs here: a job
    // directory planted as a link to another directory is refused for all of them.
    if storage::is_symlink(job_dir) {
        return Err(io_err(job_dir)(storage::symlink_error()));
    }
    let names = match storage::read_dir(job_dir) {
        Ok(names) => names,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(job_dir)(e)),
    };
    for name in names {
        let Some(s) = name.to_str() else {
            out.strays.push(job_dir.join(&name));
            continue;
        };
        if let Some((id, seq)) = layout::parse_segment_name(s) {
            out.runs
                .entry(id.to_owned())
                .or_default()
                .push((seq, job_dir.join(s)));
        } else if !layout::is_job_dir_entry(s) {
            out.strays.push(job_dir.join(s));
        }
    }
    for segs in out.runs.values_mut() {
        segs.sort();
    }
    out.strays.sort();
    Ok(out)
}

/// The segments of one run as they are now: `Some` when `segs` (listed earlier) is stale.
///
/// Call it once the lock on segment 0 was found free. A dead writer makes no new segments, but
/// a listing made before the lock probe can miss what the writer did in between: roll over to
/// a new segment, end the run there and release the lock. Such a listing ends in a segment
/// without an end frame, and would make an ended run read as crashed. It is stale when the
/// segment after its last one exists, or when its numbers have a gap (a directory listing may
/// miss a file renamed in while it is read); then the directory is listed again, after the
/// probe, and that listing is final (empty if the run was deleted meanwhile).
fn relist_if_stale(segs: &[(u32, PathBuf)]) -> Option<Vec<(u32, PathBuf)>> {
    let (last_seq, last) = segs.last()?;
    let dir = last.parent()?;
    let id = last
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(layout::parse_segment_name)?
        .0;
    let gap = segs.iter().enumerate().any(|(i, (s, _))| *s != i as u32);
    let next = dir.join(layout::segment_name(id, last_seq.saturating_add(1)));
    let grew = !matches!(storage::metadata(&next), Err(e) if e.kind() == io::ErrorKind::NotFound);
    if !gap && !grew {
        return None;
    }
    let fresh = list_run_segments(dir).ok()?.remove(id).unwrap_or_default();
    (fresh != segs).then_some(fresh)
}

/// [`quick_status`] for a caller that goes on to act on the run's segments: when the writer is
/// found dead and the listing `segs` turns out to be stale (a later segment exists, or its
/// numbers have a gap), `segs` is replaced by the run's segments as they are now, and the
/// status is read from those. An empty `segs` afterwards means the run was deleted meanwhile.
pub fn settled_status(segs: &mut Vec<(u32, PathBuf)>) -> RunStatus {
    let status = quick_status_of(segs);
    if status != RunStatus::Crashed {
        return status;
    }
    match relist_if_stale(segs) {
        Some(fresh) => {
            *segs = fresh;
            quick_status_of(segs)
        }
        None => status,
    }
}

/// Whether a run (its segments, as [`list_run_segments`] groups them) is cancelled, by a full
/// scan of its last segment: its last frame is a CANCEL frame and nothing but zeros follows
/// it. A cancel is made durable in the last segment only, so this holds also when earlier
/// segments came back damaged or empty after a power loss. (Retention checks this before
/// deleting a run that merely looks cancelled: a crashed run's last record could end in bytes
/// that look like a CANCEL frame.)
pub fn really_cancelled(segs: &[(u32, PathBuf)]) -> bool {
    let Some((_, last)) = segs.last() else {
        return false;
    };
    let Ok(scan) = scan_file(last) else {
        return false;
    };
    matches!(scan.end, SegmentEnd::Clean | SegmentEnd::ZeroTail { .. })
        && !scan.is_corrupt()
        && scan.frames.last().is_some_and(
            |f| matches!(&f.frame, Ok(Frame::End(e)) if e.outcome == Outcome::Cancelled),
        )
}

/// Is this run (its segments, as [`list_run_segments`] groups them) being deleted?
///
/// Runs are deleted from segment 0 on (cancel, retention, [`remove_run`]): a run without its
/// segment 0 is being deleted, or was when its deleter died, and is not listed (the next sweep
/// finishes). An empty list counts as being deleted.
///
/// [`remove_run`]: super::retention::remove_run
pub fn being_deleted(segs: &[(u32, PathBuf)]) -> bool {
    segs.first().is_none_or(|(seq, _)| *seq != 0)
}

/// What the lock on a run's segment 0 says about its writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// The lock is held: the writer is alive (or a sweep holds it for a moment).
    Alive,
    /// The lock is free: the writer is gone.
    Dead,
    /// The file is gone: the run was deleted meanwhile.
    Gone,
}

/// The state of a run's writer, from the lock on its segment 0. When the file cannot be
/// opened for another reason the answer is `Alive`: never treat a run as dead on a guess.
pub fn writer_state(seg0: &Path) -> Writer {
    let f = match storage::open(seg0, OpenMode::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Writer::Gone,
        Err(_) => return Writer::Alive,
    };
    match f.try_lock_shared() {
        Ok(true) => {
            let _ = f.unlock();
            Writer::Dead
        }
        Ok(false) | Err(_) => Writer::Alive,
    }
}

/// The status of a run from its segments (as [`list_run_segments`] groups them), cheaply:
/// reads only the last [`END_FRAME_LEN`] bytes of its last segment and, when they are not a
/// COMMIT or CANCEL frame, the lock on segment 0 ([`writer_state`]: alive is `Running`, dead
/// or gone is `Crashed`). An empty list is `Crashed`. Never fails: an unreadable tail reads as
/// "no end frame". A run whose writer is found dead is called `Crashed` only once the listing
/// is confirmed after the lock probe (a writer may have rolled over, ended the run in a new
/// segment and released its lock since `segs` was listed; then the status is read from the
/// run's segments as they are now: [`settled_status`]).
///
/// An answer from an end frame is a hint: the last bytes of a crashed run's last record could
/// look like one. Retention confirms `Cancelled` by scanning the last segment before deleting
/// a run; [`read_run_segments`] scans every frame and gives the authoritative status (use it
/// before shipping a run).
pub fn quick_status(segs: &[(u32, PathBuf)]) -> RunStatus {
    settled_status(&mut segs.to_vec())
}

/// [`quick_status`] of exactly these segments (the listing not checked for staleness).
fn quick_status_of(segs: &[(u32, PathBuf)]) -> RunStatus {
    let (Some((_, first)), Some((_, last))) = (segs.first(), segs.last()) else {
        return RunStatus::Crashed;
    };
    if let Some(outcome) = tail_outcome(last) {
        return match outcome {
            Outcome::Ok => RunStatus::Ok,
            Outcome::Failed => RunStatus::Failed,
            Outcome::Cancelled => RunStatus::Cancelled,
        };
    }
    match writer_state(first) {
        Writer::Alive => RunStatus::Running,
        Writer::Dead | Writer::Gone => RunStatus::Crashed,
    }
}

/// The outcome in the end frame that ends the file, if its last bytes are one.
fn tail_outcome(path: &Path) -> Option<Outcome> {
    let f = storage::open(path, OpenMode::Read).ok()?;
    let len = f.len().ok()?;
    if len < (HEADER_LEN + END_FRAME_LEN) as u64 {
        return None;
    }
    let mut b = [0u8; END_FRAME_LEN];
    if f.read_at(&mut b, len - END_FRAME_LEN as u64).ok()? != END_FRAME_LEN {
        return None;
    }
    let raw = decode_frame(&b).ok()?;
    if !matches!(raw.kind, FrameType::Commit | FrameType::Cancel) {
        return None;
    }
    match decode_payload(&raw).ok()? {
        Frame::End(e) => Some(e.outcome),
        _ => None,
    }
}

/// Read and assemble one run from its segments (as [`list_run_segments`] groups them; `id` is
/// the run id they were grouped under).
///
/// Every frame's CRC is checked. With `want_records` the records are decoded and returned;
/// without, only counted (and their timestamps used for [`RunInfo::last_ns`]), so that memory
/// does not grow with the number of records. `job_hint` is the job name used until the BEGIN
/// frame gives the exact one (e.g. the decoded directory name).
///
/// Unlike [`Journal::read_run`], this does not filter: the run may be `Running`, `Cancelled`,
/// or belong to another job than `job_hint` (a cut, hashed directory name is shared); check
/// [`RunInfo::status`] and [`RunInfo::job`]. Callers normally skip runs that are
/// [`being_deleted`]. Damage is reported in [`RunInfo::problems`], not as an error.
///
/// # Errors
/// [`ReadError::NoSuchRun`] if a segment was deleted since the listing (the run is gone);
/// [`ReadError::Io`] for any other I/O error on a segment.
pub fn read_run_segments(
    job_hint: &str,
    id: &str,
    segs: &[(u32, PathBuf)],
    want_records: bool,
) -> Result<RunLog, ReadError> {
    let sink = if want_records {
        Sink::Collect(Vec::new())
    } else {
        Sink::Skim
    };
    let scanned = scan_run(job_hint, id, segs, sink, 0, None)?;
    Ok(RunLog {
        info: scanned.info,
        records: scanned.records,
    })
}

/// Read one run from its segments as [`read_run_segments`] does with records (every frame's
/// CRC checked and every RECORD payload decoded, damage, including a payload that does not
/// decode, reported in [`RunInfo::problems`]), and hand each good RECORD payload to `f` as it
/// is read, in order and as it is stored (the layout of `spec/journal.md`), with the run's
/// job name: the one its BEGIN
/// frame names, else `job_hint` (settled before the first record is handed over, since a
/// BEGIN frame counts only as the first frame of the run). `f` returns false to stop.
///
/// Each segment is read once, so the records handed over are exactly those the returned info
/// describes, even if a segment changes meanwhile; memory holds a few segments at a time,
/// whatever the size of the run. With `read_ahead`, helper threads read and check the next
/// segments of a big run while `f` works (as [`Journal::for_each_record`] does).
///
/// Returns the run's info when every record was handed over, `None` when `f` stopped early.
///
/// # Errors
/// As [`read_run_segments`].
pub fn stream_run_payloads(
    job_hint: &str,
    id: &str,
    segs: &[(u32, PathBuf)],
    read_ahead: bool,
    f: &mut dyn FnMut(&str, &[u8]) -> bool,
) -> Result<Option<RunInfo>, ReadError> {
    let helpers = if read_ahead {
        helpers_for(segs, true)
    } else {
        0
    };
    let r = scan_run(job_hint, id, segs, Sink::Payloads(f), helpers, None)?;
    Ok(r.complete.then_some(r.info))
}

/// What a run scan does with RECORD frames.
enum Sink<'f> {
    /// Count them (CRC-checked) and take their times, as listings do: memory stays independent
    /// of the number of records.
    Skim,
    /// Decode and keep them.
    Collect(Vec<Record>),
    /// Decode each that `pre` lets through (it sees the payload) and hand it to `f`, until
    /// `f` returns false.
    Stream {
        pre: &'f mut dyn FnMut(&[u8]) -> bool,
        f: &'f mut dyn FnMut(RecordRef<'_>) -> bool,
    },
    /// Check that each decodes (one that does not is a problem, as in a full read), count
    /// the others and hand each, as it is stored, to `f` with the run's job name, until `f`
    /// returns false.
    Payloads(&'f mut dyn FnMut(&str, &[u8]) -> bool),
}

/// What [`scan_run`] found.
struct Scanned {
    info: RunInfo,
    /// With [`Sink::Collect`].
    records: Vec<Record>,
    /// False if a [`Sink::Stream`] callback stopped the scan (`info` then covers only the part
    /// read).
    complete: bool,
}

/// One segment read and walked (see [`walk_segment`]), its buffers reused for the next.
#[derive(Default)]
struct Loaded {
    buf: Vec<u8>,
    locs: Vec<FrameLoc>,
    walked: Option<Walked>,
}

fn load_segment(
    path: &Path,
    records: bool,
    resume: bool,
    slot: &mut Loaded,
) -> Result<(), ReadError> {
    slot.walked = None;
    slot.locs.clear();
    read_bounded_into(path, &mut slot.buf)?;
    match walk_segment(&slot.buf, records, resume, &mut slot.locs) {
        Ok(w) => {
            slot.walked = Some(w);
            Ok(())
        }
        Err(error) => Err(ReadError::BadSegment {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// CPUs this process may use (at least 1), asked once.
fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs with fewer segments than this are read in the calling thread: starting a thread costs
/// more than it saves on a small run (the first segments are small).
const MIN_SEGMENTS_FOR_HELPERS: usize = 3;

/// Bytes of segments a run read may hold at once when it reads ahead on helper threads. A run
/// whose segments are so big that reading ahead would hold more (`segment-size` goes up to
/// 1 GiB) is read one segment at a time.
const READ_AHEAD_BUDGET: u64 = 256 << 20;

/// Helper threads to read a run of segments `segs` with: the CPUs left besides the caller's
/// when the caller decodes records (`caller_busy`), else all of them (the caller only waits);
/// at most 4, and fewer if the segments they would hold at once (the helpers', plus two: see
/// [`load_in_order`]) would exceed [`READ_AHEAD_BUDGET`]; none for a small run or on one CPU.
fn helpers_for(segs: &[(u32, PathBuf)], caller_busy: bool) -> usize {
    if segs.len() < MIN_SEGMENTS_FOR_HELPERS || cpus() < 2 {
        return 0;
    }
    let want = if caller_busy { cpus() - 1 } else { cpus() }.min(4);
    // A file that cannot be looked at counts as the biggest a segment can be.
    let biggest = segs
        .iter()
        .map(|(_, p)| storage::metadata(p).map_or(MAX_SEGMENT_FILE, |m| m.len))
        .max()
        .unwrap_or(MAX_SEGMENT_FILE)
        .max(1);
    let held = (READ_AHEAD_BUDGET / biggest) as usize;
    want.min(held.saturating_sub(2))
}

/// Load the segments at `paths` ([`load_segment`]) and hand each to `consume` in order, until
/// it returns false. With `helpers` > 0, that many threads load the next segments (at most
/// `helpers + 1` ahead) while `consume` works on the current one; rather than wait for a
/// segment, the caller's thread loads one itself (so it also works when no helper could be
/// started). Segments are walked past corruption (see [`scan_segment_past_damage`]), except
/// the last one when `stop_at_damage_in_last`.
fn load_in_order(
    paths: &[&Path],
    records: bool,
    stop_at_damage_in_last: bool,
    helpers: usize,
    consume: &mut dyn FnMut(usize, Result<&Loaded, ReadError>) -> bool,
) {
    // A live writer's last segment is read as far as its first bad frame only: a later frame
    // may be complete while an earlier one is still being written.
    let resume = |i: usize| !(stop_at_damage_in_last && i + 1 == paths.len());
    if helpers == 0 || paths.len() < 2 {
        let mut slot = Loaded::default();
        for (i, p) in paths.iter().enumerate() {
            let r = load_segment(p, records, resume(i), &mut slot);
            if !consume(i, r.map(|()| &slot)) {
                return;
            }
        }
        return;
    }

    #[derive(Default)]
    struct Shared {
        /// The next segment to load.
        next: usize,
        /// Segments handed to `consume` so far.
        consumed: usize,
        /// Stop loading (the consumer is done, or a helper died).
        stop: bool,
        /// A helper panicked (the scope passes its panic on).
        broken: bool,
        /// Helpers still running.
        live: usize,
        ready: BTreeMap<usize, (Loaded, Result<(), ReadError>)>,
        pool: Vec<Loaded>,
    }
    fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    let shared = Mutex::new(Shared::default());
    let cv = Condvar::new();
    let depth = helpers + 1;

    /// Sets `stop` when dropped (normally or by a panic) and wakes everyone.
    struct Stop<'a> {
        shared: &'a Mutex<Shared>,
        cv: &'a Condvar,
        helper: bool,
    }
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let mut st = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            if self.helper {
                st.live -= 1;
                if std::thread::panicking() {
                    st.broken = true;
                    st.stop = true;
                }
            } else {
                st.stop = true;
            }
            self.cv.notify_all();
        }
    }

    std::thread::scope(|scope| {
        for _ in 0..helpers {
            lock(&shared).live += 1;
            let spawned = std::thread::Builder::new()
                .name("runlog-read".into())
                .spawn_scoped(scope, || {
                    let _stop = Stop {
                        shared: &shared,
                        cv: &cv,
                        helper: true,
                    };
                    loop {
                        let (i, mut slot) = {
                            let mut st = lock(&shared);
                            loop {
                                if st.stop || st.next >= paths.len() {
                                    return;
                                }
                                if st.next < st.consumed + depth {
                                    break;
                                }
                                st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                            }
                            st.next += 1;
                            (st.next - 1, st.pool.pop().unwrap_or_default())
                        };
                        let r = load_segment(paths[i], records, resume(i), &mut slot);
                        lock(&shared).ready.insert(i, (slot, r));
                        cv.notify_all();
                    }
                });
            if spawned.is_err() {
                lock(&shared).live -= 1;
            }
        }
        let _stop = Stop {
            shared: &shared,
            cv: &cv,
            helper: false,
        };
        for i in 0..paths.len() {
            let (slot, r) = {
                let mut st = lock(&shared);
                loop {
                    if let Some(x) = st.ready.remove(&i) {
                        break x;
                    }
                    if st.broken {
                        return;
                    }
                    if st.next < paths.len() && st.next < i + depth {
                        // Rather than wait, load the next segment not taken yet (this one
                        // if no helper did: none could be started, or they are busy).
                        let j = st.next;
                        st.next += 1;
                        let mut slot = st.pool.pop().unwrap_or_default();
                        drop(st);
                        let r = load_segment(paths[j], records, resume(j), &mut slot);
                        if j == i {
                            break (slot, r);
                        }
                        st = lock(&shared);
                        st.ready.insert(j, (slot, r));
                        continue;
                    }
                    st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let go = consume(i, r.map(|()| &slot));
            {
                let mut st = lock(&shared);
                st.consumed = i + 1;
                st.pool.push(slot);
            }
            cv.notify_all();
            if !go {
                return;
            }
        }
    });
}

/// What is known of a run before its frames are read: its id, the job its directory names,
/// its segments; `Crashed` until an end frame or a live writer says otherwise.
fn unread_info(id: &str, job_hint: &str, segs: &[(u32, PathBuf)]) -> RunInfo {
    RunInfo {
        id: id.to_owned(),
        job: job_hint.to_owned(),
        status: RunStatus::Crashed,
        start_ns: 0,
        end_ns: None,
        last_ns: 0,
        records: 0,
        dropped: 0,
        host: String::new(),
        pid: 0,
        labels: Vec::new(),
        segments: segs.iter().map(|(_, p)| p.clone()).collect(),
        problems: Vec::new(),
    }
}

/// Whether the zeros at `zeros_at..seg_len` ending a segment that is not its run's last are a
/// hole (frames lost, e.g. pages of the segment that a power loss took before it was synced)
/// rather than preallocated space the writer never used: the writer moves to the next segment
/// only for a frame that does not fit before the end-frame reserve, and that frame is the next
/// segment's first (`next_first` bytes). If it would have fit here, frames were lost.
///
/// Frames lost at the very end of a segment, less than the next segment's first frame and the
/// reserve in all, look like unused space and are not found this way.
pub(crate) fn zero_tail_is_hole(zeros_at: u64, seg_len: u64, next_first: u64) -> bool {
    zeros_at
        .saturating_add(next_first)
        .saturating_add(END_FRAME_LEN as u64)
        <= seg_len
}

/// The problem reported for a hole ([`zero_tail_is_hole`]).
fn hole_problem(path: &Path, zeros_at: u64, seg_len: u64, next_first: u64) -> Problem {
    Problem {
        path: path.to_path_buf(),
        offset: zeros_at,
        what: format!(
            "hole: bytes {zeros_at}..{seg_len} are zeros, yet the run goes on in its next \
             segment, whose first frame ({next_first} bytes) would have fit here: frames were \
             lost (a power loss before this segment was synced?)"
        ),
    }
}

/// The hole (zeros where the next segment's first frame would have fit) that the zeros from
/// `zeros_at` to the end of the segment file `path` are, given the run's next segment `next`:
/// `None` if they may be unused space (or `next` has no valid first frame).
pub fn hole_before(path: &Path, zeros_at: u64, next: &Path) -> Option<Problem> {
    let len = storage::metadata(path).ok()?.len;
    let next_first = first_frame_len(next)?;
    zero_tail_is_hole(zeros_at, len, next_first)
        .then(|| hole_problem(path, zeros_at, len, next_first))
}

/// The length of the first frame of a segment (at [`HEADER_LEN`]), if its header and that
/// frame are valid; reads at most that frame.
fn first_frame_len(path: &Path) -> Option<u64> {
    let f = storage::open(path, OpenMode::Read).ok()?;
    let mut head = [0u8; HEADER_LEN + FRAME_HEADER_LEN];
    if f.read_at(&mut head, 0).ok()? != head.len() {
        return None;
    }
    decode_header(&head).ok()?;
    let len = u32::from_le_bytes([
        head[HEADER_LEN + FR_LEN],
        head[HEADER_LEN + FR_LEN + 1],
        head[HEADER_LEN + FR_LEN + 2],
        head[HEADER_LEN + FR_LEN + 3],
    ]) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    let mut frame = Vec::new();
    f.read_into(
        HEADER_LEN as u64,
        (FRAME_HEADER_LEN + len) as u64,
        &mut frame,
    )
    .ok()?;
    decode_frame(&frame)
        .ok()
        .map(|raw| raw.encoded_len() as u64)
}

/// The start time a run id begins with (ns since the epoch; 0 if it does not parse).
fn start_from_id(id: &str) -> i64 {
    crate::time::parse_utc(id.get(..27).unwrap_or("")).unwrap_or(0)
}

/// What a listing shows of a run that cannot be read: its start from its id, the error as its
/// problem, and `running` unless its writer is known to be dead (a run is never called dead on
/// a guess: a segment 0 that cannot be opened counts as a live writer's, see [`writer_state`]).
fn unreadable_info(id: &str, job_hint: &str, segs: &[(u32, PathBuf)], e: &ReadError) -> RunInfo {
    let mut info = unread_info(id, job_hint, segs);
    info.status = match segs.first().map(|(_, p)| writer_state(p)) {
        Some(Writer::Dead | Writer::Gone) => RunStatus::Crashed,
        Some(Writer::Alive) | None => RunStatus::Running,
    };
    info.start_ns = start_from_id(id);
    info.last_ns = info.start_ns;
    let (path, what) = match e {
        ReadError::Io { path, source } => (
            path.clone(),
            format!("cannot be read: {source} (check the file's owner and mode)"),
        ),
        other => (
            segs.first().map(|(_, p)| p.clone()).unwrap_or_default(),
            format!("cannot be read: {other}"),
        ),
    };
    info.problems.push(Problem {
        path,
        offset: 0,
        what,
    });
    info
}

/// Read one run from its segments: every frame's CRC checked, damage reported as problems,
/// RECORD frames going to `sink`. `helpers` threads (see [`load_in_order`]) read and check
/// segments ahead of the one whose frames are being decoded. With `expect_job`, a BEGIN frame
/// naming another job ends the scan with [`ReadError::NoSuchRun`] before any record is handed
/// over.
fn scan_run(
    job_hint: &str,
    id: &str,
    segs: &[(u32, PathBuf)],
    mut sink: Sink<'_>,
    helpers: usize,
    expect_job: Option<&str>,
) -> Result<Scanned, ReadError> {
    let alive = segs
        .first()
        .is_some_and(|(_, p)| writer_state(p) == Writer::Alive);
    // A dead writer makes no new segments: a listing made before the probe is confirmed, or
    // replaced by one made after it (an ended run never reads as crashed from a stale list).
    let fresh = if alive { None } else { relist_if_stale(segs) };
    let segs = match &fresh {
        // Deleted (from segment 0 on) since the listing.
        Some(f) if being_deleted(f) => {
            return Err(ReadError::NoSuchRun {
                job: job_hint.to_owned(),
                run: id.to_owned(),
            })
        }
        Some(f) => f.as_slice(),
        None => segs,
    };
    let mut info = unread_info(id, job_hint, segs);
    let mut begin: Option<Begin> = None;
    let mut end: Option<End> = None;
    // Segments up to the first gap in their numbers are read; the gap is damage (reported
    // only if every segment before it is readable: reading stops at the first that is not).
    let mut gap = None;
    let mut upto = segs.len();
    for (i, (seq, path)) in segs.iter().enumerate() {
        if *seq != i as u32 {
            gap = Some(Problem {
                path: path.clone(),
                offset: 0,
                what: format!("segment {i} of the run is missing (found segment {seq})"),
            });
            upto = i;
            break;
        }
    }
    let paths: Vec<&Path> = segs[..upto].iter().map(|(_, p)| p.as_path()).collect();
    let records_wanted = !matches!(sink, Sink::Skim);
    // A segment that could not be read (reported before the problems found in the frames).
    let mut unreadable: Option<Problem> = None;
    let mut failed: Option<ReadError> = None;
    let mut stopped = false;
    let mut loaded_all = false;
    // The end of the previous segment, classified once it is known whether it is the last
    // one read: (its path, how its frames end, whether the run had no end frame yet).
    let mut pending: Option<(&Path, SegmentEnd, bool)> = None;
    // The zero tail of the previous segment, if it ended in one: (its path, where the zeros
    // start, its length), checked against this segment's first frame for a hole.
    let mut zeros_before: Option<(&Path, u64, u64)> = None;
    let mut records = Vec::new();
    // Where the first end frame is (segment index, offset), and whether frames after it were
    // reported.
    let mut end_at: Option<(usize, u64)> = None;
    let mut after_end_reported = false;

    let classify = |problems: &mut Vec<Problem>, p: (&Path, SegmentEnd, bool), last: bool| {
        let (path, seg_end, no_end_yet) = p;
        match seg_end {
            SegmentEnd::Clean | SegmentEnd::ZeroTail { .. } => {}
            // A live writer may be in the middle of a frame; a dead one may have been killed
            // in the middle of one. Either way the tail of the last segment is not damage.
            SegmentEnd::TornTail { .. } if last && no_end_yet => {}
            SegmentEnd::TornTail { offset, error } => problems.push(Problem {
                path: path.to_path_buf(),
                offset,
                what: format!("torn frame before the end of the run: {error}"),
            }),
            SegmentEnd::Corrupt { .. } if alive && last => {}
            SegmentEnd::Corrupt {
                offset,
                error,
                next_valid,
            } => problems.push(corrupt_problem(path, offset, &error, next_valid)),
        }
    };

    load_in_order(&paths, records_wanted, alive, helpers, &mut |i, loaded| {
        let path = paths[i];
        let slot = match loaded {
            Ok(slot) => slot,
            Err(ReadError::BadSegment { path, error }) => {
                // A segment whose header was never completely written is what a crash
                // during rollover leaves; anywhere else it is damage.
                let torn = matches!(error, HeaderError::Short(_)) && i + 1 == segs.len() && !alive;
                if !torn && !alive {
                    unreadable = Some(Problem {
                        path,
                        offset: 0,
                        what: error.to_string(),
                    });
                }
                return false;
            }
            // Deleted since the directory was listed (cancel, retention): the run is gone.
            Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                failed = Some(ReadError::NoSuchRun {
                    job: job_hint.to_owned(),
                    run: id.to_owned(),
                });
                return false;
            }
            Err(e) => {
                failed = Some(e);
                return false;
            }
        };
        let Some(w) = &slot.walked else {
            return false;
        };
        if let Some(p) = pending.take() {
            classify(&mut info.problems, p, false);
        }
        if let (Some((zpath, at, len)), Some(next)) = (zeros_before.take(), w.first_frame) {
            if zero_tail_is_hole(at, len, next) {
                info.problems.push(hole_problem(zpath, at, len, next));
            }
        }
        if w.header.seq != i as u32 || w.header.run_id != id {
            info.problems.push(Problem {
                path: path.to_path_buf(),
                offset: 0,
                what: format!(
                    "segment header says run {} segment {}, the file name says run {id} segment {i}",
                    w.header.run_id, w.header.seq
                ),
            });
        }
        info.records += w.skimmed.0;
        if w.skimmed.0 > 0 {
            info.last_ns = info.last_ns.max(w.skimmed.1);
        }
        let mut skips = w.skips.iter().peekable();
        for (k, loc) in slot.locs.iter().enumerate() {
            while let Some(skip) = skips.next_if(|s| s.before_frame <= k) {
                if !damage_record(
                    &mut sink,
                    &mut info,
                    path,
                    skip,
                    begin.as_ref(),
                    job_hint,
                    id,
                ) {
                    stopped = true;
                    return false;
                }
            }
            let raw = loc.raw(&slot.buf);
            let offset = loc.offset as u64;
            if let (Sink::Payloads(f), FrameType::Record) = (&mut sink, raw.kind) {
                // Checked as a full read checks them: a payload that does not decode (its CRC
                // valid) is reported as damage, neither counted nor handed over, so that no
                // reader of what `f` keeps (a Redis chunk) meets it among good records.
                if let Err(e) = decode_record_ref(raw.payload) {
                    info.problems.push(Problem {
                        path: path.to_path_buf(),
                        offset,
                        what: e.to_string(),
                    });
                    continue;
                }
                if let Some(ts) = record_payload_ts(raw.payload) {
                    info.records += 1;
                    info.last_ns = info.last_ns.max(ts);
                    // A BEGIN frame counts only as the first frame of the run, so the job
                    // name is settled before the first record.
                    let job = begin.as_ref().map_or(job_hint, |b| b.job.as_str());
                    if !f(job, raw.payload) {
                        stopped = true;
                        return false;
                    }
                    continue;
                }
            } else if records_wanted && raw.kind == FrameType::Record {
                if let Sink::Stream { pre, .. } = &mut sink {
                    if !pre(raw.payload) {
                        // Not wanted: counted as a listing counts it, not decoded.
                        if let Some(ts) = record_payload_ts(raw.payload) {
                            info.records += 1;
                            info.last_ns = info.last_ns.max(ts);
                        }
                        continue;
                    }
                }
                match decode_record_ref(raw.payload) {
                    Err(e) => info.problems.push(Problem {
                        path: path.to_path_buf(),
                        offset,
                        what: e.to_string(),
                    }),
                    Ok(r) => {
                        info.records += 1;
                        info.last_ns = info.last_ns.max(r.ts_ns);
                        match &mut sink {
                            Sink::Collect(v) => v.push(r.to_record()),
                            Sink::Stream { f, .. } => {
                                if !f(r) {
                                    stopped = true;
                                    return false;
                                }
                            }
                            Sink::Skim | Sink::Payloads(_) => {}
                        }
                    }
                }
                continue;
            }
            match decode_payload(&raw) {
                Err(e) => info.problems.push(Problem {
                    path: path.to_path_buf(),
                    offset,
                    what: e.to_string(),
                }),
                Ok(Frame::Begin(b)) => {
                    if begin.is_some() || i != 0 || loc.offset != HEADER_LEN {
                        info.problems.push(Problem {
                            path: path.to_path_buf(),
                            offset,
                            what: "unexpected BEGIN frame".into(),
                        });
                    } else {
                        if expect_job.is_some_and(|j| j != b.job) {
                            failed = Some(ReadError::NoSuchRun {
                                job: job_hint.to_owned(),
                                run: id.to_owned(),
                            });
                            return false;
                        }
                        begin = Some(b);
                    }
                }
                Ok(Frame::Record(r)) => {
                    // Only a payload too short to skim gets here, and it does not decode.
                    info.records += 1;
                    info.last_ns = info.last_ns.max(r.ts_ns);
                    if let Sink::Collect(v) = &mut sink {
                        v.push(r);
                    }
                }
                Ok(Frame::Label { key, value }) => {
                    if let Some(l) = info.labels.iter_mut().find(|(k, _)| *k == key) {
                        l.1 = value;
                    } else {
                        info.labels.push((key, value));
                    }
                }
                // The first end frame ends the run (see `after_end_problem`).
                Ok(Frame::End(e)) => {
                    if end.is_none() {
                        end = Some(e);
                        end_at = Some((i, offset));
                    }
                }
            }
        }
        if !after_end_reported {
            if let Some(p) = after_end_problem(end_at, i, path, w.valid_len) {
                info.problems.push(p);
                after_end_reported = true;
            }
        }
        for skip in skips {
            if !damage_record(
                &mut sink,
                &mut info,
                path,
                skip,
                begin.as_ref(),
                job_hint,
                id,
            ) {
                stopped = true;
                return false;
            }
        }
        if let SegmentEnd::ZeroTail { offset } = w.end {
            zeros_before = Some((path, offset, slot.buf.len() as u64));
        }
        pending = Some((path, w.end.clone(), end.is_none()));
        loaded_all = i + 1 == paths.len();
        true
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if let Sink::Collect(v) = sink {
        records = v;
    }
    if stopped {
        return Ok(Scanned {
            info,
            records,
            complete: false,
        });
    }
    if let Some(p) = pending.take() {
        classify(&mut info.problems, p, true);
    }
    // One order everywhere: Redis keeps labels as hash fields, which have none.
    info.labels.sort_by(|a, b| a.0.cmp(&b.0));
    let first = unreadable.or(if loaded_all || paths.is_empty() {
        gap
    } else {
        None
    });
    if let Some(b) = &begin {
        info.job = b.job.clone();
        info.start_ns = b.start_ns;
        info.host = b.host.clone();
        info.pid = b.pid;
        info.last_ns = info.last_ns.max(b.start_ns);
    } else {
        if let Some(p) = segs.first() {
            if !alive && first.is_none() && info.problems.is_empty() {
                info.problems.push(Problem {
                    path: p.1.clone(),
                    offset: HEADER_LEN as u64,
                    what: "run has no BEGIN frame".into(),
                });
            }
        }
        // Fall back to the start time in the id; `last` is never before it.
        info.start_ns = start_from_id(id);
        info.last_ns = info.last_ns.max(info.start_ns);
    }
    if let Some(p) = first {
        info.problems.insert(0, p);
    }
    check_end_count(&mut info, end.as_ref(), segs);
    // Reading stopped before the last segment (one unreadable or missing): a cancelled run
    // whose earlier segments a power loss damaged (its cancel is durable in the last segment
    // only) is still cancelled, never listed, and the next sweep deletes it.
    let read_to_last = loaded_all && upto == segs.len();
    if end.is_none() && !read_to_last && really_cancelled(segs) {
        info.status = RunStatus::Cancelled;
        return Ok(Scanned {
            info,
            records,
            complete: true,
        });
    }
    info.status = match end {
        Some(e) => {
            info.end_ns = Some(e.end_ns);
            info.dropped = e.dropped;
            match e.outcome {
                Outcome::Ok => RunStatus::Ok,
                Outcome::Failed => RunStatus::Failed,
                Outcome::Cancelled => RunStatus::Cancelled,
            }
        }
        None if alive => RunStatus::Running,
        None => RunStatus::Crashed,
    };
    Ok(Scanned {
        info,
        records,
        complete: true,
    })
}

/// The problem for frames after a run's first end frame (at `end_at`: segment index, offset),
/// if segment `i` at `path`, whose valid frames end at `valid_len`, holds any. A writer writes
/// one end frame and nothing after it, so whatever follows was not written as part of the run
/// (damage, or a segment of something else): it is reported, and the first end frame keeps
/// the run's status and end (a CANCEL then a COMMIT is a cancelled run, never an `ok` one).
/// Told by offsets alone, so listings (which do not keep records) and full reads agree.
fn after_end_problem(
    end_at: Option<(usize, u64)>,
    i: usize,
    path: &Path,
    valid_len: u64,
) -> Option<Problem> {
    let (seg, off) = end_at?;
    let first_after = if seg == i {
        off + END_FRAME_LEN as u64
    } else {
        HEADER_LEN as u64
    };
    (valid_len > first_after).then(|| Problem {
        path: path.to_path_buf(),
        offset: first_after,
        what: "frames after the run's end frame (the first end frame ends the run; they \
               change neither its status nor its end)"
            .into(),
    })
}

/// Target of the marker record a reader puts where a run's records could not be read (a
/// corrupt region of a segment, see [`scan_segment_past_damage`]); its message is
/// [`damage_marker`].
pub const DAMAGE_TARGET: &str = "runlog::damage";

/// The message of the record that marks `bytes` unreadable bytes at `offset` of the segment
/// file named `file` (its name, not its path: readers of the journal anywhere, and Redis,
/// show the same text): `-- N bytes unreadable at FILE:OFFSET --`.
pub fn damage_marker(file: &str, offset: u64, bytes: u64) -> String {
    format!("-- {bytes} bytes unreadable at {file}:{offset} --")
}

/// The problem for a corrupt region, and where the records resume.
fn corrupt_problem(path: &Path, offset: u64, error: &FrameError, next: Option<u64>) -> Problem {
    Problem {
        path: path.to_path_buf(),
        offset,
        what: match next {
            Some(n) => format!("corrupt frame ({error}); valid frames follow at offset {n}"),
            None => format!("corrupt frame ({error}); data follows it"),
        },
    }
}

/// Report the corrupt region `skip` of segment `path` as a problem and put a marker record
/// ([`DAMAGE_TARGET`], WARN, the time of the newest record before it, or the run's start) where its
/// records would have been, so that every reader shows the records after it and where the gap
/// is. The marker counts as a record. Returns false if the sink stopped.
fn damage_record(
    sink: &mut Sink<'_>,
    info: &mut RunInfo,
    path: &Path,
    skip: &Skipped,
    begin: Option<&Begin>,
    job_hint: &str,
    id: &str,
) -> bool {
    // Without a BEGIN frame (lost to the damage), the job dir's name and the id's time.
    let job = begin.map_or(job_hint, |b| b.job.as_str());
    let start = begin.map_or_else(|| start_from_id(id), |b| b.start_ns);
    info.problems.push(corrupt_problem(
        path,
        skip.offset,
        &skip.error,
        Some(skip.next_valid),
    ));
    let file = path
        .file_name()
        .map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy());
    let rec = Record {
        ts_ns: info.last_ns.max(start),
        level: log::Level::Warn,
        target: DAMAGE_TARGET.to_owned(),
        module_path: None,
        file: None,
        line: None,
        kvs: Vec::new(),
        message: damage_marker(&file, skip.offset, skip.next_valid - skip.offset),
        truncated: false,
    };
    info.records += 1;
    info.last_ns = info.last_ns.max(rec.ts_ns);
    match sink {
        Sink::Skim => true,
        Sink::Collect(v) => {
            v.push(rec);
            true
        }
        Sink::Stream { pre, f } => {
            let payload = encode_record(&rec);
            !pre(&payload) || f(rec.borrowed())
        }
        Sink::Payloads(f) => f(job, &encode_record(&rec)),
    }
}

/// A segment cut exactly at a frame boundary (by another process, or a broken disk) leaves no
/// damaged frame: when nothing else was reported, only the end frame's count can tell that
/// records are missing (or repeated).
fn check_end_count(info: &mut RunInfo, end: Option<&End>, segs: &[(u32, PathBuf)]) {
    if let (Some(e), Some((_, last))) = (end, segs.last()) {
        if info.problems.is_empty() && e.records != info.records {
            info.problems.push(Problem {
                path: last.clone(),
                offset: 0,
                what: format!(
                    "the end frame counts {} records but the segments hold {}: a segment was \
                     cut short or records are missing",
                    e.records, info.records
                ),
            });
        }
    }
}

impl Journal {
    /// Open a journal directory for reading. It must exist.
    pub fn open(dir: impl AsRef<Path>) -> Result<Journal, ReadError> {
        let dir = dir.as_ref().to_path_buf();
        storage::metadata(&dir).map_err(io_err(&dir))?;
        Ok(Journal { dir })
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All jobs with at least one listed run, sorted by name.
    pub fn jobs(&self) -> Result<Vec<JobInfo>, ReadError> {
        Ok(self
            .jobs_with_runs()?
            .into_iter()
            .filter_map(|(dir, runs)| {
                let last = runs.last()?;
                Some(JobInfo {
                    name: last.job.clone(),
                    dir,
                    runs: runs.len(),
                    last_start_ns: Some(last.start_ns),
                    last_status: Some(last.shown_status()),
                })
            })
            .collect())
    }

    /// The listed runs (oldest first) of every job directory, by job name: what
    /// [`Journal::jobs`] summarises. Jobs without listed runs are left out.
    pub fn all_runs(&self) -> Result<Vec<(String, Vec<RunInfo>)>, ReadError> {
        // A cut, hashed directory name may be shared by two jobs: group by the exact name.
        let mut by_job: BTreeMap<String, Vec<RunInfo>> = BTreeMap::new();
        for (_, runs) in self.jobs_with_runs()? {
            for r in runs {
                by_job.entry(r.job.clone()).or_default().push(r);
            }
        }
        for runs in by_job.values_mut() {
            runs.sort_by(|a, b| a.id.cmp(&b.id));
        }
        Ok(by_job.into_iter().collect())
    }

    /// Each job directory with its listed runs, sorted by job name.
    fn jobs_with_runs(&self) -> Result<Vec<(PathBuf, Vec<RunInfo>)>, ReadError> {
        let jobs_dir = self.dir.join(JOBS_DIR);
        let mut out = Vec::new();
        let names = match storage::read_dir(&jobs_dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&jobs_dir)(e)),
        };
        for name in names {
            let dir = jobs_dir.join(&name);
            // A link is refused by `runs_in` (list_run_segments), naming it.
            if !storage::is_symlink(&dir) && !storage::metadata(&dir).is_ok_and(|m| m.is_dir) {
                continue;
            }
            let enc = name.to_string_lossy().into_owned();
            let hint = layout::decode_job(&enc).unwrap_or_else(|| enc.clone());
            let runs = self.runs_in(&dir, &hint)?;
            out.push((dir, runs));
        }
        out.sort_by(|a, b| {
            let name = |r: &[RunInfo]| r.last().map(|l| l.job.clone());
            name(&a.1).cmp(&name(&b.1))
        });
        Ok(out)
    }

    fn runs_in(&self, dir: &Path, hint: &str) -> Result<Vec<RunInfo>, ReadError> {
        let mut out = Vec::new();
        for (id, segs) in list_run_segments(dir)? {
            if being_deleted(&segs) {
                continue;
            }
            // Listings read every frame: big runs are read on all CPUs.
            let helpers = helpers_for(&segs, false);
            let r = match scan_run(hint, &id, &segs, Sink::Skim, helpers, None) {
                Ok(r) => r,
                Err(ReadError::NoSuchRun { .. }) => continue,
                // A link planted among the segments is refused for the whole listing, naming
                // it (spec/journal.md, Symbolic links).
                Err(ReadError::Io { path, source }) if storage::is_symlink_error(&source) => {
                    return Err(ReadError::Io { path, source })
                }
                // One run that cannot be read for another reason (a segment left owned by root
                // after the job once ran under sudo, say) is reported for that run; the
                // listing goes on.
                Err(e) => {
                    out.push(unreadable_info(&id, hint, &segs, &e));
                    continue;
                }
            };
            if r.info.status != RunStatus::Cancelled {
                out.push(r.info);
            }
        }
        Ok(out)
    }

    /// The listed runs of a job (not cancelled ones), oldest first.
    pub fn runs(&self, job: &str) -> Result<Vec<RunInfo>, ReadError> {
        let dir = layout::job_dir(&self.dir, job);
        let runs = self.runs_in(&dir, job)?;
        Ok(runs.into_iter().filter(|r| r.job == job).collect())
    }

    /// The segments of a listed run, or [`ReadError::NoSuchRun`].
    fn run_segments(&self, job: &str, run_id: &str) -> Result<Vec<(u32, PathBuf)>, ReadError> {
        let dir = layout::job_dir(&self.dir, job);
        let mut all = list_run_segments(&dir)?;
        all.remove(run_id)
            .filter(|s| !being_deleted(s))
            .ok_or_else(|| ReadError::NoSuchRun {
                job: job.to_owned(),
                run: run_id.to_owned(),
            })
    }

    /// One run with all its records.
    pub fn read_run(&self, job: &str, run_id: &str) -> Result<RunLog, ReadError> {
        let segs = self.run_segments(job, run_id)?;
        let helpers = helpers_for(&segs, true);
        let r = scan_run(
            job,
            run_id,
            &segs,
            Sink::Collect(Vec::new()),
            helpers,
            Some(job),
        )?;
        if r.info.status == RunStatus::Cancelled || r.info.job != job {
            return Err(ReadError::NoSuchRun {
                job: job.to_owned(),
                run: run_id.to_owned(),
            });
        }
        Ok(RunLog {
            info: r.info,
            records: r.records,
        })
    }

    /// The records of one run, oldest first, handed to `f` one by one as they are decoded,
    /// without collecting them: [`Journal::read_run`] for runs of any size, in memory
    /// independent of the number of records. Each record borrows the segment bytes it was
    /// decoded from ([`RecordRef`]); `f` returns false to stop.
    ///
    /// Every frame's CRC is checked before its record is handed over, and damage is reported
    /// in the returned [`RunInfo::problems`] as by `read_run`. For a run of several segments, a
    /// helper thread reads and checks the next segments while `f` works on this one (`f`
    /// itself runs in the calling thread).
    ///
    /// Returns the run's info when every record was handed over, `None` when `f` stopped
    /// early.
    ///
    /// # Errors
    /// As `read_run`: [`ReadError::NoSuchRun`] if the run does not exist, belongs to another
    /// job, or is cancelled (checked before any record is handed over; a run cancelled, or a
    /// segment deleted, while it is being read ends with this error after some records), and
    /// [`ReadError::Io`].
    pub fn for_each_record(
        &self,
        job: &str,
        run_id: &str,
        f: impl FnMut(RecordRef<'_>) -> bool,
    ) -> Result<Option<RunInfo>, ReadError> {
        self.for_each_record_where(job, run_id, |_| true, f)
    }

    /// [`Journal::for_each_record`] for the records `pre` lets through. `pre` sees each
    /// record's payload (its frame's CRC checked, the layout of `spec/journal.md`) before it
    /// is decoded: a cheap test there (a level byte, a word that must be in it) saves decoding
    /// the records it rejects. Those are counted in the returned info, but not decoded, so
    /// damage inside their payloads is not reported.
    pub fn for_each_record_where(
        &self,
        job: &str,
        run_id: &str,
        mut pre: impl FnMut(&[u8]) -> bool,
        mut f: impl FnMut(RecordRef<'_>) -> bool,
    ) -> Result<Option<RunInfo>, ReadError> {
        let segs = self.run_segments(job, run_id)?;
        let gone = || ReadError::NoSuchRun {
            job: job.to_owned(),
            run: run_id.to_owned(),
        };
        // A cancelled run shows nothing. Its end frame is the last bytes of the run; they are
        // only a hint (a crashed run's last record could look like one), so a run that seems
        // cancelled is checked by a scan of its last segment.
        if quick_status(&segs) == RunStatus::Cancelled && really_cancelled(&segs) {
            return Err(gone());
        }
        let helpers = helpers_for(&segs, true);
        let sink = Sink::Stream {
            pre: &mut pre,
            f: &mut f,
        };
        let r = scan_run(job, run_id, &segs, sink, helpers, Some(job))?;
        if !r.complete {
            return Ok(None);
        }
        if r.info.status == RunStatus::Cancelled || r.info.job != job {
            return Err(gone());
        }
        Ok(Some(r.info))
    }
}

#[cfg(test)]
mod tests {
    //! The run reader against the one it replaced (kept here as the reference: it read every
    //! segment whole, then walked the decoded frames), on runs of several segments damaged in
    //! every way the reader distinguishes, read serially, with helper threads, and streamed.

    use super::*;
    use crate::journal::frame::{encode_frame, encode_header};
    use crate::journal::layout::{job_dir, segment_name};
    use crate::journal::payload::{encode_begin, encode_end, encode_label, encode_record};

    const JOB: &str = "reader-test";
    const ID: &str = "2026-11-28T12:10:55.123456Z-0000000000aa";
    const T0: i64 = 1_795_867_855_123_456_000;
    /// A preallocated segment size.
    const MIN_SEGMENT_FOR_TESTS: usize = crate::journal::writer::MIN_SEGMENT;

    // The reader before streaming, verbatim but for its name and `scan_file_opts`.
    #[allow(clippy::all)]
    fn reference_read(
        job_hint: &str,
        id: &str,
        segs: &[(u32, PathBuf)],
        want_records: bool,
    ) -> Result<RunLog, ReadError> {
        let mut info = unread_info(id, job_hint, segs);
        let mut records = Vec::new();
        let mut begin: Option<Begin> = None;
        let mut end: Option<End> = None;
        let alive = segs
            .first()
            .is_some_and(|(_, p)| writer_state(p) == Writer::Alive);
        let mut scans = Vec::with_capacity(segs.len());
        // Added with reading past corruption: every segment but a live writer's last one.
        let upto = segs
            .iter()
            .enumerate()
            .position(|(i, (seq, _))| *seq != i as u32)
            .unwrap_or(segs.len());
        for (i, (seq, path)) in segs.iter().enumerate() {
            let resume = !(alive && i + 1 == upto);
            if *seq != i as u32 {
                info.problems.push(Problem {
                    path: path.clone(),
                    offset: 0,
                    what: format!("segment {i} of the run is missing (found segment {seq})"),
                });
                break;
            }
            let scanned = read_bounded(path).and_then(|bytes| {
                scan_segment_opts(&bytes, want_records, resume).map_err(|error| {
                    ReadError::BadSegment {
                        path: path.clone(),
                        error,
                    }
                })
            });
            match scanned {
                Ok(s) => scans.push((path, s)),
                Err(ReadError::BadSegment { path, error }) => {
                    // A segment whose header was never completely written is what a crash
                    // during rollover leaves; anywhere else it is damage.
                    let torn =
                        matches!(error, HeaderError::Short(_)) && i + 1 == segs.len() && !alive;
                    if !torn && !alive {
                        info.problems.push(Problem {
                            path,
                            offset: 0,
                            what: error.to_string(),
                        });
                    }
                    break;
                }
                // Deleted since the directory was listed (cancel, retention): the run is gone.
                Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    return Err(ReadError::NoSuchRun {
                        job: job_hint.to_owned(),
                        run: id.to_owned(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let nscans = scans.len();
        let mut end_at = None;
        let mut after_end_reported = false;
        for (i, (path, scan)) in scans.into_iter().enumerate() {
            let last = i + 1 == nscans;
            if scan.header.seq != i as u32 || scan.header.run_id != id {
                info.problems.push(Problem {
                    path: path.clone(),
                    offset: 0,
                    what: format!(
                        "segment header says run {} segment {}, the file name says run {id} segment {i}",
                        scan.header.run_id, scan.header.seq
                    ),
                });
            }
            info.records += scan.skimmed.0;
            if scan.skimmed.0 > 0 {
                info.last_ns = info.last_ns.max(scan.skimmed.1);
            }
            let marker =
                |info: &mut RunInfo, records: &mut Vec<Record>, sk: &Skipped, start: i64| {
                    info.problems.push(Problem {
                        path: path.clone(),
                        offset: sk.offset,
                        what: format!(
                            "corrupt frame ({}); valid frames follow at offset {}",
                            sk.error, sk.next_valid
                        ),
                    });
                    let rec = Record {
                        ts_ns: info.last_ns.max(start),
                        level: log::Level::Warn,
                        target: "runlog::damage".into(),
                        module_path: None,
                        file: None,
                        line: None,
                        kvs: Vec::new(),
                        message: format!(
                            "-- {} bytes unreadable at {}:{} --",
                            sk.next_valid - sk.offset,
                            path.file_name().unwrap().to_string_lossy(),
                            sk.offset
                        ),
                        truncated: false,
                    };
                    info.records += 1;
                    info.last_ns = info.last_ns.max(rec.ts_ns);
                    if want_records {
                        records.push(rec);
                    }
                };
            let mut skips = scan.skipped.iter().peekable();
            for (k, fa) in scan.frames.iter().enumerate() {
                while let Some(sk) = skips.next_if(|sk| sk.before_frame <= k) {
                    let start = begin
                        .as_ref()
                        .map_or_else(|| start_from_id(id), |b| b.start_ns);
                    marker(&mut info, &mut records, sk, start);
                }
                match &fa.frame {
                    Err(e) => info.problems.push(Problem {
                        path: path.clone(),
                        offset: fa.offset,
                        what: e.to_string(),
                    }),
                    Ok(Frame::Begin(b)) => {
                        if begin.is_some() || i != 0 || fa.offset != HEADER_LEN as u64 {
                            info.problems.push(Problem {
                                path: path.clone(),
                                offset: fa.offset,
                                what: "unexpected BEGIN frame".into(),
                            });
                        } else {
                            begin = Some(b.clone());
                        }
                    }
                    Ok(Frame::Record(r)) => {
                        info.records += 1;
                        info.last_ns = info.last_ns.max(r.ts_ns);
                        if want_records {
                            records.push(r.clone());
                        }
                    }
                    Ok(Frame::Label { key, value }) => {
                        if let Some(l) = info.labels.iter_mut().find(|(k, _)| k == key) {
                            l.1 = value.clone();
                        } else {
                            info.labels.push((key.clone(), value.clone()));
                        }
                    }
                    // Changed with "the first end frame ends the run".
                    Ok(Frame::End(e)) => {
                        if end.is_none() {
                            end = Some(*e);
                            end_at = Some((i, fa.offset));
                        }
                    }
                }
            }
            if !after_end_reported {
                if let Some(p) = after_end_problem(end_at, i, path, scan.valid_len) {
                    info.problems.push(p);
                    after_end_reported = true;
                }
            }
            for sk in skips {
                let start = begin
                    .as_ref()
                    .map_or_else(|| start_from_id(id), |b| b.start_ns);
                marker(&mut info, &mut records, sk, start);
            }
            match &scan.end {
                SegmentEnd::Clean | SegmentEnd::ZeroTail { .. } => {}
                // A live writer may be in the middle of a frame; a dead one may have been killed
                // in the middle of one. Either way the tail of the last segment is not damage.
                SegmentEnd::TornTail { .. } if last && end.is_none() => {}
                SegmentEnd::TornTail { offset, error } => info.problems.push(Problem {
                    path: path.clone(),
                    offset: *offset,
                    what: format!("torn frame before the end of the run: {error}"),
                }),
                SegmentEnd::Corrupt { .. } if alive && last => {}
                SegmentEnd::Corrupt {
                    offset,
                    error,
                    next_valid,
                } => info.problems.push(Problem {
                    path: path.clone(),
                    offset: *offset,
                    what: match next_valid {
                        Some(n) => {
                            format!("corrupt frame ({error}); valid frames follow at offset {n}")
                        }
                        None => format!("corrupt frame ({error}); data follows it"),
                    },
                }),
            }
        }
        if let Some(b) = &begin {
            info.job = b.job.clone();
            info.start_ns = b.start_ns;
            info.host = b.host.clone();
            info.pid = b.pid;
            info.last_ns = info.last_ns.max(b.start_ns);
        } else {
            if let Some(p) = segs.first() {
                if !alive && info.problems.is_empty() {
                    info.problems.push(Problem {
                        path: p.1.clone(),
                        offset: HEADER_LEN as u64,
                        what: "run has no BEGIN frame".into(),
                    });
                }
            }
            // Fall back to the start time in the id.
            info.start_ns = crate::time::parse_utc(id.get(..27).unwrap_or("")).unwrap_or(0);
            // Added with the fix that keeps `last` from before the start.
            info.last_ns = info.last_ns.max(info.start_ns);
        }
        // Added with the streaming reader's count check (end frame vs records read).
        check_end_count(&mut info, end.as_ref(), &segs);
        info.status = match end {
            Some(e) => {
                info.end_ns = Some(e.end_ns);
                info.dropped = e.dropped;
                match e.outcome {
                    Outcome::Ok => RunStatus::Ok,
                    Outcome::Failed => RunStatus::Failed,
                    Outcome::Cancelled => RunStatus::Cancelled,
                }
            }
            None if alive => RunStatus::Running,
            None => RunStatus::Crashed,
        };
        // Added with "labels sorted by key".
        info.labels.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(RunLog { info, records })
    }

    fn rec(i: usize) -> Record {
        Record {
            ts_ns: T0 + i as i64 * 1000,
            level: [log::Level::Info, log::Level::Debug, log::Level::Warn][i % 3],
            target: if i.is_multiple_of(2) {
                "app::a"
            } else {
                "app::b"
            }
            .into(),
            module_path: if i.is_multiple_of(4) {
                None
            } else {
                Some("app::m".into())
            },
            file: Some("src/x.rs".into()),
            line: Some(i as u32 + 1),
            kvs: (0..i % 3)
                .map(|k| (format!("k{k}"), format!("v ✓ {i}")))
                .collect(),
            message: format!("record {i} of the test run, ünïcode"),
            truncated: i.is_multiple_of(7),
        }
    }

    /// A run of `nseg` segments with `per` records each: BEGIN and a label in the first, a
    /// label in the middle, the end frame (if any) in the last.
    fn segments(nseg: usize, per: usize, end: Option<Outcome>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut n = 0;
        for s in 0..nseg {
            let mut v = encode_header(s as u32, ID).to_vec();
            if s == 0 {
                v.extend(encode_frame(
                    FrameType::Begin,
                    &encode_begin(&Begin {
                        start_ns: T0,
                        pid: 7,
                        run_id: ID.into(),
                        job: JOB.into(),
                        host: "h".into(),
                    }),
                ));
                v.extend(encode_frame(FrameType::Label, &encode_label("user", "bar")));
            }
            for _ in 0..per {
                v.extend(encode_frame(FrameType::Record, &encode_record(&rec(n))));
                n += 1;
            }
            if s == nseg / 2 {
                v.extend(encode_frame(FrameType::Label, &encode_label("user", "baz")));
                v.extend(encode_frame(FrameType::Label, &encode_label("k", "v")));
            }
            if s + 1 == nseg {
                if let Some(outcome) = end {
                    let kind = if outcome == Outcome::Cancelled {
                        FrameType::Cancel
                    } else {
                        FrameType::Commit
                    };
                    v.extend(encode_frame(
                        kind,
                        &encode_end(&End {
                            end_ns: T0 + 1_000_000_000,
                            outcome,
                            records: n as u64,
                            dropped: 2,
                        }),
                    ));
                }
            }
            out.push(v);
        }
        out
    }

    /// Segment files by number.
    type Files = Vec<(u32, Vec<u8>)>;

    /// Segments numbered from 0.
    fn numbered(segs: Vec<Vec<u8>>) -> Files {
        segs.into_iter()
            .enumerate()
            .map(|(i, b)| (i as u32, b))
            .collect()
    }

    /// Damaged variants of a run (name, segment files by number; a missing number is a
    /// missing file).
    fn variants() -> Vec<(String, Files)> {
        let base = segments(6, 40, Some(Outcome::Ok));
        let mut v = vec![
            ("ok".to_owned(), numbered(base.clone())),
            ("crashed".into(), numbered(segments(6, 40, None))),
            (
                "failed".into(),
                numbered(segments(5, 33, Some(Outcome::Failed))),
            ),
            (
                "cancelled".into(),
                numbered(segments(4, 10, Some(Outcome::Cancelled))),
            ),
            (
                "one segment".into(),
                numbered(segments(1, 50, Some(Outcome::Ok))),
            ),
            ("empty segments".into(), numbered(segments(4, 0, None))),
        ];
        for seg in 0..6 {
            let len = base[seg].len();
            for at in [0, 10, HEADER_LEN, HEADER_LEN + 3, len / 2, len - 3, len - 1] {
                let mut segs = base.clone();
                segs[seg][at] ^= 0x41;
                v.push((
                    format!("byte {at} of segment {seg} changed"),
                    numbered(segs),
                ));
            }
            for cut in [0, 5, HEADER_LEN, HEADER_LEN + 20, len / 3, len - 1] {
                let mut segs = base.clone();
                segs[seg].truncate(cut);
                v.push((format!("segment {seg} cut at {cut}"), numbered(segs)));
            }
            let mut segs = base.clone();
            segs[seg].extend([0u8; 100]);
            v.push((format!("zeros after segment {seg}"), numbered(segs)));
            let mut segs = base.clone();
            segs[seg].extend([0u8, 0, 0, 0, 9, 9, 9]);
            v.push((format!("garbage after segment {seg}"), numbered(segs)));
            let mut segs = numbered(base.clone());
            segs.remove(seg);
            v.push((format!("segment {seg} missing"), segs));
            let mut segs = base.clone();
            segs[seg] = encode_header(seg as u32 + 1, ID).to_vec();
            v.push((format!("segment {seg} has another number"), numbered(segs)));
            let mut segs = base.clone();
            let copy = segs[(seg + 1) % 6].clone();
            segs[seg].extend_from_slice(&copy[HEADER_LEN..]);
            v.push((format!("frames repeated in segment {seg}"), numbered(segs)));
        }
        let mut segs = numbered(base.clone());
        segs.remove(4);
        segs[1].1.truncate(30);
        v.push(("a short header before a gap".into(), segs));
        v
    }

    fn write_run(dir: &Path, segs: &[(u32, Vec<u8>)]) -> Vec<(u32, PathBuf)> {
        let jd = job_dir(dir, JOB);
        let _ = std::fs::remove_dir_all(&jd);
        std::fs::create_dir_all(&jd).unwrap();
        for (seq, bytes) in segs {
            std::fs::write(jd.join(segment_name(ID, *seq)), bytes).unwrap();
        }
        list_run_segments(&jd)
            .unwrap()
            .remove(ID)
            .unwrap_or_default()
    }

    /// The real file system, except that opening one file is refused.
    #[derive(Debug)]
    struct Denied(PathBuf);

    impl storage::Storage for Denied {
        fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn storage::StorageFile>> {
            if path == self.0 {
                return Err(io::Error::from(io::ErrorKind::PermissionDenied));
            }
            storage::RealFs.open(path, mode)
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            storage::RealFs.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> io::Result<()> {
            storage::RealFs.remove_file(path)
        }
        fn create_dir_private(&self, path: &Path) -> io::Result<()> {
            storage::RealFs.create_dir_private(path)
        }
        fn sync_dir(&self, path: &Path) -> io::Result<()> {
            storage::RealFs.sync_dir(path)
        }
        fn read_dir(&self, path: &Path) -> io::Result<Vec<std::ffi::OsString>> {
            storage::RealFs.read_dir(path)
        }
        fn metadata(&self, path: &Path) -> io::Result<storage::Meta> {
            storage::RealFs.metadata(path)
        }
    }

    #[test]
    fn one_unreadable_segment_is_reported_for_its_run_and_every_job_is_still_listed() {
        // Bug: one segment that could not be opened (left owned by root) made Journal::jobs,
        // and so `runlog list-jobs`, fail for every job.
        let tmp = tempfile::tempdir().unwrap();
        let files = numbered(segments(2, 3, Some(Outcome::Ok)));
        let paths = write_run(tmp.path(), &files);
        let _mount = storage::mount(tmp.path(), std::sync::Arc::new(Denied(paths[1].1.clone())));
        let journal = Journal::open(tmp.path()).unwrap();
        let jobs = journal.jobs().expect("the listing goes on");
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        let runs = journal.runs(JOB).unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        let r = &runs[0];
        assert_eq!(r.id, ID);
        assert_eq!(r.status, RunStatus::Crashed, "its writer is dead");
        assert_eq!(r.start_ns, T0 / 1000 * 1000);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].path, paths[1].1);
        assert!(
            r.problems[0].what.contains("cannot be read"),
            "{:?}",
            r.problems
        );
    }

    /// A crashed run of 3 segments whose segment 0 lost its frames from the 5th record on to
    /// zeros (its unsynced pages, after a power loss) and is `len` bytes long.
    fn run_with_zeros_in_segment_0(len: usize) -> (Files, u64) {
        let mut segs = segments(3, 10, None);
        let scan = scan_segment(&segs[0]).unwrap();
        // BEGIN, label, then records: the 5th record is frame 6.
        let at = scan.frames[6].offset as usize;
        segs[0].truncate(at);
        segs[0].resize(len, 0);
        let files = numbered(segs);
        (files, at as u64)
    }

    #[test]
    fn zeros_where_the_next_segments_first_frame_would_fit_are_a_hole_recovery_keeps() {
        // Bug: a power loss after a rollover, before the old segment was synced, leaves it
        // zero to its end while the next segment survives; that read as a clean zero tail
        // (records silently missing) and recovery cut it away.
        let tmp = tempfile::tempdir().unwrap();
        let (files, at) = run_with_zeros_in_segment_0(MIN_SEGMENT_FOR_TESTS);
        let paths = write_run(tmp.path(), &files);
        let log = scan_run(JOB, ID, &paths, Sink::Collect(Vec::new()), 0, None).unwrap();
        assert_eq!(log.info.status, RunStatus::Crashed);
        assert_eq!(log.records.len(), 4 + 10 + 10, "what survived is shown");
        assert_eq!(log.info.problems.len(), 1, "{:?}", log.info.problems);
        let p = &log.info.problems[0];
        assert_eq!((p.path.as_path(), p.offset), (paths[0].1.as_path(), at));
        assert!(p.what.starts_with("hole: "), "{p:?}");
        // Recovery leaves it as it is: the hole is still reported afterwards.
        crate::journal::retention::sweep_job(&job_dir(tmp.path(), JOB), 10, 10, false).unwrap();
        assert_eq!(
            std::fs::metadata(&paths[0].1).unwrap().len(),
            MIN_SEGMENT_FOR_TESTS as u64
        );
        let again = scan_run(JOB, ID, &paths, Sink::Skim, 0, None).unwrap();
        assert_eq!(again.info.problems, log.info.problems);
    }

    #[test]
    fn zeros_too_small_for_the_next_segments_first_frame_are_unused_space_not_a_hole() {
        let tmp = tempfile::tempdir().unwrap();
        let segs = segments(3, 10, None);
        let next = scan_segment(&segs[1]).unwrap().frames[0].offset;
        assert_eq!(next, HEADER_LEN as u64);
        let first = decode_frame(&segs[1][HEADER_LEN..]).unwrap().encoded_len();
        // The writer rolled over because the next frame did not fit before the reserve.
        let used = segs[0].len();
        let len = used + first + END_FRAME_LEN - 1;
        let mut files: Files = numbered(segs);
        files[0].1.resize(len, 0);
        let paths = write_run(tmp.path(), &files);
        let log = scan_run(JOB, ID, &paths, Sink::Skim, 0, None).unwrap();
        assert_eq!(log.info.records, 30);
        assert!(log.info.problems.is_empty(), "{:?}", log.info.problems);
        // One byte more room, and the same zeros are a hole.
        files[0].1.push(0);
        let paths = write_run(tmp.path(), &files);
        let log = scan_run(JOB, ID, &paths, Sink::Skim, 0, None).unwrap();
        assert_eq!(log.info.problems.len(), 1, "{:?}", log.info.problems);
        assert_eq!(log.info.problems[0].offset, used as u64);
    }

    #[test]
    fn a_segment_header_with_an_empty_run_id_does_not_match_its_file_name() {
        // Bug: a header whose run id was empty (all NUL) passed as this run's segment.
        let tmp = tempfile::tempdir().unwrap();
        let mut segs = segments(2, 3, Some(Outcome::Ok));
        let blank = encode_header(1, "");
        segs[1][..HEADER_LEN].copy_from_slice(&blank);
        let files: Vec<(u32, Vec<u8>)> = numbered(segs);
        let paths = write_run(tmp.path(), &files);
        let log = scan_run(JOB, ID, &paths, Sink::Skim, 0, None).unwrap();
        assert_eq!(log.info.problems.len(), 1, "{:?}", log.info.problems);
        assert_eq!(log.info.problems[0].path, paths[1].1);
        assert!(
            log.info.problems[0]
                .what
                .contains("segment header says run  segment 1"),
            "{:?}",
            log.info.problems
        );
    }

    #[test]
    fn a_segment_cut_at_a_frame_boundary_is_reported_by_the_end_frames_count() {
        let tmp = tempfile::tempdir().unwrap();
        let mut segs = segments(3, 10, Some(Outcome::Ok));
        // Cut the middle segment exactly where its sixth frame starts: no frame is damaged.
        let at = scan_segment(&segs[1]).unwrap().frames[5].offset as usize;
        segs[1].truncate(at);
        let files: Vec<(u32, Vec<u8>)> = numbered(segs);
        let paths = write_run(tmp.path(), &files);
        let log = scan_run(JOB, ID, &paths, Sink::Collect(Vec::new()), 0, None).unwrap();
        assert_eq!(log.records.len(), 25);
        assert_eq!(log.info.problems.len(), 1, "{:?}", log.info.problems);
        assert!(
            log.info.problems[0]
                .what
                .contains("the end frame counts 30 records but the segments hold 25"),
            "{:?}",
            log.info.problems
        );
    }

    fn same(a: &Result<RunLog, ReadError>, b: &Result<RunLog, ReadError>) -> bool {
        match (a, b) {
            (Ok(a), Ok(b)) => a == b,
            (Err(a), Err(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }

    #[test]
    fn every_way_of_reading_a_run_agrees_with_the_reference_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(tmp.path()).unwrap();
        let (mut damaged, mut statuses) = (0, Vec::new());
        for (name, files) in variants() {
            let segs = write_run(tmp.path(), &files);
            if let Ok(r) = reference_read(JOB, ID, &segs, false) {
                damaged += usize::from(!r.info.problems.is_empty());
                statuses.push(r.info.status);
            }
            for records in [false, true] {
                let want = reference_read(JOB, ID, &segs, records);
                for helpers in [0, 1, 2, 3] {
                    let sink = if records {
                        Sink::Collect(Vec::new())
                    } else {
                        Sink::Skim
                    };
                    let got = scan_run(JOB, ID, &segs, sink, helpers, None).map(|s| {
                        assert!(s.complete);
                        RunLog {
                            info: s.info,
                            records: s.records,
                        }
                    });
                    assert!(
                        same(&got, &want),
                        "{name}, records {records}, {helpers} helpers:\n{got:#?}\nwanted\n{want:#?}"
                    );
                }
            }
            // stream_run_payloads: the info of a read with records, and exactly the payloads
            // of its records (a payload that does not decode is a problem, not handed over).
            let (want, decoded) = match reference_read(JOB, ID, &segs, true) {
                Ok(r) => (
                    Ok(RunLog {
                        info: r.info,
                        records: Vec::new(),
                    }),
                    Ok(r.records),
                ),
                Err(e) => (Err(e), Err(())),
            };
            for read_ahead in [false, true] {
                let mut payloads: Vec<Vec<u8>> = Vec::new();
                let got = stream_run_payloads(JOB, ID, &segs, read_ahead, &mut |job, p| {
                    assert_eq!(job, want.as_ref().map_or(JOB, |r| r.info.job.as_str()));
                    payloads.push(p.to_vec());
                    true
                })
                .map(|info| RunLog {
                    info: info.expect("not stopped"),
                    records: Vec::new(),
                });
                assert!(
                    same(&got, &want),
                    "{name}: stream_run_payloads {got:#?}\nwanted\n{want:#?}"
                );
                if let (Ok(got), Ok(decoded)) = (&got, &decoded) {
                    assert_eq!(got.info.records, payloads.len() as u64, "{name}");
                    let ok: Vec<Record> = payloads
                        .iter()
                        .map(|p| {
                            decode_record_ref(p)
                                .expect("only good payloads")
                                .to_record()
                        })
                        .collect();
                    assert_eq!(&ok, decoded, "{name}: the payloads handed over");
                }
            }
            // Journal::read_run and for_each_record: the reference read, filtered as read_run
            // always did (cancelled runs and runs of other jobs are not there).
            let want = reference_read(JOB, ID, &segs, true).and_then(|r| {
                if r.info.status == RunStatus::Cancelled || r.info.job != JOB {
                    Err(ReadError::NoSuchRun {
                        job: JOB.into(),
                        run: ID.into(),
                    })
                } else {
                    Ok(r)
                }
            });
            let want = if segs.is_empty() || being_deleted(&segs) {
                Err(ReadError::NoSuchRun {
                    job: JOB.into(),
                    run: ID.into(),
                })
            } else {
                want
            };
            let got = journal.read_run(JOB, ID);
            assert!(
                same(&got, &want),
                "{name}: read_run {got:#?}\nwanted\n{want:#?}"
            );
            let mut streamed = Vec::new();
            let got = journal
                .for_each_record(JOB, ID, |r| {
                    streamed.push(r.to_record());
                    true
                })
                .map(|info| RunLog {
                    info: info.expect("not stopped"),
                    records: std::mem::take(&mut streamed),
                });
            assert!(
                same(&got, &want),
                "{name}: for_each_record {got:#?}\nwanted\n{want:#?}"
            );
            // Listings.
            let listed = journal.runs(JOB).unwrap();
            match reference_read(JOB, ID, &segs, false) {
                Ok(r) if !being_deleted(&segs) && r.info.status != RunStatus::Cancelled => {
                    assert_eq!(listed, vec![r.info], "{name}: runs()")
                }
                _ => assert!(listed.is_empty(), "{name}: runs() {listed:#?}"),
            }
        }
        // The variants cover what they should.
        assert!(damaged > 50, "{damaged} damaged variants");
        for s in [
            RunStatus::Ok,
            RunStatus::Failed,
            RunStatus::Crashed,
            RunStatus::Cancelled,
        ] {
            assert!(statuses.contains(&s), "no {s} variant");
        }
    }

    #[test]
    fn for_each_record_stops_when_asked_and_checks_the_job_before_the_first_record() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(tmp.path()).unwrap();
        let segs = write_run(tmp.path(), &numbered(segments(5, 30, Some(Outcome::Ok))));
        assert_eq!(segs.len(), 5);
        let mut seen = 0;
        let r = journal.for_each_record(JOB, ID, |r| {
            assert_eq!(r.to_record(), rec(seen));
            seen += 1;
            seen < 75
        });
        assert_eq!(r.unwrap(), None);
        assert_eq!(seen, 75);
        // A BEGIN frame naming another job: no record is handed over.
        let mut other = segments(5, 30, Some(Outcome::Ok));
        let begin = encode_frame(
            FrameType::Begin,
            &encode_begin(&Begin {
                start_ns: T0,
                pid: 7,
                run_id: ID.into(),
                job: "another job".into(),
                host: "h".into(),
            }),
        );
        let old_len = encode_frame(
            FrameType::Begin,
            &encode_begin(&Begin {
                start_ns: T0,
                pid: 7,
                run_id: ID.into(),
                job: JOB.into(),
                host: "h".into(),
            }),
        )
        .len();
        other[0].splice(HEADER_LEN..HEADER_LEN + old_len, begin);
        write_run(tmp.path(), &numbered(other));
        let r = journal.for_each_record(JOB, ID, |_| panic!("a record of another job"));
        assert!(matches!(r, Err(ReadError::NoSuchRun { .. })), "{r:?}");
        assert!(matches!(
            journal.for_each_record(JOB, "2026-no-such-run", |_| true),
            Err(ReadError::NoSuchRun { .. })
        ));
    }

    #[test]
    fn records_rejected_by_pre_are_counted_and_not_handed_over() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(tmp.path()).unwrap();
        let files = numbered(segments(4, 25, Some(Outcome::Ok)));
        let segs = write_run(tmp.path(), &files);
        let want = reference_read(JOB, ID, &segs, true).unwrap();
        let mut got = Vec::new();
        // Only WARN records (level byte 2) get through.
        let info = journal
            .for_each_record_where(
                JOB,
                ID,
                |p| p.get(crate::journal::payload::REC_LEVEL) == Some(&2),
                |r| {
                    got.push(r.to_record());
                    true
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(info, want.info);
        let warns: Vec<Record> = want
            .records
            .into_iter()
            .filter(|r| r.level == log::Level::Warn)
            .collect();
        assert!(!warns.is_empty());
        assert_eq!(got, warns);
    }

    #[test]
    fn the_fast_frame_check_accepts_exactly_what_decode_frame_accepts() {
        let hasher = crc32fast::Hasher::new();
        let mut frames = vec![
            encode_frame(FrameType::Record, &encode_record(&rec(3))),
            encode_frame(FrameType::Label, b""),
            encode_frame(FrameType::Begin, &[7u8; 300]),
        ];
        let mut x = 0x9e37_79b9_u32;
        for f in frames.clone() {
            for i in 0..f.len() {
                for bit in 0..8 {
                    let mut g = f.clone();
                    g[i] ^= 1 << bit;
                    frames.push(g);
                }
                frames.push(f[..i].to_vec());
            }
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let mut g = f.clone();
                g[(x as usize) % f.len()] = (x >> 8) as u8;
                g.extend_from_slice(&x.to_le_bytes());
                frames.push(g);
            }
        }
        for f in &frames {
            assert_eq!(check_frame(f, &hasher), decode_frame(f), "{f:?}");
        }
    }
}
