//! A fault-injecting, in-memory [`Storage`] for torture tests: SQLite's crash VFS and LazyFS in
//! one. Mount it over a directory that does not exist on disk ([`storage::mount`]) and the
//! journal writer, reader, recovery and the `.shipped`/state writes under it use it.
//!
//! It keeps what was *written* (the page cache: what other readers see, what survives the
//! process being killed) apart from what is *durable* (what `sync_data`, `flush_range` and
//! `sync_dir` made so: what survives a power loss), for file contents and for directory
//! entries alike (strict POSIX: a new, renamed or removed name is durable only after its
//! directory is synced). A [`FaultFs::crash_image`] is the disk after a power loss: durable
//! names and contents, plus each unsynced page lost, kept or garbled as asked. A "cut" takes
//! that image at the moment of the Nth sync ([`FaultFs::cut_at_sync`]).
//!
//! Faults: fail the Nth write or sync with an error of your choosing, run out of space above a
//! byte budget, refuse to create files (an unwritable directory), and write short.
//!
//! [`storage::mount`]: super::storage::mount

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use super::storage::{MapMut, Meta, OpenMode, Storage, StorageFile};

/// Page size for unsynced data (what a power loss loses, keeps or garbles as a unit).
pub const PAGE: usize = 4096;

/// What a power loss does to data written but not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsynced {
    /// All of it is lost (the durable contents remain).
    Lost,
    /// All of it reached the disk.
    Kept,
    /// Each unsynced page, independently: lost, kept, or its changed bytes turned to garbage
    /// (the seed picks). Bytes a page did not change since its last sync are never damaged.
    Random(u64),
}

/// An injected error: which `errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    /// `ENOSPC`.
    NoSpace,
    /// `EIO`.
    Io,
    /// `EACCES`.
    Access,
}

impl Errno {
    fn error(self, what: &str) -> io::Error {
        let code = match self {
            Errno::NoSpace => libc::ENOSPC,
            Errno::Io => libc::EIO,
            Errno::Access => libc::EACCES,
        };
        let e = io::Error::from_raw_os_error(code);
        io::Error::new(e.kind(), format!("{what}: {e} (injected)"))
    }
}

/// Counts of the operations seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// `write` calls on files.
    pub writes: u64,
    /// Syncs: `sync_data`, `flush_range`, `sync_dir`.
    pub syncs: u64,
    /// Steps: syncs and namespace changes, in order (what [`FaultFs::cut_at_step`] counts).
    pub steps: u64,
}

#[derive(Clone, Debug)]
enum Ent {
    File(u64),
    Dir,
}

#[derive(Clone, Debug, Default)]
struct Dir {
    live: BTreeMap<OsString, Ent>,
    durable: BTreeMap<OsString, Ent>,
}

#[derive(Clone, Debug)]
struct Node {
    data: Vec<u8>,
    durable: Vec<u8>,
    modified: SystemTime,
    /// Lock holders: open-file-description id → exclusive?
    locks: HashMap<u64, bool>,
}

#[derive(Clone, Debug, Default)]
struct Faults {
    write_at: Option<(u64, Errno)>,
    sync_at: Option<(u64, Errno)>,
    space: Option<u64>,
    no_create: Option<Errno>,
    short_writes: bool,
    cut_at: Option<u64>,
    cut_at_step: Option<u64>,
}

#[derive(Clone, Debug)]
struct State {
    root: PathBuf,
    dirs: BTreeMap<PathBuf, Dir>,
    nodes: HashMap<u64, Node>,
    next_id: u64,
    counts: Counts,
    faults: Faults,
}

struct Cut {
    state: State,
    probe: u64,
}

struct Inner {
    state: Mutex<State>,
    cut: Mutex<Option<Cut>>,
    probe: Mutex<Option<Box<dyn Fn() -> u64 + Send + Sync>>>,
}

/// The fault-injecting file system. Cheap to clone (a handle).
#[derive(Clone)]
pub struct FaultFs(Arc<Inner>);

impl fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("FaultFs")
            .field("root", &s.root)
            .field("counts", &s.counts)
            .finish()
    }
}

fn lost(e: io::ErrorKind, what: &Path) -> io::Error {
    io::Error::new(e, format!("{}: {e}", what.display()))
}

impl FaultFs {
    /// An empty file system whose root directory `root` exists (durably).
    pub fn new(root: impl Into<PathBuf>) -> FaultFs {
        let root = root.into();
        let mut dirs = BTreeMap::new();
        dirs.insert(root.clone(), Dir::default());
        FaultFs::from_state(State {
            root,
            dirs,
            nodes: HashMap::new(),
            next_id: 1,
            counts: Counts::default(),
            faults: Faults::default(),
        })
    }

    fn from_state(state: State) -> FaultFs {
        FaultFs(Arc::new(Inner {
            state: Mutex::new(state),
            cut: Mutex::new(None),
            probe: Mutex::new(None),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Operations so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// Fail the `n`th `write` (counting from 1 since the file system was made) with `errno`.
    pub fn fail_write_at(&self, n: u64, errno: Errno) {
        self.lock().faults.write_at = Some((n, errno));
    }

    /// Fail the `n`th sync with `errno`.
    pub fn fail_sync_at(&self, n: u64, errno: Errno) {
        self.lock().faults.sync_at = Some((n, errno));
    }

    /// `ENOSPC` once the files' written bytes would exceed `bytes` (`None`: unlimited again).
    pub fn set_space(&self, bytes: Option<u64>) {
        self.lock().faults.space = bytes;
    }

    /// Refuse to create files and directories with `errno` (`None`: allow again).
    pub fn refuse_creates(&self, errno: Option<Errno>) {
        self.lock().faults.no_create = errno;
    }

    /// Make every `write` write at most half of what it is given (at least one byte).
    pub fn short_writes(&self, on: bool) {
        self.lock().faults.short_writes = on;
    }

    /// At the `n`th sync, before it takes effect, keep the state for [`FaultFs::cut_image`]:
    /// the power goes out just as that sync is asked for. `probe`, called at that moment,
    /// records what the workload had been promised by then (say, the records acknowledged).
    pub fn cut_at_sync(&self, n: u64, probe: impl Fn() -> u64 + Send + Sync + 'static) {
        *self.0.probe.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(probe));
        self.lock().faults.cut_at = Some(n);
    }

    /// Like [`FaultFs::cut_at_sync`], at the `n`th step (a sync or a change of names: create,
    /// rename, remove, directory creation), before it takes effect: a crash at every step of
    /// creating, rotating and deleting segments.
    pub fn cut_at_step(&self, n: u64, probe: impl Fn() -> u64 + Send + Sync + 'static) {
        *self.0.probe.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(probe));
        self.lock().faults.cut_at_step = Some(n);
    }

    /// The disk at the cut (see [`FaultFs::cut_at_sync`]) after the power loss, under
    /// `new_root`, and the probe's value at the cut; `None` if the cut was not reached.
    pub fn cut_image(&self, new_root: &Path, unsynced: Unsynced) -> Option<(FaultFs, u64)> {
        let cut = self.0.cut.lock().unwrap_or_else(|p| p.into_inner());
        let c = cut.as_ref()?;
        Some((image_of(&c.state, new_root, unsynced), c.probe))
    }

    /// The disk now, after a power loss, under `new_root`.
    pub fn crash_image(&self, new_root: &Path, unsynced: Unsynced) -> FaultFs {
        image_of(&self.lock(), new_root, unsynced)
    }

    /// Every file (relative path → contents as written), for comparing states.
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let s = self.lock();
        let mut out = BTreeMap::new();
        for (p, d) in &s.dirs {
            for (name, e) in &d.live {
                if let Ent::File(id) = e {
                    let rel = p.join(name);
                    let rel = rel.strip_prefix(&s.root).unwrap_or(&rel).to_path_buf();
                    out.insert(rel, s.nodes[id].data.clone());
                }
            }
        }
        out
    }

    /// Count a step and take the cut if it is the one asked for.
    fn step(&self, s: &mut State) {
        s.counts.steps += 1;
        if s.faults.cut_at_step == Some(s.counts.steps) {
            self.take_cut(s);
        }
    }

    fn take_cut(&self, s: &State) {
        let probe = self
            .0
            .probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |f| f());
        *self.0.cut.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cut {
            state: s.clone(),
            probe,
        });
    }

    fn sync_point(&self, s: &mut State, what: &Path) -> io::Result<()> {
        self.step(s);
        s.counts.syncs += 1;
        let n = s.counts.syncs;
        if s.faults.cut_at == Some(n) {
            self.take_cut(s);
        }
        match s.faults.sync_at {
            Some((at, errno)) if at == n => Err(errno.error(&format!("sync {}", what.display()))),
            _ => Ok(()),
        }
    }
}

fn rebase(p: &Path, from: &Path, to: &Path) -> PathBuf {
    p.strip_prefix(from)
        .map_or_else(|_| p.to_path_buf(), |r| to.join(r))
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The contents a power loss leaves of a file written as `data` and durable as `durable`.
fn settle(data: &[u8], durable: &[u8], unsynced: Unsynced, salt: u64) -> Vec<u8> {
    match unsynced {
        Unsynced::Lost => durable.to_vec(),
        Unsynced::Kept => data.to_vec(),
        Unsynced::Random(seed) => {
            let len = data.len().max(durable.len());
            let mut out = durable.to_vec();
            let mut end = durable.len();
            let mut page = 0;
            while page * PAGE < len {
                let (a, b) = (page * PAGE, ((page + 1) * PAGE).min(len));
                let new = data.get(a..b.min(data.len())).unwrap_or(&[]);
                let old = durable.get(a..b.min(durable.len())).unwrap_or(&[]);
                if new != old {
                    let r = mix(seed ^ salt.wrapping_mul(0x1000_0000_01b3) ^ page as u64);
                    let bytes: Vec<u8> = match r % 3 {
                        0 => old.to_vec(),
                        1 => new.to_vec(),
                        // Garbage where the page changed since it was last synced; the
                        // bytes it did not change stay (a write never damages bytes it does
                        // not change), and a cut that was not synced may or may not be.
                        _ => (0..new.len())
                            .map(|i| match old.get(i) {
                                Some(o) if *o == new[i] => *o,
                                _ => mix(r ^ i as u64) as u8,
                            })
                            .chain(old.iter().skip(new.len()).copied())
                            .collect(),
                    };
                    if !bytes.is_empty() {
                        if out.len() < a + bytes.len() {
                            out.resize(a + bytes.len(), 0);
                        }
                        out[a..a + bytes.len()].copy_from_slice(&bytes);
                        end = end.max(a + bytes.len());
                    }
                }
                page += 1;
            }
            out.truncate(end.max(durable.len()));
            out
        }
    }
}

fn image_of(s: &State, new_root: &Path, unsynced: Unsynced) -> FaultFs {
    let mut img = State {
        root: new_root.to_path_buf(),
        dirs: BTreeMap::new(),
        nodes: HashMap::new(),
        next_id: s.next_id,
        counts: Counts::default(),
        faults: Faults::default(),
    };
    // Walk the durable names from the root.
    let mut todo = vec![s.root.clone()];
    while let Some(p) = todo.pop() {
        let Some(d) = s.dirs.get(&p) else { continue };
        let mut nd = Dir::default();
        for (name, e) in &d.durable {
            match e {
                Ent::Dir => todo.push(p.join(name)),
                Ent::File(id) => {
                    if !img.nodes.contains_key(id) {
                        if let Some(n) = s.nodes.get(id) {
                            let data = settle(&n.data, &n.durable, unsynced, *id);
                            img.nodes.insert(
                                *id,
                                Node {
                                    durable: data.clone(),
                                    data,
                                    modified: n.modified,
                                    locks: HashMap::new(),
                                },
                            );
                        }
                    }
                }
            }
            nd.live.insert(name.clone(), e.clone());
        }
        nd.durable = nd.live.clone();
        img.dirs.insert(rebase(&p, &s.root, new_root), nd);
    }
    // A durable name whose directory did not survive is gone with it.
    let kept: Vec<PathBuf> = img.dirs.keys().cloned().collect();
    for (p, d) in img.dirs.iter_mut() {
        d.live
            .retain(|name, e| !matches!(e, Ent::Dir) || kept.contains(&p.join(name)));
        d.durable = d.live.clone();
    }
    FaultFs::from_state(img)
}

impl State {
    fn split<'a>(&self, path: &'a Path) -> io::Result<(PathBuf, &'a std::ffi::OsStr)> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(lost(io::ErrorKind::InvalidInput, path));
        };
        if !self.dirs.contains_key(parent) {
            return Err(lost(io::ErrorKind::NotFound, parent));
        }
        Ok((parent.to_path_buf(), name))
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (parent, name) = self.split(path)?;
        match self.dirs[&parent].live.get(name) {
            Some(Ent::File(id)) => Ok(*id),
            Some(Ent::Dir) => Err(lost(io::ErrorKind::IsADirectory, path)),
            None => Err(lost(io::ErrorKind::NotFound, path)),
        }
    }

    fn used(&self) -> u64 {
        self.nodes.values().map(|n| n.data.len() as u64).sum()
    }

    fn grow_ok(&self, extra: u64, what: &Path) -> io::Result<()> {
        match self.faults.space {
            Some(cap) if self.used() + extra > cap => {
                Err(Errno::NoSpace.error(&what.display().to_string()))
            }
            _ => Ok(()),
        }
    }
}

impl Storage for FaultFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let mut s = self.lock();
        let id = match mode {
            OpenMode::Read | OpenMode::Write => s.lookup(path)?,
            OpenMode::CreateNew | OpenMode::CreateTruncate => {
                let existing = s.lookup(path);
                match (existing, mode) {
                    (Ok(_), OpenMode::CreateNew) => {
                        return Err(lost(io::ErrorKind::AlreadyExists, path))
                    }
                    (Ok(id), _) => {
                        if let Some(n) = s.nodes.get_mut(&id) {
                            n.data.clear();
                            n.modified = SystemTime::now();
                        }
                        id
                    }
                    (Err(e), _) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    (Err(_), _) => {
                        if let Some(errno) = s.faults.no_create {
                            return Err(errno.error(&path.display().to_string()));
                        }
                        let (parent, name) = s.split(path)?;
                        self.step(&mut s);
                        let id = s.next_id;
                        s.next_id += 1;
                        s.nodes.insert(
                            id,
                            Node {
                                data: Vec::new(),
                                durable: Vec::new(),
                                modified: SystemTime::now(),
                                locks: HashMap::new(),
                            },
                        );
                        let name = name.to_os_string();
                        if let Some(d) = s.dirs.get_mut(&parent) {
                            d.live.insert(name, Ent::File(id));
                        }
                        id
                    }
                }
            }
        };
        let desc = s.next_id;
        s.next_id += 1;
        drop(s);
        Ok(Box::new(FaultFile {
            fs: self.clone(),
            id,
            path: path.to_path_buf(),
            desc: Arc::new(Desc {
                fs: self.clone(),
                id,
                desc,
            }),
            pos: 0,
            readonly: mode == OpenMode::Read,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let id = s.lookup(from)?;
        let (fp, fname) = s.split(from)?;
        let (tp, tname) = s.split(to)?;
        self.step(&mut s);
        let fname = fname.to_os_string();
        let tname = tname.to_os_string();
        if let Some(d) = s.dirs.get_mut(&fp) {
            d.live.remove(&fname);
        }
        if let Some(d) = s.dirs.get_mut(&tp) {
            d.live.insert(tname, Ent::File(id));
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.lookup(path)?;
        let (p, name) = s.split(path)?;
        let name = name.to_os_string();
        self.step(&mut s);
        if let Some(d) = s.dirs.get_mut(&p) {
            d.live.remove(&name);
        }
        Ok(())
    }

    fn create_dir_private(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if !path.starts_with(&s.root) {
            return Err(lost(io::ErrorKind::NotFound, path));
        }
        let mut missing = Vec::new();
        let mut p = path;
        while !s.dirs.contains_key(p) {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(q) => p = q,
                None => return Err(lost(io::ErrorKind::NotFound, path)),
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if let Some(errno) = s.faults.no_create {
            return Err(errno.error(&path.display().to_string()));
        }
        for d in missing.into_iter().rev() {
            let (parent, name) = s.split(&d)?;
            if let Some(Ent::File(_)) = s.dirs[&parent].live.get(name) {
                return Err(lost(io::ErrorKind::AlreadyExists, &d));
            }
            let name = name.to_os_string();
            self.step(&mut s);
            if let Some(pd) = s.dirs.get_mut(&parent) {
                pd.live.insert(name, Ent::Dir);
            }
            s.dirs.insert(d, Dir::default());
        }
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if !s.dirs.contains_key(path) {
            return Err(lost(io::ErrorKind::NotFound, path));
        }
        self.sync_point(&mut s, path)?;
        if let Some(d) = s.dirs.get_mut(path) {
            d.durable = d.live.clone();
        }
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let s = self.lock();
        match s.dirs.get(path) {
            Some(d) => Ok(d.live.keys().cloned().collect()),
            None => Err(lost(io::ErrorKind::NotFound, path)),
        }
    }

    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        let s = self.lock();
        if s.dirs.contains_key(path) {
            return Ok(Meta {
                len: 0,
                is_dir: true,
                modified: None,
            });
        }
        let id = s.lookup(path)?;
        let n = &s.nodes[&id];
        Ok(Meta {
            len: n.data.len() as u64,
            is_dir: false,
            modified: Some(n.modified),
        })
    }
}

/// An open file description: its lock goes when the last handle to it does.
struct Desc {
    fs: FaultFs,
    id: u64,
    desc: u64,
}

impl Drop for Desc {
    fn drop(&mut self) {
        if let Some(n) = self.fs.lock().nodes.get_mut(&self.id) {
            n.locks.remove(&self.desc);
        }
    }
}

struct FaultFile {
    fs: FaultFs,
    id: u64,
    path: PathBuf,
    desc: Arc<Desc>,
    pos: u64,
    readonly: bool,
}

impl fmt::Debug for FaultFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultFile({})", self.path.display())
    }
}

impl StorageFile for FaultFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.write_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        if self.readonly {
            return Err(lost(io::ErrorKind::PermissionDenied, &self.path));
        }
        let mut s = self.fs.lock();
        s.counts.writes += 1;
        if let Some((at, errno)) = s.faults.write_at {
            if at == s.counts.writes {
                return Err(errno.error(&self.path.display().to_string()));
            }
        }
        let mut n = buf.len();
        if s.faults.short_writes && n > 1 {
            n /= 2;
        }
        let pos = offset as usize;
        let cur = s.nodes[&self.id].data.len();
        let extra = (pos + n).saturating_sub(cur) as u64;
        s.grow_ok(extra, &self.path)?;
        let node = s
            .nodes
            .get_mut(&self.id)
            .ok_or_else(|| lost(io::ErrorKind::NotFound, &self.path))?;
        if node.data.len() < pos + n {
            node.data.resize(pos + n, 0);
        }
        node.data[pos..pos + n].copy_from_slice(&buf[..n]);
        node.modified = SystemTime::now();
        Ok(n)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let s = self.fs.lock();
        let data = &s.nodes[&self.id].data;
        let Some(rest) = data.get(offset as usize..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.fs.lock().nodes[&self.id].data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.readonly {
            return Err(lost(io::ErrorKind::PermissionDenied, &self.path));
        }
        let mut s = self.fs.lock();
        let cur = s.nodes[&self.id].data.len() as u64;
        s.grow_ok(len.saturating_sub(cur), &self.path)?;
        if let Some(n) = s.nodes.get_mut(&self.id) {
            n.data.resize(len as usize, 0);
            n.modified = SystemTime::now();
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.fs.lock();
        self.fs.sync_point(&mut s, &self.path)?;
        if let Some(n) = s.nodes.get_mut(&self.id) {
            n.durable = n.data.clone();
        }
        Ok(())
    }

    fn try_lock(&self) -> io::Result<bool> {
        let mut s = self.fs.lock();
        let n = s
            .nodes
            .get_mut(&self.id)
            .ok_or_else(|| lost(io::ErrorKind::NotFound, &self.path))?;
        if n.locks.keys().any(|d| *d != self.desc.desc) {
            return Ok(false);
        }
        n.locks.insert(self.desc.desc, true);
        Ok(true)
    }

    fn try_lock_shared(&self) -> io::Result<bool> {
        let mut s = self.fs.lock();
        let n = s
            .nodes
            .get_mut(&self.id)
            .ok_or_else(|| lost(io::ErrorKind::NotFound, &self.path))?;
        if n.locks.iter().any(|(d, ex)| *ex && *d != self.desc.desc) {
            return Ok(false);
        }
        n.locks.insert(self.desc.desc, false);
        Ok(true)
    }

    fn unlock(&self) -> io::Result<()> {
        if let Some(n) = self.fs.lock().nodes.get_mut(&self.id) {
            n.locks.remove(&self.desc.desc);
        }
        Ok(())
    }

    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(FaultFile {
            fs: self.fs.clone(),
            id: self.id,
            path: self.path.clone(),
            desc: self.desc.clone(),
            pos: self.pos,
            readonly: self.readonly,
        }))
    }

    fn map_mut(&self, len: usize) -> io::Result<Box<dyn MapMut>> {
        let s = self.fs.lock();
        if s.nodes[&self.id].data.len() < len {
            return Err(lost(io::ErrorKind::InvalidInput, &self.path));
        }
        Ok(Box::new(FaultMap {
            fs: self.fs.clone(),
            id: self.id,
            path: self.path.clone(),
            len,
        }))
    }
}

struct FaultMap {
    fs: FaultFs,
    id: u64,
    path: PathBuf,
    len: usize,
}

impl fmt::Debug for FaultMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultMap({}, {})", self.path.display(), self.len)
    }
}

impl MapMut for FaultMap {
    fn len(&self) -> usize {
        self.len
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> io::Result<()> {
        if offset + data.len() > self.len {
            return Ok(());
        }
        let mut s = self.fs.lock();
        // A store past a file cut short by someone else is lost, and reported, as the real
        // mapping's SIGBUS handler reports it.
        match s
            .nodes
            .get_mut(&self.id)
            .and_then(|n| n.data.get_mut(offset..offset + data.len()))
        {
            Some(dst) => {
                dst.copy_from_slice(data);
                Ok(())
            }
            None => Err(lost(io::ErrorKind::UnexpectedEof, &self.path)),
        }
    }

    fn flush_range(&self, offset: usize, len: usize) -> io::Result<()> {
        let mut s = self.fs.lock();
        self.fs.sync_point(&mut s, &self.path)?;
        if let Some(n) = s.nodes.get_mut(&self.id) {
            let end = (offset + len).min(n.data.len());
            if n.durable.len() < end {
                n.durable.resize(end, 0);
            }
            if offset < end {
                let (d, w) = (&mut n.durable, &n.data);
                d[offset..end].copy_from_slice(&w[offset..end]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::storage::{mount, read_bounded, write_all};
    use super::*;

    #[test]
    fn unsynced_data_and_names_are_lost_and_synced_ones_kept() {
        let root = PathBuf::from("/runlog-faultfs/unit-1");
        let fs = FaultFs::new(&root);
        let _m = mount(&root, Arc::new(fs.clone()));
        let dir = root.join("d");
        super::super::storage::create_dir_private(&dir).unwrap();
        let a = dir.join("a");
        let mut f = super::super::storage::open(&a, OpenMode::CreateNew).unwrap();
        write_all(&mut *f, b"synced").unwrap();
        f.sync_data().unwrap();
        write_all(&mut *f, b" and not").unwrap();
        // The name is not durable yet: a power loss loses the file.
        let img = fs.crash_image(Path::new("/img"), Unsynced::Kept);
        assert!(img.files().is_empty(), "{:?}", img.files());
        super::super::storage::sync_dir(&root).unwrap();
        super::super::storage::sync_dir(&dir).unwrap();
        let lost = fs.crash_image(Path::new("/img"), Unsynced::Lost).files();
        assert_eq!(lost[Path::new("d/a")], b"synced");
        let kept = fs.crash_image(Path::new("/img"), Unsynced::Kept).files();
        assert_eq!(kept[Path::new("d/a")], b"synced and not");
        let mut out = Vec::new();
        read_bounded(&a, 100, &mut out).unwrap();
        assert_eq!(out, b"synced and not");
    }

    #[test]
    fn faults_fire_where_asked() {
        let root = PathBuf::from("/runlog-faultfs/unit-2");
        let fs = FaultFs::new(&root);
        let p = root.join("f");
        let mut f = fs.open(&p, OpenMode::CreateNew).unwrap();
        fs.fail_write_at(2, Errno::Io);
        write_all(&mut *f, b"1").unwrap();
        let e = write_all(&mut *f, b"2").unwrap_err();
        assert_eq!(e.raw_os_error(), None); // wrapped with the path
        assert!(e.to_string().contains("injected"), "{e}");
        fs.set_space(Some(10));
        assert!(write_all(&mut *f, &[0; 20]).is_err());
        fs.set_space(None);
        fs.short_writes(true);
        assert_eq!(f.write(b"abcd").unwrap(), 2);
        fs.fail_sync_at(1, Errno::NoSpace);
        assert!(f.sync_data().is_err());
        assert!(f.sync_data().is_ok());
        fs.refuse_creates(Some(Errno::Access));
        assert!(fs.open(&root.join("g"), OpenMode::CreateNew).is_err());
        // Locks: exclusive excludes others, shared with each other; dropping releases.
        let g = fs.open(&p, OpenMode::Read).unwrap();
        assert!(f.try_lock().unwrap());
        assert!(!g.try_lock_shared().unwrap());
        drop(f);
        assert!(g.try_lock_shared().unwrap());
    }

    #[test]
    fn a_random_power_loss_keeps_durable_bytes() {
        let durable = vec![7u8; 3 * PAGE];
        let mut data = durable.clone();
        data.extend_from_slice(&[9u8; 2 * PAGE]);
        data[10] = 1;
        for seed in 0..50 {
            let out = settle(&data, &durable, Unsynced::Random(seed), 3);
            assert!(out.len() >= durable.len());
            assert_eq!(&out[PAGE..3 * PAGE], &durable[PAGE..]);
        }
    }
}
