//! The next segment a run's writer asks of the background thread (`runlog-prepare`) must not
//! outlive the run when the run ends while that thread is still making it: a job that exited
//! right after its last run left the preallocated `.tmp-` file behind (up to `segment-size`
//! of zeros, removed only by a sweep of a later run once 60 s old), and a shipper keeping the
//! journal within its disk budget counted it and deleted unshipped runs to make room for it.
//! Nor may the end of the run wait for the whole segment to be written first.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::Duration;

use runlog::journal::layout::{job_dir, parse_segment_name, TMP_PREFIX};
use runlog::journal::storage::{self, MapMut, Meta, OpenMode, RealFs, Storage, StorageFile};
use runlog::{FsyncPolicy, RunLogger};

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let rl = RunLogger::builder()
            .journal_dir(std::env::temp_dir().join("runlog-prepare-test-unused"))
            .no_config_file()
            .build()
            .unwrap();
        let _ = rl.install();
    });
}

/// A gate that opens once.
#[derive(Debug, Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// Real files, except that the first write into the first segment the background thread
/// makes (`.tmp-<id>.<seq>.seg`, seq > 0) reports that it started and waits for the gate;
/// writes into that file are counted.
#[derive(Debug)]
struct Stalling {
    trapped: AtomicBool,
    started: Mutex<mpsc::Sender<()>>,
    gate: Arc<Gate>,
    writes: Arc<AtomicUsize>,
}

impl Storage for Stalling {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        let f = RealFs.open(path, mode)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let background = name
            .strip_prefix(TMP_PREFIX)
            .and_then(parse_segment_name)
            .is_some_and(|(_, seq)| seq > 0);
        if mode == OpenMode::CreateNew && background && !self.trapped.swap(true, Ordering::SeqCst) {
            let started = self.started.lock().unwrap().clone();
            return Ok(Box::new(StallingFile {
                inner: f,
                first: Some((started, self.gate.clone())),
                writes: self.writes.clone(),
            }));
        }
        Ok(f)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn create_dir_private(&self, path: &Path) -> io::Result<()> {
        RealFs.create_dir_private(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        RealFs.sync_dir(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        RealFs.read_dir(path)
    }
    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        RealFs.metadata(path)
    }
}

#[derive(Debug)]
struct StallingFile {
    inner: Box<dyn StorageFile>,
    first: Option<(mpsc::Sender<()>, Arc<Gate>)>,
    writes: Arc<AtomicUsize>,
}

impl StorageFile for StallingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some((started, gate)) = self.first.take() {
            let _ = started.send(());
            gate.wait();
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(buf)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.inner.write_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn try_lock(&self) -> io::Result<bool> {
        self.inner.try_lock()
    }
    fn try_lock_shared(&self) -> io::Result<bool> {
        self.inner.try_lock_shared()
    }
    fn unlock(&self) -> io::Result<()> {
        self.inner.unlock()
    }
    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>> {
        self.inner.try_clone()
    }
    fn map_mut(&self, len: usize) -> io::Result<Box<dyn MapMut>> {
        self.inner.map_mut(len)
    }
}

fn tmp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(TMP_PREFIX))
        .collect()
}

/// A run that ends (is cancelled with `cancel`) while the background thread is making its
/// next segment (stalled in its first write until 500 ms after the end began): the `.tmp-`
/// files left in the job dir when the end returns, and how many writes went into that segment
/// by then.
fn end_a_run_while_its_next_segment_is_made(job: &str, cancel: bool) -> (Vec<String>, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("journal");
    let gate = Arc::new(Gate::default());
    let (started_tx, started) = mpsc::channel();
    let writes = Arc::new(AtomicUsize::new(0));
    let _mount = storage::mount(
        &journal,
        Arc::new(Stalling {
            trapped: AtomicBool::new(false),
            started: Mutex::new(started_tx),
            gate: gate.clone(),
            writes: writes.clone(),
        }),
    );
    install();
    let rl = RunLogger::builder()
        .journal_dir(&journal)
        .no_config_file()
        .fsync(FsyncPolicy::Never)
        .segment_size(64 << 20)
        .build()
        .unwrap();
    let run = rl.runlog(job).unwrap();
    // ~100 KiB: past an eighth of the first segment (256 KiB), where the next one (512 KiB)
    // is asked for, and short of its end (no rollover).
    for i in 0..1000 {
        log::info!("record {i}: {}", "x".repeat(64));
    }
    started
        .recv_timeout(Duration::from_secs(30))
        .expect("the background thread starts making the next segment");
    let dir = job_dir(&journal, job);
    assert_eq!(tmp_files(&dir).len(), 1, "the segment being made");
    // The run ends while that segment is being made; the thread goes on a moment later.
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            gate.open();
        })
    };
    if cancel {
        run.cancel();
    } else {
        drop(run);
    }
    // A process that exits now (as a job does after its last run) keeps whatever is there.
    let left = tmp_files(&dir);
    let written = writes.load(Ordering::SeqCst);
    opener.join().unwrap();
    (left, written)
}

#[test]
fn a_run_ending_while_its_next_segment_is_prepared_left_that_segment_file_behind() {
    let (left, _) = end_a_run_while_its_next_segment_is_made("prepared", false);
    assert!(
        left.is_empty(),
        "a segment file outlives the end of its run: {left:?}"
    );
}

/// The end of the run waited until the whole next segment (up to `segment-size` of zeros,
/// 1 GiB at most) was written before removing it; now making it stops after the write under
/// way.
#[test]
fn a_run_ending_while_its_next_segment_is_prepared_waited_for_the_whole_segment_to_be_written() {
    let (left, writes) = end_a_run_while_its_next_segment_is_made("prepared-wait", false);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        writes, 1,
        "writes into the abandoned 512 KiB segment (64 KiB each) before the run's end returned"
    );
}

#[test]
fn a_run_cancelled_while_its_next_segment_is_prepared_leaves_no_file_and_waits_for_one_write() {
    let (left, writes) = end_a_run_while_its_next_segment_is_made("prepared-cancel", true);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(writes, 1);
}
