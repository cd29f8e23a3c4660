//! The supervisor between `runlog exec` and its command, so that the command and every process
//! it started die with runlog, even when runlog is killed by SIGKILL.
//!
//! Why a process of its own: `PR_SET_PDEATHSIG` reaches the direct child only, not the
//! processes a shell pipeline or a script starts, and the command cannot get a process group
//! of its own without taking the terminal away from runlog's group (an interactive command
//! must keep reading the terminal and get Ctrl-C), while a process group of runlog's caller is
//! not runlog's to kill. Someone alive has to do the killing, and runlog cannot when it is
//! killed itself.
//!
//! So runlog starts itself again (`/proc/self/exe`, with `argv[0]` = [`ARG0`]) as the
//! supervisor, which
//! - becomes a child subreaper, so that every process the command starts stays its
//!   descendant, even orphaned (a daemon's double fork included);
//! - starts the command in runlog's process group, session and terminal, so Ctrl-C, job
//!   control and reading the terminal work as if runlog ran it itself, and closes its own
//!   copies of the command's stdin, stdout and stderr;
//! - tells runlog the command's pid and, once it reaped it, its wait status, and forwards the
//!   signals runlog asks it to (never to a reaped pid);
//! - when its socket to runlog ends without runlog having said it is done (runlog died, by
//!   whatever signal), sends SIGTERM (and SIGCONT) to every descendant and SIGKILL, after
//!   [`GRACE`], to those still there; then it exits.
//!
//! When runlog ends normally it says it is done: what the command left running in the
//! background is left alone, as a shell leaves it.
//!
//! The protocol on the socket: runlog sends single bytes, [`DONE`] or the number of a signal
//! to forward; the supervisor sends lines, `started PID`, `failed ERRNO` or `error TEXT` (the
//! command could not be started), `status RAW` (the command's wait status) and `late SIG` (a
//! signal to forward came after the command was reaped).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, Signal, WaitOptions};

/// `argv[0]` of the supervisor: how `main` tells it from a `runlog` a user started, and what
/// `ps` shows.
pub(crate) const ARG0: &str = "runlog: exec supervisor";

/// The byte runlog sends when it ends normally: exit, leave the descendants alone.
pub(super) const DONE: u8 = 0;

/// How long the descendants have between SIGTERM and SIGKILL when runlog died.
const GRACE: Duration = Duration::from_millis(500);

/// Run as the supervisor when started as one: `main` calls this first.
pub(crate) fn main_if_supervisor() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    if args.next()? != ARG0 {
        return None;
    }
    Some(ExitCode::from(supervise(args)))
}

/// The supervisor's life: start the command, report, forward, and kill what is left if
/// runlog dies. Its exit status is only seen by runlog, which does not use it.
fn supervise(mut args: impl Iterator<Item = OsString>) -> u8 {
    let fd = args
        .next()
        .and_then(|s| s.to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| fd > 2);
    let Some(sock) = fd.and_then(inherited_socket) else {
        let _ = writeln!(
            io::stderr(),
            "runlog: this is the supervisor of `runlog exec`, which starts it itself"
        );
        return 2;
    };
    let Some(program) = args.next() else {
        let _ = (&sock).write_all(b"error no command given\n");
        return 2;
    };
    let rest: Vec<OsString> = args.collect();
    match Supervisor::start(&sock, &program, &rest) {
        Ok(s) => s.run(&sock),
        Err(msg) => {
            let _ = (&sock).write_all(msg.as_bytes());
            1
        }
    }
}

/// The socket runlog passed as descriptor `fd`, made close-on-exec so the command does not
/// inherit it; `None` if `fd` is not an open socket.
fn inherited_socket(fd: RawFd) -> Option<UnixStream> {
    // SAFETY: only a check that `fd` is open, through a borrow that ends here; a closed or
    // invalid descriptor makes fcntl fail with EBADF.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(borrowed).ok()?;
    let st = rustix::fs::fstat(borrowed).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
        return None;
    }
    // SAFETY: `fd` is open (checked above) and a socket; runlog passed it to this process for
    // the supervisor alone (argv[0] is ARG0, which only runlog sets), and nothing else here
    // owns or closes it.
    let sock = unsafe { UnixStream::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&sock, rustix::io::FdFlags::CLOEXEC).ok()?;
    Some(sock)
}

/// A started command, as the supervisor watches it.
struct Supervisor {
    /// The command's pid; `None` once it is reaped.
    command: Option<Pid>,
    /// Becomes readable when a child changed state (the SIGCHLD self-pipe).
    sigchld: UnixStream,
    /// Flags of the signals caught only to survive them (nothing reads them).
    _caught: Arc<AtomicBool>,
}

impl Supervisor {
    /// Become a subreaper, catch the signals, start the command and tell runlog; the message
    /// for runlog when the command could not be started.
    fn start(sock: &UnixStream, program: &OsString, args: &[OsString]) -> Result<Self, String> {
        let me = rustix::process::getpid();
        rustix::process::set_child_subreaper(Some(me))
            .map_err(|e| format!("error cannot become a child subreaper: {e}\n"))?;
        // The terminal sends its signals to the whole foreground process group: the command
        // gets them itself, and the supervisor must survive them. Caught (not ignored), they
        // are back to their default in the command after exec; those runlog was started
        // with ignored (`nohup`) stay ignored, in the command too.
        let caught = Arc::new(AtomicBool::new(false));
        for sig in super::FORWARDED {
            if !super::ignored(sig) {
                signal_hook::flag::register(sig, caught.clone())
                    .map_err(|e| format!("error cannot catch signal {sig}: {e}\n"))?;
            }
        }
        let (sigchld, chld_w) =
            UnixStream::pair().map_err(|e| format!("error cannot create a socket: {e}\n"))?;
        for s in [&sigchld, &chld_w] {
            s.set_nonblocking(true)
                .map_err(|e| format!("error cannot set up a socket: {e}\n"))?;
        }
        signal_hook::low_level::pipe::register(libc::SIGCHLD, chld_w)
            .map_err(|e| format!("error cannot catch SIGCHLD: {e}\n"))?;

        let mut cmd = Command::new(program);
        cmd.args(args);
        // SAFETY: only async-signal-safe system calls between fork and exec. Should the
        // supervisor itself be killed, the command dies too rather than run on unwatched.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                if rustix::process::getppid() != Some(me) {
                    return Err(io::Error::other("the supervisor died"));
                }
                Ok(())
            });
        }
        let spawned = cmd.spawn();
        // The command has its copies now: the output's end is when it and its children
        // close theirs.
        release_stdio();
        let child = spawned.map_err(|e| match e.raw_os_error() {
            Some(n) => format!("failed {n}\n"),
            None => format!("error {}\n", e.to_string().replace('\n', " ")),
        })?;
        let pid = Pid::from_child(&child);
        // Reaped below with waitpid, as every other descendant is; dropping a `Child` neither
        // waits nor kills.
        drop(child);
        let _ = (&*sock).write_all(format!("started {}\n", pid.as_raw_nonzero()).as_bytes());
        Ok(Supervisor {
            command: Some(pid),
            sigchld,
            _caught: caught,
        })
    }

    /// Watch until runlog is done or gone.
    fn run(mut self, sock: &UnixStream) -> u8 {
        let mut buf = [0u8; 64];
        loop {
            let (from_runlog, child_changed) = {
                let mut fds = [
                    PollFd::new(sock, PollFlags::IN),
                    PollFd::new(&self.sigchld, PollFlags::IN),
                ];
                match rustix::event::poll(&mut fds, None) {
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => {
                        kill_descendants();
                        return 1;
                    }
                }
                (!fds[0].revents().is_empty(), !fds[1].revents().is_empty())
            };
            if child_changed {
                while matches!((&self.sigchld).read(&mut buf), Ok(n) if n > 0) {}
                self.reap(sock);
            }
            if !from_runlog {
                continue;
            }
            let n = match (&*sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                // runlog is gone without saying it is done: it died.
                kill_descendants();
                return 0;
            }
            for &b in &buf[..n] {
                if b == DONE {
                    return 0;
                }
                self.forward(sock, b);
            }
        }
    }

    /// Reap every child that ended (orphans the subreaper inherited too); report the
    /// command's status when it is among them.
    fn reap(&mut self, sock: &UnixStream) {
        while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
            if Some(pid) == self.command {
                self.command = None;
                let _ = (&*sock).write_all(format!("status {}\n", status.as_raw()).as_bytes());
            }
        }
    }

    /// Forward a signal runlog received to the command, unless it is reaped already.
    fn forward(&self, sock: &UnixStream, sig: u8) {
        let signal = Signal::from_named_raw(i32::from(sig));
        match (self.command, signal) {
            (Some(pid), Some(s)) => {
                // Not reaped yet (reaping is on this thread), so `pid` is still the command.
                let _ = rustix::process::kill_process(pid, s);
            }
            (None, _) => {
                let _ = (&*sock).write_all(format!("late {sig}\n").as_bytes());
            }
            (Some(_), None) => {}
        }
    }
}

/// Point the supervisor's stdin, stdout and stderr at /dev/null, so that it holds none of the
/// command's streams open.
fn release_stdio() {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let null = OwnedFd::from(null);
    let _ = rustix::stdio::dup2_stdin(null.as_fd());
    let _ = rustix::stdio::dup2_stdout(null.as_fd());
    let _ = rustix::stdio::dup2_stderr(null.as_fd());
}

/// Terminate every descendant: SIGTERM and SIGCONT (a stopped process gets its SIGTERM), then,
/// after [`GRACE`], SIGKILL to those still there, again until none is left. Processes the
/// command orphaned are children of this subreaper, so none escapes by forking.
fn kill_descendants() {
    let me = rustix::process::getpid();
    let start = Instant::now();
    for pid in descendants(me) {
        let _ = rustix::process::kill_process(pid, Signal::TERM);
        let _ = rustix::process::kill_process(pid, Signal::CONT);
    }
    loop {
        reap_all();
        let left = descendants(me);
        if left.is_empty() {
            return;
        }
        if start.elapsed() >= GRACE {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // A process forking as fast as it can is still caught: its children are this process's
    // once it is killed. Bounded, as everything here.
    for _ in 0..1000 {
        let left = descendants(me);
        if left.is_empty() {
            return;
        }
        for pid in left {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        std::thread::sleep(Duration::from_millis(1));
        reap_all();
    }
}

/// Reap every child that has ended.
fn reap_all() {
    while let Ok(Some(_)) = rustix::process::wait(WaitOptions::NOHANG) {}
}

/// The live (not zombie) descendants of `root`, from /proc.
fn descendants(root: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, ppid)) = parse_stat(&stat) {
            if state != 'Z' {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root.as_raw_nonzero().get()];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|&&(_, pp)| pp == parent)
                .map(|&(p, _)| p),
        );
        i += 1;
    }
    found
        .into_iter()
        .skip(1)
        .filter_map(Pid::from_raw)
        .collect()
}

/// The state and parent pid of a `/proc/PID/stat` line: `PID (COMM) STATE PPID ...`, where
/// COMM may hold spaces and parentheses (the last `)` ends it).
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_with_strange_command_names() {
        assert_eq!(parse_stat("42 (sleep) S 7 42 42 0 -1"), Some(('S', 7)));
        assert_eq!(parse_stat("42 (a) b (c)) Z 1 0 0"), Some(('Z', 1)));
        assert_eq!(parse_stat("42 (cut"), None);
    }

    #[test]
    fn the_supervisor_finds_its_own_descendants() {
        let mut c = Command::new("sleep").arg("5").spawn().unwrap();
        let found = descendants(rustix::process::getpid());
        let _ = c.kill();
        let _ = c.wait();
        assert!(
            found
                .iter()
                .any(|p| p.as_raw_nonzero().get() as u32 == c.id()),
            "{found:?}"
        );
    }
}
