//! The `runlog` command: list jobs and runs, print the logs of runs, inspect journals.
//!
//! `main` parses the command line, resolves it into [`Ctx`] once, runs the subcommand and
//! turns its result into an exit status: 0 ok, 1 corruption found or an error while reading,
//! 2 usage error (including an ambiguous run reference), 3 a job or run that does not exist,
//! 4 the store (Redis) unreachable or refusing runlog, 5 a failed or crashed run for
//! `logs --exit-status`; `exec` passes on its command's status. A closed stdout (a `| head`)
//! is success, silently.

mod args;
mod cmd;
mod grep;
mod redis_store;
mod render;
mod runref;
mod source;
mod when;
mod zone;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Args, ColorWhen, Command, Common, JournalCommand, SourceArg};
use crate::render::{Out, Style};
use crate::zone::Zone;

/// Why a command did not succeed.
#[derive(Debug)]
pub(crate) enum Error {
    /// A usage error, or an ambiguous reference (exit 2).
    Usage(String),
    /// A job or run that does not exist (exit 3).
    NotFound(String),
    /// Redis could not be reached, refused runlog, or failed mid-read (exit 4).
    Unreachable(String),
    /// Something could not be read or done (exit 1).
    Failed(String),
    /// Corruption was found and has been reported on stdout (exit 1).
    Corrupt,
    /// Writing the output failed (a closed pipe is success).
    Output(io::Error),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Output(e)
    }
}

impl Error {
    /// The run-time failure to read something.
    pub(crate) fn failed(msg: impl Into<String>) -> Error {
        Error::Failed(msg.into())
    }

    /// A usage error.
    pub(crate) fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }

    /// A job or run that does not exist.
    pub(crate) fn not_found(msg: impl Into<String>) -> Error {
        Error::NotFound(msg.into())
    }
}

/// The settings every command gets, resolved once from the command line and environment.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// `--json`.
    pub(crate) json: bool,
    /// `--config`.
    pub(crate) config: Option<PathBuf>,
    /// `--journal-dir`.
    pub(crate) journal_dir: Option<PathBuf>,
    /// `--source`.
    pub(crate) source: SourceArg,
    /// Where times are shown and read: local time, or UTC with `--utc`.
    pub(crate) zone: Zone,
    /// Stdout is a terminal: tables cap their job-text columns (unless `--wide`).
    pub(crate) tty: bool,
}

/// Print a warning on stderr. Failing to write to stderr is not worth failing for.
pub(crate) fn warn(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "runlog: warning: {msg}");
}

/// Print a note (not a warning: nothing is wrong) on stderr, out of the way of a pipe.
pub(crate) fn note(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "runlog: {msg}");
}

fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Run the command; `Ok` carries the exit status (0 but for `exec`).
fn run(args: Args, common: Common, zone: Zone, out: &mut Out, tty: bool) -> Result<u8, Error> {
    let ctx = Ctx {
        json: common.json,
        config: common.config,
        journal_dir: common.journal_dir,
        source: common.source,
        zone,
        tty,
    };
    match args.command {
        Command::ListJobs(a) => cmd::list_jobs::run(&ctx, out, &a),
        Command::ListRuns(a) => cmd::list_runs::run(&ctx, out, &a),
        Command::Logs(a) => return cmd::logs::run(&ctx, out, &a),
        Command::Why(a) => cmd::why::run(&ctx, out, &a),
        Command::Exec(a) => return cmd::exec::run(&ctx, &a),
        Command::Completions { shell } => cmd::completions::run(out, shell),
        Command::Journal(JournalCommand::Verify { path, .. }) => {
            cmd::journal::verify(&ctx, out, path.as_deref())
        }
        Command::Journal(JournalCommand::Dump { path }) => cmd::journal::dump(&ctx, out, &path),
    }
    .map(|()| 0)
}

fn main() -> ExitCode {
    // `runlog exec` starts itself again as the supervisor of its command.
    if let Some(code) = cmd::exec::supervise::main_if_supervisor() {
        return code;
    }
    let args = Args::parse();
    let common = args.common();
    let tty = io::stdout().is_terminal();
    let style = Style {
        escape: tty && !common.raw,
        color: match common.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => tty && !no_color_env(),
        },
    };
    let zone = if common.utc {
        Zone::utc()
    } else {
        let (zone, why) = Zone::local();
        if let Some(why) = why {
            warn(&why);
        }
        zone
    };
    let mut out = Out::new(style, zone.clone());
    let result = run(args, common, zone, &mut out, tty);
    // What was printed so far reaches the pipe before any error message.
    let result = match (result, out.flush()) {
        (Ok(_), Err(e)) => Err(Error::Output(e)),
        (r, _) => r,
    };
    let (code, msg) = match result {
        Ok(code) => (code, None),
        Err(Error::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => (0, None),
        Err(Error::Output(e)) => (1, Some(format!("cannot write the output: {e}"))),
        Err(Error::Usage(m)) => (2, Some(m)),
        Err(Error::NotFound(m)) => (3, Some(m)),
        Err(Error::Unreachable(m)) => (4, Some(m)),
        Err(Error::Failed(m)) => (1, Some(m)),
        Err(Error::Corrupt) => (1, None),
    };
    if let Some(m) = msg {
        let _ = writeln!(io::stderr().lock(), "runlog: {m}");
    }
    ExitCode::from(code)
}
