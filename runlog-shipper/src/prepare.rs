//! Turning an ended run in the journal into what gets uploaded: its metadata and its
//! records in compressed chunks (`spec/redis.md`).

use std::path::PathBuf;

use runlog::journal::payload::{decode_record_ref, failure_rank};
use runlog::journal::reader::{stream_run_payloads, ReadError, RunInfo, RunStatus};

use crate::schema::{Chunk, ChunkBuilder, SCHEMA_VERSION};

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
    /// Records in chunks: the run's last chunks, all of them unless `staged` are already in
    /// its stage list.
    pub chunks: Vec<Chunk>,
    /// The run's first chunks, already pushed to its stage list while it was read
    /// ([`prepare_run_streamed`]); 0 for a run prepared whole.
    pub staged: usize,
    /// Records in the chunks.
    pub records: u64,
    /// Bytes of chunk data of the whole run (staged or not).
    pub data_bytes: usize,
}

impl PreparedRun {
    /// Counted against `max-failed-logs` (failed or crashed)?
    pub fn is_failed(&self) -> bool {
        self.status != RunStatus::Ok
    }

    /// Bytes of chunk data of the whole run.
    pub fn chunk_bytes(&self) -> usize {
        self.data_bytes
    }

    /// Chunks of the whole run (staged or not).
    pub fn chunk_count(&self) -> usize {
        self.staged + self.chunks.len()
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
    /// The consumer of a streamed run's chunks stopped the read (it keeps its own error).
    Stopped,
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrepareError::NotShippable => {
                f.write_str("run is not shippable (running, cancelled or gone)")
            }
            PrepareError::Read(e) => write!(f, "{e}"),
            PrepareError::Io(e) => write!(f, "compressing records: {e}"),
            PrepareError::Stopped => f.write_str("reading the run was stopped"),
        }
    }
}

impl std::error::Error for PrepareError {}

/// Does this record say why the run failed? See [`failure_rank`]: the last record of the
/// highest rank wins, as in `runlog why`.
fn error_rank(r: &runlog::journal::payload::RecordRef<'_>) -> u8 {
    failure_rank(r.level, r.target, r.message)
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

/// Read an ended run and build what is uploaded, all of it in memory (a run small enough to
/// be uploaded with others in one pipeline). `job_hint` is the job name from the directory
/// (used when the BEGIN frame is damaged).
pub fn prepare_run(
    job_hint: &str,
    id: &str,
    segs: &[(u32, PathBuf)],
    builder: &mut ChunkBuilder,
) -> Result<PreparedRun, PrepareError> {
    prepare_run_streamed(job_hint, id, segs, builder, false, &mut |_, _| true)
}

/// [`prepare_run`] for a run of any size: after each record, `out(job, builder)` may take the
/// chunks finished so far ([`ChunkBuilder::take_done`]) and stage them; `job` is the run's
/// job name (from its BEGIN frame, else `job_hint`), settled before the first record. The
/// result holds the chunks not taken, and [`PreparedRun::staged`] counts the others. `out`
/// returns false to stop reading: [`PrepareError::Stopped`].
///
/// Each segment is read once ([`stream_run_payloads`]; with `read_ahead`, helper threads read
/// the next segments meanwhile), so the chunks hold exactly the records the status, the
/// problems and the counts were taken from, even if a segment is cut while it is read; and
/// memory holds a few segments and the chunks not taken, whatever the size of the run.
pub fn prepare_run_streamed(
    job_hint: &str,
    id: &str,
    segs: &[(u32, PathBuf)],
    builder: &mut ChunkBuilder,
    read_ahead: bool,
    out: &mut dyn FnMut(&str, &mut ChunkBuilder) -> bool,
) -> Result<PreparedRun, PrepareError> {
    builder.reset();
    let mut best: Option<(u8, String)> = None;
    let mut failed = None;
    let read = stream_run_payloads(job_hint, id, segs, read_ahead, &mut |job, payload| {
        if let Err(e) = builder.push(payload) {
            failed = Some(e);
            return false;
        }
        // Level byte 1 = error: only those are decoded. The status is known at the end (the
        // summary of an ok run is dropped then).
        if payload.get(8) == Some(&1) {
            if let Ok(r) = decode_record_ref(payload) {
                let rank = error_rank(&r);
                if rank > 0 && best.as_ref().is_none_or(|(b, _)| rank >= *b) {
                    best = Some((rank, r.message.to_owned()));
                }
            }
        }
        out(job, builder)
    });
    if let Some(e) = failed {
        return Err(PrepareError::Io(e));
    }
    let info = match read {
        Ok(Some(info)) => info,
        Ok(None) => return Err(PrepareError::Stopped),
        Err(ReadError::NoSuchRun { .. }) => return Err(PrepareError::NotShippable),
        Err(e) => return Err(PrepareError::Read(e)),
    };
    if !matches!(
        info.status,
        RunStatus::Ok | RunStatus::Failed | RunStatus::Crashed
    ) {
        return Err(PrepareError::NotShippable);
    }
    let chunks = builder.finish().map_err(PrepareError::Io)?;
    let error = best
        .filter(|_| info.status != RunStatus::Ok)
        .map(|(_, m)| cut(&m, MAX_ERROR_SUMMARY).to_owned());
    Ok(PreparedRun {
        meta: metadata(&info, builder, error.as_deref()),
        job: info.job.clone(),
        id: info.id.clone(),
        status: info.status,
        start_ms: info.start_ns.div_euclid(1_000_000),
        chunks,
        staged: builder.taken(),
        records: info.records,
        data_bytes: builder.data_bytes(),
    })
}

/// The `run:<R>` hash fields, in a fixed order; the chunk fields from `chunks`, which built
/// every chunk of the run.
fn metadata(info: &RunInfo, chunks: &ChunkBuilder, error: Option<&str>) -> Vec<(String, String)> {
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
    m.push(("records".into(), info.records.to_string()));
    m.push(("dropped".into(), info.dropped.to_string()));
    m.push(("bytes".into(), chunks.raw_bytes().to_string()));
    m.push(("chunks".into(), chunks.index().to_owned()));
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
    use runlog::journal::frame::{encode_frame, encode_header, FrameType, HEADER_LEN};
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

    /// Segment 0 of run `ID` of job `j`: its header and BEGIN frame.
    fn segment0() -> Vec<u8> {
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
        seg0
    }

    #[test]
    fn a_run_streamed_in_parts_gives_the_chunks_and_metadata_of_the_run_prepared_whole() {
        let t = tempfile::tempdir().unwrap();
        let rec = |i: i64| {
            encode_frame(
                FrameType::Record,
                &encode_record(&Record {
                    ts_ns: T0 + i,
                    level: if i % 97 == 0 {
                        log::Level::Error
                    } else {
                        log::Level::Info
                    },
                    target: "t".into(),
                    module_path: None,
                    file: None,
                    line: None,
                    kvs: Vec::new(),
                    message: format!("record {i}: {}", "lorem ipsum ".repeat((i % 13) as usize)),
                    truncated: false,
                }),
            )
        };
        let mut seg0 = segment0();
        let mut seg1 = encode_header(1, ID).to_vec();
        for i in 0..6000 {
            (if i < 2500 { &mut seg0 } else { &mut seg1 }).extend(rec(i));
        }
        seg1.extend(encode_frame(
            FrameType::Commit,
            &encode_end(&End {
                end_ns: T0 + 7000,
                outcome: Outcome::Failed,
                records: 6000,
                dropped: 0,
            }),
        ));
        let segs: Vec<(u32, PathBuf)> = [seg0, seg1]
            .iter()
            .enumerate()
            .map(|(seq, bytes)| {
                let p = t.path().join(segment_name(ID, seq as u32));
                std::fs::write(&p, bytes).unwrap();
                (seq as u32, p)
            })
            .collect();
        let mut builder = ChunkBuilder::new().unwrap();
        let whole = prepare_run("hint", ID, &segs, &mut builder).unwrap();
        assert_eq!((whole.staged, whole.records), (0, 6000));
        assert!(whole.chunks.len() > 3, "{} chunks", whole.chunks.len());
        let mut staged = Vec::new();
        for read_ahead in [false, true] {
            staged.clear();
            let streamed = prepare_run_streamed(
                "hint",
                ID,
                &segs,
                &mut builder,
                read_ahead,
                &mut |job, b| {
                    assert_eq!(job, "j", "the job of the BEGIN frame");
                    if b.done_bytes() > 0 {
                        staged.extend(b.take_done());
                    }
                    true
                },
            )
            .unwrap();
            assert_eq!(streamed.staged, staged.len());
            assert!(streamed.staged > 2, "{} staged", streamed.staged);
            assert_eq!(streamed.chunk_count(), whole.chunks.len());
            assert_eq!(streamed.chunk_bytes(), whole.chunk_bytes());
            assert_eq!(streamed.meta, whole.meta);
            staged.extend(streamed.chunks);
            assert_eq!(staged, whole.chunks);
        }
        let meta: std::collections::BTreeMap<_, _> = whole.meta.iter().cloned().collect();
        assert_eq!(meta["error"], "record 5917: lorem ipsum lorem ipsum ");
        assert!(matches!(
            prepare_run_streamed("hint", ID, &segs, &mut builder, false, &mut |_, _| false),
            Err(PrepareError::Stopped)
        ));
    }

    /// Found by the torture suite (segment 0 of a 6-segment run cut to 53 and to 3 bytes under
    /// the shipper): the run was uploaded with `last` = 0, before its `start`; its empty host
    /// and pid 0 are what spec/redis.md now says of a run whose BEGIN frame is lost.
    #[test]
    fn a_run_whose_first_segment_lost_its_begin_frame_is_uploaded_with_last_not_before_start() {
        let t = tempfile::tempdir().unwrap();
        let mut seg0 = segment0();
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
