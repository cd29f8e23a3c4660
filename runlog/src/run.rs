//! The run guard: which thread's records go where, and how a run ends.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use log::{Level, LevelFilter, Metadata, Record};

use crate::journal::payload::Outcome;
use crate::journal::writer::{encode_record_frame, fork_generation, RunWriter, SCRATCH_FRAME};
use crate::logger::Shared;

thread_local! {
    /// The runs this thread's records go to; the last one is current.
    static STACK: RefCell<Vec<Arc<RunCore>>> = const { RefCell::new(Vec::new()) };
    /// Set while this thread is inside a journal write, so that a record logged from inside
    /// (a `Display` impl that logs, a panic while formatting) does not deadlock on the run.
    static IN_WRITE: Cell<bool> = const { Cell::new(false) };
    /// Set while this thread holds a run's lock (no job code runs then).
    static IN_LOCK: Cell<bool> = const { Cell::new(false) };
    /// Where this thread encodes a record before copying it into the segment.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Labels are for finding runs: keys and values longer than these are cut.
const MAX_LABEL_KEY: usize = 4096;
const MAX_LABEL_VALUE: usize = 64 << 10;

fn cut_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut n = max;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

pub(crate) struct RunState {
    writer: Option<RunWriter>,
    ended: bool,
    /// Records dropped while there was no writer at all.
    dropped_detached: u64,
    told: bool,
}

/// The shared part of a run: what the guard, handles and the logger see.
pub(crate) struct RunCore {
    pub(crate) id: String,
    pub(crate) job: String,
    /// The start time in the BEGIN frame (ns); the end is never before it.
    start_ns: i64,
    level: AtomicUsize,
    failed: AtomicBool,
    state: Mutex<RunState>,
    shared: Arc<Shared>,
    /// The fork generation of the process that started the run.
    fork_gen: u64,
}

impl RunCore {
    pub(crate) fn new(
        id: String,
        job: String,
        start_ns: i64,
        level: LevelFilter,
        writer: Option<RunWriter>,
        shared: Arc<Shared>,
    ) -> RunCore {
        RunCore {
            id,
            job,
            start_ns,
            level: AtomicUsize::new(level as usize),
            failed: AtomicBool::new(false),
            state: Mutex::new(RunState {
                writer,
                ended: false,
                dropped_detached: 0,
                told: false,
            }),
            shared,
            fork_gen: fork_generation(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
        // A panic while formatting a record poisons the mutex; the state stays consistent
        // (a frame is only counted once sealed), so carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[inline]
    pub(crate) fn enabled(&self, meta: &Metadata<'_>) -> bool {
        let lvl = match self.shared.directives.target_level(meta.target()) {
            Some(l) => l,
            None => crate::logger::level_from_usize(self.level.load(Ordering::Relaxed)),
        };
        meta.level() <= lvl
    }

    /// Write a record to this run's journal (the caller checked `enabled`).
    pub(crate) fn write(&self, record: &Record<'_>) {
        let in_write = Flag::set(&IN_WRITE);
        if in_write.was_set {
            // A record logged while formatting another (a `Display` that logs), or during
            // thread teardown: skipped.
            return;
        }
        self.write_unguarded(record);
    }

    /// Does this run belong to a parent process of this one (we are a fork child)?
    #[inline]
    fn foreign(&self) -> bool {
        self.fork_gen != fork_generation()
    }

    fn write_unguarded(&self, record: &Record<'_>) {
        if self.foreign() {
            return;
        }
        let ts = (self.shared.clock)();
        let _ = SCRATCH.try_with(|s| match s.try_borrow_mut() {
            Ok(mut buf) => self.append(&mut buf, ts, record),
            // Only while a panic is recorded from inside the formatting of another record.
            Err(_) => self.append(&mut Vec::new(), ts, record),
        });
    }

    /// Encode the record into `buf` (the job's `Display` code runs here, with no lock held),
    /// then copy it into the segment under the run's lock.
    fn append(&self, buf: &mut Vec<u8>, ts: i64, record: &Record<'_>) {
        let n = encode_record_frame(buf, ts, record);
        let mut tell = None;
        {
            let _locked = Flag::set(&IN_LOCK);
            let mut st = self.lock();
            if !st.ended {
                match st.writer.as_mut() {
                    Some(w) if n > 0 => {
                        let before = w.dropped;
                        w.append_record_frame(ts, &buf[..n]);
                        if w.dropped != before && !st.told {
                            st.told = true;
                            tell = Some(
                                st.writer
                                    .as_ref()
                                    .and_then(|w| w.error.as_ref().map(|e| e.to_string()))
                                    .unwrap_or_else(|| "segment full".into()),
                            );
                        }
                    }
                    Some(w) => w.dropped += 1,
                    None => st.dropped_detached += 1,
                }
            }
        }
        if buf.len() > SCRATCH_FRAME {
            buf.truncate(SCRATCH_FRAME);
            buf.shrink_to(SCRATCH_FRAME);
        }
        if let Some(err) = tell {
            self.tell_dropping(&err);
        }
    }

    fn tell_dropping(&self, err: &str) {
        say(format_args!(
            "runlog: job {:?} run {}: cannot write the journal in {}: {err}; records of this run \
             are dropped and counted (check free space and permissions of that directory)",
            self.job,
            self.id,
            self.shared.config.journal_dir.display()
        ));
    }

    pub(crate) fn label(&self, key: &str, value: &str) {
        if self.foreign() {
            return;
        }
        let (key, value) = (cut_str(key, MAX_LABEL_KEY), cut_str(value, MAX_LABEL_VALUE));
        let mut st = self.lock();
        if let Some(w) = st.writer.as_mut() {
            w.write_label((self.shared.clock)(), key, value);
        }
    }

    fn set_level(&self, level: LevelFilter) {
        self.level.store(level as usize, Ordering::Relaxed);
        crate::logger::raise_global_max(level);
    }

    fn debug(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(name)
            .field("job", &self.job)
            .field("id", &self.id)
            .finish()
    }

    pub(crate) fn mark_failed(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// End the run (idempotent).
    fn end(&self, outcome: Outcome) {
        if self.foreign() {
            // A fork child's copy of its parent's run: the parent ends it. Not even its lock is
            // touched: a thread of the parent may have held it at the fork, forever here.
            return;
        }
        let (writer, told) = {
            let mut st = self.lock();
            if st.ended {
                return;
            }
            st.ended = true;
            (st.writer.take(), st.told)
        };
        let Some(mut w) = writer else { return };
        if w.check_cut() && !told && outcome != Outcome::Cancelled {
            let err = w.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
            self.tell_dropping(&err);
        }
        // A start moved past the job's newest run after the clock stepped back (see
        // `start_after_newest`) may be later than the clock now.
        let now = (self.shared.clock)().max(self.start_ns);
        let res = if outcome == Outcome::Cancelled {
            w.cancel(now)
        } else {
            w.finish(now, outcome)
        };
        if let Err(e) = res {
            say(format_args!(
                "runlog: job {:?} run {}: could not end the run in the journal {}: {e}",
                self.job,
                self.id,
                self.shared.config.journal_dir.display()
            ));
        }
        self.shared.after_run(&self.job);
    }
}

/// Tell the job something on stderr. Never panics (a closed stderr is ignored).
pub(crate) fn say(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{args}");
}

/// Sets a thread-local flag for as long as it lives, then restores what it was.
struct Flag {
    key: &'static std::thread::LocalKey<Cell<bool>>,
    /// It was already set (or the thread-local is gone: thread teardown).
    was_set: bool,
}

impl Flag {
    fn set(key: &'static std::thread::LocalKey<Cell<bool>>) -> Flag {
        let was_set = key.try_with(|f| f.replace(true)).unwrap_or(true);
        Flag { key, was_set }
    }
}

impl Drop for Flag {
    fn drop(&mut self) {
        let _ = self.key.try_with(|f| f.set(self.was_set));
    }
}

fn push(core: &Arc<RunCore>) {
    let _ = STACK.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.push(core.clone());
        }
    });
}

fn pop(core: &Arc<RunCore>) {
    let _ = STACK.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if let Some(i) = s.iter().rposition(|c| Arc::ptr_eq(c, core)) {
                s.remove(i);
            }
        }
    });
}

/// Call `f` with the current run of this thread; `None` when there is none (or during thread
/// teardown).
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<RunCore>) -> R) -> Option<R> {
    STACK
        .try_with(|s| {
            let s = s.try_borrow().ok()?;
            s.last().map(f)
        })
        .ok()
        .flatten()
}

/// Write a record to the current run of this thread, if it wants it.
#[inline]
pub(crate) fn log_to_current(record: &Record<'_>) {
    with_current(|c| {
        if c.enabled(record.metadata()) {
            c.write(record);
        }
    });
}

/// Is a record at `meta` wanted by this thread's current run?
#[inline]
pub(crate) fn current_enabled(meta: &Metadata<'_>) -> bool {
    with_current(|c| c.enabled(meta)).unwrap_or(false)
}

/// Called from the panic hook: record the panic in the current run.
pub(crate) fn record_panic(info: &std::panic::PanicHookInfo<'_>) {
    // A panic with a run's lock held (only a bug in runlog could do that) must not try to
    // take it again.
    if IN_LOCK.try_with(|l| l.get()).unwrap_or(true) {
        return;
    }
    let Some(core) = with_current(Arc::clone) else {
        return;
    };
    // Wherever it was raised (an attached thread, inside a `Display`, caught or not), a panic
    // in a run fails it.
    core.mark_failed();
    // Also when the panic comes from inside the formatting of another record: that record is
    // lost, the panic is not.
    let _in_write = Flag::set(&IN_WRITE);
    let msg: &str = if let Some(s) = info.payload().downcast_ref::<&str>() {
        s
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    };
    let thread = std::thread::current();
    let tname = thread.name().unwrap_or("<unnamed>");
    let bt = std::backtrace::Backtrace::force_capture();
    let (file, line, col) = info
        .location()
        .map_or(("<unknown>", 0, 0), |l| (l.file(), l.line(), l.column()));
    let kvs = [("thread", tname)];
    let write = |kvs: &[(&str, &str)], args: std::fmt::Arguments<'_>| {
        core.write_unguarded(
            &Record::builder()
                .level(Level::Error)
                .target("runlog::panic")
                .file(Some(file))
                .line(Some(line))
                .key_values(&kvs)
                .args(args)
                .build(),
        )
    };
    write(
        &kvs,
        format_args!("thread '{tname}' panicked at {file}:{line}:{col}:\n{msg}"),
    );
    write(
        &[],
        format_args!("stack backtrace:\n{}", short_backtrace(&bt.to_string())),
    );
}

/// The frames of a backtrace between the panic machinery and the runtime start, renumbered
/// (what `RUST_BACKTRACE=1` shows), so the job's own frames are what one reads.
fn short_backtrace(full: &str) -> String {
    let mut frames: Vec<Vec<&str>> = Vec::new();
    for line in full.lines() {
        let t = line.trim_start();
        let starts_frame = t
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match frames.last_mut() {
            Some(f) if !starts_frame => f.push(line),
            _ => frames.push(vec![line]),
        }
    }
    let has = |f: &Vec<&str>, s: &str| f.first().is_some_and(|l| l.contains(s));
    let start = frames
        .iter()
        .rposition(|f| has(f, "__rust_end_short_backtrace"))
        .map(|i| i + 1);
    let end = frames
        .iter()
        .position(|f| has(f, "__rust_begin_short_backtrace"));
    if start.is_none() && end.is_none() {
        return full.to_owned();
    }
    let (start, end) = (start.unwrap_or(0), end.unwrap_or(frames.len()));
    if start >= end {
        return full.to_owned();
    }
    let mut out = String::new();
    for (n, f) in frames[start..end].iter().enumerate() {
        for (i, line) in f.iter().enumerate() {
            if i == 0 {
                let rest = line.trim_start().split_once(": ").map_or(*line, |(_, r)| r);
                out.push_str(&format!("{n:>4}: {rest}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push_str("note: frames of the panic machinery and the runtime start are omitted");
    out
}

/// Record an error and its source chain as the run's last record.
pub(crate) fn record_error(core: &RunCore, e: &(dyn std::error::Error + 'static)) {
    use std::fmt::Write;
    let mut text = format!("run failed: {e}");
    let mut src = e.source();
    while let Some(s) = src {
        let _ = write!(text, "\ncaused by: {s}");
        src = s.source();
    }
    core.write(
        &Record::builder()
            .level(Level::Error)
            .target("runlog::error")
            .args(format_args!("{text}"))
            .build(),
    );
}

/// A run: while this guard lives, records logged by this thread (and threads attached to it)
/// go to the run's journal segment. Dropping it commits the run (`failed` if the thread is
/// panicking or [`Run::fail`] was called); [`Run::cancel`] forgets it.
///
/// The guard is bound to the thread that started it (it is not `Send`); use
/// [`Run::handle`], [`Run::scope`] or [`RunHandle::instrument`] to bring other threads and
/// futures into the run.
#[must_use = "a run ends when this guard is dropped"]
pub struct Run {
    core: Arc<RunCore>,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.debug("Run", f)
    }
}

impl Run {
    pub(crate) fn start(core: RunCore) -> Run {
        let core = Arc::new(core);
        push(&core);
        Run {
            core,
            _not_send: PhantomData,
        }
    }

    /// The run id: the UTC start time and a random suffix (`2026-11-28T12:10:55.123456Z-…`).
    pub fn id(&self) -> &str {
        &self.core.id
    }

    /// The job name.
    pub fn job(&self) -> &str {
        &self.core.job
    }

    /// The most verbose level this run keeps (target directives from the config still apply).
    pub fn set_level(&self, level: LevelFilter) {
        self.core.set_level(level);
    }

    /// The run's level.
    pub fn level(&self) -> LevelFilter {
        crate::logger::level_from_usize(self.core.level.load(Ordering::Relaxed))
    }

    /// Attach a label to the run (find runs later by it). A later value for a key replaces
    /// the earlier one.
    pub fn label(&self, key: &str, value: &str) {
        self.core.label(key, value);
    }

    /// Mark the run failed: it still ends when the guard is dropped.
    pub fn fail(&self) {
        self.core.mark_failed();
    }

    /// Cancel the run: a boring run that is forgotten everywhere (its local data is removed).
    pub fn cancel(self) {
        pop(&self.core);
        self.core.end(Outcome::Cancelled);
        std::mem::forget(self);
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        if self.core.foreign() {
            return 0;
        }
        let st = self.core.lock();
        st.writer.as_ref().map_or(0, |w| w.records)
    }

    /// Records dropped so far (disk full, journal not writable).
    pub fn dropped(&self) -> u64 {
        if self.core.foreign() {
            return 0;
        }
        let st = self.core.lock();
        st.dropped_detached + st.writer.as_ref().map_or(0, |w| w.dropped)
    }

    /// Is the run being written to the journal? (False when the journal could not be opened.)
    pub fn is_recording(&self) -> bool {
        !self.core.foreign() && self.core.lock().writer.is_some()
    }

    /// A handle that can attach other threads and futures to this run.
    pub fn handle(&self) -> RunHandle {
        RunHandle {
            core: self.core.clone(),
        }
    }

    /// Like [`std::thread::scope`], but threads spawned through the scope are attached to
    /// this run.
    pub fn scope<'env, F, T>(&self, f: F) -> T
    where
        F: for<'scope> FnOnce(&RunScope<'scope, 'env>) -> T,
    {
        let handle = self.handle();
        std::thread::scope(|s| {
            let rs = RunScope { scope: s, handle };
            f(&rs)
        })
    }

    pub(crate) fn core(&self) -> &Arc<RunCore> {
        &self.core
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        pop(&self.core);
        let failed = std::thread::panicking() || self.core.failed.load(Ordering::Relaxed);
        self.core
            .end(if failed { Outcome::Failed } else { Outcome::Ok });
    }
}

/// A scope whose spawned threads log into a run; see [`Run::scope`].
pub struct RunScope<'scope, 'env: 'scope> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    handle: RunHandle,
}

impl<'scope> RunScope<'scope, '_> {
    /// Spawn a scoped thread attached to the run.
    pub fn spawn<F, T>(&self, f: F) -> std::thread::ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let h = self.handle.clone();
        self.scope.spawn(move || h.in_scope(f))
    }
}

/// A cloneable, `Send` reference to a run, to attach other threads or futures to it.
///
/// Records logged through a handle after the run ended are discarded.
#[derive(Clone)]
pub struct RunHandle {
    core: Arc<RunCore>,
}

impl std::fmt::Debug for RunHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.core.debug("RunHandle", f)
    }
}

impl RunHandle {
    /// The run id.
    pub fn id(&self) -> &str {
        &self.core.id
    }

    /// Attach a label to the run; see [`Run::label`].
    pub fn label(&self, key: &str, value: &str) {
        self.core.label(key, value);
    }

    /// Mark the run failed; see [`Run::fail`].
    pub fn fail(&self) {
        self.core.mark_failed();
    }

    /// Set the run's level; see [`Run::set_level`].
    pub fn set_level(&self, level: LevelFilter) {
        self.core.set_level(level);
    }

    /// Attach the current thread until the returned guard is dropped.
    pub fn enter(&self) -> Entered {
        push(&self.core);
        Entered {
            core: self.core.clone(),
            _not_send: PhantomData,
        }
    }

    /// Run `f` with the current thread attached.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let _g = self.enter();
        f()
    }

    /// Wrap a future so that it is attached to the run on every poll, whichever thread polls
    /// it (for multi-threaded async runtimes).
    pub fn instrument<F: Future>(&self, fut: F) -> Instrumented<F> {
        Instrumented {
            fut: Box::pin(fut),
            handle: self.clone(),
        }
    }
}

/// Guard returned by [`RunHandle::enter`]: the thread is attached until it is dropped.
#[must_use = "the thread is detached when this guard is dropped"]
pub struct Entered {
    core: Arc<RunCore>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        pop(&self.core);
    }
}

/// A future attached to a run; see [`RunHandle::instrument`].
pub struct Instrumented<F> {
    fut: Pin<Box<F>>,
    handle: RunHandle,
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _g = this.handle.enter();
        this.fut.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::short_backtrace;

    #[test]
    fn short_backtrace_keeps_the_frames_between_the_markers_renumbered() {
        let full = "   0: runlog::run::record_panic\n             at src/run.rs:1:1\n   1: std::sys::backtrace::__rust_end_short_backtrace\n   2: core::panicking::panic_fmt\n   3: myjob::work\n             at src/main.rs:7:5\n   4: std::sys::backtrace::__rust_begin_short_backtrace\n   5: main\n";
        let s = short_backtrace(full);
        assert_eq!(
            s,
            "   0: core::panicking::panic_fmt\n   1: myjob::work\n             at src/main.rs:7:5\nnote: frames of the panic machinery and the runtime start are omitted"
        );
        // Without markers (e.g. no symbols) the backtrace is kept whole.
        assert_eq!(short_backtrace("   0: <unknown>\n"), "   0: <unknown>\n");
    }
}
