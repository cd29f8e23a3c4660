//! What the SIGBUS tests (`tests/tests/sigbus.rs`) and their child process
//! (`src/bin/sigbuskid.rs`) agree on.

use std::path::{Path, PathBuf};

/// The job the child writes its run of.
pub const JOB: &str = "sigbus-job";

/// Record `i` the child logs: a numbered line padded to about 200 bytes, so that a few hundred
/// records span many pages of a segment.
pub fn message(i: u64) -> String {
    let mut s = format!("record {i:06} ");
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while s.len() < 200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{:016x}", x));
    }
    s
}

/// The segment `seq` of run `id` of [`JOB`] in `journal`.
pub fn segment_path(journal: &Path, id: &str, seq: u32) -> PathBuf {
    journal
        .join("jobs")
        .join(JOB)
        .join(format!("{id}.{seq:06}.seg"))
}
