//! Torture through the storage seam: the real library writes runs into
//! [`FaultFs`](runlog::journal::faultfs::FaultFs), an in-memory file system mounted over a
//! directory that does not exist on disk, which loses power at any sync or step, fails the Nth
//! write or sync, and runs out of space. After each cut the disk image is read back with the
//! journal reader and recovered (twice) with the library's own recovery.
//!
//! What is checked, every time: every record read is byte for byte one the workload logged,
//! and each run's records are a gap-free prefix of what it logged (nothing after the first
//! invalid frame is surfaced); a run that reads `ok` has all its records and no problem;
//! everything the fsync policy promised at the moment of the cut is there (`always`: every
//! record whose log call returned; `commit`: every run whose guard was dropped); recovery
//! succeeds, changes nothing when run again, and loses no record the reader saw.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use log::LevelFilter;
use runlog::journal::faultfs::{Errno, FaultFs, Unsynced};
use runlog::journal::layout::job_dir;
use runlog::journal::reader::{Journal, RunStatus};
use runlog::journal::retention::sweep_job;
use runlog::journal::shipped::{read_shipped, write_shipped, Shipped};
use runlog::journal::storage::mount;
use runlog::{FsyncPolicy, RunLogger};
use runlog_e2e::torture::install_logger_once;
use runlog_e2e::torture::{conclude, iterations};

const TARGET: &str = "torture";

fn install() {
    install_logger_once("torture");
}

/// A root no real file lives under, unique per test and iteration.
fn root(test: &str, iter: u64) -> PathBuf {
    PathBuf::from(format!(
        "/runlog-faultfs/{}/{test}/{iter}",
        std::process::id()
    ))
}

/// What the workload logs as record `i` of run `r`.
fn message(r: u64, i: u64, big: bool) -> String {
    let pad = if big {
        1500 + (r * 131 + i * 977) % 1200
    } else {
        (r * 7 + i * 13) % 200
    };
    let c = (b'a' + ((r + i) % 26) as u8) as char;
    format!("run {r} record {i} {}", c.to_string().repeat(pad as usize))
}

#[derive(Clone, Copy, Debug)]
struct Work {
    runs: u64,
    per_run: u64,
    big: bool,
    segment: u64,
    policy: FsyncPolicy,
    /// Cancel the run with this index (a delete mid-workload).
    cancel: Option<u64>,
    max_logs: usize,
    /// Sleep after each record (so that an interval policy syncs every record).
    pause: Option<std::time::Duration>,
}

impl Work {
    /// `runs` runs of `per_run` records (`big` ones: over a KiB) in 64 KiB segments, none
    /// cancelled, 100 kept, no pause.
    fn new(runs: u64, per_run: u64, big: bool, policy: FsyncPolicy) -> Work {
        Work {
            runs,
            per_run,
            big,
            segment: 64 << 10,
            policy,
            cancel: None,
            max_logs: 100,
            pause: None,
        }
    }
}

/// Acknowledgements: records whose log call returned, runs whose guard was dropped; and the
/// ids of the runs started, in order.
#[derive(Default)]
struct Acks {
    records: AtomicU64,
    runs: AtomicU64,
    ids: std::sync::Mutex<Vec<String>>,
}

/// Run the workload on the journal at `root`; returns each run's (records, dropped) as the
/// library counted them.
fn workload(root: &Path, job: &str, w: &Work, acks: &Acks) -> Vec<(u64, u64)> {
    install();
    let rl = RunLogger::builder()
        .no_config_file()
        .force_journal_dir(root)
        .fsync(w.policy)
        .segment_size(w.segment)
        .max_logs(w.max_logs)
        .max_failed_logs(w.max_logs)
        .build()
        .expect("build");
    let mut out = Vec::new();
    for r in 0..w.runs {
        let run = rl.runlog(job).expect("runlog");
        run.set_level(LevelFilter::Info);
        acks.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(run.id().to_owned());
        if let Some(p) = w.pause {
            // The interval counts from the run's start too.
            std::thread::sleep(p);
        }
        for i in 0..w.per_run {
            log::info!(target: TARGET, "{}", message(r, i, w.big));
            acks.records.fetch_add(1, Ordering::SeqCst);
            if let Some(p) = w.pause {
                std::thread::sleep(p);
            }
        }
        out.push((run.records(), run.dropped()));
        if w.cancel == Some(r) {
            run.cancel();
        } else {
            drop(run);
        }
        acks.runs.fetch_add(1, Ordering::SeqCst);
    }
    out
}

/// What a reader sees: per run id, (status, run index, records read, problems).
type Seen = BTreeMap<String, (RunStatus, Option<u64>, u64, usize)>;

/// Read every run of `job` under `root` and check each against what was logged.
fn read_checked(root: &Path, job: &str, w: &Work) -> Result<Seen, String> {
    let j = Journal::open(root).map_err(|e| format!("open: {e}"))?;
    let mut seen = Seen::new();
    for info in j.runs(job).map_err(|e| format!("runs: {e}"))? {
        let log = j
            .read_run(job, &info.id)
            .map_err(|e| format!("read {}: {e}", info.id))?;
        let mut run_index = None;
        // The marker a reader puts where a corrupt region was is not a logged record; after
        // it, the records resume further on.
        let mut k = 0u64;
        let mut after_gap = false;
        let mut n = 0u64;
        for rec in &log.records {
            if rec.target == runlog::journal::reader::DAMAGE_TARGET {
                after_gap = true;
                continue;
            }
            n += 1;
            let mut words = rec.message.split(' ');
            let r = match (words.next(), words.next()) {
                (Some("run"), Some(r)) => r.parse::<u64>().ok(),
                _ => None,
            };
            let Some(r) = r else {
                return Err(format!("run {}: a record not logged: {:?}", info.id, rec));
            };
            if *run_index.get_or_insert(r) != r {
                return Err(format!("run {}: records of two runs", info.id));
            }
            if after_gap {
                while k < w.per_run && rec.message != message(r, k, w.big) {
                    k += 1;
                }
                after_gap = false;
            }
            let want = message(r, k, w.big);
            k += 1;
            if rec.message != want || rec.target != TARGET || rec.level != log::Level::Info {
                return Err(format!(
                    "run {}: record {k} is not what was logged (a gap or a damaged record): \
                     {:?}",
                    info.id,
                    rec.message.chars().take(60).collect::<String>()
                ));
            }
        }
        if info.shown_status() == RunStatus::Ok
            && (n + info.dropped != w.per_run || !info.problems.is_empty())
        {
            return Err(format!(
                "run {} reads ok with {n} records, {} dropped, problems {:?}",
                info.id, info.dropped, info.problems
            ));
        }
        seen.insert(
            info.id.clone(),
            (info.status, run_index, n, info.problems.len()),
        );
    }
    Ok(seen)
}

/// Records the policy promised (by the acknowledgement count at the cut) and the image lost.
fn lost_promised(seen: &Seen, w: &Work, promised: u64, ids: &[String]) -> u64 {
    let mut have: BTreeMap<u64, (u64, RunStatus)> = BTreeMap::new();
    for (status, r, n, _) in seen.values() {
        if let Some(r) = r {
            have.insert(*r, (*n, *status));
        }
    }
    let mut lost = 0;
    match w.policy {
        FsyncPolicy::Always | FsyncPolicy::Interval(_) => {
            for g in 0..promised {
                let (r, i) = (g / w.per_run, g % w.per_run);
                if w.cancel == Some(r) {
                    continue;
                }
                // An interval policy syncs a run's start in the background: until that is
                // done the whole run may be lost (spec/journal.md, "What survives"); once its
                // BEGIN survived, every record synced after it must have too.
                let listed = ids.get(r as usize).is_some_and(|id| seen.contains_key(id));
                if matches!(w.policy, FsyncPolicy::Interval(_)) && !listed {
                    continue;
                }
                if have.get(&r).is_none_or(|(n, _)| *n <= i) {
                    lost += 1;
                }
            }
        }
        FsyncPolicy::Commit => {
            for r in 0..promised {
                if w.cancel == Some(r) {
                    continue;
                }
                match have.get(&r) {
                    Some((n, RunStatus::Ok)) => lost += w.per_run - n,
                    Some((n, _)) => lost += w.per_run - n.min(&w.per_run),
                    None => lost += w.per_run,
                }
            }
        }
        FsyncPolicy::Never => {}
    }
    lost
}

/// Recover the job directory twice: both must succeed, the second change nothing, and the
/// reader see the same records as before.
fn recover_twice(
    fs: &FaultFs,
    root: &Path,
    job: &str,
    w: &Work,
    before: &Seen,
) -> Result<(), String> {
    let dir = job_dir(root, job);
    sweep_job(&dir, 1000, 1000, false).map_err(|e| format!("recovery: {e}"))?;
    let once = fs.files();
    sweep_job(&dir, 1000, 1000, false).map_err(|e| format!("second recovery: {e}"))?;
    if fs.files() != once {
        return Err("a second recovery changed the files".into());
    }
    let after = read_checked(root, job, w)?;
    let records = |s: &Seen| -> BTreeMap<String, u64> {
        s.iter()
            .map(|(id, (_, _, n, _))| (id.clone(), *n))
            .collect()
    };
    if records(&after) != records(before) {
        return Err(format!(
            "recovery changed what is read: before {:?}, after {:?}",
            records(before),
            records(&after)
        ));
    }
    Ok(())
}

/// One cut: the workload on a fresh FaultFs that takes its image at sync (or step) `n`;
/// returns records lost, or an error naming the failure. `Ok(None)`: the cut was not reached.
fn one_cut(
    test: &str,
    iter: u64,
    w: &Work,
    n: u64,
    at_step: bool,
    unsynced: Unsynced,
) -> Result<Option<u64>, String> {
    let job = "power job";
    let r = root(test, iter);
    let fs = FaultFs::new(&r);
    let acks = Arc::new(Acks::default());
    let a = acks.clone();
    let policy = w.policy;
    let probe = move || match policy {
        FsyncPolicy::Always | FsyncPolicy::Interval(_) => a.records.load(Ordering::SeqCst),
        _ => a.runs.load(Ordering::SeqCst),
    };
    if at_step {
        fs.cut_at_step(n, probe);
    } else {
        fs.cut_at_sync(n, probe);
    }
    {
        let _m = mount(&r, Arc::new(fs.clone()));
        workload(&r, job, w, &acks);
    }
    let img_root = root(&format!("{test}-image"), iter);
    let Some((img, promised)) = fs.cut_image(&img_root, unsynced) else {
        return Ok(None);
    };
    let _m = mount(&img_root, Arc::new(img.clone()));
    let seen = read_checked(&img_root, job, w)?;
    let ids = acks.ids.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // A cancel that returned is for good: the run never comes back listed (under `commit`
    // the probe counts the runs whose guard returned, the cancelled one included).
    if let (Some(c), FsyncPolicy::Commit) = (w.cancel, w.policy) {
        if promised > c && ids.get(c as usize).is_some_and(|id| seen.contains_key(id)) {
            return Err(format!("the cancelled run {} is listed", ids[c as usize]));
        }
    }
    let lost = lost_promised(&seen, w, promised, &ids);
    recover_twice(&img, &img_root, job, w, &seen)?;
    Ok(Some(lost))
}

/// Add one cut's outcome to the failures and the records lost.
fn tally(what: &str, cut: Result<Option<u64>, String>, failures: &mut Vec<String>, lost: &mut u64) {
    match cut {
        Ok(Some(l)) => {
            if l > 0 {
                failures.push(format!("{what}: {l} promised records lost"));
            }
            *lost += l;
        }
        Ok(None) => {}
        Err(e) => failures.push(format!("{what}: {e}")),
    }
}

/// Count the syncs, steps and writes of a workload with no faults.
fn dry_run(test: &str, w: &Work) -> (u64, u64, u64) {
    let r = root(test, u64::MAX);
    let fs = FaultFs::new(&r);
    let _m = mount(&r, Arc::new(fs.clone()));
    workload(&r, "power job", w, &Acks::default());
    let c = fs.counts();
    (c.syncs, c.steps, c.writes)
}

fn modes(iter: u64) -> [Unsynced; 3] {
    [Unsynced::Lost, Unsynced::Kept, Unsynced::Random(iter)]
}

/// Power loss at every sync of a multi-run workload, under `always` and `commit`: whatever
/// the policy promised is there, nothing damaged or out of order is surfaced, recovery is
/// idempotent.
#[test]
fn torture_power_loss_at_every_sync_keeps_what_the_fsync_policy_promised() {
    let mut iters = 0;
    let mut failures = Vec::new();
    let mut lost = 0;
    let per_run = iterations(12, 60);
    // Under an interval policy a record logged at least the interval after the last sync
    // syncs everything up to it: with a pause longer than the interval after each record,
    // every record's log call returns synced, as under `always`.
    let ms = std::time::Duration::from_millis(1);
    for (name, policy, big, pause) in [
        ("always", FsyncPolicy::Always, false, None),
        ("commit", FsyncPolicy::Commit, true, None),
        ("interval", FsyncPolicy::Interval(ms), false, Some(2 * ms)),
    ] {
        let w = Work {
            pause,
            ..Work::new(3, per_run, big, policy)
        };
        let test = format!("power-{name}");
        let (syncs, _, _) = dry_run(&test, &w);
        assert!(syncs > 3, "{name}: the workload syncs only {syncs} times");
        for n in 1..=syncs {
            for mode in modes(n) {
                iters += 1;
                let what = format!("{name}: cut at sync {n} ({mode:?})");
                let cut = one_cut(&test, iters, &w, n, false, mode);
                tally(&what, cut, &mut failures, &mut lost);
            }
        }
    }
    conclude(
        "power loss at every sync (always, commit, interval)",
        iters,
        &failures,
        lost,
    );
}

/// A power loss at every step of creating, rotating, cancelling and retiring segments (with
/// the unsynced data all kept or all lost; only synced names survive): recovery always
/// succeeds, twice gives the same state, and nothing damaged is surfaced. (Process kills at
/// random points are `torture_proc.rs`'s.)
#[test]
fn torture_crash_at_every_step_of_segment_create_rotate_delete_recovers_the_same_twice() {
    let w = Work {
        cancel: Some(1),
        max_logs: 2,
        ..Work::new(4, iterations(40, 120), true, FsyncPolicy::Commit)
    };
    let test = "steps";
    let (_, steps, _) = dry_run(test, &w);
    assert!(steps > 20, "the workload takes only {steps} steps");
    let mut iters = 0;
    let mut failures = Vec::new();
    let mut lost = 0;
    for n in 1..=steps {
        for mode in [Unsynced::Kept, Unsynced::Lost] {
            iters += 1;
            let what = format!("cut at step {n} ({mode:?})");
            tally(
                &what,
                one_cut(test, iters, &w, n, true, mode),
                &mut failures,
                &mut lost,
            );
        }
    }
    conclude(
        "crash at every step of segment create/rotate/delete",
        iters,
        &failures,
        lost,
    );
}

/// The shipped-runs file (and the shipper's state, written the same way) cut at every step of
/// its atomic replacement: a reader finds the old list or the new one, never an empty or
/// partial one taken for real.
#[test]
fn torture_crash_at_every_step_of_the_shipped_file_write_leaves_old_or_new() {
    let old = Shipped {
        epoch: "e1".into(),
        runs: ["2026-01-01T00:00:00.000000Z-00000000000a".to_owned()].into(),
    };
    let new = Shipped {
        epoch: "e1".into(),
        runs: [
            "2026-01-01T00:00:00.000000Z-00000000000a".to_owned(),
            "2026-01-01T00:00:01.000000Z-00000000000b".to_owned(),
        ]
        .into(),
    };
    let mut iters = 0;
    let mut failures = Vec::new();
    for n in 1..=8 {
        for mode in modes(n) {
            let r = root("shipped", n * 10 + iters);
            let fs = FaultFs::new(&r);
            let dir = r.join("jobs").join("j");
            {
                let _m = mount(&r, Arc::new(fs.clone()));
                runlog::journal::storage::create_dir_private(&dir).unwrap();
                runlog::journal::storage::sync_dir(&r).unwrap();
                runlog::journal::storage::sync_dir(&r.join("jobs")).unwrap();
                write_shipped(&dir, &old).unwrap();
                let base = fs.counts().steps;
                fs.cut_at_step(base + n, || 0);
                write_shipped(&dir, &new).unwrap();
            }
            let img_root = root("shipped-image", n * 10 + iters);
            let Some((img, _)) = fs.cut_image(&img_root, mode) else {
                continue;
            };
            iters += 1;
            let _m = mount(&img_root, Arc::new(img));
            match read_shipped(&img_root.join("jobs").join("j")) {
                Ok(Some(s)) if s == old || s == new => {}
                other => failures.push(format!("cut at step {n} ({mode:?}): {other:?}")),
            }
        }
    }
    assert!(iters >= 12, "only {iters} cuts were reached");
    conclude(
        "crash at every step of the shipped-runs/state write",
        iters,
        &failures,
        0,
    );
}

/// Fail the Nth write and the Nth sync, for every N of a workload (every third also with short
/// writes): nothing panics, every record is written or counted as dropped, nothing damaged is surfaced, and a run after the
/// fault is whole.
#[test]
fn torture_failing_the_nth_write_or_sync_never_panics_and_counts_every_record() {
    let w = Work::new(3, iterations(30, 100), true, FsyncPolicy::Commit);
    let (syncs, _, writes) = dry_run("nth", &w);
    assert!(writes > 3 && syncs > 3, "{writes} writes, {syncs} syncs");
    let mut iters = 0;
    let mut failures = Vec::new();
    let mut lost = 0;
    let job = "power job";
    for (what, count) in [("write", writes), ("sync", syncs)] {
        for n in 1..=count {
            iters += 1;
            let r = root(&format!("nth-{what}"), n);
            let fs = FaultFs::new(&r);
            let errno = if n % 2 == 0 {
                Errno::NoSpace
            } else {
                Errno::Io
            };
            if what == "write" {
                fs.fail_write_at(n, errno);
            } else {
                fs.fail_sync_at(n, errno);
            }
            // Every third run also writes short: each write takes at most half of its bytes.
            fs.short_writes(n % 3 == 0);
            let _m = mount(&r, Arc::new(fs.clone()));
            let counted = std::panic::catch_unwind(|| workload(&r, job, &w, &Acks::default()));
            let Ok(counted) = counted else {
                failures.push(format!("{what} {n} failing: the workload panicked"));
                continue;
            };
            for (i, (rec, dropped)) in counted.iter().enumerate() {
                if rec + dropped != w.per_run {
                    failures.push(format!(
                        "{what} {n} failing: run {i} counts {rec} written + {dropped} dropped of {}",
                        w.per_run
                    ));
                    lost += w.per_run.saturating_sub(rec + dropped);
                }
            }
            if let Err(e) = read_checked(&r, job, &w) {
                failures.push(format!("{what} {n} failing: {e}"));
            }
            // The Nth operation may not have come yet: how many syncs a workload makes, and
            // when, depends on its background threads. Then there is no fault to resume from,
            // and it must not strike the next run instead.
            let c = fs.counts();
            if what == "write" && c.writes < n {
                fs.fail_write_at(u64::MAX, errno);
            } else if what == "sync" && c.syncs < n {
                fs.fail_sync_at(u64::MAX, errno);
            }
            // Writing resumes: a run after the fault is whole.
            let after = Work { runs: 1, ..w };
            let counted = workload(&r, "after job", &after, &Acks::default());
            match read_checked(&r, "after job", &after) {
                Ok(seen)
                    if counted == [(w.per_run, 0)]
                        && seen
                            .values()
                            .all(|(s, _, k, _)| *s == RunStatus::Ok && *k == w.per_run)
                        && seen.len() == 1 => {}
                other => failures.push(format!(
                    "{what} {n} failing: the next run is not whole: {counted:?} {other:?}"
                )),
            }
        }
    }
    conclude("fail the Nth write or sync", iters, &failures, lost);
}

/// A full disk and an unwritable journal directory while jobs run: the jobs go on, dropped
/// records are counted in the run, nothing panics, and writing resumes when space returns.
#[test]
fn torture_a_full_disk_and_an_unwritable_dir_drop_and_count_records_then_writing_resumes() {
    let r = root("full", 0);
    let fs = FaultFs::new(&r);
    let _m = mount(&r, Arc::new(fs.clone()));
    let w = Work::new(1, 200, true, FsyncPolicy::Commit);
    let mut failures = Vec::new();
    // Room for the first segment only: a rollover fails, records are dropped and counted.
    fs.set_space(Some(300 << 10));
    let full = workload(&r, "full job", &w, &Acks::default());
    let (rec, dropped) = full[0];
    if dropped == 0 || rec + dropped != w.per_run {
        failures.push(format!("full disk: {rec} written, {dropped} dropped"));
    }
    match read_checked(&r, "full job", &w) {
        Ok(seen) => {
            if !seen
                .values()
                .any(|(s, _, k, _)| *s == RunStatus::Ok && *k == rec)
            {
                failures.push(format!(
                    "full disk: the run does not read ok with its {rec} records: {seen:?}"
                ));
            }
        }
        Err(e) => failures.push(format!("full disk: {e}")),
    }
    // Unwritable: the run starts, counts every record as dropped.
    fs.set_space(None);
    fs.refuse_creates(Some(Errno::Access));
    let refused = workload(&r, "refused job", &w, &Acks::default());
    if refused != [(0, w.per_run)] {
        failures.push(format!("unwritable dir: {refused:?}"));
    }
    // Space and permission return: whole runs again.
    fs.refuse_creates(None);
    let again = workload(&r, "full job", &w, &Acks::default());
    if again != [(w.per_run, 0)] {
        failures.push(format!("after space returned: {again:?}"));
    }
    conclude("disk full and unwritable journal dir", 3, &failures, 0);
}

/// Regression: the directories a new job's first run created (`jobs/`, the job's own) were not
/// synced into their parents, so a power loss lost the whole run even under `fsync = always`.
#[test]
fn a_power_loss_after_the_first_run_of_a_new_job_keeps_its_synced_records() {
    let w = Work::new(1, 5, false, FsyncPolicy::Always);
    let (syncs, _, _) = dry_run("new-job", &w);
    // The power goes at the last sync: every record's log call had returned before it.
    let lost = one_cut("new-job", 1, &w, syncs, false, Unsynced::Lost)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("the cut is reached");
    assert_eq!(lost, 0, "records whose log call returned were lost");
}

/// Every truncation at every byte offset and every single-bit flip of the segments of three
/// runs, and zero-filled and garbage tails: each is detected (the run does not read `ok`, or a
/// problem is reported), and no record is ever surfaced that was not written (0 false frames).
#[test]
fn torture_every_truncation_and_bit_flip_of_three_runs_is_detected_without_false_frames() {
    use runlog::journal::storage::{open, write_all, OpenMode};
    let r = root("flip", 0);
    let fs = FaultFs::new(&r);
    let _m = mount(&r, Arc::new(fs.clone()));
    let job = "flip job";
    let w = Work::new(3, iterations(6, 20), false, FsyncPolicy::Commit);
    workload(&r, job, &w, &Acks::default());
    let j = Journal::open(&r).expect("open");
    let runs = j.runs(job).expect("runs");
    assert_eq!(runs.len(), 3);
    let mut iters = 0u64;
    let mut failures = Vec::new();
    let mut false_frames = 0u64;
    for info in &runs {
        assert_eq!(info.segments.len(), 1, "one segment per run");
        let path = info.segments[0].clone();
        let good = fs.files()[path.strip_prefix(&r).unwrap()].clone();
        let original = j.read_run(job, &info.id).expect("read").records;
        assert_eq!(original.len() as u64, w.per_run);
        // Write `bytes` as the segment, read the run: (detected, false frames).
        let mut check = |what: &str, bytes: &[u8], expect_damage: bool| {
            iters += 1;
            let mut f = open(&path, OpenMode::CreateTruncate).unwrap();
            write_all(&mut *f, bytes).unwrap();
            drop(f);
            let (detected, records) = match j.read_run(job, &info.id) {
                Err(_) => (true, Vec::new()),
                Ok(log) => (
                    log.info.status != RunStatus::Ok || !log.info.problems.is_empty(),
                    log.records,
                ),
            };
            // What is read past a corrupt region follows a marker: the records read must be
            // the original ones, in order, with gaps only there.
            let mut rest = original.iter();
            let false_here = records
                .iter()
                .filter(|r| r.target != runlog::journal::reader::DAMAGE_TARGET)
                .filter(|r| !rest.any(|o| o == *r))
                .count();
            false_frames += false_here as u64;
            if false_here > 0 {
                failures.push(format!("{}: {what}: {false_here} false records", info.id));
            }
            if expect_damage && !detected {
                failures.push(format!("{}: {what}: not detected", info.id));
            }
            if !expect_damage && (detected || records != original) {
                failures.push(format!("{}: {what}: a clean tail misread", info.id));
            }
        };
        for k in 0..good.len() {
            check(&format!("truncated at {k}"), &good[..k], true);
        }
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[byte] ^= 1 << bit;
                check(&format!("bit {bit} of byte {byte} flipped"), &b, true);
            }
        }
        for n in [1usize, 7, 4096, 70_000] {
            let mut b = good.clone();
            b.resize(good.len() + n, 0);
            check(&format!("{n} zero bytes appended"), &b, false);
            let mut b = good.clone();
            b.extend((0..n).map(|i| {
                (i as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .rotate_left(17) as u8
                    | 1
            }));
            check(&format!("{n} garbage bytes appended"), &b, true);
        }
        let mut f = open(&path, OpenMode::CreateTruncate).unwrap();
        write_all(&mut *f, &good).unwrap();
    }
    conclude(
        "every truncation and bit flip of 3 runs' segments, zero and garbage tails (lost = false frames)",
        iters,
        &failures,
        false_frames,
    );
}

/// A 100 MB message is capped to one record that keeps its head and its tail around a visible
/// marker saying how much was cut, and is flagged truncated; multi-byte text is cut at
/// character boundaries.
#[test]
fn torture_a_100_mb_message_keeps_its_head_and_tail_around_a_visible_marker() {
    let r = root("huge", 0);
    let fs = FaultFs::new(&r);
    let _m = mount(&r, Arc::new(fs.clone()));
    install();
    let rl = RunLogger::builder()
        .no_config_file()
        .force_journal_dir(&r)
        .build()
        .expect("build");
    let mut failures = Vec::new();
    let cases: Vec<(&str, String)> = vec![
        ("ascii", {
            let mut m = String::from("HEAD-START ");
            m.push_str(&"x".repeat(100 << 20));
            m.push_str(" TAIL-END");
            m
        }),
        ("multi-byte", {
            let mut m = String::from("début ");
            m.push_str(&"é€😀".repeat(5 << 20));
            m.push_str(" fin");
            m
        }),
    ];
    for (what, msg) in &cases {
        let run = rl.runlog(&format!("huge {what}")).expect("runlog");
        run.set_level(LevelFilter::Info);
        log::info!(target: TARGET, "{msg}");
        log::info!(target: TARGET, "next record");
        drop(run);
        let j = Journal::open(&r).expect("open");
        let id = j.runs(&format!("huge {what}")).expect("runs")[0].id.clone();
        let recs = j
            .read_run(&format!("huge {what}"), &id)
            .expect("read")
            .records;
        if recs.len() != 2 || recs[1].message != "next record" {
            failures.push(format!("{what}: {} records", recs.len()));
            continue;
        }
        let got = &recs[0];
        let head_len = got.message.find(" \u{2026}[runlog: ").unwrap_or(0);
        let marker_end = got
            .message
            .find(" bytes cut]\u{2026} ")
            .map(|i| i + " bytes cut]\u{2026} ".len());
        let ok = got.truncated
            && got.message.len() <= 1 << 20
            && head_len > 512 << 10
            && msg.starts_with(&got.message[..head_len])
            && marker_end.is_some_and(|e| {
                let tail = &got.message[e..];
                tail.len() > 128 << 10 && msg.ends_with(tail)
            });
        if !ok {
            failures.push(format!(
                "{what}: truncated {}, {} bytes, head {head_len}, marker end {marker_end:?}",
                got.truncated,
                got.message.len()
            ));
        }
        // The marker says how much was cut.
        if let (Some(e), true) = (marker_end, head_len > 0) {
            let tail_len = got.message.len() - e;
            let said: Option<u64> = got.message[head_len..e]
                .split(' ')
                .find_map(|w| w.parse().ok());
            if said != Some((msg.len() - head_len - tail_len) as u64) {
                failures.push(format!("{what}: the marker says {said:?} bytes cut"));
            }
        }
    }
    conclude("100 MB messages capped with head and tail", 2, &failures, 0);
}

/// A power loss at each sync of a run's end, with unsynced pages lost, kept or garbled (many
/// seeds): the run reads as ended with every record and nothing after its end frame, or as
/// crashed; never as ended with garbage behind it (the cut of the last segment was not yet
/// durable when its end frame was).
#[test]
fn a_power_loss_during_the_end_of_a_run_never_leaves_garbage_behind_its_end_frame() {
    let w = Work::new(1, 12, false, FsyncPolicy::Always);
    let test = "end-garbage";
    let (syncs, _, _) = dry_run(test, &w);
    let mut failures = Vec::new();
    let mut lost = 0;
    let mut iters = 0;
    // The end syncs last: the records, the cut, the end frame, the directory.
    for n in syncs.saturating_sub(4)..=syncs {
        for seed in 0..40 {
            iters += 1;
            let what = format!("cut at sync {n} of {syncs}, Random({seed})");
            let cut = one_cut(test, iters, &w, n, false, Unsynced::Random(seed));
            tally(&what, cut, &mut failures, &mut lost);
        }
    }
    assert_eq!(failures, Vec::<String>::new());
    assert_eq!(lost, 0);
}
