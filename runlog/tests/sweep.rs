//! What the sweep after each run must never do: delete a run that only looks cancelled,
//! finish deleting a run whose segment 0 a directory listing merely missed, or delete a run
//! that is not shipped yet while shipping is on. And what readers do with a run that is being
//! deleted.

use std::fs;
use std::path::Path;
use std::sync::Once;

use runlog::journal::frame::{encode_frame, encode_header, FrameType};
use runlog::journal::layout::{job_dir, segment_name, SHIPPED_FILE, SHIPPER_DIR};
use runlog::journal::payload::{encode_begin, encode_end, Begin, End, Outcome};
use runlog::journal::retention::{sweep_job, sweep_job_held};
use runlog::journal::shipped::{write_shipped, Shipped};
use runlog::{Journal, RunLogger, RunStatus};

const JOB: &str = "swept";

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let rl = RunLogger::builder()
            .journal_dir(std::env::temp_dir().join("runlog-sweep-test-unused"))
            .no_config_file()
            .build()
            .unwrap();
        let _ = rl.install();
    });
}

/// End one ordinary run of the job: its end sweeps the job directory.
fn sweep(journal: &Path) {
    install();
    let rl = RunLogger::builder()
        .journal_dir(journal)
        .no_config_file()
        .build()
        .unwrap();
    let _run = rl.runlog(JOB).unwrap();
    log::info!("a run whose end sweeps the job");
}

fn begin(id: &str) -> Vec<u8> {
    encode_frame(
        FrameType::Begin,
        &encode_begin(&Begin {
            start_ns: 0,
            pid: 1,
            run_id: id.into(),
            job: JOB.into(),
            host: "h".into(),
        }),
    )
}

/// A journal with the job's directory, empty.
fn empty_job() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = job_dir(tmp.path(), JOB);
    fs::create_dir_all(&dir).unwrap();
    (tmp, dir)
}

/// An end frame (CANCEL for `Cancelled`, else COMMIT) of a run without records.
fn end_frame(outcome: Outcome) -> Vec<u8> {
    let kind = if outcome == Outcome::Cancelled {
        FrameType::Cancel
    } else {
        FrameType::Commit
    };
    let end = End {
        end_ns: 1,
        outcome,
        records: 0,
        dropped: 0,
    };
    encode_frame(kind, &encode_end(&end))
}

#[test]
fn a_crashed_run_whose_last_bytes_look_like_a_cancel_frame_is_not_deleted() {
    let (tmp, dir) = empty_job();
    let id = "2000-01-01T00:00:00.000000Z-00000000000a";
    // The last record's payload ends with the bytes of a valid CANCEL frame: a reader of the
    // last 44 bytes alone would take the run for cancelled.
    let cancel = end_frame(Outcome::Cancelled);
    let mut payload = vec![0u8; 40];
    payload.extend_from_slice(&cancel);
    let seg = [
        &encode_header(0, id)[..],
        &begin(id),
        &encode_frame(FrameType::Record, &payload),
    ]
    .concat();
    let path = dir.join(segment_name(id, 0));
    fs::write(&path, &seg).unwrap();
    sweep(tmp.path());
    sweep(tmp.path());
    assert!(path.exists(), "a crashed run was deleted as cancelled");
    let runs = Journal::open(tmp.path()).unwrap().runs(JOB).unwrap();
    assert_eq!(runs[0].id, id);
    assert_eq!(runs[0].status, RunStatus::Crashed);
}

#[test]
fn a_cancelled_run_whose_first_segment_a_power_loss_emptied_is_not_listed_and_is_deleted() {
    // A cancel syncs only the last segment (the run is deleted anyway): after a power loss its
    // segment 0 can come back empty while the CANCEL frame in segment 1 survived. Reading stops
    // at the empty segment 0, and still the run is cancelled: it was listed as a damaged
    // crashed run until the next sweep deleted it.
    let (tmp, dir) = empty_job();
    let id = "2000-01-01T00:00:00.000000Z-00000000000c";
    let cancel = end_frame(Outcome::Cancelled);
    let (seg0, seg1) = (dir.join(segment_name(id, 0)), dir.join(segment_name(id, 1)));
    fs::write(&seg0, b"").unwrap();
    fs::write(&seg1, [&encode_header(1, id)[..], &cancel].concat()).unwrap();
    let j = Journal::open(tmp.path()).unwrap();
    assert_eq!(j.runs(JOB).unwrap(), vec![]);
    assert!(matches!(
        j.read_run(JOB, id),
        Err(runlog::journal::reader::ReadError::NoSuchRun { .. })
    ));
    sweep(tmp.path());
    assert!(
        !seg0.exists() && !seg1.exists(),
        "the cancelled run was left"
    );

    // The same empty segment 0 before a last segment without a CANCEL frame is damage: listed.
    fs::write(&seg0, b"").unwrap();
    fs::write(&seg1, encode_header(1, id)).unwrap();
    let runs = j.runs(JOB).unwrap();
    let r = runs.iter().find(|r| r.id == id).expect("listed");
    assert_eq!(r.status, RunStatus::Crashed);
    assert!(!r.problems.is_empty());
}

#[test]
fn a_run_without_segment_0_is_not_listed_and_is_finished_off_only_when_stale() {
    let (tmp, dir) = empty_job();
    let id = "2000-01-01T00:00:00.000000Z-00000000000b";
    let seg1 = dir.join(segment_name(id, 1));
    fs::write(&seg1, encode_header(1, id)).unwrap();
    let j = Journal::open(tmp.path()).unwrap();
    assert!(j.runs(JOB).unwrap().is_empty());
    assert!(j.read_run(JOB, id).is_err());
    // Young: a listing may have missed a live run's segment 0, so it is left alone.
    sweep(tmp.path());
    assert!(
        seg1.exists(),
        "a young segment without segment 0 was deleted"
    );
    // Stale and segment 0 really absent: the interrupted deletion is finished.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    fs::File::options()
        .write(true)
        .open(&seg1)
        .unwrap()
        .set_modified(old)
        .unwrap();
    sweep(tmp.path());
    assert!(!seg1.exists(), "a stale half-deleted run was left");
}

#[test]
fn job_names_and_labels_over_their_limits_are_refused_or_cut() {
    let tmp = tempfile::tempdir().unwrap();
    install();
    let rl = RunLogger::builder()
        .journal_dir(tmp.path())
        .no_config_file()
        .build()
        .unwrap();
    assert!(rl.runlog(&"j".repeat(runlog::MAX_JOB_NAME + 1)).is_err());
    assert!(rl.runlog(&"j".repeat(runlog::MAX_JOB_NAME)).is_ok());
    {
        let run = rl.runlog(JOB).unwrap();
        run.label(&"k".repeat(10_000), &"é".repeat(50_000));
    }
    let j = Journal::open(tmp.path()).unwrap();
    let info = &j.runs(JOB).unwrap()[0];
    let (k, v) = &info.labels[0];
    assert_eq!(k.len(), 4096);
    // Cut at a character boundary at most 64 KiB.
    assert!(
        v.len() <= 64 << 10 && v.len() > (64 << 10) - 2,
        "{}",
        v.len()
    );
    assert!(v.chars().all(|c| c == 'é'));
}

// Shipping: retention never deletes a run that is not shipped yet.

/// Write a run of `JOB` that ended with `outcome` (`None`: crashed, no writer).
fn make_run(dir: &Path, id: &str, outcome: Option<Outcome>) {
    let mut seg = [&encode_header(0, id)[..], &begin(id)].concat();
    if let Some(outcome) = outcome {
        seg.extend_from_slice(&end_frame(outcome));
    }
    fs::write(dir.join(segment_name(id, 0)), seg).unwrap();
}

/// Run ids that sort in the order of `n`.
fn id(n: u32) -> String {
    format!("2000-01-01T00:00:{n:02}.000000Z-{n:012x}")
}

/// The run ids left in a job directory.
fn left(dir: &Path) -> Vec<String> {
    runlog::journal::reader::list_run_segments(dir)
        .unwrap()
        .into_keys()
        .collect()
}

fn ids(ns: &[u32]) -> Vec<String> {
    ns.iter().map(|n| id(*n)).collect()
}

fn ship(dir: &Path, ns: &[u32]) {
    write_shipped(
        dir,
        &Shipped {
            epoch: "e1".into(),
            runs: ns.iter().map(|n| id(*n)).collect(),
        },
    )
    .unwrap();
}

/// A job directory with ok runs 1–5, failed runs 11–13, crashed runs 21–23 and cancelled
/// runs 31–32.
fn job_with_runs() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, dir) = empty_job();
    for n in 1..=5 {
        make_run(&dir, &id(n), Some(Outcome::Ok));
    }
    for n in 11..=13 {
        make_run(&dir, &id(n), Some(Outcome::Failed));
    }
    for n in 21..=23 {
        make_run(&dir, &id(n), None);
    }
    for n in 31..=32 {
        make_run(&dir, &id(n), Some(Outcome::Cancelled));
    }
    (tmp, dir)
}

#[test]
fn without_shipping_retention_trims_to_the_limits_and_deletes_cancelled_runs() {
    let (_tmp, dir) = job_with_runs();
    // A `.shipped` file changes nothing when shipping is off.
    ship(&dir, &[]);
    assert_eq!(sweep_job_held(&dir, 2, 2, false).unwrap(), 0);
    assert_eq!(left(&dir), ids(&[4, 5, 22, 23]));
    assert!(
        dir.join(SHIPPED_FILE).exists(),
        "the sweep kept the shipper's file"
    );
}

#[test]
fn with_shipping_unshipped_runs_beyond_the_limits_stay_until_they_are_listed() {
    let (_tmp, dir) = job_with_runs();
    // Nothing shipped yet: only cancelled runs go; 7 runs beyond the limits wait for a shipper.
    assert_eq!(sweep_job_held(&dir, 2, 2, true).unwrap(), 7);
    let all_but_cancelled = [1, 2, 3, 4, 5, 11, 12, 13, 21, 22, 23];
    assert_eq!(left(&dir), ids(&all_but_cancelled));

    // Some shipped, under any epoch; the newest runs stay even when shipped.
    ship(&dir, &[1, 3, 5, 12, 21, 23]);
    assert_eq!(
        sweep_job_held(&dir, 2, 2, true).unwrap(),
        3,
        "2, 11 and 13 still wait"
    );
    assert_eq!(left(&dir), ids(&[2, 4, 5, 11, 13, 22, 23]));

    // A new epoch listing the rest: trimmed to the limits.
    write_shipped(
        &dir,
        &Shipped {
            epoch: "e2".into(),
            runs: ids(&[2, 4, 11, 13, 22]).into_iter().collect(),
        },
    )
    .unwrap();
    assert_eq!(sweep_job_held(&dir, 2, 2, true).unwrap(), 0);
    assert_eq!(left(&dir), ids(&[4, 5, 22, 23]));
}

#[test]
fn with_shipping_a_bad_or_unreadable_shipped_file_protects_every_run() {
    let listing_all = format!(
        "runlog-shipped 1 e1\n{}",
        ids(&[1, 2, 3, 4, 5, 11, 12, 13, 21, 22, 23])
            .iter()
            .map(|i| format!("{i}\n"))
            .collect::<String>()
    );
    let bad_header = listing_all.replacen("runlog-shipped 1", "runlog-shipped 9", 1);
    let cases: [&dyn Fn(&Path); 4] = [
        &|p| fs::write(p, &bad_header).unwrap(),
        &|p| fs::write(p, "").unwrap(),
        &|p| fs::create_dir(p).unwrap(),
        &|p| {
            let f = fs::File::create(p).unwrap();
            f.set_len(runlog::journal::shipped::MAX_SHIPPED_FILE + 1)
                .unwrap();
        },
    ];
    for (i, make) in cases.iter().enumerate() {
        let (_tmp, dir) = job_with_runs();
        make(&dir.join(SHIPPED_FILE));
        sweep_job(&dir, 0, 0, true).unwrap();
        assert_eq!(
            left(&dir),
            ids(&[1, 2, 3, 4, 5, 11, 12, 13, 21, 22, 23]),
            "case {i}"
        );
    }
    // The same list with a good header lets everything go (limits 0).
    let (_tmp, dir) = job_with_runs();
    fs::write(dir.join(SHIPPED_FILE), &listing_all).unwrap();
    sweep_job(&dir, 0, 0, true).unwrap();
    assert_eq!(left(&dir), Vec::<String>::new());
}

/// Runs ended through a logger of `journal` with `max-logs` 1; returns the ids left.
fn run_and_sweep(journal: &Path, config: Option<&Path>, runs: usize) -> Vec<String> {
    install();
    let b = RunLogger::builder().journal_dir(journal).max_logs(1);
    let b = match config {
        Some(c) => b.config_file(c),
        None => b.no_config_file(),
    };
    let rl = b.build().unwrap();
    for _ in 0..runs {
        let _run = rl.runlog(JOB).unwrap();
        log::info!("a run");
    }
    left(&job_dir(journal, JOB))
}

#[test]
fn a_logger_protects_unshipped_runs_when_a_shipper_dir_exists_or_redis_is_configured() {
    // No shipping: max-logs 1 keeps one.
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(run_and_sweep(tmp.path(), None, 3).len(), 1);

    // A shipper's directory in the journal: nothing unshipped is deleted.
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join(SHIPPER_DIR)).unwrap();
    let kept = run_and_sweep(tmp.path(), None, 3);
    assert_eq!(kept.len(), 3);
    // Once shipped, the next sweep trims them.
    let dir = job_dir(tmp.path(), JOB);
    write_shipped(
        &dir,
        &Shipped {
            epoch: "e".into(),
            runs: kept.iter().cloned().collect(),
        },
    )
    .unwrap();
    let now = run_and_sweep(tmp.path(), None, 1);
    assert_eq!(now.len(), 1);
    assert!(
        !kept.contains(&now[0]),
        "the newest (unshipped) run is kept"
    );

    // Redis configured (no shipper directory): the same protection.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("runlog.toml");
    fs::write(&cfg, "[runlog-redis]\nurl = \"redis://localhost:1\"\n").unwrap();
    assert_eq!(run_and_sweep(&tmp.path().join("j"), Some(&cfg), 3).len(), 3);
}
