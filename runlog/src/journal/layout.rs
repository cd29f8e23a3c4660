//! Where things live in a journal directory, and how names become paths.
//!
//! ```text
//! <journal>/jobs/<encoded job>/<run id>.<seq:06>.seg
//! <journal>/jobs/<encoded job>/.tmp-<run id>.<seq:06>.seg   (being created; also .tmp-sync-)
//! <journal>/jobs/<encoded job>/.shipped                     (runs shipped; the shipper writes it)
//! <journal>/jobs/<encoded job>/.shipped.tmp                 (.shipped being replaced)
//! <journal>/shipper/                                        (a shipper ships this journal)
//! ```
//! A job name never becomes a path unencoded: every byte outside `[A-Za-z0-9_.-]` (and a
//! leading `.`) is written as `%XX`; an encoding longer than [`MAX_ENCODED_JOB`] bytes is cut
//! and suffixed with `~` and the FNV-1a-64 hash of the name. The exact name is in each run's
//! BEGIN frame.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::writer::SYNC_TMP_TAG;
use crate::time::format_micros;

/// Subdirectory of the journal that holds one directory per job.
pub const JOBS_DIR: &str = "jobs";
/// Segment file extension.
pub const SEGMENT_EXT: &str = "seg";
/// Prefix of a segment file that is still being created.
pub const TMP_PREFIX: &str = ".tmp-";
/// File in a job directory that lists the runs a shipper has shipped (see
/// [`shipped`](super::shipped)). Its name starts with `.`: segment listings ignore it.
pub const SHIPPED_FILE: &str = ".shipped";
/// The temporary file a new [`SHIPPED_FILE`] is written to before it is renamed over it.
pub const SHIPPED_TMP_FILE: &str = ".shipped.tmp";
/// Subdirectory of the journal a shipper creates when it starts: while it exists, the journal
/// counts as shipped, and retention keeps runs until they are listed in their job's
/// [`SHIPPED_FILE`].
pub const SHIPPER_DIR: &str = "shipper";
/// Longest encoded job directory name kept whole.
pub const MAX_ENCODED_JOB: usize = 120;
const CUT_ENCODED_JOB: usize = 100;

/// FNV-1a, 64 bit (a fixed, documented hash: directory names must not depend on the build).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The directory name for a job.
pub fn encode_job(job: &str) -> String {
    let mut out = String::with_capacity(job.len());
    for (i, &b) in job.as_bytes().iter().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > MAX_ENCODED_JOB {
        let b = out.as_bytes();
        let mut cut = CUT_ENCODED_JOB;
        // Do not split a %XX escape.
        if b[cut - 1] == b'%' {
            cut -= 1;
        } else if b[cut - 2] == b'%' {
            cut -= 2;
        }
        out.truncate(cut);
        out.push_str(&format!("~{:016x}", fnv1a64(job.as_bytes())));
    }
    out
}

/// Decode a directory name made by [`encode_job`]; `None` for a cut (hashed) or foreign name.
pub fn decode_job(enc: &str) -> Option<String> {
    if enc.contains('~') {
        return None;
    }
    let b = enc.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = enc.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The directory of a job inside a journal.
pub fn job_dir(journal: &Path, job: &str) -> PathBuf {
    journal.join(JOBS_DIR).join(encode_job(job))
}

/// File name of segment `seq` of a run.
pub fn segment_name(run_id: &str, seq: u32) -> String {
    format!("{run_id}.{seq:06}.{SEGMENT_EXT}")
}

/// Split a segment file name, `<run id>.<6 digits>.seg`, into run id and sequence number.
/// `None` for any other name, including one whose id is not a run id ([`is_run_id`]).
pub fn parse_segment_name(name: &str) -> Option<(&str, u32)> {
    let stem = name.strip_suffix(".seg")?;
    let (id, seq) = stem.rsplit_once('.')?;
    if seq.len() != 6 || !seq.bytes().all(|b| b.is_ascii_digit()) || !is_run_id(id) {
        return None;
    }
    Some((id, seq.parse().ok()?))
}

/// Whether a name in a job directory is one that runlog makes there: a segment
/// ([`parse_segment_name`]), a segment being created (`.tmp-` or `.tmp-sync-` and a segment
/// name), [`SHIPPED_FILE`] or [`SHIPPED_TMP_FILE`]. Anything else is a stray: never read as
/// a run, and reported.
pub fn is_job_dir_entry(name: &str) -> bool {
    if name == SHIPPED_FILE || name == SHIPPED_TMP_FILE || parse_segment_name(name).is_some() {
        return true;
    }
    name.strip_prefix(TMP_PREFIX).is_some_and(|rest| {
        let rest = rest.strip_prefix(SYNC_TMP_TAG).unwrap_or(rest);
        parse_segment_name(rest).is_some()
    })
}

/// Length of a run id: `2026-11-28T12:10:55.123456Z-0123456789ab`.
pub const RUN_ID_LEN: usize = 27 + 1 + 12;

/// A new run id: the UTC start time to the microsecond, then 48 random bits (hex).
///
/// Ids sort by start time; the random part makes them unique across hosts and processes.
pub fn new_run_id(start_ns: i64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS once per process; mixing in pid, a counter and the
    // clock makes every call distinct.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_i64(start_ns);
    h.write_i64(crate::time::now_ns());
    let r = h.finish() & 0xffff_ffff_ffff;
    format!("{}-{r:012x}", format_micros(start_ns))
}

/// Is this a run id, as [`new_run_id`] makes them: `YYYY-MM-DDTHH:MM:SS.ffffffZ-` and 12
/// lower-case hex digits (so it is safe as a file name and its start time can be read)?
pub fn is_run_id(s: &str) -> bool {
    const SHAPE: &[u8; RUN_ID_LEN] = b"dddd-dd-ddTdd:dd:dd.ddddddZ-hhhhhhhhhhhh";
    s.len() == RUN_ID_LEN
        && s.bytes().zip(SHAPE).all(|(b, want)| match want {
            b'd' => b.is_ascii_digit(),
            b'h' => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            _ => b == *want,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_job_names_stay_inside_and_round_trip() {
        let long = "x".repeat(10_000);
        let names = [
            "../../etc/passwd",
            "a/b",
            "a\0b",
            ".",
            "..",
            ".hidden",
            "ünïcødé ✓",
            "%41",
            "a~b",
            long.as_str(),
        ];
        for n in names {
            let e = encode_job(n);
            assert!(
                !e.contains('/') && !e.contains('\0') && e != "." && e != "..",
                "{e}"
            );
            assert!(!e.starts_with('.'), "{e}");
            assert!(e.len() <= MAX_ENCODED_JOB + 17, "{}", e.len());
            if e.len() <= MAX_ENCODED_JOB && !e.contains('~') {
                assert_eq!(decode_job(&e).as_deref(), Some(n));
            }
        }
        assert_eq!(encode_job("recurring-job-32"), "recurring-job-32");
        assert_ne!(encode_job(&"y".repeat(10_000)), encode_job(&long));
    }

    #[test]
    fn run_ids_are_unique_and_sortable() {
        let a = new_run_id(1_000_000_000);
        let b = new_run_id(1_000_000_000);
        assert_ne!(a, b);
        assert!(is_run_id(&a), "{a}");
        assert!(new_run_id(2_000_000_000) > a);
        let name = segment_name(&a, 7);
        assert_eq!(parse_segment_name(&name), Some((a.as_str(), 7)));
    }
}
