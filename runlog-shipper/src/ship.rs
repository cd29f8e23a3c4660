//! The shipper: finds ended runs in the journal that Redis does not have yet, uploads them,
//! records what was uploaded durably, applies local retention and the disk budget.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use runlog::journal::layout::{decode_job, JOBS_DIR, SEGMENT_EXT, SHIPPER_DIR, TMP_PREFIX};
use runlog::journal::reader::{
    being_deleted, list_job_dir, list_run_segments, quick_status, settled_status, RunStatus,
};
use runlog::journal::retention::{remove_run, sweep_job};
use runlog::journal::shipped::{read_shipped, write_file_atomic, write_shipped, Shipped};
use runlog::journal::storage;
use runlog::Config;

use crate::confirm::Confirmation;
use crate::prepare::{prepare_run, prepare_run_streamed, PrepareError, PreparedRun};
use crate::schema::ChunkBuilder;
use crate::upload::{Redis, UploadError};

/// A batch of runs is uploaded once their segment files add up to this many bytes.
const BATCH_JOURNAL_BYTES: u64 = 64 << 20;
/// ... or once it holds this many runs.
const BATCH_RUNS: usize = 256;
/// ... or once the chunks of the runs prepared add up to this many bytes: a batch is held in
/// memory, compressed, until it is uploaded, and logs that barely compress would otherwise
/// make that nearly its segment files' size.
const BATCH_CHUNK_BYTES: usize = 8 << 20;
/// A run whose segment files add up to more than this is streamed rather than batched: read
/// once, its chunks pushed to its stage list a part at a time while it is read, then made
/// visible whole by the upload script; the shipper's memory does not grow with the run
/// (spec/redis.md, *Upload*).
const STREAM_RUN_BYTES: u64 = 4 << 20;
/// A streamed run's chunks are pushed once this many bytes of them (or `pipeline-size`, if
/// smaller) are compressed: what it holds at once, besides a few segments, is about three
/// times this (the chunks, the commands, the bytes sent).
const STAGE_PART_BYTES: usize = 2 << 20;
/// Name of the lock file in `<journal>/shipper/`.
pub const LOCK_FILE: &str = "lock";
/// Name of the counters file in `<journal>/shipper/`.
pub const STATE_FILE: &str = "state";

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Runs uploaded.
    pub runs: u64,
    /// Records in them.
    pub records: u64,
    /// Bytes of chunk data sent.
    pub bytes: u64,
}

impl std::fmt::Display for Pass {
    /// `1 run (4 records, 1.2 KiB)`, for the shipper's log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} run{} ({} record{}, {})",
            self.runs,
            s(self.runs),
            self.records,
            s(self.records),
            human_bytes(self.bytes)
        )
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `12.0 MiB`, `3.2 GiB` (binary units, one
/// decimal, truncated).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut unit = 0;
    let mut scaled = n;
    while scaled >= 1024 * 1024 && unit + 2 < UNITS.len() {
        scaled /= 1024;
        unit += 1;
    }
    // `scaled` is below 1024 * 1024 (but for PiB, below 2^24): its tenths fit a u64 easily.
    let tenths = scaled * 10 / 1024;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit + 1])
}

/// An ended run in the journal that Redis does not have (under the current epoch).
#[derive(Clone, Debug)]
struct Candidate {
    job_dir: PathBuf,
    job_hint: String,
    id: String,
    segs: Vec<(u32, PathBuf)>,
    size: u64,
}

/// The durable counters of `<journal>/shipper/state`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Runs deleted before they were uploaded because the journal exceeded its disk budget.
    pub dropped_unshipped: u64,
    /// The `run_id` of the Redis server every run in the `.shipped` files was last confirmed
    /// on (one server, or the master Sentinel named); empty when not known.
    pub redis_server: String,
    /// Runs skipped by the passes after another server, in a row (`<job dir name>/<run id>`
    /// to passes): see [`crate::confirm`].
    pub skipped: BTreeMap<String, u32>,
}

impl Counters {
    fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("dropped-unshipped ") {
                c.dropped_unshipped = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("redis-server ") {
                let v = v.trim();
                if crate::upload::is_server_id(v) {
                    c.redis_server = v.to_owned();
                }
            } else if let Some(v) = line.strip_prefix("skipped ") {
                c.skipped.extend(crate::confirm::parse_skipped(v));
            }
        }
        c
    }
}

/// The journal side of shipping.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    config: Config,
    _lock: File,
    /// Durable counters.
    pub counters: Counters,
}

pub(crate) fn job_name_hint(job_dir: &Path) -> String {
    let enc = job_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    decode_job(&enc).unwrap_or(enc)
}

impl Journal {
    /// Open the journal for shipping: create `<journal>/shipper/` (which tells jobs to keep
    /// unshipped runs) and take its lock, so that one shipper ships a journal.
    pub fn open(config: &Config) -> Result<Journal, String> {
        let dir = config.journal_dir.clone();
        let sdir = dir.join(SHIPPER_DIR);
        if let Some(group) = &config.journal_group {
            runlog::journal::shared::prepare(&dir, group).map_err(|e| e.to_string())?;
        }
        // Through the storage seam: `jobs/` is private, or the group's in a shared journal.
        storage::create_dir_private(&dir.join(JOBS_DIR)).map_err(|e| {
            format!(
                "journal dir {} cannot be created: {e}; create it or set [runlog] journal-dir",
                dir.display()
            )
        })?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&sdir)
            .map_err(|e| {
            format!(
                "shipper state dir {} cannot be created: {e}; is the journal dir writable by this user?",
                sdir.display()
            )
        })?;
        // Neither the state dir nor the lock may be a link: the lock file is truncated and
        // written, and a planted link would make that happen to a file outside the journal.
        if storage::is_symlink(&sdir) {
            return Err(format!("{}: {}", sdir.display(), storage::symlink_error()));
        }
        let lock_path = sdir.join(LOCK_FILE);
        let mut lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| {
                let e = if e.raw_os_error() == Some(libc::ELOOP) {
                    storage::symlink_error()
                } else {
                    e
                };
                format!("shipper lock {} cannot be opened: {e}", lock_path.display())
            })?;
        if lock.try_lock().is_err() {
            let pid = fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(format!(
                "another runlog-shipper (pid {}) already ships journal {}; stop it first",
                pid.trim(),
                dir.display()
            ));
        }
        let _ = lock.set_len(0);
        let _ = write!(lock, "{}", std::process::id());
        let mut state = Vec::new();
        let counters = storage::read_bounded(&sdir.join(STATE_FILE), 1 << 16, &mut state)
            .map(|()| Counters::parse(&String::from_utf8_lossy(&state)))
            .unwrap_or_default();
        Ok(Journal {
            dir,
            config: config.clone(),
            _lock: lock,
            counters,
        })
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every job directory.
    pub fn job_dirs(&self) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for ent in fs::read_dir(self.dir.join(JOBS_DIR))? {
            let ent = ent?;
            let kind = ent.file_type()?;
            // A link is listed too: listing its runs refuses it, naming it, every pass.
            if kind.is_dir() || kind.is_symlink() {
                out.push(ent.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// `(max-logs, max-failed-logs)` of a job.
    pub fn limits(&self, job: &str) -> (usize, usize) {
        (
            self.config.max_logs_for(job),
            self.config.max_failed_logs_for(job),
        )
    }

    fn save_counters(&self) -> io::Result<()> {
        let mut text = format!("dropped-unshipped {}\n", self.counters.dropped_unshipped);
        if !self.counters.redis_server.is_empty() {
            text.push_str(&format!("redis-server {}\n", self.counters.redis_server));
        }
        for (run, tries) in &self.counters.skipped {
            text.push_str(&format!("skipped {tries} {run}\n"));
        }
        write_file_atomic(
            &self.dir.join(SHIPPER_DIR).join(STATE_FILE),
            text.as_bytes(),
        )
    }

    /// The runs of `job_dir` listed as uploaded under `epoch`.
    ///
    /// A list from another epoch (Redis lost its data since) is replaced by an empty one at
    /// once, so that jobs keep those runs again until they are uploaded anew.
    fn shipped(job_dir: &Path, epoch: &str) -> BTreeSet<String> {
        match read_shipped(job_dir) {
            Ok(Some(s)) if s.epoch == epoch => s.runs,
            Ok(None) => BTreeSet::new(),
            Ok(Some(_)) => {
                let fresh = Shipped {
                    epoch: epoch.to_owned(),
                    runs: BTreeSet::new(),
                };
                if let Err(e) = write_shipped(job_dir, &fresh) {
                    log::warn!("cannot reset {}: {e}", job_dir.display());
                }
                BTreeSet::new()
            }
            Err(e) => {
                log::warn!("{e}; uploading the job's runs again (uploads are idempotent)");
                BTreeSet::new()
            }
        }
    }

    /// Ended runs of these job directories that Redis does not have, oldest first; with
    /// `every`, all ended runs (their `.shipped` lists are not trusted).
    fn candidates(&self, dirs: &[PathBuf], epoch: &str, every: bool) -> Vec<Candidate> {
        let mut out = Vec::new();
        for dir in dirs {
            let (runs, strays) = match list_job_dir(dir) {
                Ok(l) => (l.runs, l.strays),
                Err(e) => {
                    log::warn!("cannot list {}: {e}", dir.display());
                    continue;
                }
            };
            for stray in strays {
                // Never a run: not uploaded, and it cannot keep `.shipped` from being written.
                log::warn!(
                    "{} is not a name runlog makes in a job directory; it is not shipped \
                     (move it out of the journal)",
                    stray.display()
                );
            }
            if runs.is_empty() {
                continue;
            }
            let shipped = if every {
                BTreeSet::new()
            } else {
                Self::shipped(dir, epoch)
            };
            let hint = job_name_hint(dir);
            for (id, mut segs) in runs {
                if shipped.contains(&id) || being_deleted(&segs) {
                    continue;
                }
                // Settled: an ended run is never taken for crashed from a stale listing.
                match settled_status(&mut segs) {
                    _ if being_deleted(&segs) => continue,
                    RunStatus::Running | RunStatus::Cancelled => continue,
                    RunStatus::Ok | RunStatus::Failed | RunStatus::Crashed | RunStatus::Damaged => {
                    }
                }
                let size = segs
                    .iter()
                    .map(|(_, p)| storage::metadata(p).map_or(0, |m| m.len))
                    .sum();
                out.push(Candidate {
                    job_dir: dir.clone(),
                    job_hint: hint.clone(),
                    id,
                    segs,
                    size,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Upload the ended runs of these job directories that Redis lacks; record them in the
    /// jobs' `.shipped` files; apply local retention to the jobs that changed.
    /// `stop()` is checked between batches.
    pub fn ship(
        &mut self,
        redis: &mut Redis,
        dirs: &[PathBuf],
        stop: &dyn Fn() -> bool,
    ) -> Result<Pass, UploadError> {
        // Another server than the one the `.shipped` lists were confirmed on (a failover, or a
        // restart that kept the epoch, e.g. from an AOF): writes the old one acknowledged may
        // be missing there. Every run still in the journal is uploaded again (runs Redis has
        // are left as they are); only a pass over every job counts as confirmation.
        // With no server recorded (a new journal, a state file lost, a shipper that could not
        // run INFO), nothing in `.shipped` was confirmed on this one either: one full pass
        // uploads everything again (nothing, for a new journal).
        let server = redis.server_id.clone().unwrap_or_default();
        let known = &self.counters.redis_server;
        let every = !server.is_empty() && server != *known;
        // Only a pass over exactly the job directories there are confirms them all.
        let all_dirs = every && matches!(self.job_dirs(), Ok(d) if d == dirs);
        if all_dirs && !known.is_empty() {
            log::warn!(
                "Redis is another server now ({server}, was {known}: a failover or a \
                 restart): uploading every run in the journal again, in case writes the old \
                 one acknowledged were lost"
            );
        }
        let cands = self.candidates(dirs, &redis.epoch, every);
        let mut confirm = all_dirs.then(|| {
            Confirmation::new(
                dirs,
                &redis.epoch,
                cands.iter().map(|c| (c.job_dir.as_path(), c.id.as_str())),
            )
        });
        let mut pass = Pass::default();
        let mut start = 0;
        while start < cands.len() {
            if stop() {
                return Ok(pass);
            }
            if cands[start].size > STREAM_RUN_BYTES {
                let batch = &cands[start..start + 1];
                start += 1;
                let prepared = vec![stream_run(redis, &batch[0])?];
                self.upload_batch(redis, batch, prepared, &mut pass, &mut confirm)?;
                continue;
            }
            let mut end = start;
            let mut bytes = 0;
            while end < cands.len()
                && end - start < BATCH_RUNS
                && cands[end].size <= STREAM_RUN_BYTES
                && (end == start || bytes < BATCH_JOURNAL_BYTES)
            {
                bytes += cands[end].size;
                end += 1;
            }
            let prepared = prepare_all(&cands[start..end], BATCH_CHUNK_BYTES);
            let batch = &cands[start..start + prepared.len()];
            start += prepared.len();
            self.upload_batch(redis, batch, prepared, &mut pass, &mut confirm)?;
        }
        // (Only for another server: `every`.) A pass that skipped a run confirms nothing.
        if let Some(c) = confirm {
            if c.finish(self, &server) {
                self.counters.redis_server = server;
            }
            if let Err(e) = self.save_counters() {
                // Only costs uploading every run again after the next start.
                log::warn!("cannot save shipper state: {e}");
            }
        }
        Ok(pass)
    }

    /// Upload the prepared runs of `batch` (in its order; a run that could not be prepared is
    /// logged and left for the next pass), count them in `pass`, and record them as shipped
    /// (and, in a pass after another server, as confirmed there).
    fn upload_batch(
        &self,
        redis: &mut Redis,
        batch: &[Candidate],
        prepared: Vec<Result<PreparedRun, PrepareError>>,
        pass: &mut Pass,
        confirm: &mut Option<Confirmation>,
    ) -> Result<(), UploadError> {
        let mut runs = Vec::with_capacity(prepared.len());
        // Per job dir: the job's name (from its runs: a long name's dir name is cut, so
        // it cannot be decoded into the name the limits are configured under) and ids.
        let mut done: BTreeMap<&Path, (String, Vec<&str>)> = BTreeMap::new();
        for (c, p) in batch.iter().zip(prepared) {
            match p {
                Ok(run) => {
                    done.entry(&c.job_dir)
                        .or_insert_with(|| (run.job.clone(), Vec::new()))
                        .1
                        .push(&c.id);
                    runs.push(run);
                }
                // Deleted meanwhile, or not ended after all: nothing to do.
                Err(PrepareError::NotShippable) => {}
                Err(e) => log::error!(
                    "run {} of job {:?} cannot be read, not uploaded: {e}",
                    c.id,
                    c.job_hint
                ),
            }
        }
        let limits = |job: &str| self.limits(job);
        redis.upload(&runs, &limits)?;
        for r in &runs {
            pass.runs += 1;
            pass.records += r.records;
            pass.bytes += r.chunk_bytes() as u64;
            log::debug!(
                "uploaded run {} of job {:?}: {}, {} records, {} bytes",
                r.id,
                r.job,
                r.status,
                r.records,
                r.chunk_bytes()
            );
        }
        for (dir, (job, ids)) in done {
            if let Some(c) = confirm {
                c.uploaded(dir, &ids);
            }
            self.record_shipped(dir, &job, &redis.epoch, &ids);
        }
        Ok(())
    }

    /// Add `ids` to the job's `.shipped` (dropping runs no longer in the journal), then apply
    /// local retention.
    pub(crate) fn record_shipped(&self, dir: &Path, job: &str, epoch: &str, ids: &[&str]) {
        let mut runs = Self::shipped(dir, epoch);
        runs.extend(ids.iter().map(|s| s.to_string()));
        if let Ok(present) = list_run_segments(dir) {
            runs.retain(|id| present.contains_key(id));
        }
        let s = Shipped {
            epoch: epoch.to_owned(),
            runs,
        };
        if let Err(e) = write_shipped(dir, &s) {
            // The runs are uploaded again later; uploads are idempotent.
            log::error!(
                "cannot record uploaded runs in {}: {e}; they will be uploaded again",
                dir.display()
            );
            return;
        }
        let (max_ok, max_failed) = self.limits(job);
        if let Err(e) = sweep_job(dir, max_ok, max_failed, true) {
            log::warn!("local retention in {}: {e}", dir.display());
        }
    }

    /// Keep the journal within `budget` bytes: delete the oldest uploaded runs first, then,
    /// loudly and counted, the oldest runs not uploaded yet. Running runs are never touched.
    /// Returns the number of unshipped runs deleted.
    pub fn enforce_budget(&mut self, budget: u64, epoch: Option<&str>) -> u64 {
        let Ok(dirs) = self.job_dirs() else {
            return 0;
        };
        let mut total = 0u64;
        // (not uploaded yet?, the run)
        let mut ended: Vec<(bool, Candidate)> = Vec::new();
        for dir in &dirs {
            // A planted link is not the journal's (the passes report it).
            if storage::is_symlink(dir) {
                continue;
            }
            // Segment files being created, or left by a writer that died (jobs remove those
            // once stale): not part of any run, but on the disk all the same.
            if let Ok(names) = storage::read_dir(dir) {
                for name in names {
                    let name = name.to_string_lossy();
                    if name.starts_with(TMP_PREFIX) && name.ends_with(SEGMENT_EXT) {
                        total += storage::metadata(&dir.join(&*name)).map_or(0, |m| m.len);
                    }
                }
            }
            let Ok(runs) = list_run_segments(dir) else {
                continue;
            };
            let shipped = read_shipped(dir)
                .ok()
                .flatten()
                .filter(|s| epoch.is_none_or(|e| e == s.epoch))
                .map(|s| s.runs)
                .unwrap_or_default();
            for (id, segs) in runs {
                let size: u64 = segs
                    .iter()
                    .map(|(_, p)| storage::metadata(p).map_or(0, |m| m.len))
                    .sum();
                total += size;
                if being_deleted(&segs) || quick_status(&segs) == RunStatus::Running {
                    continue;
                }
                ended.push((
                    !shipped.contains(&id),
                    Candidate {
                        job_dir: dir.clone(),
                        job_hint: job_name_hint(dir),
                        id,
                        segs,
                        size,
                    },
                ));
            }
        }
        if total <= budget {
            return 0;
        }
        ended.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        let mut dropped = 0;
        for (unshipped, c) in ended {
            let Candidate {
                job_hint,
                id,
                job_dir: dir,
                segs,
                size,
            } = c;
            if total <= budget {
                break;
            }
            if let Err(e) = remove_run(&segs) {
                log::error!("cannot delete run {id} in {}: {e}", dir.display());
                continue;
            }
            total = total.saturating_sub(size);
            if unshipped {
                dropped += 1;
                self.counters.dropped_unshipped += 1;
                log::error!(
                    "DISK BUDGET EXCEEDED: deleted run {id} of job {:?} ({size} bytes) before it was uploaded to Redis; \
                     {} runs lost this way so far; raise [runlog-shipper] disk-budget or fix the Redis connection",
                    job_hint,
                    self.counters.dropped_unshipped
                );
            } else {
                log::info!(
                    "disk budget: deleted uploaded run {id} of job {job_hint:?} ({size} bytes) from the journal"
                );
            }
        }
        if dropped > 0 {
            if let Err(e) = self.save_counters() {
                log::error!("cannot save shipper counters: {e}");
            }
        }
        dropped
    }
}

/// Read a big run once, pushing its chunks to its stage list a pipeline at a time as they are
/// made ([`Redis::stage`]); what is left (its last chunks and its metadata) is uploaded like a
/// run prepared whole, and the upload script makes it visible. A run that turns out not to be
/// shippable, or that cannot be read, after its first chunks were staged has its stage list
/// deleted. A Redis error ends the upload (the stage list expires, or is replaced by the next
/// attempt).
fn stream_run(
    redis: &mut Redis,
    c: &Candidate,
) -> Result<Result<PreparedRun, PrepareError>, UploadError> {
    let mut builder = match ChunkBuilder::new() {
        Ok(b) => b,
        Err(e) => return Ok(Err(PrepareError::Io(e))),
    };
    let limit = redis.pipeline_bytes().min(STAGE_PART_BYTES);
    // The job the chunks were staged under, once some were.
    let mut staged: Option<String> = None;
    let mut failed = None;
    let r = prepare_run_streamed(
        &c.job_hint,
        &c.id,
        &c.segs,
        &mut builder,
        true,
        &mut |job, b| {
            if b.done_bytes() < limit {
                return true;
            }
            let chunks = b.take_done();
            match redis.stage(job, &c.id, &chunks, staged.is_none()) {
                Ok(()) => {
                    staged = Some(job.to_owned());
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    if let (Err(_), Some(job)) = (&r, &staged) {
        redis.discard_stage(job, &c.id)?;
    }
    Ok(r)
}

/// Prepare runs on all cores, in order, until their chunks add up to `budget` bytes: the
/// results of the first runs of `batch` (at least one), in order.
fn prepare_all(batch: &[Candidate], budget: usize) -> Vec<Result<PreparedRun, PrepareError>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(batch.len())
        .max(1);
    let next = AtomicUsize::new(0);
    // Bytes of chunks prepared: no run is started once they reach the budget.
    let held = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PreparedRun, PrepareError>>>> =
        Mutex::new((0..batch.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let mut builder = match ChunkBuilder::new() {
                    Ok(b) => b,
                    Err(e) => {
                        log::error!("cannot create a Zstandard compressor: {e}");
                        return;
                    }
                };
                while held.load(Ordering::Relaxed) < budget {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = batch.get(i) else { break };
                    let r = prepare_run(&c.job_hint, &c.id, &c.segs, &mut builder);
                    if let Ok(run) = &r {
                        held.fetch_add(run.chunk_bytes(), Ordering::Relaxed);
                    }
                    if let Ok(mut res) = results.lock() {
                        res[i] = Some(r);
                    }
                }
            });
        }
    });
    // Runs are taken in order, and every run taken is prepared. None taken (no compressor
    // could be made): the whole batch fails, as each of its runs would.
    let mut taken = next.into_inner().min(batch.len());
    if taken == 0 {
        taken = batch.len();
    }
    let mut results = results.into_inner().unwrap_or_default();
    results.truncate(taken);
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(PrepareError::Io(io::Error::other(
                    "no compressor available",
                )))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{human_bytes, Pass};

    #[test]
    fn passes_and_byte_counts_read_as_a_person_would_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1023.9 KiB");
        assert_eq!(human_bytes(12 << 20), "12.0 MiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16383.9 PiB");
        let p = |runs, records, bytes| {
            Pass {
                runs,
                records,
                bytes,
            }
            .to_string()
        };
        assert_eq!(p(1, 1, 10), "1 run (1 record, 10 B)");
        assert_eq!(p(2, 40, 5000), "2 runs (40 records, 4.8 KiB)");
        assert_eq!(p(0, 0, 0), "0 runs (0 records, 0 B)");
    }
}
