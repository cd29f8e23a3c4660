//! Frame and segment-header encoding: pure functions over byte slices, no I/O.
//!
//! The layout is normative in `spec/journal.md`; every offset here is derived from the named
//! constants below. All integers are little-endian.

use std::fmt;

/// The first 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"RUNLOGJ\n";
/// The journal format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;

// Segment header fields (offsets and sizes).
pub(crate) const HDR_MAGIC: usize = 0;
pub(crate) const HDR_VERSION: usize = HDR_MAGIC + MAGIC.len(); // 8
pub(crate) const HDR_LEN_FIELD: usize = HDR_VERSION + 2; // 10
pub(crate) const HDR_SEQ: usize = HDR_LEN_FIELD + 2; // 12
pub(crate) const HDR_RUN_ID: usize = HDR_SEQ + 4; // 16
/// Bytes reserved for the run id in the header (ASCII, zero-padded).
pub const RUN_ID_FIELD_LEN: usize = 40;
pub(crate) const HDR_RESERVED: usize = HDR_RUN_ID + RUN_ID_FIELD_LEN; // 56
pub(crate) const HDR_CRC: usize = HDR_RESERVED + 4; // 60
/// Size of the segment header; frames start at this offset.
pub const HEADER_LEN: usize = HDR_CRC + 4; // 64

// Frame header fields.
pub(crate) const FR_CRC: usize = 0;
pub(crate) const FR_TYPE: usize = FR_CRC + 4; // 4
pub(crate) const FR_FLAGS: usize = FR_TYPE + 1; // 5
pub(crate) const FR_RESERVED: usize = FR_FLAGS + 1; // 6
pub(crate) const FR_LEN: usize = FR_RESERVED + 2; // 8
/// Size of a frame header; the payload follows it.
pub const FRAME_HEADER_LEN: usize = FR_LEN + 4; // 12

/// The largest payload a frame may carry. A reader treats a larger length as invalid, so a
/// corrupt length can never make it allocate or read more than this.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Payload size of the COMMIT and CANCEL frames (fixed, so a reader can find the end marker by
/// reading only the last [`END_FRAME_LEN`] bytes of a finished segment).
pub const END_PAYLOAD_LEN: usize = 32;
/// Total size of an end frame (header + fixed payload).
pub const END_FRAME_LEN: usize = FRAME_HEADER_LEN + END_PAYLOAD_LEN;

/// The type byte of a frame. Zero is never valid, so zero-filled space never parses as a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Starts a run: run id, job, host, pid, start time. First frame of segment 0.
    Begin = 1,
    /// One log record.
    Record = 2,
    /// A label `key=value` attached to the run.
    Label = 3,
    /// The run ended (ok or failed). Last frame of the run's last segment.
    Commit = 4,
    /// The run was cancelled: forget it.
    Cancel = 5,
}

impl FrameType {
    /// The frame's name as the spec writes it (`BEGIN`, `RECORD`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FrameType::Begin => "BEGIN",
            FrameType::Record => "RECORD",
            FrameType::Label => "LABEL",
            FrameType::Commit => "COMMIT",
            FrameType::Cancel => "CANCEL",
        }
    }

    /// Parse a type byte.
    pub fn from_u8(b: u8) -> Option<FrameType> {
        Some(match b {
            1 => FrameType::Begin,
            2 => FrameType::Record,
            3 => FrameType::Label,
            4 => FrameType::Commit,
            5 => FrameType::Cancel,
            _ => return None,
        })
    }
}

/// Why bytes at an offset are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer than [`FRAME_HEADER_LEN`] bytes remain.
    ShortHeader,
    /// The type byte is not a known frame type (0 = zero-filled space).
    BadType(u8),
    /// Reserved header bytes are not zero.
    BadReserved,
    /// The length field exceeds [`MAX_PAYLOAD`].
    TooLong(u32),
    /// The payload runs past the end of the data.
    Truncated {
        /// Payload length the header claims.
        len: u32,
        /// Bytes that are actually there.
        available: usize,
    },
    /// The CRC does not match.
    BadCrc {
        /// CRC stored in the frame.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ShortHeader => write!(
                f,
                "fewer than {FRAME_HEADER_LEN} bytes left for a frame header"
            ),
            FrameError::BadType(t) => write!(f, "invalid frame type {t}"),
            FrameError::BadReserved => write!(f, "reserved frame header bytes are not zero"),
            FrameError::TooLong(l) => {
                write!(f, "frame length {l} exceeds the maximum {MAX_PAYLOAD}")
            }
            FrameError::Truncated { len, available } => {
                write!(f, "frame length {len} but only {available} bytes follow")
            }
            FrameError::BadCrc { stored, computed } => {
                write!(
                    f,
                    "CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
        }
    }
}

/// A frame as it lies in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// Frame type.
    pub kind: FrameType,
    /// Flags byte (currently always 0).
    pub flags: u8,
    /// Payload bytes.
    pub payload: &'a [u8],
}

impl RawFrame<'_> {
    /// Total bytes this frame occupies.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload.len()
    }
}

#[inline]
fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Compute the frame CRC: CRC-32 (IEEE 802.3, as `crc32fast`) over the header bytes after the
/// CRC field (type, flags, reserved, length) followed by the payload.
#[inline]
pub fn frame_crc(header_tail: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header_tail);
    h.update(payload);
    h.finalize()
}

/// Decode the frame that starts at `buf[0]`.
pub fn decode_frame(buf: &[u8]) -> Result<RawFrame<'_>, FrameError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Err(FrameError::ShortHeader);
    }
    let kind = FrameType::from_u8(buf[FR_TYPE]).ok_or(FrameError::BadType(buf[FR_TYPE]))?;
    if buf[FR_RESERVED] != 0 || buf[FR_RESERVED + 1] != 0 {
        return Err(FrameError::BadReserved);
    }
    let len = rd_u32(buf, FR_LEN);
    if len as usize > MAX_PAYLOAD {
        return Err(FrameError::TooLong(len));
    }
    let available = buf.len() - FRAME_HEADER_LEN;
    if len as usize > available {
        return Err(FrameError::Truncated { len, available });
    }
    let payload = &buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len as usize];
    let stored = rd_u32(buf, FR_CRC);
    let computed = frame_crc(&buf[FR_TYPE..FRAME_HEADER_LEN], payload);
    if stored != computed {
        return Err(FrameError::BadCrc { stored, computed });
    }
    Ok(RawFrame {
        kind,
        flags: buf[FR_FLAGS],
        payload,
    })
}

/// Write the header of a frame whose payload already sits at
/// `buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + payload_len]`, CRC last.
pub fn seal_frame(buf: &mut [u8], kind: FrameType, payload_len: usize) {
    debug_assert!(payload_len <= MAX_PAYLOAD);
    buf[FR_TYPE] = kind as u8;
    buf[FR_FLAGS] = 0;
    buf[FR_RESERVED] = 0;
    buf[FR_RESERVED + 1] = 0;
    buf[FR_LEN..FR_LEN + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    // The header tail and the payload are contiguous: one pass is the same CRC as frame_crc.
    let crc = crc32fast::hash(&buf[FR_TYPE..FRAME_HEADER_LEN + payload_len]);
    buf[FR_CRC..FR_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Encode a whole frame into a new vector (used for small frames and by tests).
pub fn encode_frame(kind: FrameType, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; FRAME_HEADER_LEN + payload.len()];
    v[FRAME_HEADER_LEN..].copy_from_slice(payload);
    seal_frame(&mut v, kind, payload.len());
    v
}

/// A decoded segment header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version.
    pub version: u16,
    /// Position of this segment in its run, from 0.
    pub seq: u32,
    /// The run this segment belongs to.
    pub run_id: String,
}

/// Why a segment header is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The file is shorter than a header.
    Short(usize),
    /// The magic bytes are wrong: not a runlog segment.
    BadMagic,
    /// The header CRC does not match.
    BadCrc,
    /// A version this code does not understand.
    UnsupportedVersion(u16),
    /// The header length field is not what this version defines.
    BadHeaderLen(u16),
    /// The run id field is not ASCII.
    BadRunId,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Short(n) => write!(f, "file has {n} bytes, shorter than a {HEADER_LEN}-byte segment header"),
            HeaderError::BadMagic => write!(f, "bad magic: not a runlog journal segment"),
            HeaderError::BadCrc => write!(f, "segment header CRC mismatch"),
            HeaderError::UnsupportedVersion(v) if *v > FORMAT_VERSION => write!(
                f,
                "segment format version {v} is newer than this runlog understands ({FORMAT_VERSION}); upgrade runlog"
            ),
            HeaderError::UnsupportedVersion(v) => {
                write!(f, "unsupported segment format version {v}")
            }
            HeaderError::BadHeaderLen(l) => write!(f, "segment header length {l}, expected {HEADER_LEN}"),
            HeaderError::BadRunId => write!(f, "segment header run id is not ASCII"),
        }
    }
}

/// Encode a segment header.
pub fn encode_header(seq: u32, run_id: &str) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[HDR_MAGIC..HDR_MAGIC + MAGIC.len()].copy_from_slice(&MAGIC);
    h[HDR_VERSION..HDR_VERSION + 2].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[HDR_LEN_FIELD..HDR_LEN_FIELD + 2].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    h[HDR_SEQ..HDR_SEQ + 4].copy_from_slice(&seq.to_le_bytes());
    let id = run_id.as_bytes();
    let n = id.len().min(RUN_ID_FIELD_LEN);
    h[HDR_RUN_ID..HDR_RUN_ID + n].copy_from_slice(&id[..n]);
    let crc = crc32fast::hash(&h[..HDR_CRC]);
    h[HDR_CRC..HDR_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decode a segment header from the start of a file.
pub fn decode_header(buf: &[u8]) -> Result<SegmentHeader, HeaderError> {
    if buf.len() < HEADER_LEN {
        if buf.len() >= MAGIC.len() && buf[..MAGIC.len()] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        return Err(HeaderError::Short(buf.len()));
    }
    if buf[..MAGIC.len()] != MAGIC {
        return Err(HeaderError::BadMagic);
    }
    // The version is checked before the CRC so that a future format (whose header may differ)
    // is reported as such rather than as corruption.
    let version = u16::from_le_bytes([buf[HDR_VERSION], buf[HDR_VERSION + 1]]);
    if version != FORMAT_VERSION {
        return Err(HeaderError::UnsupportedVersion(version));
    }
    if rd_u32(buf, HDR_CRC) != crc32fast::hash(&buf[..HDR_CRC]) {
        return Err(HeaderError::BadCrc);
    }
    let hlen = u16::from_le_bytes([buf[HDR_LEN_FIELD], buf[HDR_LEN_FIELD + 1]]);
    if hlen as usize != HEADER_LEN {
        return Err(HeaderError::BadHeaderLen(hlen));
    }
    let seq = rd_u32(buf, HDR_SEQ);
    let field = &buf[HDR_RUN_ID..HDR_RUN_ID + RUN_ID_FIELD_LEN];
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let id = &field[..end];
    if !id.is_ascii() {
        return Err(HeaderError::BadRunId);
    }
    Ok(SegmentHeader {
        version,
        seq,
        run_id: String::from_utf8_lossy(id).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bytes_never_parse_as_a_frame() {
        let z = [0u8; 64];
        assert_eq!(decode_frame(&z), Err(FrameError::BadType(0)));
    }

    #[test]
    fn frame_round_trips() {
        let f = encode_frame(FrameType::Label, b"hello");
        let d = decode_frame(&f).unwrap();
        assert_eq!(d.kind, FrameType::Label);
        assert_eq!(d.payload, b"hello");
        assert_eq!(d.encoded_len(), f.len());
    }

    #[test]
    fn crc_covers_type_and_length() {
        let f = encode_frame(FrameType::Label, b"hello");
        let mut g = f.clone();
        g[FR_TYPE] = FrameType::Record as u8;
        assert!(matches!(decode_frame(&g), Err(FrameError::BadCrc { .. })));
        let mut g = f.clone();
        g.push(0);
        g[FR_LEN] = 6;
        assert!(matches!(decode_frame(&g), Err(FrameError::BadCrc { .. })));
    }

    #[test]
    fn oversized_length_is_rejected_before_reading() {
        let mut f = encode_frame(FrameType::Record, b"x");
        f[FR_LEN..FR_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame(&f), Err(FrameError::TooLong(u32::MAX)));
    }

    #[test]
    fn header_round_trips_and_rejects_future_versions() {
        let h = encode_header(3, "2026-11-28T12:10:55.123456Z-0123456789ab");
        let d = decode_header(&h).unwrap();
        assert_eq!(d.seq, 3);
        assert_eq!(d.run_id, "2026-11-28T12:10:55.123456Z-0123456789ab");
        let mut f = h;
        f[HDR_VERSION] = 2;
        assert_eq!(decode_header(&f), Err(HeaderError::UnsupportedVersion(2)));
        let mut m = h;
        m[0] = b'X';
        assert_eq!(decode_header(&m), Err(HeaderError::BadMagic));
    }
}
