//! The storage seam: every file operation of the journal (writer, reader, recovery and
//! retention, `.shipped` and the shipper's state) goes through [`Storage`].
//!
//! In production that is [`RealFs`], the operating system's files. Tests [`mount`] another
//! implementation over a directory — [`FaultFs`](super::faultfs::FaultFs), which fails the Nth
//! write or sync, runs out of space, writes short, and keeps written data apart from durable
//! data so that a "power loss" can be taken at any sync — and every path under that directory
//! is served by it, from any thread, while the mount guard lives. With nothing mounted the
//! lookup is one atomic load.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{DirBuilderExt, FileExt as _, OpenOptionsExt, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::SystemTime;

use memmap2::{MmapMut, MmapOptions};

use super::sigbus;

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    Write,
    /// Read and write a new file (mode `0600`, `0660` in a shared journal); it must not exist.
    CreateNew,
    /// Write a file (mode `0600` if created, `0660` in a shared journal), created or truncated.
    CreateTruncate,
}

/// What [`Storage::metadata`] tells of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Length in bytes (files).
    pub len: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Last modification time, when known.
    pub modified: Option<SystemTime>,
}

/// A file system, as the journal uses it.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Open a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>>;
    /// Rename a file, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Remove a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Create a directory and its parents, mode `0700`; in a shared journal (a parent that is
    /// setgid and group-writable, see [`super::shared`]) mode `02770`.
    fn create_dir_private(&self, path: &Path) -> io::Result<()>;
    /// Make a directory's entries (files created, renamed or removed in it) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// The names in a directory.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// What a path is (following symbolic links).
    fn metadata(&self, path: &Path) -> io::Result<Meta>;
    /// Whether the path itself is a symbolic link (runlog follows none inside a journal).
    fn is_symlink(&self, _path: &Path) -> bool {
        false
    }
}

/// An open file.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Write at the file's position (which starts at 0); may write less than `buf`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Write at `offset`, leaving the file's position as it is; may write less than `buf`.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Read at `offset`; 0 at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Append the file's bytes from `offset` to `out`, at most `max` bytes.
    fn read_into(&self, offset: u64, max: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let mut at = offset;
        let mut chunk = vec![0u8; 256 << 10];
        let mut got = 0u64;
        while got < max {
            let want = chunk.len().min((max - got).min(usize::MAX as u64) as usize);
            let n = match self.read_at(&mut chunk[..want], at) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
            at += n as u64;
            got += n as u64;
        }
        Ok(())
    }
    /// The file's length.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// Cut or extend the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Make the file's data (and its length) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Take the exclusive lock without waiting: `Ok(false)` if another holds a lock.
    fn try_lock(&self) -> io::Result<bool>;
    /// Take a shared lock without waiting: `Ok(false)` if another holds the exclusive one.
    fn try_lock_shared(&self) -> io::Result<bool>;
    /// Release this file's lock.
    fn unlock(&self) -> io::Result<()>;
    /// Another handle to the same open file (sharing its lock).
    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>>;
    /// Map the first `len` bytes for writing (shared with the file). The file must hold
    /// `len` bytes already, allocated. Where a mapping cannot be protected (see
    /// `journal/sigbus.rs`), a [`pwrite_window`] instead.
    fn map_mut(&self, len: usize) -> io::Result<Box<dyn MapMut>>;
    /// Whether the file system keeps the space that writing zeros allocated, so that stores
    /// into a mapping of the file never need more. False on copy-on-write, compressing or
    /// thin-provisioned storage and on file systems runlog does not know: there a full disk
    /// turns a store into a mapping into `SIGBUS`, so segments are written with `pwrite`.
    fn maps_safely(&self) -> bool {
        true
    }
    /// Give the file `len` bytes (reading as zeros) without writing them (`fallocate`).
    /// `Unsupported` if it cannot.
    fn reserve(&self, _len: u64) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// A writable window on a file's first bytes: a shared mapping, or, where storing into one
/// could raise `SIGBUS`, `pwrite` ([`pwrite_window`]). Either way a write that returned is in
/// the kernel's page cache.
pub trait MapMut: Send + Sync + fmt::Debug {
    /// Its length.
    fn len(&self) -> usize;
    /// Whether it is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copy `data` in at `offset` (`offset + data.len() <= len()`, else nothing is written).
    /// An error means the bytes may not have reached the file (a page of the mapping was lost,
    /// or `pwrite` failed): the window must not be written again.
    fn write(&mut self, offset: usize, data: &[u8]) -> io::Result<()>;
    /// Make `len` bytes from `offset` durable.
    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()>;
}

/// Write all of `buf`, retrying short writes.
pub fn write_all(f: &mut dyn StorageFile, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match f.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n.min(buf.len())..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Write all of `buf` at `offset`, retrying short writes.
pub fn write_all_at(f: &dyn StorageFile, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match f.write_at(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                let n = n.min(buf.len());
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Read the whole file from `offset` into `out` (cleared first), at most `max` bytes.
pub fn read_to_end_bounded(
    f: &dyn StorageFile,
    offset: u64,
    max: u64,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    out.clear();
    // Reserve what the file holds now (bounded), so reading does not grow the vector by
    // doubling past it.
    let len = f.len().unwrap_or(0).saturating_sub(offset).min(max);
    out.reserve(len as usize);
    f.read_into(offset, max, out)
}

/// The operating system's files.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

/// A mapping, registered with the `SIGBUS` handler for as long as it lives.
#[derive(Debug)]
struct RealMap {
    // Declared first, so dropped first: the registration ends before the unmapping.
    guard: sigbus::Guard,
    map: MmapMut,
}

impl Storage for RealFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let mut o = OpenOptions::new();
        match mode {
            OpenMode::Read => o.read(true),
            OpenMode::Write => o.read(true).write(true),
            OpenMode::CreateNew => o.read(true).write(true).create_new(true).mode(0o600),
            OpenMode::CreateTruncate => o.write(true).create(true).truncate(true).mode(0o600),
        };
        // A file planted in a journal as a symbolic link (to another user's file, say) is
        // never read or written through.
        o.custom_flags(libc::O_NOFOLLOW);
        match o.open(path) {
            Ok(f) => {
                if matches!(mode, OpenMode::CreateNew | OpenMode::CreateTruncate) {
                    share_if_shared(&f, path)?;
                }
                Ok(Box::new(RealFile(f)))
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(symlink_error()),
            Err(e) => Err(e),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn create_dir_private(&self, path: &Path) -> io::Result<()> {
        let missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        // Outermost first, so that each sees whether its parent was just made shared. The
        // umask may have cleared group bits of the mode asked for: set them explicitly.
        for dir in missing.into_iter().rev() {
            if dir.parent().is_some_and(super::shared::is_shared) {
                fs::set_permissions(
                    dir,
                    fs::Permissions::from_mode(super::shared::SHARED_DIR_MODE),
                )?;
            }
        }
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    fn is_symlink(&self, path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
    }

    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        let m = fs::metadata(path)?;
        Ok(Meta {
            len: m.len(),
            is_dir: m.is_dir(),
            modified: m.modified().ok(),
        })
    }
}

/// A file just created in a shared journal's directory gets the group's read and write
/// permissions, whatever the umask left of them.
fn share_if_shared(f: &File, path: &Path) -> io::Result<()> {
    let shared = path.parent().is_some_and(|d| {
        super::shared::is_shared(if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        })
    });
    if shared && f.metadata()?.permissions().mode() & 0o777 != super::shared::SHARED_FILE_MODE {
        f.set_permissions(fs::Permissions::from_mode(super::shared::SHARED_FILE_MODE))?;
    }
    Ok(())
}

impl StorageFile for RealFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.write_at(buf, offset)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn read_into(&self, offset: u64, max: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let mut f = &self.0;
        f.seek(SeekFrom::Start(offset))?;
        f.take(max).read_to_end(out).map(|_| ())
    }

    fn len(&self) -> io::Result<u64> {
        self.0.metadata().map(|m| m.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn try_lock(&self) -> io::Result<bool> {
        match self.0.try_lock() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn try_lock_shared(&self) -> io::Result<bool> {
        match self.0.try_lock_shared() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn unlock(&self) -> io::Result<()> {
        self.0.unlock()
    }

    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(RealFile(self.0.try_clone()?)))
    }

    fn map_mut(&self, len: usize) -> io::Result<Box<dyn MapMut>> {
        // SAFETY: the journal maps only segment files it created itself (create_new) and
        // whose blocks it allocated by writing zeros over the whole mapped length, on a file
        // system that keeps them (`maps_safely`). Nothing in this process truncates a segment
        // while it is mapped (the map is dropped first). Another process truncating it (or a
        // file system that needs space after all) makes a store raise SIGBUS; the guard registered below, before any store, turns that into
        // a write error (journal/sigbus.rs). No Rust reference into the mapping outlives it.
        let mut map = unsafe { MmapOptions::new().len(len).map_mut(&self.0) }?;
        let Some(guard) = sigbus::Guard::register(map.as_ptr(), map.len()) else {
            // Unprotected, a mapping could kill the job: write through the file instead.
            drop(map);
            return Ok(pwrite_window(self.try_clone()?, len));
        };
        prefault(&mut map);
        Ok(Box::new(RealMap { guard, map }))
    }

    fn maps_safely(&self) -> bool {
        maps_safely(&self.0)
    }

    #[cfg(target_os = "linux")]
    fn reserve(&self, len: u64) -> io::Result<()> {
        let len = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: fallocate on a descriptor this file owns; no memory is passed.
        if unsafe { libc::fallocate(self.0.as_raw_fd(), 0, 0, len) } == 0 {
            return Ok(());
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                Err(io::ErrorKind::Unsupported.into())
            }
            e => Err(e),
        }
    }
}

/// File systems whose blocks, once written, a store into a shared mapping overwrites in place:
/// ext2/3/4, XFS (a file runlog created is never reflinked), tmpfs. Anything else — btrfs,
/// ZFS, bcachefs, f2fs, overlayfs, network and FUSE file systems, or a failed `fstatfs` — is
/// written with `pwrite`.
#[cfg(target_os = "linux")]
fn maps_safely(f: &File) -> bool {
    const EXT4_SUPER_MAGIC: u32 = 0xef53;
    const XFS_SUPER_MAGIC: u32 = 0x5846_5342;
    const TMPFS_MAGIC: u32 = 0x0102_1994;
    // SAFETY: an all-zero statfs is a valid value; fstatfs fills it from a descriptor this
    // file owns.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    matches!(
        u32::try_from(st.f_type),
        Ok(EXT4_SUPER_MAGIC | XFS_SUPER_MAGIC | TMPFS_MAGIC)
    )
}

#[cfg(not(target_os = "linux"))]
fn maps_safely(_f: &File) -> bool {
    true
}

/// Whether segments in the directory `dir` are written through a shared mapping (`true`) or
/// with `pwrite` (`false`: a file system that may need new space to overwrite a block, see
/// [`StorageFile::maps_safely`]).
pub fn maps_safely_in(dir: &Path) -> io::Result<bool> {
    let f = File::open(dir)?;
    Ok(maps_safely(&f))
}

/// A window that writes with `pwrite` (whole frames, one call each) and syncs with
/// `fdatasync`: for file systems where a store into a mapping could raise `SIGBUS`.
pub fn pwrite_window(file: Box<dyn StorageFile>, len: usize) -> Box<dyn MapMut> {
    Box::new(PwriteWindow { file, len })
}

#[derive(Debug)]
struct PwriteWindow {
    file: Box<dyn StorageFile>,
    len: usize,
}

impl MapMut for PwriteWindow {
    fn len(&self) -> usize {
        self.len
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> io::Result<()> {
        if offset
            .checked_add(data.len())
            .is_none_or(|end| end > self.len)
        {
            return Ok(());
        }
        write_all_at(&*self.file, data, offset as u64)
    }

    fn flush_range(&self, _offset: usize, _len: usize) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Whether `e` is the [`symlink_error`] (a link planted in a journal).
pub fn is_symlink_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData && e.to_string().starts_with(SYMLINK_ERROR)
}

const SYMLINK_ERROR: &str =
    "is a symlink: runlog follows no symbolic links inside a journal (remove it)";

/// The error for a symbolic link found where a journal file or directory should be.
/// Callers name the path, as with any I/O error.
pub fn symlink_error() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, SYMLINK_ERROR)
}

/// Touch every page for writing now, so the hot path does not take page faults.
fn prefault(map: &mut MmapMut) {
    #[cfg(target_os = "linux")]
    if map.advise(memmap2::Advice::PopulateWrite).is_ok() {
        return;
    }
    let len = map.len();
    let mut i = 0;
    while i < len {
        map[i] = 0;
        i += 4096;
    }
}

impl MapMut for RealMap {
    fn len(&self) -> usize {
        self.map.len()
    }

    #[inline]
    fn write(&mut self, offset: usize, data: &[u8]) -> io::Result<()> {
        if let Some(dst) = self.map.get_mut(offset..offset + data.len()) {
            dst.copy_from_slice(data);
        }
        if self.guard.lost() {
            return Err(io::Error::other(
                "a page of the segment's mapping was lost (SIGBUS caught): the file was cut \
                 by another process, or the file system had no space for it",
            ));
        }
        Ok(())
    }

    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(offset, len)
    }
}

// ---------------------------------------------------------------------------------------------
// The mount table

type Mounts = RwLock<Vec<(PathBuf, Arc<dyn Storage>)>>;

static ANY_MOUNTED: AtomicBool = AtomicBool::new(false);

fn mounts() -> &'static Mounts {
    static MOUNTS: OnceLock<Mounts> = OnceLock::new();
    MOUNTS.get_or_init(|| RwLock::new(Vec::new()))
}

fn real() -> &'static Arc<dyn Storage> {
    static REAL: OnceLock<Arc<dyn Storage>> = OnceLock::new();
    REAL.get_or_init(|| Arc::new(RealFs))
}

/// Serve every path under `root` from `storage` until the guard is dropped. For tests: the
/// paths need not exist on disk (use a root that does not, e.g. `/runlog-faultfs/<test>`).
pub fn mount(root: impl Into<PathBuf>, storage: Arc<dyn Storage>) -> MountGuard {
    let root = root.into();
    let mut m = mounts().write().unwrap_or_else(|p| p.into_inner());
    m.push((root.clone(), storage));
    ANY_MOUNTED.store(true, Ordering::SeqCst);
    MountGuard { root }
}

/// Unmounts on drop; see [`mount`].
#[derive(Debug)]
pub struct MountGuard {
    root: PathBuf,
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let mut m = mounts().write().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = m.iter().rposition(|(r, _)| *r == self.root) {
            m.remove(i);
        }
        ANY_MOUNTED.store(!m.is_empty(), Ordering::SeqCst);
    }
}

/// The storage that serves `path`: the innermost mount holding it, else [`RealFs`].
pub fn storage_for(path: &Path) -> Arc<dyn Storage> {
    if !ANY_MOUNTED.load(Ordering::Relaxed) {
        return real().clone();
    }
    let m = mounts().read().unwrap_or_else(|p| p.into_inner());
    m.iter()
        .filter(|(root, _)| path.starts_with(root))
        .max_by_key(|(root, _)| root.as_os_str().len())
        .map_or_else(|| real().clone(), |(_, s)| s.clone())
}

// Shorthands: the operation on the storage serving the path.

/// [`Storage::open`] on the storage serving `path`.
pub fn open(path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
    storage_for(path).open(path, mode)
}

/// [`Storage::rename`] on the storage serving `from`.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    storage_for(from).rename(from, to)
}

/// [`Storage::remove_file`] on the storage serving `path`.
pub fn remove_file(path: &Path) -> io::Result<()> {
    storage_for(path).remove_file(path)
}

/// [`Storage::create_dir_private`] on the storage serving `path`.
pub fn create_dir_private(path: &Path) -> io::Result<()> {
    storage_for(path).create_dir_private(path)
}

/// [`Storage::sync_dir`] on the storage serving `path`.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    storage_for(path).sync_dir(path)
}

/// [`Storage::read_dir`] on the storage serving `path`.
pub fn read_dir(path: &Path) -> io::Result<Vec<OsString>> {
    storage_for(path).read_dir(path)
}

/// [`Storage::is_symlink`] on the storage serving `path`.
pub fn is_symlink(path: &Path) -> bool {
    storage_for(path).is_symlink(path)
}

/// [`Storage::metadata`] on the storage serving `path`.
pub fn metadata(path: &Path) -> io::Result<Meta> {
    storage_for(path).metadata(path)
}

/// Read a whole file, at most `max` bytes, into `out` (cleared first).
pub fn read_bounded(path: &Path, max: u64, out: &mut Vec<u8>) -> io::Result<()> {
    let f = open(path, OpenMode::Read)?;
    read_to_end_bounded(&*f, 0, max, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_system_runlog_does_not_know_is_not_mapped() {
        // procfs: neither ext4, XFS nor tmpfs.
        assert!(!maps_safely_in(Path::new("/proc/self")).unwrap());
    }

    #[test]
    fn a_pwrite_window_writes_whole_frames_and_ignores_what_does_not_fit() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a");
        let f = open(&p, OpenMode::CreateNew).unwrap();
        f.set_len(8192).unwrap();
        let mut w = pwrite_window(f.try_clone().unwrap(), 8192);
        w.write(10, b"hello").unwrap();
        w.write(8190, b"past the end").unwrap();
        w.flush_range(0, 8192).unwrap();
        let mut out = Vec::new();
        read_bounded(&p, 8192, &mut out).unwrap();
        assert_eq!(&out[10..15], b"hello");
        assert!(out[..10].iter().chain(&out[15..]).all(|b| *b == 0));
        assert_eq!(out.len(), 8192);
    }

    #[test]
    fn real_files_write_read_lock_and_map() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a");
        let mut f = open(&p, OpenMode::CreateNew).unwrap();
        write_all(&mut *f, &[0u8; 8192]).unwrap();
        let mut m = f.map_mut(8192).unwrap();
        m.write(10, b"hello").unwrap();
        m.write(8190, b"past the end").unwrap(); // ignored: does not fit
        m.flush_range(0, 8192).unwrap();
        drop(m);
        let mut out = Vec::new();
        read_bounded(&p, 16, &mut out).unwrap();
        assert_eq!(&out[10..15], b"hello");
        assert_eq!(out.len(), 16);
        assert!(f.try_lock().unwrap());
        let other = open(&p, OpenMode::Read).unwrap();
        assert!(!other.try_lock_shared().unwrap());
        f.unlock().unwrap();
        assert!(other.try_lock_shared().unwrap());
        assert_eq!(metadata(&p).unwrap().len, 8192);
        assert_eq!(read_dir(t.path()).unwrap(), vec![OsString::from("a")]);
        assert!(matches!(
            open(&p, OpenMode::CreateNew).map(|_| ()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists
        ));
    }
}
