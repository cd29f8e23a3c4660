//! Segments damaged on purpose: cut at every byte, every bit flipped, garbage of every shape.
//!
//! The reader must return exactly the valid prefix and classify what follows it (a clean end,
//! a zero or torn tail that recovery may cut, or corruption that must be reported), never a
//! frame that differs from what was written, never a panic, and never an allocation that a
//! length field asked for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::path::PathBuf;
use std::sync::Once;

use log::LevelFilter;
use proptest::prelude::*;
use runlog::journal::frame::{
    encode_frame, encode_header, FrameType, HeaderError, FRAME_HEADER_LEN, HEADER_LEN, MAX_PAYLOAD,
};
use runlog::journal::layout::{job_dir, segment_name};
use runlog::journal::payload::{
    encode_begin, encode_end, encode_label, encode_record, Begin, End, Frame, Outcome, Record,
};
use runlog::journal::reader::{scan_segment, SegmentEnd, SegmentScan};
use runlog::{Journal, RunLogger, RunStatus};

// ---------------------------------------------------------------------------------------------
// An allocator that remembers the largest single allocation made by a thread while asked to.

struct PeakAlloc;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; `note` only
// touches `const`-initialised thread-locals without destructors, so it never allocates.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Run `f` and return the largest single allocation this thread made meanwhile.
fn peak_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let r = f();
    TRACKING.with(|t| t.set(false));
    (r, PEAK.with(Cell::get))
}

// ---------------------------------------------------------------------------------------------
// Segments to damage.

const RUN_ID: &str = "2026-11-28T12:10:55.123456Z-00000000da3a";
const JOB: &str = "damage/job ✓";
const T0: i64 = 1_795_867_855_123_456_000;

fn rec(i: i64, message: &str, kvs: &[(&str, &str)]) -> Record {
    Record {
        ts_ns: T0 + i,
        level: log::Level::Info,
        target: "damage".into(),
        module_path: Some("damage".into()),
        file: Some("runlog/tests/damage.rs".into()),
        line: Some(10 + i as u32),
        kvs: kvs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        message: message.into(),
        truncated: false,
    }
}

/// A small committed run made with the encoders: BEGIN, three records, a label, COMMIT.
fn encoded_segment() -> Vec<u8> {
    let mut v = encode_header(0, RUN_ID).to_vec();
    v.extend(encode_frame(
        FrameType::Begin,
        &encode_begin(&Begin {
            start_ns: T0,
            pid: 77,
            run_id: RUN_ID.into(),
            job: JOB.into(),
            host: "host-1".into(),
        }),
    ));
    for r in [
        rec(1, "first", &[]),
        rec(2, "second with key-values", &[("user", "bär"), ("n", "3")]),
        rec(3, "naïve ✓\nthird", &[]),
    ] {
        v.extend(encode_frame(FrameType::Record, &encode_record(&r)));
    }
    v.extend(encode_frame(FrameType::Label, &encode_label("user", "bar")));
    v.extend(encode_frame(
        FrameType::Commit,
        &encode_end(&End {
            end_ns: T0 + 10,
            outcome: Outcome::Ok,
            records: 3,
            dropped: 0,
        }),
    ));
    v
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(rl) = RunLogger::builder()
            .journal_dir(std::env::temp_dir().join("runlog-damage-test-unused"))
            .no_config_file()
            .build()
        {
            let _ = rl.install();
        }
    });
}

/// A small committed run written by the library itself, read back from its journal.
fn library_segment() -> Vec<u8> {
    install();
    let tmp = tempfile::tempdir().unwrap();
    let rl = RunLogger::builder()
        .journal_dir(tmp.path())
        .no_config_file()
        .build()
        .unwrap();
    let path;
    {
        let run = rl.runlog(JOB).unwrap();
        run.set_level(LevelFilter::Debug);
        run.label("user", "bär");
        log::info!("first record");
        log::debug!(user = "bar", n = 3; "with {} key-values", 2);
        log::warn!("naïve ✓\nsecond line");
        path = job_dir(tmp.path(), JOB).join(segment_name(run.id(), 0));
    }
    let bytes = fs::read(&path).unwrap();
    let scan = scan_segment(&bytes).unwrap();
    assert_eq!(
        scan.end,
        SegmentEnd::Clean,
        "a committed segment is cut to length"
    );
    assert_eq!(scan.frames.len(), 6, "BEGIN, LABEL, 3 RECORDs, COMMIT");
    assert!(scan.frames.iter().all(|f| f.frame.is_ok()));
    bytes
}

/// (start, end) of every frame of a clean scan.
fn spans(scan: &SegmentScan) -> Vec<(usize, usize)> {
    let offs: Vec<usize> = scan.frames.iter().map(|f| f.offset as usize).collect();
    offs.iter()
        .enumerate()
        .map(|(i, &o)| {
            (
                o,
                offs.get(i + 1).copied().unwrap_or(scan.valid_len as usize),
            )
        })
        .collect()
}

fn full_scan(seg: &[u8]) -> SegmentScan {
    let full = scan_segment(seg).unwrap();
    assert_eq!(full.end, SegmentEnd::Clean);
    assert_eq!(full.valid_len as usize, seg.len());
    assert!(!full.is_corrupt());
    full
}

// ---------------------------------------------------------------------------------------------
// Truncation.

/// The segment cut to `cut` bytes reads as exactly the frames that lie wholly before the cut,
/// ended cleanly at a frame boundary and as a torn (or, if only zeros remain, zero) tail
/// elsewhere; never as corruption, since nothing valid follows.
fn check_cut(seg: &[u8], full: &SegmentScan, cut: usize) {
    let b = &seg[..cut];
    let scan = match scan_segment(b) {
        Err(e) => {
            assert!(cut < HEADER_LEN, "cut {cut}: header error {e:?}");
            assert_eq!(e, HeaderError::Short(cut), "cut {cut}");
            return;
        }
        Ok(s) => s,
    };
    assert!(cut >= HEADER_LEN, "cut {cut} decoded a header");
    assert_eq!(scan.header, full.header);
    let whole = spans(full).iter().filter(|(_, e)| *e <= cut).count();
    assert_eq!(scan.frames, full.frames[..whole], "cut {cut}");
    let boundary = spans(full)[..whole].last().map_or(HEADER_LEN, |s| s.1);
    assert_eq!(scan.valid_len as usize, boundary, "cut {cut}");
    if cut == boundary {
        assert_eq!(scan.end, SegmentEnd::Clean, "cut {cut}");
    } else if b[boundary..].iter().all(|&x| x == 0) {
        assert_eq!(
            scan.end,
            SegmentEnd::ZeroTail {
                offset: boundary as u64
            },
            "cut {cut}"
        );
    } else {
        assert!(
            matches!(scan.end, SegmentEnd::TornTail { offset, .. } if offset as usize == boundary),
            "cut {cut}: {:?}",
            scan.end
        );
    }
    assert!(!scan.is_corrupt(), "cut {cut}");
}

fn check_every_cut(seg: &[u8]) {
    let full = full_scan(seg);
    for cut in 0..=seg.len() {
        check_cut(seg, &full, cut);
    }
}

#[test]
fn an_encoded_segment_cut_at_every_offset_reads_as_exactly_the_frames_before_the_cut() {
    check_every_cut(&encoded_segment());
}

#[test]
fn a_library_written_segment_cut_at_every_offset_reads_as_exactly_the_frames_before_the_cut() {
    check_every_cut(&library_segment());
}

// ---------------------------------------------------------------------------------------------
// Changed bits and bytes.

/// The segment with byte `pos` XORed by `xor` (≠ 0): a header error in the header; otherwise
/// the frames before the damaged one, then a torn tail if it was the last frame and corruption
/// pointing at the next frame if it was not. CRC-32 catches every error within 32 bits, so no
/// damaged frame is ever returned.
fn check_changed_byte(seg: &[u8], full: &SegmentScan, pos: usize, xor: u8) {
    let mut b = seg.to_vec();
    b[pos] ^= xor;
    let what = format!("byte {pos} ^ {xor:#04x}");
    let scan = match scan_segment(&b) {
        Err(e) => {
            assert!(pos < HEADER_LEN, "{what}: header error {e:?}");
            match pos {
                0..8 => assert_eq!(e, HeaderError::BadMagic, "{what}"),
                8..10 => assert!(matches!(e, HeaderError::UnsupportedVersion(v) if v != 1)),
                _ => assert_eq!(e, HeaderError::BadCrc, "{what}"),
            }
            return;
        }
        Ok(s) => s,
    };
    assert!(pos >= HEADER_LEN, "{what}: damaged header accepted");
    let spans = spans(full);
    let i = spans
        .iter()
        .position(|&(s, e)| s <= pos && pos < e)
        .unwrap();
    assert_eq!(scan.frames, full.frames[..i], "{what}");
    assert_eq!(scan.valid_len as usize, spans[i].0, "{what}");
    let at = spans[i].0 as u64;
    if i + 1 == spans.len() {
        assert!(
            matches!(scan.end, SegmentEnd::TornTail { offset, .. } if offset == at),
            "{what}: damage in the last frame must read as a torn tail: {:?}",
            scan.end
        );
    } else {
        let next = spans[i + 1].0 as u64;
        assert!(
            matches!(
                scan.end,
                SegmentEnd::Corrupt { offset, next_valid: Some(n), .. } if offset == at && n == next
            ),
            "{what}: damage before valid frames must read as corruption at {at}: {:?}",
            scan.end
        );
        assert!(scan.is_corrupt());
    }
}

fn check_every_bit_flip(seg: &[u8]) {
    assert!(seg.len() < 2048, "keep the exhaustive test fast");
    let full = full_scan(seg);
    for bit in 0..seg.len() * 8 {
        check_changed_byte(seg, &full, bit / 8, 1 << (bit % 8));
    }
}

#[test]
fn every_single_bit_flip_in_an_encoded_segment_is_a_header_error_corruption_or_a_torn_last_frame() {
    check_every_bit_flip(&encoded_segment());
}

#[test]
fn every_single_bit_flip_in_a_library_written_segment_is_a_header_error_corruption_or_a_torn_last_frame(
) {
    check_every_bit_flip(&library_segment());
}

// ---------------------------------------------------------------------------------------------
// The same through the journal reader: problems name the file and the offset.

/// A journal holding one run of `JOB` whose only segment is `seg`; no writer holds its lock,
/// so a run without an end frame is a crashed run.
fn journal_with(seg: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = job_dir(tmp.path(), JOB);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(segment_name(RUN_ID, 0));
    fs::write(&path, seg).unwrap();
    (tmp, path)
}

fn records_of(scan: &SegmentScan, upto: usize) -> Vec<Record> {
    scan.frames[..upto]
        .iter()
        .filter_map(|f| match &f.frame {
            Ok(Frame::Record(r)) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// What a reader returns for `full` with frame `i` (`start..end`) damaged in the file `path`:
/// the records before it, the damage marker, the records after it.
fn records_around(
    full: &SegmentScan,
    i: usize,
    (start, end): (usize, usize),
    path: &std::path::Path,
) -> Vec<Record> {
    let before = records_of(full, i);
    // The marker's time: the newest record before it, else the start (from the id when the
    // BEGIN frame is the one damaged).
    let t0 = if i == 0 {
        runlog::time::parse_utc(&RUN_ID[..27]).unwrap()
    } else {
        T0
    };
    let mut want = before.clone();
    want.push(Record {
        ts_ns: before.iter().map(|r| r.ts_ns).fold(t0, i64::max),
        level: log::Level::Warn,
        target: runlog::journal::reader::DAMAGE_TARGET.into(),
        module_path: None,
        file: None,
        line: None,
        kvs: vec![],
        message: format!(
            "-- {} bytes unreadable at {}:{start} --",
            end - start,
            path.file_name().unwrap().to_str().unwrap()
        ),
        truncated: false,
    });
    want.extend(full.frames[i + 1..].iter().filter_map(|f| match &f.frame {
        Ok(Frame::Record(r)) => Some(r.clone()),
        _ => None,
    }));
    want
}

#[test]
fn a_corrupt_frame_in_the_middle_of_a_run_is_reported_and_the_frames_after_it_are_read() {
    let seg = encoded_segment();
    let full = full_scan(&seg);
    let spans = spans(&full);
    // One bit of the second record's message.
    let (start, end) = spans[2];
    let mut bad = seg.clone();
    bad[end - 3] ^= 0x10;
    let (tmp, path) = journal_with(&bad);
    let j = Journal::open(tmp.path()).unwrap();
    let log = j.read_run(JOB, RUN_ID).unwrap();
    assert_eq!(
        log.info.status,
        RunStatus::Ok,
        "the COMMIT after the damage is read"
    );
    assert_eq!(log.info.shown_status(), RunStatus::Damaged);
    assert_eq!(log.records, records_around(&full, 2, spans[2], &path));
    assert_eq!(log.info.problems.len(), 1, "{:?}", log.info.problems);
    let p = &log.info.problems[0];
    assert_eq!((p.path.as_path(), p.offset), (path.as_path(), start as u64));
    let shown = p.to_string();
    assert!(
        shown.contains(&path.display().to_string())
            && shown.contains(&format!("at offset {start}"))
            && shown.contains("CRC mismatch")
            && shown.contains(&format!("valid frames follow at offset {end}")),
        "{shown}"
    );
    // Listings see it too, and count the marker as a record.
    let runs = j.runs(JOB).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].problems, log.info.problems);
    assert_eq!(runs[0].records, log.records.len() as u64);
    assert_eq!(runs[0].shown_status(), RunStatus::Damaged);
}

#[test]
fn a_changed_byte_anywhere_in_a_run_is_reported_at_its_frame_unless_it_tears_the_last_frame() {
    let seg = encoded_segment();
    let full = full_scan(&seg);
    let spans = spans(&full);
    let (tmp, path) = journal_with(&seg);
    let j = Journal::open(tmp.path()).unwrap();
    for pos in 0..seg.len() {
        let mut b = seg.clone();
        b[pos] ^= 1 << (pos % 8);
        fs::write(&path, &b).unwrap();
        let log = j.read_run(JOB, RUN_ID).unwrap();
        let info = &log.info;
        if pos < HEADER_LEN {
            assert_eq!(info.status, RunStatus::Crashed, "byte {pos}");
            assert!(log.records.is_empty());
            assert_eq!(info.problems.len(), 1, "byte {pos}: {:?}", info.problems);
            assert_eq!(
                (&info.problems[0].path, info.problems[0].offset),
                (&path, 0)
            );
            continue;
        }
        let i = spans
            .iter()
            .position(|&(s, e)| s <= pos && pos < e)
            .unwrap();
        if i + 1 == spans.len() {
            // A torn end frame is what a crash while ending leaves: not damage.
            assert_eq!(info.status, RunStatus::Crashed, "byte {pos}");
            assert_eq!(log.records, records_of(&full, i), "byte {pos}");
            assert!(info.problems.is_empty(), "byte {pos}: {:?}", info.problems);
        } else {
            // Read on past the damage, to the end frame.
            assert_eq!(info.status, RunStatus::Ok, "byte {pos}");
            assert_eq!(info.shown_status(), RunStatus::Damaged, "byte {pos}");
            assert_eq!(
                log.records,
                records_around(&full, i, spans[i], &path),
                "byte {pos}"
            );
            assert_eq!(info.problems.len(), 1, "byte {pos}: {:?}", info.problems);
            let p = &info.problems[0];
            assert_eq!(
                (&p.path, p.offset),
                (&path, spans[i].0 as u64),
                "byte {pos}"
            );
            assert!(p.what.starts_with("corrupt frame"), "{}", p.what);
        }
    }
}

#[test]
fn a_crashed_run_cut_anywhere_after_its_begin_frame_loses_only_the_cut_frames_and_no_damage_is_reported(
) {
    let seg = encoded_segment();
    let full = full_scan(&seg);
    let spans = spans(&full);
    let begin_end = spans[0].1;
    let (tmp, path) = journal_with(&seg);
    let j = Journal::open(tmp.path()).unwrap();
    for cut in 0..=seg.len() {
        fs::write(&path, &seg[..cut]).unwrap();
        let log = j.read_run(JOB, RUN_ID).unwrap();
        let whole = spans.iter().filter(|(_, e)| *e <= cut).count();
        assert_eq!(log.records, records_of(&full, whole), "cut {cut}");
        let want = if cut == seg.len() {
            RunStatus::Ok
        } else {
            RunStatus::Crashed
        };
        assert_eq!(log.info.status, want, "cut {cut}");
        if cut >= begin_end {
            assert!(
                log.info.problems.is_empty(),
                "cut {cut}: {:?}",
                log.info.problems
            );
            assert_eq!(log.info.job, JOB);
        } else {
            // Without its BEGIN frame the run is reported (the start time comes from the id).
            assert_eq!(log.info.problems.len(), 1, "cut {cut}");
            assert!(log.info.problems[0].what.contains("no BEGIN"), "cut {cut}");
        }
    }
}

/// Found by the torture suite (a segment cut to 53 bytes under the shipper): with its BEGIN
/// frame lost, the run took its start from the id but kept `last` at 0, and the shipper
/// uploaded `last` = 0, before `start` (spec/redis.md: `last` is `start` if there is no record).
#[test]
fn a_run_whose_begin_frame_is_lost_has_its_last_time_no_earlier_than_its_start_from_the_id() {
    let seg = encoded_segment();
    let full = full_scan(&seg);
    let begin_end = spans(&full)[0].1;
    let (tmp, path) = journal_with(&seg);
    let j = Journal::open(tmp.path()).unwrap();
    for cut in 0..begin_end {
        fs::write(&path, &seg[..cut]).unwrap();
        let info = j.read_run(JOB, RUN_ID).unwrap().info;
        assert!(info.start_ns > 0, "cut {cut}: no start from the id");
        assert!(
            info.last_ns >= info.start_ns,
            "cut {cut}: last {} before start {}",
            info.last_ns,
            info.start_ns
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Garbage.

fn xorshift(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A valid header, then one frame header claiming `len` with the right type and zero reserved
/// bytes, then `rest`.
fn claims_length(len: u32, rest: &[u8]) -> Vec<u8> {
    let mut v = encode_header(0, RUN_ID).to_vec();
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[4] = FrameType::Record as u8;
    h[8..12].copy_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&h);
    v.extend_from_slice(rest);
    v
}

/// CRC-valid frames whose payloads claim huge inner lengths or counts.
fn huge_inner_lengths() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let with = |kind, payload: Vec<u8>| {
        let mut v = encode_header(0, RUN_ID).to_vec();
        v.extend(encode_frame(kind, &payload));
        v
    };
    for len in [u32::MAX, u32::MAX - 3, MAX_PAYLOAD as u32, 1 << 24] {
        let mut label = encode_label("k", "v");
        label[..4].copy_from_slice(&len.to_le_bytes());
        out.push(with(FrameType::Label, label));
        let mut label = encode_label("k", "v");
        label[5..9].copy_from_slice(&len.to_le_bytes());
        out.push(with(FrameType::Label, label));
        let mut begin = encode_begin(&Begin {
            start_ns: 0,
            pid: 0,
            run_id: "r".into(),
            job: "j".into(),
            host: "h".into(),
        });
        begin[12..16].copy_from_slice(&len.to_le_bytes());
        out.push(with(FrameType::Begin, begin));
        let mut r = encode_record(&rec(0, "m", &[("k", "v")]));
        r[16..20].copy_from_slice(&len.to_le_bytes());
        out.push(with(FrameType::Record, r));
    }
    let mut r = encode_record(&rec(0, "m", &[]));
    r[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
    out.push(with(FrameType::Record, r));
    out
}

#[test]
fn garbage_and_lying_lengths_never_panic_and_never_allocate_what_a_length_claims() {
    let sizes = [
        0, 1, 7, 8, 11, 12, 63, 64, 65, 75, 76, 77, 100, 1000, 4096, 70_000,
    ];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for &n in &sizes {
        inputs.push(vec![0xFF; n]);
        inputs.push(vec![0; n]);
        inputs.push(xorshift(n as u64, n));
        let mut h = encode_header(0, RUN_ID).to_vec();
        for tail in [vec![0xFF; n], vec![0; n], xorshift(n as u64 + 7, n)] {
            let mut v = h.clone();
            v.extend(tail);
            inputs.push(v);
        }
        // A header with every byte after the magic set.
        h[8..].fill(0xFF);
        inputs.push(h);
    }
    for len in [
        u32::MAX,
        u32::MAX - 11,
        MAX_PAYLOAD as u32 + 1,
        MAX_PAYLOAD as u32,
        MAX_PAYLOAD as u32 - 1,
        70_000,
    ] {
        inputs.push(claims_length(len, &[]));
        inputs.push(claims_length(len, &xorshift(len as u64, 5000)));
        inputs.push(claims_length(len, &[0xFF; 5000]));
    }
    let lying = huge_inner_lengths();
    let lying_count = lying.len();
    inputs.extend(lying);

    let n_inputs = inputs.len();
    for (k, input) in inputs.iter().enumerate() {
        let (scan, peak) = peak_allocation(|| scan_segment(input));
        let cap = input.len().max(4096);
        assert!(
            peak <= cap,
            "input {k} ({} bytes) made an allocation of {peak} bytes",
            input.len()
        );
        let Ok(scan) = scan else { continue };
        assert!(scan.valid_len as usize <= input.len());
        if k >= n_inputs - lying_count {
            assert_eq!(scan.frames.len(), 1, "input {k}");
            assert!(
                scan.frames[0].frame.is_err(),
                "input {k}: {:?}",
                scan.frames[0]
            );
            assert!(scan.is_corrupt());
        } else {
            // Garbage has no valid frames (a CRC match by chance is not in these inputs).
            assert!(scan.frames.is_empty(), "input {k}: {:?}", scan.frames);
        }
    }
}

#[test]
fn garbage_files_in_a_journal_are_reported_never_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = job_dir(tmp.path(), JOB);
    fs::create_dir_all(&dir).unwrap();
    let ids = [
        "2026-01-01T00:00:00.000000Z-000000000001",
        "2026-01-01T00:00:00.000000Z-000000000002",
        "2026-01-01T00:00:00.000000Z-000000000003",
        "2026-01-01T00:00:00.000000Z-000000000004",
    ];
    fs::write(dir.join(segment_name(ids[0], 0)), [0xFF; 4096]).unwrap();
    fs::write(dir.join(segment_name(ids[1], 0)), xorshift(9, 3000)).unwrap();
    fs::write(dir.join(segment_name(ids[2], 0)), []).unwrap();
    fs::write(
        dir.join(segment_name(ids[3], 0)),
        claims_length(u32::MAX, &[1; 100]),
    )
    .unwrap();
    fs::write(dir.join("not-a-segment.txt"), b"hello").unwrap();
    let j = Journal::open(tmp.path()).unwrap();
    let jobs = j.jobs().unwrap();
    assert_eq!(jobs.len(), 1);
    let runs = j.runs(JOB).unwrap();
    assert_eq!(runs.len(), ids.len());
    for id in ids {
        let log = j.read_run(JOB, id).unwrap();
        assert_eq!(log.info.status, RunStatus::Crashed, "{id}");
        assert!(log.records.is_empty());
        assert!(
            !log.info.problems.is_empty(),
            "{id}: damage must be reported"
        );
        assert!(log.info.problems.iter().all(|p| p.path.starts_with(&dir)));
    }
}

// ---------------------------------------------------------------------------------------------
// Randomised: any run's frames round-trip; any cut and any changed byte is caught.

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..12).prop_map(|v| v.into_iter().collect())
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<i64>(),
        1u8..=5,
        text(),
        prop_oneof![Just(None), Just(Some(String::new())), text().prop_map(Some)],
        any::<bool>(),
        prop::option::of(text().prop_filter("empty file is none", |s| !s.is_empty())),
        prop::option::of(1u32..),
        prop::collection::vec((text(), text()), 0..4),
        text(),
        any::<bool>(),
    )
        .prop_map(
            |(
                ts_ns,
                level,
                target,
                module,
                module_is_target,
                file,
                line,
                kvs,
                message,
                truncated,
            )| {
                let module_path = if module_is_target {
                    Some(target.clone())
                } else {
                    module
                };
                Record {
                    ts_ns,
                    level: runlog::journal::payload::level_from_u8(level).unwrap(),
                    target,
                    module_path,
                    file,
                    line,
                    kvs,
                    message,
                    truncated,
                }
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        4 => record().prop_map(Frame::Record),
        1 => (text(), text()).prop_map(|(key, value)| Frame::Label { key, value }),
    ]
}

fn encode(f: &Frame) -> Vec<u8> {
    match f {
        Frame::Begin(b) => encode_frame(FrameType::Begin, &encode_begin(b)),
        Frame::Record(r) => encode_frame(FrameType::Record, &encode_record(r)),
        Frame::Label { key, value } => encode_frame(FrameType::Label, &encode_label(key, value)),
        Frame::End(e) => {
            let kind = if e.outcome == Outcome::Cancelled {
                FrameType::Cancel
            } else {
                FrameType::Commit
            };
            encode_frame(kind, &encode_end(e))
        }
    }
}

fn end_frame() -> impl Strategy<Value = Option<Frame>> {
    prop::option::of(
        (
            any::<i64>(),
            prop_oneof![
                Just(Outcome::Ok),
                Just(Outcome::Failed),
                Just(Outcome::Cancelled)
            ],
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(end_ns, outcome, records, dropped)| {
                Frame::End(End {
                    end_ns,
                    outcome,
                    records,
                    dropped,
                })
            }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_run_round_trips_and_any_cut_or_changed_byte_is_caught(
        seq in 0u32..3,
        body in prop::collection::vec(frame(), 1..6),
        end in end_frame(),
        cut in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut frames = body;
        frames.extend(end);
        let mut seg = encode_header(seq, RUN_ID).to_vec();
        for f in &frames {
            seg.extend(encode(f));
        }
        let full = full_scan(&seg);
        let decoded: Vec<Frame> = full.frames.iter().map(|f| f.frame.clone().unwrap()).collect();
        prop_assert_eq!(&decoded, &frames);
        prop_assert_eq!(full.header.seq, seq);
        check_cut(&seg, &full, cut.index(seg.len() + 1));
        check_changed_byte(&seg, &full, pos.index(seg.len()), xor);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic_or_allocate_past_their_size(
        tail in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        let mut seg = encode_header(0, RUN_ID).to_vec();
        seg.extend(&tail);
        let (scan, peak) = peak_allocation(|| scan_segment(&seg));
        prop_assert!(peak <= seg.len().max(4096));
        let scan = scan.unwrap();
        prop_assert!(scan.valid_len as usize <= seg.len());
    }
}

/// Keep the test names honest: the exhaustive tests above run on segments this small.
#[test]
fn the_damaged_segments_are_small() {
    assert!(encoded_segment().len() < 1024);
    assert!(library_segment().len() < 2048);
}

// ---------------------------------------------------------------------------------------------
// Recovery must not be stopped by damage it cannot repair.

/// Bug (fixed): `retention::recover_crashed` returned the header error of a crashed run's last
/// segment and `sweep_job` propagated it, so one segment with a damaged header (e.g. zeros
/// after a power loss) stopped retention for its job forever.
#[test]
fn a_crashed_run_with_a_damaged_header_does_not_stop_retention_for_its_job() {
    install();
    let tmp = tempfile::tempdir().unwrap();
    let dir = job_dir(tmp.path(), JOB);
    fs::create_dir_all(&dir).unwrap();
    let damaged = dir.join(segment_name("2000-01-01T00:00:00.000000Z-000000000000", 0));
    fs::write(&damaged, [0u8; 4096]).unwrap();
    let rl = RunLogger::builder()
        .journal_dir(tmp.path())
        .no_config_file()
        .max_logs(2)
        .max_failed_logs(2)
        .build()
        .unwrap();
    for i in 0..5 {
        let _run = rl.runlog(JOB).unwrap();
        log::info!("run {i}");
    }
    let runs = Journal::open(tmp.path()).unwrap().runs(JOB).unwrap();
    let ok = runs.iter().filter(|r| r.status == RunStatus::Ok).count();
    assert_eq!(ok, 2, "max-logs 2 keeps two ok runs: {runs:#?}");
    assert!(
        damaged.exists(),
        "a damaged segment is never modified, only retained or deleted"
    );
}

#[test]
fn reading_past_damage_skips_each_corrupt_frame_and_keeps_a_torn_tail_a_torn_tail() {
    use runlog::journal::reader::scan_segment_past_damage;
    let seg = encoded_segment();
    let full = full_scan(&seg);
    let spans = spans(&full);
    assert!(spans.len() >= 6, "{spans:?}");
    let mut bad = seg.clone();
    for i in [1, 3] {
        bad[spans[i].1 - 3] ^= 0x10;
    }
    let s = scan_segment_past_damage(&bad).unwrap();
    let skipped: Vec<(u64, u64, usize)> = s
        .skipped
        .iter()
        .map(|k| (k.offset, k.next_valid, k.before_frame))
        .collect();
    assert_eq!(
        skipped,
        [
            (spans[1].0 as u64, spans[1].1 as u64, 1),
            (spans[3].0 as u64, spans[3].1 as u64, 2)
        ]
    );
    assert_eq!(s.frames.len(), full.frames.len() - 2);
    assert_eq!(
        (s.end.clone(), s.valid_len),
        (SegmentEnd::Clean, seg.len() as u64)
    );
    // The stopping scan still stops at the first.
    assert!(matches!(
        scan_segment(&bad).unwrap().end,
        SegmentEnd::Corrupt { offset, .. } if offset == spans[1].0 as u64
    ));
    // Cut into the end frame: after the skipped regions and a valid frame, a torn tail, as a
    // crash leaves it.
    let cut = &bad[..seg.len() - 20];
    let s = scan_segment_past_damage(cut).unwrap();
    assert_eq!(s.skipped.len(), 2);
    assert!(
        matches!(s.end, SegmentEnd::TornTail { offset, .. } if offset == spans[spans.len() - 1].0 as u64),
        "{:?}",
        s.end
    );
}
