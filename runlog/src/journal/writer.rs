//! Writing one run: segment files mapped into memory, frames copied into the mapping.
//!
//! Files are reached through the storage seam ([`super::storage`]), whose real implementation
//! holds the mapping's `unsafe`. A log call that returned has copied its frame into a
//! `MAP_SHARED` mapping, so the bytes are in the kernel's page cache and survive the process
//! being killed the next instant; no syscall is made per record. Blocks are allocated (zeros
//! written) before a file is mapped, so a full disk is an error at segment creation. On file
//! systems where that does not reserve the space (copy-on-write), segments are written with
//! `pwrite` instead, and a page of a mapping lost anyway (a segment cut by another process) is
//! caught by runlog's `SIGBUS` handler (`sigbus.rs`): either way a failed write stops the
//! writer, and the job goes on. The next segment of a
//! run is prepared by a background thread before the current one is full, so a rollover on
//! the hot path costs a rename.

use std::fmt::{self, Write as _};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once, TryLockError};

use super::frame::{
    encode_frame, encode_header, seal_frame, FrameType, END_FRAME_LEN, END_PAYLOAD_LEN,
    FRAME_HEADER_LEN, HEADER_LEN, MAX_PAYLOAD,
};
use super::layout::{segment_name, TMP_PREFIX};
use super::payload::{cut_marker, Frame};
use super::payload::{
    encode_begin, encode_end, encode_label, Begin, End, Outcome, REC_FIXED_LEN, REC_FLAGS,
    REC_KV_COUNT, REC_LEVEL, REC_LINE, REC_MODULE_IS_TARGET, REC_NO_MODULE, REC_TRUNCATED, REC_TS,
};
use super::reader::scan_file;
use super::storage::{self, create_dir_private, sync_dir, MapMut, OpenMode, StorageFile};
use crate::config::FsyncPolicy;

/// Size of a run's first segment (later ones double up to the configured segment size), so a
/// short run costs little to start and little disk.
pub(crate) const FIRST_SEGMENT: usize = 256 << 10;
/// Work items a background thread may have queued before the writer does the work itself.
const BG_QUEUE: usize = 4;
/// The longest a rollover waits for the segment being prepared in the background before it
/// makes a small one itself.
const MAX_ROLLOVER_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
/// Marks the temporary name of a segment made on the logging thread (the background thread's
/// may exist at the same time under the plain temporary name).
pub(crate) const SYNC_TMP_TAG: &str = "sync-";
/// After the next segment could not be created, the writer tries again this long after (ns).
const RETRY_CREATE_NS: i64 = 1_000_000_000;
/// The last segment number a file name can hold (six digits).
const MAX_SEQ: u32 = 999_999;
/// Smallest allowed segment size.
pub(crate) const MIN_SEGMENT: usize = 64 << 10;

/// Per-string caps that apply when a record is too large for a whole segment and is cut.
const CUT_NAME_CAP: usize = 4096;
const CUT_VALUE_CAP: usize = 64 << 10;

/// Create a job directory (and the journal directories above it) if missing. Unless the
/// policy is `never`, the names of the directories it creates are made durable (each parent
/// synced): a run's files are only as durable as the directories that hold them.
fn create_job_dir(job_dir: &Path, fsync: FsyncPolicy) -> io::Result<()> {
    // A job directory planted as a link must not take this run's files elsewhere.
    if storage::is_symlink(job_dir) {
        let e = storage::symlink_error();
        return Err(io::Error::new(
            e.kind(),
            format!("{}: {e}", job_dir.display()),
        ));
    }
    if storage::metadata(job_dir).is_ok_and(|m| m.is_dir) {
        return Ok(());
    }
    let mut created = Vec::new();
    let mut p = job_dir;
    while storage::metadata(p).is_err() {
        created.push(p);
        match p.parent() {
            Some(q) => p = q,
            None => break,
        }
    }
    create_dir_private(job_dir)?;
    if fsync != FsyncPolicy::Never {
        // Outermost first: a name is durable once its parent's is.
        for d in created.iter().rev() {
            if let Some(parent) = d.parent() {
                sync_dir(parent)?;
            }
        }
    }
    Ok(())
}

/// Allocate the file's blocks by writing zeros. A full disk is an error here, never a
/// `SIGBUS` later; and the pages it leaves in the page cache make the mapping cheap to fault
/// in (much cheaper than `fallocate`'s unwritten extents, measured: ~25% of the hot path).
fn preallocate(file: &mut dyn StorageFile, len: usize, order: Option<&Order>) -> io::Result<()> {
    static ZEROS: [u8; 64 << 10] = [0u8; 64 << 10];
    let mut left = len;
    while left > 0 {
        if order.is_some_and(Order::abandoned) {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the segment is no longer wanted",
            ));
        }
        let n = left.min(ZEROS.len());
        storage::write_all(file, &ZEROS[..n])?;
        left -= n;
    }
    Ok(())
}

/// One mapped segment file.
struct Segment {
    file: Box<dyn StorageFile>,
    map: Box<dyn MapMut>,
    /// `map.len()`, kept here: the logging path asks for it with every frame, and a call
    /// through the trait object cannot be inlined.
    size: usize,
}

/// A segment created under its temporary name, not yet visible to readers. Dropping it
/// removes the file.
struct Prepared {
    seg: Option<Segment>,
    /// Segment 0's run lock: a handle of its own (see [`prepare_segment`]).
    lock: Option<Box<dyn StorageFile>>,
    off: usize,
    tmp: PathBuf,
    path: PathBuf,
}

impl Prepared {
    fn size(&self) -> usize {
        self.seg.as_ref().map_or(0, |s| s.size)
    }

    /// Give the segment its real name: from now on readers see it.
    fn publish(mut self) -> io::Result<(Segment, usize)> {
        storage::rename(&self.tmp, &self.path)?;
        let seg = self
            .seg
            .take()
            .ok_or_else(|| io::Error::other("segment already published"))?;
        Ok((seg, self.off))
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.seg.take().is_some() {
            let _ = storage::remove_file(&self.tmp);
        }
    }
}

/// A next segment asked of the background thread: wanted, being made, or abandoned (the run
/// ended, or its rollover stopped waiting). Making it stops at the next 64 KiB of
/// preallocation once abandoned, so that the end of a run waits for one write, not for a whole
/// segment of up to `segment-size` zeros.
#[derive(Clone, Debug, Default)]
struct Order(Arc<AtomicU8>);

impl Order {
    const WANTED: u8 = 0;
    const STARTED: u8 = 1;
    const ABANDONED: u8 = 2;

    /// The background thread starts making it; `false` if it is no longer wanted.
    fn start(&self) -> bool {
        self.0
            .compare_exchange(
                Self::WANTED,
                Self::STARTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The writer no longer wants it; `true` if it is being made right now.
    fn abandon(&self) -> bool {
        self.0.swap(Self::ABANDONED, Ordering::AcqRel) == Self::STARTED
    }

    fn abandoned(&self) -> bool {
        self.0.load(Ordering::Acquire) == Self::ABANDONED
    }
}

fn prepare_segment(
    job_dir: &Path,
    run_id: &str,
    seq: u32,
    size: usize,
    first_frame: Option<(FrameType, &[u8])>,
    tmp_tag: &str,
    order: Option<&Order>,
) -> io::Result<Prepared> {
    let name = segment_name(run_id, seq);
    let tmp = job_dir.join(format!("{TMP_PREFIX}{tmp_tag}{name}"));
    let mut file = storage::open(&tmp, OpenMode::CreateNew)?;
    let mut prepared = Prepared {
        seg: None,
        lock: None,
        off: 0,
        tmp,
        path: job_dir.join(&name),
    };
    let tmp = prepared.tmp.clone();
    let cleanup = |e: io::Error| {
        let _ = storage::remove_file(&tmp);
        e
    };
    if seq == 0 {
        // The run lock: held for the run's whole life. Readers that can take it know the
        // writer is gone. It is taken on a handle of its own: a lock belongs to the open file
        // description, so a duplicate of the segment's handle (a mapping, a background sync or
        // close) would keep it after the run has ended, and the run would read as running.
        let lock = storage::open(&tmp, OpenMode::Read).map_err(cleanup)?;
        if !lock.try_lock().map_err(cleanup)? {
            return Err(cleanup(io::Error::other("segment already locked")));
        }
        prepared.lock = Some(lock);
    }
    let mut map = if file.maps_safely() {
        // Blocks are allocated (zeros written) before the file is mapped, so stores into the
        // mapping cannot fault for lack of space (see `storage::RealFs`'s map).
        preallocate(&mut *file, size, order).map_err(cleanup)?;
        file.map_mut(size).map_err(cleanup)?
    } else {
        // Where overwriting a block may need new space (copy-on-write), a full disk would make
        // a store into a mapping raise SIGBUS: write with pwrite, whose errors are handled
        // (the writer stops, and the records are counted as dropped). Writing zeros reserves
        // nothing there, so the cheaper fallocate gives the segment its size (zeros where
        // fallocate is not supported).
        match file.reserve(size as u64) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                preallocate(&mut *file, size, order).map_err(cleanup)?;
            }
            Err(e) => return Err(cleanup(e)),
        }
        storage::pwrite_window(file.try_clone().map_err(cleanup)?, size)
    };
    map.write(0, &encode_header(seq, run_id)).map_err(cleanup)?;
    let mut off = HEADER_LEN;
    if let Some((kind, payload)) = first_frame {
        let n = FRAME_HEADER_LEN + payload.len();
        if off + n + END_FRAME_LEN > size {
            return Err(cleanup(io::Error::other(
                "first frame does not fit in a segment",
            )));
        }
        map.write(off, &encode_frame(kind, payload))
            .map_err(cleanup)?;
        off += n;
    }
    prepared.off = off;
    prepared.seg = Some(Segment { file, map, size });
    Ok(prepared)
}

/// What a segment whose writer stopped after a failed write still holds: where its valid
/// frames end and how many RECORD frames they include. Its header (and, in segment 0, the
/// BEGIN frame), given as `prefix`, is written again if it is no longer there whole.
fn salvage(path: &Path, file: &dyn StorageFile, prefix: &[u8]) -> io::Result<(usize, u64)> {
    match scan_file(path) {
        Ok(scan) if scan.valid_len >= prefix.len() as u64 => {
            let kept = scan
                .frames
                .iter()
                .filter(|f| matches!(f.frame, Ok(Frame::Record(_))))
                .count();
            Ok((scan.valid_len as usize, kept as u64))
        }
        _ => {
            storage::write_all_at(file, prefix, 0)?;
            Ok((prefix.len(), 0))
        }
    }
}

/// Work for the background thread.
enum BgWork {
    /// Prepare the next segment of a run ahead of time.
    Prepare {
        job_dir: PathBuf,
        run_id: String,
        seq: u32,
        size: usize,
        reply: mpsc::SyncSender<io::Result<Prepared>>,
        order: Order,
    },
    /// Unmap a full segment, cut its unused tail and (if `sync`) start making it durable,
    /// so that the commit finds it already on disk.
    /// Make a new run's segment 0 and its directory entry durable (`fsync = commit` and
    /// interval: the start of a run need not wait for the disk).
    SyncStart {
        file: Box<dyn StorageFile>,
        dir: PathBuf,
    },
    Close {
        seg: Segment,
        len: usize,
        sync: bool,
    },
}

fn close_segment(seg: Segment, len: usize, sync: bool) {
    let Segment { file, map, .. } = seg;
    drop(map);
    // A failure only wastes space: zeros read as the end of the frames.
    let _ = file.set_len(len as u64);
    if sync {
        // Errors surface again (and are handled) when the commit syncs the same file.
        let _ = file.sync_data();
    }
}

static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// How many times this process is a fork child of a process that used runlog. A run (and its
/// mapping, and the background threads) belongs to the generation that made it: a forked
/// child never writes into, ends or cuts its parent's segments (that would corrupt them or
/// make the parent's next store raise SIGBUS), and starts background threads of its own.
pub(crate) fn fork_generation() -> u64 {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        // SAFETY: `count_fork_in_child` is async-signal-safe (one atomic add), as a handler
        // run in the child after fork must be; registering has no other precondition.
        unsafe {
            libc::pthread_atfork(None, None, Some(count_fork_in_child));
        }
    });
    FORKS.load(Ordering::Relaxed)
}

/// A background thread of this process (started on first use, again in a fork child);
/// `None` if it could not be started.
fn worker(
    slot: &'static Mutex<Option<(u64, mpsc::SyncSender<BgWork>)>>,
    name: &str,
) -> Option<mpsc::SyncSender<BgWork>> {
    let generation = fork_generation();
    // Held only for a moment, so a few tries suffice; in a fork child it may have been taken
    // by a thread that does not exist there, and then it is never released: do without.
    let mut slot = (0..1000).find_map(|_| match slot.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => {
            std::thread::yield_now();
            None
        }
    })?;
    if let Some((g, tx)) = slot.as_ref() {
        if *g == generation {
            return Some(tx.clone());
        }
    }
    // Bounded: queued work holds open files (a segment being closed holds its descriptor and
    // mapping), so when the thread falls behind the writer does the work itself instead.
    let (tx, rx) = mpsc::sync_channel::<BgWork>(BG_QUEUE);
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for work in rx {
                match work {
                    BgWork::Prepare {
                        job_dir,
                        run_id,
                        seq,
                        size,
                        reply,
                        order,
                    } => {
                        // Marked started here, so that the end of the run knows whether to
                        // wait for it.
                        if !order.start() {
                            continue;
                        }
                        // If the run has ended or stopped waiting meanwhile, making it stops
                        // early, or the reply is dropped and so is the file.
                        let made =
                            prepare_segment(&job_dir, &run_id, seq, size, None, "", Some(&order));
                        let _ = reply.send(made);
                    }
                    BgWork::Close { seg, len, sync } => close_segment(seg, len, sync),
                    BgWork::SyncStart { file, dir } => {
                        // Errors surface again when the commit syncs the same file and dir.
                        let _ = file.sync_data();
                        let _ = sync_dir(&dir);
                    }
                }
            }
        });
    if spawned.is_err() {
        return None;
    }
    *slot = Some((generation, tx.clone()));
    Some(tx)
}

/// Prepares next segments (kept apart from syncing, so a slow `fdatasync` never delays them).
fn preparer() -> Option<mpsc::SyncSender<BgWork>> {
    static SLOT: Mutex<Option<(u64, mpsc::SyncSender<BgWork>)>> = Mutex::new(None);
    worker(&SLOT, "runlog-prepare")
}

/// Unmaps, cuts and syncs full segments.
fn closer() -> Option<mpsc::SyncSender<BgWork>> {
    static SLOT: Mutex<Option<(u64, mpsc::SyncSender<BgWork>)>> = Mutex::new(None);
    worker(&SLOT, "runlog-close")
}

/// A bounded writer over a byte slice. `fmt::Write` copies what fits (cut at a char boundary)
/// and then reports an error.
struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
    /// The end of space for the field being written (a per-field cap when cutting).
    limit: usize,
    full: bool,
    /// A field was cut to its cap (when cutting).
    cut_any: bool,
}

impl Cursor<'_> {
    fn room(&self) -> usize {
        self.limit - self.pos
    }
    fn put(&mut self, b: &[u8]) -> bool {
        if b.len() > self.room() {
            self.full = true;
            return false;
        }
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
        true
    }
    fn put_u32(&mut self, v: u32) -> bool {
        self.put(&v.to_le_bytes())
    }
    /// Run `f` with the room capped at `cap` more bytes (when cutting). Hitting only that cap
    /// cuts the field (`cut_any`) but leaves the cursor usable for the next fields.
    fn capped(&mut self, cap: Option<usize>, f: impl FnOnce(&mut Self)) {
        let outer = self.limit;
        if let Some(cap) = cap {
            self.limit = self.limit.min(self.pos + cap);
        }
        f(self);
        let capped_only = self.full && self.pos < outer;
        self.limit = outer;
        if cap.is_some() && capped_only {
            self.full = false;
            self.cut_any = true;
        }
    }
    /// A length-prefixed string; when `cut` is set it is cut to `cap` and the room left.
    fn put_lp(&mut self, s: &str, cut: Option<usize>) -> bool {
        let start = self.pos;
        if !self.put_u32(0) {
            return false;
        }
        self.capped(cut, |c| {
            let _ = c.write_str(s);
        });
        self.finish_lp(start, cut.is_some())
    }
    fn finish_lp(&mut self, start: usize, cutting: bool) -> bool {
        if self.full && !cutting {
            return false;
        }
        let n = (self.pos - start - 4) as u32;
        self.buf[start..start + 4].copy_from_slice(&n.to_le_bytes());
        true
    }
}

impl fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.room();
        if s.len() <= room {
            self.buf[self.pos..self.pos + s.len()].copy_from_slice(s.as_bytes());
            self.pos += s.len();
            return Ok(());
        }
        let mut n = room;
        while n > 0 && !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.pos..self.pos + n].copy_from_slice(&s.as_bytes()[..n]);
        self.pos += n;
        self.full = true;
        Err(fmt::Error)
    }
}

/// The part of a cut message's room kept for its tail.
const CUT_TAIL_SHARE: usize = 4;
/// Room kept for the marker between a cut message's head and tail.
const CUT_MARKER_ROOM: usize = 64;

/// Formats a message into the cursor's room, keeping its head and (in a ring of the last
/// `tail_cap` bytes) its tail; what passes between them is counted.
struct HeadTail<'c, 'b> {
    c: &'c mut Cursor<'b>,
    head_limit: usize,
    in_tail: bool,
    ring: std::collections::VecDeque<u8>,
    tail_cap: usize,
    cut: u64,
}

impl fmt::Write for HeadTail<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        if !self.in_tail {
            let room = self.head_limit - self.c.pos;
            if rest.len() <= room {
                self.c.buf[self.c.pos..self.c.pos + rest.len()].copy_from_slice(rest.as_bytes());
                self.c.pos += rest.len();
                return Ok(());
            }
            let mut n = room;
            while n > 0 && !rest.is_char_boundary(n) {
                n -= 1;
            }
            self.c.buf[self.c.pos..self.c.pos + n].copy_from_slice(&rest.as_bytes()[..n]);
            self.c.pos += n;
            rest = &rest[n..];
            self.in_tail = true;
        }
        let b = rest.as_bytes();
        // Only the last `tail_cap` bytes can stay.
        let skip = b.len().saturating_sub(self.tail_cap);
        self.cut += skip as u64;
        let b = &b[skip..];
        let over = (self.ring.len() + b.len()).saturating_sub(self.tail_cap);
        self.ring.drain(..over);
        self.cut += over as u64;
        self.ring.extend(b);
        Ok(())
    }
}

/// Write a message that may not fit (a record being cut): if it does not, keep its head and
/// its tail (a [`CUT_TAIL_SHARE`]th of the room) around [`cut_marker`], all cut at UTF-8
/// boundaries, and mark the cursor as cut.
fn write_head_and_tail(c: &mut Cursor<'_>, args: &fmt::Arguments<'_>) {
    let room = c.room();
    if room < 4 * CUT_MARKER_ROOM {
        let _ = c.write_fmt(*args);
        return;
    }
    let tail_cap = room / CUT_TAIL_SHARE;
    let start = c.pos;
    let mut w = HeadTail {
        head_limit: c.pos + room - tail_cap - CUT_MARKER_ROOM,
        c,
        in_tail: false,
        ring: std::collections::VecDeque::new(),
        tail_cap,
        cut: 0,
    };
    let _ = match args.as_str() {
        Some(s) => w.write_str(s),
        None => w.write_fmt(*args),
    };
    let HeadTail { c, ring, cut, .. } = w;
    let mut tail: Vec<u8> = ring.into();
    if cut == 0 && c.pos - start + tail.len() <= room {
        // It all fits after all: the whole message, uncut.
        let n = tail.len();
        c.buf[c.pos..c.pos + n].copy_from_slice(&tail);
        c.pos += n;
        return;
    }
    // The tail starts at a character: drop a partial one.
    let partial = tail.iter().take_while(|b| (**b & 0xc0) == 0x80).count();
    tail.drain(..partial);
    let marker = cut_marker(cut + partial as u64);
    let m = marker.len().min(CUT_MARKER_ROOM);
    c.buf[c.pos..c.pos + m].copy_from_slice(&marker.as_bytes()[..m]);
    c.pos += m;
    let n = tail.len().min(c.limit - c.pos);
    c.buf[c.pos..c.pos + n].copy_from_slice(&tail[..n]);
    c.pos += n;
    c.cut_any = true;
}

struct KvWriter<'c, 'b> {
    c: &'c mut Cursor<'b>,
    cut: bool,
    count: u16,
    failed: bool,
}

impl<'kvs> log::kv::VisitSource<'kvs> for KvWriter<'_, '_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let mark = self.c.pos;
        let ok = self.count < u16::MAX
            && self
                .c
                .put_lp(key.as_str(), self.cut.then_some(CUT_NAME_CAP))
            && !self.c.full
            && {
                let start = self.c.pos;
                if self.c.put_u32(0) {
                    self.c.capped(self.cut.then_some(CUT_VALUE_CAP), |c| {
                        let _ = write!(c, "{value}");
                    });
                    self.c.finish_lp(start, self.cut)
                } else {
                    false
                }
            };
        if ok {
            self.count += 1;
            if self.c.full {
                // Cut: keep this pair, stop adding more.
                return Err(log::kv::Error::msg("full"));
            }
            Ok(())
        } else {
            self.c.pos = mark;
            self.failed = true;
            Err(log::kv::Error::msg("full"))
        }
    }
}

/// Encode a record payload into `buf`. Returns the payload length, or `None` if it does not
/// fit (only when `cut` is false; with `cut` it always fits, cutting strings as needed).
fn encode_record_into(
    buf: &mut [u8],
    ts_ns: i64,
    rec: &log::Record<'_>,
    cut: bool,
) -> Option<usize> {
    if buf.len() < REC_FIXED_LEN + 16 {
        return None;
    }
    let limit = buf.len();
    let mut c = Cursor {
        buf,
        pos: REC_FIXED_LEN,
        limit,
        full: false,
        cut_any: false,
    };
    let target = rec.target();
    let name_cap = cut.then_some(CUT_NAME_CAP);
    let mut flags = 0u8;
    match rec.module_path() {
        None => flags |= REC_NO_MODULE,
        Some(m) if m == target => flags |= REC_MODULE_IS_TARGET,
        Some(_) => {}
    }
    if !c.put_lp(target, name_cap) {
        return None;
    }
    if flags & (REC_NO_MODULE | REC_MODULE_IS_TARGET) == 0
        && !c.put_lp(rec.module_path().unwrap_or(""), name_cap)
    {
        return None;
    }
    if !c.put_lp(rec.file().unwrap_or(""), name_cap) {
        return None;
    }
    // When cutting, key-values may take at most half of what is left: the message comes too.
    let outer = c.limit;
    if cut {
        c.limit = c.pos + (outer - c.pos) / 2;
    }
    let mut kvs = KvWriter {
        c: &mut c,
        cut,
        count: 0,
        failed: false,
    };
    let _ = rec.key_values().visit(&mut kvs);
    let (kv_count, kv_failed) = (kvs.count, kvs.failed);
    if kv_failed && !cut {
        return None;
    }
    if cut {
        c.limit = outer;
        // Key-values that reached their half of the room were cut or left out.
        c.cut_any |= c.full;
        c.full = false;
    }
    if !c.full {
        let args = rec.args();
        if cut {
            write_head_and_tail(&mut c, args);
        } else {
            let _ = match args.as_str() {
                Some(s) => c.write_str(s),
                None => c.write_fmt(*args),
            };
        }
    }
    if c.full {
        if !cut {
            return None;
        }
        flags |= REC_TRUNCATED;
    } else if kv_failed || c.cut_any {
        flags |= REC_TRUNCATED;
    }
    let len = c.pos;
    let b = c.buf;
    b[REC_TS..REC_TS + 8].copy_from_slice(&ts_ns.to_le_bytes());
    b[REC_LEVEL] = rec.level() as u8;
    b[REC_FLAGS] = flags;
    b[REC_KV_COUNT..REC_KV_COUNT + 2].copy_from_slice(&kv_count.to_le_bytes());
    b[REC_LINE..REC_LINE + 4].copy_from_slice(&rec.line().unwrap_or(0).to_le_bytes());
    Some(len)
}

/// Size of a thread's encoding buffer; a larger record grows it (up to one whole frame) for
/// as long as it is being written.
pub(crate) const SCRATCH_FRAME: usize = 64 << 10;

/// Encode a whole, sealed RECORD frame into `scratch`, whose length is used as it is (its old
/// bytes are overwritten, not cleared). The job's `Display` code runs here: callers hold no
/// lock. A record larger than [`MAX_PAYLOAD`] is cut and flagged. Returns the frame length,
/// 0 if nothing could be encoded.
pub(crate) fn encode_record_frame(
    scratch: &mut Vec<u8>,
    ts_ns: i64,
    rec: &log::Record<'_>,
) -> usize {
    if scratch.len() < SCRATCH_FRAME {
        scratch.resize(SCRATCH_FRAME, 0);
    }
    let whole = FRAME_HEADER_LEN + MAX_PAYLOAD;
    let mut n = encode_record_into(&mut scratch[FRAME_HEADER_LEN..], ts_ns, rec, false);
    if n.is_none() {
        // Larger than the buffer: once more with room for the largest frame (the message is
        // formatted a second time), cutting what still does not fit.
        let cut = scratch.len() >= whole;
        scratch.resize(whole, 0);
        n = encode_record_into(&mut scratch[FRAME_HEADER_LEN..], ts_ns, rec, cut);
        if n.is_none() && !cut {
            n = encode_record_into(&mut scratch[FRAME_HEADER_LEN..], ts_ns, rec, true);
        }
    }
    match n {
        Some(n) => {
            seal_frame(&mut scratch[..FRAME_HEADER_LEN + n], FrameType::Record, n);
            FRAME_HEADER_LEN + n
        }
        None => 0,
    }
}

/// The next segment, asked of the background thread.
struct Pending {
    seq: u32,
    rx: mpsc::Receiver<io::Result<Prepared>>,
    order: Order,
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Not prepared yet: do not prepare it at all, or stop making it.
        self.order.abandon();
    }
}

/// Writer settings.
#[derive(Clone, Debug)]
pub(crate) struct WriterOptions {
    pub(crate) segment_size: usize,
    pub(crate) fsync: FsyncPolicy,
}

/// Writes the frames of one run.
pub(crate) struct RunWriter {
    job_dir: PathBuf,
    run_id: String,
    /// Segment 0, opened on its own to hold the run lock: no other handle shares its open
    /// file description, so the lock ends with this handle.
    lock: Box<dyn StorageFile>,
    cur: Segment,
    seq: u32,
    off: usize,
    next_size: usize,
    opts: WriterOptions,
    /// Earlier segments and their used lengths: the commit makes sure they are cut (the
    /// background thread may not have had time before the process exits) and, under
    /// `fsync = commit`, durable.
    closed: Vec<(u32, usize)>,
    last_sync_ns: i64,
    synced_upto: usize,
    /// Records written.
    pub(crate) records: u64,
    /// Of those, the ones in the current segment.
    cur_records: u64,
    /// The BEGIN frame, to put back if segment 0 is cut under the writer.
    begin_frame: Vec<u8>,
    /// A write into the current segment failed (a page of its mapping was lost, `pwrite`
    /// failed): the writer stopped, and the end looks at what the segment still holds.
    salvage: bool,
    /// Records that could not be written.
    pub(crate) dropped: u64,
    /// Set after an I/O error: nothing more is written to this run.
    broken: bool,
    /// While the next segment cannot be created: do not retry before this time.
    retry_at_ns: i64,
    /// The next segment, being prepared in the background: (its seq, where it arrives).
    pending: Option<Pending>,
    /// First error, to be reported once.
    pub(crate) error: Option<io::Error>,
}

impl RunWriter {
    /// Create segment 0 of a run (with its BEGIN frame) in `job_dir`.
    pub(crate) fn create(
        job_dir: &Path,
        begin: &Begin,
        opts: WriterOptions,
    ) -> io::Result<RunWriter> {
        create_job_dir(job_dir, opts.fsync)?;
        let first = FIRST_SEGMENT.min(opts.segment_size).max(MIN_SEGMENT);
        let payload = encode_begin(begin);
        let begin_frame = encode_frame(FrameType::Begin, &payload);
        let mut prepared = prepare_segment(
            job_dir,
            &begin.run_id,
            0,
            first,
            Some((FrameType::Begin, &payload)),
            "",
            None,
        )?;
        let lock = prepared
            .lock
            .take()
            .ok_or_else(|| io::Error::other("segment 0 was made without its run lock"))?;
        let (seg, off) = prepared.publish()?;
        let now = begin.start_ns;
        let mut w = RunWriter {
            job_dir: job_dir.to_path_buf(),
            run_id: begin.run_id.clone(),
            lock,
            cur: seg,
            seq: 0,
            off,
            next_size: (first * 2).min(opts.segment_size.max(first)),
            opts,
            closed: Vec::new(),
            last_sync_ns: now,
            synced_upto: 0,
            records: 0,
            cur_records: 0,
            begin_frame,
            salvage: false,
            dropped: 0,
            broken: false,
            retry_at_ns: 0,
            pending: None,
            error: None,
        };
        match w.opts.fsync {
            FsyncPolicy::Never => {}
            FsyncPolicy::Always => {
                // Make the new file's directory entry durable with it, before the first record.
                w.sync_current(off);
                if let Err(e) = sync_dir(job_dir) {
                    w.fail(e);
                }
            }
            FsyncPolicy::Commit | FsyncPolicy::Interval(_) => {
                let work = w.cur.file.try_clone().map(|file| BgWork::SyncStart {
                    file,
                    dir: job_dir.to_path_buf(),
                });
                let sent = match (work, closer()) {
                    (Ok(work), Some(bg)) => bg.try_send(work).is_ok(),
                    _ => false,
                };
                if !sent {
                    w.sync_current(off);
                    if let Err(e) = sync_dir(job_dir) {
                        w.fail(e);
                    }
                }
            }
        }
        Ok(w)
    }

    fn fail(&mut self, e: io::Error) {
        self.broken = true;
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Before the end, and before each rollover: whether another process cut the current
    /// segment below what was written without any store faulting (the cut fell in the page
    /// last written into, or came after the last write). Then the writer stops and the end
    /// keeps what the segment still holds, as after a lost page. One `fstat`.
    pub(crate) fn check_cut(&mut self) -> bool {
        // After a sync error nothing is salvaged: the run must read as crashed.
        if self.salvage || self.broken {
            return false;
        }
        match self.cur.file.len() {
            Ok(len) if len < self.off as u64 => {
                self.lose_segment(io::Error::other(format!(
                    "the segment was cut to {len} bytes by another process while it was written"
                )));
                true
            }
            _ => false,
        }
    }

    /// A write into the current segment failed: stop writing, and at the end keep what the
    /// segment still holds (see [`salvage`]).
    fn lose_segment(&mut self, e: io::Error) {
        let path = self.job_dir.join(segment_name(&self.run_id, self.seq));
        let e = io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        self.salvage = true;
        self.fail(e);
    }

    fn sync_current(&mut self, upto: usize) {
        if upto > self.synced_upto {
            let from = self.synced_upto;
            match self.cur.map.flush_range(from, upto - from) {
                Ok(()) => self.synced_upto = upto,
                Err(e) => self.fail(e),
            }
        }
    }

    fn after_write(&mut self, ts_ns: i64) {
        match self.opts.fsync {
            FsyncPolicy::Always => self.sync_current(self.off),
            FsyncPolicy::Interval(d) => {
                // Timed by the frames' own (wall) clock, read once per record anyway: a second,
                // monotonic reading would cost the hot path. A frame time before the last sync
                // is the clock stepping back (NTP, a VM restored): sync now and count from
                // there, so that a step back never stops the syncing.
                if ts_ns < self.last_sync_ns
                    || ts_ns.saturating_sub(self.last_sync_ns) >= d.as_nanos() as i64
                {
                    self.last_sync_ns = ts_ns;
                    self.sync_current(self.off);
                }
            }
            FsyncPolicy::Commit | FsyncPolicy::Never => {}
        }
    }

    /// Space for frames in the current segment (the end-frame reserve excluded).
    fn space(&self) -> usize {
        self.cur.size - END_FRAME_LEN - self.off
    }

    /// Ask the background thread for the next segment, so the rollover does not wait for it.
    fn request_next(&mut self) {
        let Some(bg) = preparer() else { return };
        let (reply, rx) = mpsc::sync_channel(1);
        let order = Order::default();
        let work = BgWork::Prepare {
            job_dir: self.job_dir.clone(),
            run_id: self.run_id.clone(),
            seq: self.seq + 1,
            size: self.next_size,
            reply,
            order: order.clone(),
        };
        if bg.try_send(work).is_ok() {
            self.pending = Some(Pending {
                seq: self.seq + 1,
                rx,
                order,
            });
        }
    }

    /// Start the next segment. On failure the current one stays in use (its reserve still
    /// holds the end frame) and `false` is returned.
    fn rollover(&mut self, now_ns: i64, min_size: usize) -> bool {
        // A retry time more than its one second ahead is a clock that stepped back: retry now.
        if now_ns < self.retry_at_ns && self.retry_at_ns - now_ns <= RETRY_CREATE_NS {
            return false;
        }
        // A cut of this segment by another process that no store noticed (it fell in the
        // page last written into) must be found before the run moves on: in a segment left
        // behind it would go unnoticed, its lost records neither kept nor counted. One `fstat`
        // per rollover; then the writer stops as after a lost page.
        if self.check_cut() {
            return false;
        }
        let next = self.seq + 1;
        if next > MAX_SEQ {
            if self.error.is_none() {
                self.error = Some(io::Error::other("run has the maximum number of segments"));
            }
            return false;
        }
        let ready = match self.pending.take() {
            // Normally long ready. Otherwise wait a little (it is being made right now), but
            // not long: the thread may be busy with another run's segment.
            Some(p) if p.seq == next => p.rx.recv_timeout(MAX_ROLLOVER_WAIT).ok(),
            _ => None,
        };
        let prepared = match ready {
            Some(Ok(p)) if p.size() >= min_size => Ok(p),
            Some(Err(e)) => Err(e),
            _ => {
                // Not ready (its file, under another temporary name, is removed when it
                // arrives to nobody): make a small one here, cheap to create.
                drop(ready);
                let size = FIRST_SEGMENT.min(self.next_size).max(min_size);
                prepare_segment(
                    &self.job_dir,
                    &self.run_id,
                    next,
                    size,
                    None,
                    SYNC_TMP_TAG,
                    None,
                )
            }
        };
        match prepared.and_then(Prepared::publish) {
            Ok((seg, off)) => {
                if matches!(
                    self.opts.fsync,
                    FsyncPolicy::Always | FsyncPolicy::Interval(_)
                ) {
                    // The new file's name must be as durable as the records going into it.
                    if let Err(e) = sync_dir(&self.job_dir) {
                        self.fail(e);
                    }
                }
                let old = std::mem::replace(&mut self.cur, seg);
                let old_len = self.off;
                self.seq = next;
                self.off = off;
                self.cur_records = 0;
                self.synced_upto = 0;
                self.next_size =
                    (self.next_size * 2).min(self.opts.segment_size.max(self.next_size));
                self.close_old(old, old_len);
                true
            }
            Err(e) => {
                // Retry at most once a second while the disk stays full.
                self.retry_at_ns = now_ns.saturating_add(RETRY_CREATE_NS);
                if self.error.is_none() {
                    self.error = Some(e);
                }
                false
            }
        }
    }

    fn close_old(&mut self, old: Segment, len: usize) {
        // Remembered by number, not by open file: a long run must not hold a descriptor per
        // segment (it would run the job out of descriptors).
        self.closed.push((self.seq - 1, len));
        if matches!(
            self.opts.fsync,
            FsyncPolicy::Always | FsyncPolicy::Interval(_)
        ) {
            let from = self.synced_upto.min(len);
            if let Err(e) = old.map.flush_range(from, len - from) {
                self.fail(e);
            }
        }
        let sync = matches!(self.opts.fsync, FsyncPolicy::Commit);
        let work = BgWork::Close {
            seg: old,
            len,
            sync,
        };
        let refused = match closer() {
            Some(bg) => match bg.try_send(work) {
                Ok(()) => None,
                Err(mpsc::TrySendError::Full(w) | mpsc::TrySendError::Disconnected(w)) => Some(w),
            },
            None => Some(work),
        };
        if let Some(BgWork::Close { seg, len, .. }) = refused {
            // Unmap and cut here; the end of the run syncs it (it syncs every segment).
            close_segment(seg, len, false);
        }
    }

    /// Append a RECORD frame already encoded and sealed by [`encode_record_frame`].
    pub(crate) fn append_record_frame(&mut self, ts_ns: i64, frame: &[u8]) {
        if self.broken {
            self.dropped += 1;
            return;
        }
        if frame.len() > self.space()
            && !self.rollover(ts_ns, HEADER_LEN + frame.len() + END_FRAME_LEN)
        {
            self.dropped += 1;
            return;
        }
        let start = self.off;
        if let Err(e) = self.cur.map.write(start, frame) {
            // Not written (not all of it, at least): not acknowledged.
            self.dropped += 1;
            self.lose_segment(e);
            return;
        }
        self.off += frame.len();
        self.records += 1;
        self.cur_records += 1;
        self.after_write(ts_ns);
        // Early (an eighth in), so the next segment is ready long before it is needed; not at
        // once, so that a short run does not make a second segment it never uses.
        if self.pending.is_none() && self.off > self.cur.size / 8 && ts_ns >= self.retry_at_ns {
            self.request_next();
        }
    }

    /// Write a small frame built in memory (labels).
    fn write_small(&mut self, ts_ns: i64, kind: FrameType, payload: &[u8]) -> bool {
        if self.broken {
            return false;
        }
        let n = FRAME_HEADER_LEN + payload.len();
        if payload.len() > MAX_PAYLOAD {
            return false;
        }
        if n > self.space() && !self.rollover(ts_ns, HEADER_LEN + n + END_FRAME_LEN) {
            return false;
        }
        let start = self.off;
        if let Err(e) = self.cur.map.write(start, &encode_frame(kind, payload)) {
            self.lose_segment(e);
            return false;
        }
        self.off += n;
        self.after_write(ts_ns);
        true
    }

    /// Write a label frame.
    pub(crate) fn write_label(&mut self, ts_ns: i64, key: &str, value: &str) -> bool {
        self.write_small(ts_ns, FrameType::Label, &encode_label(key, value))
    }

    /// Write the end frame into the reserve and close the run. Returns the segments' paths.
    pub(crate) fn finish(mut self, end_ns: i64, outcome: Outcome) -> io::Result<()> {
        // An unused prepared segment is removed when its channel is dropped. One the background
        // thread is making right now is abandoned (it stops within one 64 KiB write and removes
        // its file) and waited for: the process may exit right after this run, and the file
        // would stay (preallocated, up to `segment-size`).
        if let Some(p) = self.pending.take() {
            if p.order.abandon() {
                drop(p.rx.recv());
            }
        }
        if let Some(e) = self.error.take().filter(|_| self.broken && !self.salvage) {
            return Err(e);
        }
        let kind = if outcome == Outcome::Cancelled {
            FrameType::Cancel
        } else {
            FrameType::Commit
        };
        let sync = !matches!(self.opts.fsync, FsyncPolicy::Never);
        for &(seq, len) in &self.closed {
            // Usually already done by the background thread: then this changes nothing.
            let path = self.job_dir.join(segment_name(&self.run_id, seq));
            let f = storage::open(&path, OpenMode::Write)?;
            let _ = f.set_len(len as u64);
            if sync && kind == FrameType::Commit {
                f.sync_data()?;
            }
        }
        // The segment is cut to its final length (the end frame's reserve still zeros, so
        // writing it needs no new space), and that and every record written through the
        // mapping are made durable (one `fdatasync`: unmapping leaves the pages dirty in the
        // page cache) before the end frame is written. So a power loss can never leave a run
        // that reads as ended but lacks some of its records, nor keep the end frame but undo
        // the cut, which would leave the preallocated zeros after it, never synced, to come
        // back as garbage behind an ended run.
        let n = FRAME_HEADER_LEN + END_PAYLOAD_LEN;
        let Segment { file, map, .. } = self.cur;
        drop(map);
        if self.salvage {
            let path = self.job_dir.join(segment_name(&self.run_id, self.seq));
            let mut prefix = encode_header(self.seq, &self.run_id).to_vec();
            if self.seq == 0 {
                prefix.extend_from_slice(&self.begin_frame);
            }
            let (off, kept) = salvage(&path, &*file, &prefix)?;
            // Records the segment no longer holds were acknowledged, then lost with the cut:
            // counted as dropped, so that the end frame's counts match what is there.
            let lost = self.cur_records.saturating_sub(kept);
            self.records -= lost;
            self.dropped += lost;
            self.off = off;
        }
        let payload = encode_end(&End {
            end_ns,
            outcome,
            records: self.records,
            dropped: self.dropped,
        });
        let start = self.off;
        let _ = file.set_len((start + n) as u64);
        if sync {
            file.sync_data()?;
        }
        storage::write_all_at(&*file, &encode_frame(kind, &payload), start as u64)?;
        self.off += n;
        if sync {
            file.sync_data()?;
            sync_dir(&self.job_dir)?;
        }
        drop(file);
        drop(self.lock);
        Ok(())
    }

    /// Remove every segment of this run (after a CANCEL frame was made durable).
    pub(crate) fn cancel(self, end_ns: i64) -> io::Result<()> {
        let job_dir = self.job_dir.clone();
        let run_id = self.run_id.clone();
        let last = self.seq;
        let finished = self.finish(end_ns, Outcome::Cancelled);
        for seq in 0..=last {
            match storage::remove_file(&job_dir.join(segment_name(&run_id, seq))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::layout::new_run_id;
    use crate::journal::reader::{writer_state, Writer};

    #[test]
    fn the_run_lock_ends_with_its_own_handle_while_other_handles_of_segment_0_live_on() {
        // A background sync or close of segment 0 can outlive the run; when such a handle
        // shared the lock, a finished run read as running until the background queue caught up.
        for fsync in [FsyncPolicy::Never, FsyncPolicy::Commit] {
            let dir = tempfile::tempdir().unwrap();
            let job_dir = dir.path().join("job");
            let start_ns = 1_800_000_000_000_000_000;
            let begin = Begin {
                start_ns,
                pid: std::process::id(),
                run_id: new_run_id(start_ns),
                job: "job".into(),
                host: "host".into(),
            };
            let opts = WriterOptions {
                segment_size: MIN_SEGMENT,
                fsync,
            };
            let w = RunWriter::create(&job_dir, &begin, opts).unwrap();
            let seg0 = job_dir.join(segment_name(&begin.run_id, 0));
            assert_eq!(writer_state(&seg0), Writer::Alive, "{fsync:?}");
            let RunWriter { lock, cur, .. } = w;
            let other = cur.file.try_clone().unwrap();
            drop(lock);
            assert_eq!(
                writer_state(&seg0),
                Writer::Dead,
                "{fsync:?}: segment 0's file, its mapping and a clone of it are open"
            );
            drop((cur, other));
        }
    }
}
