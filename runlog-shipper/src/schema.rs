//! The Redis key schema, version 1 (`spec/redis.md`): key names, the chunk encoding of
//! records, and the chunk index. Shared by the shipper, which writes it, and readers.

use std::fmt;

use runlog::journal::frame::RawFrame;
use runlog::journal::payload::{decode_payload, Frame, PayloadError};
use runlog::Record;

/// The schema version stored in `<prefix>:schema` and in each run's `v` field.
pub const SCHEMA_VERSION: &str = "1";
/// A chunk is closed once it holds this many bytes of framed records.
pub const CHUNK_TARGET: usize = 64 << 10;
/// Largest decompressed chunk a reader accepts.
pub const MAX_CHUNK: usize = 2 << 20;
/// Expiry of a stage list, in milliseconds.
pub const STAGE_TTL_MS: u64 = 3_600_000;
/// Zstandard level used for chunks: the fastest levels already reach ~10× on logs.
pub const ZSTD_LEVEL: i32 = 1;

/// The escaped job name `<J>`: bytes outside `[A-Za-z0-9_.-]` become `%XX`.
pub fn escape_job(job: &str) -> String {
    let mut out = String::with_capacity(job.len());
    for &b in job.as_bytes() {
        if kept_unescaped(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

/// A byte [`escape_job`] keeps as it is.
fn kept_unescaped(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Reverse [`escape_job`]; `None` if `s` is not an escaped job name (also when it escapes a
/// byte that `escape_job` keeps, such as `%41` for `A`: each job has exactly one `<J>`).
pub fn unescape_job(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                if !h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F')) {
                    return None;
                }
                let byte = u8::from_str_radix(h, 16).ok()?;
                if kept_unescaped(byte) {
                    return None;
                }
                out.push(byte);
                i += 3;
            }
            c if kept_unescaped(c) => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    if out.is_empty() {
        return None;
    }
    String::from_utf8(out).ok()
}

/// The keys under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (checked by the config: 1–256 bytes, no `{` or `}`).
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<P>:schema`.
    pub fn schema(&self) -> String {
        format!("{}:schema", self.prefix)
    }

    /// `<P>:epoch`.
    pub fn epoch(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    /// `<P>:jobs`.
    pub fn jobs(&self) -> String {
        format!("{}:jobs", self.prefix)
    }

    /// The keys of one job.
    pub fn job(&self, job: &str) -> JobKeys {
        JobKeys {
            base: format!("{}:{{{}}}:", self.prefix, escape_job(job)),
        }
    }
}

/// The keys of one job: all share the hash tag `{<J>}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobKeys {
    /// `<P>:{<J>}:`
    base: String,
}

impl JobKeys {
    /// `<P>:{<J>}:` — what every key of the job starts with.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<P>:{<J>}:runs`.
    pub fn runs(&self) -> String {
        format!("{}runs", self.base)
    }

    /// `<P>:{<J>}:failed`.
    pub fn failed(&self) -> String {
        format!("{}failed", self.base)
    }

    /// `<P>:{<J>}:run:<R>`.
    pub fn run(&self, id: &str) -> String {
        format!("{}run:{id}", self.base)
    }

    /// `<P>:{<J>}:log:<R>`.
    pub fn log(&self, id: &str) -> String {
        format!("{}log:{id}", self.base)
    }

    /// `<P>:{<J>}:stage:<R>`.
    pub fn stage(&self, id: &str) -> String {
        format!("{}stage:{id}", self.base)
    }
}

/// The Redis Cluster hash slot of a key (CRC16-XMODEM of its hash tag, or of the whole key).
pub fn key_slot(key: &[u8]) -> u16 {
    let mut part = key;
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                part = &key[open + 1..open + 1 + len];
            }
        }
    }
    let mut crc: u16 = 0;
    for &b in part {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// One compressed chunk of records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The Zstandard frame.
    pub data: Vec<u8>,
    /// Smallest record time, ns.
    pub first_ns: i64,
    /// Largest record time, ns.
    pub last_ns: i64,
    /// Records in the chunk.
    pub records: u64,
    /// Decompressed size.
    pub raw_len: usize,
}

impl Chunk {
    /// Its line in the chunk index (`<first_ns> <last_ns> <records>\n`).
    pub fn index_line(&self) -> String {
        format!("{} {} {}\n", self.first_ns, self.last_ns, self.records)
    }
}

/// Builds chunks from RECORD payloads, and the run's chunk index as it goes: the finished
/// chunks can be taken while a run is read ([`ChunkBuilder::take_done`]), so that a big run
/// never has all of its chunks in memory.
pub struct ChunkBuilder {
    buf: Vec<u8>,
    first_ns: i64,
    last_ns: i64,
    records: u64,
    zstd: zstd::bulk::Compressor<'static>,
    done: Vec<Chunk>,
    /// Bytes of chunk data in `done`.
    done_bytes: usize,
    /// Chunks taken by `take_done`.
    taken: usize,
    /// The chunk index of every chunk finished (taken or not).
    index: String,
    /// Decompressed bytes of every chunk finished.
    raw_bytes: usize,
    /// Bytes of chunk data of every chunk finished.
    data_bytes: usize,
}

impl fmt::Debug for ChunkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkBuilder")
            .field("pending", &self.buf.len())
            .field("done", &self.done.len())
            .finish()
    }
}

impl ChunkBuilder {
    /// A builder using Zstandard level [`ZSTD_LEVEL`].
    pub fn new() -> std::io::Result<ChunkBuilder> {
        let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
        zstd.include_contentsize(true)?;
        // The frame's content checksum (XXH64) lets a reader tell a damaged chunk from a
        // good one: without it a flipped byte inside a literal decodes to other text.
        zstd.include_checksum(true)?;
        Ok(ChunkBuilder {
            buf: Vec::with_capacity(CHUNK_TARGET + 4096),
            first_ns: i64::MAX,
            last_ns: i64::MIN,
            records: 0,
            zstd,
            done: Vec::new(),
            done_bytes: 0,
            taken: 0,
            index: String::new(),
            raw_bytes: 0,
            data_bytes: 0,
        })
    }

    /// Drop anything pending and start a new run (after an error, or before the next run).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.done.clear();
        self.done_bytes = 0;
        self.taken = 0;
        self.index.clear();
        self.raw_bytes = 0;
        self.data_bytes = 0;
        self.first_ns = i64::MAX;
        self.last_ns = i64::MIN;
        self.records = 0;
    }

    /// Add one RECORD payload (whose first 8 bytes are its time). Payloads are at most
    /// `MAX_PAYLOAD` (1 MiB), so a chunk never exceeds [`MAX_CHUNK`].
    pub fn push(&mut self, payload: &[u8]) -> std::io::Result<()> {
        if !self.buf.is_empty() && self.buf.len() + 4 + payload.len() > MAX_CHUNK {
            self.flush()?;
        }
        let ts = payload
            .get(..8)
            .map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        self.first_ns = self.first_ns.min(ts);
        self.last_ns = self.last_ns.max(ts);
        self.records += 1;
        self.buf
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(payload);
        if self.buf.len() >= CHUNK_TARGET {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut data = self.zstd.compress(&self.buf)?;
        // Made with room for the worst case (more than the chunk's raw size); logs compress
        // to about a tenth, and the chunks waiting to be sent would keep the rest.
        data.shrink_to_fit();
        let chunk = Chunk {
            data,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            records: self.records,
            raw_len: self.buf.len(),
        };
        self.index.push_str(&chunk.index_line());
        self.raw_bytes += chunk.raw_len;
        self.data_bytes += chunk.data.len();
        self.done_bytes += chunk.data.len();
        self.done.push(chunk);
        self.buf.clear();
        self.first_ns = i64::MAX;
        self.last_ns = i64::MIN;
        self.records = 0;
        Ok(())
    }

    /// Close the last chunk and return the chunks not taken yet, in order (all of them if none
    /// was taken). The index and totals stay until [`ChunkBuilder::reset`].
    pub fn finish(&mut self) -> std::io::Result<Vec<Chunk>> {
        self.flush()?;
        self.done_bytes = 0;
        Ok(std::mem::take(&mut self.done))
    }

    /// The chunks finished so far and not taken yet, in order; counted in
    /// [`ChunkBuilder::taken`].
    pub fn take_done(&mut self) -> Vec<Chunk> {
        self.taken += self.done.len();
        self.done_bytes = 0;
        std::mem::take(&mut self.done)
    }

    /// Bytes of chunk data finished and not taken yet.
    pub fn done_bytes(&self) -> usize {
        self.done_bytes
    }

    /// Chunks taken with [`ChunkBuilder::take_done`] since the last reset.
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// The chunk index (`spec/redis.md`: one `<first_ns> <last_ns> <records>\n` line per
    /// chunk) of every chunk finished since the last reset, taken or not.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// Decompressed bytes of every chunk finished since the last reset (the `bytes` field).
    pub fn raw_bytes(&self) -> usize {
        self.raw_bytes
    }

    /// Bytes of chunk data of every chunk finished since the last reset.
    pub fn data_bytes(&self) -> usize {
        self.data_bytes
    }
}

/// A chunk that is not what `spec/redis.md` describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// Not a Zstandard frame, or it decompresses to more than [`MAX_CHUNK`] bytes.
    Decompress(String),
    /// A record length runs past the end of the chunk.
    Truncated {
        /// Offset of the length.
        offset: usize,
    },
    /// A record payload that does not follow the RECORD layout.
    Payload {
        /// Offset of its length.
        offset: usize,
        /// Why.
        error: String,
    },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::Decompress(e) => write!(f, "chunk does not decompress: {e}"),
            ChunkError::Truncated { offset } => {
                write!(f, "chunk record at offset {offset} runs past the chunk")
            }
            ChunkError::Payload { offset, error } => {
                write!(f, "chunk record at offset {offset} is malformed: {error}")
            }
        }
    }
}

impl std::error::Error for ChunkError {}

/// Decompress a chunk, bounded by [`MAX_CHUNK`].
pub fn decompress_chunk(data: &[u8]) -> Result<Vec<u8>, ChunkError> {
    zstd::bulk::decompress(data, MAX_CHUNK).map_err(|e| ChunkError::Decompress(e.to_string()))
}

/// The RECORD payloads of a decompressed chunk.
pub fn chunk_payloads(raw: &[u8]) -> Result<Vec<&[u8]>, ChunkError> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < raw.len() {
        let Some(len) = raw.get(off..off + 4) else {
            return Err(ChunkError::Truncated { offset: off });
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(p) = raw.get(off + 4..).and_then(|r| r.get(..len)) else {
            return Err(ChunkError::Truncated { offset: off });
        };
        out.push(p);
        off += 4 + len;
    }
    Ok(out)
}

/// Decode a chunk into its records.
pub fn decode_chunk(data: &[u8]) -> Result<Vec<Record>, ChunkError> {
    decode_raw_chunk(&decompress_chunk(data)?)
}

/// Decode the records of a decompressed chunk.
pub fn decode_raw_chunk(raw: &[u8]) -> Result<Vec<Record>, ChunkError> {
    Ok(decode_raw_chunk_refs(raw)?
        .iter()
        .map(runlog::journal::payload::RecordRef::to_record)
        .collect())
}

/// Decode the records of a decompressed chunk, borrowing from it. A damaged chunk gives none.
pub fn decode_raw_chunk_refs(
    raw: &[u8],
) -> Result<Vec<runlog::journal::payload::RecordRef<'_>>, ChunkError> {
    // A record takes 20 bytes at least; most take about 100.
    let mut out = Vec::with_capacity(raw.len() / 64);
    let mut off = 0;
    for p in chunk_payloads(raw)? {
        let r =
            runlog::journal::payload::decode_record_ref(p).map_err(|e| ChunkError::Payload {
                offset: off,
                error: e.to_string(),
            })?;
        out.push(r);
        off += 4 + p.len();
    }
    Ok(out)
}

/// Decode one RECORD payload.
pub fn decode_record_payload(p: &[u8]) -> Result<Record, PayloadError> {
    let raw = RawFrame {
        kind: runlog::journal::frame::FrameType::Record,
        flags: 0,
        payload: p,
    };
    match decode_payload(&raw)? {
        Frame::Record(r) => Ok(r),
        // decode_payload returns the frame type it was given.
        _ => Err(PayloadError {
            kind: raw.kind,
            what: "not a record",
        }),
    }
}

/// One line of the chunk index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Smallest record time, ns.
    pub first_ns: i64,
    /// Largest record time, ns.
    pub last_ns: i64,
    /// Records in the chunk.
    pub records: u64,
}

/// Parse the `chunks` field of a run's metadata.
pub fn parse_chunk_index(s: &str) -> Result<Vec<IndexEntry>, String> {
    s.lines()
        .enumerate()
        .map(|(i, l)| {
            let mut it = l.split(' ');
            let mut next = |what: &str| {
                it.next()
                    .ok_or_else(|| format!("chunk index line {}: missing {what}", i + 1))
            };
            let first = next("first_ns")?;
            let last = next("last_ns")?;
            let n = next("records")?;
            let bad = |what: &str| format!("chunk index line {}: bad {what} in {l:?}", i + 1);
            Ok(IndexEntry {
                first_ns: first.parse().map_err(|_| bad("first_ns"))?,
                last_ns: last.parse().map_err(|_| bad("last_ns"))?,
                records: n.parse().map_err(|_| bad("records"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ODD_JOBS: [&str; 9] = [
        "nightly",
        "a{b}c",
        "{",
        "}",
        "{}",
        "}{",
        "x:y z/%20",
        "naïve 日本 ☃",
        "\u{0}\u{1f}\u{7f}",
    ];

    #[test]
    fn escaped_job_names_round_trip_and_have_no_braces() {
        for job in ODD_JOBS {
            let e = escape_job(job);
            assert!(!e.is_empty());
            assert!(!e.contains(['{', '}', ':']), "{e}");
            assert_eq!(unescape_job(&e).as_deref(), Some(job), "{e}");
        }
        // Distinct names never share an escape (so never share keys).
        let all: std::collections::BTreeSet<String> =
            ODD_JOBS.iter().map(|j| escape_job(j)).collect();
        assert_eq!(all.len(), ODD_JOBS.len());
        assert_eq!(
            escape_job("nightly {eu} report"),
            "nightly%20%7Beu%7D%20report"
        );
        for bad in ["", "%", "%2", "%zz", "%2a", "a b", "{x}"] {
            assert_eq!(unescape_job(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unescape_job_refuses_an_escape_of_a_byte_that_escape_job_keeps() {
        // Found by fuzzing (fuzz/regressions/redis_chunk/): "%4D" unescaped to "M", so two
        // <J> strings named one job, and unescape_job(s) then escape_job gave another s.
        for bad in ["%4D", "%41", "a%2Eb", "%5F", "%2D", "%30", "x%7A"] {
            assert_eq!(unescape_job(bad), None, "{bad:?}");
        }
        assert_eq!(unescape_job("%20%25%7B").as_deref(), Some(" %{"));
    }

    #[test]
    fn all_keys_of_a_job_share_one_slot() {
        let keys = Keys::new("runlog");
        for job in ODD_JOBS {
            let jk = keys.job(job);
            let id = "2026-11-28T12:10:55.123456Z-0123456789ab";
            let slot = key_slot(jk.runs().as_bytes());
            assert_eq!(slot, key_slot(escape_job(job).as_bytes()));
            for k in [jk.failed(), jk.run(id), jk.log(id), jk.stage(id)] {
                assert_eq!(key_slot(k.as_bytes()), slot, "{k}");
            }
        }
        // Reference values of CRC16-XMODEM mod 16384 (from the Redis Cluster spec).
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
    }

    fn record(ts: i64, msg: &str) -> Vec<u8> {
        runlog::journal::payload::encode_record(&Record {
            ts_ns: ts,
            level: log::Level::Info,
            target: "t".into(),
            module_path: None,
            file: None,
            line: None,
            kvs: vec![("user".into(), "bar".into())],
            message: msg.into(),
            truncated: false,
        })
    }

    #[test]
    fn chunks_round_trip_with_their_index() {
        let mut b = ChunkBuilder::new().unwrap();
        let n = 5000;
        for i in 0..n {
            b.push(&record(1_000 + i, &format!("processed item {i} of {n}")))
                .unwrap();
        }
        let chunks = b.finish().unwrap();
        assert!(chunks.len() > 1, "{} chunks", chunks.len());
        let mut seen = 0;
        for c in &chunks {
            assert!(c.raw_len <= CHUNK_TARGET + 200);
            let recs = decode_chunk(&c.data).unwrap();
            assert_eq!(recs.len() as u64, c.records);
            assert_eq!(recs[0].ts_ns, c.first_ns);
            assert_eq!(recs.last().unwrap().ts_ns, c.last_ns);
            for r in &recs {
                assert_eq!(r.message, format!("processed item {} of {n}", seen));
                seen += 1;
            }
        }
        assert_eq!(seen, n as usize);
        let index: String = chunks.iter().map(Chunk::index_line).collect();
        let parsed = parse_chunk_index(&index).unwrap();
        assert_eq!(parsed.len(), chunks.len());
        assert_eq!(parsed[0].first_ns, 1_000);
        assert!(parse_chunk_index("1 2\n").is_err());
        assert!(parse_chunk_index("1 x 3\n").is_err());
        assert_eq!(parse_chunk_index("").unwrap(), vec![]);
        // Compresses well: repetitive log lines.
        let raw: usize = chunks.iter().map(|c| c.raw_len).sum();
        let packed: usize = chunks.iter().map(|c| c.data.len()).sum();
        assert!(packed * 4 < raw, "{packed} of {raw}");
    }

    #[test]
    fn bad_chunks_are_errors_not_panics_or_huge_allocations() {
        assert!(matches!(
            decode_chunk(b"not zstd"),
            Err(ChunkError::Decompress(_))
        ));
        // A chunk that decompresses to more than MAX_CHUNK is refused.
        let big = zstd::bulk::compress(&vec![0u8; MAX_CHUNK + 1], 1).unwrap();
        assert!(matches!(decode_chunk(&big), Err(ChunkError::Decompress(_))));
        // A length running past the end.
        let mut raw = (u32::MAX).to_le_bytes().to_vec();
        raw.extend_from_slice(b"abc");
        let c = zstd::bulk::compress(&raw, 1).unwrap();
        assert_eq!(decode_chunk(&c), Err(ChunkError::Truncated { offset: 0 }));
        // Three bytes where a length should be.
        let c = zstd::bulk::compress(&[1, 0, 0], 1).unwrap();
        assert_eq!(decode_chunk(&c), Err(ChunkError::Truncated { offset: 0 }));
        // A payload that is not a record.
        let mut raw = 3u32.to_le_bytes().to_vec();
        raw.extend_from_slice(b"abc");
        let c = zstd::bulk::compress(&raw, 1).unwrap();
        assert!(matches!(
            decode_chunk(&c),
            Err(ChunkError::Payload { offset: 0, .. })
        ));
    }

    #[test]
    fn a_damaged_byte_anywhere_in_a_chunk_is_detected() {
        let mut b = ChunkBuilder::new().unwrap();
        for i in 0..200 {
            b.push(&record(i, &format!("line {i} for user alice, plain text")))
                .unwrap();
        }
        let chunks = b.finish().unwrap();
        assert_eq!(chunks.len(), 1);
        let good = &chunks[0].data;
        // The frame header says a checksum follows (Content_Checksum_flag, RFC 8878 3.1.1.1.1).
        assert_eq!(&good[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_ne!(good[4] & 0x04, 0, "checksum flag");
        decode_chunk(good).unwrap();
        let mut missed = Vec::new();
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0xff;
            if decode_chunk(&bad).is_ok() {
                missed.push(at);
            }
        }
        assert!(
            missed.is_empty(),
            "undetected at {missed:?} of {}",
            good.len()
        );
    }

    #[test]
    fn chunks_with_huge_records_stay_within_the_limit() {
        let mut b = ChunkBuilder::new().unwrap();
        b.push(&record(1, "small")).unwrap();
        let big = "x".repeat(900 << 10);
        b.push(&record(2, &big)).unwrap();
        b.push(&record(3, &big)).unwrap();
        let chunks = b.finish().unwrap();
        // A chunk closes once it reaches CHUNK_TARGET: [small, big], [big].
        assert_eq!(chunks.len(), 2);
        assert_eq!((chunks[0].records, chunks[1].records), (2, 1));
        for c in &chunks {
            assert!(c.raw_len <= MAX_CHUNK);
            decode_chunk(&c.data).unwrap();
        }
    }
}
