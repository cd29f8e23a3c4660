//! `runlog exec JOB [--label k=v]... -- CMD ARGS...`: run any program as a run of a job.
//!
//! The model is `env`, `timeout` and `docker run`: the command gets runlog's stdin and
//! environment; its stdout and stderr pass through unchanged (byte for byte, flushed as they
//! arrive) and each line also becomes a record of the run, INFO for stdout (target `stdout`),
//! WARN for stderr (target `stderr`). The first record (target `runlog::exec`) is the command
//! line, the last its outcome; a nonzero exit or a death by signal fails the run with an ERROR
//! record that `runlog why` shows.
//!
//! Exit status: the command's; 128+N when it was killed by signal N; 127 when it is not found,
//! 126 when it cannot be executed, 125 when runlog fails before the command starts.
//!
//! Recording never stands between the user and the command: a broken config file or a
//! journal that cannot be written is reported on stderr and the command runs unrecorded (or
//! with its records counted as dropped), its exit status passed on all the same.
//!
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to runlog are forwarded to the command, and
//! runlog waits for it. Signals the terminal generates (Ctrl-C, Ctrl-\, hangup) already reach
//! the command, which shares runlog's process group, so they are not sent a second time.
//! Signals runlog was started with ignored (`nohup`) stay ignored, also by the command.
//!
//! The command is started by a supervisor, runlog itself started again ([`supervise`]): when
//! runlog dies, by SIGKILL too, the supervisor kills the command and every process it
//! started.
//!
//! Order: each stream's lines are recorded in order, but the two pipes are read side by side,
//! so lines written close together to stdout and stderr can be recorded the other way round,
//! and a command that buffers its stdout (C stdio and Python do when it is not a terminal)
//! has its stdout lines recorded when it flushes them. `--pty` ([`pty`]) gives the command a
//! terminal for both: one stream, line-buffered, recorded exactly in the order written.
//!
//! Like cron and a shell pipe, runlog reads the command's output until the end of it: a
//! process the command left behind holding its stdout or stderr keeps the run open. A signal
//! received after the command exited ends that wait.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use libc::c_int;
use log::{Level, LevelFilter};
use runlog::{Run, RunHandle, RunLogger};
use rustix::io::FdFlags;
use signal_hook::iterator::exfiltrator::WithRawSiginfo;
use signal_hook::iterator::{Handle, SignalsInfo};

use super::shell_quote;
use crate::args::ExecArgs;
use crate::{warn, Ctx, Error};

mod pty;
pub(crate) mod supervise;

/// runlog failed before the command started (as `env`, `timeout` and `docker run` say it).
const EXIT_RUNLOG_FAILED: u8 = 125;
/// The command was found but could not be executed.
const EXIT_CANNOT_EXECUTE: u8 = 126;
/// The command was not found.
const EXIT_NOT_FOUND: u8 = 127;

/// The most of one output line that is kept for its record. The library cuts any record to
/// its largest frame anyway (and flags it truncated); this bounds what a line without newlines
/// (a binary blob, a progress bar) can make runlog hold in memory. At exactly the frame
/// payload size, a line cut here never fits a frame whole, so its record is flagged truncated.
const LINE_CAP: usize = runlog::journal::frame::MAX_PAYLOAD;

/// How much is read from a pipe at once.
const READ_CHUNK: usize = 64 << 10;

/// The signals forwarded to the command.
const FORWARDED: [c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// The target of the records runlog itself writes about the command.
const TARGET: &str = "runlog::exec";

/// Run the command as a run of the job; its exit status.
pub(crate) fn run(ctx: &Ctx, a: &ExecArgs) -> Result<u8, Error> {
    // A bad job name is a mistake on the command line, seen the first time it is tried:
    // refused rather than run unrecorded.
    if a.job.is_empty() || a.job.len() > runlog::MAX_JOB_NAME {
        crate::note(&format!(
            "the job name must be 1 to {} bytes long, not {}",
            runlog::MAX_JOB_NAME,
            a.job.len()
        ));
        return Ok(EXIT_RUNLOG_FAILED);
    }
    let Some((program, args)) = a.command.split_first() else {
        crate::note("no command given: put it after `--`, as in `runlog exec JOB -- CMD ARGS...`");
        return Ok(EXIT_RUNLOG_FAILED);
    };
    let logger = match logger(ctx) {
        Ok(l) => Some(l),
        Err(e) => {
            warn(&format!(
                "{e}; running the command without recording it as a run of {}",
                shell_quote(&a.job)
            ));
            None
        }
    };
    let run = match &logger {
        Some(l) => match l.runlog(&a.job) {
            Ok(r) => Some(r),
            Err(e) => {
                crate::note(&e.to_string());
                return Ok(EXIT_RUNLOG_FAILED);
            }
        },
        None => None,
    };
    if let Some(r) = &run {
        for l in &a.labels {
            r.label(&l.key, &l.value);
        }
        if r.level() < LevelFilter::Info {
            r.set_level(LevelFilter::Info);
        }
    }
    let rec = Recorder(run.as_ref().map(Run::handle));
    let code = exec(&rec, program, args, a.pty);
    if code != 0 {
        rec.fail();
    }
    // The guard is dropped here, on the thread that started the run: the run commits.
    drop(run);
    Ok(code)
}

/// Build and install the logger, writing to the journal directory the other commands read:
/// `--journal-dir`, else the config file's and `RUNLOG_JOURNAL_DIR`'s (`--config` names the
/// file).
fn logger(ctx: &Ctx) -> Result<RunLogger, String> {
    let mut b = RunLogger::builder();
    if let Some(dir) = &ctx.journal_dir {
        b = b.force_journal_dir(dir);
    }
    if let Some(f) = &ctx.config {
        b = b.config_file(f);
    }
    let built = b.build();
    let rl = built.map_err(|e| e.to_string())?;
    rl.install()
        .map_err(|e| format!("cannot install the run logger: {e}"))?;
    Ok(rl)
}

/// Writes records into the run, from whichever thread; does nothing without a run.
#[derive(Clone)]
struct Recorder(Option<RunHandle>);

impl Recorder {
    fn log(&self, level: Level, target: &str, kvs: &[(&str, &str)], args: std::fmt::Arguments<'_>) {
        if let Some(h) = &self.0 {
            h.in_scope(|| log_record(level, target, kvs, args));
        }
    }

    fn info(&self, args: std::fmt::Arguments<'_>) {
        self.log(Level::Info, TARGET, &[], args);
    }

    fn warn(&self, args: std::fmt::Arguments<'_>) {
        self.log(Level::Warn, TARGET, &[], args);
    }

    fn error(&self, kvs: &[(&str, &str)], args: std::fmt::Arguments<'_>) {
        self.log(Level::Error, TARGET, kvs, args);
    }

    fn fail(&self) {
        if let Some(h) = &self.0 {
            h.fail();
        }
    }
}

/// Log one record on this thread. Built by hand: the file, line and module of this code
/// would only mislead a reader of the command's output.
fn log_record(level: Level, target: &str, kvs: &[(&str, &str)], args: std::fmt::Arguments<'_>) {
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target(target)
            .key_values(&kvs)
            .args(args)
            .build(),
    );
}

/// The command line as a shell would read it.
fn command_line(program: &OsString, args: &[OsString]) -> String {
    std::iter::once(program)
        .chain(args)
        .map(|s| shell_quote(&s.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The signal's name, `SIGKILL`, or `signal N`.
fn signal_name(sig: c_int) -> String {
    signal_hook::low_level::signal_name(sig).map_or_else(|| format!("signal {sig}"), str::to_owned)
}

/// Set up, run the command and record its outcome; the exit status for runlog.
fn exec(rec: &Recorder, program: &OsString, args: &[OsString], pty: bool) -> u8 {
    let cmdline = command_line(program, args);
    rec.info(format_args!("running {cmdline}"));
    let io = match Plumbing::set_up(rec, program, args, pty) {
        Ok(p) => p,
        Err(e) => {
            crate::note(&format!("cannot start {cmdline}: {e}"));
            rec.error(&[], format_args!("runlog could not start the command: {e}"));
            return EXIT_RUNLOG_FAILED;
        }
    };
    let mut open = io.readers.len();
    let started = loop {
        match io.events.recv() {
            Ok(Event::Started) => break Ok(()),
            Ok(Event::StartFailed(e)) => break Err(e),
            Ok(Event::StreamEnded) => open -= 1,
            Ok(Event::Gone) | Err(_) => {
                break Err(StartFailure::Other(
                    "runlog's supervisor ended before it started the command".into(),
                ))
            }
            Ok(Event::Exited(_) | Event::Interrupted(_)) => {}
        }
    };
    if let Err(failure) = started {
        let code = match failure {
            StartFailure::Spawn(e) => {
                let (code, hint) = spawn_failure(program, &e);
                let name = shell_quote(&program.to_string_lossy());
                crate::note(&format!("cannot run {name}: {e}{hint}"));
                rec.error(&[], format_args!("cannot run {name}: {e}{hint}"));
                code
            }
            StartFailure::Other(e) => {
                crate::note(&format!("cannot start {cmdline}: {e}"));
                rec.error(&[], format_args!("runlog could not start the command: {e}"));
                EXIT_RUNLOG_FAILED
            }
        };
        io.finish(true);
        return code;
    }
    let status = loop {
        match io.events.recv() {
            Ok(Event::Exited(status)) => break Ok(status),
            Ok(Event::StreamEnded) => open -= 1,
            Ok(Event::Gone) | Err(_) => break Err("runlog's supervisor of the command ended"),
            Ok(Event::Started | Event::StartFailed(_) | Event::Interrupted(_)) => {}
        }
    };
    io.forwarder.exited();
    let all_output = status.is_ok() && wait_for_output(rec, &io.events, open);
    io.finish(all_output);
    match status {
        Ok(status) => outcome(rec, status),
        Err(e) => {
            crate::note(&format!("lost track of {cmdline}: {e}"));
            rec.error(
                &[],
                format_args!("runlog could not wait for the command: {e}"),
            );
            EXIT_RUNLOG_FAILED
        }
    }
}

/// Record how the command ended; runlog's exit status for it.
fn outcome(rec: &Recorder, status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        let s = code.to_string();
        let kvs = [("exit_status", s.as_str())];
        if code == 0 {
            rec.log(
                Level::Info,
                TARGET,
                &kvs,
                format_args!("command exited with status 0"),
            );
        } else {
            rec.error(&kvs, format_args!("command exited with status {code}"));
        }
        // Exit statuses are 0..=255 on Unix; anything else would be a bug worth a failure.
        return u8::try_from(code).unwrap_or(EXIT_RUNLOG_FAILED);
    }
    if let Some(sig) = status.signal() {
        let name = signal_name(sig);
        let core = if status.core_dumped() {
            " (core dumped)"
        } else {
            ""
        };
        let s = sig.to_string();
        rec.error(
            &[("signal", s.as_str()), ("signal_name", name.as_str())],
            format_args!("command was killed by signal {sig} ({name}){core}"),
        );
        // As shells report it.
        return u8::try_from(128 + sig).unwrap_or(u8::MAX);
    }
    rec.error(
        &[],
        format_args!("command ended with an unknown status: {status}"),
    );
    EXIT_RUNLOG_FAILED
}

/// Exit status and advice for a command that could not be started, as shells have it: 127
/// for not found, 126 for found but not executable; 125 when runlog ran out of resources.
fn spawn_failure(program: &OsString, e: &io::Error) -> (u8, &'static str) {
    let has_slash = program.to_string_lossy().contains('/');
    match e.raw_os_error() {
        Some(libc::ENOENT) if has_slash => (
            EXIT_NOT_FOUND,
            "; check the path, and the interpreter named on its #! line",
        ),
        Some(libc::ENOENT) => (EXIT_NOT_FOUND, "; it is in no directory of PATH"),
        Some(libc::ENOTDIR) => (EXIT_NOT_FOUND, "; a directory in its path is a file"),
        Some(libc::EACCES) | Some(libc::EPERM) => (
            EXIT_CANNOT_EXECUTE,
            "; is it a directory, or without execute permission (chmod +x)?",
        ),
        Some(libc::ENOEXEC) => (
            EXIT_CANNOT_EXECUTE,
            "; not a program for this machine, or a script without a #! line",
        ),
        Some(libc::EAGAIN) | Some(libc::ENOMEM) | Some(libc::EMFILE) | Some(libc::ENFILE) => {
            (EXIT_RUNLOG_FAILED, "")
        }
        _ => (EXIT_CANNOT_EXECUTE, ""),
    }
}

/// Why the command did not start.
enum StartFailure {
    /// Starting it failed, as the system said.
    Spawn(io::Error),
    /// Something else went wrong.
    Other(String),
}

/// What the readers, the forwarder and the supervisor tell the main thread.
enum Event {
    /// A reader reached the end of its stream (and has logged its last record).
    StreamEnded,
    /// A signal arrived after the command exited.
    Interrupted(c_int),
    /// The command started (its pid is in the forwarder's state).
    Started,
    /// The command could not be started.
    StartFailed(StartFailure),
    /// The command ended so.
    Exited(ExitStatus),
    /// The supervisor's socket ended.
    Gone,
}

/// Sends [`Event::StreamEnded`] when dropped, so that a reader that panics counts too.
struct EndGuard(mpsc::Sender<Event>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        let _ = self.0.send(Event::StreamEnded);
    }
}

/// One stream of the command's output as runlog reads it.
struct Source {
    from: Box<dyn Read + Send>,
    /// The target of its records.
    target: &'static str,
    level: Level,
    /// Passed through to runlog's stdout (else its stderr).
    to_stdout: bool,
}

/// Everything set up to run the command: the supervisor (which starts it), the output's
/// reader threads, the signal forwarder and the socket to the supervisor. Nothing can fail
/// after the supervisor started.
struct Plumbing {
    supervisor: Child,
    sock: UnixStream,
    readers: Vec<JoinHandle<()>>,
    events: mpsc::Receiver<Event>,
    forwarder: Forwarder,
}

impl Plumbing {
    fn set_up(
        rec: &Recorder,
        program: &OsString,
        args: &[OsString],
        pty: bool,
    ) -> Result<Plumbing, String> {
        let (tx, events) = mpsc::channel();
        let (sock, theirs) =
            UnixStream::pair().map_err(|e| format!("cannot create a socket: {e}"))?;
        let clone = |s: &UnixStream| {
            s.try_clone()
                .map_err(|e| format!("cannot duplicate a socket: {e}"))
        };
        let (stdout, stderr, sources, master) = if pty {
            let p = pty::Pty::open()
                .map_err(|e| format!("cannot open a pseudo-terminal for --pty: {e}"))?;
            let dup = |fd: &OwnedFd| {
                fd.try_clone()
                    .map_err(|e| format!("cannot duplicate the pseudo-terminal: {e}"))
            };
            let source = Source {
                from: Box::new(File::from(dup(&p.master)?)),
                target: "pty",
                level: Level::Info,
                to_stdout: true,
            };
            let out = Stdio::from(dup(&p.slave)?);
            (out, Stdio::from(p.slave), vec![source], Some(p.master))
        } else {
            let pipe = || io::pipe().map_err(|e| format!("cannot create a pipe: {e}"));
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let sources = vec![
                Source {
                    from: Box::new(out_r),
                    target: "stdout",
                    level: Level::Info,
                    to_stdout: true,
                },
                Source {
                    from: Box::new(err_r),
                    target: "stderr",
                    level: Level::Warn,
                    to_stdout: false,
                },
            ];
            (Stdio::from(out_w), Stdio::from(err_w), sources, None)
        };
        let forwarder = Forwarder::start(rec.clone(), tx.clone(), clone(&sock)?, master)?;
        let mut readers = Vec::with_capacity(sources.len() + 1);
        for source in sources {
            let (rec, tx) = (rec.clone(), tx.clone());
            let name = source.target;
            let spawned = std::thread::Builder::new()
                .name(format!("exec-{name}"))
                .spawn(move || {
                    let _end = EndGuard(tx);
                    let _attached = rec.0.as_ref().map(RunHandle::enter);
                    pump(source, rec.0.is_some());
                });
            match spawned {
                Ok(h) => readers.push(h),
                Err(e) => return Err(format!("cannot start a thread to read its {name}: {e}")),
            }
        }
        let listening = clone(&sock)?;
        let state = forwarder.state.clone();
        std::thread::Builder::new()
            .name("exec-supervisor".into())
            .spawn(move || listen(listening, &state, &tx))
            .map_err(|e| format!("cannot start a thread to hear from the supervisor: {e}"))?;

        // runlog itself, started again as the supervisor (see `supervise`).
        let mut cmd = Command::new("/proc/self/exe");
        let fd = theirs.as_raw_fd();
        cmd.arg0(supervise::ARG0)
            .arg(fd.to_string())
            .arg(program)
            .args(args)
            .stdin(Stdio::inherit())
            .stdout(stdout)
            .stderr(stderr);
        // SAFETY: one fcntl (async-signal-safe) between fork and exec, on a descriptor the
        // child has (it is `theirs`, open until after the spawn): the supervisor inherits it.
        unsafe {
            cmd.pre_exec(move || {
                rustix::io::fcntl_setfd(BorrowedFd::borrow_raw(fd), FdFlags::empty())?;
                Ok(())
            });
        }
        let supervisor = cmd
            .spawn()
            .map_err(|e| format!("cannot start runlog's supervisor (/proc/self/exe): {e}"))?;
        // The `Command` (and with it runlog's copy of the output's write ends) and runlog's
        // copy of the supervisor's socket are gone here: the readers see the end of the
        // output when the command and its children close theirs, and the supervisor sees the
        // end of its socket when runlog dies.
        drop(cmd);
        drop(theirs);
        Ok(Plumbing {
            supervisor,
            sock,
            readers,
            events,
            forwarder,
        })
    }

    /// Stop forwarding, tell the supervisor runlog is done (what the command left running is
    /// left alone) and reap it; join the readers if all the output was read.
    fn finish(self, all_output: bool) {
        let Plumbing {
            mut supervisor,
            sock,
            readers,
            events: _,
            forwarder,
        } = self;
        if all_output {
            for r in readers {
                let _ = r.join();
            }
        }
        drop(forwarder);
        let _ = (&sock).write_all(&[supervise::DONE]);
        drop(sock);
        let _ = supervisor.wait();
    }
}

/// Turn the supervisor's messages into events, until its socket ends. The command's pid goes
/// to the forwarder's state at once, for its records.
fn listen(sock: UnixStream, state: &Mutex<ChildState>, tx: &mpsc::Sender<Event>) {
    for line in BufReader::new(sock).lines() {
        let Ok(line) = line else { break };
        let (word, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let number = arg.parse::<i32>();
        let event = match (word, number) {
            ("started", Ok(pid)) => {
                lock(state).pid = Some(pid);
                Event::Started
            }
            ("failed", Ok(errno)) => {
                Event::StartFailed(StartFailure::Spawn(io::Error::from_raw_os_error(errno)))
            }
            ("error", _) => Event::StartFailed(StartFailure::Other(arg.to_owned())),
            ("status", Ok(raw)) => Event::Exited(ExitStatus::from_raw(raw)),
            ("late", Ok(sig)) => Event::Interrupted(sig),
            _ => continue,
        };
        if tx.send(event).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::Gone);
}

/// Copy one output stream of the command to runlog's stdout or stderr, chunk by chunk as it
/// arrives (a prompt without a newline shows at once), and log each line.
fn pump(source: Source, recording: bool) {
    let Source {
        mut from,
        target,
        level,
        to_stdout,
    } = source;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut line: Vec<u8> = Vec::new();
    let mut to = destination(to_stdout).ok();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A pseudo-terminal ends so (EIO) when the last process holding it closed it;
            // not seen on a pipe. Ending here still logs what was read.
            Err(_) => break,
        };
        let chunk = &buf[..n];
        // Once runlog's own stream is gone (`| head`), the command's output is still recorded:
        // the run's log is what runlog is for. The command decides itself when to stop.
        if to.as_mut().is_some_and(|w| w.write_all(chunk).is_err()) {
            to = None;
        }
        if !recording {
            continue;
        }
        for piece in chunk.split_inclusive(|&b| b == b'\n') {
            let (body, ends) = match piece.strip_suffix(b"\n") {
                Some(b) => (b, true),
                None => (piece, false),
            };
            let room = LINE_CAP.saturating_sub(line.len());
            line.extend_from_slice(&body[..body.len().min(room)]);
            if ends {
                log_line(target, level, &line);
                line.clear();
                if line.capacity() > READ_CHUNK {
                    line = Vec::new();
                }
            }
        }
    }
    if !line.is_empty() {
        log_line(target, level, &line);
    }
}

/// Where a stream of the command passes through to.
fn destination(to_stdout: bool) -> io::Result<Box<dyn Write>> {
    if to_stdout {
        // A duplicate of fd 1 rather than `io::stdout()`: main holds that lock (and its
        // buffer) for the whole command, and unbuffered is what passing through wants anyway.
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Box::new(File::from(fd)))
    } else {
        // Unbuffered, and locked per write: the library's and runlog's warnings go there too.
        Ok(Box::new(io::stderr()))
    }
}

/// Log one line of output (without its newline, and without the `\r` of a `\r\n`).
fn log_line(target: &str, level: Level, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    log_record(level, target, &[], format_args!("{text}"));
}

/// The command's process, as the forwarder sees it.
#[derive(Default)]
struct ChildState {
    /// Its pid, once it started.
    pid: Option<libc::pid_t>,
    /// It exited (and was reaped).
    exited: bool,
}

fn lock(m: &Mutex<ChildState>) -> MutexGuard<'_, ChildState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The thread that forwards signals to the command, through the supervisor (and, with
/// `--pty`, follows the terminal's size).
struct Forwarder {
    state: Arc<Mutex<ChildState>>,
    signals: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    fn start(
        rec: Recorder,
        tx: mpsc::Sender<Event>,
        sock: UnixStream,
        pty_master: Option<OwnedFd>,
    ) -> Result<Forwarder, String> {
        // A signal runlog was started with ignored (`nohup`, a service manager's choice) is
        // left ignored: caught here it would reach the command, which inherits the ignoring.
        let mut sigs: Vec<c_int> = FORWARDED.into_iter().filter(|&s| !ignored(s)).collect();
        if pty_master.is_some() {
            sigs.push(libc::SIGWINCH);
        }
        let mut signals = SignalsInfo::<WithRawSiginfo>::new(&sigs)
            .map_err(|e| format!("cannot catch signals to forward them: {e}"))?;
        let handle = signals.handle();
        let state = Arc::new(Mutex::new(ChildState::default()));
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("exec-signals".into())
            .spawn(move || {
                for info in signals.forever() {
                    match &pty_master {
                        Some(m) if info.si_signo == libc::SIGWINCH => pty::follow_size(m),
                        _ => forward(&rec, &st, &tx, &sock, &info),
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread to forward signals: {e}"))?;
        Ok(Forwarder {
            state,
            signals: handle,
            thread: Some(thread),
        })
    }

    /// The command exited: a signal from now on ends the wait for the rest of its output.
    fn exited(&self) {
        lock(&self.state).exited = true;
    }
}

impl Drop for Forwarder {
    /// Stop forwarding (the thread ends; signals are caught and dropped until runlog exits).
    fn drop(&mut self) {
        self.signals.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Was runlog started with `sig` ignored?
fn ignored(sig: c_int) -> bool {
    // SAFETY: a query only (no new action); `old` is a plain C struct, valid zeroed.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Handle one signal runlog received.
fn forward(
    rec: &Recorder,
    state: &Mutex<ChildState>,
    tx: &mpsc::Sender<Event>,
    sock: &UnixStream,
    info: &libc::siginfo_t,
) {
    let sig = info.si_signo;
    let name = signal_name(sig);
    // SAFETY: `si_pid` reads the union member that kill(2)-style signals fill in; for others
    // it is whatever the kernel put there, which is only shown.
    let sender = unsafe { info.si_pid() };
    let from = if info.si_code == libc::SI_KERNEL {
        "from the terminal".to_owned()
    } else {
        format!("from pid {sender}")
    };
    let st = lock(state);
    if st.exited {
        drop(st);
        let _ = tx.send(Event::Interrupted(sig));
        return;
    }
    let pid = st.pid;
    drop(st);
    if info.si_code == libc::SI_KERNEL {
        // The terminal signals its whole foreground process group, the command included.
        rec.warn(format_args!(
            "runlog received {name} {from}, which the command received too"
        ));
        return;
    }
    // The supervisor forwards it, unless the command was reaped meanwhile: then it says so
    // and that ends the wait for the output instead.
    let sent = u8::try_from(sig).is_ok_and(|b| (&*sock).write_all(&[b]).is_ok());
    match (sent, pid) {
        (true, Some(pid)) => rec.warn(format_args!(
            "runlog received {name} {from} and forwarded it to the command (pid {pid})"
        )),
        // The supervisor has not said yet that the command started: it delivers the signal
        // once the command has.
        (true, None) => rec.warn(format_args!(
            "runlog received {name} {from} and forwarded it to the command"
        )),
        (false, _) => rec.warn(format_args!(
            "runlog received {name} {from} and could not forward it: the command's \
             supervisor is gone"
        )),
    }
}

/// Wait until `streams` readers have seen the end of their stream; false when a signal
/// ended the wait first (a process the command left behind still holds its output).
fn wait_for_output(rec: &Recorder, events: &mpsc::Receiver<Event>, streams: usize) -> bool {
    let mut open = streams;
    while open > 0 {
        match events.recv() {
            Ok(Event::StreamEnded) => open -= 1,
            Ok(Event::Interrupted(sig)) => {
                rec.warn(format_args!(
                    "runlog received {} after the command exited and stopped waiting for the \
                     rest of its output, which a process it started still holds open",
                    signal_name(sig)
                ));
                return false;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_shell_quoted() {
        let args: Vec<OsString> = vec!["-c".into(), "echo x; exit 3".into()];
        assert_eq!(command_line(&"sh".into(), &args), "sh -c 'echo x; exit 3'");
    }

    #[test]
    fn signals_are_named() {
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(signal_name(1000), "signal 1000");
    }

    #[test]
    fn spawn_failures_map_to_shell_exit_statuses() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(spawn_failure(&"nosuch".into(), &e(libc::ENOENT)).0, 127);
        assert_eq!(spawn_failure(&"./x".into(), &e(libc::EACCES)).0, 126);
        assert_eq!(spawn_failure(&"./x".into(), &e(libc::ENOEXEC)).0, 126);
        assert_eq!(spawn_failure(&"./x".into(), &e(libc::EAGAIN)).0, 125);
    }
}
