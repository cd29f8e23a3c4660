//! Turning an ended run in the journal into what gets uploaded: its metadata and its
//! records in compressed chunks (`spec/redis.md`).

use std::path::PathBuf;

use runlog::journal::frame::{decode_frame, decode_header, FrameType, HEADER_LEN};
use runlog::journal::reader::{read_run_segments, ReadError, RunInfo, RunStatus, MAX_SEGMENT_FILE};
use runlog::journal::storage;

use crate::schema::{self, Chunk, ChunkBuilder, SCHEMA_VERSION};

/// Longest `error` summary, in bytes.
pub const MAX_ERROR_SUMMARY: usize = 1024;

/// A run ready to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedRun {
    /// Job name, exactly as given.
    pub job: String,
    /// Run id.
    pub id: String,
    /// `ok`, `failed` or `crashed`.
    pub status: RunStatus,
    /// Start time in ms (the sorted-set score).
    pub start_ms: i64,
    /// Metadata fields in the order they are written.
    pub meta: Vec<(String, String)>,
    /// Records in chunks.
    pub chunks: Vec<Chunk>,
    /// Records in the chunks.
    pub records: u64,
    /// Size of the segment files read.
    pub journal_bytes: u64,
}

impl PreparedRun {
    /// Counted against `max-failed-logs` (failed or crashed)?
    pub fn is_failed(&self) -> bool {
        self.status != RunStatus::Ok
    }

    /// Bytes of chunk data.
    pub fn chunk_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.data.len()).sum()
    }
}

/// Why a run could not be prepared.
#[derive(Debug)]
pub enum PrepareError {
    /// The run is gone (deleted meanwhile) or not shippable (running, cancelled).
    NotShippable,
    /// Reading the journal failed.
    Read(ReadError),
    /// Compression failed.
    Io(std::io::Error),
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrepareError::NotShippable => {
                f.write_str("run is not shippable (running, cancelled or gone)")
            }
            PrepareError::Read(e) => write!(f, "{e}"),
            PrepareError::Io(e) => write!(f, "compressing records: {e}"),
        }
    }
}

impl std::error::Error for PrepareError {}

/// Does this record say why the run failed? Ranks: 3 `runlog::error`, 2 the panic message,
/// 1 any other ERROR record; the last record of the highest rank wins.
fn error_rank(r: &runlog::Record) -> u8 {
    if r.level != log::Level::Error {
        return 0;
    }
    match r.target.as_str() {
        "runlog::error" => 3,
        "runlog::panic" if !r.message.starts_with("stack backtrace:") => 2,
        "runlog::panic" => 0,
        _ => 1,
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Read an ended run and build what is uploaded. `job_hint` is the job name from the
/// directory (used when the BEGIN frame is damaged).
pub fn prepare_run(
    job_hint: &str,
    id: &str,
    segs: &[(u32, PathBuf)],
    builder: &mut ChunkBuilder,
) -> Result<PreparedRun, PrepareError> {
    let log = match read_run_segments(job_hint, id, segs, false) {
        Ok(l) => l,
        Err(ReadError::NoSuchRun { .. }) => return Err(PrepareError::NotShippable),
        Err(e) => return Err(PrepareError::Read(e)),
    };
    let info = log.info;
    if !matches!(
        info.status,
        RunStatus::Ok | RunStatus::Failed | RunStatus::Crashed
    ) {
        return Err(PrepareError::NotShippable);
    }
    builder.reset();
    let mut best: Option<(u8, String)> = None;
    let mut records = 0u64;
    let mut journal_bytes = 0u64;
    let mut buf = Vec::new();
    // The same frames the reader counted: segments in sequence from 0, each up to its first
    // invalid frame; a segment with a bad header ends the run.
    for (i, (seq, path)) in segs.iter().enumerate() {
        if *seq != i as u32 {
            break;
        }
        // Through the journal's storage (no symbolic link followed, like every journal read).
        match storage::read_bounded(path, MAX_SEGMENT_FILE, &mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PrepareError::NotShippable)
            }
            Err(e) => {
                return Err(PrepareError::Read(ReadError::Io {
                    path: path.clone(),
                    source: e,
                }))
            }
        }
        journal_bytes += buf.len() as u64;
        if decode_header(&buf).is_err() {
            break;
        }
        let mut off = HEADER_LEN;
        while off < buf.len() {
            let Ok(raw) = decode_frame(&buf[off..]) else {
                break;
            };
            if raw.kind == FrameType::Record {
                builder.push(raw.payload).map_err(PrepareError::Io)?;
                records += 1;
                // Level byte 1 = error: only those are decoded.
                if info.status != RunStatus::Ok && raw.payload.get(8) == Some(&1) {
                    if let Ok(r) = schema::decode_record_payload(raw.payload) {
                        let rank = error_rank(&r);
                        if rank > 0 && best.as_ref().is_none_or(|(b, _)| rank >= *b) {
                            best = Some((rank, r.message));
                        }
                    }
                }
            }
            off += raw.encoded_len();
        }
    }
    if records != info.records {
        // A segment changed between the reader's pass and this one (cut or removed by someone
        // else): the records would not match the status and problems read. Not uploaded now;
        // the next pass reads the run again.
        return Err(PrepareError::Read(ReadError::Io {
            path: segs.first().map(|(_, p)| p.clone()).unwrap_or_default(),
            source: std::io::Error::other(format!(
                "the run changed while it was read ({} records, then {records})",
                info.records
            )),
        }));
    }
    let chunks = builder.finish().map_err(PrepareError::Io)?;
    let error = best.map(|(_, m)| cut(&m, MAX_ERROR_SUMMARY).to_owned());
    Ok(PreparedRun {
        meta: metadata(&info, records, &chunks, error.as_deref()),
        job: info.job.clone(),
        id: info.id.clone(),
        status: info.status,
        start_ms: info.start_ns.div_euclid(1_000_000),
        chunks,
        records,
        journal_bytes,
    })
}

/// The `run:<R>` hash fields, in a fixed order.
fn metadata(
    info: &RunInfo,
    records: u64,
    chunks: &[Chunk],
    error: Option<&str>,
) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = vec![
        ("v".into(), SCHEMA_VERSION.into()),
        ("job".into(), info.job.clone()),
        ("id".into(), info.id.clone()),
        ("status".into(), info.status.as_str().into()),
        ("start".into(), info.start_ns.to_string()),
    ];
    if let Some(end) = info.end_ns {
        m.push(("end".into(), end.to_string()));
    }
    m.push(("last".into(), info.last_ns.to_string()));
    m.push(("host".into(), info.host.clone()));
    m.push(("pid".into(), info.pid.to_string()));
    m.push(("records".into(), records.to_string()));
    m.push(("dropped".into(), info.dropped.to_string()));
    m.push((
        "bytes".into(),
        chunks.iter().map(|c| c.raw_len).sum::<usize>().to_string(),
    ));
    m.push((
        "chunks".into(),
        chunks.iter().map(Chunk::index_line).collect::<String>(),
    ));
    if let Some(e) = error {
        m.push(("error".into(), e.to_owned()));
    }
    if !info.problems.is_empty() {
        m.push(("problems".into(), info.problems.len().to_string()));
    }
    for (k, v) in &info.labels {
        m.push((format!("label:{k}"), v.clone()));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use runlog::journal::frame::{encode_frame, encode_header};
    use runlog::journal::layout::segment_name;
    use runlog::journal::payload::{
        encode_begin, encode_end, encode_record, Begin, End, Outcome, Record,
    };

    const ID: &str = "2026-12-04T19:51:32.015316Z-889fdf6713bd";
    const T0: i64 = 1_796_413_892_015_316_000;

    fn record(ts_ns: i64) -> Vec<u8> {
        encode_frame(
            FrameType::Record,
            &encode_record(&Record {
                ts_ns,
                level: log::Level::Info,
                target: "t".into(),
                module_path: None,
                file: None,
                line: None,
                kvs: Vec::new(),
                message: "m".into(),
                truncated: false,
            }),
        )
    }

    /// Found by the torture suite (segment 0 of a 6-segment run cut to 53 and to 3 bytes under
    /// the shipper): the run was uploaded with `last` = 0, before its `start`; its empty host
    /// and pid 0 are what spec/redis.md now says of a run whose BEGIN frame is lost.
    #[test]
    fn a_run_whose_first_segment_lost_its_begin_frame_is_uploaded_with_last_not_before_start() {
        let t = tempfile::tempdir().unwrap();
        let mut seg0 = encode_header(0, ID).to_vec();
        seg0.extend(encode_frame(
            FrameType::Begin,
            &encode_begin(&Begin {
                start_ns: T0,
                pid: 42,
                run_id: ID.into(),
                job: "j".into(),
                host: "h".into(),
            }),
        ));
        seg0.extend(record(T0 + 1));
        let mut seg1 = encode_header(1, ID).to_vec();
        seg1.extend(record(T0 - 5_000_000_000));
        seg1.extend(encode_frame(
            FrameType::Commit,
            &encode_end(&End {
                end_ns: T0 + 3,
                outcome: Outcome::Ok,
                records: 2,
                dropped: 0,
            }),
        ));
        let segs: Vec<(u32, PathBuf)> = (0..2)
            .map(|seq| (seq, t.path().join(segment_name(ID, seq))))
            .collect();
        std::fs::write(&segs[1].1, &seg1).unwrap();
        let mut builder = ChunkBuilder::new().unwrap();
        for cut in [3, 53, HEADER_LEN + 10] {
            std::fs::write(&segs[0].1, &seg0[..cut]).unwrap();
            let run = prepare_run("j", ID, &segs, &mut builder).unwrap();
            let meta: std::collections::BTreeMap<_, _> = run.meta.iter().cloned().collect();
            let num = |k: &str| meta[k].parse::<i64>().unwrap();
            assert_eq!(num("start"), T0, "cut {cut}: the start from the id");
            assert!(
                num("last") >= num("start"),
                "cut {cut}: last {} before start {}",
                meta["last"],
                meta["start"]
            );
            assert_eq!((meta["host"].as_str(), num("pid")), ("", 0), "cut {cut}");
            assert!(meta.contains_key("problems"), "cut {cut}: {meta:?}");
            assert_eq!(meta["job"], "j");
        }
    }
}
