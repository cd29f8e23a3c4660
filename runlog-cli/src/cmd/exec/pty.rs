//! `runlog exec --pty`: a pseudo-terminal as the command's stdout and stderr.
//!
//! Both streams go to the one terminal, so their lines reach runlog in exactly the order the
//! command wrote them, and the C library (and Python, and most runtimes) line-buffer output
//! to a terminal instead of holding it in a block. stdin stays runlog's: the command reads
//! the same input, the terminal included, and no raw mode is needed that a killed runlog
//! would leave behind. The command does not get the pseudo-terminal as its controlling
//! terminal (it stays in runlog's session), so Ctrl-C and job control work as without it.
//!
//! Output processing is off on the terminal (no `\n` turned into `\r\n`), so the output passes
//! through byte for byte. Its size is that of the terminal runlog runs in, followed when it
//! changes; with none it stays 0x0, which programs read as "unknown".

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::pty::OpenptFlags;
use rustix::termios::{OptionalActions, OutputModes, Winsize};

/// The two sides of a pseudo-terminal.
pub(super) struct Pty {
    /// runlog's side: what the command writes is read here.
    pub(super) master: OwnedFd,
    /// The command's side, its stdout and stderr.
    pub(super) slave: OwnedFd,
}

impl Pty {
    /// Open one, set up for the command.
    pub(super) fn open() -> io::Result<Pty> {
        let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
        let master = rustix::pty::openpt(flags)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
        let mut t = rustix::termios::tcgetattr(&slave)?;
        t.output_modes.remove(OutputModes::OPOST);
        rustix::termios::tcsetattr(&slave, OptionalActions::Now, &t)?;
        follow_size(&master);
        Ok(Pty { master, slave })
    }
}

/// Give the pseudo-terminal of `master` the size of runlog's terminal, if it has one.
pub(super) fn follow_size(master: impl AsFd) {
    if let Some(size) = outer_size() {
        let _ = rustix::termios::tcsetwinsize(master, size);
    }
}

/// The size of the terminal runlog writes to (or reads from).
fn outer_size() -> Option<Winsize> {
    let (out, err, inp) = (io::stdout(), io::stderr(), io::stdin());
    let size = [out.as_fd(), err.as_fd(), inp.as_fd()]
        .into_iter()
        .filter(|fd| rustix::termios::isatty(fd))
        .find_map(|fd| rustix::termios::tcgetwinsize(fd).ok());
    size
}
