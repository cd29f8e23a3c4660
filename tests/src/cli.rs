//! Helpers for the tests that drive the `runlog` binary (`tests/tests/cli*.rs`).

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Once;

use runlog::RunLogger;

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Out {
    /// Exit status.
    pub code: i32,
    /// Its stdout, lossily as text.
    pub stdout: String,
    /// Its stderr, lossily as text.
    pub stderr: String,
}

/// The `runlog` binary, checked to be built and fresh (it links the library and the
/// shipper's schema module).
pub fn runlog_bin() -> PathBuf {
    crate::workspace_binary(
        "runlog",
        &["runlog/src", "runlog-cli/src", "runlog-shipper/src"],
    )
}

/// A command for the binary that never sees the user's config or environment (`RUNLOG_*`,
/// `NO_COLOR`), with stdin from /dev/null, and times in UTC (`TZ=UTC`) whatever the zone of
/// the machine: a test that wants local time sets `TZ` again.
pub fn runlog_cmd() -> Command {
    let mut c = Command::new(runlog_bin());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("RUNLOG_") || k == "NO_COLOR" {
            c.env_remove(k);
        }
    }
    c.env("TZ", "UTC");
    c.stdin(Stdio::null());
    c
}

/// Run a command to the end; what it printed and its exit status.
pub fn output(c: &mut Command) -> Out {
    let o = c.output().expect("run the runlog binary");
    Out {
        code: o.status.code().expect("runlog was killed by a signal"),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `runlog --config CONFIG --source redis ARGS...`, checked to succeed; its stdout.
pub fn read_redis(config: &Path, args: &[&str]) -> String {
    let o = output(
        runlog_cmd()
            .arg("--config")
            .arg(config)
            .args(["--source", "redis"])
            .args(args),
    );
    assert_eq!(o.code, 0, "runlog {args:?} failed: {}", o.stderr);
    o.stdout
}

/// Run `runlog PRE... ARGS...` with stdout on a new pseudo-terminal (made by `script` from
/// util-linux); what it wrote there, with the terminal's `\r\n` turned back into `\n`, and
/// its stderr (kept in `scratch`, a directory of the test's).
pub fn on_a_terminal(scratch: &Path, pre: &[&OsStr], args: &[&str], no_color: bool) -> Out {
    fn quote(s: &OsStr) -> String {
        format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
    }
    let err = scratch.join("terminal.stderr");
    let mut line = vec![quote(runlog_bin().as_os_str())];
    line.extend(pre.iter().map(|a| quote(a)));
    line.extend(args.iter().map(|a| quote(OsStr::new(a))));
    let shell = format!("{} 2>{}", line.join(" "), quote(err.as_os_str()));
    // script: -q quiet, -e the command's exit status, -f flush, -c the command; no log file.
    let o = Command::new("script")
        .args(["-qefc", &shell, "/dev/null"])
        // Nothing from this environment (RUNLOG_*, NO_COLOR) but what the test sets.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("TZ", "UTC")
        .envs(no_color.then_some(("NO_COLOR", "1")))
        .stdin(Stdio::null())
        .output()
        .expect("run `script` (util-linux) to give runlog a terminal: install util-linux");
    Out {
        code: o.status.code().expect("script was killed by a signal"),
        stdout: String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n"),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// A logger writing to `dir`. The first one is installed as the process's `log` logger; runs
/// of every `RunLogger` capture from then on.
pub fn logger(dir: &Path) -> RunLogger {
    static INSTALL: Once = Once::new();
    let rl = RunLogger::builder()
        .journal_dir(dir)
        .max_logs(1000)
        .no_config_file()
        .build()
        .expect("build a RunLogger");
    assert_eq!(
        rl.journal_dir(),
        dir,
        "RUNLOG_JOURNAL_DIR is set and overrides the tests' journal dir: unset it"
    );
    INSTALL.call_once(|| {
        let _ = rl.install();
    });
    rl
}

/// The lines of `r` (a child's stdout, say), sent to the returned channel as they come by a
/// thread that ends at EOF or when the receiver is gone.
pub fn line_channel(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}
