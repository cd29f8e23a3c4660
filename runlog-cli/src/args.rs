//! The command line, as parsed by clap. `main` resolves it into settings once.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Detailed logs of the last runs of recurring jobs: list jobs and runs, print a run's log,
/// inspect a journal.
///
/// Reads the local journal (`journal-dir` in the config file, `RUNLOG_JOURNAL_DIR`, or
/// `--journal-dir`). Output is plain text for pipes; `--json` prints JSON lines.
///
/// Exit status: 0 ok; 1 corruption found (`journal verify`) or an error while reading;
/// 2 usage error, or a job or run that does not exist or is ambiguous.
#[derive(Debug, Parser)]
#[command(name = "runlog", version)]
pub(crate) struct Args {
    /// Read this config file instead of searching `$RUNLOG_CONFIG`, `./.runlog.toml`,
    /// `$XDG_CONFIG_HOME/runlog/config.toml` and `/etc/runlog/config.toml`.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Read the journal in DIR (wins over the config file and `RUNLOG_JOURNAL_DIR`).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) journal_dir: Option<PathBuf>,

    /// Print JSON lines (one object per job, run or record) instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Colour level and status names: `auto` colours only when stdout is a terminal and
    /// `NO_COLOR` is not set.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        default_value_t = ColorWhen::Auto
    )]
    pub(crate) color: ColorWhen,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// When to colour output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorWhen {
    // On a terminal, unless `NO_COLOR` is set.
    Auto,
    Always,
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List jobs: name, number of runs, start and status of the last run.
    ListJobs,

    /// List the runs of a job, newest last.
    ///
    /// One line per run, oldest first and newest last (like journalctl): RUN (the id), STATUS
    /// (ok, failed, crashed, running), START (UTC), DURATION, RECORDS, HOST and LABELS.
    /// The duration of a running run is the time so far; of a crashed run, the time until its
    /// last record. Cancelled runs are never listed. Damage found in the journal is reported
    /// on stderr with file and offset.
    ListRuns {
        /// The job name, exactly as the job gave it.
        job: String,
    },

    /// Print the records of runs of a job, one line per record.
    ///
    /// RUN is a full run id, a unique prefix of one (`2026-11-28T12:10`, or with a space for
    /// the `T`), a start time as `list-runs` prints it (`2026-11-28T12:10:55Z`), `last` or
    /// `-1` for the newest run, `-2` for the one before, ..., or `last-failed` for the newest
    /// failed or crashed run. With several runs, each starts with a `==> JOB RUN (status) <==`
    /// line.
    Logs(LogsArgs),

    /// Inspect journal files offline (a journal copied off a broken host, say).
    #[command(subcommand)]
    Journal(JournalCommand),
}

/// `runlog logs`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    /// The job name.
    pub(crate) job: String,

    /// The runs to print, in this order.
    #[arg(required = true, value_name = "RUN", allow_negative_numbers = true)]
    pub(crate) runs: Vec<String>,

    /// Only records at LEVEL or more severe (error, warn, info, debug, trace).
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub(crate) level: Option<log::Level>,

    /// Only records whose message, target or a `key=value` matches REGEX.
    #[arg(long, value_name = "REGEX")]
    pub(crate) grep: Option<String>,
}

fn parse_level(s: &str) -> Result<log::Level, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a level: use error, warn, info, debug or trace"))
}

/// `runlog journal ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum JournalCommand {
    /// Check every segment under PATH (a journal dir, a job dir or one segment file).
    ///
    /// Prints one line per finding, `FILE: offset N: what`, and a summary. A torn tail left
    /// by a crash is not corruption (recovery cuts it). Exits 1 if anything is corrupt: a bad
    /// frame with valid frames after it, a bad header, an unsupported version, a malformed
    /// payload.
    Verify {
        /// A journal directory, a job directory or a segment file.
        path: PathBuf,
    },

    /// Print every frame of a segment file (or of every segment under a directory): offset,
    /// type and decoded content, then how the segment ends.
    Dump {
        /// A journal directory, a job directory or a segment file.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn negative_numbers_are_run_references_not_flags() {
        let a = Args::try_parse_from(["runlog", "logs", "job", "-1", "-2", "last"]).unwrap();
        let Command::Logs(l) = a.command else {
            panic!("not logs")
        };
        assert_eq!(l.runs, ["-1", "-2", "last"]);
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let a = Args::try_parse_from(["runlog", "list-runs", "j", "--json", "--journal-dir", "/x"])
            .unwrap();
        assert!(a.json);
        assert_eq!(a.journal_dir.as_deref(), Some(std::path::Path::new("/x")));
        let a = Args::try_parse_from(["runlog", "--json", "list-jobs"]).unwrap();
        assert!(a.json);
    }

    #[test]
    fn levels_parse_in_any_case() {
        let a = Args::try_parse_from(["runlog", "logs", "j", "last", "--level", "WARN"]).unwrap();
        let Command::Logs(l) = a.command else {
            panic!("not logs")
        };
        assert_eq!(l.level, Some(log::Level::Warn));
        assert!(Args::try_parse_from(["runlog", "logs", "j", "last", "--level", "loud"]).is_err());
    }
}
