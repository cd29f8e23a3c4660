//! The golden segments of `spec/vectors/` and the byte tables of `spec/journal.md` against the
//! code: the reader must decode every vector as its `.expected` file says, the encoders must
//! rebuild every vector byte for byte, and every offset, size and constant the spec names must
//! be the one the code uses. Prose and golden bytes cannot drift from the encoders silently.

#[allow(dead_code)]
#[path = "../examples/gen_vectors.rs"]
mod gen_vectors;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use runlog::journal::frame::{
    decode_frame, decode_header, encode_frame, encode_header, frame_crc, FrameType, HeaderError,
    END_FRAME_LEN, END_PAYLOAD_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, HEADER_LEN, MAGIC,
    MAX_PAYLOAD, RUN_ID_FIELD_LEN,
};
use runlog::journal::layout::{
    decode_job, encode_job, fnv1a64, is_run_id, parse_segment_name, segment_name, MAX_ENCODED_JOB,
    RUN_ID_LEN,
};
use runlog::journal::payload::{
    encode_begin, encode_end, encode_label, encode_record, Begin, End, Outcome, Record,
    REC_MODULE_IS_TARGET, REC_NO_MODULE, REC_TRUNCATED,
};
use runlog::journal::reader::{scan_segment, MAX_SEGMENT_FILE};
use runlog::journal::shipped;

fn vectors_dir() -> PathBuf {
    gen_vectors::default_dir()
}

fn spec() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/journal.md")).unwrap()
}

fn files_with_ext(ext: &str) -> BTreeSet<String> {
    fs::read_dir(vectors_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(&format!(".{ext}")).map(str::to_owned)
        })
        .collect()
}

#[test]
fn every_vector_file_decodes_exactly_as_its_expected_file_says() {
    let segs = files_with_ext("seg");
    assert!(segs.len() >= 8, "{segs:?}");
    assert_eq!(
        segs,
        files_with_ext("expected"),
        "every .seg needs a .expected"
    );
    for name in &segs {
        let dir = vectors_dir();
        let bytes = fs::read(dir.join(format!("{name}.seg"))).unwrap();
        let expected = fs::read_to_string(dir.join(format!("{name}.expected"))).unwrap();
        let first = expected.lines().next().unwrap_or_default();
        let about = first
            .strip_prefix(&format!("# {name}.seg: "))
            .unwrap_or_else(|| panic!("{name}.expected starts with {first:?}"));
        let got = gen_vectors::render(name, about, &bytes);
        assert_eq!(
            got, expected,
            "{name}.seg decodes differently from {name}.expected"
        );
    }
}

#[test]
fn regenerating_the_vectors_from_the_encoders_gives_byte_identical_files() {
    let dir = vectors_dir();
    let vectors = gen_vectors::vectors();
    let names: BTreeSet<String> = vectors.iter().map(|v| v.name.to_owned()).collect();
    assert_eq!(names.len(), vectors.len(), "duplicate vector names");
    assert_eq!(
        names,
        files_with_ext("seg"),
        "stale or missing files in spec/vectors"
    );
    for v in &vectors {
        let on_disk = fs::read(dir.join(format!("{}.seg", v.name))).unwrap();
        assert!(
            on_disk == v.bytes,
            "{}.seg differs from what the encoders make now (first difference at byte {:?}); \
             if the format changed on purpose, bump FORMAT_VERSION, update spec/journal.md and \
             run `cargo run -p runlog --example gen_vectors`",
            v.name,
            on_disk.iter().zip(&v.bytes).position(|(a, b)| a != b)
        );
        let expected = fs::read_to_string(dir.join(format!("{}.expected", v.name))).unwrap();
        assert_eq!(
            gen_vectors::render(v.name, v.about, &v.bytes),
            expected,
            "{}",
            v.name
        );
    }
}

#[test]
fn every_vector_is_listed_in_the_readme_with_its_size() {
    let readme = fs::read_to_string(vectors_dir().join("README.md")).unwrap();
    for v in gen_vectors::vectors() {
        let row = format!("| `{}.seg` | {} |", v.name, v.bytes.len());
        assert!(readme.contains(&row), "README.md lacks the row {row:?}");
    }
}

#[test]
fn the_required_vectors_decode_to_the_required_classes() {
    // The brief's list, asserted directly so that a regenerated .expected cannot quietly
    // weaken it.
    let read = |n: &str| fs::read(vectors_dir().join(format!("{n}.seg"))).unwrap();
    use runlog::journal::reader::SegmentEnd as E;
    let s = scan_segment(&read("valid")).unwrap();
    assert_eq!(
        (s.end.clone(), s.frames.len(), s.is_corrupt()),
        (E::Clean, 8, false)
    );
    assert!(matches!(
        scan_segment(&read("torn-tail")).unwrap().end,
        E::TornTail { offset: 314, .. }
    ));
    assert_eq!(
        scan_segment(&read("zero-tail")).unwrap().end,
        E::ZeroTail { offset: 341 }
    );
    assert!(matches!(
        scan_segment(&read("bad-crc-mid")).unwrap().end,
        E::Corrupt {
            offset: 240,
            next_valid: Some(314),
            ..
        }
    ));
    assert_eq!(scan_segment(&read("bad-magic")), Err(HeaderError::BadMagic));
    let e = scan_segment(&read("future-version")).unwrap_err();
    assert_eq!(e, HeaderError::UnsupportedVersion(2));
    assert!(
        e.to_string().contains("newer than this runlog understands"),
        "{e}"
    );
    let s = scan_segment(&read("cancelled")).unwrap();
    assert!(matches!(
        s.frames.last().unwrap().frame,
        Ok(runlog::journal::payload::Frame::End(End {
            outcome: Outcome::Cancelled,
            ..
        }))
    ));
    let s = scan_segment(&read("malformed-payload")).unwrap();
    assert!(s.is_corrupt() && s.end == E::Clean && s.frames[2].frame.is_err());
}

#[test]
fn reading_past_corruption_resumes_at_the_next_valid_frame_of_the_vectors() {
    use runlog::journal::reader::{scan_segment_past_damage, SegmentEnd as E};
    let read = |n: &str| fs::read(vectors_dir().join(format!("{n}.seg"))).unwrap();
    for name in ["bad-crc-mid", "huge-length-mid"] {
        let s = scan_segment_past_damage(&read(name)).unwrap();
        let offsets: Vec<u64> = s.frames.iter().map(|f| f.offset).collect();
        assert_eq!(offsets, [64, 166, 314, 388], "{name}");
        assert_eq!(s.skipped.len(), 1, "{name}");
        let k = &s.skipped[0];
        assert_eq!(
            (k.offset, k.next_valid, k.before_frame),
            (240, 314, 2),
            "{name}"
        );
        assert_eq!((s.end.clone(), s.valid_len), (E::Clean, 432), "{name}");
        assert!(s.is_corrupt(), "{name}");
    }
    // A torn tail stays a torn tail, and a clean segment reads as `scan_segment` reads it.
    for name in ["torn-tail", "killed-mid-frame", "zero-tail", "valid"] {
        let s = scan_segment_past_damage(&read(name)).unwrap();
        assert_eq!(s, scan_segment(&read(name)).unwrap(), "{name}");
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// (offset, size, field) rows of the first table after `### heading` in the spec; rows whose
/// size is not a number (variable-length fields) are skipped.
fn spec_table(spec: &str, heading: &str) -> Vec<(usize, usize, String)> {
    let start = spec
        .lines()
        .position(|l| l.trim() == format!("### {heading}"))
        .unwrap_or_else(|| panic!("spec/journal.md has no `### {heading}`"));
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in spec.lines().skip(start + 1) {
        if line.starts_with('|') {
            in_table = true;
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if let (Some(Ok(off)), Some(Ok(size)), Some(field)) = (
                cells.first().map(|c| c.parse::<usize>()),
                cells.get(1).map(|c| c.parse::<usize>()),
                cells.get(2),
            ) {
                rows.push((off, size, field.trim_matches('`').to_owned()));
            }
        } else if in_table {
            break;
        }
    }
    assert!(!rows.is_empty(), "no rows under `### {heading}`");
    rows
}

fn rows(list: &[(usize, usize, &str)]) -> Vec<(usize, usize, String)> {
    list.iter().map(|&(o, s, f)| (o, s, f.to_owned())).collect()
}

/// Fixed fields lie back to back from offset 0 and end at `end`.
fn assert_contiguous(table: &[(usize, usize, String)], end: usize) {
    let mut at = 0;
    for (o, s, f) in table {
        assert_eq!(*o, at, "field {f} should start at {at}");
        at += s;
    }
    assert_eq!(at, end);
}

#[test]
fn segment_header_bytes_sit_where_the_spec_table_says() {
    let t = spec_table(&spec(), "Segment header");
    let want = rows(&[
        (0, 8, "magic"),
        (8, 2, "version"),
        (10, 2, "header_len"),
        (12, 4, "seq"),
        (16, 40, "run_id"),
        (56, 4, "reserved"),
        (60, 4, "header_crc"),
    ]);
    assert_eq!(t, want);
    assert_contiguous(&t, HEADER_LEN);

    let h = encode_header(0x0403_0201, gen_vectors::RUN_ID);
    assert_eq!(h.len(), 64);
    assert_eq!(&h[0..8], b"RUNLOGJ\n");
    assert_eq!(MAGIC, *b"RUNLOGJ\n");
    assert_eq!(le16(&h, 8), 1);
    assert_eq!(le16(&h, 10), 64);
    assert_eq!(&h[12..16], &[1, 2, 3, 4], "seq is little-endian");
    assert_eq!(&h[16..56], gen_vectors::RUN_ID.as_bytes());
    assert_eq!(&h[56..60], &[0; 4]);
    assert_eq!(le32(&h, 60), gen_vectors::crc32(&h[..60]));
    // A short id is NUL-padded.
    let h = encode_header(0, "abc");
    assert_eq!(&h[16..19], b"abc");
    assert!(h[19..56].iter().all(|&b| b == 0));
    assert_eq!(decode_header(&h).unwrap().run_id, "abc");
}

#[test]
fn frame_header_bytes_and_crc_coverage_are_what_the_spec_says() {
    let t = spec_table(&spec(), "Frame header");
    assert_eq!(
        t,
        rows(&[
            (0, 4, "crc"),
            (4, 1, "type"),
            (5, 1, "flags"),
            (6, 2, "reserved"),
            (8, 4, "len"),
        ])
    );
    assert_contiguous(&t, FRAME_HEADER_LEN);

    let f = encode_frame(FrameType::Label, b"payload");
    assert_eq!(f.len(), 12 + 7);
    assert_eq!(f[4], 3, "type LABEL = 3");
    assert_eq!(f[5], 0, "flags");
    assert_eq!(&f[6..8], &[0, 0], "reserved");
    assert_eq!(le32(&f, 8), 7, "len");
    assert_eq!(&f[12..], b"payload");
    // The CRC covers bytes 4..12 then the payload, and is CRC-32/ISO-HDLC.
    assert_eq!(le32(&f, 0), gen_vectors::crc32(&f[4..]));
    assert_eq!(frame_crc(b"1234", b"56789"), 0xCBF4_3926);
    assert_eq!(gen_vectors::crc32(b"123456789"), 0xCBF4_3926);
    for (t, v) in [
        (FrameType::Begin, 1),
        (FrameType::Record, 2),
        (FrameType::Label, 3),
        (FrameType::Commit, 4),
        (FrameType::Cancel, 5),
    ] {
        assert_eq!(t as u8, v);
        assert_eq!(FrameType::from_u8(v), Some(t));
    }
    assert_eq!(
        FrameType::from_u8(0),
        None,
        "zero must never be a frame type"
    );
    assert!((6..=255).all(|b| FrameType::from_u8(b).is_none()));
    assert!(decode_frame(&[0u8; 64]).is_err());
}

fn sample_record() -> Record {
    Record {
        ts_ns: -2,
        level: log::Level::Warn,
        target: "tgt".into(),
        module_path: Some("m::d".into()),
        file: Some("f.rs".into()),
        line: Some(0x0A0B_0C0D),
        kvs: vec![("k".into(), "v".into())],
        message: "msg".into(),
        truncated: true,
    }
}

#[test]
fn payload_fields_sit_where_the_spec_tables_say() {
    let spec = spec();
    let t = spec_table(&spec, "BEGIN payload");
    assert_eq!(t, rows(&[(0, 8, "start_ns"), (8, 4, "pid")]));
    let b = encode_begin(&Begin {
        start_ns: -1,
        pid: 0x0102_0304,
        run_id: "id".into(),
        job: "j".into(),
        host: "h".into(),
    });
    assert_eq!(le64(&b, 0), u64::MAX, "i64 -1");
    assert_eq!(le32(&b, 8), 0x0102_0304);
    assert_eq!(&b[12..], b"\x02\0\0\0id\x01\0\0\0j\x01\0\0\0h");

    let t = spec_table(&spec, "RECORD payload");
    assert_eq!(
        t,
        rows(&[
            (0, 8, "ts_ns"),
            (8, 1, "level"),
            (9, 1, "flags"),
            (10, 2, "kv_count"),
            (12, 4, "line"),
        ])
    );
    let r = encode_record(&sample_record());
    assert_eq!(le64(&r, 0) as i64, -2);
    assert_eq!(r[8], 2, "warn");
    assert_eq!(r[9], REC_TRUNCATED);
    assert_eq!(le16(&r, 10), 1);
    assert_eq!(le32(&r, 12), 0x0A0B_0C0D);
    assert_eq!(
        &r[16..],
        b"\x03\0\0\0tgt\x04\0\0\0m::d\x04\0\0\0f.rs\x01\0\0\0k\x01\0\0\0vmsg"
    );
    let mut same = sample_record();
    same.module_path = Some("tgt".into());
    same.truncated = false;
    same.line = None;
    let r = encode_record(&same);
    assert_eq!((r[9], le32(&r, 12)), (REC_MODULE_IS_TARGET, 0));
    assert_eq!(&r[16..27], b"\x03\0\0\0tgt\x04\0\0\0", "no module str");
    same.module_path = None;
    same.file = None;
    let r = encode_record(&same);
    assert_eq!(r[9], REC_NO_MODULE);
    assert_eq!(&r[16..27], b"\x03\0\0\0tgt\0\0\0\0", "empty file str");
    for (lvl, b) in [
        (log::Level::Error, 1),
        (log::Level::Warn, 2),
        (log::Level::Info, 3),
        (log::Level::Debug, 4),
        (log::Level::Trace, 5),
    ] {
        assert_eq!(runlog::journal::payload::level_from_u8(b), Some(lvl));
    }

    assert_eq!(encode_label("k", "vv"), b"\x01\0\0\0k\x02\0\0\0vv");

    let t = spec_table(&spec, "COMMIT and CANCEL payload");
    assert_eq!(
        t,
        rows(&[
            (0, 8, "end_ns"),
            (8, 1, "outcome"),
            (9, 7, "reserved"),
            (16, 8, "records"),
            (24, 8, "dropped"),
        ])
    );
    assert_contiguous(&t, END_PAYLOAD_LEN);
    for (outcome, byte) in [
        (Outcome::Ok, 0),
        (Outcome::Failed, 1),
        (Outcome::Cancelled, 2),
    ] {
        let e = encode_end(&End {
            end_ns: 0x1122_3344_5566_7788,
            outcome,
            records: 5,
            dropped: 0x0102_0304_0506_0708,
        });
        assert_eq!(e.len(), 32);
        assert_eq!(le64(&e, 0), 0x1122_3344_5566_7788);
        assert_eq!(e[8], byte);
        assert_eq!(&e[9..16], &[0; 7]);
        assert_eq!(le64(&e, 16), 5);
        assert_eq!(le64(&e, 24), 0x0102_0304_0506_0708);
    }
}

/// Evaluate a constant expression from the source: integers (with `_`), `<<`, `+`, `*` and
/// parentheses — what the journal's constants are written with.
fn eval(expr: &str) -> u64 {
    fn sum(t: &[String], i: &mut usize) -> u64 {
        let mut v = shift(t, i);
        while t.get(*i).is_some_and(|x| x == "+") {
            *i += 1;
            v += shift(t, i);
        }
        v
    }
    fn shift(t: &[String], i: &mut usize) -> u64 {
        let mut v = prod(t, i);
        while t.get(*i).is_some_and(|x| x == "<<") {
            *i += 1;
            v <<= prod(t, i);
        }
        v
    }
    fn prod(t: &[String], i: &mut usize) -> u64 {
        let mut v = atom(t, i);
        while t.get(*i).is_some_and(|x| x == "*") {
            *i += 1;
            v *= atom(t, i);
        }
        v
    }
    fn atom(t: &[String], i: &mut usize) -> u64 {
        let tok = &t[*i];
        *i += 1;
        if tok == "(" {
            let v = sum(t, i);
            assert_eq!(t[*i], ")");
            *i += 1;
            v
        } else {
            tok.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("token {tok:?}"))
        }
    }
    let toks: Vec<String> = expr
        .replace("<<", " << ")
        .chars()
        .flat_map(|c| {
            if matches!(c, '(' | ')' | '+' | '*') {
                vec![' ', c, ' ']
            } else {
                vec![c]
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut i = 0;
    let v = sum(&toks, &mut i);
    assert_eq!(i, toks.len(), "could not evaluate {expr:?}");
    v
}

/// The value of `const NAME: T = EXPR;` in the crate's sources (for constants that are not
/// public).
fn source_const(name: &str) -> u64 {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut stack = vec![src];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&p).unwrap();
                for line in text.lines() {
                    let l = line.trim_start();
                    let Some(i) = l.find(&format!("const {name}:")) else {
                        continue;
                    };
                    let vis = l[..i].trim_end();
                    if !(vis.is_empty() || vis == "pub" || vis == "pub(crate)") {
                        continue;
                    }
                    let rhs = l.split_once('=').unwrap().1;
                    let rhs = rhs.split(';').next().unwrap();
                    found.push(eval(rhs.trim()));
                }
            }
        }
    }
    assert_eq!(found.len(), 1, "const {name} in runlog/src: {found:?}");
    found[0]
}

#[test]
fn every_constant_in_the_spec_has_the_value_the_code_uses() {
    let spec = spec();
    let start = spec.lines().position(|l| l == "## Constants").unwrap();
    let mut table = BTreeMap::new();
    for line in spec.lines().skip(start + 1) {
        if line.starts_with("## ") {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if let [name, value, ..] = cells[..] {
            if let (Some(n), Ok(v)) = (
                name.strip_prefix('`').and_then(|n| n.strip_suffix('`')),
                value.parse::<u64>(),
            ) {
                table.insert(n.to_owned(), v);
            }
        }
    }
    let public: BTreeMap<&str, u64> = [
        ("FORMAT_VERSION", FORMAT_VERSION as u64),
        ("HEADER_LEN", HEADER_LEN as u64),
        ("RUN_ID_FIELD_LEN", RUN_ID_FIELD_LEN as u64),
        ("FRAME_HEADER_LEN", FRAME_HEADER_LEN as u64),
        ("MAX_PAYLOAD", MAX_PAYLOAD as u64),
        ("END_PAYLOAD_LEN", END_PAYLOAD_LEN as u64),
        ("END_FRAME_LEN", END_FRAME_LEN as u64),
        ("REC_TRUNCATED", REC_TRUNCATED as u64),
        ("REC_MODULE_IS_TARGET", REC_MODULE_IS_TARGET as u64),
        ("REC_NO_MODULE", REC_NO_MODULE as u64),
        ("RUN_ID_LEN", RUN_ID_LEN as u64),
        ("MAX_ENCODED_JOB", MAX_ENCODED_JOB as u64),
        ("MAX_JOB_NAME", runlog::MAX_JOB_NAME as u64),
        ("MAX_SEGMENT_FILE", MAX_SEGMENT_FILE),
        ("SHIPPED_VERSION", shipped::SHIPPED_VERSION as u64),
        ("MAX_SHIPPED_FILE", shipped::MAX_SHIPPED_FILE),
        ("MAX_EPOCH_LEN", shipped::MAX_EPOCH_LEN as u64),
    ]
    .into_iter()
    .collect();
    assert!(table.len() >= 20, "{table:?}");
    for (name, value) in &table {
        let code = match public.get(name.as_str()) {
            Some(v) => *v,
            None => source_const(name),
        };
        assert_eq!(
            *value, code,
            "spec/journal.md says {name} = {value}, the code {code}"
        );
    }
    for name in public.keys() {
        assert!(
            table.contains_key(*name),
            "{name} missing from the spec's constants"
        );
    }
}

fn unquote(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

#[test]
fn job_name_examples_in_the_spec_encode_as_the_code_does() {
    let spec = spec();
    let start = spec
        .lines()
        .position(|l| l == "| Job name | Directory name |")
        .unwrap();
    let mut n = 0;
    for line in spec.lines().skip(start + 2) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let (name, dir) = (unquote(cells[0]).unwrap(), unquote(cells[1]).unwrap());
        assert_eq!(encode_job(name), dir, "job {name:?}");
        assert_eq!(decode_job(dir).as_deref(), Some(name));
        n += 1;
    }
    assert!(n >= 6);
    let long = "x".repeat(200);
    let cut = format!("{}~6ee14c8caecd5c45", "x".repeat(100));
    assert_eq!(encode_job(&long), cut);
    assert!(spec.contains("`~6ee14c8caecd5c45`"));
    assert_eq!(decode_job(&cut), None);
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert!(spec.contains("`\"a\"` → `af63dc4c8601ec8c`"));
    assert_eq!(encode_job(gen_vectors::JOB), "nightly%2Freport%20%E2%9C%93");
}

#[test]
fn segment_names_and_run_ids_have_the_spec_shape() {
    let id = gen_vectors::RUN_ID;
    assert_eq!(id.len(), RUN_ID_LEN);
    assert!(is_run_id(id));
    assert_eq!(
        segment_name(id, 0),
        format!("{id}.000000.seg"),
        "6-digit sequence number"
    );
    assert_eq!(parse_segment_name(&segment_name(id, 42)), Some((id, 42)));
    assert_eq!(parse_segment_name(&format!(".tmp-{id}.000000.seg")), None);
    assert_eq!(parse_segment_name(&format!("{id}.00000.seg")), None);
    assert_eq!(
        runlog::time::format_micros(gen_vectors::T0),
        &id[..27],
        "the id starts with the UTC start time to the microsecond"
    );
}

#[test]
fn the_error_texts_in_the_spec_are_what_the_code_prints() {
    use runlog::journal::frame::FrameError;
    let spec = spec();
    let from = spec.find("**Error texts.**").expect("an Error texts table");
    let to = from
        + spec[from..]
            .find("**Zero never parses.**")
            .expect("the table's end");
    let table = &spec[from..to];
    // (an instance, its row's text with the placeholders filled in as the instance has them)
    let fill = |t: &str, vals: &[(&str, String)]| {
        let mut t = t.to_owned();
        for (k, v) in vals {
            t = t.replace(&format!("{{{k}}}"), v);
        }
        t
    };
    /// The text shown, the row's text, its placeholders' values.
    type Row = (String, &'static str, Vec<(&'static str, String)>);
    let rows: Vec<Row> = vec![
        (
            HeaderError::Short(40).to_string(),
            "file has {n} bytes, shorter than a 64-byte segment header",
            vec![("n", "40".into())],
        ),
        (
            HeaderError::BadMagic.to_string(),
            "bad magic: not a runlog journal segment",
            vec![],
        ),
        (
            HeaderError::UnsupportedVersion(2).to_string(),
            "segment format version {v} is newer than this runlog understands (1); upgrade runlog",
            vec![("v", "2".into())],
        ),
        (
            HeaderError::UnsupportedVersion(0).to_string(),
            "unsupported segment format version {v}",
            vec![("v", "0".into())],
        ),
        (
            HeaderError::BadCrc.to_string(),
            "segment header CRC mismatch",
            vec![],
        ),
        (
            HeaderError::BadHeaderLen(9).to_string(),
            "segment header length {n}, expected 64",
            vec![("n", "9".into())],
        ),
        (
            HeaderError::BadRunId.to_string(),
            "segment header run id is not ASCII",
            vec![],
        ),
        (
            FrameError::ShortHeader.to_string(),
            "fewer than 12 bytes left for a frame header",
            vec![],
        ),
        (
            FrameError::BadType(0).to_string(),
            "invalid frame type {t}",
            vec![("t", "0".into())],
        ),
        (
            FrameError::BadReserved.to_string(),
            "reserved frame header bytes are not zero",
            vec![],
        ),
        (
            FrameError::TooLong(u32::MAX).to_string(),
            "frame length {len} exceeds the maximum 1048576",
            vec![("len", u32::MAX.to_string())],
        ),
        (
            FrameError::Truncated {
                len: 62,
                available: 8,
            }
            .to_string(),
            "frame length {len} but only {available} bytes follow",
            vec![("len", "62".into()), ("available", "8".into())],
        ),
        (
            FrameError::BadCrc {
                stored: 0x9a14ed7e,
                computed: 0x51483edb,
            }
            .to_string(),
            "CRC mismatch (stored {x}, computed {x})",
            vec![],
        ),
    ];
    for (shown, template, vals) in rows {
        assert!(
            table.contains(&format!("`{template}`")),
            "the spec's Error texts table lacks `{template}`"
        );
        let want = if template.contains("{x}") {
            template
                .replacen("{x}", "0x9a14ed7e", 1)
                .replacen("{x}", "0x51483edb", 1)
        } else {
            fill(template, &vals)
        };
        assert_eq!(shown, want);
    }
    // Every payload error text the decoder can give is listed.
    for what in [
        "field runs past the end of the payload",
        "string is not UTF-8",
        "message is not UTF-8",
        "trailing bytes after the last field",
        "invalid level byte",
        "unknown record flags",
        "reserved bytes are not zero",
        "outcome byte does not match the frame type",
    ] {
        assert!(table.contains(&format!("`{what}`")), "{what}");
        assert!(
            fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("src/journal/payload.rs")
            )
            .unwrap()
            .contains(&format!("err(\"{what}\")")),
            "{what} is not a text of payload.rs"
        );
    }
}
