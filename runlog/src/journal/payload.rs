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

impl Record {
    /// This record as a [`RecordRef`], borrowing its strings (nothing is copied).
    pub fn borrowed(&self) -> RecordRef<'_> {
        RecordRef {
            ts_ns: self.ts_ns,
            level: self.level,
            target: &self.target,
            module_path: self.module_path.as_deref(),
            file: self.file.as_deref(),
            line: self.line,
            kvs: Kvs(KvsRepr::Owned(&self.kvs)),
            message: &self.message,
            truncated: self.truncated,
        }
    }
}

/// How well a record says why its run failed (`spec/redis.md`, the run hash's `error`): only
/// ERROR records count; 3 for target `runlog::error` (an `Err` the run ended with), 2 for
/// target `runlog::panic` unless it is the backtrace (its message starts with
/// `stack backtrace:`), 1 for any other ERROR record, 0 for the rest (the backtrace, and every
/// record at another level whatever its target). The last record of the highest rank is the
/// failure: the shipper's `error` field is its message and `runlog why` shows it.
pub fn failure_rank(level: log::Level, target: &str, message: &str) -> u8 {
    if level != log::Level::Error {
        return 0;
    }
    match target {
        "runlog::error" => 3,
        "runlog::panic" if message.starts_with("stack backtrace:") => 0,
        "runlog::panic" => 2,
        _ => 1,
    }
}

/// A log record borrowed from the bytes it was decoded from (a RECORD payload, see
/// [`decode_record_ref`]) or from a [`Record`] ([`Record::borrowed`]): the same fields, as
/// `&str`, with nothing copied or allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Time the record was logged, nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// Level.
    pub level: log::Level,
    /// `log` target.
    pub target: &'a str,
    /// Module path, if known.
    pub module_path: Option<&'a str>,
    /// Source file, if known.
    pub file: Option<&'a str>,
    /// Source line, if known.
    pub line: Option<u32>,
    /// Structured key-values, in logging order.
    pub kvs: Kvs<'a>,
    /// The formatted message.
    pub message: &'a str,
    /// The message was cut to fit the maximum frame size.
    pub truncated: bool,
}

impl RecordRef<'_> {
    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record {
            ts_ns: self.ts_ns,
            level: self.level,
            target: self.target.to_owned(),
            module_path: self.module_path.map(str::to_owned),
            file: self.file.map(str::to_owned),
            line: self.line,
            kvs: self
                .kvs
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            message: self.message.to_owned(),
            truncated: self.truncated,
        }
    }
}

/// The key-values of a [`RecordRef`]: `(key, value)` pairs in logging order, see
/// [`Kvs::iter`].
#[derive(Clone, Copy)]
pub struct Kvs<'a>(KvsRepr<'a>);

#[derive(Clone, Copy)]
enum KvsRepr<'a> {
    /// Still encoded: `count` pairs of length-prefixed strings, all checked (bounds and UTF-8)
    /// when the record was decoded.
    Encoded { bytes: &'a [u8], count: u16 },
    /// The same, all of it one string (length fields included): the strings are taken from
    /// it without checking them again.
    Text { text: &'a str, count: u16 },
    /// A [`Record`]'s.
    Owned(&'a [(String, String)]),
}

impl<'a> Kvs<'a> {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        match self.0 {
            KvsRepr::Encoded { count, .. } | KvsRepr::Text { count, .. } => count as usize,
            KvsRepr::Owned(v) => v.len(),
        }
    }

    /// No pairs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pairs, in logging order.
    pub fn iter(&self) -> KvIter<'a> {
        KvIter(match self.0 {
            KvsRepr::Encoded { bytes, count } => KvIterRepr::Encoded {
                b: bytes,
                left: count,
            },
            KvsRepr::Text { text, count } => KvIterRepr::Text {
                t: text,
                left: count,
            },
            KvsRepr::Owned(v) => KvIterRepr::Owned(v.iter()),
        })
    }
}

impl<'a> IntoIterator for Kvs<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = KvIter<'a>;
    fn into_iter(self) -> KvIter<'a> {
        self.iter()
    }
}

impl PartialEq for Kvs<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Kvs<'_> {}

impl fmt::Debug for Kvs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over the pairs of [`Kvs`].
#[derive(Clone, Debug)]
pub struct KvIter<'a>(KvIterRepr<'a>);

#[derive(Clone, Debug)]
enum KvIterRepr<'a> {
    Encoded { b: &'a [u8], left: u16 },
    Text { t: &'a str, left: u16 },
    Owned(std::slice::Iter<'a, (String, String)>),
}

/// A length-prefixed UTF-8 string at the start of `b`, and the rest.
fn split_str(b: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = b.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return None;
    }
    let (s, rest) = rest.split_at(len);
    Some((std::str::from_utf8(s).ok()?, rest))
}

impl<'a> Iterator for KvIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        match &mut self.0 {
            KvIterRepr::Owned(it) => it.next().map(|(k, v)| (k.as_str(), v.as_str())),
            KvIterRepr::Text { t, left } => {
                if *left == 0 {
                    return None;
                }
                // Checked when the record was decoded, as for `Encoded`.
                let mut rest = *t;
                match (next_text(&mut rest), next_text(&mut rest)) {
                    (Some(k), Some(v)) => {
                        *t = rest;
                        *left -= 1;
                        Some((k, v))
                    }
                    _ => {
                        *left = 0;
                        None
                    }
                }
            }
            KvIterRepr::Encoded { b, left } => {
                if *left == 0 {
                    return None;
                }
                // Checked when the record was decoded; a failure here cannot happen, and
                // ends the pairs rather than panicking.
                let pair = split_str(b).and_then(|(k, rest)| {
                    let (v, rest) = split_str(rest)?;
                    Some((k, v, rest))
                });
                match pair {
                    Some((k, v, rest)) => {
                        *b = rest;
                        *left -= 1;
                        Some((k, v))
                    }
                    None => {
                        *left = 0;
                        None
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            KvIterRepr::Owned(it) => it.len(),
            KvIterRepr::Encoded { left, .. } | KvIterRepr::Text { left, .. } => *left as usize,
        };
        (0, Some(n))
    }
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
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], PayloadError> {
        if self.b.len() - self.pos < n {
            return Err(self.err("field runs past the end of the payload"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    #[inline]
    fn u32(&mut self) -> Result<u32, PayloadError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    #[inline]
    fn str_ref(&mut self) -> Result<&'a str, PayloadError> {
        let n = self.u32()? as usize;
        let s = self.take(n)?;
        std::str::from_utf8(s).map_err(|_| self.err("string is not UTF-8"))
    }
    fn str(&mut self) -> Result<String, PayloadError> {
        self.str_ref().map(str::to_owned)
    }
    #[inline]
    fn rest_str_ref(&mut self) -> Result<&'a str, PayloadError> {
        let s = &self.b[self.pos..];
        self.pos = self.b.len();
        std::str::from_utf8(s).map_err(|_| self.err("message is not UTF-8"))
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
        FrameType::Record => decode_record_ref(f.payload).map(|r| Frame::Record(r.to_record())),
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

/// The time of a RECORD payload (ns since the epoch), without decoding the rest.
pub fn record_payload_ts(payload: &[u8]) -> Option<i64> {
    payload
        .get(REC_TS..REC_TS + 8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

/// The level of a RECORD payload, without decoding the rest.
pub fn record_payload_level(payload: &[u8]) -> Option<log::Level> {
    level_from_u8(*payload.get(REC_LEVEL)?)
}

/// Decode a RECORD payload without copying: the strings of the result point into `payload`.
/// The same checks as [`decode_payload`] (every length against the bytes there, UTF-8, level,
/// flags), and nothing is allocated.
#[inline]
pub fn decode_record_ref(payload: &[u8]) -> Result<RecordRef<'_>, PayloadError> {
    match decode_record_text(payload) {
        Some(r) => Ok(r),
        None => decode_record_bytes(payload),
    }
}

/// A length-prefixed string at the start of `t` (its length field ASCII, so part of the
/// string `t`), and the rest.
#[inline]
fn next_text<'a>(t: &mut &'a str) -> Option<&'a str> {
    let len = u32::from_le_bytes(*t.as_bytes().first_chunk::<4>()?) as usize;
    let end = len.checked_add(4)?;
    let s = t.get(4..end)?;
    *t = t.get(end..)?;
    Some(s)
}

/// [`decode_record_ref`] the fast way: everything after the fixed part checked to be UTF-8 at
/// once (the length fields included: their bytes are ASCII unless a string is 128 bytes or
/// longer), then the strings cut out of it. `None` when that does not work out, whether the
/// record is valid or not: [`decode_record_bytes`] then decides, and names the error.
#[inline]
fn decode_record_text(payload: &[u8]) -> Option<RecordRef<'_>> {
    let (fixed, rest) = payload.split_first_chunk::<REC_FIXED_LEN>()?;
    let mut t = std::str::from_utf8(rest).ok()?;
    let level = level_from_u8(fixed[REC_LEVEL])?;
    let flags = fixed[REC_FLAGS];
    if flags & !REC_KNOWN_FLAGS != 0 {
        return None;
    }
    let kv_count = u16::from_le_bytes([fixed[REC_KV_COUNT], fixed[REC_KV_COUNT + 1]]);
    let line = u32::from_le_bytes([
        fixed[REC_LINE],
        fixed[REC_LINE + 1],
        fixed[REC_LINE + 2],
        fixed[REC_LINE + 3],
    ]);
    let target = next_text(&mut t)?;
    let module_path = if flags & REC_NO_MODULE != 0 {
        None
    } else if flags & REC_MODULE_IS_TARGET != 0 {
        Some(target)
    } else {
        Some(next_text(&mut t)?)
    };
    let file = next_text(&mut t)?;
    let kv_text = t;
    for _ in 0..kv_count {
        next_text(&mut t)?;
        next_text(&mut t)?;
    }
    let kvs = Kvs(KvsRepr::Text {
        text: kv_text.get(..kv_text.len() - t.len())?,
        count: kv_count,
    });
    Some(RecordRef {
        ts_ns: i64_at(fixed, REC_TS),
        level,
        target,
        module_path,
        file: if file.is_empty() { None } else { Some(file) },
        line: if line == 0 { None } else { Some(line) },
        kvs,
        message: t,
        truncated: flags & REC_TRUNCATED != 0,
    })
}

/// [`decode_record_ref`] field by field, each string checked on its own: any valid record,
/// and the error of an invalid one.
fn decode_record_bytes(payload: &[u8]) -> Result<RecordRef<'_>, PayloadError> {
    let mut r = Rd {
        b: payload,
        pos: 0,
        kind: FrameType::Record,
    };
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
    let target = r.str_ref()?;
    let module_path = if flags & REC_NO_MODULE != 0 {
        None
    } else if flags & REC_MODULE_IS_TARGET != 0 {
        Some(target)
    } else {
        Some(r.str_ref()?)
    };
    let file = r.str_ref()?;
    // Every pair is checked here, so that iterating over them later cannot fail.
    let kv_start = r.pos;
    for _ in 0..kv_count {
        r.str_ref()?;
        r.str_ref()?;
    }
    let kvs = Kvs(KvsRepr::Encoded {
        bytes: &payload[kv_start..r.pos],
        count: kv_count,
    });
    let message = r.rest_str_ref()?;
    Ok(RecordRef {
        ts_ns,
        level,
        target,
        module_path,
        file: if file.is_empty() { None } else { Some(file) },
        line: if line == 0 { None } else { Some(line) },
        kvs,
        message,
        truncated: flags & REC_TRUNCATED != 0,
    })
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

/// The marker that replaces the middle of a message cut to fit a record (`spec/journal.md`,
/// *Limits*): ` …[runlog: <n> bytes cut]… `.
pub fn cut_marker(bytes_cut: u64) -> String {
    format!(" \u{2026}[runlog: {bytes_cut} bytes cut]\u{2026} ")
}

/// A cut message's head, the number of bytes cut, and its tail: `None` if it holds no marker
/// (see [`cut_marker`]; the last marker counts, as the head may itself hold the text).
pub fn split_cut_message(message: &str) -> Option<(&str, u64, &str)> {
    const OPEN: &str = " \u{2026}[runlog: ";
    const CLOSE: &str = " bytes cut]\u{2026} ";
    let close = message.rfind(CLOSE)?;
    let open = message[..close].rfind(OPEN)?;
    let n = message[open + OPEN.len()..close].parse().ok()?;
    Some((&message[..open], n, &message[close + CLOSE.len()..]))
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
    fn record_ref_borrows_the_payload_and_equals_the_owned_record() {
        let r = Record {
            ts_ns: -1_234_567,
            level: log::Level::Warn,
            target: "app".into(),
            module_path: Some("app::db".into()),
            file: None,
            line: None,
            kvs: vec![
                ("user".into(), "bär".into()),
                ("".into(), "".into()),
                ("n".into(), "3".into()),
            ],
            message: "two\nlines ✓".into(),
            truncated: true,
        };
        let p = encode_record(&r);
        let d = decode_record_ref(&p).unwrap();
        assert_eq!(d, r.borrowed());
        assert_eq!(d.to_record(), r);
        assert_eq!(d.kvs.len(), 3);
        let pairs: Vec<(&str, &str)> = d.kvs.iter().collect();
        assert_eq!(pairs, [("user", "bär"), ("", ""), ("n", "3")]);
        // The strings point into the payload.
        let range = p.as_ptr_range();
        assert!(range.contains(&d.message.as_ptr()) && range.contains(&d.target.as_ptr()));
        // Same record through the owned decoder.
        let f = encode_frame(FrameType::Record, &p);
        assert_eq!(
            decode_payload(&decode_frame(&f).unwrap()).unwrap(),
            Frame::Record(r)
        );
    }

    /// The RECORD decoder before zero-copy decoding (owned strings, each checked on its own):
    /// the reference for the decoders now.
    fn reference_decode(p: &[u8]) -> Result<Record, &'static str> {
        fn take<'a>(p: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], &'static str> {
            if p.len() - *pos < n {
                return Err("field runs past the end of the payload");
            }
            *pos += n;
            Ok(&p[*pos - n..*pos])
        }
        fn string(p: &[u8], pos: &mut usize) -> Result<String, &'static str> {
            let n = take(p, pos, 4)?;
            let n = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize;
            std::str::from_utf8(take(p, pos, n)?)
                .map(str::to_owned)
                .map_err(|_| "string is not UTF-8")
        }
        let mut pos = 0usize;
        let fixed = take(p, &mut pos, REC_FIXED_LEN)?;
        let level = level_from_u8(fixed[REC_LEVEL]).ok_or("invalid level byte")?;
        let flags = fixed[REC_FLAGS];
        if flags & !REC_KNOWN_FLAGS != 0 {
            return Err("unknown record flags");
        }
        let kv_count = u16::from_le_bytes([fixed[REC_KV_COUNT], fixed[REC_KV_COUNT + 1]]);
        let line = u32::from_le_bytes(fixed[REC_LINE..REC_LINE + 4].try_into().unwrap());
        let target = string(p, &mut pos)?;
        let module_path = if flags & REC_NO_MODULE != 0 {
            None
        } else if flags & REC_MODULE_IS_TARGET != 0 {
            Some(target.clone())
        } else {
            Some(string(p, &mut pos)?)
        };
        let file = string(p, &mut pos)?;
        let mut kvs = Vec::new();
        for _ in 0..kv_count {
            let k = string(p, &mut pos)?;
            let v = string(p, &mut pos)?;
            kvs.push((k, v));
        }
        let message = std::str::from_utf8(&p[pos..])
            .map(str::to_owned)
            .map_err(|_| "message is not UTF-8")?;
        Ok(Record {
            ts_ns: i64::from_le_bytes(fixed[..8].try_into().unwrap()),
            level,
            target,
            module_path,
            file: if file.is_empty() { None } else { Some(file) },
            line: if line == 0 { None } else { Some(line) },
            kvs,
            message,
            truncated: flags & REC_TRUNCATED != 0,
        })
    }

    #[test]
    fn record_decoders_agree_with_the_reference_and_never_panic() {
        let long = "ü".repeat(70);
        let records = [
            Record {
                ts_ns: 5,
                level: log::Level::Info,
                target: "t".into(),
                module_path: None,
                file: Some("src/x.rs".into()),
                line: Some(9),
                kvs: vec![("k".into(), "v".into()), ("k2".into(), "v2".into())],
                message: "héllo".into(),
                truncated: false,
            },
            // Lengths of 128 and more (length bytes that are not ASCII), non-ASCII text.
            Record {
                ts_ns: -5,
                level: log::Level::Trace,
                target: long.clone(),
                module_path: Some("m".into()),
                file: None,
                line: None,
                kvs: vec![(long.clone(), "x".into()), ("y".into(), long.clone())],
                message: long.clone(),
                truncated: true,
            },
        ];
        let owned = |b: &[u8]| {
            decode_payload(&RawFrame {
                kind: FrameType::Record,
                flags: 0,
                payload: b,
            })
            .map(|f| match f {
                Frame::Record(r) => r,
                _ => unreachable!(),
            })
            .map_err(|e| e.what)
        };
        let check = |q: &[u8], what: &str| {
            let want = reference_decode(q);
            let by_ref = decode_record_ref(q)
                .map(|r| r.to_record())
                .map_err(|e| e.what);
            assert_eq!(by_ref, want, "{what}");
            assert_eq!(owned(q), want, "{what}");
            if let Ok(r) = decode_record_ref(q) {
                assert_eq!(r.kvs.iter().count(), r.kvs.len(), "{what}");
            }
        };
        for r in &records {
            let p = encode_record(r);
            for n in 0..p.len() {
                check(&p[..n], &format!("prefix {n}"));
            }
            for i in 0..p.len() {
                for x in [0u8, 1, 0x7f, 0x80, 0xbf, 0xc3, 0xff] {
                    let mut q = p.clone();
                    q[i] = x;
                    check(&q, &format!("byte {i} = {x:#x}"));
                }
            }
        }
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
