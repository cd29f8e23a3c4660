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
merged by run id; --source picks one. With Redis configured but unreachable or refusing
runlog, the default (auto) reads the journal alone and says why on stderr.

Times are shown in local time (TZ, else /etc/localtime) with their offset, and times typed
without an offset are local; --utc shows and reads UTC. JSON is always UTC.

Exit status:
  0  success
  1  an error while reading or writing, or corruption found (journal verify)
  2  usage error: a bad option, time, regular expression or config file
  3  not found: no such job, run, or matching run
  4  store unusable: Redis could not be reached, refused runlog (a password, an ACL rule,
     TLS, not Redis, too old: the message says what to change) (--source redis), or failed
     mid-read
  5  logs --exit-status: a run printed ended failed or crashed
  exec passes on the command's exit status (128+N when killed by signal N); 125 when
  runlog itself fails, 126 when the command cannot be run, 127 when it is not found.";

/// Detailed logs of the last runs of recurring jobs: list jobs and runs, print a run's log,
/// show why a job failed, run a command as a job, inspect a journal.
///
/// Output is plain text for pipes; `--json` prints JSON lines.
#[derive(Debug, Parser)]
#[command(name = "runlog", version, after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Options given before the subcommand (`runlog --json list-jobs`): any of the ones below
    /// is taken there; after the subcommand, each takes only the ones that apply to it.
    #[command(flatten)]
    pub(crate) before: Before,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options before the subcommand, as `runlog --json list-jobs` has always taken them. Each
/// subcommand's `--help` lists the ones that apply to it; these are taken for any.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct Before {
    #[command(flatten)]
    pub(crate) read: ReadOpts,
    #[command(flatten)]
    pub(crate) raw: RawOpt,
}

/// The options of the commands that read runs and show them: where the config, the journal
/// and the runs are, and how to show them.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct ReadOpts {
    #[command(flatten)]
    pub(crate) config: ConfigOpts,
    #[command(flatten)]
    pub(crate) source: SourceOpt,
    #[command(flatten)]
    pub(crate) json: JsonOpt,
    #[command(flatten)]
    pub(crate) color: ColorOpt,
    #[command(flatten)]
    pub(crate) utc: UtcOpt,
}

/// One command's common options, each as given after it (or its default when it takes none).
type Given<'a> = (
    &'a ConfigOpts,
    &'a SourceOpt,
    &'a JsonOpt,
    &'a ColorOpt,
    &'a RawOpt,
    &'a UtcOpt,
);

impl ReadOpts {
    /// These options with `raw`.
    fn with_raw<'a>(&'a self, raw: &'a RawOpt) -> Given<'a> {
        (
            &self.config,
            &self.source,
            &self.json,
            &self.color,
            raw,
            &self.utc,
        )
    }
}

/// `--config` and `--journal-dir`: where the config and the journal are.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct ConfigOpts {
    /// Read this config file (TOML; INI if it ends in `.conf` or `.ini`) instead of searching
    /// `$RUNLOG_CONFIG`, `./.runlog.toml`, `./.runlog.conf`,
    /// `$XDG_CONFIG_HOME/runlog/config.toml`, `~/.runlog.conf` and `/etc/runlog/config.toml`.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Read the journal in DIR (wins over the config file and `RUNLOG_JOURNAL_DIR`).
    #[arg(long, value_name = "DIR")]
    pub(crate) journal_dir: Option<PathBuf>,
}

/// `--source`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct SourceOpt {
    /// Where runs are read from: `auto` (the default) merges Redis (when configured and
    /// reachable) and the local journal; `redis` or `local` reads only that one.
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub(crate) source: Option<SourceArg>,
}

/// `--json`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct JsonOpt {
    /// Print JSON lines (one object per job, run or record) instead of text; every object
    /// ends with its shape version, `"v":1` (spec/json.md).
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--color`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct ColorOpt {
    /// Colour level and status names: `auto` (the default) colours only when stdout is a
    /// terminal and `NO_COLOR` is not set.
    #[arg(long, value_enum, value_name = "WHEN")]
    pub(crate) color: Option<ColorWhen>,
}

/// `--raw`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct RawOpt {
    /// Write text from jobs as it is, even on a terminal (by default control characters and
    /// escape sequences are shown escaped there, so a log cannot rewrite your screen).
    #[arg(long)]
    pub(crate) raw: bool,
}

/// `--utc`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct UtcOpt {
    /// Show times in UTC, and read times typed without an offset as UTC (by default both are
    /// local time: `TZ`, else /etc/localtime). JSON is always UTC.
    #[arg(long)]
    pub(crate) utc: bool,
}

/// The options that every subcommand may take, resolved: what was given after the
/// subcommand wins over what was given before it.
#[derive(Debug)]
pub(crate) struct Common {
    pub(crate) config: Option<PathBuf>,
    pub(crate) journal_dir: Option<PathBuf>,
    pub(crate) source: SourceArg,
    pub(crate) json: bool,
    pub(crate) color: ColorWhen,
    pub(crate) raw: bool,
    pub(crate) utc: bool,
}

impl Args {
    /// The common options, from before and after the subcommand.
    pub(crate) fn common(&self) -> Common {
        let none = Before::default();
        let n = &none.read;
        let given: Given<'_> = match &self.command {
            Command::ListJobs(a) => a.read.with_raw(&none.raw),
            Command::ListRuns(a) => a.read.with_raw(&none.raw),
            Command::Logs(a) => a.read.with_raw(&a.raw),
            Command::Why(a) => a.read.with_raw(&a.raw),
            Command::Exec(a) => (&a.config, &n.source, &n.json, &n.color, &none.raw, &n.utc),
            Command::Journal(JournalCommand::Verify { config, json, .. }) => {
                (config, &n.source, json, &n.color, &none.raw, &n.utc)
            }
            Command::Completions { .. } | Command::Journal(JournalCommand::Dump { .. }) => {
                n.with_raw(&none.raw)
            }
        };
        let (config, source, json, color, raw, utc) = given;
        let b = &self.before.read;
        Common {
            config: config.config.clone().or_else(|| b.config.config.clone()),
            journal_dir: config
                .journal_dir
                .clone()
                .or_else(|| b.config.journal_dir.clone()),
            source: source.source.or(b.source.source).unwrap_or(SourceArg::Auto),
            json: json.json || b.json.json,
            color: color.color.or(b.color.color).unwrap_or(ColorWhen::Auto),
            raw: raw.raw || self.before.raw.raw,
            utc: utc.utc || b.utc.utc,
        }
    }
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
    /// Redis and the local journal, merged; the journal alone if Redis cannot be used.
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
    /// (ok, failed, crashed, running, damaged), START (local time with its offset, so that it
    /// reads back as a RUN of `logs`; UTC with --utc), DURATION, RECORDS, HOST and LABELS.
    /// The duration of a running run is the time so far; of a crashed run, the time until its
    /// last record. Cancelled runs are never listed. Damage found in the journal is reported
    /// on stderr with file and offset, and its run is `damaged`: `logs` shows its records
    /// after each unreadable place behind a `runlog::damage` record.
    ListRuns(ListRunsArgs),

    /// Print the records of runs of a job, one line per record.
    ///
    /// RUN is a full run id (or a prefix of one), a start time to any precision in local time
    /// (`2026-11-28T07:10`, or with a space for the `T`) or with an offset (`2026-11-28T12:10Z`)
    /// naming the runs started then, a START as `list-runs` prints it
    /// (`2026-11-28T07:10:55-05:00`), the original runlog's form (`2026-12-07-22:25:43.772233`,
    /// or a prefix of it), `last` or
    /// `-1` for the newest run, `-2` for the one before, ..., or `last-failed` for the newest
    /// failed or crashed run (default: `last`). `--label`, `--status`, `--since`/`--until` of
    /// runs are not here: references count among the runs `--label` keeps. A reference that
    /// names several runs is an error (exit 2) listing their ids and starts to pick from. With
    /// several runs, each line starts with its run id.
    Logs(LogsArgs),

    /// Show the last failed or crashed run of a job: its status, the error or panic with its
    /// backtrace, and the records before it.
    Why(WhyArgs),

    /// Run a command as a run of JOB: its stdout lines become INFO records, its stderr lines
    /// WARN records, and its exit status the run's status. The output still reaches your
    /// stdout and stderr; the exit status is passed on; SIGINT, SIGTERM, SIGHUP and SIGQUIT
    /// are forwarded to it. If runlog is killed (by any signal, SIGKILL too), the command and
    /// every process it started are killed with it (SIGTERM, then SIGKILL half a second
    /// later).
    ///
    /// Order: each stream's lines are recorded in order, but stdout and stderr are two pipes
    /// read side by side, so a line written to one can be recorded before lines written
    /// earlier to the other; and a program that buffers its stdout when it is not a terminal
    /// (C stdio, Python) writes it in blocks, so its stdout lines can land far from the
    /// stderr lines written between them. For Python commands set `PYTHONUNBUFFERED=1`;
    /// for C programs try `stdbuf -oL`; or use `--pty`, which records both streams as one, in
    /// exactly the order they were written.
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

/// A job name: 1 to [`runlog::MAX_JOB_NAME`] bytes, as the library takes them.
fn parse_job(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err(
            "the job name is empty: give a job's name (`runlog list-jobs` lists them)".to_owned(),
        );
    }
    if s.len() > runlog::MAX_JOB_NAME {
        return Err(format!(
            "the job name is {} bytes long; job names are at most {} bytes",
            s.len(),
            runlog::MAX_JOB_NAME
        ));
    }
    Ok(s.to_owned())
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
    #[command(flatten)]
    pub(crate) read: ReadOpts,

    /// Only the N most recently active jobs; 0 shows every job.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOB_LIMIT)]
    pub(crate) limit: usize,

    /// Show job names whole on a terminal too (there, longer than 48 columns they are cut
    /// with `…`). In a pipe they are always whole, with control characters escaped.
    #[arg(long)]
    pub(crate) wide: bool,
}

/// `runlog list-runs`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListRunsArgs {
    /// The job name, exactly as the job gave it.
    #[arg(value_parser = parse_job)]
    pub(crate) job: String,

    #[command(flatten)]
    pub(crate) read: ReadOpts,

    /// Only runs with this status (repeat, or separate with commas).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STATUS")]
    pub(crate) status: Vec<StatusArg>,

    #[command(flatten)]
    pub(crate) filter: RunFilterArgs,

    /// Only runs started at or after TIME: local time `2026-11-28T03:00:00`, `2026-11-28 03:00`,
    /// `2026-11-28` (with `Z` or `+01:00` after the time for another zone; the repeated hour
    /// when summer time ends means its first instance), `today`, `yesterday` (local
    /// midnights), a duration ago (`90s`, `30m`, `2h`, `3d`, `1w`, `1h30m`), or seconds since
    /// the epoch (`@1700000000`).
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,

    /// Only runs started before TIME (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,

    /// Only the newest N runs that pass the filters (still listed oldest first); 0 shows
    /// every run, as for `list-jobs`.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,

    /// Show hosts and labels whole on a terminal too (there, longer than 48 columns they are
    /// cut with `…`). In a pipe they are always whole, with control characters escaped.
    #[arg(long)]
    pub(crate) wide: bool,
}

/// `runlog logs`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    /// The job name.
    #[arg(value_parser = parse_job)]
    pub(crate) job: String,

    #[command(flatten)]
    pub(crate) read: ReadOpts,
    #[command(flatten)]
    pub(crate) raw: RawOpt,

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
    /// ends (at once for a run that already ended) with `-- run ended: STATUS --` on stderr.
    /// One run only.
    #[arg(short, long, conflicts_with = "head")]
    pub(crate) follow: bool,

    /// Exit with status 5 if a run printed ended failed or crashed (with -f: when the
    /// followed run ends so), as `gh run watch --exit-status` does.
    #[arg(long)]
    pub(crate) exit_status: bool,
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
    #[arg(value_parser = parse_job)]
    pub(crate) job: String,

    #[command(flatten)]
    pub(crate) read: ReadOpts,
    #[command(flatten)]
    pub(crate) raw: RawOpt,

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
    #[arg(value_parser = parse_job)]
    pub(crate) job: String,

    #[command(flatten)]
    pub(crate) config: ConfigOpts,

    /// Label the run (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub(crate) labels: Vec<LabelArg>,

    /// Give the command a terminal (a pseudo-terminal, as `script` does) as its stdout and
    /// stderr: it line-buffers its output, and both streams are recorded as one, in exactly
    /// the order it wrote them, as INFO records of target `pty`; they pass through to your
    /// stdout. stdin stays runlog's. The terminal has the size of yours (0x0, "unknown",
    /// when there is none; set COLUMNS for programs that cut lines to the width) and no
    /// output processing, so the output passes through byte for byte; a `\r` before a
    /// newline is left out of the record. Programs may colour their output on a terminal:
    /// records keep it, and runlog shows escapes escaped.
    #[arg(long)]
    pub(crate) pty: bool,

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
    /// Check every segment under PATH (a journal dir, a job dir or one segment file; without
    /// PATH, the journal the config file or `--journal-dir` names).
    ///
    /// Prints one line per finding, `FILE: offset N: what`, and a summary. A torn tail left
    /// by a crash is not corruption (recovery cuts it). Exits 1 if anything is corrupt: a bad
    /// frame with valid frames after it, a bad header, an unsupported version, a malformed
    /// payload.
    Verify {
        /// A journal directory, a job directory or a segment file (default: the configured
        /// journal).
        path: Option<PathBuf>,

        #[command(flatten)]
        config: ConfigOpts,
        #[command(flatten)]
        json: JsonOpt,
    },

    /// Print every frame of a segment file (or of every segment under a directory): offset,
    /// type and decoded content, then how the segment ends. Times are UTC, as stored.
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
    fn common_options_go_before_or_after_the_subcommand_and_after_wins() {
        let a = Args::try_parse_from(["runlog", "list-runs", "j", "--json", "--journal-dir", "/x"])
            .unwrap();
        let c = a.common();
        assert!(c.json);
        assert_eq!(c.journal_dir.as_deref(), Some(std::path::Path::new("/x")));
        let a =
            Args::try_parse_from(["runlog", "--json", "--source", "local", "list-jobs"]).unwrap();
        let c = a.common();
        assert!(c.json);
        assert_eq!(c.source, SourceArg::Local);
        assert_eq!(c.color, ColorWhen::Auto);
        let a = Args::try_parse_from([
            "runlog", "--source", "local", "--color", "never", "logs", "j", "--source", "redis",
        ])
        .unwrap();
        let c = a.common();
        assert_eq!((c.source, c.color), (SourceArg::Redis, ColorWhen::Never));
    }

    #[test]
    fn each_subcommand_takes_only_the_options_that_apply_to_it() {
        for bad in [
            &["runlog", "exec", "j", "--json", "--", "true"][..],
            &["runlog", "exec", "j", "--source", "local", "--", "true"],
            &["runlog", "list-jobs", "--raw"],
            &["runlog", "journal", "dump", "/x", "--json"],
            &["runlog", "journal", "verify", "--source", "redis"],
            &["runlog", "completions", "bash", "--config", "x"],
        ] {
            assert!(Args::try_parse_from(bad).is_err(), "{bad:?}");
        }
        for good in [
            &[
                "runlog",
                "exec",
                "j",
                "--config",
                "c",
                "--journal-dir",
                "d",
                "--",
                "true",
            ][..],
            &[
                "runlog",
                "journal",
                "verify",
                "--json",
                "--journal-dir",
                "d",
            ],
            &[
                "runlog", "why", "j", "--raw", "--color", "always", "--source", "local",
            ],
        ] {
            assert!(Args::try_parse_from(good).is_ok(), "{good:?}");
        }
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
        assert!(!a.common().json);
        let Command::Exec(e) = a.command else {
            panic!("not exec")
        };
        assert_eq!(e.command, ["sh", "-c", "exit 3", "--json"]);
        assert_eq!(e.labels.len(), 1);
        assert!(Args::try_parse_from(["runlog", "exec", "j"]).is_err());
    }

    #[test]
    fn an_empty_or_oversized_job_name_is_a_usage_error_for_every_subcommand() {
        let huge = "j".repeat(runlog::MAX_JOB_NAME + 1);
        for job in ["", huge.as_str()] {
            for args in [
                vec!["runlog", "list-runs", job],
                vec!["runlog", "logs", job],
                vec!["runlog", "why", job],
                vec!["runlog", "exec", job, "--", "true"],
            ] {
                let e = Args::try_parse_from(&args).unwrap_err();
                assert_eq!(e.exit_code(), 2, "{:?}", &args[..2]);
            }
        }
    }
}
