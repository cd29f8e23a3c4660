//! Confirming another Redis server (`spec/redis.md`, *Failover*): after a failover the shipper
//! uploads every run of the journal again, and records the new server only after a pass that
//! uploaded (or found in Redis) every run the journal holds. A run such a pass skips — it read
//! as running because a retention sweep held its lock for a moment, or it could not be read —
//! holds the confirmation back; after [`SET_ASIDE_AFTER`] such passes in a row it is reported
//! and set aside, so that one bad run cannot make every pass upload everything again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use runlog::journal::reader::{being_deleted, list_run_segments};
use runlog::journal::shipped::{read_shipped, write_shipped};

use crate::ship::Journal;

/// Passes over every job that may skip a run, in a row, before the run is set aside.
pub const SET_ASIDE_AFTER: u32 = 3;

/// The runs of one pass over every job that the new server is owed, and those it got.
#[derive(Debug, Default)]
pub(crate) struct Confirmation {
    /// (job dir, run id): the ended runs the pass was to upload, and every run listed as
    /// uploaded (`.shipped`, this epoch), whatever it reads as now.
    owed: BTreeSet<(PathBuf, String)>,
    /// The runs uploaded.
    done: BTreeSet<(PathBuf, String)>,
}

/// The key of a run in the state file: `<job dir name>/<run id>`.
fn state_key(dir: &Path, id: &str) -> String {
    let name = dir.file_name().map_or_else(
        || dir.to_string_lossy().into_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!("{name}/{id}")
}

impl Confirmation {
    /// What a pass over `dirs` that uploads `runs` (job dir, id) owes the new server.
    pub(crate) fn new<'a>(
        dirs: &[PathBuf],
        epoch: &str,
        runs: impl Iterator<Item = (&'a Path, &'a str)>,
    ) -> Confirmation {
        let mut owed: BTreeSet<(PathBuf, String)> = runs
            .map(|(d, id)| (d.to_path_buf(), id.to_owned()))
            .collect();
        for dir in dirs {
            let Ok(Some(s)) = read_shipped(dir) else {
                continue;
            };
            if s.epoch != epoch {
                continue;
            }
            owed.extend(s.runs.into_iter().map(|id| (dir.clone(), id)));
        }
        Confirmation {
            owed,
            done: BTreeSet::new(),
        }
    }

    /// `ids` of `dir` were uploaded (or found in Redis).
    pub(crate) fn uploaded(&mut self, dir: &Path, ids: &[&str]) {
        self.done
            .extend(ids.iter().map(|id| (dir.to_path_buf(), (*id).to_owned())));
    }

    /// The owed runs not uploaded that the journal still holds (a run deleted meanwhile, by
    /// retention or a cancel, is owed nothing).
    fn skipped(&self) -> Vec<(PathBuf, String)> {
        let mut present: BTreeMap<&Path, BTreeSet<String>> = BTreeMap::new();
        let mut out = Vec::new();
        for (dir, id) in self.owed.difference(&self.done) {
            let runs = present.entry(dir).or_insert_with(|| {
                // A directory that cannot be listed holds its runs back all the same.
                list_run_segments(dir).map_or_else(
                    |_| BTreeSet::from([id.clone()]),
                    |r| {
                        r.into_iter()
                            .filter(|(_, segs)| !being_deleted(segs))
                            .map(|(id, _)| id)
                            .collect()
                    },
                )
            });
            if runs.contains(id) {
                out.push((dir.clone(), id.clone()));
            }
        }
        out
    }

    /// After the pass: count the skipped runs' tries in the state, set aside those skipped
    /// [`SET_ASIDE_AFTER`] passes in a row (reported; dropped from `.shipped`, so they are
    /// uploaded like runs not shipped yet once they can be read), and say whether `server`
    /// may be recorded as confirmed (nothing is left owed).
    pub(crate) fn finish(self, journal: &mut Journal, server: &str) -> bool {
        let skipped = self.skipped();
        let before = std::mem::take(&mut journal.counters.skipped);
        let mut held = Vec::new();
        for (dir, id) in skipped {
            let key = state_key(&dir, &id);
            let tries = before.get(&key).copied().unwrap_or(0).saturating_add(1);
            if tries < SET_ASIDE_AFTER {
                journal.counters.skipped.insert(key, tries);
                held.push((dir, id, tries));
                continue;
            }
            log::error!(
                "run {id} in {} was skipped by {tries} passes in a row after Redis became \
                 another server ({server}), so it may be missing there; set aside: it no longer \
                 holds back recording that server, and is uploaded like a run not shipped yet \
                 once it can be read (check the file permissions and `runlog journal verify`)",
                dir.display()
            );
            drop_from_shipped(&dir, &id);
        }
        if let Some((dir, id, tries)) = held.first() {
            log::warn!(
                "the new Redis server {server} is not recorded as confirmed: {} run(s) of the \
                 journal were skipped in this pass (run {id} in {}, read as running or \
                 unreadable; pass {tries} of {SET_ASIDE_AFTER} before it is set aside); the \
                 next pass uploads every run again",
                held.len(),
                dir.display()
            );
        }
        held.is_empty()
    }
}

/// Drop `id` from the `.shipped` list of `dir`; whether it is not listed there now.
pub(crate) fn drop_from_shipped(dir: &Path, id: &str) -> bool {
    let mut s = match read_shipped(dir) {
        Ok(Some(s)) => s,
        Ok(None) => return true,
        Err(e) => {
            log::warn!("cannot read the uploaded runs of {}: {e}", dir.display());
            return false;
        }
    };
    if !s.runs.remove(id) {
        return true;
    }
    match write_shipped(dir, &s) {
        Ok(()) => true,
        Err(e) => {
            log::warn!(
                "cannot record run {id} as not uploaded in {}: {e}",
                dir.display()
            );
            false
        }
    }
}

/// Parse a `skipped <tries> <job dir name>/<run id>` line of the state file (without the
/// `skipped ` prefix).
pub(crate) fn parse_skipped(v: &str) -> Option<(String, u32)> {
    let (tries, key) = v.trim().split_once(' ')?;
    Some((key.to_owned(), tries.parse().ok()?))
}
