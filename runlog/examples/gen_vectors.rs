//! Writes the golden journal segments of `spec/vectors/` and their expected decodes.
//!
//! ```text
//! cargo run -p runlog --example gen_vectors            # rewrites spec/vectors/*.seg, *.expected
//! cargo run -p runlog --example gen_vectors -- DIR     # writes them into DIR instead
//! ```
//!
//! Every vector is built here from the public encoders, deterministically (fixed ids, times and
//! bytes), so `runlog/tests/vectors.rs` can rebuild them and require byte-identical files: an
//! encoder change that alters the format fails that test until the spec, the vectors and the
//! format version are changed together. The `.expected` text is the reader's decode, rendered
//! by [`render`]; its format is described in `spec/vectors/README.md`.

use std::fmt::Write as _;
use std::path::PathBuf;

use runlog::journal::frame::{
    encode_frame, encode_header, FrameType, FRAME_HEADER_LEN, HEADER_LEN,
};
use runlog::journal::payload::{
    encode_begin, encode_end, encode_label, encode_record, Begin, End, Frame, Outcome, Record,
};
use runlog::journal::reader::{scan_segment, SegmentEnd};

/// The run id every vector uses (exactly the 40 bytes of the header's run id field).
pub(crate) const RUN_ID: &str = "2026-11-28T12:10:55.123456Z-0123456789ab";
/// The start time in `RUN_ID`, in nanoseconds since the epoch (plus 789 ns below the µs).
pub(crate) const T0: i64 = 1_795_867_855_123_456_789;
/// The job of every vector: its directory name would be `nightly%2Freport%20%E2%9C%93`.
pub(crate) const JOB: &str = "nightly/report ✓";

/// One golden file.
pub(crate) struct Vector {
    /// File name without `.seg`.
    pub(crate) name: &'static str,
    /// What it shows (first line of its `.expected`).
    pub(crate) about: &'static str,
    /// The segment file's bytes.
    pub(crate) bytes: Vec<u8>,
}

fn begin() -> Vec<u8> {
    encode_frame(
        FrameType::Begin,
        &encode_begin(&Begin {
            start_ns: T0,
            pid: 4242,
            run_id: RUN_ID.into(),
            job: JOB.into(),
            host: "build-01".into(),
        }),
    )
}

#[allow(clippy::too_many_arguments)]
fn rec(
    ms: i64,
    level: log::Level,
    target: &str,
    module: Option<&str>,
    file: Option<&str>,
    line: Option<u32>,
    kvs: &[(&str, &str)],
    message: &str,
) -> Record {
    Record {
        ts_ns: T0 + ms * 1_000_000,
        level,
        target: target.into(),
        module_path: module.map(Into::into),
        file: file.map(Into::into),
        line,
        kvs: kvs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        message: message.into(),
        truncated: false,
    }
}

fn record(r: &Record) -> Vec<u8> {
    encode_frame(FrameType::Record, &encode_record(r))
}

fn label(k: &str, v: &str) -> Vec<u8> {
    encode_frame(FrameType::Label, &encode_label(k, v))
}

fn end(ms: i64, outcome: Outcome, records: u64, dropped: u64) -> Vec<u8> {
    let kind = if outcome == Outcome::Cancelled {
        FrameType::Cancel
    } else {
        FrameType::Commit
    };
    encode_frame(
        kind,
        &encode_end(&End {
            end_ns: T0 + ms * 1_000_000,
            outcome,
            records,
            dropped,
        }),
    )
}

/// The five records of `valid.seg`: every level, every module-path form, key-values, Unicode,
/// control characters, an empty message and the TRUNCATED flag.
fn valid_records() -> Vec<Record> {
    use log::Level::*;
    let mut cut = rec(
        40,
        Error,
        "report",
        Some("report"),
        Some("src/main.rs"),
        Some(99),
        &[],
        "a message cut to fit a segment: 0123456789",
    );
    cut.truncated = true;
    vec![
        rec(
            1,
            Info,
            "report",
            Some("report"),
            Some("src/main.rs"),
            Some(10),
            &[],
            "starting nightly report",
        ),
        rec(
            12,
            Debug,
            "sql",
            Some("report::db"),
            Some("src/db.rs"),
            Some(42),
            &[("user", "bär"), ("rows", "3")],
            "query took 12 ms",
        ),
        rec(
            20,
            Warn,
            "report",
            None,
            None,
            None,
            &[],
            "naïve café ✓ — 日本語\ttab\nsecond line",
        ),
        rec(
            30,
            Trace,
            "report::fmt",
            Some("report::fmt"),
            None,
            Some(7),
            &[("k", "")],
            "",
        ),
        cut,
    ]
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn header0() -> Vec<u8> {
    encode_header(0, RUN_ID).to_vec()
}

fn valid() -> Vec<u8> {
    let mut v = header0();
    v.extend(begin());
    for r in valid_records() {
        v.extend(record(&r));
    }
    v.extend(label("user", "bar"));
    v.extend(end(2_000, Outcome::Ok, 5, 0));
    v
}

fn simple(i: i64) -> Record {
    rec(
        i,
        log::Level::Info,
        "report",
        Some("report"),
        Some("src/main.rs"),
        Some(20 + i as u32),
        &[],
        &format!("processed item {i} of 3"),
    )
}

/// Every vector, in the order the README lists them.
pub(crate) fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let mut add = |name, about, bytes| out.push(Vector { name, about, bytes });

    add(
        "valid",
        "a committed run: BEGIN, five records, a label, COMMIT (ok)",
        valid(),
    );

    add(
        "failed",
        "a run that failed and could not write 7 records: COMMIT with outcome failed",
        cat(&[
            &header0(),
            &begin(),
            &record(&rec(
                5,
                log::Level::Error,
                "runlog::error",
                None,
                None,
                None,
                &[],
                "run failed: cannot write report\ncaused by: No space left on device (os error 28)",
            )),
            &end(6, Outcome::Failed, 1, 7),
        ]),
    );

    add(
        "cancelled",
        "a cancelled run: BEGIN, a record, CANCEL",
        cat(&[
            &header0(),
            &begin(),
            &record(&simple(1)),
            &end(3, Outcome::Cancelled, 1, 0),
        ]),
    );

    add(
        "second-segment",
        "segment 1 of a run (no BEGIN; it continues segment 0): a record, a label, COMMIT",
        cat(&[
            &encode_header(1, RUN_ID),
            &record(&simple(2)),
            &label("rows", "1234"),
            &end(9, Outcome::Ok, 2, 0),
        ]),
    );

    add(
        "zero-tail",
        "a run without an end marker in a preallocated segment: frames, then zeros to 1024 bytes",
        {
            let mut v = cat(&[
                &header0(),
                &begin(),
                &record(&simple(1)),
                &record(&simple(2)),
                &label("user", "bar"),
            ]);
            v.resize(1024, 0);
            v
        },
    );

    add(
        "torn-tail",
        "a valid prefix and the first 20 bytes of a record frame (header + 8 payload bytes)",
        {
            let third = record(&simple(3));
            cat(&[
                &header0(),
                &begin(),
                &record(&simple(1)),
                &record(&simple(2)),
                &third[..FRAME_HEADER_LEN + 8],
            ])
        },
    );

    add(
        "killed-mid-frame",
        "a writer killed while copying a record into its preallocated segment: payload bytes \
         present, frame header (written last) still zero, zeros after",
        {
            let r = record(&simple(2));
            let mut v = cat(&[&header0(), &begin(), &record(&simple(1))]);
            v.extend(std::iter::repeat_n(0u8, FRAME_HEADER_LEN));
            v.extend_from_slice(&r[FRAME_HEADER_LEN..]);
            v.resize(1024, 0);
            v
        },
    );

    add(
        "bad-crc-mid",
        "one byte of the second record's message changed ('2' -> '3'), valid frames after it: \
         corruption",
        {
            let mut bad = record(&simple(2));
            let at = bad.len() - " of 3".len() - 1;
            assert_eq!(bad[at], b'2');
            bad[at] = b'3';
            cat(&[
                &header0(),
                &begin(),
                &record(&simple(1)),
                &bad,
                &record(&simple(3)),
                &end(4, Outcome::Ok, 3, 0),
            ])
        },
    );

    add(
        "huge-length-mid",
        "a frame whose length field says 0xFFFFFFFF, valid frames after it: corruption, and \
         nothing allocated for the length",
        {
            let mut bad = record(&simple(2));
            bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
            cat(&[
                &header0(),
                &begin(),
                &record(&simple(1)),
                &bad,
                &record(&simple(3)),
                &end(4, Outcome::Ok, 3, 0),
            ])
        },
    );

    add(
        "malformed-payload",
        "a CRC-valid record frame whose level byte is 9: decoded as an error, scan continues, \
         the segment is corrupt",
        {
            let mut p = encode_record(&simple(2));
            p[8] = 9;
            cat(&[
                &header0(),
                &begin(),
                &record(&simple(1)),
                &encode_frame(FrameType::Record, &p),
                &record(&simple(3)),
                &end(4, Outcome::Ok, 3, 0),
            ])
        },
    );

    add(
        "bad-magic",
        "valid.seg with its first byte changed to 'X': not a runlog segment",
        {
            let mut v = valid();
            v[0] = b'X';
            v
        },
    );

    add(
        "future-version",
        "a segment header of format version 2 (with a correct header CRC): refused as newer",
        {
            let mut v = valid();
            v[8..10].copy_from_slice(&2u16.to_le_bytes());
            let crc = crc32(&v[..60]);
            v[60..64].copy_from_slice(&crc.to_le_bytes());
            v
        },
    );

    add(
        "bad-header-crc",
        "valid.seg with one byte of the header's run id changed: header CRC mismatch",
        {
            let mut v = valid();
            v[16] = b'1';
            v
        },
    );

    add(
        "short-header",
        "the first 40 bytes of a segment header: what a crash during creation can leave",
        header0()[..40].to_vec(),
    );

    out
}

/// CRC-32/ISO-HDLC written out bit by bit (reflected polynomial 0xEDB88320, init and xorout
/// 0xFFFFFFFF), independent of `crc32fast`, to re-seal the future-version header.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn level_name(l: log::Level) -> &'static str {
    match l {
        log::Level::Error => "ERROR",
        log::Level::Warn => "WARN",
        log::Level::Info => "INFO",
        log::Level::Debug => "DEBUG",
        log::Level::Trace => "TRACE",
    }
}

/// The expected decode of a segment file, as text (format: `spec/vectors/README.md`).
pub(crate) fn render(name: &str, about: &str, bytes: &[u8]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {name}.seg: {about}");
    let _ = writeln!(o, "size {}", bytes.len());
    let scan = match scan_segment(bytes) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(o, "header-error {e:?}: {e}");
            return o;
        }
    };
    let h = &scan.header;
    let _ = writeln!(
        o,
        "header version={} seq={} run_id={:?}",
        h.version, h.seq, h.run_id
    );
    debug_assert_eq!(
        scan.frames.first().map_or(HEADER_LEN as u64, |f| f.offset),
        HEADER_LEN as u64
    );
    for (i, f) in scan.frames.iter().enumerate() {
        let next = scan.frames.get(i + 1).map_or(scan.valid_len, |n| n.offset);
        let _ = write!(o, "frame @{} len={} ", f.offset, next - f.offset);
        match &f.frame {
            Err(e) => {
                let _ = write!(o, "{} payload-error {:?}", e.kind.name(), e.what);
            }
            Ok(Frame::Begin(b)) => {
                let _ = write!(
                    o,
                    "BEGIN start_ns={} pid={} run_id={:?} job={:?} host={:?}",
                    b.start_ns, b.pid, b.run_id, b.job, b.host
                );
            }
            Ok(Frame::Record(r)) => {
                let _ = write!(
                    o,
                    "RECORD ts_ns={} level={} target={:?} module={:?} file={:?} line={:?} \
                     truncated={} kvs=[",
                    r.ts_ns,
                    level_name(r.level),
                    r.target,
                    r.module_path,
                    r.file,
                    r.line,
                    r.truncated
                );
                for (j, (k, v)) in r.kvs.iter().enumerate() {
                    let sep = if j == 0 { "" } else { " " };
                    let _ = write!(o, "{sep}{k:?}={v:?}");
                }
                let _ = write!(o, "] message={:?}", r.message);
            }
            Ok(Frame::Label { key, value }) => {
                let _ = write!(o, "LABEL key={key:?} value={value:?}");
            }
            Ok(Frame::End(e)) => {
                let kind = if e.outcome == Outcome::Cancelled {
                    "CANCEL"
                } else {
                    "COMMIT"
                };
                let _ = write!(
                    o,
                    "{kind} end_ns={} outcome={:?} records={} dropped={}",
                    e.end_ns, e.outcome, e.records, e.dropped
                );
            }
        }
        o.push('\n');
    }
    match &scan.end {
        SegmentEnd::Clean => {
            let _ = writeln!(o, "end clean");
        }
        SegmentEnd::ZeroTail { offset } => {
            let _ = writeln!(o, "end zero-tail @{offset}");
        }
        SegmentEnd::TornTail { offset, error } => {
            let _ = writeln!(o, "end torn-tail @{offset} {error:?}: {error}");
        }
        SegmentEnd::Corrupt {
            offset,
            error,
            next_valid,
        } => {
            let _ = writeln!(
                o,
                "end corrupt @{offset} {error:?}: {error}; next valid frame @{}",
                next_valid.map_or("none".to_owned(), |n| n.to_string())
            );
        }
    }
    let _ = writeln!(o, "valid_len {}", scan.valid_len);
    let _ = writeln!(o, "is_corrupt {}", scan.is_corrupt());
    o
}

/// `spec/vectors/` of this workspace.
pub(crate) fn default_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(default_dir, PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    for v in vectors() {
        std::fs::write(dir.join(format!("{}.seg", v.name)), &v.bytes)?;
        std::fs::write(
            dir.join(format!("{}.expected", v.name)),
            render(v.name, v.about, &v.bytes),
        )?;
        println!("{}.seg ({} bytes)", v.name, v.bytes.len());
    }
    Ok(())
}
