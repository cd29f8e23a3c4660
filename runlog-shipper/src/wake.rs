//! What wakes the shipper: file-system events on the journal (a hint only: events can be
//! lost, the periodic rescan makes that harmless), signals, and the retry backoff.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use runlog::journal::layout::JOBS_DIR;

/// A reason to wake up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Something changed in this job directory.
    Job(PathBuf),
    /// SIGTERM or SIGINT.
    Stop,
}

/// Watches `<journal>/jobs` recursively and sends the job directories that change.
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher")
    }
}

impl Watcher {
    /// Start watching.
    pub fn start(journal: &Path, tx: Sender<Wake>) -> notify::Result<Watcher> {
        let jobs = journal.join(JOBS_DIR);
        let jobs_c = jobs.clone();
        let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            for p in ev.paths {
                // <jobs>/<job dir> or <jobs>/<job dir>/<file>
                let Ok(rel) = p.strip_prefix(&jobs_c) else {
                    continue;
                };
                if let Some(first) = rel.components().next() {
                    let _ = tx.send(Wake::Job(jobs_c.join(first)));
                }
            }
        })?;
        w.watch(&jobs, RecursiveMode::Recursive)?;
        Ok(Watcher { _inner: w })
    }
}

/// Capped exponential backoff with jitter: the n-th consecutive failure waits a random time
/// between half and all of `min(cap, base * 2^(n-1))`.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
    seed: u64,
}

impl Backoff {
    /// A backoff starting at `base`, never above `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        Backoff {
            base,
            cap,
            failures: 0,
            seed: h.finish() | 1,
        }
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forget the failures (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Count a failure and return how long to wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << exp.min(20)).min(self.cap);
        // xorshift64
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = full / 2;
        let jitter_ns = (half.as_nanos() as u64).max(1);
        half + Duration::from_nanos(self.seed % jitter_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let waits: Vec<Duration> = (0..20).map(|_| b.fail()).collect();
        assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= Duration::from_millis(100));
        assert!(waits[3] >= Duration::from_millis(400) && waits[3] <= Duration::from_millis(800));
        for w in &waits[10..] {
            assert!(
                *w >= Duration::from_secs(15) && *w <= Duration::from_secs(30),
                "{w:?}"
            );
        }
        // Jitter: not all capped waits are equal.
        let distinct: std::collections::BTreeSet<_> = waits[10..].iter().collect();
        assert!(distinct.len() > 1);
        assert_eq!(b.failures(), 20);
        b.reset();
        assert!(b.fail() <= Duration::from_millis(100));
    }
}
