//! What the SIGKILL crash tests (`tests/tests/crash.rs`) and their child process
//! (`src/bin/crashkid.rs`) agree on: the child's arguments, the acknowledgements it writes to
//! stdout, and exactly which record it logs for each `(run, thread, seq)`, so that the test can
//! check every decoded record byte for byte.
//!
//! Everything here is a pure function of a seed: given the same seed the child logs the same
//! records, and the test knows them without being told.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use runlog::FsyncPolicy;

/// The job every crash child writes runs of (a name that has to be encoded to become a path).
pub const JOB: &str = "crash/job ü";

/// The target of records logged with the default target: the child binary's module path.
pub const DEFAULT_TARGET: &str = "crashkid";

/// The target of records logged with an explicit target.
pub const CUSTOM_TARGET: &str = "crashkid::custom";

/// Threads that log into the run in [`ChildMode::Threads`]: the run's own thread (0) and
/// workers attached with `Run::scope`.
pub const THREADS: u32 = 4;

/// Thread 0 sets the label [`PROGRESS_LABEL`] to `seq` after each record whose `seq + 1` is a
/// multiple of this (in the single-run modes).
pub const LABEL_EVERY: u64 = 64;

/// The label thread 0 updates while it logs (single-run modes).
pub const PROGRESS_LABEL: &str = "progress";

/// The label set at the start of each run in [`ChildMode::Runs`] (value: the run index).
pub const RUN_LABEL: &str = "run";

/// Most records of one run in [`ChildMode::Runs`] (each run has `0..=MAX_RUN_RECORDS`).
pub const MAX_RUN_RECORDS: u64 = 24;

/// The message of the one record the recovery child logs.
pub const RECOVERY_MESSAGE: &str = "recovery run";

/// A child that is still alive after this long gives up (exit code 3): a safety net if the
/// test that should kill it is gone.
pub const CHILD_DEADLINE: Duration = Duration::from_secs(120);

/// SplitMix64's output function: a good 64-bit mixer.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A small deterministic random number generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed ^ 0x5eed_5eed_5eed_5eed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..hi` (`lo < hi`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Log-uniform in `lo..hi` (`0 < lo < hi`): small values as likely per decade as large.
    pub fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (l, h) = ((lo as f64).ln(), (hi as f64).ln());
        ((l + u * (h - l)).exp() as u64).clamp(lo, hi - 1)
    }
}

/// What a crash child does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildMode {
    /// One run, one thread logging small and medium records (some with key-values) forever.
    Single,
    /// One run, [`THREADS`] threads (the run's thread and attached workers) logging forever.
    Threads,
    /// One run, one thread logging records up to ~300 KiB, so that segments roll over often.
    Large,
    /// Many short runs back to back, each committed (drop of the guard) before the next.
    Runs,
    /// Start one run of [`JOB`], log [`RECOVERY_MESSAGE`], end it (which recovers the crashed
    /// runs of the job) and exit 0.
    Recover,
}

impl ChildMode {
    /// Every mode, for parsing.
    pub const ALL: [ChildMode; 5] = [
        ChildMode::Single,
        ChildMode::Threads,
        ChildMode::Large,
        ChildMode::Runs,
        ChildMode::Recover,
    ];

    /// The mode's command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildMode::Single => "single",
            ChildMode::Threads => "threads",
            ChildMode::Large => "large",
            ChildMode::Runs => "runs",
            ChildMode::Recover => "recover",
        }
    }

    /// Parse a command-line name.
    pub fn parse(s: &str) -> Option<ChildMode> {
        ChildMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for ChildMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The fsync policy of a child, as it is written on its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// `never`
    Never,
    /// `commit`
    Commit,
    /// `always`
    Always,
    /// `interval:<microseconds>`
    IntervalMicros(u64),
}

impl Fsync {
    /// The library's policy.
    pub fn policy(self) -> FsyncPolicy {
        match self {
            Fsync::Never => FsyncPolicy::Never,
            Fsync::Commit => FsyncPolicy::Commit,
            Fsync::Always => FsyncPolicy::Always,
            Fsync::IntervalMicros(us) => FsyncPolicy::Interval(Duration::from_micros(us)),
        }
    }

    /// Parse the command-line form.
    pub fn parse(s: &str) -> Option<Fsync> {
        Some(match s {
            "never" => Fsync::Never,
            "commit" => Fsync::Commit,
            "always" => Fsync::Always,
            _ => Fsync::IntervalMicros(s.strip_prefix("interval:")?.parse().ok()?),
        })
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fsync::Never => f.write_str("never"),
            Fsync::Commit => f.write_str("commit"),
            Fsync::Always => f.write_str("always"),
            Fsync::IntervalMicros(us) => write!(f, "interval:{us}"),
        }
    }
}

/// The command line of a crash child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildArgs {
    /// The journal directory.
    pub journal_dir: PathBuf,
    /// What to do.
    pub mode: ChildMode,
    /// Decides every record (see [`expected`]).
    pub seed: u64,
    /// The fsync policy.
    pub fsync: Fsync,
    /// The largest segment size in bytes.
    pub segment_size: u64,
    /// Ok runs kept per job (failed and crashed runs: all).
    pub max_logs: u64,
}

impl ChildArgs {
    /// The arguments to pass to the child (after the program name).
    pub fn to_args(&self) -> Vec<String> {
        vec![
            self.journal_dir.display().to_string(),
            self.mode.to_string(),
            self.seed.to_string(),
            self.fsync.to_string(),
            self.segment_size.to_string(),
            self.max_logs.to_string(),
        ]
    }

    /// Parse the arguments (after the program name).
    pub fn parse(args: &[String]) -> Result<ChildArgs, String> {
        let usage = "usage: crashkid JOURNAL_DIR single|threads|large|runs|recover SEED \
                     never|commit|always|interval:MICROS SEGMENT_SIZE MAX_LOGS";
        let [dir, mode, seed, fsync, seg, max_logs] = args else {
            return Err(usage.to_owned());
        };
        Ok(ChildArgs {
            journal_dir: PathBuf::from(dir),
            mode: ChildMode::parse(mode).ok_or_else(|| format!("bad mode {mode:?}; {usage}"))?,
            seed: seed
                .parse()
                .map_err(|_| format!("bad seed {seed:?}; {usage}"))?,
            fsync: Fsync::parse(fsync).ok_or_else(|| format!("bad fsync {fsync:?}; {usage}"))?,
            segment_size: seg
                .parse()
                .map_err(|_| format!("bad segment size {seg:?}; {usage}"))?,
            max_logs: max_logs
                .parse()
                .map_err(|_| format!("bad max-logs {max_logs:?}; {usage}"))?,
        })
    }
}

/// One line the child writes to stdout, each with a single `write(2)` after the thing it
/// acknowledges has returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ack {
    /// `H`: the process is up (written before the logger is built).
    Hello,
    /// `S <run> <id>`: `RunLogger::runlog` returned run number `run` with this id.
    Started {
        /// Run number in this child, from 0.
        run: u64,
        /// The run id.
        id: String,
    },
    /// `R <run> <thread> <seq>`: the log call of this record returned.
    Record {
        /// Run number.
        run: u64,
        /// Logging thread.
        thread: u32,
        /// Sequence number of the record in its thread (and run).
        seq: u64,
    },
    /// `L <run> <value>`: `Run::label` returned (key [`PROGRESS_LABEL`] or [`RUN_LABEL`]).
    Label {
        /// Run number.
        run: u64,
        /// The value set.
        value: u64,
    },
    /// `C <run>`: the run guard's drop (the commit) returned.
    Committed {
        /// Run number.
        run: u64,
    },
    /// `X <run>`: `Run::cancel` returned.
    Cancelled {
        /// Run number.
        run: u64,
    },
}

impl Ack {
    /// The line, with its newline.
    pub fn line(&self) -> String {
        match self {
            Ack::Hello => "H\n".to_owned(),
            Ack::Started { run, id } => format!("S {run} {id}\n"),
            Ack::Record { run, thread, seq } => format!("R {run} {thread} {seq}\n"),
            Ack::Label { run, value } => format!("L {run} {value}\n"),
            Ack::Committed { run } => format!("C {run}\n"),
            Ack::Cancelled { run } => format!("X {run}\n"),
        }
    }

    /// Parse a line (without its newline).
    pub fn parse(line: &str) -> Option<Ack> {
        let mut it = line.split(' ');
        let kind = it.next()?;
        let mut num = || it.next()?.parse::<u64>().ok();
        let ack = match kind {
            "H" => Ack::Hello,
            "S" => {
                let run = num()?;
                let id = line.splitn(3, ' ').nth(2)?.to_owned();
                return Some(Ack::Started { run, id });
            }
            "R" => Ack::Record {
                run: num()?,
                thread: u32::try_from(num()?).ok()?,
                seq: num()?,
            },
            "L" => Ack::Label {
                run: num()?,
                value: num()?,
            },
            "C" => Ack::Committed { run: num()? },
            "X" => Ack::Cancelled { run: num()? },
            _ => return None,
        };
        if it.next().is_some() {
            return None;
        }
        Some(ack)
    }
}

/// The key-values of a record, as the child passes them to `log!`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kvs {
    /// None.
    None,
    /// `seq = <seq>, thread = <thread>`.
    Small,
    /// `seq = <seq>, thread = <thread>, blob = <the string>`.
    Blob(String),
}

/// Exactly what the child logs for one `(run, thread, seq)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Level.
    pub level: log::Level,
    /// Target: [`DEFAULT_TARGET`] or [`CUSTOM_TARGET`].
    pub target: &'static str,
    /// Key-values passed to the macro.
    pub kvs: Kvs,
    /// The first format argument: `r<run> t<thread> s<seq>`.
    pub prefix: String,
    /// The second format argument (the message is `"{prefix} {filler}"`).
    pub filler: String,
}

impl Expected {
    /// The formatted message.
    pub fn message(&self) -> String {
        format!("{} {}", self.prefix, self.filler)
    }

    /// The key-values as stored (values formatted with `Display`).
    pub fn kv_pairs(&self, thread: u32, seq: u64) -> Vec<(String, String)> {
        let small = || {
            vec![
                ("seq".to_owned(), seq.to_string()),
                ("thread".to_owned(), thread.to_string()),
            ]
        };
        match &self.kvs {
            Kvs::None => Vec::new(),
            Kvs::Small => small(),
            Kvs::Blob(b) => {
                let mut v = small();
                v.push(("blob".to_owned(), b.clone()));
                v
            }
        }
    }

    /// Bytes of the message and key-values (a lower bound of the record's payload size).
    pub fn size(&self) -> usize {
        self.prefix.len()
            + 1
            + self.filler.len()
            + match &self.kvs {
                Kvs::Blob(b) => b.len(),
                _ => 0,
            }
    }
}

/// Characters the fillers are made of: ASCII, control characters and multi-byte UTF-8, so a
/// record cut to fit a segment is cut between characters.
const ALPHABET: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.;:-\n\tüé✓ʒ\u{1F980}";

/// A string of at most `len` bytes (at least `len - 3`) determined by `key`.
pub fn filler(len: usize, key: u64) -> String {
    let chars: Vec<char> = ALPHABET.chars().collect();
    let k = (key % chars.len() as u64) as usize;
    let unit: String = chars[k..].iter().chain(&chars[..k]).collect();
    let mut s = unit.repeat(len / unit.len() + 1);
    let mut cut = len;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s
}

fn record_rng(seed: u64, run: u64, thread: u32, seq: u64) -> Rng {
    let key = mix(run.wrapping_mul(0x9e37_79b9) ^ mix(seq ^ (u64::from(thread) << 56)));
    Rng::new(mix(seed ^ key))
}

/// Filler length for a record of `mode`.
fn size_for(mode: ChildMode, r: &mut Rng) -> usize {
    let p = r.below(1000);
    let (lo, hi) = match mode {
        ChildMode::Large => match p {
            0..=449 => (0, 1 << 10),
            450..=749 => (1 << 10, 16 << 10),
            750..=939 => (16 << 10, 64 << 10),
            _ => (64 << 10, 300 << 10),
        },
        _ => match p {
            0..=849 => (0, 200),
            850..=979 => (200, 4 << 10),
            _ => (4 << 10, 32 << 10),
        },
    };
    r.range(lo, hi) as usize
}

/// The record the child logs as record `seq` of `thread` in its run number `run`.
pub fn expected(seed: u64, mode: ChildMode, run: u64, thread: u32, seq: u64) -> Expected {
    let mut r = record_rng(seed, run, thread, seq);
    let level = match r.below(100) {
        0..=69 => log::Level::Info,
        70..=79 => log::Level::Debug,
        80..=87 => log::Level::Warn,
        88..=94 => log::Level::Error,
        _ => log::Level::Trace,
    };
    let target = if r.percent(20) {
        CUSTOM_TARGET
    } else {
        DEFAULT_TARGET
    };
    let kvs = match r.below(10) {
        0..=4 => Kvs::None,
        5..=8 => Kvs::Small,
        _ => {
            let hi = if mode == ChildMode::Large {
                16 << 10
            } else {
                2 << 10
            };
            let n = r.below(hi) as usize;
            Kvs::Blob(filler(n, r.next_u64()))
        }
    };
    let len = size_for(mode, &mut r);
    Expected {
        level,
        target,
        kvs,
        prefix: format!("r{run} t{thread} s{seq}"),
        filler: filler(len, r.next_u64()),
    }
}

/// Split a stored message into the `(run, thread, seq)` of its prefix.
pub fn parse_prefix(message: &str) -> Option<(u64, u32, u64)> {
    let mut it = message.splitn(4, ' ');
    let run = it.next()?.strip_prefix('r')?.parse().ok()?;
    let thread = it.next()?.strip_prefix('t')?.parse().ok()?;
    let seq = it.next()?.strip_prefix('s')?.parse().ok()?;
    Some((run, thread, seq))
}

/// How many records run number `run` has in [`ChildMode::Runs`].
pub fn run_records(seed: u64, run: u64) -> u64 {
    Rng::new(mix(seed ^ 0xabcd_ef01 ^ run)).below(MAX_RUN_RECORDS + 1)
}

/// Whether run number `run` in [`ChildMode::Runs`] ends with `Run::cancel` (one in five)
/// rather than by dropping the guard.
pub fn run_cancelled(seed: u64, run: u64) -> bool {
    Rng::new(mix(seed ^ 0x0ca2_ce11 ^ run)).percent(20)
}

/// `RUNLOG_*` environment variables that would override what the child sets in code.
pub const CONFIG_ENV: [&str; 10] = [
    "RUNLOG_CONFIG",
    "RUNLOG_JOURNAL_DIR",
    "RUNLOG_MAX_LOGS",
    "RUNLOG_MAX_FAILED_LOGS",
    "RUNLOG_FSYNC",
    "RUNLOG_LEVEL",
    "RUNLOG_FILTERS",
    "RUNLOG_SEGMENT_SIZE",
    "RUNLOG_REDIS_URL",
    "RUNLOG_REDIS_PREFIX",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_round_trip() {
        for a in [
            Ack::Hello,
            Ack::Started {
                run: 3,
                id: "2026-01-01T00:00:00.000000Z-0123456789ab".into(),
            },
            Ack::Record {
                run: 1,
                thread: 2,
                seq: 3,
            },
            Ack::Label { run: 0, value: 63 },
            Ack::Committed { run: 9 },
            Ack::Cancelled { run: 10 },
        ] {
            let l = a.line();
            assert_eq!(Ack::parse(l.trim_end_matches('\n')), Some(a));
        }
        assert_eq!(Ack::parse("R 1 2"), None);
        assert_eq!(Ack::parse("R 1 2 3 4"), None);
    }

    #[test]
    fn records_are_deterministic_and_parse_back() {
        for mode in [ChildMode::Single, ChildMode::Large] {
            for seq in 0..200 {
                let a = expected(7, mode, 2, 3, seq);
                assert_eq!(a, expected(7, mode, 2, 3, seq));
                assert_eq!(parse_prefix(&a.message()), Some((2, 3, seq)));
            }
        }
        for len in 0..300 {
            let f = filler(len, len as u64);
            assert!(f.len() <= len && f.len() + 4 > len, "{len} {}", f.len());
        }
    }

    #[test]
    fn args_round_trip() {
        let a = ChildArgs {
            journal_dir: "/tmp/x y".into(),
            mode: ChildMode::Runs,
            seed: u64::MAX,
            fsync: Fsync::IntervalMicros(500),
            segment_size: 65536,
            max_logs: 3,
        };
        assert_eq!(ChildArgs::parse(&a.to_args()), Ok(a));
    }
}
