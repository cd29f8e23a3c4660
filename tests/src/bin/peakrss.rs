//! `peakrss OUT CMD [ARGS...]`: run a command (its stdin, stdout and stderr inherited), write
//! its peak resident memory in bytes to the file `OUT`, and exit with its exit code (128 + the
//! signal that killed it).
//!
//! Why a process of its own: the `ru_maxrss` that `wait4` reports for a child also counts the
//! memory of the process it was started from, before it exec'd (Linux keeps that high-water
//! mark across `exec`, and `posix_spawn` starts the child in its parent's memory). Started
//! from a big test process, a small command would seem as big as the test; started from this
//! small one, it is measured alone.

use std::os::unix::process::ExitStatusExt;
use std::process::{exit, Command, ExitStatus};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, cmd, rest @ ..] = args.as_slice() else {
        eprintln!("usage: peakrss OUT CMD [ARGS...]");
        exit(2)
    };
    let child = Command::new(cmd).args(rest).spawn().unwrap_or_else(|e| {
        eprintln!("peakrss: cannot run {cmd}: {e}");
        exit(2)
    });
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: the pid is our own child, reaped here (never by `Child::wait`); both
        // pointers are to live locals.
        let r = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
        if r > 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            eprintln!("peakrss: wait4: {e}");
            exit(2)
        }
    }
    // ru_maxrss is in KiB on Linux.
    if let Err(e) = std::fs::write(out, format!("{}\n", usage.ru_maxrss as u64 * 1024)) {
        eprintln!("peakrss: cannot write {out}: {e}");
        exit(2)
    }
    let status = ExitStatus::from_raw(status);
    exit(
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
    )
}
