//! The `log` logger: route each record to the thread's current run, forward every record to
//! the application's own logger.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use log::{LevelFilter, Log, Metadata, Record};

use crate::config::{Config, ConfigOverrides, ConfigSource, FsyncPolicy};
use crate::error::Error;
use crate::filter::Directives;
use crate::journal::layout;
use crate::journal::payload::Begin;
use crate::journal::reader::{Journal, ReadError};
use crate::journal::retention;
use crate::journal::writer::{RunWriter, WriterOptions};
use crate::run::{self, Run, RunCore};
use crate::time::now_ns;

/// Job names longer than this are refused (they would not fit a frame comfortably).
pub const MAX_JOB_NAME: usize = 64 << 10;

/// Settings and state shared by a logger and its runs.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) directives: Directives,
    host: String,
    /// The wall clock (ns since the Unix epoch): record, label, start and end times.
    pub(crate) clock: fn() -> i64,
}

impl Shared {
    /// After a run of `job` ended: recover crashed runs and apply retention. While shipping
    /// is on (Redis is configured, or a shipper made `<journal>/shipper/`), runs that are not
    /// shipped yet are kept beyond the limits.
    pub(crate) fn after_run(&self, job: &str) {
        let journal = &self.config.journal_dir;
        let dir = layout::job_dir(journal, job);
        let protect_unshipped = self.config.redis.is_some()
            || crate::journal::storage::metadata(&journal.join(layout::SHIPPER_DIR))
                .is_ok_and(|m| m.is_dir);
        match retention::sweep_job_held(
            &dir,
            self.config.max_logs_for(job),
            self.config.max_failed_logs_for(job),
            protect_unshipped,
        ) {
            Ok(held) if held > UNSHIPPED_WARN_AT => {
                // Once per process: a job that runs every minute must not repeat it each time.
                if !UNSHIPPED_WARNED.swap(true, Ordering::Relaxed) {
                    run::say(format_args!(
                        "runlog: job {job:?} keeps {held} runs beyond max-logs/max-failed-logs \
                         in {} because they are not shipped yet (runs are never deleted before \
                         they are shipped): is runlog-shipper running and keeping up? (said once \
                         per process)",
                        dir.display()
                    ));
                }
            }
            Ok(_) => {}
            Err(e) => run::say(format_args!(
                "runlog: retention for job {job:?} in {}: {e}",
                dir.display()
            )),
        }
    }
}

/// How many runs of a job may wait beyond its retention limits for a shipper before the end
/// of a run says so on stderr (once per process).
pub const UNSHIPPED_WARN_AT: usize = 10;

/// The unshipped backlog was reported by this process.
static UNSHIPPED_WARNED: AtomicBool = AtomicBool::new(false);

/// The most verbose level anything in the process wants; `log::max_level` follows it.
static GLOBAL_MAX: AtomicUsize = AtomicUsize::new(0);

/// The level whose `as usize` is `u` (`Trace` above the largest).
pub(crate) fn level_from_usize(u: usize) -> LevelFilter {
    LevelFilter::iter().nth(u).unwrap_or(LevelFilter::Trace)
}

/// Raise the process-wide maximum level to at least `level`.
pub(crate) fn raise_global_max(level: LevelFilter) {
    let prev = GLOBAL_MAX.fetch_max(level as usize, Ordering::Relaxed);
    if (level as usize) > prev && INSTALLED.get().is_some() {
        log::set_max_level(level.max(log::max_level()));
    }
}

/// What the installed global logger forwards to.
struct Adapter {
    forward: Option<Box<dyn Log>>,
}

static INSTALLED: OnceLock<()> = OnceLock::new();

impl Log for Adapter {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.forward.as_ref().is_some_and(|f| f.enabled(meta)) || run::current_enabled(meta)
    }

    #[inline]
    fn log(&self, record: &Record<'_>) {
        run::log_to_current(record);
        if let Some(f) = &self.forward {
            f.log(record);
        }
    }

    fn flush(&self) {
        if let Some(f) = &self.forward {
            f.flush();
        }
    }
}

/// Builds a [`RunLogger`]. Values set here are the program's defaults: a config file and
/// `RUNLOG_*` environment variables override them (see `spec/config.md`).
#[must_use]
pub struct Builder {
    code: ConfigOverrides,
    source: ConfigSource,
    forced_journal_dir: Option<PathBuf>,
    forward: Option<Box<dyn Log>>,
    forward_level: LevelFilter,
    clock: fn() -> i64,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("code", &self.code)
            .field("source", &self.source)
            .field("forward", &self.forward.is_some())
            .finish()
    }
}

impl Builder {
    /// The journal directory.
    pub fn journal_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.code.journal_dir = Some(dir.into());
        self
    }
    /// A journal directory that wins over the config file and `RUNLOG_JOURNAL_DIR` (unlike
    /// [`Builder::journal_dir`], a default below both): for a directory the user named on a
    /// command line.
    pub fn force_journal_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.forced_journal_dir = Some(dir.into());
        self
    }
    /// Ok runs kept per job. While shipping is on (see [`RunLogger`]), older runs are kept
    /// too until they are shipped.
    pub fn max_logs(mut self, n: usize) -> Self {
        self.code.max_logs = Some(n);
        self
    }
    /// Failed and crashed runs kept per job (as [`Builder::max_logs`], also about shipping).
    pub fn max_failed_logs(mut self, n: usize) -> Self {
        self.code.max_failed_logs = Some(n);
        self
    }
    /// When the journal is made durable against power loss.
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.code.fsync = Some(policy);
        self
    }
    /// Default level of a run.
    pub fn level(mut self, level: LevelFilter) -> Self {
        self.code.level = Some(level);
        self
    }
    /// `env_logger`-style target filters for runs (`info,myapp=debug,hyper=warn`).
    pub fn filters(mut self, filters: &str) -> Self {
        self.code.filters = Some(filters.to_owned());
        self
    }
    /// Largest segment file size in bytes.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.code.segment_size = Some(bytes);
        self
    }
    /// Read exactly this config file (instead of searching).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = ConfigSource::File(path.into());
        self
    }
    /// Read no config file (environment variables still apply).
    pub fn no_config_file(mut self) -> Self {
        self.source = ConfigSource::None;
        self
    }
    /// Forward every record (in a run or not) to this logger, e.g. an `env_logger::Logger`.
    pub fn forward_to(mut self, logger: Box<dyn Log>) -> Self {
        self.forward = Some(logger);
        self
    }
    /// The most verbose level the forward logger wants (default `Trace`: it filters itself).
    pub fn forward_level(mut self, level: LevelFilter) -> Self {
        self.forward_level = level;
        self
    }
    /// The wall clock runs read, in ns since the Unix epoch (default: the system's,
    /// [`crate::time::now_ns`]). A job has no reason to set it: it is there to test what a
    /// clock that steps back (NTP, a restored VM) does to runs, whose ids must still sort in
    /// start order.
    pub fn clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// Resolve the configuration and build the logger. Fails only on bad configuration; a
    /// journal that cannot be written is reported when a run starts, and never fails the job.
    pub fn build(self) -> Result<RunLogger, Error> {
        let mut config = Config::load(&self.source, &self.code)?;
        if let Some(dir) = self.forced_journal_dir {
            config.journal_dir = dir;
        }
        let directives = Directives::parse(&config.filters).map_err(Error::Filters)?;
        let shared = Arc::new(Shared {
            config,
            directives,
            host: hostname(),
            clock: self.clock,
        });
        Ok(RunLogger {
            shared,
            forward: std::sync::Mutex::new(self.forward),
            forward_level: self.forward_level,
        })
    }
}

/// A run's start time: the clock, but never before the job's newest run id plus one
/// microsecond. Ids (and the start times that Redis scores runs by) must sort in start order
/// for retention and trimming to keep the newest runs: when the wall clock steps back (NTP, a
/// restored VM), the next run would otherwise get the smallest id and be deleted first.
/// Nothing in the job's directory (or an unreadable one): the clock.
fn start_after_newest(job_dir: &std::path::Path, now_ns: i64) -> i64 {
    let newest = crate::journal::reader::list_run_segments(job_dir)
        .ok()
        .and_then(|runs| runs.into_keys().next_back())
        .and_then(|id| crate::time::parse_utc(id.get(..27)?));
    match newest {
        Some(t) if t.saturating_add(1_000) > now_ns => {
            // Ids keep microseconds (truncated): the next whole microsecond after it.
            (t.div_euclid(1_000) + 1).saturating_mul(1_000)
        }
        _ => now_ns,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Keeps detailed logs of the last runs of each job. See the crate docs.
///
/// # Retention
/// After each run of a job ends, the job's directory in the journal is swept: crashed runs
/// are recovered, cancelled runs deleted, and only the newest `max-logs` ok runs and the newest
/// `max-failed-logs` failed or crashed runs kept ([`Config::max_logs_for`],
/// [`Config::max_failed_logs_for`]).
///
/// While shipping is on — a `[runlog-redis]` table (or `RUNLOG_REDIS_*` variable) is
/// configured, or a shipper has created `<journal>/shipper/` — an older run is deleted only
/// once the shipper has listed it as shipped in the job's `.shipped` file; until then it stays.
/// A running shipper bounds the journal meanwhile (its `disk-budget`); with Redis configured
/// but no shipper running, unshipped runs accumulate. See `spec/journal.md`.
pub struct RunLogger {
    shared: Arc<Shared>,
    forward: std::sync::Mutex<Option<Box<dyn Log>>>,
    forward_level: LevelFilter,
}

impl std::fmt::Debug for RunLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLogger")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl RunLogger {
    /// A builder; see [`Builder`].
    pub fn builder() -> Builder {
        Builder {
            code: ConfigOverrides::default(),
            source: ConfigSource::Search,
            forced_journal_dir: None,
            forward: None,
            forward_level: LevelFilter::Trace,
            clock: now_ns,
        }
    }

    /// The journal directory runs are written to.
    pub fn journal_dir(&self) -> &Path {
        &self.shared.config.journal_dir
    }

    /// Ok runs kept per job (by default; see [`Config::max_logs_for`] and
    /// [retention](RunLogger#retention)).
    pub fn max_logs(&self) -> usize {
        self.shared.config.max_logs
    }

    /// The resolved configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Make this the process's `log` logger. Records outside a run only go to the forward
    /// logger. Also installs a panic hook (chained to the previous one) that records panics
    /// in the panicking thread's run.
    ///
    /// Runs of any `RunLogger` in the process capture records once a runlog logger is
    /// installed; installing a second one fails with [`Error::SetLogger`].
    pub fn install(&self) -> Result<(), Error> {
        let forward = self
            .forward
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let has_forward = forward.is_some();
        log::set_boxed_logger(Box::new(Adapter { forward }))?;
        let _ = INSTALLED.set(());
        install_panic_hook();
        let base = if has_forward {
            self.forward_level
        } else {
            LevelFilter::Off
        };
        // Runs started before this (and their set_level calls) count too.
        let max = self
            .shared
            .config
            .level
            .max(self.shared.directives.max_level())
            .max(base)
            .max(level_from_usize(GLOBAL_MAX.load(Ordering::Relaxed)));
        raise_global_max(max);
        log::set_max_level(max.max(log::max_level()));
        Ok(())
    }

    /// Start a run of `job` on this thread. Until the guard is dropped, this thread's records
    /// go to the run. Fails only for an invalid job name (empty or over 64 KiB); if the
    /// journal cannot be written, the run still starts, counts its records as dropped and says
    /// so once on stderr.
    pub fn runlog(&self, job: &str) -> Result<Run, Error> {
        if job.is_empty() || job.len() > MAX_JOB_NAME {
            return Err(Error::InvalidJobName { len: job.len() });
        }
        Ok(self.start(job))
    }

    fn start(&self, job: &str) -> Run {
        let cfg = &self.shared.config;
        let dir = layout::job_dir(&cfg.journal_dir, job);
        let start_ns = start_after_newest(&dir, (self.shared.clock)());
        let id = layout::new_run_id(start_ns);
        let begin = Begin {
            start_ns,
            pid: std::process::id(),
            run_id: id.clone(),
            job: job.to_owned(),
            host: self.shared.host.clone(),
        };
        let opts = WriterOptions {
            segment_size: cfg.segment_size as usize,
            fsync: cfg.fsync,
        };
        let shared = match &cfg.journal_group {
            Some(group) => crate::journal::shared::prepare(&cfg.journal_dir, group),
            None => Ok(()),
        };
        let created = shared.map_err(|e| e.to_string()).and_then(|()| {
            RunWriter::create(&dir, &begin, opts).map_err(|e| {
                crate::journal::shared::explain_denied(&cfg.journal_dir, &e)
                    .unwrap_or_else(|| e.to_string())
            })
        });
        let writer = match created {
            Ok(w) => Some(w),
            Err(why) => {
                run::say(format_args!(
                    "runlog: job {job:?} run {id}: cannot write the journal in {}: {why}; \
                     records of this run are dropped and counted (check free space and \
                     permissions of that directory, or set journal-dir / RUNLOG_JOURNAL_DIR)",
                    cfg.journal_dir.display()
                ));
                None
            }
        };
        let level = self.shared.directives.default.unwrap_or(cfg.level);
        raise_global_max(level.max(self.shared.directives.max_level()));
        Run::start(RunCore::new(
            id,
            job.to_owned(),
            start_ns,
            level,
            writer,
            self.shared.clone(),
        ))
    }

    /// Run `f` in a run of `job`. An `Err` is recorded with its source chain as the run's last
    /// record, the run ends `failed`, and the `Err` is returned unchanged. A panic is recorded
    /// (by the hook [`RunLogger::install`] sets) and goes on. For boxed errors
    /// (`Box<dyn Error + Send + Sync>`, what `anyhow::Error` converts into) see
    /// [`RunLogger::run_dyn`].
    pub fn run<T, E, F>(&self, job: &str, f: F) -> Result<T, E>
    where
        F: FnOnce(&Run) -> Result<T, E>,
        E: std::error::Error + 'static,
    {
        self.run_with(job, f, |e| e as &(dyn std::error::Error + 'static))
    }

    /// [`RunLogger::run`] for closures that return boxed errors (`Box<dyn Error>`, with or
    /// without `Send + Sync`).
    pub fn run_dyn<T, E, F>(&self, job: &str, f: F) -> Result<T, E>
    where
        F: FnOnce(&Run) -> Result<T, E>,
        E: BoxedError,
    {
        self.run_with(job, f, BoxedError::as_error)
    }

    fn run_with<T, E, F>(
        &self,
        job: &str,
        f: F,
        as_error: impl Fn(&E) -> &(dyn std::error::Error + 'static),
    ) -> Result<T, E>
    where
        F: FnOnce(&Run) -> Result<T, E>,
    {
        let run = match self.runlog(job) {
            Ok(r) => r,
            Err(e) => {
                run::say(format_args!(
                    "runlog: {e}; the run of this job is not recorded"
                ));
                Run::start(RunCore::new(
                    String::new(),
                    job.to_owned(),
                    0,
                    LevelFilter::Off,
                    None,
                    self.shared.clone(),
                ))
            }
        };
        let res = f(&run);
        if let Err(e) = &res {
            run::record_error(run.core(), as_error(e));
            run.fail();
        }
        drop(run);
        res
    }

    /// A reader over this logger's journal.
    pub fn journal(&self) -> Result<Journal, ReadError> {
        Journal::open(&self.shared.config.journal_dir)
    }
}

fn install_panic_hook() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            run::record_panic(info);
            prev(info);
        }));
    });
}

/// A boxed error whose source chain [`RunLogger::run_dyn`] can record.
pub trait BoxedError {
    /// The error behind the box.
    fn as_error(&self) -> &(dyn std::error::Error + 'static);
}

impl BoxedError for Box<dyn std::error::Error + 'static> {
    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        self.as_ref()
    }
}

impl BoxedError for Box<dyn std::error::Error + Send + 'static> {
    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        self.as_ref()
    }
}

impl BoxedError for Box<dyn std::error::Error + Send + Sync + 'static> {
    fn as_error(&self) -> &(dyn std::error::Error + 'static) {
        self.as_ref()
    }
}
