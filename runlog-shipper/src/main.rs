//! `runlog-shipper`: ships ended runs from the local journal to Redis, whole and exactly once.
//! See the README ("Running the shipper") and `spec/redis.md`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use runlog::{Config, ConfigOverrides, ConfigSource, RedisConfig};
use runlog_shipper::diagnose::{diagnose, Role};
use runlog_shipper::repair::{Repair, REPAIR_BATCH};
use runlog_shipper::schema::Keys;
use runlog_shipper::ship::Journal;
use runlog_shipper::upload::{describe, Redis, Target, UploadError};
use runlog_shipper::wake::{Backoff, Wake, Watcher};

/// Ship committed, failed and crashed runs from the runlog journal to Redis.
#[derive(Debug, Parser)]
#[command(name = "runlog-shipper", version, about)]
struct Args {
    /// Config file, TOML (INI if it ends in .conf or .ini) (default: $RUNLOG_CONFIG,
    /// ./.runlog.toml, ./.runlog.conf, ~/.config/runlog/config.toml, ~/.runlog.conf,
    /// /etc/runlog/config.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Ship what is there, then exit (for cron and tests). Exits 1 if Redis cannot be used.
    #[arg(long)]
    once: bool,
}

fn init_logging() {
    // Under systemd, stderr goes to the journal: prefix lines with their syslog priority
    // (sd-daemon(3)) and leave the timestamps to journald.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |f, r| {
            if journald {
                let prio = match r.level() {
                    log::Level::Error => 3,
                    log::Level::Warn => 4,
                    log::Level::Info => 6,
                    log::Level::Debug | log::Level::Trace => 7,
                };
                writeln!(f, "<{prio}>{}", r.args())
            } else {
                writeln!(
                    f,
                    "{} runlog-shipper {}: {}",
                    runlog::time::format_micros(runlog::time::now_ns()),
                    r.level(),
                    r.args()
                )
            }
        })
        .init();
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let source = match &args.config {
        Some(f) => ConfigSource::File(f.clone()),
        None => ConfigSource::Search,
    };
    let config = Config::load(&source, &ConfigOverrides::default()).map_err(|e| e.to_string())?;
    let Some(rc) = config.redis.clone() else {
        return Err(format!(
            "no Redis configured: add a [runlog-redis] table with `url = \"redis://host:6379/0\"` to {} or set RUNLOG_REDIS_URL",
            config
                .source
                .as_ref()
                .map_or("a config file (see spec/config.md)".to_owned(), |p| p.display().to_string())
        ));
    };
    let target = Target {
        allow_eviction: config.shipper.allow_eviction,
        ..Target::from_config(&rc)
    };
    let keys = Keys::new(rc.prefix_or_default());
    let where_ = describe(&rc);
    let mut journal = Journal::open(&config)?;
    let budget = config.shipper.disk_budget;
    let rescan = config.shipper.rescan_interval;
    let pipeline = usize::try_from(config.shipper.pipeline_size).unwrap_or(usize::MAX);
    let replicas = config.shipper.min_replicas_acked;
    // A connection with the `[runlog-shipper]` upload settings.
    let connect = || {
        Redis::connect(&target, &keys).map(|mut r| {
            r.set_pipeline_bytes(pipeline);
            r.set_min_replicas_acked(replicas);
            r
        })
    };

    let mut repair = Repair::new(keys.clone());
    if args.once {
        let mut redis = connect().map_err(|e| {
            format!(
                "{}; nothing was lost, runs wait in the journal",
                failure(
                    &format!("Redis at {where_} cannot be used"),
                    &where_,
                    &rc,
                    &e
                )
            )
        })?;
        let dirs = journal.job_dirs().map_err(|e| e.to_string())?;
        let mut again = true;
        while again {
            again = false;
            match journal.ship(&mut redis, &dirs, &|| false) {
                Ok(p) => log::info!("uploaded {p} to {where_}"),
                Err(UploadError::EpochChanged { epoch }) => {
                    lost_data(&where_, &epoch);
                    again = true;
                }
                Err(e) => {
                    return Err(format!(
                        "{}; nothing was lost, runs wait in the journal",
                        failure(
                            &format!("uploading to Redis at {where_} failed"),
                            &where_,
                            &rc,
                            &e
                        )
                    ))
                }
            }
        }
        // Every shipped run is checked once for eviction.
        if let Err(e) = repair.check(&journal, &mut redis, usize::MAX) {
            return Err(format!(
                "{}; nothing was lost, runs wait in the journal",
                failure(
                    &format!("checking shipped runs in Redis at {where_} failed"),
                    &where_,
                    &rc,
                    &e
                )
            ));
        }
        journal.enforce_budget(budget, Some(&redis.epoch));
        return Ok(());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Wake>();
    // SIGTERM and SIGINT: finish the upload in flight (or abandon it between runs), save
    // state, exit 0.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("cannot handle SIGTERM/SIGINT: {e}"))?;
    {
        let stop = Arc::clone(&stop);
        let tx = tx.clone();
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                log::info!("signal {sig}: stopping after the upload in flight");
                stop.store(true, Ordering::Relaxed);
                let _ = tx.send(Wake::Stop);
            }
        });
    }
    let _watcher = match Watcher::start(journal.dir(), tx.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            log::warn!(
                "cannot watch {} for new runs ({e}); relying on the rescan every {:?}",
                journal.dir().display(),
                rescan
            );
            None
        }
    };
    log::info!(
        "shipping journal {} to {where_} (prefix {:?}), rescan every {rescan:?}, disk budget {}",
        journal.dir().display(),
        keys.prefix(),
        runlog_shipper::ship::human_bytes(budget)
    );

    let stopping = || stop.load(Ordering::Relaxed);
    let mut redis: Option<Redis> = None;
    let mut next_rescan = Instant::now();
    let mut pending: Vec<PathBuf> = Vec::new();
    let mut full = true;
    let mut away = Away {
        backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(30)),
        budget,
        rescan,
        next_budget: Instant::now(),
    };
    while !stopping() {
        if redis.is_none() {
            match connect() {
                Ok(r) => {
                    if away.backoff.failures() > 0 {
                        log::info!("connected to Redis at {where_} again");
                    }
                    away.backoff.reset();
                    redis = Some(r);
                    full = true;
                }
                Err(e @ (UploadError::Schema { .. } | UploadError::Config(_))) => {
                    return Err(format!("Redis at {where_}: {e}"));
                }
                Err(e) => {
                    away.wait(
                        &failure(
                            &format!("Redis at {where_} cannot be reached"),
                            &where_,
                            &rc,
                            &e,
                        ),
                        level(&e),
                        &mut journal,
                        &rx,
                        &mut pending,
                        &stopping,
                    );
                    continue;
                }
            }
        }
        let Some(r) = redis.as_mut() else { continue };
        let now = Instant::now();
        let is_full = full || now >= next_rescan;
        let dirs = if is_full {
            full = false;
            next_rescan = now + rescan;
            pending.clear();
            match journal.job_dirs() {
                Ok(d) => d,
                Err(e) => {
                    log::error!("cannot list {}: {e}", journal.dir().display());
                    Vec::new()
                }
            }
        } else {
            pending.sort();
            pending.dedup();
            std::mem::take(&mut pending)
        };
        match journal.ship(r, &dirs, &stopping) {
            Ok(p) => {
                if p.runs > 0 {
                    log::info!("uploaded {p}");
                }
                if is_full {
                    // The rescan also notices a Redis that restarted empty while idle.
                    match r.current_epoch() {
                        Ok(e) if e != r.epoch => {
                            lost_data(&where_, &e);
                            r.epoch = e;
                            full = true;
                            continue;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            log::warn!("Redis at {where_}: {e}; reconnecting");
                            redis = None;
                            continue;
                        }
                    }
                    // Shipped runs Redis evicted, a bounded batch per rescan interval.
                    if let Err(e) = repair.check(&journal, r, REPAIR_BATCH) {
                        log::warn!(
                            "Redis at {where_}: checking shipped runs failed: {e}; reconnecting"
                        );
                        redis = None;
                        continue;
                    }
                    let epoch = r.epoch.clone();
                    journal.enforce_budget(budget, Some(&epoch));
                }
            }
            Err(UploadError::EpochChanged { epoch }) => {
                lost_data(&where_, &epoch);
                full = true;
                continue;
            }
            Err(e @ UploadError::Schema { .. }) => return Err(format!("Redis at {where_}: {e}")),
            Err(e) => {
                redis = None;
                away.wait(
                    &failure(
                        &format!("uploading to Redis at {where_} failed"),
                        &where_,
                        &rc,
                        &e,
                    ),
                    level(&e),
                    &mut journal,
                    &rx,
                    &mut pending,
                    &stopping,
                );
                continue;
            }
        }
        let timeout = next_rescan.saturating_duration_since(Instant::now());
        wait_for(&rx, timeout, &mut pending, &stopping, false);
    }
    log::info!("stopping: state is saved, exiting");
    Ok(())
}

/// Waiting out a Redis failure: the retry backoff, and the disk budget kept meanwhile.
struct Away {
    backoff: Backoff,
    budget: u64,
    rescan: Duration,
    next_budget: Instant,
}

impl Away {
    /// Log `failure` with the next retry and wait for it. The disk budget is still checked
    /// every rescan interval (jobs keep committing runs meanwhile), not only once per retry.
    fn wait(
        &mut self,
        failure: &str,
        level: log::Level,
        journal: &mut Journal,
        rx: &mpsc::Receiver<Wake>,
        pending: &mut Vec<PathBuf>,
        stopping: &dyn Fn() -> bool,
    ) {
        let wait = self.backoff.fail();
        log::log!(
            level,
            "{failure}; retry {} in {wait:?} (runs wait safely in the journal)",
            self.backoff.failures()
        );
        let until = Instant::now() + wait;
        loop {
            if Instant::now() >= self.next_budget {
                journal.enforce_budget(self.budget, None);
                self.next_budget = Instant::now() + self.rescan;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || stopping() {
                return;
            }
            let slice = self.next_budget.saturating_duration_since(Instant::now());
            wait_for(rx, left.min(slice), pending, stopping, true);
        }
    }
}

/// What to log for `e`, met while `doing` ("uploading to Redis at X failed"): a refusal with a
/// known cause in its own words, naming the server and the fix ([`diagnose`]).
fn failure(doing: &str, where_: &str, rc: &RedisConfig, e: &UploadError) -> String {
    let known = match e {
        UploadError::Refused(m) => Some(m.clone()),
        UploadError::Redis(re) => diagnose(where_, rc, re, Role::Shipper),
        _ => None,
    };
    known.unwrap_or_else(|| format!("{doing}: {e}"))
}

/// A refusal that waits for its operator is an error; an outage a warning.
fn level(e: &UploadError) -> log::Level {
    match e {
        UploadError::Refused(_) => log::Level::Error,
        UploadError::Redis(re) if runlog_shipper::diagnose::reply_code(re).is_some() => {
            log::Level::Error
        }
        _ => log::Level::Warn,
    }
}

/// The log line for a Redis that lost its data.
fn lost_data(where_: &str, epoch: &str) {
    log::warn!(
        "Redis at {where_} lost its data (new epoch {epoch}): uploading every run in the journal again"
    );
}

/// Wait up to `timeout` for a wake-up, collecting the job directories events name. Unless
/// `sleep_through` (a backoff), the first event ends the wait after a short pause that
/// gathers the events that come with it.
fn wait_for(
    rx: &mpsc::Receiver<Wake>,
    timeout: Duration,
    pending: &mut Vec<PathBuf>,
    stopping: &dyn Fn() -> bool,
    sleep_through: bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if stopping() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        match rx.recv_timeout(left) {
            Ok(Wake::Stop) => return,
            Ok(Wake::Job(dir)) => {
                pending.push(dir);
                if !sleep_through {
                    let settle = Instant::now() + Duration::from_millis(2);
                    while let Ok(Wake::Job(d)) =
                        rx.recv_timeout(settle.saturating_duration_since(Instant::now()))
                    {
                        pending.push(d);
                    }
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => return,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
        }
    }
}
