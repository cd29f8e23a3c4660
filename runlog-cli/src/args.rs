//! The command line, as parsed by clap. `main` resolves it into settings once.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  runlog list-jobs                              the 100 most recently active jobs (--limit)
  runlog list-runs nightly --status failed --since 2d
  runlog why nightly                            the last failure: error, backtrace, records before it
  runlog logs nightly last --label user=bar     the last run for user bar
  runlog logs nightly last-failed --level warn
  runlog logs nightly 2026-11-28T03:00 --grep 'timeout|refused' --tail 50
  runlog logs nightly last -f                   follow a run in progress
  runlog exec nightly --label env=prod -- ./report.sh --full
  runlog journal verify /var/lib/runlog

Sources: runs are read from Redis ([runlog-redis] in the config) and from the local journal,
merged by run id; --source picks one. With Redis configured but unreachable, the default
(auto) reads the journal alone and says so on stderr.

Exit status:
  0  success
  1  an error while reading or writing, or corruption found (journal verify)
  2  usage error: a bad option, time, regular expression or config file
  3  not found: no such job, run, or matching run
  4  store unreachable: Redis could not be reached (--source redis) or failed mid-read
  exec passes on the command's exit status (128+N when killed by signal N); 125 when
  runlog itself fails, 126 when the command cannot be run, 127 when it is not found.";

/// Detailed logs of the last runs of recurring jobs: list jobs and runs, print a run's log,
/// show why a job failed, run a command as a job, inspect a journal.
///
/// Output is plain text for pipes; `--json` prints JSON lines.
#[derive(Debug, Parser)]
#[command(name = "runlog", version, after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Read this config file instead of searching `$RUNLOG_CONFIG`, `./.runlog.toml`,
    /// `$XDG_CONFIG_HOME/runlog/config.toml` and `/etc/runlog/config.toml`.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Read the journal in DIR (wins over the config file and `RUNLOG_JOURNAL_DIR`).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) journal_dir: Option<PathBuf>,

    /// Where runs are read from: `auto` merges Redis (when configured and reachable) and the
    /// local journal; `redis` or `local` reads only that one.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "SOURCE",
        default_value_t = SourceArg::Auto
    )]
    pub(crate) source: SourceArg,

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

    /// Write text from jobs as it is, even on a terminal (by default control characters and
    /// escape sequences are shown escaped there, so a log cannot rewrite your screen).
    #[arg(long, global = true)]
    pub(crate) raw: bool,

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

/// Where runs are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SourceArg {
    /// Redis and the local journal, merged; the journal alone if Redis is unreachable.
    Auto,
    /// Redis only.
    Redis,
    /// The local journal only.
    Local,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List jobs, most recently active first: name, start and status of the last run, runs
    /// kept.
    ///
    /// Jobs are ordered by the start of their newest run, newest first, and the first 100 are
    /// shown (`--limit`); when there are more, a note on stderr says so.
    ListJobs(ListJobsArgs),

    /// List the runs of a job, newest last.
    ///
    /// One line per run, oldest first and newest last (like journalctl): RUN (the id), STATUS
    /// (ok, failed, crashed, running, damaged), START (UTC), DURATION, RECORDS, HOST and
    /// LABELS. The duration of a running run is the time so far; of a crashed run, the time
    /// until its last record. Cancelled runs are never listed. Damage found in the journal is
    /// reported on stderr with file and offset, and its run is `damaged`: `logs` shows its
    /// records after each unreadable place behind a `runlog::damage` record.
    ListRuns(ListRunsArgs),

    /// Print the records of runs of a job, one line per record.
    ///
    /// RUN is a full run id, a unique prefix of one (`2026-11-28T12:10`, or with a space for
    /// the `T`), a start time as `list-runs` prints it (`2026-11-28T12:10:55Z`), `last` or
    /// `-1` for the newest run, `-2` for the one before, ..., or `last-failed` for the newest
    /// failed or crashed run (default: `last`). `--label`, `--status`, `--since`/`--until` of
    /// runs are not here: references count among the runs `--label` keeps. With several
    /// runs, each line starts with its run id.
    Logs(LogsArgs),

    /// Show the last failed or crashed run of a job: its status, the error or panic with its
    /// backtrace, and the records before it.
    Why(WhyArgs),

    /// Run a command as a run of JOB: its stdout lines become INFO records, its stderr lines
    /// WARN records, and its exit status the run's status. The output still reaches your
    /// stdout and stderr; the exit status is passed on; SIGINT, SIGTERM and SIGHUP are
    /// forwarded to it.
    Exec(ExecArgs),

    /// Print a shell completion script: `runlog completions bash > /etc/bash_completion.d/runlog`,
    /// `runlog completions zsh > "${fpath[1]}/_runlog"`,
    /// `runlog completions fish > ~/.config/fish/completions/runlog.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },

    /// Inspect journal files offline (a journal copied off a broken host, say).
    #[command(subcommand)]
    Journal(JournalCommand),
}

/// Shells with completion scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Run statuses a listing can be filtered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusArg {
    Ok,
    Failed,
    Crashed,
    Running,
    /// Read with problems: part of what it wrote cannot be shown.
    Damaged,
}

impl StatusArg {
    /// The library's status.
    pub(crate) fn status(self) -> runlog::RunStatus {
        match self {
            StatusArg::Ok => runlog::RunStatus::Ok,
            StatusArg::Failed => runlog::RunStatus::Failed,
            StatusArg::Crashed => runlog::RunStatus::Crashed,
            StatusArg::Running => runlog::RunStatus::Running,
            StatusArg::Damaged => runlog::RunStatus::Damaged,
        }
    }
}

/// A `key=value` label filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LabelArg {
    pub(crate) key: String,
    pub(crate) value: String,
}

fn parse_label(s: &str) -> Result<LabelArg, String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok(LabelArg {
            key: k.to_owned(),
            value: v.to_owned(),
        }),
        _ => Err(format!("{s:?} is not a label filter: use key=value")),
    }
}

/// Filters that pick runs.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct RunFilterArgs {
    /// Only runs with label KEY set to VALUE (repeat to require several).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub(crate) labels: Vec<LabelArg>,
}

/// How many jobs `list-jobs` shows unless `--limit` says otherwise.
pub(crate) const DEFAULT_JOB_LIMIT: usize = 100;

/// `runlog list-jobs`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListJobsArgs {
    /// Only the N most recently active jobs; 0 shows every job.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOB_LIMIT)]
    pub(crate) limit: usize,
}

/// `runlog list-runs`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListRunsArgs {
    /// The job name, exactly as the job gave it.
    pub(crate) job: String,

    /// Only runs with this status (repeat, or separate with commas).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STATUS")]
    pub(crate) status: Vec<StatusArg>,

    #[command(flatten)]
    pub(crate) filter: RunFilterArgs,

    /// Only runs started at or after TIME: `2026-11-28T03:00:00Z`, `2026-11-28 03:00`,
    /// `2026-11-28`, `today`, `yesterday`, a duration ago (`90s`, `30m`, `2h`, `3d`, `1w`,
    /// `1h30m`), or seconds since the epoch (`@1700000000`).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,

    /// Only runs started before TIME (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,

    /// Only the newest N runs that pass the filters (still listed oldest first); 0 shows
    /// every run, as for `list-jobs`.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
}

/// `runlog logs`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    /// The job name.
    pub(crate) job: String,

    /// The runs to print, in this order (default: `last`).
    #[arg(value_name = "RUN", allow_negative_numbers = true)]
    pub(crate) runs: Vec<String>,

    #[command(flatten)]
    pub(crate) filter: RunFilterArgs,

    #[command(flatten)]
    pub(crate) records: RecordFilterArgs,

    /// Only the first N records (of each run) that pass the filters.
    #[arg(long, value_name = "N", conflicts_with = "tail")]
    pub(crate) head: Option<usize>,

    /// Only the last N records (of each run) that pass the filters; with -f, then follow.
    #[arg(long, value_name = "N")]
    pub(crate) tail: Option<usize>,

    /// Follow a run in progress: print its records as they are written, and end when the run
    /// ends (at once for a run that already ended). One run only.
    #[arg(short, long, conflicts_with = "head")]
    pub(crate) follow: bool,
}

/// Filters that pick records.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct RecordFilterArgs {
    /// Only records at LEVEL or more severe (error, warn, info, debug, trace).
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub(crate) level: Option<log::Level>,

    /// Only records whose message, target or a `key=value` field matches REGEX (Rust regex
    /// syntax; `(?i)` for case-insensitive).
    #[arg(long, value_name = "REGEX")]
    pub(crate) grep: Option<String>,

    /// Only records at or after TIME (same forms as list-runs --since).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,

    /// Only records before TIME.
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
}

/// `runlog why`.
#[derive(Debug, clap::Args)]
pub(crate) struct WhyArgs {
    /// The job name.
    pub(crate) job: String,

    #[command(flatten)]
    pub(crate) filter: RunFilterArgs,

    /// How many records before the error to show.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 20)]
    pub(crate) lines: usize,
}

/// `runlog exec`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    /// The job name the run is recorded under.
    pub(crate) job: String,

    /// Label the run (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub(crate) labels: Vec<LabelArg>,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<OsString>,
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
    ///
    /// Corrupt bytes are shown as a `CORRUPT` line (how many bytes, where the next valid frame
    /// is) and the frames after them are printed too. Exits 1 if anything is corrupt.
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
        let a =
            Args::try_parse_from(["runlog", "--json", "--source", "local", "list-jobs"]).unwrap();
        assert!(a.json);
        assert_eq!(a.source, SourceArg::Local);
    }

    #[test]
    fn levels_parse_in_any_case() {
        let a = Args::try_parse_from(["runlog", "logs", "j", "last", "--level", "WARN"]).unwrap();
        let Command::Logs(l) = a.command else {
            panic!("not logs")
        };
        assert_eq!(l.records.level, Some(log::Level::Warn));
        assert!(Args::try_parse_from(["runlog", "logs", "j", "last", "--level", "loud"]).is_err());
    }

    #[test]
    fn labels_and_statuses_parse_and_repeat() {
        let a = Args::try_parse_from([
            "runlog",
            "list-runs",
            "j",
            "--label",
            "user=bar",
            "--label",
            "url=a=b",
            "--status",
            "failed,crashed",
            "--status",
            "ok",
        ])
        .unwrap();
        let Command::ListRuns(l) = a.command else {
            panic!("not list-runs")
        };
        assert_eq!(l.filter.labels[1].key, "url");
        assert_eq!(l.filter.labels[1].value, "a=b");
        assert_eq!(
            l.status,
            [StatusArg::Failed, StatusArg::Crashed, StatusArg::Ok]
        );
        assert!(Args::try_parse_from(["runlog", "list-runs", "j", "--label", "nokey"]).is_err());
        assert!(Args::try_parse_from(["runlog", "list-runs", "j", "--status", "meh"]).is_err());
    }

    #[test]
    fn exec_takes_everything_after_the_double_dash_as_the_command() {
        let a = Args::try_parse_from([
            "runlog", "exec", "j", "--label", "k=v", "--", "sh", "-c", "exit 3", "--json",
        ])
        .unwrap();
        let Command::Exec(e) = a.command else {
            panic!("not exec")
        };
        assert_eq!(e.command, ["sh", "-c", "exit 3", "--json"]);
        assert_eq!(e.labels.len(), 1);
        assert!(!a.json);
        assert!(Args::try_parse_from(["runlog", "exec", "j"]).is_err());
    }
}
