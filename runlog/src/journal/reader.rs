//! Reading segments and whole journals, with corruption told apart from a torn tail.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::frame::{
    decode_frame, decode_header, FrameError, FrameType, HeaderError, SegmentHeader, END_FRAME_LEN,
    FRAME_HEADER_LEN, HEADER_LEN, MAX_PAYLOAD,
};
use super::layout::{self, JOBS_DIR, TMP_PREFIX};
use super::payload::{decode_payload, Begin, End, Frame, Outcome, PayloadError, Record};

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
    /// Listings only: RECORD frames counted (CRC-checked) but not kept in `frames`, and the
    /// latest timestamp among them.
    skimmed: (u64, i64),
}

impl SegmentScan {
    /// True if the segment is damaged in a way a crash cannot explain (corruption or a
    /// CRC-valid frame with a malformed payload).
    pub fn is_corrupt(&self) -> bool {
        matches!(self.end, SegmentEnd::Corrupt { .. })
            || self.frames.iter().any(|f| f.frame.is_err())
    }
}

fn find_next_valid(buf: &[u8], from: usize) -> Option<Result<u64, ()>> {
    let mut budget = RESYNC_BUDGET;
    let mut at = from;
    while at + FRAME_HEADER_LEN <= buf.len() {
        let b = &buf[at..];
        // Cheap pre-checks before hashing.
        if FrameType::from_u8(b[4]).is_some() && b[6] == 0 && b[7] == 0 {
            let len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
            if len <= MAX_PAYLOAD && len <= b.len() - FRAME_HEADER_LEN {
                if budget < len + FRAME_HEADER_LEN {
                    return Some(Err(()));
                }
                budget -= len + FRAME_HEADER_LEN;
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
    scan_segment_opts(buf, true)
}

fn scan_segment_opts(buf: &[u8], records: bool) -> Result<SegmentScan, HeaderError> {
    let header = decode_header(buf)?;
    let mut frames = Vec::new();
    let mut skimmed = (0u64, i64::MIN);
    let mut off = HEADER_LEN;
    let end = loop {
        if off == buf.len() {
            break SegmentEnd::Clean;
        }
        match decode_frame(&buf[off..]) {
            Ok(raw) => {
                match raw.payload.get(..8) {
                    // Listings keep no per-record state: memory stays independent of the
                    // number of records. The CRC was checked; the time is all they need.
                    Some(ts) if !records && raw.kind == FrameType::Record => {
                        let ts = i64::from_le_bytes(ts.try_into().unwrap_or([0; 8]));
                        skimmed.0 += 1;
                        skimmed.1 = skimmed.1.max(ts);
                    }
                    _ => frames.push(FrameAt {
                        offset: off as u64,
                        frame: decode_payload(&raw),
                    }),
                }
                off += raw.encoded_len();
            }
            Err(error) => {
                if buf[off..].iter().all(|&b| b == 0) {
                    break SegmentEnd::ZeroTail { offset: off as u64 };
                }
                break match find_next_valid(buf, off + 1) {
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
    Ok(SegmentScan {
        header,
        frames,
        end,
        valid_len: off as u64,
        skimmed,
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
    scan_file_opts(path, true)
}

fn scan_file_opts(path: &Path, records: bool) -> Result<SegmentScan, ReadError> {
    let bytes = read_bounded(path)?;
    scan_segment_opts(&bytes, records).map_err(|error| ReadError::BadSegment {
        path: path.to_path_buf(),
        error,
    })
}

pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>, ReadError> {
    let f = File::open(path).map_err(io_err(path))?;
    // Reserve what the file holds now (bounded), so reading does not grow the vector by
    // doubling past it.
    let len = f.metadata().map_or(0, |m| m.len().min(MAX_SEGMENT_FILE));
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(MAX_SEGMENT_FILE)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    Ok(bytes)
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
}

impl RunStatus {
    /// Lower-case name: `running`, `ok`, `failed`, `crashed`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
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
    /// Labels in the order they were set (a later value for a key replaces the earlier).
    pub labels: Vec<(String, String)>,
    /// Segment files in order.
    pub segments: Vec<PathBuf>,
    /// Damage found (empty for a healthy run; a crashed run's torn tail is not damage).
    pub problems: Vec<Problem>,
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
    /// Status of the newest listed run.
    pub last_status: Option<RunStatus>,
}

/// A journal directory, for reading.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

/// Segment files of one job directory, grouped by run id, in sequence order (`.tmp-` files
/// left out). A missing directory has no runs.
pub fn list_run_segments(
    job_dir: &Path,
) -> Result<BTreeMap<String, Vec<(u32, PathBuf)>>, ReadError> {
    let mut runs: BTreeMap<String, Vec<(u32, PathBuf)>> = BTreeMap::new();
    let rd = match fs::read_dir(job_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(runs),
        Err(e) => return Err(io_err(job_dir)(e)),
    };
    for ent in rd {
        let ent = ent.map_err(io_err(job_dir))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TMP_PREFIX) {
            continue;
        }
        if let Some((id, seq)) = layout::parse_segment_name(name) {
            runs.entry(id.to_owned())
                .or_default()
                .push((seq, ent.path()));
        }
    }
    for segs in runs.values_mut() {
        segs.sort();
    }
    Ok(runs)
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
    let f = match File::open(seg0) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Writer::Gone,
        Err(_) => return Writer::Alive,
    };
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            Writer::Dead
        }
        Err(_) => Writer::Alive,
    }
}

/// The status of a run from its segments (as [`list_run_segments`] groups them), cheaply:
/// reads only the last [`END_FRAME_LEN`] bytes of its last segment and, when they are not a
/// COMMIT or CANCEL frame, the lock on segment 0 ([`writer_state`]: alive is `Running`, dead
/// or gone is `Crashed`). An empty list is `Crashed`. Never fails: an unreadable tail reads as
/// "no end frame".
///
/// An answer from an end frame is a hint: the last bytes of a crashed run's last record could
/// look like one. Retention confirms `Cancelled` by scanning the last segment before deleting
/// a run; [`read_run_segments`] scans every frame and gives the authoritative status (use it
/// before shipping a run).
pub fn quick_status(segs: &[(u32, PathBuf)]) -> RunStatus {
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
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    if len < (HEADER_LEN + END_FRAME_LEN) as u64 {
        return None;
    }
    f.seek(SeekFrom::Start(len - END_FRAME_LEN as u64)).ok()?;
    let mut b = [0u8; END_FRAME_LEN];
    f.read_exact(&mut b).ok()?;
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
    let mut info = RunInfo {
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
    };
    let mut records = Vec::new();
    let mut begin: Option<Begin> = None;
    let mut end: Option<End> = None;
    let alive = segs
        .first()
        .is_some_and(|(_, p)| writer_state(p) == Writer::Alive);
    let mut scans = Vec::with_capacity(segs.len());
    for (i, (seq, path)) in segs.iter().enumerate() {
        if *seq != i as u32 {
            info.problems.push(Problem {
                path: path.clone(),
                offset: 0,
                what: format!("segment {i} of the run is missing (found segment {seq})"),
            });
            break;
        }
        match scan_file_opts(path, want_records) {
            Ok(s) => scans.push((path, s)),
            Err(ReadError::BadSegment { path, error }) => {
                // A segment whose header was never completely written is what a crash
                // during rollover leaves; anywhere else it is damage.
                let torn = matches!(error, HeaderError::Short(_)) && i + 1 == segs.len() && !alive;
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
    for (i, (path, scan)) in scans.into_iter().enumerate() {
        let last = i + 1 == nscans;
        if scan.header.seq != i as u32
            || (!scan.header.run_id.is_empty() && scan.header.run_id != id)
        {
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
        for fa in &scan.frames {
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
                Ok(Frame::End(e)) => {
                    if end.is_some() {
                        info.problems.push(Problem {
                            path: path.clone(),
                            offset: fa.offset,
                            what: "second end frame".into(),
                        });
                    }
                    end = Some(*e);
                }
            }
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
    Ok(RunLog { info, records })
}

impl Journal {
    /// Open a journal directory for reading. It must exist.
    pub fn open(dir: impl AsRef<Path>) -> Result<Journal, ReadError> {
        let dir = dir.as_ref().to_path_buf();
        fs::metadata(&dir).map_err(io_err(&dir))?;
        Ok(Journal { dir })
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All jobs with at least one listed run, sorted by name.
    pub fn jobs(&self) -> Result<Vec<JobInfo>, ReadError> {
        let jobs_dir = self.dir.join(JOBS_DIR);
        let mut out = Vec::new();
        let rd = match fs::read_dir(&jobs_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&jobs_dir)(e)),
        };
        for ent in rd {
            let ent = ent.map_err(io_err(&jobs_dir))?;
            let dir = ent.path();
            if !dir.is_dir() {
                continue;
            }
            let enc = ent.file_name().to_string_lossy().into_owned();
            let hint = layout::decode_job(&enc).unwrap_or_else(|| enc.clone());
            let runs = self.runs_in(&dir, &hint)?;
            if let Some(last) = runs.last() {
                out.push(JobInfo {
                    name: last.job.clone(),
                    dir,
                    runs: runs.len(),
                    last_start_ns: Some(last.start_ns),
                    last_status: Some(last.status),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn runs_in(&self, dir: &Path, hint: &str) -> Result<Vec<RunInfo>, ReadError> {
        let mut out = Vec::new();
        for (id, segs) in list_run_segments(dir)? {
            if being_deleted(&segs) {
                continue;
            }
            let r = match read_run_segments(hint, &id, &segs, false) {
                Ok(r) => r,
                Err(ReadError::NoSuchRun { .. }) => continue,
                Err(e) => return Err(e),
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

    /// One run with all its records.
    pub fn read_run(&self, job: &str, run_id: &str) -> Result<RunLog, ReadError> {
        let dir = layout::job_dir(&self.dir, job);
        let all = list_run_segments(&dir)?;
        let segs = all
            .get(run_id)
            .filter(|s| !being_deleted(s))
            .ok_or_else(|| ReadError::NoSuchRun {
                job: job.to_owned(),
                run: run_id.to_owned(),
            })?;
        let r = read_run_segments(job, run_id, segs, true)?;
        if r.info.status == RunStatus::Cancelled || r.info.job != job {
            return Err(ReadError::NoSuchRun {
                job: job.to_owned(),
                run: run_id.to_owned(),
            });
        }
        Ok(r)
    }
}
