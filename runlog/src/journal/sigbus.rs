//! Keeping the job alive when a page of a segment's mapping is lost.
//!
//! A store into a `MAP_SHARED` mapping raises `SIGBUS` when the page behind it is gone: the
//! file was cut under the mapping (another process truncated a live segment), or the file
//! system found no space for the page (copy-on-write storage; runlog does not map segments
//! there, see [`super::storage`], but detection could be wrong). The default disposition of
//! `SIGBUS` kills the process, and runlog promises never to kill the job it serves.
//!
//! So every mapping of a segment is registered in a fixed table of atomics, and a `SIGBUS`
//! handler, installed once with the first registration, looks the fault address up there
//! without locks (as a signal handler must). A fault inside a registered mapping is repaired:
//! anonymous memory is mapped over the rest of that mapping (from the faulting page on), so the
//! interrupted copy completes harmlessly, and the mapping is marked lost. The writer loads the
//! mark after each copy (one atomic load per frame): a frame copied while the mark was set is
//! not counted as written, and the writer stops (`writer.rs`). Any other `SIGBUS` goes to the
//! disposition that was in place before runlog's: a handler (the job's, or the Rust runtime's
//! stack-overflow handler) is called; the default or ignored disposition is restored and the
//! signal raised again, so a fault of the job's own behaves exactly as without runlog.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Mappings protected at once: segments being written, prepared or closed, across all runs of
/// the process. A mapping that finds the table full is not made (the segment is written with
/// `pwrite` instead).
const SLOTS: usize = 256;

/// One registered mapping. `seq` is odd while the slot changes (a seqlock): the handler skips
/// such a slot, which is safe because the mapping a thread faults in is one it is writing
/// into, and that one does not change while it does.
struct Slot {
    seq: AtomicUsize,
    start: AtomicUsize,
    end: AtomicUsize,
    lost: AtomicBool,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            seq: AtomicUsize::new(0),
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            lost: AtomicBool::new(false),
        }
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// The `SIGBUS` disposition before runlog's handler.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// A mapping registered with the handler, for as long as this lives: drop it before the
/// mapping is unmapped.
#[derive(Debug)]
pub(crate) struct Guard {
    slot: usize,
}

impl Guard {
    /// Register the `len` bytes mapped at `start`. `None` if the handler could not be
    /// installed or the table is full: then the mapping must not be used.
    pub(crate) fn register(start: *const u8, len: usize) -> Option<Guard> {
        if !install() {
            return None;
        }
        let start = start as usize;
        TABLE.iter().enumerate().find_map(|(i, s)| {
            let seq = s.seq.load(Ordering::Relaxed);
            if seq % 2 == 1 || s.end.load(Ordering::Relaxed) != 0 {
                return None;
            }
            // Claim it: odd while it changes.
            s.seq
                .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                .ok()?;
            s.lost.store(false, Ordering::Relaxed);
            s.start.store(start, Ordering::Relaxed);
            s.end.store(start + len, Ordering::Relaxed);
            s.seq.store(seq + 2, Ordering::Release);
            Some(Guard { slot: i })
        })
    }

    /// Whether a page of the mapping was lost (and replaced) since it was registered.
    #[inline]
    pub(crate) fn lost(&self) -> bool {
        // The handler runs on this thread, inside the copy just made: keep the load after it.
        compiler_fence(Ordering::SeqCst);
        TABLE[self.slot].lost.load(Ordering::Relaxed)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        let seq = s.seq.load(Ordering::Relaxed);
        s.seq.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        s.end.store(0, Ordering::Relaxed);
        s.start.store(0, Ordering::Relaxed);
        s.seq.store(seq + 2, Ordering::Release);
    }
}

/// Install the handler (once). `false` if it could not be.
fn install() -> bool {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(page) = usize::try_from(page) {
            if page.is_power_of_two() {
                PAGE.store(page, Ordering::Relaxed);
            }
        }
        // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask, SIG_DFL),
        // filled in below; sigemptyset and sigaction get pointers to live locals, and the
        // handler is an `extern "C"` function of the signature SA_SIGINFO asks for, which is
        // async-signal-safe (atomics, mmap, sigaction, raise and the previous handler).
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_sigbus as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &act, &mut old) == 0 {
                let _ = PREVIOUS.set(old);
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
    INSTALLED.load(Ordering::Acquire)
}

extern "C" fn on_sigbus(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel hands an SA_SIGINFO handler a valid siginfo; si_addr is the faulting
    // address for a fault, and whatever the sender put there otherwise (then it matches no
    // mapping, or at worst repairs a live mapping of ours that is not faulting).
    let addr = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_addr() as usize }
    };
    if addr != 0 && repair(addr) {
        return;
    }
    chain(sig, info, ctx);
}

/// If `addr` lies in a registered mapping: replace its pages from `addr`'s on with anonymous
/// memory and mark it lost.
fn repair(addr: usize) -> bool {
    let page = PAGE.load(Ordering::Relaxed);
    for s in &TABLE {
        let seq = s.seq.load(Ordering::Acquire);
        if seq % 2 == 1 {
            continue;
        }
        let (start, end) = (
            s.start.load(Ordering::Relaxed),
            s.end.load(Ordering::Relaxed),
        );
        fence(Ordering::Acquire);
        if s.seq.load(Ordering::Relaxed) != seq || addr < start || addr >= end {
            continue;
        }
        let from = (addr & !(page - 1)).max(start);
        // SAFETY: `from..end` lies inside a mapping runlog made and still owns (it is
        // registered until just before it is unmapped, and the faulting thread is the one
        // writing into it). Mapping anonymous memory over it invalidates no Rust reference:
        // the writer's copy goes on into the new pages, and unmapping the whole mapping later
        // removes them with it.
        let p = unsafe {
            libc::mmap(
                from as *mut c_void,
                end - from,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        s.lost.store(true, Ordering::Relaxed);
        return true;
    }
    false
}

/// Hand a `SIGBUS` that is not runlog's to the disposition before runlog's.
fn chain(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let prev = PREVIOUS.get();
    let handler = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
        if let Some(p) = prev {
            if p.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous disposition is a handler installed with SA_SIGINFO, so
                // this is its address, of this signature; it is called as the kernel would.
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                    unsafe { std::mem::transmute(handler) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a handler installed without SA_SIGINFO takes the signal number only.
                let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(handler) };
                f(sig);
            }
        }
        return;
    }
    // SAFETY: restoring a disposition (default or ignore) read by sigaction itself, or an
    // all-zero one (SIG_DFL), and raising a signal are async-signal-safe. SIGBUS is blocked
    // while this handler runs, so the raised one is delivered, under the restored disposition,
    // when it returns (a fault would also simply happen again).
    unsafe {
        let act = prev.copied().unwrap_or_else(|| std::mem::zeroed());
        libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut());
        if handler == libc::SIG_DFL {
            libc::raise(libc::SIGBUS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_range_is_found_and_a_dropped_one_is_not() {
        let buf = vec![0u8; 3 * 4096];
        let g = Guard::register(buf.as_ptr(), buf.len()).unwrap();
        let inside = |a: usize| {
            TABLE.iter().any(|s| {
                s.seq.load(Ordering::Acquire) % 2 == 0
                    && (s.start.load(Ordering::Relaxed)..s.end.load(Ordering::Relaxed)).contains(&a)
            })
        };
        let base = buf.as_ptr() as usize;
        assert!(inside(base) && inside(base + buf.len() - 1));
        assert!(!inside(base + buf.len()));
        assert!(!g.lost());
        drop(g);
        assert!(!inside(base));
    }
}
