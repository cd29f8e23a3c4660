//! What the process torture scenarios (`tests/tests/torture_proc.rs`) and their job process
//! (`src/bin/prockid.rs`) agree on: the jobs, which runs fail, and exactly which records each
//! run holds.

/// The jobs the concurrent processes write runs of.
pub const JOBS: [&str; 5] = [
    "conc/alpha",
    "conc {beta}",
    "conc gamma ü",
    "conc-delta",
    "conc epsilon",
];

/// The job of run `run` of thread `thread` of process `proc_`.
pub fn job_of(proc_: u64, thread: u64, run: u64) -> &'static str {
    JOBS[((proc_ * 7 + thread * 3 + run) % JOBS.len() as u64) as usize]
}

/// Does this run end `failed` (when the process is told to fail some)?
pub fn fails(proc_: u64, thread: u64, run: u64) -> bool {
    (proc_ + thread + run) % 5 == 2
}

/// The message of record `seq` of a run.
pub fn message(proc_: u64, thread: u64, run: u64, seq: u64) -> String {
    format!("p{proc_} t{thread} r{run} s{seq} some text to make the record look like a log line")
}

/// The value of the `who` label of a run.
pub fn who(proc_: u64, thread: u64, run: u64) -> String {
    format!("p{proc_}t{thread}r{run}")
}

/// `prockid` arguments: `JOURNAL PROC THREADS RUNS RECORDS MAX_LOGS MAX_FAILED_LOGS FAILS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcArgs {
    /// Journal directory.
    pub journal: std::path::PathBuf,
    /// Process number.
    pub proc_: u64,
    /// Threads, each starting its own runs.
    pub threads: u64,
    /// Runs per thread.
    pub runs: u64,
    /// Records per run.
    pub records: u64,
    /// `max-logs`.
    pub max_logs: u64,
    /// `max-failed-logs`.
    pub max_failed_logs: u64,
    /// Whether the runs [`fails`] picks fail.
    pub fails: bool,
}

impl ProcArgs {
    /// The arguments after the program name.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            self.journal.display().to_string(),
            self.proc_.to_string(),
            self.threads.to_string(),
            self.runs.to_string(),
            self.records.to_string(),
            self.max_logs.to_string(),
            self.max_failed_logs.to_string(),
            u8::from(self.fails).to_string(),
        ]
    }

    /// Parse them.
    pub fn parse(a: &[String]) -> Result<ProcArgs, String> {
        let [j, p, t, r, n, ml, mf, f] = a else {
            return Err("usage: prockid JOURNAL PROC THREADS RUNS RECORDS MAX_LOGS \
                        MAX_FAILED_LOGS FAILS"
                .into());
        };
        let num = |s: &String| s.parse::<u64>().map_err(|_| format!("bad number {s:?}"));
        Ok(ProcArgs {
            journal: j.into(),
            proc_: num(p)?,
            threads: num(t)?,
            runs: num(r)?,
            records: num(n)?,
            max_logs: num(ml)?,
            max_failed_logs: num(mf)?,
            fails: num(f)? != 0,
        })
    }
}

/// The line `prockid` writes when a run ended: `run <id> <status> <thread> <run>`.
pub fn run_line(id: &str, status: &str, thread: u64, run: u64) -> String {
    format!("run {id} {status} {thread} {run}\n")
}
