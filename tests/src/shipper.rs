//! What the shipper tests (`tests/tests/shipper.rs`) drive: the `runlog-shipper` binary with a
//! config file of its own, and `jobkid` (`src/bin/jobkid.rs`), a job process that writes runs
//! with the runlog library and acknowledges each on stdout.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a `--once` ship may take before the test gives up on it.
pub const SHIP_TIMEOUT: Duration = Duration::from_secs(120);

/// Poll `f` until it returns `Some`, or panic after `timeout` saying what was awaited (and
/// what `f` last saw, through `last`).
pub fn poll<T>(timeout: Duration, what: &str, mut f: impl FnMut(&mut String) -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        last.clear();
        if let Some(v) = f(&mut last) {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Remove every `RUNLOG_*` variable (and `RUST_LOG`) from a child's environment, so that a
/// developer's settings never leak into a test; the shipper logs at `info`.
pub fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("RUNLOG_") || k == "RUST_LOG" || k == "JOURNAL_STREAM" {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
}

/// The `runlog-shipper` binary of this target directory and profile, checked to be built and
/// fresh ([`crate::workspace_binary`]).
pub fn shipper_bin() -> PathBuf {
    crate::workspace_binary("runlog-shipper", &["runlog/src", "runlog-shipper/src"])
}

/// A shipper config file.
#[derive(Clone, Debug)]
pub struct ShipperConfig {
    /// `[runlog] journal-dir`.
    pub journal: PathBuf,
    /// `[runlog] max-logs`.
    pub max_logs: usize,
    /// `[runlog] max-failed-logs`.
    pub max_failed_logs: usize,
    /// `[runlog-redis] url`.
    pub url: String,
    /// `[runlog-redis] cluster` (when not empty, instead of `url`).
    pub cluster: Vec<String>,
    /// `[runlog-redis] sentinels` (when not empty, instead of `url`) and `sentinel-master`.
    pub sentinels: Vec<String>,
    /// `[runlog-redis] sentinel-master`.
    pub sentinel_master: String,
    /// `[runlog-shipper] min-replicas-acked`.
    pub min_replicas_acked: Option<u32>,
    /// `[runlog-redis] prefix` (`None`: the default, `runlog`).
    pub prefix: Option<String>,
    /// `[runlog-redis] connect-timeout`.
    pub connect_timeout: String,
    /// `[runlog-redis] io-timeout`.
    pub io_timeout: String,
    /// More `[runlog-redis]` lines (e.g. `tls-ca-file = "..."`).
    pub redis_extra: String,
    /// `[runlog-shipper] rescan-interval`.
    pub rescan: String,
    /// `[runlog-shipper] disk-budget`.
    pub disk_budget: String,
    /// `[runlog-shipper] pipeline-size` (`None`: the default, 8 MiB).
    pub pipeline_size: Option<String>,
    /// TOML appended at the end (e.g. `[runlog.jobs."name"]` tables).
    pub extra: String,
}

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl ShipperConfig {
    /// Defaults for tests: 1 s connect and 2 s I/O timeouts, rescan every 200 ms, 1 GiB budget.
    pub fn new(journal: &Path, url: &str, max_logs: usize, max_failed_logs: usize) -> Self {
        ShipperConfig {
            journal: journal.to_path_buf(),
            max_logs,
            max_failed_logs,
            url: url.to_owned(),
            cluster: Vec::new(),
            sentinels: Vec::new(),
            sentinel_master: String::new(),
            min_replicas_acked: None,
            prefix: None,
            connect_timeout: "1s".into(),
            io_timeout: "2s".into(),
            redis_extra: String::new(),
            rescan: "200ms".into(),
            disk_budget: "1GiB".into(),
            pipeline_size: None,
            extra: String::new(),
        }
    }

    /// The TOML text.
    pub fn toml(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "[runlog]");
        let _ = writeln!(
            t,
            "journal-dir = {}",
            toml_str(&self.journal.to_string_lossy())
        );
        let _ = writeln!(t, "max-logs = {}", self.max_logs);
        let _ = writeln!(t, "max-failed-logs = {}", self.max_failed_logs);
        let _ = writeln!(t, "\n[runlog-redis]");
        if !self.sentinels.is_empty() {
            let nodes: Vec<String> = self.sentinels.iter().map(|u| toml_str(u)).collect();
            let _ = writeln!(t, "sentinels = [{}]", nodes.join(", "));
            let _ = writeln!(t, "sentinel-master = {}", toml_str(&self.sentinel_master));
        } else if self.cluster.is_empty() {
            let _ = writeln!(t, "url = {}", toml_str(&self.url));
        } else {
            let nodes: Vec<String> = self.cluster.iter().map(|u| toml_str(u)).collect();
            let _ = writeln!(t, "cluster = [{}]", nodes.join(", "));
        }
        if let Some(p) = &self.prefix {
            let _ = writeln!(t, "prefix = {}", toml_str(p));
        }
        let _ = writeln!(t, "connect-timeout = {}", toml_str(&self.connect_timeout));
        let _ = writeln!(t, "io-timeout = {}", toml_str(&self.io_timeout));
        t.push_str(&self.redis_extra);
        let _ = writeln!(t, "\n[runlog-shipper]");
        let _ = writeln!(t, "rescan-interval = {}", toml_str(&self.rescan));
        let _ = writeln!(t, "disk-budget = {}", toml_str(&self.disk_budget));
        if let Some(p) = &self.pipeline_size {
            let _ = writeln!(t, "pipeline-size = {}", toml_str(p));
        }
        if let Some(n) = self.min_replicas_acked {
            let _ = writeln!(t, "min-replicas-acked = {n}");
        }
        t.push_str(&self.extra);
        t
    }

    /// Write it to `path` and return `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        fs::write(path, self.toml()).expect("write shipper config");
        path.to_path_buf()
    }
}

/// A `runlog-shipper` process; its stderr goes to a file. Killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct Shipper {
    child: Option<Child>,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Shipper {
    /// Start `runlog-shipper --config CONFIG [--once]`, stderr to `log` (appended).
    pub fn spawn(config: &Path, once: bool, log: &Path) -> Shipper {
        let mut cmd = Command::new(shipper_bin());
        cmd.arg("--config").arg(config);
        if once {
            cmd.arg("--once");
        }
        Shipper::spawn_cmd(cmd, log)
    }

    /// Start a prepared command (arguments already set), stderr to `log` (appended).
    pub fn spawn_cmd(mut cmd: Command, log: &Path) -> Shipper {
        clean_env(&mut cmd);
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("shipper log file");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err));
        let child = cmd.spawn().expect("spawn runlog-shipper");
        Shipper {
            child: Some(child),
            log: log.to_path_buf(),
            status: None,
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Wait up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                self.status = Some(st);
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Has it exited (without waiting)?
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.wait_timeout(Duration::ZERO)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if self.status.is_none() {
                let _ = c.kill();
                self.status = c.wait().ok();
            }
        }
    }

    /// Send a signal by name (`TERM`, `INT`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill(1)");
        assert!(st.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Run `runlog-shipper --config CONFIG --once` to the end; returns its exit status and its
/// stderr (also appended to `log`).
pub fn ship_once(config: &Path, log: &Path) -> (ExitStatus, String) {
    let mut cmd = Command::new(shipper_bin());
    cmd.arg("--config").arg(config).arg("--once");
    run_to_end(cmd, log)
}

/// Run a `runlog-shipper --once` command line ([`Shipper::spawn_cmd`]) to the end; returns
/// its exit status and its stderr of this run (also appended to `log`).
fn run_to_end(cmd: Command, log: &Path) -> (ExitStatus, String) {
    let before = fs::read_to_string(log).map_or(0, |s| s.len());
    let mut s = Shipper::spawn_cmd(cmd, log);
    let st = s.wait_timeout(SHIP_TIMEOUT).unwrap_or_else(|| {
        s.kill();
        panic!(
            "runlog-shipper --once did not finish within {SHIP_TIMEOUT:?}; its log:\n{}",
            s.log()
        )
    });
    let text = s.log();
    (st, text.get(before..).unwrap_or_default().to_owned())
}

/// [`ship_once`], asserting exit status 0.
pub fn ship_once_ok(config: &Path, log: &Path) -> String {
    let (st, text) = ship_once(config, log);
    assert!(st.success(), "runlog-shipper --once failed ({st}):\n{text}");
    text
}

// ---------------------------------------------------------------------------------------------
// jobkid
// ---------------------------------------------------------------------------------------------

/// How one run of a jobkid ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Committed ok.
    Ok,
    /// `Run::fail` after an ERROR record.
    Fail,
    /// A panic inside the run (caught in the kid after the run recorded it).
    Panic,
    /// `RunLogger::run` with a closure that returns an `Err` with a source chain.
    Err,
    /// `Run::cancel`.
    Cancel,
    /// The process aborts inside the run (it is `crashed`); no later runs.
    Crash,
    /// Start the run, log, print `hold <id>`, wait for a line (or EOF) on stdin, commit ok.
    Hold,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Ok,
        Kind::Fail,
        Kind::Panic,
        Kind::Err,
        Kind::Cancel,
        Kind::Crash,
        Kind::Hold,
    ];

    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Fail => "fail",
            Kind::Panic => "panic",
            Kind::Err => "err",
            Kind::Cancel => "cancel",
            Kind::Crash => "crash",
            Kind::Hold => "hold",
        }
    }

    /// The status the journal gives the run.
    pub fn status(self) -> &'static str {
        match self {
            Kind::Ok | Kind::Hold => "ok",
            Kind::Fail | Kind::Panic | Kind::Err => "failed",
            Kind::Cancel => "cancelled",
            Kind::Crash => "crashed",
        }
    }

    /// Parse a comma-separated pattern (`mixed` = `ok,ok,fail,cancel`).
    pub fn parse_pattern(s: &str) -> Result<Vec<Kind>, String> {
        let s = if s == "mixed" { "ok,ok,fail,cancel" } else { s };
        s.split(',')
            .map(|k| {
                Kind::ALL
                    .into_iter()
                    .find(|x| x.as_str() == k)
                    .ok_or_else(|| format!("unknown status {k:?}"))
            })
            .collect()
    }
}

/// A jobkid command line.
#[derive(Clone, Debug)]
pub struct KidArgs {
    /// Journal directory.
    pub journal: PathBuf,
    /// Job name.
    pub job: String,
    /// Runs to make.
    pub runs: u64,
    /// Records per run.
    pub records: u64,
    /// Kinds of the runs, rotating.
    pub kinds: Vec<Kind>,
    /// Pause between runs (ms).
    pub delay_ms: u64,
    /// Labels set on every run (and `index` = the run's number).
    pub labels: Vec<(String, String)>,
    /// Extra bytes of (varied) text per message.
    pub size: usize,
    /// Make that text random (it barely compresses) instead of words.
    pub noise: bool,
    /// Measure log calls and print `latency` lines at exit.
    pub latency: bool,
    /// The kid's own `max-logs`.
    pub max_logs: usize,
    /// The kid's own `max-failed-logs`.
    pub max_failed_logs: usize,
    /// `never`, `commit` or `always`.
    pub fsync: String,
}

impl KidArgs {
    /// `runs` runs of `records` records of `kinds`, keeping all of them locally, no fsync.
    pub fn new(journal: &Path, job: &str, runs: u64, records: u64, kinds: &[Kind]) -> KidArgs {
        KidArgs {
            journal: journal.to_path_buf(),
            job: job.to_owned(),
            runs,
            records,
            kinds: kinds.to_vec(),
            delay_ms: 0,
            labels: Vec::new(),
            size: 40,
            noise: false,
            latency: false,
            max_logs: 100_000,
            max_failed_logs: 100_000,
            fsync: "never".into(),
        }
    }

    /// The arguments (after the program name).
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--journal".into(),
            self.journal.display().to_string(),
            "--job".into(),
            self.job.clone(),
            "--runs".into(),
            self.runs.to_string(),
            "--records".into(),
            self.records.to_string(),
            "--status".into(),
            self.kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
            "--delay-ms".into(),
            self.delay_ms.to_string(),
            "--size".into(),
            self.size.to_string(),
            "--max-logs".into(),
            self.max_logs.to_string(),
            "--max-failed-logs".into(),
            self.max_failed_logs.to_string(),
            "--fsync".into(),
            self.fsync.clone(),
        ];
        for (k, v) in &self.labels {
            a.push("--label".into());
            a.push(format!("{k}={v}"));
        }
        if self.latency {
            a.push("--latency".into());
        }
        if self.noise {
            a.push("--noise".into());
        }
        a
    }

    /// Parse the arguments (after the program name).
    pub fn parse(args: &[String]) -> Result<KidArgs, String> {
        let mut k = KidArgs::new(Path::new(""), "", 1, 10, &[Kind::Ok]);
        let mut it = args.iter();
        let mut journal = None;
        let mut job = None;
        while let Some(a) = it.next() {
            let mut val = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{a} needs a value"))
            };
            let num = |v: String| v.parse::<u64>().map_err(|_| format!("bad number {v:?}"));
            match a.as_str() {
                "--journal" => journal = Some(PathBuf::from(val()?)),
                "--job" => job = Some(val()?),
                "--runs" => k.runs = num(val()?)?,
                "--records" => k.records = num(val()?)?,
                "--status" => k.kinds = Kind::parse_pattern(&val()?)?,
                "--delay-ms" => k.delay_ms = num(val()?)?,
                "--size" => k.size = num(val()?)? as usize,
                "--max-logs" => k.max_logs = num(val()?)? as usize,
                "--max-failed-logs" => k.max_failed_logs = num(val()?)? as usize,
                "--fsync" => k.fsync = val()?,
                "--label" => {
                    let v = val()?;
                    let (a, b) = v.split_once('=').ok_or("a label is KEY=VALUE")?;
                    k.labels.push((a.to_owned(), b.to_owned()));
                }
                "--latency" => k.latency = true,
                "--noise" => k.noise = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        k.journal = journal.ok_or("--journal is required")?;
        k.job = job.ok_or("--job is required")?;
        if k.kinds.is_empty() {
            return Err("--status is empty".into());
        }
        Ok(k)
    }
}

/// Latency figures a kid prints at exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Calls measured.
    pub n: u64,
    /// Median (ns).
    pub p50_ns: u64,
    /// 99th percentile (ns).
    pub p99_ns: u64,
    /// Maximum (ns).
    pub max_ns: u64,
}

impl Latency {
    /// From measured durations (ns).
    pub fn of(mut v: Vec<u64>) -> Latency {
        if v.is_empty() {
            return Latency::default();
        }
        v.sort_unstable();
        let at = |q: f64| v[(((v.len() - 1) as f64) * q).round() as usize];
        Latency {
            n: v.len() as u64,
            p50_ns: at(0.5),
            p99_ns: at(0.99),
            max_ns: at(1.0),
        }
    }
}

/// A line a jobkid writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KidLine {
    /// `run <id> <status> <records> <kind>`: the run ended (its end returned).
    Run {
        /// Run id.
        id: String,
        /// `ok`, `failed` or `cancelled`.
        status: String,
        /// Records logged.
        records: u64,
        /// How it ended.
        kind: String,
    },
    /// `hold <id> <records>`: the run is open, waiting for a line on stdin.
    Hold {
        /// Run id.
        id: String,
        /// Records logged so far.
        records: u64,
    },
    /// `crash <id> <records>`: about to abort inside the run.
    Crash {
        /// Run id.
        id: String,
        /// Records logged.
        records: u64,
    },
    /// `latency <what> n=.. p50_ns=.. p99_ns=.. max_ns=..`.
    Latency {
        /// `log` (log calls) or `run` (starting and ending runs).
        what: String,
        /// The figures.
        lat: Latency,
    },
    /// `done`: every run ended; the kid exits 0.
    Done,
    /// Anything else.
    Other(String),
}

impl KidLine {
    /// The line as written.
    pub fn line(&self) -> String {
        match self {
            KidLine::Run {
                id,
                status,
                records,
                kind,
            } => format!("run {id} {status} {records} {kind}"),
            KidLine::Hold { id, records } => format!("hold {id} {records}"),
            KidLine::Crash { id, records } => format!("crash {id} {records}"),
            KidLine::Latency { what, lat } => format!(
                "latency {what} n={} p50_ns={} p99_ns={} max_ns={}",
                lat.n, lat.p50_ns, lat.p99_ns, lat.max_ns
            ),
            KidLine::Done => "done".into(),
            KidLine::Other(s) => s.clone(),
        }
    }

    /// Parse a line (without its newline).
    pub fn parse(line: &str) -> KidLine {
        let f: Vec<&str> = line.split(' ').collect();
        let num = |s: &str| s.parse::<u64>().ok();
        let kv = |s: &str, k: &str| s.strip_prefix(k).and_then(|v| v.parse::<u64>().ok());
        match f.as_slice() {
            ["run", id, status, records, kind] if num(records).is_some() => KidLine::Run {
                id: (*id).to_owned(),
                status: (*status).to_owned(),
                records: num(records).unwrap_or(0),
                kind: (*kind).to_owned(),
            },
            ["hold", id, records] if num(records).is_some() => KidLine::Hold {
                id: (*id).to_owned(),
                records: num(records).unwrap_or(0),
            },
            ["crash", id, records] if num(records).is_some() => KidLine::Crash {
                id: (*id).to_owned(),
                records: num(records).unwrap_or(0),
            },
            ["latency", what, n, p50, p99, max] => {
                match (
                    kv(n, "n="),
                    kv(p50, "p50_ns="),
                    kv(p99, "p99_ns="),
                    kv(max, "max_ns="),
                ) {
                    (Some(n), Some(p50_ns), Some(p99_ns), Some(max_ns)) => KidLine::Latency {
                        what: (*what).to_owned(),
                        lat: Latency {
                            n,
                            p50_ns,
                            p99_ns,
                            max_ns,
                        },
                    },
                    _ => KidLine::Other(line.to_owned()),
                }
            }
            ["done"] => KidLine::Done,
            _ => KidLine::Other(line.to_owned()),
        }
    }
}

/// A running jobkid; its stdout lines arrive through a reader thread.
#[derive(Debug)]
pub struct Kid {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<String>,
    /// Every line read so far.
    pub lines: Vec<KidLine>,
}

impl Kid {
    /// Start `exe` (the jobkid binary) with these arguments.
    pub fn spawn(exe: &Path, args: &KidArgs) -> Kid {
        let mut cmd = Command::new(exe);
        cmd.args(args.to_args());
        clean_env(&mut cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn jobkid");
        let out = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let rx = crate::cli::line_channel(out);
        Kid {
            child,
            stdin,
            rx,
            lines: Vec::new(),
        }
    }

    /// The next line, waiting up to `timeout`; `None` at EOF or timeout.
    pub fn next_line(&mut self, timeout: Duration) -> Option<KidLine> {
        match self.rx.recv_timeout(timeout) {
            Ok(l) => {
                let k = KidLine::parse(&l);
                self.lines.push(k.clone());
                Some(k)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Read lines until one satisfies `hit`; panic after `timeout`.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        hit: impl Fn(&KidLine) -> bool,
    ) -> KidLine {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    let k = KidLine::parse(&l);
                    self.lines.push(k.clone());
                    if hit(&k) {
                        return k;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "jobkid: no {what} within {timeout:?}; lines so far: {:?}",
                    self.lines
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "jobkid exited before {what}; lines: {:?}; status {:?}",
                    self.lines,
                    self.child.try_wait()
                ),
            }
        }
    }

    /// Send a line to its stdin (releases a `hold` run).
    pub fn release(&mut self) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = s.write_all(b"go\n");
            let _ = s.flush();
        }
    }

    /// SIGKILL it and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Read every remaining line and wait for it to exit (up to `timeout`); returns its exit
    /// status and all its lines.
    pub fn finish(&mut self, timeout: Duration) -> (ExitStatus, Vec<KidLine>) {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.lines.push(KidLine::parse(&l)),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "jobkid did not finish within {timeout:?}; lines: {:?}",
                        self.lines
                    );
                }
            }
        }
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return (st, self.lines.clone());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("jobkid did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The `run` lines read so far: `(id, status, records, kind)`.
    pub fn runs(&self) -> Vec<(String, String, u64, String)> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                KidLine::Run {
                    id,
                    status,
                    records,
                    kind,
                } => Some((id.clone(), status.clone(), *records, kind.clone())),
                _ => None,
            })
            .collect()
    }

    /// A `latency` line read so far.
    pub fn latency(&self, what: &str) -> Option<Latency> {
        self.lines.iter().find_map(|l| match l {
            KidLine::Latency { what: w, lat } if w == what => Some(*lat),
            _ => None,
        })
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run a jobkid to the end (it must exit 0, or abort for a `crash` kind); returns its lines.
pub fn run_kid(exe: &Path, args: &KidArgs) -> Vec<KidLine> {
    let mut k = Kid::spawn(exe, args);
    let (st, lines) = k.finish(Duration::from_secs(120));
    let crashed = lines.iter().any(|l| matches!(l, KidLine::Crash { .. }));
    assert!(
        st.success() || crashed,
        "jobkid {:?} failed ({st}); lines: {lines:?}",
        args.to_args()
    );
    lines
}

// ---------------------------------------------------------------------------------------------
// Journal files
// ---------------------------------------------------------------------------------------------

/// Copy a directory tree (files copied, not linked).
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("create copy dir");
    for ent in fs::read_dir(src).expect("read_dir") {
        let ent = ent.expect("entry");
        let to = dst.join(ent.file_name());
        if ent.file_type().expect("file type").is_dir() {
            copy_tree(&ent.path(), &to);
        } else {
            fs::copy(ent.path(), &to).expect("copy file");
        }
    }
}

/// Forget what a shipper did in a journal: every job's `.shipped` (and `.shipped.tmp`) and
/// `<journal>/shipper/state`.
pub fn reset_shipper_state(journal: &Path) {
    if let Ok(rd) = fs::read_dir(journal.join("jobs")) {
        for ent in rd.flatten() {
            for f in [".shipped", ".shipped.tmp"] {
                let _ = fs::remove_file(ent.path().join(f));
            }
        }
    }
    for f in ["state", "state.tmp"] {
        let _ = fs::remove_file(journal.join("shipper").join(f));
    }
}

/// Total size of the segment files of a journal.
pub fn segment_bytes(journal: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(journal.join("jobs")) {
        for job in rd.flatten() {
            if let Ok(files) = fs::read_dir(job.path()) {
                for f in files.flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".seg") {
                        total += f.metadata().map_or(0, |m| m.len());
                    }
                }
            }
        }
    }
    total
}

/// Every file of a tree with its contents (to check a tree was not modified).
pub fn tree_contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for ent in rd.flatten() {
            let p = ent.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(b) = fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    walk(dir, &mut out);
    out.sort();
    out
}

/// Wait until a shipper has written to Redis beyond the schema and epoch keys (its first
/// stage list, after the journal was read and compressed); the instant it was seen, or `None`
/// if the shipper exited first.
pub fn wait_first_write(conn: &mut redis::Connection, s: &mut Shipper) -> Option<Instant> {
    wait_keys(conn, s, 3)
}

/// Wait until Redis holds at least `keys` keys; the instant it was seen, or `None` if the
/// shipper exited first.
pub fn wait_keys(conn: &mut redis::Connection, s: &mut Shipper, keys: u64) -> Option<Instant> {
    let deadline = Instant::now() + SHIP_TIMEOUT;
    loop {
        let n: u64 = redis::cmd("DBSIZE").query(conn).expect("DBSIZE");
        if n >= keys {
            return Some(Instant::now());
        }
        if s.try_status().is_some() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "the shipper never wrote:\n{}",
            s.log()
        );
    }
}

/// [`ship_once`], also measuring the shipper's peak resident memory, by running it under
/// `peakrss` (`src/bin/peakrss.rs`, at `peakrss_bin`: the high-water mark of its whole life,
/// however short the peak, and of the shipper alone). Returns the exit status, the stderr of
/// this run and the peak in bytes.
pub fn ship_once_peak_rss(
    peakrss_bin: &Path,
    config: &Path,
    log: &Path,
) -> (ExitStatus, String, u64) {
    let out = log.with_extension("peak-rss");
    let mut cmd = Command::new(peakrss_bin);
    cmd.arg(&out)
        .arg(shipper_bin())
        .arg("--config")
        .arg(config)
        .arg("--once");
    let (status, text) = run_to_end(cmd, log);
    let peak = fs::read_to_string(&out)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("peakrss wrote no figure to {} ({status})", out.display()));
    (status, text, peak)
}
