//! A run that rolls over to a new segment and ends there while a reader, a sweep or the
//! shipper lists the job: the writer is stopped at every step of that rollover and end in
//! turn, the other side lists the job directory at that moment, and then — between its listing
//! and its probe of the run lock — the writer is let go and finishes. The run must read as it
//! ended (`ok`, every record, no problem), survive a sweep that keeps no failed run, and reach
//! Redis as `ok` with every record.
//!
//! The pause is made by a storage of this test's own ([`GateFs`], over the real file system
//! through the library's storage seam): no test hook in the library.
//!
//! Bug this reproduces: readers listed a run's segments first and probed the lock afterwards,
//! so a listing made before the writer's rollover ended in a segment without an end frame,
//! and with the lock free by the probe the run read as `crashed` — for good: the shipper
//! uploaded it so, and a sweep with `max-failed-logs = 0` deleted it.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use log::LevelFilter;
use runlog::journal::layout::job_dir;
use runlog::journal::reader::{Journal, RunStatus};
use runlog::journal::retention::sweep_job;
use runlog::journal::storage::{mount, MapMut, Meta, OpenMode, RealFs, Storage, StorageFile};
use runlog::{Config, FsyncPolicy, RunLogger};
use runlog_e2e::redis::{check_consistent, RedisServer};
use runlog_e2e::torture::conclude;
use runlog_e2e::torture::install_logger_once;
use runlog_shipper::schema::Keys;
use runlog_shipper::upload::{Redis, Target};

const JOB: &str = "race";
const PREFIX: &str = "runlog";
/// Records of 8000 bytes: 7 fit a first segment of 64 KiB, the 8th rolls over.
const BEFORE: u64 = 5;
const AFTER: u64 = 5;
const WAIT: Duration = Duration::from_secs(30);

fn install() {
    install_logger_once("race");
}

fn message(i: u64) -> String {
    format!("record {i} {}", "x".repeat(8000))
}

#[derive(Default, Debug)]
struct St {
    /// Steps of threads other than the reader are counted (and may be stopped) once armed.
    armed: bool,
    /// The step at which every other thread stops until `released`.
    stop_at: u64,
    steps: u64,
    blocked: bool,
    released: bool,
    /// The reader's thread: never stopped.
    reader: Option<ThreadId>,
    /// The directory whose listing by the reader lets the writer go, once.
    hook_dir: Option<PathBuf>,
    fired: bool,
    writer_done: bool,
}

#[derive(Debug, Default)]
struct Gate {
    st: Mutex<St>,
    cv: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, St> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One step of some thread: counted, and stopped at `stop_at` until released.
    fn step(&self) {
        let me = std::thread::current().id();
        let mut st = self.lock();
        if !st.armed || st.reader == Some(me) {
            return;
        }
        st.steps += 1;
        if st.steps >= st.stop_at && !st.released {
            st.blocked = true;
            self.cv.notify_all();
            drop(self.wait_until(st, |st| st.released));
        }
    }

    /// Wait (at most [`WAIT`]) until `done` holds.
    fn wait_until<'a>(
        &'a self,
        mut st: std::sync::MutexGuard<'a, St>,
        done: impl Fn(&St) -> bool,
    ) -> std::sync::MutexGuard<'a, St> {
        let deadline = Instant::now() + WAIT;
        while !done(&st) && Instant::now() < deadline {
            st = self
                .cv
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        st
    }

    /// The reader listed `dir`: let the writer go, and wait until it finished its run.
    fn listed(&self, dir: &Path) {
        let me = std::thread::current().id();
        let mut st = self.lock();
        if st.reader != Some(me) || st.fired || st.hook_dir.as_deref() != Some(dir) {
            return;
        }
        st.fired = true;
        st.released = true;
        self.cv.notify_all();
        drop(self.wait_until(st, |st| st.writer_done));
    }

    fn writer_done(&self) {
        self.lock().writer_done = true;
        self.cv.notify_all();
    }

    /// Wait until the writer stopped at its step, or finished without reaching it.
    fn wait_paused(&self) -> bool {
        self.wait_until(self.lock(), |st| st.blocked || st.writer_done)
            .blocked
    }
}

/// The real file system, with every operation of the writer's side counted as a step.
#[derive(Debug)]
struct GateFs(Arc<Gate>);

#[derive(Debug)]
struct GateFile(Box<dyn StorageFile>, Arc<Gate>);

impl Storage for GateFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn StorageFile>> {
        self.0.step();
        let f = RealFs.open(path, mode)?;
        Ok(Box::new(GateFile(f, self.0.clone())))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.step();
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.step();
        RealFs.remove_file(path)
    }
    fn create_dir_private(&self, path: &Path) -> io::Result<()> {
        self.0.step();
        RealFs.create_dir_private(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.step();
        RealFs.sync_dir(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        self.0.step();
        let names = RealFs.read_dir(path);
        self.0.listed(path);
        names
    }
    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        self.0.step();
        RealFs.metadata(path)
    }
    fn is_symlink(&self, path: &Path) -> bool {
        RealFs.is_symlink(path)
    }
}

impl StorageFile for GateFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.1.step();
        self.0.write(buf)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.1.step();
        self.0.write_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn read_into(&self, offset: u64, max: u64, out: &mut Vec<u8>) -> io::Result<()> {
        self.0.read_into(offset, max, out)
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.1.step();
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.1.step();
        self.0.sync_data()
    }
    fn try_lock(&self) -> io::Result<bool> {
        self.1.step();
        self.0.try_lock()
    }
    fn try_lock_shared(&self) -> io::Result<bool> {
        self.0.try_lock_shared()
    }
    fn unlock(&self) -> io::Result<()> {
        self.1.step();
        self.0.unlock()
    }
    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(GateFile(self.0.try_clone()?, self.1.clone())))
    }
    fn map_mut(&self, len: usize) -> io::Result<Box<dyn MapMut>> {
        self.1.step();
        self.0.map_mut(len)
    }
}

impl Drop for GateFile {
    /// Closing a file is a step too: closing segment 0's lock descriptor ends the run.
    fn drop(&mut self) {
        self.1.step();
    }
}

/// Who lists the job while the run ends.
#[derive(Clone, Copy, Debug)]
enum Side {
    Reader,
    Sweep,
    Shipper,
}

/// One iteration: the writer stopped at `step`; `None` once the writer no longer reaches it.
fn race(side: Side, step: u64, redis: &RedisServer) -> Option<Result<(), String>> {
    install();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let gate = Arc::new(Gate::default());
    let _mount = mount(root.clone(), Arc::new(GateFs(gate.clone())));
    let dir = job_dir(&root, JOB);
    let rl = RunLogger::builder()
        .no_config_file()
        .force_journal_dir(&root)
        .fsync(FsyncPolicy::Commit)
        .segment_size(64 << 10)
        .max_logs(100)
        .max_failed_logs(100)
        .build()
        .expect("build");
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            let run = rl.runlog(JOB).expect("runlog");
            run.set_level(LevelFilter::Info);
            let _ = tx.send(run.id().to_owned());
            for i in 0..BEFORE {
                log::info!(target: "race", "{}", message(i));
            }
            {
                let mut st = gate.lock();
                st.armed = true;
                st.stop_at = step;
            }
            for i in BEFORE..BEFORE + AFTER {
                log::info!(target: "race", "{}", message(i));
            }
            drop(run);
            gate.writer_done();
        })
    };
    let id = rx.recv_timeout(WAIT).expect("run id");
    if !gate.wait_paused() {
        let _ = writer.join();
        return None;
    }
    let config = Config::from_toml_str(
        &format!(
            "[runlog]\njournal-dir = {:?}\n[runlog-redis]\nurl = {:?}\nprefix = {PREFIX:?}\n",
            root.display().to_string(),
            redis.url()
        ),
        Path::new("race.toml"),
    )
    .expect("config");
    let reader = {
        let gate = gate.clone();
        let dir = dir.clone();
        let root = root.clone();
        let id = id.clone();
        std::thread::spawn(move || -> Result<(), String> {
            {
                let mut st = gate.lock();
                st.reader = Some(std::thread::current().id());
                st.hook_dir = Some(dir.clone());
            }
            match side {
                // What the reader lists, from the listing it made before the run ended.
                Side::Reader => {
                    let j = Journal::open(&root).map_err(|e| e.to_string())?;
                    let runs = j.runs(JOB).map_err(|e| e.to_string())?;
                    match runs.iter().find(|r| r.id == id) {
                        Some(r) if r.status == RunStatus::Ok && r.records == BEFORE + AFTER => {
                            Ok(())
                        }
                        Some(r) => Err(format!(
                            "the reader listed the run as {} with {} records, problems {:?}",
                            r.status, r.records, r.problems
                        )),
                        None => Err("the reader did not list the run".into()),
                    }
                }
                // Keeps no failed or crashed run: a run taken for crashed is deleted.
                Side::Sweep => sweep_job(&dir, 100, 0, false).map_err(|e| e.to_string()),
                Side::Shipper => {
                    let mut journal = runlog_shipper::ship::Journal::open(&config)?;
                    let rc = config.redis.as_ref().ok_or("no [runlog-redis]")?;
                    let mut redis = Redis::connect(&Target::from_config(rc), &Keys::new(PREFIX))
                        .map_err(|e| e.to_string())?;
                    let dirs = journal.job_dirs().map_err(|e| e.to_string())?;
                    journal
                        .ship(&mut redis, &dirs, &|| false)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            }
        })
    };
    let read = reader
        .join()
        .unwrap_or_else(|_| Err("reader panicked".into()));
    let _ = writer.join();
    let fired = gate.lock().fired;
    Some(check(side, step, &root, &id, read, fired, redis))
}

fn check(
    side: Side,
    step: u64,
    root: &Path,
    id: &str,
    read: Result<(), String>,
    fired: bool,
    redis: &RedisServer,
) -> Result<(), String> {
    let ctx = format!("{side:?}, writer stopped at step {step}");
    read.map_err(|e| format!("{ctx}: {e}"))?;
    if !fired {
        return Err(format!(
            "{ctx}: the {side:?} never listed the job directory"
        ));
    }
    let want = BEFORE + AFTER;
    // What the side saw: the reader's listing is read again (it is read-only); the sweep must
    // have kept the run; the shipper must have uploaded it whole.
    let j = Journal::open(root).map_err(|e| format!("{ctx}: {e}"))?;
    let runs = j.runs(JOB).map_err(|e| format!("{ctx}: {e}"))?;
    let Some(info) = runs.iter().find(|r| r.id == id) else {
        return Err(format!("{ctx}: the run is gone from the journal"));
    };
    if info.status != RunStatus::Ok || info.records != want || !info.problems.is_empty() {
        return Err(format!(
            "{ctx}: the run reads {} with {} records, problems {:?}",
            info.status, info.records, info.problems
        ));
    }
    if let Side::Shipper = side {
        let mut conn = redis.conn();
        let store = check_consistent(&mut conn, PREFIX).map_err(|e| format!("{ctx}: {e}"))?;
        let Some(r) = store.runs(JOB).iter().find(|r| r.id == id) else {
            return Err(format!("{ctx}: the run is not in Redis"));
        };
        if r.status() != "ok" || r.records.len() as u64 != want {
            return Err(format!(
                "{ctx}: Redis has the run as {} with {} records",
                r.status(),
                r.records.len()
            ));
        }
    }
    Ok(())
}

#[test]
fn torture_a_run_ending_in_a_new_segment_while_listed_never_reads_crashed() {
    let redis = RedisServer::start();
    let mut failures = Vec::new();
    let mut iterations = 0u64;
    let mut lost = 0u64;
    for side in [Side::Reader, Side::Sweep, Side::Shipper] {
        for step in 1.. {
            redis.flushall();
            let Some(result) = race(side, step, &redis) else {
                break;
            };
            iterations += 1;
            if let Err(e) = result {
                if e.contains("gone from the journal") {
                    lost += BEFORE + AFTER;
                }
                failures.push(e);
            }
        }
    }
    conclude(
        "rollover and end racing a reader, a sweep and the shipper at every step",
        iterations,
        &failures,
        lost,
    );
}
