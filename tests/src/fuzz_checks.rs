//! The properties the fuzz targets (`fuzz/fuzz_targets/`) check, shared with the regression
//! test that replays every committed corpus and crash file through them
//! (`tests/tests/fuzz_corpus.rs`): one copy of the logic, run by libFuzzer and by
//! `cargo test`.
//!
//! Each `check_*` takes arbitrary bytes and panics when a property fails. Beyond "no panic",
//! they check what the decoders promise (`spec/journal.md`, `spec/redis.md`): the fast paths
//! agree with the plain ones and with a decoder written from the spec here, a decoded value
//! encodes back to something that decodes the same, a scan's classification of a segment's
//! end is what its bytes say, reading and recovering a journal never loses a record, and
//! recovery is idempotent. Bounded memory is checked by the fuzzer's `-malloc_limit_mb` and by
//! the regression test's counting allocator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use runlog::journal::faultfs::FaultFs;
use runlog::journal::frame::{
    decode_frame, decode_header, encode_frame, encode_header, frame_crc, FrameError, FrameType,
    HeaderError, RawFrame, END_PAYLOAD_LEN, FRAME_HEADER_LEN, HEADER_LEN, MAGIC, MAX_PAYLOAD,
};
use runlog::journal::payload::{
    decode_payload, decode_record_ref, encode_begin, encode_end, encode_label, encode_record,
    level_from_u8, record_payload_level, record_payload_ts, Begin, End, Frame, Outcome,
    REC_MODULE_IS_TARGET, REC_NO_MODULE, REC_TRUNCATED,
};
use runlog::journal::reader::{
    scan_segment, scan_segment_past_damage, Journal, ReadError, SegmentEnd, SegmentScan,
};
use runlog::journal::storage::{self, OpenMode};
use runlog::journal::{layout, retention};
use runlog::{Record, RunStatus};
use runlog_shipper::schema::{
    chunk_payloads, decode_chunk, decode_raw_chunk, decode_record_payload, decompress_chunk,
    escape_job, parse_chunk_index, unescape_job, ChunkBuilder, ChunkError, MAX_CHUNK,
};

/// A fuzz target's check: panics if a property fails for the input.
pub type Check = fn(&[u8]);

/// The fuzz targets, by the name of their directory under `fuzz/seeds/` and
/// `fuzz/regressions/`, with their check.
pub const TARGETS: [(&str, Check); 3] = [
    ("frame", check_frame),
    ("segment", check_segment),
    ("redis_chunk", check_redis_chunk),
];

const FRAME_TYPES: [FrameType; 5] = [
    FrameType::Begin,
    FrameType::Record,
    FrameType::Label,
    FrameType::Commit,
    FrameType::Cancel,
];

/// A valid run id for segments whose header has none.
const FALLBACK_RUN_ID: &str = "2026-01-01T00:00:00.000000Z-0123456789ab";

/// Above this size, the brute-force checks (every offset tried as a frame) are skipped: they
/// are quadratic.
const BRUTE_FORCE_MAX: usize = 8 << 10;

// ---------------------------------------------------------------------------------------------
// A decoder written from spec/journal.md alone, to compare the real one with.

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn le_i64(b: &[u8]) -> i64 {
    i64::from_le_bytes(b.try_into().expect("8 bytes"))
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

/// The payload of a frame of type `kind` as `spec/journal.md` ("Payloads") defines it;
/// `None` if it is malformed.
pub fn spec_decode_payload(kind: FrameType, payload: &[u8]) -> Option<Frame> {
    let mut c = Cursor { b: payload };
    let frame = match kind {
        FrameType::Begin => {
            let fixed = c.take(12)?;
            Frame::Begin(Begin {
                start_ns: le_i64(&fixed[..8]),
                pid: u32::from_le_bytes(fixed[8..12].try_into().ok()?),
                run_id: c.str()?,
                job: c.str()?,
                host: c.str()?,
            })
        }
        FrameType::Record => {
            return crate::redis::spec_decode_record(payload)
                .ok()
                .map(Frame::Record)
        }
        FrameType::Label => Frame::Label {
            key: c.str()?,
            value: c.str()?,
        },
        FrameType::Commit | FrameType::Cancel => {
            let b = c.take(32)?;
            if b[9..16].iter().any(|&x| x != 0) {
                return None;
            }
            let outcome = match (kind, b[8]) {
                (FrameType::Commit, 0) => Outcome::Ok,
                (FrameType::Commit, 1) => Outcome::Failed,
                (FrameType::Cancel, 2) => Outcome::Cancelled,
                _ => return None,
            };
            Frame::End(End {
                end_ns: le_i64(&b[..8]),
                outcome,
                records: le_u64(&b[16..24]),
                dropped: le_u64(&b[24..32]),
            })
        }
    };
    c.b.is_empty().then_some(frame)
}

/// The payload bytes that encode `frame`.
pub fn encode_payload(frame: &Frame) -> Vec<u8> {
    match frame {
        Frame::Begin(b) => encode_begin(b),
        Frame::Record(r) => encode_record(r),
        Frame::Label { key, value } => encode_label(key, value),
        Frame::End(e) => encode_end(e).to_vec(),
    }
}

fn frame_type_of(frame: &Frame) -> FrameType {
    match frame {
        Frame::Begin(_) => FrameType::Begin,
        Frame::Record(_) => FrameType::Record,
        Frame::Label { .. } => FrameType::Label,
        Frame::End(e) if e.outcome == Outcome::Cancelled => FrameType::Cancel,
        Frame::End(_) => FrameType::Commit,
    }
}

// ---------------------------------------------------------------------------------------------
// Frames and payloads

/// Decoding one payload of type `kind`: the real decoders (owned, borrowed, the shipper's)
/// agree with each other and with [`spec_decode_payload`], and a decoded payload encodes back
/// to one that decodes the same.
pub fn check_payload(kind: FrameType, payload: &[u8]) {
    let raw = RawFrame {
        kind,
        flags: 0,
        payload,
    };
    let got = decode_payload(&raw);
    let spec = spec_decode_payload(kind, payload);
    assert_eq!(
        got.as_ref().ok(),
        spec.as_ref(),
        "{kind:?} payload decodes differently from spec/journal.md: {got:?}"
    );
    if kind == FrameType::Record {
        let by_ref = decode_record_ref(payload);
        assert_eq!(by_ref.is_ok(), got.is_ok(), "decode_record_ref: {by_ref:?}");
        if let Ok(r) = &by_ref {
            assert_eq!(r.kvs.len(), r.kvs.iter().count(), "kv count");
            let owned = r.to_record();
            assert_eq!(Some(Frame::Record(owned.clone())), got.clone().ok());
            let pairs: Vec<(String, String)> = r
                .kvs
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(pairs, owned.kvs, "iterated key-values");
            assert_eq!(record_payload_ts(payload), Some(owned.ts_ns));
            assert_eq!(record_payload_level(payload), Some(owned.level));
            let flags = payload[9];
            assert_eq!(owned.truncated, flags & REC_TRUNCATED != 0);
            if flags & REC_NO_MODULE == 0 && flags & REC_MODULE_IS_TARGET != 0 {
                assert_eq!(owned.module_path.as_deref(), Some(owned.target.as_str()));
            }
        }
        let shipper = decode_record_payload(payload);
        assert_eq!(
            shipper.as_ref().ok(),
            spec.as_ref().and_then(|f| match f {
                Frame::Record(r) => Some(r),
                _ => None,
            }),
            "the shipper's decode_record_payload"
        );
        if let Some(level) = payload.get(8).copied().and_then(level_from_u8) {
            assert_eq!(level as u8, payload[8]);
        }
    }
    if let Ok(frame) = &got {
        assert_eq!(frame_type_of(frame), kind);
        let again = encode_payload(frame);
        let back = decode_payload(&RawFrame {
            kind,
            flags: 0,
            payload: &again,
        });
        assert_eq!(back.as_ref(), Ok(frame), "re-encoded {kind:?} payload");
        if matches!(kind, FrameType::Commit | FrameType::Cancel) {
            assert_eq!(again.len(), END_PAYLOAD_LEN);
        }
    }
}

/// One frame (and one segment header) at the start of `data`, and `data` as the payload of
/// every frame type.
pub fn check_frame(data: &[u8]) {
    // The segment header.
    match decode_header(data) {
        Ok(h) => {
            assert!(data.len() >= HEADER_LEN);
            assert!(h.run_id.len() <= 40 && h.run_id.is_ascii());
            let again = encode_header(h.seq, &h.run_id);
            assert_eq!(decode_header(&again), Ok(h), "re-encoded header");
        }
        Err(HeaderError::Short(n)) => assert!(n == data.len() && n < HEADER_LEN),
        Err(_) => {}
    }
    // The frame.
    let decoded = decode_frame(data);
    match &decoded {
        Ok(raw) => {
            let len = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes")) as usize;
            assert!(len <= MAX_PAYLOAD);
            assert_eq!(raw.payload, &data[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len]);
            assert_eq!(raw.kind as u8, data[4]);
            assert_eq!(raw.flags, data[5]);
            assert_eq!(raw.encoded_len(), FRAME_HEADER_LEN + len);
            let again = encode_frame(raw.kind, raw.payload);
            if raw.flags == 0 {
                assert_eq!(again, &data[..raw.encoded_len()], "re-encoded frame");
            }
            assert_eq!(decode_frame(&again).map(|r| r.payload), Ok(raw.payload));
            check_payload(raw.kind, raw.payload);
        }
        Err(FrameError::ShortHeader) => assert!(data.len() < FRAME_HEADER_LEN),
        Err(FrameError::TooLong(len)) => assert!(*len as usize > MAX_PAYLOAD),
        Err(FrameError::Truncated { len, available }) => {
            assert!(*len as usize > *available && *available == data.len() - FRAME_HEADER_LEN)
        }
        Err(FrameError::BadType(t)) => assert!(FrameType::from_u8(*t).is_none()),
        Err(FrameError::BadReserved) => assert!(data[6] != 0 || data[7] != 0),
        Err(FrameError::BadCrc { stored, computed }) => assert_ne!(stored, computed),
    }
    // The reader's own, faster frame check must agree with decode_frame: put the bytes after
    // a header and scan.
    let mut seg = encode_header(0, FALLBACK_RUN_ID).to_vec();
    seg.extend_from_slice(data);
    let scan = scan_segment(&seg).expect("a valid header");
    match decoded {
        Ok(raw) => {
            let first = scan.frames.first().expect("the frame decode_frame accepts");
            assert_eq!(first.offset, HEADER_LEN as u64);
            assert_eq!(first.frame, decode_payload(&raw));
        }
        Err(_) if data.is_empty() => assert_eq!(scan.end, SegmentEnd::Clean),
        Err(_) if data.iter().all(|&b| b == 0) => assert_eq!(
            scan.end,
            SegmentEnd::ZeroTail {
                offset: HEADER_LEN as u64
            }
        ),
        Err(e) => {
            assert!(scan.frames.is_empty());
            match scan.end {
                SegmentEnd::TornTail { offset, error }
                | SegmentEnd::Corrupt { offset, error, .. } => {
                    assert_eq!((offset, error), (HEADER_LEN as u64, e))
                }
                other => panic!("frame error {e:?} but the scan ends {other:?}"),
            }
        }
    }
    check_scan(&seg);
    // The bytes as the payload of each type, without a CRC in the way.
    for kind in FRAME_TYPES {
        check_payload(kind, data);
    }
}

// ---------------------------------------------------------------------------------------------
// Segments

/// Is there a valid frame at any offset in `from..to` of `buf`?
fn any_valid_frame(buf: &[u8], from: usize, to: usize) -> Option<usize> {
    (from..to.min(buf.len())).find(|&o| decode_frame(&buf[o..]).is_ok())
}

/// The properties of [`scan_segment`] on `buf`: the header error is `decode_header`'s; the
/// frames are back to back from `HEADER_LEN` to `valid_len`, each what `decode_frame` and
/// `decode_payload` make of its bytes; the end is what the bytes after `valid_len` are; and
/// the segment cut to `valid_len` (what recovery does) scans clean with the same frames.
/// Returns the scan.
pub fn check_scan(buf: &[u8]) -> Option<SegmentScan> {
    let scan = match scan_segment(buf) {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(decode_header(buf), Err(e), "scan_segment's header error");
            return None;
        }
    };
    assert_eq!(decode_header(buf).as_ref(), Ok(&scan.header));
    let len = buf.len();
    let valid = usize::try_from(scan.valid_len).expect("usize");
    assert!(
        (HEADER_LEN..=len).contains(&valid),
        "valid_len {valid} of {len}"
    );
    let mut off = HEADER_LEN;
    for f in &scan.frames {
        assert_eq!(f.offset, off as u64, "frames are back to back");
        let raw = decode_frame(&buf[off..]).expect("a scanned frame decodes");
        assert_eq!(f.frame, decode_payload(&raw), "frame at {off}");
        off += raw.encoded_len();
    }
    assert_eq!(off, valid, "the last frame ends at valid_len");
    let brute = len <= BRUTE_FORCE_MAX;
    match &scan.end {
        SegmentEnd::Clean => assert_eq!(valid, len),
        SegmentEnd::ZeroTail { offset } => {
            assert_eq!(*offset, valid as u64);
            assert!(valid < len && buf[valid..].iter().all(|&b| b == 0));
        }
        SegmentEnd::TornTail { offset, error } => {
            assert_eq!(*offset, valid as u64);
            assert!(buf[valid..].iter().any(|&b| b != 0));
            assert_eq!(decode_frame(&buf[valid..]).as_ref().err(), Some(error));
            if brute {
                assert_eq!(
                    any_valid_frame(buf, valid + 1, len),
                    None,
                    "a torn tail is followed by a valid frame"
                );
            }
        }
        SegmentEnd::Corrupt {
            offset,
            error,
            next_valid,
        } => {
            assert_eq!(*offset, valid as u64);
            assert_eq!(decode_frame(&buf[valid..]).as_ref().err(), Some(error));
            // Only a search past RESYNC_BUDGET (64 MiB) gives up.
            let n = next_valid.expect("a small segment's next valid frame is found") as usize;
            assert!(n > valid && n < len);
            assert!(decode_frame(&buf[n..]).is_ok(), "next_valid {n} is a frame");
            if brute {
                assert_eq!(
                    any_valid_frame(buf, valid + 1, n),
                    None,
                    "first valid after"
                );
            }
        }
    }
    assert_eq!(
        scan.is_corrupt(),
        matches!(scan.end, SegmentEnd::Corrupt { .. })
            || scan.frames.iter().any(|f| f.frame.is_err())
    );
    // Cut to valid_len, the segment ends clean with the same frames.
    let cut = scan_segment(&buf[..valid]).expect("the header is still there");
    assert_eq!(cut.end, SegmentEnd::Clean);
    assert_eq!(cut.frames, scan.frames);
    // Rebuilt from its decoded frames (each re-encoded), it scans the same.
    let mut rebuilt = buf[..HEADER_LEN].to_vec();
    for f in &scan.frames {
        let raw = decode_frame(&buf[f.offset as usize..]).expect("decodes");
        let payload = match &f.frame {
            Ok(frame) => encode_payload(frame),
            Err(_) => raw.payload.to_vec(),
        };
        rebuilt.extend_from_slice(&encode_frame(raw.kind, &payload));
    }
    let again = scan_segment(&rebuilt).expect("header");
    assert_eq!(again.end, SegmentEnd::Clean);
    assert_eq!(
        again.frames.iter().map(|f| &f.frame).collect::<Vec<_>>(),
        scan.frames.iter().map(|f| &f.frame).collect::<Vec<_>>(),
        "re-encoded frames"
    );
    Some(scan)
}

/// `buf` with the segment header's CRC and the CRC of every frame that follows it back to
/// back (type, reserved bytes and length plausible) recomputed: the fuzzer's bytes made into
/// frames a reader accepts, so that it reaches payloads, runs and recovery.
pub fn fix_crcs(buf: &[u8]) -> Vec<u8> {
    let mut b = buf.to_vec();
    if b.len() < HEADER_LEN || b[..MAGIC.len()] != MAGIC {
        return b;
    }
    // frame_crc is the CRC-32 of its two slices one after the other.
    let crc = frame_crc(&b[..HEADER_LEN - 4], &[]);
    b[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    let mut off = HEADER_LEN;
    while b.len() - off >= FRAME_HEADER_LEN {
        let h = &b[off..off + FRAME_HEADER_LEN];
        let len = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes")) as usize;
        let plausible = FrameType::from_u8(h[4]).is_some() && h[6] == 0 && h[7] == 0;
        if !plausible || len > MAX_PAYLOAD || len > b.len() - off - FRAME_HEADER_LEN {
            break;
        }
        let end = off + FRAME_HEADER_LEN + len;
        let crc = frame_crc(&b[off + 4..end], &[]);
        b[off..off + 4].copy_from_slice(&crc.to_le_bytes());
        off = end;
    }
    b
}

/// Split `data` into segments where the segment magic starts again (so a concatenation of
/// segment files is a run of several segments).
pub fn split_segments(data: &[u8]) -> Vec<&[u8]> {
    let mut starts: Vec<usize> = (1..data.len().saturating_sub(MAGIC.len() - 1))
        .filter(|&i| data[i..].starts_with(&MAGIC))
        .collect();
    starts.insert(0, 0);
    starts.push(data.len());
    starts.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// A segment, its scan checked as by [`check_scan`] as it is and with its CRCs fixed
/// ([`fix_crcs`]); then the segments `data` splits into ([`split_segments`], CRCs fixed)
/// as one run in a journal: read, listed, recovered and read again ([`check_journal`]).
pub fn check_segment(data: &[u8]) {
    check_scan(data);
    let segs: Vec<Vec<u8>> = split_segments(data).into_iter().map(fix_crcs).collect();
    for s in &segs {
        check_scan(s);
    }
    check_journal(&segs);
}

/// Every record of `segs`, segment by segment, as a reader of runs decodes them (past
/// corruption, [`scan_segment_past_damage`]).
fn scanned_records(segs: &[Vec<u8>]) -> Vec<Record> {
    let mut out = Vec::new();
    for s in segs {
        if let Ok(scan) = scan_segment_past_damage(s) {
            for f in scan.frames {
                if let Ok(Frame::Record(r)) = f.frame {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// Is `sub` a subsequence of `all` (same order)?
fn is_subsequence(sub: &[Record], all: &[Record]) -> bool {
    let mut it = all.iter();
    sub.iter().all(|r| it.any(|a| a == r))
}

/// What [`check_journal`] read of one run.
#[derive(Debug)]
struct ReadRun {
    status: RunStatus,
    records: Vec<Record>,
}

/// List every run and read each; check listing and reading agree.
fn read_all(j: &Journal, all_records: &[Record]) -> BTreeMap<(String, String), ReadRun> {
    let mut out = BTreeMap::new();
    for (job, runs) in j
        .all_runs()
        .expect("listing a journal never fails on its contents")
    {
        for info in runs {
            assert_eq!(info.job, job);
            assert_ne!(
                info.status,
                RunStatus::Cancelled,
                "a cancelled run is listed"
            );
            let log = match j.read_run(&job, &info.id) {
                Ok(log) => log,
                Err(e) => panic!("a listed run cannot be read: {e}"),
            };
            assert_eq!(log.info.status, info.status, "status: listing and read_run");
            assert_eq!(
                log.info.records,
                log.records.len() as u64,
                "records counted"
            );
            assert!(info.records >= log.info.records);
            if log.info.problems.is_empty() {
                assert!(
                    info.problems.is_empty(),
                    "listing problems {:?}",
                    info.problems
                );
                assert_eq!(info.records, log.info.records);
            }
            // The marker a reader puts where a corrupt region was is not in the segments.
            let stored: Vec<Record> = log
                .records
                .iter()
                .filter(|r| r.target != runlog::journal::reader::DAMAGE_TARGET)
                .cloned()
                .collect();
            assert!(
                stored.len() == log.records.len() || !log.info.problems.is_empty(),
                "a damage marker in a run without problems"
            );
            assert!(
                is_subsequence(&stored, all_records),
                "read_run returned records that are not in the segments"
            );
            let mut streamed = Vec::new();
            let r = j.for_each_record(&job, &info.id, |r| {
                streamed.push(r.to_record());
                true
            });
            assert!(r.is_ok(), "for_each_record: {r:?}");
            assert_eq!(streamed, log.records, "for_each_record and read_run");
            out.insert(
                (job.clone(), info.id.clone()),
                ReadRun {
                    status: log.info.status,
                    records: log.records,
                },
            );
        }
    }
    out
}

static JOURNALS: AtomicU64 = AtomicU64::new(0);

/// `segs` as the segments of one run in a journal on an in-memory file system
/// ([`FaultFs`]), named by the run id in the first one's header (or a fixed one) under the
/// job its BEGIN frame names (or `fuzz`). Listing and reading agree and never fail; then a
/// sweep ([`retention::sweep_job`]) only cuts a zero or torn tail that the scan reported,
/// deletes nothing that was listed, loses no record that was read, and a second sweep changes
/// nothing. Returns the number of runs listed.
pub fn check_journal(segs: &[Vec<u8>]) -> usize {
    let n = JOURNALS.fetch_add(1, Ordering::Relaxed);
    let root = PathBuf::from(format!("/runlog-fuzz/{}-{n}", std::process::id()));
    let fs = FaultFs::new(&root);
    let _mount = storage::mount(&root, Arc::new(fs.clone()));

    let first = segs.first().and_then(|s| scan_segment(s).ok());
    let id = first
        .as_ref()
        .map(|s| s.header.run_id.clone())
        .filter(|id| layout::is_run_id(id))
        .unwrap_or_else(|| FALLBACK_RUN_ID.to_owned());
    let job = first
        .as_ref()
        .and_then(|s| match s.frames.first().map(|f| &f.frame) {
            Some(Ok(Frame::Begin(b))) if !b.job.is_empty() => Some(b.job.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "fuzz".to_owned());
    let dir = layout::job_dir(&root, &job);
    storage::create_dir_private(&dir).expect("mkdir");
    let mut paths = Vec::new();
    for (seq, bytes) in segs.iter().enumerate() {
        let p = dir.join(layout::segment_name(&id, seq as u32));
        let mut f = storage::open(&p, OpenMode::CreateNew).expect("create");
        storage::write_all(&mut *f, bytes).expect("write");
        paths.push(p);
    }

    let all_records = scanned_records(segs);
    let j = Journal::open(&root).expect("open");
    let read = read_all(&j, &all_records);
    assert!(read.len() <= 1, "one run, listed {} times", read.len());
    let before = fs.files();

    retention::sweep_job(&dir, usize::MAX, usize::MAX, false).expect("sweep");
    let after = fs.files();
    let rel = |p: &Path| p.strip_prefix(&root).expect("under root").to_path_buf();
    let last = segs.len() - 1;
    let mut removed = 0;
    for (i, p) in paths.iter().enumerate() {
        let old = &before[&rel(p)];
        let Some(new) = after.get(&rel(p)) else {
            removed += 1;
            continue;
        };
        if new == old {
            continue;
        }
        let scan = scan_segment(old).expect("recovery cut a segment without a valid header");
        assert!(!scan.is_corrupt(), "recovery cut a corrupt segment {i}");
        match scan.end {
            SegmentEnd::ZeroTail { .. } => {}
            SegmentEnd::TornTail { .. } if i == last => {}
            ref other => panic!("recovery cut segment {i} of {} ending {other:?}", last + 1),
        }
        assert_eq!(
            new.as_slice(),
            &old[..scan.valid_len as usize],
            "cut to valid_len"
        );
    }
    if removed > 0 {
        assert_eq!(removed, paths.len(), "a sweep removed part of a run");
        // Only a run read as crashed may be listed and still go: its last segment ends in a
        // CANCEL the reader never reached (reading stopped at damage in an earlier segment).
        assert!(
            read.values().all(|r| r.status == RunStatus::Crashed),
            "a sweep deleted a listed run that ended: {read:?}"
        );
        // Deleted as cancelled: what is left of its last segment once recovery cut a zero
        // or torn tail (spec/journal.md, "Recovery and retention" 3 and 4) ends in a CANCEL.
        let last_scan = scan_segment(&before[&rel(&paths[last])]).expect("header");
        assert!(!last_scan.is_corrupt(), "a sweep deleted a corrupt run");
        assert!(
            matches!(
                last_scan.frames.last().map(|f| &f.frame),
                Some(Ok(Frame::End(End {
                    outcome: Outcome::Cancelled,
                    ..
                })))
            ),
            "a sweep deleted a run that was not cancelled"
        );
    }

    // Recovery loses nothing that could be read.
    let j = Journal::open(&root).expect("open");
    let all_after: Vec<Record> = scanned_records(
        &paths
            .iter()
            .filter_map(|p| after.get(&rel(p)).cloned())
            .collect::<Vec<_>>(),
    );
    let reread = read_all(&j, &all_after);
    for (key, run) in read.iter().filter(|_| removed == 0) {
        let again = reread
            .get(key)
            .expect("a read run is still listed after a sweep");
        assert_eq!(again.records, run.records, "records after recovery");
        if run.status != RunStatus::Crashed {
            assert_eq!(again.status, run.status, "status after recovery");
        }
    }

    // A second sweep changes nothing.
    retention::sweep_job(&dir, usize::MAX, usize::MAX, false).expect("second sweep");
    assert_eq!(fs.files(), after, "a second sweep changed files");
    match j.read_run(&job, &id) {
        Ok(_) | Err(ReadError::NoSuchRun { .. }) => {}
        Err(e) => panic!("read_run: {e}"),
    }
    read.len()
}

// ---------------------------------------------------------------------------------------------
// Redis values

/// Compress `raw` as a chunk, the way `spec/redis.md` says a writer must (content size and
/// checksum in the frame).
pub fn compress_chunk(raw: &[u8]) -> Vec<u8> {
    let mut z = zstd::bulk::Compressor::new(1).expect("zstd");
    z.include_contentsize(true).expect("zstd");
    z.include_checksum(true).expect("zstd");
    z.compress(raw).expect("compress")
}

/// `records` through a [`ChunkBuilder`] and back: the same records, and an index that
/// describes the chunks.
fn check_chunk_round_trip(records: &[Record]) {
    let mut b = ChunkBuilder::new().expect("zstd");
    for r in records {
        b.push(&encode_record(r)).expect("push");
    }
    let chunks = b.finish().expect("finish");
    let mut back = Vec::new();
    for c in &chunks {
        assert!(c.raw_len <= MAX_CHUNK);
        let recs = decode_chunk(&c.data).expect("a built chunk decodes");
        assert_eq!(recs.len() as u64, c.records);
        assert_eq!(recs.iter().map(|r| r.ts_ns).min(), Some(c.first_ns));
        assert_eq!(recs.iter().map(|r| r.ts_ns).max(), Some(c.last_ns));
        back.extend(recs);
    }
    assert_eq!(back, records, "records through a ChunkBuilder");
    let index: String = chunks.iter().map(|c| c.index_line()).collect();
    let parsed = parse_chunk_index(&index).expect("the built index parses");
    assert_eq!(parsed.len(), chunks.len());
}

/// A chunk's decoders on `data`, read three ways: as a compressed chunk (`decode_chunk`), as
/// decompressed content (`chunk_payloads`; compressed and decoded again, it gives the same),
/// and, if UTF-8, as the `chunks` field of a run's hash (`parse_chunk_index`) and as an
/// escaped job name (`unescape_job`). Decoded records go back through a [`ChunkBuilder`] and
/// come out the same.
pub fn check_redis_chunk(data: &[u8]) {
    // As a chunk from Redis.
    match decode_chunk(data) {
        Ok(records) => {
            let raw = decompress_chunk(data).expect("decode_chunk decompressed it");
            assert!(raw.len() <= MAX_CHUNK);
            assert_eq!(decode_raw_chunk(&raw).as_ref(), Ok(&records));
            for r in &records {
                check_payload(FrameType::Record, &encode_record(r));
            }
            check_chunk_round_trip(&records);
        }
        Err(ChunkError::Decompress(_)) => {}
        Err(e) => {
            let raw = decompress_chunk(data).expect("decompresses");
            assert_eq!(decode_raw_chunk(&raw), Err(e));
        }
    }
    // As decompressed content.
    match chunk_payloads(data) {
        Ok(payloads) => {
            let mut off = 0;
            for p in &payloads {
                let len = u32::from_le_bytes(data[off..off + 4].try_into().expect("4 bytes"));
                assert_eq!(len as usize, p.len());
                assert_eq!(*p, &data[off + 4..off + 4 + p.len()]);
                off += 4 + p.len();
                check_payload(FrameType::Record, p);
            }
            assert_eq!(off, data.len(), "payloads cover the chunk");
        }
        Err(ChunkError::Truncated { offset }) => {
            assert!(offset < data.len());
            let rest = &data[offset..];
            let runs_past = rest.len() < 4
                || u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize
                    > rest.len() - 4;
            assert!(runs_past, "Truncated at {offset} but the record fits");
        }
        Err(e) => panic!("chunk_payloads: {e}"),
    }
    if data.len() <= MAX_CHUNK {
        let direct = decode_raw_chunk(data);
        let packed = decode_chunk(&compress_chunk(data));
        assert_eq!(packed, direct, "compressed and decoded vs decoded");
        if let Ok(records) = &direct {
            check_chunk_round_trip(records);
        }
    }
    // As hash fields.
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(entries) = parse_chunk_index(s) {
            assert_eq!(entries.len(), s.lines().count());
            let text: String = entries
                .iter()
                .map(|e| format!("{} {} {}\n", e.first_ns, e.last_ns, e.records))
                .collect();
            assert_eq!(parse_chunk_index(&text), Ok(entries), "re-written index");
        }
        if let Some(job) = unescape_job(s) {
            assert_eq!(escape_job(&job), s, "unescape_job then escape_job");
        }
        if !s.is_empty() {
            assert_eq!(unescape_job(&escape_job(s)).as_deref(), Some(s));
        }
    }
}
