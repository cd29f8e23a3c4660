//! End-to-end tests of `runlog exec`: the real binary runs real commands as runs of a job in a
//! temporary journal, and the real binary reads the runs back (`list-runs`, `logs`, `why`).
//!
//! Every `runlog` gets `--config` of an empty file, `--journal-dir` of the test's own journal
//! and no `RUNLOG_*` variable from the environment, so nothing of the machine's setup (nor its
//! Redis) is touched. The binary must be built first (`cargo build --workspace`).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use runlog_e2e::cli::line_channel;
use serde_json::Value;
use tempfile::TempDir;

/// How long a test waits for anything before it fails (generous: CI machines are slow).
const PATIENCE: Duration = Duration::from_secs(20);

fn bin() -> PathBuf {
    runlog_e2e::workspace_binary("runlog", &["runlog/src", "runlog-cli/src"])
}

/// A `runlog` that sees none of the machine's configuration.
fn bare_runlog() -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RUNLOG_") {
            c.env_remove(k);
        }
    }
    c.env_remove("NO_COLOR");
    c
}

/// What a finished `runlog` produced.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Out {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

fn output(c: &mut Command) -> Out {
    let o = c.output().expect("run the runlog binary");
    Out {
        code: o
            .status
            .code()
            .unwrap_or_else(|| panic!("runlog itself was killed: {:?}", o.status)),
        stdout: o.stdout,
        stderr: o.stderr,
    }
}

/// A temporary journal, an empty config file, and `runlog` pointed at both.
struct Journal {
    tmp: TempDir,
}

impl Journal {
    fn new() -> Journal {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("empty.toml"), "").unwrap();
        Journal { tmp }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("journal")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `runlog --config EMPTY --journal-dir DIR`.
    fn runlog(&self) -> Command {
        let mut c = bare_runlog();
        c.arg("--config")
            .arg(self.path("empty.toml"))
            .arg("--journal-dir")
            .arg(self.dir());
        c
    }

    /// `runlog exec JOB OPTS... -- CMD...` with stdin from /dev/null, run to its end.
    fn exec(&self, job: &str, opts: &[&str], cmd: &[&str]) -> Out {
        output(
            self.runlog()
                .args(["exec", job])
                .args(opts)
                .arg("--")
                .args(cmd)
                .stdin(Stdio::null()),
        )
    }

    /// `runlog --source local ARGS...`, which must succeed quietly; its stdout.
    fn read(&self, args: &[&str]) -> String {
        let o = output(
            self.runlog()
                .args(["--source", "local"])
                .args(args)
                .stdin(Stdio::null()),
        );
        assert_eq!(o.code, 0, "runlog {args:?} failed: {o:?}");
        assert_eq!(o.stderr(), "", "runlog {args:?} warned");
        o.stdout()
    }

    /// The runs of a job, oldest first.
    fn runs(&self, job: &str) -> Vec<Value> {
        json_lines(&self.read(&["--json", "list-runs", job]))
    }

    /// The one run of a job.
    fn only_run(&self, job: &str) -> Value {
        let runs = self.runs(job);
        assert_eq!(runs.len(), 1, "one run of {job}: {runs:?}");
        runs.into_iter().next().unwrap()
    }

    /// The records of the last run of a job.
    fn records(&self, job: &str) -> Vec<Value> {
        json_lines(&self.read(&["--json", "logs", job, "last"]))
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn field<'a>(r: &'a Value, k: &str) -> &'a str {
    r[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {r}"))
}

/// The messages of the records with this target, in order.
fn messages(records: &[Value], target: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| field(r, "target") == target)
        .map(|r| field(r, "message").to_owned())
        .collect()
}

/// `(level, message)` of the record that says how the command ended: the last one.
fn outcome(records: &[Value]) -> (String, String) {
    let r = records.last().expect("records");
    assert_eq!(field(r, "target"), "runlog::exec", "the last record: {r}");
    (field(r, "level").to_owned(), field(r, "message").to_owned())
}

/// A `runlog exec` running in the background, its stdout lines arriving on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut c: Command) -> Running {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start runlog");
        let lines = line_channel(child.stdout.take().unwrap());
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0, "kill runlog");
    }

    /// Wait for this line on runlog's stdout.
    fn wait_for_line(&mut self, want: &str) {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(l) if l == want => return,
                Ok(l) => self.seen.push(l),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line {want:?} from the command within {PATIENCE:?}; it printed {:?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Wait for runlog to exit; its exit code and the rest of its stdout.
    fn wait(mut self) -> (i32, Vec<String>) {
        let (tx, rx) = mpsc::channel();
        let pid = self.pid();
        let mut child = self.child;
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(PATIENCE) {
            Ok(s) => s.expect("wait for runlog"),
            Err(_) => {
                // SAFETY: as in `signal`.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("runlog did not exit within {PATIENCE:?}");
            }
        };
        // Its stdout ends with it: the reader thread drops the sender.
        self.seen.extend(self.lines.iter());
        let code = status
            .code()
            .unwrap_or_else(|| panic!("runlog itself was killed: {status:?}"));
        (code, self.seen)
    }
}

#[test]
fn a_succeeding_command_records_stdout_as_info_and_stderr_as_warn_and_passes_both_through() {
    let j = Journal::new();
    let o = j.exec(
        "report",
        &["--label", "env=prod", "--label", "user=bar"],
        &[
            "sh",
            "-c",
            "echo out 1; echo err 1 >&2; echo out 2; echo err 2 >&2; echo; echo out 3",
        ],
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout(),
        "out 1\nout 2\n\nout 3\n",
        "stdout passed through"
    );
    assert_eq!(
        o.stderr(),
        "err 1\nerr 2\n",
        "stderr passed through, nothing else"
    );

    let run = j.only_run("report");
    assert_eq!(run["status"], "ok", "{run}");
    assert_eq!(run["labels"]["env"], "prod", "{run}");
    assert_eq!(run["labels"]["user"], "bar", "{run}");
    assert_eq!(run["dropped"], 0, "{run}");

    let recs = j.records("report");
    let first = &recs[0];
    assert_eq!(
        (field(first, "level"), field(first, "target")),
        ("INFO", "runlog::exec"),
        "the command line comes first: {first}"
    );
    assert!(
        field(first, "message").contains(
            "sh -c 'echo out 1; echo err 1 >&2; echo out 2; echo err 2 >&2; echo; echo out 3'"
        ),
        "{first}"
    );
    assert_eq!(messages(&recs, "stdout"), ["out 1", "out 2", "", "out 3"]);
    assert_eq!(messages(&recs, "stderr"), ["err 1", "err 2"]);
    for r in &recs {
        match field(r, "target") {
            "stdout" => assert_eq!(r["level"], "INFO", "{r}"),
            "stderr" => assert_eq!(r["level"], "WARN", "{r}"),
            _ => {}
        }
        assert!(
            r["file"].is_null(),
            "no source location of runlog's own: {r}"
        );
    }
    assert_eq!(
        outcome(&recs),
        ("INFO".into(), "command exited with status 0".into())
    );
    assert_eq!(run["records"], recs.len(), "{run}");
}

#[test]
fn a_failing_command_fails_the_run_and_passes_its_exit_code_on() {
    let j = Journal::new();
    let o = j.exec("nightly", &[], &["sh", "-c", "echo x; exit 3"]);
    assert_eq!(o.code, 3, "{o:?}");
    assert_eq!(o.stdout(), "x\n");

    let run = j.only_run("nightly");
    assert_eq!(run["status"], "failed", "{run}");
    let recs = j.records("nightly");
    assert_eq!(messages(&recs, "stdout"), ["x"]);
    assert_eq!(
        outcome(&recs),
        ("ERROR".into(), "command exited with status 3".into())
    );
    assert_eq!(recs.last().unwrap()["fields"]["exit_status"], "3");

    let why = j.read(&["why", "nightly"]);
    assert!(why.contains("status:   failed"), "{why}");
    assert!(
        why.contains("error:    command exited with status 3"),
        "{why}"
    );
    assert!(why.contains("stdout: x"), "the records before it: {why}");
}

#[test]
fn a_command_killed_by_a_signal_exits_128_plus_the_signal_and_fails_the_run() {
    let j = Journal::new();
    let o = j.exec("killed", &[], &["sh", "-c", "echo before; kill -9 $$"]);
    assert_eq!(o.code, 128 + 9, "{o:?}");
    assert_eq!(j.only_run("killed")["status"], "failed");
    let recs = j.records("killed");
    assert_eq!(messages(&recs, "stdout"), ["before"]);
    let (level, msg) = outcome(&recs);
    assert_eq!(level, "ERROR");
    assert_eq!(msg, "command was killed by signal 9 (SIGKILL)");
    let why = j.read(&["why", "killed"]);
    assert!(why.contains("SIGKILL"), "{why}");
}

#[test]
fn sigterm_sent_to_runlog_is_forwarded_to_the_command_whose_status_runlog_passes_on() {
    let j = Journal::new();
    let mut c = j.runlog();
    c.args(["exec", "termed", "--", "sh", "-c"])
        .arg("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done");
    let mut r = Running::start(c);
    r.wait_for_line("ready");
    r.signal(libc::SIGTERM);
    let (code, rest) = r.wait();
    assert_eq!(code, 7, "the command's status after its TERM trap");
    assert_eq!(rest, ["got-term"]);

    assert_eq!(j.only_run("termed")["status"], "failed");
    let recs = j.records("termed");
    assert_eq!(messages(&recs, "stdout"), ["ready", "got-term"]);
    let notes = messages(&recs, "runlog::exec");
    assert!(
        notes
            .iter()
            .any(|m| m.contains("received SIGTERM") && m.contains("forwarded it to the command")),
        "the forwarding is recorded: {notes:?}"
    );
    assert_eq!(
        outcome(&recs),
        ("ERROR".into(), "command exited with status 7".into())
    );
}

#[test]
fn a_signal_runlog_was_started_ignoring_stays_ignored_by_runlog_and_the_command() {
    // As under `nohup`: a hangup must neither stop runlog nor reach the command.
    let j = Journal::new();
    let mut c = j.runlog();
    c.args(["exec", "nohup", "--", "sh", "-c"])
        .arg("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done");
    // SAFETY: only an async-signal-safe call between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut r = Running::start(c);
    r.wait_for_line("ready");
    r.signal(libc::SIGHUP);
    // Pending together, SIGHUP (1) is delivered before SIGTERM (15): had the hangup been
    // forwarded, the command would have died of it before its TERM trap could print.
    r.signal(libc::SIGTERM);
    let (code, rest) = r.wait();
    assert_eq!(code, 7, "the TERM trap ran: the hangup changed nothing");
    assert_eq!(rest, ["got-term"]);
    let notes = messages(&j.records("nohup"), "runlog::exec");
    assert!(!notes.iter().any(|m| m.contains("SIGHUP")), "{notes:?}");
}

#[test]
fn the_command_reads_runlogs_stdin() {
    let j = Journal::new();
    let mut c = j.runlog();
    c.args(["exec", "stdin", "--", "sh", "-c"])
        .arg("read a; read b; echo \"got $a $b\"");
    let mut r = Running::start(c);
    let mut stdin = r.child.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\n").unwrap();
    drop(stdin);
    r.wait_for_line("got one two");
    let (code, _) = r.wait();
    assert_eq!(code, 0);
    assert_eq!(messages(&j.records("stdin"), "stdout"), ["got one two"]);
}

#[test]
fn a_command_that_is_not_found_exits_127_and_fails_the_run() {
    let j = Journal::new();
    let o = j.exec("missing", &[], &["runlog-test-no-such-command"]);
    assert_eq!(o.code, 127, "{o:?}");
    assert!(
        o.stderr()
            .starts_with("runlog: cannot run runlog-test-no-such-command: "),
        "{o:?}"
    );
    assert!(o.stderr().contains("PATH"), "names the likely cause: {o:?}");
    assert_eq!(j.only_run("missing")["status"], "failed");
    let recs = j.records("missing");
    let (level, msg) = outcome(&recs);
    assert_eq!(level, "ERROR");
    assert!(
        msg.starts_with("cannot run runlog-test-no-such-command: "),
        "{msg}"
    );
    let why = j.read(&["why", "missing"]);
    assert!(
        why.contains("cannot run runlog-test-no-such-command"),
        "{why}"
    );
}

#[test]
fn a_command_that_cannot_be_executed_exits_126_and_fails_the_run() {
    let j = Journal::new();
    let script = j.path("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = script.to_str().unwrap();
    let o = j.exec("noexec", &[], &[script]);
    assert_eq!(o.code, 126, "{o:?}");
    assert_eq!(o.stdout(), "", "it did not run");
    assert!(
        o.stderr()
            .starts_with(&format!("runlog: cannot run {script}: ")),
        "{o:?}"
    );
    assert!(o.stderr().contains("chmod +x"), "names the fix: {o:?}");
    assert_eq!(j.only_run("noexec")["status"], "failed");
    let (level, msg) = outcome(&j.records("noexec"));
    assert_eq!(level, "ERROR");
    assert!(msg.starts_with(&format!("cannot run {script}: ")), "{msg}");
}

#[test]
fn invalid_utf8_and_a_last_line_without_a_newline_are_kept() {
    let j = Journal::new();
    // printf's octal escapes: a byte 0xff that is no UTF-8; a \r\n line; no final newline.
    let o = j.exec(
        "bytes",
        &[],
        &["sh", "-c", r"printf 'caf\351 \377\nwindows\r\nlast'"],
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout, b"caf\xe9 \xff\nwindows\r\nlast",
        "passed through byte for byte"
    );
    let recs = j.records("bytes");
    assert_eq!(
        messages(&recs, "stdout"),
        ["caf\u{fffd} \u{fffd}", "windows", "last"]
    );
    assert_eq!(j.only_run("bytes")["status"], "ok");
}

#[test]
fn a_very_long_line_is_cut_in_its_record_but_passed_through_whole() {
    let j = Journal::new();
    let len = 3 << 20;
    let o = j.exec(
        "long",
        &[],
        &[
            "sh",
            "-c",
            &format!("head -c {len} /dev/zero | tr '\\0' a; echo; echo after"),
        ],
    );
    assert_eq!(o.code, 0, "{:?}", o.stderr());
    assert_eq!(o.stdout.len(), len + "\nafter\n".len());
    assert!(o.stdout.ends_with(b"a\nafter\n"));
    let recs = j.records("long");
    let lines: Vec<&Value> = recs.iter().filter(|r| r["target"] == "stdout").collect();
    assert_eq!(lines.len(), 2, "one record per line");
    let long = field(lines[0], "message");
    // Its head and tail around the library's marker of what was cut.
    let (head, cut, tail) =
        runlog::journal::payload::split_cut_message(long).expect("a cut marker");
    assert!(
        long.len() <= 1 << 20
            && long.len() > 1 << 19
            && cut > 0
            && (head.len() + tail.len()) as u64 + cut <= len as u64
            && head.bytes().chain(tail.bytes()).all(|b| b == b'a'),
        "cut to at most 1 MiB: {} bytes",
        long.len()
    );
    assert_eq!(lines[0]["truncated"], true);
    assert_eq!(field(lines[1], "message"), "after");
    assert_eq!(lines[1]["truncated"], false);
}

#[test]
fn a_journal_that_cannot_be_written_does_not_stop_the_command() {
    let j = Journal::new();
    std::fs::write(j.path("a-file"), "").unwrap();
    let o = output(
        bare_runlog()
            .arg("--config")
            .arg(j.path("empty.toml"))
            .arg("--journal-dir")
            .arg(j.path("a-file").join("journal"))
            .args([
                "exec",
                "unwritable",
                "--",
                "sh",
                "-c",
                "echo still ran; exit 4",
            ])
            .stdin(Stdio::null()),
    );
    assert_eq!(o.code, 4, "the command's status all the same: {o:?}");
    assert_eq!(o.stdout(), "still ran\n");
    assert!(
        o.stderr().contains("cannot write the journal"),
        "says why nothing is recorded: {o:?}"
    );
}

#[test]
fn a_broken_config_file_is_reported_and_the_command_runs_unrecorded() {
    let j = Journal::new();
    let bad = j.path("bad.toml");
    std::fs::write(&bad, "[runlog]\nmax-logz = 3\n").unwrap();
    let o = output(
        bare_runlog()
            .arg("--config")
            .arg(&bad)
            .arg("--journal-dir")
            .arg(j.dir())
            .args(["exec", "cfg", "--", "sh", "-c", "echo still ran; exit 5"])
            .stdin(Stdio::null()),
    );
    assert_eq!(o.code, 5, "{o:?}");
    assert_eq!(o.stdout(), "still ran\n");
    let err = o.stderr();
    assert!(
        err.starts_with("runlog: warning: ") && err.contains("max-logz"),
        "names the bad key: {err}"
    );
    assert!(err.contains("without recording"), "{err}");
    assert!(!j.dir().join("jobs").exists(), "nothing recorded");
}

// An empty job name was a failure of runlog itself (125); it is a usage error (2), as for
// every other subcommand.
#[test]
fn an_empty_job_name_is_a_usage_error_before_the_command_runs() {
    let j = Journal::new();
    let o = j.exec("", &[], &["sh", "-c", "echo ran"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert_eq!(o.stdout(), "", "the command did not run");
    assert!(o.stderr().contains("the job name is empty"), "{o:?}");
}

#[test]
fn journal_dir_on_the_command_line_wins_over_the_environment_which_the_command_keeps() {
    let j = Journal::new();
    let other = j.path("other");
    let o = output(
        j.runlog()
            .env("RUNLOG_JOURNAL_DIR", &other)
            .args([
                "exec",
                "envjob",
                "--",
                "sh",
                "-c",
                "echo \"$RUNLOG_JOURNAL_DIR\"",
            ])
            .stdin(Stdio::null()),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(
        o.stdout(),
        format!("{}\n", other.display()),
        "the command's environment is runlog's"
    );
    assert!(!other.exists(), "nothing written to the variable's journal");
    assert_eq!(j.only_run("envjob")["status"], "ok");
}

// With [runlog-redis] configured and no shipper running, a job kept all 15 of its runs with
// max-logs = 2 and nothing said so.
#[test]
fn unshipped_runs_are_kept_and_said_to_wait_for_the_shipper() {
    let j = Journal::new();
    let port = runlog_e2e::redis::free_port();
    let config = j.path("shipping.toml");
    std::fs::write(
        &config,
        format!(
            "[runlog]\nmax-logs = 2\njournal-dir = {:?}\n\n[runlog-redis]\nurl = \"redis://127.0.0.1:{port}\"\n",
            j.dir()
        ),
    )
    .unwrap();
    let runlog = || {
        let mut c = bare_runlog();
        c.arg("--config").arg(&config).stdin(Stdio::null());
        c
    };
    let bound = runlog::UNSHIPPED_WARN_AT;
    let runs = bound + 5;
    for n in 1..=runs {
        let o = output(runlog().args(["exec", "backlog", "--", "true"]));
        assert_eq!(o.code, 0, "{o:?}");
        // Runs beyond max-logs, all kept because none is shipped: n - 2.
        let told = o.stderr().contains("not shipped yet");
        assert_eq!(told, n.saturating_sub(2) > bound, "run {n}: {}", o.stderr());
        if told {
            assert!(
                o.stderr()
                    .contains(&format!("keeps {} runs beyond max-logs", n - 2))
                    && o.stderr()
                        .contains("is runlog-shipper running and keeping up?"),
                "{}",
                o.stderr()
            );
        }
    }
    // Never deleted unshipped, and the listings say how many wait.
    let o = output(runlog().args(["--source", "local", "list-runs", "backlog"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout().lines().count(), runs + 1, "{}", o.stdout());
    assert!(
        o.stderr()
            .contains(&format!("{runs} runs wait for runlog-shipper")),
        "{}",
        o.stderr()
    );
    let o = output(runlog().args(["--source", "local", "list-jobs"]));
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr()
            .contains(&format!("{runs} runs wait for runlog-shipper")),
        "{}",
        o.stderr()
    );
    // Without Redis configured nothing waits: no note.
    let o = output(
        bare_runlog()
            .arg("--config")
            .arg(j.path("empty.toml"))
            .arg("--journal-dir")
            .arg(j.dir())
            .args(["list-runs", "backlog"])
            .stdin(Stdio::null()),
    );
    assert_eq!((o.code, o.stderr()), (0, String::new()), "{o:?}");
}

/// A name and value no other process has in its environment: every process of a tree started
/// with it inherits it, so the tree can be found in /proc after its root died.
fn tree_marker(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// The live processes (zombies are dead) whose environment holds `EXEC_TEST_TREE=marker`:
/// `(pid, command line)`.
fn tree_processes(marker: &str) -> Vec<(i32, String)> {
    let want = format!("EXEC_TEST_TREE={marker}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .unwrap_or("?");
        if state == "Z" {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        found.push((pid, cmdline.trim_end().to_owned()));
    }
    found
}

#[test]
fn killing_runlog_with_sigkill_kills_the_command_and_every_process_it_started() {
    // The bug: `runlog exec j -- sh -c 'sleep 41 | cat'` killed with SIGKILL left sh, sleep and
    // cat running, orphaned, while the run was listed crashed.
    let j = Journal::new();
    let marker = tree_marker("sigkill");
    // Durations no other process uses, to see the sleeps start: the pipeline's, and one in a
    // session of its own (a daemon, which no process group signal reaches).
    let sleep = format!("41.{}", std::process::id() % 1000);
    let daemon = format!("43.{}", std::process::id() % 1000);
    let mut c = j.runlog();
    c.env("EXEC_TEST_TREE", &marker)
        .args(["exec", "killed-runlog", "--", "sh", "-c"])
        .arg(format!(
            "(setsid sleep {daemon} &); echo ready; sleep {sleep} | cat"
        ));
    let mut r = Running::start(c);
    r.wait_for_line("ready");
    let started = std::time::Instant::now();
    loop {
        let running = tree_processes(&marker);
        let has = |cmd: &str| running.iter().any(|(_, c)| c == cmd);
        if has(&format!("sleep {sleep}")) && has(&format!("sleep {daemon}")) {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the pipeline and the daemon never started (setsid is in util-linux): {running:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    r.signal(libc::SIGKILL);
    let status = r.child.wait().expect("wait for runlog");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let killed = std::time::Instant::now();
    let mut left = tree_processes(&marker);
    while !left.is_empty() && killed.elapsed() < Duration::from_secs(1) {
        std::thread::sleep(Duration::from_millis(10));
        left = tree_processes(&marker);
    }
    for (pid, _) in &left {
        // SAFETY: kill has no memory-safety preconditions; these are this test's processes.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    assert!(
        left.is_empty(),
        "1 s after runlog was killed, processes it started still run: {left:?}"
    );
    assert_eq!(j.only_run("killed-runlog")["status"], "crashed");
}

#[test]
fn ctrl_c_on_a_terminal_reaches_the_command_which_keeps_reading_the_terminal() {
    // `script` gives runlog a terminal (a pseudo-terminal) whose input is this test's pipe:
    // a line typed there must reach the command, and so must Ctrl-C.
    let j = Journal::new();
    let q = |p: PathBuf| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    let line = format!(
        "{} --config {} --journal-dir {} exec interactive -- sh -c \
         'echo ready; read answer; echo \"got $answer\"; sleep 30'",
        q(bin()),
        q(j.path("empty.toml")),
        q(j.dir()),
    );
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &line, "/dev/null"]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RUNLOG_") {
            c.env_remove(k);
        }
    }
    let mut child = match c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!("cannot run `script` ({e}): install util-linux (Debian: bsdutils)"),
    };
    let lines = line_channel(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = Vec::new();
    let mut wait_for = |want: &str| loop {
        match lines.recv_timeout(PATIENCE) {
            Ok(l) if l.trim_end_matches('\r') == want => return,
            Ok(l) => seen.push(l),
            Err(_) => {
                let _ = Command::new("kill").arg(child.id().to_string()).status();
                panic!("no line {want:?} on the terminal within {PATIENCE:?}: {seen:?}");
            }
        }
    };
    wait_for("ready");
    stdin.write_all(b"hello\n").unwrap();
    wait_for("got hello");
    stdin.write_all(b"\x03").unwrap();
    let status = child.wait().expect("wait for script");
    drop(stdin);
    assert_eq!(
        status.code(),
        Some(130),
        "runlog passed on the command's death by SIGINT"
    );

    assert_eq!(j.only_run("interactive")["status"], "failed");
    let recs = j.records("interactive");
    assert_eq!(messages(&recs, "stdout"), ["ready", "got hello"]);
    assert_eq!(
        outcome(&recs),
        (
            "ERROR".into(),
            "command was killed by signal 2 (SIGINT)".into()
        )
    );
}

#[test]
fn with_pty_interleaved_stdout_and_stderr_are_recorded_in_the_order_written_on_a_terminal() {
    // The bug: stdout and stderr are two pipes read side by side, so their lines were
    // recorded in the order runlog read them, not the order the command wrote them.
    let j = Journal::new();
    let o = j.exec(
        "ordered",
        &["--pty"],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo \"out $i\"; echo \"err $i\" >&2; i=$((i+1)); done; \
             [ -t 1 ] && echo 'stdout is a terminal'; [ -t 2 ] && echo 'stderr is a terminal' >&2; \
             printf 'dos\\r\\n'; exit 3",
        ],
    );
    let mut want: Vec<String> = (0..300)
        .flat_map(|i| [format!("out {i}"), format!("err {i}")])
        .collect();
    want.push("stdout is a terminal".into());
    want.push("stderr is a terminal".into());
    assert_eq!(o.code, 3, "the command's exit status: {:?}", o.stderr());
    assert_eq!(o.stderr(), "", "both streams pass through to stdout");
    let mut passed = want.join("\n");
    passed.push_str("\ndos\r\n");
    assert_eq!(
        o.stdout(),
        passed,
        "passed through byte for byte, in order, no \\r added"
    );

    let recs = j.records("ordered");
    want.push("dos".into());
    assert_eq!(
        messages(&recs, "pty"),
        want,
        "recorded in the order written"
    );
    assert!(messages(&recs, "stdout").is_empty() && messages(&recs, "stderr").is_empty());
    for r in recs.iter().filter(|r| r["target"] == "pty") {
        assert_eq!(r["level"], "INFO", "{r}");
    }
    assert_eq!(j.only_run("ordered")["status"], "failed");
    assert_eq!(
        outcome(&recs),
        ("ERROR".into(), "command exited with status 3".into())
    );
}

#[test]
fn with_pty_a_python_command_line_buffers_and_is_recorded_in_order() {
    // Python buffers stdout in blocks when it is not a terminal: without --pty (and without
    // PYTHONUNBUFFERED=1) its stdout lines all come after its stderr lines.
    let script = "import sys\nfor i in range(50):\n    print('out', i)\n    print('err', i, file=sys.stderr)\n";
    let j = Journal::new();
    let o = j.exec("py", &["--pty"], &["python3", "-c", script]);
    assert_ne!(
        o.code,
        127,
        "python3 is needed for this test: install python3 ({})",
        o.stderr()
    );
    assert_eq!(o.code, 0, "{o:?}");
    let want: Vec<String> = (0..50)
        .flat_map(|i| [format!("out {i}"), format!("err {i}")])
        .collect();
    assert_eq!(messages(&j.records("py"), "pty"), want);
}
