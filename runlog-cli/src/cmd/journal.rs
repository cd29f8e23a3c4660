//! `runlog journal verify PATH` and `runlog journal dump PATH`: offline inspection of segment
//! files, without the journal's directory layout being required.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use runlog::journal::frame::HeaderError;
use runlog::journal::layout::{
    is_job_dir_entry, parse_segment_name, JOBS_DIR, SEGMENT_EXT, TMP_PREFIX,
};
use runlog::journal::payload::{Frame, Outcome};
use runlog::journal::reader::list_run_segments;
use runlog::journal::reader::{
    hole_before, scan_file, scan_file_past_damage, SegmentEnd, SegmentScan,
};
use runlog::time::format_micros;
use runlog::ReadError;

use crate::render::{JsonObject, Out};
use crate::{Ctx, Error};

/// Directory levels searched under PATH (a journal is `<dir>/jobs/<job>/<segment>`).
const MAX_DEPTH: usize = 8;

/// What [`segment_files`] found.
#[derive(Debug, Default)]
struct Found {
    /// Segment files, sorted.
    files: Vec<PathBuf>,
    /// Half-created (`.tmp-`) segments skipped.
    tmp: usize,
    /// Names in job directories that runlog does not make there, sorted (never read as runs).
    strays: Vec<PathBuf>,
}

/// Is `dir` a job directory (`<journal>/jobs/<job>`)?
fn is_job_dir(dir: &Path) -> bool {
    dir.parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == JOBS_DIR)
}

/// The segment files under `path` (or `path` itself), the half-created ones skipped and the
/// strays in job directories.
fn segment_files(path: &Path) -> Result<Found, Error> {
    let md = fs::metadata(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::usage(format!("{} does not exist", path.display()))
        } else {
            Error::failed(format!("cannot read {}: {e}", path.display()))
        }
    })?;
    if !md.is_dir() {
        return Ok(Found {
            files: vec![path.to_path_buf()],
            ..Found::default()
        });
    }
    let (mut files, mut tmp, mut strays) = (Vec::new(), 0, Vec::new());
    let mut dirs = vec![(path.to_path_buf(), 0)];
    while let Some((dir, depth)) = dirs.pop() {
        let rd = fs::read_dir(&dir)
            .map_err(|e| Error::failed(format!("cannot list {}: {e}", dir.display())))?;
        for ent in rd {
            let ent =
                ent.map_err(|e| Error::failed(format!("cannot list {}: {e}", dir.display())))?;
            let ft = ent
                .file_type()
                .map_err(|e| Error::failed(format!("{}: {e}", ent.path().display())))?;
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if ft.is_symlink() {
                return Err(Error::failed(format!(
                    "{}: {}",
                    ent.path().display(),
                    runlog::journal::storage::symlink_error()
                )));
            }
            if ft.is_dir() && depth < MAX_DEPTH {
                dirs.push((ent.path(), depth + 1));
            } else if is_job_dir(&dir) && !is_job_dir_entry(&name) {
                // Not a segment of a run (a copy named `keep.000000.seg`, say): readers,
                // retention and the shipper never take it for a run.
                strays.push(ent.path());
            } else if ft.is_file() && name.ends_with(&format!(".{SEGMENT_EXT}")) {
                if name.starts_with(TMP_PREFIX) {
                    tmp += 1;
                } else {
                    files.push(ent.path());
                }
            }
        }
    }
    if files.is_empty() {
        return Err(Error::usage(format!(
            "no segment files (*.{SEGMENT_EXT}) under {}: give a journal directory, a job \
             directory or a segment file",
            path.display()
        )));
    }
    files.sort();
    strays.sort();
    Ok(Found { files, tmp, strays })
}

/// Where a segment stands in its run, from the file names next to it.
#[derive(Debug, Default)]
struct RunSegments {
    /// Sequence numbers present, by (directory, run id).
    runs: HashMap<(PathBuf, String), Vec<u32>>,
    listed: HashSet<PathBuf>,
}

impl RunSegments {
    /// The sequence numbers of the segments of `file`'s run (listing its directory once).
    fn seqs(&mut self, file: &Path) -> Option<(u32, &Vec<u32>)> {
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = file.file_name()?.to_str()?;
        let (id, seq) = parse_segment_name(name)?;
        if self.listed.insert(dir.clone()) {
            if let Ok(runs) = list_run_segments(&dir) {
                for (rid, segs) in runs {
                    let seqs = segs.into_iter().map(|(s, _)| s).collect();
                    self.runs.insert((dir.clone(), rid), seqs);
                }
            }
        }
        let seqs = self.runs.get(&(dir, id.to_owned()))?;
        Some((seq, seqs))
    }
}

/// Is the writer of the run whose segment 0 is `seg0` alive? (The library's test: the lock
/// it holds on that file for the run's whole life.)
fn writer_alive(seg0: &Path) -> bool {
    runlog::journal::reader::writer_state(seg0) == runlog::Writer::Alive
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Severity {
    /// Corruption: exit 1.
    Corrupt,
    /// What a crash or a live writer leaves; not corruption.
    Info,
}

/// One thing found in one file.
#[derive(Debug)]
struct Finding {
    file: PathBuf,
    offset: u64,
    severity: Severity,
    what: String,
}

/// Everything verify learnt about one segment.
#[derive(Debug, Default)]
struct SegmentReport {
    frames: usize,
    findings: Vec<Finding>,
    torn: bool,
}

/// Check one segment. `last`: it is the last segment of its run; `alive`: the run's writer
/// is alive.
fn check_segment(file: &Path, scan: &SegmentScan, last: bool, alive: bool) -> SegmentReport {
    let mut rep = SegmentReport {
        frames: scan.frames.len(),
        ..SegmentReport::default()
    };
    let mut find = |offset: u64, severity: Severity, what: String| {
        rep.findings.push(Finding {
            file: file.to_path_buf(),
            offset,
            severity,
            what,
        })
    };
    for f in &scan.frames {
        if let Err(e) = &f.frame {
            find(
                f.offset,
                Severity::Corrupt,
                format!("CRC-valid frame with a {e}"),
            );
        }
    }
    for s in &scan.skipped {
        find(
            s.offset,
            Severity::Corrupt,
            format!(
                "corrupt frame ({}); {} bytes unreadable, valid frames follow at offset {}",
                s.error,
                s.next_valid - s.offset,
                s.next_valid
            ),
        );
    }
    let ended = scan
        .frames
        .iter()
        .any(|f| matches!(f.frame, Ok(Frame::End(_))));
    match &scan.end {
        SegmentEnd::Clean | SegmentEnd::ZeroTail { .. } => {}
        SegmentEnd::TornTail { offset, error } if last && !ended => {
            rep.torn = true;
            let what = if alive {
                format!("incomplete frame, the run's writer is still writing ({error})")
            } else {
                format!("torn tail (crash), cut on recovery ({error})")
            };
            find(*offset, Severity::Info, what);
        }
        SegmentEnd::TornTail { offset, error } => find(
            *offset,
            Severity::Corrupt,
            format!(
                "bad frame ({error}) {} the end of the run",
                if ended { "after" } else { "before" }
            ),
        ),
        SegmentEnd::Corrupt { offset, .. } if alive && last => find(
            *offset,
            Severity::Info,
            "the run's writer is alive and still writing here; not checked further".into(),
        ),
        SegmentEnd::Corrupt {
            offset,
            error,
            next_valid,
        } => find(
            *offset,
            Severity::Corrupt,
            match next_valid {
                Some(n) => format!("corrupt frame ({error}); valid frames follow at offset {n}"),
                None => format!("corrupt frame ({error}); data follows it"),
            },
        ),
    }
    rep
}

/// Check every segment under `path`; exit 1 (after the report) if anything is corrupt.
pub(crate) fn verify(ctx: &Ctx, out: &mut Out, path: Option<&Path>) -> Result<(), Error> {
    let configured;
    let path = match path {
        Some(p) => p,
        None => {
            configured = crate::source::journal_dir(ctx)?;
            configured.as_path()
        }
    };
    let Found { files, tmp, strays } = segment_files(path)?;
    for stray in &strays {
        let f = Finding {
            file: stray.clone(),
            offset: 0,
            severity: Severity::Info,
            what: "not a name runlog makes in a job directory: never read as a run \
                   (spec/journal.md, Directory layout); move it out of the journal"
                .into(),
        };
        write_finding(ctx, out, &f)?;
    }
    let mut layout = RunSegments::default();
    let (mut frames, mut corrupt_segments, mut torn, mut findings_total) = (0, 0, 0, 0);
    for file in &files {
        let place = layout.seqs(file).map(|(seq, seqs)| (seq, seqs.clone()));
        let last = place
            .as_ref()
            .is_none_or(|(seq, seqs)| seqs.last() == Some(seq));
        let mut findings = Vec::new();
        // Missing segments are reported once per run, with its first segment present.
        if let Some((seq, seqs)) = &place {
            let (first, max) = (seqs[0], seqs[seqs.len() - 1]);
            if *seq == first {
                if first != 0 {
                    findings.push(Finding {
                        file: file.clone(),
                        offset: 0,
                        severity: Severity::Info,
                        what: format!(
                            "segment{} before this one of its run {} missing: an interrupted \
                             removal leaves this, and the next one finishes it",
                            if first == 1 { "" } else { "s" },
                            if first == 1 { "is" } else { "are" },
                        ),
                    });
                }
                let gaps: Vec<String> = (first..=max)
                    .filter(|s| seqs.binary_search(s).is_err())
                    .map(|s| s.to_string())
                    .collect();
                if !gaps.is_empty() {
                    findings.push(Finding {
                        file: file.clone(),
                        offset: 0,
                        severity: Severity::Corrupt,
                        what: format!(
                            "segment(s) {} of this run are missing between existing ones",
                            gaps.join(", ")
                        ),
                    });
                }
            }
        }
        let seg0 = seg0_of(file);
        let alive = last && seg0.as_deref().is_some_and(writer_alive);
        let mut bad = false;
        // Past corruption, as runs are read; a live writer's last segment only up to its first
        // bad frame (a later frame may be complete while an earlier one is being written).
        let scanned = if alive {
            scan_file(file)
        } else {
            scan_file_past_damage(file)
        };
        match scanned {
            Ok(scan) => {
                let name_seq = place.as_ref().map(|p| p.0);
                let name_id = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_segment_name)
                    .map(|(id, _)| id.to_owned());
                if name_seq.is_some_and(|s| s != scan.header.seq)
                    || name_id.as_ref().is_some_and(|id| *id != scan.header.run_id)
                {
                    findings.push(Finding {
                        file: file.clone(),
                        offset: 0,
                        severity: Severity::Corrupt,
                        what: format!(
                            "header says run {} segment {}, which is not what the file name says",
                            scan.header.run_id, scan.header.seq
                        ),
                    });
                }
                // Zeros ending a segment that is not its run's last may be a hole.
                if let (SegmentEnd::ZeroTail { offset }, Some((seq, _)), false) =
                    (&scan.end, &place, last)
                {
                    let next = name_id.as_deref().map(|id| {
                        file.with_file_name(runlog::journal::layout::segment_name(id, seq + 1))
                    });
                    if let Some(p) = next.and_then(|n| hole_before(file, *offset, &n)) {
                        findings.push(Finding {
                            file: file.clone(),
                            offset: p.offset,
                            severity: Severity::Corrupt,
                            what: p.what,
                        });
                    }
                }
                let rep = check_segment(file, &scan, last, alive);
                frames += rep.frames;
                if rep.torn {
                    torn += 1;
                }
                findings.extend(rep.findings);
            }
            Err(ReadError::BadSegment { error, .. }) => {
                let (severity, what) = match error {
                    HeaderError::Short(_) if last => (
                        Severity::Info,
                        format!(
                            "{error}: an incomplete header, as a crash while creating it leaves"
                        ),
                    ),
                    HeaderError::UnsupportedVersion(_) => {
                        (Severity::Corrupt, format!("cannot check: {error}"))
                    }
                    _ => (Severity::Corrupt, format!("bad segment header: {error}")),
                };
                findings.push(Finding {
                    file: file.clone(),
                    offset: 0,
                    severity,
                    what,
                });
            }
            Err(e) => {
                findings.push(Finding {
                    file: file.clone(),
                    offset: 0,
                    severity: Severity::Corrupt,
                    what: format!("cannot read: {e}"),
                });
            }
        }
        for f in &findings {
            bad |= f.severity == Severity::Corrupt;
            findings_total += usize::from(f.severity == Severity::Corrupt);
            write_finding(ctx, out, f)?;
        }
        if bad {
            corrupt_segments += 1;
        }
    }
    let segments = files.len();
    if ctx.json {
        out.line(
            &JsonObject::new()
                .str("summary", &path.to_string_lossy())
                .num("segments", segments as u64)
                .num("frames", frames as u64)
                .num("corrupt_segments", corrupt_segments as u64)
                .num("torn_tails", torn as u64)
                .num("skipped_tmp", tmp as u64)
                .num("strays", strays.len() as u64)
                .bool("ok", corrupt_segments == 0)
                .version()
                .finish(),
        )?;
    } else {
        let mut s = format!(
            "{}: checked {segments} segment{}, {frames} frames: ",
            path.display(),
            if segments == 1 { "" } else { "s" }
        );
        if corrupt_segments == 0 {
            s.push_str("no corruption");
        } else {
            s.push_str(&format!(
                "CORRUPTION ({findings_total} finding{} in {corrupt_segments} segment{})",
                if findings_total == 1 { "" } else { "s" },
                if corrupt_segments == 1 { "" } else { "s" }
            ));
        }
        if torn > 0 {
            s.push_str(&format!(
                "; {torn} torn tail{} left by a crash or a live writer",
                if torn == 1 { "" } else { "s" }
            ));
        }
        if tmp > 0 {
            s.push_str(&format!(
                "; skipped {tmp} segment{} being created (.tmp-*)",
                if tmp == 1 { "" } else { "s" }
            ));
        }
        if !strays.is_empty() {
            s.push_str(&format!(
                "; {} stray file{} in job directories",
                strays.len(),
                if strays.len() == 1 { "" } else { "s" }
            ));
        }
        out.line(&s)?;
    }
    if corrupt_segments > 0 {
        Err(Error::Corrupt)
    } else {
        Ok(())
    }
}

fn write_finding(ctx: &Ctx, out: &mut Out, f: &Finding) -> io::Result<()> {
    if ctx.json {
        out.line(
            &JsonObject::new()
                .str("file", &f.file.to_string_lossy())
                .num("offset", f.offset)
                .str(
                    "severity",
                    match f.severity {
                        Severity::Corrupt => "corrupt",
                        Severity::Info => "info",
                    },
                )
                .str("what", &f.what)
                .version()
                .finish(),
        )
    } else {
        out.line(&format!(
            "{}: offset {}: {}",
            f.file.display(),
            f.offset,
            f.what
        ))
    }
}

/// Segment 0 of the run `file` belongs to.
fn seg0_of(file: &Path) -> Option<PathBuf> {
    let name = file.file_name()?.to_str()?;
    let (id, _) = parse_segment_name(name)?;
    Some(file.with_file_name(runlog::journal::layout::segment_name(id, 0)))
}

/// One frame as one line: type and content, every string quoted and escaped.
fn describe(frame: &Frame) -> (&'static str, String) {
    match frame {
        Frame::Begin(b) => (
            "BEGIN",
            format!(
                "job={:?} run={:?} host={:?} pid={} start={}",
                b.job,
                b.run_id,
                b.host,
                b.pid,
                format_micros(b.start_ns)
            ),
        ),
        Frame::Record(r) => {
            let mut s = format!(
                "{} {} target={:?} message={:?}",
                format_micros(r.ts_ns),
                r.level,
                r.target,
                r.message
            );
            for (k, v) in &r.kvs {
                s.push_str(&format!(" {k:?}={v:?}"));
            }
            if let Some(m) = &r.module_path {
                s.push_str(&format!(" module={m:?}"));
            }
            if let Some(f) = &r.file {
                s.push_str(&format!(" file={f:?}"));
            }
            if let Some(l) = r.line {
                s.push_str(&format!(" line={l}"));
            }
            if r.truncated {
                s.push_str(" truncated");
            }
            ("RECORD", s)
        }
        Frame::Label { key, value } => ("LABEL", format!("{key:?}={value:?}")),
        Frame::End(e) => (
            if e.outcome == Outcome::Cancelled {
                "CANCEL"
            } else {
                "COMMIT"
            },
            format!(
                "{} end={} records={} dropped={}",
                match e.outcome {
                    Outcome::Ok => "ok",
                    Outcome::Failed => "failed",
                    Outcome::Cancelled => "cancelled",
                },
                format_micros(e.end_ns),
                e.records,
                e.dropped
            ),
        ),
    }
}

/// Print every frame of every segment under `path`; exit 1 if anything is corrupt.
pub(crate) fn dump(ctx: &Ctx, out: &mut Out, path: &Path) -> Result<(), Error> {
    if ctx.json {
        return Err(Error::usage(
            "`journal dump` prints text only; `runlog --json journal verify PATH` gives \
             findings as JSON",
        ));
    }
    let files = segment_files(path)?.files;
    let mut corrupt = false;
    for (i, file) in files.iter().enumerate() {
        if files.len() > 1 {
            if i > 0 {
                out.line("")?;
            }
            out.line(&format!("==> {} <==", file.display()))?;
        }
        let scan = match scan_file_past_damage(file) {
            Ok(s) => s,
            Err(ReadError::BadSegment { error, .. }) => {
                // A short header is what a crash while creating the segment leaves.
                let what = match error {
                    HeaderError::Short(_) => format!("incomplete (a crash?): {error}"),
                    HeaderError::UnsupportedVersion(_) => {
                        corrupt = true;
                        format!("UNSUPPORTED: {error}")
                    }
                    _ => {
                        corrupt = true;
                        format!("CORRUPT at 0: {error}")
                    }
                };
                out.line(&format!("header  {what}"))?;
                continue;
            }
            Err(e) => {
                corrupt = true;
                out.line(&format!("header  cannot read: {e}"))?;
                continue;
            }
        };
        out.line(&format!(
            "header  version={} seq={} run={:?}",
            scan.header.version, scan.header.seq, scan.header.run_id
        ))?;
        let mut skipped = scan.skipped.iter().peekable();
        for (k, f) in scan.frames.iter().enumerate() {
            while let Some(s) = skipped.next_if(|s| s.before_frame <= k) {
                corrupt = true;
                out.line(&format!(
                    "{:>8}  CORRUPT {}; {} bytes unreadable, next valid frame at {}",
                    s.offset,
                    s.error,
                    s.next_valid - s.offset,
                    s.next_valid
                ))?;
            }
            let (kind, text) = match &f.frame {
                Ok(frame) => describe(frame),
                Err(e) => {
                    corrupt = true;
                    (e.kind.name(), format!("MALFORMED: {}", e.what))
                }
            };
            out.line(&format!("{:>8}  {kind:<6}  {text}", f.offset))?;
        }
        // A skipped region is always followed by the valid frame it resumed at.
        debug_assert!(skipped.peek().is_none());
        let end = match &scan.end {
            SegmentEnd::Clean => format!("clean at {}", scan.valid_len),
            SegmentEnd::ZeroTail { offset } => format!("zero tail at {offset}"),
            SegmentEnd::TornTail { offset, error } => format!("torn tail at {offset}: {error}"),
            SegmentEnd::Corrupt {
                offset,
                error,
                next_valid,
            } => {
                corrupt = true;
                match next_valid {
                    Some(n) => format!("CORRUPT at {offset}: {error}; next valid frame at {n}"),
                    None => format!("CORRUPT at {offset}: {error}"),
                }
            }
        };
        out.line(&format!("end     {end}"))?;
    }
    if corrupt {
        Err(Error::Corrupt)
    } else {
        Ok(())
    }
}
