//! The fuzz targets' checks (`runlog_e2e::fuzz_checks`) on every committed seed
//! (`fuzz/seeds/<target>/`) and crash reproducer (`fuzz/regressions/<target>/`), without
//! libFuzzer, so that `cargo test` keeps every bug the fuzzer found fixed; and crafted inputs
//! whose lengths claim gigabytes, checked to stay bounded by a counting allocator.
//!
//! `cargo test -p runlog-e2e --test fuzz_corpus -- --ignored regenerate_seed_corpora` rewrites
//! the seeds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use runlog::journal::frame::{encode_frame, encode_header, FrameType, HEADER_LEN, MAX_PAYLOAD};
use runlog::journal::payload::{encode_record, Frame};
use runlog::journal::reader::scan_segment;
use runlog::Record;
use runlog_e2e::fuzz_checks::{
    check_frame, check_journal, check_payload, check_redis_chunk, check_segment, compress_chunk,
    encode_payload, split_segments, TARGETS,
};
use runlog_shipper::schema::{decode_chunk, ChunkBuilder, ChunkError};

/// Counts the largest single allocation and the most bytes live at once, so that a crafted
/// length that would allocate gigabytes fails a test instead of passing on a big machine.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        if new_size >= layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded as given.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// What any input may allocate at once: a segment, a 2 MiB chunk and its records, with room.
const MAX_SINGLE_ALLOC: usize = 64 << 20;

fn assert_bounded(what: &str) {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < MAX_SINGLE_ALLOC,
        "{what}: an allocation of {largest} bytes (limit {MAX_SINGLE_ALLOC})"
    );
    let peak = PEAK.load(Ordering::Relaxed);
    assert!(
        peak < 4 * MAX_SINGLE_ALLOC,
        "{what}: {peak} bytes live at once"
    );
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.retain(|p| {
        p.file_name()
            .is_some_and(|n| n != ".gitkeep" && n != "README.md")
    });
    out.sort();
    out
}

#[test]
fn every_committed_seed_and_regression_passes_its_fuzz_check() {
    let mut total = 0;
    for (target, check) in TARGETS {
        let seeds = files_in(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "no seeds for {target}");
        let regressions = files_in(&fuzz_dir().join("regressions").join(target));
        for path in seeds.iter().chain(&regressions) {
            let data = fs::read(path).expect("read");
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{target}: {} fails its check", path.display());
            total += 1;
        }
    }
    assert!(total > 20, "{total} inputs");
    assert_bounded("the committed corpora");
}

#[test]
fn the_journal_check_reads_the_golden_runs() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors");
    let read = |name: &str| fs::read(vectors.join(name)).expect("read");
    assert_eq!(check_journal(&[read("valid.seg")]), 1);
    assert_eq!(check_journal(&[read("torn-tail.seg")]), 1);
    assert_eq!(check_journal(&[read("cancelled.seg")]), 0);
}

/// A frame header claiming `len` bytes of payload, followed by `follow` bytes.
fn frame_claiming(kind: u8, len: u32, follow: usize) -> Vec<u8> {
    let mut b = vec![0u8; 12];
    b[4] = kind;
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b.extend(std::iter::repeat_n(0x41, follow));
    b
}

#[test]
fn a_frame_length_of_4_gib_is_refused_without_allocating_it() {
    for len in [
        u32::MAX,
        1 << 31,
        MAX_PAYLOAD as u32 + 1,
        MAX_PAYLOAD as u32,
    ] {
        for kind in 1..=5 {
            let f = frame_claiming(kind, len, 100);
            check_frame(&f);
            let mut seg = encode_header(0, "2026-01-01T00:00:00.000000Z-0123456789ab").to_vec();
            seg.extend_from_slice(&f);
            check_segment(&seg);
        }
    }
    assert_bounded("frames claiming 4 GiB");
}

#[test]
fn string_lengths_of_4_gib_inside_payloads_are_refused_without_allocating_them() {
    let huge = u32::MAX.to_le_bytes();
    // BEGIN: fixed part, then a run id claiming 4 GiB.
    let mut begin = vec![0u8; 12];
    begin.extend_from_slice(&huge);
    begin.extend_from_slice(b"abc");
    // RECORD: a target claiming 4 GiB; and 65535 key-values that are not there.
    let mut record = vec![0u8; 16];
    record[8] = 3;
    record[9] = 4;
    let mut kvs = record.clone();
    record.extend_from_slice(&huge);
    kvs[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
    kvs.extend_from_slice(&[0; 8]);
    // LABEL: a key claiming 4 GiB.
    let mut label = huge.to_vec();
    label.extend_from_slice(b"k");
    for (kind, p) in [
        (FrameType::Begin, &begin),
        (FrameType::Record, &record),
        (FrameType::Record, &kvs),
        (FrameType::Label, &label),
    ] {
        check_payload(kind, p);
        check_frame(&encode_frame(kind, p));
    }
    assert_bounded("payload strings claiming 4 GiB");
}

#[test]
fn a_chunk_claiming_a_content_size_of_4_gib_is_refused_without_allocating_it() {
    // A Zstandard frame (RFC 8878): single segment, 8-byte content size = 4 GiB, checksum
    // flag; one raw block of 5 bytes; a checksum.
    let mut z = vec![0x28, 0xb5, 0x2f, 0xfd, 0b1110_0100];
    z.extend_from_slice(&(4u64 << 30).to_le_bytes());
    z.extend_from_slice(&[(5 << 3) | 1, 0, 0]);
    z.extend_from_slice(b"hello");
    z.extend_from_slice(&[0; 4]);
    assert!(matches!(decode_chunk(&z), Err(ChunkError::Decompress(_))));
    check_redis_chunk(&z);
    // A real chunk whose content size was changed to claim 4 GiB.
    let mut good = compress_chunk(&[3, 0, 0, 0, b'a', b'b', b'c']);
    assert_eq!(good[4] & 0xc0, 0, "1-byte content size field expected");
    good[4] |= 0xc0;
    let at = 5 + usize::from(good[4] & 0x20 == 0);
    good.splice(at..at + 1, (4u64 << 30).to_le_bytes());
    assert!(decode_chunk(&good).is_err());
    check_redis_chunk(&good);
    // Decompressed content whose first length claims 4 GiB.
    let mut raw = u32::MAX.to_le_bytes().to_vec();
    raw.extend_from_slice(b"abc");
    check_redis_chunk(&raw);
    check_redis_chunk(&compress_chunk(&raw));
    // No content size, and more than 2 MiB of content: refused, bounded.
    let big = zstd::stream::encode_all(&vec![0u8; 3 << 20][..], 1).expect("zstd");
    assert!(decode_chunk(&big).is_err());
    check_redis_chunk(&big);
    assert_bounded("chunks claiming 4 GiB");
}

// ---------------------------------------------------------------------------------------------
// Seeds

fn sample_records() -> Vec<Record> {
    let mut out = Vec::new();
    for i in 0..40i64 {
        out.push(Record {
            ts_ns: 1_764_331_855_000_000_000 + i * 1_000,
            level: [log::Level::Info, log::Level::Warn, log::Level::Error][i as usize % 3],
            target: if i % 2 == 0 {
                "app::db"
            } else {
                "runlog::error"
            }
            .into(),
            module_path: match i % 3 {
                0 => None,
                1 => Some("app::db".into()),
                _ => Some("app::db::pool".into()),
            },
            file: (i % 4 != 0).then(|| "src/db.rs".into()),
            line: (i % 5 != 0).then_some(i as u32),
            kvs: (0..i % 3)
                .map(|k| (format!("k{k}"), format!("väl {i}")))
                .collect(),
            message: format!("processed item {i}: naïve ☃ {}", "x".repeat(i as usize)),
            truncated: i == 7,
        });
    }
    out
}

fn write_seed(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("seeds").join(target);
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join(name), data).expect("write");
}

/// Writes `fuzz/seeds/`: the golden segments of `spec/vectors/` (alone and as runs of two
/// segments), their frames and payloads one by one, and chunks built by the shipper's
/// `ChunkBuilder` (compressed and not) with their index.
#[test]
#[ignore = "writes fuzz/seeds/; run by hand when the formats change"]
fn regenerate_seed_corpora() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors");
    let mut segs = Vec::new();
    for p in files_in(&vectors) {
        if p.extension().is_some_and(|e| e == "seg") {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            segs.push((name, fs::read(&p).expect("read")));
        }
    }
    for (name, data) in &segs {
        write_seed("segment", name, data);
    }
    let find = |n: &str| &segs.iter().find(|(name, _)| name == n).expect(n).1;
    let mut two = find("valid.seg").clone();
    two.extend_from_slice(find("second-segment.seg"));
    write_seed("segment", "valid+second-segment.seg", &two);
    assert_eq!(split_segments(&two).len(), 2);
    let mut frames = 0;
    for (name, data) in &segs {
        let Ok(scan) = scan_segment(data) else {
            continue;
        };
        write_seed("frame", &format!("header-{name}"), &data[..HEADER_LEN]);
        for f in scan.frames {
            let at = f.offset as usize;
            let len = u32::from_le_bytes(data[at + 8..at + 12].try_into().expect("4"));
            let frame = &data[at..at + 12 + len as usize];
            write_seed("frame", &format!("frame-{frames:03}"), frame);
            write_seed("frame", &format!("payload-{frames:03}"), &frame[12..]);
            frames += 1;
        }
    }
    let records = sample_records();
    for (i, r) in records.iter().enumerate().step_by(7) {
        let p = encode_record(r);
        write_seed(
            "frame",
            &format!("record-{i:02}"),
            &encode_frame(FrameType::Record, &p),
        );
        let payload = encode_payload(&Frame::Record(r.clone()));
        assert_eq!(payload, p);
    }
    let mut b = ChunkBuilder::new().expect("zstd");
    let mut raw = Vec::new();
    for r in &records {
        let p = encode_record(r);
        b.push(&p).expect("push");
        raw.extend_from_slice(&(p.len() as u32).to_le_bytes());
        raw.extend_from_slice(&p);
    }
    let chunks = b.finish().expect("finish");
    assert_eq!(chunks.len(), 1);
    write_seed("redis_chunk", "chunk-40-records.zst", &chunks[0].data);
    write_seed("redis_chunk", "chunk-40-records.raw", &raw);
    let mut b = ChunkBuilder::new().expect("zstd");
    b.push(&encode_record(&records[3])).expect("push");
    let one = b.finish().expect("finish");
    write_seed("redis_chunk", "chunk-1-record.zst", &one[0].data);
    write_seed(
        "redis_chunk",
        "index.txt",
        chunks[0].index_line().as_bytes(),
    );
    write_seed(
        "redis_chunk",
        "index-3.txt",
        b"1764331855000000000 1764331855000039000 40\n-5 7 1\n0 0 18446744073709551615\n",
    );
    write_seed("redis_chunk", "job.txt", b"nightly%20%7Beu%7D%20report");
}
