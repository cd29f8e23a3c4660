//! Where runs are read from: Redis and the local journal, merged into one view.
//!
//! A run shipped to Redis and still in the local journal is one run (the same id); a run only
//! in the journal (ongoing, not shipped yet, or no Redis) or only in Redis (shipped from
//! another host, or removed locally by retention) is listed all the same. Records of a run
//! that is in both are read from the journal, which is nearer.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;

use runlog::journal::payload::RecordRef;
use runlog::{Config, ConfigOverrides, ConfigSource, Journal, ReadError, RunInfo, RunStatus};

use crate::args::SourceArg;
use crate::redis_store::{RedisError, RedisRun, RedisStore, Window};
use crate::when::Range;
use crate::{warn, Ctx, Error};

/// What readers call a run that Redis lists without its hash or chunks.
pub(crate) const MISSING_FROM_REDIS: &str = "missing from Redis (evicted or deleted)";

/// Where a run was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Only in the local journal.
    Local,
    /// Only in Redis.
    Redis,
    /// In both.
    Both,
}

impl Origin {
    /// `local`, `redis`, `both`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Redis => "redis",
            Origin::Both => "both",
        }
    }
}

/// A run in the merged view.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    /// Its metadata (the journal's when it is in both).
    pub(crate) info: RunInfo,
    /// Where it is.
    pub(crate) origin: Origin,
    /// Redis's copy, when there is one.
    pub(crate) redis: Option<RedisRun>,
}

impl Run {
    /// Records in the run.
    pub(crate) fn records(&self) -> u64 {
        self.info.records
    }
}

/// A job in the merged view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) name: String,
    /// Runs kept (both sources, each run once).
    pub(crate) runs: usize,
    pub(crate) last_start_ns: Option<i64>,
    pub(crate) last_status: Option<RunStatus>,
}

/// The resolved config: the journal directory and the Redis table.
fn load_config(ctx: &Ctx) -> Result<(PathBuf, Option<runlog::RedisConfig>), Error> {
    let source = match &ctx.config {
        Some(f) => ConfigSource::File(f.clone()),
        None => ConfigSource::Search,
    };
    // `--journal-dir` is applied after the config is resolved rather than passed as a
    // `ConfigOverrides` value: those are the program's defaults, below the config file and
    // `RUNLOG_*` variables, while an option typed on the command line must win over both.
    let config = Config::load(&source, &ConfigOverrides::default())
        .map_err(|e| Error::usage(e.to_string()))?;
    let dir = ctx.journal_dir.clone().unwrap_or(config.journal_dir);
    Ok((dir, config.redis))
}

/// The journal directory the command line, environment or config file names.
pub(crate) fn journal_dir(ctx: &Ctx) -> Result<PathBuf, Error> {
    load_config(ctx).map(|(dir, _)| dir)
}

/// A library read error as a command error: a missing job or run is "not found" (exit 3),
/// anything else a failure (exit 1).
pub(crate) fn read_error(e: ReadError) -> Error {
    match e {
        ReadError::NoSuchJob { .. } | ReadError::NoSuchRun { .. } => {
            Error::not_found(e.to_string())
        }
        ReadError::Io { path, source } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            // A journal shared by a group: say which and how to join it.
            let why = path
                .ancestors()
                .find_map(|d| runlog::journal::shared::explain_denied(d, &source));
            match why {
                Some(why) => Error::failed(format!(
                    "cannot read the journal: {}: {source}: {why}",
                    path.display()
                )),
                None => Error::failed(format!(
                    "cannot read the journal: {}: {source}",
                    path.display()
                )),
            }
        }
        e => Error::failed(format!("cannot read the journal: {e}")),
    }
}

fn redis_failed(e: RedisError) -> Error {
    match e {
        RedisError::Redis(m) => Error::Unreachable(m),
        RedisError::Data(m) => Error::failed(m),
    }
}

/// Redis and the local journal, as `--source` asks.
#[derive(Debug)]
pub(crate) struct Store {
    journal: Option<Journal>,
    journal_dir: PathBuf,
    redis: Option<RedisStore>,
    /// `[runlog-redis]` is configured (reachable or not): ended runs are meant to be shipped.
    shipping: bool,
    /// Ended runs of the local journal that the last `jobs` or `runs_in` found not shipped
    /// yet (with `shipping` only).
    pub(crate) waiting: usize,
}

impl Store {
    /// Open the sources `--source` names. In `auto`, a Redis that is configured but cannot
    /// be reached is left out with one warning; a journal directory that does not exist
    /// means no local runs.
    pub(crate) fn open(ctx: &Ctx) -> Result<Store, Error> {
        let (journal_dir, rc) = load_config(ctx)?;
        let shipping = rc.is_some();
        let redis = match (ctx.source, rc) {
            (SourceArg::Local, _) => None,
            (SourceArg::Redis, None) => {
                return Err(Error::usage(
                    "--source redis: no Redis is configured; set url in the [runlog-redis] \
                     table of the config file, or RUNLOG_REDIS_URL",
                ))
            }
            (SourceArg::Redis, Some(rc)) => Some(RedisStore::connect(&rc).map_err(redis_failed)?),
            (SourceArg::Auto, None) => None,
            (SourceArg::Auto, Some(rc)) => match RedisStore::connect(&rc) {
                Ok(r) => Some(r),
                Err(RedisError::Redis(m)) => {
                    warn(&format!("{m}; showing the local journal only"));
                    None
                }
                Err(RedisError::Data(m)) => return Err(Error::failed(m)),
            },
        };
        let journal = match ctx.source {
            SourceArg::Redis => None,
            _ => match Journal::open(&journal_dir) {
                Ok(j) => Some(j),
                Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                    None
                }
                Err(e) => return Err(read_error(e)),
            },
        };
        if journal.is_none() && redis.is_none() && ctx.source != SourceArg::Redis {
            return Err(Error::not_found(format!(
                "journal dir {} does not exist: no runs were recorded there yet, or set \
                 --journal-dir / RUNLOG_JOURNAL_DIR (or journal-dir in the config file)",
                journal_dir.display()
            )));
        }
        Ok(Store {
            journal,
            journal_dir,
            redis,
            shipping,
            waiting: 0,
        })
    }

    /// How many of `runs` (of `job`, in the local journal) ended but are not listed in the
    /// job's `.shipped` file: runs that wait for runlog-shipper. 0 when no Redis is
    /// configured (nothing is meant to ship).
    fn count_waiting(&self, job: &str, runs: &[RunInfo]) -> usize {
        if !self.shipping {
            return 0;
        }
        let dir = runlog::journal::layout::job_dir(&self.journal_dir, job);
        // Unreadable or malformed: retention counts nothing as shipped, and so does this.
        let shipped = match runlog::journal::shipped::read_shipped(&dir) {
            Ok(Some(s)) => s.runs,
            Ok(None) | Err(_) => Default::default(),
        };
        runs.iter()
            .filter(|r| {
                matches!(
                    r.status,
                    RunStatus::Ok | RunStatus::Failed | RunStatus::Crashed
                ) && !shipped.contains(&r.id)
            })
            .count()
    }

    /// Say on stderr how many runs wait for runlog-shipper, if any do.
    pub(crate) fn note_waiting(&self) {
        match self.waiting {
            0 => {}
            1 => crate::note(
                "1 run waits for runlog-shipper: [runlog-redis] is configured but the run is \
                 not shipped yet (the journal keeps it until it is); is runlog-shipper running?",
            ),
            n => crate::note(&format!(
                "{n} runs wait for runlog-shipper: [runlog-redis] is configured but they are \
                 not shipped yet (the journal keeps them until they are, beyond max-logs); is \
                 runlog-shipper running?"
            )),
        }
    }

    /// What is read, for messages: `journal /x and Redis at redis://h:6379/0`.
    pub(crate) fn describe(&self) -> String {
        let j = format!("journal {}", self.journal_dir.display());
        match (&self.journal, &self.redis) {
            (Some(_), Some(r)) => format!("{j} and Redis at {}", r.place),
            (None, Some(r)) => format!("Redis at {}", r.place),
            _ => j,
        }
    }

    /// The error for a job without listed runs.
    pub(crate) fn no_such_job(&self, job: &str) -> Error {
        Error::not_found(format!(
            "no job {job:?} in {} (no runs of it were recorded, or all were cancelled or \
             removed by retention); see `runlog list-jobs`",
            self.describe()
        ))
    }

    /// The jobs with runs, most recently active first (by the start of their newest run; then
    /// by name): the first `limit`, or all with `None`. The flag says that there are more.
    ///
    /// Redis is asked for the `limit + 1` most recently active jobs of its index and, for the
    /// jobs shown, their run ids and each run's status and start (two pipelined round trips;
    /// a run whose hash does not read is not counted): the cost follows what is shown, not
    /// how many jobs Redis holds. Every job of the local journal is a
    /// candidate too (it is local disk, read whole as before), so a job that is only local,
    /// or whose newest run is not shipped yet, takes its place by its newest local run.
    pub(crate) fn jobs(&mut self, limit: Option<usize>) -> Result<(Vec<Job>, bool), Error> {
        // name -> id -> (status, start)
        let mut all: BTreeMap<String, BTreeMap<String, (RunStatus, i64)>> = BTreeMap::new();
        if let Some(j) = &self.journal {
            let mut waiting = 0;
            let all_runs = j.all_runs().map_err(read_error)?;
            for (name, runs) in &all_runs {
                waiting += self.count_waiting(name, runs);
            }
            self.waiting = waiting;
            for (name, runs) in all_runs {
                let e = all.entry(name).or_default();
                for r in runs {
                    e.insert(r.id.clone(), (r.shown_status(), r.start_ns));
                }
            }
        }
        // Each candidate with its last activity (ns): its newest local run, its score in
        // Redis's index (ms), whichever is later.
        let mut active: BTreeMap<String, i64> = all
            .iter()
            .filter_map(|(name, runs)| Some((name.clone(), runs.values().next_back()?.1)))
            .collect();
        if let Some(r) = &mut self.redis {
            let recent = r
                .recent_jobs(limit.map(|n| n.saturating_add(1)))
                .map_err(redis_failed)?;
            for (name, ms) in recent {
                let ns = ms.saturating_mul(1_000_000);
                let a = active.entry(name).or_insert(ns);
                *a = (*a).max(ns);
            }
        }
        let mut shown: Vec<(String, i64)> = active.into_iter().collect();
        shown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let more = limit.is_some_and(|n| shown.len() > n);
        shown.truncate(limit.unwrap_or(usize::MAX));
        let mut all: BTreeMap<String, BTreeMap<String, (RunStatus, i64)>> = shown
            .into_iter()
            .map(|(name, _)| {
                let runs = all.remove(&name).unwrap_or_default();
                (name, runs)
            })
            .collect();
        if let Some(r) = &mut self.redis {
            let names: Vec<String> = all.keys().cloned().collect();
            let mut ids = r.run_ids(&names).map_err(redis_failed)?;
            // Every run the journal does not have: its status and start, in one pipeline.
            // A member of `runs` whose hash is missing (trimmed meanwhile, or evicted) or does
            // not read is not a run `list-runs` can show: it is not counted either
            // (`spec/redis.md`, Keys), and the newest run counted has a known status.
            let asked: Vec<(String, String)> = names
                .iter()
                .zip(&ids)
                .flat_map(|(n, ids)| {
                    ids.iter()
                        .filter(|id| !all.get(n).is_some_and(|runs| runs.contains_key(*id)))
                        .map(|id| (n.clone(), id.clone()))
                })
                .collect();
            let read = r.run_heads(&asked).map_err(redis_failed)?;
            let mut heads: BTreeMap<(String, String), (RunStatus, i64)> = BTreeMap::new();
            let mut gone: BTreeSet<(String, String)> = BTreeSet::new();
            for (k, h) in asked.into_iter().zip(read) {
                match h {
                    Some(h) => {
                        heads.insert(k, h);
                    }
                    None => {
                        gone.insert(k);
                    }
                }
            }
            if !gone.is_empty() {
                for (n, ids) in names.iter().zip(ids.iter_mut()) {
                    ids.retain(|id| !gone.contains(&(n.clone(), id.clone())));
                }
            }
            for (name, ids) in names.into_iter().zip(ids) {
                let runs = all.entry(name.clone()).or_default();
                for id in ids {
                    if runs.contains_key(&id) {
                        continue;
                    }
                    // Read above (the fallback is never taken: runs not read were removed).
                    let head = heads.remove(&(name.clone(), id.clone())).unwrap_or((
                        RunStatus::Ok,
                        runlog::time::parse_utc(id.get(..27).unwrap_or("")).unwrap_or(0),
                    ));
                    runs.insert(id, head);
                }
            }
        }
        let mut jobs: Vec<Job> = all
            .into_iter()
            .filter(|(_, runs)| !runs.is_empty())
            .map(|(name, runs)| {
                let last = runs.values().next_back().copied();
                Job {
                    runs: runs.len(),
                    last_start_ns: last.map(|l| l.1),
                    last_status: last.map(|l| l.0),
                    name,
                }
            })
            .collect();
        jobs.sort_by(|a, b| {
            b.last_start_ns
                .cmp(&a.last_start_ns)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok((jobs, more))
    }

    /// The runs of a job, oldest first, each once.
    pub(crate) fn runs(&mut self, job: &str) -> Result<Vec<Run>, Error> {
        Ok(self.runs_in(job, Window::default())?.0)
    }

    /// The runs of a job, oldest first, each once: of Redis only those `w` selects, of the
    /// journal all. The flag says that `w.newest` cut Redis's selection (it may hold more runs
    /// in the window).
    pub(crate) fn runs_in(&mut self, job: &str, w: Window) -> Result<(Vec<Run>, bool), Error> {
        let mut by_id: BTreeMap<String, Run> = BTreeMap::new();
        let mut cut = false;
        let mut missing = Vec::new();
        if let Some(r) = &mut self.redis {
            let (runs, c, m) = r.runs_in(job, w).map_err(redis_failed)?;
            cut = c;
            missing = m;
            for rr in runs {
                by_id.insert(
                    rr.info.id.clone(),
                    Run {
                        info: rr.info.clone(),
                        origin: Origin::Redis,
                        redis: Some(rr),
                    },
                );
            }
        }
        if let Some(j) = &self.journal {
            let local = j.runs(job).map_err(read_error)?;
            self.waiting = self.count_waiting(job, &local);
            for info in local {
                match by_id.get_mut(&info.id) {
                    Some(run) => {
                        run.info = info;
                        run.origin = Origin::Both;
                    }
                    None => {
                        by_id.insert(
                            info.id.clone(),
                            Run {
                                info,
                                origin: Origin::Local,
                                redis: None,
                            },
                        );
                    }
                }
            }
        }
        for id in missing {
            let shown = if by_id.contains_key(&id) {
                "showing the local journal's copy"
            } else if self.journal.is_some() {
                "not shown: the local journal has no copy of it"
            } else {
                "not shown"
            };
            warn(&format!(
                "run {id} of job {job:?} is {MISSING_FROM_REDIS}: its job's index lists it, \
                 but its metadata is gone; {shown}"
            ));
        }
        Ok((by_id.into_values().collect(), cut))
    }

    /// Feed the records of `run` in `range` to `f`, oldest first, until `f` returns false.
    /// The first `skip_hint` records of the run are not needed (a `--tail` without other
    /// filters): they are skipped where that is cheap, so `f` may still see some of them.
    pub(crate) fn records(
        &mut self,
        run: &Run,
        range: Range,
        skip_hint: u64,
        f: &mut dyn FnMut(&RecordRef<'_>) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        self.records_where(run, range, skip_hint, &|_| true, f)
    }

    /// [`Store::records`], where records of the local journal whose undecoded payload `pre`
    /// rejects are not decoded (`f` would not want them; see
    /// [`Journal::for_each_record_where`]).
    pub(crate) fn records_where(
        &mut self,
        run: &Run,
        range: Range,
        skip_hint: u64,
        pre: &dyn Fn(&[u8]) -> bool,
        f: &mut dyn FnMut(&RecordRef<'_>) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        if run.origin != Origin::Redis {
            if let Some(j) = &self.journal {
                // Streamed: each record is printed as it is decoded, none is kept.
                let (mut handed, mut failed) = (0u64, None);
                let read = j.for_each_record_where(&run.info.job, &run.info.id, pre, |r| {
                    if !range.contains(r.ts_ns) {
                        return true;
                    }
                    handed += 1;
                    f(&r).unwrap_or_else(|e| {
                        failed = Some(e);
                        false
                    })
                });
                match read {
                    Ok(read) => {
                        // Damage found while streaming that the listing did not see (a
                        // segment cut meanwhile): say so, never a short log in silence.
                        if let Some(now) = read.filter(|i| {
                            i.problems != run.info.problems || i.records != run.info.records
                        }) {
                            for p in now
                                .problems
                                .iter()
                                .filter(|p| !run.info.problems.contains(p))
                            {
                                warn(&format!("job {:?} run {}: {p}", run.info.job, run.info.id));
                            }
                            if now.records != run.info.records {
                                warn(&format!(
                                    "job {:?} run {} changed while it was read: {} records \
                                     listed, {} read",
                                    run.info.job, run.info.id, run.info.records, now.records
                                ));
                            }
                        }
                        return failed.map_or(Ok(()), Err);
                    }
                    // Removed locally since it was listed (retention after shipping): Redis
                    // has it.
                    Err(ReadError::NoSuchRun { .. }) if run.redis.is_some() && handed == 0 => {}
                    // What was printed stays printed.
                    Err(ReadError::NoSuchRun { .. }) if handed > 0 => {
                        return Err(Error::not_found(format!(
                            "run {} of job {:?} was removed from the journal while it was being \
                             read",
                            run.info.id, run.info.job
                        )))
                    }
                    Err(e) => return Err(read_error(e)),
                }
            }
        }
        let (Some(redis), Some(rr)) = (&mut self.redis, &run.redis) else {
            return Err(Error::not_found(format!(
                "run {} of job {:?} is gone: it was removed while being read",
                run.info.id, run.info.job
            )));
        };
        // Whole chunks within the first `skip_hint` records are not fetched.
        let mut from_chunk = 0;
        let mut before = 0u64;
        for (i, c) in rr.chunks.iter().enumerate() {
            // Counts come from Redis: a lying index must not overflow.
            if before.saturating_add(c.records) > skip_hint {
                break;
            }
            before = before.saturating_add(c.records);
            from_chunk = i + 1;
        }
        redis.records(rr, range, from_chunk, f)
    }

    /// Read one run again from the local journal (for `--follow`).
    pub(crate) fn reread_local(&self, job: &str, id: &str) -> Result<runlog::RunLog, Error> {
        let j = self
            .journal
            .as_ref()
            .ok_or_else(|| Error::usage("--follow reads the local journal; drop --source redis"))?;
        j.read_run(job, id).map_err(read_error)
    }
}
