//! The engine of the SIGKILL crash tests (`tests/tests/crash.rs` and the torture scenario in
//! `tests/tests/torture_proc.rs`): real child processes (`src/bin/crashkid.rs`) log into runs
//! and acknowledge on stdout every call that returned; [`kill_iterations`] kills them with
//! SIGKILL after a random delay and then checks the journal:
//!
//! - the run is reported `crashed`. In the many-short-runs mode: every run whose commit
//!   returned is `ok` (and listed, unless a small `max-logs` let retention delete it), every run
//!   whose cancel returned is never listed, and the run in progress is `crashed` — or `ok` if the
//!   kill came after its end frame, or gone if it was being cancelled;
//! - every acknowledged record is there, in order (per thread), and at most one record per
//!   thread past the last acknowledgement (its call returned, its ack was not yet written);
//! - every decoded record is byte for byte one the child logs for its `(run, thread, seq)`
//!   (level, target, key-values, message; a record too large for a segment is cut, and then
//!   must be a prefix), so no partial or foreign record is ever decoded;
//! - the reader reports no problem (a torn tail is not one);
//! - after one more run of the job in a new process (whose end recovers the job directory),
//!   the crashed run is still `crashed` with the same records, every run's last segment ends
//!   cleanly at its last valid frame (the torn tail was cut), and no `.tmp-` file nor any file of
//!   a cancelled or deleted run is left. (`.tmp-` files are aged first: a sweep removes them only
//!   when a minute old. A cancelled run killed before its segment was cut survives the first
//!   sweep, as `spec/journal.md` says; a second recovery run must delete it.)
//!
//! Acknowledged records found missing are counted ([`KillSummary::records_lost`]) as well as
//! failing the iteration.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use runlog::journal::layout::{parse_segment_name, TMP_PREFIX};
use runlog::journal::payload::{End, Frame, Outcome};
use runlog::journal::reader::{scan_file, SegmentEnd};
use runlog::{Journal, Record, RunInfo, RunStatus};

use crate::crash::{
    expected, mix, parse_prefix, run_cancelled, run_records, Ack, ChildArgs, ChildMode, Fsync, Rng,
    CONFIG_ENV, DEFAULT_TARGET, JOB, LABEL_EVERY, PROGRESS_LABEL, RECOVERY_MESSAGE, RUN_LABEL,
    THREADS,
};

/// What to run: which iterations of which seed, with which child binary.
#[derive(Clone, Debug)]
pub struct KillOptions {
    /// The `crashkid` binary (`env!("CARGO_BIN_EXE_crashkid")` in an integration test).
    pub kid: PathBuf,
    /// Decides every iteration's plan.
    pub seed: u64,
    /// The iteration numbers to run (each is one child killed).
    pub iterations: Vec<usize>,
    /// Run every iteration even after one failed.
    pub keep_going: bool,
    /// Children alive at once.
    pub parallel: usize,
    /// How to replay one iteration, `{iter}` standing for its number (shown on failure).
    pub replay: String,
}

/// What [`kill_iterations`] found.
#[derive(Debug)]
pub struct KillSummary {
    /// Children killed and checked (failed iterations included).
    pub kills: usize,
    /// One message per failed iteration (with how to replay it).
    pub failures: Vec<String>,
    /// Acknowledged records (log calls that returned) found missing.
    pub records_lost: u64,
    /// What the kills hit, as a readable table.
    pub stats: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// Kill one child per iteration of `opts` at its random point and check what survived.
pub fn kill_iterations(opts: &KillOptions) -> KillSummary {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failures = Mutex::new(Vec::<String>::new());
    let total = Mutex::new(Stats::default());
    let seed = opts.seed;
    thread::scope(|s| {
        for _ in 0..opts.parallel.max(1).min(opts.iterations.len()) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some(&iter) = opts.iterations.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                let p = plan(seed, iter);
                let mut st = Stats::default();
                let res = iteration(opts, &p, &mut st);
                total.lock().unwrap_or_else(|e| e.into_inner()).add(&st);
                if let Err(e) = res {
                    stop.store(!opts.keep_going, Ordering::Relaxed);
                    failures.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                }
            });
        }
    });
    let st = total.into_inner().unwrap_or_else(|e| e.into_inner());
    KillSummary {
        kills: st.kills,
        failures: failures.into_inner().unwrap_or_else(|e| e.into_inner()),
        records_lost: st.lost_records,
        stats: format!("{st:#?}"),
        elapsed: started.elapsed(),
    }
}

/// `max-logs` that keeps every run.
const KEEP_ALL: u64 = 1 << 20;
/// How long a child may take to acknowledge what a kill waits for.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// What an iteration kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    /// Kill while the process starts, builds the logger and starts the run.
    StartPhase,
    /// One thread logging.
    Single,
    /// Four threads of one run logging.
    Threads,
    /// Records up to ~300 KiB: segments roll over all the time.
    Large,
    /// Many short runs, each committed or cancelled: kills land in commits, cancels and
    /// retention too.
    Runs,
}

/// The order scenarios take turns in: each iteration takes the next.
const CYCLE: [Scenario; 9] = [
    Scenario::StartPhase,
    Scenario::Single,
    Scenario::Threads,
    Scenario::Large,
    Scenario::Runs,
    Scenario::Single,
    Scenario::Threads,
    Scenario::Large,
    Scenario::Runs,
];

/// What the kill delay is measured from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    /// `Command::spawn` returning.
    Spawn,
    /// The child's first acknowledgement (before it builds its logger).
    Hello,
    /// The first run started.
    Started,
}

/// One iteration, decided by the seed alone.
#[derive(Clone, Debug)]
struct Plan {
    iter: usize,
    scenario: Scenario,
    mode: ChildMode,
    fsync: Fsync,
    segment_size: u64,
    /// Ok runs kept per job (the many-short-runs mode sometimes keeps few: kills then land in
    /// retention's deletions too).
    max_logs: u64,
    child_seed: u64,
    anchor: Anchor,
    delay: Duration,
}

fn plan(seed: u64, iter: usize) -> Plan {
    let mut r = Rng::new(mix(seed ^ mix(iter as u64)));
    let scenario = CYCLE[iter % CYCLE.len()];
    let mode = match scenario {
        Scenario::StartPhase => {
            [ChildMode::Single, ChildMode::Threads, ChildMode::Runs][r.below(3) as usize]
        }
        Scenario::Single => ChildMode::Single,
        Scenario::Threads => ChildMode::Threads,
        Scenario::Large => ChildMode::Large,
        Scenario::Runs => ChildMode::Runs,
    };
    let fsync = match r.below(100) {
        0..=49 => Fsync::Never,
        50..=79 => Fsync::Commit,
        80..=91 => Fsync::IntervalMicros(r.range(100, 5000)),
        _ => Fsync::Always,
    };
    let segment_size = match (mode, r.below(4)) {
        (ChildMode::Large, 0 | 1) => 1 << 20,
        (_, 0) => 256 << 10,
        _ => 64 << 10,
    };
    let max_logs = match (mode, r.below(2)) {
        (ChildMode::Runs, 0) => r.range(1, 4),
        _ => KEEP_ALL,
    };
    let (anchor, delay_us) = match scenario {
        Scenario::StartPhase => match r.below(10) {
            0 => (Anchor::Spawn, 0),
            1..=4 => (Anchor::Spawn, r.log_uniform(1, 8000)),
            _ => (Anchor::Hello, r.below(2000)),
        },
        Scenario::Runs => (Anchor::Started, r.log_uniform(20, 100_000)),
        Scenario::Large => (Anchor::Started, r.log_uniform(50, 150_000)),
        _ => (Anchor::Started, r.log_uniform(5, 60_000)),
    };
    Plan {
        iter,
        scenario,
        mode,
        fsync,
        segment_size,
        max_logs,
        child_seed: r.next_u64(),
        anchor,
        delay: Duration::from_micros(delay_us),
    }
}

/// What the kills hit, summed over iterations.
#[derive(Clone, Debug, Default)]
struct Stats {
    kills: usize,
    by_scenario: BTreeMap<String, usize>,
    /// Killed before any run was acknowledged as started.
    before_run: usize,
    /// ... of which a run had been published (crashed with no records).
    unacked_run: usize,
    /// Records whose log call was acknowledged.
    acked_records: u64,
    /// Records read back (fewer than acknowledged when retention deleted runs).
    decoded_records: u64,
    /// Records in the journal whose call returned but whose ack was not written.
    unacked_records: u64,
    /// Records cut to fit a segment (checked to be a prefix of what was logged).
    truncated: u64,
    /// Kills that left a torn frame at the end of the last segment.
    torn_tails: usize,
    /// Kills right after a rollover (the last segment holds no frame yet).
    empty_last_segment: usize,
    /// Crashed runs with more than one segment.
    multi_segment: usize,
    /// Listed runs whose commit was acknowledged (many-short-runs mode).
    committed_runs: usize,
    /// Runs cancelled and acknowledged (many-short-runs mode): never listed.
    cancelled_runs: usize,
    /// Acknowledged ok runs deleted by retention (many-short-runs mode with a small max-logs).
    deleted_by_retention: usize,
    /// Kills after the end frame of a run but before its commit returned (reported ok).
    ok_unacked_commit: usize,
    /// `.tmp-` files a kill left (the recovery run must remove them).
    tmp_files: usize,
    /// Cancelled runs killed before their segment was truncated, left by the first sweep (and
    /// deleted by the second).
    cancel_survived_sweep: usize,
    /// Non-last segments of a crashed run that recovery left with a zero-filled tail.
    zero_tail_after_recovery: usize,
    /// Acknowledged records found missing (each also fails its iteration).
    lost_records: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.kills += o.kills;
        for (k, v) in &o.by_scenario {
            *self.by_scenario.entry(k.clone()).or_default() += v;
        }
        self.before_run += o.before_run;
        self.unacked_run += o.unacked_run;
        self.acked_records += o.acked_records;
        self.decoded_records += o.decoded_records;
        self.unacked_records += o.unacked_records;
        self.truncated += o.truncated;
        self.torn_tails += o.torn_tails;
        self.empty_last_segment += o.empty_last_segment;
        self.multi_segment += o.multi_segment;
        self.committed_runs += o.committed_runs;
        self.cancelled_runs += o.cancelled_runs;
        self.deleted_by_retention += o.deleted_by_retention;
        self.ok_unacked_commit += o.ok_unacked_commit;
        self.tmp_files += o.tmp_files;
        self.cancel_survived_sweep += o.cancel_survived_sweep;
        self.zero_tail_after_recovery += o.zero_tail_after_recovery;
        self.lost_records += o.lost_records;
    }
}

/// Run one iteration in its own temporary directory, kept (and named) if it fails; what it
/// saw goes into `st` whether it fails or not.
fn iteration(opts: &KillOptions, plan: &Plan, st: &mut Stats) -> Result<(), String> {
    let seed = opts.seed;
    let tmp = tempfile::Builder::new()
        .prefix("runlog-crash-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    match check_iteration(&opts.kid, plan, tmp.path(), st) {
        Ok(()) => Ok(()),
        Err(e) => {
            let kept = tmp.keep();
            Err(format!(
                "seed {seed} iteration {} (scenario {:?}, mode {}, fsync {}, segment size {}, \
                 max-logs {}, child seed {}, kill {:?} after {:?}): {e}\n  journal dir (kept): \
                 {}\n  replay: {}",
                plan.iter,
                plan.scenario,
                plan.mode,
                plan.fsync,
                plan.segment_size,
                plan.max_logs,
                plan.child_seed,
                plan.delay,
                plan.anchor,
                kept.join("journal").display(),
                opts.replay.replace("{iter}", &plan.iter.to_string()),
            ))
        }
    }
}

fn spawn_kid(kid: &Path, args: &ChildArgs, stderr: &Path) -> Result<Child, String> {
    let err = fs::File::create(stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
    let mut cmd = Command::new(kid);
    cmd.args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err);
    for k in CONFIG_ENV {
        cmd.env_remove(k);
    }
    cmd.spawn()
        .map_err(|e| format!("cannot spawn {}: {e}", kid.display()))
}

fn read_stderr(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// Acks read from a child's stdout on a thread, as they arrive.
struct AckReader {
    rx: mpsc::Receiver<Result<Ack, String>>,
    thread: thread::JoinHandle<()>,
    acks: Vec<Ack>,
}

impl AckReader {
    fn start(child: &mut Child) -> AckReader {
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let msg = match line {
                    Ok(l) => Ack::parse(&l).ok_or_else(|| format!("unparseable ack line {l:?}")),
                    Err(e) => Err(format!("reading the child's stdout: {e}")),
                };
                let stop = msg.is_err();
                if tx.send(msg).is_err() || stop {
                    return;
                }
            }
        });
        AckReader {
            rx,
            thread,
            acks: Vec::new(),
        }
    }

    /// Wait for the first ack that `hit` accepts.
    fn wait_for(&mut self, what: &str, hit: impl Fn(&Ack) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Ok(a)) => {
                    let done = hit(&a);
                    self.acks.push(a);
                    if done {
                        return Ok(());
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "the child did not acknowledge {what} in {ACK_TIMEOUT:?}"
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "the child closed stdout before acknowledging {what}"
                    ))
                }
            }
        }
    }

    /// Every ack until the child's stdout is closed (after the child is dead).
    fn finish(mut self) -> Result<Vec<Ack>, String> {
        for a in self.rx.iter() {
            self.acks.push(a?);
        }
        self.thread
            .join()
            .map_err(|_| "the ack reader panicked".to_owned())?;
        Ok(self.acks)
    }
}

fn check_iteration(kid: &Path, plan: &Plan, dir: &Path, st: &mut Stats) -> Result<(), String> {
    let journal = dir.join("journal");
    let stderr = dir.join("crashkid.stderr");
    let args = ChildArgs {
        journal_dir: journal.clone(),
        mode: plan.mode,
        seed: plan.child_seed,
        fsync: plan.fsync,
        segment_size: plan.segment_size,
        max_logs: plan.max_logs,
    };
    let t0 = Instant::now();
    let mut child = spawn_kid(kid, &args, &stderr)?;
    let mut reader = AckReader::start(&mut child);
    let waited = match plan.anchor {
        Anchor::Spawn => Ok(()),
        Anchor::Hello => reader.wait_for("its start", |a| matches!(a, Ack::Hello)),
        Anchor::Started => reader.wait_for("a run start", |a| matches!(a, Ack::Started { .. })),
    };
    let anchor_at = if plan.anchor == Anchor::Spawn {
        t0
    } else {
        Instant::now()
    };
    if waited.is_ok() {
        let left = (anchor_at + plan.delay).saturating_duration_since(Instant::now());
        if !left.is_zero() {
            thread::sleep(left);
        }
    }
    // `Child::kill` sends SIGKILL on Unix; the child is not reaped yet, so it is ours.
    let killed = child.kill();
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the child: {e}"))?;
    let acks = reader.finish();
    let err = read_stderr(&stderr);
    waited.map_err(|e| format!("{e}; child stderr: {err:?}"))?;
    if killed.is_err() || status.signal() != Some(libc::SIGKILL) {
        return Err(format!(
            "the child was not killed by SIGKILL (kill returned {killed:?}, status {status}); \
             its stderr: {err:?}"
        ));
    }
    if !err.is_empty() {
        return Err(format!("the child wrote to stderr: {err:?}"));
    }
    let acks = acks?;
    let acked = Acked::from_acks(&acks, plan.mode)?;

    st.kills += 1;
    *st.by_scenario
        .entry(format!("{:?}", plan.scenario))
        .or_default() += 1;
    let before = check_journal(plan, &journal, &acked, st, child.id())
        .map_err(|e| format!("after the kill: {e}"))?;

    // Recovery: one more run of the job in a new process; its end recovers the job directory.
    // A sweep leaves a dead writer's `.tmp-` file alone until it is a minute old (its writer
    // may be between creating and locking it): make them look that old.
    st.tmp_files += age_tmp_files(&journal)?;
    let rec_args = ChildArgs {
        mode: ChildMode::Recover,
        max_logs: KEEP_ALL,
        ..args
    };
    let mut rec_ids = vec![recover(kid, &rec_args, &dir.join("recover.stderr"))?];
    let leftovers = check_recovered(&journal, &before, &rec_ids, false, st)
        .map_err(|e| format!("after recovery: {e}"))?;
    if leftovers > 0 {
        // A cancelled run killed between its CANCEL frame and the truncation of its segment is
        // treated as crashed by the first sweep (spec/journal.md, "Recovery and retention"):
        // the next sweep must delete it.
        st.cancel_survived_sweep += leftovers;
        rec_ids.push(recover(kid, &rec_args, &dir.join("recover2.stderr"))?);
        check_recovered(&journal, &before, &rec_ids, false, st)
            .map_err(|e| format!("after a second recovery run: {e}"))?;
    }
    Ok(())
}

/// Run the recovery child: one more run of the job, whose end sweeps the job directory.
/// Returns the id of its run.
fn recover(kid: &Path, args: &ChildArgs, stderr: &Path) -> Result<String, String> {
    let mut rec = spawn_kid(kid, args, stderr)?;
    let rec_reader = AckReader::start(&mut rec);
    let status = rec
        .wait()
        .map_err(|e| format!("waiting for the recovery child: {e}"))?;
    let rec_acks = rec_reader.finish();
    let err = read_stderr(stderr);
    if !status.success() || !err.is_empty() {
        return Err(format!(
            "the recovery child failed ({status}); its stderr: {err:?}"
        ));
    }
    let rec_acks = rec_acks?;
    let Some(rec_id) = rec_acks.iter().find_map(|a| match a {
        Ack::Started { id, .. } => Some(id.clone()),
        _ => None,
    }) else {
        return Err(format!(
            "the recovery child acknowledged no run: {rec_acks:?}"
        ));
    };
    if !rec_acks.contains(&Ack::Committed { run: 0 }) {
        return Err(format!("the recovery child did not commit: {rec_acks:?}"));
    }
    Ok(rec_id)
}

/// What the child acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// Runs started: index → id.
    started: BTreeMap<u64, String>,
    /// Last acknowledged seq per (run, thread).
    last_record: BTreeMap<(u64, u32), u64>,
    /// Last acknowledged label value per run.
    last_label: BTreeMap<u64, u64>,
    /// Runs whose commit returned.
    committed: BTreeSet<u64>,
    /// Runs whose cancel returned.
    cancelled: BTreeSet<u64>,
    records: u64,
}

impl Acked {
    /// Acknowledged records of run `run`.
    fn records_of(&self, run: u64) -> u64 {
        self.last_record
            .range((run, 0)..=(run, u32::MAX))
            .map(|(_, seq)| seq + 1)
            .sum()
    }

    fn ended(&self, run: u64) -> bool {
        self.committed.contains(&run) || self.cancelled.contains(&run)
    }
}

impl Acked {
    /// Collect the acks, checking that the child acknowledged things in the order it does them
    /// (else the test, not the library, is wrong).
    fn from_acks(acks: &[Ack], mode: ChildMode) -> Result<Acked, String> {
        let mut a = Acked::default();
        let bad = |what: &str, ack: &Ack| Err(format!("ack {ack:?} out of order: {what}"));
        for (i, ack) in acks.iter().enumerate() {
            match ack {
                Ack::Hello => {
                    if i != 0 {
                        return bad("hello is not first", ack);
                    }
                }
                Ack::Started { run, id } => {
                    if *run != a.started.len() as u64 {
                        return bad("runs start in order", ack);
                    }
                    if *run > 0 && !a.ended(run - 1) {
                        return bad("the previous run has not ended", ack);
                    }
                    a.started.insert(*run, id.clone());
                }
                Ack::Record { run, thread, seq } => {
                    let want = a.last_record.get(&(*run, *thread)).map_or(0, |s| s + 1);
                    if !a.started.contains_key(run)
                        || a.ended(*run)
                        || *seq != want
                        || *thread >= threads_of(mode)
                    {
                        return bad("records are acknowledged in sequence", ack);
                    }
                    a.last_record.insert((*run, *thread), *seq);
                    a.records += 1;
                }
                Ack::Label { run, value } => {
                    if !a.started.contains_key(run) {
                        return bad("label before the run", ack);
                    }
                    a.last_label.insert(*run, *value);
                }
                Ack::Committed { run } => {
                    if !a.started.contains_key(run) || a.ended(*run) {
                        return bad("commit of an unknown or ended run", ack);
                    }
                    a.committed.insert(*run);
                }
                Ack::Cancelled { run } => {
                    if !a.started.contains_key(run) || a.ended(*run) {
                        return bad("cancel of an unknown or ended run", ack);
                    }
                    a.cancelled.insert(*run);
                }
            }
        }
        Ok(a)
    }
}

/// Does run `index` of this plan's child end with a cancel?
fn run_cancelled_in(plan: &Plan, index: u64) -> bool {
    plan.mode == ChildMode::Runs && run_cancelled(plan.child_seed, index)
}

fn threads_of(mode: ChildMode) -> u32 {
    if mode == ChildMode::Threads {
        THREADS
    } else {
        1
    }
}

/// A listed run as read right after the kill.
#[derive(Debug)]
struct Seen {
    info: RunInfo,
    records: Vec<Record>,
}

/// Check the journal right after the kill; returns what it holds, by run id.
fn check_journal(
    plan: &Plan,
    journal: &Path,
    acked: &Acked,
    st: &mut Stats,
    pid: u32,
) -> Result<BTreeMap<String, Seen>, String> {
    let runs = if journal.exists() {
        let j = Journal::open(journal).map_err(|e| format!("opening the journal: {e}"))?;
        let infos = j.runs(JOB).map_err(|e| format!("listing runs: {e}"))?;
        let mut runs = Vec::new();
        for info in infos {
            let log = j
                .read_run(JOB, &info.id)
                .map_err(|e| format!("reading run {}: {e}", info.id))?;
            if log.info != info {
                return Err(format!(
                    "run {}: runs() and read_run() disagree: {info:#?} vs {:#?}",
                    info.id, log.info
                ));
            }
            runs.push(Seen {
                info,
                records: log.records,
            });
        }
        runs
    } else {
        if !acked.started.is_empty() {
            return Err(format!(
                "the journal directory {} does not exist, but runs were acknowledged: {:?}",
                journal.display(),
                acked.started
            ));
        }
        Vec::new()
    };
    st.acked_records += acked.records;
    if acked.started.is_empty() {
        st.before_run += 1;
    }
    let ids: BTreeMap<&str, u64> = acked
        .started
        .iter()
        .map(|(i, id)| (id.as_str(), *i))
        .collect();
    // Which run each listed run is: its start was acknowledged, or it is the one being started.
    let mut unacked = 0;
    let mut listed: BTreeMap<u64, &Seen> = BTreeMap::new();
    for r in &runs {
        let index = match ids.get(r.info.id.as_str()) {
            Some(&i) => i,
            None => {
                // Killed after `runlog()` published the run, before its ack: no record yet.
                unacked += 1;
                st.unacked_run += 1;
                acked.started.len() as u64
            }
        };
        listed.insert(index, r);
    }
    // Which acknowledged runs must be listed and which must not.
    let n = usize::try_from(plan.max_logs).unwrap_or(usize::MAX);
    let in_progress = acked
        .started
        .keys()
        .next_back()
        .copied()
        .filter(|i| !acked.ended(*i));
    let ok_acked: Vec<u64> = acked.committed.iter().copied().collect();
    // The run in progress may have committed and its sweep deleted the oldest kept ok run.
    let in_progress_ok = in_progress
        .and_then(|i| listed.get(&i))
        .is_some_and(|r| r.info.status == RunStatus::Ok);
    let keep = &ok_acked[ok_acked.len().saturating_sub(n)..];
    let must = &ok_acked[ok_acked
        .len()
        .saturating_sub(n - usize::from(in_progress_ok))..];
    if unacked > 1 || (unacked == 1 && in_progress.is_some()) {
        return Err(format!(
            "{unacked} runs that were never acknowledged as started are listed (at most one may \
             be: the one being started when the kill came, after the previous run ended; run in \
             progress: {in_progress:?}): {:#?}",
            runs.iter().map(|r| &r.info).collect::<Vec<_>>()
        ));
    }
    for (i, id) in &acked.started {
        let is_listed = listed.contains_key(i);
        let names = || format!("{:?}", runs.iter().map(|r| &r.info.id).collect::<Vec<_>>());
        if acked.cancelled.contains(i) {
            st.cancelled_runs += 1;
            if is_listed {
                return Err(format!(
                    "run #{i} ({id}) was cancelled (its cancel returned) but is listed: {:#?}",
                    listed[i].info
                ));
            }
        } else if acked.committed.contains(i) {
            if must.contains(i) && !is_listed {
                st.lost_records += acked.records_of(*i);
                return Err(format!(
                    "run #{i} ({id}) committed (its drop returned) and is among the newest {n} ok \
                     runs, but is not listed; listed: {}",
                    names()
                ));
            }
            if is_listed && !keep.contains(i) {
                return Err(format!(
                    "run #{i} ({id}) is older than the newest {n} ok runs {keep:?} but was not \
                     deleted by retention"
                ));
            }
            if !is_listed {
                st.deleted_by_retention += 1;
            }
        } else if !is_listed && !run_cancelled_in(plan, *i) {
            st.lost_records += acked.records_of(*i);
            return Err(format!(
                "run #{i} ({id}) was acknowledged as started but is not listed; listed: {}",
                names()
            ));
        }
    }
    for (&index, r) in &listed {
        let info = &r.info;
        check_run(plan, info, &r.records, index, acked, st, pid)
            .map_err(|e| format!("run #{index} {} ({}): {e}", info.id, info.status))?;
    }
    Ok(runs.into_iter().map(|r| (r.info.id.clone(), r)).collect())
}

/// Check one run read right after the kill.
fn check_run(
    plan: &Plan,
    info: &RunInfo,
    records: &[Record],
    index: u64,
    acked: &Acked,
    st: &mut Stats,
    pid: u32,
) -> Result<(), String> {
    if !info.problems.is_empty() {
        return Err(format!("the reader reports problems: {:#?}", info.problems));
    }
    if info.job != JOB || info.pid != pid {
        return Err(format!(
            "job {:?} pid {} (expected {JOB:?} and {pid})",
            info.job, info.pid
        ));
    }
    if info.records != records.len() as u64 {
        return Err(format!(
            "the listing says {} records, read_run returned {}",
            info.records,
            records.len()
        ));
    }
    let started = acked.started.contains_key(&index);
    let committed = acked.committed.contains(&index);
    let counts = check_records(plan, index, records, st)?;
    st.decoded_records += records.len() as u64;

    // Every acknowledged record is there; at most one more per thread.
    for t in 0..threads_of(plan.mode) {
        let have = counts.get(&t).copied().unwrap_or(0);
        let acked_n = acked.last_record.get(&(index, t)).map_or(0, |s| s + 1);
        st.lost_records += acked_n.saturating_sub(have);
    }
    for t in 0..threads_of(plan.mode) {
        let have = counts.get(&t).copied().unwrap_or(0);
        let acked_n = acked.last_record.get(&(index, t)).map_or(0, |s| s + 1);
        if have < acked_n {
            return Err(format!(
                "record seq {have} of thread {t} (message prefix \"r{index} t{t} s{have}\") is \
                 missing: its log call returned (acknowledged up to seq {}), but the journal has \
                 only {have} records of that thread",
                acked_n - 1
            ));
        }
        if have > acked_n + 1 {
            return Err(format!(
                "thread {t} has {have} records but only {acked_n} were acknowledged: a thread \
                 cannot be more than one record ahead of its acks"
            ));
        }
        st.unacked_records += have - acked_n;
    }

    // Status.
    let n_expected = (plan.mode == ChildMode::Runs).then(|| run_records(plan.child_seed, index));
    let complete = n_expected.is_some_and(|n| records.len() as u64 == n);
    match info.status {
        RunStatus::Crashed if !committed => {}
        RunStatus::Ok if complete && !run_cancelled_in(plan, index) => {
            if !committed {
                st.ok_unacked_commit += 1;
            }
        }
        s => {
            return Err(format!(
                "status {s}, expected {}",
                if committed {
                    "ok (its commit returned)"
                } else {
                    "crashed"
                }
            ))
        }
    }
    if committed {
        st.committed_runs += 1;
    }
    if !started && (!records.is_empty() || info.status != RunStatus::Crashed) {
        return Err(
            "a run never acknowledged as started must be crashed and have no records".into(),
        );
    }

    // Labels.
    let last_label = acked.last_label.get(&index).copied();
    if plan.mode == ChildMode::Runs {
        let got = label(info, RUN_LABEL);
        let ok = match (got, last_label) {
            (Some(v), _) => v == index.to_string(),
            (None, acked) => acked.is_none(),
        };
        if !ok {
            return Err(format!(
                "label {RUN_LABEL:?} is {got:?}, acknowledged {last_label:?}, expected {index}"
            ));
        }
    } else {
        let got = label(info, PROGRESS_LABEL);
        let have0 = counts.get(&0).copied().unwrap_or(0);
        let ok = match got.map(|v| v.parse::<u64>()) {
            None => last_label.is_none(),
            // The last acknowledged value, or the next one (set, not yet acknowledged).
            Some(Ok(v)) => {
                let next = last_label.map_or(LABEL_EVERY - 1, |l| l + LABEL_EVERY);
                v < have0 && (Some(v) == last_label || v == next)
            }
            Some(Err(_)) => false,
        };
        if !ok {
            return Err(format!(
                "label {PROGRESS_LABEL:?} is {got:?}; the last acknowledged value is \
                 {last_label:?} and thread 0 has {have0} records"
            ));
        }
    }

    // The segments, scanned directly.
    let nseg = info.segments.len();
    if nseg == 0 {
        return Err("a listed run has no segment".into());
    }
    if nseg > 1 && info.status == RunStatus::Crashed {
        st.multi_segment += 1;
    }
    for (i, path) in info.segments.iter().enumerate() {
        let scan = scan_file(path).map_err(|e| format!("scanning {}: {e}", path.display()))?;
        let last = i + 1 == nseg;
        if scan.is_corrupt() {
            return Err(format!(
                "segment {} is corrupt: {:?}",
                path.display(),
                scan.end
            ));
        }
        match &scan.end {
            SegmentEnd::Clean | SegmentEnd::ZeroTail { .. } => {}
            SegmentEnd::TornTail { .. } if last => st.torn_tails += 1,
            e => {
                return Err(format!(
                    "segment {i} of {nseg} ({}) ends with {e:?}",
                    path.display()
                ))
            }
        }
        if last && nseg > 1 && scan.frames.is_empty() {
            st.empty_last_segment += 1;
        }
    }
    Ok(())
}

fn label<'a>(info: &'a RunInfo, key: &str) -> Option<&'a str> {
    info.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Check every record of run `index` against what the child logs, in per-thread order.
/// Returns how many records each thread has.
fn check_records(
    plan: &Plan,
    index: u64,
    records: &[Record],
    st: &mut Stats,
) -> Result<BTreeMap<u32, u64>, String> {
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    for (pos, rec) in records.iter().enumerate() {
        let shown = || {
            let m: String = rec.message.chars().take(60).collect();
            format!(
                "record #{pos} (message {m:?}…, {} bytes, level {}, target {:?}, {} kvs, \
                 truncated {})",
                rec.message.len(),
                rec.level,
                rec.target,
                rec.kvs.len(),
                rec.truncated
            )
        };
        let Some((run, t, seq)) = parse_prefix(&rec.message) else {
            return Err(format!(
                "{} is not a record the child could have written",
                shown()
            ));
        };
        let want = next.get(&t).copied().unwrap_or(0);
        if run != index || t >= threads_of(plan.mode) || seq != want {
            return Err(format!(
                "{} is out of place: expected run {index}, thread < {}, seq {want} for that thread",
                shown(),
                threads_of(plan.mode)
            ));
        }
        let e = expected(plan.child_seed, plan.mode, run, t, seq);
        let msg = e.message();
        let kvs = e.kv_pairs(t, seq);
        let mut bad = String::new();
        if rec.level != e.level || rec.target != e.target {
            let _ = write!(
                bad,
                " level/target {}/{:?} instead of {}/{:?};",
                rec.level, rec.target, e.level, e.target
            );
        }
        if rec.module_path.as_deref() != Some(DEFAULT_TARGET)
            || !rec
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("crashkid.rs"))
            || rec.line.is_none()
        {
            let _ = write!(
                bad,
                " module/file/line {:?}/{:?}/{:?};",
                rec.module_path, rec.file, rec.line
            );
        }
        if rec.truncated {
            // Only a record too large for a whole segment is cut.
            st.truncated += 1;
            if (e.size() as u64) < plan.segment_size - 1024 {
                let _ = write!(
                    bad,
                    " cut although its {} bytes fit a {}-byte segment;",
                    e.size(),
                    plan.segment_size
                );
            }
            // Cut: its head and tail around the marker, or (when only key-values were cut)
            // whole or a prefix.
            let message_ok = match runlog::journal::payload::split_cut_message(&rec.message) {
                Some((head, n, tail)) => {
                    msg.starts_with(head)
                        && msg.ends_with(tail)
                        && head.len() as u64 + n + tail.len() as u64 == msg.len() as u64
                }
                None => msg.starts_with(&rec.message),
            };
            if !message_ok {
                let _ = write!(
                    bad,
                    " the cut message is not the logged one's head and tail around the marker;"
                );
            }
            let kv_ok = rec.kvs.len() <= kvs.len()
                && rec.kvs.iter().zip(&kvs).enumerate().all(|(i, (g, w))| {
                    g.0 == w.0
                        && if i + 1 == rec.kvs.len() {
                            w.1.starts_with(&g.1)
                        } else {
                            g.1 == w.1
                        }
                });
            if !kv_ok {
                let _ = write!(
                    bad,
                    " the cut key-values are not a prefix of the logged ones;"
                );
            }
        } else {
            if rec.message != msg {
                let _ = write!(
                    bad,
                    " message differs from the logged one ({} bytes);",
                    msg.len()
                );
            }
            if rec.kvs != kvs {
                let _ = write!(bad, " key-values differ from the logged ones;");
            }
        }
        if !bad.is_empty() {
            return Err(format!("{} is malformed:{bad}", shown()));
        }
        next.insert(t, seq + 1);
    }
    Ok(next)
}

/// After the recovery run: nothing lost or changed, tails cut, no temporary files.
///
/// With `cancelled_may_remain`, whole cancelled runs (the last segment ends with a CANCEL
/// frame) may be left; returns how many.
fn check_recovered(
    journal: &Path,
    before: &BTreeMap<String, Seen>,
    rec_ids: &[String],
    cancelled_may_remain: bool,
    st: &mut Stats,
) -> Result<usize, String> {
    let j = Journal::open(journal).map_err(|e| format!("opening the journal: {e}"))?;
    let runs = j.runs(JOB).map_err(|e| format!("listing runs: {e}"))?;
    let listed: BTreeSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let want: BTreeSet<&str> = before.keys().chain(rec_ids).map(String::as_str).collect();
    if listed != want {
        st.lost_records += before
            .iter()
            .filter(|(id, _)| !listed.contains(id.as_str()))
            .map(|(_, seen)| seen.records.len() as u64)
            .sum::<u64>();
        return Err(format!(
            "listed runs {listed:?}, expected the runs from before the recovery plus the \
             recovery runs: {want:?}"
        ));
    }
    for info in &runs {
        let log = j
            .read_run(JOB, &info.id)
            .map_err(|e| format!("reading run {}: {e}", info.id))?;
        if !info.problems.is_empty() {
            return Err(format!(
                "run {}: the reader reports problems: {:#?}",
                info.id, info.problems
            ));
        }
        if rec_ids.contains(&info.id) {
            let msgs: Vec<&str> = log.records.iter().map(|r| r.message.as_str()).collect();
            if info.status != RunStatus::Ok || msgs != [RECOVERY_MESSAGE] {
                return Err(format!(
                    "the recovery run is {} with records {msgs:?}",
                    info.status
                ));
            }
        } else {
            let old = &before[&info.id];
            if info.status != old.info.status || log.records != old.records {
                let kept = old
                    .records
                    .iter()
                    .zip(&log.records)
                    .take_while(|(a, b)| a == b)
                    .count();
                st.lost_records += (old.records.len() - kept) as u64;
                return Err(format!(
                    "run {} changed: it was {} with {} records, now {} with {}",
                    info.id,
                    old.info.status,
                    old.records.len(),
                    info.status,
                    log.records.len()
                ));
            }
        }
        let n = info.segments.len();
        for (i, path) in info.segments.iter().enumerate() {
            let scan = scan_file(path).map_err(|e| format!("scanning {}: {e}", path.display()))?;
            let len = fs::metadata(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            let mode = fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777);
            if mode != 0o600 {
                return Err(format!("{} has mode {mode:o}, not 600", path.display()));
            }
            if i + 1 == n {
                if scan.end != SegmentEnd::Clean || scan.valid_len != len {
                    return Err(format!(
                        "run {} ({}): its last segment {} was not cut to its last valid frame: \
                         {:?}, valid length {}, file length {len}",
                        info.id,
                        info.status,
                        path.display(),
                        scan.end,
                        scan.valid_len
                    ));
                }
            } else {
                match scan.end {
                    SegmentEnd::Clean => {}
                    SegmentEnd::ZeroTail { .. } => st.zero_tail_after_recovery += 1,
                    ref e => {
                        return Err(format!(
                            "run {}: segment {i} ({}) ends with {e:?}",
                            info.id,
                            path.display()
                        ))
                    }
                }
            }
        }
    }
    // Nothing else is left: no `.tmp-` file, no segment of a cancelled or deleted run.
    let segments: BTreeSet<&Path> = runs
        .iter()
        .flat_map(|r| r.segments.iter().map(PathBuf::as_path))
        .collect();
    let stray: Vec<PathBuf> = job_files(journal)?
        .into_iter()
        .filter(|p| !segments.contains(p.as_path()))
        .collect();
    let mut cancelled = BTreeSet::new();
    if cancelled_may_remain {
        for p in &stray {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let Some((id, _)) = name.as_deref().and_then(parse_segment_name) else {
                continue;
            };
            if ends_with_cancel(&stray, id) {
                cancelled.insert(id.to_owned());
            }
        }
    }
    let stray: Vec<&PathBuf> = stray
        .iter()
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            !name
                .as_deref()
                .and_then(parse_segment_name)
                .is_some_and(|(id, _)| cancelled.contains(id))
        })
        .collect();
    if !stray.is_empty() {
        let tmp = stray
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(TMP_PREFIX))
            })
            .count();
        return Err(format!(
            "files that belong to no listed run are left ({tmp} of them `{TMP_PREFIX}` files): \
             {stray:?}"
        ));
    }
    Ok(cancelled.len())
}

/// Is `id` a whole run among `files` (segments 0..=n, no gap) whose last segment ends with a
/// CANCEL frame?
fn ends_with_cancel(files: &[PathBuf], id: &str) -> bool {
    let mut segs: Vec<(u32, &PathBuf)> = files
        .iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let (i, seq) = parse_segment_name(name)?;
            (i == id).then_some((seq, p))
        })
        .collect();
    segs.sort();
    if segs
        .iter()
        .enumerate()
        .any(|(i, (seq, _))| *seq as usize != i)
    {
        return false;
    }
    let Some((_, last)) = segs.last() else {
        return false;
    };
    scan_file(last).is_ok_and(|s| {
        s.end == SegmentEnd::Clean
            && matches!(
                s.frames.last().map(|f| &f.frame),
                Some(Ok(Frame::End(End {
                    outcome: Outcome::Cancelled,
                    ..
                })))
            )
    })
}

/// Set the modification time of every `.tmp-` file in the journal two minutes back; returns
/// how many there are.
fn age_tmp_files(journal: &Path) -> Result<usize, String> {
    let then = std::time::SystemTime::now() - Duration::from_secs(120);
    let mut n = 0;
    // Every file of the dead child: `.tmp-` files, and the rest of a run whose deletion the
    // kill interrupted, are only cleaned up once a minute old.
    for p in job_files(journal)? {
        fs::File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(then))
            .map_err(|e| format!("ageing {}: {e}", p.display()))?;
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(TMP_PREFIX))
        {
            n += 1;
        }
    }
    Ok(n)
}

/// Every file in the journal's job directories (which must be 0700).
fn job_files(journal: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let jobs = journal.join(runlog::journal::layout::JOBS_DIR);
    let rd = match fs::read_dir(&jobs) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("{}: {e}", jobs.display())),
    };
    for job in rd.flatten() {
        let mode = job
            .metadata()
            .map_err(|e| format!("{}: {e}", job.path().display()))?
            .permissions()
            .mode();
        if mode & 0o777 != 0o700 {
            return Err(format!(
                "job directory {} has mode {:o}, not 700",
                job.path().display(),
                mode & 0o777
            ));
        }
        let files =
            fs::read_dir(job.path()).map_err(|e| format!("{}: {e}", job.path().display()))?;
        out.extend(files.flatten().map(|f| f.path()));
    }
    Ok(out)
}
