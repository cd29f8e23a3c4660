//! Payload layouts of each frame type (hand-written, little-endian; see `spec/journal.md`).
//!
//! Decoding is bounded by the payload slice: every length is checked against the bytes that are
//! actually there before anything is allocated.

use std::fmt;

use super::frame::{FrameType, RawFrame, END_PAYLOAD_LEN};

/// Record flag: the message was cut to fit the maximum frame size.
pub const REC_TRUNCATED: u8 = 1;
/// Record flag: the module path equals the target and is not stored.
pub const REC_MODULE_IS_TARGET: u8 = 2;
/// Record flag: the record had no module path.
pub const REC_NO_MODULE: u8 = 4;
const REC_KNOWN_FLAGS: u8 = REC_TRUNCATED | REC_MODULE_IS_TARGET | REC_NO_MODULE;

// Record payload fixed part.
pub(crate) const REC_TS: usize = 0;
pub(crate) const REC_LEVEL: usize = REC_TS + 8; // 8
pub(crate) const REC_FLAGS: usize = REC_LEVEL + 1; // 9
pub(crate) const REC_KV_COUNT: usize = REC_FLAGS + 1; // 10
pub(crate) const REC_LINE: usize = REC_KV_COUNT + 2; // 12
/// Size of the fixed part of a record payload.
pub(crate) const REC_FIXED_LEN: usize = REC_LINE + 4; // 16

// End (commit/cancel) payload.
pub(crate) const END_TS: usize = 0;
pub(crate) const END_OUTCOME: usize = END_TS + 8; // 8
pub(crate) const END_RESERVED: usize = END_OUTCOME + 1; // 9
pub(crate) const END_RECORDS: usize = END_RESERVED + 7; // 16
pub(crate) const END_DROPPED: usize = END_RECORDS + 8; // 24
const _: () = assert!(END_DROPPED + 8 == END_PAYLOAD_LEN);

// Begin payload fixed part.
pub(crate) const BEGIN_TS: usize = 0;
pub(crate) const BEGIN_PID: usize = BEGIN_TS + 8; // 8
pub(crate) const BEGIN_FIXED_LEN: usize = BEGIN_PID + 4; // 12

/// How a run ended, as stored in its end frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Outcome {
    /// The run finished normally.
    Ok = 0,
    /// The run panicked or returned an error.
    Failed = 1,
    /// The run was cancelled and is to be forgotten.
    Cancelled = 2,
}

/// The BEGIN frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Begin {
    /// Start time, nanoseconds since the Unix epoch (UTC).
    pub start_ns: i64,
    /// Process id of the writer.
    pub pid: u32,
    /// The run id.
    pub run_id: String,
    /// The job name, exactly as given.
    pub job: String,
    /// Host name of the writer.
    pub host: String,
}

/// A log record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Time the record was logged, nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// Level.
    pub level: log::Level,
    /// `log` target.
    pub target: String,
    /// Module path, if known.
    pub module_path: Option<String>,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line, if known.
    pub line: Option<u32>,
    /// Structured key-values, in logging order, values formatted with `Display`.
    pub kvs: Vec<(String, String)>,
    /// The formatted message.
    pub message: String,
    /// The message was cut to fit the maximum frame size.
    pub truncated: bool,
}

/// The COMMIT and CANCEL frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    /// End time, nanoseconds since the Unix epoch (UTC).
    pub end_ns: i64,
    /// How the run ended.
    pub outcome: Outcome,
    /// Records written to the journal.
    pub records: u64,
    /// Records that could not be written (disk full, I/O error).
    pub dropped: u64,
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Run start.
    Begin(Begin),
    /// A log record.
    Record(Record),
    /// A label.
    Label {
        /// Label key.
        key: String,
        /// Label value.
        value: String,
    },
    /// Run end (COMMIT or CANCEL).
    End(End),
}

/// A frame whose CRC is valid but whose payload does not follow the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadError {
    /// The frame type.
    pub kind: FrameType,
    /// What is wrong.
    pub what: &'static str,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {:?} payload: {}", self.kind, self.what)
    }
}

struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
    kind: FrameType,
}

impl<'a> Rd<'a> {
    fn err(&self, what: &'static str) -> PayloadError {
        PayloadError {
            kind: self.kind,
            what,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        if self.b.len() - self.pos < n {
            return Err(self.err("field runs past the end of the payload"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, PayloadError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn str(&mut self) -> Result<String, PayloadError> {
        let n = self.u32()? as usize;
        let s = self.take(n)?;
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|_| self.err("string is not UTF-8"))
    }
    fn rest_str(&mut self) -> Result<String, PayloadError> {
        let s = &self.b[self.pos..];
        self.pos = self.b.len();
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|_| self.err("message is not UTF-8"))
    }
    fn done(&self) -> Result<(), PayloadError> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(self.err("trailing bytes after the last field"))
        }
    }
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Level byte: 1 = error .. 5 = trace (as `log::Level as u8`).
pub fn level_from_u8(b: u8) -> Option<log::Level> {
    Some(match b {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        5 => log::Level::Trace,
        _ => return None,
    })
}

/// Decode a CRC-valid frame's payload.
pub fn decode_payload(f: &RawFrame<'_>) -> Result<Frame, PayloadError> {
    let mut r = Rd {
        b: f.payload,
        pos: 0,
        kind: f.kind,
    };
    match f.kind {
        FrameType::Begin => {
            let fixed = r.take(BEGIN_FIXED_LEN)?;
            let start_ns = i64_at(fixed, BEGIN_TS);
            let pid = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
            let run_id = r.str()?;
            let job = r.str()?;
            let host = r.str()?;
            r.done()?;
            Ok(Frame::Begin(Begin {
                start_ns,
                pid,
                run_id,
                job,
                host,
            }))
        }
        FrameType::Record => {
            let fixed = r.take(REC_FIXED_LEN)?;
            let ts_ns = i64_at(fixed, REC_TS);
            let level = level_from_u8(fixed[REC_LEVEL]).ok_or(r.err("invalid level byte"))?;
            let flags = fixed[REC_FLAGS];
            if flags & !REC_KNOWN_FLAGS != 0 {
                return Err(r.err("unknown record flags"));
            }
            let kv_count = u16::from_le_bytes([fixed[REC_KV_COUNT], fixed[REC_KV_COUNT + 1]]);
            let line = u32::from_le_bytes([
                fixed[REC_LINE],
                fixed[REC_LINE + 1],
                fixed[REC_LINE + 2],
                fixed[REC_LINE + 3],
            ]);
            let target = r.str()?;
            let module_path = if flags & REC_NO_MODULE != 0 {
                None
            } else if flags & REC_MODULE_IS_TARGET != 0 {
                Some(target.clone())
            } else {
                Some(r.str()?)
            };
            let file = r.str()?;
            // Each kv takes at least 8 bytes, so the count is bounded by the payload length.
            let mut kvs = Vec::with_capacity((kv_count as usize).min(f.payload.len() / 8));
            for _ in 0..kv_count {
                let k = r.str()?;
                let v = r.str()?;
                kvs.push((k, v));
            }
            let message = r.rest_str()?;
            Ok(Frame::Record(Record {
                ts_ns,
                level,
                target,
                module_path,
                file: if file.is_empty() { None } else { Some(file) },
                line: if line == 0 { None } else { Some(line) },
                kvs,
                message,
                truncated: flags & REC_TRUNCATED != 0,
            }))
        }
        FrameType::Label => {
            let key = r.str()?;
            let value = r.str()?;
            r.done()?;
            Ok(Frame::Label { key, value })
        }
        FrameType::Commit | FrameType::Cancel => {
            let b = r.take(END_PAYLOAD_LEN)?;
            r.done()?;
            if b[END_RESERVED..END_RECORDS].iter().any(|&x| x != 0) {
                return Err(r.err("reserved bytes are not zero"));
            }
            let outcome = match (f.kind, b[END_OUTCOME]) {
                (FrameType::Commit, 0) => Outcome::Ok,
                (FrameType::Commit, 1) => Outcome::Failed,
                (FrameType::Cancel, 2) => Outcome::Cancelled,
                _ => return Err(r.err("outcome byte does not match the frame type")),
            };
            Ok(Frame::End(End {
                end_ns: i64_at(b, END_TS),
                outcome,
                records: u64_at(b, END_RECORDS),
                dropped: u64_at(b, END_DROPPED),
            }))
        }
    }
}

/// Append a length-prefixed string.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Encode a BEGIN payload.
pub fn encode_begin(b: &Begin) -> Vec<u8> {
    let mut v = Vec::with_capacity(BEGIN_FIXED_LEN + 64 + b.job.len());
    v.extend_from_slice(&b.start_ns.to_le_bytes());
    v.extend_from_slice(&b.pid.to_le_bytes());
    put_str(&mut v, &b.run_id);
    put_str(&mut v, &b.job);
    put_str(&mut v, &b.host);
    v
}

/// Encode a LABEL payload.
pub fn encode_label(key: &str, value: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + key.len() + value.len());
    put_str(&mut v, key);
    put_str(&mut v, value);
    v
}

/// Encode a COMMIT/CANCEL payload.
pub fn encode_end(e: &End) -> [u8; END_PAYLOAD_LEN] {
    let mut b = [0u8; END_PAYLOAD_LEN];
    b[END_TS..END_TS + 8].copy_from_slice(&e.end_ns.to_le_bytes());
    b[END_OUTCOME] = e.outcome as u8;
    b[END_RECORDS..END_RECORDS + 8].copy_from_slice(&e.records.to_le_bytes());
    b[END_DROPPED..END_DROPPED + 8].copy_from_slice(&e.dropped.to_le_bytes());
    b
}

/// Encode a RECORD payload from owned parts (tests, vectors, tools; the logger's hot path
/// writes the same layout straight into the mapped segment).
pub fn encode_record(r: &Record) -> Vec<u8> {
    let mut v = vec![0u8; REC_FIXED_LEN];
    v[REC_TS..REC_TS + 8].copy_from_slice(&r.ts_ns.to_le_bytes());
    v[REC_LEVEL] = r.level as u8;
    let mut flags = if r.truncated { REC_TRUNCATED } else { 0 };
    match &r.module_path {
        None => flags |= REC_NO_MODULE,
        Some(m) if *m == r.target => flags |= REC_MODULE_IS_TARGET,
        Some(_) => {}
    }
    v[REC_FLAGS] = flags;
    v[REC_KV_COUNT..REC_KV_COUNT + 2].copy_from_slice(&(r.kvs.len() as u16).to_le_bytes());
    v[REC_LINE..REC_LINE + 4].copy_from_slice(&r.line.unwrap_or(0).to_le_bytes());
    put_str(&mut v, &r.target);
    if flags & (REC_NO_MODULE | REC_MODULE_IS_TARGET) == 0 {
        put_str(&mut v, r.module_path.as_deref().unwrap_or(""));
    }
    put_str(&mut v, r.file.as_deref().unwrap_or(""));
    for (k, val) in &r.kvs {
        put_str(&mut v, k);
        put_str(&mut v, val);
    }
    v.extend_from_slice(r.message.as_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::frame::{decode_frame, encode_frame};

    fn rt(kind: FrameType, payload: &[u8]) -> Frame {
        let f = encode_frame(kind, payload);
        decode_payload(&decode_frame(&f).unwrap()).unwrap()
    }

    #[test]
    fn record_round_trips_with_kvs_and_unicode() {
        let r = Record {
            ts_ns: 1_764_331_855_123_456_789,
            level: log::Level::Debug,
            target: "myapp::db".into(),
            module_path: Some("myapp::db".into()),
            file: Some("src/db.rs".into()),
            line: Some(42),
            kvs: vec![("user".into(), "bär".into()), ("n".into(), "3".into())],
            message: "héllo\nworld".into(),
            truncated: false,
        };
        assert_eq!(rt(FrameType::Record, &encode_record(&r)), Frame::Record(r));
    }

    #[test]
    fn begin_label_end_round_trip() {
        let b = Begin {
            start_ns: -5,
            pid: 7,
            run_id: "id".into(),
            job: "a/b\0c".into(),
            host: "h".into(),
        };
        assert_eq!(rt(FrameType::Begin, &encode_begin(&b)), Frame::Begin(b));
        assert_eq!(
            rt(FrameType::Label, &encode_label("k", "v")),
            Frame::Label {
                key: "k".into(),
                value: "v".into()
            }
        );
        let e = End {
            end_ns: 9,
            outcome: Outcome::Failed,
            records: 3,
            dropped: 1,
        };
        assert_eq!(rt(FrameType::Commit, &encode_end(&e)), Frame::End(e));
    }

    #[test]
    fn huge_string_length_inside_a_valid_frame_is_an_error_not_an_allocation() {
        let mut p = encode_label("k", "v");
        p[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let f = encode_frame(FrameType::Label, &p);
        assert!(decode_payload(&decode_frame(&f).unwrap()).is_err());
    }

    #[test]
    fn huge_kv_count_is_bounded() {
        let r = Record {
            ts_ns: 0,
            level: log::Level::Info,
            target: "t".into(),
            module_path: None,
            file: None,
            line: None,
            kvs: vec![],
            message: "m".into(),
            truncated: false,
        };
        let mut p = encode_record(&r);
        p[REC_KV_COUNT..REC_KV_COUNT + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        let f = encode_frame(FrameType::Record, &p);
        assert!(decode_payload(&decode_frame(&f).unwrap()).is_err());
    }
}
