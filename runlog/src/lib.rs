//! Detailed, crash-safe logs of the last runs of recurring jobs.
//!
//! A job links this crate and logs with the ordinary [`log`] macros. Inside a run guard, the
//! thread's records go to that run's segment in a local, append-only journal of CRC-checked
//! frames; outside a run nothing is stored. Every record is also forwarded to the
//! application's own logger.
//!
//! ```no_run
//! # fn main() -> Result<(), runlog::Error> {
//! let rl = runlog::RunLogger::builder().max_logs(10).build()?; // journal dir etc. from config/env
//! rl.install()?;
//! log::debug!("You will never see this.");
//! {
//!     let run = rl.runlog("recurring-job-32")?;
//!     run.set_level(log::LevelFilter::Debug);
//!     run.label("user", "bar");
//!     log::debug!("You will see this in the log of a run of this job.");
//!     // run.cancel();   // a boring run: forget it everywhere
//! } // drop = commit
//! # Ok(()) }
//! ```
//!
//! Promises (see `spec/journal.md`): a log call that returned is in the journal even if the
//! process is killed the next instant; a torn tail after a crash is cut, corruption in the
//! middle is reported; logging never blocks on the network, panics or kills the job.

mod config;
mod error;
mod filter;
pub mod journal;
mod logger;
mod run;
pub mod time;

pub use config::{
    Config, ConfigError, ConfigOverrides, ConfigSource, FsyncPolicy, JobConfig, RedisConfig,
    ShipperConfig, DEFAULT_REDIS_PREFIX,
};
pub use error::Error;
pub use journal::payload::Record;
pub use journal::reader::{
    JobInfo, Journal, Problem, ReadError, RunInfo, RunLog, RunStatus, Writer,
};
pub use logger::{BoxedError, Builder, RunLogger, MAX_JOB_NAME, UNSHIPPED_WARN_AT};
pub use run::{Entered, Instrumented, Run, RunHandle, RunScope};
